/*
 * test_blobstore_crash.c - crash safety of the blob store, proved by a crash-point loop, plus full
 * disks and bit flips on read, all through the fault-injecting io table (faultio.c).
 *
 * The crash loop: a seeded workload of appends (some spanning segments), deletes, syncs and
 * compaction steps runs once cleanly to count its I/O calls N; then for every k in 1..N it runs
 * again in a fresh directory with a crash at call k, the files are turned into what the disk
 * would hold (everything not fdatasync'd dropped, a torn write at the crash point), the store is
 * reopened on that, and the guarantee in bs.h is checked blob by blob against a model of what was
 * appended, synced and deleted. A second pass keeps a random subset of the unsynced writes and
 * checks the weaker guarantee for that case. A third pass fails each fdatasync of the workload in
 * turn (faultio then drops that file's unsynced writes, as Linux does), lets the workload go on
 * and crashes at a sample of later calls: nothing acknowledged may be lost. Counts are printed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bs.h"
#include "bs_int.h"
#include "cm_log.h"
#include "cu_data.h"
#include "cu_main.h"
#include "faultio.c" /* test helper, not a test executable of its own */

#define SEED 4242u
#define NBLOB 24  /* blob slots the workload can create */
#define STEPS 120 /* workload steps */
#define SEGMAX (48 * 1024)

static uint64_t rng;

typedef struct {
    int created;        /* first append succeeded */
    uint64_t appended;  /* bytes appended successfully */
    uint64_t attempted; /* ... plus the append in flight when the crash came */
    uint64_t acked;     /* bytes covered by a successful bs_sync */
    int acked_exists;   /* a sync succeeded after it was created */
    int del_issued;     /* bs_delete returned OK */
    int del_tried;      /* bs_delete failed: its tombstone may or may not be on disk */
    int del_acked;      /* ... and a sync succeeded after that */
} model_blob;

typedef struct {
    model_blob b[NBLOB];
    int compactions; /* compaction steps that finished a segment */
} model;

static void on_sync(model *m)
{
    for (int i = 0; i < NBLOB; i++) {
        m->b[i].acked = m->b[i].appended;
        m->b[i].acked_exists |= m->b[i].created;
        m->b[i].del_acked |= m->b[i].del_issued;
    }
}

/*
 * The workload: stops at the first failure (after a crash every call fails), unless keep_going
 * (a failed sync is not the end: writers keep trying, and the store must refuse them).
 */
static void workload(bs_store *bs, uint64_t seed, model *m, int keep_going)
{
    static uint8_t buf[40000];
    memset(m, 0, sizeof(*m));
    rng = seed;
    for (int step = 0; step < STEPS; step++) {
        uint64_t r = cu_xorshift(&rng) % 100;
        int i = (int)(cu_xorshift(&rng) % NBLOB);
        model_blob *b = &m->b[i];
        bs_id id = cu_tag_id((uint32_t)i, 0xC3);
        cm_err e = CM_OK;
        if (r < 50 && !b->del_issued) {
            uint64_t big = cu_xorshift(&rng) % 4 ==
                           0; /* separate statements: a fixed order of cu_xorshift(&rng) calls */
            size_t n = 1 + (size_t)(cu_xorshift(&rng) % (big ? sizeof(buf) : 3000));
            for (size_t j = 0; j < n; j++)
                buf[j] = cu_pattern(0, (uint32_t)i, b->appended + j);
            e = bs_append(bs, &id, b->appended, buf, n);
            if (b->appended + n > b->attempted)
                b->attempted = b->appended + n;
            if (e == CM_OK) {
                b->appended += n;
                b->created = 1;
            }
        } else if (r < 68 && b->created && !b->del_issued) {
            e = bs_delete(bs, &id);
            if (e == CM_OK)
                b->del_issued = 1;
            else
                b->del_tried = 1;
        } else if (r < 84) {
            e = bs_sync(bs);
            if (e == CM_OK)
                on_sync(m);
        } else {
            e = bs_compact_step(bs, 20000);
            m->compactions += e == CM_AGAIN;
            if (e == CM_AGAIN)
                e = CM_OK;
        }
        if (e != CM_OK && !keep_going)
            return;
    }
}

static int check_bytes(bs_store *bs, int i, uint64_t size, int allow_corrupt)
{
    uint8_t *got = malloc(size ? size : 1);
    bs_id id = cu_tag_id((uint32_t)i, 0xC3);
    cm_err e = bs_read(bs, &id, 0, got, size);
    int ok = e == CM_OK || (allow_corrupt && e == CM_ERR_CORRUPT);
    for (uint64_t j = 0; e == CM_OK && j < size; j++)
        ok &= got[j] == cu_pattern(0, (uint32_t)i, j);
    if (!ok && allow_corrupt) { /* a hole: every readable 64 KiB piece must still be exact */
        ok = 1;
        for (uint64_t at = 0; at < size; at += 4096) {
            uint64_t n = size - at < 4096 ? size - at : 4096;
            e = bs_read(bs, &id, at, got, n);
            for (uint64_t j = 0; e == CM_OK && j < n; j++)
                ok &= got[j] == cu_pattern(0, (uint32_t)i, at + j);
            ok &= e == CM_OK || e == CM_ERR_CORRUPT;
        }
    }
    free(got);
    return ok;
}

/* The bs.h guarantee for one blob; strict = everything unsynced was dropped. */
static int check_blob(bs_store *bs, const model_blob *b, int i, int strict)
{
    bs_id id = cu_tag_id((uint32_t)i, 0xC3);
    uint64_t size = 0;
    cm_err e = bs_size(bs, &id, &size);
    if (b->del_acked)
        return e == CM_ERR_NOTFOUND;
    if (e == CM_ERR_NOTFOUND)
        return !b->acked_exists || b->del_issued || b->del_tried;
    if (e != CM_OK || size < b->acked || size > b->attempted)
        return 0;
    return check_bytes(bs, i, size, !strict);
}

static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[1024];
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
}

/*
 * Run the workload with a crash at call k (0 = none) and, when fail_sync > 0, the fail_sync-th
 * fdatasync (counted from the start of the workload) failing with EIO; reopen and check. Returns
 * failures. *ops and *syncs: the I/O calls and fdatasyncs the run made.
 */
static int one_run(const char *dir, uint64_t seed, uint64_t k, fio_crash_mode mode, uint64_t *ops,
                   model *m, uint64_t fail_sync, uint64_t *syncs)
{
    empty_dir(dir);
    fio *f = fio_new(seed ^ k ^ (fail_sync << 20));
    bs_options opt = {
        .segment_max = SEGMAX, .io = fio_io(f), .compact_pct = 60, .compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    uint64_t syncs0 = fio_kind_ops(f, FIO_SYNC);
    fio_crash_at(f, k);
    if (fail_sync)
        fio_fail_nth(f, FIO_SYNC, syncs0 + fail_sync, EIO, 0);
    workload(bs, seed, m, fail_sync > 0);
    *ops = fio_ops(f);
    if (syncs)
        *syncs = fio_kind_ops(f, FIO_SYNC) - syncs0;
    bs_close(bs);
    fio_reboot(f, mode);
    bs_options plain = {.segment_max = SEGMAX, .compact_pct = 60, .compact_rate = -1};
    int bad = 0;
    if (bs_open(dir, &plain, &bs) != CM_OK) {
        fprintf(stderr, "crash at %llu: reopen failed (seed %llu)\n", (unsigned long long)k,
                (unsigned long long)seed);
        fio_free(f);
        return 1;
    }
    for (int i = 0; i < NBLOB; i++) {
        if (!check_blob(bs, &m->b[i], i, mode == FIO_DROP_UNSYNCED)) {
            fprintf(stderr,
                    "crash at call %llu (mode %d, seed %llu, failed sync %llu): blob %d violates "
                    "the guarantee (appended %llu acked %llu del %d/%d)\n",
                    (unsigned long long)k, (int)mode, (unsigned long long)seed,
                    (unsigned long long)fail_sync, i, (unsigned long long)m->b[i].appended,
                    (unsigned long long)m->b[i].acked, m->b[i].del_issued, m->b[i].del_acked);
            bad++;
        }
    }
    bs_stats st;
    bs_get_stats(bs, &st);
    if (mode == FIO_DROP_UNSYNCED && st.corrupt_found != 0) {
        fprintf(stderr, "crash at %llu: recovery reported %llu corruptions (seed %llu)\n",
                (unsigned long long)k, (unsigned long long)st.corrupt_found,
                (unsigned long long)seed);
        bad++;
    }
    /* the recovered store takes new writes and keeps them */
    bs_id fresh = cu_tag_id(1000, 0xC3);
    uint8_t x[100];
    memset(x, 7, sizeof(x));
    bad += bs_append(bs, &fresh, 0, x, sizeof(x)) != CM_OK || bs_sync(bs) != CM_OK;
    bs_close(bs);
    fio_free(f);
    return bad;
}

static int crash_loop(fio_crash_mode mode, uint64_t seed, int every)
{
    const char *dir = "";
    char path[512];
    snprintf(path, sizeof(path), "%s/crash", cu_tmpdir());
    dir = path;
    model m;
    uint64_t total = 0, ops = 0;
    CU_ASSERT_EQUAL(one_run(dir, seed, 0, mode, &total, &m, 0, NULL), 0);
    int bad = 0, tried = 0, compactions = m.compactions;
    for (uint64_t k = 1; k <= total; k += (uint64_t)every) {
        bad += one_run(dir, seed, k, mode, &ops, &m, 0, NULL) != 0;
        tried++;
    }
    printf("\n  crash loop (%s, seed %llu): %d crash points tried of %llu I/O calls, %d failed; "
           "%d compaction passes in the workload\n",
           mode == FIO_DROP_UNSYNCED ? "drop unsynced" : "keep random unsynced",
           (unsigned long long)seed, tried, (unsigned long long)total, bad, compactions);
    CU_ASSERT(total > 100);
    CU_ASSERT_EQUAL(bad, 0);
    return compactions;
}

/*
 * Every fdatasync of the workload in turn fails once (the file's unsynced writes are dropped, as
 * Linux does, and a later fdatasync succeeds); the workload goes on, then the run ends cleanly
 * or crashes at one of a sample of later calls. Nothing acknowledged may be missing after reopen.
 */
static void test_sync_failures(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/syncfail", cu_tmpdir());
    model m;
    uint64_t total = 0, nsync = 0, ops = 0;
    CU_ASSERT_EQUAL(one_run(dir, SEED, 0, FIO_DROP_UNSYNCED, &total, &m, 0, &nsync), 0);
    int bad = 0, tried = 0;
    for (uint64_t j = 1; j <= nsync; j++) {
        bad += one_run(dir, SEED, 0, FIO_DROP_UNSYNCED, &ops, &m, j, NULL) != 0;
        tried++;
        for (uint64_t k = 1 + j % 7; k <= ops; k += 23) {
            bad += one_run(dir, SEED, k, FIO_DROP_UNSYNCED, &ops, &m, j, NULL) != 0;
            tried++;
        }
    }
    printf("\n  sync failures (seed %u): each of %llu fdatasyncs failed in turn, %d runs, %d "
           "failed\n",
           SEED, (unsigned long long)nsync, tried, bad);
    CU_ASSERT(nsync > 10);
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_crash_points_drop(void)
{
    int c = 0;
    for (uint64_t s = SEED; s < SEED + 3; s++)
        c += crash_loop(FIO_DROP_UNSYNCED, s, 1);
    CU_ASSERT(c > 0); /* crashes inside compaction were among the points */
}

static void test_crash_points_keep_some(void)
{
    for (uint64_t s = SEED + 10; s < SEED + 12; s++)
        crash_loop(FIO_KEEP_SOME, s, 1);
}

void cu_register(void)
{
    printf("test_blobstore_crash seed %u\n", SEED);
    cm_log_threshold = -1; /* corruption and I/O errors are the normal case here */
    static const cu_test tests[] = {{"crash_points_drop_unsynced", test_crash_points_drop},
                                    {"crash_points_keep_some", test_crash_points_keep_some},
                                    {"sync_failures", test_sync_failures},
                                    {NULL, NULL}};
    cu_add_suite("blobstore_crash", tests);
}
