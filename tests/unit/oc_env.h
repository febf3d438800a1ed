/*
 * oc_env.h - the fixture of the cluster store tests (test_obj_cluster.c: the cluster mode of
 * ob_store; test_obj_cluster_compress.c: compressed bodies on cluster nodes).
 *
 * Six nodes run in this process, two per AZ (az1: n1 n2, az2: n3 n4, az3: n5 n6), four drives
 * each (24 drives: the default profile is 8+4; four, not three, so that a node's two cells of a
 * body can be handed off inside its AZ). Each node is an ob_store over its drives in cluster mode
 * (its own loop thread and RPC client) and an nd_service over the same drives on a net_server
 * thread, the shape `cairn server` will have. One fault layer is shared by every node's client: a
 * rule "n2>n4:delay=..." slows n2's calls to n4 only. Bodies are written through one node's store
 * and read back through another's, blocking or without waiting on the test's loop (tbase). One
 * cluster at a time (N); each test brings it up and down.
 */
#ifndef OC_ENV_H
#define OC_ENV_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "cm_err.h"
#include "cu_nodes.h"
#include "nd.h"
#include "ob.h"

#define NNODES 6
#define NDRIVES 4
#define CELL (256u * 1024)
#define K 8
#define M 4
#define SBYTES ((size_t)K * CELL) /* payload of a full stripe */
#define WINDOW 4

typedef struct {
    char id[16];
    char dirs[NDRIVES][300];
    ob_store *st;
    cu_rpc rpc;
} tnode;

/* The nodes (N[i] is n<i+1>), the fault layer every node's client goes through, and the layout
 * (epoch 3) every store was handed. */
extern tnode N[NNODES];
extern nd_faults *faults;
extern pl_topology *topo;

/* Settings of the next cluster_up. */
extern int zlevel;        /* compress_level of every node's store (0: off) */
extern int write_wait_ms; /* 0: the default */
extern int window;        /* stripes in flight per body; 0: WINDOW */

/* Six nodes up, in cluster mode on the same layout (epoch 3). */
void cluster_up(void);
/* Every node's RPC service stopped (those a test has not stopped already), then every store
 * closed. */
void cluster_down(void);

/* n pseudo-random bytes (xorshift) from seed. */
void fill(uint8_t *p, size_t n, uint64_t seed);
/* Text-like bytes (words, some followed by a random digit) that zstd shrinks under half. */
void fill_text(uint8_t *p, size_t n, uint64_t seed);
/* Write body through node w's store in pieces of `piece` bytes (as the gateway does). */
cm_err put(int w, const uint8_t *body, size_t len, size_t piece, md_layout *lay);
/* Read [off, off+len) through node r's store and compare. */
int read_matches(int r, const md_layout *lay, const uint8_t *body, uint64_t off, size_t len);
/* The layout's live cells (not dropped). */
int live_cells(const md_layout *lay);

/* ---- the calls for event loops: write_some + on_room, read_start + cancel ---- */

/* The test's loop: made and freed by each test that waits on one. */
extern struct event_base *tbase;
/* room_cb's and read_cb's calls so far; the err of read_cb's last one. */
extern int room_calls, read_calls;
extern cm_err read_err;

/* A room notice: room_calls up by one. */
void room_cb(void *arg);
/* A read's end: read_calls up by one, its err into read_err. */
void read_cb(void *arg, cm_err err);
/* Run the test's loop until *counter reaches want or ms passed (no sleeping). */
void run_until(const int *counter, int want, int ms);
/* Write len bytes of body through w without ever waiting; returns how often the window was full. */
int write_nonblocking(ob_writer *w, const uint8_t *body, size_t len);

/* lay's first len bytes read through node r into back stripe by stripe with ob_read_start on the
 * test's loop: each call returns before its end, which comes once, CM_OK. */
void read_stripes_async(int r, const md_layout *lay, uint8_t *back, size_t len);
/* A read of lay's first stripe through n5 into back, cancelled while n5's calls are held back
 * delay_ms: no callback comes and back stays untouched (ASan: nothing leaks). Faults cleared. */
void read_cancelled_untouched(const md_layout *lay, uint8_t *back, int delay_ms);

/* An evbuffer read of [off, off+len) of lay through node r, waited for on the test's loop; *nchains
 * (before the bytes are compared: the compare pulls them up) the chains the bytes came in. 1 when
 * the read ended CM_OK with exactly body's bytes; dst is empty until done ran. */
int evb_matches(int r, const md_layout *lay, const uint8_t *body, uint64_t off, size_t len,
                int *nchains);

#endif
