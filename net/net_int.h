/*
 * net_int.h - private layout of the HTTP server: server, per-thread loop, connection, request.
 *
 * Ownership: a net_loop owns its connections (doubly linked list); a connection owns at most one
 * net_req (the request being served); a request owns its parsed head, its body buffer and its
 * pending response headers. Everything of one connection is touched only by its loop's thread.
 */
#ifndef NET_INT_H
#define NET_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "net.h"

#define NET_DISCARD_MAX (1024 * 1024) /* unread body we drain to keep a connection alive */
#define NET_CHUNK_LINE_MAX 4096       /* chunk-size line incl. extensions */
#define NET_LINGER_MS 2000            /* how long a closing connection drains client bytes */
#define NET_ACCEPT_BACKOFF_MS 100     /* listener pause when out of descriptors, nothing to shed */
#define NET_INBOX 64 /* connections on their way from another loop's accept (net_server.c) */
#define NET_NOTE_EVERY_MS 10000 /* at most one connection-pressure log line per loop per 10 s */
#define NET_FRESH_MS 1000       /* a new connection's time to send before it counts as idle */
#define NET_TLS_RECORD 16384    /* largest TLS record payload */

typedef struct net_conn net_conn;
typedef struct net_loop net_loop;
typedef struct net_sniff net_sniff;

/* Chunked-body decoder states. */
enum { CH_SIZE, CH_DATA, CH_DATA_CRLF, CH_TRAILER, CH_DONE };

struct net_req {
    net_conn *conn;
    net_head head;
    void *data;
    int is_head; /* method HEAD: never send body bytes */
    /* body */
    int64_t remaining; /* Content-Length bytes still to read (or in current chunk) */
    int chunk_state;
    size_t trailer_bytes;
    struct evbuffer *body; /* decoded bytes not yet consumed by the handler */
    uint64_t received;
    int reading;    /* handler called net_req_read_body */
    int read_early; /* the socket was read once for this body right after the head (read_more) */
    int paused;
    int discarding;    /* drop remaining body (handler answered without reading it) */
    int body_complete; /* all body bytes parsed off the wire */
    int body_end_called;
    int fresh_body; /* bytes arrived since the last on_body call */
    int continue_sent;
    /* response */
    char *hdr; /* status line and headers until the first write/end (net_resp.c head_room) */
    size_t hdr_len, hdr_cap;
    int resp_started, hdr_sent, resp_ended;
    int resp_chunked, resp_nobody;
    int resp_status;
    int64_t resp_length; /* -1: chunked or close-delimited */
    uint64_t resp_written;
    int close_after;
    int want_drain; /* call on_drain once the headers are started (first drain) */
    int abort_requested;
};

struct net_conn {
    net_loop *loop;
    net_conn *prev, *next;
    struct bufferevent *bev;
    struct event *rd;    /* plain: EV_READ on the socket (sock_read_cb); NULL for TLS */
    int rd_on;           /* rd is armed */
    struct event *kick;  /* deferred work: never free things under a handler's feet */
    struct event *timer; /* idle or I/O timeout */
    net_req *req;
    net_req *spare; /* the last request's struct and buffers, for the next one (req_recycle) */
    char peer[64];
    int draining;        /* last response in flight, then close; no more requests */
    int lingering;       /* our side shut down; dropping input until the client closes */
    int peer_eof;        /* the client shut down its side: serve what is buffered, then close */
    int in_cb;           /* inside handler callbacks: defer frees */
    size_t head_parsed;  /* buffered head bytes already scanned without finding its end */
    uint64_t idle_seq;   /* loop's idle_seq when accepted or its last request done (shed order) */
    int64_t accepted_at; /* monotonic ms */
    int served;          /* a request was answered on this connection */
    int64_t head_since;  /* monotonic ms of the current head's first byte; 0 = none buffered */
    int tls;             /* c->bev is an OpenSSL bufferevent (cfg.tls set) */
    int handshaking; /* TLS handshake not finished: no HTTP yet, header_timeout_ms from accept */
};

/* Connection pressure seen by one loop since its last log line (rate-limited, see net_note). */
typedef struct {
    int64_t logged_at;
    unsigned shed, refused, no_fd;
} net_pressure;

/* A connection another loop accepted and hands to this one. */
typedef struct {
    evutil_socket_t fd;
    struct sockaddr_storage sa;
    int salen;
} net_handoff;

struct net_loop {
    net_server *srv;
    int index;
    struct event_base *base;
    int ran; /* its thread called on_loop_start: on_loop_end is owed */
    struct evconnlistener *listener;
    struct event *stop_ev;   /* activated from any thread by net_server_stop */
    struct event *grace_ev;  /* grace period expiry */
    struct event *accept_ev; /* re-enables the listener after an out-of-descriptors pause */
    net_pressure pressure;
    uint64_t idle_seq; /* counts connections becoming idle: lower = idle longer */
    net_conn *conns;
    size_t nconns;
    net_sniff *sniffs; /* cfg.tls_plain_too: accepted, first byte not seen yet (net_sniff.c) */
    time_t date_at;    /* the second date holds, formatted (net_resp.c: once a second) */
    char date[32];
    int stopping;
    pthread_t thread;
    /* Balance (net_server.c): load is nconns plus the connections on their way here, read by
     * every loop's accept; inbox holds those, under inbox_mu (inbox_closed once stopping), and
     * inbox_ev, activated by the loop that hands one over, takes them on this loop. */
    atomic_int load;
    pthread_mutex_t inbox_mu;
    net_handoff inbox[NET_INBOX];
    int ninbox, inbox_closed;
    struct event *inbox_ev;
};

struct net_server {
    net_config cfg;
    const net_handler *handler;
    void *arg;
    int port;
    int nloops;
    net_loop *loops;
    atomic_int nconns; /* connections of every loop, bounded by cfg.max_connections */
    /* connections admitted since start (net_server_conn_stats) */
    atomic_uint_fast64_t accepted;
    int stop_grace_ms;
    int stop_requested;
    pthread_mutex_t lock;
};

/* net_conn.c */
/* Take a new socket: admitted (shedding an idle connection when at max_connections) or refused
 * with 503 SlowDown and closed. */
void net_conn_accept(net_loop *loop, evutil_socket_t fd, const struct sockaddr *sa, int salen);
/* The rest of an admitted accept: a connection on fd, TLS or plain, accepted at accepted_at
 * (monotonic ms: the handshake's deadline counts from it). Closes fd and gives the place back when
 * it cannot. */
void net_conn_start(net_loop *loop, evutil_socket_t fd, const struct sockaddr *sa, int tls,
                    int64_t accepted_at);
/* Close this loop's oldest idle connection (see net_conn.c for the order); a connection accepted
 * less than NET_FRESH_MS ago only when take_new. 1 = one closed. */
int net_conn_shed(net_loop *loop, int take_new);
/* Count a shed/refused/out-of-descriptors event; logs a summary at most every 10 s. */
void net_note(net_loop *loop, unsigned *counter);
/* Close the connection now; a request in flight gets on_done(aborted=1). Never call from inside
 * a handler callback (use net_conn_kick and a flag instead). */
void net_conn_free(net_conn *c);
/* Server stop on this loop: close idle connections, mark busy ones to close after their reply. */
void net_conn_stop_idle(net_conn *c);
/* Schedule conn processing on the next loop turn (safe from handler callbacks). */
void net_conn_kick(net_conn *c);
/* Recompute read enable, write watermark and timer from the connection state (no frees). A
 * no-op inside handler callbacks (conn_process updates after them); output pending with EV_WRITE
 * off kicks the connection so conn_process writes it. */
void net_conn_update_io(net_conn *c);

/* net_tls.c */
/* A server-side TLS bufferevent on fd with the current context (BEV_OPT_CLOSE_ON_FREE), or NULL
 * (the caller still owns fd then). */
struct bufferevent *net_tls_bev_new(net_tls *tls, struct event_base *base, evutil_socket_t fd);
/* A client-side TLS bufferevent (no socket yet: bufferevent_socket_connect gives it one) with
 * the peers context of a net_tls_new_peers, or NULL (no memory, or tls has no CA). */
struct bufferevent *net_tls_client_bev_new(net_tls *tls, struct event_base *base);
/* Send close_notify now, when the handshake finished (the output buffer must be empty). */
void net_tls_close_notify(struct bufferevent *bev);
/* After a TLS error event: the last OpenSSL error as text in why; 1 when the client spoke plain
 * HTTP (OpenSSL recognises "GET ", "POST ", "HEAD ", "PUT " and "CONNECT" as a first record). */
int net_tls_failure(struct bufferevent *bev, char *why, size_t cap);

/* net_sniff.c */
/* An admitted socket of a server that serves TLS and plain alike: wait for its first byte, then
 * net_conn_start it as what that byte says. Closes fd and gives the place back when it cannot. */
void net_sniff_start(net_loop *loop, evutil_socket_t fd, const struct sockaddr *sa, int salen);
/* Close this loop's oldest socket waiting for its first byte since NET_FRESH_MS or more: 1 when
 * one was closed (net_conn_shed, ranked with the idle connections). */
int net_sniff_shed(net_loop *loop);
/* Close every socket of this loop still waiting for its first byte (server stop and free). */
void net_sniff_close_all(net_loop *loop);

/* net_body.c */
/*
 * Move body bytes of r from the socket input into r->body (or drop them when discarding), at most
 * up to the read high-water mark buffered. Returns 0, or the HTTP status of a framing error (400,
 * 431). *progress is set when any byte moved or the body completed.
 */
int net_body_decode(net_req *r, struct evbuffer *in, const net_config *cfg, int *progress);
/* Parse a chunk-size line (without its line end). 0, or -1 when malformed. */
int net_chunk_size_parse(const char *p, size_t n, int64_t *size);

/* net_parse.c */
/* Content of a server-generated error: S3-style XML code and message for a status. */
void net_error_text(int status, const char **code, const char **message);
/* A valid "name: value" header or trailer line (without line end). */
int net_field_valid(const char *p, size_t n);

#endif
