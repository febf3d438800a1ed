/*
 * pl.h - placement: which drives hold the cells of a body.
 *
 * Single-node version: the drives of one node, numbered 0..ndrives-1. The starting drive rotates
 * with a hash of the blob id so that data and parity cells spread evenly over the drives; offline
 * drives are skipped. The choice is a pure function of its arguments (deterministic), so it can be
 * recomputed anywhere. AZ- and node-aware placement and the ring come later.
 */
#ifndef PL_H
#define PL_H

#include <stdint.h>

#include "cm_err.h"

#define PL_NONE 0xFF /* "no drive" in a cell slot; also the largest drive count + 1 */

/*
 * Choose ncells distinct online drives for blob id: out[i] is the drive of cell i. Walks the drives
 * from start = hash(id) % ndrives upward (wrapping), taking each online one (online[d] != 0).
 * *nchosen receives how many were found; when that is fewer than ncells the remaining out[] slots
 * are PL_NONE and the result is CM_ERR_UNAVAILABLE (the caller may accept a shorter list).
 * CM_ERR_INVAL when ndrives is not in 1..254 or ncells not in 1..ndrives.
 */
cm_err pl_choose(const uint8_t id[16], int ndrives, const uint8_t *online, int ncells, uint8_t *out,
                 int *nchosen);

/* The starting drive of the rotation for id (exposed for tests and tools). */
int pl_start(const uint8_t id[16], int ndrives);

#endif
