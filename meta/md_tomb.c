/*
 * md_tomb.c - what a replica needs to collect tombstones (md.h "Tombstone collection", docs/
 * replication.md): the partition's tombstones older than a cutoff, a drop that is a
 * compare-and-set on each tombstone's digest, and the durable per-partition mark that makes the
 * merge refuse what a collected tombstone would have beaten.
 *
 * Database "tombmarks": key bucket \0 nshards(BE32) shard(BE32), value the mark (BE64 hlc). A
 * store holds one entry per partition it collected in (a node homes a few partitions of each
 * bucket), so the merge's check reads the bucket's few entries, and hashes the key only for an
 * entry whose mark is above the record's stamp: a new write (stamped now) costs one cursor seek.
 * The mark is raised in the same transaction as the drops, so no crash leaves a dropped
 * tombstone without the mark that covers it.
 *
 * Threading: as md_store.c (writes are group-commit ops, reads take their own read txn).
 */
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "md_int.h"

#define MARK_KEY_MAX (MD_BUCKET_MAX + 1 + 8)

static cm_err mark_key(const char *bucket, const md_shard *part, uint8_t *k, size_t *kl)
{
    size_t bl = strlen(bucket);
    if (bl == 0 || bl > MD_BUCKET_MAX || part->nshards == 0 || part->shard >= part->nshards)
        return CM_ERR_INVAL;
    memcpy(k, bucket, bl);
    k[bl] = 0;
    cm_put_be32(k + bl + 1, part->nshards);
    cm_put_be32(k + bl + 5, part->shard);
    *kl = bl + 9;
    return CM_OK;
}

static cm_err mark_read(MDB_txn *txn, md_store *md, const uint8_t *k, size_t kl, uint64_t *mark)
{
    MDB_val kv = {kl, (void *)k}, v;
    int rc = mdb_get(txn, md->tombmarks, &kv, &v);
    *mark = 0;
    if (rc == MDB_NOTFOUND)
        return CM_OK;
    if (rc)
        return md_mdb_err(rc, "get tombstone mark");
    if (v.mv_size != 8)
        return MD_CORRUPT("tombstone mark length");
    *mark = cm_get_be64(v.mv_data);
    return CM_OK;
}

cm_err md_tomb_refuses(MDB_txn *txn, md_store *md, const char *bucket, const md_object *rec,
                       int *refused)
{
    size_t bl = strlen(bucket), klen = strlen(rec->key);
    MDB_cursor *cur;
    MDB_val k = {bl + 1, (void *)bucket}, v; /* bucket \0: the bucket's entries follow */
    *refused = 0;
    if (rec->tombstone)
        return CM_OK;
    int rc = mdb_cursor_open(txn, md->tombmarks, &cur);
    if (rc)
        return md_mdb_err(rc, "open tombstone marks");
    cm_err e = CM_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !*refused;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = k.mv_data;
        if (k.mv_size != bl + 9 || memcmp(p, bucket, bl) != 0 || p[bl] != 0)
            break; /* past the bucket's entries */
        if (v.mv_size != 8) {
            e = MD_CORRUPT("tombstone mark length");
            break;
        }
        uint32_t nshards = cm_get_be32(p + bl + 1), shard = cm_get_be32(p + bl + 5);
        *refused = rec->hlc < cm_get_be64(v.mv_data) &&
                   md_shard_of((const uint8_t *)rec->key, klen, nshards) == shard;
    }
    if (e == CM_OK && rc && rc != MDB_NOTFOUND)
        e = md_mdb_err(rc, "walk tombstone marks");
    mdb_cursor_close(cur);
    return e;
}

cm_err md_tomb_mark(md_store *md, const char *bucket, const md_shard *part, uint64_t *mark)
{
    uint8_t k[MARK_KEY_MAX];
    size_t kl;
    MDB_txn *txn;
    *mark = 0;
    cm_err e = mark_key(bucket, part, k, &kl);
    if (e == CM_OK && (e = md_txn_begin(md, 1, &txn)) == CM_OK) {
        e = mark_read(txn, md, k, kl, mark);
        md_txn_end(md, txn);
    }
    return e;
}

cm_err md_rec_infos_copy(const md_rec_info *in, size_t n, md_rec_info **out)
{
    *out = NULL;
    if (n == 0)
        return CM_OK;
    md_rec_info *a = calloc(n, sizeof(*a));
    if (!a)
        return CM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        a[i] = in[i];
        if (!(a[i].key = strdup(in[i].key))) {
            md_rec_infos_free(a, i);
            return CM_ERR_NOMEM;
        }
    }
    *out = a;
    return CM_OK;
}

/* ---- listing ---- */

typedef struct {
    const md_shard *part;
    uint64_t before;
    md_rec_info *a;
    size_t n, cap, max;
    int truncated;
} tombs_ctx;

static cm_err tombs_one(void *arg, const uint8_t *key, size_t klen, const md_object *o, int *stop)
{
    tombs_ctx *c = arg;
    if (!o->tombstone || o->hlc >= c->before) /* the walk's filter kept the partition's keys */
        return CM_OK;
    if (c->n == c->max) {
        c->truncated = 1;
        *stop = 1;
        return CM_OK;
    }
    return md_rec_info_add(&c->a, &c->n, &c->cap, key, klen, o);
}

cm_err md_rec_tombs(md_store *md, const char *bucket, const md_shard *part, uint64_t before,
                    const char *after, size_t max, md_rec_info **out, size_t *n, int *truncated)
{
    tombs_ctx c = {.part = part, .before = before, .max = max};
    md_bucket b;
    *out = NULL, *n = 0, *truncated = 0;
    if (part->nshards == 0 || part->shard >= part->nshards || max == 0)
        return CM_ERR_INVAL;
    cm_err e = md_bucket_get(md, bucket, &b);
    if (e == CM_OK)
        e = md_rec_walk(md, bucket, after, md_shard_keep, (void *)part, tombs_one, &c);
    if (e != CM_OK) {
        md_rec_infos_free(c.a, c.n);
        return e;
    }
    *out = c.a, *n = c.n, *truncated = c.truncated;
    return CM_OK;
}

/* ---- collecting ---- */

typedef struct {
    const char *bucket;
    const md_shard *part;
    uint64_t mark;
    const md_rec_info *infos;
    size_t n;
    uint8_t *dropped;
} collect_op;

static cm_err raise_mark(MDB_txn *txn, md_store *md, const collect_op *op, int *changed)
{
    uint8_t k[MARK_KEY_MAX], v[8];
    size_t kl;
    uint64_t have;
    cm_err e = mark_key(op->bucket, op->part, k, &kl);
    if (e == CM_OK)
        e = mark_read(txn, md, k, kl, &have);
    if (e != CM_OK || have >= op->mark)
        return e;
    cm_put_be64(v, op->mark);
    MDB_val kv = {kl, k}, vv = {8, v};
    int rc = md_db_put(txn, md->tombmarks, &kv, &vv, 0);
    *changed = 1;
    return rc ? md_mdb_err(rc, "put tombstone mark") : CM_OK;
}

/* Drop ri's key when it still holds that tombstone; *gone says whether it did. */
static cm_err drop_one(MDB_txn *txn, md_store *md, const collect_op *op, const md_rec_info *ri,
                       int *gone)
{
    uint8_t k[MD_KEYBUF], d[16];
    size_t kl, klen = strlen(ri->key);
    md_object cur;
    int found = 0;
    *gone = 0;
    if (md_shard_of((const uint8_t *)ri->key, klen, op->part->nshards) != op->part->shard ||
        md_key_object(op->bucket, ri->key, k, &kl) != CM_OK)
        return CM_OK; /* not this partition's: stays */
    cm_err e = md_object_read(txn, md, k, kl, &cur, &found);
    if (e != CM_OK || !found)
        return e;
    if (cur.tombstone && cur.hlc < op->mark &&
        md_rec_digest((const uint8_t *)ri->key, klen, &cur, d) == CM_OK &&
        memcmp(d, ri->digest, 16) == 0) {
        /* No garbage: a delete's tombstone names no bodies, and one that does (a multipart part
         * kept by its Complete, docs/multipart-cluster.md) names a body the object now owns. */
        e = md_kv_del(txn, md->objects, k, kl);
        *gone = e == CM_OK;
    }
    md_object_release(&cur);
    return e;
}

static cm_err collect_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    collect_op *op = arg;
    int changed = 0;
    MDB_val bk = {strlen(op->bucket), (void *)op->bucket}, bv;
    int rc = mdb_get(txn, md->buckets, &bk, &bv);
    if (rc)
        return rc == MDB_NOTFOUND ? CM_ERR_NOTFOUND : md_mdb_err(rc, "get bucket");
    cm_err e = raise_mark(txn, md, op, &changed);
    for (size_t i = 0; e == CM_OK && i < op->n; i++) {
        int gone = 0;
        e = drop_one(txn, md, op, &op->infos[i], &gone);
        if (op->dropped)
            op->dropped[i] = (uint8_t)gone;
        changed |= gone;
    }
    if (e == CM_OK && !changed)
        *wrote = 0;
    return e;
}

cm_err md_rec_collect(md_store *md, const char *bucket, const md_shard *part, uint64_t mark,
                      const md_rec_info *infos, size_t n, uint8_t *dropped)
{
    collect_op op = {bucket, part, mark, infos, n, dropped};
    uint8_t k[MARK_KEY_MAX];
    size_t kl;
    if (dropped && n)
        memset(dropped, 0, n);
    /* A mark ahead of this store's clock would refuse new writes: a peer whose clock runs ahead
     * (or a bad caller) is refused instead. */
    if (mark == 0 || MD_HLC_MS(mark) > cm_now_ms() || (n && !infos) ||
        mark_key(bucket, part, k, &kl) != CM_OK)
        return CM_ERR_INVAL;
    cm_err e = md_write(md, collect_apply, &op);
    if (e != CM_OK && dropped && n)
        memset(dropped, 0, n); /* the batch did not commit: nothing went */
    return e;
}
