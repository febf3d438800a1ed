/*
 * gw_wire.h - the S3 wire helpers: XML writing and parsing, listing responses, ranges,
 * conditional requests, names and query strings. Pure functions with no state; the request
 * handlers (gw_server.c and the operation files gw_object.c, gw_bucket.c, gw_multipart.c,
 * gw_copy.c) call them.
 *
 * Conventions:
 *  - Functions that answer "what should the client see" return a gw_s3err (GW_OK on success).
 *  - XML writers append to a caller-owned evbuffer and return CM_ERR_NOMEM if libevent could not
 *    grow it (the buffer then holds a partial document the caller must drop).
 *  - Every string argument is borrowed for the call; results that outlive it are heap copies
 *    released with the matching *_release function (which leaves the struct zeroed).
 *  - Element names and order follow botocore's S3 model (service-2.json) and AWS's examples.
 *
 * Implementation: gw_xml.c (writer, escaping, error body), gw_xmlparse.c (libxml2 request
 * parsing), gw_listing.c (response documents), gw_http.c (query, range, conditions, names,
 * copy source, metadata).
 */
#ifndef GW_WIRE_H
#define GW_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "cm_err.h"
#include "gw_err.h"
#include "md.h"

#define GW_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"
#define GW_MAX_PARTS 10000 /* parts per upload, and entries in CompleteMultipartUpload */
#define GW_MAX_DELETE 1000 /* objects per DeleteObjects request */
#define GW_META_MAX 2048   /* user metadata: sum of name and value bytes */
#define GW_TOKEN_MAX 2048  /* longest continuation token accepted (base64 chars) */

/* ======================================================================================== */
/* XML writer (gw_xml.c)                                                                    */
/* ======================================================================================== */

/*
 * A writer appends to buf and remembers the first failure, so a handler can write a whole
 * document and check once with gw_xml_status(). Text is escaped: & < > " ' become entities;
 * TAB, LF and CR become &#x9; &#xA; &#xD; (so parsers keep them verbatim); every other byte or
 * sequence XML 1.0 forbids (other C0 controls, invalid UTF-8, surrogates, U+FFFE/U+FFFF) becomes
 * U+FFFD. Keys that contain such characters survive a listing only with encoding-type=url.
 */
typedef struct {
    struct evbuffer *buf;
    int failed;
} gw_xml;

void gw_xml_init(gw_xml *x, struct evbuffer *buf);
/* CM_OK, or CM_ERR_NOMEM if any append failed. */
cm_err gw_xml_status(const gw_xml *x);
/* <?xml version="1.0" encoding="UTF-8"?>\n */
void gw_xml_begin(gw_xml *x);
/* <name xmlns="http://s3.amazonaws.com/doc/2006-03-01/"> */
void gw_xml_open_root(gw_xml *x, const char *name);
void gw_xml_open(gw_xml *x, const char *name);  /* <name> */
void gw_xml_close(gw_xml *x, const char *name); /* </name> */
/* Escaped character data (see above), no element around it. */
void gw_xml_escape(gw_xml *x, const char *s, size_t len);
/* <name>escaped text</name>; text NULL is written as an empty element. */
void gw_xml_text(gw_xml *x, const char *name, const char *text);
void gw_xml_text_n(gw_xml *x, const char *name, const char *text, size_t len);
/* <name>"escaped etag"</name>: the ETag with its quotes (written as &quot;). */
void gw_xml_etag(gw_xml *x, const char *name, const char *etag);
void gw_xml_i64(gw_xml *x, const char *name, int64_t v);
void gw_xml_u64(gw_xml *x, const char *name, uint64_t v);
void gw_xml_bool(gw_xml *x, const char *name, int v); /* true / false */
/* ISO 8601 with milliseconds: 2026-11-25T16:00:00.000Z */
void gw_xml_time(gw_xml *x, const char *name, int64_t unix_ms);

/*
 * A whole S3 error document:
 *   <?xml ...?>\n<Error><Code/><Message/><Resource/><RequestId/></Error>
 * message NULL or "" uses the table's default (never an empty Message: the aws CLI crashes on
 * one). resource and request_id may be NULL (then written empty).
 */
cm_err gw_xml_error(struct evbuffer *buf, gw_s3err e, const char *message, const char *resource,
                    const char *request_id);

/* "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"; NULL for MD_CK_NONE. */
const char *gw_cksum_name(md_cksum_alg alg);
/* Case-insensitive; MD_CK_NONE when the name is unknown. */
md_cksum_alg gw_cksum_parse(const char *name);

/* ======================================================================================== */
/* XML request bodies (gw_xmlparse.c, libxml2)                                              */
/* ======================================================================================== */

/*
 * Every parser takes the body (xml, len) and the caller's cap: a longer body is refused with
 * GW_ENTITY_TOO_LARGE before parsing. Elements are matched by local name, with or without the
 * S3 namespace. Documents with a DOCTYPE are refused (GW_MALFORMED_XML): S3 bodies never have
 * one, and this rules out entity expansion and external entities. The network is never used.
 * Unknown elements are ignored.
 */

typedef struct {
    uint32_t number;     /* 1..10000 */
    char etag[64];       /* without quotes */
    md_cksum_alg ck_alg; /* the first Checksum* element present, MD_CK_NONE when none */
    char ck_value[72];   /* its base64 value */
} gw_complete_part;

typedef struct {
    gw_complete_part *parts; /* in the order given, which is strictly ascending */
    size_t n;                /* 1..GW_MAX_PARTS */
} gw_complete_req;

/*
 * <CompleteMultipartUpload><Part><PartNumber/><ETag/>[<ChecksumCRC32/>...]</Part>...
 * GW_MALFORMED_XML: not XML, wrong root, no parts, more than GW_MAX_PARTS, a part without a
 * number or ETag, a number that is not a decimal integer. GW_INVALID_ARGUMENT: a number outside
 * 1..10000. GW_INVALID_PART_ORDER: numbers not strictly ascending (checked here, so the caller
 * need not). GW_INVALID_PART: an ETag longer than any we issue (it cannot match).
 */
gw_s3err gw_parse_complete(const char *xml, size_t len, size_t cap, gw_complete_req *out);
void gw_complete_req_release(gw_complete_req *r);

typedef struct {
    char *key;        /* as given (may be "": the handler reports it per key) */
    char *version_id; /* NULL when absent */
} gw_delete_obj;

typedef struct {
    int quiet;
    gw_delete_obj *objs;
    size_t n; /* 1..GW_MAX_DELETE */
} gw_delete_req;

/*
 * <Delete><Quiet>true</Quiet><Object><Key/><VersionId/></Object>...</Delete>
 * GW_MALFORMED_XML: not XML, wrong root, no objects, more than GW_MAX_DELETE, an Object
 * without Key, Quiet not true/false.
 */
gw_s3err gw_parse_delete(const char *xml, size_t len, size_t cap, gw_delete_req *out);
void gw_delete_req_release(gw_delete_req *r);

/* Values match md_bucket.versioning. */
typedef enum { GW_VERS_UNSET = 0, GW_VERS_ENABLED = 1, GW_VERS_SUSPENDED = 2 } gw_versioning;

/*
 * <VersioningConfiguration><Status>Enabled|Suspended</Status><MfaDelete/></...>
 * *status is GW_VERS_UNSET when Status is absent; *mfa_delete is 1 for MfaDelete Enabled.
 * GW_MALFORMED_XML for bad XML, a wrong root or another Status/MfaDelete value.
 */
gw_s3err gw_parse_versioning(const char *xml, size_t len, size_t cap, gw_versioning *status,
                             int *mfa_delete);
/*
 * <PublicAccessBlockConfiguration> with BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy,
 * RestrictPublicBuckets (true|false; absent = false) into flags: bits 0..3 in that order
 * (MD_PAB_*). GW_MALFORMED_XML otherwise.
 */
gw_s3err gw_parse_public_access_block(const char *xml, size_t len, size_t cap, uint8_t *flags);
/* <OwnershipControls><Rule><ObjectOwnership>X</...></Rule></...>: X into out[outcap] (not
 * checked); GW_MALFORMED_XML otherwise. */
gw_s3err gw_parse_ownership(const char *xml, size_t len, size_t cap, char *out, size_t outcap);

/*
 * Optional body of CreateBucket: <CreateBucketConfiguration><LocationConstraint>region<...>.
 * An empty (or all-whitespace) body is GW_OK with *location NULL; so is a configuration without
 * LocationConstraint. *location is a heap string the caller frees. GW_MALFORMED_XML otherwise.
 */
gw_s3err gw_parse_create_bucket(const char *xml, size_t len, size_t cap, char **location);

/*
 * <Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging> (PutObjectTagging,
 * PutBucketTagging) into a heap array of pairs (name = tag key), in the order given; free with
 * md_meta_free. GW_MALFORMED_XML: not XML, wrong root, no TagSet, a Tag without exactly one Key
 * and one Value, more than 4 * GW_MAX_BUCKET_TAGS tags. Limits are gw_tags_check's.
 */
gw_s3err gw_parse_tagging(const char *xml, size_t len, size_t cap, md_meta **tags, size_t *n);

/*
 * For a parser in another file (gw_lcrules.c): the body checked and parsed as every parser here
 * does it (cap, UTF-8 only, no DTD, the root's local name). On GW_OK *doc is the xmlDocPtr (free
 * with xmlFreeDoc) and *rootp its root xmlNodePtr: void pointers, so this header needs no libxml2.
 */
gw_s3err gw_xml_load(const char *xml, size_t len, size_t cap, const char *root, void **doc,
                     void **rootp);
/* The text of an element of such a document (an xmlNodePtr) as a heap string (free it), without
 * the white space around it when trim is set; NULL when out of memory. */
char *gw_xml_node_text(void *node, int trim);

/*
 * PutBucketEncryption:
 * <ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>
 * <SSEAlgorithm>AES256</SSEAlgorithm></...><BucketKeyEnabled>bool</BucketKeyEnabled></Rule></...>
 * (exactly one Rule). *bucket_key gets BucketKeyEnabled (0 when absent). GW_UNSUPPORTED for
 * aws:kms and aws:kms:dsse (msg says so), GW_INVALID_ARGUMENT for another algorithm or a
 * KMSMasterKeyID with AES256, GW_MALFORMED_XML otherwise.
 */
gw_s3err gw_parse_encryption(const char *xml, size_t len, size_t cap, int *bucket_key, char *msg,
                             size_t msg_cap);

/* ======================================================================================== */
/* Tags (gw_tagging.c)                                                                      */
/* ======================================================================================== */

#define GW_MAX_OBJECT_TAGS 10
#define GW_MAX_BUCKET_TAGS 50
#define GW_TAG_KEY_MAX 128   /* Unicode characters */
#define GW_TAG_VALUE_MAX 256 /* Unicode characters */

/*
 * Check a tag set against S3's limits for max tags (GW_MAX_OBJECT_TAGS or GW_MAX_BUCKET_TAGS):
 * GW_OK, or the error S3 answers with its message in msg[cap]: more than 10 object tags is
 * BadRequest, more than 50 bucket tags InvalidTag; an empty, too long, "aws:"-prefixed or
 * duplicate key, a too long value or a character outside S3's set is InvalidTag.
 */
gw_s3err gw_tags_check(const md_meta *tags, size_t n, size_t max, char *msg, size_t cap);
/*
 * The x-amz-tagging header ("k1=v1&k2=v2", form-encoded: '+' is a space) into a heap array.
 * "" is no tags; "k" alone is a key with an empty value. GW_INVALID_ARGUMENT (msg set) for a bad
 * escape, a NUL, a duplicate key or absurdly many pairs. Limits are gw_tags_check's.
 */
gw_s3err gw_tags_from_query(const char *hdr, md_meta **tags, size_t *n, char *msg, size_t cap);
/* Deep copy (GW_INTERNAL when out of memory). */
gw_s3err gw_tags_copy(const md_meta *src, size_t n, md_meta **out, size_t *nout);
/* The <Tagging> document of GetObjectTagging / GetBucketTagging. */
cm_err gw_xml_tagging(struct evbuffer *buf, const md_meta *tags, size_t n);

/* ======================================================================================== */
/* Response documents (gw_listing.c)                                                        */
/* ======================================================================================== */

/*
 * What the handler got from the request, echoed into listing responses. Strings are decoded
 * values (NULL = parameter absent). With encoding_url, keys and the fields S3 documents as
 * encoded are percent-encoded with cm_url_encode keeping '/' (RFC 3986 unreserved characters
 * and '/' pass, the rest is %XX, so ' ' is %20 and '+' is %2B): botocore decodes them with
 * unquote_plus, which reads that form back exactly. Encoded fields:
 *   V1: Key, Prefix, Delimiter, Marker, NextMarker, CommonPrefixes/Prefix
 *   V2: Key, Prefix, Delimiter, StartAfter, CommonPrefixes/Prefix
 *   versions: Key, Prefix, Delimiter, KeyMarker, NextKeyMarker, CommonPrefixes/Prefix
 *   uploads: Key, Prefix, Delimiter, KeyMarker, NextKeyMarker, CommonPrefixes/Prefix
 */
typedef struct {
    const char *bucket;
    const char *prefix;
    const char *delimiter;
    size_t max_keys;        /* as requested (after defaulting/capping by the handler) */
    int encoding_url;       /* encoding-type=url */
    const char *owner_id;   /* Owner/ID of every listed object; NULL = omit Owner */
    const char *owner_name; /* Owner/DisplayName; NULL = same as owner_id */
    /* ListObjectsV2 */
    const char *continuation_token; /* as the client sent it (still encoded) */
    const char *start_after;
    int fetch_owner; /* V2 lists Owner only when asked; V1 always does */
    /* ListObjects (V1) */
    const char *marker;
    /* ListObjectVersions */
    const char *key_marker;
    const char *version_id_marker;
} gw_list_params;

/*
 * ListBucketResult (V2) for res. KeyCount = objects + common prefixes; NextContinuationToken =
 * gw_token_encode(res->next_marker) when truncated. Delete markers in res are skipped.
 */
cm_err gw_xml_list_v2(struct evbuffer *buf, const gw_list_params *p, const md_list_result *res);
/* ListBucketResult (V1); NextMarker only when a delimiter was given and res is truncated. */
cm_err gw_xml_list_v1(struct evbuffer *buf, const gw_list_params *p, const md_list_result *res);
/*
 * ListVersionsResult: one Version or DeleteMarker per entry (IsLatest from the entry, VersionId
 * from the record or "null"), then the CommonPrefixes. When truncated, NextKeyMarker =
 * res->next_marker and NextVersionIdMarker = res->next_version_marker (else the last entry's id).
 */
cm_err gw_xml_list_versions(struct evbuffer *buf, const gw_list_params *p,
                            const md_list_result *res);

typedef struct {
    const char *bucket;
    const char *prefix;
    const char *delimiter;
    const char *key_marker;
    const char *upload_id_marker;
    size_t max_uploads;
    int encoding_url;
} gw_uploads_params;

/* ListMultipartUploadsResult; Initiator and Owner of each upload are md_upload.owner. */
cm_err gw_xml_list_uploads(struct evbuffer *buf, const gw_uploads_params *p,
                           const md_upload_list *res);

typedef struct {
    const char *bucket;
    const char *key;
    const char *upload_id;
    uint32_t part_number_marker; /* as requested (0 = none) */
    size_t max_parts;
    const char *owner_id;      /* initiator/owner of the upload; NULL = omit */
    md_cksum_alg ck_alg;       /* the upload's checksum algorithm */
    const char *storage_class; /* the upload's ("" or NULL = STANDARD) */
} gw_parts_params;

/* ListPartsResult; NextPartNumberMarker = the last part listed (or the marker when none). */
cm_err gw_xml_list_parts(struct evbuffer *buf, const gw_parts_params *p, const md_part *parts,
                         size_t n, int truncated);

/* ListAllMyBucketsResult: Owner, then Buckets/Bucket{Name, CreationDate}. */
cm_err gw_xml_list_buckets(struct evbuffer *buf, const char *owner_id, const char *owner_name,
                           const md_bucket *buckets, size_t n);

/* InitiateMultipartUploadResult{Bucket, Key, UploadId}. */
cm_err gw_xml_initiate(struct evbuffer *buf, const char *bucket, const char *key,
                       const char *upload_id);

/*
 * CompleteMultipartUploadResult{Location, Bucket, Key, ETag, Checksum<alg>, ChecksumType}.
 * etag without quotes; checksum elements only when ck_alg != MD_CK_NONE.
 */
cm_err gw_xml_complete(struct evbuffer *buf, const char *location, const char *bucket,
                       const char *key, const char *etag, md_cksum_alg ck_alg,
                       md_cksum_type ck_type, const char *ck_value);

/* CopyObjectResult (part 0) or CopyPartResult (part 1): ETag, LastModified, Checksum<alg>. */
cm_err gw_xml_copy_result(struct evbuffer *buf, int part, const char *etag, int64_t mtime_ms,
                          md_cksum_alg ck_alg, const char *ck_value);

/* One object's outcome in DeleteObjects. */
typedef struct {
    const char *key;
    const char *version_id;     /* echoed when the request named one; NULL otherwise */
    gw_s3err err;               /* GW_OK = deleted (deleting a missing key is also GW_OK) */
    const char *message;        /* NULL = the table's default */
    int delete_marker;          /* the version made or destroyed is a delete marker */
    char marker_version_id[40]; /* that marker's id ("" = none to report) */
} gw_delete_outcome;

/* DeleteResult: Deleted{Key[, VersionId][, DeleteMarker, DeleteMarkerVersionId]} (omitted when
 * quiet) and Error{Key[, VersionId], Code, Message}. */
cm_err gw_xml_delete_result(struct evbuffer *buf, int quiet, const gw_delete_outcome *o, size_t n);

/* LocationConstraint: empty for us-east-1 (or NULL/""), else the region. */
cm_err gw_xml_location(struct evbuffer *buf, const char *region);
/* VersioningConfiguration: empty when never enabled, else Status Enabled/Suspended. */
cm_err gw_xml_versioning(struct evbuffer *buf, gw_versioning status);

/*
 * Continuation tokens are opaque to clients: standard base64 of the key to resume after.
 * encode: heap string (caller frees), NULL on allocation failure.
 * decode: *marker is a heap string; GW_INVALID_ARGUMENT when the token is empty, longer than
 * GW_TOKEN_MAX, not strict base64, or decodes to something that is not a key (NUL byte).
 */
char *gw_token_encode(const char *marker);
gw_s3err gw_token_decode(const char *token, char **marker);

/* ======================================================================================== */
/* HTTP helpers (gw_http.c)                                                                 */
/* ======================================================================================== */

typedef struct {
    char *name;    /* decoded */
    char *value;   /* decoded; "" when has_value is 0 */
    int has_value; /* "?acl" has none, "?prefix=" has an empty one */
} gw_qparam;

/*
 * A request-target split into its path and query. The path is percent-decoded with '+' kept
 * as '+' (S3 paths); it may contain any byte except that %00 is refused, so it is a C string.
 * Query names and values are percent-decoded with '+' read as a space (form encoding, which is
 * what SDKs expect; they send a real '+' as %2B). raw_path and raw_query keep the bytes as sent
 * (SigV4 signs those). Parameters keep their order; a repeated name is kept twice. All of it lives
 * in one heap block (params points at its start): strings are never freed one by one, and a
 * caller may drop parameters by moving entries of params and lowering n.
 */
typedef struct {
    char *path; /* decoded, starts with '/' */
    size_t path_len;
    char *raw_path;  /* as sent */
    char *raw_query; /* as sent, without '?'; "" when none */
    gw_qparam *params;
    size_t n;
} gw_query;

/*
 * Parse target[0..len) ("/bucket/key?x=y", or an absolute-form "http://host/..."; the
 * fragment, if any, is dropped). GW_BAD_REQUEST for a malformed escape, %00, a target not
 * starting with '/', or no memory (then q is left zeroed). Release with gw_query_release.
 */
gw_s3err gw_query_parse(gw_query *q, const char *target, size_t len);
void gw_query_release(gw_query *q);
/* First parameter with that exact name, or NULL. */
const gw_qparam *gw_query_find(const gw_query *q, const char *name);
/* Its value ("" when given without one), or NULL when absent. */
const char *gw_query_get(const gw_query *q, const char *name);

/*
 * A decimal parameter such as max-keys: GW_OK with *out = dflt when s is NULL; the value capped
 * at max; GW_INVALID_ARGUMENT when s is empty, negative or not all digits.
 */
gw_s3err gw_parse_count(const char *s, uint64_t dflt, uint64_t max, uint64_t *out);

/*
 * Range header against an object of size bytes. GW_OK with *applies 0 when there is no header,
 * when it is not a syntactically valid single byte range, or when it names several ranges
 * (S3 then serves the whole object); *applies 1 with [*first, *last] (inclusive, last clamped
 * to size-1) for bytes=a-b, bytes=a-, bytes=-n (the last n bytes; all of them when n >= size).
 * GW_INVALID_RANGE (416) when a >= size, for bytes=-0, and for any range of an empty object.
 */
gw_s3err gw_range_parse(const char *hdr, uint64_t size, int *applies, uint64_t *first,
                        uint64_t *last);

/*
 * x-amz-copy-source-range: exactly "bytes=a-b" with a <= b. GW_INVALID_ARGUMENT when malformed,
 * GW_INVALID_RANGE when b >= size.
 */
gw_s3err gw_copy_range_parse(const char *hdr, uint64_t size, uint64_t *first, uint64_t *last);

/*
 * Does an If-Match / If-None-Match value match etag (hex, without quotes)? The value is "*"
 * (matches any existing object) or a comma-separated list of entity tags, each optionally W/
 * prefixed and quoted ("abc", W/"abc", or a bare abc that some clients send), with spaces
 * around. Comparison is of the opaque tags (W/ ignored: our ETags are all strong and clients
 * echo what we sent). 1 = match, 0 = no match (also for an empty list or a NULL etag).
 */
int gw_etag_match(const char *list, const char *etag);

/*
 * GET/HEAD preconditions, RFC 7232 section 6 as S3 applies them. NULL = header absent.
 *  1. If-Match present and not matching                        -> GW_PRECONDITION_FAILED
 *  2. else If-Unmodified-Since valid and object modified after  -> GW_PRECONDITION_FAILED
 *  3. If-None-Match present and matching                       -> GW_NOT_MODIFIED
 *  4. else If-Modified-Since valid and not modified after      -> GW_NOT_MODIFIED
 * Dates are compared in whole seconds (HTTP dates have no fraction); unparsable dates are
 * ignored. The copy-source variants (x-amz-copy-source-if-*) use the same rules but answer 412
 * where GET answers 304: pass copy_source = 1.
 */
gw_s3err gw_cond_check(const char *if_match, const char *if_none_match,
                       const char *if_modified_since, const char *if_unmodified_since,
                       const char *etag, int64_t mtime_ms, int copy_source);

/*
 * Bucket names (S3-NOTES section 6 and AWS's current rules): 3..63 of [a-z0-9.-], starting and
 * ending with a letter or digit, no "..", ".-" or "-.", not shaped like an IPv4 address (four
 * dot-separated groups of 1-3 digits), no reserved prefix ("xn--", "sthree-", "amzn-s3-demo-")
 * or suffix ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3").
 * GW_OK or GW_INVALID_BUCKET_NAME.
 */
gw_s3err gw_bucket_name_check(const char *name);

/*
 * Object keys: 1..1024 bytes of valid UTF-8 (S3 defines keys as UTF-8; a key that is not would
 * turn into U+FFFD in every listing and could never be listed back, so it is refused), without
 * NUL (our key space separates fields with it). GW_KEY_TOO_LONG beyond 1024 bytes,
 * GW_INVALID_ARGUMENT when empty or not valid UTF-8.
 */
gw_s3err gw_key_check(const char *key, size_t len);
/* 1 when s[0..len) is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF). */
int gw_utf8_valid(const char *s, size_t len);

typedef struct {
    char *bucket;
    char *key;
    char *version_id; /* NULL when not given */
} gw_copy_source;

/*
 * x-amz-copy-source: "[/]bucket/key[?versionId=id]", percent-encoded ('+' stays '+', as in a
 * path). GW_INVALID_ARGUMENT when the bucket or key is missing or malformed, another query
 * parameter is given, or an escape is bad; gw_key_check's errors for the key.
 */
gw_s3err gw_copy_source_parse(const char *hdr, gw_copy_source *out);
void gw_copy_source_release(gw_copy_source *cs);

/*
 * User metadata from x-amz-meta-* headers. Feed every request header to gw_meta_add: other
 * headers are ignored, names are lowercased and stored without the prefix, a repeated name gets
 * its values joined with ",". The size (sum of name and value bytes, as S3 counts) must stay
 * within GW_META_MAX: GW_METADATA_TOO_LARGE otherwise. The handler may take items/n (moving
 * them into md_object.meta/nmeta, then zeroing the set) or release the set.
 */
typedef struct {
    md_meta *items;
    size_t n, cap;
    size_t total;
} gw_meta_set;

void gw_meta_init(gw_meta_set *m);
/* GW_OK, GW_METADATA_TOO_LARGE, GW_INTERNAL when out of memory. */
gw_s3err gw_meta_add(gw_meta_set *m, const char *name, const char *value);
void gw_meta_release(gw_meta_set *m);

#endif
