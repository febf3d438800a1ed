/*
 * test_common_bufpool.c - the per-thread pools of large buffers (common/cm_bufpool.c): a buffer
 * given back is the one the next take of its size gets (no fresh mapping), other sizes get fresh
 * ones, a pool never holds more than CM_BUFPOOL_MAX idle buffers (a full pool lets an idle buffer
 * of another size go for a new one), pools are per thread, and release empties this thread's;
 * the shared pool (cm_bufpool_take_shared) takes buffers back from any thread, within its bounds.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm_bufpool.h"
#include "cu_main.h"

#define BIG (512u * 1024)

static void test_reuse(void)
{
    void *a = cm_bufpool_take(BIG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    memset(a, 1, BIG);
    cm_bufpool_cleanup(a, 100, (void *)(uintptr_t)BIG); /* as an evbuffer reference ends */
    CU_ASSERT_EQUAL(cm_bufpool_idle(), 1);
    CU_ASSERT_PTR_EQUAL(cm_bufpool_take(BIG), a); /* the same pages again */
    CU_ASSERT_EQUAL(cm_bufpool_idle(), 0);
    cm_bufpool_put(a, BIG);
    void *b = cm_bufpool_take(BIG / 2); /* another size: fresh, the idle one stays */
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_EQUAL(b, a);
    CU_ASSERT_EQUAL(cm_bufpool_idle(), 1);
    cm_bufpool_put(b, BIG / 2);
    cm_bufpool_put(NULL, BIG); /* a no-op */
    CU_ASSERT_EQUAL(cm_bufpool_idle(), 2);
    cm_bufpool_release();
    CU_ASSERT_EQUAL(cm_bufpool_idle(), 0);
}

static void test_bounded(void)
{
    void *b[CM_BUFPOOL_MAX + 2];
    for (int i = 0; i < CM_BUFPOOL_MAX + 2; i++)
        CU_ASSERT_PTR_NOT_NULL_FATAL(b[i] = cm_bufpool_take(BIG));
    for (int i = 0; i < CM_BUFPOOL_MAX + 2; i++)
        cm_bufpool_put(b[i], BIG); /* the last two are freed */
    CU_ASSERT_EQUAL(cm_bufpool_idle(), CM_BUFPOOL_MAX);
    /* a full pool takes a buffer of a new size in place of an idle one of another size */
    void *n = malloc(BIG / 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    cm_bufpool_put(n, BIG / 4);
    CU_ASSERT_EQUAL(cm_bufpool_idle(), CM_BUFPOOL_MAX);
    CU_ASSERT_PTR_EQUAL(cm_bufpool_take(BIG / 4), n);
    cm_bufpool_put(n, BIG / 4);
    for (int i = 0; i < CM_BUFPOOL_MAX; i++) /* seven of the first size are left, then fresh */
        CU_ASSERT_PTR_NOT_NULL(b[i] = cm_bufpool_take(BIG));
    CU_ASSERT_EQUAL(cm_bufpool_idle(), 1); /* the BIG / 4 one */
    for (int i = 0; i < CM_BUFPOOL_MAX; i++)
        free(b[i]);
    cm_bufpool_release();
    /* bytes bound too: big buffers push the small one out, and no more than the bound stays */
    size_t huge = CM_BUFPOOL_BYTES / 2;
    cm_bufpool_put(cm_bufpool_take(BIG), BIG);
    for (int i = 0; i < 3; i++)
        cm_bufpool_put(malloc(huge), huge);
    CU_ASSERT_EQUAL(cm_bufpool_idle(), 2);
    void *h = cm_bufpool_take(huge);
    CU_ASSERT_PTR_NOT_NULL(h);
    free(h);
    cm_bufpool_put(malloc(2 * CM_BUFPOOL_BYTES), 2 * CM_BUFPOOL_BYTES); /* never pooled */
    CU_ASSERT_EQUAL(cm_bufpool_idle(), 1);
    cm_bufpool_release();
}

static void *other_thread(void *arg)
{
    size_t *idle = arg;
    idle[0] = cm_bufpool_idle(); /* not the main thread's pool */
    cm_bufpool_put(cm_bufpool_take(BIG), BIG);
    idle[1] = cm_bufpool_idle();
    return NULL; /* its pool goes with it (the key's destructor; ASan checks nothing leaks) */
}

static void test_per_thread(void)
{
    size_t idle[2] = {9, 9};
    pthread_t t;
    cm_bufpool_put(cm_bufpool_take(BIG), BIG);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, other_thread, idle), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(idle[0], 0);
    CU_ASSERT_EQUAL(idle[1], 1);
    CU_ASSERT_EQUAL(cm_bufpool_idle(), 1);
    cm_bufpool_release();
}

static void *put_shared_thread(void *arg)
{
    cm_bufpool_put_shared(arg, BIG); /* given back on another thread than the taker's */
    return NULL;
}

/*
 * The shared pool: a buffer taken on one thread and given back on another is the one the next
 * take of its size gets, on any thread; buffers are 64-byte aligned; the pool keeps at most
 * CM_BUFPOOL_SHARED_MAX idle buffers and CM_BUFPOOL_SHARED_BYTES in all (a larger one is freed);
 * release empties it and it works on.
 */
static void test_shared(void)
{
    cm_bufpool_release_shared();
    void *a = cm_bufpool_take_shared(BIG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL((uintptr_t)a % 64, 0);
    memset(a, 1, BIG);
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, put_shared_thread, a), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(cm_bufpool_idle_shared(), 1);
    CU_ASSERT_EQUAL(cm_bufpool_idle(), 0); /* not in this thread's pool */
    CU_ASSERT_PTR_EQUAL(cm_bufpool_take_shared(BIG), a);
    CU_ASSERT_EQUAL(cm_bufpool_idle_shared(), 0);
    cm_bufpool_put_shared(a, BIG);

    void *many[CM_BUFPOOL_SHARED_MAX + 4];
    for (size_t i = 0; i < CM_BUFPOOL_SHARED_MAX + 4; i++) {
        many[i] = cm_bufpool_take_shared(1000 + i); /* small sizes: the count binds first */
        CU_ASSERT_PTR_NOT_NULL_FATAL(many[i]);
        CU_ASSERT_EQUAL((uintptr_t)many[i] % 64, 0);
    }
    for (size_t i = 0; i < CM_BUFPOOL_SHARED_MAX + 4; i++)
        cm_bufpool_put_shared(many[i], 1000 + i);
    CU_ASSERT_EQUAL(cm_bufpool_idle_shared(), CM_BUFPOOL_SHARED_MAX);

    size_t huge = (size_t)CM_BUFPOOL_SHARED_BYTES + 64;
    void *h = cm_bufpool_take_shared(huge);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    cm_bufpool_put_shared(h, huge); /* past the byte bound: freed, the idle ones stay */
    CU_ASSERT_EQUAL(cm_bufpool_idle_shared(), CM_BUFPOOL_SHARED_MAX);
    cm_bufpool_put_shared(NULL, BIG);

    cm_bufpool_release_shared();
    CU_ASSERT_EQUAL(cm_bufpool_idle_shared(), 0);
    void *b = cm_bufpool_take_shared(BIG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    cm_bufpool_put_shared(b, BIG);
    CU_ASSERT_EQUAL(cm_bufpool_idle_shared(), 1);
    cm_bufpool_release_shared(); /* ASan checks nothing leaks */
}

void cu_register(void)
{
    static const cu_test tests[] = {{"reuse", test_reuse},
                                    {"bounded", test_bounded},
                                    {"per_thread", test_per_thread},
                                    {"shared", test_shared},
                                    {NULL, NULL}};
    cu_add_suite("common_bufpool", tests);
}
