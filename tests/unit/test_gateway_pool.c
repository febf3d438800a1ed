/*
 * test_gateway_pool.c - a cluster node's gateway whose workers are saturated keeps its event loop
 * free (gw_pool.c): a new request is refused 503 SlowDown at once, not run on the loop.
 *
 * A real gateway (one event loop, one worker, a queue of one) serves on a loopback port; its object
 * records go through a quorum coordinator (repl/rp.h) over three fake replicas (rp_fake.h) that
 * hang: every record call waits HANG_MS and then times out. Listing A takes the worker, and of
 * listings B and C one waits in the queue and the other finds the pool saturated: it must answer
 * 503 SlowDown, and /health/ready must answer, while A is still waiting on the replicas. (Before,
 * the saturated request ran its quorum calls inline and stalled the loop for HANG_MS.) Once the
 * replicas answer, A and the queued one get 503 ServiceUnavailable (no quorum). About 2 x HANG_MS.
 * Listings, not GETs: a cluster node's GET starts its quorum read from the loop without a worker
 * (rp_object_get_async), so GETs never fill the pool.
 *
 * inline_puts_share_returns: a single node's inline PUTs go back to their loop in runs. NPUT
 * connections send a 4 KiB PUT each before any answer is read; the metadata store commits them in
 * batches and the commit thread posts each completion to the one loop. Every PUT must be answered
 * 200 and its record be there, and the completions must have taken fewer event_base_once runs than
 * there were completions (those posted before the loop ran them share one run, gw_pool.c).
 */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "cm_util.h"
#include "cu_main.h"
#include "cu_s3.h"
#include "gw.h"
#include "gw_int.h"
#include "md.h"
#include "net.h"
#include "rp.h"
#include "rp_fake.h"

#define AK "POOLTESTAK"
#define SK "pool-test-secret"
#define REGION "us-east-1"
#define NF 3
#define HANG_MS 4000

static void *run_base(void *arg)
{
    event_base_loop(arg, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void *run_server(void *arg)
{
    net_server_run(arg);
    return NULL;
}

/* A gateway over dir (coord: its quorum coordinator, or NULL for a single node) serving on one
 * loop thread *th; its port. */
static int serve(const char *sub, rp *coord, gw **g, net_server **srv, pthread_t *th)
{
    char dir[512];
    gw_config gc;
    snprintf(dir, sizeof(dir), "%s/%s", cu_tmpdir(), sub);
    CU_ASSERT_FATAL(cu_gw_config(&gc, dir, REGION, AK, SK) == 0);
    gc.ndrives = 3, gc.k = 2, gc.m = 1;
    gc.workers = 1; /* one worker, one job may wait */
    gc.workers_queue = 1;
    CU_ASSERT_EQUAL_FATAL(gw_new(&gc, g), CM_OK);
    md_bucket b = {.name = "bkt", .created_ms = 1, .owner = AK};
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(gw_meta_store(*g), &b), CM_OK);
    if (coord)
        gw_set_repl(*g, coord);
    net_config nc;
    net_config_defaults(&nc);
    nc.port = 0;
    nc.threads = 1; /* a stalled loop stalls every connection; every completion goes to it */
    CU_ASSERT_EQUAL_FATAL(net_server_new(&nc, gw_net_handler(), *g, srv), CM_OK);
    gw_set_ready(*g, 1);
    pthread_create(th, NULL, run_server, *srv);
    return net_server_port(*srv);
}

/* Stop and free what serve() started. */
static void unserve(gw *g, net_server *srv, pthread_t th)
{
    net_server_stop(srv, 1000);
    pthread_join(th, NULL);
    gw_quiesce(g);
    net_server_free(srv);
}

/* A socket connected to 127.0.0.1:port whose reads give up after 4 x HANG_MS. */
static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {4 * HANG_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    return fd;
}

/* Connect to port and send a GET of target (signed unless health); the socket. */
static int send_get(int port, const char *target, int health)
{
    char req[2048];
    cu_s3_req q = {"GET", target, port, REGION, AK, SK, NULL, 0, -1, NULL};
    int n =
        health ? snprintf(req, sizeof(req),
                          "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", target)
               : cu_s3_head(&q, req, sizeof(req));
    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof(req));
    int fd = dial(port);
    CU_ASSERT_FATAL(write(fd, req, (size_t)n) == n);
    return fd;
}

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static void test_saturated_loop_free(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    char dir[512], out[8192];

    /* the replicas, on a loop of their own */
    struct event_base *rbase = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(rbase);
    fake *f[NF];
    snprintf(dir, sizeof(dir), "%s/replicas", cu_tmpdir());
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    for (int i = 0; i < NF; i++) {
        char id[8];
        snprintf(id, sizeof(id), "f%d", i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(f[i] = fake_new(rbase, dir, id));
    }
    struct rp_router *rt = fake_router_new(f, NF);
    pthread_t rth;
    pthread_create(&rth, NULL, run_base, rbase);
    md_hlc clk;
    md_hlc_init(&clk, 1, NULL, NULL);
    rp_config rc = {.base = rbase,
                    .router = rt,
                    .route = fake_route,
                    .clock = &clk,
                    .node = 1,
                    .nshards = 1,
                    .timeout_ms = 3 * HANG_MS}; /* the replicas' timeout comes first */
    rp *coord = NULL;
    CU_ASSERT_EQUAL_FATAL(rp_new(&rc, &coord), CM_OK);

    gw *g = NULL;
    net_server *srv = NULL;
    pthread_t sth;
    int port = serve("gw", coord, &g, &srv, &sth);

    fake_faults hang = {.hang_ms = HANG_MS};
    for (int i = 0; i < NF; i++)
        fake_set_faults(f[i], &hang);
    int a = send_get(port, "/bkt?prefix=a", 0);
    fake_counts fc = {0};
    int64_t until = cm_monotonic_ms() + 10000;
    while (fc.lists == 0 && cm_monotonic_ms() < until) { /* A's listing reached a replica */
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        fake_counts_get(f[0], &fc);
    }
    CU_ASSERT_FATAL(fc.lists > 0);
    int bc[2] = {send_get(port, "/bkt?prefix=b", 0), send_get(port, "/bkt?prefix=c", 0)};
    struct pollfd p[2] = {{.fd = bc[0], .events = POLLIN}, {.fd = bc[1], .events = POLLIN}};
    CU_ASSERT_FATAL(poll(p, 2, 4 * HANG_MS) > 0);
    int refused = p[0].revents ? 0 : 1;
    CU_ASSERT(!readable(a)); /* the refusal came while A waits */
    int st = cu_s3_answer(bc[refused], out, sizeof(out));
    CU_ASSERT_EQUAL(st, 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "<Code>SlowDown</Code>"));
    int h = send_get(port, "/health/ready", 1);
    CU_ASSERT_EQUAL(cu_s3_answer(h, out, sizeof(out)), 200);
    CU_ASSERT(!readable(a)); /* the loop answered while A still waits */
    CU_ASSERT(!readable(bc[!refused]));
    /* the replicas time out: no quorum for A nor for the queued one */
    CU_ASSERT_EQUAL(cu_s3_answer(a, out, sizeof(out)), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "<Code>ServiceUnavailable</Code>"));
    CU_ASSERT_EQUAL(cu_s3_answer(bc[!refused], out, sizeof(out)), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "<Code>ServiceUnavailable</Code>"));

    unserve(g, srv, sth);
    rp_free(coord);
    gw_free(g);
    event_base_loopbreak(rbase);
    pthread_join(rth, NULL);
    for (int i = 0; i < NF; i++)
        fake_free(f[i]);
    fake_router_free(rt);
    md_hlc_release(&clk);
    event_base_free(rbase);
}

#define NPUT 48

static void test_inline_puts_share_returns(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    char out[8192], head[2048], target[64];
    static char body[4096];
    memset(body, 'x', sizeof(body));

    gw *g = NULL;
    net_server *srv = NULL;
    pthread_t sth;
    int port = serve("gw_inline", NULL, &g, &srv, &sth);

    int fd[NPUT];
    for (int i = 0; i < NPUT; i++) {
        snprintf(target, sizeof(target), "/bkt/k%02d", i);
        cu_s3_req q = {"PUT", target, port, REGION, AK, SK, NULL, sizeof(body), -1, NULL};
        int n = cu_s3_head(&q, head, sizeof(head));
        CU_ASSERT_FATAL(n > 0);
        fd[i] = dial(port);
        CU_ASSERT_FATAL(write(fd[i], head, (size_t)n) == n);
        CU_ASSERT_FATAL(write(fd[i], body, sizeof(body)) == (ssize_t)sizeof(body));
    }
    int ok = 0;
    for (int i = 0; i < NPUT; i++)
        ok += cu_s3_answer(fd[i], out, sizeof(out)) == 200;
    CU_ASSERT_EQUAL(ok, NPUT);
    for (int i = 0; i < NPUT; i++) {
        md_object o;
        snprintf(target, sizeof(target), "k%02d", i);
        CU_ASSERT_EQUAL_FATAL(md_object_get(gw_meta_store(g), "bkt", target, &o), CM_OK);
        CU_ASSERT_EQUAL(o.inline_len, sizeof(body));
        md_object_release(&o);
    }
    uint64_t returned = 0, runs = 0;
    gw_pool_return_counts(g->pool, &returned, &runs);
    CU_ASSERT(returned >= NPUT);
    CU_ASSERT(runs >= 1 && runs < returned);

    unserve(g, srv, sth);
    gw_free(g);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"saturated_loop_free", test_saturated_loop_free},
        {"inline_puts_share_returns", test_inline_puts_share_returns},
        {NULL, NULL},
    };
    cu_add_suite("gateway_pool", tests);
}
