/*
 * ob_stripe.c - a body written as erasure-coded stripes over the chunk interface (ob_put_body in
 * ob_chunk.h; docs/chunks.md): the first user of the interface, the shape of a cluster PUT.
 *
 * State machine on the resolver's loop: stripe_start encodes the next stripe and appends each
 * live cell to its backend (the evbuffer refers to the cell's bytes, no copy); each completion
 * (cell_done) drops a cell that failed; when the stripe's last completion arrives, stripe_end
 * checks the k+1 rule and starts the next stripe, or finishes. Finishing deletes the chunks the
 * layout will not name (dropped cells, or all of them when the body failed) and then calls done.
 *
 * Memory: one stripe buffer of (k+m) x cell_size; full stripes' data cells point into the
 * caller's body (which stays borrowed until done), so only parity cells and the last, padded
 * stripe are produced here. One stripe in flight at a time bounds what is queued per backend to
 * one cell; the next stripe waits for the slowest cell (a hedge or a handoff is what comes next).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"
#include "ec.h"
#include "ob_chunk.h"
#include "ob_int.h"

#define MOD "ob"

typedef struct ob_put ob_put;

typedef struct {
    ob_put *p;
    int i;
} cell_slot;

struct ob_put {
    ob_put_config cfg;
    pl_cell cells[EC_MAX_CELLS];
    ob_chunks *b[EC_MAX_CELLS];
    uint32_t drive[EC_MAX_CELLS];
    int live[EC_MAX_CELLS];    /* still part of the body */
    int touched[EC_MAX_CELLS]; /* an append was sent: the chunk may exist */
    cell_slot slot[EC_MAX_CELLS];
    bs_id id;
    ec_codec *codec;
    uint8_t *stripe; /* (k+m) x cell_size, 64-byte aligned */
    const uint8_t *body;
    size_t len, pos; /* body bytes, bytes of it stored in finished stripes */
    size_t n;        /* body bytes in the stripe in flight */
    uint32_t clen;   /* its cell length */
    uint64_t cell_off;
    int inflight, deleting;
    int started; /* ob_put_body returned: a failure now goes through done */
    cm_err err;
    ob_put_done done;
    void *arg;
};

static int live_count(const ob_put *p)
{
    int n = 0;
    for (int i = 0; i < p->cfg.k + p->cfg.m; i++)
        n += p->live[i];
    return n;
}

static void drop(ob_put *p, int i, cm_err why)
{
    if (!p->live[i])
        return;
    CM_WARN(MOD, "cell %d (node %u, drive %u) dropped from a body being written: %s", i,
            p->cells[i].node, p->cells[i].drive, cm_err_str(why));
    p->live[i] = 0;
}

static void put_free(ob_put *p)
{
    ec_free(p->codec);
    free(p->stripe);
    free(p);
}

static void finish(ob_put *p)
{
    md_layout lay;
    memset(&lay, 0, sizeof(lay));
    if (p->err == CM_OK) {
        memcpy(lay.blob, p->id.b, sizeof(lay.blob));
        lay.size = p->len;
        lay.cell_size = p->cfg.cell_size;
        lay.k = (uint8_t)p->cfg.k;
        lay.m = (uint8_t)p->cfg.m;
        lay.epoch = p->cfg.epoch;
        memset(lay.drives, 0xFF, sizeof(lay.drives));
        for (int i = 0; i < p->cfg.k + p->cfg.m; i++) {
            lay.nodes[i] = p->cells[i].node;
            if (p->live[i])
                lay.drives[i] = (uint8_t)p->cells[i].drive;
        }
    }
    p->done(p->arg, p->err, p->err == CM_OK ? &lay : NULL);
    put_free(p);
}

static void deleted(void *arg, const ob_chunk_result *res)
{
    cell_slot *s = arg;
    ob_put *p = s->p;
    if (res->err != CM_OK) /* an orphan chunk: the orphan sweep finds it (`cairn fsck`) */
        CM_WARN(MOD, "cell %d of a dropped body not deleted: %s", s->i, cm_err_str(res->err));
    if (--p->deleting == 0)
        finish(p);
}

/* Delete what the layout will not name, then finish. */
static void wind_up(ob_put *p)
{
    for (int i = 0; i < p->cfg.k + p->cfg.m; i++) {
        if (!p->touched[i] || (p->err == CM_OK && p->live[i]))
            continue;
        p->deleting++;
        if (ob_chunk_delete(p->b[i], p->drive[i], &p->id, deleted, &p->slot[i]) != CM_OK)
            p->deleting--;
    }
    if (p->deleting == 0)
        finish(p);
}

static void stripe_start(ob_put *p);

static void stripe_end(ob_put *p)
{
    if (live_count(p) < ob_min_cells(p->cfg.k, p->cfg.m)) {
        CM_ERROR(MOD, "body not stored: only %d cells of a stripe durable", live_count(p));
        p->err = CM_ERR_UNAVAILABLE;
        wind_up(p);
        return;
    }
    p->pos += p->n;
    p->cell_off += p->clen;
    if (p->pos == p->len)
        wind_up(p);
    else
        stripe_start(p);
}

static void cell_done(void *arg, const ob_chunk_result *res)
{
    cell_slot *s = arg;
    ob_put *p = s->p;
    if (res->err != CM_OK)
        drop(p, s->i, res->err);
    if (--p->inflight == 0)
        stripe_end(p);
}

static void stripe_start(ob_put *p)
{
    int k = p->cfg.k, m = p->cfg.m;
    size_t full = (size_t)k * p->cfg.cell_size;
    uint8_t *cell[EC_MAX_CELLS];
    p->n = CM_MIN(p->len - p->pos, full);
    p->clen = p->n == full ? p->cfg.cell_size : ob_last_cell_len(p->n, k);
    for (int i = 0; i < k; i++) /* a full stripe's data cells are the body itself */
        cell[i] = p->n == full ? (uint8_t *)p->body + p->pos + (size_t)i * p->clen
                               : p->stripe + (size_t)i * p->clen;
    if (p->n < full) { /* the last stripe: padded with zeros */
        memcpy(p->stripe, p->body + p->pos, p->n);
        memset(p->stripe + p->n, 0, (size_t)k * p->clen - p->n);
    }
    for (int j = 0; j < m; j++)
        cell[k + j] = p->stripe + full + (size_t)j * p->clen;
    ec_encode(p->codec, p->clen, cell, cell + k);
    unsigned flags = p->pos + p->n == p->len ? OB_CHUNK_SYNC : 0;
    p->inflight = 1; /* held until every append is sent, so no completion ends the stripe early */
    for (int i = 0; i < k + m; i++) {
        if (!p->live[i])
            continue;
        struct evbuffer *b = evbuffer_new();
        cm_err e = b && evbuffer_add_reference(b, cell[i], p->clen, NULL, NULL) == 0 ? CM_OK
                                                                                     : CM_ERR_NOMEM;
        if (e == CM_OK)
            e = ob_chunk_append(p->b[i], p->drive[i], &p->id, p->cell_off, b,
                                cm_crc32c(0, cell[i], p->clen), flags, cell_done, &p->slot[i]);
        if (b)
            evbuffer_free(b);
        if (e != CM_OK) {
            drop(p, i, e);
            continue;
        }
        p->touched[i] = 1;
        p->inflight++;
    }
    /* every append refused at once (memory): the first stripe returns it from ob_put_body, a
     * later one fails the body */
    if (--p->inflight == 0 && p->started)
        stripe_end(p);
}

cm_err ob_put_body(ob_resolver *r, const ob_put_config *cfg, const void *body, size_t len,
                   ob_put_done done, void *arg)
{
    int ncells = cfg->k + cfg->m;
    if (cfg->k < 1 || cfg->m < 0 || ncells > EC_MAX_CELLS || ncells > MD_MAX_CELLS || len == 0 ||
        cfg->cell_size == 0 || cfg->cell_size % 64 != 0 || cfg->cell_size > OB_CHUNK_MAX_IO)
        return CM_ERR_INVAL;
    ob_put *p = calloc(1, sizeof(*p));
    if (!p)
        return CM_ERR_NOMEM;
    p->cfg = *cfg;
    p->body = body;
    p->len = len;
    p->done = done;
    p->arg = arg;
    cm_err e = cfg->id ? CM_OK : bs_id_new(&p->id);
    if (cfg->id)
        p->id = *cfg->id;
    if (e == CM_OK)
        e = ec_new(cfg->k, cfg->m, &p->codec);
    if (e == CM_OK &&
        posix_memalign((void **)&p->stripe, 64, (size_t)ncells * cfg->cell_size) != 0) {
        p->stripe = NULL;
        e = CM_ERR_NOMEM;
    }
    for (int i = 0; e == CM_OK && i < ncells; i++) {
        p->cells[i] = cfg->cells[i];
        p->slot[i] = (cell_slot){p, i};
        p->b[i] = ob_resolve_cell(r, &cfg->cells[i], &p->drive[i]);
        p->live[i] = p->b[i] != NULL;
    }
    if (e == CM_OK && live_count(p) < ob_min_cells(cfg->k, cfg->m))
        e = CM_ERR_UNAVAILABLE;
    if (e != CM_OK) {
        put_free(p);
        return e;
    }
    p->cfg.cells = p->cells;
    p->cfg.id = NULL;
    stripe_start(p);
    if (p->inflight == 0) { /* nothing could even be sent: end here, before any callback */
        put_free(p);
        return CM_ERR_UNAVAILABLE;
    }
    p->started = 1;
    return CM_OK;
}
