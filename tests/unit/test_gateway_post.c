/*
 * test_gateway_post.c - POST Object's pure parts (gw_post.h): the streaming multipart/form-data
 * parser, fed a form split at every byte boundary and one byte at a time (the same fields and
 * the same file bytes each time, also when the file holds partial delimiters), its bounds against
 * hostile forms (too many fields, huge fields and headers, endless preambles and padding, a file
 * without its closing boundary, endless file data: the buffer it keeps stays bounded), seeded
 * random mutations of a form fed in random pieces; and the policy check with a signature computed
 * independently (Python's hmac) plus every refusal: expiry, conditions, extra fields, signature,
 * credential scope, unknown key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "cu_main.h"
#include "gw_post.h"

#define CT "multipart/form-data; boundary=XyZ"

/* A form: fields k1=v1 ..., then a file holding body[0..blen), then a trailing field. */
static size_t make_form(char *out, size_t cap, const char *body, size_t blen)
{
    size_t n = (size_t)snprintf(out, cap,
                                "--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n"
                                "up/${filename}\r\n"
                                "--XyZ\r\nContent-Disposition: form-data; name=\"empty\"\r\n\r\n"
                                "\r\n"
                                "--XyZ  \r\ncontent-disposition: form-data; name=x-amz-meta-a\r\n"
                                "Content-Type: text/plain\r\n\r\nline1\r\nline2\r\n"
                                "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
                                "filename=\"a b.txt\"\r\nContent-Type: image/png\r\n\r\n");
    memcpy(out + n, body, blen);
    n += blen;
    n += (size_t)snprintf(out + n, cap - n,
                          "\r\n--XyZ\r\nContent-Disposition: form-data; name=\"after\"\r\n\r\n"
                          "ignored\r\n--XyZ--\r\n");
    return n;
}

typedef struct {
    gw_s3err err;
    int in_file, done;
    struct evbuffer *file;
    size_t max_kept; /* the most bytes the parser left in its input buffer */
} feed_result;

/* Feed form[0..len) in pieces cut at cuts[0..ncuts) (ascending), as the policy check would. */
static gw_form *feed_pieces(const char *form, size_t len, const size_t *cuts, size_t ncuts,
                            feed_result *res)
{
    gw_form *f;
    struct evbuffer *in = evbuffer_new();
    memset(res, 0, sizeof(*res));
    res->file = evbuffer_new();
    CU_ASSERT_EQUAL_FATAL(gw_form_new(CT, &f), GW_OK);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts && res->err == GW_OK; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        evbuffer_add(in, form + at, end - at);
        at = end;
        res->err = gw_form_feed(f, in, res->file);
        if (res->err == GW_OK && gw_form_in_file(f)) /* the caller checks, then feeds again */
            res->err = gw_form_feed(f, in, res->file);
        if (evbuffer_get_length(in) > res->max_kept)
            res->max_kept = evbuffer_get_length(in);
    }
    res->in_file = gw_form_in_file(f);
    res->done = gw_form_done(f);
    evbuffer_free(in);
    return f;
}

static void check_parsed(gw_form *f, const feed_result *res, const char *body, size_t blen)
{
    size_t n;
    const gw_form_field *fs = gw_form_fields(f, &n);
    CU_ASSERT_EQUAL(res->err, GW_OK);
    CU_ASSERT_TRUE(res->in_file);
    CU_ASSERT_TRUE(res->done);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(fs[0].name, "key");
    CU_ASSERT_STRING_EQUAL(fs[0].value, "up/${filename}");
    CU_ASSERT_EQUAL(fs[1].len, 0);
    CU_ASSERT_STRING_EQUAL(gw_form_get(fs, n, "X-AMZ-META-A")->value, "line1\r\nline2");
    CU_ASSERT_PTR_NULL(gw_form_get(fs, n, "after"));
    CU_ASSERT_STRING_EQUAL(gw_form_filename(f), "a b.txt");
    CU_ASSERT_STRING_EQUAL(gw_form_file_type(f), "image/png");
    CU_ASSERT_EQUAL_FATAL(evbuffer_get_length(res->file), blen);
    CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(res->file, -1), body, blen), 0);
}

static void test_form_splits(void)
{
    /* the file holds what looks like the start of delimiters, and a CR LF at its end */
    static const char body[] = "data\r\n--XyX\r\n--Xy\r\r\n-\r\n";
    size_t blen = sizeof(body) - 1;
    char form[2048];
    size_t len = make_form(form, sizeof(form), body, blen);
    feed_result res;

    gw_form *f = feed_pieces(form, len, NULL, 0, &res);
    check_parsed(f, &res, body, blen);
    evbuffer_free(res.file);
    gw_form_free(f);
    for (size_t cut = 1; cut < len; cut++) { /* two pieces, cut at every byte */
        f = feed_pieces(form, len, &cut, 1, &res);
        check_parsed(f, &res, body, blen);
        evbuffer_free(res.file);
        gw_form_free(f);
    }
    size_t *cuts = malloc(len * sizeof(size_t)); /* one byte at a time */
    for (size_t i = 0; i < len - 1; i++)
        cuts[i] = i + 1;
    f = feed_pieces(form, len, cuts, len - 1, &res);
    check_parsed(f, &res, body, blen);
    evbuffer_free(res.file);
    gw_form_free(f);
    free(cuts);
}

/* Feed the whole text at once: the error, and whether the file began / ended. */
static gw_s3err feed_all(const char *ct, const char *text, size_t len, int *in_file, int *done)
{
    gw_form *f;
    gw_s3err e = gw_form_new(ct, &f);
    if (e != GW_OK)
        return e;
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    evbuffer_add(in, text, len);
    e = gw_form_feed(f, in, out);
    if (e == GW_OK && gw_form_in_file(f))
        e = gw_form_feed(f, in, out);
    *in_file = gw_form_in_file(f);
    *done = gw_form_done(f);
    evbuffer_free(in);
    evbuffer_free(out);
    gw_form_free(f);
    return e;
}

static void test_form_hostile(void)
{
    int in_file, done;
    gw_form *f;
    char *big = malloc(1 << 20);
    size_t n;
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);

    /* Content-Types that are not a form with a usable boundary */
    CU_ASSERT_EQUAL(gw_form_new(NULL, &f), GW_MALFORMED_POST);
    CU_ASSERT_EQUAL(gw_form_new("multipart/form-data", &f), GW_MALFORMED_POST);
    CU_ASSERT_EQUAL(gw_form_new("multipart/form-data; boundary=", &f), GW_MALFORMED_POST);
    CU_ASSERT_EQUAL(gw_form_new("multipart/mixed; boundary=a", &f), GW_MALFORMED_POST);
    CU_ASSERT_EQUAL(gw_form_new("multipart/form-datax; boundary=a", &f), GW_MALFORMED_POST);
    memset(big, 'b', 71);
    n = (size_t)snprintf(big + 100, 200, "multipart/form-data; boundary=%.71s", big);
    CU_ASSERT_EQUAL(gw_form_new(big + 100, &f), GW_MALFORMED_POST);
    CU_ASSERT_PTR_NULL(f);
    CU_ASSERT_EQUAL(gw_form_new("Multipart/Form-Data; charset=x; BOUNDARY=\"q; r\"", &f), GW_OK);
    gw_form_free(f);

    /* a close before any file: no file, nothing wrong with the framing */
    static const char nofile[] = "--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n"
                                 "k\r\n--XyZ--\r\n";
    CU_ASSERT_EQUAL(feed_all(CT, nofile, sizeof(nofile) - 1, &in_file, &done), GW_OK);
    CU_ASSERT_FALSE(in_file);
    CU_ASSERT_FALSE(done);
    /* a file part with no end */
    static const char noend[] = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
                                "abc\r\n--XyZ";
    CU_ASSERT_EQUAL(feed_all(CT, noend, sizeof(noend) - 4, &in_file, &done), GW_OK);
    CU_ASSERT_TRUE(in_file);
    CU_ASSERT_FALSE(done);
    /* its delimiter, but the body ends there: not done either; garbage after it: malformed */
    CU_ASSERT_EQUAL(feed_all(CT, noend, sizeof(noend) - 1, &in_file, &done), GW_OK);
    CU_ASSERT_FALSE(done);
    static const char after[] = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
                                "abc\r\n--XyZ \t\r\n";
    CU_ASSERT_EQUAL(feed_all(CT, after, sizeof(after) - 1, &in_file, &done), GW_OK);
    CU_ASSERT_TRUE(done); /* padding, then CRLF */
    static const char garbage[] = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
                                  "abc\r\n--XyZzz";
    CU_ASSERT_EQUAL(feed_all(CT, garbage, sizeof(garbage) - 1, &in_file, &done), GW_MALFORMED_POST);
    CU_ASSERT_FALSE(done);
    /* a part without a name, without headers, with garbage after its boundary, repeated */
    static const char *const bad[] = {
        "--XyZ\r\nContent-Disposition: form-data\r\n\r\nv\r\n--XyZ--",
        "--XyZ\r\n\r\nv\r\n--XyZ--",
        "--XyZgarbage\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n"
        "--XyZ\r\nContent-Disposition: form-data; name=A\r\n\r\nw\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--XyZ--",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(feed_all(CT, bad[i], strlen(bad[i]), &in_file, &done), GW_MALFORMED_POST);

    /* too many fields */
    n = 0;
    for (int i = 0; i <= GW_FORM_MAX_FIELDS; i++)
        n += (size_t)snprintf(big + n, (1 << 20) - n,
                              "--XyZ\r\nContent-Disposition: form-data; name=f%d\r\n\r\nv\r\n", i);
    CU_ASSERT_EQUAL(feed_all(CT, big, n, &in_file, &done), GW_MALFORMED_POST);
    /* a field too large, and one that never ends: refused once past the bound */
    n = (size_t)snprintf(big, 200, "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n");
    memset(big + n, 'v', GW_FORM_MAX_FIELD_BYTES + 100);
    CU_ASSERT_EQUAL(feed_all(CT, big, n + GW_FORM_MAX_FIELD_BYTES + 100, &in_file, &done),
                    GW_MAX_POST_PRE_DATA);
    memcpy(big + n + GW_FORM_MAX_FIELD_BYTES + 100, "\r\n--XyZ--", 9);
    CU_ASSERT_EQUAL(feed_all(CT, big, n + GW_FORM_MAX_FIELD_BYTES + 109, &in_file, &done),
                    GW_MAX_POST_PRE_DATA);
    /* endless headers, preamble, padding */
    n = (size_t)snprintf(big, 200, "--XyZ\r\nX: ");
    memset(big + n, 'h', GW_FORM_MAX_HEADER + 10);
    CU_ASSERT_EQUAL(feed_all(CT, big, n + GW_FORM_MAX_HEADER + 10, &in_file, &done),
                    GW_MALFORMED_POST);
    memset(big, 'p', GW_FORM_MAX_PREAMBLE + 100);
    CU_ASSERT_EQUAL(feed_all(CT, big, GW_FORM_MAX_PREAMBLE + 100, &in_file, &done),
                    GW_MALFORMED_POST);
    n = (size_t)snprintf(big, 200, "--XyZ");
    memset(big + n, ' ', 100);
    CU_ASSERT_EQUAL(feed_all(CT, big, n + 100, &in_file, &done), GW_MALFORMED_POST);
    /* boundaries without end: every one is a part without a name */
    n = 0;
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(big + n, (1 << 20) - n, "--XyZ\r\n\r\n\r\n");
    CU_ASSERT_EQUAL(feed_all(CT, big, n, &in_file, &done), GW_MALFORMED_POST);

    /* endless file data: the parser keeps less than a delimiter of it */
    static const char head[] = "--XyZ\r\nContent-Disposition: form-data; name=file\r\n\r\n";
    CU_ASSERT_EQUAL_FATAL(gw_form_new(CT, &f), GW_OK);
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    evbuffer_add(in, head, sizeof(head) - 1);
    CU_ASSERT_EQUAL(gw_form_feed(f, in, out), GW_OK);
    memset(big, '\r', 1 << 20);
    for (int i = 0; i < 64; i++) {
        evbuffer_add(in, big, 1 << 20);
        CU_ASSERT_EQUAL(gw_form_feed(f, in, out), GW_OK);
        CU_ASSERT(evbuffer_get_length(in) < 10);
        evbuffer_drain(out, evbuffer_get_length(out));
    }
    CU_ASSERT_FALSE(gw_form_done(f));
    evbuffer_free(in);
    evbuffer_free(out);
    gw_form_free(f);
    free(big);
}

/* A field trickled in one byte at a time: each byte is searched a bounded number of times, not
 * the whole field again per read (quadratic: minutes for a field of CRs; here well under 5 s). */
static void test_form_trickle(void)
{
    gw_form *f;
    struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
    static const char head[] = "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n";
    CU_ASSERT_EQUAL_FATAL(gw_form_new(CT, &f), GW_OK);
    evbuffer_add(in, head, sizeof(head) - 1);
    CU_ASSERT_EQUAL(gw_form_feed(f, in, out), GW_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < GW_FORM_MAX_FIELD_BYTES - 100; i++) {
        evbuffer_add(in, "\r", 1);
        CU_ASSERT_EQUAL_FATAL(gw_form_feed(f, in, out), GW_OK);
    }
    evbuffer_add(in, "\r\n--XyZ--", 9);
    CU_ASSERT_EQUAL(gw_form_feed(f, in, out), GW_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    size_t n;
    const gw_form_field *fs = gw_form_fields(f, &n);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(fs[0].len, GW_FORM_MAX_FIELD_BYTES - 100);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("\n  65,436 one-byte reads of a field: %.3f s\n", secs);
    CU_ASSERT(secs < 5.0);
    evbuffer_free(in);
    evbuffer_free(out);
    gw_form_free(f);
}

/* Seeded mutations of a valid form fed in random pieces: never a crash, always bounded. */
static void test_form_fuzz(void)
{
    char form[2048], m[2048];
    static const char body[] = "0123456789\r\n--XyZ-";
    size_t len = make_form(form, sizeof(form), body, sizeof(body) - 1);
    unsigned seed = (unsigned)time(NULL);
    printf("\n  form fuzz seed %u\n", seed);
    srand(seed);
    for (int round = 0; round < 3000; round++) {
        memcpy(m, form, len);
        size_t mlen = len;
        for (int k = rand() % 4; k >= 0; k--) {
            size_t at = (size_t)rand() % mlen;
            switch (rand() % 3) {
            case 0:
                m[at] = (char)(rand() & 0xff);
                break;
            case 1: /* cut */
                mlen = at;
                break;
            default: /* a delimiter-ish run */
                memcpy(m + at, "\r\n--XyZ", CM_MIN(7, sizeof(m) - at));
                mlen = CM_MAX(mlen, at + 7 < sizeof(m) ? at + 7 : mlen);
                break;
            }
            if (mlen == 0)
                mlen = 1;
        }
        size_t cuts[8], nc = 0;
        for (size_t c = 0; c < 8 && mlen > 1; c++) {
            size_t at = (nc ? cuts[nc - 1] : 0) + 1 + (size_t)rand() % 300;
            if (at >= mlen)
                break;
            cuts[nc++] = at;
        }
        feed_result res;
        gw_form *f = feed_pieces(m, mlen, cuts, nc, &res);
        CU_ASSERT(res.max_kept <= mlen);
        CU_ASSERT(evbuffer_get_length(res.file) <= mlen);
        evbuffer_free(res.file);
        gw_form_free(f);
    }
}

/* ---- the policy ---- */

/* Made with Python's hmac/hashlib (an implementation independent of cairn's): the policy
 * document's base64 and its SigV4 POST signature for secret "cairn-unit-secret", 20261205,
 * us-east-1. */
static const char policy_b64[] =
    "eyJleHBpcmF0aW9uIjogIjIwMjYtMTItMDVUMTI6MDA6MDAuMDAwWiIsICJjb25kaXRpb25zIjogW3siYnVja2V0Ij"
    "ogIndlYiJ9LCBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXAvIl0sIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQt"
    "SE1BQy1TSEEyNTYifSwgeyJ4LWFtei1jcmVkZW50aWFsIjogIkFLVU5JVC8yMDI2MTIwNS91cy1lYXN0LTEvczMvYX"
    "dzNF9yZXF1ZXN0In0sIHsieC1hbXotZGF0ZSI6ICIyMDI2MTIwNVQxMDAwMDBaIn0sIFsiY29udGVudC1sZW5ndGgt"
    "cmFuZ2UiLCAxMCwgMTAwMF0sIFsic3RhcnRzLXdpdGgiLCAiJENvbnRlbnQtVHlwZSIsICJpbWFnZS8iXSwgWyJlcS"
    "IsICIkc3VjY2Vzc19hY3Rpb25fc3RhdHVzIiwgIjIwMSJdXX0=";
static const char policy_sig[] = "475287b15e46b5eab9bdc661c1ebf1afd7e2706cfbb5b9bc6fbf1e80f7a92d70";
#define T_VALID 1796464800 /* 2026-12-05T10:00:00Z, before the expiration (12:00) */

static cm_err secret_of(void *arg, const char *ak, char *secret, size_t cap)
{
    (void)arg;
    if (strcmp(ak, "AKUNIT") != 0)
        return CM_ERR_NOTFOUND;
    snprintf(secret, cap, "cairn-unit-secret");
    return CM_OK;
}

typedef struct {
    gw_form_field f[16];
    size_t n;
} field_set;

static void set_field(field_set *s, const char *name, const char *value)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->f[i].name, name) == 0) {
            s->f[i].value = (char *)value;
            s->f[i].len = strlen(value);
            return;
        }
    s->f[s->n++] = (gw_form_field){(char *)name, (char *)value, strlen(value)};
}

static void drop_field(field_set *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->f[i].name, name) == 0) {
            s->f[i] = s->f[--s->n];
            return;
        }
}

static void base_fields(field_set *s)
{
    s->n = 0;
    set_field(s, "key", "up/${filename}");
    set_field(s, "X-Amz-Algorithm", "AWS4-HMAC-SHA256");
    set_field(s, "x-amz-credential", "AKUNIT/20261205/us-east-1/s3/aws4_request");
    set_field(s, "x-amz-date", "20261205T100000Z");
    set_field(s, "Content-Type", "image/png");
    set_field(s, "success_action_status", "201");
    set_field(s, "policy", policy_b64);
    set_field(s, "x-amz-signature", policy_sig);
    set_field(s, "x-ignore-me", "anything");
}

static gw_s3err check(const field_set *s, time_t now, const char *bucket, gw_post_policy *out)
{
    gw_post_request rq = {.bucket = bucket,
                          .fields = s->f,
                          .nfields = s->n,
                          .now = now,
                          .region = "us-east-1",
                          .secret = secret_of};
    return gw_post_policy_check(&rq, out);
}

/* A policy document of our own, signed with cairn's functions (the vector above checks them). */
static void sign_policy(field_set *s, const char *json, char *b64, char *sig)
{
    uint8_t key[32], mac[32];
    cm_base64_encode(json, strlen(json), b64);
    gw_sigv4_signing_key("cairn-unit-secret", "20261205", "us-east-1", "s3", key);
    cm_hmac_sha256(key, 32, b64, strlen(b64), mac);
    cm_hex_encode(mac, 32, sig);
    set_field(s, "policy", b64);
    set_field(s, "x-amz-signature", sig);
}

static void test_policy(void)
{
    field_set s;
    gw_post_policy out;

    base_fields(&s);
    CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_OK);
    CU_ASSERT_STRING_EQUAL(out.access_key, "AKUNIT");
    CU_ASSERT_EQUAL(out.min_len, 10);
    CU_ASSERT_EQUAL(out.max_len, 1000);
    /* upper-case signature hex is the same signature */
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] = (char)(policy_sig[i] >= 'a' ? policy_sig[i] - 32 : policy_sig[i]);
    set_field(&s, "x-amz-signature", upper);
    CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_OK);

    /* expiry */
    base_fields(&s);
    CU_ASSERT_EQUAL(check(&s, T_VALID + 7201, "web", &out), GW_ACCESS_DENIED);
    CU_ASSERT_STRING_EQUAL(out.message, "Invalid according to Policy: Policy expired.");
    /* conditions: bucket, key prefix, Content-Type prefix, success_action_status */
    CU_ASSERT_EQUAL(check(&s, T_VALID, "other", &out), GW_ACCESS_DENIED);
    CU_ASSERT_STRING_EQUAL(out.message, "Invalid according to Policy: Policy Condition failed: "
                                        "{\"bucket\":\"web\"}");
    set_field(&s, "key", "down/x");
    CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_ACCESS_DENIED);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.message, "[\"starts-with\",\"$key\",\"up/\"]"));
    base_fields(&s);
    set_field(&s, "Content-Type", "text/html");
    CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_ACCESS_DENIED);
    base_fields(&s);
    drop_field(&s, "success_action_status"); /* a missing field reads as "" */
    CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_ACCESS_DENIED);
    /* a field no condition names (field names compare case-insensitively, x-ignore- is free) */
    base_fields(&s);
    set_field(&s, "x-amz-meta-extra", "1");
    CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_ACCESS_DENIED);
    CU_ASSERT_STRING_EQUAL(out.message,
                           "Invalid according to Policy: Extra input fields: x-amz-meta-extra");
    /* the signature: another one, another key, a tampered policy, another scope */
    base_fields(&s);
    set_field(&s, "x-amz-signature",
              "0000000000000000000000000000000000000000000000000000000000000000");
    CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_SIGNATURE_MISMATCH);
    set_field(&s, "x-amz-signature", "not hex");
    CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_SIGNATURE_MISMATCH);
    base_fields(&s);
    set_field(&s, "policy", policy_b64 + 4);
    CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_SIGNATURE_MISMATCH);
    base_fields(&s);
    set_field(&s, "x-amz-credential", "AKOTHER/20261205/us-east-1/s3/aws4_request");
    CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_INVALID_ACCESS_KEY);
    static const char *const bad_scopes[] = {
        "AKUNIT/20261205/eu-west-1/s3/aws4_request",   "AKUNIT/20261206/us-east-1/s3/aws4_request",
        "AKUNIT/20261205/us-east-1/sqs/aws4_request",  "AKUNIT/20261205/us-east-1/s3",
        "AKUNIT/20261205/us-east-1/s3/aws4_request/x", "AKUNIT//us-east-1/s3/aws4_request"};
    for (size_t i = 0; i < sizeof(bad_scopes) / sizeof(bad_scopes[0]); i++) {
        set_field(&s, "x-amz-credential", bad_scopes[i]);
        CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_INVALID_ARGUMENT);
    }
    /* required fields */
    static const char *const required[] = {"x-amz-credential", "x-amz-date", "x-amz-signature"};
    for (size_t i = 0; i < 3; i++) {
        base_fields(&s);
        drop_field(&s, required[i]);
        CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_INVALID_ARGUMENT);
        CU_ASSERT_PTR_NOT_NULL(strstr(out.message, required[i]));
    }
    base_fields(&s);
    drop_field(&s, "policy");
    CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_ACCESS_DENIED);
    base_fields(&s);
    set_field(&s, "X-Amz-Algorithm", "AWS4-HMAC-SHA1");
    CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_INVALID_ARGUMENT);
}

static void test_policy_documents(void)
{
    field_set s;
    gw_post_policy out;
    char b64[2048], sig[65];
    static const char *const invalid[] = {
        "not json",
        "[]",
        "{\"conditions\": []}",
        "{\"expiration\": \"tomorrow\", \"conditions\": []}",
        "{\"expiration\": \"2026-12-05T-1:00:00Z\", \"conditions\": []}",
        "{\"expiration\": \"2026-12-05T12:00:00+01:00\", \"conditions\": []}",
        "{\"expiration\": \"2026-12-05T12:00:00Z\"}",
        "{\"expiration\": \"2026-12-05T12:00:00Z\", \"conditions\": [[\"gt\", \"$key\", \"a\"]]}",
        "{\"expiration\": \"2026-12-05T12:00:00Z\", \"conditions\": [{\"a\": \"1\", \"b\": "
        "\"2\"}]}",
        "{\"expiration\": \"2026-12-05T12:00:00Z\", \"conditions\": [[\"eq\", \"key\", \"a\"]]}",
        "{\"expiration\": \"2026-12-05T12:00:00Z\", \"conditions\": "
        "[[\"content-length-range\", \"x\", 5]]}",
        "{\"expiration\": \"2026-12-05T12:00:00Z\", \"conditions\": "
        "[[\"content-length-range\", 9, 5]]}",
        "{\"expiration\": \"2026-12-05T12:00:00Z\", \"expiration\": \"2027-01-01T00:00:00Z\", "
        "\"conditions\": []}",
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        s.n = 0;
        set_field(&s, "x-amz-algorithm", "AWS4-HMAC-SHA256");
        set_field(&s, "x-amz-credential", "AKUNIT/20261205/us-east-1/s3/aws4_request");
        set_field(&s, "x-amz-date", "20261205T100000Z");
        sign_policy(&s, invalid[i], b64, sig);
        gw_s3err e = check(&s, T_VALID, "web", &out);
        if (e != GW_INVALID_POLICY_DOCUMENT)
            printf("\n  policy %zu: %s %s\n", i, gw_s3err_code(e), out.message);
        CU_ASSERT_EQUAL(e, GW_INVALID_POLICY_DOCUMENT);
    }
    /* content-length-range bounds as strings; several ranges intersect; eq on a literal key */
    s.n = 0;
    set_field(&s, "x-amz-algorithm", "AWS4-HMAC-SHA256");
    set_field(&s, "x-amz-credential", "AKUNIT/20261205/us-east-1/s3/aws4_request");
    set_field(&s, "x-amz-date", "20261205T100000Z");
    set_field(&s, "key", "docs/${filename}");
    sign_policy(
        &s,
        "{\"expiration\": \"2026-12-05T12:00:00Z\", \"conditions\": ["
        "[\"content-length-range\", \"5\", \"100\"], [\"content-length-range\", 1, 50],"
        "[\"eq\", \"$key\", \"docs/${filename}\"], [\"starts-with\", \"$x-amz-date\", \"\"],"
        "{\"x-amz-algorithm\": \"AWS4-HMAC-SHA256\"}, [\"starts-with\", "
        "\"$X-Amz-Credential\", \"AKUNIT/\"]]}",
        b64, sig);
    CU_ASSERT_EQUAL(check(&s, T_VALID, "web", &out), GW_OK);
    CU_ASSERT_EQUAL(out.min_len, 5);
    CU_ASSERT_EQUAL(out.max_len, 50);
}

static void test_key(void)
{
    char *k = gw_post_key("up/${filename}", "a b.png");
    CU_ASSERT_STRING_EQUAL(k, "up/a b.png");
    free(k);
    k = gw_post_key("${filename}/${filename}.bak", "x");
    CU_ASSERT_STRING_EQUAL(k, "x/x.bak");
    free(k);
    k = gw_post_key("plain", "x");
    CU_ASSERT_STRING_EQUAL(k, "plain");
    free(k);
    k = gw_post_key("up/${filename}", "");
    CU_ASSERT_STRING_EQUAL(k, "up/");
    free(k);
    k = gw_post_key("${file", "x");
    CU_ASSERT_STRING_EQUAL(k, "${file");
    free(k);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"form split at every byte", test_form_splits},
                                    {"form hostile", test_form_hostile},
                                    {"form trickle", test_form_trickle},
                                    {"form fuzz", test_form_fuzz},
                                    {"policy", test_policy},
                                    {"policy documents", test_policy_documents},
                                    {"key", test_key},
                                    {NULL, NULL}};
    cu_add_suite("gateway post", tests);
}
