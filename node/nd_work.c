/*
 * nd_work.c - a pool of worker threads for the blocking steps of loop-driven work: the RPC
 * service's durability step (bs_sync after an append, the delete and sync of a refused or
 * deleted chunk) and the object layer's local chunk backend (obj/ob_chunk.c: blobstore appends,
 * syncs and reads). An event loop hands a job over and goes on serving; concurrent syncs share
 * fdatasyncs (the blobstore's group commit) instead of queueing behind each other on one loop.
 *
 * Protocol: nd_work_submit queues the job; a worker runs job->run, then schedules job->done on
 * the job's loop with event_base_once (thread-safe because the loop's base was made after
 * evthread_use_pthreads). While queued or running the job belongs to the pool: the loop must not
 * touch it until done runs.
 *
 * Bounds: the queue is intrusive (the job is the node), so it is bounded by the jobs in flight
 * and allocates nothing.
 */
#include <pthread.h>
#include <stdlib.h>

#include <event2/event.h>

#include "cm_log.h"
#include "nd.h"

struct nd_work {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    nd_job *head, *tail;
    int stop;
    int nthreads;
    pthread_t *threads;
};

static void complete(evutil_socket_t fd, short what, void *arg)
{
    nd_job *j = arg;
    (void)fd;
    (void)what;
    j->done(j);
}

static void *worker(void *arg)
{
    nd_work *w = arg;
    static const struct timeval now = {0, 0};
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        nd_job *j = w->head;
        if (!j) {
            pthread_mutex_unlock(&w->mu);
            return NULL;
        }
        w->head = j->next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        j->run(j);
        if (event_base_once(j->base, -1, EV_TIMEOUT, complete, j, &now) != 0)
            CM_ERROR("nd", "a finished job cannot return to its loop; dropping it");
    }
}

cm_err nd_work_new(int nthreads, nd_work **out)
{
    nd_work *w = calloc(1, sizeof(*w));
    *out = NULL;
    if (!w || nthreads < 1 || !(w->threads = calloc((size_t)nthreads, sizeof(pthread_t)))) {
        free(w);
        return w ? CM_ERR_INVAL : CM_ERR_NOMEM;
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

void nd_work_submit(nd_work *w, nd_job *j)
{
    j->next = NULL;
    if (!w) {
        j->run(j);
        j->done(j);
        return;
    }
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}
