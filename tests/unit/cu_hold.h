/*
 * cu_hold.h - hold a store's next batch in its commit thread (md_gc_set_hook) behind a cu_gate:
 * the batch's ops were taken from the queue and are not applied yet, as a write waiting for a
 * slow commit. A test waits until the batch is held (cu_gate_wait_held), changes the world, and
 * opens the gate; cu_hold_open_when_queued opens it from another thread as soon as an op queues
 * behind the held batch (what a read ordered after it would queue), so a test can tell "the
 * reader waited" from "the reader did not" without sleeping.
 */
#ifndef CU_HOLD_H
#define CU_HOLD_H

#include <pthread.h>
#include <string.h>

#include "cu_gate.h"
#include "md_int.h"

typedef struct {
    md_store *md;
    cu_gate gate;            /* closed while the batch is to be held */
    int batches;             /* seen by the hook (the commit thread only) */
    void (*on_held)(void *); /* called as the batch is held (NULL: none), e.g. to wake a loop */
    void *on_held_arg;
    pthread_t opener;
    int opener_started, quit;
} cu_hold;

/* cu_gate_pass, with on_held run once the batch counts as held (a loop it wakes sees it so) */
static inline void cu_hold_hook(void *arg, size_t n)
{
    cu_hold *h = arg;
    (void)n;
    if (h->batches++ > 0)
        return;
    pthread_mutex_lock(&h->gate.mu);
    h->gate.held++;
    pthread_cond_broadcast(&h->gate.cv);
    pthread_mutex_unlock(&h->gate.mu);
    if (h->on_held)
        h->on_held(h->on_held_arg);
    pthread_mutex_lock(&h->gate.mu);
    while (h->gate.closed)
        pthread_cond_wait(&h->gate.cv, &h->gate.mu);
    h->gate.held--;
    pthread_mutex_unlock(&h->gate.mu);
}

/* Hold md's next batch; on_held(arg) (NULL: none) runs on the commit thread as it is held. */
static inline void cu_hold_start(cu_hold *h, md_store *md, void (*on_held)(void *), void *arg)
{
    memset(h, 0, sizeof(*h));
    pthread_mutex_init(&h->gate.mu, NULL);
    pthread_cond_init(&h->gate.cv, NULL);
    h->md = md;
    h->on_held = on_held;
    h->on_held_arg = arg;
    h->gate.closed = 1;
    md_gc_set_hook(md, cu_hold_hook, h);
}

static inline int cu_hold_held(cu_hold *h)
{
    pthread_mutex_lock(&h->gate.mu);
    int held = h->gate.held > 0;
    pthread_mutex_unlock(&h->gate.mu);
    return held;
}

/* md_gc_wait_queued(md, 1) that cu_hold_end can call off (quit, under the queue's mutex). */
static inline void *cu_hold_opener(void *arg)
{
    cu_hold *h = arg;
    md_gc *gc = &h->md->gc;
    pthread_mutex_lock(&gc->mu);
    gc->qwaiters++;
    while (gc->nqueued == 0 && !h->quit)
        pthread_cond_wait(&gc->queued_cv, &gc->mu);
    gc->qwaiters--;
    pthread_mutex_unlock(&gc->mu);
    cu_gate_set(&h->gate, 0);
    return NULL;
}

/* Open the gate from a thread of its own once an op queues behind the held batch. */
static inline void cu_hold_open_when_queued(cu_hold *h)
{
    h->opener_started = pthread_create(&h->opener, NULL, cu_hold_opener, h) == 0;
}

/* Open the gate, unhook, and end the opener (called off when it still waits). */
static inline void cu_hold_end(cu_hold *h)
{
    cu_gate_set(&h->gate, 0);
    md_gc_set_hook(h->md, NULL, NULL);
    if (h->opener_started) {
        pthread_mutex_lock(&h->md->gc.mu);
        h->quit = 1;
        pthread_cond_broadcast(&h->md->gc.queued_cv);
        pthread_mutex_unlock(&h->md->gc.mu);
        pthread_join(h->opener, NULL);
    }
    pthread_cond_destroy(&h->gate.cv);
    pthread_mutex_destroy(&h->gate.mu);
}

#endif
