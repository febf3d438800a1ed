/*
 * test_net.c - the HTTP server end to end: a real server on 127.0.0.1:0 in a thread, driven from
 * the test thread with plain blocking sockets (5 s receive timeout, so a bug fails instead of
 * hanging). The test handler picks its behaviour from the request path. Payloads come from a
 * seeded xorshift generator; the seed is printed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cm_util.h"
#include "cu_main.h"
#include "net.h"

static uint64_t seed = 0x9e3779b97f4a7c15ull;

/* ---- test handler ---- */

typedef struct {
    pthread_mutex_t mu;
    net_server *srv;
    int requests, done, aborted;
    size_t max_body_buffered; /* largest body buffer the handler was handed */
    size_t max_pending;       /* largest unsent output seen from on_drain */
    int body_calls;
    int pauses;
} th_state;

typedef struct {
    th_state *st;
    uint64_t count, hash;
    int mode;
    struct event *ev;
    size_t left;           /* response bytes still to produce (mode big) */
    struct evbuffer *body; /* the server's body buffer, kept while paused (mode pause) */
} th_req;

enum {
    M_HELLO,
    M_ECHO,
    M_REJECT,
    M_CHUNKED,
    M_PAUSE,
    M_BIG,
    M_SLOW,
    M_STALL,
    M_ABORT,
    M_LATER,
    M_HOARD
};

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void th_consume(th_req *t, struct evbuffer *body)
{
    uint8_t tmp[65536];
    int n;
    while ((n = evbuffer_remove(body, tmp, sizeof(tmp))) > 0) {
        t->count += (size_t)n;
        t->hash = fnv(t->hash, tmp, (size_t)n);
    }
}

static void th_note_body(th_req *t, size_t len)
{
    pthread_mutex_lock(&t->st->mu);
    t->st->body_calls++;
    if (len > t->st->max_body_buffered)
        t->st->max_body_buffered = len;
    pthread_mutex_unlock(&t->st->mu);
}

static void th_reply_count(net_req *req, th_req *t)
{
    char out[64];
    int n = snprintf(out, sizeof(out), "%llu %016llx", (unsigned long long)t->count,
                     (unsigned long long)t->hash);
    net_resp_simple(req, 200, "text/plain", out, (size_t)n);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    net_req *req = arg;
    th_req *t = net_req_data(req);
    (void)fd;
    (void)what;
    th_consume(t, t->body);
    net_req_resume_body(req);
}

static void slow_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    net_resp_simple(arg, 200, "text/plain", "slow", 4);
}

/* Answer from a timer, outside any server callback (as a handler finishing on a worker would). */
static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    net_req *req = arg;
    th_req *t = net_req_data(req);
    (void)fd;
    (void)what;
    if (t->left == 0) {
        net_resp_simple(req, 200, "text/plain", "later", 5);
        return;
    }
    /* a big body in one write: more than the socket takes at once */
    uint8_t *body = malloc(t->left);
    for (size_t i = 0; i < t->left; i++)
        body[i] = (uint8_t)(i * 7);
    net_resp_start(req, 200, (int64_t)t->left);
    net_resp_write(req, body, t->left);
    net_resp_end(req);
    free(body);
}

static void th_on_request(net_req *req, void *arg)
{
    th_state *st = arg;
    const char *path = net_req_target(req);
    th_req *t = calloc(1, sizeof(*t));
    t->st = st;
    t->hash = 0xcbf29ce484222325ull;
    net_req_set_data(req, t);
    pthread_mutex_lock(&st->mu);
    st->requests++;
    pthread_mutex_unlock(&st->mu);
    if (strncmp(path, "/echo", 5) == 0) {
        t->mode = M_ECHO;
        net_req_read_body(req);
    } else if (strncmp(path, "/reject", 7) == 0) {
        t->mode = M_REJECT;
        net_resp_simple(req, 403, "application/xml", "<Error>no</Error>", 17);
    } else if (strcmp(path, "/chunked") == 0) {
        t->mode = M_CHUNKED;
        net_resp_start(req, 200, -1);
        net_resp_header(req, "X-Test", "yes");
        net_resp_write(req, "abc", 3);
        net_resp_write(req, "", 0);
        net_resp_write(req, "defgh", 5);
        net_resp_end(req);
    } else if (strcmp(path, "/pause") == 0) {
        t->mode = M_PAUSE;
        t->ev = evtimer_new(net_req_base(req), resume_cb, req);
        net_req_read_body(req);
    } else if (strcmp(path, "/big") == 0) {
        t->mode = M_BIG;
        t->left = 4u << 20;
        net_resp_start(req, 200, (int64_t)t->left);
    } else if (strcmp(path, "/slow") == 0) {
        t->mode = M_SLOW;
        t->ev = evtimer_new(net_req_base(req), slow_cb, req);
        struct timeval tv = {0, 50000};
        net_server_stop(st->srv, 5000); /* stop arrives while this request is in flight */
        evtimer_add(t->ev, &tv);
    } else if (strcmp(path, "/abort") == 0) {
        t->mode = M_ABORT; /* fails mid-stream: the client sees a short body and a close */
        net_resp_start(req, 200, 100);
        net_resp_write(req, "0123456789", 10);
        net_req_abort(req);
        net_resp_write(req, "ignored", 7);
    } else if (strncmp(path, "/later", 6) == 0) {
        struct timeval tv = {0, strcmp(path, "/later-300ms") == 0 ? 300000 : 1000};
        t->mode = M_LATER;
        t->left = strcmp(path, "/later-big") == 0 ? 8u << 20 : 0;
        t->ev = evtimer_new(net_req_base(req), later_cb, req);
        evtimer_add(t->ev, &tv);
    } else if (strcmp(path, "/stall") == 0) {
        t->mode = M_STALL; /* never answers */
    } else if (strcmp(path, "/hoard") == 0) {
        t->mode = M_HOARD; /* reads the body, never takes it, never pauses */
        net_req_read_body(req);
    } else {
        net_resp_simple(req, 200, "text/plain", "hello", 5);
    }
}

static void th_on_body(net_req *req, struct evbuffer *body, void *arg)
{
    th_req *t = net_req_data(req);
    (void)arg;
    th_note_body(t, evbuffer_get_length(body));
    if (t->mode == M_PAUSE) {
        /* consume later, from a timer: the server must stop reading meanwhile */
        struct timeval tv = {0, 0};
        t->body = body;
        net_req_pause_body(req);
        pthread_mutex_lock(&t->st->mu);
        t->st->pauses++;
        pthread_mutex_unlock(&t->st->mu);
        evtimer_add(t->ev, &tv);
        return;
    }
    if (t->mode != M_HOARD)
        th_consume(t, body);
}

static void th_on_body_end(net_req *req, void *arg)
{
    (void)arg;
    th_reply_count(req, net_req_data(req));
}

static void th_on_drain(net_req *req, void *arg)
{
    th_req *t = net_req_data(req);
    uint8_t piece[65536];
    (void)arg;
    if (t->mode != M_BIG)
        return;
    pthread_mutex_lock(&t->st->mu);
    if (net_resp_pending(req) > t->st->max_pending)
        t->st->max_pending = net_resp_pending(req);
    pthread_mutex_unlock(&t->st->mu);
    size_t n = CM_MIN(sizeof(piece), t->left);
    memset(piece, (int)(t->left & 0xff), n);
    net_resp_write(req, piece, n);
    t->left -= n;
    if (t->left == 0)
        net_resp_end(req);
}

static void th_on_done(net_req *req, int aborted, void *arg)
{
    th_state *st = arg;
    th_req *t = net_req_data(req);
    pthread_mutex_lock(&st->mu);
    st->done++;
    st->aborted += aborted != 0;
    pthread_mutex_unlock(&st->mu);
    if (t->ev)
        event_free(t->ev);
    free(t);
}

static const net_handler th_handler = {th_on_request, th_on_body, th_on_body_end, th_on_drain,
                                       th_on_done};

/* ---- server in a thread ---- */

typedef struct {
    net_server *srv;
    pthread_t th;
    th_state st;
    int port;
} tsrv;

static void *run_thread(void *arg)
{
    tsrv *t = arg;
    net_server_run(t->srv);
    return NULL;
}

static void tsrv_cfg(net_config *cfg)
{
    net_config_defaults(cfg);
    cfg->port = 0;
    cfg->threads = 1;
    cfg->read_high_water = 256 * 1024;
    cfg->write_low_water = 64 * 1024;
}

static void tsrv_start(tsrv *t, const net_config *cfg)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->st.mu, NULL);
    CU_ASSERT_EQUAL_FATAL(net_server_new(cfg, &th_handler, &t->st, &t->srv), CM_OK);
    t->st.srv = t->srv;
    t->port = net_server_port(t->srv);
    CU_ASSERT_FATAL(t->port > 0);
    pthread_create(&t->th, NULL, run_thread, t);
}

static void tsrv_start_default(tsrv *t)
{
    net_config cfg;
    tsrv_cfg(&cfg);
    tsrv_start(t, &cfg);
}

/* Stop, join, free; afterwards every started request must have had exactly one on_done. */
static void tsrv_stop(tsrv *t)
{
    net_server_stop(t->srv, 1000);
    pthread_join(t->th, NULL);
    net_server_free(t->srv);
    CU_ASSERT_EQUAL(t->st.requests, t->st.done);
    pthread_mutex_destroy(&t->st.mu);
}

/* ---- blocking client ---- */

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
} cli;

typedef struct {
    int status;
    char head[8192];
    char *body;
    size_t blen;
} resp;

/* A client socket, not yet connected. */
static void cli_socket(cli *c)
{
    struct timeval tv = {5, 0};
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(c->fd >= 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void cli_connect(cli *c, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
}

static void cli_open(cli *c, int port)
{
    cli_socket(c);
    cli_connect(c, port);
}

static void cli_close(cli *c)
{
    close(c->fd);
    free(c->buf);
}

static int cli_send(cli *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static int cli_sends(cli *c, const char *s)
{
    return cli_send(c, s, strlen(s));
}

/* Read more bytes into the buffer: >0 read, 0 EOF, -1 error or timeout. */
static int cli_fill(cli *c)
{
    if (c->cap - c->len < 65536) {
        c->cap = c->cap * 2 + 65536;
        c->buf = realloc(c->buf, c->cap);
    }
    ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (k > 0)
        c->len += (size_t)k;
    return k < 0 ? -1 : (int)k;
}

static int cli_need(cli *c, size_t n)
{
    while (c->len < n)
        if (cli_fill(c) <= 0)
            return -1;
    return 0;
}

static void cli_take(cli *c, size_t n, char *out)
{
    if (out)
        memcpy(out, c->buf, n);
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static int cli_line(cli *c, char *out, size_t cap)
{
    for (;;) {
        char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - c->buf) + 1;
            if (n >= cap)
                return -1;
            cli_take(c, n, out);
            out[n] = '\0';
            return 0;
        }
        if (cli_fill(c) <= 0)
            return -1;
    }
}

/* Header value from a response head ("" when absent). */
static const char *resp_header(const resp *r, const char *name, char *out, size_t cap)
{
    char pat[128];
    snprintf(pat, sizeof(pat), "\r\n%s:", name);
    const char *p = strcasestr(r->head, pat);
    out[0] = '\0';
    if (!p)
        return out;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, "\r");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static int read_chunked(cli *c, resp *r)
{
    char line[256];
    for (;;) {
        if (cli_line(c, line, sizeof(line)) != 0)
            return -1;
        size_t n = strtoul(line, NULL, 16);
        if (n == 0)
            return cli_line(c, line, sizeof(line)); /* the empty trailer line */
        if (cli_need(c, n + 2) != 0)
            return -1;
        r->body = realloc(r->body, r->blen + n + 1);
        cli_take(c, n, r->body + r->blen);
        r->blen += n;
        r->body[r->blen] = '\0';
        cli_take(c, 2, NULL);
    }
}

/* Read one response. head_req: the request was HEAD, so no body follows. 0 or -1. */
static int cli_response(cli *c, resp *r, int head_req)
{
    char v[64], line[4096];
    memset(r, 0, sizeof(*r));
    r->body = calloc(1, 1);
    for (;;) {
        if (cli_line(c, line, sizeof(line)) != 0)
            return -1;
        if (strlen(r->head) + strlen(line) >= sizeof(r->head))
            return -1;
        strncat(r->head, line, sizeof(r->head) - strlen(r->head) - 1);
        if (strcmp(line, "\r\n") == 0)
            break;
    }
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    if (head_req || r->status == 204 || r->status == 304 || r->status < 200)
        return 0;
    if (strcasecmp(resp_header(r, "Transfer-Encoding", v, sizeof(v)), "chunked") == 0)
        return read_chunked(c, r);
    if (resp_header(r, "Content-Length", v, sizeof(v))[0]) {
        size_t n = strtoul(v, NULL, 10);
        if (cli_need(c, n) != 0)
            return -1;
        r->body = realloc(r->body, n + 1);
        cli_take(c, n, r->body);
        r->blen = n;
        r->body[n] = '\0';
        return 0;
    }
    while (cli_fill(c) > 0) /* close-delimited */
        ;
    r->blen = c->len;
    r->body = realloc(r->body, c->len + 1);
    cli_take(c, c->len, r->body);
    r->body[r->blen] = '\0';
    return 0;
}

static void resp_free(resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* The server closed: recv sees EOF (not a timeout). */
static int cli_eof(cli *c)
{
    int k;
    while ((k = cli_fill(c)) > 0)
        ;
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

static void get_ok(cli *c, const char *path, const char *want_body)
{
    char req[256];
    resp r;
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    CU_ASSERT_EQUAL_FATAL(cli_sends(c, req), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, want_body);
    resp_free(&r);
}

/* ---- tests ---- */

static void test_simple_get(void)
{
    tsrv t;
    cli c;
    resp r;
    char v[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Length", v, sizeof(v)), "5");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Type", v, sizeof(v)), "text/plain");
    CU_ASSERT(strlen(resp_header(&r, "Date", v, sizeof(v))) == 29);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "");
    resp_free(&r);
    cli_close(&c);
    tsrv_stop(&t);
}

static void test_keepalive_pipelined(void)
{
    tsrv t;
    cli c;
    resp r;
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    get_ok(&c, "/a", "hello");
    get_ok(&c, "/b", "hello");
    /* three requests in one send, the last one closing */
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\n"
                                  "GET /3 HTTP/1.1\r\nConnection: close\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 1), 0); /* HEAD: no body bytes follow */
    char v[64];
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Length", v, sizeof(v)), "5");
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.requests, 5);
    CU_ASSERT_EQUAL(t.st.aborted, 0);
}

static void test_http10(void)
{
    tsrv t;
    cli c;
    resp r;
    char v[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "keep-alive");
    resp_free(&r);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /x HTTP/1.0\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Send len pseudo-random bytes as the body of PUT path; return the expected "count hash". */
static void put_large(cli *c, const char *path, size_t len, char *want, size_t wcap)
{
    char head[256];
    uint8_t piece[65536];
    uint64_t s = seed, h = 0xcbf29ce484222325ull;
    snprintf(head, sizeof(head), "PUT %s HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", path, len);
    CU_ASSERT_EQUAL_FATAL(cli_sends(c, head), 0);
    for (size_t off = 0; off < len; off += sizeof(piece)) {
        size_t n = CM_MIN(sizeof(piece), len - off);
        for (size_t i = 0; i < n; i++)
            piece[i] = (uint8_t)xorshift(&s);
        h = fnv(h, piece, n);
        CU_ASSERT_EQUAL_FATAL(cli_send(c, piece, n), 0);
    }
    snprintf(want, wcap, "%llu %016llx", (unsigned long long)len, (unsigned long long)h);
}

static void test_large_body(void)
{
    tsrv t;
    cli c;
    resp r;
    char want[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    put_large(&c, "/echo", 8u << 20, want, sizeof(want));
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, want);
    resp_free(&r);
    get_ok(&c, "/after", "hello");
    cli_close(&c);
    tsrv_stop(&t);
    /* streamed in pieces, never more than the high-water mark buffered */
    CU_ASSERT(t.st.body_calls > 8);
    CU_ASSERT(t.st.max_body_buffered <= 256 * 1024);
}

static void test_backpressure(void)
{
    tsrv t;
    cli c;
    resp r;
    char want[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    put_large(&c, "/pause", 3u << 20, want, sizeof(want));
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, want);
    resp_free(&r);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT(t.st.pauses > 1);
    CU_ASSERT(t.st.max_body_buffered <= 256 * 1024);
}

static void test_chunked_body(void)
{
    tsrv t;
    cli c;
    resp r;
    char want[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "5;name=value\r\nhello\r\n"
                                  "1 ; x\r\n \r\n"
                                  "A\r\n0123456789\r\n"
                                  "0\r\nX-Amz-Checksum-Crc32: AAAAAA==\r\nX-Other: 1\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    uint64_t h = fnv(0xcbf29ce484222325ull, (const uint8_t *)"hello 0123456789", 16);
    snprintf(want, sizeof(want), "16 %016llx", (unsigned long long)h);
    CU_ASSERT_STRING_EQUAL(r.body, want);
    resp_free(&r);
    get_ok(&c, "/after", "hello"); /* framing fully consumed */
    /* a bad chunk size is a 400 and closes */
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "zz\r\nhello\r\n0\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.aborted, 1);
}

static void test_expect_continue(void)
{
    tsrv t;
    cli c;
    resp r;
    char line[256], v[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /echo HTTP/1.1\r\nContent-Length: 5\r\n"
                                  "Expect: 100-continue\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_line(&c, line, sizeof(line)), 0);
    CU_ASSERT_STRING_EQUAL(line, "HTTP/1.1 100 Continue\r\n");
    CU_ASSERT_EQUAL_FATAL(cli_line(&c, line, sizeof(line)), 0);
    CU_ASSERT_STRING_EQUAL(line, "\r\n");
    CU_ASSERT_EQUAL(cli_sends(&c, "hello"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(strncmp(r.body, "5 ", 2) == 0);
    resp_free(&r);
    /* an announced empty body gets its 100 too (botocore waits for it), then the answer */
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /echo HTTP/1.1\r\nContent-Length: 0\r\n"
                                  "Expect: 100-continue\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_line(&c, line, sizeof(line)), 0);
    CU_ASSERT_STRING_EQUAL(line, "HTTP/1.1 100 Continue\r\n");
    CU_ASSERT_EQUAL_FATAL(cli_line(&c, line, sizeof(line)), 0);
    CU_ASSERT_STRING_EQUAL(line, "\r\n");
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(strncmp(r.body, "0 ", 2) == 0);
    resp_free(&r);
    /* rejected on its headers: no 100, the error, then close (the body never came) */
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /reject HTTP/1.1\r\nContent-Length: 5000000\r\n"
                                  "Expect: 100-continue\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 403);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
}

static void test_unread_body(void)
{
    tsrv t;
    cli c;
    resp r;
    char v[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    /* small unread body: discarded, connection kept */
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /reject HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 403);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "");
    resp_free(&r);
    get_ok(&c, "/after", "hello");
    /* chunked unread body: close after the response */
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /reject HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "3\r\nabc\r\n0\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
}

static void test_chunked_response_and_head(void)
{
    tsrv t;
    cli c;
    resp r;
    char v[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /chunked HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Transfer-Encoding", v, sizeof(v)), "chunked");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Test", v, sizeof(v)), "yes");
    CU_ASSERT_EQUAL(r.blen, 8);
    CU_ASSERT(memcmp(r.body, "abcdefgh", 8) == 0);
    resp_free(&r);
    /* HEAD of a chunked response: neither chunks nor terminator */
    CU_ASSERT_EQUAL(cli_sends(&c, "HEAD /chunked HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 1), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    resp_free(&r);
    /* HTTP/1.0 gets the body close-delimited */
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /chunked HTTP/1.0\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "abcdefgh");
    resp_free(&r);
    cli_close(&c);
    tsrv_stop(&t);
}

static void test_drain_response(void)
{
    tsrv t;
    cli c;
    resp r;
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /big HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.blen, 4u << 20);
    CU_ASSERT_EQUAL((uint8_t)r.body[0], 0);
    resp_free(&r);
    get_ok(&c, "/after", "hello");
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT(t.st.max_pending < 64 * 1024 + 1024);
}

/* Send raw bytes, expect a server error with S3 XML and the connection closed. */
static void expect_error(tsrv *t, const char *raw, size_t len, int status, const char *code)
{
    cli c;
    resp r;
    char v[64];
    cli_open(&c, t->port);
    CU_ASSERT_EQUAL(cli_send(&c, raw, len), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, status);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    CU_ASSERT(strstr(r.body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>") ==
              r.body);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, code));
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
}

static void test_limits(void)
{
    tsrv t;
    net_config cfg;
    tsrv_cfg(&cfg);
    cfg.max_request_line = 1024;
    cfg.max_header_bytes = 4096;
    cfg.max_headers = 10;
    tsrv_start(&t, &cfg);
    char *big = malloc(16384);
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', 2000);
    memcpy(big + 2005, " HTTP/1.1\r\n\r\n", 13);
    expect_error(&t, big, 2018, 414, "RequestURITooLong");
    int n = snprintf(big, 16384, "GET / HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'b', 8000);
    memcpy(big + n + 8000, "\r\n\r\n", 4);
    expect_error(&t, big, (size_t)n + 8004, 431, "RequestHeaderSectionTooLarge");
    n = snprintf(big, 16384, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 11; i++)
        n += snprintf(big + n, 16384 - (size_t)n, "X-H%d: v\r\n", i);
    n += snprintf(big + n, 16384 - (size_t)n, "\r\n");
    expect_error(&t, big, (size_t)n, 431, "RequestHeaderSectionTooLarge");
    free(big);
    const char *bad[] = {
        "GET / HTTP/1.1\r\nA: 1\r\n  fold\r\n\r\n",
        "GET / HTTP/1.1\r\nA: x\ry\r\n\r\n",
        "PUT / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "PUT / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "NOT HTTP AT ALL\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(&t, bad[i], strlen(bad[i]), 400, "BadRequest");
    expect_error(&t, "GET / HTTP/1.1\r\nA: a\0b\r\n\r\n", 26, 400, "BadRequest");
    const char *te = "PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n";
    expect_error(&t, te, strlen(te), 501, "NotImplemented");
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.requests, 0);
}

static int64_t elapsed_ms(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

static void test_timeouts(void)
{
    tsrv t;
    cli c;
    resp r;
    net_config cfg;
    struct timespec t0;
    tsrv_cfg(&cfg);
    cfg.idle_timeout_ms = 200;
    cfg.io_timeout_ms = 300;
    tsrv_start(&t, &cfg);
    /* idle keep-alive: closed silently */
    cli_open(&c, t.port);
    get_ok(&c, "/x", "hello");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT(cli_eof(&c));
    CU_ASSERT_EQUAL(c.len, 0);
    CU_ASSERT(elapsed_ms(&t0) >= 150);
    cli_close(&c);
    /* partial head: 408 */
    cli_open(&c, t.port);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /x HTTP/1.1\r\nHost"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 408);
    CU_ASSERT(elapsed_ms(&t0) >= 250);
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    /* partial body: 408, and the handler's request ends aborted */
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 408);
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.aborted, 1);
}

static void test_stop_in_flight(void)
{
    tsrv t;
    cli c, idle;
    resp r;
    char v[64];
    tsrv_start_default(&t);
    cli_open(&idle, t.port);
    get_ok(&idle, "/x", "hello");
    cli_open(&c, t.port);
    /* the handler calls net_server_stop itself, then answers 50 ms later */
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /slow HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "slow");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    CU_ASSERT(cli_eof(&idle)); /* idle connection closed by the stop */
    pthread_join(t.th, NULL);  /* run returned by itself */
    CU_ASSERT_EQUAL(t.st.done, 2);
    CU_ASSERT_EQUAL(t.st.aborted, 0);
    net_server_free(t.srv);
    cli_close(&c);
    cli_close(&idle);
}

static void test_stop_grace_expires(void)
{
    tsrv t;
    cli c;
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /stall HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n"), 0);
    /* wait until the handler has it: a second connection's answer orders us after it */
    cli c2;
    cli_open(&c2, t.port);
    get_ok(&c2, "/y", "hello");
    cli_close(&c2);
    net_server_stop(t.srv, 100);
    pthread_join(t.th, NULL);
    CU_ASSERT(cli_eof(&c));
    net_server_free(t.srv);
    CU_ASSERT_EQUAL(t.st.requests, t.st.done);
    CU_ASSERT_EQUAL(t.st.aborted, 1);
    cli_close(&c);
}

static void test_abort_and_trickle(void)
{
    tsrv t;
    cli c;
    resp r;
    tsrv_start_default(&t);
    /* a head sent one byte at a time parses like one sent at once */
    cli_open(&c, t.port);
    const char *req = "GET /trickle HTTP/1.1\r\nHost: t\r\nX-A: b\r\n\r\n";
    for (size_t i = 0; req[i]; i++)
        CU_ASSERT_EQUAL(cli_send(&c, req + i, 1), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    resp_free(&r);
    /* mid-stream abort: headers and 10 of 100 bytes, then the connection closes */
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /abort HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT(cli_response(&c, &r, 0) != 0);
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.done, 2);
    CU_ASSERT_EQUAL(t.st.aborted, 1);
}

/*
 * Responses written from outside server callbacks (a timer standing in for a worker's
 * completion) go out on a kept-alive connection, whether small or larger than the socket takes at
 * once; a request pipelined while another is in flight waits its turn.
 */
static void test_async_responses(void)
{
    tsrv t;
    cli c;
    resp r;
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    for (int i = 0; i < 3; i++)
        get_ok(&c, "/later", "later");
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /later-big HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL_FATAL(r.blen, 8u << 20);
    size_t bad = 0;
    for (size_t i = 0; i < r.blen; i++)
        bad += (uint8_t)r.body[i] != (uint8_t)(i * 7);
    CU_ASSERT_EQUAL(bad, 0);
    resp_free(&r);
    get_ok(&c, "/x", "hello");
    /* the second request arrives while the first is still being worked on */
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /later HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /y HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "later");
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    resp_free(&r);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.done, 7);
    CU_ASSERT_EQUAL(t.st.aborted, 0);
}

/*
 * A client that shuts down its sending side after its requests still gets every answer (the
 * server reads ahead while a request is in flight, so it sees the EOF early), then the close.
 */
static void test_half_close(void)
{
    tsrv t;
    cli c;
    resp r;
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /x HTTP/1.1\r\n\r\n"), 0);
    shutdown(c.fd, SHUT_WR);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);

    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /later HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n"
                                  "GET /later HTTP/1.1\r\n\r\n"),
                    0);
    shutdown(c.fd, SHUT_WR);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
        CU_ASSERT_STRING_EQUAL(r.body, i == 1 ? "hello" : "later");
        resp_free(&r);
    }
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);

    /* half a request, then EOF: nothing to answer, the connection just closes */
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /x HTTP/1.1\r\nHost:"), 0);
    shutdown(c.fd, SHUT_WR);
    CU_ASSERT(cli_eof(&c));
    CU_ASSERT_EQUAL(c.len, 0);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.done, 4);
    CU_ASSERT_EQUAL(t.st.aborted, 0);
}

/*
 * A client pipelining far more than one head's worth while a request is in flight: the server
 * reads ahead only so far (then pauses reading), and answers every request in order.
 */
static void test_pipeline_flood(void)
{
    enum { N = 6000 };
    static const char one[] = "GET /x HTTP/1.1\r\n\r\n";
    tsrv t;
    cli c;
    resp r;
    size_t len = strlen(one);
    char *all = malloc(N * len + 64);
    int n = snprintf(all, 64, "GET /later HTTP/1.1\r\n\r\n");
    for (int i = 0; i < N; i++)
        memcpy(all + n + (size_t)i * len, one, len);
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL_FATAL(cli_send(&c, all, (size_t)n + N * len), 0); /* > 80 KiB head cap */
    free(all);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "later");
    resp_free(&r);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        if (cli_response(&c, &r, 0) != 0)
            break;
        ok += r.status == 200 && strcmp(r.body, "hello") == 0;
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(ok, N);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.done, N + 1);
    CU_ASSERT_EQUAL(t.st.aborted, 0);
}

/* Something to read (or EOF) within ms. */
static int cli_readable(cli *c, int ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return c->len > 0 || poll(&p, 1, ms) == 1;
}

/* Wait (bounded) until the handler has seen n requests. */
static int wait_requests(tsrv *t, int n)
{
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&t->st.mu);
        int got = t->st.requests;
        pthread_mutex_unlock(&t->st.mu);
        if (got >= n)
            return 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL); /* the server thread works on its own; nothing to run here */
    }
    return -1;
}

/*
 * A head trickled a byte at a time keeps the per-read timeout alive forever; the head deadline
 * counts from its first byte and answers 408 however fast the bytes come. It holds per head: a
 * kept-alive connection idle past the deadline still gets its next request served.
 */
static void test_head_deadline(void)
{
    tsrv t;
    cli c;
    resp r;
    net_config cfg;
    struct timespec t0;
    tsrv_cfg(&cfg);
    cfg.header_timeout_ms = 400;
    tsrv_start(&t, &cfg);
    cli_open(&c, t.port);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /x HTTP/1.1\r\nX-Slow: "), 0);
    for (int i = 0; i < 40 && !cli_readable(&c, 50); i++)
        CU_ASSERT_EQUAL(cli_sends(&c, "a"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 408);
    CU_ASSERT(strstr(r.body, "<Code>RequestTimeout</Code>") != NULL);
    CU_ASSERT(elapsed_ms(&t0) >= 350);
    CU_ASSERT(elapsed_ms(&t0) < 1500);
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);

    cli_open(&c, t.port);
    get_ok(&c, "/a", "hello");
    CU_ASSERT_FALSE(cli_readable(&c, 500)); /* idle longer than the head deadline: kept */
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /b HTTP/1.1\r\n"), 0);
    CU_ASSERT_FALSE(cli_readable(&c, 150));
    CU_ASSERT_EQUAL(cli_sends(&c, "Host: t\r\n"), 0);
    CU_ASSERT_FALSE(cli_readable(&c, 150));
    CU_ASSERT_EQUAL(cli_sends(&c, "\r\n"), 0); /* whole 300 ms after its first byte: in time */
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    cli_close(&c);
    tsrv_stop(&t);
}

/*
 * At max_connections a new connection takes the place of an idle one: a kept-alive connection
 * before one with a partial head, and the one idle longest first.
 */
static void test_conn_limit_shed(void)
{
    tsrv t;
    cli a, b, c, d;
    resp r;
    net_config cfg;
    tsrv_cfg(&cfg);
    cfg.max_connections = 2;
    tsrv_start(&t, &cfg);
    cli_open(&b, t.port);
    CU_ASSERT_EQUAL(cli_sends(&b, "GET /b HTTP/1.1\r\nHo"), 0);
    cli_open(&a, t.port); /* accepted after b */
    get_ok(&a, "/a", "hello");
    cli_open(&c, t.port);
    get_ok(&c, "/c", "hello"); /* a (idle) makes room, not b (partial head) */
    CU_ASSERT(cli_eof(&a));
    CU_ASSERT_EQUAL(cli_sends(&b, "st: t\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&b, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    cli_open(&d, t.port);
    get_ok(&d, "/d", "hello"); /* c has been idle longer than b */
    CU_ASSERT(cli_eof(&c));
    get_ok(&b, "/b2", "hello");
    cli_close(&a);
    cli_close(&b);
    cli_close(&c);
    cli_close(&d);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.aborted, 0);

    /* a connection accepted a moment ago that has not sent yet is shed after a partial head:
     * it may be the client the room was made for */
    tsrv_start(&t, &cfg);
    cli_open(&b, t.port);
    CU_ASSERT_EQUAL(cli_sends(&b, "GET /b HTTP/1.1\r\nHo"), 0);
    cli_open(&a, t.port); /* no bytes yet */
    cli_open(&c, t.port); /* over the limit: b makes room, not a */
    get_ok(&c, "/c", "hello");
    get_ok(&a, "/a", "hello");
    CU_ASSERT(cli_eof(&b));
    cli_close(&a);
    cli_close(&b);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.aborted, 0);
}

/* At max_connections with every connection busy, a new one is answered 503 SlowDown and closed. */
static void test_conn_limit_refuse(void)
{
    tsrv t;
    cli a, b, c;
    resp r;
    net_config cfg;
    char v[64];
    tsrv_cfg(&cfg);
    cfg.max_connections = 2;
    tsrv_start(&t, &cfg);
    cli_open(&a, t.port);
    cli_open(&b, t.port);
    CU_ASSERT_EQUAL(cli_sends(&a, "GET /stall HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL(cli_sends(&b, "GET /stall HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(wait_requests(&t, 2), 0);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT(strstr(r.body, "<Code>SlowDown</Code>") != NULL);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    CU_ASSERT_FALSE(cli_readable(&a, 0)); /* the busy ones are untouched */
    CU_ASSERT_FALSE(cli_readable(&b, 0));
    cli_close(&a);
    cli_close(&b);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.aborted, 2);
}

/*
 * Fill every unused descriptor number below the highest open one (placeholders into fill[], at
 * most cap) so that the next descriptors handed out are highest+1, highest+2... Returns highest.
 */
static int fill_fd_holes(int *fill, int cap, int *nfill)
{
    int highest = -1;
    for (int fd = 0; fd < 65536; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            highest = fd;
    *nfill = 0;
    for (;;) {
        int fd = dup(0);
        if (fd < 0 || fd > highest || *nfill == cap) {
            if (fd >= 0)
                close(fd);
            return highest;
        }
        fill[(*nfill)++] = fd;
    }
}

/*
 * Out of descriptors (RLIMIT_NOFILE lowered under the running server), accept() fails with
 * EMFILE while new clients wait in the backlog. The server closes its oldest idle connection and
 * accepts, instead of spinning on the listener: every new client is served.
 */
static void test_out_of_descriptors(void)
{
    enum { N = 16, FREE = 3 };
    tsrv t;
    cli w, cs[N];
    net_config cfg;
    struct rlimit old, low;
    int fill[1024], nfill, served = 0, shed = 0;
    tsrv_cfg(&cfg);
    cfg.max_connections = 1000; /* far above the descriptors: EMFILE comes first */
    tsrv_start(&t, &cfg);
    cli_open(&w, t.port);
    get_ok(&w, "/w", "hello");
    for (int i = 0; i < N; i++)
        cli_socket(&cs[i]); /* the clients' descriptors exist before the limit drops */
    int high = fill_fd_holes(fill, 1024, &nfill);
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)(high + 1 + FREE); /* FREE descriptors left for the server's accepts */
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_NOFILE, &low), 0);
    for (int i = 0; i < N; i++) {
        resp r;
        cli_connect(&cs[i], t.port);
        if (cli_sends(&cs[i], "GET /n HTTP/1.1\r\n\r\n") != 0 || cli_response(&cs[i], &r, 0))
            break; /* not served: without the back-off this client waits forever */
        served += r.status == 200;
        resp_free(&r);
    }
    setrlimit(RLIMIT_NOFILE, &old);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    CU_ASSERT_EQUAL(served, N);
    for (int i = 0; i < N; i++)
        shed += cli_readable(&cs[i], 0) && cli_eof(&cs[i]);
    shed += cli_readable(&w, 0) && cli_eof(&w);
    CU_ASSERT(shed >= N - FREE);
    for (int i = 0; i < N; i++)
        cli_close(&cs[i]);
    cli_close(&w);
    tsrv_stop(&t);
}

/*
 * Out of descriptors with every connection busy there is nothing to shed: the listener pauses
 * (100 ms at a time) instead of spinning, and once a busy connection has answered and gone idle,
 * it makes room for the waiting client.
 */
static void test_out_of_descriptors_busy(void)
{
    tsrv t;
    cli h1, h2, n;
    resp r;
    net_config cfg;
    struct rlimit old, low;
    struct timespec t0;
    int fill[1024], nfill;
    tsrv_cfg(&cfg);
    cfg.max_connections = 1000;
    tsrv_start(&t, &cfg);
    cli_socket(&h1);
    cli_socket(&h2);
    cli_socket(&n);
    int high = fill_fd_holes(fill, 1024, &nfill);
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)(high + 1 + 2); /* room for h1 and h2 only */
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_NOFILE, &low), 0);
    cli_connect(&h1, t.port);
    cli_connect(&h2, t.port);
    int sent = cli_sends(&h1, "GET /later-300ms HTTP/1.1\r\n\r\n") == 0 &&
               cli_sends(&h2, "GET /later-300ms HTTP/1.1\r\n\r\n") == 0 &&
               wait_requests(&t, 2) == 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cli_connect(&n, t.port);
    int got = sent && cli_sends(&n, "GET /n HTTP/1.1\r\n\r\n") == 0 && cli_response(&n, &r, 0) == 0;
    int64_t took = elapsed_ms(&t0);
    setrlimit(RLIMIT_NOFILE, &old);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    CU_ASSERT_FATAL(got);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(took >= 200 && took < 2000); /* served once a held request was answered */
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(cli_response(&h1, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "later");
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(cli_response(&h2, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "later");
    resp_free(&r);
    cli_close(&h1);
    cli_close(&h2);
    cli_close(&n);
    tsrv_stop(&t);
}

/*
 * A handler that reads the body but neither takes the bytes nor pauses: once the body buffer is
 * full the connection waits on the client again, so the body timeout runs (it used to sit there
 * with no timer at all).
 */
static void test_body_not_taken(void)
{
    tsrv t;
    cli c;
    resp r;
    net_config cfg;
    char head[128];
    tsrv_cfg(&cfg);
    cfg.io_timeout_ms = 300;
    tsrv_start(&t, &cfg);
    size_t len = cfg.read_high_water * 3;
    char *body = calloc(1, len);
    cli_open(&c, t.port);
    snprintf(head, sizeof(head), "PUT /hoard HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", len);
    CU_ASSERT_EQUAL(cli_sends(&c, head), 0);
    cli_send(&c, body, len); /* may fail part way: the server stops reading */
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 408);
    resp_free(&r);
    free(body);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.aborted, 1);
}

static void test_threads(void)
{
    tsrv t;
    net_config cfg;
    tsrv_cfg(&cfg);
    cfg.threads = 3;
    tsrv_start(&t, &cfg);
    cli cs[8];
    for (int i = 0; i < 8; i++)
        cli_open(&cs[i], t.port);
    for (int i = 0; i < 8; i++)
        get_ok(&cs[i], "/x", "hello");
    for (int i = 0; i < 8; i++)
        cli_close(&cs[i]);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.done, 8);
}

/* A port a running server listens on is refused to a second server (SO_REUSEPORT is only
 * among one server's loops); once the first stopped, the port is free again at once. */
static void test_port_in_use(void)
{
    tsrv t;
    net_config cfg;
    tsrv_cfg(&cfg);
    cfg.threads = 2;
    tsrv_start(&t, &cfg);
    cli c;
    cli_open(&c, t.port);
    get_ok(&c, "/x", "hello");
    cli_close(&c);
    net_server *second = NULL;
    cfg.port = t.port;
    CU_ASSERT_EQUAL(net_server_new(&cfg, &th_handler, &t.st, &second), CM_ERR_EXISTS);
    CU_ASSERT_PTR_NULL(second);
    net_server_free(second);
    for (int i = 0; i < 4; i++) { /* the first still serves every connection */
        cli_open(&c, t.port);
        get_ok(&c, "/x", "hello");
        cli_close(&c);
    }
    tsrv_stop(&t);
    tsrv again;
    tsrv_start(&again, &cfg); /* the same port, right after (TIME_WAIT is no obstacle) */
    CU_ASSERT_EQUAL(again.port, cfg.port);
    tsrv_stop(&again);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"simple_get", test_simple_get},
        {"keepalive_pipelined", test_keepalive_pipelined},
        {"http10", test_http10},
        {"large_body", test_large_body},
        {"backpressure", test_backpressure},
        {"chunked_body", test_chunked_body},
        {"expect_continue", test_expect_continue},
        {"unread_body", test_unread_body},
        {"chunked_response_and_head", test_chunked_response_and_head},
        {"drain_response", test_drain_response},
        {"limits", test_limits},
        {"timeouts", test_timeouts},
        {"stop_in_flight", test_stop_in_flight},
        {"stop_grace_expires", test_stop_grace_expires},
        {"abort_and_trickle", test_abort_and_trickle},
        {"threads", test_threads},
        {"port_in_use", test_port_in_use},
        {"async_responses", test_async_responses},
        {"half_close", test_half_close},
        {"pipeline_flood", test_pipeline_flood},
        {"head_deadline", test_head_deadline},
        {"conn_limit_shed", test_conn_limit_shed},
        {"conn_limit_refuse", test_conn_limit_refuse},
        {"out_of_descriptors", test_out_of_descriptors},
        {"out_of_descriptors_busy", test_out_of_descriptors_busy},
        {"body_not_taken", test_body_not_taken},
        {NULL, NULL},
    };
    const char *env = getenv("CAIRN_TEST_SEED");
    if (env)
        seed = strtoull(env, NULL, 0);
    printf("test_net: seed 0x%llx (set CAIRN_TEST_SEED to repeat)\n", (unsigned long long)seed);
    cu_add_suite("net", tests);
}
