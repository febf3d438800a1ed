/*
 * gw_admin_lists.c - the admin API's drive and bucket tables (docs/admin.md), routed by
 * gw_admin.c after authentication.
 *
 *   GET /admin/drives    per drive: state, the file system's size and free space (statvfs of the
 *                        drive folder), blobs, space used / live / reclaimable, checksum failures
 *                        since the server started, and when the last scrub pass (which reads every
 *                        drive) ended
 *   GET /admin/buckets   per bucket: owner, created, versioning and lifecycle flags, and the
 *                        current objects and their bytes
 *
 * Cost: there are no per-bucket counters, so the counts come from the listing index (one LMDB
 * read transaction per page of AM_PAGE records, record summaries only, no data read). A request
 * reads at most SCAN_BUDGET records over all buckets; past that a bucket's counts are lower bounds
 * ("exact": false) and the buckets after it are not counted ("counted": false). So one call
 * costs at most ~SCAN_BUDGET record decodes whatever the store holds.
 *
 * A cluster node's buckets live in etcd and its objects on many nodes: /admin/buckets answers 501
 * there (`cairn admin bucket list --etcd ...` lists the namespace). /admin/drives shows this
 * node's drives on every server.
 *
 * Threading: both run on a worker (gw_offload): statvfs and LMDB reads may block.
 */
#include "gw_int.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "cm_util.h"

#define SCAN_BUDGET 200000 /* records counted per /admin/buckets request, over all buckets */
#define PAGE 1000

typedef struct {
    int buckets; /* which list */
    int status;
    struct evbuffer *out;
} lists_state;

static void lists_state_free(void *p)
{
    lists_state *st = p;
    if (st && st->out)
        evbuffer_free(st->out);
    free(st);
}

/* s as a JSON string (quotes, backslashes and control characters escaped). */
static void json_str(struct evbuffer *b, const char *s)
{
    evbuffer_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            evbuffer_add_printf(b, "\\%c", c);
        else if (c < 0x20)
            evbuffer_add_printf(b, "\\u%04x", c);
        else
            evbuffer_add(b, s, 1);
    }
    evbuffer_add(b, "\"", 1);
}

static void drives_work(gw_req *r)
{
    lists_state *st = r->op;
    gw *g = r->g;
    int64_t last_scrub = 0;
    int running = 0;
    if (g->scrub) {
        ob_scrub_status s;
        ob_scrub_get_status(g->scrub, &s);
        last_scrub = s.last_end_ms, running = s.running;
    }
    int n = ob_store_ndrives(g->data);
    evbuffer_add_printf(st->out,
                        "{\"now_ms\":%" PRId64 ",\"scrub_running\":%s,\"drives_online\":%d,"
                        "\"drives_total\":%d,\"drives\":[",
                        cm_now_ms(), running ? "true" : "false", ob_store_drives_online(g->data),
                        n);
    for (int i = 0; i < n; i++) {
        ob_drive_stats d;
        struct statvfs vfs;
        const char *dir = ob_store_drive_dir(g->data, i);
        uint64_t total = 0, avail = 0;
        ob_store_drive_stats(g->data, i, &d);
        if (dir && d.usable && statvfs(dir, &vfs) == 0) {
            total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
            avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        }
        evbuffer_add_printf(st->out, "%s{\"drive\":%d,\"dir\":", i ? "," : "", i);
        json_str(st->out, dir ? dir : "");
        evbuffer_add_printf(st->out,
                            ",\"state\":\"%s\",\"online\":%s,\"fs_total_bytes\":%" PRIu64
                            ",\"fs_free_bytes\":%" PRIu64 ",\"blobs\":%" PRIu64
                            ",\"used_bytes\":%" PRIu64 ",\"live_bytes\":%" PRIu64
                            ",\"reclaimable_bytes\":%" PRIu64 ",\"checksum_failures\":%" PRIu64
                            ",\"last_scrub_ms\":%" PRId64 "}",
                            ob_drive_state_name(d.state), d.usable ? "true" : "false", total, avail,
                            d.blobs, d.used_bytes, d.live_bytes, d.reclaimable_bytes,
                            d.corrupt_found, d.usable ? last_scrub : 0);
    }
    evbuffer_add(st->out, "]}\n", 3);
    st->status = 200;
}

/* Count bucket's current objects and bytes, reading at most *budget records (decremented).
 * 1 when the count is exact. */
static int count_bucket(gw *g, const char *bucket, uint64_t *objects, uint64_t *bytes, long *budget)
{
    char *after = NULL;
    int exact = 0;
    *objects = *bytes = 0;
    while (*budget > 0) {
        md_list_query q = {.start_after = after,
                           .max_keys = *budget < PAGE ? (size_t)*budget : PAGE};
        md_list_result res = {0};
        if (md_list_objects(g->md, bucket, &q, &res) != CM_OK)
            break;
        for (size_t i = 0; i < res.n; i++)
            if (!res.entries[i].is_prefix) {
                (*objects)++;
                *bytes += res.entries[i].obj.size;
            }
        *budget -= (long)res.n;
        free(after);
        after = res.truncated && res.next_marker ? strdup(res.next_marker) : NULL;
        exact = !res.truncated;
        md_list_result_release(&res);
        if (exact || !after)
            break;
    }
    free(after);
    return exact;
}

static const char *versioning_name(uint8_t v)
{
    return v == 1 ? "enabled" : v == 2 ? "suspended" : "off";
}

static void buckets_work(gw_req *r)
{
    lists_state *st = r->op;
    md_bucket *bs = NULL;
    size_t n = 0;
    long budget = SCAN_BUDGET;
    if (md_bucket_list(r->g->md, &bs, &n) != CM_OK) {
        evbuffer_add_printf(st->out, "{\"error\":\"InternalError\",\"message\":\"cannot list "
                                     "the buckets\"}\n");
        st->status = 500;
        return;
    }
    evbuffer_add_printf(st->out, "{\"now_ms\":%" PRId64 ",\"scan_budget\":%d,\"buckets\":[",
                        cm_now_ms(), SCAN_BUDGET);
    for (size_t i = 0; i < n; i++) {
        uint64_t objects = 0, bytes = 0;
        char *doc = NULL;
        size_t len = 0;
        int counted = budget > 0;
        int exact = counted && count_bucket(r->g, bs[i].name, &objects, &bytes, &budget);
        int lifecycle = md_lc_config_get(r->g->md, bs[i].name, &doc, &len) == CM_OK;
        free(doc);
        evbuffer_add_printf(st->out, "%s{\"name\":", i ? "," : "");
        json_str(st->out, bs[i].name);
        evbuffer_add_printf(st->out, ",\"owner\":");
        json_str(st->out, bs[i].owner);
        evbuffer_add_printf(st->out,
                            ",\"created_ms\":%" PRId64 ",\"versioning\":\"%s\","
                            "\"lifecycle\":%s,\"objects\":%" PRIu64 ",\"bytes\":%" PRIu64
                            ",\"counted\":%s,\"exact\":%s}",
                            bs[i].created_ms, versioning_name(bs[i].versioning),
                            lifecycle ? "true" : "false", objects, bytes,
                            counted ? "true" : "false", exact ? "true" : "false");
    }
    evbuffer_add(st->out, "]}\n", 3);
    free(bs);
    st->status = 200;
}

static void lists_work(gw_req *r)
{
    lists_state *st = r->op;
    if (st->buckets)
        buckets_work(r);
    else
        drives_work(r);
}

static void lists_done(gw_req *r)
{
    lists_state *st = r->op;
    gw_admin_send(r, st->status, "application/json", st->out);
}

void gw_admin_lists(gw_req *r, int buckets)
{
    if (buckets && gw_meta_remote(r->g)) {
        struct evbuffer *b = evbuffer_new();
        if (!b) {
            net_req_abort(r->net);
            return;
        }
        evbuffer_add_printf(b, "{\"error\":\"NotImplemented\",\"message\":\"a cluster node does "
                               "not count buckets: list them with cairn admin bucket list "
                               "--etcd\"}\n");
        gw_admin_send(r, 501, "application/json", b);
        evbuffer_free(b);
        return;
    }
    lists_state *st = calloc(1, sizeof(*st));
    if (st)
        st->out = evbuffer_new();
    if (!st || !st->out) {
        lists_state_free(st);
        net_req_abort(r->net);
        return;
    }
    st->buckets = buckets; /* set before the worker may run */
    r->op = st;
    r->op_free = lists_state_free;
    gw_offload(r, lists_work, lists_done);
}
