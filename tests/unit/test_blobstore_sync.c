/*
 * test_blobstore_sync.c - what a failed fdatasync leaves behind, through the fault-injecting io
 * table (faultio.c), whose failed fdatasync drops the file's unsynced writes as Linux does.
 *
 *   - sticky: after one failed sync round, no later bs_sync reports the lost appends durable,
 *     the store refuses new appends, and bs_error says why;
 *   - concurrent writers: of many threads that append and sync while one round fails, every one
 *     told CM_OK finds its blob after a crash;
 *   - early writeback: when the I/O a bs_writeback started fails, the next sync round fails and
 *     the store seals itself; what was durable before is kept, the lost blob is gone after a
 *     restart, and the restarted store syncs again;
 *   - compaction: a failed sync of the copies keeps the source segment (no acknowledged blob is
 *     lost when the copies were not durable).
 * And the other durability details of the on-disk format:
 *   - a drive directory bs_open creates has its parent directory synced;
 *   - a bad record before the synced-up-to mark of the last segment is corruption (counted,
 *     kept, segment sealed), a bad tail past it is a torn tail (cut, not counted);
 *   - record-header CRCs are salted: a header forged inside client data is never taken for one;
 *   - a version 1 store (no salt, no mark) stays readable and compacts into version 2 segments.
 * Seeds are fixed and printed.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
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

#define SEED 777u
#define MARK 0xD7

static const char *fresh_dir(const char *name)
{
    static char path[512];
    char p[1024];
    snprintf(path, sizeof(path), "%s/%s", cu_tmpdir(), name);
    DIR *d = opendir(path);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
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

static int intact(bs_store *bs, uint32_t tag, size_t len)
{
    uint8_t *buf = malloc(len);
    bs_id id = cu_tag_id(tag, MARK);
    uint64_t size = 0;
    int ok =
        bs_size(bs, &id, &size) == CM_OK && size == len && bs_read(bs, &id, 0, buf, len) == CM_OK;
    for (size_t i = 0; ok && i < len; i++)
        ok = buf[i] == cu_pattern(SEED, tag, i);
    free(buf);
    return ok;
}

/* Fail the next fdatasync call with EIO (once). */
static void fail_next_sync(fio *f)
{
    fio_fail_nth(f, FIO_SYNC, fio_kind_ops(f, FIO_SYNC) + 1, EIO, 0);
}

static void test_sticky(void)
{
    const char *dir = fresh_dir("sticky");
    fio *f = fio_new(SEED);
    bs_options opt = {.io = fio_io(f), .compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 5000), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    CU_ASSERT_EQUAL(bs_error(bs), CM_OK);
    CU_ASSERT_EQUAL(put(bs, 2, 7000), CM_OK);
    fail_next_sync(f);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_ERR_IO);
    /* The retry's fdatasync succeeds, but the pages of blob 2 are gone: it must not say OK. */
    CU_ASSERT_EQUAL(bs_sync(bs), CM_ERR_IO);
    CU_ASSERT_EQUAL(bs_error(bs), CM_ERR_IO);
    CU_ASSERT_EQUAL(put(bs, 3, 100), CM_ERR_IO); /* sealed: nothing more is taken */
    bs_id id1 = cu_tag_id(1, MARK);
    CU_ASSERT_EQUAL(bs_delete(bs, &id1), CM_ERR_IO);
    CU_ASSERT(intact(bs, 1, 5000)); /* reads of what was durable go on */
    bs_close(bs);
    fio_reboot(f, FIO_DROP_UNSYNCED);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT(intact(bs, 1, 5000));
    CU_ASSERT_EQUAL(bs_error(bs), CM_OK); /* a restart starts healthy */
    bs_close(bs);
    fio_free(f);
}

/*
 * Early writeback (bs_writeback) is a sync_file_range whose result the store ignores. When the
 * I/O it started fails, Linux reports it at the file's next fdatasync (once) and the pages are
 * gone: that fdatasync must fail the round, nothing appended since the last good round may be
 * reported durable, and the store seals itself as after any failed fdatasync. A writeback whose
 * I/O succeeds changes nothing that a sync would not.
 */
static void test_writeback_failure(void)
{
    const char *dir = fresh_dir("wbfail");
    fio *f = fio_new(SEED);
    fio_enable_writeback(f);
    bs_options opt = {.io = fio_io(f), .compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 5000), CM_OK);
    uint64_t wb = fio_writeback_calls(f);
    bs_writeback(bs); /* pushed, and its I/O goes well */
    CU_ASSERT_EQUAL(fio_writeback_calls(f), wb + 1);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    CU_ASSERT_EQUAL(put(bs, 2, 70000), CM_OK);
    fio_fail_writeback(f, fio_writeback_calls(f) + 1);
    bs_writeback(bs);
    CU_ASSERT_EQUAL(fio_writeback_calls(f), wb + 2); /* blob 2's bytes went to the failing I/O */
    CU_ASSERT_EQUAL(bs_sync(bs), CM_ERR_IO);         /* and the fdatasync after it says so */
    CU_ASSERT_EQUAL(bs_sync(bs), CM_ERR_IO); /* a retry's fdatasync succeeds: still not OK */
    CU_ASSERT_EQUAL(bs_error(bs), CM_ERR_IO);
    CU_ASSERT_EQUAL(put(bs, 3, 100), CM_ERR_IO);
    CU_ASSERT(intact(bs, 1, 5000));
    bs_close(bs);
    fio_reboot(f, FIO_KEEP_SOME);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT(intact(bs, 1, 5000)); /* what was durable before stays */
    bs_id id2 = cu_tag_id(2, MARK);
    uint64_t size = 0;
    CU_ASSERT_NOT_EQUAL(bs_size(bs, &id2, &size), CM_OK); /* its pages were dropped */
    CU_ASSERT_EQUAL(bs_error(bs), CM_OK);
    CU_ASSERT_EQUAL(put(bs, 4, 9000), CM_OK); /* and the store takes writes again */
    bs_writeback(bs);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_close(bs);
    fio_reboot(f, FIO_DROP_UNSYNCED);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT(intact(bs, 1, 5000));
    CU_ASSERT(intact(bs, 4, 9000));
    bs_close(bs);
    fio_free(f);
}

#define NTHREADS 8
#define PER_THREAD 12

static pthread_barrier_t appended;

typedef struct {
    bs_store *bs;
    uint32_t base;
    cm_err res[PER_THREAD];
} writer_arg;

/* Each turn: every thread appends, waits for the others, then syncs, so rounds share writers. */
static void *writer(void *p)
{
    writer_arg *a = p;
    for (uint32_t i = 0; i < PER_THREAD; i++) {
        a->res[i] = put(a->bs, a->base + i, 3000 + 17 * i);
        pthread_barrier_wait(&appended);
        if (a->res[i] == CM_OK)
            a->res[i] = bs_sync(a->bs);
    }
    return NULL;
}

static void test_concurrent_writers(void)
{
    const char *dir = fresh_dir("writers");
    fio *f = fio_new(SEED + 1);
    bs_options opt = {.io = fio_io(f),
                      .compact_rate = -1}; /* one segment: every sync is a file's */
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    fio_fail_nth(f, FIO_SYNC, fio_kind_ops(f, FIO_SYNC) + 9, EIO, 0);
    pthread_barrier_init(&appended, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    static writer_arg args[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        args[t] = (writer_arg){bs, (uint32_t)t * 100, {CM_OK}};
        pthread_create(&th[t], NULL, writer, &args[t]);
    }
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&appended);
    CU_ASSERT_EQUAL(bs_error(bs), CM_ERR_IO);
    bs_close(bs);
    fio_reboot(f, FIO_DROP_UNSYNCED);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    int acked = 0, failed = 0, lost = 0;
    for (int t = 0; t < NTHREADS; t++) {
        for (uint32_t i = 0; i < PER_THREAD; i++) {
            if (args[t].res[i] != CM_OK) {
                failed++;
                continue;
            }
            acked++;
            lost += !intact(bs, args[t].base + i, 3000 + 17 * i);
        }
    }
    printf("\n  %d writes acknowledged, %d refused, %d acknowledged but lost (seed %u)\n", acked,
           failed, lost, SEED + 1);
    CU_ASSERT(failed > 0);
    CU_ASSERT_EQUAL(lost, 0);
    bs_close(bs);
    fio_free(f);
}

static int seg_exists(const char *dir, uint32_t n)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/seg-%08u.cbs", dir, n);
    return access(p, F_OK) == 0;
}

static void test_compaction_keeps_source(void)
{
    const char *dir = fresh_dir("compact");
    fio *f = fio_new(SEED + 2);
    bs_options opt = {
        .io = fio_io(f), .compact_rate = -1, .segment_max = 32 * 1024, .compact_pct = 60};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    /* segment 1: blobs 1 (kept) and 2 (deleted); then segment 2 is the active one */
    CU_ASSERT_EQUAL(put(bs, 1, 6000), CM_OK);
    CU_ASSERT_EQUAL(put(bs, 2, 20000), CM_OK);
    CU_ASSERT_EQUAL(put(bs, 3, 20000), CM_OK);
    bs_id id2 = cu_tag_id(2, MARK);
    CU_ASSERT_EQUAL(bs_delete(bs, &id2), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    CU_ASSERT_FATAL(seg_exists(dir, 1) && seg_exists(dir, 2));
    /* The compaction walk copies blob 1 into segment 2; a writer's sync of it then fails. */
    CU_ASSERT_EQUAL(bs_compact_step(bs, 100), CM_AGAIN);
    CU_ASSERT_EQUAL(put(bs, 4, 100), CM_OK);
    fail_next_sync(f);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_ERR_IO);
    cm_err e = CM_AGAIN;
    for (int i = 0; i < 100 && e == CM_AGAIN; i++)
        e = bs_compact_step(bs, 1 << 20);
    CU_ASSERT_NOT_EQUAL(e, CM_OK);
    CU_ASSERT(seg_exists(dir, 1)); /* the only durable copy of blob 1 */
    bs_close(bs);
    fio_reboot(f, FIO_DROP_UNSYNCED);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT(intact(bs, 1, 6000));
    CU_ASSERT(intact(bs, 3, 20000));
    bs_close(bs);
    fio_free(f);
}

static void test_mkdir_syncs_parent(void)
{
    char parent[512], dir[600];
    snprintf(parent, sizeof(parent), "%s/mkparent", cu_tmpdir());
    snprintf(dir, sizeof(dir), "%s/drive0", parent);
    CU_ASSERT_FATAL(mkdir(parent, 0755) == 0);
    fio *f = fio_new(SEED + 3);
    bs_options opt = {.io = fio_io(f), .compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT(fio_dir_synced(f, parent)); /* the new drive0 entry is durable */
    bs_close(bs);
    fio_free(f);
}

static uint64_t file_size(const char *dir, uint32_t n)
{
    char p[1024];
    struct stat st;
    snprintf(p, sizeof(p), "%s/seg-%08u.cbs", dir, n);
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void flip(const char *dir, uint32_t n, uint64_t off)
{
    char p[1024];
    uint8_t c = 0;
    snprintf(p, sizeof(p), "%s/seg-%08u.cbs", dir, n);
    FILE *fp = fopen(p, "r+b");
    CU_ASSERT_FATAL(fp != NULL);
    CU_ASSERT_FATAL(fseek(fp, (long)off, SEEK_SET) == 0 && fread(&c, 1, 1, fp) == 1);
    c ^= 0x04;
    CU_ASSERT_FATAL(fseek(fp, (long)off, SEEK_SET) == 0 && fwrite(&c, 1, 1, fp) == 1);
    fclose(fp);
}

/* Three synced blobs; then the last record's header goes bad: corruption, not a torn tail. */
static void test_corruption_before_mark(void)
{
    const char *dir = fresh_dir("mark");
    bs_options opt = {.compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    for (uint32_t t = 1; t <= 3; t++) {
        CU_ASSERT_EQUAL(put(bs, t, 3000), CM_OK);
        CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    }
    bs_close(bs);
    uint64_t size = file_size(dir, 1);
    flip(dir, 1, BS_SEG_HDR + 2 * bs_rec_size(3000) + 10);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.corrupt_found, 1);
    CU_ASSERT_EQUAL(st.torn_cut, 0);
    CU_ASSERT_EQUAL(file_size(dir, 1), size); /* kept for fsck, not cut */
    CU_ASSERT(intact(bs, 1, 3000) && intact(bs, 2, 3000));
    CU_ASSERT_EQUAL(put(bs, 4, 500), CM_OK); /* sealed: goes to a new segment */
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    CU_ASSERT(file_size(dir, 2) > BS_SEG_HDR);
    CU_ASSERT_EQUAL(file_size(dir, 1), size);
    bs_close(bs);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT(intact(bs, 4, 500));
    bs_close(bs);
}

/* An append that was never synced, cut short by a crash: a torn tail, cut and not counted. */
static void test_torn_tail_past_mark(void)
{
    const char *dir = fresh_dir("torn");
    bs_options opt = {.compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 3000), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    CU_ASSERT_EQUAL(put(bs, 2, 3000), CM_OK);
    bs_close(bs);
    char p[1024];
    snprintf(p, sizeof(p), "%s/seg-%08u.cbs", dir, 1u);
    uint64_t good = BS_SEG_HDR + bs_rec_size(3000);
    CU_ASSERT_FATAL(truncate(p, (off_t)(good + 1000)) == 0);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.corrupt_found, 0);
    CU_ASSERT_EQUAL(st.torn_cut, 1000);
    CU_ASSERT_EQUAL(file_size(dir, 1), good);
    CU_ASSERT(intact(bs, 1, 3000));
    bs_close(bs);
}

/*
 * A client stores bytes holding a well-formed record header (CRC computed the only way a client
 * can: without the store's salt). When the real header before it goes bad, recovery searches
 * forward for the next valid header; it must not find the forged one.
 */
static void test_forged_header(void)
{
    const char *dir = fresh_dir("forged");
    bs_options opt = {.compact_rate = -1};
    bs_store *bs = NULL;
    uint8_t data[4096];
    memset(data, 0x11, sizeof(data));
    bs_rec_hdr fake = {BS_REC_PUT, cu_tag_id(66, MARK), 0, 0, 0};
    /* Data starts after the 48-byte header and one block CRC; the fake sits 8-byte aligned. */
    size_t at = (BS_ALIGN - (BS_SEG_HDR + BS_REC_HDR + 4) % BS_ALIGN) % BS_ALIGN;
    bs_rec_encode(&fake, 0, data + at);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    bs_id id = cu_tag_id(65, MARK);
    CU_ASSERT_EQUAL(bs_append(bs, &id, 0, data, sizeof(data)), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_close(bs);
    flip(dir, 1, BS_SEG_HDR + 10);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    uint64_t size = 0;
    bs_id forged = cu_tag_id(66, MARK);
    CU_ASSERT_EQUAL(bs_size(bs, &forged, &size), CM_ERR_NOTFOUND);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT(st.corrupt_found >= 1);
    bs_close(bs);
}

/* Write a version 1 segment by hand (no salt, no mark): blob tags[i] of lens[i] <= 64 KiB. */
static void write_v1_segment(const char *dir, const uint32_t *tags, const size_t *lens, int n)
{
    char p[1024];
    uint8_t hdr[BS_SEG_HDR] = {0};
    snprintf(p, sizeof(p), "%s/seg-%08u.cbs", dir, 1u);
    FILE *fp = fopen(p, "wb");
    CU_ASSERT_FATAL(fp != NULL);
    cm_put_be32(hdr, BS_SEG_MAGIC);
    cm_put_be32(hdr + 4, 1);
    cm_put_be32(hdr + 8, 1);
    cm_put_be32(hdr + 28, bs_crc32c(hdr, 28));
    CU_ASSERT(fwrite(hdr, 1, sizeof(hdr), fp) == sizeof(hdr));
    for (int i = 0; i < n; i++) {
        size_t total = (size_t)bs_rec_size((uint32_t)lens[i]);
        uint8_t *rec = calloc(1, total);
        bs_rec_hdr h = {BS_REC_PUT, cu_tag_id(tags[i], MARK), 0, (uint32_t)lens[i], 1};
        bs_rec_encode(&h, 0, rec);
        for (size_t j = 0; j < lens[i]; j++)
            rec[BS_REC_HDR + 4 + j] = cu_pattern(SEED, tags[i], j);
        cm_put_be32(rec + BS_REC_HDR, bs_crc32c(rec + BS_REC_HDR + 4, lens[i]));
        CU_ASSERT(fwrite(rec, 1, total, fp) == total);
        free(rec);
    }
    fclose(fp);
}

static void test_v1_store(void)
{
    const char *dir = fresh_dir("v1");
    const uint32_t tags[2] = {70, 71};
    const size_t lens[2] = {1000, 5000};
    CU_ASSERT_FATAL(mkdir(dir, 0755) == 0 || errno == EEXIST);
    write_v1_segment(dir, tags, lens, 2);
    bs_options opt = {.compact_rate = -1, .segment_max = 8192, .compact_pct = 60};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT(intact(bs, 70, 1000) && intact(bs, 71, 5000));
    CU_ASSERT_EQUAL(put(bs, 72, 7000), CM_OK); /* does not fit: segment 2, version 2 */
    bs_id id71 = cu_tag_id(71, MARK);
    CU_ASSERT_EQUAL(bs_delete(bs, &id71), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    cm_err e;
    int steps = 0;
    while ((e = bs_compact_step(bs, 1 << 20)) == CM_AGAIN && steps < 100)
        steps++;
    CU_ASSERT_EQUAL(e, CM_OK);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.compacted, 1); /* blob 70 moved into a salted segment */
    bs_close(bs);
    CU_ASSERT_EQUAL(file_size(dir, 1), 0);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.corrupt_found, 0);
    CU_ASSERT(intact(bs, 70, 1000) && intact(bs, 72, 7000));
    uint64_t size = 0;
    CU_ASSERT_EQUAL(bs_size(bs, &id71, &size), CM_ERR_NOTFOUND);
    bs_close(bs);
}

void cu_register(void)
{
    printf("test_blobstore_sync seed %u\n", SEED);
    cm_log_threshold = -1; /* injected I/O errors are the normal case here */
    static const cu_test tests[] = {
        {"sync_failure_is_sticky", test_sticky},
        {"concurrent_writers_of_a_failed_round", test_concurrent_writers},
        {"writeback_failure_fails_the_next_sync", test_writeback_failure},
        {"compaction_keeps_source_after_sync_failure", test_compaction_keeps_source},
        {"mkdir_syncs_parent", test_mkdir_syncs_parent},
        {"corruption_before_synced_mark", test_corruption_before_mark},
        {"torn_tail_past_synced_mark", test_torn_tail_past_mark},
        {"forged_header_in_client_data", test_forged_header},
        {"version1_store_readable", test_v1_store},
        {NULL, NULL}};
    cu_add_suite("blobstore_sync", tests);
}
