/*
 * cm_metrics.c - histograms, the text-format writers and the source registry (cm_metrics.h).
 *
 * A histogram keeps one counter per bucket rather than cumulative ones, so an observation is a
 * single relaxed atomic add (plus one for the sum): cheap enough for every request on every
 * loop, with no lock. The writer makes the buckets cumulative from one snapshot.
 *
 * The registry is a fixed array under a mutex: registration happens at start and rendering at
 * a scrape, never on a request's path.
 */
#include "cm_metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct {
    cm_metrics_fn fn;
    void *arg;
    /* for the one-value sources of cm_metrics_add_counter / _gauge */
    const char *name, *help, *type;
    const uint64_t *value;
} source;

struct cm_metrics {
    pthread_mutex_t mu;
    source src[CM_METRICS_MAX];
    int n;
};

void cm_hist_init(cm_hist *h, const uint64_t *bounds, int n)
{
    h->bounds = bounds;
    h->n = n < 0 ? 0 : n > CM_HIST_MAX ? CM_HIST_MAX : n;
}

void cm_hist_observe(cm_hist *h, uint64_t v)
{
    int i = 0;
    while (i < h->n && v > h->bounds[i]) /* a dozen bounds: a scan beats a search */
        i++;
    __atomic_add_fetch(&h->counts[i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->sum, v, __ATOMIC_RELAXED);
}

uint64_t cm_hist_count(const cm_hist *h)
{
    uint64_t c = 0;
    for (int i = 0; i <= h->n; i++)
        c += __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED);
    return c;
}

void cm_metric_head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void cm_metric_u64(FILE *f, const char *name, const char *labels, uint64_t v)
{
    if (labels && labels[0])
        fprintf(f, "%s{%s} %" PRIu64 "\n", name, labels, v);
    else
        fprintf(f, "%s %" PRIu64 "\n", name, v);
}

void cm_metric_double(FILE *f, const char *name, const char *labels, double v)
{
    if (labels && labels[0])
        fprintf(f, "%s{%s} %.9g\n", name, labels, v);
    else
        fprintf(f, "%s %.9g\n", name, v);
}

void cm_hist_write(FILE *f, const char *name, const char *labels, const cm_hist *h, double scale)
{
    uint64_t counts[CM_HIST_MAX + 1], cum = 0;
    const char *sep = labels && labels[0] ? "," : "";
    const char *lb = labels ? labels : "";
    for (int i = 0; i <= h->n; i++)
        counts[i] = __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED);
    for (int i = 0; i < h->n; i++) {
        cum += counts[i];
        fprintf(f, "%s_bucket{%s%sle=\"%.9g\"} %" PRIu64 "\n", name, lb, sep,
                (double)h->bounds[i] * scale, cum);
    }
    cum += counts[h->n];
    fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, lb, sep, cum);
    double sum = (double)__atomic_load_n(&h->sum, __ATOMIC_RELAXED) * scale;
    if (lb[0]) {
        fprintf(f, "%s_sum{%s} %.9g\n%s_count{%s} %" PRIu64 "\n", name, lb, sum, name, lb, cum);
    } else {
        fprintf(f, "%s_sum %.9g\n%s_count %" PRIu64 "\n", name, sum, name, cum);
    }
}

/* ---- the registry ---- */

cm_err cm_metrics_new(cm_metrics **out)
{
    cm_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return CM_OK;
}

void cm_metrics_free(cm_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static cm_err add(cm_metrics *m, const source *s)
{
    cm_err e = CM_OK;
    pthread_mutex_lock(&m->mu);
    if (m->n < CM_METRICS_MAX)
        m->src[m->n++] = *s;
    else
        e = CM_ERR_TOOBIG;
    pthread_mutex_unlock(&m->mu);
    return e;
}

cm_err cm_metrics_add(cm_metrics *m, cm_metrics_fn fn, void *arg)
{
    return add(m, &(source){.fn = fn, .arg = arg});
}

cm_err cm_metrics_add_counter(cm_metrics *m, const char *name, const char *help, const uint64_t *v)
{
    return add(m, &(source){.name = name, .help = help, .type = "counter", .value = v});
}

cm_err cm_metrics_add_gauge(cm_metrics *m, const char *name, const char *help, const uint64_t *v)
{
    return add(m, &(source){.name = name, .help = help, .type = "gauge", .value = v});
}

void cm_metrics_write(cm_metrics *m, FILE *f)
{
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->n; i++) {
        const source *s = &m->src[i];
        if (s->fn) {
            s->fn(s->arg, f);
        } else {
            cm_metric_head(f, s->name, s->type, s->help);
            cm_metric_u64(f, s->name, NULL, __atomic_load_n(s->value, __ATOMIC_RELAXED));
        }
    }
    pthread_mutex_unlock(&m->mu);
}
