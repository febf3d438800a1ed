/*
 * test_meta_bench.c - throughput of md_object_put with group commit, 1, 8 and 64 threads.
 *
 * Each thread puts small records (a 4 KiB inline body, as a 4 KiB S3 PUT stores them) under its
 * own keys until a deadline. Every configuration runs twice on a fresh store: with group commit
 * ("group") and with the batch limit set to 1 ("serial": one write transaction and one sync per
 * put, what the store did before group commit). It prints ops/s, commits, ops per commit, the
 * largest batch and the mean latency per put, and asserts that every put succeeded and that the
 * counters add up (serial: exactly one commit per put).
 *
 * By default each run lasts 0.3 s (a smoke run for CI). MD_BENCH_SECONDS=5 gives figures worth
 * quoting; MD_BENCH_DIR=/path puts the stores on another file system (default: the test scratch
 * dir); MD_BENCH_COPIES=3 keeps each store in three copies (md_open_copies, as the single node's
 * server does) instead of one environment. The file system type is printed, because a tmpfs
 * makes every sync free.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>

#include "cu_main.h"
#include "md.h"
#include "md_int.h"

#define BODY 4096
#define TMPFS_MAGIC 0x01021994

typedef struct {
    md_store *md;
    pthread_barrier_t *bar;
    int id;
    double deadline;
    uint64_t ops, errors;
} worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *put_loop(void *arg)
{
    static uint8_t body[BODY];
    worker *w = arg;
    char key[32], etag[33];
    pthread_barrier_wait(w->bar);
    while (now_s() < w->deadline) {
        snprintf(key, sizeof(key), "t%02d/%08llu", w->id, (unsigned long long)w->ops);
        snprintf(etag, sizeof(etag), "%032llx", (unsigned long long)w->ops);
        md_object o = {.key = key, .size = BODY, .mtime_ms = 1700000000000LL};
        memcpy(o.etag, etag, sizeof(etag));
        memcpy(o.version_id, "null", 5);
        o.inline_data = body, o.inline_len = BODY;
        if (md_object_put(w->md, "bench", &o, NULL, NULL, NULL) == CM_OK)
            w->ops++;
        else
            w->errors++;
    }
    return NULL;
}

static const char *base_dir(void)
{
    const char *d = getenv("MD_BENCH_DIR");
    return d && *d ? d : cu_tmpdir();
}

static double run_seconds(void)
{
    const char *s = getenv("MD_BENCH_SECONDS");
    double v = s ? atof(s) : 0.0;
    return v > 0 ? v : 0.3;
}

/* The store in dir: one environment, or MD_BENCH_COPIES (2 or 3) copies in dir/driveN/meta. */
static md_store *open_store(const char *dir)
{
    const char *c = getenv("MD_BENCH_COPIES");
    int n = c ? atoi(c) : 1;
    md_store *md = NULL;
    if (n < 2 || n > 3) {
        CU_ASSERT_EQUAL_FATAL(md_open(dir, 0, &md), CM_OK);
        return md;
    }
    char dirs[3][600];
    const char *dp[3];
    CU_ASSERT_FATAL(mkdir(dir, 0755) == 0 || errno == EEXIST);
    for (int i = 0; i < n; i++) {
        snprintf(dirs[i], sizeof(dirs[i]), "%s/drive%d/meta", dir, i);
        dp[i] = dirs[i];
    }
    CU_ASSERT_EQUAL_FATAL(md_open_copies(dp, n, NULL, 0, &md), CM_OK);
    return md;
}

/* One run: nthreads putting for secs into a fresh store; serial sets the batch limit to 1. */
static void bench_one(int nthreads, int serial, double secs)
{
    static worker w[64];
    pthread_t t[64];
    pthread_barrier_t bar;
    char dir[512];
    md_bucket b = {.name = "bench"};
    md_stats st0, st;
    snprintf(dir, sizeof(dir), "%s/bench-%d-%s", base_dir(), nthreads, serial ? "s" : "g");
    md_store *md = open_store(dir);
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK);
    md_gc_set_max(md, serial ? 1 : MD_BATCH_MAX);
    md_stats_get(md, &st0);
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads + 1);
    double start = now_s();
    for (int i = 0; i < nthreads; i++) {
        w[i] = (worker){.md = md, .bar = &bar, .id = i, .deadline = start + secs};
        pthread_create(&t[i], NULL, put_loop, &w[i]);
    }
    pthread_barrier_wait(&bar);
    uint64_t ops = 0, errors = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        ops += w[i].ops, errors += w[i].errors;
    }
    double el = now_s() - start;
    pthread_barrier_destroy(&bar);
    md_stats_get(md, &st);
    uint64_t commits = st.commits - st0.commits;
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_EQUAL(st.ops - st0.ops, ops);
    CU_ASSERT_EQUAL(st.ops_committed - st0.ops_committed, ops);
    CU_ASSERT_TRUE(commits <= ops);
    if (serial)
        CU_ASSERT_EQUAL(commits, ops);
    printf("  %7d  %-6s %9llu %10.0f %9llu %9.1f %9llu %12.1f\n", nthreads,
           serial ? "serial" : "group", (unsigned long long)ops, (double)ops / el,
           (unsigned long long)commits, commits ? (double)ops / (double)commits : 0.0,
           (unsigned long long)st.max_batch, ops ? el * nthreads / (double)ops * 1e6 : 0.0);
    md_close(md);
}

static void test_put_throughput(void)
{
    struct statfs fs;
    double secs = run_seconds();
    const char *fstype = "?";
    if (statfs(base_dir(), &fs) == 0)
        fstype =
            fs.f_type == TMPFS_MAGIC ? "tmpfs (syncs are free: figures mean little)" : "not tmpfs";
    printf("\n  md_object_put, %d-byte inline records, %.1f s per run, in %s (%s)\n", BODY, secs,
           base_dir(), fstype);
    printf("  %7s  %-6s %9s %10s %9s %9s %9s %12s\n", "threads", "mode", "puts", "puts/s",
           "commits", "puts/cmt", "max batch", "mean lat us");
    static const int nthreads[] = {1, 8, 64};
    for (size_t i = 0; i < 3; i++) {
        bench_one(nthreads[i], 1, secs);
        bench_one(nthreads[i], 0, secs);
    }
}

void cu_register(void)
{
    static const cu_test tests[] = {{"put_throughput", test_put_throughput}, {NULL, NULL}};
    cu_add_suite("meta_bench", tests);
}
