/*
 * cmd/bench.c - `cairn bench`: a load generator for S3 endpoints, and CPU reference speeds.
 *
 * A run has phases on one libevent loop: create the bucket (one request), preload the keys that
 * GET/HEAD/DELETE/LIST/mixed runs read (every key once, sequentially numbered), then the measured
 * phase: `concurrency` keep-alive connections each keep one request in flight until the duration
 * has passed or `count` requests were issued; requests still in flight then finish and count.
 * The run picks each request (op, key, size) from a seeded generator, so two runs with the same
 * seed send the same sequence. Object sizes are a function of (seed, key), so every PUT of a key
 * writes the same bytes (bench_data.c) and a GET knows how long the body must be and what it
 * holds. Statistics per op: counts, errors, bytes and a fixed-size latency histogram
 * (bench_hist.c). A progress line goes to stderr once a second; the report (table or --json) to
 * stdout. Exit status: 0 when every request succeeded, 1 when any failed, 2 on bad usage.
 */
#include "bench.h"
#include "cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#define MAX_CONNS 4096
#define MAX_ERROR_LINES 10

typedef enum { PH_MKBUCKET, PH_PRELOAD, PH_MAIN } phase;

typedef struct {
    char host[64];
    int port;
    char hosthdr[96];
    char bucket[64];
    char prefix[64];
    bench_op op;
    int mixed;
    unsigned mix[BENCH__NOPS]; /* weights of a mixed run */
    uint64_t size_min, size_max;
    int size_log; /* log-uniform instead of uniform between min and max */
    int concurrency;
    double duration;
    uint64_t count;
    uint64_t keys;
    int json, quiet, preload;
    unsigned verify_every;
    uint64_t seed;
    const char *raw_path;
    int raw;
    double raw_seconds;
    int timeout_s;
    uint64_t max_errors;
    char endpoint[256];
} bench_opts;

struct bench_run {
    const bench_opts *o;
    bench_target t;
    struct event_base *base;
    bench_conn **conns;
    int nconns;
    phase ph;
    uint64_t issued, limit, inflight, errors, error_lines;
    int stopping;
    uint64_t t0, t_last;
    uint64_t rng, seq, gets;
    bench_stats st[BENCH__NOPS];
    uint64_t last_ops, last_bytes, last_ns;
    struct event *tick, *stop;
};

static const char *const op_names[BENCH__NOPS] = {"put",    "get",  "head",
                                                  "delete", "list", "mkbucket"};

const char *bench_op_name(bench_op op)
{
    return op < BENCH__NOPS ? op_names[op] : "?";
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The size of key i: fixed, or drawn from (seed, i) so that every PUT of a key agrees. */
static uint64_t size_of(const bench_opts *o, uint64_t i)
{
    if (o->size_min == o->size_max)
        return o->size_min;
    uint64_t st = o->seed ^ (i * 0xd1342543de82ef95ull);
    uint64_t r = rng_next(&st);
    if (o->size_log) { /* a uniform power of two, then uniform inside it, clamped */
        unsigned lo = 63u - (unsigned)__builtin_clzll(o->size_min);
        unsigned hi = 63u - (unsigned)__builtin_clzll(o->size_max);
        unsigned e = lo + (unsigned)((r >> 32) % (hi - lo + 1));
        uint64_t v = ((uint64_t)1 << e) + (r & 0xffffffffu) % ((uint64_t)1 << e);
        return v < o->size_min ? o->size_min : v > o->size_max ? o->size_max : v;
    }
    return o->size_min + r % (o->size_max - o->size_min + 1);
}

static bench_op pick_op(bench_run *run)
{
    const bench_opts *o = run->o;
    if (!o->mixed)
        return o->op;
    unsigned total = 0;
    for (int i = 0; i < BENCH__NOPS; i++)
        total += o->mix[i];
    unsigned r = (unsigned)(rng_next(&run->rng) % total);
    for (int i = 0; i < BENCH__NOPS; i++) {
        if (r < o->mix[i])
            return (bench_op)i;
        r -= o->mix[i];
    }
    return BENCH_GET;
}

int bench_run_next(bench_run *run, bench_req *req)
{
    const bench_opts *o = run->o;
    if (run->stopping || (run->limit && run->issued >= run->limit))
        return 0;
    memset(req, 0, sizeof(*req));
    if (run->ph == PH_MKBUCKET) {
        req->op = BENCH_MKBUCKET;
    } else if (run->ph == PH_PRELOAD) {
        req->op = BENCH_PUT;
        req->key = run->issued;
        req->size = size_of(o, req->key);
    } else if (o->raw_path) {
        req->op = BENCH_GET;
        req->size = UINT64_MAX; /* whatever the file holds */
    } else {
        req->op = pick_op(run);
        if (req->op == BENCH_PUT || req->op == BENCH_DELETE)
            req->key = run->seq++ % o->keys;
        else
            req->key = rng_next(&run->rng) % o->keys;
        req->size = size_of(o, req->key);
        req->tolerate_404 = o->mixed;
        if (req->op == BENCH_GET && o->verify_every)
            req->verify = run->gets++ % o->verify_every == 0;
    }
    run->issued++;
    run->inflight++;
    return 1;
}

void bench_run_error(bench_run *run, const char *fmt, ...)
{
    if (run->error_lines++ >= MAX_ERROR_LINES)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cairn bench: error: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int finished(const bench_run *run)
{
    return run->inflight == 0 && (run->stopping || (run->limit && run->issued >= run->limit));
}

void bench_run_done(bench_run *run, bench_conn *conn, const bench_req *req, int ok, int miss,
                    uint64_t bytes, int checked, uint64_t ns)
{
    (void)conn;
    bench_stats *s = &run->st[req->op];
    run->inflight--;
    run->t_last = bench_now_ns();
    s->count++;
    s->bytes += bytes;
    s->checked += (uint64_t)checked;
    if (miss)
        s->misses++;
    else if (!ok)
        s->errors++;
    if (!ok && !miss && ++run->errors >= run->o->max_errors && !run->stopping) {
        run->stopping = 1;
        fprintf(stderr, "cairn bench: stopping after %llu errors\n",
                (unsigned long long)run->errors);
    }
    bench_hist_record(&s->lat, ns);
    if (finished(run))
        event_base_loopexit(run->base, NULL);
}

static void totals(const bench_run *run, uint64_t *ops, uint64_t *bytes, uint64_t *errs)
{
    *ops = *bytes = *errs = 0;
    for (int i = 0; i < BENCH__NOPS; i++) {
        *ops += run->st[i].count;
        *bytes += run->st[i].bytes;
        *errs += run->st[i].errors;
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    bench_run *run = arg;
    uint64_t ops, bytes, errs, now = bench_now_ns();
    (void)fd;
    (void)what;
    totals(run, &ops, &bytes, &errs);
    double dt = (double)(now - run->last_ns) / 1e9;
    if (!run->o->quiet && dt > 0)
        fprintf(stderr, "%s[%5.1fs] %-7s %10.0f ops/s %10.1f MB/s  errors %llu%s",
                isatty(2) ? "\r" : "", (double)(now - run->t0) / 1e9,
                run->ph == PH_PRELOAD ? "preload" : "run", (double)(ops - run->last_ops) / dt,
                (double)(bytes - run->last_bytes) / dt / 1e6, (unsigned long long)errs,
                isatty(2) ? "   " : "\n");
    run->last_ops = ops;
    run->last_bytes = bytes;
    run->last_ns = now;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    bench_run *run = arg;
    (void)fd;
    (void)what;
    run->stopping = 1;
    if (finished(run))
        event_base_loopexit(run->base, NULL);
}

/* Run one phase with n connections; returns the number of errors it saw. */
static uint64_t run_phase(bench_run *run, phase ph, int n, uint64_t limit, double duration)
{
    run->ph = ph;
    run->issued = run->inflight = run->errors = 0;
    run->stopping = 0;
    run->limit = limit;
    memset(run->st, 0, sizeof(run->st));
    run->t0 = run->t_last = run->last_ns = bench_now_ns();
    run->last_ops = run->last_bytes = 0;
    struct timeval sec = {1, 0};
    if (ph != PH_MKBUCKET)
        event_add(run->tick, &sec);
    if (duration > 0) {
        struct timeval d = {(time_t)duration,
                            (suseconds_t)((duration - (double)(time_t)duration) * 1e6)};
        event_add(run->stop, &d);
    }
    int active = 0;
    for (int i = 0; i < n && i < run->nconns; i++)
        active += bench_conn_kick(run->conns[i]);
    if (active)
        event_base_dispatch(run->base);
    event_del(run->tick);
    event_del(run->stop);
    if (!run->o->quiet && ph != PH_MKBUCKET && isatty(2))
        fputc('\n', stderr);
    uint64_t e = 0;
    for (int i = 0; i < BENCH__NOPS; i++)
        e += run->st[i].errors;
    return e;
}

/* ---- report ---- */

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void report_table(const bench_run *run, const char *sizespec, double secs)
{
    const bench_opts *o = run->o;
    uint64_t ops, bytes, errs;
    totals(run, &ops, &bytes, &errs);
    printf("cairn bench: %s, size %s, %d connections, %.2f s, seed %llu, %s\n",
           o->raw_path ? "raw-http get"
           : o->mixed  ? "mixed"
                       : bench_op_name(o->op),
           sizespec, o->concurrency, secs, (unsigned long long)o->seed, o->endpoint);
    printf("%-6s %9s %7s %6s %10s %9s %9s %9s %9s %9s %9s %8s\n", "op", "count", "errors", "misses",
           "ops/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "verified");
    for (int i = 0; i < BENCH_MKBUCKET; i++) {
        const bench_stats *s = &run->st[i];
        if (s->count == 0)
            continue;
        printf("%-6s %9llu %7llu %6llu %10.1f %9.1f %9.3f %9.3f %9.3f %9.3f %9.3f %8llu\n",
               op_names[i], (unsigned long long)s->count, (unsigned long long)s->errors,
               (unsigned long long)s->misses, (double)s->count / secs,
               (double)s->bytes / secs / 1e6, ms(bench_hist_quantile(&s->lat, 0.5)),
               ms(bench_hist_quantile(&s->lat, 0.9)), ms(bench_hist_quantile(&s->lat, 0.99)),
               ms(bench_hist_quantile(&s->lat, 0.999)), ms(s->lat.max),
               (unsigned long long)s->checked);
    }
    if (o->mixed) {
        bench_hist all = {0};
        for (int i = 0; i < BENCH_MKBUCKET; i++)
            bench_hist_merge(&all, &run->st[i].lat);
        printf("%-6s %9llu %7llu %6s %10.1f %9.1f %9.3f %9.3f %9.3f %9.3f %9.3f\n", "total",
               (unsigned long long)ops, (unsigned long long)errs, "", (double)ops / secs,
               (double)bytes / secs / 1e6, ms(bench_hist_quantile(&all, 0.5)),
               ms(bench_hist_quantile(&all, 0.9)), ms(bench_hist_quantile(&all, 0.99)),
               ms(bench_hist_quantile(&all, 0.999)), ms(all.max));
    }
}

static void report_json(const bench_run *run, const char *sizespec, double secs)
{
    const bench_opts *o = run->o;
    uint64_t ops, bytes, errs;
    totals(run, &ops, &bytes, &errs);
    printf("{\"endpoint\": \"%s\", \"op\": \"%s\", \"size\": \"%s\", \"concurrency\": %d, "
           "\"seconds\": %.3f, \"seed\": %llu, \"keys\": %llu, \"signing\": \"%s\", ",
           o->endpoint,
           o->raw_path ? "raw-http"
           : o->mixed  ? "mixed"
                       : bench_op_name(o->op),
           sizespec, o->concurrency, secs, (unsigned long long)o->seed, (unsigned long long)o->keys,
           o->raw_path ? "none" : "UNSIGNED-PAYLOAD");
    printf("\"total\": {\"count\": %llu, \"errors\": %llu, \"ops_per_s\": %.1f, \"mb_per_s\": "
           "%.2f}, \"ops\": {",
           (unsigned long long)ops, (unsigned long long)errs, (double)ops / secs,
           (double)bytes / secs / 1e6);
    const char *sep = "";
    for (int i = 0; i < BENCH_MKBUCKET; i++) {
        const bench_stats *s = &run->st[i];
        if (s->count == 0)
            continue;
        printf("%s\"%s\": {\"count\": %llu, \"errors\": %llu, \"misses\": %llu, \"verified\": "
               "%llu, \"bytes\": %llu, \"ops_per_s\": %.1f, \"mb_per_s\": %.2f, \"latency_ms\": "
               "{\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"p99_9\": %.3f, \"max\": %.3f}}",
               sep, op_names[i], (unsigned long long)s->count, (unsigned long long)s->errors,
               (unsigned long long)s->misses, (unsigned long long)s->checked,
               (unsigned long long)s->bytes, (double)s->count / secs, (double)s->bytes / secs / 1e6,
               ms(bench_hist_quantile(&s->lat, 0.5)), ms(bench_hist_quantile(&s->lat, 0.9)),
               ms(bench_hist_quantile(&s->lat, 0.99)), ms(bench_hist_quantile(&s->lat, 0.999)),
               ms(s->lat.max));
        sep = ", ";
    }
    printf("}}\n");
}

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cairn bench [options]          load an S3 endpoint and report\n"
            "       cairn bench --raw [--json]     CPU reference speeds of this machine, per core\n"
            "  --endpoint URL        http://HOST:PORT (default http://127.0.0.1:9000)\n"
            "  --access-key K        default $CAIRN_ACCESS_KEY, else $AWS_ACCESS_KEY_ID\n"
            "  --secret-key S        default $CAIRN_SECRET_KEY, else $AWS_SECRET_ACCESS_KEY\n"
            "  --region R            signing region (default us-east-1)\n"
            "  --bucket B            created if missing (default cairn-bench)\n"
            "  --prefix P            key names P-00000000.. (default obj; [A-Za-z0-9._-])\n"
            "  --op OP               put|get|head|delete|list|mixed (default put)\n"
            "  --mix get=70,put=20,delete=5,list=5   weights of a mixed run\n"
            "  --size N[KMG] | MIN-MAX[ uniform| log] (log: log2-uniform)   object size or "
            "distribution (4K)\n"
            "  --concurrency N       connections, one request in flight each (16)\n"
            "  --duration S          seconds to run (default 10 unless --count)\n"
            "  --count N             stop after N requests\n"
            "  --keys N              key spread (default 100); GET/HEAD/DELETE/LIST/mixed\n"
            "                        preload the N keys first\n"
            "  --no-preload          skip the preload (the keys exist already)\n"
            "  --verify-every N      verify every Nth GET body byte for byte (10; 0 = never)\n"
            "  --seed N              request sequence and object content (default 1)\n"
            "  --raw-http PATH       plain unsigned GETs of PATH (compare with any HTTP server)\n"
            "  --timeout S           per-request inactivity timeout (60)\n"
            "  --max-errors N        stop the run after N errors (100)\n"
            "  --json                one JSON object on stdout instead of the table\n"
            "  --quiet               no progress line\n"
            "  --raw-seconds S       time per kernel for --raw (1)\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

/* "4096", "4K", "1M", "64M", "1G" (binary multiples); end receives the rest. */
static int parse_size(const char *s, uint64_t *out, const char **end)
{
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || e == s || s[0] == '-')
        return -1;
    int shift = 0;
    switch (*e) {
    case 'k':
    case 'K':
        shift = 10;
        e++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        e++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        e++;
        break;
    default:
        break;
    }
    if (*e == 'i' || *e == 'B')
        e += *e == 'i' && e[1] == 'B' ? 2 : 1;
    *out = (uint64_t)v << shift;
    *end = e;
    return 0;
}

static int parse_size_spec(bench_opts *o, const char *s)
{
    const char *e;
    if (parse_size(s, &o->size_min, &e) != 0)
        return -1;
    o->size_max = o->size_min;
    if (*e == '-') {
        if (parse_size(e + 1, &o->size_max, &e) != 0 || o->size_max < o->size_min)
            return -1;
        if (strcmp(e, ":log") == 0 && o->size_min > 0)
            o->size_log = 1;
        else if (*e && strcmp(e, ":uniform") != 0)
            return -1;
        return 0;
    }
    return *e ? -1 : 0;
}

static int parse_op(const char *s, bench_op *op)
{
    for (int i = 0; i < BENCH_MKBUCKET; i++)
        if (strcmp(s, op_names[i]) == 0) {
            *op = (bench_op)i;
            return 0;
        }
    return -1;
}

static int parse_mix(bench_opts *o, const char *s)
{
    char buf[256];
    unsigned total = 0;
    if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
        return -1;
    memset(o->mix, 0, sizeof(o->mix));
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        bench_op op;
        uint64_t w;
        if (!eq)
            return -1;
        *eq = '\0';
        if (parse_op(tok, &op) != 0 || parse_u64(eq + 1, &w) != 0 || w > 1000000)
            return -1;
        o->mix[op] = (unsigned)w;
        total += (unsigned)w;
    }
    return total > 0 ? 0 : -1;
}

static int parse_endpoint(bench_opts *o, const char *url)
{
    const char *p = url;
    uint64_t port = 80;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strstr(p, "://"))
        return -1; /* https is not supported by the load tool */
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof(o->host))
        return -1;
    memcpy(o->host, p, hl);
    o->host[hl] = '\0';
    if (strcmp(o->host, "localhost") == 0)
        snprintf(o->host, sizeof(o->host), "127.0.0.1");
    if (p[hl] == ':') {
        char tmp[16];
        size_t pl = strcspn(p + hl + 1, "/");
        if (pl == 0 || pl >= sizeof(tmp))
            return -1;
        memcpy(tmp, p + hl + 1, pl);
        tmp[pl] = '\0';
        if (parse_u64(tmp, &port) != 0 || port == 0 || port > 65535)
            return -1;
    }
    o->port = (int)port;
    snprintf(o->hosthdr, sizeof(o->hosthdr), "%s:%d", o->host, o->port);
    snprintf(o->endpoint, sizeof(o->endpoint), "http://%s", o->hosthdr);
    return 0;
}

static int valid_name(const char *s, const char *extra)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr(extra, *s)))
            return 0;
    return 1;
}

static void defaults(bench_opts *o)
{
    memset(o, 0, sizeof(*o));
    parse_endpoint(o, "http://127.0.0.1:9000");
    snprintf(o->bucket, sizeof(o->bucket), "cairn-bench");
    snprintf(o->prefix, sizeof(o->prefix), "obj");
    o->op = BENCH_PUT;
    o->size_min = o->size_max = 4096;
    o->concurrency = 16;
    o->keys = 100;
    o->preload = 1;
    o->verify_every = 10;
    o->seed = 1;
    o->raw_seconds = 1;
    o->timeout_s = 60;
    o->max_errors = 100;
}

static int set_str(char *dst, size_t cap, const char *v)
{
    return snprintf(dst, cap, "%s", v) >= (int)cap ? -1 : 0;
}

/* One option with a value; -1 when the option is unknown or its value bad. */
static int option_value(bench_opts *o, bench_signer *sg, const char *a, const char *v,
                        char *sizespec, size_t speccap)
{
    uint64_t n;
    double d;
    char *end;
    if (strcmp(a, "--endpoint") == 0)
        return parse_endpoint(o, v);
    if (strcmp(a, "--access-key") == 0)
        return set_str(sg->access_key, sizeof(sg->access_key), v);
    if (strcmp(a, "--secret-key") == 0)
        return set_str(sg->secret_key, sizeof(sg->secret_key), v);
    if (strcmp(a, "--region") == 0)
        return set_str(sg->region, sizeof(sg->region), v);
    if (strcmp(a, "--bucket") == 0)
        return valid_name(v, ".-") ? set_str(o->bucket, sizeof(o->bucket), v) : -1;
    if (strcmp(a, "--prefix") == 0)
        return valid_name(v, "._-ABCDEFGHIJKLMNOPQRSTUVWXYZ") ? set_str(o->prefix, 40, v) : -1;
    if (strcmp(a, "--op") == 0) {
        o->mixed = strcmp(v, "mixed") == 0;
        return o->mixed ? 0 : parse_op(v, &o->op);
    }
    if (strcmp(a, "--mix") == 0)
        return parse_mix(o, v);
    if (strcmp(a, "--size") == 0)
        return parse_size_spec(o, v) != 0 ? -1 : set_str(sizespec, speccap, v);
    if (strcmp(a, "--raw-http") == 0)
        return v[0] == '/' && !strpbrk(v, " \r\n") ? (o->raw_path = v, 0) : -1;
    if (strcmp(a, "--duration") == 0 || strcmp(a, "--raw-seconds") == 0) {
        d = strtod(v, &end);
        if (*end || end == v || !(d > 0 && d < 1e6))
            return -1;
        *(a[2] == 'd' ? &o->duration : &o->raw_seconds) = d;
        return 0;
    }
    if (parse_u64(v, &n) != 0)
        return -1;
    if (strcmp(a, "--concurrency") == 0 && n >= 1 && n <= MAX_CONNS)
        o->concurrency = (int)n;
    else if (strcmp(a, "--count") == 0 && n >= 1)
        o->count = n;
    else if (strcmp(a, "--keys") == 0 && n >= 1)
        o->keys = n;
    else if (strcmp(a, "--verify-every") == 0 && n <= 1000000000)
        o->verify_every = (unsigned)n;
    else if (strcmp(a, "--seed") == 0)
        o->seed = n;
    else if (strcmp(a, "--timeout") == 0 && n >= 1 && n <= 86400)
        o->timeout_s = (int)n;
    else if (strcmp(a, "--max-errors") == 0 && n >= 1)
        o->max_errors = n;
    else
        return -1;
    return 0;
}

static void default_credentials(bench_signer *sg)
{
    const char *ak = getenv("CAIRN_ACCESS_KEY"), *sk = getenv("CAIRN_SECRET_KEY");
    if (!ak || !sk) {
        ak = getenv("AWS_ACCESS_KEY_ID");
        sk = getenv("AWS_SECRET_ACCESS_KEY");
    }
    if (!sg->access_key[0] && ak)
        set_str(sg->access_key, sizeof(sg->access_key), ak);
    if (!sg->secret_key[0] && sk)
        set_str(sg->secret_key, sizeof(sg->secret_key), sk);
    if (!sg->region[0])
        snprintf(sg->region, sizeof(sg->region), "us-east-1");
}

/* "--size 4K-1M uniform" (the word form of ":uniform" / ":log"): 2 when argv[j] was such a word. */
static int size_word(bench_opts *o, const char *a, int argc, char **argv, int j, char *sizespec,
                     size_t speccap)
{
    if (strcmp(a, "--size") != 0 || j >= argc || o->size_min == o->size_max)
        return 1;
    if (strcmp(argv[j], "log") == 0 && o->size_min > 0)
        o->size_log = 1;
    else if (strcmp(argv[j], "uniform") != 0)
        return 1;
    size_t n = strlen(sizespec);
    snprintf(sizespec + n, speccap - n, ":%s", argv[j]);
    return 2;
}

/* 0 to run, 1 after --help, 2 on bad usage. */
static int parse_args(int argc, char **argv, bench_opts *o, bench_signer *sg, char *sizespec,
                      size_t speccap)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(a, "--json") == 0)
            o->json = 1;
        else if (strcmp(a, "--quiet") == 0)
            o->quiet = 1;
        else if (strcmp(a, "--raw") == 0)
            o->raw = 1;
        else if (strcmp(a, "--no-preload") == 0)
            o->preload = 0;
        else if (i + 1 < argc && option_value(o, sg, a, argv[i + 1], sizespec, speccap) == 0)
            i += size_word(o, a, argc, argv, i + 2, sizespec, speccap);
        else {
            fprintf(stderr, "cairn bench: bad option or value: %s%s%s\n", a,
                    i + 1 < argc ? " " : "", i + 1 < argc ? argv[i + 1] : "");
            usage(stderr);
            return 2;
        }
    }
    if (o->duration == 0 && o->count == 0)
        o->duration = 10;
    if (o->raw_path && (o->mixed || o->op != BENCH_GET)) {
        fprintf(stderr, "cairn bench: --raw-http measures GETs only (use --op get)\n");
        return 2;
    }
    if (o->mixed && o->mix[BENCH_PUT] + o->mix[BENCH_GET] + o->mix[BENCH_HEAD] +
                            o->mix[BENCH_DELETE] + o->mix[BENCH_LIST] ==
                        0)
        parse_mix(o, "get=70,put=20,delete=5,list=5");
    default_credentials(sg);
    if (!o->raw && !o->raw_path && (!sg->access_key[0] || !sg->secret_key[0])) {
        fprintf(stderr, "cairn bench: no credentials: pass --access-key/--secret-key or set "
                        "CAIRN_ACCESS_KEY/CAIRN_SECRET_KEY\n");
        return 2;
    }
    return 0;
}

/* ---- the run ---- */

static int setup(bench_run *run, const bench_opts *o, bench_signer *sg, bench_content *content)
{
    run->o = o;
    run->rng = o->seed;
    run->base = event_base_new();
    if (!run->base)
        return -1;
    run->tick = event_new(run->base, -1, EV_PERSIST, on_tick, run);
    run->stop = event_new(run->base, -1, 0, on_stop, run);
    run->t = (bench_target){.base = run->base,
                            .host = o->host,
                            .port = o->port,
                            .hosthdr = o->hosthdr,
                            .bucket = o->bucket,
                            .prefix = o->prefix,
                            .raw_path = o->raw_path,
                            .signer = sg,
                            .content = content,
                            .timeout_s = o->timeout_s};
    run->conns = calloc((size_t)o->concurrency, sizeof(*run->conns));
    if (!run->tick || !run->stop || !run->conns)
        return -1;
    for (run->nconns = 0; run->nconns < o->concurrency; run->nconns++)
        if (!(run->conns[run->nconns] = bench_conn_new(run, &run->t)))
            return -1;
    return 0;
}

static void teardown(bench_run *run)
{
    for (int i = 0; i < run->nconns; i++)
        bench_conn_free(run->conns[i]);
    free(run->conns);
    if (run->tick)
        event_free(run->tick);
    if (run->stop)
        event_free(run->stop);
    if (run->base)
        event_base_free(run->base);
}

/* Bucket and preload; 0 when the measured phase can start. */
static int prepare(bench_run *run)
{
    const bench_opts *o = run->o;
    if (o->raw_path)
        return 0;
    if (run_phase(run, PH_MKBUCKET, 1, 1, 0) != 0) {
        fprintf(stderr, "cairn bench: cannot create bucket %s\n", o->bucket);
        return -1;
    }
    if (!o->preload || (!o->mixed && o->op == BENCH_PUT))
        return 0;
    int n = o->concurrency < (int)o->keys ? o->concurrency : (int)o->keys;
    uint64_t t0 = bench_now_ns();
    if (run_phase(run, PH_PRELOAD, n, o->keys, 0) != 0) {
        fprintf(stderr, "cairn bench: preload failed\n");
        return -1;
    }
    if (!o->quiet)
        fprintf(stderr, "cairn bench: preloaded %llu keys in %.2f s\n", (unsigned long long)o->keys,
                (double)(bench_now_ns() - t0) / 1e9);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o;
    bench_signer sg;
    bench_content content = {0};
    bench_run run;
    char sizespec[64] = "4K";
    int rc = 1;

    defaults(&o);
    memset(&sg, 0, sizeof(sg));
    memset(&run, 0, sizeof(run));
    int pr = parse_args(argc, argv, &o, &sg, sizespec, sizeof(sizespec));
    if (pr != 0)
        return pr == 1 ? 0 : 2;
    if (o.raw)
        return bench_raw(o.raw_seconds, o.json);
    signal(SIGPIPE, SIG_IGN); /* a server closing mid-write is an error to count, not a death */
    if (bench_content_init(&content, o.seed) != 0 || setup(&run, &o, &sg, &content) != 0) {
        fprintf(stderr, "cairn bench: out of memory\n");
        goto out;
    }
    if (prepare(&run) != 0)
        goto out;
    uint64_t errors = run_phase(&run, PH_MAIN, o.concurrency, o.count, o.count ? 0 : o.duration);
    double secs = (double)(run.t_last - run.t0) / 1e9;
    if (secs <= 0)
        secs = 1e-9;
    if (o.json)
        report_json(&run, o.raw_path ? "-" : sizespec, secs);
    else
        report_table(&run, o.raw_path ? "-" : sizespec, secs);
    rc = errors ? 1 : 0;
out:
    teardown(&run);
    bench_content_release(&content);
    return rc;
}
