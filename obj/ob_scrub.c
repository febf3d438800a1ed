/*
 * ob_scrub.c - the object-level scrubber and self-repair (ob.h, docs/scrub.md).
 *
 * A pass: estimate (count objects and stored bytes from the listings), then walk every bucket
 * in pages of SCRUB_PAGE versions (md_list_versions: each key's latest version, and the older
 * versions a versioned bucket keeps, which are stored bodies too; delete markers have none).
 * Each object is read with ob_version_get_leased, so its blobs stay
 * on disk while we verify them even if a client overwrites or deletes it meanwhile. Every part
 * stored as cells is checked with ob_body_verify and, when damaged, rebuilt and swapped in with
 * ob_body_repair (ob_repair.c says how), paced by this scrubber's rate limit.
 *
 * Inline bodies (in the metadata record) are checked against their stored CRC32C; a mismatch is
 * counted (inline_corrupt) and logged with bucket and key, never repaired: it is the only copy.
 *
 * Rate: a token bucket in bytes, refilled at rate_mb * 10^6 per second with one second of burst;
 * a read that overdraws it sleeps on the scrubber's condition variable (monotonic clock), so
 * stopping wakes it at once.
 *
 * Threading: mu protects every field below it in the struct; counters are updated under mu and
 * copied out whole by ob_scrub_get_status. The pass itself runs without the lock.
 */
#include "ob_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_log.h"
#include "cm_util.h"

#define MOD "scrub"
#define SCRUB_PAGE 1000
#define SCRUB_CHUNK (1u << 20) /* bytes per read of a cell blob */

struct ob_scrub {
    ob_store *store; /* borrowed */
    md_store *md;    /* borrowed */
    ob_scrub_config cfg;
    char *state_path;
    pthread_t thread;
    int have_thread;

    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC: wakes the thread and throttle sleeps */
    int stop, requested, busy;
    double tokens;     /* bytes that may be read now */
    int64_t refill_ms; /* monotonic time of the last refill */
    ob_scrub_status st;
};

void ob_scrub_config_defaults(ob_scrub_config *cfg)
{
    cfg->rate_mb = 50;
    cfg->interval_s = 86400;
    cfg->state_path = NULL;
    cfg->inline_threshold = 64 * 1024;
}

/* ---- counters ---- */

typedef enum {
    C_OBJECT,
    C_BODY,
    C_BYTES,
    C_DAMAGED,
    C_REPAIRED,
    C_FAILED,
    C_CHANGED,
    C_INLINE,
    C_INLINE_BAD
} counter;

static void count(ob_scrub *s, counter c, uint64_t n)
{
    pthread_mutex_lock(&s->mu);
    ob_scrub_status *t = &s->st;
    switch (c) {
    case C_OBJECT:
        t->objects_checked += n, t->pass_objects += n;
        break;
    case C_BODY:
        t->bodies_checked += n;
        break;
    case C_BYTES:
        t->bytes_verified += n, t->pass_bytes += n;
        break;
    case C_DAMAGED:
        t->damaged_found += n, t->pass_damaged += n;
        break;
    case C_REPAIRED:
        t->repaired += n, t->pass_repaired += n;
        break;
    case C_FAILED:
        t->repair_failed += n, t->pass_failed += n;
        break;
    case C_CHANGED:
        t->changed_meanwhile += n;
        break;
    case C_INLINE:
        t->inline_checked += n;
        break;
    case C_INLINE_BAD:
        t->inline_corrupt += n, t->pass_inline_corrupt += n;
        break;
    }
    pthread_mutex_unlock(&s->mu);
}

static int stopping(ob_scrub *s)
{
    return __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

/* ---- rate limit ---- */

static struct timespec mono_deadline(int64_t ms_from_now)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms_from_now / 1000);
    ts.tv_nsec += (long)(ms_from_now % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Take n bytes from the bucket, sleeping while it is overdrawn. -1 when asked to stop. */
static int throttle(ob_scrub *s, uint64_t n)
{
    double rate = s->cfg.rate_mb * 1e6; /* bytes per second */
    if (rate <= 0)
        return stopping(s) ? -1 : 0;
    pthread_mutex_lock(&s->mu);
    int64_t now = cm_monotonic_ms();
    s->tokens = CM_MIN(rate, s->tokens + (double)(now - s->refill_ms) * rate / 1000.0);
    s->refill_ms = now;
    s->tokens -= (double)n;
    while (!s->stop && s->tokens < 0) {
        int64_t wait_ms = (int64_t)(-s->tokens * 1000.0 / rate) + 1;
        struct timespec ts = mono_deadline(wait_ms);
        pthread_cond_timedwait(&s->cond, &s->mu, &ts);
        now = cm_monotonic_ms();
        s->tokens += (double)(now - s->refill_ms) * rate / 1000.0;
        s->refill_ms = now;
    }
    int stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop ? -1 : 0;
}

/* ---- verification ---- */

static int stored_part(const md_part *p)
{
    return !MD_PART_INLINE(p) && p->size > 0;
}

/* The scrubber's pacing of ob_body_verify / ob_body_repair: its rate limit and byte counter. */
static int pace_cb(void *arg, uint64_t n)
{
    return throttle(arg, n);
}

static void verified_cb(void *arg, uint64_t n)
{
    count(arg, C_BYTES, n);
}

static void repair(ob_scrub *s, const char *bucket, const md_object *obj, size_t part)
{
    const md_part *p = &obj->parts[part];
    char oldhex[33], newhex[33];
    md_layout fresh;
    ob_pacer pacer = {pace_cb, NULL, s};
    cm_hex_encode(p->layout.blob, 16, oldhex);
    cm_err e = ob_body_repair(s->store, s->md, bucket, obj, part, &pacer, &fresh);
    if (e == CM_ERR_CLOSED)
        return;
    if (e == CM_ERR_CONFLICT) {
        CM_INFO(MOD, "skip bucket=%s key=%s part=%zu blob=%s: object changed meanwhile", bucket,
                obj->key, part, oldhex);
        count(s, C_CHANGED, 1);
        return;
    }
    if (e != CM_OK) {
        CM_ERROR(MOD, "repair failed bucket=%s key=%s part=%zu blob=%s: %s", bucket, obj->key, part,
                 oldhex, cm_err_str(e));
        count(s, C_FAILED, 1);
        return;
    }
    cm_hex_encode(fresh.blob, 16, newhex);
    CM_INFO(MOD, "repaired bucket=%s key=%s part=%zu size=%" PRIu64 " old_blob=%s new_blob=%s",
            bucket, obj->key, part, p->layout.size, oldhex, newhex);
    count(s, C_REPAIRED, 1);
}

/*
 * Check the inline bodies of obj (its own, or inline parts) against their stored CRC32C. They
 * have a single copy, inside the metadata record, so a mismatch cannot be repaired: it is counted
 * and logged, and GET answers 500 for the object until it is rewritten or deleted.
 */
static void scrub_inline(ob_scrub *s, const char *bucket, const char *key, const md_object *obj)
{
    if (obj->inline_data) { /* a body inline in the record has no parts */
        count(s, C_INLINE, 1);
        if (md_object_inline_verify(obj) != CM_OK) {
            CM_ERROR(MOD,
                     "inline body corrupt bucket=%s key=%s size=%zu: not repairable (its "
                     "only copy is in the metadata record); GET answers 500 until it is rewritten",
                     bucket, key, obj->inline_len);
            count(s, C_INLINE_BAD, 1);
        }
    }
    for (size_t i = 0; i < obj->nparts; i++) {
        if (!obj->parts[i].inline_data)
            continue;
        count(s, C_INLINE, 1);
        if (md_part_inline_verify(&obj->parts[i]) != CM_OK) {
            CM_ERROR(MOD,
                     "inline body corrupt bucket=%s key=%s part=%zu size=%" PRIu64
                     ": not repairable (its only copy is in the metadata record); GET answers "
                     "500 until it is rewritten",
                     bucket, key, i, obj->parts[i].size);
            count(s, C_INLINE_BAD, 1);
        }
    }
}

/* Scrub one object: its latest version (vid NULL) or an older one. -1 when the pass is stopping. */
static int scrub_object(ob_scrub *s, const char *bucket, const char *key, const char *vid,
                        uint8_t *buf)
{
    md_object obj;
    cm_err e = ob_version_get_leased(s->store, s->md, bucket, key, vid, &obj);
    if (e == CM_ERR_NOTFOUND)
        return 0; /* deleted since the listing */
    if (e != CM_OK) {
        CM_WARN(MOD, "cannot read bucket=%s key=%s: %s", bucket, key, cm_err_str(e));
        return 0;
    }
    int rc = 0;
    count(s, C_OBJECT, 1);
    scrub_inline(s, bucket, key, &obj);
    for (size_t i = 0; i < obj.nparts && rc == 0; i++) {
        const md_part *p = &obj.parts[i];
        if (obj.inline_data || !stored_part(p))
            continue;
        cm_err why;
        ob_pacer pacer = {pace_cb, verified_cb, s};
        int bad = ob_body_verify(s->store, &p->layout, buf, SCRUB_CHUNK, &pacer, &why);
        if (bad < 0) {
            rc = -1;
            break;
        }
        count(s, C_BODY, 1);
        if (p->layout.zalg != MD_Z_NONE) {
            pthread_mutex_lock(&s->mu);
            s->st.pass_z_bodies++;
            s->st.pass_z_logical += p->layout.zsize;
            s->st.pass_z_stored += p->layout.size;
            pthread_mutex_unlock(&s->mu);
        }
        if (bad == 0)
            continue;
        char hex[33];
        cm_hex_encode(p->layout.blob, 16, hex);
        CM_WARN(MOD, "damage bucket=%s key=%s part=%zu blob=%s bad_cells=%d of %d (%s)", bucket,
                key, i, hex, bad, p->layout.k + p->layout.m, cm_err_str(why));
        count(s, C_DAMAGED, 1);
        repair(s, bucket, &obj, i);
        rc = stopping(s) ? -1 : 0;
    }
    ob_lease_release(s->store, &obj);
    md_object_release(&obj);
    return rc;
}

/* ---- a pass ---- */

typedef int (*entry_fn)(ob_scrub *s, const char *bucket, const md_list_entry *e, void *arg);

/* Call fn for every version (the latest, and the older ones of versioned buckets; no delete
 * markers) of every object of every bucket, page by page; stops when fn returns < 0. */
static int walk(ob_scrub *s, entry_fn fn, void *arg)
{
    md_bucket *buckets = NULL;
    size_t nb = 0;
    int rc = 0;
    cm_err e = md_bucket_list(s->md, &buckets, &nb);
    if (e != CM_OK) {
        CM_ERROR(MOD, "cannot list buckets: %s", cm_err_str(e));
        return -1;
    }
    for (size_t b = 0; b < nb && rc == 0; b++) {
        char *marker = NULL, *vmarker = NULL;
        for (;;) {
            md_vlist_query q = {
                .key_marker = marker, .vid_marker = vmarker, .max_keys = SCRUB_PAGE};
            md_list_result res;
            if ((e = md_list_versions(s->md, buckets[b].name, &q, &res)) != CM_OK)
                break; /* bucket deleted meanwhile, most likely */
            for (size_t i = 0; i < res.n && rc == 0; i++)
                if (!res.entries[i].is_prefix && !res.entries[i].obj.delete_marker)
                    rc = fn(s, buckets[b].name, &res.entries[i], arg);
            free(marker);
            free(vmarker);
            marker = res.truncated && res.next_marker ? strdup(res.next_marker) : NULL;
            vmarker = marker && res.next_version_marker ? strdup(res.next_version_marker) : NULL;
            md_list_result_release(&res);
            if (!marker || rc != 0)
                break;
        }
        free(marker);
        free(vmarker);
    }
    free(buckets);
    return rc;
}

static int estimate_entry(ob_scrub *s, const char *bucket, const md_list_entry *e, void *arg)
{
    (void)bucket;
    (void)arg;
    int k, m;
    ob_store_geometry(s->store, &k, &m);
    uint64_t size = e->obj.size;
    pthread_mutex_lock(&s->mu);
    s->st.est_objects++;
    if (size > s->cfg.inline_threshold && k > 0)
        s->st.est_bytes += size / (uint64_t)k * (uint64_t)(k + m);
    pthread_mutex_unlock(&s->mu);
    return stopping(s) ? -1 : 0;
}

static int scrub_entry(ob_scrub *s, const char *bucket, const md_list_entry *e, void *arg)
{
    return scrub_object(s, bucket, e->key, e->is_latest ? NULL : e->obj.version_id, arg);
}

static void state_save(ob_scrub *s, int64_t end_ms)
{
    char tmp[4200];
    if (!s->state_path || snprintf(tmp, sizeof(tmp), "%s.tmp", s->state_path) >= (int)sizeof(tmp))
        return;
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "last_end_ms = %" PRId64 "\n", end_ms) < 0 || fclose(f) != 0 ||
        rename(tmp, s->state_path) != 0)
        CM_WARN(MOD, "cannot record the scrub state in %s: %s", s->state_path, strerror(errno));
}

/* Runs a whole pass; the caller has set busy. */
static void pass(ob_scrub *s)
{
    uint8_t *buf = malloc(SCRUB_CHUNK);
    pthread_mutex_lock(&s->mu);
    ob_scrub_status *t = &s->st;
    t->pass_objects = t->pass_bytes = t->pass_damaged = t->pass_repaired = t->pass_failed = 0;
    t->pass_inline_corrupt = 0;
    t->pass_z_bodies = t->pass_z_logical = t->pass_z_stored = 0;
    t->est_objects = t->est_bytes = 0;
    t->last_start_ms = cm_now_ms();
    t->last_end_ms = 0;
    s->tokens = 0;
    s->refill_ms = cm_monotonic_ms();
    uint64_t n = t->passes + 1;
    pthread_mutex_unlock(&s->mu);

    int rc = buf ? walk(s, estimate_entry, NULL) : -1;
    CM_INFO(MOD, "pass start n=%" PRIu64 " objects~%" PRIu64 " bytes~%" PRIu64 " rate_mb=%g", n,
            t->est_objects, t->est_bytes, s->cfg.rate_mb);
    if (rc == 0)
        rc = walk(s, scrub_entry, buf);
    free(buf);

    pthread_mutex_lock(&s->mu);
    t->last_end_ms = cm_now_ms();
    t->passes++;
    ob_scrub_status c = *t;
    pthread_mutex_unlock(&s->mu);
    CM_INFO(MOD,
            "pass end n=%" PRIu64 "%s objects=%" PRIu64 " bytes=%" PRIu64 " damaged=%" PRIu64
            " repaired=%" PRIu64 " failed=%" PRIu64 " inline_corrupt=%" PRIu64 " ms=%" PRId64,
            n, rc == 0 ? "" : " interrupted=1", c.pass_objects, c.pass_bytes, c.pass_damaged,
            c.pass_repaired, c.pass_failed, c.pass_inline_corrupt, c.last_end_ms - c.last_start_ms);
    if (rc == 0)
        state_save(s, c.last_end_ms);
}

cm_err ob_scrub_run_once(ob_scrub *s)
{
    pthread_mutex_lock(&s->mu);
    int busy = s->busy;
    s->busy = 1;
    pthread_mutex_unlock(&s->mu);
    if (busy)
        return CM_ERR_CONFLICT;
    pass(s);
    pthread_mutex_lock(&s->mu);
    s->busy = 0;
    pthread_mutex_unlock(&s->mu);
    return CM_OK;
}

/* ---- the background thread ---- */

static void schedule(ob_scrub *s, int64_t last_end_ms)
{
    s->st.next_due_ms = s->cfg.interval_s > 0 ? last_end_ms + s->cfg.interval_s * 1000 : 0;
}

static void *thread_main(void *arg)
{
    ob_scrub *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        int64_t now = cm_now_ms(), due = s->st.next_due_ms;
        if (s->requested || (due > 0 && now >= due)) {
            s->requested = 0;
            s->busy = 1;
            pthread_mutex_unlock(&s->mu);
            pass(s);
            pthread_mutex_lock(&s->mu);
            s->busy = 0;
            schedule(s, s->st.last_end_ms);
            continue;
        }
        if (due > 0) {
            /* Wall-clock deadline, waited for in bounded monotonic steps (clock changes). */
            struct timespec ts = mono_deadline(CM_MIN(due - now, 60000));
            pthread_cond_timedwait(&s->cond, &s->mu, &ts);
        } else {
            pthread_cond_wait(&s->cond, &s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

cm_err ob_scrub_start(ob_scrub *s)
{
    if (s->have_thread)
        return CM_OK;
    if (pthread_create(&s->thread, NULL, thread_main, s) != 0)
        return CM_ERR_NOMEM;
    s->have_thread = 1;
    return CM_OK;
}

cm_err ob_scrub_trigger(ob_scrub *s, uint64_t *seq)
{
    cm_err e = CM_OK;
    pthread_mutex_lock(&s->mu);
    if (!s->have_thread)
        e = CM_ERR_UNAVAILABLE;
    else if (s->busy || s->requested)
        e = CM_ERR_CONFLICT;
    else {
        s->requested = 1;
        pthread_cond_broadcast(&s->cond);
    }
    if (seq)
        *seq = s->st.passes + 1;
    pthread_mutex_unlock(&s->mu);
    return e;
}

void ob_scrub_get_status(ob_scrub *s, ob_scrub_status *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->running = s->busy || s->requested;
    out->rate_mb = s->cfg.rate_mb;
    pthread_mutex_unlock(&s->mu);
}

/* The end of the last pass from the state file; on first start the clock starts now. */
static int64_t state_load(ob_scrub *s)
{
    long long v = 0;
    FILE *f = s->state_path ? fopen(s->state_path, "r") : NULL;
    int ok = f && fscanf(f, "last_end_ms = %lld", &v) == 1 && v > 0;
    if (f)
        fclose(f);
    if (ok)
        return (int64_t)v;
    int64_t now = cm_now_ms();
    state_save(s, now);
    return now;
}

cm_err ob_scrub_new(ob_store *st, md_store *md, const ob_scrub_config *cfg, ob_scrub **out)
{
    ob_scrub *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;
    if (!s)
        return CM_ERR_NOMEM;
    s->store = st;
    s->md = md;
    ob_scrub_config_defaults(&s->cfg);
    if (cfg)
        s->cfg = *cfg;
    if (s->cfg.state_path && !(s->state_path = strdup(s->cfg.state_path))) {
        free(s);
        return CM_ERR_NOMEM;
    }
    s->cfg.state_path = s->state_path;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    schedule(s, state_load(s));
    *out = s;
    return CM_OK;
}

void ob_scrub_free(ob_scrub *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    if (s->have_thread)
        pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    free(s->state_path);
    free(s);
}
