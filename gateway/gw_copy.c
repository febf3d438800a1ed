/*
 * gw_copy.c - CopyObject and UploadPartCopy.
 *
 * The copy reads the source range stripe by stripe and writes it as a new body (inline when it
 * fits the inline threshold), computing the new ETag (MD5) and checksum as it goes. Memory is one
 * stripe. Threads: the loop parses the request and looks up and checks the source record
 * (x-amz-copy-source-if-*); copy_work then reads, encodes and writes the body, makes it durable
 * and commits the record on a worker (gw_offload), so a 5 GiB copy holds one worker, never a
 * loop; copy_done answers on the loop. The source's blobs are leased for the copy's duration. A
 * source ?versionId names a version of a versioned bucket (ob_version_get_leased). An encrypted
 * source is decrypted as it is read (its SSE-C key from the copy-source headers); an encrypted
 * target is sealed as it is written (always striped, never inline): gw_sse.c.
 */
#include "gw_int.h"
#include "gw_refuse.h"
#include "gw_sse.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

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
    md_part keyed; /* an encrypted body's sse_seg and wrapped data key */
} copy_body;

/* Encryption of both ends of a copy. */
typedef struct {
    const gw_sse_req *src_key; /* the copy-source customer key headers */
    const md_sse *dst;         /* how the new body is encrypted */
    const gw_sse_req *dst_key; /* the request's customer key headers */
} copy_crypt;

/* Plaintext of an encrypted source part: its data key is unwrapped per call (one per piece). */
static cm_err read_sealed(gw *g, const md_object *src, const gw_sse_req *key, const md_part *p,
                          uint64_t in, void *buf, size_t n)
{
    uint8_t dek[GW_SSE_KEY];
    cm_err err = gw_sse_part_key(g, &src->sse, key, p, dek);
    if (err == CM_OK)
        err = gw_sse_read(g->data, p, dek, in, buf, n, NULL);
    OPENSSL_cleanse(dek, sizeof(dek));
    return err == CM_ERR_AUTH ? CM_ERR_CORRUPT : err;
}

static cm_err read_range(gw *g, const md_object *src, const gw_sse_req *key, uint64_t off,
                         void *buf, size_t len)
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
            cm_err err = p->inline_data   ? (memcpy(buf, p->inline_data + in, n), CM_OK)
                         : p->sse_key_len ? read_sealed(g, src, key, p, in, buf, n)
                                          : ob_read(g->data, &p->layout, in, buf, n);
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

static cm_err emit_write(void *arg, const uint8_t *p, size_t n)
{
    return ob_writer_write(arg, p, n);
}

/* Copy [first, first+len) of src into a new body (encrypted when cc->dst says so: then never
 * inline, so no plaintext reaches a record). pi: an UploadPartCopy's on a cluster node, whose
 * intent names the body before its first cell (NULL: none). */
static cm_err copy_data(gw_req *r, const md_object *src, uint64_t first, uint64_t len,
                        md_cksum_alg alg, const copy_crypt *cc, gw_part_intent *pi, copy_body *out)
{
    gw *g = r->g;
    size_t piece = ob_store_stripe_bytes(g->data);
    uint8_t *buf = NULL;
    ob_writer *w = NULL;
    gw_sse_enc *enc = NULL;
    int sealed = cc->dst->mode != MD_SSE_NONE && len > 0;
    cm_ck md5 = {0}, ck = {0};
    cm_err err;
    uint8_t d[CM_CK_MAX_DIGEST];

    memset(out, 0, sizeof(*out));
    out->ck_alg = alg == MD_CK_NONE ? MD_CK_CRC64NVME : alg;
    if ((err = cm_ck_init(&md5, CM_CK_MD5)) != CM_OK ||
        (err = cm_ck_init(&ck, gw_cm_alg(out->ck_alg))) != CM_OK)
        goto out;
    if (len <= g->cfg.inline_threshold && !sealed) {
        if (!(out->inl = malloc(len ? len : 1))) {
            err = CM_ERR_NOMEM;
            goto out;
        }
        if ((err = read_range(g, src, cc->src_key, first, out->inl, len)) != CM_OK)
            goto out;
        out->inl_len = len;
        cm_ck_update(&md5, out->inl, len);
        cm_ck_update(&ck, out->inl, len);
    } else {
        if (!(buf = malloc(piece))) {
            err = CM_ERR_NOMEM;
            goto out;
        }
        if ((err = ob_writer_new(g->data, &w)) != CM_OK ||
            (pi && (err = gw_part_intent_begin(r, w, pi)) != CM_OK))
            goto out;
        if (sealed) {
            uint8_t dek[GW_SSE_KEY];
            err = gw_sse_part_new_key(g, cc->dst, cc->dst_key, &out->keyed, dek);
            if (err == CM_OK)
                err = gw_sse_enc_new(dek, out->keyed.sse_seg, &enc);
            OPENSSL_cleanse(dek, sizeof(dek));
            if (err != CM_OK)
                goto out;
        }
        for (uint64_t done = 0; done < len;) {
            size_t n = (size_t)CM_MIN((uint64_t)piece, len - done);
            if ((err = read_range(g, src, cc->src_key, first + done, buf, n)) != CM_OK ||
                (err = enc ? gw_sse_enc_update(enc, buf, n, emit_write, w)
                           : ob_writer_write(w, buf, n)) != CM_OK)
                goto out;
            cm_ck_update(&md5, buf, n);
            cm_ck_update(&ck, buf, n);
            done += n;
        }
        if (enc && (err = gw_sse_enc_final(enc, emit_write, w)) != CM_OK)
            goto out;
        err = ob_writer_finish(w, &out->layout);
        w = NULL;
        if (err != CM_OK)
            goto out;
        out->has_layout = 1;
    }
    cm_ck_final(&md5, out->md5);
    cm_ck_final(&ck, d);
    cm_base64_encode(d, cm_ck_len(gw_cm_alg(out->ck_alg)), out->ck_value);
out:
    ob_writer_abort(w);
    gw_sse_enc_free(enc);
    cm_ck_release(&md5);
    cm_ck_release(&ck);
    if (buf) /* it held plaintext of the source */
        OPENSSL_cleanse(buf, piece);
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
    int have_src;                   /* src is read and its blobs leased */
    cm_err src_bucket_err, src_err; /* fetch_source's outcome */
    gw *g;
    copy_body body;
    int part;            /* UploadPartCopy */
    uint64_t first, len; /* source range */
    md_cksum_alg alg;    /* checksum of the new body */
    md_object obj;       /* CopyObject: the record (headers set on the loop, body by the worker) */
    char msg[200];       /* message of prepare_object's error, when it has one */
    md_part obj_part;    /* its body when stored as stripes */
    md_cond cond;
    char etag[64];
    md_part p;          /* UploadPartCopy: the part record */
    gw_sse_req src_key; /* x-amz-copy-source-server-side-encryption-customer-* */
    md_sse dst_sse;     /* how the new body is encrypted */
    cm_err err;         /* result of the worker */
    int copied;         /* the copy itself succeeded (err is then the commit's) */
    md_vres res;        /* CopyObject: the version the commit made */
    gw_part_intent pi;  /* UploadPartCopy on a cluster node: its body's intent */
} copy_state;

static void copy_state_free(void *p)
{
    copy_state *st = p;
    if (!st)
        return;
    gw_copy_source_release(&st->cs);
    gw_part_intent_end(&st->pi);
    OPENSSL_cleanse(&st->src_key, sizeof(st->src_key)); /* the customer's key */
    if (st->have_src) {
        ob_lease_release(st->g->data, &st->src);
        md_object_release(&st->src);
    }
    if (st->body.has_layout) /* copied but never committed: free the new data */
        ob_delete(st->g->data, &st->body.layout);
    free(st->body.inl);
    st->obj.key = NULL; /* borrowed from the request */
    st->obj.parts = NULL;
    st->obj.nparts = 0;
    st->obj.inline_data = NULL;
    md_object_release(&st->obj);
    free(st);
}

/* Worker (cluster node) or loop: read the source's record (st->cs parsed) and lease its blobs. */
static void fetch_source(gw_req *r)
{
    copy_state *st = r->op;
    md_bucket b;
    st->src_bucket_err = md_bucket_get(r->g->md, st->cs.bucket, &b);
    if (st->src_bucket_err == CM_OK)
        st->src_err = st->cs.version_id
                          ? gw_meta_get_version_leased(r->g, st->cs.bucket, st->cs.key,
                                                       st->cs.version_id, &st->src)
                          : gw_meta_get_leased(r->g, st->cs.bucket, st->cs.key, &st->src);
}

/* Check the source read by fetch_source: existence, version, x-amz-copy-source-if-*. */
static gw_s3err check_source(gw_req *r, copy_state *st)
{
    cm_err berr = st->src_bucket_err, err = st->src_err;
    if (berr != CM_OK)
        return berr == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(berr);
    if (err == CM_ERR_NOTFOUND)
        return st->cs.version_id ? GW_NO_SUCH_VERSION : GW_NO_SUCH_KEY;
    if (err != CM_OK)
        return gw_s3err_from_cm(err);
    st->have_src = 1;
    if (st->cs.version_id &&
        strcmp(st->cs.version_id, st->src.version_id[0] ? st->src.version_id : "null") != 0)
        return GW_NO_SUCH_VERSION;
    if (st->src.delete_marker && st->cs.version_id) {
        snprintf(st->msg, sizeof(st->msg),
                 "The source of a copy request may not specifically "
                 "refer to a delete marker by version id.");
        return GW_INVALID_REQUEST;
    }
    if (st->src.delete_marker)
        return GW_NO_SUCH_KEY;
    if (gw_inline_check(r, st->cs.bucket, st->cs.key, &st->src) != GW_OK)
        return GW_INTERNAL; /* never copy bytes that fail their checksum */
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
    const char *sc = gw_hdr(r, "x-amz-storage-class");
    if (!replace && !sc && r->sse->given.mode == MD_SSE_NONE && !st->cs.version_id &&
        strcmp(st->cs.bucket, r->bucket) == 0 && strcmp(st->cs.key, r->key) == 0)
        return GW_INVALID_REQUEST; /* S3: copying onto itself needs a change (encryption is one;
                                    * an older version copied onto its key is a restore) */
    if (replace)
        return gw_object_headers_from_request(r, o);
    /* The class is the request's (STANDARD by default), never the source's: S3's rule; so is
     * the ACL (private unless x-amz-acl says otherwise). */
    gw_storage_class_of(sc, o->storage_class, sizeof(o->storage_class));
    gw_s3err ae = gw_object_acl_from_request(r, o);
    if (ae != GW_OK)
        return ae;
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

/* Worker: CopyObject's commit. */
static void commit_object(gw_req *r, copy_state *st)
{
    md_object *o = &st->obj, old = {0};
    int had_old = 0;
    int conditional = st->cond.if_match || st->cond.if_none_match_star;

    o->size = st->len;
    cm_hex_encode(st->body.md5, 16, o->etag);
    o->ck_alg = st->body.ck_alg;
    o->ck_type = MD_CKTYPE_FULL_OBJECT;
    snprintf(o->ck_value, sizeof(o->ck_value), "%s", st->body.ck_value);
    gw_object_attach_body(o, &st->obj_part, st->body.has_layout ? &st->body.layout : NULL,
                          st->body.inl, st->body.inl_len);
    o->sse = st->dst_sse;
    if (st->body.has_layout && st->dst_sse.mode != MD_SSE_NONE)
        gw_sse_copy_key(&st->body.keyed, &st->obj_part);
    st->err =
        gw_meta_put_v(r->g, r->bucket, o, conditional ? &st->cond : NULL, &old, &had_old, &st->res);
    if (st->err != CM_OK && st->body.has_layout &&
        !ob_commit_failed_may_free(&st->body.layout, st->err))
        st->body.has_layout = 0; /* the record may name it: fsck decides */
    if (st->err != CM_OK)
        return;
    st->body.has_layout = 0;
    if (had_old) {
        ob_free_object_data(r->g->data, &old);
        md_object_release(&old);
    }
}

/* Worker: UploadPartCopy's commit. */
static void commit_part(gw_req *r, copy_state *st)
{
    md_part *p = &st->p;
    uint64_t n = 0;
    gw_parse_count(gw_query_get(&r->q, "partNumber"), 0, GW_MAX_PARTS, &n);
    p->number = (uint32_t)n;
    p->size = st->len;
    p->mtime_ms = cm_now_ms();
    cm_hex_encode(st->body.md5, 16, p->etag);
    p->ck_alg = st->body.ck_alg;
    snprintf(p->ck_value, sizeof(p->ck_value), "%s", st->body.ck_value);
    p->inline_data = st->body.has_layout ? NULL : st->body.inl;
    p->layout = st->body.layout;
    if (st->body.has_layout && st->dst_sse.mode != MD_SSE_NONE)
        gw_sse_copy_key(&st->body.keyed, p);
    st->err = gw_part_intent_record(r, &st->pi, p);
    if (st->err == CM_OK ||
        (st->body.has_layout && !ob_commit_failed_may_free(&st->body.layout, st->err)))
        st->body.has_layout = 0;
}

/* Worker: copy the source range into a new body (blocking reads and fsyncs), then commit. */
static void copy_work(gw_req *r)
{
    copy_state *st = r->op;
    copy_crypt cc = {&st->src_key, &st->dst_sse, &r->sse->given};
    gw_part_intent *pi = st->part && gw_meta_remote(r->g) ? &st->pi : NULL;
    st->err = copy_data(r, &st->src, st->first, st->len, st->alg, &cc, pi, &st->body);
    if (st->err != CM_OK) {
        CM_ERROR(MOD, "req=%s copy of %s/%s failed: %s", r->id, st->cs.bucket, st->cs.key,
                 cm_err_str(st->err));
        return;
    }
    st->copied = 1;
    if (st->part)
        commit_part(r, st);
    else
        commit_object(r, st);
}

static void copy_done(gw_req *r)
{
    copy_state *st = r->op;
    if (st->part) {
        gw_part_reply(r, &st->p, 1, st->err);
        return;
    }
    if (st->err == CM_ERR_NOTFOUND && st->copied) {
        gw_error(r, st->cond.if_match ? GW_NO_SUCH_KEY : GW_NO_SUCH_BUCKET, NULL);
        return;
    }
    if (st->err != CM_OK) {
        gw_error_cm(r, st->err);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    gw_version_answer(r, &st->res);
    if (!buf || gw_xml_copy_result(buf, 0, st->obj.etag, st->obj.mtime_ms, st->obj.ck_alg,
                                   st->obj.ck_value) != CM_OK) {
        gw_error(r, GW_INTERNAL, NULL);
    } else {
        const char *vid = st->src.version_id[0] ? st->src.version_id : "null";
        int named = st->cs.version_id || strcmp(st->src.version_id, "null") != 0;
        gw_sse_resp_xml_copy(r, &st->obj.sse, buf, named ? vid : NULL);
    }
    if (buf)
        evbuffer_free(buf);
}

/* Tags of the new object: the source's (x-amz-tagging-directive COPY, the default) or the
 * request's x-amz-tagging (REPLACE; none when absent). */
static gw_s3err copy_tags(gw_req *r, copy_state *st, md_object *o)
{
    const char *dir = gw_hdr(r, "x-amz-tagging-directive");
    if (dir && strcasecmp(dir, "REPLACE") == 0)
        return gw_object_tags_from_request(r, o, st->msg, sizeof(st->msg));
    if (dir && strcasecmp(dir, "COPY") != 0) {
        snprintf(st->msg, sizeof(st->msg), "Unknown tagging directive.");
        return GW_INVALID_ARGUMENT;
    }
    return gw_tags_copy(st->src.tags, st->src.ntags, &o->tags, &o->ntags);
}

/* Loop: the destination record's headers and condition, read from the request. */
static gw_s3err prepare_object(gw_req *r, copy_state *st)
{
    gw_s3err e = gw_write_cond(r, &st->cond, st->etag, sizeof(st->etag));
    if (e == GW_OK)
        e = copy_headers(r, st, &st->obj);
    if (e == GW_OK)
        e = copy_tags(r, st, &st->obj);
    if (e == GW_OK) /* never the source's retention: the request's or the bucket's default */
        e = gw_lock_from_request(r, &st->obj, 1, st->msg, sizeof(st->msg));
    st->obj.key = r->key;
    snprintf(st->obj.version_id, sizeof(st->obj.version_id), "null");
    st->obj.mtime_ms = cm_now_ms();
    return e;
}

static void copy_source_fetched(gw_req *r);

void gw_op_copy(gw_req *r, int part)
{
    copy_state *st = calloc(1, sizeof(*st));
    gw_s3err e;

    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op = st;
    r->op_free = copy_state_free;
    st->g = r->g;
    st->part = part;
    /* The destination key obeys PutObject's rules (a part's key was checked at its Create). */
    if (!part && (e = gw_key_check(r->key, strlen(r->key))) != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    if (!gw_bucket_check(r, r->bucket))
        return;
    if ((e = gw_copy_source_parse(gw_hdr(r, "x-amz-copy-source"), &st->cs)) != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    if (st->cs.version_id && !md_vid_valid(st->cs.version_id)) {
        gw_error(r, GW_INVALID_ARGUMENT, "Invalid version id specified");
        return;
    }
    /* The target's SSE headers (an UploadPartCopy's were checked against its upload) and the
     * source's customer key. */
    if ((e = gw_sse_request(r, st->msg, sizeof(st->msg))) != GW_OK ||
        (e = gw_sse_parse(r, 1, &st->src_key, st->msg, sizeof(st->msg))) != GW_OK) {
        gw_error(r, e, st->msg);
        return;
    }
    if (st->src_key.mode != MD_SSE_NONE && !gw_sse_served(r->g)) {
        gw_error(r, GW_UNSUPPORTED, GW_SSE_CLUSTER_MSG);
        return;
    }
    if (gw_meta_remote(r->g)) {
        gw_offload(r, fetch_source, copy_source_fetched);
        return;
    }
    fetch_source(r);
    copy_source_fetched(r);
}

/* Loop: the source is read; check it and the request, then copy on a worker. */
static void copy_source_fetched(gw_req *r)
{
    copy_state *st = r->op;
    int part = st->part;
    uint64_t first = 0, last = 0;
    gw_s3err e;

    if ((e = check_source(r, st)) != GW_OK ||
        (e = gw_sse_check(&st->src.sse, &st->src_key, st->msg, sizeof(st->msg))) != GW_OK) {
        gw_error(r, e, st->msg[0] ? st->msg : NULL);
        return;
    }
    if (part)
        st->dst_sse = r->sse->obj; /* the upload's (upload_part) */
    else if (gw_sse_object_init(&r->sse->given, gw_sse_bucket_default(r, NULL), &st->dst_sse) !=
             CM_OK) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    if ((e = gw_sse_usable(r, &st->dst_sse, st->msg, sizeof(st->msg))) != GW_OK) {
        gw_error(r, e, st->msg);
        return;
    }
    st->len = st->src.size;
    const char *range = part ? gw_hdr(r, "x-amz-copy-source-range") : NULL;
    if (range) {
        if ((e = gw_copy_range_parse(range, st->src.size, &first, &last)) != GW_OK) {
            gw_error(r, e, NULL);
            return;
        }
        st->first = first;
        st->len = last - first + 1;
    }
    if (st->len > r->g->cfg.max_object_size) {
        gw_error(r, GW_INVALID_REQUEST,
                 "The specified copy source is larger than the maximum "
                 "allowable size for a copy source: 5368709120");
        return;
    }
    st->alg = st->src.ck_type == MD_CKTYPE_FULL_OBJECT && !range ? st->src.ck_alg : MD_CK_CRC64NVME;
    const char *want_alg = part ? NULL : gw_hdr(r, "x-amz-checksum-algorithm");
    if (want_alg && (st->alg = gw_cksum_parse(want_alg)) == MD_CK_NONE) {
        gw_error(r, GW_INVALID_REQUEST, "Invalid x-amz-checksum-algorithm");
        return;
    }
    if (!part && (e = prepare_object(r, st)) != GW_OK) {
        gw_error(r, e, st->msg[0] ? st->msg : NULL);
        return;
    }
    gw_offload(r, copy_work, copy_done);
}
