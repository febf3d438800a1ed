/*
 * cmd/bench_http.c - the HTTP/1.1 client connections of `cairn bench`.
 *
 * A connection is a bufferevent with one request in flight at a time (keep-alive, no pipelining).
 * It asks the run for a request (bench_run_next), writes the head (signed, or plain in --raw-http
 * mode) and, for a PUT, the body by reference into the output evbuffer; then parses the response
 * as bytes arrive: status line and headers, then a body framed by Content-Length, chunked
 * encoding, or the end of the connection (HEAD, 1xx, 204 and 304 have none). Body bytes are
 * compared in place against the deterministic content when the run asked for verification and
 * drained without copying otherwise. When the response is complete the connection reports it
 * (bench_run_done) and immediately takes the next request. A server that closes the connection
 * (Connection: close, EOF, error, timeout) costs a reconnect; a request in flight then fails.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#define MAX_HEAD (64 * 1024)
#define ERRTEXT 160

typedef enum {
    RS_HEAD,
    RS_BODY_LEN,
    RS_BODY_EOF,
    RS_CHUNK_SIZE,
    RS_CHUNK_DATA,
    RS_CHUNK_END,
    RS_TRAILER
} resp_state;

struct bench_conn {
    bench_run *run;
    const bench_target *t;
    struct bufferevent *bev;
    int busy;
    bench_req req;
    uint64_t start_ns;
    uint64_t off; /* content offset of the request's key */
    resp_state rs;
    int status;
    int close_after;
    uint64_t remain; /* body (Content-Length) or chunk bytes still to come */
    uint64_t body;   /* body bytes received */
    int bad_body;    /* verification found a difference */
    size_t errlen;
    char errtext[ERRTEXT];
};

static void read_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

void bench_key_name(const bench_target *t, uint64_t i, char *out, size_t cap)
{
    snprintf(out, cap, "%s-%08llu", t->prefix, (unsigned long long)i);
}

bench_conn *bench_conn_new(bench_run *run, const bench_target *t)
{
    bench_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->run = run;
    c->t = t;
    return c;
}

static void drop(bench_conn *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    c->bev = NULL;
}

void bench_conn_free(bench_conn *c)
{
    if (!c)
        return;
    drop(c);
    free(c);
}

int bench_conn_busy(const bench_conn *c)
{
    return c->busy;
}

static int dial(bench_conn *c)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)c->t->port);
    if (inet_pton(AF_INET, c->t->host, &sa.sin_addr) != 1)
        return -1;
    c->bev = bufferevent_socket_new(c->t->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev)
        return -1;
    bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
    struct timeval tv = {c->t->timeout_s, 0};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        drop(c);
        return -1;
    }
    return 0;
}

/* Method, path and canonical query of a request; key is scratch space for the key name. */
static const char *target_of(bench_conn *c, char *path, size_t pcap, char *query, size_t qcap)
{
    const bench_target *t = c->t;
    char key[256];
    query[0] = '\0';
    switch (c->req.op) {
    case BENCH_MKBUCKET:
        snprintf(path, pcap, "/%s", t->bucket);
        return "PUT";
    case BENCH_LIST:
        snprintf(path, pcap, "/%s", t->bucket);
        snprintf(query, qcap, "list-type=2&max-keys=100&prefix=%s", t->prefix);
        return "GET";
    default:
        break;
    }
    bench_key_name(t, c->req.key, key, sizeof(key));
    c->off = bench_key_hash(t->content, key);
    snprintf(path, pcap, "/%s/%s", t->bucket, key);
    static const char *const methods[] = {"PUT", "GET", "HEAD", "DELETE"};
    return methods[c->req.op];
}

static int send_request(bench_conn *c)
{
    const bench_target *t = c->t;
    char path[512], query[300], amz[17], auth[512];
    struct evbuffer *out;
    const char *method = "GET";

    if (!c->bev && dial(c) != 0)
        return -1;
    out = bufferevent_get_output(c->bev);
    if (t->raw_path) {
        snprintf(path, sizeof(path), "%s", t->raw_path);
        query[0] = '\0';
        c->off = 0;
        return evbuffer_add_printf(out, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, t->hosthdr) < 0
                   ? -1
                   : 0;
    }
    method = target_of(c, path, sizeof(path), query, sizeof(query));
    bench_sign(t->signer, time(NULL), method, t->hosthdr, path, query, amz, auth, sizeof(auth));
    uint64_t len = c->req.op == BENCH_PUT ? c->req.size : 0;
    int n = evbuffer_add_printf(out,
                                "%s %s%s%s HTTP/1.1\r\nHost: %s\r\nx-amz-content-sha256: "
                                "UNSIGNED-PAYLOAD\r\nx-amz-date: %s\r\nAuthorization: %s\r\n",
                                method, path, query[0] ? "?" : "", query, t->hosthdr, amz, auth);
    if (n < 0)
        return -1;
    if (c->req.op == BENCH_PUT || c->req.op == BENCH_MKBUCKET)
        n = evbuffer_add_printf(out, "Content-Length: %llu\r\n", (unsigned long long)len);
    if (n < 0 || evbuffer_add(out, "\r\n", 2) != 0)
        return -1;
    if (len > 0 && bench_content_add(t->content, out, c->off, len) != 0)
        return -1;
    return 0;
}

int bench_conn_kick(bench_conn *c)
{
    if (c->busy)
        return 1;
    while (bench_run_next(c->run, &c->req)) {
        c->busy = 1;
        c->rs = RS_HEAD;
        c->status = 0;
        c->close_after = 0;
        c->body = 0;
        c->bad_body = 0;
        c->errlen = 0;
        c->start_ns = bench_now_ns();
        if (send_request(c) == 0)
            return 1;
        c->busy = 0;
        drop(c);
        bench_run_error(c->run, "%s: cannot connect to %s:%d", bench_op_name(c->req.op), c->t->host,
                        c->t->port);
        bench_run_done(c->run, c, &c->req, 0, 0, 0, 0, bench_now_ns() - c->start_ns);
    }
    return 0;
}

static int expected_status(bench_op op, int status)
{
    switch (op) {
    case BENCH_DELETE:
        return status == 204 || status == 200;
    case BENCH_MKBUCKET:
        return status == 200 || status == 409; /* 409: BucketAlreadyOwnedByYou */
    default:
        return status == 200;
    }
}

static void complete(bench_conn *c)
{
    uint64_t ns = bench_now_ns() - c->start_ns;
    const bench_req *r = &c->req;
    int ok = expected_status(r->op, c->status);
    int miss = !ok && c->status == 404 && r->tolerate_404;
    int checked = ok && r->verify && r->op == BENCH_GET;
    uint64_t bytes = r->op == BENCH_PUT ? r->size : c->body;

    if (ok && r->op == BENCH_GET && r->size != UINT64_MAX && c->body != r->size) {
        ok = 0;
        bench_run_error(c->run, "get key %llu: %llu body bytes, expected %llu",
                        (unsigned long long)r->key, (unsigned long long)c->body,
                        (unsigned long long)r->size);
    } else if (ok && checked && c->bad_body) {
        ok = 0;
        bench_run_error(c->run, "get key %llu: body differs from what was put",
                        (unsigned long long)r->key);
    } else if (!ok && !miss) {
        bench_run_error(c->run, "%s key %llu: HTTP %d %.*s", bench_op_name(r->op),
                        (unsigned long long)r->key, c->status, (int)c->errlen, c->errtext);
    }
    c->busy = 0;
    if (c->close_after)
        drop(c);
    bench_run_done(c->run, c, r, ok, miss, ok ? bytes : 0, checked && ok, ns);
    bench_conn_kick(c);
}

/* A request failed at the transport level. */
static void fail(bench_conn *c, const char *why)
{
    uint64_t ns = bench_now_ns() - c->start_ns;
    drop(c);
    if (!c->busy)
        return;
    c->busy = 0;
    bench_run_error(c->run, "%s key %llu: %s", bench_op_name(c->req.op),
                    (unsigned long long)c->req.key, why);
    bench_run_done(c->run, c, &c->req, 0, 0, 0, 0, ns);
    bench_conn_kick(c);
}

static void parse_header(bench_conn *c, const char *line, size_t len, int *chunked, int64_t *clen)
{
    const char *colon = memchr(line, ':', len);
    if (!colon)
        return;
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0)
        *clen = strtoll(v, NULL, 10);
    else if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0)
        *chunked = strncasecmp(v, "chunked", 7) == 0;
    else if (nlen == 10 && strncasecmp(line, "connection", 10) == 0)
        c->close_after = strncasecmp(v, "close", 5) == 0;
}

/* Parse a complete head of hlen bytes (ending in CRLFCRLF) and pick the body framing. */
static int parse_head(bench_conn *c, const char *head, size_t hlen)
{
    int chunked = 0;
    int64_t clen = -1;
    int minor = 1;
    if (sscanf(head, "HTTP/1.%d %3d", &minor, &c->status) != 2)
        return -1;
    c->close_after = minor == 0;
    const char *p = memchr(head, '\n', hlen);
    while (p && (size_t)(p + 1 - head) < hlen) {
        const char *line = p + 1;
        p = memchr(line, '\n', hlen - (size_t)(line - head));
        if (!p)
            break;
        size_t len = (size_t)(p - line);
        if (len > 0 && line[len - 1] == '\r')
            len--;
        parse_header(c, line, len, &chunked, &clen);
    }
    if (c->status >= 100 && c->status < 200)
        c->rs = RS_HEAD;
    else if (c->req.op == BENCH_HEAD || c->status == 204 || c->status == 304 || clen == 0)
        c->rs = RS_BODY_LEN, c->remain = 0;
    else if (chunked)
        c->rs = RS_CHUNK_SIZE;
    else if (clen > 0)
        c->rs = RS_BODY_LEN, c->remain = (uint64_t)clen;
    else
        c->rs = RS_BODY_EOF;
    return 0;
}

/* Take n body bytes off in: verify or keep an error excerpt, then drain. */
static void eat_body(bench_conn *c, struct evbuffer *in, size_t n)
{
    if (c->req.verify && c->status == 200 && !c->bad_body) {
        struct evbuffer_iovec v[16];
        size_t left = n, pos = c->body;
        while (left > 0 && !c->bad_body) {
            int k = evbuffer_peek(in, (ev_ssize_t)left, NULL, v, 16);
            for (int i = 0; i < k && i < 16 && left > 0; i++) {
                size_t l = v[i].iov_len < left ? v[i].iov_len : left;
                if (!bench_content_check(c->t->content, c->off, pos, v[i].iov_base, l))
                    c->bad_body = 1;
                pos += l;
                left -= l;
            }
            if (left > 0) { /* more than 16 extents: drain what was checked and go on */
                evbuffer_drain(in, n - left);
                c->body += n - left;
                n = left;
            }
        }
    } else if (c->status >= 300 && c->errlen < ERRTEXT) {
        size_t k = ERRTEXT - c->errlen < n ? ERRTEXT - c->errlen : n;
        evbuffer_copyout(in, c->errtext + c->errlen, k);
        for (size_t i = c->errlen; i < c->errlen + k; i++)
            if (c->errtext[i] == '\n' || c->errtext[i] == '\r')
                c->errtext[i] = ' ';
        c->errlen += k;
    }
    evbuffer_drain(in, n);
    c->body += n;
}

/* One parsing step; 1 to go on, 0 when more input is needed, -1 on a malformed response. */
static int step(bench_conn *c, struct evbuffer *in)
{
    size_t avail = evbuffer_get_length(in);
    if (c->rs == RS_HEAD) {
        struct evbuffer_ptr e = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        if (e.pos < 0)
            return avail > MAX_HEAD ? -1 : 0;
        size_t hlen = (size_t)e.pos + 4;
        char *head = (char *)evbuffer_pullup(in, (ev_ssize_t)hlen);
        char save = head[hlen - 1];
        head[hlen - 1] = '\0'; /* the final '\n' becomes the terminator sscanf needs */
        int r = parse_head(c, head, hlen - 1);
        head[hlen - 1] = save;
        evbuffer_drain(in, hlen);
        if (r != 0)
            return -1;
        if (c->rs == RS_BODY_LEN && c->remain == 0) {
            complete(c);
            return 1;
        }
        return 1;
    }
    if (c->rs == RS_BODY_LEN || c->rs == RS_CHUNK_DATA) {
        if (avail == 0)
            return 0;
        size_t n = avail < c->remain ? avail : (size_t)c->remain;
        eat_body(c, in, n);
        c->remain -= n;
        if (c->remain > 0)
            return 0;
        if (c->rs == RS_CHUNK_DATA)
            c->rs = RS_CHUNK_END;
        else
            complete(c);
        return 1;
    }
    if (c->rs == RS_BODY_EOF) {
        eat_body(c, in, avail);
        return 0;
    }
    if (c->rs == RS_CHUNK_END) {
        if (avail < 2)
            return 0;
        evbuffer_drain(in, 2);
        c->rs = RS_CHUNK_SIZE;
        return 1;
    }
    size_t len;
    char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
    if (!line)
        return avail > MAX_HEAD ? -1 : 0;
    if (c->rs == RS_CHUNK_SIZE) {
        char *end;
        c->remain = strtoull(line, &end, 16);
        int bad = end == line;
        free(line);
        if (bad)
            return -1;
        c->rs = c->remain == 0 ? RS_TRAILER : RS_CHUNK_DATA;
        return 1;
    }
    free(line); /* RS_TRAILER: trailer fields until the empty line */
    if (len == 0)
        complete(c);
    return 1;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    bench_conn *c = arg;
    (void)bev;
    while (c->bev) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        if (!c->busy) {
            if (evbuffer_get_length(in) > 0)
                fail(c, "unexpected bytes on an idle connection");
            return;
        }
        int r = step(c, in);
        if (r < 0) {
            fail(c, "malformed response");
            return;
        }
        if (r == 0)
            return;
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    bench_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return;
    }
    if (c->busy && c->rs == RS_BODY_EOF && (what & BEV_EVENT_EOF)) {
        drop(c);
        complete(c);
        return;
    }
    if (!c->busy) {
        drop(c); /* the server closed an idle keep-alive connection: reconnect on demand */
        return;
    }
    char why[160];
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(why, sizeof(why), "timed out after %d s", c->t->timeout_s);
    else if (what & BEV_EVENT_EOF)
        snprintf(why, sizeof(why), "connection closed by the server");
    else
        snprintf(why, sizeof(why), "connection error: %s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    fail(c, why);
}
