/*
 * test_blobstore_cached.c - bs_read_cached, an event loop's read that never waits on the disk:
 * what the page cache holds reads as bs_read does; a range whose pages were dropped from the
 * cache, rot, a short segment and a test's I/O table are CM_AGAIN, with nothing logged or counted
 * (the blocking read that follows on a worker reports it, once). bs_cached, the question a loop
 * asks before it sends a range by sendfile, by cachestat and by its probing fallback.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bs.h"
#include "bs_int.h"
#include "cm_util.h"
#include "cu_data.h"
#include "cu_main.h"

#define LEN (4 * 65536 + 1000) /* four whole blocks and a cut one */

static char *test_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", cu_tmpdir(), name);
    return path;
}

static int pattern_ok(const uint8_t *buf, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != cu_pattern(0, 1, off + i))
            return 0;
    return 1;
}

/* The POSIX table without the drop of synced pages (whose background thread would race the
 * tests' reads from the cache): still bs_io_posix's pread, so cached reads are on. */
static bs_io keep_io;
static const bs_options keep = {.io = &keep_io};

/* A store in dir holding blob 1: LEN pattern bytes, durable. */
static bs_store *store_with_blob(const char *dir, const bs_options *o)
{
    keep_io = bs_io_posix;
    keep_io.drop = NULL;
    if (!o)
        o = &keep;
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, o, &bs) == CM_OK);
    uint8_t *buf = malloc(LEN);
    CU_ASSERT_FATAL(buf != NULL);
    for (size_t i = 0; i < LEN; i++)
        buf[i] = cu_pattern(0, 1, i);
    bs_id id = cu_tag_id(1, 0x5A);
    CU_ASSERT_FATAL(bs_append(bs, &id, 0, buf, LEN) == CM_OK);
    CU_ASSERT_FATAL(bs_sync(bs) == CM_OK);
    free(buf);
    return bs;
}

static uint64_t corrupt_found(bs_store *bs)
{
    bs_stats st;
    bs_get_stats(bs, &st);
    return st.corrupt_found;
}

static void seg_path(const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "%s/seg-%08u.cbs", dir, 1u);
}

/* Drop the segment's clean pages from the page cache until blob 1 is out of it (a page just
 * written back may take a moment to let go); 0 when this file system keeps them (tmpfs holds its
 * pages in memory: nothing is ever read from a disk there). */
static int drop_pages(const char *dir, bs_store *bs)
{
    char path[600];
    struct statfs fs;
    bs_id id = cu_tag_id(1, 0x5A);
    seg_path(dir, path, sizeof(path));
    if (statfs(path, &fs) != 0 || fs.f_type == BS_TMPFS_MAGIC)
        return 0;
    int fd = open(path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    for (int i = 0; i < 100 && bs_cached(bs, &id, 0, LEN); i++) {
        CU_ASSERT_EQUAL(fdatasync(fd), 0);
        CU_ASSERT_EQUAL(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
        if (bs_cached(bs, &id, 0, LEN))
            usleep(10 * 1000); /* bounded: 100 tries */
    }
    close(fd);
    return 1;
}

/* Cached pages read as bs_read reads them, whole blocks and cut ones, and an unknown blob or a
 * range past the end is still CM_ERR_NOTFOUND. Dropped pages are CM_AGAIN until a blocking
 * read brings them back. */
static void test_page_cache(void)
{
    const char *dir = test_dir("cache");
    bs_store *bs = store_with_blob(dir, NULL);
    bs_id id = cu_tag_id(1, 0x5A), other = cu_tag_id(2, 0x5A);
    uint8_t *buf = malloc(LEN);
    CU_ASSERT_FATAL(buf != NULL);
    CU_ASSERT_EQUAL(bs_read_cached(bs, &id, 0, buf, LEN), CM_OK);
    CU_ASSERT(pattern_ok(buf, 0, LEN));
    CU_ASSERT_EQUAL(bs_read_cached(bs, &id, 65536 + 7, buf, 100000), CM_OK);
    CU_ASSERT(pattern_ok(buf, 65536 + 7, 100000));
    CU_ASSERT_EQUAL(bs_read_cached(bs, &other, 0, buf, 10), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(bs_read_cached(bs, &id, LEN - 5, buf, 10), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(bs_cached(bs, &id, 0, LEN), 1);
    CU_ASSERT_EQUAL(bs_cached(bs, &other, 0, 10), 1); /* the read answers it at once */
    if (drop_pages(dir, bs)) {
        for (int probe = 0; probe < 2; probe++) { /* cachestat, then one byte per block */
            bs_no_cachestat = probe;
            CU_ASSERT_EQUAL(bs_cached(bs, &id, 0, LEN), 0);
            CU_ASSERT_EQUAL(bs_cached(bs, &id, 3 * 65536 + 5, 60000), 0);
        }
        CU_ASSERT_EQUAL(bs_read_cached(bs, &id, 0, buf, LEN), CM_AGAIN);
        CU_ASSERT_EQUAL(bs_read(bs, &id, 0, buf, LEN), CM_OK); /* the worker's read */
        CU_ASSERT(pattern_ok(buf, 0, LEN));
        memset(buf, 0, LEN);
        CU_ASSERT_EQUAL(bs_read_cached(bs, &id, 0, buf, LEN), CM_OK); /* cached again */
        CU_ASSERT(pattern_ok(buf, 0, LEN));
        for (int probe = 0; probe < 2; probe++) {
            bs_no_cachestat = probe;
            CU_ASSERT_EQUAL(bs_cached(bs, &id, 0, LEN), 1);
            CU_ASSERT_EQUAL(bs_cached(bs, &id, 3 * 65536 + 5, 60000), 1);
        }
        bs_no_cachestat = 0;
    } else {
        fprintf(stderr, "test_page_cache: %s is on tmpfs: the dropped-pages case is not run\n",
                dir);
    }
    CU_ASSERT_EQUAL(corrupt_found(bs), 0);
    free(buf);
    bs_close(bs);
}

/* A rotten block is CM_AGAIN to the cached read, not logged or counted; the blocking read finds
 * it CM_ERR_CORRUPT and counts it once. The blocks around it still read from the cache. */
static void test_rot(void)
{
    const char *dir = test_dir("rot");
    bs_store *bs = store_with_blob(dir, NULL);
    bs_close(bs);
    char path[600];
    seg_path(dir, path, sizeof(path));
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    off_t at = BS_SEG_HDR + BS_REC_HDR + 4 * 5 + 2 * 65536 + 99; /* in block 2 */
    uint8_t c = 0;
    CU_ASSERT_FATAL(pread(fd, &c, 1, at) == 1);
    c ^= 0x10;
    CU_ASSERT_FATAL(pwrite(fd, &c, 1, at) == 1);
    close(fd);
    CU_ASSERT_FATAL(bs_open(dir, &keep, &bs) == CM_OK);
    bs_id id = cu_tag_id(1, 0x5A);
    uint8_t *buf = malloc(LEN);
    CU_ASSERT_FATAL(buf != NULL);
    CU_ASSERT_EQUAL(bs_read(bs, &id, 0, buf, LEN), CM_ERR_CORRUPT); /* and the pages cached */
    CU_ASSERT_EQUAL(corrupt_found(bs), 1);
    CU_ASSERT_EQUAL(bs_read_cached(bs, &id, 2 * 65536, buf, 10), CM_AGAIN);
    CU_ASSERT_EQUAL(bs_read_cached(bs, &id, 0, buf, LEN), CM_AGAIN);
    CU_ASSERT_EQUAL(corrupt_found(bs), 1);
    CU_ASSERT_EQUAL(bs_read_cached(bs, &id, 0, buf, 2 * 65536), CM_OK);
    CU_ASSERT(pattern_ok(buf, 0, 2 * 65536));
    CU_ASSERT_EQUAL(bs_read_cached(bs, &id, 3 * 65536, buf, LEN - 3 * 65536), CM_OK);
    CU_ASSERT(pattern_ok(buf, 3 * 65536, LEN - 3 * 65536));
    CU_ASSERT_EQUAL(bs_read(bs, &id, 2 * 65536, buf, 10), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(corrupt_found(bs), 2);
    free(buf);
    bs_close(bs);
}

/* A segment cut short under the store (the index names bytes the file no longer has): CM_AGAIN,
 * and the blocking read reports the short segment as corrupt. */
static void test_short_segment(void)
{
    const char *dir = test_dir("short");
    bs_store *bs = store_with_blob(dir, NULL);
    char path[600];
    seg_path(dir, path, sizeof(path));
    CU_ASSERT_FATAL(truncate(path, BS_SEG_HDR + BS_REC_HDR + 4 * 5 + 65536) == 0);
    bs_id id = cu_tag_id(1, 0x5A);
    uint8_t *buf = malloc(LEN);
    CU_ASSERT_FATAL(buf != NULL);
    CU_ASSERT_EQUAL(bs_read_cached(bs, &id, 0, buf, LEN), CM_AGAIN);
    CU_ASSERT_EQUAL(corrupt_found(bs), 0);
    CU_ASSERT_EQUAL(bs_read(bs, &id, 0, buf, LEN), CM_ERR_CORRUPT);
    free(buf);
    bs_close(bs);
}

static int counted_preads;

static ssize_t counting_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    (void)ctx;
    counted_preads++;
    return pread(fd, buf, len, off);
}

/* A store on a test's I/O table: its reads are never bypassed, so the cached read is CM_AGAIN
 * without reading anything, and bs_read goes through the table. */
static void test_other_io(void)
{
    bs_io io = bs_io_posix;
    io.pread = counting_pread;
    io.drop = NULL;
    bs_options o = {.io = &io};
    bs_store *bs = store_with_blob(test_dir("io"), &o);
    bs_id id = cu_tag_id(1, 0x5A);
    uint8_t buf[100];
    int before = counted_preads;
    CU_ASSERT_EQUAL(bs_read_cached(bs, &id, 0, buf, sizeof(buf)), CM_AGAIN);
    CU_ASSERT_EQUAL(bs_cached(bs, &id, 0, sizeof(buf)), 1); /* its reads go where they did */
    CU_ASSERT_EQUAL(counted_preads, before);
    CU_ASSERT_EQUAL(bs_read(bs, &id, 0, buf, sizeof(buf)), CM_OK);
    CU_ASSERT(counted_preads > before);
    CU_ASSERT(pattern_ok(buf, 0, sizeof(buf)));
    bs_close(bs);
}

/* A store on tmpfs (/dev/shm here), which refuses RWF_NOWAIT and never waits on a disk: the
 * cached read is a plain read there, and everything counts as cached. (Skipped without a tmpfs
 * /dev/shm.) */
static void test_memory_fs(void)
{
    struct statfs fs;
    char dir[128];
    if (statfs("/dev/shm", &fs) != 0 || fs.f_type != BS_TMPFS_MAGIC) {
        fprintf(stderr, "test_memory_fs: no tmpfs at /dev/shm: not run\n");
        return;
    }
    snprintf(dir, sizeof(dir), "/dev/shm/cairn-cached-%d", (int)getpid());
    bs_store *bs = store_with_blob(dir, NULL);
    bs_id id = cu_tag_id(1, 0x5A);
    uint8_t *buf = malloc(LEN);
    CU_ASSERT_FATAL(buf != NULL);
    CU_ASSERT_EQUAL(bs_read_cached(bs, &id, 0, buf, LEN), CM_OK);
    CU_ASSERT(pattern_ok(buf, 0, LEN));
    CU_ASSERT_EQUAL(bs_cached(bs, &id, 0, LEN), 1);
    free(buf);
    bs_close(bs);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"page_cache", test_page_cache},       {"rot", test_rot},
        {"short_segment", test_short_segment}, {"other_io", test_other_io},
        {"memory_fs", test_memory_fs},         {NULL, NULL}};
    cu_add_suite("blobstore_cached", tests);
}
