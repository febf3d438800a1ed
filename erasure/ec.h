/*
 * ec.h - Reed-Solomon erasure codec over ISA-L, and stripe geometry.
 *
 * A codec with k data and m parity cells. The code is systematic: data cells are the payload
 * itself, so a healthy read never decodes. Encoding and reconstruction work on cells of any
 * length (all cells of one call have the same length). A codec is immutable after ec_new and may
 * be shared by threads; per-call scratch lives on the caller's stack or in the call.
 */
#ifndef EC_H
#define EC_H

#include <stddef.h>
#include <stdint.h>

#include "cm_err.h"

#define EC_MAX_CELLS 32

typedef struct ec_codec ec_codec;

/* k >= 1, m >= 0, k + m <= EC_MAX_CELLS. CM_ERR_INVAL otherwise. */
cm_err ec_new(int k, int m, ec_codec **out);
void ec_free(ec_codec *codec); /* NULL is a no-op */
int ec_k(const ec_codec *codec);
int ec_m(const ec_codec *codec);

/* Compute the m parity cells from the k data cells, each len bytes. */
void ec_encode(const ec_codec *codec, size_t len, uint8_t *const *data, uint8_t *const *parity);

/*
 * cells[0..k+m) point at len-byte buffers; present[i] is non-zero when cells[i] holds valid
 * bytes. Rebuilds every missing cell (data and parity) in place. CM_ERR_UNAVAILABLE when fewer than
 * k cells are present.
 */
cm_err ec_reconstruct(const ec_codec *codec, size_t len, uint8_t *const *cells, const int *present);

#endif
