/*
 * co_users.c - the users and keys document and a node following it (co_users.h).
 *
 * Changes follow co_buckets.c's loop: read the document with its mod revision, edit the decoded
 * arrays, co_cas from that revision; a conflict re-reads and redoes the edit on what is there
 * now; a lost answer (CM_ERR_UNCERTAIN) is settled by a read (the change is there: done; not
 * there: try again). The whole document is rewritten per change: users are few (an account's
 * worth), each about 250 bytes with one key, so even a thousand fit far below etcd's request
 * limit; changes are rare admin calls.
 *
 * Following (co_follow.c: the key, the watch, the cache file): co_doc hands each version to apply
 * on its watch thread; a version that decodes replaces the applied one under the mutex, is
 * written to the cache file (the last *applied* version: one that did not decode never replaces
 * it), and the owner's hook runs. A deleted document changes
 * nothing (no evidence that the users are gone).
 */
#include "co_users.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "co_int.h"

#define MOD "users"
#define DOC_VERSION 1

void co_users_doc_release(co_users_doc *d)
{
    if (!d)
        return;
    if (d->keys)
        explicit_bzero(d->keys, d->nkeys * sizeof(*d->keys));
    free(d->keys);
    free(d->users);
    memset(d, 0, sizeof(*d));
}

static int user_cmp(const void *a, const void *b)
{
    return strcmp(((const co_user *)a)->name, ((const co_user *)b)->name);
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(((const co_user_key *)a)->ak, ((const co_user_key *)b)->ak);
}

const co_user *co_users_find(const co_users_doc *d, const char *name)
{
    co_user want;
    if (!d->users || strlen(name) >= sizeof(want.name))
        return NULL;
    memcpy(want.name, name, strlen(name) + 1);
    return bsearch(&want, d->users, d->nusers, sizeof(want), user_cmp);
}

const co_user_key *co_users_find_key(const co_users_doc *d, const char *ak)
{
    co_user_key want;
    if (!d->keys || strlen(ak) >= sizeof(want.ak))
        return NULL;
    memcpy(want.ak, ak, strlen(ak) + 1);
    return bsearch(&want, d->keys, d->nkeys, sizeof(want), key_cmp);
}

/* Sorted, without duplicates, every key's user present, every field within its size: 1. */
static int doc_valid(const co_users_doc *d)
{
    for (size_t i = 0; i < d->nusers; i++) {
        size_t n = strnlen(d->users[i].name, sizeof(d->users[i].name));
        if (n == 0 || n == sizeof(d->users[i].name) ||
            (i && strcmp(d->users[i - 1].name, d->users[i].name) >= 0))
            return 0;
    }
    for (size_t i = 0; i < d->nkeys; i++) {
        const co_user_key *k = &d->keys[i];
        size_t n = strnlen(k->ak, sizeof(k->ak));
        if (n == 0 || n == sizeof(k->ak) || k->sealed_len == 0 ||
            k->sealed_len > sizeof(k->sealed) ||
            strnlen(k->user, sizeof(k->user)) == sizeof(k->user) || !co_users_find(d, k->user) ||
            (i && strcmp(d->keys[i - 1].ak, k->ak) >= 0))
            return 0;
    }
    return 1;
}

static void doc_sort(co_users_doc *d)
{
    if (d->nusers)
        qsort(d->users, d->nusers, sizeof(*d->users), user_cmp);
    if (d->nkeys)
        qsort(d->keys, d->nkeys, sizeof(*d->keys), key_cmp);
}

/* A deep copy of src into *dst (sorted like src). */
static cm_err doc_copy(const co_users_doc *src, co_users_doc *dst)
{
    memset(dst, 0, sizeof(*dst));
    if (src->nusers && !(dst->users = malloc(src->nusers * sizeof(*dst->users))))
        return CM_ERR_NOMEM;
    if (src->nkeys && !(dst->keys = malloc(src->nkeys * sizeof(*dst->keys)))) {
        co_users_doc_release(dst);
        return CM_ERR_NOMEM;
    }
    if (src->nusers)
        memcpy(dst->users, src->users, src->nusers * sizeof(*dst->users));
    if (src->nkeys)
        memcpy(dst->keys, src->keys, src->nkeys * sizeof(*dst->keys));
    dst->nusers = src->nusers;
    dst->nkeys = src->nkeys;
    return CM_OK;
}

/* ---- JSON ---- */

static json_t *user_json(const co_user *u)
{
    json_t *o = json_pack("{s:s,s:I}", "name", u->name, "created_ms", (json_int_t)u->created_ms);
    if (o && u->disabled && json_object_set_new(o, "disabled", json_true()) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *key_json(const co_user_key *k)
{
    char b64[CO_SEALED_MAX * 2];
    cm_base64_encode(k->sealed, k->sealed_len, b64);
    json_t *o = json_pack("{s:s,s:s,s:I,s:s}", "ak", k->ak, "user", k->user, "created_ms",
                          (json_int_t)k->created_ms, "secret", b64);
    if (o && k->disabled && json_object_set_new(o, "disabled", json_true()) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

cm_err co_users_encode(const co_users_doc *d, char **out, size_t *len)
{
    co_users_doc s;
    cm_err e = doc_copy(d, &s);
    json_t *users = json_array(), *keys = json_array(), *doc = NULL;
    if (e == CM_OK && (!users || !keys))
        e = CM_ERR_NOMEM;
    if (e == CM_OK) {
        doc_sort(&s);
        if (!doc_valid(&s))
            e = CM_ERR_INVAL;
    }
    for (size_t i = 0; e == CM_OK && i < s.nusers; i++)
        if (json_array_append_new(users, user_json(&s.users[i])) != 0)
            e = CM_ERR_NOMEM;
    for (size_t i = 0; e == CM_OK && i < s.nkeys; i++)
        if (json_array_append_new(keys, key_json(&s.keys[i])) != 0)
            e = CM_ERR_NOMEM;
    co_users_doc_release(&s);
    if (e == CM_OK &&
        !(doc = json_pack("{s:i,s:O,s:O}", "v", DOC_VERSION, "users", users, "keys", keys)))
        e = CM_ERR_NOMEM;
    json_decref(users);
    json_decref(keys);
    if (e == CM_OK && !(*out = json_dumps(doc, JSON_COMPACT)))
        e = CM_ERR_NOMEM;
    if (e == CM_OK)
        *len = strlen(*out);
    json_decref(doc);
    return e;
}

static int decode_user(json_t *o, co_user *u)
{
    const char *name = NULL;
    json_int_t created = 0;
    int disabled = 0;
    if (json_unpack(o, "{s:s,s:I,s?b}", "name", &name, "created_ms", &created, "disabled",
                    &disabled) != 0 ||
        !name[0] || strlen(name) >= sizeof(u->name))
        return 0;
    memcpy(u->name, name, strlen(name) + 1);
    u->created_ms = created;
    u->disabled = disabled != 0;
    return 1;
}

static int decode_key(json_t *o, co_user_key *k)
{
    const char *ak = NULL, *user = NULL, *secret = NULL;
    json_int_t created = 0;
    int disabled = 0;
    if (json_unpack(o, "{s:s,s:s,s:I,s:s,s?b}", "ak", &ak, "user", &user, "created_ms", &created,
                    "secret", &secret, "disabled", &disabled) != 0 ||
        !ak[0] || strlen(ak) >= sizeof(k->ak) || strlen(user) >= sizeof(k->user) ||
        cm_base64_decode(secret, strlen(secret), k->sealed, sizeof(k->sealed), &k->sealed_len) !=
            CM_OK)
        return 0;
    memcpy(k->ak, ak, strlen(ak) + 1);
    memcpy(k->user, user, strlen(user) + 1);
    k->created_ms = created;
    k->disabled = disabled != 0;
    return 1;
}

cm_err co_users_decode(const uint8_t *value, size_t len, co_users_doc *out)
{
    json_t *doc = json_loadb((const char *)value, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *users = NULL, *keys = NULL;
    int v = 0;
    memset(out, 0, sizeof(*out));
    if (!doc || json_unpack(doc, "{s:i,s:o,s:o}", "v", &v, "users", &users, "keys", &keys) != 0 ||
        v != DOC_VERSION || !json_is_array(users) || !json_is_array(keys)) {
        json_decref(doc);
        return CM_ERR_CORRUPT;
    }
    size_t nu = json_array_size(users), nk = json_array_size(keys);
    cm_err e = CM_OK;
    if ((nu && !(out->users = calloc(nu, sizeof(*out->users)))) ||
        (nk && !(out->keys = calloc(nk, sizeof(*out->keys)))))
        e = CM_ERR_NOMEM;
    for (size_t i = 0; e == CM_OK && i < nu; i++, out->nusers++)
        if (!decode_user(json_array_get(users, i), &out->users[i]))
            e = CM_ERR_CORRUPT;
    for (size_t i = 0; e == CM_OK && i < nk; i++, out->nkeys++)
        if (!decode_key(json_array_get(keys, i), &out->keys[i]))
            e = CM_ERR_CORRUPT;
    json_decref(doc);
    if (e == CM_OK) {
        doc_sort(out);
        if (!doc_valid(out))
            e = CM_ERR_CORRUPT;
    }
    if (e != CM_OK)
        co_users_doc_release(out);
    return e;
}

/* ---- changing it ---- */

cm_err co_users_read(co_client *c, const char *key, co_users_doc *out, int64_t *rev)
{
    co_kv kv;
    cm_err e = co_get(c, key, &kv, NULL);
    memset(out, 0, sizeof(*out));
    *rev = 0;
    if (e == CM_ERR_NOTFOUND)
        return CM_OK;
    if (e != CM_OK)
        return e;
    e = co_users_decode(kv.value, kv.len, out);
    if (e == CM_ERR_CORRUPT)
        CM_ERROR(MOD, "the users document %s at revision %lld does not parse: not changed", key,
                 (long long)kv.mod_rev);
    *rev = kv.mod_rev;
    co_kv_release(&kv);
    return e;
}

/* Remove entry i of an array of n elements of size sz. */
static void drop_at(void *arr, size_t *n, size_t i, size_t sz)
{
    uint8_t *a = arr;
    memmove(a + i * sz, a + (i + 1) * sz, (*n - i - 1) * sz);
    explicit_bzero(a + (*n - 1) * sz, sz);
    (*n)--;
}

/* k's wrapped secret is sealed[0..len). */
static int sealed_is(const co_user_key *k, const uint8_t *sealed, size_t len)
{
    return sealed && k->sealed_len == len && memcmp(k->sealed, sealed, len) == 0;
}

/* The edit of ch on d (which has room for one more user and one more key). */
static cm_err edit(const co_user_change *ch, co_users_doc *d, int *write)
{
    co_user *u = NULL;
    co_user_key *k = NULL;
    switch (ch->kind) {
    case CO_UCH_CREATE:
        if (co_users_find(d, ch->user.name) || co_users_find_key(d, ch->key.ak))
            return CM_ERR_EXISTS;
        d->users[d->nusers++] = ch->user;
        d->keys[d->nkeys++] = ch->key;
        break;
    case CO_UCH_KEY_ADD:
        if (!co_users_find(d, ch->key.user))
            return CM_ERR_NOTFOUND;
        if (co_users_find_key(d, ch->key.ak))
            return CM_ERR_EXISTS;
        d->keys[d->nkeys++] = ch->key;
        break;
    case CO_UCH_DISABLE:
        if (!(u = (co_user *)co_users_find(d, ch->name)))
            return CM_ERR_NOTFOUND;
        if (u->disabled == (ch->disabled != 0))
            return CM_OK;
        u->disabled = ch->disabled != 0;
        break;
    case CO_UCH_DELETE:
        if (!(u = (co_user *)co_users_find(d, ch->name)))
            return CM_ERR_NOTFOUND;
        for (size_t i = d->nkeys; i-- > 0;)
            if (strcmp(d->keys[i].user, ch->name) == 0)
                drop_at(d->keys, &d->nkeys, i, sizeof(*d->keys));
        drop_at(d->users, &d->nusers, (size_t)(u - d->users), sizeof(*d->users));
        break;
    case CO_UCH_KEY_DISABLE:
        if (!(k = (co_user_key *)co_users_find_key(d, ch->ak)))
            return CM_ERR_NOTFOUND;
        if (k->disabled == (ch->disabled != 0))
            return CM_OK;
        k->disabled = ch->disabled != 0;
        break;
    case CO_UCH_KEY_DELETE:
        if (!(k = (co_user_key *)co_users_find_key(d, ch->ak)))
            return CM_ERR_NOTFOUND;
        drop_at(d->keys, &d->nkeys, (size_t)(k - d->keys), sizeof(*d->keys));
        break;
    case CO_UCH_KEY_RESEAL:
        if (!(k = (co_user_key *)co_users_find_key(d, ch->key.ak)))
            return CM_ERR_NOTFOUND;
        if (sealed_is(k, ch->key.sealed, ch->key.sealed_len))
            return CM_OK;
        if (!sealed_is(k, ch->old, ch->old_len) || ch->key.sealed_len > sizeof(k->sealed))
            return CM_ERR_NOTFOUND; /* that secret is gone (the key made again meanwhile) */
        memcpy(k->sealed, ch->key.sealed, ch->key.sealed_len);
        k->sealed_len = ch->key.sealed_len;
        break;
    }
    *write = 1;
    return CM_OK;
}

/* Whether ch is in d (a lost answer settled by a read). */
static int done(const co_user_change *ch, const co_users_doc *d)
{
    const co_user *u;
    const co_user_key *k;
    switch (ch->kind) {
    case CO_UCH_CREATE:
    case CO_UCH_KEY_ADD:
    case CO_UCH_KEY_RESEAL:
        k = co_users_find_key(d, ch->key.ak);
        return k && sealed_is(k, ch->key.sealed, ch->key.sealed_len);
    case CO_UCH_DISABLE:
        return (u = co_users_find(d, ch->name)) && u->disabled == (ch->disabled != 0);
    case CO_UCH_DELETE:
        return !co_users_find(d, ch->name);
    case CO_UCH_KEY_DISABLE:
        return (k = co_users_find_key(d, ch->ak)) && k->disabled == (ch->disabled != 0);
    case CO_UCH_KEY_DELETE:
        return !co_users_find_key(d, ch->ak);
    }
    return 0;
}

/* Room for one more user and key in d. */
static cm_err grow(co_users_doc *d)
{
    co_user *u = realloc(d->users, (d->nusers + 1) * sizeof(*u));
    if (u)
        d->users = u;
    co_user_key *k = u ? realloc(d->keys, (d->nkeys + 1) * sizeof(*k)) : NULL;
    if (k)
        d->keys = k;
    return u && k ? CM_OK : CM_ERR_NOMEM;
}

cm_err co_users_change(co_client *c, const char *key, const co_user_change *ch, int64_t *rev)
{
    for (int attempt = 0; attempt < CO_USERS_RETRIES; attempt++) {
        co_users_doc d;
        int64_t read = 0, wrote = 0;
        int write = 0;
        cm_err e = co_users_read(c, key, &d, &read);
        if (e == CM_OK)
            e = grow(&d);
        if (e == CM_OK)
            e = edit(ch, &d, &write);
        if (e == CM_OK && write) {
            char *doc = NULL;
            size_t len = 0;
            e = co_users_encode(&d, &doc, &len);
            if (e == CM_OK)
                e = co_cas(c, key, doc, len, read, 0, &wrote);
            if (doc)
                explicit_bzero(doc, len);
            free(doc);
        }
        co_users_doc_release(&d);
        if (e == CM_ERR_UNCERTAIN) {
            if (co_users_read(c, key, &d, &wrote) != CM_OK)
                return CM_ERR_UNAVAILABLE;
            int in = done(ch, &d);
            co_users_doc_release(&d);
            if (!in)
                continue;
            e = CM_OK;
        }
        if (e == CM_OK && rev)
            *rev = write ? wrote : read;
        if (e != CM_ERR_CONFLICT)
            return e;
    }
    CM_WARN(MOD, "changing the users document: %d conflicting changes in a row, giving up",
            CO_USERS_RETRIES);
    return CM_ERR_CONFLICT;
}

/* ---- following it ---- */

struct co_users {
    co_follow fl; /* the key, the watch, the cache file; mu and cv (co_int.h) */
    void (*changed)(void *arg);
    void *arg;
    co_users_doc applied; /* under fl.mu */
    int64_t mod_rev;
};

static int apply(void *arg, const uint8_t *value, size_t len, int64_t mod_rev)
{
    co_users *f = arg;
    co_users_doc next;
    if (!value) {
        CM_WARN(MOD, "the users document was deleted at revision %lld: keeping the last one",
                (long long)mod_rev);
        return 0;
    }
    if (co_users_decode(value, len, &next) != CM_OK) {
        CM_WARN(MOD, "users document at revision %lld ignored: it does not parse",
                (long long)mod_rev);
        return 0;
    }
    pthread_mutex_lock(&f->fl.mu);
    co_users_doc_release(&f->applied);
    f->applied = next;
    f->mod_rev = mod_rev;
    pthread_cond_broadcast(&f->fl.cv);
    pthread_mutex_unlock(&f->fl.mu);
    CM_DEBUG(MOD, "users document at revision %lld applied: %zu users, %zu keys",
             (long long)mod_rev, next.nusers, next.nkeys);
    return 1;
}

/* After each version applied (the watch thread), and after the cached one at open. */
static void applied(void *arg)
{
    co_users *f = arg;
    if (f->changed)
        f->changed(f->arg);
}

static void cached(void *arg)
{
    CM_INFO(MOD, "starting on the cached users document until etcd answers");
    applied(arg);
}

cm_err co_users_open(const co_config *cfg, const char *cluster, const char *cache_path,
                     void (*changed)(void *arg), void *arg, co_users **out)
{
    co_users *f = calloc(1, sizeof(*f));
    if (!f)
        return CM_ERR_NOMEM;
    f->changed = changed;
    f->arg = arg;
    f->fl.what = "the users document";
    f->fl.apply = apply;
    f->fl.after = applied;
    f->fl.arg = f;
    cm_err e = co_follow_open(&f->fl, cfg, cluster, CO_KIND_USERS, cache_path, cached);
    if (e != CM_OK) {
        co_users_free(f);
        return e;
    }
    *out = f;
    return CM_OK;
}

void co_users_free(co_users *f)
{
    if (!f)
        return;
    co_follow_release(&f->fl); /* stops the watch first: no hook runs after this */
    co_users_doc_release(&f->applied);
    free(f);
}

cm_err co_users_snapshot(co_users *f, co_users_doc *out)
{
    pthread_mutex_lock(&f->fl.mu);
    cm_err e = doc_copy(&f->applied, out);
    pthread_mutex_unlock(&f->fl.mu);
    return e;
}

static int rev_applied(const void *arg, uint64_t rev)
{
    return ((const co_users *)arg)->mod_rev >= (int64_t)rev;
}

cm_err co_users_apply(co_users *f, const co_user_change *ch)
{
    co_client *c = NULL;
    int64_t rev = 0;
    cm_err e = co_client_new(&f->fl.cfg, &c);
    if (e == CM_OK)
        e = co_users_change(c, f->fl.key, ch, &rev);
    co_client_free(c);
    if (e == CM_OK && rev > 0 &&
        co_wait_version(&f->fl.mu, &f->fl.cv, CO_USERS_APPLY_WAIT_MS, rev_applied, f,
                        (uint64_t)rev) != CM_OK)
        CM_WARN(MOD, "users changed (etcd revision %lld) but not applied here within %d ms",
                (long long)rev, CO_USERS_APPLY_WAIT_MS);
    return e;
}
