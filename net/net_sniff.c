/*
 * net_sniff.c - one port for TLS and plain connections (net_config.tls_plain_too): the node RPC
 * while a cluster switches to TLS node by node (docs/rpc.md, "Switching to TLS").
 *
 * Every TLS connection opens with a handshake record, whose first byte is its content type, 22
 * (0x16); an HTTP request opens with a method's letter. So an admitted socket first waits for
 * one byte to be readable, looks at it with MSG_PEEK (the byte stays in the socket for whoever
 * reads next: OpenSSL's handshake or the HTTP parser), and only then becomes a connection of the
 * kind that byte says (net_conn_start). Nothing is buffered here and no bufferevent exists yet,
 * so there is no state to hand over.
 *
 * A waiting socket holds its place among cfg.max_connections (taken by net_conn_accept) and is
 * closed when it sends nothing within header_timeout_ms, when the peer closes, or when the
 * server stops (net_sniff_close_all from the stop and the free). At cfg.max_connections,
 * net_conn_shed closes the oldest one waiting NET_FRESH_MS or more as it would an idle
 * connection (net_sniff_shed), so sockets that never send cannot keep the port's places.
 *
 * Threading: everything here runs on the socket's loop thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cm_log.h"
#include "cm_util.h"
#include "net_int.h"

struct net_sniff {
    net_loop *loop;
    net_sniff *prev, *next;
    evutil_socket_t fd;
    struct event *ev; /* EV_READ on fd with the first-byte deadline */
    struct sockaddr_storage sa;
    int64_t accepted_at;
};

int net_tls_hello_byte(unsigned char first)
{
    return first == 0x16; /* TLS record content type "handshake" (RFC 8446 section 5.1) */
}

static void sniff_unlink(net_sniff *s)
{
    net_loop *loop = s->loop;
    if (s->prev)
        s->prev->next = s->next;
    else
        loop->sniffs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    event_free(s->ev);
    free(s);
}

/* Give up on s: close its socket and its place among the server's connections. */
static void sniff_close(net_sniff *s)
{
    net_loop *loop = s->loop;
    evutil_closesocket(s->fd);
    sniff_unlink(s);
    atomic_fetch_sub(&loop->srv->nconns, 1);
}

static void sniff_cb(evutil_socket_t fd, short what, void *arg)
{
    net_sniff *s = arg;
    unsigned char first;
    if (what & EV_TIMEOUT) {
        CM_DEBUG("net", "fd %d: no first byte within header_timeout_ms: closed", (int)fd);
        sniff_close(s);
        return;
    }
    ssize_t n = recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        int64_t left = s->accepted_at +
                       __atomic_load_n(&s->loop->srv->cfg.header_timeout_ms, __ATOMIC_RELAXED) -
                       cm_monotonic_ms();
        struct timeval tv = {CM_MAX(left, 0) / 1000, CM_MAX(left, 0) % 1000 * 1000};
        event_add(s->ev, &tv); /* readable, yet nothing to read: wait again, same deadline */
        return;
    }
    if (n != 1) { /* the peer closed (0) or the socket failed: nothing to serve */
        sniff_close(s);
        return;
    }
    net_loop *loop = s->loop;
    struct sockaddr_storage sa = s->sa;
    int64_t accepted_at = s->accepted_at;
    sniff_unlink(s); /* the socket and its place go on to the connection */
    net_conn_start(loop, fd, (const struct sockaddr *)&sa, net_tls_hello_byte(first), accepted_at);
}

void net_sniff_start(net_loop *loop, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
    int ms = __atomic_load_n(&loop->srv->cfg.header_timeout_ms, __ATOMIC_RELAXED);
    struct timeval tv = {ms / 1000, ms % 1000 * 1000};
    net_sniff *s = calloc(1, sizeof(*s));
    if (s)
        s->ev = event_new(loop->base, fd, EV_READ, sniff_cb, s);
    if (!s || !s->ev || event_add(s->ev, &tv) != 0) {
        if (s && s->ev)
            event_free(s->ev);
        free(s);
        evutil_closesocket(fd);
        atomic_fetch_sub(&loop->srv->nconns, 1);
        return;
    }
    s->loop = loop;
    s->fd = fd;
    if (salen > 0 && (size_t)salen <= sizeof(s->sa))
        memcpy(&s->sa, sa, (size_t)salen);
    s->accepted_at = cm_monotonic_ms();
    s->next = loop->sniffs;
    if (loop->sniffs)
        loop->sniffs->prev = s;
    loop->sniffs = s;
}

int net_sniff_shed(net_loop *loop)
{
    net_sniff *oldest = loop->sniffs;
    while (oldest && oldest->next) /* newest first: the oldest is the last */
        oldest = oldest->next;
    if (!oldest || cm_monotonic_ms() - oldest->accepted_at < NET_FRESH_MS)
        return 0;
    CM_DEBUG("net", "fd %d: shed before its first byte", (int)oldest->fd);
    sniff_close(oldest);
    return 1;
}

void net_sniff_close_all(net_loop *loop)
{
    while (loop->sniffs)
        sniff_close(loop->sniffs);
}
