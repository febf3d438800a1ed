/*
 * nd_work.c - worker threads for the blocking durability step of an RPC (bs_sync after an
 * append, the delete and sync of a refused or deleted chunk), so a node's RPC loops keep serving
 * reads and other appends during an fdatasync, and concurrent appends share fdatasyncs (the
 * blobstore's group commit) instead of queueing behind each other on one loop.
 *
 * Protocol (as the gateway's gw_pool): nd_work_submit hands the request to the pool; a worker
 * runs the job, then schedules nd_job_done on the request's own loop with event_base_once
 * (thread-safe: net_server_new turned on libevent's pthreads support). While busy, the loop does
 * not touch the request; if its connection closes meanwhile, on_done marks it orphaned and the
 * completion frees it instead of answering.
 *
 * Bounds: the queue is intrusive (the request is the node), so it is bounded by the requests in
 * flight and allocates nothing.
 */
#include <stdlib.h>

#include <event2/event.h>

#include "cm_log.h"
#include "nd_int.h"

struct nd_work {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    nd_sreq *head, *tail;
    int stop;
    int nthreads;
    pthread_t *threads;
};

static void run_job(nd_sreq *s)
{
    cm_err e = CM_OK;
    if (s->job != JOB_SYNC)
        e = bs_delete(s->bs, &s->id);
    if (e == CM_OK)
        e = bs_sync(s->bs);
    s->err = e;
}

static void complete(evutil_socket_t fd, short what, void *arg)
{
    nd_sreq *s = arg;
    (void)fd;
    (void)what;
    s->busy = 0;
    if (s->orphaned)
        free(s);
    else
        nd_job_done(s);
}

static void *worker(void *arg)
{
    nd_work *w = arg;
    static const struct timeval now = {0, 0};
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        nd_sreq *s = w->head;
        if (!s) {
            pthread_mutex_unlock(&w->mu);
            return NULL;
        }
        w->head = s->job_next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        run_job(s);
        if (event_base_once(s->base, -1, EV_TIMEOUT, complete, s, &now) != 0)
            CM_ERROR("nd", "a synced request cannot return to its loop; dropping it");
    }
}

cm_err nd_work_new(int nthreads, nd_work **out)
{
    nd_work *w = calloc(1, sizeof(*w));
    *out = NULL;
    if (!w || !(w->threads = calloc((size_t)nthreads, sizeof(pthread_t)))) {
        free(w);
        return CM_ERR_NOMEM;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    for (; w->nthreads < nthreads; w->nthreads++)
        if (pthread_create(&w->threads[w->nthreads], NULL, worker, w) != 0) {
            nd_work_free(w);
            return CM_ERR_NOMEM;
        }
    *out = w;
    return CM_OK;
}

void nd_work_free(nd_work *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->threads);
    free(w);
}

void nd_work_submit(nd_work *w, nd_sreq *s, int job)
{
    s->job = job;
    s->job_next = NULL;
    s->base = net_req_base(s->req);
    if (!w) {
        run_job(s);
        nd_job_done(s);
        return;
    }
    s->busy = 1;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->job_next = s;
    else
        w->head = s;
    w->tail = s;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}
