/*
 * test_gateway_refuse.c - unit tests for the refusal table (gw_refuse.h): which operation a
 * request is, and for each documented header that asks for a feature cairn lacks, that the
 * operations it applies to answer 501 naming the feature, while the no-op values (private ACL,
 * STANDARD storage class, legal hold OFF, ...) pass and unknown values get S3's 400.
 */
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "cu_main.h"
#include "gw_refuse.h"

/* A request's headers as parallel name/value arrays (names in lower case). */
typedef struct {
    const char *names[4];
    const char *values[4];
} hdrs;

static const char *get(void *arg, const char *name)
{
    hdrs *h = arg;
    for (size_t i = 0; i < 4 && h->names[i]; i++)
        if (strcmp(h->names[i], name) == 0)
            return h->values[i];
    return NULL;
}

static gw_s3err check1(unsigned op, const char *name, const char *value, char *msg, size_t cap)
{
    hdrs h = {{name}, {value}};
    return gw_refuse_check(op, get, &h, "owner-id", msg, cap);
}

/* A cluster node's check (gw_refuse_check_cluster). */
static gw_s3err check_cluster(unsigned op, const char *name, const char *value, char *msg,
                              size_t cap)
{
    hdrs h = {{name}, {value}};
    return gw_refuse_check_cluster(op, get, &h, "owner-id", msg, cap);
}

static gw_s3err check(unsigned op, const char *name, const char *value)
{
    char msg[256];
    return check1(op, name, value, msg, sizeof(msg));
}

static unsigned op_of(const char *method, const char *target, int copy)
{
    gw_query q;
    CU_ASSERT_EQUAL_FATAL(gw_query_parse(&q, target, strlen(target)), GW_OK);
    /* path "/bucket[/key]" */
    const char *p = q.path + 1, *slash = strchr(p, '/');
    unsigned op = gw_refuse_op(method, *p != '\0', slash && slash[1], &q, copy);
    gw_query_release(&q);
    return op;
}

static void test_operations(void)
{
    CU_ASSERT_EQUAL(op_of("PUT", "/b/k", 0), GW_RF_PUT);
    CU_ASSERT_EQUAL(op_of("PUT", "/b/k", 1), GW_RF_COPY);
    CU_ASSERT_EQUAL(op_of("POST", "/b/k?uploads", 0), GW_RF_MPU_CREATE);
    CU_ASSERT_EQUAL(op_of("PUT", "/b/k?partNumber=1&uploadId=u", 0), GW_RF_PART);
    CU_ASSERT_EQUAL(op_of("PUT", "/b/k?partNumber=1&uploadId=u", 1), GW_RF_PART_COPY);
    CU_ASSERT_EQUAL(op_of("POST", "/b/k?uploadId=u", 0), GW_RF_COMPLETE);
    CU_ASSERT_EQUAL(op_of("GET", "/b/k?uploadId=u", 0), GW_RF_LIST_PARTS);
    CU_ASSERT_EQUAL(op_of("DELETE", "/b/k?uploadId=u", 0), GW_RF_OTHER);
    CU_ASSERT_EQUAL(op_of("GET", "/b/k", 0), GW_RF_GET);
    CU_ASSERT_EQUAL(op_of("HEAD", "/b/k?partNumber=2", 0), GW_RF_GET);
    CU_ASSERT_EQUAL(op_of("GET", "/b/k?acl", 0), GW_RF_OTHER);
    CU_ASSERT_EQUAL(op_of("PUT", "/b/k?tagging", 0), GW_RF_OTHER);
    CU_ASSERT_EQUAL(op_of("PUT", "/b/k?renameObject", 0), GW_RF_OTHER);
    CU_ASSERT_EQUAL(op_of("GET", "/b/k?attributes", 0), GW_RF_OTHER);
    CU_ASSERT_EQUAL(op_of("DELETE", "/b/k", 0), GW_RF_DELETE);
    CU_ASSERT_EQUAL(op_of("POST", "/b?delete", 0), GW_RF_DELETE);
    CU_ASSERT_EQUAL(op_of("PUT", "/b", 0), GW_RF_CREATE_BUCKET);
    CU_ASSERT_EQUAL(op_of("PUT", "/b/", 0), GW_RF_CREATE_BUCKET);
    CU_ASSERT_EQUAL(op_of("PUT", "/b?versioning", 0), GW_RF_OTHER);
    CU_ASSERT_EQUAL(op_of("GET", "/b?list-type=2", 0), GW_RF_OTHER);
    CU_ASSERT_EQUAL(op_of("GET", "/", 0), GW_RF_OTHER);
}

/* Every feature header on every write: 501, with the header and the feature in the message. */
static void test_refused_on_writes(void)
{
    static const struct {
        const char *name, *value, *feature;
    } cases[] = {
        {"x-amz-server-side-encryption-aws-kms-key-id", "k", "SSE-KMS"},
        {"x-amz-server-side-encryption-context", "e30=", "SSE-KMS"},
        {"x-amz-server-side-encryption-bucket-key-enabled", "true", "Bucket Keys"},
        {"x-amz-acl", "aws-exec-read", "access control"},
        {"x-amz-acl", "log-delivery-write", "access control"},
        {"x-amz-grant-read", "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"", "grants"},
        {"x-amz-grant-full-control", "id=\"x\"", "grants"},
        {"x-amz-grant-read-acp", "id=\"x\"", "grants"},
        {"x-amz-grant-write-acp", "id=\"x\"", "grants"},
        {"x-amz-storage-class", "GLACIER", "archive"},
        {"x-amz-storage-class", "DEEP_ARCHIVE", "archive"},
        {"x-amz-storage-class", "GLACIER_IR", "archive"},
    };
    static const unsigned ops[] = {GW_RF_PUT, GW_RF_COPY, GW_RF_MPU_CREATE};
    char msg[256];

    for (size_t i = 0; i < CM_ARRAY_LEN(cases); i++)
        for (size_t j = 0; j < CM_ARRAY_LEN(ops); j++) {
            gw_s3err e = check1(ops[j], cases[i].name, cases[i].value, msg, sizeof(msg));
            CU_ASSERT_EQUAL(e, GW_UNSUPPORTED);
            CU_ASSERT_PTR_NOT_NULL(strstr(msg, cases[i].feature));
            CU_ASSERT_PTR_NOT_NULL(strstr(msg, cases[i].name));
            /* The same header means nothing to a listing. */
            CU_ASSERT_EQUAL(check(GW_RF_OTHER, cases[i].name, cases[i].value), GW_OK);
        }
}

/* Object Lock is served on a single node and a cluster node (gw_lock.c checks the values), refused
 * with 501 naming the header by a cluster gateway without a bucket namespace that keeps it;
 * values asking for nothing pass there too. */
static void test_lock_cluster_only(void)
{
    static const struct {
        const char *name, *value;
    } cases[] = {
        {"x-amz-object-lock-mode", "COMPLIANCE"},
        {"x-amz-object-lock-mode", "GOVERNANCE"},
        {"x-amz-object-lock-retain-until-date", "2030-01-01T00:00:00Z"},
        {"x-amz-object-lock-legal-hold", "ON"},
    };
    static const unsigned ops[] = {GW_RF_PUT, GW_RF_COPY, GW_RF_MPU_CREATE};
    char msg[256];
    for (size_t i = 0; i < CM_ARRAY_LEN(cases); i++)
        for (size_t j = 0; j < CM_ARRAY_LEN(ops); j++) {
            CU_ASSERT_EQUAL(check(ops[j], cases[i].name, cases[i].value), GW_OK);
            CU_ASSERT_EQUAL(check_cluster(ops[j], cases[i].name, cases[i].value, msg, sizeof(msg)),
                            GW_UNSUPPORTED);
            CU_ASSERT_PTR_NOT_NULL(strstr(msg, cases[i].name));
            CU_ASSERT_PTR_NOT_NULL(strstr(msg, "no bucket namespace"));
        }
    CU_ASSERT_EQUAL(
        check_cluster(GW_RF_PUT, "x-amz-object-lock-legal-hold", "OFF", msg, sizeof(msg)), GW_OK);
    CU_ASSERT_EQUAL(
        check_cluster(GW_RF_PUT, "x-amz-object-lock-legal-hold", "maybe", msg, sizeof(msg)),
        GW_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(check(GW_RF_CREATE_BUCKET, "x-amz-bucket-object-lock-enabled", "true"), GW_OK);
    CU_ASSERT_EQUAL(check_cluster(GW_RF_CREATE_BUCKET, "x-amz-bucket-object-lock-enabled", "true",
                                  msg, sizeof(msg)),
                    GW_UNSUPPORTED);
    CU_ASSERT_EQUAL(check_cluster(GW_RF_CREATE_BUCKET, "x-amz-bucket-object-lock-enabled", "false",
                                  msg, sizeof(msg)),
                    GW_OK);
    /* the rest of the table still applies on a cluster node */
    CU_ASSERT_EQUAL(check_cluster(GW_RF_PUT, "x-amz-storage-class", "GLACIER", msg, sizeof(msg)),
                    GW_UNSUPPORTED);
}

/* SSE-S3 and SSE-C are served (gw_sse.c checks them), so the table lets them through. */
static void test_sse_c_everywhere(void)
{
    static const unsigned ops[] = {GW_RF_PUT,       GW_RF_COPY,     GW_RF_MPU_CREATE, GW_RF_PART,
                                   GW_RF_PART_COPY, GW_RF_COMPLETE, GW_RF_LIST_PARTS, GW_RF_GET};
    for (size_t j = 0; j < CM_ARRAY_LEN(ops); j++) {
        CU_ASSERT_EQUAL(check(ops[j], "x-amz-server-side-encryption-customer-algorithm", "AES256"),
                        GW_OK);
        CU_ASSERT_EQUAL(check(ops[j], "x-amz-server-side-encryption", "AES256"), GW_OK);
    }
    CU_ASSERT_EQUAL(check(GW_RF_COPY, "x-amz-copy-source-server-side-encryption-customer-key", "k"),
                    GW_OK);
    CU_ASSERT_EQUAL(check(GW_RF_PUT, "x-amz-server-side-encryption-aws-kms-key-id", "k"),
                    GW_UNSUPPORTED);
}

/* Values that ask for nothing cairn does not do pass; values S3 does not define are 400. */
static void test_values(void)
{
    static const char *const classes[] = {"STANDARD",   "REDUCED_REDUNDANCY",  "STANDARD_IA",
                                          "ONEZONE_IA", "INTELLIGENT_TIERING", "EXPRESS_ONEZONE"};
    for (size_t i = 0; i < CM_ARRAY_LEN(classes); i++)
        CU_ASSERT_EQUAL(check(GW_RF_PUT, "x-amz-storage-class", classes[i]), GW_OK);
    CU_ASSERT_EQUAL(check(GW_RF_PUT, "x-amz-storage-class", "FAST"), GW_INVALID_STORAGE_CLASS);
    CU_ASSERT_EQUAL(check(GW_RF_PUT, "x-amz-storage-class", ""), GW_INVALID_STORAGE_CLASS);

    CU_ASSERT_EQUAL(check(GW_RF_PUT, "x-amz-acl", "private"), GW_OK);
    CU_ASSERT_EQUAL(check(GW_RF_MPU_CREATE, "x-amz-acl", "bucket-owner-full-control"), GW_OK);
    CU_ASSERT_EQUAL(check(GW_RF_PUT, "x-amz-acl", "everyone"), GW_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(check(GW_RF_CREATE_BUCKET, "x-amz-acl", "private"), GW_OK);
    CU_ASSERT_EQUAL(check(GW_RF_CREATE_BUCKET, "x-amz-acl", "bucket-owner-read"), GW_UNSUPPORTED);
    /* served canned ACLs pass here; the bucket's ownership decides (gw_acl_from_request) */
    CU_ASSERT_EQUAL(check(GW_RF_CREATE_BUCKET, "x-amz-acl", "public-read"), GW_OK);
    CU_ASSERT_EQUAL(check(GW_RF_PUT, "x-amz-acl", "public-read-write"), GW_OK);
    CU_ASSERT_EQUAL(check(GW_RF_CREATE_BUCKET, "x-amz-grant-write", "id=\"x\""), GW_UNSUPPORTED);

    CU_ASSERT_EQUAL(check(GW_RF_CREATE_BUCKET, "x-amz-object-ownership", "BucketOwnerEnforced"),
                    GW_OK);
    CU_ASSERT_EQUAL(check(GW_RF_CREATE_BUCKET, "x-amz-object-ownership", "Nobody"),
                    GW_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(check(GW_RF_CREATE_BUCKET, "x-amz-object-ownership", ""), GW_INVALID_ARGUMENT);

    /* Tags are supported (gw_tagops.c): the table lets their headers through. */
    CU_ASSERT_EQUAL(check(GW_RF_COPY, "x-amz-tagging-directive", "REPLACE"), GW_OK);
    CU_ASSERT_EQUAL(check(GW_RF_PUT, "x-amz-tagging", "a=b"), GW_OK);
    CU_ASSERT_EQUAL(check(GW_RF_PUT, "x-amz-server-side-encryption-bucket-key-enabled", "false"),
                    GW_OK);

    CU_ASSERT_EQUAL(check(GW_RF_PUT, "x-amz-write-offset-bytes", "0"), GW_UNSUPPORTED);
    CU_ASSERT_EQUAL(check(GW_RF_DELETE, "x-amz-if-match-size", "10"), GW_UNSUPPORTED);
    CU_ASSERT_EQUAL(check(GW_RF_PUT, "x-amz-checksum-crc32", "AAAAAA=="), GW_OK);
}

static void test_storage_class_of(void)
{
    char out[24];
    gw_storage_class_of("standard_ia", out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "STANDARD_IA");
    gw_storage_class_of("STANDARD", out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "");
    gw_storage_class_of(NULL, out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "");
    gw_storage_class_of("INTELLIGENT_TIERING", out, 8); /* does not fit: not recorded */
    CU_ASSERT_STRING_EQUAL(out, "");
}

static gw_s3err expect1(const char *name, const char *value, md_cksum_alg alg, const char *ck)
{
    char msg[200];
    hdrs h = {{name}, {value}};
    return gw_complete_expect(get, &h, 100, alg, ck, msg, sizeof(msg));
}

/* CompleteMultipartUpload's size and whole-object checksum are compared, not ignored. */
static void test_complete_expect(void)
{
    CU_ASSERT_EQUAL(expect1("x-amz-mp-object-size", "100", MD_CK_NONE, ""), GW_OK);
    CU_ASSERT_EQUAL(expect1("x-amz-mp-object-size", "101", MD_CK_NONE, ""), GW_INVALID_REQUEST);
    CU_ASSERT_EQUAL(expect1("x-amz-mp-object-size", "-1", MD_CK_NONE, ""), GW_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(expect1("x-amz-checksum-crc32", "AAAAAA==", MD_CK_CRC32, "AAAAAA=="), GW_OK);
    CU_ASSERT_EQUAL(expect1("x-amz-checksum-crc32", "AAAAAB==", MD_CK_CRC32, "AAAAAA=="),
                    GW_BAD_DIGEST);
    /* composite: with or without the part count */
    CU_ASSERT_EQUAL(expect1("x-amz-checksum-sha256", "c2hh-3", MD_CK_SHA256, "c2hh-3"), GW_OK);
    CU_ASSERT_EQUAL(expect1("x-amz-checksum-sha256", "c2hh", MD_CK_SHA256, "c2hh-3"), GW_OK);
    CU_ASSERT_EQUAL(expect1("x-amz-checksum-sha256", "c2hi", MD_CK_SHA256, "c2hh-3"),
                    GW_BAD_DIGEST);
    /* another algorithm than the upload's, or an upload without checksum */
    CU_ASSERT_EQUAL(expect1("x-amz-checksum-crc32c", "AAAAAA==", MD_CK_CRC32, "AAAAAA=="),
                    GW_INVALID_REQUEST);
    CU_ASSERT_EQUAL(expect1("x-amz-checksum-crc64nvme", "AAAAAAAAAAA=", MD_CK_NONE, ""),
                    GW_INVALID_REQUEST);
    CU_ASSERT_EQUAL(expect1("x-amz-request-payer", "requester", MD_CK_NONE, ""), GW_OK);
}

static void test_expected_owner(void)
{
    CU_ASSERT_EQUAL(check(GW_RF_GET, "x-amz-expected-bucket-owner", "owner-id"), GW_OK);
    CU_ASSERT_EQUAL(check(GW_RF_GET, "x-amz-expected-bucket-owner", "123456789012"),
                    GW_ACCESS_DENIED);
    CU_ASSERT_EQUAL(check(GW_RF_OTHER, "x-amz-expected-bucket-owner", "123456789012"),
                    GW_ACCESS_DENIED);
    CU_ASSERT_EQUAL(check(GW_RF_COPY, "x-amz-source-expected-bucket-owner", "other"),
                    GW_ACCESS_DENIED);
    CU_ASSERT_EQUAL(check(GW_RF_COPY, "x-amz-source-expected-bucket-owner", "owner-id"), GW_OK);
}

/* Headers that are accepted as they are: nothing to refuse. */
static void test_accepted(void)
{
    static const char *const names[] = {"x-amz-request-payer", "x-amz-bypass-governance-retention",
                                        "x-amz-mfa", "x-amz-website-redirect-location",
                                        "x-amz-checksum-mode"};
    for (size_t i = 0; i < CM_ARRAY_LEN(names); i++) {
        CU_ASSERT_EQUAL(check(GW_RF_PUT, names[i], "requester"), GW_OK);
        CU_ASSERT_EQUAL(check(GW_RF_DELETE, names[i], "true"), GW_OK);
    }
    /* The first refused header of several is the one named. */
    hdrs h = {{"x-amz-acl", "x-amz-storage-class"}, {"private", "GLACIER"}};
    char msg[256];
    CU_ASSERT_EQUAL(gw_refuse_check(GW_RF_PUT, get, &h, "owner-id", msg, sizeof(msg)),
                    GW_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "x-amz-storage-class"));
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"operations", test_operations},
        {"refused on writes", test_refused_on_writes},
        {"lock cluster only", test_lock_cluster_only},
        {"sse-c everywhere", test_sse_c_everywhere},
        {"values", test_values},
        {"storage class of", test_storage_class_of},
        {"complete expectations", test_complete_expect},
        {"expected owner", test_expected_owner},
        {"accepted", test_accepted},
        {NULL, NULL},
    };
    cu_add_suite("gateway refuse", tests);
}
