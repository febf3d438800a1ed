/*
 * cmd/bench.h - private interface between the files of `cairn bench` (cmd/bench*.c).
 *
 *   bench.c        options, phases (bucket, preload, measured run), progress line, reports
 *   bench_http.c   keep-alive HTTP/1.1 client connections on bufferevents (request writing,
 *                  response parsing with Content-Length and chunked bodies, body verification)
 *   bench_sign.c   SigV4 request signing with a cached signing key (UNSIGNED-PAYLOAD)
 *   bench_hist.c   log-bucketed latency histogram (HDR-style, fixed memory), the clock
 *   bench_data.c   deterministic object content (PUT bodies by reference, GET verification)
 *   bench_raw.c    `--raw`: in-process CPU reference speeds (ISA-L 4+2, MD5, SHA-256, CRCs)
 *
 * Everything runs on one libevent loop in one thread; nothing here is shared between threads.
 */
#ifndef CMD_BENCH_H
#define CMD_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct event_base;
struct evbuffer;

/* ---- latency histogram ---- */

/*
 * Values (nanoseconds) below 2^BENCH_HIST_SUB land in exact buckets; above, each power of two is
 * split into 2^(BENCH_HIST_SUB-1) buckets, so a percentile is off by at most 1/64 (1.6 %).
 */
#define BENCH_HIST_SUB 7
#define BENCH_HIST_BUCKETS ((66 - BENCH_HIST_SUB) << (BENCH_HIST_SUB - 1))

typedef struct {
    uint64_t counts[BENCH_HIST_BUCKETS];
    uint64_t total;
    uint64_t max;
} bench_hist;

void bench_hist_record(bench_hist *h, uint64_t ns);
/* The value at quantile q (0..1], the midpoint of its bucket capped at the maximum; 0 if empty. */
uint64_t bench_hist_quantile(const bench_hist *h, double q);
void bench_hist_merge(bench_hist *into, const bench_hist *from);

/* ---- operations and per-op statistics ---- */

typedef enum {
    BENCH_PUT = 0,
    BENCH_GET,
    BENCH_HEAD,
    BENCH_DELETE,
    BENCH_LIST,
    BENCH_MKBUCKET, /* setup only, never reported */
    BENCH__NOPS
} bench_op;

const char *bench_op_name(bench_op op);

typedef struct {
    uint64_t count;   /* completed requests (including errors) */
    uint64_t errors;  /* unexpected status, transport error, verification failure */
    uint64_t misses;  /* 404 of GET/HEAD in a mixed run, where a DELETE may have won */
    uint64_t bytes;   /* payload bytes sent (PUT) or received (GET) */
    uint64_t checked; /* bodies verified byte for byte */
    bench_hist lat;
} bench_stats;

/* ---- deterministic object content ---- */

/*
 * Object bytes are a window into one seeded pattern: content(key)[i] = pattern[(off(key) + i) mod
 * BENCH_PAT]. The pattern is stored twice in a row so any window of up to BENCH_PAT bytes is
 * contiguous, which lets PUT bodies go out by reference (no per-request generation or copy).
 */
#define BENCH_PAT ((size_t)1 << 20)

typedef struct {
    uint8_t *pattern; /* 2 * BENCH_PAT bytes */
    uint64_t seed;
} bench_content;

int bench_content_init(bench_content *c, uint64_t seed);
void bench_content_release(bench_content *c);
uint64_t bench_key_hash(const bench_content *c, const char *key);
/* Append the n-byte content starting at offset off by reference (the pattern outlives it). */
int bench_content_add(const bench_content *c, struct evbuffer *out, uint64_t off, uint64_t n);
/* 1 when data (len bytes, at position pos of the object) equals the content at offset off. */
int bench_content_check(const bench_content *c, uint64_t off, uint64_t pos, const void *data,
                        size_t len);

/* ---- SigV4 ---- */

typedef struct {
    char access_key[128];
    char secret_key[128];
    char region[64];
    char date[9]; /* yyyymmdd the cached key was derived for */
    uint8_t key[32];
    time_t amz_time; /* second the cached amz_date string is for */
    char amz_date[17];
    uint64_t derivations; /* how often the signing key was derived (tests, curiosity) */
} bench_signer;

/*
 * Sign a request with UNSIGNED-PAYLOAD over host, x-amz-content-sha256 and x-amz-date. path is
 * the URI-encoded path as sent, query the canonical (sorted, encoded) query or "". Writes the
 * x-amz-date value and the Authorization header value.
 */
void bench_sign(bench_signer *s, time_t now, const char *method, const char *host, const char *path,
                const char *query, char amz_date[17], char *auth, size_t authcap);

/* ---- the load run ---- */

typedef struct bench_run bench_run;
typedef struct bench_conn bench_conn;

/* One request as the run chooses it; the connection fills in the rest. */
typedef struct {
    bench_op op;
    uint64_t key;  /* key index */
    uint64_t size; /* PUT body size / expected GET size */
    int verify;    /* GET: compare the body byte for byte */
    int tolerate_404;
} bench_req;

/* Called by the connection when a request has completed (ok or not). */
void bench_run_done(bench_run *run, bench_conn *conn, const bench_req *req, int ok, int miss,
                    uint64_t bytes, int checked, uint64_t ns);
/* Ask the run for the next request of this connection; 0 when the connection should idle. */
int bench_run_next(bench_run *run, bench_req *req);
/* Report an error line (first few only). */
void bench_run_error(bench_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Everything a connection needs to build requests, borrowed from the run. */
typedef struct {
    struct event_base *base;
    const char *host; /* "127.0.0.1" */
    int port;
    const char *hosthdr; /* "127.0.0.1:9000" */
    const char *bucket;
    const char *prefix;   /* key name prefix */
    const char *raw_path; /* --raw-http: plain unsigned GETs of this path */
    bench_signer *signer;
    const bench_content *content;
    int timeout_s;
} bench_target;

bench_conn *bench_conn_new(bench_run *run, const bench_target *t);
void bench_conn_free(bench_conn *c);
/* Take the next request from the run and send it; 0 if the connection went idle. */
int bench_conn_kick(bench_conn *c);
int bench_conn_busy(const bench_conn *c);
/* The object key of index i into out ("prefix-00000042"). */
void bench_key_name(const bench_target *t, uint64_t i, char *out, size_t cap);

/* ---- raw CPU references ---- */

int bench_raw(double seconds, int json);

uint64_t bench_now_ns(void);

#endif
