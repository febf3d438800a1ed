/*
 * co_buckets.h - the cluster's bucket namespace in etcd (docs/coordination.md, "Buckets").
 *
 * One versioned document per cluster, co_key(cluster, "buckets"), holds every bucket's record;
 * it is changed only by compare-and-set on the revision it was read at (retried on conflict, a
 * bounded number of times), so of two nodes creating the same bucket at once exactly one
 * succeeds. The document is JSON, the buckets sorted by name:
 *
 *   {"v":1,"buckets":[{"name":"photos","created_ms":1733353200123,"owner":"AKIA...",
 *                      "versioning":0,"id":"9f2c4e1a7b3d5c60","consistency":"available"}, ...]}
 *
 * "id" is random per creation: it tells this node's creation from another's with the same owner
 * when the answer of a compare-and-set was lost, and a bucket re-created after a delete from the
 * old one. "consistency" is the bucket's mode (docs/replication.md): left out when "strong" (so
 * documents written before it existed read as strong), else "available"; any other value makes
 * the document invalid. Other unknown members are ignored (a later version may add settings).
 *
 * A bucket's tags (PutBucketTagging) are the member "tags": an array of [key, value] pairs, left
 * out when there are none (co_buckets_set_tags changes them with the same compare-and-set). Its
 * CORS configuration, canned ACL, PublicAccessBlock, object ownership and policy are members too
 * (below), changed the same way.
 *
 * co_buckets follows the document from a background thread (co_doc) and keeps the last version
 * it applied in memory and in a cache file, so a node keeps its bucket list through an etcd
 * outage and across a restart meanwhile. Each applied version is handed to the owner's hooks as a
 * difference against the previous one (added, removed), which the server uses to mirror the
 * namespace into its local metadata store. Readers never wait on etcd; create and remove block
 * (bounded by the client's deadlines): call them from a worker thread.
 */
#ifndef CO_BUCKETS_H
#define CO_BUCKETS_H

#include <stddef.h>
#include <stdint.h>

#include "co.h"

#define CO_KIND_BUCKETS "buckets" /* the bucket namespace document */
#define CO_BUCKET_NAME_MAX 64     /* bytes with the NUL (S3: 63 characters) */
#define CO_BUCKET_OWNER_MAX 128
#define CO_BUCKETS_RETRIES 16 /* compare-and-set attempts before giving up (CM_ERR_CONFLICT) */

/* A bucket's consistency mode: the values of rp_consistency (repl/rp.h; coord/ does not depend
 * on repl/, cmd/cluster_buckets.c checks that they agree). */
#define CO_CONSISTENCY_STRONG 0    /* the default; "consistency" left out of the JSON */
#define CO_CONSISTENCY_AVAILABLE 1 /* "consistency":"available" */

/* Bucket tags (PutBucketTagging): S3's limits, in bytes (128 and 256 characters of UTF-8). */
#define CO_BUCKET_TAGS_MAX 50
#define CO_TAG_KEY_MAX 512
#define CO_TAG_VALUE_MAX 1024

typedef struct {
    char *key; /* heap strings */
    char *value;
} co_tag;

/* A bucket's CORS configuration (PutBucketCors): the XML document, at most this many bytes (S3
 * allows 64 KB; the whole namespace is one etcd value, so a cluster keeps them small). */
#define CO_BUCKET_CORS_MAX 16384

typedef struct {
    char name[CO_BUCKET_NAME_MAX];
    int64_t created_ms;
    char owner[CO_BUCKET_OWNER_MAX];
    uint8_t versioning;  /* as md_bucket: 0 never enabled, 1 enabled, 2 suspended */
    uint64_t id;         /* random per creation */
    uint8_t consistency; /* CO_CONSISTENCY_* */
    /* The bucket's tags, in the order set: owned by the arrays this module hands out
     * (co_buckets_decode, co_buckets_read: free them with co_buckets_array_free). A single
     * record given out (lookup, an add's *have) never carries them (NULL, 0): co_buckets_tags. */
    co_tag *tags;
    size_t ntags;
    char *cors; /* the CORS configuration (heap, NULL: none): owned as the tags are */
    /* Access settings (docs/users.md): the canned ACL, the PublicAccessBlock flags and the object
     * ownership as md_bucket holds them (MD_ACL_*, MD_PAB_*, MD_OWN_*: coord/ keeps the numbers),
     * and the bucket policy's JSON (heap, NULL: none; owned as the tags are, never given out by a
     * single record: co_buckets_policy). */
    uint8_t acl, pab, ownership;
    char *policy;
    char *website;   /* the website configuration (heap, NULL: none): owned as the tags are */
    char *lifecycle; /* the lifecycle configuration (heap, NULL: none): likewise */
    /* Default encryption (docs/encryption.md): sse 1 (SSE-S3) or 0 (none), and BucketKeyEnabled
     * as given (0/1, only with sse), as md_bucket's sse_default and sse_bucket_key. */
    uint8_t sse, sse_bucket_key;
    /* The members of the record this build does not know (a compact JSON object, heap; NULL:
     * none), written back unchanged by every change, so that a node of an older build keeps what
     * a newer one added (a rolling upgrade). Owned as the tags are. */
    char *extra;
    /* Object Lock (docs/object-lock.md, "On a cluster"), as md_bucket's lock fields: enabled
     * (0/1, for good, only with versioning 1), the default retention's mode (1 GOVERNANCE,
     * 2 COMPLIANCE, 0 none) and its period in units (1 days up to 36500, 2 years up to 100). */
    uint8_t lock, lock_mode, lock_unit;
    uint32_t lock_period;
} co_bucket;

#define CO_BUCKET_ACL_MAX 4           /* the highest canned ACL number */
#define CO_BUCKET_PAB_BITS 0x8fu      /* the PublicAccessBlock flags a record may carry */
#define CO_BUCKET_OWNERSHIP_MAX 2     /* the highest ownership number */
#define CO_BUCKET_POLICY_MAX 20480    /* bytes of policy JSON (S3's limit) */
#define CO_BUCKET_WEBSITE_MAX 16384   /* bytes of website configuration XML */
#define CO_BUCKET_LIFECYCLE_MAX 20480 /* bytes of lifecycle configuration XML */

/* Free an array of records and their tags (NULL is a no-op). */
void co_buckets_array_free(co_bucket *b, size_t n);
void co_tags_free(co_tag *t, size_t n);

/* ---- the document ---- */

/* The access settings are the members "acl", "pab" and "ownership" (numbers, left out when 0)
 * and "policy" (a string, left out when none); a value out of range refuses the document. */
/* A record's tags are the member "tags", left out when there are none: an array of [key, value]
 * pairs in the order set, at most CO_BUCKET_TAGS_MAX, each within the byte limits above. Its
 * CORS configuration is the member "cors", a string of at most CO_BUCKET_CORS_MAX bytes, left out
 * when there is none; its website configuration likewise "website" (CO_BUCKET_WEBSITE_MAX), its
 * lifecycle configuration "lifecycle" (CO_BUCKET_LIFECYCLE_MAX). */

/* JSON of n records (any order: sorted by name on output; each record's extra members with it)
 * into *out (malloc'd, NUL-ended).
 * CM_ERR_INVAL for a record whose consistency is not a CO_CONSISTENCY_* value. */
cm_err co_buckets_encode(const co_bucket *b, size_t n, char **out, size_t *len);
/*
 * Parse a document into *out (malloc'd, sorted by name; NULL when empty); members this build does
 * not know go to each record's extra (co_buckets_encode writes them back). CM_ERR_CORRUPT for
 * anything that is not a version-1 document of valid records (bad JSON, a missing or oversized
 * name or owner, a duplicate name, a consistency other than "strong" or "available").
 */
cm_err co_buckets_decode(const uint8_t *value, size_t len, co_bucket **out, size_t *n);
/* The record named name in a sorted array, or NULL. */
const co_bucket *co_buckets_find(const co_bucket *b, size_t n, const char *name);

/*
 * Add want to the document at key by compare-and-set, retried from a fresh read on conflict.
 * CM_OK: added; CM_ERR_EXISTS: a bucket of that name is there (*have receives it when non-NULL);
 * CM_ERR_CONFLICT after CO_BUCKETS_RETRIES lost races; CM_ERR_UNAVAILABLE when etcd does not
 * answer; CM_ERR_CORRUPT when the stored document does not parse (nothing is written over it). A
 * lost answer is settled by reading again: the bucket there with want's id means it was added.
 */
cm_err co_buckets_add(co_client *c, const char *key, const co_bucket *want, co_bucket *have);
/* Remove name likewise: CM_OK, CM_ERR_NOTFOUND, CM_ERR_CONFLICT, CM_ERR_UNAVAILABLE,
 * CM_ERR_CORRUPT. */
cm_err co_buckets_remove(co_client *c, const char *key, const char *name);
/*
 * Set the consistency (CO_CONSISTENCY_*) of the bucket named name likewise. CM_OK (also when it
 * had that mode already: nothing is written), CM_ERR_NOTFOUND, CM_ERR_INVAL (not a mode),
 * CM_ERR_CONFLICT, CM_ERR_UNAVAILABLE, CM_ERR_CORRUPT. *was receives the mode it had and *rev
 * the document's revision afterwards, when non-NULL.
 */
cm_err co_buckets_set_consistency(co_client *c, const char *key, const char *name,
                                  uint8_t consistency, uint8_t *was, int64_t *rev);
/*
 * Replace the tags of the bucket named name likewise (n 0: remove them; at most
 * CO_BUCKET_TAGS_MAX, else CM_ERR_INVAL). CM_OK (nothing is written when it has those tags
 * already), CM_ERR_NOTFOUND, CM_ERR_INVAL, CM_ERR_CONFLICT, CM_ERR_UNAVAILABLE, CM_ERR_CORRUPT.
 * *rev (when non-NULL) receives the document's revision afterwards.
 */
cm_err co_buckets_set_tags(co_client *c, const char *key, const char *name, const co_tag *tags,
                           size_t n, int64_t *rev);
/* Replace the CORS configuration likewise (NULL: remove it; longer than CO_BUCKET_CORS_MAX:
 * CM_ERR_TOOBIG). Answers as co_buckets_set_tags. */
cm_err co_buckets_set_cors(co_client *c, const char *key, const char *name, const char *cors,
                           int64_t *rev);
/* Replace those of the acl, pab and ownership of name that fields names (CO_ACCESS_*) likewise
 * (the same answers; CM_ERR_INVAL out of range), and its policy (NULL: none; CM_ERR_TOOBIG past
 * CO_BUCKET_POLICY_MAX). */
#define CO_ACCESS_ACL 1u /* the values of MD_ACCESS_* (meta/md.h) */
#define CO_ACCESS_PAB 2u
#define CO_ACCESS_OWNERSHIP 4u
cm_err co_buckets_set_access(co_client *c, const char *key, const char *name, uint8_t acl,
                             uint8_t pab, uint8_t ownership, unsigned fields, int64_t *rev);
cm_err co_buckets_set_policy(co_client *c, const char *key, const char *name, const char *policy,
                             int64_t *rev);
/* Replace the website configuration likewise (NULL: remove it; CM_ERR_TOOBIG past
 * CO_BUCKET_WEBSITE_MAX). */
cm_err co_buckets_set_website(co_client *c, const char *key, const char *name, const char *xml,
                              int64_t *rev);
/* And the lifecycle configuration (CO_BUCKET_LIFECYCLE_MAX). */
cm_err co_buckets_set_lifecycle(co_client *c, const char *key, const char *name, const char *xml,
                                int64_t *rev);
/* Set the versioning state of name (1 enabled, 2 suspended; CM_ERR_INVAL otherwise: a bucket
 * never goes back to 0) likewise (the member "versioning"); CM_ERR_LOCKED for 2 on a bucket with
 * Object Lock. */
cm_err co_buckets_set_versioning(co_client *c, const char *key, const char *name, uint8_t state,
                                 int64_t *rev);
/* Set the default encryption of name likewise (the members "sse" and "sse_bucket_key", left out
 * when 0; sse 0 removes it; CM_ERR_INVAL when sse > 1, bucket_key > 1, or a bucket key without
 * sse). */
cm_err co_buckets_set_sse(co_client *c, const char *key, const char *name, uint8_t sse,
                          uint8_t bucket_key, int64_t *rev);
/* Read the document: *out sorted (NULL when none), *rev its mod revision (0 when absent). */
cm_err co_buckets_read(co_client *c, const char *key, co_bucket **out, size_t *n, int64_t *rev);

/* ---- following it ---- */

/*
 * Called on the follower's thread, in revision order, for each change between the version
 * applied before and the new one (a version that does not decode is skipped and counted; a
 * deleted document changes nothing: it is no evidence that the buckets are gone). At open the
 * cached version's buckets are all reported as added. Hooks may block (local commits).
 */
typedef struct {
    void (*added)(void *arg, const co_bucket *b);
    void (*removed)(void *arg, const co_bucket *b);
    void *arg;
    /* Optional: a bucket whose access settings (acl, pab, ownership, policy) changed without a
     * re-creation; called once the new version is applied (lookups already answer it). */
    void (*access_changed)(void *arg, const co_bucket *b);
} co_buckets_hooks;

typedef struct co_buckets co_buckets;

/*
 * Follow co_key(cluster, "buckets"). cache_path (NULL: none) keeps the last applied version.
 * Never waits for etcd. CM_ERR_INVAL for a bad cluster id or no endpoint.
 */
cm_err co_buckets_open(const co_config *cfg, const char *cluster, const char *cache_path,
                       const co_buckets_hooks *hooks, co_buckets **out);
void co_buckets_free(co_buckets *f);

/* From memory: the record of name as last applied, or for a name that version lacks, as the
 * last co_buckets_lookup_fresh read found it while that read is newer than the applied version
 * (so are the tags and strings below). CM_OK or CM_ERR_NOTFOUND. Thread-safe. */
cm_err co_buckets_lookup(co_buckets *f, const char *name, co_bucket *out);
/*
 * From memory when the applied version has the name; otherwise from an etcd read that started
 * after the call (a linearizable read, so a bucket created through another node a moment ago is
 * found before this node's watch delivers it), else, when etcd does not answer, from memory.
 * Blocking. The reads are shared (docs/coordination.md "Buckets"): one at a time, each answering
 * every call that came before it started, and at most one per CO_BUCKETS_FRESH_GAP_MS, so a
 * flood of lookups of unknown names costs etcd at most 1000 / CO_BUCKETS_FRESH_GAP_MS reads a
 * second, and a call waits at most that gap plus one read.
 */
#define CO_BUCKETS_FRESH_GAP_MS 50
cm_err co_buckets_lookup_fresh(co_buckets *f, const char *name, co_bucket *out);
/*
 * co_buckets_add / co_buckets_remove on the followed key, each with a client of its own. A create
 * that succeeded waits (at most CO_BUCKETS_APPLY_WAIT_MS) until this follower applied it, so
 * co_buckets_lookup on this node knows the bucket (and its consistency) when create returns.
 */
#define CO_BUCKETS_APPLY_WAIT_MS 1000
cm_err co_buckets_create(co_buckets *f, const co_bucket *want, co_bucket *have);
cm_err co_buckets_delete(co_buckets *f, const char *name);
/* co_buckets_set_tags on the followed key; like a create, it returns once this follower applied
 * the change (at most CO_BUCKETS_APPLY_WAIT_MS), so co_buckets_tags here reads it back. */
cm_err co_buckets_tag(co_buckets *f, const char *name, const co_tag *tags, size_t n);
/* From memory: a copy of the tags of name as last applied (*out: co_tags_free; NULL when none).
 * CM_OK, CM_ERR_NOTFOUND (no such bucket), CM_ERR_NOMEM. Thread-safe, never waits on etcd. */
cm_err co_buckets_tags(co_buckets *f, const char *name, co_tag **out, size_t *n);
/* The same for the CORS configuration: co_buckets_set_cors on the followed key, returning once
 * applied here; and from memory a copy of it (*out: free; NULL when none). */
cm_err co_buckets_cors_set(co_buckets *f, const char *name, const char *cors);
cm_err co_buckets_cors(co_buckets *f, const char *name, char **out);
/* The same for the access settings (co_buckets_lookup answers acl, pab and ownership) and the
 * policy (*out: free; NULL when none). */
cm_err co_buckets_access_set(co_buckets *f, const char *name, uint8_t acl, uint8_t pab,
                             uint8_t ownership, unsigned fields);
cm_err co_buckets_policy_set(co_buckets *f, const char *name, const char *policy);
/* co_buckets_set_versioning on the followed key, returning once applied here (co_buckets_lookup
 * answers the state). */
cm_err co_buckets_versioning_set(co_buckets *f, const char *name, uint8_t state);
/* Object Lock on (for good) with a default retention (mode 0: none; unit and period 0 then):
 * the lock members by compare-and-set. CM_ERR_LOCKED when the bucket's versioning is not 1
 * (Enabled); CM_ERR_INVAL for values out of range; CM_ERR_NOTFOUND. A bucket with lock refuses
 * versioning 2 (co_buckets_set_versioning: CM_ERR_LOCKED). Returns once applied here. */
cm_err co_buckets_set_lock(co_client *c, const char *key, const char *name, uint8_t mode,
                           uint8_t unit, uint32_t period, int64_t *rev);
cm_err co_buckets_lock_set(co_buckets *f, const char *name, uint8_t mode, uint8_t unit,
                           uint32_t period);
/* The same for the default encryption (co_buckets_lookup answers sse and sse_bucket_key). */
cm_err co_buckets_sse_set(co_buckets *f, const char *name, uint8_t sse, uint8_t bucket_key);
cm_err co_buckets_policy(co_buckets *f, const char *name, char **out);
/* The same for the website configuration (*out: free; NULL when none). */
cm_err co_buckets_website_set(co_buckets *f, const char *name, const char *xml);
cm_err co_buckets_website(co_buckets *f, const char *name, char **out);
/* The same for the lifecycle configuration; lifecycle_next: the first bucket after `after` (NULL:
 * from the start) in name order that has one, as last applied (CM_ERR_NOTFOUND: none). */
cm_err co_buckets_lifecycle_set(co_buckets *f, const char *name, const char *xml);
cm_err co_buckets_lifecycle(co_buckets *f, const char *name, char **out);
cm_err co_buckets_lifecycle_next(co_buckets *f, const char *after, char *out, size_t cap);

typedef struct {
    size_t nbuckets;        /* in the applied version */
    int64_t mod_rev;        /* its etcd revision; 0 when none */
    uint64_t applied;       /* versions applied since open */
    uint64_t rejected;      /* versions that did not decode */
    int connected;          /* the watch is connected */
    uint64_t fresh_lookups; /* co_buckets_lookup_fresh calls the applied version did not answer */
    uint64_t fresh_reads;   /* etcd reads they made (shared) */
} co_buckets_status;

void co_buckets_get_status(co_buckets *f, co_buckets_status *out);
/* Wait until a version at revision >= rev is applied: CM_OK or CM_ERR_TIMEOUT. */
cm_err co_buckets_wait(co_buckets *f, int64_t rev, int timeout_ms);

#endif
