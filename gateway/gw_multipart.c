/*
 * gw_multipart.c - multipart uploads: Create, UploadPart (and the commit shared with
 * UploadPartCopy), ListParts, Complete, Abort.
 *
 * Each part is stored like an object body (own stripes and blobs, or inline when small) and
 * recorded under its upload. Complete checks the client's part list against the recorded parts
 * (ETag match, ascending order, every part but the last at least 5 MiB), then one metadata
 * transaction writes the object (which lists the parts it uses) and removes the upload; parts
 * recorded but not used are freed afterwards, as are the parts of an aborted upload.
 *
 * Where work runs: every metadata commit (Create, UploadPart, Complete, Abort) and all of
 * Complete's and Abort's reads run on a worker (gw_offload); the loop only parses headers and
 * answers. What one Complete holds: its XML (at most COMPLETE_XML_CAP, 4 MiB) and parsed list
 * (at most GW_MAX_PARTS entries), the recorded parts listed without their bodies and the kept
 * ones (two arrays of at most 10,000 md_part, about 2 MB each), and the inline body of the last
 * part when it is inline (every other kept part is at least 5 MiB, above the inline threshold):
 * about 9 MB whatever the parts hold, where decoding 10,000 inline parts of 64 KiB whole held
 * 640 MiB. Abort holds the part list without bodies. ListParts lists without bodies too.
 *
 * A Complete retried after it succeeded (its answer was lost) answers 200 with the same ETag:
 * the object record keeps the id of the upload that made it, so while bucket/key still holds
 * that record, a Complete of that upload id whose part list gives the same multipart ETag is
 * answered from it. Once the key is overwritten or deleted the retry answers NoSuchUpload (S3
 * may still answer 200 for a recent completion; cairn keeps no record beyond the object's own).
 *
 * Encryption: CreateMultipartUpload records it in the upload's template (gw_sse.c); every part is
 * sealed under its own data key (so a part uploaded again never reuses a nonce under a key), an
 * SSE-C upload's parts must bring its customer key, and Complete gives the object the template's.
 *
 * Upload ids are 16 hex digits of the creation time in milliseconds followed by 16 random hex
 * digits: unique, unguessable, and sorted by age, which ListMultipartUploads relies on.
 *
 * On a cluster node (gw_meta_remote) the upload and part records are replicated records
 * (repl/rp_upload.h, docs/multipart-cluster.md) instead of the local md_upload_* ones, so any
 * node serves any upload: every call that touches them runs on a worker (ListParts too), an
 * UploadPart checks its upload when it records the part, Complete fetches the kept parts' records,
 * claims the upload (one Complete of several wins; the others answer NoSuchUpload) and ends it
 * after writing the object, and no body is freed here: the replicas turn the unused ones into
 * garbage records, reclaimed after the grace period. An UploadPart (or UploadPartCopy) of a body
 * in cells records an intent in the node's own store before the first cell and drops it once the
 * part record is settled, so the cells of a node killed in between are reclaimed (gw_part_intent_*,
 * docs/multipart-cluster.md "Reclaiming a killed UploadPart").
 */
#include "gw_int.h"
#include "gw_refuse.h"
#include "gw_sse.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_log.h"
#include "cm_util.h"
#include "rp_upload.h"

#define MOD "gw"
#define MIN_PART_SIZE (5ULL << 20)
#define MAX_PART_SIZE (5ULL << 30)
#define COMPLETE_XML_CAP (4u << 20)

/* ---- Create ---- */

typedef struct {
    md_upload up; /* key borrowed from the request */
    cm_err err;   /* result of the commit (worker) */
} create_state;

static void create_state_free(void *p)
{
    create_state *st = p;
    if (!st)
        return;
    st->up.key = NULL;
    md_upload_release(&st->up);
    free(st);
}

/* Worker: commit the new upload record. */
static void create_work(gw_req *r)
{
    create_state *st = r->op;
    st->up.key = r->key;
    st->err = gw_meta_remote(r->g) ? rp_upload_create(r->g->rp, r->bucket, &st->up)
                                   : md_upload_create(r->g->md, r->bucket, &st->up);
}

static void create_done(gw_req *r);

static void create_upload(gw_req *r)
{
    md_upload up = {0};
    uint8_t idb[16];
    gw_s3err e;

    if ((e = gw_key_check(r->key, strlen(r->key))) != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    md_bucket bkt;
    if (!gw_bucket_fetch(r, r->bucket, &bkt)) {
        return;
    }
    const char *alg = gw_hdr(r, "x-amz-checksum-algorithm");
    const char *type = gw_hdr(r, "x-amz-checksum-type");
    if (alg && (up.tmpl.ck_alg = gw_cksum_parse(alg)) == MD_CK_NONE) {
        gw_error(r, GW_INVALID_REQUEST, "Invalid x-amz-checksum-algorithm");
        return;
    }
    up.tmpl.ck_type =
        up.tmpl.ck_alg == MD_CK_CRC64NVME ? MD_CKTYPE_FULL_OBJECT : MD_CKTYPE_COMPOSITE;
    if (type) {
        if (strcasecmp(type, "COMPOSITE") == 0 && up.tmpl.ck_alg != MD_CK_CRC64NVME)
            up.tmpl.ck_type = MD_CKTYPE_COMPOSITE;
        else if (strcasecmp(type, "FULL_OBJECT") == 0 && up.tmpl.ck_alg != MD_CK_SHA1 &&
                 up.tmpl.ck_alg != MD_CK_SHA256 && up.tmpl.ck_alg != MD_CK_NONE)
            up.tmpl.ck_type = MD_CKTYPE_FULL_OBJECT;
        else {
            gw_error(r, GW_INVALID_REQUEST, "The checksum type is not valid for the algorithm");
            return;
        }
    }
    char msg[200] = "";
    if ((e = gw_object_headers_from_request(r, &up.tmpl)) != GW_OK ||
        (e = gw_object_tags_from_request(r, &up.tmpl, msg, sizeof(msg))) != GW_OK ||
        (e = gw_lock_from_request(r, &up.tmpl, 0, msg, sizeof(msg))) != GW_OK) {
        md_upload_release(&up);
        gw_error(r, e, msg); /* the tags are the object's, applied by Complete */
        return;
    }
    /* The upload's encryption, which every part follows (gw_sse.h: a data key per part). */
    if ((e = gw_sse_request(r, msg, sizeof(msg))) != GW_OK ||
        gw_sse_object_init(&r->sse->given, gw_sse_bucket_default(r, &bkt), &up.tmpl.sse) != CM_OK ||
        (e = gw_sse_usable(r, &up.tmpl.sse, msg, sizeof(msg))) != GW_OK) {
        md_upload_release(&up);
        gw_error(r, e != GW_OK ? e : GW_INTERNAL, msg);
        return;
    }
    cm_put_be64(idb, (uint64_t)cm_now_ms());
    cm_random(idb + 8, 8);
    cm_hex_encode(idb, 16, up.upload_id);
    up.initiated_ms = cm_now_ms();
    snprintf(up.owner, sizeof(up.owner), "%s", r->auth.access_key);
    create_state *st = calloc(1, sizeof(*st));
    if (!st) {
        md_upload_release(&up);
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    st->up = up;
    r->op = st;
    r->op_free = create_state_free;
    gw_offload(r, create_work, create_done);
}

static void create_done(gw_req *r)
{
    create_state *st = r->op;
    md_upload up = st->up;
    if (st->err != CM_OK) {
        /* CM_ERR_INVAL on a cluster node: no upload record key for the key (every key up to
         * MD_MAX_KEY has one, the long form, md_mpkey.c) */
        gw_error(r,
                 st->err == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET
                 : st->err == CM_ERR_INVAL  ? GW_KEY_TOO_LONG
                                            : gw_s3err_from_cm(st->err),
                 NULL);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    gw_xml_initiate(buf, r->bucket, r->key, up.upload_id);
    gw_resp_start(r, 200, (int64_t)evbuffer_get_length(buf));
    net_resp_header(r->net, "Content-Type", "application/xml");
    if (r->sse)
        gw_sse_headers(r, &up.tmpl.sse, &r->sse->given);
    if (up.tmpl.ck_alg != MD_CK_NONE) {
        net_resp_header(r->net, "x-amz-checksum-algorithm", gw_cksum_name(up.tmpl.ck_alg));
        net_resp_header(r->net, "x-amz-checksum-type",
                        up.tmpl.ck_type == MD_CKTYPE_COMPOSITE ? "COMPOSITE" : "FULL_OBJECT");
    }
    net_resp_write_buffer(r->net, buf);
    net_resp_end(r->net);
    evbuffer_free(buf);
}

/* ---- UploadPart / UploadPartCopy ---- */

typedef struct {
    uint32_t number;
    md_upload up;
    md_part part;      /* the part being recorded; inline data borrowed from the request */
    cm_err err;        /* result of the commit (worker) */
    gw_part_intent pi; /* a cluster node's, for a body in cells */
} part_state;

static void part_state_free(void *p)
{
    part_state *ps = p;
    if (!ps)
        return;
    gw_part_intent_end(&ps->pi);
    md_upload_release(&ps->up);
    free(ps);
}

cm_err gw_part_record(gw_req *r, md_part *p)
{
    md_part old = {0};
    int had_old = 0;
    if (gw_meta_remote(r->g)) /* an older part of the number is freed by Complete or Abort */
        return rp_part_put(r->g->rp, r->bucket, r->key, gw_query_get(&r->q, "uploadId"), p);
    cm_err err = md_part_put(r->g->md, r->bucket, r->key, gw_query_get(&r->q, "uploadId"), p, &old,
                             &had_old);
    if (err == CM_OK && had_old) {
        if (!MD_PART_INLINE(&old))
            ob_delete(r->g->data, &old.layout);
        md_part_release(&old);
    }
    return err;
}

void gw_part_reply(gw_req *r, const md_part *p, int is_copy, cm_err err)
{
    if (err != CM_OK) {
        gw_error(r, err == CM_ERR_NOTFOUND ? GW_NO_SUCH_UPLOAD : gw_s3err_from_cm(err), NULL);
        return;
    }
    const md_sse *sse = r->sse ? &r->sse->obj : NULL;
    if (is_copy) {
        struct evbuffer *buf = evbuffer_new();
        gw_xml_copy_result(buf, 1, p->etag, p->mtime_ms, p->ck_alg, p->ck_value);
        gw_sse_resp_xml(r, sse, buf);
        evbuffer_free(buf);
        return;
    }
    char q[48];
    snprintf(q, sizeof(q), "\"%s\"", p->etag);
    gw_resp_start(r, 200, 0);
    net_resp_header(r->net, "ETag", q);
    if (p->ck_alg != MD_CK_NONE) {
        char name[40];
        gw_ck_header_name(p->ck_alg, name, sizeof(name));
        net_resp_header(r->net, name, p->ck_value);
    }
    if (sse)
        gw_sse_headers(r, sse, &r->sse->given);
    net_resp_end(r->net);
}

/* Worker: make the part's data durable and record it. */
static void part_work(gw_req *r)
{
    part_state *ps = r->op;
    if ((ps->err = gw_body_seal(r)) != CM_OK)
        return;
    if (r->has_layout) {
        ps->part.layout = r->layout;
        gw_sse_attach(r, &ps->part);
    } else {
        ps->part.inline_data = r->inl;
    }
    ps->err = gw_part_intent_record(r, &ps->pi, &ps->part);
    if (ps->err == CM_OK || (r->has_layout && !ob_commit_failed_may_free(&r->layout, ps->err)))
        r->has_layout = 0;
}

static void part_done(gw_req *r)
{
    part_state *ps = r->op;
    gw_part_reply(r, &ps->part, 0, ps->err);
}

static void part_finish(gw_req *r)
{
    part_state *ps = r->op;
    md_part *p = &ps->part;
    p->number = ps->number;
    p->size = r->body_len;
    p->mtime_ms = cm_now_ms();
    cm_hex_encode(r->md5_digest, 16, p->etag);
    p->ck_alg = gw_md_alg(r->ck_alg);
    snprintf(p->ck_value, sizeof(p->ck_value), "%s", r->ck_value);
    gw_offload(r, part_work, part_done);
}

static void part_upload_read(gw_req *r);
static void part_upload_start(gw_req *r);

static void upload_part(gw_req *r, const char *upload_id)
{
    part_state *ps = calloc(1, sizeof(*ps));
    uint64_t n;

    if (!ps) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op = ps;
    r->op_free = part_state_free;
    if (gw_parse_count(gw_query_get(&r->q, "partNumber"), 0, 100000, &n) != GW_OK || n < 1 ||
        n > GW_MAX_PARTS) {
        gw_error(r, GW_INVALID_ARGUMENT, "Part number must be an integer between 1 and 10000");
        return;
    }
    ps->number = (uint32_t)n;
    /* A cluster node reads the upload with a quorum read on a worker (its encryption decides how
     * the body is stored), and checks it again when it records the part. */
    if (gw_meta_remote(r->g)) {
        if (!md_mpu_id_valid(upload_id)) {
            gw_error(r, GW_NO_SUCH_UPLOAD, NULL);
            return;
        }
        gw_offload(r, part_upload_read, part_upload_start);
        return;
    }
    ps->err = md_upload_get(r->g->md, r->bucket, r->key, upload_id, &ps->up);
    part_upload_start(r);
}

/* Whether the part's body goes into cells rather than inline into its record: what data_sink
 * decides from the announced length (unknown: cells), and every encrypted part. */
static int part_takes_cells(gw_req *r, const md_upload *up)
{
    int64_t len = net_req_content_length(r->net);
    if (!gw_hdr(r, "content-length") && !net_req_chunked(r->net))
        return 0; /* refused before any byte (gw_body_to_data): no body, no intent */
    if (up->tmpl.sse.mode != MD_SSE_NONE)
        return 1;
    if (r->auth.mode == GW_PAYLOAD_STREAMING_SIGNED ||
        r->auth.mode == GW_PAYLOAD_STREAMING_SIGNED_TRAILER ||
        r->auth.mode == GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER) {
        const char *dcl = gw_hdr(r, "x-amz-decoded-content-length");
        char *end = NULL;
        len = dcl ? strtoll(dcl, &end, 10) : -1;
        if (!dcl || *end || end == dcl)
            len = -1;
    }
    return len < 0 || (uint64_t)len > r->g->cfg.inline_threshold;
}

/* ---- Intents: what a killed UploadPart leaves, reclaimed (cluster nodes) ---- */

/*
 * Before the first cell of a part's body, an intent in this node's store names the body (the
 * blob and cells w placed) and the part record it is to get (docs/multipart-cluster.md,
 * "Reclaiming a killed UploadPart"): a node that dies before the record lands leaves the intent,
 * which its maintenance decides after a restart, and so does a request that ends unsettled
 * (gw_part_intent_end releases it).
 */
cm_err gw_part_intent_begin(gw_req *r, ob_writer *w, gw_part_intent *pi)
{
    md_intent *in = &pi->in;
    uint64_t number = 0;
    cm_err err;
    memset(pi, 0, sizeof(*pi));
    if (gw_parse_count(gw_query_get(&r->q, "partNumber"), 0, GW_MAX_PARTS, &number) != GW_OK)
        return CM_ERR_INVAL; /* checked by the caller already */
    ob_writer_plan(w, &in->layout);
    if ((err = cm_random(&in->id, sizeof(in->id))) != CM_OK)
        return err;
    in->hlc = MD_HLC_MAKE(cm_now_ms(), 0);
    in->bucket = (char *)r->bucket; /* borrowed: every write of the intent encodes them at once */
    in->key = (char *)r->key;
    snprintf(in->upload_id, sizeof(in->upload_id), "%s", gw_query_get(&r->q, "uploadId"));
    in->number = (uint32_t)number;
    pi->md = r->g->md;
    if ((err = md_intent_put(pi->md, in)) == CM_OK) {
        pi->held = 1;
        ob_writer_track_intent(w, pi->md, in->hlc); /* a handed-off cell moves it */
    }
    return err;
}

cm_err gw_part_intent_record(gw_req *r, gw_part_intent *pi, md_part *p)
{
    int settled = 0;
    /* A body in cells is the intent's (its blob); one inline in the record needs none. */
    if (!pi->held || MD_PART_INLINE(p) ||
        memcmp(p->layout.blob, pi->in.layout.blob, sizeof(p->layout.blob)) != 0)
        return gw_part_record(r, p);
    cm_err err =
        rp_part_put_id(r->g->rp, r->bucket, r->key, pi->in.upload_id, pi->in.id, p, &settled);
    if (settled && md_intent_drop(pi->md, &pi->in) == CM_OK)
        pi->held = 0;
    return err;
}

void gw_part_intent_end(gw_part_intent *pi)
{
    /* Its maintenance decides it (a record names the body, or the body is freed). */
    if (pi->held && md_intent_release_async(pi->md, &pi->in) != CM_OK)
        CM_WARN(MOD,
                "the intent of part %u of upload %s was not released (decided after a restart)",
                pi->in.number, pi->in.upload_id);
    pi->held = 0;
}

/* Worker, cluster node: the body's writer made now, so its intent can name it. */
static cm_err part_intent_begin(gw_req *r, part_state *ps)
{
    cm_err err = ob_writer_new(r->g->data, &r->writer);
    return err == CM_OK ? gw_part_intent_begin(r, r->writer, &ps->pi) : err;
}

/* Worker: a cluster node's quorum read of the upload, then the intent of a body in cells. */
static void part_upload_read(gw_req *r)
{
    part_state *ps = r->op;
    ps->err = rp_upload_get(r->g->rp, r->bucket, r->key, gw_query_get(&r->q, "uploadId"), &ps->up);
    if (ps->err == CM_OK && !gw_hdr(r, "x-amz-copy-source") && part_takes_cells(r, &ps->up))
        ps->err = part_intent_begin(r, ps);
}

/* Loop: the upload is read (ps->err); check the request against it and take the body. */
static void part_upload_start(gw_req *r)
{
    part_state *ps = r->op;
    cm_err err = ps->err;
    if (err != CM_OK) {
        gw_error(r, err == CM_ERR_NOTFOUND ? GW_NO_SUCH_UPLOAD : gw_s3err_from_cm(err), NULL);
        return;
    }
    /* The part is encrypted as its upload; an SSE-C upload's parts need its customer key. */
    char msg[200] = "";
    gw_s3err e = gw_sse_request(r, msg, sizeof(msg));
    if (e == GW_OK)
        e = gw_sse_check(&ps->up.tmpl.sse, &r->sse->given, msg, sizeof(msg));
    if (e != GW_OK) {
        gw_error(r, e, msg);
        return;
    }
    r->sse->obj = ps->up.tmpl.sse;
    if (gw_hdr(r, "x-amz-copy-source")) {
        part_state_free(ps); /* the copy keeps its own state */
        r->op = NULL;
        r->op_free = NULL;
        gw_op_copy(r, 1);
        return;
    }
    if ((err = gw_sse_begin_body(r, &ps->up.tmpl.sse)) != CM_OK) {
        gw_error_cm(r, err);
        return;
    }
    /* The writer made for the intent, fed from this loop as data_sink's own would be (an
     * encrypted body's is fed as gw_sse.c feeds it). */
    if (r->writer && !r->sse->enc &&
        (err = ob_writer_offload(r->writer, net_req_base(r->net), gw_pool_job, r->g->pool)) !=
            CM_OK) {
        gw_error_cm(r, err);
        return;
    }
    gw_body_to_data(r, MAX_PART_SIZE, part_finish);
}

/* ---- ListParts ---- */

typedef struct {
    md_upload up;
    md_part *parts;
    size_t n;
    int truncated;
    uint64_t max, marker;
    cm_err err;
} list_parts_state;

static void list_parts_state_free(void *p)
{
    list_parts_state *st = p;
    if (!st)
        return;
    md_upload_release(&st->up);
    md_parts_free(st->parts, st->n);
    free(st);
}

/* The upload and its parts, from the local store or the replicated metadata (no bodies). */
static cm_err parts_read(gw_req *r, uint32_t after, size_t max, md_upload *up, md_part **parts,
                         size_t *n, int *truncated, uint64_t **ids)
{
    const char *id = gw_query_get(&r->q, "uploadId");
    cm_err err;
    if (gw_meta_remote(r->g)) {
        err = rp_upload_get(r->g->rp, r->bucket, r->key, id, up);
        if (err == CM_OK)
            err =
                rp_part_list(r->g->rp, r->bucket, r->key, id, after, max, parts, n, truncated, ids);
        return err;
    }
    err = md_upload_get(r->g->md, r->bucket, r->key, id, up);
    if (err == CM_OK)
        err = md_part_list(r->g->md, id, after, max, parts, n, truncated);
    return err;
}

/* Worker on a cluster node (quorum reads), the loop on a single node. */
static void list_parts_work(gw_req *r)
{
    list_parts_state *st = r->op;
    st->err = parts_read(r, (uint32_t)st->marker, st->max, &st->up, &st->parts, &st->n,
                         &st->truncated, NULL);
}

static void list_parts_done(gw_req *r)
{
    list_parts_state *st = r->op;
    if (st->err != CM_OK) {
        gw_error(r, st->err == CM_ERR_NOTFOUND ? GW_NO_SUCH_UPLOAD : gw_s3err_from_cm(st->err),
                 NULL);
        return;
    }
    gw_parts_params pp = {.bucket = r->bucket,
                          .key = r->key,
                          .upload_id = gw_query_get(&r->q, "uploadId"),
                          .part_number_marker = (uint32_t)st->marker,
                          .max_parts = st->max,
                          .owner_id = st->up.owner,
                          .ck_alg = st->up.tmpl.ck_alg,
                          .storage_class = st->up.tmpl.storage_class};
    struct evbuffer *buf = evbuffer_new();
    gw_xml_list_parts(buf, &pp, st->parts, st->n, st->truncated);
    gw_resp_xml(r, 200, buf);
    evbuffer_free(buf);
}

static void list_parts(gw_req *r)
{
    uint64_t max, marker;

    if (gw_parse_count(gw_query_get(&r->q, "max-parts"), 1000, 1000, &max) != GW_OK ||
        gw_parse_count(gw_query_get(&r->q, "part-number-marker"), 0, GW_MAX_PARTS, &marker) !=
            GW_OK) {
        gw_error(r, GW_INVALID_ARGUMENT, NULL);
        return;
    }
    list_parts_state *st = calloc(1, sizeof(*st));
    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    st->max = max, st->marker = marker;
    r->op = st;
    r->op_free = list_parts_state_free;
    if (gw_meta_remote(r->g)) {
        gw_offload(r, list_parts_work, list_parts_done);
        return;
    }
    list_parts_work(r);
    list_parts_done(r);
}

/* ---- Complete ---- */

typedef struct {
    md_upload up;
    md_part *have; /* every recorded part, by number, without inline bodies */
    size_t nhave;
    uint64_t *have_ids; /* cluster node: the record id of each of have[] (rp_part_list) */
    md_part *use;       /* the parts the object keeps, in order (shallow copies of have[]) */
    size_t nuse;
    md_object obj; /* the record to commit: borrows from up.tmpl, use[] and the request */
    md_cond cond;
    char etag_buf[64];
    gw_complete_hdrs expect; /* x-amz-mp-object-size, x-amz-checksum-*, copied for the worker */
    char msg[200];           /* the message of s3err, when it has one */
    gw_s3err s3err;          /* the client's list or expectations were refused (worker) */
    cm_err err;              /* result of the commit (worker) */
    md_vres res;             /* the version the commit made */
} complete_state;

static void complete_state_free(void *p)
{
    complete_state *cs = p;
    if (!cs)
        return;
    md_upload_release(&cs->up);
    md_parts_free(cs->have, cs->nhave);
    free(cs->have_ids);
    free(cs->use);
    gw_complete_hdrs_release(&cs->expect);
    free(cs);
}

static const md_part *find_part(const complete_state *cs, uint32_t number)
{
    size_t lo = 0, hi = cs->nhave;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cs->have[mid].number < number)
            lo = mid + 1;
        else if (cs->have[mid].number > number)
            hi = mid;
        else
            return &cs->have[mid];
    }
    return NULL;
}

/* Match the client's list against the recorded parts; fills cs->use. */
static gw_s3err select_parts(complete_state *cs, const gw_complete_req *req)
{
    if (!(cs->use = calloc(req->n, sizeof(md_part))))
        return GW_INTERNAL;
    for (size_t i = 0; i < req->n; i++) {
        const md_part *p = find_part(cs, req->parts[i].number);
        if (!p || strcasecmp(p->etag, req->parts[i].etag) != 0)
            return GW_INVALID_PART;
        if (req->parts[i].ck_alg != MD_CK_NONE && req->parts[i].ck_alg == p->ck_alg &&
            strcmp(req->parts[i].ck_value, p->ck_value) != 0)
            return GW_INVALID_PART;
        if (i + 1 < req->n && p->size < MIN_PART_SIZE)
            return GW_ENTITY_TOO_SMALL;
        cs->use[cs->nuse++] = *p;
    }
    return GW_OK;
}

/* ETag of a multipart object: MD5 of the parts' binary MD5s, then "-N". */
static void multipart_etag(const char *const *etags, size_t n, char *out, size_t cap)
{
    cm_ck ck;
    uint8_t d[16], bin[16];
    char hex[33];
    cm_ck_init(&ck, CM_CK_MD5);
    for (size_t i = 0; i < n; i++) {
        memset(bin, 0, sizeof(bin));
        cm_hex_decode(etags[i], 32, bin, 16);
        cm_ck_update(&ck, bin, 16);
    }
    cm_ck_final(&ck, d);
    cm_hex_encode(d, 16, hex);
    snprintf(out, cap, "%s-%zu", hex, n);
}

/* The multipart ETag of the client's list (a retried Complete is matched by it). */
static gw_s3err request_etag(const gw_complete_req *req, char *out, size_t cap)
{
    const char **etags = calloc(req->n, sizeof(*etags));
    if (!etags)
        return GW_INTERNAL;
    for (size_t i = 0; i < req->n; i++)
        etags[i] = strlen(req->parts[i].etag) == 32 ? req->parts[i].etag : "";
    multipart_etag(etags, req->n, out, cap);
    free(etags);
    return GW_OK;
}

/* A part's stored CRC (base64 of the big-endian value) as an integer; -1 when unusable. */
static int part_crc(const md_part *p, md_cksum_alg alg, uint64_t *out)
{
    uint8_t d[8];
    size_t n = 0;
    if (p->ck_alg != alg ||
        cm_base64_decode(p->ck_value, strlen(p->ck_value), d, sizeof(d), &n) != CM_OK ||
        n != cm_ck_len(gw_cm_alg(alg)))
        return -1;
    *out = n == 8 ? cm_get_be64(d) : cm_get_be32(d);
    return 0;
}

/* FULL_OBJECT: the CRC of the whole object, combined from the parts' CRCs. */
static int full_object_crc(const complete_state *cs, md_cksum_alg alg, md_object *o)
{
    uint64_t crc = 0, part;
    uint8_t d[8];
    for (size_t i = 0; i < cs->nuse; i++) {
        if (part_crc(&cs->use[i], alg, &part) != 0)
            return -1;
        if (i == 0)
            crc = part;
        else if (alg == MD_CK_CRC32)
            crc = cm_crc32_combine((uint32_t)crc, (uint32_t)part, cs->use[i].size);
        else if (alg == MD_CK_CRC32C)
            crc = cm_crc32c_combine((uint32_t)crc, (uint32_t)part, cs->use[i].size);
        else
            crc = cm_crc64nvme_combine(crc, part, cs->use[i].size);
    }
    if (alg == MD_CK_CRC64NVME)
        cm_put_be64(d, crc);
    else
        cm_put_be32(d, (uint32_t)crc);
    cm_base64_encode(d, cm_ck_len(gw_cm_alg(alg)), o->ck_value);
    o->ck_alg = alg;
    o->ck_type = MD_CKTYPE_FULL_OBJECT;
    return 0;
}

/* COMPOSITE: the algorithm over the concatenated part digests, then "-N". */
static int composite_checksum(const complete_state *cs, md_cksum_alg alg, md_object *o)
{
    cm_ck ck;
    uint8_t d[CM_CK_MAX_DIGEST], part[CM_CK_MAX_DIGEST];
    size_t n;
    char b64[64];

    if (cm_ck_init(&ck, gw_cm_alg(alg)) != CM_OK)
        return -1;
    for (size_t i = 0; i < cs->nuse; i++) {
        const char *v = cs->use[i].ck_value;
        if (cs->use[i].ck_alg != alg ||
            cm_base64_decode(v, strlen(v), part, sizeof(part), &n) != CM_OK) {
            cm_ck_release(&ck);
            return -1;
        }
        cm_ck_update(&ck, part, n);
    }
    cm_ck_final(&ck, d);
    cm_base64_encode(d, cm_ck_len(gw_cm_alg(alg)), b64);
    snprintf(o->ck_value, sizeof(o->ck_value), "%s-%zu", b64, cs->nuse);
    o->ck_alg = alg;
    o->ck_type = MD_CKTYPE_COMPOSITE;
    return 0;
}

/*
 * The object's checksum: the one the upload asked for, or (as S3 does for every new object) a
 * FULL_OBJECT CRC64NVME when the parts carry one. Without usable part checksums the object has
 * none; the parts' own checksums were verified as they arrived.
 */
static void object_checksum(const complete_state *cs, md_object *o)
{
    md_cksum_alg alg = cs->up.tmpl.ck_alg;
    o->ck_alg = MD_CK_NONE;
    if (alg == MD_CK_NONE)
        full_object_crc(cs, MD_CK_CRC64NVME, o);
    else if (cs->up.tmpl.ck_type == MD_CKTYPE_COMPOSITE)
        composite_checksum(cs, alg, o);
    else
        full_object_crc(cs, alg, o);
}

/*
 * Worker, cluster node: every record is in the replicated metadata (rp_upload.h). Fetch the
 * kept parts' whole records (layouts, and the body of an inline last part), store the object
 * record, then end the upload: its record and every part record get a tombstone, the kept parts'
 * naming their bodies, which the object owns from then on; the others' bodies become garbage on
 * each replica. A failed object write leaves the upload as it was, so the client can retry; a
 * failure after it leaves the upload listed (a retried Complete or an Abort ends it, and Abort
 * spares the bodies this object uses).
 */
static cm_err complete_replicated(gw_req *r, complete_state *cs, int conditional)
{
    const char *upload_id = gw_query_get(&r->q, "uploadId");
    md_part *full = calloc(cs->nuse ? cs->nuse : 1, sizeof(*full));
    uint64_t *ids = calloc(cs->nuse ? cs->nuse : 1, sizeof(*ids));
    md_object old = {0};
    int had_old = 0;
    size_t nfull = 0;
    cm_err err = full && ids ? CM_OK : CM_ERR_NOMEM;
    for (; err == CM_OK && nfull < cs->nuse; nfull++) {
        ids[nfull] = cs->have_ids[find_part(cs, cs->use[nfull].number) - cs->have];
        err = rp_part_fetch(r->g->rp, r->bucket, r->key, upload_id, cs->use[nfull].number,
                            ids[nfull], &full[nfull]);
        if (err != CM_OK)
            break;
    }
    if (err == CM_ERR_CONFLICT) { /* a kept part's record is gone: was the upload ended? */
        md_upload up;
        if (rp_upload_get(r->g->rp, r->bucket, r->key, upload_id, &up) == CM_ERR_NOTFOUND)
            err = CM_ERR_NOTFOUND;
        md_upload_release(&up);
    }
    /* One claim wins: a concurrent Complete of other parts, or an Abort, answers NoSuchUpload
     * before writing anything (rp_upload_claim). */
    int64_t claimed_at = cm_monotonic_ms(); /* never a wall clock: rp_upload.h */
    if (err == CM_OK)
        err = rp_upload_claim(r->g->rp, r->bucket, r->key, upload_id, full, ids, cs->nuse);
    if (err == CM_OK && cm_monotonic_ms() - claimed_at >= RP_CLAIM_WRITE_MS)
        err = CM_ERR_UNAVAILABLE; /* an Abort may take the claim over soon: no object */
    if (err == CM_OK) {
        md_object obj = cs->obj; /* shallow: the fetched parts instead of the listed ones */
        obj.parts = full;
        snprintf(obj.upload_id, sizeof(obj.upload_id), "%s", upload_id);
        err = gw_meta_put_v(r->g, r->bucket, &obj, conditional ? &cs->cond : NULL, &old, &had_old,
                            &cs->res);
        /* Refused for certain (the client's If-Match / If-None-Match): the upload is open
         * again. After any other failure the object may yet be there: the claim stays for the
         * client's retry of this Complete (or an Abort once it is stale). */
        if (err == CM_ERR_PRECONDITION || err == CM_ERR_NOTFOUND)
            rp_upload_unclaim(r->g->rp, r->bucket, r->key, upload_id, full, ids, cs->nuse);
    }
    if (err == CM_OK)
        err = rp_upload_end(r->g->rp, r->bucket, r->key, upload_id, full, ids, cs->nuse);
    md_parts_free(full, nfull);
    free(ids);
    return err;
}

/* Worker: commit the object and drop the upload; free the parts it does not use. */
static void complete_commit(gw_req *r)
{
    complete_state *cs = r->op;
    md_object old = {0};
    md_part *gone = NULL;
    size_t ngone = 0;
    int had_old = 0;
    int conditional = cs->cond.if_match || cs->cond.if_none_match_star;

    cs->err = gw_meta_remote(r->g)
                  ? complete_replicated(r, cs, conditional)
                  : md_upload_complete_v(r->g->md, r->bucket, gw_query_get(&r->q, "uploadId"),
                                         &cs->obj, conditional ? &cs->cond : NULL, &gone, &ngone,
                                         &old, &had_old, &cs->res);
    if (cs->err != CM_OK)
        return;
    for (size_t i = 0; i < ngone; i++) {
        int used = 0;
        for (size_t j = 0; j < cs->nuse && !used; j++)
            used = cs->use[j].number == gone[i].number &&
                   memcmp(cs->use[j].layout.blob, gone[i].layout.blob, 16) == 0;
        if (!used && !MD_PART_INLINE(&gone[i]))
            ob_delete(r->g->data, &gone[i].layout);
    }
    md_parts_free(gone, ngone);
    if (had_old) {
        ob_free_object_data(r->g->data, &old);
        md_object_release(&old);
    }
}

/*
 * The upload is gone: if bucket/key still holds the object this upload made, and the client's
 * list gives its ETag, this is a retry of a Complete that succeeded (its answer was lost): answer
 * it the same way. 1 when it is (cs->obj carries the answer).
 */
static int completed_before(gw_req *r, complete_state *cs, const gw_complete_req *req)
{
    md_object cur;
    char etag[64];
    int same = 0;
    if (request_etag(req, etag, sizeof(etag)) != GW_OK ||
        gw_meta_get(r->g, r->bucket, r->key, &cur) != CM_OK)
        return 0;
    same = !cur.delete_marker && strcmp(cur.upload_id, gw_query_get(&r->q, "uploadId")) == 0 &&
           strcmp(cur.etag, etag) == 0;
    if (same) {
        memcpy(cs->obj.etag, cur.etag, sizeof(cs->obj.etag));
        cs->obj.ck_alg = cur.ck_alg;
        cs->obj.ck_type = cur.ck_type;
        memcpy(cs->obj.ck_value, cur.ck_value, sizeof(cs->obj.ck_value));
        if (strcmp(cur.version_id, "null") != 0 && cur.version_id[0]) { /* a versioned bucket */
            cs->res.versioned = 1;
            snprintf(cs->res.version_id, sizeof(cs->res.version_id), "%.*s", MD_VID_LEN,
                     cur.version_id);
        }
    }
    md_object_release(&cur);
    return same;
}

/* Build the object record from the upload's template and the chosen parts. */
static void complete_build(gw_req *r, complete_state *cs)
{
    /* The object takes its headers from the upload (shallow copy: the upload owns them) and its
     * body from the chosen parts. */
    md_object *o = &cs->obj;
    const char **etags = calloc(cs->nuse ? cs->nuse : 1, sizeof(*etags));
    *o = cs->up.tmpl;
    o->key = r->key;
    snprintf(o->version_id, sizeof(o->version_id), "null");
    o->mtime_ms = cm_now_ms();
    o->parts = cs->use;
    o->nparts = cs->nuse;
    o->size = 0;
    for (size_t i = 0; i < cs->nuse; i++) {
        o->size += cs->use[i].size;
        if (etags)
            etags[i] = cs->use[i].etag;
    }
    if (etags)
        multipart_etag(etags, cs->nuse, o->etag, sizeof(o->etag));
    else
        cs->s3err = GW_INTERNAL;
    free(etags);
    object_checksum(cs, o);
    if (!o->lock_mode) /* the bucket's default retention counts from the object's creation */
        gw_lock_default(r, o);
}

/* Worker: read the upload and its parts (no bodies), check the client's list, commit. */
static void complete_work(gw_req *r)
{
    complete_state *cs = r->op;
    gw_complete_req req = {0};
    int truncated = 0;
    size_t len = evbuffer_get_length(r->mem);
    const char *xml = (const char *)evbuffer_pullup(r->mem, -1);

    cs->s3err = gw_parse_complete(xml ? xml : "", len, COMPLETE_XML_CAP, &req);
    if (cs->s3err != GW_OK)
        return;
    cs->err =
        parts_read(r, 0, GW_MAX_PARTS, &cs->up, &cs->have, &cs->nhave, &truncated, &cs->have_ids);
    if (cs->err == CM_OK)
        cs->s3err = select_parts(cs, &req);
    if (cs->err == CM_OK && cs->s3err == GW_OK) {
        complete_build(r, cs);
        if (cs->s3err == GW_OK)
            cs->s3err =
                gw_complete_expect(gw_complete_hdrs_get, &cs->expect, cs->obj.size, cs->obj.ck_alg,
                                   cs->obj.ck_value, cs->msg, sizeof(cs->msg));
        if (cs->s3err == GW_OK)
            complete_commit(r);
    }
    /* NOTFOUND without If-Match: the upload is gone, perhaps completed by this very request. */
    if (cs->err == CM_ERR_NOTFOUND && !cs->cond.if_match && completed_before(r, cs, &req))
        cs->err = CM_OK, cs->s3err = GW_OK;
    gw_complete_req_release(&req);
}

static void complete_done(gw_req *r)
{
    complete_state *cs = r->op;
    const md_object *o = &cs->obj;
    if (cs->s3err != GW_OK) {
        gw_error(r, cs->s3err, cs->msg[0] ? cs->msg : NULL);
        return;
    }
    if (cs->err == CM_ERR_CONFLICT) { /* a part was replaced after the list was checked */
        gw_error(r, GW_INVALID_PART, "A part was uploaded again while the upload completed");
        return;
    }
    if (cs->err != CM_OK) {
        int no_current = cs->err == CM_ERR_NOTFOUND && cs->cond.if_match;
        gw_error(r,
                 cs->err == CM_ERR_NOTFOUND && !no_current ? GW_NO_SUCH_UPLOAD
                                                           : gw_s3err_from_cm(cs->err),
                 no_current ? "No current object to match" : NULL);
        return;
    }
    char location[2048];
    gw_version_answer(r, &cs->res);
    snprintf(location, sizeof(location), "/%s/%s", r->bucket, r->key);
    struct evbuffer *buf = evbuffer_new();
    if (!buf || gw_xml_complete(buf, location, r->bucket, r->key, o->etag, o->ck_alg, o->ck_type,
                                o->ck_value) != CM_OK)
        gw_error(r, GW_INTERNAL, NULL);
    else
        gw_sse_resp_xml(r, &o->sse, buf);
    if (buf)
        evbuffer_free(buf);
}

/* Loop: read the conditional headers, then everything else on a worker. */
static void complete_finish(gw_req *r)
{
    complete_state *cs = r->op;
    gw_s3err e = gw_write_cond(r, &cs->cond, cs->etag_buf, sizeof(cs->etag_buf));
    if (e != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    if (gw_complete_hdrs_capture(r, &cs->expect) != CM_OK) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    gw_offload(r, complete_work, complete_done);
}

static void complete_upload(gw_req *r, const char *upload_id)
{
    complete_state *cs = calloc(1, sizeof(*cs));
    (void)upload_id;
    if (!cs) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op = cs;
    r->op_free = complete_state_free;
    gw_body_to_memory(r, COMPLETE_XML_CAP, complete_finish);
}

/* ---- Abort ---- */

typedef struct {
    cm_err err; /* result of the commit (worker) */
} abort_state;

/* Worker: drop the upload and its part records (listed without bodies), free their chunks. */
static void abort_work(gw_req *r)
{
    abort_state *st = r->op;
    md_part *parts = NULL;
    size_t n = 0;
    if (gw_meta_remote(r->g)) { /* the replicas turn the parts' bodies into garbage */
        st->err = rp_upload_abort(r->g->rp, r->bucket, r->key, gw_query_get(&r->q, "uploadId"));
        return;
    }
    st->err =
        md_upload_abort(r->g->md, r->bucket, r->key, gw_query_get(&r->q, "uploadId"), &parts, &n);
    gw_free_parts(r->g, parts, n);
}

static void abort_done(gw_req *r)
{
    abort_state *st = r->op;
    if (st->err != CM_OK) {
        gw_error(r, st->err == CM_ERR_NOTFOUND ? GW_NO_SUCH_UPLOAD : gw_s3err_from_cm(st->err),
                 NULL);
        return;
    }
    gw_resp_start(r, 204, -1);
    net_resp_end(r->net);
}

static void abort_upload(gw_req *r)
{
    gw_offload_state(r, sizeof(abort_state), free, abort_work, abort_done);
}

void gw_op_multipart(gw_req *r)
{
    const char *m = net_req_method(r->net);
    const char *upload_id = gw_query_get(&r->q, "uploadId");

    if (!upload_id) {
        if (strcmp(m, "POST") == 0)
            create_upload(r);
        else
            gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    if (strcmp(m, "PUT") == 0 && gw_query_find(&r->q, "partNumber"))
        upload_part(r, upload_id);
    else if (strcmp(m, "GET") == 0)
        list_parts(r);
    else if (strcmp(m, "POST") == 0)
        complete_upload(r, upload_id);
    else if (strcmp(m, "DELETE") == 0)
        abort_upload(r);
    else
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
}
