/*
 * gw_bucket.c - service and bucket operations: ListBuckets, Create/Head/Delete bucket, the
 * bucket subresources clients probe (location, versioning, acl, policy, cors, lifecycle, ...),
 * the listings (ListObjects V1 and V2, ListObjectVersions, ListMultipartUploads) and
 * DeleteObjects.
 *
 * Listings page through md_list_objects; a continuation token is the base64 of the last key or
 * common prefix returned, so a common prefix is never repeated on the next page. A single node's
 * ListObjectVersions pages through md_list_versions (every version, key-marker + version-id-
 * marker; docs/versioning.md); a cluster node through rp_version_list in a versioned bucket, and
 * each key's record as its latest null version in a bucket never versioned.
 *
 * Metadata commits (CreateBucket, DeleteBucket, DeleteObjects) run on a worker (gw_offload);
 * DeleteObjects removes all its keys in one metadata op (md_objects_delete_v: one commit for up to
 * 1,000 keys, each with its VersionId if given). PutBucketVersioning is gw_version.c. DeleteBucket
 * of a bucket holding only unfinished multipart uploads deletes them with it and frees their parts'
 * chunks, as S3 does.
 *
 * Cluster mode (a gw_bucket_ns is set, gw.h): the namespace decides. CreateBucket asks it to add
 * the bucket (on the worker, bounded by the etcd client's deadlines; 503 ServiceUnavailable when
 * it cannot answer) and then commits the bucket locally, where object records live; DeleteBucket
 * asks whether the bucket is empty cluster-wide (gw_bucket_empty: the replicated listing), removes
 * it from the namespace, then locally. A request naming a bucket this node's store does not know
 * yet (the watch has not delivered it) asks the namespace on a worker and commits the bucket
 * locally before it is served (gw_bucket_resolve). The S3 answers are the single-node ones.
 *
 * Consistency (docs/replication.md, "Consistency modes: how a bucket gets its mode"): CreateBucket
 * takes x-cairn-consistency: strong|available (another value: 400 before the body is read) and
 * hands it to the namespace; HeadBucket answers the mode in the same header, from the namespace's
 * memory. A single node has one copy of every record, so both modes are the same there: the
 * header is checked and otherwise ignored, and HeadBucket says strong.
 */
#include "gw_int.h"
#include "gw_lc.h"
#include "gw_sse.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_log.h"
#include "cm_util.h"
#include "rp_upload.h"

#define MOD "gw"
#define SMALL_XML_CAP (64u * 1024)
#define DELETE_XML_CAP (2u << 20)
#define CONSISTENCY_HEADER "x-cairn-consistency"

void gw_offload_state(gw_req *r, size_t size, void (*state_free)(void *), gw_work_fn work,
                      gw_finish_fn done)
{
    void *st = calloc(1, size);
    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op = st;
    r->op_free = state_free;
    gw_offload(r, work, done);
}

void gw_free_parts(gw *g, md_part *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!MD_PART_INLINE(&parts[i]))
            ob_delete(g->data, &parts[i].layout);
    md_parts_free(parts, n);
}

void gw_send_doc(gw_req *r, struct evbuffer *buf, cm_err built)
{
    if (!buf || built != CM_OK)
        gw_error(r, GW_INTERNAL, NULL);
    else
        gw_resp_xml(r, 200, buf);
    if (buf)
        evbuffer_free(buf);
}

void gw_send_owner_acl(gw_req *r)
{
    gw_send_acl(r, r->auth.access_key, MD_ACL_PRIVATE);
}

void gw_op_list_buckets(gw_req *r)
{
    md_bucket *bs = NULL;
    size_t n = 0;

    if (strcmp(net_req_method(r->net), "GET") != 0) {
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    cm_err err = md_bucket_list(r->g->md, &bs, &n);
    if (err != CM_OK) {
        gw_error_cm(r, err);
        return;
    }
    if (r->principal == GW_PRIN_USER) { /* a user sees the buckets it owns */
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(bs[i].owner, r->user) == 0)
                bs[k++] = bs[i];
        n = k;
    }
    struct evbuffer *buf = evbuffer_new();
    const char *me = gw_owner_id(r);
    err = buf ? gw_xml_list_buckets(buf, me, me, bs, n) : CM_ERR_NOMEM;
    free(bs);
    gw_send_doc(r, buf, err);
}

/* ---- Create / Head / Delete ---- */

/* A bucket commit run on a worker and its outcome. */
typedef struct {
    cm_err err;
    int mine;      /* CreateBucket: the existing bucket is the caller's */
    int ns_failed; /* cluster mode: err came from the namespace failing (503) */
    uint8_t acl;   /* CreateBucket: x-amz-acl and x-amz-object-ownership */
    uint8_t ownership;
    int lock; /* CreateBucket: x-amz-bucket-object-lock-enabled: true */
} bucket_commit_state;

static void create_work(gw_req *r);
static void create_done(gw_req *r);

static void create_finish(gw_req *r)
{
    char *location = NULL;
    size_t len = evbuffer_get_length(r->mem);
    const char *xml = (const char *)evbuffer_pullup(r->mem, -1);
    gw_s3err e = gw_parse_create_bucket(xml ? xml : "", len, SMALL_XML_CAP, &location);

    if (e != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    if (location && location[0] && strcmp(location, r->g->region) != 0) {
        free(location);
        gw_error(r, GW_INVALID_ARGUMENT /* S3: InvalidLocationConstraint */,
                 "The specified location-constraint is not valid for this server");
        return;
    }
    free(location);
    bucket_commit_state *st = calloc(1, sizeof(*st));
    const char *own = gw_hdr(r, "x-amz-object-ownership");
    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    const char *msg = NULL;
    if (own && gw_ownership_parse(own, &st->ownership) != 0)
        e = GW_INVALID_ARGUMENT;
    else if (st->ownership != MD_OWN_ENFORCED && gw_cluster_node(r->g) && !r->g->ns.access_set)
        e = GW_UNSUPPORTED, msg = "object ownership is not cluster-wide on this node";
    else
        e = gw_acl_from_request(r, st->ownership, 0, &st->acl);
    const char *lock = gw_hdr(r, "x-amz-bucket-object-lock-enabled");
    st->lock = e == GW_OK && lock && strcasecmp(lock, "true") == 0;
    /* as gw_refuse.c: only a cluster gateway made without a namespace that keeps Object Lock
     * (an embedded one in the unit tests); every cairn server cluster node has one */
    if (st->lock && gw_cluster_node(r->g) && !r->g->ns.lock_set)
        e = GW_UNSUPPORTED,
        msg = "Object Lock needs a bucket namespace that keeps it; this gateway has none";
    if (e != GW_OK) {
        free(st);
        gw_error(r, e, msg);
        return;
    }
    r->op = st;
    r->op_free = free;
    gw_offload(r, create_work, create_done);
}

/*
 * Cluster mode, on the worker: add the bucket to the namespace, then commit it locally (a record
 * already there is this one, mirrored by the watch meanwhile, or left from before). A bucket that
 * exists cluster-wide is mirrored too, so the requests that follow find it here.
 */
static void create_in_namespace(gw_req *r, const md_bucket *b, bucket_commit_state *st)
{
    const gw_bucket_ns *ns = &r->g->ns;
    md_bucket have = {0};
    rp_consistency mode = RP_STRONG;
    const char *asked = gw_hdr(r, CONSISTENCY_HEADER);
    if (asked) /* checked before the body was read (gw_op_bucket) */
        rp_consistency_parse(asked, &mode);
    st->err = ns->create(ns->arg, b, mode, &have);
    if (st->err == CM_OK || st->err == CM_ERR_EXISTS) {
        gw_bucket_mirror_add(r->g, st->err == CM_OK ? b : &have);
        st->mine = st->err == CM_ERR_EXISTS && strcmp(have.owner, gw_owner_id(r)) == 0;
    } else {
        st->ns_failed = 1;
    }
}

/* Worker: commit the bucket record; on EXISTS, find whose it is. */
static void create_work(gw_req *r)
{
    bucket_commit_state *st = r->op;
    md_bucket b = {0}, have;
    snprintf(b.name, sizeof(b.name), "%s", r->bucket);
    b.created_ms = cm_now_ms();
    snprintf(b.owner, sizeof(b.owner), "%s", gw_owner_id(r));
    b.acl = st->acl;
    b.ownership = st->ownership;
    if (st->lock) /* Object Lock keeps every version: versioning comes with it, for good */
        b.lock_enabled = 1, b.versioning = MD_VERS_ENABLED;
    if (r->g->ns.create) {
        create_in_namespace(r, &b, st);
        return;
    }
    st->err = md_bucket_create(r->g->md, &b);
    st->mine = st->err == CM_ERR_EXISTS && md_bucket_get(r->g->md, r->bucket, &have) == CM_OK &&
               strcmp(have.owner, gw_owner_id(r)) == 0;
}

/* The namespace (etcd) did not answer or kept conflicting: nothing was changed. */
static void namespace_unavailable(gw_req *r, cm_err err)
{
    CM_WARN(MOD, "req=%s bucket %s: the cluster's bucket namespace failed: %s", r->id, r->bucket,
            cm_err_str(err));
    gw_error(r, GW_SERVICE_UNAVAILABLE, "The cluster's bucket namespace is unavailable");
}

static void create_done(gw_req *r)
{
    bucket_commit_state *st = r->op;
    if (st->ns_failed) {
        namespace_unavailable(r, st->err);
        return;
    }
    if (st->err == CM_ERR_EXISTS) {
        /* us-east-1 answers 200 to the owner re-creating a bucket; others 409. */
        if (!st->mine) {
            gw_error(r, GW_BUCKET_EXISTS, NULL);
            return;
        }
        if (strcmp(r->g->region, "us-east-1") != 0) {
            gw_error(r, GW_BUCKET_OWNED, NULL);
            return;
        }
    } else if (st->err != CM_OK) {
        gw_error_cm(r, st->err);
        return;
    }
    char loc[80];
    snprintf(loc, sizeof(loc), "/%s", r->bucket);
    gw_resp_start(r, 200, 0);
    net_resp_header(r->net, "Location", loc);
    net_resp_end(r->net);
}

static void head_bucket(gw_req *r)
{
    md_bucket b;
    cm_err err = md_bucket_get(r->g->md, r->bucket, &b);
    if (err != CM_OK) {
        gw_error(r, err == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(err), NULL);
        return;
    }
    const gw_bucket_ns *ns = &r->g->ns;
    rp_consistency mode = ns->consistency ? ns->consistency(ns->arg, r->bucket) : RP_STRONG;
    gw_resp_start(r, 200, 0);
    net_resp_header(r->net, "x-amz-bucket-region", r->g->region);
    net_resp_header(r->net, CONSISTENCY_HEADER, rp_consistency_name(mode));
    net_resp_end(r->net);
}

/*
 * Cluster mode, on the worker: only an empty bucket leaves the namespace; then it is deleted here
 * (an object committed here between the check and the delete keeps the local record: logged).
 */
static void delete_in_namespace(gw_req *r, bucket_commit_state *st)
{
    const gw_bucket_ns *ns = &r->g->ns;
    st->err = ns->is_empty(ns->arg, r->bucket); /* CM_ERR_CONFLICT: BucketNotEmpty */
    if (st->err != CM_OK)
        return;
    /* Its unfinished uploads go with it: on a cluster node they are replicated records. */
    if (gw_meta_remote(r->g) && (st->err = rp_upload_abort_all(r->g->rp, r->bucket)) != CM_OK)
        return;
    st->err = ns->remove(ns->arg, r->bucket);
    if (st->err == CM_OK || st->err == CM_ERR_NOTFOUND)
        gw_bucket_mirror_remove(r->g, r->bucket, 0);
    else
        st->ns_failed = 1; /* unreachable, or conflicting changes every time: 503 */
}

/* Worker: delete the bucket with its unfinished uploads, and free their parts' chunks. */
static void delete_bucket_work(gw_req *r)
{
    bucket_commit_state *st = r->op;
    md_part *parts = NULL;
    size_t n = 0;
    if (r->g->ns.remove) {
        delete_in_namespace(r, st);
        return;
    }
    st->err = md_bucket_delete(r->g->md, r->bucket, &parts, &n);
    gw_free_parts(r->g, parts, n);
}

static void delete_bucket_done(gw_req *r)
{
    cm_err err = ((bucket_commit_state *)r->op)->err;
    if (((bucket_commit_state *)r->op)->ns_failed)
        namespace_unavailable(r, err);
    else if (err == CM_ERR_NOTFOUND)
        gw_error(r, GW_NO_SUCH_BUCKET, NULL);
    else if (err == CM_ERR_CONFLICT)
        gw_error(r, GW_BUCKET_NOT_EMPTY, NULL);
    else if (err != CM_OK)
        gw_error_cm(r, err);
    else {
        gw_cors_invalidate(r->g); /* a re-created bucket starts without CORS configuration */
        gw_lc_invalidate(r->g);   /* nor lifecycle rules */
        gw_resp_start(r, 204, -1);
        net_resp_end(r->net);
    }
}

static void delete_bucket(gw_req *r)
{
    gw_offload_state(r, sizeof(bucket_commit_state), free, delete_bucket_work, delete_bucket_done);
}

/* ---- the namespace's side (cluster mode) ---- */

void gw_set_bucket_ns(gw *g, const gw_bucket_ns *ns)
{
    g->ns = *ns;
}

void gw_bucket_access_changed(gw *g, const char *name)
{
    gw_pcache_forget(g->pcache, name);
}

void gw_bucket_access(gw *g, md_bucket *b)
{
    if (g->ns.access_get)
        g->ns.access_get(g->ns.arg, b->name, b); /* unknown there: the mirror's defaults */
}

cm_err gw_bucket_policy(gw *g, const md_bucket *b, char **json, size_t *len)
{
    if (!g->ns.policy_get)
        return md_bucket_policy_get(g->md, b->name, b->created_ms, json, len);
    cm_err e = g->ns.policy_get(g->ns.arg, b->name, json);
    if (e == CM_OK && !*json)
        e = CM_ERR_NOTFOUND;
    if (e == CM_OK)
        *len = strlen(*json);
    return e;
}

cm_err gw_bucket_empty(gw *g, const char *name)
{
    md_list_query q = {.max_keys = 1};
    md_list_result res = {0};
    cm_err e = gw_meta_list(g, name, &q, &res);
    if (e == CM_OK && res.n > 0)
        e = CM_ERR_CONFLICT;
    md_list_result_release(&res);
    /* A cluster bucket's noncurrent versions and delete markers keep it too (S3) */
    return e == CM_OK ? gw_meta_no_versions(g, name) : e;
}

cm_err gw_bucket_mirror_add(gw *g, const md_bucket *b)
{
    cm_err e = md_bucket_create(g->md, b);
    if (e == CM_ERR_EXISTS)
        return CM_OK;
    if (e != CM_OK)
        CM_WARN(MOD, "bucket %s: cannot commit it locally: %s", b->name, cm_err_str(e));
    return e;
}

cm_err gw_bucket_mirror_remove(gw *g, const char *name, int64_t created_ms)
{
    md_part *parts = NULL;
    size_t n = 0;
    md_bucket have;
    cm_err e = md_bucket_get(g->md, name, &have);
    if (e == CM_OK && created_ms && have.created_ms != created_ms)
        return CM_OK; /* re-created since: the removal was of the old one */
    if (e == CM_OK)
        e = md_bucket_delete(g->md, name, &parts, &n);
    gw_free_parts(g, parts, n);
    if (e == CM_ERR_NOTFOUND)
        return CM_OK;
    if (e == CM_ERR_CONFLICT)
        CM_WARN(MOD,
                "bucket %s left the cluster's namespace but holds objects on this node: "
                "kept here",
                name);
    else if (e != CM_OK)
        CM_WARN(MOD, "bucket %s: cannot delete it locally: %s", name, cm_err_str(e));
    return e;
}

typedef struct {
    gw_finish_fn then;
} resolve_state;

/* Worker: ask the namespace, and commit the bucket here when it knows it. */
static void resolve_work(gw_req *r)
{
    md_bucket b = {0};
    if (r->g->ns.lookup(r->g->ns.arg, r->bucket, &b) == CM_OK &&
        gw_bucket_mirror_add(r->g, &b) == CM_OK)
        CM_INFO(MOD,
                "req=%s bucket %s: in the namespace before the watch delivered it, "
                "committed here",
                r->id, r->bucket);
}

static void resolve_done(gw_req *r)
{
    gw_finish_fn then = ((resolve_state *)r->op)->then;
    r->op_free(r->op);
    r->op = NULL;
    r->op_free = NULL;
    then(r); /* the bucket is here now, or the usual NoSuchBucket follows */
}

int gw_bucket_resolve(gw_req *r, gw_finish_fn then)
{
    md_bucket b;
    if (!r->g->ns.lookup || !r->bucket[0] || gw_bucket_name_check(r->bucket) != GW_OK)
        return 0;
    if (!r->key && r->q.n == 0 && strcmp(net_req_method(r->net), "PUT") == 0)
        return 0; /* CreateBucket asks the namespace itself */
    if (md_bucket_get(r->g->md, r->bucket, &b) != CM_ERR_NOTFOUND)
        return 0;
    resolve_state *st = calloc(1, sizeof(*st));
    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return 1;
    }
    st->then = then; /* before the offload: a saturated pool runs done inline */
    r->op = st;
    r->op_free = free;
    gw_offload(r, resolve_work, resolve_done);
    return 1;
}

/* ---- Listings ---- */

/* Parameters shared by the object listings; GW_OK or the error to answer. */
static gw_s3err list_params(gw_req *r, gw_list_params *p, md_list_query *q, char **marker_heap)
{
    const char *enc = gw_query_get(&r->q, "encoding-type");
    uint64_t max;

    memset(p, 0, sizeof(*p));
    memset(q, 0, sizeof(*q));
    *marker_heap = NULL;
    if (enc && strcmp(enc, "url") != 0)
        return GW_INVALID_ARGUMENT;
    if (gw_parse_count(gw_query_get(&r->q, "max-keys"), 1000, 1000, &max) != GW_OK)
        return GW_INVALID_ARGUMENT;
    p->bucket = r->bucket;
    p->prefix = gw_query_get(&r->q, "prefix");
    p->delimiter = gw_query_get(&r->q, "delimiter");
    p->max_keys = max;
    p->encoding_url = enc != NULL;
    p->owner_id = r->auth.access_key;
    q->prefix = p->prefix;
    q->delimiter = p->delimiter;
    q->max_keys = max;
    return GW_OK;
}

typedef struct {
    gw_list_params p;
    md_list_query q;
    md_list_result res;
    char *marker; /* decoded continuation token (q.start_after points to it) */
    int version;
    cm_err err;
} list_state;

static void list_state_free(void *v)
{
    list_state *ls = v;
    md_list_result_release(&ls->res);
    free(ls->marker);
    free(ls);
}

/* Worker (cluster node) or loop: one page of the listing. */
static void list_work(gw_req *r)
{
    list_state *ls = r->op;
    int remote = gw_meta_remote(r->g);
    if (ls->version == 0 && (!remote || gw_meta_versioned(r->g, r->bucket))) {
        md_vlist_query vq = {.prefix = ls->p.prefix,
                             .delimiter = ls->p.delimiter,
                             .key_marker = ls->p.key_marker,
                             .vid_marker = ls->p.version_id_marker,
                             .max_keys = ls->p.max_keys};
        ls->err = remote ? gw_meta_list_versions(r->g, r->bucket, &vq, &ls->res)
                         : md_list_versions(r->g->md, r->bucket, &vq, &ls->res);
        return;
    }
    ls->err = gw_meta_list(r->g, r->bucket, &ls->q, &ls->res);
    /* A cluster bucket never versioned keeps one (null) version per key: each is the latest. */
    for (size_t i = 0; ls->version == 0 && ls->err == CM_OK && i < ls->res.n; i++)
        ls->res.entries[i].is_latest = 1;
}

static void list_done(gw_req *r)
{
    list_state *ls = r->op;
    cm_err err = ls->err;
    if (err != CM_OK) {
        gw_error_cm(r, err);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    if (!buf)
        err = CM_ERR_NOMEM;
    else if (ls->version == 2)
        err = gw_xml_list_v2(buf, &ls->p, &ls->res);
    else if (ls->version == 1)
        err = gw_xml_list_v1(buf, &ls->p, &ls->res);
    else
        err = gw_xml_list_versions(buf, &ls->p, &ls->res);
    gw_send_doc(r, buf, err);
}

static void list_objects(gw_req *r, int version)
{
    list_state *ls = calloc(1, sizeof(*ls));
    if (!ls) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op = ls;
    r->op_free = list_state_free;
    ls->version = version;
    gw_list_params *p = &ls->p;
    md_list_query *q = &ls->q;
    gw_s3err e = list_params(r, p, q, &ls->marker);

    if (e != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    if (version == 2) {
        p->continuation_token = gw_query_get(&r->q, "continuation-token");
        p->start_after = gw_query_get(&r->q, "start-after");
        const char *fo = gw_query_get(&r->q, "fetch-owner");
        p->fetch_owner = fo && strcmp(fo, "true") == 0;
        if (p->continuation_token && p->continuation_token[0]) { /* empty = no token, as S3 */
            if ((e = gw_token_decode(p->continuation_token, &ls->marker)) != GW_OK) {
                gw_error(r, e, "The continuation token provided is incorrect");
                return;
            }
            q->start_after = ls->marker;
        } else {
            q->start_after = p->start_after;
        }
    } else if (version == 1) {
        p->marker = gw_query_get(&r->q, "marker");
        q->start_after = p->marker;
    } else {
        p->key_marker = gw_query_get(&r->q, "key-marker");
        p->version_id_marker = gw_query_get(&r->q, "version-id-marker");
        q->start_after = p->key_marker;
        if (p->version_id_marker && (!p->key_marker || !*p->key_marker)) {
            gw_error(r, GW_INVALID_ARGUMENT,
                     "A version-id marker cannot be specified without a key marker.");
            return;
        }
        if (p->version_id_marker && !md_vid_valid(p->version_id_marker)) {
            gw_error(r, GW_INVALID_ARGUMENT, "Invalid version id specified");
            return;
        }
    }
    if (!gw_bucket_check(r, r->bucket))
        return;
    if (gw_meta_remote(r->g)) {
        gw_offload(r, list_work, list_done);
        return;
    }
    list_work(r);
    list_done(r);
}

typedef struct {
    gw_uploads_params p;
    md_upload_query q;
    md_upload_list res;
    cm_err err;
} list_uploads_state;

static void list_uploads_state_free(void *p)
{
    list_uploads_state *st = p;
    if (st)
        md_upload_list_release(&st->res);
    free(st);
}

/* Worker on a cluster node (the uploads are replicated records), the loop on a single node. */
static void list_uploads_work(gw_req *r)
{
    list_uploads_state *st = r->op;
    st->err = gw_meta_remote(r->g) ? rp_upload_list(r->g->rp, r->bucket, &st->q, &st->res)
                                   : md_upload_list_query(r->g->md, r->bucket, &st->q, &st->res);
}

static void list_uploads_done(gw_req *r)
{
    list_uploads_state *st = r->op;
    if (st->err != CM_OK) {
        gw_error_cm(r, st->err);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    cm_err err = buf ? gw_xml_list_uploads(buf, &st->p, &st->res) : CM_ERR_NOMEM;
    gw_send_doc(r, buf, err);
}

static void list_uploads(gw_req *r)
{
    const char *enc = gw_query_get(&r->q, "encoding-type");
    uint64_t max;

    if ((enc && strcmp(enc, "url") != 0) ||
        gw_parse_count(gw_query_get(&r->q, "max-uploads"), 1000, 1000, &max) != GW_OK) {
        gw_error(r, GW_INVALID_ARGUMENT, NULL);
        return;
    }
    if (!gw_bucket_check(r, r->bucket))
        return;
    list_uploads_state *st = calloc(1, sizeof(*st));
    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op = st;
    r->op_free = list_uploads_state_free;
    st->p = (gw_uploads_params){.bucket = r->bucket,
                                .prefix = gw_query_get(&r->q, "prefix"),
                                .delimiter = gw_query_get(&r->q, "delimiter"),
                                .key_marker = gw_query_get(&r->q, "key-marker"),
                                .upload_id_marker = gw_query_get(&r->q, "upload-id-marker"),
                                .max_uploads = max,
                                .encoding_url = enc != NULL};
    st->q = (md_upload_query){.prefix = st->p.prefix,
                              .delimiter = st->p.delimiter,
                              .key_marker = st->p.key_marker,
                              .upload_id_marker = st->p.upload_id_marker,
                              .max_uploads = max};
    if (gw_meta_remote(r->g)) {
        gw_offload(r, list_uploads_work, list_uploads_done);
        return;
    }
    list_uploads_work(r);
    list_uploads_done(r);
}

/* ---- DeleteObjects ---- */

typedef struct {
    gw_delete_req req;
    gw_delete_outcome *out;
} delete_objects_state;

static void delete_objects_state_free(void *p)
{
    delete_objects_state *st = p;
    if (!st)
        return;
    gw_delete_req_release(&st->req);
    free(st->out);
    free(st);
}

/*
 * Worker: delete every key in one metadata op (one commit for the whole request), then free the
 * data of the removed records. The removed records are decoded without inline bodies, so the
 * request holds their part lists, not their bytes.
 */
static void delete_objects_work(gw_req *r)
{
    delete_objects_state *st = r->op;
    size_t n = st->req.n, m = 0;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    const char **vids = calloc(n ? n : 1, sizeof(*vids));
    size_t *which = calloc(n ? n : 1, sizeof(*which));
    cm_err *errs = calloc(n ? n : 1, sizeof(*errs));
    md_object *olds = calloc(n ? n : 1, sizeof(*olds));
    int *had = calloc(n ? n : 1, sizeof(*had));
    md_vres *res = calloc(n ? n : 1, sizeof(*res));
    int ok = keys && vids && which && errs && olds && had && res;
    /* the bypass holds for the request only if every key may use it (gw_lock.c) */
    int bypass = gw_hdr(r, "x-amz-bypass-governance-retention") != NULL;
    for (size_t i = 0; i < n && bypass; i++)
        bypass = gw_lock_bypass(r, r->bucket, st->req.objs[i].key);
    for (size_t i = 0; i < n; i++) {
        const gw_delete_obj *d = &st->req.objs[i];
        gw_delete_outcome *o = &st->out[i];
        o->key = d->key;
        o->version_id = d->version_id;
        if (!ok)
            o->err = GW_INTERNAL;
        else if (gw_key_check(d->key, strlen(d->key)) != GW_OK)
            o->err = GW_INVALID_ARGUMENT;
        else if (r->authz_per_key && !gw_authz_key(r, r->bucket, d->key, "s3:DeleteObject"))
            o->err = GW_ACCESS_DENIED;
        else if (d->version_id && !md_vid_valid(d->version_id))
            o->err = GW_INVALID_ARGUMENT, o->message = "Invalid version id specified";
        else
            keys[m] = d->key, vids[m] = d->version_id, which[m++] = i;
    }
    if (ok && m > 0) {
        gw_meta_delete_many_vb(r->g, r->bucket, keys, vids, m, errs, olds, had, res, bypass);
        for (size_t j = 0; j < m; j++) {
            gw_delete_outcome *o = &st->out[which[j]];
            if (errs[j] == CM_ERR_LOCKED)
                o->err = GW_ACCESS_DENIED, o->message = GW_LOCKED_MSG;
            else if (errs[j] != CM_OK && errs[j] != CM_ERR_NOTFOUND)
                o->err = gw_s3err_from_cm(errs[j]);
            else if (res[j].delete_marker) {
                /* A marker made (its new id) or destroyed by id (the id named). */
                o->delete_marker = 1;
                if (res[j].versioned)
                    snprintf(o->marker_version_id, sizeof(o->marker_version_id), "%s",
                             res[j].version_id);
            }
            if (had[j]) {
                ob_free_object_data(r->g->data, &olds[j]);
                md_object_release(&olds[j]);
            }
        }
    }
    free(keys);
    free(vids);
    free(which);
    free(errs);
    free(olds);
    free(had);
    free(res);
}

static void delete_objects_done(gw_req *r)
{
    delete_objects_state *st = r->op;
    struct evbuffer *buf = evbuffer_new();
    cm_err err = buf ? gw_xml_delete_result(buf, st->req.quiet, st->out, st->req.n) : CM_ERR_NOMEM;
    gw_send_doc(r, buf, err);
}

static void delete_objects_finish(gw_req *r)
{
    delete_objects_state *st = calloc(1, sizeof(*st));
    size_t len = evbuffer_get_length(r->mem);
    const char *xml = (const char *)evbuffer_pullup(r->mem, -1);

    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op = st;
    r->op_free = delete_objects_state_free;
    gw_s3err e = gw_parse_delete(xml ? xml : "", len, DELETE_XML_CAP, &st->req);
    if (e != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    if (!(st->out = calloc(st->req.n, sizeof(*st->out)))) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    gw_offload(r, delete_objects_work, delete_objects_done);
}

static void delete_objects(gw_req *r)
{
    if (!gw_bucket_check(r, r->bucket)) {
        return;
    }
    /* Newer SDKs send an x-amz-checksum-* header instead of Content-MD5: both are verified by
     * the body pipeline when present, neither is required. */
    gw_body_to_memory(r, DELETE_XML_CAP, delete_objects_finish);
}

/* ---- subresources ---- */

static void get_versioning(gw_req *r, const md_bucket *b)
{
    md_bucket v = *b;
    gw_bucket_access(r->g, &v); /* a cluster node: the namespace's state */
    struct evbuffer *buf = evbuffer_new();
    cm_err err = buf ? gw_xml_versioning(buf, (gw_versioning)v.versioning) : CM_ERR_NOMEM;
    gw_send_doc(r, buf, err);
}

static void get_location(gw_req *r)
{
    struct evbuffer *buf = evbuffer_new();
    cm_err err = buf ? gw_xml_location(buf, r->g->region) : CM_ERR_NOMEM;
    gw_send_doc(r, buf, err);
}

/* Subresources we do not support yet, with the "not configured" answer clients expect
 * ("tagging" and "cors" are now served: gw_op_bucket routes them to gw_tagops.c and gw_corsops.c
 * before this table is read; "policy", "ownershipControls" and "publicAccessBlock" to
 * gw_access.c; "object-lock" to gw_lock.c). */
static const struct {
    const char *param;
    gw_s3err get_err;
} unconfigured[] = {
    {"policy", GW_NO_SUCH_BUCKET_POLICY},
    {"cors", GW_NO_SUCH_CORS},
    {"lifecycle", GW_NO_SUCH_LIFECYCLE},
    {"tagging", GW_NO_SUCH_TAG_SET},
    {"website", GW_NO_SUCH_WEBSITE},
    {"replication", GW_UNSUPPORTED},
    {"object-lock", GW_UNSUPPORTED},
    {"notification", GW_UNSUPPORTED},
    {"logging", GW_UNSUPPORTED},
    {"accelerate", GW_UNSUPPORTED},
    {"requestPayment", GW_UNSUPPORTED},
    {"ownershipControls", GW_UNSUPPORTED},
    {"publicAccessBlock", GW_UNSUPPORTED},
    {"analytics", GW_UNSUPPORTED},
    {"metrics", GW_UNSUPPORTED},
    {"inventory", GW_UNSUPPORTED},
    {"intelligent-tiering", GW_UNSUPPORTED},
};

static void empty_logging(gw_req *r)
{
    struct evbuffer *buf = evbuffer_new();
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "BucketLoggingStatus");
    gw_xml_close(&x, "BucketLoggingStatus");
    gw_send_doc(r, buf, gw_xml_status(&x));
}

/* GET/HEAD on a bucket with a subresource or a listing. */
static void bucket_get(gw_req *r, const md_bucket *b)
{
    const gw_query *q = &r->q;
    if (gw_query_find(q, "location"))
        get_location(r);
    else if (gw_query_find(q, "versioning"))
        get_versioning(r, b);
    else if (gw_query_find(q, "acl"))
        gw_send_owner_acl(r);
    else if (gw_query_find(q, "logging"))
        empty_logging(r);
    else if (gw_query_find(q, "uploads"))
        list_uploads(r);
    else if (gw_query_find(q, "versions"))
        list_objects(r, 0);
    else {
        for (size_t i = 0; i < CM_ARRAY_LEN(unconfigured); i++)
            if (gw_query_find(q, unconfigured[i].param)) {
                gw_error(r, unconfigured[i].get_err, NULL);
                return;
            }
        const char *lt = gw_query_get(q, "list-type");
        list_objects(r, lt && strcmp(lt, "2") == 0 ? 2 : 1);
    }
}

void gw_op_bucket(gw_req *r)
{
    const char *m = net_req_method(r->net);
    md_bucket b;
    int is_get = strcmp(m, "GET") == 0;

    if (gw_bucket_name_check(r->bucket) != GW_OK) {
        gw_error(r, strcmp(m, "PUT") == 0 ? GW_INVALID_BUCKET_NAME : GW_NO_SUCH_BUCKET, NULL);
        return;
    }
    if (strcmp(m, "PUT") == 0 && r->q.n == 0) {
        const char *mode = gw_hdr(r, CONSISTENCY_HEADER);
        rp_consistency ignored;
        if (mode && rp_consistency_parse(mode, &ignored) != CM_OK)
            gw_error(r, GW_INVALID_ARGUMENT,
                     "x-cairn-consistency must be strong or available (lowercase)");
        else
            gw_body_to_memory(r, SMALL_XML_CAP, create_finish);
        return;
    }
    if (r->head && r->q.n == 0) {
        head_bucket(r);
        return;
    }
    if (strcmp(m, "POST") == 0 && gw_query_find(&r->q, "delete")) {
        delete_objects(r);
        return;
    }
    cm_err err = md_bucket_get(r->g->md, r->bucket, &b);
    if (err != CM_OK) {
        gw_error(r, err == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(err), NULL);
        return;
    }
    if (gw_access_bucket_op(r, &b)) { /* gw_access.c: policy, acl, access block, ownership */
        return;
    } else if (gw_query_find(&r->q, "tagging")) {
        gw_op_bucket_tagging(r); /* gw_tagops.c */
    } else if (gw_query_find(&r->q, "lifecycle")) {
        gw_op_bucket_lifecycle(r); /* gw_lifecycle.c */
    } else if (gw_query_find(&r->q, "encryption")) {
        gw_op_bucket_encryption(r, &b); /* gw_sse.c */
    } else if (gw_query_find(&r->q, "cors")) {
        gw_op_bucket_cors(r); /* gw_corsops.c */
    } else if (gw_query_find(&r->q, "object-lock")) {
        gw_op_bucket_object_lock(r, &b); /* gw_lock.c */
    } else if (gw_query_find(&r->q, "website")) {
        gw_op_bucket_website(r); /* gw_website.c (its row below is no longer reached) */
    } else if (is_get || r->head) {
        bucket_get(r, &b);
    } else if (strcmp(m, "PUT") == 0 && gw_query_find(&r->q, "versioning")) {
        gw_put_versioning(r); /* gw_version.c */
    } else if (strcmp(m, "DELETE") == 0) {
        int sub = 0;
        for (size_t i = 0; i < CM_ARRAY_LEN(unconfigured); i++)
            sub |= gw_query_find(&r->q, unconfigured[i].param) != NULL;
        if (sub) { /* deleting a configuration that is not there succeeds */
            gw_resp_start(r, 204, -1);
            net_resp_end(r->net);
        } else if (r->q.n == 0) {
            delete_bucket(r);
        } else {
            gw_error(r, GW_UNSUPPORTED, NULL);
        }
    } else {
        gw_error(r, GW_UNSUPPORTED, NULL);
    }
}
