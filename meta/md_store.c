/*
 * md_store.c - the LMDB environment, bucket records and current object records.
 *
 * One environment per store directory with four named databases (see md.h for the key space).
 * Opened with MDB_NOTLS because callers are worker threads that may hand a read transaction's
 * results across threads; commits are durable (no MDB_NOSYNC). Every public write is an op run
 * by the group commit (md_commit.c): its apply function runs in its own nested transaction of a
 * shared batch, and a conditional write reads the current record and checks the condition inside
 * that nested transaction, after every op ordered before it, so check-and-set stays atomic.
 * Records are encoded by the caller before queueing, so the batch leader does less serial work;
 * results (the replaced record) are handed out by the caller only once the batch is durable.
 *
 * Errors: MDB_MAP_FULL -> CM_ERR_NOSPC, any other LMDB failure -> CM_ERR_IO (logged with
 * mdb_strerror); records that do not decode -> CM_ERR_CORRUPT (logged by the codec).
 *
 * Threading: an md_store is shared by all threads; its only mutable state is the group commit
 * queue and counters (md_commit.c, under their own mutex).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cm_util.h"
#include "md_int.h"

#define DEFAULT_MAP_SIZE ((size_t)64 << 30)

cm_err md_mdb_err(int rc, const char *what)
{
    if (rc == MDB_MAP_FULL) {
        CM_WARN(MD_MOD, "%s: %s", what, mdb_strerror(rc));
        return CM_ERR_NOSPC;
    }
    CM_ERROR(MD_MOD, "%s: %s", what, mdb_strerror(rc));
    return CM_ERR_IO;
}

/* ---- Keys ---- */

cm_err md_key_object(const char *bucket, const char *key, uint8_t *buf, size_t *len)
{
    size_t bl = strlen(bucket), kl = strlen(key);
    if (bl == 0 || bl > MD_BUCKET_MAX || kl > MD_MAX_KEY)
        return CM_ERR_INVAL;
    memcpy(buf, bucket, bl);
    buf[bl] = 0;
    memcpy(buf + bl + 1, key, kl);
    *len = bl + 1 + kl;
    return CM_OK;
}

cm_err md_key_upload(const char *bucket, const char *key, const char *upload_id, uint8_t *buf,
                     size_t *len)
{
    size_t il = strlen(upload_id);
    if (il == 0 || il > MD_UPLOAD_ID_MAX || *key == 0)
        return CM_ERR_INVAL;
    cm_err e = md_key_object(bucket, key, buf, len);
    if (e != CM_OK)
        return e;
    buf[(*len)++] = 0;
    memcpy(buf + *len, upload_id, il);
    *len += il;
    return CM_OK;
}

size_t md_key_part(const char *upload_id, uint32_t number, uint8_t *buf)
{
    size_t il = strnlen(upload_id, MD_UPLOAD_ID_MAX);
    memcpy(buf, upload_id, il);
    buf[il] = 0;
    cm_put_be32(buf + il + 1, number);
    return il + 5;
}

/* ---- Environment ---- */

cm_err md_txn_begin(md_store *md, int rdonly, MDB_txn **txn)
{
    int rc = mdb_txn_begin(md->env, NULL, rdonly ? MDB_RDONLY : 0, txn);
    return rc ? md_mdb_err(rc, "mdb_txn_begin") : CM_OK;
}

cm_err md_check(md_store *md)
{
    MDB_txn *txn;
    /* LMDB refuses every transaction once the environment had a fatal error (MDB_PANIC). */
    int rc = mdb_txn_begin(md->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return md_mdb_err(rc, "metadata store unusable (restart required)");
    mdb_txn_abort(txn);
    return CM_OK;
}

cm_err md_txn_commit(MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);
    return rc ? md_mdb_err(rc, "mdb_txn_commit") : CM_OK;
}

static cm_err open_dbs(md_store *md)
{
    MDB_txn *txn;
    cm_err e = md_txn_begin(md, 0, &txn);
    if (e != CM_OK)
        return e;
    int rc = mdb_dbi_open(txn, "buckets", MDB_CREATE, &md->buckets);
    if (!rc)
        rc = mdb_dbi_open(txn, "objects", MDB_CREATE, &md->objects);
    if (!rc)
        rc = mdb_dbi_open(txn, "uploads", MDB_CREATE, &md->uploads);
    if (!rc)
        rc = mdb_dbi_open(txn, "parts", MDB_CREATE, &md->parts);
    if (rc) {
        mdb_txn_abort(txn);
        return md_mdb_err(rc, "mdb_dbi_open");
    }
    return md_txn_commit(txn);
}

cm_err md_open(const char *dir, size_t map_size, md_store **out)
{
    *out = NULL;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        CM_ERROR(MD_MOD, "mkdir %s: %s", dir, strerror(errno));
        return cm_err_from_errno(errno);
    }
    md_store *md = calloc(1, sizeof(*md));
    if (!md)
        return CM_ERR_NOMEM;
    if (md_gc_init(&md->gc) != CM_OK) {
        free(md);
        return CM_ERR_NOMEM;
    }
    int rc = mdb_env_create(&md->env);
    if (rc) {
        md_gc_release(&md->gc);
        free(md);
        return md_mdb_err(rc, "mdb_env_create");
    }
    rc = mdb_env_set_maxdbs(md->env, 8);
    if (!rc)
        rc = mdb_env_set_mapsize(md->env, map_size ? map_size : DEFAULT_MAP_SIZE);
    if (!rc)
        rc = mdb_env_open(md->env, dir, MDB_NOTLS, 0644);
    cm_err e = rc ? md_mdb_err(rc, dir) : open_dbs(md);
    if (e != CM_OK) {
        mdb_env_close(md->env);
        md_gc_release(&md->gc);
        free(md);
        return e;
    }
    int dead = 0;
    mdb_reader_check(md->env, &dead); /* clear reader slots of crashed processes */
    *out = md;
    return CM_OK;
}

void md_close(md_store *md)
{
    if (!md)
        return;
    mdb_env_close(md->env);
    md_gc_release(&md->gc);
    free(md);
}

/* ---- Buckets ---- */

typedef struct {
    MDB_val k;
    md_wbuf w; /* encoded bucket record */
} bucket_create_op;

static cm_err bucket_create_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    bucket_create_op *op = arg;
    (void)wrote;
    MDB_val v = {op->w.len, op->w.p};
    int rc = mdb_put(txn, md->buckets, &op->k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return CM_ERR_EXISTS;
    return rc ? md_mdb_err(rc, "put bucket") : CM_OK;
}

cm_err md_bucket_create(md_store *md, const md_bucket *b)
{
    size_t nl = strnlen(b->name, sizeof(b->name));
    if (nl == 0 || nl > MD_BUCKET_MAX)
        return CM_ERR_INVAL;
    bucket_create_op op = {.k = {nl, (void *)b->name}};
    cm_err e = md_bucket_encode(b, &op.w);
    if (e == CM_OK)
        e = md_write(md, bucket_create_apply, &op);
    md_w_free(&op.w);
    return e;
}

static cm_err bucket_read(MDB_txn *txn, md_store *md, const char *name, md_bucket *out)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl > MD_BUCKET_MAX)
        return CM_ERR_NOTFOUND;
    MDB_val k = {nl, (void *)name}, v;
    int rc = mdb_get(txn, md->buckets, &k, &v);
    if (rc == MDB_NOTFOUND)
        return CM_ERR_NOTFOUND;
    if (rc)
        return md_mdb_err(rc, "get bucket");
    md_bucket tmp;
    return md_bucket_decode(v.mv_data, v.mv_size, out ? out : &tmp);
}

cm_err md_bucket_get(md_store *md, const char *name, md_bucket *out)
{
    MDB_txn *txn;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = bucket_read(txn, md, name, out);
    mdb_txn_abort(txn);
    return e;
}

/* CM_ERR_CONFLICT when some key of dbi starts with bucket \0. */
static cm_err bucket_range_empty(MDB_txn *txn, MDB_dbi dbi, const char *bucket)
{
    uint8_t k[MD_BUCKET_MAX + 1];
    size_t kl;
    md_kv_iter it;
    cm_err e = md_key_object(bucket, "", k, &kl);
    if (e == CM_OK)
        e = md_kv_iter_open(txn, dbi, &it);
    if (e != CM_OK)
        return e;
    e = md_kv_iter_seek(&it, k, kl);
    if (e == CM_OK)
        e = it.key.n >= kl && memcmp(it.key.p, k, kl) == 0 ? CM_ERR_CONFLICT : CM_OK;
    else if (e == CM_ERR_NOTFOUND)
        e = CM_OK;
    md_kv_iter_close(&it);
    return e;
}

static cm_err bucket_delete_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    const char *name = arg;
    (void)wrote;
    cm_err e = bucket_read(txn, md, name, NULL);
    if (e == CM_OK)
        e = bucket_range_empty(txn, md->objects, name);
    if (e == CM_OK)
        e = bucket_range_empty(txn, md->uploads, name);
    if (e == CM_OK) {
        MDB_val k = {strlen(name), (void *)name};
        int rc = mdb_del(txn, md->buckets, &k, NULL);
        e = rc ? md_mdb_err(rc, "del bucket") : CM_OK;
    }
    return e;
}

cm_err md_bucket_delete(md_store *md, const char *name)
{
    return md_write(md, bucket_delete_apply, (void *)name);
}

static cm_err bucket_collect(MDB_txn *txn, md_store *md, md_bucket **out, size_t *n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t cap = 0;
    int rc = mdb_cursor_open(txn, md->buckets, &cur);
    if (rc)
        return md_mdb_err(rc, "mdb_cursor_open");
    cm_err e = CM_OK;
    while (e == CM_OK && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            md_bucket *a = realloc(*out, cap * sizeof(*a));
            if (!a) {
                e = CM_ERR_NOMEM;
                break;
            }
            *out = a;
        }
        e = md_bucket_decode(v.mv_data, v.mv_size, &(*out)[*n]);
        if (e == CM_OK)
            (*n)++;
    }
    if (e == CM_OK && rc != MDB_NOTFOUND)
        e = md_mdb_err(rc, "list buckets");
    mdb_cursor_close(cur);
    return e;
}

cm_err md_bucket_list(md_store *md, md_bucket **out, size_t *n)
{
    MDB_txn *txn;
    *out = NULL;
    *n = 0;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = bucket_collect(txn, md, out, n);
    mdb_txn_abort(txn);
    if (e != CM_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return e;
}

/* ---- Objects ---- */

cm_err md_cond_check(const md_cond *cond, const md_object *cur)
{
    if (!cond)
        return CM_OK;
    int live = cur && !cur->delete_marker;
    if (cond->if_none_match_star && live)
        return CM_ERR_PRECONDITION;
    if (cond->if_match) {
        if (!live)
            return CM_ERR_NOTFOUND;
        if (strcmp(cond->if_match, "*") != 0 && strcmp(cond->if_match, cur->etag) != 0)
            return CM_ERR_PRECONDITION;
    }
    return CM_OK;
}

cm_err md_object_read(MDB_txn *txn, md_store *md, const uint8_t *k, size_t klen, md_object *cur,
                      int *found)
{
    md_slice v;
    *found = 0;
    memset(cur, 0, sizeof(*cur));
    cm_err e = md_kv_get(txn, md->objects, k, klen, &v);
    if (e == CM_ERR_NOTFOUND)
        return CM_OK;
    if (e == CM_OK)
        e = md_object_decode(v.p, v.n, cur);
    *found = e == CM_OK;
    return e;
}

cm_err md_object_write(MDB_txn *txn, md_store *md, const uint8_t *k, size_t klen,
                       const md_object *obj)
{
    md_wbuf w = {0};
    cm_err e = md_object_encode_w(obj, &w);
    if (e == CM_OK)
        e = md_kv_put(txn, md->objects, k, klen, w.p, w.len);
    md_w_free(&w);
    return e;
}

cm_err md_object_get(md_store *md, const char *bucket, const char *key, md_object *out)
{
    uint8_t k[MD_KEYBUF];
    size_t kl;
    MDB_txn *txn;
    int found;
    memset(out, 0, sizeof(*out));
    if (md_key_object(bucket, key, k, &kl) != CM_OK)
        return CM_ERR_NOTFOUND;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = md_object_read(txn, md, k, kl, out, &found);
    mdb_txn_abort(txn);
    return e == CM_OK && !found ? CM_ERR_NOTFOUND : e;
}

/* Hand the replaced record to the caller, or free it. */
static void give_old(md_object *cur, int found, md_object *old, int *had_old)
{
    if (old) {
        *old = *cur;
        memset(cur, 0, sizeof(*cur));
    } else {
        md_object_release(cur);
    }
    if (had_old)
        *had_old = found;
}

static void clear_old(md_object *old, int *had_old)
{
    if (old)
        memset(old, 0, sizeof(*old));
    if (had_old)
        *had_old = 0;
}

/* State of one put or delete: the key, its input and the record it replaced. */
typedef struct {
    const char *bucket; /* NULL for a delete */
    const md_cond *cond;
    uint8_t k[MD_KEYBUF];
    size_t kl;
    md_wbuf w; /* put: the encoded new record */
    md_object cur;
    int found;
} object_op;

static cm_err object_put_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    object_op *op = arg;
    (void)wrote;
    cm_err e = bucket_read(txn, md, op->bucket, NULL);
    if (e == CM_OK)
        e = md_object_read(txn, md, op->k, op->kl, &op->cur, &op->found);
    if (e == CM_OK)
        e = md_cond_check(op->cond, op->found ? &op->cur : NULL);
    if (e == CM_OK)
        e = md_kv_put(txn, md->objects, op->k, op->kl, op->w.p, op->w.len);
    return e;
}

/* Hand the replaced record to the caller when e is CM_OK, else free it. */
static void object_op_finish(object_op *op, cm_err e, md_object *old, int *had_old)
{
    if (e == CM_OK)
        give_old(&op->cur, op->found, old, had_old);
    else if (op->found)
        md_object_release(&op->cur);
}

cm_err md_object_put(md_store *md, const char *bucket, const md_object *obj, const md_cond *cond,
                     md_object *old, int *had_old)
{
    object_op op = {.bucket = bucket, .cond = cond};
    clear_old(old, had_old);
    if (!obj->key || !*obj->key || md_key_object(bucket, obj->key, op.k, &op.kl) != CM_OK)
        return CM_ERR_INVAL;
    cm_err e = md_object_encode_w(obj, &op.w);
    if (e == CM_OK)
        e = md_write(md, object_put_apply, &op);
    md_w_free(&op.w);
    object_op_finish(&op, e, old, had_old);
    return e;
}

static cm_err object_delete_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    object_op *op = arg;
    cm_err e = md_object_read(txn, md, op->k, op->kl, &op->cur, &op->found);
    if (e == CM_OK)
        e = md_cond_check(op->cond, op->found ? &op->cur : NULL);
    if (e == CM_OK && op->found)
        e = md_kv_del(txn, md->objects, op->k, op->kl);
    if (e == CM_OK && !op->found)
        *wrote = 0; /* nothing to delete: nothing to commit */
    return e;
}

cm_err md_object_delete(md_store *md, const char *bucket, const char *key, const md_cond *cond,
                        md_object *old, int *had_old)
{
    object_op op = {.cond = cond};
    clear_old(old, had_old);
    if (md_key_object(bucket, key, op.k, &op.kl) != CM_OK)
        return CM_ERR_INVAL;
    cm_err e = md_write(md, object_delete_apply, &op);
    object_op_finish(&op, e, old, had_old);
    return e;
}
