/*
 * gw_postpolicy.c - the check of a POST Object form against its signed policy (gw_post.h).
 *
 * The policy field is base64 of a JSON document {"expiration": "2026-12-05T08:00:00Z",
 * "conditions": [...]}; the form signs it with SigV4: x-amz-signature is the hex HMAC-SHA256 of
 * the policy field (the base64 text, as sent) under the signing key of the x-amz-credential
 * scope (AK/yyyymmdd/region/s3/aws4_request). Only the signature makes a form trustworthy, so it
 * is checked before the policy is decoded; the secret comes from the gateway's lookup callback
 * (the same one header signatures use), and the comparison is constant-time.
 *
 * Conditions: {"field": "value"} and ["eq", "$field", "value"] ask for an exact value,
 * ["starts-with", "$field", "prefix"] for a prefix ("" allows any value),
 * ["content-length-range", min, max] bounds the file's size (the caller enforces it while the
 * file streams). Field names compare case-insensitively; "$bucket" is the bucket of the URL; a
 * field the form lacks reads as "". A condition is checked against the field as sent, so a key
 * condition sees "${filename}" literally, as S3's does. Every form field except policy,
 * x-amz-signature, file and x-ignore-* must be named by some condition (S3: "Extra input
 * fields"). Messages are S3's ("Invalid according to Policy: ...").
 */
#include "gw_post.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cm_checksum.h"
#include "cm_util.h"

#define POLICY_MAX (GW_FORM_MAX_FIELD_BYTES)

static const char *field_value(const gw_post_request *req, const char *name)
{
    if (strcasecmp(name, "bucket") == 0)
        return req->bucket;
    const gw_form_field *f = gw_form_get(req->fields, req->nfields, name);
    return f ? f->value : "";
}

static gw_s3err fail(gw_post_policy *out, gw_s3err e, const char *msg)
{
    snprintf(out->message, sizeof(out->message), "%s", msg);
    return e;
}

/* The required field name, or GW_INVALID_ARGUMENT with S3's message. */
static gw_s3err required(const gw_post_request *req, const char *name, const char **v,
                         gw_post_policy *out)
{
    const gw_form_field *f = gw_form_get(req->fields, req->nfields, name);
    if (f && f->value[0]) {
        *v = f->value;
        return GW_OK;
    }
    snprintf(out->message, sizeof(out->message),
             "Bucket POST must contain a field named '%s'.  If it is specified, please check the "
             "order of the fields.",
             name);
    return GW_INVALID_ARGUMENT;
}

/* The signature of the policy text under the credential's scope. */
static gw_s3err check_signature(const gw_post_request *req, const char *policy, gw_post_policy *out)
{
    const char *alg, *cred, *date, *sig;
    char parts[5][128], secret[256], want[65], got[65];
    uint8_t key[32], mac[32];
    gw_s3err e;

    if ((e = required(req, "x-amz-algorithm", &alg, out)) != GW_OK)
        return gw_form_get(req->fields, req->nfields, "AWSAccessKeyId")
                   ? fail(out, GW_ACCESS_DENIED, "POST with Signature Version 2 is not supported")
                   : e;
    if ((e = required(req, "x-amz-credential", &cred, out)) != GW_OK ||
        (e = required(req, "x-amz-date", &date, out)) != GW_OK ||
        (e = required(req, "x-amz-signature", &sig, out)) != GW_OK)
        return e;
    if (strcmp(alg, "AWS4-HMAC-SHA256") != 0)
        return fail(out, GW_INVALID_ARGUMENT, "Only AWS4-HMAC-SHA256 is supported");
    size_t np = 0;
    for (const char *p = cred; np < 5; np++) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || n >= sizeof(parts[0]) || (!slash && np < 4) || (slash && np == 4))
            return fail(out, GW_INVALID_ARGUMENT, "Invalid credential in x-amz-credential");
        memcpy(parts[np], p, n);
        parts[np][n] = '\0';
        p = slash ? slash + 1 : p + n;
    }
    if (strlen(parts[1]) != 8 || strncmp(date, parts[1], 8) != 0 ||
        strcmp(parts[2], req->region) != 0 || strcmp(parts[3], "s3") != 0 ||
        strcmp(parts[4], "aws4_request") != 0)
        return fail(out, GW_INVALID_ARGUMENT, "Invalid credential scope in x-amz-credential");
    snprintf(out->access_key, sizeof(out->access_key), "%s", parts[0]);
    cm_err ce = req->secret(req->secret_arg, parts[0], secret, sizeof(secret));
    if (ce == CM_ERR_NOTFOUND)
        return fail(out, GW_INVALID_ACCESS_KEY, "");
    if (ce != CM_OK)
        return fail(out, GW_INTERNAL, "");
    gw_sigv4_signing_key(secret, parts[1], parts[2], "s3", key);
    OPENSSL_cleanse(secret, sizeof(secret));
    cm_hmac_sha256(key, sizeof(key), policy, strlen(policy), mac);
    OPENSSL_cleanse(key, sizeof(key));
    cm_hex_encode(mac, 32, want);
    if (gw_sigv4_parse_signature(sig, strlen(sig), got) != 0 || !cm_ct_equal(want, got, 64))
        return fail(out, GW_SIGNATURE_MISMATCH,
                    "The request signature we calculated does not match the signature you "
                    "provided. Check your key and signing method.");
    return GW_OK;
}

/* "2026-12-05T08:00:00Z" or with fractional seconds "...:00.000Z" to Unix time; -1 if not. */
static int64_t parse_expiration(const char *s)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (strcmp(p, "Z") != 0 || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 ||
        h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
        return -1;
    /* days from civil (Howard Hinnant's algorithm) */
    int64_t yy = y - (mo <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return days * 86400 + h * 3600 + mi * 60 + sec;
}

/* A JSON integer, or a string of digits, as content-length-range bounds come from SDKs. */
static int json_u64(json_t *v, uint64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 1;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        if (!s[0] || s[0] < '0' || s[0] > '9')
            return 0;
        unsigned long long x = strtoull(s, &end, 10);
        *out = x;
        return *end == '\0';
    }
    return 0;
}

/* Mark the field a condition names as covered (covered[i] for req->fields[i]). */
static void cover(const gw_post_request *req, const char *name, unsigned char *covered)
{
    for (size_t i = 0; i < req->nfields; i++)
        if (strcasecmp(req->fields[i].name, name) == 0)
            covered[i] = 1;
}

static gw_s3err condition_failed(gw_post_policy *out, json_t *cond)
{
    char *text = json_dumps(cond, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(out->message, sizeof(out->message),
             "Invalid according to Policy: Policy Condition failed: %s", text ? text : "");
    free(text);
    return GW_ACCESS_DENIED;
}

static gw_s3err check_condition(const gw_post_request *req, json_t *c, unsigned char *covered,
                                gw_post_policy *out)
{
    const char *op, *name, *want, *have;
    if (json_is_object(c)) {
        if (json_object_size(c) != 1)
            return fail(out, GW_INVALID_POLICY_DOCUMENT,
                        "Invalid Policy: Invalid Simple-Condition: Simple-Conditions must have "
                        "exactly one property specified.");
        void *it = json_object_iter(c);
        name = json_object_iter_key(it);
        json_t *v = json_object_iter_value(it);
        if (!json_is_string(v))
            return fail(out, GW_INVALID_POLICY_DOCUMENT,
                        "Invalid Policy: Invalid Simple-Condition: value must be a string.");
        cover(req, name, covered);
        return strcmp(field_value(req, name), json_string_value(v)) == 0 ? GW_OK
                                                                         : condition_failed(out, c);
    }
    if (!json_is_array(c) || json_array_size(c) != 3 || !json_is_string(json_array_get(c, 0)))
        return fail(out, GW_INVALID_POLICY_DOCUMENT, "Invalid Policy: Invalid Condition.");
    op = json_string_value(json_array_get(c, 0));
    if (strcasecmp(op, "content-length-range") == 0) {
        uint64_t lo, hi;
        if (!json_u64(json_array_get(c, 1), &lo) || !json_u64(json_array_get(c, 2), &hi))
            return fail(out, GW_INVALID_POLICY_DOCUMENT,
                        "Invalid Policy: Invalid content-length-range condition.");
        out->min_len = CM_MAX(out->min_len, lo);
        out->max_len = CM_MIN(out->max_len, hi);
        return GW_OK;
    }
    json_t *jn = json_array_get(c, 1), *jv = json_array_get(c, 2);
    if (!json_is_string(jn) || !json_is_string(jv) || json_string_value(jn)[0] != '$' ||
        (strcasecmp(op, "eq") != 0 && strcasecmp(op, "starts-with") != 0))
        return fail(out, GW_INVALID_POLICY_DOCUMENT, "Invalid Policy: Invalid Condition.");
    name = json_string_value(jn) + 1;
    want = json_string_value(jv);
    have = field_value(req, name);
    cover(req, name, covered);
    int ok = strcasecmp(op, "eq") == 0 ? strcmp(have, want) == 0
                                       : strncmp(have, want, strlen(want)) == 0;
    return ok ? GW_OK : condition_failed(out, c);
}

/* Exempt from "every field must be covered" (S3's list). */
static int exempt(const char *name)
{
    return strcasecmp(name, "policy") == 0 || strcasecmp(name, "x-amz-signature") == 0 ||
           strcasecmp(name, "file") == 0 || strncasecmp(name, "x-ignore-", 9) == 0;
}

static gw_s3err check_document(const gw_post_request *req, json_t *doc, gw_post_policy *out)
{
    json_t *exp = json_object_get(doc, "expiration");
    json_t *conds = json_object_get(doc, "conditions");
    unsigned char covered[GW_FORM_MAX_FIELDS] = {0};
    gw_s3err e = GW_OK;

    if (!json_is_string(exp))
        return fail(out, GW_INVALID_POLICY_DOCUMENT, "Invalid Policy: Policy missing expiration.");
    int64_t t = parse_expiration(json_string_value(exp));
    if (t < 0)
        return fail(out, GW_INVALID_POLICY_DOCUMENT,
                    "Invalid Policy: Invalid 'expiration' value: must be ISO8601 GMT date.");
    if ((int64_t)req->now > t)
        return fail(out, GW_ACCESS_DENIED, "Invalid according to Policy: Policy expired.");
    if (!json_is_array(conds))
        return fail(out, GW_INVALID_POLICY_DOCUMENT, "Invalid Policy: Policy missing conditions.");
    if (req->nfields > GW_FORM_MAX_FIELDS)
        return fail(out, GW_MALFORMED_POST, "");
    for (size_t i = 0; i < json_array_size(conds) && e == GW_OK; i++)
        e = check_condition(req, json_array_get(conds, i), covered, out);
    if (e == GW_OK && out->min_len > out->max_len)
        return fail(out, GW_INVALID_POLICY_DOCUMENT,
                    "Invalid Policy: Invalid content-length-range condition.");
    for (size_t i = 0; i < req->nfields && e == GW_OK; i++) {
        if (!covered[i] && !exempt(req->fields[i].name)) {
            snprintf(out->message, sizeof(out->message),
                     "Invalid according to Policy: Extra input fields: %s", req->fields[i].name);
            e = GW_ACCESS_DENIED;
        }
    }
    return e;
}

gw_s3err gw_post_policy_check(const gw_post_request *req, gw_post_policy *out)
{
    const char *policy;
    gw_s3err e;
    memset(out, 0, sizeof(*out));
    out->max_len = UINT64_MAX;

    const gw_form_field *pf = gw_form_get(req->fields, req->nfields, "policy");
    if (!pf || !pf->value[0])
        return fail(out, GW_ACCESS_DENIED, "Access Denied");
    policy = pf->value;
    if ((e = check_signature(req, policy, out)) != GW_OK)
        return e;
    size_t plen = strlen(policy), n = 0;
    uint8_t *json = malloc(plen + 1);
    if (!json)
        return fail(out, GW_INTERNAL, "");
    if (plen > POLICY_MAX || cm_base64_decode(policy, plen, json, plen, &n) != CM_OK) {
        free(json);
        return fail(out, GW_INVALID_POLICY_DOCUMENT, "Invalid Policy: Invalid Base64 Encoding.");
    }
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)json, n, JSON_REJECT_DUPLICATES, &jerr);
    free(json);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return fail(out, GW_INVALID_POLICY_DOCUMENT, "Invalid Policy: Invalid JSON.");
    }
    e = check_document(req, doc, out);
    json_decref(doc);
    return e;
}

char *gw_post_key(const char *key, const char *filename)
{
    static const char var[] = "${filename}";
    size_t vl = sizeof(var) - 1, fl = strlen(filename), n = 0;
    for (const char *p = key; (p = strstr(p, var)); p += vl)
        n++;
    size_t len = strlen(key) + n * fl + 1; /* never longer than key + n * filename */
    char *out = malloc(len), *o = out;
    if (!out)
        return NULL;
    for (const char *p = key, *q; *p; p = q + vl) {
        if (!(q = strstr(p, var))) {
            memcpy(o, p, strlen(p));
            o += strlen(p);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, filename, fl);
        o += fl;
    }
    *o = '\0';
    return out;
}
