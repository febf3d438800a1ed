/*
 * co_bucket_doc.c - the bucket namespace document's codec (co_bucket_doc.h): its JSON form, the
 * range checks of each setting, and the record helpers the changes share. The document is one
 * JSON object, {"v": 1, "buckets": [record...]}, the records sorted by name; a record's members
 * are listed in known_members, and any other member (a later build's setting) is kept verbatim,
 * per record (co_bucket.extra) and for the document (top), so that a rewrite by this build loses
 * nothing (coordination.md, "Members a build does not know").
 */
#include "co_bucket_doc.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"

#define DOC_VERSION 1

void co_tags_free(co_tag *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) {
        free(t[i].key);
        free(t[i].value);
    }
    free(t);
}

void co_buckets_array_free(co_bucket *b, size_t n)
{
    for (size_t i = 0; b && i < n; i++) {
        co_tags_free(b[i].tags, b[i].ntags);
        free(b[i].cors);
        free(b[i].policy);
        free(b[i].website);
        free(b[i].lifecycle);
        free(b[i].extra);
    }
    free(b);
}

cm_err co_bdoc_tags_copy(const co_tag *t, size_t n, co_tag **out)
{
    *out = NULL;
    if (!n)
        return CM_OK;
    co_tag *c = calloc(n, sizeof(*c));
    if (!c)
        return CM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!(c[i].key = strdup(t[i].key)) || !(c[i].value = strdup(t[i].value))) {
            co_tags_free(c, n);
            return CM_ERR_NOMEM;
        }
    }
    *out = c;
    return CM_OK;
}

int co_bdoc_tags_equal(const co_tag *a, size_t na, const co_tag *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i].key, b[i].key) != 0 || strcmp(a[i].value, b[i].value) != 0)
            return 0;
    }
    return 1;
}

co_bucket co_bdoc_untagged(const co_bucket *b)
{
    co_bucket c = *b;
    c.tags = NULL;
    c.ntags = 0;
    c.cors = NULL;
    c.policy = NULL;
    c.website = NULL;
    c.lifecycle = NULL;
    c.extra = NULL;
    return c;
}

int co_bdoc_str_equal(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* The "tags" member of a record (NULL when it has none). */
static json_t *tags_json(const co_bucket *b, cm_err *e)
{
    json_t *arr = json_array();
    if (!arr) {
        *e = CM_ERR_NOMEM;
        return NULL;
    }
    for (size_t i = 0; i < b->ntags; i++) {
        json_t *pair = json_pack("[s,s]", b->tags[i].key, b->tags[i].value);
        if (!pair || json_array_append_new(arr, pair) != 0) {
            json_decref(arr);
            *e = CM_ERR_NOMEM;
            return NULL;
        }
    }
    return arr;
}

/* Decode a "tags" member into b; 0 when it is not a valid one. */
static int decode_tags(json_t *arr, co_bucket *b)
{
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n > CO_BUCKET_TAGS_MAX)
        return 0;
    if (!n)
        return 1;
    if (!(b->tags = calloc(n, sizeof(*b->tags))))
        return 0;
    b->ntags = n;
    for (size_t i = 0; i < n; i++) {
        const char *k = NULL, *v = NULL;
        if (json_unpack(json_array_get(arr, i), "[s,s]", &k, &v) != 0 || !k[0] ||
            strlen(k) > CO_TAG_KEY_MAX || strlen(v) > CO_TAG_VALUE_MAX)
            return 0;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(b->tags[j].key, k) == 0)
                return 0; /* a key twice */
        }
        if (!(b->tags[i].key = strdup(k)) || !(b->tags[i].value = strdup(v)))
            return 0;
    }
    return 1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const co_bucket *)a)->name, ((const co_bucket *)b)->name);
}

static const char *const consistency_names[] = {"strong", "available"};

const char *co_bdoc_consistency_name(uint8_t c)
{
    return c < CM_ARRAY_LEN(consistency_names) ? consistency_names[c] : NULL;
}

int co_bdoc_access_valid(unsigned acl, unsigned pab, unsigned own)
{
    return acl <= CO_BUCKET_ACL_MAX && !(pab & ~CO_BUCKET_PAB_BITS) &&
           own <= CO_BUCKET_OWNERSHIP_MAX;
}

int co_bdoc_sse_valid(unsigned sse, unsigned bucket_key)
{
    return sse <= 1 && bucket_key <= sse;
}

int co_bdoc_lock_valid(unsigned versioning, unsigned lock, unsigned mode, unsigned unit,
                       uint64_t period)
{
    if (!lock)
        return !mode && !unit && !period;
    if (lock != 1 || versioning != 1 || mode > 2)
        return 0;
    if (!mode)
        return !unit && !period;
    return (unit == 1 && period >= 1 && period <= 36500) ||
           (unit == 2 && period >= 1 && period <= 100);
}

/* The access, default encryption and Object Lock members of b into rec (each left out when 0 /
 * NULL). */
static cm_err access_json(const co_bucket *b, json_t *rec)
{
    const char *names[] = {"acl",  "pab",       "ownership", "sse", "sse_bucket_key",
                           "lock", "lock_mode", "lock_unit"};
    const uint8_t v[] = {b->acl,  b->pab,       b->ownership, b->sse, b->sse_bucket_key,
                         b->lock, b->lock_mode, b->lock_unit};
    if (!co_bdoc_access_valid(b->acl, b->pab, b->ownership) ||
        !co_bdoc_sse_valid(b->sse, b->sse_bucket_key) ||
        !co_bdoc_lock_valid(b->versioning, b->lock, b->lock_mode, b->lock_unit, b->lock_period) ||
        (b->policy && strlen(b->policy) > CO_BUCKET_POLICY_MAX))
        return CM_ERR_INVAL;
    if (b->lock_period && json_object_set_new(rec, "lock_period", json_integer(b->lock_period)))
        return CM_ERR_NOMEM;
    for (size_t i = 0; i < CM_ARRAY_LEN(names); i++)
        if (v[i] && json_object_set_new(rec, names[i], json_integer(v[i])) != 0)
            return CM_ERR_NOMEM;
    if (b->policy && json_object_set_new(rec, "policy", json_string(b->policy)) != 0)
        return CM_ERR_NOMEM;
    return CM_OK;
}

/* The "website" member of b into rec (left out when none). */
static cm_err website_json(const co_bucket *b, json_t *rec)
{
    if (!b->website)
        return CM_OK;
    if (strlen(b->website) > CO_BUCKET_WEBSITE_MAX)
        return CM_ERR_INVAL;
    return json_object_set_new(rec, "website", json_string(b->website)) != 0 ? CM_ERR_NOMEM : CM_OK;
}

/* The "lifecycle" member of b into rec (left out when none). */
static cm_err lifecycle_json(const co_bucket *b, json_t *rec)
{
    if (!b->lifecycle)
        return CM_OK;
    if (strlen(b->lifecycle) > CO_BUCKET_LIFECYCLE_MAX)
        return CM_ERR_INVAL;
    return json_object_set_new(rec, "lifecycle", json_string(b->lifecycle)) != 0 ? CM_ERR_NOMEM
                                                                                 : CM_OK;
}

/* Decode the access, default encryption and Object Lock members of rec into b (whose versioning
 * is decoded); 0 when one is not valid. */
static int decode_access(json_t *rec, co_bucket *b)
{
    int acl = 0, pab = 0, own = 0, sse = 0, bk = 0, lock = 0, lmode = 0, lunit = 0;
    json_int_t lperiod = 0;
    const char *policy = NULL;
    if (json_unpack(rec, "{s?i,s?i,s?i,s?s,s?i,s?i}", "acl", &acl, "pab", &pab, "ownership", &own,
                    "policy", &policy, "sse", &sse, "sse_bucket_key", &bk) != 0 ||
        json_unpack(rec, "{s?i,s?i,s?i,s?I}", "lock", &lock, "lock_mode", &lmode, "lock_unit",
                    &lunit, "lock_period", &lperiod) != 0 ||
        acl < 0 || pab < 0 || own < 0 || sse < 0 || bk < 0 || lock < 0 || lmode < 0 || lunit < 0 ||
        lperiod < 0 || !co_bdoc_access_valid((unsigned)acl, (unsigned)pab, (unsigned)own) ||
        !co_bdoc_sse_valid((unsigned)sse, (unsigned)bk) ||
        !co_bdoc_lock_valid(b->versioning, (unsigned)lock, (unsigned)lmode, (unsigned)lunit,
                            (uint64_t)lperiod))
        return 0;
    b->lock = (uint8_t)lock;
    b->lock_mode = (uint8_t)lmode;
    b->lock_unit = (uint8_t)lunit;
    b->lock_period = (uint32_t)lperiod;
    b->acl = (uint8_t)acl;
    b->pab = (uint8_t)pab;
    b->ownership = (uint8_t)own;
    b->sse = (uint8_t)sse;
    b->sse_bucket_key = (uint8_t)bk;
    return !policy || (strlen(policy) <= CO_BUCKET_POLICY_MAX && (b->policy = strdup(policy)));
}

/*
 * Every member a record of this build may carry. A member the encoder writes must be named here:
 * one that is not would also be kept as unknown (extra) and come back after it is removed.
 */
static const char *const known_members[] = {
    "name",    "created_ms", "owner", "versioning", "id",        "consistency", "tags",
    "cors",    "acl",        "pab",   "ownership",  "policy",    "sse",         "sse_bucket_key",
    "website", "lifecycle",  "lock",  "lock_mode",  "lock_unit", "lock_period"};

static int known_member(const char *name, const char *const *known, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, known[i]) == 0)
            return 1;
    return 0;
}

/* The members of obj not in known, as a compact JSON object into *out (NULL: none); 0 when out
 * of memory. */
static int unknown_members(json_t *obj, const char *const *known, size_t nknown, char **out)
{
    const char *name;
    json_t *v, *rest = NULL;
    *out = NULL;
    json_object_foreach(obj, name, v)
    {
        if (known_member(name, known, nknown))
            continue;
        if ((!rest && !(rest = json_object())) || json_object_set(rest, name, v) != 0) {
            json_decref(rest);
            return 0;
        }
    }
    if (rest)
        *out = json_dumps(rest, JSON_COMPACT);
    json_decref(rest);
    return !rest || *out;
}

/* Add the members of extra (unknown_members' JSON; NULL: none) to obj, those obj has left alone.
 */
static cm_err add_unknown(json_t *obj, const char *extra)
{
    json_t *rest = extra ? json_loads(extra, 0, NULL) : NULL;
    if (extra && !json_is_object(rest)) {
        json_decref(rest);
        return CM_ERR_INVAL;
    }
    int bad = rest && json_object_update_missing(obj, rest) != 0;
    json_decref(rest);
    return bad ? CM_ERR_NOMEM : CM_OK;
}

cm_err co_bdoc_encode(const co_bucket *b, size_t n, const char *top, char **out, size_t *len)
{
    co_bucket *sorted = n ? malloc(n * sizeof(*sorted)) : NULL;
    json_t *arr = json_array(), *doc = NULL;
    cm_err e = (n && !sorted) || !arr ? CM_ERR_NOMEM : CM_OK;
    if (e == CM_OK && n) {
        memcpy(sorted, b, n * sizeof(*sorted));
        qsort(sorted, n, sizeof(*sorted), by_name);
    }
    for (size_t i = 0; i < n && e == CM_OK; i++) {
        char id[17];
        snprintf(id, sizeof(id), "%016" PRIx64, sorted[i].id);
        const char *mode = co_bdoc_consistency_name(sorted[i].consistency);
        json_t *rec = !mode
                          ? NULL
                          : json_pack("{s:s,s:I,s:s,s:i,s:s}", "name", sorted[i].name, "created_ms",
                                      (json_int_t)sorted[i].created_ms, "owner", sorted[i].owner,
                                      "versioning", (int)sorted[i].versioning, "id", id);
        if (!mode)
            e = CM_ERR_INVAL;
        else if (!rec)
            e = CM_ERR_NOMEM;
        /* strong is left out: documents from before the field existed mean strong */
        else if (sorted[i].consistency != CO_CONSISTENCY_STRONG &&
                 json_object_set_new(rec, "consistency", json_string(mode)) != 0) {
            json_decref(rec);
            e = CM_ERR_NOMEM;
        } else if (sorted[i].ntags > CO_BUCKET_TAGS_MAX) {
            json_decref(rec);
            e = CM_ERR_INVAL;
        } else if (sorted[i].ntags &&
                   json_object_set_new(rec, "tags", tags_json(&sorted[i], &e)) != 0) {
            json_decref(rec); /* set_new took the array, or it is NULL and e says why */
            e = e == CM_OK ? CM_ERR_NOMEM : e;
        } else if (sorted[i].cors &&
                   (strlen(sorted[i].cors) > CO_BUCKET_CORS_MAX ||
                    json_object_set_new(rec, "cors", json_string(sorted[i].cors)) != 0)) {
            json_decref(rec);
            e = strlen(sorted[i].cors) > CO_BUCKET_CORS_MAX ? CM_ERR_INVAL : CM_ERR_NOMEM;
        } else if ((e = access_json(&sorted[i], rec)) != CM_OK ||
                   (e = website_json(&sorted[i], rec)) != CM_OK ||
                   (e = lifecycle_json(&sorted[i], rec)) != CM_OK ||
                   (e = add_unknown(rec, sorted[i].extra)) != CM_OK) {
            json_decref(rec);
        } else if (json_array_append_new(arr, rec) != 0) /* takes rec, also on failure */
            e = CM_ERR_NOMEM;
    }
    free(sorted);
    if (e == CM_OK && !(doc = json_pack("{s:i,s:o}", "v", DOC_VERSION, "buckets", arr)))
        e = CM_ERR_NOMEM;
    arr = e == CM_OK ? NULL : arr; /* owned by doc now */
    json_decref(arr);
    if (e == CM_OK)
        e = add_unknown(doc, top);
    if (e == CM_OK && !(*out = json_dumps(doc, JSON_COMPACT)))
        e = CM_ERR_NOMEM;
    if (e == CM_OK)
        *len = strlen(*out);
    json_decref(doc);
    return e;
}

cm_err co_buckets_encode(const co_bucket *b, size_t n, char **out, size_t *len)
{
    return co_bdoc_encode(b, n, NULL, out, len);
}

/* One record; 0 when it is not a valid one (its tags, if any, are b's to free either way). */
static int decode_one(json_t *rec, co_bucket *b)
{
    const char *name = NULL, *owner = NULL, *id = NULL, *mode = "strong", *cors = NULL;
    const char *website = NULL, *lifecycle = NULL;
    json_int_t created = 0;
    int versioning = 0;
    json_t *tags = NULL;
    char *end;
    memset(b, 0, sizeof(*b));
    if (json_unpack(rec, "{s:s,s:I,s:s,s?i,s:s,s?s,s?o,s?s}", "name", &name, "created_ms", &created,
                    "owner", &owner, "versioning", &versioning, "id", &id, "consistency", &mode,
                    "tags", &tags, "cors", &cors) != 0 ||
        !name[0] || strlen(name) >= sizeof(b->name) || strlen(owner) >= sizeof(b->owner) ||
        versioning < 0 || versioning > 2 || strlen(id) != 16)
        return 0;
    if (tags && !decode_tags(tags, b))
        return 0;
    if (cors && (strlen(cors) > CO_BUCKET_CORS_MAX || !(b->cors = strdup(cors))))
        return 0;
    if (json_unpack(rec, "{s?s}", "website", &website) != 0 ||
        (website && (strlen(website) > CO_BUCKET_WEBSITE_MAX || !(b->website = strdup(website)))))
        return 0;
    if (json_unpack(rec, "{s?s}", "lifecycle", &lifecycle) != 0 ||
        (lifecycle &&
         (strlen(lifecycle) > CO_BUCKET_LIFECYCLE_MAX || !(b->lifecycle = strdup(lifecycle)))))
        return 0;
    b->versioning = (uint8_t)versioning; /* decode_access checks the lock against it */
    if (!decode_access(rec, b))
        return 0;
    while (b->consistency < CM_ARRAY_LEN(consistency_names) &&
           strcmp(mode, consistency_names[b->consistency]) != 0)
        b->consistency++;
    if (b->consistency == CM_ARRAY_LEN(consistency_names))
        return 0; /* a mode this node does not know: it must not guess one */
    errno = 0;
    b->id = strtoull(id, &end, 16);
    if (errno || *end)
        return 0;
    memcpy(b->name, name, strlen(name) + 1);
    memcpy(b->owner, owner, strlen(owner) + 1);
    b->created_ms = created;
    return unknown_members(rec, known_members, CM_ARRAY_LEN(known_members), &b->extra);
}

cm_err co_bdoc_decode(const uint8_t *value, size_t len, co_bucket **out, size_t *n, char **top)
{
    static const char *const doc_members[] = {"v", "buckets"};
    json_t *doc = json_loadb((const char *)value, len, JSON_REJECT_DUPLICATES, NULL), *arr = NULL;
    int v = 0;
    *out = NULL;
    *n = 0;
    if (!doc || json_unpack(doc, "{s:i,s:o}", "v", &v, "buckets", &arr) != 0 || v != DOC_VERSION ||
        !json_is_array(arr)) {
        json_decref(doc);
        return CM_ERR_CORRUPT;
    }
    size_t count = json_array_size(arr);
    co_bucket *b = count ? calloc(count, sizeof(*b)) : NULL;
    cm_err e = count && !b ? CM_ERR_NOMEM : CM_OK;
    for (size_t i = 0; i < count && e == CM_OK; i++)
        if (!decode_one(json_array_get(arr, i), &b[i]))
            e = CM_ERR_CORRUPT;
    if (e == CM_OK && top && !unknown_members(doc, doc_members, CM_ARRAY_LEN(doc_members), top))
        e = CM_ERR_NOMEM;
    json_decref(doc);
    if (e == CM_OK && count)
        qsort(b, count, sizeof(*b), by_name);
    for (size_t i = 1; i < count && e == CM_OK; i++)
        if (strcmp(b[i - 1].name, b[i].name) == 0)
            e = CM_ERR_CORRUPT;
    if (e != CM_OK) {
        co_buckets_array_free(b, count);
        if (top) {
            free(*top);
            *top = NULL;
        }
        return e;
    }
    *out = b;
    *n = count;
    return CM_OK;
}

cm_err co_buckets_decode(const uint8_t *value, size_t len, co_bucket **out, size_t *n)
{
    return co_bdoc_decode(value, len, out, n, NULL);
}

const co_bucket *co_buckets_find(const co_bucket *b, size_t n, const char *name)
{
    co_bucket key;
    if (!b || strlen(name) >= sizeof(key.name))
        return NULL;
    memcpy(key.name, name, strlen(name) + 1);
    return bsearch(&key, b, n, sizeof(*b), by_name);
}
