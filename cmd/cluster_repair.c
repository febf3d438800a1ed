/*
 * cmd/cluster_repair.c - the repair pass of a cluster node (issue 9, section 2.9; docs/chunks.md,
 * "Repair in a running cluster"): a thread of its own that runs ob_repair over this node's
 * md_store, and the admin routes that report and trigger it (/admin/repair) and show one body's
 * cells (/admin/object-cells). It owns the cluster-wide orphan sweep behind /admin/orphans
 * (cmd/cluster_orphans.c).
 *
 * The thread owns an event loop, an RPC client (the cluster secret and the node's fault rules)
 * and a local chunk backend over the store's drives; each pass gets a resolver, a homes map and
 * a liveness view (node_dead: nodes of the layout missing from the last member list) of the
 * layout adopted when it starts; mine() refreshes the view as the pass goes (at most every
 * LIVENESS_MS). A pass runs when the adopted epoch changes, when a node of the layout
 * reappears in the member list (down, then back), when asked (POST /admin/repair), once the
 * first layout is there (this node may just have come back; it waits until every node of the
 * layout is listed, or START_WAIT_TTLS member lease TTLs), and every interval_s ([cluster]
 * repair_interval_s; 0 = on events only). Those passes stat every cell; an interval pass does so
 * only when full_interval_s ([cluster] repair_full_interval_s) went by since the last full pass
 * ended with no heal failed, and otherwise checks layouts only (OB_HEAL_LAYOUT_ONLY: a body whose
 * cells all sit at homes that are up on live nodes is not stat'ed; ~450 us of CPU per healthy 1 MiB
 * body saved, docs/chunks.md). The thread looks for events every second. No pass runs, and a
 * running one stops, while the member list is older than half the member lease TTL (etcd
 * unreachable from here: another node may heal this node's partitions by then); the pass held back
 * runs once the list is fresh again.
 *
 * Who heals a record: every replica of a partition holds the same records, so only one node
 * heals each: the first home of the record's partition (rp_homes over the homes map, of
 * pl_partition_id(bucket, rp_shard_of(key))) that the member list shows live, so the bodies of a
 * partition whose first home is down are healed by its second. Around a change of the member
 * list two nodes can still heal one body at once (a node back while its second home's heal of
 * one of its bodies runs): ob_repair reads back the cells a swap put in and heals again when the
 * other heal deleted or replaced one (docs/chunks.md, "Two heals of one body"). The new layout goes
 * to the replicated record (rp_object_swap_layout: the partition's leader reads the record again
 * and replaces the part's layout there, when the part still names exactly the layout healed): a
 * swap in this store alone would leave the other replicas naming cells the heal then deletes. The
 * swap keeps the stamp of the version the leader read, and every other field of it (a retention or
 * hold set since the pass read the record stays), so it supersedes that version and loses to any
 * write it did not read. Before the pass deletes a chunk it reads the record again (current):
 * none the record names is deleted unless it names the layout the step assumed. The old places
 * a swap leaves are not deleted then (defer_obsolete): a GET elsewhere may still read the old
 * layout; they become a garbage record in this node's store, freed gc_grace_s later by the
 * maintenance thread (ob_gc_run, cluster.c), which skips any the record read at quorum names
 * again by then. The swap needs the partition's leader: without one (etcd unreachable) it fails
 * as unavailable, as a swap without its quorum does (both sets of cells stay; a later pass heals
 * what the record names).
 *
 * Pacing: [cluster] repair_mbps (default 100) bounds the cell bytes the heals read per second
 * (the pacer sleeps on the repair loop, which is why the loop is the thread's own); 0 = unpaced.
 * The pass's cursor lives in DATA/repair.cursor, so a pass stopped at shutdown resumes there.
 * Disk bandwidth, for the share the status shows, is measured once when the thread starts: 8 MiB
 * written in 1 MiB pieces to a file in the data directory, one fdatasync, deleted.
 *
 * Threading: the repair thread runs the passes; status and trigger are called from the
 * gateway's workers and loops and only take the mutex; object-cells runs on a worker with a
 * short-lived loop, client and backend of its own (an admin call, not a hot path).
 */
#include "cmd.h"

#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "cm_log.h"
#include "cm_metrics.h"
#include "cm_util.h"
#include "co_layout.h"
#include "nd.h"
#include "ob.h"
#include "ob_heal.h"
#include "rp.h"

#define MOD "repair"
#define EVENT_POLL_MS 1000 /* layout and member list checked this often */
#define BENCH_BYTES (8u << 20)
#define LIVENESS_MS 100   /* the pass's liveness view is refreshed this often at most */
#define START_WAIT_TTLS 3 /* the first pass waits this many member TTLs at most for the list */
/* The reason of an interval pass that checks layouts only (compared by address). */
static const char INTERVAL_LAYOUTS[] = "interval, layouts only";

struct cmd_repair {
    cmd_repair_config cfg;
    char self[PL_NAME_MAX];
    char data_dir[4096];
    char state_path[4200];
    pthread_t thread;
    int running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    int stopping;
    int broken;            /* the thread could not start: no passes (a POST answers 503) */
    uint64_t want, passes; /* the pass a POST waits for (want > passes: pending), passes ended */
    ob_repair *cur;        /* the pass running */
    ob_repair_status last; /* of the last pass that ended */
    char reason[32];       /* why the current or last pass started */
    int64_t start_ms, end_ms;
    double disk_mbps;   /* measured at start; 0 unknown */
    double heal_mbps;   /* of the last pass that rebuilt something; 0 none yet */
    double drive_bytes; /* capacity of this node's first drive (the durability's data/drive) */
    /* the repair thread's own */
    struct event_base *base;
    nd_client *cl;
    ob_chunks *local;
    nd_drive drives[ND_MAX_DRIVES];
    int ndrives;
    int64_t pace_t0;
    uint64_t pace_bytes;
    int stale_warned;     /* a pass waits for a fresh member list (logged once) */
    int64_t thread_ms;    /* monotonic: when the repair thread started */
    int64_t full_ms;      /* monotonic start of the last full pass that ran to its end with no heal
                           * failed; 0 none; the repair thread's */
    cmd_orphans *orphans; /* the orphan sweep (cmd/cluster_orphans.c), behind /admin/orphans */
};

/* The layout of one pass, for mine(). */
typedef struct {
    cmd_repair *c;
    const pl_topology *t;
    const pl_map *homes;
    uint8_t *dead;   /* the pass's liveness view (the heals' node_dead), refreshed by mine */
    int64_t dead_ms; /* when it was refreshed (monotonic) */
    ob_repair *pass; /* stopped by mine when the member list went stale */
    int stale;       /* it did */
} pass_ctx;

/* ---- liveness ---- */

/* The member lease TTL st's members were read with, in ms. */
static int64_t status_ttl_ms(const co_layout_status *st)
{
    return (int64_t)(st->ttl_s > 0 ? st->ttl_s : CO_LAYOUT_TTL) * 1000;
}

/*
 * dead[i] = node i of t is not in the last member list read (nnodes bytes); none before the
 * first list was read (a node just started knows nothing yet: that is not everyone down).
 * Returns 1 when that list is fresh: read less than half the member lease TTL ago. An older one
 * (etcd unreachable from here) may miss a node that came back and took over records, or show
 * live one whose records another node heals already: no heal on it (two nodes healing one body
 * delete each other's cells).
 */
int cmd_dead_nodes(co_layout *l, const pl_topology *t, uint8_t *dead)
{
    co_layout_status *st = malloc(sizeof(*st));
    memset(dead, 0, (size_t)t->nnodes);
    if (!st)
        return 0;
    co_layout_get_status(l, st);
    for (int i = 0; st->members_read_ms > 0 && i < t->nnodes; i++) {
        int live = 0;
        for (int j = 0; j < st->nmembers && j < CO_LAYOUT_MEMBERS && !live; j++)
            live = strcmp(st->members[j], t->nodes[i].id) == 0;
        dead[i] = !live;
    }
    int64_t age = cm_now_ms() - st->members_read_ms;
    int fresh = st->members_read_ms > 0 && age < status_ttl_ms(st) / 2;
    free(st);
    return fresh;
}

/* The member lease TTL the layout watcher reads members with, in ms. */
static int64_t member_ttl_ms(co_layout *l)
{
    co_layout_status *st = malloc(sizeof(*st));
    int64_t ttl_ms = (int64_t)CO_LAYOUT_TTL * 1000;
    if (st) {
        co_layout_get_status(l, st);
        ttl_ms = status_ttl_ms(st);
        free(st);
    }
    return ttl_ms;
}

/* ---- the hooks of the pass ---- */

static int mine(void *arg, const char *bucket, const char *key)
{
    pass_ctx *p = arg;
    int homes[PL_MAX_CELLS];
    /* The member list changes once a refresh (a second) at most: a look per record, at most
     * every LIVENESS_MS, keeps the view as fresh as the list without copying it per record. */
    int64_t now = cm_monotonic_ms();
    if (now - p->dead_ms >= LIVENESS_MS) {
        p->dead_ms = now;
        if (!cmd_dead_nodes(p->c->cfg.layout, p->t, p->dead)) {
            CM_WARN(MOD, "the member list is stale (etcd unreachable?): repair pass stopped");
            p->stale = 1;
            ob_repair_stop(p->pass); /* ends before the next record; the cursor stays */
            return 0;
        }
    }
    uint64_t part = pl_partition_id(bucket, rp_shard_of(key, p->c->cfg.nshards));
    int n = rp_homes(p->homes, part, p->c->cfg.nreplicas, homes);
    for (int i = 0; i < n; i++)
        if (!p->dead[homes[i]])
            return strcmp(p->t->nodes[homes[i]].id, p->c->self) == 0;
    return 0;
}

/* The record read at quorum and its part's layout (CM_ERR_NOTFOUND: no such part stored over
 * nodes). */
static cm_err read_part(pass_ctx *p, const char *bucket, const char *key, size_t part, md_object *o)
{
    memset(o, 0, sizeof(*o));
    cm_err e = rp_object_get(p->c->cfg.coord, bucket, key, o);
    if (e == CM_OK && (part >= o->nparts || MD_PART_INLINE(&o->parts[part])))
        e = CM_ERR_NOTFOUND;
    if (e != CM_OK)
        md_object_release(o);
    return e;
}

static cm_err current(void *arg, const char *bucket, const char *key, size_t part, md_layout *out)
{
    md_object o;
    cm_err e = read_part(arg, bucket, key, part, &o);
    if (e == CM_OK)
        *out = o.parts[part].layout;
    md_object_release(&o);
    return e;
}

/*
 * The part's layout old -> lay in the replicated record, if the record read at quorum names
 * exactly old (another node's heal may have swapped first: CM_ERR_CONFLICT). The swap itself runs
 * on the partition's leader (rp_object_swap_layout), which checks old again on its own read under
 * the key's lock and replaces only the layout there: a retention, hold, tag or ACL change that
 * landed since this read stays, and a PUT or DELETE that came first wins (docs/chunks.md, "Where
 * the new layout goes"; docs/object-lock.md, "On a cluster").
 */
static cm_err swap(void *arg, const char *bucket, const char *key, size_t part,
                   const md_layout *old, const md_layout *lay)
{
    pass_ctx *p = arg;
    md_object o;
    cm_err e = read_part(p, bucket, key, part, &o);
    if (e == CM_ERR_NOTFOUND)
        return CM_ERR_CONFLICT;
    if (e != CM_OK)
        return e;
    if (!ob_layout_same_cells(&o.parts[part].layout, old)) {
        md_object_release(&o);
        return CM_ERR_CONFLICT;
    }
    o.parts[part].layout = *lay;
    e = rp_object_swap_layout(p->c->cfg.coord, bucket, &o, part, old);
    md_object_release(&o);
    /* a bucket no replica knows: nothing took it; CM_ERR_CONFLICT is the leader's refusal (nothing
     * written); any other failure may have left the write on a replica (the pass keeps the new
     * cells) */
    return e == CM_ERR_NOTFOUND ? CM_ERR_CONFLICT : e;
}

static int stopping(cmd_repair *c)
{
    pthread_mutex_lock(&c->mu);
    int s = c->stopping;
    pthread_mutex_unlock(&c->mu);
    return s;
}

/* Hold repair_mbps over the pass: sleep (in short steps, so a stop is seen) when ahead. */
static int pace(void *arg, uint64_t n)
{
    cmd_repair *c = arg;
    if (stopping(c))
        return 1;
    if (c->cfg.mbps <= 0)
        return 0;
    c->pace_bytes += n;
    double due_ms = (double)c->pace_bytes / (c->cfg.mbps * 1e6) * 1e3;
    for (;;) {
        double ahead = due_ms - (double)(cm_monotonic_ms() - c->pace_t0);
        if (ahead <= 0)
            return 0;
        if (stopping(c))
            return 1;
        long ms = ahead > 50 ? 50 : (long)ahead + 1;
        nanosleep(&(struct timespec){0, ms * 1000000L}, NULL);
    }
}

/* ---- one pass ---- */

/* One pass; 0 when it did not run or was stopped because the member list is stale (it runs
 * again once the list is fresh). */
static int run_pass(cmd_repair *c, const char *reason, int layout_only)
{
    int stale = 0;
    pl_topology *t = NULL;
    pl_map *homes = NULL;
    ob_resolver *r = NULL;
    ob_repair *pass = NULL;
    uint8_t *dead = NULL;
    if (co_layout_current(c->cfg.layout, &t, NULL) != CM_OK)
        return 1;
    cm_err e = pl_map_new(t, PL_MAP_HOMES, &homes);
    if (e == CM_OK && !(dead = calloc((size_t)t->nnodes + 1, 1)))
        e = CM_ERR_NOMEM;
    if (e == CM_OK)
        e = ob_resolver_new(t, c->self, c->local, c->cl, &r);
    if (e != CM_OK)
        goto out;
    pass_ctx pc = {c, t, homes, dead, cm_monotonic_ms(), NULL, 0};
    if (!cmd_dead_nodes(c->cfg.layout, t, dead)) {
        if (!c->stale_warned)
            CM_WARN(MOD, "repair pass (%s) waits: the member list is stale (etcd unreachable?)",
                    reason);
        c->stale_warned = stale = 1;
        goto out;
    }
    c->stale_warned = 0;
    ob_pacer pacer = {pace, NULL, c};
    ob_repair_config rc = {.md = gw_meta_store(c->cfg.g),
                           .r = r,
                           .base = c->base,
                           .topo = t,
                           .homes = homes,
                           .node_dead = dead,
                           .state_path = c->state_path,
                           .pacer = &pacer,
                           .flags = layout_only ? OB_HEAL_LAYOUT_ONLY : 0,
                           .mine = mine,
                           .swap = swap,
                           .current = current,
                           .defer_obsolete = 1,
                           .hook_arg = &pc};
    if ((e = ob_repair_new(&rc, &pass)) != CM_OK)
        goto out;
    pc.pass = pass;
    pthread_mutex_lock(&c->mu);
    int stop = c->stopping;
    if (!stop) {
        c->cur = pass;
        snprintf(c->reason, sizeof(c->reason), "%s", reason);
        c->start_ms = cm_now_ms();
    }
    pthread_mutex_unlock(&c->mu);
    if (stop)
        goto out;
    c->pace_t0 = cm_monotonic_ms();
    c->pace_bytes = 0;
    int64_t started = c->pace_t0;
    CM_INFO(MOD, "repair pass (%s) over layout epoch %llu", reason, (unsigned long long)t->epoch);
    e = ob_repair_run(pass);
    stale = pc.stale;
    pthread_mutex_lock(&c->mu);
    ob_repair_status_get(pass, &c->last);
    c->cur = NULL;
    c->end_ms = cm_now_ms();
    c->passes++;
    if (c->last.mbps > 0)
        c->heal_mbps = c->last.mbps;
    uint64_t failed = c->last.failed;
    pthread_mutex_unlock(&c->mu);
    /* A full pass some of whose heals failed (a node unreachable then) is run again at the next
     * interval (full_ms is this thread's own). */
    if (e == CM_OK && !stale && !layout_only && failed == 0)
        c->full_ms = started;
    CM_INFO(MOD,
            "repair pass (%s) %s: %llu records, %llu bodies (%llu on their layout alone), %llu "
            "degraded, %llu healed, %llu failed, %llu cells, %.1f MB/s",
            reason, e == CM_OK ? "done" : cm_err_str(e), (unsigned long long)c->last.scanned,
            (unsigned long long)c->last.parts, (unsigned long long)c->last.trusted,
            (unsigned long long)c->last.degraded, (unsigned long long)c->last.healed,
            (unsigned long long)c->last.failed, (unsigned long long)c->last.cells, c->last.mbps);
out:
    if (e != CM_OK && e != CM_ERR_CLOSED)
        CM_WARN(MOD, "repair pass (%s): %s", reason, cm_err_str(e));
    ob_repair_free(pass);
    ob_resolver_free(r);
    free(dead);
    pl_map_free(homes);
    pl_topology_free(t);
    return !stale;
}

/* ---- the thread ---- */

/* Write BENCH_BYTES in 1 MiB pieces and sync: MB/s of this data directory's disk (0 unknown). */
static double measure_disk(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/repair-disk-bench.tmp", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char *buf = malloc(1u << 20);
    double mbps = 0;
    if (fd >= 0 && buf) {
        memset(buf, 0xA5, 1u << 20);
        int64_t t0 = cm_monotonic_ms();
        int ok = 1;
        for (unsigned off = 0; ok && off < BENCH_BYTES; off += 1u << 20)
            ok = write(fd, buf, 1u << 20) == (ssize_t)(1u << 20);
        ok = ok && fdatasync(fd) == 0;
        int64_t ms = cm_monotonic_ms() - t0;
        if (ok)
            mbps = (double)BENCH_BYTES / 1e6 / ((double)(ms > 0 ? ms : 1) / 1e3);
    }
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    free(buf);
    return mbps;
}

static cm_err thread_setup(cmd_repair *c)
{
    ob_store *st = gw_object_store(c->cfg.g);
    nd_client_config cc = {0};
    cc.node_id = c->self;
    cc.secret = c->cfg.secret;
    cc.secret_len = c->cfg.secret_len;
    cc.faults = c->cfg.faults;
    cc.net.tls = c->cfg.tls;
    if (!(c->base = event_base_new()))
        return CM_ERR_NOMEM;
    cm_err e = nd_client_new(c->base, &cc, &c->cl);
    c->ndrives = ob_store_ndrives(st);
    for (int d = 0; d < c->ndrives && d < ND_MAX_DRIVES; d++) /* slot d: the drive of id d */
        c->drives[d] = (nd_drive){ob_store_drive_dir(st, d), ob_store_blobstore(st, d)};
    if (e == CM_OK)
        e = ob_chunks_local_new(c->base, c->drives, c->ndrives, 2, &c->local);
    struct statvfs sv;
    double cap = c->ndrives > 0 && statvfs(c->drives[0].path, &sv) == 0
                     ? (double)sv.f_blocks * (double)sv.f_frsize
                     : 0;
    double mbps = measure_disk(c->data_dir);
    pthread_mutex_lock(&c->mu);
    c->disk_mbps = mbps, c->drive_bytes = cap;
    pthread_mutex_unlock(&c->mu);
    return e;
}

/* An interval pass that stats every cell is due: none ended yet, or full_interval_s ago. */
static int full_due(const cmd_repair *c)
{
    return c->cfg.full_interval_s <= 0 || c->full_ms == 0 ||
           cm_monotonic_ms() - c->full_ms >= (int64_t)c->cfg.full_interval_s * 1000;
}

/*
 * Why a pass should run now ("" for no reason): a trigger, a new epoch, a node of the layout
 * back in the member list, the first layout, or the interval (INTERVAL_LAYOUTS: a pass that
 * checks layouts only).
 */
static const char *pass_due(cmd_repair *c, uint64_t *epoch, uint8_t *was_dead, int64_t *next)
{
    pl_topology *t = NULL;
    const char *why = "";
    pthread_mutex_lock(&c->mu);
    int asked = c->want > c->passes;
    pthread_mutex_unlock(&c->mu);
    if (co_layout_current(c->cfg.layout, &t, NULL) != CM_OK)
        return "";
    uint8_t dead[PL_MAX_NODES];
    int n = t->nnodes < PL_MAX_NODES ? t->nnodes : PL_MAX_NODES;
    cmd_dead_nodes(c->cfg.layout, t, dead);
    int back = 0;
    for (int i = 0; i < n; i++)
        back |= *epoch == t->epoch && was_dead[i] && !dead[i];
    memcpy(was_dead, dead, (size_t)n);
    int missing = 0;
    for (int i = 0; i < n; i++)
        missing |= dead[i];
    if (*epoch == 0 && !asked && missing &&
        cm_monotonic_ms() - c->thread_ms < START_WAIT_TTLS * member_ttl_ms(c->cfg.layout)) {
        /* The first pass waits until every node of the layout is in the member list, or
         * START_WAIT_TTLS member lease TTLs went by: nodes started together register one by one
         * (later under load), and a pass before that finds the cells of those not listed yet
         * unreachable (every body it checked was counted failed, or its cells rebuilt on
         * handoffs). A node that was up keeps its lease a TTL after it died, and one started
         * with this one has had three TTLs to register: still absent, it is down. */
        pl_topology_free(t);
        return "";
    }
    if (asked)
        why = "requested";
    else if (*epoch == 0)
        why = "start";
    else if (*epoch != t->epoch)
        why = "layout change";
    else if (back)
        why = "node back";
    else if (c->cfg.interval_s > 0 && cm_monotonic_ms() >= *next)
        why = full_due(c) ? "interval" : INTERVAL_LAYOUTS;
    *epoch = t->epoch;
    pl_topology_free(t);
    return why;
}

static void *repair_main(void *arg)
{
    cmd_repair *c = arg;
    uint64_t epoch = 0;
    const char *waiting = ""; /* a pass held back, with its reason (a static string) */
    uint8_t *was_dead = calloc(PL_MAX_NODES, 1);
    int64_t next = cm_monotonic_ms() + (int64_t)c->cfg.interval_s * 1000;
    c->thread_ms = cm_monotonic_ms();
    if (thread_setup(c) != CM_OK || !was_dead) {
        CM_ERROR(MOD, "the repair thread cannot start: no repair on this node");
        pthread_mutex_lock(&c->mu);
        c->broken = 1;
        pthread_mutex_unlock(&c->mu);
        free(was_dead);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&c->mu);
        if (!c->stopping && c->want <= c->passes) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += EVENT_POLL_MS / 1000;
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
        int stop = c->stopping;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        const char *why = pass_due(c, &epoch, was_dead, &next);
        if (!*why)
            why = waiting; /* a pass the stale member list held back */
        if (!*why)
            continue;
        waiting = run_pass(c, why, why == INTERVAL_LAYOUTS) ? "" : why;
        next = cm_monotonic_ms() + (int64_t)c->cfg.interval_s * 1000;
    }
    free(was_dead);
    return NULL;
}

/* ---- start and stop ---- */

/* DATA/cluster.node (the node id): tells `cairn fsck` that these drives hold cells of bodies
 * whose records live on other nodes, so its orphan sweep must not delete (cmd/fsck.c). */
static void mark_cluster_node(const char *data_dir, const char *self)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/" CMD_CLUSTER_MARK, data_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t n = strlen(self);
    int ok =
        fd >= 0 && write(fd, self, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = 0;
    if (!ok)
        CM_WARN(MOD, "cannot write %s: fsck could take this node's cells for orphans", path);
}

cm_err cmd_repair_start(const cmd_repair_config *cfg, cmd_repair **out)
{
    *out = NULL;
    if (cfg->nreplicas < 1 || cfg->nreplicas > PL_MAX_CELLS)
        return CM_ERR_INVAL; /* no node would be a home: nothing would ever be healed */
    cmd_repair *c = calloc(1, sizeof(*c));
    if (!c)
        return CM_ERR_NOMEM;
    c->cfg = *cfg;
    snprintf(c->self, sizeof(c->self), "%s", cfg->node_id);
    snprintf(c->data_dir, sizeof(c->data_dir), "%s", cfg->data_dir);
    snprintf(c->state_path, sizeof(c->state_path), "%s/repair.cursor", cfg->data_dir);
    c->cfg.node_id = c->self, c->cfg.data_dir = c->data_dir;
    c->last.eta_s = c->last.full_redundancy_s = -1;
    mark_cluster_node(c->data_dir, c->self);
    if (cmd_orphans_new(&c->cfg, &c->orphans) != CM_OK)
        CM_WARN(MOD, "no memory for the orphan sweep: /admin/orphans answers 503");
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, repair_main, c) != 0) {
        cmd_repair_stop(c);
        return CM_ERR_NOMEM;
    }
    c->running = 1;
    *out = c;
    return CM_OK;
}

void cmd_repair_stop(cmd_repair *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    if (c->cur)
        ob_repair_stop(c->cur); /* ends between two stripes; the cursor stays */
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->running)
        pthread_join(c->thread, NULL);
    cmd_orphans_free(c->orphans);
    ob_chunks_free(c->local); /* no call in flight: every pass waited for its heals */
    nd_client_free(c->cl);
    if (c->base)
        event_base_free(c->base);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* ---- status and trigger ---- */

/* The durability of t at repair speed mbps per node (every node heals its own partitions, so
 * the cluster's is mbps times the nodes taking cells). 0 when it cannot be computed. */
static int durability(const pl_topology *t, double mbps, double drive_bytes, pl_dur_input *in,
                      pl_dur_result *res)
{
    int k, m, nodes = 0;
    pl_default_profile(t, &k, &m);
    pl_dur_defaults(in);
    for (int i = 0; i < t->nnodes; i++)
        nodes += t->nodes[i].state == PL_UP;
    in->drive_bytes = drive_bytes > 0 ? drive_bytes : 1e12;
    in->repair_mbps = mbps * (nodes > 0 ? nodes : 1);
    return mbps > 0 && pl_dur_from_topology(t, k, m, in) == CM_OK &&
           pl_durability(in, res) == CM_OK;
}

/* The running pass's status, else the last one's; 1 when one runs. Called with c->mu held. */
static int status_locked(cmd_repair *c, ob_repair_status *s)
{
    if (c->cur)
        ob_repair_status_get(c->cur, s);
    else
        *s = c->last;
    return c->cur != NULL;
}

size_t cmd_repair_status(cmd_repair *c, char *out, size_t cap)
{
    ob_repair_status s;
    pl_topology *t = NULL;
    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    int running = status_locked(c, &s);
    uint64_t passes = c->passes, requested = c->want;
    double disk = c->disk_mbps, drive_bytes = c->drive_bytes;
    double heal = running && s.mbps > 0 ? s.mbps : c->heal_mbps;
    int64_t start = c->start_ms, end = c->end_ms;
    char reason[32];
    snprintf(reason, sizeof(reason), "%s", c->reason);
    pthread_mutex_unlock(&c->mu);
    /* the measured rate once a heal wrote something, else the configured limit */
    int measured = heal > 0;
    double mbps = measured ? heal : c->cfg.mbps;
    pl_dur_input in;
    pl_dur_result dr = {0};
    int k = 0, m = 0; /* the profile of new bodies, for `cairn admin status` (docs/admin.md) */
    int have_t = co_layout_current(c->cfg.layout, &t, NULL) == CM_OK;
    if (have_t)
        pl_default_profile(t, &k, &m);
    int have_dur = have_t && durability(t, mbps, drive_bytes, &in, &dr);
    pl_topology_free(t);
    int n = snprintf(
        out, cap,
        "\"repair\":{\"running\":%s,\"passes\":%llu,\"requested\":%llu,\"reason\":\"%s\","
        "\"start_ms\":%lld,\"end_ms\":%lld,\"records\":%llu,\"scanned\":%llu,\"parts\":%llu,"
        "\"trusted\":%llu,"
        "\"degraded\":%llu,\"healed\":%llu,\"failed\":%llu,\"cells\":%llu,\"bytes\":%llu,"
        "\"mbps\":%.3f,\"disk_mbps\":%.1f,\"disk_share\":%.4f,\"eta_s\":%.1f,"
        "\"full_redundancy_s\":%.3f,\"limit_mbps\":%.1f,\"interval_s\":%d,\"full_interval_s\":%d,"
        "\"durability\":{\"k\":%d,\"m\":%d,\"known\":%s,\"measured\":%s,\"mbps_per_node\":%.3f,"
        "\"cluster_mbps\":%.3f,\"drive_bytes\":%.0f,\"repair_h\":%.3f,\"nines\":%.2f,"
        "\"az_nines\":%.2f,\"afr\":%.3f}}",
        running ? "true" : "false", (unsigned long long)passes, (unsigned long long)requested,
        reason, (long long)start, (long long)end, (unsigned long long)s.records,
        (unsigned long long)s.scanned, (unsigned long long)s.parts, (unsigned long long)s.trusted,
        (unsigned long long)s.degraded, (unsigned long long)s.healed, (unsigned long long)s.failed,
        (unsigned long long)s.cells, (unsigned long long)s.bytes, s.mbps, disk,
        disk > 0 ? s.mbps / disk : 0, s.eta_s, s.full_redundancy_s, c->cfg.mbps, c->cfg.interval_s,
        c->cfg.full_interval_s, k, m, have_dur ? "true" : "false", measured ? "true" : "false",
        mbps, have_dur ? in.repair_mbps : 0, have_dur ? in.drive_bytes : 0, dr.repair_h, dr.nines,
        dr.az_nines, have_dur ? in.afr : 0);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void cmd_repair_metrics(void *arg, FILE *f)
{
    cmd_repair *c = arg;
    ob_repair_status s;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    int running = status_locked(c, &s);
    uint64_t passes = c->passes;
    pthread_mutex_unlock(&c->mu);
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"cairn_repair_running", "gauge", "1 while a repair pass runs"},
        {"cairn_repair_passes_total", "counter", "Repair passes ended"},
        {"cairn_repair_pass_records", "gauge", "Records of the current (or last) pass"},
        {"cairn_repair_pass_scanned_records", "gauge", "Of them, records looked at"},
        {"cairn_repair_pass_degraded_bodies", "gauge", "Bodies the pass found degraded"},
        {"cairn_repair_pass_healed_bodies", "gauge", "Bodies the pass brought back"},
        {"cairn_repair_pass_failed_bodies", "gauge", "Bodies the pass could not heal now"},
        {"cairn_repair_pass_bytes", "gauge", "Cell bytes the pass rebuilt or moved"},
    };
    uint64_t v[] = {(uint64_t)running, passes,   s.records, s.scanned,
                    s.degraded,        s.healed, s.failed,  s.bytes};
    for (size_t i = 0; i < CM_ARRAY_LEN(m); i++) {
        cm_metric_head(f, m[i].name, m[i].type, m[i].help);
        cm_metric_u64(f, m[i].name, NULL, v[i]);
    }
    cm_metric_head(f, "cairn_repair_eta_seconds", "gauge",
                   "Estimated time left in the current pass; -1 unknown");
    cm_metric_double(f, "cairn_repair_eta_seconds", NULL, running ? s.eta_s : 0);
}

uint64_t cmd_repair_trigger(cmd_repair *c)
{
    pthread_mutex_lock(&c->mu);
    /* a pass that runs now started before the request: the one after it */
    uint64_t seq = c->want > c->passes ? c->want : c->passes + 1 + (c->cur != NULL);
    c->want = seq;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return seq;
}

/* ---- one body's cells (GET /admin/object-cells) ---- */

typedef struct {
    int pending;
    cm_err err[MD_MAX_CELLS];
    uint64_t size[MD_MAX_CELLS];
} stat_wait;

typedef struct {
    stat_wait *w;
    int i;
} stat_call;

static void stat_done(void *arg, const ob_chunk_result *res)
{
    stat_call *sc = arg;
    sc->w->err[sc->i] = res->err;
    sc->w->size[sc->i] = res->size;
    sc->w->pending--;
}

/* A short-lived loop, client and local backend: what stat'ing cells needs on a worker. */
typedef struct {
    struct event_base *base;
    nd_client *cl;
    ob_chunks *local;
    ob_resolver *r;
    nd_drive drives[ND_MAX_DRIVES];
} cells_io;

static void cells_io_free(cells_io *io)
{
    ob_resolver_free(io->r);
    ob_chunks_free(io->local);
    nd_client_free(io->cl);
    if (io->base)
        event_base_free(io->base);
}

static cm_err cells_io_new(cmd_repair *c, const pl_topology *t, cells_io *io)
{
    ob_store *st = gw_object_store(c->cfg.g);
    int nd = ob_store_ndrives(st);
    nd_client_config cc = {0};
    cc.node_id = c->self;
    cc.secret = c->cfg.secret;
    cc.secret_len = c->cfg.secret_len;
    cc.faults = c->cfg.faults;
    cc.net.io_timeout_ms = 3000;
    cc.net.tls = c->cfg.tls;
    memset(io, 0, sizeof(*io));
    for (int d = 0; d < nd && d < ND_MAX_DRIVES; d++)
        io->drives[d] = (nd_drive){ob_store_drive_dir(st, d), ob_store_blobstore(st, d)};
    if (!(io->base = event_base_new()))
        return CM_ERR_NOMEM;
    cm_err e = nd_client_new(io->base, &cc, &io->cl);
    if (e == CM_OK)
        e = ob_chunks_local_new(io->base, io->drives, nd, 1, &io->local);
    if (e == CM_OK)
        e = ob_resolver_new(t, c->self, io->local, io->cl, &io->r);
    return e;
}

/* Stat every cell of lay; the part as JSON: each cell's node, drive, state and home. */
static json_t *part_cells(cells_io *io, const pl_topology *t, const pl_map *homes,
                          const md_layout *lay, size_t part)
{
    int n = lay->k + lay->m, healthy = 0, at_home = 0;
    stat_wait w = {0};
    stat_call calls[MD_MAX_CELLS];
    pl_cell want[MD_MAX_CELLS];
    int have_homes = pl_place(homes, lay->blob, lay->k, lay->m, want) == CM_OK;
    uint64_t blob_len = ob_layout_cell_blob_len(lay);
    bs_id id;
    memcpy(id.b, lay->blob, 16);
    for (int i = 0; i < n; i++) {
        uint32_t drive = 0;
        pl_cell pc = {lay->nodes[i], lay->drives[i]};
        ob_chunks *b = lay->drives[i] == 0xFF ? NULL : ob_resolve_cell(io->r, &pc, &drive);
        calls[i] = (stat_call){&w, i};
        w.err[i] = lay->drives[i] == 0xFF ? CM_ERR_NOTFOUND : CM_ERR_UNAVAILABLE;
        if (b && ob_chunk_stat(b, drive, &id, stat_done, &calls[i]) == CM_OK)
            w.pending++;
    }
    while (w.pending > 0)
        event_base_loop(io->base, EVLOOP_ONCE);
    json_t *cells = json_array();
    for (int i = 0; i < n; i++) {
        int none = lay->drives[i] == 0xFF, home = 0;
        for (int h = 0; have_homes && !none && h < n; h++)
            home |= want[h].node == lay->nodes[i] && want[h].drive == lay->drives[i];
        const pl_node *pn = !none && lay->nodes[i] < t->nnodes ? &t->nodes[lay->nodes[i]] : NULL;
        const char *state = none                    ? "none"
                            : w.err[i] != CM_OK     ? cm_err_str(w.err[i])
                            : w.size[i] == blob_len ? "ok"
                                                    : "wrong-length";
        int ok = strcmp(state, "ok") == 0;
        healthy += ok;
        at_home += ok && home;
        json_array_append_new(
            cells,
            json_pack("{s:i,s:s,s:i,s:s,s:b}", "cell", i, "node", pn ? pn->id : "-", "drive",
                      pn && lay->drives[i] < pn->ndrives ? (int)pn->drives[lay->drives[i]].id : -1,
                      "state", state, "home", home));
    }
    return json_pack("{s:i,s:i,s:i,s:I,s:I,s:i,s:i,s:o}", "part", (int)part, "k", lay->k, "m",
                     lay->m, "epoch", (json_int_t)lay->epoch, "size", (json_int_t)lay->size,
                     "healthy", healthy, "at_home", at_home, "cells", cells);
}

int cmd_repair_object_cells(cmd_repair *c, const char *bucket, const char *key, char *out,
                            size_t cap)
{
    md_object o;
    pl_topology *t = NULL;
    pl_map *homes = NULL;
    cells_io io;
    memset(&o, 0, sizeof(o));
    memset(&io, 0, sizeof(io));
    int status = 200;
    cm_err e = rp_object_get(c->cfg.coord, bucket, key, &o);
    if (e == CM_OK && (e = co_layout_current(c->cfg.layout, &t, NULL)) == CM_OK &&
        (e = pl_map_new(t, PL_MAP_HOMES, &homes)) == CM_OK)
        e = cells_io_new(c, t, &io);
    json_t *doc = NULL;
    if (e == CM_OK) {
        json_t *parts = json_array();
        for (size_t p = 0; p < o.nparts; p++)
            if (!MD_PART_INLINE(&o.parts[p]) && o.parts[p].layout.epoch != 0)
                json_array_append_new(parts, part_cells(&io, t, homes, &o.parts[p].layout, p));
        doc = json_pack("{s:s,s:s,s:I,s:o}", "bucket", bucket, "key", key, "epoch",
                        (json_int_t)t->epoch, "parts", parts);
    } else {
        status = e == CM_ERR_NOTFOUND ? 404 : 503;
        doc = json_pack("{s:s,s:s}", "error", status == 404 ? "NoSuchKey" : "Unavailable",
                        "message", cm_err_str(e));
    }
    size_t n = doc ? json_dumpb(doc, out, cap - 1, JSON_COMPACT) : 0;
    if (n == 0 || n >= cap) {
        n = (size_t)snprintf(out, cap, "{\"error\":\"TooLarge\"}");
        status = 500;
    }
    out[n] = '\0';
    json_decref(doc);
    cells_io_free(&io);
    pl_map_free(homes);
    pl_topology_free(t);
    md_object_release(&o);
    return status;
}

/* The gateway's admin routes (gw_set_admin_extra); arg is the cmd_repair. Worker thread. */
int cmd_repair_admin(void *arg, const char *route, int post, const char *bucket, const char *key,
                     char *out, size_t cap)
{
    cmd_repair *c = arg;
    if (strcmp(route, "object-cells") == 0)
        return cmd_repair_object_cells(c, bucket, key, out, cap);
    if (strcmp(route, "orphans") == 0)
        return cmd_orphans_admin(c->orphans, post, key, out, cap);
    pthread_mutex_lock(&c->mu);
    int broken = c->broken;
    pthread_mutex_unlock(&c->mu);
    if (post && broken)
        return snprintf(out, cap,
                        "{\"error\":\"NoRepair\",\"message\":\"the repair thread "
                        "did not start (see the log)\"}\n"),
               503;
    if (post) {
        uint64_t seq = cmd_repair_trigger(c);
        CM_INFO(MOD, "repair pass %llu requested", (unsigned long long)seq);
        snprintf(out, cap, "{\"started\":true,\"pass\":%llu}\n", (unsigned long long)seq);
        return 202;
    }
    out[0] = '{';
    size_t n = cmd_repair_status(c, out + 1, cap - 3);
    if (n == 0)
        return snprintf(out, cap, "{}\n"), 200;
    memcpy(out + 1 + n, "}\n", 3);
    return 200;
}
