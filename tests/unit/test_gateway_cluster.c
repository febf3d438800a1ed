/*
 * test_gateway_cluster.c - the gateway's bucket namespace seam (gw_bucket_ns, cluster mode) in one
 * process: a real gateway on a loopback port, driven by SigV4-signed HTTP requests, with an
 * in-memory namespace standing in for etcd (so the cases are deterministic). A bucket the
 * namespace knows but the local store does not (the watch has not delivered it) is looked up and
 * committed locally before the request is served; CreateBucket goes through the namespace (200,
 * 409 BucketAlreadyOwnedByYou outside us-east-1, 409 BucketAlreadyExists for another owner);
 * with the namespace down bucket changes get 503 ServiceUnavailable while objects are served;
 * DeleteBucket asks "empty cluster-wide?" (gw_bucket_empty: the local store, no replication here)
 * before removing; a mirrored removal keeps a bucket that still holds objects here, and one of an
 * older incarnation leaves a re-created bucket alone. Consistency modes: CreateBucket's
 * x-cairn-consistency reaches the namespace (a bad value is 400 and reaches nothing), HeadBucket
 * answers the namespace's mode, and a single node (no namespace) takes the header and answers
 * strong. A namespace without lifecycle functions (this one) has PutBucketLifecycle answered 501
 * saying so.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "cu_main.h"
#include "cu_s3.h"
#include "gw.h"
#include "gw_auth.h"
#include "md.h"

#define AK "CLUSTERTESTAK"
#define SK "cluster-test-secret"
#define REGION "eu-west-1"

/* ---- the namespace (etcd's stand-in) ---- */

typedef struct {
    pthread_mutex_t mu;
    md_bucket b[8];
    rp_consistency mode[8];
    int n;
    int down;          /* every call fails as etcd unreachable */
    cm_err remove_err; /* when set, what remove answers (e.g. lost every compare-and-set race) */
    int lookups, creates, removes;
    gw *g;
} fake_ns;

static int find(fake_ns *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->b[i].name, name) == 0)
            return i;
    return -1;
}

static cm_err ns_create(void *arg, const md_bucket *want, rp_consistency mode, md_bucket *have)
{
    fake_ns *f = arg;
    pthread_mutex_lock(&f->mu);
    int i = find(f, want->name);
    cm_err e = f->down ? CM_ERR_UNAVAILABLE : i >= 0 ? CM_ERR_EXISTS : CM_OK;
    if (e == CM_ERR_EXISTS)
        *have = f->b[i];
    else if (e == CM_OK && f->n < 8) {
        f->mode[f->n] = mode;
        f->b[f->n++] = *want;
    }
    f->creates++;
    pthread_mutex_unlock(&f->mu);
    return e;
}

static cm_err ns_remove(void *arg, const char *name)
{
    fake_ns *f = arg;
    pthread_mutex_lock(&f->mu);
    int i = find(f, name);
    cm_err e = f->down         ? CM_ERR_UNAVAILABLE
               : f->remove_err ? f->remove_err
               : i < 0         ? CM_ERR_NOTFOUND
                               : CM_OK;
    if (e == CM_OK) {
        f->mode[i] = f->mode[f->n - 1];
        f->b[i] = f->b[--f->n];
    }
    f->removes++;
    pthread_mutex_unlock(&f->mu);
    return e;
}

static cm_err ns_lookup(void *arg, const char *name, md_bucket *out)
{
    fake_ns *f = arg;
    pthread_mutex_lock(&f->mu);
    int i = find(f, name);
    if (i >= 0)
        *out = f->b[i];
    f->lookups++;
    pthread_mutex_unlock(&f->mu);
    return i >= 0 ? CM_OK : CM_ERR_NOTFOUND;
}

static cm_err ns_is_empty(void *arg, const char *name)
{
    return gw_bucket_empty(((fake_ns *)arg)->g, name);
}

static rp_consistency ns_consistency(void *arg, const char *name)
{
    fake_ns *f = arg;
    pthread_mutex_lock(&f->mu);
    int i = find(f, name);
    rp_consistency c = i >= 0 ? f->mode[i] : RP_STRONG;
    pthread_mutex_unlock(&f->mu);
    return c;
}

static int ns_has(fake_ns *f, const char *name)
{
    pthread_mutex_lock(&f->mu);
    int i = find(f, name);
    pthread_mutex_unlock(&f->mu);
    return i >= 0;
}

/* ---- a gateway on a loopback port (f NULL: a single node, no namespace) ---- */

typedef struct {
    gw *g;
    net_server *srv;
    pthread_t th;
    int port;
    const char *extra; /* one more header line ("name: value\r\n") for every call, or NULL */
} tserver;

static void *serve(void *arg)
{
    net_server_run(((tserver *)arg)->srv);
    return NULL;
}

static void server_start(tserver *s, fake_ns *f)
{
    static int started;
    char dir[512];
    gw_config gc;
    net_config nc;
    snprintf(dir, sizeof(dir), "%s/gw%d", cu_tmpdir(), started++); /* a new store each time */
    CU_ASSERT_FATAL(cu_gw_config(&gc, dir, REGION, AK, SK) == 0);
    gc.ndrives = 3, gc.k = 2, gc.m = 1;
    gc.workers = 2;
    CU_ASSERT_EQUAL_FATAL(gw_new(&gc, &s->g), CM_OK);
    if (f)
        f->g = s->g;
    gw_bucket_ns ns = {.create = ns_create,
                       .remove = ns_remove,
                       .lookup = ns_lookup,
                       .is_empty = ns_is_empty,
                       .arg = f,
                       .consistency = ns_consistency};
    if (f)
        gw_set_bucket_ns(s->g, &ns);
    s->extra = NULL;
    net_config_defaults(&nc);
    nc.port = 0;
    nc.threads = 1;
    CU_ASSERT_EQUAL_FATAL(net_server_new(&nc, gw_net_handler(), s->g, &s->srv), CM_OK);
    s->port = net_server_port(s->srv);
    gw_set_ready(s->g, 1);
    pthread_create(&s->th, NULL, serve, s);
}

static void server_stop(tserver *s)
{
    net_server_stop(s->srv, 1000);
    pthread_join(s->th, NULL);
    gw_quiesce(s->g);
    net_server_free(s->srv);
    gw_free(s->g);
}

/* ---- a signed request ---- */

/* Send method target (path[?query]) with body; the status, the body start in out (cap bytes). */
static int call(const tserver *s, const char *method, const char *target, const char *body,
                char *out, size_t cap)
{
    char req[2048];
    size_t blen = body ? strlen(body) : 0;
    cu_s3_req q = {method, target, s->port, REGION, AK, SK, NULL, blen, -1, s->extra};
    int n = cu_s3_head(&q, req, sizeof(req));
    CU_ASSERT_FATAL(n > 0 && (size_t)n + blen < sizeof(req));
    memcpy(req + n, body ? body : "", blen);
    n += (int)blen;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CU_ASSERT_FATAL(write(fd, req, (size_t)n) == n);
    return cu_s3_answer(fd, out, cap);
}

/* ---- the cases ---- */

static void test_namespace_seam(void)
{
    fake_ns f = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tserver s;
    char out[8192];
    md_bucket remote = {.created_ms = 1, .owner = AK},
              other = {.created_ms = 2, .owner = "SOMEONE"};
    snprintf(remote.name, sizeof(remote.name), "remote");
    snprintf(other.name, sizeof(other.name), "other");
    f.b[f.n++] = remote; /* in the namespace, not (yet) in the local store */
    f.b[f.n++] = other;
    server_start(&s, &f);

    /* looked up, committed here, then served; once here it is not asked again */
    CU_ASSERT_EQUAL(call(&s, "GET", "/remote?list-type=2", NULL, out, sizeof(out)), 200);
    CU_ASSERT_EQUAL(f.lookups, 1);
    CU_ASSERT_EQUAL(call(&s, "PUT", "/remote/k", "hello", out, sizeof(out)), 200);
    CU_ASSERT_EQUAL(call(&s, "GET", "/remote/k", NULL, out, sizeof(out)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\n\r\nhello"));
    CU_ASSERT_EQUAL(f.lookups, 1);
    CU_ASSERT_EQUAL(call(&s, "HEAD", "/nosuch", NULL, out, sizeof(out)), 404);
    CU_ASSERT_EQUAL(f.lookups, 2);

    /* CreateBucket through the namespace, with S3's answers for an existing name */
    CU_ASSERT_EQUAL(call(&s, "PUT", "/fresh", NULL, out, sizeof(out)), 200);
    CU_ASSERT(ns_has(&f, "fresh"));
    CU_ASSERT_EQUAL(call(&s, "PUT", "/fresh/k", "x", out, sizeof(out)), 200);
    CU_ASSERT_EQUAL(f.lookups, 2); /* committed locally by the create itself */
    CU_ASSERT_EQUAL(call(&s, "PUT", "/fresh", NULL, out, sizeof(out)), 409);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "<Code>BucketAlreadyOwnedByYou</Code>"));
    CU_ASSERT_EQUAL(call(&s, "PUT", "/other", NULL, out, sizeof(out)), 409);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "<Code>BucketAlreadyExists</Code>"));

    /* the namespace unreachable: bucket changes refused with 503, objects still served */
    f.down = 1;
    CU_ASSERT_EQUAL(call(&s, "PUT", "/during", NULL, out, sizeof(out)), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "<Code>ServiceUnavailable</Code>"));
    CU_ASSERT_EQUAL(call(&s, "DELETE", "/remote", NULL, out, sizeof(out)), 409); /* not empty */
    CU_ASSERT_EQUAL(call(&s, "DELETE", "/remote/k", NULL, out, sizeof(out)), 204);
    CU_ASSERT_EQUAL(call(&s, "DELETE", "/remote", NULL, out, sizeof(out)), 503);
    CU_ASSERT(ns_has(&f, "remote"));
    CU_ASSERT_EQUAL(call(&s, "GET", "/fresh/k", NULL, out, sizeof(out)), 200);
    f.down = 0;

    /* DeleteBucket: only an empty bucket leaves the namespace, then the local store */
    CU_ASSERT_EQUAL(call(&s, "DELETE", "/fresh", NULL, out, sizeof(out)), 409);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "<Code>BucketNotEmpty</Code>"));
    CU_ASSERT(ns_has(&f, "fresh"));
    CU_ASSERT_EQUAL(call(&s, "DELETE", "/fresh/k", NULL, out, sizeof(out)), 204);
    f.remove_err = CM_ERR_CONFLICT; /* the namespace kept changing: 503, not BucketNotEmpty */
    CU_ASSERT_EQUAL(call(&s, "DELETE", "/fresh", NULL, out, sizeof(out)), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "<Code>ServiceUnavailable</Code>"));
    f.remove_err = CM_OK;
    CU_ASSERT_EQUAL(call(&s, "DELETE", "/fresh", NULL, out, sizeof(out)), 204);
    CU_ASSERT(!ns_has(&f, "fresh"));
    CU_ASSERT_EQUAL(call(&s, "GET", "/fresh?list-type=2", NULL, out, sizeof(out)), 404);

    /* a removal mirrored from the namespace keeps a bucket holding objects here */
    CU_ASSERT_EQUAL(call(&s, "PUT", "/remote/kept", "y", out, sizeof(out)), 200);
    CU_ASSERT_EQUAL(gw_bucket_mirror_remove(s.g, "remote", remote.created_ms), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(call(&s, "GET", "/remote/kept", NULL, out, sizeof(out)), 200);
    CU_ASSERT_EQUAL(gw_bucket_mirror_remove(s.g, "gone-already", 0), CM_OK);
    /* a late removal of an older incarnation leaves the re-created bucket alone */
    CU_ASSERT_EQUAL(call(&s, "PUT", "/again", NULL, out, sizeof(out)), 200);
    CU_ASSERT_EQUAL(gw_bucket_mirror_remove(s.g, "again", 12345), CM_OK);
    CU_ASSERT_EQUAL(call(&s, "HEAD", "/again", NULL, out, sizeof(out)), 200);
    int asked = f.lookups;
    CU_ASSERT_EQUAL(gw_bucket_mirror_remove(s.g, "again", 0), CM_OK);
    CU_ASSERT_EQUAL(call(&s, "HEAD", "/again", NULL, out, sizeof(out)), 200); /* still there */
    CU_ASSERT_EQUAL(f.lookups, asked + 1); /* gone here, so asked for and committed again */
    server_stop(&s);
}

/* Create with s->extra as the only extra header; HEAD the bucket: its x-cairn-consistency. */
static const char *created_mode(tserver *s, const char *bucket, const char *header)
{
    char target[64], out[4096];
    snprintf(target, sizeof(target), "/%s", bucket);
    s->extra = header;
    int status = call(s, "PUT", target, NULL, out, sizeof(out));
    s->extra = NULL;
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_EQUAL(call(s, "HEAD", target, NULL, out, sizeof(out)), 200);
    return strstr(out, "\r\nx-cairn-consistency: available\r\n") ? "available"
           : strstr(out, "\r\nx-cairn-consistency: strong\r\n")  ? "strong"
                                                                 : "none";
}

/* A value that is not a mode: 400 InvalidArgument naming the header, and nothing created. */
static void bad_mode_refused(tserver *s, const char *bucket)
{
    char target[64], out[4096];
    snprintf(target, sizeof(target), "/%s", bucket);
    s->extra = "x-cairn-consistency: eventual\r\n";
    CU_ASSERT_EQUAL(call(s, "PUT", target, NULL, out, sizeof(out)), 400);
    s->extra = NULL;
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "<Code>InvalidArgument</Code>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "x-cairn-consistency must be strong or available"));
    CU_ASSERT_EQUAL(call(s, "HEAD", target, NULL, out, sizeof(out)), 404);
}

static void test_consistency(void)
{
    fake_ns f = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tserver s;
    server_start(&s, &f);
    CU_ASSERT_STRING_EQUAL(created_mode(&s, "fast", "x-cairn-consistency: available\r\n"),
                           "available");
    CU_ASSERT_EQUAL(f.mode[0], RP_AVAILABLE); /* the namespace got it with the record */
    CU_ASSERT_STRING_EQUAL(created_mode(&s, "safe", "x-cairn-consistency: strong\r\n"), "strong");
    CU_ASSERT_STRING_EQUAL(created_mode(&s, "plain", NULL), "strong");
    int creates = f.creates;
    bad_mode_refused(&s, "bad");
    CU_ASSERT_EQUAL(f.creates, creates); /* refused before the namespace was asked */
    /* HeadBucket answers what the namespace says now (an admin changed it) */
    char out[4096];
    pthread_mutex_lock(&f.mu);
    f.mode[0] = RP_STRONG;
    pthread_mutex_unlock(&f.mu);
    CU_ASSERT_EQUAL(call(&s, "HEAD", "/fast", NULL, out, sizeof(out)), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\nx-cairn-consistency: strong\r\n"));
    server_stop(&s);

    /* a single node: the header is checked, then has no effect; every bucket is strong */
    server_start(&s, NULL);
    CU_ASSERT_STRING_EQUAL(created_mode(&s, "one", "x-cairn-consistency: available\r\n"), "strong");
    CU_ASSERT_STRING_EQUAL(created_mode(&s, "two", NULL), "strong");
    bad_mode_refused(&s, "bad");
    server_stop(&s);
}

/* The fake namespace keeps no lifecycle configurations: PUT is 501, saying so (the Object Lock
 * refusals of such a gateway: test_gateway_refuse; a lock header would need signing here). */
static void test_namespace_without_lifecycle(void)
{
    fake_ns f = {.mu = PTHREAD_MUTEX_INITIALIZER};
    tserver s;
    char out[4096];
    server_start(&s, &f);
    CU_ASSERT_EQUAL(call(&s, "PUT", "/plain", NULL, out, sizeof(out)), 200);
    CU_ASSERT_EQUAL(
        call(&s, "PUT", "/plain?lifecycle", "<LifecycleConfiguration/>", out, sizeof(out)), 501);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "<Code>NotImplemented</Code>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Lifecycle configurations need a bucket namespace"));
    server_stop(&s);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"bucket namespace seam", test_namespace_seam},
        {"consistency header", test_consistency},
        {"namespace without lifecycle", test_namespace_without_lifecycle},
        {NULL, NULL},
    };
    cu_add_suite("gateway_cluster", tests);
}
