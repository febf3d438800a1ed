/*
 * test_obj_cluster_compress.c - compression on cluster nodes (docs/compression.md, "Cluster
 * nodes"): a text body written without waiting is stored compressed and reads back byte-exact,
 * frame by frame, across frames, blocking and by evbuffer through other nodes; a read cancelled
 * with its fetch in flight never calls back; random bytes are stored as they came. A writer fed
 * from a loop compresses its frames on workers while the loop runs (ob_writer_offload:
 * compressed_offload), storing the very stream a writer compressing inline stores. The six nodes
 * are oc_env.h's, every store with compress_level 1.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cm_util.h"
#include "cu_main.h"
#include "nd.h"
#include "ob.h"
#include "oc_env.h"

/* Compression on cluster nodes (docs/compression.md, "Cluster nodes"): a text body written
 * without waiting (frames the full window does not take stay pending) is stored compressed, reads
 * back byte-exact without waiting (frame by frame, across two frames) and blocking through another
 * node; a read cancelled with its fetch in flight never calls back nor writes the buffer; a random
 * body is stored as it came. */
static void test_compressed(void)
{
    size_t len = 24 * SBYTES + 333;
    uint8_t *body = malloc(len), *back = malloc(len);
    md_layout lay, rnd;
    ob_writer *w;
    ob_read_op *op;
    zlevel = 1;
    window = 2;
    cluster_up();
    window = 0;
    tbase = event_base_new();
    fill_text(body, len, 5);
    /* slow appends to n2: the window of stripes in flight fills, frames wait pending (two
     * stripes, each 500 ms on n2: the writer compresses one stripe's stream, about 8 MiB of this
     * text, well before, even on a loaded machine) */
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n1", "n2", ND_FAULT_DELAY, 500), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_writer_new(N[0].st, &w), CM_OK);
    CU_ASSERT(write_nonblocking(w, body, len) > 0);
    nd_fault_clear(faults, NULL, NULL);
    CU_ASSERT_EQUAL_FATAL(ob_writer_finish(w, &lay), CM_OK);
    CU_ASSERT_EQUAL(lay.zalg, MD_Z_ZSTD);
    CU_ASSERT_EQUAL(lay.zsize, len);
    CU_ASSERT(lay.size > 0 && 2 * lay.size < len);
    CU_ASSERT_EQUAL(live_cells(&lay), K + M);
    memset(back, 0, len);
    read_stripes_async(4, &lay, back, len);
    CU_ASSERT(memcmp(body, back, len) == 0);
    /* across a frame boundary, then the same through a blocking read of another node */
    size_t off = 3 * SBYTES - 1000, n = SBYTES + 2000;
    int before = read_calls;
    memset(back, 0, n);
    CU_ASSERT_EQUAL_FATAL(ob_read_start(N[3].st, &lay, off, back, n, tbase, read_cb, NULL, &op),
                          CM_OK);
    run_until(&read_calls, before + 1, 10000);
    CU_ASSERT(read_calls == before + 1 && read_err == CM_OK && memcmp(body + off, back, n) == 0);
    memset(back, 0, n);
    CU_ASSERT_EQUAL(ob_read(N[2].st, &lay, off, back, n), CM_OK);
    CU_ASSERT(memcmp(body + off, back, n) == 0);
    CU_ASSERT(evb_matches(1, &lay, body, off, n, NULL)); /* decoded into a pooled buffer */
    /* cancelled with a fetch in flight: no callback, the buffer untouched (ASan: nothing leaks) */
    read_cancelled_untouched(&lay, back, 200);
    /* random bytes: the first frame does not compress, the body is stored as it came */
    fill(body, len, 11);
    CU_ASSERT_EQUAL_FATAL(ob_writer_new(N[1].st, &w), CM_OK);
    write_nonblocking(w, body, len);
    CU_ASSERT_EQUAL_FATAL(ob_writer_finish(w, &rnd), CM_OK);
    CU_ASSERT(rnd.zalg == MD_Z_NONE && rnd.size == len);
    CU_ASSERT(read_matches(5, &rnd, body, 0, len));
    event_base_free(tbase);
    free(body);
    free(back);
    cluster_down();
    zlevel = 0;
}

/* ---- a cluster writer's frames compress on workers (ob_writer_offload) ---- */

static atomic_int ticks, handed, gated, jobs_left, finishing;

/* The loop's heartbeat: a 1 ms timer on the test's loop. */
static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    atomic_fetch_add(&ticks, 1);
}

/* A worker's frame: it is not compressed before the loop has ticked twice since the frame was
 * handed over (bounded: 5 s, or the test finishing the body on its thread, which is the loop's).
 * A loop that compressed the frame itself, or waited for it, could not tick meanwhile. */
static void *gated_job(void *arg)
{
    ob_job *j = arg;
    int t0 = atomic_load(&ticks), ok = 0;
    for (int i = 0; i < 5000 && !ok && !atomic_load(&finishing); i++) {
        ok = atomic_load(&ticks) >= t0 + 2;
        if (!ok)
            usleep(1000);
    }
    atomic_fetch_add(&gated, ok);
    j->run(j);
    atomic_fetch_sub(&jobs_left, 1);
    return NULL;
}

static int gated_runner(void *ctx, ob_job *j)
{
    pthread_t t;
    (void)ctx;
    atomic_fetch_add(&jobs_left, 1);
    if (pthread_create(&t, NULL, gated_job, j) != 0) {
        atomic_fetch_sub(&jobs_left, 1);
        return -1;
    }
    atomic_fetch_add(&handed, 1);
    pthread_detach(t);
    return 0;
}

/*
 * A cluster writer fed from a loop compresses its frames on workers (docs/compression.md, "Off the
 * event loop"), with a slow node filling the window meanwhile: every frame is handed to the
 * runner, the loop ticks while each is held, the window's backpressure still bounds the writer's
 * buffers, and the stored stream is byte for byte the one a writer compressing inline stores (read
 * back plainly through another node); the body reads back exact.
 */
static void test_compressed_offload(void)
{
    size_t len = 24 * SBYTES + 333, nframes = 25;
    uint8_t *body = malloc(len), *s1 = NULL, *s2 = NULL;
    md_layout lay, inl;
    ob_writer *w;
    ob_cluster_stats cs;
    zlevel = 1;
    cluster_up();
    tbase = event_base_new();
    struct event *hb = event_new(tbase, -1, EV_PERSIST, tick, NULL);
    struct timeval ms1 = {0, 1000};
    event_add(hb, &ms1);
    atomic_store(&finishing, 0);
    fill_text(body, len, 7);
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n1", "n2", ND_FAULT_DELAY, 100), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_writer_new(N[0].st, &w), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_writer_offload(w, tbase, gated_runner, NULL), CM_OK);
    CU_ASSERT(write_nonblocking(w, body, len) > 0);
    atomic_store(&finishing, 1);
    CU_ASSERT_EQUAL_FATAL(ob_writer_finish(w, &lay), CM_OK);
    nd_fault_clear(faults, NULL, NULL);
    for (int i = 0; i < 10000 && atomic_load(&jobs_left) > 0; i++)
        usleep(1000); /* the job threads' last steps */
    CU_ASSERT_EQUAL(atomic_load(&jobs_left), 0);
    printf("\n  %d of %zu frames handed to workers, %d of them held while the loop ticked\n",
           atomic_load(&handed), nframes, atomic_load(&gated));
    CU_ASSERT(atomic_load(&handed) >= (int)nframes - 3); /* the last ones the finisher may take */
    CU_ASSERT(atomic_load(&gated) >= (int)nframes - 3);
    ob_store_cluster_stats(N[0].st, &cs);
    CU_ASSERT(cs.buf_high_water <= (uint64_t)WINDOW * (K + M) * CELL);
    CU_ASSERT_EQUAL(lay.zalg, MD_Z_ZSTD);
    CU_ASSERT_EQUAL(lay.zsize, len);
    CU_ASSERT_EQUAL(live_cells(&lay), K + M);
    CU_ASSERT(read_matches(3, &lay, body, 0, len));
    /* the same body compressed inline on a blocking writer: the same stream */
    CU_ASSERT_EQUAL_FATAL(put(1, body, len, 100000, &inl), CM_OK);
    CU_ASSERT_EQUAL(inl.zalg, MD_Z_ZSTD);
    CU_ASSERT_EQUAL_FATAL(inl.size, lay.size);
    CU_ASSERT_EQUAL(inl.ztab, lay.ztab);
    md_layout p1 = lay, p2 = inl; /* the stored streams, read as plain bodies */
    p1.zalg = p2.zalg = MD_Z_NONE;
    p1.zframe = p2.zframe = 0;
    p1.zsize = p2.zsize = p1.ztab = p2.ztab = 0;
    s1 = malloc(lay.size);
    s2 = malloc(lay.size);
    CU_ASSERT_EQUAL(ob_read(N[4].st, &p1, 0, s1, lay.size), CM_OK);
    CU_ASSERT_EQUAL(ob_read(N[5].st, &p2, 0, s2, lay.size), CM_OK);
    CU_ASSERT(memcmp(s1, s2, lay.size) == 0);
    /* random bytes through an offloading writer: one frame tested, then stored as they came */
    fill(body, len, 12);
    CU_ASSERT_EQUAL_FATAL(ob_writer_new(N[2].st, &w), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_writer_offload(w, tbase, gated_runner, NULL), CM_OK);
    atomic_store(&finishing, 0);
    write_nonblocking(w, body, len);
    atomic_store(&finishing, 1);
    CU_ASSERT_EQUAL_FATAL(ob_writer_finish(w, &inl), CM_OK);
    CU_ASSERT(inl.zalg == MD_Z_NONE && inl.size == len);
    CU_ASSERT(read_matches(4, &inl, body, 0, len));
    for (int i = 0; i < 10000 && atomic_load(&jobs_left) > 0; i++)
        usleep(1000);
    event_free(hb);
    event_base_free(tbase);
    free(s1);
    free(s2);
    free(body);
    cluster_down();
    zlevel = 0;
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"compressed", test_compressed},
        {"compressed_offload", test_compressed_offload},
        {NULL, NULL},
    };
    cu_add_suite("obj_cluster_compress", tests);
}
