/*
 * test_net_parse.c - unit tests for the request-head parser, the chunk-size parser and the
 * status table: valid heads, every rejection rule, limits, and incremental feeding (byte by
 * byte must give the same result as all at once).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cu_main.h"
#include "net.h"
#include "net_int.h"

static net_config cfg;

static cm_err parse(const char *s, net_head *h, size_t *used, int *status)
{
    return net_head_parse(s, strlen(s), &cfg, h, used, status);
}

/* Expect an error with the given HTTP status; nothing allocated. */
static void expect_status(const char *s, int want)
{
    net_head h;
    size_t used;
    int status;
    cm_err e = parse(s, &h, &used, &status);
    CU_ASSERT_NOT_EQUAL(e, CM_OK);
    CU_ASSERT_NOT_EQUAL(e, CM_AGAIN);
    CU_ASSERT_EQUAL(status, want);
    CU_ASSERT_PTR_NULL(h.target);
    if (status != want)
        fprintf(stderr, "\n  for %.60s: got %d want %d\n", s, status, want);
}

static void test_simple(void)
{
    const char *s = "GET /b/k?x=y HTTP/1.1\r\nHost: localhost \r\nX-A:\t v a l \t\r\n"
                    "Empty:\r\n\r\nNEXT";
    net_head h;
    size_t used;
    int status;
    CU_ASSERT_EQUAL_FATAL(parse(s, &h, &used, &status), CM_OK);
    CU_ASSERT_EQUAL(used, strlen(s) - 4);
    CU_ASSERT_STRING_EQUAL(h.method, "GET");
    CU_ASSERT_STRING_EQUAL(h.target, "/b/k?x=y");
    CU_ASSERT_EQUAL(h.http_minor, 1);
    CU_ASSERT_EQUAL_FATAL(h.nheaders, 3);
    CU_ASSERT_STRING_EQUAL(h.names[0], "Host");
    CU_ASSERT_STRING_EQUAL(h.values[0], "localhost");
    CU_ASSERT_STRING_EQUAL(h.values[1], "v a l");
    CU_ASSERT_STRING_EQUAL(h.names[2], "Empty");
    CU_ASSERT_STRING_EQUAL(h.values[2], "");
    CU_ASSERT_EQUAL(h.content_length, -1);
    CU_ASSERT_EQUAL(h.chunked, 0);
    CU_ASSERT_EQUAL(h.keep_alive, 1);
    CU_ASSERT_EQUAL(h.expect_continue, 0);
    net_head_release(&h);
    CU_ASSERT_PTR_NULL(h.target);
}

static void test_framing(void)
{
    net_head h;
    size_t used;
    int status;
    CU_ASSERT_EQUAL_FATAL(parse("PUT /x HTTP/1.1\r\nContent-Length: 42\r\ncontent-length: 42\r\n"
                                "Expect: 100-Continue\r\nConnection: Close\r\n\r\n",
                                &h, &used, &status),
                          CM_OK);
    CU_ASSERT_EQUAL(h.content_length, 42);
    CU_ASSERT_EQUAL(h.expect_continue, 1);
    CU_ASSERT_EQUAL(h.keep_alive, 0);
    net_head_release(&h);
    CU_ASSERT_EQUAL_FATAL(
        parse("PUT /x HTTP/1.1\nTransfer-Encoding: Chunked\n\n", &h, &used, &status), CM_OK);
    CU_ASSERT_EQUAL(h.chunked, 1);
    CU_ASSERT_EQUAL(h.content_length, -1);
    net_head_release(&h);
    /* HTTP/1.0 closes unless it asks for keep-alive */
    CU_ASSERT_EQUAL_FATAL(parse("GET / HTTP/1.0\r\n\r\n", &h, &used, &status), CM_OK);
    CU_ASSERT_EQUAL(h.http_minor, 0);
    CU_ASSERT_EQUAL(h.keep_alive, 0);
    net_head_release(&h);
    CU_ASSERT_EQUAL_FATAL(
        parse("GET / HTTP/1.0\r\nConnection: foo, Keep-Alive\r\n\r\n", &h, &used, &status), CM_OK);
    CU_ASSERT_EQUAL(h.keep_alive, 1);
    net_head_release(&h);
    /* leading empty lines are skipped; methods are any token */
    CU_ASSERT_EQUAL_FATAL(parse("\r\n\r\nM-SEARCH * HTTP/1.1\r\n\r\n", &h, &used, &status), CM_OK);
    CU_ASSERT_STRING_EQUAL(h.method, "M-SEARCH");
    CU_ASSERT_STRING_EQUAL(h.target, "*");
    CU_ASSERT_EQUAL(h.nheaders, 0);
    net_head_release(&h);
}

static void test_rejects(void)
{
    expect_status("GET /x HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n", 400);
    expect_status("GET /x HTTP/1.1\r\nA : 1\r\n\r\n", 400);
    expect_status("GET /x HTTP/1.1\r\n: 1\r\n\r\n", 400);
    expect_status("GET /x HTTP/1.1\r\nNoColon\r\n\r\n", 400);
    expect_status("GET /x HTTP/1.1\r\nA: 1\r2\r\n\r\n", 400);
    expect_status("GET /x HTTP/1.1\r\nA: 1\r\r\n\r\n", 400);
    expect_status("GET /x HTTP/1.1\r\nA: \x01\r\n\r\n", 400);
    expect_status("GET /x HTTP/1.1\r\r\n\r\n", 400);
    expect_status("GET /x HTTP/2.0\r\n\r\n", 400);
    expect_status("GET /x\r\n\r\n", 400);
    expect_status("GET  /x HTTP/1.1\r\n\r\n", 400);
    expect_status("G(T /x HTTP/1.1\r\n\r\n", 400);
    expect_status("ABCDEFGHIJKLMNOPQ /x HTTP/1.1\r\n\r\n", 400);
    expect_status("PUT /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400);
    expect_status("PUT /x HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n", 400);
    expect_status("PUT /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400);
    expect_status("PUT /x HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400);
    expect_status("PUT /x HTTP/1.1\r\nContent-Length:\r\n\r\n", 400);
    expect_status("PUT /x HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400);
    expect_status("PUT /x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                  400);
    expect_status("PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400);
    expect_status("PUT /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    expect_status("PUT /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    expect_status("PUT /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
    expect_status("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n", 400);
    /* NUL inside a value or the request line */
    net_head h;
    size_t used;
    int status;
    const char nul[] = "GET /x HTTP/1.1\r\nA: a\0b\r\n\r\n";
    CU_ASSERT_EQUAL(net_head_parse(nul, sizeof(nul) - 1, &cfg, &h, &used, &status), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(status, 400);
    const char nul2[] = "GET /x\0y HTTP/1.1\r\n\r\n";
    CU_ASSERT_EQUAL(net_head_parse(nul2, sizeof(nul2) - 1, &cfg, &h, &used, &status), CM_ERR_INVAL);
}

static void test_limits(void)
{
    net_config small = cfg;
    small.max_request_line = 32;
    small.max_header_bytes = 64;
    small.max_headers = 3;
    net_head h;
    size_t used;
    int status;
    const char *longline = "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n";
    CU_ASSERT_EQUAL(net_head_parse(longline, strlen(longline), &small, &h, &used, &status),
                    CM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(status, 414);
    /* detected before the line ends */
    CU_ASSERT_EQUAL(net_head_parse(longline, 40, &small, &h, &used, &status), CM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(status, 414);
    CU_ASSERT_EQUAL(net_head_parse(longline, 30, &small, &h, &used, &status), CM_AGAIN);
    const char *many = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    CU_ASSERT_EQUAL(net_head_parse(many, strlen(many), &small, &h, &used, &status), CM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(status, 431);
    const char *big = "GET / HTTP/1.1\r\nA: 0123456789012345678901234567890123456789"
                      "0123456789012345678901234567890123456789\r\n\r\n";
    CU_ASSERT_EQUAL(net_head_parse(big, strlen(big), &small, &h, &used, &status), CM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(status, 431);
    CU_ASSERT_EQUAL(net_head_parse(big, 70, &small, &h, &used, &status), CM_AGAIN);
    CU_ASSERT_EQUAL(net_head_parse(big, 90, &small, &h, &used, &status), CM_ERR_TOOBIG);
    const char *ok = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    CU_ASSERT_EQUAL(net_head_parse(ok, strlen(ok), &small, &h, &used, &status), CM_OK);
    net_head_release(&h);
}

/* Every prefix is CM_AGAIN; the full head gives the same result as parsing it at once. */
static void test_incremental(void)
{
    const char *s = "\r\nPUT /bucket/key%20x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  chunked "
                    "\r\nX-Amz-Meta-A: one two\nExpect: 100-continue\r\n\r\nBODY";
    size_t full = strlen(s) - 4;
    net_head h, whole;
    size_t used;
    int status;
    CU_ASSERT_EQUAL_FATAL(parse(s, &whole, &used, &status), CM_OK);
    CU_ASSERT_EQUAL(used, full);
    for (size_t n = 0; n < full; n++)
        CU_ASSERT_EQUAL(net_head_parse(s, n, &cfg, &h, &used, &status), CM_AGAIN);
    CU_ASSERT_EQUAL_FATAL(net_head_parse(s, full, &cfg, &h, &used, &status), CM_OK);
    CU_ASSERT_EQUAL(used, full);
    CU_ASSERT_STRING_EQUAL(h.method, whole.method);
    CU_ASSERT_STRING_EQUAL(h.target, whole.target);
    CU_ASSERT_EQUAL(h.nheaders, whole.nheaders);
    for (size_t i = 0; i < h.nheaders && i < whole.nheaders; i++) {
        CU_ASSERT_STRING_EQUAL(h.names[i], whole.names[i]);
        CU_ASSERT_STRING_EQUAL(h.values[i], whole.values[i]);
    }
    CU_ASSERT_EQUAL(h.chunked, 1);
    CU_ASSERT_EQUAL(h.expect_continue, 1);
    CU_ASSERT_STRING_EQUAL(h.values[1], "chunked");
    CU_ASSERT_STRING_EQUAL(h.values[2], "one two");
    net_head_release(&h);
    net_head_release(&whole);
}

/* Every byte in a header name: accepted exactly when RFC 9110 calls it a tchar. */
static void test_name_chars(void)
{
    for (int c = 1; c < 256; c++) {
        char s[64];
        net_head h;
        size_t used;
        int status;
        /* "X:Y: v" is the field X with the value "Y: v" */
        int ok = (c < 128 && isalnum(c)) || strchr("!#$%&'*+-.^_`|~:", c) != NULL;
        int n = snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nX%cY: v\r\n\r\n", c);
        cm_err e = net_head_parse(s, (size_t)n, &cfg, &h, &used, &status);
        CU_ASSERT_EQUAL(e, ok ? CM_OK : CM_ERR_INVAL);
        if (e != (ok ? CM_OK : CM_ERR_INVAL))
            fprintf(stderr, "\n  name byte 0x%02x: got %s\n", c, cm_err_str(e));
        if (e == CM_OK)
            net_head_release(&h);
    }
}

/* The first header with a name, by a linear scan: what net_head_find must agree with. */
static const char *find_by_scan(const net_head *h, const char *name)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (strcasecmp(h->names[i], name) == 0)
            return h->values[i];
    return NULL;
}

/* net_head_find: any case, the first of duplicates, near-miss names, no headers. */
static void test_header_index(void)
{
    const char *s = "GET / HTTP/1.1\r\nX-Amz-Date: d\r\nX-Dup: one\r\nHost: h\r\nx-DUP: two\r\n"
                    "a^b: caret\r\na~b: tilde\r\na_b: under\r\nX-A: short\r\nX-AB: long\r\n"
                    "Empty:\r\n\r\n";
    net_head h;
    size_t used;
    int status;
    CU_ASSERT_PTR_NULL(net_head_find(&(net_head){0}, "Host"));
    CU_ASSERT_EQUAL_FATAL(parse(s, &h, &used, &status), CM_OK);
    CU_ASSERT_STRING_EQUAL(net_head_find(&h, "x-amz-date"), "d");
    CU_ASSERT_STRING_EQUAL(net_head_find(&h, "X-AMZ-DATE"), "d");
    CU_ASSERT_STRING_EQUAL(net_head_find(&h, "X-Dup"), "one");
    CU_ASSERT_STRING_EQUAL(net_head_find(&h, "X-DUP"), "one");
    CU_ASSERT_STRING_EQUAL(net_head_find(&h, "A^B"), "caret"); /* '^' | 0x20 == '~' */
    CU_ASSERT_STRING_EQUAL(net_head_find(&h, "a~b"), "tilde");
    CU_ASSERT_STRING_EQUAL(net_head_find(&h, "a_b"), "under");
    CU_ASSERT_STRING_EQUAL(net_head_find(&h, "x-a"), "short");
    CU_ASSERT_STRING_EQUAL(net_head_find(&h, "x-ab"), "long");
    CU_ASSERT_STRING_EQUAL(net_head_find(&h, "empty"), "");
    CU_ASSERT_PTR_NULL(net_head_find(&h, "X-Amz-Dat"));
    CU_ASSERT_PTR_NULL(net_head_find(&h, "X-Amz-Datee"));
    CU_ASSERT_PTR_NULL(net_head_find(&h, "X-Amz-Date "));
    CU_ASSERT_PTR_NULL(net_head_find(&h, "a\x7f"
                                         "b")); /* '_' | 0x20 == DEL: same hash, other name */
    CU_ASSERT_PTR_NULL(net_head_find(&h, ""));
    CU_ASSERT_PTR_NULL(net_head_find(&h, "Content-Length"));
    net_head_release(&h);
    CU_ASSERT_PTR_NULL(h.slots);
    CU_ASSERT_EQUAL(h.nslots, 0);
}

/* The most headers the limit allows (default 200) and the longest name the section allows: every
 * one found, agreeing with a scan; one header more is 431. */
static void test_header_index_limits(void)
{
    static char buf[96 * 1024];
    static char longname[64 * 1024];
    size_t len = 0, used;
    int status;
    net_head h;
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "GET / HTTP/1.1\r\n");
    for (size_t i = 0; i < cfg.max_headers; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s-%zu: v%zu\r\n",
                                i % 2 ? "x-amz-meta" : "X-Amz-Meta", i % 150, i);
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "\r\n");
    CU_ASSERT_EQUAL_FATAL(net_head_parse(buf, len, &cfg, &h, &used, &status), CM_OK);
    CU_ASSERT_EQUAL(h.nheaders, cfg.max_headers);
    CU_ASSERT(h.nslots >= 2 * h.nheaders);
    for (size_t i = 0; i < 160; i++) {
        char name[32], want[16];
        snprintf(name, sizeof(name), "X-AMZ-META-%zu", i);
        snprintf(want, sizeof(want), "v%zu", i);
        const char *got = net_head_find(&h, name);
        CU_ASSERT_PTR_EQUAL(got, find_by_scan(&h, name));
        if (i < 150) {
            CU_ASSERT(got != NULL && strcmp(got, want) == 0); /* the first of each pair */
        } else {
            CU_ASSERT_PTR_NULL(got);
        }
    }
    net_head_release(&h);
    len -= 2; /* the blank line: one header more, then the blank line again */
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "One-More: x\r\n\r\n");
    CU_ASSERT_EQUAL(net_head_parse(buf, len, &cfg, &h, &used, &status), CM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(status, 431);

    /* a name filling the section but for ": v\r\n\r\n", and one byte longer */
    size_t nlen = cfg.max_header_bytes - 7;
    memset(longname, 'N', nlen);
    longname[nlen] = '\0';
    len = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n%s: v\r\n\r\n", longname);
    CU_ASSERT_EQUAL_FATAL(net_head_parse(buf, len, &cfg, &h, &used, &status), CM_OK);
    longname[0] = 'n';
    CU_ASSERT_STRING_EQUAL(net_head_find(&h, longname), "v");
    longname[nlen - 1] = 'M';
    CU_ASSERT_PTR_NULL(net_head_find(&h, longname));
    net_head_release(&h);
    longname[nlen] = 'N';
    longname[nlen + 1] = '\0';
    len = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n%s: v\r\n\r\n", longname);
    CU_ASSERT_EQUAL(net_head_parse(buf, len, &cfg, &h, &used, &status), CM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(status, 431);
}

static void test_chunk_size(void)
{
    int64_t v;
    CU_ASSERT_EQUAL(net_chunk_size_parse("1a", 2, &v), 0);
    CU_ASSERT_EQUAL(v, 26);
    CU_ASSERT_EQUAL(net_chunk_size_parse("FF;name=val;x", 13, &v), 0);
    CU_ASSERT_EQUAL(v, 255);
    CU_ASSERT_EQUAL(net_chunk_size_parse("0 ; ext", 7, &v), 0);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(net_chunk_size_parse("", 0, &v), -1);
    CU_ASSERT_EQUAL(net_chunk_size_parse("x", 1, &v), -1);
    CU_ASSERT_EQUAL(net_chunk_size_parse("1 2", 3, &v), -1);
    CU_ASSERT_EQUAL(net_chunk_size_parse("1;\r", 3, &v), -1);
    CU_ASSERT_EQUAL(net_chunk_size_parse("1000000000000000", 16, &v), -1);
}

static void test_reasons(void)
{
    static const int codes[] = {100, 200, 204, 206, 301, 302, 304, 307, 400, 403, 404, 405,
                                408, 409, 411, 412, 413, 414, 416, 431, 500, 501, 503, 507};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        CU_ASSERT_STRING_NOT_EQUAL(net_status_reason(codes[i]), "Unknown");
    CU_ASSERT_STRING_EQUAL(net_status_reason(404), "Not Found");
    CU_ASSERT_STRING_EQUAL(net_status_reason(299), "Unknown");
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"simple", test_simple},
        {"framing", test_framing},
        {"rejects", test_rejects},
        {"limits", test_limits},
        {"incremental", test_incremental},
        {"chunk_size", test_chunk_size},
        {"reasons", test_reasons},
        {"header_index", test_header_index},
        {"header_index_limits", test_header_index_limits},
        {"name_chars", test_name_chars},
        {NULL, NULL},
    };
    net_config_defaults(&cfg);
    cu_add_suite("net_parse", tests);
}
