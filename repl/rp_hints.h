/*
 * rp_hints.h - delivery of hints (docs/replication.md, "Hints").
 *
 * A node that stood in for an unreachable home replica (rp_replica put with hint_for) keeps the
 * record in its store's hint table (md_hint_put). This component, run by every node on its loop,
 * delivers them: each round lists a bounded batch of hints (per target node, on a worker), merges
 * each into the target's replica (rp_replica_put, no hint), and drops a hint once the target
 * answered (applied, or its own version won: superseded either way) unless a newer hint for the
 * key arrived meanwhile. A target that does not answer keeps its hints; the next round (after
 * interval_ms) tries again, so delivery is paced and never a retry storm. A hint for a node the
 * layout no longer names goes to the first home of its partition instead (rehomed), and is
 * dropped once that home answered: no hint waits for a node that will not come back.
 *
 * Threading: everything on cfg.base's loop (which must run); the md calls on cfg.work.
 */
#ifndef RP_HINTS_H
#define RP_HINTS_H

#include <stdint.h>

#include "rp_replica.h"

struct event_base;

typedef struct {
    struct event_base *base;
    md_store *md;      /* this node's store, holding its hints (borrowed) */
    nd_work *work;     /* for the md calls (borrowed) */
    rp_router *router; /* the targets' replicas (borrowed; rp_hints_set_router) */
    uint32_t nshards;  /* the cluster's shards per bucket; 0 = 8 */
    int batch;         /* hints per round, 1..1000; 0 = 64 */
    int interval_ms;   /* between rounds; 0 = 1000 */
    /* A hint whose record is stamped more than this long ago (wall clock) is dropped undelivered
     * (0: never): the tombstone grace period, so that no hint can bring back a version whose
     * tombstone may be collected (docs/replication.md, "Tombstone collection"). */
    int64_t max_age_ms;
} rp_hints_config;

typedef struct rp_hints rp_hints;

/* Starts the rounds (the first after interval_ms). */
cm_err rp_hints_new(const rp_hints_config *cfg, rp_hints **out);
/* Stop: a round in flight ends first (its completions need the loop to keep running until
 * rp_hints_busy is 0), then the component frees itself. NULL is a no-op. */
void rp_hints_free(rp_hints *h);
/* Run a round now unless one is running. */
void rp_hints_kick(rp_hints *h);
/* Swap the router after a layout change (between rounds; the old one may go after this). */
void rp_hints_set_router(rp_hints *h, rp_router *rt);
/* 1 while a round is in flight. */
int rp_hints_busy(const rp_hints *h);

typedef struct {
    uint64_t rounds;     /* rounds run */
    uint64_t listed;     /* hints read in rounds */
    uint64_t delivered;  /* the target applied the record */
    uint64_t superseded; /* the target's own version won */
    uint64_t failed;     /* the target did not answer (kept for a later round) */
    uint64_t dropped;    /* hints removed after delivery */
    uint64_t unroutable; /* hints seen while no layout is known (kept) */
    uint64_t rehomed;    /* hints for a node the layout no longer names, sent to a current home */
    uint64_t expired;    /* hints older than max_age_ms, dropped undelivered */
} rp_hints_stats;
void rp_hints_get_stats(rp_hints *h, rp_hints_stats *out); /* any thread */

#endif
