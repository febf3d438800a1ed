/*
 * gw_server.c - the gateway's request pipeline: routing, authentication, error responses and the
 * body pipeline that every writing operation shares.
 *
 * Phases of a request, on the event loop thread that owns its connection:
 *
 * - on_request: health checks; parse the target; find bucket and key (path style, or
 *   virtual-hosted "<bucket>.<domain>"; a Host "<bucket>.<website_domain>" makes it a website
 *   request, answered by gw_website.c after the CORS evaluation, never authenticated); answer an
 *   OPTIONS preflight, unauthenticated as in S3,
 *   and evaluate an Origin header against the bucket's CORS rules (gw_corsops.c); route a
 *   multipart/form-data POST to a bucket (POST Object, gw_post.c: its form's signed policy
 *   authenticates it, not its headers); authenticate (SigV4 or SigV2, header or presigned; root
 *   or a user's key; an unsigned request is the anonymous principal); refuse headers that ask
 *   for what cairn does not do (gw_refuse.c); dispatch: authorize (gw_authz.c: owner, bucket
 *   policy, ACLs; AccessDenied before any body is read), then the operation's start function (in
 *   cluster mode, a bucket this node does not know yet is first looked up in the cluster's
 *   namespace on a worker: gw_bucket_resolve).
 * - on_body: payload bytes go through the aws-chunked decoder when streamed (a POST Object's
 *   through its form parser, gw_post_feed, which yields the file's bytes), then the running
 *   hashes (MD5 for the ETag and Content-MD5, SHA-256 when the payload hash was signed, the
 *   x-amz-checksum algorithm), then the sink (memory for XML; inline buffer, then the erasure
 *   writer, for data). The data sink never waits: ob_writer_write_some takes what fits, and when
 *   a cluster-mode writer's window of stripes in flight is full, or a compressing writer's frames
 *   are all on the workers (CM_AGAIN), the request pauses its
 *   body (net_req_pause_body: no on_body, the socket read at most to read_high_water) and
 *   ob_writer_on_room resumes it on this
 *   loop; only the bytes the sink took are hashed, the rest stay buffered. A plain data body's
 *   MD5 (when cm_md5 has its SIMD lanes) runs later in the same loop turn, with the other bodies'
 *   (gw_md5.c): the bytes the sink took stay in the body buffer, the body paused, until the loop's
 *   batch has hashed and drained them. Dropping the writer
 *   (error, on_done) cancels a pending notice. An uncompressed single-node body is always taken
 *   whole.
 *   An encrypted body goes to the writer sealed, never inline (gw_sse.c); its
 *   last segment is sealed by gw_body_seal.
 * - on_body_end: length, chunk framing, payload hash, Content-MD5 and checksum are checked before
 *   anything is committed; then the operation's finish function runs. Writes hand their blocking
 *   end (fdatasync of the data, the metadata commit) to a worker (gw_pool.c) and answer when it
 *   comes back.
 * - on_drain: more of a streaming GET response.
 * - on_done: release everything; a data writer still open is aborted (its blobs queued for the
 *   drives' background deleters, ob.h: the loop never waits on a disk to free a request). A
 *   request a worker still holds is freed when the worker's job completes. First the request is
 *   counted for /metrics and its access-log line written (gw_stats.c).
 *
 * Memory per request: at most one stripe in the writer (a cluster-mode writer: its window of
 * stripes, ob.h), the inline buffer (inline_threshold), an XML body up to its cap, and one read
 * piece for GETs; never proportional to the object size.
 */
#include "gw_int.h"
#include "gw_cors.h"
#include "gw_refuse.h"
#include "gw_sse.h"
#include "gw_stats.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cm_log.h"
#include "cm_util.h"

#define MOD "gw"

void gw_config_defaults(gw_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->data_dir = "./cairn-data";
    cfg->region = "us-east-1";
    cfg->domain = "localhost";
    cfg->ndrives = 6;
    cfg->k = 4;
    cfg->m = 2;
    cfg->cell_size = 256 * 1024;
    cfg->inline_threshold = 64 * 1024;
    cfg->max_object_size = 5ULL << 30;
    cfg->workers = 64;
    cfg->meta_copies = 3;
    cfg->metrics_allow = "127.0.0.0/8,::1";
    cfg->workers_queue = 4096;
    cfg->compression = 1;
    cfg->compress_level = 1;
    cfg->post_fields_timeout_ms = 30000;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/*
 * The master key of encryption at rest (cm_mkey_load). A key that is configured (env or
 * master_key_file) but bad, or a default key file that exists but is bad (mode, content), stops
 * the start. A default key file that cannot be made or read (CM_ERR_IO: the data directory's
 * parent not writable, as under a hardened service unit) only turns SSE-S3 off: the server runs,
 * and SSE-S3 requests are refused (501) with a message saying what to set.
 */
static cm_err load_master_key(gw *g, const char *key_file)
{
    char why[300] = "";
    const char *env = getenv(CM_MKEY_ENV);
    int configured = (env && env[0]) || (key_file && key_file[0]);
    cm_err err = cm_mkey_load(&g->mkey, key_file, g->data_dir, why, sizeof(why));
    if (err == CM_OK) {
        g->have_mkey = 1;
        return CM_OK;
    }
    if (configured || err != CM_ERR_IO) {
        CM_ERROR(MOD, "master key for encryption at rest: %s", why);
        return err;
    }
    CM_WARN(MOD, "SSE-S3 is off: %s (set %s or [server] master_key_file)", why, CM_MKEY_ENV);
    return CM_OK;
}

cm_err gw_new(const gw_config *cfg, gw **out)
{
    cm_err err = CM_ERR_NOMEM;
    char path[4096];
    char *dirs[64] = {0};
    gw *g = calloc(1, sizeof(*g));

    if (!g)
        return CM_ERR_NOMEM;
    if (!cfg->access_key || !cfg->secret_key || cfg->ndrives < cfg->k + cfg->m ||
        cfg->ndrives > 64 || cfg->k < 1 || cfg->m < 0) {
        CM_ERROR(MOD, "invalid gateway configuration (credentials, drives %d, k %d, m %d)",
                 cfg->ndrives, cfg->k, cfg->m);
        free(g);
        return CM_ERR_INVAL;
    }
    g->cfg = *cfg;
    pthread_mutex_init(&g->cred_lock, NULL); /* before any failure: gw_free destroys it */
    g->data_dir = dup_or_null(cfg->data_dir);
    g->region = dup_or_null(cfg->region);
    g->domain = dup_or_null(cfg->domain);
    g->website_domain = strdup(cfg->website_domain ? cfg->website_domain : "");
    g->access_key = dup_or_null(cfg->access_key);
    g->secret_key = dup_or_null(cfg->secret_key);
    if (!g->data_dir || !g->region || !g->domain || !g->website_domain || !g->access_key ||
        !g->secret_key)
        goto fail;
    g->cfg.data_dir = g->data_dir;
    g->cfg.region = g->region;
    g->cfg.domain = g->domain;
    g->cfg.website_domain = g->website_domain;
    g->cfg.access_key = NULL; /* g->access_key, under cred_lock */
    g->cfg.secret_key = NULL;
    g->metrics_token = strdup(cfg->metrics_token ? cfg->metrics_token : "");
    g->cfg.metrics_token = g->cfg.metrics_allow = NULL; /* parsed below, owned copies */
    if (!g->metrics_token || gw_stats_new(&g->stats) != CM_OK ||
        cm_metrics_new(&g->metrics) != CM_OK)
        goto fail;
    if (cm_cidr_list_parse(cfg->metrics_allow ? cfg->metrics_allow : "", &g->metrics_allow) !=
        CM_OK) {
        CM_ERROR(MOD, "invalid metrics allow list '%s'", cfg->metrics_allow);
        err = CM_ERR_INVAL;
        goto fail;
    }
    g->cfg.master_key_file = NULL; /* borrowed: read here only */
    if ((err = load_master_key(g, cfg->master_key_file)) != CM_OK)
        goto fail;

    if ((err = gw_cors_cache_new(&g->cors)) != CM_OK)
        goto fail;
    if ((err = gw_pool_new(cfg->workers > 0 ? cfg->workers : 64,
                           cfg->workers_queue > 0 ? (size_t)cfg->workers_queue : 4096, &g->pool)) !=
        CM_OK)
        goto fail;
    g->have_format =
        cm_format_read(g->data_dir, CM_FORMAT_VERSION, &g->format, NULL, 0) == CM_OK; /* status */
    err = md_open_data(g->data_dir, cfg->ndrives, cfg->meta_copies, &g->md);
    if (err != CM_OK) {
        CM_ERROR(MOD, "cannot open the metadata store under %s: %s", g->data_dir, cm_err_str(err));
        goto fail;
    }
    for (int i = 0; i < cfg->ndrives; i++) {
        snprintf(path, sizeof(path), "%s/drive%d", g->data_dir, i);
        if (!(dirs[i] = strdup(path))) {
            err = CM_ERR_NOMEM;
            goto fail_dirs;
        }
    }
    ob_store_options so = {.k = cfg->k,
                           .m = cfg->m,
                           .cell_size = cfg->cell_size,
                           .compress_level = cfg->compression ? cfg->compress_level : 0,
                           .io = cfg->io};
    err = ob_store_open((const char *const *)dirs, cfg->ndrives, &so, &g->data);
    if (err != CM_OK) {
        CM_ERROR(MOD, "cannot open the drives under %s: %s", g->data_dir, cm_err_str(err));
        goto fail_dirs;
    }
    if (!(g->pcache = gw_pcache_new())) {
        err = CM_ERR_NOMEM;
        goto fail_dirs;
    }
    if ((err = gw_users_open(g)) != CM_OK) {
        CM_ERROR(MOD, "cannot load the users under %s: %s", g->data_dir, cm_err_str(err));
        goto fail_dirs;
    }
    for (int i = 0; i < cfg->ndrives; i++)
        free(dirs[i]);
    *out = g;
    return CM_OK;

fail_dirs:
    for (int i = 0; i < cfg->ndrives; i++)
        free(dirs[i]);
fail:
    gw_free(g);
    return err;
}

void gw_free(gw *g)
{
    if (!g)
        return;
    gw_pool_free(g->pool);    /* first: jobs use the stores */
    gw_get_buffers_release(); /* the main thread ran a loop: its pool of GET buffers */
    ob_store_close(g->data);  /* deletes the lease leftovers first */
    md_close(g->md);
    gw_cors_cache_free(g->cors);
    gw_users_close(g->users);
    cm_mkey_wipe(&g->mkey); /* SSE's and the users' master key */
    gw_pcache_free(g->pcache);
    free(g->data_dir);
    free(g->region);
    free(g->domain);
    free(g->website_domain);
    free(g->access_key);
    free(g->secret_key);
    free(g->metrics_token);
    gw_stats_free(g->stats);
    cm_metrics_free(g->metrics);
    pthread_mutex_destroy(&g->cred_lock);
    free(g);
}

ob_store *gw_object_store(gw *g)
{
    return g->data;
}

md_store *gw_meta_store(gw *g)
{
    return g->md;
}

cm_metrics *gw_metrics_registry(gw *g)
{
    return g->metrics;
}

void gw_set_access_log(gw *g, cm_alog *l)
{
    g->access_log = l;
}

void gw_quiesce(gw *g)
{
    if (g)
        gw_pool_stop(g->pool);
}

void gw_set_ready(gw *g, int ready)
{
    __atomic_store_n(&g->ready, ready, __ATOMIC_RELEASE);
}

void gw_set_ready_check(gw *g, gw_ready_fn fn, void *arg)
{
    g->ready_arg = arg;
    g->ready_fn = fn;
}

cm_err gw_set_credentials(gw *g, const char *access_key, const char *secret_key)
{
    char *ak = strdup(access_key), *sk = strdup(secret_key);
    if (!ak || !sk) {
        free(ak);
        free(sk);
        return CM_ERR_NOMEM;
    }
    pthread_mutex_lock(&g->cred_lock);
    char *old_ak = g->access_key, *old_sk = g->secret_key;
    g->access_key = ak;
    g->secret_key = sk;
    pthread_mutex_unlock(&g->cred_lock);
    free(old_ak);
    explicit_bzero(old_sk, strlen(old_sk));
    free(old_sk);
    return CM_OK;
}

/* ---- responses ---- */

const char *gw_hdr(gw_req *r, const char *name)
{
    return net_req_header(r->net, name);
}

void gw_resp_start(gw_req *r, int status, int64_t len)
{
    net_resp_start(r->net, status, len);
    net_resp_header(r->net, "Server", "cairn");
    net_resp_header(r->net, "x-amz-request-id", r->id);
    net_resp_header(r->net, "x-amz-id-2", r->id);
    gw_cors_headers(r); /* a CORS rule allowed the request (gw_corsops.c) */
    if (r->resp_version_id[0])
        net_resp_header(r->net, "x-amz-version-id", r->resp_version_id);
    if (r->resp_delete_marker)
        net_resp_header(r->net, "x-amz-delete-marker", "true");
}

void gw_resp_xml(gw_req *r, int status, struct evbuffer *buf)
{
    gw_resp_start(r, status, (int64_t)evbuffer_get_length(buf));
    net_resp_header(r->net, "Content-Type", "application/xml");
    net_resp_write_buffer(r->net, buf);
    net_resp_end(r->net);
}

static const char *resource_of(gw_req *r)
{
    return r->q.path ? r->q.path : "/";
}

void gw_error(gw_req *r, gw_s3err e, const char *message)
{
    int status = gw_s3err_status(e);
    if (r->failed)
        return;
    if (r->website == 1 && gw_website_error(r, e, message))
        return; /* a routing rule's redirect or the error document */
    r->failed = 1;
    r->s3err = e;
    if (r->writer) { /* its blobs are deleted when the request is freed, off the loop */
        r->has_layout = ob_writer_drop(r->writer, &r->layout); /* cancels a room notice */
        r->writer = NULL;
    }
    if (r->room_wait) { /* read (and drop) the rest of the body, as after any failure */
        r->room_wait = 0;
        net_req_resume_body(r->net);
    }
    if (status >= 500 || e == GW_SIGNATURE_MISMATCH)
        CM_INFO(MOD, "req=%s %s %s -> %d %s%s%s", r->id, net_req_method(r->net),
                net_req_target(r->net), status, gw_s3err_code(e), message ? ": " : "",
                message ? message : "");
    if (e == GW_NOT_MODIFIED || r->head) {
        /* No body: HEAD errors and 304 are told by the status alone. */
        gw_resp_start(r, status, r->head && e != GW_NOT_MODIFIED ? 0 : -1);
        if (e == GW_NOT_MODIFIED)
            net_resp_close_after(r->net); /* no length and no body: be explicit */
        net_resp_end(r->net);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    if (!buf) {
        net_req_abort(r->net);
        return;
    }
    if (r->website) { /* a website answers HTML pages */
        evbuffer_free(buf);
        gw_web_error_page(r, status, gw_s3err_code(e), message ? message : gw_s3err_message(e));
        return;
    }
    gw_xml_error(buf, e, message, resource_of(r), r->id);
    gw_resp_xml(r, status, buf);
    evbuffer_free(buf);
}

void gw_error_cm(gw_req *r, cm_err e)
{
    gw_error(r, gw_s3err_from_cm(e), e == CM_ERR_LOCKED ? GW_LOCKED_MSG : NULL);
}

int gw_bucket_check(gw_req *r, const char *bucket)
{
    md_bucket b;
    return gw_bucket_fetch(r, bucket, &b);
}

int gw_bucket_fetch(gw_req *r, const char *bucket, md_bucket *b)
{
    cm_err err = md_bucket_get(r->g->md, bucket, b);
    if (err == CM_OK)
        return 1;
    if (err == CM_ERR_NOTFOUND)
        gw_error(r, GW_NO_SUCH_BUCKET, NULL);
    else
        gw_error_cm(r, err); /* the metadata store failed: never pretend the bucket is gone */
    return 0;
}

/* ---- routing ---- */

cm_err gw_lookup_secret(void *arg, const char *access_key, char *secret, size_t cap)
{
    gw *g = arg;
    cm_err e = CM_OK;
    pthread_mutex_lock(&g->cred_lock); /* a SIGHUP may swap the pair (gw_set_credentials) */
    size_t n = strlen(g->secret_key);
    if (strcmp(access_key, g->access_key) != 0)
        e = CM_ERR_NOTFOUND;
    else if (n + 1 > cap)
        e = CM_ERR_TOOBIG;
    else
        memcpy(secret, g->secret_key, n + 1);
    pthread_mutex_unlock(&g->cred_lock);
    return e;
}

int gw_is_root_key(gw *g, const char *access_key)
{
    pthread_mutex_lock(&g->cred_lock);
    int root = strcmp(access_key, g->access_key) == 0;
    pthread_mutex_unlock(&g->cred_lock);
    return root;
}

int gw_cluster_node(const gw *g)
{
    return g->rp != NULL || g->ns.create != NULL;
}

/*
 * Bucket from a virtual-hosted Host header ("<bucket>.<domain>[:port]"); 0 when the host is the
 * bare domain, an address, or another name (path style). domain: the S3 domain, or the website
 * domain (a website request).
 */
static int bucket_from_host(gw_req *r, const char *host, const char *domain)
{
    size_t dlen = strlen(domain);
    const char *colon = strrchr(host, ':');
    size_t hlen = colon && !strchr(colon, ']') ? (size_t)(colon - host) : strlen(host);

    if (hlen <= dlen + 1 || host[hlen - dlen - 1] != '.' ||
        strncasecmp(host + hlen - dlen, domain, dlen) != 0)
        return 0;
    size_t blen = hlen - dlen - 1;
    if (blen > MD_BUCKET_MAX)
        blen = MD_BUCKET_MAX + 1; /* keep it invalid: the name check rejects it */
    memcpy(r->bucket, host, CM_MIN(blen, MD_BUCKET_MAX));
    r->bucket[CM_MIN(blen, MD_BUCKET_MAX)] = '\0';
    return blen > MD_BUCKET_MAX ? -1 : 1;
}

/* Split the decoded path into bucket and key. Returns the S3 error for an impossible path. */
static gw_s3err split_path(gw_req *r)
{
    const char *p = r->q.path;
    const char *host = gw_hdr(r, "host");
    int vhost = 0;

    if (host && r->g->website_domain[0]) /* checked first: it may lie inside the S3 domain */
        r->website = vhost = bucket_from_host(r, host, r->g->website_domain);
    if (host && !vhost)
        vhost = bucket_from_host(r, host, r->g->domain);
    if (vhost < 0)
        return GW_INVALID_BUCKET_NAME;
    r->website = r->website > 0;
    r->vhost = vhost;
    if (*p == '/')
        p++;
    if (!vhost) {
        const char *slash = strchr(p, '/');
        size_t blen = slash ? (size_t)(slash - p) : strlen(p);
        if (blen > MD_BUCKET_MAX)
            return GW_INVALID_BUCKET_NAME;
        memcpy(r->bucket, p, blen);
        r->bucket[blen] = '\0';
        p = slash ? slash + 1 : p + blen;
    }
    if (*p == '\0')
        return GW_OK; /* "/", "/bucket" and "/bucket/" address no object */
    if (strlen(p) > MD_MAX_KEY)
        return GW_KEY_TOO_LONG;
    r->key = strdup(p);
    return r->key ? GW_OK : GW_INTERNAL;
}

/*
 * SDKs add "x-id=<Operation>" to some requests for their own telemetry; it names no
 * subresource, so it is dropped before routing (the signature was checked on the raw query).
 */
static void drop_sdk_params(gw_query *q)
{
    size_t j = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->params[i].name, "x-id") != 0)
            q->params[j++] = q->params[i];
    }
    q->n = j;
}

gw_s3err gw_authenticate(gw_req *r)
{
    size_t n = net_req_header_count(r->net);
    const char *names_inl[32], *values_inl[32]; /* the heap only for requests with many headers */
    const char **names = n < 32 ? names_inl : calloc(n + 1, sizeof(char *));
    const char **values = n < 32 ? values_inl : calloc(n + 1, sizeof(char *));
    gw_s3err e;

    if (!names || !values) {
        if (names != names_inl)
            free(names);
        if (values != values_inl)
            free(values);
        return GW_INTERNAL;
    }
    for (size_t i = 0; i < n; i++)
        net_req_header_at(r->net, i, &names[i], &values[i]);
    names[n] = values[n] = NULL;
    gw_auth_request ar = {.method = net_req_method(r->net),
                          .target = net_req_target(r->net),
                          .nheaders = n,
                          .names = names,
                          .values = values,
                          .now = time(NULL),
                          .vhost_bucket = r->vhost ? r->bucket : NULL,
                          .sigv2_off = r->g->cfg.sigv2_off};
    e = gw_auth_check(&ar, r->g->region, gw_users_secret, r->g, &r->auth);
    if (names != names_inl) {
        free(names);
        free(values);
    }
    if (e != GW_OK)
        return e;
    if (r->auth.anonymous) {
        r->principal = GW_PRIN_ANON;
        /* a cluster node without the namespace's access settings has nothing to open to them */
        return gw_cluster_node(r->g) && !r->g->ns.access_get ? GW_ACCESS_DENIED : GW_OK;
    }
    r->principal = gw_users_who(r->g, r->auth.access_key, r->user, sizeof(r->user));
    /* the key went away between the signature check and now (a concurrent disable) */
    return r->principal == GW_PRIN_NONE ? GW_INVALID_ACCESS_KEY : GW_OK;
}

static int health_check(gw_req *r)
{
    const char *t = net_req_target(r->net);
    if (strncmp(t, "/health/", 8) == 0)
        r->opk = GW_OP_Health;
    if (strcmp(t, "/health/live") == 0) {
        net_resp_simple(r->net, 200, "text/plain", "ok\n", 3);
        return 1;
    }
    if (strcmp(t, "/health/ready") == 0) {
        gw *g = r->g;
        char why[200];
        int online = ob_store_drives_online(g->data);
        if (md_check(g->md) != CM_OK)
            snprintf(why, sizeof(why), "metadata store failed: restart\n");
        else if (online < g->cfg.k) /* fewer than k: no stripe can be read or written */
            snprintf(why, sizeof(why), "drives: %d online, %d needed\n", online, g->cfg.k);
        else if (!__atomic_load_n(&g->ready, __ATOMIC_ACQUIRE))
            snprintf(why, sizeof(why), "not ready\n");
        else if (!g->ready_fn || g->ready_fn(g->ready_arg, why, sizeof(why) - 1))
            why[0] = '\0';
        else /* the check's reason, as one line */
            memcpy(why + strlen(why), "\n", 2);
        if (why[0])
            net_resp_simple(r->net, 503, "text/plain", why, strlen(why));
        else
            net_resp_simple(r->net, 200, "text/plain", "ready\n", 6);
        return 1;
    }
    return 0;
}

/* Route an authenticated request to its operation, once it is authorized (gw_authz.c). */
static void dispatch(gw_req *r)
{
    if (!gw_authorize(r, dispatch))
        return;
    if (!r->bucket[0])
        gw_op_list_buckets(r);
    else if (!r->key)
        gw_op_bucket(r);
    else
        gw_op_object(r);
}

static void on_request(net_req *nr, void *arg)
{
    gw *g = arg;
    gw_req *r = calloc(1, sizeof(*r));
    gw_s3err e;

    if (!r) {
        net_req_abort(nr);
        return;
    }
    r->g = g;
    r->net = nr;
    r->expect_len = -1;
    net_req_set_data(nr, r);
    uint64_t seq = __atomic_add_fetch(&g->req_seq, 1, __ATOMIC_RELAXED);
    uint8_t idb[8];
    cm_put_be64(idb, ((uint64_t)cm_now_ms() << 20) ^ seq);
    cm_hex_encode(idb, 8, r->id);
    gw_stats_begin(r);
    r->head = strcmp(net_req_method(nr), "HEAD") == 0;

    if (health_check(r) || gw_admin_route(r))
        return;
    const char *target = net_req_target(nr);
    if (gw_query_parse(&r->q, target, strlen(target)) != GW_OK) {
        gw_error(r, GW_INVALID_REQUEST, "The request URI could not be decoded");
        return;
    }
    drop_sdk_params(&r->q);
    if ((e = split_path(r)) != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    gw_stats_classify(r);
    if (strcmp(net_req_method(nr), "OPTIONS") == 0) { /* unauthenticated, as in S3 */
        gw_cors_preflight(r);
        return;
    }
    gw_cors_request(r); /* before authentication: its errors carry the headers too */
    if (r->website) {   /* anonymous, GET/HEAD, HTML errors (gw_website.c) */
        if (gw_pool_refuses(g->pool, g))
            gw_error(r, GW_SLOW_DOWN, NULL);
        else if (!gw_bucket_resolve(r, gw_website_request)) /* cluster mode: mirrored first */
            gw_website_request(r);
        return;
    }
    if (!r->key && r->q.n == 0 && strcmp(net_req_method(nr), "POST") == 0 &&
        gw_hdr(r, "content-type") &&
        strncasecmp(gw_hdr(r, "content-type"), "multipart/form-data", 19) == 0) {
        /* authenticated by its form's signed policy; cluster mode: the bucket resolved first */
        if (gw_pool_refuses(g->pool, g))
            gw_error(r, GW_SLOW_DOWN, NULL);
        else if (!gw_bucket_resolve(r, gw_op_post_object))
            gw_op_post_object(r);
        return;
    }
    if ((e = gw_authenticate(r)) != GW_OK) {
        gw_count(g, GW_CTR_AUTH_REFUSED);
        const char *msg = NULL;
        char buf[160];
        if (e == GW_AUTH_HEADER_MALFORMED) {
            snprintf(buf, sizeof(buf),
                     "The authorization header is malformed; the region must be '%s'", g->region);
            msg = buf;
        } else if (r->auth.message) {
            msg = r->auth.message;
        }
        if (r->auth.unsigned_header[0])
            CM_INFO(MOD, "req=%s refused: header %s is not signed", r->id, r->auth.unsigned_header);
        gw_error(r, e, msg);
        return;
    }
    CM_DEBUG(MOD, "req=%s %s %s bucket=%s key=%s", r->id, net_req_method(nr), net_req_target(nr),
             r->bucket, r->key ? r->key : "-");
    if (gw_refuse_request(r)) /* headers asking for what cairn does not do: 501, not ignored */
        return;
    if (gw_pool_refuses(g->pool, g)) { /* cluster mode, workers saturated (gw_pool.c) */
        gw_error(r, GW_SLOW_DOWN, NULL);
        return;
    }
    if (!gw_bucket_resolve(r, dispatch)) /* cluster mode: a bucket not mirrored here yet */
        dispatch(r);
}

/* ---- body pipeline ---- */

static int parse_checksum_headers(gw_req *r)
{
    static const char *const names[] = {"x-amz-checksum-crc32", "x-amz-checksum-crc32c",
                                        "x-amz-checksum-crc64nvme", "x-amz-checksum-sha1",
                                        "x-amz-checksum-sha256"};
    static const cm_ck_alg algs[] = {CM_CK_CRC32, CM_CK_CRC32C, CM_CK_CRC64NVME, CM_CK_SHA1,
                                     CM_CK_SHA256};
    const char *trailer = gw_hdr(r, "x-amz-trailer");
    int found = 0;

    for (size_t i = 0; i < CM_ARRAY_LEN(names); i++) {
        const char *v = gw_hdr(r, names[i]);
        int in_trailer = trailer && strcasecmp(trailer, names[i]) == 0;
        if (!v && !in_trailer)
            continue;
        if (found || (v && in_trailer)) {
            gw_error(r, GW_INVALID_REQUEST, "Expecting a single x-amz-checksum- header");
            return -1;
        }
        found = 1;
        r->ck_alg = algs[i];
        if (v) {
            snprintf(r->ck_want, sizeof(r->ck_want), "%s", v);
        } else {
            r->ck_trailer = names[i];
        }
    }
    if (!found) {
        /* S3 stores a checksum for every new object: the announced algorithm or CRC64NVME. */
        const char *sdk = gw_hdr(r, "x-amz-sdk-checksum-algorithm");
        r->ck_alg = CM_CK_CRC64NVME;
        if (sdk && cm_ck_parse(sdk, &r->ck_alg) != CM_OK) {
            gw_error(r, GW_INVALID_REQUEST, "Invalid x-amz-sdk-checksum-algorithm");
            return -1;
        }
    }
    if (cm_ck_init(&r->ck, r->ck_alg) != CM_OK) {
        gw_error(r, GW_INTERNAL, NULL);
        return -1;
    }
    r->ck_active = 1;
    return 0;
}

/* Common setup of a body: payload mode, announced length, Content-MD5, hashes. */
static int body_setup(gw_req *r, uint64_t max_len)
{
    const char *dcl = gw_hdr(r, "x-amz-decoded-content-length");
    const char *md5 = gw_hdr(r, "content-md5");
    int64_t cl = net_req_content_length(r->net);

    r->max_len = max_len;
    switch (r->auth.mode) {
    case GW_PAYLOAD_STREAMING_SIGNED:
    case GW_PAYLOAD_STREAMING_SIGNED_TRAILER:
    case GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER: {
        const char *tr = gw_hdr(r, "x-amz-trailer");
        if (gw_chunked_new(&r->auth, tr, &r->chunked) != CM_OK || !(r->decoded = evbuffer_new())) {
            gw_error(r, GW_INTERNAL, NULL);
            return -1;
        }
        if (dcl) {
            char *end;
            unsigned long long v = strtoull(dcl, &end, 10);
            if (*end || end == dcl) {
                gw_error(r, GW_INVALID_ARGUMENT, "Invalid x-amz-decoded-content-length");
                return -1;
            }
            r->expect_len = (int64_t)v;
        }
        break;
    }
    case GW_PAYLOAD_HASHED:
        r->hash_sha256 = 1;
        if (cm_ck_init(&r->sha256, CM_CK_SHA256) != CM_OK) {
            gw_error(r, GW_INTERNAL, NULL);
            return -1;
        }
        r->expect_len = cl;
        break;
    default:
        r->expect_len = cl;
        break;
    }
    if (r->expect_len >= 0 && (uint64_t)r->expect_len > max_len) {
        gw_error(r, GW_ENTITY_TOO_LARGE, NULL);
        return -1;
    }
    if (md5) {
        size_t n = 0;
        if (cm_base64_decode(md5, strlen(md5), r->want_md5, sizeof(r->want_md5), &n) != CM_OK ||
            n != 16) {
            gw_error(r, GW_INVALID_DIGEST, NULL);
            return -1;
        }
        r->have_md5 = 1;
    }
    if (cm_md5_init(&r->md5) != CM_OK) {
        gw_error(r, GW_INTERNAL, NULL);
        return -1;
    }
    return 0;
}

void gw_body_to_memory(gw_req *r, size_t cap, gw_finish_fn finish)
{
    /* A bucket-level XML body (DeleteObjects) may come with an x-amz-checksum-* of its bytes; on
     * CompleteMultipartUpload that header is the object's checksum, not the body's. */
    if (body_setup(r, cap) != 0 || (!r->key && parse_checksum_headers(r) != 0))
        return;
    if (!(r->mem = evbuffer_new())) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->mem_cap = cap;
    r->sink = GW_SINK_MEMORY;
    r->finish = finish;
    net_req_read_body(r->net);
}

void gw_body_to_data(gw_req *r, uint64_t max_len, gw_finish_fn finish)
{
    if (!gw_hdr(r, "content-length") && !net_req_chunked(r->net)) {
        gw_error(r, GW_MISSING_CONTENT_LENGTH, NULL);
        return;
    }
    if (body_setup(r, max_len) != 0 || parse_checksum_headers(r) != 0)
        return;
    if (!(r->inl = malloc(r->g->cfg.inline_threshold ? r->g->cfg.inline_threshold : 1))) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->sink = GW_SINK_DATA;
    r->finish = finish;
    net_req_read_body(r->net);
}

void gw_body_to_form(gw_req *r, uint64_t max_len, gw_finish_fn finish)
{
    r->auth.mode = GW_PAYLOAD_UNSIGNED; /* the form's policy is signed, not its body */
    if (body_setup(r, max_len) != 0 || parse_checksum_headers(r) != 0)
        return;
    r->expect_len = -1; /* Content-Length is the form's, not the file's */
    if (!(r->inl = malloc(r->g->cfg.inline_threshold ? r->g->cfg.inline_threshold : 1)) ||
        !(r->decoded = evbuffer_new())) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->sink = GW_SINK_DATA;
    r->finish = finish;
    net_req_read_body(r->net);
}

/* A data writer fed from this loop: its compression runs on the workers (docs/compression.md). */
static cm_err new_writer(gw_req *r)
{
    cm_err err = ob_writer_new(r->g->data, &r->writer);
    if (err == CM_OK)
        err = ob_writer_offload(r->writer, net_req_base(r->net), gw_pool_job, r->g->pool);
    return err;
}

/*
 * Offer n payload bytes to the data sink: the inline buffer first, the erasure writer beyond
 * (ob_writer_write_some, which never waits); *taken gets the bytes it took. CM_AGAIN: the writer's
 * window is full (cluster mode) or its frames are all compressing, offer the rest once it has room.
 * A body announced longer than the threshold goes to the writer from its first byte, so each of its
 * bytes is copied once (into the stripe buffer) rather than its head twice (docs/performance.md,
 * "Cluster": copies).
 */
static cm_err data_sink(gw_req *r, const uint8_t *p, size_t n, size_t *taken)
{
    size_t thr = r->g->cfg.inline_threshold;
    int big = r->expect_len >= 0 && (uint64_t)r->expect_len > thr;
    cm_err err;
    *taken = 0;
    if (r->sse && r->sse->enc) /* sealed segments, never inline (gw_sse.c) */
        return gw_sse_body_write(r, p, n, taken);
    if (!r->writer && !big && r->inl_len + n <= thr) {
        memcpy(r->inl + r->inl_len, p, n);
        r->inl_len += n;
        *taken = n;
        return CM_OK;
    }
    if (!r->writer && (err = new_writer(r)) != CM_OK)
        return err;
    if (r->inl_len) { /* the inline bytes go first, as far as the writer takes them */
        size_t k = 0;
        err = ob_writer_write_some(r->writer, r->inl, r->inl_len, &k);
        memmove(r->inl, r->inl + k, r->inl_len - k);
        r->inl_len -= k;
        if (err != CM_OK)
            return err;
    }
    return ob_writer_write_some(r->writer, p, n, taken);
}

static void room_ready(void *arg);

/* The writer is full: stop reading the body until it has room (room_ready resumes it). */
static void wait_for_room(gw_req *r)
{
    cm_err err = ob_writer_on_room(r->writer, net_req_base(r->net), room_ready, r);
    if (err != CM_OK) {
        gw_error_cm(r, err);
        return;
    }
    r->room_wait = 1;
    net_req_pause_body(r->net);
}

/*
 * Hand buf's bytes to the sink from its start without draining them; returns how many it took
 * (all unless it waits for room, r->room_wait, or failed). SHA-256 and the x-amz-checksum run
 * over them here, MD5 too unless defer_md5 (the caller has gw_md5.c hash them with other
 * requests' bytes).
 */
static size_t sink_take(gw_req *r, struct evbuffer *buf, int defer_md5)
{
    struct evbuffer_iovec vec[16];
    struct evbuffer_ptr pos;
    size_t used = 0;
    while (!r->failed && !r->room_wait && used < evbuffer_get_length(buf)) {
        if (evbuffer_ptr_set(buf, &pos, used, EVBUFFER_PTR_SET) != 0)
            break;
        int nv = evbuffer_peek(buf, -1, &pos, vec, 16);
        if (nv > 16)
            nv = 16;
        for (int i = 0; i < nv && !r->failed && !r->room_wait; i++) {
            const uint8_t *p = vec[i].iov_base;
            size_t n = vec[i].iov_len;
            if (r->body_len + n > r->max_len) {
                gw_error(r, r->sink == GW_SINK_MEMORY ? GW_MALFORMED_XML : GW_ENTITY_TOO_LARGE,
                         NULL);
                break;
            }
            if (r->sink == GW_SINK_MEMORY) {
                evbuffer_add(r->mem, p, n);
            } else if (r->sink == GW_SINK_DATA) {
                size_t took = 0;
                cm_err err = data_sink(r, p, n, &took);
                n = took;
                if (err == CM_AGAIN)
                    wait_for_room(r);
                else if (err != CM_OK)
                    gw_error_cm(r, err);
            }
            r->body_len += n;
            used += n;
            if (!defer_md5)
                cm_md5_update(&r->md5, p, n);
            if (r->hash_sha256)
                cm_ck_update(&r->sha256, p, n);
            if (r->ck_active)
                cm_ck_update(&r->ck, p, n);
        }
    }
    return used;
}

/*
 * Consume buf: hand its bytes to the sink, hash and drain what the sink took. Stops early, leaving
 * the rest in buf, when the data sink waits for room (r->room_wait).
 */
static void sink_consume(gw_req *r, struct evbuffer *buf)
{
    size_t used = sink_take(r, buf, 0);
    evbuffer_drain(buf, r->failed ? evbuffer_get_length(buf) : used);
}

/* The writer has room again (or failed: the next write says so). Runs on the request's loop. */
static void room_ready(void *arg)
{
    gw_req *r = arg;
    r->room_wait = 0;
    if (r->chunked || r->post) /* decoded bytes the writer did not take yet */
        sink_consume(r, r->decoded);
    if (!r->room_wait && !r->md5_wait) /* the MD5 batch resumes it once it has run */
        net_req_resume_body(r->net);   /* net hands on_body what it still buffers */
}

static void on_body(net_req *nr, struct evbuffer *body, void *arg)
{
    gw_req *r = net_req_data(nr);
    (void)arg;
    if (r->failed || r->sink == GW_SINK_NONE) {
        evbuffer_drain(body, evbuffer_get_length(body));
        return;
    }
    if (r->post) { /* a POST form: its file's bytes, once the policy allowed them */
        if (gw_post_feed(r, body) == 0)
            sink_consume(r, r->decoded);
        return;
    }
    if (r->chunked) {
        gw_s3err e = gw_chunked_feed(r->chunked, body, r->decoded);
        sink_consume(r, r->decoded);
        if (e != GW_OK) {
            gw_error(r, e, NULL);
            net_resp_close_after(nr); /* the client's framing is broken: do not read on */
        }
        return;
    }
    if (gw_md5_batched(r)) { /* hashed with the other bodies this loop turn brought */
        size_t used = sink_take(r, body, 1);
        if (r->failed)
            evbuffer_drain(body, evbuffer_get_length(body));
        else if (used)
            gw_md5_defer(r, body, used);
        return;
    }
    sink_consume(r, body);
}

static gw_s3err verify_body(gw_req *r)
{
    uint8_t d[CM_CK_MAX_DIGEST];

    if (r->chunked && !gw_chunked_done(r->chunked))
        return GW_INCOMPLETE_BODY;
    if (r->expect_len >= 0 && r->body_len != (uint64_t)r->expect_len)
        return GW_INCOMPLETE_BODY;
    cm_md5_final(&r->md5, r->md5_digest);
    if (r->hash_sha256) {
        char hex[65];
        cm_ck_final(&r->sha256, d);
        r->hash_sha256 = 0;
        cm_hex_encode(d, 32, hex);
        if (strcasecmp(hex, r->auth.payload_hash) != 0)
            return GW_SHA256_MISMATCH;
    }
    if (r->have_md5 && !cm_ct_equal(r->want_md5, r->md5_digest, 16))
        return GW_BAD_DIGEST;
    if (r->ck_active) {
        size_t n = cm_ck_len(r->ck_alg);
        cm_ck_final(&r->ck, d);
        r->ck_active = 0;
        cm_base64_encode(d, n, r->ck_value);
        const char *want = r->ck_want[0] ? r->ck_want : NULL;
        if (!want && r->ck_trailer && r->chunked)
            want = gw_chunked_trailer(r->chunked, r->ck_trailer);
        if (r->ck_trailer && !want)
            return GW_INVALID_REQUEST;
        if (want && strcmp(want, r->ck_value) != 0)
            return GW_BAD_DIGEST;
    }
    return GW_OK;
}

static void on_body_end(net_req *nr, void *arg)
{
    gw_req *r = net_req_data(nr);
    (void)arg;
    if (r->failed || r->sink == GW_SINK_NONE)
        return;
    if (r->sink == GW_SINK_DISCARD) {
        r->finish(r);
        return;
    }
    gw_s3err e = verify_body(r);
    if (e != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    r->finish(r);
}

cm_err gw_body_seal(gw_req *r)
{
    cm_err err = gw_sse_body_final(r); /* an encrypted body's last segment */
    if (err != CM_OK)
        return err;
    ob_writer *w = r->writer;
    if (!w)
        return CM_OK;
    r->writer = NULL; /* finish frees it whatever happens */
    err = ob_writer_finish(w, &r->layout);
    if (err == CM_OK)
        r->has_layout = 1;
    return err;
}

static void on_drain(net_req *nr, void *arg)
{
    gw_req *r = net_req_data(nr);
    (void)arg;
    if (r && r->drain)
        r->drain(r);
}

static void on_done(net_req *nr, int aborted, void *arg)
{
    gw_req *r = net_req_data(nr);
    (void)arg;
    if (!r)
        return;
    if (aborted)
        CM_DEBUG(MOD, "req=%s aborted%s", r->id, r->busy ? " while a worker holds it" : "");
    gw_stats_end(r);
    if (r->md5_wait)
        gw_md5_forget(r);
    r->net = NULL;
    if (r->busy)
        r->orphaned = 1; /* the worker's completion frees it */
    else
        gw_req_free(r);
}

/* Worker side of gw_req_free: wait for room in the drives' delete queues. */
static void delete_layout_work(gw_req *r)
{
    ob_delete(r->g->data, &r->layout);
    r->has_layout = 0;
}

void gw_req_free(gw_req *r)
{
    if (r->writer) {
        r->has_layout = ob_writer_drop(r->writer, &r->layout);
        r->writer = NULL;
    }
    /* Data that no metadata record took over: queued on the drives' deleters, never waited for
     * here (this runs on a loop); when a queue is full a worker waits for room instead. */
    if (r->has_layout && ob_delete_async(r->g->data, &r->layout) == CM_AGAIN) {
        gw_dispose(r, delete_layout_work);
        return;
    }
    r->has_layout = 0;
    gw_chunked_free(r->chunked);
    if (r->decoded)
        evbuffer_free(r->decoded);
    if (r->mem)
        evbuffer_free(r->mem);
    cm_md5_release(&r->md5);
    cm_ck_release(&r->sha256);
    cm_ck_release(&r->ck);
    free(r->inl);
    gw_sse_ctx_free(r->sse);
    if (r->leased)
        ob_lease_release(r->g->data, &r->obj);
    if (r->have_obj)
        md_object_release(&r->obj);
    if (r->op_free)
        r->op_free(r->op);
    gw_query_release(&r->q);
    gw_cors_answer_release(r->cors);
    free(r->cors);
    gw_post_free(r->post);
    gw_web_state_free(r->web);
    gw_known_free(r->known);
    free(r->key);
    free(r);
}

/* In cluster mode each loop reads the cells of its GETs itself (ob_store_loop_attach). */
static void on_loop_start(struct event_base *base, void *arg)
{
    gw *g = arg;
    cm_err e = ob_store_loop_attach(g->data, base);
    if (e != CM_OK)
        CM_WARN(MOD, "a loop's reads go through the cluster's loop: %s", cm_err_str(e));
}

static void on_loop_end(struct event_base *base, void *arg)
{
    gw *g = arg;
    ob_store_loop_detach(g->data, base);
}

static const net_handler handler = {
    .on_request = on_request,
    .on_body = on_body,
    .on_body_end = on_body_end,
    .on_drain = on_drain,
    .on_done = on_done,
    .on_loop_start = on_loop_start,
    .on_loop_end = on_loop_end,
};

const net_handler *gw_net_handler(void)
{
    return &handler;
}
