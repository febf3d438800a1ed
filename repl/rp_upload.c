/*
 * rp_upload.c - multipart uploads as records of the replicated metadata (rp_upload.h, docs/
 * multipart-cluster.md).
 *
 * Every call is made of rp_object_* quorum reads and writes and rp_list_records pages of one
 * partition, so the records inherit everything object records have: N homes, W/R quorums, read
 * repair, hinted handoff in RP_AVAILABLE buckets, anti-entropy. Part records are never
 * overwritten: each UploadPart writes a key of its own, and the current part of a number is the
 * newest record by (hlc, hlc_node), which every node computes alike from the same records. A part
 * record's body is therefore only ever released by a tombstone of that very record, written by
 * Complete (not for the parts the object keeps), Abort, or the UploadPart that wrote it when it
 * finds the upload ended meanwhile: a concurrent UploadPart never takes a body from an object
 * (docs/multipart-cluster.md, "Races"). Which call ends an upload is decided by one
 * compare-and-set of the upload record through the partition leader: a Complete's claim, or an
 * Abort's tombstone ("The claim" below; docs/multipart-cluster.md, "Ending an upload").
 *
 * Memory: a part listing holds one page of records (RP_LIST_MAX) and one md_part summary per
 * number (10,000 at most, about 2 MB); Complete fetches only the kept parts' records.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm_util.h"
#include "rp_int.h"
#include "rp_upload.h"

/* The owner's metadata entry in an upload record: a name no HTTP header can give. */
#define OWNER_META "\x01owner"
/* A claimed upload record's sightings of its claim by Aborts ("The claim" below). */
#define SEEN_META "\x01seen"
#define SEEN_MAX 8 /* node clock epochs remembered per claim */
/* The object key in an upload record: a long-form record key (md_mpkey.c) does not hold it. */
#define KEY_META "\x01key"

/* Remove rec's metadata entry name, its value copied to out (cap bytes; out may be NULL). */
static void meta_take(md_object *rec, const char *name, char *out, size_t cap)
{
    for (size_t i = 0; i < rec->nmeta; i++) {
        if (strcmp(rec->meta[i].name, name) != 0)
            continue;
        if (out)
            snprintf(out, cap, "%s", rec->meta[i].value);
        free(rec->meta[i].name);
        free(rec->meta[i].value);
        memmove(&rec->meta[i], &rec->meta[i + 1], (rec->nmeta - i - 1) * sizeof(*rec->meta));
        rec->nmeta--;
        return;
    }
}

typedef struct {
    char key[MD_MAX_KEY + 1];
} ukey;

cm_err rp_upload_create(rp *c, const char *bucket, const md_upload *up)
{
    ukey k;
    int had = 0;
    cm_err e = md_mpu_upload_key(up->key, up->upload_id, k.key, sizeof(k.key));
    if (e != CM_OK)
        return e;
    md_meta *meta = calloc(up->tmpl.nmeta + 2, sizeof(*meta));
    if (!meta)
        return CM_ERR_NOMEM;
    for (size_t i = 0; i < up->tmpl.nmeta; i++)
        meta[i] = up->tmpl.meta[i]; /* borrowed for the write */
    meta[up->tmpl.nmeta] = (md_meta){OWNER_META, (char *)up->owner};
    /* only a long form's record names its key: a node from before it would hand the entry on to
     * the object as user metadata, and has no use for a long form's upload anyway */
    char id[MD_MPU_ID_LEN + 1];
    int long_form = md_mpu_upload_long_id(k.key, id) == CM_OK;
    meta[up->tmpl.nmeta + 1] = (md_meta){KEY_META, up->key};
    md_object rec = up->tmpl; /* shallow: rp_object_put copies what it keeps */
    rec.key = k.key;
    rec.meta = meta;
    rec.nmeta = up->tmpl.nmeta + 1 + (size_t)long_form;
    memcpy(rec.version_id, "null", 5);
    rec.mtime_ms = up->initiated_ms;
    rec.size = 0;
    rec.inline_data = NULL, rec.inline_len = 0, rec.parts = NULL, rec.nparts = 0;
    rec.tombstone = 0, rec.delete_marker = 0;
    memset(rec.etag, 0, sizeof(rec.etag)); /* open: no claim (rp_upload_claim) */
    /* Listings carry summaries (no metadata): the owner goes where a summary shows it. */
    memset(rec.upload_id, 0, sizeof(rec.upload_id));
    if (strlen(up->owner) < sizeof(rec.upload_id))
        memcpy(rec.upload_id, up->owner, strlen(up->owner));
    e = rp_object_put(c, bucket, &rec, NULL, NULL, &had);
    free(meta);
    return e;
}

/* Move rec (an upload record) into out. */
static cm_err upload_from_record(md_object *rec, const char *key, const char *upload_id,
                                 md_upload *out)
{
    memset(out, 0, sizeof(*out));
    if (!(out->key = strdup(key))) {
        md_object_release(rec);
        return CM_ERR_NOMEM;
    }
    memcpy(out->upload_id, upload_id, MD_MPU_ID_LEN + 1);
    out->initiated_ms = rec->mtime_ms;
    meta_take(rec, OWNER_META, out->owner, sizeof(out->owner));
    meta_take(rec, SEEN_META, NULL, 0);
    meta_take(rec, KEY_META, NULL, 0);
    free(rec->key);
    rec->key = NULL;
    memset(rec->upload_id, 0, sizeof(rec->upload_id));
    memset(rec->etag, 0, sizeof(rec->etag)); /* a Complete's claim, not the object's */
    rec->mtime_ms = 0, rec->hlc = 0, rec->hlc_node = 0, rec->generation = 0;
    memset(&rec->vv, 0, sizeof(rec->vv));
    out->tmpl = *rec;
    memset(rec, 0, sizeof(*rec));
    return CM_OK;
}

cm_err rp_upload_get(rp *c, const char *bucket, const char *key, const char *upload_id,
                     md_upload *out)
{
    ukey k;
    md_object rec;
    memset(out, 0, sizeof(*out));
    /* A malformed id or a key too long to have an upload: no such upload. */
    if (md_mpu_upload_key(key, upload_id, k.key, sizeof(k.key)) != CM_OK)
        return CM_ERR_NOTFOUND;
    cm_err e = rp_object_get(c, bucket, k.key, &rec);
    return e == CM_OK ? upload_from_record(&rec, key, upload_id, out) : e;
}

/* Whether the object record of key was made by upload_id and names the body of part: CM_OK
 * with *used set, or the error of the read (other than the object's absence). */
static cm_err object_uses(rp *c, const char *bucket, const char *key, const char *upload_id,
                          const md_part *part, int *used)
{
    md_object cur;
    *used = 0;
    if (MD_PART_INLINE(part)) /* the object keeps its own copy of an inline body */
        return CM_OK;
    cm_err e = rp_object_get(c, bucket, key, &cur);
    if (e != CM_OK)
        return e == CM_ERR_NOTFOUND ? CM_OK : e;
    for (size_t i = 0; strcmp(cur.upload_id, upload_id) == 0 && !*used && i < cur.nparts; i++)
        *used = !MD_PART_INLINE(&cur.parts[i]) &&
                memcmp(cur.parts[i].layout.blob, part->layout.blob, 16) == 0;
    md_object_release(&cur);
    return CM_OK;
}

/*
 * The fate of the live part record k (naming part's body) once the upload may have ended: if a
 * Complete or Abort ended it, that call may have listed its parts before this record arrived, and
 * nothing else would ever release it. The record then gets a plain tombstone (its body becomes
 * garbage on its replicas) and *ended is set, unless the object the upload became uses this very
 * body (a Complete that did list it). The object is written before the upload's tombstone, so
 * once the upload reads as gone, the object reads as written. CM_OK: settled (an open upload's
 * Complete or Abort, or that tombstone, ends the record). *gone: the upload read as ended.
 */
static cm_err part_settle(rp *c, const char *bucket, const char *key, const char *upload_id,
                          const char *k, const md_part *part, int *ended, int *gone)
{
    md_upload up;
    int had = 0, used;
    *ended = 0, *gone = 0;
    /* Open, or claimed by a Complete: that Complete's walk of the parts comes after the
     * upload's tombstone, so after this read, and finds this record. */
    cm_err e = rp_upload_get(c, bucket, key, upload_id, &up);
    md_upload_release(&up);
    if (e != CM_ERR_NOTFOUND)
        return e;
    *gone = 1;
    if ((e = object_uses(c, bucket, key, upload_id, part, &used)) != CM_OK)
        return e; /* unsure whether the object uses it: the record stays (the intent decides) */
    if (used)
        return CM_OK;
    e = rp_object_delete(c, bucket, k, NULL, NULL, &had);
    *ended = e == CM_OK;
    return e;
}

cm_err rp_part_put_id(rp *c, const char *bucket, const char *key, const char *upload_id,
                      uint64_t id, const md_part *part, int *settled)
{
    md_upload up;
    char k[MD_MPU_PART_KEY_MAX];
    int had = 0, ended = 0, gone = 0;
    *settled = 0;
    cm_err e = rp_upload_get(c, bucket, key, upload_id, &up);
    if (e != CM_OK)
        return e;
    md_upload_release(&up);
    if ((e = md_mpu_part_key(key, upload_id, part->number, id, k, sizeof(k))) != CM_OK)
        return e;
    md_object rec;
    memset(&rec, 0, sizeof(rec));
    rec.key = k;
    memcpy(rec.version_id, "null", 5);
    rec.size = part->size;
    rec.mtime_ms = part->mtime_ms;
    memcpy(rec.etag, part->etag, sizeof(part->etag));
    rec.ck_alg = part->ck_alg;
    memcpy(rec.ck_value, part->ck_value, sizeof(rec.ck_value));
    memcpy(rec.upload_id, upload_id, MD_MPU_ID_LEN + 1);
    rec.parts = (md_part *)part; /* borrowed for the write */
    rec.nparts = 1;
    if ((e = rp_object_put(c, bucket, &rec, NULL, NULL, &had)) != CM_OK)
        return e;
    e = part_settle(c, bucket, key, upload_id, k, part, &ended, &gone);
    if (e != CM_OK) /* the upload read failed: recorded (a Complete or Abort, or the intent,
                       settles it); or it ended and the record could not be settled: 503 */
        return gone ? e : CM_OK;
    *settled = 1;
    return ended ? CM_ERR_NOTFOUND : CM_OK;
}

cm_err rp_part_put(rp *c, const char *bucket, const char *key, const char *upload_id,
                   const md_part *part)
{
    uint64_t id;
    int settled;
    cm_err e = cm_random(&id, sizeof(id));
    return e == CM_OK ? rp_part_put_id(c, bucket, key, upload_id, id, part, &settled) : e;
}

/* Whether some part of rec names blob. */
static int names_blob(const md_object *rec, const uint8_t *blob)
{
    for (size_t i = 0; i < rec->nparts; i++)
        if (!MD_PART_INLINE(&rec->parts[i]) && memcmp(rec->parts[i].layout.blob, blob, 16) == 0)
            return 1;
    return 0;
}

/*
 * An intent older than the tombstone grace (rp_part_intent_decide's old): a Complete's tombstone
 * naming its body may have been collected, so that "no record names the body" proves nothing.
 * Freed only when the object this very upload made reads without the body (its Complete did not
 * keep it); owned when the object names it; held otherwise (no object, another one, a version
 * of a versioned bucket the current record does not show): never freed blindly.
 */
static cm_err old_verdict(rp *c, const char *bucket, const char *key, const char *upload_id,
                          const uint8_t *blob, int *verdict)
{
    md_object cur;
    cm_err e = rp_object_get(c, bucket, key, &cur);
    *verdict = RP_INTENT_HELD;
    if (e != CM_OK)
        return e == CM_ERR_NOTFOUND ? CM_OK : e;
    if (names_blob(&cur, blob))
        *verdict = RP_INTENT_OWNED;
    else if (strcmp(cur.upload_id, upload_id) == 0)
        *verdict = RP_INTENT_FREE;
    md_object_release(&cur);
    return CM_OK;
}

cm_err rp_part_intent_decide(rp *c, const char *bucket, const char *key, const char *upload_id,
                             uint32_t number, uint64_t id, const uint8_t *blob, int old,
                             int *verdict)
{
    char k[MD_MPU_PART_KEY_MAX];
    md_object rec;
    int had = 0, ended, gone;
    *verdict = RP_INTENT_OWNED;
    cm_err e = md_mpu_part_key(key, upload_id, number, id, k, sizeof(k));
    if (e != CM_OK)
        return e;
    if ((e = rp_record_get(c, bucket, k, &rec)) == CM_ERR_NOTFOUND) {
        if (old && ((e = old_verdict(c, bucket, key, upload_id, blob, verdict)) != CM_OK ||
                    *verdict != RP_INTENT_FREE))
            return e;
        /* The writer died before its record landed on a quorum. A copy on one home that this
         * read missed would still spread; a tombstone stamped now supersedes it (its merge makes
         * garbage of the body: freed twice, which deletes nothing more). */
        md_object t;
        memset(&t, 0, sizeof(t));
        t.key = k;
        memcpy(t.version_id, "null", 5);
        t.tombstone = 1;
        e = rp_object_put(c, bucket, &t, NULL, NULL, &had);
        if (e == CM_ERR_NOTFOUND) /* the bucket is gone, and every record with it */
            e = CM_OK;
        *verdict = e == CM_OK ? RP_INTENT_FREE : RP_INTENT_OWNED;
        return e;
    }
    if (e != CM_OK)
        return e;
    if (!names_blob(&rec, blob) && old)
        e = old_verdict(c, bucket, key, upload_id, blob, verdict);
    else if (!names_blob(&rec, blob))
        *verdict = RP_INTENT_FREE; /* no record of this key names the body (a plain tombstone's
                                      replicas have made it garbage already, if it was ever
                                      live: a second free is idle) */
    else if (!rec.tombstone)       /* recorded: the upload decides, as after an UploadPart */
        e = part_settle(c, bucket, key, upload_id, k, &rec.parts[0], &ended, &gone);
    /* else a Complete's tombstone that keeps the body: the object owns it */
    md_object_release(&rec);
    return e;
}

/* Walk every live part record of the upload, page by page: fn(arg, rec, number, id). */
typedef cm_err (*part_fn)(void *arg, const md_object *rec, uint32_t number, uint64_t id, int *stop);

static cm_err parts_walk(rp *c, const char *bucket, const char *key, const char *upload_id,
                         uint32_t after, part_fn fn, void *arg)
{
    char pre[MD_MPU_PART_KEY_MAX], from[MD_MPU_PART_KEY_MAX + 16];
    if (md_mpu_part_prefix(key, upload_id, pre, sizeof(pre)) != CM_OK)
        return CM_ERR_NOTFOUND;
    size_t pl = strlen(pre);
    char *next = NULL;
    const char *start = NULL;
    if (after > 0) { /* past every record of number `after`: ids are hex, 'g' sorts above */
        snprintf(from, sizeof(from), "%s%05u%cg", pre, after, 0x01);
        start = from;
    }
    cm_err e = CM_OK;
    int stop = 0;
    do {
        md_object *recs = NULL;
        size_t n = 0;
        char *more = NULL;
        e = rp_list_records(c, bucket, key, pre, start, RP_LIST_MAX, &recs, &n, &more);
        for (size_t i = 0; e == CM_OK && !stop && i < n; i++) {
            uint32_t number;
            uint64_t id;
            if (md_mpu_part_split(recs[i].key, pl, &number, &id) == CM_OK && number > after)
                e = fn(arg, &recs[i], number, id, &stop);
        }
        md_objects_free(recs, n);
        free(next);
        next = more;
        start = next;
    } while (e == CM_OK && !stop && next);
    free(next);
    return e;
}

typedef struct {
    md_part *a;
    uint64_t *ids;
    uint64_t hlc; /* of the last number's chosen record */
    uint32_t node;
    size_t n, cap, max;
    int truncated;
} list_ctx;

static cm_err list_one(void *arg, const md_object *rec, uint32_t number, uint64_t id, int *stop)
{
    list_ctx *l = arg;
    md_part *p;
    if (l->n && l->a[l->n - 1].number == number) {
        if (rec->hlc < l->hlc || (rec->hlc == l->hlc && rec->hlc_node <= l->node))
            return CM_OK; /* an older upload of the same number */
        p = &l->a[l->n - 1];
    } else {
        if (l->n == l->max) {
            l->truncated = 1;
            *stop = 1;
            return CM_OK;
        }
        if (l->n == l->cap) {
            size_t nc = l->cap ? l->cap * 2 : 64;
            md_part *a = realloc(l->a, nc * sizeof(*a));
            uint64_t *ids = a ? realloc(l->ids, nc * sizeof(*ids)) : NULL;
            if (a)
                l->a = a;
            if (!ids)
                return CM_ERR_NOMEM;
            l->ids = ids, l->cap = nc;
        }
        p = &l->a[l->n++];
    }
    memset(p, 0, sizeof(*p));
    p->number = number;
    p->size = rec->size;
    p->mtime_ms = rec->mtime_ms;
    memcpy(p->etag, rec->etag, sizeof(p->etag) - 1);
    p->ck_alg = rec->ck_alg;
    memcpy(p->ck_value, rec->ck_value, sizeof(p->ck_value));
    l->ids[l->n - 1] = id;
    l->hlc = rec->hlc, l->node = rec->hlc_node;
    return CM_OK;
}

cm_err rp_part_list(rp *c, const char *bucket, const char *key, const char *upload_id,
                    uint32_t after, size_t max, md_part **parts, size_t *n, int *truncated,
                    uint64_t **ids)
{
    list_ctx l = {.max = max};
    cm_err e = parts_walk(c, bucket, key, upload_id, after, list_one, &l);
    if (e != CM_OK) {
        free(l.a);
        free(l.ids);
        return e;
    }
    *parts = l.a, *n = l.n, *truncated = l.truncated;
    if (ids)
        *ids = l.ids;
    else
        free(l.ids);
    return CM_OK;
}

cm_err rp_part_fetch(rp *c, const char *bucket, const char *key, const char *upload_id,
                     uint32_t number, uint64_t id, md_part *out)
{
    char k[MD_MPU_PART_KEY_MAX];
    md_object rec;
    memset(out, 0, sizeof(*out));
    cm_err e = md_mpu_part_key(key, upload_id, number, id, k, sizeof(k));
    if (e == CM_OK)
        e = rp_object_get(c, bucket, k, &rec);
    if (e != CM_OK)
        return e == CM_ERR_NOTFOUND ? CM_ERR_CONFLICT : e;
    if (rec.nparts != 1 || rec.parts[0].number != number) {
        md_object_release(&rec);
        return CM_ERR_CORRUPT;
    }
    *out = rec.parts[0];
    memset(&rec.parts[0], 0, sizeof(rec.parts[0]));
    md_object_release(&rec);
    return CM_OK;
}

/* ---- End: Complete and Abort ---- */

typedef struct {
    rp *c;
    const char *bucket;
    const md_part *kept;
    const uint64_t *kept_ids;
    size_t nkept;
} end_ctx;

static cm_err end_one(void *arg, const md_object *rec, uint32_t number, uint64_t id, int *stop)
{
    end_ctx *x = arg;
    int had = 0;
    (void)stop;
    for (size_t j = 0; j < x->nkept; j++) {
        if (x->kept_ids[j] != id || x->kept[j].number != number || MD_PART_INLINE(&x->kept[j]))
            continue;
        /* The object uses this body: a tombstone that still names it, so no replica's merge
         * turns it into garbage; the object record owns it from now on. */
        md_object t;
        memset(&t, 0, sizeof(t));
        t.key = rec->key;
        memcpy(t.version_id, "null", 5);
        t.tombstone = 1;
        t.parts = (md_part *)&x->kept[j];
        t.nparts = 1;
        return rp_object_put(x->c, x->bucket, &t, NULL, NULL, &had);
    }
    return rp_object_delete(x->c, x->bucket, rec->key, NULL, NULL, &had);
}

/* Tombstone every part record of the upload (end_one). */
static cm_err end_parts(rp *c, const char *bucket, const char *key, const char *upload_id,
                        const md_part *kept, const uint64_t *kept_ids, size_t nkept)
{
    end_ctx x = {c, bucket, kept, kept_ids, nkept};
    return parts_walk(c, bucket, key, upload_id, 0, end_one, &x);
}

cm_err rp_upload_end(rp *c, const char *bucket, const char *key, const char *upload_id,
                     const md_part *kept, const uint64_t *kept_ids, size_t nkept)
{
    ukey k;
    int had = 0;
    cm_err e = md_mpu_upload_key(key, upload_id, k.key, sizeof(k.key));
    /* The upload first: from now on no UploadPart starts and no Complete or Abort finds it. */
    if (e == CM_OK)
        e = rp_object_delete(c, bucket, k.key, NULL, NULL, &had);
    if (e == CM_OK)
        e = end_parts(c, bucket, key, upload_id, kept, kept_ids, nkept);
    return e;
}

/* ---- The claim: which of several calls ends an upload ---- */

/*
 * A Complete claims the upload before it writes the object: one compare-and-set of the upload
 * record through its partition's leader (the record's etag, "" while open, becomes CLAIM_TAG
 * with the digest of the kept part records and the claim's wall-clock time). Of two Completes
 * with different part lists one claim wins; the other finds the record claimed by another
 * digest (or ended) and answers NoSuchUpload without writing anything. An Abort ends the upload
 * with a compare-and-set of its own (the etag it read), so it cannot slip between a claim and
 * the object write either.
 *
 * A claim whose Complete died: no two nodes' clocks are compared. The claim's wall-clock time
 * is for reading only (and for binaries before this rule). The Complete writes its object only
 * within RP_CLAIM_WRITE_MS of starting its claim, on its own monotonic clock. An Abort that meets
 * the claim records a sighting in the record (SEEN_META, "epoch:ms;" per clock epoch, hex epoch,
 * its monotonic ms taken after its read of the claim, so after the claim was written), with a
 * compare-and-set on the claim's etag; an Abort whose own epoch's sighting is RP_CLAIM_STALE_MS
 * old on that same clock takes over. Every claim write (a retry stamping anew) drops the
 * sightings. So a claim taken over is one that existed unchanged for RP_CLAIM_STALE_MS of one
 * clock, far past its Complete's window; only the rates of clocks matter, not their offsets.
 */
#define CLAIM_TAG "~claim-"
#define CLAIM_TAG_LEN (sizeof(CLAIM_TAG) - 1)

/* The digest of the kept part records (number and record id of each): FNV-1a, 64 bits. */
static uint64_t claim_digest(const md_part *kept, const uint64_t *ids, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        uint64_t v[2] = {kept[i].number, ids[i]};
        const uint8_t *b = (const uint8_t *)v;
        for (size_t j = 0; j < sizeof(v); j++)
            h = (h ^ b[j]) * 0x100000001b3ULL;
    }
    return h;
}

/* Whether etag is a claim; *digest and *at_ms from it. */
static int claim_parse(const char *etag, uint64_t *digest, int64_t *at_ms)
{
    char *end;
    if (strncmp(etag, CLAIM_TAG, CLAIM_TAG_LEN) != 0)
        return 0;
    *digest = strtoull(etag + CLAIM_TAG_LEN, &end, 16);
    if (*end != '-')
        return 0;
    *at_ms = strtoll(end + 1, &end, 10);
    return *end == 0;
}

/* The upload's record as stored (owner entry included). */
static cm_err upload_record(rp *c, const char *bucket, const char *key, const char *upload_id,
                            ukey *k, md_object *rec)
{
    memset(rec, 0, sizeof(*rec));
    if (md_mpu_upload_key(key, upload_id, k->key, sizeof(k->key)) != CM_OK)
        return CM_ERR_NOTFOUND;
    return rp_object_get(c, bucket, k->key, rec);
}

/* Replace the upload record rec (read with etag `from`) by a copy whose etag is `to`. */
static cm_err upload_cas(rp *c, const char *bucket, md_object *rec, const char *from,
                         const char *to)
{
    char was[sizeof(rec->etag)];
    int had = 0;
    snprintf(was, sizeof(was), "%s", from);
    snprintf(rec->etag, sizeof(rec->etag), "%s", to);
    md_cond cond = {.if_match = was};
    return rp_object_put(c, bucket, rec, &cond, NULL, &had);
}

/* This node's monotonic clock and its epoch (rp_config.mono). */
static int64_t mono_now(rp *c, uint64_t *epoch)
{
    if (c->cfg.mono)
        return c->cfg.mono(c->cfg.mono_arg, epoch);
    char id[64] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (!f || !fgets(id, sizeof(id), f)) /* no boot id (not Linux): the host's name, and a */
        gethostname(id, sizeof(id) - 1); /* reboot's clock must not be behind the sighting's */
    if (f)
        fclose(f);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = id; *p && *p != '\n'; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    *epoch = h;
    return cm_monotonic_ms();
}

/*
 * An Abort met rec, claimed by a Complete that made no object: CM_OK when this node's clock has
 * seen the claim for RP_CLAIM_STALE_MS (the Complete is dead: the Abort takes over), else
 * CM_ERR_NOTFOUND (the Complete ends the upload), after recording this node's first sighting.
 */
static cm_err claim_seen(rp *c, const char *bucket, md_object *rec)
{
    uint64_t epoch;
    int64_t now = mono_now(c, &epoch), mine = -1;
    char val[SEEN_MAX * 40] = "", out[SEEN_MAX * 40] = "", *save = NULL;
    size_t n = 0, len = 0;
    for (size_t i = 0; i < rec->nmeta; i++)
        if (strcmp(rec->meta[i].name, SEEN_META) == 0)
            snprintf(val, sizeof(val), "%s", rec->meta[i].value);
    for (char *t = strtok_r(val, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
        char *end;
        uint64_t ep = strtoull(t, &end, 16);
        int64_t at = *end == ':' ? strtoll(end + 1, &end, 10) : -1;
        if (at < 0 || *end)
            continue; /* not a sighting */
        if (ep == epoch)
            mine = at;
        else if (n < SEEN_MAX - 1 && len < sizeof(out))
            len +=
                (size_t)snprintf(out + len, sizeof(out) - len, "%" PRIx64 ":%" PRId64 ";", ep, at),
                n++;
    }
    if (mine >= 0 && mine <= now) /* a later one is of an earlier boot: seen anew */
        return now - mine >= RP_CLAIM_STALE_MS ? CM_OK : CM_ERR_NOTFOUND;
    if (len < sizeof(out))
        snprintf(out + len, sizeof(out) - len, "%" PRIx64 ":%" PRId64 ";", epoch, now);
    char *v = strdup(out), *name = strdup(SEEN_META);
    md_meta *m = realloc(rec->meta, (rec->nmeta + 1) * sizeof(*m));
    if (m)
        rec->meta = m;
    if (!v || !name || !m) {
        free(v), free(name);
        return CM_ERR_NOMEM;
    }
    meta_take(rec, SEEN_META, NULL, 0);
    rec->meta[rec->nmeta++] = (md_meta){name, v};
    char tag[sizeof(rec->etag)];
    snprintf(tag, sizeof(tag), "%s", rec->etag);
    cm_err e = upload_cas(c, bucket, rec, tag, tag);
    snprintf(rec->etag, sizeof(rec->etag), "%s", tag);
    /* Recorded, or the claim changed meanwhile (stamped anew, or ended): not dead either way. */
    return e == CM_OK || e == CM_ERR_PRECONDITION ? CM_ERR_NOTFOUND : e;
}

cm_err rp_upload_claim(rp *c, const char *bucket, const char *key, const char *upload_id,
                       const md_part *kept, const uint64_t *kept_ids, size_t nkept)
{
    uint64_t mine = claim_digest(kept, kept_ids, nkept), digest;
    int64_t at = 0; /* set by claim_parse whenever from == tag below */
    char tag[sizeof(((md_object *)0)->etag)];
    md_hlc *clk = c->cfg.clock;
    snprintf(tag, sizeof(tag), CLAIM_TAG "%016" PRIx64 "-%" PRId64, mine,
             clk->wall ? clk->wall(clk->wall_arg) : cm_now_ms()); /* for reading only */
    for (int t = 0; t < 3; t++) {
        ukey k;
        md_object rec;
        cm_err e = upload_record(c, bucket, key, upload_id, &k, &rec);
        if (e != CM_OK)
            return e;
        if (claim_parse(rec.etag, &digest, &at) && digest != mine) {
            md_object_release(&rec);
            return CM_ERR_NOTFOUND; /* another Complete's: it ends the upload */
        }
        /* Open, or this very Complete's claim (a retry): stamped anew, so the object write
         * below comes within RP_CLAIM_WRITE_MS of it, and without the Aborts' sightings. */
        meta_take(&rec, SEEN_META, NULL, 0);
        char from[sizeof(rec.etag)];
        snprintf(from, sizeof(from), "%s", rec.etag);
        if (strcmp(from, tag) == 0) /* a new etag, so that a sighting of the old one fails */
            snprintf(tag, sizeof(tag), CLAIM_TAG "%016" PRIx64 "-%" PRId64, mine, at + 1);
        e = upload_cas(c, bucket, &rec, from, tag);
        md_object_release(&rec);
        if (e != CM_ERR_PRECONDITION)
            return e; /* CM_ERR_NOTFOUND: ended meanwhile */
    }
    return CM_ERR_UNAVAILABLE; /* the record kept changing under the claim */
}

cm_err rp_upload_unclaim(rp *c, const char *bucket, const char *key, const char *upload_id,
                         const md_part *kept, const uint64_t *kept_ids, size_t nkept)
{
    ukey k;
    md_object rec;
    uint64_t digest;
    int64_t at;
    cm_err e = upload_record(c, bucket, key, upload_id, &k, &rec);
    if (e != CM_OK)
        return e;
    if (claim_parse(rec.etag, &digest, &at) && digest == claim_digest(kept, kept_ids, nkept)) {
        meta_take(&rec, SEEN_META, NULL, 0);
        char from[sizeof(rec.etag)];
        snprintf(from, sizeof(from), "%s", rec.etag);
        e = upload_cas(c, bucket, &rec, from, "");
    }
    md_object_release(&rec);
    return e;
}

typedef struct {
    rp *c;
    const char *bucket, *key, *upload_id;
    const md_object *obj; /* the object this upload made */
    md_part *kept;
    uint64_t *ids;
    size_t n;
} spare_ctx;

/* A part record whose body the object names is kept. */
static cm_err spare_one(void *arg, const md_object *rec, uint32_t number, uint64_t id, int *stop)
{
    spare_ctx *s = arg;
    (void)rec, (void)stop;
    for (size_t j = 0; j < s->obj->nparts; j++) {
        const md_part *op = &s->obj->parts[j];
        if (op->number != number || MD_PART_INLINE(op))
            continue;
        md_part p;
        cm_err e = rp_part_fetch(s->c, s->bucket, s->key, s->upload_id, number, id, &p);
        if (e == CM_ERR_CONFLICT)
            return CM_OK;
        if (e != CM_OK)
            return e;
        if (MD_PART_INLINE(&p) || memcmp(p.layout.blob, op->layout.blob, 16) != 0) {
            md_part_release(&p);
            return CM_OK;
        }
        md_part *a = realloc(s->kept, (s->n + 1) * sizeof(*a));
        uint64_t *ids = a ? realloc(s->ids, (s->n + 1) * sizeof(*ids)) : NULL;
        if (a)
            s->kept = a;
        if (!ids) {
            md_part_release(&p);
            return CM_ERR_NOMEM;
        }
        s->ids = ids;
        s->kept[s->n] = p;
        s->ids[s->n++] = id;
        return CM_OK;
    }
    return CM_OK;
}

/* The bodies of the object of key that this very upload made (a Complete that stopped after
 * writing it, or is still ending the upload): s->kept. *made: whether there is such an object. */
static cm_err spare_made(spare_ctx *s, int *made)
{
    md_object cur;
    *made = 0;
    cm_err e = rp_object_get(s->c, s->bucket, s->key, &cur);
    if (e == CM_ERR_NOTFOUND)
        return CM_OK;
    if (e != CM_OK)
        return e;
    s->obj = &cur;
    if (strcmp(cur.upload_id, s->upload_id) == 0) {
        *made = 1;
        e = parts_walk(s->c, s->bucket, s->key, s->upload_id, 0, spare_one, s);
    }
    s->obj = NULL;
    md_object_release(&cur);
    return e;
}

cm_err rp_upload_abort(rp *c, const char *bucket, const char *key, const char *upload_id)
{
    ukey k;
    md_object rec;
    uint64_t digest;
    int64_t at;
    int made = 0, had = 0;
    spare_ctx s = {c, bucket, key, upload_id, NULL, NULL, NULL, 0};
    cm_err e = upload_record(c, bucket, key, upload_id, &k, &rec);
    if (e != CM_OK)
        return e;
    e = spare_made(&s, &made);
    /* A Complete claimed the upload and has not written its object yet: it ends the upload
     * (its client retries it should it die). A claim this node has seen unchanged for
     * RP_CLAIM_STALE_MS is a Complete that died and was never retried: the Abort takes over;
     * that Complete, were it still alive, no longer writes its object (RP_CLAIM_WRITE_MS). */
    if (e == CM_OK && !made && claim_parse(rec.etag, &digest, &at))
        e = claim_seen(c, bucket, &rec);
    /* The upload's tombstone only if the record is still the one read: a claim landing after
     * this read makes it fail, and the Complete goes on. */
    if (e == CM_OK) {
        md_cond cond = {.if_match = rec.etag};
        e = rp_object_delete(c, bucket, k.key, &cond, NULL, &had);
        if (e == CM_ERR_PRECONDITION) /* claimed (or claimed anew) meanwhile */
            e = CM_ERR_NOTFOUND;
    }
    md_object_release(&rec);
    if (e == CM_OK)
        e = end_parts(c, bucket, key, upload_id, s.kept, s.ids, s.n);
    md_parts_free(s.kept, s.n);
    free(s.ids);
    return e;
}

/* ---- ListMultipartUploads ---- */

/* A long-form upload entry (its key only in its record, KEY_META) appended to out: an entry
 * ended meanwhile, or whose record names a key that is not its own, is skipped. */
static cm_err add_long_upload(md_upload_list *out, rp *c, const char *bucket, const char *rkey,
                              const char *id)
{
    char key[MD_MAX_KEY + 1] = "";
    ukey k;
    md_object rec;
    cm_err e = rp_object_get(c, bucket, rkey, &rec);
    if (e != CM_OK)
        return e == CM_ERR_NOTFOUND ? CM_OK : e;
    for (size_t i = 0; i < rec.nmeta; i++)
        if (strcmp(rec.meta[i].name, KEY_META) == 0 && strlen(rec.meta[i].value) < sizeof(key))
            snprintf(key, sizeof(key), "%s", rec.meta[i].value);
    if (md_mpu_upload_key(key, id, k.key, sizeof(k.key)) != CM_OK || strcmp(k.key, rkey) != 0) {
        md_object_release(&rec);
        return CM_OK;
    }
    md_upload *a = realloc(out->uploads, (out->n + 1) * sizeof(*a));
    if (!a) {
        md_object_release(&rec);
        return CM_ERR_NOMEM;
    }
    out->uploads = a;
    e = upload_from_record(&rec, key, id, &a[out->n]);
    out->n += e == CM_OK;
    return e;
}

static cm_err add_upload(md_upload_list *out, rp *c, const char *bucket, md_list_entry *en)
{
    char key[MD_MAX_KEY + 1], id[MD_MPU_ID_LEN + 1];
    if (md_mpu_upload_split(en->key, key, id) != CM_OK)
        return md_mpu_upload_long_id(en->key, id) == CM_OK
                   ? add_long_upload(out, c, bucket, en->key, id)
                   : CM_OK; /* not an upload record: skipped */
    md_upload *a = realloc(out->uploads, (out->n + 1) * sizeof(*a));
    if (!a)
        return CM_ERR_NOMEM;
    out->uploads = a;
    md_upload *u = &a[out->n];
    if (!en->obj.upload_id[0]) /* an owner too long for the summary: the whole record */
        return rp_upload_get(c, bucket, key, id, u) == CM_OK ? (out->n++, CM_OK) : CM_OK;
    memset(u, 0, sizeof(*u));
    if (!(u->key = strdup(key)))
        return CM_ERR_NOMEM;
    memcpy(u->upload_id, id, sizeof(id));
    u->initiated_ms = en->obj.mtime_ms;
    snprintf(u->owner, sizeof(u->owner), "%s", en->obj.upload_id);
    memcpy(u->tmpl.storage_class, en->obj.storage_class, sizeof(u->tmpl.storage_class));
    u->tmpl.ck_alg = en->obj.ck_alg;
    u->tmpl.ck_type = en->obj.ck_type;
    out->n++;
    return CM_OK;
}

static cm_err add_prefix(md_upload_list *out, const char *uprefix)
{
    char p[MD_MAX_KEY + 1];
    if (md_mpu_prefix_split(uprefix, p) != CM_OK)
        return CM_OK;
    char **a = realloc(out->prefixes, (out->nprefixes + 1) * sizeof(*a));
    if (!a)
        return CM_ERR_NOMEM;
    out->prefixes = a;
    if (!(a[out->nprefixes] = strdup(p)))
        return CM_ERR_NOMEM;
    out->nprefixes++;
    return CM_OK;
}

/* next_key_marker / next_upload_id_marker: the last entry of the page that names a key (a
 * long-form upload's key is the one add_long_upload read; one ended meanwhile names none, and the
 * next page lists after the entry before it, where that upload is gone). */
static cm_err set_next(md_upload_list *out, const md_list_entry *entries, size_t n)
{
    char key[MD_MAX_KEY + 1], id[MD_MPU_ID_LEN + 1];
    int up = 0, found = 0;
    for (size_t i = n; !found && i-- > 0;) {
        const md_list_entry *en = &entries[i];
        up = !en->is_prefix && md_mpu_upload_split(en->key, key, id) == CM_OK;
        found = up || (en->is_prefix && md_mpu_prefix_split(en->key, key) == CM_OK);
        if (found || en->is_prefix || md_mpu_upload_long_id(en->key, id) != CM_OK)
            continue;
        for (size_t j = out->n; !found && j-- > 0;)
            if (strcmp(out->uploads[j].upload_id, id) == 0) {
                snprintf(key, sizeof(key), "%s", out->uploads[j].key);
                found = up = 1;
            }
    }
    if (!found)
        return CM_OK;
    out->next_key_marker = strdup(key);
    out->next_upload_id_marker = up ? strdup(id) : NULL;
    return out->next_key_marker && (!up || out->next_upload_id_marker) ? CM_OK : CM_ERR_NOMEM;
}

cm_err rp_upload_list(rp *c, const char *bucket, const md_upload_query *q, md_upload_list *out)
{
    char prefix[MD_MAX_KEY + 1], after[MD_MAX_KEY + 4 + MD_MPU_ID_LEN];
    md_list_result res;
    memset(out, 0, sizeof(*out));
    if (md_mpu_upload_prefix(q->prefix, prefix, sizeof(prefix)) != CM_OK)
        return CM_OK; /* a prefix no upload key can have */
    md_list_query lq = {.prefix = prefix, .delimiter = q->delimiter, .max_keys = q->max_uploads};
    if (q->key_marker && *q->key_marker) {
        /* After every upload of the marker's key, or after its upload id marker. */
        if (md_mpu_upload_key_prefix(q->key_marker, after, MD_MAX_KEY + 1) != CM_OK)
            return CM_OK;
        size_t n = strlen(after);
        if (q->upload_id_marker && md_mpu_id_valid(q->upload_id_marker))
            memcpy(after + n, q->upload_id_marker, MD_MPU_ID_LEN + 1);
        else
            after[n++] = (char)0xFF, after[n] = 0;
        lq.start_after = after;
    }
    cm_err e = rp_list_reserved(c, bucket, &lq, &res);
    if (e != CM_OK)
        return e;
    for (size_t i = 0; e == CM_OK && i < res.n; i++)
        e = res.entries[i].is_prefix ? add_prefix(out, res.entries[i].key)
                                     : add_upload(out, c, bucket, &res.entries[i]);
    out->truncated = res.truncated;
    if (e == CM_OK && res.truncated && res.n)
        e = set_next(out, res.entries, res.n);
    md_list_result_release(&res);
    if (e != CM_OK)
        md_upload_list_release(out);
    return e;
}

cm_err rp_upload_abort_all(rp *c, const char *bucket)
{
    char key[MD_MAX_KEY + 1] = "", id[sizeof(((md_upload *)0)->upload_id)] = "";
    md_upload_query q = {.max_uploads = 1000};
    md_upload_list l;
    cm_err e;
    int more;
    do { /* page after the last upload seen, so every page makes progress */
        if ((e = rp_upload_list(c, bucket, &q, &l)) != CM_OK)
            return e;
        for (size_t i = 0; e == CM_OK && i < l.n; i++) {
            e = rp_upload_abort(c, bucket, l.uploads[i].key, l.uploads[i].upload_id);
            if (e == CM_ERR_NOTFOUND) /* ended meanwhile */
                e = CM_OK;
        }
        more = e == CM_OK && l.truncated && l.n > 0;
        if (more) {
            snprintf(key, sizeof(key), "%s", l.uploads[l.n - 1].key);
            snprintf(id, sizeof(id), "%s", l.uploads[l.n - 1].upload_id);
            q.key_marker = key, q.upload_id_marker = id;
        }
        md_upload_list_release(&l);
    } while (more);
    return e;
}
