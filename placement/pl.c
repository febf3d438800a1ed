/*
 * pl.c - drive choice for the cells of a body (see pl.h).
 *
 * The rotation start is a 64-bit mix of the 16 id bytes modulo the drive count: ids are random, so
 * over many bodies every drive is equally likely to hold cell 0 (and so each parity cell). A drive
 * that is offline is skipped and the walk continues, which shifts the later cells by one; when the
 * drive returns, new bodies use it again while old layouts keep their recorded drive lists.
 * No state; safe from any thread.
 */
#include "pl.h"
#include "pl_int.h"

int pl_start(const uint8_t id[16], int ndrives)
{
    return (int)(pl_id_hash(id) % (uint64_t)ndrives);
}

cm_err pl_choose(const uint8_t id[16], int ndrives, const uint8_t *online, int ncells, uint8_t *out,
                 int *nchosen)
{
    if (ndrives < 1 || ndrives >= PL_NONE || ncells < 1 || ncells > ndrives)
        return CM_ERR_INVAL;
    int start = pl_start(id, ndrives), n = 0;
    for (int step = 0; step < ndrives && n < ncells; step++) {
        int d = (start + step) % ndrives;
        if (online[d])
            out[n++] = (uint8_t)d;
    }
    *nchosen = n;
    for (int i = n; i < ncells; i++)
        out[i] = PL_NONE;
    return n == ncells ? CM_OK : CM_ERR_UNAVAILABLE;
}
