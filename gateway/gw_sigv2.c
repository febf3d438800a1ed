/*
 * gw_sigv2.c - AWS Signature Version 2, header ("Authorization: AWS AK:sig") and presigned query
 * (?AWSAccessKeyId=..&Expires=..&Signature=..).
 *
 * Why still V2: `aws s3 presign` and boto3's generate_presigned_url produce V2 query URLs by
 * default for S3, and older tools sign headers with V2. The signature is
 * base64(HMAC-SHA1(secret, StringToSign)) with
 *   StringToSign = METHOD \n Content-MD5 \n Content-Type \n Date-or-Expires \n
 *                  CanonicalizedAmzHeaders CanonicalizedResource
 * CanonicalizedAmzHeaders: every x-amz-* header lowercased, sorted, "name:value\n", repeated
 * headers joined with ','. CanonicalizedResource: "/bucket" for virtual-hosted requests, then the
 * path as sent, then the subresources S3 signs, sorted, with their decoded values.
 * The payload is never signed in V2 (Content-MD5 still protects it when given).
 */
#include "gw_auth.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_util.h"

#define V2_MAX_SKEW 900
#define V2_MAX_PARAMS 64
#define V2_STS_MAX 16384

/* Subresources that are part of the V2 canonical resource (S3's list, sorted). */
static const char *const signed_subresources[] = {
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
    char buf[V2_STS_MAX];
    size_t n;
    int overflow;
} sts_buf;

static void put(sts_buf *b, const char *s, size_t n)
{
    if (b->n + n >= sizeof(b->buf)) {
        b->overflow = 1;
        return;
    }
    memcpy(b->buf + b->n, s, n);
    b->n += n;
}

static void puts_(sts_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static const char *header(const gw_auth_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->names[i], name) == 0)
            return req->values[i];
    return NULL;
}

/* Orders header names as their lowercased forms sort (AWS sorts the lowercased names). */
static int cmp_str(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

/* x-amz-* headers, lowercased and sorted, "name:value\n" (repeated names joined with ','). */
static void amz_headers(sts_buf *b, const gw_auth_request *req)
{
    const char *names[V2_MAX_PARAMS];
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders && n < V2_MAX_PARAMS; i++)
        if (strncasecmp(req->names[i], "x-amz-", 6) == 0)
            names[n++] = req->names[i];
    qsort(names, n, sizeof(names[0]), cmp_str); /* equal names (any case) end up adjacent */
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcasecmp(names[i], names[i - 1]) == 0)
            continue;
        for (const char *p = names[i]; *p; p++) {
            char c = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            put(b, &c, 1);
        }
        put(b, ":", 1);
        int first = 1;
        for (size_t j = 0; j < req->nheaders; j++)
            if (strcasecmp(req->names[j], names[i]) == 0) {
                if (!first)
                    put(b, ",", 1);
                puts_(b, req->values[j]);
                first = 0;
            }
        put(b, "\n", 1);
    }
}

/* Value of query parameter name (decoded into out), 1 when present. */
static int query_param(const char *query, const char *name, char *out, size_t cap, int *has_value)
{
    size_t nlen = strlen(name);
    const char *s = query;
    while (s && *s) {
        const char *amp = strchr(s, '&');
        size_t len = amp ? (size_t)(amp - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        size_t klen = eq ? (size_t)(eq - s) : len;
        if (klen == nlen && memcmp(s, name, nlen) == 0) {
            size_t vn = 0;
            *has_value = eq != NULL;
            out[0] = '\0';
            if (eq && cm_url_decode(eq + 1, len - klen - 1, out, cap, &vn) != CM_OK)
                return -1;
            return 1;
        }
        s = amp ? amp + 1 : NULL;
    }
    return 0;
}

/* "/bucket" (virtual-hosted) + raw path + signed subresources. */
static int canonical_resource(sts_buf *b, const gw_auth_request *req, const char *vhost_bucket)
{
    const char *t = req->target;
    const char *q = strchr(t, '?');
    size_t plen = q ? (size_t)(q - t) : strlen(t);
    char val[2048];
    char sep = '?';

    if (vhost_bucket && *vhost_bucket) {
        put(b, "/", 1);
        puts_(b, vhost_bucket);
    }
    put(b, t, plen);
    for (size_t i = 0; q && i < CM_ARRAY_LEN(signed_subresources); i++) {
        int has_value = 0;
        int found = query_param(q + 1, signed_subresources[i], val, sizeof(val), &has_value);
        if (found < 0)
            return -1;
        if (!found)
            continue;
        put(b, &sep, 1);
        sep = '&';
        puts_(b, signed_subresources[i]);
        if (has_value) {
            put(b, "=", 1);
            puts_(b, val);
        }
    }
    return 0;
}

static gw_s3err verify_v2(const gw_auth_request *req, const char *access_key, const char *sig_b64,
                          const char *date_line, const char *vhost_bucket, gw_secret_fn secret_fn,
                          void *secret_arg, gw_auth_result *out)
{
    sts_buf *b = calloc(1, sizeof(*b));
    char secret[256];
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    char want[64];
    const char *md5 = header(req, "content-md5"), *ctype = header(req, "content-type");
    gw_s3err e = GW_OK;

    if (!b)
        return GW_INTERNAL;
    cm_err err = secret_fn(secret_arg, access_key, secret, sizeof(secret));
    if (err != CM_OK) {
        free(b);
        return err == CM_ERR_NOTFOUND ? GW_INVALID_ACCESS_KEY : GW_INTERNAL;
    }
    puts_(b, req->method);
    put(b, "\n", 1);
    puts_(b, md5 ? md5 : "");
    put(b, "\n", 1);
    puts_(b, ctype ? ctype : "");
    put(b, "\n", 1);
    puts_(b, date_line);
    put(b, "\n", 1);
    amz_headers(b, req);
    if (canonical_resource(b, req, vhost_bucket) != 0 || b->overflow) {
        free(b);
        return GW_ACCESS_DENIED;
    }
    HMAC(EVP_sha1(), secret, (int)strlen(secret), (const uint8_t *)b->buf, b->n, mac, &maclen);
    cm_base64_encode(mac, maclen, want);
    if (strlen(sig_b64) != strlen(want) || !cm_ct_equal(sig_b64, want, strlen(want)))
        e = GW_SIGNATURE_MISMATCH;
    free(b);
    memset(secret, 0, sizeof(secret));
    if (e == GW_OK) {
        snprintf(out->access_key, sizeof(out->access_key), "%s", access_key);
        out->mode = GW_PAYLOAD_UNSIGNED;
    }
    return e;
}

gw_s3err gw_sigv2_check(const gw_auth_request *req, const char *vhost_bucket,
                        gw_secret_fn secret_fn, void *secret_arg, gw_auth_result *out)
{
    const char *authz = header(req, "authorization");
    const char *q = strchr(req->target, '?');

    if (authz) { /* "AWS AKID:signature" */
        const char *cred = authz + 4;
        const char *colon = strrchr(cred, ':');
        char ak[128];
        if (strncmp(authz, "AWS ", 4) != 0 || !colon || colon == cred ||
            (size_t)(colon - cred) >= sizeof(ak))
            return GW_AUTH_HEADER_MALFORMED;
        memcpy(ak, cred, (size_t)(colon - cred));
        ak[colon - cred] = '\0';
        const char *amzdate = header(req, "x-amz-date"), *date = header(req, "date");
        time_t t;
        const char *when = amzdate ? amzdate : date;
        if (!when || cm_time_parse_http(when, &t) != CM_OK)
            return GW_ACCESS_DENIED;
        if (t > req->now + V2_MAX_SKEW || t < req->now - V2_MAX_SKEW)
            return GW_REQUEST_TIME_TOO_SKEWED;
        return verify_v2(req, ak, colon + 1, amzdate ? "" : date, vhost_bucket, secret_fn,
                         secret_arg, out);
    }
    char ak[128], sig[128], expires[32];
    int hv;
    if (!q || query_param(q + 1, "AWSAccessKeyId", ak, sizeof(ak), &hv) != 1 ||
        query_param(q + 1, "Signature", sig, sizeof(sig), &hv) != 1 ||
        query_param(q + 1, "Expires", expires, sizeof(expires), &hv) != 1)
        return GW_ACCESS_DENIED;
    char *end;
    long long exp = strtoll(expires, &end, 10);
    if (end == expires || *end)
        return GW_ACCESS_DENIED;
    if ((long long)req->now > exp)
        return GW_ACCESS_DENIED; /* expired */
    out->presigned = 1;
    return verify_v2(req, ak, sig, expires, vhost_bucket, secret_fn, secret_arg, out);
}
