/*
 * gw_pool.c - worker threads for the blocking part of a request (fdatasync of the data, the
 * metadata commit, deletes of data nobody recorded), so an event loop keeps serving its other
 * connections meanwhile and many commits can be in flight at once (which is what lets them share
 * fsyncs: the blobstore's and the metadata store's group commit).
 *
 * Protocol: gw_offload(r, work, done) hands the request to the pool. While the job runs the request
 * belongs to the worker: the loop thread must not touch it, and work() must not touch r->net (the
 * connection may die meanwhile). When work() returns, done() is scheduled on the request's own
 * event loop (event_base_once, thread-safe with libevent's pthreads support). If the connection was
 * closed while the job ran, on_done only marks the request orphaned; the completion then frees it
 * instead of calling done(). gw_dispose(r, work) is a job without a completion: the worker runs
 * work(r) and frees the request (gw_req_free hands its blocking part to a worker this way).
 *
 * Completions go back to a loop in runs: each loop has a slot in the pool with the completions
 * posted to it and not yet run (ret_next links, in posting order). The first posting to an empty
 * slot schedules one event_base_once that runs them all; later ones only append. A batch of n
 * inline PUTs committed at once so costs the commit thread one event_base_once per loop instead of
 * n (each an allocation, a timer insert and the base's lock; docs/performance.md, "Tenth
 * session").
 *
 * Shutdown: the loops exit first (net_server_run returns), then gw_pool_stop() joins the workers
 * while the event bases still exist. From the moment it is called, a job that finishes does not go
 * back to its loop (which will never run again): the worker frees the request itself when its
 * connection is gone (always the case once the loops have exited; a request whose connection
 * still exists is left for net_server_free's on_done). Completions that were posted just before
 * and never ran are on the `returning` list, and gw_pool_stop frees those requests after the join.
 * So no job ever calls event_base_once on a freed base, and no request is leaked.
 *
 * Asynchronous jobs (gw_async_begin/end/continue): a request handed to another thread that
 * completes it without a worker - an inline PUT's metadata commit, whose completion the commit
 * thread runs (md_object_put_async). It counts as running, so gw_pool_stop waits for it after
 * the join, and it goes back to its loop exactly as a worker's job does (job_return). Why: with a
 * worker blocked on each commit, a batch of n PUTs cost n worker wake-ups on the way in and n on
 * the way out, and the context switches dominated a 4 KiB PUT's CPU (docs/performance.md).
 *
 * Data jobs (gw_pool_job, an ob_runner): a writer's frame to compress (docs/compression.md), so
 * a compressible PUT does not hold its loop. They wait on their own queue (the ob_job is the
 * node; the writer holds at most a few frames at once) and a worker takes them when no request
 * job waits. Their completion goes back to the loop through the writer's own event, not here.
 *
 * Bounds: the queue is intrusive (the request is the queue node), so it allocates nothing and is
 * bounded by the requests in flight (one per connection, so by max_connections); past max_queued
 * waiting jobs (gw_config.workers_queue) the pool is saturated. On a single node gw_offload then
 * runs the job inline on the loop (a local commit: slower, never lost, and the loop stops reading
 * meanwhile, which is backpressure). On a cluster node (object records replicated, or a bucket
 * namespace) a job may wait on other nodes for up to an RPC timeout, and run inline it would
 * stall every connection of the loop: there a saturated pool refuses new requests before they
 * start (gw_pool_refuses, 503 SlowDown, which S3 clients retry with backoff), and gw_offload
 * queues the requests already admitted past the bound (each holds only its own state, and they
 * are at most one per connection). Dispose jobs are always queued: they hold nothing beyond the
 * request itself.
 */
#include "gw_int.h"

#include <event2/event.h>
#include <stdlib.h>

#include "cm_log.h"

#define MOD "gw"

/* One loop's completions posted and not run yet; `scheduled`: an event_base_once will run them. */
typedef struct ret_slot {
    gw_pool *pool;
    struct event_base *base;
    gw_req *head, *tail;
    int scheduled;
} ret_slot;

struct gw_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t idle_cv; /* running dropped to 0 while stopping */
    gw_req *head, *tail;
    ob_job *jhead, *jtail; /* data jobs (gw_pool_job) */
    size_t queued, max_queued;
    int stop;
    int detached;      /* the loops are gone: completions do not go back to them */
    int running;       /* jobs between dequeue (or gw_async_begin) and completion */
    gw_req *returning; /* completions posted to a loop and not run yet (job_next/job_prev) */
    ret_slot **slots;  /* one per loop that had a completion, found by base (few loops) */
    int nslots;
    uint64_t returned, runs; /* completions posted to loops; event_base_once calls that ran them */
    int nthreads;
    pthread_t *threads;
};

static void returning_unlink(gw_pool *p, gw_req *r)
{
    if (r->job_prev)
        r->job_prev->job_next = r->job_next;
    else
        p->returning = r->job_next;
    if (r->job_next)
        r->job_next->job_prev = r->job_prev;
    r->job_next = r->job_prev = NULL;
}

/* Empty sl and take its completions off `returning`; the first of them (ret_next links). */
static gw_req *slot_take(gw_pool *p, ret_slot *sl)
{
    pthread_mutex_lock(&p->mu);
    gw_req *r = sl->head;
    sl->head = sl->tail = NULL;
    sl->scheduled = 0;
    for (gw_req *q = r; q; q = q->ret_next)
        returning_unlink(p, q);
    pthread_mutex_unlock(&p->mu);
    return r;
}

/* Loop: run the completions posted to this loop, in posting order. */
static void complete(evutil_socket_t fd, short what, void *arg)
{
    ret_slot *sl = arg;
    gw_pool *p = sl->pool;
    (void)fd;
    (void)what;
    gw_req *r = slot_take(p, sl);
    while (r) {
        gw_req *next = r->ret_next; /* r may be freed or reused by its job_done */
        r->busy = 0;
        if (r->orphaned)
            gw_req_free(r); /* the connection went away while the job ran */
        else
            r->job_done(r);
        r = next;
    }
}

/* The slot of a loop's base, made on its first completion; NULL without memory. Under p->mu. */
static ret_slot *slot_of(gw_pool *p, struct event_base *base)
{
    for (int i = 0; i < p->nslots; i++)
        if (p->slots[i]->base == base)
            return p->slots[i];
    ret_slot **grown = realloc(p->slots, (size_t)(p->nslots + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    p->slots = grown;
    ret_slot *sl = calloc(1, sizeof(*sl));
    if (!sl)
        return NULL;
    sl->pool = p;
    sl->base = base;
    p->slots[p->nslots++] = sl;
    return sl;
}

/* A finished job whose loop will not run again: nothing can answer; free it if nobody else will. */
static void complete_detached(gw_req *r)
{
    r->busy = 0;
    if (r->orphaned)
        gw_req_free(r);
    else
        CM_WARN(MOD, "req=%s finished after the loops stopped; its connection closes unanswered",
                r->id);
}

/* Hand a finished job back to its loop, or finish it here when the loops are gone. */
static void job_return(gw_pool *p, gw_req *r)
{
    static const struct timeval now = {0, 0};
    if (!r->job_done) { /* gw_dispose: nothing to answer */
        gw_req_free(r);
        return;
    }
    pthread_mutex_lock(&p->mu);
    ret_slot *sl = p->detached ? NULL : slot_of(p, r->base);
    int schedule = 0;
    if (sl) {
        r->job_prev = NULL;
        r->job_next = p->returning;
        if (p->returning)
            p->returning->job_prev = r;
        p->returning = r;
        r->ret_next = NULL;
        if (sl->tail)
            sl->tail->ret_next = r;
        else
            sl->head = r;
        sl->tail = r;
        schedule = !sl->scheduled;
        sl->scheduled = 1;
        p->returned++;
        p->runs += (uint64_t)schedule;
    }
    pthread_mutex_unlock(&p->mu);
    if (!sl) {
        complete_detached(r);
        return;
    }
    if (schedule && event_base_once(r->base, -1, EV_TIMEOUT, complete, sl, &now) != 0) {
        /* Nothing will run this slot: finish what it holds here (postings since ours only
         * appended, counting on our event). */
        gw_req *q = slot_take(p, sl);
        while (q) {
            gw_req *next = q->ret_next;
            complete_detached(q);
            q = next;
        }
    }
}

void gw_pool_return_counts(gw_pool *p, uint64_t *returned, uint64_t *runs)
{
    pthread_mutex_lock(&p->mu);
    *returned = p->returned;
    *runs = p->runs;
    pthread_mutex_unlock(&p->mu);
}

/* A job (worker's or asynchronous) is over. */
static void job_finished(gw_pool *p)
{
    pthread_mutex_lock(&p->mu);
    if (--p->running == 0 && p->stop)
        pthread_cond_broadcast(&p->idle_cv);
    pthread_mutex_unlock(&p->mu);
}

static void *worker(void *arg)
{
    gw_pool *p = arg;

    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->jhead && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        gw_req *r = p->head;
        if (!r && p->jhead) {
            ob_job *j = p->jhead;
            if (!(p->jhead = j->next))
                p->jtail = NULL;
            pthread_mutex_unlock(&p->mu);
            j->run(j);
            continue;
        }
        if (!r) { /* stopping and drained */
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        p->head = r->job_next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->mu);

        r->job_work(r);
        job_return(p, r);
        job_finished(p);
    }
}

cm_err gw_pool_new(int nthreads, size_t max_queued, gw_pool **out)
{
    gw_pool *p = calloc(1, sizeof(*p));
    if (!p || nthreads < 1 || max_queued < 1 ||
        !(p->threads = calloc((size_t)nthreads, sizeof(pthread_t)))) {
        free(p);
        return nthreads < 1 || max_queued < 1 ? CM_ERR_INVAL : CM_ERR_NOMEM;
    }
    p->max_queued = max_queued;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->idle_cv, NULL);
    for (; p->nthreads < nthreads; p->nthreads++)
        if (pthread_create(&p->threads[p->nthreads], NULL, worker, p) != 0) {
            gw_pool_free(p);
            return CM_ERR_NOMEM;
        }
    *out = p;
    return CM_OK;
}

void gw_pool_stop(gw_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    int first = !p->detached;
    p->stop = 1;
    p->detached = 1;
    if (first && (p->running || p->queued))
        CM_INFO(MOD, "waiting for %d running and %zu queued worker jobs", p->running, p->queued);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
    pthread_mutex_lock(&p->mu); /* asynchronous jobs: their completing threads still run */
    while (p->running > 0)
        pthread_cond_wait(&p->idle_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    /* Completions posted before the stop whose loop exited without running them. */
    while (p->returning) {
        gw_req *r = p->returning;
        returning_unlink(p, r);
        complete_detached(r);
    }
    for (int i = 0; i < p->nslots; i++) { /* what they held was on `returning`, finished above */
        p->slots[i]->head = p->slots[i]->tail = NULL;
        p->slots[i]->scheduled = 0;
    }
}

void gw_pool_free(gw_pool *p)
{
    if (!p)
        return;
    gw_pool_stop(p);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->idle_cv);
    for (int i = 0; i < p->nslots; i++)
        free(p->slots[i]);
    free(p->slots);
    free(p->threads);
    free(p);
}

/* Queue r; 0, or -1 when the pool is stopped or (unless always) saturated. */
static int enqueue(gw_pool *p, gw_req *r, int always)
{
    pthread_mutex_lock(&p->mu);
    if (p->stop || (!always && p->queued >= p->max_queued)) {
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    r->busy = 1;
    if (p->tail)
        p->tail->job_next = r;
    else
        p->head = r;
    p->tail = r;
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* A cluster node: offloaded work may wait on other nodes (quorum calls, etcd). */
static int remote_work(const gw *g)
{
    return g->rp || g->ns.lookup || g->ns.create || g->ns.remove;
}

int gw_pool_refuses(gw_pool *p, const gw *g)
{
    if (!remote_work(g))
        return 0;
    pthread_mutex_lock(&p->mu);
    int full = p->queued >= p->max_queued;
    pthread_mutex_unlock(&p->mu);
    return full;
}

void gw_offload(gw_req *r, gw_work_fn work, gw_finish_fn done)
{
    r->job_work = work;
    r->job_done = done;
    r->job_next = NULL;
    r->base = net_req_base(r->net);
    if (enqueue(r->g->pool, r, remote_work(r->g)) != 0) {
        work(r); /* a single node saturated (or the pool stopped): do it here */
        done(r);
    }
}

int gw_pool_job(void *pool, ob_job *j)
{
    gw_pool *p = pool;
    pthread_mutex_lock(&p->mu);
    int stopped = p->stop;
    if (!stopped) {
        j->next = NULL;
        if (p->jtail)
            p->jtail->next = j;
        else
            p->jhead = j;
        p->jtail = j;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return stopped ? -1 : 0;
}

void gw_dispose(gw_req *r, gw_work_fn work)
{
    r->job_work = work;
    r->job_done = NULL;
    r->job_next = NULL;
    if (enqueue(r->g->pool, r, 1) != 0) {
        work(r); /* the loops are gone: nobody waits on this thread */
        gw_req_free(r);
    }
}

void gw_async_begin(gw_req *r, gw_finish_fn done)
{
    gw_pool *p = r->g->pool;
    r->job_work = NULL;
    r->job_done = done;
    r->job_next = NULL;
    r->base = net_req_base(r->net);
    r->busy = 1;
    pthread_mutex_lock(&p->mu);
    p->running++;
    pthread_mutex_unlock(&p->mu);
}

void gw_async_end(gw_req *r)
{
    gw_pool *p = r->g->pool; /* r may be gone once returned */
    job_return(p, r);
    job_finished(p);
}

void gw_async_continue(gw_req *r, gw_work_fn work)
{
    gw_pool *p = r->g->pool;
    r->job_work = work;
    r->job_next = NULL;
    if (enqueue(p, r, 1) != 0) { /* stopping: the workers are gone or going */
        work(r);
        gw_async_end(r);
        return;
    }
    job_finished(p); /* the worker that dequeues it counts it again */
}
