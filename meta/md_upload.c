/*
 * md_upload.c - multipart upload records and their parts.
 *
 * An upload lives under uploads[bucket \0 key \0 upload_id]; its parts under
 * parts[upload_id \0 BE32(number)], so one upload's parts are contiguous and in number order.
 * Upload ids are unique store-wide (the caller makes them so) and hold no NUL.
 *
 * Atomicity: every write is a group-commit op (md_commit.c) applied in its own nested
 * transaction. part_put checks the upload and replaces the part in one op, so a part can never
 * be recorded for an upload that complete or abort already removed. complete checks the upload
 * and the condition, writes the object and removes the upload and every part in one op; the
 * removed part records go back to the caller (only once the batch is durable), who frees the
 * chunks the object does not use.
 *
 * Memory: parts are listed and returned (ListParts, complete, abort, a replaced part) decoded
 * without their inline bodies (is_inline kept), so 10,000 inline parts cost their md_part structs,
 * not 640 MiB; complete reads only the bodies of the inline parts the object keeps. The completed
 * object records its upload id, which answers a retried Complete (gw_multipart.c).
 *
 * Threading: any thread; writers queue and share commits.
 */
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "md_int.h"

#define PART_KEY (MD_UPLOAD_ID_MAX + 1 + 4)

/* State of one upload write: keys, the encoded record, and what it removed or replaced. */
typedef struct {
    const char *bucket, *upload_id;
    const md_cond *cond;
    uint8_t k[MD_KEYBUF], ok[MD_KEYBUF], pk[PART_KEY];
    size_t kl, okl, pkl;
    md_wbuf w;
    md_part *parts; /* complete, abort: the removed part records */
    size_t nparts;
    md_part oldpart; /* part_put: the replaced part */
    md_object cur;   /* complete: the replaced object */
    int found;
    const md_object *obj; /* complete: the object being written */
    md_vres *res;         /* complete: the version made (may be NULL) */
} upload_op;

static cm_err upload_create_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    upload_op *op = arg;
    MDB_val bk = {strlen(op->bucket), (void *)op->bucket}, bv;
    (void)wrote;
    int rc = mdb_get(txn, md->buckets, &bk, &bv);
    if (rc == MDB_NOTFOUND)
        return CM_ERR_NOTFOUND;
    if (rc)
        return md_mdb_err(rc, "get bucket");
    return md_kv_put(txn, md->uploads, op->k, op->kl, op->w.p, op->w.len);
}

cm_err md_upload_create(md_store *md, const char *bucket, const md_upload *up)
{
    upload_op op = {.bucket = bucket};
    if (!up->key || md_key_upload(bucket, up->key, up->upload_id, op.k, &op.kl) != CM_OK)
        return CM_ERR_INVAL;
    cm_err e = md_upload_encode(up, &op.w);
    if (e == CM_OK)
        e = md_write(md, upload_create_apply, &op);
    md_w_free(&op.w);
    return e;
}

static cm_err upload_read(MDB_txn *txn, md_store *md, const uint8_t *k, size_t kl, md_upload *out)
{
    md_slice v;
    cm_err e = md_kv_get(txn, md->uploads, k, kl, &v);
    if (e == CM_OK && out)
        e = md_upload_decode(v.p, v.n, out);
    return e;
}

cm_err md_upload_get(md_store *md, const char *bucket, const char *key, const char *upload_id,
                     md_upload *out)
{
    uint8_t k[MD_KEYBUF];
    size_t kl;
    MDB_txn *txn;
    memset(out, 0, sizeof(*out));
    if (md_key_upload(bucket, key, upload_id, k, &kl) != CM_OK)
        return CM_ERR_NOTFOUND;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = upload_read(txn, md, k, kl, out);
    md_txn_end(md, txn);
    return e;
}

static cm_err part_put_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    upload_op *op = arg;
    MDB_val pkv = {op->pkl, op->pk}, v;
    (void)wrote;
    md_part_release(&op->oldpart); /* a rerun after the map grew */
    op->found = 0;
    cm_err e = upload_read(txn, md, op->k, op->kl, NULL);
    if (e != CM_OK)
        return e;
    int rc = mdb_get(txn, md->parts, &pkv, &v);
    if (rc == 0) {
        e = md_part_decode_ex(v.mv_data, v.mv_size, 1, &op->oldpart);
        op->found = e == CM_OK;
    } else if (rc != MDB_NOTFOUND) {
        e = md_mdb_err(rc, "get part");
    }
    if (e == CM_OK && (rc = md_db_put(txn, md->parts, &pkv, &(MDB_val){op->w.len, op->w.p}, 0)))
        e = md_mdb_err(rc, "put part");
    return e;
}

cm_err md_part_put(md_store *md, const char *bucket, const char *key, const char *upload_id,
                   const md_part *part, md_part *old, int *had_old)
{
    upload_op op = {.bucket = bucket};
    if (old)
        memset(old, 0, sizeof(*old));
    if (had_old)
        *had_old = 0;
    if (md_key_upload(bucket, key, upload_id, op.k, &op.kl) != CM_OK)
        return CM_ERR_NOTFOUND;
    op.pkl = md_key_part(upload_id, part->number, op.pk);
    cm_err e = md_part_encode(part, &op.w);
    if (e == CM_OK)
        e = md_write(md, part_put_apply, &op);
    if (e == CM_OK && old)
        *old = op.oldpart, memset(&op.oldpart, 0, sizeof(op.oldpart));
    if (e == CM_OK && had_old)
        *had_old = op.found;
    md_part_release(&op.oldpart);
    md_w_free(&op.w);
    return e;
}

/* Append the part, decoded without its inline body, to *parts (capacity *cap). */
static cm_err part_push(md_part **parts, size_t *n, size_t *cap, const MDB_val *v)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        md_part *a = realloc(*parts, c * sizeof(*a));
        if (!a)
            return CM_ERR_NOMEM;
        *parts = a, *cap = c;
    }
    cm_err e = md_part_decode_ex(v->mv_data, v->mv_size, 1, &(*parts)[*n]);
    if (e == CM_OK)
        (*n)++;
    return e;
}

/*
 * Walk the parts of upload_id numbered >= from: collect up to max and delete them when del is
 * set. *more is set when a part beyond max exists.
 */
static cm_err parts_walk(MDB_txn *txn, md_store *md, const char *upload_id, uint32_t from,
                         size_t max, int del, md_part **parts, size_t *n, int *more)
{
    uint8_t pk[PART_KEY];
    size_t cap = 0, il = strlen(upload_id);
    MDB_cursor *cur;
    MDB_val k = {md_key_part(upload_id, from, pk), pk}, v;
    int rc = mdb_cursor_open(txn, md->parts, &cur);
    if (rc)
        return md_mdb_err(rc, "mdb_cursor_open");
    cm_err e = CM_OK;
    *more = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (e == CM_OK && rc == 0) {
        if (k.mv_size != il + 5 || memcmp(k.mv_data, pk, il + 1) != 0)
            break;
        if (*n == max) {
            *more = 1;
            break;
        }
        e = part_push(parts, n, &cap, &v);
        /* After mdb_cursor_del the cursor's MDB_NEXT yields the entry that followed. */
        if (e == CM_OK && del && (rc = md_db_cursor_del(cur, md->parts)) != 0)
            e = md_mdb_err(rc, "del part");
        if (e == CM_OK)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (e == CM_OK && rc != 0 && rc != MDB_NOTFOUND)
        e = md_mdb_err(rc, "walk parts");
    mdb_cursor_close(cur);
    return e;
}

cm_err md_part_list(md_store *md, const char *upload_id, uint32_t after, size_t max,
                    md_part **parts, size_t *n, int *truncated)
{
    MDB_txn *txn;
    *parts = NULL, *n = 0, *truncated = 0;
    if (strlen(upload_id) == 0 || strlen(upload_id) > MD_UPLOAD_ID_MAX || after == UINT32_MAX)
        return CM_OK;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = parts_walk(txn, md, upload_id, after + 1, max, 0, parts, n, truncated);
    md_txn_end(md, txn);
    if (e != CM_OK) {
        md_parts_free(*parts, *n);
        *parts = NULL, *n = 0;
    }
    return e;
}

/* Remove the upload record at k and every part of upload_id, returning the parts. */
static cm_err upload_remove(MDB_txn *txn, md_store *md, const uint8_t *k, size_t kl,
                            const char *upload_id, md_part **parts, size_t *n)
{
    int more;
    cm_err e = md_kv_del(txn, md->uploads, k, kl);
    if (e == CM_OK)
        e = parts_walk(txn, md, upload_id, 0, SIZE_MAX, 1, parts, n, &more);
    return e;
}

static uint8_t *memdup_part(const md_part *p)
{
    uint8_t *b = malloc(p->size ? (size_t)p->size : 1);
    if (b)
        memcpy(b, p->inline_data, (size_t)p->size);
    return b;
}

static void parts_out(md_part **tmp, size_t tn, cm_err e, md_part **parts, size_t *n)
{
    if (e == CM_OK && parts) {
        *parts = *tmp, *n = tn;
    } else {
        md_parts_free(*tmp, tn);
        if (parts)
            *parts = NULL, *n = 0;
    }
}

/*
 * Every part the completed object names must still be the recorded part (same number, same blob
 * or inline body, same ETag). A part replaced by a concurrent UploadPart after the gateway checked
 * the client's list would otherwise leave the object naming data that the replacement freed.
 */
static cm_err parts_still_current(const md_object *obj, const md_part *rec, size_t nrec)
{
    for (size_t i = 0; i < obj->nparts; i++) {
        const md_part *want = &obj->parts[i];
        const md_part *have = NULL;
        for (size_t j = 0; j < nrec && !have; j++)
            if (rec[j].number == want->number)
                have = &rec[j];
        if (!have || have->size != want->size || strcmp(have->etag, want->etag) != 0 ||
            !MD_PART_INLINE(have) != !MD_PART_INLINE(want) ||
            (!MD_PART_INLINE(want) && memcmp(have->layout.blob, want->layout.blob, 16) != 0))
            return CM_ERR_CONFLICT;
    }
    return CM_OK;
}

/* Drop what an earlier run of a complete or abort op left (the map grew and the batch reran). */
static void upload_op_reset(upload_op *op)
{
    md_parts_free(op->parts, op->nparts);
    op->parts = NULL, op->nparts = 0;
    if (op->found)
        md_object_release(&op->cur);
    op->found = 0;
}

static cm_err upload_complete_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    upload_op *op = arg;
    (void)wrote;
    upload_op_reset(op);
    cm_err e = upload_read(txn, md, op->k, op->kl, NULL);
    if (e == CM_OK)
        e = md_object_read(txn, md, op->ok, op->okl, &op->cur, &op->found);
    if (e == CM_OK)
        e = md_cond_check(op->cond, op->found ? &op->cur : NULL);
    if (e == CM_OK)
        e = md_vers_install(md, txn, op->bucket, op->ok, op->okl, &op->w, 0, &op->cur, &op->found,
                            op->res);
    if (e == CM_OK)
        e = upload_remove(txn, md, op->k, op->kl, op->upload_id, &op->parts, &op->nparts);
    if (e == CM_OK)
        e = parts_still_current(op->obj, op->parts, op->nparts);
    return e;
}

/*
 * The completed object: obj (shallow) with upload_id recorded and its own parts array, in which
 * the inline parts named without their bytes (parts listed by md_part_list carry none) get their
 * bodies from their part records. Only the parts the object keeps are read: all but the last are
 * at least 5 MiB, so at most one body of up to the inline threshold, whatever the upload's number
 * of parts. Free o->parts with md_parts_free(o->parts, obj->nparts).
 */
static cm_err complete_fill(md_store *md, const char *upload_id, const md_object *obj, md_object *o)
{
    MDB_txn *txn = NULL;
    cm_err e = CM_OK;
    *o = *obj;
    snprintf(o->upload_id, sizeof(o->upload_id), "%s", upload_id);
    o->parts = NULL;
    if (obj->nparts && !(o->parts = calloc(obj->nparts, sizeof(md_part))))
        return CM_ERR_NOMEM;
    for (size_t i = 0; e == CM_OK && i < obj->nparts; i++) {
        const md_part *p = &obj->parts[i];
        o->parts[i] = *p;
        o->parts[i].inline_data = NULL;
        if (p->inline_data || !p->is_inline) {
            o->parts[i].inline_data = p->inline_data ? memdup_part(p) : NULL;
            if (p->inline_data && !o->parts[i].inline_data)
                e = CM_ERR_NOMEM;
            continue;
        }
        uint8_t pk[PART_KEY];
        MDB_val k = {md_key_part(upload_id, p->number, pk), pk}, v;
        if (!txn && (e = md_txn_begin(md, 1, &txn)) != CM_OK)
            break;
        int rc = mdb_get(txn, md->parts, &k, &v);
        if (rc)
            e = rc == MDB_NOTFOUND ? CM_ERR_NOTFOUND : md_mdb_err(rc, "get part");
        else
            e = md_part_decode(v.mv_data, v.mv_size, &o->parts[i]);
        if (e == CM_OK && (!o->parts[i].inline_data || strcmp(o->parts[i].etag, p->etag) != 0))
            e = CM_ERR_CONFLICT; /* replaced since it was listed */
    }
    if (txn)
        md_txn_end(md, txn);
    if (e != CM_OK) {
        md_parts_free(o->parts, obj->nparts);
        o->parts = NULL;
    }
    return e;
}

static cm_err complete_encode(md_store *md, const char *upload_id, const md_object *obj, md_wbuf *w)
{
    md_object o;
    cm_err e = complete_fill(md, upload_id, obj, &o);
    if (e != CM_OK)
        return e;
    e = md_object_encode_stored(&o, w);
    md_parts_free(o.parts, obj->nparts);
    return e;
}

cm_err md_upload_assemble(md_store *md, const char *upload_id, const md_object *obj, md_object *out)
{
    md_object o;
    memset(out, 0, sizeof(*out));
    cm_err e = complete_fill(md, upload_id, obj, &o);
    if (e != CM_OK)
        return e;
    e = md_object_copy(&o, out);
    md_parts_free(o.parts, obj->nparts);
    return e;
}

cm_err md_upload_complete(md_store *md, const char *bucket, const char *upload_id,
                          const md_object *obj, const md_cond *cond, md_part **parts, size_t *n,
                          md_object *old, int *had_old)
{
    return md_upload_complete_v(md, bucket, upload_id, obj, cond, parts, n, old, had_old, NULL);
}

cm_err md_upload_complete_v(md_store *md, const char *bucket, const char *upload_id,
                            const md_object *obj, const md_cond *cond, md_part **parts, size_t *n,
                            md_object *old, int *had_old, md_vres *res)
{
    upload_op op = {.bucket = bucket, .upload_id = upload_id, .cond = cond, .obj = obj, .res = res};
    if (old)
        memset(old, 0, sizeof(*old));
    if (had_old)
        *had_old = 0;
    parts_out(&op.parts, 0, CM_ERR_INVAL, parts, n);
    if (!obj->key || md_key_upload(bucket, obj->key, upload_id, op.k, &op.kl) != CM_OK ||
        md_key_object(bucket, obj->key, op.ok, &op.okl) != CM_OK)
        return CM_ERR_NOTFOUND;
    cm_err e = complete_encode(md, upload_id, obj, &op.w);
    if (e == CM_OK)
        e = md_write(md, upload_complete_apply, &op);
    md_w_free(&op.w);
    parts_out(&op.parts, op.nparts, e, parts, n);
    if (e == CM_OK && old)
        *old = op.cur, memset(&op.cur, 0, sizeof(op.cur));
    if (e == CM_OK && had_old)
        *had_old = op.found;
    if (op.found)
        md_object_release(&op.cur);
    return e;
}

static cm_err upload_abort_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    upload_op *op = arg;
    (void)wrote;
    upload_op_reset(op);
    return upload_remove(txn, md, op->k, op->kl, op->upload_id, &op->parts, &op->nparts);
}

cm_err md_upload_abort(md_store *md, const char *bucket, const char *key, const char *upload_id,
                       md_part **parts, size_t *n)
{
    upload_op op = {.bucket = bucket, .upload_id = upload_id};
    parts_out(&op.parts, 0, CM_ERR_INVAL, parts, n);
    if (md_key_upload(bucket, key, upload_id, op.k, &op.kl) != CM_OK)
        return CM_ERR_NOTFOUND;
    cm_err e = md_write(md, upload_abort_apply, &op);
    parts_out(&op.parts, op.nparts, e, parts, n);
    return e;
}

/*
 * Remove every upload of bucket with its parts (DeleteBucket of a bucket holding only unfinished
 * uploads), appending the removed parts, without bodies, to *parts. The upload keys are copied
 * out first: deleting under the iterator would move the entries it points into.
 */
cm_err md_uploads_remove_bucket(MDB_txn *txn, md_store *md, const char *bucket, md_part **parts,
                                size_t *n)
{
    uint8_t k[MD_BUCKET_MAX + 1];
    size_t kl, nkeys = 0, cap = 0;
    md_slice *keys = NULL;
    md_kv_iter it;
    cm_err e = md_key_object(bucket, "", k, &kl);
    if (e == CM_OK)
        e = md_kv_iter_open(txn, md->uploads, &it);
    if (e != CM_OK)
        return e;
    for (e = md_kv_iter_seek(&it, k, kl); e == CM_OK; e = md_kv_iter_next(&it)) {
        if (it.key.n < kl || memcmp(it.key.p, k, kl) != 0)
            break;
        if (nkeys == cap) {
            md_slice *a = realloc(keys, (cap = cap ? cap * 2 : 16) * sizeof(*a));
            if (!a) {
                e = CM_ERR_NOMEM;
                break;
            }
            keys = a;
        }
        uint8_t *copy = malloc(it.key.n);
        if (!copy) {
            e = CM_ERR_NOMEM;
            break;
        }
        memcpy(copy, it.key.p, it.key.n);
        keys[nkeys++] = (md_slice){copy, it.key.n};
    }
    md_kv_iter_close(&it);
    if (e == CM_ERR_NOTFOUND)
        e = CM_OK;
    for (size_t i = 0; e == CM_OK && i < nkeys; i++) {
        /* bucket \0 key \0 upload_id: keys hold no NUL, so the id follows the last one. */
        const uint8_t *z = keys[i].p + keys[i].n;
        while (z > keys[i].p && z[-1] != 0)
            z--;
        char id[MD_UPLOAD_ID_MAX + 1];
        size_t il = (size_t)(keys[i].p + keys[i].n - z);
        if (z == keys[i].p || il == 0 || il > MD_UPLOAD_ID_MAX) {
            e = MD_CORRUPT("upload key without an upload id");
            break;
        }
        memcpy(id, z, il);
        id[il] = 0;
        size_t before = *n;
        md_part *got = NULL;
        size_t ngot = 0;
        e = upload_remove(txn, md, keys[i].p, keys[i].n, id, &got, &ngot);
        if (e == CM_OK && ngot) {
            md_part *a = realloc(*parts, (before + ngot) * sizeof(*a));
            if (!a)
                e = CM_ERR_NOMEM;
            else
                memcpy(a + before, got, ngot * sizeof(*a)), *parts = a, *n = before + ngot;
            if (e == CM_OK)
                free(got), got = NULL, ngot = 0;
        }
        md_parts_free(got, ngot);
    }
    for (size_t i = 0; i < nkeys; i++)
        free((void *)keys[i].p);
    free(keys);
    return e;
}
