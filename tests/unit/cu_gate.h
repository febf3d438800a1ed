/*
 * cu_gate.h - a gate for I/O seams in tests: a wrapped call passes through cu_gate_pass, which
 * holds it while the gate is closed (a disk that does not answer) and counts the calls held, so a
 * test can wait until a thread is stuck at the gate, check what else still proceeds, and open it.
 */
#ifndef CU_GATE_H
#define CU_GATE_H

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* Count one event (*counter, under the gate's mutex) and wake cu_gate_wait_count. */
static inline void cu_gate_count(cu_gate *g, int *counter)
{
    pthread_mutex_lock(&g->mu);
    (*counter)++;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Wait up to `seconds` for *counter to reach want; returns the count reached. */
static inline int cu_gate_wait_count(cu_gate *g, int *counter, int want, int seconds)
{
    struct timespec until;
    int rc = 0;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    pthread_mutex_lock(&g->mu);
    while (*counter < want && rc == 0)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &until);
    int n = *counter;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/*
 * A drive directory behind a gate, for a bs_io table: fds opened under `dir` (a path prefix) have
 * their pwrites held while the gate is closed. Use cu_gated_open / cu_gated_pwrite with ctx set
 * to the cu_gated_dir.
 */
typedef struct {
    char dir[700];
    uint8_t held_fd[4096];
    cu_gate gate;
} cu_gated_dir;

static inline int cu_gated_open(void *ctx, const char *path, int flags, mode_t mode)
{
    cu_gated_dir *s = ctx;
    int fd = open(path, flags, mode);
    if (fd >= 0 && fd < 4096)
        s->held_fd[fd] = strncmp(path, s->dir, strlen(s->dir)) == 0;
    return fd;
}

static inline ssize_t cu_gated_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
    cu_gated_dir *s = ctx;
    if (fd >= 0 && fd < 4096 && s->held_fd[fd])
        cu_gate_pass(&s->gate);
    return pwrite(fd, buf, len, off);
}

#endif
