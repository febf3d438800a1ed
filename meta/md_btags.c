/*
 * md_btags.c - bucket tags (PutBucketTagging / GetBucketTagging), stored in the bucket's own
 * record as BT_TAG pairs (md_record.c; format 2 while there are tags), and the bucket's access
 * settings (canned ACL, PublicAccessBlock, object ownership: BT_ACL..BT_OWNERSHIP).
 *
 * The bucket record is otherwise written once, by md_bucket_create (MDB_NOOVERWRITE), so setting
 * tags or access settings are the only rewrites: one write op reads the record, re-encodes its
 * fields with the new tag set or settings and puts it back in the same transaction, so two racing
 * sets cannot mix and a deletion of the bucket either comes first (CM_ERR_NOTFOUND) or takes the
 * tags with it. A re-created bucket starts without tags, as in S3.
 *
 * Threading: as the store (reads in a read transaction, the write through md_write).
 */
#include <string.h>

#include "md_int.h"

/* Put the re-encoded record w of bucket name. */
static cm_err record_put(MDB_txn *txn, md_store *md, const char *name, md_wbuf *w)
{
    MDB_val k = {strlen(name), (void *)name}, nv = {w->len, w->p};
    int rc = md_db_put(txn, md->buckets, &k, &nv, 0);
    return rc ? md_mdb_err(rc, "put bucket record") : CM_OK;
}

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

/* One rewrite of a bucket record: the tags (when set_tags) or the access settings named by
 * fields, everything else kept. */
typedef struct {
    const char *name;
    int set_tags;
    const md_meta *tags;
    size_t n;
    const md_bucket *from;
    unsigned fields; /* MD_ACCESS_* */
} rewrite_op;

static cm_err rewrite_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    rewrite_op *op = arg;
    MDB_val v;
    md_bucket b;
    md_meta *kept = NULL; /* the tags, when they stay */
    size_t nkept = 0;
    md_wbuf w = {0};
    (void)wrote;
    cm_err e = record_get(txn, md, op->name, &v);
    if (e == CM_OK)
        e = md_bucket_decode(v.mv_data, v.mv_size, &b);
    if (e == CM_OK && !op->set_tags)
        e = md_bucket_tags_decode(v.mv_data, v.mv_size, &kept, &nkept);
    if (e == CM_OK) {
        if (op->fields & MD_ACCESS_ACL)
            b.acl = op->from->acl;
        if (op->fields & MD_ACCESS_PAB)
            b.pab = op->from->pab;
        if (op->fields & MD_ACCESS_OWNERSHIP)
            b.ownership = op->from->ownership;
        e = op->set_tags ? md_bucket_encode_tags(&b, op->tags, op->n, &w)
                         : md_bucket_encode_tags(&b, kept, nkept, &w);
    }
    if (e == CM_OK)
        e = record_put(txn, md, op->name, &w);
    md_meta_free(kept, nkept);
    md_w_free(&w);
    return e;
}

cm_err md_bucket_tags_set(md_store *md, const char *name, const md_meta *tags, size_t n)
{
    rewrite_op op = {.name = name, .set_tags = 1, .tags = tags, .n = n};
    return md_write(md, rewrite_apply, &op);
}

cm_err md_bucket_access_set(md_store *md, const char *name, const md_bucket *from, unsigned fields)
{
    rewrite_op op = {.name = name, .from = from, .fields = fields};
    return md_write(md, rewrite_apply, &op);
}
