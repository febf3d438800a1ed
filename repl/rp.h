/*
 * rp.h - replicated metadata, the Dynamo way (docs/replication.md): the coordinator that the S3
 * gateway of a cluster node calls instead of its local md_store for object records.
 *
 * A bucket's keys are split into nshards partitions (rp_shard_of); each partition lives on N
 * replicas (rp_router, from the adopted layout). A write stamps the record with this node's
 * hybrid logical clock and a version vector, sends it to all N home replicas at once and succeeds
 * once W of them made it durable; a read asks R of them (this node's own store first; another
 * home only when one fails or is slow), resolves them by md_object_resolve, and when they
 * disagree writes the winner back to the stale and the unasked homes (read repair). A listing
 * merges the shards' ordered pages (k-way merge), each shard read from R replicas.
 *
 * Consistency per bucket (rp_consistency):
 *   - RP_STRONG (the default): strict quorum over the home replicas only; a partition that cannot
 *     reach W (or R) answers CM_ERR_UNAVAILABLE (S3: 503 ServiceUnavailable). Read-after-write and
 *     list-after-write, also across a layout change that moves the partition's homes: until the
 *     partition settled on its new homes, the quorums are needed among its previous homes too
 *     (the handoff, rp_config.route_prev; docs/replication.md, "Layout changes").
 *   - RP_AVAILABLE: sloppy quorum: a home replica that does not answer is replaced by the next
 *     node of the preference list, which keeps the record as a hint for it (rp_replica put with
 *     hint_for) and delivers it later; writable while any node of the list answers. Reads may be
 *     stale until hints are delivered and anti-entropy ran.
 *
 * Threading: the rp_object_* / rp_list_objects calls block and are made from worker threads
 * (never from the loop of cfg.base); rp_object_get_async / rp_object_put_async do not block and
 * may be called from any thread. The replica calls run on cfg.base's loop, which must be
 * running in its own thread. Bounded: each call waits (or answers) within cfg.timeout_ms per
 * quorum round.
 */
#ifndef RP_H
#define RP_H

#include <stddef.h>
#include <stdint.h>

#include "cm_err.h"
#include "md.h"
#include "rp_replica.h"

struct event_base;

typedef enum { RP_STRONG = 0, RP_AVAILABLE = 1 } rp_consistency;

const char *rp_consistency_name(rp_consistency c); /* "strong", "available" */
cm_err rp_consistency_parse(const char *s, rp_consistency *out);

typedef struct rp rp;

/* One conditional write (a put with obj, or a delete of key when obj is NULL). */
typedef struct {
    const char *bucket;
    const char *key;
    const md_object *obj;
    const md_cond *cond;
    uint64_t fence; /* the partition leader's token (0: none); see rp_replica_put */
} rp_cond_write;

/* The per-key locks that serialise conditional writes on one node; coordinators of one node
 * share one set (rp_config.keylocks), so their conditional writes of a key run one at a time. */
typedef struct rp_keylocks rp_keylocks;
cm_err rp_keylocks_new(rp_keylocks **out);
void rp_keylocks_free(rp_keylocks *l); /* NULL is a no-op */

typedef struct {
    struct event_base *base; /* the loop the replicas run on (its thread is the caller's) */
    rp_router *router;       /* borrowed; see rp_set_router */
    /* partition -> replicas over router, on the loop's thread: rp_route (rp_replica.h) in a
     * node; tests plug their own. Required. */
    int (*route)(rp_router *rt, const rp_part *p, int n, int nfallback, rp_replica **out);
    md_hlc *clock;         /* borrowed: this node's clock (stamps every write) */
    uint32_t node;         /* this node's number in version vectors and as hlc_node */
    int n, w, r;           /* 0 = 3, 2, 2; needs w + r > n for RP_STRONG */
    uint32_t nshards;      /* 0 = 8; fixed for the life of a cluster */
    int timeout_ms;        /* per call; 0 = 5000 */
    int hedge_ms;          /* RP_AVAILABLE: homes silent this long get a stand-in for a write,
                              and a read answers from one home; 0 = timeout_ms / 4 */
    rp_keylocks *keylocks; /* borrowed, shared by this node's coordinators; NULL = its own */
    /* Where a conditional write runs (docs/replication.md, "Conditional writes"): NULL = here,
     * rp_cond_execute under keylocks, which makes it one compare-and-set per key only among
     * the coordinators sharing keylocks. A cluster sets it to forward the write to the
     * partition's leader (which calls rp_cond_execute there). Worker threads; may block. */
    cm_err (*cond_run)(void *arg, rp *c, const rp_part *p, const rp_cond_write *w);
    void *cond_arg;
    /* The consistency of a bucket (NULL: RP_STRONG for every bucket). Called on worker
     * threads: must not block. */
    rp_consistency (*consistency)(void *arg, const char *bucket);
    void *consistency_arg;
    /* The handoff after a layout change (docs/replication.md, "Layout changes"): the homes of
     * the partition in the previous layout, filled as route fills its homes, while they differ
     * from the current ones and the partition has not settled; 0 otherwise (NULL: never). Then a
     * strong read or write needs its quorum among the previous homes as well as among the
     * current ones. On the loop's thread; rp_route_prev in a node. */
    int (*route_prev)(rp_router *rt, const rp_part *p, int n, rp_replica **out);
    /* A monotonic clock in ms and the identity of its epoch (*epoch: two readings of one epoch
     * are comparable): what judges a Complete's claim dead (rp_upload_abort), never a wall
     * clock. NULL = CLOCK_MONOTONIC, epoch the host's boot id. Tests step it. Any thread. */
    int64_t (*mono)(void *arg, uint64_t *epoch);
    void *mono_arg;
} rp_config;

/* CM_ERR_INVAL without base, route or clock, or for n, w, r, nshards out of range. */
cm_err rp_new(const rp_config *cfg, rp **out);
/* Waits for every call in flight (late answers, read repairs, hedge timers: each ends within
 * its replica calls' own time limits), so nothing calls back afterwards. Not from the loop's
 * thread; no rp_* call may run or follow. NULL is a no-op. */
void rp_free(rp *c);
/* Swap the router after a layout change; returns once no call uses the old one, which may be
 * freed then. Not from the loop's thread. */
void rp_set_router(rp *c, rp_router *router);

/* The same contracts as md_object_get/put/delete and md_list_objects (meta/md.h), over the
 * partition's replicas. CM_ERR_UNAVAILABLE when a quorum cannot be had. put and delete never
 * hand back the replaced record (*had_old = 0): replaced bodies become garbage records on the
 * replicas, reclaimed after a grace period (a reader on another node may still use them). */
cm_err rp_object_get(rp *c, const char *bucket, const char *key, md_object *out);
/* rp_object_get that answers a tombstone too (out->tombstone, with the parts a Complete's
 * tombstone of a kept part names); CM_ERR_NOTFOUND only when the quorum holds no version of key
 * at all. */
cm_err rp_record_get(rp *c, const char *bucket, const char *key, md_object *out);
cm_err rp_object_put(rp *c, const char *bucket, const md_object *obj, const md_cond *cond,
                     md_object *old, int *had_old);
cm_err rp_object_delete(rp *c, const char *bucket, const char *key, const md_cond *cond,
                        md_object *old, int *had_old);
cm_err rp_list_objects(rp *c, const char *bucket, const md_list_query *q, md_list_result *out);

/*
 * rp_object_get and an unconditional rp_object_put for a caller on an event loop: the same
 * quorum read (with its write-back) and the same read-then-write, chained on cfg.base's loop
 * instead of blocking a thread. done runs once, on that loop, never inside the call; get's rec
 * is the record (the caller owns it) when err is CM_OK. When the call returns an error, done
 * never runs. Any thread. A conditional write blocks (its partition's leader): rp_object_put.
 */
typedef void (*rp_get_done)(void *arg, cm_err err, md_object *rec);
typedef void (*rp_put_done)(void *arg, cm_err err);
cm_err rp_object_get_async(rp *c, const char *bucket, const char *key, rp_get_done done, void *arg);
cm_err rp_object_put_async(rp *c, const char *bucket, const md_object *obj, rp_put_done done,
                           void *arg);

/*
 * Write rec, a record read with rp_object_get whose content (not its stamp) the caller changed,
 * as a successor of exactly the version read (the write of every swap: the leader's, below, run
 * on the record it reads; docs/chunks.md "Where the new layout goes"): it keeps the read
 * version's hlc and hlc_node and adds one to a version vector entry of this node's own for swaps
 * (RP_SWAP_NODE; one tick above the read HLC when a full vector had to drop an entry of the
 * version read), so it wins over the version read and over nothing else: a write that did not
 * read it (a PUT or DELETE concurrent with the swap) has a larger HLC than the version read, or
 * had already lost to it. Two swaps of one version through one node get distinct entry counters
 * (the later one wins); through two nodes, the encoded vectors settle it, the same on every
 * replica. No read, no condition; CM_ERR_UNAVAILABLE as rp_object_put (the write may have
 * reached some replicas).
 */
#define RP_SWAP_NODE(node) ((node) ^ 0x80000000u)
cm_err rp_object_swap(rp *c, const char *bucket, const md_object *rec);

/*
 * rp_object_swap of a record whose Object Lock fields (lock_mode, lock_until_ms, legal_hold) the
 * caller does not change (a tag, ACL or key re-wrap change), run where the key's conditional
 * writes run (md_cond.lock_change MD_COND_LOCK_KEEP: the partition's leader, under the key's
 * lock): the version read again at strict quorum, rec written as its successor with every field
 * of rec but the lock fields, which are the ones read. So a retention or hold change racing the
 * swap is never undone by it (docs/object-lock.md, "On a cluster"). When the key no longer holds
 * the version rec was read from (a PUT or DELETE won meanwhile), nothing is written: CM_OK, as
 * the swap that would lose to it. Errors as rp_object_put.
 */
cm_err rp_object_swap_keep_lock(rp *c, const char *bucket, const md_object *rec);

/*
 * The repair's layout swap (cmd/cluster_repair.c): rec is the record read with part's layout
 * replaced by the healed one, old the layout it replaced. Run where the key's conditional writes
 * run (md_cond.lock_change MD_COND_LOCK_LAYOUT: the partition's leader, under the key's lock): the
 * version read again at strict quorum must still name exactly old's cells in that part, and is
 * written as its own successor with only that part's layout replaced, so a retention, hold, tag
 * or ACL change that landed since rec was read stays. CM_ERR_CONFLICT when the key holds no such
 * part naming old (nothing written: another heal, a PUT or a DELETE came first); CM_ERR_INVAL
 * when rec's layout is not old's size; other errors as rp_object_put (the write may have reached
 * some replicas).
 */
cm_err rp_object_swap_layout(rp *c, const char *bucket, const md_object *rec, size_t part,
                             const md_layout *old);

/*
 * Versioning on a cluster (rp_version.c): a stamp of this node's clock (after everything it read
 * or received), and a write of rec at exactly the stamp it carries (rec->hlc, rec->hlc_node: one
 * rp_stamp of this coordinator), with a vector of this node's entry alone: no read, so against
 * every other version of the key it resolves by (hlc, node), the order version ids are made in.
 * CM_ERR_INVAL for a tombstone or a stamp not this node's; CM_ERR_UNAVAILABLE as rp_object_put.
 */
void rp_stamp(rp *c, uint64_t *hlc, uint32_t *node);
cm_err rp_object_put_at(rp *c, const char *bucket, const md_object *rec);

/*
 * Evaluate w's condition against a quorum read of the key and write it, all under this node's
 * per-key lock (keylocks): the body of a conditional rp_object_put / rp_object_delete, and what a
 * partition leader runs for the writes forwarded to it. CM_ERR_PRECONDITION / CM_ERR_NOTFOUND as
 * md_object_put says; CM_ERR_UNAVAILABLE when the read or the write cannot reach its quorum.
 */
cm_err rp_cond_execute(rp *c, const rp_cond_write *w);

/*
 * Anti-entropy of one partition (bucket, shard) between its home replicas: compare their Merkle
 * leaves at depth (0 = 2: 256 leaves), fetch the keys of differing leaves, read each differing
 * key from every home and write the winner (md_object_resolve) to the homes that lack it. At
 * most max_keys keys are repaired per call (0 = 1000); *more is set when differences remain.
 * CM_ERR_UNAVAILABLE when fewer than two homes answer. Blocks a worker thread (as rp_object_*).
 */
typedef struct {
    size_t leaves_differing; /* leaves whose hashes were not the same on every home */
    size_t keys_compared;    /* keys of those leaves */
    size_t keys_repaired;    /* keys written to at least one home */
    size_t writes;           /* replica writes */
    int more;
    size_t tombs_listed;    /* rp_antientropy_collect: old tombstones the first home listed */
    size_t tombs_collected; /* ... dropped on every home */
    int collect_skipped;    /* ... not tried: a home did not answer, or old records differ */
    int complete; /* every home answered (during a handoff: every current home and R of the
                     previous ones), every differing leaf was examined and every differing key
                     repaired on all of them: the current homes hold every acknowledged write */
} rp_ae_result;
cm_err rp_antientropy_run(rp *c, const char *bucket, uint32_t shard, int depth, size_t max_keys,
                          rp_ae_result *out);
/*
 * rp_antientropy_run, then tombstone collection (docs/replication.md, "Tombstone collection")
 * when before > 0 (an hlc: now minus the grace period). Only when every one of the N homes
 * answered and no record stamped below `before` differs between them (all differing leaves
 * examined): the tombstones stamped below `before` that every home lists with the same digest
 * (at most max_keys listed) are dropped on every home with a compare-and-set on that digest, and
 * each home's collection mark for the partition is raised to `before`, so that the homes refuse
 * an old version of a key whose tombstone went. Collection never makes the call fail: a home
 * that does not answer a listing or a drop leaves its tombstones for a later call.
 */
cm_err rp_antientropy_collect(rp *c, const char *bucket, uint32_t shard, int depth, size_t max_keys,
                              uint64_t before, rp_ae_result *out);

typedef struct {
    uint64_t gets, puts, deletes, lists;
    uint64_t unavailable;        /* calls that could not reach a quorum */
    uint64_t read_repairs;       /* stale replicas written back during reads */
    uint64_t repairs_dropped;    /* read repairs not sent: RP_REPAIR_MAX in flight, or closing */
    uint64_t hints_written;      /* writes taken by a stand-in */
    uint64_t cond_writes;        /* conditional writes run here (rp_cond_execute) */
    uint64_t ae_runs, ae_writes; /* anti-entropy calls, replica writes they made */
    uint64_t tombs_collected;    /* tombstones dropped on every home (rp_antientropy_collect) */
    uint64_t collect_skipped;    /* collections not tried (a home silent, old records differ) */
    uint64_t stale_retries;      /* ops refused as stale that ran again on a newer layout */
    uint64_t ops_live;           /* fan-outs alive now (a gauge, not a count) */
} rp_stats;
void rp_get_stats(rp *c, rp_stats *out);

#endif
