/*
 * gw_corsops.c - CORS on the wire: Put/Get/DeleteBucketCors (?cors on a bucket), the OPTIONS
 * preflight, and the Access-Control-* headers of real responses (rules: gw_cors.h).
 *
 * The configuration is the XML document PutBucketCors accepted, kept in the bucket's record of
 * the local store (md_bucket_cors_set: one write op, on a worker; the subresource is gw_bdoc.c's,
 * shared with the website configuration). GetBucketCors answers it as stored. On a cluster node the
 * bucket namespace is etcd's and the local record a mirror, so it lives in the namespace instead
 * (gw_bucket_ns cors_set / cors_get: the bucket's entry of the etcd bucket document, changed by
 * compare-and-set on a worker, read from the node's copy of that document, so evaluating a request
 * never waits on etcd). A cluster node without such a namespace answers Put/DeleteBucketCors with
 * 501 NotImplemented and sends no CORS headers.
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
 * under one mutex, each with the document it was parsed from. On a single node every change is
 * this node's (Put/DeleteBucketCors, DeleteBucket) and bumps the table's generation after its
 * commit, which invalidates every entry; a load that raced a change (generation moved while it
 * read the store) is used once and not kept. On a cluster node other nodes change documents too:
 * an entry is used while the namespace's copy of the document is the one it was parsed from (a
 * copy and a compare per request with an Origin). Evaluation runs under the mutex on the cached
 * rules and copies out only the answer's strings.
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
    char *xml;    /* the document cfg was parsed from (NULL: none) */
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
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        gw_cors_config_release(&c->slots[i].cfg);
        free(c->slots[i].xml);
    }
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

/* The bucket's document (*xml heap; NULL: none, also for a bucket that is gone): from the
 * namespace's memory on a cluster node, else a read of the local store (blocking, short). */
static cm_err fetch(gw *g, const char *bucket, char **xml)
{
    size_t len;
    cm_err err = gw_bdoc_fetch(g, &gw_bdoc_cors, bucket, xml, &len);
    return err == CM_ERR_NOTFOUND ? CM_OK : err;
}

static int same_doc(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Match under the cache's mutex or on a private copy: 1 with *out filled, or 0. */
static int answer(const gw_cors_config *cfg, const char *origin, const char *method,
                  const char *req_headers, gw_cors_answer *out)
{
    const gw_cors_rule *rule = gw_cors_match(cfg, origin, method, req_headers);
    return rule && gw_cors_answer_make(rule, origin, req_headers, out) == CM_OK;
}

/*
 * Evaluate a request against the bucket's rules: 1 and *out filled when a rule allows it, 0 when
 * none does (or the bucket has no configuration), -1 when the store failed. A cached entry is
 * good while the table's generation has not moved (a single node: every change is this node's);
 * on a cluster node, where other nodes change configurations, while the namespace's document is
 * the one it was parsed from (a copy from memory per request with an Origin).
 */
static int evaluate(gw_req *r, const char *origin, const char *method, const char *req_headers,
                    gw_cors_answer *out)
{
    gw_cors_cache *c = r->g->cors;
    cors_slot *s = &c->slots[slot_of(r->bucket)];
    int remote = gw_cluster_node(r->g), found;
    gw_cors_config fresh = {0};
    char *xml = NULL, msg[160];

    if (remote && fetch(r->g, r->bucket, &xml) != CM_OK)
        return -1;
    pthread_mutex_lock(&c->mu);
    if (s->gen && strcmp(s->name, r->bucket) == 0 &&
        (remote ? same_doc(s->xml, xml) : s->gen == c->gen)) {
        found = answer(&s->cfg, origin, method, req_headers, out);
        pthread_mutex_unlock(&c->mu);
        free(xml);
        return found;
    }
    uint64_t gen = c->gen;
    pthread_mutex_unlock(&c->mu);

    if (!remote && fetch(r->g, r->bucket, &xml) != CM_OK)
        return -1;
    if (xml && gw_parse_cors(xml, strlen(xml), SIZE_MAX, &fresh, msg, sizeof(msg)) != GW_OK) {
        CM_ERROR(MOD, "bucket %s: the stored CORS configuration does not parse", r->bucket);
        free(xml);
        return -1;
    }
    found = answer(&fresh, origin, method, req_headers, out);
    pthread_mutex_lock(&c->mu);
    if (c->gen == gen) { /* no change of this node raced the load: keep it */
        gw_cors_config_release(&s->cfg);
        free(s->xml);
        s->cfg = fresh;
        s->xml = xml;
        s->gen = gen;
        snprintf(s->name, sizeof(s->name), "%s", r->bucket);
        memset(&fresh, 0, sizeof(fresh));
        xml = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    gw_cors_config_release(&fresh);
    free(xml);
    return found;
}

/* CORS applies: a single node, or a cluster node whose namespace keeps configurations. */
static int cors_served(const gw *g)
{
    return gw_bdoc_served(g, &gw_bdoc_cors);
}

void gw_cors_request(gw_req *r)
{
    const char *origin = gw_hdr(r, "origin");
    gw_cors_answer a;
    if (!origin || !r->bucket[0] || !cors_served(r->g) || gw_bucket_name_check(r->bucket) != GW_OK)
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
    if (r->bucket[0] && gw_bucket_name_check(r->bucket) == GW_OK && cors_served(r->g))
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

/* ---- Put/Get/DeleteBucketCors: gw_bdoc.c with gw_bdoc_cors ---- */

void gw_op_bucket_cors(gw_req *r)
{
    gw_op_bdoc(r, &gw_bdoc_cors);
}
