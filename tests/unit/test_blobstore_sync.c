/*
 * test_blobstore_sync.c - what a failed fdatasync leaves behind, through the fault-injecting io
 * table (faultio.c), whose failed fdatasync drops the file's unsynced writes as Linux does.
 *
 *   - sticky: after one failed sync round, no later bs_sync reports the lost appends durable,
 *     the store refuses new appends, and bs_error says why;
 *   - concurrent writers: of many threads that append and sync while one round fails, every one
 *     told CM_OK finds its blob after a crash;
 *   - compaction: a failed sync of the copies keeps the source segment (no acknowledged blob is
 *     lost when the copies were not durable).
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
    bs_options opt = {.io = fio_io(f), .compact_rate = -1, .segment_max = 64 * 1024};
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

void cu_register(void)
{
    printf("test_blobstore_sync seed %u\n", SEED);
    cm_log_threshold = -1; /* injected I/O errors are the normal case here */
    static const cu_test tests[] = {
        {"sync_failure_is_sticky", test_sticky},
        {"concurrent_writers_of_a_failed_round", test_concurrent_writers},
        {"compaction_keeps_source_after_sync_failure", test_compaction_keeps_source},
        {NULL, NULL}};
    cu_add_suite("blobstore_sync", tests);
}
