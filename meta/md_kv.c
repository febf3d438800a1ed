/*
 * md_kv.c - ordered keys of any length on top of LMDB, whose keys stop at 511 bytes.
 *
 * S3 keys reach 1024 bytes, so a composite key (bucket \0 key \0 upload id) can exceed LMDB's
 * limit. The mapping f used here:
 *     |k| <= MD_KV_SHORT   ->  stored under k itself, value as given
 *     |k| >  MD_KV_SHORT   ->  stored in the "group" under k[0 .. MD_KV_SHORT + 1)
 * A group key is exactly MD_KV_SHORT + 1 bytes long, a plain key never is, so LMDB entries are
 * told apart by key length. f is monotone in memcmp order (a < b implies f(a) <= f(b)); keys that
 * share a group are the only ones f does not separate, and the group keeps them sorted. So walking
 * LMDB in order and each group in order yields every full key in order, and seeking to f(target)
 * lands at or just before the first full key >= target (only inside that one group).
 *
 * Group value: format byte MD_FORMAT_V1, then entries sorted by key, never empty:
 *     key length u32 BE | key | value length u32 BE | value
 * Reads return slices into LMDB's map: valid until the transaction ends or writes to that DB.
 *
 * Threading: per transaction, as LMDB.
 */
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "md_int.h"

#define GROUP_KEY (MD_KV_SHORT + 1)

static int is_group(const MDB_val *k)
{
    return k->mv_size == GROUP_KEY;
}

int md_key_successor(uint8_t *key, size_t *klen)
{
    size_t n = *klen;
    while (n > 0 && key[n - 1] == 0xFF)
        n--;
    if (n == 0)
        return 0;
    key[n - 1]++;
    *klen = n;
    return 1;
}

static int slice_cmp(md_slice a, const uint8_t *b, size_t bn)
{
    int c = memcmp(a.p, b, CM_MIN(a.n, bn));
    if (c)
        return c;
    return a.n < bn ? -1 : a.n > bn;
}

/* Parse the group entry at *off; advances *off. CM_ERR_NOTFOUND at the end. */
static cm_err group_entry(const MDB_val *g, size_t *off, md_slice *key, md_slice *val)
{
    const uint8_t *p = g->mv_data;
    size_t n = g->mv_size;
    if (*off == n)
        return CM_ERR_NOTFOUND;
    if (n - *off < 4 || n - *off - 4 < cm_get_be32(p + *off))
        return MD_CORRUPT("group entry key beyond value");
    key->n = cm_get_be32(p + *off);
    key->p = p + *off + 4;
    size_t o = *off + 4 + key->n;
    if (n - o < 4 || n - o - 4 < cm_get_be32(p + o))
        return MD_CORRUPT("group entry value beyond value");
    val->n = cm_get_be32(p + o);
    val->p = p + o + 4;
    *off = o + 4 + val->n;
    if (key->n <= MD_KV_SHORT)
        return MD_CORRUPT("short key inside a long-key group");
    return CM_OK;
}

static cm_err group_check(const MDB_val *g)
{
    if (g->mv_size < 2 || ((const uint8_t *)g->mv_data)[0] != MD_FORMAT_V1)
        return MD_CORRUPT("bad long-key group header");
    return CM_OK;
}

static void w_entry(md_wbuf *w, const uint8_t *k, size_t kn, const uint8_t *v, size_t vn)
{
    uint8_t b[4];
    cm_put_be32(b, (uint32_t)kn);
    md_w_bytes(w, b, 4);
    md_w_bytes(w, k, kn);
    cm_put_be32(b, (uint32_t)vn);
    md_w_bytes(w, b, 4);
    md_w_bytes(w, v, vn);
}

cm_err md_kv_get(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t klen, md_slice *val)
{
    MDB_val k = {CM_MIN(klen, (size_t)GROUP_KEY), (void *)key}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return CM_ERR_NOTFOUND;
    if (rc)
        return md_mdb_err(rc, "mdb_get");
    if (klen <= MD_KV_SHORT) {
        val->p = v.mv_data, val->n = v.mv_size;
        return CM_OK;
    }
    if (group_check(&v) != CM_OK)
        return CM_ERR_CORRUPT;
    size_t off = 1;
    md_slice ek = {0}; /* set by group_entry; gcc -O3 cannot see it */
    cm_err e;
    while ((e = group_entry(&v, &off, &ek, val)) == CM_OK) {
        int c = slice_cmp(ek, key, klen);
        if (c == 0)
            return CM_OK;
        if (c > 0)
            return CM_ERR_NOTFOUND;
    }
    return e;
}

/*
 * Rewrite the group holding key: drop its old entry and, when val is non-NULL, insert the new one
 * in order. CM_ERR_NOTFOUND when deleting a key that is not there.
 */
static cm_err group_update(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t klen,
                           const uint8_t *val, size_t vlen)
{
    MDB_val k = {GROUP_KEY, (void *)key}, g = {0, NULL};
    md_wbuf w = {0};
    int rc = mdb_get(txn, dbi, &k, &g), found = 0, placed = 0;
    cm_err e = CM_ERR_NOTFOUND;
    if (rc && rc != MDB_NOTFOUND)
        return md_mdb_err(rc, "mdb_get group");
    if (rc == 0 && group_check(&g) != CM_OK)
        return CM_ERR_CORRUPT;
    uint8_t ver = MD_FORMAT_V1;
    md_w_bytes(&w, &ver, 1);
    size_t off = 1;
    md_slice ek = {0}, ev = {0}; /* set by group_entry; gcc -O3 cannot see it */
    while (rc == 0 && (e = group_entry(&g, &off, &ek, &ev)) == CM_OK) {
        int c = slice_cmp(ek, key, klen);
        if (c >= 0 && val && !placed)
            w_entry(&w, key, klen, val, vlen), placed = 1;
        if (c == 0)
            found = 1;
        else
            w_entry(&w, ek.p, ek.n, ev.p, ev.n);
    }
    if (e != CM_ERR_NOTFOUND)
        goto out;
    if (val && !placed)
        w_entry(&w, key, klen, val, vlen);
    e = CM_OK;
    if (w.failed)
        e = CM_ERR_NOMEM;
    else if (!val && !found)
        e = CM_ERR_NOTFOUND;
    else if (w.len == 1)
        rc = mdb_del(txn, dbi, &k, NULL);
    else
        rc = mdb_put(txn, dbi, &k, &(MDB_val){w.len, w.p}, 0);
    if (e == CM_OK && rc)
        e = md_mdb_err(rc, "write long-key group");
out:
    md_w_free(&w);
    return e;
}

cm_err md_kv_put(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t klen, const uint8_t *val,
                 size_t vlen)
{
    if (klen > MD_KV_SHORT)
        return group_update(txn, dbi, key, klen, val ? val : (const uint8_t *)"", vlen);
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int rc = mdb_put(txn, dbi, &k, &v, 0);
    return rc ? md_mdb_err(rc, "mdb_put") : CM_OK;
}

cm_err md_kv_del(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t klen)
{
    if (klen > MD_KV_SHORT)
        return group_update(txn, dbi, key, klen, NULL, 0);
    MDB_val k = {klen, (void *)key};
    int rc = mdb_del(txn, dbi, &k, NULL);
    if (rc == MDB_NOTFOUND)
        return CM_ERR_NOTFOUND;
    return rc ? md_mdb_err(rc, "mdb_del") : CM_OK;
}

/* ---- Iteration ---- */

cm_err md_kv_iter_open(MDB_txn *txn, MDB_dbi dbi, md_kv_iter *it)
{
    memset(it, 0, sizeof(*it));
    int rc = mdb_cursor_open(txn, dbi, &it->cur);
    return rc ? md_mdb_err(rc, "mdb_cursor_open") : CM_OK;
}

void md_kv_iter_close(md_kv_iter *it)
{
    if (it->cur)
        mdb_cursor_close(it->cur);
    it->cur = NULL;
}

/* Make the LMDB entry just positioned (rc from mdb_cursor_get) the current full entry. */
static cm_err iter_load(md_kv_iter *it, int rc)
{
    if (rc == MDB_NOTFOUND)
        return CM_ERR_NOTFOUND;
    if (rc)
        return md_mdb_err(rc, "mdb_cursor_get");
    it->in_group = is_group(&it->lk);
    if (!it->in_group) {
        it->key = (md_slice){it->lk.mv_data, it->lk.mv_size};
        it->val = (md_slice){it->lv.mv_data, it->lv.mv_size};
        return CM_OK;
    }
    if (group_check(&it->lv) != CM_OK)
        return CM_ERR_CORRUPT;
    it->gnext = 1;
    cm_err e = group_entry(&it->lv, &it->gnext, &it->key, &it->val);
    return e == CM_ERR_NOTFOUND ? MD_CORRUPT("empty long-key group") : e;
}

cm_err md_kv_iter_next(md_kv_iter *it)
{
    if (it->in_group) {
        cm_err e = group_entry(&it->lv, &it->gnext, &it->key, &it->val);
        if (e != CM_ERR_NOTFOUND)
            return e;
    }
    return iter_load(it, mdb_cursor_get(it->cur, &it->lk, &it->lv, MDB_NEXT));
}

cm_err md_kv_iter_seek(md_kv_iter *it, const uint8_t *key, size_t klen)
{
    it->lk = (MDB_val){CM_MIN(klen, (size_t)GROUP_KEY), (void *)key};
    cm_err e;
    if (it->lk.mv_size == 0)
        e = iter_load(it, mdb_cursor_get(it->cur, &it->lk, &it->lv, MDB_FIRST));
    else
        e = iter_load(it, mdb_cursor_get(it->cur, &it->lk, &it->lv, MDB_SET_RANGE));
    /* Only entries of the group f(key) can sort before key; skip those. */
    while (e == CM_OK && slice_cmp(it->key, key, klen) < 0)
        e = md_kv_iter_next(it);
    return e;
}
