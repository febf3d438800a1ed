/*
 * rp_replica.c - the replica calls: dispatch through the backend's function table, and the
 * partition of a key.
 *
 * rp_shard_of is FNV-1a (64 bits) of the key's bytes modulo nshards: stable across processes,
 * versions and machines (no seed), which it must be, since every node places keys with it.
 */
#include "rp_replica.h"

uint32_t rp_shard_of(const char *key, uint32_t nshards)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *s = (const unsigned char *)key; *s; s++)
        h = (h ^ *s) * 1099511628211ULL;
    return nshards > 1 ? (uint32_t)(h % nshards) : 0;
}

cm_err rp_replica_get(rp_replica *r, const rp_part *p, const char *key, rp_done done, void *arg)
{
    return r->ops->get(r, p, key, done, arg);
}

cm_err rp_replica_put(rp_replica *r, const rp_part *p, const md_object *rec, const char *hint_for,
                      rp_done done, void *arg)
{
    return r->ops->put(r, p, rec, hint_for, done, arg);
}

cm_err rp_replica_list(rp_replica *r, const rp_part *p, const char *prefix, const char *after,
                       size_t max, rp_done done, void *arg)
{
    return r->ops->list(r, p, prefix, after, max > RP_LIST_MAX ? RP_LIST_MAX : max, done, arg);
}

cm_err rp_replica_merkle(rp_replica *r, const rp_part *p, int depth, rp_done done, void *arg)
{
    return r->ops->merkle(r, p, depth, done, arg);
}

cm_err rp_replica_leaf_keys(rp_replica *r, const rp_part *p, int depth, const uint32_t *leaves,
                            size_t nleaves, rp_done done, void *arg)
{
    return r->ops->leaf_keys(r, p, depth, leaves, nleaves, done, arg);
}

void rp_replica_free(rp_replica *r)
{
    if (r)
        r->ops->free(r);
}
