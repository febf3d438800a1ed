/*
 * co_http.c - a small blocking HTTP/1.1 client for etcd's JSON gateway.
 *
 * Why blocking: etcd calls are rare and off the data path (a layout change, a keepalive every few
 * seconds, a leader election per partition), and each caller is a background thread or an admin
 * command that waits for the answer anyway. A blocking client on its own thread is a few hundred
 * lines with no callbacks; the event loops never call it.
 *
 * One keep-alive connection per client, to the current endpoint. Every step (connect, send, the
 * answer head and body) is bounded by one deadline per attempt, with poll() on a non-blocking
 * socket. On a connect failure, a timeout, a lost connection or a 5xx answer the client moves to
 * the next endpoint; a request that must not run twice (a compare-and-set) is not re-sent once it
 * was fully written: its fate is reported as CM_ERR_UNCERTAIN. A kept-alive connection that the
 * server closed while idle is noticed before sending (it polls readable) and re-dialled; one that
 * dies during an idempotent request before any answer byte is re-dialled once.
 *
 * Answers with Content-Length, chunked transfer coding, or read-to-EOF are understood; a stream
 * (the watch) is a chunked answer split into lines. Every request carries the gRPC metadata
 * "hasleader: true" (etcd's require-leader): a member cut off from its cluster's leader ends its
 * watch streams and refuses keepalives within a few election timeouts, instead of serving a stale
 * view, so the caller moves on to a member of the majority. TCP keepalive (5 s idle, 3 probes 2 s
 * apart) lets a quiet stream notice a vanished peer.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cm_log.h"
#include "cm_util.h"
#include "co_int.h"

#define HEAD_MAX (64 * 1024)
#define BODY_MAX (64 * 1024 * 1024)
#define POLL_SLICE_MS 100

typedef struct {
    char *p;
    size_t len, cap;
} co_buf;

struct co_http {
    char url[CO_MAX_ENDPOINTS][128];
    char host[CO_MAX_ENDPOINTS][96];
    char port[CO_MAX_ENDPOINTS][8];
    int n, cur;
    int timeout_ms;
    int fd;
    int reused; /* the connection already carried a request */
    co_buf in;  /* bytes received and not yet consumed, from in_off */
    size_t in_off;
};

static cm_err buf_reserve(co_buf *b, size_t extra)
{
    if (extra == SIZE_MAX)
        return CM_ERR_NOMEM;
    return cm_buf_room(&b->p, &b->cap, b->len, extra + 1, 4096); /* and its NUL */
}

static cm_err buf_append(co_buf *b, const char *data, size_t len)
{
    if (buf_reserve(b, len) != CM_OK)
        return CM_ERR_NOMEM;
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return CM_OK;
}

static cm_err parse_url(const char *url, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strstr(p, "://"))
        return CM_ERR_UNSUPPORTED; /* https: not yet (docs/coordination.md) */
    const char *colon = strrchr(p, ':');
    size_t hlen = colon ? (size_t)(colon - p) : strcspn(p, "/");
    if (hlen == 0 || hlen >= hcap)
        return CM_ERR_INVAL;
    memcpy(host, p, hlen);
    host[hlen] = '\0';
    if (!colon) {
        snprintf(port, pcap, "2379");
        return CM_OK;
    }
    size_t plen = strcspn(colon + 1, "/");
    if (plen == 0 || plen >= pcap)
        return CM_ERR_INVAL;
    memcpy(port, colon + 1, plen);
    port[plen] = '\0';
    return CM_OK;
}

cm_err co_http_new(const co_config *cfg, co_http **out)
{
    if (cfg->n_endpoints < 1 || cfg->n_endpoints > CO_MAX_ENDPOINTS)
        return CM_ERR_INVAL;
    co_http *h = calloc(1, sizeof(*h));
    if (!h)
        return CM_ERR_NOMEM;
    for (int i = 0; i < cfg->n_endpoints; i++) {
        cm_err e = parse_url(cfg->endpoints[i], h->host[i], sizeof(h->host[i]), h->port[i],
                             sizeof(h->port[i]));
        if (e != CM_OK || strlen(cfg->endpoints[i]) >= sizeof(h->url[i])) {
            free(h);
            return e != CM_OK ? e : CM_ERR_INVAL;
        }
        snprintf(h->url[i], sizeof(h->url[i]), "%s", cfg->endpoints[i]);
    }
    h->n = cfg->n_endpoints;
    h->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : CO_DEFAULT_TIMEOUT_MS;
    h->fd = -1;
    *out = h;
    return CM_OK;
}

static void conn_close(co_http *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    h->reused = 0;
    h->in.len = 0;
    h->in_off = 0;
}

void co_http_free(co_http *h)
{
    if (!h)
        return;
    conn_close(h);
    free(h->in.p);
    free(h);
}

const char *co_http_endpoint(const co_http *h)
{
    return h->url[h->cur];
}

/* Milliseconds left before deadline (-1 deadline: forever, reported as one slice). */
static int remaining(int64_t deadline)
{
    if (deadline < 0)
        return POLL_SLICE_MS;
    int64_t left = deadline - cm_monotonic_ms();
    return left <= 0 ? 0 : (int)CM_MIN(left, (int64_t)POLL_SLICE_MS);
}

/* Wait for events on the socket until deadline or *stop; CM_AGAIN when stopped. */
static cm_err wait_fd(co_http *h, short events, int64_t deadline, const atomic_int *stop)
{
    for (;;) {
        if (stop && atomic_load(stop))
            return CM_AGAIN;
        int ms = remaining(deadline);
        if (ms == 0)
            return CM_ERR_TIMEOUT;
        struct pollfd pfd = {.fd = h->fd, .events = events};
        int r = poll(&pfd, 1, ms);
        if (r > 0)
            return CM_OK;
        if (r < 0 && errno != EINTR)
            return CM_ERR_IO;
    }
}

static void tune_socket(int fd)
{
    int one = 1, idle = 5, intvl = 2, cnt = 3;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static cm_err conn_open(co_http *h, int64_t deadline)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(h->host[h->cur], h->port[h->cur], &hints, &res) != 0 || !res)
        return CM_ERR_UNAVAILABLE;
    cm_err e = CM_ERR_UNAVAILABLE;
    for (struct addrinfo *ai = res; ai && e != CM_OK; ai = ai->ai_next) {
        h->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (h->fd < 0)
            continue;
        if (connect(h->fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && wait_fd(h, POLLOUT, deadline, NULL) == CM_OK)) {
            int err = 0;
            socklen_t len = sizeof(err);
            if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
                e = CM_OK;
        }
        if (e != CM_OK)
            conn_close(h);
    }
    freeaddrinfo(res);
    if (e == CM_OK)
        tune_socket(h->fd);
    h->reused = 0;
    return e;
}

static cm_err send_all(co_http *h, const char *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t w = send(h->fd, p, len, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            len -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            cm_err e = wait_fd(h, POLLOUT, deadline, NULL);
            if (e != CM_OK)
                return e;
        } else {
            return CM_ERR_CLOSED;
        }
    }
    return CM_OK;
}

/* Receive more bytes into h->in. CM_ERR_CLOSED at EOF, CM_AGAIN when *stop was set. */
static cm_err fill(co_http *h, int64_t deadline, const atomic_int *stop)
{
    if (h->in_off > 0 && h->in_off == h->in.len) {
        h->in.len = h->in_off = 0;
    } else if (h->in_off > 65536) {
        memmove(h->in.p, h->in.p + h->in_off, h->in.len - h->in_off);
        h->in.len -= h->in_off;
        h->in_off = 0;
    }
    if (buf_reserve(&h->in, 16384) != CM_OK)
        return CM_ERR_NOMEM;
    for (;;) {
        ssize_t r = recv(h->fd, h->in.p + h->in.len, h->in.cap - h->in.len - 1, 0);
        if (r > 0) {
            h->in.len += (size_t)r;
            return CM_OK;
        }
        if (r == 0)
            return CM_ERR_CLOSED;
        if (errno != EAGAIN && errno != EINTR)
            return CM_ERR_CLOSED;
        cm_err e = wait_fd(h, POLLIN, deadline, stop);
        if (e != CM_OK)
            return e;
    }
}

/* Bytes available from in_off. */
#define AVAIL(h) ((h)->in.len - (h)->in_off)
#define CUR(h) ((h)->in.p + (h)->in_off)

/* Make sure a CRLF-terminated line is buffered; *len receives its length without CRLF. */
static cm_err need_line(co_http *h, int64_t deadline, const atomic_int *stop, size_t *len)
{
    for (;;) {
        const char *nl = AVAIL(h) ? memmem(CUR(h), AVAIL(h), "\r\n", 2) : NULL;
        if (nl) {
            *len = (size_t)(nl - CUR(h));
            return CM_OK;
        }
        if (AVAIL(h) > HEAD_MAX)
            return CM_ERR_CORRUPT;
        cm_err e = fill(h, deadline, stop);
        if (e != CM_OK)
            return e;
    }
}

static cm_err need_bytes(co_http *h, size_t n, int64_t deadline, const atomic_int *stop)
{
    while (AVAIL(h) < n) {
        cm_err e = fill(h, deadline, stop);
        if (e != CM_OK)
            return e;
    }
    return CM_OK;
}

typedef struct {
    int status;
    int chunked;
    int close;
    long long clen; /* -1: none given */
} http_head;

static cm_err read_head(co_http *h, int64_t deadline, const atomic_int *stop, http_head *hd)
{
    memset(hd, 0, sizeof(*hd));
    hd->clen = -1;
    size_t len;
    cm_err e = need_line(h, deadline, stop, &len);
    if (e != CM_OK)
        return e;
    if (len < 12 || strncmp(CUR(h), "HTTP/1.", 7) != 0)
        return CM_ERR_CORRUPT;
    hd->status = atoi(CUR(h) + 9);
    hd->close = CUR(h)[7] == '0';
    h->in_off += len + 2;
    for (;;) {
        e = need_line(h, deadline, stop, &len);
        if (e != CM_OK)
            return e;
        char *line = CUR(h);
        h->in_off += len + 2;
        if (len == 0)
            return CM_OK;
        line[len] = '\0'; /* overwrites the CR, already consumed */
        char *colon = strchr(line, ':');
        if (!colon)
            return CM_ERR_CORRUPT;
        const char *v = colon + 1 + strspn(colon + 1, " \t");
        size_t nlen = (size_t)(colon - line);
        if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0)
            hd->clen = atoll(v);
        else if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0)
            hd->chunked = strcasestr(v, "chunked") != NULL;
        else if (nlen == 10 && strncasecmp(line, "connection", 10) == 0)
            hd->close = strcasestr(v, "close") != NULL;
    }
}

/*
 * Append the next chunk of a chunked body to out; *done set after the last (empty) chunk and its
 * trailer have been consumed.
 */
static cm_err read_chunk(co_http *h, int64_t deadline, const atomic_int *stop, co_buf *out,
                         int *done)
{
    size_t len;
    cm_err e = need_line(h, deadline, stop, &len);
    if (e != CM_OK)
        return e;
    char *end;
    unsigned long long size = strtoull(CUR(h), &end, 16);
    if (end == CUR(h) || size > BODY_MAX)
        return CM_ERR_CORRUPT;
    h->in_off += len + 2;
    if (size == 0) {
        do { /* trailer fields up to the empty line */
            e = need_line(h, deadline, stop, &len);
            if (e != CM_OK)
                return e;
            h->in_off += len + 2;
        } while (len > 0);
        *done = 1;
        return CM_OK;
    }
    e = need_bytes(h, (size_t)size + 2, deadline, stop);
    if (e != CM_OK)
        return e;
    if (out->len + size > BODY_MAX)
        return CM_ERR_TOOBIG;
    e = buf_append(out, CUR(h), (size_t)size);
    h->in_off += (size_t)size + 2;
    return e;
}

static cm_err read_body(co_http *h, const http_head *hd, int64_t deadline, co_buf *out)
{
    if (hd->chunked) {
        int done = 0;
        while (!done) {
            cm_err e = read_chunk(h, deadline, NULL, out, &done);
            if (e != CM_OK)
                return e;
        }
        return CM_OK;
    }
    if (hd->clen >= 0) {
        if (hd->clen > BODY_MAX)
            return CM_ERR_TOOBIG;
        cm_err e = need_bytes(h, (size_t)hd->clen, deadline, NULL);
        if (e != CM_OK)
            return e;
        e = buf_append(out, CUR(h), (size_t)hd->clen);
        h->in_off += (size_t)hd->clen;
        return e;
    }
    for (;;) { /* no length: the body ends with the connection */
        cm_err e = fill(h, deadline, NULL);
        if (e == CM_ERR_CLOSED)
            break;
        if (e != CM_OK)
            return e;
        if (AVAIL(h) > BODY_MAX)
            return CM_ERR_TOOBIG;
    }
    cm_err e = buf_append(out, CUR(h), AVAIL(h));
    h->in_off = h->in.len;
    return e;
}

/* Connect if needed and send the request; *sent once it was wholly written. */
static cm_err send_request(co_http *h, const char *path, const char *body, int64_t deadline,
                           int *sent)
{
    *sent = 0;
    if (h->fd < 0) {
        cm_err e = conn_open(h, deadline);
        if (e != CM_OK)
            return e;
    }
    char head[512];
    size_t blen = strlen(body);
    int n = snprintf(head, sizeof(head),
                     "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                     "Grpc-Metadata-Hasleader: true\r\nContent-Length: %zu\r\n\r\n",
                     path, h->host[h->cur], h->port[h->cur], blen);
    if (n < 0 || (size_t)n >= sizeof(head))
        return CM_ERR_INVAL;
    cm_err e = send_all(h, head, (size_t)n, deadline);
    if (e == CM_OK)
        e = send_all(h, body, blen, deadline);
    if (e == CM_OK)
        *sent = 1;
    return e;
}

/*
 * Drop a kept-alive connection the server has closed (readable while idle means EOF, a reset or
 * bytes nobody asked for), so that a request is not sent into it.
 */
static void drop_if_stale(co_http *h)
{
    struct pollfd pfd = {.fd = h->fd, .events = POLLIN};
    if (h->fd >= 0 && poll(&pfd, 1, 0) != 0)
        conn_close(h);
}

/*
 * One request on the current endpoint. An idempotent request whose kept-alive connection turns
 * out to have been closed before any answer byte is sent again once on a new connection; any
 * other request is never sent twice (the server may have run it before the connection died).
 */
static cm_err exchange(co_http *h, const char *path, const char *body, int idempotent,
                       int64_t deadline, http_head *hd, co_buf *out, int *sent)
{
    drop_if_stale(h);
    for (int attempt = 0;; attempt++) {
        int reused = h->fd >= 0 && h->reused;
        cm_err e = send_request(h, path, body, deadline, sent);
        if (e == CM_OK)
            e = read_head(h, deadline, NULL, hd);
        if (e == CM_OK)
            e = read_body(h, hd, deadline, out);
        if (e == CM_OK) {
            if (hd->close)
                conn_close(h);
            else
                h->reused = 1;
            return CM_OK;
        }
        int stale = idempotent && reused && e == CM_ERR_CLOSED && out->len == 0 && attempt == 0;
        conn_close(h);
        if (!stale)
            return e;
    }
}

static void next_endpoint(co_http *h)
{
    conn_close(h);
    h->cur = (h->cur + 1) % h->n;
}

cm_err co_http_post(co_http *h, const char *path, const char *body, int idempotent, char **resp,
                    size_t *resp_len)
{
    co_buf out = {0};
    cm_err last = CM_ERR_UNAVAILABLE;
    for (int tries = 0; tries < h->n; tries++) {
        http_head hd;
        int sent = 0;
        out.len = 0;
        int64_t deadline = cm_monotonic_ms() + h->timeout_ms;
        cm_err e = exchange(h, path, body, idempotent, deadline, &hd, &out, &sent);
        if (e == CM_OK && hd.status >= 200 && hd.status < 300) {
            if (buf_reserve(&out, 0) != CM_OK) {
                free(out.p);
                return CM_ERR_NOMEM;
            }
            out.p[out.len] = '\0';
            *resp = out.p;
            *resp_len = out.len;
            return CM_OK;
        }
        if (e == CM_OK && hd.status < 500) {
            CM_WARN("coord", "etcd %s %s answered %d: %.200s", h->url[h->cur], path, hd.status,
                    out.p ? out.p : "");
            free(out.p);
            return hd.status == 404 ? CM_ERR_NOTFOUND : CM_ERR_INVAL;
        }
        CM_INFO("coord", "etcd %s %s: %s (status %d)", h->url[h->cur], path,
                e == CM_OK ? "server error" : cm_err_name(e), e == CM_OK ? hd.status : 0);
        next_endpoint(h);
        if (e == CM_ERR_NOMEM) {
            last = e;
            break;
        }
        if (!idempotent && sent) {
            last = CM_ERR_UNCERTAIN;
            break;
        }
    }
    free(out.p);
    return last;
}

cm_err co_http_stream(co_http *h, const char *path, const char *body, co_line_fn fn, void *arg,
                      const atomic_int *stop)
{
    http_head hd;
    co_buf chunk = {0};
    cm_err e = CM_ERR_UNAVAILABLE;
    conn_close(h); /* a stream gets a fresh connection: it cannot be reused afterwards */
    for (int tries = 0; tries < h->n; tries++) {
        int sent;
        int64_t deadline = cm_monotonic_ms() + h->timeout_ms;
        e = send_request(h, path, body, deadline, &sent);
        if (e == CM_OK)
            e = read_head(h, deadline, stop, &hd);
        if (e == CM_OK && (hd.status < 200 || hd.status >= 300))
            e = CM_ERR_UNAVAILABLE;
        if (e == CM_OK || e == CM_AGAIN)
            break;
        next_endpoint(h);
    }
    int done = 0, stopped = 0;
    while (e == CM_OK && !done && !stopped) {
        size_t before = chunk.len;
        if (hd.chunked)
            e = read_chunk(h, -1, stop, &chunk, &done);
        else if ((e = fill(h, -1, stop)) == CM_OK) {
            /* as read_chunk bounds a chunked one: a line never ended is not kept whole */
            e = chunk.len + AVAIL(h) > BODY_MAX ? CM_ERR_TOOBIG
                                                : buf_append(&chunk, CUR(h), AVAIL(h));
            h->in_off = h->in.len;
        }
        if (e != CM_OK || chunk.len == before)
            continue;
        size_t start = 0;
        for (char *nl; (nl = memchr(chunk.p + start, '\n', chunk.len - start));) {
            size_t len = (size_t)(nl - (chunk.p + start));
            if (len > 0 && fn(arg, chunk.p + start, len)) {
                stopped = 1;
                break;
            }
            start += len + 1;
        }
        memmove(chunk.p, chunk.p + start, chunk.len - start);
        chunk.len -= start;
    }
    if (done && e == CM_OK)
        e = CM_ERR_CLOSED; /* the server ended the stream */
    if (e == CM_AGAIN || (stop && atomic_load(stop)))
        e = CM_OK;
    conn_close(h);
    free(chunk.p);
    return e;
}
