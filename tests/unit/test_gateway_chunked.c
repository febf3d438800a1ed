/*
 * test_gateway_chunked.c - the aws-chunked decoder: AWS's signed streaming example (whole, byte by
 * byte, in seeded random pieces), AWS's signed-trailer example, unsigned trailers with a CRC32,
 * corrupted signatures, malformed framing and truncated bodies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "cm_util.h"
#include "cu_main.h"
#include "gw_auth.h"

#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define SEED "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define SIG1 "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
#define SIG2 "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
#define SIG3 "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
#define TSEED "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
#define TSIG1 "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2"
#define TSIG2 "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7"
#define TSIG3 "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"
#define TTRSIG "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"

static void example_auth(gw_auth_result *a, gw_payload_mode mode, const char *seed)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->access_key, sizeof(a->access_key), "AKIAIOSFODNN7EXAMPLE");
    snprintf(a->region, sizeof(a->region), "us-east-1");
    snprintf(a->service, sizeof(a->service), "s3");
    snprintf(a->date, sizeof(a->date), "20130524");
    snprintf(a->amz_date, sizeof(a->amz_date), "20130524T000000Z");
    snprintf(a->seed_signature, sizeof(a->seed_signature), "%s", seed);
    gw_sigv4_signing_key(SK, "20130524", "us-east-1", "s3", a->signing_key);
    a->mode = mode;
}

/* body = chunks of 'a' (65536, 1024, 0) with the given signatures, then tail. */
static char *example_body(const char *s1, const char *s2, const char *s3, const char *tail,
                          size_t *len)
{
    size_t cap = 70000 + strlen(tail);
    char *b = malloc(cap), *p = b;
    p += snprintf(p, 200, "10000;chunk-signature=%s\r\n", s1);
    memset(p, 'a', 65536), p += 65536;
    p += snprintf(p, 200, "\r\n400;chunk-signature=%s\r\n", s2);
    memset(p, 'a', 1024), p += 1024;
    p += snprintf(p, 200, "\r\n0;chunk-signature=%s\r\n", s3);
    memcpy(p, tail, strlen(tail)), p += strlen(tail);
    *len = (size_t)(p - b);
    return b;
}

/* Feed body in pieces of `step` bytes (0 = random pieces from seed); returns the last status. */
static gw_s3err feed_all(gw_chunked *d, const char *body, size_t len, size_t step,
                         struct evbuffer *out)
{
    struct evbuffer *in = evbuffer_new();
    gw_s3err e = GW_OK;
    for (size_t off = 0; off < len && e == GW_OK;) {
        size_t n = step ? step : 1 + (size_t)rand() % 9000;
        n = CM_MIN(n, len - off);
        evbuffer_add(in, body + off, n);
        off += n;
        e = gw_chunked_feed(d, in, out);
    }
    evbuffer_free(in);
    return e;
}

static int all_a(struct evbuffer *out, size_t want)
{
    size_t n = evbuffer_get_length(out);
    if (n != want)
        return 0;
    const unsigned char *p = evbuffer_pullup(out, -1);
    for (size_t i = 0; i < n; i++)
        if (p[i] != 'a')
            return 0;
    return 1;
}

static void run_signed_example(size_t step)
{
    gw_auth_result a;
    gw_chunked *d = NULL;
    size_t len;
    char *body = example_body(SIG1, SIG2, SIG3, "\r\n", &len);
    CU_ASSERT_EQUAL(len, 66824); /* the Content-Length of AWS's example */
    example_auth(&a, GW_PAYLOAD_STREAMING_SIGNED, SEED);
    CU_ASSERT_EQUAL_FATAL(gw_chunked_new(&a, NULL, &d), CM_OK);
    struct evbuffer *out = evbuffer_new();
    CU_ASSERT_EQUAL(feed_all(d, body, len, step, out), GW_OK);
    CU_ASSERT_TRUE(gw_chunked_done(d));
    CU_ASSERT_TRUE(all_a(out, 66560));
    evbuffer_free(out);
    gw_chunked_free(d);
    free(body);
}

static void test_signed_example(void)
{
    unsigned seed = (unsigned)time(NULL);
    printf("\n  chunked split seed %u\n", seed);
    srand(seed);
    run_signed_example(1 << 20); /* one piece */
    run_signed_example(1);       /* byte by byte */
    run_signed_example(0);       /* random pieces */
    run_signed_example(0);
}

static gw_s3err decode(gw_payload_mode mode, const char *seed, const char *trailer,
                       const char *body, size_t len, struct evbuffer *out, gw_chunked **dp)
{
    gw_auth_result a;
    example_auth(&a, mode, seed);
    CU_ASSERT_EQUAL_FATAL(gw_chunked_new(&a, trailer, dp), CM_OK);
    return feed_all(*dp, body, len, 1 << 20, out);
}

static void test_signed_corrupt(void)
{
    size_t len;
    gw_chunked *d;
    struct evbuffer *out = evbuffer_new();
    /* a wrong signature on the second chunk */
    char *body = example_body(SIG1, SIG1, SIG3, "\r\n", &len);
    CU_ASSERT_EQUAL(decode(GW_PAYLOAD_STREAMING_SIGNED, SEED, NULL, body, len, out, &d),
                    GW_SIGNATURE_MISMATCH);
    CU_ASSERT_FALSE(gw_chunked_done(d));
    /* the error sticks */
    struct evbuffer *in = evbuffer_new();
    evbuffer_add(in, "\r\n", 2);
    CU_ASSERT_EQUAL(gw_chunked_feed(d, in, out), GW_SIGNATURE_MISMATCH);
    evbuffer_free(in);
    gw_chunked_free(d);
    free(body);
    /* one flipped data byte */
    body = example_body(SIG1, SIG2, SIG3, "\r\n", &len);
    body[1000] = 'b';
    CU_ASSERT_EQUAL(decode(GW_PAYLOAD_STREAMING_SIGNED, SEED, NULL, body, len, out, &d),
                    GW_SIGNATURE_MISMATCH);
    gw_chunked_free(d);
    /* the right body under another seed (a replay against a different request) */
    body[1000] = 'a';
    CU_ASSERT_EQUAL(decode(GW_PAYLOAD_STREAMING_SIGNED, TSEED, NULL, body, len, out, &d),
                    GW_SIGNATURE_MISMATCH);
    gw_chunked_free(d);
    /* a last chunk whose signature is wrong */
    free(body);
    body = example_body(SIG1, SIG2, SIG2, "\r\n", &len);
    CU_ASSERT_EQUAL(decode(GW_PAYLOAD_STREAMING_SIGNED, SEED, NULL, body, len, out, &d),
                    GW_SIGNATURE_MISMATCH);
    gw_chunked_free(d);
    free(body);
    /* a chunk without any signature in a signed mode */
    const char *nosig = "3\r\nabc\r\n";
    CU_ASSERT_EQUAL(decode(GW_PAYLOAD_STREAMING_SIGNED, SEED, NULL, nosig, strlen(nosig), out, &d),
                    GW_SIGNATURE_MISMATCH);
    gw_chunked_free(d);
    evbuffer_free(out);
}

/* AWS's signed-trailer example, with and without the CRLF right after the last chunk. */
static void test_signed_trailer_example(void)
{
    const char *tails[] = {
        "x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:" TTRSIG "\r\n\r\n",
        "\r\nx-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:" TTRSIG "\r\n\r\n",
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(tails); i++) {
        size_t len;
        gw_chunked *d;
        struct evbuffer *out = evbuffer_new();
        char *body = example_body(TSIG1, TSIG2, TSIG3, tails[i], &len);
        CU_ASSERT_EQUAL(decode(GW_PAYLOAD_STREAMING_SIGNED_TRAILER, TSEED, "x-amz-checksum-crc32c",
                               body, len, out, &d),
                        GW_OK);
        CU_ASSERT_TRUE(gw_chunked_done(d));
        CU_ASSERT_TRUE(all_a(out, 66560));
        const char *v = gw_chunked_trailer(d, "X-Amz-Checksum-CRC32C");
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        CU_ASSERT_STRING_EQUAL(v, "sOO8/Q==");
        /* and the checksum really is the CRC32C of the payload */
        uint8_t crc[4];
        char b64[9];
        cm_ck_digest(CM_CK_CRC32C, evbuffer_pullup(out, -1), 66560, crc);
        cm_base64_encode(crc, 4, b64);
        CU_ASSERT_STRING_EQUAL(b64, v);
        gw_chunked_free(d);
        free(body);
        evbuffer_free(out);
    }
}

static void test_signed_trailer_bad(void)
{
    const char *tails[] = {
        /* the trailer value changed after signing */
        "x-amz-checksum-crc32c:sOO8/Q=A\r\nx-amz-trailer-signature:" TTRSIG "\r\n\r\n",
        /* the trailer signature missing */
        "x-amz-checksum-crc32c:sOO8/Q==\r\n\r\n",
        /* a malformed trailer signature */
        "x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:abc\r\n\r\n",
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(tails); i++) {
        size_t len;
        gw_chunked *d;
        struct evbuffer *out = evbuffer_new();
        char *body = example_body(TSIG1, TSIG2, TSIG3, tails[i], &len);
        CU_ASSERT_EQUAL(decode(GW_PAYLOAD_STREAMING_SIGNED_TRAILER, TSEED, "x-amz-checksum-crc32c",
                               body, len, out, &d),
                        GW_SIGNATURE_MISMATCH);
        CU_ASSERT_FALSE(gw_chunked_done(d));
        gw_chunked_free(d);
        free(body);
        evbuffer_free(out);
    }
}

#define UNSIGNED_BODY "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"

static void test_unsigned_trailer(void)
{
    gw_chunked *d;
    struct evbuffer *out = evbuffer_new();
    const char *b = UNSIGNED_BODY;
    CU_ASSERT_EQUAL(decode(GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER, "", "x-amz-checksum-crc32", b,
                           strlen(b), out, &d),
                    GW_OK);
    CU_ASSERT_TRUE(gw_chunked_done(d));
    CU_ASSERT_EQUAL(evbuffer_get_length(out), 11);
    CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(out, -1), "hello world", 11), 0);
    const char *v = gw_chunked_trailer(d, "x-amz-checksum-crc32");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    uint8_t crc[4];
    char b64[9];
    cm_ck_digest(CM_CK_CRC32, "hello world", 11, crc);
    cm_base64_encode(crc, 4, b64);
    CU_ASSERT_STRING_EQUAL(v, b64);
    CU_ASSERT_PTR_NULL(gw_chunked_trailer(d, "x-amz-checksum-crc32c"));
    gw_chunked_free(d);

    /* byte by byte, bare LF line ends, blanks around the value, extensions ignored */
    const char *lf = "5;ext=1\nhello\n0\nX-Amz-Checksum-CRC32 :  NhCmhg== \n\n";
    gw_auth_result a;
    example_auth(&a, GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER, "");
    CU_ASSERT_EQUAL_FATAL(gw_chunked_new(&a, "X-Amz-Checksum-Crc32", &d), CM_OK);
    evbuffer_drain(out, evbuffer_get_length(out));
    CU_ASSERT_EQUAL(feed_all(d, lf, strlen(lf), 1, out), GW_OK);
    CU_ASSERT_TRUE(gw_chunked_done(d));
    CU_ASSERT_STRING_EQUAL(gw_chunked_trailer(d, "x-amz-checksum-crc32"), "NhCmhg==");
    gw_chunked_free(d);

    /* the announced trailer never came */
    const char *none = "5\r\nhello\r\n0\r\n\r\n";
    CU_ASSERT_EQUAL(decode(GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER, "", "x-amz-checksum-crc32", none,
                           strlen(none), out, &d),
                    GW_INVALID_REQUEST);
    gw_chunked_free(d);
    /* ...which is fine when none was announced */
    CU_ASSERT_EQUAL(
        decode(GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER, "", NULL, none, strlen(none), out, &d),
        GW_OK);
    CU_ASSERT_TRUE(gw_chunked_done(d));
    gw_chunked_free(d);
    evbuffer_free(out);
}

static void test_malformed(void)
{
    static const struct {
        const char *body;
        gw_s3err want;
    } cases[] = {
        {"zz\r\nhello\r\n0\r\n\r\n", GW_INVALID_REQUEST},
        {";\r\n", GW_INVALID_REQUEST},
        {"5 x\r\nhello\r\n", GW_INVALID_REQUEST},
        {"5\r\nhelloX\r\n0\r\n\r\n", GW_INCOMPLETE_BODY},
        {"5\r\nhello\rX0\r\n\r\n", GW_INCOMPLETE_BODY},
        {"1000000000000000\r\n", GW_INVALID_REQUEST},
        {"0\r\nno-colon-here\r\n\r\n", GW_INVALID_REQUEST},
        {"0\r\n:value\r\n\r\n", GW_INVALID_REQUEST},
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(cases); i++) {
        gw_chunked *d;
        struct evbuffer *out = evbuffer_new();
        gw_s3err e = decode(GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER, "", NULL, cases[i].body,
                            strlen(cases[i].body), out, &d);
        CU_ASSERT_EQUAL(e, cases[i].want);
        if (e != cases[i].want)
            fprintf(stderr, "case %zu: got %d want %d\n", i, e, cases[i].want);
        gw_chunked_free(d);
        evbuffer_free(out);
    }
    /* a header line longer than 4 KiB, never terminated */
    char *big = malloc(5000);
    memset(big, 'f', 5000);
    gw_chunked *d;
    struct evbuffer *out = evbuffer_new();
    CU_ASSERT_EQUAL(decode(GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER, "", NULL, big, 5000, out, &d),
                    GW_INVALID_ARGUMENT);
    gw_chunked_free(d);
    /* trailer lines where the signed, trailer-less mode allows none */
    size_t len;
    char *body = example_body(SIG1, SIG2, SIG3, "x-amz-meta-a:b\r\n\r\n", &len);
    CU_ASSERT_EQUAL(decode(GW_PAYLOAD_STREAMING_SIGNED, SEED, NULL, body, len, out, &d),
                    GW_INVALID_REQUEST);
    gw_chunked_free(d);
    free(body);
    /* trailers beyond 16 KiB */
    size_t cap = 40 * 1100 + 16;
    char *many = malloc(cap), *p = many;
    p += snprintf(p, cap, "0\r\n");
    for (int i = 0; i < 20; i++) {
        p += snprintf(p, 20, "x-amz-meta-%02d:", i);
        memset(p, 'v', 1000), p += 1000;
        *p++ = '\r', *p++ = '\n';
    }
    CU_ASSERT_EQUAL(
        decode(GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER, "", NULL, many, (size_t)(p - many), out, &d),
        GW_INVALID_ARGUMENT);
    gw_chunked_free(d);
    free(many);
    free(big);
    evbuffer_free(out);
}

/* Header lines up to 4096 bytes (without CRLF) pass, also when fed byte by byte. */
static void test_line_limit(void)
{
    for (size_t len = 4095; len <= 4097; len++) {
        char *b = malloc(len + 8);
        memcpy(b, "0;", 2);
        memset(b + 2, 'x', len - 2);
        memcpy(b + len, "\r\n\r\n", 4);
        gw_auth_result a;
        gw_chunked *d;
        example_auth(&a, GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER, "");
        CU_ASSERT_EQUAL_FATAL(gw_chunked_new(&a, NULL, &d), CM_OK);
        struct evbuffer *out = evbuffer_new();
        gw_s3err e = feed_all(d, b, len + 4, 1, out);
        CU_ASSERT_EQUAL(e, len <= 4096 ? GW_OK : GW_INVALID_ARGUMENT);
        CU_ASSERT_EQUAL(gw_chunked_done(d), len <= 4096);
        gw_chunked_free(d);
        evbuffer_free(out);
        free(b);
    }
}

/* Every proper prefix of a valid body leaves the decoder waiting, never done, never failed. */
static void test_truncated(void)
{
    const char *b = UNSIGNED_BODY;
    size_t n = strlen(b);
    for (size_t k = 0; k < n; k++) {
        gw_chunked *d;
        struct evbuffer *out = evbuffer_new();
        CU_ASSERT_EQUAL(decode(GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER, "", "x-amz-checksum-crc32", b,
                               k, out, &d),
                        GW_OK);
        CU_ASSERT_FALSE(gw_chunked_done(d));
        gw_chunked_free(d);
        evbuffer_free(out);
    }
    size_t len;
    char *body = example_body(SIG1, SIG2, SIG3, "\r\n", &len);
    size_t cuts[] = {0, 10, 90, 91, 92, 65627, 65628, 65629, 66700, len - 2, len - 1};
    for (size_t i = 0; i < CM_ARRAY_LEN(cuts); i++) {
        gw_chunked *d;
        struct evbuffer *out = evbuffer_new();
        CU_ASSERT_EQUAL(decode(GW_PAYLOAD_STREAMING_SIGNED, SEED, NULL, body, cuts[i], out, &d),
                        GW_OK);
        CU_ASSERT_FALSE(gw_chunked_done(d));
        gw_chunked_free(d);
        evbuffer_free(out);
    }
    free(body);
}

/*
 * The decoder gets the whole HTTP body: a byte after the final chunk and trailer, whether it
 * arrives with the end or later, is an error (sticky), never left for someone else to read.
 */
static void test_leftover(void)
{
    gw_chunked *d;
    gw_auth_result a;
    example_auth(&a, GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER, "");
    CU_ASSERT_EQUAL_FATAL(gw_chunked_new(&a, NULL, &d), CM_OK);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    evbuffer_add_printf(in, "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n");
    CU_ASSERT_EQUAL(gw_chunked_feed(d, in, out), GW_INCOMPLETE_BODY);
    CU_ASSERT_FALSE(gw_chunked_done(d));
    CU_ASSERT_EQUAL(evbuffer_get_length(out), 3);
    gw_chunked_free(d);

    CU_ASSERT_EQUAL_FATAL(gw_chunked_new(&a, NULL, &d), CM_OK);
    evbuffer_drain(in, evbuffer_get_length(in));
    evbuffer_drain(out, evbuffer_get_length(out));
    evbuffer_add_printf(in, "3\r\nabc\r\n0\r\n\r\n");
    CU_ASSERT_EQUAL(gw_chunked_feed(d, in, out), GW_OK);
    CU_ASSERT_TRUE(gw_chunked_done(d));
    CU_ASSERT_EQUAL(gw_chunked_feed(d, in, out), GW_OK); /* nothing more: still fine */
    evbuffer_add(in, "x", 1);
    CU_ASSERT_EQUAL(gw_chunked_feed(d, in, out), GW_INCOMPLETE_BODY);
    CU_ASSERT_EQUAL(gw_chunked_feed(d, in, out), GW_INCOMPLETE_BODY);
    gw_chunked_free(d);
    gw_chunked_free(NULL);
    evbuffer_free(in);
    evbuffer_free(out);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"signed_example", test_signed_example},
        {"signed_corrupt", test_signed_corrupt},
        {"signed_trailer_example", test_signed_trailer_example},
        {"signed_trailer_bad", test_signed_trailer_bad},
        {"unsigned_trailer", test_unsigned_trailer},
        {"malformed", test_malformed},
        {"line_limit", test_line_limit},
        {"truncated", test_truncated},
        {"leftover", test_leftover},
        {NULL, NULL},
    };
    cu_add_suite("chunked", tests);
}
