/*
 * ob_cluster.c - the cluster mode of an ob_store (ob.h; docs/chunks.md "The S3 data path across
 * nodes"): its event-loop thread, the layouts it adopts, deletes, counters.
 *
 * The loop thread owns an RPC client to the other nodes and the local chunk backend over the
 * store's own drives (the same bs_stores: they are thread-safe); every chunk call of the cluster
 * mode runs on it, but for the reads started on a caller's loop that ob_store_loop_attach
 * attached (a lane: an RPC client of its own on that loop, a local backend sharing this one's
 * workers, its own latencies), which run there (docs/chunks.md, "Reads on the gateway's own
 * loops"). Workers (the gateway's) reach it by posting a function (event_base_once, which
 * wakes the loop) and wait on their own condition variable: the writer (ob_cluster_write.c) for
 * window room and the end of a body, the reader (ob_cluster_read.c) for its range. Deletes are
 * posted and not waited for.
 *
 * Layouts: ob_store_set_topology builds a view (topology copy, homes map, resolver, profile) on
 * the caller's thread and swaps it in under the mutex. A body or read takes a reference on the
 * view current when it starts and drops it when its last call ended, so a new layout never pulls
 * a resolver from under calls in flight. Node indices in layouts are the topology's: the layout
 * document keeps them stable across epochs (docs/placement.md, "Node indices").
 *
 * Shutdown (ob_cluster_free): wait until no operation has calls on the loop, break the loop, join
 * it, free the client (nothing is in flight), the local backend, the view.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "cm_log.h"
#include "cm_util.h"
#include "ob_cl.h"

#define MOD "obj"

/* ---- views ---- */

void ob_cl_view_put(ob_view *v)
{
    if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
        return;
    ob_resolver_free(v->r);
    for (int i = 0; i < OB_CL_LANES; i++)
        ob_resolver_free(v->lane_r[i]);
    pl_map_free(v->homes);
    pl_topology_free(v->t);
    free(v->dead_to);
    free(v);
}

ob_view *ob_cl_view_get(ob_cluster *c)
{
    pthread_mutex_lock(&c->mu);
    ob_view *v = c->view;
    if (v)
        atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&c->mu);
    return v;
}

static cm_err view_new(ob_cluster *c, const pl_topology *t, ob_view **out)
{
    ob_view *v = calloc(1, sizeof(*v));
    if (!v)
        return CM_ERR_NOMEM;
    atomic_init(&v->refs, 1);
    cm_err e = pl_topology_clone(t, &v->t);
    if (e == CM_OK)
        e = pl_map_new(v->t, PL_MAP_HOMES, &v->homes);
    if (e == CM_OK)
        e = ob_resolver_new(v->t, c->self, c->local, c->cl, &v->r);
    if (e == CM_OK && !(v->dead_to = calloc((size_t)t->nnodes + 1, sizeof(*v->dead_to))))
        e = CM_ERR_NOMEM;
    v->self = pl_topology_find(t, c->self);
    if (e == CM_OK && v->self < 0)
        e = CM_ERR_INVAL;
    if (e != CM_OK) {
        ob_cl_view_put(v);
        return e;
    }
    pl_default_profile(v->t, &v->k, &v->m);
    *out = v;
    return CM_OK;
}

cm_err ob_store_set_topology(ob_store *st, const pl_topology *t)
{
    ob_cluster *c = ob_store_cluster(st);
    ob_view *v;
    if (!c)
        return CM_ERR_INVAL;
    cm_err e = view_new(c, t, &v);
    if (e != CM_OK) {
        CM_ERROR(MOD, "layout epoch %llu not adopted by the data path: %s",
                 (unsigned long long)t->epoch, cm_err_str(e));
        return e;
    }
    pthread_mutex_lock(&c->mu);
    ob_view *old = c->view;
    c->view = v;
    pthread_mutex_unlock(&c->mu);
    ob_cl_view_put(old);
    CM_INFO(MOD, "data path on layout epoch %llu: %d nodes, %d+%d", (unsigned long long)t->epoch,
            t->nnodes, v->k, v->m);
    return CM_OK;
}

int ob_cluster_local_drive(ob_cluster *c, const md_layout *lay, int i)
{
    ob_view *v = ob_cl_view_get(c);
    int d = -1;
    if (v && lay->drives[i] != PL_NONE && lay->nodes[i] == v->self &&
        lay->drives[i] < v->t->nodes[v->self].ndrives)
        d = (int)v->t->nodes[v->self].drives[lay->drives[i]].id;
    ob_cl_view_put(v);
    return d < PL_NONE ? d : -1;
}

/* ---- liveness and latency ---- */

void ob_cl_node_failed(ob_cluster *c, ob_view *v, int node, cm_err e)
{
    if (node < 0 || node >= v->t->nnodes || node == v->self)
        return;
    if (e != CM_ERR_UNAVAILABLE && e != CM_ERR_TIMEOUT && e != CM_ERR_CLOSED)
        return; /* the node answered: a chunk's problem, not the node's */
    atomic_store(&v->dead_to[node], cm_monotonic_ms() + c->cfg.dead_ms);
}

void ob_cl_dead_nodes(const ob_view *v, uint8_t *dead)
{
    long long now = cm_monotonic_ms();
    for (int i = 0; i < v->t->nnodes; i++)
        dead[i] = atomic_load(&v->dead_to[i]) > now;
}

void ob_cl_note_latency(ob_cl_lat *l, int ms)
{
    l->lat[l->pos] = ms;
    l->pos = (l->pos + 1) % OB_CL_LAT;
    if (l->n < OB_CL_LAT)
        l->n++;
}

/* Fixed, or the second slowest of the last 64 used reads (about their 98th percentile), but
 * never below hedge_min_ms: a hedge costs a cell read, so only a clear straggler earns one. */
int ob_cl_hedge_ms(const ob_cluster *c, const ob_cl_lat *l)
{
    if (c->cfg.hedge_ms > 0)
        return c->cfg.hedge_ms;
    int a = 0, b = 0;
    for (int i = 0; i < l->n; i++) {
        if (l->lat[i] > a) {
            b = a;
            a = l->lat[i];
        } else if (l->lat[i] > b) {
            b = l->lat[i];
        }
    }
    return CM_MAX(c->cfg.hedge_min_ms, b);
}

void ob_cl_max(atomic_ullong *a, uint64_t v)
{
    unsigned long long cur = atomic_load(a);
    while (cur < v && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

/* ---- the loop ---- */

void ob_cl_op_begin(ob_cluster *c)
{
    pthread_mutex_lock(&c->mu);
    c->ops++;
    pthread_mutex_unlock(&c->mu);
}

void ob_cl_op_end(ob_cluster *c)
{
    pthread_mutex_lock(&c->mu);
    if (--c->ops == 0)
        pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->mu);
}

typedef struct {
    void (*fn)(void *arg);
    void *arg;
} posted;

static void run_posted(evutil_socket_t fd, short what, void *arg)
{
    posted p = *(posted *)arg;
    (void)fd;
    (void)what;
    free(arg);
    p.fn(p.arg);
}

cm_err ob_cl_post(ob_cluster *c, void (*fn)(void *arg), void *arg)
{
    posted *p = malloc(sizeof(*p));
    if (!p)
        return CM_ERR_NOMEM;
    p->fn = fn;
    p->arg = arg;
    if (event_base_once(c->base, -1, EV_TIMEOUT, run_posted, p, NULL) != 0) {
        free(p);
        return CM_ERR_NOMEM;
    }
    return CM_OK;
}

static void *loop_main(void *arg)
{
    ob_cluster *c = arg;
    event_base_loop(c->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

cm_err ob_cluster_new(ob_store *st, const ob_cluster_config *cfg, ob_cluster **out)
{
    int nd = ob_store_ndrives(st);
    if (!cfg->self || !nd_node_id_valid(cfg->self) || !cfg->secret || cfg->secret_len == 0 ||
        cfg->window < 0 || cfg->window == 1 || cfg->window > 16 || nd > ND_MAX_DRIVES)
        return CM_ERR_INVAL;
    ob_cluster *c = calloc(1, sizeof(*c));
    if (!c)
        return CM_ERR_NOMEM;
    c->st = st;
    c->cfg = *cfg;
    c->cfg.window = cfg->window ? cfg->window : 4;
    c->cfg.hedge_min_ms = cfg->hedge_min_ms ? cfg->hedge_min_ms : 20;
    c->cfg.io_timeout_ms = cfg->io_timeout_ms ? cfg->io_timeout_ms : 10000;
    c->cfg.dead_ms = cfg->dead_ms ? cfg->dead_ms : 5000;
    c->cfg.write_wait_ms = cfg->write_wait_ms ? cfg->write_wait_ms : 2000;
    snprintf(c->self, sizeof(c->self), "%s", cfg->self);
    c->cfg.self = c->self;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->idle, NULL);
    cm_err e = (c->secret = malloc(cfg->secret_len)) ? CM_OK : CM_ERR_NOMEM;
    if (e == CM_OK) {
        memcpy(c->secret, cfg->secret, cfg->secret_len);
        c->cfg.secret = c->secret;
        e = (c->base = event_base_new()) ? CM_OK : CM_ERR_NOMEM;
    }
    nd_client_config cc = {0};
    cc.node_id = c->self;
    cc.secret = c->secret;
    cc.secret_len = cfg->secret_len;
    cc.faults = cfg->faults;
    cc.net.io_timeout_ms = c->cfg.io_timeout_ms;
    cc.net.tls = cfg->rpc_tls;
    c->ccfg = cc;
    if (e == CM_OK)
        e = nd_client_new(c->base, &cc, &c->cl);
    for (int d = 0; d < nd; d++) /* slot d is the drive whose id is d */
        c->drives[d].bs = ob_store_drive(st, (uint8_t)d);
    if (e == CM_OK)
        e = ob_chunks_local_new(c->base, c->drives, nd, cfg->local_threads, &c->local);
    if (e == CM_OK)
        e = pthread_create(&c->thread, NULL, loop_main, c) == 0 ? CM_OK : CM_ERR_NOMEM;
    c->running = e == CM_OK;
    if (e != CM_OK) {
        ob_cluster_free(c);
        return e;
    }
    *out = c;
    return CM_OK;
}

/* ---- lanes: callers' loops that run their reads themselves ---- */

#define LANE_DRAIN_MS 30000 /* a detach waits this long for the lane's local reads and timers */

cm_err ob_store_loop_attach(ob_store *st, struct event_base *base)
{
    ob_cluster *c = ob_store_cluster(st);
    if (!c)
        return CM_OK;
    ob_lane *l = calloc(1, sizeof(*l));
    if (!l)
        return CM_ERR_NOMEM;
    l->c = c;
    l->base = base;
    cm_err e = nd_client_new(base, &c->ccfg, &l->cl);
    if (e == CM_OK)
        e = ob_chunks_local_share(c->local, base, &l->local);
    if (e == CM_OK) {
        e = CM_ERR_NOSPC;
        pthread_mutex_lock(&c->mu);
        int free_slot = -1;
        for (int i = 0; i < OB_CL_LANES; i++) {
            if (c->lanes[i] && c->lanes[i]->base == base) {
                free_slot = -1;
                e = CM_ERR_EXISTS;
                break;
            }
            if (!c->lanes[i] && free_slot < 0)
                free_slot = i;
        }
        if (free_slot >= 0) {
            l->slot = free_slot;
            l->gen = ++c->lane_gen;
            c->lanes[free_slot] = l;
            e = CM_OK;
        }
        pthread_mutex_unlock(&c->mu);
    }
    if (e != CM_OK) {
        ob_chunks_free(l->local);
        nd_client_free(l->cl);
        free(l);
    }
    return e;
}

/* The lane's calls end: the RPC client's at once (CM_ERR_CLOSED), the local ones and the reads'
 * timers as base's loop runs them here; no read asks for more once closing is set. */
static void lane_close(ob_lane *l)
{
    l->closing = 1;
    nd_client_free(l->cl);
    l->cl = NULL;
    long long until = cm_monotonic_ms() + LANE_DRAIN_MS;
    while (l->ops > 0 && cm_monotonic_ms() < until) {
        event_base_loop(l->base, EVLOOP_NONBLOCK);
        if (l->ops > 0)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    if (l->ops > 0) { /* a local read stuck on a drive: its job still names the lane's backend */
        CM_ERROR(MOD, "a loop's %d reads did not end in %d ms; leaving their state behind", l->ops,
                 LANE_DRAIN_MS);
        return;
    }
    ob_chunks_free(l->local);
    free(l);
}

void ob_store_loop_detach(ob_store *st, struct event_base *base)
{
    ob_cluster *c = ob_store_cluster(st);
    if (!c)
        return;
    ob_lane *l = NULL;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < OB_CL_LANES && !l; i++)
        if (c->lanes[i] && c->lanes[i]->base == base) {
            l = c->lanes[i];
            c->lanes[i] = NULL;
        }
    pthread_mutex_unlock(&c->mu);
    if (l)
        lane_close(l);
}

ob_lane *ob_cl_lane_of(ob_cluster *c, struct event_base *base)
{
    ob_lane *l = NULL;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < OB_CL_LANES && !l; i++)
        if (c->lanes[i] && c->lanes[i]->base == base)
            l = c->lanes[i];
    pthread_mutex_unlock(&c->mu);
    return l;
}

ob_resolver *ob_cl_lane_resolver(ob_lane *l, ob_view *v)
{
    int i = l->slot;
    if (v->lane_r[i] && v->lane_gen[i] == l->gen)
        return v->lane_r[i];
    /* a lane detached from this slot left its resolver (its reads all ended before the detach,
     * and the slot's reuse was ordered after it by the cluster's mu) */
    ob_resolver_free(v->lane_r[i]);
    v->lane_r[i] = NULL;
    if (ob_resolver_new(v->t, l->c->self, l->local, l->cl, &v->lane_r[i]) != CM_OK)
        return NULL;
    v->lane_gen[i] = l->gen;
    return v->lane_r[i];
}

void ob_cluster_free(ob_cluster *c)
{
    if (!c)
        return;
    for (int i = 0; i < OB_CL_LANES; i++) /* an owner that did not detach: their bases live on */
        if (c->lanes[i]) {
            lane_close(c->lanes[i]);
            c->lanes[i] = NULL;
        }
    pthread_mutex_lock(&c->mu);
    while (c->ops > 0)
        pthread_cond_wait(&c->idle, &c->mu);
    pthread_mutex_unlock(&c->mu);
    if (c->running) {
        /* loopexit, not loopbreak: a break asked before the loop thread entered its loop is lost
         * (event_base_loop clears it on entry), which hung a test whose loop never ran */
        event_base_loopexit(c->base, NULL);
        pthread_join(c->thread, NULL);
    }
    nd_client_free(c->cl);
    ob_chunks_free(c->local);
    ob_cl_view_put(c->view);
    if (c->base)
        event_base_free(c->base);
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->mu);
    free(c->secret);
    free(c);
}

cm_err ob_store_cluster_start(ob_store *st, const ob_cluster_config *cfg)
{
    ob_cluster *c;
    if (ob_store_cluster(st))
        return CM_ERR_INVAL;
    cm_err e = ob_cluster_new(st, cfg, &c);
    if (e == CM_OK)
        ob_store_set_cluster(st, c);
    return e;
}

void ob_store_cluster_stats(ob_store *st, ob_cluster_stats *out)
{
    ob_cluster *c = ob_store_cluster(st);
    memset(out, 0, sizeof(*out));
    if (!c)
        return;
    ob_view *v = ob_cl_view_get(c);
    if (v) {
        out->epoch = v->t->epoch;
        out->k = v->k;
        out->m = v->m;
    }
    ob_cl_view_put(v);
    out->bodies = atomic_load(&c->bodies);
    out->bytes_written = atomic_load(&c->bytes_written);
    out->reads = atomic_load(&c->reads);
    out->reads_on_loops = atomic_load(&c->reads_on_loops);
    out->cells_batched = atomic_load(&c->cells_batched);
    out->cells_appended_batched = atomic_load(&c->cells_appended_batched);
    out->handoffs = atomic_load(&c->handoffs);
    out->cells_dropped = atomic_load(&c->cells_dropped);
    out->hedges = atomic_load(&c->hedges);
    out->reads_degraded = atomic_load(&c->reads_degraded);
    out->remote_deletes = atomic_load(&c->deletes);
    out->buf_high_water = atomic_load(&c->buf_high_water);
    out->read_ahead_max = atomic_load(&c->read_ahead_max);
    out->read_bytes_max = atomic_load(&c->read_bytes_max);
}

/* ---- deletes ---- */

typedef struct {
    ob_cluster *c;
    ob_view *v;
    int left;
} del_op;

static void del_done(void *arg, const ob_chunk_result *res)
{
    del_op *d = arg;
    if (res->err != CM_OK) /* a down node's cell: left for the orphan sweep */
        CM_WARN(MOD, "a cell of a freed body not deleted (%s): left for the orphan sweep",
                cm_err_str(res->err));
    if (--d->left > 0)
        return;
    ob_cl_view_put(d->v);
    ob_cl_op_end(d->c);
    free(d);
}

void ob_cl_delete_cells(ob_cluster *c, ob_view *v, const bs_id *id, const pl_cell *cells, int n)
{
    del_op *d = calloc(1, sizeof(*d));
    if (!d) {
        CM_WARN(MOD, "no memory to delete a body's cells: left for the orphan sweep");
        return;
    }
    d->c = c;
    d->v = v;
    atomic_fetch_add(&v->refs, 1);
    ob_cl_op_begin(c);
    d->left = 1; /* held while the calls are sent */
    for (int i = 0; i < n; i++) {
        uint32_t drive;
        ob_chunks *b = ob_resolve_cell(v->r, &cells[i], &drive);
        if (b && ob_chunk_delete(b, drive, id, del_done, d) == CM_OK) {
            d->left++;
            atomic_fetch_add(&c->deletes, 1);
        }
    }
    ob_chunk_result none = {CM_OK, 0, NULL, NULL, 0, 0, ""};
    del_done(d, &none);
}

typedef struct {
    ob_cluster *c;
    ob_view *v;
    md_layout lay;
} del_req;

static void delete_on_loop(void *arg)
{
    del_req *q = arg;
    pl_cell cells[MD_MAX_CELLS];
    bs_id id;
    int n = 0;
    memcpy(id.b, q->lay.blob, sizeof(id.b));
    for (int i = 0; i < q->lay.k + q->lay.m && i < MD_MAX_CELLS; i++)
        if (q->lay.drives[i] != PL_NONE)
            cells[n++] = (pl_cell){q->lay.nodes[i], q->lay.drives[i]};
    ob_cl_delete_cells(q->c, q->v, &id, cells, n);
    ob_cl_view_put(q->v);
    ob_cl_op_end(q->c);
    free(q);
}

cm_err ob_cluster_delete(ob_cluster *c, const md_layout *lay)
{
    ob_view *v = ob_cl_view_get(c);
    del_req *q = v ? malloc(sizeof(*q)) : NULL;
    if (!q) {
        ob_cl_view_put(v);
        CM_WARN(MOD, "cells of a freed body not deleted (%s): left for the orphan sweep",
                v ? "no memory" : "no layout adopted");
        return v ? CM_ERR_NOMEM : CM_ERR_UNAVAILABLE;
    }
    q->c = c;
    q->v = v;
    q->lay = *lay;
    ob_cl_op_begin(c);
    cm_err e = ob_cl_post(c, delete_on_loop, q);
    if (e != CM_OK) {
        ob_cl_view_put(v);
        ob_cl_op_end(c);
        free(q);
    }
    return e;
}
