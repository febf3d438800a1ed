/*
 * rp_int.h - the coordinator's insides, shared by its files (not public).
 *
 * An rp_op is one fan-out: the same replica call (get, put, list, merkle, leaf_keys, tombs or
 * tomb_drop) sent to the
 * replicas of one partition, with a count of successes that ends the wait. The worker thread that
 * made it posts it to cfg.base's loop (rp_op_start), which routes it and sends the calls; the
 * completions run on the loop and store their results in the op's slots; the worker waits on the
 * op's condition variable until enough succeeded, every call ended, or its deadline passed, and
 * then reads the slots (rp_op_wait); or, started with rp_op_go, its on_finish runs on the loop
 * instead of a waiter waking up. Every field of an op that the loop writes after the start is
 * guarded by the coordinator's mutex.
 *
 * Lifetime: an op is reference counted under the coordinator's mutex: one reference for its
 * waiter (an asynchronous op's on_finish drops it; none for a detached op: read repair,
 * anti-entropy writes), one per call in flight and one per pending hedge, lazy or stale-retry timer
 * (the deadline timer holds none: it is freed when the op finishes, before on_finish runs; the
 * lazy timer is stopped then too, dropping its reference, as it would do nothing). The
 * last one frees it, on whichever thread drops it; a completion arriving after the waiter gave up
 * therefore finds its op alive. A freed op goes to the coordinator's spares (rp.spare, at most
 * RP_SPARE_OPS) for the next one, and counts as alive until it is there. rp_free waits until no
 * op exists, so no completion can ever arrive at a freed coordinator.
 */
#ifndef RP_INT_H
#define RP_INT_H

#include <pthread.h>

#include "rp.h"

struct event;

#define RP_SLOTS 12      /* replicas of one fan-out: homes and stand-ins */
#define RP_REPAIR_MAX 64 /* read-repair writes in flight at most (more are dropped, counted) */
/* Freed ops kept for reuse (rp.spare), ~11 KB each; none in a sanitizer build, where each op's
 * end must stay visible to AddressSanitizer (a late completion touching a freed op). */
#if defined(__SANITIZE_ADDRESS__)
#define RP_SPARE_OPS 0
#else
#define RP_SPARE_OPS 64
#endif
#define RP_KEYLOCKS 256 /* stripes of the per-key lock of conditional writes */
#define RP_PAGE_MIN 16  /* listing: records per shard page, at least */

/* A lazy read (rp_op.lazy) asks its other homes when one of those asked is this slow. */
#define RP_LAZY_HEDGE_MS 50
/* An op refused as stale looks for the coordinator's next router this often. */
#define RP_STALE_POLL_MS 10

typedef enum {
    RP_K_GET,
    RP_K_PUT,
    RP_K_LIST,
    RP_K_MERKLE,
    RP_K_LEAVES,
    RP_K_TOMBS,
    RP_K_TDROP
} rp_kind;
typedef enum { RP_SLOT_IDLE = 0, RP_SLOT_SENT, RP_SLOT_DONE } rp_slot_state;
#define RP_SET_NEW 1u /* a home in the current layout */
#define RP_SET_OLD 2u /* a home in the previous layout (rp_config.route_prev) */

typedef struct rp_op rp_op;

/* One replica call of an op and what it answered (copies owned by the op). */
typedef struct {
    rp_op *op;
    rp_replica *r;
    const char *hint_for; /* a stand-in: the home node it writes for */
    int standin;          /* home slot index this one stands in for, -1 when a home */
    int replaced;         /* a home whose write went to a stand-in */
    uint8_t set;          /* handoff: RP_SET_NEW (a current home), RP_SET_OLD (a previous one) */
    rp_slot_state state;
    cm_err err;
    int no_bucket, applied, truncated;
    int has_rec;
    md_object rec;   /* get */
    md_object *recs; /* list */
    size_t nrecs;
    uint8_t *hashes; /* merkle */
    size_t nleaves;
    md_rec_info *infos; /* leaf_keys, tombs */
    size_t ninfos;
    uint8_t *dropped; /* tomb_drop */
    size_t ndropped;
} rp_slot;

struct rp_op {
    rp *c;
    rp_kind kind;
    char bucket[MD_BUCKET_MAX + 1];
    rp_part part;
    char *key;     /* get */
    md_object rec; /* put: the record (owned) */
    char *prefix;  /* list */
    char *after;
    size_t max;
    int depth; /* merkle, leaf_keys */
    uint32_t *leaves;
    size_t nleaves;
    uint64_t before;   /* tombs: the cutoff; tomb_drop: the mark */
    md_rec_info *drop; /* tomb_drop: the tombstones (owned) */
    size_t ndrop;
    int need;     /* successes that end the wait */
    int handoff;  /* the previous layout's homes are in the slots too (RP_SET_OLD) */
    int need_old; /* handoff: successes among them needed as well */
    int sloppy;   /* put: a failed or slow home is replaced by a stand-in with a hint */
    int lenient;  /* read of an RP_AVAILABLE bucket: at the hedge, one answer is enough */
    int fixed;    /* the replicas were given (no routing) */
    int repair;   /* get: write the winner back to stale replicas once all answered */
    int detached; /* no waiter */
    int nslots;
    rp_slot slot[RP_SLOTS];
    rp_replica *fallback[RP_SLOTS]; /* stand-ins in preference order */
    int nfallback, next_fallback;
    int nok, nended;
    int finished, refs, routed;
    unsigned rt_gen; /* the router generation the op holds a use of */
    /* An asynchronous waiter (rp_op_go) instead of a blocked one: on_finish(op) runs once on
     * the loop when the op finished or its deadline timer fired, without c->mu; it owns the
     * waiter's reference. fin_arg is its argument. */
    void (*on_finish)(rp_op *op);
    void *fin_arg;
    struct event *deadline; /* on_finish's timer (cfg.timeout_ms), on the loop only */
    /* A lazy get (a get's or a put's read, rp_coord.c read_op_new) asks `need` homes, this
     * node's first; the next one when one fails, and the rest at RP_LAZY_HEDGE_MS. */
    int lazy;
    int next_lazy;         /* the first home not asked yet (under c->mu) */
    struct event *lazy_ev; /* that hedge's timer, on the loop only; pending, it holds a
                            * reference; stopped when the op finishes (rp_op.c lazy_stop) */
    /* The stale retry (rp_op.c, stale_wait): a routed op that a replica refused with
     * CM_ERR_STALE and that ended without its quorum waits for the coordinator's next router
     * and runs again on it, once, within cfg.timeout_ms of t0. */
    int64_t t0;        /* when the op was started (rp_now_ms) */
    int need_asked;    /* need before the first routing shrank it */
    int stale;         /* waiting for a newer router (under c->mu) */
    int restarted;     /* it ran again on a newer router already */
    int given_up;      /* its blocked waiter stopped waiting (rp_op_wait): no run again */
    rp_op *next_spare; /* in rp.spare */
    /* Last: a spare op is zeroed up to here for its next use, its condition variable kept (no
     * waiter can be on it: the op had no reference left). */
    pthread_cond_t cv;
};

struct rp_keylocks {
    pthread_mutex_t mu[RP_KEYLOCKS];
};

struct rp {
    rp_config cfg; /* with defaults filled in */
    pthread_mutex_t mu;
    pthread_cond_t idle; /* signalled when ops reaches 0 or an old router drains */
    rp_router *router, *old_router;
    unsigned rt_gen, rt_users, old_users; /* uses of the current and of the previous router */
    int draining;                         /* a swap waits for the previous router's users */
    size_t ops;                           /* live ops */
    size_t repairs_inflight;
    int closing;
    rp_stats st;
    rp_keylocks *locks;
    int own_locks;
    uint64_t swap_seq; /* the last swap entry counter rp_object_swap gave (c->mu) */
    /* Ops whose last reference went, kept for the next rp_op_new (c->mu): an op is ~11 KB, and
     * malloc served it from the arena of the thread that made it (a gateway loop) while the
     * coordinator's loop freed it, a cross-arena free per op and a fastbin consolidation per
     * allocation that large. */
    rp_op *spare;
    size_t nspare;
};

/* rp_op.c */
rp_op *rp_op_new(rp *c, rp_kind kind, const char *bucket, uint32_t shard);
/* Post the op to the loop; on failure the op is freed. */
cm_err rp_op_start(rp_op *op);
/* Wait until the op finished or deadline_ms (CLOCK_MONOTONIC ms) passed; 1 when finished. The
 * caller reads the slots under c->mu afterwards, then drops its reference with rp_op_put. */
int rp_op_wait(rp_op *op, int64_t deadline_ms);
void rp_op_put(rp_op *op);
/* The op has its quorum (c->mu held): need successes, and during a handoff need among the
 * current homes and need_old among the previous ones. */
int rp_op_quorum_locked(const rp_op *op);
/* rp_op_start, then rp_op_wait until cfg.timeout_ms from now. */
cm_err rp_op_run(rp_op *op);
/* rp_op_start without a blocked waiter: on_finish(op) runs on the loop (c->mu not held) once the
 * op finished, or cfg.timeout_ms after it started, and drops the waiter's reference. On failure
 * the op is freed and on_finish never runs. Any thread, the loop's too. */
cm_err rp_op_go(rp_op *op, void (*on_finish)(rp_op *op), void *arg);
/* An op over the given replicas of parent's partition, under parent's router generation
 * (parent must still be held), needing all n. */
rp_op *rp_op_new_fixed(rp *c, const rp_op *parent, rp_kind kind, rp_replica *const *reps, size_t n);
/* Start a detached put of rec to the given replicas of parent's partition (read repair), under
 * parent's router generation (parent must still be held); counted in repairs_inflight, dropped
 * (0 returned, counted) when RP_REPAIR_MAX are in flight or the coordinator closes. */
int rp_op_repair(rp *c, const rp_op *parent, const md_object *rec, rp_replica *const *reps,
                 size_t n);
int64_t rp_now_ms(void);
/* A reply from a replica is "the same version" as rec (stamps, vector and tombstone agree). */
int rp_same_version(const md_object *a, const md_object *b);

/* rp_coord.c */
rp_consistency rp_mode(rp *c, const char *bucket);
/* rp_object_put_at for any node's stamp, with a partition leader's fence (0: none); its vector
 * also dominates seen (NULL: nothing seen; rec->vv is ignored). lost (may be NULL): 0 when every
 * home that answered applied it (none held a version that beat it), else 1. */
cm_err rp_put_stamped(rp *c, const char *bucket, const md_object *rec, const md_vv *seen,
                      uint64_t fence, int *lost);
/* rp_version.c: obj is a new version for a conditional write (rp_version_put with a condition:
 * an S3 key, vstamp equal to its stamp, its order id in version_id, after an 'n' when it is a
 * Suspended bucket's null version), which the leader writes once the condition held: its version
 * record and its pointer, at its stamp, fenced. */
int rp_version_new(const md_object *obj);
cm_err rp_version_write(rp *c, const char *bucket, const md_object *obj, uint64_t fence);
/* cond->noncurrent for version record vkey of key (rp_version.c): CM_OK while the key's pointer
 * names another version, the next newer version was written at cond->successor_ms and at least
 * cond->newer_min versions are newer; else CM_ERR_PRECONDITION (CM_ERR_NOTFOUND: no such version).
 * key NULL (the leader): cond->noncurrent_key, else taken from vkey (a long-form vkey, whose key
 * is not in it: CM_ERR_PRECONDITION). A vkey that is not a version key of the key:
 * CM_ERR_PRECONDITION. Blocks (quorum reads). */
cm_err rp_version_older(rp *c, const char *bucket, const char *key, const char *vkey,
                        const md_cond *cond);
/* rp_version_put without a condition at a stamp (hlc, node) of this node's clock taken before
 * (after a read of key's record): what rp_version_put does once it has its stamp. For tests that
 * interleave other writes between the stamp and the version's records. */
cm_err rp_version_put_at(rp *c, const char *bucket, const md_object *obj, int suspended,
                         uint64_t hlc, uint32_t node, md_vres *res);

/* rp_list.c: rp_list_objects over the multipart key space (md_mpkey.c), which it cuts off. */
cm_err rp_list_reserved(rp *c, const char *bucket, const md_list_query *q, md_list_result *out);
/* rp_list.c: rp_list_objects keeping the keys whose latest version is a delete marker. */
cm_err rp_list_latest(rp *c, const char *bucket, const md_list_query *q, md_list_result *out);
/* rp_list.c: one page of the live records of the partition of route_key whose keys start with
 * prefix, after `after` (NULL: from the prefix), read from R homes (RP_AVAILABLE: one will do)
 * and resolved per key; tombstones left out, summaries only (no headers, metadata or parts).
 * *next (heap, the caller frees it) is where the next page starts, NULL at the end. */
cm_err rp_list_records(rp *c, const char *bucket, const char *route_key, const char *prefix,
                       const char *after, size_t max, md_object **out, size_t *n, char **next);

#endif
