/*
 * ob_orphan.c - the verdicts of the cluster's orphan sweep (ob_orphan.h).
 *
 * A cell is deleted only when no node's records named its blob in either of two complete mark
 * rounds and its own node listed it as last written more than the grace ago. Two rounds: a name
 * moving from one record to another (an upload's part to its object, a current version to an
 * older one, a record to garbage) can be missed by one round that asks one node before the move
 * and another after it; the second round starts after the first ended, so it sees the name at
 * its new place unless it moves again within seconds. An unknown age counts as young.
 */
#include "ob_orphan.h"

size_t ob_orphan_first(const int64_t *ages, const uint8_t *named, size_t n, int64_t grace_s,
                       uint8_t *verdict)
{
    size_t cand = 0;
    for (size_t i = 0; i < n; i++) {
        if (named[i])
            verdict[i] = OB_ORPHAN_NAMED;
        else if (ages[i] < 0 || ages[i] < grace_s)
            verdict[i] = OB_ORPHAN_YOUNG;
        else
            verdict[i] = OB_ORPHAN_CANDIDATE, cand++;
    }
    return cand;
}

size_t ob_orphan_second(uint8_t *verdict, size_t n, const uint8_t *named2)
{
    size_t j = 0, orphans = 0;
    for (size_t i = 0; i < n; i++) {
        if (verdict[i] != OB_ORPHAN_CANDIDATE)
            continue;
        verdict[i] = named2[j++] ? OB_ORPHAN_NAMED : OB_ORPHAN_ORPHAN;
        orphans += verdict[i] == OB_ORPHAN_ORPHAN;
    }
    return orphans;
}
