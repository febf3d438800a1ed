/*
 * gw_refuse.c - refuse, in one place, the request headers that ask for what cairn does not do
 * (design note in gw_refuse.h; the full list of headers is docs/s3-headers.md).
 *
 * One table row per header: the operations it applies to, the feature it asks for (named in the
 * 501 message), the values that ask for nothing more than what cairn does anyway (accepted as
 * no-ops), and the values refused with 501. A row whose refused list is NULL refuses every value
 * it does not accept; a row with a refused list (possibly "", none) answers a value in neither
 * list with its `invalid` error, as S3 does for a value it does not define. An accepted list may
 * hold the empty value (""). Values compare case-insensitively.
 *
 * The check runs after routing and authentication, before the operation starts: a refused
 * request reads no body and stores nothing. gw_complete_expect, at the end of the file, checks
 * what CompleteMultipartUpload asserts about the whole object once its parts are chosen.
 *
 * Threading: the table is constant; the functions are reentrant.
 */
#include "gw_refuse.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_int.h"

/* Operation groups. */
#define RF_WRITE (GW_RF_PUT | GW_RF_COPY | GW_RF_MPU_CREATE)
#define RF_ANY 0xffffffffu

typedef enum {
    RULE_VALUES, /* accept / refuse / invalid by value */
    RULE_OWNER   /* the value must name the owner */
} rule_kind;

typedef struct {
    const char *header;
    unsigned ops;
    rule_kind kind;
    const char *feature; /* what the header asks for, named in the 501 message */
    const char *accept;  /* '|'-separated values that change nothing, or NULL */
    const char *refuse;  /* '|'-separated values refused with 501; NULL: all not accepted */
    gw_s3err invalid;    /* a value in neither list (only when refuse is not NULL) */
} rule;

#define SERVED_ACLS                                                                                \
    "private|bucket-owner-full-control|public-read|public-read-write|authenticated-read"
#define UNSERVED_ACLS "aws-exec-read|bucket-owner-read|log-delivery-write"
#define SSE_KMS "server-side encryption with KMS keys (SSE-KMS)"

static const rule rules[] = {
    /* Encryption at rest: SSE-S3 and SSE-C are served (gw_sse.c), KMS is not. */
    {"x-amz-server-side-encryption-aws-kms-key-id", RF_WRITE, RULE_VALUES, SSE_KMS, NULL, NULL,
     GW_OK},
    {"x-amz-server-side-encryption-context", RF_WRITE, RULE_VALUES, SSE_KMS, NULL, NULL, GW_OK},
    {"x-amz-server-side-encryption-bucket-key-enabled", RF_WRITE, RULE_VALUES,
     "S3 Bucket Keys for SSE-KMS", "false", NULL, GW_OK},
    /* ACLs: the canned ACLs of docs/users.md are served (whether the bucket's ownership allows
     * them is the operation's check); the others grant to principals cairn does not have. */
    {"x-amz-acl", RF_WRITE | GW_RF_CREATE_BUCKET, RULE_VALUES,
     "access control lists other than canned private, public-read, public-read-write and "
     "authenticated-read",
     SERVED_ACLS, UNSERVED_ACLS, GW_INVALID_ARGUMENT},
    {"x-amz-grant-full-control", RF_WRITE | GW_RF_CREATE_BUCKET, RULE_VALUES, "ACL grants", NULL,
     NULL, GW_OK},
    {"x-amz-grant-read", RF_WRITE | GW_RF_CREATE_BUCKET, RULE_VALUES, "ACL grants", NULL, NULL,
     GW_OK},
    {"x-amz-grant-read-acp", RF_WRITE | GW_RF_CREATE_BUCKET, RULE_VALUES, "ACL grants", NULL, NULL,
     GW_OK},
    {"x-amz-grant-write-acp", RF_WRITE | GW_RF_CREATE_BUCKET, RULE_VALUES, "ACL grants", NULL, NULL,
     GW_OK},
    {"x-amz-grant-write", GW_RF_CREATE_BUCKET, RULE_VALUES, "ACL grants", NULL, NULL, GW_OK},
    /* With one account, every ownership setting gives the owner every object. */
    {"x-amz-object-ownership", GW_RF_CREATE_BUCKET, RULE_VALUES, "object ownership",
     "BucketOwnerEnforced|BucketOwnerPreferred|ObjectWriter", "", GW_INVALID_ARGUMENT},
    /* Storage classes: every byte lives on the same drives, read at once. */
    {"x-amz-storage-class", RF_WRITE, RULE_VALUES, "archive storage classes",
     "STANDARD|REDUCED_REDUNDANCY|STANDARD_IA|ONEZONE_IA|INTELLIGENT_TIERING|EXPRESS_ONEZONE",
     "GLACIER|DEEP_ARCHIVE|GLACIER_IR|OUTPOSTS|SNOW|FSX_OPENZFS", GW_INVALID_STORAGE_CLASS},
    /* Directory-bucket features. */
    {"x-amz-write-offset-bytes", GW_RF_PUT, RULE_VALUES, "appending to objects", NULL, NULL, GW_OK},
    {"x-amz-if-match-last-modified-time", GW_RF_DELETE, RULE_VALUES,
     "conditional deletes by modification time", NULL, NULL, GW_OK},
    {"x-amz-if-match-size", GW_RF_DELETE, RULE_VALUES, "conditional deletes by size", NULL, NULL,
     GW_OK},
    /* One account owns every bucket: a request expecting another owner is refused. */
    {"x-amz-expected-bucket-owner", RF_ANY, RULE_OWNER, NULL, NULL, NULL, GW_OK},
    {"x-amz-source-expected-bucket-owner", GW_RF_COPY | GW_RF_PART_COPY, RULE_OWNER, NULL, NULL,
     NULL, GW_OK},
};

/* Served on a single node and on a cluster node whose namespace keeps Object Lock (gw_lock.c
 * checks the values: every cairn server cluster node); refused by a cluster gateway made without
 * it (gw_bucket_ns lock_set NULL: an embedded one in the unit tests). */
#define NO_NS " (this gateway has no bucket namespace that keeps it)"
static const rule cluster_rules[] = {
    {"x-amz-object-lock-mode", RF_WRITE, RULE_VALUES, "Object Lock retention" NO_NS, NULL, NULL,
     GW_OK},
    {"x-amz-object-lock-retain-until-date", RF_WRITE, RULE_VALUES, "Object Lock retention" NO_NS,
     NULL, NULL, GW_OK},
    {"x-amz-object-lock-legal-hold", RF_WRITE, RULE_VALUES, "Object Lock legal hold" NO_NS, "OFF",
     "ON", GW_INVALID_ARGUMENT},
    {"x-amz-bucket-object-lock-enabled", GW_RF_CREATE_BUCKET, RULE_VALUES, "Object Lock" NO_NS,
     "false", "true", GW_INVALID_ARGUMENT},
};
#undef NO_NS

/* 1 when value is one of the '|'-separated words of list (case-insensitive). */
static int in_list(const char *list, const char *value)
{
    size_t vlen = strlen(value);
    if (!list)
        return 0;
    for (const char *p = list;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == vlen && strncasecmp(p, value, n) == 0)
            return 1;
        if (!bar)
            return 0;
        p = bar + 1;
    }
}

static gw_s3err check_rule(const rule *ru, const char *v, const char *owner, char *msg, size_t cap)
{
    if (ru->kind == RULE_OWNER) {
        if (owner && strcmp(v, owner) == 0)
            return GW_OK;
        snprintf(msg, cap, "%s does not name the owner of the bucket", ru->header);
        return GW_ACCESS_DENIED;
    }
    if (in_list(ru->accept, v))
        return GW_OK;
    if (!ru->refuse || (ru->refuse[0] && in_list(ru->refuse, v))) {
        /* The value is not echoed: it may be a customer key, and 5xx answers are logged. */
        snprintf(msg, cap,
                 "A header you provided implies functionality that is not implemented: %s (%s)",
                 ru->feature, ru->header);
        return GW_UNSUPPORTED;
    }
    snprintf(msg, cap, "Invalid value for %s: %s", ru->header, v);
    return ru->invalid;
}

static gw_s3err check_rows(const rule *rows, size_t n, unsigned op, gw_refuse_get_fn get, void *arg,
                           const char *owner, char *msg, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        const rule *ru = &rows[i];
        if (!(ru->ops & op))
            continue;
        const char *v = get(arg, ru->header);
        if (!v)
            continue;
        gw_s3err e = check_rule(ru, v, owner, msg, cap);
        if (e != GW_OK)
            return e;
    }
    return GW_OK;
}

gw_s3err gw_refuse_check(unsigned op, gw_refuse_get_fn get, void *arg, const char *owner, char *msg,
                         size_t cap)
{
    return check_rows(rules, sizeof(rules) / sizeof(rules[0]), op, get, arg, owner, msg, cap);
}

gw_s3err gw_refuse_check_cluster(unsigned op, gw_refuse_get_fn get, void *arg, const char *owner,
                                 char *msg, size_t cap)
{
    gw_s3err e = check_rows(cluster_rules, sizeof(cluster_rules) / sizeof(cluster_rules[0]), op,
                            get, arg, owner, msg, cap);
    return e != GW_OK ? e : gw_refuse_check(op, get, arg, owner, msg, cap);
}

/* ---- CompleteMultipartUpload's whole-object expectations ---- */

static const char *request_value(void *arg, const char *name);

/* 1 when want names the checksum have: equal, or have's value without its "-N" part count. */
static int checksum_matches(const char *want, const char *have)
{
    const char *dash = strrchr(have, '-');
    size_t n = dash ? (size_t)(dash - have) : strlen(have);
    return strcmp(want, have) == 0 || (strlen(want) == n && strncmp(want, have, n) == 0);
}

gw_s3err gw_complete_expect(gw_refuse_get_fn get, void *arg, uint64_t size, md_cksum_alg alg,
                            const char *ck_value, char *msg, size_t cap)
{
    const char *v = get(arg, "x-amz-mp-object-size");
    uint64_t want;

    if (v && gw_parse_count(v, 0, UINT64_MAX, &want) != GW_OK) {
        snprintf(msg, cap, "Invalid x-amz-mp-object-size: %s", v);
        return GW_INVALID_ARGUMENT;
    }
    if (v && want != size) {
        snprintf(msg, cap,
                 "The provided 'x-amz-mp-object-size' header value does not match what was "
                 "computed (%" PRIu64 " bytes)",
                 size);
        return GW_INVALID_REQUEST;
    }
    for (md_cksum_alg a = MD_CK_CRC32; a <= MD_CK_SHA256; a++) {
        char name[40];
        gw_ck_header_name(a, name, sizeof(name));
        if (!(v = get(arg, name)))
            continue;
        if (a != alg) {
            snprintf(msg, cap, "The upload was not created with the %s checksum algorithm",
                     gw_cksum_name(a));
            return GW_INVALID_REQUEST;
        }
        if (!checksum_matches(v, ck_value)) {
            snprintf(msg, cap, "The %s you specified did not match the calculated checksum", name);
            return GW_BAD_DIGEST;
        }
    }
    return GW_OK;
}

/* Object subresources routed elsewhere (gw_op_object): their headers are not a write's. */
static const char *const object_subresources[] = {
    "acl",     "tagging", "retention",  "legal-hold",   "restore",
    "torrent", "select",  "attributes", "renameObject",
};

unsigned gw_refuse_op(const char *method, int has_bucket, int has_key, const gw_query *q,
                      int copy_source)
{
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int put = strcmp(method, "PUT") == 0, post = strcmp(method, "POST") == 0;
    int del = strcmp(method, "DELETE") == 0;

    if (!has_bucket)
        return GW_RF_OTHER;
    if (!has_key) {
        if (put && q->n == 0)
            return GW_RF_CREATE_BUCKET;
        if (post && gw_query_find(q, "delete"))
            return GW_RF_DELETE;
        return GW_RF_OTHER;
    }
    if (gw_query_find(q, "uploadId")) {
        if (put && gw_query_find(q, "partNumber"))
            return copy_source ? GW_RF_PART_COPY : GW_RF_PART;
        return get ? GW_RF_LIST_PARTS : post ? GW_RF_COMPLETE : GW_RF_OTHER;
    }
    if (post && gw_query_find(q, "uploads"))
        return GW_RF_MPU_CREATE;
    for (size_t i = 0; i < sizeof(object_subresources) / sizeof(object_subresources[0]); i++)
        if (gw_query_find(q, object_subresources[i]))
            return GW_RF_OTHER;
    if (get)
        return GW_RF_GET;
    if (put)
        return copy_source ? GW_RF_COPY : GW_RF_PUT;
    return del ? GW_RF_DELETE : GW_RF_OTHER;
}

void gw_storage_class_of(const char *hdr, char *out, size_t cap)
{
    size_t n = hdr ? strlen(hdr) : 0;
    out[0] = '\0';
    if (n == 0 || n >= cap || strcasecmp(hdr, "STANDARD") == 0)
        return;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)(hdr[i] >= 'a' && hdr[i] <= 'z' ? hdr[i] - 32 : hdr[i]);
}

/* A header, or the same x-amz-* name hoisted into a presigned URL's query string. */
static const char *request_value(void *arg, const char *name)
{
    gw_req *r = arg;
    const char *v = gw_hdr(r, name);
    return v ? v : gw_query_get(&r->q, name);
}

cm_err gw_complete_hdrs_capture(gw_req *r, gw_complete_hdrs *h)
{
    const char *v = request_value(r, "x-amz-mp-object-size");
    memset(h, 0, sizeof(*h));
    if (v && !(h->size = strdup(v)))
        return CM_ERR_NOMEM;
    for (md_cksum_alg a = MD_CK_CRC32; a <= MD_CK_SHA256; a++) {
        char name[40];
        gw_ck_header_name(a, name, sizeof(name));
        if ((v = request_value(r, name)) && !(h->ck[a] = strdup(v)))
            return CM_ERR_NOMEM;
    }
    return CM_OK;
}

void gw_complete_hdrs_release(gw_complete_hdrs *h)
{
    free(h->size);
    for (size_t i = 0; i < sizeof(h->ck) / sizeof(h->ck[0]); i++)
        free(h->ck[i]);
    memset(h, 0, sizeof(*h));
}

const char *gw_complete_hdrs_get(void *arg, const char *name)
{
    const gw_complete_hdrs *h = arg;
    if (strcasecmp(name, "x-amz-mp-object-size") == 0)
        return h->size;
    for (md_cksum_alg a = MD_CK_CRC32; a <= MD_CK_SHA256; a++) {
        char ck[40];
        gw_ck_header_name(a, ck, sizeof(ck));
        if (strcasecmp(name, ck) == 0)
            return h->ck[a];
    }
    return NULL;
}

int gw_refuse_request(gw_req *r)
{
    char msg[256];
    unsigned op = gw_refuse_op(net_req_method(r->net), r->bucket[0] != '\0', r->key != NULL, &r->q,
                               gw_hdr(r, "x-amz-copy-source") != NULL);
    int no_lock = gw_meta_remote(r->g) && !r->g->ns.lock_set; /* a cluster without the hook */
    gw_s3err e = (no_lock ? gw_refuse_check_cluster : gw_refuse_check)(
        op, request_value, r, gw_owner_id(r), msg, sizeof(msg));
    if (e == GW_OK)
        return 0;
    gw_error(r, e, msg);
    return 1;
}
