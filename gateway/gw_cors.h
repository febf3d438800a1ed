/*
 * gw_cors.h - CORS configurations (PutBucketCors) and their evaluation: which rule, if any,
 * allows a cross-origin request, and the Access-Control-* headers that answer it.
 *
 * Pure functions with no state, tested without a server (tests/unit/test_gateway_cors.c). The
 * parser is gw_parse_cors in gw_xmlparse.c (libxml2, as every request body); matching and the
 * answer are gw_cors.c; the operations, the preflight and the per-bucket cache are gw_corsops.c.
 *
 * Matching follows S3: the rules are tried in document order and the first rule that allows the
 * request wins. A rule allows it when one AllowedOrigin matches the Origin (case-sensitive; one
 * `*` matches any run of characters, so `*` alone matches every origin and `*.example.com` every
 * origin ending so), its AllowedMethod list holds the method (for a preflight, the one named by
 * Access-Control-Request-Method), and, for a preflight, every header named in
 * Access-Control-Request-Headers matches one AllowedHeader (case-insensitive, one `*` wildcard).
 */
#ifndef GW_CORS_H
#define GW_CORS_H

#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"

#define GW_CORS_MAX_RULES 100
#define GW_CORS_XML_CAP (64u * 1024) /* a PutBucketCors body (S3 allows 64 KB) */
/* A preflight asking for more headers than this is allowed by no rule. */
#define GW_CORS_MAX_REQ_HEADERS 100

/* AllowedMethod values, as bits. */
enum { GW_CORS_GET = 1, GW_CORS_PUT = 2, GW_CORS_POST = 4, GW_CORS_DELETE = 8, GW_CORS_HEAD = 16 };

typedef struct {
    char *id; /* NULL when the rule has none */
    char **origins;
    size_t norigins;
    unsigned methods; /* GW_CORS_* bits */
    char **headers;   /* AllowedHeader patterns */
    size_t nheaders;
    char **expose; /* ExposeHeader names */
    size_t nexpose;
    int64_t max_age; /* MaxAgeSeconds; -1 when absent */
} gw_cors_rule;

typedef struct {
    gw_cors_rule *rules;
    size_t n;
} gw_cors_config;

/*
 * Parse a CORSConfiguration document into out (released with gw_cors_config_release). Errors as
 * S3's: GW_MALFORMED_XML (not the document, a rule without AllowedOrigin or AllowedMethod, more
 * than GW_CORS_MAX_RULES rules, a bad MaxAgeSeconds, an ID longer than 255 characters),
 * GW_INVALID_REQUEST with msg set (an unsupported method, an origin or header with more than one
 * wildcard), GW_ENTITY_TOO_LARGE past cap. msg (msg_cap bytes) is "" when S3 says nothing more.
 */
gw_s3err gw_parse_cors(const char *xml, size_t len, size_t cap, gw_cors_config *out, char *msg,
                       size_t msg_cap);
void gw_cors_config_release(gw_cors_config *c);

/* The GW_CORS_* bit of an HTTP method (exact, upper case), 0 for another one. */
unsigned gw_cors_method_bit(const char *method);
/* s matches pattern, where one `*` in pattern stands for any run of characters. */
int gw_cors_wildcard(const char *pattern, const char *s, int nocase);

/*
 * The first rule of c allowing a request from origin with method (the actual method, or for a
 * preflight the Access-Control-Request-Method) and, when req_headers is not NULL, the headers it
 * names (a comma-separated Access-Control-Request-Headers value; more than
 * GW_CORS_MAX_REQ_HEADERS of them: none); NULL when none does.
 */
const gw_cors_rule *gw_cors_match(const gw_cors_config *c, const char *origin, const char *method,
                                  const char *req_headers);

/* The Access-Control-* headers of an allowed request (heap strings; NULL: not sent). */
typedef struct gw_cors_answer {
    char *allow_origin;  /* the origin, or "*" when the rule's matching origin is "*" */
    char *allow_methods; /* the rule's methods, "GET, PUT" */
    char *allow_headers; /* preflight: the requested headers, as asked */
    char *expose;        /* the rule's ExposeHeader list, "ETag, x-amz-request-id" */
    int64_t max_age;     /* -1: none */
    int credentials;     /* Access-Control-Allow-Credentials: true (not for "*") */
} gw_cors_answer;

/* Fill out for rule (matched by gw_cors_match with the same origin and req_headers). CM_OK or
 * CM_ERR_NOMEM (out released). */
cm_err gw_cors_answer_make(const gw_cors_rule *rule, const char *origin, const char *req_headers,
                           gw_cors_answer *out);
void gw_cors_answer_release(gw_cors_answer *a);

#endif
