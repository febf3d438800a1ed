/*
 * rp_trio.c - the replica tests' fixture (rp_trio.h).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "cm_util.h"
#include "cu_main.h"
#include "rp_trio.h"

/* ---- nodes ---- */

int nworkers = 2;

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
    if (r->cond->lock_change == MD_COND_LOCK_KEEP) { /* the record, the lock fields there */
        md_object cur, w;
        cm_err e = md_object_get(n->md, r->bucket, r->rec->key, &cur);
        if (e != CM_OK)
            return e;
        if ((e = md_object_copy(r->rec, &w)) == CM_OK) {
            w.lock_mode = cur.lock_mode, w.lock_until_ms = cur.lock_until_ms;
            w.legal_hold = cur.legal_hold;
            e = md_rec_put(n->md, r->bucket, &w, cur.generation, NULL);
            md_object_release(&w);
        }
        md_object_release(&cur);
        return e;
    }
    if (r->cond->lock_change == MD_COND_LOCK_LAYOUT) { /* the part names heal_old: swapped */
        md_object cur;
        uint32_t i = r->cond->heal_part;
        cm_err e = md_object_get(n->md, r->bucket, r->rec->key, &cur);
        if (e != CM_OK)
            return e;
        int same = i < cur.nparts && md_layout_same_cells(&cur.parts[i].layout, r->cond->heal_old);
        md_object_release(&cur);
        if (!same || i >= r->rec->nparts)
            return CM_ERR_PRECONDITION;
        return md_object_replace_layout(n->md, r->bucket, r->rec->key, i, r->cond->heal_old->blob,
                                        &r->rec->parts[i].layout);
    }
    if (r->cond->lock_change) { /* a retention or hold change of the key's null version */
        md_lock_change ch = {.set_retention = (r->cond->lock_change & MD_COND_LOCK_RETENTION) != 0,
                             .mode = r->rec->lock_mode,
                             .until_ms = r->rec->lock_until_ms,
                             .set_hold = (r->cond->lock_change & MD_COND_LOCK_HOLD) != 0,
                             .legal_hold = r->rec->legal_hold,
                             .bypass_governance = r->cond->bypass_governance};
        return md_version_set_lock(n->md, r->bucket, r->rec->key, "null", &ch);
    }
    return md_object_put(n->md, r->bucket, r->rec, r->cond, NULL, NULL);
}

/* Start node id with its store in dir: a new directory, or (reopen) the one dir names. */
void node_start(tnode *n, const char *id, int serve, char *dir, int reopen)
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
    sc.epoch = &n->fence;
    sc.cond = cond_cb;
    sc.cond_arg = n;
    cu_rpc_start(&n->rpc, &sc);
}

void node_stop(tnode *n)
{
    cu_rpc_stop(&n->rpc, 1000);
    md_close(n->md);
    if (n->md)
        md_hlc_release(&n->clock);
}

/* ---- the environment of one test ---- */

env E;
char node_dir[NNODES][300];

static void threads_on(void)
{
    evthread_use_pthreads();
}

/* Start the environment; reopen: on the stores the last one left (env_restart). */
void env_start(int remote, int io_timeout_ms, int reopen)
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
    nd_peer p = {"n2", "127.0.0.1", E.nodes[1].rpc.port, 0};
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

void env_up(int remote, int io_timeout_ms)
{
    env_start(remote, io_timeout_ms, 0);
}

void env_down(void)
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
void env_restart(void)
{
    int remote = E.remote, io_timeout_ms = E.io_timeout_ms;
    env_down();
    env_start(remote, io_timeout_ms, 1);
}

/* Run the loop until cond(arg) is false, or the 10 s guard. */
void loop_while(int (*cond)(void *), void *arg)
{
    cu_loop_while(E.base, cond, arg, &E.hung, 10);
    CU_ASSERT_FALSE(E.hung);
}

int pending(void *arg)
{
    (void)arg;
    return E.pending > 0;
}

/* ---- results (deep copies, since a result lives during its callback only) ---- */

void done_cb(void *arg, const rp_result *r)
{
    tres *t = arg;
    t->done++;
    t->err = r->err;
    t->no_bucket = r->no_bucket;
    t->applied = r->applied;
    t->truncated = r->truncated;
    t->ms = cm_monotonic_ms();
    /* Both backends hand a get's record over (res.take): moved, as the coordinator does, so
     * ASan sees each backend release what is left without a double free. */
    CU_ASSERT(!r->rec || r->take == r->rec);
    if (r->take) {
        t->rec = *r->take;
        memset(r->take, 0, sizeof(*r->take));
        t->has_rec = 1;
    } else if (r->rec) {
        t->has_rec = md_object_copy(r->rec, &t->rec) == CM_OK;
    }
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

void tres_free(tres *t)
{
    if (t->has_rec)
        md_object_release(&t->rec);
    md_objects_free(t->recs, t->nrecs);
    free(t->hashes);
    md_rec_infos_free(t->infos, t->ninfos);
    memset(t, 0, sizeof(*t));
}

/* Wait for one call that returned rc; the completion must not have run inside the call. */
void wait_for(tres *t, cm_err rc)
{
    CU_ASSERT_EQUAL(rc, CM_OK);
    CU_ASSERT_EQUAL(t->done, 0);
    if (rc == CM_OK) {
        E.pending++;
        loop_while(pending, NULL);
    }
    CU_ASSERT_EQUAL(t->done, rc == CM_OK ? 1 : 0);
}

rp_part part_of(const char *key)
{
    rp_part p = {"b", rp_shard_of(key, NSHARDS), NSHARDS, 0};
    return p;
}

tres do_get(const char *bucket, const char *key)
{
    tres t = {0};
    rp_part p = part_of(key);
    p.bucket = bucket;
    wait_for(&t, rp_replica_get(E.r, &p, key, done_cb, &t));
    return t;
}

tres do_put(const md_object *rec, const char *hint_for)
{
    tres t = {0};
    rp_part p = part_of(rec->key);
    wait_for(&t, rp_replica_put(E.r, &p, rec, hint_for, done_cb, &t));
    return t;
}

md_object version(const char *key, uint64_t ms, uint32_t node, const md_vv *base)
{
    md_object o = {.key = (char *)key, .hlc = MD_HLC_MAKE(ms, 0), .hlc_node = node, .size = 3};
    if (base)
        o.vv = *base;
    md_vv_increment(&o.vv, node, o.hlc);
    snprintf(o.etag, sizeof(o.etag), "etag-%" PRIu64, ms);
    return o;
}
