/*
 * ob_cl.h - private to the cluster mode of the object layer (ob_cluster*.c): the cluster's loop,
 * its layout views, and the helpers the writer and the reader share.
 */
#ifndef OB_CL_H
#define OB_CL_H

#include <pthread.h>
#include <stdatomic.h>

#include "ob_chunk.h"
#include "ob_int.h"

#define OB_CL_LAT 64   /* recent cell read latencies kept for the adaptive hedge delay */
#define OB_CL_LANES 16 /* callers' loops that run their reads themselves (ob_store_loop_attach) */

/* The latencies of the last OB_CL_LAT cell reads used by the reads of one loop. */
typedef struct {
    int lat[OB_CL_LAT];
    int n, pos;
} ob_cl_lat;

typedef struct ob_lane ob_lane;

/*
 * One adopted layout: the topology, its homes map and the resolver to its nodes. Shared by
 * reference: the cluster holds the current one, every body and read in flight holds the one it
 * started with, and the last reference frees it (on any thread: nothing in it needs the loop).
 */
typedef struct {
    atomic_int refs;
    pl_topology *t;
    pl_map *homes;
    ob_resolver *r;
    int k, m;              /* pl_default_profile */
    int self;              /* this node's index */
    atomic_llong *dead_to; /* per node: no new cells before this monotonic ms (a call failed) */
    /* per lane slot: the resolver through that lane's client and local backend, built by the
     * lane's thread on its first read of this view (ob_cl_lane_resolver) for the lane attached
     * with lane_gen; a later lane in the slot replaces it */
    ob_resolver *lane_r[OB_CL_LANES];
    unsigned lane_gen[OB_CL_LANES];
} ob_view;

/*
 * A caller's loop attached by ob_store_loop_attach: the reads started on base run there, with an
 * RPC client and a local chunk backend of its own (sharing the cluster's workers), instead of
 * going to the cluster's loop and back. Base's thread only, but for the lookup by base (the
 * cluster's lanes[], under its mu).
 */
struct ob_lane {
    ob_cluster *c;
    struct event_base *base;
    int slot;
    unsigned gen; /* unique per attach */
    nd_client *cl;
    ob_chunks *local;
    ob_cl_lat lat;
    int ops;     /* reads with calls or timers on base */
    int closing; /* ob_store_loop_detach: no new calls; a short stripe ends the read */
};

struct ob_cluster {
    ob_store *st;
    ob_cluster_config cfg;
    char self[PL_NAME_MAX];
    uint8_t *secret;
    struct event_base *base;
    pthread_t thread;
    int running;
    nd_client *cl;
    ob_chunks *local;
    nd_drive drives[ND_MAX_DRIVES];
    pthread_mutex_t mu;
    pthread_cond_t idle;         /* ops reached 0 */
    ob_view *view;               /* current (under mu); NULL before the first layout */
    int ops;                     /* bodies, reads and deletes with calls on the loop (under mu) */
    ob_lane *lanes[OB_CL_LANES]; /* attached loops (under mu) */
    unsigned lane_gen;           /* the last lane's gen (under mu) */
    nd_client_config ccfg;       /* how the loop's client was made, for the lanes' */
    /* counters (ob_cluster_stats) */
    atomic_ullong bodies, bytes_written, reads, reads_on_loops, cells_batched,
        cells_appended_batched, handoffs, cells_dropped, hedges, reads_degraded, deletes,
        buf_high_water, read_ahead_max, read_bytes_max;
    ob_cl_lat lat; /* loop thread only */
};

/* The current view with a reference (NULL before the first layout). */
ob_view *ob_cl_view_get(ob_cluster *c);
void ob_cl_view_put(ob_view *v); /* NULL is a no-op */
/* Count an operation that will have calls on the loop; ob_cl_op_end on the loop ends it. */
void ob_cl_op_begin(ob_cluster *c);
void ob_cl_op_end(ob_cluster *c);
/* Run fn(arg) on the loop thread soon. CM_ERR_NOMEM. */
cm_err ob_cl_post(ob_cluster *c, void (*fn)(void *arg), void *arg);
/* A call to node failed with e: when it looks like the node (not the chunk), keep new cells off
 * it for dead_ms. */
void ob_cl_node_failed(ob_cluster *c, ob_view *v, int node, cm_err e);
/* Nodes to keep new cells off now: dead[i] for each node of v (nnodes bytes). */
void ob_cl_dead_nodes(const ob_view *v, uint8_t *dead);
/* Latency of a cell read that was used (on the thread that owns l), and the hedge delay now. */
void ob_cl_note_latency(ob_cl_lat *l, int ms);
int ob_cl_hedge_ms(const ob_cluster *c, const ob_cl_lat *l);
/* The lane attached for base (NULL: reads from base go through the cluster's loop). */
ob_lane *ob_cl_lane_of(ob_cluster *c, struct event_base *base);
/* On l's thread: v's resolver through l, built on first use (NULL: out of memory). */
ob_resolver *ob_cl_lane_resolver(ob_lane *l, ob_view *v);
/* Delete chunk id on the cells[0..n) of v, in the background (loop thread). */
void ob_cl_delete_cells(ob_cluster *c, ob_view *v, const bs_id *id, const pl_cell *cells, int n);
/* Raise a max counter. */
void ob_cl_max(atomic_ullong *a, uint64_t v);

#endif
