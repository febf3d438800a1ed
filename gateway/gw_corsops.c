/*
 * gw_corsops.c - CORS on the wire: Put/Get/DeleteBucketCors (?cors on a bucket), the OPTIONS
 * preflight, and the Access-Control-* headers of real responses (rules: gw_cors.h).
 *
 * The configuration is the XML document PutBucketCors accepted, kept in the bucket's record of
 * the local store (md_bucket_cors_set: one write op, on a worker). GetBucketCors answers it as
 * stored. On a cluster node the bucket namespace is etcd's and the local record a mirror, so
 * Put/DeleteBucketCors answer 501 NotImplemented there (GetBucketCors: NoSuchCORSConfiguration)
 * and no request gets CORS headers.
 *
 * Preflights (OPTIONS) are not authenticated, as in S3: the browser sends no credentials. The
 * rules are tried in order (gw_cors_match); a match answers 200 with the Access-Control-* headers,
 * anything else (no configuration, no bucket, no rule) 403 AccessForbidden. A real request that
 * carries an Origin header is evaluated when it arrives, before authentication, and when a rule
 * allows its origin and method every response to it, errors included, carries the headers
 * (gw_cors_headers, from gw_resp_start). A request without Origin costs one header lookup.
 *
 * Cache: parsing the document per request would cost more than the request, so parsed
 * configurations (or "none") are kept per bucket in a direct-mapped table of CACHE_SLOTS entries
 * under one mutex. Every change this node makes (Put/DeleteBucketCors, DeleteBucket) bumps the
 * table's generation after its commit, which invalidates every entry; a load that raced a change
 * (generation moved while it read the store) is used once and not kept. Evaluation runs under the
 * mutex on the cached rules and copies out only the answer's strings.
 */
#include "gw_cors.h"
#include "gw_int.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"

#define MOD "gw"
#define CACHE_SLOTS 256

typedef struct {
    char name[MD_BUCKET_MAX + 1];
    uint64_t gen; /* the cache's generation when loaded; 0: empty slot */
    gw_cors_config cfg;
} cors_slot;

struct gw_cors_cache {
    pthread_mutex_t mu;
    uint64_t gen; /* starts at 1 */
    cors_slot slots[CACHE_SLOTS];
};

cm_err gw_cors_cache_new(gw_cors_cache **out)
{
    gw_cors_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&c->mu, NULL);
    c->gen = 1;
    *out = c;
    return CM_OK;
}

void gw_cors_cache_free(gw_cors_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        gw_cors_config_release(&c->slots[i].cfg);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void gw_cors_invalidate(gw *g)
{
    pthread_mutex_lock(&g->cors->mu);
    g->cors->gen++;
    pthread_mutex_unlock(&g->cors->mu);
}

static size_t slot_of(const char *bucket)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = bucket; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h % CACHE_SLOTS;
}

/* Read and parse the bucket's configuration (none: an empty one). Blocking read of the store. */
static cm_err load(gw *g, const char *bucket, gw_cors_config *cfg)
{
    char *xml = NULL, msg[160];
    size_t len = 0;
    memset(cfg, 0, sizeof(*cfg));
    cm_err err = md_bucket_cors_get(g->md, bucket, &xml, &len);
    if (err == CM_ERR_NOTFOUND)
        return CM_OK;
    if (err == CM_OK && xml && gw_parse_cors(xml, len, SIZE_MAX, cfg, msg, sizeof(msg)) != GW_OK) {
        CM_ERROR(MOD, "bucket %s: the stored CORS configuration does not parse", bucket);
        err = CM_ERR_CORRUPT;
    }
    free(xml);
    return err;
}

/*
 * Evaluate a request against the bucket's rules: 1 and *out filled when a rule allows it, 0 when
 * none does (or the bucket has no configuration), -1 when the store failed.
 */
static int evaluate(gw_req *r, const char *origin, const char *method, const char *req_headers,
                    gw_cors_answer *out)
{
    gw_cors_cache *c = r->g->cors;
    cors_slot *s = &c->slots[slot_of(r->bucket)];
    gw_cors_config fresh;
    const gw_cors_rule *rule;
    int found;

    pthread_mutex_lock(&c->mu);
    if (s->gen == c->gen && strcmp(s->name, r->bucket) == 0) {
        rule = gw_cors_match(&s->cfg, origin, method, req_headers);
        found = rule && gw_cors_answer_make(rule, origin, req_headers, out) == CM_OK;
        pthread_mutex_unlock(&c->mu);
        return found;
    }
    uint64_t gen = c->gen;
    pthread_mutex_unlock(&c->mu);

    if (load(r->g, r->bucket, &fresh) != CM_OK)
        return -1;
    rule = gw_cors_match(&fresh, origin, method, req_headers);
    found = rule && gw_cors_answer_make(rule, origin, req_headers, out) == CM_OK;
    pthread_mutex_lock(&c->mu);
    if (c->gen == gen) { /* no change raced the load: keep it */
        gw_cors_config_release(&s->cfg);
        s->cfg = fresh;
        s->gen = gen;
        snprintf(s->name, sizeof(s->name), "%s", r->bucket);
        memset(&fresh, 0, sizeof(fresh));
    }
    pthread_mutex_unlock(&c->mu);
    gw_cors_config_release(&fresh);
    return found;
}

void gw_cors_request(gw_req *r)
{
    const char *origin = gw_hdr(r, "origin");
    gw_cors_answer a;
    if (!origin || !r->bucket[0] || gw_meta_remote(r->g) ||
        gw_bucket_name_check(r->bucket) != GW_OK)
        return;
    if (evaluate(r, origin, net_req_method(r->net), NULL, &a) != 1)
        return;
    if (!(r->cors = malloc(sizeof(*r->cors)))) {
        gw_cors_answer_release(&a);
        return;
    }
    *r->cors = a;
}

/* The Access-Control-* headers of a; allow_headers only on preflights. */
static void add_headers(gw_req *r, const gw_cors_answer *a)
{
    char age[24];
    net_resp_header(r->net, "Access-Control-Allow-Origin", a->allow_origin);
    if (a->allow_methods)
        net_resp_header(r->net, "Access-Control-Allow-Methods", a->allow_methods);
    if (a->allow_headers)
        net_resp_header(r->net, "Access-Control-Allow-Headers", a->allow_headers);
    if (a->expose)
        net_resp_header(r->net, "Access-Control-Expose-Headers", a->expose);
    if (a->max_age >= 0) {
        snprintf(age, sizeof(age), "%lld", (long long)a->max_age);
        net_resp_header(r->net, "Access-Control-Max-Age", age);
    }
    if (a->credentials)
        net_resp_header(r->net, "Access-Control-Allow-Credentials", "true");
    net_resp_header(r->net, "Vary",
                    "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
}

void gw_cors_headers(gw_req *r)
{
    if (r->cors)
        add_headers(r, r->cors);
}

void gw_cors_preflight(gw_req *r)
{
    const char *origin = gw_hdr(r, "origin");
    const char *method = gw_hdr(r, "access-control-request-method");
    const char *headers = gw_hdr(r, "access-control-request-headers");
    gw_cors_answer a;
    char msg[200];

    if (!origin) {
        gw_error(r, GW_BAD_REQUEST, "Insufficient information. Origin request header needed.");
        return;
    }
    if (!method || !gw_cors_method_bit(method)) {
        snprintf(msg, sizeof(msg), "Invalid Access-Control-Request-Method: %s",
                 method ? method : "null");
        gw_error(r, GW_BAD_REQUEST, msg);
        return;
    }
    int found = 0;
    if (r->bucket[0] && gw_bucket_name_check(r->bucket) == GW_OK && !gw_meta_remote(r->g))
        found = evaluate(r, origin, method, headers ? headers : "", &a);
    if (found < 0) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    if (!found) {
        gw_error(r, GW_CORS_FORBIDDEN, NULL);
        return;
    }
    gw_resp_start(r, 200, 0);
    add_headers(r, &a);
    net_resp_end(r->net);
    gw_cors_answer_release(&a);
}

/* ---- Put/Get/DeleteBucketCors ---- */

typedef struct {
    char *xml; /* PUT: the document to store; NULL: delete */
    size_t len;
    cm_err err;
} cors_state;

static void cors_state_free(void *p)
{
    cors_state *st = p;
    if (st)
        free(st->xml);
    free(st);
}

static void cors_set_work(gw_req *r)
{
    cors_state *st = r->op;
    st->err = md_bucket_cors_set(r->g->md, r->bucket, st->xml, st->len);
}

static void cors_set_done(gw_req *r)
{
    cors_state *st = r->op;
    gw_cors_invalidate(r->g); /* after the commit: a load from now on sees it */
    if (st->err != CM_OK) {
        gw_error(r, st->err == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(st->err),
                 NULL);
        return;
    }
    gw_resp_start(r, st->xml ? 200 : 204, st->xml ? 0 : -1);
    net_resp_end(r->net);
}

static void put_cors_finish(gw_req *r)
{
    size_t len = evbuffer_get_length(r->mem);
    gw_cors_config cfg;
    char msg[200];
    gw_s3err e = gw_parse_cors((const char *)evbuffer_pullup(r->mem, -1), len, GW_CORS_XML_CAP,
                               &cfg, msg, sizeof(msg));
    if (e != GW_OK) {
        gw_error(r, e, msg[0] ? msg : NULL);
        return;
    }
    gw_cors_config_release(&cfg);
    cors_state *st = calloc(1, sizeof(*st));
    if (!st || !(st->xml = malloc(len + 1))) {
        free(st);
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    evbuffer_remove(r->mem, st->xml, len);
    st->xml[len] = '\0';
    st->len = len;
    r->op = st;
    r->op_free = cors_state_free;
    gw_offload(r, cors_set_work, cors_set_done);
}

static void get_cors(gw_req *r)
{
    char *xml = NULL;
    size_t len = 0;
    cm_err err = md_bucket_cors_get(r->g->md, r->bucket, &xml, &len);
    struct evbuffer *buf = NULL;
    if (err != CM_OK)
        gw_error(r, err == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(err), NULL);
    else if (!xml)
        gw_error(r, GW_NO_SUCH_CORS, NULL);
    else if (!(buf = evbuffer_new()) || evbuffer_add(buf, xml, len) != 0)
        gw_error(r, GW_INTERNAL, NULL);
    else
        gw_resp_xml(r, 200, buf);
    if (buf)
        evbuffer_free(buf);
    free(xml);
}

void gw_op_bucket_cors(gw_req *r)
{
    const char *m = net_req_method(r->net);

    if (strcmp(m, "GET") == 0 || r->head) {
        get_cors(r); /* one read transaction: no worker needed */
        return;
    }
    if (strcmp(m, "PUT") != 0 && strcmp(m, "DELETE") != 0) {
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    if (gw_meta_remote(r->g)) {
        gw_error(r, GW_UNSUPPORTED, "CORS configurations are not available on cluster nodes yet");
        return;
    }
    if (strcmp(m, "DELETE") == 0) {
        gw_offload_state(r, sizeof(cors_state), cors_state_free, cors_set_work, cors_set_done);
        return;
    }
    /* S3 requires the body's Content-MD5 (or, from newer SDKs, an x-amz-checksum-*): the body
     * pipeline checks whichever is given. */
    if (!gw_checksum_given(r)) {
        gw_error(r, GW_INVALID_REQUEST, "Missing required header for this request: Content-MD5");
        return;
    }
    gw_body_to_memory(r, GW_CORS_XML_CAP, put_cors_finish);
}
