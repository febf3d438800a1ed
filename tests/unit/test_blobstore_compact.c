/*
 * test_blobstore_compact.c - compaction, full disks, bit flips on read and the drive lock.
 *
 * Compaction: a delete-heavy workload must end with disk usage within a small factor of the live
 * data, every surviving blob byte-exact before and after a reopen, readers running concurrently
 * must never see an error, and deleted blobs must stay deleted after compaction moved or dropped
 * their tombstones. Full disk: the fault io's capacity makes appends fail with CM_ERR_NOSPC
 * without damage, and they work again once space is freed. Seeds are fixed and printed.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
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

#define SEED 777u

static uint64_t rng = SEED;

static const char *test_dir(const char *name)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 512, "%s/%s", cu_tmpdir(), name);
    return p;
}

static cm_err put(bs_store *bs, uint32_t tag, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        buf[i] = cu_pattern(0, tag, off + i);
    bs_id id = cu_tag_id(tag, 0x7E);
    cm_err e = bs_append(bs, &id, off, buf, len);
    free(buf);
    return e;
}

static int verify(bs_store *bs, uint32_t tag, uint64_t size)
{
    bs_id id = cu_tag_id(tag, 0x7E);
    uint64_t got = 0;
    if (bs_size(bs, &id, &got) != CM_OK || got != size)
        return 0;
    uint8_t *buf = malloc(size ? size : 1);
    int ok = bs_read(bs, &id, 0, buf, size) == CM_OK;
    for (uint64_t i = 0; ok && i < size; i++)
        ok = buf[i] == cu_pattern(0, tag, i);
    free(buf);
    if (!ok)
        fprintf(stderr, "blob %u (size %llu) wrong (seed %u)\n", tag, (unsigned long long)size,
                SEED);
    return ok;
}

static int compact_all(bs_store *bs)
{
    int steps = 0;
    cm_err e;
    while ((e = bs_compact_step(bs, 64 * 1024)) == CM_AGAIN && steps < 100000)
        steps++;
    CU_ASSERT_EQUAL(e, CM_OK);
    return steps;
}

#define NB 300

static void test_delete_heavy(void)
{
    const char *dir = test_dir("heavy");
    bs_options opt = {.segment_max = 256 * 1024, .compact_rate = -1};
    bs_store *bs = NULL;
    static uint64_t size[NB];
    static int alive[NB];
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    for (uint32_t t = 0; t < NB; t++) {
        size[t] = 1 + cu_xorshift(&rng) % 40000;
        alive[t] = 1;
        CU_ASSERT_EQUAL(put(bs, t, 0, (size_t)size[t]), CM_OK);
    }
    for (uint32_t t = 0; t < NB; t++) {
        if (cu_xorshift(&rng) % 100 < 85) {
            bs_id id = cu_tag_id(t, 0x7E);
            CU_ASSERT_EQUAL(bs_delete(bs, &id), CM_OK);
            alive[t] = 0;
        }
    }
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_stats before, after;
    bs_get_stats(bs, &before);
    int steps = compact_all(bs);
    bs_get_stats(bs, &after);
    printf("\n  delete-heavy: live %llu B, disk %llu -> %llu B (%u -> %u segments), "
           "%llu segments compacted, %llu B moved, %d steps\n",
           (unsigned long long)after.live_bytes, (unsigned long long)before.disk_bytes,
           (unsigned long long)after.disk_bytes, before.segments, after.segments,
           (unsigned long long)after.compacted, (unsigned long long)after.compact_moved, steps);
    CU_ASSERT(after.compacted > 0);
    CU_ASSERT_EQUAL(after.live_bytes, before.live_bytes);
    /* within 2x of live data plus the active segment */
    CU_ASSERT(after.disk_bytes <= 2 * after.live_bytes + opt.segment_max);
    int bad = 0;
    for (uint32_t t = 0; t < NB; t++)
        bad += alive[t] ? !verify(bs, t, size[t]) : 0;
    CU_ASSERT_EQUAL(bad, 0);
    bs_close(bs);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    bs_stats re;
    bs_get_stats(bs, &re);
    CU_ASSERT_EQUAL(re.corrupt_found, 0);
    CU_ASSERT_EQUAL(re.live_bytes, after.live_bytes);
    bad = 0;
    for (uint32_t t = 0; t < NB; t++) {
        bs_id id = cu_tag_id(t, 0x7E);
        uint64_t sz;
        bad += alive[t] ? !verify(bs, t, size[t]) : bs_size(bs, &id, &sz) != CM_ERR_NOTFOUND;
    }
    CU_ASSERT_EQUAL(bad, 0);
    bs_close(bs);
}

typedef struct {
    bs_store *bs;
    int stop, errors, reads;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    uint32_t t = 0;
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
        /* even tags are never deleted; each is 3000 * (t % 7 + 1) bytes */
        uint32_t tag = 2 * (t++ % 100);
        if (!verify(a->bs, tag, 3000 * (tag % 7 + 1)))
            a->errors++;
        __atomic_add_fetch(&a->reads, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void test_reads_during_compaction(void)
{
    bs_options opt = {.segment_max = 64 * 1024, .compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(test_dir("rdcomp"), &opt, &bs) == CM_OK);
    for (uint32_t t = 0; t < 200; t++)
        CU_ASSERT_EQUAL(put(bs, t, 0, 3000 * (t % 7 + 1)), CM_OK);
    reader_arg ra = {bs, 0, 0, 0};
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, reader, &ra) == 0);
    for (uint32_t t = 1; t < 200; t += 2) { /* odd tags die; appends go on meanwhile */
        bs_id id = cu_tag_id(t, 0x7E);
        CU_ASSERT_EQUAL(bs_delete(bs, &id), CM_OK);
        CU_ASSERT_EQUAL(put(bs, 1000 + t, 0, 2000), CM_OK);
        int seen = __atomic_load_n(&ra.reads, __ATOMIC_ACQUIRE);
        bs_compact_step(bs, 16 * 1024);
        while (__atomic_load_n(&ra.reads, __ATOMIC_ACQUIRE) < seen + 2)
            sched_yield(); /* let the reader overlap every step */
    }
    compact_all(bs);
    __atomic_store_n(&ra.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    bs_stats st;
    bs_get_stats(bs, &st);
    printf("\n  reads during compaction: %d reads, %d errors, %llu segments compacted\n", ra.reads,
           ra.errors, (unsigned long long)st.compacted);
    CU_ASSERT_EQUAL(ra.errors, 0);
    CU_ASSERT(st.compacted > 0);
    for (uint32_t t = 1; t < 200; t += 2)
        CU_ASSERT(verify(bs, 1000 + t, 2000));
    bs_close(bs);
}

static void test_tombstone_kept(void)
{
    /* Blob 1 shares segment 1 with long-lived blob 2; its tombstone lands in a later segment.
     * That segment then dies, and is compacted: the tombstone must survive while segment 1 does,
     * or blob 1 would come back at the next open (the old "resurrect" leak). */
    const char *dir = test_dir("tomb");
    bs_options opt = {.segment_max = 64 * 1024, .compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 0, 20000), CM_OK);
    CU_ASSERT_EQUAL(put(bs, 2, 0, 40000), CM_OK); /* keeps segment 1 alive */
    CU_ASSERT_EQUAL(put(bs, 3, 0, 60000), CM_OK); /* segment 2 */
    bs_id id1 = cu_tag_id(1, 0x7E), id3 = cu_tag_id(3, 0x7E);
    CU_ASSERT_EQUAL(bs_delete(bs, &id1), CM_OK);  /* tombstone in segment 2 */
    CU_ASSERT_EQUAL(put(bs, 4, 0, 60000), CM_OK); /* segment 3 becomes active */
    CU_ASSERT_EQUAL(bs_delete(bs, &id3), CM_OK);  /* segment 2: no live data, one tombstone */
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.segments, 3); /* segment 2 kept for its tombstone */
    compact_all(bs);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_close(bs);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    uint64_t sz;
    CU_ASSERT_EQUAL(bs_size(bs, &id1, &sz), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(bs_size(bs, &id3, &sz), CM_ERR_NOTFOUND);
    CU_ASSERT(verify(bs, 2, 40000));
    CU_ASSERT(verify(bs, 4, 60000));
    bs_close(bs);
}

static void test_enospc_then_freed(void)
{
    const char *dir = test_dir("full");
    fio *f = fio_new(SEED);
    bs_options opt = {.segment_max = 128 * 1024, .io = fio_io(f), .compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    fio_set_capacity(f, 600 * 1024);
    rng = SEED;
    uint32_t t = 0;
    cm_err e = CM_OK;
    while (t < 1000 && (e = put(bs, t, 0, 10000 + (size_t)(cu_xorshift(&rng) % 30000))) == CM_OK)
        t++;
    CU_ASSERT_EQUAL(e, CM_ERR_NOSPC);
    CU_ASSERT(fio_used(f) <= 600 * 1024);
    uint32_t full_at = t;
    /* nothing half-written: the failed blob does not exist, the others read back */
    bs_id failed = cu_tag_id(full_at, 0x7E);
    uint64_t sz;
    CU_ASSERT_EQUAL(bs_size(bs, &failed, &sz), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    /* and stays full: small and large appends fail alike, without damage */
    CU_ASSERT_EQUAL(put(bs, 5000, 0, 200000), CM_ERR_NOSPC);
    bs_stats st;
    bs_get_stats(bs, &st);
    printf("\n  ENOSPC after %u blobs: %llu live bytes, %llu on disk, capacity %u\n", full_at,
           (unsigned long long)st.live_bytes, (unsigned long long)st.disk_bytes, 600 * 1024);
    bs_close(bs);
    rng = SEED;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.corrupt_found, 0);
    CU_ASSERT_EQUAL(st.blobs, full_at);
    for (uint32_t i = 0; i < full_at; i++)
        CU_ASSERT(verify(bs, i, 10000 + cu_xorshift(&rng) % 30000));
    /* space freed elsewhere on the disk: appends work again */
    fio_set_capacity(f, 2 * 1024 * 1024);
    CU_ASSERT_EQUAL(put(bs, full_at, 0, 50000), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    CU_ASSERT(verify(bs, full_at, 50000));
    bs_close(bs);
    fio_free(f);
}

static void test_enospc_during_compaction(void)
{
    const char *dir = test_dir("fullcomp");
    fio *f = fio_new(SEED + 1);
    bs_options opt = {.segment_max = 64 * 1024, .io = fio_io(f), .compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    for (uint32_t t = 0; t < 40; t++)
        CU_ASSERT_EQUAL(put(bs, t, 0, 5000), CM_OK);
    for (uint32_t t = 0; t < 40; t++) {
        bs_id id = cu_tag_id(t, 0x7E);
        if (t % 4)
            CU_ASSERT_EQUAL(bs_delete(bs, &id), CM_OK);
    }
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    fio_set_capacity(f, fio_used(f) + 3000); /* not enough for a copy */
    cm_err e = CM_AGAIN;
    for (int i = 0; i < 50 && e == CM_AGAIN; i++)
        e = bs_compact_step(bs, 64 * 1024);
    CU_ASSERT_EQUAL(e, CM_ERR_NOSPC);
    for (uint32_t t = 0; t < 40; t += 4)
        CU_ASSERT(verify(bs, t, 5000));
    fio_set_capacity(f, 0);
    compact_all(bs);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT(st.compacted > 0);
    bs_close(bs);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    for (uint32_t t = 0; t < 40; t++) {
        bs_id id = cu_tag_id(t, 0x7E);
        uint64_t sz;
        int ok = (t % 4) ? bs_size(bs, &id, &sz) == CM_ERR_NOTFOUND : verify(bs, t, 5000);
        CU_ASSERT(ok);
    }
    bs_close(bs);
    fio_free(f);
}

static void test_flip_on_read(void)
{
    fio *f = fio_new(SEED + 2);
    bs_options opt = {.io = fio_io(f), .compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(test_dir("rflip"), &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 0, 100000), CM_OK);
    int caught = 0;
    for (int i = 0; i < 20; i++) {
        /* a read makes two preads (checksums, then blocks): flip in either */
        fio_flip_on_read(f, fio_kind_ops(f, FIO_PREAD) + 1 + (uint64_t)(i % 2));
        uint8_t buf[5000];
        bs_id id = cu_tag_id(1, 0x7E);
        caught += bs_read(bs, &id, (uint64_t)i * 4000, buf, sizeof(buf)) == CM_ERR_CORRUPT;
        fio_clear_faults(f);
        CU_ASSERT(verify(bs, 1, 100000)); /* the flip was in flight, the disk is fine */
    }
    CU_ASSERT_EQUAL(caught, 20);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.corrupt_found, 20);
    bs_close(bs);
    fio_free(f);
}

static void test_delete_then_crash(void)
{
    /* Blob 1 fills segment 1 and spills into segment 2, which blob 2 keeps alive. Deleting blob 1
     * unlinks segment 1 at once; a crash right after must not leave blob 1 half there (its
     * tombstone has to be durable before that unlink). */
    const char *dir = test_dir("delcrash");
    fio *f = fio_new(SEED + 3);
    bs_options opt = {.segment_max = 64 * 1024, .io = fio_io(f), .compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 0, 60000), CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 60000, 30000), CM_OK); /* fills segment 1, rest in segment 2 */
    CU_ASSERT_EQUAL(put(bs, 2, 0, 10000), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_id id1 = cu_tag_id(1, 0x7E);
    CU_ASSERT_EQUAL(bs_delete(bs, &id1), CM_OK);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.segments, 1); /* segment 1 is gone */
    fio_crash_at(f, fio_ops(f) + 1);
    bs_close(bs);
    fio_reboot(f, FIO_DROP_UNSYNCED);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    uint64_t sz = 0;
    cm_err e = bs_size(bs, &id1, &sz);
    CU_ASSERT(e == CM_ERR_NOTFOUND || (e == CM_OK && verify(bs, 1, 90000)));
    CU_ASSERT(verify(bs, 2, 10000));
    bs_close(bs);
    fio_free(f);
}

static void test_lock(void)
{
    const char *dir = test_dir("lock");
    bs_store *a = NULL, *b = NULL;
    CU_ASSERT_FATAL(bs_open(dir, NULL, &a) == CM_OK);
    CU_ASSERT_EQUAL(bs_open(dir, NULL, &b), CM_ERR_CONFLICT);
    bs_close(a);
    CU_ASSERT_EQUAL(bs_open(dir, NULL, &b), CM_OK);
    bs_close(b);
}

void cu_register(void)
{
    printf("test_blobstore_compact seed %u\n", SEED);
    cm_log_threshold = -1; /* injected faults log errors by design */
    static const cu_test tests[] = {{"delete_heavy_compacts", test_delete_heavy},
                                    {"reads_during_compaction", test_reads_during_compaction},
                                    {"tombstone_kept_while_needed", test_tombstone_kept},
                                    {"enospc_then_freed", test_enospc_then_freed},
                                    {"enospc_during_compaction", test_enospc_during_compaction},
                                    {"flip_on_read", test_flip_on_read},
                                    {"delete_then_crash", test_delete_then_crash},
                                    {"drive_lock", test_lock},
                                    {NULL, NULL}};
    cu_add_suite("blobstore_compact", tests);
}
