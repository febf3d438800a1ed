/*
 * cmd/cluster_cond.c - conditional writes across the gateways of a cluster (issue 9, 2.7;
 * docs/replication.md, "Conditional writes").
 *
 * Writes are leaderless, but a conditional write (If-None-Match: *, If-Match) needs one
 * compare-and-set per key. Each partition (bucket, shard) therefore has a leader: the node whose
 * lease holds the etcd key /cairn/<cluster>/leaders/<bucket>.<shard> (co_leader_acquire), and
 * every conditional write of the partition runs there, in rp_cond_execute under the leader's
 * per-key lock, stamped with the leader's fencing token (the key's create revision) which the
 * replicas check (rp_replica_put).
 *
 * Who leads: one of the partition's home nodes, taken lazily by the first conditional write of
 * the partition. A node that finds no leader hands the write to the first home (which takes the
 * key), or takes it itself when it is that home; the next homes are tried in order when the first
 * cannot be reached. The leader stays until its lease ends (the process died, or lost etcd for a
 * TTL) or it stops (cmd_cond_free revokes the lease). A leader key left by an earlier run of this
 * node id (its lease not expired yet) is released and taken again: only this process writes as
 * this node.
 *
 * Where the leader is: read from etcd and kept CMD_COND_CACHE_MS in memory, so most writes cost no
 * etcd round trip; a node that is handed a write it does not lead answers CM_ERR_CONFLICT, and the
 * sender reads the key again (three tries). No leader to be had (etcd unreachable, the leader
 * unreachable) is CM_ERR_UNAVAILABLE: a conditional write is never decided without the leader.
 * Unconditional writes never come here.
 *
 * Threading: cmd_cond_run and cmd_cond_serve run on worker threads (the gateway's, the RPC
 * service's cond pool) and block; etcd calls go through one client under etcd_mu; a forwarded
 * write is sent from the cluster loop (event_base_once) and its worker waits for the answer, at
 * most timeout_ms; the state it shares with the loop is reference counted, so a worker that gives
 * up leaves it to the callback.
 */
#include "cluster_cond.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "cm_log.h"
#include "cm_util.h"
#include "co.h"

#define MOD "cond"
#define CACHE_SLOTS 509 /* partitions whose leader is remembered (a hash table, overwritten) */
#define TRIES 3         /* lookups of the leader per write (a handed write may be refused) */
#define PART_NAME (MD_BUCKET_MAX + 16)
#define ETCD_WAIT_MS 3000   /* a lookup waits this long for the etcd client at most */
#define ETCD_BACKOFF_MS 500 /* after etcd failed, lookups answer 503 at once this long */

typedef struct {
    char part[PART_NAME];        /* "<bucket>.<shard>"; "" = empty slot */
    char holder[ND_NODE_ID_MAX]; /* "" = nobody leads */
    uint64_t token;              /* the holder's fencing token */
    int64_t lease;               /* this node's lease when it was read */
    int64_t at_ms;               /* when read */
} leader_ent;

struct cmd_cond {
    char self[ND_NODE_ID_MAX];
    char cluster[PL_NAME_MAX];
    co_config etcd;
    char *etcd_storage;
    int64_t ttl_s;
    int timeout_ms;
    uint32_t nshards;
    pthread_mutex_t etcd_mu; /* the client and the keeper */
    co_client *cl;
    co_keeper *keeper;
    pthread_mutex_t mu; /* everything below */
    rp *coord;
    struct event_base *base;
    nd_client *rpc;
    pl_topology *topo;
    pl_map *map;
    leader_ent cache[CACHE_SLOTS];
    int64_t etcd_down_until; /* cm_now_ms() before which etcd is not tried again */
    cmd_cond_stats st;
};

cm_err cmd_cond_new(const cmd_cond_config *cfg, cmd_cond **out)
{
    cmd_cond *cc = calloc(1, sizeof(*cc));
    *out = NULL;
    if (!cc)
        return CM_ERR_NOMEM;
    snprintf(cc->self, sizeof(cc->self), "%s", cfg->self);
    snprintf(cc->cluster, sizeof(cc->cluster), "%s", cfg->cluster);
    cc->ttl_s = cfg->lease_ttl_s > 0 ? cfg->lease_ttl_s : CMD_COND_TTL_S;
    cc->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : CMD_COND_WAIT_MS;
    cc->nshards = cfg->nshards;
    pthread_mutex_init(&cc->etcd_mu, NULL);
    pthread_mutex_init(&cc->mu, NULL);
    cm_err e = co_config_parse(cfg->etcd, &cc->etcd, &cc->etcd_storage);
    if (e == CM_OK) {
        cc->etcd.timeout_ms = 1000; /* a write waits on etcd briefly: 503 rather than hang */
        e = co_client_new(&cc->etcd, &cc->cl);
    }
    if (e != CM_OK) {
        cmd_cond_free(cc);
        return e;
    }
    *out = cc;
    return CM_OK;
}

void cmd_cond_free(cmd_cond *cc)
{
    if (!cc)
        return;
    if (cc->keeper)
        co_keeper_free(cc->keeper, 1); /* the leader keys vanish: successors take over now */
    co_client_free(cc->cl);
    free(cc->etcd_storage);
    pl_map_free(cc->map);
    pl_topology_free(cc->topo);
    pthread_mutex_destroy(&cc->mu);
    pthread_mutex_destroy(&cc->etcd_mu);
    free(cc);
}

void cmd_cond_set_coord(cmd_cond *cc, rp *coord, struct event_base *base, nd_client *cl)
{
    if (!cc)
        return;
    pthread_mutex_lock(&cc->mu);
    cc->coord = coord, cc->base = base, cc->rpc = cl;
    pthread_mutex_unlock(&cc->mu);
}

void cmd_cond_set_topology(cmd_cond *cc, const pl_topology *t)
{
    pl_topology *copy = NULL;
    pl_map *m = NULL;
    if (!cc)
        return;
    if (pl_topology_clone(t, &copy) != CM_OK || pl_map_new(copy, PL_MAP_HOMES, &m) != CM_OK) {
        pl_topology_free(copy);
        CM_WARN(MOD, "layout epoch %llu: conditional writes keep the previous homes",
                (unsigned long long)t->epoch);
        return;
    }
    pthread_mutex_lock(&cc->mu);
    pl_map_free(cc->map);
    pl_topology_free(cc->topo);
    cc->topo = copy, cc->map = m;
    pthread_mutex_unlock(&cc->mu);
}

void cmd_cond_get_stats(cmd_cond *cc, cmd_cond_stats *out)
{
    pthread_mutex_lock(&cc->mu);
    *out = cc->st;
    pthread_mutex_unlock(&cc->mu);
}

static void count(cmd_cond *cc, uint64_t *field)
{
    pthread_mutex_lock(&cc->mu);
    (*field)++;
    pthread_mutex_unlock(&cc->mu);
}

/* ---- who leads ---- */

static leader_ent *slot_of(cmd_cond *cc, const char *part)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *s = (const unsigned char *)part; *s; s++)
        h = (h ^ *s) * 16777619u;
    return &cc->cache[h % CACHE_SLOTS];
}

static void forget(cmd_cond *cc, const char *part)
{
    pthread_mutex_lock(&cc->mu);
    leader_ent *s = slot_of(cc, part);
    if (strcmp(s->part, part) == 0)
        s->part[0] = 0;
    pthread_mutex_unlock(&cc->mu);
}

/* The lease this node leads under, granted (again) when it has none or it expired; 0 when etcd
 * cannot be had. etcd_mu held. */
static int64_t lease_locked(cmd_cond *cc)
{
    if (cc->keeper && co_keeper_alive(cc->keeper))
        return co_keeper_lease(cc->keeper);
    if (cc->keeper) {
        CM_WARN(MOD, "the leader lease expired: this node's leaderships are gone");
        co_keeper_free(cc->keeper, 0);
        cc->keeper = NULL;
    }
    cm_err e = co_keeper_start(&cc->etcd, cc->ttl_s, &cc->keeper);
    if (e != CM_OK) {
        CM_WARN(MOD, "no leader lease: %s", cm_err_str(e));
        cc->keeper = NULL;
        return 0;
    }
    return co_keeper_lease(cc->keeper);
}

/*
 * Take the etcd client: at most ETCD_WAIT_MS in the queue (writers behind a slow etcd call give
 * up rather than wait one call time each), and not at all for ETCD_BACKOFF_MS after etcd failed
 * to answer. 0 with etcd_mu held, -1 (count as no leader) otherwise.
 */
static int etcd_down(cmd_cond *cc)
{
    pthread_mutex_lock(&cc->mu);
    int down = cm_now_ms() < cc->etcd_down_until;
    pthread_mutex_unlock(&cc->mu);
    return down;
}

static int etcd_enter(cmd_cond *cc)
{
    if (etcd_down(cc))
        return -1;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until); /* pthread_mutex_timedlock's clock */
    until.tv_sec += ETCD_WAIT_MS / 1000;
    until.tv_nsec += (long)(ETCD_WAIT_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L)
        until.tv_sec++, until.tv_nsec -= 1000000000L;
    if (pthread_mutex_timedlock(&cc->etcd_mu, &until) != 0)
        return -1;
    if (etcd_down(cc)) { /* the call this one waited behind failed */
        pthread_mutex_unlock(&cc->etcd_mu);
        return -1;
    }
    return 0;
}

/*
 * The leader of part: from the cache while fresh, else from etcd. With take, the key is taken for
 * this node when nobody holds it. *out receives holder ("" = nobody) and token. CM_OK, or
 * CM_ERR_UNAVAILABLE when etcd cannot be had.
 */
static cm_err leader(cmd_cond *cc, const char *part, int take, leader_ent *out)
{
    int64_t now = cm_now_ms();
    pthread_mutex_lock(&cc->mu);
    leader_ent *s = slot_of(cc, part);
    /* A node asked to lead trusts its memory only for its own leadership: a write handed to it
     * comes from a node that read etcd more recently than that. */
    int fresh = strcmp(s->part, part) == 0 && now - s->at_ms < CMD_COND_CACHE_MS &&
                (!take || strcmp(s->holder, cc->self) == 0);
    leader_ent cached = *s;
    pthread_mutex_unlock(&cc->mu);
    int mine = fresh && strcmp(cached.holder, cc->self) == 0;
    if (fresh && !mine) {
        *out = cached;
        return CM_OK;
    }
    char key[512];
    if (co_key(key, sizeof(key), cc->cluster, CO_KIND_LEADERS, part) != CM_OK)
        return CM_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    snprintf(out->part, sizeof(out->part), "%s", part);
    if (etcd_enter(cc) != 0)
        return CM_ERR_UNAVAILABLE;
    int64_t lease = lease_locked(cc);
    cm_err e = lease ? CM_OK : CM_ERR_UNAVAILABLE;
    if (e == CM_OK && mine && cached.lease == lease) { /* this node leads while its lease lives */
        pthread_mutex_unlock(&cc->etcd_mu);
        *out = cached;
        return CM_OK;
    }
    count(cc, &cc->st.etcd_reads);
    co_kv kv = {0};
    if (e == CM_OK)
        e = co_get(cc->cl, key, &kv, NULL);
    if (e == CM_OK && kv.len == strlen(cc->self) && memcmp(kv.value, cc->self, kv.len) == 0 &&
        kv.lease != lease) {
        /* an earlier lease of this node (a previous run, or one that expired): not kept alive */
        (void)co_leader_release(cc->cl, key, kv.create_rev);
        co_kv_release(&kv);
        memset(&kv, 0, sizeof(kv));
        e = CM_ERR_NOTFOUND;
    }
    if (e == CM_ERR_NOTFOUND && take) {
        int64_t token = 0;
        e = co_leader_acquire(cc->cl, key, lease, cc->self, strlen(cc->self), &token);
        if (e == CM_OK) {
            snprintf(out->holder, sizeof(out->holder), "%s", cc->self);
            out->token = (uint64_t)token;
            CM_INFO(MOD, "leading partition %s (token %lld)", part, (long long)token);
        } else if (e == CM_ERR_EXISTS) { /* taken meanwhile: read who has it */
            e = co_get(cc->cl, key, &kv, NULL);
        }
    }
    pthread_mutex_unlock(&cc->etcd_mu);
    if (e == CM_OK && kv.key) {
        size_t n = CM_MIN(kv.len, sizeof(out->holder) - 1);
        memcpy(out->holder, kv.value, n);
        out->holder[n] = 0;
        out->token = (uint64_t)kv.create_rev;
    }
    co_kv_release(&kv);
    if (e == CM_ERR_NOTFOUND)
        e = CM_OK; /* nobody leads */
    if (e != CM_OK) {
        pthread_mutex_lock(&cc->mu);
        cc->etcd_down_until = cm_now_ms() + ETCD_BACKOFF_MS;
        pthread_mutex_unlock(&cc->mu);
        return CM_ERR_UNAVAILABLE;
    }
    out->lease = lease;
    out->at_ms = now;
    pthread_mutex_lock(&cc->mu);
    *slot_of(cc, part) = *out;
    pthread_mutex_unlock(&cc->mu);
    return CM_OK;
}

/* The partition's homes in preference order (ids, PL_NAME_MAX each); how many. A layout with
 * fewer than 3 eligible nodes has them all as homes, as rp_route gives them. */
static int homes_of(cmd_cond *cc, const rp_part *p, char ids[3][PL_NAME_MAX])
{
    int idx[3], n = 3;
    pthread_mutex_lock(&cc->mu);
    uint64_t part = pl_partition_id(p->bucket, p->shard);
    while (n > 0 && (!cc->map || pl_partition(cc->map, part, n, idx) != CM_OK))
        n--;
    for (int i = 0; i < n; i++)
        snprintf(ids[i], PL_NAME_MAX, "%s", cc->topo->nodes[idx[i]].id);
    pthread_mutex_unlock(&cc->mu);
    return n;
}

/* ---- running and forwarding ---- */

/* Run w here as the leader with token. */
static cm_err execute(cmd_cond *cc, const rp_cond_write *w, uint64_t token)
{
    pthread_mutex_lock(&cc->mu);
    rp *c = cc->coord;
    pthread_mutex_unlock(&cc->mu);
    if (!c)
        return CM_ERR_UNAVAILABLE;
    rp_cond_write fw = *w;
    fw.fence = token;
    count(cc, &cc->st.led);
    return rp_cond_execute(c, &fw);
}

/* One write handed to a peer: shared by the waiting worker and the loop's callback. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs, done;
    cm_err err;
    int status; /* 0: no answer came (the wire failed) */
    char id[PL_NAME_MAX], host[PL_ADDR_MAX], bucket[MD_BUCKET_MAX + 1], ifmatch[MD_MAX_KEY + 1];
    char nckey[MD_MAX_KEY + 1]; /* md_cond.noncurrent_key, "" for none */
    int port, del, inm, has_ifmatch, unlocked, bypass;
    int noncurrent; /* md_cond.noncurrent, with successor_ms and newer_min */
    int lock_change;
    uint32_t heal_part; /* with lock_change MD_COND_LOCK_LAYOUT: md_cond.heal_part, heal_old */
    md_layout heal_old;
    int64_t successor_ms;
    uint32_t newer_min;
    uint8_t *rec;
    size_t len;
    nd_client *cl;
} fwd;

static void fwd_put(fwd *f)
{
    pthread_mutex_lock(&f->mu);
    int last = --f->refs == 0;
    pthread_mutex_unlock(&f->mu);
    if (!last)
        return;
    free(f->rec);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static void fwd_end(fwd *f, cm_err e, int status)
{
    pthread_mutex_lock(&f->mu);
    f->err = e, f->status = status, f->done = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    fwd_put(f);
}

static void fwd_done(void *arg, const nd_result *res)
{
    fwd_end(arg, res->err, res->status);
}

static void fwd_start(evutil_socket_t fd, short what, void *arg)
{
    fwd *f = arg;
    (void)fd, (void)what;
    nd_peer peer = {f->id, f->host, f->port, 0};
    md_cond cond = {.if_none_match_star = f->inm,
                    .if_match = f->has_ifmatch ? f->ifmatch : NULL,
                    .unlocked = f->unlocked,
                    .bypass_governance = f->bypass,
                    .noncurrent = f->noncurrent,
                    .successor_ms = f->successor_ms,
                    .newer_min = f->newer_min,
                    .noncurrent_key = f->nckey[0] ? f->nckey : NULL,
                    .lock_change = f->lock_change,
                    .heal_part = f->heal_part,
                    .heal_old = f->lock_change == MD_COND_LOCK_LAYOUT ? &f->heal_old : NULL};
    cm_err e = nd_cond_write(f->cl, &peer, f->bucket, f->rec, f->len, f->del, &cond, fwd_done, f);
    if (e != CM_OK)
        fwd_end(f, e, 0);
}

/* The address of node id in the layout, and the loop and client to send with; 0, or -1 when
 * there are none. */
static int peer_addr(cmd_cond *cc, const char *id, fwd *f, struct event_base **base)
{
    int rc = -1;
    pthread_mutex_lock(&cc->mu);
    for (int i = 0; cc->topo && i < cc->topo->nnodes && rc != 0; i++)
        if (strcmp(cc->topo->nodes[i].id, id) == 0 &&
            nd_addr_parse(cc->topo->nodes[i].addr, f->host, sizeof(f->host), &f->port) == CM_OK)
            rc = 0;
    f->cl = cc->rpc;
    *base = cc->base;
    pthread_mutex_unlock(&cc->mu);
    return rc == 0 && *base && f->cl ? 0 : -1;
}

/* Hand w to node id; *answered is 0 when no answer came (the node may or may not have run it). */
static cm_err forward(cmd_cond *cc, const char *id, const rp_cond_write *w, int *answered)
{
    *answered = 0;
    fwd *f = calloc(1, sizeof(*f));
    if (!f)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->refs = 2; /* the worker, the loop */
    snprintf(f->id, sizeof(f->id), "%s", id);
    snprintf(f->bucket, sizeof(f->bucket), "%s", w->bucket);
    f->inm = w->cond->if_none_match_star;
    f->unlocked = w->cond->unlocked, f->bypass = w->cond->bypass_governance;
    f->noncurrent = w->cond->noncurrent, f->successor_ms = w->cond->successor_ms;
    f->newer_min = w->cond->newer_min, f->lock_change = w->cond->lock_change;
    f->heal_part = w->cond->heal_part;
    if (w->cond->heal_old)
        f->heal_old = *w->cond->heal_old;
    if (w->cond->noncurrent_key)
        snprintf(f->nckey, sizeof(f->nckey), "%s", w->cond->noncurrent_key);
    f->has_ifmatch = w->cond->if_match != NULL;
    if (f->has_ifmatch)
        snprintf(f->ifmatch, sizeof(f->ifmatch), "%s", w->cond->if_match);
    f->del = w->obj == NULL;
    md_object key_only = {0};
    key_only.key = (char *)w->key;
    cm_err e = md_object_encode(w->obj ? w->obj : &key_only, &f->rec, &f->len);
    struct event_base *base = NULL;
    if (e == CM_OK && (peer_addr(cc, id, f, &base) != 0 ||
                       event_base_once(base, -1, EV_TIMEOUT, fwd_start, f, NULL) != 0))
        e = CM_ERR_UNAVAILABLE;
    if (e != CM_OK) {
        f->refs = 1;
        fwd_put(f);
        return e;
    }
    count(cc, &cc->st.forwarded);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += cc->timeout_ms / 1000;
    until.tv_nsec += (long)(cc->timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L)
        until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&f->mu);
    while (!f->done && pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0)
        ;
    e = f->done ? f->err : CM_ERR_TIMEOUT;
    *answered = f->done && f->status != 0;
    pthread_mutex_unlock(&f->mu);
    fwd_put(f);
    return e;
}

static void part_name(const rp_part *p, char out[PART_NAME])
{
    snprintf(out, PART_NAME, "%s.%u", p->bucket, p->shard);
}

/* Nobody leads p: the first home that answers takes it (this node when it comes first). */
static cm_err elect_and_run(cmd_cond *cc, const rp_part *p, const char *part,
                            const rp_cond_write *w, int *retry)
{
    char homes[3][PL_NAME_MAX];
    int n = homes_of(cc, p, homes);
    for (int i = 0; i < n; i++) {
        if (strcmp(homes[i], cc->self) == 0) {
            leader_ent l;
            if (leader(cc, part, 1, &l) != CM_OK)
                return CM_ERR_UNAVAILABLE;
            if (strcmp(l.holder, cc->self) == 0)
                return execute(cc, w, l.token);
            *retry = 1; /* another home took it meanwhile */
            return CM_ERR_UNAVAILABLE;
        }
        int answered;
        cm_err e = forward(cc, homes[i], w, &answered);
        if (e == CM_ERR_CONFLICT) { /* it does not lead: someone else took it */
            *retry = 1;
            return e;
        }
        if (answered)
            return e;
        if (e == CM_ERR_TIMEOUT) /* it may be running it: a next home would wait as long */
            return CM_ERR_UNAVAILABLE;
        CM_WARN(MOD, "partition %s: home %s cannot be reached (%s): trying the next", part,
                homes[i], cm_err_str(e));
    }
    return CM_ERR_UNAVAILABLE;
}

cm_err cmd_cond_run(void *arg, rp *c, const rp_part *p, const rp_cond_write *w)
{
    cmd_cond *cc = arg;
    char part[PART_NAME];
    (void)c;
    part_name(p, part);
    for (int t = 0; t < TRIES; t++) {
        leader_ent l;
        int retry = 0, answered;
        if (leader(cc, part, 0, &l) != CM_OK)
            break;
        cm_err e;
        if (!l.holder[0]) {
            e = elect_and_run(cc, p, part, w, &retry);
        } else if (strcmp(l.holder, cc->self) == 0) {
            return execute(cc, w, l.token);
        } else {
            e = forward(cc, l.holder, w, &answered);
            retry = e == CM_ERR_CONFLICT;
            if (!answered && !retry) {
                /* The leader is unreachable: its lease ends within the TTL if it is dead. */
                forget(cc, part);
                break;
            }
        }
        if (!retry)
            return e;
        forget(cc, part);
    }
    count(cc, &cc->st.no_leader);
    return CM_ERR_UNAVAILABLE;
}

cm_err cmd_cond_serve(void *arg, const nd_cond_req *r)
{
    cmd_cond *cc = arg;
    if (!cc)
        return CM_ERR_UNAVAILABLE;
    rp_part p = {r->bucket, rp_shard_of(r->rec->key, cc->nshards), cc->nshards, 0};
    char part[PART_NAME];
    part_name(&p, part);
    leader_ent l;
    if (leader(cc, part, 1, &l) != CM_OK) {
        count(cc, &cc->st.no_leader);
        return CM_ERR_UNAVAILABLE;
    }
    if (strcmp(l.holder, cc->self) != 0) {
        count(cc, &cc->st.refused);
        return CM_ERR_CONFLICT;
    }
    rp_cond_write w = {r->bucket, r->rec->key, r->del ? NULL : r->rec, r->cond, 0};
    return execute(cc, &w, l.token);
}
