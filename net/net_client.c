/*
 * net_client.c - pooled keep-alive HTTP/1.1 client on one libevent loop (interface in net.h).
 *
 * Structure: a client holds peers (host:port), a peer holds its connections (at most max_conns)
 * and a FIFO of calls waiting for one. A connection carries one call at a time: it writes the
 * head and the body (moved in by reference, or produced by on_send below the write low-water
 * mark), parses the response head, then moves body bytes into the call's body buffer and hands
 * that to on_body; bytes left there stop reading the socket (backpressure) until
 * net_call_resume. A length-framed body of 32-256 KiB (a node's cell answer) is received into one
 * pooled buffer (the shared pool) instead and handed to on_body whole, as one chain (direct_step).
 * When the response is complete and reusable (whole body sent, no Connection: close, framed by
 * length or chunks), the connection goes back to the pool and takes the next queued call.
 *
 * Re-entrancy: user callbacks run only from conn_process/complete, never from net_call_* calls;
 * net_call_resume and net_call_start only schedule work (a per-connection kick event, a
 * per-client dispatch event). A call is detached from its connection before on_done runs, so
 * on_done may start new calls.
 *
 * TLS (cfg.tls, from net_tls_new_peers): a connection is an OpenSSL bufferevent that presents the
 * node's certificate and verifies the server's against the cluster CA; it counts as connected once
 * the handshake is done (the connect timeout covers both). Output goes through the bufferevent
 * (no direct sendmsg: OpenSSL's retry rules tie a partial write to its buffer) and the SIOCOUTQ
 * progress probe is skipped (the kernel holds ciphertext). A handshake refused for a certificate
 * is logged as a warning, at most every 10 s.
 *
 * Memory per call: the response head (<= max_head_bytes), the body buffer (<= read_high_water,
 * plus what the socket buffer holds, capped by the read watermark), the request body the caller
 * moved in.
 *
 * Names: a peer's host is a numeric address or a DNS name. A name is resolved for every new
 * connection, asynchronously on the loop (libevent's evdns_getaddrinfo: /etc/resolv.conf and
 * /etc/hosts, read once when the client meets its first name), so a peer that came back at another
 * address (a restarted pod) is found by the next connection; the connect timeout covers the
 * lookup. A name that does not resolve fails the connection like a refused connect
 * (CM_ERR_UNAVAILABLE), with a warning at most every 10 s. Numeric hosts never touch the resolver.
 * A connection keeps the first NCL_ADDRS addresses of the answer and tries them in its order:
 * when connecting to one fails (refused, unreachable, or no connect within connect_timeout_ms),
 * the next gets a fresh socket (conn_next_addr: the request already queued moves over, nothing
 * of it was sent), so a name that also names a dead address still reaches the live one, in at
 * most NCL_ADDRS connect timeouts. Once connected, a failure is the connection's, as before.
 *
 * Threading: one loop thread; nothing here is locked.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "cm_bufpool.h"
#include "cm_log.h"
#include "cm_util.h"
#include "net_int.h"

#define NCL_MAX_HEADERS 64
#define NCL_WRITE_IOV 16          /* chains handed to one direct write */
#define NCL_ACKED_MIN (64u << 10) /* request bodies above this count acknowledged bytes */
#define NCL_HOST_MAX 128          /* a peer's host: a numeric address or a DNS name */
#define NCL_ADDRS 4 /* addresses of a name a connection tries, in the answer's order */
/* A response body of a length in [NCL_DIRECT_MIN, NCL_DIRECT_MAX] is received into one pooled
 * buffer of NCL_DIRECT_MAX bytes (direct_step) */
#define NCL_DIRECT_MIN (32u << 10)
#define NCL_DIRECT_MAX (256u << 10)

typedef struct ncl_peer ncl_peer;
typedef struct ncl_conn ncl_conn;

/* Response parser states. */
enum { RS_HEAD, RS_LEN, RS_EOF, RS_CSIZE, RS_CDATA, RS_CCRLF, RS_TRAILER, RS_DONE };

struct net_call {
    net_client *cl;
    ncl_peer *peer;
    ncl_conn *conn;
    net_call *qnext;
    char method[16];
    char *target;
    struct evbuffer *hdrs; /* extra request header lines */
    struct evbuffer *body; /* request body not yet handed to a connection */
    uint64_t body_len, body_sent;
    const net_call_handler *h;
    void *arg;
    int idempotent, tries;
    /* response */
    int status;
    char *head; /* the response head, split into names/values in place */
    size_t nheaders;
    char *names[NCL_MAX_HEADERS], *values[NCL_MAX_HEADERS];
    int rs;
    int64_t remain; /* Content-Length or current chunk bytes left */
    int keep;       /* the connection may be reused after this response */
    uint64_t received;
    struct evbuffer *rbody;
    int paused;
    uint8_t *dbuf; /* direct_step: the body so far (dlen bytes), NULL when not received so */
    size_t dlen;
};

struct ncl_conn {
    ncl_peer *peer;
    ncl_conn *next;
    struct bufferevent *bev;
    struct event *timer, *kick;
    net_call *call;
    int connected, used;
    int tls;         /* an OpenSSL bufferevent (cfg.tls): connected once the handshake is done */
    int refused;     /* connect or a direct write failed at once: fail from the loop */
    int connecting;  /* inside conn_connect's connect: an error now is kept for the timer */
    uint64_t queued; /* bytes of the current call put into the output buffer */
    uint64_t mark;   /* conn_progress when the timer was armed */
    /* The addresses to try (a numeric host's one, or a name's answer) and the one connecting;
     * lookup: a name's resolution in flight (cancelled when the connection is freed). */
    struct evdns_getaddrinfo_request *lookup;
    struct sockaddr_storage addrs[NCL_ADDRS];
    int addr_len[NCL_ADDRS];
    int naddrs, addr_at;
};

struct ncl_peer {
    net_client *cl;
    ncl_peer *next;
    char host[NCL_HOST_MAX];
    int port;
    ncl_conn *conns;
    int nconns;
    net_call *qhead, *qtail;
};

struct net_client {
    struct event_base *base;
    net_client_config cfg;
    ncl_peer *peers;
    struct event *dispatch; /* runs peer_dispatch for every peer with queued calls */
    net_client_stats stats;
    int64_t tls_warned_at;  /* monotonic ms of the last failed-handshake warning (1 per 10 s) */
    struct evdns_base *dns; /* made at the first peer named by a DNS name; NULL until then */
    int64_t dns_warned_at;  /* the last failed-lookup warning (1 per 10 s) */
};

static void conn_process(ncl_conn *c);
static void conn_free(ncl_conn *c);
static int conn_next_addr(ncl_conn *c);

void net_client_config_defaults(net_client_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->max_conns = 8;
    cfg->connect_timeout_ms = 2000;
    cfg->io_timeout_ms = 10000;
    cfg->idle_timeout_ms = 30000;
    cfg->retries = 1;
    cfg->read_high_water = 1024 * 1024;
    cfg->write_low_water = 256 * 1024;
    cfg->max_head_bytes = 64 * 1024;
}

static void arm(struct event *ev, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/*
 * A number that changes whenever the call moves: bytes the peer acknowledged, response bytes that
 * came. The timer checks it when it fires, so a long body draining steadily (no callback fires
 * above the write low-water mark, and a socket waits for a third of its buffer to free before it
 * is writable again) is not mistaken for a stall.
 */
static uint64_t conn_progress(const ncl_conn *c);
static void conn_arm(ncl_conn *c);

/* ---- calls ---- */

cm_err net_call_new(net_client *cl, const char *host, int port, const char *method,
                    const char *target, net_call **out)
{
    *out = NULL;
    if (strlen(method) >= sizeof(((net_call *)0)->method) || strlen(host) >= NCL_HOST_MAX)
        return CM_ERR_INVAL;
    net_call *call = calloc(1, sizeof(*call));
    if (!call)
        return CM_ERR_NOMEM;
    call->cl = cl;
    snprintf(call->method, sizeof(call->method), "%s", method);
    call->target = strdup(target);
    call->hdrs = evbuffer_new();
    call->rbody = evbuffer_new();
    ncl_peer *p = cl->peers;
    while (p && (p->port != port || strcmp(p->host, host) != 0))
        p = p->next;
    if (!p && (p = calloc(1, sizeof(*p))) != NULL) {
        p->cl = cl;
        snprintf(p->host, sizeof(p->host), "%s", host);
        p->port = port;
        p->next = cl->peers;
        cl->peers = p;
    }
    call->peer = p;
    if (!call->target || !call->hdrs || !call->rbody || !p) {
        net_call_free(call);
        return CM_ERR_NOMEM;
    }
    *out = call;
    return CM_OK;
}

void net_call_free(net_call *call)
{
    if (!call)
        return;
    free(call->target);
    free(call->head);
    if (call->hdrs)
        evbuffer_free(call->hdrs);
    if (call->body)
        evbuffer_free(call->body);
    if (call->rbody)
        evbuffer_free(call->rbody);
    cm_bufpool_put_shared(call->dbuf, NCL_DIRECT_MAX); /* a body cut short */
    free(call);
}

void net_call_header(net_call *call, const char *name, const char *value)
{
    if (strpbrk(name, ": \r\n") || strpbrk(value, "\r\n"))
        return; /* never let a value split the request */
    evbuffer_add_printf(call->hdrs, "%s: %s\r\n", name, value);
}

void net_call_body(net_call *call, uint64_t body_len, struct evbuffer *body)
{
    call->body_len = body_len;
    if (!body)
        return;
    if (!call->body)
        call->body = evbuffer_new();
    if (call->body)
        evbuffer_add_buffer(call->body, body);
}

int net_call_status(const net_call *call)
{
    return call->status;
}

uint64_t net_call_received(const net_call *call)
{
    return call->received;
}

const char *net_call_resp_header(const net_call *call, const char *name)
{
    for (size_t i = 0; i < call->nheaders; i++)
        if (strcasecmp(call->names[i], name) == 0)
            return call->values[i];
    return NULL;
}

static void queue_push(ncl_peer *p, net_call *call, int front)
{
    call->qnext = NULL;
    if (front) {
        call->qnext = p->qhead;
        p->qhead = call;
        if (!p->qtail)
            p->qtail = call;
    } else {
        if (p->qtail)
            p->qtail->qnext = call;
        else
            p->qhead = call;
        p->qtail = call;
    }
}

void net_call_start(net_call *call, const net_call_handler *h, void *arg, int idempotent)
{
    call->h = h;
    call->arg = arg;
    call->idempotent = idempotent && call->body_len == 0;
    queue_push(call->peer, call, 0);
    event_active(call->cl->dispatch, EV_TIMEOUT, 1);
}

void net_call_resume(net_call *call)
{
    call->paused = 0;
    if (call->conn)
        event_active(call->conn->kick, EV_TIMEOUT, 1);
}

/* The call ends: detach it, call on_done, free it. */
static void call_finish(net_call *call, cm_err e)
{
    net_client *cl = call->cl;
    call->conn = NULL;
    cl->stats.calls++;
    if (call->h && call->h->on_done)
        call->h->on_done(call, e, call->arg);
    net_call_free(call);
}

/* ---- connections ---- */

static void conn_unlink(ncl_conn *c)
{
    ncl_peer *p = c->peer;
    for (ncl_conn **pp = &p->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    p->nconns--;
}

static void conn_free(ncl_conn *c)
{
    conn_unlink(c);
    if (c->lookup) { /* its callback comes with EVUTIL_EAI_CANCEL and touches nothing */
        struct evdns_getaddrinfo_request *q = c->lookup;
        c->lookup = NULL;
        evdns_getaddrinfo_cancel(q);
    }
    if (c->bev) {
        /* bufferevent_free closes the socket only when the bufferevent is finalized, on a later
         * loop turn or later still: a TLS client's socket was seen open after net_client_free
         * and event_base_free (test_net_tls). The peer should see the close now (as
         * net_conn_free does for the server's side). */
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
        bufferevent_free(c->bev);
    }
    if (c->timer)
        event_free(c->timer);
    if (c->kick)
        event_free(c->kick);
    event_active(c->peer->cl->dispatch, EV_TIMEOUT, 1); /* a place for a queued call */
    free(c);
}

/*
 * The connection failed with e. Its call (if any) is retried when that is safe, else finished.
 * The connection is freed.
 */
static void conn_fail(ncl_conn *c, cm_err e)
{
    net_call *call = c->call;
    ncl_peer *p = c->peer;
    c->call = NULL;
    conn_free(c);
    if (!call)
        return;
    call->conn = NULL;
    if (call->idempotent && call->rs == RS_HEAD && call->tries <= p->cl->cfg.retries) {
        CM_DEBUG("net", "retry %s %s on %s:%d after %s", call->method, call->target, p->host,
                 p->port, cm_err_name(e));
        p->cl->stats.retries++;
        queue_push(p, call, 1);
        return;
    }
    call_finish(call, e);
}

/*
 * Hand the output to the kernel now (one writev) instead of through EV_WRITE on the next loop
 * turn, which cost an epoll_ctl to add the write event and another to remove it for every call
 * (a record call is a few hundred bytes; the socket takes it whole). What does not fit stays,
 * and EV_WRITE takes over until it drains (errors come back through event_cb as before). A
 * connection still connecting keeps EV_WRITE on: it is how the bufferevent sees the connect.
 * The server side does the same (net_conn.c, conn_flush).
 */
static void conn_write_now(ncl_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct evbuffer_iovec v[NCL_WRITE_IOV];
    struct iovec iov[NCL_WRITE_IOV];
    if (!c->connected || c->refused || evbuffer_get_length(out) == 0)
        return;
    if (c->tls) { /* the bufferevent encrypts and writes: one record per chain, so one chain */
        evbuffer_pullup(out, (ev_ssize_t)CM_MIN(evbuffer_get_length(out), NET_TLS_RECORD));
        bufferevent_enable(c->bev, EV_WRITE);
        return;
    }
    int nv = evbuffer_peek(out, -1, NULL, v, NCL_WRITE_IOV);
    nv = CM_MIN(nv, NCL_WRITE_IOV);
    for (int i = 0; i < nv; i++)
        iov[i] = (struct iovec){v[i].iov_base, v[i].iov_len};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)nv};
    /* MSG_NOSIGNAL: a peer that closed an idle pooled connection must not kill the process */
    ssize_t n = sendmsg(bufferevent_getfd(c->bev), &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        c->refused = 1; /* the timer fails it from the loop, retrying as a failed connect */
        arm(c->timer, 0);
        return;
    }
    if (n > 0) {
        /* a socket bufferevent freezes the front of its output; unfreeze around the drain as its
         * own write callback does */
        evbuffer_unfreeze(out, 1);
        evbuffer_drain(out, (size_t)n);
        evbuffer_freeze(out, 1);
    }
    if (evbuffer_get_length(out) > 0)
        bufferevent_enable(c->bev, EV_WRITE);
}

/* Write the request head and what there is of the body into the connection. */
static void conn_send(ncl_conn *c, net_call *call)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    net_client *cl = c->peer->cl;
    if (c->connected && evbuffer_get_length(out) == 0)
        bufferevent_disable(c->bev, EV_WRITE); /* conn_write_now writes; no event per call */
    c->call = call;
    call->conn = c;
    call->tries++;
    call->rs = RS_HEAD;
    call->status = 0;
    call->nheaders = 0;
    free(call->head);
    call->head = NULL;
    if (c->used)
        cl->stats.reuses++;
    c->used = 1;
    size_t before = evbuffer_get_length(out);
    evbuffer_add_printf(out, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n", call->method, call->target,
                        c->peer->host, c->peer->port);
    /* A call that may be sent again keeps its header lines (a retry without them went out
     * unsigned: a node refused it as unauthenticated, a failure no later round retried) */
    size_t hlen = evbuffer_get_length(call->hdrs);
    if (call->idempotent && hlen > 0)
        evbuffer_add(out, evbuffer_pullup(call->hdrs, -1), hlen);
    else
        evbuffer_add_buffer(out, call->hdrs);
    if (call->body_len > 0 || strcmp(call->method, "PUT") == 0 || strcmp(call->method, "POST") == 0)
        evbuffer_add_printf(out, "Content-Length: %llu\r\n", (unsigned long long)call->body_len);
    evbuffer_add(out, "\r\n", 2);
    if (call->body) {
        size_t n = CM_MIN(evbuffer_get_length(call->body), call->body_len);
        evbuffer_remove_buffer(call->body, out, n); /* relinks chains, no copy */
        call->body_sent = n;
    }
    c->queued = evbuffer_get_length(out) - before;
    conn_write_now(c);
    conn_arm(c);
    event_active(c->kick, EV_TIMEOUT, 1);
}

static uint64_t conn_progress(const ncl_conn *c)
{
    const net_call *call = c->call;
    uint64_t out = evbuffer_get_length(bufferevent_get_output(c->bev));
    uint64_t in = evbuffer_get_length(bufferevent_get_input(c->bev));
    int unsent = 0;
#ifdef SIOCOUTQ
    /* bytes the kernel holds but the peer has not acknowledged: a slow reader drains them while
     * the socket stays unwritable (it waits for a third of its buffer to free). Asked only for a
     * call with a body larger than NCL_ACKED_MIN (the same answer at arming and at firing, since
     * it depends on the call alone): a smaller request fits the socket buffer at once, and the
     * ioctl on every arm was a third of a record call's system calls. */
    if (call && !c->tls && call->body_len > NCL_ACKED_MIN &&
        (ioctl(bufferevent_getfd(c->bev), SIOCOUTQ, &unsent) != 0 || unsent < 0))
        unsent = 0;
#endif
    return call ? c->queued - out - (uint64_t)unsent + in + call->received + (uint64_t)call->rs : 0;
}

/* (Re)start the connection's timer for the phase it is in. */
static void conn_arm(ncl_conn *c)
{
    const net_client_config *cfg = &c->peer->cl->cfg;
    c->mark = conn_progress(c);
    arm(c->timer, c->refused ? 0 : c->connected ? cfg->io_timeout_ms : cfg->connect_timeout_ms);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_process(arg);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    ncl_conn *c = arg;
    (void)fd;
    (void)what;
    if (!c->call) { /* pooled connection idle too long */
        conn_free(c);
        return;
    }
    if (c->refused) {
        if (!conn_next_addr(c))
            conn_fail(c, CM_ERR_UNAVAILABLE);
        return;
    }
    if (c->connected && conn_progress(c) != c->mark) {
        conn_arm(c); /* bytes moved since the timer was armed: not stalled */
        return;
    }
    if (!c->connected && conn_next_addr(c))
        return; /* no connect within the timeout: the name's next address */
    CM_DEBUG("net", "%s %s to %s:%d timed out", c->call->method, c->call->target, c->peer->host,
             c->peer->port);
    conn_fail(c, CM_ERR_TIMEOUT);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    ncl_conn *c = arg;
    (void)bev;
    if (!c->call) {
        conn_free(c); /* bytes on an idle connection: it is out of step, drop it */
        return;
    }
    conn_process(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    ncl_conn *c = arg;
    (void)bev;
    if (c->call)
        conn_process(c);
}

/* A TLS connection that failed: a certificate refused either way is a configuration error, said
 * at most every 10 s; a refused connect or a plain close is said at debug level. */
static void conn_tls_failed(ncl_conn *c)
{
    char why[256];
    net_client *cl = c->peer->cl;
    int64_t now = cm_monotonic_ms();
    net_tls_failure(c->bev, why, sizeof(why));
    if (strcmp(why, "connection closed") == 0 || now - cl->tls_warned_at < 10000) {
        CM_DEBUG("net", "TLS to %s:%d failed: %s", c->peer->host, c->peer->port, why);
        return;
    }
    cl->tls_warned_at = now;
    CM_WARN("net", "TLS to %s:%d failed: %s", c->peer->host, c->peer->port, why);
}

/* A name that did not resolve: a warning at most every 10 s (the layout may name a node that
 * is gone), the others at debug level. */
static void conn_dns_failed(ncl_conn *c, int err)
{
    net_client *cl = c->peer->cl;
    int64_t now = cm_monotonic_ms();
    if (now - cl->dns_warned_at < 10000) {
        CM_DEBUG("net", "cannot resolve %s: %s", c->peer->host, evutil_gai_strerror(err));
        return;
    }
    cl->dns_warned_at = now;
    CM_WARN("net", "cannot resolve %s: %s", c->peer->host, evutil_gai_strerror(err));
}

/* The client's resolver, made at its first name: the system's name servers and hosts file (or
 * cfg.nameserver alone); it holds no event while no lookup runs, so an idle loop may end. NULL
 * when out of memory or the name server is not an address. */
static struct evdns_base *client_dns(net_client *cl)
{
    if (cl->dns)
        return cl->dns;
    if (cl->cfg.nameserver) {
        cl->dns = evdns_base_new(cl->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (cl->dns && evdns_base_nameserver_ip_add(cl->dns, cl->cfg.nameserver) != 0) {
            CM_WARN("net", "name server %s refused", cl->cfg.nameserver);
            evdns_base_free(cl->dns, 0);
            cl->dns = NULL;
        }
        return cl->dns;
    }
    cl->dns = evdns_base_new(cl->base,
                             EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!cl->dns) { /* no usable resolv.conf: the hosts file alone */
        cl->dns = evdns_base_new(cl->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (cl->dns && evdns_base_load_hosts(cl->dns, NULL) != 0)
            CM_WARN("net", "cannot read /etc/hosts: names resolve by DNS only");
    }
    return cl->dns;
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    ncl_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->connected = 1;
        if (c->call)
            conn_arm(c);
        return;
    }
    net_call *call = c->call;
    if (call && call->rs == RS_EOF && (what & BEV_EVENT_EOF)) {
        conn_process(c); /* deliver what is buffered; the end of the connection ends the body */
        if (c->call == call) {
            call->keep = 0;
            call->rs = RS_DONE;
            conn_process(c);
        }
        return;
    }
    if (c->connecting) { /* inside conn_new (a name found in /etc/hosts): fail from the loop */
        c->refused = 1;
        return;
    }
    if (!call) {
        conn_free(c); /* the server closed a pooled connection */
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    if (c->tls) /* also once connected: a TLS 1.3 server refuses our certificate after that */
        conn_tls_failed(c);
    else if (!c->connected)
        CM_DEBUG("net", "connect to %s:%d (address %d of %d): %s", c->peer->host, c->peer->port,
                 c->addr_at + 1, c->naddrs, evutil_socket_error_to_string(err));
    if (!c->connected && conn_next_addr(c))
        return;
    conn_fail(c, c->connected ? CM_ERR_CLOSED : CM_ERR_UNAVAILABLE);
}

/* A fresh bufferevent for c, its callbacks and watermarks set, not connected yet. */
static struct bufferevent *conn_bev_new(ncl_conn *c)
{
    net_client *cl = c->peer->cl;
    struct bufferevent *bev = c->tls ? net_tls_client_bev_new(cl->cfg.tls, cl->base)
                                     : bufferevent_socket_new(cl->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL;
    bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
    /* TLS: no read watermark, as on the server side (net_conn.c, net_conn_accept): one that trips
     * can leave a decrypted record's rest unread until the socket is readable again; reading
     * stops by EV_READ when the call is paused, which bounds the input to a pass */
    bufferevent_setwatermark(bev, EV_READ, 0,
                             c->tls ? 0 : CM_MAX(cl->cfg.read_high_water, cl->cfg.max_head_bytes));
    bufferevent_setwatermark(bev, EV_WRITE, cl->cfg.write_low_water, 0);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    return bev;
}

/* Connect c to its current address. A connect refused at once (nothing listens on a local
 * port), or failed inside the call, is taken on from the loop by the timer. */
static void conn_connect(ncl_conn *c)
{
    const struct sockaddr_storage *ss = &c->addrs[c->addr_at];
    c->connecting = 1;
    int rc =
        bufferevent_socket_connect(c->bev, (const struct sockaddr *)ss, c->addr_len[c->addr_at]);
    c->connecting = 0;
    if (rc != 0 || c->refused) {
        c->refused = 1;
        arm(c->timer, 0);
    }
}

/*
 * Connecting to c's current address failed (refused, unreachable, timed out): connect to the
 * name's next address on a fresh bufferevent (neither a failed socket nor a TLS session that
 * failed its handshake can connect again). The request already in the old one's output moves
 * over; none of it was sent, as it never connected. 0 when there is no next address (or no
 * memory): the caller fails the connection as before.
 */
static int conn_next_addr(ncl_conn *c)
{
    if (c->connected || c->addr_at + 1 >= c->naddrs)
        return 0;
    struct bufferevent *bev = conn_bev_new(c);
    if (!bev)
        return 0;
    struct evbuffer *was = bufferevent_get_output(c->bev);
    evbuffer_unfreeze(was, 1); /* a socket bufferevent freezes its output's front */
    if (evbuffer_add_buffer(bufferevent_get_output(bev), was) != 0) {
        bufferevent_free(bev);
        return 0;
    }
    bufferevent_free(c->bev); /* also from inside its own event callback: libevent allows it */
    c->bev = bev;
    c->refused = 0;
    c->addr_at++;
    c->peer->cl->stats.connects++;
    conn_connect(c);
    conn_arm(c); /* a fresh connect timeout for this address */
    return 1;
}

/* A name's answer: keep its first NCL_ADDRS addresses and connect to the first. The request is
 * cancelled only by conn_free, whose connection this callback must then not touch. */
static void lookup_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    if (result == EVUTIL_EAI_CANCEL) {
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    ncl_conn *c = arg;
    c->lookup = NULL;
    for (const struct evutil_addrinfo *ai = res; ai && c->naddrs < NCL_ADDRS; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(c->addrs[0]))
            continue;
        memcpy(&c->addrs[c->naddrs], ai->ai_addr, ai->ai_addrlen);
        c->addr_len[c->naddrs++] = (int)ai->ai_addrlen;
    }
    if (res)
        evutil_freeaddrinfo(res);
    if (c->naddrs == 0) { /* failed from the loop, also when this runs inside conn_new */
        conn_dns_failed(c, result != 0 ? result : EVUTIL_EAI_NONAME);
        c->refused = 1;
        arm(c->timer, 0);
        return;
    }
    conn_connect(c);
}

static ncl_conn *conn_new(ncl_peer *p)
{
    net_client *cl = p->cl;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    char addr[NCL_HOST_MAX + 16];
    snprintf(addr, sizeof(addr), strchr(p->host, ':') ? "[%s]:%d" : "%s:%d", p->host, p->port);
    int named = evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0;
    if (named && !client_dns(cl))
        return NULL;
    ncl_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->peer = p;
    c->next = p->conns;
    p->conns = c;
    p->nconns++;
    c->tls = cl->cfg.tls != NULL;
    c->bev = conn_bev_new(c);
    c->timer = evtimer_new(cl->base, timer_cb, c);
    c->kick = event_new(cl->base, -1, 0, kick_cb, c);
    if (!c->bev || !c->timer || !c->kick) {
        conn_free(c);
        return NULL;
    }
    cl->stats.connects++;
    if (!named) {
        memcpy(&c->addrs[0], &ss, (size_t)sslen);
        c->addr_len[0] = sslen;
        c->naddrs = 1;
        conn_connect(c);
        return c;
    }
    /* a name found in /etc/hosts is answered (and connected, or failed for the timer to take on)
     * inside the call, which then returns NULL */
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM,
                                    .ai_protocol = IPPROTO_TCP,
                                    .ai_flags = EVUTIL_AI_ADDRCONFIG | EVUTIL_AI_NUMERICSERV};
    char port[8];
    snprintf(port, sizeof(port), "%d", p->port);
    c->lookup = evdns_getaddrinfo(cl->dns, p->host, port, &hints, lookup_cb, c);
    return c;
}

/* Hand queued calls of p to idle connections, opening new ones up to the limit. */
static void peer_dispatch(ncl_peer *p)
{
    net_client *cl = p->cl;
    while (p->qhead) {
        ncl_conn *c = p->conns;
        while (c && c->call)
            c = c->next;
        if (!c && p->nconns < cl->cfg.max_conns)
            c = conn_new(p);
        if (!c) {
            if (p->nconns > 0)
                return;                /* wait for a connection to come free */
            net_call *call = p->qhead; /* nothing open and cannot open: fail it */
            p->qhead = call->qnext;
            if (!p->qhead)
                p->qtail = NULL;
            call_finish(call, CM_ERR_UNAVAILABLE);
            continue;
        }
        net_call *call = p->qhead;
        p->qhead = call->qnext;
        if (!p->qhead)
            p->qtail = NULL;
        conn_send(c, call);
    }
}

static void dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
    net_client *cl = arg;
    (void)fd;
    (void)what;
    for (ncl_peer *p = cl->peers; p; p = p->next)
        if (p->qhead)
            peer_dispatch(p);
}

/* ---- response parsing ---- */

/* Split the head (NUL-terminated copy) into status and fields; pick the body framing. */
static int parse_head(net_call *call)
{
    char *line = call->head, *next;
    int minor;
    if (sscanf(line, "HTTP/1.%d %3d", &minor, &call->status) != 2 || call->status < 100)
        return -1;
    call->keep = minor >= 1;
    int64_t clen = -1;
    int chunked = 0;
    for (line = strchr(line, '\n'); line && *++line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next = '\0';
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        char *colon = strchr(line, ':');
        if (n == 0 || !colon || call->nheaders == NCL_MAX_HEADERS)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        call->names[call->nheaders] = line;
        call->values[call->nheaders++] = v;
        if (strcasecmp(line, "Content-Length") == 0) {
            char *end;
            clen = strtoll(v, &end, 10);
            if (end == v || *end || clen < 0)
                return -1;
        } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
            chunked = strcasecmp(v, "chunked") == 0;
            if (!chunked)
                return -1;
        } else if (strcasecmp(line, "Connection") == 0 && strcasestr(v, "close")) {
            call->keep = 0;
        }
        if (!next)
            break;
    }
    if (call->status < 200)
        return 0; /* 1xx: another head follows */
    if (strcmp(call->method, "HEAD") == 0 || call->status == 204 || call->status == 304)
        call->rs = RS_DONE;
    else if (chunked)
        call->rs = RS_CSIZE;
    else if (clen >= 0)
        call->rs = clen == 0 ? RS_DONE : RS_LEN, call->remain = clen;
    else
        call->rs = RS_EOF, call->keep = 0;
    return 0;
}

static int take_head(net_call *call, struct evbuffer *in, size_t max)
{
    struct evbuffer_ptr e = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (e.pos < 0)
        return evbuffer_get_length(in) > max ? -1 : 0;
    size_t n = (size_t)e.pos + 4;
    if (n > max)
        return -1;
    free(call->head);
    call->nheaders = 0;
    call->head = malloc(n + 1);
    if (!call->head)
        return -1;
    evbuffer_remove(in, call->head, n);
    call->head[n] = '\0';
    return parse_head(call) == 0 ? 1 : -1;
}

/* A framing line (chunk size, trailer) off in: 1 got it, 0 need more, -1 malformed. */
static int take_line(struct evbuffer *in, char *line, size_t cap, size_t *len)
{
    size_t eol_len = 0;
    struct evbuffer_ptr e = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    if (e.pos < 0)
        return evbuffer_get_length(in) >= cap ? -1 : 0;
    if ((size_t)e.pos >= cap)
        return -1;
    evbuffer_remove(in, line, (size_t)e.pos);
    evbuffer_drain(in, eol_len);
    *len = (size_t)e.pos;
    line[*len] = '\0';
    return 1;
}

/* Move up to n body bytes from in to the call's body buffer, bounded by the high-water mark. */
static size_t take_body(net_call *call, struct evbuffer *in, uint64_t n, size_t hw)
{
    size_t have = evbuffer_get_length(call->rbody);
    size_t room = have >= hw ? 0 : hw - have;
    size_t k = CM_MIN(CM_MIN(evbuffer_get_length(in), room), n);
    if (k > 0) {
        evbuffer_remove_buffer(in, call->rbody, k);
        call->received += k;
    }
    return k;
}

/* One parsing step. 1 progress, 0 wait, -1 malformed. */
static int parse_step(net_call *call, struct evbuffer *in, const net_client_config *cfg)
{
    char line[NET_CHUNK_LINE_MAX + 1];
    size_t len;
    int k;
    switch (call->rs) {
    case RS_HEAD:
        return take_head(call, in, cfg->max_head_bytes);
    case RS_LEN:
    case RS_CDATA:
        len = take_body(call, in, (uint64_t)call->remain, cfg->read_high_water);
        call->remain -= (int64_t)len;
        if (call->remain == 0)
            call->rs = call->rs == RS_LEN ? RS_DONE : RS_CCRLF;
        return len > 0;
    case RS_EOF:
        return take_body(call, in, UINT64_MAX, cfg->read_high_water) > 0;
    case RS_CSIZE:
        if ((k = take_line(in, line, sizeof(line), &len)) <= 0)
            return k;
        if (net_chunk_size_parse(line, len, &call->remain) != 0)
            return -1;
        call->rs = call->remain ? RS_CDATA : RS_TRAILER;
        return 1;
    case RS_CCRLF:
        if ((k = take_line(in, line, sizeof(line), &len)) <= 0)
            return k;
        call->rs = RS_CSIZE;
        return len == 0 ? 1 : -1;
    case RS_TRAILER:
        if ((k = take_line(in, line, sizeof(line), &len)) <= 0)
            return k;
        if (len == 0)
            call->rs = RS_DONE;
        return 1;
    default:
        return 0;
    }
}

cm_err net_resp_parse(const void *buf, size_t len, const char *method, int *status,
                      uint64_t *body_len)
{
    net_client_config cfg;
    net_call call;
    cm_err e = CM_AGAIN;
    net_client_config_defaults(&cfg);
    memset(&call, 0, sizeof(call));
    snprintf(call.method, sizeof(call.method), "%s", method);
    struct evbuffer *in = evbuffer_new();
    call.rbody = evbuffer_new();
    if (!in || !call.rbody || evbuffer_add(in, buf, len) != 0) {
        e = CM_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        int k = call.rs == RS_DONE ? 0 : parse_step(&call, in, &cfg);
        evbuffer_drain(call.rbody, evbuffer_get_length(call.rbody)); /* a consumer that keeps up */
        if (k < 0) {
            e = CM_ERR_CLOSED;
            break;
        }
        if (call.rs == RS_DONE || (k == 0 && call.rs == RS_EOF)) {
            e = CM_OK; /* the end of buf ends a close-delimited body */
            break;
        }
        if (k == 0)
            break;
    }
    *status = call.status;
    *body_len = call.received;
out:
    free(call.head);
    if (in)
        evbuffer_free(in);
    if (call.rbody)
        evbuffer_free(call.rbody);
    return e;
}

/* Produce request body while the output is low. */
static void conn_fill(ncl_conn *c, net_call *call)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    const net_client_config *cfg = &c->peer->cl->cfg;
    int produced = 0;
    while (call->body_sent < call->body_len && call->h->on_send) {
        if (evbuffer_get_length(out) >= cfg->write_low_water)
            break;
        size_t before = evbuffer_get_length(out);
        call->h->on_send(call, out, call->arg);
        size_t n = evbuffer_get_length(out) - before;
        if (n == 0)
            break; /* the producer has nothing now; it calls net_call_resume later */
        call->body_sent += n;
        c->queued += n;
        produced = 1;
    }
    /* A streamed body goes out through EV_WRITE, whose write callback asks for more once the
     * output drains, one write per loop turn, so an answer the peer sends early (a 401 to a body
     * it will not read) is read between writes and ends the call. Written at once and kicked
     * again whenever the kernel took it whole, a body ran ahead of that answer to its end. Only
     * the head and a body given whole (a record call) are written at once (conn_send). */
    if (produced && c->connected && !c->refused)
        bufferevent_enable(c->bev, EV_WRITE);
}

/*
 * A length-framed body of NCL_DIRECT_MIN to NCL_DIRECT_MAX bytes (a node's cell answer, 256 KiB)
 * is received into one buffer of the shared pool rather than into the input buffer: libevent 2.1
 * reads a socket at most 4 KiB at a time (EVBUFFER_MAX_READ), so a 256 KiB answer took 64 FIONREAD
 * + readv pairs, 64 chains allocated and freed, and the reader a walk over them
 * (docs/performance.md "Seventh session"). Here each readable event costs the bufferevent's one
 * read and then recv()s straight into the buffer until the socket is empty; the whole body goes to
 * on_body at once, as one chain by reference (given back to the pool when the consumer frees
 * it, on whatever thread: a cluster GET sends it on from the gateway's loop). Only when the body
 * fits the read high-water mark and the body buffer is empty (the memory bound and the backpressure
 * stay as they were), and not over TLS (the bufferevent decrypts).
 */
static void direct_begin(ncl_conn *c, net_call *call, const net_client_config *cfg)
{
    uint64_t n = (uint64_t)call->remain;
    if (c->tls || call->rs != RS_LEN || call->received > 0 || n < NCL_DIRECT_MIN ||
        n > NCL_DIRECT_MAX || n > cfg->read_high_water || evbuffer_get_length(call->rbody) > 0)
        return;
    /* from the shared pool: a cluster GET hands the answer on by reference (ob_read_start_evb),
     * and it is given back on the gateway's loop once that socket took it */
    call->dbuf = cm_bufpool_take_shared(NCL_DIRECT_MAX); /* NULL: the input buffer, as any body */
    call->dlen = 0;
}

/* Body bytes into call->dbuf: those the bufferevent read already, then from the socket until it
 * would block. 1 progress, 0 wait, -1 no memory. An end of file or an error is left to the
 * bufferevent's next read, which reports it (event_cb). */
static int direct_step(ncl_conn *c, net_call *call, struct evbuffer *in)
{
    size_t want = (size_t)call->remain, got = CM_MIN(evbuffer_get_length(in), want);
    if (got > 0)
        evbuffer_remove(in, call->dbuf + call->dlen, got);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    while (got < want) {
        ssize_t n = recv(fd, call->dbuf + call->dlen + got, want - got, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    call->dlen += got;
    call->received += got;
    call->remain -= (int64_t)got;
    if (call->remain > 0)
        return got > 0;
    uint8_t *b = call->dbuf;
    call->dbuf = NULL;
    call->rs = RS_DONE;
    if (evbuffer_add_reference(call->rbody, b, call->dlen, cm_bufpool_cleanup_shared,
                               (void *)(uintptr_t)NCL_DIRECT_MAX) != 0) {
        cm_bufpool_put_shared(b, NCL_DIRECT_MAX);
        return -1;
    }
    return 1;
}

static void conn_process(ncl_conn *c)
{
    net_call *call = c->call;
    if (!call || c->refused)
        return;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    const net_client_config *cfg = &c->peer->cl->cfg;
    if (call->body_sent > call->body_len) {
        conn_fail(c, CM_ERR_INTERNAL); /* the producer wrote more than it declared */
        return;
    }
    conn_fill(c, call);
    for (;;) {
        int k = call->rs == RS_DONE ? 0
                : call->dbuf        ? direct_step(c, call, in)
                                    : parse_step(call, in, cfg);
        if (k > 0 && !call->dbuf && call->rs == RS_LEN)
            direct_begin(c, call, cfg);
        if (k < 0) {
            CM_DEBUG("net", "malformed response from %s:%d", c->peer->host, c->peer->port);
            conn_fail(c, CM_ERR_CLOSED);
            return;
        }
        if (evbuffer_get_length(call->rbody) > 0 && !call->paused && call->h->on_body) {
            call->h->on_body(call, call->rbody, call->arg);
            if (c->call != call)
                return; /* cannot happen: on_body cannot end the call; defensive */
            if (evbuffer_get_length(call->rbody) > 0)
                call->paused = 1;
        } else if (!call->h->on_body) {
            evbuffer_drain(call->rbody, evbuffer_get_length(call->rbody));
        }
        if (k == 0)
            break;
    }
    if (call->rs == RS_DONE && evbuffer_get_length(call->rbody) == 0) {
        /* a response that came before the whole request body went out ends the connection */
        int reuse = call->keep && call->body_sent == call->body_len &&
                    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
                    evbuffer_get_length(in) == 0;
        c->call = NULL;
        if (reuse) {
            arm(c->timer, cfg->idle_timeout_ms);
            event_active(c->peer->cl->dispatch, EV_TIMEOUT, 1);
        } else {
            conn_free(c);
        }
        call_finish(call, CM_OK);
        return;
    }
    /* every callback that lands here is progress; a paused call waits on its consumer, not on
     * the peer, so no timer runs then */
    if (call->paused) {
        evtimer_del(c->timer);
        bufferevent_disable(c->bev, EV_READ);
    } else {
        conn_arm(c);
        bufferevent_enable(c->bev, EV_READ);
    }
}

/* ---- client ---- */

cm_err net_client_new(struct event_base *base, const net_client_config *cfg, net_client **out)
{
    net_client_config d;
    net_client_config_defaults(&d);
    net_client *cl = calloc(1, sizeof(*cl));
    *out = NULL;
    if (!cl)
        return CM_ERR_NOMEM;
    cl->base = base;
    cl->cfg = cfg ? *cfg : d;
#define NCL_DEFAULT(f)                                                                             \
    if (cl->cfg.f <= 0)                                                                            \
    cl->cfg.f = d.f
    NCL_DEFAULT(max_conns);
    NCL_DEFAULT(connect_timeout_ms);
    NCL_DEFAULT(io_timeout_ms);
    NCL_DEFAULT(idle_timeout_ms);
    NCL_DEFAULT(read_high_water);
    NCL_DEFAULT(write_low_water);
    NCL_DEFAULT(max_head_bytes);
#undef NCL_DEFAULT
    if (cl->cfg.retries == 0)
        cl->cfg.retries = d.retries;
    else if (cl->cfg.retries < 0)
        cl->cfg.retries = 0; /* none */
    cl->dispatch = event_new(base, -1, 0, dispatch_cb, cl);
    if (!cl->dispatch) {
        free(cl);
        return CM_ERR_NOMEM;
    }
    *out = cl;
    return CM_OK;
}

void net_client_free(net_client *cl)
{
    if (!cl)
        return;
    for (ncl_peer *p = cl->peers; p; p = p->next) {
        while (p->conns) {
            ncl_conn *c = p->conns;
            net_call *call = c->call;
            c->call = NULL;
            conn_free(c);
            if (call)
                call_finish(call, CM_ERR_CLOSED);
        }
        while (p->qhead) {
            net_call *call = p->qhead;
            p->qhead = call->qnext;
            call_finish(call, CM_ERR_CLOSED);
        }
    }
    while (cl->peers) {
        ncl_peer *p = cl->peers;
        cl->peers = p->next;
        free(p);
    }
    event_free(cl->dispatch);
    if (cl->dns) /* after the connections: freeing one cancels its lookup */
        evdns_base_free(cl->dns, 0);
    free(cl);
}

void net_client_get_stats(const net_client *cl, net_client_stats *out)
{
    *out = cl->stats;
}

int net_client_conns(const net_client *cl, const char *host, int port)
{
    for (const ncl_peer *p = cl->peers; p; p = p->next)
        if (p->port == port && strcmp(p->host, host) == 0)
            return p->nconns;
    return 0;
}
