/*
 * cmd/admin_bucket.c - `cairn admin bucket list|consistency`: the cluster's bucket namespace in
 * etcd (docs/coordination.md, "Buckets"; docs/replication.md, "Consistency modes: how a bucket
 * gets its mode").
 *
 *   cairn admin bucket list [ETCD]                                  name, created, consistency
 *   cairn admin bucket consistency NAME [strong|available] [ETCD]   print it, or change it
 *
 * Both read the bucket document co_key(cluster, "buckets"); a change is co_buckets_set_consistency
 * (compare-and-set on the revision read, retried on conflict, never written over a document that
 * does not parse), so it cannot lose a bucket created or deleted by a node meanwhile. Every node
 * applies it when its watch delivers the new version (milliseconds), and from then on answers the
 * new mode from memory (cmd_cluster_bucket_consistency, HeadBucket's x-cairn-consistency). Exit
 * status: 0 done, 1 when it failed (no such bucket, etcd unreachable, a broken document), 2 on bad
 * arguments (an unknown mode among them).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "co_buckets.h"
#include "rp.h"

#define ME "cairn admin bucket"

typedef struct {
    const char *verb, *name, *mode;
    rp_consistency want; /* mode parsed */
    cmd_etcd_opts etcd;
    co_client *client;
    char key[256];
    co_bucket *b; /* the document as read: sorted, n records, at revision rev */
    size_t n;
    int64_t rev;
} bopts;

static void usage(FILE *f)
{
    fprintf(
        f, "usage: cairn admin bucket list [ETCD]\n"
           "       cairn admin bucket consistency NAME [strong|available] [ETCD]\n"
           "ETCD: --etcd URL[,URL...] (default $CAIRN_ETCD_ENDPOINTS, else http://127.0.0.1:2379)\n"
           "      --cluster ID (default $CAIRN_CLUSTER, else \"default\") --timeout MS\n"
           "list prints every bucket of the cluster with its creation time and consistency.\n"
           "consistency prints a bucket's mode, or sets it: strong (the default: strict quorum,\n"
           "503 when a partition lost it) or available (sloppy quorum, writable during failures,\n"
           "reads may be stale until repair). Exit 1 when it failed, 2 on bad arguments.\n");
}

/* 0 parsed, 1 help printed, -1 bad arguments (said why). */
static int parse_args(int argc, char **argv, bopts *o)
{
    o->verb = argc > 1 ? argv[1] : "";
    cmd_etcd_opts_init(&o->etcd);
    if (!strcmp(o->verb, "--help") || !strcmp(o->verb, "-h")) {
        usage(stdout);
        return 1;
    }
    if (strcmp(o->verb, "list") != 0 && strcmp(o->verb, "consistency") != 0) {
        fprintf(stderr, ME ": unknown command '%s'\n", o->verb);
        usage(stderr);
        return -1;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        }
        if (a[0] != '-' && !strcmp(o->verb, "consistency") && (!o->name || !o->mode)) {
            *(o->name ? &o->mode : &o->name) = a;
            continue;
        }
        if (!v || a[0] != '-') {
            fprintf(stderr, ME " %s: unknown or incomplete argument '%s'\n", o->verb, a);
            return -1;
        }
        if (!cmd_etcd_opt(&o->etcd, a, v)) {
            fprintf(stderr, ME " %s: unknown or bad argument '%s %s'\n", o->verb, a, v);
            return -1;
        }
        i++;
    }
    if (!strcmp(o->verb, "consistency") && !o->name) {
        fprintf(stderr, ME " consistency: name the bucket: " ME " consistency NAME [MODE]\n");
        return -1;
    }
    if (o->mode && rp_consistency_parse(o->mode, &o->want) != CM_OK) {
        fprintf(stderr, ME " consistency: unknown mode '%s': strong or available\n", o->mode);
        return -1;
    }
    return 0;
}

/* Say why talking to etcd failed; returns 1 (the exit status). */
static int etcd_failed(const bopts *o, const char *doing, cm_err e)
{
    if (e == CM_ERR_CORRUPT)
        fprintf(stderr,
                ME ": the bucket document %s in etcd does not parse: nothing was changed "
                   "(nodes keep their last good version)\n",
                o->key);
    else if (e == CM_ERR_CONFLICT)
        fprintf(stderr, ME ": %s: the bucket document kept changing (%d attempts): run it again\n",
                doing, CO_BUCKETS_RETRIES);
    else
        fprintf(stderr, ME ": %s: etcd did not answer at %s (%s)\n", doing, o->etcd.etcd,
                cm_err_str(e));
    return 1;
}

/* The document into o->b, o->n, o->rev: 0, or 1 (said why). */
static int read_doc(bopts *o)
{
    cm_err e = co_buckets_read(o->client, o->key, &o->b, &o->n, &o->rev);
    return e == CM_OK ? 0 : etcd_failed(o, "reading the buckets", e);
}

static int do_list(bopts *o)
{
    if (read_doc(o) != 0)
        return 1;
    const co_bucket *b = o->b;
    size_t n = o->n;
    int width = 4; /* "name" */
    for (size_t i = 0; i < n; i++)
        width = (int)strlen(b[i].name) > width ? (int)strlen(b[i].name) : width;
    printf("cluster %s: %zu bucket%s (etcd revision %" PRId64 ")\n", o->etcd.cluster, n,
           n == 1 ? "" : "s", o->rev);
    if (n)
        printf("%-*s  %-20s  %s\n", width, "name", "created (UTC)", "consistency");
    for (size_t i = 0; i < n; i++) {
        char when[32] = "?";
        time_t t = (time_t)(b[i].created_ms / 1000);
        struct tm tm;
        if (gmtime_r(&t, &tm))
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%-*s  %-20s  %s\n", width, b[i].name, when,
               rp_consistency_name((rp_consistency)b[i].consistency));
    }
    return 0;
}

static int no_bucket(const bopts *o)
{
    fprintf(stderr, ME ": no bucket '%s' in cluster %s (" ME " list shows them)\n", o->name,
            o->etcd.cluster);
    return 1;
}

static int do_consistency(bopts *o)
{
    rp_consistency want = o->want;
    if (!o->mode) { /* print it */
        if (read_doc(o) != 0)
            return 1;
        const co_bucket *f = co_buckets_find(o->b, o->n, o->name);
        if (!f)
            return no_bucket(o);
        printf("%s\n", rp_consistency_name((rp_consistency)f->consistency));
        return 0;
    }
    uint8_t was = 0;
    int64_t rev = 0;
    cm_err e = co_buckets_set_consistency(o->client, o->key, o->name, (uint8_t)want, &was, &rev);
    if (e == CM_ERR_NOTFOUND)
        return no_bucket(o);
    if (e != CM_OK)
        return etcd_failed(o, "changing the consistency", e);
    if (was == (uint8_t)want)
        printf("bucket %s: already %s (nothing changed)\n", o->name, rp_consistency_name(want));
    else
        printf("bucket %s: consistency %s -> %s (etcd revision %" PRId64
               "); nodes apply it as their watch delivers it\n",
               o->name, rp_consistency_name((rp_consistency)was), rp_consistency_name(want), rev);
    return 0;
}

int cmd_admin_bucket(int argc, char **argv)
{
    bopts o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (co_key(o.key, sizeof(o.key), o.etcd.cluster, CO_KIND_BUCKETS, NULL) != CM_OK) {
        fprintf(stderr, ME ": bad --cluster '%s': [A-Za-z0-9._-]+\n", o.etcd.cluster);
        return 2;
    }
    if ((rc = cmd_etcd_connect(&o.etcd, ME, &o.client)) != 0)
        return rc;
    rc = !strcmp(o.verb, "list") ? do_list(&o) : do_consistency(&o);
    co_client_free(o.client);
    co_buckets_array_free(o.b, o.n);
    return rc;
}
