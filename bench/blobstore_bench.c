/*
 * blobstore_bench.c - issue 3's blobstore figures, each next to its raw-disk reference measured in
 * the same run on the same directory:
 *
 *   seq      one blob appended in 1 MiB pieces, then one bs_sync   vs  pwrite 1 MiB blocks to a
 *            plain file, then one fdatasync (dd bs=1M conv=fdatasync)           goal >= 0.8x
 *   commit   64 threads each appending a fresh 4 KiB blob and bs_sync'ing it (a small PUT each)
 *            vs  one thread doing pwrite 4 KiB + fdatasync in a loop            goal >= 4x
 *
 * Built only when asked (bench/blobstore_bench.sh compiles it against a build directory's
 * libraries); not part of the test suite. Usage: blobstore_bench DIR [seq_MiB] [seconds].
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bs.h"
#include "cm_log.h"

#define WRITERS 64
#define SMALL 4096

static uint64_t nsyncs;

static int count_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    __atomic_add_fetch(&nsyncs, 1, __ATOMIC_RELAXED);
    return fdatasync(fd);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double raw_seq(const char *dir, size_t mib, const uint8_t *buf)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/raw-seq", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 0;
    double t0 = now_s();
    for (size_t i = 0; i < mib; i++)
        if (pwrite(fd, buf, 1 << 20, (off_t)i << 20) != 1 << 20)
            return 0;
    fdatasync(fd);
    double t = now_s() - t0;
    close(fd);
    unlink(path);
    return (double)mib / t;
}

static double bs_seq(bs_store *bs, size_t mib, const uint8_t *buf)
{
    bs_id id;
    bs_id_new(&id);
    double t0 = now_s();
    for (size_t i = 0; i < mib; i++)
        if (bs_append(bs, &id, (uint64_t)i << 20, buf, 1 << 20) != CM_OK)
            return 0;
    bs_sync(bs);
    double t = now_s() - t0;
    bs_delete(bs, &id);
    bs_sync(bs);
    return (double)mib / t;
}

static double raw_fsync_rate(const char *dir, double secs, const uint8_t *buf)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/raw-small", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 0;
    double t0 = now_s(), t;
    uint64_t n = 0;
    do {
        if (pwrite(fd, buf, SMALL, (off_t)(n * SMALL)) != SMALL || fdatasync(fd) != 0)
            return 0;
        n++;
    } while ((t = now_s() - t0) < secs);
    close(fd);
    unlink(path);
    return (double)n / t;
}

typedef struct {
    bs_store *bs;
    const uint8_t *buf;
    double until;
    uint64_t ops;
    int failed;
} writer;

static void *writer_main(void *p)
{
    writer *w = p;
    while (now_s() < w->until) {
        bs_id id;
        bs_id_new(&id);
        if (bs_append(w->bs, &id, 0, w->buf, SMALL) != CM_OK || bs_sync(w->bs) != CM_OK) {
            w->failed = 1;
            break;
        }
        w->ops++;
    }
    return NULL;
}

static double bs_commit_rate(bs_store *bs, int nthreads, double secs, const uint8_t *buf)
{
    writer w[WRITERS];
    pthread_t th[WRITERS];
    double t0 = now_s();
    for (int i = 0; i < nthreads; i++) {
        w[i] = (writer){bs, buf, t0 + secs, 0, 0};
        pthread_create(&th[i], NULL, writer_main, &w[i]);
    }
    uint64_t ops = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        ops += w[i].ops;
        if (w[i].failed)
            fprintf(stderr, "writer %d failed\n", i);
    }
    return (double)ops / (now_s() - t0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [seq_MiB (256)] [seconds per rate test (3)]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 256;
    double secs = argc > 3 ? atof(argv[3]) : 3.0;
    cm_log_threshold = CM_LOG_WARN;
    uint8_t *buf = malloc(1 << 20);
    for (size_t i = 0; i < 1 << 20; i++)
        buf[i] = (uint8_t)(i * 2654435761u >> 13);
    char sdir[4096];
    snprintf(sdir, sizeof(sdir), "%s/bsbench-drive", dir);
    bs_io io = bs_io_posix;
    io.fdatasync = count_fdatasync; /* to report how many appends each fdatasync covered */
    bs_options opt = {.compact_rate = -1, .io = &io};
    bs_store *bs = NULL;
    if (bs_open(sdir, &opt, &bs) != CM_OK) {
        fprintf(stderr, "cannot open a store in %s\n", sdir);
        return 2;
    }
    double raw = raw_seq(dir, mib, buf), seq = bs_seq(bs, mib, buf);
    double raw2 = raw_seq(dir, mib, buf); /* again: page-cache state differs run to run */
    raw = raw > raw2 ? raw : raw2;
    double one = raw_fsync_rate(dir, secs, buf);
    double bs1 = bs_commit_rate(bs, 1, secs, buf);
    uint64_t s0 = nsyncs;
    double many = bs_commit_rate(bs, WRITERS, secs, buf);
    double per_sync = many * secs / (double)(nsyncs - s0 ? nsyncs - s0 : 1);
    bs_stats st;
    bs_get_stats(bs, &st);
    printf("blobstore bench in %s (%zu MiB sequential, %.0f s per rate)\n", dir, mib, secs);
    printf("  %-46s %10.1f MiB/s\n", "raw pwrite 1 MiB + one fdatasync", raw);
    printf("  %-46s %10.1f MiB/s  = %.2fx raw (goal >= 0.8)\n", "blobstore 1 MiB appends + bs_sync",
           seq, seq / raw);
    printf("  %-46s %10.0f /s\n", "raw 4 KiB pwrite + fdatasync, 1 writer", one);
    printf("  %-46s %10.0f /s  = %.2fx raw\n", "blobstore 4 KiB append + bs_sync, 1 writer", bs1,
           bs1 / one);
    printf("  %-46s %10.0f /s  = %.2fx raw 1-writer fsync rate (goal >= 4)\n",
           "blobstore 4 KiB append + bs_sync, 64 writers", many, many / one);
    printf("  %-46s %10.1f appends per fdatasync\n", "group commit batch (64 writers)", per_sync);
    printf("  store after: %llu blobs, %u segments\n", (unsigned long long)st.blobs, st.segments);
    bs_close(bs);
    free(buf);
    return 0;
}
