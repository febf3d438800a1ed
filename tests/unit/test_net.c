/*
 * test_net.c - the HTTP server end to end, one request at a time: framing, keep-alive and
 * pipelining, bodies (large, chunked, Expect: 100-continue, unread, not taken), backpressure,
 * limits, timeouts and deadlines, aborts, asynchronous answers, half-close, bodies sent from
 * files (and their descriptors given back, a stalled reader's too). A real server on
 * 127.0.0.1:0 in a thread, driven from the test thread with plain blocking sockets (the fixture:
 * nt_serve.c). Payloads come from a seeded xorshift generator; the seed is printed. Stopping the
 * server, its threads and its connection and descriptor limits: test_net_conns.c.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
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
#include "net.h"
#include "nt_serve.h"

static uint64_t seed = 0x9e3779b97f4a7c15ull;

/* ---- tests ---- */

static void test_simple_get(void)
{
    tsrv t;
    cli c;
    resp r;
    char v[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Length", v, sizeof(v)), "5");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Type", v, sizeof(v)), "text/plain");
    CU_ASSERT(strlen(resp_header(&r, "Date", v, sizeof(v))) == 29);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "");
    resp_free(&r);
    cli_close(&c);
    tsrv_stop(&t);
}

/* One CRLF-terminated line, without its CRLF. 0, or -1 (no line, or not ended by CRLF). */
static int crlf_line(cli *c, char *out, size_t cap)
{
    if (cli_line(c, out, cap) != 0)
        return -1;
    size_t n = strlen(out);
    if (n < 2 || out[n - 2] != '\r')
        return -1;
    out[n - 2] = '\0';
    return 0;
}

/* The response head byte for byte: status line, Date, the handler's headers in order (the
 * server's own and malformed ones dropped), the framing, then chunk sizes in hex. */
static void test_response_wire(void)
{
    tsrv t;
    cli c;
    char line[512], want[512];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /wire HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL(crlf_line(&c, line, sizeof(line)), 0);
    CU_ASSERT_STRING_EQUAL(line, "HTTP/1.1 206 Partial Content");
    CU_ASSERT_EQUAL(crlf_line(&c, line, sizeof(line)), 0);
    CU_ASSERT(strncmp(line, "Date: ", 6) == 0 && strlen(line) == 6 + 29 &&
              strcmp(line + 6 + 25, " GMT") == 0);
    CU_ASSERT_EQUAL(crlf_line(&c, line, sizeof(line)), 0);
    memset(want, 'v', 300);
    want[300] = '\0';
    CU_ASSERT(strncmp(line, "X-Long: ", 8) == 0 && strcmp(line + 8, want) == 0);
    static const char *const rest[] = {"X-Empty: ", "Transfer-Encoding: chunked", "", "12c"};
    for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++) {
        CU_ASSERT_EQUAL(crlf_line(&c, line, sizeof(line)), 0);
        CU_ASSERT_STRING_EQUAL(line, rest[i]);
    }
    CU_ASSERT_EQUAL_FATAL(cli_need(&c, 300 + 2), 0);
    cli_take(&c, 300 + 2, NULL);
    CU_ASSERT_EQUAL(crlf_line(&c, line, sizeof(line)), 0);
    CU_ASSERT_STRING_EQUAL(line, "1000");
    CU_ASSERT_EQUAL_FATAL(cli_need(&c, 4096 + 2), 0);
    cli_take(&c, 4096 + 2, NULL);
    CU_ASSERT_EQUAL(crlf_line(&c, line, sizeof(line)), 0);
    CU_ASSERT_STRING_EQUAL(line, "0");
    CU_ASSERT_EQUAL(crlf_line(&c, line, sizeof(line)), 0);
    CU_ASSERT_STRING_EQUAL(line, "");
    get_ok(&c, "/after", "hello"); /* the connection is still in step */
    cli_close(&c);
    tsrv_stop(&t);
}

static void test_keepalive_pipelined(void)
{
    tsrv t;
    cli c;
    resp r;
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    get_ok(&c, "/a", "hello");
    get_ok(&c, "/b", "hello");
    /* three requests in one send, the last one closing */
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\n"
                                  "GET /3 HTTP/1.1\r\nConnection: close\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 1), 0); /* HEAD: no body bytes follow */
    char v[64];
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Length", v, sizeof(v)), "5");
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.requests, 5);
    CU_ASSERT_EQUAL(t.st.aborted, 0);
}

static void test_http10(void)
{
    tsrv t;
    cli c;
    resp r;
    char v[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "keep-alive");
    resp_free(&r);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /x HTTP/1.0\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Send len pseudo-random bytes as the body of PUT path; return the expected "count hash". */
static void put_large(cli *c, const char *path, size_t len, char *want, size_t wcap)
{
    char head[256];
    uint8_t piece[65536];
    uint64_t s = seed, h = 0xcbf29ce484222325ull;
    snprintf(head, sizeof(head), "PUT %s HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", path, len);
    CU_ASSERT_EQUAL_FATAL(cli_sends(c, head), 0);
    for (size_t off = 0; off < len; off += sizeof(piece)) {
        size_t n = CM_MIN(sizeof(piece), len - off);
        for (size_t i = 0; i < n; i++)
            piece[i] = (uint8_t)xorshift(&s);
        h = fnv(h, piece, n);
        CU_ASSERT_EQUAL_FATAL(cli_send(c, piece, n), 0);
    }
    snprintf(want, wcap, "%llu %016llx", (unsigned long long)len, (unsigned long long)h);
}

/* A small PUT sent in one piece, head and body, is read in one go: the handler gets the whole
 * 6,000-byte body in one on_body (libevent's own reads stopped at 4 KiB: two calls). */
static void test_small_put_one_read(void)
{
    tsrv t;
    cli c;
    resp r;
    char msg[8192];
    int n = snprintf(msg, sizeof(msg), "PUT /echo HTTP/1.1\r\nContent-Length: 6000\r\n\r\n");
    memset(msg + n, 'b', 6000);
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL_FATAL(cli_send(&c, msg, (size_t)n + 6000), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.body_calls, 1);
    CU_ASSERT_EQUAL(t.st.max_body_buffered, 6000);
}

static void test_large_body(void)
{
    tsrv t;
    cli c;
    resp r;
    char want[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    put_large(&c, "/echo", 8u << 20, want, sizeof(want));
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, want);
    resp_free(&r);
    get_ok(&c, "/after", "hello");
    cli_close(&c);
    tsrv_stop(&t);
    /* streamed in pieces, never more than the high-water mark buffered */
    CU_ASSERT(t.st.body_calls > 8);
    CU_ASSERT(t.st.max_body_buffered <= 256 * 1024);
}

static void test_backpressure(void)
{
    tsrv t;
    cli c;
    resp r;
    char want[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    put_large(&c, "/pause", 3u << 20, want, sizeof(want));
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, want);
    resp_free(&r);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT(t.st.pauses > 1);
    CU_ASSERT(t.st.max_body_buffered <= 256 * 1024);
    /* While each piece is held for a timer turn the client's bytes pile up in the socket; the
     * next read takes on past libevent 2.1's 4 KiB per read event (net_conn.c read_more). */
    CU_ASSERT(t.st.max_body_buffered > 16 * 1024);
}

static void test_chunked_body(void)
{
    tsrv t;
    cli c;
    resp r;
    char want[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "5;name=value\r\nhello\r\n"
                                  "1 ; x\r\n \r\n"
                                  "A\r\n0123456789\r\n"
                                  "0\r\nX-Amz-Checksum-Crc32: AAAAAA==\r\nX-Other: 1\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    uint64_t h = fnv(0xcbf29ce484222325ull, (const uint8_t *)"hello 0123456789", 16);
    snprintf(want, sizeof(want), "16 %016llx", (unsigned long long)h);
    CU_ASSERT_STRING_EQUAL(r.body, want);
    resp_free(&r);
    get_ok(&c, "/after", "hello"); /* framing fully consumed */
    /* a bad chunk size is a 400 and closes */
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "zz\r\nhello\r\n0\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.aborted, 1);
}

static void test_expect_continue(void)
{
    tsrv t;
    cli c;
    resp r;
    char line[256], v[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /echo HTTP/1.1\r\nContent-Length: 5\r\n"
                                  "Expect: 100-continue\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_line(&c, line, sizeof(line)), 0);
    CU_ASSERT_STRING_EQUAL(line, "HTTP/1.1 100 Continue\r\n");
    CU_ASSERT_EQUAL_FATAL(cli_line(&c, line, sizeof(line)), 0);
    CU_ASSERT_STRING_EQUAL(line, "\r\n");
    CU_ASSERT_EQUAL(cli_sends(&c, "hello"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(strncmp(r.body, "5 ", 2) == 0);
    resp_free(&r);
    /* an announced empty body gets its 100 too (botocore waits for it), then the answer */
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /echo HTTP/1.1\r\nContent-Length: 0\r\n"
                                  "Expect: 100-continue\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_line(&c, line, sizeof(line)), 0);
    CU_ASSERT_STRING_EQUAL(line, "HTTP/1.1 100 Continue\r\n");
    CU_ASSERT_EQUAL_FATAL(cli_line(&c, line, sizeof(line)), 0);
    CU_ASSERT_STRING_EQUAL(line, "\r\n");
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(strncmp(r.body, "0 ", 2) == 0);
    resp_free(&r);
    /* rejected on its headers: no 100, the error, then close (the body never came) */
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /reject HTTP/1.1\r\nContent-Length: 5000000\r\n"
                                  "Expect: 100-continue\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 403);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
}

static void test_unread_body(void)
{
    tsrv t;
    cli c;
    resp r;
    char v[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    /* small unread body: discarded, connection kept */
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /reject HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 403);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "");
    resp_free(&r);
    get_ok(&c, "/after", "hello");
    /* chunked unread body: close after the response */
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /reject HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "3\r\nabc\r\n0\r\n\r\n"),
                    0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
}

static void test_chunked_response_and_head(void)
{
    tsrv t;
    cli c;
    resp r;
    char v[64];
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /chunked HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Transfer-Encoding", v, sizeof(v)), "chunked");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "X-Test", v, sizeof(v)), "yes");
    CU_ASSERT_EQUAL(r.blen, 8);
    CU_ASSERT(memcmp(r.body, "abcdefgh", 8) == 0);
    resp_free(&r);
    /* HEAD of a chunked response: neither chunks nor terminator */
    CU_ASSERT_EQUAL(cli_sends(&c, "HEAD /chunked HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 1), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    resp_free(&r);
    /* HTTP/1.0 gets the body close-delimited */
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /chunked HTTP/1.0\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "abcdefgh");
    resp_free(&r);
    cli_close(&c);
    tsrv_stop(&t);
}

static void test_drain_response(void)
{
    tsrv t;
    cli c;
    resp r;
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /big HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.blen, 4u << 20);
    CU_ASSERT_EQUAL((uint8_t)r.body[0], 0);
    resp_free(&r);
    get_ok(&c, "/after", "hello");
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT(t.st.max_pending < 64 * 1024 + 1024);
}

/* Send raw bytes, expect a server error with S3 XML and the connection closed. */
static void expect_error(tsrv *t, const char *raw, size_t len, int status, const char *code)
{
    cli c;
    resp r;
    char v[64];
    cli_open(&c, t->port);
    CU_ASSERT_EQUAL(cli_send(&c, raw, len), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, status);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    CU_ASSERT(strstr(r.body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>") ==
              r.body);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, code));
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
}

static void test_limits(void)
{
    tsrv t;
    net_config cfg;
    tsrv_cfg(&cfg);
    cfg.max_request_line = 1024;
    cfg.max_header_bytes = 4096;
    cfg.max_headers = 10;
    tsrv_start(&t, &cfg);
    char *big = malloc(16384);
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', 2000);
    memcpy(big + 2005, " HTTP/1.1\r\n\r\n", 13);
    expect_error(&t, big, 2018, 414, "RequestURITooLong");
    int n = snprintf(big, 16384, "GET / HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'b', 8000);
    memcpy(big + n + 8000, "\r\n\r\n", 4);
    expect_error(&t, big, (size_t)n + 8004, 431, "RequestHeaderSectionTooLarge");
    n = snprintf(big, 16384, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 11; i++)
        n += snprintf(big + n, 16384 - (size_t)n, "X-H%d: v\r\n", i);
    n += snprintf(big + n, 16384 - (size_t)n, "\r\n");
    expect_error(&t, big, (size_t)n, 431, "RequestHeaderSectionTooLarge");
    free(big);
    const char *bad[] = {
        "GET / HTTP/1.1\r\nA: 1\r\n  fold\r\n\r\n",
        "GET / HTTP/1.1\r\nA: x\ry\r\n\r\n",
        "PUT / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "PUT / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "NOT HTTP AT ALL\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(&t, bad[i], strlen(bad[i]), 400, "BadRequest");
    expect_error(&t, "GET / HTTP/1.1\r\nA: a\0b\r\n\r\n", 26, 400, "BadRequest");
    const char *te = "PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n";
    expect_error(&t, te, strlen(te), 501, "NotImplemented");
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.requests, 0);
}

static void test_timeouts(void)
{
    tsrv t;
    cli c;
    resp r;
    net_config cfg;
    struct timespec t0;
    tsrv_cfg(&cfg);
    cfg.idle_timeout_ms = 200;
    cfg.io_timeout_ms = 300;
    tsrv_start(&t, &cfg);
    /* idle keep-alive: closed silently */
    cli_open(&c, t.port);
    get_ok(&c, "/x", "hello");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT(cli_eof(&c));
    CU_ASSERT_EQUAL(c.len, 0);
    CU_ASSERT(elapsed_ms(&t0) >= 150);
    cli_close(&c);
    /* partial head: 408 */
    cli_open(&c, t.port);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /x HTTP/1.1\r\nHost"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 408);
    CU_ASSERT(elapsed_ms(&t0) >= 250);
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    /* partial body: 408, and the handler's request ends aborted */
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "PUT /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 408);
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.aborted, 1);
}

static void test_abort_and_trickle(void)
{
    tsrv t;
    cli c;
    resp r;
    tsrv_start_default(&t);
    /* a head sent one byte at a time parses like one sent at once */
    cli_open(&c, t.port);
    const char *req = "GET /trickle HTTP/1.1\r\nHost: t\r\nX-A: b\r\n\r\n";
    for (size_t i = 0; req[i]; i++)
        CU_ASSERT_EQUAL(cli_send(&c, req + i, 1), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    resp_free(&r);
    /* mid-stream abort: headers and 10 of 100 bytes, then the connection closes */
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /abort HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT(cli_response(&c, &r, 0) != 0);
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.done, 2);
    CU_ASSERT_EQUAL(t.st.aborted, 1);
}

/*
 * Responses written from outside server callbacks (a timer standing in for a worker's
 * completion) go out on a kept-alive connection, whether small or larger than the socket takes at
 * once; a request pipelined while another is in flight waits its turn.
 */
static void test_async_responses(void)
{
    tsrv t;
    cli c;
    resp r;
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    for (int i = 0; i < 3; i++)
        get_ok(&c, "/later", "later");
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /later-big HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL_FATAL(r.blen, 8u << 20);
    size_t bad = 0;
    for (size_t i = 0; i < r.blen; i++)
        bad += (uint8_t)r.body[i] != (uint8_t)(i * 7);
    CU_ASSERT_EQUAL(bad, 0);
    resp_free(&r);
    get_ok(&c, "/x", "hello");
    /* the second request arrives while the first is still being worked on */
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /later HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /y HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "later");
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    resp_free(&r);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.done, 7);
    CU_ASSERT_EQUAL(t.st.aborted, 0);
}

/*
 * A client that shuts down its sending side after its requests still gets every answer (the
 * server reads ahead while a request is in flight, so it sees the EOF early), then the close.
 */
static void test_half_close(void)
{
    tsrv t;
    cli c;
    resp r;
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /x HTTP/1.1\r\n\r\n"), 0);
    shutdown(c.fd, SHUT_WR);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);

    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /later HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n"
                                  "GET /later HTTP/1.1\r\n\r\n"),
                    0);
    shutdown(c.fd, SHUT_WR);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
        CU_ASSERT_STRING_EQUAL(r.body, i == 1 ? "hello" : "later");
        resp_free(&r);
    }
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);

    /* half a request, then EOF: nothing to answer, the connection just closes */
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /x HTTP/1.1\r\nHost:"), 0);
    shutdown(c.fd, SHUT_WR);
    CU_ASSERT(cli_eof(&c));
    CU_ASSERT_EQUAL(c.len, 0);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.done, 4);
    CU_ASSERT_EQUAL(t.st.aborted, 0);
}

/*
 * A client pipelining far more than one head's worth while a request is in flight: the server
 * reads ahead only so far (then pauses reading), and answers every request in order.
 */
static void test_pipeline_flood(void)
{
    enum { N = 6000 };
    static const char one[] = "GET /x HTTP/1.1\r\n\r\n";
    tsrv t;
    cli c;
    resp r;
    size_t len = strlen(one);
    char *all = malloc(N * len + 64);
    int n = snprintf(all, 64, "GET /later HTTP/1.1\r\n\r\n");
    for (int i = 0; i < N; i++)
        memcpy(all + n + (size_t)i * len, one, len);
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL_FATAL(cli_send(&c, all, (size_t)n + N * len), 0); /* > 80 KiB head cap */
    free(all);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "later");
    resp_free(&r);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        if (cli_response(&c, &r, 0) != 0)
            break;
        ok += r.status == 200 && strcmp(r.body, "hello") == 0;
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(ok, N);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.done, N + 1);
    CU_ASSERT_EQUAL(t.st.aborted, 0);
}

/*
 * A head trickled a byte at a time keeps the per-read timeout alive forever; the head deadline
 * counts from its first byte and answers 408 however fast the bytes come. It holds per head: a
 * kept-alive connection idle past the deadline still gets its next request served.
 */
static void test_head_deadline(void)
{
    tsrv t;
    cli c;
    resp r;
    net_config cfg;
    struct timespec t0;
    tsrv_cfg(&cfg);
    cfg.header_timeout_ms = 400;
    tsrv_start(&t, &cfg);
    cli_open(&c, t.port);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /x HTTP/1.1\r\nX-Slow: "), 0);
    for (int i = 0; i < 40 && !cli_readable(&c, 50); i++)
        CU_ASSERT_EQUAL(cli_sends(&c, "a"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 408);
    CU_ASSERT(strstr(r.body, "<Code>RequestTimeout</Code>") != NULL);
    CU_ASSERT(elapsed_ms(&t0) >= 350);
    CU_ASSERT(elapsed_ms(&t0) < 1500);
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    cli_close(&c);

    cli_open(&c, t.port);
    get_ok(&c, "/a", "hello");
    CU_ASSERT_FALSE(cli_readable(&c, 500)); /* idle longer than the head deadline: kept */
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /b HTTP/1.1\r\n"), 0);
    CU_ASSERT_FALSE(cli_readable(&c, 150));
    CU_ASSERT_EQUAL(cli_sends(&c, "Host: t\r\n"), 0);
    CU_ASSERT_FALSE(cli_readable(&c, 150));
    CU_ASSERT_EQUAL(cli_sends(&c, "\r\n"), 0); /* whole 300 ms after its first byte: in time */
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    cli_close(&c);
    tsrv_stop(&t);
}

/*
 * A handler that reads the body but neither takes the bytes nor pauses: once the body buffer is
 * full the connection waits on the client again, so the body timeout runs (it used to sit there
 * with no timer at all).
 */
static void test_body_not_taken(void)
{
    tsrv t;
    cli c;
    resp r;
    net_config cfg;
    char head[128];
    tsrv_cfg(&cfg);
    cfg.io_timeout_ms = 300;
    tsrv_start(&t, &cfg);
    size_t len = cfg.read_high_water * 3;
    char *body = calloc(1, len);
    cli_open(&c, t.port);
    snprintf(head, sizeof(head), "PUT /hoard HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", len);
    CU_ASSERT_EQUAL(cli_sends(&c, head), 0);
    cli_send(&c, body, len); /* may fail part way: the server stops reading */
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 408);
    resp_free(&r);
    free(body);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.aborted, 1);
}

/* Descriptors of /file's file open in this process now. */
static int file_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        char link[600], to[600];
        snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(link, to, sizeof(to) - 1);
        if (k > 0) {
            to[k] = '\0';
            n += strstr(to, "/th-file") != NULL;
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* Until this process has want of them open (bounded): 1 when it does. */
static int fds_settle(int want, int ms)
{
    for (int waited = 0; file_fds() != want && waited < ms; waited += 10)
        usleep(10000);
    return file_fds() == want;
}

/* The body /file answers (nt_serve.h). */
static int file_body_ok(const resp *r)
{
    size_t n = TH_FILE_LEN - TH_FILE_AT;
    if (r->blen != n + 11 || r->body[n] != '|')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)r->body[i] != th_file_byte(TH_FILE_AT + i))
            return 0;
    for (size_t i = 0; i < 10; i++)
        if ((uint8_t)r->body[n + 1 + i] != th_file_byte(i))
            return 0;
    return 1;
}

/*
 * net_resp_write_file (a storage node's cell reads): a body of two file ranges with a buffer
 * between them arrives byte-exact, with a Content-Length and chunked; a HEAD writes nothing and
 * closes the descriptors at once. A reader that stops reading holds the response's descriptors
 * only until the io timeout closes its connection (the request ends aborted): afterwards none
 * of the file's descriptors is open.
 */
static void test_file_body(void)
{
    tsrv t;
    cli c;
    resp r;
    net_config cfg;
    char v[32], want[32];
    struct timespec t0;
    tsrv_cfg(&cfg);
    cfg.io_timeout_ms = 1000;
    tsrv_start(&t, &cfg);
    cli_open(&c, t.port);
    snprintf(want, sizeof(want), "%u", TH_FILE_LEN - TH_FILE_AT + 11);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /file HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Length", v, sizeof(v)), want);
    CU_ASSERT(file_body_ok(&r));
    resp_free(&r);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /file-chunked HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Transfer-Encoding", v, sizeof(v)), "chunked");
    CU_ASSERT(file_body_ok(&r));
    resp_free(&r);
    CU_ASSERT_EQUAL(cli_sends(&c, "HEAD /file HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 1), 0);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Content-Length", v, sizeof(v)), want);
    CU_ASSERT_EQUAL(r.blen, 0);
    resp_free(&r);
    CU_ASSERT(fds_settle(0, 1000));
    cli_close(&c);
    /* a reader that stalls: both ranges' descriptors held, then given back at the io timeout. A
     * connection of its own with a small fixed receive buffer (the first one's grew as it read
     * 32 MiB, and could take the whole body unread) */
    int small = 64 * 1024;
    cli_socket(&c);
    CU_ASSERT_EQUAL(setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    cli_connect(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /file HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    CU_ASSERT_EQUAL(wait_requests(&t, 4), 0);
    CU_ASSERT(fds_settle(2, 900)); /* the handler opens them right after it counted the request */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT(fds_settle(0, 5000));
    CU_ASSERT(elapsed_ms(&t0) >= 500);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.aborted, 1);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"simple_get", test_simple_get},
        {"response_wire", test_response_wire},
        {"keepalive_pipelined", test_keepalive_pipelined},
        {"http10", test_http10},
        {"small_put_one_read", test_small_put_one_read},
        {"large_body", test_large_body},
        {"backpressure", test_backpressure},
        {"chunked_body", test_chunked_body},
        {"expect_continue", test_expect_continue},
        {"unread_body", test_unread_body},
        {"chunked_response_and_head", test_chunked_response_and_head},
        {"drain_response", test_drain_response},
        {"limits", test_limits},
        {"timeouts", test_timeouts},
        {"abort_and_trickle", test_abort_and_trickle},
        {"async_responses", test_async_responses},
        {"half_close", test_half_close},
        {"pipeline_flood", test_pipeline_flood},
        {"head_deadline", test_head_deadline},
        {"body_not_taken", test_body_not_taken},
        {"file_body", test_file_body},
        {NULL, NULL},
    };
    const char *env = getenv("CAIRN_TEST_SEED");
    if (env)
        seed = strtoull(env, NULL, 0);
    printf("test_net: seed 0x%llx (set CAIRN_TEST_SEED to repeat)\n", (unsigned long long)seed);
    cu_add_suite("net", tests);
}
