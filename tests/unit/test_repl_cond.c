/*
 * test_repl_cond.c - conditional writes through partition leaders (cmd/cluster_cond.c, compiled
 * into this test) with three in-process nodes and a real etcd member (cu_etcd).
 *
 * Each node has its own md_store, node RPC (an nd_service whose cond route runs cmd_cond_serve)
 * and coordinator (rp over rp_route, its conditional writes through cmd_cond_run, its own key
 * locks); their clients and replicas share one loop thread. One partition per bucket, so one
 * leader: 12 threads, 4 per node, race If-None-Match: * on 8 keys: exactly one winner per key,
 * every write run once, all on the one leader, the others forwarded to it. Then the leader node
 * stops (its RPC, then cmd_cond_free revoking its lease): the next conditional writes through the
 * others get a new leader and again exactly one winner per key.
 */
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster_cond.h"
#include "co.h"
#include "cu_etcd.h"
#include "cu_main.h"
#include "cu_nodes.h"
#include "rp.h"

static const uint8_t secret[] = "cond-test-secret";
#define SECRET_LEN (sizeof(secret) - 1)
#define NN 3
#define KEYS 8
#define PER_NODE 4

typedef struct {
    char id[16];
    md_store *md;
    md_hlc clock;
    cu_rpc rpc;
    int up;
    nd_work *work;
    rp_replica *local;
    rp_router *rt;
    rp *c;
    cmd_cond *cc;
} cnode;

static struct {
    cnode n[NN];
    struct event_base *base;
    pthread_t loop;
    nd_client *cl[NN];
    pl_topology *topo;
    char etcd[512];
    int run; /* the test's number: its nodes' folders */
} T;

static void *loop_main(void *arg)
{
    (void)arg;
    event_base_loop(T.base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

typedef struct {
    void (*fn)(int i);
    int i, done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} lcall;

static void lcall_cb(evutil_socket_t fd, short what, void *arg)
{
    lcall *l = arg;
    (void)fd, (void)what;
    l->fn(l->i);
    pthread_mutex_lock(&l->mu);
    l->done = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

/* Run fn(i) on the loop's thread (the clients, replicas and routers live there). */
static void on_loop(void (*fn)(int), int i)
{
    lcall l = {fn, i, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    CU_ASSERT_EQUAL_FATAL(event_base_once(T.base, -1, EV_TIMEOUT, lcall_cb, &l, NULL), 0);
    pthread_mutex_lock(&l.mu);
    while (!l.done)
        pthread_cond_wait(&l.cv, &l.mu);
    pthread_mutex_unlock(&l.mu);
}

static void make_replicas(int i)
{
    cnode *n = &T.n[i];
    nd_client_config cc = {0};
    cc.node_id = n->id;
    cc.secret = secret;
    cc.secret_len = SECRET_LEN;
    CU_ASSERT_EQUAL(nd_client_new(T.base, &cc, &T.cl[i]), CM_OK);
    CU_ASSERT_EQUAL(rp_replica_local_new(T.base, n->md, n->work, n->id, &n->local), CM_OK);
    CU_ASSERT_EQUAL(rp_router_new(T.topo, n->id, n->local, T.cl[i], &n->rt), CM_OK);
}

static void free_replicas(int i)
{
    cnode *n = &T.n[i];
    rp_router_free(n->rt);
    rp_replica_free(n->local);
    nd_client_free(T.cl[i]);
}

static void node_serve(int i)
{
    cnode *n = &T.n[i];
    snprintf(n->id, sizeof(n->id), "n%d", i + 1);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s-%d", cu_tmpdir(), n->id, T.run);
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 26, &n->md), CM_OK);
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "b");
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(n->md, &b), CM_OK);
    md_hlc_init(&n->clock, (uint32_t)i + 1, NULL, NULL);
    cmd_cond_config ccfg = {.self = n->id, .etcd = T.etcd, .cluster = "t", .nshards = 1};
    CU_ASSERT_EQUAL_FATAL(cmd_cond_new(&ccfg, &n->cc), CM_OK);
    nd_service_config sc = {0};
    sc.node_id = n->id;
    sc.secret = secret;
    sc.secret_len = SECRET_LEN;
    sc.sync_threads = 4;
    sc.md = n->md;
    sc.clock = &n->clock;
    sc.cond = cmd_cond_serve;
    sc.cond_arg = n->cc;
    cu_rpc_start(&n->rpc, &sc);
    CU_ASSERT_EQUAL_FATAL(nd_work_new(4, &n->work), CM_OK);
    n->up = 1;
}

static void node_coordinate(int i)
{
    cnode *n = &T.n[i];
    on_loop(make_replicas, i);
    rp_config rc = {.base = T.base,
                    .router = n->rt,
                    .route = rp_route,
                    .clock = &n->clock,
                    .node = (uint32_t)i + 1,
                    .nshards = 1,
                    .timeout_ms = 3000,
                    .cond_run = cmd_cond_run,
                    .cond_arg = n->cc};
    CU_ASSERT_EQUAL_FATAL(rp_new(&rc, &n->c), CM_OK);
    cmd_cond_set_topology(n->cc, T.topo);
    cmd_cond_set_coord(n->cc, n->c, T.base, T.cl[i]);
}

/* Stop node i: its RPC first (nothing calls cmd_cond_serve after), then its coordinator, then
 * its leaderships (the lease revoked). */
static void node_stop(int i)
{
    cnode *n = &T.n[i];
    if (!n->up)
        return;
    n->up = 0;
    cu_rpc_stop(&n->rpc, 500);
    cmd_cond_set_coord(n->cc, NULL, NULL, NULL);
    rp_free(n->c);
    cmd_cond_free(n->cc);
}

typedef struct {
    int node, thread, round;
    cm_err res[KEYS];
} racer;

static pthread_barrier_t go;

static void *race_main(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(&go);
    for (int k = 0; k < KEYS; k++) {
        char key[32], etag[32];
        snprintf(key, sizeof(key), "r%d-k%d", r->round, k);
        snprintf(etag, sizeof(etag), "n%d-t%d", r->node, r->thread);
        md_object o = {0};
        o.key = key;
        memcpy(o.version_id, "null", 5);
        snprintf(o.etag, sizeof(o.etag), "%s", etag);
        md_cond inm = {.if_none_match_star = 1};
        r->res[k] = rp_object_put(T.n[r->node].c, "b", &o, &inm, NULL, NULL);
    }
    return NULL;
}

/* PER_NODE threads on each live node race every key of the round; the winners per key. */
static void race(int round, int wins[KEYS], int *others)
{
    racer rs[NN * PER_NODE];
    pthread_t th[NN * PER_NODE];
    int nr = 0;
    for (int i = 0; i < NN; i++)
        for (int t = 0; t < PER_NODE && T.n[i].up; t++)
            rs[nr++] = (racer){.node = i, .thread = t, .round = round};
    pthread_barrier_init(&go, NULL, (unsigned)nr);
    for (int j = 0; j < nr; j++)
        pthread_create(&th[j], NULL, race_main, &rs[j]);
    for (int j = 0; j < nr; j++)
        pthread_join(th[j], NULL);
    pthread_barrier_destroy(&go);
    *others = 0;
    for (int k = 0; k < KEYS; k++) {
        wins[k] = 0;
        for (int j = 0; j < nr; j++) {
            wins[k] += rs[j].res[k] == CM_OK;
            *others += rs[j].res[k] != CM_OK && rs[j].res[k] != CM_ERR_PRECONDITION;
        }
    }
}

static void test_leaders(void)
{
    cu_etcd etcd;
    co_config ccfg;
    if (!cu_etcd_up(&etcd, 1, 2000, &ccfg, NULL))
        return;
    snprintf(T.etcd, sizeof(T.etcd), "%s", ccfg.endpoints[0]);
    evthread_use_pthreads();
    T.base = event_base_new();
    pthread_create(&T.loop, NULL, loop_main, NULL);
    for (int i = 0; i < NN; i++)
        node_serve(i);
    T.topo = pl_topology_new(1);
    for (int i = 0; i < NN; i++) {
        char az[8];
        snprintf(az, sizeof(az), "az%d", i + 1);
        cu_topo_node(T.topo, T.n[i].id, T.n[i].rpc.port, az, 1);
    }
    for (int i = 0; i < NN; i++)
        node_coordinate(i);

    int wins[KEYS], others;
    race(0, wins, &others);
    for (int k = 0; k < KEYS; k++)
        CU_ASSERT_EQUAL(wins[k], 1);
    CU_ASSERT_EQUAL(others, 0);
    cmd_cond_stats st[NN];
    int leader = -1;
    uint64_t led = 0, fwd = 0;
    for (int i = 0; i < NN; i++) {
        cmd_cond_get_stats(T.n[i].cc, &st[i]);
        led += st[i].led, fwd += st[i].forwarded;
        if (st[i].led)
            leader = leader < 0 ? i : -2; /* -2: more than one led */
    }
    CU_ASSERT_EQUAL(led, (uint64_t)NN * PER_NODE * KEYS); /* each write ran once */
    CU_ASSERT_FATAL(leader >= 0);                         /* all on the one leader */
    CU_ASSERT_EQUAL(fwd, (uint64_t)(NN - 1) * PER_NODE * KEYS);
    /* the leader is known from memory, mostly (the first writes all read etcd) */
    CU_ASSERT(st[leader].etcd_reads < (uint64_t)NN * PER_NODE * KEYS / 2);

    /* The leader stops: its lease is revoked, another home takes the partition. */
    node_stop(leader);
    struct timespec pause = {1, 100 * 1000000L}; /* past the others' leader cache */
    nanosleep(&pause, NULL);
    race(1, wins, &others);
    for (int k = 0; k < KEYS; k++)
        CU_ASSERT_EQUAL(wins[k], 1);
    CU_ASSERT_EQUAL(others, 0);
    int next = -1;
    for (int i = 0; i < NN; i++) {
        cmd_cond_stats s;
        if (!T.n[i].up)
            continue;
        cmd_cond_get_stats(T.n[i].cc, &s);
        if (s.led > st[i].led)
            next = next < 0 ? i : -2;
    }
    CU_ASSERT(next >= 0 && next != leader);

    for (int i = 0; i < NN; i++)
        node_stop(i);
    for (int i = 0; i < NN; i++)
        on_loop(free_replicas, i);
    event_base_loopbreak(T.base);
    pthread_join(T.loop, NULL);
    event_base_free(T.base);
    for (int i = 0; i < NN; i++) {
        nd_work_free(T.n[i].work);
        md_close(T.n[i].md);
        md_hlc_release(&T.n[i].clock);
    }
    pl_topology_free(T.topo);
    cu_etcd_stop(&etcd);
}

/* A layout of one node (fewer than N = 3 homes): the partition's one home leads it and runs its
 * conditional writes. Before, the homes were looked up for exactly three nodes, none were found,
 * and every conditional write answered 503 while plain writes worked on the one home. */
static void test_one_node(void)
{
    if (!cu_etcd_available()) {
        cu_etcd_missing();
        return;
    }
    cu_etcd etcd;
    CU_ASSERT_EQUAL_FATAL(cu_etcd_start(&etcd, 1), 0);
    co_config ccfg;
    cu_etcd_config(&etcd, 2000, &ccfg);
    snprintf(T.etcd, sizeof(T.etcd), "%s", ccfg.endpoints[0]);
    T.run = 1;
    evthread_use_pthreads();
    T.base = event_base_new();
    pthread_create(&T.loop, NULL, loop_main, NULL);
    node_serve(0);
    T.topo = pl_topology_new(1);
    cu_topo_node(T.topo, T.n[0].id, T.n[0].rpc.port, "az1", 1);
    node_coordinate(0);
    md_object o = {0};
    o.key = "solo";
    memcpy(o.version_id, "null", 5);
    md_cond inm = {.if_none_match_star = 1};
    CU_ASSERT_EQUAL(rp_object_put(T.n[0].c, "b", &o, &inm, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(rp_object_put(T.n[0].c, "b", &o, &inm, NULL, NULL), CM_ERR_PRECONDITION);
    cmd_cond_stats st;
    cmd_cond_get_stats(T.n[0].cc, &st);
    CU_ASSERT_EQUAL(st.led, 2);
    node_stop(0);
    on_loop(free_replicas, 0);
    event_base_loopbreak(T.base);
    pthread_join(T.loop, NULL);
    event_base_free(T.base);
    nd_work_free(T.n[0].work);
    md_close(T.n[0].md);
    md_hlc_release(&T.n[0].clock);
    pl_topology_free(T.topo);
    cu_etcd_stop(&etcd);
}

void cu_register(void)
{
    static const cu_test t[] = {
        {"leaders", test_leaders}, {"one_node", test_one_node}, {NULL, NULL}};
    cu_add_suite("repl_cond", t);
}
