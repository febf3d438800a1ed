/*
 * md_version.c - object versions of versioned buckets (docs/versioning.md).
 *
 * Layout. `objects` keeps each key's latest version, whatever it is (a delete marker included),
 * so every reader of current records is unchanged; `versions` keeps the older ones under
 *     bucket \0 key \0 BE64(~vstamp)
 * so a prefix scan of bucket \0 key \0 yields one key's older versions newest first, and the keys
 * of a bucket come in the same order as in `objects` (S3 keys hold no NUL). Invariant: a key has
 * entries in `versions` only while it has a record in `objects` (deleting the latest promotes
 * the newest older one), so bucket emptiness and listings start from `objects`.
 *
 * Stamps and ids. A version's vstamp (record field OT_VSTAMP) orders its key's history; it is
 * assigned inside the write op, on the commit thread, as max(now_ms << 16, last issued + 1, the
 * key's latest + 1): commit order per key, also across a clock step back or a restart. An
 * ENABLED write's id is 16 hex digits of ~vstamp then 16 random ones (fixed length, URL-safe,
 * newest sorting first); the id leads back to the entry's key, and the whole id must match, so a
 * guessed stamp with a wrong tail is unknown. A null version (suspended writes, and records from
 * before versioning, vstamp 0 = the oldest) is found by a scan of its key's older versions: at
 * most one exists per key.
 *
 * Atomicity. Each change (a write that moves the latest into `versions`, a deletion that
 * promotes one back) runs inside one write op of the group commit, i.e. one LMDB transaction:
 * after a crash either all of it is there or none of it. Bodies of destroyed versions are handed
 * to the op's caller, which frees them after the commit (as for any replaced record).
 *
 * Object Lock. A version that md_lock_protects is never destroyed here: a delete by id
 * (md_vers_delete, every caller's path: DeleteObject, DeleteObjects, lifecycle) and a write that
 * would replace a null version (md_vers_install: suspended PUT, Copy, Complete) fail with
 * CM_ERR_LOCKED, checked in the op's transaction, before anything is written. A plain DELETE's
 * marker destroys nothing and is allowed. A locked bucket cannot leave ENABLED.
 *
 * Lifecycle. A noncurrent version the lifecycle deletes by id carries md_cond's noncurrent check:
 * in the delete's transaction it must still be an older version, with the successor and the
 * count of newer versions its listing saw (noncurrent_check), so a client's write or delete in
 * between cannot turn the deletion onto the current version or onto one the rule keeps.
 *
 * Threading: apply functions run on the commit thread (md->vstamp_last is theirs alone); reads
 * use their own read transactions.
 */
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "md_int.h"

static int vid_is_null(const char *vid)
{
    return !vid[0] || strcmp(vid, "null") == 0;
}

static int vid_same(const char *a, const char *b)
{
    return vid_is_null(a) ? vid_is_null(b) : strcmp(a, b) == 0;
}

int md_vid_valid(const char *vid)
{
    if (!vid)
        return 0;
    if (strcmp(vid, "null") == 0)
        return 1;
    if (strlen(vid) != MD_VID_LEN)
        return 0;
    for (const char *p = vid; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

void md_vid_make(uint64_t vstamp, const uint8_t rnd[8], char *out)
{
    uint8_t b[16];
    cm_put_be64(b, ~vstamp);
    memcpy(b + 8, rnd, 8);
    cm_hex_encode(b, 16, out); /* lowercase, NUL-terminated */
}

uint64_t md_vid_stamp(const char *vid)
{
    uint64_t inv = 0;
    for (int i = 0; i < 16; i++) {
        char c = vid[i];
        inv = inv << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return ~inv;
}

/* k (bucket \0 key, kl bytes) followed by \0 and BE64(~vstamp). */
static size_t vkey(const uint8_t *k, size_t kl, uint64_t vstamp, uint8_t *out)
{
    memcpy(out, k, kl);
    out[kl] = 0;
    cm_put_be64(out + kl + 1, ~vstamp);
    return kl + MD_VSUFFIX;
}

static cm_err bucket_state(MDB_txn *txn, md_store *md, const char *bucket, uint8_t *state)
{
    MDB_val v;
    md_bucket b;
    cm_err e = md_bucket_record(txn, md, bucket, &v);
    if (e == CM_OK && (e = md_bucket_decode(v.mv_data, v.mv_size, &b)) == CM_OK)
        *state = b.versioning;
    return e;
}

static uint64_t next_stamp(md_store *md, const md_object *cur)
{
    uint64_t s = (uint64_t)cm_now_ms() << 16;
    if (s <= md->vstamp_last)
        s = md->vstamp_last + 1;
    if (cur && s <= cur->vstamp)
        s = cur->vstamp + 1;
    md->vstamp_last = s;
    return s;
}

/* Copy the latest's stored bytes (k in `objects`) into `versions` under its stamp. */
static cm_err keep_latest(md_store *md, MDB_txn *txn, const uint8_t *k, size_t kl, uint64_t vstamp)
{
    uint8_t vk[MD_KEYBUF];
    md_slice v;
    cm_err e = md_kv_get(txn, md->objects, k, kl, &v);
    if (e != CM_OK)
        return e;
    /* A put into the same transaction may move the page the slice points into. */
    uint8_t *copy = malloc(v.n ? v.n : 1);
    if (!copy)
        return CM_ERR_NOMEM;
    memcpy(copy, v.p, v.n);
    e = md_kv_put(txn, md->versions, vk, vkey(k, kl, vstamp, vk), copy, v.n);
    free(copy);
    return e;
}

int md_vers_of_key(const md_kv_iter *it, const uint8_t *k, size_t kl)
{
    return it->key.n == kl + MD_VSUFFIX && memcmp(it->key.p, k, kl) == 0 && it->key.p[kl] == 0;
}

/*
 * Find version vid among k's older versions: *found, its `versions` key in vk (*vkl), and the
 * record decoded with mode into out (when found).
 */
static cm_err find_older(md_store *md, MDB_txn *txn, const uint8_t *k, size_t kl, const char *vid,
                         int mode, md_object *out, int *found, uint8_t *vk, size_t *vkl)
{
    md_kv_iter it;
    md_slice v;
    cm_err e;
    *found = 0;
    memset(out, 0, sizeof(*out));
    if (!vid_is_null(vid)) {
        *vkl = vkey(k, kl, md_vid_stamp(vid), vk);
        e = md_kv_get(txn, md->versions, vk, *vkl, &v);
        if (e == CM_OK && (e = md_object_decode_ex(v.p, v.n, mode, out)) == CM_OK) {
            *found = vid_same(out->version_id, vid);
            if (!*found)
                md_object_release(out);
        }
        return e == CM_ERR_NOTFOUND ? CM_OK : e;
    }
    if ((e = md_kv_iter_open(txn, md->versions, &it)) != CM_OK)
        return e;
    vkey(k, kl, UINT64_MAX, vk); /* ~UINT64_MAX = 0: the key's newest possible entry */
    for (e = md_kv_iter_seek(&it, vk, kl + MD_VSUFFIX); e == CM_OK && md_vers_of_key(&it, k, kl);
         e = md_kv_iter_next(&it)) {
        md_object s;
        if ((e = md_object_decode_ex(it.val.p, it.val.n, MD_DECODE_SUMMARY, &s)) != CM_OK)
            break;
        int null = vid_is_null(s.version_id);
        md_object_release(&s);
        if (null) {
            memcpy(vk, it.key.p, it.key.n);
            *vkl = it.key.n;
            if ((e = md_object_decode_ex(it.val.p, it.val.n, mode, out)) == CM_OK)
                *found = 1;
            break;
        }
    }
    md_kv_iter_close(&it);
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

/*
 * cond's noncurrent check of the older version at vk (docs/lifecycle.md, md_cond): the versions
 * newer than it are the latest (written at latest_ms) and k's older entries before vk; the one
 * just before it is its successor. CM_ERR_PRECONDITION when the listing's premise no longer holds.
 */
static cm_err noncurrent_check(md_store *md, MDB_txn *txn, const uint8_t *k, size_t kl,
                               const uint8_t *vk, size_t vkl, int64_t latest_ms,
                               const md_cond *cond)
{
    uint8_t first[MD_KEYBUF];
    md_kv_iter it;
    uint32_t newer = 1;
    int64_t succ_ms = latest_ms;
    cm_err e = md_kv_iter_open(txn, md->versions, &it);
    if (e != CM_OK)
        return e;
    vkey(k, kl, UINT64_MAX, first);
    for (e = md_kv_iter_seek(&it, first, kl + MD_VSUFFIX); e == CM_OK && md_vers_of_key(&it, k, kl);
         e = md_kv_iter_next(&it)) {
        md_object s;
        if (it.key.n == vkl && memcmp(it.key.p, vk, vkl) == 0)
            break;
        if ((e = md_object_decode_ex(it.val.p, it.val.n, MD_DECODE_SUMMARY, &s)) != CM_OK)
            break;
        succ_ms = s.mtime_ms;
        md_object_release(&s);
        newer++;
    }
    md_kv_iter_close(&it);
    if (e != CM_OK && e != CM_ERR_NOTFOUND)
        return e;
    return newer >= cond->newer_min && succ_ms == cond->successor_ms ? CM_OK : CM_ERR_PRECONDITION;
}

/* Move k's newest older version into `objects` (generation gen); *promoted 0 when none. */
static cm_err promote(md_store *md, MDB_txn *txn, const uint8_t *k, size_t kl, uint64_t gen,
                      int *promoted)
{
    uint8_t vk[MD_KEYBUF];
    md_kv_iter it;
    md_object o = {0}, prev = {.generation = gen - 1};
    *promoted = 0;
    cm_err e = md_kv_iter_open(txn, md->versions, &it);
    if (e != CM_OK)
        return e;
    vkey(k, kl, UINT64_MAX, vk);
    e = md_kv_iter_seek(&it, vk, kl + MD_VSUFFIX);
    if (e == CM_OK && md_vers_of_key(&it, k, kl)) {
        memcpy(vk, it.key.p, it.key.n);
        e = md_object_decode_ex(it.val.p, it.val.n, MD_DECODE_FULL, &o);
        *promoted = e == CM_OK;
    }
    md_kv_iter_close(&it);
    if (e == CM_ERR_NOTFOUND)
        e = CM_OK;
    if (*promoted) {
        e = md_kv_del(txn, md->versions, vk, kl + MD_VSUFFIX);
        if (e == CM_OK)
            e = md_object_write(txn, md, k, kl, &o, &prev);
        md_object_release(&o);
    }
    return e;
}

static void res_set(md_vres *res, const char *vid, int marker, int versioned)
{
    if (!res)
        return;
    snprintf(res->version_id, sizeof(res->version_id), "%s", vid_is_null(vid) ? "null" : vid);
    res->delete_marker = marker;
    res->versioned = versioned;
}

cm_err md_vers_install(md_store *md, MDB_txn *txn, const char *bucket, const uint8_t *k, size_t kl,
                       md_wbuf *w, int marker, md_object *cur, int *found, md_vres *res)
{
    uint8_t state = 0, vk[MD_KEYBUF];
    size_t vkl;
    cm_err e = bucket_state(txn, md, bucket, &state);
    if (e != CM_OK)
        return e;
    if (state == MD_VERS_NEVER && *found && md_lock_protects(cur, cm_now_ms(), 0))
        return CM_ERR_LOCKED;
    if (state == MD_VERS_NEVER) {
        res_set(res, "null", marker, 0);
        return md_object_put_stored(txn, md, k, kl, w, *found ? cur : NULL);
    }
    uint64_t stamp = next_stamp(md, *found ? cur : NULL);
    uint64_t gen = *found ? cur->generation : 0;
    char vid[MD_VID_LEN + 1] = "null";
    if (state == MD_VERS_ENABLED) {
        uint8_t rnd[8];
        if (cm_random(rnd, sizeof(rnd)) != CM_OK)
            cm_put_be64(rnd, stamp * 0x9E3779B97F4A7C15ull); /* unique anyway: the stamp is */
        md_vid_make(stamp, rnd, vid);
    }
    if ((e = md_object_set_version(w, vid, stamp)) != CM_OK)
        return e;
    /* Every read before the first write: a record that fails to decode then fails this op alone
     * with nothing half done (DeleteObjects goes on with its other keys in the same transaction).
     */
    int destroy_cur = *found && state == MD_VERS_SUSPENDED && vid_is_null(cur->version_id);
    md_object nullv = {0};
    int has_null = 0;
    if (destroy_cur && md_lock_protects(cur, cm_now_ms(), 0))
        return CM_ERR_LOCKED; /* a protected null version is not replaced either */
    if (state == MD_VERS_SUSPENDED && !destroy_cur) {
        /* The key's null version, if an older one, gives way to the new null version. */
        e = find_older(md, txn, k, kl, "null", MD_DECODE_NOBODY, &nullv, &has_null, vk, &vkl);
        if (e == CM_OK && has_null && md_lock_protects(&nullv, cm_now_ms(), 0))
            e = CM_ERR_LOCKED;
        if (e != CM_OK) {
            md_object_release(&nullv);
            return e;
        }
    }
    if (*found && !destroy_cur) {
        /* The latest becomes an older version (a suspended write destroys only a null one). */
        e = keep_latest(md, txn, k, kl, cur->vstamp);
        md_object_release(cur);
        *found = 0;
    }
    if (e == CM_OK && has_null && (e = md_kv_del(txn, md->versions, vk, vkl)) == CM_OK) {
        *cur = nullv; /* destroyed: the caller frees its bodies */
        *found = 1;
        has_null = 0;
    }
    if (has_null)
        md_object_release(&nullv);
    if (e != CM_OK)
        return e;
    md_object_set_generation(w, gen + 1);
    if ((e = md_kv_put(txn, md->objects, k, kl, w->p, w->len)) == CM_OK)
        res_set(res, vid, marker, 1);
    return e;
}

/* A plain DELETE of a versioned bucket: a delete marker becomes the latest. */
static cm_err put_marker(md_store *md, MDB_txn *txn, const char *bucket, const char *key,
                         const uint8_t *k, size_t kl, md_object *cur, int *found, md_vres *res)
{
    md_object m = {.key = (char *)key, .mtime_ms = cm_now_ms(), .delete_marker = 1};
    md_wbuf w = {0};
    snprintf(m.version_id, sizeof(m.version_id), "null");
    cm_err e = md_object_encode_stored(&m, &w);
    if (e == CM_OK)
        e = md_vers_install(md, txn, bucket, k, kl, &w, 1, cur, found, res);
    md_w_free(&w);
    return e;
}

/* Destroy version vid of the key (the latest, promoting the next, or an older one). */
static cm_err delete_version(md_store *md, MDB_txn *txn, const uint8_t *k, size_t kl,
                             const char *vid, const md_cond *cond, int mode, md_object *cur,
                             int *found, md_vres *res, int versioned, int *wrote)
{
    uint8_t vk[MD_KEYBUF];
    size_t vkl;
    cm_err e;
    int bypass = cond && cond->bypass_governance;
    int noncurrent = cond && cond->noncurrent;
    int64_t latest_ms = *found ? cur->mtime_ms : 0;
    if (*found && vid_same(cur->version_id, vid)) {
        int promoted;
        if (noncurrent)
            return CM_ERR_PRECONDITION; /* it became the latest since the listing */
        if ((e = md_cond_check(cond, cur)) != CM_OK)
            return e;
        if (md_lock_protects(cur, cm_now_ms(), bypass))
            return CM_ERR_LOCKED;
        res_set(res, vid, cur->delete_marker, versioned);
        e = promote(md, txn, k, kl, cur->generation + 1, &promoted);
        if (e == CM_OK && !promoted)
            e = md_kv_del(txn, md->objects, k, kl);
        return e;
    }
    if (*found)
        md_object_release(cur);
    *found = 0;
    e = find_older(md, txn, k, kl, vid, mode, cur, found, vk, &vkl);
    if (e == CM_OK && *found)
        e = md_cond_check(cond, cur);
    if (e == CM_OK && *found && noncurrent)
        e = noncurrent_check(md, txn, k, kl, vk, vkl, latest_ms, cond);
    if (e == CM_OK && *found && md_lock_protects(cur, cm_now_ms(), bypass))
        e = CM_ERR_LOCKED;
    if (e == CM_OK && *found)
        e = md_kv_del(txn, md->versions, vk, vkl);
    if (e == CM_OK && !*found) {
        if (cond && cond->if_match)
            return CM_ERR_NOTFOUND;
        *wrote = 0; /* no such version: nothing to change */
    }
    if (e == CM_OK)
        res_set(res, vid, *found && cur->delete_marker, versioned);
    return e;
}

cm_err md_vers_delete(md_store *md, MDB_txn *txn, const char *bucket, const char *key,
                      const char *vid, const md_cond *cond, int mode, md_object *cur, int *found,
                      md_vres *res, int *wrote)
{
    uint8_t k[MD_KEYBUF], state = MD_VERS_NEVER;
    size_t kl;
    md_slice v;
    *found = 0;
    memset(cur, 0, sizeof(*cur));
    cm_err e = md_key_object(bucket, key, k, &kl);
    if (e != CM_OK)
        return e;
    if (vid && !md_vid_valid(vid))
        return CM_ERR_INVAL;
    e = bucket_state(txn, md, bucket, &state);
    if (e == CM_ERR_NOTFOUND)
        e = CM_OK, state = MD_VERS_NEVER; /* nothing to delete, as for a missing key */
    if (e == CM_OK && (e = md_kv_get(txn, md->objects, k, kl, &v)) == CM_OK)
        *found = (e = md_object_decode_ex(v.p, v.n, mode, cur)) == CM_OK;
    if (e == CM_ERR_NOTFOUND)
        e = CM_OK;
    if (e != CM_OK)
        return e;
    if (vid)
        return delete_version(md, txn, k, kl, vid, cond, mode, cur, found, res,
                              state != MD_VERS_NEVER || !vid_is_null(vid), wrote);
    if ((e = md_cond_check(cond, *found ? cur : NULL)) != CM_OK)
        return e;
    if (state != MD_VERS_NEVER)
        return put_marker(md, txn, bucket, key, k, kl, cur, found, res);
    res_set(res, "null", 0, 0);
    if (!*found) {
        *wrote = 0; /* nothing to delete: nothing to commit */
        return CM_OK;
    }
    return md_kv_del(txn, md->objects, k, kl);
}

cm_err md_vers_bucket_empty(MDB_txn *txn, md_store *md, const char *bucket)
{
    uint8_t k[MD_BUCKET_MAX + 1];
    size_t kl;
    md_kv_iter it;
    cm_err e = md_key_object(bucket, "", k, &kl);
    if (e == CM_OK)
        e = md_kv_iter_open(txn, md->versions, &it);
    if (e != CM_OK)
        return e;
    e = md_kv_iter_seek(&it, k, kl);
    if (e == CM_OK)
        e = it.key.n >= kl && memcmp(it.key.p, k, kl) == 0 ? CM_ERR_CONFLICT : CM_OK;
    md_kv_iter_close(&it);
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

/* ---- Bucket state ---- */

static cm_err revers(const uint8_t *buf, size_t len, const void *arg, md_wbuf *w)
{
    uint8_t state = *(const uint8_t *)arg;
    md_bucket b;
    cm_err e = md_bucket_decode(buf, len, &b);
    if (e == CM_OK && b.lock_enabled && state != MD_VERS_ENABLED)
        return CM_ERR_LOCKED; /* Object Lock needs every version kept: S3's InvalidBucketState */
    if (e != CM_OK || b.versioning == state)
        return e; /* w left empty: the same state is no write */
    return md_bucket_encode_versioning(buf, len, state, w);
}

cm_err md_bucket_set_versioning(md_store *md, const char *name, uint8_t state)
{
    if (state != MD_VERS_ENABLED && state != MD_VERS_SUSPENDED)
        return CM_ERR_INVAL;
    return md_bucket_rewrite(md, name, revers, &state, "put bucket versioning");
}

/* ---- Reads ---- */

/* Version vid of the key (latest or older) decoded with mode, in txn. */
static cm_err read_version(md_store *md, MDB_txn *txn, const char *bucket, const char *key,
                           const char *vid, int mode, md_object *out)
{
    uint8_t k[MD_KEYBUF], vk[MD_KEYBUF];
    size_t kl, vkl;
    md_slice v;
    int found = 0;
    memset(out, 0, sizeof(*out));
    if (!md_vid_valid(vid) || md_key_object(bucket, key, k, &kl) != CM_OK)
        return CM_ERR_NOTFOUND;
    cm_err e = md_kv_get(txn, md->objects, k, kl, &v);
    /* The latest's summary first: an older version's read need not decode its body. */
    if (e == CM_OK && (e = md_object_decode_ex(v.p, v.n, MD_DECODE_SUMMARY, out)) == CM_OK) {
        int latest = vid_same(out->version_id, vid) && !out->tombstone;
        md_object_release(out);
        if (latest)
            return md_object_decode_ex(v.p, v.n, mode, out);
        e = find_older(md, txn, k, kl, vid, mode, out, &found, vk, &vkl);
        if (e == CM_OK && !found)
            e = CM_ERR_NOTFOUND;
    }
    return e;
}

cm_err md_version_get(md_store *md, const char *bucket, const char *key, const char *vid,
                      md_object *out)
{
    MDB_txn *txn;
    memset(out, 0, sizeof(*out));
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = read_version(md, txn, bucket, key, vid, MD_DECODE_FULL, out);
    md_txn_end(md, txn);
    return e;
}

cm_err md_key_versions(md_store *md, const char *bucket, const char *key, size_t max,
                       md_object **out, size_t *n, int *truncated)
{
    uint8_t k[MD_KEYBUF], vk[MD_KEYBUF];
    size_t kl;
    md_slice v;
    md_kv_iter it;
    MDB_txn *txn;
    *out = NULL, *n = 0, *truncated = 0;
    if (md_key_object(bucket, key, k, &kl) != CM_OK || max == 0)
        return CM_OK;
    if (!(*out = calloc(max, sizeof(**out))))
        return CM_ERR_NOMEM;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        goto out;
    e = md_kv_get(txn, md->objects, k, kl, &v);
    if (e == CM_OK && (e = md_object_decode_ex(v.p, v.n, MD_DECODE_SUMMARY, &(*out)[0])) == CM_OK)
        *n = 1;
    if (e == CM_OK && (e = md_kv_iter_open(txn, md->versions, &it)) == CM_OK) {
        vkey(k, kl, UINT64_MAX, vk);
        for (e = md_kv_iter_seek(&it, vk, kl + MD_VSUFFIX);
             e == CM_OK && md_vers_of_key(&it, k, kl); e = md_kv_iter_next(&it)) {
            if (*n == max) {
                *truncated = 1;
                break;
            }
            e = md_object_decode_ex(it.val.p, it.val.n, MD_DECODE_SUMMARY, &(*out)[*n]);
            if (e != CM_OK)
                break;
            (*n)++;
        }
        md_kv_iter_close(&it);
    }
    md_txn_end(md, txn);
out:
    if (e == CM_ERR_NOTFOUND)
        e = CM_OK;
    if (e != CM_OK) {
        md_objects_free(*out, *n);
        *out = NULL, *n = 0;
    }
    return e;
}

cm_err md_versions_walk(md_store *md, const char *bucket, md_version_fn fn, void *arg)
{
    uint8_t k[MD_BUCKET_MAX + 1];
    size_t kl;
    md_kv_iter it;
    MDB_txn *txn;
    cm_err e = md_key_object(bucket, "", k, &kl);
    if (e != CM_OK)
        return CM_OK;
    if ((e = md_txn_begin(md, 1, &txn)) != CM_OK)
        return e;
    if ((e = md_kv_iter_open(txn, md->versions, &it)) == CM_OK) {
        for (e = md_kv_iter_seek(&it, k, kl); e == CM_OK; e = md_kv_iter_next(&it)) {
            md_object o;
            if (it.key.n < kl || memcmp(it.key.p, k, kl) != 0)
                break;
            if ((e = md_object_decode_ex(it.val.p, it.val.n, MD_DECODE_NOBODY, &o)) != CM_OK)
                break;
            e = fn(arg, &o);
            md_object_release(&o);
            if (e != CM_OK)
                break;
        }
        md_kv_iter_close(&it);
    }
    md_txn_end(md, txn);
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

/* ---- Editing one version in place (tags, Object Lock) ---- */

/*
 * Load version vid of the key (the latest when vid is NULL), let edit change it (edit(o, arg, 0)),
 * write it back where it is, then edit(o, arg, 1) takes back what edit lent the record. A delete
 * marker has nothing to edit: CM_ERR_NOTFOUND.
 */
typedef cm_err (*version_edit_fn)(md_object *o, void *arg, int restore);

static cm_err version_edit(md_store *md, MDB_txn *txn, const char *bucket, const char *key,
                           const char *vid, version_edit_fn edit, void *arg)
{
    uint8_t k[MD_KEYBUF], vk[MD_KEYBUF];
    size_t kl, vkl;
    md_slice v;
    md_object o = {0};
    int found = 0, latest = 0;
    md_wbuf w = {0};
    if (md_key_object(bucket, key, k, &kl) != CM_OK || (vid && !md_vid_valid(vid)))
        return CM_ERR_NOTFOUND;
    cm_err e = md_kv_get(txn, md->objects, k, kl, &v);
    if (e == CM_OK && (e = md_object_decode_ex(v.p, v.n, MD_DECODE_FULL, &o)) == CM_OK) {
        latest = found = !vid || vid_same(o.version_id, vid);
        if (!found) {
            md_object_release(&o);
            e = find_older(md, txn, k, kl, vid, MD_DECODE_FULL, &o, &found, vk, &vkl);
        }
    }
    if (e == CM_OK && (!found || o.delete_marker || o.tombstone))
        e = CM_ERR_NOTFOUND;
    int edited = e == CM_OK && (e = edit(&o, arg, 0)) == CM_OK;
    if (e == CM_OK && latest)
        e = md_object_write(txn, md, k, kl, &o, &o);
    else if (e == CM_OK && (e = md_object_encode_stored(&o, &w)) == CM_OK)
        e = md_kv_put(txn, md->versions, vk, vkl, w.p, w.len);
    if (edited)
        edit(&o, arg, 1);
    md_object_release(&o);
    md_w_free(&w);
    return e;
}

typedef struct {
    const char *bucket, *key, *vid;
    const md_meta *tags;
    size_t ntags;
    md_meta *old_tags; /* the record's own, while it carries the borrowed ones */
    size_t old_n;
} vtags_op;

static cm_err vtags_edit(md_object *o, void *arg, int restore)
{
    vtags_op *op = arg;
    if (restore) {
        o->tags = op->old_tags, o->ntags = op->old_n;
        return CM_OK;
    }
    op->old_tags = o->tags, op->old_n = o->ntags;
    o->tags = (md_meta *)op->tags, o->ntags = op->ntags;
    return CM_OK;
}

static cm_err vtags_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    vtags_op *op = arg;
    (void)wrote;
    if (!op->vid)
        return CM_ERR_NOTFOUND;
    return version_edit(md, txn, op->bucket, op->key, op->vid, vtags_edit, op);
}

typedef struct {
    const char *bucket, *key, *vid;
    const md_lock_change *ch;
} vlock_op;

static cm_err vlock_edit(md_object *o, void *arg, int restore)
{
    if (restore)
        return CM_OK;
    /* checked here, on the commit thread, against the version as this transaction sees it */
    return md_lock_apply(o, ((vlock_op *)arg)->ch, cm_now_ms());
}

static cm_err vlock_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    vlock_op *op = arg;
    (void)wrote;
    return version_edit(md, txn, op->bucket, op->key, op->vid, vlock_edit, op);
}

cm_err md_version_set_lock(md_store *md, const char *bucket, const char *key, const char *vid,
                           const md_lock_change *ch)
{
    vlock_op op = {bucket, key, vid, ch};
    return md_write(md, vlock_apply, &op);
}

cm_err md_version_set_tags(md_store *md, const char *bucket, const char *key, const char *vid,
                           const md_meta *tags, size_t ntags)
{
    vtags_op op = {bucket, key, vid, tags, ntags, NULL, 0};
    return md_write(md, vtags_apply, &op);
}
