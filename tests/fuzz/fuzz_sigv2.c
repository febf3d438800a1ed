/*
 * fuzz_sigv2.c - libFuzzer target for the SigV2 canonicaliser (gateway/gw_sigv2.c): the
 * StringToSign built from the method, Content-MD5, Content-Type, the date, the x-amz-* headers and
 * the canonical resource, for header and presigned-query authentication.
 *
 * fuzz_sigv4 reaches V2 too, but with signatures that never verify, so the canonicaliser's output
 * is never checked. Here the target signs every request itself with an independent, plain
 * implementation of the StringToSign AWS documents (RESTAuthentication: lowercased x-amz-* names
 * sorted, repeated names joined with ',', subresources sorted with their values), then asks
 * gw_sigv2_check:
 *  - the request so signed must verify (header auth and presigned query), and
 *  - once it verifies, changing what the signature covers must not: an extra x-amz-* header, a
 *    different method, a different Content-Type.
 * Requests where the two implementations may differ for documented reasons are not compared:
 * percent escapes or '+' in the query (decoding rules), more than 64 x-amz-* headers (the
 * server's cap, item 1 of issue 8), a StringToSign over 16000 bytes, subresource values over
 * 2000 bytes.
 *
 * Input: line 0 is the virtual-hosted bucket ("" for path style), line 1 the method, line 2 the
 * request-target, then "name:value" header lines. Authorization headers in the input are dropped
 * and every Date / x-amz-date value is replaced by the target's clock, so only the canonical form
 * decides the outcome.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_util.h"
#include "fuzz_util.h"
#include "gw_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 100
#define AMZ_CAP 64
#define STS_MAX 16000
#define NOW 1369353600 /* 2013-05-24T00:00:00Z */
#define HTTP_DATE "Fri, 24 May 2013 00:00:00 GMT"
#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

/* AWS's list, written out here again on purpose: the oracle must not share the code's data. */
static const char *const subresources[] = {
    "acl",
    "cors",
    "delete",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
};

typedef struct {
    const char *vhost, *method, *target;
    const char *names[MAX_HEADERS + 3], *values[MAX_HEADERS + 3];
    char lower[MAX_HEADERS + 3][256]; /* lowercased x-amz-* names */
    size_t n;
} request;

typedef struct {
    char s[STS_MAX + 1];
    size_t n;
    int over;
} sts;

static void add(sts *b, const char *s, size_t n)
{
    if (b->n + n > STS_MAX) {
        b->over = 1;
        return;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
}

static void adds(sts *b, const char *s)
{
    add(b, s, strlen(s));
}

static cm_err secret(void *arg, const char *access_key, char *out, size_t cap)
{
    (void)arg;
    if (strcmp(access_key, AK) != 0)
        return CM_ERR_NOTFOUND;
    snprintf(out, cap, "%s", SK);
    return CM_OK;
}

static const char *first(const request *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcasecmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

static int is_amz(const char *name)
{
    return strncasecmp(name, "x-amz-", 6) == 0;
}

/* The x-amz-* part: distinct lowercased names in byte order, each with all its values. */
static void ref_amz(sts *b, request *r)
{
    const char *done = NULL; /* the last name written */
    for (;;) {
        const char *next = NULL;
        for (size_t i = 0; i < r->n; i++)
            if (is_amz(r->names[i]) && (!done || strcmp(r->lower[i], done) > 0) &&
                (!next || strcmp(r->lower[i], next) < 0))
                next = r->lower[i];
        if (!next)
            return;
        adds(b, next);
        add(b, ":", 1);
        const char *sep = "";
        for (size_t i = 0; i < r->n; i++)
            if (is_amz(r->names[i]) && strcmp(r->lower[i], next) == 0) {
                adds(b, sep);
                adds(b, r->values[i]);
                sep = ",";
            }
        add(b, "\n", 1);
        done = next;
    }
}

/* Canonical resource; -1 when the query is outside what the reference models. */
static int ref_resource(sts *b, const request *r)
{
    const char *q = strchr(r->target, '?');
    char sep = '?';
    if (r->vhost[0]) {
        add(b, "/", 1);
        adds(b, r->vhost);
    }
    add(b, r->target, q ? (size_t)(q - r->target) : strlen(r->target));
    if (!q)
        return 0;
    if (strpbrk(q, "%+"))
        return -1;
    for (size_t i = 0; i < CM_ARRAY_LEN(subresources); i++) {
        size_t nl = strlen(subresources[i]);
        for (const char *p = q + 1; p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
            size_t len = strcspn(p, "&");
            if (len < nl || strncmp(p, subresources[i], nl) != 0 || (len > nl && p[nl] != '='))
                continue;
            if (len - nl > 2000)
                return -1;
            add(b, &sep, 1);
            sep = '&';
            add(b, p, len); /* name or name=value: no escapes, so decoded = as sent */
            break;
        }
    }
    return 0;
}

/* Base64 HMAC-SHA1 of the reference StringToSign; -1 when not modelled. */
static int ref_sign(request *r, const char *date_line, char out[64])
{
    static sts b;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    const char *md5 = first(r, "content-md5"), *ctype = first(r, "content-type");
    b.n = 0, b.over = 0;
    adds(&b, r->method);
    add(&b, "\n", 1);
    adds(&b, md5 ? md5 : "");
    add(&b, "\n", 1);
    adds(&b, ctype ? ctype : "");
    add(&b, "\n", 1);
    adds(&b, date_line);
    add(&b, "\n", 1);
    ref_amz(&b, r);
    if (ref_resource(&b, r) != 0 || b.over)
        return -1;
    HMAC(EVP_sha1(), SK, (int)strlen(SK), (const uint8_t *)b.s, b.n, mac, &maclen);
    cm_base64_encode(mac, maclen, out);
    return 0;
}

static gw_s3err check(const request *r, const char *target)
{
    gw_auth_request req = {.method = r->method,
                           .target = target,
                           .nheaders = r->n,
                           .names = r->names,
                           .values = r->values,
                           .now = NOW,
                           .vhost_bucket = r->vhost[0] ? r->vhost : NULL};
    gw_auth_result res;
    memset(&res, 0, sizeof(res));
    gw_s3err e = gw_sigv2_check(&req, req.vhost_bucket, secret, NULL, &res);
    if ((unsigned)e >= GW_S3ERR__COUNT || (e == GW_OK && strcmp(res.access_key, AK) != 0))
        abort();
    return e;
}

/* Sign r with an Authorization header; it must verify, and tampering must not. */
static void header_auth(request *r)
{
    char sig[64], authz[128];
    const char *date_line = first(r, "x-amz-date") ? "" : first(r, "date");
    if (ref_sign(r, date_line, sig) != 0)
        return;
    snprintf(authz, sizeof(authz), "AWS " AK ":%s", sig);
    r->names[r->n] = "Authorization", r->values[r->n] = authz;
    r->n++;
    if (check(r, r->target) != GW_OK)
        abort(); /* the canonicaliser disagrees with the documented StringToSign */
    r->names[r->n] = "x-amz-fuzz-unsigned", r->values[r->n] = "1";
    r->n++;
    if (check(r, r->target) == GW_OK)
        abort(); /* a header the signature does not cover was accepted */
    r->n--;
    const char *method = r->method;
    r->method = strcmp(method, "DELETE") == 0 ? "GET" : "DELETE";
    if (check(r, r->target) == GW_OK)
        abort();
    r->method = method;
    r->n--;
}

static void presigned(request *r)
{
    char sig[64], esc[200], expires[24];
    if (strstr(r->target, "AWSAccessKeyId") || strstr(r->target, "Signature") ||
        strstr(r->target, "Expires") || strchr(r->target, '#'))
        return;
    snprintf(expires, sizeof(expires), "%d", NOW + 600);
    if (ref_sign(r, expires, sig) != 0)
        return;
    cm_url_encode(sig, strlen(sig), 0, esc, sizeof(esc));
    size_t cap = strlen(r->target) + 300;
    char *t = malloc(cap);
    if (!t)
        return;
    snprintf(t, cap, "%s%cAWSAccessKeyId=" AK "&Expires=%s&Signature=%s", r->target,
             strchr(r->target, '?') ? '&' : '?', expires, esc);
    if (check(r, t) != GW_OK)
        abort();
    /* A Content-Type added where the request had none is signed over and must be refused; with
     * one there already, the earlier one wins and the added one changes nothing (even when both
     * say the same, as a fuzzed input may). */
    int had_type = first(r, "content-type") != NULL;
    r->names[r->n] = "Content-Type", r->values[r->n] = "application/x-fuzz-changed";
    r->n++;
    if (!had_type && check(r, t) == GW_OK)
        abort();
    r->n--;
    free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static request r;
    char *text = fuzz_text(data, size);
    char *lines[MAX_HEADERS + 3];
    size_t namz = 0;
    int dated = 0;

    if (!text)
        return 0;
    size_t nlines = fuzz_lines(text, lines, CM_ARRAY_LEN(lines));
    if (nlines < 3 || strlen(lines[0]) > 63) {
        free(text);
        return 0;
    }
    r.vhost = lines[0], r.method = lines[1], r.target = lines[2], r.n = 0;
    for (size_t i = 3; i < nlines; i++) {
        char *colon = strchr(lines[i], ':');
        if (!colon || colon - lines[i] >= 256)
            continue;
        *colon = '\0';
        if (strcasecmp(lines[i], "authorization") == 0)
            continue;
        const char *value = colon + 1;
        if (strcasecmp(lines[i], "date") == 0 || strcasecmp(lines[i], "x-amz-date") == 0)
            value = HTTP_DATE, dated = 1;
        for (size_t k = 0; k <= strlen(lines[i]); k++) {
            char c = lines[i][k];
            r.lower[r.n][k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        namz += (size_t)is_amz(lines[i]);
        r.names[r.n] = lines[i], r.values[r.n] = value;
        r.n++;
    }
    if (!dated) {
        r.names[r.n] = "Date", r.values[r.n] = HTTP_DATE, r.lower[r.n][0] = '\0';
        r.n++;
    }
    if (namz < AMZ_CAP) { /* room for the tampering header too */
        header_auth(&r);
        presigned(&r);
    } else {
        (void)check(&r, r.target); /* beyond the cap: only "no crash" */
    }
    free(text);
    return 0;
}
