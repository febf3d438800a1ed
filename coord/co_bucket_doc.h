/*
 * co_bucket_doc.h - coord/ internal: the bucket namespace document's codec and the record helpers
 * shared by its changes (co_buckets.c) and its codec (co_bucket_doc.c).
 */
#ifndef CO_BUCKET_DOC_H
#define CO_BUCKET_DOC_H

#include "co_buckets.h"

/* A deep copy of n tags into *out (NULL when n is 0). */
cm_err co_bdoc_tags_copy(const co_tag *t, size_t n, co_tag **out);
/* 1 when the two tag lists are the same, in the same order. */
int co_bdoc_tags_equal(const co_tag *a, size_t na, const co_tag *b, size_t nb);
/* A record as given out singly: without its tags, CORS, policy, website and unknown members
 * (co_bucket's comment). */
co_bucket co_bdoc_untagged(const co_bucket *b);
/* Two string members (CORS or website configurations, policies; NULL: none) are the same. */
int co_bdoc_str_equal(const char *a, const char *b);
/* The JSON name of a consistency mode, NULL when it is none. */
const char *co_bdoc_consistency_name(uint8_t c);
/* 1 when the access settings are within their ranges. */
int co_bdoc_access_valid(unsigned acl, unsigned pab, unsigned own);
/* 1 when a default encryption is within its range (a bucket key only with SSE-S3). */
int co_bdoc_sse_valid(unsigned sse, unsigned bucket_key);
/* 1 when an Object Lock setting is one (docs/object-lock.md): a default retention only with lock,
 * lock only with versioning Enabled, a period in its unit's range exactly when there is a mode. */
int co_bdoc_lock_valid(unsigned versioning, unsigned lock, unsigned mode, unsigned unit,
                       uint64_t period);
/* co_buckets_encode, with the document's own unknown members (top; NULL: none). */
cm_err co_bdoc_encode(const co_bucket *b, size_t n, const char *top, char **out, size_t *len);
/* co_buckets_decode, also giving the document's own unknown members into *top (NULL: none) when
 * top is non-NULL. */
cm_err co_bdoc_decode(const uint8_t *value, size_t len, co_bucket **out, size_t *n, char **top);

#endif
