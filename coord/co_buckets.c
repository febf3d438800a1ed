/*
 * co_buckets.c - the bucket namespace document and a node following it (co_buckets.h).
 *
 * Changes (add, remove, set a consistency, the tags, the CORS, website or lifecycle configuration,
 * the policy, the access settings, the versioning state, the default encryption, the lock: one
 * loop, change_doc, with an edit per kind): read the document with its mod revision, change the
 * decoded array, write it back with co_cas from that revision. A conflict means another node
 * changed it in between: read again and redo the change on what is there now (so a racing creator
 * of the same name sees it and gets CM_ERR_EXISTS). A lost answer (CM_ERR_UNCERTAIN) is settled by
 * a read: our record (same id) is there after an add, the name is gone after a remove, the bucket
 * has the mode after a consistency change. The document holds every bucket, so one change costs a
 * write of the whole list: fine for thousands of buckets (S3's default limit per account is 100,
 * its maximum 10,000: about 1 MB at 100 bytes a record, etcd's default request limit is 1.5 MiB);
 * a much larger namespace would move to one key per bucket. Members this build does not know (a
 * later build's settings, met in a rolling upgrade) are kept, per record (co_bucket.extra) and
 * for the document, and written back unchanged by every change.
 *
 * The document's JSON form and the checks of each setting are co_bucket_doc.c's.
 *
 * Following (co_follow.c: the key, the watch, the cache file): co_doc (no cache of its own)
 * hands each version to apply on its watch thread; the version is decoded, compared with the
 * applied one (both sorted by name: one merge pass gives what was added and removed), the hooks
 * run, then it becomes the applied version under the mutex and is written to the cache file (the
 * last *applied* version, as co_layout keeps its own: a version that did not decode must not
 * replace it). A deleted document changes nothing.
 *
 * Fresh lookups (co_buckets_lookup_fresh, for a name the applied version lacks): an etcd read is
 * shared by every call that arrived before it started (a call waits for the next read to start
 * and end, so a bucket created through another node before the call is found), one read at a
 * time, at most one per CO_BUCKETS_FRESH_GAP_MS: a flood of unknown names costs etcd a bounded
 * rate of reads, not one each. The newest read's records are kept (one document's worth) with
 * its revision, and every read from memory (the record, its tags and strings) answers a name the
 * applied version lacks from them while their revision is newer than the applied one (known): a
 * bucket found that way has its settings (versioning, lock, access, policy) on this node before
 * the watch delivers it, not the defaults of a bucket without them. Once the applied version
 * reaches that revision, it alone answers (a bucket removed since is not brought back).
 */
#include "co_buckets.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_log.h"
#include "cm_util.h"
#include "co_bucket_doc.h"
#include "co_int.h"

#define MOD "buckets"

/* ---- changing it ---- */

/* co_buckets_read, also giving the document's unknown members into *top (NULL: none) when top is
 * non-NULL. */
static cm_err read_doc(co_client *c, const char *key, co_bucket **out, size_t *n, int64_t *rev,
                       char **top)
{
    co_kv kv;
    cm_err e = co_get(c, key, &kv, NULL);
    *out = NULL;
    *n = 0;
    *rev = 0;
    if (e == CM_ERR_NOTFOUND)
        return CM_OK; /* no document yet: no buckets, and a create writes it from revision 0 */
    if (e != CM_OK)
        return e;
    e = co_bdoc_decode(kv.value, kv.len, out, n, top);
    if (e == CM_ERR_CORRUPT)
        CM_ERROR(MOD, "the bucket document %s at revision %lld does not parse: not changed", key,
                 (long long)kv.mod_rev);
    *rev = kv.mod_rev;
    co_kv_release(&kv);
    return e;
}

cm_err co_buckets_read(co_client *c, const char *key, co_bucket **out, size_t *n, int64_t *rev)
{
    return read_doc(c, key, out, n, rev, NULL);
}

/*
 * One change of the document. edit changes the decoded records in place (b has room for one
 * more) and sets *write when there is something to write back; any answer but CM_OK ends the
 * change with it. done tells, from a fresh read, whether the change is in the document.
 */
typedef struct change change;
struct change {
    cm_err (*edit)(change *ch, co_bucket *b, size_t *n, int *write);
    int (*done)(const change *ch, const co_bucket *found);
    const char *what; /* "creating", ... for the log */
    const char *name;
    const co_bucket *want; /* add */
    co_bucket *have;       /* add: the record there (NULL: not wanted) */
    uint8_t consistency;   /* set_consistency: the mode wanted, and the one it had */
    uint8_t was;
    const co_tag *tags; /* set_tags: the tags wanted */
    size_t ntags;
    const char *cors;            /* set_string: the string wanted (NULL: none) */
    int member;                  /* set_string: which string (STR_*) */
    uint8_t acl, pab, ownership; /* set_access: the settings wanted, */
    unsigned fields;             /* those of them to set (CO_ACCESS_*) */
    uint8_t versioning;          /* set_versioning: the state wanted */
    uint8_t sse, sse_bucket_key; /* set_sse: the default encryption wanted */
    /* set_lock: the default retention wanted */
    uint8_t lock_mode, lock_unit;
    uint32_t lock_period;
};

/* The outcome of a change whose answer was lost: 1 done, 0 not, -1 unreadable. */
static int settled(co_client *c, const char *key, const change *ch, int64_t *rev)
{
    co_bucket *b = NULL;
    size_t n = 0;
    if (co_buckets_read(c, key, &b, &n, rev) != CM_OK)
        return -1;
    int done = ch->done(ch, co_buckets_find(b, n, ch->name));
    co_buckets_array_free(b, n);
    return done;
}

/*
 * Read, edit, write back from the revision read; a conflict redoes the change on what is there
 * now. *new_rev (when non-NULL) receives the revision written (or read, when there was nothing
 * to write or a lost answer was settled).
 */
static cm_err change_doc(co_client *c, const char *key, change *ch, int64_t *new_rev)
{
    for (int attempt = 0; attempt < CO_BUCKETS_RETRIES; attempt++) {
        co_bucket *b = NULL, *grown;
        size_t n = 0;
        int64_t rev = 0, wrote = 0;
        int write = 0;
        char *top = NULL; /* the document's unknown members: written back as read */
        cm_err e = read_doc(c, key, &b, &n, &rev, &top);
        if (e != CM_OK)
            return e;
        if (!(grown = realloc(b, (n + 1) * sizeof(*b)))) {
            co_buckets_array_free(b, n);
            free(top);
            return CM_ERR_NOMEM;
        }
        e = ch->edit(ch, grown, &n, &write);
        if (e == CM_OK && write) {
            char *doc = NULL;
            size_t len = 0;
            e = co_bdoc_encode(grown, n, top, &doc, &len);
            if (e == CM_OK)
                e = co_cas(c, key, doc, len, rev, 0, &wrote);
            free(doc);
        }
        co_buckets_array_free(grown, n);
        free(top);
        if (e == CM_ERR_UNCERTAIN) {
            int s = settled(c, key, ch, &wrote);
            if (s < 0)
                return CM_ERR_UNAVAILABLE;
            if (!s)
                continue; /* not written: try again (a racing change will be seen) */
            e = CM_OK;
        }
        if (e == CM_OK && new_rev)
            *new_rev = write ? wrote : rev;
        if (e != CM_ERR_CONFLICT)
            return e;
    }
    CM_WARN(MOD, "%s bucket %s: %d conflicting changes in a row, giving up", ch->what, ch->name,
            CO_BUCKETS_RETRIES);
    return CM_ERR_CONFLICT;
}

static cm_err add_edit(change *ch, co_bucket *b, size_t *n, int *write)
{
    const co_bucket *f = co_buckets_find(b, *n, ch->name);
    if (f) {
        if (ch->have)
            *ch->have = co_bdoc_untagged(f);
        return CM_ERR_EXISTS;
    }
    b[(*n)++] = co_bdoc_untagged(ch->want); /* the encoder sorts; a new bucket has no tags */
    *write = 1;
    return CM_OK;
}

/* Ours (the same id) is there: two creations by one owner are told apart by it. */
static int add_done(const change *ch, const co_bucket *found)
{
    return found && found->id == ch->want->id;
}

static cm_err add_rev(co_client *c, const char *key, const co_bucket *want, co_bucket *have,
                      int64_t *rev)
{
    change ch = {.edit = add_edit,
                 .done = add_done,
                 .what = "creating",
                 .name = want->name,
                 .want = want,
                 .have = have};
    return change_doc(c, key, &ch, rev);
}

cm_err co_buckets_add(co_client *c, const char *key, const co_bucket *want, co_bucket *have)
{
    return add_rev(c, key, want, have, NULL);
}

static cm_err remove_edit(change *ch, co_bucket *b, size_t *n, int *write)
{
    co_bucket *f = (co_bucket *)co_buckets_find(b, *n, ch->name);
    if (!f)
        return CM_ERR_NOTFOUND;
    size_t at = (size_t)(f - b);
    co_tags_free(f->tags, f->ntags);
    free(f->cors);
    free(f->policy);
    free(f->website);
    free(f->lifecycle);
    free(f->extra);
    memmove(b + at, b + at + 1, (*n - at - 1) * sizeof(*b));
    (*n)--;
    *write = 1;
    return CM_OK;
}

static int remove_done(const change *ch, const co_bucket *found)
{
    (void)ch;
    return !found;
}

cm_err co_buckets_remove(co_client *c, const char *key, const char *name)
{
    change ch = {.edit = remove_edit, .done = remove_done, .what = "deleting", .name = name};
    return change_doc(c, key, &ch, NULL);
}

static cm_err consistency_edit(change *ch, co_bucket *b, size_t *n, int *write)
{
    co_bucket *f = (co_bucket *)co_buckets_find(b, *n, ch->name);
    if (!f)
        return CM_ERR_NOTFOUND;
    ch->was = f->consistency;
    *write = f->consistency != ch->consistency;
    f->consistency = ch->consistency;
    return CM_OK;
}

static int consistency_done(const change *ch, const co_bucket *found)
{
    return found && found->consistency == ch->consistency;
}

cm_err co_buckets_set_consistency(co_client *c, const char *key, const char *name,
                                  uint8_t consistency, uint8_t *was, int64_t *rev)
{
    change ch = {.edit = consistency_edit,
                 .done = consistency_done,
                 .what = "changing the consistency of",
                 .name = name,
                 .consistency = consistency};
    if (!co_bdoc_consistency_name(consistency))
        return CM_ERR_INVAL;
    cm_err e = change_doc(c, key, &ch, rev);
    if (e == CM_OK && was)
        *was = ch.was;
    return e;
}

static cm_err tags_edit(change *ch, co_bucket *b, size_t *n, int *write)
{
    co_bucket *f = (co_bucket *)co_buckets_find(b, *n, ch->name);
    co_tag *copy;
    if (!f)
        return CM_ERR_NOTFOUND;
    if (co_bdoc_tags_equal(f->tags, f->ntags, ch->tags, ch->ntags))
        return CM_OK;
    cm_err e = co_bdoc_tags_copy(ch->tags, ch->ntags, &copy);
    if (e != CM_OK)
        return e;
    co_tags_free(f->tags, f->ntags);
    f->tags = copy;
    f->ntags = ch->ntags;
    *write = 1;
    return CM_OK;
}

static int tags_done(const change *ch, const co_bucket *found)
{
    return found && co_bdoc_tags_equal(found->tags, found->ntags, ch->tags, ch->ntags);
}

cm_err co_buckets_set_tags(co_client *c, const char *key, const char *name, const co_tag *tags,
                           size_t n, int64_t *rev)
{
    change ch = {.edit = tags_edit,
                 .done = tags_done,
                 .what = "tagging",
                 .name = name,
                 .tags = tags,
                 .ntags = n};
    for (size_t i = 0; i < n; i++) {
        if (!tags[i].key[0] || strlen(tags[i].key) > CO_TAG_KEY_MAX ||
            strlen(tags[i].value) > CO_TAG_VALUE_MAX)
            return CM_ERR_INVAL;
    }
    if (n > CO_BUCKET_TAGS_MAX)
        return CM_ERR_INVAL;
    return change_doc(c, key, &ch, rev);
}

/* The string members a cors_edit changes. */
enum { STR_CORS, STR_POLICY, STR_WEBSITE, STR_LIFECYCLE };

static char **str_member(int member, co_bucket *b)
{
    return member == STR_POLICY      ? &b->policy
           : member == STR_WEBSITE   ? &b->website
           : member == STR_LIFECYCLE ? &b->lifecycle
                                     : &b->cors;
}

static cm_err cors_edit(change *ch, co_bucket *b, size_t *n, int *write)
{
    co_bucket *f = (co_bucket *)co_buckets_find(b, *n, ch->name);
    char *copy = NULL;
    if (!f)
        return CM_ERR_NOTFOUND;
    char **member = str_member(ch->member, f);
    if (co_bdoc_str_equal(*member, ch->cors))
        return CM_OK;
    if (ch->cors && !(copy = strdup(ch->cors)))
        return CM_ERR_NOMEM;
    free(*member);
    *member = copy;
    *write = 1;
    return CM_OK;
}

static int cors_done(const change *ch, const co_bucket *found)
{
    return found && co_bdoc_str_equal(*str_member(ch->member, (co_bucket *)found), ch->cors);
}

/* Set a string member (STR_*): the same edit on each. */
static cm_err set_string(co_client *c, const char *key, const char *name, const char *value,
                         int member, int64_t *rev)
{
    static const char *const what[] = {"setting the CORS configuration of", "setting the policy of",
                                       "setting the website configuration of",
                                       "setting the lifecycle configuration of"};
    static const size_t max[] = {CO_BUCKET_CORS_MAX, CO_BUCKET_POLICY_MAX, CO_BUCKET_WEBSITE_MAX,
                                 CO_BUCKET_LIFECYCLE_MAX};
    change ch = {.edit = cors_edit,
                 .done = cors_done,
                 .what = what[member],
                 .name = name,
                 .cors = value,
                 .member = member};
    if (value && strlen(value) > max[member])
        return CM_ERR_TOOBIG;
    return change_doc(c, key, &ch, rev);
}

cm_err co_buckets_set_cors(co_client *c, const char *key, const char *name, const char *cors,
                           int64_t *rev)
{
    return set_string(c, key, name, cors, STR_CORS, rev);
}

cm_err co_buckets_set_policy(co_client *c, const char *key, const char *name, const char *policy,
                             int64_t *rev)
{
    return set_string(c, key, name, policy, STR_POLICY, rev);
}

cm_err co_buckets_set_website(co_client *c, const char *key, const char *name, const char *xml,
                              int64_t *rev)
{
    return set_string(c, key, name, xml, STR_WEBSITE, rev);
}

cm_err co_buckets_set_lifecycle(co_client *c, const char *key, const char *name, const char *xml,
                                int64_t *rev)
{
    return set_string(c, key, name, xml, STR_LIFECYCLE, rev);
}

/* The settings of ch->fields are those wanted in f. */
static int access_same(const change *ch, const co_bucket *f)
{
    return (!(ch->fields & CO_ACCESS_ACL) || f->acl == ch->acl) &&
           (!(ch->fields & CO_ACCESS_PAB) || f->pab == ch->pab) &&
           (!(ch->fields & CO_ACCESS_OWNERSHIP) || f->ownership == ch->ownership);
}

static cm_err access_edit(change *ch, co_bucket *b, size_t *n, int *write)
{
    co_bucket *f = (co_bucket *)co_buckets_find(b, *n, ch->name);
    if (!f)
        return CM_ERR_NOTFOUND;
    *write = !access_same(ch, f);
    if (ch->fields & CO_ACCESS_ACL)
        f->acl = ch->acl;
    if (ch->fields & CO_ACCESS_PAB)
        f->pab = ch->pab;
    if (ch->fields & CO_ACCESS_OWNERSHIP)
        f->ownership = ch->ownership;
    return CM_OK;
}

static int access_done(const change *ch, const co_bucket *found)
{
    return found && access_same(ch, found);
}

cm_err co_buckets_set_access(co_client *c, const char *key, const char *name, uint8_t acl,
                             uint8_t pab, uint8_t ownership, unsigned fields, int64_t *rev)
{
    change ch = {.edit = access_edit,
                 .done = access_done,
                 .what = "setting the access of",
                 .name = name,
                 .acl = acl,
                 .pab = pab,
                 .ownership = ownership,
                 .fields = fields};
    if (!co_bdoc_access_valid(acl, pab, ownership))
        return CM_ERR_INVAL;
    return change_doc(c, key, &ch, rev);
}

static int sse_same(const change *ch, const co_bucket *f)
{
    return f->sse == ch->sse && f->sse_bucket_key == ch->sse_bucket_key;
}

static cm_err sse_edit(change *ch, co_bucket *b, size_t *n, int *write)
{
    co_bucket *f = (co_bucket *)co_buckets_find(b, *n, ch->name);
    if (!f)
        return CM_ERR_NOTFOUND;
    *write = !sse_same(ch, f);
    f->sse = ch->sse;
    f->sse_bucket_key = ch->sse_bucket_key;
    return CM_OK;
}

static int sse_done(const change *ch, const co_bucket *found)
{
    return found && sse_same(ch, found);
}

cm_err co_buckets_set_sse(co_client *c, const char *key, const char *name, uint8_t sse,
                          uint8_t bucket_key, int64_t *rev)
{
    change ch = {.edit = sse_edit,
                 .done = sse_done,
                 .what = "setting the default encryption of",
                 .name = name,
                 .sse = sse,
                 .sse_bucket_key = bucket_key};
    if (!co_bdoc_sse_valid(sse, bucket_key))
        return CM_ERR_INVAL;
    return change_doc(c, key, &ch, rev);
}

/* ---- following it ---- */

struct co_buckets {
    co_follow fl; /* the key, the watch, the cache file; mu and cv (co_int.h) */
    co_buckets_hooks hooks;
    co_bucket *applied; /* sorted; NULL when empty */
    size_t napplied;    /* guarded by fl.mu, like st */
    co_buckets_status st;
    /* co_buckets_lookup_fresh's shared reads, under fmu: fstarted reads started, fdone ended (the
     * newest one's error in ferr), one at a time (fbusy), the last one started at flast_ms
     * (monotonic). The newest successful read's records (sorted) and revision: fresh, nfresh and
     * fresh_rev, under fl.mu (known). Lock order: fmu, then fl.mu. */
    pthread_mutex_t fmu;
    pthread_cond_t fcv;
    uint64_t fstarted, fdone, flookups;
    int fbusy;
    int64_t flast_ms;
    cm_err ferr;
    co_bucket *fresh;
    size_t nfresh;
    int64_t fresh_rev;
};

/* The record of name this node knows, with fl.mu held: the applied version's, else the last fresh
 * read's while that read is newer than the applied version (the watch has not caught up). */
static const co_bucket *known(const co_buckets *f, const char *name)
{
    const co_bucket *b = co_buckets_find(f->applied, f->napplied, name);
    if (!b && f->fresh_rev > f->st.mod_rev)
        b = co_buckets_find(f->fresh, f->nfresh, name);
    return b;
}

/* Report what differs between the applied array and next (both sorted) to the hooks. */
static void report_changes(co_buckets *f, const co_bucket *next, size_t n)
{
    size_t i = 0, j = 0;
    while (i < f->napplied || j < n) {
        int c = i == f->napplied ? 1 : j == n ? -1 : strcmp(f->applied[i].name, next[j].name);
        if (c < 0) {
            if (f->hooks.removed)
                f->hooks.removed(f->hooks.arg, &f->applied[i]);
            i++;
        } else if (c > 0) {
            if (f->hooks.added)
                f->hooks.added(f->hooks.arg, &next[j]);
            j++;
        } else {
            /* the same name, another creation in between: the old one is gone */
            if (f->applied[i].id != next[j].id) {
                if (f->hooks.removed)
                    f->hooks.removed(f->hooks.arg, &f->applied[i]);
                if (f->hooks.added)
                    f->hooks.added(f->hooks.arg, &next[j]);
            }
            i++, j++;
        }
    }
}

/* Report the buckets (same creation in old and next) whose access settings changed. */
static void report_access(co_buckets *f, const co_bucket *old, size_t nold, const co_bucket *next,
                          size_t n)
{
    for (size_t j = 0; f->hooks.access_changed && j < n; j++) {
        const co_bucket *o = co_buckets_find(old, nold, next[j].name);
        if (o && o->id == next[j].id &&
            (o->acl != next[j].acl || o->pab != next[j].pab || o->ownership != next[j].ownership ||
             !co_bdoc_str_equal(o->policy, next[j].policy)))
            f->hooks.access_changed(f->hooks.arg, &next[j]);
    }
}

/* Apply a version (the hooks, then memory); 1 when applied. Runs on the watch thread. */
static int apply(void *arg, const uint8_t *value, size_t len, int64_t mod_rev)
{
    co_buckets *f = arg;
    co_bucket *next = NULL;
    size_t n = 0;
    if (!value) {
        CM_WARN(MOD, "the bucket document was deleted at revision %lld: keeping the last list",
                (long long)mod_rev);
        return 0;
    }
    if (co_buckets_decode(value, len, &next, &n) != CM_OK) {
        CM_WARN(MOD, "bucket document at revision %lld ignored: it does not parse",
                (long long)mod_rev);
        pthread_mutex_lock(&f->fl.mu);
        f->st.rejected++;
        pthread_mutex_unlock(&f->fl.mu);
        return 0;
    }
    report_changes(f, next, n); /* only this thread writes f->applied: no lock to read it */
    co_bucket *old = f->applied;
    size_t nold = f->napplied;
    pthread_mutex_lock(&f->fl.mu);
    f->applied = next;
    f->napplied = n;
    f->st.nbuckets = n;
    f->st.mod_rev = mod_rev;
    f->st.applied++;
    pthread_cond_broadcast(&f->fl.cv);
    pthread_mutex_unlock(&f->fl.mu);
    report_access(f, old, nold, next, n); /* after the swap: a reader sees the new settings */
    co_buckets_array_free(old, nold);
    CM_DEBUG(MOD, "bucket document at revision %lld applied: %zu buckets", (long long)mod_rev, n);
    return 1;
}

static void cached(void *arg)
{
    CM_INFO(MOD, "starting on the cached bucket list (%zu buckets) until etcd answers",
            ((co_buckets *)arg)->napplied);
}

cm_err co_buckets_open(const co_config *cfg, const char *cluster, const char *cache_path,
                       const co_buckets_hooks *hooks, co_buckets **out)
{
    co_buckets *f = calloc(1, sizeof(*f));
    if (!f)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&f->fmu, NULL);
    pthread_cond_init(&f->fcv, NULL);
    f->ferr = CM_ERR_UNAVAILABLE;
    if (hooks)
        f->hooks = *hooks;
    f->fl.what = "the bucket document";
    f->fl.apply = apply;
    f->fl.arg = f;
    cm_err e = co_follow_open(&f->fl, cfg, cluster, CO_KIND_BUCKETS, cache_path, cached);
    if (e != CM_OK) {
        co_buckets_free(f);
        return e;
    }
    *out = f;
    return CM_OK;
}

void co_buckets_free(co_buckets *f)
{
    if (!f)
        return;
    co_follow_release(&f->fl); /* stops the watch first: no hook runs after this */
    co_buckets_array_free(f->applied, f->napplied);
    co_buckets_array_free(f->fresh, f->nfresh);
    pthread_cond_destroy(&f->fcv);
    pthread_mutex_destroy(&f->fmu);
    free(f);
}

cm_err co_buckets_lookup(co_buckets *f, const char *name, co_bucket *out)
{
    pthread_mutex_lock(&f->fl.mu);
    const co_bucket *b = known(f, name);
    if (b)
        *out = co_bdoc_untagged(b);
    pthread_mutex_unlock(&f->fl.mu);
    return b ? CM_OK : CM_ERR_NOTFOUND;
}

cm_err co_buckets_tags(co_buckets *f, const char *name, co_tag **out, size_t *n)
{
    *out = NULL;
    pthread_mutex_lock(&f->fl.mu);
    const co_bucket *b = known(f, name);
    cm_err e = b ? co_bdoc_tags_copy(b->tags, b->ntags, out) : CM_ERR_NOTFOUND;
    *n = e == CM_OK ? b->ntags : 0;
    pthread_mutex_unlock(&f->fl.mu);
    return e;
}

/* A copy of a string member (STR_*) of name as last applied. */
static cm_err str_copy(co_buckets *f, const char *name, int member, char **out)
{
    *out = NULL;
    pthread_mutex_lock(&f->fl.mu);
    const co_bucket *b = known(f, name);
    const char *v = !b ? NULL : *str_member(member, (co_bucket *)b);
    cm_err e = !b ? CM_ERR_NOTFOUND : v && !(*out = strdup(v)) ? CM_ERR_NOMEM : CM_OK;
    pthread_mutex_unlock(&f->fl.mu);
    return e;
}

cm_err co_buckets_cors(co_buckets *f, const char *name, char **out)
{
    return str_copy(f, name, STR_CORS, out);
}

cm_err co_buckets_policy(co_buckets *f, const char *name, char **out)
{
    return str_copy(f, name, STR_POLICY, out);
}

cm_err co_buckets_website(co_buckets *f, const char *name, char **out)
{
    return str_copy(f, name, STR_WEBSITE, out);
}

cm_err co_buckets_lifecycle(co_buckets *f, const char *name, char **out)
{
    return str_copy(f, name, STR_LIFECYCLE, out);
}

cm_err co_buckets_lifecycle_next(co_buckets *f, const char *after, char *out, size_t cap)
{
    cm_err e = CM_ERR_NOTFOUND;
    pthread_mutex_lock(&f->fl.mu);
    for (size_t i = 0; i < f->napplied && e == CM_ERR_NOTFOUND; i++) { /* sorted by name */
        const co_bucket *b = &f->applied[i];
        if (b->lifecycle && (!after || strcmp(b->name, after) > 0)) {
            snprintf(out, cap, "%s", b->name);
            e = CM_OK;
        }
    }
    pthread_mutex_unlock(&f->fl.mu);
    return e;
}

/* One etcd read for co_buckets_lookup_fresh: waits out the gap since the previous one, then
 * reads and keeps the result for every call that came before it started. Called with fmu held
 * and fbusy set; returns with fmu held, fbusy clear. */
static void fresh_read(co_buckets *f)
{
    int64_t wait = f->flast_ms + CO_BUCKETS_FRESH_GAP_MS - cm_monotonic_ms();
    if (wait > 0 && wait <= CO_BUCKETS_FRESH_GAP_MS) {
        pthread_mutex_unlock(&f->fmu);
        struct timespec ts = {0, (long)wait * 1000000L};
        nanosleep(&ts, NULL); /* calls arriving meanwhile still share this read */
        pthread_mutex_lock(&f->fmu);
    }
    uint64_t mine = ++f->fstarted; /* from here on, a new call needs the next read */
    f->flast_ms = cm_monotonic_ms();
    pthread_mutex_unlock(&f->fmu);
    co_client *c = NULL;
    co_bucket *b = NULL;
    size_t n = 0;
    int64_t rev = 0;
    cm_err e = co_client_new(&f->fl.cfg, &c);
    if (e == CM_OK)
        e = co_buckets_read(c, f->fl.key, &b, &n, &rev);
    co_client_free(c);
    pthread_mutex_lock(&f->fmu);
    if (e == CM_OK) { /* a failed read keeps the last good one: known compares revisions */
        pthread_mutex_lock(&f->fl.mu);
        co_bucket *old = f->fresh;
        size_t nold = f->nfresh;
        f->fresh = b;
        f->nfresh = n;
        f->fresh_rev = rev;
        pthread_mutex_unlock(&f->fl.mu);
        co_buckets_array_free(old, nold);
    } else {
        co_buckets_array_free(b, n);
    }
    f->ferr = e;
    f->fdone = mine;
    f->fbusy = 0;
    pthread_cond_broadcast(&f->fcv);
}

cm_err co_buckets_lookup_fresh(co_buckets *f, const char *name, co_bucket *out)
{
    if (co_buckets_lookup(f, name, out) == CM_OK)
        return CM_OK;
    pthread_mutex_lock(&f->fmu);
    f->flookups++;
    uint64_t need = f->fstarted + 1; /* a read that starts after this call */
    while (f->fdone < need) {
        if (f->fbusy) {
            pthread_cond_wait(&f->fcv, &f->fmu);
            continue;
        }
        f->fbusy = 1;
        fresh_read(f);
    }
    cm_err e = f->ferr;
    pthread_mutex_unlock(&f->fmu);
    if (e != CM_OK)
        CM_DEBUG(MOD, "bucket %s: etcd not read (%s): what this node knows answers", name,
                 cm_err_str(e));
    /* The read's records while they are newer than the applied version, else the applied ones
     * (the watch delivered that read's revision or a later one meanwhile) */
    return co_buckets_lookup(f, name, out);
}

cm_err co_buckets_create(co_buckets *f, const co_bucket *want, co_bucket *have)
{
    co_client *c = NULL;
    int64_t rev = 0;
    cm_err e = co_client_new(&f->fl.cfg, &c);
    if (e == CM_OK)
        e = add_rev(c, f->fl.key, want, have, &rev);
    co_client_free(c);
    /* Read-your-writes on this node: its lookups (a bucket's consistency) know the bucket once
     * this returns. The watch delivers in milliseconds; a watch that is down costs the wait. */
    if (e == CM_OK && co_buckets_wait(f, rev, CO_BUCKETS_APPLY_WAIT_MS) != CM_OK)
        CM_WARN(MOD, "bucket %s created (etcd revision %lld) but not applied here within %d ms",
                want->name, (long long)rev, CO_BUCKETS_APPLY_WAIT_MS);
    return e;
}

static cm_err versioning_edit(change *ch, co_bucket *b, size_t *n, int *write)
{
    co_bucket *f = (co_bucket *)co_buckets_find(b, *n, ch->name);
    if (!f)
        return CM_ERR_NOTFOUND;
    if (f->lock && ch->versioning != 1)
        return CM_ERR_LOCKED; /* a suspended write would replace the null version */
    *write = f->versioning != ch->versioning;
    f->versioning = ch->versioning;
    return CM_OK;
}

static int versioning_done(const change *ch, const co_bucket *found)
{
    return found && found->versioning == ch->versioning;
}

cm_err co_buckets_set_versioning(co_client *c, const char *key, const char *name, uint8_t state,
                                 int64_t *rev)
{
    change ch = {.edit = versioning_edit,
                 .done = versioning_done,
                 .what = "setting the versioning of",
                 .name = name,
                 .versioning = state};
    if (state != 1 && state != 2) /* enabled, suspended: never back to "never enabled" */
        return CM_ERR_INVAL;
    return change_doc(c, key, &ch, rev);
}

static int lock_same(const change *ch, const co_bucket *f)
{
    return f->lock && f->lock_mode == ch->lock_mode && f->lock_unit == ch->lock_unit &&
           f->lock_period == ch->lock_period;
}

static cm_err lock_edit(change *ch, co_bucket *b, size_t *n, int *write)
{
    co_bucket *f = (co_bucket *)co_buckets_find(b, *n, ch->name);
    if (!f)
        return CM_ERR_NOTFOUND;
    if (f->versioning != 1)
        return CM_ERR_LOCKED; /* S3's InvalidBucketState */
    *write = !lock_same(ch, f);
    f->lock = 1;
    f->lock_mode = ch->lock_mode;
    f->lock_unit = ch->lock_unit;
    f->lock_period = ch->lock_period;
    return CM_OK;
}

static int lock_done(const change *ch, const co_bucket *found)
{
    return found && lock_same(ch, found);
}

cm_err co_buckets_set_lock(co_client *c, const char *key, const char *name, uint8_t mode,
                           uint8_t unit, uint32_t period, int64_t *rev)
{
    change ch = {.edit = lock_edit,
                 .done = lock_done,
                 .what = "setting the object lock of",
                 .name = name,
                 .lock_mode = mode,
                 .lock_unit = unit,
                 .lock_period = period};
    if (!co_bdoc_lock_valid(1, 1, mode, unit, period))
        return CM_ERR_INVAL;
    return change_doc(c, key, &ch, rev);
}

/* A change of one bucket setting: what set_applied passes on. */
typedef struct {
    enum {
        SET_TAGS,
        SET_CORS,
        SET_POLICY,
        SET_WEBSITE,
        SET_LIFECYCLE,
        SET_ACCESS,
        SET_VERSIONING,
        SET_SSE,
        SET_LOCK
    } kind;
    const co_tag *tags;
    size_t n;
    const char *str; /* SET_CORS, SET_POLICY, SET_WEBSITE, SET_LIFECYCLE */
    uint8_t acl, pab, ownership;
    unsigned fields;
    uint8_t versioning;          /* SET_VERSIONING */
    uint8_t sse, sse_bucket_key; /* SET_SSE */
    /* SET_LOCK */
    uint8_t lock_mode, lock_unit;
    uint32_t lock_period;
} setting;

/* A change of a bucket's settings on the followed key, returning once applied here. */
static cm_err set_applied(co_buckets *f, const char *name, const setting *s)
{
    co_client *c = NULL;
    int64_t rev = 0;
    cm_err e = co_client_new(&f->fl.cfg, &c);
    if (e == CM_OK && s->kind == SET_TAGS)
        e = co_buckets_set_tags(c, f->fl.key, name, s->tags, s->n, &rev);
    else if (e == CM_OK && s->kind == SET_CORS)
        e = co_buckets_set_cors(c, f->fl.key, name, s->str, &rev);
    else if (e == CM_OK && s->kind == SET_POLICY)
        e = co_buckets_set_policy(c, f->fl.key, name, s->str, &rev);
    else if (e == CM_OK && s->kind == SET_WEBSITE)
        e = co_buckets_set_website(c, f->fl.key, name, s->str, &rev);
    else if (e == CM_OK && s->kind == SET_LIFECYCLE)
        e = co_buckets_set_lifecycle(c, f->fl.key, name, s->str, &rev);
    else if (e == CM_OK && s->kind == SET_VERSIONING)
        e = co_buckets_set_versioning(c, f->fl.key, name, s->versioning, &rev);
    else if (e == CM_OK && s->kind == SET_SSE)
        e = co_buckets_set_sse(c, f->fl.key, name, s->sse, s->sse_bucket_key, &rev);
    else if (e == CM_OK && s->kind == SET_LOCK)
        e = co_buckets_set_lock(c, f->fl.key, name, s->lock_mode, s->lock_unit, s->lock_period,
                                &rev);
    else if (e == CM_OK)
        e = co_buckets_set_access(c, f->fl.key, name, s->acl, s->pab, s->ownership, s->fields,
                                  &rev);
    co_client_free(c);
    if (e == CM_OK && co_buckets_wait(f, rev, CO_BUCKETS_APPLY_WAIT_MS) != CM_OK)
        CM_WARN(MOD, "bucket %s changed (etcd revision %lld) but not applied here within %d ms",
                name, (long long)rev, CO_BUCKETS_APPLY_WAIT_MS);
    return e;
}

cm_err co_buckets_tag(co_buckets *f, const char *name, const co_tag *tags, size_t n)
{
    setting s = {.kind = SET_TAGS, .tags = tags, .n = n};
    return set_applied(f, name, &s);
}

cm_err co_buckets_cors_set(co_buckets *f, const char *name, const char *cors)
{
    setting s = {.kind = SET_CORS, .str = cors};
    return set_applied(f, name, &s);
}

cm_err co_buckets_versioning_set(co_buckets *f, const char *name, uint8_t state)
{
    setting s = {.kind = SET_VERSIONING, .versioning = state};
    return set_applied(f, name, &s);
}

cm_err co_buckets_policy_set(co_buckets *f, const char *name, const char *policy)
{
    setting s = {.kind = SET_POLICY, .str = policy};
    return set_applied(f, name, &s);
}

cm_err co_buckets_lifecycle_set(co_buckets *f, const char *name, const char *xml)
{
    setting s = {.kind = SET_LIFECYCLE, .str = xml};
    return set_applied(f, name, &s);
}

cm_err co_buckets_website_set(co_buckets *f, const char *name, const char *xml)
{
    setting s = {.kind = SET_WEBSITE, .str = xml};
    return set_applied(f, name, &s);
}

cm_err co_buckets_access_set(co_buckets *f, const char *name, uint8_t acl, uint8_t pab,
                             uint8_t ownership, unsigned fields)
{
    setting s = {
        .kind = SET_ACCESS, .acl = acl, .pab = pab, .ownership = ownership, .fields = fields};
    return set_applied(f, name, &s);
}

cm_err co_buckets_sse_set(co_buckets *f, const char *name, uint8_t sse, uint8_t bucket_key)
{
    setting s = {.kind = SET_SSE, .sse = sse, .sse_bucket_key = bucket_key};
    return set_applied(f, name, &s);
}

cm_err co_buckets_lock_set(co_buckets *f, const char *name, uint8_t mode, uint8_t unit,
                           uint32_t period)
{
    setting s = {.kind = SET_LOCK, .lock_mode = mode, .lock_unit = unit, .lock_period = period};
    return set_applied(f, name, &s);
}

cm_err co_buckets_delete(co_buckets *f, const char *name)
{
    co_client *c = NULL;
    cm_err e = co_client_new(&f->fl.cfg, &c);
    if (e == CM_OK)
        e = co_buckets_remove(c, f->fl.key, name);
    co_client_free(c);
    return e;
}

void co_buckets_get_status(co_buckets *f, co_buckets_status *out)
{
    pthread_mutex_lock(&f->fl.mu);
    *out = f->st;
    pthread_mutex_unlock(&f->fl.mu);
    pthread_mutex_lock(&f->fmu);
    out->fresh_lookups = f->flookups;
    out->fresh_reads = f->fdone;
    pthread_mutex_unlock(&f->fmu);
    out->connected = co_doc_connected(f->fl.doc);
}

static int rev_applied(const void *arg, uint64_t rev)
{
    return ((const co_buckets *)arg)->st.mod_rev >= (int64_t)rev;
}

cm_err co_buckets_wait(co_buckets *f, int64_t rev, int timeout_ms)
{
    return co_wait_version(&f->fl.mu, &f->fl.cv, timeout_ms, rev_applied, f,
                           rev > 0 ? (uint64_t)rev : 0);
}
