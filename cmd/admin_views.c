/*
 * cmd/admin_views.c - `cairn admin drives|buckets|layout` and the durability estimate of
 * `cairn admin status` (docs/admin.md).
 *
 * Each view reads one admin API document (GET /admin/drives, /admin/buckets, /admin/status),
 * parses it with jansson and prints either a summary line and an aligned table, or with --json
 * one JSON document on stdout whose field names are the API's (stable: docs/admin.md lists them).
 * The durability estimate is computed here, from the status document (admin_fmt.c has the
 * model), so single nodes and cluster nodes share it. `status --cluster` reads the entry node's
 * status for the node list (each live member's registered S3 endpoint) and then every live
 * node's status, up to ASK_PARALLEL at once (a thread per node asked, ASK_TIMEOUT_S each, so a
 * node that takes the connection but never answers costs that once, not once per node; a
 * cluster of many nodes asks them in a sliding window of threads, not a thread for each), into
 * one table of their repair passes, in the list's order.
 */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"
#include "pl.h"

static long long jint(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

void admin_print_json(void *doc)
{
    json_dumpf((json_t *)doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref((json_t *)doc);
}

/* GET path and parse it: 0 and *doc, or an exit code. */
static int get_doc(const admin_opts *o, const char *path, json_t **doc)
{
    http_resp r;
    json_error_t err;
    int rc = admin_get_json(o, path, &r);
    if (rc != 0)
        return rc;
    *doc = json_loads(r.body, 0, &err);
    free(r.body);
    if (!*doc) {
        fprintf(stderr, "cairn admin: GET %s: the answer is not JSON (%s)\n", path, err.text);
        return AM_EXIT_SERVER;
    }
    return 0;
}

int admin_get_doc(const admin_opts *o, const char *path, void **doc)
{
    json_t *d = NULL;
    int rc = get_doc(o, path, &d);
    *doc = d;
    return rc;
}

/* ---- drives ---- */

int admin_drives(const admin_opts *o)
{
    json_t *doc = NULL, *d;
    int rc = get_doc(o, "/admin/drives", &doc);
    if (rc != 0)
        return rc;
    if (o->json) {
        admin_print_json(doc);
        return 0;
    }
    json_t *drives = json_object_get(doc, "drives");
    long long now = jint(doc, "now_ms"), fails = 0, last = 0;
    unsigned long long used = 0, avail = 0;
    size_t i;
    am_table t;
    static const char *const head[] = {"drive",      "state", "used",      "free",
                                       "size",       "blobs", "live data", "checksum failures",
                                       "last scrub", "folder"};
    if (am_table_init(&t, "llrrrrrrll", head) != 0) {
        json_decref(doc);
        return AM_EXIT_FAIL;
    }
    json_array_foreach(drives, i, d)
    {
        char id[16], u[24], f[24], s[24], b[24], l[24], c[24], ago[24];
        snprintf(id, sizeof(id), "%lld", jint(d, "drive"));
        am_bytes((uint64_t)jint(d, "used_bytes"), u, sizeof(u));
        am_bytes((uint64_t)jint(d, "fs_free_bytes"), f, sizeof(f));
        am_bytes((uint64_t)jint(d, "fs_total_bytes"), s, sizeof(s));
        snprintf(b, sizeof(b), "%lld", jint(d, "blobs"));
        am_bytes((uint64_t)jint(d, "live_bytes"), l, sizeof(l));
        snprintf(c, sizeof(c), "%lld", jint(d, "checksum_failures"));
        am_ago(now, jint(d, "last_scrub_ms"), ago, sizeof(ago));
        const char *row[] = {id, jstr(d, "state"), u, f, s, b, l, c, ago, jstr(d, "dir")};
        am_table_row(&t, row);
        used += (unsigned long long)jint(d, "used_bytes");
        avail += (unsigned long long)jint(d, "fs_free_bytes");
        fails += jint(d, "checksum_failures");
        last = jint(d, "last_scrub_ms") > last ? jint(d, "last_scrub_ms") : last;
    }
    char u[24], f[24], ago[24];
    am_bytes(used, u, sizeof(u));
    am_bytes(avail, f, sizeof(f));
    am_ago(now, last, ago, sizeof(ago));
    printf("%lld drives, %lld online; %s used, %s free; %lld checksum failures; last scrub %s%s\n",
           jint(doc, "drives_total"), jint(doc, "drives_online"), u, f, fails, ago,
           json_is_true(json_object_get(doc, "scrub_running")) ? " (a pass is running)" : "");
    am_table_print(&t, stdout);
    am_table_release(&t);
    json_decref(doc);
    return 0;
}

/* ---- buckets ---- */

int admin_buckets(const admin_opts *o)
{
    json_t *doc = NULL, *b;
    int rc = get_doc(o, "/admin/buckets", &doc);
    if (rc != 0)
        return rc;
    if (o->json) {
        admin_print_json(doc);
        return 0;
    }
    json_t *list = json_object_get(doc, "buckets");
    long long now = jint(doc, "now_ms");
    unsigned long long objects = 0, bytes = 0;
    int inexact = 0;
    size_t i;
    am_table t;
    static const char *const head[] = {"bucket",     "owner",     "objects", "size",
                                       "versioning", "lifecycle", "created"};
    if (am_table_init(&t, "llrrlll", head) != 0) {
        json_decref(doc);
        return AM_EXIT_FAIL;
    }
    json_array_foreach(list, i, b)
    {
        int exact = json_is_true(json_object_get(b, "exact"));
        char n[32], s[32], ago[24];
        snprintf(n, sizeof(n), "%s%lld", exact ? "" : ">=", jint(b, "objects"));
        am_bytes((uint64_t)jint(b, "bytes"), s, sizeof(s));
        if (!exact) {
            size_t l = strlen(s);
            memmove(s + 2, s, l + 1);
            memcpy(s, ">=", 2);
        }
        am_ago(now, jint(b, "created_ms"), ago, sizeof(ago));
        const char *row[] = {jstr(b, "name"),
                             jstr(b, "owner"),
                             n,
                             s,
                             jstr(b, "versioning"),
                             json_is_true(json_object_get(b, "lifecycle")) ? "yes" : "no",
                             ago};
        am_table_row(&t, row);
        objects += (unsigned long long)jint(b, "objects");
        bytes += (unsigned long long)jint(b, "bytes");
        inexact |= !exact;
    }
    char s[24];
    am_bytes(bytes, s, sizeof(s));
    printf("%zu buckets, %s%llu objects, %s%s%s\n", json_array_size(list), inexact ? ">=" : "",
           objects, inexact ? ">=" : "", s,
           inexact ? " (counting stopped at the scan budget; see docs/admin.md)" : "");
    if (json_array_size(list) > 0)
        am_table_print(&t, stdout);
    am_table_release(&t);
    json_decref(doc);
    return 0;
}

/* ---- durability ---- */

/* The model's input from a status document (see the file-top note of admin_fmt.c). */
static void durability_input(json_t *st, am_dur_in *in)
{
    pl_dur_input def;
    memset(in, 0, sizeof(*in));
    pl_dur_defaults(&def); /* placement's AFR, as the repair block's estimate (docs/admin.md) */
    in->afr = def.afr;
    if (sscanf(jstr(st, "erasure"), "%d+%d", &in->k, &in->m) != 2)
        in->k = in->m = 0;
    json_t *drives = json_object_get(st, "drives"), *d, *n;
    size_t i;
    double sum = 0, max = 0;
    json_array_foreach(drives, i, d)
    {
        double l = (double)jint(d, "live_bytes");
        sum += l;
        max = l > max ? l : max;
    }
    in->drives = (int)json_array_size(drives);
    in->az_drives = in->drives;
    in->drive_bytes = max;
    /* a single node rebuilds a lost drive with a scrub pass, which reads every drive: the
     * measured pass speed times the lost drive's share of the data */
    json_t *s = json_object_get(st, "scrub"), *pass = json_object_get(s, "pass");
    double secs = (double)(jint(s, "last_end_ms") - jint(s, "last_start_ms")) / 1e3;
    double pass_bytes = (double)jint(pass, "bytes");
    double scrub_bps = 0;
    if (secs > 0 && pass_bytes > 0 && !json_is_true(json_object_get(s, "running")))
        scrub_bps = pass_bytes / secs, in->measured = 1;
    else
        scrub_bps = json_number_value(json_object_get(s, "rate_mb")) * 1e6;
    in->repair_bps = sum > 0 && max > 0 ? scrub_bps * max / sum : scrub_bps;
    /* a cluster node: the layout's nodes and AZs, the cluster's drives, the repair's speed */
    json_t *c = json_object_get(st, "cluster"), *nodes = json_object_get(c, "nodes");
    if (json_array_size(nodes) == 0)
        return;
    const char *azs[64];
    int az_drives[64] = {0}, naz = 0, ndrives = 0, nnodes = 0;
    json_array_foreach(nodes, i, n)
    {
        const char *az = jstr(n, "az");
        if (!json_is_true(json_object_get(n, "in_layout")) ||
            strcmp(jstr(n, "layout_state"), "removed") == 0)
            continue;
        int a = am_name_index(azs, &naz, 64, az);
        if (a >= 0)
            az_drives[a] += (int)jint(n, "drives");
        ndrives += (int)jint(n, "drives");
        nnodes++;
    }
    if (nnodes == 0)
        return;
    in->nodes = nnodes, in->azs = naz, in->drives = ndrives, in->az_drives = 0;
    for (int a = 0; a < naz; a++)
        in->az_drives = az_drives[a] > in->az_drives ? az_drives[a] : in->az_drives;
    json_t *dur = json_object_get(json_object_get(st, "repair"), "durability");
    if (jint(dur, "k") > 0) /* a cluster writes new bodies with the layout's profile */
        in->k = (int)jint(dur, "k"), in->m = (int)jint(dur, "m");
    if (json_is_true(json_object_get(dur, "known"))) {
        in->repair_bps = json_number_value(json_object_get(dur, "cluster_mbps")) * 1e6;
        in->drive_bytes = json_number_value(json_object_get(dur, "drive_bytes"));
        in->measured = json_is_true(json_object_get(dur, "measured"));
    } else {
        in->repair_bps = 0;
    }
}

static json_t *tol_json(int v)
{
    return v >= 0 ? json_integer(v) : json_null();
}

void admin_status_durability(const char *status_body, void *json_doc)
{
    json_t *st = json_doc ? (json_t *)json_doc : json_loads(status_body, 0, NULL);
    am_dur_in in;
    am_dur_out d;
    char text[768];
    durability_input(st, &in);
    am_durability(&in, &d);
    am_durability_text(&in, &d, text, sizeof(text));
    if (!json_doc) {
        printf("durability: %s\n", text);
        json_decref(st);
        return;
    }
    json_t *j =
        json_pack("{s:i,s:i,s:i,s:i,s:i,s:o,s:o,s:o,s:b,s:f,s:b,s:f,s:f}", "k", in.k, "m", in.m,
                  "drives", in.drives, "nodes", in.nodes, "azs", in.azs, "tolerated_drive_losses",
                  tol_json(d.tol_drives), "tolerated_node_losses", tol_json(d.tol_nodes),
                  "tolerated_az_losses", tol_json(d.tol_azs), "known", d.known,
                  "repair_bytes_per_s", in.repair_bps, "repair_rate_measured", in.measured,
                  "drive_bytes", in.drive_bytes, "afr_assumed", in.afr);
    if (j && d.known) {
        json_object_set_new(j, "rebuild_s", json_real(d.rebuild_s));
        json_object_set_new(j, "annual_loss_probability", json_real(d.p_loss_year));
        json_object_set_new(j, "nines", json_real(isfinite(d.nines) ? d.nines : 99.0));
    }
    if (j) {
        json_object_set_new(j, "text", json_string(text));
        json_object_set_new(st, "durability", j);
    }
}

/* ---- layout ---- */

int admin_layout_view(const admin_opts *o)
{
    json_t *st = NULL, *n;
    int rc = get_doc(o, "/admin/status", &st);
    if (rc != 0)
        return rc;
    am_dur_in in;
    am_dur_out d;
    durability_input(st, &in);
    am_durability(&in, &d);
    json_t *c = json_object_get(st, "cluster"), *nodes = json_object_get(c, "nodes");
    char profile[24]; /* on a cluster node the layout's, not the local configuration's */
    snprintf(profile, sizeof(profile), "%d+%d", in.k, in.m);
    if (o->json) {
        json_t *out = json_pack("{s:b,s:s,s:i,s:i,s:I,s:o,s:o,s:o,s:o}", "clustered", c != NULL,
                                "erasure", profile, "k", in.k, "m", in.m, "layout_epoch",
                                (json_int_t)jint(c, "layout_epoch"), "tolerated_drive_losses",
                                tol_json(d.tol_drives), "tolerated_node_losses",
                                tol_json(d.tol_nodes), "tolerated_az_losses", tol_json(d.tol_azs),
                                "nodes", nodes ? json_incref(nodes) : json_array());
        json_object_set_new(out, "drives", json_integer(in.drives));
        json_object_set_new(out, "azs", json_integer(in.azs));
        json_decref(st);
        admin_print_json(out);
        return 0;
    }
    if (!c) {
        printf("single node, no cluster layout: erasure %s over %d drives; tolerates %d drive "
               "losses\n",
               jstr(st, "erasure"), in.drives, d.tol_drives);
        json_decref(st);
        return 0;
    }
    char text[768];
    am_durability_text(&in, &d, text, sizeof(text));
    printf("layout epoch %lld: %s\n", jint(c, "layout_epoch"), text);
    am_table t;
    static const char *const head[] = {"node",   "az",   "address",  "state",
                                       "drives", "live", "last seen"};
    size_t i;
    if (am_table_init(&t, "lllllrl", head) == 0) {
        json_array_foreach(nodes, i, n)
        {
            char dr[16], ago[24];
            snprintf(dr, sizeof(dr), "%lld", jint(n, "drives"));
            am_ago(jint(c, "now_ms"), jint(n, "last_seen_ms"), ago, sizeof(ago));
            const char *row[] = {jstr(n, "id"),
                                 jstr(n, "az"),
                                 jstr(n, "addr"),
                                 json_is_true(json_object_get(n, "in_layout"))
                                     ? jstr(n, "layout_state")
                                     : "not in layout",
                                 dr,
                                 json_is_true(json_object_get(n, "live")) ? "up" : "DOWN",
                                 ago};
            am_table_row(&t, row);
        }
        am_table_print(&t, stdout);
        am_table_release(&t);
    }
    json_decref(st);
    return 0;
}

/* ---- the cluster's repair, node by node (status --cluster) ---- */

/* One node's row of status --cluster from its status document st (NULL: it did not answer). */
static void cluster_row(am_table *t, json_t *node, json_t *st, const char *why)
{
    char recs[48], deg[16], heal[16], fail[16], mbps[24], eta[32], full[32], ended[32];
    json_t *r = json_object_get(st, "repair");
    const char *state = !json_is_true(json_object_get(node, "live")) ? "DOWN" : why;
    if (!r) {
        const char *row[] = {
            jstr(node, "id"), jstr(node, "az"), state, "-", "-", "-", "-", "-", "-", "-", "-", "-"};
        am_table_row(t, row);
        return;
    }
    long long now = jint(json_object_get(st, "cluster"), "now_ms");
    snprintf(recs, sizeof(recs), "%lld/%lld", jint(r, "scanned"), jint(r, "records"));
    snprintf(deg, sizeof(deg), "%lld", jint(r, "degraded"));
    snprintf(heal, sizeof(heal), "%lld", jint(r, "healed"));
    snprintf(fail, sizeof(fail), "%lld", jint(r, "failed"));
    snprintf(mbps, sizeof(mbps), "%.1f", json_number_value(json_object_get(r, "mbps")));
    am_duration(json_number_value(json_object_get(r, "eta_s")), eta, sizeof(eta));
    am_duration(json_number_value(json_object_get(r, "full_redundancy_s")), full, sizeof(full));
    am_ago(now, jint(r, "end_ms"), ended, sizeof(ended));
    int running = json_is_true(json_object_get(r, "running"));
    const char *row[] = {jstr(node, "id"),
                         jstr(node, "az"),
                         "up",
                         running ? "RUNNING" : "idle",
                         ended,
                         recs,
                         deg,
                         heal,
                         fail,
                         mbps,
                         eta,
                         full};
    am_table_row(t, row);
}

/* status --cluster asks every other node within this deadline (connect to answer), at most
 * ASK_PARALLEL of them at once. */
#define ASK_TIMEOUT_S 5
#define ASK_PARALLEL 16

/* What status --cluster adds up over the nodes. */
typedef struct {
    long long degraded, healed, failed;
    int asked, answered, running;
    double full_s; /* the longest time to full redundancy; -1 once a node's is unknown */
} cluster_sum;

/* One node's question (a member of the entry node's list): asked at its registered S3 endpoint
 * when it is live, on a thread of its own. st: its document (NULL when not asked or no answer;
 * the error went to stderr); why: what its row says when there is none. */
typedef struct {
    admin_opts o;
    json_t *node, *st;
    const char *why;
    int asked;
    pthread_t th;
    int started;
} node_ask;

static void *node_status(void *arg)
{
    node_ask *a = arg;
    if (get_doc(&a->o, "/admin/status", &a->st) != 0)
        a->st = NULL;
    return NULL;
}

/* Start the question of a->node, or settle it when the node is not asked. */
static void node_ask_start(const admin_opts *o, node_ask *a)
{
    a->o = *o;
    a->o.timeout_s = ASK_TIMEOUT_S;
    a->why = "no S3 endpoint";
    if (!json_is_true(json_object_get(a->node, "live")) || !*jstr(a->node, "s3"))
        return;
    a->asked = 1;
    a->why = "NO ANSWER";
    if (admin_parse_endpoint(&a->o, jstr(a->node, "s3")) != 0)
        return;
    a->started = pthread_create(&a->th, NULL, node_status, a) == 0;
    if (!a->started)
        node_status(a); /* no thread: asked here, in turn */
}

/* Count a node's answer into sum. */
static void cluster_add(cluster_sum *sum, const node_ask *a)
{
    json_t *r = json_object_get(a->st, "repair");
    sum->asked += a->asked;
    sum->answered += a->st != NULL;
    if (r) {
        sum->degraded += jint(r, "degraded"), sum->healed += jint(r, "healed");
        sum->failed += jint(r, "failed");
        sum->running += json_is_true(json_object_get(r, "running"));
        double f = json_number_value(json_object_get(r, "full_redundancy_s"));
        sum->full_s = f < 0 || sum->full_s < 0 ? -1 : f > sum->full_s ? f : sum->full_s;
    }
}

int admin_status_cluster(const admin_opts *o)
{
    json_t *doc = NULL, *node, *out = NULL;
    int rc = get_doc(o, "/admin/status", &doc);
    if (rc != 0)
        return rc;
    json_t *nodes = json_object_get(json_object_get(doc, "cluster"), "nodes");
    if (json_array_size(nodes) == 0) {
        fprintf(stderr, "cairn admin: %s:%s is not a cluster node (or has no layout yet)\n",
                o->host, o->port);
        json_decref(doc);
        return AM_EXIT_FAIL;
    }
    static const char *const head[] = {
        "node",   "az",     "state", "repair", "last pass ended",   "records", "degraded",
        "healed", "failed", "MB/s",  "ETA",    "full redundancy in"};
    am_table t;
    if (am_table_init(&t, "lllllrrrrrrr", head) != 0 || !(out = json_array())) {
        json_decref(doc);
        return AM_EXIT_FAIL;
    }
    cluster_sum sum = {0};
    size_t i, n = json_array_size(nodes);
    node_ask *ask = calloc(n, sizeof(*ask));
    if (!ask) {
        json_decref(out);
        am_table_release(&t);
        json_decref(doc);
        return AM_EXIT_FAIL;
    }
    /* jansson seeds its hash function with the first object (the entry node's document, above),
     * so the threads' parses share a seed set before they start. The nodes are asked in a window
     * of ASK_PARALLEL: silent ones cost ASK_TIMEOUT_S per window, not each */
    size_t next = 0;
    for (; next < n && next < ASK_PARALLEL; next++) {
        ask[next].node = json_array_get(nodes, next);
        node_ask_start(o, &ask[next]);
    }
    for (i = 0; i < n; i++) {
        if (ask[i].started)
            pthread_join(ask[i].th, NULL);
        if (next < n) { /* the window moves on by one */
            ask[next].node = json_array_get(nodes, next);
            node_ask_start(o, &ask[next]);
            next++;
        }
        json_t *st = ask[i].st, *r = json_object_get(st, "repair");
        node = ask[i].node;
        cluster_add(&sum, &ask[i]);
        if (o->json)
            json_array_append_new(out, json_pack("{s:s,s:s,s:b,s:b,s:o}", "id", jstr(node, "id"),
                                                 "az", jstr(node, "az"), "live",
                                                 json_is_true(json_object_get(node, "live")),
                                                 "answered", st != NULL, "repair",
                                                 r ? json_incref(r) : json_null()));
        else
            cluster_row(&t, node, st, ask[i].why);
        json_decref(st);
    }
    free(ask);
    char full[32];
    am_duration(sum.full_s, full, sizeof(full));
    if (o->json) {
        admin_print_json(json_pack("{s:o,s:i,s:i,s:I,s:I,s:I,s:i,s:f}", "nodes", out, "asked",
                                   sum.asked, "answered", sum.answered, "degraded",
                                   (json_int_t)sum.degraded, "healed", (json_int_t)sum.healed,
                                   "failed", (json_int_t)sum.failed, "running", sum.running,
                                   "full_redundancy_s", sum.full_s));
    } else {
        json_decref(out);
        am_table_print(&t, stdout);
        printf("cluster: %d of %zu nodes answered (%d asked: the live ones); the last passes found "
               "%lld degraded bodies, healed %lld, failed %lld; %d running; full redundancy in "
               "%s\n",
               sum.answered, json_array_size(nodes), sum.asked, sum.degraded, sum.healed,
               sum.failed, sum.running, full);
    }
    am_table_release(&t);
    json_decref(doc);
    return sum.failed > 0 ? AM_EXIT_DAMAGE : sum.answered < sum.asked ? AM_EXIT_UNREACHABLE : 0;
}
