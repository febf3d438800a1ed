/*
 * nt_serve.h - the fixture of the HTTP server tests (test_net.c, test_net_conns.c): a server on
 * 127.0.0.1:0 in a thread (tsrv) whose test handler picks its behaviour from the request path
 * (/echo and /reject bodies, /chunked, /pause, /big, /slow, /abort, /later..., /stall, /hoard,
 * /file and /file-chunked (a file's bytes by net_resp_write_file);
 * anything else answers "hello"), counting requests, ends and aborts in th_state; and a blocking
 * client (cli) sending raw bytes and reading responses (resp).
 */
#ifndef NT_SERVE_H
#define NT_SERVE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "net.h"

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
    net_server *srv;
    pthread_t th;
    th_state st;
    int port;
} tsrv;

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

/* /file's body: bytes [TH_FILE_AT, TH_FILE_LEN) of a file whose byte i is th_file_byte(i), "|",
 * then its bytes [0, 10). Longer than loopback's socket buffers take from a reader that stalls. */
#define TH_FILE_LEN (16u << 20)
#define TH_FILE_AT 100u
static inline uint8_t th_file_byte(size_t i)
{
    return (uint8_t)((i * 131) >> 3);
}

/* The test handler (its requests' state in a tsrv's th_state). */
extern const net_handler th_handler;

/* FNV-1a over n bytes, from h: the handler's digest of a body, and the tests' expectation. */
uint64_t fnv(uint64_t h, const uint8_t *p, size_t n);

/* The tests' server config (1 thread, port 0, small watermarks); start t on cfg, or on it as is;
 * stop, join, free: afterwards every started request must have had exactly one on_done. */
void tsrv_cfg(net_config *cfg);
void tsrv_start(tsrv *t, const net_config *cfg);
void tsrv_start_default(tsrv *t);
void tsrv_stop(tsrv *t);

/* A client socket, not yet connected (5 s send and receive timeouts); connected to 127.0.0.1's
 * port; both; closed. */
void cli_socket(cli *c);
void cli_connect(cli *c, int port);
void cli_open(cli *c, int port);
void cli_close(cli *c);

/* Send all n bytes (or the string): 0, or -1 on an error. */
int cli_send(cli *c, const void *p, size_t n);
int cli_sends(cli *c, const char *s);

/* Read more bytes into the buffer: >0 read, 0 EOF, -1 error or timeout. */
int cli_fill(cli *c);
/* At least n bytes buffered (0), or -1; take n buffered bytes into out (NULL: drop them); one
 * line with its "\n" into out (0), or -1. */
int cli_need(cli *c, size_t n);
void cli_take(cli *c, size_t n, char *out);
int cli_line(cli *c, char *out, size_t cap);

/* Header value from a response head ("" when absent). */
const char *resp_header(const resp *r, const char *name, char *out, size_t cap);

/* Read one response. head_req: the request was HEAD, so no body follows. 0 or -1. */
int cli_response(cli *c, resp *r, int head_req);
void resp_free(resp *r);

/* The server closed: recv sees EOF (not a timeout). */
int cli_eof(cli *c);

/* GET path answers 200 with want_body. */
void get_ok(cli *c, const char *path, const char *want_body);

/* Milliseconds since a (CLOCK_MONOTONIC). */
int64_t elapsed_ms(const struct timespec *a);

/* Something to read (or EOF) within ms. */
int cli_readable(cli *c, int ms);

/* Wait (bounded) until the handler has seen n requests. */
int wait_requests(tsrv *t, int n);

#endif
