/*
 * rp_local.c - the local replica backend: this node's md_store (rp_replica.h).
 *
 * The pattern of the chunk interface's local backend (obj/ob_chunk.c): each call becomes a job
 * carrying copies of its arguments and, afterwards, its results; the job runs on a worker pool
 * (node/nd_work.c), where the md calls may block (reads, group commits with their fdatasync), and
 * its completion runs on the backend's loop, which calls the caller's rp_done and frees the job.
 * Every call but a record read or merge goes through a worker; a record read (one LMDB lookup)
 * runs on the loop and completes on the loop's next turn (lr_get), unless a partition leader's
 * token comes with it (its barrier waits for a group-commit turn); a merge (a put that is not a
 * hint) is queued from the loop for the store's commit thread (md_rec_receive_async), which
 * schedules its completion on the loop (lr_put). Either way a completion never runs inside the
 * call that started it.
 *
 * The md calls are those the node RPC's service makes for the remote backend (node/nd_meta.c):
 * md_rec_lookup (after md_fence_barrier for a leader's read), md_rec_receive (merge-put or hint,
 * the clock; md_rec_receive_fenced for a leader's write), md_rec_scan, md_merkle_leaves,
 * md_merkle_leaf_keys_ex (filtered by md_shard_keep), md_rec_tombs and md_rec_collect; so both
 * backends answer alike.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cm_log.h"
#include "rp_replica.h"

typedef struct {
    rp_replica base;
    struct event_base *loop;
    md_store *md;
    md_hlc *clock; /* rp_replica_local_set_clock; NULL: none */
    nd_work *work;
    char node_id[ND_NODE_ID_MAX];
} lr_backend;

enum { L_GET, L_PUT, L_LIST, L_MERKLE, L_LEAVES, L_TOMBS, L_TDROP };

typedef struct {
    nd_job job; /* first: the pool hands it back as the job */
    int op;
    md_store *md;
    md_hlc *clock;
    char bucket[MD_BUCKET_MAX + 1];
    md_shard part;
    char *key, *prefix, *after;
    md_object rec;  /* put: a copy of the record */
    uint64_t fence; /* get, put: a partition leader's token (rp_part.fence) */
    char hint[ND_NODE_ID_MAX];
    int depth;
    size_t *leaves, nleaves, max;
    uint64_t before;   /* tombs: the cutoff; tomb_drop: the mark */
    md_rec_info *drop; /* tomb_drop: the tombstones to drop (a copy) */
    size_t ndrop;
    /* results */
    cm_err err;
    int no_bucket, applied, truncated, have_rec;
    md_object got;
    md_object *recs;
    size_t nrecs;
    uint8_t *hashes;
    size_t nhashes;
    md_rec_info *infos;
    size_t ninfos;
    uint8_t *dropped; /* tomb_drop: ndrop flags */
    rp_done done;
    void *arg;
} lr_job;

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static void lr_run(nd_job *job)
{
    lr_job *j = (lr_job *)(void *)job;
    switch (j->op) {
    case L_GET:
        j->err = md_fence_barrier(j->md, j->bucket, j->part.shard, j->fence); /* 0: none */
        if (j->err == CM_OK)
            j->err = md_rec_lookup(j->md, j->bucket, j->key, &j->got, &j->no_bucket);
        j->have_rec = j->err == CM_OK;
        break;
    case L_PUT:
        if (j->fence)
            j->err = md_rec_receive_fenced(j->md, j->clock, j->bucket, j->part.shard, j->fence,
                                           NULL, &j->rec, &j->applied);
        else
            j->err = md_rec_receive(j->md, j->clock, j->bucket, &j->rec,
                                    j->hint[0] ? j->hint : NULL, &j->applied);
        j->no_bucket = j->err == CM_ERR_NOTFOUND && !j->hint[0];
        break;
    case L_LIST:
        j->err = md_rec_scan(j->md, j->bucket, j->prefix, j->after, md_shard_keep, &j->part, j->max,
                             &j->recs, &j->nrecs, &j->truncated);
        j->no_bucket = j->err == CM_ERR_NOTFOUND;
        break;
    case L_MERKLE:
        j->err = md_merkle_leaves(j->md, j->bucket, j->depth, md_shard_keep, &j->part, &j->hashes,
                                  &j->nhashes);
        j->no_bucket = j->err == CM_ERR_NOTFOUND;
        break;
    case L_TOMBS:
        j->err = md_rec_tombs(j->md, j->bucket, &j->part, j->before, j->after, j->max, &j->infos,
                              &j->ninfos, &j->truncated);
        j->no_bucket = j->err == CM_ERR_NOTFOUND;
        break;
    case L_TDROP:
        j->err =
            md_rec_collect(j->md, j->bucket, &j->part, j->before, j->drop, j->ndrop, j->dropped);
        j->no_bucket = j->err == CM_ERR_NOTFOUND;
        break;
    default:
        qsort(j->leaves, j->nleaves, sizeof(*j->leaves), cmp_size);
        j->err = md_merkle_leaf_keys_ex(j->md, j->bucket, j->depth, md_shard_keep, &j->part,
                                        j->leaves, j->nleaves, &j->infos, &j->ninfos);
        j->no_bucket = j->err == CM_ERR_NOTFOUND;
        break;
    }
}

static void lr_job_free(lr_job *j)
{
    free(j->key);
    free(j->prefix);
    free(j->after);
    free(j->leaves);
    md_object_release(&j->rec);
    if (j->have_rec)
        md_object_release(&j->got);
    md_objects_free(j->recs, j->nrecs);
    free(j->hashes);
    md_rec_infos_free(j->infos, j->ninfos);
    md_rec_infos_free(j->drop, j->ndrop);
    free(j->dropped);
    free(j);
}

static void lr_done(nd_job *job)
{
    lr_job *j = (lr_job *)(void *)job;
    rp_result res;
    memset(&res, 0, sizeof(res));
    res.err = j->err;
    res.no_bucket = j->no_bucket;
    res.message = j->err == CM_OK ? "" : j->no_bucket ? "no such bucket" : cm_err_str(j->err);
    if (j->err == CM_OK) {
        res.rec = res.take = j->have_rec ? &j->got : NULL; /* released after the call */
        res.applied = j->applied;
        res.recs = j->recs, res.nrecs = j->nrecs, res.truncated = j->truncated;
        res.hashes = j->hashes, res.nleaves = j->nhashes;
        res.infos = j->infos, res.ninfos = j->ninfos;
        res.dropped = j->dropped, res.ndropped = j->dropped ? j->ndrop : 0;
    }
    j->done(j->arg, &res);
    lr_job_free(j);
}

static lr_job *lr_job_new(rp_replica *r, int op, const rp_part *p, rp_done done, void *arg)
{
    lr_backend *b = (lr_backend *)r;
    lr_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->job.run = lr_run;
    j->job.done = lr_done;
    j->job.base = b->loop;
    j->op = op;
    j->md = b->md;
    j->clock = b->clock;
    snprintf(j->bucket, sizeof(j->bucket), "%s", p->bucket);
    j->part.shard = p->shard, j->part.nshards = p->nshards;
    j->done = done;
    j->arg = arg;
    return j;
}

/* strdup that keeps NULL; 0 on an allocation failure. */
static int dup_opt(const char *s, char **out)
{
    *out = s ? strdup(s) : NULL;
    return !s || *out;
}

static cm_err lr_submit(rp_replica *r, lr_job *j, int ok)
{
    if (!ok) {
        lr_job_free(j);
        return CM_ERR_NOMEM;
    }
    nd_work_submit(((lr_backend *)r)->work, &j->job);
    return CM_OK;
}

static void lr_get_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    lr_done(arg);
}

/* A record read is one LMDB lookup: it runs here on the loop (the pool's two thread switches
 * cost more than the lookup), and its completion on the loop's next turn. A partition leader's
 * read waits for its barrier (a group-commit turn) first: it goes through the pool. */
static cm_err lr_get(rp_replica *r, const rp_part *p, const char *key, rp_done done, void *arg)
{
    static const struct timeval now = {0, 0};
    lr_job *j = lr_job_new(r, L_GET, p, done, arg);
    if (!j || !dup_opt(key, &j->key)) {
        if (j)
            lr_job_free(j);
        return CM_ERR_NOMEM;
    }
    j->fence = p->fence;
    if (j->fence)
        return lr_submit(r, j, 1);
    lr_run(&j->job);
    if (event_base_once(j->job.base, -1, EV_TIMEOUT, lr_get_done, j, &now) != 0) {
        lr_job_free(j);
        return CM_ERR_NOMEM;
    }
    return CM_OK;
}

/* A merge's end, on the store's commit thread: complete on the loop. */
static void lr_put_committed(void *arg, cm_err err, int applied)
{
    static const struct timeval now = {0, 0};
    lr_job *j = arg;
    j->err = err;
    j->applied = applied;
    j->no_bucket = err == CM_ERR_NOTFOUND;
    if (event_base_once(j->job.base, -1, EV_TIMEOUT, lr_get_done, j, &now) != 0)
        CM_ERROR("rp", "a committed record write cannot return to its loop; dropping it");
}

/* A merge (not a hint) is queued for the store's commit thread from the loop, which completes it
 * on the loop: no pool thread waits through the commit (two thread switches fewer per write,
 * docs/performance.md "Cluster"). A hint goes through the pool. */
static cm_err lr_put(rp_replica *r, const rp_part *p, const md_object *rec, const char *hint_for,
                     rp_done done, void *arg)
{
    if (hint_for && !nd_node_id_valid(hint_for))
        return CM_ERR_INVAL;
    lr_job *j = lr_job_new(r, L_PUT, p, done, arg);
    if (!j)
        return CM_ERR_NOMEM;
    if (hint_for)
        snprintf(j->hint, sizeof(j->hint), "%s", hint_for);
    j->fence = hint_for ? 0 : p->fence;
    int copied = md_object_copy(rec, &j->rec) == CM_OK;
    if (!copied || hint_for)
        return lr_submit(r, j, copied);
    /* no layout guard: this node's own coordinator, on its own layout (docs/replication.md) */
    cm_err e = md_rec_receive_async(j->md, j->clock, j->bucket, j->part.shard, j->fence, NULL,
                                    &j->rec, lr_put_committed, j);
    if (e == CM_OK)
        return CM_OK;
    /* refused before the commit (a stamp too far ahead): answered as the pool's job would be */
    static const struct timeval now = {0, 0};
    j->err = e;
    if (event_base_once(j->job.base, -1, EV_TIMEOUT, lr_get_done, j, &now) != 0) {
        lr_job_free(j);
        return CM_ERR_NOMEM;
    }
    return CM_OK;
}

static cm_err lr_list(rp_replica *r, const rp_part *p, const char *prefix, const char *after,
                      size_t max, rp_done done, void *arg)
{
    lr_job *j = lr_job_new(r, L_LIST, p, done, arg);
    if (!j)
        return CM_ERR_NOMEM;
    j->max = max;
    return lr_submit(r, j, dup_opt(prefix, &j->prefix) && dup_opt(after, &j->after));
}

static cm_err lr_merkle(rp_replica *r, const rp_part *p, int depth, rp_done done, void *arg)
{
    lr_job *j = lr_job_new(r, L_MERKLE, p, done, arg);
    if (!j)
        return CM_ERR_NOMEM;
    j->depth = depth;
    return lr_submit(r, j, 1);
}

static cm_err lr_leaf_keys(rp_replica *r, const rp_part *p, int depth, const uint32_t *leaves,
                           size_t nleaves, rp_done done, void *arg)
{
    lr_job *j = lr_job_new(r, L_LEAVES, p, done, arg);
    if (!j)
        return CM_ERR_NOMEM;
    j->depth = depth;
    j->nleaves = nleaves;
    if ((j->leaves = malloc(nleaves * sizeof(*j->leaves))) != NULL)
        for (size_t i = 0; i < nleaves; i++)
            j->leaves[i] = leaves[i];
    return lr_submit(r, j, j->leaves != NULL);
}

static cm_err lr_tombs(rp_replica *r, const rp_part *p, uint64_t before, const char *after,
                       size_t max, rp_done done, void *arg)
{
    lr_job *j = lr_job_new(r, L_TOMBS, p, done, arg);
    if (!j)
        return CM_ERR_NOMEM;
    j->before = before;
    j->max = max;
    return lr_submit(r, j, dup_opt(after, &j->after));
}

static cm_err lr_tomb_drop(rp_replica *r, const rp_part *p, uint64_t mark, const md_rec_info *infos,
                           size_t n, rp_done done, void *arg)
{
    lr_job *j = lr_job_new(r, L_TDROP, p, done, arg);
    if (!j)
        return CM_ERR_NOMEM;
    j->before = mark;
    int ok = md_rec_infos_copy(infos, n, &j->drop) == CM_OK;
    if (ok)
        j->ndrop = n;
    return lr_submit(r, j, ok && (j->dropped = calloc(n, 1)) != NULL);
}

static void lr_free(rp_replica *r)
{
    free(r);
}

static const rp_replica_ops lr_ops = {lr_get,       lr_put,  lr_list,  lr_merkle,
                                      lr_leaf_keys, lr_free, lr_tombs, lr_tomb_drop};

cm_err rp_replica_local_new(struct event_base *base, md_store *md, nd_work *work,
                            const char *node_id, rp_replica **out)
{
    *out = NULL;
    if (!base || !md || !work || !nd_node_id_valid(node_id))
        return CM_ERR_INVAL;
    lr_backend *b = calloc(1, sizeof(*b));
    if (!b)
        return CM_ERR_NOMEM;
    b->base.ops = &lr_ops;
    b->loop = base;
    b->md = md;
    b->work = work;
    snprintf(b->node_id, sizeof(b->node_id), "%s", node_id);
    b->base.node_id = b->node_id;
    b->base.local = 1;
    *out = &b->base;
    return CM_OK;
}

void rp_replica_local_set_clock(rp_replica *r, md_hlc *clock)
{
    ((lr_backend *)r)->clock = clock;
}
