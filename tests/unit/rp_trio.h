/*
 * rp_trio.h - the fixture of the replica tests (test_repl.c, test_repl_router.c,
 * test_repl_router_batch.c): three nodes in this process, each with its own md_store holding
 * bucket "b". n1 is "this node" (its store reached by the local backend, md calls on a worker
 * pool, on the test thread's loop); n2 and n3 serve their stores over the node RPC (an nd_service
 * on a net_server thread each, on loopback). One environment at a time (E); each test brings it
 * up and down. Calls run the loop until their completion came (a 10 s guard fails a hang) and
 * check that no completion ran inside the call that started it. Results are deep copies (tres),
 * since a result lives during its callback only.
 */
#ifndef RP_TRIO_H
#define RP_TRIO_H

#include <event2/event.h>
#include <stdint.h>

#include "cu_nodes.h"
#include "rp_hints.h"
#include "rp_replica.h"

static const uint8_t secret[] = "repl-test-secret";
#define SECRET_LEN (sizeof(secret) - 1)
#define NNODES 3
#define NSHARDS 4

extern int nworkers; /* n1's md workers and each service's; the bench may raise it */

typedef struct {
    char id[8];
    md_store *md;
    md_hlc clock;
    _Atomic uint64_t fence; /* its RPC's layout fence (nd_service_config.epoch) */
    cu_rpc rpc;
} tnode;

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

extern env E;
extern char node_dir[NNODES][300]; /* the nodes' store directories, kept by env_restart */

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

/* Start node id with its store in dir: a new directory, or (reopen) the one dir names. */
void node_start(tnode *n, const char *id, int serve, char *dir, int reopen);
void node_stop(tnode *n);
/* Start the environment (reopen: on the stores the last one left, env_restart): remote 0 tests
 * the local backend (n1), 1 the remote one (n2); io_timeout_ms bounds n1's RPC calls. env_up:
 * on new stores. */
void env_start(int remote, int io_timeout_ms, int reopen);
void env_up(int remote, int io_timeout_ms);
void env_down(void);
/* Every node restarts (a replica's restart): stopped, its store closed, reopened, served again. */
void env_restart(void);
/* Run the loop until cond(arg) is false, or the 10 s guard (a failed check). */
void loop_while(int (*cond)(void *), void *arg);
int pending(void *arg); /* calls of the environment not completed yet (E.pending) */
/* The completion of rp_replica calls: a deep copy of the result into arg (a tres). */
void done_cb(void *arg, const rp_result *r);
void tres_free(tres *t);
/* Wait for one call that returned rc; the completion must not have run inside the call. */
void wait_for(tres *t, cm_err rc);
/* Key's partition of bucket "b" (NSHARDS shards); a get or put of E.r, waited for. */
rp_part part_of(const char *key);
tres do_get(const char *bucket, const char *key);
tres do_put(const md_object *rec, const char *hint_for);
/* A record of key written at ms by node, on top of base's version vector (NULL: none). */
md_object version(const char *key, uint64_t ms, uint32_t node, const md_vv *base);

#endif
