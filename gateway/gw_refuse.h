/*
 * gw_refuse.h - the one place that refuses request headers asking for what cairn does not do.
 *
 * S3 defines headers that ask for encryption, object lock, tags, ACLs, archive storage and more.
 * A server that drops such a header answers 200 for a promise it does not keep (an "encrypted"
 * object readable without its key, an "immutable" backup any delete removes). So every documented
 * x-amz-* header is either supported by the operation files, accepted because the value asks for
 * nothing cairn does not already do (x-amz-acl: private, x-amz-storage-class: STANDARD), or refused
 * here, before the operation starts, with 501 NotImplemented naming the feature (or 400 for a
 * value S3 does not define, 403 for an x-amz-expected-bucket-owner that is not the owner).
 * docs/s3-headers.md lists every header and what cairn does with it; keep the two in step.
 *
 * The check is a pure function of the operation and a header lookup, so unit tests drive it
 * without a server; gw_refuse_request applies it to a routed request. The whole-object
 * expectations of CompleteMultipartUpload (size, checksum) can only be checked once the parts are
 * known, so gw_complete_expect is called from there instead of refusing those headers.
 */
#ifndef GW_REFUSE_H
#define GW_REFUSE_H

#include <stddef.h>

#include "gw_err.h"
#include "gw_wire.h"

/* The operations the table distinguishes (one bit each). */
enum {
    GW_RF_PUT = 1u << 0,           /* PutObject */
    GW_RF_COPY = 1u << 1,          /* CopyObject */
    GW_RF_MPU_CREATE = 1u << 2,    /* CreateMultipartUpload */
    GW_RF_PART = 1u << 3,          /* UploadPart */
    GW_RF_PART_COPY = 1u << 4,     /* UploadPartCopy */
    GW_RF_COMPLETE = 1u << 5,      /* CompleteMultipartUpload */
    GW_RF_LIST_PARTS = 1u << 6,    /* ListParts */
    GW_RF_GET = 1u << 7,           /* GetObject, HeadObject */
    GW_RF_DELETE = 1u << 8,        /* DeleteObject, DeleteObjects */
    GW_RF_CREATE_BUCKET = 1u << 9, /* CreateBucket */
    GW_RF_OTHER = 1u << 10         /* everything else (listings, subresources, ...) */
};

/*
 * The operation a request is routed to, as gw_op_bucket/gw_op_object/gw_op_multipart route it:
 * method, whether the path names a bucket and a key, the query, and whether x-amz-copy-source
 * is present.
 */
unsigned gw_refuse_op(const char *method, int has_bucket, int has_key, const gw_query *q,
                      int copy_source);

/* A request header's value (name in lower case), or NULL when absent. */
typedef const char *(*gw_refuse_get_fn)(void *arg, const char *name);

/*
 * Check the headers of operation op (one GW_RF_ bit) against the table. GW_OK when the request
 * may proceed; otherwise the error to answer (GW_UNSUPPORTED, GW_INVALID_ARGUMENT,
 * GW_INVALID_STORAGE_CLASS or GW_ACCESS_DENIED) with a message naming the header and the
 * feature written to msg (cap bytes). owner is the id of the single account that owns every
 * bucket, compared with x-amz-expected-bucket-owner and x-amz-source-expected-bucket-owner.
 */
gw_s3err gw_refuse_check(unsigned op, gw_refuse_get_fn get, void *arg, const char *owner, char *msg,
                         size_t cap);
/* The same, also refusing what only a single node serves (Object Lock's headers): a cluster
 * node's check, and POST Object's (its form fields do not carry a lock). */
gw_s3err gw_refuse_check_cluster(unsigned op, gw_refuse_get_fn get, void *arg, const char *owner,
                                 char *msg, size_t cap);

/*
 * The storage class to record for an accepted x-amz-storage-class value (hdr may be NULL):
 * upper-cased into out, or "" for STANDARD, absent, or a value longer than cap - 1.
 */
void gw_storage_class_of(const char *hdr, char *out, size_t cap);

/*
 * The whole-object expectations a CompleteMultipartUpload may carry, checked against the object
 * about to be committed (size, checksum algorithm and value as computed from the parts):
 * x-amz-mp-object-size must equal size (GW_INVALID_REQUEST; GW_INVALID_ARGUMENT if not a
 * number); an x-amz-checksum-<alg> must be of the upload's algorithm (GW_INVALID_REQUEST) and
 * equal the computed value, with or without its "-N" part count (GW_BAD_DIGEST). Message in msg.
 */
gw_s3err gw_complete_expect(gw_refuse_get_fn get, void *arg, uint64_t size, md_cksum_alg alg,
                            const char *ck_value, char *msg, size_t cap);

struct gw_req;
/*
 * Apply the check to a routed, authenticated request (headers, and the same names hoisted into
 * the query string of a presigned URL). Returns 1 after sending the error, 0 to proceed.
 */
int gw_refuse_request(struct gw_req *r);
/*
 * The request values gw_complete_expect reads (headers, or the same names in a presigned query),
 * copied on the loop thread so that the worker that builds the object can check them without
 * touching the connection. Capture fails only for lack of memory; release frees the copies.
 * gw_complete_hdrs_get is the getter to hand gw_complete_expect, with the struct as its arg.
 */
typedef struct {
    char *size;                 /* x-amz-mp-object-size */
    char *ck[MD_CK_SHA256 + 1]; /* x-amz-checksum-<alg>, by md_cksum_alg */
} gw_complete_hdrs;
cm_err gw_complete_hdrs_capture(struct gw_req *r, gw_complete_hdrs *h);
void gw_complete_hdrs_release(gw_complete_hdrs *h);
const char *gw_complete_hdrs_get(void *arg, const char *name);

#endif
