/*
 * ob_stripe_read.c - a range of an erasure-coded body read over the chunk interface
 * (ob_get_range in ob_chunk.h; docs/chunks.md): the read side of ob_put_body, the shape of a
 * cluster GET.
 *
 * State machine on the resolver's loop, one stripe at a time: stripe_start asks k cells at once
 * (the data cells the layout names, the first parity cells in place of missing ones); each
 * completion (cell_read) takes the cell's bytes into the stripe buffer, or, when the cell failed
 * (down node, missing or corrupt chunk), asks the next cell not tried yet. Once the stripe's calls
 * are all back, k present cells rebuild any missing data cell (ec_reconstruct) and the wanted
 * part of the stripe goes to the output; fewer than k fail the read.
 *
 * Memory: one stripe buffer of (k+m) x cell_size and the output (len <= OB_CHUNK_MAX_IO); each
 * cell's bytes are copied once, from the read's evbuffer into the stripe buffer the codec needs.
 * A whole stripe is read even for a smaller range (simple; reading only the data cells a range
 * touches, and hedging a slow cell after a latency threshold, are next).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "cm_log.h"
#include "cm_util.h"
#include "ec.h"
#include "ob_chunk.h"
#include "ob_int.h"

#define MOD "ob"

typedef struct ob_get ob_get;

typedef struct {
    ob_get *g;
    int i;
} get_slot;

struct ob_get {
    md_layout lay;
    ob_chunks *b[EC_MAX_CELLS]; /* NULL: the layout names no cell there, or it does not resolve */
    uint32_t drive[EC_MAX_CELLS];
    get_slot slot[EC_MAX_CELLS];
    bs_id id;
    ec_codec *codec;
    uint8_t *stripe; /* (k+m) x cell_size, 64-byte aligned */
    int present[EC_MAX_CELLS], tried[EC_MAX_CELLS];
    uint64_t off, end; /* the range wanted */
    uint64_t start;    /* body offset of the stripe being read */
    uint64_t cell_off; /* chunk offset of its cells */
    uint32_t clen;
    int inflight;
    int started; /* ob_get_range returned: a failure now goes through done */
    struct evbuffer *out;
    ob_get_done done;
    void *arg;
};

static int ncells(const ob_get *g)
{
    return g->lay.k + g->lay.m;
}

static void get_end(ob_get *g, cm_err e)
{
    g->done(g->arg, e, e == CM_OK ? g->out : NULL);
    evbuffer_free(g->out);
    ec_free(g->codec);
    free(g->stripe);
    free(g);
}

/* Ask the next untried cell (data cells first, in order); 0 when none is left. */
static int ask_one(ob_get *g);

static void stripe_start(ob_get *g);

static void stripe_end(ob_get *g)
{
    int k = g->lay.k, have = 0;
    uint8_t *cells[EC_MAX_CELLS];
    for (int i = 0; i < ncells(g); i++) {
        have += g->present[i];
        cells[i] = g->stripe + (size_t)i * g->clen;
    }
    if (have < k) {
        CM_ERROR(MOD, "stripe at %llu unreadable: %d of %d cells", (unsigned long long)g->start,
                 have, k);
        get_end(g, CM_ERR_UNAVAILABLE);
        return;
    }
    for (int i = 0; i < k; i++)
        if (!g->present[i]) {
            if (ec_reconstruct(g->codec, g->clen, cells, g->present) != CM_OK) {
                get_end(g, CM_ERR_UNAVAILABLE);
                return;
            }
            break;
        }
    /* the stripe's data cells are back to back at the buffer's start: its bytes in body order */
    uint64_t a = CM_MAX(g->off, g->start), z = CM_MIN(g->end, g->start + (uint64_t)k * g->clen);
    if (evbuffer_add(g->out, g->stripe + (a - g->start), (size_t)(z - a)) != 0) {
        get_end(g, CM_ERR_NOMEM);
        return;
    }
    g->start += (uint64_t)k * g->clen;
    g->cell_off += g->clen;
    if (g->start >= g->end)
        get_end(g, CM_OK);
    else
        stripe_start(g);
}

static void cell_read(void *arg, const ob_chunk_result *res)
{
    get_slot *s = arg;
    ob_get *g = s->g;
    g->inflight--;
    if (res->err == CM_OK && evbuffer_get_length(res->data) == g->clen) {
        evbuffer_remove(res->data, g->stripe + (size_t)s->i * g->clen, g->clen);
        g->present[s->i] = 1;
    } else {
        CM_WARN(MOD, "cell %d of a body unreadable (%s): reading another", s->i,
                cm_err_str(res->err == CM_OK ? CM_ERR_CORRUPT : res->err));
        ask_one(g);
    }
    if (g->inflight == 0)
        stripe_end(g);
}

static int ask_one(ob_get *g)
{
    for (int i = 0; i < ncells(g); i++) {
        if (g->tried[i] || !g->b[i])
            continue;
        g->tried[i] = 1;
        if (ob_chunk_read(g->b[i], g->drive[i], &g->id, g->cell_off, g->clen, cell_read,
                          &g->slot[i]) == CM_OK) {
            g->inflight++;
            return 1;
        }
    }
    return 0;
}

static void stripe_start(ob_get *g)
{
    uint64_t full = (uint64_t)g->lay.k * g->lay.cell_size, rest = g->lay.size - g->start;
    g->clen = rest >= full ? g->lay.cell_size : ob_last_cell_len(rest, g->lay.k);
    memset(g->present, 0, sizeof(g->present));
    memset(g->tried, 0, sizeof(g->tried));
    memset(g->stripe, 0, (size_t)ncells(g) * g->clen);
    for (int n = 0; n < g->lay.k; n++)
        if (!ask_one(g))
            break;
    if (g->inflight == 0 && g->started) /* no cell could be asked: the stripe fails */
        stripe_end(g);
}

cm_err ob_get_range(ob_resolver *r, const md_layout *lay, uint64_t off, uint64_t len,
                    ob_get_done done, void *arg)
{
    int n = lay->k + lay->m;
    if (len == 0 || len > OB_CHUNK_MAX_IO || lay->k < 1 || n > EC_MAX_CELLS || lay->cell_size == 0)
        return CM_ERR_INVAL;
    if (off > lay->size || len > lay->size - off)
        return CM_ERR_RANGE;
    ob_get *g = calloc(1, sizeof(*g));
    if (!g)
        return CM_ERR_NOMEM;
    g->lay = *lay;
    memcpy(g->id.b, lay->blob, sizeof(g->id.b));
    g->off = off;
    g->end = off + len;
    g->done = done;
    g->arg = arg;
    uint64_t sbytes = (uint64_t)lay->k * lay->cell_size;
    g->start = off / sbytes * sbytes;
    g->cell_off = off / sbytes * lay->cell_size;
    cm_err e = (g->out = evbuffer_new()) ? ec_new(lay->k, lay->m, &g->codec) : CM_ERR_NOMEM;
    if (e == CM_OK && posix_memalign((void **)&g->stripe, 64, (size_t)n * lay->cell_size) != 0) {
        g->stripe = NULL;
        e = CM_ERR_NOMEM;
    }
    for (int i = 0; e == CM_OK && i < n; i++) {
        pl_cell c = {lay->nodes[i], lay->drives[i]};
        g->slot[i] = (get_slot){g, i};
        g->b[i] = lay->drives[i] == 0xFF ? NULL : ob_resolve_cell(r, &c, &g->drive[i]);
    }
    if (e == CM_OK) {
        stripe_start(g);
        if (g->inflight > 0) {
            g->started = 1;
            return CM_OK;
        }
        e = CM_ERR_UNAVAILABLE; /* no cell of the first stripe could even be asked */
    }
    if (g->out)
        evbuffer_free(g->out);
    ec_free(g->codec);
    free(g->stripe);
    free(g);
    return e;
}
