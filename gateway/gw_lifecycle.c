/*
 * gw_lifecycle.c - bucket lifecycle: Put/Get/DeleteBucketLifecycleConfiguration (?lifecycle on
 * a bucket) and the worker that applies the rules (docs/lifecycle.md).
 *
 * Requests. PUT needs Content-MD5 or an x-amz-checksum-* header (S3 requires one), parses and
 * checks the body (gw_lc_parse), and stores the document gw_lc_write makes of it (IDs filled in)
 * in the store's "lifecycle" database (md_lc_config_set, on a worker); GET answers that document
 * or 404 NoSuchLifecycleConfiguration; DELETE removes it (204, also when there was none). On a
 * cluster node the document is the bucket's member "lifecycle" of the etcd bucket document
 * (g->ns.lifecycle_set / lifecycle_get, the get from the follower's memory); every rule kind
 * works there too (docs/lifecycle.md, "Cluster nodes"). A cluster gateway made without those
 * namespace functions (embedded in unit tests; every cairn server node has them) answers PUT
 * with 501.
 *
 * The worker is one thread. A pass walks the buckets that have a configuration, in name order;
 * in each, first its keys (md_list_versions pages, in key order, delete markers included), then
 * its unfinished multipart uploads (md_upload_list_query pages). Each key goes through key_step
 * with its versions, newest first (md_key_versions when the page cut them short): for each
 * version the first enabled rule that selects it (prefix and size from the listing, tags from the
 * version's record when a rule needs them) and whose time has passed acts (gw_lc_version_action:
 * the current version expires, a noncurrent one goes NoncurrentDays after its successor's write
 * unless among the NewerNoncurrentVersions newest, a lone delete marker goes by
 * ExpiredObjectDeleteMarker, or by Days/Date once as old). Every deletion is gw_object_remove,
 * DeleteObject's own path: the current version without a version id (a delete marker in a versioned
 * bucket), conditioned on the ETag listed so an object rewritten meanwhile is kept; the others by
 * version id, so Object Lock refuses what it protects (counted, retried at the next pass), a
 * noncurrent one on the condition, checked in the store's transaction, that it is still noncurrent
 * with the successor and the count of newer versions listed (md_cond noncurrent). Each upload whose
 * AbortIncompleteMultipartUpload time has passed is aborted as AbortMultipartUpload does
 * (md_upload_abort, then its parts' chunks freed).
 *
 * x-amz-expiration (gw_lc_expiration): the current-version expiration rules of up to EXP_SLOTS
 * buckets are kept parsed in a direct-mapped table under exp_mu; every change of a configuration
 * (or a bucket's deletion) bumps its generation, and a load that raced a change is used once and
 * not kept. A cluster node's configuration changes through any node, so there a slot also keeps
 * the document it was parsed from, compared with the node's copy (memory) at each use.
 *
 * Bounded rate: pages hold at most min(256, rate) entries and the thread sleeps so that the
 * entries examined since the pass (re)started stay within rate per second. Restarts: after each
 * page the position (bucket, phase, last key / upload id) and the pass's counters are written to
 * the state blob "cursor"; a worker that starts finds it and resumes the pass where it stood. At
 * the end of a pass "last" records its times and counters and the cursor is cleared; the next
 * pass starts interval_s seconds later. Both blobs are little records of this file (encoded
 * below, big-endian), opaque to the store.
 *
 * On a cluster node (cfg.mine set) every node runs a worker, over the buckets the etcd document
 * gives a configuration (lifecycle_next); the cursor and counters stay in the node's own store.
 * Objects come from the replicated listing (a bucket never versioned: gw_meta_list, current
 * objects, scan_current; a versioned one: gw_meta_list_versions in scan_objects, a key cut by the
 * page read again from cluster_key_versions) and uploads from rp_upload_list; the worker acts only
 * on those of the partitions cfg.mine says are this node's (the first live home: each record is
 * done by one node), through the same gw_object_remove (the replicated delete, ETag- or
 * noncurrent-conditioned, the latter checked again by the partition's leader) and
 * rp_upload_abort; a lone delete marker only while a fresh listing of its key still shows it alone
 * (cluster_lone_marker). The listing reads every partition, so the rate bounds entries listed,
 * not only those acted on.
 *
 * Threading: the worker thread does every blocking call; status readers (the admin API, on the
 * loops) copy counters under mu. gw_lc_stop wakes a sleeping worker and joins it; a page in
 * progress finishes first (at most 256 entries).
 */
#include "gw_int.h"
#include "gw_lc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"
#include "rp_upload.h"

#define MOD "lifecycle"
#define PAGE_MAX 256

/* ---- where the configuration lives ---- */

/* A cluster node keeps it in the bucket's member of the etcd bucket document (g->ns), a single
 * node in the store's lifecycle database. */
static int ns_served(const gw *g)
{
    return g->ns.lifecycle_set && g->ns.lifecycle_get && g->ns.lifecycle_next;
}

/* The stored document (*doc: free), CM_ERR_NOTFOUND when there is none. */
static cm_err config_get(gw *g, const char *bucket, char **doc, size_t *len)
{
    *doc = NULL;
    *len = 0;
    if (!gw_cluster_node(g))
        return md_lc_config_get(g->md, bucket, doc, len);
    cm_err e = ns_served(g) ? g->ns.lifecycle_get(g->ns.arg, bucket, doc) : CM_ERR_NOTFOUND;
    if (e == CM_OK && !*doc)
        e = CM_ERR_NOTFOUND;
    *len = e == CM_OK ? strlen(*doc) : 0;
    return e;
}

/* Store doc (NUL-ended, len bytes; NULL: delete). Blocks: a worker. */
static cm_err config_set(gw *g, const char *bucket, const char *doc, size_t len)
{
    if (gw_cluster_node(g))
        return ns_served(g) ? g->ns.lifecycle_set(g->ns.arg, bucket, doc) : CM_OK;
    return doc ? md_lc_config_set(g->md, bucket, doc, len) : md_lc_config_del(g->md, bucket);
}

/* The next bucket after `after` (NULL: the first) that has a configuration, into out. */
static cm_err next_bucket(gw *g, const char *after, char *out, size_t cap)
{
    if (gw_cluster_node(g))
        return ns_served(g) ? g->ns.lifecycle_next(g->ns.arg, after, out, cap) : CM_ERR_NOTFOUND;
    char **names = NULL;
    size_t n = 0;
    cm_err e = md_lc_buckets(g->md, after, 1, &names, &n);
    if (e == CM_OK && n == 0)
        e = CM_ERR_NOTFOUND;
    if (e == CM_OK)
        snprintf(out, cap, "%s", names[0]);
    md_lc_names_free(names, n);
    return e;
}

/* ---- requests ---- */

typedef struct {
    struct evbuffer *doc; /* PUT: the document to store */
    cm_err err;
} lc_req;

static void lc_req_free(void *p)
{
    lc_req *st = p;
    if (st && st->doc)
        evbuffer_free(st->doc);
    free(st);
}

static void put_work(gw_req *r)
{
    lc_req *st = r->op;
    size_t len = evbuffer_get_length(st->doc);
    const char *p = evbuffer_add(st->doc, "", 1) == 0 ? (const char *)evbuffer_pullup(st->doc, -1)
                                                      : NULL; /* NUL-ended for the namespace */
    st->err = p ? config_set(r->g, r->bucket, p, len) : CM_ERR_NOMEM;
}

static void del_work(gw_req *r)
{
    lc_req *st = r->op;
    st->err = config_set(r->g, r->bucket, NULL, 0);
}

static void set_done(gw_req *r)
{
    lc_req *st = r->op;
    gw_lc_invalidate(r->g); /* after the commit: a load from now on sees it */
    if (st->err == CM_ERR_TOOBIG) {
        gw_error(r, GW_INVALID_REQUEST,
                 "The lifecycle configuration is larger than a cluster's bucket namespace keeps");
        return;
    }
    if (st->err != CM_OK) {
        gw_error(r, st->err == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(st->err),
                 NULL);
        return;
    }
    gw_resp_start(r, st->doc ? 200 : 204, st->doc ? 0 : -1);
    net_resp_end(r->net);
}

static void put_finish(gw_req *r)
{
    lc_req *st = r->op;
    size_t len = r->mem ? evbuffer_get_length(r->mem) : 0;
    const char *xml = len ? (const char *)evbuffer_pullup(r->mem, -1) : "";
    gw_lc_config cfg;
    char msg[200];
    gw_s3err e = gw_lc_parse(xml ? xml : "", xml ? len : 0, GW_LC_XML_CAP, &cfg, msg, sizeof(msg));
    if (e != GW_OK) {
        gw_error(r, e, msg[0] ? msg : NULL);
        return;
    }
    cm_err ce = (st->doc = evbuffer_new()) ? gw_lc_write(st->doc, &cfg) : CM_ERR_NOMEM;
    gw_lc_config_release(&cfg);
    if (ce != CM_OK) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    /* What is stored must parse again (the worker reads it): text full of characters the writer
     * escapes can outgrow the cap. */
    if (evbuffer_get_length(st->doc) > GW_LC_XML_CAP) {
        gw_error(r, GW_ENTITY_TOO_LARGE, NULL);
        return;
    }
    gw_offload(r, put_work, set_done);
}

static void get_lifecycle(gw_req *r)
{
    char *doc = NULL;
    size_t len = 0;
    cm_err e = config_get(r->g, r->bucket, &doc, &len); /* a cluster node's: from memory */
    struct evbuffer *buf = NULL;
    if (e == CM_ERR_NOTFOUND)
        gw_error(r, GW_NO_SUCH_LIFECYCLE, NULL);
    else if (e != CM_OK)
        gw_error(r, gw_s3err_from_cm(e), NULL);
    else if (!(buf = evbuffer_new()) || evbuffer_add(buf, doc, len) != 0)
        gw_error(r, GW_INTERNAL, NULL);
    else
        gw_resp_xml(r, 200, buf);
    if (buf)
        evbuffer_free(buf);
    free(doc);
}

void gw_op_bucket_lifecycle(gw_req *r)
{
    const char *m = net_req_method(r->net);
    if (strcmp(m, "GET") == 0 || r->head) {
        get_lifecycle(r); /* one read transaction: no worker needed */
        return;
    }
    int put = strcmp(m, "PUT") == 0;
    if (!put && strcmp(m, "DELETE") != 0) {
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    if (put && gw_cluster_node(r->g) && !ns_served(r->g)) { /* an embedded cluster gateway */
        gw_error(r, GW_UNSUPPORTED,
                 "Lifecycle configurations need a bucket namespace that keeps "
                 "them; this gateway has none");
        return;
    }
    if (!put) {
        gw_offload_state(r, sizeof(lc_req), lc_req_free, del_work, set_done);
        return;
    }
    if (!gw_checksum_given(r)) { /* S3 requires an integrity check of this body */
        gw_error(r, GW_INVALID_REQUEST, "Missing required header for this request: Content-MD5");
        return;
    }
    if (!(r->op = calloc(1, sizeof(lc_req)))) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op_free = lc_req_free;
    gw_body_to_memory(r, GW_LC_XML_CAP, put_finish);
}

/* ---- the worker's persistent state ---- */

enum { PHASE_OBJECTS = 0, PHASE_UPLOADS = 1 };

/* Counters of one pass. */
typedef struct {
    int64_t start_ms, end_ms;
    uint64_t examined, expired, aborted, errors;
    /* versioned buckets: noncurrent versions expired, lone delete markers removed, deletions
     * refused (Object Lock) */
    uint64_t nc_expired, markers, refused;
} lc_counts;

/* Where a pass stands: the counters so far, the bucket, the phase, and the last key (and
 * upload id) done in it ("" before the first). */
typedef struct {
    lc_counts c;
    int phase;
    char bucket[MD_BUCKET_MAX + 1];
    char *key;
    char upload_id[64];
} lc_cursor;

#define COUNTS_LEN 48
/* The version counters, after the rest (the blobs of servers older than them lack them). */
#define VCOUNTS_LEN 24

static void vcounts_put(uint8_t *p, const lc_counts *c)
{
    cm_put_be64(p, c->nc_expired);
    cm_put_be64(p + 8, c->markers);
    cm_put_be64(p + 16, c->refused);
}

static void vcounts_get(const uint8_t *p, lc_counts *c)
{
    c->nc_expired = cm_get_be64(p);
    c->markers = cm_get_be64(p + 8);
    c->refused = cm_get_be64(p + 16);
}

static void counts_put(uint8_t *p, const lc_counts *c)
{
    cm_put_be64(p, (uint64_t)c->start_ms);
    cm_put_be64(p + 8, (uint64_t)c->end_ms);
    cm_put_be64(p + 16, c->examined);
    cm_put_be64(p + 24, c->expired);
    cm_put_be64(p + 32, c->aborted);
    cm_put_be64(p + 40, c->errors);
}

static void counts_get(const uint8_t *p, lc_counts *c)
{
    c->start_ms = (int64_t)cm_get_be64(p);
    c->end_ms = (int64_t)cm_get_be64(p + 8);
    c->examined = cm_get_be64(p + 16);
    c->expired = cm_get_be64(p + 24);
    c->aborted = cm_get_be64(p + 32);
    c->errors = cm_get_be64(p + 40);
}

/* cursor: counts, phase(1), bucket length(1), key length(BE32), upload id length(1), the three,
 * the version counters */
static cm_err cursor_save(md_store *md, const lc_cursor *cur)
{
    size_t bl = strlen(cur->bucket), kl = strlen(cur->key), ul = strlen(cur->upload_id);
    size_t len = COUNTS_LEN + 7 + bl + kl + ul + VCOUNTS_LEN;
    uint8_t *b = malloc(len);
    if (!b)
        return CM_ERR_NOMEM;
    counts_put(b, &cur->c);
    uint8_t *p = b + COUNTS_LEN;
    p[0] = (uint8_t)cur->phase;
    p[1] = (uint8_t)bl;
    cm_put_be32(p + 2, (uint32_t)kl);
    p[6] = (uint8_t)ul;
    memcpy(p + 7, cur->bucket, bl);
    memcpy(p + 7 + bl, cur->key, kl);
    memcpy(p + 7 + bl + kl, cur->upload_id, ul);
    vcounts_put(p + 7 + bl + kl + ul, &cur->c);
    cm_err e = md_lc_state_set(md, "cursor", b, len);
    free(b);
    return e;
}

/* CM_OK with *cur filled, CM_ERR_NOTFOUND when no pass was under way, CM_ERR_CORRUPT. */
static cm_err cursor_load(md_store *md, lc_cursor *cur)
{
    void *v;
    size_t len;
    cm_err e = md_lc_state_get(md, "cursor", &v, &len);
    if (e != CM_OK)
        return e;
    const uint8_t *p = v;
    if (len == 0) {
        free(v);
        return CM_ERR_NOTFOUND; /* cleared at the end of a pass */
    }
    size_t bl = len >= COUNTS_LEN + 7 ? p[COUNTS_LEN + 1] : 0;
    size_t kl = len >= COUNTS_LEN + 7 ? cm_get_be32(p + COUNTS_LEN + 2) : 0;
    size_t ul = len >= COUNTS_LEN + 7 ? p[COUNTS_LEN + 6] : 0;
    if (len < COUNTS_LEN + 7 || bl == 0 || bl > MD_BUCKET_MAX || ul >= sizeof(cur->upload_id) ||
        kl > MD_MAX_KEY ||
        (len != COUNTS_LEN + 7 + bl + kl + ul &&
         len != COUNTS_LEN + 7 + bl + kl + ul + VCOUNTS_LEN) ||
        p[COUNTS_LEN] > PHASE_UPLOADS ||
        !(cur->key = strndup((const char *)p + COUNTS_LEN + 7 + bl, kl))) {
        free(v);
        CM_ERROR(MOD, "the stored cursor is damaged (%zu bytes): starting a new pass", len);
        return CM_ERR_CORRUPT;
    }
    counts_get(p, &cur->c);
    cur->phase = p[COUNTS_LEN];
    memcpy(cur->bucket, p + COUNTS_LEN + 7, bl);
    cur->bucket[bl] = '\0';
    memcpy(cur->upload_id, p + COUNTS_LEN + 7 + bl + kl, ul);
    cur->upload_id[ul] = '\0';
    if (len > COUNTS_LEN + 7 + bl + kl + ul)
        vcounts_get(p + COUNTS_LEN + 7 + bl + kl + ul, &cur->c);
    free(v);
    if (gw_bucket_name_check(cur->bucket) != GW_OK) { /* it is logged and shown as JSON */
        free(cur->key);
        cur->key = NULL;
        CM_ERROR(MOD, "the stored cursor names no valid bucket: starting a new pass");
        return CM_ERR_CORRUPT;
    }
    return CM_OK;
}

static cm_err last_save(md_store *md, const lc_counts *c)
{
    uint8_t b[COUNTS_LEN + VCOUNTS_LEN];
    counts_put(b, c);
    vcounts_put(b + COUNTS_LEN, c);
    return md_lc_state_set(md, "last", b, sizeof(b));
}

static void last_load(md_store *md, lc_counts *c)
{
    void *v;
    size_t len;
    memset(c, 0, sizeof(*c));
    if (md_lc_state_get(md, "last", &v, &len) != CM_OK)
        return;
    if (len == COUNTS_LEN || len == COUNTS_LEN + VCOUNTS_LEN)
        counts_get(v, c);
    if (len == COUNTS_LEN + VCOUNTS_LEN)
        vcounts_get((const uint8_t *)v + COUNTS_LEN, c);
    free(v);
}

/* ---- the worker ---- */

#define EXP_SLOTS 64

/* One bucket's rules for x-amz-expiration: those of its configuration that expire current
 * objects (enabled, Days or Date); n 0 for a bucket without any. */
typedef struct {
    char bucket[MD_BUCKET_MAX + 1];
    uint64_t gen; /* exp_gen when loaded; 0: empty slot */
    char *doc;    /* a cluster node: the document cfg was parsed from (NULL: none) */
    gw_lc_config cfg;
} exp_slot;

struct gw_lc {
    gw *g;
    gw_lc_worker_config cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    /* status, under mu */
    int running, resumed;
    uint64_t passes; /* finished since start */
    lc_counts cur, last;
    char bucket[MD_BUCKET_MAX + 1];
    int phase;
    /* pacing: entries examined since pace_start_ms (monotonic) */
    int64_t pace_start_ms;
    uint64_t paced;
    /* x-amz-expiration: the current-version expiration rules of recently used buckets */
    pthread_mutex_t exp_mu;
    uint64_t exp_gen; /* starts at 1, bumped by every change of a configuration */
    exp_slot exp[EXP_SLOTS];
};

void gw_lc_worker_config_defaults(gw_lc_worker_config *c)
{
    c->rate = 1000;
    c->interval_s = 3600;
    c->day_s = 86400;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep ms (on the monotonic clock) unless stopped meanwhile; returns 1 when stopped. */
static int nap(gw_lc *w, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* the condition variable's clock (gw_lc_start) */
    int64_t ns = ts.tv_nsec + (ms > 0 ? ms % 1000 : 0) * 1000000;
    ts.tv_sec += (time_t)((ms > 0 ? ms / 1000 : 0) + ns / 1000000000);
    ts.tv_nsec = ns % 1000000000;
    pthread_mutex_lock(&w->mu);
    while (ms > 0 && !w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &ts) != ETIMEDOUT)
        ; /* woken early (spuriously): sleep on */
    int stop = w->stop;
    pthread_mutex_unlock(&w->mu);
    return stop;
}

/* n more entries were examined: wait until that is within rate per second. 1 when stopped. */
static int pace(gw_lc *w, size_t n)
{
    w->paced += n;
    int64_t due = w->pace_start_ms + (int64_t)((double)w->paced * 1000.0 / w->cfg.rate);
    return nap(w, due - cm_monotonic_ms());
}

static size_t page_size(const gw_lc *w)
{
    return w->cfg.rate >= PAGE_MAX ? PAGE_MAX : w->cfg.rate < 1 ? 1 : (size_t)w->cfg.rate;
}

static void count(gw_lc *w, lc_cursor *cur, const lc_counts *add)
{
    cur->c.examined += add->examined;
    cur->c.expired += add->expired;
    cur->c.aborted += add->aborted;
    cur->c.errors += add->errors;
    cur->c.nc_expired += add->nc_expired;
    cur->c.markers += add->markers;
    cur->c.refused += add->refused;
    pthread_mutex_lock(&w->mu);
    w->cur = cur->c;
    w->phase = cur->phase;
    snprintf(w->bucket, sizeof(w->bucket), "%s", cur->bucket);
    pthread_mutex_unlock(&w->mu);
}

/*
 * A page is done (add: its counters; last_key / last_upload: its last entry, NULL for an empty
 * page): move the cursor past it, publish and save it, then wait as the rate asks. CM_OK, or
 * CM_ERR_CLOSED when the worker is stopping.
 */
static cm_err page_done(gw_lc *w, lc_cursor *cur, const lc_counts *add, size_t listed,
                        const char *last_key, const char *last_upload)
{
    if (last_key) {
        char *k = strdup(last_key);
        if (!k)
            return CM_ERR_NOMEM;
        free(cur->key);
        cur->key = k;
        snprintf(cur->upload_id, sizeof(cur->upload_id), "%s", last_upload ? last_upload : "");
    }
    count(w, cur, add);
    cm_err e = cursor_save(w->g->md, cur);
    if (e == CM_OK && pace(w, listed > add->examined ? listed : add->examined))
        e = CM_ERR_CLOSED;
    return e;
}

#define KEY_VERSIONS_MAX 1000 /* versions of one key looked at per pass, newest first */

/* A deletion the bucket's settings forbid (Object Lock's retention or legal hold): counted and
 * logged, tried again at the next pass only. */
static int refused(cm_err e)
{
    return e == CM_ERR_LOCKED;
}

/*
 * The first enabled rule that acts on version o of bucket/key (v: its place in the key's history)
 * at now: *hit and *act, or *act GW_LC_KEEP. Tags come from the full record, read only when a rule
 * that filters on them would otherwise act. 0, or -1 when that read failed (logged).
 */
static int version_rule(gw_lc *w, const char *bucket, const char *key, const gw_lc_config *cfg,
                        const md_object *o, const gw_lc_version *v, int64_t now,
                        const gw_lc_rule **hit, gw_lc_action *act)
{
    md_object full = {0};
    int have_full = 0, rc = 0;
    *hit = NULL;
    *act = GW_LC_KEEP;
    for (size_t i = 0; i < cfg->n && !*hit; i++) {
        const gw_lc_rule *r = &cfg->rules[i];
        gw_lc_action a = gw_lc_version_action(r, key, v, now, w->cfg.day_s);
        if (a == GW_LC_KEEP)
            continue;
        if (r->ntags && !have_full) { /* a listing carries no tags */
            cm_err ge = v->noncurrent_ms < 0
                            ? gw_meta_get(w->g, bucket, key, &full)
                            : gw_meta_get_version(w->g, bucket, key, o->version_id, &full);
            if (ge == CM_ERR_NOTFOUND)
                break; /* gone meanwhile (or a delete marker, which has no tags) */
            if (ge != CM_OK) {
                CM_WARN(MOD, "bucket=%s key=%s version=%s: cannot read the record: %s", bucket, key,
                        o->version_id, cm_err_str(ge));
                rc = -1;
                break;
            }
            have_full = 1;
        }
        if (!r->ntags || gw_lc_rule_matches(r, key, v->size, full.tags, full.ntags)) {
            *hit = r;
            *act = a;
        }
    }
    md_object_release(&full);
    return rc;
}

static cm_err cluster_key_versions(gw_lc *w, const char *bucket, const char *key, md_object **all,
                                   size_t *m, int *truncated);

/* A cluster node, before removing a lone delete marker: 1 while marker vid is still the key's
 * only version (read again at quorum), 0 when not, -1 when the read failed (logged). */
static int cluster_lone_marker(gw_lc *w, const char *bucket, const char *key, const char *vid)
{
    md_object *all = NULL;
    size_t m = 0;
    int truncated = 0;
    cm_err e = cluster_key_versions(w, bucket, key, &all, &m, &truncated);
    if (e != CM_OK) {
        CM_WARN(MOD, "bucket=%s key=%s: cannot list its versions: %s", bucket, key, cm_err_str(e));
        return -1;
    }
    int lone = m == 1 && !truncated && all[0].delete_marker && strcmp(all[0].version_id, vid) == 0;
    md_objects_free(all, m);
    return lone;
}

/*
 * Do act to version o of bucket/key through gw_object_remove, DeleteObject's own path (so a
 * versioned bucket gets a delete marker, and Object Lock refuses what it protects). The current
 * version is expired only as listed: one rewritten since (another ETag) is not this rule's; a
 * noncurrent one only while, in the store's transaction, it is still noncurrent with the successor
 * and the newer versions v counted (md_cond noncurrent): a client's write or delete in between
 * makes it 0, and the next pass looks again.
 * Returns 1 when done, 0 when gone or changed meanwhile, -1 refused or failed (counted in add).
 */
static int version_apply(gw_lc *w, const char *bucket, const char *key, const md_object *o,
                         const gw_lc_version *v, gw_lc_action act, const gw_lc_rule *hit,
                         lc_counts *add)
{
    if (act == GW_LC_REMOVE_MARKER && gw_meta_remote(w->g)) {
        int lone = cluster_lone_marker(w, bucket, key, o->version_id);
        if (lone <= 0) {
            add->errors += lone < 0;
            return lone;
        }
    }
    md_cond cond = {.if_match = o->etag};
    md_cond older = {
        .noncurrent = 1, .successor_ms = v->noncurrent_ms, .newer_min = v->newer_noncurrent + 1};
    int current = act == GW_LC_EXPIRE_CURRENT;
    int nc = act == GW_LC_EXPIRE_NONCURRENT;
    cm_err de = gw_object_remove(w->g, bucket, key, current ? NULL : o->version_id,
                                 current ? &cond
                                 : nc    ? &older
                                         : NULL,
                                 NULL);
    const char *what = act == GW_LC_EXPIRE_CURRENT      ? "expired"
                       : act == GW_LC_EXPIRE_NONCURRENT ? "expired (noncurrent)"
                                                        : "removed (expired delete marker)";
    if (de == CM_OK) {
        if (current)
            CM_INFO(MOD, "bucket=%s key=%s %s by rule %s", bucket, key, what, hit->id);
        else
            CM_INFO(MOD, "bucket=%s key=%s version=%s %s by rule %s", bucket, key, o->version_id,
                    what, hit->id);
        add->expired += act == GW_LC_EXPIRE_CURRENT;
        add->nc_expired += act == GW_LC_EXPIRE_NONCURRENT;
        add->markers += act == GW_LC_REMOVE_MARKER;
        return 1;
    }
    if (de == CM_ERR_NOTFOUND || de == CM_ERR_PRECONDITION)
        return 0; /* deleted or rewritten meanwhile */
    if (refused(de)) {
        CM_INFO(MOD, "bucket=%s key=%s version=%s: not %s by rule %s: the version is locked",
                bucket, key, o->version_id, what, hit->id);
        add->refused++;
    } else {
        CM_WARN(MOD, "bucket=%s key=%s version=%s: %s by rule %s failed: %s", bucket, key,
                o->version_id, what, hit->id, cm_err_str(de));
        add->errors++;
    }
    return -1;
}

/*
 * The per-key step over the key's versions vs[0..n) (newest first, vs[0] the latest; more exist
 * when truncated): noncurrent versions first, oldest first, then the latest, which is a lone
 * delete marker when every other version is gone by then. A never-versioned bucket's key has its
 * one current version.
 */
static void key_step(gw_lc *w, const char *bucket, const gw_lc_config *cfg, const char *key,
                     const md_object *const *vs, size_t n, int truncated, int64_t now,
                     lc_counts *add)
{
    size_t left = n + (truncated != 0); /* versions still there, at least */
    add->examined += n;
    for (size_t i = n; i-- > 0;) {
        const md_object *o = vs[i];
        gw_lc_version v = {.size = o->size,
                           .mtime_ms = o->mtime_ms,
                           .noncurrent_ms = i ? vs[i - 1]->mtime_ms : -1,
                           .newer_noncurrent = i ? (uint32_t)(i - 1) : 0,
                           .delete_marker = o->delete_marker,
                           .lone = i == 0 && left == 1};
        const gw_lc_rule *hit;
        gw_lc_action act;
        if (version_rule(w, bucket, key, cfg, o, &v, now, &hit, &act) != 0) {
            add->errors++;
            continue;
        }
        if (act != GW_LC_KEEP && version_apply(w, bucket, key, o, &v, act, hit, add) > 0 && i)
            left--;
    }
}

/* A cluster node: key's versions, newest first (KEY_VERSIONS_MAX at most: *truncated when there
 * are more), from the replicated version listing of the keys starting with key (its own versions
 * come first: a longer key sorts after it). */
static cm_err cluster_key_versions(gw_lc *w, const char *bucket, const char *key, md_object **all,
                                   size_t *m, int *truncated)
{
    md_vlist_query q = {.prefix = key, .max_keys = KEY_VERSIONS_MAX};
    md_list_result res;
    *all = NULL, *m = 0, *truncated = 0;
    cm_err e = gw_meta_list_versions(w->g, bucket, &q, &res);
    if (e != CM_OK)
        return e;
    size_t n = 0;
    while (n < res.n && !res.entries[n].is_prefix && strcmp(res.entries[n].key, key) == 0)
        n++;
    *truncated = n == res.n && res.truncated;
    if (n && !(*all = calloc(n, sizeof(**all))))
        e = CM_ERR_NOMEM;
    for (size_t i = 0; e == CM_OK && i < n; i++) { /* moved out of the listing */
        (*all)[i] = res.entries[i].obj;
        memset(&res.entries[i].obj, 0, sizeof(res.entries[i].obj));
    }
    *m = e == CM_OK ? n : 0;
    md_list_result_release(&res);
    return e;
}

/*
 * The versions of entries[0..n) (one key, newest first, as listed) into key_step; when the page
 * cut the key's versions short (cut), the key's history is read whole (up to KEY_VERSIONS_MAX).
 */
static cm_err key_versions(gw_lc *w, const gw_lc_config *cfg, const char *bucket,
                           const md_list_entry *entries, size_t n, int cut, int64_t now,
                           lc_counts *add)
{
    md_object *all = NULL;
    size_t m = n;
    int truncated = 0;
    if (cut || !entries[0].is_latest) {
        cm_err e = gw_meta_remote(w->g)
                       ? cluster_key_versions(w, bucket, entries[0].key, &all, &m, &truncated)
                       : md_key_versions(w->g->md, bucket, entries[0].key, KEY_VERSIONS_MAX, &all,
                                         &m, &truncated);
        if (e != CM_OK)
            return e;
        if (m == 0) {
            free(all);
            return CM_OK; /* gone meanwhile */
        }
    }
    const md_object **vs = calloc(m, sizeof(*vs));
    if (!vs) {
        md_objects_free(all, m);
        return CM_ERR_NOMEM;
    }
    for (size_t i = 0; i < m; i++)
        vs[i] = all ? &all[i] : &entries[i].obj;
    key_step(w, bucket, cfg, entries[0].key, vs, m, truncated, now, add);
    free(vs);
    if (all)
        md_objects_free(all, m);
    return CM_OK;
}

static int mine(gw_lc *w, const char *bucket, const char *key);

/* The keys of one bucket (every version, delete markers included) after cur->key; on a cluster
 * node from the replicated version listing (a versioned bucket), acting on the keys of this
 * node's partitions only. CM_ERR_CLOSED when stopped. */
static cm_err scan_objects(gw_lc *w, const gw_lc_config *cfg, lc_cursor *cur)
{
    int remote = gw_meta_remote(w->g);
    for (;;) {
        md_vlist_query q = {.key_marker = cur->key[0] ? cur->key : NULL, .max_keys = page_size(w)};
        md_list_result res;
        cm_err e = remote ? gw_meta_list_versions(w->g, cur->bucket, &q, &res)
                          : md_list_versions(w->g->md, cur->bucket, &q, &res);
        if (e != CM_OK)
            return e;
        lc_counts add = {0};
        int64_t now = now_ms();
        size_t b;
        for (size_t a = 0; a < res.n && e == CM_OK; a = b) {
            for (b = a + 1; b < res.n && strcmp(res.entries[b].key, res.entries[a].key) == 0; b++)
                ;
            if (!res.entries[a].is_prefix && mine(w, cur->bucket, res.entries[a].key))
                e = key_versions(w, cfg, cur->bucket, &res.entries[a], b - a,
                                 b == res.n && res.truncated, now, &add);
        }
        int more = res.truncated && res.n;
        if (e == CM_OK)
            e = page_done(w, cur, &add, res.n, res.n ? res.entries[res.n - 1].key : NULL, NULL);
        md_list_result_release(&res);
        if (e != CM_OK || !more)
            return e;
    }
}

/* This node applies rules to the record of bucket/key (a cluster node: it is the first live home
 * of its partition). */
static int mine(gw_lc *w, const char *bucket, const char *key)
{
    return !w->cfg.mine || w->cfg.mine(w->cfg.mine_arg, bucket, key);
}

/* A cluster node: the current objects of one bucket after cur->key, from the replicated listing
 * (delete markers are not listed), those of this node's partitions only. CM_ERR_CLOSED when
 * stopped. */
static cm_err scan_current(gw_lc *w, const gw_lc_config *cfg, lc_cursor *cur)
{
    for (;;) {
        md_list_query q = {.start_after = cur->key[0] ? cur->key : NULL, .max_keys = page_size(w)};
        md_list_result res;
        cm_err e = gw_meta_list(w->g, cur->bucket, &q, &res);
        if (e != CM_OK)
            return e;
        lc_counts add = {0};
        int64_t now = now_ms();
        for (size_t i = 0; i < res.n; i++) {
            const md_list_entry *en = &res.entries[i];
            const md_object *o = &en->obj;
            if (!en->is_prefix && mine(w, cur->bucket, en->key))
                key_step(w, cur->bucket, cfg, en->key, &o, 1, 0, now, &add);
        }
        int more = res.truncated && res.n;
        e = page_done(w, cur, &add, res.n, res.n ? res.entries[res.n - 1].key : NULL, NULL);
        md_list_result_release(&res);
        if (e != CM_OK || !more)
            return e;
    }
}

/* Abort one upload as AbortMultipartUpload does. 1 aborted, 0 gone meanwhile, -1 failure. */
static int abort_upload(gw_lc *w, const char *bucket, const md_upload *up, const gw_lc_rule *r)
{
    md_part *parts = NULL;
    size_t n = 0;
    cm_err e = gw_meta_remote(w->g)
                   ? rp_upload_abort(w->g->rp, bucket, up->key, up->upload_id)
                   : md_upload_abort(w->g->md, bucket, up->key, up->upload_id, &parts, &n);
    gw_free_parts(w->g, parts, n);
    if (e == CM_OK)
        CM_INFO(MOD, "bucket=%s key=%s upload=%s aborted by rule %s", bucket, up->key,
                up->upload_id, r->id);
    else if (e != CM_ERR_NOTFOUND)
        CM_WARN(MOD, "bucket=%s key=%s upload=%s: abort failed: %s", bucket, up->key, up->upload_id,
                cm_err_str(e));
    return e == CM_OK ? 1 : e == CM_ERR_NOTFOUND ? 0 : -1;
}

/* The uploads of one bucket after (cur->key, cur->upload_id). CM_ERR_CLOSED when stopped. */
static cm_err scan_uploads(gw_lc *w, const gw_lc_config *cfg, lc_cursor *cur)
{
    for (;;) {
        md_upload_query q = {.key_marker = cur->key[0] ? cur->key : NULL,
                             .upload_id_marker = cur->key[0] ? cur->upload_id : NULL,
                             .max_uploads = page_size(w)};
        md_upload_list res;
        cm_err e = gw_meta_remote(w->g) ? rp_upload_list(w->g->rp, cur->bucket, &q, &res)
                                        : md_upload_list_query(w->g->md, cur->bucket, &q, &res);
        if (e != CM_OK)
            return e;
        lc_counts add = {0};
        int64_t now = now_ms();
        for (size_t i = 0; i < res.n; i++) {
            const md_upload *up = &res.uploads[i];
            if (!mine(w, cur->bucket, up->key))
                continue;
            add.examined++;
            for (size_t j = 0; j < cfg->n; j++) {
                const gw_lc_rule *r = &cfg->rules[j];
                int64_t due = gw_lc_abort_ms(r, up->initiated_ms, w->cfg.day_s);
                /* An upload has no size yet (0 here) and no tags (refused with this action). */
                if (!r->enabled || due < 0 || now < due || !gw_lc_rule_selects(r, up->key, 0))
                    continue;
                int rc = abort_upload(w, cur->bucket, up, r);
                add.aborted += rc > 0;
                add.errors += rc < 0;
                break;
            }
        }
        const md_upload *last = res.n ? &res.uploads[res.n - 1] : NULL;
        int more = res.truncated && last;
        e = page_done(w, cur, &add, res.n, last ? last->key : NULL, last ? last->upload_id : NULL);
        md_upload_list_release(&res);
        if (e != CM_OK || !more)
            return e;
    }
}

/* One bucket from the cursor's phase and key on. */
static cm_err scan_bucket(gw_lc *w, lc_cursor *cur)
{
    char *doc = NULL;
    size_t len = 0;
    gw_lc_config cfg;
    char msg[200];
    cm_err e = config_get(w->g, cur->bucket, &doc, &len);
    if (e == CM_ERR_NOTFOUND)
        return CM_OK; /* removed since the bucket was listed */
    if (e != CM_OK)
        return e;
    gw_s3err pe = gw_lc_parse(doc, len, GW_LC_XML_CAP, &cfg, msg, sizeof(msg));
    free(doc);
    if (pe != GW_OK) {
        CM_ERROR(MOD, "bucket=%s: the stored configuration does not parse (%s %s): skipped",
                 cur->bucket, gw_s3err_code(pe), msg);
        count(w, cur, &(lc_counts){.errors = 1});
        return CM_OK;
    }
    /* A phase no enabled rule acts in is skipped. */
    int expire = 0, abort = 0;
    for (size_t i = 0; i < cfg.n; i++) {
        const gw_lc_rule *r = &cfg.rules[i];
        expire |= r->enabled && (r->exp_days || r->exp_date_ms >= 0 || r->exp_marker || r->nc_days);
        abort |= r->enabled && r->abort_days;
    }
    if (cur->phase == PHASE_OBJECTS) {
        e = !expire ? CM_OK
            : gw_meta_remote(w->g) && !gw_meta_versioned(w->g, cur->bucket)
                ? scan_current(w, &cfg, cur)
                : scan_objects(w, &cfg, cur);
        if (e == CM_OK) {
            cur->phase = PHASE_UPLOADS;
            cur->key[0] = '\0';
            cur->upload_id[0] = '\0';
        }
    }
    if (e == CM_OK && abort)
        e = scan_uploads(w, &cfg, cur);
    gw_lc_config_release(&cfg);
    /* The bucket was deleted under the pass (its configuration went with it): go on. */
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

/* Start a pass, or resume the one the cursor names. */
static cm_err pass_begin(gw_lc *w, lc_cursor *cur)
{
    memset(cur, 0, sizeof(*cur));
    cm_err e = cursor_load(w->g->md, cur);
    int resumed = e == CM_OK;
    if (e != CM_OK && e != CM_ERR_NOTFOUND && e != CM_ERR_CORRUPT)
        return e;
    if (!resumed) {
        memset(cur, 0, sizeof(*cur));
        if (!(cur->key = strdup("")))
            return CM_ERR_NOMEM;
        cur->c.start_ms = now_ms();
    }
    pthread_mutex_lock(&w->mu);
    w->running = 1;
    w->resumed = resumed;
    w->cur = cur->c;
    pthread_mutex_unlock(&w->mu);
    if (resumed)
        CM_INFO(MOD, "pass resumed at bucket=%s %s after key=%s (examined %" PRIu64 ")",
                cur->bucket, cur->phase == PHASE_OBJECTS ? "objects" : "uploads", cur->key,
                cur->c.examined);
    else
        CM_INFO(MOD, "pass started");
    return CM_OK;
}

static void pass_end(gw_lc *w, lc_cursor *cur)
{
    cur->c.end_ms = now_ms();
    cm_err e = last_save(w->g->md, &cur->c);
    if (e == CM_OK)
        e = md_lc_state_set(w->g->md, "cursor", NULL, 0);
    if (e != CM_OK)
        CM_WARN(MOD, "cannot record the end of the pass: %s", cm_err_str(e));
    pthread_mutex_lock(&w->mu);
    w->running = 0;
    w->passes++;
    w->last = cur->c;
    pthread_mutex_unlock(&w->mu);
    CM_INFO(MOD,
            "pass finished in %" PRId64 " ms: examined %" PRIu64 ", expired %" PRIu64
            ", noncurrent expired %" PRIu64 ", delete markers removed %" PRIu64
            ", uploads aborted %" PRIu64 ", refused by lock %" PRIu64 ", errors %" PRIu64,
            cur->c.end_ms - cur->c.start_ms, cur->c.examined, cur->c.expired, cur->c.nc_expired,
            cur->c.markers, cur->c.aborted, cur->c.refused, cur->c.errors);
}

/* One pass over every configured bucket. CM_ERR_CLOSED when stopped (the cursor kept). */
static cm_err run_pass(gw_lc *w)
{
    lc_cursor cur;
    cm_err e = pass_begin(w, &cur);
    w->pace_start_ms = cm_monotonic_ms();
    w->paced = 0;
    if (e == CM_OK && cur.bucket[0])
        e = scan_bucket(w, &cur); /* the bucket the resumed pass stood in */
    while (e == CM_OK) {
        char next[MD_BUCKET_MAX + 1];
        if ((e = next_bucket(w->g, cur.bucket[0] ? cur.bucket : NULL, next, sizeof(next))) !=
            CM_OK) {
            e = e == CM_ERR_NOTFOUND ? CM_OK : e;
            break;
        }
        snprintf(cur.bucket, sizeof(cur.bucket), "%s", next);
        cur.phase = PHASE_OBJECTS;
        cur.key[0] = '\0';
        cur.upload_id[0] = '\0';
        e = scan_bucket(w, &cur);
    }
    if (e == CM_OK)
        pass_end(w, &cur);
    else if (e != CM_ERR_CLOSED)
        CM_WARN(MOD, "pass broke off at bucket=%s: %s (resumed at the next pass)", cur.bucket,
                cm_err_str(e));
    pthread_mutex_lock(&w->mu);
    w->running = 0;
    pthread_mutex_unlock(&w->mu);
    free(cur.key);
    return e;
}

static void *worker_main(void *arg)
{
    gw_lc *w = arg;
    lc_cursor probe = {0};
    /* A pass under way when the server stopped resumes at once; otherwise wait an interval
     * after the last pass's end (or start now when there was none). */
    int64_t wait_ms = 0;
    if (cursor_load(w->g->md, &probe) != CM_OK && w->last.end_ms > 0)
        wait_ms = w->last.end_ms + (int64_t)w->cfg.interval_s * 1000 - now_ms();
    free(probe.key);
    if (wait_ms > (int64_t)w->cfg.interval_s * 1000)
        wait_ms = (int64_t)w->cfg.interval_s * 1000; /* the clock went back */
    while (!nap(w, wait_ms)) {
        cm_err e = run_pass(w);
        if (e == CM_ERR_CLOSED)
            break;
        wait_ms = (int64_t)w->cfg.interval_s * 1000;
    }
    return NULL;
}

cm_err gw_lc_start(gw *g, const gw_lc_worker_config *cfg, gw_lc **out)
{
    gw_lc *w = calloc(1, sizeof(*w));
    *out = NULL;
    if (!w)
        return CM_ERR_NOMEM;
    w->g = g;
    gw_lc_worker_config_defaults(&w->cfg);
    if (cfg)
        w->cfg = *cfg;
    if (w->cfg.rate <= 0 || w->cfg.day_s == 0) {
        free(w);
        return CM_ERR_INVAL;
    }
    last_load(g->md, &w->last);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* naps ignore wall-clock steps */
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->exp_mu, NULL);
    w->exp_gen = 1;
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        pthread_mutex_destroy(&w->exp_mu);
        free(w);
        return CM_ERR_INTERNAL;
    }
    g->lc = w;
    *out = w;
    return CM_OK;
}

void gw_lc_stop(gw *g, gw_lc *w)
{
    if (!w)
        return;
    if (g && g->lc == w)
        g->lc = NULL;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    for (size_t i = 0; i < EXP_SLOTS; i++) {
        gw_lc_config_release(&w->exp[i].cfg);
        free(w->exp[i].doc);
    }
    pthread_mutex_destroy(&w->exp_mu);
    free(w);
}

static void json_counts(struct evbuffer *b, const char *name, const lc_counts *c)
{
    evbuffer_add_printf(b,
                        "\"%s\":{\"start_ms\":%" PRId64 ",\"end_ms\":%" PRId64
                        ",\"examined\":%" PRIu64 ",\"expired\":%" PRIu64 ",\"aborted\":%" PRIu64
                        ",\"errors\":%" PRIu64 ",\"noncurrent_expired\":%" PRIu64
                        ",\"markers_removed\":%" PRIu64 ",\"refused_locked\":%" PRIu64 "}",
                        name, c->start_ms, c->end_ms, c->examined, c->expired, c->aborted,
                        c->errors, c->nc_expired, c->markers, c->refused);
}

void gw_lc_status_json(gw_lc *w, struct evbuffer *b)
{
    pthread_mutex_lock(&w->mu);
    evbuffer_add_printf(b,
                        "{\"running\":%s,\"resumed\":%s,\"passes\":%" PRIu64
                        ",\"bucket\":\"%s\",\"phase\":\"%s\",\"rate\":%g,\"interval_s\":%u,"
                        "\"day_s\":%u,",
                        w->running ? "true" : "false", w->resumed ? "true" : "false", w->passes,
                        w->running ? w->bucket : "", w->phase ? "uploads" : "objects", w->cfg.rate,
                        w->cfg.interval_s, w->cfg.day_s);
    json_counts(b, "current", &w->cur);
    evbuffer_add(b, ",", 1);
    json_counts(b, "last", &w->last);
    evbuffer_add(b, "}", 1);
    pthread_mutex_unlock(&w->mu);
}

/* ---- x-amz-expiration ---- */

void gw_lc_invalidate(gw *g)
{
    gw_lc *w = g->lc;
    if (!w)
        return;
    pthread_mutex_lock(&w->exp_mu);
    w->exp_gen++;
    pthread_mutex_unlock(&w->exp_mu);
}

/* The rules of doc (len bytes; NULL: none) that expire current objects (cfg->n 0: none). */
static cm_err exp_parse(const char *doc, size_t len, gw_lc_config *cfg)
{
    char msg[200];
    size_t n = 0;
    memset(cfg, 0, sizeof(*cfg));
    if (!doc)
        return CM_OK;
    gw_s3err pe = gw_lc_parse(doc, len, GW_LC_XML_CAP, cfg, msg, sizeof(msg));
    if (pe != GW_OK) /* a document that does not parse is logged by the worker at its pass */
        return pe == GW_INTERNAL ? CM_ERR_NOMEM : CM_ERR_CORRUPT;
    /* Keep only what the header looks at: the others are released here. */
    for (size_t i = 0; i < cfg->n; i++) {
        gw_lc_rule *r = &cfg->rules[i];
        if (r->enabled && (r->exp_days || r->exp_date_ms >= 0)) {
            gw_lc_rule t = cfg->rules[n];
            cfg->rules[n++] = *r;
            *r = t;
        }
    }
    for (size_t i = n; i < cfg->n; i++) {
        free(cfg->rules[i].prefix);
        md_meta_free(cfg->rules[i].tags, cfg->rules[i].ntags);
    }
    cfg->n = n;
    if (n == 0) {
        free(cfg->rules);
        cfg->rules = NULL;
    } else {
        gw_lc_rule *smaller = realloc(cfg->rules, n * sizeof(*smaller));
        if (smaller) /* else the larger array is kept */
            cfg->rules = smaller;
    }
    return CM_OK;
}

/* The header's value for o under cfg's rules into out: 1, or 0 when no rule expires o. The
 * earliest expiry wins (S3 applies the rule that acts first). */
static int exp_value(const gw_lc_config *cfg, const md_object *o, uint32_t day_s, char *out,
                     size_t cap)
{
    const gw_lc_rule *best = NULL;
    int64_t best_ms = 0;
    for (size_t i = 0; i < cfg->n; i++) {
        const gw_lc_rule *r = &cfg->rules[i];
        int64_t due = gw_lc_expiry_ms(r, o->mtime_ms, day_s);
        if (due >= 0 && (!best || due < best_ms) &&
            gw_lc_rule_matches(r, o->key, o->size, o->tags, o->ntags)) {
            best = r;
            best_ms = due;
        }
    }
    if (!best)
        return 0;
    char date[40], id[sizeof(best->id)];
    cm_time_rfc1123((time_t)(best_ms / 1000), date);
    /* An ID is any text: what would end the quoted string or the header line is replaced. */
    size_t k = 0;
    for (const char *p = best->id; *p && k + 1 < sizeof(id); p++)
        id[k++] = (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f) ? '_' : *p;
    id[k] = '\0';
    snprintf(out, cap, "expiry-date=\"%s\", rule-id=\"%s\"", date, id);
    return 1;
}

static size_t exp_slot_of(const char *bucket)
{
    return cm_crc32c(0, bucket, strlen(bucket)) % EXP_SLOTS;
}

int gw_lc_expiration(gw *g, const char *bucket, const md_object *o, char *out, size_t cap)
{
    gw_lc *w = g->lc;
    if (!w || o->delete_marker)
        return 0;
    /* A single node's slot is valid while no configuration changed (exp_gen); a cluster node's
     * while the document in its copy of the bucket document (from memory, no etcd round trip) is
     * the one the slot was parsed from, so a change through any node is followed. */
    int cluster = gw_cluster_node(g);
    char *doc = NULL;
    size_t len = 0;
    cm_err e;
    if (cluster && config_get(g, bucket, &doc, &len) != CM_OK)
        return 0; /* no configuration */
    exp_slot *s = &w->exp[exp_slot_of(bucket)];
    pthread_mutex_lock(&w->exp_mu);
    if (s->gen == w->exp_gen && strcmp(s->bucket, bucket) == 0 &&
        (!cluster || (s->doc && strcmp(s->doc, doc) == 0))) {
        int found = exp_value(&s->cfg, o, w->cfg.day_s, out, cap);
        pthread_mutex_unlock(&w->exp_mu);
        free(doc);
        return found;
    }
    uint64_t gen = w->exp_gen;
    pthread_mutex_unlock(&w->exp_mu);
    e = cluster ? CM_OK : config_get(g, bucket, &doc, &len);
    if (e != CM_OK && e != CM_ERR_NOTFOUND)
        return 0; /* not kept: the next request reads again */

    gw_lc_config cfg;
    e = exp_parse(doc, len, &cfg);
    if (e != CM_OK) {
        gw_lc_config_release(&cfg);
        if (e != CM_ERR_CORRUPT) {
            free(doc);
            return 0; /* not kept: the next request reads again */
        }
        /* A stored document that does not parse (the worker logs it): kept as no rules. */
    }
    int found = exp_value(&cfg, o, w->cfg.day_s, out, cap);
    pthread_mutex_lock(&w->exp_mu);
    if (w->exp_gen == gen) { /* no configuration changed here while it was parsed: keep it */
        gw_lc_config_release(&s->cfg);
        free(s->doc);
        s->cfg = cfg;
        s->doc = cluster ? doc : NULL;
        s->gen = gen;
        snprintf(s->bucket, sizeof(s->bucket), "%s", bucket);
        memset(&cfg, 0, sizeof(cfg));
        if (cluster)
            doc = NULL; /* kept in the slot */
    }
    pthread_mutex_unlock(&w->exp_mu);
    gw_lc_config_release(&cfg);
    free(doc);
    return found;
}
