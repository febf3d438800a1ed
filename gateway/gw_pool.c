/*
 * gw_pool.c - worker threads for the blocking part of a request (fdatasync of the data, the
 * metadata commit), so an event loop keeps serving its other connections meanwhile and many
 * commits can be in flight at once (which is what lets them share fsyncs: the blobstore's and the
 * metadata store's group commit).
 *
 * Protocol: gw_offload(r, work, done) hands the request to the pool. While the job runs the request
 * belongs to the worker: the loop thread must not touch it, and work() must not touch r->net (the
 * connection may die meanwhile). When work() returns, done() is scheduled on the request's own
 * event loop (event_base_once, thread-safe with libevent's pthreads support). If the connection was
 * closed while the job ran, on_done only marks the request orphaned; the completion then frees it
 * instead of calling done().
 *
 * Bounds: the queue is intrusive (the request is the queue node), so it allocates nothing and is
 * bounded by the requests in flight; past GW_POOL_MAX_QUEUED waiting jobs, gw_offload runs the job
 * inline on the loop (slower, never lost).
 */
#include "gw_int.h"

#include <event2/event.h>
#include <stdlib.h>

#include "cm_log.h"

#define MOD "gw"
#define GW_POOL_MAX_QUEUED 4096

struct gw_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gw_req *head, *tail;
    size_t queued;
    int stop;
    int nthreads;
    pthread_t *threads;
};

static void complete(evutil_socket_t fd, short what, void *arg)
{
    gw_req *r = arg;
    (void)fd;
    (void)what;
    r->busy = 0;
    if (r->orphaned)
        gw_req_free(r); /* the connection went away while the job ran */
    else
        r->job_done(r);
}

static void *worker(void *arg)
{
    gw_pool *p = arg;
    static const struct timeval now = {0, 0};

    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        gw_req *r = p->head;
        if (!r) { /* stopping and drained */
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        p->head = r->job_next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->mu);

        r->job_work(r);
        if (event_base_once(r->base, -1, EV_TIMEOUT, complete, r, &now) != 0) {
            /* Only when the loop is gone (shutdown past its grace): nothing can answer now. */
            CM_ERROR(MOD, "req=%s cannot return to its event loop; dropping the request", r->id);
        }
    }
}

cm_err gw_pool_new(int nthreads, gw_pool **out)
{
    gw_pool *p = calloc(1, sizeof(*p));
    if (!p || nthreads < 1 || !(p->threads = calloc((size_t)nthreads, sizeof(pthread_t)))) {
        free(p);
        return nthreads < 1 ? CM_ERR_INVAL : CM_ERR_NOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (; p->nthreads < nthreads; p->nthreads++)
        if (pthread_create(&p->threads[p->nthreads], NULL, worker, p) != 0) {
            gw_pool_free(p);
            return CM_ERR_NOMEM;
        }
    *out = p;
    return CM_OK;
}

void gw_pool_free(gw_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

void gw_offload(gw_req *r, gw_work_fn work, gw_finish_fn done)
{
    gw_pool *p = r->g->pool;
    r->job_work = work;
    r->job_done = done;
    r->job_next = NULL;
    r->base = net_req_base(r->net);
    pthread_mutex_lock(&p->mu);
    if (p->queued >= GW_POOL_MAX_QUEUED || p->stop) {
        pthread_mutex_unlock(&p->mu);
        work(r); /* saturated: do it here rather than queue without bound */
        done(r);
        return;
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
}
