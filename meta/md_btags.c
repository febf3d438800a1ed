/*
 * md_btags.c - bucket tags (PutBucketTagging / GetBucketTagging) and default encryption
 * (PutBucketEncryption: BT_SSE, format 3), stored in the bucket's own
 * record as BT_TAG pairs (md_record.c; format 2 while there are tags).
 *
 * The bucket record is otherwise written once, by md_bucket_create (MDB_NOOVERWRITE), so setting
 * tags or the default encryption are the only rewrites: one write op reads the record, re-encodes
 * its fields with the new tag set (or encryption, keeping the tags) and puts it back in the same
 * transaction, so two racing sets cannot mix and a deletion of the bucket either comes first
 * (CM_ERR_NOTFOUND) or takes the tags with it. A re-created bucket starts without tags, as in S3.
 *
 * Threading: as the store (reads in a read transaction, the write through md_write).
 */
#include <string.h>

#include "md_int.h"

static cm_err record_get(MDB_txn *txn, md_store *md, const char *name, MDB_val *v)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl > MD_BUCKET_MAX)
        return CM_ERR_NOTFOUND;
    MDB_val k = {nl, (void *)name};
    int rc = mdb_get(txn, md->buckets, &k, v);
    if (rc == MDB_NOTFOUND)
        return CM_ERR_NOTFOUND;
    return rc ? md_mdb_err(rc, "get bucket") : CM_OK;
}

static cm_err record_put(MDB_txn *txn, md_store *md, const char *name, const md_wbuf *w,
                         const char *what)
{
    MDB_val k = {strlen(name), (void *)name}, v = {w->len, w->p};
    int rc = md_db_put(txn, md->buckets, &k, &v, 0);
    return rc ? md_mdb_err(rc, what) : CM_OK;
}

cm_err md_bucket_tags_get(md_store *md, const char *name, md_meta **tags, size_t *n)
{
    MDB_txn *txn;
    MDB_val v;
    *tags = NULL;
    *n = 0;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    if ((e = record_get(txn, md, name, &v)) == CM_OK)
        e = md_bucket_tags_decode(v.mv_data, v.mv_size, tags, n);
    md_txn_end(md, txn);
    return e;
}

typedef struct {
    const char *name;
    const md_meta *tags;
    size_t n;
} tags_set_op;

static cm_err tags_set_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    tags_set_op *op = arg;
    MDB_val v;
    md_bucket b;
    md_wbuf w = {0};
    (void)wrote;
    cm_err e = record_get(txn, md, op->name, &v);
    if (e == CM_OK)
        e = md_bucket_decode(v.mv_data, v.mv_size, &b);
    if (e == CM_OK)
        e = md_bucket_encode_tags(&b, op->tags, op->n, &w);
    if (e == CM_OK)
        e = record_put(txn, md, op->name, &w, "put bucket tags");
    md_w_free(&w);
    return e;
}

cm_err md_bucket_tags_set(md_store *md, const char *name, const md_meta *tags, size_t n)
{
    tags_set_op op = {name, tags, n};
    return md_write(md, tags_set_apply, &op);
}

typedef struct {
    const char *name;
    uint8_t mode, bucket_key;
} sse_set_op;

/* As tags_set_apply: one read-modify-write of the bucket record in the writer's transaction. */
static cm_err sse_set_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    sse_set_op *op = arg;
    MDB_val v;
    md_bucket b;
    md_meta *tags = NULL;
    size_t ntags = 0;
    md_wbuf w = {0};
    (void)wrote;
    cm_err e = record_get(txn, md, op->name, &v);
    if (e == CM_OK)
        e = md_bucket_decode(v.mv_data, v.mv_size, &b);
    if (e == CM_OK)
        e = md_bucket_tags_decode(v.mv_data, v.mv_size, &tags, &ntags);
    if (e == CM_OK) {
        b.sse_default = op->mode;
        b.sse_bucket_key = op->mode ? op->bucket_key : 0;
        e = md_bucket_encode_tags(&b, tags, ntags, &w);
    }
    if (e == CM_OK)
        e = record_put(txn, md, op->name, &w, "put bucket encryption");
    md_meta_free(tags, ntags);
    md_w_free(&w);
    return e;
}

cm_err md_bucket_sse_set(md_store *md, const char *name, uint8_t mode, uint8_t bucket_key)
{
    sse_set_op op = {name, mode, bucket_key};
    return md_write(md, sse_set_apply, &op);
}
