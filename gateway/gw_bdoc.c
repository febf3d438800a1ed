/*
 * gw_bdoc.c - a bucket setting kept as one XML document (PutBucketCors, PutBucketWebsite): its
 * Put/Get/Delete subresource and the read of the document, shared by gw_corsops.c and
 * gw_website.c; gw_bdoc_cors and gw_bdoc_website describe the two documents (gw_int.h).
 *
 * Where it lives: on a single node in the bucket's record of the local store (md_btags.c: one
 * write op keeping every other field); on a cluster node in the bucket's entry of the etcd bucket
 * document (gw_bucket_ns cors_* / website_*: the set by compare-and-set on a worker, returning once
 * this node's follower applied it; the get from the follower's memory, never waiting on etcd). A
 * cluster node whose namespace lacks the document's functions answers Put/Delete with 501 and
 * serves none.
 *
 * Put: the body (at most d->cap bytes) is checked by the document's own parser (S3's errors), then
 * stored as sent. Get answers it as stored, d->none without one. Delete answers 204, also when
 * there is none. The get runs on the loop (a short LMDB read, or a copy from memory), the set on a
 * worker.
 */
#include "gw_cors.h"
#include "gw_int.h"
#include "gw_web.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

const gw_bdoc gw_bdoc_cors = {.kind = GW_BDOC_CORS,
                              .name = "CORS",
                              .cap = GW_CORS_XML_CAP,
                              .none = GW_NO_SUCH_CORS,
                              .need_md5 = 1, /* as S3 (botocore sends it) */
                              .changed = gw_cors_invalidate};

const gw_bdoc gw_bdoc_website = {
    .kind = GW_BDOC_WEBSITE, .name = "Website", .cap = GW_WEB_XML_CAP, .none = GW_NO_SUCH_WEBSITE};

/* The document's own parser, for its S3 errors (the parsed form is not kept). */
static gw_s3err check(const gw_bdoc *d, const char *xml, size_t len, char *msg, size_t cap)
{
    gw_cors_config cors;
    gw_web_config web;
    gw_s3err e;
    if (d->kind == GW_BDOC_CORS) {
        if ((e = gw_parse_cors(xml, len, d->cap, &cors, msg, cap)) == GW_OK)
            gw_cors_config_release(&cors);
    } else if ((e = gw_parse_website(xml, len, d->cap, &web, msg, cap)) == GW_OK) {
        gw_web_config_release(&web);
    }
    return e;
}

typedef cm_err (*ns_get_fn)(void *arg, const char *name, char **xml);
typedef cm_err (*ns_set_fn)(void *arg, const char *name, const char *xml);

static ns_get_fn ns_get(const gw *g, const gw_bdoc *d)
{
    return d->kind == GW_BDOC_CORS ? g->ns.cors_get : g->ns.website_get;
}

static ns_set_fn ns_set(const gw *g, const gw_bdoc *d)
{
    return d->kind == GW_BDOC_CORS ? g->ns.cors_set : g->ns.website_set;
}

int gw_bdoc_served(const gw *g, const gw_bdoc *d)
{
    return !gw_cluster_node(g) || (ns_get(g, d) && ns_set(g, d));
}

cm_err gw_bdoc_fetch(gw *g, const gw_bdoc *d, const char *bucket, char **xml, size_t *len)
{
    *xml = NULL;
    *len = 0;
    if (!gw_cluster_node(g)) {
        cm_err e = d->kind == GW_BDOC_CORS ? md_bucket_cors_get(g->md, bucket, xml, len)
                                           : md_bucket_website_get(g->md, bucket, xml, len);
        if (e != CM_OK || !*xml)
            *len = 0;
        return e;
    }
    if (!ns_get(g, d))
        return CM_OK; /* none served here */
    cm_err e = ns_get(g, d)(g->ns.arg, bucket, xml);
    *len = e == CM_OK && *xml ? strlen(*xml) : 0;
    return e;
}

typedef struct {
    const gw_bdoc *d;
    char *xml; /* PUT: the document to store; NULL: delete */
    size_t len;
    cm_err err;
} bdoc_state;

static void bdoc_state_free(void *p)
{
    bdoc_state *st = p;
    if (st)
        free(st->xml);
    free(st);
}

static void set_work(gw_req *r)
{
    bdoc_state *st = r->op;
    gw *g = r->g;
    if (gw_cluster_node(g))
        st->err = ns_set(g, st->d)(g->ns.arg, r->bucket, st->xml);
    else if (st->d->kind == GW_BDOC_CORS)
        st->err = md_bucket_cors_set(g->md, r->bucket, st->xml, st->len);
    else
        st->err = md_bucket_website_set(g->md, r->bucket, st->xml, st->len);
}

static void set_done(gw_req *r)
{
    bdoc_state *st = r->op;
    char msg[160];
    if (st->d->changed)
        st->d->changed(r->g); /* after the commit: a load from now on sees it */
    if (st->err == CM_ERR_TOOBIG) {
        snprintf(msg, sizeof(msg),
                 "The %s configuration is larger than a cluster's bucket "
                 "namespace keeps",
                 st->d->name);
        gw_error(r, GW_INVALID_REQUEST, msg);
        return;
    }
    if (st->err != CM_OK) {
        gw_error(r, st->err == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(st->err),
                 NULL);
        return;
    }
    gw_resp_start(r, st->xml ? 200 : 204, st->xml ? 0 : -1);
    net_resp_end(r->net);
}

static void put_finish(gw_req *r)
{
    bdoc_state *st = r->op;
    size_t len = evbuffer_get_length(r->mem);
    char msg[200] = "";
    gw_s3err e = check(st->d, (const char *)evbuffer_pullup(r->mem, -1), len, msg, sizeof(msg));
    if (e != GW_OK) {
        gw_error(r, e, msg[0] ? msg : NULL);
        return;
    }
    if (!(st->xml = malloc(len + 1))) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    evbuffer_remove(r->mem, st->xml, len);
    st->xml[len] = '\0';
    st->len = len;
    gw_offload(r, set_work, set_done);
}

static void get_doc(gw_req *r, const gw_bdoc *d)
{
    char *xml = NULL;
    size_t len = 0;
    struct evbuffer *buf = NULL;
    cm_err err = gw_bdoc_fetch(r->g, d, r->bucket, &xml, &len);
    if (err != CM_OK)
        gw_error(r, err == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(err), NULL);
    else if (!xml)
        gw_error(r, d->none, NULL);
    else if (!(buf = evbuffer_new()) || evbuffer_add(buf, xml, len) != 0)
        gw_error(r, GW_INTERNAL, NULL);
    else
        gw_resp_xml(r, 200, buf);
    if (buf)
        evbuffer_free(buf);
    free(xml);
}

void gw_op_bdoc(gw_req *r, const gw_bdoc *d)
{
    const char *m = net_req_method(r->net);
    char msg[160];

    if (strcmp(m, "GET") == 0 || r->head) {
        get_doc(r, d); /* one read: no worker needed */
        return;
    }
    if (strcmp(m, "PUT") != 0 && strcmp(m, "DELETE") != 0) {
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    if (!gw_bdoc_served(r->g, d)) {
        snprintf(msg, sizeof(msg),
                 "%s configurations are not available on a cluster node without a bucket "
                 "namespace that keeps them",
                 d->name);
        gw_error(r, GW_UNSUPPORTED, msg);
        return;
    }
    /* S3 requires the body's Content-MD5 for some documents (or, from newer SDKs, an
     * x-amz-checksum-*): the body pipeline checks whichever is given. */
    if (strcmp(m, "PUT") == 0 && d->need_md5 && !gw_checksum_given(r)) {
        gw_error(r, GW_INVALID_REQUEST, "Missing required header for this request: Content-MD5");
        return;
    }
    bdoc_state *st = calloc(1, sizeof(*st));
    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    st->d = d;
    r->op = st;
    r->op_free = bdoc_state_free;
    if (strcmp(m, "DELETE") == 0)
        gw_offload(r, set_work, set_done);
    else
        gw_body_to_memory(r, d->cap, put_finish);
}
