/*
 * rp_replica.h - one replica of a metadata partition, wherever it is (docs/replication.md).
 *
 * A partition is (bucket, shard): the keys of a bucket whose rp_shard_of(key, nshards) is shard.
 * It lives on N nodes (pl_partition over the adopted layout); each keeps its records (md_object
 * with hlc, hlc_node, version vector, tombstone) in its own md_store under the bucket's name, so
 * one node's md bucket holds the keys of every shard of that bucket it replicates, and the
 * operations below filter by shard.
 *
 * Two backends behind one function table, in the style of the chunk interface (obj/ob_chunk.h):
 *   - local: this node's md_store; the blocking md calls run on a worker pool (nd_work) and the
 *     completion is posted back to the caller's loop;
 *   - remote: another node's store over the node RPC (nd_client), asynchronous on the caller's
 *     loop already.
 * A router (rp_router) maps a partition to its replicas through the adopted layout.
 *
 * Contract, the same for both backends (one CUnit suite runs on each):
 *   - every call that returns CM_OK ends with exactly one rp_done on the caller's loop, never from
 *     inside the call that started it; a call that returns an error runs nothing;
 *   - get: the stored record of the key, tombstones included (CM_ERR_NOTFOUND when none); with
 *     p->fence (a partition leader's read), the replica first admits the token in its write
 *     order (md_fence_barrier), so that no write of an earlier leader lands after this read
 *     (CM_ERR_CONFLICT, nothing read, for a token lower than the partition's);
 *   - put (merge): the replica stores rec unless its own version of the key wins
 *     md_object_resolve; res.applied says which. Bodies that no longer belong to any record
 *     afterwards (the replaced version's, or the incoming one's when it lost) become durable
 *     garbage records (md_garbage_*), never freed at once. Durable before the completion.
 *     With hint_for set, the replica is a stand-in for that node (sloppy quorum): it keeps
 *     rec as a hint for it, durable (md_hint_put: not among its own records, so its listings and
 *     Merkle trees do not show it; res.applied = 1 once kept), and delivers it when the node
 *     answers again (rp_hints.h). With p->fence (a partition leader's conditional write, no
 *     hint), the replica admits the token in the write's transaction (md_rec_receive_fenced): a
 *     token lower than the highest it saw for the partition is refused with CM_ERR_CONFLICT,
 *     nothing stored;
 *   - list: records of the partition with keys after `after` (NULL = from the start) that start
 *     with prefix (NULL = all), in byte order, at most max, tombstones included, inline bodies
 *     left out (list entries carry the summary only); res.truncated when more follow;
 *   - merkle: the 16-byte hashes of the leaves of the partition's Merkle tree at depth
 *     (MD_MERKLE_FANOUT^depth leaves, md_merkle.c's hashing, over the shard's keys only), so two
 *     replicas of the same partition compare alike whatever else their stores hold; taken after
 *     every write queued at the replica before the call committed (md_barrier), and a remote
 *     replica refuses (CM_ERR_STALE) a write of an older layout that applies after its fence
 *     rose (md_guard): a settling run's read misses no write the replica will acknowledge;
 *   - leaf_keys: the digests (md_rec_info) of the partition's keys in the given leaves;
 *   - tombs: the partition's tombstones stamped below `before`, keys after `after` (NULL: from
 *     the start), at most max (<= RP_LIST_MAX), as digests in key order; res.truncated when more
 *     follow (md_rec_tombs);
 *   - tomb_drop: raise the partition's collection mark to `mark` and drop each of the n
 *     tombstones given if the replica still holds that very version (digest) below the mark
 *     (md_rec_collect); res.dropped[i] (res.ndropped = n) says which went. From then on a put
 *     of a record that is not a tombstone, stamped below the mark, for a key the replica does not
 *     hold is not applied (res.applied = 0: to the replica, a collected tombstone won);
 *   - errors: CM_ERR_NOTFOUND for an unknown bucket (get: also for an absent key; see res.
 *     no_bucket), CM_ERR_INVAL for a put stamped too far ahead of a replica's clock (when it
 *     keeps one: rp_replica_local_set_clock, nd_service_config.clock), CM_ERR_UNAVAILABLE for an
 * unreachable node, CM_ERR_TIMEOUT / CM_ERR_CLOSED from the wire, CM_ERR_CORRUPT for a record that
 * does not decode, CM_ERR_STALE (remote) for a call of a router on an older layout than the
 * node's fence (nd_service_config.epoch: every remote backend a router makes sends its epoch).
 *
 * Threading: a backend belongs to one loop (the base given at creation); calls and completions run
 * on that loop's thread.
 */
#ifndef RP_REPLICA_H
#define RP_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "cm_err.h"
#include "md.h"
#include "nd.h"
#include "pl.h"

#define RP_MAX_SHARDS 256

/* Which shard of nshards (1..RP_MAX_SHARDS) a key belongs to: a stable hash of the key. */
uint32_t rp_shard_of(const char *key, uint32_t nshards);

typedef struct {
    const char *bucket;
    uint32_t shard, nshards; /* shard < nshards */
    uint64_t fence; /* put: the partition leader's token of a conditional write (0: none) */
} rp_part;

typedef struct {
    cm_err err;
    int no_bucket;         /* get, list: err is CM_ERR_NOTFOUND because the bucket is unknown */
    const md_object *rec;  /* get: the stored record */
    md_object *take;       /* get: rec again when the receiver may move it out (copy the struct,
                              zero *take) instead of copying it; NULL: copy rec if needed */
    int applied;           /* put: 1 when the replica now holds rec, 0 when its own version won */
    const md_object *recs; /* list: nrecs records in key order (no inline bodies) */
    size_t nrecs;
    int truncated;            /* list: more follow after the last key */
    const uint8_t *hashes;    /* merkle: nleaves x 16 bytes */
    size_t nleaves;           /* merkle */
    const md_rec_info *infos; /* leaf_keys: ninfos digests in key order */
    size_t ninfos;
    const char *message;    /* a reason when err != CM_OK */
    const uint8_t *dropped; /* tomb_drop: ndropped flags, 1 for each tombstone dropped */
    size_t ndropped;
} rp_result;

/* The end of a call, on the backend's loop; res and what it points to live during the call. */
typedef void (*rp_done)(void *arg, const rp_result *res);

typedef struct rp_replica rp_replica;

typedef struct {
    cm_err (*get)(rp_replica *r, const rp_part *p, const char *key, rp_done done, void *arg);
    cm_err (*put)(rp_replica *r, const rp_part *p, const md_object *rec, const char *hint_for,
                  rp_done done, void *arg);
    cm_err (*list)(rp_replica *r, const rp_part *p, const char *prefix, const char *after,
                   size_t max, rp_done done, void *arg);
    cm_err (*merkle)(rp_replica *r, const rp_part *p, int depth, rp_done done, void *arg);
    cm_err (*leaf_keys)(rp_replica *r, const rp_part *p, int depth, const uint32_t *leaves,
                        size_t nleaves, rp_done done, void *arg);
    void (*free)(rp_replica *r);
    cm_err (*tombs)(rp_replica *r, const rp_part *p, uint64_t before, const char *after, size_t max,
                    rp_done done, void *arg);
    cm_err (*tomb_drop)(rp_replica *r, const rp_part *p, uint64_t mark, const md_rec_info *infos,
                        size_t n, rp_done done, void *arg);
} rp_replica_ops;

/* Every backend starts with this. */
struct rp_replica {
    const rp_replica_ops *ops;
    const char *node_id; /* the node it reaches (for logs, hints and the router) */
    int local;           /* this node's own store (answers without the network) */
};

/* The calls (dispatch through r->ops; rp_replica.c). max for list is capped at RP_LIST_MAX. */
#define RP_LIST_MAX 1000
cm_err rp_replica_get(rp_replica *r, const rp_part *p, const char *key, rp_done done, void *arg);
cm_err rp_replica_put(rp_replica *r, const rp_part *p, const md_object *rec, const char *hint_for,
                      rp_done done, void *arg);
cm_err rp_replica_list(rp_replica *r, const rp_part *p, const char *prefix, const char *after,
                       size_t max, rp_done done, void *arg);
cm_err rp_replica_merkle(rp_replica *r, const rp_part *p, int depth, rp_done done, void *arg);
cm_err rp_replica_leaf_keys(rp_replica *r, const rp_part *p, int depth, const uint32_t *leaves,
                            size_t nleaves, rp_done done, void *arg);
void rp_replica_free(rp_replica *r); /* NULL is a no-op */
/* Tombstone collection (docs/replication.md): n and max at most RP_LIST_MAX, before and mark > 0.
 */
cm_err rp_replica_tombs(rp_replica *r, const rp_part *p, uint64_t before, const char *after,
                        size_t max, rp_done done, void *arg);
cm_err rp_replica_tomb_drop(rp_replica *r, const rp_part *p, uint64_t mark,
                            const md_rec_info *infos, size_t n, rp_done done, void *arg);

struct event_base;

/* The local backend over md (borrowed, thread-safe), its blocking calls on work (borrowed),
 * completing on base's loop (created after evthread_use_pthreads). node_id is this node's. */
cm_err rp_replica_local_new(struct event_base *base, md_store *md, nd_work *work,
                            const char *node_id, rp_replica **out);
/* This node's clock (borrowed; NULL: none, the default): puts merge their records' stamps into
 * it and refuse (CM_ERR_INVAL) one more than MD_HLC_MAX_DRIFT_MS ahead (md_rec_receive), as the
 * node RPC does with nd_service_config.clock. Set before the first call. */
void rp_replica_local_set_clock(rp_replica *r, md_hlc *clock);
/* The remote backend: the store of peer (copied) through cl (borrowed, same loop). */
cm_err rp_replica_remote_new(nd_client *cl, const nd_peer *peer, rp_replica **out);

/*
 * partition -> replicas, from a topology: the node whose id is self resolves to local
 * (borrowed), every other node to a remote backend over cl at its address. rp_route fills
 * out[0..n) with the partition's home replicas in preference order (pl_partition over the
 * layout's homes), then up to nfallback more distinct nodes in preference order (stand-ins for
 * a sloppy quorum), and returns how many it filled (< 0 on error). Replicas stay owned by the
 * router, valid until rp_router_free.
 */
typedef struct rp_router rp_router;
cm_err rp_router_new(const pl_topology *t, const char *self, rp_replica *local, nd_client *cl,
                     rp_router **out);
void rp_router_free(rp_router *rt); /* NULL is a no-op */
int rp_route(rp_router *rt, const rp_part *p, int n, int nfallback, rp_replica **out);
/*
 * The homes of partition part (pl_partition_id) over m (a PL_MAP_HOMES map): pl_partition with n
 * shrunk to the eligible nodes when the layout has fewer (a small cluster keeps every partition on
 * all of them). Fills homes[0..ret) in preference order and returns how many; < 0 (a negated
 * cm_err) on error. rp_route's homes, and the one rule for "is this node a home" elsewhere (the
 * anti-entropy of cmd/cluster.c runs on the first home).
 */
int rp_homes(const pl_map *m, uint64_t part, int n, int *homes);
/* The replica of the node node_id (the local one for self); NULL when the layout has no such
 * node (or it is removed). Owned by the router. */
rp_replica *rp_router_replica(rp_router *rt, const char *node_id);

/*
 * The handoff after a layout change (docs/replication.md, "Layout changes"). set_previous gives
 * the router the layout adopted before its own (copied; once, before the router is used;
 * CM_ERR_INVAL otherwise; on an error the router has no previous layout). rp_route_prev
 * (rp_config.route_prev) then fills out[] with partition p's n homes in that layout that the
 * current one has not removed (replicas owned by the router) and returns how many, while the
 * partition moves (its previous homes are not its current ones; not when the current homes and
 * the previous ones left are one node) and has not settled; 0 otherwise, and always 0 without a
 * previous layout. rp_router_moving says the same of (bucket, shard) for n homes.
 * rp_router_settle ends one partition's handoff (CM_ERR_NOMEM), rp_router_settle_all every
 * one's; rp_router_handoff is 1 while a previous layout is kept and not all settled. Thread-safe
 * (the settled set has a mutex).
 */
cm_err rp_router_set_previous(rp_router *rt, const pl_topology *prev);
int rp_route_prev(rp_router *rt, const rp_part *p, int n, rp_replica **out);
int rp_router_moving(rp_router *rt, const char *bucket, uint32_t shard, int n);
cm_err rp_router_settle(rp_router *rt, const char *bucket, uint32_t shard);
void rp_router_settle_all(rp_router *rt);
int rp_router_handoff(rp_router *rt);

#endif
