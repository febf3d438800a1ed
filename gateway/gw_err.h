/*
 * gw_err.h - the S3 error table: every error the gateway answers with, its HTTP status and a
 * default message (never empty: an empty <Message> crashes the aws CLI's error handler).
 */
#ifndef GW_ERR_H
#define GW_ERR_H

#include "cm_err.h"

/* S3's message for a version that Object Lock protects (CM_ERR_LOCKED, 403 AccessDenied). */
#define GW_LOCKED_MSG "Access Denied because object protected by object lock."

#define GW_S3ERR_LIST(X)                                                                           \
    X(GW_OK, "OK", 200, "OK")                                                                      \
    X(GW_ACCESS_DENIED, "AccessDenied", 403, "Access Denied")                                      \
    X(GW_CORS_FORBIDDEN, "AccessForbidden", 403,                                                   \
      "CORSResponse: This CORS request is not allowed. This is usually because the evalution of "  \
      "Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers "  \
      "are not whitelisted by the resource's CORS spec.")                                          \
    X(GW_MALFORMED_POST, "MalformedPOSTRequest", 400,                                              \
      "The body of your POST request is not well-formed multipart/form-data.")                     \
    X(GW_MAX_POST_PRE_DATA, "MaxPostPreDataLengthExceeded", 400,                                   \
      "Your POST request fields preceeding the upload file was too large.")                        \
    X(GW_INVALID_POLICY_DOCUMENT, "InvalidPolicyDocument", 400,                                    \
      "The content of the form does not meet the conditions specified in the policy document.")    \
    X(GW_AUTH_HEADER_MALFORMED, "AuthorizationHeaderMalformed", 400,                               \
      "The authorization header is malformed")                                                     \
    X(GW_AUTH_QUERY_ERROR, "AuthorizationQueryParametersError", 400,                               \
      "Error parsing the X-Amz-Credential parameter")                                              \
    X(GW_BAD_DIGEST, "BadDigest", 400,                                                             \
      "The checksum you specified did not match the calculated checksum")                          \
    X(GW_BAD_REQUEST, "BadRequest", 400, "Bad request")                                            \
    X(GW_BUCKET_EXISTS, "BucketAlreadyExists", 409, "The requested bucket name is not available")  \
    X(GW_BUCKET_OWNED, "BucketAlreadyOwnedByYou", 409,                                             \
      "Your previous request to create the named bucket succeeded and you already own it")         \
    X(GW_BUCKET_NOT_EMPTY, "BucketNotEmpty", 409, "The bucket you tried to delete is not empty")   \
    X(GW_CONDITIONAL_CONFLICT, "ConditionalRequestConflict", 409,                                  \
      "A conflicting operation occurred; retry the request")                                       \
    X(GW_ENTITY_TOO_LARGE, "EntityTooLarge", 400,                                                  \
      "Your proposed upload exceeds the maximum allowed size")                                     \
    X(GW_ENTITY_TOO_SMALL, "EntityTooSmall", 400,                                                  \
      "Your proposed upload is smaller than the minimum allowed object size")                      \
    X(GW_INCOMPLETE_BODY, "IncompleteBody", 400,                                                   \
      "You did not provide the number of bytes specified by the Content-Length HTTP header")       \
    X(GW_INTERNAL, "InternalError", 500, "We encountered an internal error. Please try again.")    \
    X(GW_INVALID_ACCESS_KEY, "InvalidAccessKeyId", 403,                                            \
      "The AWS Access Key Id you provided does not exist in our records.")                         \
    X(GW_INVALID_ARGUMENT, "InvalidArgument", 400, "Invalid argument")                             \
    X(GW_INVALID_BUCKET_NAME, "InvalidBucketName", 400, "The specified bucket is not valid.")      \
    X(GW_INVALID_CHUNK_SIZE, "InvalidChunkSizeError", 403,                                         \
      "Only the last chunk is allowed to have a size less than 8192 bytes")                        \
    X(GW_INVALID_DIGEST, "InvalidDigest", 400, "The Content-MD5 you specified is not valid.")      \
    X(GW_INVALID_PART, "InvalidPart", 400,                                                         \
      "One or more of the specified parts could not be found or did not match")                    \
    X(GW_INVALID_PART_ORDER, "InvalidPartOrder", 400,                                              \
      "The list of parts was not in ascending order")                                              \
    X(GW_INVALID_RANGE, "InvalidRange", 416, "The requested range is not satisfiable")             \
    X(GW_INVALID_REQUEST, "InvalidRequest", 400, "Invalid request")                                \
    X(GW_INVALID_TAG, "InvalidTag", 400, "The tag provided was not a valid tag")                   \
    X(GW_INVALID_STORAGE_CLASS, "InvalidStorageClass", 400,                                        \
      "The storage class you specified is not valid")                                              \
    X(GW_KEY_TOO_LONG, "KeyTooLongError", 400, "Your key is too long")                             \
    X(GW_MALFORMED_XML, "MalformedXML", 400,                                                       \
      "The XML you provided was not well-formed or did not validate against our published schema") \
    X(GW_MALFORMED_POLICY, "MalformedPolicy", 400, "Policies must be valid JSON")                  \
    X(GW_ACL_NOT_SUPPORTED, "AccessControlListNotSupported", 400,                                  \
      "The bucket does not allow ACLs")                                                            \
    X(GW_NO_SUCH_PAB, "NoSuchPublicAccessBlockConfiguration", 404,                                 \
      "The public access block configuration was not found")                                       \
    X(GW_NO_SUCH_OWNERSHIP, "OwnershipControlsNotFoundError", 404,                                 \
      "The bucket ownership controls were not found")                                              \
    X(GW_METADATA_TOO_LARGE, "MetadataTooLarge", 400,                                              \
      "Your metadata headers exceed the maximum allowed metadata size")                            \
    X(GW_METHOD_NOT_ALLOWED, "MethodNotAllowed", 405,                                              \
      "The specified method is not allowed against this resource.")                                \
    X(GW_MISSING_CONTENT_LENGTH, "MissingContentLength", 411,                                      \
      "You must provide the Content-Length HTTP header.")                                          \
    X(GW_MISSING_SECURITY_HEADER, "MissingSecurityHeader", 400,                                    \
      "Your request was missing a required header")                                                \
    X(GW_NO_SUCH_BUCKET, "NoSuchBucket", 404, "The specified bucket does not exist")               \
    X(GW_NO_SUCH_KEY, "NoSuchKey", 404, "The specified key does not exist.")                       \
    X(GW_NO_SUCH_UPLOAD, "NoSuchUpload", 404,                                                      \
      "The specified multipart upload does not exist. The upload ID may be invalid, or the "       \
      "upload may have been aborted or completed.")                                                \
    X(GW_NO_SUCH_VERSION, "NoSuchVersion", 404, "The specified version does not exist.")           \
    X(GW_NO_SUCH_BUCKET_POLICY, "NoSuchBucketPolicy", 404, "The bucket policy does not exist")     \
    X(GW_NO_SUCH_CORS, "NoSuchCORSConfiguration", 404, "The CORS configuration does not exist")    \
    X(GW_NO_SUCH_LIFECYCLE, "NoSuchLifecycleConfiguration", 404,                                   \
      "The lifecycle configuration does not exist")                                                \
    X(GW_NO_SUCH_TAG_SET, "NoSuchTagSet", 404, "The TagSet does not exist")                        \
    X(GW_NO_SUCH_WEBSITE, "NoSuchWebsiteConfiguration", 404,                                       \
      "The specified bucket does not have a website configuration")                                \
    X(GW_NO_SUCH_SSE_CONFIG, "ServerSideEncryptionConfigurationNotFoundError", 404,                \
      "The server side encryption configuration was not found")                                    \
    X(GW_INVALID_BUCKET_STATE, "InvalidBucketState", 409,                                          \
      "The request is not valid with the current state of the bucket.")                            \
    X(GW_NO_LOCK_CONFIG, "ObjectLockConfigurationNotFoundError", 404,                              \
      "Object Lock configuration does not exist for this bucket")                                  \
    X(GW_NO_OBJECT_LOCK, "NoSuchObjectLockConfiguration", 404,                                     \
      "The specified object does not have a ObjectLock configuration")                             \
    X(GW_UNSUPPORTED, "NotImplemented", 501,                                                       \
      "A header or query you provided asks for functionality this server does not provide")        \
    X(GW_NOT_MODIFIED, "NotModified", 304, "Not Modified")                                         \
    X(GW_PRECONDITION_FAILED, "PreconditionFailed", 412,                                           \
      "At least one of the preconditions you specified did not hold")                              \
    X(GW_REQUEST_TIME_TOO_SKEWED, "RequestTimeTooSkewed", 403,                                     \
      "The difference between the request time and the current time is too large.")                \
    X(GW_REQUEST_TIMEOUT, "RequestTimeout", 400,                                                   \
      "Your socket connection to the server was not read from or written to within the timeout "   \
      "period.")                                                                                   \
    X(GW_SERVICE_UNAVAILABLE, "ServiceUnavailable", 503,                                           \
      "Not enough healthy drives to serve the request; retry later")                               \
    X(GW_SIGNATURE_MISMATCH, "SignatureDoesNotMatch", 403,                                         \
      "The request signature we calculated does not match the signature you provided. Check "      \
      "your key and signing method.")                                                              \
    X(GW_SLOW_DOWN, "SlowDown", 503, "Please reduce your request rate.")                           \
    X(GW_STORAGE_FULL, "InsufficientStorage", 507, "The drives have no space left for this write") \
    X(GW_SHA256_MISMATCH, "XAmzContentSHA256Mismatch", 400,                                        \
      "The provided 'x-amz-content-sha256' header does not match what was computed.")

typedef enum {
#define GW_S3ERR_ENUM(name, code, status, msg) name,
    GW_S3ERR_LIST(GW_S3ERR_ENUM)
#undef GW_S3ERR_ENUM
        GW_S3ERR__COUNT
} gw_s3err;

const char *gw_s3err_code(gw_s3err e);    /* "NoSuchKey" */
int gw_s3err_status(gw_s3err e);          /* 404 */
const char *gw_s3err_message(gw_s3err e); /* default message */
/* Map an internal error to the S3 error a client should see (CM_ERR_NOSPC -> GW_STORAGE_FULL...).
 */
gw_s3err gw_s3err_from_cm(cm_err e);

#endif
