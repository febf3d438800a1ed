/*
 * rp_version.c - versions as replicated records (rp_version.h; docs/versioning.md, "On a
 * cluster").
 *
 * Records of one key K, all on K's partition:
 *   K                          the pointer: summary of the latest version, its order id in
 *                              version_id, vstamp set, no body (or, before the first versioned
 *                              write, a plain record: the `null` version itself)
 *   FF 'v' esc(K) 01 01 order  one per version (delete markers included), the whole record with
 *                              its body; version_id is order, or "null" for the copy of a plain
 *                              record (order then made from that record's own stamp); a long K
 *                              has the long form (md_ver_key_prefix)
 *
 * Listing (rp_version_list) walks the keys through rp_list_latest (prefix, delimiter, markers
 * kept) and, for each key, its version records in order (one-partition pages, rp_list_records):
 * the plain record first when there is one, then the versions, IsLatest on the one the pointer
 * names. Memory is bounded by max_keys entries and one page.
 *
 * Races (the doc has the reasoning): two PUTs of K through two nodes each write their version
 * and their pointer; pointers resolve by (hlc, node), the order of their ids, so every replica
 * ends with the newer one and both versions are listed. A permanent delete of the latest
 * rewrites the pointer at a fresh stamp to the next version (or deletes K's record), then
 * tombstones the version: a PUT racing it may leave its own version noncurrent behind a pointer
 * to an older one (listed, readable by id, never lost). A PUT reads K's record after its pointer
 * (settle): a tombstone stamped later is a permanent delete of the last version that listed the
 * versions before the PUT's was stored, and K is pointed at the newest version again. A suspended
 * write keeps only the newest null version (drop_other_nulls), its own too when a racing one's is
 * newer. A new version's pointer carries the vector of the plain record it copied, so that
 * replicas keep a plain record it did not see as the null version (md_rec_merge).
 *
 * Object Lock (docs/object-lock.md, "On a cluster"): a caller deleting by id in a bucket with
 * lock passes md_cond.unlocked, and a version carrying a retention or hold is treated so whatever
 * the caller knows of the bucket. The version read is checked before anything is touched, and the
 * version record is then deleted by the partition's leader under the same condition, checked on
 * its strict-quorum read under the key's lock (a plain record, the null version from before
 * versioning, is likewise deleted, or replaced by a pointer to the next version, by the leader
 * under it: demote_latest): a retention or hold written (at its quorum) in between refuses the
 * delete (CM_ERR_LOCKED; the pointer may then already name the next version, the protected one
 * stays, noncurrent). A suspended write never removes a protected null version
 * (checked on its read: a Suspended bucket has no lock, so nothing can protect it in between).
 *
 * The lifecycle's delete of a noncurrent version (md_cond.noncurrent: successor_ms, newer_min)
 * is checked the same way twice (rp_version_older: the pointer names another version, the walk of
 * the key's versions shows that successor and enough newer ones): here before anything is
 * touched, then by the leader deleting the version record, on its own reads.
 *
 * Threading: worker threads (every rp_object_* call blocks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "rp_int.h"
#include "rp_version.h"

#define VPAGE 256 /* version records per page of one key */

static int is_null(const char *vid)
{
    return !vid[0] || strcmp(vid, "null") == 0;
}

int rp_version_pointer(const md_object *rec)
{
    return rec->vstamp != 0 && rec->key && (uint8_t)rec->key[0] != MD_MPU_MARK;
}

/* The order id of a version stamped (hlc, node): ~hlc, ~node, then 8 random hex digits (a
 * copied null version's: zeros, md_ver_null_key). */
static cm_err make_order(uint64_t hlc, uint32_t node, char out[MD_VID_LEN + 1])
{
    uint8_t tail[8] = {0};
    cm_put_be32(tail, ~node);
    if (cm_random(tail + 4, 4) != CM_OK)
        return CM_ERR_INTERNAL;
    md_vid_make(hlc, tail, out);
    return CM_OK;
}

/* Every version key of key starts with this (md_ver_key_prefix). */
static cm_err versions_prefix(const char *key, char out[MD_MAX_KEY + 1])
{
    return md_ver_key_prefix(key, out, MD_MAX_KEY + 1) == CM_OK ? CM_OK : CM_ERR_INVAL;
}

/* How put_at_if writes: with a partition leader's fence (0: none); its vector dominating seen
 * (NULL: nothing); with cond (hlc 0), by the partition's leader at a stamp of its own, if cond
 * holds for the record it replaces; lost (may be NULL): rp_put_stamped's (1 with cond). */
typedef struct {
    uint64_t fence;
    const md_vv *seen;
    const md_cond *cond;
    int *lost;
} put_how;

/* Write rec (no body taken from it when summary) under key at stamp (hlc, this node), as how
 * says. */
static cm_err put_at_if(rp *c, const char *bucket, const md_object *rec, const char *key,
                        const char *vid, uint64_t vstamp, uint64_t hlc, uint32_t node, int summary,
                        const put_how *how)
{
    md_object shallow = *rec, w;
    shallow.key = (char *)key;
    if (summary) {
        shallow.parts = NULL, shallow.nparts = 0;
        shallow.inline_data = NULL, shallow.inline_len = 0, shallow.inline_crc_set = 0;
    }
    cm_err e = md_object_copy(&shallow, &w);
    if (e != CM_OK)
        return e;
    snprintf(w.version_id, sizeof(w.version_id), "%s", vid);
    w.vstamp = vstamp;
    w.hlc = hlc;
    w.hlc_node = node;
    w.tombstone = 0;
    if (how->lost)
        *how->lost = 1;
    e = how->cond ? rp_object_put(c, bucket, &w, how->cond, NULL, NULL)
                  : rp_put_stamped(c, bucket, &w, how->seen, how->fence, how->lost);
    md_object_release(&w);
    return e;
}

static cm_err put_at(rp *c, const char *bucket, const md_object *rec, const char *key,
                     const char *vid, uint64_t vstamp, uint64_t hlc, uint32_t node, int summary,
                     uint64_t fence)
{
    return put_at_if(c, bucket, rec, key, vid, vstamp, hlc, node, summary,
                     &(put_how){.fence = fence});
}

/* The pointer of obj's new version order, at the version's stamp. seen: the vector of the record
 * from before versioning that the writer kept as the null version (NULL: none), so that replicas
 * tell it from one it never saw (md_rec_merge keeps that one as the null version). lost: may
 * have lost to what a home held (rp_put_stamped). */
static cm_err put_pointer(rp *c, const char *bucket, const md_object *obj, const char *order,
                          uint64_t hlc, uint32_t node, uint64_t fence, const md_vv *seen, int *lost)
{
    return put_at_if(c, bucket, obj, obj->key, order, hlc, hlc, node, 1,
                     &(put_how){.fence = fence, .seen = seen, .lost = lost});
}

/* A plain record (written before versioning) becomes the null version: copied whole into the
 * version space under an order made from its own stamp, before a pointer replaces it. */
static cm_err keep_null(rp *c, const char *bucket, const md_object *plain)
{
    char vkey[MD_MAX_KEY + 1];
    uint64_t hlc;
    uint32_t node;
    cm_err e = md_ver_null_key(plain, vkey, sizeof(vkey));
    if (e != CM_OK)
        return e;
    rp_stamp(c, &hlc, &node);
    return put_at(c, bucket, plain, vkey, "null", plain->hlc ? plain->hlc : 1, hlc, node, 0, 0);
}

/* Read key's record (after which this node's clock is past it) and keep a plain one as the null
 * version (seen: its vector; else empty). */
static cm_err prepare(rp *c, const char *bucket, const char *key, md_vv *seen)
{
    md_object cur;
    memset(seen, 0, sizeof(*seen));
    cm_err e = rp_object_get(c, bucket, key, &cur);
    if (e == CM_ERR_NOTFOUND)
        return CM_OK;
    if (e != CM_OK)
        return e;
    if (!rp_version_pointer(&cur) && (e = keep_null(c, bucket, &cur)) == CM_OK)
        *seen = cur.vv;
    md_object_release(&cur);
    return e;
}

static cm_err settle(rp *c, const char *bucket, const char *key, uint64_t hlc, uint32_t node);
static cm_err drop_other_nulls(rp *c, const char *bucket, const char *key, const char *mine);

/* The new version obj at stamp (hlc, node), of this node's clock: its record, then the pointer
 * (by the partition's leader with cond), then settle; a suspended bucket's version is the null
 * one, replacing the one before. */
static cm_err version_at(rp *c, const char *bucket, const md_object *obj, int suspended,
                         const md_cond *cond, uint64_t hlc, uint32_t node, const md_vv *seen,
                         md_vres *res)
{
    char order[MD_VID_LEN + 1], vkey[MD_MAX_KEY + 1];
    const char *vid = suspended ? "null" : order;
    int lost = 1; /* the pointer may have lost to what a home held (the leader's: unknown) */
    cm_err e;
    if ((e = make_order(hlc, node, order)) != CM_OK ||
        (e = md_ver_key(obj->key, order, vkey, sizeof(vkey))) != CM_OK)
        return e;
    if (cond && (cond->if_none_match_star || cond->if_match)) {
        /* decided and written by the partition's leader (rp_cond_execute: rp_version_write) */
        md_object rec = *obj;
        snprintf(rec.version_id, sizeof(rec.version_id), "%s%s", suspended ? "n" : "", order);
        rec.vstamp = rec.hlc = hlc;
        rec.hlc_node = node;
        if (seen)
            rec.vv = *seen; /* the leader's put_pointer takes it */
        e = rp_object_put(c, bucket, &rec, cond, NULL, NULL);
    } else if ((e = put_at(c, bucket, obj, vkey, vid, hlc, hlc, node, 0, 0)) == CM_OK) {
        e = put_pointer(c, bucket, obj, order, hlc, node, 0, seen, &lost);
    }
    if (e != CM_OK || (lost && (e = settle(c, bucket, obj->key, hlc, node)) != CM_OK))
        return e;
    if (suspended && (e = drop_other_nulls(c, bucket, obj->key, vkey)) != CM_OK)
        return e;
    memset(res, 0, sizeof(*res));
    snprintf(res->version_id, sizeof(res->version_id), "%s", vid);
    res->versioned = 1;
    res->delete_marker = obj->delete_marker;
    return CM_OK;
}

cm_err rp_version_put_at(rp *c, const char *bucket, const md_object *obj, int suspended,
                         uint64_t hlc, uint32_t node, md_vres *res)
{
    return version_at(c, bucket, obj, suspended, NULL, hlc, node, NULL, res);
}

static cm_err add_version(rp *c, const char *bucket, const md_object *obj, int suspended,
                          const md_cond *cond, md_vres *res)
{
    uint64_t hlc;
    uint32_t node;
    md_vv seen;
    cm_err e = prepare(c, bucket, obj->key, &seen);
    if (e != CM_OK)
        return e;
    rp_stamp(c, &hlc, &node);
    return version_at(c, bucket, obj, suspended, cond, hlc, node, &seen, res);
}

cm_err rp_version_put(rp *c, const char *bucket, const md_object *obj, int suspended,
                      const md_cond *cond, md_vres *res)
{
    if (!obj->key || !*obj->key || (uint8_t)obj->key[0] == MD_MPU_MARK || obj->delete_marker)
        return CM_ERR_INVAL;
    return add_version(c, bucket, obj, suspended, cond, res);
}

/* The order id a new version sent to the leader carries in version_id: the order id, or for a
 * Suspended bucket's (the new null version) 'n' and the order id. */
static const char *new_order(const md_object *obj)
{
    const char *v = obj->version_id;
    return md_mpu_id_valid(v) ? v : v[0] == 'n' && md_mpu_id_valid(v + 1) ? v + 1 : NULL;
}

int rp_version_new(const md_object *obj)
{
    return rp_version_pointer(obj) && obj->vstamp == obj->hlc && new_order(obj);
}

cm_err rp_version_write(rp *c, const char *bucket, const md_object *obj, uint64_t fence)
{
    char vkey[MD_MAX_KEY + 1];
    const char *order = new_order(obj);
    const char *vid = order == obj->version_id ? order : "null";
    cm_err e = order ? md_ver_key(obj->key, order, vkey, sizeof(vkey)) : CM_ERR_INVAL;
    if (e == CM_OK)
        e = put_at(c, bucket, obj, vkey, vid, obj->hlc, obj->hlc, obj->hlc_node, 0, fence);
    if (e == CM_OK)
        e = put_pointer(c, bucket, obj, order, obj->hlc, obj->hlc_node, fence, &obj->vv, NULL);
    return e;
}

cm_err rp_version_mark(rp *c, const char *bucket, const char *key, int suspended,
                       const md_cond *cond, md_vres *res)
{
    md_object m;
    memset(&m, 0, sizeof(m));
    if (!*key || (uint8_t)key[0] == MD_MPU_MARK)
        return CM_ERR_INVAL;
    m.key = (char *)key;
    m.delete_marker = 1;
    m.mtime_ms = cm_now_ms();
    return add_version(c, bucket, &m, suspended, cond, res);
}

/*
 * Call fn for each version of key (summaries, newest first) until it sets *stop or returns an
 * error, one page of at most VPAGE records at a time (tombstones of deleted versions left out).
 */
typedef cm_err (*version_fn)(rp *c, const char *bucket, md_object *v, void *arg, int *stop);

static cm_err walk_versions(rp *c, const char *bucket, const char *key, version_fn fn, void *arg)
{
    char pre[MD_MAX_KEY + 1], *after = NULL;
    cm_err e = versions_prefix(key, pre);
    int stop = 0;
    while (e == CM_OK && !stop) {
        md_object *recs = NULL;
        size_t n = 0;
        char *next = NULL;
        e = rp_list_records(c, bucket, key, pre, after, VPAGE, &recs, &n, &next);
        free(after);
        after = next;
        for (size_t i = 0; e == CM_OK && i < n && !stop; i++)
            e = fn(c, bucket, &recs[i], arg, &stop);
        md_objects_free(recs, n);
        if (!after)
            break;
    }
    free(after);
    return e;
}

static cm_err null_found(rp *c, const char *bucket, md_object *v, void *arg, int *stop)
{
    (void)c, (void)bucket;
    if (is_null(v->version_id)) {
        snprintf(arg, MD_MAX_KEY + 1, "%s", v->key);
        *stop = 1;
    }
    return CM_OK;
}

/* The version key of key's newest null version (a copied plain record, or a suspended write's),
 * or CM_ERR_NOTFOUND. */
static cm_err find_null(rp *c, const char *bucket, const char *key, char vkey[MD_MAX_KEY + 1])
{
    vkey[0] = 0;
    cm_err e = walk_versions(c, bucket, key, null_found, vkey);
    return e != CM_OK ? e : vkey[0] ? CM_OK : CM_ERR_NOTFOUND;
}

typedef struct {
    const char *key, *mine; /* the S3 key; the version key of this write's null version */
    int seen;               /* null versions walked so far */
    int read;               /* 0: the pointer not read yet, 1: read, -1: its read failed */
    char named[40];         /* the version_id of key's pointer, when read ("": none) */
} nulls_walk;

/* 1 when key's record is a pointer to v, as read once in this walk (or may be: a failed read). */
static int pointer_names(rp *c, const char *bucket, nulls_walk *w, const md_object *v)
{
    if (!w->read) {
        md_object cur;
        cm_err e = rp_object_get(c, bucket, w->key, &cur);
        w->read = e == CM_OK || e == CM_ERR_NOTFOUND ? 1 : -1;
        if (e == CM_OK) {
            if (rp_version_pointer(&cur))
                memcpy(w->named, cur.version_id, sizeof(w->named));
            md_object_release(&cur);
        }
    }
    return w->read < 0 || strcmp(w->named, rp_version_order(v)) == 0;
}

static cm_err null_dropped(rp *c, const char *bucket, md_object *v, void *arg, int *stop)
{
    (void)stop;
    nulls_walk *w = arg;
    if (!is_null(v->version_id) || w->seen++ == 0)
        return CM_OK; /* the newest null version stays */
    /* A protected null version stays (a second null one, as after a race). The check on this
     * read is enough: only a bucket with lock takes a retention or a hold, and such a bucket is
     * never Suspended, so none can be written between this read and the delete. */
    if (md_lock_protects(v, cm_now_ms(), 0))
        return CM_OK;
    /* One as new as mine may still be the latest (the newer one's pointer not landed, or failed):
     * kept while the pointer names it. Older ones cannot be: my pointer is newer. */
    if (strcmp(v->key, w->mine) <= 0 && pointer_names(c, bucket, w, v))
        return CM_OK;
    return rp_object_delete(c, bucket, v->key, NULL, NULL, NULL);
}

/* A suspended write made the null version under mine: every null version but the newest goes for
 * good (their bodies become garbage on the replicas), mine too when a racing suspended write's
 * is newer. Of two racing writes at least one walks after both versions are stored (each walks
 * after storing its own), so one null version is left. */
static cm_err drop_other_nulls(rp *c, const char *bucket, const char *key, const char *mine)
{
    nulls_walk w = {.key = key, .mine = mine};
    return walk_versions(c, bucket, key, null_dropped, &w);
}

/* The version key of key's version vid, or CM_ERR_NOTFOUND. */
static cm_err version_key(rp *c, const char *bucket, const char *key, const char *vid,
                          char vkey[MD_MAX_KEY + 1])
{
    if (is_null(vid))
        return find_null(c, bucket, key, vkey);
    return md_ver_key(key, vid, vkey, MD_MAX_KEY + 1) == CM_OK ? CM_OK : CM_ERR_NOTFOUND;
}

cm_err rp_version_target(const md_object *pointer, char vkey[MD_MAX_KEY + 1])
{
    return md_ver_key(pointer->key, pointer->version_id, vkey, MD_MAX_KEY + 1);
}

const char *rp_version_order(const md_object *v)
{
    size_t n = v->key ? strlen(v->key) : 0;
    return n > MD_VID_LEN ? v->key + n - MD_VID_LEN : "";
}

cm_err rp_version_adopt(md_object *v, const char *key)
{
    char *k = strdup(key);
    if (!k)
        return CM_ERR_NOMEM;
    free(v->key);
    v->key = k;
    return CM_OK;
}

/* The version record under vkey, which must be version vid (a null one's key holds its order id,
 * not "null"). */
static cm_err read_at(rp *c, const char *bucket, const char *vkey, const char *vid, md_object *out)
{
    cm_err e = rp_object_get(c, bucket, vkey, out);
    if (e == CM_OK && (is_null(vid) ? !is_null(out->version_id) : strcmp(out->version_id, vid))) {
        md_object_release(out);
        e = CM_ERR_NOTFOUND;
    }
    return e;
}

cm_err rp_version_record(rp *c, const char *bucket, const char *key, const char *vid,
                         md_object *out)
{
    char vkey[MD_MAX_KEY + 1];
    if (!*key || (uint8_t)key[0] == MD_MPU_MARK || (vid && !md_vid_valid(vid)))
        return CM_ERR_NOTFOUND;
    if (!vid || is_null(vid)) { /* the latest, or a plain record: the null version itself */
        cm_err e = rp_object_get(c, bucket, key, out);
        if (e == CM_OK && !rp_version_pointer(out))
            return CM_OK;
        if (e == CM_OK && !vid) {
            e = rp_version_target(out, vkey);
            md_object_release(out);
            return e == CM_OK ? rp_object_get(c, bucket, vkey, out) : e;
        }
        if (!vid || (e != CM_OK && e != CM_ERR_NOTFOUND))
            return e;
        if (e == CM_OK)
            md_object_release(out);
    }
    cm_err e = version_key(c, bucket, key, vid, vkey);
    return e == CM_OK ? read_at(c, bucket, vkey, vid, out) : e;
}

cm_err rp_version_get(rp *c, const char *bucket, const char *key, const char *vid, md_object *out)
{
    if (!vid)
        return CM_ERR_NOTFOUND;
    cm_err e = rp_version_record(c, bucket, key, vid, out);
    if (e == CM_OK && (e = rp_version_adopt(out, key)) != CM_OK)
        md_object_release(out);
    return e;
}

cm_err rp_version_follow(rp *c, const char *bucket, md_object *rec)
{
    if (!rp_version_pointer(rec))
        return CM_OK;
    md_object v;
    char vkey[MD_MAX_KEY + 1];
    cm_err e = rp_version_target(rec, vkey);
    if (e == CM_OK && (e = rp_object_get(c, bucket, vkey, &v)) == CM_OK &&
        (e = rp_version_adopt(&v, rec->key)) != CM_OK)
        md_object_release(&v);
    md_object_release(rec);
    if (e == CM_OK)
        *rec = v;
    return e;
}

typedef struct {
    const char *skip; /* the version key of a version being deleted ("": none) */
    int skip_null;    /* the null version is being deleted too */
    md_object *out;
    int found;
} next_walk;

static cm_err next_found(rp *c, const char *bucket, md_object *v, void *arg, int *stop)
{
    (void)c, (void)bucket;
    next_walk *w = arg;
    if (strcmp(v->key, w->skip) != 0 && !(w->skip_null && is_null(v->version_id))) {
        *w->out = *v; /* moved out of the page */
        memset(v, 0, sizeof(*v));
        w->found = *stop = 1;
    }
    return CM_OK;
}

/* The newest version of key other than the one under skip (a summary in *out), or
 * CM_ERR_NOTFOUND. */
static cm_err next_latest(rp *c, const char *bucket, const char *key, const char *skip,
                          int skip_null, md_object *out)
{
    next_walk w = {.skip = skip, .skip_null = skip_null, .out = out};
    cm_err e = walk_versions(c, bucket, key, next_found, &w);
    return e != CM_OK ? e : w.found ? CM_OK : CM_ERR_NOTFOUND;
}

/* Point key at version nx (a summary) at a fresh stamp, after every pointer read; with cond, by
 * the partition's leader, if cond holds for the record the pointer replaces. */
static cm_err relink(rp *c, const char *bucket, const char *key, const md_object *nx,
                     const md_cond *cond)
{
    uint64_t hlc = 0; /* with cond: the leader's stamp (rp_version_new(pointer) is false then) */
    uint32_t node = 0;
    if (!cond)
        rp_stamp(c, &hlc, &node);
    return put_at_if(c, bucket, nx, key, rp_version_order(nx), nx->vstamp ? nx->vstamp : 1, hlc,
                     node, 1, &(put_how){.cond = cond});
}

/* Point key at its newest version but the one under skip (relink), or CM_ERR_NOTFOUND when none. */
static cm_err relink_newest(rp *c, const char *bucket, const char *key, const char *skip,
                            int skip_null, const md_cond *cond)
{
    md_object nx;
    cm_err e = next_latest(c, bucket, key, skip, skip_null, &nx);
    if (e == CM_OK) {
        e = relink(c, bucket, key, &nx, cond);
        md_object_release(&nx);
    }
    return e;
}

/* After this write's pointer at (hlc, node): a permanent delete of the key's last version may
 * have deleted key's record at a later stamp and listed the versions before mine was stored (its
 * second look missed it). Then key's record, read now, is that tombstone, and key points at its
 * newest version again (mine, unless deleted meanwhile): the version is listed, not orphaned.
 * Only needed when a home did not apply the pointer: that tombstone was on W homes before the
 * pointer was sent, and W of its acknowledgements include one of them. */
static cm_err settle(rp *c, const char *bucket, const char *key, uint64_t hlc, uint32_t node)
{
    md_object cur;
    cm_err e = rp_record_get(c, bucket, key, &cur);
    if (e != CM_OK)
        return e == CM_ERR_NOTFOUND ? CM_OK : e;
    int lost = cur.tombstone && (cur.hlc > hlc || (cur.hlc == hlc && cur.hlc_node > node));
    md_object_release(&cur);
    e = lost ? relink_newest(c, bucket, key, "", 0, NULL) : CM_OK;
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

/*
 * The latest version (under vkey; skip_null: the key's plain record, the null version) goes:
 * point key at the next one, or delete key's record when there is none. A PUT racing that delete
 * may have stored its version meanwhile (its pointer then loses to the delete, stamped later):
 * the versions are listed again after it, and key pointed at the newest found. cond (the plain
 * record's lock condition, or NULL) goes with the first write replacing key's record: the leader
 * checks it on the record it replaces (CM_ERR_LOCKED: nothing written).
 */
static cm_err demote_latest(rp *c, const char *bucket, const char *key, const char *vkey,
                            int skip_null, const md_cond *cond)
{
    cm_err e = relink_newest(c, bucket, key, vkey, skip_null, cond);
    if (e != CM_ERR_NOTFOUND || (e = rp_object_delete(c, bucket, key, cond, NULL, NULL)) != CM_OK)
        return e;
    /* the record is gone: what comes now is a racing PUT's (no cond) */
    e = relink_newest(c, bucket, key, vkey, skip_null, NULL);
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

typedef struct {
    const char *vkey;
    uint32_t newer;  /* versions seen before it */
    int64_t prev_ms; /* the last one's write time */
    int found;
} older_walk;

static cm_err older_found(rp *c, const char *bucket, md_object *v, void *arg, int *stop)
{
    (void)c, (void)bucket;
    older_walk *w = arg;
    if (strcmp(v->key, w->vkey) == 0)
        w->found = *stop = 1;
    else
        w->newer++, w->prev_ms = v->mtime_ms;
    return CM_OK;
}

cm_err rp_version_older(rp *c, const char *bucket, const char *key, const char *vkey,
                        const md_cond *cond)
{
    char split[MD_MAX_KEY + 1], pre[MD_MAX_KEY + 1], order[MD_MPU_ID_LEN + 1];
    md_object cur;
    /* The leader (key NULL): the key the condition names, or the one a short form holds. A
     * version key not of that key is kept rather than deleted unchecked. */
    key = key ? key : cond->noncurrent_key;
    if (!key && md_ver_split(vkey, split, order) != CM_OK)
        return CM_ERR_PRECONDITION;
    key = key ? key : split;
    size_t pl;
    if (md_ver_key_prefix(key, pre, sizeof(pre)) != CM_OK || (pl = strlen(pre)) == 0 ||
        strncmp(vkey, pre, pl) != 0 || !md_mpu_id_valid(vkey + pl))
        return CM_ERR_PRECONDITION;
    snprintf(order, sizeof(order), "%s", rp_version_order(&(md_object){.key = (char *)vkey}));
    /* No pointer, a plain record (the null version is the latest), or a pointer to it: not
     * noncurrent as far as this read can tell. */
    cm_err e = rp_object_get(c, bucket, key, &cur);
    if (e == CM_ERR_NOTFOUND)
        return CM_ERR_PRECONDITION;
    if (e != CM_OK)
        return e;
    int latest = !rp_version_pointer(&cur) || strcmp(cur.version_id, order) == 0;
    md_object_release(&cur);
    if (latest)
        return CM_ERR_PRECONDITION;
    older_walk w = {.vkey = vkey};
    if ((e = walk_versions(c, bucket, key, older_found, &w)) != CM_OK)
        return e;
    if (!w.found)
        return CM_ERR_NOTFOUND;
    if (w.newer == 0 || w.newer < cond->newer_min || w.prev_ms != cond->successor_ms)
        return CM_ERR_PRECONDITION;
    return CM_OK;
}

/* The lock condition of deleting version read (its If-Match is decided on that read: a
 * version's ETag never changes): unlocked when the caller asks (a bucket with lock) or when the
 * version carries a retention or a hold (a node that did not see the bucket get lock yet), with
 * the caller's bypass; else none. */
static const md_cond *lock_cond(const md_cond *cond, const md_object *read, md_cond *out)
{
    if (!(cond && cond->unlocked) && !read->lock_mode && !read->legal_hold)
        return NULL;
    memset(out, 0, sizeof(*out));
    out->unlocked = 1;
    out->bypass_governance = cond && cond->bypass_governance;
    return out;
}

cm_err rp_version_delete(rp *c, const char *bucket, const char *key, const char *vid,
                         const md_cond *cond, md_vres *res, int *had)
{
    md_object cur, v;
    md_cond lc;
    const md_cond *locked;
    char vkey[MD_MAX_KEY + 1];
    int have = 0;
    *had = 0;
    memset(res, 0, sizeof(*res));
    snprintf(res->version_id, sizeof(res->version_id), "%s", vid);
    res->versioned = 1;
    if (!*key || (uint8_t)key[0] == MD_MPU_MARK || !md_vid_valid(vid))
        return CM_ERR_INVAL;
    cm_err e = rp_object_get(c, bucket, key, &cur);
    if (e == CM_OK)
        have = 1;
    else if (e != CM_ERR_NOTFOUND)
        return e;
    if (have && !rp_version_pointer(&cur) && is_null(vid)) { /* the plain record is it */
        res->delete_marker = cur.delete_marker;
        if (cond && cond->noncurrent) { /* it is the latest */
            md_object_release(&cur);
            return CM_ERR_PRECONDITION;
        }
        locked = lock_cond(cond, &cur, &lc);
        if ((e = md_cond_check(cond, &cur)) == CM_OK)
            e = md_cond_check(locked, &cur);
        md_object_release(&cur);
        if (e != CM_OK)
            return e;
        /* Replacing the record, the leader checks the lock condition again on its own read: a
         * retention or hold set since this read refuses it. (A racing versioned PUT's pointer
         * carrying a protected version's summary refuses it too: retried, the delete finds the
         * null version's copy in the version space.) Its copy, should a racing PUT have made
         * one, goes with it. */
        if ((e = demote_latest(c, bucket, key, "", 1, locked)) == CM_OK &&
            (e = find_null(c, bucket, key, vkey)) == CM_OK)
            e = rp_object_delete(c, bucket, vkey, locked, NULL, NULL);
        *had = e == CM_OK || e == CM_ERR_NOTFOUND;
        return e == CM_ERR_NOTFOUND ? CM_OK : e;
    }
    e = version_key(c, bucket, key, vid, vkey);
    if (e == CM_OK)
        e = read_at(c, bucket, vkey, vid, &v);
    locked = e == CM_OK ? lock_cond(cond, &v, &lc) : NULL;
    if (e == CM_OK &&
        ((e = md_cond_check(cond, &v)) != CM_OK || (e = md_cond_check(locked, &v)) != CM_OK))
        md_object_release(&v);
    if (e != CM_OK) {
        if (have)
            md_object_release(&cur);
        if (e == CM_ERR_NOTFOUND && cond && cond->if_match)
            return CM_ERR_NOTFOUND; /* as the single node: If-Match of a version not there */
        return e == CM_ERR_NOTFOUND ? CM_OK : e;
    }
    res->delete_marker = v.delete_marker;
    int marker = v.delete_marker;
    md_object_release(&v);
    size_t vl = strlen(vkey);
    int latest = have && rp_version_pointer(&cur) && vl > MD_VID_LEN &&
                 strcmp(cur.version_id, vkey + vl - MD_VID_LEN) == 0;
    if (have)
        md_object_release(&cur);
    /* Deleted as noncurrent (the lifecycle): checked here, then again by the partition's leader
     * under the version key's lock on its own reads, so that a client's write or delete of the
     * key in between never makes it remove the latest or a version the rule keeps. */
    md_cond lead = {0};
    if (cond && cond->noncurrent) {
        if (latest || (e = rp_version_older(c, bucket, key, vkey, cond)) != CM_OK)
            return latest ? CM_ERR_PRECONDITION : e;
        lead.noncurrent = 1, lead.successor_ms = cond->successor_ms;
        lead.newer_min = cond->newer_min, lead.noncurrent_key = key;
    }
    if (locked && !marker)
        lead.unlocked = 1, lead.bypass_governance = locked->bypass_governance;
    /* The pointer first: it never names a version that is gone. */
    if (latest && (e = demote_latest(c, bucket, key, vkey, 0, NULL)) != CM_OK)
        return e;
    /* its body: garbage on the replicas; with lock, if the leader finds it unprotected still */
    e = rp_object_delete(c, bucket, vkey, lead.unlocked || lead.noncurrent ? &lead : NULL, NULL,
                         NULL);
    *had = e == CM_OK;
    return e;
}

cm_err rp_version_none(rp *c, const char *bucket)
{
    char pre[3] = {(char)MD_MPU_MARK, 'v', 0};
    md_list_query q = {.prefix = pre, .max_keys = 1};
    md_list_result res;
    cm_err e = rp_list_reserved(c, bucket, &q, &res);
    if (e != CM_OK)
        return e;
    e = res.n ? CM_ERR_CONFLICT : CM_OK;
    md_list_result_release(&res);
    return e;
}
