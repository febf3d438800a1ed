/*
 * node_rpc.c - `cairn node-rpc serve|check`: run a node's RPC service alone, and probe one.
 *
 *   cairn node-rpc serve --node-id ID [--listen HOST:PORT] [--threads N] DRIVE_DIR...
 *       Opens each directory as a drive (a blobstore) and serves the node RPC (docs/rpc.md) on
 *       HOST:PORT (default 127.0.0.1:9100) until SIGINT/SIGTERM; prints "listening on HOST:PORT".
 *   cairn node-rpc check [--node-id ID] [--write DRIVE [--size BYTES] [--keep]] PEER_ID@HOST:PORT
 *       Calls info on the peer and prints its drives; with --write, appends a random chunk of
 *       BYTES (default 1 MiB) to DRIVE, reads it back and compares, stats and deletes it, with
 *       the time of each step. --keep leaves the chunk there and prints "kept <id>": a chunk no
 *       record names, what the orphan sweep reclaims (tests/integration/test_cluster_orphans.sh).
 *       Exit 0 when everything answered as it should, 1 otherwise.
 *
 * Both take the cluster secret from CAIRN_RPC_SECRET (never from the command line, where other
 * users could read it). check applies the fault rules of CAIRN_RPC_FAULTS (nd_faults_parse
 * format) with its own node id (default "check") as the caller: a way to see the fault layer
 * from a shell. Until the cluster bring-up wires the RPC into `cairn server`, serve is how an
 * operator or a test runs a storage node's RPC. serve refuses a drive whose format stamp
 * (cm_format.h) is corrupt or names a newer format; it writes none.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cm_checksum.h"
#include "cm_format.h"
#include "cm_log.h"
#include "cm_util.h"
#include "cmd.h"
#include "nd.h"

#define NR_MAX_DRIVES 64

static const char *secret_from_env(void)
{
    const char *s = getenv("CAIRN_RPC_SECRET");
    if (!s || !*s) {
        fprintf(stderr, "cairn node-rpc: set CAIRN_RPC_SECRET to the cluster secret\n");
        return NULL;
    }
    return s;
}

/* "HOST:PORT" into host (cap bytes) and port; 0 ok. */
static int split_hostport(const char *s, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= cap || colon == s)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = atoi(colon + 1);
    return *port > 0 && *port < 65536 ? 0 : -1;
}

/* ---- serve ---- */

static void *signal_thread(void *arg)
{
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    net_server_stop(arg, 5000);
    return NULL;
}

static int serve(int argc, char **argv)
{
    const char *node = NULL, *listen = "127.0.0.1:9100", *secret = secret_from_env();
    nd_drive drives[NR_MAX_DRIVES];
    int nd = 0, threads = 2, rc = 1;
    char host[256];
    nd_service *svc = NULL;
    net_server *srv = NULL;
    memset(drives, 0, sizeof(drives));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--node-id") == 0 && i + 1 < argc)
            node = argv[++i];
        else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (argv[i][0] != '-' && nd < NR_MAX_DRIVES)
            drives[nd++].path = argv[i];
        else {
            fprintf(stderr, "cairn node-rpc serve: bad argument %s\n", argv[i]);
            return 2;
        }
    }
    net_config cfg;
    net_config_defaults(&cfg);
    cfg.threads = threads;
    if (!secret || !node || nd == 0 || split_hostport(listen, host, sizeof(host), &cfg.port) != 0) {
        fprintf(stderr, "usage: cairn node-rpc serve --node-id ID [--listen HOST:PORT] DIR...\n");
        return 2;
    }
    cfg.host = host;
    /* only the signal thread takes SIGINT/SIGTERM: block them before any thread starts (the
     * blobstores' compactors, the sync workers, the loops inherit the mask) */
    sigset_t set;
    pthread_t sig_th;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < nd; i++) {
        /* a drive of a data directory carries its stamp: refuse a newer or corrupt one (a bare
         * folder has none, and gets none: it belongs to no data directory) */
        cm_format_stamp st;
        char why[200] = "";
        cm_err e = cm_format_read(drives[i].path, CM_FORMAT_VERSION, &st, why, sizeof(why));
        if (e != CM_OK && e != CM_ERR_NOTFOUND) {
            fprintf(stderr, "cairn node-rpc serve: %s/" CM_FORMAT_FILE ": %s (%s)\n",
                    drives[i].path, cm_err_str(e), why);
            goto out;
        }
        e = bs_open(drives[i].path, NULL, &drives[i].bs);
        if (e != CM_OK) {
            fprintf(stderr, "cairn node-rpc serve: %s: %s\n", drives[i].path, cm_err_str(e));
            goto out;
        }
    }
    nd_service_config sc = {.node_id = node,
                            .secret = (const uint8_t *)secret,
                            .secret_len = strlen(secret),
                            .drives = drives,
                            .ndrives = nd};
    if (nd_service_new(&sc, &svc) != CM_OK ||
        net_server_new(&cfg, &nd_service_handler, svc, &srv) != CM_OK) {
        fprintf(stderr, "cairn node-rpc serve: cannot start (node id valid? port free?)\n");
        goto out;
    }
    pthread_create(&sig_th, NULL, signal_thread, srv);
    printf("listening on %s:%d\n", host, net_server_port(srv));
    fflush(stdout);
    rc = net_server_run(srv) == CM_OK ? 0 : 1;
    pthread_join(sig_th, NULL);
out:
    nd_service_free(svc); /* before the server: its workers answer on the server's loops */
    net_server_free(srv);
    for (int i = 0; i < nd; i++) {
        if (drives[i].bs && bs_sync(drives[i].bs) != CM_OK)
            rc = 1;
        bs_close(drives[i].bs);
    }
    return rc;
}

/* ---- check ---- */

typedef struct {
    struct event_base *base;
    int waiting;
    nd_result res;
    char msg[256];
    nd_node_info info;
    struct evbuffer *data;
} nr_wait;

static void nr_done(void *arg, const nd_result *res)
{
    nr_wait *w = arg;
    w->res = *res;
    snprintf(w->msg, sizeof(w->msg), "%s", res->message);
    w->res.message = w->msg;
    if (res->info)
        w->info = *res->info;
    w->waiting = 0;
    event_base_loopbreak(w->base);
}

static void nr_data(void *arg, nd_op *op, struct evbuffer *data)
{
    (void)op;
    evbuffer_add_buffer(((nr_wait *)arg)->data, data);
}

/* Run the loop until the call started just before ends; print the step; 0 when err is want. */
static int nr_step(nr_wait *w, cm_err started, const char *what, cm_err want)
{
    int64_t t0 = cm_monotonic_ms();
    if (started != CM_OK) {
        w->res.err = started;
        w->res.message = cm_err_str(started);
    } else {
        w->waiting = 1;
        while (w->waiting)
            event_base_loop(w->base, EVLOOP_ONCE);
    }
    int ok = w->res.err == want;
    printf("%-6s %-28s %s%s%s (%" PRId64 " ms)\n", ok ? "ok" : "FAIL", what,
           cm_err_name(w->res.err), w->res.message[0] ? ": " : "", w->res.message,
           cm_monotonic_ms() - t0);
    return ok ? 0 : 1;
}

/* Append a random chunk, read it back, compare, stat, delete (unless keep); number of failed
 * steps. */
static int check_write(nd_client *cl, const nd_peer *peer, nr_wait *w, uint32_t drive, size_t size,
                       int keep)
{
    bs_id id;
    int bad = 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf || bs_id_new(&id) != CM_OK || cm_random(buf, size) != CM_OK) {
        free(buf);
        return 1;
    }
    struct evbuffer *body = evbuffer_new();
    evbuffer_add_reference(body, buf, size, NULL, NULL);
    bad += nr_step(w,
                   nd_append(cl, peer, drive, &id, 0, size, cm_crc32c(0, buf, size), body, NULL, 1,
                             nr_done, w, NULL),
                   "append (synced)", CM_OK);
    evbuffer_free(body);
    bad += nr_step(w, nd_read(cl, peer, drive, &id, 0, UINT64_MAX, nr_data, nr_done, w, NULL),
                   "read back", CM_OK);
    int same = evbuffer_get_length(w->data) == size &&
               memcmp(evbuffer_pullup(w->data, -1), buf, size) == 0;
    printf("%-6s %-28s %zu bytes\n", same ? "ok" : "FAIL", "byte-exact", size);
    bad += !same;
    bad += nr_step(w, nd_stat(cl, peer, drive, &id, nr_done, w), "stat", CM_OK);
    bad += w->res.size != size;
    if (keep) {
        char hex[33];
        bs_id_hex(&id, hex);
        printf("kept %s\n", hex);
        free(buf);
        return bad;
    }
    bad += nr_step(w, nd_delete(cl, peer, drive, &id, nr_done, w), "delete", CM_OK);
    bad +=
        nr_step(w, nd_stat(cl, peer, drive, &id, nr_done, w), "stat after delete", CM_ERR_NOTFOUND);
    free(buf);
    return bad;
}

static int check(int argc, char **argv)
{
    const char *node = "check", *target = NULL, *secret = secret_from_env();
    const char *faults_spec = getenv("CAIRN_RPC_FAULTS");
    long drive = -1;
    size_t size = 1 << 20;
    char host[256], pid[ND_NODE_ID_MAX];
    int port, bad = 0, keep = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--node-id") == 0 && i + 1 < argc)
            node = argv[++i];
        else if (strcmp(argv[i], "--write") == 0 && i + 1 < argc)
            drive = atol(argv[++i]);
        else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            size = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--keep") == 0)
            keep = 1;
        else if (argv[i][0] != '-' && !target)
            target = argv[i];
        else {
            fprintf(stderr, "cairn node-rpc check: bad argument %s\n", argv[i]);
            return 2;
        }
    }
    const char *at = target ? strchr(target, '@') : NULL;
    if (!secret || !at || (size_t)(at - target) >= sizeof(pid) ||
        split_hostport(at + 1, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "usage: cairn node-rpc check [--node-id ID] [--write DRIVE [--size N] "
                        "[--keep]] PEER_ID@HOST:PORT\n");
        return 2;
    }
    memcpy(pid, target, (size_t)(at - target));
    pid[at - target] = '\0';
    nd_faults *faults = NULL;
    if (faults_spec &&
        (nd_faults_new(&faults) != CM_OK || nd_faults_parse(faults, faults_spec) != CM_OK)) {
        fprintf(stderr, "cairn node-rpc check: bad CAIRN_RPC_FAULTS '%s'\n", faults_spec);
        nd_faults_free(faults);
        return 2;
    }
    nr_wait w = {.base = event_base_new(), .data = evbuffer_new()};
    nd_client *cl = NULL;
    nd_client_config cc = {.node_id = node,
                           .secret = (const uint8_t *)secret,
                           .secret_len = strlen(secret),
                           .faults = faults};
    cc.net.io_timeout_ms = 5000;
    if (!w.base || !w.data || nd_client_new(w.base, &cc, &cl) != CM_OK) {
        fprintf(stderr, "cairn node-rpc check: cannot set up a client (node id valid?)\n");
        bad = 1;
        goto out;
    }
    nd_peer peer = {pid, host, port, 0};
    bad += nr_step(&w, nd_info(cl, &peer, nr_done, &w), "info", CM_OK);
    if (bad == 0) {
        printf("node %s, clock %+" PRId64 " s from ours, %u drives\n", w.info.node_id,
               w.info.time - cm_now_ms() / 1000, w.info.ndrives);
        for (uint32_t i = 0; i < w.info.ndrives; i++) {
            const nd_drive_info *d = &w.info.drives[i];
            printf("  drive %u %-8s blobs %" PRIu64 " live %" PRIu64 " used %" PRIu64
                   " free %" PRIu64 " of %" PRIu64 "\n",
                   d->index, d->state, d->blobs, d->live_bytes, d->used_bytes, d->free_bytes,
                   d->total_bytes);
        }
        if (strcmp(w.info.node_id, pid) != 0) {
            printf("FAIL   the node says it is %s, not %s\n", w.info.node_id, pid);
            bad++;
        }
    }
    if (bad == 0 && drive >= 0)
        bad += check_write(cl, &peer, &w, (uint32_t)drive, size, keep);
out:
    nd_client_free(cl);
    if (w.data)
        evbuffer_free(w.data);
    if (w.base)
        event_base_free(w.base);
    nd_faults_free(faults);
    return bad ? 1 : 0;
}

int cmd_node_rpc(int argc, char **argv)
{
    /* both write to sockets with write() (net.h): a peer gone mid-write is an error, not a death */
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return serve(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return check(argc - 1, argv + 1);
    fprintf(stderr, "usage: cairn node-rpc serve|check ... (see docs/rpc.md)\n");
    return 2;
}
