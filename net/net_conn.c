/*
 * net_conn.c - one HTTP/1.1 connection: the request state machine on a bufferevent.
 *
 * States of a connection: waiting for a head (idle or partial) -> a request in flight (c->req)
 * -> back to waiting (keep-alive, the next pipelined head may already be buffered) or closed.
 * A server-generated error (400/408/414/431/501) puts the connection in "draining": no more
 * reading, close once the error response is flushed.
 *
 * Invariants:
 *   - Handler callbacks are never entered while we hold a pointer we are about to free, and
 *     nothing is freed from inside a handler callback: handler-facing calls only set flags and
 *     kick (event_active on c->kick); conn_process() does the work on a clean stack.
 *   - Memory per connection is bounded: the input buffer by the bufferevent read high-water mark,
 *     decoded body by cfg.read_high_water (reading stops while more is unconsumed), the head by
 *     the parser limits, the output by the handler writing from on_drain.
 *   - on_done runs exactly once per request: in finish_req (normal) or net_conn_free (aborted).
 *
 * Timers (one per connection): idle_timeout_ms while waiting for a new request with nothing
 * buffered; io_timeout_ms while a head or body is partly received, or output is pending; and a
 * partial head must also be complete header_timeout_ms after its first byte (an absolute
 * deadline: a byte a minute would otherwise re-arm io_timeout forever). Nothing runs while the
 * handler is working (its latency is not the client's fault), but a handler that neither consumes
 * a full body buffer nor pauses the body is not working: the body timeout runs then, so a
 * connection never sits without a timer while it waits for client bytes.
 *
 * Connection limit: srv->nconns counts the connections of all loops. A connection accepted at
 * cfg.max_connections takes the place of this loop's oldest idle one (net_conn_shed: first one
 * lingering after its last response, then one with no request bytes - kept alive, or open for
 * NET_FRESH_MS without sending -, then one with a partial head, last one accepted less than
 * NET_FRESH_MS ago that has not sent yet; oldest first within each kind). A connection with a
 * request in flight is never shed. When none is idle, the new one is answered 503 SlowDown with
 * Connection: close in one write and closed (best effort: bytes it already sent make the close a
 * reset).
 *
 * Syscalls per keep-alive request (measured 4 epoll_ctl per 4 KiB GET before this was done):
 *   - A plain connection reads its socket itself (c->rd, sock_read_cb: one recvmsg of up to
 *     16 KiB); the bufferevent only writes. libevent's socket bufferevent preceded every read
 *     with an ioctl(FIONREAD) and read at most 4 KiB, so a 4 KiB PUT took two reads and two
 *     ioctls. A TLS connection's bufferevent reads (OpenSSL's records). So a small request costs
 *     a recvmsg and a writev.
 *   - Reading stays armed except while a body must not be read (the handler has not asked for
 *     it, or has a full body buffer) or the connection drains. Once a request's body is in,
 *     the next pipelined head may be read into the input buffer (up to one maximal head: reading
 *     pauses beyond that); it is parsed only after on_done. A peer EOF seen then is remembered
 *     (peer_eof): buffered requests are still served, then the connection closes.
 *   - Responses are written straight from conn_process (conn_flush: one writev) instead of
 *     arming EV_WRITE and writing on the next loop turn. EV_WRITE is enabled only when the socket
 *     did not take everything, or for a draining connection's error response.
 *   - While a handler callback runs (in_cb), kicks and I/O updates are skipped: conn_process is
 *     on the stack and does both when the callback returns.
 *   - A plain request body is read past libevent's 4 KiB per read event (read_more: 64 KiB
 *     steps, at most 256 KiB per event, never past read_high_water), so a large body costs a
 *     loop turn per 256 KiB, not per 4 KiB. Once per request, right when the handler starts
 *     reading a body that its head did not bring whole, the socket is read at once (the rest of
 *     the body is often there already): one recvmsg instead of a loop turn.
 *   - A paused body (net_req_pause_body) keeps reading armed while less than read_high_water is
 *     buffered: most pauses last one loop turn (the gateway's MD5 batch), and disarming and
 *     re-arming cost two epoll_ctl per request.
 *
 * TLS: with cfg.tls, a connection is an OpenSSL bufferevent from the accept; with tls_plain_too
 * as well, net_sniff.c first waits for the socket's first byte and starts it as TLS or plain.
 *
 * Threading: everything here runs on the connection's loop thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "net_int.h"

static const net_config *cfg_of(const net_conn *c)
{
    return &c->loop->srv->cfg;
}

void net_conn_kick(net_conn *c)
{
    /* inside a handler callback conn_process is on the stack and continues after it returns */
    if (c->in_cb == 0)
        event_active(c->kick, EV_TIMEOUT, 1);
}

static size_t head_cap(const net_config *cfg)
{
    /* request line + CRLF, header section, and a few leading empty lines */
    return cfg->max_request_line + cfg->max_header_bytes + 32;
}

/* The most a plain connection's input buffer holds (what a socket bufferevent's read watermark
 * was): a whole body buffer, or a whole head. */
static size_t input_cap(const net_config *cfg)
{
    return CM_MAX(cfg->read_high_water, head_cap(cfg));
}

/* Arm or disarm reading: c->rd for a plain connection, else the TLS bufferevent's. The epoll set
 * changes only when the state does. */
static void conn_read_set(net_conn *c, int on)
{
    if (!c->rd) {
        if (on)
            bufferevent_enable(c->bev, EV_READ);
        else
            bufferevent_disable(c->bev, EV_READ);
    } else if (on != c->rd_on) {
        c->rd_on = on;
        if (on)
            event_add(c->rd, NULL);
        else
            event_del(c->rd);
    }
}

/* ---- request objects ---- */

static void body_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    if (info->n_deleted > 0) /* the handler consumed: more body may be read */
        net_conn_kick(arg);
}

static void req_free(net_req *r)
{
    if (!r)
        return;
    net_head_release(&r->head);
    if (r->body)
        evbuffer_free(r->body);
    free(r->hdr);
    free(r);
}

/* A finished request becomes the connection's spare when its body buffer is empty (the common
 * case), so the next request on the connection allocates neither it nor its buffers. A response
 * head buffer grown past NET_HDR_KEEP is not kept for an idle connection. */
#define NET_HDR_KEEP 4096

static void req_recycle(net_conn *c, net_req *r)
{
    net_head_release(&r->head);
    if (c->spare || evbuffer_get_length(r->body) > 0) {
        req_free(r);
        return;
    }
    if (r->hdr_cap > NET_HDR_KEEP) {
        free(r->hdr);
        r->hdr = NULL;
        r->hdr_cap = 0;
    }
    c->spare = r;
}

static net_req *req_new(net_conn *c, const net_head *head)
{
    net_req *r = c->spare;
    if (r) {
        struct evbuffer *body = r->body; /* empty, body_cb still on */
        char *hdr = r->hdr;
        size_t hdr_cap = r->hdr_cap;
        c->spare = NULL;
        memset(r, 0, sizeof(*r));
        r->body = body;
        r->hdr = hdr;
        r->hdr_cap = hdr_cap;
    } else {
        r = calloc(1, sizeof(*r));
        if (!r)
            return NULL;
        r->body = evbuffer_new();
        if (!r->body || !evbuffer_add_cb(r->body, body_cb, c)) {
            req_free(r);
            return NULL;
        }
    }
    r->conn = c;
    r->head = *head;
    r->is_head = strcmp(head->method, "HEAD") == 0;
    if (head->chunked) {
        r->chunk_state = CH_SIZE;
    } else {
        r->remaining = head->content_length > 0 ? head->content_length : 0;
        r->body_complete = r->remaining == 0;
    }
    r->close_after = !head->keep_alive || c->loop->stopping;
    return r;
}

/* Hand the request back to the handler for the last time. */
static void req_done(net_conn *c, net_req *r, int aborted)
{
    const net_server *srv = c->loop->srv;
    c->req = NULL;
    if (srv->handler->on_done) {
        c->in_cb++;
        srv->handler->on_done(r, aborted, srv->arg);
        c->in_cb--;
    }
    req_recycle(c, r);
}

/* ---- connection lifetime ---- */

void net_conn_free(net_conn *c)
{
    net_loop *loop = c->loop;
    atomic_fetch_sub(&loop->srv->nconns, 1);
    if (c->req)
        req_done(c, c->req, 1);
    req_free(c->spare);
    /* bufferevent_free closes the socket from a finalizer on a later loop turn; the peer should
     * see the close now, even if the loop is about to exit */
    shutdown(bufferevent_getfd(c->bev), SHUT_RDWR);
    if (c->rd)
        event_free(c->rd);
    bufferevent_free(c->bev);
    event_free(c->kick);
    event_free(c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        loop->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    loop->nconns--;
    atomic_fetch_sub(&loop->load, 1);
    free(c);
    if (loop->stopping && loop->nconns == 0)
        event_base_loopbreak(loop->base);
}

/* A whole server-generated error response (S3-style XML, Connection: close) into out[cap]. */
static int error_response(int status, char *out, size_t cap)
{
    const char *code, *msg;
    char date[32], body[512];
    net_error_text(status, &code, &msg);
    cm_time_rfc1123(time(NULL), date);
    int blen = snprintf(body, sizeof(body),
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
                        "<Message>%s</Message></Error>",
                        code, msg);
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/xml\r\n"
                     "Content-Length: %d\r\n%sConnection: close\r\n\r\n%s",
                     status, net_status_reason(status), date, blen,
                     status == 503 ? "Retry-After: 1\r\n" : "", body);
    return n > 0 && (size_t)n < cap ? n : 0;
}

/* Answer with a tiny S3-style XML error ourselves, then close once it is flushed. */
static void conn_send_error(net_conn *c, int status)
{
    char resp[1024];
    int n = error_response(status, resp, sizeof(resp));
    evbuffer_add(bufferevent_get_output(c->bev), resp, (size_t)n);
    CM_DEBUG("net", "peer=%s answered %d by the server", c->peer, status);
    c->draining = 1;
    net_conn_update_io(c);
}

/*
 * Close after our last response without losing it: closing a socket with unread input makes the
 * kernel send RST, which can destroy the response before the client reads it. So shut down our
 * side, then read and drop whatever the client still sends until it closes or a short timer
 * expires.
 */
static void conn_linger(net_conn *c)
{
    c->draining = 1;
    c->lingering = 1;
    if (c->tls)
        net_tls_close_notify(c->bev);
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    bufferevent_disable(c->bev, EV_WRITE);
    evbuffer_drain(bufferevent_get_input(c->bev),
                   evbuffer_get_length(bufferevent_get_input(c->bev)));
    net_conn_update_io(c);
}

/* Whether to read the socket now; *body_wait when that is reading a request body. */
static int conn_wants_read(const net_conn *c, const net_config *cfg, int *body_wait)
{
    const net_req *r = c->req;
    *body_wait = 0;
    if (c->draining || c->peer_eof)
        return 0;
    if (c->rd && evbuffer_get_length(bufferevent_get_input(c->bev)) >= input_cap(cfg))
        return 0; /* (not reached: the states below stop reading before this) */
    if (!r)
        return 1;         /* a head: the parser refuses one longer than head_cap */
    if (r->body_complete) /* read ahead for the next pipelined head, at most one head's worth */
        return evbuffer_get_length(bufferevent_get_input(c->bev)) < head_cap(cfg);
    if (!(r->reading || r->discarding))
        return 0; /* the handler has not asked for the body (100-continue, backpressure) */
    size_t body = evbuffer_get_length(r->body);
    *body_wait = r->discarding || (!r->paused && body < cfg->read_high_water);
    /* Paused, the handler is working, not waiting on the client (no timer), but reading goes on
     * within the same bound: most pauses last a loop turn (gw_md5's batch), and disarming EV_READ
     * for one cost two epoll_ctl per request. */
    if (r->paused)
        return body + evbuffer_get_length(bufferevent_get_input(c->bev)) < cfg->read_high_water;
    return *body_wait;
}

/* Timer for a partial head: io_timeout_ms, cut short by the head's absolute deadline. */
static int head_timeout_ms(net_conn *c, const net_config *cfg)
{
    int64_t now = cm_monotonic_ms();
    if (c->head_since == 0)
        c->head_since = now;
    int64_t left = c->head_since + __atomic_load_n(&cfg->header_timeout_ms, __ATOMIC_RELAXED) - now;
    return (int)CM_MAX(0, CM_MIN(left, (int64_t)cfg->io_timeout_ms));
}

/* Timer for a TLS handshake: it must be done header_timeout_ms after the accept (a client that
 * connects and sends nothing, or a handshake a byte at a time), and progress every io_timeout_ms.
 */
static int handshake_timeout_ms(const net_conn *c, const net_config *cfg)
{
    int64_t left = c->accepted_at + cfg->header_timeout_ms - cm_monotonic_ms();
    return (int)CM_MAX(0, CM_MIN(left, (int64_t)cfg->io_timeout_ms));
}

/* The handler neither takes the body bytes it was handed nor paused: waiting on it is waiting on
 * the client's bytes (e.g. bytes past the end the handler's own framing allows). */
static int body_stuck(const net_req *r, const net_config *cfg)
{
    return r->reading && !r->paused && !r->body_complete &&
           evbuffer_get_length(r->body) >= cfg->read_high_water;
}

void net_conn_update_io(net_conn *c)
{
    const net_config *cfg = cfg_of(c);
    net_req *r = c->req;
    size_t out = evbuffer_get_length(bufferevent_get_output(c->bev));
    size_t in = evbuffer_get_length(bufferevent_get_input(c->bev));
    int want_read, body_wait, ms;
    if (c->lingering) {
        struct timeval tv = {0, 0};
        ms = CM_MIN(cfg->io_timeout_ms, NET_LINGER_MS);
        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
        conn_read_set(c, 1);
        evtimer_add(c->timer, &tv);
        return;
    }
    if (c->in_cb > 0)
        return; /* conn_process runs when the handler callback returns and updates then */
    want_read = conn_wants_read(c, cfg, &body_wait);
    /* enable/disable only change the epoll set when the state changes */
    conn_read_set(c, want_read);
    if (out == 0)
        bufferevent_disable(c->bev, EV_WRITE); /* not armed after a drained write: no syscall */
    else if (c->draining || c->tls)
        bufferevent_enable(c->bev, EV_WRITE); /* TLS: the bufferevent encrypts and writes */
    else if (!(bufferevent_get_enabled(c->bev) & EV_WRITE))
        net_conn_kick(c); /* written from outside a callback: conn_flush on this loop turn */
    int quiet = !r || r->resp_ended;
    bufferevent_setwatermark(c->bev, EV_WRITE, c->draining || quiet ? 0 : cfg->write_low_water, 0);
    if (r || in == 0)
        c->head_since = 0;
    if (c->handshaking)
        ms = handshake_timeout_ms(c, cfg);
    else if (out > 0 || c->draining)
        ms = cfg->io_timeout_ms;
    else if (!r)
        ms = in > 0 ? head_timeout_ms(c, cfg)
                    : __atomic_load_n(&cfg->idle_timeout_ms, __ATOMIC_RELAXED); /* SIGHUP */
    else
        ms = body_wait || body_stuck(r, cfg) ? cfg->io_timeout_ms : -1;
    if (ms < 0) {
        evtimer_del(c->timer);
    } else {
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(c->timer, &tv);
    }
}

/*
 * Hand pending output to the kernel now (one writev) rather than arming EV_WRITE and writing on
 * the next loop turn: a small response usually fits the socket buffer whole. When it does not,
 * EV_WRITE takes over until the output drains. A streaming response not yet ended gets on_drain
 * again when the output fell below the low-water mark. Returns -1 when the connection failed
 * and was freed.
 */
static int conn_flush(net_conn *c)
{
    struct bufferevent *bev = c->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
    net_req *r = c->req;
    if (c->draining || evbuffer_get_length(out) == 0 || (bufferevent_get_enabled(bev) & EV_WRITE))
        return 0;
    if (c->tls) { /* records are written by the bufferevent; it calls write_cb for on_drain */
        /* it makes one record, and one write(), per buffer chain: a small response's head and
         * body go out as one (a copy of at most 16 KiB, which SSL_write copies again anyway) */
        evbuffer_pullup(out, (ev_ssize_t)CM_MIN(evbuffer_get_length(out), NET_TLS_RECORD));
        bufferevent_enable(bev, EV_WRITE);
        return 0;
    }
    /* a socket bufferevent freezes the front of its output against outside draining; we write
     * the way its own write callback does: unfreeze around the write */
    evbuffer_unfreeze(out, 1);
    int n = evbuffer_write(out, bufferevent_getfd(bev));
    int saved = errno;
    evbuffer_freeze(out, 1);
    errno = saved;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        CM_DEBUG("net", "peer=%s write failed: %s", c->peer, strerror(errno));
        net_conn_free(c);
        return -1;
    }
    size_t left = evbuffer_get_length(out);
    if (left > 0)
        bufferevent_enable(bev, EV_WRITE);
    if (n > 0 && r && r->resp_started && !r->resp_ended && left < cfg_of(c)->write_low_water)
        r->want_drain = 1;
    return 0;
}

/* ---- request processing ---- */

/*
 * The parser re-scans the whole buffered head, so a client trickling bytes could make that
 * quadratic. Re-parse only when a new line ended, 1 KiB more arrived (so limits still trip on
 * time), or the cap is reached.
 */
static int head_worth_parsing(const net_conn *c, const char *p, size_t n, size_t cap)
{
    size_t seen = c->head_parsed;
    if (seen == 0 || seen > n || n >= cap || n - seen >= 1024)
        return 1;
    return memchr(p + seen, '\n', n - seen) != NULL;
}

/* Try to start the next request from buffered input. 1 = a request started or an error sent. */
static int conn_parse_head(net_conn *c)
{
    const net_config *cfg = cfg_of(c);
    const net_server *srv = c->loop->srv;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t avail = evbuffer_get_length(in);
    if (avail == 0)
        return 0;
    size_t n = CM_MIN(avail, head_cap(cfg)), used;
    size_t first = CM_MIN(evbuffer_get_contiguous_space(in), n);
    net_head head;
    int status;
    cm_err e = CM_AGAIN;
    /* The first chain alone, in place, when it may hold the whole head: pulling up everything
     * buffered would copy a body that came with its head (a small PUT's) or a pipelined request.
     * A prefix of the input parses to the same result as the whole, or to CM_AGAIN. Only on a
     * head's first look, so a trickled head is not re-scanned twice per read. */
    if (first < n && c->head_parsed == 0)
        e = net_head_parse((const char *)evbuffer_pullup(in, (ev_ssize_t)first), first, cfg, &head,
                           &used, &status);
    if (e == CM_AGAIN) {
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        if (!head_worth_parsing(c, p, n, head_cap(cfg)))
            return 0;
        e = net_head_parse(p, n, cfg, &head, &used, &status);
        c->head_parsed = n;
        if (e == CM_AGAIN && n < head_cap(cfg))
            return 0;
    }
    c->head_parsed = 0;
    if (e != CM_OK) {
        conn_send_error(c, e == CM_AGAIN ? 431 : status);
        return 1;
    }
    evbuffer_drain(in, used);
    net_req *r = req_new(c, &head);
    if (!r) {
        net_head_release(&head);
        conn_send_error(c, 500);
        return 1;
    }
    c->req = r;
    CM_DEBUG("net", "peer=%s %s %s", c->peer, head.method, head.target);
    c->in_cb++;
    srv->handler->on_request(r, srv->arg);
    c->in_cb--;
    return 1;
}

/* Body framing error or timeout while the body was arriving. */
static void conn_fail_request(net_conn *c, int status)
{
    net_req *r = c->req;
    int answer = !r->resp_started;
    req_done(c, r, 1);
    if (answer) {
        conn_send_error(c, status);
    } else {
        net_conn_free(c);
    }
}

static void read_more(net_conn *c);

/* Decode and deliver body bytes. Returns 1 on progress, 0 when blocked, -1 when c is gone. */
static int conn_body_step(net_conn *c, net_req *r)
{
    const net_server *srv = c->loop->srv;
    int progress = 0;
    if (r->reading && !r->read_early) {
        /* the rest of a body that came with its head is most likely in the socket already: read
         * it now rather than after a loop turn (once per request) */
        struct evbuffer *in = bufferevent_get_input(c->bev);
        r->read_early = 1;
        if (r->head.chunked || evbuffer_get_length(in) < (uint64_t)r->remaining)
            read_more(c);
    }
    if (r->reading || r->discarding) {
        int status = net_body_decode(r, bufferevent_get_input(c->bev), &srv->cfg, &progress);
        if (status) {
            CM_DEBUG("net", "peer=%s body framing error %d", c->peer, status);
            conn_fail_request(c, status);
            return -1;
        }
    }
    if (r->discarding) {
        evbuffer_drain(r->body, evbuffer_get_length(r->body));
        r->fresh_body = 0;
        return progress;
    }
    if (!r->reading || r->paused)
        return progress;
    if (r->fresh_body && evbuffer_get_length(r->body) > 0) {
        r->fresh_body = 0;
        c->in_cb++;
        if (srv->handler->on_body)
            srv->handler->on_body(r, r->body, srv->arg);
        else
            evbuffer_drain(r->body, evbuffer_get_length(r->body));
        c->in_cb--;
        progress = 1;
    } else if (r->body_complete && !r->body_end_called) {
        r->body_end_called = 1;
        if (srv->handler->on_body_end) {
            c->in_cb++;
            srv->handler->on_body_end(r, srv->arg);
            c->in_cb--;
        }
        progress = 1;
    }
    return progress;
}

static void conn_first_drain(net_conn *c, net_req *r)
{
    const net_server *srv = c->loop->srv;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    r->want_drain = 0;
    if (evbuffer_get_length(out) >= srv->cfg.write_low_water)
        return; /* the write callback will call on_drain */
    c->in_cb++;
    srv->handler->on_drain(r, srv->arg);
    c->in_cb--;
}

/*
 * One step for the request in flight. Returns 1 on progress, 0 when waiting, -1 when c was
 * freed.
 */
static int conn_req_step(net_conn *c, net_req *r)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (r->abort_requested) {
        net_conn_free(c);
        return -1;
    }
    if (r->resp_ended && evbuffer_get_length(out) == 0 && (r->body_complete || r->close_after)) {
        int close = r->close_after || c->loop->stopping;
        req_done(c, r, 0);
        c->idle_seq = ++c->loop->idle_seq;
        c->served = 1;
        if (close && c->loop->stopping) {
            net_conn_free(c); /* shutting down: do not wait for the client */
            return -1;
        }
        if (close) {
            conn_linger(c);
            return -1;
        }
        return 1;
    }
    if (r->want_drain && !r->resp_ended && c->loop->srv->handler->on_drain) {
        conn_first_drain(c, r);
        return 1;
    }
    return conn_body_step(c, r);
}

/* The state machine; may free c. */
static void conn_process(net_conn *c)
{
    for (;;) {
        int k;
        if (c->draining)
            break;
        if (conn_flush(c) < 0)
            return;
        if (c->req)
            k = conn_req_step(c, c->req);
        else
            k = conn_parse_head(c);
        if (k < 0)
            return;
        if (k == 0)
            break;
    }
    if (c->peer_eof && !c->req && !c->draining) {
        CM_DEBUG("net", "peer=%s closed its side; buffered requests served", c->peer);
        net_conn_free(c);
        return;
    }
    if (conn_flush(c) < 0)
        return;
    net_conn_update_io(c);
}

/* ---- libevent callbacks ---- */

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_process(arg);
}

/*
 * A request body is arriving: read on past a read event's one read (sock_read_cb's, up to
 * NET_READ_FIRST). libevent 2.1's bufferevent read at most 4,096 bytes per read event
 * (EVBUFFER_MAX_READ), so a large body cost a loop turn, a FIONREAD, a readv and an on_body per
 * 4 KiB (docs/performance.md, "Eighth session"). Here the socket is
 * read straight into the input buffer's reserved space, NET_READ_STEP at a time (64 KiB: chains
 * glibc serves from its heap; 256 KiB ones were mmapped and faulted in afresh), until it is
 * empty, NET_READ_MORE was read (what the socket holds beyond that waits for the next read event,
 * in the kernel's memory rather than the process's), or the body buffered (input plus decoded)
 * reaches read_high_water, the same bound that stops reading otherwise. EOF and errors are left for
 * the next read event to report (sock_read_cb). Plain TCP only: a TLS bufferevent's input is
 * decrypted records.
 */
#define NET_READ_STEP (64u << 10)
#define NET_READ_MORE (256u << 10)
/* A plain connection's read per read event (sock_read_cb): a small request, head and body, in
 * one recvmsg, into a 16 KiB chain (libevent sizes a chain as a power of two that holds the
 * space and its chain header: asking 64 KiB took a 128 KiB allocation, mmapped, per read). */
#define NET_READ_FIRST ((16u << 10) - 256)

/* One recvmsg of at most want bytes into in's reserved space: as recvmsg's result (errno). */
static ssize_t read_step(struct evbuffer *in, evutil_socket_t fd, size_t want)
{
    struct evbuffer_iovec v[2];
    int nv = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
    if (nv <= 0) {
        errno = ENOMEM;
        return -1;
    }
    if (v[0].iov_len >= want) {
        v[0].iov_len = want;
        nv = 1;
    } else if (nv == 2 && v[1].iov_len > want - v[0].iov_len) {
        v[1].iov_len = want - v[0].iov_len;
    }
    struct msghdr msg = {.msg_iov = (struct iovec *)v, .msg_iovlen = (size_t)nv};
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n <= 0) {
        int saved = errno;
        evbuffer_commit_space(in, v, 0);
        errno = saved;
        return n;
    }
    size_t left = (size_t)n;
    int used = 0;
    for (int i = 0; i < nv && left > 0; i++, used++) {
        v[i].iov_len = CM_MIN(v[i].iov_len, left);
        left -= v[i].iov_len;
    }
    if (evbuffer_commit_space(in, v, used) != 0) {
        errno = ENOMEM;
        return -1;
    }
    return n;
}

/* Read fd into in while r's buffered body stays under hw (read_more). */
static void read_into(struct evbuffer *in, evutil_socket_t fd, const net_req *r, size_t hw)
{
    for (size_t got = 0; got < NET_READ_MORE;) {
        size_t have = evbuffer_get_length(in) + evbuffer_get_length(r->body);
        if (have >= hw)
            return;
        size_t want = CM_MIN(hw - have, NET_READ_STEP);
        ssize_t n = read_step(in, fd, want);
        if (n <= 0 || (size_t)n < want)
            return;
        got += (size_t)n;
    }
}

static void read_more(net_conn *c)
{
    net_req *r = c->req;
    if (c->tls || !r || !r->reading || r->paused || r->body_complete || r->discarding)
        return;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    /* A socket bufferevent keeps its input's end frozen except while it reads, as here. */
    evbuffer_unfreeze(in, 0);
    read_into(in, bufferevent_getfd(c->bev), r, c->loop->srv->cfg.read_high_water);
    evbuffer_freeze(in, 0);
}

/* Input arrived (more: the socket may hold more than was read). */
static void conn_readable(net_conn *c, int more)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (c->lingering) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (more)
        read_more(c);
    conn_process(c);
}

/* A TLS connection's decrypted input (its bufferevent reads). */
static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_readable(arg, 1);
}

static void event_cb(struct bufferevent *bev, short what, void *arg);

/*
 * A plain connection's socket is readable (c->rd): one recvmsg of up to NET_READ_FIRST, where a
 * socket bufferevent would size its read with an ioctl(FIONREAD) first and read at most 4 KiB.
 * EOF and errors go to event_cb as the bufferevent would report them, reading disarmed first
 * (the event is level-triggered). A read that filled its space reads on (read_more) when a body
 * is arriving.
 */
static void sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
    net_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t have = evbuffer_get_length(in), cap = input_cap(cfg_of(c)), want = NET_READ_FIRST;
    (void)what;
    if (!c->lingering && have >= cap) { /* processing frees room, or disarms reading */
        conn_process(c);
        return;
    }
    if (!c->lingering)
        want = CM_MIN(cap - have, NET_READ_FIRST);
    /* a socket bufferevent keeps its input's end frozen except while it reads, as here */
    evbuffer_unfreeze(in, 0);
    ssize_t n = read_step(in, fd, want);
    int saved = errno;
    evbuffer_freeze(in, 0);
    if (n < 0 && (saved == EAGAIN || saved == EWOULDBLOCK || saved == EINTR))
        return;
    if (n <= 0) {
        conn_read_set(c, 0);
        errno = saved;
        event_cb(c->bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), c);
        return;
    }
    conn_readable(c, (size_t)n == want);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    net_conn *c = arg;
    net_req *r = c->req;
    const net_server *srv = c->loop->srv;
    size_t out = evbuffer_get_length(bufferevent_get_output(bev));
    if (c->draining) {
        if (out == 0 && !c->lingering)
            conn_linger(c);
        return;
    }
    if (r && r->resp_started && !r->resp_ended && !r->abort_requested && srv->handler->on_drain &&
        out < srv->cfg.write_low_water) {
        r->want_drain = 0;
        c->in_cb++;
        srv->handler->on_drain(r, srv->arg);
        c->in_cb--;
    }
    conn_process(c);
}

/*
 * A TLS connection that failed before its handshake ended. A client that sent plain HTTP gets a
 * plain-text 400 saying so (OpenSSL sent nothing: it answers a plain first record without an
 * alert); what it sent is read first, so the close does not reset the answer away.
 */
static void conn_tls_failed(net_conn *c)
{
    static const char body[] = "This port speaks HTTPS only: send the request to https://\n";
    char why[256], resp[512], sink[4096];
    int plain = net_tls_failure(c->bev, why, sizeof(why));
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    CM_DEBUG("net", "peer=%s TLS handshake failed: %s", c->peer, plain ? "plain HTTP" : why);
    if (plain) {
        for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
            ;
        int n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         sizeof(body) - 1, body);
        if (send(fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            CM_DEBUG("net", "peer=%s: 400 for plain HTTP not sent: %s", c->peer, strerror(errno));
    }
    net_conn_free(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    net_conn *c = arg;
    (void)bev;
    net_req *r = c->req;
    if (what & BEV_EVENT_CONNECTED) { /* TLS handshake done: HTTP from here on */
        c->handshaking = 0;
        net_conn_update_io(c);
        return;
    }
    if (c->handshaking) {
        conn_tls_failed(c);
        return;
    }
    /* EOF while reading only: libevent's OpenSSL bufferevent (dirty shutdowns allowed) reports a
     * write to a closed socket (EPIPE) as EOF|WRITING, and answering more would write forever */
    if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && !(what & BEV_EVENT_ERROR) && r &&
        r->body_complete && !c->draining) {
        /* the client shut down its sending side after a whole request: answer it (and any
         * request still buffered), then close; the bufferevent has stopped reading */
        c->peer_eof = 1;
        conn_process(c);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        CM_DEBUG("net", "peer=%s closed (%s)", c->peer, what & BEV_EVENT_EOF ? "eof" : "error");
        net_conn_free(c);
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    net_conn *c = arg;
    net_req *r = c->req;
    size_t in = evbuffer_get_length(bufferevent_get_input(c->bev));
    (void)fd;
    (void)what;
    CM_DEBUG("net", "peer=%s timeout%s", c->peer, c->handshaking ? " in the TLS handshake" : "");
    if (c->draining || c->handshaking || (!r && in == 0)) {
        net_conn_free(c); /* idle keep-alive, or a client that does not read our error */
    } else if (!r) {
        conn_send_error(c, 408); /* partial head: no progress, or past its deadline */
    } else if (!r->resp_started && !r->body_complete) {
        conn_fail_request(c, 408); /* partial body */
    } else { /* a stalled response: a body cut short, which a client only sees as a short read */
        CM_WARN("net", "peer=%s: %s stalled %d ms%s: connection closed", c->peer, net_req_method(r),
                cfg_of(c)->io_timeout_ms,
                r->resp_started ? " after its response started (body cut short)" : "");
        net_conn_free(c);
    }
}

/* ---- accept and stop ---- */

static void format_peer(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        evutil_inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        port = ntohs(s4->sin_port);
        snprintf(out, cap, "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        evutil_inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        port = ntohs(s6->sin6_port);
        snprintf(out, cap, "[%s]:%d", ip, port);
    } else {
        snprintf(out, cap, "unknown");
    }
}

void net_note(net_loop *loop, unsigned *counter)
{
    net_pressure *p = &loop->pressure;
    int64_t now = cm_monotonic_ms();
    (*counter)++;
    if (p->logged_at != 0 && now - p->logged_at < NET_NOTE_EVERY_MS)
        return;
    CM_WARN("net",
            "loop %d: connection pressure (limit %d, open %d): %u shed, %u refused, %u accept() "
            "out of descriptors since the last report",
            loop->index, loop->srv->cfg.max_connections, atomic_load(&loop->srv->nconns), p->shed,
            p->refused, p->no_fd);
    p->logged_at = now;
    p->shed = p->refused = p->no_fd = 0;
}

/* How willing we are to close c for a new connection: 0 most, 4 never. */
static int shed_rank(const net_conn *c, int64_t now)
{
    if (c->lingering)
        return 0; /* its last response is out */
    if (c->req || c->draining || evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        return 4;
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        return 2;
    /* a connection just accepted has had no time to send: closing it would be closing the new
     * client we are making room for */
    return c->served || now - c->accepted_at >= NET_FRESH_MS ? 1 : 3;
}

int net_conn_shed(net_loop *loop, int take_new)
{
    static const char *const kind[] = {"lingering", "idle", "partial head", "new"};
    int64_t now = cm_monotonic_ms();
    net_conn *victim = NULL;
    int best = take_new ? 4 : 3;
    for (net_conn *c = loop->conns; c; c = c->next) {
        int rank = shed_rank(c, now);
        if (rank < best || (rank == best && victim && c->idle_seq < victim->idle_seq)) {
            victim = c;
            best = rank;
        }
    }
    if (best > 1 && net_sniff_shed(loop)) { /* silent since NET_FRESH_MS: as an idle one */
        net_note(loop, &loop->pressure.shed);
        return 1;
    }
    if (!victim)
        return 0;
    CM_DEBUG("net", "peer=%s shed (%s)", victim->peer, kind[best]);
    net_note(loop, &loop->pressure.shed);
    net_conn_free(victim);
    return 1;
}

/* Over the limit with nothing to shed: say so in one write (a new socket takes it whole), close. */
static void conn_refuse(net_loop *loop, evutil_socket_t fd)
{
    char resp[1024];
    int n = error_response(503, resp, sizeof(resp));
    /* a TLS client would take plain text for a broken handshake: it only sees the close */
    if (!loop->srv->cfg.tls && send(fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        CM_DEBUG("net", "503 to a refused connection not sent: %s", strerror(errno));
    shutdown(fd, SHUT_WR);
    evutil_closesocket(fd);
    net_note(loop, &loop->pressure.refused);
}

void net_conn_accept(net_loop *loop, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
    const net_config *cfg = &loop->srv->cfg;
    /* take a place first, so loops racing for the last one cannot both get it */
    if (atomic_fetch_add(&loop->srv->nconns, 1) >= cfg->max_connections &&
        !net_conn_shed(loop, 1)) {
        atomic_fetch_sub(&loop->srv->nconns, 1);
        conn_refuse(loop, fd);
        return;
    }
    if (cfg->tls && cfg->tls_plain_too)
        net_sniff_start(loop, fd, sa, salen); /* TLS or plain: its first byte will tell */
    else
        net_conn_start(loop, fd, sa, cfg->tls != NULL, cm_monotonic_ms());
}

void net_conn_start(net_loop *loop, evutil_socket_t fd, const struct sockaddr *sa, int tls,
                    int64_t accepted_at)
{
    const net_config *cfg = &loop->srv->cfg;
    int one = 1;
    net_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        atomic_fetch_sub(&loop->srv->nconns, 1);
        evutil_closesocket(fd);
        return;
    }
    c->loop = loop;
    c->tls = c->handshaking = tls;
    if (c->tls)
        c->bev = net_tls_bev_new(cfg->tls, loop->base, fd);
    else
        c->bev = bufferevent_socket_new(loop->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->kick = event_new(loop->base, -1, 0, kick_cb, c);
    c->timer = evtimer_new(loop->base, timer_cb, c);
    if (!c->tls) /* plain: read by sock_read_cb, not by the bufferevent */
        c->rd = event_new(loop->base, fd, EV_READ | EV_PERSIST, sock_read_cb, c);
    if (!c->bev || !c->kick || !c->timer || (!c->tls && !c->rd)) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        if (c->kick)
            event_free(c->kick);
        if (c->timer)
            event_free(c->timer);
        if (c->rd)
            event_free(c->rd);
        free(c);
        atomic_fetch_sub(&loop->srv->nconns, 1);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    format_peer(sa, c->peer, sizeof(c->peer));
    c->next = loop->conns;
    if (loop->conns)
        loop->conns->prev = c;
    loop->conns = c;
    loop->nconns++;
    atomic_fetch_add(&loop->load, 1);
    atomic_fetch_add_explicit(&loop->srv->accepted, 1, memory_order_relaxed);
    c->idle_seq = ++loop->idle_seq;
    c->accepted_at = accepted_at;
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    /* TLS: the bufferevent reads, with no read watermark. libevent 2.1's OpenSSL bufferevent,
     * when one trips, stops in the middle of a decrypted record and looks at its rest again only
     * when the socket is readable, which may be never (the client sent its last record and
     * waits). conn_wants_read bounds the input anyway: it stops reading once a pass (a record or
     * two) went past what the state allows. Plain: sock_read_cb reads at most to input_cap. */
    bufferevent_disable(c->bev, EV_WRITE); /* armed only when a write did not complete */
    conn_read_set(c, 1);
    net_conn_update_io(c);
}

void net_conn_stop_idle(net_conn *c)
{
    if (c->req)
        c->req->close_after = 1;
    else if (!c->draining || c->lingering)
        net_conn_free(c);
}
