/*
 * gw_lc.h - bucket lifecycle (docs/lifecycle.md): the configuration document's parser, checker
 * and writer, rule matching (gw_lcrules.c, pure functions), and the worker that applies the rules
 * of every bucket (gw_lifecycle.c).
 *
 * A parsed configuration is plain heap data (gw_lc_config_release frees it). Times are Unix
 * milliseconds; a lifecycle "day" lasts day_s seconds (86400 unless the test clock of
 * [lifecycle] day_s shortens it).
 */
#ifndef GW_LC_H
#define GW_LC_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "gw.h"
#include "gw_err.h"
#include "md.h"

#define GW_LC_MAX_RULES 1000
#define GW_LC_ID_MAX 255                /* characters (code points; the body is UTF-8) */
#define GW_LC_XML_CAP (2 * 1024 * 1024) /* a PUT body larger than this is EntityTooLarge */

typedef struct {
    char id[GW_LC_ID_MAX * 4 + 1];
    int enabled; /* Status Enabled (1) or Disabled (0) */
    /* Filter: all of these must hold (an absent one always holds). */
    char *prefix; /* "" = every key */
    md_meta *tags;
    size_t ntags;
    uint64_t size_gt, size_lt; /* size > size_gt (when has_gt) and size < size_lt (has_lt) */
    int has_gt, has_lt;
    int legacy_prefix; /* the rule used the top-level <Prefix>, not <Filter> */
    /* Actions; 0 (or -1 for the date) = absent. */
    uint32_t exp_days;
    int64_t exp_date_ms; /* Expiration Date: midnight UTC; -1 = none */
    int exp_marker;      /* ExpiredObjectDeleteMarker true */
    uint32_t nc_days;    /* NoncurrentVersionExpiration NoncurrentDays */
    uint32_t nc_newer;   /* NoncurrentVersionExpiration NewerNoncurrentVersions */
    uint32_t abort_days; /* AbortIncompleteMultipartUpload DaysAfterInitiation */
} gw_lc_rule;

typedef struct {
    gw_lc_rule *rules;
    size_t n;
} gw_lc_config;

/*
 * Parse and check a <LifecycleConfiguration> body (at most cap bytes) as S3 does: GW_OK, or
 * MalformedXML / InvalidArgument / InvalidRequest / NotImplemented (Transition actions: cairn
 * has one storage class) with S3's message in msg[cap_msg] (msg "" = the code's default). A rule
 * without ID gets a generated one. On failure *out is left empty.
 */
gw_s3err gw_lc_parse(const char *xml, size_t len, size_t cap, gw_lc_config *out, char *msg,
                     size_t cap_msg);
void gw_lc_config_release(gw_lc_config *c);
/* The <LifecycleConfiguration> document of c (what GetBucketLifecycleConfiguration answers and
 * what the store keeps). CM_ERR_NOMEM when buf could not grow. */
cm_err gw_lc_write(struct evbuffer *buf, const gw_lc_config *c);

/* Does rule's filter select an object of this key, size and tags? (Status is not looked at.) */
int gw_lc_rule_matches(const gw_lc_rule *rule, const char *key, uint64_t size, const md_meta *tags,
                       size_t ntags);
/* The part of the filter a listing can answer: prefix and size (tags not looked at). */
int gw_lc_rule_selects(const gw_lc_rule *rule, const char *key, uint64_t size);
/*
 * When an object written at mtime_ms is due for expiration under rule: S3 counts days from the
 * write and rounds up to the next day boundary (midnight UTC with day_s 86400), so the result is
 * the first multiple of day_s seconds at or after mtime + days; a Date rule's date. -1 when the
 * rule has no current-version expiration.
 */
int64_t gw_lc_expiry_ms(const gw_lc_rule *rule, int64_t mtime_ms, uint32_t day_s);
/* As gw_lc_expiry_ms for AbortIncompleteMultipartUpload of an upload initiated at init_ms. */
int64_t gw_lc_abort_ms(const gw_lc_rule *rule, int64_t init_ms, uint32_t day_s);

/*
 * One version of a key as the worker sees it (versioned buckets; a never-versioned bucket's
 * objects are all current). noncurrent_ms: when it became noncurrent, i.e. when the next newer
 * version was written (S3 counts NoncurrentDays from there), -1 for the current version;
 * newer_noncurrent: how many noncurrent versions of the key are newer than it; lone: the current
 * version is a delete marker and the key has no other version (an expired object delete marker).
 */
typedef struct {
    uint64_t size;
    int64_t mtime_ms;
    int64_t noncurrent_ms;
    uint32_t newer_noncurrent;
    int delete_marker;
    int lone;
} gw_lc_version;

typedef enum {
    GW_LC_KEEP = 0,
    GW_LC_EXPIRE_CURRENT,    /* DELETE without a version id: a delete marker when versioned */
    GW_LC_EXPIRE_NONCURRENT, /* delete that version for good */
    GW_LC_REMOVE_MARKER      /* delete the lone delete marker (by its version id) */
} gw_lc_action;

/* When a version noncurrent since noncurrent_ms is due under rule's NoncurrentDays (rounded up to
 * a day boundary as gw_lc_expiry_ms); -1 when the rule has no noncurrent expiration. */
int64_t gw_lc_noncurrent_ms(const gw_lc_rule *rule, int64_t noncurrent_ms, uint32_t day_s);
/*
 * What rule, if enabled, does at now to version v of key, looking at the filter's prefix and size
 * only (the caller checks tags with gw_lc_rule_matches when the rule has some): the current
 * version expires by Days/Date (never a delete marker: Days does not remove markers), a lone
 * current delete marker goes by ExpiredObjectDeleteMarker, a noncurrent version (marker or not)
 * goes NoncurrentDays after it became noncurrent unless it is among the NewerNoncurrentVersions
 * newest noncurrent ones. A delete marker's size is 0.
 */
gw_lc_action gw_lc_version_action(const gw_lc_rule *rule, const char *key, const gw_lc_version *v,
                                  int64_t now, uint32_t day_s);
/* "YYYY-MM-DDT00:00:00[.000](Z|+00:00)" or "YYYY-MM-DD" into Unix ms: 0 ok, -1 not a date,
 * 1 a valid date and time that is not midnight UTC. */
int gw_lc_parse_date(const char *s, int64_t *ms);

/* ---- the worker (gw_lifecycle.c) ---- */

typedef struct {
    double rate;         /* [lifecycle] rate: objects and uploads examined per second; 1000 */
    uint32_t interval_s; /* [lifecycle] interval_s: from the end of a pass to the next; 3600 */
    uint32_t day_s;      /* [lifecycle] day_s: seconds per lifecycle day; 86400 */
    /* A cluster node (NULL on a single node: every record is this node's): 1 when the record of
     * bucket/key (an object, or an upload of that key) is this node's to apply rules to, so each
     * is done by one node; called on the worker's thread only. */
    int (*mine)(void *arg, const char *bucket, const char *key);
    void *mine_arg;
} gw_lc_worker_config;

void gw_lc_worker_config_defaults(gw_lc_worker_config *c);

typedef struct gw_lc gw_lc;
/*
 * Start the lifecycle worker over g's store (cfg NULL: defaults) and attach it to g for the admin
 * status. It resumes a pass a previous run left unfinished (its cursor in the store), else starts
 * one interval_s after the last pass ended. CM_ERR_INVAL for a rate <= 0 or day_s 0. On a cluster
 * node start it once the replicated records are served (gw_set_repl), with cfg->mine set.
 */
cm_err gw_lc_start(gw *g, const gw_lc_worker_config *cfg, gw_lc **out);
/* Stop (a page in progress finishes, the cursor stays for the next start), detach, free. NULL is
 * a no-op. Call before gw_free. */
void gw_lc_stop(gw *g, gw_lc *w);
/*
 * x-amz-expiration for o, the current version of bucket/o->key (PUT, GET and HEAD answers): 1 and
 * out filled with `expiry-date="<RFC 1123 date>", rule-id="<ID>"` when an enabled Expiration
 * Days/Date rule selects o (the earliest expiry when several do), else 0 (also without a worker).
 * The bucket's rules are kept parsed in a small cache; a miss reads the store once (blocking,
 * short). On a cluster node each call copies the document from the node's copy of the etcd
 * bucket document (memory) and reparses only when it differs from the cached one. Any thread.
 */
int gw_lc_expiration(gw *g, const char *bucket, const md_object *o, char *out, size_t cap);
/* Forget the cached rules: a configuration was set or deleted, or a bucket deleted. Any thread. */
void gw_lc_invalidate(gw *g);
/* The "lifecycle" member of /admin/status: a JSON object appended to b (counters under a lock). */
void gw_lc_status_json(gw_lc *w, struct evbuffer *b);

#endif
