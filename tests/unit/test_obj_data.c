/*
 * test_obj_data.c - the object layer's data path (ob_data.c) over 6 drives (4+2, 4 KiB cells so
 * stripes are small): body sizes around every stripe boundary, random ranges, lost drives (blobs
 * deleted or drives failing mid-write), a corrupted cell, too many losses, aborted writers, drive
 * health (EIO marks a drive failed, a probe brings it back, ENOSPC only "full", a vanished
 * directory, a failed fdatasync fails the drive until a restart, failure and probes racing four
 * writers). Payload bytes are a function of (tag, offset); random choices use a fixed, printed
 * seed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bs.h"
#include "cm_log.h"
#include "cm_util.h"
#include "cu_data.h"
#include "cu_gate.h"
#include "cu_main.h"
#include "ob_int.h"

#define SEED 0xDA7Au
#define ND 6
#define CELL 4096u
#define K 4
#define M 2

static uint64_t rng = SEED;

typedef struct {
    char root[512];
    char dirs[ND][600];
    const char *ptrs[ND];
} drives;

static void drives_init(drives *d, const char *name)
{
    snprintf(d->root, sizeof(d->root), "%s/%s", cu_tmpdir(), name);
    mkdir(d->root, 0755);
    for (int i = 0; i < ND; i++) {
        snprintf(d->dirs[i], sizeof(d->dirs[i]), "%s/%s/d%d", cu_tmpdir(), name, i);
        d->ptrs[i] = d->dirs[i];
    }
}

static ob_store *open_store(const drives *d, const bs_io *io)
{
    ob_store_options o = {.k = K, .m = M, .cell_size = CELL, .io = io};
    ob_store *st = NULL;
    CU_ASSERT_FATAL(ob_store_open(d->ptrs, ND, &o, &st) == CM_OK);
    return st;
}

/* Write size pattern bytes in random pieces. */
static cm_err write_body(ob_store *st, uint32_t tag, uint64_t size, md_layout *lay)
{
    ob_writer *w = NULL;
    cm_err e = ob_writer_new(st, &w);
    if (e != CM_OK)
        return e;
    uint8_t buf[9000];
    for (uint64_t off = 0; e == CM_OK && off < size;) {
        uint64_t piece = 1 + cu_xorshift(&rng) % sizeof(buf); /* CM_MIN evaluates twice */
        size_t n = (size_t)CM_MIN(size - off, piece);
        for (size_t i = 0; i < n; i++)
            buf[i] = cu_pattern(7, tag, off + i);
        e = ob_writer_write(w, buf, n);
        off += n;
    }
    if (e != CM_OK) {
        ob_writer_abort(w);
        return e;
    }
    return ob_writer_finish(w, lay);
}

static int read_ok(ob_store *st, const md_layout *lay, uint32_t tag, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len ? len : 1);
    cm_err e = ob_read(st, lay, off, buf, len);
    int ok = e == CM_OK;
    for (size_t i = 0; ok && i < len; i++)
        ok = buf[i] == cu_pattern(7, tag, off + i);
    if (!ok)
        fprintf(stderr, "read tag %u [%llu,+%zu) failed: %s (seed %#x)\n", tag,
                (unsigned long long)off, len, cm_err_name(e), SEED);
    free(buf);
    return ok;
}

static int read_random(ob_store *st, const md_layout *lay, uint32_t tag, int n)
{
    int ok = read_ok(st, lay, tag, 0, (size_t)lay->size);
    for (int i = 0; ok && i < n && lay->size > 0; i++) {
        uint64_t off = cu_xorshift(&rng) % lay->size,
                 len = 1 + cu_xorshift(&rng) % (lay->size - off);
        ok = read_ok(st, lay, tag, off, (size_t)len);
    }
    return ok;
}

/* Delete the body's blob directly on drive d (the gw store must be closed). */
static void kill_cell(const drives *d, const md_layout *lay, int drive)
{
    bs_store *bs = NULL;
    bs_id id;
    memcpy(id.b, lay->blob, 16);
    CU_ASSERT_FATAL(bs_open(d->dirs[drive], NULL, &bs) == CM_OK);
    CU_ASSERT_EQUAL(bs_delete(bs, &id), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_close(bs);
}

static uint64_t blobs_on_drives(const drives *d)
{
    uint64_t n = 0;
    for (int i = 0; i < ND; i++) {
        bs_store *bs = NULL;
        bs_stats s;
        if (bs_open(d->dirs[i], NULL, &bs) != CM_OK)
            continue;
        bs_get_stats(bs, &s);
        n += s.blobs;
        bs_close(bs);
    }
    return n;
}

/* ---- tests ---- */

static void test_sizes(void)
{
    drives d;
    drives_init(&d, "sizes");
    ob_store *st = open_store(&d, NULL);
    CU_ASSERT_EQUAL(ob_store_drives_online(st), ND);
    CU_ASSERT_EQUAL(ob_store_stripe_bytes(st), K * CELL);
    const uint64_t sizes[] = {0,
                              1,
                              63,
                              CELL - 1,
                              CELL,
                              K * CELL,
                              K * CELL + 1,
                              10ull * K * CELL + 17,
                              CELL + 1,
                              3 * CELL + 5,
                              2 * K * CELL};
    for (uint32_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        md_layout lay;
        CU_ASSERT_EQUAL_FATAL(write_body(st, t, sizes[t], &lay), CM_OK);
        CU_ASSERT_EQUAL(lay.size, sizes[t]);
        CU_ASSERT_EQUAL(lay.k, K);
        CU_ASSERT_EQUAL(lay.m, M);
        CU_ASSERT_EQUAL(lay.cell_size, CELL);
        unsigned seen = 0;
        for (int i = 0; i < K + M; i++) {
            CU_ASSERT(lay.drives[i] < ND);
            seen |= 1u << lay.drives[i];
        }
        CU_ASSERT_EQUAL(__builtin_popcount(seen), K + M);
        CU_ASSERT(read_random(st, &lay, t, 50));
        uint8_t b;
        CU_ASSERT_EQUAL(ob_read(st, &lay, lay.size, &b, 1), CM_ERR_RANGE);
        CU_ASSERT_EQUAL(ob_read(st, &lay, lay.size, &b, 0), CM_OK);
    }
    ob_store_close(st);
}

static void test_two_drives_lost(void)
{
    drives d;
    drives_init(&d, "lost2");
    uint64_t size = 10ull * K * CELL + 17;
    for (int a = 0; a < K + M; a++) {
        for (int b = a + 1; b < K + M; b++) {
            uint32_t tag = 100 + (uint32_t)(a * 8 + b);
            md_layout lay;
            ob_store *st = open_store(&d, NULL);
            CU_ASSERT_EQUAL_FATAL(write_body(st, tag, size, &lay), CM_OK);
            ob_store_close(st);
            kill_cell(&d, &lay, lay.drives[a]);
            kill_cell(&d, &lay, lay.drives[b]);
            st = open_store(&d, NULL);
            CU_ASSERT(read_random(st, &lay, tag, 20));
            ob_store_close(st);
        }
    }
}

static void test_three_drives_lost(void)
{
    drives d;
    drives_init(&d, "lost3");
    md_layout lay;
    ob_store *st = open_store(&d, NULL);
    CU_ASSERT_EQUAL_FATAL(write_body(st, 7, 3 * K * CELL + 100, &lay), CM_OK);
    ob_store_close(st);
    for (int i = 0; i < 3; i++)
        kill_cell(&d, &lay, lay.drives[i * 2]);
    st = open_store(&d, NULL);
    uint8_t buf[100];
    CU_ASSERT_EQUAL(ob_read(st, &lay, 0, buf, sizeof(buf)), CM_ERR_UNAVAILABLE);
    ob_store_close(st);
}

static void test_corrupt_cell(void)
{
    drives d;
    drives_init(&d, "flip");
    md_layout lay;
    ob_store *st = open_store(&d, NULL);
    CU_ASSERT_EQUAL_FATAL(write_body(st, 9, 2 * K * CELL, &lay), CM_OK);
    ob_store_close(st);
    /* cell 1's first record: 32-byte segment header, 48-byte record header, one block CRC */
    char path[700];
    snprintf(path, sizeof(path), "%s/seg-00000001.cbs", d.dirs[lay.drives[1]]);
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t c;
    CU_ASSERT_FATAL(pread(fd, &c, 1, 32 + 48 + 4 + 100) == 1);
    c ^= 0x40;
    CU_ASSERT_FATAL(pwrite(fd, &c, 1, 32 + 48 + 4 + 100) == 1);
    close(fd);
    st = open_store(&d, NULL);
    CU_ASSERT(read_ok(st, &lay, 9, CELL + 50, 100)); /* only the bad cell */
    CU_ASSERT(read_random(st, &lay, 9, 20));
    ob_store_close(st);
}

static int cached_ok(ob_store *st, const md_layout *lay, uint32_t tag, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len);
    int ok = ob_read_cached(st, lay, off, buf, len) == CM_OK;
    for (size_t i = 0; ok && i < len; i++)
        ok = buf[i] == cu_pattern(7, tag, off + i);
    free(buf);
    return ok;
}

static ssize_t wrapped_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    return bs_io_posix.pread(ctx, fd, buf, len, off);
}

/*
 * ob_read_cached, an event loop's read: the page cache's bytes of a healthy stripe, counted; a
 * stripe with a cell missing is CM_AGAIN (ob_read rebuilds it on a worker), and so is a layout of
 * other nodes, and any read of a store on a test's I/O table.
 */
static void test_cached_reads(void)
{
    drives d;
    drives_init(&d, "cached");
    bs_io keep = bs_io_posix;
    keep.drop = NULL; /* synced pages stay cached: no race with the drop thread */
    md_layout lay;
    uint64_t size = 2ull * K * CELL + 100, hits = 0, misses = 0;
    ob_store *st = open_store(&d, &keep);
    CU_ASSERT_EQUAL_FATAL(write_body(st, 11, size, &lay), CM_OK);
    CU_ASSERT(cached_ok(st, &lay, 11, 0, (size_t)size));
    CU_ASSERT(cached_ok(st, &lay, 11, CELL - 10, 3 * CELL));
    ob_store_read_counts(st, &hits, &misses);
    CU_ASSERT(hits == 2 && misses == 0);
    ob_store_close(st);
    kill_cell(&d, &lay, lay.drives[1]);
    st = open_store(&d, &keep);
    CU_ASSERT(read_ok(st, &lay, 11, 0, CELL)); /* cell 0 into the cache */
    CU_ASSERT(cached_ok(st, &lay, 11, 0, CELL));
    uint8_t buf[200];
    CU_ASSERT_EQUAL(ob_read_cached(st, &lay, CELL + 5, buf, sizeof(buf)), CM_AGAIN);
    CU_ASSERT(read_ok(st, &lay, 11, CELL + 5, sizeof(buf))); /* the worker's read rebuilds it */
    md_layout other = lay;
    other.epoch = 3;
    CU_ASSERT_EQUAL(ob_read_cached(st, &other, 0, buf, sizeof(buf)), CM_AGAIN);
    ob_store_read_counts(st, &hits, &misses);
    CU_ASSERT(hits == 1 && misses == 1); /* a cluster layout is not the page cache's miss */
    ob_store_close(st);
    bs_io wrapped = keep;
    wrapped.pread = wrapped_pread;
    st = open_store(&d, &wrapped);
    CU_ASSERT_EQUAL(ob_read_cached(st, &lay, 0, buf, sizeof(buf)), CM_AGAIN);
    CU_ASSERT(read_ok(st, &lay, 11, 0, sizeof(buf)));
    ob_store_close(st);
}

static void test_abort(void)
{
    drives d;
    drives_init(&d, "abort");
    ob_store *st = open_store(&d, NULL);
    ob_writer *w = NULL;
    CU_ASSERT_FATAL(ob_writer_new(st, &w) == CM_OK);
    uint8_t buf[5000];
    memset(buf, 0x33, sizeof(buf));
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(ob_writer_write(w, buf, sizeof(buf)), CM_OK);
    ob_writer_abort(w);
    ob_writer_abort(NULL);
    md_layout lay;
    CU_ASSERT_EQUAL(write_body(st, 3, 1000, &lay), CM_OK);
    ob_delete(st, &lay);
    ob_store_close(st);
    CU_ASSERT_EQUAL(blobs_on_drives(&d), 0);
}

/*
 * A drive that does not answer delays only its own deletes: with drive 0's writes held, deleting
 * a body returns at once (its tombstone waits on drive 0's thread), ob_delete_async keeps
 * returning at once until drive 0's queue is full and then refuses (CM_AGAIN) instead of waiting,
 * and once the drive answers again every queued delete runs.
 */
static void test_slow_drive_deletes(void)
{
    drives d;
    drives_init(&d, "slowdel");
    cu_gated_dir g = {.gate = CU_GATE_INIT};
    snprintf(g.dir, sizeof(g.dir), "%s/", d.dirs[0]);
    bs_io io = bs_io_posix;
    io.open = cu_gated_open;
    io.pwrite = cu_gated_pwrite;
    io.ctx = &g;
    ob_store *st = open_store(&d, &io);
    md_layout lay;
    CU_ASSERT_FATAL(write_body(st, 21, 3 * K * CELL + 100, &lay) == CM_OK);

    cu_gate_set(&g.gate, 1);
    int64_t t0 = cm_monotonic_ms();
    CU_ASSERT_EQUAL(ob_delete_async(st, &lay), CM_OK);
    cu_gate_wait_held(&g.gate); /* drive 0's thread is now stuck in the tombstone's pwrite */
    md_layout other = lay;
    cm_err e = CM_OK;
    int queued = 0;
    while (e == CM_OK && queued < 100000) {
        CU_ASSERT_FATAL(bs_id_new((bs_id *)other.blob) == CM_OK);
        if ((e = ob_delete_async(st, &other)) == CM_OK)
            queued++;
    }
    CU_ASSERT_EQUAL(e, CM_AGAIN);
    CU_ASSERT(queued >= 1000 && queued < 100000);
    CU_ASSERT(cm_monotonic_ms() - t0 < 5000); /* nothing waited for the held drive */

    cu_gate_set(&g.gate, 0);
    ob_store_drain(st);
    bs_id id;
    uint64_t sz;
    memcpy(id.b, lay.blob, 16);
    for (int i = 0; i < K + M; i++)
        CU_ASSERT_EQUAL(bs_size(ob_store_drive(st, lay.drives[i]), &id, &sz), CM_ERR_NOTFOUND);
    ob_store_close(st);
}

/* Fails every pwrite (and fdatasync) on fds opened under one of the marked drive directories. */
typedef struct {
    char bad[2][700];
    uint8_t badfd[4096];
    int err;
    int healed; /* set: the fault is cleared, every call goes through */
} fault_ctx;

static int f_open(void *ctx, const char *path, int flags, mode_t mode)
{
    fault_ctx *f = ctx;
    int fd = open(path, flags, mode);
    if (fd >= 0 && fd < 4096) {
        f->badfd[fd] = 0;
        for (int i = 0; i < 2; i++)
            if (f->bad[i][0] && strncmp(path, f->bad[i], strlen(f->bad[i])) == 0)
                f->badfd[fd] = 1;
    }
    return fd;
}

static ssize_t f_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
    fault_ctx *f = ctx;
    if (fd >= 0 && fd < 4096 && f->badfd[fd] && !__atomic_load_n(&f->healed, __ATOMIC_SEQ_CST)) {
        errno = f->err;
        return -1;
    }
    return pwrite(fd, buf, len, off);
}

static int f_fdatasync(void *ctx, int fd)
{
    fault_ctx *f = ctx;
    if (fd >= 0 && fd < 4096 && f->badfd[fd] && !__atomic_load_n(&f->healed, __ATOMIC_SEQ_CST)) {
        errno = f->err;
        return -1;
    }
    return fdatasync(fd);
}

static int cells_in(const md_layout *lay)
{
    int n = 0;
    for (int i = 0; i < K + M; i++)
        n += lay->drives[i] != 0xFF;
    return n;
}

/*
 * Drive 2 returns EIO on every pwrite and fdatasync: each body still stores 5 cells; after
 * 3 failing bodies the drive is FAILED and no longer chosen; reads stay byte-exact; a probe while
 * the fault lasts keeps it failed, and once the fault is cleared a probe brings it back.
 */
static void test_drive_marked_failed(void)
{
    drives d;
    drives_init(&d, "markfail");
    static fault_ctx f;
    memset(&f, 0, sizeof(f));
    f.err = EIO;
    bs_io io = bs_io_posix;
    io.open = f_open;
    io.pwrite = f_pwrite;
    io.fdatasync = f_fdatasync;
    io.ctx = &f;
    snprintf(f.bad[0], sizeof(f.bad[0]), "%s/", d.dirs[2]);
    ob_store *st = open_store(&d, &io);
    md_layout lay[8];
    const uint64_t size[8] = {100, K * CELL, 3 * K * CELL + 7, 9000, 1, 2 * K * CELL, 5000, 64};
    for (int b = 0; b < 8; b++) {
        CU_ASSERT_EQUAL_FATAL(write_body(st, 40 + (uint32_t)b, size[b], &lay[b]), CM_OK);
        CU_ASSERT_EQUAL(cells_in(&lay[b]), K + M - 1);
        for (int i = 0; i < K + M; i++)
            CU_ASSERT(lay[b].drives[i] != 2);
        CU_ASSERT_EQUAL(ob_store_drive_state(st, 2), b < 2 ? OB_DRIVE_OK : OB_DRIVE_FAILED);
    }
    CU_ASSERT_EQUAL(ob_store_drives_online(st), ND - 1);
    CU_ASSERT_STRING_EQUAL(ob_drive_state_name(ob_store_drive_state(st, 2)), "failed");
    for (int b = 0; b < 8; b++)
        CU_ASSERT(read_random(st, &lay[b], 40 + (uint32_t)b, 5));
    /* What the admin API reports: a failed drive has a state and no counters; a healthy one
     * holds one blob per body with a cell on it. */
    ob_drive_stats ds;
    ob_store_drive_stats(st, 2, &ds);
    CU_ASSERT_EQUAL(ds.state, OB_DRIVE_FAILED);
    CU_ASSERT_EQUAL(ds.usable, 0);
    CU_ASSERT_EQUAL(ds.blobs, 0);
    for (int dr = 0; dr < ND; dr++) {
        uint64_t want = 0;
        for (int b = 0; b < 8; b++)
            for (int i = 0; i < K + M; i++)
                want += lay[b].drives[i] == dr;
        if (dr == 2)
            continue;
        ob_store_drive_stats(st, dr, &ds);
        CU_ASSERT_EQUAL(ds.state, OB_DRIVE_OK);
        CU_ASSERT_EQUAL(ds.usable, 1);
        CU_ASSERT_EQUAL(ds.blobs, want);
        CU_ASSERT(ds.live_bytes > 0 && ds.used_bytes >= ds.live_bytes && ds.segments >= 1);
    }
    ob_store_drive_stats(st, ND, &ds);
    CU_ASSERT_EQUAL(ds.state, OB_DRIVE_OFFLINE);
    CU_ASSERT_EQUAL(ds.usable, 0);
    CU_ASSERT_EQUAL(ob_store_probe(st), 1); /* the fault lasts: still failed */
    CU_ASSERT_EQUAL(ob_store_drive_state(st, 2), OB_DRIVE_FAILED);
    f.healed = 1;
    CU_ASSERT_EQUAL(ob_store_probe(st), 0);
    CU_ASSERT_EQUAL(ob_store_drive_state(st, 2), OB_DRIVE_OK);
    CU_ASSERT_EQUAL(ob_store_drives_online(st), ND);
    md_layout back;
    CU_ASSERT_EQUAL_FATAL(write_body(st, 50, 2 * K * CELL + 3, &back), CM_OK);
    CU_ASSERT_EQUAL(cells_in(&back), K + M);
    CU_ASSERT(read_random(st, &back, 50, 5));
    for (int b = 0; b < 8; b++)
        CU_ASSERT(read_ok(st, &lay[b], 40 + (uint32_t)b, 0, (size_t)lay[b].size));
    ob_store_close(st);
}

/*
 * Drive 3 fails only fdatasync: the first body stores 5 cells and the drive is FAILED at once (a
 * failed sync is sticky in the blob store), a probe keeps it failed even once the fault clears,
 * and a restart (reopening the stores) brings it back with the body readable.
 */
static void test_sync_failure_fails_drive(void)
{
    drives d;
    drives_init(&d, "syncfail");
    static fault_ctx f;
    memset(&f, 0, sizeof(f));
    f.err = EIO;
    bs_io io = bs_io_posix;
    io.open = f_open;
    io.fdatasync = f_fdatasync;
    io.ctx = &f;
    snprintf(f.bad[0], sizeof(f.bad[0]), "%s/", d.dirs[3]);
    ob_store *st = open_store(&d, &io);
    md_layout lay;
    CU_ASSERT_EQUAL_FATAL(write_body(st, 80, 2 * K * CELL + 5, &lay), CM_OK);
    CU_ASSERT_EQUAL(cells_in(&lay), K + M - 1);
    CU_ASSERT_EQUAL(ob_store_drive_state(st, 3), OB_DRIVE_FAILED);
    CU_ASSERT(read_random(st, &lay, 80, 5));
    f.healed = 1;
    CU_ASSERT_EQUAL(ob_store_probe(st), 1);
    CU_ASSERT_EQUAL(ob_store_drive_state(st, 3), OB_DRIVE_FAILED);
    ob_store_close(st);
    st = open_store(&d, &io);
    CU_ASSERT_EQUAL(ob_store_drive_state(st, 3), OB_DRIVE_OK);
    CU_ASSERT(read_random(st, &lay, 80, 5));
    ob_store_close(st);
}

typedef struct {
    ob_store *st;
    uint32_t tag0;
    int n, ok;
} race_arg;

/* One writer thread: n bodies, each read back byte-exact right after it is written. */
static void *race_writer(void *p)
{
    race_arg *a = p;
    uint64_t r = SEED ^ a->tag0;
    size_t cap = 3 * K * CELL;
    uint8_t *buf = malloc(cap);
    a->ok = buf != NULL;
    for (int i = 0; a->ok && i < a->n; i++) {
        size_t size = 1 + (size_t)(cu_xorshift(&r) % cap);
        uint32_t tag = a->tag0 + (uint32_t)i;
        for (size_t j = 0; j < size; j++)
            buf[j] = cu_pattern(7, tag, j);
        ob_writer *w = NULL;
        md_layout lay;
        a->ok = ob_writer_new(a->st, &w) == CM_OK;
        if (a->ok && ob_writer_write(w, buf, size) != CM_OK) {
            ob_writer_abort(w);
            a->ok = 0;
        }
        a->ok = a->ok && ob_writer_finish(w, &lay) == CM_OK;
        a->ok = a->ok && read_ok(a->st, &lay, tag, 0, size);
    }
    free(buf);
    return NULL;
}

/*
 * Four writers while drive 1 fails with EIO and the main thread probes and clears the fault
 * concurrently: every body is stored and reads back byte-exact, and the drive ends up back online.
 */
static void test_fail_under_load(void)
{
    drives d;
    drives_init(&d, "failload");
    static fault_ctx f;
    memset(&f, 0, sizeof(f));
    f.err = EIO;
    bs_io io = bs_io_posix;
    io.open = f_open;
    io.pwrite = f_pwrite;
    io.fdatasync = f_fdatasync;
    io.ctx = &f;
    snprintf(f.bad[0], sizeof(f.bad[0]), "%s/", d.dirs[1]);
    ob_store *st = open_store(&d, &io);
    pthread_t th[4];
    race_arg args[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (race_arg){st, 1000u * (uint32_t)(t + 1), 25, 0};
        CU_ASSERT_FATAL(pthread_create(&th[t], NULL, race_writer, &args[t]) == 0);
    }
    int probes = 0;
    while (ob_store_drive_state(st, 1) != OB_DRIVE_FAILED && probes < 1000000)
        probes += ob_store_probe(st) >= 0; /* races the writers; cannot bring it back yet */
    CU_ASSERT_EQUAL(ob_store_drive_state(st, 1), OB_DRIVE_FAILED);
    __atomic_store_n(&f.healed, 1, __ATOMIC_SEQ_CST);
    CU_ASSERT_EQUAL(ob_store_probe(st), 0);
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        CU_ASSERT(args[t].ok);
    }
    CU_ASSERT_EQUAL(ob_store_drive_state(st, 1), OB_DRIVE_OK);
    ob_store_close(st);
}

/* ENOSPC marks a drive full, never failed; a drive directory that vanishes is failed by a probe. */
static void test_full_and_vanished(void)
{
    drives d;
    drives_init(&d, "fullgone");
    static fault_ctx f;
    memset(&f, 0, sizeof(f));
    f.err = ENOSPC;
    bs_io io = bs_io_posix;
    io.open = f_open;
    io.pwrite = f_pwrite;
    io.ctx = &f;
    snprintf(f.bad[0], sizeof(f.bad[0]), "%s/", d.dirs[4]);
    ob_store *st = open_store(&d, &io);
    md_layout lay;
    for (int b = 0; b < 5; b++) {
        CU_ASSERT_EQUAL_FATAL(write_body(st, 60 + (uint32_t)b, K * CELL + 1, &lay), CM_OK);
        CU_ASSERT(read_random(st, &lay, 60 + (uint32_t)b, 3));
    }
    CU_ASSERT_EQUAL(ob_store_drive_state(st, 4), OB_DRIVE_FULL);
    CU_ASSERT_EQUAL(ob_store_drives_online(st), ND);
    f.healed = 1;
    char moved[700];
    snprintf(moved, sizeof(moved), "%s.gone", d.dirs[5]);
    CU_ASSERT_FATAL(rename(d.dirs[5], moved) == 0);
    CU_ASSERT_EQUAL(ob_store_probe(st), 1);
    CU_ASSERT_EQUAL(ob_store_drive_state(st, 5), OB_DRIVE_FAILED);
    CU_ASSERT(read_random(st, &lay, 64, 5)); /* reads come from the others */
    CU_ASSERT_EQUAL_FATAL(write_body(st, 70, 3 * K * CELL, &lay), CM_OK);
    CU_ASSERT_EQUAL(cells_in(&lay), K + M - 1);
    CU_ASSERT_FATAL(rename(moved, d.dirs[5]) == 0); /* the same directory is back */
    CU_ASSERT_EQUAL(ob_store_probe(st), 0);
    CU_ASSERT_EQUAL(ob_store_drive_state(st, 5), OB_DRIVE_OK);
    CU_ASSERT(read_random(st, &lay, 70, 5));
    ob_store_close(st);
}

static void test_drive_fails_mid_write(void)
{
    drives d;
    drives_init(&d, "midfail");
    static fault_ctx f;
    memset(&f, 0, sizeof(f));
    f.err = EIO;
    bs_io io = bs_io_posix;
    io.open = f_open;
    io.pwrite = f_pwrite;
    io.ctx = &f;
    snprintf(f.bad[0], sizeof(f.bad[0]), "%s/", d.dirs[2]);
    ob_store *st = open_store(&d, &io);
    md_layout lay;
    CU_ASSERT_EQUAL_FATAL(write_body(st, 21, 5 * K * CELL + 999, &lay), CM_OK);
    int dropped = 0;
    for (int i = 0; i < K + M; i++)
        dropped += lay.drives[i] == 0xFF;
    CU_ASSERT_EQUAL(dropped, 1);
    CU_ASSERT(read_random(st, &lay, 21, 20));
    /* a second failing drive leaves 4 < k+1 cells: the body fails and leaves nothing */
    snprintf(f.bad[1], sizeof(f.bad[1]), "%s/", d.dirs[4]);
    f.err = ENOSPC;
    ob_store_close(st);
    st = open_store(&d, &io);
    CU_ASSERT_EQUAL(write_body(st, 22, 3 * K * CELL, &lay), CM_ERR_NOSPC);
    ob_store_close(st);
    CU_ASSERT_EQUAL(blobs_on_drives(&d), 5); /* only the first body's 5 cells */
}

static void test_drive_offline_at_open(void)
{
    drives d;
    drives_init(&d, "offline");
    /* a regular file where drive 3's directory should be: that drive cannot open */
    int fd = open(d.dirs[3], O_CREAT | O_WRONLY, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    ob_store *st = open_store(&d, NULL);
    CU_ASSERT_EQUAL(ob_store_drives_online(st), ND - 1);
    md_layout lay;
    CU_ASSERT_EQUAL_FATAL(write_body(st, 30, 2 * K * CELL + 5, &lay), CM_OK);
    for (int i = 0; i < K + M; i++)
        CU_ASSERT(lay.drives[i] != 3);
    CU_ASSERT(read_random(st, &lay, 30, 10));
    ob_store_close(st);
}

static void test_invalid(void)
{
    drives d;
    drives_init(&d, "inval");
    ob_store *st = NULL;
    ob_store_options bad_cell = {.k = K, .m = M, .cell_size = 1000},
                     too_wide = {.k = 5, .m = 2, .cell_size = CELL};
    CU_ASSERT_EQUAL(ob_store_open(d.ptrs, ND, &bad_cell, &st), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(ob_store_open(d.ptrs, ND, &too_wide, &st), CM_ERR_INVAL);
    ob_store_close(NULL);
}

/* 1 when the blob of lay exists on the drive holding its cell i (read through the store). */
static int cell_blob_exists(ob_store *st, const md_layout *lay, int i)
{
    bs_id id;
    uint64_t sz;
    bs_store *bs = ob_store_drive(st, lay->drives[i]);
    memcpy(id.b, lay->blob, 16);
    return bs && bs_size(bs, &id, &sz) == CM_OK;
}

/*
 * A layout names (node, drive) per cell and the epoch: a store stamps its own node and epoch on
 * what it writes, and treats cells another node holds as not its own: a read reconstructs without
 * them, a delete leaves them, and three of them in a 4+2 stripe make the body unreadable here.
 */
static void test_layout_nodes(void)
{
    drives d;
    drives_init(&d, "nodes");
    ob_store_options o = {.k = K, .m = M, .cell_size = CELL, .node = 3, .epoch = 5};
    ob_store *st = NULL;
    CU_ASSERT_FATAL(ob_store_open(d.ptrs, ND, &o, &st) == CM_OK);
    md_layout lay;
    CU_ASSERT_EQUAL_FATAL(write_body(st, 90, 3 * K * CELL + 100, &lay), CM_OK);
    CU_ASSERT_EQUAL(lay.epoch, 5);
    for (int i = 0; i < K + M; i++)
        CU_ASSERT_EQUAL(lay.nodes[i], 3);
    CU_ASSERT(read_random(st, &lay, 90, 10));

    md_layout mixed = lay;
    mixed.nodes[0] = mixed.nodes[K] = 9; /* a data and a parity cell on node 9 */
    CU_ASSERT(read_random(st, &mixed, 90, 10));
    mixed.nodes[1] = 9;
    uint8_t buf[64];
    CU_ASSERT_EQUAL(ob_read(st, &mixed, 0, buf, sizeof(buf)), CM_ERR_UNAVAILABLE);

    mixed.nodes[1] = 3;
    ob_delete(st, &mixed);
    ob_store_drain(st);
    for (int i = 0; i < K + M; i++)
        CU_ASSERT_EQUAL(cell_blob_exists(st, &lay, i), i == 0 || i == K);
    ob_store_close(st);
}

void cu_register(void)
{
    printf("test_obj_data seed %#x\n", SEED);
    cm_log_set_level(CM_LOG_ERROR);
    static const cu_test tests[] = {{"sizes_and_ranges", test_sizes},
                                    {"any_two_drives_lost", test_two_drives_lost},
                                    {"three_drives_lost", test_three_drives_lost},
                                    {"corrupt_cell_reconstructed", test_corrupt_cell},
                                    {"cached_reads", test_cached_reads},
                                    {"abort_and_delete_leave_nothing", test_abort},
                                    {"slow_drive_delays_only_its_deletes", test_slow_drive_deletes},
                                    {"drive_fails_mid_write", test_drive_fails_mid_write},
                                    {"drive_offline_at_open", test_drive_offline_at_open},
                                    {"drive_marked_failed_and_back", test_drive_marked_failed},
                                    {"drive_full_and_vanished", test_full_and_vanished},
                                    {"sync_failure_fails_drive", test_sync_failure_fails_drive},
                                    {"drive_fails_under_load", test_fail_under_load},
                                    {"invalid_options", test_invalid},
                                    {"layout_names_node_and_epoch", test_layout_nodes},
                                    {NULL, NULL}};
    cu_add_suite("obj_data", tests);
}
