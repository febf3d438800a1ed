/*
 * cu_nodes.h - in-process storage nodes for the unit tests above node/ (obj/, repl/, gateway/).
 *
 * A test node's RPC is an nd_service behind a net_server on a free loopback port, run by a thread
 * of its own; the test fills the nd_service_config (drives, md store, cond route) and keeps what
 * the config borrows alive until the node is stopped. cu_topo_node adds such a node to a
 * pl_topology, cu_client makes the RPC client of "this node", cu_loop_while runs a test thread's
 * loop under a guard. Every call asserts (CU_ASSERT_*_FATAL) what it sets up, as the tests did
 * inline: cu_rpc_start two asserts, cu_topo_node one plus one a drive, cu_client one,
 * cu_loop_while none (the caller asserts *hung).
 */
#ifndef CU_NODES_H
#define CU_NODES_H

#include <pthread.h>

#include "nd.h"
#include "net.h"
#include "pl.h"

typedef struct {
    nd_service *svc;
    net_server *srv; /* NULL: not started */
    pthread_t th;
    int port;
} cu_rpc;

/* Serve cfg on a free loopback port in a thread of its own. */
void cu_rpc_start(cu_rpc *r, const nd_service_config *cfg);

/* Serve drives as node id, the other settings nd.h's defaults (two sync workers, no md store). */
void cu_rpc_serve(cu_rpc *r, const char *id, const uint8_t *secret, size_t secret_len,
                  const nd_drive *drives, int ndrives);

/* Stop serving (at most wait_ms for the connections) and join the thread. */
void cu_rpc_halt(cu_rpc *r, int wait_ms);

/* Free a halted node's service, then its server (nd.h's shutdown order). */
void cu_rpc_free(cu_rpc *r);

/* Halt and free; nothing when r was never started. */
void cu_rpc_stop(cu_rpc *r, int wait_ms);

/* Add node id at 127.0.0.1:port in az with drives 0..ndrives-1 (weight 100, up); its index. */
int cu_topo_node(pl_topology *t, const char *id, int port, const char *az, int ndrives);

/* A node RPC client on base as node self, through faults, with the given net limits. */
nd_client *cu_client(struct event_base *base, const char *self, const uint8_t *secret,
                     size_t secret_len, nd_faults *faults, int io_timeout_ms, int max_conns);

/*
 * Run base's loop while cond(arg) holds and *hung is 0; a guard sets *hung once timeout_s passed
 * (a hang fails instead of blocking, and every later call returns at once).
 */
void cu_loop_while(struct event_base *base, int (*cond)(void *), void *arg, int *hung,
                   int timeout_s);

/* A cond for cu_loop_while: *(int *)arg > 0 (calls still pending). */
int cu_positive(void *arg);

#endif
