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
 */
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
};

void rp_router_free(rp_router *rt)
{
    if (!rt)
        return;
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
        nd_peer peer = {nd->id, host, 0};
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
