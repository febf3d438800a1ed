/*
 * gw_stats.c - per-request metrics and the JSON access log (docs/metrics.md).
 *
 * Every request is named by its S3 operation (gw_op_classify: method, bucket/key, subresource,
 * copy source) at on_request, and counted at on_done: requests by operation and status code,
 * a latency histogram per operation (from on_request to the end of the response), body bytes in
 * and out per operation. The label sets are fixed tables (gw_stats.h): a bucket, key or user is
 * never a label, and an unknown operation or status is "other".
 *
 * Hot path cost: a handful of relaxed atomic adds into arrays indexed by (op, code), no lock and
 * no allocation. The access log line is formatted on the loop into a stack buffer and queued with
 * cm_alog_line (a memcpy under the log's mutex; the disk is written by the log's thread).
 *
 * Threading: gw_stats_end runs on the request's loop; gw_stats_write on any thread (relaxed
 * loads: a scrape may see one request's count before its histogram observation).
 */
#include "gw_stats.h"

#include "gw_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Latency bucket bounds, nanoseconds: 0.5 ms to 30 s. */
static const uint64_t lat_bounds[] = {500000,     1000000,    2500000,    5000000,     10000000,
                                      25000000,   50000000,   100000000,  250000000,   500000000,
                                      1000000000, 2500000000, 5000000000, 10000000000, 30000000000};
#define NLAT (sizeof(lat_bounds) / sizeof(lat_bounds[0]))

struct gw_stats {
    uint64_t requests[GW_OP_COUNT][GW_CODE_COUNT];
    uint64_t bytes_in[GW_OP_COUNT], bytes_out[GW_OP_COUNT];
    cm_hist latency[GW_OP_COUNT];
    uint64_t counters[GW_CTR_COUNT];
};

/* ---- label sets ---- */

static const char *const op_names[] = {
#define GW_OP_NAME(name) #name,
    GW_OPS(GW_OP_NAME)
#undef GW_OP_NAME
};

const char *gw_op_name(gw_op op)
{
    return (unsigned)op < GW_OP_COUNT ? op_names[op] : "other";
}

static const int codes[] = {
#define GW_CODE_NUM(c) c,
    GW_CODES(GW_CODE_NUM)
#undef GW_CODE_NUM
};
static const char *const code_labels[] = {
#define GW_CODE_STR(c) #c,
    GW_CODES(GW_CODE_STR)
#undef GW_CODE_STR
        "other",
    "none"};

int gw_code_index(int status)
{
    if (status == 0)
        return GW_CODE_NONE;
    for (int i = 0; i < GW_CODE_OTHER; i++)
        if (codes[i] == status)
            return i;
    return GW_CODE_OTHER;
}

const char *gw_code_label(int index)
{
    return index >= 0 && index < GW_CODE_COUNT ? code_labels[index] : "other";
}

/* ---- classification ---- */

/* A subresource request: the query names sub, at bucket or object level, with method. */
static const struct {
    const char *sub;
    int object;
    const char *method;
    gw_op op;
} subs[] = {
    {"uploadId", 1, "PUT", GW_OP_UploadPart},
    {"uploadId", 1, "POST", GW_OP_CompleteMultipartUpload},
    {"uploadId", 1, "DELETE", GW_OP_AbortMultipartUpload},
    {"uploadId", 1, "GET", GW_OP_ListParts},
    {"uploads", 1, "POST", GW_OP_CreateMultipartUpload},
    {"tagging", 1, "GET", GW_OP_GetObjectTagging},
    {"tagging", 1, "PUT", GW_OP_PutObjectTagging},
    {"tagging", 1, "DELETE", GW_OP_DeleteObjectTagging},
    {"attributes", 1, "GET", GW_OP_GetObjectAttributes},
    {"acl", 1, "GET", GW_OP_GetObjectAcl},
    {"acl", 1, "PUT", GW_OP_PutObjectAcl},
    {"uploads", 0, "GET", GW_OP_ListMultipartUploads},
    {"versions", 0, "GET", GW_OP_ListObjectVersions},
    {"location", 0, "GET", GW_OP_GetBucketLocation},
    {"versioning", 0, "GET", GW_OP_GetBucketVersioning},
    {"versioning", 0, "PUT", GW_OP_PutBucketVersioning},
    {"tagging", 0, "GET", GW_OP_GetBucketTagging},
    {"tagging", 0, "PUT", GW_OP_PutBucketTagging},
    {"tagging", 0, "DELETE", GW_OP_DeleteBucketTagging},
    {"acl", 0, "GET", GW_OP_GetBucketAcl},
    {"acl", 0, "PUT", GW_OP_PutBucketAcl},
    {"policy", 0, "GET", GW_OP_GetBucketPolicy},
    {"policy", 0, "PUT", GW_OP_PutBucketPolicy},
    {"policy", 0, "DELETE", GW_OP_DeleteBucketPolicy},
    {"cors", 0, "GET", GW_OP_GetBucketCors},
    {"cors", 0, "PUT", GW_OP_PutBucketCors},
    {"cors", 0, "DELETE", GW_OP_DeleteBucketCors},
    {"lifecycle", 0, "GET", GW_OP_GetBucketLifecycleConfiguration},
    {"lifecycle", 0, "PUT", GW_OP_PutBucketLifecycleConfiguration},
    {"lifecycle", 0, "DELETE", GW_OP_DeleteBucketLifecycle},
    {"encryption", 0, "GET", GW_OP_GetBucketEncryption},
    {"encryption", 0, "PUT", GW_OP_PutBucketEncryption},
    {"encryption", 0, "DELETE", GW_OP_DeleteBucketEncryption},
    {"delete", 0, "POST", GW_OP_DeleteObjects},
};

/* The plain (no subresource) operations by method: bucket level, object level. */
static const struct {
    const char *method;
    gw_op bucket, object;
} plain[] = {
    {"GET", GW_OP_ListObjects, GW_OP_GetObject},
    {"HEAD", GW_OP_HeadBucket, GW_OP_HeadObject},
    {"PUT", GW_OP_CreateBucket, GW_OP_PutObject},
    {"DELETE", GW_OP_DeleteBucket, GW_OP_DeleteObject},
    {"POST", GW_OP_PostObject, GW_OP_other},
};

gw_op gw_op_classify(const char *method, int has_bucket, int has_key, const gw_query *q,
                     int copy_source)
{
    if (strcmp(method, "OPTIONS") == 0)
        return GW_OP_Options;
    if (!has_bucket)
        return strcmp(method, "GET") == 0 ? GW_OP_ListBuckets : GW_OP_other;
    has_key = has_key != 0;
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (subs[i].object == has_key && strcmp(subs[i].method, method) == 0 &&
            gw_query_find(q, subs[i].sub)) {
            gw_op op = subs[i].op;
            return op == GW_OP_UploadPart && copy_source ? GW_OP_UploadPartCopy : op;
        }
    }
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        if (strcmp(plain[i].method, method) != 0)
            continue;
        if (!has_key) {
            const char *lt = gw_query_get(q, "list-type");
            return plain[i].bucket == GW_OP_ListObjects && lt && strcmp(lt, "2") == 0
                       ? GW_OP_ListObjectsV2
                       : plain[i].bucket;
        }
        return plain[i].object == GW_OP_PutObject && copy_source ? GW_OP_CopyObject
                                                                 : plain[i].object;
    }
    return GW_OP_other;
}

/* ---- counting ---- */

cm_err gw_stats_new(gw_stats **out)
{
    gw_stats *s = calloc(1, sizeof(*s));
    if (!s)
        return CM_ERR_NOMEM;
    for (int i = 0; i < GW_OP_COUNT; i++)
        cm_hist_init(&s->latency[i], lat_bounds, (int)NLAT);
    *out = s;
    return CM_OK;
}

void gw_stats_free(gw_stats *s)
{
    free(s);
}

void gw_count(gw *g, gw_counter c)
{
    if ((unsigned)c < GW_CTR_COUNT)
        __atomic_add_fetch(&g->stats->counters[c], 1, __ATOMIC_RELAXED);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void gw_stats_begin(gw_req *r)
{
    r->t0_ns = mono_ns();
    r->opk = GW_OP_other;
}

void gw_stats_classify(gw_req *r)
{
    r->opk = gw_op_classify(net_req_method(r->net), r->bucket[0] != '\0', r->key != NULL, &r->q,
                            gw_hdr(r, "x-amz-copy-source") != NULL);
}

/* Append "name":"escaped" to line at *o (cap bytes in all). */
static void json_field(char *line, size_t cap, size_t *o, const char *name, const char *v,
                       size_t vlen)
{
    int n = snprintf(line + *o, cap - *o, ",\"%s\":\"", name);
    if (n < 0 || (size_t)n + 3 > cap - *o)
        return;
    *o += (size_t)n;
    *o += cm_json_escape(v, vlen, line + *o, cap - *o - 2); /* room for the closing quote */
    line[(*o)++] = '"';
    line[*o] = '\0';
}

/* One JSON line: every string a bounded, escaped field; the key at most MD_MAX_KEY bytes, each
 * of which escapes to at most 6, so the line always fits the buffer whole. */
static void access_line(gw_req *r, int status, uint64_t in, uint64_t out, uint64_t ns)
{
    char line[6 * MD_MAX_KEY + 2048];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t o = (size_t)snprintf(line, sizeof(line),
                                "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"id\":\"%s\"",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                                tm.tm_sec, now.tv_nsec / 1000000, r->id);
    const char *peer = net_req_peer(r->net), *user = r->auth.access_key;
    json_field(line, sizeof(line), &o, "remote", peer, strlen(peer));
    json_field(line, sizeof(line), &o, "user", user, strnlen(user, sizeof(r->auth.access_key)));
    json_field(line, sizeof(line), &o, "op", gw_op_name(r->opk), strlen(gw_op_name(r->opk)));
    json_field(line, sizeof(line), &o, "method", net_req_method(r->net),
               strlen(net_req_method(r->net)));
    json_field(line, sizeof(line), &o, "bucket", r->bucket, strlen(r->bucket));
    if (r->key)
        json_field(line, sizeof(line), &o, "key", r->key, strnlen(r->key, MD_MAX_KEY));
    const char *err = r->s3err != GW_OK ? gw_s3err_code((gw_s3err)r->s3err) : "";
    json_field(line, sizeof(line), &o, "error", err, strlen(err));
    int n = snprintf(line + o, sizeof(line) - o,
                     ",\"status\":%d,\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
                     ",\"latency_ms\":%.3f}\n",
                     status, in, out, (double)ns / 1e6);
    if (n > 0 && (size_t)n < sizeof(line) - o)
        cm_alog_line(r->g->access_log, line, o + (size_t)n);
}

void gw_stats_end(gw_req *r)
{
    gw_stats *s = r->g->stats;
    int op = (unsigned)r->opk < GW_OP_COUNT ? r->opk : GW_OP_other;
    int status = net_resp_status(r->net);
    uint64_t in = net_req_body_received(r->net), out = net_resp_written(r->net);
    uint64_t ns = mono_ns() - r->t0_ns;

    __atomic_add_fetch(&s->requests[op][gw_code_index(status)], 1, __ATOMIC_RELAXED);
    if (in)
        __atomic_add_fetch(&s->bytes_in[op], in, __ATOMIC_RELAXED);
    if (out)
        __atomic_add_fetch(&s->bytes_out[op], out, __ATOMIC_RELAXED);
    cm_hist_observe(&s->latency[op], ns);
    if (r->g->access_log)
        access_line(r, status, in, out, ns);
}

/* ---- /metrics ---- */

static void write_bytes(FILE *f, const char *name, const char *help, const uint64_t *v)
{
    cm_metric_head(f, name, "counter", help);
    for (int op = 0; op < GW_OP_COUNT; op++) {
        uint64_t n = __atomic_load_n(&v[op], __ATOMIC_RELAXED);
        if (n) {
            char lb[64];
            snprintf(lb, sizeof(lb), "op=\"%s\"", op_names[op]);
            cm_metric_u64(f, name, lb, n);
        }
    }
}

void gw_stats_write(gw *g, FILE *f)
{
    gw_stats *s = g->stats;
    char lb[96];
    cm_metric_head(f, "cairn_requests_total", "counter",
                   "Requests answered, by S3 operation and HTTP status code");
    for (int op = 0; op < GW_OP_COUNT; op++)
        for (int c = 0; c < GW_CODE_COUNT; c++) {
            uint64_t n = __atomic_load_n(&s->requests[op][c], __ATOMIC_RELAXED);
            if (n) {
                snprintf(lb, sizeof(lb), "op=\"%s\",code=\"%s\"", op_names[op], code_labels[c]);
                cm_metric_u64(f, "cairn_requests_total", lb, n);
            }
        }
    cm_metric_head(f, "cairn_request_duration_seconds", "histogram",
                   "Time from a request's head to the end of its response, by S3 operation");
    for (int op = 0; op < GW_OP_COUNT; op++) {
        if (cm_hist_count(&s->latency[op]) == 0)
            continue;
        snprintf(lb, sizeof(lb), "op=\"%s\"", op_names[op]);
        cm_hist_write(f, "cairn_request_duration_seconds", lb, &s->latency[op], 1e-9);
    }
    write_bytes(f, "cairn_received_bytes_total", "Request body bytes received, by S3 operation",
                s->bytes_in);
    write_bytes(f, "cairn_sent_bytes_total",
                "Response body bytes sent (headers excluded), by S3 operation", s->bytes_out);
    static const struct {
        const char *name, *help;
    } ctr[] = {
#define GW_CTR_ROW(id, name, help) {name, help},
        GW_COUNTERS(GW_CTR_ROW)
#undef GW_CTR_ROW
    };
    for (int i = 0; i < GW_CTR_COUNT; i++) {
        cm_metric_head(f, ctr[i].name, "counter", ctr[i].help);
        cm_metric_u64(f, ctr[i].name, NULL, __atomic_load_n(&s->counters[i], __ATOMIC_RELAXED));
    }
    if (g->access_log) {
        uint64_t written, dropped;
        cm_alog_stats(g->access_log, &written, &dropped);
        cm_metric_head(f, "cairn_access_log_lines_total", "counter",
                       "Access log lines written to the file");
        cm_metric_u64(f, "cairn_access_log_lines_total", NULL, written);
        cm_metric_head(f, "cairn_access_log_dropped_total", "counter",
                       "Access log lines dropped: the buffer was full or the write failed");
        cm_metric_u64(f, "cairn_access_log_dropped_total", NULL, dropped);
    }
}
