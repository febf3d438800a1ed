/*
 * md_rec.c - the store as a replica sees it: records put with compare-and-set on a generation,
 * a raw ordered listing for anti-entropy, and durable garbage records.
 *
 * Generation: every object write (md_object_put, md_upload_complete, md_object_replace_layout,
 * md_rec_put) stores the previous record's generation + 1 in the record (md_object_put_stored);
 * a record from before the field counts as generation 1. It is a local counter of this store,
 * never compared across replicas (their digests leave it out), and it is what "put if unchanged
 * since I read it" checks. md_object_delete still removes a record, so a key deleted that way
 * restarts at 1; the replicated path deletes by writing a tombstone, which keeps counting.
 *
 * Garbage: md_rec_put turns each stored body of the replaced record that the new record does not
 * name into a garbage record, in the same nested transaction as the record change, so a crash
 * can neither lose a freed body (leak) nor record one that is still in use. Database "garbage",
 * key hlc (u64 BE) | blob id (16 bytes), so listing what is older than a grace period is a walk
 * from the start; value md_garbage_encode (layout, bucket, key). The reclaimer deletes chunks and
 * then drops the entries; a crash in between redoes deletions, which are idempotent.
 *
 * Threading: as md_store.c (writes are group-commit ops, reads take their own read txn).
 */
#include <stdlib.h>
#include <string.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "md_int.h"

#define GARBAGE_KEY 24

/* ---- Digests ---- */

cm_err md_rec_digest(const uint8_t *key, size_t klen, const md_object *o, uint8_t out[16])
{
    /* key \0 (keys hold no NUL: the key ends there) | hlc | node | tombstone | vector */
    uint8_t b[MD_MAX_KEY + 1 + 13 + MD_VV_ENC_MAX], full[32];
    if (klen > MD_MAX_KEY)
        return CM_ERR_INVAL;
    memcpy(b, key, klen);
    uint8_t *p = b + klen;
    *p++ = 0;
    cm_put_be64(p, o->hlc);
    cm_put_be32(p + 8, o->hlc_node);
    p[12] = o->tombstone;
    p += 13;
    p += md_vv_encode(&o->vv, p);
    cm_sha256(b, (size_t)(p - b), full);
    memcpy(out, full, 16);
    return CM_OK;
}

/* ---- Walking a bucket's records ---- */

cm_err md_rec_summary_at(md_kv_iter *it, md_object *o)
{
    md_slice head = {NULL, 0}, tail = {NULL, 0};
    cm_err e = md_kv_iter_parts(it, &head, &tail);
    if (e != CM_OK) {
        memset(o, 0, sizeof(*o));
        return e;
    }
    return md_object_decode_split(head, tail, MD_DECODE_SUMMARY, o);
}

cm_err md_rec_walk(md_store *md, const char *bucket, const char *after, md_key_filter filter,
                   void *farg, md_rec_fn fn, void *arg)
{
    return md_rec_walk_from(md, bucket, after, 0, filter, farg, fn, arg);
}

cm_err md_rec_walk_from(md_store *md, const char *bucket, const char *after, int inclusive,
                        md_key_filter filter, void *farg, md_rec_fn fn, void *arg)
{
    uint8_t k[MD_KEYBUF];
    size_t kl, al = after ? strlen(after) : 0;
    MDB_txn *txn;
    md_kv_iter it;
    if (md_key_object(bucket, "", k, &kl) != CM_OK || al > MD_MAX_KEY)
        return CM_ERR_INVAL;
    size_t boff = kl;
    if (al)
        memcpy(k + kl, after, al);
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    if ((e = md_kv_iter_open(txn, md->objects, &it)) != CM_OK) {
        md_txn_end(md, txn);
        return e;
    }
    it.lazy = 1; /* no split value is joined: a refused key costs nothing, the rest a decode */
    for (e = md_kv_iter_seek(&it, k, kl + al); e == CM_OK; e = md_kv_iter_next(&it)) {
        if (it.key.n < boff || memcmp(it.key.p, k, boff) != 0)
            break; /* past the bucket */
        if (after && !inclusive && it.key.n == kl + al && memcmp(it.key.p, k, kl + al) == 0)
            continue; /* exclusive */
        if (filter && !filter(farg, it.key.p + boff, it.key.n - boff))
            continue;
        md_object o;
        if ((e = md_rec_summary_at(&it, &o)) != CM_OK)
            break;
        if (o.generation == 0)
            o.generation = 1; /* a record from before generations */
        int stop = 0;
        e = fn(arg, it.key.p + boff, it.key.n - boff, &o, &stop);
        md_object_release(&o);
        if (e != CM_OK || stop)
            break;
    }
    md_kv_iter_close(&it);
    md_txn_end(md, txn);
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

cm_err md_rec_info_add(md_rec_info **a, size_t *n, size_t *cap, const uint8_t *key, size_t klen,
                       const md_object *o)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        md_rec_info *p = realloc(*a, nc * sizeof(*p));
        if (!p)
            return CM_ERR_NOMEM;
        *a = p, *cap = nc;
    }
    md_rec_info *r = &(*a)[*n];
    memset(r, 0, sizeof(*r));
    if (!(r->key = malloc(klen + 1)))
        return CM_ERR_NOMEM;
    memcpy(r->key, key, klen);
    r->key[klen] = 0;
    r->generation = o->generation;
    r->hlc = o->hlc;
    r->hlc_node = o->hlc_node;
    r->tombstone = o->tombstone;
    (*n)++; /* counted now so that a failure below still frees the key */
    return md_rec_digest(key, klen, o, r->digest);
}

void md_rec_infos_free(md_rec_info *infos, size_t n)
{
    for (size_t i = 0; infos && i < n; i++)
        free(infos[i].key);
    free(infos);
}

/* ---- Raw listing ---- */

typedef struct {
    md_rec_info *a;
    size_t n, cap, max;
    int truncated;
} list_ctx;

static cm_err list_one(void *arg, const uint8_t *key, size_t klen, const md_object *o, int *stop)
{
    list_ctx *c = arg;
    if (c->n == c->max) {
        c->truncated = 1;
        *stop = 1;
        return CM_OK;
    }
    return md_rec_info_add(&c->a, &c->n, &c->cap, key, klen, o);
}

cm_err md_rec_list(md_store *md, const char *bucket, const char *after, size_t max,
                   md_rec_info **out, size_t *n, int *truncated)
{
    list_ctx c = {.max = max};
    cm_err e = md_rec_walk(md, bucket, after, NULL, NULL, list_one, &c);
    if (e != CM_OK) {
        md_rec_infos_free(c.a, c.n);
        c.a = NULL, c.n = 0, c.truncated = 0;
    }
    *out = c.a, *n = c.n, *truncated = c.truncated;
    return e;
}

static cm_err keys_add(char ***keys, size_t *n, const char *key)
{
    char **p = realloc(*keys, (*n + 1) * sizeof(*p));
    if (!p)
        return CM_ERR_NOMEM;
    *keys = p;
    size_t l = strlen(key);
    if (!(p[*n] = malloc(l + 1)))
        return CM_ERR_NOMEM;
    memcpy(p[*n], key, l + 1);
    (*n)++;
    return CM_OK;
}

cm_err md_rec_diff(const md_rec_info *a, size_t na, const md_rec_info *b, size_t nb, char ***keys,
                   size_t *n)
{
    size_t i = 0, j = 0;
    cm_err e = CM_OK;
    *keys = NULL, *n = 0;
    while (e == CM_OK && (i < na || j < nb)) {
        int c = i == na ? 1 : j == nb ? -1 : strcmp(a[i].key, b[j].key);
        if (c < 0)
            e = keys_add(keys, n, a[i++].key);
        else if (c > 0)
            e = keys_add(keys, n, b[j++].key);
        else if (memcmp(a[i].digest, b[j].digest, 16) != 0)
            e = keys_add(keys, n, a[i++].key), j++;
        else
            i++, j++;
    }
    if (e != CM_OK) {
        md_keys_free(*keys, *n);
        *keys = NULL, *n = 0;
    }
    return e;
}

void md_keys_free(char **keys, size_t n)
{
    for (size_t i = 0; keys && i < n; i++)
        free(keys[i]);
    free(keys);
}

/* ---- Versioned put and get ---- */

typedef struct {
    const char *bucket;
    const md_object *obj;
    uint64_t expect, gen;
    uint8_t k[MD_KEYBUF];
    size_t kl;
    md_wbuf w;
} rec_put_op;

static int uses_blob(const md_object *o, const uint8_t blob[16])
{
    for (size_t i = 0; i < o->nparts; i++)
        if (!MD_PART_INLINE(&o->parts[i]) && memcmp(o->parts[i].layout.blob, blob, 16) == 0)
            return 1;
    return 0;
}

cm_err md_garbage_add(MDB_txn *txn, md_store *md, const char *bucket, const md_object *old,
                      const md_object *obj, uint64_t hlc, size_t *added)
{
    cm_err e = CM_OK;
    if (added)
        *added = 0;
    for (size_t i = 0; e == CM_OK && i < old->nparts; i++) {
        const md_part *p = &old->parts[i];
        if (MD_PART_INLINE(p) || uses_blob(obj, p->layout.blob))
            continue;
        md_garbage g = {hlc, p->layout, (char *)bucket, old->key};
        uint8_t k[GARBAGE_KEY];
        md_wbuf w = {0};
        cm_put_be64(k, hlc);
        memcpy(k + 8, p->layout.blob, 16);
        if ((e = md_garbage_encode(&g, &w)) != CM_OK)
            break;
        MDB_val kv = {sizeof(k), k}, vv = {w.len, w.p};
        int rc = md_db_put(txn, md->garbage, &kv, &vv, 0);
        md_w_free(&w);
        if (rc)
            e = md_mdb_err(rc, "put garbage");
        else if (added)
            (*added)++;
    }
    return e;
}

static cm_err rec_put_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    rec_put_op *op = arg;
    md_object cur;
    int found = 0;
    (void)wrote;
    MDB_val bk = {strlen(op->bucket), (void *)op->bucket}, bv;
    int rc = mdb_get(txn, md->buckets, &bk, &bv);
    if (rc)
        return rc == MDB_NOTFOUND ? CM_ERR_NOTFOUND : md_mdb_err(rc, "get bucket");
    cm_err e = md_object_read(txn, md, op->k, op->kl, &cur, &found);
    if (e != CM_OK)
        return e;
    if (found && cur.generation == 0)
        cur.generation = 1; /* a record from before generations */
    uint64_t have = found ? cur.generation : 0;
    if (op->expect != MD_GEN_ANY && op->expect != have)
        e = CM_ERR_CONFLICT;
    if (e == CM_OK && found)
        e = md_garbage_add(txn, md, op->bucket, &cur, op->obj, op->obj->hlc, NULL);
    if (e == CM_OK)
        e = md_object_put_stored(txn, md, op->k, op->kl, &op->w, found ? &cur : NULL);
    op->gen = have + 1;
    if (found)
        md_object_release(&cur);
    return e;
}

cm_err md_rec_put(md_store *md, const char *bucket, const md_object *obj, uint64_t expect,
                  uint64_t *gen)
{
    rec_put_op op = {.bucket = bucket, .obj = obj, .expect = expect};
    if (!obj->key || !*obj->key || md_key_object(bucket, obj->key, op.k, &op.kl) != CM_OK)
        return CM_ERR_INVAL;
    cm_err e = md_object_encode_stored(obj, &op.w);
    if (e == CM_OK)
        e = md_write(md, rec_put_apply, &op);
    md_w_free(&op.w);
    if (gen)
        *gen = e == CM_OK ? op.gen : 0;
    return e;
}

cm_err md_rec_get(md_store *md, const char *bucket, const char *key, md_object *out)
{
    int found;
    cm_err e = md_object_read_one(md, bucket, key, out, &found);
    if (e == CM_OK && found && out->generation == 0)
        out->generation = 1;
    return e == CM_OK && !found ? CM_ERR_NOTFOUND : e;
}

/* ---- Garbage ---- */

static cm_err garbage_collect(MDB_txn *txn, md_store *md, uint64_t before, size_t max,
                              md_garbage **out, size_t *n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, md->garbage, &cur);
    if (rc)
        return md_mdb_err(rc, "mdb_cursor_open");
    cm_err e = CM_OK;
    while (*n < max && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if (k.mv_size != GARBAGE_KEY) {
            e = MD_CORRUPT("garbage key length");
            break;
        }
        uint64_t hlc = cm_get_be64(k.mv_data);
        if (hlc >= before)
            break; /* keys sort by hlc: the rest is younger */
        md_garbage *a = realloc(*out, (*n + 1) * sizeof(*a));
        if (!a) {
            e = CM_ERR_NOMEM;
            break;
        }
        *out = a;
        if ((e = md_garbage_decode(v.mv_data, v.mv_size, &a[*n])) != CM_OK)
            break;
        a[(*n)++].hlc = hlc;
    }
    if (e == CM_OK && rc && rc != MDB_NOTFOUND)
        e = md_mdb_err(rc, "list garbage");
    mdb_cursor_close(cur);
    return e;
}

cm_err md_garbage_list(md_store *md, uint64_t before, size_t max, md_garbage **out, size_t *n)
{
    MDB_txn *txn;
    *out = NULL, *n = 0;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = garbage_collect(txn, md, before, max, out, n);
    md_txn_end(md, txn);
    if (e != CM_OK) {
        md_garbage_free(*out, *n);
        *out = NULL, *n = 0;
    }
    return e;
}

void md_garbage_free(md_garbage *g, size_t n)
{
    for (size_t i = 0; g && i < n; i++) {
        free(g[i].bucket);
        free(g[i].key);
    }
    free(g);
}

typedef struct {
    const md_garbage *g;
    size_t n;
} garbage_drop_op;

static cm_err garbage_drop_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    garbage_drop_op *op = arg;
    size_t dropped = 0;
    for (size_t i = 0; i < op->n; i++) {
        uint8_t k[GARBAGE_KEY];
        cm_put_be64(k, op->g[i].hlc);
        memcpy(k + 8, op->g[i].layout.blob, 16);
        MDB_val kv = {sizeof(k), k};
        int rc = md_db_del(txn, md->garbage, &kv);
        if (rc && rc != MDB_NOTFOUND)
            return md_mdb_err(rc, "del garbage");
        dropped += rc == 0;
    }
    if (dropped == 0)
        *wrote = 0;
    return CM_OK;
}

cm_err md_garbage_drop(md_store *md, const md_garbage *g, size_t n)
{
    garbage_drop_op op = {g, n};
    return md_write(md, garbage_drop_apply, &op);
}

static cm_err garbage_put_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    garbage_drop_op *op = arg;
    (void)wrote;
    return md_garbage_put_in(txn, md, op->g, op->n);
}

cm_err md_garbage_put_in(MDB_txn *txn, md_store *md, const md_garbage *gs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        md_garbage g = gs[i];
        md_wbuf w = {0};
        cm_err e = md_garbage_encode(&g, &w);
        for (int rc = MDB_KEYEXIST; e == CM_OK && rc == MDB_KEYEXIST; g.hlc++) {
            uint8_t k[GARBAGE_KEY];
            cm_put_be64(k, g.hlc);
            memcpy(k + 8, g.layout.blob, 16);
            MDB_val kv = {sizeof(k), k}, vv = {w.len, w.p};
            rc = md_db_put(txn, md->garbage, &kv, &vv, MDB_NOOVERWRITE);
            if (rc && rc != MDB_KEYEXIST)
                e = md_mdb_err(rc, "put garbage");
        }
        md_w_free(&w);
        if (e != CM_OK)
            return e;
    }
    return CM_OK;
}

cm_err md_garbage_put(md_store *md, const md_garbage *g, size_t n)
{
    garbage_drop_op op = {g, n};
    return md_write(md, garbage_put_apply, &op);
}
