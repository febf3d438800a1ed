/*
 * gw_post.h - POST Object (browser form uploads): the multipart/form-data parser (gw_form.c) and
 * the check of the SigV4-signed POST policy (gw_postpolicy.c). Pure functions with no server
 * state, tested without a server (tests/unit/test_gateway_post.c, tests/fuzz/fuzz_form.c); the
 * operation itself is gw_post.c.
 *
 * The form is parsed as it streams in. Fields before the file part are kept (bounded: at most
 * GW_FORM_MAX_FIELDS fields, GW_FORM_MAX_FIELD_BYTES bytes of names and values in all, part
 * headers of at most GW_FORM_MAX_HEADER bytes, a preamble of at most GW_FORM_MAX_PREAMBLE bytes),
 * so the policy can be checked before a byte of the file is taken; the file's bytes are then
 * passed on as they arrive, holding back only what could be the start of the closing boundary.
 * As in S3 the file is the part named "file" and must be the last one that counts: anything
 * after it is ignored. Whatever a client sends, the parser holds at most the bounds above plus
 * one boundary in memory.
 */
#ifndef GW_POST_H
#define GW_POST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "gw_auth.h"
#include "gw_err.h"

struct evbuffer;

#define GW_FORM_MAX_FIELDS 100
#define GW_FORM_MAX_FIELD_BYTES (64 * 1024)
#define GW_FORM_MAX_HEADER 8192
#define GW_FORM_MAX_PREAMBLE 1024

typedef struct {
    char *name;  /* as sent (names compare case-insensitively) */
    char *value; /* NUL-terminated; len bytes (a value may hold a NUL) */
    size_t len;
} gw_form_field;

typedef struct gw_form gw_form;

/*
 * A parser for a body of the given Content-Type ("multipart/form-data; boundary=..."). NULL
 * *out and GW_MALFORMED_POST when it is not multipart/form-data with a valid boundary (1 to 70
 * characters), GW_INTERNAL when out of memory.
 */
gw_s3err gw_form_new(const char *content_type, gw_form **out);
void gw_form_free(gw_form *f); /* NULL is a no-op */

/*
 * Consume what it can of in (the body as received so far; consumed bytes are removed, the rest
 * is kept for the next call with more appended). File bytes are moved to file_out (by reference:
 * evbuffer_remove_buffer, no copy). Returns GW_OK or the error that ends the request:
 * GW_MALFORMED_POST (bad framing, a part without a name, a repeated field, too many fields or
 * header bytes), GW_MAX_POST_PRE_DATA (fields too large); once it failed, every later call returns
 * the same error. A close before any file part is no error (gw_form_in_file says). A call returns
 * as soon as the file part begins, before moving any of its bytes, so the caller can check the
 * fields first (gw_form_in_file); the next calls stream the file.
 */
gw_s3err gw_form_feed(gw_form *f, struct evbuffer *in, struct evbuffer *file_out);
/* 1 once the file part has begun (the fields are complete). */
int gw_form_in_file(const gw_form *f);
/* 1 once the file part's closing boundary was read (the file is complete). */
int gw_form_done(const gw_form *f);
/* The fields before the file (borrowed from f). */
const gw_form_field *gw_form_fields(const gw_form *f, size_t *n);
/* The file part's filename ("" when it has none) and Content-Type (NULL when none). */
const char *gw_form_filename(const gw_form *f);
const char *gw_form_file_type(const gw_form *f);
/* The value of field name (case-insensitive), or NULL. */
const gw_form_field *gw_form_get(const gw_form_field *fields, size_t n, const char *name);

/* ---- the POST policy (gw_postpolicy.c) ---- */

typedef struct {
    const char *bucket;          /* from the URL: the "bucket" condition's value */
    const gw_form_field *fields; /* the form's fields */
    size_t nfields;
    time_t now;
    const char *region; /* the server's; the credential's scope must name it */
    gw_secret_fn secret;
    void *secret_arg;
} gw_post_request;

typedef struct {
    char access_key[128];
    uint64_t min_len, max_len; /* content-length-range (0 and UINT64_MAX when none) */
    char message[320];         /* the answer's message when not GW_OK ("" for the default) */
} gw_post_policy;

/*
 * Check the form as S3 does: x-amz-algorithm AWS4-HMAC-SHA256, the credential's scope, the
 * signature of the policy field (HMAC-SHA256 with the SigV4 signing key of the credential's
 * secret, looked up through secret), the policy's expiration, each condition (eq, starts-with,
 * content-length-range; bucket, key and every other field), and that every field except policy,
 * x-amz-signature, file and x-ignore-* is covered by a condition. GW_OK with out filled, else the
 * S3 error with out->message: GW_ACCESS_DENIED (expired, a condition failed, an extra field),
 * GW_INVALID_ARGUMENT (a required field missing), GW_INVALID_ACCESS_KEY, GW_SIGNATURE_MISMATCH,
 * GW_INVALID_POLICY_DOCUMENT (not base64 JSON, no expiration or conditions, a bad condition).
 */
gw_s3err gw_post_policy_check(const gw_post_request *req, gw_post_policy *out);

/* The stored key: the key field with each "${filename}" replaced by filename (heap; NULL: no
 * memory). */
char *gw_post_key(const char *key, const char *filename);

#endif
