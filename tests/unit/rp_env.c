/*
 * rp_env.c - the coordinator tests' fixture (rp_env.h).
 */
#include <event2/thread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cu_main.h"
#include "rp_env.h"

env E;

static void *loop_thread(void *arg)
{
    event_base_loop(arg, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static rp_consistency mode_of(void *arg, const char *bucket)
{
    (void)bucket;
    return ((env *)arg)->mode;
}

rp_config config(int node, uint32_t nshards, int timeout_ms)
{
    rp_config cfg = {0};
    cfg.base = E.base;
    cfg.router = E.rt;
    cfg.route = fake_route;
    cfg.clock = &E.clk[node - 1];
    cfg.node = (uint32_t)node;
    cfg.nshards = nshards;
    cfg.timeout_ms = timeout_ms;
    cfg.hedge_ms = E.hedge_ms;
    cfg.consistency = mode_of;
    cfg.consistency_arg = &E;
    return cfg;
}

/* Start a loop, NF fakes and two coordinators (nodes 1 and 2) over them. */
void env_up_hedged(uint32_t nshards, int timeout_ms, rp_consistency mode, int hedge_ms)
{
    static int seq;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    memset(&E, 0, sizeof(E));
    E.mode = mode;
    E.hedge_ms = hedge_ms;
    snprintf(E.dir, sizeof(E.dir), "%s/env%d", cu_tmpdir(), seq++);
    CU_ASSERT_EQUAL_FATAL(mkdir(E.dir, 0700), 0);
    E.base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(E.base);
    for (int i = 0; i < NF; i++) {
        char id[8];
        snprintf(id, sizeof(id), "f%d", i);
        E.f[i] = fake_new(E.base, E.dir, id);
        CU_ASSERT_PTR_NOT_NULL_FATAL(E.f[i]);
    }
    E.rt = fake_router_new(E.f, NF);
    pthread_create(&E.th, NULL, loop_thread, E.base);
    CU_ASSERT_EQUAL_FATAL(rp_keylocks_new(&E.locks), CM_OK);
    for (int i = 0; i < 3; i++)
        md_hlc_init(&E.clk[i], (uint32_t)i + 1, NULL, NULL);
    for (int i = 0; i < 2; i++) {
        rp_config cfg = config(i + 1, nshards, timeout_ms);
        cfg.keylocks = E.locks;
        CU_ASSERT_EQUAL_FATAL(rp_new(&cfg, &E.c[i]), CM_OK);
    }
}

void env_up(uint32_t nshards, int timeout_ms, rp_consistency mode)
{
    env_up_hedged(nshards, timeout_ms, mode, 0);
}

void coords_free(void)
{
    for (int i = 0; i < 2; i++) {
        rp_free(E.c[i]);
        E.c[i] = NULL;
    }
}

void env_down(void)
{
    coords_free();
    /* loopexit, not loopbreak: a break asked before the loop thread entered its loop is lost
     * (event_base_loop clears it on entry), which hung a test whose loop never ran */
    event_base_loopexit(E.base, NULL);
    pthread_join(E.th, NULL);
    for (int i = 0; i < NF; i++)
        fake_free(E.f[i]);
    fake_router_free(E.rt);
    rp_keylocks_free(E.locks);
    for (int i = 0; i < 3; i++)
        md_hlc_release(&E.clk[i]);
    event_base_free(E.base);
}

void set_fault(int i, int down, int hang_ms, int delay_ms)
{
    fake_faults ft = {0};
    ft.down = down;
    ft.hang_ms = hang_ms;
    ft.delay_ms = delay_ms;
    fake_set_faults(E.f[i], &ft);
}

md_object mkobj(const char *key, const char *etag)
{
    md_object o;
    memset(&o, 0, sizeof(o));
    o.key = strdup(key);
    memcpy(o.version_id, "null", 5);
    snprintf(o.etag, sizeof(o.etag), "%s", etag);
    o.size = strlen(etag);
    return o;
}

cm_err put(int ci, const char *key, const char *etag, const md_cond *cond)
{
    md_object o = mkobj(key, etag);
    cm_err e = rp_object_put(E.c[ci], B, &o, cond, NULL, NULL);
    md_object_release(&o);
    return e;
}

/* The etag fake i stores for key in shard 0 ("" when absent, "-" for a tombstone). */
const char *stored(int i, const char *key, md_object *keep)
{
    md_object_release(keep);
    if (fake_rec(E.f[i], B, 0, key, keep) != CM_OK)
        return "";
    return keep->tombstone ? "-" : keep->etag;
}

int same_version(const md_object *a, const md_object *b)
{
    return a->hlc == b->hlc && a->hlc_node == b->hlc_node && a->tombstone == b->tombstone &&
           md_vv_compare(&a->vv, &b->vv) == MD_VV_EQUAL && strcmp(a->etag, b->etag) == 0;
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
