/*
 * cmd/admin_orphans.c - `cairn admin orphans [--delete] [--grace S] [--json]`: the cluster-wide
 * orphan sweep, run by the node the endpoint names over every node of the layout
 * (cmd/cluster_orphans.c; docs/storage.md, "Orphans on a cluster").
 *
 * POST /admin/orphans starts it (409 when one runs on that node: then this follows that one),
 * then GET /admin/orphans is polled until it ends; progress (its phase, cells judged so far) goes
 * to stderr every 2 s. Printed: one row per node and drive (cells listed, named, young unnamed,
 * orphans and their bytes, deleted), a total, and the reason when the sweep refused or stopped.
 * Exit 0 when it completed (a dry run that found orphans too), 3 (AM_EXIT_DAMAGE) when it
 * refused or stopped early (a node down, a handoff on, a node that did not answer).
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin_int.h"

#define PATH "/admin/orphans"
#define POLL_MS 250
#define PROGRESS_MS 2000

static uint64_t jint(json_t *o, const char *k)
{
    json_int_t v = json_integer_value(json_object_get(o, k));
    return v > 0 ? (uint64_t)v : 0;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_table(json_t *sw)
{
    uint64_t t[6] = {0};
    const char *keys[6] = {"cells", "named", "young", "orphans", "orphan_bytes", "deleted"};
    printf("%-16s %5s %10s %10s %10s %9s %14s %9s\n", "node", "drive", "cells", "named", "young",
           "orphans", "orphan bytes", "deleted");
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(sw, "rows"), i, row)
    {
        uint64_t v[6];
        for (int k = 0; k < 6; k++)
            t[k] += v[k] = jint(row, keys[k]);
        printf("%-16s %5" PRIu64 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %9" PRIu64
               " %14" PRIu64 " %9" PRIu64 "\n",
               jstr(row, "node"), jint(row, "drive"), v[0], v[1], v[2], v[3], v[4], v[5]);
        if (json_is_true(json_object_get(row, "offline")))
            printf("%-16s %5" PRIu64 " offline on its node: not swept\n", jstr(row, "node"),
                   jint(row, "drive"));
    }
    printf("%-16s %5s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %9" PRIu64 " %14" PRIu64
           " %9" PRIu64 "\n",
           "total", "", t[0], t[1], t[2], t[3], t[4], t[5]);
    printf("orphans: %s, grace %" PRIu64 " s (young = unnamed but written within it: kept)\n",
           json_is_true(json_object_get(sw, "delete")) ? "deleted" : "dry run, nothing deleted",
           jint(sw, "grace_s"));
}

/* Cells judged so far, for the progress line. */
static uint64_t judged(json_t *sw)
{
    uint64_t n = 0;
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(sw, "rows"), i, row) n += jint(row, "cells");
    return n;
}

int admin_orphans(const admin_opts *o, int del, long long grace)
{
    char path[128];
    int n = snprintf(path, sizeof(path), PATH "?delete=%d", del ? 1 : 0);
    if (grace >= 0)
        snprintf(path + n, sizeof(path) - (size_t)n, "&grace=%lld", grace);
    http_resp r;
    int rc = admin_request(o, "POST", path, &r);
    if (rc != 0)
        return rc;
    if (r.status != 202 && r.status != 409) {
        rc = admin_http_failure("POST " PATH, &r);
        free(r.body);
        return rc;
    }
    if (r.status == 409)
        fprintf(stderr, "an orphan sweep already runs on that node: following it\n");
    free(r.body);
    json_t *doc = NULL, *sw = NULL;
    int64_t shown = mono_ms();
    for (;;) {
        json_decref(doc);
        doc = NULL;
        if ((rc = admin_get_doc(o, PATH, (void **)&doc)) != 0)
            return rc;
        sw = json_object_get(doc, "orphans");
        if (!json_is_true(json_object_get(sw, "running")))
            break;
        if (mono_ms() - shown >= PROGRESS_MS) {
            shown = mono_ms();
            fprintf(stderr, "orphans: %s (%" PRIu64 " cells judged)\n", jstr(sw, "phase"),
                    judged(sw));
        }
        usleep(POLL_MS * 1000);
    }
    const char *err = jstr(sw, "error");
    int failed = *err != 0;
    if (o->json) {
        admin_print_json(doc); /* steals it */
        doc = NULL;
    } else {
        print_table(sw);
        if (failed)
            printf("orphans: the sweep did not complete: %s\n", err);
    }
    json_decref(doc);
    return failed ? AM_EXIT_DAMAGE : AM_EXIT_OK;
}
