/*
 * gw_stats.h - the bounded label sets of the gateway's request metrics (docs/metrics.md): S3
 * operations, status codes, and the gateway's plain counters.
 *
 * Adding an operation is one X() line in GW_OPS (and a row in gw_stats.c's classification when
 * the request shape names it). Adding a gateway counter is one X() line in GW_COUNTERS plus
 * gw_count(g, GW_CTR_NAME) where it happens: /metrics lists it with its HELP and TYPE.
 */
#ifndef GW_STATS_H
#define GW_STATS_H

#include <stdint.h>

#include "gw.h"
#include "gw_wire.h"

/* The S3 operation names (as AWS's API reference spells them), then the non-S3 routes. */
#define GW_OPS(X)                                                                                  \
    X(ListBuckets)                                                                                 \
    X(CreateBucket)                                                                                \
    X(DeleteBucket)                                                                                \
    X(HeadBucket)                                                                                  \
    X(ListObjects)                                                                                 \
    X(ListObjectsV2)                                                                               \
    X(ListObjectVersions)                                                                          \
    X(ListMultipartUploads)                                                                        \
    X(GetBucketLocation)                                                                           \
    X(GetBucketVersioning)                                                                         \
    X(PutBucketVersioning)                                                                         \
    X(GetBucketTagging)                                                                            \
    X(PutBucketTagging)                                                                            \
    X(DeleteBucketTagging)                                                                         \
    X(GetBucketAcl)                                                                                \
    X(PutBucketAcl)                                                                                \
    X(GetBucketPolicy)                                                                             \
    X(PutBucketPolicy)                                                                             \
    X(DeleteBucketPolicy)                                                                          \
    X(GetBucketCors)                                                                               \
    X(PutBucketCors)                                                                               \
    X(DeleteBucketCors)                                                                            \
    X(GetBucketLifecycleConfiguration)                                                             \
    X(PutBucketLifecycleConfiguration)                                                             \
    X(DeleteBucketLifecycle)                                                                       \
    X(GetBucketEncryption)                                                                         \
    X(PutBucketEncryption)                                                                         \
    X(DeleteBucketEncryption)                                                                      \
    X(DeleteObjects)                                                                               \
    X(PostObject)                                                                                  \
    X(GetObject)                                                                                   \
    X(HeadObject)                                                                                  \
    X(PutObject)                                                                                   \
    X(CopyObject)                                                                                  \
    X(DeleteObject)                                                                                \
    X(GetObjectTagging)                                                                            \
    X(PutObjectTagging)                                                                            \
    X(DeleteObjectTagging)                                                                         \
    X(GetObjectAttributes)                                                                         \
    X(GetObjectAcl)                                                                                \
    X(PutObjectAcl)                                                                                \
    X(CreateMultipartUpload)                                                                       \
    X(UploadPart)                                                                                  \
    X(UploadPartCopy)                                                                              \
    X(CompleteMultipartUpload)                                                                     \
    X(AbortMultipartUpload)                                                                        \
    X(ListParts)                                                                                   \
    X(Options)                                                                                     \
    X(Health)                                                                                      \
    X(Metrics)                                                                                     \
    X(Admin)                                                                                       \
    X(Console)                                                                                     \
    X(other)

typedef enum {
#define GW_OP_ENUM(name) GW_OP_##name,
    GW_OPS(GW_OP_ENUM)
#undef GW_OP_ENUM
        GW_OP_COUNT
} gw_op;

const char *gw_op_name(gw_op op); /* "GetObject"; "other" when out of range */

/*
 * The operation of an S3 request: method, whether a bucket and a key were addressed, the decoded
 * query (subresources), and whether x-amz-copy-source was sent. Requests of no known shape are
 * GW_OP_other. Pure: no request needed (unit-tested).
 */
gw_op gw_op_classify(const char *method, int has_bucket, int has_key, const gw_query *q,
                     int copy_source);

/* Status codes with a label of their own; others count as code="other", none sent as "none". */
#define GW_CODES(X)                                                                                \
    X(200)                                                                                         \
    X(204)                                                                                         \
    X(206)                                                                                         \
    X(301)                                                                                         \
    X(304)                                                                                         \
    X(307)                                                                                         \
    X(400)                                                                                         \
    X(401)                                                                                         \
    X(403)                                                                                         \
    X(404)                                                                                         \
    X(405)                                                                                         \
    X(409)                                                                                         \
    X(411)                                                                                         \
    X(412)                                                                                         \
    X(413)                                                                                         \
    X(416)                                                                                         \
    X(429)                                                                                         \
    X(500)                                                                                         \
    X(501)                                                                                         \
    X(503)
enum {
#define GW_CODE_ENUM(c) GW_CODE_##c,
    GW_CODES(GW_CODE_ENUM)
#undef GW_CODE_ENUM
        GW_CODE_OTHER,
    GW_CODE_NONE,
    GW_CODE_COUNT
};
int gw_code_index(int status);        /* 0..GW_CODE_COUNT-1 */
const char *gw_code_label(int index); /* "200", "other", "none" */

/* Plain gateway counters: enum name, metric name, HELP text. */
#define GW_COUNTERS(X)                                                                             \
    X(GW_CTR_AUTH_REFUSED, "cairn_auth_refused_total",                                             \
      "S3 requests refused by authentication (bad or missing signature, unknown key)")

typedef enum {
#define GW_CTR_ENUM(id, name, help) id,
    GW_COUNTERS(GW_CTR_ENUM)
#undef GW_CTR_ENUM
        GW_CTR_COUNT
} gw_counter;

/* Add one to counter c (a relaxed atomic add; any thread). */
void gw_count(gw *g, gw_counter c);

#endif
