/*
 * cm_metrics.h - Prometheus text exposition (format 0.0.4): fixed-bucket histograms that hot paths
 * update with relaxed atomic adds (no lock), the writers of HELP/TYPE lines and samples, and a
 * registry of sources that /metrics renders after the gateway's own metrics (docs/metrics.md).
 *
 * Adding a metric to the registry is one line where the subsystem is set up:
 *   cm_metrics_add_counter(reg, "cairn_x_total", "What x counts", &x_counter);
 * with the counter bumped by __atomic_add_fetch(&x_counter, 1, __ATOMIC_RELAXED). A family with
 * labels, or values read from a stats call, registers a source function instead
 * (cm_metrics_add), which writes its families with cm_metric_head/cm_metric_u64.
 *
 * Threading: observe and the counters: any thread, lock-free. add: any thread, before or while
 * rendering (a mutex guards the list; sources stay registered until cm_metrics_free). write runs
 * the sources with that mutex held: a source must not call cm_metrics_add.
 */
#ifndef CM_METRICS_H
#define CM_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "cm_err.h"

#define CM_HIST_MAX 20     /* finite buckets of one histogram */
#define CM_METRICS_MAX 128 /* sources of one registry */

/*
 * A histogram of integer observations (nanoseconds, bytes): bounds[0..n) ascending upper bounds
 * (inclusive, as Prometheus's le), and an implicit +Inf bucket. Zero-initialised storage plus
 * cm_hist_init; no release needed. bounds is borrowed (a static table).
 */
typedef struct {
    const uint64_t *bounds;
    int n;
    uint64_t counts[CM_HIST_MAX + 1]; /* per bucket, not cumulative; [n] = above the last bound */
    uint64_t sum;
} cm_hist;

void cm_hist_init(cm_hist *h, const uint64_t *bounds, int n); /* n is capped at CM_HIST_MAX */
void cm_hist_observe(cm_hist *h, uint64_t v);
/* Observations so far (the sum of the buckets). */
uint64_t cm_hist_count(const cm_hist *h);

/* "# HELP name help\n# TYPE name type\n" (type: counter, gauge, histogram). */
void cm_metric_head(FILE *f, const char *name, const char *type, const char *help);
/* One sample: name{labels} v, or name v when labels is NULL or "". labels is written as given
 * (callers pass only fixed, bounded label sets: never a bucket, key or user). */
void cm_metric_u64(FILE *f, const char *name, const char *labels, uint64_t v);
void cm_metric_double(FILE *f, const char *name, const char *labels, double v);
/*
 * A histogram's samples (the head is the caller's): name_bucket{labels,le="..."} cumulative, the
 * +Inf bucket, name_sum (scaled by scale: 1e-9 turns nanoseconds into seconds) and name_count.
 * The counts are read once, so _count equals the +Inf bucket even while observations go on.
 */
void cm_hist_write(FILE *f, const char *name, const char *labels, const cm_hist *h, double scale);

typedef struct cm_metrics cm_metrics;
/* A source writes complete families (head and samples) into f. */
typedef void (*cm_metrics_fn)(void *arg, FILE *f);

cm_err cm_metrics_new(cm_metrics **out);
void cm_metrics_free(cm_metrics *m); /* NULL is a no-op */
/* CM_ERR_TOOBIG past CM_METRICS_MAX sources. arg is borrowed until cm_metrics_free. */
cm_err cm_metrics_add(cm_metrics *m, cm_metrics_fn fn, void *arg);
/* A counter or gauge read with a relaxed atomic load; name and help must be static strings. */
cm_err cm_metrics_add_counter(cm_metrics *m, const char *name, const char *help, const uint64_t *v);
cm_err cm_metrics_add_gauge(cm_metrics *m, const char *name, const char *help, const uint64_t *v);
/* Render every source in registration order. */
void cm_metrics_write(cm_metrics *m, FILE *f);

#endif
