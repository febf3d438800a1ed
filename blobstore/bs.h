/*
 * bs.h - append-only blob store for one drive (a directory).
 *
 * A blob is a byte sequence named by a 16-byte id, written front to back in pieces (appends at the
 * blob's current end) and read at any offset. All blobs of a drive share append-only segment files;
 * every record carries a header with its own CRC32C and its data is checksummed per 64 KiB block,
 * so a read verifies exactly the blocks it touches. Deleting appends a tombstone; a segment whose
 * records are all dead is removed, and a segment whose live fraction drops below a threshold is
 * compacted (its live records copied to the active segment, then it is removed). Once a delete
 * is durable and its segment has not gone whole within a grace period (at once on a drive short
 * of space), the data of the deleted blob's records is punched out of its segment files (a hole
 * that reads as zeros and takes no disk space), so space comes back even inside the active
 * segment and on a disk too full to compact (bs_punch_dead).
 *
 * Durability: bs_append returns when the bytes are written to the segment file (page cache);
 * bs_sync returns when every append and delete made before it is on stable storage (fdatasync).
 * Callers acknowledge nothing before bs_sync. Concurrent bs_sync calls share fdatasyncs.
 * A failed fdatasync is sticky: it is never retried (the kernel may have dropped the pages and
 * would report success), every bs_sync that covers an unsynced write fails from then on, and
 * the store refuses appends and deletes and unlinks nothing until it is reopened (bs_error).
 *
 * Crash guarantee (proved by the crash-point loop in tests/unit/test_blobstore_crash.c): after a
 * crash at any point and a bs_open of what is on disk,
 *   - every byte appended before a bs_sync that returned CM_OK is readable, byte-exact;
 *   - a blob shows a prefix of what was appended to it: its length is at least what the last
 *     successful bs_sync covered and at most what was appended, and every byte it shows reads back
 *     exactly (a blob never covered by a sync may be absent);
 *   - a delete covered by a successful bs_sync stays deleted; a delete not yet synced either
 *     happened (blob absent) or did not (blob as above), never half.
 * This holds when the crash loses everything not yet fdatasync'd. If the disk instead keeps an
 * arbitrary subset of the unsynced writes, the first point still holds and a read never returns
 * wrong bytes, but an unsynced blob may show a hole (reads of it fail with CM_ERR_CORRUPT).
 *
 * Recovery: bs_open scans the segments, rebuilds the in-memory index (blob id -> extents), and cuts
 * a torn record off the tail of the last segment - only past the segment's synced-up-to mark; an
 * invalid record before it is corruption. A corrupt record is logged with file and offset, counted
 * in corrupt_found, its blob marked damaged, and scanning resumes at the next record that
 * validates. Record-header CRCs are salted per store, so stored bytes never pass for a header.
 *
 * All disk I/O goes through a bs_io function table so tests can inject failures and bit flips.
 *
 * Thread safety: a bs_store may be used from several threads at once; appends are serialised
 * internally, reads proceed in parallel with each other and with compaction.
 *
 * A drive directory is held by one bs_store at a time: bs_open takes an exclusive flock on
 * DIR/LOCK (CM_ERR_CONFLICT when another store or `cairn fsck` holds it).
 */
#ifndef BS_H
#define BS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "cm_err.h"

typedef struct bs_store bs_store;

typedef struct {
    uint8_t b[16];
} bs_id;

/*
 * The I/O seam. Each function returns like its POSIX namesake (-1 and errno on failure). punch is
 * fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) of len bytes at off; it may be NULL (no
 * hole punching: deleted data then waits for compaction), and EOPNOTSUPP/ENOSYS from it turns
 * punching off for the store. writeback is sync_file_range(SYNC_FILE_RANGE_WRITE) of len bytes
 * at off: it starts writing those dirty pages out and waits for nothing. It is a hint (its
 * result is ignored; durability still comes from fdatasync alone) and may be NULL. drop is
 * posix_fadvise(POSIX_FADV_DONTNEED) of len bytes at off, called only for bytes already durable
 * (bs_drop_synced): the page cache may forget those clean pages. A hint too; may be NULL.
 */
typedef struct bs_io {
    int (*open)(void *ctx, const char *path, int flags, mode_t mode);
    ssize_t (*pread)(void *ctx, int fd, void *buf, size_t len, off_t off);
    ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, off_t off);
    int (*fdatasync)(void *ctx, int fd);
    int (*ftruncate)(void *ctx, int fd, off_t len);
    int (*close)(void *ctx, int fd);
    int (*unlink)(void *ctx, const char *path);
    void *ctx;
    int (*punch)(void *ctx, int fd, off_t off, off_t len);
    int (*writeback)(void *ctx, int fd, off_t off, off_t len);
    int (*drop)(void *ctx, int fd, off_t off, off_t len);
} bs_io;

/* The POSIX implementation (ctx unused). */
extern const bs_io bs_io_posix;

typedef struct {
    uint64_t segment_max; /* roll to a new segment past this size; default 256 MiB */
    const bs_io *io;      /* NULL = bs_io_posix; borrowed, must outlive the store */
    /* Compact a non-active segment when its live payload is below this percentage of its size
     * (1..99; 0 = default 50). */
    uint32_t compact_pct;
    /* Background compactor: bytes per second it may copy; 0 = default 32 MiB/s; < 0 = no thread
     * (call bs_compact_step yourself). */
    int64_t compact_rate;
    /* How long the data of a deleted blob may wait for its whole segment to go (reclaim or
     * compaction unlinks it: one large discard) before a hole is punched into it instead (one
     * small discard per record); 0 = default 15 s, < 0 = punch as soon as the delete is
     * durable. A drive short of space (punch_short_bytes) punches at once. */
    int64_t punch_wait_ms;
    /* A drive whose filesystem has less than this available is short of space: its deleted data
     * is punched as soon as the delete is durable. 0 = default, a tenth of the filesystem and at
     * least 1 GiB. */
    uint64_t punch_short_bytes;
} bs_options;

typedef struct {
    uint64_t blobs;      /* live blobs */
    uint64_t live_bytes; /* payload bytes of live blobs */
    uint64_t disk_bytes; /* size of all segment files */
    /* Bytes the segment files occupy: disk_bytes less the holes punched into them. */
    uint64_t used_bytes;
    /* Bytes of used_bytes that hold no live data: deleted data not yet punched, record headers,
     * tombstones and the edges of holes (given back by punching and compaction). */
    uint64_t reclaimable_bytes;
    uint64_t punched_bytes; /* bytes given back by punching holes since open */
    uint32_t segments;
    uint64_t corrupt_found; /* records that failed a checksum since open */
    uint64_t torn_cut;      /* bytes of torn tail (past the synced-up-to mark) cut at open */
    uint64_t compacted;     /* segments compacted and removed since open */
    uint64_t compact_moved; /* record bytes copied by compaction since open */
    uint64_t compact_freed; /* segment bytes removed by compaction since open */
    uint64_t appends;       /* bs_append calls that succeeded since open */
    uint64_t append_bytes;  /* their payload bytes */
    uint64_t sync_calls;    /* bs_sync calls since open */
    /* Group commit: rounds that fdatasynced (sync_rounds) and the writes (appends, deletes,
     * compaction copies) they made durable in all: sync_round_writes / sync_rounds is the mean
     * group size. */
    uint64_t sync_rounds;
    uint64_t sync_round_writes;
} bs_stats;

/*
 * Open (creating the directory if missing), lock DIR/LOCK and recover. opt may be NULL for
 * defaults. CM_ERR_CONFLICT when the directory is held by another store or process.
 */
cm_err bs_open(const char *dir, const bs_options *opt, bs_store **out);
void bs_close(bs_store *bs); /* NULL is a no-op; does not sync */

/*
 * Append len bytes to blob id at blob offset off, which must equal the blob's current length
 * (0 creates it). CM_ERR_INVAL if off is wrong, CM_ERR_NOSPC / CM_ERR_IO from the disk (the
 * partial record is cut off again, so the store stays consistent).
 */
cm_err bs_append(bs_store *bs, const bs_id *id, uint64_t off, const void *data, size_t len);
/*
 * bs_append of the iovcnt pieces of iov, in order, as one buffer: the same records as bs_append of
 * their concatenation, written from the pieces without gathering them first (the node RPC server
 * appends a cell straight from the socket's buffer chains).
 */
cm_err bs_appendv(bs_store *bs, const bs_id *id, uint64_t off, const struct iovec *iov, int iovcnt);
/*
 * Make every append issued before this call durable. CM_ERR_IO when an fdatasync failed, in this
 * call's round or any earlier one whose writes were not yet durable (see bs_error).
 */
cm_err bs_sync(bs_store *bs);
/*
 * Read exactly len bytes at blob offset off into buf. CM_ERR_NOTFOUND when the blob does not exist
 * or the range is beyond its end; CM_ERR_CORRUPT when a checksum fails (logged with file:offset);
 * CM_ERR_IO on a read error.
 */
cm_err bs_read(bs_store *bs, const bs_id *id, uint64_t off, void *buf, size_t len);
/*
 * bs_read that never waits on the disk, for an event loop: CM_AGAIN when the page cache does not
 * hold every byte it must read (block CRCs and data), or they could not be read at once, or a
 * block's CRC fails (nothing logged or counted: read it again with bs_read on a thread that may
 * wait, which reports what is wrong, once), and always on a store opened with another bs_io than
 * bs_io_posix (a test's faults must not be bypassed). CM_ERR_NOTFOUND as bs_read. On tmpfs or
 * ramfs (which refuse RWF_NOWAIT, and never wait on a disk) it is bs_read.
 */
cm_err bs_read_cached(bs_store *bs, const bs_id *id, uint64_t off, void *buf, size_t len);
/*
 * Would reading [off, off + len) of blob id wait on the disk? 0 when a page it needs (the blocks
 * touched and their CRCs) is not in the page cache, else 1: by cachestat(2) (Linux 6.5); before
 * that, one byte per block is checked, so a page between may still be read from the disk. 1 too
 * when the blob or the range is not there (the read says so at once), on a store opened with
 * another bs_io than bs_io_posix (its reads go where they always did), and on tmpfs or ramfs.
 */
int bs_cached(bs_store *bs, const bs_id *id, uint64_t off, uint64_t len);

/* Where some of a blob's bytes lie in a segment file. */
typedef struct {
    int fd;       /* a duplicate of the segment file's descriptor, the caller's to close */
    uint64_t pos; /* file offset of the first byte */
    uint32_t len;
} bs_span;

/*
 * Bytes [off, off+len) of a blob as places in the segment files, for sending them without reading
 * them (sendfile): at most max spans in blob order, each with its own descriptor (which keeps the
 * bytes readable after compaction unlinks the file), and *crc, the CRC32C (cm_crc32c convention)
 * the range was written with, combined from the stored block CRCs. Only a block the range cuts
 * is read (and verified: CM_ERR_CORRUPT as bs_read); the other bytes are not checked here, so
 * whoever receives them must compare their CRC32C with *crc. A deleted blob's data may read as
 * zeros once its holes are punched (bs_punch.c), which that check also catches.
 * CM_ERR_NOTFOUND as bs_read; CM_ERR_TOOBIG when the range lies in more than max records (read
 * it with bs_read); CM_ERR_UNSUPPORTED for a store on another bs_io than bs_io_posix; CM_AGAIN
 * when the process is out of descriptors (read it with bs_read); CM_ERR_IO when a descriptor
 * cannot be duplicated otherwise or the CRCs cannot be read. On error no span is left.
 */
cm_err bs_read_spans(bs_store *bs, const bs_id *id, uint64_t off, uint64_t len, bs_span *spans,
                     size_t max, size_t *n, uint32_t *crc);
/* Current length of a blob; CM_ERR_NOTFOUND if unknown. */
cm_err bs_size(bs_store *bs, const bs_id *id, uint64_t *size);
/*
 * Diagnostics for a "not found": 1 when id was among the store's last BS_DEL_RING (256) deletes
 * since it opened, with *ago_ms = how long ago (the latest such delete); 0 otherwise.
 */
int bs_deleted_ago(bs_store *bs, const bs_id *id, int64_t *ago_ms);
/*
 * A page of the drive's blobs in id order (bytes compared as unsigned): up to max blobs whose id
 * is above *after (NULL: from the first), their ids into ids[] and lengths into sizes[], *n the
 * count. A full page (*n == max) may have a next one: call again after its last id. Each page is
 * one pass over the index under its read lock (O(blobs), plus a sorted insert for each blob that
 * enters the page): for repair and anti-entropy walks, not for hot paths.
 */
cm_err bs_list(bs_store *bs, const bs_id *after, bs_id *ids, uint64_t *sizes, size_t max,
               size_t *n);
/* bs_list, and the age of each blob into ages[]: seconds since the newest write to a segment
 * holding one of its records (never older than the blob is; compaction makes it look young).
 * For the cluster's orphan sweep (docs/storage.md, "Orphans on a cluster"). */
cm_err bs_list_aged(bs_store *bs, const bs_id *after, bs_id *ids, uint64_t *sizes, int64_t *ages,
                    size_t max, size_t *n);
/* Delete a blob (tombstone). Deleting an unknown blob is CM_OK. Not synced until bs_sync. */
cm_err bs_delete(bs_store *bs, const bs_id *id);
void bs_get_stats(bs_store *bs, bs_stats *out);
/*
 * CM_OK while the store is healthy; after a failed fdatasync, that error (CM_ERR_IO) for good:
 * the store then only reads. Reopen it (after checking the disk) to write again.
 */
cm_err bs_error(bs_store *bs);

/*
 * Give back the disk space of deleted blobs: make the deletes made so far durable (bs_sync, when
 * one is due), then punch a hole into the data of each record they killed (whole 4 KiB pages
 * inside the record's data; the record header and its checksums stay, so the segment still parses
 * and recovery, compaction and fsck treat the record as the dead one it is). A hole is only punched
 * once the tombstone is durable, so a crash never shows a blob whose data is gone, and once it has
 * waited punch_wait_ms for its segment to go whole (not on a drive short of space). The background
 * compactor calls this about once a second; without it (compact_rate < 0) call it yourself.
 * Returns CM_AGAIN while more holes are due, CM_OK when none are (some may wait still); CM_ERR_IO
 * when the sync fails (the holes wait). A filesystem that cannot punch turns punching off (logged
 * once).
 */
cm_err bs_punch_dead(bs_store *bs);

/*
 * One step of compaction: continue (or pick) the segment with the lowest live fraction below the
 * threshold and copy up to about budget bytes of its live records to the active segment. When a
 * segment's scan is complete, the copies are synced and the segment is removed. Locks are held per
 * record, never across a read of the old segment, so reads and appends proceed meanwhile.
 * Returns CM_AGAIN while work remains, CM_OK when no segment needs compacting; CM_ERR_NOSPC /
 * CM_ERR_IO from the disk (nothing is lost: the old segment stays until its copies are durable).
 */
cm_err bs_compact_step(bs_store *bs, uint64_t budget);

/* ---- offline check (bs_fsck.c) ---- */

typedef struct {
    uint32_t segments;
    uint64_t bytes;           /* size of all segment files */
    uint64_t records;         /* records whose header validates */
    uint64_t tombstones;      /* DELETE records among them */
    uint64_t live_blobs;      /* blobs the index would hold */
    uint64_t live_bytes;      /* their payload bytes */
    uint64_t bad_headers;     /* segment headers that fail to validate */
    uint64_t bad_regions;     /* stretches of bytes that are not a valid record (skipped) */
    uint64_t bad_blocks;      /* 64 KiB data blocks of live blobs whose CRC32C does not match */
    uint64_t dead_bad_blocks; /* ... of deleted blobs (bit rot in garbage: no data lost) */
    uint64_t bad_live_blobs;  /* live blobs with a bad block or a hole: data lost on this drive */
    uint64_t overlaps;        /* PUT records overlapping their blob's data (ignored) */
    uint64_t torn_bytes;      /* invalid tail of the last segment (a crash; cut at open) */
    uint64_t punched;         /* records of deleted blobs whose data was punched out (fine) */
    uint32_t rewritten;       /* segments rewritten by repair */
} bs_fsck_report;

/* Progress: bytes of the drive checked so far, of total. */
typedef void (*bs_fsck_progress)(void *arg, uint64_t done, uint64_t total);

/*
 * Check a drive directory offline: every segment header, every record header, every data block's
 * CRC32C, and the index the records build (holes, overlaps). Takes DIR/LOCK, so it refuses
 * (CM_ERR_CONFLICT) a drive that a running store holds. With repair, each segment with a bad
 * header, a bad region, a bad block or a torn tail is rewritten with only its valid records (a
 * record with a bad block is dropped whole; its blob then has a hole) into a temporary file that
 * is fsynced and renamed over the segment; then the drive is checked again and *out describes the
 * result. progress may be NULL.
 */
cm_err bs_fsck(const char *dir, int repair, bs_fsck_progress progress, void *arg,
               bs_fsck_report *out);

/*
 * Orphan sweep of a drive against the metadata: live(arg, id) says whether any record names blob
 * id. A blob no record names whose segment was last written more than grace_s seconds ago is an
 * orphan (a body whose commit failed with an unknown outcome, or whose writer died). Offline like
 * bs_fsck (DIR/LOCK; run it with the server stopped, or a body being written looks orphaned).
 * With repair the orphans are deleted (tombstones, synced) through a store opened on dir.
 */
typedef struct {
    int (*live)(void *arg, const bs_id *id);
    void *arg;
    int64_t grace_s;
} bs_orphan_check;

typedef struct {
    uint64_t blobs;        /* blobs on the drive */
    uint64_t orphans;      /* named by no record and older than the grace period */
    uint64_t orphan_bytes; /* their payload bytes */
    uint64_t young;        /* named by no record but younger: kept */
    uint64_t reclaimed;    /* orphans deleted (repair) */
} bs_orphan_report;

cm_err bs_fsck_orphans(const char *dir, const bs_orphan_check *oc, int repair,
                       bs_orphan_report *out);

/* Generate a new random blob id. */
cm_err bs_id_new(bs_id *out);
/* 32 lowercase hex chars + NUL. */
void bs_id_hex(const bs_id *id, char out[33]);

#endif
