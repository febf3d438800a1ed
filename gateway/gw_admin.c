/*
 * gw_admin.c - the admin API and Prometheus metrics, served on the S3 port (docs/scrub.md).
 *
 *   POST /admin/scrub    start a scrub pass now: 202 {"started":true,"pass":N}, or 409 when one
 *                        runs (the pass is done when "passes" in the status reaches N)
 *   GET  /admin/scrub    scrub status and counters (JSON)
 *   GET  /admin/status   drives (online, blobs, space used / live / reclaimable, checksum
 *                        failures), the metadata copies ("meta": healthy or failed), the format
 *                        stamp ("format", cm_format.h), scrub and
 *                        the lifecycle worker (gw_lifecycle.c; JSON), plus the
 *                        gw_set_status_extra member
 *   GET  /metrics        Prometheus text format (docs/metrics.md lists every metric; no secrets),
 *                        to a bearer token or an allowed address: [metrics] token / allow
 *                        (gw_metrics_acl.c); rendered on a worker (statvfs, store stats)
 *   GET|POST /admin/users  users and access keys (gw_users.c; docs/users.md)
 *   GET  /admin/drives, /admin/buckets   the drive and bucket tables (gw_admin_lists.c)
 *   GET|POST /admin/sse/rewrap   the master-key rewrap pass: status / start (gw_sse_rewrap.c)
 *   GET|POST /admin/repair, GET /admin/object-cells?bucket=B&key=K, GET|POST /admin/orphans
 *                        a cluster node's repair pass, a body's cells and the cluster-wide
 *                        orphan sweep (gw_set_admin_extra: answered on a worker; 503 on a node
 *                        without them)
 *   GET|HEAD /_console/...  the web console's files (gw_console.c; shadows nothing: '_' cannot
 *                        be in a bucket name)
 *
 * Routing happens before S3 routing, on the exact paths above with path-style addressing only,
 * so they shadow just a few S3 requests: a V1 listing of a bucket named "metrics" without any
 * query parameter, and keys "scrub", "status", "repair", "users", "object-cells", "drives",
 * "buckets" and "orphans" in a bucket named "admin". /admin/ requests must be SigV4-signed (header
 * auth) with the root credentials, exactly as S3 requests are; a user's key or an unsigned request
 * is AccessDenied.
 *
 * The scrubber itself is the object layer's (ob_scrub.c); gw_scrub_new attaches one here.
 *
 * Threading: handlers run on event-loop threads and never block: a scrub request only signals the
 * scrub thread; status reads copy counters under the scrubber's mutex; /metrics is written on a
 * worker.
 */
#include "gw_int.h"
#include "gw_lc.h"
#include "gw_stats.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bs.h"
#include "cm_log.h"
#include "cm_util.h"
#include "rp.h"

#define MOD "admin"

static const char *const methods[] = {"GET", "PUT", "HEAD", "POST", "DELETE", "OPTIONS"};
#define NMETHODS 6 /* req_count[NMETHODS] counts every other method */

/* ---- helpers ---- */

static void count_request(gw_req *r)
{
    const char *m = net_req_method(r->net);
    size_t i = 0;
    while (i < NMETHODS && strcmp(m, methods[i]) != 0)
        i++;
    __atomic_add_fetch(&r->g->req_count[i], 1, __ATOMIC_RELAXED);
}

/* Path-style only: a Host naming "<bucket>.<domain>" addresses a bucket, never the admin API. */
static int virtual_hosted(gw_req *r)
{
    const char *host = gw_hdr(r, "host");
    const char *dom = r->g->domain;
    if (!host)
        return 0;
    size_t hl = strcspn(host, ":"), dl = strlen(dom);
    return hl > dl + 1 && host[hl - dl - 1] == '.' && strncasecmp(host + hl - dl, dom, dl) == 0;
}

void gw_admin_send(gw_req *r, int status, const char *type, struct evbuffer *b)
{
    gw_resp_start(r, status, (int64_t)evbuffer_get_length(b));
    net_resp_header(r->net, "Content-Type", type);
    net_resp_header(r->net, "Cache-Control", "no-store");
    net_resp_write_buffer(r->net, b);
    net_resp_end(r->net);
}

void gw_admin_json(gw_req *r, int status, const char *code, const char *msg)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        net_req_abort(r->net);
        return;
    }
    evbuffer_add_printf(b, "{\"error\":\"%s\",\"message\":\"%s\"}\n", code, msg);
    gw_admin_send(r, status, "application/json", b);
    evbuffer_free(b);
}

/* ---- JSON ---- */

static void json_scrub(struct evbuffer *b, const ob_scrub_status *s)
{
    evbuffer_add_printf(
        b,
        "{\"running\":%s,\"passes\":%" PRIu64 ",\"rate_mb\":%g,"
        "\"last_start_ms\":%" PRId64 ",\"last_end_ms\":%" PRId64 ",\"next_due_ms\":%" PRId64 ","
        "\"objects_checked\":%" PRIu64 ",\"bodies_checked\":%" PRIu64 ",\"bytes_verified\":%" PRIu64
        ",\"damaged_found\":%" PRIu64 ",\"repaired\":%" PRIu64 ",\"repair_failed\":%" PRIu64
        ",\"changed_meanwhile\":%" PRIu64 ",\"inline_checked\":%" PRIu64
        ",\"inline_corrupt\":%" PRIu64 ","
        "\"pass\":{\"objects\":%" PRIu64 ",\"objects_estimate\":%" PRIu64 ",\"bytes\":%" PRIu64
        ",\"bytes_estimate\":%" PRIu64 ",\"damaged\":%" PRIu64 ",\"repaired\":%" PRIu64
        ",\"failed\":%" PRIu64 ",\"inline_corrupt\":%" PRIu64 ",\"compressed_bodies\":%" PRIu64
        ",\"compressed_logical_bytes\":%" PRIu64 ",\"compressed_stored_bytes\":%" PRIu64 "}}",
        s->running ? "true" : "false", s->passes, s->rate_mb, s->last_start_ms, s->last_end_ms,
        s->next_due_ms, s->objects_checked, s->bodies_checked, s->bytes_verified, s->damaged_found,
        s->repaired, s->repair_failed, s->changed_meanwhile, s->inline_checked, s->inline_corrupt,
        s->pass_objects, s->est_objects, s->pass_bytes, s->est_bytes, s->pass_damaged,
        s->pass_repaired, s->pass_failed, s->pass_inline_corrupt, s->pass_z_bodies,
        s->pass_z_logical, s->pass_z_stored);
}

static void json_drives(struct evbuffer *b, gw *g)
{
    int n = ob_store_ndrives(g->data);
    evbuffer_add_printf(b, "\"drives_online\":%d,\"drives_total\":%d,\"drives\":[",
                        ob_store_drives_online(g->data), n);
    for (int i = 0; i < n; i++) {
        ob_drive_stats st;
        ob_store_drive_stats(g->data, i, &st);
        evbuffer_add_printf(
            b,
            "%s{\"drive\":%d,\"online\":%s,\"state\":\"%s\",\"blobs\":%" PRIu64
            ",\"live_bytes\":%" PRIu64 ",\"disk_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64
            ",\"reclaimable_bytes\":%" PRIu64 ",\"punched_bytes\":%" PRIu64
            ",\"segments\":%u,\"corrupt_found\":%" PRIu64 "}",
            i ? "," : "", i, st.usable ? "true" : "false", ob_drive_state_name(st.state), st.blobs,
            st.live_bytes, st.disk_bytes, st.used_bytes, st.reclaimable_bytes, st.punched_bytes,
            st.segments, st.corrupt_found);
    }
    evbuffer_add(b, "]", 1);
}

/* Transparent compression since start (docs/compression.md). */
static void json_compression(struct evbuffer *b, gw *g)
{
    ob_zstats z;
    ob_store_zstats(g->data, &z);
    evbuffer_add_printf(b,
                        ",\"compression\":{\"mode\":\"%s\",\"level\":%d,\"bodies\":%" PRIu64
                        ",\"logical_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64
                        ",\"skipped\":%" PRIu64 "}",
                        g->cfg.compression ? "auto" : "off", g->cfg.compress_level, z.bodies,
                        z.logical_bytes, z.stored_bytes, z.skipped);
}

/* The metadata copies (md_open_data: copy i in drive<i>/meta; one copy in meta/). */
static void json_meta(struct evbuffer *b, gw *g)
{
    md_stats st;
    md_stats_get(g->md, &st);
    evbuffer_add_printf(b,
                        ",\"meta\":{\"copies\":%d,\"copies_healthy\":%d,\"copy_failures\":%" PRIu64
                        ",\"seq\":%" PRIu64 ",\"list\":[",
                        st.copies, st.copies_healthy, st.copy_failures, st.seq);
    for (int i = 0; i < st.copies && i < 3; i++) {
        char dir[32];
        if (st.copies > 1)
            snprintf(dir, sizeof(dir), "drive%d/meta", i);
        else
            snprintf(dir, sizeof(dir), "meta");
        evbuffer_add_printf(b, "%s{\"copy\":%d,\"dir\":\"%s\",\"state\":\"%s\"}", i ? "," : "", i,
                            dir, st.copy_failed[i] ? "failed" : "ok");
    }
    evbuffer_add(b, "]}", 2);
}

/* The data directory's format stamp (cm_format.h), as read at start; null when it had none. */
static void json_format(struct evbuffer *b, gw *g)
{
    if (!g->have_format) {
        evbuffer_add_printf(b, ",\"format\":null");
        return;
    }
    /* every field passed the decoder's character sets: no JSON escaping needed */
    evbuffer_add_printf(b,
                        ",\"format\":{\"version\":%u,\"supported\":%u,\"id\":\"%s\","
                        "\"written_by\":\"%s\",\"created\":\"%s\",\"origin\":\"%s\"}",
                        g->format.version, CM_FORMAT_VERSION, g->format.id, g->format.writer,
                        g->format.created, g->format.adopted ? "adopted" : "new");
}

/* ---- handlers ---- */

static void admin_scrub(gw_req *r, int post)
{
    ob_scrub *s = r->g->scrub;
    ob_scrub_status st;
    if (!s) {
        gw_admin_json(r, 503, "NoScrubber", "this server runs no scrubber");
        return;
    }
    if (post) {
        uint64_t seq = 0;
        cm_err e = ob_scrub_trigger(s, &seq);
        if (e == CM_ERR_CONFLICT) {
            gw_admin_json(r, 409, "ScrubRunning", "a scrub pass is already running");
            return;
        }
        if (e != CM_OK) {
            gw_admin_json(r, 503, "ScrubUnavailable", cm_err_str(e));
            return;
        }
        CM_INFO(MOD, "req=%s scrub pass %" PRIu64 " requested", r->id, seq);
        struct evbuffer *b = evbuffer_new();
        if (!b) {
            net_req_abort(r->net);
            return;
        }
        evbuffer_add_printf(b, "{\"started\":true,\"pass\":%" PRIu64 "}\n", seq);
        gw_admin_send(r, 202, "application/json", b);
        evbuffer_free(b);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        net_req_abort(r->net);
        return;
    }
    ob_scrub_get_status(s, &st);
    json_scrub(b, &st);
    evbuffer_add(b, "\n", 1);
    gw_admin_send(r, 200, "application/json", b);
    evbuffer_free(b);
}

static void admin_status(gw_req *r)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        net_req_abort(r->net);
        return;
    }
    evbuffer_add_printf(b, "{\"ready\":%s,\"erasure\":\"%d+%d\",",
                        __atomic_load_n(&r->g->ready, __ATOMIC_ACQUIRE) ? "true" : "false",
                        r->g->cfg.k, r->g->cfg.m);
    json_drives(b, r->g);
    json_compression(b, r->g);
    json_meta(b, r->g);
    json_format(b, r->g);
    evbuffer_add_printf(b, ",\"scrub\":");
    if (r->g->scrub) {
        ob_scrub_status st;
        ob_scrub_get_status(r->g->scrub, &st);
        json_scrub(b, &st);
    } else {
        evbuffer_add_printf(b, "null");
    }
    if (r->g->lc) {
        evbuffer_add_printf(b, ",\"lifecycle\":");
        gw_lc_status_json(r->g->lc, b);
    }
    /* the cluster view lists every node: up to 64 of ~200 bytes each, on the heap */
    size_t cap = 64 * 1024;
    char *extra = r->g->status_fn ? malloc(cap) : NULL;
    size_t n = extra ? r->g->status_fn(r->g->status_arg, extra, cap) : 0;
    if (n > 0 && n < cap) {
        evbuffer_add(b, ",", 1);
        evbuffer_add(b, extra, n);
    }
    free(extra);
    evbuffer_add(b, "}\n", 2);
    gw_admin_send(r, 200, "application/json", b);
    evbuffer_free(b);
}

void gw_set_status_extra(gw *g, gw_status_fn fn, void *arg)
{
    g->status_fn = fn;
    g->status_arg = arg;
}

void gw_set_admin_extra(gw *g, gw_admin_fn fn, void *arg)
{
    g->admin_fn = fn;
    g->admin_arg = arg;
}

/* An /admin/repair, /admin/object-cells or /admin/orphans request, answered by admin_fn on a
 * worker. */
typedef struct {
    int object_cells, post, status; /* object_cells: 0 repair, 1 object-cells, 2 orphans */
    char bucket[MD_BUCKET_MAX + 1];
    char key[MD_MAX_KEY + 1];
    char out[16384];
} admin_ext_state;

static void admin_ext_work(gw_req *r)
{
    admin_ext_state *st = r->op;
    static const char *const routes[] = {"repair", "object-cells", "orphans"};
    st->status = r->g->admin_fn(r->g->admin_arg, routes[st->object_cells], st->post, st->bucket,
                                st->key, st->out, sizeof(st->out));
}

static void admin_ext_done(gw_req *r)
{
    admin_ext_state *st = r->op;
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        net_req_abort(r->net);
        return;
    }
    evbuffer_add(b, st->out, strnlen(st->out, sizeof(st->out)));
    gw_admin_send(r, st->status, "application/json", b);
    evbuffer_free(b);
}

static void admin_ext(gw_req *r, int object_cells, int post)
{
    const char *t = net_req_target(r->net);
    gw_query q;
    if (!r->g->admin_fn) {
        gw_admin_json(r, 503, "NotClustered", "this server is not a cluster node");
        return;
    }
    if (gw_query_parse(&q, t, strlen(t)) != GW_OK) {
        gw_admin_json(r, 400, "InvalidRequest", "the request URI could not be decoded");
        return;
    }
    const char *bucket = gw_query_get(&q, "bucket"), *key = gw_query_get(&q, "key");
    admin_ext_state *st = calloc(1, sizeof(*st));
    int bad = object_cells == 1 &&
              (!bucket || !key || strlen(bucket) > MD_BUCKET_MAX || strlen(key) > MD_MAX_KEY);
    if (st && !bad) {
        st->object_cells = object_cells, st->post = post;
        snprintf(st->bucket, sizeof(st->bucket), "%s", bucket ? bucket : "");
        snprintf(st->key, sizeof(st->key), "%s", key ? key : "");
        if (object_cells == 2) /* orphans: its query as it came (delete=, grace=) */
            snprintf(st->key, sizeof(st->key), "%s", strchr(t, '?') ? strchr(t, '?') + 1 : "");
    }
    gw_query_release(&q);
    if (!st || bad) {
        free(st);
        if (bad)
            gw_admin_json(r, 400, "InvalidRequest", "give bucket=NAME&key=KEY");
        else
            net_req_abort(r->net);
        return;
    }
    r->op = st;
    r->op_free = free;
    gw_offload(r, admin_ext_work, admin_ext_done);
}

/* ---- metrics ---- */

static void metric(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
    cm_metric_head(f, name, type, help);
    cm_metric_u64(f, name, NULL, v);
}

static void metrics_scrub(FILE *f, ob_scrub *s)
{
    ob_scrub_status t;
    ob_scrub_get_status(s, &t);
    metric(f, "cairn_scrub_running", "gauge", "1 while a scrub pass runs", (uint64_t)t.running);
    metric(f, "cairn_scrub_passes_total", "counter", "Scrub passes finished", t.passes);
    metric(f, "cairn_scrub_objects_checked_total", "counter", "Objects scrubbed",
           t.objects_checked);
    metric(f, "cairn_scrub_bytes_verified_total", "counter", "Cell bytes read and verified",
           t.bytes_verified);
    metric(f, "cairn_scrub_damaged_total", "counter", "Damaged bodies found", t.damaged_found);
    metric(f, "cairn_scrub_repaired_total", "counter", "Damaged bodies rebuilt", t.repaired);
    metric(f, "cairn_scrub_repair_failures_total", "counter", "Repairs that failed",
           t.repair_failed);
    metric(f, "cairn_scrub_inline_corrupt_total", "counter",
           "Inline bodies whose CRC32C did not match (not repairable)", t.inline_corrupt);
    metric(f, "cairn_scrub_last_start_timestamp_seconds", "gauge", "Start of the last pass",
           (uint64_t)(t.last_start_ms / 1000));
    metric(f, "cairn_scrub_last_end_timestamp_seconds", "gauge", "End of the last pass",
           (uint64_t)(t.last_end_ms / 1000));
    metric(f, "cairn_scrub_pass_bytes", "gauge", "Bytes verified by the current pass",
           t.pass_bytes);
    metric(f, "cairn_scrub_pass_bytes_estimate", "gauge", "Estimated bytes of the current pass",
           t.est_bytes);
    metric(f, "cairn_scrub_pass_objects", "gauge", "Objects checked by the current pass",
           t.pass_objects);
    metric(f, "cairn_scrub_pass_objects_estimate", "gauge", "Estimated objects of the current pass",
           t.est_objects);
}

/* A per-drive metric: HELP and TYPE, then one sample per drive of the uint64_t field at off of
 * the n structs of size sz at base (ob_drive_stats, bs_stats). */
static void drive_metric(FILE *f, const char *name, const char *type, const char *help,
                         const void *base, size_t sz, int n, size_t off)
{
    cm_metric_head(f, name, type, help);
    for (int i = 0; i < n; i++) {
        uint64_t v;
        char lb[32];
        memcpy(&v, (const char *)base + (size_t)i * sz + off, sizeof(v));
        snprintf(lb, sizeof(lb), "drive=\"%d\"", i);
        cm_metric_u64(f, name, lb, v);
    }
}

static void metrics_compression(FILE *f, gw *g)
{
    ob_zstats z;
    ob_store_zstats(g->data, &z);
    metric(f, "cairn_compressed_bodies_total", "counter", "Bodies stored compressed", z.bodies);
    metric(f, "cairn_compressed_logical_bytes_total", "counter",
           "Body bytes of the bodies stored compressed", z.logical_bytes);
    metric(f, "cairn_compressed_stored_bytes_total", "counter",
           "Stored bytes of the bodies stored compressed", z.stored_bytes);
}

#define DRIVE(f, name, type, help, st, n, field)                                                   \
    drive_metric(f, name, type, help, st, sizeof(*(st)), n, offsetof(__typeof__(*(st)), field))

/* Per drive: health, space of the segment files and of the file system. */
static void metrics_drive_space(FILE *f, gw *g, int n)
{
    ob_drive_stats *st = calloc(n > 0 ? (size_t)n : 1, sizeof(*st));
    uint64_t(*fs)[2] = calloc(n > 0 ? (size_t)n : 1, sizeof(*fs)); /* free, size */
    if (!st || !fs)
        goto out;
    for (int i = 0; i < n; i++) {
        struct statvfs sv;
        const char *dir = ob_store_drive_dir(g->data, i);
        ob_store_drive_stats(g->data, i, &st[i]);
        if (dir && statvfs(dir, &sv) == 0)
            fs[i][0] = (uint64_t)sv.f_bavail * sv.f_frsize,
            fs[i][1] = (uint64_t)sv.f_blocks * sv.f_frsize;
    }
    cm_metric_head(f, "cairn_drive_failed", "gauge", "1 when the drive is failed or offline");
    for (int i = 0; i < n; i++) {
        char lb[32];
        snprintf(lb, sizeof(lb), "drive=\"%d\"", i);
        cm_metric_u64(f, "cairn_drive_failed", lb, st[i].state >= OB_DRIVE_FAILED);
    }
    drive_metric(f, "cairn_drive_free_bytes", "gauge",
                 "Space an unprivileged writer may still use on the drive's file system", fs,
                 sizeof(*fs), n, 0);
    drive_metric(f, "cairn_drive_size_bytes", "gauge", "Size of the drive's file system", fs,
                 sizeof(*fs), n, sizeof(uint64_t));
    DRIVE(f, "cairn_blobstore_corrupt_found_total", "counter",
          "Records or blocks that failed a checksum", st, n, corrupt_found);
    DRIVE(f, "cairn_blobstore_disk_bytes", "gauge", "Size of the segment files", st, n, disk_bytes);
    DRIVE(f, "cairn_blobstore_used_bytes", "gauge",
          "Disk space of the segment files (holes of deleted data excluded)", st, n, used_bytes);
    DRIVE(f, "cairn_blobstore_live_bytes", "gauge", "Data of live blobs", st, n, live_bytes);
    DRIVE(f, "cairn_blobstore_reclaimable_bytes", "gauge", "Used space that holds no live data", st,
          n, reclaimable_bytes);
out:
    free(st);
    free(fs);
}

/* Per drive: the blobstore's appends, group commits and compaction (bs_stats). */
static void metrics_blobstore(FILE *f, gw *g, int n)
{
    bs_stats *st = calloc(n > 0 ? (size_t)n : 1, sizeof(*st));
    if (!st)
        return;
    for (int i = 0; i < n; i++) {
        bs_store *bs = ob_store_blobstore(g->data, i);
        if (bs)
            bs_get_stats(bs, &st[i]); /* an offline drive stays all zero */
    }
    DRIVE(f, "cairn_blobstore_appends_total", "counter", "Appends written", st, n, appends);
    DRIVE(f, "cairn_blobstore_append_bytes_total", "counter", "Payload bytes appended", st, n,
          append_bytes);
    DRIVE(f, "cairn_blobstore_sync_requests_total", "counter",
          "Durability requests (bs_sync calls), served by group commits", st, n, sync_calls);
    cm_metric_head(f, "cairn_blobstore_group_commit_writes", "summary",
                   "Writes made durable per group commit (one fdatasync round): _count rounds, "
                   "_sum writes");
    for (int i = 0; i < n; i++) {
        char lb[32];
        snprintf(lb, sizeof(lb), "drive=\"%d\"", i);
        cm_metric_u64(f, "cairn_blobstore_group_commit_writes_sum", lb, st[i].sync_round_writes);
        cm_metric_u64(f, "cairn_blobstore_group_commit_writes_count", lb, st[i].sync_rounds);
    }
    DRIVE(f, "cairn_blobstore_compacted_segments_total", "counter",
          "Segments compacted and removed", st, n, compacted);
    DRIVE(f, "cairn_blobstore_compaction_moved_bytes_total", "counter",
          "Record bytes copied by compaction", st, n, compact_moved);
    DRIVE(f, "cairn_blobstore_compaction_freed_bytes_total", "counter",
          "Segment bytes removed by compaction", st, n, compact_freed);
    DRIVE(f, "cairn_blobstore_punched_bytes_total", "counter", "Bytes given back by punching holes",
          st, n, punched_bytes);
    free(st);
}

/* A cluster node: quorum calls (repl) and the data path's degraded reads and hand-offs. */
static void metrics_cluster(FILE *f, gw *g)
{
    rp_stats r;
    ob_cluster_stats c;
    rp_get_stats(g->rp, &r);
    ob_store_cluster_stats(g->data, &c);
    metric(f, "cairn_quorum_failures_total", "counter",
           "Record calls that could not reach a quorum", r.unavailable);
    metric(f, "cairn_read_repairs_total", "counter",
           "Stale record replicas written back during reads", r.read_repairs);
    metric(f, "cairn_stale_retries_total", "counter",
           "Record calls refused as older than a replica's layout, run again on a newer one",
           r.stale_retries);
    metric(f, "cairn_hints_written_total", "counter",
           "Record writes taken by a stand-in for an unreachable home", r.hints_written);
    metric(f, "cairn_degraded_reads_total", "counter", "Stripes rebuilt from parity on a read",
           c.reads_degraded);
    metric(f, "cairn_hedged_reads_total", "counter", "Extra cells asked because one was slow",
           c.hedges);
    metric(f, "cairn_cell_handoffs_total", "counter", "Cells written to a handoff drive",
           c.handoffs);
    metric(f, "cairn_layout_epoch", "gauge", "Epoch of the layout in use", c.epoch);
}

typedef struct {
    char *text;
    size_t len;
} metrics_state;

static void metrics_state_free(void *p)
{
    metrics_state *st = p;
    free(st->text);
    free(st);
}

/* On a worker: statvfs and the stores' stats may wait on a slow drive or a lock. */
static void metrics_work(gw_req *r)
{
    metrics_state *st = r->op;
    gw *g = r->g;
    FILE *f = open_memstream(&st->text, &st->len);
    if (!f)
        return;
    gw_stats_write(g, f);
    fprintf(f, "# HELP cairn_http_requests_total Requests received, by method\n"
               "# TYPE cairn_http_requests_total counter\n");
    for (size_t i = 0; i <= NMETHODS; i++)
        fprintf(f, "cairn_http_requests_total{method=\"%s\"} %" PRIu64 "\n",
                i < NMETHODS ? methods[i] : "other",
                __atomic_load_n(&g->req_count[i], __ATOMIC_RELAXED));
    int n = ob_store_ndrives(g->data);
    metric(f, "cairn_drives_online", "gauge", "Drives open and usable",
           (uint64_t)ob_store_drives_online(g->data));
    metrics_drive_space(f, g, n);
    metrics_blobstore(f, g, n);
    uint64_t cached = 0, uncached = 0;
    ob_store_read_counts(g->data, &cached, &uncached);
    metric(f, "cairn_loop_reads_cached_total", "counter",
           "Stripe reads of GETs served from the page cache on their event loop", cached);
    metric(f, "cairn_loop_reads_uncached_total", "counter",
           "Stripe reads of GETs handed to a worker: a page not cached, or a cell to rebuild",
           uncached);
    metrics_compression(f, g);
    if (g->scrub)
        metrics_scrub(f, g->scrub);
    if (g->rp)
        metrics_cluster(f, g);
    cm_metrics_write(g->metrics, f);
    if (fclose(f) != 0) {
        free(st->text);
        st->text = NULL;
    }
}

static void metrics_done(gw_req *r)
{
    metrics_state *st = r->op;
    struct evbuffer *b = st->text ? evbuffer_new() : NULL;
    if (!b) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    evbuffer_add(b, st->text, st->len);
    gw_admin_send(r, 200, "text/plain; version=0.0.4", b);
    evbuffer_free(b);
}

static void metrics(gw_req *r)
{
    metrics_state *st = calloc(1, sizeof(*st));
    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op = st;
    r->op_free = metrics_state_free;
    gw_offload(r, metrics_work, metrics_done);
}

/* ---- the scrubber ---- */

cm_err gw_scrub_new(gw *g, const ob_scrub_config *cfg, ob_scrub **out)
{
    ob_scrub_config c;
    ob_scrub_config_defaults(&c);
    if (cfg)
        c = *cfg;
    c.inline_threshold = g->cfg.inline_threshold; /* what the gateway stores inline */
    cm_err e = ob_scrub_new(g->data, g->md, &c, out);
    if (e == CM_OK)
        g->scrub = *out;
    return e;
}

void gw_scrub_free(gw *g, ob_scrub *s)
{
    if (g && g->scrub == s)
        g->scrub = NULL;
    ob_scrub_free(s);
}

/* ---- routing ---- */

int gw_admin_route(gw_req *r)
{
    const char *t = net_req_target(r->net), *m = net_req_method(r->net);
    size_t plen = strcspn(t, "?");
    int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;

    count_request(r);
    if (virtual_hosted(r))
        return 0;
    if (gw_console_route(r)) /* /_console/: the web console (gw_console.c) */
        return 1;
    if (plen == 8 && strncmp(t, "/metrics", 8) == 0 && t[plen] == '\0') {
        if (!get)
            return 0; /* not ours: S3 operations on a bucket named "metrics" */
        r->opk = GW_OP_Metrics;
        if (gw_metrics_allowed(r))
            metrics(r);
        return 1;
    }
    int scrub = plen == 12 && strncmp(t, "/admin/scrub", 12) == 0;
    int status = plen == 13 && strncmp(t, "/admin/status", 13) == 0;
    int repair = plen == 13 && strncmp(t, "/admin/repair", 13) == 0;
    int cells = plen == 19 && strncmp(t, "/admin/object-cells", 19) == 0;
    int orphans = plen == 14 && strncmp(t, "/admin/orphans", 14) == 0;
    int users = plen == 12 && strncmp(t, "/admin/users", 12) == 0;
    int drives = plen == 13 && strncmp(t, "/admin/drives", 13) == 0;
    int buckets = plen == 14 && strncmp(t, "/admin/buckets", 14) == 0;
    int rewrap = plen == 17 && strncmp(t, "/admin/sse/rewrap", 17) == 0;
    if (!scrub && !status && !repair && !cells && !users && !drives && !buckets && !rewrap &&
        !orphans)
        return 0;
    r->opk = GW_OP_Admin;
    gw_s3err e = gw_authenticate(r);
    if (e == GW_OK && r->principal != GW_PRIN_ROOT)
        e = GW_ACCESS_DENIED; /* users and anonymous requests have no admin rights */
    if (e != GW_OK) {
        gw_error(r, e, NULL);
        return 1;
    }
    if (users && (get || post))
        gw_users_admin(r, post);
    else if (scrub && (get || post))
        admin_scrub(r, post);
    else if (status && get)
        admin_status(r);
    else if ((repair && (get || post)) || (cells && get))
        admin_ext(r, cells, post);
    else if (orphans && (get || post))
        admin_ext(r, 2, post); /* the cluster's orphan sweep (cmd/cluster_orphans.c) */
    else if ((drives || buckets) && get)
        gw_admin_lists(r, buckets); /* gw_admin_lists.c */
    else if (rewrap && (get || post))
        gw_rewrap_admin(r, post); /* gw_sse_rewrap.c */
    else
        gw_admin_json(r, 405, "MethodNotAllowed", "use GET, or POST /admin/scrub");
    return 1;
}
