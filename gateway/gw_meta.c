/*
 * gw_meta.c - where the gateway's object records live: the node's own md_store on a single node,
 * the replicated metadata of the cluster (repl/rp.h) on a cluster node (gw_set_repl). The S3
 * handlers call these instead of md_object_* / md_list_objects, so they do not care which.
 *
 * A replicated call waits on other nodes, so the handlers that run on the loop (listings,
 * GetObjectAcl, ?tagging) offload it to a worker when gw_meta_remote(g) says so;
 * on a single node they keep calling the local store from the loop, which costs microseconds.
 * GET, HEAD and an unconditional PUT with an inline body use the asynchronous calls instead
 * (gw_meta_get_leased_async, gw_meta_put_async): the quorum ops start from the loop and finish
 * on the coordinator's loop, which hands the request back (gw_async_end), so no worker wakes
 * and blocks for them (docs/performance.md, "Cluster").
 *
 * In cluster mode a write or delete never hands back the record it replaced (*had_old = 0): each
 * replica keeps the replaced bodies as durable garbage records, reclaimed after a grace period,
 * because a GET on another node may still be reading them (its lease is on that node).
 *
 * A cluster bucket with versioning Enabled (the namespace's state) keeps its versions as
 * replicated records (repl/rp_version.h): writes and deletes go through rp_version_*, and a key's
 * record read here may be a pointer to its latest version, which every read follows (the
 * asynchronous GET with one more asynchronous read of the version record), so callers always see
 * the whole version. A conditional write there goes to the key's partition leader with the new
 * version (rp_version_put). A delete by id in a bucket with Object Lock asks for md_cond.unlocked:
 * a protected version is refused, also by that leader (docs/object-lock.md, "On a cluster").
 */
#include "gw_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rp.h"
#include "rp_version.h"

int gw_meta_remote(const gw *g)
{
    return g->rp != NULL;
}

/* A key of the multipart key space (md_mpkey.c): never an object, whatever a request names
 * (GET, HEAD and DELETE take keys that are not UTF-8; PUT refuses them). */
static int reserved(const gw *g, const char *key)
{
    return g->rp && (uint8_t)key[0] == MD_MPU_MARK;
}

/* A cluster bucket's settings as the namespace has them (versioning, lock: 0 when unknown). */
static void ns_settings(gw *g, const char *bucket, md_bucket *b)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->name, sizeof(b->name), "%s", bucket);
    gw_bucket_access(g, b);
}

uint8_t gw_meta_versioning(gw *g, const char *bucket)
{
    if (!g->rp)
        return MD_VERS_NEVER;
    md_bucket b;
    ns_settings(g, bucket, &b);
    return b.versioning;
}

int gw_meta_versioned(gw *g, const char *bucket)
{
    return gw_meta_versioning(g, bucket) != MD_VERS_NEVER;
}

/* The record of key, a pointer followed to its version. */
static cm_err remote_get(gw *g, const char *bucket, const char *key, md_object *out)
{
    cm_err e = rp_object_get(g->rp, bucket, key, out);
    return e == CM_OK ? rp_version_follow(g->rp, bucket, out) : e;
}

cm_err gw_meta_get(gw *g, const char *bucket, const char *key, md_object *out)
{
    if (reserved(g, key))
        return CM_ERR_NOTFOUND;
    return g->rp ? remote_get(g, bucket, key, out) : md_object_get(g->md, bucket, key, out);
}

cm_err gw_meta_get_leased(gw *g, const char *bucket, const char *key, md_object *out)
{
    if (!g->rp)
        return ob_object_get_leased(g->data, g->md, bucket, key, out);
    if (reserved(g, key))
        return CM_ERR_NOTFOUND;
    /* The lease keeps this node's own cells of the body; the replicas' garbage grace period
     * keeps the others while the GET streams. */
    cm_err err = remote_get(g, bucket, key, out);
    if (err == CM_OK && (err = ob_lease_acquire(g->data, out)) != CM_OK)
        md_object_release(out);
    return err;
}

/* A cluster node's answer: every record is the null version. */
static void null_res(md_vres *res, const char *vid)
{
    if (res) {
        memset(res, 0, sizeof(*res));
        snprintf(res->version_id, sizeof(res->version_id), "%s", vid ? vid : "null");
    }
}

cm_err gw_meta_put(gw *g, const char *bucket, const md_object *obj, const md_cond *cond,
                   md_object *old, int *had_old)
{
    return gw_meta_put_v(g, bucket, obj, cond, old, had_old, NULL);
}

cm_err gw_meta_put_v(gw *g, const char *bucket, const md_object *obj, const md_cond *cond,
                     md_object *old, int *had_old, md_vres *res)
{
    if (!g->rp)
        return md_object_put_v(g->md, bucket, obj, cond, old, had_old, res);
    *had_old = 0;
    null_res(res, NULL);
    if (reserved(g, obj->key))
        return CM_ERR_INVAL;
    uint8_t state = gw_meta_versioning(g, bucket);
    if (state != MD_VERS_NEVER) {
        md_vres tmp;
        return rp_version_put(g->rp, bucket, obj, state == MD_VERS_SUSPENDED, cond,
                              res ? res : &tmp);
    }
    return rp_object_put(g->rp, bucket, obj, cond, old, had_old);
}

cm_err gw_meta_delete(gw *g, const char *bucket, const char *key, const md_cond *cond,
                      md_object *old, int *had_old)
{
    return gw_meta_delete_v(g, bucket, key, NULL, cond, old, had_old, NULL);
}

cm_err gw_meta_delete_v(gw *g, const char *bucket, const char *key, const char *vid,
                        const md_cond *cond, md_object *old, int *had_old, md_vres *res)
{
    if (!g->rp)
        return md_object_delete_v(g->md, bucket, key, vid, cond, old, had_old, res);
    *had_old = 0;
    null_res(res, vid);
    if (vid && !md_vid_valid(vid))
        return CM_ERR_INVAL;
    if (reserved(g, key))
        return CM_OK; /* nothing to delete */
    md_bucket b;
    ns_settings(g, bucket, &b);
    uint8_t state = b.versioning;
    md_cond locked = {.unlocked = 1};
    if (vid && b.lock_enabled) { /* the leader refuses a protected version (docs/object-lock.md) */
        if (cond)
            locked = *cond, locked.unlocked = 1;
        cond = &locked;
    }
    if (state != MD_VERS_NEVER) {
        md_vres tmp;
        int had = 0;
        return vid ? rp_version_delete(g->rp, bucket, key, vid, cond, res ? res : &tmp, &had)
                   : rp_version_mark(g->rp, bucket, key, state == MD_VERS_SUSPENDED, cond,
                                     res ? res : &tmp);
    }
    if (vid && strcmp(vid, "null") != 0)
        return CM_OK; /* nothing to delete */
    return rp_object_delete(g->rp, bucket, key, cond, old, had_old);
}

cm_err gw_meta_delete_many(gw *g, const char *bucket, const char *const *keys, size_t n,
                           cm_err *errs, md_object *olds, int *had_old)
{
    return gw_meta_delete_many_v(g, bucket, keys, NULL, n, errs, olds, had_old, NULL);
}

cm_err gw_meta_delete_many_v(gw *g, const char *bucket, const char *const *keys,
                             const char *const *vids, size_t n, cm_err *errs, md_object *olds,
                             int *had_old, md_vres *res)
{
    return gw_meta_delete_many_vb(g, bucket, keys, vids, n, errs, olds, had_old, res, 0);
}

cm_err gw_meta_delete_many_vb(gw *g, const char *bucket, const char *const *keys,
                              const char *const *vids, size_t n, cm_err *errs, md_object *olds,
                              int *had_old, md_vres *res, int bypass)
{
    if (!g->rp)
        return md_objects_delete_vb(g->md, bucket, keys, vids, n, errs, olds, had_old, res, bypass);
    /* One quorum write per key: the keys live in different partitions. */
    md_cond bypassed = {.bypass_governance = bypass};
    for (size_t i = 0; i < n; i++)
        errs[i] =
            gw_meta_delete_v(g, bucket, keys[i], vids ? vids[i] : NULL, bypass ? &bypassed : NULL,
                             &olds[i], &had_old[i], res ? &res[i] : NULL);
    return CM_OK;
}

cm_err gw_meta_list(gw *g, const char *bucket, const md_list_query *q, md_list_result *out)
{
    return g->rp ? rp_list_objects(g->rp, bucket, q, out) : md_list_objects(g->md, bucket, q, out);
}

/* Coordinator's loop: r->obj = rec (leased) when err is CM_OK; back to r's loop. */
static void read_end(gw_req *r, cm_err err, md_object *rec)
{
    if (err == CM_OK && (err = ob_lease_acquire(r->g->data, rec)) != CM_OK)
        md_object_release(rec);
    if (err == CM_OK)
        r->obj = *rec;
    r->meta_err = err;
    gw_async_end(r);
}

/* Coordinator's loop: the version a pointer named (rp_get_done). */
static void got_version(void *arg, cm_err err, md_object *rec)
{
    gw_req *r = arg;
    if (err == CM_OK && (err = rp_version_adopt(rec, r->key)) != CM_OK)
        md_object_release(rec);
    read_end(r, err, rec);
}

/* Coordinator's loop: the record read for r (rp_get_done), or on to the version it points to. */
static void got_record(void *arg, cm_err err, md_object *rec)
{
    gw_req *r = arg;
    if (err == CM_OK && rp_version_pointer(rec)) {
        char vkey[MD_MAX_KEY + 1];
        err = rp_version_target(rec, vkey);
        md_object_release(rec);
        if (err == CM_OK &&
            (err = rp_object_get_async(r->g->rp, r->bucket, vkey, got_version, r)) == CM_OK)
            return;
        r->meta_err = err;
        gw_async_end(r);
        return;
    }
    read_end(r, err, rec);
}

void gw_meta_get_leased_async(gw_req *r, gw_finish_fn done)
{
    gw_async_begin(r, done);
    cm_err err = reserved(r->g, r->key)
                     ? CM_ERR_NOTFOUND
                     : rp_object_get_async(r->g->rp, r->bucket, r->key, got_record, r);
    if (err != CM_OK) {
        r->meta_err = err;
        gw_async_end(r);
    }
}

/* Coordinator's loop: the record write for r ended (rp_put_done); back to r's loop. */
static void put_record(void *arg, cm_err err)
{
    gw_req *r = arg;
    r->meta_err = err;
    gw_async_end(r);
}

void gw_meta_put_async(gw_req *r, const md_object *obj, gw_finish_fn done)
{
    gw_async_begin(r, done);
    cm_err err = reserved(r->g, obj->key)
                     ? CM_ERR_INVAL
                     : rp_object_put_async(r->g->rp, r->bucket, obj, put_record, r);
    if (err != CM_OK) {
        r->meta_err = err;
        gw_async_end(r);
    }
}

cm_err gw_meta_version_record(gw *g, const char *bucket, const char *key, const char *vid,
                              md_object *out)
{
    return reserved(g, key) ? CM_ERR_NOTFOUND : rp_version_record(g->rp, bucket, key, vid, out);
}

cm_err gw_meta_get_version_leased(gw *g, const char *bucket, const char *key, const char *vid,
                                  md_object *out)
{
    if (!g->rp)
        return ob_version_get_leased(g->data, g->md, bucket, key, vid, out);
    cm_err e = gw_meta_get_version(g, bucket, key, vid, out);
    if (e == CM_OK && (e = ob_lease_acquire(g->data, out)) != CM_OK)
        md_object_release(out);
    return e;
}

void gw_meta_get_version_work(gw_req *r)
{
    const char *vid = gw_query_get(&r->q, "versionId");
    r->meta_err = gw_meta_get_version_leased(r->g, r->bucket, r->key, vid ? vid : "null", &r->obj);
}

cm_err gw_meta_get_version(gw *g, const char *bucket, const char *key, const char *vid,
                           md_object *out)
{
    if (!g->rp)
        return md_version_get(g->md, bucket, key, vid, out);
    return reserved(g, key) ? CM_ERR_NOTFOUND : rp_version_get(g->rp, bucket, key, vid, out);
}

cm_err gw_meta_list_versions(gw *g, const char *bucket, const md_vlist_query *q,
                             md_list_result *out)
{
    return rp_version_list(g->rp, bucket, q, out);
}

cm_err gw_meta_no_versions(gw *g, const char *bucket)
{
    return g->rp ? rp_version_none(g->rp, bucket) : CM_OK;
}

void gw_set_repl(gw *g, rp *c)
{
    g->rp = c;
}
