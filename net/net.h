/*
 * net.h - HTTP/1.1 server on libevent bufferevents, with streaming bodies (and, in the last
 * section, the pooled client that nodes use to call each other: net_client.c).
 *
 * Why not evhttp: libevent 2.1's evhttp buffers whole request bodies, which a 5 GiB PUT cannot
 * afford. This server hands the body to the handler piece by piece as it arrives (de-chunked when
 * the client used Transfer-Encoding: chunked) and lets the handler stream the response out with
 * backpressure, so memory per connection stays bounded whatever the object size.
 *
 * Threading: net_server_run() runs `threads` event loops, one per thread, each with its own
 * listening socket on the same port (SO_REUSEPORT). A connection belongs to one loop for its whole
 * life; every handler callback for a request runs on that loop's thread. Handlers therefore must
 * be safe to call concurrently from several threads for different requests.
 *
 * Request lifecycle (one request at a time per connection; pipelined requests wait in the input
 * buffer):
 *   1. on_request(req)        headers parsed and validated. The handler either responds at once
 *                             (an error, a GET) or calls net_req_read_body() to receive the body.
 *   2. on_body(req, buf)      body bytes arrived; the handler removes what it consumes from buf.
 *                             Bytes it leaves stay buffered; reading from the socket pauses while
 *                             more than the read high-water mark is buffered, which is the
 *                             backpressure towards the client.
 *   3. on_body_end(req)       the whole body arrived (Content-Length reached or last chunk read).
 *   4. the handler responds: net_resp_start() then net_resp_write*() and net_resp_end(); a long
 *      body is produced in pieces from on_drain(), which is called whenever the output buffer
 *      falls below the low-water mark while the response is not ended.
 *   5. on_done(req, aborted)  always called exactly once, when the response has been fully
 *                             handed to the kernel or the connection failed (aborted=1). The
 *                             handler frees its per-request state here. After on_done, req is gone.
 *
 * If the handler responds without having read the body, the server either discards the remaining
 * body (when it is small and of known length) or closes the connection after the response.
 * `Expect: 100-continue` is answered with "100 Continue" only when the handler calls
 * net_req_read_body(), so a request rejected on its headers never makes the client send the body.
 *
 * Limits enforced by the server itself, before the handler sees anything: request line length
 * (414), header section size and count (431), malformed syntax (400), unsupported
 * Transfer-Encoding (501), both Content-Length and Transfer-Encoding or bad lengths (400), idle and
 * slow-client timeouts (connection closed; 408 when a request was partly received), an absolute
 * deadline for the request head (408), and the connection limit: at max_connections a new
 * connection sheds the oldest idle one, or is answered 503 SlowDown and closed when every
 * connection has a request in flight. Out of descriptors (EMFILE), a loop sheds an idle
 * connection or pauses accepting for 100 ms.
 */
#ifndef NET_H
#define NET_H

#include <stddef.h>
#include <stdint.h>

#include "cm_err.h"

struct evbuffer;
struct event_base;

typedef struct net_server net_server;
typedef struct net_req net_req;
typedef struct net_tls net_tls;

typedef struct {
    void (*on_request)(net_req *req, void *arg);
    void (*on_body)(net_req *req, struct evbuffer *body, void *arg);
    void (*on_body_end)(net_req *req, void *arg);
    void (*on_drain)(net_req *req, void *arg);
    void (*on_done)(net_req *req, int aborted, void *arg);
    /* Optional, once per loop: on_loop_start on the loop's thread before it serves anything;
     * on_loop_end in net_server_free, once the loop stopped and its connections are gone (each
     * on_done has run), before its base is freed: what the handler keeps per loop (e.g. an RPC
     * client on base) ends there. Not called for a loop that never ran. */
    void (*on_loop_start)(struct event_base *base, void *arg);
    void (*on_loop_end)(struct event_base *base, void *arg);
} net_handler;

typedef struct {
    const char *host;        /* listen address, e.g. "127.0.0.1" */
    int port;                /* 0 = pick a free port (see net_server_port) */
    int threads;             /* event loops; 0 = number of cores */
    size_t max_request_line; /* default 16 KiB */
    size_t max_header_bytes; /* whole header section; default 64 KiB */
    size_t max_headers;      /* number of header fields; default 200 */
    int idle_timeout_ms;     /* keep-alive connection with no request; default 60 s */
    int io_timeout_ms;       /* no progress reading a request or writing a response; 60 s */
    int header_timeout_ms;   /* a request head must be whole this long after its first byte; 20 s */
    int max_connections;     /* open connections, all loops; 0 = from RLIMIT_NOFILE (see below) */
    size_t read_high_water;  /* stop reading the socket when this much body is buffered; 1 MiB */
    size_t write_low_water;  /* call on_drain when output falls below this; 256 KiB */
    net_tls *tls;            /* NULL: plain HTTP; else HTTPS only (borrowed, outlives the server) */
    int tls_plain_too;       /* with tls: serve plain connections as well (net_tls_hello_byte) */
} net_config;

/* Fill cfg with the defaults above (host 127.0.0.1, port 9000). */
void net_config_defaults(net_config *cfg);
/*
 * The max_connections used when the config says 0: the RLIMIT_NOFILE soft limit less a reserve
 * for data files, the metadata store, workers and the loops' own descriptors (a quarter of the
 * limit, at least 128), and never less than half the limit.
 */
int net_default_max_connections(void);

/*
 * Create a server bound to cfg->host:cfg->port (sockets are bound and listening when this
 * returns, so a caller may connect before net_server_run). handler and arg are borrowed and must
 * outlive the server. Errors: CM_ERR_EXISTS (cfg->port is already listened on by another
 * socket, of this process or another: SO_REUSEPORT is used only among this server's loops),
 * CM_ERR_IO (bind/listen failed, message logged), CM_ERR_NOMEM.
 */
cm_err net_server_new(const net_config *cfg, const net_handler *handler, void *arg,
                      net_server **out);
/* The bound port (useful with port 0). */
int net_server_port(const net_server *srv);
/*
 * Change the idle and header timeouts of a running server (SIGHUP): any thread. Each connection
 * takes them the next time it arms its timer.
 */
void net_server_set_timeouts(net_server *srv, int idle_timeout_ms, int header_timeout_ms);
/* Run the loops on `threads` threads (the caller's thread runs loop 0); returns after stop. */
cm_err net_server_run(net_server *srv);
/*
 * Ask the server to stop: listeners close at once, idle connections close, requests in flight
 * get up to grace_ms to finish, then the loops exit. Safe to call from any thread; not
 * async-signal-safe (use a libevent signal event or a self-pipe to call it).
 */
void net_server_stop(net_server *srv, int grace_ms);
/* Free a stopped server. NULL is a no-op. */
void net_server_free(net_server *srv);
/* Connections open now and accepted since start (refused ones not counted), for /metrics. */
void net_server_conn_stats(const net_server *srv, uint64_t *open, uint64_t *accepted);
/* Connections of loop i, those on their way to it included (-1: no such loop). */
int net_server_loop_conns(const net_server *srv, int i);

/* ---- TLS (net_tls.c, docs/tls.md) ----
 *
 * A server whose config has tls set (and not tls_plain_too) speaks HTTPS only: every connection
 * starts with a TLS handshake (TLS 1.2 minimum, ECDHE, no compression or renegotiation, ALPN
 * http/1.1), which must finish within header_timeout_ms of the accept; a plain HTTP request gets a
 * plain-text 400 saying to use https, or a close. One net_tls may serve several servers. OpenSSL
 * writes to the socket with write(), not send(MSG_NOSIGNAL): the process must ignore SIGPIPE
 * (`cairn server` does).
 */
/*
 * With cfg.tls_plain_too, one port serves both: each new connection waits (up to
 * header_timeout_ms) for its first byte, peeked without consuming it, and this says which it is:
 * 1 when it opens a TLS handshake record (content type 22, 0x16, which every ClientHello starts
 * with), 0 for anything else (plain: an HTTP request starts with a method's letter). A connection
 * that closes or sends nothing in time is closed. docs/rpc.md, "Switching to TLS".
 */
int net_tls_hello_byte(unsigned char first);
/*
 * Load a PEM certificate chain and its PEM private key (no passphrase). The key file is refused
 * when other users may read it (a warning when its group may). CM_ERR_INVAL with the reason in
 * err, CM_ERR_NOMEM.
 */
cm_err net_tls_new(const char *cert_file, const char *key_file, net_tls **out, char *err,
                   size_t errcap);
/*
 * The same for a cluster's node-to-node traffic: a server with this tls asks each client for a
 * certificate that chains to ca_file and refuses one without; a net_client with it presents
 * cert_file and refuses a server whose certificate does not chain to ca_file. Any certificate the
 * CA signed is accepted (no name is compared). Errors as net_tls_new.
 */
cm_err net_tls_new_peers(const char *ca_file, const char *cert_file, const char *key_file,
                         net_tls **out, char *err, size_t errcap);
/*
 * Read the same files again and, when they load, serve them to connections accepted from now
 * on (open connections keep theirs). On failure (CM_ERR_INVAL, reason in err and logged) the
 * previous certificate stays. Any thread.
 */
cm_err net_tls_reload(net_tls *tls, char *err, size_t errcap);
/* Free after every server using it was freed. NULL is a no-op. */
void net_tls_free(net_tls *tls);

/* ---- Request accessors (valid from on_request until on_done) ---- */

const char *net_req_method(const net_req *req); /* "GET", as sent */
const char *net_req_target(const net_req *req); /* request-target as sent: "/b/k?x=y" */
int net_req_http_minor(const net_req *req);     /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
/* First header with this name (case-insensitive) or NULL. Values are NUL-terminated, trimmed. */
const char *net_req_header(const net_req *req, const char *name);
size_t net_req_header_count(const net_req *req);
/* Header i (0-based, in arrival order); name and value NUL-terminated. */
void net_req_header_at(const net_req *req, size_t i, const char **name, const char **value);
/* Content-Length, or -1 when the body is chunked. 0 when the request has no body. */
int64_t net_req_content_length(const net_req *req);
int net_req_chunked(const net_req *req);
/* Total body bytes delivered to on_body so far. */
uint64_t net_req_body_received(const net_req *req);
/* The response status (0 before net_resp_start) and body bytes written so far (access log). */
int net_resp_status(const net_req *req);
uint64_t net_resp_written(const net_req *req);
const char *net_req_peer(const net_req *req); /* "127.0.0.1:54321" */
/* 1 when the request came over TLS (aws:SecureTransport; SSE-C requires it), else 0. */
int net_req_tls(const net_req *req);
struct event_base *net_req_base(net_req *req);
void net_req_set_data(net_req *req, void *data);
void *net_req_data(const net_req *req);

/* Start receiving the body (sends 100 Continue when the client expects it). */
void net_req_read_body(net_req *req);
/* Pause / resume delivery of on_body (for handlers that wait on something asynchronous). While
 * paused the buffered body is left alone, except that bytes arriving are appended: the socket
 * is still read until read_high_water bytes are buffered, no further. */
void net_req_pause_body(net_req *req);
void net_req_resume_body(net_req *req);

/* ---- Response ---- */

/*
 * Begin the response. Headers are added with net_resp_header between net_resp_start and the first
 * write/end. content_length >= 0 sends Content-Length; -1 uses chunked encoding (HTTP/1.1) or
 * closes the connection at the end (HTTP/1.0). For HEAD requests no body is sent whatever is
 * written. The server adds Date, Content-Length/Transfer-Encoding and Connection itself.
 */
void net_resp_start(net_req *req, int status, int64_t content_length);
void net_resp_header(net_req *req, const char *name, const char *value);
void net_resp_write(net_req *req, const void *data, size_t len);
/* Move all of buf's contents into the response without copying. */
void net_resp_write_buffer(net_req *req, struct evbuffer *buf);
/*
 * Send len bytes of file fd from offset pos as body without reading them here: by sendfile on a
 * plain connection (on TLS libevent reads them into memory at once, for the bufferevent to
 * encrypt). Takes fd: it is closed once the bytes are sent or the connection is gone, at once
 * when nothing may be written. The file must keep those bytes until then. -1 (out of memory)
 * leaves the body broken: abort the request.
 */
int net_resp_write_file(net_req *req, int fd, uint64_t pos, uint64_t len);
/* Bytes written by the handler but not yet handed to the kernel. */
size_t net_resp_pending(const net_req *req);
/* Finish the response. Then on_done follows once the bytes are sent. */
void net_resp_end(net_req *req);
/* Close the connection after this response (also set for HTTP/1.0 without keep-alive). */
void net_resp_close_after(net_req *req);
/* Abort: the connection is closed at once and on_done(aborted=1) follows. Use mid-stream failure.
 */
void net_req_abort(net_req *req);
/* Convenience: start + headers Content-Type + body + end. */
void net_resp_simple(net_req *req, int status, const char *content_type, const void *body,
                     size_t len);

/* Reason phrase for a status code ("Not Found"); "Unknown" when not known. */
const char *net_status_reason(int status);

/* ---- Incremental request-head parser (exposed for unit tests and the fuzz target) ---- */

typedef struct {
    char method[16];
    char *target; /* NUL-terminated, in the block names heads */
    int http_minor;
    size_t nheaders;
    char **names; /* arrays of NUL-terminated strings: one heap block from names on */
    char **values;
    /* Name index for net_head_find: hashes[i] is header i's name hash (case folded); slots, a
     * power of two of them, hold 1 + the index of each distinct name's first header, 0 empty. */
    uint32_t *hashes;
    uint32_t *slots;
    size_t nslots;
    int64_t content_length; /* -1 if absent */
    int chunked;
    int keep_alive; /* after Connection header and version are considered */
    int expect_continue;
} net_head;

/*
 * Parse one request head from buf[0..len). Returns CM_OK and sets *used to the bytes consumed
 * (through the blank line) when complete; CM_AGAIN when more bytes are needed; otherwise an error
 * with *status set to the HTTP status to answer (400, 414, 431, 501). The head is released with
 * net_head_release.
 */
cm_err net_head_parse(const char *buf, size_t len, const net_config *cfg, net_head *head,
                      size_t *used, int *status);
void net_head_release(net_head *head);
/* The value of the first header named name (ASCII case-insensitive), or NULL: a hash probe, not
 * a scan (net_req_header). */
const char *net_head_find(const net_head *head, const char *name);

/* ---- HTTP/1.1 client (net_client.c) ----
 *
 * A pooled keep-alive client on one event loop, for node-to-node calls: per peer (host:port) at
 * most max_conns connections, each with one call in flight (no pipelining); calls beyond that wait
 * in a FIFO queue and take the next connection that becomes idle. Everything runs on the caller's
 * loop; callbacks are never entered from inside a net_call_* function (they run from the loop).
 *
 * Bodies stream both ways with bounded memory: a request body is either an evbuffer moved into the
 * socket buffer (no copy) or produced piece by piece by on_send whenever the output falls below
 * write_low_water; a response body is handed to on_body as it arrives and bytes on_body leaves in
 * the buffer pause reading (backpressure) until net_call_resume.
 *
 * Timeouts: connect_timeout_ms to establish a connection, io_timeout_ms without progress while a
 * call is in flight (CM_ERR_TIMEOUT). Retries: a call marked idempotent without a request body is
 * retried (up to `retries` times) after a transport failure before any response byte arrived;
 * other calls fail with the transport error. Errors given to on_done: CM_OK (a response arrived,
 * whatever its status), CM_ERR_UNAVAILABLE (connection refused / unreachable), CM_ERR_TIMEOUT,
 * CM_ERR_CLOSED (connection lost mid-call, malformed response, or the client was freed).
 * Hosts are numeric addresses ("127.0.0.1", "::1") or DNS names of at most 127 characters; a
 * name is resolved for every new connection, asynchronously on the loop (libevent's evdns), and
 * the connection tries up to 4 of its addresses in turn, each within connect_timeout_ms.
 */
typedef struct net_client net_client;
typedef struct net_call net_call;

typedef struct {
    int max_conns;          /* per peer; default 8 */
    int connect_timeout_ms; /* default 2000 */
    int io_timeout_ms;      /* default 10000 */
    int idle_timeout_ms;    /* close a pooled idle connection after this; default 30000 */
    int retries;            /* extra tries of an idempotent call; default 1, < 0 none */
    size_t read_high_water; /* response body buffered before reading pauses; default 1 MiB */
    size_t write_low_water; /* on_send is asked for more below this; default 256 KiB */
    size_t max_head_bytes;  /* response head limit; default 64 KiB */
    net_tls *tls;           /* NULL: plain; else from net_tls_new_peers (borrowed, outlives it) */
    const char *nameserver; /* "ip[:port]", the only DNS server (tests; borrowed); NULL: system */
} net_client_config;

typedef struct {
    /* Response body bytes; take what you can. Bytes left pause reading until net_call_resume. */
    void (*on_body)(net_call *call, struct evbuffer *body, void *arg);
    /* Produce more request body into out (at most what is left of the declared length). */
    void (*on_send)(net_call *call, struct evbuffer *out, void *arg);
    /* Exactly once; the call is freed when it returns. */
    void (*on_done)(net_call *call, cm_err e, void *arg);
} net_call_handler;

typedef struct {
    uint64_t connects; /* connections opened */
    uint64_t reuses;   /* calls sent on a pooled connection */
    uint64_t retries;  /* idempotent calls sent again */
    uint64_t calls;    /* calls completed (any result) */
} net_client_stats;

void net_client_config_defaults(net_client_config *cfg);
/* A client on base (borrowed, must outlive it). cfg NULL = defaults; zero fields = defaults. */
cm_err net_client_new(struct event_base *base, const net_client_config *cfg, net_client **out);
/* Close every connection; calls in flight or queued get on_done(CM_ERR_CLOSED). NULL: no-op. */
void net_client_free(net_client *cl);
void net_client_get_stats(const net_client *cl, net_client_stats *out);
/* Open connections to host:port (busy + idle). */
int net_client_conns(const net_client *cl, const char *host, int port);

/*
 * Build a call: method and request-target ("/x?y=1") are copied. Add headers with net_call_header
 * (the client adds Host, Content-Length and Connection itself), then net_call_start.
 */
cm_err net_call_new(net_client *cl, const char *host, int port, const char *method,
                    const char *target, net_call **out);
void net_call_header(net_call *call, const char *name, const char *value);
/*
 * The request body: body_len bytes, taken from body (moved out of it, no copy; may hold fewer than
 * body_len bytes, or be NULL, when on_send produces the rest).
 */
void net_call_body(net_call *call, uint64_t body_len, struct evbuffer *body);
/* Queue the call. From here on the client owns it; on_done tells the end. */
void net_call_start(net_call *call, const net_call_handler *h, void *arg, int idempotent);
/* Resume response delivery after on_body left bytes in the buffer. */
void net_call_resume(net_call *call);
/* Response accessors, valid from the first on_body or on_done (CM_OK) until on_done returns. */
int net_call_status(const net_call *call);
const char *net_call_resp_header(const net_call *call, const char *name);
/* Body bytes received so far. */
uint64_t net_call_received(const net_call *call);
/* Free a call that was never started. */
void net_call_free(net_call *call);
/*
 * The client's response parser on a buffer (for unit tests and the fuzz target): parse one
 * response to `method` from buf[0..len), the end of buf being the end of the connection. CM_OK
 * with *status and *body_len when it holds a whole response, CM_AGAIN when it stops short,
 * CM_ERR_CLOSED when it is malformed.
 */
cm_err net_resp_parse(const void *buf, size_t len, const char *method, int *status,
                      uint64_t *body_len);

#endif
