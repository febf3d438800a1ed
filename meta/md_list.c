/*
 * md_list.c - S3 listings: ListObjects(V2) over current records, ListMultipartUploads.
 * (ListObjectVersions is md_vlist.c.) A key whose latest version is a delete marker is not listed
 * and does not count toward max; a common prefix is listed only if it holds a listed key (its
 * deleted keys are stepped over until one is found), and a page is truncated only if a listed
 * entry follows it.
 *
 * Both walk one cursor in one read transaction, from the larger of (bucket \0 prefix) and the
 * marker. A key whose remainder after the prefix holds the delimiter rolls up into the common
 * prefix prefix + remainder[0 .. delimiter end]: it is emitted once and the cursor then seeks to
 * the prefix's successor (last byte incremented, 0xFF carried), so a prefix holding a million keys
 * costs one seek, not a million steps. A common prefix <= the marker was returned on an earlier
 * page and is skipped the same way.
 *
 * Paging invariants: entries (objects, uploads and prefixes) come out in strictly increasing key
 * order; at most max entries; truncated is set only when one more qualifying entry exists;
 * next_marker is the last entry returned, so resuming after it neither repeats nor skips.
 *
 * Threading: read transactions only; any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "md_int.h"

char *md_list_dup(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

int md_list_cmp(const uint8_t *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    int c = memcmp(a, b, CM_MIN(an, bn));
    return c ? c : (an < bn ? -1 : an > bn);
}

size_t md_list_rollup(const uint8_t *rel, size_t n, size_t plen, const char *delim)
{
    if (!delim || !*delim || n <= plen)
        return 0;
    const uint8_t *d = memmem(rel + plen, n - plen, delim, strlen(delim));
    return d ? (size_t)(d - rel) + strlen(delim) : 0;
}

cm_err md_list_seek_past(md_kv_iter *it, size_t boff, const uint8_t *full, size_t n)
{
    uint8_t k[MD_KEYBUF];
    size_t kl = boff + n;
    memcpy(k, full, kl);
    if (!md_key_successor(k, &kl))
        return CM_ERR_NOTFOUND;
    return md_kv_iter_seek(it, k, kl);
}

/* Position at the first key of bucket >= max(prefix, marker). */
static cm_err seek_start(md_kv_iter *it, const char *bucket, const char *prefix, const char *marker)
{
    uint8_t k[MD_KEYBUF];
    size_t kl;
    const char *from = marker && strcmp(marker, prefix) > 0 ? marker : prefix;
    /* A shorter bound is still a lower bound; the walk filters exactly. */
    size_t fl = CM_MIN(strlen(from), (size_t)(MD_MAX_KEY + 1 + MD_UPLOAD_ID_MAX));
    cm_err e = md_key_object(bucket, "", k, &kl);
    if (e != CM_OK)
        return e == CM_ERR_INVAL ? CM_ERR_NOTFOUND : e;
    memcpy(k + kl, from, fl);
    return md_kv_iter_seek(it, k, kl + fl);
}

static cm_err add_object_entry(md_list_result *out, const uint8_t *rel, size_t n, md_kv_iter *it,
                               size_t cap)
{
    if (n == 0 || out->n >= cap)
        return CM_ERR_INTERNAL;
    md_list_entry *en = &out->entries[out->n];
    memset(en, 0, sizeof(*en));
    cm_err e = md_rec_summary_at(it, &en->obj);
    if (e != CM_OK)
        return e;
    if (en->obj.tombstone || en->obj.delete_marker) { /* a deletion: not listed */
        md_object_release(&en->obj);
        return CM_OK;
    }
    en->key = md_list_dup(rel, n);
    if (!en->key) {
        md_object_release(&en->obj);
        return CM_ERR_NOMEM;
    }
    out->n++;
    return CM_OK;
}

static cm_err add_prefix_entry(md_list_result *out, const uint8_t *rel, size_t n)
{
    md_list_entry *en = &out->entries[out->n];
    memset(en, 0, sizeof(*en));
    en->is_prefix = 1;
    en->key = md_list_dup(rel, n);
    if (!en->key)
        return CM_ERR_NOMEM;
    out->n++;
    return CM_OK;
}

typedef struct {
    const char *bucket, *prefix, *delim, *after;
    size_t plen, boff; /* boff: bytes of "bucket \0" before the relative key */
} walk_ctx;

/*
 * Advance it to the next qualifying entry: sets *cp_len (0 for a plain key). CM_ERR_NOTFOUND at
 * the end of the listing.
 */
static cm_err next_entry(md_kv_iter *it, const walk_ctx *c, size_t *cp_len)
{
    for (;;) {
        if (it->key.n < c->boff || memcmp(it->key.p, c->bucket, c->boff) != 0)
            return CM_ERR_NOTFOUND; /* bucket name and its NUL */
        const uint8_t *rel = it->key.p + c->boff;
        size_t n = it->key.n - c->boff;
        if (n < c->plen || memcmp(rel, c->prefix, c->plen) != 0)
            return CM_ERR_NOTFOUND;
        *cp_len = md_list_rollup(rel, n, c->plen, c->delim);
        size_t cmp_len = *cp_len ? *cp_len : n;
        if (!c->after || md_list_cmp(rel, cmp_len, c->after) > 0)
            return CM_OK;
        cm_err e =
            *cp_len ? md_list_seek_past(it, c->boff, it->key.p, *cp_len) : md_kv_iter_next(it);
        if (e != CM_OK)
            return e;
    }
}

/* A deletion (a delete marker, or a tombstone kept for replication): never listed. */
static int is_deletion(md_kv_iter *it, cm_err *e)
{
    md_object o;
    *e = md_rec_summary_at(it, &o);
    int del = *e == CM_OK && (o.tombstone || o.delete_marker);
    if (*e == CM_OK)
        md_object_release(&o);
    return del;
}

/*
 * Does the common prefix of the key under it (its first pl bytes) hold a listed key? Steps over
 * the deletions in it: *live = 1 with it on a listed key of the prefix, else it is past the
 * prefix (CM_ERR_NOTFOUND at the end). A prefix whose keys were all deleted in a versioned bucket
 * is no directory, as in S3; the scan stops at its first listed key.
 */
static cm_err prefix_live(md_kv_iter *it, size_t pl, int *live)
{
    uint8_t pfx[MD_KEYBUF];
    cm_err e = CM_OK;
    memcpy(pfx, it->key.p, pl);
    *live = 0;
    while (e == CM_OK && it->key.n >= pl && memcmp(it->key.p, pfx, pl) == 0) {
        int del = is_deletion(it, &e);
        if (e == CM_OK && !del) {
            *live = 1;
            break;
        }
        if (e == CM_OK)
            e = md_kv_iter_next(it);
    }
    return e;
}

static cm_err list_walk(md_kv_iter *it, const walk_ctx *c, size_t max, md_list_result *out)
{
    size_t cp_len;
    cm_err e;
    while ((e = next_entry(it, c, &cp_len)) == CM_OK) {
        int live = 1;
        if (cp_len)
            e = prefix_live(it, c->boff + cp_len, &live);
        else if (out->n == max && is_deletion(it, &e) && e == CM_OK)
            live = 0, e = md_kv_iter_next(it); /* truncated only if a listed key follows */
        if (e != CM_OK)
            break;
        if (!live)
            continue;
        if (out->n == max) {
            out->truncated = 1;
            return CM_OK;
        }
        const uint8_t *rel = it->key.p + c->boff;
        if (cp_len) {
            e = add_prefix_entry(out, rel, cp_len);
            if (e == CM_OK)
                e = md_list_seek_past(it, c->boff, it->key.p, cp_len);
        } else {
            e = add_object_entry(out, rel, it->key.n - c->boff, it, max);
            if (e == CM_OK)
                e = md_kv_iter_next(it);
        }
        if (e != CM_OK)
            break;
    }
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

static cm_err list_run(md_store *md, const char *bucket, const md_list_query *q, size_t max,
                       md_list_result *out)
{
    MDB_txn *txn;
    md_kv_iter it;
    walk_ctx c = {bucket, q->prefix ? q->prefix : "", q->delimiter, q->start_after,
                  0,      strlen(bucket) + 1};
    c.plen = strlen(c.prefix);
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = md_kv_iter_open(txn, md->objects, &it);
    if (e == CM_OK) {
        it.lazy = 1; /* records are read as summaries: no split value is joined */
        e = seek_start(&it, bucket, c.prefix, c.after);
        if (e == CM_OK)
            e = list_walk(&it, &c, max, out);
        else if (e == CM_ERR_NOTFOUND)
            e = CM_OK;
        md_kv_iter_close(&it);
    }
    md_txn_end(md, txn);
    return e;
}

cm_err md_list_objects(md_store *md, const char *bucket, const md_list_query *q,
                       md_list_result *out)
{
    memset(out, 0, sizeof(*out));
    size_t max = CM_MIN(q->max_keys, (size_t)100000);
    if (max == 0 || strlen(bucket) == 0 || strlen(bucket) > MD_BUCKET_MAX)
        return CM_OK;
    out->entries = calloc(max, sizeof(*out->entries));
    if (!out->entries)
        return CM_ERR_NOMEM;
    cm_err e = list_run(md, bucket, q, max, out);
    if (e == CM_OK && out->truncated && out->n) {
        out->next_marker = strdup(out->entries[out->n - 1].key);
        if (!out->next_marker)
            e = CM_ERR_NOMEM;
    }
    if (e != CM_OK)
        md_list_result_release(out);
    return e;
}

void md_list_result_release(md_list_result *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n; i++) {
        free(res->entries[i].key);
        md_object_release(&res->entries[i].obj);
    }
    free(res->entries);
    free(res->next_marker);
    free(res->next_version_marker);
    memset(res, 0, sizeof(*res));
}

/* ---- Multipart upload listing ---- */

/*
 * Upload keys are bucket \0 key \0 upload_id; S3 keys hold no NUL, so the object key is the
 * relative key up to its NUL. Order is key then upload id (ids start with a time stamp).
 */
typedef struct {
    const walk_ctx *c;
    const char *key_marker, *id_marker;
} upload_ctx;

/* Split the relative upload key; CM_ERR_CORRUPT when there is no NUL. */
static cm_err split_upload(const md_slice *full, size_t boff, md_slice *key, md_slice *id)
{
    const uint8_t *rel = full->p + boff;
    size_t n = full->n - boff;
    const uint8_t *z = memchr(rel, 0, n);
    if (!z)
        return MD_CORRUPT("upload key without upload id");
    *key = (md_slice){rel, (size_t)(z - rel)};
    *id = (md_slice){z + 1, n - key->n - 1};
    return CM_OK;
}

/* 1 when the upload (key, id) is past the markers. */
static int upload_after(const upload_ctx *u, md_slice key, md_slice id)
{
    if (!u->key_marker || !*u->key_marker)
        return 1;
    int c = md_list_cmp(key.p, key.n, u->key_marker);
    if (c != 0 || !u->id_marker || !*u->id_marker)
        return c > 0;
    return md_list_cmp(id.p, id.n, u->id_marker) > 0;
}

static cm_err add_upload(md_upload_list *out, const md_slice *val)
{
    md_upload *a = realloc(out->uploads, (out->n + 1) * sizeof(*a));
    if (!a)
        return CM_ERR_NOMEM;
    out->uploads = a;
    cm_err e = md_upload_decode(val->p, val->n, &a[out->n]);
    if (e == CM_OK)
        out->n++;
    return e;
}

static cm_err add_uprefix(md_upload_list *out, const uint8_t *p, size_t n)
{
    char **a = realloc(out->prefixes, (out->nprefixes + 1) * sizeof(*a));
    if (!a)
        return CM_ERR_NOMEM;
    out->prefixes = a;
    a[out->nprefixes] = md_list_dup(p, n);
    if (!a[out->nprefixes])
        return CM_ERR_NOMEM;
    out->nprefixes++;
    return CM_OK;
}

/* Remember the last entry for next_key_marker / next_upload_id_marker. */
static cm_err set_next(md_upload_list *out, md_slice key, const md_slice *id)
{
    free(out->next_key_marker);
    free(out->next_upload_id_marker);
    out->next_upload_id_marker = NULL;
    out->next_key_marker = md_list_dup(key.p, key.n);
    if (id)
        out->next_upload_id_marker = md_list_dup(id->p, id->n);
    return out->next_key_marker && (!id || out->next_upload_id_marker) ? CM_OK : CM_ERR_NOMEM;
}

/* One step of the upload walk; *stop set when the listing is complete or truncated. */
static cm_err upload_step(md_kv_iter *it, const upload_ctx *u, size_t max, md_upload_list *out,
                          int *stop)
{
    const walk_ctx *c = u->c;
    md_slice key = {0}, id = {0};
    cm_err e = split_upload(&it->key, c->boff, &key, &id);
    if (e != CM_OK)
        return e;
    if (key.n < c->plen || memcmp(key.p, c->prefix, c->plen) != 0) {
        *stop = 1;
        return CM_OK;
    }
    size_t cp = md_list_rollup(key.p, key.n, c->plen, c->delim);
    int wanted = cp ? (!u->key_marker || md_list_cmp(key.p, cp, u->key_marker) > 0)
                    : upload_after(u, key, id);
    if (wanted && out->n + out->nprefixes == max) {
        out->truncated = 1;
        *stop = 1;
        return CM_OK;
    }
    if (cp) {
        if (wanted && (e = add_uprefix(out, key.p, cp)) == CM_OK)
            e = set_next(out, (md_slice){key.p, cp}, NULL);
        return e == CM_OK ? md_list_seek_past(it, c->boff, it->key.p, cp) : e;
    }
    if (wanted && (e = add_upload(out, &it->val)) == CM_OK)
        e = set_next(out, key, &id);
    return e == CM_OK ? md_kv_iter_next(it) : e;
}

static cm_err upload_run(md_store *md, const char *bucket, const md_upload_query *q, size_t max,
                         md_upload_list *out)
{
    MDB_txn *txn;
    md_kv_iter it;
    walk_ctx c = {bucket, q->prefix ? q->prefix : "", q->delimiter, NULL, 0, strlen(bucket) + 1};
    c.plen = strlen(c.prefix);
    upload_ctx u = {&c, q->key_marker, q->upload_id_marker};
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = md_kv_iter_open(txn, md->uploads, &it);
    if (e == CM_OK) {
        e = seek_start(&it, bucket, c.prefix, q->key_marker);
        int stop = 0;
        while (e == CM_OK && !stop) {
            if (it.key.n < c.boff || memcmp(it.key.p, bucket, c.boff) != 0)
                break;
            e = upload_step(&it, &u, max, out, &stop);
        }
        if (e == CM_ERR_NOTFOUND)
            e = CM_OK;
        md_kv_iter_close(&it);
    }
    md_txn_end(md, txn);
    return e;
}

cm_err md_upload_list_query(md_store *md, const char *bucket, const md_upload_query *q,
                            md_upload_list *out)
{
    memset(out, 0, sizeof(*out));
    if (q->max_uploads == 0 || strlen(bucket) == 0 || strlen(bucket) > MD_BUCKET_MAX)
        return CM_OK;
    cm_err e = upload_run(md, bucket, q, q->max_uploads, out);
    if (e == CM_OK && !out->truncated) {
        free(out->next_key_marker);
        free(out->next_upload_id_marker);
        out->next_key_marker = out->next_upload_id_marker = NULL;
    }
    if (e != CM_OK)
        md_upload_list_release(out);
    return e;
}

void md_upload_list_release(md_upload_list *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n; i++)
        md_upload_release(&res->uploads[i]);
    free(res->uploads);
    for (size_t i = 0; i < res->nprefixes; i++)
        free(res->prefixes[i]);
    free(res->prefixes);
    free(res->next_key_marker);
    free(res->next_upload_id_marker);
    memset(res, 0, sizeof(*res));
}
