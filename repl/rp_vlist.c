/*
 * rp_vlist.c - ListObjectVersions over the cluster (rp_version.h; docs/versioning.md, "On a
 * cluster").
 *
 * The keys come from rp_list_latest (the S3 listing's merge of the shards' pages, prefix and
 * delimiter applied, keys whose latest is a delete marker kept): each common prefix is one entry;
 * each key gives its plain record first when it has one (the `null` version written before
 * versioning, latest), then its version records newest first, from one-partition pages of its
 * version space (the copy of the plain record, if any, skipped), IsLatest on the version the
 * key's pointer names. The walk collects max_keys + 1 entries: the last one only says the page is
 * truncated, and the markers name the last one returned.
 *
 * Resuming with key-marker + version-id-marker: that key's versions after the marker first (a
 * version id seeks straight to its key in the version space, so a marker deleted meanwhile
 * resumes at the next older one; "null" resumes after the null version, or at the next key when
 * it is gone), then the keys after key-marker. key-marker alone skips every version of its key.
 *
 * Cost: one listing round per max_keys keys, and one version page per key listed. Memory: the
 * entries (max_keys + 1) and one page. Threading: a worker thread (the rp calls block).
 */
#include <stdlib.h>
#include <string.h>

#include "rp_int.h"
#include "rp_version.h"

#define VPAGE 256 /* version records asked per page of one key */

typedef struct {
    rp *c;
    const char *bucket;
    md_list_result *out;
    size_t cap, want; /* entries collected at most: max_keys + 1 */
} walk;

static int is_null(const char *vid)
{
    return !vid[0] || strcmp(vid, "null") == 0;
}

static int full(const walk *w)
{
    return w->out->n >= w->want;
}

/* Append an entry for key (rec moved in, its key dropped; NULL: a common prefix). */
static cm_err add(walk *w, const char *key, md_object *rec, int latest)
{
    md_list_result *out = w->out;
    if (out->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 16;
        md_list_entry *a = realloc(out->entries, nc * sizeof(*a));
        if (!a)
            return CM_ERR_NOMEM;
        out->entries = a;
        w->cap = nc;
    }
    char *k = strdup(key);
    if (!k)
        return CM_ERR_NOMEM;
    md_list_entry *en = &out->entries[out->n++];
    memset(en, 0, sizeof(*en));
    en->key = k;
    en->is_prefix = rec == NULL;
    en->is_latest = latest;
    if (rec) {
        en->obj = *rec;
        memset(rec, 0, sizeof(*rec));
        free(en->obj.key);
        en->obj.key = NULL;
    }
    return CM_OK;
}

/* Key's entries after version after_vid (NULL: all of them). head: key's record (a summary;
 * NULL when it has none). */
static cm_err emit_key(walk *w, const char *key, const md_object *head, const char *after_vid)
{
    int plain = head && !rp_version_pointer(head);
    int skip_to_null = after_vid && is_null(after_vid) && !plain;
    char pre[MD_MAX_KEY + 1], *after = NULL;
    cm_err e = CM_OK;
    if (plain && !after_vid) {
        md_object copy;
        if ((e = md_object_copy(head, &copy)) != CM_OK || (e = add(w, key, &copy, 1)) != CM_OK) {
            md_object_release(&copy);
            return e;
        }
    }
    if (md_ver_key_prefix(key, pre, sizeof(pre)) != CM_OK)
        return CM_OK; /* an empty key has none */
    if (after_vid && !is_null(after_vid)) {
        char vk[MD_MAX_KEY + 1];
        if (md_ver_key(key, after_vid, vk, sizeof(vk)) != CM_OK)
            return CM_OK; /* no version of this key can follow such a marker */
        if (!(after = strdup(vk)))
            return CM_ERR_NOMEM;
    }
    while (e == CM_OK && !full(w)) {
        md_object *recs = NULL;
        size_t n = 0, room = w->want - w->out->n;
        char *next = NULL;
        e = rp_list_records(w->c, w->bucket, key, pre, after, room < VPAGE ? room : VPAGE, &recs,
                            &n, &next);
        free(after);
        after = next;
        for (size_t i = 0; e == CM_OK && i < n && !full(w); i++) {
            if (plain && is_null(recs[i].version_id))
                continue; /* the copy of the plain record, listed above */
            if (skip_to_null) {
                skip_to_null = !is_null(recs[i].version_id);
                continue;
            }
            int latest =
                head && !plain && strcmp(head->version_id, rp_version_order(&recs[i])) == 0;
            e = add(w, key, &recs[i], latest);
        }
        md_objects_free(recs, n);
        if (!after)
            break;
    }
    free(after);
    return e;
}

/* The versions of key-marker after version-id-marker, when key-marker is in the prefix. */
static cm_err resume_key(walk *w, const md_vlist_query *q)
{
    const char *k = q->key_marker;
    if (!*k || (uint8_t)k[0] == MD_MPU_MARK ||
        (q->prefix && strncmp(k, q->prefix, strlen(q->prefix)) != 0))
        return CM_OK;
    md_object head;
    cm_err e = rp_object_get(w->c, w->bucket, k, &head);
    if (e == CM_ERR_NOTFOUND)
        return emit_key(w, k, NULL, q->vid_marker);
    if (e != CM_OK)
        return e;
    e = emit_key(w, k, &head, q->vid_marker);
    md_object_release(&head);
    return e;
}

/* The keys after *after (heap; advanced), one listing round. *done at the end of the bucket. */
static cm_err keys_round(walk *w, const md_vlist_query *q, char **after, int *done)
{
    md_list_query lq = {.prefix = q->prefix,
                        .delimiter = q->delimiter,
                        .start_after = *after,
                        .max_keys = w->want - w->out->n};
    md_list_result page;
    cm_err e = rp_list_latest(w->c, w->bucket, &lq, &page);
    if (e != CM_OK)
        return e;
    for (size_t i = 0; e == CM_OK && i < page.n && !full(w); i++) {
        md_list_entry *en = &page.entries[i];
        if (en->is_prefix) {
            e = add(w, en->key, NULL, 0);
        } else {
            en->obj.key = en->key; /* a summary of the key's record */
            e = emit_key(w, en->key, &en->obj, NULL);
            en->obj.key = NULL;
        }
    }
    *done = !page.truncated;
    if (e == CM_OK && page.n) {
        free(*after);
        if (!(*after = strdup(page.entries[page.n - 1].key)))
            e = CM_ERR_NOMEM;
    }
    md_list_result_release(&page);
    return e;
}

cm_err rp_version_list(rp *c, const char *bucket, const md_vlist_query *q, md_list_result *out)
{
    memset(out, 0, sizeof(*out));
    size_t max = q->max_keys < 1000 ? q->max_keys : 1000;
    if (q->vid_marker && !q->key_marker)
        return CM_ERR_INVAL;
    if (max == 0)
        return CM_OK;
    walk w = {.c = c, .bucket = bucket, .out = out, .want = max + 1};
    char *after = NULL;
    int done = 0;
    cm_err e = CM_OK;
    if (q->key_marker && !(after = strdup(q->key_marker)))
        e = CM_ERR_NOMEM;
    if (e == CM_OK && q->key_marker && q->vid_marker)
        e = resume_key(&w, q);
    while (e == CM_OK && !full(&w) && !done)
        e = keys_round(&w, q, &after, &done);
    free(after);
    if (e == CM_OK && out->n > max) { /* one more qualifies: the page is truncated before it */
        md_list_entry *x = &out->entries[--out->n];
        free(x->key);
        md_object_release(&x->obj);
        md_list_entry *last = &out->entries[out->n - 1];
        out->truncated = 1;
        if (!(out->next_marker = strdup(last->key)) ||
            (!last->is_prefix && !(out->next_version_marker = strdup(last->obj.version_id))))
            e = CM_ERR_NOMEM;
    }
    if (e != CM_OK)
        md_list_result_release(out);
    return e;
}
