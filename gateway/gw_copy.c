/*
 * gw_copy.c - CopyObject and UploadPartCopy.
 *
 * The copy reads the source range stripe by stripe and writes it as a new body (inline when it
 * fits the inline threshold), computing the new ETag (MD5) and checksum as it goes. Memory is one
 * stripe. The copy runs on the event loop thread and so holds that loop for its duration; moving
 * long copies to a worker thread belongs with the worker pool of the blobstore issue.
 */
#include "gw_int.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_log.h"
#include "cm_util.h"

#define MOD "gw"

/* The body of a copy: where it went and its digests. */
typedef struct {
    uint8_t *inl; /* inline bytes (heap) when small */
    size_t inl_len;
    md_layout layout;
    int has_layout;
    uint8_t md5[16];
    md_cksum_alg ck_alg;
    char ck_value[72];
} copy_body;

static cm_err read_range(gw *g, const md_object *src, uint64_t off, void *buf, size_t len)
{
    if (src->inline_data) {
        memcpy(buf, src->inline_data + off, len);
        return CM_OK;
    }
    uint64_t start = 0;
    for (size_t i = 0; i < src->nparts && len > 0; i++) {
        const md_part *p = &src->parts[i];
        if (off < start + p->size) {
            uint64_t in = off - start;
            size_t n = (size_t)CM_MIN((uint64_t)len, p->size - in);
            cm_err err = p->inline_data ? (memcpy(buf, p->inline_data + in, n), CM_OK)
                                        : gw_read(g->data, &p->layout, in, buf, n);
            if (err != CM_OK)
                return err;
            buf = (uint8_t *)buf + n;
            off += n;
            len -= n;
        }
        start += p->size;
    }
    return len == 0 ? CM_OK : CM_ERR_CORRUPT;
}

/* Copy [first, first+len) of src into a new body. */
static cm_err copy_data(gw *g, const md_object *src, uint64_t first, uint64_t len, md_cksum_alg alg,
                        copy_body *out)
{
    size_t piece = gw_store_stripe_bytes(g->data);
    uint8_t *buf = NULL;
    gw_writer *w = NULL;
    cm_ck md5 = {0}, ck = {0};
    cm_err err;
    uint8_t d[CM_CK_MAX_DIGEST];

    memset(out, 0, sizeof(*out));
    out->ck_alg = alg == MD_CK_NONE ? MD_CK_CRC64NVME : alg;
    if ((err = cm_ck_init(&md5, CM_CK_MD5)) != CM_OK ||
        (err = cm_ck_init(&ck, gw_cm_alg(out->ck_alg))) != CM_OK)
        goto out;
    if (len <= g->cfg.inline_threshold) {
        if (!(out->inl = malloc(len ? len : 1))) {
            err = CM_ERR_NOMEM;
            goto out;
        }
        if ((err = read_range(g, src, first, out->inl, len)) != CM_OK)
            goto out;
        out->inl_len = len;
        cm_ck_update(&md5, out->inl, len);
        cm_ck_update(&ck, out->inl, len);
    } else {
        if (!(buf = malloc(piece))) {
            err = CM_ERR_NOMEM;
            goto out;
        }
        if ((err = gw_writer_new(g->data, &w)) != CM_OK)
            goto out;
        for (uint64_t done = 0; done < len;) {
            size_t n = (size_t)CM_MIN((uint64_t)piece, len - done);
            if ((err = read_range(g, src, first + done, buf, n)) != CM_OK ||
                (err = gw_writer_write(w, buf, n)) != CM_OK)
                goto out;
            cm_ck_update(&md5, buf, n);
            cm_ck_update(&ck, buf, n);
            done += n;
        }
        err = gw_writer_finish(w, &out->layout);
        w = NULL;
        if (err != CM_OK)
            goto out;
        out->has_layout = 1;
    }
    cm_ck_final(&md5, out->md5);
    cm_ck_final(&ck, d);
    cm_base64_encode(d, cm_ck_len(gw_cm_alg(out->ck_alg)), out->ck_value);
out:
    gw_writer_abort(w);
    cm_ck_release(&md5);
    cm_ck_release(&ck);
    free(buf);
    if (err != CM_OK) {
        free(out->inl);
        out->inl = NULL;
    }
    return err;
}

typedef struct {
    gw_copy_source cs;
    md_object src;
    int have_src; /* src is read and its blobs leased */
    gw *g;
    copy_body body;
} copy_state;

static void copy_state_free(void *p)
{
    copy_state *st = p;
    if (!st)
        return;
    gw_copy_source_release(&st->cs);
    if (st->have_src) {
        gw_lease_release(st->g, &st->src);
        md_object_release(&st->src);
    }
    free(st->body.inl);
    free(st);
}

/* Load and check the source: existence, version, x-amz-copy-source-if-* conditions. */
static gw_s3err load_source(gw_req *r, copy_state *st)
{
    gw_s3err e = gw_copy_source_parse(gw_hdr(r, "x-amz-copy-source"), &st->cs);
    md_bucket b;

    if (e != GW_OK)
        return e;
    cm_err berr = md_bucket_get(r->g->md, st->cs.bucket, &b);
    if (berr != CM_OK)
        return berr == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(berr);
    cm_err err = gw_object_get_leased(r->g, st->cs.bucket, st->cs.key, &st->src);
    if (err == CM_ERR_NOTFOUND)
        return st->cs.version_id ? GW_NO_SUCH_VERSION : GW_NO_SUCH_KEY;
    if (err != CM_OK)
        return gw_s3err_from_cm(err);
    st->have_src = 1;
    st->g = r->g;
    if (st->src.delete_marker)
        return GW_NO_SUCH_KEY;
    if (st->cs.version_id && strcmp(st->cs.version_id, st->src.version_id) != 0)
        return GW_NO_SUCH_VERSION;
    return gw_cond_check(
        gw_hdr(r, "x-amz-copy-source-if-match"), gw_hdr(r, "x-amz-copy-source-if-none-match"),
        gw_hdr(r, "x-amz-copy-source-if-modified-since"),
        gw_hdr(r, "x-amz-copy-source-if-unmodified-since"), st->src.etag, st->src.mtime_ms, 1);
}

/* Headers and metadata of the new object: the source's (COPY) or the request's (REPLACE). */
static gw_s3err copy_headers(gw_req *r, copy_state *st, md_object *o)
{
    const char *dir = gw_hdr(r, "x-amz-metadata-directive");
    int replace = dir && strcasecmp(dir, "REPLACE") == 0;

    if (dir && !replace && strcasecmp(dir, "COPY") != 0)
        return GW_INVALID_ARGUMENT;
    if (!replace && strcmp(st->cs.bucket, r->bucket) == 0 && strcmp(st->cs.key, r->key) == 0)
        return GW_INVALID_REQUEST; /* S3: copying onto itself needs a change */
    if (replace)
        return gw_object_headers_from_request(r, o);
    md_object tmp;
    if (md_object_copy(&st->src, &tmp) != CM_OK)
        return GW_INTERNAL;
    o->content_type = tmp.content_type;
    o->cache_control = tmp.cache_control;
    o->content_disposition = tmp.content_disposition;
    o->content_encoding = tmp.content_encoding;
    o->content_language = tmp.content_language;
    o->expires = tmp.expires;
    o->website_redirect = tmp.website_redirect;
    o->meta = tmp.meta;
    o->nmeta = tmp.nmeta;
    tmp.content_type = tmp.cache_control = tmp.content_disposition = NULL;
    tmp.content_encoding = tmp.content_language = tmp.expires = tmp.website_redirect = NULL;
    tmp.meta = NULL;
    tmp.nmeta = 0;
    md_object_release(&tmp);
    return GW_OK;
}

static void copy_object_commit(gw_req *r, copy_state *st)
{
    md_object o = {0}, old = {0};
    md_part part = {0};
    md_cond cond;
    char etag[64];
    int had_old = 0;
    gw_s3err e = gw_write_cond(r, &cond, etag, sizeof(etag));

    if (e == GW_OK)
        e = copy_headers(r, st, &o);
    if (e != GW_OK) {
        md_object_release(&o);
        gw_error(r, e, NULL);
        return;
    }
    o.key = r->key;
    snprintf(o.version_id, sizeof(o.version_id), "null");
    o.size = st->src.size;
    o.mtime_ms = cm_now_ms();
    cm_hex_encode(st->body.md5, 16, o.etag);
    o.ck_alg = st->body.ck_alg;
    o.ck_type = MD_CKTYPE_FULL_OBJECT;
    snprintf(o.ck_value, sizeof(o.ck_value), "%s", st->body.ck_value);
    if (st->body.has_layout) {
        part.size = o.size;
        part.mtime_ms = o.mtime_ms;
        memcpy(part.etag, o.etag, sizeof(part.etag));
        part.layout = st->body.layout;
        o.parts = &part;
        o.nparts = 1;
    } else {
        o.inline_data = st->body.inl;
        o.inline_len = st->body.inl_len;
    }
    cm_err err =
        md_object_put(r->g->md, r->bucket, &o,
                      cond.if_match || cond.if_none_match_star ? &cond : NULL, &old, &had_old);
    if (err == CM_OK) {
        st->body.has_layout = 0;
        if (had_old) {
            gw_free_object_data(r->g, &old);
            md_object_release(&old);
        }
        struct evbuffer *buf = evbuffer_new();
        gw_xml_copy_result(buf, 0, o.etag, o.mtime_ms, o.ck_alg, o.ck_value);
        gw_resp_xml(r, 200, buf);
        evbuffer_free(buf);
    } else if (err == CM_ERR_NOTFOUND) {
        gw_error(r, cond.if_match ? GW_NO_SUCH_KEY : GW_NO_SUCH_BUCKET, NULL);
    } else {
        gw_error_cm(r, err);
    }
    o.key = NULL;
    o.parts = NULL;
    o.nparts = 0;
    o.inline_data = NULL;
    md_object_release(&o);
}

void gw_op_copy(gw_req *r, int part)
{
    copy_state *st = calloc(1, sizeof(*st));
    uint64_t first = 0, last = 0;
    gw_s3err e;

    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op = st;
    r->op_free = copy_state_free;
    if (!gw_bucket_check(r, r->bucket)) {
        return;
    }
    if ((e = load_source(r, st)) != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    uint64_t len = st->src.size;
    const char *range = part ? gw_hdr(r, "x-amz-copy-source-range") : NULL;
    if (range) {
        if ((e = gw_copy_range_parse(range, st->src.size, &first, &last)) != GW_OK) {
            gw_error(r, e, NULL);
            return;
        }
        len = last - first + 1;
    }
    if (len > r->g->cfg.max_object_size) {
        gw_error(r, GW_INVALID_REQUEST,
                 "The specified copy source is larger than the maximum "
                 "allowable size for a copy source: 5368709120");
        return;
    }
    md_cksum_alg alg =
        st->src.ck_type == MD_CKTYPE_FULL_OBJECT && !range ? st->src.ck_alg : MD_CK_CRC64NVME;
    cm_err err = copy_data(r->g, &st->src, first, len, alg, &st->body);
    if (err != CM_OK) {
        CM_ERROR(MOD, "req=%s copy of %s/%s failed: %s", r->id, st->cs.bucket, st->cs.key,
                 cm_err_str(err));
        gw_error_cm(r, err);
        return;
    }
    if (!part) {
        copy_object_commit(r, st);
    } else {
        md_part p = {0};
        p.size = len;
        p.mtime_ms = cm_now_ms();
        cm_hex_encode(st->body.md5, 16, p.etag);
        p.ck_alg = st->body.ck_alg;
        snprintf(p.ck_value, sizeof(p.ck_value), "%s", st->body.ck_value);
        p.inline_data = st->body.has_layout ? NULL : st->body.inl;
        p.layout = st->body.layout;
        if (gw_part_commit(r, &p) == CM_OK)
            st->body.has_layout = 0;
    }
    if (st->body.has_layout) /* not committed: free the new data */
        gw_delete(r->g->data, &st->body.layout);
}
