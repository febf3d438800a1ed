/*
 * rp_list.c - S3 listing over a bucket's partitions: a k-way merge of the shards' ordered pages.
 *
 * Every shard has a cursor: a page of resolved records (keys in byte order) and the key after
 * which its next page starts. A page is read from the shard's homes (R answers; RP_AVAILABLE: any
 * one) with list(prefix, after, page); the replicas' answers are merged per key by
 * md_object_resolve up to the smallest last key among the answers that were truncated (past it
 * a truncated replica has not spoken yet, so those keys wait for the next page). Tombstones are
 * dropped there, so a deleted key is never listed and never rolls a prefix up; a page they leave
 * empty is followed by the shard's next one before the merge goes on.
 *
 * The merge takes the smallest key among the cursors, exactly as md_list.c walks one store: a
 * key whose remainder after the prefix holds the delimiter becomes its common prefix, emitted
 * once (and skipped when <= start_after, as a page before returned it), after which every cursor
 * skips the prefix's keys; a cursor whose page ends inside the prefix resumes after the prefix
 * padded with 0xFF bytes to MD_MAX_KEY, which no key with that prefix exceeds, so a prefix of a
 * million keys costs one page per shard, not a million keys. truncated is set only when one more
 * entry qualifies, next_marker is the last entry returned.
 *
 * A latest version that is a delete marker (versioning, rp_version.c) is left out as a tombstone
 * is, except by rp_list_latest (ListObjectVersions walks the keys with it).
 *
 * Keys in the reserved space of multipart records (MD_MPU_MARK, md_mpkey.c) sort after every S3
 * key; rp_list_objects ends where they start (and lists nothing for a prefix inside that
 * space), so ListObjects never shows them and a bucket holding only uploads is empty;
 * rp_list_reserved, which rp_upload_list uses, is the same merge without that cut.
 *
 * Memory: one page per shard (page size from max_keys and the shard count, at most RP_LIST_MAX)
 * and the result, whatever the bucket holds. Cursors that run dry are refilled on demand, all
 * that need it at once.
 */
#include <stdlib.h>
#include <string.h>

#include "rp_int.h"

typedef struct {
    md_object *recs; /* resolved live records of the current page */
    size_t n, pos;
    char *after; /* the next page starts after this key (NULL: from the start) */
    int more;    /* a next page may exist */
    rp_op *op;   /* a page being fetched */
} cursor;

typedef struct {
    rp *c;
    const char *bucket;
    const char *prefix, *delim;
    int reserved; /* a listing of the multipart key space (rp_list_reserved) */
    int markers;  /* keep delete markers (rp_list_latest); ListObjects skips them */
    size_t page;
    rp_consistency mode;
    cursor cur[RP_MAX_SHARDS];
} lister;

static int key_cmp(const void *a, const void *b)
{
    const md_object *x = *(md_object *const *)a, *y = *(md_object *const *)b;
    return strcmp(x->key, y->key);
}

static cm_err set_after(cursor *cu, const char *key, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        return CM_ERR_NOMEM;
    memcpy(s, key, len);
    s[len] = 0;
    free(cu->after);
    cu->after = s;
    return CM_OK;
}

/* Merge the answers of a finished page op into cu (c->mu held). */
static cm_err page_merge_locked(lister *l, cursor *cu, rp_op *op)
{
    if (!rp_op_quorum_locked(op) && !(l->mode == RP_AVAILABLE && op->nok >= 1))
        return CM_ERR_UNAVAILABLE;
    const char *bound = NULL; /* smallest last key of a truncated answer */
    size_t total = 0;
    for (int i = 0; i < op->nslots; i++) {
        rp_slot *s = &op->slot[i];
        if (s->state != RP_SLOT_DONE || s->err != CM_OK)
            continue;
        total += s->nrecs;
        if (s->truncated && s->nrecs) {
            const char *last = s->recs[s->nrecs - 1].key;
            if (!bound || strcmp(last, bound) < 0)
                bound = last;
        }
    }
    /* a page must move past where it started, or refill would ask for it forever */
    if (bound && op->after && strcmp(bound, op->after) <= 0)
        return CM_ERR_CORRUPT;
    md_object **all = total ? calloc(total, sizeof(*all)) : NULL;
    if (total && !all)
        return CM_ERR_NOMEM;
    size_t na = 0;
    for (int i = 0; i < op->nslots; i++) {
        rp_slot *s = &op->slot[i];
        if (s->state != RP_SLOT_DONE || s->err != CM_OK)
            continue;
        for (size_t j = 0; j < s->nrecs; j++)
            if (!bound || strcmp(s->recs[j].key, bound) <= 0)
                all[na++] = &s->recs[j];
    }
    if (na)
        qsort(all, na, sizeof(*all), key_cmp);
    cm_err e = CM_OK;
    cu->recs = na ? calloc(na, sizeof(*cu->recs)) : NULL;
    if (na && !cu->recs)
        e = CM_ERR_NOMEM;
    for (size_t i = 0; e == CM_OK && i < na;) {
        md_object *w = all[i];
        size_t j = i + 1;
        for (; j < na && strcmp(all[j]->key, w->key) == 0; j++)
            if (md_object_resolve(w, all[j], NULL) == 1)
                w = all[j];
        i = j;
        if (w->tombstone || (w->delete_marker && !l->markers && !l->reserved))
            continue;
        cu->recs[cu->n] = *w; /* moved out of the slot */
        memset(w, 0, sizeof(*w));
        cu->n++;
    }
    cu->more = bound != NULL;
    if (e == CM_OK && bound)
        e = set_after(cu, bound, strlen(bound));
    free(all);
    return e;
}

static void cursor_drop_page(cursor *cu)
{
    for (size_t i = 0; i < cu->n; i++)
        md_object_release(&cu->recs[i]);
    free(cu->recs);
    cu->recs = NULL;
    cu->n = cu->pos = 0;
}

/* Refill every cursor whose page is used up and that has more, all at once (one round). */
static cm_err refill_round(lister *l)
{
    rp *c = l->c;
    cm_err e = CM_OK;
    int64_t deadline = rp_now_ms() + c->cfg.timeout_ms;
    for (uint32_t s = 0; s < c->cfg.nshards && e == CM_OK; s++) {
        cursor *cu = &l->cur[s];
        if (cu->pos < cu->n || !cu->more)
            continue;
        cursor_drop_page(cu);
        /* on a failure the pages already asked for are still waited for and dropped below: an
         * op left behind would keep rp_free waiting forever */
        rp_op *op = rp_op_new(c, RP_K_LIST, l->bucket, s);
        if (op) {
            op->prefix = strdup(l->prefix);
            op->after = cu->after ? strdup(cu->after) : NULL;
        }
        if (!op || !op->prefix || (cu->after && !op->after)) {
            rp_op_put(op);
            e = CM_ERR_NOMEM;
            break;
        }
        op->max = l->page;
        op->need = c->cfg.r;
        op->lenient = l->mode == RP_AVAILABLE;
        e = rp_op_start(op);
        if (e == CM_OK)
            cu->op = op;
    }
    for (uint32_t s = 0; s < c->cfg.nshards; s++) {
        cursor *cu = &l->cur[s];
        if (!cu->op)
            continue;
        rp_op_wait(cu->op, deadline);
        pthread_mutex_lock(&c->mu);
        cm_err pe = page_merge_locked(l, cu, cu->op);
        if (pe == CM_ERR_UNAVAILABLE)
            c->st.unavailable++;
        pthread_mutex_unlock(&c->mu);
        rp_op_put(cu->op);
        cu->op = NULL;
        if (e == CM_OK)
            e = pe;
    }
    return e;
}

/* Refill rounds until every cursor has a key or is at its end: a page whose records were all
 * tombstones is empty but not the end of its shard, and the merge must not go past its keys. */
static cm_err refill(lister *l)
{
    for (;;) {
        int empty = 0;
        for (uint32_t s = 0; s < l->c->cfg.nshards; s++)
            empty |= l->cur[s].pos == l->cur[s].n && l->cur[s].more;
        if (!empty)
            return CM_OK;
        cm_err e = refill_round(l);
        if (e != CM_OK)
            return e;
    }
}

/* The cursor holding the smallest key, or NULL at the end (every page used, none more). */
static cursor *smallest(lister *l)
{
    cursor *m = NULL;
    for (uint32_t s = 0; s < l->c->cfg.nshards; s++) {
        cursor *cu = &l->cur[s];
        if (cu->pos < cu->n && (!m || strcmp(cu->recs[cu->pos].key, m->recs[m->pos].key) < 0))
            m = cu;
    }
    return m;
}

/* Every cursor skips the keys starting with cp[0..len); one whose page ends inside resumes after
 * the last key cp can start. */
static cm_err skip_prefix(lister *l, const char *cp, size_t len)
{
    char *past = malloc(MD_MAX_KEY + 1);
    if (!past)
        return CM_ERR_NOMEM;
    memcpy(past, cp, len);
    memset(past + len, 0xFF, MD_MAX_KEY - len);
    past[MD_MAX_KEY] = 0;
    cm_err e = CM_OK;
    for (uint32_t s = 0; s < l->c->cfg.nshards && e == CM_OK; s++) {
        cursor *cu = &l->cur[s];
        while (cu->pos < cu->n && strncmp(cu->recs[cu->pos].key, cp, len) == 0)
            md_object_release(&cu->recs[cu->pos++]);
        if (cu->pos == cu->n && cu->more && (!cu->after || strcmp(cu->after, past) < 0))
            e = set_after(cu, past, MD_MAX_KEY);
    }
    free(past);
    return e;
}

/* Where the escaped object key of a reserved key ends (its 01 01 or 01 03, md_mpkey.c). */
static size_t reserved_key_end(const char *key)
{
    size_t i = 2, n = strlen(key);
    for (; i + 1 < n && !(key[i] == 0x01 && key[i + 1] != 0x02); i += key[i] == 0x01 ? 2 : 1)
        ;
    return i < n ? i : n;
}

/* The length of key's common prefix, 0 when it has none. In a reserved listing only the escaped
 * object key counts: a delimiter found in an upload id or a long form's hash is not the key's. */
static size_t rollup(const lister *l, const char *key)
{
    size_t plen = strlen(l->prefix);
    if (!l->delim || !*l->delim)
        return 0;
    const char *d = strstr(key + plen, l->delim);
    size_t cp = d ? (size_t)(d - key) + strlen(l->delim) : 0;
    return l->reserved && cp > reserved_key_end(key) ? 0 : cp;
}

static cm_err add_entry(md_list_result *out, size_t *cap, char *key, int is_prefix, md_object *obj)
{
    if (out->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        md_list_entry *a = realloc(out->entries, nc * sizeof(*a));
        if (!a)
            return CM_ERR_NOMEM;
        out->entries = a;
        *cap = nc;
    }
    md_list_entry *en = &out->entries[out->n++];
    memset(en, 0, sizeof(*en));
    en->key = key;
    en->is_prefix = is_prefix;
    if (obj) {
        en->obj = *obj;
        memset(obj, 0, sizeof(*obj));
        en->key = en->obj.key; /* the entry's key and the record's: one string, owned by key */
        en->obj.key = NULL;
    }
    return CM_OK;
}

static cm_err merge(lister *l, const md_list_query *q, size_t max, md_list_result *out)
{
    size_t cap = 0;
    for (;;) {
        cm_err e = refill(l);
        if (e != CM_OK)
            return e;
        cursor *m = smallest(l);
        if (!m)
            return CM_OK;
        md_object *rec = &m->recs[m->pos];
        /* Multipart records (md_mpkey.c) sort after every S3 key: an S3 listing ends there. */
        if ((uint8_t)rec->key[0] == MD_MPU_MARK && !l->reserved)
            return CM_OK;
        size_t cp = rollup(l, rec->key);
        char *k = cp ? strndup(rec->key, cp) : NULL;
        if (cp && !k)
            return CM_ERR_NOMEM;
        if (k && q->start_after && strcmp(k, q->start_after) <= 0) {
            e = skip_prefix(l, k, cp); /* returned on an earlier page */
            free(k);
        } else if (out->n == max) {
            free(k);
            out->truncated = 1;
            return CM_OK;
        } else if (k) {
            e = add_entry(out, &cap, k, 1, NULL);
            if (e == CM_OK)
                e = skip_prefix(l, k, cp);
            else
                free(k);
        } else {
            e = add_entry(out, &cap, NULL, 0, rec);
            m->pos++;
        }
        if (e != CM_OK)
            return e;
    }
}

static cm_err list_run(rp *c, const char *bucket, const md_list_query *q, int reserved, int markers,
                       md_list_result *out)
{
    memset(out, 0, sizeof(*out));
    size_t max = q->max_keys < 100000 ? q->max_keys : 100000;
    pthread_mutex_lock(&c->mu);
    c->st.lists++;
    pthread_mutex_unlock(&c->mu);
    if (max == 0 || !*bucket || strlen(bucket) > MD_BUCKET_MAX)
        return CM_OK;
    /* An S3 prefix inside the multipart key space lists nothing (no S3 key holds 0xFF). */
    if (!reserved && q->prefix && (uint8_t)q->prefix[0] == MD_MPU_MARK)
        return CM_OK;
    lister *l = calloc(1, sizeof(*l));
    if (!l)
        return CM_ERR_NOMEM;
    l->c = c;
    l->bucket = bucket;
    l->reserved = reserved;
    l->markers = markers;
    l->prefix = q->prefix ? q->prefix : "";
    l->delim = q->delimiter;
    l->mode = rp_mode(c, bucket);
    size_t page = (max + 1) * 2 / c->cfg.nshards + RP_PAGE_MIN;
    l->page = page > RP_LIST_MAX ? RP_LIST_MAX : page;
    cm_err e = CM_OK;
    for (uint32_t s = 0; s < c->cfg.nshards && e == CM_OK; s++) {
        l->cur[s].more = 1;
        if (q->start_after)
            e = set_after(&l->cur[s], q->start_after, strlen(q->start_after));
    }
    if (e == CM_OK)
        e = merge(l, q, max, out);
    if (e == CM_OK && out->truncated && out->n) {
        out->next_marker = strdup(out->entries[out->n - 1].key);
        if (!out->next_marker)
            e = CM_ERR_NOMEM;
    }
    for (uint32_t s = 0; s < c->cfg.nshards; s++) {
        cursor_drop_page(&l->cur[s]);
        free(l->cur[s].after);
    }
    free(l);
    if (e != CM_OK)
        md_list_result_release(out);
    return e;
}

cm_err rp_list_objects(rp *c, const char *bucket, const md_list_query *q, md_list_result *out)
{
    return list_run(c, bucket, q, 0, 0, out);
}

cm_err rp_list_latest(rp *c, const char *bucket, const md_list_query *q, md_list_result *out)
{
    return list_run(c, bucket, q, 0, 1, out);
}

cm_err rp_list_reserved(rp *c, const char *bucket, const md_list_query *q, md_list_result *out)
{
    return list_run(c, bucket, q, 1, 0, out);
}

/* ---- One partition's records (rp_upload.c) ---- */

cm_err rp_list_records(rp *c, const char *bucket, const char *route_key, const char *prefix,
                       const char *after, size_t max, md_object **out, size_t *n, char **next)
{
    *out = NULL, *n = 0, *next = NULL;
    if (!*bucket || strlen(bucket) > MD_BUCKET_MAX || !route_key || !*route_key)
        return CM_ERR_INVAL;
    lister *l = calloc(1, sizeof(*l)); /* page_merge_locked reads its mode */
    if (!l)
        return CM_ERR_NOMEM;
    l->c = c;
    l->mode = rp_mode(c, bucket);
    l->markers = 1; /* a key's versions (rp_vlist.c) include its delete markers */
    cursor *cu = &l->cur[0];
    rp_op *op = rp_op_new(c, RP_K_LIST, bucket, rp_shard_of(route_key, c->cfg.nshards));
    cm_err e = CM_ERR_NOMEM;
    if (op && (op->prefix = strdup(prefix)) && (!after || (op->after = strdup(after)))) {
        op->max = max < RP_LIST_MAX ? max : RP_LIST_MAX;
        op->need = c->cfg.r;
        op->lenient = l->mode == RP_AVAILABLE;
        e = rp_op_run(op);
        op = e == CM_OK ? op : NULL; /* a failed start freed it */
    }
    if (e == CM_OK) {
        pthread_mutex_lock(&c->mu);
        e = page_merge_locked(l, cu, op);
        if (e == CM_ERR_UNAVAILABLE)
            c->st.unavailable++;
        pthread_mutex_unlock(&c->mu);
    }
    if (op)
        rp_op_put(op);
    if (e == CM_OK) {
        *out = cu->recs, *n = cu->n;
        *next = cu->more ? cu->after : NULL;
        cu->recs = NULL, cu->n = 0;
        if (cu->more)
            cu->after = NULL;
    }
    cursor_drop_page(cu);
    free(cu->after);
    free(l);
    return e;
}
