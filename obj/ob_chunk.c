/*
 * ob_chunk.c - the chunk interface's dispatch and its local backend (ob_chunk.h, docs/chunks.md).
 *
 * Local backend: each call becomes a job (lc_job) carrying its arguments, its buffer and its
 * result; the job runs on the backend's worker pool (node/nd_work.c, shared with the RPC service
 * so there is one pool implementation), where the blobstore may block (fdatasync, pread), and its
 * completion runs on the backend's loop, which calls the caller's ob_chunk_done and frees the
 * job. Even calls that need no disk (a drive out of range) go through a worker, so a completion
 * never runs inside the call that started it. Except a cell's read on a gateway loop's backend
 * (ob_chunks_local_share) that the page cache holds: it runs right there (bs_read_cached), as
 * the single node's GET reads on its loops, and completes on the loop's next turn
 * (event_base_once), which saves the trip to a worker and back (two context switches); a page
 * not cached sends the read to a worker, so the loop never waits on the disk.
 *
 * Buffers: an append's body is moved into the job's evbuffer on the loop (no copy); the worker
 * appends one piece at a time (ND_PIECE) straight from its chains (nd_append_front: bs_appendv,
 * no copy) while a CRC32C runs over the same bytes. Because the CRC is known only at the end,
 * the pieces are appended as they are checked and, on a mismatch, the chunk is deleted (synced):
 * the same rule as the RPC's, so both backends refuse a bad body identically. A read of a cell
 * (32 KiB to ND_PIECE) preads into a buffer of cm_bufpool's shared pool, taken when the call is
 * made and added to the job's evbuffer by reference on the loop, so it goes back to the pool
 * whichever thread frees the data (a cluster GET sends a cell on by reference from the gateway's
 * loop: ob_read_start_evb); a longer read reserves its whole range in the job's evbuffer and
 * preads straight into it.
 */
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cm_bufpool.h"
#include "cm_checksum.h"
#include "cm_util.h"
#include "ob_chunk.h"

/* A local read of LC_POOLED_MIN to ND_PIECE bytes (a cell) goes into a pooled ND_PIECE buffer; a
 * smaller one (a compressed stream's table) would pin 256 KiB for a few bytes */
#define LC_POOLED_MIN (32u << 10)

/* ---- dispatch ---- */

static int io_ok(uint64_t len)
{
    return len > 0 && len <= OB_CHUNK_MAX_IO;
}

cm_err ob_chunk_append(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off,
                       struct evbuffer *body, uint32_t crc32c, unsigned flags, ob_chunk_done done,
                       void *arg)
{
    if (!body || !io_ok(evbuffer_get_length(body)))
        return CM_ERR_INVAL;
    return c->ops->append(c, drive, id, off, body, crc32c, flags, done, arg);
}

cm_err ob_chunk_seal(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t len,
                     ob_chunk_done done, void *arg)
{
    return c->ops->seal(c, drive, id, len, done, arg);
}

cm_err ob_chunk_read(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off, uint64_t len,
                     ob_chunk_done done, void *arg)
{
    if (!io_ok(len))
        return CM_ERR_INVAL;
    return c->ops->read(c, drive, id, off, len, done, arg);
}

cm_err ob_chunk_read_parts(ob_chunks *c, const uint32_t *drives, int n, const bs_id *id,
                           uint64_t off, uint64_t len, ob_chunk_done done, void *arg)
{
    if (!c->ops->read_parts)
        return CM_ERR_UNSUPPORTED;
    return c->ops->read_parts(c, drives, n, id, off, len, done, arg);
}

cm_err ob_chunk_append_parts(ob_chunks *c, const uint32_t *drives, int n, const bs_id *id,
                             uint64_t off, struct evbuffer *body, const uint32_t *crcs,
                             unsigned flags, ob_chunk_done done, void *arg)
{
    if (!c->ops->append_parts)
        return CM_ERR_UNSUPPORTED;
    if (!body || !io_ok(evbuffer_get_length(body)))
        return CM_ERR_INVAL;
    return c->ops->append_parts(c, drives, n, id, off, body, crcs, flags, done, arg);
}

int ob_chunk_has_append_parts(const ob_chunks *c)
{
    return c->ops->append_parts != NULL;
}

cm_err ob_chunk_delete(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done, void *arg)
{
    return c->ops->del(c, drive, id, done, arg);
}

cm_err ob_chunk_stat(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done, void *arg)
{
    return c->ops->stat(c, drive, id, done, arg);
}

cm_err ob_chunk_list(ob_chunks *c, uint32_t drive, const bs_id *after, size_t max,
                     ob_chunk_done done, void *arg)
{
    if (max == 0)
        return CM_ERR_INVAL;
    return c->ops->list(c, drive, after, CM_MIN(max, (size_t)ND_LIST_MAX), done, arg);
}

void ob_chunks_free(ob_chunks *c)
{
    if (c)
        c->ops->free(c);
}

/* ---- local backend ---- */

typedef struct {
    ob_chunks base;
    struct event_base *loop;
    nd_work *work;
    int own_work;     /* 0: another backend's pool (ob_chunks_local_share) */
    int inline_reads; /* a cell's read runs on the loop (ob_chunks_local_share) */
    int ndrives;
    bs_store *bs[ND_MAX_DRIVES];
} lc_backend;

enum { L_APPEND, L_SEAL, L_READ, L_DELETE, L_STAT, L_LIST };

typedef struct {
    nd_job job; /* first: the pool hands it back as the job */
    int op;
    int known;    /* the drive number exists */
    bs_store *bs; /* NULL: offline */
    bs_id id, after;
    int has_after;
    uint64_t off, len;
    uint32_t crc;
    unsigned flags;
    struct evbuffer *buf; /* append: the body; read: the data */
    uint8_t *rbuf;        /* a cell's read: a pooled buffer of ND_PIECE bytes (lc_read_call) */
    int cached;           /* a gateway loop's cell read: from the page cache only */
    ob_chunk_ent *list;
    size_t max, nlist;
    cm_err err;
    uint64_t size;
    ob_chunk_done done;
    void *arg;
    char why[64]; /* a read's "not found": whether and when the chunk was deleted here */
} lc_job;

/* Append the body piece by piece under a running CRC; a mismatch deletes the chunk. */
static cm_err lc_append(lc_job *j)
{
    uint64_t size = 0;
    cm_err e = bs_size(j->bs, &j->id, &size);
    if (e != CM_OK && e != CM_ERR_NOTFOUND)
        return e;
    j->size = size;
    if (size != j->off)
        return CM_ERR_CONFLICT;
    uint32_t crc = 0;
    while (evbuffer_get_length(j->buf) > 0) {
        size_t n = CM_MIN(evbuffer_get_length(j->buf), (size_t)ND_PIECE);
        if ((e = nd_append_front(j->bs, &j->id, j->size, j->buf, n, &crc)) != CM_OK)
            return e;
        j->size += n;
        evbuffer_drain(j->buf, n);
    }
    if (crc != j->crc) {
        e = bs_delete(j->bs, &j->id);
        if (e == CM_OK)
            e = bs_sync(j->bs);
        j->size = 0;
        return e == CM_OK ? CM_ERR_DIGEST : e;
    }
    return j->flags & OB_CHUNK_SYNC ? bs_sync(j->bs) : CM_OK;
}

static cm_err lc_seal(lc_job *j)
{
    cm_err e = bs_size(j->bs, &j->id, &j->size);
    if (e == CM_ERR_NOTFOUND) {
        j->size = 0;
        return j->len == 0 ? CM_OK : CM_ERR_CONFLICT;
    }
    if (e != CM_OK)
        return e;
    return j->size != j->len ? CM_ERR_CONFLICT : bs_sync(j->bs);
}

static cm_err lc_read(lc_job *j)
{
    struct evbuffer_iovec v;
    int64_t ago = 0;
    cm_err e = bs_size(j->bs, &j->id, &j->size);
    if (e == CM_ERR_NOTFOUND && bs_deleted_ago(j->bs, &j->id, &ago))
        snprintf(j->why, sizeof(j->why), "no such chunk: deleted here %lld ms ago", (long long)ago);
    if (e != CM_OK)
        return e;
    if (j->off > j->size || j->len > j->size - j->off)
        return CM_ERR_RANGE;
    if (j->rbuf) { /* added to buf on the loop (lc_done) */
        e = j->cached ? bs_read_cached(j->bs, &j->id, j->off, j->rbuf, (size_t)j->len)
                      : bs_read(j->bs, &j->id, j->off, j->rbuf, (size_t)j->len);
        if (e == CM_OK)
            j->size = j->len;
        return e;
    }
    if (evbuffer_reserve_space(j->buf, (ev_ssize_t)j->len, &v, 1) != 1)
        return CM_ERR_NOMEM;
    if ((e = bs_read(j->bs, &j->id, j->off, v.iov_base, (size_t)j->len)) != CM_OK)
        return e;
    v.iov_len = (size_t)j->len;
    evbuffer_commit_space(j->buf, &v, 1);
    j->size = j->len;
    return CM_OK;
}

static cm_err lc_list(lc_job *j)
{
    bs_id *ids = malloc(j->max * sizeof(*ids));
    uint64_t *sizes = malloc(j->max * sizeof(*sizes));
    j->list = malloc(j->max * sizeof(*j->list));
    cm_err e = ids && sizes && j->list ? CM_OK : CM_ERR_NOMEM;
    if (e == CM_OK)
        e = bs_list(j->bs, j->has_after ? &j->after : NULL, ids, sizes, j->max, &j->nlist);
    for (size_t i = 0; e == CM_OK && i < j->nlist; i++) {
        j->list[i].id = ids[i];
        j->list[i].size = sizes[i];
    }
    free(ids);
    free(sizes);
    return e;
}

static void lc_run(nd_job *job)
{
    lc_job *j = (lc_job *)(void *)job;
    if (!j->known) {
        j->err = CM_ERR_NOTFOUND;
        return;
    }
    if (!j->bs) {
        j->err = CM_ERR_UNAVAILABLE;
        return;
    }
    switch (j->op) {
    case L_APPEND:
        j->err = lc_append(j);
        break;
    case L_SEAL:
        j->err = lc_seal(j);
        break;
    case L_READ:
        j->err = lc_read(j);
        break;
    case L_DELETE:
        j->err = bs_delete(j->bs, &j->id);
        if (j->err == CM_OK)
            j->err = bs_sync(j->bs);
        break;
    case L_STAT:
        j->err = bs_size(j->bs, &j->id, &j->size);
        break;
    default:
        j->err = lc_list(j);
        break;
    }
}

static void lc_done(nd_job *job)
{
    lc_job *j = (lc_job *)(void *)job;
    if (j->rbuf && j->err == CM_OK &&
        evbuffer_add_reference(j->buf, j->rbuf, (size_t)j->len, cm_bufpool_cleanup_shared,
                               (void *)(uintptr_t)ND_PIECE) == 0)
        j->rbuf = NULL; /* the evbuffer gives it back to the shared pool */
    else if (j->rbuf && j->err == CM_OK)
        j->err = CM_ERR_NOMEM;
    cm_bufpool_put_shared(j->rbuf, ND_PIECE);
    ob_chunk_result res = {j->err, j->size, NULL, NULL, 0, 0, ""};
    if (j->err == CM_OK && j->op == L_READ)
        res.data = j->buf;
    if (j->err == CM_OK && j->op == L_LIST) {
        res.list = j->list;
        res.nlist = j->nlist;
        res.more = j->nlist == j->max;
    }
    if (j->err != CM_OK)
        res.message = j->why[0] ? j->why : cm_err_str(j->err);
    j->done(j->arg, &res);
    if (j->buf)
        evbuffer_free(j->buf);
    free(j->list);
    free(j);
}

static void lc_once(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lc_done(&((lc_job *)arg)->job);
}

static lc_job *lc_job_new(ob_chunks *c, int op, uint32_t drive, const bs_id *id, ob_chunk_done done,
                          void *arg)
{
    lc_backend *b = (lc_backend *)c;
    lc_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->job.run = lc_run;
    j->job.done = lc_done;
    j->job.base = b->loop;
    j->op = op;
    j->known = drive < (uint32_t)b->ndrives;
    j->bs = j->known ? b->bs[drive] : NULL;
    if (id)
        j->id = *id;
    j->done = done;
    j->arg = arg;
    if ((op == L_APPEND || op == L_READ) && !(j->buf = evbuffer_new())) {
        free(j);
        return NULL;
    }
    return j;
}

static cm_err lc_submit(ob_chunks *c, lc_job *j)
{
    nd_work_submit(((lc_backend *)c)->work, &j->job);
    return CM_OK;
}

static cm_err lc_append_call(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off,
                             struct evbuffer *body, uint32_t crc32c, unsigned flags,
                             ob_chunk_done done, void *arg)
{
    lc_job *j = lc_job_new(c, L_APPEND, drive, id, done, arg);
    if (!j)
        return CM_ERR_NOMEM;
    j->off = off;
    j->crc = crc32c;
    j->flags = flags;
    if (evbuffer_add_buffer(j->buf, body) != 0) {
        evbuffer_free(j->buf);
        free(j);
        return CM_ERR_NOMEM;
    }
    return lc_submit(c, j);
}

static cm_err lc_seal_call(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t len,
                           ob_chunk_done done, void *arg)
{
    lc_job *j = lc_job_new(c, L_SEAL, drive, id, done, arg);
    if (!j)
        return CM_ERR_NOMEM;
    j->len = len;
    return lc_submit(c, j);
}

static cm_err lc_read_call(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off,
                           uint64_t len, ob_chunk_done done, void *arg)
{
    lc_job *j = lc_job_new(c, L_READ, drive, id, done, arg);
    if (!j)
        return CM_ERR_NOMEM;
    j->off = off;
    j->len = len;
    /* a cell: from the shared pool, as it may be given back on another thread (a fresh 256 KiB
     * per read was an mmap, 64 faults and a munmap) */
    int pooled = len >= LC_POOLED_MIN && len <= ND_PIECE;
    if (pooled && !(j->rbuf = cm_bufpool_take_shared(ND_PIECE)))
        goto nomem;
    if (!pooled || !((lc_backend *)c)->inline_reads)
        return lc_submit(c, j);
    static const struct timeval now = {0, 0};
    j->cached = 1;
    lc_run(&j->job); /* here, on the loop, from the page cache; its end on the loop's next turn */
    if (j->err == CM_AGAIN) { /* a page not cached (or worse): a worker reads it from the disk */
        j->cached = 0;
        j->err = CM_OK;
        return lc_submit(c, j);
    }
    if (event_base_once(j->job.base, -1, EV_TIMEOUT, lc_once, j, &now) == 0)
        return CM_OK;
nomem:
    cm_bufpool_put_shared(j->rbuf, ND_PIECE); /* (NULL: nothing) */
    evbuffer_free(j->buf);
    free(j);
    return CM_ERR_NOMEM;
}

static cm_err lc_delete_call(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done,
                             void *arg)
{
    lc_job *j = lc_job_new(c, L_DELETE, drive, id, done, arg);
    return j ? lc_submit(c, j) : CM_ERR_NOMEM;
}

static cm_err lc_stat_call(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done,
                           void *arg)
{
    lc_job *j = lc_job_new(c, L_STAT, drive, id, done, arg);
    return j ? lc_submit(c, j) : CM_ERR_NOMEM;
}

static cm_err lc_list_call(ob_chunks *c, uint32_t drive, const bs_id *after, size_t max,
                           ob_chunk_done done, void *arg)
{
    lc_job *j = lc_job_new(c, L_LIST, drive, NULL, done, arg);
    if (!j)
        return CM_ERR_NOMEM;
    j->max = max;
    if (after) {
        j->after = *after;
        j->has_after = 1;
    }
    return lc_submit(c, j);
}

static void lc_free(ob_chunks *c)
{
    lc_backend *b = (lc_backend *)c;
    if (b->own_work)
        nd_work_free(b->work);
    free(b);
}

static const ob_chunk_ops lc_ops = {lc_append_call, lc_seal_call, lc_read_call,
                                    lc_delete_call, lc_stat_call, lc_list_call,
                                    lc_free,        NULL,         NULL};

cm_err ob_chunks_local_new(struct event_base *base, const nd_drive *drives, int ndrives,
                           int nthreads, ob_chunks **out)
{
    *out = NULL;
    if (ndrives < 0 || ndrives > ND_MAX_DRIVES || nthreads < 0)
        return CM_ERR_INVAL;
    lc_backend *b = calloc(1, sizeof(*b));
    if (!b)
        return CM_ERR_NOMEM;
    b->base.ops = &lc_ops;
    b->loop = base;
    b->ndrives = ndrives;
    for (int i = 0; i < ndrives; i++)
        b->bs[i] = drives[i].bs;
    cm_err e = nd_work_new(nthreads ? nthreads : 4, &b->work);
    if (e != CM_OK) {
        free(b);
        return e;
    }
    b->own_work = 1;
    *out = &b->base;
    return CM_OK;
}

cm_err ob_chunks_local_share(ob_chunks *local, struct event_base *base, ob_chunks **out)
{
    *out = NULL;
    if (local->ops != &lc_ops)
        return CM_ERR_INVAL;
    lc_backend *b = malloc(sizeof(*b));
    if (!b)
        return CM_ERR_NOMEM;
    *b = *(lc_backend *)local;
    b->loop = base;
    b->own_work = 0;
    b->inline_reads = 1;
    *out = &b->base;
    return CM_OK;
}
