/*
 * ob.h - the object layer below the S3 gateway: object bodies as erasure-coded stripes over
 * the drives. It knows bodies, layouts, drives and metadata records; nothing of S3 (no requests,
 * no S3 errors, no XML): every error is a cm_err. The gateway reaches the drives only through it.
 *
 * In this header, in order: the store over drive folders (open/close), bodies (a writer that
 * appends stripes and seals them, ranged reads, the asynchronous per-drive deleter) in
 * ob_data.c; read leases, so a replaced body is freed only after its last reader (ob_lease.c);
 * drive health and per-drive stats; the scrubber that verifies and repairs bodies (ob_scrub.c).
 *
 * A body of `size` bytes is cut into stripes of k cells of cell_size bytes (the last stripe uses
 * shorter cells: ceil(rest / k) rounded up to 64 bytes, zero-padded). Each stripe is encoded into
 * k data + m parity cells with ISA-L; cell i of every stripe is appended to the same blob on drive
 * layout.drives[i], so every drive holds one sequential blob per body. The blob id is the same on
 * all drives. Which drives get which cell index rotates with the blob id so parity spreads evenly.
 *
 * Memory: a writer holds one stripe (k+m cells) at a time; a read holds at most one stripe.
 * (Cluster mode, at the end of this header: a writer holds at most `window` stripes.)
 *
 * Failures: a drive that fails during a write is dropped from the layout (drives[i] = 0xFF) as
 * long as at least k+1 cells of every stripe remain durable; otherwise the write fails with
 * CM_ERR_UNAVAILABLE (or CM_ERR_NOSPC when the drives are full) and its blobs are deleted. A read
 * that finds a cell missing, unreadable or corrupt reads parity cells instead and reconstructs.
 * A drive that keeps failing (or whose directory vanishes) is marked failed for the whole store
 * until a probe write works again (ob_store_drive_state, ob_store_probe below).
 *
 * Deletes and probes run on one background thread per drive: a delete is queued (a bounded queue
 * per drive) and the caller goes on, so a slow drive delays only its own deletes. When a drive's
 * queue is full, ob_delete waits for room (the caller then proceeds at that drive's pace), and
 * ob_delete_async refuses (CM_AGAIN) so an event loop can hand the delete to a worker instead.
 *
 * Thread safety: ob_store may be shared by threads; an ob_writer belongs to one request.
 */
#ifndef OB_H
#define OB_H

#include <stddef.h>
#include <stdint.h>

#include "bs.h"
#include "cm_err.h"
#include "md.h"
#include "pl.h"

struct nd_faults;
struct event_base;
struct evbuffer;

typedef struct ob_store ob_store;
typedef struct ob_writer ob_writer;

typedef struct {
    int k, m;           /* default 4 + 2 */
    uint32_t cell_size; /* default 256 KiB */
    const bs_io *io;    /* NULL = POSIX; for fault injection in tests */
    /* Who this store is in the cluster layout: new layouts name (node, drive) per cell and the
     * epoch; cells of a layout on another node are not read, deleted or verified here (a read
     * reconstructs without them). 0 / 0 on a single node, as every record before them reads. */
    uint16_t node;
    uint64_t epoch;
    /* zstd level for transparent compression of new bodies (docs/compression.md); 0 = off.
     * Writers in cluster mode compress too (frames of the cluster layout's stripe payload). */
    int compress_level;
} ob_store_options;

/*
 * Open the drives dirs[0..ndrives) (each created if missing). A drive that cannot be opened is
 * logged and marked offline; opening fails only when fewer than k+1 drives work
 * (CM_ERR_UNAVAILABLE). ndrives >= k + m.
 */
cm_err ob_store_open(const char *const *dirs, int ndrives, const ob_store_options *opt,
                     ob_store **out);
/* Delete the lease leftovers, let every queued delete finish, close the drives (may wait). */
void ob_store_close(ob_store *st); /* NULL is a no-op */
/* Drives opened and not failed now. */
int ob_store_drives_online(const ob_store *st);

/* Start a new body. */
cm_err ob_writer_new(ob_store *st, ob_writer **out);
/* Add bytes; full stripes are encoded and appended as they complete. */
cm_err ob_writer_write(ob_writer *w, const void *data, size_t len);
/*
 * Work a writer hands to its caller's threads: a frame to compress (docs/compression.md). The
 * runner queues it and some thread calls job->run(job) once; nonzero from the runner means it
 * cannot (the writer then runs it itself). `next` is the runner's to use while it holds the job.
 */
typedef struct ob_job {
    struct ob_job *next;
    void (*run)(struct ob_job *job);
} ob_job;
typedef int (*ob_runner)(void *ctx, ob_job *job);
/*
 * A writer fed from base's loop (ob_writer_write_some / ob_writer_on_room only, then
 * ob_writer_finish on any thread) compresses its frames on run's threads instead of the loop:
 * at most a few frames per writer held at once, write_some answers CM_AGAIN when they are all
 * busy (in cluster mode also while the window of stripes in flight does not take the frame at
 * their head). Call before the first byte; a no-op for a writer that does not compress.
 */
cm_err ob_writer_offload(ob_writer *w, struct event_base *base, ob_runner run, void *ctx);
/*
 * Where w will put its body, before any byte is written: the blob id and the cells as placed
 * (drives, and nodes in cluster mode), size 0. A column handed off later (its first append
 * refused) writes elsewhere; the plan does not follow it. For a record of the body's intent
 * (md_intent: docs/multipart-cluster.md, "Reclaiming a killed UploadPart").
 */
void ob_writer_plan(const ob_writer *w, md_layout *out);
/*
 * The body's intent (md_intent (hlc, blob) in md, recorded from ob_writer_plan) is kept true: a
 * column handed off (its first append refused) waits until md_intent_move_async has put its new
 * place in the intent before sending there. Call before the first byte; md is borrowed for the
 * writer's life (until finish or abort, and the loop's last call of the body). Cluster mode
 * only (a no-op otherwise).
 */
void ob_writer_track_intent(ob_writer *w, md_store *md, uint64_t hlc);
/*
 * Flush the last stripe, fdatasync every drive written, and describe where the body lives.
 * After this the chunks are durable; the writer is freed whatever the result. Blobs that no
 * layout keeps (dropped cells, or all of them on failure) are queued for deletion (ob_delete).
 * Blocking: call it from a worker.
 */
cm_err ob_writer_finish(ob_writer *w, md_layout *out);
/* Drop a body being written: its blobs are queued for deletion (ob_delete); NULL is a no-op. */
void ob_writer_abort(ob_writer *w);
/*
 * Free a writer without touching a disk (event loops): returns 1 and describes in *out the blobs
 * it may have written, for ob_delete / ob_delete_async; 0 when there are none. NULL returns 0.
 */
int ob_writer_drop(ob_writer *w, md_layout *out);

/* Transparent compression since the store opened: bodies stored compressed (their body and
 * stored bytes) and bodies whose first frame did not compress (stored as they came). */
typedef struct {
    uint64_t bodies, logical_bytes, stored_bytes, skipped;
} ob_zstats;
void ob_store_zstats(ob_store *st, ob_zstats *out);

/*
 * Read len bytes at offset off of the body described by layout into buf, reconstructing from
 * parity where a cell is missing or corrupt (and logging it); a compressed layout's frames are
 * decoded (ob_zstd.c). CM_ERR_RANGE when off+len > MD_LAYOUT_BODY_SIZE(layout);
 * CM_ERR_UNAVAILABLE / CM_ERR_CORRUPT when fewer than k cells of a stripe can be read.
 */
cm_err ob_read(ob_store *st, const md_layout *layout, uint64_t off, void *buf, size_t len);
/*
 * ob_read for an event loop: the bytes of a single node's layout (a compressed one decoded here,
 * as ob_read does) when the page cache holds every one it must read and every data cell read is
 * healthy; CM_AGAIN otherwise (a page not cached, a cell missing, unreadable or rotten, a cluster
 * layout), with buf partly written: then read it with ob_read on a thread that may wait, which
 * rebuilds and logs. Counted in ob_store_read_counts.
 */
cm_err ob_read_cached(ob_store *st, const md_layout *layout, uint64_t off, void *buf, size_t len);
/* ob_read_cached calls so far that the page cache answered, and those that went on to a worker
 * (CM_AGAIN). */
void ob_store_read_counts(ob_store *st, uint64_t *cached, uint64_t *uncached);
/*
 * Delete the blobs of a body on every drive (not synced; deletes are idempotent): queued on each
 * drive's background thread. Waits only when a drive's queue is full, until it has room; never
 * call it on an event loop (use ob_delete_async there). Queued deletes finish before
 * ob_store_close returns.
 */
void ob_delete(ob_store *st, const md_layout *layout);
/*
 * A metadata commit meant to take over a body failed with commit_err: may the caller free the
 * body (ob_delete)? Not when the outcome is unknown (CM_ERR_UNCERTAIN: the record may be on disk
 * and name it): then this logs the blob id and returns 0, and the body stays until `cairn fsck
 * --repair` finds that no record names it.
 */
int ob_commit_failed_may_free(const md_layout *layout, cm_err commit_err);
/* The same without ever waiting: CM_AGAIN (and nothing queued) when a drive's queue is full. */
cm_err ob_delete_async(ob_store *st, const md_layout *layout);
/* Wait until every delete queued before the call has run (tests). */
void ob_store_drain(ob_store *st);

/*
 * Read leases (ob_lease.c): a body that is replaced or deleted while readers stream it is freed
 * only after its last reader. Every function takes a metadata record and looks only at its
 * parts stored as cells (inline parts and empty ones hold no blob).
 *
 * Lease every blob of obj (CM_ERR_NOMEM and nothing leased on failure); release with
 * ob_lease_release, whose last reader of a doomed blob queues its delete without waiting
 * (ob_delete_async; when a queue is full the blob stays as a leftover for the next free).
 * Both are safe on event loops.
 */
cm_err ob_lease_acquire(ob_store *st, const md_object *obj);
void ob_lease_release(ob_store *st, const md_object *obj);
/*
 * md_object_get plus a lease on the object's blobs, verified against a second read so a commit
 * in between cannot have freed them. On CM_OK the caller owns *out (md_object_release) and the
 * lease (ob_lease_release). CM_ERR_CONFLICT if the key keeps changing; md_object_get's errors.
 */
cm_err ob_object_get_leased(ob_store *st, md_store *md, const char *bucket, const char *key,
                            md_object *out);
/* The same for version vid of the key (md_version_get: the latest or an older version). */
cm_err ob_version_get_leased(ob_store *st, md_store *md, const char *bucket, const char *key,
                             const char *vid, md_object *out);
/*
 * Free the blobs of every stored part of obj (a record that no longer names them): now, or when
 * the last reader releases them. Deletes leftovers first. May wait (ob_delete): workers only.
 */
void ob_free_object_data(ob_store *st, const md_object *obj);
/* Delete the blobs whose last reader could not queue their delete (may wait: workers only). */
void ob_lease_delete_leftovers(ob_store *st);

/*
 * The record bucket/key as it is now, for ob_gc_run (a cluster: read at quorum); out is released
 * by the caller (md_object_release) whatever the result. CM_ERR_NOTFOUND: no record.
 */
typedef cm_err (*ob_gc_read_fn)(void *arg, const char *bucket, const char *key, md_object *out);

/*
 * Reclaim garbage (ob_gc.c): free the bodies of md's garbage records that became garbage more than
 * grace_ms before now_ms (at most max), then drop the records. *freed (may be NULL) gets how many.
 * An entry whose blob the local record of its key still names (a repair's obsolete cells) frees
 * only the cells neither that record nor read's (NULL: the local one alone) names; when read
 * fails, the entry is put off a minute. Blocking: call from a background thread.
 */
cm_err ob_gc_run(ob_store *st, md_store *md, int64_t now_ms, int64_t grace_ms, size_t max,
                 ob_gc_read_fn read, void *read_arg, uint64_t *freed);
/*
 * What ob_gc_run frees of entry g: *out = g's layout with 0xFF at every cell (node, drive) that
 * the local record of g's key or read's names for g's blob. 1: the blob is live (those cells
 * only), 0: a replaced body (all of it), -1: read failed (put off).
 */
int ob_gc_cells(md_store *md, const md_garbage *g, ob_gc_read_fn read, void *read_arg,
                md_layout *out);

/*
 * Drive health. A drive is OK, FULL (its last append/sync got ENOSPC: still read, still chosen),
 * FAILED (OB_FAIL_AFTER consecutive I/O errors, or its directory vanished or was swapped: not
 * chosen for writes, not read; probed periodically and brought back when a probe write works) or
 * OFFLINE (could not be opened at start).
 */
typedef enum { OB_DRIVE_OK, OB_DRIVE_FULL, OB_DRIVE_FAILED, OB_DRIVE_OFFLINE } ob_drive_state;
ob_drive_state ob_store_drive_state(const ob_store *st, int d);
const char *ob_drive_state_name(ob_drive_state s); /* "ok", "full", "failed", "offline" */
/*
 * Check every drive now: a healthy drive whose directory vanished is marked failed; a failed one
 * gets a 4 KiB append + sync + delete and is back online when that works. Each drive's
 * background thread runs its own check every 30 s; callable directly (tests; blocking). Returns
 * the drives failed after it.
 */
int ob_store_probe(ob_store *st);

/* Bytes of one stripe's data (k * cell_size): the natural read size for streaming GETs. */
size_t ob_store_stripe_bytes(const ob_store *st);

/* Number of drive slots of the store (online or not). */
int ob_store_ndrives(const ob_store *st);

/*
 * The blobstore of drive slot d as opened at start, failed or not (NULL when d is out of range or
 * the drive is offline), and its directory (NULL when out of range). Borrowed until
 * ob_store_close. For the node RPC of a cluster node (cmd/server_rpc.c), which serves these same
 * drives to other nodes: the stores are thread-safe, so both layers share them.
 */
bs_store *ob_store_blobstore(ob_store *st, int d);
const char *ob_store_drive_dir(const ob_store *st, int d);

/* One drive's health and space, for the admin API and metrics. */
typedef struct {
    ob_drive_state state;
    int usable;                 /* opened and not failed: read and written (the counters below) */
    uint64_t blobs;             /* live blobs */
    uint64_t live_bytes;        /* payload bytes of live blobs */
    uint64_t disk_bytes;        /* size of its segment files */
    uint64_t used_bytes;        /* disk space they occupy (punched holes excluded) */
    uint64_t reclaimable_bytes; /* of used_bytes, what holds no live data */
    uint64_t punched_bytes;     /* given back by punching holes since open */
    uint64_t corrupt_found;     /* records or blocks that failed a checksum since open */
    uint32_t segments;
} ob_drive_stats;
/*
 * Fill *out for drive slot d: its state always (OFFLINE when d is out of range); the counters
 * only when the drive is usable (zero otherwise). Cheap and safe from event loops.
 */
void ob_store_drive_stats(ob_store *st, int d, ob_drive_stats *out);

/*
 * Verify and repair one body (ob_repair.c): the scrubber's per-body work. Blocking (workers).
 *
 * pace(arg, n) runs before each read of n bytes; it may sleep (a rate limit) and returns nonzero
 * to stop the work. verified(arg, n) reports n cell bytes read and verified. Either may be NULL,
 * and so may the pacer.
 */
typedef struct {
    int (*pace)(void *arg, uint64_t n);
    void (*verified)(void *arg, uint64_t n);
    void *arg;
} ob_pacer;
/*
 * Read every cell of the body at lay that this node holds, in pieces of at most cap bytes through
 * buf (the caller's), checking every block checksum and each blob's length. Returns the number of
 * bad cells (0 = healthy; a missing or unreadable cell counts only when all drives are online,
 * since only then could a rewrite place it), or -1 when pace stopped it. *why receives the first
 * failure (CM_ERR_NOTFOUND, CM_ERR_CORRUPT, CM_ERR_IO, ...).
 */
int ob_body_verify(ob_store *st, const md_layout *lay, uint8_t *buf, size_t cap, const ob_pacer *p,
                   cm_err *why);
/*
 * Rebuild part `part` of obj (bucket/key in md) from its readable cells into a new body (new
 * blob id, durable), check it against the part's ETag when that is a plain MD5, and swap it into
 * the record only if the record still names the old blob; then free the old blobs through the
 * lease rules (the caller should hold a lease on obj, as ob_object_get_leased gives). *fresh
 * receives the new layout. CM_ERR_CONFLICT: the record changed meanwhile (the new body is freed);
 * CM_ERR_DIGEST: parity rebuilt other bytes than were stored (nothing changed); CM_ERR_CLOSED:
 * pace stopped it; read, write and metadata errors otherwise. Nothing is left behind on failure.
 */
cm_err ob_body_repair(ob_store *st, md_store *md, const char *bucket, const md_object *obj,
                      size_t part, const ob_pacer *p, md_layout *fresh);

/* ---- For the scrubber (ob_scrub.c) ---- */

/*
 * Length every cell blob of the body must have: the cells of all its stripes back to back (full
 * stripes of cell_size, the last one of its shorter padded length). 0 for an empty body.
 */
uint64_t ob_layout_cell_blob_len(const md_layout *lay);

/*
 * The scrubber (ob_scrub.c): re-read every stored body, verify every block
 * checksum of every cell, and rebuild damaged bodies from parity (docs/scrub.md).
 *
 * A pass walks every bucket's current object records. For each part stored as erasure-coded
 * cells it reads every cell blob in full on its drive (so every 64 KiB block CRC is checked); a
 * missing blob, a blob of the wrong length or a checksum failure marks the body damaged. A damaged
 * body is read whole through ob_read (which reconstructs from parity), written anew under a new
 * blob id, swapped into the record with md_object_replace_layout (only if the record still points
 * at the old blob), and the old blobs are freed through the read-lease rules so GETs in flight
 * keep working. Inline bodies live in the metadata record, with a CRC32C: they are checked, and
 * a mismatch is counted and logged, but cannot be repaired (one copy). Parts of multipart
 * uploads that are not completed yet are skipped.
 *
 * Reads are rate-limited by a token bucket (MB/s); the scrub thread sleeps, never an event loop.
 *
 * Threading: one background thread per scrubber (ob_scrub_start). ob_scrub_trigger and
 * ob_scrub_get_status are cheap and safe from event-loop threads. ob_scrub_run_once runs a pass in
 * the caller's thread (tests, tools); at most one pass runs at a time.
 */
typedef struct ob_scrub ob_scrub;

typedef struct {
    double rate_mb;          /* MB/s (10^6 bytes) of cell reads; 0 = unlimited; default 50 */
    int64_t interval_s;      /* seconds from the end of a pass to the next automatic one;
                                0 = passes only on demand; default 86400 */
    const char *state_path;  /* file that remembers when the last pass ended; NULL = none */
    size_t inline_threshold; /* bodies up to this size are inline (for the estimate); 64 KiB */
} ob_scrub_config;

void ob_scrub_config_defaults(ob_scrub_config *cfg);

typedef struct {
    int running;     /* a pass is running or has been requested */
    uint64_t passes; /* passes finished since the scrubber started */
    /* Totals over every pass since start. */
    uint64_t objects_checked, bodies_checked, bytes_verified;
    uint64_t damaged_found, repaired, repair_failed, changed_meanwhile;
    /* Inline bodies (in the metadata record) checked, and those whose CRC32C did not match:
     * counted and logged, never repaired (there is no second copy). */
    uint64_t inline_checked, inline_corrupt;
    int64_t last_start_ms, last_end_ms; /* wall clock of the current/last pass; 0 = never */
    int64_t next_due_ms;                /* next automatic pass; 0 = none scheduled */
    double rate_mb;
    /* The current pass (or the last one when idle), with the estimate taken at its start. */
    uint64_t pass_objects, pass_bytes, pass_damaged, pass_repaired, pass_failed;
    uint64_t pass_inline_corrupt;
    /* Compressed bodies the pass met, their body bytes and stored-stream bytes (the store's
     * compression saving as of the last complete pass; docs/compression.md). */
    uint64_t pass_z_bodies, pass_z_logical, pass_z_stored;
    uint64_t est_objects, est_bytes;
} ob_scrub_status;

/*
 * Create a scrubber over the bodies of st named by the records of md (both borrowed: they must
 * outlive it). The gateway attaches it for its admin API (gw_scrub_new).
 */
cm_err ob_scrub_new(ob_store *st, md_store *md, const ob_scrub_config *cfg, ob_scrub **out);
/* Start the background thread (automatic passes, and passes asked for by ob_scrub_trigger). */
cm_err ob_scrub_start(ob_scrub *s);
/* Stop the thread (interrupting a pass between reads) and free. NULL is a no-op. */
void ob_scrub_free(ob_scrub *s);
/*
 * Ask the background thread for a pass now. *seq receives the number the pass will have
 * (status.passes reaches it when the pass ends). CM_ERR_CONFLICT when a pass runs or is already
 * requested; CM_ERR_UNAVAILABLE when the thread is not started.
 */
cm_err ob_scrub_trigger(ob_scrub *s, uint64_t *seq);
/* Run one whole pass in the calling thread. CM_ERR_CONFLICT when another pass runs. */
cm_err ob_scrub_run_once(ob_scrub *s);
void ob_scrub_get_status(ob_scrub *s, ob_scrub_status *out);

/*
 * Cluster mode (ob_cluster.c, docs/chunks.md "The S3 data path across nodes"). A store started
 * in cluster mode writes new bodies across the nodes of the adopted layout and reads, deletes
 * and frees layouts with epoch != 0 through the chunk interface; the calls above keep their
 * signatures and contracts, so the gateway does not change. Layouts with epoch 0 (written by a
 * single node) keep the local path.
 *
 * The store runs one event-loop thread of its own: an RPC client to the other nodes, the local
 * chunk backend over this store's drives (drive slot d is the drive whose id is d in the
 * layout), and the resolver of the current layout. Workers hand it stripes and read requests
 * and wait; ob_delete and ob_delete_async only queue (never wait) for cluster layouts.
 *
 * New bodies: a new blob id, pl_place on the layout's homes with pl_default_profile's k+m
 * (cell_size of the store), pl_handoff for homes on nodes that failed in the last few seconds;
 * layout.nodes[i] / drives[i] are indices into the topology (node, drive of that node) and
 * layout.epoch its epoch. A cell whose first append fails moves to a handoff drive for the whole
 * body; one that fails later, or has not answered for write_wait_ms, is dropped (drives[i] =
 * 0xFF). Acknowledged when every live cell is durable and at least k+1 are. Memory: at most
 * `window` stripe buffers per writer (plus one per cell dropped while its append was in flight).
 *
 * Reads: k whole cells per stripe, data cells first; a failed cell is replaced by the next one;
 * a stripe that has not got k cells after the hedge delay asks one more cell (a "hedge").
 */
typedef struct {
    const char *self;      /* this node's id in the layout (copied) */
    const uint8_t *secret; /* the cluster's RPC secret (copied) */
    size_t secret_len;
    struct net_tls *rpc_tls; /* the node RPC's TLS (borrowed, outlives the cluster); NULL = plain */
    struct nd_faults *faults; /* tests: the RPC fault layer (borrowed); NULL = none */
    int window;               /* stripe buffers per writer, 2..16; 0 = 4 */
    int hedge_ms;             /* fixed hedge delay; 0 = adaptive: max(hedge_min_ms, recent p98) */
    int hedge_min_ms;         /* 0 = 20 */
    int io_timeout_ms;        /* per RPC; 0 = 10000 */
    int write_wait_ms;        /* a body waits this long for a cell's append before dropping the cell
                                 (k+1 kept): a silent node's delay; 0 = 2000 */
    int dead_ms;       /* a node that failed a call gets no new cells for this long; 0 = 5000 */
    int local_threads; /* workers of the local chunk backend; 0 = 4 */
} ob_cluster_config;

/*
 * Put st in cluster mode: start its loop thread. Until the first ob_store_set_topology, new
 * writers fail with CM_ERR_UNAVAILABLE. The process must have called evthread_use_pthreads.
 * CM_ERR_INVAL (bad config, or called twice), CM_ERR_NOMEM. Stopped by ob_store_close, which
 * first waits for the loop's calls in flight.
 */
cm_err ob_store_cluster_start(ob_store *st, const ob_cluster_config *cfg);
/*
 * Adopt a layout (copied): new bodies are placed on it; reads and deletes resolve nodes by it.
 * Thread-safe; bodies and reads in flight keep the layout they started with until they end.
 * CM_ERR_INVAL when st is not in cluster mode, the layout does not name self or names a host
 * that is not a numeric address; CM_ERR_NOMEM.
 */
cm_err ob_store_set_topology(ob_store *st, const pl_topology *t);

typedef struct {
    uint64_t epoch; /* of the layout in use; 0 = none yet */
    int k, m;       /* its profile */
    uint64_t bodies, bytes_written, reads;
    uint64_t reads_on_loops;         /* of reads: run on the caller's loop (ob_store_loop_attach) */
    uint64_t cells_batched;          /* cells read with others of their node in one call */
    uint64_t cells_appended_batched; /* cells appended with others of their node in one call */
    uint64_t handoffs;       /* cells moved to a handoff drive (at start or after a refusal) */
    uint64_t cells_dropped;  /* cells dropped from a body after they had data */
    uint64_t hedges;         /* extra cells asked because one was slow */
    uint64_t reads_degraded; /* stripes rebuilt from parity */
    uint64_t remote_deletes; /* chunk deletes sent (local and remote) */
    uint64_t buf_high_water; /* largest stripe-buffer bytes one writer held */
    uint64_t read_ahead_max; /* most stripes one read had in flight at once */
    uint64_t read_bytes_max; /* most cell bytes one read held at once */
} ob_cluster_stats;

/*
 * For event loops, which must not wait on other nodes (the gateway's PUT body and GET drain run
 * on its loops). In cluster mode ob_writer_write waits for window room and ob_read for the cells:
 * these variants do not. On a single node they do the local (page-cache) work at once, as
 * ob_writer_write and ob_read do today.
 *
 * ob_writer_write_some: take what fits now; *taken = bytes taken. CM_AGAIN when the window is
 * full before len was taken: call ob_writer_on_room and write the rest when it runs.
 * ob_writer_on_room: run fn(arg) on base's loop (never inside the call) once the writer has room
 * again or has failed (the next write says which). Call it, ob_writer_drop and ob_writer_abort
 * from base's thread: they cancel a notice not run yet (one notice at a time; a new one replaces
 * it). Do not call ob_writer_finish with one pending. The notice is an event of the writer's on
 * base, so every call names the same base (CM_ERR_INVAL otherwise), and the writer is dropped,
 * aborted or finished before base is freed; a notice the loop never ran leaves nothing behind.
 * A single-node writer answers CM_AGAIN only when it offloads compression (ob_writer_offload)
 * and its frames are all busy; otherwise its notice runs on the loop's next turn.
 */
cm_err ob_writer_write_some(ob_writer *w, const void *data, size_t len, size_t *taken);
cm_err ob_writer_on_room(ob_writer *w, struct event_base *base, void (*fn)(void *arg), void *arg);

/*
 * ob_read without waiting: done(arg, err) runs on base's loop, never inside the call, with
 * ob_read's result; buf is written only before it. *op is a handle for ob_read_cancel, valid
 * until done runs or the cancel returns. Errors returned at once (nothing runs): CM_ERR_RANGE,
 * CM_ERR_INVAL, CM_ERR_NOMEM, CM_ERR_UNAVAILABLE (no layout adopted). Before base is freed, done
 * has run or the read was cancelled: a cancelled read leaves nothing on base (its end is an event
 * freed by the cancel) and never touches base again, even while its cells are still coming.
 */
typedef struct ob_read_op ob_read_op;
typedef void (*ob_read_done)(void *arg, cm_err err);
cm_err ob_read_start(ob_store *st, const md_layout *layout, uint64_t off, void *buf, size_t len,
                     struct event_base *base, ob_read_done done, void *arg, ob_read_op **op);
/*
 * ob_read_start whose bytes are added to dst (on base's thread, just before done runs with
 * CM_OK; dst is not touched otherwise). A plain cluster layout's cells arrive in buffers of
 * their own, and their wanted bytes go to dst by reference to them (the cells' buffers then
 * belong to dst, from cm_bufpool's shared pool): the bytes are not copied between the socket
 * they came from and the one dst is written to. Other layouts are read into a buffer of this
 * thread's pool (cm_bufpool_take) added by reference. ob_read_cancel cancels it as well.
 */
cm_err ob_read_start_evb(ob_store *st, const md_layout *layout, uint64_t off, size_t len,
                         struct evbuffer *dst, struct event_base *base, ob_read_done done,
                         void *arg, ob_read_op **op);
/* From base's thread, before done ran: afterwards buf (dst) is not written, done does not run,
 * and op is freed. */
void ob_read_cancel(ob_read_op *op);

/*
 * Cluster mode: reads started on base (ob_read_start, ob_read_start_evb) run on base's loop
 * itself, through an RPC client and a chunk backend over this node's drives of its own there
 * (the backend shares the cluster's workers), rather than being handed to the cluster's loop and
 * their bytes handed back: no wake-up of another thread per read, and the reads of several
 * loops spread over their threads. Called from base's thread (a server loop's on_loop_start).
 * CM_OK and nothing done when st is not in cluster mode (reads go on as ever); CM_ERR_EXISTS
 * (base is attached), CM_ERR_NOSPC (16 loops are), CM_ERR_NOMEM: reads from base then go
 * through the cluster's loop.
 *
 * ob_store_loop_detach, before base is freed, from base's thread or with base's loop not
 * running (a server loop's on_loop_end), once every read started on base is done or cancelled:
 * their calls still on the way end here (the remote ones at once; the local ones as base's loop
 * runs them, from this call); then nothing of st is left on base. ob_store_close detaches the
 * loops still attached (their bases must still exist then). No-op for a base not attached.
 */
cm_err ob_store_loop_attach(ob_store *st, struct event_base *base);
void ob_store_loop_detach(ob_store *st, struct event_base *base);

/* Counters of the cluster mode (zeros when st is not in cluster mode). Any thread. */
void ob_store_cluster_stats(ob_store *st, ob_cluster_stats *out);

#endif
