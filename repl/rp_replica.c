/*
 * rp_replica.c - the replica interface's dispatch (rp_replica.h, docs/replication.md): checks
 * the arguments the same way for every backend, then calls through the backend's table.
 *
 * Shards: rp_shard_of is md_shard_of (meta/md_replica.c), so the node RPC's service, which
 * filters by shard inside the store, and the coordinator place a key alike.
 */
#include <string.h>

#include "cm_util.h"
#include "rp_replica.h"

uint32_t rp_shard_of(const char *key, uint32_t nshards)
{
    return md_shard_of((const uint8_t *)key, strlen(key), nshards);
}

static int part_ok(const rp_part *p)
{
    size_t bl = p && p->bucket ? strlen(p->bucket) : 0;
    return bl > 0 && bl <= MD_BUCKET_MAX && p->nshards >= 1 && p->nshards <= RP_MAX_SHARDS &&
           p->shard < p->nshards;
}

static int key_ok(const rp_part *p, const char *key)
{
    size_t kl = key ? strlen(key) : 0;
    return kl > 0 && kl <= MD_MAX_KEY && rp_shard_of(key, p->nshards) == p->shard;
}

cm_err rp_replica_get(rp_replica *r, const rp_part *p, const char *key, rp_done done, void *arg)
{
    if (!part_ok(p) || !key_ok(p, key))
        return CM_ERR_INVAL;
    return r->ops->get(r, p, key, done, arg);
}

cm_err rp_replica_put(rp_replica *r, const rp_part *p, const md_object *rec, const char *hint_for,
                      rp_done done, void *arg)
{
    if (!part_ok(p) || !rec || !key_ok(p, rec->key))
        return CM_ERR_INVAL;
    return r->ops->put(r, p, rec, hint_for, done, arg);
}

cm_err rp_replica_list(rp_replica *r, const rp_part *p, const char *prefix, const char *after,
                       size_t max, rp_done done, void *arg)
{
    if (!part_ok(p) || max == 0 || (prefix && strlen(prefix) > MD_MAX_KEY) ||
        (after && strlen(after) > MD_MAX_KEY))
        return CM_ERR_INVAL;
    return r->ops->list(r, p, prefix, after, CM_MIN(max, (size_t)RP_LIST_MAX), done, arg);
}

cm_err rp_replica_merkle(rp_replica *r, const rp_part *p, int depth, rp_done done, void *arg)
{
    if (!part_ok(p) || depth < 1 || depth > MD_MERKLE_MAX_DEPTH)
        return CM_ERR_INVAL;
    return r->ops->merkle(r, p, depth, done, arg);
}

cm_err rp_replica_leaf_keys(rp_replica *r, const rp_part *p, int depth, const uint32_t *leaves,
                            size_t nleaves, rp_done done, void *arg)
{
    if (!part_ok(p) || depth < 1 || depth > MD_MERKLE_MAX_DEPTH || nleaves == 0 || !leaves)
        return CM_ERR_INVAL;
    for (size_t i = 0; i < nleaves; i++)
        if (leaves[i] >= (uint32_t)1 << (4 * depth))
            return CM_ERR_INVAL;
    return r->ops->leaf_keys(r, p, depth, leaves, nleaves, done, arg);
}

cm_err rp_replica_tombs(rp_replica *r, const rp_part *p, uint64_t before, const char *after,
                        size_t max, rp_done done, void *arg)
{
    if (!part_ok(p) || before == 0 || max == 0 || max > RP_LIST_MAX ||
        (after && strlen(after) > MD_MAX_KEY))
        return CM_ERR_INVAL;
    return r->ops->tombs(r, p, before, after, max, done, arg);
}

cm_err rp_replica_tomb_drop(rp_replica *r, const rp_part *p, uint64_t mark,
                            const md_rec_info *infos, size_t n, rp_done done, void *arg)
{
    if (!part_ok(p) || mark == 0 || n == 0 || n > RP_LIST_MAX || !infos)
        return CM_ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        if (!key_ok(p, infos[i].key))
            return CM_ERR_INVAL;
    return r->ops->tomb_drop(r, p, mark, infos, n, done, arg);
}

void rp_replica_free(rp_replica *r)
{
    if (r)
        r->ops->free(r);
}
