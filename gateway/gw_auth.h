/*
 * gw_auth.h - AWS Signature Version 4: header and presigned-query authentication, payload modes,
 * and the aws-chunked body decoder (signed chunks, unsigned chunks with trailers); Signature
 * Version 2 (gw_sigv2.c).
 *
 * Signed means signed: a request that carries an x-amz-* header its signature does not cover is
 * refused (GW_ACCESS_DENIED, "There were headers present in the request which were not signed"),
 * because such headers change what a request does (x-amz-copy-source turns a PUT into a copy).
 * The exact rule, per scheme, is in docs/auth.md.
 *
 * The functions here are pure: they see the request as method, raw target and header list, and
 * look secrets up through a callback, so they are tested with the published AWS examples without a
 * server. Signature comparisons are constant-time.
 */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cm_checksum.h"
#include "gw_err.h"

struct evbuffer;

typedef enum {
    GW_PAYLOAD_HASHED = 0,                 /* x-amz-content-sha256 is the hex SHA-256 of the body */
    GW_PAYLOAD_UNSIGNED,                   /* UNSIGNED-PAYLOAD (always for presigned URLs) */
    GW_PAYLOAD_STREAMING_SIGNED,           /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD */
    GW_PAYLOAD_STREAMING_SIGNED_TRAILER,   /* STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER */
    GW_PAYLOAD_STREAMING_UNSIGNED_TRAILER, /* STREAMING-UNSIGNED-PAYLOAD-TRAILER */
} gw_payload_mode;

/* The request as the authenticator sees it (all borrowed). */
typedef struct {
    const char *method;
    const char *target; /* raw request-target: path as sent + "?" + query as sent */
    size_t nheaders;
    const char *const *names;  /* header names as received (any case) */
    const char *const *values; /* values, trimmed */
    time_t now;                /* current time, for skew and expiry checks */
    const char *vhost_bucket;  /* bucket named by a virtual-hosted Host, else NULL (SigV2) */
    int sigv2_off;             /* refuse Signature Version 2 requests (operator's choice) */
} gw_auth_request;

/* The message of the AccessDenied answer to an x-amz-* header the signature does not cover (S3's).
 */
#define GW_MSG_HEADERS_NOT_SIGNED "There were headers present in the request which were not signed"

/* Look up the secret key of access_key into secret (cap bytes). CM_ERR_NOTFOUND when unknown. */
typedef cm_err (*gw_secret_fn)(void *arg, const char *access_key, char *secret, size_t cap);

typedef struct {
    char access_key[128];
    char region[64];
    char service[16];
    char date[9];            /* yyyymmdd of the credential scope */
    char amz_date[17];       /* request time, yyyymmddThhmmssZ */
    char seed_signature[65]; /* hex signature of the request (chunk chain starts here) */
    uint8_t signing_key[32];
    gw_payload_mode mode;
    char payload_hash[65]; /* for GW_PAYLOAD_HASHED: the claimed hex SHA-256 */
    int presigned;
    int anonymous;            /* request carried no credentials at all */
    const char *message;      /* on some errors: a static message for the answer, else NULL */
    char unsigned_header[64]; /* the first x-amz-* header found unsigned (lowercase), for logs */
} gw_auth_result;

/*
 * Authenticate a request: Authorization header (AWS4-HMAC-SHA256) or presigned query
 * (X-Amz-Algorithm...). A request with neither is anonymous: GW_OK with out->anonymous = 1 (the
 * caller decides whether anonymous access is allowed). Errors: GW_INVALID_ACCESS_KEY (unknown key),
 * GW_SIGNATURE_MISMATCH, GW_AUTH_HEADER_MALFORMED (bad syntax, or region not `region` - the
 * message should name the expected region), GW_AUTH_QUERY_ERROR, GW_ACCESS_DENIED (presigned URL
 * expired, or expiry beyond 7 days), GW_REQUEST_TIME_TOO_SKEWED (more than 15 minutes off for
 * header auth), GW_MISSING_SECURITY_HEADER (no x-amz-content-sha256 with header auth),
 * GW_INVALID_ARGUMENT (bad x-amz-content-sha256 value). An x-amz-* header the signature does not
 * cover, a SigV2 request while req->sigv2_off, and a SigV2 presigned URL valid for more than 7
 * days are GW_ACCESS_DENIED with out->message saying why. `region` is the server's region;
 * requests signed for another region are rejected.
 */
gw_s3err gw_auth_check(const gw_auth_request *req, const char *region, gw_secret_fn secret,
                       void *secret_arg, gw_auth_result *out);

/*
 * Signature Version 2 (gw_sigv2.c): "Authorization: AWS AK:sig" or a presigned query with
 * AWSAccessKeyId/Expires/Signature, which `aws s3 presign` and boto3 still produce by default.
 * Every x-amz-* header is part of a V2 signature, however many the request carries.
 * gw_auth_check dispatches here; exposed for tests. Errors as for gw_auth_check.
 */
gw_s3err gw_sigv2_check(const gw_auth_request *req, const char *vhost_bucket, gw_secret_fn secret,
                        void *secret_arg, gw_auth_result *out);

/*
 * Canonical pieces, exposed for tests: the canonical request and the string to sign for a
 * request, given the signed header list ("host;x-amz-date") and payload hash string. Heap
 * strings; caller frees.
 */
char *gw_sigv4_canonical_request(const gw_auth_request *req, const char *signed_headers,
                                 const char *payload_hash, int presigned);
/* A 64-hex-digit signature copied lowercased into out; -1 when it is not one. */
int gw_sigv4_parse_signature(const char *s, size_t len, char out[65]);
void gw_sigv4_signing_key(const char *secret, const char *date, const char *region,
                          const char *service, uint8_t out[32]);
/*
 * gw_auth_check keeps derived signing keys in a bounded process-wide cache (64 entries keyed by
 * access key, scope and a hash of the secret). Hits and misses since start, for tests and metrics.
 */
void gw_sigv4_cache_stats(uint64_t *hits, uint64_t *misses);

/* ---- aws-chunked decoding ---- */

typedef struct gw_chunked gw_chunked;

/*
 * A decoder for an aws-chunked body. For the signed modes auth supplies the signing key, scope
 * and seed signature and every chunk signature is checked (and the trailer signature for the
 * -TRAILER mode). For the trailer modes, the trailer named by x-amz-trailer (trailer_name, e.g.
 * "x-amz-checksum-crc32", may be NULL) is parsed and exposed.
 */
cm_err gw_chunked_new(const gw_auth_result *auth, const char *trailer_name, gw_chunked **out);
void gw_chunked_free(gw_chunked *dec);

/*
 * Decode as much of in as possible, removing the consumed bytes from in and appending payload to
 * out. Returns GW_OK (need more input or done), or the error that ends the request:
 * GW_SIGNATURE_MISMATCH (bad chunk or trailer signature), GW_INCOMPLETE_BODY / GW_INVALID_REQUEST
 * (malformed framing, or a byte after the final chunk and trailer: `in` is the whole HTTP body),
 * GW_INVALID_ARGUMENT (chunk header too long). Payload of a chunk is passed
 * on as it arrives, before its signature can be checked; the caller must not commit anything
 * before gw_chunked_done() says the body ended well.
 */
gw_s3err gw_chunked_feed(gw_chunked *dec, struct evbuffer *in, struct evbuffer *out);
/* 1 when the final zero-length chunk (and trailer, if any) has been read and verified. */
int gw_chunked_done(const gw_chunked *dec);
/* Value of a trailer header received (case-insensitive name), or NULL. */
const char *gw_chunked_trailer(const gw_chunked *dec, const char *name);

#endif
