/*
 * cm_bufpool.c - per-thread pools of large buffers (cm_bufpool.h).
 *
 * Each thread's pool is a small array of idle buffers with their sizes, reached through a
 * pthread key whose destructor frees it when the thread exits. take looks for an idle buffer of
 * the exact size (latest given back first: its pages are the likeliest to be warm); put keeps the
 * buffer while the pool's count and bytes allow, evicting idle buffers of other sizes (the sizes
 * in use changed) to make room, or else frees the one given. A pool keeps CM_BUFPOOL_MAX idle
 * buffers (the shared one CM_BUFPOOL_SHARED_MAX), and one scratch buffer, grown to the
 * largest size asked (cm_bufpool_scratch). No locks: a pool is its thread's. The shared pool
 * (cm_bufpool_take_shared) is one more such array, under a mutex.
 */
#include "cm_bufpool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "cm_util.h"

/* slots of a pool's array: a thread's pool uses CM_BUFPOOL_MAX of them, the shared one more */
#define POOL_ARRAY CM_MAX(CM_BUFPOOL_MAX, CM_BUFPOOL_SHARED_MAX)

typedef struct {
    size_t n, bytes;
    size_t max, max_bytes; /* CM_BUFPOOL_MAX and CM_BUFPOOL_BYTES, or the shared pool's */
    void *buf[POOL_ARRAY];
    size_t size[POOL_ARRAY];
    void *scratch; /* cm_bufpool_scratch's buffer */
    size_t scratch_cap;
} pool;

static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static int pool_key_ok;

static void pool_destroy(void *arg)
{
    pool *p = arg;
    for (size_t i = 0; i < p->n; i++)
        free(p->buf[i]);
    free(p->scratch);
    free(p);
}

static void pool_key_init(void)
{
    pool_key_ok = pthread_key_create(&pool_key, pool_destroy) == 0;
}

/* This thread's pool; made on first use when make (NULL: none, or no memory for one). */
static pool *pool_get(int make)
{
    pthread_once(&pool_once, pool_key_init);
    if (!pool_key_ok)
        return NULL;
    pool *p = pthread_getspecific(pool_key);
    if (!p && make && (p = calloc(1, sizeof(*p))) && pthread_setspecific(pool_key, p) != 0) {
        free(p);
        p = NULL;
    }
    if (p && p->max == 0) {
        p->max = CM_BUFPOOL_MAX;
        p->max_bytes = CM_BUFPOOL_BYTES;
    }
    return p;
}

/* An idle buffer of exactly size bytes taken out of p, or NULL. */
static void *pool_take(pool *p, size_t size)
{
    for (size_t i = p ? p->n : 0; i-- > 0;) {
        if (p->size[i] != size)
            continue;
        void *b = p->buf[i];
        p->bytes -= size;
        p->n--;
        p->buf[i] = p->buf[p->n];
        p->size[i] = p->size[p->n];
        return b;
    }
    return NULL;
}

/* buf (size bytes) kept idle in p when its bounds allow, else freed. */
static void pool_put(pool *p, void *buf, size_t size)
{
    if (!p || size > p->max_bytes) {
        free(buf);
        return;
    }
    /* make room by letting idle buffers of other sizes go (likely sizes out of use) */
    for (size_t i = 0; i < p->n && (p->n >= p->max || p->bytes + size > p->max_bytes);) {
        if (p->size[i] == size) {
            i++;
            continue;
        }
        free(p->buf[i]);
        p->bytes -= p->size[i];
        p->n--;
        p->buf[i] = p->buf[p->n];
        p->size[i] = p->size[p->n];
    }
    if (p->n >= p->max || p->bytes + size > p->max_bytes) { /* full of this size */
        free(buf);
        return;
    }
    p->buf[p->n] = buf;
    p->bytes += size;
    p->size[p->n++] = size;
}

void *cm_bufpool_take(size_t size)
{
    void *b = pool_take(pool_get(0), size);
    return b ? b : malloc(size ? size : 1);
}

void cm_bufpool_put(void *buf, size_t size)
{
    if (buf)
        pool_put(pool_get(1), buf, size);
}

/* The process-wide pool (cm_bufpool_take_shared): the same bookkeeping under one mutex. */
static pool shared = {.max = CM_BUFPOOL_SHARED_MAX, .max_bytes = CM_BUFPOOL_SHARED_BYTES};
static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;

void *cm_bufpool_take_shared(size_t size)
{
    pthread_mutex_lock(&shared_mu);
    void *b = pool_take(&shared, size);
    pthread_mutex_unlock(&shared_mu);
    if (!b && posix_memalign(&b, 64, size ? size : 1) != 0)
        b = NULL;
    return b;
}

void cm_bufpool_put_shared(void *buf, size_t size)
{
    if (!buf)
        return;
    pthread_mutex_lock(&shared_mu);
    pool_put(&shared, buf, size);
    pthread_mutex_unlock(&shared_mu);
}

void cm_bufpool_release_shared(void)
{
    pthread_mutex_lock(&shared_mu);
    for (size_t i = 0; i < shared.n; i++)
        free(shared.buf[i]);
    shared.n = 0;
    shared.bytes = 0;
    pthread_mutex_unlock(&shared_mu);
}

size_t cm_bufpool_idle_shared(void)
{
    pthread_mutex_lock(&shared_mu);
    size_t n = shared.n;
    pthread_mutex_unlock(&shared_mu);
    return n;
}

void cm_bufpool_cleanup(const void *data, size_t len, void *arg)
{
    (void)len;
    cm_bufpool_put((void *)(uintptr_t)data, (size_t)(uintptr_t)arg);
}

void cm_bufpool_cleanup_shared(const void *data, size_t len, void *arg)
{
    (void)len;
    cm_bufpool_put_shared((void *)(uintptr_t)data, (size_t)(uintptr_t)arg);
}

void *cm_bufpool_scratch(size_t size)
{
    pool *p = pool_get(1);
    if (!p)
        return NULL;
    if (size > p->scratch_cap) {
        void *b = realloc(p->scratch, size);
        if (!b)
            return NULL;
        p->scratch = b;
        p->scratch_cap = size;
    }
    return p->scratch;
}

void cm_bufpool_release(void)
{
    pool *p = pool_get(0);
    if (p) {
        pthread_setspecific(pool_key, NULL);
        pool_destroy(p);
    }
}

size_t cm_bufpool_idle(void)
{
    pool *p = pool_get(0);
    return p ? p->n : 0;
}
