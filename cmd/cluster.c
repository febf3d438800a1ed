/*
 * cmd/cluster.c - what makes a `cairn server` with a [cluster] section one node of a single S3
 * service (docs/cluster.md, "How a node runs"). server.c starts the node RPC (server_rpc.c), the
 * layout follower (coord/co_layout.h) and the bucket namespace (cluster_buckets.c); this file
 * adds, on top of them:
 *
 *   - the clock: a hybrid logical clock (md_hlc) numbered by a 32-bit hash of the node id, which
 *     stamps every object record this node writes and merges the stamps it receives (the node
 *     RPC's metadata routes share it: cmd_cluster_clock);
 *   - the object store in cluster mode (ob_store_cluster_start): new bodies over the nodes of the
 *     adopted layout, reads and deletes of them through the chunk interface;
 *   - the replicated metadata: a loop thread of its own ("cluster loop") on which the partition
 *     replicas run (this node's md_store through a worker pool, the other nodes' over the node
 *     RPC), the router of the adopted layout, the quorum coordinator (repl/rp.h) that the
 *     gateway's object records go through (gw_set_repl), and hint delivery (rp_hints);
 *   - a follower thread that adopts each new layout epoch: ob_store_set_topology, a new router
 *     (the coordinator and hint delivery swapped to it; the previous one freed on the loop once
 *     nothing uses it). Until the first layout the coordinator has no replicas, so object
 *     requests answer 503 ServiceUnavailable rather than touch the local store. The new router
 *     keeps the layout served until then for the handoff (docs/replication.md, "Layout
 *     changes": quorums of both home sets for the partitions that moved, until an anti-entropy
 *     pass over both settles each; kept in DATA/handoff.layout while it is on, so a restart
 *     resumes it). Once the coordinator moved to the new router, the node RPC's layout fence
 *     rises to its epoch (cmd_cluster_fence: calls of older layouts refused), and the member
 *     value reports the epoch and the handoff flag (co_layout_report);
 *   - a maintenance thread: the intents UploadParts of this node left decided (intents_run,
 *     docs/multipart-cluster.md "Reclaiming a killed UploadPart"), garbage reclaim past the grace
 *     period (ob_gc_run; a repair's obsolete cells are checked against the record read at
 *     quorum, gc_read), and anti-entropy
 *     of the partitions this node is the first home of, with the collection of tombstones older
 *     than tombstone_grace_ms (rp_antientropy_collect), every maintenance_s (CLUSTER_TICK_MS by
 *     default), plus the RPC
 *     fault rules of CAIRN_RPC_FAULTS_FILE (tests only: the file's rules, nd_faults_parse
 *     format, replace the previous ones whenever the file changes);
 *   - the repair thread (cluster_repair.c): repair passes over this node's records that bring
 *     bodies back to k+m healthy cells at their homes, on layout changes, nodes coming back,
 *     request and every repair_interval_s (layouts only, but for one full pass every
 *     repair_full_interval_s);
 *   - conditional writes (cluster_cond.c): the coordinator's cond_run hands each to its
 *     partition's leader, elected through etcd; the node RPC's cond route runs those handed here;
 *   - the lifecycle worker's share (cmd_cluster_first_live_home): a record is this node's to
 *     expire when this node is the first home of its partition that the member list shows live,
 *     as the repair pass picks the records it heals.
 *
 * Nothing here waits on etcd but conditional writes (on gateway and RPC workers, bounded): the
 * layout comes from co_layout's memory. Stop (cmd_cluster_stop) after the gateway's workers are
 * quiesced and the node RPC stopped (it shares the clock, and runs handed conditional writes),
 * before the layout follower and the stores close: threads first (the repair thread's pass is
 * stopped between two stripes), then the coordinator (it waits for its calls), then hint delivery
 * and the routers on the loop, then the loop. The object store's cluster mode ends with
 * ob_store_close, which still uses the fault rules: cmd_cluster_free comes after it.
 */
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "cm_log.h"
#include "cluster_cond.h"
#include "cm_util.h"
#include "co_layout.h"
#include "nd.h"
#include "ob.h"
#include "rp.h"
#include "rp_hints.h"
#include "rp_upload.h"

#define MOD "cluster"
#define CLUSTER_TICK_MS 10000 /* maintenance period unless [cluster] maintenance_s says */
#define FAULTS_POLL_MS 200    /* CAIRN_RPC_FAULTS_FILE is checked this often */
#define MD_WORKERS 16      /* local replica calls but reads and merges (hints, scans, barriers) */
#define MD_CONNS 32        /* RPC connections per peer for record calls (one call in flight each) */
#define GC_BATCH_MAX 10000 /* garbage bodies freed per tick at most */
#define INTENTS_MAX 1000   /* intents decided per tick at most */
#define INTENT_FAILS 4     /* failed decisions after which a tick puts the rest off */
#define AE_KEYS_MAX 1000   /* keys repaired per partition per tick at most */
#define NSHARDS 8          /* partitions per bucket: fixed for the life of a cluster */
#define MD_REPLICAS 3      /* N: homes per partition (fewer in a smaller layout: rp_homes) */
#define TOMB_GRACE_MS (86400 * 1000LL) /* the default of [cluster] tombstone_grace_s */
/* The handoff settles no partition sooner than this after the layout was adopted here: a margin
 * for the other nodes to adopt it too (their layout watch), see handoff() */
#define HANDOFF_DELAY_MS 5000
#define HANDOFF_RETRY_MS 2000         /* a handoff pass this often while partitions move */
#define HANDOFF_FILE "handoff.layout" /* DATA/: the previous layout while a handoff is on */
#define HANDOFF_MEMBERS_MS 5000 /* a member list older than this does not let a handoff settle */
#define HANDOFF_FILE_MAX (16 << 20) /* a layout document larger than this is not ours */

struct cmd_cluster {
    cmd_cluster_config cfg;
    char self[PL_NAME_MAX];
    md_hlc clock;
    int have_clock;
    nd_faults *faults;
    /* the cluster loop and what runs on it */
    struct event_base *base;
    pthread_t loop_thread;
    int loop_running;
    struct event *keepalive;
    nd_client *cl;
    nd_work *work;
    rp_replica *local;
    rp_router *router, *old_router; /* current; previous, freed at the next change */
    rp *coord;
    rp_hints *hints;
    cmd_repair *repair;
    cmd_cond *cond; /* partition leaders for conditional writes (cluster_cond.c) */
    /* the follower and maintenance threads */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    pthread_t follow_thread, maint_thread;
    int follow_running, maint_running;
    pl_topology *topo; /* adopted (under mu), for the maintenance thread */
    uint64_t epoch;
    _Atomic uint64_t fence; /* the node RPC's layout fence (cmd_cluster_fence) */
    /* counters for /admin/status (under mu) */
    uint64_t layouts, gc_freed, ae_runs, ae_repaired, ae_unavailable;
    uint64_t intents_freed, intents_kept; /* intents decided (intents_run) */
    uint64_t intents_held; /* at the last tick: too old to free blindly (RP_INTENT_HELD) */
    uint64_t tombs_collected, collect_skipped;
    uint64_t handoff_settled, handoff_repaired; /* partitions settled, keys the handoff copied */
    uint64_t handoff_moving;                    /* partitions still moving at the last pass */
    int64_t adopted_ms;                         /* when the current router was adopted */
    int64_t handoff_ms; /* when the last handoff pass started (maintenance thread only) */
    int64_t faults_mtime_ns;
    /* the lifecycle worker's view of the homes (cmd_cluster_first_live_home; its thread only) */
    pl_topology *lc_topo;
    pl_map *lc_homes;
    uint8_t *lc_dead;
    int64_t lc_ms; /* when the view was refreshed (monotonic) */
    int lc_fresh;  /* the member list was fresh then */
};

/* ---- the loop ---- */

typedef struct {
    void (*fn)(void *arg);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} loop_call;

static void loop_call_run(evutil_socket_t fd, short what, void *arg)
{
    loop_call *lc = arg;
    (void)fd, (void)what;
    lc->fn(lc->arg);
    pthread_mutex_lock(&lc->mu);
    lc->done = 1;
    pthread_cond_signal(&lc->cv);
    pthread_mutex_unlock(&lc->mu);
}

/* Run fn(arg) on the cluster loop's thread and wait for it (never call it from that thread). */
static int on_loop(cmd_cluster *c, void (*fn)(void *arg), void *arg)
{
    loop_call lc = {.fn = fn, .arg = arg};
    pthread_mutex_init(&lc.mu, NULL);
    pthread_cond_init(&lc.cv, NULL);
    int rc = event_base_once(c->base, -1, EV_TIMEOUT, loop_call_run, &lc, NULL);
    if (rc == 0) {
        pthread_mutex_lock(&lc.mu);
        while (!lc.done)
            pthread_cond_wait(&lc.cv, &lc.mu);
        pthread_mutex_unlock(&lc.mu);
    }
    pthread_cond_destroy(&lc.cv);
    pthread_mutex_destroy(&lc.mu);
    return rc == 0 ? 0 : -1;
}

static void keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

static void *loop_main(void *arg)
{
    cmd_cluster *c = arg;
    event_base_loop(c->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* The coordinator's route: no replicas before the first layout (every call is unavailable). */
static int route(rp_router *rt, const rp_part *p, int n, int nfallback, rp_replica **out)
{
    return rt ? rp_route(rt, p, n, nfallback, out) : 0;
}

/* The handoff's previous homes of a moving partition (rp_config.route_prev). */
static int route_prev(rp_router *rt, const rp_part *p, int n, rp_replica **out)
{
    return rt ? rp_route_prev(rt, p, n, out) : 0;
}

/* ---- adopting a layout ---- */

typedef struct {
    cmd_cluster *c;
    const pl_topology *t;
    const pl_topology *prev; /* the layout adopted before t (NULL: none) */
    rp_router *made;
    cm_err err;
} router_job;

static void make_router(void *arg)
{
    router_job *j = arg;
    j->err = rp_router_new(j->t, j->c->self, j->c->local, j->c->cl, &j->made);
    cm_err e = j->err == CM_OK && j->prev ? rp_router_set_previous(j->made, j->prev) : CM_OK;
    if (e != CM_OK)
        CM_WARN(MOD, "layout epoch %llu: no handoff from epoch %llu: %s",
                (unsigned long long)j->t->epoch, (unsigned long long)j->prev->epoch, cm_err_str(e));
}

static void hints_to_router(void *arg)
{
    cmd_cluster *c = arg;
    rp_hints_set_router(c->hints, c->router);
}

static void free_old_router(void *arg)
{
    cmd_cluster *c = arg;
    pthread_mutex_lock(&c->mu);
    rp_router *old = c->old_router;
    c->old_router = NULL;
    pthread_mutex_unlock(&c->mu);
    rp_router_free(old);
}

/*
 * The previous layout of a handoff that is on, kept in DATA/handoff.layout (pl_topology_encode's
 * document, written to a temporary file, synced, renamed over it, and the directory synced: a
 * crash at any point leaves the old file or the new one), so that a node restarted
 * during the handoff reads both home sets again rather than its new homes alone; NULL removes
 * the file (the handoff settled, or the new layout moved nothing). c->mu held: the follower
 * (adopt) and the maintenance thread (handoff) both write it. A failure is logged: the node then
 * only loses the handoff at its next restart.
 */
static void prev_save(cmd_cluster *c, const pl_topology *prev)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof(path), "%s/" HANDOFF_FILE, c->cfg.data_dir ? c->cfg.data_dir : ".");
    if (!prev) {
        if (unlink(path) == 0) /* synced: a crash must not bring back a handoff that settled */
            cm_sync_parent(path);
        else if (errno != ENOENT)
            CM_WARN(MOD, "cannot remove %s: %s", path, strerror(errno));
        return;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    char *buf = NULL;
    size_t len = 0;
    int ok = pl_topology_encode(prev, &buf, &len) == CM_OK, fd = -1;
    ok = ok && (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0;
    ok = ok && write(fd, buf, len) == (ssize_t)len && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    ok = ok && rename(tmp, path) == 0 && cm_sync_parent(path) == CM_OK;
    free(buf);
    if (!ok)
        CM_WARN(MOD, "cannot keep the handoff's previous layout in %s: %s", path, strerror(errno));
}

/* The previous layout prev_save kept, when it is older than epoch; else NULL. */
static pl_topology *prev_load(cmd_cluster *c, uint64_t epoch)
{
    char path[4200], err[256];
    snprintf(path, sizeof(path), "%s/" HANDOFF_FILE, c->cfg.data_dir ? c->cfg.data_dir : ".");
    struct stat sb;
    FILE *f = stat(path, &sb) == 0 && sb.st_size > 0 && sb.st_size < HANDOFF_FILE_MAX
                  ? fopen(path, "rb")
                  : NULL;
    if (!f)
        return NULL;
    size_t want = (size_t)sb.st_size;
    char *buf = malloc(want);
    size_t len = buf ? fread(buf, 1, want, f) : 0;
    fclose(f);
    pl_topology *t = NULL;
    if (len == want && pl_topology_decode(buf, len, &t, err, sizeof(err)) != CM_OK)
        CM_WARN(MOD, "%s ignored: %s", path, err);
    free(buf);
    if (t && t->epoch >= epoch) {
        pl_topology_free(t);
        t = NULL;
    }
    if (t)
        CM_INFO(MOD, "the handoff from layout epoch %llu was on at the last stop: resumed",
                (unsigned long long)t->epoch);
    return t;
}

/* Adopt t (borrowed): the object store, then the metadata router. Follower thread only. */
static void adopt(cmd_cluster *c, const pl_topology *t)
{
    cm_err e = ob_store_set_topology(gw_object_store(c->cfg.g), t);
    if (e != CM_OK)
        CM_WARN(MOD, "layout epoch %llu: the object store keeps its previous layout: %s",
                (unsigned long long)t->epoch, cm_err_str(e));
    /* the handoff from the layout this node served until now (docs/replication.md, "Layout
     * changes"); none at start, and none from a layout that is not older */
    pl_topology *prev = NULL;
    pthread_mutex_lock(&c->mu);
    int first = !c->topo;
    if (c->topo && c->topo->epoch < t->epoch)
        pl_topology_clone(c->topo, &prev);
    pthread_mutex_unlock(&c->mu);
    if (first) /* one that was on when this node stopped (prev_save) */
        prev = prev_load(c, t->epoch);
    router_job j = {.c = c, .t = t, .prev = prev};
    if (on_loop(c, make_router, &j) != 0 || j.err != CM_OK) {
        CM_WARN(MOD, "layout epoch %llu: no metadata router: %s", (unsigned long long)t->epoch,
                cm_err_str(j.err));
        pl_topology_free(prev);
        return;
    }
    cmd_cond_set_topology(c->cond, t);
    rp_set_router(c->coord, j.made); /* returns once no call uses the previous one */
    /* from now on this node refuses the calls of nodes still on an older layout (the RPC may
     * have raised the fence higher already, from a newer node's call) */
    uint64_t f = atomic_load(&c->fence);
    while (f < t->epoch && !atomic_compare_exchange_weak(&c->fence, &f, t->epoch))
        ;
    on_loop(c, free_old_router, c); /* the one before it: hint delivery moved on long ago */
    pthread_mutex_lock(&c->mu);     /* the handoff pass reads c->router under mu */
    c->old_router = c->router;
    c->router = j.made;
    c->adopted_ms = cm_monotonic_ms();
    prev_save(c, rp_router_handoff(j.made) ? prev : NULL);
    pthread_mutex_unlock(&c->mu);
    pl_topology_free(prev);
    on_loop(c, hints_to_router, c);
    pl_topology *copy = NULL;
    if (pl_topology_clone(t, &copy) == CM_OK) {
        pthread_mutex_lock(&c->mu);
        pl_topology_free(c->topo);
        c->topo = copy;
        c->epoch = t->epoch;
        c->layouts++;
        pthread_mutex_unlock(&c->mu);
    }
    /* in the member value: `layout apply` refuses the next change while a handoff is on */
    co_layout_report(c->cfg.layout, t->epoch, rp_router_handoff(j.made));
    CM_INFO(MOD, "adopted layout epoch %llu (%d nodes)", (unsigned long long)t->epoch, t->nnodes);
}

/* Wait up to ms for a stop; 1 when stopping. */
static int wait_stop(cmd_cluster *c, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping && pthread_cond_timedwait(&c->cv, &c->mu, &ts) == 0)
        ;
    int stop = c->stopping;
    pthread_mutex_unlock(&c->mu);
    return stop;
}

static void *follow_main(void *arg)
{
    cmd_cluster *c = arg;
    uint64_t have = 0;
    do {
        pl_topology *t = NULL;
        if (co_layout_current(c->cfg.layout, &t, NULL) == CM_OK && t->epoch != have) {
            adopt(c, t);
            have = t->epoch;
        }
        pl_topology_free(t);
        /* wakes as soon as the follower adopts a newer epoch (else every 250 ms) */
        co_layout_wait(c->cfg.layout, have + 1, 250);
    } while (!wait_stop(c, 0));
    return NULL;
}

/* ---- maintenance ---- */

/* Is this node the first home of (bucket, shard) in t? */
static int first_home(const pl_map *m, const pl_topology *t, const char *self, const char *bucket,
                      uint32_t shard)
{
    int homes[MD_REPLICAS];
    if (rp_homes(m, pl_partition_id(bucket, shard), MD_REPLICAS, homes) < 1)
        return 0;
    return strcmp(t->nodes[homes[0]].id, self) == 0;
}

static void antientropy(cmd_cluster *c)
{
    /* tombstones stamped before now - grace are collected where every home holds them */
    int64_t cutoff = cm_now_ms() - c->cfg.tombstone_grace_ms;
    uint64_t before = cutoff > 0 ? MD_HLC_MAKE(cutoff, 0) : 0;
    md_bucket *b = NULL;
    size_t nb = 0;
    pl_topology *t = NULL;
    pl_map *m = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->topo)
        pl_topology_clone(c->topo, &t);
    pthread_mutex_unlock(&c->mu);
    if (!t || pl_map_new(t, PL_MAP_HOMES, &m) != CM_OK ||
        md_bucket_list(gw_meta_store(c->cfg.g), &b, &nb) != CM_OK)
        goto out;
    for (size_t i = 0; i < nb && !wait_stop(c, 0); i++)
        for (uint32_t s = 0; s < NSHARDS; s++) {
            if (!first_home(m, t, c->self, b[i].name, s))
                continue;
            rp_ae_result res = {0};
            cm_err e = rp_antientropy_collect(c->coord, b[i].name, s, 0, AE_KEYS_MAX, before, &res);
            pthread_mutex_lock(&c->mu);
            c->ae_runs++;
            c->tombs_collected += res.tombs_collected;
            c->collect_skipped += res.collect_skipped;
            c->ae_repaired += res.keys_repaired;
            c->ae_unavailable += e == CM_ERR_UNAVAILABLE;
            pthread_mutex_unlock(&c->mu);
            if (res.keys_repaired)
                CM_INFO(MOD, "anti-entropy %s/%u: %zu keys repaired", b[i].name, s,
                        res.keys_repaired);
            if (res.tombs_collected)
                CM_INFO(MOD, "anti-entropy %s/%u: %zu tombstones collected", b[i].name, s,
                        res.tombs_collected);
        }
out:
    free(b);
    pl_map_free(m);
    pl_topology_free(t);
}

/*
 * The handoff (docs/replication.md, "Layout changes"). While the current router keeps the
 * previous layout, every partition whose homes it moved is read and written on quorums of both
 * home sets (rp_route_prev); here an anti-entropy run over both sets copies it to its new homes,
 * and a run that left nothing behind on any of them (res.complete) settles it: from then on this
 * node asks its new homes alone. Every node settles its own router (the decision needs no
 * agreement: a complete run shows that every version the previous homes held is on the new
 * ones), so every node runs these passes, not only first homes; a run over a partition that
 * another node already copied finds nothing to repair. Once a pass finds no partition moving,
 * the router drops the previous layout (no cost at all per request from then on). Not sooner
 * than HANDOFF_DELAY_MS after the adoption, and no partition while a live member does not report
 * serving the epoch (members_adopted): a node that has not adopted the new layout yet still
 * writes to the previous homes only; the fence refuses it once it is not a live member.
 */
/*
 * 1 when every live member reports serving epoch or a later one in its member value
 * (co_layout_report, after its coordinator moved to it: no call of an older layout is in flight
 * there), in a member list read in the last HANDOFF_MEMBERS_MS; else 0, with the first member
 * that does not named in who.
 */
static int members_adopted(cmd_cluster *c, uint64_t epoch, char *who, size_t cap)
{
    co_layout_status *st = malloc(sizeof(*st));
    int ok = 0;
    snprintf(who, cap, "(no fresh member list)");
    if (!st)
        return 0;
    co_layout_get_status(c->cfg.layout, st);
    if (st->members_read_ms > 0 && cm_now_ms() - st->members_read_ms <= HANDOFF_MEMBERS_MS &&
        st->nmembers <= CO_LAYOUT_MEMBERS) {
        ok = 1;
        for (int i = 0; ok && i < st->nseen; i++)
            if (st->seen[i].live && st->seen[i].epoch < epoch) {
                snprintf(who, cap, "%s (epoch %llu)", st->seen[i].id,
                         (unsigned long long)st->seen[i].epoch);
                ok = 0;
            }
    }
    free(st);
    return ok;
}

static void handoff(cmd_cluster *c) /* every HANDOFF_RETRY_MS while one is on (maint_main) */
{
    md_bucket *b = NULL;
    size_t nb = 0;
    char who[PL_NAME_MAX + 48];
    pthread_mutex_lock(&c->mu);
    rp_router *rt = c->router;
    uint64_t epoch = c->epoch;
    int on = rt && rp_router_handoff(rt) && cm_monotonic_ms() - c->adopted_ms >= HANDOFF_DELAY_MS;
    pthread_mutex_unlock(&c->mu);
    int members = -1; /* members_adopted, asked before the first partition that moves */
    if (!on || md_bucket_list(gw_meta_store(c->cfg.g), &b, &nb) != CM_OK)
        return;
    uint64_t moving = 0;
    int stopped = 0;
    for (size_t i = 0; i < nb && !(stopped = wait_stop(c, 0)); i++)
        for (uint32_t s = 0; s < NSHARDS; s++) {
            pthread_mutex_lock(&c->mu);
            int mv = c->router == rt && rp_router_moving(rt, b[i].name, s, MD_REPLICAS);
            pthread_mutex_unlock(&c->mu);
            if (!mv)
                continue;
            if (members < 0 && !(members = members_adopted(c, epoch, who, sizeof(who))))
                CM_DEBUG(MOD, "handoff to layout epoch %llu waits: live member %s not on it yet",
                         (unsigned long long)epoch, who);
            if (!members) {
                moving++;
                continue;
            }
            rp_ae_result res = {0};
            cm_err e = rp_antientropy_run(c->coord, b[i].name, s, 0, AE_KEYS_MAX, &res);
            pthread_mutex_lock(&c->mu);
            int done = e == CM_OK && res.complete && c->router == rt &&
                       rp_router_settle(rt, b[i].name, s) == CM_OK;
            c->handoff_settled += done;
            c->handoff_repaired += res.keys_repaired;
            moving += !done;
            pthread_mutex_unlock(&c->mu);
            if (done)
                CM_INFO(MOD, "handoff %s/%u settled (%zu keys copied)", b[i].name, s,
                        res.keys_repaired);
        }
    free(b);
    pthread_mutex_lock(&c->mu);
    if (c->router == rt && !stopped) {
        c->handoff_moving = moving;
        if (moving == 0) {
            rp_router_settle_all(rt);
            prev_save(c, NULL);
            co_layout_report(c->cfg.layout, c->epoch, 0);
            CM_INFO(MOD, "handoff to layout epoch %llu settled", (unsigned long long)c->epoch);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* CAIRN_RPC_FAULTS_FILE (tests): its rules replace the previous ones when the file changes. */
static void reload_faults(cmd_cluster *c)
{
    const char *path = getenv("CAIRN_RPC_FAULTS_FILE");
    struct stat sb;
    if (!path || !*path || stat(path, &sb) != 0)
        return;
    int64_t mt = (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
    if (mt == c->faults_mtime_ns)
        return;
    c->faults_mtime_ns = mt;
    char spec[4096];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(spec, 1, sizeof(spec) - 1, f) : 0;
    if (f)
        fclose(f);
    spec[n] = 0;
    while (n > 0 && (spec[n - 1] == '\n' || spec[n - 1] == ' '))
        spec[--n] = 0;
    nd_fault_clear(c->faults, NULL, NULL);
    if (n > 0 && nd_faults_parse(c->faults, spec) != CM_OK)
        CM_WARN(MOD, "CAIRN_RPC_FAULTS_FILE: malformed rules ignored: %s", spec);
    else
        CM_INFO(MOD, "RPC fault rules now: %s", n ? spec : "(none)");
}

/* The garbage reclaim's check of a repair's obsolete cells: the record at quorum, a tombstone
 * too (a Complete's tombstone of a part names the cells the object keeps: ob_gc.c). */
static cm_err gc_read(void *arg, const char *bucket, const char *key, md_object *out)
{
    cmd_cluster *c = arg;
    return rp_record_get(c->coord, bucket, key, out);
}

/*
 * The intents UploadParts of this node left (md_intent.c): each older than the grace period is
 * decided at quorum (rp_part_intent_decide) and either freed through a garbage record, which the
 * ob_gc_run after this frees, or dropped because a record owns its body. One that cannot be
 * decided stays for the next tick; after INTENT_FAILS such, the rest wait too (each may have
 * waited for a timeout).
 */
static void intents_run(cmd_cluster *c)
{
    md_store *md = gw_meta_store(c->cfg.g);
    int64_t now = cm_now_ms();
    md_intent *a = NULL;
    size_t n = 0, freed = 0, kept = 0, held = 0;
    int fails = 0;
    uint64_t before = MD_HLC_MAKE(now > c->cfg.gc_grace_ms ? now - c->cfg.gc_grace_ms : 0, 0);
    /* Older than half the tombstone grace: a Complete's tombstone of its record may be gone. */
    int64_t old_ms = now - c->cfg.tombstone_grace_ms / 2;
    cm_err e = md_intent_list(md, before, INTENTS_MAX, &a, &n);
    for (size_t i = 0; e == CM_OK && i < n && fails < INTENT_FAILS; i++) {
        int v = RP_INTENT_OWNED;
        int old = (int64_t)MD_HLC_MS(a[i].hlc) < old_ms;
        cm_err d = rp_part_intent_decide(c->coord, a[i].bucket, a[i].key, a[i].upload_id,
                                         a[i].number, a[i].id, a[i].layout.blob, old, &v);
        if (d == CM_ERR_INVAL) { /* not a part record's key: nothing can decide it */
            CM_ERROR(MOD, "intent of part %u of upload %s in %s cannot be decided: dropped",
                     a[i].number, a[i].upload_id, a[i].bucket);
            md_intent_drop(md, &a[i]);
            continue;
        }
        if (d == CM_OK && v == RP_INTENT_HELD) { /* kept for an operator: never freed blindly */
            CM_WARN(MOD,
                    "intent of part %u of upload %s of %s in %s: older than the tombstone grace "
                    "and no object names its body: held (docs/multipart-cluster.md)",
                    a[i].number, a[i].upload_id, a[i].key, a[i].bucket);
            held++;
            continue;
        }
        if (d == CM_OK)
            d = v == RP_INTENT_FREE ? md_intent_to_garbage(md, &a[i]) : md_intent_drop(md, &a[i]);
        if (d != CM_OK) {
            CM_WARN(MOD, "intent of part %u of upload %s in %s: %s (tried again later)",
                    a[i].number, a[i].upload_id, a[i].bucket, cm_err_str(d));
            fails++;
            continue;
        }
        CM_INFO(MOD, "intent of part %u of upload %s in %s: %s", a[i].number, a[i].upload_id,
                a[i].bucket,
                v == RP_INTENT_FREE ? "no record names its body: freed" : "a record owns its body");
        if (v == RP_INTENT_FREE)
            freed++;
        else
            kept++;
    }
    if (e != CM_OK)
        CM_WARN(MOD, "intents: %s", cm_err_str(e));
    md_intents_free(a, n);
    pthread_mutex_lock(&c->mu);
    c->intents_freed += freed;
    c->intents_kept += kept;
    c->intents_held = held;
    pthread_mutex_unlock(&c->mu);
}

static void *maint_main(void *arg)
{
    cmd_cluster *c = arg;
    int64_t tick = c->cfg.maint_ms > 0 ? c->cfg.maint_ms : CLUSTER_TICK_MS;
    int64_t next = cm_now_ms() + tick;
    while (!wait_stop(c, FAULTS_POLL_MS)) {
        reload_faults(c);
        if (cm_monotonic_ms() - c->handoff_ms >= HANDOFF_RETRY_MS) {
            c->handoff_ms = cm_monotonic_ms();
            handoff(c); /* returns at once unless a handoff is on and past its delay */
        }
        if (cm_now_ms() < next)
            continue;
        uint64_t freed = 0;
        intents_run(c); /* before the reclaim: a body decided free goes in this very run */
        cm_err e = ob_gc_run(gw_object_store(c->cfg.g), gw_meta_store(c->cfg.g), cm_now_ms(),
                             c->cfg.gc_grace_ms, GC_BATCH_MAX, gc_read, c, &freed);
        if (e != CM_OK)
            CM_WARN(MOD, "garbage reclaim: %s", cm_err_str(e));
        pthread_mutex_lock(&c->mu);
        c->gc_freed += freed;
        pthread_mutex_unlock(&c->mu);
        antientropy(c);
        next = cm_now_ms() + tick;
    }
    return NULL;
}

/* ---- start and stop ---- */

/* Partition leaders for conditional writes; they talk to etcd on the first such write only. */
static cm_err cond_new(cmd_cluster *c)
{
    if (!c->cfg.etcd || !c->cfg.etcd[0])
        return CM_OK; /* no etcd: conditional writes are decided by this node alone */
    cmd_cond_config cc = {.self = c->self,
                          .etcd = c->cfg.etcd,
                          .cluster = c->cfg.cluster_id ? c->cfg.cluster_id : "",
                          .nshards = NSHARDS};
    return cmd_cond_new(&cc, &c->cond);
}

uint32_t cmd_cluster_node_number(const char *node_id)
{
    uint32_t h = 2166136261u; /* FNV-1a: the same number on every node and every run */
    for (const unsigned char *s = (const unsigned char *)node_id; *s; s++)
        h = (h ^ *s) * 16777619u;
    return h ? h : 1;
}

cm_err cmd_cluster_new(const cmd_cluster_config *cfg, cmd_cluster **out)
{
    cmd_cluster *c = calloc(1, sizeof(*c));
    *out = NULL;
    if (!c)
        return CM_ERR_NOMEM;
    c->cfg = *cfg;
    if (c->cfg.tombstone_grace_ms <= 0)
        c->cfg.tombstone_grace_ms = TOMB_GRACE_MS;
    snprintf(c->self, sizeof(c->self), "%s", cfg->node_id);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    md_hlc_init(&c->clock, cmd_cluster_node_number(c->self), NULL, NULL);
    c->have_clock = 1;
    cm_err e = nd_faults_new(&c->faults);
    const char *spec = getenv("CAIRN_RPC_FAULTS");
    if (e == CM_OK && spec && *spec && (e = nd_faults_parse(c->faults, spec)) != CM_OK)
        fprintf(stderr, "cairn: CAIRN_RPC_FAULTS is malformed\n");
    if (e == CM_OK)
        e = cond_new(c);
    if (e != CM_OK) {
        cmd_cluster_free(c);
        return e;
    }
    *out = c;
    return CM_OK;
}

struct cmd_cond *cmd_cluster_cond(cmd_cluster *c)
{
    return c->cond;
}

md_hlc *cmd_cluster_clock(cmd_cluster *c)
{
    return &c->clock;
}

_Atomic uint64_t *cmd_cluster_fence(cmd_cluster *c)
{
    return &c->fence;
}

static void loop_setup(void *arg)
{
    cmd_cluster *c = arg;
    rp_hints_config hc = {.base = c->base,
                          .md = gw_meta_store(c->cfg.g),
                          .work = c->work,
                          .nshards = NSHARDS,
                          .max_age_ms = c->cfg.tombstone_grace_ms};
    nd_client_config cc = {.node_id = c->self,
                           .secret = c->cfg.secret,
                           .secret_len = c->cfg.secret_len,
                           .faults = c->faults};
    cc.net.max_conns = MD_CONNS;
    cc.net.tls = c->cfg.tls;
    cm_err e = nd_client_new(c->base, &cc, &c->cl);
    if (e == CM_OK)
        e = rp_replica_local_new(c->base, gw_meta_store(c->cfg.g), c->work, c->self, &c->local);
    if (e == CM_OK) {
        rp_replica_local_set_clock(c->local, &c->clock);
        md_hint_set_max(gw_meta_store(c->cfg.g), c->cfg.hints_max);
        e = rp_hints_new(&hc, &c->hints);
    }
    if (e != CM_OK)
        CM_ERROR(MOD, "cannot set up the metadata replicas: %s", cm_err_str(e));
}

cm_err cmd_cluster_run(cmd_cluster *c, co_layout *layout,
                       rp_consistency (*consistency)(void *, const char *), void *consistency_arg)
{
    c->cfg.layout = layout;
    ob_cluster_config oc = {.self = c->self,
                            .secret = c->cfg.secret,
                            .secret_len = c->cfg.secret_len,
                            .rpc_tls = c->cfg.tls,
                            .faults = c->faults};
    cm_err e = ob_store_cluster_start(gw_object_store(c->cfg.g), &oc);
    if (e != CM_OK) {
        fprintf(stderr, "cairn: cannot put the object store in cluster mode: %s\n", cm_err_str(e));
        return e;
    }
    evthread_use_pthreads();
    if (!(c->base = event_base_new()) ||
        !(c->keepalive = event_new(c->base, -1, EV_PERSIST, keepalive_cb, NULL)))
        return CM_ERR_NOMEM;
    struct timeval hour = {3600, 0};
    event_add(c->keepalive, &hour);
    if ((e = nd_work_new(MD_WORKERS, &c->work)) != CM_OK)
        return e;
    if (pthread_create(&c->loop_thread, NULL, loop_main, c) != 0)
        return CM_ERR_NOMEM;
    c->loop_running = 1;
    on_loop(c, loop_setup, c);
    if (!c->cl || !c->local || !c->hints)
        return CM_ERR_UNAVAILABLE;
    rp_config rc = {.base = c->base,
                    .route = route,
                    .clock = &c->clock,
                    .node = cmd_cluster_node_number(c->self),
                    .n = MD_REPLICAS,
                    .nshards = NSHARDS,
                    .consistency = consistency,
                    .consistency_arg = consistency_arg,
                    .cond_run = c->cond ? cmd_cond_run : NULL,
                    .cond_arg = c->cond,
                    .route_prev = route_prev};
    if ((e = rp_new(&rc, &c->coord)) != CM_OK) {
        fprintf(stderr, "cairn: cannot start the metadata coordinator: %s\n", cm_err_str(e));
        return e;
    }
    cmd_cond_set_coord(c->cond, c->coord, c->base, c->cl);
    gw_set_repl(c->cfg.g, c->coord);
    if (pthread_create(&c->follow_thread, NULL, follow_main, c) != 0)
        return CM_ERR_NOMEM;
    c->follow_running = 1;
    if (pthread_create(&c->maint_thread, NULL, maint_main, c) != 0)
        return CM_ERR_NOMEM;
    c->maint_running = 1;
    cmd_repair_config pc = {.node_id = c->self,
                            .secret = c->cfg.secret,
                            .secret_len = c->cfg.secret_len,
                            .faults = c->faults,
                            .tls = c->cfg.tls,
                            .g = c->cfg.g,
                            .layout = layout,
                            .coord = c->coord,
                            .nshards = NSHARDS,
                            .nreplicas = MD_REPLICAS,
                            .data_dir = c->cfg.data_dir ? c->cfg.data_dir : ".",
                            .mbps = c->cfg.repair_mbps,
                            .interval_s = c->cfg.repair_interval_s,
                            .full_interval_s = c->cfg.repair_full_interval_s,
                            .gc_grace_s = c->cfg.gc_grace_ms / 1000};
    return cmd_repair_start(&pc, &c->repair);
}

/* ---- lifecycle: the partitions this node applies rules to ---- */

#define LC_VIEW_MS 1000 /* the member list changes once a refresh (a second) at most */

/* The lifecycle view of the adopted layout and of the member list, refreshed when older than
 * LC_VIEW_MS; 1 when usable (a layout, a fresh member list). */
static int lc_view(cmd_cluster *c)
{
    int64_t now = cm_monotonic_ms();
    if (c->lc_homes && now - c->lc_ms < LC_VIEW_MS)
        return c->lc_fresh;
    c->lc_ms = now;
    c->lc_fresh = 0;
    pl_topology *t = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->topo)
        pl_topology_clone(c->topo, &t);
    pthread_mutex_unlock(&c->mu);
    if (!t)
        return 0;
    if (c->lc_topo && c->lc_topo->epoch == t->epoch) {
        pl_topology_free(t);
    } else {
        pl_map *m = NULL;
        uint8_t *dead = calloc((size_t)t->nnodes + 1, 1);
        if (!dead || pl_map_new(t, PL_MAP_HOMES, &m) != CM_OK) {
            free(dead);
            pl_topology_free(t);
            return 0;
        }
        pl_map_free(c->lc_homes);
        pl_topology_free(c->lc_topo);
        free(c->lc_dead);
        c->lc_topo = t, c->lc_homes = m, c->lc_dead = dead;
    }
    c->lc_fresh = cmd_dead_nodes(c->cfg.layout, c->lc_topo, c->lc_dead);
    return c->lc_fresh;
}

int cmd_cluster_first_live_home(void *arg, const char *bucket, const char *key)
{
    cmd_cluster *c = arg;
    int homes[MD_REPLICAS];
    if (!lc_view(c))
        return 0;
    int n = rp_homes(c->lc_homes, pl_partition_id(bucket, rp_shard_of(key, NSHARDS)), MD_REPLICAS,
                     homes);
    for (int i = 0; i < n; i++)
        if (!c->lc_dead[homes[i]])
            return strcmp(c->lc_topo->nodes[homes[i]].id, c->self) == 0;
    return 0;
}

cmd_repair *cmd_cluster_repair(cmd_cluster *c)
{
    return c ? c->repair : NULL;
}

/* Free hint delivery once no round is in flight (a round calls the routers' replicas). */
static void hints_free_if_idle(void *arg)
{
    cmd_cluster *c = arg;
    if (c->hints && !rp_hints_busy(c->hints)) {
        rp_hints_free(c->hints);
        c->hints = NULL;
    }
}

static void loop_teardown2(void *arg)
{
    cmd_cluster *c = arg;
    rp_router_free(c->old_router);
    rp_router_free(c->router);
    c->old_router = c->router = NULL;
    rp_replica_free(c->local);
    c->local = NULL;
    nd_client_free(c->cl);
    c->cl = NULL;
}

void cmd_cluster_stop(cmd_cluster *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->follow_running)
        pthread_join(c->follow_thread, NULL);
    if (c->maint_running)
        pthread_join(c->maint_thread, NULL);
    cmd_repair_stop(c->repair); /* it calls the coordinator */
    c->repair = NULL;
    if (c->coord) {
        gw_set_repl(c->cfg.g, NULL);
        cmd_cond_set_coord(c->cond, NULL, NULL, NULL);
        rp_free(c->coord); /* waits for its calls, which need the loop */
    }
    cmd_cond_free(c->cond); /* gives up its leaderships at once */
    c->cond = NULL;
    if (c->loop_running) {
        /* A round ends within its RPC timeouts; its completions need the loop running. */
        while (c->hints && on_loop(c, hints_free_if_idle, c) == 0 && c->hints)
            nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
        on_loop(c, loop_teardown2, c);
        event_base_loopbreak(c->base);
        pthread_join(c->loop_thread, NULL);
    }
    if (c->keepalive)
        event_free(c->keepalive);
    if (c->base)
        event_base_free(c->base);
    c->keepalive = NULL, c->base = NULL, c->coord = NULL;
    c->loop_running = c->follow_running = c->maint_running = 0;
    nd_work_free(c->work);
    c->work = NULL;
}

void cmd_cluster_free(cmd_cluster *c)
{
    if (!c)
        return;
    cmd_cluster_stop(c);
    nd_faults_free(c->faults);
    pl_topology_free(c->topo);
    pl_map_free(c->lc_homes);
    pl_topology_free(c->lc_topo);
    free(c->lc_dead);
    if (c->have_clock)
        md_hlc_release(&c->clock);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ---- status ---- */

/* The "cond" member (conditional writes, cluster_cond.c) after the n bytes of out. */
static int cond_status(cmd_cluster *c, char *out, size_t cap, size_t n)
{
    cmd_cond_stats cs;
    cmd_cond_get_stats(c->cond, &cs);
    int m = snprintf(out + n, cap - n,
                     ",\"cond\":{\"led\":%llu,\"forwarded\":%llu,\"refused\":%llu,"
                     "\"no_leader\":%llu,\"etcd_reads\":%llu}",
                     (unsigned long long)cs.led, (unsigned long long)cs.forwarded,
                     (unsigned long long)cs.refused, (unsigned long long)cs.no_leader,
                     (unsigned long long)cs.etcd_reads);
    return m > 0 && (size_t)m < cap - n ? (int)n + m : -1;
}

size_t cmd_cluster_status(cmd_cluster *c, char *out, size_t cap)
{
    rp_stats rs = {0};
    rp_hints_stats hs = {0};
    ob_cluster_stats os = {0};
    if (!c || !c->coord)
        return 0;
    rp_get_stats(c->coord, &rs);
    if (c->hints)
        rp_hints_get_stats(c->hints, &hs);
    ob_store_cluster_stats(gw_object_store(c->cfg.g), &os);
    pthread_mutex_lock(&c->mu);
    int n = snprintf(
        out, cap,
        "\"replication\":{\"epoch\":%llu,\"layouts\":%llu,\"gets\":%llu,\"puts\":%llu,"
        "\"deletes\":%llu,\"lists\":%llu,\"unavailable\":%llu,\"read_repairs\":%llu,"
        "\"hints_written\":%llu,\"hints_delivered\":%llu,\"hints_failed\":%llu,"
        "\"ae_runs\":%llu,\"ae_repaired\":%llu,\"ae_unavailable\":%llu,\"gc_freed\":%llu,"
        "\"tombs_collected\":%llu,\"collect_skipped\":%llu,\"hints_expired\":%llu,"
        "\"hints_refused\":%llu,\"hints_rehomed\":%llu,\"intents_freed\":%llu,"
        "\"intents_kept\":%llu,\"intents_held\":%llu,\"handoff_active\":%d,"
        "\"handoff_moving\":%llu,\"handoff_settled\":%llu,\"handoff_copied\":%llu,"
        "\"stale_retries\":%llu},"
        "\"data\":{\"epoch\":%llu,\"k\":%d,\"m\":%d,\"bodies\":%llu,\"bytes_written\":%llu,"
        "\"reads\":%llu,\"reads_on_loops\":%llu,\"cells_batched\":%llu,"
        "\"cells_appended_batched\":%llu,\"handoffs\":%llu,\"cells_dropped\":%llu,"
        "\"hedges\":%llu,"
        "\"reads_degraded\":%llu}",
        (unsigned long long)c->epoch, (unsigned long long)c->layouts, (unsigned long long)rs.gets,
        (unsigned long long)rs.puts, (unsigned long long)rs.deletes, (unsigned long long)rs.lists,
        (unsigned long long)rs.unavailable, (unsigned long long)rs.read_repairs,
        (unsigned long long)rs.hints_written, (unsigned long long)hs.delivered,
        (unsigned long long)hs.failed, (unsigned long long)c->ae_runs,
        (unsigned long long)c->ae_repaired, (unsigned long long)c->ae_unavailable,
        (unsigned long long)c->gc_freed, (unsigned long long)c->tombs_collected,
        (unsigned long long)c->collect_skipped, (unsigned long long)hs.expired,
        (unsigned long long)md_hint_refused(gw_meta_store(c->cfg.g)),
        (unsigned long long)hs.rehomed, (unsigned long long)c->intents_freed,
        (unsigned long long)c->intents_kept, (unsigned long long)c->intents_held,
        rp_router_handoff(c->router), (unsigned long long)c->handoff_moving,
        (unsigned long long)c->handoff_settled, (unsigned long long)c->handoff_repaired,
        (unsigned long long)rs.stale_retries, (unsigned long long)os.epoch, os.k, os.m,
        (unsigned long long)os.bodies, (unsigned long long)os.bytes_written,
        (unsigned long long)os.reads, (unsigned long long)os.reads_on_loops,
        (unsigned long long)os.cells_batched, (unsigned long long)os.cells_appended_batched,
        (unsigned long long)os.handoffs, (unsigned long long)os.cells_dropped,
        (unsigned long long)os.hedges, (unsigned long long)os.reads_degraded);
    pthread_mutex_unlock(&c->mu);
    if (n <= 0 || (size_t)n >= cap)
        return 0;
    size_t m = cmd_repair_status(c->repair, out + n + 1, cap - (size_t)n - 1);
    if (m > 0) {
        out[n] = ',';
        n += 1 + (int)m;
    }
    if ((size_t)n < cap && c->cond)
        n = cond_status(c, out, cap, (size_t)n);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
