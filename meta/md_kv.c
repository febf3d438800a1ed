/*
 * md_kv.c - ordered keys of any length on top of LMDB, whose keys stop at 511 bytes.
 *
 * S3 keys reach 1024 bytes, so a composite key (bucket \0 key \0 upload id) can exceed LMDB's
 * limit. Keys are stored in a tree of *nodes* inside the same LMDB database:
 *     a node key of at most MD_KV_SHORT bytes is an LMDB key, its value the value as given;
 *     a longer node key n lives in the group under n[0 .. MD_KV_SHORT + 1): that LMDB entry's
 *     value is GROUP_TREE | gid (u64 BE), and n continues as the node key 0x00 | gid | n[481..]
 *     one level down.
 * Level 0 node keys are the keys themselves. A group key is exactly MD_KV_SHORT + 1 bytes long
 * and a plain key never is, so entries are told apart by length at every level. Truncation is
 * monotone in memcmp order, and the entries of group gid all start with 0x00 | gid, so walking a
 * level in order, descending into each group where it stands, yields every full key in order.
 * A key of the longest composite length (1153 bytes) ends at level 2. Keys starting with 0x00
 * never occur at level 0 (bucket names do not start with it), so level 0 iteration starts at
 * 0x01 and never meets the lower levels' entries, which sort first. The key 0x00 alone holds the
 * next group id (u64 BE). A get, put or delete is one LMDB lookup per level (O(log n) each, at
 * most three levels), whatever the number of keys that share a prefix; an emptied group's entry
 * is removed with its last key.
 *
 * Stores written before the tree (GROUP_LEGACY, format byte 0x01) kept a whole group in one
 * value: 0x01 then entries sorted by key, never empty:
 *     key length u32 BE | key | value length u32 BE | value
 * Rewriting such a group for every write made n writes of keys sharing 481 bytes cost O(n^2). They
 * are still read as they are (get and iteration scan the group); the first write to one converts
 * it to a tree group.
 *
 * Split values. LMDB stores a value too large for a leaf page in a run of whole overflow pages
 * with a 16-byte header, so a value of a page and a little more takes two pages: a record with a
 * 4 KiB inline body (4,096 bytes of body and ~250 of fields) wrote 8 KiB to every copy of the
 * store, and those half-empty pages were nearly half of what a 4 KiB PUT wrote and synced
 * (docs/performance.md). A value whose last overflow page would be mostly empty is therefore
 * stored in two parts: the entry holds SPLIT_MARK, SPLIT_HEAD, a spill id (u64 BE) and the
 * value's first h bytes (small: it stays in the leaf page), and the "spill" database holds the
 * other vlen - h bytes, exactly filling p overflow pages, under the id. Ids are the spill
 * database's last id + 1, put with MDB_APPEND: a batch's new spill entries share the rightmost
 * leaf (filled whole, not split in halves) instead of dirtying one leaf per key, and a lookup
 * compares 8-byte keys. The cut is md_kv_split_head's: h = (vlen + 16) mod psize when that is at
 * most SPLIT_LEAF_MAX with the key, else no split. Records start with a format byte (1-3), never
 * with SPLIT_MARK; any other value that does is stored escaped (SPLIT_MARK, SPLIT_ESCAPED, the
 * value), so every entry starting with the mark says what it is. A put or delete of an entry that
 * was split drops its spill entry (the old entry is looked up only while the spill database holds
 * any; an id is reused only after its entry is gone, so no head names another's tail), and every
 * write goes through md_db_put / md_db_del, so the copies of the store (md_mirror.c) replay the
 * spill writes with the rest. Only this file knows of the split: readers get the value whole,
 * joined into a buffer (see below).
 *
 * Reads return slices into LMDB's map (or into the iterator's key buffer): valid until the
 * transaction ends or writes to that DB, or the iterator moves. A split value comes joined: from
 * md_kv_get in the calling thread's scratch buffer (cm_bufpool_scratch), valid until its next
 * md_kv_get; from an iterator in the iterator's buffer, valid until it moves (md_kv_iter_close
 * frees it). An iterator with `lazy` set does not join: md_kv_iter_parts gives a split value as
 * its two pieces in the map, so a walk that skips most keys by their name alone, or decodes a
 * record without its body (md_object_decode_split), copies no value.
 *
 * Threading: per transaction, as LMDB; the spill handle and page size are set at every open and
 * equal for every store of the process (md_env_dbs opens the same databases in the same order).
 */
#include <stdlib.h>
#include <string.h>

#include "cm_bufpool.h"
#include "cm_util.h"
#include "md_int.h"

#define GROUP_KEY (MD_KV_SHORT + 1)
#define SUB_HDR 9 /* 0x00 | group id */
#define GROUP_LEGACY MD_FORMAT_V1
#define GROUP_TREE 2

static const uint8_t counter_key[1] = {0};
static const uint8_t level0_start[1] = {1};

/* ---- Split values ---- */

#define SPLIT_MARK 0xF5     /* first byte of an entry whose value is split or escaped */
#define SPLIT_HEAD 1        /* second byte: the head of a split value follows */
#define SPLIT_ESCAPED 0     /* second byte: a whole value starting with SPLIT_MARK follows */
#define OVERFLOW_HDR 16     /* LMDB's header on a run of overflow pages */
#define SPLIT_LEAF_MAX 1024 /* most bytes of key and head an entry of a split value may take */
#define SPLIT_HDR 10        /* mark, kind, spill id */

static MDB_dbi spill_dbi; /* 0 until the first open */
static size_t spill_psize;

cm_err md_kv_spill_init(MDB_dbi spill, size_t psize)
{
    if (psize < 1024 || spill == 0)
        return MD_CORRUPT("unusable spill database or page size");
    if (spill_dbi == spill && spill_psize == psize)
        return CM_OK; /* every open after the first: nothing written */
    if (spill_dbi)
        return MD_CORRUPT("spill database handle or page size differ between stores");
    spill_dbi = spill;
    spill_psize = psize;
    return CM_OK;
}

size_t md_kv_split_head(size_t klen, size_t vlen)
{
    if (!spill_psize || vlen + OVERFLOW_HDR < spill_psize)
        return 0; /* less than one full page: nothing to gain */
    size_t h = (vlen + OVERFLOW_HDR) % spill_psize;
    if (h == 0 || SPLIT_HDR + h + klen > SPLIT_LEAF_MAX)
        return 0; /* the pages are full already, or the head would not stay small */
    return h;
}

static int is_marked(const MDB_val *v)
{
    return v->mv_size > 0 && ((const uint8_t *)v->mv_data)[0] == SPLIT_MARK;
}

static int is_split(const MDB_val *v)
{
    return is_marked(v) && v->mv_size >= 2 && ((const uint8_t *)v->mv_data)[1] == SPLIT_HEAD;
}

/* The two pieces of the split value whose entry is v (its head): slices into the map. */
static cm_err split_parts(MDB_txn *txn, const MDB_val *v, md_slice *head, md_slice *tail)
{
    *head = *tail = (md_slice){NULL, 0};
    if (v->mv_size < SPLIT_HDR)
        return MD_CORRUPT("short split-value head");
    MDB_val sk = {8, (uint8_t *)v->mv_data + 2}, t;
    int rc = mdb_get(txn, spill_dbi, &sk, &t);
    if (rc == MDB_NOTFOUND)
        return MD_CORRUPT("split value without its spill entry");
    if (rc)
        return md_mdb_err(rc, "get spill entry");
    *head = (md_slice){(const uint8_t *)v->mv_data + SPLIT_HDR, v->mv_size - SPLIT_HDR};
    *tail = (md_slice){t.mv_data, t.mv_size};
    return CM_OK;
}

/* Join the split value whose entry is v (its head) with its spill part into *buf (grown; NULL:
 * this thread's scratch buffer). */
static cm_err join(MDB_txn *txn, const MDB_val *v, uint8_t **buf, size_t *cap, md_slice *out)
{
    md_slice hs = {NULL, 0}, ts = {NULL, 0};
    cm_err e = split_parts(txn, v, &hs, &ts);
    if (e != CM_OK)
        return e;
    size_t h = hs.n, n = h + ts.n;
    uint8_t *dst;
    if (!buf) {
        if (!(dst = cm_bufpool_scratch(n)))
            return CM_ERR_NOMEM;
    } else {
        char *p = (char *)*buf;
        if (cm_buf_room(&p, cap, 0, n, n) != CM_OK)
            return CM_ERR_NOMEM;
        dst = *buf = (uint8_t *)p;
    }
    memcpy(dst, hs.p, h);
    memcpy(dst + h, ts.p, ts.n);
    *out = (md_slice){dst, n};
    return CM_OK;
}

/* The stored value v as readers see it, into *out (a split value joined in *buf, grown; NULL
 * buf: this thread's scratch buffer, cm_bufpool_scratch). */
static cm_err value_out(MDB_txn *txn, const MDB_val *v, uint8_t **buf, size_t *cap, md_slice *out)
{
    const uint8_t *b = v->mv_data;
    if (!is_marked(v)) {
        *out = (md_slice){b, v->mv_size};
        return CM_OK;
    }
    if (v->mv_size >= 2 && b[1] == SPLIT_ESCAPED) {
        *out = (md_slice){b + 2, v->mv_size - 2};
        return CM_OK;
    }
    if (!is_split(v))
        return MD_CORRUPT("bad split-value mark");
    return join(txn, v, buf, cap, out);
}

/* Does the spill database hold any entry? (A store without split values skips the lookups.) */
static cm_err spill_used(MDB_txn *txn, int *used)
{
    MDB_stat st;
    int rc = mdb_stat(txn, spill_dbi, &st);
    *used = rc == 0 && st.ms_entries > 0;
    return rc ? md_mdb_err(rc, "mdb_stat spill") : CM_OK;
}

/* Drop the spill part of entry k of dbi if its stored value is split (before a put or delete). */
static cm_err spill_drop(MDB_txn *txn, MDB_dbi dbi, MDB_val *k)
{
    int used = 0;
    cm_err e = spill_used(txn, &used);
    if (e != CM_OK || !used)
        return e;
    MDB_val old;
    int rc = mdb_get(txn, dbi, k, &old);
    if (rc == MDB_NOTFOUND || (rc == 0 && !is_split(&old)))
        return CM_OK;
    if (rc)
        return md_mdb_err(rc, "mdb_get");
    if (old.mv_size < SPLIT_HDR)
        return MD_CORRUPT("short split-value head");
    uint8_t id[8];
    memcpy(id, (const uint8_t *)old.mv_data + 2, 8); /* the map moves under the delete */
    rc = md_db_del(txn, spill_dbi, &(MDB_val){8, id});
    return rc && rc != MDB_NOTFOUND ? md_mdb_err(rc, "del spill entry") : CM_OK;
}

/* The next spill id: the last one + 1 (1 in an empty database). */
static cm_err spill_next_id(MDB_txn *txn, uint8_t id[8])
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t next = 1;
    int rc = mdb_cursor_open(txn, spill_dbi, &cur);
    if (rc)
        return md_mdb_err(rc, "mdb_cursor_open spill");
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc == 0 && k.mv_size != 8)
        return MD_CORRUPT("bad spill id");
    if (rc && rc != MDB_NOTFOUND)
        return md_mdb_err(rc, "last spill id");
    if (rc == 0 && (next = cm_get_be64(k.mv_data) + 1) == 0)
        return MD_CORRUPT("spill ids exhausted");
    cm_put_be64(id, next);
    return CM_OK;
}

/* Store v under the LMDB key k of dbi: split when that saves a page, escaped when it starts
 * with the mark. */
static cm_err put_value(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, const uint8_t *val, size_t vlen)
{
    size_t h = md_kv_split_head(k->mv_size, vlen);
    cm_err e = spill_drop(txn, dbi, k);
    if (e != CM_OK)
        return e;
    int rc;
    if (h == 0) {
        MDB_val v = {vlen, (void *)val};
        uint8_t *esc = NULL;
        if (vlen > 0 && val[0] == SPLIT_MARK) {
            if (!(esc = malloc(vlen + 2)))
                return CM_ERR_NOMEM;
            esc[0] = SPLIT_MARK;
            esc[1] = SPLIT_ESCAPED;
            memcpy(esc + 2, val, vlen);
            v = (MDB_val){vlen + 2, esc};
        }
        rc = md_db_put(txn, dbi, k, &v, 0);
        free(esc);
        return rc ? md_mdb_err(rc, "mdb_put") : CM_OK;
    }
    uint8_t head[SPLIT_LEAF_MAX];
    if ((e = spill_next_id(txn, head + 2)) != CM_OK)
        return e;
    rc = md_db_put(txn, spill_dbi, &(MDB_val){8, head + 2}, &(MDB_val){vlen - h, (void *)(val + h)},
                   MDB_APPEND);
    if (rc)
        return md_mdb_err(rc, "put spill entry");
    head[0] = SPLIT_MARK;
    head[1] = SPLIT_HEAD;
    memcpy(head + SPLIT_HDR, val, h);
    rc = md_db_put(txn, dbi, k, &(MDB_val){SPLIT_HDR + h, head}, 0);
    return rc ? md_mdb_err(rc, "mdb_put") : CM_OK;
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

/* ---- Legacy groups (read only) ---- */

/* Parse the legacy group entry at *off; advances *off. CM_ERR_NOTFOUND at the end. */
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

static cm_err legacy_get(const MDB_val *g, const uint8_t *key, size_t klen, md_slice *val)
{
    size_t off = 1;
    md_slice ek = {0}; /* set by group_entry; gcc -O3 cannot see it */
    cm_err e;
    while ((e = group_entry(g, &off, &ek, val)) == CM_OK) {
        int c = slice_cmp(ek, key, klen);
        if (c == 0)
            return CM_OK;
        if (c > 0)
            return CM_ERR_NOTFOUND;
    }
    return e;
}

/* GROUP_TREE (with *gid pointing at its id) or GROUP_LEGACY; CM_ERR_CORRUPT otherwise. */
static cm_err group_kind(const MDB_val *g, int level, int *kind, const uint8_t **gid)
{
    const uint8_t *p = g->mv_data;
    if (g->mv_size == 1 + 8 && p[0] == GROUP_TREE) {
        *kind = GROUP_TREE;
        *gid = p + 1;
        return CM_OK;
    }
    if (level == 0 && g->mv_size >= 2 && p[0] == GROUP_LEGACY) {
        *kind = GROUP_LEGACY;
        return CM_OK;
    }
    return MD_CORRUPT("bad long-key group header");
}

/* The node key one level below node (|node| > MD_KV_SHORT) in group gid, into out. */
static size_t child_node(const uint8_t *gid, const uint8_t *node, size_t n, uint8_t *out)
{
    out[0] = 0;
    memcpy(out + 1, gid, 8);
    memcpy(out + SUB_HDR, node + GROUP_KEY, n - GROUP_KEY);
    return SUB_HDR + n - GROUP_KEY;
}

/* ---- Point operations ---- */

cm_err md_kv_get(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t klen, md_slice *val)
{
    uint8_t buf[2][MD_KEYBUF];
    const uint8_t *node = key;
    size_t n = klen;
    for (int level = 0; level < MD_KV_LEVELS; level++) {
        MDB_val k = {CM_MIN(n, (size_t)GROUP_KEY), (void *)node}, v;
        int rc = mdb_get(txn, dbi, &k, &v), kind = 0;
        const uint8_t *gid = NULL;
        if (rc == MDB_NOTFOUND)
            return CM_ERR_NOTFOUND;
        if (rc)
            return md_mdb_err(rc, "mdb_get");
        if (n <= MD_KV_SHORT)
            return value_out(txn, &v, NULL, NULL, val);
        if (group_kind(&v, level, &kind, &gid) != CM_OK)
            return CM_ERR_CORRUPT;
        if (kind == GROUP_LEGACY)
            return legacy_get(&v, key, klen, val);
        n = child_node(gid, node, n, buf[level & 1]);
        node = buf[level & 1];
    }
    return MD_CORRUPT("long key nested too deep");
}

/* The next group id of dbi (stored under the key 0x00). */
static cm_err new_gid(MDB_txn *txn, MDB_dbi dbi, uint8_t gid[8])
{
    MDB_val k = {1, (void *)counter_key}, v;
    uint64_t next = 1;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0 && v.mv_size == 8)
        next = cm_get_be64(v.mv_data);
    else if (rc == 0)
        return MD_CORRUPT("bad long-key group counter");
    else if (rc != MDB_NOTFOUND)
        return md_mdb_err(rc, "get group counter");
    uint8_t nb[8];
    cm_put_be64(gid, next);
    cm_put_be64(nb, next + 1);
    rc = md_db_put(txn, dbi, &k, &(MDB_val){8, nb}, 0);
    return rc ? md_mdb_err(rc, "put group counter") : CM_OK;
}

/* Rewrite the legacy group at k (value g) as a tree group: copy it out, delete it, re-put. */
static cm_err legacy_convert(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, const MDB_val *g)
{
    uint8_t gk[GROUP_KEY];
    MDB_val copy = {g->mv_size, malloc(g->mv_size)};
    if (!copy.mv_data)
        return CM_ERR_NOMEM;
    memcpy(copy.mv_data, g->mv_data, g->mv_size); /* g lives in the map, which writes move */
    memcpy(gk, k->mv_data, GROUP_KEY);
    int rc = md_db_del(txn, dbi, &(MDB_val){GROUP_KEY, gk});
    cm_err e = rc ? md_mdb_err(rc, "del legacy group") : CM_OK;
    size_t off = 1;
    md_slice ek, ev;
    while (e == CM_OK && (e = group_entry(&copy, &off, &ek, &ev)) == CM_OK)
        e = md_kv_put(txn, dbi, ek.p, ek.n, ev.p, ev.n);
    free(copy.mv_data);
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

/* Node keys from level 0 down to the one that stores a key (see md_kv_descend). */
typedef struct {
    uint8_t node[MD_KV_LEVELS][MD_KEYBUF];
    size_t n[MD_KV_LEVELS];
    int depth; /* node[depth] is the plain LMDB key */
} kv_path;

/*
 * Walk from key to the LMDB key that stores it, for a write: a legacy group on the way is
 * converted first; with create, missing groups are made, else CM_ERR_NOTFOUND.
 */
static cm_err descend(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t klen, int create,
                      kv_path *path)
{
    memcpy(path->node[0], key, klen);
    path->n[0] = klen;
    for (int level = 0; level < MD_KV_LEVELS; level++) {
        size_t n = path->n[level];
        if (n <= MD_KV_SHORT) {
            path->depth = level;
            return CM_OK;
        }
        MDB_val k = {GROUP_KEY, path->node[level]}, v;
        uint8_t gid_new[8];
        const uint8_t *gid = NULL;
        int kind = GROUP_TREE, rc = mdb_get(txn, dbi, &k, &v);
        cm_err e = CM_OK;
        if (rc == MDB_NOTFOUND) {
            if (!create)
                return CM_ERR_NOTFOUND;
            uint8_t gv[9] = {GROUP_TREE};
            e = new_gid(txn, dbi, gid_new);
            memcpy(gv + 1, gid_new, 8);
            if (e == CM_OK && (rc = md_db_put(txn, dbi, &k, &(MDB_val){9, gv}, 0)) != 0)
                e = md_mdb_err(rc, "put long-key group");
            gid = gid_new;
        } else if (rc) {
            e = md_mdb_err(rc, "get long-key group");
        } else if ((e = group_kind(&v, level, &kind, &gid)) == CM_OK && kind == GROUP_LEGACY) {
            if ((e = legacy_convert(txn, dbi, &k, &v)) == CM_OK)
                return descend(txn, dbi, key, klen, create, path); /* now a tree */
        }
        if (e != CM_OK)
            return e;
        path->n[level + 1] = child_node(gid, path->node[level], n, path->node[level + 1]);
    }
    return MD_CORRUPT("long key nested too deep");
}

cm_err md_kv_put(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t klen, const uint8_t *val,
                 size_t vlen)
{
    kv_path *path = NULL;
    MDB_val k = {klen, (void *)key};
    if (klen > MD_KV_SHORT) {
        if (!(path = malloc(sizeof(*path))))
            return CM_ERR_NOMEM;
        cm_err e = descend(txn, dbi, key, klen, 1, path);
        if (e != CM_OK) {
            free(path);
            return e;
        }
        k = (MDB_val){path->n[path->depth], path->node[path->depth]};
    }
    cm_err e = put_value(txn, dbi, &k, val, vlen);
    free(path);
    return e;
}

/* Is there an entry starting with prefix[0..n)? */
static cm_err has_prefix(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix, size_t n, int *any)
{
    MDB_cursor *cur;
    MDB_val k = {n, (void *)prefix}, v;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return md_mdb_err(rc, "mdb_cursor_open");
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    *any = rc == 0 && k.mv_size >= n && memcmp(k.mv_data, prefix, n) == 0;
    mdb_cursor_close(cur);
    return rc && rc != MDB_NOTFOUND ? md_mdb_err(rc, "mdb_cursor_get") : CM_OK;
}

cm_err md_kv_del(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t klen)
{
    kv_path *path = NULL;
    MDB_val k = {klen, (void *)key};
    cm_err e = CM_OK;
    if (klen > MD_KV_SHORT) {
        if (!(path = malloc(sizeof(*path))))
            return CM_ERR_NOMEM;
        if ((e = descend(txn, dbi, key, klen, 0, path)) != CM_OK) {
            free(path);
            return e;
        }
        k = (MDB_val){path->n[path->depth], path->node[path->depth]};
    }
    if ((e = spill_drop(txn, dbi, &k)) != CM_OK) {
        free(path);
        return e;
    }
    int rc = md_db_del(txn, dbi, &k);
    if (rc)
        e = rc == MDB_NOTFOUND ? CM_ERR_NOTFOUND : md_mdb_err(rc, "mdb_del");
    /* Remove the groups this left empty, bottom up. */
    for (int level = path ? path->depth : 0; e == CM_OK && level > 0; level--) {
        int any = 0;
        if ((e = has_prefix(txn, dbi, path->node[level], SUB_HDR, &any)) != CM_OK || any)
            break;
        rc = md_db_del(txn, dbi, &(MDB_val){GROUP_KEY, path->node[level - 1]});
        e = rc ? md_mdb_err(rc, "del empty long-key group") : CM_OK;
    }
    free(path);
    return e;
}

/* ---- Iteration ---- */

cm_err md_kv_iter_open(MDB_txn *txn, MDB_dbi dbi, md_kv_iter *it)
{
    memset(it, 0, sizeof(*it));
    it->txn = txn;
    it->dbi = dbi;
    int rc = mdb_cursor_open(txn, dbi, &it->lv[0].cur);
    return rc ? md_mdb_err(rc, "mdb_cursor_open") : CM_OK;
}

void md_kv_iter_close(md_kv_iter *it)
{
    for (int i = 0; i < MD_KV_LEVELS; i++) {
        if (it->lv[i].cur)
            mdb_cursor_close(it->lv[i].cur);
        it->lv[i].cur = NULL;
    }
    free(it->join);
    it->join = NULL;
    it->join_cap = 0;
}

/* Position level d's cursor (opened on first use) with op; returns LMDB's code. */
static int level_get(md_kv_iter *it, int d, MDB_val *k, MDB_cursor_op op)
{
    md_kv_level *l = &it->lv[d];
    int rc = l->cur ? 0 : mdb_cursor_open(it->txn, it->dbi, &l->cur);
    it->steps++;
    if (rc)
        return rc;
    if (k)
        l->k = *k;
    return mdb_cursor_get(l->cur, &l->k, &l->v, op);
}

/* Enter the tree group that level it->depth stands on: its first entry is positioned. */
static int enter_group(md_kv_iter *it, const uint8_t *gid, MDB_val *seek)
{
    int d = it->depth;
    md_kv_level *l = &it->lv[d];
    size_t hdr = d == 0 ? 0 : SUB_HDR, add = GROUP_KEY - hdr;
    memcpy(it->kbuf + it->lv[d].base, (const uint8_t *)l->k.mv_data + hdr, add);
    md_kv_level *c = &it->lv[d + 1];
    c->base = l->base + add;
    c->prefix[0] = 0;
    memcpy(c->prefix + 1, gid, 8);
    it->depth = d + 1;
    MDB_val first = {SUB_HDR, c->prefix};
    return level_get(it, d + 1, seek ? seek : &first, MDB_SET_RANGE);
}

/*
 * Make the entry level it->depth was just positioned on (rc from the cursor) the current full
 * entry: past the end of a group, go back up and on; on a group, go down to its first entry.
 */
static cm_err iter_load(md_kv_iter *it, int rc)
{
    it->pending = (MDB_val){0, NULL};
    for (;;) {
        int d = it->depth;
        md_kv_level *l = &it->lv[d];
        if (rc && rc != MDB_NOTFOUND)
            return md_mdb_err(rc, "mdb_cursor_get");
        if (rc == MDB_NOTFOUND ||
            (d > 0 && (l->k.mv_size < SUB_HDR || memcmp(l->k.mv_data, l->prefix, SUB_HDR) != 0))) {
            if (d == 0)
                return CM_ERR_NOTFOUND;
            it->depth = d - 1; /* the group is done: on to its successor */
            rc = level_get(it, d - 1, NULL, MDB_NEXT);
            continue;
        }
        if (l->k.mv_size != GROUP_KEY) {
            size_t hdr = d == 0 ? 0 : SUB_HDR;
            if (d == 0) {
                it->key = (md_slice){l->k.mv_data, l->k.mv_size};
            } else {
                memcpy(it->kbuf + l->base, (const uint8_t *)l->k.mv_data + hdr, l->k.mv_size - hdr);
                it->key = (md_slice){it->kbuf, l->base + l->k.mv_size - hdr};
            }
            if (it->lazy && is_split(&l->v)) {
                it->pending = l->v;
                it->val = (md_slice){NULL, 0};
                return CM_OK;
            }
            return value_out(it->txn, &l->v, &it->join, &it->join_cap, &it->val);
        }
        int kind = 0;
        const uint8_t *gid = NULL;
        if (group_kind(&l->v, d, &kind, &gid) != CM_OK)
            return CM_ERR_CORRUPT;
        if (kind == GROUP_LEGACY) {
            it->in_legacy = 1;
            it->gnext = 1;
            cm_err e = group_entry(&l->v, &it->gnext, &it->key, &it->val);
            return e == CM_ERR_NOTFOUND ? MD_CORRUPT("empty long-key group") : e;
        }
        if (d + 1 >= MD_KV_LEVELS)
            return MD_CORRUPT("long key nested too deep");
        rc = enter_group(it, gid, NULL);
    }
}

cm_err md_kv_iter_parts(md_kv_iter *it, md_slice *head, md_slice *tail)
{
    if (!it->pending.mv_data) {
        *head = it->val;
        *tail = (md_slice){NULL, 0};
        return CM_OK;
    }
    return split_parts(it->txn, &it->pending, head, tail);
}

cm_err md_kv_iter_next(md_kv_iter *it)
{
    it->pending = (MDB_val){0, NULL};
    if (it->in_legacy) {
        it->steps++;
        cm_err e = group_entry(&it->lv[0].v, &it->gnext, &it->key, &it->val);
        if (e != CM_ERR_NOTFOUND)
            return e;
        it->in_legacy = 0;
    }
    return iter_load(it, level_get(it, it->depth, NULL, MDB_NEXT));
}

cm_err md_kv_iter_seek(md_kv_iter *it, const uint8_t *key, size_t klen)
{
    uint8_t buf[2][MD_KEYBUF];
    const uint8_t *node = key;
    size_t n = klen;
    it->depth = 0;
    it->in_legacy = 0;
    MDB_val k = {CM_MIN(n, (size_t)GROUP_KEY), (void *)node};
    if (n == 0)
        k = (MDB_val){1, (void *)level0_start};
    int rc = level_get(it, 0, &k, MDB_SET_RANGE);
    /* While the entry found is the group holding key itself, go down into it at key's place. */
    for (;;) {
        int d = it->depth, kind = 0;
        md_kv_level *l = &it->lv[d];
        const uint8_t *gid = NULL;
        if (rc || n <= MD_KV_SHORT || l->k.mv_size != GROUP_KEY ||
            memcmp(l->k.mv_data, node, GROUP_KEY) != 0)
            break;
        if (group_kind(&l->v, d, &kind, &gid) != CM_OK)
            return CM_ERR_CORRUPT;
        if (kind == GROUP_LEGACY || d + 1 >= MD_KV_LEVELS)
            break; /* scanned below */
        n = child_node(gid, node, n, buf[d & 1]);
        node = buf[d & 1];
        MDB_val sk = {CM_MIN(n, (size_t)GROUP_KEY), (void *)node};
        rc = enter_group(it, gid, &sk);
    }
    cm_err e = iter_load(it, rc);
    /* Only entries of a legacy group holding key can still sort before it; skip those. */
    while (e == CM_OK && slice_cmp(it->key, key, klen) < 0)
        e = md_kv_iter_next(it);
    return e;
}
