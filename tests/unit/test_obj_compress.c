/*
 * test_obj_compress.c - transparent compression (ob_zstd.c, docs/compression.md): the framing
 * writer and ranged reader over an in-memory stream (round trips around frame boundaries, random
 * ranges), the adaptive decision (text compressed, random stored as it came, a random tail after
 * a text head stored raw frame by frame), stored bytes as hostile input (every flipped byte of a
 * frame, forged table entries and layouts: CM_ERR_CORRUPT, never a crash or wrong bytes), and a
 * compressing store over 6 drives (4+2, 4 KiB cells) read back whole, by ranges across stripe
 * boundaries, and with a drive's blob gone. Offloaded compression (ob_zw_offload) with a runner
 * that holds jobs until the test runs them: the same stream as inline, at most three frames on
 * the workers, a random body tested with one, a finish with a frame still queued, a writer freed
 * with a frame in flight; and with a thread per job (real concurrency, the loop waiting for room
 * as the gateway does), the same stream as inline. Through a sink that takes part (a cluster
 * writer's window, ob_zw_sink_some), inline and offloaded, the same stream again. Random choices
 * use a fixed, printed seed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "cm_log.h"
#include "cm_util.h"
#include "cu_data.h"
#include "cu_main.h"
#include "ob_int.h"

#define SEED 0xC0DEu
#define FRAME 16384u

static uint64_t rng = SEED;

/* A stored stream kept in memory: the sink appends, the source reads. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} mem;

static cm_err mem_sink(void *arg, const void *data, size_t len)
{
    mem *m = arg;
    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2;
        m->p = realloc(m->p, m->cap);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m->p);
    }
    memcpy(m->p + m->len, data, len);
    m->len += len;
    return CM_OK;
}

static cm_err mem_src(void *arg, uint64_t off, void *buf, size_t len)
{
    mem *m = arg;
    if (off > m->len || len > m->len - off)
        return CM_ERR_RANGE;
    memcpy(buf, m->p + off, len);
    return CM_OK;
}

/* Text-like bytes: words from a small vocabulary, so zstd finds repeats but not a pattern. */
static void fill_text(uint8_t *b, size_t n, uint64_t *st)
{
    static const char *words[] = {"cairn ", "stripe ", "object ", "bucket ", "\n",  "erasure ",
                                  "0123 ",  "drive ",  "scrub ",  "the ",    "of ", "compress "};
    size_t i = 0;
    while (i < n) {
        const char *w = words[cu_xorshift(st) % 12];
        for (size_t j = 0; w[j] && i < n; j++)
            b[i++] = (uint8_t)w[j];
    }
}

static void fill_random(uint8_t *b, size_t n, uint64_t *st)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)cu_xorshift(st);
}

/* Store body through a compressing writer in random pieces; lay describes the stream. */
static void store(const uint8_t *body, size_t n, mem *m, md_layout *lay)
{
    ob_zw *z = NULL;
    memset(m, 0, sizeof(*m));
    memset(lay, 0, sizeof(*lay));
    CU_ASSERT_EQUAL_FATAL(ob_zw_new(1, FRAME, &z), CM_OK);
    for (size_t off = 0; off < n;) {
        size_t r = 1 + cu_xorshift(&rng) % (3 * FRAME), piece = CM_MIN(n - off, r);
        CU_ASSERT_EQUAL_FATAL(ob_zw_write(z, body + off, piece, mem_sink, m), CM_OK);
        off += piece;
    }
    CU_ASSERT_EQUAL_FATAL(ob_zw_finish(z, mem_sink, m, lay), CM_OK);
    uint64_t logical, stored;
    ob_zw_counts(z, &logical, &stored);
    CU_ASSERT_EQUAL(logical, n);
    CU_ASSERT_EQUAL(stored, m->len);
    ob_zw_free(z);
    lay->size = m->len;
}

/* Whole body, every frame edge +-1, and random ranges read back exactly. */
static void check_reads(const md_layout *lay, mem *m, const uint8_t *body, size_t n)
{
    uint8_t *got = malloc(n + 1);
    CU_ASSERT_EQUAL_FATAL(ob_z_read(lay, 0, got, n, mem_src, m), CM_OK);
    CU_ASSERT_EQUAL(memcmp(got, body, n), 0);
    for (size_t edge = FRAME; edge < n; edge += FRAME) {
        size_t a = edge - 1, len = CM_MIN(n - a, 2);
        CU_ASSERT_EQUAL(ob_z_read(lay, a, got, len, mem_src, m), CM_OK);
        CU_ASSERT_EQUAL(memcmp(got, body + a, len), 0);
    }
    for (int i = 0; i < 200; i++) {
        size_t a = cu_xorshift(&rng) % n, len = 1 + cu_xorshift(&rng) % (n - a);
        if (ob_z_read(lay, a, got, len, mem_src, m) != CM_OK || memcmp(got, body + a, len)) {
            CU_FAIL("range read differs");
            printf("seed=%u range %zu+%zu\n", SEED, a, len);
            break;
        }
    }
    CU_ASSERT_EQUAL(ob_z_read(lay, n, got, 1, mem_src, m), CM_ERR_RANGE);
    CU_ASSERT_EQUAL(ob_z_read(lay, n, got, 0, mem_src, m), CM_OK);
    free(got);
}

static void test_roundtrip_text(void)
{
    size_t sizes[] = {1, FRAME - 1, FRAME, FRAME + 1, 5 * FRAME + 17, 64 * FRAME};
    uint8_t *body = malloc(64 * FRAME);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        mem m;
        md_layout lay;
        size_t n = sizes[s];
        fill_text(body, n, &rng);
        store(body, n, &m, &lay);
        if (n < 64) { /* too short to save 1/8 after zstd's header */
            CU_ASSERT_EQUAL(lay.zalg, MD_Z_NONE);
            CU_ASSERT_EQUAL(m.len, n);
            free(m.p);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(lay.zalg, MD_Z_ZSTD);
        CU_ASSERT_EQUAL(lay.zsize, n);
        CU_ASSERT_EQUAL(lay.zframe, FRAME);
        CU_ASSERT_EQUAL(ob_z_check(&lay), CM_OK);
        CU_ASSERT(m.len < n / 2);
        check_reads(&lay, &m, body, n);
        free(m.p);
    }
    free(body);
}

/* The decision: 1/8 saved or not; random bodies go as they came, with no table. */
static void test_adaptive(void)
{
    CU_ASSERT_TRUE(ob_z_worth(1000, 875));
    CU_ASSERT_FALSE(ob_z_worth(1000, 876));
    CU_ASSERT_FALSE(ob_z_worth(1000, 0));
    size_t n = 20 * FRAME + 5;
    uint8_t *body = malloc(n);
    mem m;
    md_layout lay;
    fill_random(body, n, &rng);
    store(body, n, &m, &lay);
    CU_ASSERT_EQUAL(lay.zalg, MD_Z_NONE);
    CU_ASSERT_EQUAL(m.len, n);
    CU_ASSERT_EQUAL(memcmp(m.p, body, n), 0); /* the stream is the body itself */
    free(m.p);

    /* After the first full frame is refused the writer is a pass-through. */
    ob_zw *z = NULL;
    memset(&m, 0, sizeof(m));
    CU_ASSERT_EQUAL_FATAL(ob_zw_new(1, FRAME, &z), CM_OK);
    CU_ASSERT_EQUAL(ob_zw_write(z, body, FRAME - 1, mem_sink, &m), CM_OK);
    CU_ASSERT_FALSE(ob_zw_raw(z));
    CU_ASSERT_EQUAL(m.len, 0);
    CU_ASSERT_EQUAL(ob_zw_write(z, body + FRAME - 1, 2, mem_sink, &m), CM_OK);
    CU_ASSERT_TRUE(ob_zw_raw(z));
    CU_ASSERT_EQUAL(m.len, FRAME + 1);
    ob_zw_free(z);
    free(m.p);

    /* A text head, then random: compressed, the random frames raw (stream about body size). */
    fill_text(body, 2 * FRAME, &rng);
    store(body, n, &m, &lay);
    CU_ASSERT_EQUAL_FATAL(lay.zalg, MD_Z_ZSTD);
    CU_ASSERT(m.len < n);
    CU_ASSERT(m.len > n - 2 * FRAME);
    check_reads(&lay, &m, body, n);
    /* Raw frames: stored length equal to the frame's (table entries 3.. are FRAME apart). */
    uint64_t e3 = cm_get_be64(m.p + lay.ztab + 8 * 3), e4 = cm_get_be64(m.p + lay.ztab + 8 * 4);
    CU_ASSERT_EQUAL(e4 - e3, FRAME);
    free(m.p);
    free(body);
}

/* Every byte of a compressed frame flipped in turn: the read fails CORRUPT or (a flip zstd's
 * checksum cannot see, which must then change nothing) returns the exact bytes. */
static void test_corrupt_frames(void)
{
    size_t n = 3 * FRAME;
    uint8_t *body = malloc(n), *got = malloc(n);
    mem m;
    md_layout lay;
    fill_text(body, n, &rng);
    store(body, n, &m, &lay);
    CU_ASSERT_EQUAL_FATAL(lay.zalg, MD_Z_ZSTD);
    uint64_t end0 = cm_get_be64(m.p + lay.ztab);
    int saved = cm_log_threshold, silent_ok = 0;
    cm_log_threshold = -1;
    for (uint64_t i = 0; i < end0; i++) {
        uint8_t bit = (uint8_t)(1u << (cu_xorshift(&rng) % 8));
        m.p[i] ^= bit;
        cm_err e = ob_z_read(&lay, 100, got, FRAME - 200, mem_src, &m);
        if (e == CM_OK)
            silent_ok += memcmp(got, body + 100, FRAME - 200) == 0;
        else
            CU_ASSERT_EQUAL(e, CM_ERR_CORRUPT);
        CU_ASSERT(e != CM_OK || memcmp(got, body + 100, FRAME - 200) == 0);
        m.p[i] ^= bit;
    }
    printf("(%d of %llu flips harmless) ", silent_ok, (unsigned long long)end0);

    /* Random bytes in place of a frame. */
    uint8_t *save = malloc(end0);
    memcpy(save, m.p, end0);
    fill_random(m.p, end0, &rng);
    CU_ASSERT_EQUAL(ob_z_read(&lay, 0, got, FRAME, mem_src, &m), CM_ERR_CORRUPT);
    memcpy(m.p, save, end0);
    free(save);

    /* Forged table entries: past the table, going backwards, longer than a frame. */
    uint8_t *t1 = m.p + lay.ztab + 8;
    uint64_t keep = cm_get_be64(t1);
    uint64_t forged[] = {lay.ztab + 1, end0 - 1, end0 + FRAME + 1, UINT64_MAX};
    for (size_t f = 0; f < 4; f++) {
        cm_put_be64(t1, forged[f]);
        CU_ASSERT_EQUAL(ob_z_read(&lay, FRAME, got, FRAME, mem_src, &m), CM_ERR_CORRUPT);
    }
    cm_put_be64(t1, keep);
    CU_ASSERT_EQUAL(ob_z_read(&lay, 0, got, n, mem_src, &m), CM_OK);

    /* Forged layouts: the table does not fit the stream, a frame too big. */
    md_layout bad = lay;
    bad.ztab += 8;
    CU_ASSERT_EQUAL(ob_z_read(&bad, 0, got, 10, mem_src, &m), CM_ERR_CORRUPT);
    bad = lay;
    bad.zsize += FRAME;
    CU_ASSERT_EQUAL(ob_z_read(&bad, 0, got, 10, mem_src, &m), CM_ERR_CORRUPT);
    bad = lay;
    bad.zframe = OB_Z_FRAME_MAX + 64;
    CU_ASSERT_EQUAL(ob_z_read(&bad, 0, got, 10, mem_src, &m), CM_ERR_CORRUPT);

    /* The decoder alone: a frame whose content size differs from what is expected. */
    CU_ASSERT_EQUAL(ob_z_decode(m.p, (size_t)end0, got, FRAME - 1), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(ob_z_decode(m.p, 3, got, FRAME), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(ob_z_decode(m.p, (size_t)end0 - 1, got, FRAME), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(ob_z_decode(m.p, (size_t)end0, got, FRAME), CM_OK);
    cm_log_threshold = saved;
    free(m.p);
    free(body);
    free(got);
}

/* A compressing store: bodies go through ob_writer and come back through ob_read. */
static void test_store(void)
{
    const char *ptrs[6];
    char dirs[6][600];
    for (int i = 0; i < 6; i++) {
        snprintf(dirs[i], sizeof(dirs[i]), "%s/zs/d%d", cu_tmpdir(), i);
        ptrs[i] = dirs[i];
    }
    char root[600];
    snprintf(root, sizeof(root), "%s/zs", cu_tmpdir());
    mkdir(root, 0755);
    static bs_io keep; /* synced pages stay cached: ob_read_cached finds them */
    keep = bs_io_posix;
    keep.drop = NULL;
    ob_store_options o = {.k = 4, .m = 2, .cell_size = 4096, .compress_level = 3, .io = &keep};
    ob_store *st = NULL;
    CU_ASSERT_EQUAL_FATAL(ob_store_open(ptrs, 6, &o, &st), CM_OK);
    size_t n = 40 * 16384 + 333;
    uint8_t *body = malloc(n), *got = malloc(n);
    fill_text(body, n, &rng);
    ob_writer *w = NULL;
    md_layout lay;
    CU_ASSERT_EQUAL_FATAL(ob_writer_new(st, &w), CM_OK);
    CU_ASSERT_EQUAL(ob_writer_write(w, body, 1000), CM_OK);
    CU_ASSERT_EQUAL(ob_writer_write(w, body + 1000, n - 1000), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_writer_finish(w, &lay), CM_OK);
    CU_ASSERT_EQUAL_FATAL(lay.zalg, MD_Z_ZSTD);
    CU_ASSERT_EQUAL(lay.zframe, 16384); /* one stripe's payload */
    CU_ASSERT_EQUAL(MD_LAYOUT_BODY_SIZE(&lay), n);
    CU_ASSERT(lay.size < n / 2);
    ob_zstats zs;
    ob_store_zstats(st, &zs);
    CU_ASSERT_EQUAL(zs.bodies, 1);
    CU_ASSERT_EQUAL(zs.logical_bytes, n);
    CU_ASSERT_EQUAL(zs.stored_bytes, lay.size);
    CU_ASSERT_EQUAL_FATAL(ob_read(st, &lay, 0, got, n), CM_OK);
    CU_ASSERT_EQUAL(memcmp(got, body, n), 0);
    memset(got, 0, n);
    CU_ASSERT_EQUAL(ob_read_cached(st, &lay, 0, got, n), CM_OK); /* decoded on the caller's loop */
    CU_ASSERT_EQUAL(memcmp(got, body, n), 0);
    for (int i = 0; i < 100; i++) {
        size_t a = cu_xorshift(&rng) % n, most = CM_MIN(n - a, 40000);
        size_t len = 1 + cu_xorshift(&rng) % most;
        CU_ASSERT_EQUAL(ob_read(st, &lay, a, got, len), CM_OK);
        CU_ASSERT_EQUAL(memcmp(got, body + a, len), 0);
    }
    CU_ASSERT_EQUAL(ob_read(st, &lay, n - 10, got, 11), CM_ERR_RANGE);

    /* A data cell's blob gone: the stream is rebuilt from parity, the body still exact. */
    bs_id id;
    memcpy(id.b, lay.blob, 16);
    int saved = cm_log_threshold;
    cm_log_threshold = -1;
    CU_ASSERT_EQUAL(bs_delete(ob_store_drive(st, lay.drives[0]), &id), CM_OK);
    CU_ASSERT_EQUAL(ob_read_cached(st, &lay, 12345, got, 50000), CM_AGAIN); /* a worker rebuilds */
    CU_ASSERT_EQUAL(ob_read(st, &lay, 12345, got, 50000), CM_OK);
    CU_ASSERT_EQUAL(memcmp(got, body + 12345, 50000), 0);
    cm_log_threshold = saved;

    /* Random data: stored as it came, counted as skipped. */
    fill_random(body, n, &rng);
    CU_ASSERT_EQUAL_FATAL(ob_writer_new(st, &w), CM_OK);
    CU_ASSERT_EQUAL(ob_writer_write(w, body, n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_writer_finish(w, &lay), CM_OK);
    CU_ASSERT_EQUAL(lay.zalg, MD_Z_NONE);
    CU_ASSERT_EQUAL(lay.size, n);
    CU_ASSERT_EQUAL_FATAL(ob_read(st, &lay, 0, got, n), CM_OK);
    CU_ASSERT_EQUAL(memcmp(got, body, n), 0);
    ob_store_zstats(st, &zs);
    CU_ASSERT_EQUAL(zs.bodies, 1);
    CU_ASSERT_EQUAL(zs.skipped, 1);
    ob_store_close(st);
    free(body);
    free(got);
}

/* ---- offloaded compression (ob_zw_offload): a runner that holds jobs until the test runs them */

typedef struct {
    ob_job *jobs[8];
    int n, given, refuse; /* held, handed out in all, refuse (the writer runs them itself) */
} held;

static int hold_job(void *ctx, ob_job *j)
{
    held *h = ctx;
    if (h->refuse || h->n == 8)
        return -1;
    h->jobs[h->n++] = j;
    h->given++;
    return 0;
}

/* Run the oldest held job, then the loop's events (the writer's completion). */
static void run_one(held *h, struct event_base *base)
{
    ob_job *j = h->jobs[0];
    memmove(h->jobs, h->jobs + 1, (size_t)--h->n * sizeof(*h->jobs));
    j->run(j);
    event_base_loop(base, EVLOOP_NONBLOCK);
}

static void note_room(void *arg)
{
    ++*(int *)arg;
}

/* Write body through an offloading writer, running one job whenever it is full; the stream is
 * left in m. *most = the most jobs held at once. */
static void store_offloaded(const uint8_t *body, size_t n, mem *m, md_layout *lay, int *most)
{
    struct event_base *base = event_base_new();
    held h = {0};
    ob_zw *z = NULL;
    int rooms = 0, waits = 0;
    memset(m, 0, sizeof(*m));
    CU_ASSERT_EQUAL_FATAL(ob_zw_new(1, FRAME, &z), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_zw_offload(z, base, hold_job, &h, mem_sink, m), CM_OK);
    CU_ASSERT_EQUAL(ob_zw_write(z, body, 1, mem_sink, m), CM_ERR_INVAL); /* loop-owned */
    *most = 0;
    for (size_t off = 0; off < n;) {
        size_t r = 1 + cu_xorshift(&rng) % (3 * FRAME), taken = 0, piece = CM_MIN(n - off, r);
        cm_err e = ob_zw_write_some(z, body + off, piece, &taken);
        off += taken;
        *most = h.n > *most ? h.n : *most;
        if (e == CM_AGAIN) { /* every slot holds a frame: wait for one, as the gateway does */
            CU_ASSERT_FATAL(h.n > 0);
            CU_ASSERT_EQUAL(ob_zw_on_room(z, note_room, &rooms), CM_OK);
            run_one(&h, base);
            waits++;
            CU_ASSERT_EQUAL(rooms, waits);
        } else {
            CU_ASSERT_EQUAL_FATAL(e, CM_OK);
            CU_ASSERT_EQUAL(taken, piece);
        }
    }
    while (h.n > 0)
        run_one(&h, base);
    h.refuse = 1; /* the last frame runs inside finish (a runner that refuses) */
    CU_ASSERT_EQUAL_FATAL(ob_zw_finish(z, mem_sink, m, lay), CM_OK);
    ob_zw_free(z);
    event_base_free(base);
    lay->size = m->len;
}

/* The stream is the same as compressing inline; the writer holds at most its slots; a random
 * body sends one frame to the workers (the test) and goes raw; a writer freed with frames on
 * the workers is freed by the last of them. */
static void test_offload(void)
{
    size_t n = 40 * FRAME + 333;
    uint8_t *body = malloc(n);
    mem a, b;
    md_layout la, lb;
    int most = 0;
    fill_text(body, n, &rng);
    store(body, n, &a, &la);
    store_offloaded(body, n, &b, &lb, &most);
    CU_ASSERT_EQUAL_FATAL(lb.zalg, MD_Z_ZSTD);
    CU_ASSERT_EQUAL(most, 3); /* OB_Z_SLOTS: all three frames on the workers, none filling */
    CU_ASSERT_EQUAL(b.len, a.len);
    CU_ASSERT(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
    CU_ASSERT_EQUAL(lb.ztab, la.ztab);
    check_reads(&lb, &b, body, n);
    free(a.p);
    free(b.p);

    fill_random(body, n, &rng);
    store_offloaded(body, n, &b, &lb, &most);
    CU_ASSERT_EQUAL(lb.zalg, MD_Z_NONE);
    CU_ASSERT_EQUAL(most, 1); /* while the first frame is tested, the others wait */
    CU_ASSERT(b.len == n && memcmp(b.p, body, n) == 0);
    free(b.p);

    /* Finished with frames still queued: the finisher compresses them itself (a pool whose
     * workers all finish PUTs must not wait on its own queue); the queued job then does nothing
     * and, z being freed, frees it. */
    struct event_base *base = event_base_new();
    held h = {0};
    ob_zw *z = NULL;
    size_t taken = 0;
    fill_text(body, n, &rng);
    store(body, 5 * FRAME / 2, &a, &la);
    memset(&b, 0, sizeof(b));
    memset(&lb, 0, sizeof(lb));
    CU_ASSERT_EQUAL_FATAL(ob_zw_new(1, FRAME, &z), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_zw_offload(z, base, hold_job, &h, mem_sink, &b), CM_OK);
    CU_ASSERT_EQUAL(ob_zw_write_some(z, body, 5 * FRAME / 2, &taken), CM_OK);
    CU_ASSERT_EQUAL(h.n, 1); /* frame 0 on a "worker", not started; 1 and 2 wait for it */
    CU_ASSERT_EQUAL_FATAL(ob_zw_finish(z, mem_sink, &b, &lb), CM_OK);
    CU_ASSERT_EQUAL(h.given, 1); /* the rest compressed by the finisher */
    CU_ASSERT(b.len == a.len && memcmp(a.p, b.p, a.len) == 0);
    CU_ASSERT_EQUAL(lb.ztab, la.ztab);
    ob_zw_free(z);
    run_one(&h, base); /* the stale job: nothing to do, frees z */
    free(a.p);
    free(b.p);

    memset(&b, 0, sizeof(b));
    fill_text(body, n, &rng);
    CU_ASSERT_EQUAL_FATAL(ob_zw_new(1, FRAME, &z), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_zw_offload(z, base, hold_job, &h, mem_sink, &b), CM_OK);
    CU_ASSERT_EQUAL(ob_zw_write_some(z, body, 2 * FRAME, &taken), CM_OK);
    CU_ASSERT_EQUAL(h.n, 1);
    ob_zw_free(z);     /* frame 0 still on a "worker" */
    run_one(&h, base); /* it frees z (ASan: no leak, no use after free) */
    CU_ASSERT_EQUAL(b.len, 0);
    event_base_free(base);
    free(body);
}

/* ---- the same with real threads: a thread per job, the loop waiting for room as the gateway */

static void *job_thread(void *arg)
{
    ob_job *j = arg;
    j->run(j);
    return NULL;
}

static int thread_job(void *ctx, ob_job *j)
{
    pthread_t t;
    (void)ctx;
    if (pthread_create(&t, NULL, job_thread, j) != 0)
        return -1;
    pthread_detach(t);
    return 0;
}

/* Frames compressed on other threads come back in order: the stream equals the inline one. */
static void test_offload_threads(void)
{
    size_t n = 64 * FRAME + 99;
    uint8_t *body = malloc(n);
    mem a, b = {0};
    md_layout la, lb = {0};
    int rooms = 0, waits = 0;
    evthread_use_pthreads();
    struct event_base *base = event_base_new();
    ob_zw *z = NULL;
    fill_text(body, n, &rng);
    memcpy(body + 20 * FRAME, body, 5 * FRAME); /* some frames alike, some random */
    fill_random(body + 40 * FRAME, 10 * FRAME, &rng);
    store(body, n, &a, &la);
    CU_ASSERT_EQUAL_FATAL(ob_zw_new(1, FRAME, &z), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_zw_offload(z, base, thread_job, NULL, mem_sink, &b), CM_OK);
    for (size_t off = 0; off < n;) {
        size_t r = 1 + cu_xorshift(&rng) % (2 * FRAME), taken = 0, piece = CM_MIN(n - off, r);
        cm_err e = ob_zw_write_some(z, body + off, piece, &taken);
        off += taken;
        if (e == CM_AGAIN) {
            CU_ASSERT_EQUAL(ob_zw_on_room(z, note_room, &rooms), CM_OK);
            waits++;
            while (rooms < waits) /* the workers' completions arrive as events */
                event_base_loop(base, EVLOOP_ONCE);
        } else {
            CU_ASSERT_EQUAL_FATAL(e, CM_OK);
        }
    }
    CU_ASSERT_EQUAL_FATAL(ob_zw_finish(z, mem_sink, &b, &lb), CM_OK);
    ob_zw_free(z);
    CU_ASSERT_EQUAL(lb.zalg, MD_Z_ZSTD);
    CU_ASSERT(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
    CU_ASSERT_EQUAL(lb.ztab, la.ztab);
    CU_ASSERT(waits > 0);
    event_base_free(base);
    free(a.p);
    free(b.p);
    free(body);
}

/* ---- a sink that takes part (a cluster writer's window: ob_zw_sink_some) ---- */

/* Takes at most `room` bytes per refill, then answers CM_AGAIN with what it took. */
typedef struct {
    mem m;
    size_t room;
    int agains;
} window;

static cm_err window_sink(void *arg, const void *data, size_t len, size_t *taken)
{
    window *w = arg;
    *taken = CM_MIN(len, w->room);
    w->room -= *taken;
    if (*taken > 0)
        mem_sink(&w->m, data, *taken);
    w->agains += *taken < len;
    return *taken < len ? CM_AGAIN : CM_OK;
}

/*
 * Write body through z into a window that fills up: on CM_AGAIN either the window drains some
 * (and, when z offloads, wakes z's event as the cluster writer's window does) or a held frame
 * compresses, chosen at random; the rest goes through a whole sink at finish, as a cluster
 * writer's worker sends it. Returns how often the window was full.
 */
static int store_windowed(const uint8_t *body, size_t n, int offload, mem *m, md_layout *lay)
{
    struct event_base *base = event_base_new();
    held h = {0};
    window win = {0};
    ob_zw *z = NULL;
    int rooms = 0;
    CU_ASSERT_EQUAL_FATAL(ob_zw_new(1, FRAME, &z), CM_OK);
    if (offload)
        CU_ASSERT_EQUAL_FATAL(ob_zw_offload(z, base, hold_job, &h, mem_sink, &win.m), CM_OK);
    ob_zw_sink_some(z, window_sink, &win);
    for (size_t off = 0; off < n;) {
        size_t r = 1 + cu_xorshift(&rng) % (2 * FRAME), taken = 0, piece = CM_MIN(n - off, r);
        cm_err e = ob_zw_write_some(z, body + off, piece, &taken);
        off += taken;
        if (e == CM_OK) {
            CU_ASSERT_EQUAL(taken, piece);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(e, CM_AGAIN);
        if (offload)
            CU_ASSERT_EQUAL(ob_zw_on_room(z, note_room, &rooms), CM_OK);
        if (h.n > 0 && (win.room > 0 || cu_xorshift(&rng) % 2)) {
            run_one(&h, base);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(win.room, 0); /* nothing held: the window is what is full */
        win.room = 1 + cu_xorshift(&rng) % FRAME;
        if (offload) {
            event_active(ob_zw_event(z), EV_TIMEOUT, 1);
            event_base_loop(base, EVLOOP_NONBLOCK);
        }
    }
    while (h.n > 0)
        run_one(&h, base);
    h.refuse = 1;
    CU_ASSERT_EQUAL_FATAL(ob_zw_finish(z, mem_sink, &win.m, lay), CM_OK);
    ob_zw_free(z);
    event_base_free(base);
    *m = win.m;
    lay->size = m->len;
    return win.agains;
}

/* Through a sink that takes part, inline and offloaded, the stream is the whole sink's, byte for
 * byte: a text body, a text head with a random tail (the skip rule), a random body (raw). */
static void test_partial_sink(void)
{
    size_t n = 40 * FRAME + 333;
    uint8_t *body = malloc(n);
    for (int kind = 0; kind < 3; kind++) {
        if (kind < 2)
            fill_text(body, n, &rng);
        if (kind == 1)
            fill_random(body + 8 * FRAME, n - 8 * FRAME, &rng);
        if (kind == 2)
            fill_random(body, n, &rng);
        mem a, b;
        md_layout la, lb;
        store(body, n, &a, &la);
        for (int offload = 0; offload < 2; offload++) {
            memset(&lb, 0, sizeof(lb));
            CU_ASSERT(store_windowed(body, n, offload, &b, &lb) > 0);
            CU_ASSERT_EQUAL(lb.zalg, kind == 2 ? MD_Z_NONE : MD_Z_ZSTD);
            CU_ASSERT_EQUAL(lb.zalg, la.zalg);
            CU_ASSERT_EQUAL(lb.ztab, la.ztab);
            CU_ASSERT(a.len == b.len && memcmp(a.p, b.p, a.len) == 0);
            if (lb.zalg == MD_Z_ZSTD)
                check_reads(&lb, &b, body, n);
            free(b.p);
        }
        free(a.p);
    }
    free(body);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"roundtrip_text", test_roundtrip_text},
                                    {"adaptive", test_adaptive},
                                    {"corrupt_frames", test_corrupt_frames},
                                    {"store", test_store},
                                    {"offload", test_offload},
                                    {"offload_threads", test_offload_threads},
                                    {"partial_sink", test_partial_sink},
                                    {NULL, NULL}};
    printf("test_obj_compress seed=%u\n", SEED);
    cu_add_suite("obj_compress", tests);
}
