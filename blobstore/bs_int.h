/*
 * bs_int.h - private layout of the blob store: on-disk format constants, the index, the store.
 *
 * On-disk format (all integers big-endian; docs/storage.md is the full description):
 *
 *   segment header, 32 bytes at offset 0 of seg-%08u.cbs (version 2; version 1 still read):
 *     0 magic "CBSG"  4 version u32 (2)  8 segment number u32  12 salt u64
 *     20 synced-up-to mark u32 (file offset / 8)  24 CRC32C of bytes 8..24 (the mark's own)
 *     28 CRC32C of bytes 0..20
 *     (version 1: 12 reserved, 16 zero bytes; 28 CRC32C of bytes 0..28; salt 0, no mark)
 *   record, starting 8-byte aligned, 48-byte header:
 *     0 magic "CBRC"  4 type u8 (1 PUT, 2 DELETE)  5 reserved (3 zero bytes)  8 blob id (16)
 *     24 blob offset u64  32 data length u32  36 block count u32  40 reserved u32 (0)
 *     44 CRC32C of the segment's salt (8 bytes, big-endian; left out when 0) then bytes 0..44
 *   PUT body: block count CRC32C values (u32 each, block i covers data [i*64 KiB, (i+1)*64 KiB)),
 *   then the data, then zero padding to the next multiple of 8. DELETE has no body.
 *
 * Locking (see bs_store.c): compact_mu -> sync_mu -> append_mu -> idx_lock -> gc_mu, in that order;
 * dir_mu is a leaf.
 */
#ifndef BS_INT_H
#define BS_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bs.h"
#include "cm_err.h"

#define BS_SEG_MAGIC 0x43425347u /* "CBSG" */
#define BS_SEG_VERSION 2u        /* written; version 1 (no salt, no mark) is still read */
#define BS_SEG_HDR 32u
#define BS_REC_MAGIC 0x43425243u /* "CBRC" */
#define BS_REC_HDR 48u
#define BS_BLOCK 65536u
#define BS_ALIGN 8u
#define BS_REC_PUT 1
#define BS_REC_DELETE 2
#define BS_REC_MAX_DATA (64u << 20) /* one record carries at most 64 MiB (1024 blocks) */
#define BS_DEFAULT_SEGMENT_MAX (256ull << 20)
#define BS_DEFAULT_COMPACT_PCT 50
#define BS_DEFAULT_COMPACT_RATE (32ll << 20) /* bytes/s copied by the background compactor */
#define BS_DEFAULT_PUNCH_WAIT_MS 15000       /* see bs_options.punch_wait_ms and bs_punch.c */
#define BS_LOCK_FILE "LOCK"
#define BS_RESERVE_FILE "RESERVE"
#define BS_RESERVE_BYTES (64u << 10) /* room for 1365 tombstones on a full disk */

/* ---- format (bs_format.c): pure functions, no I/O ---- */

typedef struct {
    uint8_t type;
    bs_id id;
    uint64_t off;     /* blob offset of the first data byte */
    uint32_t len;     /* data bytes (0 for DELETE) */
    uint32_t nblocks; /* ceil(len / BS_BLOCK) */
} bs_rec_hdr;

uint32_t bs_crc32c(const void *data, size_t len);
/* The running form: start from BS_CRC_INIT, feed pieces, finish with bs_crc32c_end. */
#define BS_CRC_INIT 0xFFFFFFFFu
uint32_t bs_crc32c_more(uint32_t crc, const void *data, size_t len);
static inline uint32_t bs_crc32c_end(uint32_t crc)
{
    return crc ^ 0xFFFFFFFFu;
}
typedef struct {
    uint32_t version, segno;
    uint64_t salt;   /* 0 in version 1 */
    uint64_t synced; /* synced-up-to mark: every byte before it was once fdatasynced; 0 = none */
} bs_seg_info;

/* A version 2 header with its mark. */
void bs_seg_hdr_encode(uint32_t segno, uint64_t salt, uint64_t synced, uint8_t out[BS_SEG_HDR]);
/* Rewrite bytes 20..28 of an encoded version 2 header (segno and salt in place) with a mark. */
void bs_seg_mark_encode(uint64_t synced, uint8_t hdr[BS_SEG_HDR]);
/* CM_ERR_CORRUPT on a bad magic, version or CRC; a mark whose own CRC fails reads as 0. */
cm_err bs_seg_hdr_decode(const uint8_t in[BS_SEG_HDR], bs_seg_info *out);
/* The salt a header that fails to validate most likely holds (its salt field if it says v2). */
uint64_t bs_seg_salt_guess(const uint8_t in[BS_SEG_HDR]);
void bs_rec_encode(const bs_rec_hdr *h, uint64_t salt, uint8_t out[BS_REC_HDR]);
/* CM_ERR_CORRUPT unless magic, salted CRC, type, reserved bytes and block count all agree. */
cm_err bs_rec_decode(const uint8_t in[BS_REC_HDR], uint64_t salt, bs_rec_hdr *h);
uint32_t bs_blocks_for(uint32_t len);
/* Bytes the whole record occupies on disk, padding included. */
uint64_t bs_rec_size(uint32_t len);
/* The largest data length whose record fits in `space` bytes (0 if none). */
uint64_t bs_data_fit(uint64_t space);

/* ---- index (bs_index.c) ---- */

typedef struct bs_seg {
    uint32_t num;
    int fd;
    uint64_t size;      /* bytes written (next record goes here); append_mu */
    uint64_t live_exts; /* extents of live blobs in this segment; idx_lock */
    uint64_t live_bytes;
    uint64_t tombs; /* DELETE records in this segment; append_mu */
    /* Segments that held records of the blobs this one's tombstones delete: while any of them
     * exists the tombstones must stay (append_mu). Sorted, no duplicates. */
    uint32_t *refs;
    uint32_t nrefs, caprefs;
    int dirty;        /* written since the last bs_sync; append_mu */
    int busy;         /* being compacted: reclaim leaves it to the compactor; append_mu */
    int stuck;        /* compaction could not empty it (unreadable record): not retried */
    uint32_t version; /* of its header: 1 (no salt, no mark) or 2 */
    uint64_t salt;    /* record-header CRC salt of this segment */
    uint64_t synced;  /* synced-up-to mark last written to its header; sync_mu */
    int sealed;       /* takes no more appends (corruption before its mark); append_mu */
    /* Bytes of holes punched into its dead records (bs_punch.c); append_mu. */
    uint64_t punched;
    uint64_t wb_from;   /* bytes before this were pushed to writeback (bs_writeback); append_mu */
    uint64_t drop_from; /* pages before this were dropped from the page cache; sync_mu */
} bs_seg;

typedef struct {
    uint64_t boff;    /* blob offset */
    uint32_t len;     /* data bytes */
    bs_seg *seg;      /* the segment lives as long as a live extent points at it */
    uint64_t rec_off; /* file offset of the record header */
} bs_ext;

typedef struct {
    bs_id id;
    uint64_t size;
    bs_ext *ext; /* sorted by boff, non-overlapping */
    uint32_t next, cap;
    int damaged; /* a record of this blob was lost to corruption: it has holes */
} bs_blob;

typedef struct {
    bs_blob **slots; /* open addressing, linear probing, backward-shift deletion */
    size_t cap;      /* power of two */
    size_t count;
} bs_index;

cm_err bs_index_init(bs_index *ix);
void bs_index_release(bs_index *ix); /* frees every blob */
bs_blob *bs_index_get(const bs_index *ix, const bs_id *id);
/* Insert a new blob (the id must not be present). */
cm_err bs_index_put(bs_index *ix, bs_blob *b);
/* Unlink the blob from the table and return it (NULL if absent); the caller frees it. */
bs_blob *bs_index_remove(bs_index *ix, const bs_id *id);
bs_blob *bs_blob_new(const bs_id *id);
void bs_blob_free(bs_blob *b);
cm_err bs_blob_add_ext(bs_blob *b, const bs_ext *e);
/* Insert an extent at position i (0..next), keeping the array sorted. */
cm_err bs_blob_insert_ext(bs_blob *b, uint32_t i, const bs_ext *e);
/* Index of the first extent ending after blob offset off (next when none). */
uint32_t bs_blob_first_ext(const bs_blob *b, uint64_t off);
/* Set once cachestat(2) failed ENOSYS or EPERM: bs_cached probes a byte per block instead (a
 * test sets it to run that path). */
extern int bs_no_cachestat;

/* ---- the store ---- */

/* A range of dead data to punch once the tombstone written at write generation gen is durable. */
typedef struct {
    uint32_t seg; /* segment number (segments may go away meanwhile; numbers are never reused) */
    uint64_t off, len;
    uint64_t gen;
    int64_t ms; /* monotonic ms when it was queued: due punch_wait_ms later */
} bs_hole;

typedef struct {
    bs_hole *v; /* v[head..n) wait, in write generation order */
    size_t head, n, cap;
    int disabled;         /* the filesystem cannot punch (or no io.punch): nothing is queued */
    int64_t wait_ms;      /* bs_options.punch_wait_ms resolved: -1 = punch at once */
    uint64_t short_bytes; /* bs_options.punch_short_bytes; 0 = the default rule */
    uint64_t punched;     /* bytes punched since open; atomic */
    uint64_t dropped;     /* ranges not queued (queue full); the first one is logged */
} bs_holes;

typedef struct {
    pthread_t thread;
    int running, stop;  /* stop: guarded by mu */
    int writeback;      /* an append left BS_WRITEBACK_BYTES unpushed (bs_writeback); mu */
    int64_t rate;       /* bytes per second */
    pthread_mutex_t mu; /* with cond: lets bs_close and appenders wake the sleeping thread */
    pthread_cond_t cond;
} bs_compactor;

/* Unpushed bytes in a segment at which an append wakes the background thread to push them to
 * writeback (bs_writeback): 4 MiB measured best of 1, 4 and 16 (docs/performance.md). */
#define BS_WRITEBACK_BYTES (4u << 20)

#define BS_DEL_RING 256 /* deletes remembered for diagnostics (bs_deleted_ago) */

/* statfs f_type of the memory-backed file systems (linux/magic.h) */
#define BS_TMPFS_MAGIC 0x01021994
#define BS_RAMFS_MAGIC 0x858458f6

struct bs_store {
    char *dir;
    bs_io io;
    int in_memory; /* the directory is on tmpfs or ramfs (bs_read_cached reads as bs_read) */
    uint64_t segment_max;
    uint32_t compact_pct;
    int lock_fd;                /* flock'd DIR/LOCK; -1 when not taken */
    pthread_mutex_t compact_mu; /* one compaction step at a time; the cseg state */
    bs_seg *cseg;               /* segment being compacted, NULL between segments */
    uint64_t cpos;              /* next record offset in cseg */
    uint64_t compacted_segs, compact_moved, compact_freed; /* atomic */
    bs_compactor bg;
    pthread_mutex_t sync_mu;   /* one bs_sync at a time; segment removal */
    pthread_mutex_t append_mu; /* appends, deletes, the segment list and sizes */
    pthread_rwlock_t idx_lock; /* index, live counters; readers hold it across their preads */
    bs_index index;
    bs_seg **segs; /* in segment-number order */
    size_t nsegs, capsegs;
    bs_seg *active; /* last segment, receives appends; NULL until the first */
    uint32_t next_segno;
    uint64_t write_gen;     /* append_mu */
    pthread_mutex_t gc_mu;  /* group commit (leaf lock): synced_gen, syncing */
    pthread_cond_t gc_cond; /* broadcast when a sync round ends */
    uint64_t synced_gen;
    int syncing;   /* a leader is running a round */
    cm_err failed; /* gc_mu: sticky error of a failed fdatasync (bs_error); CM_OK while healthy */
    uint64_t live_bytes;
    uint64_t corrupt_found; /* atomic */
    bs_holes holes;         /* dead data waiting to be punched (bs_punch.c); append_mu */
    int reserve_fd;         /* DIR/RESERVE, space kept for deletes on a full disk; append_mu */
    uint64_t reserve_size;
    uint64_t torn_cut;      /* bytes of torn tail cut at open */
    uint64_t salt;          /* of new segments: the store's, from its v2 headers or random */
    int have_salt;          /* recovery found (or made) the store's salt */
    pthread_mutex_t dir_mu; /* leaf: one directory sync for new segments at a time */
    int dir_dirty;          /* atomic: a segment was created since the last directory sync */

    /* The last BS_DEL_RING deletes (id, monotonic ms), so a "not found" can say whether and
     * when the blob was deleted here (bs_deleted_ago); idx_lock. */
    bs_id del_ids[BS_DEL_RING];
    int64_t del_ms[BS_DEL_RING];
    uint32_t del_next;

    /* Counters for bs_get_stats (/metrics). */
    uint64_t appends, append_bytes;   /* append_mu: bs_append calls that succeeded, their bytes */
    uint64_t sync_calls, sync_rounds; /* gc_mu: bs_sync calls; rounds that ran an fdatasync set */
    uint64_t sync_round_gens;         /* gc_mu: writes the rounds covered (group size sum) */
};

/* ---- I/O helpers (bs_io.c) ---- */

/* pwrite all of buf, retrying EINTR and short writes. */
cm_err bs_write_full(const bs_io *io, int fd, const void *buf, size_t len, uint64_t off);
/* pread up to len bytes, retrying EINTR and short reads; *got < len only at end of file. */
cm_err bs_read_full(const bs_io *io, int fd, void *buf, size_t len, uint64_t off, size_t *got);
void bs_seg_path(const bs_store *bs, uint32_t num, char *out, size_t cap);
/* fsync the store directory (open + fdatasync + close through the io table). */
cm_err bs_sync_dir(bs_store *bs);
/* mkdir the store directory if missing; a new one gets its parent directory synced. */
cm_err bs_make_dir(bs_store *bs);
/*
 * Write the synced-up-to mark into s's header (version 2 only, and only when it grows), without
 * fdatasync: it becomes durable with the segment's next one. Every byte of s before `synced`
 * must already be durable. Caller holds append_mu (the header is the file's only shared spot).
 */
void bs_seg_write_mark(bs_store *bs, bs_seg *s, uint64_t synced);
/*
 * Create segment `num` with its header and add it to the list as the active segment. The
 * directory is not synced here (the caller holds append_mu): bs_sync_new_segments does it before
 * any sync that must cover the segment's records.
 */
cm_err bs_seg_create(bs_store *bs, uint32_t num, bs_seg **out);
/* Make the directory entries of every segment created so far durable (when any are new). */
cm_err bs_sync_new_segments(bs_store *bs);
/* Push every segment's appended bytes not pushed yet to writeback (bs_io.c; the background
 * thread's, never an appender's: it may block on the device). */
void bs_writeback(bs_store *bs);
/* Drop the durable pages of every segment (below its synced-up-to mark, page 0 kept) from the
 * page cache, each page once (bs_io.c says why). The background thread calls it. */
void bs_drop_synced(bs_store *bs);
cm_err bs_segs_push(bs_store *bs, bs_seg *s);
/* Remove from the list, close and unlink (the caller holds sync_mu and append_mu). */
void bs_seg_destroy(bs_store *bs, bs_seg *s);

/* ---- shared by recovery, the live store and compaction ---- */

/* Drop a blob from the index and its segments' live counters and queue its data for punching
 * (its tombstone is written); frees it. */
void bs_drop_blob(bs_store *bs, bs_blob *b);
/* Recovery scan of every segment (bs_recover.c); called by bs_open with no locks needed. */
cm_err bs_recover(bs_store *bs);
/* Exclusive non-blocking flock on DIR/LOCK into bs->lock_fd; CM_ERR_CONFLICT when held. */
cm_err bs_take_lock(bs_store *bs);
/* Apply a valid record to the index as recovery does (overlaps are logged and counted in
 * corrupt_found); bs_finish_blobs then sets sizes and marks blobs with holes damaged. */
cm_err bs_apply_record(bs_store *bs, const bs_rec_hdr *h, bs_seg *s, uint64_t pos);
void bs_finish_blobs(bs_store *bs);
/* Segment numbers present in dir, sorted (the caller frees *out). */
cm_err bs_list_segments(const char *dir, uint32_t **out, size_t *n);
/* Next 8-aligned offset >= from in fd holding a record that validates (with salt) and fits. */
int bs_find_next_record(const bs_io *io, int fd, uint64_t salt, uint64_t from, uint64_t fsize,
                        uint64_t *next);
/*
 * Read segment s's header (s->fd, s->num): sets s->version, s->salt and s->synced, and the
 * store's salt from the first valid version 2 header. Returns 1 when the header validates, 0 when
 * it does not (s->salt is then the store's salt when known, else a guess from the bytes), -1 on
 * a read error.
 */
int bs_seg_load_header(bs_store *bs, bs_seg *s);
/* Make the active segment able to take `need` more bytes, starting a new one if needed. */
cm_err bs_ensure_room(bs_store *bs, uint64_t need);
/*
 * May segment s be unlinked now? It must not be active or busy, hold no live extent, and none of
 * the segments its tombstones refer to may exist any more (a tombstone only matters while
 * records of its blob are on disk). Caller holds append_mu.
 */
int bs_seg_reclaimable(const bs_store *bs, const bs_seg *s);
/* The segment numbered num, or NULL; caller holds append_mu. */
bs_seg *bs_seg_find(const bs_store *bs, uint32_t num);
/* Does any segment s->refs names still exist (other than s)? */
int bs_seg_refs_live(const bs_store *bs, const bs_seg *s);
/* Add segment number num to s->refs (no-op when num is s itself or already there). */
cm_err bs_seg_add_ref(bs_seg *s, uint32_t num);
/* Record, in the segment about to hold b's tombstone, every segment holding b's records. */
cm_err bs_seg_add_blob_refs(bs_store *bs, bs_seg *s, const bs_blob *b);
/* Unlink every reclaimable segment, oldest first; caller holds sync_mu and append_mu. */
void bs_reclaim(bs_store *bs);

/* ---- hole punching (bs_punch.c) ---- */

/* Queue the data of every record of blob b (deleted, tombstone written): caller holds append_mu
 * (or is recovery), before b is freed. */
void bs_punch_note(bs_store *bs, const bs_blob *b);
/* After recovery: drop the ranges that are holes already, and make the rest wait for a sync (the
 * tombstones recovery read may still be only in the page cache). */
void bs_punch_after_recovery(bs_store *bs);
void bs_holes_release(bs_holes *h);
/* At open: the holes earlier runs punched, from what each segment file occupies on disk. */
void bs_punch_count_holes(bs_store *bs);
/* used_bytes, reclaimable_bytes and punched_bytes; caller holds append_mu and idx_lock. */
void bs_punch_stats(const bs_store *bs, bs_stats *out);
/* Bring DIR/RESERVE up to BS_RESERVE_BYTES (best effort); caller holds append_mu or is bs_open. */
void bs_reserve_fill(bs_store *bs);
/* Give the reserve's space back to the filesystem; 1 if there was any. Caller holds append_mu. */
int bs_reserve_release(bs_store *bs);
/* The part of a PUT record's data that a hole may cover: whole pages inside [data, data+len). */
void bs_punch_range(uint64_t rec_off, uint32_t len, uint64_t *off, uint64_t *plen);

/* ---- compaction (bs_compact.c) ---- */
cm_err bs_compactor_start(bs_store *bs, int64_t rate);
void bs_compactor_stop(bs_store *bs);
/* After an append to s (caller holds append_mu): wake the background thread for bs_writeback
 * once s holds BS_WRITEBACK_BYTES not pushed yet. */
void bs_writeback_due(bs_store *bs, const bs_seg *s);

#endif
