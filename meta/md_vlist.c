/*
 * md_vlist.c - ListObjectVersions (md_list_versions) over `objects` and `versions`
 * (md_version.c has the layout).
 *
 * One read transaction walks `objects` in key order, from the larger of bucket \0 prefix and the
 * key marker, exactly as md_list.c walks it for ListObjects (common prefixes are emitted once and
 * skipped with one seek). For each key it emits the latest (IsLatest), then the key's older
 * versions from `versions` (a prefix scan, newest first). Every version and every common prefix
 * counts toward max; truncated is set only when one more entry qualifies, and the markers name the
 * last entry returned, so the next page resumes right after it:
 *   key-marker alone          -> keys after it;
 *   key-marker + version-id   -> that key's versions older than that one, then the next keys (a
 *                                non-null id seeks to its place, so a version deleted between
 *                                pages does not lose the older ones; a vanished "null" resumes at
 *                                the next key).
 *
 * Threading: read transactions only; any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "md_int.h"

typedef struct {
    const char *bucket, *prefix, *delim, *kmark, *vmark;
    size_t plen, boff, max;
    md_list_result *out;
    md_kv_iter vit; /* over `versions` */
} vl_ctx;

/* Room for one more entry? If not, the listing is truncated (a qualifying entry exists). */
static int full(vl_ctx *c)
{
    if (c->out->n < c->max)
        return 0;
    c->out->truncated = 1;
    return 1;
}

static cm_err add_version(vl_ctx *c, const uint8_t *rel, size_t n, md_kv_iter *at, int latest)
{
    md_list_entry *en = &c->out->entries[c->out->n];
    memset(en, 0, sizeof(*en));
    cm_err e = md_rec_summary_at(at, &en->obj);
    if (e != CM_OK)
        return e;
    if (en->obj.tombstone) { /* a deletion kept for replication: no version */
        md_object_release(&en->obj);
        return CM_OK;
    }
    if (!en->obj.version_id[0])
        memcpy(en->obj.version_id, "null", 5);
    en->is_latest = latest;
    if (!(en->key = md_list_dup(rel, n))) {
        md_object_release(&en->obj);
        return CM_ERR_NOMEM;
    }
    c->out->n++;
    return CM_OK;
}

/*
 * Emit key k's older versions (rel/n: the key relative to its bucket). after: skip up to and
 * including that version id first (NULL: none to skip); *stop when the page is full.
 */
static cm_err add_older(vl_ctx *c, const uint8_t *k, size_t kl, const uint8_t *rel, size_t n,
                        const char *after, int *stop)
{
    uint8_t vk[MD_KEYBUF];
    int skipping = after != NULL;
    memcpy(vk, k, kl);
    vk[kl] = 0;
    cm_put_be64(vk + kl + 1, 0);
    if (after && strcmp(after, "null") != 0) {
        /* Ids carry ~stamp: seek to its place, then step over it if it is still there. */
        cm_put_be64(vk + kl + 1, ~md_vid_stamp(after));
    }
    cm_err e;
    for (e = md_kv_iter_seek(&c->vit, vk, kl + MD_VSUFFIX);
         e == CM_OK && md_vers_of_key(&c->vit, k, kl); e = md_kv_iter_next(&c->vit)) {
        if (skipping) {
            md_object s;
            if ((e = md_rec_summary_at(&c->vit, &s)) != CM_OK)
                break;
            int at = strcmp(s.version_id[0] ? s.version_id : "null", after) == 0;
            int passed = strcmp(after, "null") != 0 && memcmp(c->vit.key.p + kl + 1, vk + kl + 1,
                                                              8) > 0; /* older than the marker */
            md_object_release(&s);
            if (at || passed)
                skipping = 0;
            if (at || !passed)
                continue; /* the marker itself (resume after it), or newer than it */
        }
        if ((*stop = full(c)))
            break;
        if ((e = add_version(c, rel, n, &c->vit, 0)) != CM_OK)
            break;
    }
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

/* All versions of the key under it (objects), honouring the markers; *stop when full. */
static cm_err add_key(vl_ctx *c, md_kv_iter *it, int at_marker, int *stop)
{
    const uint8_t *rel = it->key.p + c->boff;
    size_t n = it->key.n - c->boff;
    uint8_t k[MD_KEYBUF];
    size_t kl = it->key.n;
    memcpy(k, it->key.p, kl); /* the objects iterator's key, kept while vit moves */
    const char *after = NULL;
    if (at_marker) {
        md_object s;
        cm_err e = md_rec_summary_at(it, &s);
        if (e != CM_OK)
            return e;
        int is_latest = strcmp(s.version_id[0] ? s.version_id : "null", c->vmark) == 0;
        md_object_release(&s);
        after = is_latest ? NULL : c->vmark;
    } else {
        if ((*stop = full(c)))
            return CM_OK;
        cm_err e = add_version(c, rel, n, it, 1);
        if (e != CM_OK)
            return e;
    }
    return add_older(c, k, kl, k + c->boff, n, after, stop);
}

static cm_err vl_walk(vl_ctx *c, md_kv_iter *it)
{
    cm_err e = CM_OK;
    int stop = 0;
    while (e == CM_OK && !stop) {
        if (it->key.n < c->boff || memcmp(it->key.p, c->bucket, c->boff) != 0)
            break;
        const uint8_t *rel = it->key.p + c->boff;
        size_t n = it->key.n - c->boff;
        if (n < c->plen || memcmp(rel, c->prefix, c->plen) != 0)
            break;
        size_t cp = md_list_rollup(rel, n, c->plen, c->delim);
        if (cp) {
            if (c->kmark && md_list_cmp(rel, cp, c->kmark) <= 0) {
                e = md_list_seek_past(it, c->boff, it->key.p, cp);
                continue;
            }
            if ((stop = full(c)))
                break;
            md_list_entry *en = &c->out->entries[c->out->n];
            memset(en, 0, sizeof(*en));
            en->is_prefix = 1;
            if (!(en->key = md_list_dup(rel, cp)))
                return CM_ERR_NOMEM;
            c->out->n++;
            e = md_list_seek_past(it, c->boff, it->key.p, cp);
            continue;
        }
        int cmp = c->kmark ? md_list_cmp(rel, n, c->kmark) : 1;
        if (cmp > 0 || (cmp == 0 && c->vmark))
            e = add_key(c, it, cmp == 0, &stop);
        if (e == CM_OK && !stop)
            e = md_kv_iter_next(it);
    }
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

static cm_err vl_run(md_store *md, vl_ctx *c)
{
    uint8_t k[MD_KEYBUF];
    MDB_txn *txn;
    md_kv_iter it;
    const char *from = c->kmark && strcmp(c->kmark, c->prefix) > 0 ? c->kmark : c->prefix;
    size_t fl = CM_MIN(strlen(from), (size_t)MD_MAX_KEY);
    memcpy(k, c->bucket, c->boff); /* bucket and its NUL */
    memcpy(k + c->boff, from, fl);
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    if ((e = md_kv_iter_open(txn, md->objects, &it)) == CM_OK) {
        if ((e = md_kv_iter_open(txn, md->versions, &c->vit)) == CM_OK) {
            it.lazy = c->vit.lazy = 1; /* summaries only: no split value is joined */
            e = md_kv_iter_seek(&it, k, c->boff + fl);
            e = e == CM_OK ? vl_walk(c, &it) : e == CM_ERR_NOTFOUND ? CM_OK : e;
            md_kv_iter_close(&c->vit);
        }
        md_kv_iter_close(&it);
    }
    md_txn_end(md, txn);
    return e;
}

cm_err md_list_versions(md_store *md, const char *bucket, const md_vlist_query *q,
                        md_list_result *out)
{
    memset(out, 0, sizeof(*out));
    size_t bl = strlen(bucket), max = CM_MIN(q->max_keys, (size_t)100000);
    if (max == 0 || bl == 0 || bl > MD_BUCKET_MAX)
        return CM_OK;
    vl_ctx c = {.bucket = bucket,
                .prefix = q->prefix ? q->prefix : "",
                .delim = q->delimiter,
                .kmark = q->key_marker && *q->key_marker ? q->key_marker : NULL,
                .boff = bl + 1,
                .max = max,
                .out = out};
    c.vmark = c.kmark && q->vid_marker && md_vid_valid(q->vid_marker) ? q->vid_marker : NULL;
    c.plen = strlen(c.prefix);
    if (!(out->entries = calloc(max, sizeof(*out->entries))))
        return CM_ERR_NOMEM;
    cm_err e = vl_run(md, &c);
    if (e == CM_OK && out->truncated && out->n) {
        const md_list_entry *last = &out->entries[out->n - 1];
        out->next_marker = strdup(last->key);
        if (!last->is_prefix)
            out->next_version_marker = strdup(last->obj.version_id);
        if (!out->next_marker || (!last->is_prefix && !out->next_version_marker))
            e = CM_ERR_NOMEM;
    }
    if (e != CM_OK)
        md_list_result_release(out);
    return e;
}
