/*
 * test_repl_handoff.c - strong consistency across a layout change that moves a partition's homes
 * (docs/replication.md, "Layout changes"), over the coordinator tests' fake replicas (rp_env.h).
 *
 * One partition (nshards = 1). The previous layout's homes are f0, f1, f2 (E.rt); the new one's
 * f0, f1, f3: f2's place goes to f3, which starts empty. A write acknowledged by {f0, f2} while
 * f1 was away is then missed by a read of R = 2 new homes without f0 ({f1, f3}): the stale read
 * a coordinator without the handoff makes. A coordinator with rp_config.route_prev (here: the
 * previous router while `prev` is set) also needs its quorum among the previous homes, and
 * reads the write; its writes reach W of both sets; its anti-entropy copies the partition to f3
 * and says when nothing is left behind (res.complete); once the partition settled (route_prev
 * answers 0) it asks the three new homes only.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cu_main.h"
#include "rp_env.h"

static struct rp_router *prev; /* the previous layout's router while the partition moves */

static int route_prev(struct rp_router *rt, const rp_part *p, int n, rp_replica **out)
{
    (void)rt;
    return prev ? fake_route(prev, p, n, 0, out) : 0;
}

/* A coordinator of node 3 over the new router, with the handoff. */
static rp *handoff_coord(struct rp_router *rt)
{
    rp_config cfg = config(3, 1, 2000);
    cfg.router = rt;
    cfg.route_prev = route_prev;
    rp *h = NULL;
    CU_ASSERT_EQUAL_FATAL(rp_new(&cfg, &h), CM_OK);
    return h;
}

static cm_err hput(rp *h, const char *key, const char *etag)
{
    md_object o = mkobj(key, etag);
    cm_err e = rp_object_put(h, B, &o, NULL, NULL, NULL);
    md_object_release(&o);
    return e;
}

/* Two versions of key: e1 on f0, f1, f2, then e2 on f0 and f2 only (f1 away). */
static void two_versions(const char *key)
{
    CU_ASSERT_EQUAL(put(0, key, "e1", NULL), CM_OK);
    set_fault(1, 1, 0, 0);
    CU_ASSERT_EQUAL(put(0, key, "e2", NULL), CM_OK);
    set_fault(1, 0, 0, 0);
}

static uint64_t gets_of(int i)
{
    fake_counts n;
    fake_counts_get(E.f[i], &n);
    return n.gets;
}

static void test_stale_read(void)
{
    env_up(1, 2000, RP_STRONG);
    two_versions("k");
    two_versions("k2");
    fake *order[3] = {E.f[0], E.f[1], E.f[3]};
    struct rp_router *rt2 = fake_router_new(order, 3);
    rp_set_router(E.c[0], rt2);
    prev = E.rt;
    rp *h = handoff_coord(rt2);
    set_fault(0, 1, 0, 0); /* f0 away: the new quorum is {f1, f3} */

    /* without the handoff: the acknowledged e2 is missed (the violation the handoff closes) */
    md_object o;
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[0], B, "k", &o), CM_OK);
    CU_ASSERT_STRING_EQUAL(o.etag, "e1");
    md_object_release(&o);
    /* with it: R of the previous homes too ({f1, f2}), and f2 holds e2 */
    CU_ASSERT_EQUAL_FATAL(rp_object_get(h, B, "k2", &o), CM_OK);
    CU_ASSERT_STRING_EQUAL(o.etag, "e2");
    md_object_release(&o);
    /* ... and a second reader of the new layout alone now sees it too: the read wrote it back to
     * W new homes ({f1, f3}) before it answered */
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[0], B, "k2", &o), CM_OK);
    CU_ASSERT_STRING_EQUAL(o.etag, "e2");
    md_object_release(&o);
    set_fault(0, 0, 0, 0);

    rp_free(h);
    coords_free();
    prev = NULL;
    fake_router_free(E.rt);
    E.rt = rt2;
    env_down();
}

/* A write during the handoff needs W of the new homes and W of the previous ones. */
static void test_write_both(void)
{
    env_up(1, 2000, RP_STRONG);
    fake *order[3] = {E.f[0], E.f[1], E.f[3]};
    struct rp_router *rt2 = fake_router_new(order, 3);
    prev = E.rt;
    rp *h = handoff_coord(rt2);
    set_fault(1, 1, 0, 0); /* new quorum {f0, f3}, previous {f0, f2} */
    uint64_t f0_gets = gets_of(0);
    CU_ASSERT_EQUAL(hput(h, "w", "e1"), CM_OK);
    /* the put's read asked every home once (not lazily): f1's failure sent nothing again */
    CU_ASSERT_EQUAL(gets_of(0) - f0_gets, 1);
    set_fault(2, 1, 0, 0); /* the previous homes' quorum cannot be had: f0 alone */
    CU_ASSERT_EQUAL(hput(h, "w2", "e1"), CM_ERR_UNAVAILABLE);
    set_fault(1, 0, 0, 0);
    set_fault(2, 0, 0, 0);
    rp_free(h);
    md_object keep = {0};
    CU_ASSERT_STRING_EQUAL(stored(0, "w", &keep), "e1");
    CU_ASSERT_STRING_EQUAL(stored(2, "w", &keep), "e1"); /* a previous home only */
    CU_ASSERT_STRING_EQUAL(stored(3, "w", &keep), "e1"); /* a new home only */
    md_object_release(&keep);
    coords_free();
    prev = NULL;
    fake_router_free(rt2);
    env_down();
}

/* Anti-entropy over both sets copies the partition to its new home and says when it is done;
 * a settled partition costs no call to a previous home. */
static void test_settle(void)
{
    env_up(1, 2000, RP_STRONG);
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof(key), "s%02d", i);
        CU_ASSERT_EQUAL(put(0, key, "e1", NULL), CM_OK);
    }
    two_versions("k");
    fake *order[3] = {E.f[0], E.f[1], E.f[3]};
    struct rp_router *rt2 = fake_router_new(order, 3);
    prev = E.rt;
    rp *h = handoff_coord(rt2);

    set_fault(3, 1, 0, 0); /* the new home silent: not settled */
    rp_ae_result res;
    CU_ASSERT_EQUAL(rp_antientropy_run(h, B, 0, 0, 0, &res), CM_OK);
    CU_ASSERT_EQUAL(res.complete, 0);
    CU_ASSERT_EQUAL(res.keys_repaired, 1); /* f1 got e2 */
    set_fault(3, 0, 0, 0);
    set_fault(0, 1, 0, 0); /* a home of both sets silent: R previous homes left, not every new */
    CU_ASSERT_EQUAL(rp_antientropy_run(h, B, 0, 0, 0, &res), CM_OK);
    CU_ASSERT_EQUAL(res.complete, 0);
    set_fault(0, 0, 0, 0);
    /* a previous home only (a node leaving the layout) silent: every new home and R = 2
     * previous ones answered, which meet every acknowledged write: settled */
    set_fault(2, 1, 0, 0);
    CU_ASSERT_EQUAL(rp_antientropy_run(h, B, 0, 0, 0, &res), CM_OK);
    CU_ASSERT_EQUAL(res.complete, 1);
    set_fault(2, 0, 0, 0);
    CU_ASSERT_EQUAL(rp_antientropy_run(h, B, 0, 0, 0, &res), CM_OK);
    CU_ASSERT_EQUAL(res.complete, 1);
    CU_ASSERT_EQUAL(res.leaves_differing, 0);
    md_object keep = {0};
    CU_ASSERT_STRING_EQUAL(stored(3, "k", &keep), "e2");
    CU_ASSERT_STRING_EQUAL(stored(3, "s07", &keep), "e1");
    CU_ASSERT_STRING_EQUAL(stored(1, "k", &keep), "e2");
    md_object_release(&keep);

    /* settled: the previous homes are no longer asked, and the new ones answer e2 alone */
    prev = NULL;
    uint64_t before = gets_of(2);
    set_fault(0, 1, 0, 0);
    md_object o;
    CU_ASSERT_EQUAL_FATAL(rp_object_get(h, B, "k", &o), CM_OK);
    CU_ASSERT_STRING_EQUAL(o.etag, "e2");
    md_object_release(&o);
    set_fault(0, 0, 0, 0);
    rp_free(h);
    CU_ASSERT_EQUAL(gets_of(2), before);
    coords_free();
    fake_router_free(rt2);
    env_down();
}

/* ---- the stale retry (docs/replication.md, "The fence") ---- */

typedef struct {
    rp *c;
    struct rp_router *rt;
    int after_ms;
    pthread_t th;
} swap_job;

/* The layout follower of a node late to a new layout: it swaps the router after_ms. */
static void *swap_main(void *arg)
{
    swap_job *j = arg;
    struct timespec ts = {0, (long)j->after_ms * 1000000L};
    nanosleep(&ts, NULL);
    rp_set_router(j->c, j->rt); /* returns once the refused op moved to the new router */
    return NULL;
}

static void stale_set(int from, int to, int on)
{
    for (int i = from; i < to; i++) {
        fake_faults ft = {0};
        ft.stale = on;
        fake_set_faults(E.f[i], &ft);
    }
}

static int holders(int from, int to, const char *key, const char *etag)
{
    md_object keep = {0};
    int n = 0;
    for (int i = from; i < to; i++)
        n += strcmp(stored(i, key, &keep), etag) == 0;
    md_object_release(&keep);
    return n;
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    cm_err err;
} async_wait;

static void aput_done(void *arg, cm_err err)
{
    async_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = 1, w->err = err;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* A coordinator on layout 5 (homes f0, f1, f2) whose replicas moved to layout 6 (homes f3, f4,
 * f5; the old homes refuse it as stale) ends OK once its node adopts 6, not 503: the blocking
 * put and the loop's asynchronous put alike, each within the op's timeout. */
static void test_stale_retry(void)
{
    env_up(1, 2000, RP_STRONG);
    fake *order[3] = {E.f[3], E.f[4], E.f[5]};
    struct rp_router *rt6 = fake_router_new(order, 3);
    stale_set(0, 3, 1);
    swap_job j = {E.c[0], rt6, 100, 0};
    pthread_create(&j.th, NULL, swap_main, &j);
    int64_t t0 = now_ms();
    CU_ASSERT_EQUAL(put(0, "k", "e1", NULL), CM_OK);
    CU_ASSERT(now_ms() - t0 < 2000);
    pthread_join(j.th, NULL);
    CU_ASSERT(holders(3, 6, "k", "e1") >= 2); /* W of the new layout's homes */
    CU_ASSERT_EQUAL(holders(0, 3, "k", "e1"), 0);

    /* again from the loop: layout 7 is f0, f1, f2 again, and layout 6's homes refuse */
    stale_set(0, 3, 0);
    stale_set(3, 6, 1);
    async_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, CM_OK};
    md_object o = mkobj("k2", "e2");
    j = (swap_job){E.c[0], E.rt, 100, 0};
    pthread_create(&j.th, NULL, swap_main, &j);
    CU_ASSERT_EQUAL_FATAL(rp_object_put_async(E.c[0], B, &o, aput_done, &w), CM_OK);
    md_object_release(&o);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    CU_ASSERT_EQUAL(w.err, CM_OK);
    pthread_join(j.th, NULL);
    CU_ASSERT(holders(0, 3, "k2", "e2") >= 2);
    rp_stats st;
    rp_get_stats(E.c[0], &st);
    CU_ASSERT_EQUAL(st.stale_retries, 2); /* each put once: its read (the write then goes on) */
    stale_set(3, 6, 0);
    coords_free();
    fake_router_free(rt6);
    env_down();
}

/* No newer layout within the op's timeout: the 503 stays, after the timeout and not much later. */
static void test_stale_no_layout(void)
{
    env_up(1, 500, RP_STRONG);
    stale_set(0, 3, 1);
    int64_t t0 = now_ms();
    CU_ASSERT_EQUAL(put(0, "k", "e1", NULL), CM_ERR_UNAVAILABLE);
    int64_t took = now_ms() - t0;
    CU_ASSERT(took >= 400 && took < 1500);
    md_object o;
    CU_ASSERT_EQUAL(rp_object_get(E.c[0], B, "k", &o), CM_ERR_UNAVAILABLE);
    rp_stats st;
    rp_get_stats(E.c[0], &st);
    CU_ASSERT_EQUAL(st.stale_retries, 0); /* waited, but nothing ran again */
    stale_set(0, 3, 0);
    coords_free();
    env_down();
}

void cu_register(void)
{
    static const cu_test handoff[] = {{"stale_read", test_stale_read},
                                      {"write_both", test_write_both},
                                      {"settle", test_settle},
                                      {"stale_retry", test_stale_retry},
                                      {"stale_no_layout", test_stale_no_layout},
                                      {NULL, NULL}};
    cu_add_suite("repl_handoff", handoff);
}
