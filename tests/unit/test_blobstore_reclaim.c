/*
 * test_blobstore_reclaim.c - deleted data gives its disk space back by punching holes (bs_punch.c).
 *
 * punch_after_delete: blobs in the active and in older segments are deleted; nothing is punched
 * before bs_punch_dead, then the segment files' allocated blocks (st_blocks) drop by about the
 * deleted data, bs_stats shows used / reclaimable / punched accordingly, and the survivors read
 * back byte-exact; punch_left_by_crash: deletes the process did not live to punch are punched after
 * the next open, and holes already there are not queued again. punch_after_durable_tombstone: the
 * hole is never punched before an fdatasync that covers the tombstone, and not at all when that
 * sync fails. crash_with_holes: a store with holes and a torn tail (a crash in the middle of an
 * append) reopens with no corruption reported, every live blob intact, every deleted one gone; fsck
 * calls it clean (the holes are counted as punched records); compaction of the holed segments keeps
 * it so. zeroed_live_blob: zeros in a live blob's data are still damage to fsck. no_punch_support:
 * a filesystem without punch hole (EOPNOTSUPP) turns punching off and the store goes on working.
 * delete_on_full_disk: with not even room for a 48-byte tombstone, deletes still succeed (the
 * RESERVE file gives its space). crash_points_punch: a crash at every I/O call of a workload that
 * deletes and punches (the fault io models a hole as a write of zeros) never shows a blob with
 * zeros: deleted blobs are absent or whole, durable ones intact, and recovery reports no
 * corruption. punch_waits_for_segment: with a wait (punch_wait_ms) nothing is punched before
 * it is due, a segment that went whole meanwhile is never punched into, and a drive short of
 * space punches at once.
 *
 * Runs on the scratch directory's filesystem (tmpfs, ext4 and xfs punch holes); where it cannot
 * punch, the tests that measure blocks say so and only check the fallback.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bs.h"
#include "bs_int.h"
#include "cm_log.h"
#include "cm_util.h"
#include "cu_data.h"
#include "cu_main.h"
#include "faultio.c" /* test helper, not a test executable of its own */

#define SEED 4242u
#define BLOB 200000u /* bytes per blob: several 4 KiB pages, four 64 KiB blocks */
#define NBLOBS 12u
#define MARK 0x5A

static const char *test_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", cu_tmpdir(), name);
    return path;
}

static cm_err put(bs_store *bs, uint32_t tag, size_t len)
{
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = cu_pattern(SEED, tag, i);
    bs_id id = cu_tag_id(tag, MARK);
    cm_err e = bs_append(bs, &id, 0, buf, len);
    free(buf);
    return e;
}

/* 1: the blob reads back byte-exact (a prefix of len bytes will do with prefix); 0: it differs
 * or fails to read; -1: it is absent. */
static int check_blob(bs_store *bs, uint32_t tag, size_t len, int prefix)
{
    bs_id id = cu_tag_id(tag, MARK);
    uint64_t size = 0;
    if (bs_size(bs, &id, &size) == CM_ERR_NOTFOUND)
        return -1;
    if (size > len || (!prefix && size != len))
        return 0;
    uint8_t *buf = malloc(len);
    int ok = bs_read(bs, &id, 0, buf, (size_t)size) == CM_OK;
    for (size_t i = 0; ok && i < size; i++)
        ok = buf[i] == cu_pattern(SEED, tag, i);
    free(buf);
    return ok;
}

static int check(bs_store *bs, uint32_t tag, size_t len)
{
    return check_blob(bs, tag, len, 0);
}

static cm_err del(bs_store *bs, uint32_t tag)
{
    bs_id id = cu_tag_id(tag, MARK);
    return bs_delete(bs, &id);
}

/* Bytes the segment files of dir occupy on disk. */
static uint64_t disk_used(const char *dir)
{
    uint64_t total = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[1024];
        struct stat st;
        if (strncmp(de->d_name, "seg-", 4) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &st) == 0)
            total += (uint64_t)st.st_blocks * 512;
    }
    if (d)
        closedir(d);
    return total;
}

/* Can the scratch filesystem punch holes? */
static int can_punch(void)
{
    char path[512];
    static uint8_t buf[65536];
    snprintf(path, sizeof(path), "%s/punch-probe", cu_tmpdir());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int ok = fd >= 0 && pwrite(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) &&
             bs_io_posix.punch(NULL, fd, 4096, 8192) == 0;
    if (fd >= 0)
        close(fd);
    unlink(path);
    if (!ok)
        printf("\n  the scratch filesystem cannot punch holes: only the fallback is checked\n");
    return ok;
}

static bs_store *open_store(const char *dir)
{
    bs_options opt = {.segment_max = 1u << 20, .compact_rate = -1, .punch_wait_ms = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    return bs;
}

static void punch_all(bs_store *bs)
{
    cm_err e;
    int rounds = 0;
    while ((e = bs_punch_dead(bs)) == CM_AGAIN && rounds++ < 1000)
        ;
    CU_ASSERT_EQUAL(e, CM_OK);
}

/* NBLOBS blobs (three 1 MiB segments, the last one active), synced; the even tags deleted. */
static bs_store *fill_and_delete(const char *dir)
{
    bs_store *bs = open_store(dir);
    for (uint32_t t = 1; t <= NBLOBS; t++)
        CU_ASSERT_EQUAL(put(bs, t, BLOB), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    for (uint32_t t = 2; t <= NBLOBS; t += 2)
        CU_ASSERT_EQUAL(del(bs, t), CM_OK);
    return bs;
}

static void test_punch_after_delete(void)
{
    const char *dir = test_dir("punch");
    int punch = can_punch();
    bs_store *bs = open_store(dir);
    for (uint32_t t = 1; t <= NBLOBS; t++)
        CU_ASSERT_EQUAL(put(bs, t, BLOB), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    uint64_t before = disk_used(dir);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT(st.segments >= 3);
    CU_ASSERT(st.used_bytes == st.disk_bytes && st.punched_bytes == 0);
    CU_ASSERT(st.reclaimable_bytes < 64 * 1024); /* headers and padding only */
    for (uint32_t t = 2; t <= NBLOBS; t += 2)
        CU_ASSERT_EQUAL(del(bs, t), CM_OK);
    uint64_t deleted = (NBLOBS / 2) * (uint64_t)BLOB;
    CU_ASSERT_EQUAL(disk_used(dir), before); /* nothing punched before its tombstone is durable */
    bs_get_stats(bs, &st);
    CU_ASSERT(st.reclaimable_bytes >= deleted);
    punch_all(bs);
    uint64_t after = disk_used(dir);
    bs_get_stats(bs, &st);
    printf("\n  %u of %u blobs of %u bytes deleted: segment files %llu -> %llu bytes on disk, "
           "stats used %llu live %llu reclaimable %llu punched %llu\n",
           NBLOBS / 2, NBLOBS, BLOB, (unsigned long long)before, (unsigned long long)after,
           (unsigned long long)st.used_bytes, (unsigned long long)st.live_bytes,
           (unsigned long long)st.reclaimable_bytes, (unsigned long long)st.punched_bytes);
    /* Each record keeps at most two partial pages; a blob split over two segments has 2 records */
    uint64_t kept = (NBLOBS / 2) * 4 * 4096ull;
    if (punch) {
        CU_ASSERT(before - after >= deleted - kept);
        CU_ASSERT(st.punched_bytes >= deleted - kept && st.punched_bytes <= deleted);
        CU_ASSERT(st.used_bytes == st.disk_bytes - st.punched_bytes);
        CU_ASSERT(st.reclaimable_bytes < kept + 64 * 1024);
    }
    for (uint32_t t = 1; t <= NBLOBS; t++)
        CU_ASSERT_EQUAL(check(bs, t, BLOB), t % 2 ? 1 : -1);
    bs_close(bs);
}

static bs_store *open_waiting(const char *dir, int64_t wait_ms, uint64_t short_bytes)
{
    bs_options opt = {.segment_max = 1u << 20,
                      .compact_rate = -1,
                      .punch_wait_ms = wait_ms,
                      .punch_short_bytes = short_bytes};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    return bs;
}

static uint64_t punched_bytes(bs_store *bs)
{
    bs_stats st;
    bs_get_stats(bs, &st);
    return st.punched_bytes;
}

#define WAIT_MS 2000 /* long enough that a slow (sanitizer) run still checks "not yet" in time */

/* The wait (punch_wait_ms): deleted data is not punched before it is due; the ranges of a
 * segment that went whole meanwhile are dropped, never punched; a drive short of space
 * (punch_short_bytes) punches at once. */
static void test_punch_waits_for_segment(void)
{
    const char *dir = test_dir("punchwait");
    int punch = can_punch();
    bs_store *bs = open_waiting(dir, WAIT_MS, 1); /* 1 byte: short only when the disk is full */
    for (uint32_t t = 1; t <= NBLOBS; t++)
        CU_ASSERT_EQUAL(put(bs, t, BLOB), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    char seg1[1024];
    snprintf(seg1, sizeof(seg1), "%s/seg-00000001.cbs", dir);
    CU_ASSERT_EQUAL(access(seg1, F_OK), 0);
    /* Tags 1-5 lie in segment 1, tag 6 in segments 1 and 2: deleting them frees segment 1. */
    for (uint32_t t = 1; t <= 6; t++)
        CU_ASSERT_EQUAL(del(bs, t), CM_OK);
    CU_ASSERT_EQUAL(access(seg1, F_OK), -1);
    CU_ASSERT_EQUAL(del(bs, NBLOBS), CM_OK); /* in the active segment */
    int64_t queued = cm_monotonic_ms();
    CU_ASSERT_EQUAL(bs_punch_dead(bs), CM_OK); /* none due yet */
    int64_t checked = cm_monotonic_ms();
    CU_ASSERT(checked - queued < WAIT_MS); /* else the line above proved nothing */
    CU_ASSERT_EQUAL(punched_bytes(bs), 0);
    /* Segment 1's ranges left the queue at once: tag 6's part in segment 2 and tag 12 wait. */
    CU_ASSERT_EQUAL(bs->holes.n - bs->holes.head, 2);
    usleep((useconds_t)(WAIT_MS + 100) * 1000);
    punch_all(bs);
    CU_ASSERT_EQUAL(bs->holes.n - bs->holes.head, 0);
    uint64_t got = punched_bytes(bs);
    printf("\n  after the wait: %llu bytes punched (tag %u and the part of tag 6 in segment 2; "
           "segment 1 went whole)\n",
           (unsigned long long)got, NBLOBS);
    if (punch) {
        CU_ASSERT(got >= BLOB - 2 * 4096);
        CU_ASSERT(got <= 2ull * BLOB); /* nothing of tags 1-5 */
    }
    for (uint32_t t = 1; t <= NBLOBS; t++)
        CU_ASSERT_EQUAL(check(bs, t, BLOB), t > 6 && t < NBLOBS ? 1 : -1);
    bs_close(bs);

    bs = open_waiting(dir, 60 * 1000, UINT64_MAX); /* always short of space */
    CU_ASSERT_EQUAL(del(bs, 8), CM_OK);
    punch_all(bs);
    if (punch)
        CU_ASSERT(punched_bytes(bs) >= BLOB - 2 * 4096);
    for (uint32_t t = 7; t < NBLOBS; t++)
        CU_ASSERT_EQUAL(check(bs, t, BLOB), t == 8 ? -1 : 1);
    bs_close(bs);
    bs_fsck_report r;
    CU_ASSERT_EQUAL_FATAL(bs_fsck(dir, 0, NULL, NULL, &r), CM_OK);
    CU_ASSERT(!r.bad_blocks && !r.bad_regions && !r.bad_live_blobs);
    CU_ASSERT_EQUAL(r.live_blobs, 4);
}

/* ---- an io that watches the order of fdatasync and punch ---- */

typedef struct {
    int syncs;       /* fdatasyncs so far */
    int punches;     /* punches so far */
    int first_punch; /* syncs seen by the first punch, -1 before it */
    int fail_sync;   /* fdatasync fails with EIO */
    int no_punch;    /* punch fails with EOPNOTSUPP */
} watch;

static watch w;

static int w_fdatasync(void *ctx, int fd)
{
    if (w.fail_sync) {
        errno = EIO;
        return -1;
    }
    w.syncs++;
    return bs_io_posix.fdatasync(ctx, fd);
}

static int w_punch(void *ctx, int fd, off_t off, off_t len)
{
    if (w.no_punch) {
        errno = EOPNOTSUPP;
        return -1;
    }
    if (w.first_punch < 0)
        w.first_punch = w.syncs;
    w.punches++;
    return bs_io_posix.punch(ctx, fd, off, len);
}

static bs_store *open_watched(const char *dir, bs_io *io)
{
    *io = bs_io_posix;
    io->fdatasync = w_fdatasync;
    io->punch = w_punch;
    memset(&w, 0, sizeof(w));
    w.first_punch = -1;
    bs_options opt = {.segment_max = 1u << 20, .compact_rate = -1, .io = io, .punch_wait_ms = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    return bs;
}

/* The process dies after deletes, before they were punched: the next open punches them. */
static void test_punch_left_by_crash(void)
{
    const char *dir = test_dir("leftover");
    int punch = can_punch();
    bs_store *bs = fill_and_delete(dir);
    bs_close(bs);
    uint64_t before = disk_used(dir), deleted = (NBLOBS / 2) * (uint64_t)BLOB;
    bs_io io;
    bs = open_watched(dir, &io);
    int at_open = w.syncs;
    CU_ASSERT_EQUAL(disk_used(dir), before);
    punch_all(bs);
    CU_ASSERT(w.punches >= (int)(NBLOBS / 2));
    CU_ASSERT(w.first_punch > at_open); /* the tombstones recovery read were synced first */
    uint64_t after = disk_used(dir);
    printf("\n  punched after a reopen: %llu -> %llu bytes on disk\n", (unsigned long long)before,
           (unsigned long long)after);
    if (punch)
        CU_ASSERT(before - after >= deleted - (NBLOBS / 2) * 4 * 4096ull);
    bs_close(bs);
    bs = open_store(dir);
    CU_ASSERT_EQUAL(bs->holes.n - bs->holes.head, 0); /* holes already there are not queued */
    for (uint32_t t = 1; t <= NBLOBS; t++)
        CU_ASSERT_EQUAL(check(bs, t, BLOB), t % 2 ? 1 : -1);
    bs_close(bs);
}

static void test_punch_after_durable_tombstone(void)
{
    bs_io io;
    bs_store *bs = open_watched(test_dir("order"), &io);
    CU_ASSERT_EQUAL(put(bs, 1, BLOB), CM_OK);
    CU_ASSERT_EQUAL(put(bs, 2, BLOB), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    CU_ASSERT_EQUAL(del(bs, 1), CM_OK);
    int synced = w.syncs;
    w.fail_sync = 1; /* the tombstone cannot be made durable: no hole */
    CU_ASSERT_EQUAL(bs_punch_dead(bs), CM_ERR_IO);
    CU_ASSERT_EQUAL(w.punches, 0);
    bs_close(bs);

    bs = open_watched(test_dir("order"), &io);
    CU_ASSERT_EQUAL(check(bs, 1, BLOB), -1); /* the unsynced delete happened (page cache) */
    CU_ASSERT_EQUAL(del(bs, 2), CM_OK);
    synced = w.syncs;
    punch_all(bs);
    CU_ASSERT(w.punches >= 1);
    CU_ASSERT(w.first_punch > synced); /* an fdatasync after the delete came first */
    bs_close(bs);
}

static void test_crash_with_holes(void)
{
    const char *dir = test_dir("crash");
    int punch = can_punch();
    bs_store *bs = fill_and_delete(dir);
    punch_all(bs);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT(!punch || st.punched_bytes > 0);
    /* More work that no sync covers, then the process dies mid-append: a torn record. */
    CU_ASSERT_EQUAL(put(bs, 100, BLOB), CM_OK);
    CU_ASSERT_EQUAL(del(bs, 1), CM_OK);
    bs_close(bs);
    uint32_t *nums = NULL;
    size_t n = 0;
    CU_ASSERT_FATAL(bs_list_segments(dir, &nums, &n) == CM_OK && n > 0);
    char last[1024];
    snprintf(last, sizeof(last), "%s/seg-%08u.cbs", dir, nums[n - 1]);
    free(nums);
    int fd = open(last, O_WRONLY | O_APPEND);
    CU_ASSERT_FATAL(fd >= 0);
    static const uint8_t torn[40] = {0x43, 0x42, 0x52, 0x43, 1};
    CU_ASSERT(write(fd, torn, sizeof(torn)) == (ssize_t)sizeof(torn));
    close(fd);

    uint64_t punched = st.punched_bytes;
    bs = open_store(dir);
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.corrupt_found, 0);
    /* the holes of the last run are counted again (from st_blocks) */
    CU_ASSERT(!punch || st.disk_bytes - st.used_bytes >= punched - 4096);
    CU_ASSERT_EQUAL(st.blobs, NBLOBS / 2); /* odd tags but 1, and 100 */
    CU_ASSERT_EQUAL(check(bs, 1, BLOB), -1);
    CU_ASSERT_EQUAL(check(bs, 100, BLOB), 1);
    for (uint32_t t = 2; t <= NBLOBS; t++)
        CU_ASSERT_EQUAL(check(bs, t, BLOB), t % 2 ? 1 : -1);
    bs_close(bs);

    bs_fsck_report r;
    CU_ASSERT_EQUAL_FATAL(bs_fsck(dir, 0, NULL, NULL, &r), CM_OK);
    CU_ASSERT(!r.bad_blocks && !r.bad_regions && !r.bad_headers && !r.torn_bytes);
    CU_ASSERT_EQUAL(r.bad_live_blobs, 0);
    CU_ASSERT_EQUAL(r.live_blobs, NBLOBS / 2);
    CU_ASSERT(!punch || r.punched >= NBLOBS / 2);

    /* Compaction walks the holed segments (dead records skipped) and removes them. */
    bs_options opt = {
        .segment_max = 1u << 20, .compact_rate = -1, .compact_pct = 99, .punch_wait_ms = -1};
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    cm_err e;
    int steps = 0;
    while ((e = bs_compact_step(bs, 1u << 20)) == CM_AGAIN && steps++ < 1000)
        ;
    CU_ASSERT_EQUAL(e, CM_OK);
    bs_get_stats(bs, &st);
    CU_ASSERT(st.compacted >= 1);
    CU_ASSERT_EQUAL(st.corrupt_found, 0);
    bs_close(bs);
    bs = open_store(dir);
    CU_ASSERT_EQUAL(check(bs, 100, BLOB), 1);
    for (uint32_t t = 1; t <= NBLOBS; t++)
        CU_ASSERT_EQUAL(check(bs, t, BLOB), t % 2 && t != 1 ? 1 : -1);
    bs_close(bs);
    CU_ASSERT_EQUAL_FATAL(bs_fsck(dir, 0, NULL, NULL, &r), CM_OK);
    CU_ASSERT(!r.bad_blocks && !r.bad_regions && !r.bad_headers && !r.bad_live_blobs);
}

static void test_zeroed_live_blob(void)
{
    const char *dir = test_dir("zeroed");
    if (!can_punch())
        return;
    bs_store *bs = open_store(dir);
    CU_ASSERT_EQUAL(put(bs, 7, BLOB), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_close(bs);
    /* Zeros exactly where a hole would go, but the blob was never deleted: data lost. */
    uint64_t off = 0, len = 0;
    bs_punch_range(BS_SEG_HDR, BLOB, &off, &len);
    char path[1024];
    snprintf(path, sizeof(path), "%s/seg-00000001.cbs", dir);
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(bs_io_posix.punch(NULL, fd, (off_t)off, (off_t)len), 0);
    close(fd);
    bs_fsck_report r;
    CU_ASSERT_EQUAL_FATAL(bs_fsck(dir, 0, NULL, NULL, &r), CM_OK);
    CU_ASSERT(r.bad_blocks >= 3);
    CU_ASSERT_EQUAL(r.bad_live_blobs, 1);
    CU_ASSERT_EQUAL(r.punched, 0);
}

static void test_no_punch_support(void)
{
    bs_io io;
    const char *dir = test_dir("nopunch");
    bs_store *bs = open_watched(dir, &io);
    w.no_punch = 1;
    for (uint32_t t = 1; t <= 4; t++)
        CU_ASSERT_EQUAL(put(bs, t, BLOB), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    CU_ASSERT_EQUAL(del(bs, 1), CM_OK);
    CU_ASSERT_EQUAL(bs_punch_dead(bs), CM_OK);
    CU_ASSERT_EQUAL(bs->holes.disabled, 1);
    CU_ASSERT_EQUAL(del(bs, 2), CM_OK);
    CU_ASSERT_EQUAL(bs->holes.n, 0); /* no longer queued */
    CU_ASSERT_EQUAL(bs_punch_dead(bs), CM_OK);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.punched_bytes, 0);
    CU_ASSERT_EQUAL(st.used_bytes, st.disk_bytes);
    CU_ASSERT(st.reclaimable_bytes >= 2ull * BLOB);
    CU_ASSERT_EQUAL(check(bs, 3, BLOB), 1);
    CU_ASSERT_EQUAL(check(bs, 4, BLOB), 1);
    bs_close(bs);
    bs_fsck_report r;
    CU_ASSERT_EQUAL_FATAL(bs_fsck(dir, 0, NULL, NULL, &r), CM_OK);
    CU_ASSERT(!r.bad_blocks && !r.bad_regions && !r.bad_live_blobs && !r.punched);
}

/* A disk so full that not even a 48-byte tombstone fits: deletes use the reserve. */
static void test_delete_on_full_disk(void)
{
    fio *f = fio_new(SEED);
    bs_options opt = {
        .segment_max = 1u << 20, .compact_rate = -1, .io = fio_io(f), .punch_wait_ms = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(test_dir("full"), &opt, &bs) == CM_OK);
    fio_set_capacity(f, fio_used(f) + 300 * 1024);
    uint32_t n = 0, empty = 1000;
    while (n < 100 && put(bs, n + 1, 20000) == CM_OK)
        n++;
    while (empty < 2000 && put(bs, empty, 0) == CM_OK) /* 48-byte records fill the rest */
        empty++;
    CU_ASSERT(n >= 5 && n < 100 && empty < 2000);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    printf("\n  full after %u blobs and %u empty ones; %llu bytes used of the capacity\n", n,
           empty - 1000, (unsigned long long)fio_used(f));
    for (uint32_t t = 1; t <= 5; t++)
        CU_ASSERT_EQUAL(del(bs, t), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_close(bs);
    fio_set_capacity(f, 0);
    CU_ASSERT_FATAL(bs_open(test_dir("full"), &opt, &bs) == CM_OK);
    for (uint32_t t = 1; t <= n; t++)
        CU_ASSERT_EQUAL(check(bs, t, 20000), t <= 5 ? -1 : 1);
    bs_close(bs);
    fio_free(f);
}

/* ---- crash points around punching: the fault io with a punch that it models as zeros ---- */

#define CBLOB 20000u /* whole 4 KiB pages inside, so every record gets a hole */

static fio *crash_fio;

/* For the crash model a hole is a write of zeros: lost or kept like any unsynced write. */
static int zero_punch(void *ctx, int fd, off_t off, off_t len)
{
    static const uint8_t zeros[CBLOB];
    const bs_io *io = fio_io(crash_fio);
    while (len > 0) {
        size_t n = (size_t)CM_MIN((off_t)sizeof(zeros), len);
        if (io->pwrite(ctx, fd, zeros, n, off) != (ssize_t)n)
            return -1;
        off += (off_t)n;
        len -= (off_t)n;
    }
    return 0;
}

typedef struct {
    uint64_t synced;  /* calls done when blobs 1..6 were durable */
    uint64_t punched; /* calls done when the deletes of 2 and 4 were durable and punched */
    uint64_t total;
} marks;

static void punch_workload(bs_store *bs, fio *f, marks *m)
{
    for (uint32_t t = 1; t <= 6; t++)
        put(bs, t, CBLOB);
    cm_err e = bs_sync(bs);
    m->synced = e == CM_OK ? fio_ops(f) : UINT64_MAX;
    del(bs, 2);
    del(bs, 4);
    e = bs_punch_dead(bs);
    m->punched = e == CM_OK ? fio_ops(f) : UINT64_MAX;
    put(bs, 7, CBLOB);
    del(bs, 1);
    put(bs, 8, CBLOB);
    bs_sync(bs);
    bs_punch_dead(bs);
    del(bs, 3); /* never synced */
    m->total = fio_ops(f);
}

/* Crash at call k (0 = none), reboot, reopen, check; returns the number of violations. */
static int punch_crash_run(const char *dir, uint64_t k, fio_crash_mode mode, marks *m)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (de->d_name[0] != '.')
            unlink(p);
    }
    if (d)
        closedir(d);
    fio *f = crash_fio = fio_new(SEED ^ k);
    bs_io io = *fio_io(f);
    io.punch = zero_punch;
    bs_options opt = {.segment_max = 64 * 1024, .io = &io, .compact_rate = -1, .punch_wait_ms = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    fio_crash_at(f, k);
    punch_workload(bs, f, m);
    bs_close(bs);
    fio_reboot(f, mode);
    int bad = 0;
    bs = open_store(dir);
    for (uint32_t t = 1; t <= 8; t++) {
        int whole = check(bs, t, CBLOB), some = check_blob(bs, t, CBLOB, 1), ok = some != 0;
        if (t <= 6 && k != 0 && k <= m->synced)
            continue; /* never covered by a sync: anything recovery can make of it */
        if (t >= 7 && mode == FIO_KEEP_SOME)
            continue; /* unsynced appends may show holes in this model (bs.h) */
        if (t == 5 || t == 6)
            ok = whole == 1;
        else if ((t == 2 || t == 4) && (k == 0 || k > m->punched))
            ok = whole == -1;
        if (!ok) {
            fprintf(stderr, "crash at call %llu (mode %d): blob %u reads %d (whole %d)\n",
                    (unsigned long long)k, (int)mode, t, some, whole);
            bad++;
        }
    }
    bs_stats st;
    bs_get_stats(bs, &st);
    if (mode == FIO_DROP_UNSYNCED && st.corrupt_found) {
        fprintf(stderr, "crash at call %llu: %llu corruptions at recovery\n", (unsigned long long)k,
                (unsigned long long)st.corrupt_found);
        bad++;
    }
    bs_close(bs);
    fio_free(f);
    return bad;
}

static void test_crash_points_punch(void)
{
    const char *dir = test_dir("crashpunch");
    mkdir(dir, 0755);
    for (int mode = FIO_DROP_UNSYNCED; mode <= FIO_KEEP_SOME; mode++) {
        marks m;
        CU_ASSERT_EQUAL(punch_crash_run(dir, 0, (fio_crash_mode)mode, &m), 0);
        CU_ASSERT(m.punched < m.total && m.synced < m.punched);
        int bad = 0;
        uint64_t total = m.total;
        for (uint64_t k = 1; k <= total; k++)
            bad += punch_crash_run(dir, k, (fio_crash_mode)mode, &m) != 0;
        printf("\n  crash points around punching (%s): %llu tried, %d failed\n",
               mode == FIO_DROP_UNSYNCED ? "drop unsynced" : "keep random unsynced",
               (unsigned long long)total, bad);
        CU_ASSERT_EQUAL(bad, 0);
    }
}

void cu_register(void)
{
    printf("test_blobstore_reclaim seed %u\n", SEED);
    cm_log_threshold = -1;
    static const cu_test tests[] = {
        {"punch_after_delete", test_punch_after_delete},
        {"punch_after_durable_tombstone", test_punch_after_durable_tombstone},
        {"crash_with_holes", test_crash_with_holes},
        {"punch_left_by_crash", test_punch_left_by_crash},
        {"punch_waits_for_segment", test_punch_waits_for_segment},
        {"zeroed_live_blob", test_zeroed_live_blob},
        {"no_punch_support", test_no_punch_support},
        {"delete_on_full_disk", test_delete_on_full_disk},
        {"crash_points_punch", test_crash_points_punch},
        {NULL, NULL}};
    cu_add_suite("blobstore_reclaim", tests);
}
