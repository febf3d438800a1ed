/*
 * cmd/bench_hist.c - latency histogram of `cairn bench`, HDR-style: fixed memory, bounded error.
 *
 * A value v (nanoseconds) below 2^S (S = BENCH_HIST_SUB) has its own bucket. Above, with m the
 * index of its highest set bit, e = m - S + 1 and the bucket is e * 2^(S-1) + (v >> e): every power
 * of two holds 2^(S-1) equal-width buckets, so a bucket's width is at most 1/2^(S-1) of its values.
 * The array covers all 64-bit values; recording is a handful of instructions and no allocation.
 */
#include "bench.h"

#include <string.h>
#include <time.h>

static unsigned bucket_of(uint64_t v)
{
    if (v < ((uint64_t)1 << BENCH_HIST_SUB))
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned e = msb - BENCH_HIST_SUB + 1;
    return (e << (BENCH_HIST_SUB - 1)) + (unsigned)(v >> e);
}

/* Lowest value and width of bucket b (inverse of bucket_of). */
static void bucket_range(unsigned b, uint64_t *lo, uint64_t *width)
{
    if (b < (1u << BENCH_HIST_SUB)) {
        *lo = b;
        *width = 1;
        return;
    }
    unsigned half = 1u << (BENCH_HIST_SUB - 1);
    unsigned e = b / half - 1;
    uint64_t sub = (uint64_t)(b - e * half);
    *lo = sub << e;
    *width = (uint64_t)1 << e;
}

void bench_hist_record(bench_hist *h, uint64_t ns)
{
    h->counts[bucket_of(ns)]++;
    h->total++;
    if (ns > h->max)
        h->max = ns;
}

uint64_t bench_hist_quantile(const bench_hist *h, double q)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->total + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < BENCH_HIST_BUCKETS; b++) {
        seen += h->counts[b];
        if (seen >= rank) {
            uint64_t lo, width;
            bucket_range(b, &lo, &width);
            uint64_t mid = lo + width / 2;
            return mid > h->max ? h->max : mid;
        }
    }
    return h->max;
}

void bench_hist_merge(bench_hist *into, const bench_hist *from)
{
    for (unsigned b = 0; b < BENCH_HIST_BUCKETS; b++)
        into->counts[b] += from->counts[b];
    into->total += from->total;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
