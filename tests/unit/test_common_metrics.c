/*
 * test_common_metrics.c - the metrics registry and histograms (cm_metrics.h), and the access log
 * (cm_alog.h): bucket edges, cumulative output with +Inf equal to _count, observations from
 * several threads at once losing nothing, registry sources in order, JSON escaping of hostile
 * bytes (quotes, control bytes, invalid UTF-8, truncation never cutting an escape), and the log's
 * bounded buffer, drop counting and reopen after a rename.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm_alog.h"
#include "cm_metrics.h"
#include "cu_main.h"

static const uint64_t bounds[] = {10, 100, 1000};

/* Render with fn into a heap string (free it). */
static char *render_hist(const cm_hist *h, const char *labels, double scale)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT_FATAL(f != NULL);
    cm_hist_write(f, "t_seconds", labels, h, scale);
    fclose(f);
    return text;
}

static void test_hist_buckets(void)
{
    cm_hist h = {0};
    cm_hist_init(&h, bounds, 3);
    uint64_t vals[] = {0, 10, 11, 100, 999, 1000, 1001, 50000};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
        cm_hist_observe(&h, vals[i]);
    CU_ASSERT_EQUAL(cm_hist_count(&h), 8);
    char *t = render_hist(&h, "op=\"x\"", 1);
    /* le is inclusive: 10 falls in le=10, 1000 in le=1000 */
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "t_seconds_bucket{op=\"x\",le=\"10\"} 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "t_seconds_bucket{op=\"x\",le=\"100\"} 4\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "t_seconds_bucket{op=\"x\",le=\"1000\"} 6\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "t_seconds_bucket{op=\"x\",le=\"+Inf\"} 8\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "t_seconds_sum{op=\"x\"} 53121\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "t_seconds_count{op=\"x\"} 8\n"));
    free(t);
}

static void test_hist_scale_nolabels(void)
{
    static const uint64_t ns[] = {500000, 1000000000};
    cm_hist h = {0};
    cm_hist_init(&h, ns, 2);
    cm_hist_observe(&h, 250000000); /* 0.25 s */
    char *t = render_hist(&h, NULL, 1e-9);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "t_seconds_bucket{le=\"0.0005\"} 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "t_seconds_bucket{le=\"1\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "t_seconds_sum 0.25\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "t_seconds_count 1\n"));
    free(t);
}

#define NTHREADS 4
#define PER_THREAD 100000

static void *observer(void *arg)
{
    cm_hist *h = arg;
    for (uint64_t i = 0; i < PER_THREAD; i++)
        cm_hist_observe(h, i % 2000);
    return NULL;
}

/* Lock-free updates from several threads lose no observation. */
static void test_hist_threads(void)
{
    cm_hist h = {0};
    pthread_t t[NTHREADS];
    cm_hist_init(&h, bounds, 3);
    for (int i = 0; i < NTHREADS; i++)
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, observer, &h) == 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(cm_hist_count(&h), (uint64_t)NTHREADS * PER_THREAD);
    /* per thread: 0..1999 fifty times; values <= 10 are 11 of every 2000 */
    CU_ASSERT_EQUAL(h.counts[0], (uint64_t)NTHREADS * 50 * 11);
    CU_ASSERT_EQUAL(h.sum, (uint64_t)NTHREADS * 50 * (1999 * 2000 / 2));
}

static void labelled(void *arg, FILE *f)
{
    cm_metric_head(f, "t_labelled_total", "counter", "a source with labels");
    cm_metric_u64(f, "t_labelled_total", "kind=\"a\"", *(uint64_t *)arg);
}

static void test_registry(void)
{
    cm_metrics *m = NULL;
    uint64_t c = 0, g = 7, l = 3;
    char *text = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(cm_metrics_new(&m) == CM_OK);
    CU_ASSERT_EQUAL(cm_metrics_add_counter(m, "t_things_total", "things", &c), CM_OK);
    CU_ASSERT_EQUAL(cm_metrics_add_gauge(m, "t_level", "a level", &g), CM_OK);
    CU_ASSERT_EQUAL(cm_metrics_add(m, labelled, &l), CM_OK);
    __atomic_add_fetch(&c, 5, __ATOMIC_RELAXED);
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT_FATAL(f != NULL);
    cm_metrics_write(m, f);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(text, "# HELP t_things_total things\n# TYPE t_things_total counter\n"
                                 "t_things_total 5\n"
                                 "# HELP t_level a level\n# TYPE t_level gauge\nt_level 7\n"
                                 "# HELP t_labelled_total a source with labels\n"
                                 "# TYPE t_labelled_total counter\n"
                                 "t_labelled_total{kind=\"a\"} 3\n");
    free(text);
    /* the registry is bounded */
    cm_err e = CM_OK;
    for (int i = 0; i < CM_METRICS_MAX + 1 && e == CM_OK; i++)
        e = cm_metrics_add_counter(m, "t_more_total", "more", &c);
    CU_ASSERT_EQUAL(e, CM_ERR_TOOBIG);
    cm_metrics_free(m);
    cm_metrics_free(NULL);
}

static void test_json_escape(void)
{
    char out[256];
    const char in[] = "a\"b\\c\nd\re\tf\x01g\x1fh\x7fi";
    size_t n = cm_json_escape(in, sizeof(in) - 1, out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001fh\\u007fi");
    CU_ASSERT_EQUAL(n, strlen(out));
    /* valid UTF-8 (2, 3 and 4 bytes) is kept */
    const char utf[] = "\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80";
    cm_json_escape(utf, sizeof(utf) - 1, out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, utf);
    /* invalid: a lone continuation, an overlong, a surrogate, a truncated sequence, 0xff */
    const char bad[] = "\x80|\xc0\xaf|\xed\xa0\x80|\xe4\xb8|\xff";
    cm_json_escape(bad, sizeof(bad) - 1, out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd|"
                                "\\ufffd");
    /* an embedded NUL byte is escaped, not an end */
    cm_json_escape("a\0b", 3, out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "a\\u0000b");
}

/* Truncation stops before an escape that would not fit: the output stays valid JSON text. */
static void test_json_escape_truncates(void)
{
    char out[8];
    size_t n = cm_json_escape("ab\x01", 3, out, sizeof(out)); /* "ab" + 6 bytes > 7 */
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_STRING_EQUAL(out, "ab");
    n = cm_json_escape("abcdefghij", 10, out, sizeof(out));
    CU_ASSERT_EQUAL(n, 7);
    CU_ASSERT_STRING_EQUAL(out, "abcdefg");
    n = cm_json_escape("\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad", 9, out, sizeof(out));
    CU_ASSERT_EQUAL(n, 6); /* two whole characters, never half of the third */
    CU_ASSERT_EQUAL(cm_json_escape("x", 1, out, 0), 0);
}

/* 1 when s is a valid JSON string body: no raw control byte or DEL, no bare quote, escapes of
 * the JSON forms only, and every other byte part of a well-formed UTF-8 sequence. */
static int json_body_valid(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; u[i];) {
        if (u[i] < 0x20 || u[i] == 0x7f || u[i] == '"')
            return 0;
        if (u[i] == '\\') {
            if (u[i + 1] == 'u') {
                for (int k = 2; k < 6; k++)
                    if (!strchr("0123456789abcdef", u[i + k]) || !u[i + k])
                        return 0;
                i += 6;
            } else if (u[i + 1] && strchr("\"\\nrt", u[i + 1])) {
                i += 2;
            } else {
                return 0;
            }
            continue;
        }
        size_t len = u[i] < 0x80 ? 1 : u[i] >= 0xf0 ? 4 : u[i] >= 0xe0 ? 3 : u[i] >= 0xc2 ? 2 : 0;
        if (len == 0)
            return 0;
        for (size_t k = 1; k < len; k++)
            if ((u[i + k] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

/* Random bytes (seeded, printed on failure) always escape to a valid JSON string body. */
static void test_json_escape_random(void)
{
    unsigned seed = 12345;
    char in[64], out[64 * 6 + 1];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(rand_r(&seed) % (int)sizeof(in));
        for (size_t i = 0; i < n; i++)
            in[i] = (char)(rand_r(&seed) & 0xff);
        size_t cap = 1 + (size_t)(rand_r(&seed) % (int)sizeof(out));
        size_t got = cm_json_escape(in, n, out, cap);
        int ok = got < cap && strlen(out) == got && json_body_valid(out);
        if (!ok)
            fprintf(stderr, "\nseed 12345 round %d: invalid escape of %zu bytes\n", round, n);
        CU_ASSERT_FATAL(ok);
    }
}

static size_t file_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    int c;
    if (!f)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static void test_alog_reopen(void)
{
    char path[512], moved[520], why[128];
    cm_alog *l = NULL;
    uint64_t written, dropped;
    snprintf(path, sizeof(path), "%s/access.log", cu_tmpdir());
    snprintf(moved, sizeof(moved), "%s.1", path);
    CU_ASSERT_FATAL(cm_alog_open(path, 0, &l) == CM_OK);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(cm_alog_line(l, "{\"a\":1}\n", 8), 0);
    cm_alog_flush(l);
    CU_ASSERT_EQUAL(file_lines(path), 10);
    CU_ASSERT_EQUAL(rename(path, moved), 0);
    CU_ASSERT_EQUAL(cm_alog_reopen(l, why, sizeof(why)), 0);
    for (int i = 0; i < 3; i++)
        cm_alog_line(l, "{\"b\":2}\n", 8);
    cm_alog_flush(l);
    CU_ASSERT_EQUAL(file_lines(moved), 10);
    CU_ASSERT_EQUAL(file_lines(path), 3);
    cm_alog_stats(l, &written, &dropped);
    CU_ASSERT_EQUAL(written, 13);
    CU_ASSERT_EQUAL(dropped, 0);
    cm_alog_close(l);
    /* a target that cannot be opened: an error at open, a reason at reopen */
    CU_ASSERT_EQUAL(cm_alog_open("/nonexistent-dir/x.log", 0, &l), CM_ERR_IO);
    cm_alog_close(NULL);
}

/* A full buffer drops and counts lines instead of growing or blocking. */
static void test_alog_bounded(void)
{
    char path[512];
    cm_alog *l = NULL;
    uint64_t written, dropped;
    char line[100];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\n';
    snprintf(path, sizeof(path), "%s/small.log", cu_tmpdir());
    CU_ASSERT_FATAL(cm_alog_open(path, 256, &l) == CM_OK); /* room for 2 lines of 100 */
    int refused = 0;
    for (int i = 0; i < 1000; i++)
        refused += cm_alog_line(l, line, sizeof(line)) != 0;
    CU_ASSERT_EQUAL(cm_alog_line(l, line, 300), -1); /* never fits */
    cm_alog_flush(l);
    cm_alog_stats(l, &written, &dropped);
    CU_ASSERT_EQUAL(written + dropped, 1001);
    CU_ASSERT_EQUAL(dropped, (uint64_t)refused + 1);
    CU_ASSERT_EQUAL(file_lines(path), written);
    cm_alog_close(l);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"histogram buckets and sum", test_hist_buckets},
        {"histogram scale, no labels", test_hist_scale_nolabels},
        {"histogram from threads", test_hist_threads},
        {"registry", test_registry},
        {"JSON escaping", test_json_escape},
        {"JSON escaping truncates whole", test_json_escape_truncates},
        {"JSON escaping of random bytes", test_json_escape_random},
        {"access log reopen after rename", test_alog_reopen},
        {"access log bounded buffer", test_alog_bounded},
        {NULL, NULL},
    };
    cu_add_suite("metrics", tests);
}
