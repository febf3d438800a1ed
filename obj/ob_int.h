/*
 * ob_int.h - private to the object layer (and its tests): the parts of one file that another
 * file of obj/ uses. Nothing above obj/ includes it.
 */
#ifndef OB_INT_H
#define OB_INT_H

#include "ob.h"

struct event;

#define OB_DELETE_QUEUE 4096 /* queued deletes per drive (16 bytes each; ob_data.c) */

typedef struct ob_leases ob_leases;

/* ---- ob_lease.c ---- */

cm_err ob_leases_new(ob_leases **out);
void ob_leases_free(ob_leases *l); /* NULL is a no-op */

/* ---- ob_data.c ---- */

/* The store's lease table (created by ob_store_open). */
ob_leases *ob_store_leases(ob_store *st);
/* The blobstore of drive d (borrowed), or NULL when d is out of range, offline or failed. */
bs_store *ob_store_drive(ob_store *st, uint8_t d);
/* The blobstore holding cell i of lay: ob_store_drive of its drive when the cell is on this
 * store's node, NULL otherwise. */
bs_store *ob_cell_drive(const ob_store *st, const md_layout *lay, int i);
/* Is cell i of lay on this store's node (whatever its drive's state)? In cluster mode, for a
 * layout with epoch != 0: on this node in the current layout, with a drive named. */
int ob_cell_is_local(const ob_store *st, const md_layout *lay, int i);
/* The store's node in the cluster layout (ob_store_options.node). */
uint16_t ob_store_node(const ob_store *st);
/* Cells of every stripe that must be durable before a body is acknowledged: k+1 (k when m = 0),
 * so one more loss still leaves k. */
int ob_min_cells(int k, int m);
/* Cell length of a last stripe holding rest (< k * cell_size) bytes: ceil(rest / k), rounded up
 * to 64 bytes. */
uint32_t ob_last_cell_len(uint64_t rest, int k);
/* The store's erasure profile: k data + m parity cells per stripe. */
void ob_store_geometry(const ob_store *st, int *k, int *m);

/* ---- cluster mode (ob_cluster.c, ob_cluster_write.c, ob_cluster_read.c) ---- */

typedef struct ob_cluster ob_cluster;
typedef struct ob_cw ob_cw;

/* The store's cluster (NULL on a single node). */
ob_cluster *ob_store_cluster(ob_store *st);
/* Set by ob_store_cluster_start. */
void ob_store_set_cluster(ob_store *st, ob_cluster *c);
/* The store's cell size (cluster bodies use it too). */
uint32_t ob_store_cell_size(const ob_store *st);
cm_err ob_cluster_new(ob_store *st, const ob_cluster_config *cfg, ob_cluster **out);
/* Wait for every call in flight on the loop, stop it, free. NULL is a no-op. */
void ob_cluster_free(ob_cluster *c);
/* A body written across the nodes (the cluster side of ob_writer). */
cm_err ob_cw_new(ob_cluster *c, ob_cw **out);
cm_err ob_cw_write(ob_cw *w, const void *data, size_t len);
cm_err ob_cw_finish(ob_cw *w, md_layout *out);   /* frees w */
void ob_cw_plan(const ob_cw *w, md_layout *out); /* ob_writer_plan: before the first write */
void ob_cw_track_intent(ob_cw *w, md_store *md, uint64_t hlc); /* ob_writer_track_intent */
/* ob_writer_write_some of a cluster writer (ob.h). */
cm_err ob_cw_write_some(ob_cw *w, const void *data, size_t len, size_t *taken);
/* Activate ev once the window has room (at once when it has; from any thread, under w's lock),
 * for an owner whose loop event feeds w (the writer's room notice, an offloading compressor):
 * one at a time, a new one replaces it; NULL, and ob_cw_drop, disarm it: after either returns ev
 * is never touched. */
void ob_cw_room_event(ob_cw *w, struct event *ev);
/* Abandon w without waiting: its loop side deletes what it wrote once its calls end. */
void ob_cw_drop(ob_cw *w);
/* The payload of one of w's full stripes (its layout's k x cell size): its compression frame. */
size_t ob_cw_stripe_bytes(const ob_cw *w);
/* ob_read / ob_delete of a layout with epoch != 0. */
cm_err ob_cluster_read(ob_cluster *c, const md_layout *lay, uint64_t off, void *buf, size_t len);
cm_err ob_cluster_delete(ob_cluster *c, const md_layout *lay);
/* The local drive slot holding cell i of a cluster layout (by the current layout), or -1 when the
 * cell is on another node or names no drive. */
int ob_cluster_local_drive(ob_cluster *c, const md_layout *lay, int i);

/* ---- Transparent compression (ob_zstd.c, docs/compression.md) ---- */

#define OB_Z_FRAME_MAX (16u << 20) /* largest frame written or read */

typedef struct ob_zw ob_zw;
/* Where a compressing writer sends its stored stream (the erasure writer). */
typedef cm_err (*ob_zsink)(void *arg, const void *data, size_t len);
/* A sink on an event loop, which may take part (*taken) and answer CM_AGAIN (a cluster writer's
 * full window). */
typedef cm_err (*ob_zsink_some)(void *arg, const void *data, size_t len, size_t *taken);
/* Bytes [off, off+len) of a stored stream (a plain ob_read of the layout's cells). */
typedef cm_err (*ob_zsrc)(void *arg, uint64_t off, void *buf, size_t len);

/* The adaptive test: does a frame of raw bytes that packed into `packed` (0 = did not shrink)
 * save enough (1/8) to store the body compressed? */
int ob_z_worth(size_t raw, size_t packed);
/* Decode one stored zstd frame of n bytes into dst, which holds exactly expect bytes (the frame's
 * body length): CM_ERR_CORRUPT unless it decodes, checksum included, to exactly expect bytes. */
cm_err ob_z_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t expect);
/* A compressing writer at zstd `level` with frames of `frame` bytes (1..OB_Z_FRAME_MAX). */
cm_err ob_zw_new(int level, uint32_t frame, ob_zw **out);
void ob_zw_free(ob_zw *z); /* NULL is a no-op */
/* Take body bytes; whole frames go to the sink as they complete (compressed here, in order).
 * CM_ERR_INVAL on a writer that offloads. */
cm_err ob_zw_write(ob_zw *z, const void *data, size_t len, ob_zsink sink, void *arg);
/*
 * Compress on other threads: full frames go to run(ctx, job) (a worker pool), at most
 * OB_Z_SLOTS frames held (in flight, waiting, being filled), and come back to the sink in order
 * on base's loop, which owns z from now on. Call before the first byte.
 * ob_zw_write_some takes what fits (*taken), CM_AGAIN when every slot holds a frame;
 * ob_zw_on_room then runs fn(arg) on the loop (never inside the call) once a slot is free or
 * the sink failed. ob_zw_finish may run on another thread (a worker sealing the body) while
 * the loop is idle for this writer: it waits for the frames in flight. ob_zw_free cancels a
 * notice; frames still compressing free z when they end.
 */
cm_err ob_zw_offload(ob_zw *z, struct event_base *base, ob_runner run, void *ctx, ob_zsink sink,
                     void *arg);
cm_err ob_zw_write_some(ob_zw *z, const void *data, size_t len, size_t *taken);
int ob_zw_offloads(const ob_zw *z); /* ob_zw_offload succeeded on z */
cm_err ob_zw_on_room(ob_zw *z, void (*fn)(void *arg), void *arg);
/*
 * For an owner on an event loop whose sink may not take a whole frame (a cluster writer's full
 * window): from now on z's steps on that loop (ob_zw_write_some, and the event of an offloading
 * z) send through sink, which may take part; the rest of that frame stays in z (frames leave in
 * order) and is offered again at the next step, and ob_zw_write_some answers CM_AGAIN once z has
 * no room left. An offloading owner has ob_zw_event(z) activated when the sink has room again
 * (any thread); without offloading, the next write_some is the next step. ob_zw_write and
 * ob_zw_finish (a thread that may wait) go on through their own sink, which takes all.
 */
void ob_zw_sink_some(ob_zw *z, ob_zsink_some sink, void *arg);
/* The loop's event of an offloading z (NULL otherwise); it lives until ob_zw_free. */
struct event *ob_zw_event(const ob_zw *z);
/* The first frame was not worth compressing and everything written so far went to the sink as
 * it is: the caller may free z and write to its sink directly. */
int ob_zw_raw(const ob_zw *z);
/* Send the last frame and the table; set lay's compression fields (zalg MD_Z_NONE when the body
 * went uncompressed). */
cm_err ob_zw_finish(ob_zw *z, ob_zsink sink, void *arg, md_layout *lay);
void ob_zw_counts(const ob_zw *z, uint64_t *logical, uint64_t *stored);
/* The compression fields of lay agree with its stream length (CM_ERR_CORRUPT otherwise). */
cm_err ob_z_check(const md_layout *lay);
/* Body bytes [off, off+len) of a compressed layout, reading its stream through src. */
cm_err ob_z_read(const md_layout *lay, uint64_t off, void *buf, size_t len, ob_zsrc src, void *arg);

#endif
