/*
 * test_coord_http.c - coord/'s HTTP client against scripted fake etcd endpoints (threads on
 * loopback, no etcd needed): a compare-and-set whose answer is lost is CM_ERR_UNCERTAIN and never
 * sent to a second endpoint, a read is; answers split into 1-byte writes and chunks; one kept-alive
 * connection carries many requests; an idle connection the server closed is re-dialled without
 * turning a compare-and-set into an uncertain one; a stream line that never ends is refused at the
 * body limit. Also the key layout (co_key).
 */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "co.h"
#include "co_int.h"
#include "cu_main.h"

enum { ANSWER, DROP_REQUEST, ANSWER_THEN_CLOSE, ANSWER_CHUNKED_SLOW, STREAM_ENDLESS_LINE };

typedef struct {
    int mode;
    int lfd, port;
    pthread_t thread;
    atomic_int stop;
    atomic_int requests, connections;
    char url[64];
} fake;

static const char RANGE[] = "{\"header\":{\"revision\":\"7\"},\"kvs\":[{\"key\":\"L2s=\","
                            "\"create_revision\":\"5\",\"mod_revision\":\"6\",\"version\":\"2\","
                            "\"value\":\"aGVsbG8=\"}],\"count\":\"1\"}";
static const char TXN_OK[] = "{\"header\":{\"revision\":\"8\"},\"succeeded\":true,\"responses\":"
                             "[{\"response_put\":{\"header\":{\"revision\":\"8\"}}}]}";

static void send_str(int fd, const char *s, size_t len, int slow)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, s + off, slow ? 1 : len - off, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

static void answer(fake *f, int fd, const char *path)
{
    if (f->mode == STREAM_ENDLESS_LINE) { /* no length, not chunked: 80 MiB without a newline */
        static char block[1 << 16];
        memset(block, 'x', sizeof(block));
        send_str(fd, "HTTP/1.1 200 OK\r\n\r\n", 19, 0);
        for (int i = 0; i < 80 * 16 && !atomic_load(&f->stop); i++)
            send_str(fd, block, sizeof(block), 0);
        return;
    }
    const char *body = strstr(path, "/v3/kv/txn") == path ? TXN_OK : RANGE;
    size_t blen = strlen(body);
    char head[256];
    if (f->mode != ANSWER_CHUNKED_SLOW) {
        int n =
            snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", blen);
        send_str(fd, head, (size_t)n, 0);
        send_str(fd, body, blen, 0);
        return;
    }
    const char *h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    send_str(fd, h, strlen(h), 1);
    for (size_t off = 0; off < blen; off += 13) { /* chunks of 13 bytes, cut mid-token */
        size_t n = blen - off < 13 ? blen - off : 13;
        int hn = snprintf(head, sizeof(head), "%zx\r\n", n);
        send_str(fd, head, (size_t)hn, 1);
        send_str(fd, body + off, n, 1);
        send_str(fd, "\r\n", 2, 1);
    }
    send_str(fd, "0\r\n\r\n", 5, 1);
}

/* Serve one connection: read requests (head + Content-Length body) and act per mode. */
static void serve(fake *f, int fd)
{
    char buf[8192];
    size_t len = 0;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = recv(fd, buf + len, sizeof(buf) - len - 1, 0);
        if (r <= 0)
            return;
        len += (size_t)r;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n"), *cl = strcasestr(buf, "content-length:");
        if (!end || !cl || len < (size_t)(end + 4 - buf) + (size_t)atoi(cl + 15))
            continue;
        atomic_fetch_add(&f->requests, 1);
        if (f->mode == DROP_REQUEST)
            return;
        answer(f, fd, buf + 5);
        if (f->mode == ANSWER_THEN_CLOSE || f->mode == STREAM_ENDLESS_LINE)
            return;
        len = 0;
    }
}

static void *fake_thread(void *arg)
{
    fake *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {.fd = f->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add(&f->connections, 1);
        serve(f, fd);
        close(fd);
    }
    return NULL;
}

static void fake_start(fake *f, int mode)
{
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(f->lfd >= 0 && bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
                    listen(f->lfd, 8) == 0 &&
                    getsockname(f->lfd, (struct sockaddr *)&a, &alen) == 0);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", ntohs(a.sin_port));
    CU_ASSERT_FATAL(pthread_create(&f->thread, NULL, fake_thread, f) == 0);
}

static void fake_stop(fake *f)
{
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    close(f->lfd);
}

static co_client *client_for(fake *a, fake *b)
{
    co_config cfg = {
        .endpoints = {a->url, b ? b->url : NULL}, .n_endpoints = b ? 2 : 1, .timeout_ms = 1000};
    co_client *c = NULL;
    CU_ASSERT_FATAL(co_client_new(&cfg, &c) == CM_OK);
    return c;
}

static void test_lost_answer(void)
{
    fake drop, good;
    fake_start(&drop, DROP_REQUEST);
    fake_start(&good, ANSWER);
    co_client *c = client_for(&drop, &good);
    int64_t rev = 0;
    /* the transaction reached the first endpoint, which died: not re-sent to the second */
    CU_ASSERT_EQUAL(co_cas(c, "/k", "v", 1, 6, 0, &rev), CM_ERR_UNCERTAIN);
    CU_ASSERT_EQUAL(atomic_load(&drop.requests), 1);
    CU_ASSERT_EQUAL(atomic_load(&good.requests), 0);
    co_client_free(c);

    /* a read is simply asked again of the next endpoint */
    c = client_for(&drop, &good);
    co_kv kv;
    CU_ASSERT_EQUAL_FATAL(co_get(c, "/k", &kv, NULL), CM_OK);
    CU_ASSERT_EQUAL(kv.len, 5);
    CU_ASSERT_EQUAL(memcmp(kv.value, "hello", 5), 0);
    co_kv_release(&kv);
    CU_ASSERT_EQUAL(atomic_load(&drop.requests), 2);
    CU_ASSERT_EQUAL(atomic_load(&good.requests), 1);
    CU_ASSERT_STRING_EQUAL(co_client_endpoint(c), good.url);
    co_client_free(c);
    fake_stop(&drop);
    fake_stop(&good);
}

static void test_chunked_and_keepalive(void)
{
    fake f;
    fake_start(&f, ANSWER_CHUNKED_SLOW);
    co_client *c = client_for(&f, NULL);
    for (int i = 0; i < 3; i++) {
        co_kv kv;
        int64_t rev = 0;
        CU_ASSERT_EQUAL_FATAL(co_get(c, "/k", &kv, &rev), CM_OK);
        CU_ASSERT_STRING_EQUAL(kv.key, "/k");
        CU_ASSERT_EQUAL(memcmp(kv.value, "hello", 5), 0);
        CU_ASSERT_EQUAL(kv.create_rev, 5);
        CU_ASSERT_EQUAL(kv.mod_rev, 6);
        CU_ASSERT_EQUAL(kv.version, 2);
        CU_ASSERT_EQUAL(rev, 7);
        co_kv_release(&kv);
    }
    int64_t rev = 0;
    CU_ASSERT_EQUAL(co_cas(c, "/k", "v", 1, 6, 0, &rev), CM_OK);
    CU_ASSERT_EQUAL(rev, 8);
    CU_ASSERT_EQUAL(atomic_load(&f.requests), 4);
    CU_ASSERT_EQUAL(atomic_load(&f.connections), 1); /* one kept-alive connection */
    co_client_free(c);
    fake_stop(&f);
}

static void test_idle_close_is_not_uncertain(void)
{
    fake f;
    fake_start(&f, ANSWER_THEN_CLOSE);
    co_client *c = client_for(&f, NULL);
    co_kv kv;
    CU_ASSERT_EQUAL_FATAL(co_get(c, "/k", &kv, NULL), CM_OK);
    co_kv_release(&kv);
    usleep(100000); /* the server's close has arrived */
    int64_t rev = 0;
    CU_ASSERT_EQUAL(co_cas(c, "/k", "v", 1, 6, 0, &rev), CM_OK);
    CU_ASSERT_EQUAL(rev, 8);
    CU_ASSERT_EQUAL(atomic_load(&f.requests), 2);
    CU_ASSERT_EQUAL(atomic_load(&f.connections), 2);
    co_client_free(c);
    fake_stop(&f);
}

static int count_lines(void *arg, const char *line, size_t len)
{
    (void)line, (void)len;
    (*(int *)arg)++;
    return 0;
}

/* A stream answer without a length that never ends a line is refused once it passes the body
 * limit, rather than buffered whole (before, the stream kept all of it in memory). */
static void test_stream_line_bounded(void)
{
    fake f;
    fake_start(&f, STREAM_ENDLESS_LINE);
    co_config cfg = {.endpoints = {f.url}, .n_endpoints = 1, .timeout_ms = 2000};
    co_http *h = NULL;
    CU_ASSERT_EQUAL_FATAL(co_http_new(&cfg, &h), CM_OK);
    atomic_int stop = 0;
    int lines = 0;
    CU_ASSERT_EQUAL(co_http_stream(h, "/v3/watch", "{}", count_lines, &lines, &stop),
                    CM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(lines, 0);
    co_http_free(h);
    fake_stop(&f);
}

static void test_key_layout(void)
{
    char k[64];
    CU_ASSERT_EQUAL(co_key(k, sizeof(k), "prod-1", CO_KIND_LAYOUT, NULL), CM_OK);
    CU_ASSERT_STRING_EQUAL(k, "/cairn/prod-1/layout");
    CU_ASSERT_EQUAL(co_key(k, sizeof(k), "prod-1", CO_KIND_NODES, "n3"), CM_OK);
    CU_ASSERT_STRING_EQUAL(k, "/cairn/prod-1/nodes/n3");
    CU_ASSERT_EQUAL(co_key(k, sizeof(k), "prod-1", CO_KIND_LEADERS, ""), CM_OK);
    CU_ASSERT_STRING_EQUAL(k, "/cairn/prod-1/leaders/"); /* a prefix for co_range_prefix */
    CU_ASSERT_EQUAL(co_key(k, sizeof(k), "a/b", CO_KIND_NODES, "n"), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(co_key(k, sizeof(k), "", CO_KIND_NODES, "n"), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(co_key(k, sizeof(k), "c", CO_KIND_NODES, "x/y"), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(co_key(k, 10, "c", CO_KIND_NODES, "n"), CM_ERR_TOOBIG);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"lost answer: cas uncertain, read retried", test_lost_answer},
        {"chunked 1-byte answers on one kept-alive connection", test_chunked_and_keepalive},
        {"idle connection closed by the server", test_idle_close_is_not_uncertain},
        {"key layout", test_key_layout},
        {"a stream line is bounded", test_stream_line_bounded},
        {NULL, NULL},
    };
    cu_add_suite("coord_http", tests);
}
