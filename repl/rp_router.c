/*
 * rp_router.c - a partition's replicas from a topology (rp_replica.h, docs/replication.md).
 *
 * The router compiles the topology once (pl_map over the homes: nodes up or down; removed and
 * draining-only nodes hold no partition) and makes one remote backend per other node up front
 * (they are a few bytes each: the client's pool is shared). rp_route then is two pl_partition
 * calls: the n homes (rp_homes: distinct AZs while there are AZs, weighted rendezvous; n
 * shrinks to the eligible nodes of a small layout), and a longer preference list of the same
 * partition from which the nodes that are not homes, in order, are the fallbacks (stand-ins of a
 * sloppy quorum). Both are pure functions of (layout, partition), so every node picks the same
 * homes and the same stand-ins.
 *
 * The handoff (docs/replication.md, "Layout changes"): a router may also know the layout adopted
 * before its own (rp_router_set_previous). rp_route_prev then gives a partition's homes in that
 * layout while they are not the current ones and the partition has not settled (its data copied
 * to the new homes: rp_router_settle, or rp_router_settle_all for every partition at once). The
 * settled set and the "all settled" flag are the router's only mutable state (the set under its
 * mutex, the flag atomic; the maintenance thread writes them, the loop reads them). A previous
 * home that the new layout marks removed is gone (the layout's meaning of "removed"): it is not
 * asked, and the quorum among the previous homes is taken over those left.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rp_replica.h"

struct rp_router {
    pl_topology *t; /* a copy */
    pl_map *map;
    rp_replica *local; /* borrowed */
    int self;          /* node index of self, -1 when not in the topology */
    rp_replica **reps; /* per node index: the remote backend (NULL for self) */
    /* the handoff: the previous layout, its nodes' indices in t (-1: none), the settled
     * partitions (sorted ids) */
    pl_topology *prev;
    pl_map *prev_map;
    int *prev_idx;
    pthread_mutex_t mu;
    uint64_t *settled;
    size_t nsettled, cap;
    atomic_int all_settled; /* read without mu: a settled router costs a request no lock */
};

void rp_router_free(rp_router *rt)
{
    if (!rt)
        return;
    free(rt->prev_idx);
    pl_map_free(rt->prev_map);
    pl_topology_free(rt->prev);
    free(rt->settled);
    pthread_mutex_destroy(&rt->mu);
    for (int i = 0; rt->reps && i < rt->t->nnodes; i++)
        rp_replica_free(rt->reps[i]);
    free(rt->reps);
    pl_map_free(rt->map);
    pl_topology_free(rt->t);
    free(rt);
}

cm_err rp_router_new(const pl_topology *t, const char *self, rp_replica *local, nd_client *cl,
                     rp_router **out)
{
    *out = NULL;
    if (!t || !self)
        return CM_ERR_INVAL;
    rp_router *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return CM_ERR_NOMEM;
    rt->local = local;
    atomic_init(&rt->all_settled, 0);
    pthread_mutex_init(&rt->mu, NULL);
    cm_err e = pl_topology_clone(t, &rt->t);
    if (e == CM_OK)
        e = pl_map_new(rt->t, PL_MAP_HOMES, &rt->map);
    if (e == CM_OK &&
        !(rt->reps = calloc((size_t)(rt->t->nnodes ? rt->t->nnodes : 1), sizeof(*rt->reps))))
        e = CM_ERR_NOMEM;
    rt->self = e == CM_OK ? pl_topology_find(rt->t, self) : -1;
    if (e == CM_OK && rt->self >= 0 && !local)
        e = CM_ERR_INVAL; /* self holds partitions: it needs its local backend */
    for (int i = 0; e == CM_OK && i < rt->t->nnodes; i++) {
        const pl_node *nd = &rt->t->nodes[i];
        char host[PL_ADDR_MAX];
        nd_peer peer = {nd->id, host, 0, t->epoch}; /* every call carries the epoch (the fence) */
        if (i == rt->self || nd->state == PL_REMOVED)
            continue;
        if (!cl)
            e = CM_ERR_INVAL;
        else if ((e = nd_addr_parse(nd->addr, host, sizeof(host), &peer.port)) == CM_OK)
            e = rp_replica_remote_new(cl, &peer, &rt->reps[i]);
    }
    if (e != CM_OK) {
        rp_router_free(rt);
        return e;
    }
    *out = rt;
    return CM_OK;
}

int rp_homes(const pl_map *m, uint64_t part, int n, int *homes)
{
    if (!m || n < 1 || n > PL_MAX_CELLS)
        return -(int)CM_ERR_INVAL;
    /* A layout with fewer eligible nodes than n (a small cluster) keeps every partition on all
     * of them: the homes are still a pure function of (layout, partition). */
    cm_err e;
    while ((e = pl_partition(m, part, n, homes)) == CM_ERR_UNAVAILABLE && n > 1)
        n--;
    return e == CM_OK ? n : -(int)e;
}

static rp_replica *replica_of(rp_router *rt, int node)
{
    return node == rt->self ? rt->local : rt->reps[node];
}

int rp_route(rp_router *rt, const rp_part *p, int n, int nfallback, rp_replica **out)
{
    int homes[PL_MAX_CELLS], pref[PL_MAX_CELLS];
    if (!p || !p->bucket || n < 1 || nfallback < 0 || n + nfallback > PL_MAX_CELLS)
        return -(int)CM_ERR_INVAL;
    uint64_t part = pl_partition_id(p->bucket, p->shard);
    if ((n = rp_homes(rt->map, part, n, homes)) < 0)
        return n;
    int got = 0;
    for (int i = 0; i < n; i++)
        if ((out[got] = replica_of(rt, homes[i])) != NULL)
            got++;
    if (nfallback == 0)
        return got;
    /* the longest preference list the layout allows, homes skipped */
    int len = rt->t->nnodes < PL_MAX_CELLS ? rt->t->nnodes : PL_MAX_CELLS;
    while (len > n && pl_partition(rt->map, part, len, pref) != CM_OK)
        len--;
    for (int i = 0, taken = 0; i < len && len > n && taken < nfallback; i++) {
        int home = 0;
        for (int h = 0; h < n; h++)
            home |= pref[i] == homes[h];
        if (!home && (out[got] = replica_of(rt, pref[i])) != NULL)
            got++, taken++;
    }
    return got;
}

rp_replica *rp_router_replica(rp_router *rt, const char *node_id)
{
    int i = pl_topology_find(rt->t, node_id);
    return i < 0 ? NULL : replica_of(rt, i);
}

/* ---- the handoff ---- */

cm_err rp_router_set_previous(rp_router *rt, const pl_topology *prev)
{
    if (!rt || !prev || rt->prev)
        return CM_ERR_INVAL;
    cm_err e = pl_topology_clone(prev, &rt->prev);
    if (e == CM_OK)
        e = pl_map_new(rt->prev, PL_MAP_HOMES, &rt->prev_map);
    int n = rt->prev ? rt->prev->nnodes : 0;
    if (e == CM_OK && !(rt->prev_idx = calloc((size_t)n + 1, sizeof(*rt->prev_idx))))
        e = CM_ERR_NOMEM;
    for (int i = 0; e == CM_OK && i < n; i++)
        rt->prev_idx[i] = pl_topology_find(rt->t, rt->prev->nodes[i].id);
    if (e != CM_OK) { /* no handoff rather than half of one */
        free(rt->prev_idx);
        pl_map_free(rt->prev_map);
        pl_topology_free(rt->prev);
        rt->prev_idx = NULL, rt->prev_map = NULL, rt->prev = NULL;
    }
    return e;
}

static size_t settled_find(const rp_router *rt, uint64_t part)
{
    size_t lo = 0, hi = rt->nsettled;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rt->settled[mid] < part)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* 1 when the partition's handoff is over (or there is none). rt->mu held. */
static int settled_locked(const rp_router *rt, uint64_t part)
{
    if (!rt->prev_map || atomic_load(&rt->all_settled))
        return 1;
    size_t i = settled_find(rt, part);
    return i < rt->nsettled && rt->settled[i] == part;
}

/*
 * The previous homes of part that the current layout still has (a removed one is gone: not
 * asked, not counted) as node indices of t in cur[]; how many. 0 when the partition does not
 * move: its previous homes are its current ones, or the current homes and the previous ones
 * left are one and the same node (a layout shrunk to one node), or none is left.
 */
static int prev_homes(rp_router *rt, uint64_t part, int n, int *cur)
{
    int homes[PL_MAX_CELLS], old[PL_MAX_CELLS];
    int nh = rp_homes(rt->map, part, n, homes), no = rp_homes(rt->prev_map, part, n, old);
    if (nh < 0 || no <= 0)
        return 0;
    int same = nh == no, single = nh == 1, got = 0;
    for (int i = 0; i < no; i++) {
        int j = rt->prev_idx[old[i]], home = 0;
        for (int h = 0; h < nh && j >= 0; h++)
            home |= homes[h] == j;
        same &= home;
        if (j >= 0 && rt->t->nodes[j].state != PL_REMOVED) {
            cur[got++] = j;
            single &= home;
        }
    }
    return same || single ? 0 : got;
}

int rp_route_prev(rp_router *rt, const rp_part *p, int n, rp_replica **out)
{
    if (!rt || !p || !p->bucket || n < 1 || n > PL_MAX_CELLS || !rt->prev_map ||
        atomic_load(&rt->all_settled))
        return 0;
    uint64_t part = pl_partition_id(p->bucket, p->shard);
    pthread_mutex_lock(&rt->mu);
    int done = settled_locked(rt, part);
    pthread_mutex_unlock(&rt->mu);
    int cur[PL_MAX_CELLS], got = 0;
    int no = done ? 0 : prev_homes(rt, part, n, cur);
    for (int i = 0; i < no; i++) {
        rp_replica *r = replica_of(rt, cur[i]);
        if (r)
            out[got++] = r;
    }
    return got;
}

int rp_router_moving(rp_router *rt, const char *bucket, uint32_t shard, int n)
{
    int cur[PL_MAX_CELLS];
    if (!rt || !bucket || !rt->prev_map || n < 1 || n > PL_MAX_CELLS)
        return 0;
    uint64_t part = pl_partition_id(bucket, shard);
    pthread_mutex_lock(&rt->mu);
    int done = settled_locked(rt, part);
    pthread_mutex_unlock(&rt->mu);
    return !done && prev_homes(rt, part, n, cur) > 0;
}

cm_err rp_router_settle(rp_router *rt, const char *bucket, uint32_t shard)
{
    if (!rt || !bucket)
        return CM_ERR_INVAL;
    uint64_t part = pl_partition_id(bucket, shard);
    cm_err e = CM_OK;
    pthread_mutex_lock(&rt->mu);
    size_t i = settled_find(rt, part);
    if (!(i < rt->nsettled && rt->settled[i] == part)) {
        if (rt->nsettled == rt->cap) {
            size_t cap = rt->cap ? rt->cap * 2 : 64;
            uint64_t *p = realloc(rt->settled, cap * sizeof(*p));
            if (p)
                rt->settled = p, rt->cap = cap;
        }
        if (rt->nsettled < rt->cap) {
            memmove(rt->settled + i + 1, rt->settled + i,
                    (rt->nsettled - i) * sizeof(*rt->settled));
            rt->settled[i] = part;
            rt->nsettled++;
        } else {
            e = CM_ERR_NOMEM;
        }
    }
    pthread_mutex_unlock(&rt->mu);
    return e;
}

void rp_router_settle_all(rp_router *rt)
{
    if (!rt)
        return;
    atomic_store(&rt->all_settled, 1);
}

int rp_router_handoff(rp_router *rt)
{
    if (!rt)
        return 0;
    return rt->prev_map && !atomic_load(&rt->all_settled);
}
