/*
 * md_btags.c - bucket settings kept in the bucket's own record: tags (Put/GetBucketTagging) as
 * BT_TAG pairs (md_record.c; format 2 while there are tags), the CORS configuration
 * (PutBucketCors) as one BT_CORS field holding its XML, the website configuration
 * (PutBucketWebsite) likewise as one BT_WEBSITE field, the default encryption
 * (PutBucketEncryption) as one BT_SSE field (format 3), and the access settings (canned ACL,
 * PublicAccessBlock, object ownership: BT_ACL..BT_OWNERSHIP, docs/users.md), and the Object Lock
 * configuration (BT_LOCK, format 3; docs/object-lock.md).
 *
 * The bucket record is otherwise written once, by md_bucket_create (MDB_NOOVERWRITE), so changing
 * a setting is a rewrite: one write op reads the record, copies every field but the one changed
 * (also fields it does not know, another branch's settings) and appends the new value, then puts
 * it back in the same transaction, so two racing sets cannot mix and a deletion of the bucket
 * either comes first (CM_ERR_NOTFOUND) or takes the settings with it. md_bucket_rewrite is that
 * op for every setting, also versioning (md_version.c); a change that changes nothing writes
 * nothing. A re-created bucket starts without tags, CORS or website configuration, default
 * encryption or access settings, as in S3.
 *
 * Threading: as the store (reads in a read transaction, the write through md_write).
 */
#include <string.h>

#include "md_int.h"

cm_err md_bucket_record(MDB_txn *txn, md_store *md, const char *name, MDB_val *v)
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

typedef struct {
    const char *name;
    md_rewrite_fn fn;
    const void *arg;
    const char *what; /* for the error message */
} rewrite_op;

static cm_err rewrite_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    rewrite_op *op = arg;
    MDB_val v;
    md_wbuf w = {0};
    cm_err e = md_bucket_record(txn, md, op->name, &v);
    if (e == CM_OK)
        e = op->fn(v.mv_data, v.mv_size, op->arg, &w);
    if (e == CM_OK && w.len == 0) /* a record is never empty: fn changed nothing */
        *wrote = 0;
    else if (e == CM_OK) {
        MDB_val k = {strlen(op->name), (void *)op->name}, nv = {w.len, w.p};
        int rc = md_db_put(txn, md->buckets, &k, &nv, 0);
        e = rc ? md_mdb_err(rc, op->what) : CM_OK;
    }
    md_w_free(&w);
    return e;
}

cm_err md_bucket_rewrite(md_store *md, const char *name, md_rewrite_fn fn, const void *arg,
                         const char *what)
{
    rewrite_op op = {name, fn, arg, what};
    return md_write(md, rewrite_apply, &op);
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
    if ((e = md_bucket_record(txn, md, name, &v)) == CM_OK)
        e = md_bucket_tags_decode(v.mv_data, v.mv_size, tags, n);
    md_txn_end(md, txn);
    return e;
}

typedef struct {
    const md_meta *tags;
    size_t n;
} tags_arg;

static cm_err retag(const uint8_t *buf, size_t len, const void *arg, md_wbuf *w)
{
    const tags_arg *a = arg;
    return md_bucket_retag(buf, len, a->tags, a->n, w);
}

cm_err md_bucket_tags_set(md_store *md, const char *name, const md_meta *tags, size_t n)
{
    tags_arg a = {tags, n};
    return md_bucket_rewrite(md, name, retag, &a, "put bucket tags");
}

/* ---- Documents kept as one field: the CORS (BT_CORS) and website (BT_WEBSITE) configurations */

typedef cm_err (*doc_decode_fn)(const uint8_t *buf, size_t len, char **xml, size_t *xml_len);
typedef cm_err (*doc_encode_fn)(const uint8_t *buf, size_t len, const char *xml, size_t xml_len,
                                md_wbuf *w);

static cm_err doc_get(md_store *md, const char *name, doc_decode_fn decode, char **xml, size_t *len)
{
    MDB_txn *txn;
    MDB_val v;
    *xml = NULL;
    *len = 0;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    if ((e = md_bucket_record(txn, md, name, &v)) == CM_OK)
        e = decode(v.mv_data, v.mv_size, xml, len);
    md_txn_end(md, txn);
    return e;
}

typedef struct {
    const char *xml;
    size_t len;
    doc_encode_fn encode;
} doc_arg;

static cm_err redoc(const uint8_t *buf, size_t len, const void *arg, md_wbuf *w)
{
    const doc_arg *a = arg;
    return a->encode(buf, len, a->xml, a->len, w);
}

cm_err md_bucket_cors_get(md_store *md, const char *name, char **xml, size_t *len)
{
    return doc_get(md, name, md_bucket_cors_decode, xml, len);
}

cm_err md_bucket_cors_set(md_store *md, const char *name, const char *xml, size_t len)
{
    doc_arg a = {xml, len, md_bucket_encode_cors};
    return md_bucket_rewrite(md, name, redoc, &a, "put bucket cors");
}

cm_err md_bucket_website_get(md_store *md, const char *name, char **xml, size_t *len)
{
    return doc_get(md, name, md_bucket_website_decode, xml, len);
}

cm_err md_bucket_website_set(md_store *md, const char *name, const char *xml, size_t len)
{
    doc_arg a = {xml, len, md_bucket_encode_website};
    return md_bucket_rewrite(md, name, redoc, &a, "put bucket website");
}

/* ---- The default encryption (PutBucketEncryption), a BT_SSE field of the same record ---- */

typedef struct {
    uint8_t mode, bucket_key;
} sse_arg;

static cm_err resse(const uint8_t *buf, size_t len, const void *arg, md_wbuf *w)
{
    const sse_arg *a = arg;
    return md_bucket_encode_sse(buf, len, a->mode, a->bucket_key, w);
}

cm_err md_bucket_sse_set(md_store *md, const char *name, uint8_t mode, uint8_t bucket_key)
{
    sse_arg a = {mode, bucket_key};
    return md_bucket_rewrite(md, name, resse, &a, "put bucket encryption");
}

/* ---- Access settings (canned ACL, PublicAccessBlock, object ownership: docs/users.md) ---- */

typedef struct {
    const md_bucket *from;
    unsigned fields; /* MD_ACCESS_* */
} access_arg;

static cm_err reaccess(const uint8_t *buf, size_t len, const void *arg, md_wbuf *w)
{
    const access_arg *a = arg;
    return md_bucket_encode_access(buf, len, a->from, a->fields, w);
}

cm_err md_bucket_access_set(md_store *md, const char *name, const md_bucket *from, unsigned fields)
{
    access_arg a = {from, fields};
    return md_bucket_rewrite(md, name, reaccess, &a, "put bucket access settings");
}

/* ---- Object Lock (PutObjectLockConfiguration), a BT_LOCK field of the same record ---- */

/* S3 lets lock be enabled on a bucket whose versioning is Enabled, never on another: the check
 * and the write in one transaction, so a racing Suspend cannot slip between. */
static cm_err relock(const uint8_t *buf, size_t len, const void *arg, md_wbuf *w)
{
    md_bucket b;
    cm_err e = md_bucket_decode(buf, len, &b);
    if (e == CM_OK && b.versioning != MD_VERS_ENABLED)
        e = CM_ERR_LOCKED;
    return e == CM_OK ? md_bucket_encode_lock(buf, len, arg, w) : e;
}

cm_err md_bucket_lock_set(md_store *md, const char *name, const md_bucket *from)
{
    return md_bucket_rewrite(md, name, relock, from, "put bucket object lock");
}
