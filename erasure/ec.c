/*
 * ec.c - systematic Reed-Solomon over GF(2^8) with ISA-L.
 *
 * Encode matrix: gf_gen_cauchy1_matrix gives a (k+m) x k matrix whose top k rows are the identity
 * (data cells are the payload) and whose bottom m rows are Cauchy rows. Every k x k submatrix of a
 * Cauchy-extended identity is invertible, so any k surviving cells rebuild the rest.
 *
 * Reconstruction: take the first k present cells as sources, invert their k rows of the encode
 * matrix (D = B^-1 maps sources to data). A missing data cell d uses row D[d]; a missing parity
 * cell p uses E[p] * D (its row of the encode matrix applied to the decoded data). All missing
 * rows go into one decode matrix, expanded into ISA-L tables and run in one ec_encode_data pass.
 *
 * Threading: a codec is immutable after ec_new; all per-call scratch is on the stack (at most
 * 32 KiB of tables for EC_MAX_CELLS).
 */
#include "ec.h"

#include <isa-l/erasure_code.h>
#include <stdlib.h>
#include <string.h>

struct ec_codec {
    int k, m;
    uint8_t matrix[EC_MAX_CELLS * EC_MAX_CELLS]; /* (k+m) x k, row-major */
    uint8_t *tables;                             /* 32 * k * m bytes, NULL when m == 0 */
};

/* ISA-L takes int lengths; larger cells are processed in slices. */
#define EC_SLICE ((size_t)1 << 30)

cm_err ec_new(int k, int m, ec_codec **out)
{
    if (k < 1 || m < 0 || k + m > EC_MAX_CELLS)
        return CM_ERR_INVAL;
    ec_codec *c = calloc(1, sizeof(*c));
    if (!c)
        return CM_ERR_NOMEM;
    c->k = k;
    c->m = m;
    gf_gen_cauchy1_matrix(c->matrix, k + m, k);
    if (m > 0) {
        c->tables = malloc((size_t)32 * (size_t)k * (size_t)m);
        if (!c->tables) {
            free(c);
            return CM_ERR_NOMEM;
        }
        ec_init_tables(k, m, &c->matrix[k * k], c->tables);
    }
    *out = c;
    return CM_OK;
}

void ec_free(ec_codec *codec)
{
    if (!codec)
        return;
    free(codec->tables);
    free(codec);
}

int ec_k(const ec_codec *codec)
{
    return codec->k;
}

int ec_m(const ec_codec *codec)
{
    return codec->m;
}

/* Run ISA-L over len bytes in int-sized slices; src/dst pointer arrays are advanced per slice. */
static void run_tables(int k, int rows, uint8_t *tables, size_t len, uint8_t *const *src,
                       uint8_t *const *dst)
{
    uint8_t *s[EC_MAX_CELLS], *d[EC_MAX_CELLS];
    for (size_t done = 0; done < len; done += EC_SLICE) {
        size_t n = len - done < EC_SLICE ? len - done : EC_SLICE;
        for (int i = 0; i < k; i++)
            s[i] = src[i] + done;
        for (int i = 0; i < rows; i++)
            d[i] = dst[i] + done;
        ec_encode_data((int)n, k, rows, tables, s, d);
    }
}

void ec_encode(const ec_codec *codec, size_t len, uint8_t *const *data, uint8_t *const *parity)
{
    if (codec->m == 0 || len == 0)
        return;
    run_tables(codec->k, codec->m, codec->tables, len, data, parity);
}

/* Row `row` of the decode matrix for missing cell `cell`, given D = inverse of source rows. */
static void decode_row(const ec_codec *c, const uint8_t *inv, int cell, uint8_t *row)
{
    int k = c->k;
    if (cell < k) {
        memcpy(row, &inv[cell * k], (size_t)k);
        return;
    }
    for (int t = 0; t < k; t++) {
        uint8_t acc = 0;
        for (int j = 0; j < k; j++)
            acc ^= gf_mul(c->matrix[cell * k + j], inv[j * k + t]);
        row[t] = acc;
    }
}

cm_err ec_reconstruct(const ec_codec *codec, size_t len, uint8_t *const *cells, const int *present)
{
    int k = codec->k, n = codec->k + codec->m;
    int src_idx[EC_MAX_CELLS], miss_idx[EC_MAX_CELLS];
    int nsrc = 0, nmiss = 0;
    for (int i = 0; i < n; i++) {
        if (present[i] && nsrc < k)
            src_idx[nsrc++] = i;
        else if (!present[i])
            miss_idx[nmiss++] = i;
    }
    if (nsrc < k)
        return CM_ERR_UNAVAILABLE;
    if (nmiss == 0 || len == 0)
        return CM_OK;

    uint8_t b[EC_MAX_CELLS * EC_MAX_CELLS], inv[EC_MAX_CELLS * EC_MAX_CELLS];
    uint8_t dm[EC_MAX_CELLS * EC_MAX_CELLS];
    uint8_t tables[32 * EC_MAX_CELLS * EC_MAX_CELLS];
    for (int r = 0; r < k; r++)
        memcpy(&b[r * k], &codec->matrix[src_idx[r] * k], (size_t)k);
    if (gf_invert_matrix(b, inv, k) != 0)
        return CM_ERR_INTERNAL; /* impossible for a Cauchy matrix */
    for (int r = 0; r < nmiss; r++)
        decode_row(codec, inv, miss_idx[r], &dm[r * k]);
    ec_init_tables(k, nmiss, dm, tables);

    uint8_t *src[EC_MAX_CELLS], *dst[EC_MAX_CELLS];
    for (int i = 0; i < k; i++)
        src[i] = cells[src_idx[i]];
    for (int i = 0; i < nmiss; i++)
        dst[i] = cells[miss_idx[i]];
    run_tables(k, nmiss, tables, len, src, dst);
    return CM_OK;
}
