/*
 * pl_sim.c - the placement simulator behind `cairn admin layout simulate` and the balance tests.
 *
 * Ids come from a seeded xorshift, so a run is reproducible. For a change (before -> after) each
 * id is placed on both maps; a cell moves when the drive that held it under before is not among
 * the object's drives under after. Cells whose drive stays in the set do not move even if their
 * index changes: a record names the drive of every cell, so rebalancing rewrites the record rather
 * than the data. Drives are matched across the two topologies by (node id, drive id).
 * Single-threaded; the caller's progress callback runs on its thread.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pl.h"

/* Flat index of every drive (node by node); firsts[i] is node i's first. */
static int *flat_firsts(const pl_topology *t, int *total)
{
    int *f = malloc(((size_t)t->nnodes + 1) * sizeof(int)), sum = 0;
    if (!f)
        return NULL;
    for (int i = 0; i < t->nnodes; i++) {
        f[i] = sum;
        sum += t->nodes[i].ndrives;
    }
    f[t->nnodes] = sum;
    *total = sum;
    return f;
}

/* For every flat drive of before, its flat index in after, or -1. */
static int *match_drives(const pl_topology *before, const int *bf, const pl_topology *after,
                         const int *af, int nbefore)
{
    int *to = malloc(((size_t)nbefore + 1) * sizeof(int));
    if (!to)
        return NULL;
    for (int i = 0; i < before->nnodes; i++) {
        int j = pl_topology_find(after, before->nodes[i].id);
        for (int d = 0; d < before->nodes[i].ndrives; d++) {
            to[bf[i] + d] = -1;
            for (int e = 0; j >= 0 && e < after->nodes[j].ndrives; e++)
                if (after->nodes[j].drives[e].id == before->nodes[i].drives[d].id)
                    to[bf[i] + d] = af[j] + e;
        }
    }
    return to;
}

static uint64_t next_id(uint64_t *s, uint8_t id[16])
{
    for (int half = 0; half < 2; half++) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        memcpy(id + 8 * half, s, 8);
    }
    return *s;
}

/* How many cells of one object share its fullest AZ. */
static int max_per_az(const pl_topology *t, const pl_cell *c, int n)
{
    int best = 0;
    for (int i = 0; i < n; i++) {
        int same = 0;
        for (int j = 0; j < n; j++)
            same += strcmp(t->nodes[c[i].node].az, t->nodes[c[j].node].az) == 0;
        best = same > best ? same : best;
    }
    return best;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

cm_err pl_simulate(const pl_topology *before, const pl_topology *after, unsigned flags, int k,
                   int nparity, uint64_t objects, uint64_t seed, pl_sim_progress progress,
                   void *arg, pl_sim_result *r)
{
    int n = k + nparity, na = 0, nb = 0;
    if (k < 1 || nparity < 0 || n > PL_MAX_CELLS)
        return CM_ERR_INVAL;
    memset(r, 0, sizeof(*r));
    pl_map *ma = NULL, *mb = NULL;
    int *af = NULL, *bf = NULL, *to = NULL;
    cm_err e = pl_map_new(after, flags, &ma);
    if (e == CM_OK && before)
        e = pl_map_new(before, flags, &mb);
    if (e != CM_OK)
        goto out;
    af = flat_firsts(after, &na);
    bf = before ? flat_firsts(before, &nb) : NULL;
    to = before && af && bf ? match_drives(before, bf, after, af, nb) : NULL;
    r->load = calloc((size_t)na + 1, sizeof(uint64_t));
    e = r->load && af && (!before || to) ? CM_OK : CM_ERR_NOMEM;
    if (e != CM_OK)
        goto out;
    r->nload = na;
    int cap = pl_az_cap(ma, k, nparity);
    uint64_t s = seed ? seed : 1;
    double spent = 0;
    for (uint64_t o = 0; o < objects; o++) {
        uint8_t id[16];
        pl_cell ca[PL_MAX_CELLS], cb[PL_MAX_CELLS];
        next_id(&s, id);
        double t0 = now_ns();
        cm_err pe = pl_place(ma, id, k, nparity, ca);
        spent += now_ns() - t0;
        if (pe != CM_OK) {
            r->not_placed++;
            continue;
        }
        r->objects++;
        r->cells += (uint64_t)n;
        int flat[PL_MAX_CELLS];
        for (int i = 0; i < n; i++) {
            flat[i] = af[ca[i].node] + ca[i].drive;
            r->load[flat[i]]++;
        }
        r->az_over += max_per_az(after, ca, n) > cap;
        if (mb && pl_place(mb, id, k, nparity, cb) == CM_OK)
            for (int i = 0; i < n; i++) {
                int there = to[bf[cb[i].node] + cb[i].drive], kept = 0;
                for (int j = 0; j < n && !kept; j++)
                    kept = flat[j] == there;
                r->moved += !kept;
                r->moved_index += flat[i] != there;
            }
        if (progress && (o + 1) % 65536 == 0)
            progress(arg, o + 1, objects);
    }
    r->ns_per_place = r->objects ? spent / (double)(r->objects + r->not_placed) : 0;
out:
    pl_map_free(ma);
    pl_map_free(mb);
    free(af);
    free(bf);
    free(to);
    if (e != CM_OK)
        pl_sim_result_release(r);
    return e;
}

void pl_sim_result_release(pl_sim_result *r)
{
    free(r->load);
    r->load = NULL;
    r->nload = 0;
}

static uint32_t up_weight(const pl_node *n, int d)
{
    pl_state s = n->state > n->drives[d].state ? n->state : n->drives[d].state;
    return s == PL_UP ? n->drives[d].weight : 0;
}

double pl_ideal_moved(const pl_topology *before, const pl_topology *after)
{
    uint64_t wb, wa;
    pl_topology_stats(before, &wb, NULL, NULL);
    pl_topology_stats(after, &wa, NULL, NULL);
    if (!wb || !wa)
        return 0;
    /* sum of the shares drives lose; what they lose is what others gain */
    double lost = 0;
    for (int i = 0; i < before->nnodes; i++) {
        const pl_node *n = &before->nodes[i];
        int j = pl_topology_find(after, n->id);
        for (int d = 0; d < n->ndrives; d++) {
            double sb = (double)up_weight(n, d) / (double)wb, sa = 0;
            for (int e = 0; j >= 0 && e < after->nodes[j].ndrives; e++)
                if (after->nodes[j].drives[e].id == n->drives[d].id)
                    sa = (double)up_weight(&after->nodes[j], e) / (double)wa;
            lost += sb > sa ? sb - sa : 0;
        }
    }
    return lost;
}
