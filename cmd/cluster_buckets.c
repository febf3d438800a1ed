/*
 * cmd/cluster_buckets.c - `cairn server` in cluster mode: the gateway's bucket namespace
 * (gw_bucket_ns) on the cluster's bucket document in etcd (coord/co_buckets.h).
 *
 * The gateway knows nothing of etcd and coord/ nothing of the metadata store: this file converts
 * records between them and wires both directions. Gateway to etcd: create, remove and lookup call
 * co_buckets (blocking, on the gateway's workers, each with its own etcd client and deadlines);
 * "is the bucket empty cluster-wide?" is answered by the replicated listing (gw_bucket_empty: a
 * read quorum of each of the bucket's shards, so an object on any node keeps the bucket).
 * etcd to the gateway: co_buckets's hooks (its watch thread) mirror every bucket added
 * or removed cluster-wide into the local store. The follower's cache file is DATA/buckets.cache.
 *
 * A bucket's consistency mode lives in the namespace only (not in the local md_bucket, which
 * would go stale when `cairn admin bucket consistency` changes it): CreateBucket's mode goes into
 * the new record, and cmd_cluster_bucket_consistency answers it from the follower's memory for
 * the quorum coordinator (rp_config.consistency) and for HeadBucket. So do its tags
 * (PutBucketTagging: co_buckets_tag; GetBucketTagging from the follower's memory) and its CORS
 * configuration (PutBucketCors: co_buckets_cors_set; reads from the follower's memory), its website
 * configuration (PutBucketWebsite: co_buckets_website_set; reads likewise), its lifecycle
 * configuration (co_buckets_lifecycle_set; the worker walks co_buckets_lifecycle_next), and its
 * canned ACL, PublicAccessBlock, object ownership and policy (docs/users.md: co_buckets_access_set
 * and co_buckets_policy_set; the gateway reads them from the follower's memory on every request of
 * a user or anonymous, and a policy changed elsewhere drops the gateway's parsed copy when the
 * follower applies it: on_access_changed). Its versioning state is the record's "versioning"
 * member (PutBucketVersioning: co_buckets_versioning_set; read with the access settings), and its
 * default encryption (PutBucketEncryption: co_buckets_sse_set; read with the access settings),
 * and its Object Lock configuration (CreateBucket's, PutObjectLockConfiguration:
 * co_buckets_lock_set; read with the access settings).
 */
#include "cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "co_buckets.h"
#include "gw.h"

#define MOD "server"

_Static_assert(CO_CONSISTENCY_STRONG == RP_STRONG && CO_CONSISTENCY_AVAILABLE == RP_AVAILABLE,
               "the bucket document stores rp_consistency values");

_Static_assert(MD_LOCK_GOVERNANCE == 1 && MD_LOCK_COMPLIANCE == 2 && MD_LOCK_DAYS == 1 &&
                   MD_LOCK_YEARS == 2 && MD_LOCK_MAX_DAYS == 36500 && MD_LOCK_MAX_YEARS == 100,
               "the bucket document stores md_bucket's Object Lock numbers");

/* Object Lock: the same numbers on both sides. */
static void lock_to_md(const co_bucket *c, md_bucket *m)
{
    m->lock_enabled = c->lock;
    m->lock_mode = c->lock_mode;
    m->lock_unit = c->lock_unit;
    m->lock_period = c->lock_period;
}

static void to_md(const co_bucket *c, md_bucket *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", c->name);
    snprintf(m->owner, sizeof(m->owner), "%s", c->owner);
    m->created_ms = c->created_ms;
    m->versioning = c->versioning;
    m->acl = c->acl;
    m->pab = c->pab;
    m->ownership = c->ownership;
    m->sse_default = c->sse;
    m->sse_bucket_key = c->sse_bucket_key;
    lock_to_md(c, m);
}

_Static_assert(CO_ACCESS_ACL == MD_ACCESS_ACL && CO_ACCESS_PAB == MD_ACCESS_PAB &&
                   CO_ACCESS_OWNERSHIP == MD_ACCESS_OWNERSHIP && CO_BUCKET_PAB_BITS == 0x8f &&
                   MD_PAB_SET == 0x80 && MD_OWN_WRITER == CO_BUCKET_OWNERSHIP_MAX &&
                   MD_ACL_OWNER_FULL_CONTROL == CO_BUCKET_ACL_MAX,
               "the bucket document stores md_bucket's access settings");
_Static_assert(MD_SSE_S3 == 1, "the bucket document's sse member is md_bucket's sse_default");

/* ---- the gateway's calls (workers) ---- */

typedef struct {
    co_buckets *f;
    gw *g;
} ns_ctx;

static ns_ctx ctx; /* the server has one gateway and one namespace */

static cm_err ns_create(void *arg, const md_bucket *want, rp_consistency mode, md_bucket *have)
{
    ns_ctx *x = arg;
    co_bucket b = {0}, got;
    snprintf(b.name, sizeof(b.name), "%s", want->name);
    snprintf(b.owner, sizeof(b.owner), "%s", want->owner);
    b.created_ms = want->created_ms;
    b.versioning = want->versioning;
    b.acl = want->acl; /* CreateBucket's x-amz-acl and x-amz-object-ownership */
    b.ownership = want->ownership;
    b.lock = want->lock_enabled; /* CreateBucket's x-amz-bucket-object-lock-enabled */
    b.consistency = (uint8_t)mode;
    cm_err e = cm_random(&b.id, sizeof(b.id));
    if (e == CM_OK)
        e = co_buckets_create(x->f, &b, &got);
    if (e == CM_ERR_EXISTS)
        to_md(&got, have);
    return e;
}

static cm_err ns_remove(void *arg, const char *name)
{
    return co_buckets_delete(((ns_ctx *)arg)->f, name);
}

static cm_err ns_lookup(void *arg, const char *name, md_bucket *out)
{
    co_bucket b;
    cm_err e = co_buckets_lookup_fresh(((ns_ctx *)arg)->f, name, &b);
    if (e == CM_OK)
        to_md(&b, out);
    return e;
}

/* Through the replicated listing: a read quorum of every shard of the bucket. */
static cm_err ns_is_empty(void *arg, const char *name)
{
    return gw_bucket_empty(((ns_ctx *)arg)->g, name);
}

rp_consistency cmd_cluster_bucket_consistency(void *arg, const char *bucket)
{
    co_bucket b;
    if (co_buckets_lookup(arg, bucket, &b) != CM_OK)
        return RP_STRONG; /* not (yet) known here: the stricter mode */
    return b.consistency == CO_CONSISTENCY_AVAILABLE ? RP_AVAILABLE : RP_STRONG;
}

static rp_consistency ns_consistency(void *arg, const char *name)
{
    return cmd_cluster_bucket_consistency(((ns_ctx *)arg)->f, name);
}

/* Bucket tags: md_meta <-> co_tag (the same two strings; coord/ does not know meta/). */
static cm_err ns_tags_set(void *arg, const char *name, const md_meta *tags, size_t n)
{
    co_tag t[CO_BUCKET_TAGS_MAX];
    if (n > CM_ARRAY_LEN(t))
        return CM_ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        t[i] = (co_tag){tags[i].name, tags[i].value};
    return co_buckets_tag(((ns_ctx *)arg)->f, name, t, n);
}

static cm_err ns_tags_get(void *arg, const char *name, md_meta **out, size_t *n)
{
    co_tag *t = NULL;
    size_t nt = 0;
    cm_err e = co_buckets_tags(((ns_ctx *)arg)->f, name, &t, &nt);
    *out = NULL;
    *n = 0;
    if (e != CM_OK || !nt)
        return e;
    if (!(*out = calloc(nt, sizeof(**out)))) {
        co_tags_free(t, nt);
        return CM_ERR_NOMEM;
    }
    for (size_t i = 0; i < nt; i++) { /* the strings move over */
        (*out)[i] = (md_meta){t[i].key, t[i].value};
        t[i] = (co_tag){NULL, NULL};
    }
    *n = nt;
    co_tags_free(t, nt);
    return CM_OK;
}

/* ---- the namespace's changes (the follower's thread) ---- */

/* The CORS configuration: the XML string as is. */
static cm_err ns_cors_set(void *arg, const char *name, const char *xml)
{
    return co_buckets_cors_set(((ns_ctx *)arg)->f, name, xml);
}

static cm_err ns_cors_get(void *arg, const char *name, char **xml)
{
    return co_buckets_cors(((ns_ctx *)arg)->f, name, xml);
}

/* The website configuration: the XML string as is. */
static cm_err ns_website_set(void *arg, const char *name, const char *xml)
{
    return co_buckets_website_set(((ns_ctx *)arg)->f, name, xml);
}

static cm_err ns_website_get(void *arg, const char *name, char **xml)
{
    return co_buckets_website(((ns_ctx *)arg)->f, name, xml);
}

/* The lifecycle configuration: the XML string as stored (gw_lifecycle.c writes it). */
static cm_err ns_lifecycle_set(void *arg, const char *name, const char *xml)
{
    return co_buckets_lifecycle_set(((ns_ctx *)arg)->f, name, xml);
}

static cm_err ns_lifecycle_get(void *arg, const char *name, char **xml)
{
    return co_buckets_lifecycle(((ns_ctx *)arg)->f, name, xml);
}

static cm_err ns_lifecycle_next(void *arg, const char *after, char *out, size_t cap)
{
    return co_buckets_lifecycle_next(((ns_ctx *)arg)->f, after, out, cap);
}

/* Access settings and policies: from the follower's memory, set by compare-and-set. */
static cm_err ns_access_get(void *arg, const char *name, md_bucket *b)
{
    co_bucket c;
    cm_err e = co_buckets_lookup(((ns_ctx *)arg)->f, name, &c);
    if (e == CM_OK) {
        b->acl = c.acl;
        b->pab = c.pab;
        b->ownership = c.ownership;
        b->versioning = c.versioning;
        b->sse_default = c.sse;
        b->sse_bucket_key = c.sse_bucket_key;
        lock_to_md(&c, b);
    }
    return e;
}

static cm_err ns_versioning_set(void *arg, const char *name, uint8_t state)
{
    return co_buckets_versioning_set(((ns_ctx *)arg)->f, name, state);
}

static cm_err ns_policy_get(void *arg, const char *name, char **json)
{
    return co_buckets_policy(((ns_ctx *)arg)->f, name, json);
}

static cm_err ns_access_set(void *arg, const char *name, const md_bucket *b, unsigned fields)
{
    return co_buckets_access_set(((ns_ctx *)arg)->f, name, b->acl, b->pab, b->ownership, fields);
}

static cm_err ns_policy_set(void *arg, const char *name, const char *json)
{
    return co_buckets_policy_set(((ns_ctx *)arg)->f, name, json);
}

static cm_err ns_sse_set(void *arg, const char *name, const md_bucket *b)
{
    return co_buckets_sse_set(((ns_ctx *)arg)->f, name, b->sse_default, b->sse_bucket_key);
}

static cm_err ns_lock_set(void *arg, const char *name, const md_bucket *b)
{
    return co_buckets_lock_set(((ns_ctx *)arg)->f, name, b->lock_mode, b->lock_unit,
                               b->lock_period);
}

static void on_access_changed(void *arg, const co_bucket *b)
{
    gw_bucket_access_changed(((ns_ctx *)arg)->g, b->name);
}

static void on_added(void *arg, const co_bucket *b)
{
    md_bucket m;
    to_md(b, &m);
    gw_bucket_mirror_add(((ns_ctx *)arg)->g, &m);
}

static void on_removed(void *arg, const co_bucket *b)
{
    gw_bucket_mirror_remove(((ns_ctx *)arg)->g, b->name, b->created_ms);
}

cm_err cmd_cluster_buckets_start(gw *g, const co_config *cfg, const char *cluster,
                                 const char *data_dir, co_buckets **out)
{
    char cache[4200];
    ctx.g = g;
    snprintf(cache, sizeof(cache), "%s/buckets.cache", data_dir);
    co_buckets_hooks hooks = {
        .added = on_added, .removed = on_removed, .arg = &ctx, .access_changed = on_access_changed};
    cm_err e = co_buckets_open(cfg, cluster, cache, &hooks, &ctx.f);
    if (e != CM_OK)
        return e;
    gw_bucket_ns ns = {.create = ns_create,
                       .remove = ns_remove,
                       .lookup = ns_lookup,
                       .is_empty = ns_is_empty,
                       .arg = &ctx,
                       .consistency = ns_consistency,
                       .tags_set = ns_tags_set,
                       .tags_get = ns_tags_get,
                       .cors_set = ns_cors_set,
                       .cors_get = ns_cors_get,
                       .versioning_set = ns_versioning_set,
                       .access_get = ns_access_get,
                       .policy_get = ns_policy_get,
                       .access_set = ns_access_set,
                       .policy_set = ns_policy_set,
                       .website_set = ns_website_set,
                       .website_get = ns_website_get,
                       .lifecycle_set = ns_lifecycle_set,
                       .lifecycle_get = ns_lifecycle_get,
                       .lifecycle_next = ns_lifecycle_next,
                       .sse_set = ns_sse_set,
                       .lock_set = ns_lock_set};
    gw_set_bucket_ns(g, &ns);
    CM_INFO(MOD, "cluster %s: buckets follow the namespace in etcd", cluster);
    *out = ctx.f;
    return CM_OK;
}
