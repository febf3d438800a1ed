/*
 * md_merkle.c - Merkle summaries of a bucket's records, so two replicas find the keys they
 * disagree on by exchanging a few hashes instead of their key lists.
 *
 * Shape: a complete tree of MD_MERKLE_FANOUT (16) children per node, depth d (1..5), so
 * 16^d leaves. A key goes to the leaf numbered by the top 4d bits of SHA-256(key): replicas that
 * hold different key sets still put every key in the same leaf, which ranges cut by key count
 * would not. A leaf's hash is the sum, lane by lane (two u64 mod 2^64), of the 16-byte digests of
 * its records (md_rec_digest: key, hlc, node, vector, tombstone; not the local generation), so it
 * does not depend on the order keys are added; an inner node's hash is the first 16 bytes of the
 * SHA-256 of its children's hashes. Storage: one array of 16-byte hashes, level by level.
 *
 * Use: the replicas of a partition build a tree each over the same depth, then walk top-down
 * (md_merkle_diff locally; over the node RPC one side asks for the children of each differing
 * node with md_merkle_node): a difference in k keys costs at most 1 + 16 d k hashes. The keys of
 * the differing leaves (md_merkle_leaf_keys, one walk of the bucket) are then compared by digest
 * (md_rec_diff) and the differing records exchanged and resolved (md_object_resolve).
 *
 * Threading: a built tree is immutable; building takes one read transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "md_int.h"

struct md_merkle {
    int depth;
    md_key_filter filter; /* while building: keys to summarise (NULL: all) */
    void *farg;
    uint64_t count;
    size_t off[MD_MERKLE_MAX_DEPTH + 2]; /* first node of each level; off[depth + 1] = total */
    uint8_t (*h)[16];
};

static cm_err leaf_index(int depth, const uint8_t *key, size_t klen, size_t *leaf)
{
    uint8_t d[32];
    cm_sha256(key, klen, d);
    *leaf = cm_get_be32(d) >> (32 - 4 * depth);
    return CM_OK;
}

int md_merkle_depth_for(uint64_t nkeys)
{
    int d = 1;
    while (d < MD_MERKLE_MAX_DEPTH && ((uint64_t)1 << (4 * d)) * 8 < nkeys)
        d++;
    return d;
}

static void lane_add(uint8_t acc[16], const uint8_t add[16])
{
    for (int lane = 0; lane < 16; lane += 8)
        cm_put_be64(acc + lane, cm_get_be64(acc + lane) + cm_get_be64(add + lane));
}

static cm_err build_one(void *arg, const uint8_t *key, size_t klen, const md_object *o, int *stop)
{
    md_merkle *t = arg;
    uint8_t dg[16];
    size_t leaf;
    (void)stop;
    cm_err e = md_rec_digest(key, klen, o, dg);
    if (e == CM_OK)
        e = leaf_index(t->depth, key, klen, &leaf);
    if (e != CM_OK)
        return e;
    lane_add(t->h[t->off[t->depth] + leaf], dg);
    t->count++;
    return CM_OK;
}

/* Hash each inner level from the one below, bottom-up. */
static cm_err build_inner(md_merkle *t)
{
    for (int lv = t->depth - 1; lv >= 0; lv--) {
        for (size_t i = t->off[lv]; i < t->off[lv + 1]; i++) {
            uint8_t full[32];
            size_t child = t->off[lv + 1] + (i - t->off[lv]) * MD_MERKLE_FANOUT;
            cm_sha256(t->h[child], 16 * MD_MERKLE_FANOUT, full);
            memcpy(t->h[i], full, 16);
        }
    }
    return CM_OK;
}

cm_err md_merkle_build(md_store *md, const char *bucket, int depth, md_merkle **out)
{
    return md_merkle_build_ex(md, bucket, depth, NULL, NULL, out);
}

cm_err md_merkle_build_ex(md_store *md, const char *bucket, int depth, md_key_filter filter,
                          void *farg, md_merkle **out)
{
    *out = NULL;
    if (depth < 1 || depth > MD_MERKLE_MAX_DEPTH)
        return CM_ERR_INVAL;
    md_merkle *t = calloc(1, sizeof(*t));
    if (!t)
        return CM_ERR_NOMEM;
    t->depth = depth;
    t->filter = filter, t->farg = farg;
    size_t width = 1;
    for (int lv = 0; lv <= depth; lv++, width *= MD_MERKLE_FANOUT)
        t->off[lv + 1] = t->off[lv] + width;
    cm_err e = CM_ERR_NOMEM;
    if ((t->h = calloc(t->off[depth + 1], 16)) != NULL)
        e = md_rec_walk(md, bucket, NULL, t->filter, t->farg, build_one, t);
    if (e == CM_OK)
        e = build_inner(t);
    t->filter = NULL, t->farg = NULL;
    if (e != CM_OK) {
        md_merkle_free(t);
        return e;
    }
    *out = t;
    return CM_OK;
}

void md_merkle_free(md_merkle *t)
{
    if (!t)
        return;
    free(t->h);
    free(t);
}

int md_merkle_depth(const md_merkle *t)
{
    return t->depth;
}

uint64_t md_merkle_count(const md_merkle *t)
{
    return t->count;
}

const uint8_t *md_merkle_node(const md_merkle *t, int level, size_t index)
{
    if (level < 0 || level > t->depth || index >= t->off[level + 1] - t->off[level])
        return NULL;
    return t->h[t->off[level] + index];
}

size_t md_merkle_leaf_of(const md_merkle *t, const char *key)
{
    size_t leaf;
    leaf_index(t->depth, (const uint8_t *)key, strlen(key), &leaf); /* 0 on failure */
    return leaf;
}

/* Compare the children of node idx at level lv (both trees), queueing the differing ones. */
static void diff_children(const md_merkle *a, const md_merkle *b, int lv, size_t idx, size_t *next,
                          size_t *nn, size_t *compared)
{
    for (size_t c = idx * MD_MERKLE_FANOUT; c < (idx + 1) * MD_MERKLE_FANOUT; c++) {
        (*compared)++;
        if (memcmp(md_merkle_node(a, lv + 1, c), md_merkle_node(b, lv + 1, c), 16) != 0)
            next[(*nn)++] = c;
    }
}

cm_err md_merkle_diff(const md_merkle *a, const md_merkle *b, size_t **leaves, size_t *n,
                      size_t *compared)
{
    *leaves = NULL, *n = 0, *compared = 1;
    if (a->depth != b->depth)
        return CM_ERR_INVAL;
    if (memcmp(a->h[0], b->h[0], 16) == 0)
        return CM_OK;
    /* Differing nodes of the current level, then of the next; both at most the leaf count. */
    size_t width = a->off[a->depth + 1] - a->off[a->depth];
    size_t *cur = malloc(width * sizeof(*cur)), *next = malloc(width * sizeof(*next));
    if (!cur || !next) {
        free(cur);
        free(next);
        return CM_ERR_NOMEM;
    }
    size_t nc = 1;
    cur[0] = 0;
    for (int lv = 0; lv < a->depth; lv++) {
        size_t nn = 0;
        for (size_t i = 0; i < nc; i++)
            diff_children(a, b, lv, cur[i], next, &nn, compared);
        size_t *tmp = cur;
        cur = next, next = tmp, nc = nn;
    }
    free(next);
    *leaves = cur, *n = nc; /* ascending: children are queued in order */
    return CM_OK;
}

typedef struct {
    int depth;
    md_key_filter filter;
    void *farg;
    const size_t *leaves;
    size_t nleaves;
    md_rec_info *a;
    size_t n, cap;
} leaf_ctx;

static int has_leaf(const leaf_ctx *c, size_t leaf)
{
    size_t lo = 0, hi = c->nleaves;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->leaves[mid] == leaf)
            return 1;
        if (c->leaves[mid] < leaf)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static cm_err leaf_one(void *arg, const uint8_t *key, size_t klen, const md_object *o, int *stop)
{
    leaf_ctx *c = arg;
    size_t leaf;
    (void)stop;
    cm_err e = leaf_index(c->depth, key, klen, &leaf);
    if (e != CM_OK || !has_leaf(c, leaf))
        return e;
    return md_rec_info_add(&c->a, &c->n, &c->cap, key, klen, o);
}

cm_err md_merkle_leaf_keys(md_store *md, const char *bucket, const md_merkle *t,
                           const size_t *leaves, size_t nleaves, md_rec_info **out, size_t *n)
{
    return md_merkle_leaf_keys_ex(md, bucket, t->depth, NULL, NULL, leaves, nleaves, out, n);
}

cm_err md_merkle_leaf_keys_ex(md_store *md, const char *bucket, int depth, md_key_filter filter,
                              void *farg, const size_t *leaves, size_t nleaves, md_rec_info **out,
                              size_t *n)
{
    leaf_ctx c = {depth, filter, farg, leaves, nleaves, NULL, 0, 0};
    md_bucket b;
    *out = NULL, *n = 0;
    if (depth < 1 || depth > MD_MERKLE_MAX_DEPTH)
        return CM_ERR_INVAL;
    cm_err e = md_bucket_get(md, bucket, &b);
    if (e != CM_OK)
        return e; /* CM_ERR_NOTFOUND: no such bucket */
    e = nleaves ? md_rec_walk(md, bucket, NULL, c.filter, c.farg, leaf_one, &c) : CM_OK;
    if (e != CM_OK) {
        md_rec_infos_free(c.a, c.n);
        c.a = NULL, c.n = 0;
    }
    *out = c.a, *n = c.n;
    return e;
}
