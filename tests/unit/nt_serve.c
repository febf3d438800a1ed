/*
 * nt_serve.c - the fixture of the HTTP server tests (test_net.c, test_net_conns.c): a real server
 * on 127.0.0.1:0 in a thread with a test handler that picks its behaviour from the request path,
 * and a blocking client (5 s send and receive timeouts, so a bug fails instead of hanging) that
 * sends raw bytes and reads responses back. Interface in nt_serve.h.
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
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cm_util.h"
#include "cu_main.h"
#include "nt_serve.h"

/* ---- test handler ---- */

static pthread_mutex_t file_mu = PTHREAD_MUTEX_INITIALIZER;
static char file_path[512];

/* /file's bytes on disk (made once per process), opened for one response: -1 on a failure. */
static int th_file_open(void)
{
    pthread_mutex_lock(&file_mu);
    if (!file_path[0]) {
        snprintf(file_path, sizeof(file_path), "%s/th-file", cu_tmpdir());
        FILE *f = fopen(file_path, "wb");
        for (size_t i = 0; f && i < TH_FILE_LEN; i++)
            fputc(th_file_byte(i), f);
        if (!f || fclose(f) != 0)
            file_path[0] = '\0';
    }
    int fd = file_path[0] ? open(file_path, O_RDONLY | O_CLOEXEC) : -1;
    pthread_mutex_unlock(&file_mu);
    return fd;
}

/* /file and /file-chunked: [TH_FILE_AT, end of file), "|", then the file's first 10 bytes, the
 * file parts by net_resp_write_file. */
static void th_file_answer(net_req *req, int chunked)
{
    int a = th_file_open(), b = th_file_open();
    if (a < 0 || b < 0) {
        if (a >= 0)
            close(a);
        if (b >= 0)
            close(b);
        net_resp_simple(req, 500, "text/plain", "no file", 7);
        return;
    }
    net_resp_start(req, 200, chunked ? -1 : (int64_t)(TH_FILE_LEN - TH_FILE_AT + 1 + 10));
    int rc = net_resp_write_file(req, a, TH_FILE_AT, TH_FILE_LEN - TH_FILE_AT);
    net_resp_write(req, "|", 1);
    rc |= net_resp_write_file(req, b, 0, 10);
    if (rc != 0)
        net_req_abort(req);
    net_resp_end(req);
}

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

uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
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
    } else if (strcmp(path, "/wire") == 0) { /* the response head's bytes, exactly */
        char value[301];
        struct evbuffer *b = evbuffer_new();
        memset(value, 'v', 300);
        value[300] = '\0';
        net_resp_start(req, 206, -1);
        net_resp_header(req, "X-Long", value);
        net_resp_header(req, "content-length", "7");       /* the server's own: dropped */
        net_resp_header(req, "X-Split", "a\r\nX-Evil: 1"); /* refused */
        net_resp_header(req, "Bad Name", "x");             /* refused */
        net_resp_header(req, "X-Empty", "");
        net_resp_write(req, value, 300);
        for (int i = 0; i < 16; i++)
            evbuffer_add(b, value, 256);
        net_resp_write_buffer(req, b);
        evbuffer_free(b);
        net_resp_end(req);
    } else if (strcmp(path, "/file") == 0 || strcmp(path, "/file-chunked") == 0) {
        th_file_answer(req, path[5] != '\0');
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

const net_handler th_handler = {
    .on_request = th_on_request,
    .on_body = th_on_body,
    .on_body_end = th_on_body_end,
    .on_drain = th_on_drain,
    .on_done = th_on_done,
};

/* ---- server in a thread ---- */

static void *run_thread(void *arg)
{
    tsrv *t = arg;
    net_server_run(t->srv);
    return NULL;
}

void tsrv_cfg(net_config *cfg)
{
    net_config_defaults(cfg);
    cfg->port = 0;
    cfg->threads = 1;
    cfg->read_high_water = 256 * 1024;
    cfg->write_low_water = 64 * 1024;
}

void tsrv_start(tsrv *t, const net_config *cfg)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->st.mu, NULL);
    CU_ASSERT_EQUAL_FATAL(net_server_new(cfg, &th_handler, &t->st, &t->srv), CM_OK);
    t->st.srv = t->srv;
    t->port = net_server_port(t->srv);
    CU_ASSERT_FATAL(t->port > 0);
    pthread_create(&t->th, NULL, run_thread, t);
}

void tsrv_start_default(tsrv *t)
{
    net_config cfg;
    tsrv_cfg(&cfg);
    tsrv_start(t, &cfg);
}

/* Stop, join, free; afterwards every started request must have had exactly one on_done. */
void tsrv_stop(tsrv *t)
{
    net_server_stop(t->srv, 1000);
    pthread_join(t->th, NULL);
    net_server_free(t->srv);
    CU_ASSERT_EQUAL(t->st.requests, t->st.done);
    pthread_mutex_destroy(&t->st.mu);
}

/* ---- blocking client ---- */

/* A client socket, not yet connected. */
void cli_socket(cli *c)
{
    struct timeval tv = {5, 0};
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(c->fd >= 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

void cli_connect(cli *c, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
}

void cli_open(cli *c, int port)
{
    cli_socket(c);
    cli_connect(c, port);
}

void cli_close(cli *c)
{
    close(c->fd);
    free(c->buf);
}

int cli_send(cli *c, const void *p, size_t n)
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

int cli_sends(cli *c, const char *s)
{
    return cli_send(c, s, strlen(s));
}

/* Read more bytes into the buffer: >0 read, 0 EOF, -1 error or timeout. */
int cli_fill(cli *c)
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

int cli_need(cli *c, size_t n)
{
    while (c->len < n)
        if (cli_fill(c) <= 0)
            return -1;
    return 0;
}

void cli_take(cli *c, size_t n, char *out)
{
    if (out)
        memcpy(out, c->buf, n);
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

int cli_line(cli *c, char *out, size_t cap)
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
const char *resp_header(const resp *r, const char *name, char *out, size_t cap)
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
int cli_response(cli *c, resp *r, int head_req)
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

void resp_free(resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* The server closed: recv sees EOF (not a timeout). */
int cli_eof(cli *c)
{
    int k;
    while ((k = cli_fill(c)) > 0)
        ;
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

void get_ok(cli *c, const char *path, const char *want_body)
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

int64_t elapsed_ms(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000;
}

/* Something to read (or EOF) within ms. */
int cli_readable(cli *c, int ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return c->len > 0 || poll(&p, 1, ms) == 1;
}

/* Wait (bounded) until the handler has seen n requests. */
int wait_requests(tsrv *t, int n)
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
