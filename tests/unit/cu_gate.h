/*
 * cu_gate.h - a gate for I/O seams in tests: a wrapped call passes through cu_gate_pass, which
 * holds it while the gate is closed (a disk that does not answer) and counts the calls held, so a
 * test can wait until a thread is stuck at the gate, check what else still proceeds, and open it.
 */
#ifndef CU_GATE_H
#define CU_GATE_H

#include <pthread.h>

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int closed;
    int held; /* calls waiting at the gate now */
} cu_gate;

#define CU_GATE_INIT                                                                               \
    {                                                                                              \
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0                                  \
    }

static inline void cu_gate_set(cu_gate *g, int closed)
{
    pthread_mutex_lock(&g->mu);
    g->closed = closed;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Called by the wrapped I/O function: returns once the gate is open. */
static inline void cu_gate_pass(cu_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->held++;
    pthread_cond_broadcast(&g->cv);
    while (g->closed)
        pthread_cond_wait(&g->cv, &g->mu);
    g->held--;
    pthread_mutex_unlock(&g->mu);
}

/* Wait until some call is held at the gate. */
static inline void cu_gate_wait_held(cu_gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (g->held == 0)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

#endif
