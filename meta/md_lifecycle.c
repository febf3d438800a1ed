/*
 * md_lifecycle.c - bucket lifecycle configurations and the lifecycle worker's state, in LMDB
 * database "lifecycle" (docs/lifecycle.md):
 *
 *   'c' bucket    -> the bucket's configuration document (opaque bytes: the gateway's XML)
 *   's' name      -> a state blob of the worker ("cursor": where its pass stands; "last": the
 *                    last finished pass), opaque here
 *
 * A configuration is set only while its bucket exists (checked in the write's transaction) and
 * is dropped in the bucket's delete transaction (md_lc_drop_txn), so a re-created bucket starts
 * without one, as in S3. Every write goes through md_db_put / md_db_del (md_mirror.c), so the
 * metadata copies hold the same rows.
 *
 * Threading: as the store (reads in a read transaction, writes through md_write).
 */
#include <stdlib.h>
#include <string.h>

#include "md_int.h"

#define LC_KEY_MAX (MD_BUCKET_MAX + 2)

static cm_err lc_key(char kind, const char *name, uint8_t *k, size_t *kl)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl > MD_BUCKET_MAX)
        return CM_ERR_INVAL;
    k[0] = (uint8_t)kind;
    memcpy(k + 1, name, nl);
    *kl = nl + 1;
    return CM_OK;
}

typedef struct {
    char kind;
    const char *name;
    const void *v; /* NULL: delete */
    size_t len;
} lc_op;

static cm_err lc_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    lc_op *op = arg;
    uint8_t k[LC_KEY_MAX];
    size_t kl;
    MDB_val kv, v;
    (void)wrote;
    cm_err e = lc_key(op->kind, op->name, k, &kl);
    if (e != CM_OK)
        return e;
    kv = (MDB_val){kl, k};
    if (op->kind == 'c' && op->v) { /* only for a bucket that exists now */
        MDB_val bk = {strlen(op->name), (void *)op->name};
        int rc = mdb_get(txn, md->buckets, &bk, &v);
        if (rc)
            return rc == MDB_NOTFOUND ? CM_ERR_NOTFOUND : md_mdb_err(rc, "get bucket");
    }
    if (op->v) {
        v = (MDB_val){op->len, (void *)op->v};
        int rc = md_db_put(txn, md->lifecycle, &kv, &v, 0);
        return rc ? md_mdb_err(rc, "put lifecycle") : CM_OK;
    }
    int rc = md_db_del(txn, md->lifecycle, &kv);
    return rc && rc != MDB_NOTFOUND ? md_mdb_err(rc, "del lifecycle") : CM_OK;
}

static cm_err lc_get(md_store *md, char kind, const char *name, void **out, size_t *len)
{
    uint8_t k[LC_KEY_MAX];
    size_t kl;
    MDB_txn *txn;
    MDB_val v;
    *out = NULL;
    *len = 0;
    cm_err e = lc_key(kind, name, k, &kl);
    if (e != CM_OK)
        return kind == 'c' ? CM_ERR_NOTFOUND : e;
    if ((e = md_txn_begin(md, 1, &txn)) != CM_OK)
        return e;
    int rc = mdb_get(txn, md->lifecycle, &(MDB_val){kl, k}, &v);
    if (rc == MDB_NOTFOUND)
        e = CM_ERR_NOTFOUND;
    else if (rc)
        e = md_mdb_err(rc, "get lifecycle");
    else if (!(*out = malloc(v.mv_size + 1)))
        e = CM_ERR_NOMEM;
    else {
        memcpy(*out, v.mv_data, v.mv_size);
        ((char *)*out)[v.mv_size] = '\0'; /* a document reads as a string */
        *len = v.mv_size;
    }
    md_txn_end(md, txn);
    return e;
}

cm_err md_lc_config_set(md_store *md, const char *bucket, const void *doc, size_t len)
{
    lc_op op = {'c', bucket, doc ? doc : "", len};
    return md_write(md, lc_apply, &op);
}

cm_err md_lc_config_get(md_store *md, const char *bucket, char **doc, size_t *len)
{
    void *p;
    cm_err e = lc_get(md, 'c', bucket, &p, len);
    *doc = p;
    return e;
}

cm_err md_lc_config_del(md_store *md, const char *bucket)
{
    lc_op op = {'c', bucket, NULL, 0};
    return md_write(md, lc_apply, &op);
}

cm_err md_lc_state_set(md_store *md, const char *name, const void *v, size_t len)
{
    lc_op op = {'s', name, v ? v : "", len};
    return md_write(md, lc_apply, &op);
}

cm_err md_lc_state_get(md_store *md, const char *name, void **v, size_t *len)
{
    return lc_get(md, 's', name, v, len);
}

void md_lc_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

/* Append the configured buckets after `after` (in name order) to names, at most max. */
static cm_err collect(MDB_txn *txn, md_store *md, const char *after, size_t max, char **names,
                      size_t *n)
{
    MDB_cursor *cur;
    uint8_t k0[LC_KEY_MAX] = {'c'};
    size_t al = after ? strlen(after) : 0;
    if (al > MD_BUCKET_MAX)
        return CM_ERR_INVAL;
    memcpy(k0 + 1, after ? after : "", al);
    MDB_val k = {al + 1, k0}, v;
    int rc = mdb_cursor_open(txn, md->lifecycle, &cur);
    if (rc)
        return md_mdb_err(rc, "open lifecycle");
    cm_err e = CM_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && *n < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const char *p = k.mv_data;
        if (k.mv_size < 2 || p[0] != 'c')
            break; /* past the configurations */
        if (after && k.mv_size == al + 1 && memcmp(p + 1, after, al) == 0)
            continue; /* `after` itself */
        if (!(names[*n] = strndup(p + 1, k.mv_size - 1))) {
            e = CM_ERR_NOMEM;
            break;
        }
        (*n)++;
    }
    if (e == CM_OK && rc && rc != MDB_NOTFOUND)
        e = md_mdb_err(rc, "list lifecycle");
    mdb_cursor_close(cur);
    return e;
}

cm_err md_lc_buckets(md_store *md, const char *after, size_t max, char ***names, size_t *n)
{
    MDB_txn *txn;
    *names = NULL;
    *n = 0;
    if (max == 0)
        return CM_OK;
    char **arr = calloc(max, sizeof(*arr));
    if (!arr)
        return CM_ERR_NOMEM;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e == CM_OK) {
        e = collect(txn, md, after, max, arr, n);
        md_txn_end(md, txn);
    }
    if (e != CM_OK || *n == 0) {
        md_lc_names_free(arr, *n);
        *n = 0;
        return e;
    }
    *names = arr;
    return CM_OK;
}

cm_err md_lc_drop_txn(md_store *md, MDB_txn *txn, const char *bucket)
{
    lc_op op = {'c', bucket, NULL, 0};
    return lc_apply(md, txn, &op, NULL);
}
