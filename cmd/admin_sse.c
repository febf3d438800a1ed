/*
 * cmd/admin_sse.c - `cairn admin sse status` and `cairn admin sse rewrap [--wait]`: master-key
 * rotation from the command line (docs/encryption.md, "Rotating the master key").
 *
 * Both read GET /admin/sse/rewrap (rewrap first POSTs it, which starts or resumes the pass: 202,
 * or 409 when one runs, which --wait then follows). Printed: the primary key id, the ids loaded,
 * those that may still wrap data keys ("in use") and those of them the server lacks ("missing"),
 * and the pass: running, its phase and counts, or its error. --wait polls until the pass stops
 * and exits 3 (AM_EXIT_DAMAGE) when it stopped on an error, 0 when every data key is under the
 * primary; --json prints the API's document as it is. On a cluster node the pass and the status
 * are that node's (docs/encryption.md, "On a cluster": run it on every node).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin_int.h"

#define PATH "/admin/sse/rewrap"
#define POLL_MS 250

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void print_ids(json_t *doc, const char *k, const char *label)
{
    json_t *a = json_object_get(doc, k);
    size_t i;
    json_t *v;
    printf("%-9s", label);
    if (json_array_size(a) == 0)
        printf(" (none)");
    json_array_foreach(a, i, v) printf(" %s", json_string_value(v));
    printf("\n");
}

static void print_status(json_t *doc)
{
    int running = json_is_true(json_object_get(doc, "running"));
    int failed = json_is_true(json_object_get(doc, "failed"));
    printf("primary   %s\n", jstr(doc, "primary"));
    print_ids(doc, "loaded", "loaded");
    print_ids(doc, "in_use", "in use");
    print_ids(doc, "missing", "missing");
    printf("rewrap    %s, phase %s: %lld records, %lld wrapped keys, %lld re-wrapped\n",
           running                                                       ? "running"
           : failed                                                      ? "stopped on an error"
           : json_integer_value(json_object_get(doc, "finished_ms")) > 0 ? "finished"
                                                                         : "never run",
           jstr(doc, "phase"), json_integer_value(json_object_get(doc, "records")),
           json_integer_value(json_object_get(doc, "keys")),
           json_integer_value(json_object_get(doc, "rewrapped")));
    if (failed)
        printf("error     %s\n", jstr(doc, "error"));
    if (!running && !failed && json_array_size(json_object_get(doc, "in_use")) == 1 &&
        json_object_get(doc, "loaded") && json_array_size(json_object_get(doc, "loaded")) > 1)
        printf(json_is_true(json_object_get(doc, "cluster"))
                   ? "every data key this node holds is under the primary: the other loaded keys "
                     "may be removed once every node of the cluster says so\n"
                   : "every data key is under the primary: the other loaded keys may be removed\n");
}

static int start(const admin_opts *o)
{
    http_resp r;
    int rc = admin_request(o, "POST", PATH, &r);
    if (rc != 0)
        return rc;
    if (r.status == 409 && o->wait) {
        if (!o->json)
            printf("a rewrap pass is already running; following it\n");
    } else if (r.status != 202) {
        rc = admin_http_failure("POST " PATH, &r);
    } else if (!o->json) {
        printf("rewrap pass started\n");
    }
    free(r.body);
    fflush(stdout);
    return rc;
}

int admin_sse(const admin_opts *o, int rewrap)
{
    json_t *doc = NULL;
    int rc = rewrap ? start(o) : 0;
    int tty = isatty(2);
    for (; rc == 0;) {
        if ((rc = admin_get_doc(o, PATH, (void **)&doc)) != 0)
            break;
        int running = json_is_true(json_object_get(doc, "running"));
        if (!rewrap || !o->wait || !running)
            break;
        fprintf(stderr, "%srewrap: phase %s, %lld records, %lld re-wrapped%s", tty ? "\r" : "",
                jstr(doc, "phase"), json_integer_value(json_object_get(doc, "records")),
                json_integer_value(json_object_get(doc, "rewrapped")), tty ? "\033[K" : "\n");
        json_decref(doc);
        doc = NULL;
        struct timespec ts = {0, POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (rc != 0)
        return rc;
    if (tty && rewrap && o->wait)
        fputc('\n', stderr);
    int failed = json_is_true(json_object_get(doc, "failed"));
    if (o->json)
        admin_print_json(doc); /* takes the reference */
    else {
        print_status(doc);
        json_decref(doc);
    }
    return rewrap && o->wait && failed ? AM_EXIT_DAMAGE : 0;
}
