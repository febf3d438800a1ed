/*
 * test_net_client.c - the generic HTTP/1.1 client (net/net_client.c) against cairn's own server
 * (in a thread) and against canned responses from fake peers on the client's loop: response
 * framings (Content-Length, chunked, HEAD, close-delimited, 1xx), keep-alive and Connection:
 * close, request bodies produced piece by piece, a response that comes before the whole request
 * body was sent, malformed responses, and an idempotent call sent again whole (its header lines
 * too) after its first connection was lost. The loop runs until every call ended (10 s guard).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "cm_bufpool.h"
#include "cm_checksum.h"
#include "cm_util.h"
#include "cu_main.h"
#include "net.h"

/* ---- server: behaviour by path ---- */

typedef struct {
    uint64_t count;
    uint32_t crc;
    int slow;            /* /slow: take 64 KiB every 20 ms */
    uint64_t next_pause; /* /slow: pause again once this much was taken */
    struct event *ev;    /* resumes a slow body */
    net_req *req;
} sreq;

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i * 31 + (i >> 8));
}

static void s_request(net_req *req, void *arg)
{
    const char *t = net_req_target(req);
    sreq *s = calloc(1, sizeof(*s));
    (void)arg;
    net_req_set_data(req, s);
    if (strncmp(t, "/len/", 5) == 0 || strncmp(t, "/chunked/", 9) == 0) {
        size_t n = strtoul(strchr(t + 1, '/') + 1, NULL, 10);
        int chunked = t[1] == 'c';
        uint8_t *b = malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            b[i] = pattern(i);
        net_resp_start(req, 200, chunked ? -1 : (int64_t)n);
        for (size_t off = 0; off < n; off += 1000)
            net_resp_write(req, b + off, CM_MIN((size_t)1000, n - off));
        net_resp_end(req);
        free(b);
    } else if (strcmp(t, "/close") == 0) {
        net_resp_start(req, 200, 3);
        net_resp_close_after(req);
        net_resp_write(req, "bye", 3);
        net_resp_end(req);
    } else if (strcmp(t, "/early") == 0) {
        net_resp_simple(req, 401, "text/plain", "no", 2); /* body never read */
    } else {
        s->slow = strcmp(t, "/slow") == 0;
        s->req = req;
        net_req_read_body(req); /* /echo, /slow */
    }
}

static void s_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    net_req_resume_body(((sreq *)arg)->req);
}

static void s_body(net_req *req, struct evbuffer *body, void *arg)
{
    sreq *s = net_req_data(req);
    struct evbuffer_iovec v[8];
    (void)arg;
    size_t budget = s->slow ? (size_t)(s->next_pause + 64 * 1024 - s->count) : SIZE_MAX;
    int k = evbuffer_peek(body, -1, NULL, v, 8);
    for (int i = 0; i < k && i < 8 && budget > 0; i++) {
        size_t n = CM_MIN(v[i].iov_len, budget);
        s->crc = cm_crc32c(s->crc, v[i].iov_base, n);
        s->count += n;
        budget -= n;
        evbuffer_drain(body, n);
    }
    if (s->slow && s->count >= s->next_pause) { /* a slow disk: 64 KiB per 20 ms */
        s->next_pause += 64 * 1024;
        struct timeval tv = {0, 20000};
        if (!s->ev)
            s->ev = evtimer_new(net_req_base(req), s_resume, s);
        net_req_pause_body(req);
        evtimer_add(s->ev, &tv);
    }
}

static void s_body_end(net_req *req, void *arg)
{
    sreq *s = net_req_data(req);
    char out[64];
    (void)arg;
    int n = snprintf(out, sizeof(out), "%llu %08x", (unsigned long long)s->count, s->crc);
    net_resp_simple(req, 200, "text/plain", out, (size_t)n);
}

static void s_done(net_req *req, int aborted, void *arg)
{
    sreq *s = net_req_data(req);
    (void)aborted;
    (void)arg;
    if (s->ev)
        event_free(s->ev);
    free(s);
}

static const net_handler s_handler = {
    .on_request = s_request, .on_body = s_body, .on_body_end = s_body_end, .on_done = s_done};

typedef struct {
    net_server *srv;
    pthread_t th;
    int port;
} tsrv;

static void *srv_thread(void *arg)
{
    net_server_run(((tsrv *)arg)->srv);
    return NULL;
}

/* A server on host:port (port 0: any). */
static void srv_start_at(tsrv *t, const char *host, int port)
{
    net_config cfg;
    net_config_defaults(&cfg);
    cfg.host = host;
    cfg.port = port;
    cfg.threads = 1;
    cfg.read_high_water = 64 * 1024; /* a paused body holds back little: the slow test's pace */
    CU_ASSERT_EQUAL_FATAL(net_server_new(&cfg, &s_handler, NULL, &t->srv), CM_OK);
    t->port = net_server_port(t->srv);
    pthread_create(&t->th, NULL, srv_thread, t);
}

static void srv_start(tsrv *t)
{
    srv_start_at(t, "127.0.0.1", 0);
}

static void srv_stop(tsrv *t)
{
    net_server_stop(t->srv, 1000);
    pthread_join(t->th, NULL);
    net_server_free(t->srv);
}

/* ---- client side ---- */

typedef struct {
    struct event_base *base;
    net_client *cl;
    int pending, hung;
} tcl;

typedef struct {
    tcl *c;
    int done;
    cm_err err;
    int status;
    char clen[24];
    struct evbuffer *body;
    uint64_t to_send, sent; /* produced request body */
} tcall;

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ((tcl *)arg)->hung = 1;
}

static void tcl_init(tcl *c, int io_timeout_ms)
{
    net_client_config cfg;
    memset(c, 0, sizeof(*c));
    net_client_config_defaults(&cfg);
    cfg.io_timeout_ms = io_timeout_ms;
    cfg.write_low_water = 64 * 1024;
    c->base = event_base_new();
    CU_ASSERT_EQUAL_FATAL(net_client_new(c->base, &cfg, &c->cl), CM_OK);
}

static void tcl_run(tcl *c)
{
    struct event *guard = evtimer_new(c->base, guard_cb, c);
    struct timeval tv = {10, 0};
    evtimer_add(guard, &tv);
    while (c->pending > 0 && !c->hung)
        event_base_loop(c->base, EVLOOP_ONCE);
    event_free(guard);
    CU_ASSERT_FALSE(c->hung);
}

static void tcl_free(tcl *c)
{
    net_client_free(c->cl);
    event_base_free(c->base);
}

static void on_body(net_call *call, struct evbuffer *body, void *arg)
{
    (void)call;
    evbuffer_add_buffer(((tcall *)arg)->body, body);
}

static void on_send(net_call *call, struct evbuffer *out, void *arg)
{
    tcall *t = arg;
    uint8_t piece[50000];
    (void)call;
    size_t n = (size_t)CM_MIN((uint64_t)sizeof(piece), t->to_send - t->sent);
    for (size_t i = 0; i < n; i++)
        piece[i] = pattern(t->sent + i);
    evbuffer_add(out, piece, n);
    t->sent += n;
}

static void on_done(net_call *call, cm_err e, void *arg)
{
    tcall *t = arg;
    const char *cl = net_call_resp_header(call, "content-length");
    t->done++;
    t->err = e;
    t->status = net_call_status(call);
    snprintf(t->clen, sizeof(t->clen), "%s", cl ? cl : "");
    t->c->pending--;
}

static const net_call_handler handler = {on_body, on_send, on_done};

/* One call to host; body_len bytes of pattern are produced when body_len > 0. */
static void do_call_to(tcl *c, const char *host, int port, const char *method, const char *target,
                       uint64_t body_len, tcall *t)
{
    net_call *call;
    memset(t, 0, sizeof(*t));
    t->c = c;
    t->body = evbuffer_new();
    t->to_send = body_len;
    CU_ASSERT_EQUAL_FATAL(net_call_new(c->cl, host, port, method, target, &call), CM_OK);
    if (body_len > 0)
        net_call_body(call, body_len, NULL);
    c->pending++;
    net_call_start(call, &handler, t, body_len == 0);
    tcl_run(c);
    CU_ASSERT_EQUAL(t->done, 1);
}

/* One call to 127.0.0.1. */
static void do_call(tcl *c, int port, const char *method, const char *target, uint64_t body_len,
                    tcall *t)
{
    do_call_to(c, "127.0.0.1", port, method, target, body_len, t);
}

static int body_is_pattern(struct evbuffer *b, size_t n)
{
    if (evbuffer_get_length(b) != n)
        return 0;
    const uint8_t *p = evbuffer_pullup(b, -1);
    for (size_t i = 0; i < n; i++)
        if (p[i] != pattern(i))
            return 0;
    return 1;
}

static void test_framings_and_keepalive(void)
{
    tsrv s;
    tcl c;
    tcall t;
    net_client_stats st;
    srv_start(&s);
    tcl_init(&c, 5000);
    do_call(&c, s.port, "GET", "/len/70000", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.status, 200);
    CU_ASSERT(body_is_pattern(t.body, 70000));
    evbuffer_free(t.body);
    do_call(&c, s.port, "GET", "/chunked/54321", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT(body_is_pattern(t.body, 54321));
    evbuffer_free(t.body);
    do_call(&c, s.port, "HEAD", "/len/999", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(evbuffer_get_length(t.body), 0);
    CU_ASSERT_STRING_EQUAL(t.clen, "999");
    evbuffer_free(t.body);
    net_client_get_stats(c.cl, &st);
    CU_ASSERT_EQUAL(st.connects, 1); /* all three on one kept-alive connection */
    CU_ASSERT_EQUAL(st.reuses, 2);
    /* Connection: close ends the connection; the next call opens another */
    do_call(&c, s.port, "GET", "/close", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(evbuffer_get_length(t.body), 3);
    evbuffer_free(t.body);
    CU_ASSERT_EQUAL(net_client_conns(c.cl, "127.0.0.1", s.port), 0);
    do_call(&c, s.port, "GET", "/len/10", 0, &t);
    CU_ASSERT(body_is_pattern(t.body, 10));
    evbuffer_free(t.body);
    net_client_get_stats(c.cl, &st);
    CU_ASSERT_EQUAL(st.connects, 2);
    tcl_free(&c);
    srv_stop(&s);
}

/*
 * A peer named by a DNS name ("localhost", from /etc/hosts): calls reach the server, a connection
 * is pooled under the name, a new connection resolves again, a closed port fails as refused.
 */
static void test_host_names(void)
{
    tsrv s;
    tcl c;
    tcall t;
    net_client_stats st;
    srv_start(&s);
    tcl_init(&c, 5000);
    do_call_to(&c, "localhost", s.port, "GET", "/len/5000", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT(body_is_pattern(t.body, 5000));
    evbuffer_free(t.body);
    CU_ASSERT_EQUAL(net_client_conns(c.cl, "localhost", s.port), 1);
    do_call_to(&c, "localhost", s.port, "GET", "/close", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    evbuffer_free(t.body);
    do_call_to(&c, "localhost", s.port, "PUT", "/sink", 100000, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.status, 200);
    evbuffer_free(t.body);
    net_client_get_stats(c.cl, &st);
    CU_ASSERT_EQUAL(st.connects, 2); /* the second after Connection: close */
    int port = s.port;
    srv_stop(&s);
    do_call_to(&c, "localhost", port, "GET", "/len/1", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_ERR_UNAVAILABLE);
    evbuffer_free(t.body);
    tcl_free(&c);
}

/* A name server on the client's loop: node.test is addr[0..naddrs) (A, in that order), no AAAA;
 * counts the lookups. */
typedef struct {
    struct in_addr addr[2];
    int naddrs;
    int lookups;
    char where[64]; /* its address, the client's cfg.nameserver (borrowed) */
    evutil_socket_t fd;
    struct evdns_server_port *port;
} tns;

static void ns_request(struct evdns_server_request *req, void *arg)
{
    tns *ns = arg;
    for (int i = 0; i < req->nquestions; i++) {
        const struct evdns_server_question *q = req->questions[i];
        if (q->type == EVDNS_TYPE_A && strcasecmp(q->name, "node.test") == 0) { /* 0x20 case */
            ns->lookups++;
            evdns_server_request_add_a_reply(req, q->name, ns->naddrs, ns->addr, 0);
        }
    }
    evdns_server_request_respond(req, 0);
}

/* A client (connect timeout connect_ms) whose only name server is ns, on a UDP port of its loop. */
static void ns_client_init(tcl *c, tns *ns, int connect_ms)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    memset(ns, 0, sizeof(*ns));
    ns->fd = socket(AF_INET, SOCK_DGRAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    CU_ASSERT_FATAL(ns->fd >= 0 && bind(ns->fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    CU_ASSERT_FATAL(getsockname(ns->fd, (struct sockaddr *)&sin, &len) == 0);
    evutil_make_socket_nonblocking(ns->fd);
    snprintf(ns->where, sizeof(ns->where), "127.0.0.1:%d", ntohs(sin.sin_port));
    net_client_config cfg;
    memset(c, 0, sizeof(*c));
    net_client_config_defaults(&cfg);
    cfg.nameserver = ns->where;
    cfg.connect_timeout_ms = connect_ms;
    c->base = event_base_new();
    CU_ASSERT_EQUAL_FATAL(net_client_new(c->base, &cfg, &c->cl), CM_OK);
    ns->port = evdns_add_server_port_with_base(c->base, ns->fd, 0, ns_request, ns);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ns->port);
}

static void ns_client_free(tcl *c, tns *ns)
{
    net_client_free(c->cl);
    evdns_close_server_port(ns->port);
    event_base_free(c->base);
    evutil_closesocket(ns->fd);
}

static void ns_set(tns *ns, const char *first, const char *second)
{
    inet_pton(AF_INET, first, &ns->addr[0]);
    ns->naddrs = 1;
    if (second && inet_pton(AF_INET, second, &ns->addr[1]) == 1)
        ns->naddrs = 2;
}

/*
 * A peer whose name moves to another address (a pod restarted elsewhere): once the server at
 * the old address is gone, the next call resolves again and reaches the new one.
 */
static void test_name_moves(void)
{
    tsrv a, b;
    tcl c;
    tcall t;
    tns ns;
    uint64_t open, acc_a, acc_b;
    srv_start_at(&a, "127.0.0.1", 0);
    srv_start_at(&b, "127.0.0.2", a.port); /* the same port at the new address */
    ns_client_init(&c, &ns, 2000);

    ns_set(&ns, "127.0.0.1", NULL);
    do_call_to(&c, "node.test", a.port, "GET", "/len/100", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT(body_is_pattern(t.body, 100));
    evbuffer_free(t.body);
    net_server_conn_stats(a.srv, &open, &acc_a);
    CU_ASSERT_EQUAL(acc_a, 1);
    CU_ASSERT_EQUAL(ns.lookups, 1);

    ns_set(&ns, "127.0.0.2", NULL);
    srv_stop(&a); /* its connections close; the pooled one goes when its EOF is read */
    do_call_to(&c, "node.test", a.port, "GET", "/len/200", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT(body_is_pattern(t.body, 200));
    evbuffer_free(t.body);
    net_server_conn_stats(b.srv, &open, &acc_b);
    CU_ASSERT_EQUAL(acc_b, 1);
    CU_ASSERT(ns.lookups >= 2);

    ns_client_free(&c, &ns);
    srv_stop(&b);
}

/*
 * A name whose first address is dead and whose second is live: a connection tries the second
 * when connecting to the first fails, whether it is refused (nothing listens at 127.0.0.3) or
 * never answers (127.0.0.4 listens with a full accept queue: its SYNs are dropped, the connect
 * times out). A PUT, which is never sent again, goes out once, whole, to the live address.
 */
static void test_name_next_address(void)
{
    tsrv a;
    tcl c;
    tcall t;
    tns ns;
    uint64_t open, acc;
    net_client_stats st;
    srv_start_at(&a, "127.0.0.1", 0);
    ns_client_init(&c, &ns, 300);

    ns_set(&ns, "127.0.0.3", "127.0.0.1");
    do_call_to(&c, "node.test", a.port, "GET", "/len/100", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT(body_is_pattern(t.body, 100));
    evbuffer_free(t.body);
    net_client_get_stats(c.cl, &st);
    CU_ASSERT_EQUAL(st.connects, 2);
    CU_ASSERT_EQUAL(st.retries, 0); /* the call was not sent again: it moved before sending */
    do_call_to(&c, "node.test", a.port, "GET", "/close", 0, &t); /* the next call connects anew */
    CU_ASSERT_EQUAL(t.err, CM_OK);
    evbuffer_free(t.body);

    /* a listener that never accepts: once its queue holds a connection (backlog 0), SYNs drop;
     * the fillers connect without waiting (the second may sit in SYN_SENT) */
    int lfd = socket(AF_INET, SOCK_STREAM, 0), fill[2] = {-1, -1};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a.port)};
    inet_pton(AF_INET, "127.0.0.4", &sin.sin_addr);
    CU_ASSERT_FATAL(lfd >= 0 && bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
                    listen(lfd, 0) == 0);
    for (int i = 0; i < 2; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        CU_ASSERT_FATAL(fill[i] >= 0);
        if (connect(fill[i], (struct sockaddr *)&sin, sizeof(sin)) != 0)
            CU_ASSERT_EQUAL(errno, EINPROGRESS);
    }
    ns_set(&ns, "127.0.0.4", "127.0.0.1");
    int64_t t0 = cm_monotonic_ms();
    do_call_to(&c, "node.test", a.port, "PUT", "/sink", 100000, &t);
    int64_t took = cm_monotonic_ms() - t0;
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.status, 200);
    CU_ASSERT(took >= 250 && took < 3000); /* one connect timeout (300 ms), then the live one */
    evbuffer_free(t.body);
    net_server_conn_stats(a.srv, &open, &acc);
    CU_ASSERT_EQUAL(acc, 2); /* the GET's (then closed by /close) and the PUT's */
    do_call_to(&c, "node.test", a.port, "GET", "/close", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    evbuffer_free(t.body);

    /* both dead: the call fails, after trying each once */
    ns_set(&ns, "127.0.0.3", "127.0.0.5");
    net_client_get_stats(c.cl, &st);
    uint64_t before = st.connects;
    do_call_to(&c, "node.test", a.port, "GET", "/len/1", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_ERR_UNAVAILABLE);
    evbuffer_free(t.body);
    net_client_get_stats(c.cl, &st);
    CU_ASSERT_EQUAL(st.connects - before, 4); /* two addresses, the call's one retry */

    for (int i = 0; i < 2; i++)
        close(fill[i]);
    close(lfd);
    ns_client_free(&c, &ns);
    srv_stop(&a);
}

static void test_request_bodies(void)
{
    tsrv s;
    tcl c;
    tcall t;
    char want[64];
    srv_start(&s);
    tcl_init(&c, 5000);
    /* 3 MiB produced in 50 KB pieces only while the output is low */
    const uint64_t n = 3u << 20;
    uint8_t *all = malloc(n);
    for (uint64_t i = 0; i < n; i++)
        all[i] = pattern(i);
    snprintf(want, sizeof(want), "%llu %08x", (unsigned long long)n, cm_crc32c(0, all, n));
    do_call(&c, s.port, "PUT", "/echo", n, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.sent, n);
    CU_ASSERT_EQUAL(evbuffer_get_length(t.body), strlen(want));
    CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(t.body, -1), want, strlen(want)), 0);
    evbuffer_free(t.body);
    /* again on the kept connection, whose requests are written at once (conn_write_now): when
     * the kernel takes the produced output whole, the client must ask for more itself */
    net_client_stats st0, st1;
    net_client_get_stats(c.cl, &st0);
    do_call(&c, s.port, "PUT", "/echo", n, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.sent, n);
    CU_ASSERT_EQUAL(evbuffer_get_length(t.body), strlen(want));
    net_client_get_stats(c.cl, &st1);
    CU_ASSERT_EQUAL(st1.reuses, st0.reuses + 1);
    evbuffer_free(t.body);
    /* the server answers before reading a big body: the call ends with that answer, no hang */
    do_call(&c, s.port, "PUT", "/early", 64u << 20, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.status, 401);
    CU_ASSERT(t.sent < (64u << 20));
    evbuffer_free(t.body);
    /* and the client goes on with a fresh connection */
    do_call(&c, s.port, "GET", "/len/5", 0, &t);
    CU_ASSERT(body_is_pattern(t.body, 5));
    evbuffer_free(t.body);
    free(all);
    tcl_free(&c);
    srv_stop(&s);
}

/*
 * A body that drains slowly but steadily takes far longer than the io timeout: no timeout, because
 * the timer looks at progress, not at callbacks (the whole body sits in the output buffer, above
 * the low-water mark, so no write callback fires for most of the transfer).
 */
static void test_slow_steady_body(void)
{
    tsrv s;
    tcl c;
    tcall t;
    net_call *call;
    const size_t n = 4u << 20;
    uint8_t *all = malloc(n);
    srv_start(&s);
    tcl_init(&c, 400); /* the transfer takes about 1.3 s */
    for (size_t i = 0; i < n; i++)
        all[i] = pattern(i);
    memset(&t, 0, sizeof(t));
    t.c = &c;
    t.body = evbuffer_new();
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_reference(b, all, n, NULL, NULL);
    CU_ASSERT_EQUAL_FATAL(net_call_new(c.cl, "127.0.0.1", s.port, "PUT", "/slow", &call), CM_OK);
    net_call_body(call, n, b);
    evbuffer_free(b);
    c.pending++;
    int64_t t0 = cm_monotonic_ms();
    net_call_start(call, &handler, &t, 0);
    tcl_run(&c);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.status, 200);
    CU_ASSERT(cm_monotonic_ms() - t0 > 400); /* it did outlast the io timeout */
    char want[64];
    snprintf(want, sizeof(want), "%llu %08x", (unsigned long long)n, cm_crc32c(0, all, n));
    CU_ASSERT_EQUAL(evbuffer_get_length(t.body), strlen(want));
    evbuffer_free(t.body);
    free(all);
    tcl_free(&c);
    srv_stop(&s);
}

/* ---- canned responses ---- */

static const char *canned;

static void canned_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
    (void)lis;
    (void)sa;
    (void)salen;
    (void)arg;
    /* a fresh socket takes these few bytes at once; then the peer closes */
    if (write(fd, canned, strlen(canned)) < 0)
        perror("write");
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void test_canned_responses(void)
{
    tcl c;
    tcall t;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    tcl_init(&c, 2000);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *lis = evconnlistener_new_bind(
        c.base, canned_accept, NULL, LEV_OPT_CLOSE_ON_FREE, -1, (struct sockaddr *)&sa, sizeof(sa));
    CU_ASSERT_PTR_NOT_NULL_FATAL(lis);
    getsockname(evconnlistener_get_fd(lis), (struct sockaddr *)&sa, &len);
    int port = ntohs(sa.sin_port);

    canned = "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil the end";
    do_call(&c, port, "GET", "/", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(evbuffer_get_length(t.body), 13); /* close-delimited body */
    evbuffer_free(t.body);

    canned = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    do_call(&c, port, "GET", "/", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.status, 204);
    evbuffer_free(t.body);

    canned = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    do_call(&c, port, "GET", "/", 0, &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(evbuffer_get_length(t.body), 5);
    evbuffer_free(t.body);

    static const char *const bad[] = {
        "nonsense\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\n",
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(bad); i++) {
        canned = bad[i];
        do_call(&c, port, "GET", "/", 0, &t);
        CU_ASSERT_EQUAL(t.err, CM_ERR_CLOSED);
        evbuffer_free(t.body);
    }
    evconnlistener_free(lis);
    tcl_free(&c);
}

/* ---- a retry after a lost connection ---- */

/* A peer in a thread: the first connection is closed once the request head is in (no answer, as
 * a stale pooled connection ends); the second answers whether its head still carried X-Probe. */
typedef struct {
    int lfd;
    pthread_t th;
} probe_peer;

/* p listening on a port of 127.0.0.1 (returned), served by fn in a thread. */
static int peer_start(probe_peer *p, void *(*fn)(void *))
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(p->lfd >= 0);
    CU_ASSERT_FATAL(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CU_ASSERT_FATAL(listen(p->lfd, 4) == 0);
    getsockname(p->lfd, (struct sockaddr *)&sa, &len);
    pthread_create(&p->th, NULL, fn, p);
    return ntohs(sa.sin_port);
}

static int read_head(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return 0;
    }
    return -1;
}

static void *probe_thread(void *arg)
{
    probe_peer *p = arg;
    char head[4096];
    for (int i = 0; i < 2; i++) {
        int fd = accept(p->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        if (read_head(fd, head, sizeof(head)) == 0 && i == 1) {
            const char *ans = strstr(head, "X-Probe: kept\r\n") ? "yes" : "no!";
            char resp[128];
            int n = snprintf(resp, sizeof(resp),
                             "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n%s",
                             ans);
            if (write(fd, resp, (size_t)n) < 0)
                perror("write");
        }
        close(fd);
    }
    return NULL;
}

static void test_retry_keeps_headers(void)
{
    probe_peer p;
    tcl c;
    tcall t;
    net_call *call;
    net_client_stats st;
    int port = peer_start(&p, probe_thread);
    tcl_init(&c, 2000);
    memset(&t, 0, sizeof(t));
    t.c = &c;
    t.body = evbuffer_new();
    CU_ASSERT_EQUAL_FATAL(net_call_new(c.cl, "127.0.0.1", port, "GET", "/cell", &call), CM_OK);
    net_call_header(call, "X-Probe", "kept");
    c.pending++;
    net_call_start(call, &handler, &t, 1);
    tcl_run(&c);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.status, 200);
    CU_ASSERT(evbuffer_get_length(t.body) == 3 &&
              memcmp(evbuffer_pullup(t.body, -1), "yes", 3) == 0); /* sent again whole */
    net_client_get_stats(c.cl, &st);
    CU_ASSERT_EQUAL(st.retries, 1);
    evbuffer_free(t.body);
    tcl_free(&c);
    shutdown(p.lfd, SHUT_RDWR); /* wakes an accept still waiting (no retry came): no hang */
    pthread_join(p.th, NULL);
    close(p.lfd);
}

/* ---- a cell-sized body received into one pooled buffer ---- */

static int body_calls, body_chains;

static void count_body(net_call *call, struct evbuffer *body, void *arg)
{
    body_calls++;
    body_chains += evbuffer_peek(body, -1, NULL, NULL, 0);
    on_body(call, body, arg);
}

static const net_call_handler count_handler = {count_body, on_send, on_done};

/* GET target through the counting handler; the calls and chains on_body saw. */
static void counted_call(tcl *c, int port, const char *target, tcall *t)
{
    net_call *call;
    memset(t, 0, sizeof(*t));
    t->c = c;
    t->body = evbuffer_new();
    body_calls = body_chains = 0;
    CU_ASSERT_EQUAL_FATAL(net_call_new(c->cl, "127.0.0.1", port, "GET", target, &call), CM_OK);
    c->pending++;
    net_call_start(call, &count_handler, t, 1);
    tcl_run(c);
    CU_ASSERT_EQUAL(t->done, 1);
}

/* A peer in a thread that announces 200,000 body bytes, sends half and closes. */
static void *cut_thread(void *arg)
{
    probe_peer *p = arg;
    char head[4096];
    int fd = accept(p->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    if (read_head(fd, head, sizeof(head)) == 0) {
        static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n";
        static uint8_t half[100000];
        if (write(fd, resp, sizeof(resp) - 1) < 0 || write(fd, half, sizeof(half)) < 0)
            perror("write");
    }
    close(fd);
    return NULL;
}

/*
 * A length-framed body of 32-256 KiB (a node's cell answer) reaches on_body whole, in one call
 * and one chain, received into a buffer of the shared pool that goes back to it once the consumer
 * frees it (on any thread); a longer body and a short one take the input buffer's chains as before;
 * a peer that closes in the middle of such a body fails the call (no hang, no leak).
 */
static void test_direct_body(void)
{
    tsrv s;
    tcl c;
    tcall t;
    srv_start(&s);
    tcl_init(&c, 5000);
    cm_bufpool_release_shared();
    counted_call(&c, s.port, "/len/262144", &t);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT(body_is_pattern(t.body, 262144));
    CU_ASSERT_EQUAL(body_calls, 1);
    CU_ASSERT_EQUAL(body_chains, 1);
    CU_ASSERT_EQUAL(cm_bufpool_idle_shared(), 0); /* the body still holds it */
    evbuffer_free(t.body);
    CU_ASSERT_EQUAL(cm_bufpool_idle_shared(), 1); /* given back */
    counted_call(&c, s.port, "/len/40000", &t);
    CU_ASSERT(body_is_pattern(t.body, 40000));
    CU_ASSERT_EQUAL(body_chains, 1);
    CU_ASSERT_EQUAL(cm_bufpool_idle_shared(), 0); /* the same buffer again */
    evbuffer_free(t.body);
    counted_call(&c, s.port, "/len/300000", &t); /* past the largest: chains, as before */
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT(body_is_pattern(t.body, 300000));
    CU_ASSERT(body_chains > 1);
    evbuffer_free(t.body);
    counted_call(&c, s.port, "/len/1000", &t);
    CU_ASSERT(body_is_pattern(t.body, 1000));
    evbuffer_free(t.body);
    tcl_free(&c);
    srv_stop(&s);

    probe_peer p;
    int port = peer_start(&p, cut_thread);
    tcl_init(&c, 5000);
    counted_call(&c, port, "/", &t);
    CU_ASSERT_EQUAL(t.err, CM_ERR_CLOSED);
    CU_ASSERT_EQUAL(body_calls, 0); /* nothing of a body cut short was handed on */
    evbuffer_free(t.body);
    tcl_free(&c);
    pthread_join(p.th, NULL);
    close(p.lfd);
    cm_bufpool_release();
}

/* The parser alone, as the fuzz target drives it. */
static void test_resp_parse(void)
{
    static const struct {
        const char *method, *in;
        cm_err want;
        int status;
        uint64_t body;
    } cases[] = {
        {"GET", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", CM_OK, 200, 3},
        {"GET", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab", CM_AGAIN, 200, 2},
        {"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", CM_OK, 200, 0},
        {"GET",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde"
         "\r\n0\r\nT: 1\r\n\r\n",
         CM_OK, 200, 5},
        {"GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
         CM_OK, 404, 0},
        {"GET", "HTTP/1.0 200 OK\r\n\r\nto the end", CM_OK, 200, 10},
        {"GET", "HTTP/1.1 200 OK\r\nContent-Le", CM_AGAIN, 0, 0},
        {"GET", "HTTP/2 200\r\n\r\n", CM_ERR_CLOSED, 0, 0},
        {"GET", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", CM_ERR_CLOSED, 200, 0},
        {"GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", CM_ERR_CLOSED,
         200, 3},
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(cases); i++) {
        int status = -1;
        uint64_t body = 99;
        cm_err e =
            net_resp_parse(cases[i].in, strlen(cases[i].in), cases[i].method, &status, &body);
        CU_ASSERT_EQUAL(e, cases[i].want);
        if (e != cases[i].want)
            fprintf(stderr, "case %zu: %s\n", i, cm_err_name(e));
        if (e != CM_ERR_CLOSED) {
            CU_ASSERT_EQUAL(status, cases[i].status);
            CU_ASSERT_EQUAL(body, cases[i].body);
        }
    }
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"framings_and_keepalive", test_framings_and_keepalive},
        {"request_bodies", test_request_bodies},
        {"host_names", test_host_names},
        {"name_moves", test_name_moves},
        {"name_next_address", test_name_next_address},
        {"slow_steady_body", test_slow_steady_body},
        {"canned_responses", test_canned_responses},
        {"retry_keeps_headers", test_retry_keeps_headers},
        {"direct_body", test_direct_body},
        {"resp_parse", test_resp_parse},
        {NULL, NULL},
    };
    cu_add_suite("net_client", tests);
}
