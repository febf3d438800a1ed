/*
 * test_gateway_stats.c - the bounded label sets of the request metrics (gw_stats.h): S3 requests
 * named by method, bucket/key and subresource; unknown shapes and status codes fall into
 * "other", so no request can make a new series.
 */
#include <string.h>

#include "cu_main.h"
#include "gw_stats.h"

/* Classify target as a request with (or without) a bucket and key. */
static const char *op_of(const char *method, int bucket, int key, const char *target, int copy)
{
    gw_query q;
    CU_ASSERT_FATAL(gw_query_parse(&q, target, strlen(target)) == GW_OK);
    gw_op op = gw_op_classify(method, bucket, key, &q, copy);
    gw_query_release(&q);
    return gw_op_name(op);
}

static void test_classify(void)
{
    static const struct {
        const char *method;
        int bucket, key;
        const char *target;
        int copy;
        const char *want;
    } cases[] = {
        {"GET", 0, 0, "/", 0, "ListBuckets"},
        {"PUT", 1, 0, "/b", 0, "CreateBucket"},
        {"DELETE", 1, 0, "/b", 0, "DeleteBucket"},
        {"HEAD", 1, 0, "/b", 0, "HeadBucket"},
        {"GET", 1, 0, "/b", 0, "ListObjects"},
        {"GET", 1, 0, "/b?list-type=2&prefix=a", 0, "ListObjectsV2"},
        {"GET", 1, 0, "/b?uploads", 0, "ListMultipartUploads"},
        {"GET", 1, 0, "/b?versions", 0, "ListObjectVersions"},
        {"GET", 1, 0, "/b?location", 0, "GetBucketLocation"},
        {"PUT", 1, 0, "/b?versioning", 0, "PutBucketVersioning"},
        {"DELETE", 1, 0, "/b?tagging", 0, "DeleteBucketTagging"},
        {"PUT", 1, 0, "/b?lifecycle", 0, "PutBucketLifecycleConfiguration"},
        {"GET", 1, 0, "/b?cors", 0, "GetBucketCors"},
        {"POST", 1, 0, "/b?delete", 0, "DeleteObjects"},
        {"POST", 1, 0, "/b", 0, "PostObject"},
        {"GET", 1, 1, "/b/k", 0, "GetObject"},
        {"HEAD", 1, 1, "/b/k", 0, "HeadObject"},
        {"PUT", 1, 1, "/b/k", 0, "PutObject"},
        {"PUT", 1, 1, "/b/k", 1, "CopyObject"},
        {"DELETE", 1, 1, "/b/k", 0, "DeleteObject"},
        {"POST", 1, 1, "/b/k?uploads", 0, "CreateMultipartUpload"},
        {"PUT", 1, 1, "/b/k?partNumber=1&uploadId=u", 0, "UploadPart"},
        {"PUT", 1, 1, "/b/k?partNumber=1&uploadId=u", 1, "UploadPartCopy"},
        {"POST", 1, 1, "/b/k?uploadId=u", 0, "CompleteMultipartUpload"},
        {"DELETE", 1, 1, "/b/k?uploadId=u", 0, "AbortMultipartUpload"},
        {"GET", 1, 1, "/b/k?uploadId=u", 0, "ListParts"},
        {"GET", 1, 1, "/b/k?tagging", 0, "GetObjectTagging"},
        {"GET", 1, 1, "/b/k?attributes", 0, "GetObjectAttributes"},
        {"OPTIONS", 1, 1, "/b/k", 0, "Options"},
        /* unknown shapes: bounded, never a new name */
        {"PATCH", 1, 1, "/b/k", 0, "other"},
        {"BREW", 0, 0, "/", 0, "other"},
        {"POST", 1, 1, "/b/k?restore", 0, "other"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got =
            op_of(cases[i].method, cases[i].bucket, cases[i].key, cases[i].target, cases[i].copy);
        if (strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "\n%s %s: got %s, want %s\n", cases[i].method, cases[i].target, got,
                    cases[i].want);
        CU_ASSERT_STRING_EQUAL(got, cases[i].want);
    }
    CU_ASSERT_STRING_EQUAL(gw_op_name(GW_OP_COUNT), "other");
    CU_ASSERT_STRING_EQUAL(gw_op_name((gw_op)-1), "other");
}

static void test_codes(void)
{
    CU_ASSERT_STRING_EQUAL(gw_code_label(gw_code_index(200)), "200");
    CU_ASSERT_STRING_EQUAL(gw_code_label(gw_code_index(404)), "404");
    CU_ASSERT_STRING_EQUAL(gw_code_label(gw_code_index(503)), "503");
    CU_ASSERT_STRING_EQUAL(gw_code_label(gw_code_index(418)), "other");
    CU_ASSERT_STRING_EQUAL(gw_code_label(gw_code_index(999)), "other");
    CU_ASSERT_STRING_EQUAL(gw_code_label(gw_code_index(0)), "none");
    CU_ASSERT_STRING_EQUAL(gw_code_label(-1), "other");
    CU_ASSERT_STRING_EQUAL(gw_code_label(GW_CODE_COUNT), "other");
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"operations by request shape", test_classify},
        {"status code labels", test_codes},
        {NULL, NULL},
    };
    cu_add_suite("gateway_stats", tests);
}
