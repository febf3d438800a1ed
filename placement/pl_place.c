/*
 * pl_place.c - placement of cells and metadata partitions over a topology (see pl.h).
 *
 * A map is the topology compiled into three levels, each a flat array grouped by parent: AZs,
 * then their nodes (contiguous per AZ), then their eligible drives (contiguous per node). Every
 * item carries a 64-bit hash of its identity (AZ name, node id, node id + drive id: never its
 * position, so adding a node does not rename the others) and its weight (a drive's capacity
 * weight, a node's and an AZ's the sum below them).
 *
 * Placing n = k+m cells deals them down the levels:
 *   1. rank the AZs for this object; deal cells round robin over the ranking, one per AZ per
 *      round, an AZ taking at most cap cells (pl_az_cap) and at most its drive count;
 *   2. inside each AZ, rank its nodes and deal its cells round robin the same way;
 *   3. inside each node, take its best-ranked drives.
 * So cells spread over as many AZs, then nodes, as the caps allow, and the ranking decides which
 * AZs/nodes/drives get the extra ones. The chosen drives are then put in cell order by a second
 * per-object hash, so data and parity roles spread evenly over drives.
 *
 * Ranking is weighted rendezvous hashing (HRW): item i with weight w_i gets the key
 * -log2(u_i) / w_i where u_i in (0,1) is hash(object, item); smaller keys rank first. The best
 * item is then item i with probability w_i / sum w, and a change in one item's weight or presence
 * only reorders objects that ranked it near the top: the minimal movement. -log2 is computed in
 * integers (24 fraction bits, by repeated squaring), and keys are compared by cross-multiplying in
 * 128 bits, so no floating point and no libm: every binary on every machine ranks alike.
 * PL_MAP_RING ranks instead by walking a ring of virtual nodes (128 per mean weight of the group)
 * from hash(object), taking items as first met; docs/placement.md compares the two.
 *
 * Thread safety: a map is immutable after pl_map_new; placement uses only the stack.
 */
#include <stdlib.h>
#include <string.h>

#include "pl.h"
#include "pl_int.h"

#define RING_VNODES 128 /* virtual nodes per item of mean weight */
#define LOG_BITS 8      /* the -log2 table has 2^LOG_BITS steps */
#define LOG_TABLE (1u << LOG_BITS)
#define SALT_AZ 0x9e3779b97f4a7c15ull
#define SALT_DRIVE 0xbf58476d1ce4e5b9ull
#define SALT_ORDER 0x94d049bb133111ebull
#define SALT_PART 0xd6e8feb86659fd93ull
#define SALT_RING 0x2545f4914f6cdd1dull

typedef struct {
    uint64_t hash;
    uint64_t weight;
    int first, count;     /* children in the next level (drives: unused) */
    int ring, nring;      /* this item's children's ring in m->ring (PL_MAP_RING only) */
    uint16_t tnode, tdrv; /* drives: position in the topology */
    int ndrives;          /* eligible drives below */
    int az;               /* drives: index of their AZ */
    uint8_t down;         /* drives: effective state down (a home, but not writable) */
} item;

typedef struct {
    uint64_t point;
    int child; /* index into the child level */
} vnode;

struct pl_map {
    unsigned flags;
    int naz, nnode, ndrive;
    item *az, *node, *drive;
    item root; /* parent of the AZs (its ring ranks AZs) */
    vnode *ring;
    int nring, ringcap;
    uint32_t log2tab[LOG_TABLE + 1]; /* log2(1 + i / LOG_TABLE), 24 fraction bits */
};

static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then mixed */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return pl_mix64(h);
}

static int eligible(unsigned flags, pl_state node, pl_state drive)
{
    pl_state s = node > drive ? node : drive;
    return s == PL_UP || (s == PL_DOWN && !(flags & PL_MAP_LIVE));
}

static int cmp_vnode(const void *a, const void *b)
{
    const vnode *x = a, *y = b;
    return x->point < y->point ? -1 : x->point > y->point ? 1 : x->child - y->child;
}

/* Build the ring of parent's children [first, first+count) of level items. */
static cm_err build_ring(pl_map *m, item *parent, const item *items)
{
    uint64_t total = 0;
    for (int i = 0; i < parent->count; i++)
        total += items[parent->first + i].weight;
    parent->ring = m->nring;
    for (int i = 0; i < parent->count; i++) {
        const item *c = &items[parent->first + i];
        /* vnodes = RING_VNODES * w / mean w, at least one */
        uint64_t nv = (uint64_t)((unsigned __int128)RING_VNODES * c->weight * parent->count /
                                 (total ? total : 1));
        nv = nv ? nv : 1;
        for (uint64_t v = 0; v < nv; v++) {
            if (m->nring == m->ringcap) {
                int cap = m->ringcap ? m->ringcap * 2 : 1024;
                vnode *r = realloc(m->ring, (size_t)cap * sizeof(*r));
                if (!r)
                    return CM_ERR_NOMEM;
                m->ring = r;
                m->ringcap = cap;
            }
            m->ring[m->nring++] =
                (vnode){pl_mix64(c->hash ^ pl_mix64(v + SALT_RING)), parent->first + i};
        }
    }
    parent->nring = m->nring - parent->ring;
    qsort(m->ring + parent->ring, (size_t)parent->nring, sizeof(vnode), cmp_vnode);
    return CM_OK;
}

void pl_map_free(pl_map *m)
{
    if (!m)
        return;
    free(m->az);
    free(m->node);
    free(m->drive);
    free(m->ring);
    free(m);
}

/* Fill the three levels from t: AZs in order of first appearance, nodes grouped per AZ. */
static void compile(pl_map *m, const pl_topology *t)
{
    for (int i = 0; i < t->nnodes; i++) {
        const pl_node *tn = &t->nodes[i];
        int first = 1;
        for (int p = 0; p < i && first; p++)
            first = strcmp(t->nodes[p].az, tn->az) != 0;
        if (!first)
            continue;
        item *az = &m->az[m->naz++];
        *az = (item){.hash = pl_mix64(name_hash(tn->az) ^ SALT_AZ), .first = m->nnode};
        for (int j = i; j < t->nnodes; j++) {
            const pl_node *n = &t->nodes[j];
            if (strcmp(n->az, tn->az) != 0)
                continue;
            item *nd = &m->node[m->nnode];
            *nd = (item){.hash = name_hash(n->id), .first = m->ndrive};
            for (int d = 0; d < n->ndrives; d++) {
                if (!eligible(m->flags, n->state, n->drives[d].state))
                    continue;
                m->drive[m->ndrive++] =
                    (item){.hash = pl_mix64(nd->hash ^ pl_mix64(n->drives[d].id ^ SALT_DRIVE)),
                           .weight = n->drives[d].weight,
                           .tnode = (uint16_t)j,
                           .tdrv = (uint16_t)d,
                           .ndrives = 1,
                           .az = m->naz - 1,
                           .down = (n->state > n->drives[d].state ? n->state
                                                                  : n->drives[d].state) == PL_DOWN};
                nd->weight += n->drives[d].weight;
                nd->count++;
            }
            nd->ndrives = nd->count;
            if (nd->count == 0)
                continue; /* nothing eligible: the node is not a choice */
            m->nnode++;
            az->weight += nd->weight;
            az->ndrives += nd->ndrives;
            az->count++;
        }
        if (az->count == 0)
            m->naz--;
    }
    m->root = (item){.first = 0, .count = m->naz};
}

/* log2(x / 2^31) in 24-bit fixed point for x in [2^31, 2^32], by repeated squaring. */
static uint32_t log2_mantissa(uint64_t x)
{
    uint32_t frac = 0;
    for (int i = 0; i < 24; i++) {
        x = (x * x) >> 31; /* squaring doubles the log: its next bit is whether x reached 2 */
        frac <<= 1;
        if (x >= (2ull << 31)) {
            x >>= 1;
            frac |= 1;
        }
    }
    return frac;
}

static void build_log_table(pl_map *m)
{
    for (uint64_t i = 0; i < LOG_TABLE; i++)
        m->log2tab[i] = log2_mantissa((1ull << 31) + (i << (31 - LOG_BITS)));
    m->log2tab[LOG_TABLE] = 1u << 24; /* log2(2) */
}

cm_err pl_map_new(const pl_topology *t, unsigned flags, pl_map **out)
{
    int total = 0;
    for (int i = 0; i < t->nnodes; i++)
        total += t->nodes[i].ndrives;
    pl_map *m = calloc(1, sizeof(*m));
    if (!m)
        return CM_ERR_NOMEM;
    m->flags = flags;
    build_log_table(m);
    m->az = calloc((size_t)t->nnodes + 1, sizeof(item));
    m->node = calloc((size_t)t->nnodes + 1, sizeof(item));
    m->drive = calloc((size_t)total + 1, sizeof(item));
    cm_err e = m->az && m->node && m->drive ? CM_OK : CM_ERR_NOMEM;
    if (e == CM_OK)
        compile(m, t);
    if (e == CM_OK && (flags & PL_MAP_RING)) {
        e = build_ring(m, &m->root, m->az);
        for (int a = 0; e == CM_OK && a < m->naz; a++)
            e = build_ring(m, &m->az[a], m->node);
        for (int n = 0; e == CM_OK && n < m->nnode; n++)
            e = build_ring(m, &m->node[n], m->drive);
    }
    if (e != CM_OK) {
        pl_map_free(m);
        return e;
    }
    *out = m;
    return CM_OK;
}

/*
 * -log2(u) in 24-bit fixed point, u = v / 2^63 with v the top 63 bits of h (made odd: v > 0).
 * The mantissa's log comes from the table with linear interpolation (error below 3e-6).
 */
static uint32_t neglog2(const pl_map *m, uint64_t h)
{
    uint64_t v = (h >> 1) | 1;
    int e = 63 - __builtin_clzll(v);
    uint64_t x = e >= 31 ? v >> (e - 31) : v << (31 - e); /* v / 2^e in [1, 2), 31 fraction bits */
    uint32_t i = (uint32_t)(x >> (31 - LOG_BITS)) & (LOG_TABLE - 1);
    uint64_t rem = x & ((1ull << (31 - LOG_BITS)) - 1);
    uint32_t lo = m->log2tab[i], hi = m->log2tab[i + 1];
    uint32_t frac = lo + (uint32_t)(((uint64_t)(hi - lo) * rem) >> (31 - LOG_BITS));
    return (63u << 24) - (((uint32_t)e << 24) + frac);
}

typedef struct {
    uint32_t l; /* -log2(u) */
    uint64_t w;
    uint64_t tie;
    int idx;
} key;

static int key_before(const key *a, const key *b)
{
    unsigned __int128 x = (unsigned __int128)a->l * b->w, y = (unsigned __int128)b->l * a->w;
    return x != y ? x < y : a->tie < b->tie;
}

/*
 * Rank the children of parent (items of level lv) for object hash obj: out receives the best
 * `want` child indices (want <= parent->count), best first.
 */
static void rank(const pl_map *m, const item *parent, const item *lv, uint64_t obj, int want,
                 int *out)
{
    if (m->flags & PL_MAP_RING) {
        const vnode *r = m->ring + parent->ring;
        int lo = 0, hi = parent->nring, got = 0;
        uint64_t start = pl_mix64(obj ^ parent->hash ^ SALT_RING);
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            if (r[mid].point < start)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (int s = 0; s < parent->nring && got < want; s++) {
            int c = r[(lo + s) % parent->nring].child, dup = 0;
            for (int i = 0; i < got && !dup; i++)
                dup = out[i] == c;
            if (!dup)
                out[got++] = c;
        }
        /* a child with only vnodes hidden behind others' is still reachable: append the rest */
        for (int c = parent->first; got < want && c < parent->first + parent->count; c++) {
            int dup = 0;
            for (int i = 0; i < got && !dup; i++)
                dup = out[i] == c;
            if (!dup)
                out[got++] = c;
        }
        return;
    }
    key best[PL_MAX_CELLS + 1];
    int nb = 0;
    for (int i = 0; i < parent->count; i++) {
        const item *c = &lv[parent->first + i];
        uint64_t h = pl_mix64(obj ^ c->hash);
        key k = {neglog2(m, h), c->weight, h, parent->first + i};
        /* insertion into the sorted best list, kept at most `want` long */
        int pos = nb;
        while (pos > 0 && key_before(&k, &best[pos - 1]))
            pos--;
        if (pos >= want)
            continue;
        if (nb < want)
            nb++;
        memmove(&best[pos + 1], &best[pos], (size_t)(nb - 1 - pos) * sizeof(key));
        best[pos] = k;
    }
    for (int i = 0; i < want; i++)
        out[i] = best[i].idx;
}

/*
 * Deal n cells round robin over the ranked children order[0..nord): one per child per round,
 * child i taking at most min(cap, its capacity). got[i] receives the counts. Returns how many
 * were dealt (n unless the capacities are too small).
 */
static int deal(const item *lv, const int *order, int nord, int n, int cap, int by_drives, int *got)
{
    int dealt = 0, progress = 1;
    memset(got, 0, (size_t)nord * sizeof(int));
    while (dealt < n && progress) {
        progress = 0;
        for (int i = 0; i < nord && dealt < n; i++) {
            int room = by_drives ? lv[order[i]].ndrives : lv[order[i]].count;
            if (got[i] < cap && got[i] < room) {
                got[i]++;
                dealt++;
                progress = 1;
            }
        }
    }
    return dealt;
}

int pl_az_cap(const pl_map *m, int k, int nparity)
{
    int n = k + nparity, a = m->naz ? m->naz : 1;
    if (nparity > 0 && a >= (n + nparity - 1) / nparity)
        return nparity;
    return (n + a - 1) / a;
}

static int cmp_u64_idx(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

cm_err pl_place(const pl_map *m, const uint8_t id[16], int k, int nparity, pl_cell *out)
{
    int n = k + nparity;
    if (k < 1 || nparity < 0 || n > PL_MAX_CELLS)
        return CM_ERR_INVAL;
    if (n > m->ndrive)
        return CM_ERR_UNAVAILABLE;
    uint64_t obj = pl_id_hash(id);
    /* every AZ has a drive, so the first round of dealing ends within the best n AZs */
    int azs[PL_MAX_CELLS], per_az[PL_MAX_CELLS];
    int naz = m->naz < n ? m->naz : n;
    rank(m, &m->root, m->az, obj, naz, azs);
    int cap = pl_az_cap(m, k, nparity);
    /* too few drives in some AZs for the cap: spread as evenly as the drives allow */
    if (deal(m->az, azs, naz, n, cap, 1, per_az) < n)
        deal(m->az, azs, naz, n, n, 1, per_az);
    uint64_t chosen[PL_MAX_CELLS][2]; /* order key, drive item */
    int nc = 0;
    for (int a = 0; a < naz && nc < n; a++) {
        if (!per_az[a])
            continue;
        const item *az = &m->az[azs[a]];
        int nodes[PL_MAX_CELLS], per_node[PL_MAX_CELLS];
        int want = per_az[a] < az->count ? per_az[a] : az->count;
        rank(m, az, m->node, obj, want, nodes);
        deal(m->node, nodes, want, per_az[a], n, 1, per_node);
        for (int j = 0; j < want; j++) {
            int drives[PL_MAX_CELLS];
            rank(m, &m->node[nodes[j]], m->drive, obj, per_node[j], drives);
            for (int d = 0; d < per_node[j]; d++) {
                chosen[nc][0] = pl_mix64(obj ^ m->drive[drives[d]].hash ^ SALT_ORDER);
                chosen[nc++][1] = (uint64_t)drives[d];
            }
        }
    }
    qsort(chosen, (size_t)nc, sizeof(chosen[0]), cmp_u64_idx);
    for (int i = 0; i < nc; i++) {
        const item *d = &m->drive[chosen[i][1]];
        out[i] = (pl_cell){d->tnode, d->tdrv};
    }
    return nc == n ? CM_OK : CM_ERR_UNAVAILABLE;
}

static int usable(const item *d, const uint8_t *node_dead)
{
    return !d->down && !(node_dead && node_dead[d->tnode]);
}

/*
 * How well drive d stands in for a lost cell, by tier (higher is better): the lost drive's node,
 * then its AZ on a node holding none of the object's cells, then its AZ, then an AZ under the cap
 * on a fresh node, then an AZ under the cap, then anywhere.
 */
static int tier(const pl_map *m, const item *d, const item *lost, const int *cells, int n, int cap)
{
    int node_used = 0, in_az = 0;
    for (int i = 0; i < n; i++) {
        node_used |= m->drive[cells[i]].tnode == d->tnode;
        in_az += m->drive[cells[i]].az == d->az;
    }
    if (d->tnode == lost->tnode)
        return 5;
    if (d->az == lost->az)
        return node_used ? 3 : 4;
    if (in_az < cap)
        return node_used ? 1 : 2;
    return 0;
}

cm_err pl_handoff(const pl_map *m, const uint8_t id[16], int k, int nparity, pl_cell *cells,
                  const uint8_t *node_dead, int *nreplaced)
{
    int n = k + nparity, idx[PL_MAX_CELLS], replaced = 0;
    if (k < 1 || nparity < 0 || n > PL_MAX_CELLS)
        return CM_ERR_INVAL;
    for (int i = 0; i < n; i++) {
        idx[i] = -1;
        for (int d = 0; d < m->ndrive && idx[i] < 0; d++)
            if (m->drive[d].tnode == cells[i].node && m->drive[d].tdrv == cells[i].drive)
                idx[i] = d;
        if (idx[i] < 0)
            return CM_ERR_INVAL; /* not a drive of this map */
    }
    uint64_t obj = pl_id_hash(id);
    int cap = pl_az_cap(m, k, nparity);
    cm_err e = CM_OK;
    for (int i = 0; i < n; i++) {
        const item *lost = &m->drive[idx[i]];
        if (usable(lost, node_dead))
            continue;
        int best = -1, best_tier = -1;
        key best_key = {0};
        for (int d = 0; d < m->ndrive; d++) {
            const item *c = &m->drive[d];
            int taken = 0;
            for (int j = 0; j < n && !taken; j++)
                taken = idx[j] == d;
            if (taken || !usable(c, node_dead))
                continue;
            int t = tier(m, c, lost, idx, n, cap);
            uint64_t h = pl_mix64(obj ^ c->hash ^ pl_mix64((uint64_t)i + SALT_ORDER));
            key kd = {neglog2(m, h), c->weight, h, d};
            if (t > best_tier || (t == best_tier && key_before(&kd, &best_key))) {
                best = d;
                best_tier = t;
                best_key = kd;
            }
        }
        if (best < 0) {
            e = CM_ERR_UNAVAILABLE; /* the cell keeps its unusable home */
            continue;
        }
        idx[i] = best;
        cells[i] = (pl_cell){m->drive[best].tnode, m->drive[best].tdrv};
        replaced++;
    }
    if (nreplaced)
        *nreplaced = replaced;
    return e;
}

cm_err pl_partition(const pl_map *m, uint64_t part, int n, int *out)
{
    if (n < 1 || n > PL_MAX_CELLS)
        return CM_ERR_INVAL;
    if (n > m->nnode)
        return CM_ERR_UNAVAILABLE;
    uint64_t obj = pl_mix64(part ^ SALT_PART);
    int azs[PL_MAX_CELLS], per_az[PL_MAX_CELLS], got = 0;
    int naz = m->naz < n ? m->naz : n;
    rank(m, &m->root, m->az, obj, naz, azs);
    deal(m->az, azs, naz, n, n, 0, per_az); /* one node per AZ per round: distinct AZs first */
    for (int a = 0; a < naz && got < n; a++) {
        int nodes[PL_MAX_CELLS];
        if (!per_az[a])
            continue;
        rank(m, &m->az[azs[a]], m->node, obj, per_az[a], nodes);
        for (int j = 0; j < per_az[a]; j++)
            out[got++] = m->drive[m->node[nodes[j]].first].tnode;
    }
    return CM_OK;
}

uint64_t pl_partition_id(const char *bucket, uint32_t shard)
{
    return pl_mix64(name_hash(bucket) ^ pl_mix64((uint64_t)shard + SALT_PART));
}
