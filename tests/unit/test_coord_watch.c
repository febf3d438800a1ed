/*
 * test_coord_watch.c - coord/ when etcd fails: a watched document sees every version in order
 * and resumes after its etcd member restarts; while etcd is down calls time out with
 * CM_ERR_UNAVAILABLE and the cached document stays readable (in memory, and from its cache file
 * for a document opened during the outage; a damaged file is ignored); in a 3-member cluster a
 * client and a watch fail over from a dead or silent endpoint to a live one; a watch on a member
 * cut off from the majority ends instead of going quietly stale.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "cm_util.h"
#include "cu_etcd.h"
#include "cu_main.h"

/* What the watch callback saw, in order. */
typedef struct {
    pthread_mutex_t mu;
    int n;
    int64_t rev[64];
    char val[64][16];
} seen_t;

static void on_version(void *arg, const uint8_t *value, size_t len, int64_t mod_rev)
{
    seen_t *s = arg;
    pthread_mutex_lock(&s->mu);
    if (s->n < 64) {
        s->rev[s->n] = mod_rev;
        snprintf(s->val[s->n], sizeof(s->val[0]), "%.*s", value ? (int)len : 3,
                 value ? (const char *)value : "DEL");
        s->n++;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Wait until the callback saw want versions (10 s at most); returns how many it saw. */
static int wait_seen(seen_t *s, int want)
{
    int64_t t0 = cm_monotonic_ms();
    int n;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        n = s->n;
        pthread_mutex_unlock(&s->mu);
        if (n >= want || cm_monotonic_ms() - t0 > 10000)
            return n;
        usleep(20000);
    }
}

static void put_version(co_client *c, const char *key, const char *v, int64_t *rev)
{
    int64_t next;
    CU_ASSERT_EQUAL_FATAL(co_cas(c, key, v, strlen(v), *rev, 0, &next), CM_OK);
    *rev = next;
}

static void test_watch_resume_and_down(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    if (!cu_etcd_up(&e, 1, 500, &cfg, &c))
        return;
    const char *key = "/cairn/test/layout";
    char cache[300], bad[300];
    snprintf(cache, sizeof(cache), "%s/layout.cache", cu_tmpdir());
    snprintf(bad, sizeof(bad), "%s/bad.cache", cu_tmpdir());
    seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    co_doc *d = NULL;
    CU_ASSERT_FATAL(co_doc_open(&cfg, key, cache, on_version, &s, &d) == CM_OK);

    int64_t rev = 0;
    put_version(c, key, "v1", &rev);
    CU_ASSERT_EQUAL(wait_seen(&s, 1), 1);
    put_version(c, key, "v2", &rev);
    put_version(c, key, "v3", &rev);
    CU_ASSERT_EQUAL(wait_seen(&s, 3), 3);

    /* etcd dies: calls fail within the timeout, the cached version stays readable */
    cu_etcd_kill(&e, 0);
    int64_t t0 = cm_monotonic_ms(), dummy;
    co_kv kv;
    CU_ASSERT_EQUAL(co_get(c, key, &kv, NULL), CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(co_cas(c, key, "x", 1, rev, 0, &dummy), CM_ERR_UNAVAILABLE);
    CU_ASSERT(cm_monotonic_ms() - t0 < 2000);
    uint8_t *val = NULL;
    size_t len = 0;
    int64_t crev = 0;
    CU_ASSERT_EQUAL_FATAL(co_doc_cached(d, &val, &len, &crev), CM_OK);
    CU_ASSERT_EQUAL(len, 2);
    CU_ASSERT_EQUAL(memcmp(val, "v3", 2), 0);
    CU_ASSERT_EQUAL(crev, rev);
    free(val);
    for (int i = 0; i < 100 && co_doc_connected(d); i++)
        usleep(20000);
    CU_ASSERT(!co_doc_connected(d));

    /* a node restarted while etcd is down starts from its cache file; a damaged one is ignored */
    seen_t s3 = {.mu = PTHREAD_MUTEX_INITIALIZER};
    co_doc *d3 = NULL;
    CU_ASSERT_FATAL(co_doc_open(&cfg, key, cache, on_version, &s3, &d3) == CM_OK);
    CU_ASSERT_EQUAL(co_doc_wait(d3, 2000), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_doc_cached(d3, &val, &len, &crev), CM_OK);
    CU_ASSERT(len == 2 && memcmp(val, "v3", 2) == 0);
    CU_ASSERT_EQUAL(crev, rev);
    free(val);
    CU_ASSERT_EQUAL(wait_seen(&s3, 1), 1);
    CU_ASSERT_STRING_EQUAL(s3.val[0], "v3");
    co_doc_free(d3);
    FILE *f = fopen(bad, "wb");
    CU_ASSERT_FATAL(f != NULL);
    fwrite("cairndoc-not-really", 1, 19, f);
    fclose(f);
    CU_ASSERT_FATAL(co_doc_open(&cfg, key, bad, on_version, &s3, &d3) == CM_OK);
    CU_ASSERT_EQUAL(co_doc_wait(d3, 300), CM_ERR_TIMEOUT);
    CU_ASSERT_EQUAL(co_doc_cached(d3, &val, &len, &crev), CM_ERR_NOTFOUND);
    co_doc_free(d3);

    /* back again: versions written before the watch reconnects are delivered, in order */
    CU_ASSERT_FATAL(cu_etcd_restart(&e, 0) == 0);
    put_version(c, key, "v4", &rev);
    put_version(c, key, "v5", &rev);
    CU_ASSERT_EQUAL(co_delete(c, key, 0, NULL), CM_OK);
    rev = 0;
    put_version(c, key, "v6", &rev);
    CU_ASSERT_EQUAL(wait_seen(&s, 7), 7);
    const char *want[] = {"v1", "v2", "v3", "v4", "v5", "DEL", "v6"};
    pthread_mutex_lock(&s.mu);
    CU_ASSERT_EQUAL(s.n, 7);
    for (int i = 0; i < s.n && i < 7; i++) {
        CU_ASSERT_STRING_EQUAL(s.val[i], want[i]);
        if (i > 0)
            CU_ASSERT(s.rev[i] > s.rev[i - 1]);
    }
    CU_ASSERT_EQUAL(s.rev[6], rev);
    pthread_mutex_unlock(&s.mu);
    CU_ASSERT_EQUAL(co_doc_cached(d, &val, &len, &crev), CM_OK);
    CU_ASSERT_EQUAL(crev, rev);
    free(val);

    /* a document opened later starts from the current version */
    seen_t s2 = {.mu = PTHREAD_MUTEX_INITIALIZER};
    co_doc *d2 = NULL;
    CU_ASSERT_FATAL(co_doc_open(&cfg, key, NULL, on_version, &s2, &d2) == CM_OK);
    CU_ASSERT_EQUAL(wait_seen(&s2, 1), 1);
    CU_ASSERT_STRING_EQUAL(s2.val[0], "v6");
    co_doc_free(d2);
    co_doc_free(d);
    co_client_free(c);
    cu_etcd_stop(&e);
}

/*
 * A watch that resumes from a revision etcd has compacted away re-reads the key: the newest
 * version is delivered (the ones in between are gone). The member is moved to another client
 * port meanwhile, so that the watch cannot reconnect before the compaction.
 */
static void test_watch_after_compaction(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    if (!cu_etcd_up(&e, 1, 500, &cfg, &c))
        return;
    const char *key = "/t/compact/doc";
    seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    co_doc *d = NULL;
    int64_t rev = 0;
    put_version(c, key, "c1", &rev);
    CU_ASSERT_FATAL(co_doc_open(&cfg, key, NULL, on_version, &s, &d) == CM_OK);
    CU_ASSERT_EQUAL(wait_seen(&s, 1), 1);
    co_client_free(c);

    char saved[64];
    snprintf(saved, sizeof(saved), "%s", e.url[0]);
    int port = e.client_port[0];
    e.client_port[0] = cu_etcd_free_port();
    snprintf(e.url[0], sizeof(e.url[0]), "http://127.0.0.1:%d", e.client_port[0]);
    CU_ASSERT_FATAL(cu_etcd_restart(&e, 0) == 0); /* the watch still dials the old port */
    co_config moved;
    cu_etcd_config(&e, 500, &moved);
    CU_ASSERT_FATAL(co_client_new(&moved, &c) == CM_OK);
    put_version(c, key, "c2", &rev);
    put_version(c, key, "c3", &rev);
    CU_ASSERT_EQUAL(co_put(c, "/t/compact/other", "x", 1, 0, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_compact(c, rev + 1), CM_OK);
    co_kv kv;
    CU_ASSERT_EQUAL(co_get(c, key, &kv, NULL), CM_OK);
    co_kv_release(&kv);
    co_client_free(c);

    e.client_port[0] = port;
    snprintf(e.url[0], sizeof(e.url[0]), "%s", saved);
    CU_ASSERT_FATAL(cu_etcd_restart(&e, 0) == 0);
    CU_ASSERT_EQUAL(wait_seen(&s, 2), 2);
    usleep(300000); /* nothing more arrives */
    pthread_mutex_lock(&s.mu);
    CU_ASSERT_EQUAL(s.n, 2);
    CU_ASSERT_STRING_EQUAL(s.val[1], "c3"); /* c2 was compacted away */
    CU_ASSERT_EQUAL(s.rev[1], rev);
    pthread_mutex_unlock(&s.mu);
    co_doc_free(d);
    cu_etcd_stop(&e);
}

/* A listening socket that never accepts: connects succeed, requests are never answered. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void test_failover_three_members(void)
{
    cu_etcd e;
    co_config wcfg;
    co_client *c = NULL;
    if (!cu_etcd_up(&e, 3, 500, &wcfg, &c))
        return;
    co_client_free(c); /* this test's client starts with a silent endpoint */
    int sport = 0, sfd = silent_listener(&sport);
    CU_ASSERT_FATAL(sfd >= 0);
    char silent[64];
    snprintf(silent, sizeof(silent), "http://127.0.0.1:%d", sport);

    /* first endpoint silent: the first call times out on it and is served by the next one */
    co_config cfg = {
        .endpoints = {silent, e.url[0], e.url[1], e.url[2]}, .n_endpoints = 4, .timeout_ms = 500};
    CU_ASSERT_FATAL(co_client_new(&cfg, &c) == CM_OK);
    int64_t t0 = cm_monotonic_ms(), rev = 0;
    CU_ASSERT_EQUAL(co_put(c, "/t/f/a", "1", 1, 0, &rev), CM_OK);
    int64_t took = cm_monotonic_ms() - t0;
    CU_ASSERT(took >= 450 && took < 3000);
    CU_ASSERT_STRING_EQUAL(co_client_endpoint(c), e.url[0]);
    printf("\n  silent endpoint skipped after %lld ms (timeout 500 ms)\n", (long long)took);

    seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    co_doc *d = NULL;
    CU_ASSERT_FATAL(co_doc_open(&wcfg, "/t/f/a", NULL, on_version, &s, &d) == CM_OK);
    CU_ASSERT_EQUAL(wait_seen(&s, 1), 1);

    /* the member both use dies: writes go on through the others, the watch follows */
    cu_etcd_kill(&e, 0);
    t0 = cm_monotonic_ms();
    cm_err err;
    while ((err = co_cas(c, "/t/f/a", "2", 1, rev, 0, &rev)) != CM_OK &&
           cm_monotonic_ms() - t0 < 10000)
        usleep(100000); /* UNCERTAIN or UNAVAILABLE while the others elect a leader */
    CU_ASSERT_EQUAL(err, CM_OK);
    CU_ASSERT_STRING_NOT_EQUAL(co_client_endpoint(c), e.url[0]);
    printf("  write served by %s %lld ms after its member died\n", co_client_endpoint(c),
           (long long)(cm_monotonic_ms() - t0));
    CU_ASSERT_EQUAL(wait_seen(&s, 2), 2);
    CU_ASSERT_STRING_EQUAL(s.val[1], "2");
    CU_ASSERT_EQUAL(s.rev[1], rev);
    co_kv kv;
    CU_ASSERT_EQUAL_FATAL(co_get(c, "/t/f/a", &kv, NULL), CM_OK);
    CU_ASSERT_EQUAL(kv.mod_rev, rev);
    co_kv_release(&kv);

    /* quorum lost (2 of 3 down): calls fail with CM_ERR_UNAVAILABLE within the timeouts */
    cu_etcd_kill(&e, 1);
    t0 = cm_monotonic_ms();
    CU_ASSERT_EQUAL(co_get(c, "/t/f/a", &kv, NULL), CM_ERR_UNAVAILABLE);
    CU_ASSERT(cm_monotonic_ms() - t0 < 4 * 500 + 1000);
    uint8_t *val = NULL;
    size_t len;
    CU_ASSERT_EQUAL(co_doc_cached(d, &val, &len, NULL), CM_OK);
    CU_ASSERT(val && len == 1 && val[0] == '2');
    free(val);
    co_doc_free(d);
    co_client_free(c);
    close(sfd);
    cu_etcd_stop(&e);
}

/* A watch on a member cut off from the majority ends (require-leader) and comes back with it. */
static void test_watch_minority_member(void)
{
    cu_etcd e;
    co_config all;
    co_client *c = NULL;
    if (!cu_etcd_up(&e, 3, 500, &all, &c))
        return;
    co_config one = {.endpoints = {e.url[0]}, .n_endpoints = 1, .timeout_ms = 500};
    int64_t rev = 0;
    put_version(c, "/t/m/doc", "a", &rev);
    seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    co_doc *d = NULL;
    CU_ASSERT_FATAL(co_doc_open(&one, "/t/m/doc", NULL, on_version, &s, &d) == CM_OK);
    CU_ASSERT_EQUAL(wait_seen(&s, 1), 1);
    for (int i = 0; i < 100 && !co_doc_connected(d); i++)
        usleep(20000);
    CU_ASSERT_FATAL(co_doc_connected(d));

    cu_etcd_kill(&e, 1);
    cu_etcd_kill(&e, 2);
    int64_t t0 = cm_monotonic_ms();
    while (co_doc_connected(d) && cm_monotonic_ms() - t0 < 10000)
        usleep(50000);
    CU_ASSERT(!co_doc_connected(d));
    printf("\n  watch on a leaderless member ended after %lld ms\n",
           (long long)(cm_monotonic_ms() - t0));
    uint8_t *val = NULL;
    size_t len;
    CU_ASSERT_EQUAL(co_doc_cached(d, &val, &len, NULL), CM_OK);
    free(val);

    CU_ASSERT_FATAL(cu_etcd_restart(&e, 1) == 0); /* quorum back (members 0 and 1) */
    put_version(c, "/t/m/doc", "b", &rev);
    CU_ASSERT_EQUAL(wait_seen(&s, 2), 2);
    CU_ASSERT_STRING_EQUAL(s.val[1], "b");
    co_doc_free(d);
    co_client_free(c);
    cu_etcd_stop(&e);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"watch resumes after a restart; down etcd", test_watch_resume_and_down},
        {"watch resumes after a compaction", test_watch_after_compaction},
        {"failover in a 3-member cluster", test_failover_three_members},
        {"watch on a member without a leader", test_watch_minority_member},
        {NULL, NULL},
    };
    cu_add_suite("coord_watch", tests);
}
