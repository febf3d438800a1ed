/*
 * rp_fake.c - see rp_fake.h. The md calls run on the loop thread inside the call (a test store
 * is fast); only the completion is deferred, as the replica contract asks.
 */
#include "rp_fake.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_HINTS_MAX 4096

struct fake {
    rp_replica base;
    struct event_base *ev;
    md_store *md;
    char id[16];
    pthread_mutex_t mu;
    fake_faults ft;
    fake_counts n;
    md_object hint_rec[FAKE_HINTS_MAX];
    char hint_for[FAKE_HINTS_MAX][16];
    char hint_bucket[FAKE_HINTS_MAX][MD_BUCKET_MAX + 1];
    size_t nhints;
};

/* A completion to post: the result and the copies it points to. */
typedef struct {
    rp_done done;
    void *arg;
    rp_result res;
    md_object rec;
    md_object *recs;
    size_t nrecs;
    uint8_t *hashes;
    md_rec_info *infos;
    size_t ninfos;
} pending;

static void fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pending *p = arg;
    p->done(p->arg, &p->res);
    md_object_release(&p->rec);
    for (size_t i = 0; i < p->nrecs; i++)
        md_object_release(&p->recs[i]);
    free(p->recs);
    free(p->hashes);
    md_rec_infos_free(p->infos, p->ninfos);
    free(p);
}

static cm_err post(fake *f, pending *p, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (event_base_once(f->ev, -1, EV_TIMEOUT, fire, p, &tv) != 0) {
        free(p);
        return CM_ERR_INTERNAL;
    }
    return CM_OK;
}

static void part_bucket(const rp_part *p, char *out)
{
    snprintf(out, MD_BUCKET_MAX + 1, "%s.%u", p->bucket, p->shard);
}

static void ensure_bucket(fake *f, const char *name)
{
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "%s", name);
    (void)md_bucket_create(f->md, &b); /* CM_ERR_EXISTS is fine */
}

/* Merge rec into the store: keep it unless the stored version wins, or (as md_rec_merge) unless
 * it is a live record below the partition's tombstone collection mark of a key the store lacks. */
static cm_err merge_put(fake *f, const char *b, const rp_part *pt, const md_object *rec,
                        int *applied)
{
    md_shard part = {pt->shard, pt->nshards};
    uint64_t mark = 0;
    ensure_bucket(f, b);
    for (int tries = 0; tries < 100; tries++) {
        md_object cur;
        cm_err e = md_rec_get(f->md, b, rec->key, &cur);
        if (e != CM_OK && e != CM_ERR_NOTFOUND)
            return e;
        if (e == CM_ERR_NOTFOUND && !rec->tombstone &&
            md_tomb_mark(f->md, b, &part, &mark) == CM_OK && rec->hlc < mark) {
            *applied = 0;
            pthread_mutex_lock(&f->mu);
            f->n.refused++;
            pthread_mutex_unlock(&f->mu);
            return CM_OK;
        }
        uint64_t expect = e == CM_OK ? cur.generation : 0;
        int keep = e == CM_OK && md_object_resolve(&cur, rec, NULL) == 0;
        md_object_release(&cur);
        *applied = !keep;
        if (keep)
            return CM_OK;
        e = md_rec_put(f->md, b, rec, expect, NULL);
        if (e != CM_ERR_CONFLICT)
            return e;
    }
    return CM_ERR_CONFLICT;
}

/* One replica call: its kind and arguments (those of its rp_replica_ops entry). */
typedef enum { K_GET, K_PUT, K_LIST, K_MERKLE, K_LEAF_KEYS, K_TOMBS, K_TOMB_DROP } kind;

typedef struct {
    kind kind;
    const char *key;            /* get */
    const md_object *rec;       /* put */
    const char *hint_for;       /* put */
    const char *prefix, *after; /* list */
    size_t max;                 /* list */
    int depth;                  /* merkle, leaf keys */
    const uint32_t *leaves;     /* leaf keys */
    size_t nleaves;             /* leaf keys */
    uint64_t before;            /* tombs: stamped below; tomb drop: the new mark */
    const md_rec_info *infos;   /* tomb drop */
    size_t ninfos;              /* tomb drop */
} call;

static unsigned *counter(fake *f, kind k)
{
    switch (k) {
    case K_GET:
        return &f->n.gets;
    case K_PUT:
        return &f->n.puts;
    case K_LIST:
        return &f->n.lists;
    case K_MERKLE:
        return &f->n.merkles;
    case K_TOMBS:
        return &f->n.tombs;
    case K_TOMB_DROP:
        return &f->n.tomb_drops;
    default:
        return &f->n.leaf_keys;
    }
}

static void do_get(fake *f, const char *b, const rp_part *pt, const call *c, pending *p)
{
    p->res.err = md_fence_admit(f->md, pt->bucket, pt->shard, pt->fence); /* a leader's read */
    if (p->res.err == CM_OK)
        p->res.err = md_rec_get(f->md, b, c->key, &p->rec);
    if (p->res.err == CM_OK) {
        p->res.rec = &p->rec;
    } else if (p->res.err == CM_ERR_NOTFOUND) {
        md_bucket mb;
        p->res.no_bucket = md_bucket_get(f->md, b, &mb) != CM_OK;
    }
}

static void do_put(fake *f, const char *b, const rp_part *pt, const call *c, pending *p)
{
    pthread_mutex_lock(&f->mu);
    int lose = f->ft.lose_puts;
    if (c->hint_for && f->nhints < FAKE_HINTS_MAX &&
        md_object_copy(c->rec, &f->hint_rec[f->nhints]) == CM_OK) {
        snprintf(f->hint_for[f->nhints], 16, "%s", c->hint_for);
        snprintf(f->hint_bucket[f->nhints], MD_BUCKET_MAX + 1, "%s", b);
        f->nhints++;
        f->n.hints++;
        p->res.applied = 1;
    }
    pthread_mutex_unlock(&f->mu);
    if (lose)
        p->res.applied = 1;
    else if (!c->hint_for &&
             (p->res.err = md_fence_admit(f->md, pt->bucket, pt->shard, pt->fence)) == CM_OK)
        p->res.err = merge_put(f, b, pt, c->rec, &p->res.applied);
}

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void do_list(fake *f, const char *b, const call *c, pending *p)
{
    const char *prefix = c->prefix ? c->prefix : "";
    p->recs = calloc(c->max + 1, sizeof(*p->recs));
    char *from = c->after ? strdup(c->after) : NULL;
    if (*prefix && (!from || strcmp(from, prefix) < 0)) {
        free(from); /* keys > prefix minus its last byte include every key with the prefix */
        from = strndup(prefix, strlen(prefix) - 1);
    }
    int end = 0;
    while (!end && p->recs) {
        md_rec_info *in;
        size_t n;
        int trunc;
        cm_err e = md_rec_list(f->md, b, from, 256, &in, &n, &trunc);
        if (e != CM_OK) {
            p->res.err = e;
            p->res.no_bucket = e == CM_ERR_NOTFOUND;
            break;
        }
        for (size_t i = 0; i < n && !end; i++) {
            if (strcmp(in[i].key, prefix) < 0 && !starts(in[i].key, prefix))
                continue;
            if (!starts(in[i].key, prefix)) {
                end = 1;
            } else if (p->nrecs == c->max) {
                p->res.truncated = 1;
                end = 1;
            } else if (md_rec_get(f->md, b, in[i].key, &p->recs[p->nrecs]) == CM_OK) {
                md_object *o = &p->recs[p->nrecs++];
                free(o->inline_data); /* list entries carry no bodies */
                o->inline_data = NULL;
            }
        }
        if (n) {
            free(from);
            from = strdup(in[n - 1].key);
        }
        md_rec_infos_free(in, n);
        end = end || !trunc;
    }
    free(from);
    p->res.recs = p->recs;
    p->res.nrecs = p->nrecs;
    pthread_mutex_lock(&f->mu);
    f->n.listed += (unsigned)p->nrecs;
    pthread_mutex_unlock(&f->mu);
}

static void do_merkle(fake *f, const char *b, const call *c, pending *p)
{
    md_merkle *t;
    ensure_bucket(f, b);
    if ((p->res.err = md_merkle_build(f->md, b, c->depth, &t)) != CM_OK)
        return;
    if (c->kind == K_MERKLE) {
        size_t nl = 1;
        for (int i = 0; i < c->depth; i++)
            nl *= MD_MERKLE_FANOUT;
        p->hashes = malloc(nl * 16);
        for (size_t i = 0; p->hashes && i < nl; i++)
            memcpy(p->hashes + i * 16, md_merkle_node(t, c->depth, i), 16);
        p->res.hashes = p->hashes;
        p->res.nleaves = nl;
    } else {
        size_t *lv = calloc(c->nleaves + 1, sizeof(*lv));
        for (size_t i = 0; lv && i < c->nleaves; i++)
            lv[i] = c->leaves[i];
        p->res.err = md_merkle_leaf_keys(f->md, b, t, lv, c->nleaves, &p->infos, &p->ninfos);
        free(lv);
        p->res.infos = p->infos;
        p->res.ninfos = p->ninfos;
    }
    md_merkle_free(t);
}

static void do_tombs(fake *f, const char *b, const rp_part *pt, const call *c, pending *p)
{
    md_shard part = {pt->shard, pt->nshards};
    ensure_bucket(f, b);
    p->res.err = md_rec_tombs(f->md, b, &part, c->before, c->after, c->max, &p->infos, &p->ninfos,
                              &p->res.truncated);
    p->res.infos = p->infos;
    p->res.ninfos = p->ninfos;
}

static void do_tomb_drop(fake *f, const char *b, const rp_part *pt, const call *c, pending *p)
{
    md_shard part = {pt->shard, pt->nshards};
    ensure_bucket(f, b);
    if (!(p->hashes = calloc(c->ninfos, 1)))
        p->res.err = CM_ERR_NOMEM;
    else
        p->res.err = md_rec_collect(f->md, b, &part, c->before, c->infos, c->ninfos, p->hashes);
    p->res.dropped = p->hashes,
    p->res.ndropped = c->ninfos; /* the flags live in the hashes' buffer */
}

/* Every op: count it, apply the faults (a refusal returns at once; down and hang post their
 * failure), else run it on the store and post its completion delay_ms later. */
static cm_err run(rp_replica *r, const rp_part *pt, const call *c, rp_done done, void *arg)
{
    fake *f = (fake *)r;
    char b[MD_BUCKET_MAX + 1];
    part_bucket(pt, b);
    pthread_mutex_lock(&f->mu);
    (*counter(f, c->kind))++;
    fake_faults ft = f->ft;
    pthread_mutex_unlock(&f->mu);
    if (ft.refuse)
        return CM_ERR_UNAVAILABLE;
    pending *p = calloc(1, sizeof(*p));
    if (!p)
        return CM_ERR_NOMEM;
    p->done = done;
    p->arg = arg;
    if (ft.down || ft.stale || ft.hang_ms > 0) {
        p->res.err = ft.down ? CM_ERR_UNAVAILABLE : ft.stale ? CM_ERR_STALE : CM_ERR_TIMEOUT;
        p->res.message = "fault injected";
        return post(f, p, ft.down || ft.stale ? ft.delay_ms : ft.hang_ms);
    }
    switch (c->kind) {
    case K_GET:
        do_get(f, b, pt, c, p);
        break;
    case K_PUT:
        do_put(f, b, pt, c, p);
        break;
    case K_LIST:
        do_list(f, b, c, p);
        break;
    case K_TOMBS:
        do_tombs(f, b, pt, c, p);
        break;
    case K_TOMB_DROP:
        do_tomb_drop(f, b, pt, c, p);
        break;
    default:
        do_merkle(f, b, c, p);
    }
    return post(f, p, ft.delay_ms);
}

static cm_err f_get(rp_replica *r, const rp_part *pt, const char *key, rp_done done, void *arg)
{
    call c = {.kind = K_GET, .key = key};
    return run(r, pt, &c, done, arg);
}

static cm_err f_put(rp_replica *r, const rp_part *pt, const md_object *rec, const char *hint_for,
                    rp_done done, void *arg)
{
    call c = {.kind = K_PUT, .rec = rec, .hint_for = hint_for};
    return run(r, pt, &c, done, arg);
}

static cm_err f_list(rp_replica *r, const rp_part *pt, const char *prefix, const char *after,
                     size_t max, rp_done done, void *arg)
{
    call c = {.kind = K_LIST, .prefix = prefix, .after = after, .max = max};
    return run(r, pt, &c, done, arg);
}

static cm_err f_merkle(rp_replica *r, const rp_part *pt, int depth, rp_done done, void *arg)
{
    call c = {.kind = K_MERKLE, .depth = depth};
    return run(r, pt, &c, done, arg);
}

static cm_err f_leaf_keys(rp_replica *r, const rp_part *pt, int depth, const uint32_t *leaves,
                          size_t nleaves, rp_done done, void *arg)
{
    call c = {.kind = K_LEAF_KEYS, .depth = depth, .leaves = leaves, .nleaves = nleaves};
    return run(r, pt, &c, done, arg);
}

static cm_err f_tombs(rp_replica *r, const rp_part *pt, uint64_t before, const char *after,
                      size_t max, rp_done done, void *arg)
{
    call c = {.kind = K_TOMBS, .before = before, .after = after, .max = max};
    return run(r, pt, &c, done, arg);
}

static cm_err f_tomb_drop(rp_replica *r, const rp_part *pt, uint64_t mark, const md_rec_info *infos,
                          size_t n, rp_done done, void *arg)
{
    call c = {.kind = K_TOMB_DROP, .before = mark, .infos = infos, .ninfos = n};
    return run(r, pt, &c, done, arg);
}

static void f_free(rp_replica *r)
{
    (void)r; /* owned by the test: fake_free */
}

static const rp_replica_ops fake_ops = {f_get,       f_put,  f_list,  f_merkle,
                                        f_leaf_keys, f_free, f_tombs, f_tomb_drop};

fake *fake_new(struct event_base *base, const char *dir, const char *id)
{
    fake *f = calloc(1, sizeof(*f));
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, id);
    if (!f || md_open(path, 0, &f->md) != CM_OK) {
        free(f);
        return NULL;
    }
    snprintf(f->id, sizeof(f->id), "%s", id);
    f->base.ops = &fake_ops;
    f->base.node_id = f->id;
    f->ev = base;
    pthread_mutex_init(&f->mu, NULL);
    return f;
}

void fake_free(fake *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nhints; i++)
        md_object_release(&f->hint_rec[i]);
    md_close(f->md);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

rp_replica *fake_replica(fake *f)
{
    return &f->base;
}

md_store *fake_store(fake *f)
{
    return f->md;
}

void fake_set_faults(fake *f, const fake_faults *ft)
{
    pthread_mutex_lock(&f->mu);
    f->ft = *ft;
    pthread_mutex_unlock(&f->mu);
}

void fake_counts_get(fake *f, fake_counts *out)
{
    pthread_mutex_lock(&f->mu);
    *out = f->n;
    pthread_mutex_unlock(&f->mu);
}

unsigned fake_gets(fake **fakes, int n)
{
    unsigned sum = 0;
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&fakes[i]->mu);
        sum += fakes[i]->n.gets;
        pthread_mutex_unlock(&fakes[i]->mu);
    }
    return sum;
}

cm_err fake_rec(fake *f, const char *bucket, uint32_t shard, const char *key, md_object *out)
{
    rp_part p = {bucket, shard, 0, 0};
    char b[MD_BUCKET_MAX + 1];
    part_bucket(&p, b);
    return md_rec_get(f->md, b, key, out);
}

size_t fake_hints(fake *f, const char *node_id)
{
    size_t n = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nhints; i++)
        n += strcmp(f->hint_for[i], node_id) == 0;
    pthread_mutex_unlock(&f->mu);
    return n;
}

size_t fake_deliver_hints(fake *f, fake *to, uint32_t nshards)
{
    size_t n = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nhints;) {
        int applied;
        rp_part pt = {f->hint_bucket[i], rp_shard_of(f->hint_rec[i].key, nshards), nshards, 0};
        if (strcmp(f->hint_for[i], to->id) != 0 ||
            merge_put(to, f->hint_bucket[i], &pt, &f->hint_rec[i], &applied) != CM_OK) {
            i++;
            continue;
        }
        md_object_release(&f->hint_rec[i]);
        f->nhints--;
        f->hint_rec[i] = f->hint_rec[f->nhints];
        memcpy(f->hint_for[i], f->hint_for[f->nhints], 16);
        memcpy(f->hint_bucket[i], f->hint_bucket[f->nhints], MD_BUCKET_MAX + 1);
        n++;
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}

struct rp_router {
    fake *f[RP_MAX_SHARDS];
    int n;
};

struct rp_router *fake_router_new(fake **fakes, int n)
{
    struct rp_router *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return NULL;
    for (int i = 0; i < n; i++)
        rt->f[i] = fakes[i];
    rt->n = n;
    return rt;
}

void fake_router_free(struct rp_router *rt)
{
    free(rt);
}

int fake_route(struct rp_router *rt, const rp_part *p, int n, int nfallback, rp_replica **out)
{
    int k = 0;
    for (int i = 0; i < n + nfallback && i < rt->n; i++)
        out[k++] = &rt->f[(p->shard + (uint32_t)i) % (uint32_t)rt->n]->base;
    return k;
}
