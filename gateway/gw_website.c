/*
 * gw_website.c - static website hosting (docs/website.md): Put/Get/DeleteBucketWebsite (?website
 * on a bucket) and the serving of website requests.
 *
 * Configuration: the XML document PutBucketWebsite accepted (gw_parse_website, gw_web.h), kept in
 * the bucket's record of the local store (md_bucket_website_set: one write op on a worker, keeping
 * every other field); on a cluster node in the bucket's entry of the etcd bucket document, as
 * the CORS configuration (the subresource and the read are gw_bdoc.c's, shared with CORS).
 * GetBucketWebsite answers it as stored.
 *
 * Website requests are recognised by their Host ("BUCKET.<website_domain>", gw_server.c's
 * split_path) on the S3 listener. They are GET/HEAD only, never authenticated: each is decided
 * for the anonymous principal (gw_authz_anonymous), so a site serves only what is publicly
 * readable, as S3's website endpoints. In order:
 *   1. RedirectAllRequestsTo: 301 to its host, the path kept.
 *   2. Routing rules without an error-code condition, on the key as asked: a redirect.
 *   3. The key: "" and "dir/" get the index document's suffix appended.
 *   4. The object, readable by anonymous: its x-amz-website-redirect-location (301) or its body,
 *      through GetObject's own path (gw_object_serve: conditional GET, ranges, Content-Encoding).
 *   5. Missing, and "KEY/<suffix>" exists: 302 to "/KEY/" (a directory asked without its slash).
 *   6. Otherwise an error: 404 when anonymous may list the bucket, else 403 (S3's rule, so that a
 *      site does not tell which keys exist); then gw_website_error.
 * Every error of a website request, also those GetObject's path raises, goes through
 * gw_website_error (from gw_error): routing rules with an error-code condition (a redirect), then
 * the error document served with the error's status (when readable by anonymous), else an HTML
 * page naming the error. An error met while answering an error is an HTML page (r->website 2).
 *
 * The records a step looks at come from gw_known_read: the local store on a single node; on a
 * cluster node a quorum read the loop does not wait for - a step that meets a record not read
 * yet starts its read (gw_known_fetch) and is taken again when it arrives, with the record then
 * known for the rest of the request (the anonymous decision reads the same one). The body comes
 * through GetObject's path, which reads the record again (leased) as every GET does.
 *
 * Cost: a website request reads the bucket record and parses the configuration (a few small
 * elements) each time, then one or two object records and the policy decision of an anonymous
 * GetObject. Threading: the event loop (single node reads of LMDB do not block, cluster reads
 * are asynchronous); the set on a worker.
 */
#include "gw_web.h"
#include "gw_int.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"

#define MOD "gw"

struct gw_web_state {
    gw_web_config cfg;
    char *asked;   /* the key as requested, decoded ("" for "/") */
    char *key;     /* the key served: asked, or with the index suffix appended */
    gw_s3err err;  /* the error an error document is looked up for */
    char *message; /* its message (NULL: the default) */
};

void gw_web_state_free(gw_web_state *ws)
{
    if (!ws)
        return;
    gw_web_config_release(&ws->cfg);
    free(ws->asked);
    free(ws->key);
    free(ws->message);
    free(ws);
}

/* ---- answers ---- */

static const char *reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 412:
        return "Precondition Failed";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return status >= 500 ? "Internal Server Error" : "Error";
    }
}

static void add_escaped(struct evbuffer *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            evbuffer_add(b, "&lt;", 4);
            break;
        case '>':
            evbuffer_add(b, "&gt;", 4);
            break;
        case '&':
            evbuffer_add(b, "&amp;", 5);
            break;
        case '"':
            evbuffer_add(b, "&quot;", 6);
            break;
        default:
            evbuffer_add(b, s, 1);
        }
    }
}

void gw_web_error_page(gw_req *r, int status, const char *code, const char *message)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        net_req_abort(r->net);
        return;
    }
    evbuffer_add_printf(b,
                        "<html>\n<head><title>%d %s</title></head>\n<body>\n<h1>%d %s</h1>\n<ul>\n",
                        status, reason(status), status, reason(status));
    evbuffer_add_printf(b, "<li>Code: %s</li>\n<li>Message: ", code);
    add_escaped(b, message);
    evbuffer_add_printf(b, "</li>\n");
    if (r->web && r->web->asked[0]) {
        evbuffer_add_printf(b, "<li>Key: ");
        add_escaped(b, r->web->asked);
        evbuffer_add_printf(b, "</li>\n");
    }
    evbuffer_add_printf(b, "<li>RequestId: %s</li>\n</ul>\n<hr/>\n</body>\n</html>\n", r->id);
    gw_resp_start(r, status, r->head ? 0 : (int64_t)evbuffer_get_length(b));
    net_resp_header(r->net, "Content-Type", "text/html; charset=utf-8");
    if (!r->head)
        net_resp_write_buffer(r->net, b);
    net_resp_end(r->net);
    evbuffer_free(b);
}

static void page(gw_req *r, gw_s3err e, const char *message)
{
    r->website = 2;
    gw_error(r, e, message); /* an HTML page: gw_error renders website errors so */
}

static void redirect_to(gw_req *r, int status, const char *location)
{
    gw_resp_start(r, status, 0);
    net_resp_header(r->net, "Location", location);
    net_resp_end(r->net);
}

/* A redirect by rule (NULL: RedirectAllRequestsTo) of the key as asked. */
static void redirect(gw_req *r, const gw_web_rule *rule)
{
    const char *host = gw_hdr(r, "host");
    char *loc = gw_web_location(&r->web->cfg, rule, r->web->asked,
                                net_req_tls(r->net) ? "https" : "http", host ? host : "");
    if (!loc) {
        page(r, GW_INTERNAL, NULL);
        return;
    }
    redirect_to(r, gw_web_redirect_code(rule), loc);
    free(loc);
}

/* ---- objects ---- */

/* OBJ_PENDING: a cluster node has not read the record yet (gw_known.c). */
enum { OBJ_FOUND, OBJ_MISSING, OBJ_DENIED, OBJ_FAILED, OBJ_PENDING };

/* Whether key can be served to anonymous; *redirect (heap) its website redirect, if any. */
static int object_state(gw_req *r, const char *key, char **redirect)
{
    md_object tmp;
    const md_object *o;
    *redirect = NULL;
    if (strlen(key) > MD_MAX_KEY) /* a long key with the index suffix appended */
        return OBJ_MISSING;
    cm_err e = gw_known_read(r, r->bucket, key, &tmp, &o);
    if (e == CM_AGAIN)
        return OBJ_PENDING;
    if (e == CM_ERR_NOTFOUND)
        return OBJ_MISSING;
    if (e != CM_OK)
        return OBJ_FAILED;
    int allowed = gw_authz_anonymous(r, key, "s3:GetObject");
    int st = allowed < 0 ? OBJ_PENDING : allowed ? OBJ_FOUND : OBJ_DENIED;
    if (st == OBJ_FOUND && o->website_redirect && !(*redirect = strdup(o->website_redirect)))
        st = OBJ_FAILED;
    gw_known_done(o, &tmp);
    return st;
}

/* key with the index document's suffix appended (heap; NULL: out of memory). */
static char *with_index(const char *key, const char *suffix, int add_slash)
{
    size_t cap = strlen(key) + strlen(suffix) + 2;
    char *s = malloc(cap);
    if (s)
        snprintf(s, cap, "%s%s%s", key, add_slash ? "/" : "", suffix);
    return s;
}

/* A directory asked without its slash ("dir" while "dir/index.html" exists): 302 to "/dir/".
 * 1 answered, 0 not, -1 its record is not read yet. */
static int directory_redirect(gw_req *r)
{
    const char *asked = r->web->asked;
    char *idx = NULL, *loc = NULL, *red = NULL;
    int done = 0, st;
    size_t n = strlen(asked);
    if (!n || asked[n - 1] == '/' || !(idx = with_index(asked, r->web->cfg.index_suffix, 1)))
        return 0;
    if ((st = object_state(r, idx, &red)) == OBJ_PENDING)
        done = -1;
    else if (st == OBJ_FOUND && (loc = malloc(3 * n + 3))) {
        loc[0] = '/';
        size_t w = cm_url_encode(asked, n, 1, loc + 1, 3 * n + 1);
        if (w != (size_t)-1) {
            memcpy(loc + 1 + w, "/", 2);
            redirect_to(r, 302, loc);
            done = 1;
        }
    }
    free(red);
    free(idx);
    free(loc);
    return done;
}

static void serve(gw_req *r);
static void missing(gw_req *r);

/* Loop: a record the decision wanted was read (gw_known_fetch); take the step again. */
static void serve_again(gw_req *r)
{
    if (r->meta_err != CM_OK)
        page(r, gw_s3err_from_cm(r->meta_err), NULL);
    else
        serve(r);
}

static void missing_again(gw_req *r)
{
    if (r->meta_err != CM_OK)
        page(r, gw_s3err_from_cm(r->meta_err), NULL);
    else
        missing(r);
}

/* The key is not there: a directory's redirect, else 404 or 403 (S3's rule). */
static void missing(gw_req *r)
{
    int d = directory_redirect(r);
    if (d < 0)
        gw_known_fetch(r, missing_again);
    else if (d == 0 && gw_authz_anonymous(r, NULL, "s3:ListBucket") == 1)
        gw_error(r, GW_NO_SUCH_KEY, NULL);
    else if (d == 0)
        gw_error(r, GW_ACCESS_DENIED, NULL);
}

/* Serve r->web->key: its redirect, its body (as GetObject answers), or the error. */
static void serve(gw_req *r)
{
    char *red = NULL;
    int st = object_state(r, r->web->key, &red);
    if (st == OBJ_PENDING)
        gw_known_fetch(r, serve_again);
    else if (st == OBJ_FOUND && red)
        redirect_to(r, 301, red);
    else if (st == OBJ_FOUND)
        gw_object_serve(r, r->web->key, 0);
    else if (st == OBJ_FAILED)
        page(r, GW_INTERNAL, NULL);
    else if (st == OBJ_MISSING)
        missing(r);
    else
        gw_error(r, GW_ACCESS_DENIED, NULL);
    free(red);
}

/* The error document for the error r->web->err, when anonymous may read it: 1 answered (or its
 * record is being read), 0 when there is none to serve. */
static int error_document(gw_req *r);

static void error_document_again(gw_req *r)
{
    if (r->meta_err != CM_OK || !error_document(r))
        gw_error(r, r->web->err, r->web->message); /* r->website is 2: the page */
}

static int error_document(gw_req *r)
{
    char *red = NULL;
    int st = object_state(r, r->web->cfg.error_key, &red);
    free(red);
    if (st == OBJ_PENDING) {
        gw_known_fetch(r, error_document_again);
        return 1;
    }
    if (st != OBJ_FOUND)
        return 0;
    gw_object_serve(r, r->web->cfg.error_key, gw_s3err_status(r->web->err));
    return 1;
}

int gw_website_error(gw_req *r, gw_s3err e, const char *message)
{
    int status = gw_s3err_status(e);
    r->website = 2; /* from here on, errors are pages */
    if (!r->web)
        return 0;
    const gw_web_rule *rule = gw_web_match(&r->web->cfg, r->web->asked, status);
    if (rule && rule->error_code) {
        redirect(r, rule);
        return 1;
    }
    if (!r->web->cfg.error_key || (status != 403 && status != 404))
        return 0;
    r->web->err = e; /* kept for the page, should the document be missing */
    free(r->web->message);
    r->web->message = message ? strdup(message) : NULL;
    return error_document(r);
}

void gw_website_request(gw_req *r)
{
    const char *m = net_req_method(r->net);
    md_bucket b;
    char *xml = NULL, msg[200];
    size_t len = 0;

    r->q.n = 0; /* website requests carry no subresources: their query is ignored, as in S3 */
    if (strcmp(m, "GET") != 0 && !r->head) {
        page(r, GW_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    if (!gw_bdoc_served(r->g, &gw_bdoc_website)) {
        page(r, GW_UNSUPPORTED, "Website hosting is not available on this cluster node");
        return;
    }
    cm_err err = gw_bucket_name_check(r->bucket) != GW_OK ? CM_ERR_NOTFOUND
                                                          : md_bucket_get(r->g->md, r->bucket, &b);
    if (err == CM_OK)
        err = gw_bdoc_fetch(r->g, &gw_bdoc_website, r->bucket, &xml, &len);
    if (err != CM_OK) {
        page(r, err == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(err), NULL);
        return;
    }
    if (!xml) {
        page(r, GW_NO_SUCH_WEBSITE, NULL);
        return;
    }
    gw_web_state *ws = calloc(1, sizeof(*ws));
    if (!ws || !(ws->asked = strdup(r->key ? r->key : ""))) {
        free(ws);
        free(xml);
        page(r, GW_INTERNAL, NULL);
        return;
    }
    r->web = ws;
    gw_s3err e = gw_parse_website(xml, len, SIZE_MAX, &ws->cfg, msg, sizeof(msg));
    free(xml);
    if (e != GW_OK) {
        page(r, GW_INTERNAL, "The stored website configuration does not parse");
        return;
    }
    const gw_web_rule *rule = NULL;
    if (ws->cfg.redirect_host || (rule = gw_web_match(&ws->cfg, ws->asked, 0))) {
        redirect(r, rule);
        return;
    }
    size_t n = strlen(ws->asked);
    ws->key = n == 0 || ws->asked[n - 1] == '/' ? with_index(ws->asked, ws->cfg.index_suffix, 0)
                                                : strdup(ws->asked);
    if (!ws->key) {
        page(r, GW_INTERNAL, NULL);
        return;
    }
    serve(r);
}

/* ---- Put/Get/DeleteBucketWebsite: gw_bdoc.c with gw_bdoc_website ---- */

void gw_op_bucket_website(gw_req *r)
{
    gw_op_bdoc(r, &gw_bdoc_website);
}
