/*
 * gw_object.c - object operations: PutObject, GetObject, HeadObject, DeleteObject, CopyObject,
 * and the dispatch of every object-addressed request (multipart parts go to gw_multipart.c).
 *
 * PUT streams the body through the shared pipeline (gw_server.c) and commits one metadata record
 * whose condition (If-None-Match: *, If-Match) is checked in the same transaction as the write.
 * The data of a replaced object is freed after the commit. A body stored as stripes is sealed
 * (fdatasync) and committed on a worker; an inline body (up to inline_threshold) needs no
 * worker: its record is queued for the metadata commit thread (md_object_put_async), which hands
 * the request back to its loop when the batch is durable (docs/performance.md). On a cluster node
 * every record goes to the replicated metadata (gw_meta.c): an unconditional inline PUT's, and the
 * reads of GET and HEAD, by asynchronous quorum calls started from the loop; a striped body's
 * and a DELETE's from a worker; a conditional one through its partition's leader. A replaced
 * body is freed by the replicas' garbage reclaim.
 *
 * ?versionId (gw_version.c) reads or deletes one version of a versioned bucket (a cluster node
 * reads it on a worker: gw_meta_get_version_work); every answer carries x-amz-version-id and
 * x-amz-delete-marker as S3 sends them, errors included.
 *
 * GET streams: after the headers, each on_drain reads the next piece (at most one stripe, aligned
 * to stripe boundaries; two on a cluster layout, below) into a buffer reused per loop thread and
 * adds it to the output by reference, so payload is copied once from the blob file into the socket
 * buffer, and no fresh pages are mapped per piece. A part whose cells live across the cluster
 * (layout epoch != 0) is read with ob_read_start_evb, two of its stripes a piece (their cells asked
 * together), its bytes by reference to the cells' own receive buffers (copied once on this node,
 * from the other node's socket): the loop never waits on another node;
 * the drain pauses with one read in flight and its completion sends the piece and drains on. A
 * connection that closes meanwhile cancels the read (ob_read_cancel, from get_state_free in
 * on_done). A single node's piece is read on the loop only from the page cache
 * (ob_read_cached); one that is not cached (or needs rebuilding) is read by a worker
 * (get_cold_start), the drain paused until it is back: the loop never waits on a disk.
 *
 * The first piece is read before the headers go out (a HEAD reads nothing): a body that cannot
 * be read at all (too many drives lost, too many cells' nodes down, a cluster read timed out)
 * is answered 503 ServiceUnavailable, which S3 clients retry, or 500 InternalError for data
 * found corrupt. A later piece that fails can only cut the connection short (logged). On a cluster
 * node a failed piece (plain, compressed, or an encrypted one's stored segments) is first read
 * again, up to 5 times over about 3 s, on the layout the record read anew names for its body (a
 * heal may have moved or be rewriting the cells read: get_reread).
 *
 * Encryption (gw_sse.c, docs/encryption.md): a PUT asking for SSE-S3 or SSE-C, or into a bucket
 * with default encryption, seals its body segment by segment on the way to the writer (never
 * inline) and commits on a worker; a GET of an encrypted part checks the customer key first and
 * decrypts each piece: a single node's with gw_sse_read_cached (sse_piece; gw_sse_read on a
 * worker when not cached), a cluster layout's by an
 * ob_read_start of the stored segments whose completion decrypts them (sse_start).
 */
#include "gw_int.h"
#include "gw_lc.h"
#include "gw_refuse.h"
#include "gw_sse.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_bufpool.h"
#include "cm_log.h"
#include "cm_util.h"

#define MOD "gw"

/* ---- shared with multipart and copy ---- */

static char *dup_hdr(gw_req *r, const char *name)
{
    const char *v = gw_hdr(r, name);
    return v ? strdup(v) : NULL;
}

/* Content-Encoding without the aws-chunked transfer coding ("aws-chunked,gzip" -> "gzip"). */
static char *stored_content_encoding(gw_req *r)
{
    const char *v = gw_hdr(r, "content-encoding");
    char out[256];
    size_t n = 0;

    if (!v)
        return NULL;
    while (*v) {
        const char *end = strchr(v, ',');
        size_t len = end ? (size_t)(end - v) : strlen(v);
        const char *s = v;
        while (len && (*s == ' ' || *s == '\t'))
            s++, len--;
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        if (len && !(len == 11 && strncasecmp(s, "aws-chunked", 11) == 0) &&
            n + len + 1 < sizeof(out)) {
            if (n)
                out[n++] = ',';
            memcpy(out + n, s, len);
            n += len;
        }
        v = end ? end + 1 : v + strlen(v);
    }
    if (n == 0)
        return NULL;
    out[n] = '\0';
    return strdup(out);
}

gw_s3err gw_object_headers_from_request(gw_req *r, md_object *o)
{
    gw_meta_set ms;
    gw_s3err e = GW_OK;
    size_t n = net_req_header_count(r->net);

    gw_meta_init(&ms);
    for (size_t i = 0; i < n && e == GW_OK; i++) {
        const char *name, *value;
        net_req_header_at(r->net, i, &name, &value);
        e = gw_meta_add(&ms, name, value);
    }
    if (e != GW_OK) {
        gw_meta_release(&ms);
        return e;
    }
    o->meta = ms.items;
    o->nmeta = ms.n;
    o->content_type = dup_hdr(r, "content-type");
    if (!o->content_type)
        o->content_type = strdup("binary/octet-stream");
    o->cache_control = dup_hdr(r, "cache-control");
    o->content_disposition = dup_hdr(r, "content-disposition");
    o->content_encoding = stored_content_encoding(r);
    o->content_language = dup_hdr(r, "content-language");
    o->expires = dup_hdr(r, "expires");
    o->website_redirect = dup_hdr(r, "x-amz-website-redirect-location");
    gw_storage_class_of(gw_hdr(r, "x-amz-storage-class"), o->storage_class,
                        sizeof(o->storage_class));
    return gw_object_acl_from_request(r, o);
}

gw_s3err gw_object_acl_from_request(gw_req *r, md_object *o)
{
    md_bucket b = {0};
    if (!gw_hdr(r, "x-amz-acl"))
        return GW_OK;
    cm_err e = md_bucket_get(r->g->md, r->bucket, &b); /* the local record: ownership, pab */
    if (e != CM_OK && e != CM_ERR_NOTFOUND)
        return gw_s3err_from_cm(e);
    gw_bucket_access(r->g, &b); /* a cluster node: the namespace's */
    return gw_acl_from_request(r, b.ownership, b.pab, &o->acl);
}

gw_s3err gw_object_tags_from_request(gw_req *r, md_object *o, char *msg, size_t cap)
{
    const char *h = gw_hdr(r, "x-amz-tagging");
    gw_s3err e;
    if (!h)
        return GW_OK;
    if ((e = gw_tags_from_query(h, &o->tags, &o->ntags, msg, cap)) != GW_OK)
        return e;
    return gw_tags_check(o->tags, o->ntags, GW_MAX_OBJECT_TAGS, msg, cap);
}

/* The write condition from If-None-Match / If-Match on PUT, Complete, Copy (and If-Match on
 * DELETE). */
gw_s3err gw_write_cond(gw_req *r, md_cond *c, char *etag_buf, size_t cap)
{
    const char *inm = gw_hdr(r, "if-none-match");
    const char *im = gw_hdr(r, "if-match");

    memset(c, 0, sizeof(*c));
    if (inm) {
        if (strcmp(inm, "*") != 0)
            return GW_UNSUPPORTED;
        c->if_none_match_star = 1;
    }
    if (im) {
        /* One entity tag (quotes and W/ stripped), or "*". */
        const char *s = im;
        size_t len;
        while (*s == ' ')
            s++;
        if (strncmp(s, "W/", 2) == 0)
            s += 2;
        if (*s == '"')
            s++;
        len = strcspn(s, "\", ");
        if (len == 0 || len >= cap)
            return GW_PRECONDITION_FAILED;
        memcpy(etag_buf, s, len);
        etag_buf[len] = '\0';
        c->if_match = etag_buf;
    }
    return GW_OK;
}

void gw_ck_header_name(md_cksum_alg alg, char *out, size_t cap)
{
    snprintf(out, cap, "x-amz-checksum-%s", gw_cksum_name(alg));
    for (char *p = out; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
}

/* x-amz-expiration when a lifecycle rule will expire o, the current version (gw_lifecycle.c). */
static void add_expiration_header(gw_req *r, const md_object *o)
{
    char v[GW_LC_ID_MAX * 4 + 80];
    if (gw_lc_expiration(r->g, r->bucket, o, v, sizeof(v)))
        net_resp_header(r->net, "x-amz-expiration", v);
}

/* Send ETag and checksum headers common to write responses. */
static void write_result_headers(gw_req *r, const md_object *o)
{
    char q[64];
    snprintf(q, sizeof(q), "\"%s\"", o->etag);
    net_resp_header(r->net, "ETag", q);
    add_expiration_header(r, o);
    if (o->ck_alg != MD_CK_NONE) {
        char name[40];
        gw_ck_header_name(o->ck_alg, name, sizeof(name));
        net_resp_header(r->net, name, o->ck_value);
    }
}

void gw_put_result_headers(gw_req *r, const md_object *o)
{
    write_result_headers(r, o);
}

cm_ck_alg gw_cm_alg(md_cksum_alg a)
{
    switch (a) {
    case MD_CK_CRC32:
        return CM_CK_CRC32;
    case MD_CK_CRC32C:
        return CM_CK_CRC32C;
    case MD_CK_SHA1:
        return CM_CK_SHA1;
    case MD_CK_SHA256:
        return CM_CK_SHA256;
    default:
        return CM_CK_CRC64NVME;
    }
}

md_cksum_alg gw_md_alg(cm_ck_alg a)
{
    switch (a) {
    case CM_CK_CRC32:
        return MD_CK_CRC32;
    case CM_CK_CRC32C:
        return MD_CK_CRC32C;
    case CM_CK_CRC64NVME:
        return MD_CK_CRC64NVME;
    case CM_CK_SHA1:
        return MD_CK_SHA1;
    case CM_CK_SHA256:
        return MD_CK_SHA256;
    default:
        return MD_CK_NONE;
    }
}

/* ---- PutObject ---- */

void gw_object_attach_body(md_object *o, md_part *part, const md_layout *layout, uint8_t *inl,
                           size_t inl_len)
{
    if (layout) {
        memset(part, 0, sizeof(*part));
        part->size = o->size;
        part->mtime_ms = o->mtime_ms;
        memcpy(part->etag, o->etag, sizeof(part->etag));
        part->layout = *layout;
        o->parts = part;
        o->nparts = 1;
    } else {
        o->inline_data = inl;
        o->inline_len = inl_len;
    }
}

typedef struct {
    md_cond cond;
    char etag[64];
    md_object obj; /* the record to commit; key, parts and inline data are borrowed */
    md_part part;  /* its body when stored as stripes */
    cm_err err;    /* result of the commit (worker) */
    md_object old; /* inline PUT: the replaced record, until a worker frees its data */
    int had_old;
    gw_put_fill_fn fill;     /* the record's headers, metadata and tags (from the request) */
    gw_put_answer_fn answer; /* the success answer (PutObject's: 200 with ETag) */
    md_vres res;             /* the version the PUT made */
} put_state;

static void put_state_free(void *p)
{
    put_state *ps = p;
    if (!ps)
        return;
    /* Borrowed fields must not be freed by the release. */
    ps->obj.key = NULL;
    ps->obj.parts = NULL;
    ps->obj.nparts = 0;
    ps->obj.inline_data = NULL;
    md_object_release(&ps->obj);
    if (ps->had_old)
        md_object_release(&ps->old);
    free(ps);
}

/* Worker: make the data durable, commit the record, free what it replaced. No r->net here. */
static void put_work(gw_req *r)
{
    put_state *ps = r->op;
    md_object old = {0};
    int had_old = 0;

    if ((ps->err = gw_body_seal(r)) != CM_OK)
        return;
    gw_object_attach_body(&ps->obj, &ps->part, r->has_layout ? &r->layout : NULL, r->inl,
                          r->inl_len);
    if (r->has_layout)
        gw_sse_attach(r, &ps->part);
    ps->err = gw_meta_put_v(r->g, r->bucket, &ps->obj, &ps->cond, &old, &had_old, &ps->res);
    if (ps->err != CM_OK && r->has_layout && !ob_commit_failed_may_free(&r->layout, ps->err))
        r->has_layout = 0; /* the record may name it: fsck decides */
    if (ps->err != CM_OK)
        return;
    r->has_layout = 0; /* the record owns the data now */
    if (had_old) {
        ob_free_object_data(r->g->data, &old);
        md_object_release(&old);
    }
}

/* Worker, after an inline PUT's commit: free the data of the record it replaced. */
static void put_free_old(gw_req *r)
{
    put_state *ps = r->op;
    ob_free_object_data(r->g->data, &ps->old);
    md_object_release(&ps->old);
    ps->had_old = 0;
}

/*
 * Commit thread: an inline PUT's batch is done. Must not block: a replaced record with chunks
 * goes to a worker to free them; otherwise straight back to the loop.
 */
static void put_committed(void *arg, cm_err err, md_object *old, int had_old)
{
    gw_req *r = arg;
    put_state *ps = r->op;
    ps->err = err;
    if (had_old && old->nparts > 0) {
        ps->old = *old;
        ps->had_old = 1;
        gw_async_continue(r, put_free_old);
        return;
    }
    if (had_old)
        md_object_release(old);
    gw_async_end(r);
}

/* Loop: answer the client. */
static void put_done(gw_req *r)
{
    put_state *ps = r->op;
    if (ps->err == CM_ERR_NOTFOUND)
        gw_error(r, ps->cond.if_match ? GW_NO_SUCH_KEY : GW_NO_SUCH_BUCKET, NULL);
    else if (ps->err != CM_OK)
        gw_error_cm(r, ps->err);
    else {
        gw_version_answer(r, &ps->res); /* x-amz-version-id on PutObject's and POST's answers */
        ps->answer(r, &ps->obj);
    }
}

static void put_answer(gw_req *r, const md_object *o)
{
    gw_resp_start(r, 200, 0);
    write_result_headers(r, o);
    if (r->sse)
        gw_sse_headers(r, &o->sse, &r->sse->given);
    net_resp_end(r->net);
}

static gw_s3err put_fill(gw_req *r, md_object *o, char *msg, size_t cap)
{
    gw_s3err e = gw_object_headers_from_request(r, o);
    if (e == GW_OK)
        e = gw_object_tags_from_request(r, o, msg, cap);
    return e != GW_OK ? e : gw_lock_from_request(r, o, 1, msg, cap);
}

/* Loop: a cluster node's inline PUT is replicated (gw_meta_put_async); answer. */
static void put_replicated(gw_req *r)
{
    put_state *ps = r->op;
    ps->err = r->meta_err;
    put_done(r);
}

/* Loop: the body is complete and verified; build the record from the request, then commit. */
static void put_finish(gw_req *r)
{
    put_state *ps = r->op;
    md_object *o = &ps->obj;
    gw_s3err e;

    o->key = r->key;
    snprintf(o->version_id, sizeof(o->version_id), "null");
    o->size = r->body_len;
    o->mtime_ms = cm_now_ms();
    cm_hex_encode(r->md5_digest, 16, o->etag);
    o->ck_alg = gw_md_alg(r->ck_alg);
    o->ck_type = MD_CKTYPE_FULL_OBJECT;
    snprintf(o->ck_value, sizeof(o->ck_value), "%s", r->ck_value);
    if (r->sse)
        o->sse = r->sse->obj;
    char msg[200] = "";
    if ((e = ps->fill(r, o, msg, sizeof(msg))) != GW_OK) {
        gw_error(r, e, msg[0] ? msg : NULL);
        return;
    }
    if (!r->writer && gw_meta_remote(r->g) && !ps->cond.if_none_match_star && !ps->cond.if_match &&
        !gw_meta_versioned(r->g, r->bucket) && o->sse.mode == MD_SSE_NONE) {
        /* A cluster node's inline body: the quorum write needs no worker (gw_meta_put_async);
         * an encrypted one is never inline (its segments are sealed on the worker below) */
        gw_object_attach_body(o, &ps->part, NULL, r->inl, r->inl_len);
        gw_meta_put_async(r, o, put_replicated);
        return;
    }
    if (r->writer || gw_meta_remote(r->g) || o->sse.mode != MD_SSE_NONE) {
        /* Striped data: sealing it blocks, a worker does it and the commit. A cluster node's
         * conditional write goes to its partition's leader, which blocks a worker too, and so
         * do its version records in a versioned bucket. An encrypted body is always striped (its
         * last segment is sealed by gw_body_seal). */
        gw_offload(r, put_work, put_done);
        return;
    }
    /* Inline: nothing blocks but the commit, which the metadata commit thread completes. */
    gw_object_attach_body(o, &ps->part, NULL, r->inl, r->inl_len);
    gw_async_begin(r, put_done);
    cm_err err =
        md_object_put_async_v(r->g->md, r->bucket, o, &ps->cond, &ps->res, put_committed, r);
    if (err != CM_OK) {
        ps->err = err;
        gw_async_end(r);
    }
}

/* The request's put state (r->op), with its fill and answer; NULL and a 500 sent when out of
 * memory. */
static put_state *put_state_new(gw_req *r, gw_put_fill_fn fill, gw_put_answer_fn answer)
{
    put_state *ps = calloc(1, sizeof(*ps));
    if (!ps) {
        gw_error(r, GW_INTERNAL, NULL);
        return NULL;
    }
    ps->fill = fill;
    ps->answer = answer;
    r->op = ps;
    r->op_free = put_state_free;
    return ps;
}

void gw_put_commit(gw_req *r, gw_put_fill_fn fill, gw_put_answer_fn answer)
{
    if (put_state_new(r, fill, answer))
        put_finish(r);
}

static void put_object(gw_req *r)
{
    put_state *ps = put_state_new(r, put_fill, put_answer);
    gw_s3err e;

    if (!ps)
        return;
    if ((e = gw_key_check(r->key, strlen(r->key))) != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    if ((e = gw_write_cond(r, &ps->cond, ps->etag, sizeof(ps->etag))) != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    md_bucket bkt; /* read once for the check and the default encryption */
    if (!gw_bucket_fetch(r, r->bucket, &bkt) || gw_lock_put_refused(r)) {
        return;
    }
    md_object acl_only = {0}; /* an ACL the bucket refuses is refused before the body is read */
    if ((e = gw_object_acl_from_request(r, &acl_only)) != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    char msg[200] = "";
    md_sse sse;
    if ((e = gw_sse_request(r, msg, sizeof(msg))) != GW_OK) {
        gw_error(r, e, msg);
        return;
    }
    cm_err err = gw_sse_object_init(&r->sse->given, gw_sse_bucket_default(r, &bkt), &sse);
    if (err == CM_OK && (e = gw_sse_usable(r, &sse, msg, sizeof(msg))) != GW_OK) {
        gw_error(r, e, msg);
        return;
    }
    if (err == CM_OK)
        err = gw_sse_begin_body(r, &sse);
    if (err != CM_OK) {
        gw_error_cm(r, err);
        return;
    }
    gw_body_to_data(r, r->g->cfg.max_object_size, put_finish);
}

/* ---- GetObject / HeadObject ---- */

/*
 * Read buffers of GET pieces, reused per loop thread (common/cm_bufpool.c). A piece of a stripe
 * (1 MiB by default) read into fresh memory cost glibc an mmap (past its 128 KiB threshold), a
 * page fault per 4 KiB page while the read filled it, and a munmap with a TLB shootdown once the
 * socket took it: most of the server's CPU in a 1 MiB GET (docs/performance.md). Now the piece is
 * read into a buffer of this thread's pool, added to the output by reference, and given back to
 * the pool by the evbuffer's cleanup when the socket has taken it (on the same loop thread).
 * Bounds: the pool keeps at most CM_BUFPOOL_MAX idle buffers; buffers in use are bounded by each
 * GET's backpressure (two stripes in the output) and its one read in flight. A piece of a cluster
 * layout is up to GET_AHEAD of its stripes (the cluster read keeps both in flight at once,
 * ob_cluster_read.c), read by ob_read_start_evb: its bytes come as the cells' own receive
 * buffers, added to the output by reference, so they are not copied between the node's socket
 * and the client's (the cells go back to cm_bufpool's shared pool once the socket took them).
 */
#define GET_AHEAD 2

void gw_get_buffers_release(void)
{
    cm_bufpool_release();
}

typedef struct {
    uint64_t *part_end; /* cumulative end offset of each part */
    struct evbuffer *piece;
    /* A read of a cluster layout in flight (ob_read_start_evb) of the rwant bytes of the piece,
     * into piece. */
    ob_read_op *rd;
    gw_req *r;
    size_t rwant;
    struct evbuffer_iovec v; /* an inline piece: reserved in piece */
    /* Until the first piece is read: the status (200/206) and range its headers will carry. */
    int status;
    uint64_t first, last;
    /* A cluster piece that failed is read again on the record as it is now (get_reread): the
     * read (part, offset in its layout, buffer, length, completion: get_read_done of a plain
     * piece, sse_read_done of the stored segments of an encrypted one) and its error, the tries
     * so far, and the layout the record names for part alt_pi now when it differs from the one
     * read first (has_alt). */
    size_t rd_pi, alt_pi;
    uint64_t rd_off;
    void *rd_buf;
    size_t rd_len;
    void (*rd_done)(void *arg, cm_err err);
    cm_err rd_err, reread_err;
    int retries, has_alt;
    md_layout alt;
    struct event *pause; /* the wait before a piece is read again (made on first use) */
    /* An encrypted part of a cluster layout: its stored segments are read with ob_read_start
     * into ct (GW_SSE_READ_SCRATCH bytes, allocated once, freed after the read's cancel), then
     * [sse_off, sse_off + sse_len) of part sse_part is decrypted in sse_read_done. */
    uint8_t *ct;
    const md_part *sse_part;
    uint64_t sse_off;
    size_t sse_len;
    /* A single node's piece the page cache did not hold, read by a worker (get_cold_work): want
     * bytes at offset cold_off of part cold_pi, into cold_buf (cold_cap bytes, this loop's pool,
     * the state's until get_cold_done adds it to the piece), decrypted when cold_mode is
     * COLD_SSE; or, COLD_RESERVED, into the piece's reserved space (v). */
    void *cold_buf;
    size_t cold_pi, cold_want, cold_cap;
    uint64_t cold_off;
    int cold_mode;
    cm_err cold_err;
} get_state;

enum { COLD_PLAIN, COLD_SSE, COLD_RESERVED };

static void get_state_free(void *p)
{
    get_state *gs = p;
    if (!gs)
        return;
    if (gs->rd) /* the connection ended with a read in flight (this runs on its loop) */
        ob_read_cancel(gs->rd);
    if (gs->pause) /* ... or while it waited to read a piece again (a pending event is removed) */
        event_free(gs->pause);
    free(gs->ct);                               /* ciphertext only: nothing to wipe */
    cm_bufpool_put(gs->cold_buf, gs->cold_cap); /* the worker ended: this runs on the loop */
    free(gs->part_end);
    if (gs->piece)
        evbuffer_free(gs->piece);
    free(gs);
}

static void get_drain(gw_req *r);
static void send_headers(gw_req *r, const md_object *o, int status, uint64_t first, uint64_t last);

/*
 * A piece of want bytes was read (reserved: into gs->v, to commit) or failed: send it on. The
 * first piece goes out after the headers; when it fails nothing is out yet and the client gets
 * an S3 error: 500 for data found corrupt, 503 (which S3 clients retry) for data out of reach.
 */
static int get_piece_done(gw_req *r, cm_err err, int reserved, uint64_t want)
{
    get_state *gs = r->op;
    if (err != CM_OK) {
        CM_ERROR(MOD, "req=%s read of %s/%s at %" PRIu64 " failed: %s%s", r->id, r->bucket, r->key,
                 r->send_pos, cm_err_str(err),
                 gs->status ? "" : " (headers are out: body cut short)");
        r->drain = NULL;
        if (gs->status)
            gw_error(r, err == CM_ERR_CORRUPT ? GW_INTERNAL : GW_SERVICE_UNAVAILABLE, NULL);
        else
            net_req_abort(r->net); /* headers are out: all we can do is cut the body short */
        return -1;
    }
    if (reserved)
        evbuffer_commit_space(gs->piece, &gs->v, 1);
    if (gs->status) {
        send_headers(r, &r->obj, gs->status, gs->first, gs->last);
        gs->status = 0;
    }
    net_resp_write_buffer(r->net, gs->piece);
    r->send_pos += want;
    return 0;
}

/* The data key of encrypted part pi into r->sse->dek, unwrapped once per part. */
static cm_err sse_part_key(gw_req *r, size_t pi, const md_part *p)
{
    gw_sse_ctx *c = r->sse;
    if (!c || MD_PART_INLINE(p))
        return CM_ERR_CORRUPT;
    if (c->have_dek && c->dek_part == pi)
        return CM_OK;
    cm_err err = gw_sse_part_key(r->g, &r->obj.sse, &c->given, p, c->dek);
    if (err != CM_OK) {
        /* CM_ERR_AUTH from an SSE-S3 key: wrapped under another master key (every node of a
         * cluster needs the same one: docs/encryption.md) */
        CM_ERROR(MOD, "req=%s %s/%s part %zu: data key not unwrapped: %s%s", r->id, r->bucket,
                 r->key, pi, cm_err_str(err),
                 err == CM_ERR_AUTH && r->obj.sse.mode == MD_SSE_S3
                     ? " (wrapped under another master key than this node's)"
                     : "");
        return CM_ERR_CORRUPT;
    }
    c->have_dek = 1;
    c->dek_part = pi;
    return CM_OK;
}

/* want bytes read into pooled buffer buf (of size bytes) into the piece, by reference; after a
 * failed read (err) the buffer goes back to the pool. */
static cm_err piece_add(get_state *gs, void *buf, size_t want, size_t size, cm_err err)
{
    if (err == CM_OK && evbuffer_add_reference(gs->piece, buf, want, cm_bufpool_cleanup,
                                               (void *)(uintptr_t)size) != 0)
        err = CM_ERR_NOMEM;
    if (err != CM_OK)
        cm_bufpool_put(buf, size);
    return err;
}

/*
 * A piece of a cluster layout failed (fewer than k cells of its stripe answered). A heal may have
 * moved or rewritten cells since the record was read: a move back home deletes the retired chunk
 * at that place before it writes the cell again (ob_heal.c, prepare), and a rebuild in place
 * deletes the bad chunk first; a GET still holding the layout read before finds those cells "not
 * found". Nothing of the piece is out yet (a piece is at most GET_AHEAD stripes), so the record is
 * read again (a quorum read) and the piece read again on the layout it names now for that body, up
 * to GET_REREADS times, each after a pause (GET_REREAD_MS, doubled: 3.1 s in all) that lets a
 * rewrite in place end (docs/chunks.md, "A GET and a concurrent heal"). The pause is a timer on the
 * request's loop; only the record's read takes a worker.
 */
#define GET_REREADS 5
#define GET_REREAD_MS 100

static void get_read_done(void *arg, cm_err err);

/* Worker: the record as it is now; the layout it names for the failed piece's body. */
static void get_reread_work(gw_req *r)
{
    get_state *gs = r->op;
    const md_part *p = &r->obj.parts[gs->rd_pi];
    md_object rec;
    gs->reread_err = gw_meta_get(r->g, r->bucket, r->key, &rec);
    if (gs->reread_err != CM_OK) /* no quorum now: the layout read before is tried again */
        return;
    gs->reread_err = CM_ERR_NOTFOUND; /* unless the record still names the body */
    for (size_t i = 0; i < rec.nparts; i++) {
        const md_part *q = &rec.parts[i];
        if (MD_PART_INLINE(q) || memcmp(q->layout.blob, p->layout.blob, 16) != 0)
            continue;
        gs->alt = q->layout;
        gs->alt_pi = gs->rd_pi;
        gs->has_alt = 1;
        gs->reread_err = CM_OK;
        break;
    }
    md_object_release(&rec);
}

/* The layout part pi is read on: the one the record read anew names, if it did for pi. */
static const md_layout *get_layout(const gw_req *r, size_t pi)
{
    const get_state *gs = r->op;
    return gs->has_alt && gs->alt_pi == pi ? &gs->alt : &r->obj.parts[pi].layout;
}

/* Start the cluster read gs->rd_* names, on the layout of its part as the record names it now. */
static cm_err get_read_start(gw_req *r)
{
    get_state *gs = r->op;
    gs->r = r;
    const md_layout *lay = get_layout(r, gs->rd_pi);
    struct event_base *base = net_req_base(r->net);
    if (!gs->rd_buf) /* a plain piece: its bytes to the piece, by reference to the cells */
        return ob_read_start_evb(r->g->data, lay, gs->rd_off, gs->rd_len, gs->piece, base,
                                 gs->rd_done, gs, &gs->rd);
    return ob_read_start(r->g->data, lay, gs->rd_off, gs->rd_buf, gs->rd_len, base, gs->rd_done, gs,
                         &gs->rd);
}

/* Loop: read the piece again, on the layout the record names now. */
static void get_reread_done(gw_req *r)
{
    get_state *gs = r->op;
    const md_layout *was = &r->obj.parts[gs->rd_pi].layout;
    const md_layout *lay = get_layout(r, gs->rd_pi);
    cm_err err = gs->reread_err;
    r->drain = get_drain;
    CM_WARN(MOD, "req=%s read of %s/%s at %" PRIu64 " failed (%s): record read again (%s), try %d",
            r->id, r->bucket, r->key, r->send_pos, cm_err_str(gs->rd_err),
            err != CM_OK ? cm_err_str(err)
            : memcmp(lay->drives, was->drives, MD_MAX_CELLS) ||
                    memcmp(lay->nodes, was->nodes, sizeof(was->nodes))
                ? "the layout changed"
                : "the same layout",
            gs->retries);
    /* CM_ERR_NOTFOUND: the record names the body no more; after any other failure of the
     * record's read, the layout read before is tried again */
    err = err == CM_ERR_NOTFOUND ? gs->rd_err : get_read_start(r);
    if (err != CM_OK) /* fails: the 503, or the body cut short (a pooled buffer goes back with
                       * the state) */
        get_piece_done(r, err, 0, 0);
}

/* Loop: the pause is over; the record is read on a worker (which owns r until
 * get_reread_done). */
static void get_pause_end(evutil_socket_t fd, short what, void *arg)
{
    gw_req *r = arg;
    (void)fd, (void)what;
    gw_offload(r, get_reread_work, get_reread_done);
}

static void get_cold_start(gw_req *r, int mode, void *buf, size_t cap, size_t pi, uint64_t off,
                           size_t want);

/*
 * The plaintext of [in_part, in_part + want) of encrypted part pi of a single node's layout into
 * the piece, by reference to a pooled buffer: gw_sse_read_cached reads what the page cache holds,
 * as the plain single-node path does; CM_AGAIN when a worker reads it instead (get_cold_start).
 */
static cm_err sse_piece(gw_req *r, size_t pi, const md_part *p, uint64_t in_part, size_t want,
                        size_t stripe)
{
    gw_sse_ctx *c = r->sse;
    cm_err err = sse_part_key(r, pi, p);
    if (err != CM_OK)
        return err;
    if (!c->scratch && !(c->scratch = malloc(GW_SSE_READ_SCRATCH)))
        return CM_ERR_NOMEM;
    void *buf = cm_bufpool_take(stripe);
    err = buf ? gw_sse_read_cached(r->g->data, p, c->dek, in_part, buf, want, c->scratch)
              : CM_ERR_NOMEM;
    if (err == CM_AGAIN) {
        get_cold_start(r, COLD_SSE, buf, stripe, pi, in_part, want);
        return CM_AGAIN;
    }
    return piece_add(r->op, buf, want, stripe, err);
}

/*
 * A cluster read (gs->rd_*) failed with err: when it may be read again, pause and return 1
 * (get_pause_end reads the record, get_reread_done the piece); 0 when it may not (the caller
 * fails the piece). Out of memory and a closed connection are not read again.
 */
static int get_retry(gw_req *r, cm_err err)
{
    get_state *gs = r->op;
    if (err == CM_OK || err == CM_ERR_NOMEM || err == CM_ERR_CLOSED || gs->retries >= GET_REREADS ||
        !gw_meta_remote(r->g) ||
        (!gs->pause && !(gs->pause = evtimer_new(net_req_base(r->net), get_pause_end, r))))
        return 0;
    long ms = (long)GET_REREAD_MS << gs->retries++;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    gs->rd_err = err;
    r->drain = NULL; /* no piece is read while it waits */
    evtimer_add(gs->pause, &tv);
    return 1;
}

/* ob_read_start's completion of an encrypted piece, on the request's loop: decrypt it (a read
 * that failed is first read again, as a plain piece's: get_retry). */
static void sse_read_done(void *arg, cm_err err)
{
    get_state *gs = arg;
    gw_req *r = gs->r;
    size_t stripe = ob_store_stripe_bytes(r->g->data);
    gs->rd = NULL;
    if (get_retry(r, err))
        return;
    gs->retries = 0;
    void *buf = NULL;
    if (err == CM_OK) {
        buf = cm_bufpool_take(stripe);
        err = !buf ? CM_ERR_NOMEM
                   : gw_sse_open(gs->sse_part, r->sse->dek, gs->sse_off, gs->ct, buf, gs->sse_len,
                                 gs->ct + GW_SSE_READ_SEGS * (GW_SSE_SEG + GW_SSE_TAG));
    }
    err = piece_add(gs, buf, gs->sse_len, stripe, err);
    if (get_piece_done(r, err, 0, gs->sse_len) == 0)
        get_drain(r);
}

/*
 * Start the read of [in_part, in_part + *want) of encrypted part pi of a cluster layout (the
 * loop never waits on other nodes): its stored segments, at most GW_SSE_READ_SEGS of them (*want
 * is cut to fit), into gs->ct; sse_read_done decrypts them. Parts of another segment size than
 * GW_SSE_SEG (no writer makes them) are refused.
 */
static cm_err sse_start(gw_req *r, size_t pi, const md_part *p, uint64_t in_part, size_t *want)
{
    get_state *gs = r->op;
    uint64_t c_off;
    size_t c_len;
    cm_err err = sse_part_key(r, pi, p);
    if (err != CM_OK)
        return err;
    if (p->sse_seg != GW_SSE_SEG)
        return CM_ERR_UNSUPPORTED;
    *want = (size_t)CM_MIN((uint64_t)*want, GW_SSE_READ_SEGS * GW_SSE_SEG - in_part % GW_SSE_SEG);
    if ((err = gw_sse_span(p, in_part, *want, &c_off, &c_len)) != CM_OK)
        return err;
    if (!gs->ct && !(gs->ct = malloc(GW_SSE_READ_SCRATCH)))
        return CM_ERR_NOMEM;
    gs->sse_part = p;
    gs->sse_off = in_part;
    gs->sse_len = *want;
    gs->rd_pi = pi, gs->rd_off = c_off, gs->rd_buf = gs->ct, gs->rd_len = c_len;
    gs->rd_done = sse_read_done;
    return get_read_start(r);
}

/* ob_read_start's completion, on the request's loop. */
static void get_read_done(void *arg, cm_err err)
{
    get_state *gs = arg;
    gw_req *r = gs->r;
    gs->rd = NULL;
    if (get_retry(r, err))
        return;
    gs->retries = 0;
    if (get_piece_done(r, err, 0, gs->rwant) == 0) /* the piece's bytes are in the output */
        get_drain(r);
}

/* Worker: a single node's piece that the loop could not read from the page cache, read from the
 * disk (rebuilt from parity if need be), and decrypted for COLD_SSE. */
static void get_cold_work(gw_req *r)
{
    get_state *gs = r->op;
    const md_part *p = &r->obj.parts[gs->cold_pi];
    if (gs->cold_mode == COLD_SSE)
        gs->cold_err = gw_sse_read(r->g->data, p, r->sse->dek, gs->cold_off, gs->cold_buf,
                                   gs->cold_want, r->sse->scratch);
    else
        gs->cold_err =
            ob_read(r->g->data, &p->layout, gs->cold_off,
                    gs->cold_mode == COLD_RESERVED ? gs->v.iov_base : gs->cold_buf, gs->cold_want);
}

/* Loop: the worker's piece to the output, and the drain goes on. */
static void get_cold_done(gw_req *r)
{
    get_state *gs = r->op;
    void *buf = gs->cold_buf;
    gs->cold_buf = NULL;
    r->drain = get_drain;
    cm_err err = gs->cold_mode == COLD_RESERVED
                     ? gs->cold_err
                     : piece_add(gs, buf, gs->cold_want, gs->cold_cap, gs->cold_err);
    if (get_piece_done(r, err, gs->cold_mode == COLD_RESERVED, gs->cold_want) == 0)
        get_drain(r);
}

/* Hand a piece the page cache did not hold to a worker (get_cold_work); the drain stops until
 * get_cold_done. buf (cap bytes of this loop's pool) is the state's meanwhile; NULL for
 * COLD_RESERVED, which reads into the piece's reserved space. */
static void get_cold_start(gw_req *r, int mode, void *buf, size_t cap, size_t pi, uint64_t off,
                           size_t want)
{
    get_state *gs = r->op;
    gs->cold_mode = mode, gs->cold_buf = buf, gs->cold_cap = cap, gs->cold_want = want;
    gs->cold_pi = pi, gs->cold_off = off;
    r->drain = NULL; /* no piece is read meanwhile */
    gw_offload(r, get_cold_work, get_cold_done);
}

/*
 * Read the next piece of the body into the response; end the response when all is sent. A part
 * of a cluster layout (epoch != 0) is read with ob_read_start, GET_AHEAD stripes a piece (their
 * cells in flight together), which waits on other nodes off the loop: the drain stops until
 * get_read_done resumes it. A single node's stripe is read at once when the page cache holds it
 * (ob_read_cached; a worker round trip would cost a loop turn per piece), else by a worker
 * (get_cold_work; the drain stops until get_cold_done): the loop never waits on a disk, so a
 * cold read or a hanging drive holds up only the GETs that need it.
 */
static void get_drain(gw_req *r)
{
    get_state *gs = r->op;
    const md_object *o = &r->obj;
    size_t stripe = ob_store_stripe_bytes(r->g->data);

    while (!gs->rd && r->send_pos < r->send_end && net_resp_pending(r->net) < 2 * stripe) {
        size_t pi = 0;
        while (gs->part_end[pi] <= r->send_pos)
            pi++;
        const md_part *p = &o->parts[pi];
        uint64_t part_start = gs->part_end[pi] - p->size;
        uint64_t in_part = r->send_pos - part_start;
        /* Up to the end of the current stripe of this part. */
        uint64_t pstripe = (uint64_t)p->layout.k * p->layout.cell_size;
        uint64_t want = pstripe ? pstripe - in_part % pstripe : stripe;
        want = CM_MIN(want, p->size - in_part);
        want = CM_MIN(want, r->send_end - r->send_pos);
        cm_err err;
        if (p->sse_key_len) { /* decrypted segment by segment into a pooled buffer */
            size_t n = (size_t)CM_MIN(want, (uint64_t)stripe);
            if (p->layout.epoch != 0) { /* across nodes: sse_read_done goes on */
                if ((err = sse_start(r, pi, p, in_part, &n)) == CM_OK)
                    return;
            } else if ((err = sse_piece(r, pi, p, in_part, n, stripe)) == CM_AGAIN) {
                return; /* a worker reads it: get_cold_done goes on */
            }
            if (get_piece_done(r, err, 0, n))
                return;
            continue;
        }
        if (!p->inline_data && p->layout.epoch == 0 && want <= stripe) {
            /* A single node's stripe data: into a pooled buffer, added by reference. */
            void *buf = cm_bufpool_take(stripe);
            err = buf ? ob_read_cached(r->g->data, &p->layout, in_part, buf, want) : CM_ERR_NOMEM;
            if (err == CM_AGAIN) { /* the disk's: a worker reads it */
                get_cold_start(r, COLD_PLAIN, buf, stripe, pi, in_part, (size_t)want);
                return;
            }
            if (get_piece_done(r, piece_add(gs, buf, want, stripe, err), 0, want) != 0)
                return;
            continue;
        }
        if (!p->inline_data && p->layout.epoch != 0) {
            /* Across nodes: up to GET_AHEAD stripes at once, into the piece by reference. */
            gs->rwant = (size_t)CM_MIN(want + (GET_AHEAD - 1) * pstripe,
                                       CM_MIN(p->size - in_part, r->send_end - r->send_pos));
            gs->rd_pi = pi, gs->rd_off = in_part, gs->rd_len = gs->rwant;
            gs->rd_buf = NULL;
            gs->rd_done = get_read_done;
            err = get_read_start(r);
            if (err == CM_OK)
                return; /* get_read_done goes on */
            if (get_piece_done(r, err, 0, gs->rwant) != 0)
                return;
            continue;
        }
        /* Inline bodies, and stripes larger than the store's: into the output's free space. */
        if (evbuffer_reserve_space(gs->piece, (ev_ssize_t)want, &gs->v, 1) < 1) {
            get_piece_done(r, CM_ERR_NOMEM, 0, want);
            return;
        }
        gs->v.iov_len = want;
        if (p->inline_data) {
            memcpy(gs->v.iov_base, p->inline_data + in_part, want);
            err = CM_OK;
        } else if ((err = ob_read_cached(r->g->data, &p->layout, in_part, gs->v.iov_base, want)) ==
                   CM_AGAIN) {
            get_cold_start(r, COLD_RESERVED, NULL, 0, pi, in_part, (size_t)want);
            return;
        }
        if (get_piece_done(r, err, 1, want) != 0)
            return;
    }
    if (!gs->rd && r->send_pos >= r->send_end) {
        r->drain = NULL;
        net_resp_end(r->net);
    }
}

static void add_object_headers(gw_req *r, const md_object *o)
{
    char buf[64];
    static const struct {
        const char *param, *header;
    } overrides[] = {{"response-content-type", "Content-Type"},
                     {"response-content-language", "Content-Language"},
                     {"response-expires", "Expires"},
                     {"response-cache-control", "Cache-Control"},
                     {"response-content-disposition", "Content-Disposition"},
                     {"response-content-encoding", "Content-Encoding"}};
    const char *stored[] = {o->content_type,  o->content_language,    o->expires,
                            o->cache_control, o->content_disposition, o->content_encoding};

    snprintf(buf, sizeof(buf), "\"%s\"", o->etag);
    net_resp_header(r->net, "ETag", buf);
    cm_time_rfc1123((time_t)(o->mtime_ms / 1000), buf);
    net_resp_header(r->net, "Last-Modified", buf);
    net_resp_header(r->net, "Accept-Ranges", "bytes");
    for (size_t i = 0; i < CM_ARRAY_LEN(overrides); i++) {
        const char *v = gw_query_get(&r->q, overrides[i].param);
        if (!v)
            v = stored[i];
        if (v)
            net_resp_header(r->net, overrides[i].header, v);
    }
    if (o->website_redirect)
        net_resp_header(r->net, "x-amz-website-redirect-location", o->website_redirect);
    if (o->storage_class[0]) /* S3 names every class but STANDARD */
        net_resp_header(r->net, "x-amz-storage-class", o->storage_class);
    if (o->ntags) {
        snprintf(buf, sizeof(buf), "%zu", o->ntags);
        net_resp_header(r->net, "x-amz-tagging-count", buf);
    }
    if (!gw_query_find(&r->q, "versionId")) /* the current version */
        add_expiration_header(r, o);
    if (o->sse.mode != MD_SSE_NONE && r->sse)
        gw_sse_headers(r, &o->sse, &r->sse->given);
    gw_lock_headers(r, o);
    for (size_t i = 0; i < o->nmeta; i++) {
        char name[300];
        snprintf(name, sizeof(name), "x-amz-meta-%s", o->meta[i].name);
        net_resp_header(r->net, name, o->meta[i].value);
    }
    if (gw_query_find(&r->q, "partNumber") &&
        (o->nparts > 1 || (o->nparts == 1 && o->parts[0].number > 0))) {
        snprintf(buf, sizeof(buf), "%zu", o->nparts);
        net_resp_header(r->net, "x-amz-mp-parts-count", buf);
    }
}

static void add_checksum_header(gw_req *r, const md_object *o)
{
    const char *mode = gw_hdr(r, "x-amz-checksum-mode");
    if (!mode || strcasecmp(mode, "ENABLED") != 0 || o->ck_alg == MD_CK_NONE)
        return;
    char name[40];
    gw_ck_header_name(o->ck_alg, name, sizeof(name));
    net_resp_header(r->net, name, o->ck_value);
    net_resp_header(r->net, "x-amz-checksum-type",
                    o->ck_type == MD_CKTYPE_COMPOSITE ? "COMPOSITE" : "FULL_OBJECT");
}

/* Resolve ?partNumber=N to the byte range of that part. */
static gw_s3err part_range(const md_object *o, const char *pn, uint64_t *first, uint64_t *last,
                           int *applies)
{
    uint64_t n;
    gw_s3err e = gw_parse_count(pn, 0, 100000, &n);
    if (e != GW_OK || n < 1 || n > GW_MAX_PARTS)
        return GW_INVALID_ARGUMENT;
    if (o->nparts == 0 || (o->nparts == 1 && o->parts[0].number == 0)) {
        if (n != 1)
            return GW_INVALID_RANGE;
        *applies = 0; /* a single-part object is its own part 1 */
        return GW_OK;
    }
    if (n > o->nparts)
        return GW_INVALID_RANGE;
    uint64_t start = 0;
    for (size_t i = 0; i + 1 < n; i++)
        start += o->parts[i].size;
    *first = start;
    *last = start + o->parts[n - 1].size - 1;
    *applies = o->parts[n - 1].size > 0;
    return GW_OK;
}

gw_s3err gw_inline_check(gw_req *r, const char *bucket, const char *key, const md_object *o)
{
    if (md_object_inline_verify(o) == CM_OK)
        return GW_OK;
    CM_ERROR(MOD, "req=%s inline body corrupt bucket=%s key=%s etag=%s: not served", r->id, bucket,
             key, o->etag);
    return GW_INTERNAL;
}

/* Present an inline body as one pseudo-part, so streaming has one code path. */
static cm_err normalise_inline(md_object *o)
{
    if (o->nparts > 0 || !o->inline_data)
        return CM_OK;
    md_part *p = calloc(1, sizeof(*p));
    if (!p)
        return CM_ERR_NOMEM;
    p->size = o->inline_len;
    p->inline_data = o->inline_data;
    o->inline_data = NULL;
    o->inline_len = 0;
    o->parts = p;
    o->nparts = 1;
    return CM_OK;
}

/* 304: no body, but the validators the client compares. */
static void send_not_modified(gw_req *r, const md_object *o)
{
    char buf[64];
    gw_resp_start(r, 304, -1);
    snprintf(buf, sizeof(buf), "\"%s\"", o->etag);
    net_resp_header(r->net, "ETag", buf);
    cm_time_rfc1123((time_t)(o->mtime_ms / 1000), buf);
    net_resp_header(r->net, "Last-Modified", buf);
    net_resp_end(r->net);
}

/* 416 carries the object size in Content-Range ("bytes *" then "/size") so clients can retry. */
static void send_unsatisfiable(gw_req *r, const md_object *o)
{
    char cr[48];
    struct evbuffer *buf = evbuffer_new();
    if (!buf) {
        net_req_abort(r->net);
        return;
    }
    snprintf(cr, sizeof(cr), "bytes */%" PRIu64, o->size);
    gw_xml_error(buf, GW_INVALID_RANGE, NULL, r->q.path, r->id);
    gw_resp_start(r, 416, r->head ? 0 : (int64_t)evbuffer_get_length(buf));
    net_resp_header(r->net, "Content-Range", cr);
    net_resp_header(r->net, "Content-Type", "application/xml");
    if (!r->head)
        net_resp_write_buffer(r->net, buf);
    net_resp_end(r->net);
    evbuffer_free(buf);
}

/* The headers of a 200/206 answer of r->send_pos..r->send_end. */
static void send_headers(gw_req *r, const md_object *o, int status, uint64_t first, uint64_t last)
{
    /* a website's error document is served with the error's status (gw_website.c) */
    gw_resp_start(r, r->web_status ? r->web_status : status, (int64_t)(r->send_end - r->send_pos));
    add_object_headers(r, o);
    if (status == 206) {
        char cr[80];
        snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, last, o->size);
        net_resp_header(r->net, "Content-Range", cr);
    } else {
        add_checksum_header(r, o);
    }
}

/*
 * A 200/206 answer. A HEAD or an empty body gets its headers at once; otherwise get_drain reads
 * the first piece before the headers go out (get_piece_done), so a body that cannot be read is
 * answered with an error rather than a 200 cut short.
 */
static void send_body(gw_req *r, md_object *o, int applies, uint64_t first, uint64_t last)
{
    if ((!r->head || applies) && gw_inline_check(r, r->bucket, r->key, o) != GW_OK) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    if (o->sse.mode != MD_SSE_NONE && o->inline_len > 0) {
        CM_ERROR(MOD, "req=%s %s/%s: an encrypted record with an inline body: not served", r->id,
                 r->bucket, r->key);
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    if (normalise_inline(o) != CM_OK) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    int status = applies ? 206 : 200;
    r->send_pos = applies ? first : 0;
    r->send_end = applies ? last + 1 : o->size;
    if (r->head || r->send_pos == r->send_end) {
        send_headers(r, o, status, first, last);
        net_resp_end(r->net);
        return;
    }
    get_state *gs = calloc(1, sizeof(*gs));
    if (!gs || !(gs->part_end = calloc(o->nparts, sizeof(uint64_t))) ||
        !(gs->piece = evbuffer_new())) {
        get_state_free(gs);
        gw_error(r, GW_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    r->op = gs;
    r->op_free = get_state_free;
    gs->status = status;
    gs->first = first;
    gs->last = last;
    for (size_t i = 0, end = 0; i < o->nparts; i++)
        gs->part_end[i] = end += o->parts[i].size;
    r->drain = get_drain;
    get_drain(r);
}

/* Single node, on the loop: the record from the local store (a cluster node reads it from its
 * replicas with gw_meta_get_leased_async). */
static void get_record_work(gw_req *r)
{
    const char *vid = gw_query_get(&r->q, "versionId");
    r->meta_err = vid ? ob_version_get_leased(r->g->data, r->g->md, r->bucket, r->key, vid, &r->obj)
                      : gw_meta_get_leased(r->g, r->bucket, r->key, &r->obj);
}

/* Loop: the record is read (r->meta_err); answer. */
static void get_object_found(gw_req *r)
{
    md_object *o = &r->obj;
    cm_err err = r->meta_err;
    uint64_t first = 0, last = 0;
    int applies = 0;
    const char *vid = gw_query_get(&r->q, "versionId");

    if (err == CM_ERR_NOTFOUND) {
        if (gw_bucket_check(r, r->bucket))
            gw_error(r, vid ? GW_NO_SUCH_VERSION : GW_NO_SUCH_KEY, NULL);
        return;
    }
    if (err != CM_OK) {
        gw_error_cm(r, err);
        return;
    }
    r->have_obj = 1;
    r->leased = 1;
    if (gw_version_read_answer(r, o, vid) != 0)
        return; /* a delete marker */
    char msg[200] = "";
    gw_s3err e = gw_sse_check(&o->sse, &r->sse->given, msg, sizeof(msg));
    if (e == GW_OK && !r->head)
        e = gw_sse_key_check(r->g, o, msg, sizeof(msg));
    if (e != GW_OK) {
        if (e == GW_INTERNAL)
            CM_ERROR(MOD, "req=%s %s/%s: %s", r->id, r->bucket, r->key, msg);
        gw_error(r, e, msg);
        return;
    }
    if (r->web_status) { /* an error document: whole, whatever the request's conditions */
        send_body(r, o, 0, 0, 0);
        return;
    }
    e = gw_cond_check(gw_hdr(r, "if-match"), gw_hdr(r, "if-none-match"),
                      gw_hdr(r, "if-modified-since"), gw_hdr(r, "if-unmodified-since"), o->etag,
                      o->mtime_ms, 0);
    if (e == GW_OK) {
        const char *pn = gw_query_get(&r->q, "partNumber");
        e = pn ? part_range(o, pn, &first, &last, &applies)
               : gw_range_parse(gw_hdr(r, "range"), o->size, &applies, &first, &last);
    }
    if (e == GW_NOT_MODIFIED)
        send_not_modified(r, o);
    else if (e == GW_INVALID_RANGE)
        send_unsatisfiable(r, o);
    else if (e != GW_OK)
        gw_error(r, e, NULL);
    else
        send_body(r, o, applies, first, last);
}

static void get_object(gw_req *r)
{
    if (!gw_version_param_ok(r))
        return;
    char msg[200] = "";
    gw_s3err e = gw_sse_request(r, msg, sizeof(msg));
    if (e != GW_OK) {
        gw_error(r, e, msg);
        return;
    }
    if (gw_meta_remote(r->g) && gw_query_find(&r->q, "versionId")) {
        gw_offload(r, gw_meta_get_version_work, get_object_found); /* may scan the key's versions */
        return;
    }
    if (gw_meta_remote(r->g)) {
        gw_meta_get_leased_async(r, get_object_found);
        return;
    }
    get_record_work(r);
    get_object_found(r);
}

void gw_object_serve(gw_req *r, const char *key, int status)
{
    char *k = strdup(key);
    if (!k) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    if (r->leased) /* a first attempt that ended in an error (a delete marker) */
        ob_lease_release(r->g->data, &r->obj);
    if (r->have_obj)
        md_object_release(&r->obj);
    r->leased = r->have_obj = 0;
    free(r->key);
    r->key = k;
    r->web_status = status;
    get_object(r);
}

/* ---- DeleteObject ---- */

typedef struct {
    md_cond cond;
    char etag[64];
    cm_err err;
    const char *vid; /* ?versionId: the version to destroy */
    md_vres res;
} delete_state;

cm_err gw_object_remove(gw *g, const char *bucket, const char *key, const char *vid,
                        const md_cond *cond, md_vres *res)
{
    md_object old = {0};
    int had_old = 0;
    cm_err e = gw_meta_delete_v(g, bucket, key, vid, cond, &old, &had_old, res);
    if (had_old) {
        ob_free_object_data(g->data, &old);
        md_object_release(&old);
    }
    return e;
}

/* Worker: remove the record, then its data (once no GET reads it). */
static void delete_work(gw_req *r)
{
    delete_state *ds = r->op;
    ds->err = gw_object_remove(r->g, r->bucket, r->key, ds->vid,
                               ds->cond.if_match || ds->cond.bypass_governance ? &ds->cond : NULL,
                               &ds->res);
}

static void delete_done(gw_req *r)
{
    delete_state *ds = r->op;
    if (ds->err == CM_ERR_NOTFOUND && ds->cond.if_match)
        gw_error(r, GW_NO_SUCH_KEY, NULL);
    else if (ds->err != CM_OK && ds->err != CM_ERR_NOTFOUND)
        gw_error_cm(r, ds->err);
    else {
        if (ds->err == CM_OK)
            gw_version_answer(r, &ds->res);
        gw_resp_start(r, 204, -1);
        net_resp_end(r->net);
    }
}

static void delete_object(gw_req *r)
{
    delete_state *ds = calloc(1, sizeof(*ds));

    if (!ds) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op = ds;
    r->op_free = free;
    gw_s3err e = gw_write_cond(r, &ds->cond, ds->etag, sizeof(ds->etag));
    if (e != GW_OK || ds->cond.if_none_match_star) {
        gw_error(r, e != GW_OK ? e : GW_UNSUPPORTED, NULL);
        return;
    }
    if (!gw_bucket_check(r, r->bucket) || !gw_version_param_ok(r))
        return;
    ds->vid = gw_query_get(&r->q, "versionId");
    ds->cond.bypass_governance = ds->vid && gw_lock_bypass(r, r->bucket, r->key);
    gw_offload(r, delete_work, delete_done);
}

void gw_op_object(gw_req *r)
{
    const char *m = net_req_method(r->net);
    int is_get = strcmp(m, "GET") == 0 || r->head;
    const gw_query *q = &r->q;

    if (gw_bucket_name_check(r->bucket) != GW_OK) {
        gw_error(r, GW_NO_SUCH_BUCKET, NULL);
        return;
    }
    if (gw_query_find(q, "uploadId") || (strcmp(m, "POST") == 0 && gw_query_find(q, "uploads"))) {
        gw_op_multipart(r);
        return;
    }
    if (gw_access_object_op(r)) { /* GET/PUT ?acl: canned ACLs (gw_access.c) */
        return;
    } else if (gw_query_find(q, "tagging")) {
        gw_op_object_tagging(r);
    } else if (gw_query_find(q, "attributes")) {
        gw_op_object_attributes(r);
    } else if (gw_query_find(q, "retention") || gw_query_find(q, "legal-hold")) {
        gw_op_object_lock(r); /* gw_lock.c */
    } else if (gw_query_find(q, "acl") || gw_query_find(q, "restore") ||
               gw_query_find(q, "torrent") || gw_query_find(q, "select") ||
               gw_query_find(q, "renameObject")) {
        gw_error(r, GW_UNSUPPORTED, NULL);
    } else if (is_get) {
        get_object(r);
    } else if (strcmp(m, "PUT") == 0) {
        if (gw_hdr(r, "x-amz-copy-source"))
            gw_op_copy(r, 0);
        else
            put_object(r);
    } else if (strcmp(m, "DELETE") == 0) {
        delete_object(r);
    } else {
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
    }
}
