/*
 * test_repl.c - replicas of metadata partitions (repl/rp_replica.h) on both backends, the router
 * and hint delivery.
 *
 * Every test starts three nodes in this process, each with its own md_store holding bucket "b":
 * n1 is "this node" (its store reached by the local backend, md calls on a worker pool, on the
 * test thread's loop); n2 and n3 serve their stores over the node RPC (an nd_service on a
 * net_server thread each, on loopback). The suites repl_local and repl_remote run the same tests,
 * against the local backend over n1's store and against a remote backend to n2; repl runs the
 * router and the hint cases. Calls run the loop until their completion came (a 10 s guard fails
 * a hang) and check that no completion ran inside the call that started it.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "cu_main.h"
#include "cu_nodes.h"
#include "rp_hints.h"
#include "rp_replica.h"

static const uint8_t secret[] = "repl-test-secret";
#define SECRET_LEN (sizeof(secret) - 1)
#define NNODES 3
#define NSHARDS 4

/* ---- nodes ---- */

static int nworkers = 2; /* n1's md workers and each service's; the bench may raise it */

typedef struct {
    char id[8];
    md_store *md;
    md_hlc clock;
    cu_rpc rpc;
} tnode;

/* The cond route's callback in these nodes: the compare-and-set of the node's own store (a
 * stand-in for a partition leader's rp_cond_execute); bucket "elsewhere" is led by another node. */
static cm_err cond_cb(void *arg, const nd_cond_req *r)
{
    tnode *n = arg;
    if (strcmp(r->bucket, "elsewhere") == 0)
        return CM_ERR_CONFLICT;
    if (strcmp(r->from, "n1") != 0)
        return CM_ERR_AUTH;
    if (r->del)
        return md_object_delete(n->md, r->bucket, r->rec->key, r->cond, NULL, NULL);
    return md_object_put(n->md, r->bucket, r->rec, r->cond, NULL, NULL);
}

/* Start node id with its store in dir: a new directory, or (reopen) the one dir names. */
static void node_start(tnode *n, const char *id, int serve, char *dir, int reopen)
{
    static int started;
    memset(n, 0, sizeof(*n));
    snprintf(n->id, sizeof(n->id), "%s", id);
    ++started;
    if (!reopen)
        snprintf(dir, 300, "%s/%s-%d", cu_tmpdir(), id, started);
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 26, &n->md), CM_OK);
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "b");
    cm_err e = md_bucket_create(n->md, &b);
    CU_ASSERT_FATAL(e == CM_OK || (reopen && e == CM_ERR_EXISTS));
    md_hlc_init(&n->clock, (uint32_t)started, NULL, NULL);
    if (!serve)
        return;
    nd_service_config sc = {0};
    sc.node_id = id;
    sc.secret = secret;
    sc.secret_len = SECRET_LEN;
    sc.sync_threads = nworkers;
    sc.md = n->md;
    sc.clock = &n->clock;
    sc.cond = cond_cb;
    sc.cond_arg = n;
    cu_rpc_start(&n->rpc, &sc);
}

static void node_stop(tnode *n)
{
    cu_rpc_stop(&n->rpc, 1000);
    md_close(n->md);
    if (n->md)
        md_hlc_release(&n->clock);
}

/* ---- the environment of one test ---- */

typedef struct {
    tnode nodes[NNODES];
    struct event_base *base;
    nd_faults *faults;
    nd_work *work;
    nd_client *cl;     /* n1's RPC client */
    rp_replica *local; /* n1's store */
    rp_replica *to_n2; /* a remote backend to n2 */
    rp_replica *r;     /* the backend under test */
    md_store *r_md;    /* the store behind it */
    pl_topology *topo; /* n1, n2, n3 with their RPC addresses, one AZ each */
    int remote, pending, hung;
    int io_timeout_ms;
} env;

static env E;
static char node_dir[NNODES][300]; /* the nodes' store directories, kept by env_restart */

static void threads_on(void)
{
    evthread_use_pthreads();
}

/* Start the environment; reopen: on the stores the last one left (env_restart). */
static void env_start(int remote, int io_timeout_ms, int reopen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    static const char *ids[NNODES] = {"n1", "n2", "n3"};
    pthread_once(&once, threads_on);
    memset(&E, 0, sizeof(E));
    for (int i = 0; i < NNODES; i++)
        node_start(&E.nodes[i], ids[i], i > 0, node_dir[i], reopen);
    E.base = event_base_new();
    CU_ASSERT_EQUAL_FATAL(nd_faults_new(&E.faults), CM_OK);
    CU_ASSERT_EQUAL_FATAL(nd_work_new(nworkers, &E.work), CM_OK);
    E.cl = cu_client(E.base, "n1", secret, SECRET_LEN, E.faults, io_timeout_ms, 0);
    CU_ASSERT_EQUAL_FATAL(rp_replica_local_new(E.base, E.nodes[0].md, E.work, "n1", &E.local),
                          CM_OK);
    nd_peer p = {"n2", "127.0.0.1", E.nodes[1].rpc.port};
    CU_ASSERT_EQUAL_FATAL(rp_replica_remote_new(E.cl, &p, &E.to_n2), CM_OK);
    rp_replica_local_set_clock(E.local, &E.nodes[0].clock);
    E.remote = remote;
    E.io_timeout_ms = io_timeout_ms;
    E.r = remote ? E.to_n2 : E.local;
    E.r_md = E.nodes[remote ? 1 : 0].md;
    E.topo = pl_topology_new(3);
    for (int i = 0; i < NNODES; i++) {
        char az[8];
        snprintf(az, sizeof(az), "az%d", i + 1);
        cu_topo_node(E.topo, ids[i], i ? E.nodes[i].rpc.port : 1, az, 1);
    }
}

static void env_up(int remote, int io_timeout_ms)
{
    env_start(remote, io_timeout_ms, 0);
}

static void env_down(void)
{
    pl_topology_free(E.topo);
    rp_replica_free(E.to_n2);
    rp_replica_free(E.local);
    nd_client_free(E.cl);
    nd_work_free(E.work);
    event_base_loop(E.base, EVLOOP_NONBLOCK); /* completions the pool posted */
    nd_faults_free(E.faults);
    event_base_free(E.base);
    for (int i = 0; i < NNODES; i++)
        node_stop(&E.nodes[i]);
}

/* Every node restarts (a replica's restart): stopped, its store closed, reopened, served again. */
static void env_restart(void)
{
    int remote = E.remote, io_timeout_ms = E.io_timeout_ms;
    env_down();
    env_start(remote, io_timeout_ms, 1);
}

/* Run the loop until cond(arg) is false, or the 10 s guard. */
static void loop_while(int (*cond)(void *), void *arg)
{
    cu_loop_while(E.base, cond, arg, &E.hung, 10);
    CU_ASSERT_FALSE(E.hung);
}

static int pending(void *arg)
{
    (void)arg;
    return E.pending > 0;
}

/* ---- results (deep copies, since a result lives during its callback only) ---- */

typedef struct {
    int done;
    cm_err err;
    int no_bucket, applied, truncated, has_rec;
    md_object rec;
    md_object *recs;
    size_t nrecs;
    uint8_t *hashes;
    size_t nleaves;
    md_rec_info *infos;
    size_t ninfos;
    uint8_t dropped[16]; /* tomb_drop: the first 16 flags */
    size_t ndropped;
    int64_t ms; /* when it came */
} tres;

static void done_cb(void *arg, const rp_result *r)
{
    tres *t = arg;
    t->done++;
    t->err = r->err;
    t->no_bucket = r->no_bucket;
    t->applied = r->applied;
    t->truncated = r->truncated;
    t->ms = cm_monotonic_ms();
    if (r->rec)
        t->has_rec = md_object_copy(r->rec, &t->rec) == CM_OK;
    if (r->nrecs) {
        t->recs = calloc(r->nrecs, sizeof(*t->recs));
        for (size_t i = 0; i < r->nrecs; i++)
            md_object_copy(&r->recs[i], &t->recs[i]);
        t->nrecs = r->nrecs;
    }
    if (r->nleaves) {
        t->hashes = malloc(16 * r->nleaves);
        memcpy(t->hashes, r->hashes, 16 * r->nleaves);
        t->nleaves = r->nleaves;
    }
    if (r->ninfos) {
        t->infos = calloc(r->ninfos, sizeof(*t->infos));
        for (size_t i = 0; i < r->ninfos; i++) {
            t->infos[i] = r->infos[i];
            t->infos[i].key = strdup(r->infos[i].key);
        }
        t->ninfos = r->ninfos;
    }
    t->ndropped = r->ndropped;
    if (r->ndropped)
        memcpy(t->dropped, r->dropped, r->ndropped < 16 ? r->ndropped : 16);
    E.pending--;
}

static void tres_free(tres *t)
{
    if (t->has_rec)
        md_object_release(&t->rec);
    md_objects_free(t->recs, t->nrecs);
    free(t->hashes);
    md_rec_infos_free(t->infos, t->ninfos);
    memset(t, 0, sizeof(*t));
}

/* Wait for one call that returned rc; the completion must not have run inside the call. */
static void wait_for(tres *t, cm_err rc)
{
    CU_ASSERT_EQUAL(rc, CM_OK);
    CU_ASSERT_EQUAL(t->done, 0);
    if (rc == CM_OK) {
        E.pending++;
        loop_while(pending, NULL);
    }
    CU_ASSERT_EQUAL(t->done, rc == CM_OK ? 1 : 0);
}

static rp_part part_of(const char *key)
{
    rp_part p = {"b", rp_shard_of(key, NSHARDS), NSHARDS, 0};
    return p;
}

static tres do_get(const char *bucket, const char *key)
{
    tres t = {0};
    rp_part p = part_of(key);
    p.bucket = bucket;
    wait_for(&t, rp_replica_get(E.r, &p, key, done_cb, &t));
    return t;
}

static tres do_put(const md_object *rec, const char *hint_for)
{
    tres t = {0};
    rp_part p = part_of(rec->key);
    wait_for(&t, rp_replica_put(E.r, &p, rec, hint_for, done_cb, &t));
    return t;
}

static md_object version(const char *key, uint64_t ms, uint32_t node, const md_vv *base)
{
    md_object o = {.key = (char *)key, .hlc = MD_HLC_MAKE(ms, 0), .hlc_node = node, .size = 3};
    if (base)
        o.vv = *base;
    md_vv_increment(&o.vv, node, o.hlc);
    snprintf(o.etag, sizeof(o.etag), "etag-%" PRIu64, ms);
    return o;
}

/* ---- the backend suite ---- */

static void t_get_put_merge(void)
{
    md_object a = version("k", 2000, 1, NULL);
    tres t = do_put(&a, NULL);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.applied, 1);
    t = do_get("b", "k");
    CU_ASSERT_EQUAL_FATAL(t.err, CM_OK);
    CU_ASSERT_FATAL(t.has_rec);
    CU_ASSERT_STRING_EQUAL(t.rec.key, "k");
    CU_ASSERT_EQUAL(t.rec.hlc, a.hlc);
    CU_ASSERT_EQUAL(md_vv_compare(&t.rec.vv, &a.vv), MD_VV_EQUAL);
    CU_ASSERT_STRING_EQUAL(t.rec.etag, "etag-2000");
    tres_free(&t);
    /* older (a vector a's dominates, a later clock): refused */
    md_object old = {.key = "k", .hlc = MD_HLC_MAKE(9000, 0), .hlc_node = 3};
    t = do_put(&old, NULL);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.applied, 0);
    /* newer (descends from a, an earlier clock): applied */
    md_object n = version("k", 1500, 2, &a.vv);
    t = do_put(&n, NULL);
    CU_ASSERT_EQUAL(t.applied, 1);
    t = do_get("b", "k");
    CU_ASSERT_EQUAL(t.rec.hlc_node, 2);
    tres_free(&t);
    /* concurrent: the larger hlc wins in either order */
    md_object c1 = version("c", 5000, 1, NULL), c2 = version("c", 6000, 2, NULL);
    md_object d1 = version("d", 5000, 1, NULL), d2 = version("d", 6000, 2, NULL);
    CU_ASSERT_EQUAL(do_put(&c1, NULL).applied, 1);
    CU_ASSERT_EQUAL(do_put(&c2, NULL).applied, 1);
    CU_ASSERT_EQUAL(do_put(&d2, NULL).applied, 1);
    CU_ASSERT_EQUAL(do_put(&d1, NULL).applied, 0);
    tres tc = do_get("b", "c"), td = do_get("b", "d");
    CU_ASSERT_EQUAL(tc.rec.hlc, c2.hlc);
    CU_ASSERT_EQUAL(td.rec.hlc, d2.hlc);
    tres_free(&tc);
    tres_free(&td);
    /* a tombstone that saw the put wins and is returned as a record */
    md_object ts = version("c", 7000, 3, &c2.vv);
    ts.tombstone = 1;
    CU_ASSERT_EQUAL(do_put(&ts, NULL).applied, 1);
    t = do_get("b", "c");
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.rec.tombstone, 1);
    tres_free(&t);
    /* the same version again: applied (held) */
    CU_ASSERT_EQUAL(do_put(&ts, NULL).applied, 1);
    /* absent key, unknown bucket */
    t = do_get("b", "absent");
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(t.no_bucket, 0);
    CU_ASSERT_FALSE(t.has_rec);
    t = do_get("nobucket", "k");
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(t.no_bucket, 1);
    tres pt = {0};
    rp_part p = part_of("k");
    p.bucket = "nobucket";
    wait_for(&pt, rp_replica_put(E.r, &p, &a, NULL, done_cb, &pt));
    CU_ASSERT_EQUAL(pt.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(pt.no_bucket, 1);
}

static md_part stored_part(uint8_t blob)
{
    md_part p;
    memset(&p, 0, sizeof(p));
    p.size = 1 << 20;
    memset(p.layout.blob, blob, 16);
    p.layout.size = p.size;
    p.layout.k = 4, p.layout.m = 2;
    return p;
}

static int garbage_has(uint8_t blob)
{
    md_garbage *g;
    size_t n;
    int hits = 0;
    CU_ASSERT_EQUAL(md_garbage_list(E.r_md, UINT64_MAX, 100, &g, &n), CM_OK);
    for (size_t i = 0; i < n; i++)
        hits += g[i].layout.blob[0] == blob;
    md_garbage_free(g, n);
    return hits;
}

static void t_garbage(void)
{
    md_part pa = stored_part(0xA1), pb = stored_part(0xB2), pc = stored_part(0xC3);
    md_object a = version("g", 1000, 1, NULL);
    a.parts = &pa, a.nparts = 1;
    CU_ASSERT_EQUAL(do_put(&a, NULL).applied, 1);
    md_object b = version("g", 2000, 2, &a.vv);
    b.parts = &pb, b.nparts = 1;
    CU_ASSERT_EQUAL(do_put(&b, NULL).applied, 1);
    CU_ASSERT_EQUAL(garbage_has(0xA1), 1); /* the replaced body */
    CU_ASSERT_EQUAL(garbage_has(0xB2), 0);
    md_object c = version("g", 3000, 3, NULL); /* concurrent with b, but older... */
    c.hlc = MD_HLC_MAKE(500, 0);               /* ... by the clock: it loses */
    c.parts = &pc, c.nparts = 1;
    CU_ASSERT_EQUAL(do_put(&c, NULL).applied, 0);
    CU_ASSERT_EQUAL(garbage_has(0xC3), 1); /* the incoming loser's body */
    CU_ASSERT_EQUAL(garbage_has(0xB2), 0);
    /* the record held is b, with its body */
    tres t = do_get("b", "g");
    CU_ASSERT_EQUAL_FATAL(t.rec.nparts, 1);
    CU_ASSERT_EQUAL(t.rec.parts[0].layout.blob[0], 0xB2);
    tres_free(&t);
}

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static void t_list(void)
{
    char key[32];
    static uint8_t body[100];
    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof(key), "%s%02d", i % 3 ? "p/" : "q/", i);
        md_object o = version(key, 1000 + (uint64_t)i, 1, NULL);
        if (i == 1) {
            o.inline_data = body, o.inline_len = sizeof(body);
            o.size = sizeof(body);
        }
        CU_ASSERT_EQUAL(do_put(&o, NULL).err, CM_OK);
    }
    for (uint32_t s = 0; s < NSHARDS; s++) {
        rp_part p = {"b", s, NSHARDS, 0};
        char after[32] = "";
        int want = 0, got = 0, pages = 0;
        for (int i = 0; i < 60; i++) {
            snprintf(key, sizeof(key), "%s%02d", i % 3 ? "p/" : "q/", i);
            want += i % 3 && rp_shard_of(key, NSHARDS) == s;
        }
        for (int more = 1; more && pages < 40; pages++) {
            tres t = {0};
            wait_for(&t, rp_replica_list(E.r, &p, "p/", after[0] ? after : NULL, 3, done_cb, &t));
            CU_ASSERT_EQUAL_FATAL(t.err, CM_OK);
            CU_ASSERT(t.nrecs <= 3);
            for (size_t i = 0; i < t.nrecs; i++) {
                CU_ASSERT(has_prefix(t.recs[i].key, "p/"));
                CU_ASSERT_EQUAL(rp_shard_of(t.recs[i].key, NSHARDS), s); /* never another shard */
                CU_ASSERT(strcmp(t.recs[i].key, after) > 0);             /* in order */
                CU_ASSERT_PTR_NULL(t.recs[i].inline_data);               /* summaries */
                CU_ASSERT(t.recs[i].hlc != 0);
                snprintf(after, sizeof(after), "%s", t.recs[i].key);
                got++;
            }
            more = t.truncated;
            tres_free(&t);
        }
        CU_ASSERT_EQUAL(got, want);
    }
    /* a page capped at RP_LIST_MAX; unknown bucket */
    rp_part all = {"b", 0, 1, 0};
    tres t = {0};
    wait_for(&t, rp_replica_list(E.r, &all, NULL, NULL, 100000, done_cb, &t));
    CU_ASSERT_EQUAL(t.nrecs, 60);
    CU_ASSERT_EQUAL(t.truncated, 0);
    tres_free(&t);
    rp_part nb = {"nobucket", 0, 1, 0};
    wait_for(&t, rp_replica_list(E.r, &nb, NULL, NULL, 10, done_cb, &t));
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(t.no_bucket, 1);
}

/* Put key into the backend's store (through it) or n3's (directly). */
static void put_both(const char *key, uint64_t ms, int backend, int other)
{
    md_object o = version(key, ms, 1, NULL);
    int applied;
    if (backend)
        CU_ASSERT_EQUAL(do_put(&o, NULL).applied, 1);
    if (other)
        CU_ASSERT_EQUAL(md_rec_merge(E.nodes[2].md, "b", &o, &applied), CM_OK);
}

static void t_merkle_leaf_keys(void)
{
    /* shard 1 alike on both stores, the other shards differ */
    char key[32];
    for (int i = 0; i < 120; i++) {
        snprintf(key, sizeof(key), "m%03d", i);
        int mine = rp_shard_of(key, NSHARDS) == 1;
        put_both(key, 100 + (uint64_t)i, mine || i % 2, mine || i % 3 == 0);
    }
    md_shard s1 = {1, NSHARDS}, s2 = {2, NSHARDS};
    uint8_t *ref1, *ref2;
    size_t n1, n2;
    CU_ASSERT_EQUAL_FATAL(md_merkle_leaves(E.nodes[2].md, "b", 2, md_shard_keep, &s1, &ref1, &n1),
                          CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_merkle_leaves(E.nodes[2].md, "b", 2, md_shard_keep, &s2, &ref2, &n2),
                          CM_OK);
    rp_part p1 = {"b", 1, NSHARDS, 0}, p2 = {"b", 2, NSHARDS, 0};
    tres t = {0};
    wait_for(&t, rp_replica_merkle(E.r, &p1, 2, done_cb, &t));
    CU_ASSERT_EQUAL_FATAL(t.err, CM_OK);
    CU_ASSERT_EQUAL_FATAL(t.nleaves, 256);
    CU_ASSERT(memcmp(t.hashes, ref1, 16 * 256) == 0); /* the same shard: equal leaves */
    tres_free(&t);
    wait_for(&t, rp_replica_merkle(E.r, &p2, 2, done_cb, &t));
    CU_ASSERT_EQUAL_FATAL(t.nleaves, 256);
    size_t differ = 0;
    for (size_t i = 0; i < 256; i++)
        differ += memcmp(t.hashes + 16 * i, ref2 + 16 * i, 16) != 0;
    CU_ASSERT(differ > 0); /* shard 2 differs */
    tres_free(&t);
    /* leaf keys of shard 1, every leaf: the shard's keys with digests equal to n3's */
    uint32_t leaves[256];
    size_t want[256];
    for (uint32_t i = 0; i < 256; i++)
        leaves[255 - i] = i, want[i] = i; /* any order is fine */
    md_rec_info *ri;
    size_t nri;
    CU_ASSERT_EQUAL_FATAL(
        md_merkle_leaf_keys_ex(E.nodes[2].md, "b", 2, md_shard_keep, &s1, want, 256, &ri, &nri),
        CM_OK);
    wait_for(&t, rp_replica_leaf_keys(E.r, &p1, 2, leaves, 256, done_cb, &t));
    CU_ASSERT_EQUAL_FATAL(t.err, CM_OK);
    CU_ASSERT(nri > 10);
    CU_ASSERT_EQUAL_FATAL(t.ninfos, nri);
    for (size_t i = 0; i < nri; i++) {
        CU_ASSERT_STRING_EQUAL(t.infos[i].key, ri[i].key);
        CU_ASSERT(memcmp(t.infos[i].digest, ri[i].digest, 16) == 0);
        CU_ASSERT_EQUAL(rp_shard_of(t.infos[i].key, NSHARDS), 1);
    }
    tres_free(&t);
    rp_part nb = {"nobucket", 1, NSHARDS, 0};
    wait_for(&t, rp_replica_leaf_keys(E.r, &nb, 2, leaves, 256, done_cb, &t));
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(t.no_bucket, 1);
    memset(&t, 0, sizeof(t));
    wait_for(&t, rp_replica_merkle(E.r, &nb, 2, done_cb, &t));
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(t.no_bucket, 1);
    md_rec_infos_free(ri, nri);
    free(ref1);
    free(ref2);
}

static void t_hint_put(void)
{
    /* a put with hint_for is kept as a hint for that node, not as a record of this store */
    md_object h = version("hk", 4000, 1, NULL);
    tres t = do_put(&h, "n3");
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.applied, 1);
    md_hint *hs;
    size_t n;
    int truncated;
    CU_ASSERT_EQUAL_FATAL(md_hint_list(E.r_md, "n3", NULL, NULL, 10, &hs, &n, &truncated), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(hs[0].rec.key, "hk");
    CU_ASSERT_EQUAL(hs[0].rec.hlc, h.hlc);
    md_hints_free(hs, n);
    t = do_get("b", "hk");
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND);
}

/* The replica's clock follows the stamps it receives, within the drift bound. */
static void t_clock(void)
{
    md_hlc *clock = &E.nodes[E.remote ? 1 : 0].clock;
    uint64_t ahead = MD_HLC_MAKE(cm_now_ms() + 5000, 0);
    md_object a = {.key = "clk", .hlc = ahead, .hlc_node = 9};
    CU_ASSERT_EQUAL(do_put(&a, NULL).applied, 1);
    CU_ASSERT(md_hlc_now(clock) > ahead);
    md_object far = {.key = "clk", .hlc = MD_HLC_MAKE(cm_now_ms() + 120000, 0), .hlc_node = 9};
    tres t = do_put(&far, NULL);
    CU_ASSERT_EQUAL(t.err, CM_ERR_INVAL); /* refused, nothing stored */
    t = do_get("b", "clk");
    CU_ASSERT_EQUAL(t.rec.hlc, ahead);
    tres_free(&t);
}

static tres do_put_fenced(const md_object *rec, uint32_t shard, uint64_t fence)
{
    tres t = {0};
    rp_part p = part_of(rec->key);
    p.shard = shard, p.fence = fence;
    wait_for(&t, rp_replica_put(E.r, &p, rec, NULL, done_cb, &t));
    return t;
}

/* Fencing: a put carrying a partition leader's token lower than the highest the replica saw for
 * that partition is refused, nothing stored; other partitions and unfenced puts are unaffected. */
static void t_fence(void)
{
    uint32_t sh = rp_shard_of("fk", NSHARDS);
    md_object a = version("fk", 1000, 1, NULL);
    CU_ASSERT_EQUAL(do_put_fenced(&a, sh, 7).applied, 1);
    md_object b = version("fk", 2000, 2, &a.vv); /* a paused ex-leader (token 5) wakes up */
    tres t = do_put_fenced(&b, sh, 5);
    CU_ASSERT_EQUAL(t.err, CM_ERR_CONFLICT);
    t = do_get("b", "fk");
    CU_ASSERT_EQUAL(t.rec.hlc, a.hlc); /* b was not stored */
    tres_free(&t);
    CU_ASSERT_EQUAL(do_put_fenced(&b, sh, 7).applied, 1); /* the same leader again */
    md_object c = version("fk", 3000, 3, &b.vv);
    CU_ASSERT_EQUAL(do_put_fenced(&c, sh, 9).applied, 1); /* its successor */
    md_object d = version("fk", 4000, 1, &c.vv);
    CU_ASSERT_EQUAL(do_put_fenced(&d, sh, 7).err, CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(do_put(&d, NULL).applied, 1); /* unconditional writes carry no token */
    /* another partition keeps its own highest token */
    const char *k2 = "fk2";
    for (int i = 0; rp_shard_of(k2, NSHARDS) == sh && i < 100; i++)
        k2 = i % 2 ? "fk3" : "fk4";
    CU_ASSERT_NOT_EQUAL_FATAL(rp_shard_of(k2, NSHARDS), sh);
    md_object e = version(k2, 1000, 1, NULL);
    CU_ASSERT_EQUAL(do_put_fenced(&e, rp_shard_of(k2, NSHARDS), 3).applied, 1);
    /* A leader's read admits its token too: an earlier leader cannot write after it, a later
     * one can; a read with a replaced leader's token is refused. */
    rp_part p = part_of("fk");
    p.fence = 11;
    tres g = {0};
    wait_for(&g, rp_replica_get(E.r, &p, "fk", done_cb, &g));
    CU_ASSERT_EQUAL(g.err, CM_OK);
    CU_ASSERT_EQUAL(g.rec.hlc, d.hlc);
    tres_free(&g);
    md_object f = version("fk", 5000, 2, &d.vv);
    CU_ASSERT_EQUAL(do_put_fenced(&f, sh, 9).err, CM_ERR_CONFLICT);
    p.fence = 10;
    memset(&g, 0, sizeof(g));
    wait_for(&g, rp_replica_get(E.r, &p, "fk", done_cb, &g));
    CU_ASSERT_EQUAL(g.err, CM_ERR_CONFLICT);
    tres_free(&g);
    CU_ASSERT_EQUAL(do_put_fenced(&f, sh, 11).applied, 1);
}

/* A replica that restarts still refuses a replaced leader's token, on a put and on a get, and
 * admits its successor's. */
static void t_fence_restart(void)
{
    uint32_t sh = rp_shard_of("fk", NSHARDS);
    md_object a = version("fk", 1000, 1, NULL);
    CU_ASSERT_EQUAL(do_put_fenced(&a, sh, 7).applied, 1);
    env_restart();
    md_object b = version("fk", 2000, 2, &a.vv); /* the replaced leader (token 5) */
    CU_ASSERT_EQUAL(do_put_fenced(&b, sh, 5).err, CM_ERR_CONFLICT);
    rp_part p = part_of("fk");
    p.fence = 6;
    tres g = {0};
    wait_for(&g, rp_replica_get(E.r, &p, "fk", done_cb, &g));
    CU_ASSERT_EQUAL(g.err, CM_ERR_CONFLICT);
    tres_free(&g);
    tres t = do_get("b", "fk");
    CU_ASSERT_EQUAL(t.rec.hlc, a.hlc); /* b was not stored */
    tres_free(&t);
    CU_ASSERT_EQUAL(do_put_fenced(&b, sh, 7).applied, 1); /* the same leader */
    p.fence = 9; /* a successor's read raises the bar, durably too */
    memset(&g, 0, sizeof(g));
    wait_for(&g, rp_replica_get(E.r, &p, "fk", done_cb, &g));
    CU_ASSERT_EQUAL(g.err, CM_OK);
    tres_free(&g);
    env_restart();
    md_object c = version("fk", 3000, 3, &b.vv);
    CU_ASSERT_EQUAL(do_put_fenced(&c, sh, 7).err, CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(do_put_fenced(&c, sh, 9).applied, 1);
}

/* Keys "tb<i>" of one shard: n of them into keys (16 bytes each). */
static uint32_t same_shard_keys(char keys[][16], int n)
{
    uint32_t sh = rp_shard_of("tb0", NSHARDS);
    for (int i = 0, got = 0; got < n; i++) {
        snprintf(keys[got], 16, "tb%d", i);
        got += rp_shard_of(keys[got], NSHARDS) == sh;
    }
    return sh;
}

static tres do_tombs(uint32_t sh, int64_t before_ms, const char *after, size_t max)
{
    tres t = {0};
    rp_part p = {"b", sh, NSHARDS, 0};
    wait_for(&t, rp_replica_tombs(E.r, &p, MD_HLC_MAKE(before_ms, 0), after, max, done_cb, &t));
    return t;
}

static tres do_tomb_drop(uint32_t sh, int64_t mark_ms, const md_rec_info *infos, size_t n)
{
    tres t = {0};
    rp_part p = {"b", sh, NSHARDS, 0};
    wait_for(&t, rp_replica_tomb_drop(E.r, &p, MD_HLC_MAKE(mark_ms, 0), infos, n, done_cb, &t));
    return t;
}

/* Tombstone collection on a replica: old tombstones of the partition listed in pages, dropped
 * while they are the listed version, and a late old put of a dropped key not applied. */
static void t_tombs(void)
{
    char k[4][16];
    uint32_t sh = same_shard_keys(k, 4);
    md_object t0 = version(k[0], 1000, 1, NULL), t1 = version(k[1], 1100, 1, NULL);
    md_object t2 = version(k[2], 9000, 1, NULL), live = version(k[3], 1000, 1, NULL);
    t0.tombstone = t1.tombstone = t2.tombstone = 1;
    CU_ASSERT_EQUAL(do_put(&t0, NULL).applied, 1);
    CU_ASSERT_EQUAL(do_put(&t1, NULL).applied, 1);
    CU_ASSERT_EQUAL(do_put(&t2, NULL).applied, 1);
    CU_ASSERT_EQUAL(do_put(&live, NULL).applied, 1);
    tres a = do_tombs(sh, 5000, NULL, 1);
    CU_ASSERT_EQUAL_FATAL(a.err, CM_OK);
    CU_ASSERT_EQUAL_FATAL(a.ninfos, 1);
    CU_ASSERT_EQUAL(a.truncated, 1);
    tres b = do_tombs(sh, 5000, a.infos[0].key, 10);
    CU_ASSERT_EQUAL(b.ninfos, 1);
    CU_ASSERT_EQUAL(b.truncated, 0);
    tres_free(&b);
    tres_free(&a);
    a = do_tombs(sh, 5000, NULL, 10);
    CU_ASSERT_EQUAL_FATAL(a.ninfos, 2); /* not the young one, not the live one */
    for (size_t i = 0; i < a.ninfos; i++)
        CU_ASSERT(a.infos[i].tombstone && a.infos[i].hlc < MD_HLC_MAKE(5000, 0));
    b = do_tomb_drop(sh, 5000, a.infos, a.ninfos);
    CU_ASSERT_EQUAL(b.err, CM_OK);
    CU_ASSERT_EQUAL_FATAL(b.ndropped, 2);
    CU_ASSERT(b.dropped[0] == 1 && b.dropped[1] == 1);
    tres_free(&a);
    a = do_get("b", k[0]);
    CU_ASSERT_EQUAL(a.err, CM_ERR_NOTFOUND);
    /* a late copy of what the tombstone deleted is not applied; a newer write is */
    md_object late = version(k[0], 900, 2, NULL);
    a = do_put(&late, NULL);
    CU_ASSERT_EQUAL(a.err, CM_OK);
    CU_ASSERT_EQUAL(a.applied, 0);
    CU_ASSERT_EQUAL(do_get("b", k[0]).err, CM_ERR_NOTFOUND);
    md_object fresh = version(k[0], 6000, 2, NULL);
    CU_ASSERT_EQUAL(do_put(&fresh, NULL).applied, 1);
    /* a drop of a version the replica no longer holds keeps the newer one */
    a = do_tombs(sh, 10000, NULL, 10);
    CU_ASSERT_EQUAL_FATAL(a.ninfos, 1); /* t2 */
    md_object t3 = version(k[2], 9500, 1, &t2.vv);
    t3.tombstone = 1;
    CU_ASSERT_EQUAL(do_put(&t3, NULL).applied, 1);
    b = do_tomb_drop(sh, 10000, a.infos, a.ninfos);
    CU_ASSERT_EQUAL(b.err, CM_OK);
    CU_ASSERT_EQUAL(b.dropped[0], 0);
    tres g = do_get("b", k[2]);
    CU_ASSERT(g.has_rec && g.rec.hlc == t3.hlc);
    tres_free(&g);
    /* arguments refused before anything runs; an unknown bucket */
    rp_part p = {"b", sh, NSHARDS, 0}, nb = {"nobucket", sh, NSHARDS, 0};
    CU_ASSERT_EQUAL(rp_replica_tombs(E.r, &p, 0, NULL, 10, done_cb, &b), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(rp_replica_tombs(E.r, &p, 1, NULL, RP_LIST_MAX + 1, done_cb, &b), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(rp_replica_tomb_drop(E.r, &p, 1, a.infos, 0, done_cb, &b), CM_ERR_INVAL);
    p.shard = (sh + 1) % NSHARDS; /* the entry's key is not of this shard */
    CU_ASSERT_EQUAL(rp_replica_tomb_drop(E.r, &p, 1, a.infos, 1, done_cb, &b), CM_ERR_INVAL);
    tres_free(&a);
    tres_free(&b);
    wait_for(&a, rp_replica_tombs(E.r, &nb, 1, NULL, 10, done_cb, &a));
    CU_ASSERT_EQUAL(a.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(a.no_bucket, 1);
}

static void t_errors(void)
{
    md_object a = version("k", 1000, 1, NULL);
    tres t = {0};
    rp_part bad = {"b", NSHARDS, NSHARDS, 0}, wrong = part_of("k");
    wrong.shard = (wrong.shard + 1) % NSHARDS;
    /* refused before anything runs: no completion */
    CU_ASSERT_EQUAL(rp_replica_get(E.r, &bad, "k", done_cb, &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(rp_replica_put(E.r, &wrong, &a, NULL, done_cb, &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(rp_replica_merkle(E.r, &wrong, 0, done_cb, &t), CM_ERR_INVAL);
    uint32_t leaf = 16;
    CU_ASSERT_EQUAL(rp_replica_leaf_keys(E.r, &wrong, 1, &leaf, 1, done_cb, &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(rp_replica_list(E.r, &wrong, NULL, NULL, 0, done_cb, &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(rp_replica_put(E.r, &wrong, &a, "bad id!", done_cb, &t), CM_ERR_INVAL);
    event_base_loop(E.base, EVLOOP_NONBLOCK);
    CU_ASSERT_EQUAL(t.done, 0);
    if (!E.remote)
        return;
    /* an unreachable node: refused at once, or lost and timed out (bounded by the io timeout) */
    nd_fault_set(E.faults, "n1", "n2", ND_FAULT_REFUSE, 0);
    t = do_get("b", "k");
    CU_ASSERT_EQUAL(t.err, CM_ERR_UNAVAILABLE);
    nd_fault_set(E.faults, "n1", "n2", ND_FAULT_LOSE, 0);
    int64_t t0 = cm_monotonic_ms();
    t = do_put(&a, NULL);
    CU_ASSERT_EQUAL(t.err, CM_ERR_TIMEOUT);
    CU_ASSERT(t.ms - t0 >= 1400 && t.ms - t0 < 6000); /* the io timeout, 1.5 s */
    nd_fault_clear(E.faults, NULL, NULL);
    CU_ASSERT_EQUAL(do_put(&a, NULL).applied, 1);
}

#define BOTH(name)                                                                                 \
    static void name##_local(void)                                                                 \
    {                                                                                              \
        env_up(0, 300);                                                                            \
        name();                                                                                    \
        env_down();                                                                                \
    }                                                                                              \
    static void name##_remote(void)                                                                \
    {                                                                                              \
        env_up(1, 1500);                                                                           \
        name();                                                                                    \
        env_down();                                                                                \
    }

BOTH(t_get_put_merge)
BOTH(t_garbage)
BOTH(t_list)
BOTH(t_merkle_leaf_keys)
BOTH(t_hint_put)
BOTH(t_errors)
BOTH(t_clock)
BOTH(t_tombs)
BOTH(t_fence)
BOTH(t_fence_restart)

/* ---- the meta routes on the wire ---- */

typedef struct {
    int done;
    nd_result r;
    char msg[128];
} nres;

static void nd_cb(void *arg, const nd_result *r)
{
    nres *t = arg;
    t->done++;
    t->r = *r;
    snprintf(t->msg, sizeof(t->msg), "%s", r->message ? r->message : "");
    t->r.message = t->msg;
    t->r.body = NULL; /* lives during the callback only */
    E.pending--;
}

static nres nd_wait(cm_err rc, nres *t)
{
    CU_ASSERT_EQUAL(rc, CM_OK);
    if (rc == CM_OK) {
        E.pending++;
        loop_while(pending, NULL);
    }
    return *t;
}

static void raw_done(net_call *call, cm_err e, void *arg)
{
    nres *t = arg;
    const char *err = net_call_resp_header(call, "X-Cairn-Error");
    t->done++;
    t->r.err = e;
    t->r.status = net_call_status(call);
    snprintf(t->msg, sizeof(t->msg), "%s", err ? err : "");
    E.pending--;
}

/* PUT a record whose X-Cairn-Crc32c does not match its body, correctly signed otherwise. */
static nres put_bad_crc(int port, const uint8_t *rec, size_t len)
{
    static const net_call_handler h = {NULL, NULL, raw_done};
    const char *target = ND_PREFIX "/meta/b/rec";
    char date[24], lenstr[24], crc[9], sig[65], auth[96];
    const char *nonce = "00112233445566778899aabbccddeeff";
    snprintf(date, sizeof(date), "%lld", (long long)(cm_now_ms() / 1000));
    snprintf(lenstr, sizeof(lenstr), "%zu", len);
    snprintf(crc, sizeof(crc), "%08x", cm_crc32c(0, rec, len) ^ 1);
    nd_canon c = {"PUT", target, "n1", "n2", date, nonce, lenstr, crc};
    nd_sign(secret, SECRET_LEN, &c, sig);
    snprintf(auth, sizeof(auth), "CAIRN-HMAC-SHA256 %s", sig);
    net_call *call;
    nres t = {0};
    CU_ASSERT_EQUAL_FATAL(
        net_call_new(nd_client_net(E.cl), "127.0.0.1", port, "PUT", target, &call), CM_OK);
    net_call_header(call, "X-Cairn-Node", "n1");
    net_call_header(call, "X-Cairn-Date", date);
    net_call_header(call, "X-Cairn-Nonce", nonce);
    net_call_header(call, "X-Cairn-Crc32c", crc);
    net_call_header(call, "Authorization", auth);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, rec, len);
    net_call_body(call, len, b);
    evbuffer_free(b);
    net_call_start(call, &h, &t, 0);
    E.pending++;
    loop_while(pending, NULL);
    return t;
}

static nres cond_call(const char *bucket, const char *key, const char *etag, int del,
                      const md_cond *cond)
{
    nres t = {0};
    nd_peer n2 = {"n2", "127.0.0.1", E.nodes[1].rpc.port};
    md_object o = {.key = (char *)key, .size = 1};
    snprintf(o.etag, sizeof(o.etag), "%s", etag);
    uint8_t *rec;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &rec, &len), CM_OK);
    t = nd_wait(nd_cond_write(E.cl, &n2, bucket, rec, len, del, cond, nd_cb, &t), &t);
    free(rec);
    return t;
}

/* The conditional-write route: the condition, the record and the caller reach the node's
 * callback, and its outcome comes back as the call's error. */
static void t_cond_route(void)
{
    env_up(1, 2000);
    md_cond inm = {.if_none_match_star = 1}, m1 = {.if_match = "e1"}, m2 = {.if_match = "e2"},
            none = {0};
    CU_ASSERT_EQUAL(cond_call("b", "ck", "e1", 0, &inm).r.err, CM_OK);
    nres t = cond_call("b", "ck", "e9", 0, &inm);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(t.r.status, 412);
    CU_ASSERT_EQUAL(cond_call("b", "ck", "e9", 0, &m2).r.err, CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(cond_call("b", "ck", "e2", 0, &m1).r.err, CM_OK); /* If-Match e1 */
    md_object got;
    CU_ASSERT_EQUAL_FATAL(md_object_get(E.nodes[1].md, "b", "ck", &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got.etag, "e2");
    md_object_release(&got);
    CU_ASSERT_EQUAL(cond_call("b", "ck", "", 1, &m1).r.err, CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(cond_call("b", "ck", "", 1, &m2).r.err, CM_OK); /* DELETE If-Match e2 */
    CU_ASSERT_EQUAL(md_object_get(E.nodes[1].md, "b", "ck", &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(cond_call("b", "ck", "e3", 0, &m2).r.err, CM_ERR_NOTFOUND);
    t = cond_call("elsewhere", "ck", "e3", 0, &inm); /* not the leader */
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_CONFLICT);
    CU_ASSERT_STRING_EQUAL(t.msg, "not the partition's leader");
    nd_peer n2 = {"n2", "127.0.0.1", E.nodes[1].rpc.port};
    uint8_t one = 1;
    CU_ASSERT_EQUAL(nd_cond_write(E.cl, &n2, "b", &one, 1, 0, &none, nd_cb, &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(nd_cond_write(E.cl, &n2, "b", &one, 1, 0, NULL, nd_cb, &t), CM_ERR_INVAL);
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_cond_write(E.cl, &n2, "b", (const uint8_t *)"junk", 4, 0, &inm, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_CORRUPT); /* not a record: refused before the callback */
    env_down();
}

static void t_rpc_edges(void)
{
    env_up(1, 2000);
    nd_peer n2 = {"n2", "127.0.0.1", E.nodes[1].rpc.port};
    md_object a = version("k", 1000, 1, NULL);
    uint8_t *rec;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&a, &rec, &len), CM_OK);
    nres t = {0};
    /* a client with another secret is refused (the meta routes are authenticated) */
    static const uint8_t other[] = "not-the-secret";
    nd_client_config cc = {0};
    nd_client *bad;
    cc.node_id = "n9";
    cc.secret = other;
    cc.secret_len = sizeof(other) - 1;
    CU_ASSERT_EQUAL_FATAL(nd_client_new(E.base, &cc, &bad), CM_OK);
    t = nd_wait(nd_meta_put(bad, &n2, "b", rec, len, NULL, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_AUTH);
    CU_ASSERT_EQUAL(t.r.status, 401);
    memset(&t, 0, sizeof(t));
    nd_part p = {"b", 0, 1};
    t = nd_wait(nd_meta_list(bad, &n2, &p, NULL, NULL, 10, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_AUTH);
    nd_client_free(bad);
    md_object got;
    CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", "k", &got), CM_ERR_NOTFOUND); /* nothing */
    /* a body whose CRC32C does not match is refused before anything is applied */
    t = put_bad_crc(E.nodes[1].rpc.port, rec, len);
    CU_ASSERT_EQUAL(t.r.status, 400);
    CU_ASSERT_STRING_EQUAL(t.msg, "CM_ERR_DIGEST");
    CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", "k", &got), CM_ERR_NOTFOUND);
    /* a body that is not a record; a record under an unknown bucket (told apart) */
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_meta_put(E.cl, &n2, "b", (const uint8_t *)"junk", 4, NULL, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_CORRUPT);
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_meta_put(E.cl, &n2, "zz", rec, len, NULL, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(t.r.no_bucket, 1);
    /* the merge itself, then a leaf beyond the tree and a bad depth */
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_meta_put(E.cl, &n2, "b", rec, len, NULL, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_OK);
    CU_ASSERT_EQUAL(t.r.applied, 1);
    uint32_t leaf = 16;
    CU_ASSERT_EQUAL(nd_meta_leaf_keys(E.cl, &n2, &p, 1, &leaf, 1, nd_cb, &t), CM_OK);
    memset(&t, 0, sizeof(t));
    t = nd_wait(CM_OK, &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_INVAL);
    CU_ASSERT_EQUAL(nd_meta_merkle(E.cl, &n2, &p, 0, nd_cb, &t), CM_ERR_INVAL);
    free(rec);
    /* a node without a store answers every meta route 503 */
    tnode bare;
    memset(&bare, 0, sizeof(bare));
    nd_service_config sc = {0};
    sc.node_id = "n4";
    sc.secret = secret;
    sc.secret_len = SECRET_LEN;
    cu_rpc_start(&bare.rpc, &sc);
    nd_peer n4 = {"n4", "127.0.0.1", bare.rpc.port};
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_meta_get(E.cl, &n4, "b", "k", nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(t.r.status, 503);
    md_cond inm = {.if_none_match_star = 1}; /* no callback: the cond route is unavailable */
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_cond_write(E.cl, &n4, "b", (const uint8_t *)"junk", 4, 0, &inm, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_UNAVAILABLE);
    node_stop(&bare);
    env_down();
}

/* ---- throughput (RP_BENCH_N records; a small default keeps CI fast) ---- */

typedef struct {
    rp_replica *r;
    int next, total, inflight, failed;
    char key[32];
} bench;

static void bench_next(bench *b);

static void bench_done(void *arg, const rp_result *res)
{
    bench *b = arg;
    b->inflight--;
    b->failed += res->err != CM_OK;
    E.pending--;
    bench_next(b);
}

static void bench_next(bench *b)
{
    while (b->inflight < 16 && b->next < b->total) {
        char key[32];
        snprintf(key, sizeof(key), "bench-%06d", b->next++);
        md_object o = version(key, 1000 + (uint64_t)b->next, 1, NULL);
        rp_part p = part_of(key);
        p.shard = 0, p.nshards = 1;
        if (rp_replica_put(b->r, &p, &o, NULL, bench_done, b) == CM_OK)
            b->inflight++, E.pending++;
        else
            b->failed++;
    }
}

static double bench_puts(rp_replica *r, int n)
{
    bench b = {.r = r};
    int64_t t0 = cm_monotonic_ms();
    while (b.total < n && !E.hung) { /* in steps of 1,000: each within the loop's guard */
        b.total = CM_MIN(b.total + 1000, n);
        bench_next(&b);
        loop_while(pending, NULL);
    }
    CU_ASSERT_EQUAL(b.failed, 0);
    return n * 1000.0 / (double)CM_MAX(cm_monotonic_ms() - t0, 1);
}

static void t_bench(void)
{
    const char *env_n = getenv("RP_BENCH_N");
    const char *env_w = getenv("RP_BENCH_WORKERS");
    int n = env_n ? atoi(env_n) : 500;
    nworkers = env_w ? atoi(env_w) : 2;
    env_up(1, 2000);
    double local = bench_puts(E.local, n), remote = bench_puts(E.to_n2, n);
    /* list everything back over the RPC, in pages of RP_LIST_MAX */
    rp_part all = {"b", 0, 1, 0};
    char after[32] = "";
    int got = 0, pages = 0;
    int64_t t0 = cm_monotonic_ms();
    for (int more = 1; more;) {
        tres t = {0};
        wait_for(&t, rp_replica_list(E.to_n2, &all, NULL, after[0] ? after : NULL, RP_LIST_MAX,
                                     done_cb, &t));
        CU_ASSERT_EQUAL_FATAL(t.err, CM_OK);
        got += (int)t.nrecs;
        if (t.nrecs)
            snprintf(after, sizeof(after), "%s", t.recs[t.nrecs - 1].key);
        more = t.truncated;
        pages++;
        tres_free(&t);
    }
    int64_t list_ms = cm_monotonic_ms() - t0;
    CU_ASSERT_EQUAL(got, n);
    t0 = cm_monotonic_ms();
    tres t = {0};
    wait_for(&t, rp_replica_merkle(E.to_n2, &all, 3, done_cb, &t));
    CU_ASSERT_EQUAL(t.nleaves, 4096);
    tres_free(&t);
    int64_t merkle_ms = cm_monotonic_ms() - t0;
    printf("\n    repl bench: %d records, 16 in flight, %d md workers: merge-put local %.0f/s, "
           "remote %.0f/s; remote list %d pages in %lld ms; remote merkle depth 3 in %lld ms\n",
           n, nworkers, local, remote, pages, (long long)list_ms, (long long)merkle_ms);
    env_down();
    nworkers = 2;
}

/* ---- router ---- */

static void t_router(void)
{
    pl_topology *t;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 3, 2, &t), CM_OK); /* 9 nodes in 3 AZs */
    env_up(0, 300);
    rp_router *rt, *rt2;
    rp_replica *l5; /* n5's local backend, for a router on n5 */
    CU_ASSERT_EQUAL_FATAL(rp_replica_local_new(E.base, E.nodes[0].md, E.work, "n5", &l5), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_router_new(t, "n1", E.local, E.cl, &rt), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_router_new(t, "n5", l5, E.cl, &rt2), CM_OK);
    int local_seen = 0;
    for (uint32_t s = 0; s < 64; s++) {
        rp_part p = {"bkt", s, 64, 0};
        rp_replica *out[8], *out2[8];
        int n = rp_route(rt, &p, 3, 3, out);
        CU_ASSERT_EQUAL_FATAL(n, 6);
        CU_ASSERT_EQUAL(rp_route(rt2, &p, 3, 3, out2), 6);
        char azs[3][PL_NAME_MAX];
        for (int i = 0; i < n; i++) {
            int idx = pl_topology_find(t, out[i]->node_id);
            CU_ASSERT_FATAL(idx >= 0);
            CU_ASSERT_STRING_EQUAL(out[i]->node_id, out2[i]->node_id); /* the same everywhere */
            if (i < 3)
                snprintf(azs[i], sizeof(azs[i]), "%s", t->nodes[idx].az);
            for (int j = 0; j < i; j++)
                CU_ASSERT_PTR_NOT_EQUAL(out[i], out[j]); /* fallbacks distinct from homes */
            local_seen += out[i] == E.local;
        }
        CU_ASSERT(strcmp(azs[0], azs[1]) && strcmp(azs[0], azs[2]) && strcmp(azs[1], azs[2]));
        CU_ASSERT_PTR_EQUAL(rp_router_replica(rt, out[0]->node_id), out[0]);
    }
    CU_ASSERT(local_seen > 0); /* self resolves to the local backend */
    CU_ASSERT_PTR_NULL(rp_router_replica(rt, "nope"));
    rp_part p = {"bkt", 0, 1, 0};
    rp_replica *out[40];
    CU_ASSERT_EQUAL(rp_route(rt, &p, 10, 0, out), 9); /* more homes than nodes: every node */
    CU_ASSERT_EQUAL(rp_route(rt, &p, 3, 20, out), 9); /* every node once */
    rp_router_free(rt);
    rp_router_free(rt2);
    rp_replica_free(l5);
    pl_topology_free(t);
    env_down();
}

/* A layout of fewer nodes than N: rp_homes shrinks N to them, so every partition still has a
 * first home (anti-entropy and repair run there: cmd/cluster.c, cluster_repair.c), and it is the
 * first replica rp_route answers. */
static void t_small_layouts(void)
{
    env_up(0, 300);
    for (int nodes = 1; nodes <= 2; nodes++) {
        pl_topology *t;
        pl_map *m;
        rp_router *rt;
        CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(nodes, 1, 2, &t), CM_OK);
        CU_ASSERT_EQUAL_FATAL(pl_map_new(t, PL_MAP_HOMES, &m), CM_OK);
        CU_ASSERT_EQUAL_FATAL(rp_router_new(t, "n1", E.local, E.cl, &rt), CM_OK);
        int first[2] = {0, 0};
        for (uint32_t s = 0; s < 64; s++) {
            rp_part p = {"bkt", s, 64, 0};
            int homes[3];
            rp_replica *out[3];
            CU_ASSERT_EQUAL_FATAL(rp_homes(m, pl_partition_id("bkt", s), 3, homes), nodes);
            CU_ASSERT_EQUAL_FATAL(rp_route(rt, &p, 3, 0, out), nodes);
            CU_ASSERT_STRING_EQUAL(out[0]->node_id, t->nodes[homes[0]].id);
            first[homes[0]]++;
        }
        CU_ASSERT_EQUAL(first[0] + first[1], 64);
        if (nodes == 2) /* both nodes are the first home of some partitions */
            CU_ASSERT(first[0] > 0 && first[1] > 0);
        rp_router_free(rt);
        pl_map_free(m);
        pl_topology_free(t);
    }
    int homes[3];
    CU_ASSERT_EQUAL(rp_homes(NULL, 1, 3, homes), -(int)CM_ERR_INVAL);
    env_down();
}

/* ---- hints ---- */

static rp_hints *HINTS;

static int hints_busy(void *arg)
{
    (void)arg;
    return rp_hints_busy(HINTS);
}

static void hint_round(void)
{
    rp_hints_kick(HINTS);
    CU_ASSERT(rp_hints_busy(HINTS));
    loop_while(hints_busy, NULL);
}

static void t_hints(void)
{
    env_up(0, 300);
    rp_router *rt;
    CU_ASSERT_EQUAL_FATAL(rp_router_new(E.topo, "n1", E.local, E.cl, &rt), CM_OK);
    /* n1 stands in for n2 while n2 does not answer */
    md_object h1 = version("h1", 1000, 1, NULL), h2 = version("h2", 1001, 1, NULL);
    CU_ASSERT_EQUAL(do_put(&h1, "n2").applied, 1);
    CU_ASSERT_EQUAL(do_put(&h2, "n2").applied, 1);
    uint64_t cnt;
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 2);
    rp_hints_config hc = {E.base, E.nodes[0].md, E.work, rt, NSHARDS, 1, 60000, 0};
    CU_ASSERT_EQUAL_FATAL(rp_hints_new(&hc, &HINTS), CM_OK);
    nd_fault_set(E.faults, "n1", "n2", ND_FAULT_REFUSE, 0);
    hint_round();
    rp_hints_stats st;
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.rounds, 1);
    CU_ASSERT_EQUAL(st.listed, 1); /* batch 1 */
    CU_ASSERT_EQUAL(st.failed, 1);
    CU_ASSERT_EQUAL(st.dropped, 0);
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 2); /* kept */
    md_object o;
    CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", "h1", &o), CM_ERR_NOTFOUND);
    /* n2 is back: one hint per round (batch 1), each delivered and dropped */
    nd_fault_clear(E.faults, NULL, NULL);
    hint_round();
    hint_round();
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.delivered, 2);
    CU_ASSERT_EQUAL(st.dropped, 2);
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 0);
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[1].md, "b", "h1", &o), CM_OK);
    CU_ASSERT_EQUAL(o.hlc, h1.hlc);
    md_object_release(&o);
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[1].md, "b", "h2", &o), CM_OK);
    md_object_release(&o);
    /* a hint older than what the target holds: superseded, dropped all the same */
    md_object stale = {.key = "h1", .hlc = MD_HLC_MAKE(10, 0), .hlc_node = 3};
    CU_ASSERT_EQUAL(do_put(&stale, "n2").applied, 1);
    hint_round();
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.superseded, 1);
    CU_ASSERT_EQUAL(st.dropped, 3);
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 0);
    /* an empty round sends nothing */
    hint_round();
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.listed, 4);
    /* targets take turns: n2 refuses with 3 hints (more than a batch), n3's still arrives */
    nd_fault_set(E.faults, "n1", "n2", ND_FAULT_REFUSE, 0);
    const char *keys[4] = {"t1", "t2", "t3", "t4"};
    for (int i = 0; i < 4; i++) {
        md_object tk = version(keys[i], 9000 + (uint64_t)i, 1, NULL);
        CU_ASSERT_EQUAL(do_put(&tk, i < 3 ? "n2" : "n3").applied, 1);
    }
    hint_round();
    hint_round();
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[2].md, "b", "t4", &o), CM_OK);
    md_object_release(&o);
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 3); /* n2's, kept */
    rp_hints_free(HINTS);
    rp_router_free(rt);
    env_down();
}

/* Hints older than the tombstone grace are dropped undelivered, younger ones delivered. */
static void t_hints_expire(void)
{
    env_up(0, 300);
    rp_router *rt;
    CU_ASSERT_EQUAL_FATAL(rp_router_new(E.topo, "n1", E.local, E.cl, &rt), CM_OK);
    int64_t now = cm_now_ms();
    md_object old = version("x1", (uint64_t)(now - 7200 * 1000), 1, NULL);
    md_object young = version("x2", (uint64_t)(now - 1000), 1, NULL);
    CU_ASSERT_EQUAL(do_put(&old, "n2").applied, 1);
    CU_ASSERT_EQUAL(do_put(&young, "n2").applied, 1);
    rp_hints_config hc = {E.base, E.nodes[0].md, E.work, rt, NSHARDS, 10, 60000, 3600 * 1000};
    CU_ASSERT_EQUAL_FATAL(rp_hints_new(&hc, &HINTS), CM_OK);
    hint_round();
    rp_hints_stats st;
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.expired, 1);
    CU_ASSERT_EQUAL(st.delivered, 1);
    CU_ASSERT_EQUAL(st.dropped, 2);
    uint64_t cnt;
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 0);
    md_object o;
    CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", "x1", &o), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[1].md, "b", "x2", &o), CM_OK);
    md_object_release(&o);
    rp_hints_free(HINTS);
    rp_router_free(rt);
    env_down();
}

/* A hint for a bucket that is gone (its target answers "no such bucket", and this node no longer
 * has it either: deleted while the target was down) is dropped; one for a bucket this node still
 * has is kept (the target may not have it yet). Before, every such hint was kept and sent again
 * each round, and since a round lists a target's hints from its first, a batch of them ahead of
 * the others held that target's other hints back for good. */
static void t_hints_gone_bucket(void)
{
    env_up(0, 300);
    rp_router *rt;
    CU_ASSERT_EQUAL_FATAL(rp_router_new(E.topo, "n1", E.local, E.cl, &rt), CM_OK);
    md_bucket only_here = {0};
    snprintf(only_here.name, sizeof(only_here.name), "c-new");
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(E.nodes[0].md, &only_here), CM_OK);
    md_object g = version("g1", 1000, 1, NULL), h = version("h1", 1001, 1, NULL);
    md_object c = version("c1", 1002, 1, NULL);
    CU_ASSERT_EQUAL(md_hint_put(E.nodes[0].md, "n2", "a-gone", &g), CM_OK); /* sorts first */
    CU_ASSERT_EQUAL(do_put(&h, "n2").applied, 1);
    CU_ASSERT_EQUAL(md_hint_put(E.nodes[0].md, "n2", "c-new", &c), CM_OK);
    rp_hints_config hc = {E.base, E.nodes[0].md, E.work, rt, NSHARDS, 1, 60000, 0};
    CU_ASSERT_EQUAL_FATAL(rp_hints_new(&hc, &HINTS), CM_OK);
    for (int i = 0; i < 3; i++)
        hint_round();
    md_object o;
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[1].md, "b", "h1", &o), CM_OK);
    md_object_release(&o);
    uint64_t cnt;
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 1); /* c-new's, kept */
    rp_hints_stats st;
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.dropped, 2);
    rp_hints_free(HINTS);
    rp_router_free(rt);
    env_down();
}

/* A stand-in keeps at most hints_max hints: a hint for a new key beyond it is refused over the
 * RPC (503: the coordinator tries its next stand-in) and counted; a newer version of a key it
 * holds still replaces the stored one. Before, a stand-in took any number. */
static void t_hints_bound(void)
{
    env_up(1, 300); /* n1 puts hints on n2 through the RPC */
    md_store *n2 = E.nodes[1].md;
    md_hint_set_max(n2, 2);
    md_object a = version("ha", 1000, 1, NULL), b = version("hb", 1001, 1, NULL);
    md_object c = version("hc", 1002, 1, NULL), a2 = version("ha", 1003, 1, &a.vv);
    CU_ASSERT_EQUAL(do_put(&a, "n3").applied, 1);
    CU_ASSERT_EQUAL(do_put(&b, "n3").applied, 1);
    tres t = do_put(&c, "n3");
    CU_ASSERT_EQUAL(t.err, CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(t.applied, 0);
    CU_ASSERT_EQUAL(md_hint_refused(n2), 1);
    t = do_put(&a2, "n1"); /* another target, a new hint: refused as well */
    CU_ASSERT_EQUAL(t.err, CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(do_put(&a2, "n3").applied, 1); /* a newer version of a kept hint */
    uint64_t cnt;
    CU_ASSERT_EQUAL(md_hint_count(n2, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 2);
    md_hint *hs;
    size_t n;
    int truncated;
    CU_ASSERT_EQUAL_FATAL(md_hint_list(n2, "n3", NULL, NULL, 10, &hs, &n, &truncated), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(hs[0].rec.key, "ha");
    CU_ASSERT_EQUAL(hs[0].rec.hlc, a2.hlc);
    md_hints_free(hs, n);
    md_hint_set_max(n2, 0); /* no bound */
    CU_ASSERT_EQUAL(do_put(&c, "n3").applied, 1);
    CU_ASSERT_EQUAL(md_hint_refused(n2), 2);
    env_down();
}

/* A hint for a node the layout no longer names (removed for good) goes to its partition's first
 * home and is dropped once delivered; before, it stayed (unroutable) until the tombstone grace. */
static void t_hints_removed_node(void)
{
    env_up(0, 300);
    rp_router *rt;
    CU_ASSERT_EQUAL_FATAL(rp_router_new(E.topo, "n1", E.local, E.cl, &rt), CM_OK);
    md_object r1 = version("r1", 1000, 1, NULL);
    CU_ASSERT_EQUAL(do_put(&r1, "n9").applied, 1);
    rp_part p = part_of("r1");
    rp_replica *home = NULL;
    CU_ASSERT_EQUAL_FATAL(rp_route(rt, &p, 1, 0, &home), 1);
    int hi = home->node_id[1] - '1'; /* n1..n3 */
    CU_ASSERT_FATAL(hi >= 0 && hi < NNODES);
    rp_hints_config hc = {E.base, E.nodes[0].md, E.work, rt, NSHARDS, 10, 60000, 0};
    CU_ASSERT_EQUAL_FATAL(rp_hints_new(&hc, &HINTS), CM_OK);
    hint_round();
    rp_hints_stats st;
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.rehomed, 1);
    CU_ASSERT_EQUAL(st.delivered, 1);
    CU_ASSERT_EQUAL(st.dropped, 1);
    CU_ASSERT_EQUAL(st.unroutable, 0);
    uint64_t cnt;
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 0);
    md_object o;
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[hi].md, "b", "r1", &o), CM_OK);
    CU_ASSERT_EQUAL(o.hlc, r1.hlc);
    md_object_release(&o);
    rp_hints_free(HINTS);
    rp_router_free(rt);
    env_down();
}

/* Hints a target refuses for a lasting reason (here stamped a day ahead of its clock) do not hold
 * back its others: each round lists a target's hints from after the last one it listed, so the
 * hint behind two refused ones arrives by the second round of batch 2, and the refused ones are
 * tried again on the next pass. Before, every round listed the same two from the front. */
static void t_hints_head_of_line(void)
{
    env_up(0, 300);
    rp_router *rt;
    CU_ASSERT_EQUAL_FATAL(rp_router_new(E.topo, "n1", E.local, E.cl, &rt), CM_OK);
    uint64_t ahead = (uint64_t)cm_now_ms() + 86400 * 1000;
    md_object a0 = version("a0", ahead, 1, NULL), a1 = version("a1", ahead, 1, NULL);
    md_object z1 = version("z1", (uint64_t)cm_now_ms(), 1, NULL);
    CU_ASSERT_EQUAL(md_hint_put(E.nodes[0].md, "n2", "b", &a0), CM_OK); /* sort first */
    CU_ASSERT_EQUAL(md_hint_put(E.nodes[0].md, "n2", "b", &a1), CM_OK);
    CU_ASSERT_EQUAL(md_hint_put(E.nodes[0].md, "n2", "b", &z1), CM_OK);
    rp_hints_config hc = {E.base, E.nodes[0].md, E.work, rt, NSHARDS, 2, 60000, 0};
    CU_ASSERT_EQUAL_FATAL(rp_hints_new(&hc, &HINTS), CM_OK);
    hint_round();
    hint_round();
    md_object o;
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[1].md, "b", "z1", &o), CM_OK);
    md_object_release(&o);
    hint_round(); /* the refused ones come round again, and still stay */
    rp_hints_stats st;
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.listed, 6); /* rounds: a0 a1, then z1 a0 (wrapped), then a1 a0 */
    CU_ASSERT_EQUAL(st.delivered, 1);
    uint64_t cnt;
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 2);
    CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", "a0", &o), CM_ERR_NOTFOUND);
    rp_hints_free(HINTS);
    rp_router_free(rt);
    env_down();
}

/* ---- a record read does not wait for the pool ---- */

typedef struct {
    nd_job job; /* first */
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    int *release;
} blocker;

static void blocker_run(nd_job *j)
{
    blocker *b = (blocker *)(void *)j;
    pthread_mutex_lock(b->mu);
    while (!*b->release)
        pthread_cond_wait(b->cv, b->mu);
    pthread_mutex_unlock(b->mu);
}

static void blocker_done(nd_job *j)
{
    (void)j;
    E.pending--;
}

/* Every worker of n1's pool is busy (a long group commit, say): a get of the local replica is
 * one LMDB lookup and answers anyway, still after the call returned (docs/performance.md,
 * "Cluster"); a put waits for a worker. */
static void t_get_busy_pool(void)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int release = 0;
    blocker b[8];
    env_up(0, 0);
    md_object v = version("busy", 1000, 7, NULL);
    tres t = do_put(&v, NULL);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    tres_free(&t);
    for (int i = 0; i < nworkers; i++) {
        b[i] = (blocker){{blocker_run, blocker_done, E.base, NULL}, &mu, &cv, &release};
        nd_work_submit(E.work, &b[i].job);
    }
    t = do_get("b", "busy");
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT(t.has_rec && strcmp(t.rec.etag, v.etag) == 0);
    tres_free(&t);
    tres p = {0};
    rp_part part = part_of("busy2");
    md_object v2 = version("busy2", 1000, 7, NULL);
    CU_ASSERT_EQUAL(rp_replica_put(E.r, &part, &v2, NULL, done_cb, &p), CM_OK);
    E.pending++;
    for (int i = 0; i < 20; i++) /* the put stays queued behind the blockers */
        event_base_loop(E.base, EVLOOP_NONBLOCK);
    CU_ASSERT_EQUAL(p.done, 0);
    pthread_mutex_lock(&mu);
    release = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    E.pending += nworkers;
    loop_while(pending, NULL);
    CU_ASSERT_EQUAL(p.done, 1);
    CU_ASSERT_EQUAL(p.err, CM_OK);
    tres_free(&p);
    env_down();
}

void cu_register(void)
{
    static const cu_test local[] = {
        {"get_put_merge", t_get_put_merge_local},
        {"garbage", t_garbage_local},
        {"list", t_list_local},
        {"merkle_leaf_keys", t_merkle_leaf_keys_local},
        {"hint_put", t_hint_put_local},
        {"errors", t_errors_local},
        {"clock", t_clock_local},
        {"fence", t_fence_local},
        {"fence_restart", t_fence_restart_local},
        {"tombs", t_tombs_local},
        {NULL, NULL},
    };
    static const cu_test remote[] = {
        {"get_put_merge", t_get_put_merge_remote},
        {"garbage", t_garbage_remote},
        {"list", t_list_remote},
        {"merkle_leaf_keys", t_merkle_leaf_keys_remote},
        {"hint_put", t_hint_put_remote},
        {"errors", t_errors_remote},
        {"clock", t_clock_remote},
        {"fence", t_fence_remote},
        {"fence_restart", t_fence_restart_remote},
        {"tombs", t_tombs_remote},
        {NULL, NULL},
    };
    static const cu_test cluster[] = {
        {"rpc_edges", t_rpc_edges},
        {"cond_route", t_cond_route},
        {"router", t_router},
        {"small_layouts", t_small_layouts},
        {"hints", t_hints},
        {"hints_expire", t_hints_expire},
        {"hints_gone_bucket", t_hints_gone_bucket},
        {"hints_bound", t_hints_bound},
        {"hints_removed_node", t_hints_removed_node},
        {"hints_head_of_line", t_hints_head_of_line},
        {"bench", t_bench},
        {"get_busy_pool", t_get_busy_pool},
        {NULL, NULL},
    };
    cu_add_suite("repl_local", local);
    cu_add_suite("repl_remote", remote);
    cu_add_suite("repl", cluster);
}
