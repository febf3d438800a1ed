/*
 * gw_sigv2.c - AWS Signature Version 2, header ("Authorization: AWS AK:sig") and presigned query
 * (?AWSAccessKeyId=..&Expires=..&Signature=..).
 *
 * Why still V2: `aws s3 presign` and boto3's generate_presigned_url produce V2 query URLs by
 * default for S3, and older tools sign headers with V2. The signature is
 * base64(HMAC-SHA1(secret, StringToSign)) with
 *   StringToSign = METHOD \n Content-MD5 \n Content-Type \n Date-or-Expires \n
 *                  CanonicalizedAmzHeaders CanonicalizedResource
 * Date-or-Expires: the Expires parameter of a presigned URL; else empty when x-amz-date is
 * present (which then dates the request and is signed among the amz headers), else Date.
 * CanonicalizedAmzHeaders: every x-amz-* header lowercased, sorted, "name:value\n", repeated
 * headers joined with ','. No cap: a header left out would be a header nobody signed, so the list
 * is as long as the request's (the net layer bounds the header count; the string to sign is
 * bounded and a request that overflows it is refused). CanonicalizedResource: "/bucket" for
 * virtual-hosted requests, then the path as sent (a path-style "/bucket" also verifies signed as
 * "/bucket/"), then the subresources S3 signs, sorted, with their decoded values. Headers
 * outside the string to sign (User-Agent, Host...) play no part.
 * The payload is never signed in V2 (Content-MD5 still protects it when given).
 *
 * Policy beyond S3's: a presigned URL may be valid for at most 7 days from now (as V4 allows),
 * and the operator may turn V2 off (req->sigv2_off); both answer AccessDenied with a message.
 */
#include "gw_auth.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_util.h"

#define V2_MAX_SKEW 900
#define V2_MAX_EXPIRES 604800 /* seconds: 7 days, V4's limit */
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

static int cmp_name(const void *a, const void *b)
{
    return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

/* x-amz-* headers, lowercased and sorted, "name:value\n" (repeated names joined with ','). */
static int amz_headers(sts_buf *b, const gw_auth_request *req)
{
    const char **names = calloc(req->nheaders + 1, sizeof(*names));
    size_t n = 0;
    if (!names)
        return -1;
    for (size_t i = 0; i < req->nheaders; i++)
        if (strncasecmp(req->names[i], "x-amz-", 6) == 0)
            names[n++] = req->names[i];
    qsort(names, n, sizeof(names[0]), cmp_name); /* strcasecmp orders as the lowercased names */
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
    free(names);
    return 0;
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

/* "/bucket" (virtual-hosted) + raw path (+ "/" when slash) + signed subresources. */
static int canonical_resource(sts_buf *b, const gw_auth_request *req, const char *vhost_bucket,
                              int slash)
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
    if (slash)
        put(b, "/", 1);
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

/* A path-style request for a bucket alone: "/bucket" (no key, no trailing slash). */
static int bucket_only(const gw_auth_request *req, const char *vhost_bucket)
{
    const char *t = req->target;
    size_t plen = strcspn(t, "?");
    return !(vhost_bucket && *vhost_bucket) && plen > 1 && t[0] == '/' &&
           !memchr(t + 1, '/', plen - 1);
}

/*
 * The string to sign, then the HMAC compared with sig_b64. A path-style "/bucket" is also tried as
 * "/bucket/": botocore's SigV2 signs bucket requests so (S3 accepts it) while sending "/bucket";
 * both name the same resource, so accepting either grants nothing more.
 */
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
    gw_s3err e = GW_INTERNAL;

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
    size_t prefix = b->n;
    for (int slash = 0; slash < 2 && (slash == 0 || bucket_only(req, vhost_bucket)); slash++) {
        b->n = prefix;
        if (amz_headers(b, req) != 0) {
            e = GW_INTERNAL;
            break;
        }
        if (canonical_resource(b, req, vhost_bucket, slash) != 0) {
            e = GW_ACCESS_DENIED; /* a malformed %-escape in a signed subresource */
            break;
        }
        if (b->overflow) {
            out->message = "The request's headers are too large to verify its signature";
            e = GW_ACCESS_DENIED;
            break;
        }
        HMAC(EVP_sha1(), secret, (int)strlen(secret), (const uint8_t *)b->buf, b->n, mac, &maclen);
        cm_base64_encode(mac, maclen, want);
        e = strlen(sig_b64) == strlen(want) && cm_ct_equal(sig_b64, want, strlen(want))
                ? GW_OK
                : GW_SIGNATURE_MISMATCH;
        if (e == GW_OK)
            break;
    }
    free(b);
    memset(secret, 0, sizeof(secret));
    if (e == GW_OK) {
        snprintf(out->access_key, sizeof(out->access_key), "%s", access_key);
        out->mode = GW_PAYLOAD_UNSIGNED;
    }
    return e;
}

/* "AWS AKID:signature", dated by x-amz-date or Date. */
static gw_s3err check_header(const gw_auth_request *req, const char *authz,
                             const char *vhost_bucket, gw_secret_fn secret_fn, void *secret_arg,
                             gw_auth_result *out)
{
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
    if (!when || cm_time_parse_http(when, &t) != CM_OK) {
        out->message = "AWS authentication requires a valid Date or x-amz-date header";
        return GW_ACCESS_DENIED;
    }
    if (t > req->now + V2_MAX_SKEW || t < req->now - V2_MAX_SKEW)
        return GW_REQUEST_TIME_TOO_SKEWED;
    return verify_v2(req, ak, colon + 1, amzdate ? "" : date, vhost_bucket, secret_fn, secret_arg,
                     out);
}

/* ?AWSAccessKeyId=..&Expires=..&Signature=..: Expires (seconds since the epoch) dates it. */
static gw_s3err check_query(const gw_auth_request *req, const char *vhost_bucket,
                            gw_secret_fn secret_fn, void *secret_arg, gw_auth_result *out)
{
    const char *q = strchr(req->target, '?');
    char ak[128], sig[128], expires[32];
    int hv;
    if (!q || query_param(q + 1, "AWSAccessKeyId", ak, sizeof(ak), &hv) != 1 ||
        query_param(q + 1, "Signature", sig, sizeof(sig), &hv) != 1 ||
        query_param(q + 1, "Expires", expires, sizeof(expires), &hv) != 1)
        return GW_ACCESS_DENIED;
    char *end;
    long long exp = strtoll(expires, &end, 10);
    if (end == expires || *end) {
        out->message = "Expires must be a number of seconds since the epoch";
        return GW_ACCESS_DENIED;
    }
    if ((long long)req->now > exp) {
        out->message = "Request has expired";
        return GW_ACCESS_DENIED;
    }
    /* the client's clock may run ahead of ours by the skew V4 tolerates */
    if (exp - (long long)req->now > V2_MAX_EXPIRES + V2_MAX_SKEW) {
        out->message = "A Signature Version 2 presigned URL may be valid for at most 7 days "
                       "(604800 seconds)";
        return GW_ACCESS_DENIED;
    }
    out->presigned = 1;
    return verify_v2(req, ak, sig, expires, vhost_bucket, secret_fn, secret_arg, out);
}

gw_s3err gw_sigv2_check(const gw_auth_request *req, const char *vhost_bucket,
                        gw_secret_fn secret_fn, void *secret_arg, gw_auth_result *out)
{
    const char *authz = header(req, "authorization");
    if (req->sigv2_off) {
        out->message = "Signature Version 2 is disabled on this server; sign requests with "
                       "AWS4-HMAC-SHA256 (Signature Version 4)";
        return GW_ACCESS_DENIED;
    }
    if (authz)
        return check_header(req, authz, vhost_bucket, secret_fn, secret_arg, out);
    return check_query(req, vhost_bucket, secret_fn, secret_arg, out);
}
