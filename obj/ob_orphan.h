/*
 * ob_orphan.h - the verdicts of the cluster's orphan sweep (docs/storage.md, "Orphans on a
 * cluster"; cmd/cluster_orphans.c runs it): which cells of a page listed on one drive may be
 * deleted, from their ages and the answers of the mark rounds.
 */
#ifndef CAIRN_OB_ORPHAN_H
#define CAIRN_OB_ORPHAN_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    OB_ORPHAN_NAMED = 0, /* a record names its blob: kept */
    OB_ORPHAN_YOUNG,     /* unnamed, but written within the grace (or of unknown age): kept */
    OB_ORPHAN_CANDIDATE, /* unnamed in the first round and older than the grace: ask again */
    OB_ORPHAN_ORPHAN     /* unnamed in both rounds and older than the grace: may be deleted */
} ob_orphan_verdict;

/*
 * After the first mark round: verdict[i] for cell i of n, from ages[i] (seconds since its last
 * write as its own node measured it when listing; < 0 unknown) and named[i] (1: some node's
 * records name it). Returns the number of candidates.
 */
size_t ob_orphan_first(const int64_t *ages, const uint8_t *named, size_t n, int64_t grace_s,
                       uint8_t *verdict);
/*
 * After the second round, which asked about the candidates only, in order: named2[j] for the
 * j-th candidate. A candidate named now is kept (a name moved between records during the first
 * round), the others become orphans. Returns the number of orphans.
 */
size_t ob_orphan_second(uint8_t *verdict, size_t n, const uint8_t *named2);

#endif
