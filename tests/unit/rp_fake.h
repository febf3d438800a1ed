/*
 * rp_fake.h - a replica backend for the coordinator's tests: an md_store of its own, answering on
 * the test's loop, with faults to inject (down, hang, delay, lost writes) and counters.
 *
 * Each partition (bucket, shard) is kept in its own md bucket "bucket.shard", so its Merkle
 * tree and listings cover exactly the partition. A put merges (md_object_resolve against the
 * stored version, md_rec_put with the generation read; a partition leader's token, rp_part.fence,
 * admitted first by md_fence_admit, as it is by a get that carries one; a live record below the
 * partition's tombstone collection mark, of a key the fake lacks, is not applied); tombs and
 * tomb_drop are md_rec_tombs and md_rec_collect on the partition's md bucket; a put with hint_for
 * is kept as a hint in memory (fake_hints, fake_deliver_hints). Completions are posted with
 * event_base_once after delay_ms, never run inside the call. Faults and counters are read and set
 * from any thread.
 */
#ifndef RP_FAKE_H
#define RP_FAKE_H

#include "rp_replica.h"

typedef struct fake fake;

fake *fake_new(struct event_base *base, const char *dir, const char *id);
void fake_free(fake *f);
rp_replica *fake_replica(fake *f);
md_store *fake_store(fake *f);

typedef struct {
    int down;      /* calls complete with CM_ERR_UNAVAILABLE */
    int refuse;    /* calls return CM_ERR_UNAVAILABLE at once (nothing runs) */
    int hang_ms;   /* > 0: calls do nothing and complete with CM_ERR_TIMEOUT after hang_ms */
    int delay_ms;  /* completions come this late */
    int lose_puts; /* puts answer applied without storing (a replica that lies) */
    int stale;     /* calls complete with CM_ERR_STALE (a node on a newer layout than the caller) */
} fake_faults;
void fake_set_faults(fake *f, const fake_faults *ft);

typedef struct {
    unsigned gets, puts, lists, merkles, leaf_keys, hints;
    unsigned listed;            /* records answered by lists */
    unsigned tombs, tomb_drops; /* tombstone listings and drops */
    unsigned refused;           /* puts not applied: below a tombstone collection mark */
} fake_counts;
void fake_counts_get(fake *f, fake_counts *out);
/* The gets answered by n fakes, summed. */
unsigned fake_gets(fake **fakes, int n);

/* The stored record of bucket/key in its shard's md bucket (CM_ERR_NOTFOUND when none). */
cm_err fake_rec(fake *f, const char *bucket, uint32_t shard, const char *key, md_object *out);
/* Hints kept for node_id; fake_deliver_hints puts them into to's store (merge) and drops them. */
size_t fake_hints(fake *f, const char *node_id);
size_t fake_deliver_hints(fake *f, fake *to, uint32_t nshards);

/* A router over fakes: partition (b, s) has homes fakes[(s + i) % n] for i < n_homes... in that
 * rotation, and the rest of the fakes as stand-ins in the same order. */
struct rp_router;
struct rp_router *fake_router_new(fake **fakes, int n);
void fake_router_free(struct rp_router *rt);
int fake_route(struct rp_router *rt, const rp_part *p, int n, int nfallback, rp_replica **out);

#endif
