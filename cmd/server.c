/*
 * cmd/server.c - `cairn server`: configuration (server_config.c: defaults < config file <
 * CAIRN_<SECTION>_<KEY> environment < flags), credentials, the startup banner, signal handling
 * and the server's lifetime.
 *
 * Credentials: CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY when both are set; otherwise the pair stored
 * in DATA/credentials (mode 0600), generated on first start. Signals: SIGTERM, SIGINT and SIGHUP
 * are blocked from the first line of cmd_server on, in every thread, and taken by one waiter thread
 * with sigwait() (one that comes during start-up waits for it: a stop logged, not a silent end);
 * every other signal that would end the process logs a line first (server_fatal.c). SIGTERM/SIGINT
 * ask the server to stop gracefully (docs/upgrades.md): /health/ready answers 503, the listeners
 * close, idle connections close, requests in flight get stop_grace_ms to finish (their responses
 * carry Connection: close), and a cluster node leaves the member list at once; then the loops exit.
 * SIGHUP reloads (reload below): the file is re-read whole; a refused file changes nothing; a
 * changed key is applied when its row is LIVE (log level, timeouts, stop grace) and otherwise
 * logged as needing a restart; then the root credentials are re-read and the cm_reload hooks
 * run (docs/configuration.md). Under systemd's Type=notify (cm_sdnotify.h) the server sends
 * READY=1 once it serves (after start_cluster on a cluster node), RELOADING=1 / READY=1 around a
 * SIGHUP reload, STOPPING=1 at a stop, and WATCHDOG=1 from the signal thread when asked.
 *
 * Format stamps: before the credentials or any store is read, check_format runs cm_format_open
 * over DATA and its drive folders (cm_format.h); a newer, corrupt or mixed stamp exits 1 with
 * the reason on stderr.
 *
 * Cluster membership is opt-in: only with a [cluster] section (etcd, id, node_id, rpc_listen)
 * does the server serve the node RPC over its own drives on a second port (server_rpc.c), follow
 * the layout in etcd and register as a member with its RPC address and S3 endpoint
 * (coord/co_layout.h), take its buckets from the cluster's bucket namespace in etcd
 * (cluster_buckets.c), and /admin/status gains a "cluster" member (layout, nodes with liveness,
 * the namespace, the RPC, replication, data and the repair pass), and /admin/repair and
 * /admin/object-cells answer (cluster_repair.c). Without it nothing here touches etcd and no RPC
 * port is opened. Shutdown: the node leaves the member list (at the signal, while the S3 loops
 * drain), the S3 loops end, then the RPC stops (peers' calls in flight get the grace period), then
 * the stores close.
 */
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cm_alog.h"
#include "cm_format.h"
#include "cm_log.h"
#include "cm_metrics.h"
#include "cm_reload.h"
#include "cm_sdnotify.h"
#include "cm_util.h"
#include "co_buckets.h"
#include "co_layout.h"
#include "co_users.h"
#include "cluster_cond.h"
#include "gw.h"
#include "gw_lc.h"
#include "ob.h"
#include "net.h"
#include "server_config.h"

#define MOD "server"

/* Load the options (server_config.c); 0, or the exit code (-1: --help, exit 0). */
static int parse_args(server_opts *o, int argc, char **argv)
{
    char msg[1024];
    int rc = cmd_server_config_load(o, argc, argv, msg, sizeof(msg));
    if (rc == 1)
        return -1;
    if (rc != 0)
        fprintf(stderr, "cairn server: %s\n", msg);
    return rc;
}

static pthread_t signal_thread;

/* How long a stop waits for etcd to revoke the member lease (the TTL removes it otherwise). */
#define LEAVE_WAIT_MS 2000

/* What the signal thread needs: the stop, and SIGHUP's reload. */
typedef struct {
    net_server *srv;
    gw *g;
    cm_reload *hooks;   /* what else SIGHUP reloads (cm_reload.h) */
    server_opts *run;   /* the keys in force: as loaded at start, live keys as last reloaded */
    server_opts *fresh; /* scratch for a reload */
    int argc;           /* the command line, whose flags still win at a reload */
    char **argv;
    cm_sdnotify sd;              /* systemd's notify socket (Type=notify), read-only once set */
    atomic_int announced;        /* READY=1 was sent: a reload ends with READY=1 again */
    _Atomic(co_layout *) layout; /* a cluster node's member registration, once it serves */
} signal_ctx;

/* Make the live keys of c->run take effect (at start they already have). */
static void apply_live(signal_ctx *c)
{
    cm_log_set_level((cm_log_level)c->run->log_level);
    net_server_set_timeouts(c->srv, c->run->net.idle_timeout_ms, c->run->net.header_timeout_ms);
    /* stop_grace_ms: read by this thread at the stop */
}

/* The root credentials from where they came at start (the environment does not change). */
static void reload_credentials(signal_ctx *c)
{
    cmd_credentials cred;
    if (cmd_reread_credentials(c->run->data, &cred) != 0) {
        CM_ERROR(MOD, "SIGHUP: the credentials cannot be read: the running ones stay");
        return;
    }
    if (gw_set_credentials(c->g, cred.access_key, cred.secret_key) != CM_OK)
        CM_ERROR(MOD, "SIGHUP: out of memory: the running credentials stay");
    else
        CM_INFO(MOD, "SIGHUP: root credentials loaded (access key %s)", cred.access_key);
    explicit_bzero(cred.secret_key, sizeof(cred.secret_key));
}

/*
 * SIGHUP: re-read the file, the environment and the flags. A refused file changes nothing (the
 * error with its line is logged). Otherwise every changed key is applied when it is live, or
 * logged as needing a restart; then the credentials and the hooks.
 */
static void reload(signal_ctx *c)
{
    char msg[1024], was[4200], now[4200];
    server_opts *n = c->fresh;
    if (cmd_server_config_load(n, c->argc, c->argv, msg, sizeof(msg)) != 0) {
        CM_ERROR(MOD, "SIGHUP: configuration refused, the running one stays: %s", msg);
        return;
    }
    for (size_t i = 0; i < n->table.n; i++) {
        const cm_cfg_key *k = &n->table.keys[i];
        if (cm_cfg_same(&c->run->table, &n->table, (int)i))
            continue;
        cm_cfg_format(&c->run->table, (int)i, was, sizeof(was)); /* a secret: "(set)" */
        cm_cfg_format(&n->table, (int)i, now, sizeof(now));
        if (!(k->flags & CM_CFG_LIVE)) {
            CM_WARN(MOD, "SIGHUP: %s.%s changed (%s -> %s): needs restart, not applied", k->section,
                    k->key, was, now);
            continue;
        }
        memcpy((char *)c->run + k->off, (const char *)n + k->off, k->size);
        snprintf(c->run->src[i].where, sizeof(c->run->src[i].where), "%s", n->src[i].where);
        CM_INFO(MOD, "SIGHUP: %s.%s = %s (was %s)", k->section, k->key, now, was);
    }
    apply_live(c);
    reload_credentials(c);
    cm_reload_run(c->hooks);
}

/* Tell systemd (cm_sdnotify.h); a failure is logged, never fatal: serving matters more. */
static void notify(const signal_ctx *c, const char *state)
{
    if (cm_sdnotify_send(&c->sd, state) != CM_OK)
        CM_WARN(MOD, "systemd notify socket: cannot send %.20s: %s", state, strerror(errno));
}

/* A reload as systemd sees it: RELOADING=1 (with the monotonic clock, which systemd 253's
 * Type=notify-reload wants), the reload, READY=1 again when the server had announced itself. */
static void reload_notified(signal_ctx *c)
{
    char msg[64];
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)now.tv_sec * 1000000ull + (unsigned long long)now.tv_nsec / 1000);
    notify(c, msg);
    reload(c);
    if (atomic_load(&c->announced))
        notify(c, "READY=1");
}

/*
 * The next stop, reload or wake-up signal. With a systemd watchdog (WatchdogSec=) it wakes every
 * half period to send WATCHDOG=1: the keep-alive comes from this thread, so it proves the process
 * runs and takes signals, not that every loop answers (/health/ready tells that).
 */
static int next_signal(const signal_ctx *c, const sigset_t *set)
{
    int sig = 0;
    if (!c->sd.addr_len || !c->sd.watchdog_usec)
        return sigwait(set, &sig) == 0 ? sig : -1;
    uint64_t half = c->sd.watchdog_usec / 2;
    if (half < 10000)
        half = 10000; /* a nonsense WATCHDOG_USEC=1 must not turn this into a busy loop */
    struct timespec wait = {(time_t)(half / 1000000), (long)(half % 1000000) * 1000};
    for (;;) {
        sig = sigtimedwait(set, NULL, &wait);
        if (sig > 0)
            return sig;
        if (errno == EAGAIN)
            notify(c, "WATCHDOG=1");
        else if (errno != EINTR)
            return -1;
    }
}

static void *signal_waiter(void *arg)
{
    signal_ctx *c = arg;
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR2); /* used to wake this thread at a normal exit */
    while ((sig = next_signal(c, &set)) == SIGHUP)
        reload_notified(c);
    if (sig != SIGUSR2) {
        int grace = c->run->stop_grace_ms;
        notify(c, "STOPPING=1");
        CM_INFO(MOD, "signal %s: stopping (grace %d ms)", sig == SIGTERM ? "TERM" : "INT", grace);
        /* The drain (docs/upgrades.md): not ready, no new connection, requests in flight finish
         * (Connection: close) while peers, told by the member list, stop sending work here. */
        gw_set_ready(c->g, 0);
        net_server_stop(c->srv, grace);
        co_layout_leave(atomic_load(&c->layout), LEAVE_WAIT_MS);
    }
    return NULL;
}

/*
 * A SIGHUP hook (cm_reload.h): read the TLS certificate and key again; new connections get them,
 * open ones keep theirs, and a bad pair leaves the current one in place (the reason in why).
 */
static int reload_tls(void *arg, char *why, size_t cap)
{
    if (net_tls_reload(arg, why, cap) != CM_OK)
        return -1;
    CM_INFO(MOD, "signal HUP: TLS certificate reloaded");
    return 0;
}

static void banner(const server_opts *o, const cmd_credentials *c, int port)
{
    const char *scheme = o->tls_cert[0] ? "https" : "http";
    printf("cairn %s: serving S3 on %s://%s:%d (region %s)\n", CAIRN_VERSION, scheme, o->listen,
           port, o->region);
    /* a cluster node writes bodies with the profile of the cluster's layout (pl_default_profile) */
    if (o->cluster_etcd[0])
        printf("  data:     %s (%d drives; erasure by the cluster layout, cluster %s, node %s)\n",
               o->data, o->gw.ndrives, o->cluster_id, o->node_id);
    else
        printf("  data:     %s (%d drives, erasure %d+%d)\n", o->data, o->gw.ndrives, o->gw.k,
               o->gw.m);
    /* the secret is shown only by the start that generated it (it is in a 0600 file) */
    char secret[4400];
    printf("  access key: %s\n", c->access_key);
    if (c->from_env) {
        printf("  secret key: from CAIRN_SECRET_KEY\n");
        snprintf(secret, sizeof(secret), "\"$CAIRN_SECRET_KEY\"");
    } else if (c->generated) {
        printf("  secret key: %s   (generated now, kept in %s; not shown again)\n", c->secret_key,
               c->path);
        snprintf(secret, sizeof(secret), "%s", c->secret_key);
    } else {
        printf("  secret key: kept in %s (not shown)\n", c->path);
        snprintf(secret, sizeof(secret), "\"$(sed -n 's/^secret_key = //p' '%s')\"", c->path);
    }
    printf("try:\n  AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s \\\n"
           "    aws --endpoint-url %s://%s:%d s3 mb s3://my-bucket\n",
           c->access_key, secret, o->region, scheme, o->listen, port);
    fflush(stdout);
}

/*
 * Every connection costs a descriptor, and the usual soft limit (1024) is far below the hard one:
 * take the hard limit. The connection limit's default follows from the result (net.h).
 */
static void raise_nofile(const server_opts *o)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        CM_WARN(MOD, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
        else
            CM_WARN(MOD, "cannot raise RLIMIT_NOFILE to %llu: %s", (unsigned long long)rl.rlim_max,
                    strerror(errno));
    }
    int max = o->net.max_connections > 0 ? o->net.max_connections : net_default_max_connections();
    CM_INFO(MOD, "descriptors: RLIMIT_NOFILE %llu, max_connections %d%s",
            (unsigned long long)rl.rlim_cur, max, o->net.max_connections > 0 ? "" : " (default)");
}

/*
 * The format stamps of the data directory and its drives (cm_format.h), before anything else in
 * it is read or written: a newer, corrupt or mixed stamp stops the start with the reason.
 */
static int check_format(const server_opts *o)
{
    cm_format_stamp st;
    char why[700] = "";
    int adopted = 0;
    cm_err e = cm_format_open(o->data, o->gw.ndrives, CAIRN_VERSION, CM_FORMAT_VERSION, &st,
                              &adopted, why, sizeof(why));
    if (e != CM_OK) {
        fprintf(stderr, "cairn: refusing to start on %s: %s\n", o->data,
                why[0] ? why : cm_err_str(e));
        return -1;
    }
    if (adopted)
        CM_INFO(MOD, "stamped %d director%s written by an older cairn with format %u", adopted,
                adopted == 1 ? "y" : "ies", st.version);
    CM_INFO(MOD, "data directory %s: on-disk format %u (id %s, stamped by cairn %s)", o->data,
            st.version, st.id, st.writer);
    return 0;
}

/*
 * First of all: the stop and reload signals blocked (the waiter thread takes them; every thread
 * inherits the mask), SIGPIPE ignored, a log line for any other signal that ends the process.
 */
static void prepare_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGHUP); /* a reload, not the default end of the process */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    cmd_fatal_signals_log();
}

/* Process-wide setup before any thread exists: log level, allocator, data dir, credentials. */
static int prepare_process(server_opts *o, cmd_credentials *cred)
{
    cm_log_set_level((cm_log_level)o->log_level);
    raise_nofile(o);
    /*
     * Stripe buffers and read pieces are ~1 MiB and short-lived. With glibc's default dynamic mmap
     * threshold they soon come from the arenas, where long-lived index allocations pin them and
     * resident memory creeps up with the amount of data written (measured: 108 MiB after a 5 GiB
     * upload). A fixed threshold keeps every large buffer in its own mapping, returned on free.
     */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    /*
     * With the threshold fixed, glibc trims an arena's top once 128 KiB of it is free: each
     * metadata commit frees its LMDB dirty pages (a 4 KiB inline body is a 2-page overflow, which
     * LMDB mallocs) and the arenas of the commit and copy threads were trimmed (madvise/brk)
     * and faulted back in on the next commit. 4 MiB holds a full batch (256 such bodies, ~2.3 MiB
     * per copy); 1 MiB did not. Measured (4 KiB PUT, c=64, cairn bench, 2026-12-06): server page
     * faults per PUT 0.88-0.92 -> 0.14-0.19, brk+madvise per PUT 0.20 -> 0.001 (1 MiB: 0.89 and
     * 0.16). What an arena keeps is at most this above its live data (docs/performance.md,
     * "Ninth session").
     */
    mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
    cm_err me = cm_mkdir_durable(o->data, 0755);
    if (me != CM_OK) {
        fprintf(stderr, "cairn: cannot create data directory %s: %s\n", o->data, cm_err_str(me));
        return -1;
    }
    if (check_format(o) != 0)
        return -1;
    if (cmd_load_credentials(o->data, cred) != 0)
        return -1;
    o->gw.access_key = cred->access_key;
    o->gw.master_key_file = o->master_key_file;
    o->gw.secret_key = cred->secret_key;
    return 0;
}

/* What the "cluster" member of /admin/status reads: both followers keep their state in memory. */
typedef struct {
    co_layout *layout;
    co_buckets *buckets;
    co_users *users;
    cmd_rpc *rpc;
    cmd_cluster *node; /* the clock, cluster-mode data, replicated records (cluster.c) */
    char *secret;      /* the cluster secret, wiped and freed at the end */
    size_t secret_len;
    net_tls *rpc_tls;          /* [cluster] tls_*: the node RPC's TLS; NULL = plain */
    int rpc_tls_mode;          /* [cluster] tls_mode in effect (CMD_RPC_TLS_OFF..REQUIRE) */
    char s3[CO_LAYOUT_S3_MAX]; /* the S3 endpoint registered in the member record */
} cluster_view;

/* Append to out (at n of cap): the new length, or cap when it did not fit. */
static size_t add(char *out, size_t n, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t add(char *out, size_t n, size_t cap, const char *fmt, ...)
{
    if (n >= cap)
        return cap;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + n, cap - n, fmt, ap);
    va_end(ap);
    return w < 0 || (size_t)w >= cap - n ? cap : n + (size_t)w;
}

/* One node of the "nodes" array: t's node when in the layout, else a member seen outside it. */
static size_t add_node(char *out, size_t n, size_t cap, const pl_node *pn, const char *id,
                       const co_layout_status *st)
{
    int s = 0;
    while (s < st->nseen && strcmp(st->seen[s].id, id) != 0)
        s++;
    int seen = s < st->nseen;
    return add(out, n, cap,
               "%s{\"id\":\"%s\",\"az\":\"%s\",\"addr\":\"%s\",\"layout_state\":\"%s\","
               "\"in_layout\":%s,\"live\":%s,\"drives\":%d,\"last_seen_ms\":%lld,\"s3\":\"%s\"}",
               out[n - 1] == '[' ? "" : ",", id, pn ? pn->az : "", pn ? pn->addr : st->seen[s].addr,
               pn ? pl_state_name(pn->state) : "", pn ? "true" : "false",
               seen && st->seen[s].live ? "true" : "false", pn ? pn->ndrives : 0,
               seen ? (long long)st->seen[s].last_seen_ms : 0LL, seen ? st->seen[s].s3 : "");
}

/*
 * The "cluster" member of /admin/status: from memory only (the loop must not wait on etcd). The
 * nodes are the adopted layout's, then members seen that are not in it; live is "in the last
 * member list read" (refreshed every second by co_layout's member thread).
 */
static size_t cluster_status(void *arg, char *out, size_t cap)
{
    cluster_view *v = arg;
    co_layout_status *st = malloc(sizeof(*st)); /* ~20 KB: not on an event loop's stack */
    pl_topology *t = NULL;
    co_buckets_status bs = {0};
    uint64_t calls = 0, refused = 0;
    if (!st)
        return 0;
    co_layout_get_status(v->layout, st);
    co_layout_current(v->layout, &t, NULL); /* NULL while no layout is adopted */
    if (v->buckets)
        co_buckets_get_status(v->buckets, &bs);
    cmd_rpc_counts(v->rpc, &calls, &refused);
    size_t n =
        add(out, 0, cap,
            "\"cluster\":{\"layout_epoch\":%llu,\"layout_revision\":%lld,"
            "\"layouts_adopted\":%llu,\"layouts_rejected\":%llu,\"etcd_connected\":%s,"
            "\"registered\":%s,\"in_layout\":%s,\"s3_endpoint\":\"%s\",\"rpc_port\":%d,"
            "\"rpc_requests\":%llu,\"rpc_auth_refused\":%llu,\"now_ms\":%lld,"
            "\"members_read_ms\":%lld,"
            "\"buckets\":{\"count\":%zu,\"revision\":%lld,\"watch_connected\":%s,"
            "\"fresh_lookups\":%llu,\"fresh_reads\":%llu},"
            "\"members\":[",
            (unsigned long long)st->epoch, (long long)st->mod_rev, (unsigned long long)st->adopted,
            (unsigned long long)st->rejected, st->connected ? "true" : "false",
            st->registered ? "true" : "false", st->in_layout ? "true" : "false", v->s3,
            cmd_rpc_port(v->rpc), (unsigned long long)calls, (unsigned long long)refused,
            (long long)cm_now_ms(), (long long)st->members_read_ms, bs.nbuckets,
            (long long)bs.mod_rev, bs.connected ? "true" : "false",
            (unsigned long long)bs.fresh_lookups, (unsigned long long)bs.fresh_reads);
    for (int i = 0; i < st->nmembers && i < CO_LAYOUT_MEMBERS; i++)
        n = add(out, n, cap, "%s\"%s\"", i ? "," : "", st->members[i]);
    n = add(out, n, cap, "],\"nodes\":[");
    for (int i = 0; t && i < t->nnodes; i++)
        n = add_node(out, n, cap, &t->nodes[i], t->nodes[i].id, st);
    for (int s = 0; s < st->nseen; s++)
        if (!t || pl_topology_find(t, st->seen[s].id) < 0)
            n = add_node(out, n, cap, NULL, st->seen[s].id, st);
    n = add(out, n, cap, "]}");
    if (n + 2 < cap) {
        size_t m = cmd_cluster_status(v->node, out + n + 1, cap - n - 1);
        if (m > 0) {
            out[n] = ',';
            n += 1 + m;
        }
    }
    pl_topology_free(t);
    free(st);
    return n < cap ? n : 0;
}

/*
 * /health/ready on a cluster node: a layout adopted (from etcd, or the cached one at a start during
 * an etcd outage). Membership is not required: during an etcd outage no node can renew its
 * registration, and a readiness that failed then would take every node out of its load balancer
 * at once while they can all still serve (test_layout_etcd restarts a node during an outage).
 */
static int cluster_ready(void *arg, char *why, size_t cap)
{
    cluster_view *v = arg;
    co_layout_status *st = malloc(sizeof(*st)); /* ~20 KB: not on an event loop's stack */
    if (!st) {
        snprintf(why, cap, "out of memory");
        return 0;
    }
    co_layout_get_status(v->layout, st);
    int ok = st->epoch > 0;
    if (!ok)
        snprintf(why, cap, "no cluster layout known yet (etcd %s)",
                 st->connected ? "connected" : "unreachable");
    free(st);
    return ok;
}

/*
 * With a [cluster] section: serve the node RPC over the store's drives, then follow the layout and
 * register as node_id with the RPC address (what peers dial) and the S3 endpoint, and take the
 * bucket namespace from etcd. Never waits on etcd. The RPC is up before the node is listed, so a
 * peer that finds it can call it.
 */
static int start_cluster(server_opts *o, int port, gw *g, cluster_view *cn)
{
    co_config cfg;
    char *storage = NULL, *secret = NULL, cache[4200];
    size_t secret_len = 0;
    if (!o->cluster_etcd[0])
        return 0;
    if (cmd_rpc_secret_load(o->rpc_secret_file, &secret, &secret_len) != 0)
        return -1;
    cn->secret = secret, cn->secret_len = secret_len;
    cmd_cluster_config ncfg = {.node_id = o->node_id,
                               .secret = (const uint8_t *)secret,
                               .secret_len = secret_len,
                               /* dials TLS from on: a node on accept still takes plain */
                               .tls = cn->rpc_tls_mode >= CMD_RPC_TLS_ON ? cn->rpc_tls : NULL,
                               .g = g,
                               .gc_grace_ms = (int64_t)o->gc_grace * 1000,
                               .maint_ms = (int64_t)o->maint_s * 1000,
                               .tombstone_grace_ms = (int64_t)o->tomb_grace * 1000,
                               .hints_max = (uint64_t)o->hints_max,
                               .data_dir = o->data,
                               .repair_interval_s = (int)o->repair_interval,
                               .repair_full_interval_s = (int)o->repair_full_interval,
                               .repair_mbps = o->repair_mbps,
                               .etcd = o->cluster_etcd,
                               .cluster_id = o->cluster_id};
    cm_err ne = cmd_cluster_new(&ncfg, &cn->node);
    if (ne != CM_OK) {
        fprintf(stderr, "cairn: cannot start the cluster node: %s\n", cm_err_str(ne));
        return -1;
    }
    cmd_rpc_config rc = {.node_id = o->node_id,
                         .host = o->rpc_host,
                         .port = o->rpc_port,
                         .secret = (const uint8_t *)secret,
                         .secret_len = secret_len,
                         .tls = cn->rpc_tls,
                         /* plain callers too until require: their nodes still dial plain */
                         .tls_plain_too = cn->rpc_tls_mode != CMD_RPC_TLS_REQUIRE,
                         .threads = o->net.threads,
                         .md = gw_meta_store(g),
                         .clock = cmd_cluster_clock(cn->node),
                         .epoch = cmd_cluster_fence(cn->node),
                         .cond = cmd_cond_serve,
                         .cond_arg = cmd_cluster_cond(cn->node)};
    if (cmd_rpc_start(&rc, gw_object_store(g), &cn->rpc) != 0) /* copies the secret */
        return -1;
    CM_INFO(MOD, "[cluster] tls_mode %s: the node RPC dials its peers %s",
            cmd_rpc_tls_mode_name(cn->rpc_tls_mode),
            cn->rpc_tls_mode >= CMD_RPC_TLS_ON ? "over TLS" : "plain");
    if (!o->cluster_addr[0] && snprintf(o->cluster_addr, sizeof(o->cluster_addr), "%.100s:%d",
                                        o->rpc_host, cmd_rpc_port(cn->rpc)) < 0)
        return -1;
    /* a wildcard S3 listener is reached by the host peers dial for the RPC */
    char host[300];
    int ignored;
    if (!cmd_wildcard_host(o->listen))
        snprintf(host, sizeof(host), "%s", o->listen);
    else if (cmd_split_listen(o->cluster_addr, host, sizeof(host), &ignored) != 0)
        snprintf(host, sizeof(host), "%s", o->cluster_addr);
    snprintf(cn->s3, sizeof(cn->s3), "%s://%.100s:%d", o->tls_cert[0] ? "https" : "http", host,
             port);
    snprintf(cache, sizeof(cache), "%s/layout.cache", o->data);
    cm_err e = co_config_parse(o->cluster_etcd, &cfg, &storage);
    co_layout_config lc = {.etcd = &cfg,
                           .cluster = o->cluster_id,
                           .node_id = o->node_id,
                           .addr = o->cluster_addr,
                           .s3 = cn->s3,
                           .cache_path = cache,
                           .ttl = o->member_ttl};
    if (e == CM_OK)
        e = co_layout_open(&lc, &cn->layout); /* copies the endpoints */
    if (e == CM_OK)
        e = cmd_cluster_buckets_start(g, &cfg, o->cluster_id, o->data, &cn->buckets); /* too */
    if (e == CM_OK)
        e = cmd_cluster_users_start(g, &cfg, o->cluster_id, o->data, &cn->users);
    free(storage);
    if (e != CM_OK) {
        fprintf(stderr, "cairn: cannot join cluster '%s' as '%s' (etcd %s): %s\n", o->cluster_id,
                o->node_id, o->cluster_etcd, cm_err_str(e));
        return -1;
    }
    if ((e = cmd_cluster_run(cn->node, cn->layout, cmd_cluster_bucket_consistency, cn->buckets)) !=
        CM_OK) {
        fprintf(stderr, "cairn: cannot start the cluster data path: %s\n", cm_err_str(e));
        return -1;
    }
    gw_set_status_extra(g, cluster_status, cn);
    gw_set_ready_check(g, cluster_ready, cn);
    gw_set_admin_extra(g, cmd_repair_admin, cmd_cluster_repair(cn->node));
    cm_metrics_add(gw_metrics_registry(g), cmd_repair_metrics, cmd_cluster_repair(cn->node));
    printf("  cluster:  %s, node %s, etcd %s\n", o->cluster_id, o->node_id, o->cluster_etcd);
    printf("  node RPC: %s:%d (registered as %s, S3 %s)\n", o->rpc_host, cmd_rpc_port(cn->rpc),
           o->cluster_addr, cn->s3);
    CM_INFO(MOD, "cluster %s: following the layout as node %s", o->cluster_id, o->node_id);
    return 0;
}

/* /metrics: the listener's connections and the build (a cm_metrics source over the server). */
static void server_metrics(void *arg, FILE *f)
{
    uint64_t open, accepted;
    net_server_conn_stats(arg, &open, &accepted);
    cm_metric_head(f, "cairn_connections_open", "gauge", "Client connections open on the S3 port");
    cm_metric_u64(f, "cairn_connections_open", NULL, open);
    cm_metric_head(f, "cairn_connections_accepted_total", "counter",
                   "Client connections accepted on the S3 port");
    cm_metric_u64(f, "cairn_connections_accepted_total", NULL, accepted);
    cm_metric_head(f, "cairn_build_info", "gauge", "The running build; always 1");
    cm_metric_u64(f, "cairn_build_info",
                  "version=\"" CAIRN_VERSION "\",compiler=\"" __VERSION__ "\"", 1);
}

/* The JSON access log of [log] access_file, reopened at SIGHUP; 0, or -1 after a message. */
static int open_access_log(const server_opts *o, gw *g, cm_reload *hooks, cm_alog **out)
{
    if (!o->access_file[0])
        return 0;
    if (cm_alog_open(o->access_file, 0, out) != CM_OK) {
        fprintf(stderr, "cairn: cannot open the access log %s: %s\n", o->access_file,
                strerror(errno));
        return -1;
    }
    gw_set_access_log(g, *out);
    cm_reload_add(hooks, "access_log", cm_alog_reopen, *out);
    return 0;
}

int cmd_server(int argc, char **argv)
{
    static cluster_view cluster; /* read by /admin/status until the loops end */
    signal_ctx sig = {0};
    server_opts o;
    cmd_credentials cred;
    gw *g = NULL;
    ob_scrub *scrub = NULL;
    gw_lc *lc = NULL;
    gw_rewrap *rewrap = NULL;
    net_server *srv = NULL;
    net_tls *tls = NULL;
    char tls_err[512];
    cm_alog *alog = NULL;
    prepare_signals(); /* before anything that could take long or start a thread */
    int rc = parse_args(&o, argc, argv);

    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (o.print_doc || o.print_config) {
        if (o.print_doc)
            cmd_server_config_doc(stdout);
        if (o.print_config)
            cmd_server_config_print(&o, stdout);
        return 0;
    }
    /* The certificate files are loaded and checked before anything starts (--check-config too). */
    if (o.tls_cert[0] &&
        net_tls_new(o.tls_cert, o.tls_key, &tls, tls_err, sizeof(tls_err)) != CM_OK) {
        fprintf(stderr, "cairn: %s\n", tls_err);
        return 2;
    }
    o.net.tls = tls;
    cluster.rpc_tls_mode = o.rpc_tls;
    if (o.rpc_tls >= CMD_RPC_TLS_ACCEPT &&
        net_tls_new_peers(o.rpc_tls_ca, o.rpc_tls_cert, o.rpc_tls_key, &cluster.rpc_tls, tls_err,
                          sizeof(tls_err)) != CM_OK) {
        fprintf(stderr, "cairn: [cluster] TLS: %s\n", tls_err);
        net_tls_free(tls);
        return 2;
    }
    if (o.check_only || prepare_process(&o, &cred) != 0) {
        if (o.check_only)
            printf("configuration ok\n");
        net_tls_free(cluster.rpc_tls);
        net_tls_free(tls);
        return o.check_only ? 0 : 1;
    }
    rc = 1;
    if (cm_sdnotify_init(&sig.sd) != CM_OK) /* before any thread: it reads the environment */
        fprintf(stderr, "cairn: NOTIFY_SOCKET is not a usable socket address: not notifying\n");
    /* SIGHUP's hooks (cm_reload.h): a subsystem that holds files of its own (the TLS
     * certificates) registers with cm_reload_add(sig.hooks, ...) once it is set up, before serving
     */
    if (cm_reload_new(&sig.hooks) != CM_OK ||
        (tls && cm_reload_add(sig.hooks, "tls", reload_tls, tls) != CM_OK) ||
        (cluster.rpc_tls &&
         cm_reload_add(sig.hooks, "rpc-tls", reload_tls, cluster.rpc_tls) != CM_OK)) {
        fprintf(stderr, "cairn: out of memory\n");
        cm_reload_free(sig.hooks);
        net_tls_free(cluster.rpc_tls);
        net_tls_free(tls);
        return 1;
    }
    cm_err err = gw_new(&o.gw, &g);
    if (err != CM_OK) {
        fprintf(stderr, "cairn: cannot open the store in %s: %s\n", o.data, cm_err_str(err));
        goto out;
    }
    /* The scrubber's thread starts after the signal mask is set, so it never takes SIGTERM. */
    if ((err = gw_scrub_new(g, &o.scrub, &scrub)) != CM_OK ||
        (err = ob_scrub_start(scrub)) != CM_OK) {
        fprintf(stderr, "cairn: cannot start the scrubber: %s\n", cm_err_str(err));
        goto out;
    }
    /* Lifecycle on a single node; a cluster node's worker starts with the cluster (below). */
    if (!o.cluster_etcd[0] && (err = gw_lc_start(g, &o.lc, &lc)) != CM_OK) {
        fprintf(stderr, "cairn: cannot start the lifecycle worker: %s\n", cm_err_str(err));
        goto out;
    }
    /* Master-key rotation: keys in use checked, a pass resumed (a cluster node's: below). */
    if (!o.cluster_etcd[0] && (err = gw_rewrap_start(g, &rewrap)) != CM_OK) {
        fprintf(stderr, "cairn: cannot start the master-key rewrap: %s\n", cm_err_str(err));
        goto out;
    }
    if ((err = net_server_new(&o.net, gw_net_handler(), g, &srv)) != CM_OK) {
        fprintf(stderr, "cairn: cannot listen on %s:%d: %s\n", o.listen, o.net.port,
                cmd_listen_error(err));
        goto out;
    }
    if (open_access_log(&o, g, sig.hooks, &alog) != 0)
        goto out;
    cm_metrics_add(gw_metrics_registry(g), server_metrics, srv);
    sig.srv = srv, sig.g = g, sig.argc = argc, sig.argv = argv;
    if (!(sig.run = malloc(sizeof(*sig.run))) || !(sig.fresh = malloc(sizeof(*sig.fresh)))) {
        fprintf(stderr, "cairn: out of memory\n");
        goto out;
    }
    *sig.run = o; /* before start_cluster fills in the keys it derives */
    sig.run->table.opts = sig.run;
    sig.run->table.src = sig.run->src;
    if (pthread_create(&signal_thread, NULL, signal_waiter, &sig) != 0) {
        fprintf(stderr, "cairn: cannot start the signal thread\n");
        goto out;
    }
    banner(&o, &cred, net_server_port(srv));
    if (start_cluster(&o, net_server_port(srv), g, &cluster) != 0) {
        pthread_kill(signal_thread, SIGUSR2);
        pthread_join(signal_thread, NULL);
        goto out;
    }
    /* A cluster node applies lifecycle rules to the partitions it is the first live home of,
     * and its rewrap pass goes through the replicated records: both once they are there. */
    if (cluster.node) {
        o.lc.mine = cmd_cluster_first_live_home;
        o.lc.mine_arg = cluster.node;
        if ((err = gw_lc_start(g, &o.lc, &lc)) != CM_OK) {
            fprintf(stderr, "cairn: cannot start the lifecycle worker: %s\n", cm_err_str(err));
            pthread_kill(signal_thread, SIGUSR2);
            pthread_join(signal_thread, NULL);
            goto out;
        }
        if ((err = gw_rewrap_start(g, &rewrap)) != CM_OK) {
            fprintf(stderr, "cairn: cannot start the master-key rewrap: %s\n", cm_err_str(err));
            pthread_kill(signal_thread, SIGUSR2);
            pthread_join(signal_thread, NULL);
            goto out;
        }
    }
    fflush(stdout);
    atomic_store(&sig.layout, cluster.layout);
    gw_set_ready(g, 1);
    CM_INFO(MOD, "ready on %s:%d", o.listen, net_server_port(srv));
    /* After start_cluster: a cluster node is ready once it serves the RPC and is a member. */
    atomic_store(&sig.announced, 1);
    notify(&sig, "READY=1\nSTATUS=serving S3");
    err = net_server_run(srv);
    gw_set_ready(g, 0);
    pthread_kill(signal_thread, SIGUSR2);
    pthread_join(signal_thread, NULL);
    rc = err == CM_OK ? 0 : 1;
    CM_INFO(MOD, "stopped");
out:
    /* Workers first: a job that outlived the grace period must not return to a freed loop. */
    gw_lc_stop(g, lc);         /* a page in progress ends; its cursor resumes at the next start */
    gw_rewrap_stop(g, rewrap); /* likewise: a step ends, the stored cursor resumes */
    gw_quiesce(g);
    net_server_free(srv);
    net_tls_free(tls); /* after the server: its connections hold the context */
    co_layout_leave(cluster.layout, LEAVE_WAIT_MS); /* done at a signal; here for other exits */
    cmd_rpc_stop(cluster.rpc, o.stop_grace_ms);     /* peers' calls end: they take another node */
    cmd_cluster_stop(cluster.node);   /* its threads use the layout follower; the RPC, its clock */
    co_layout_free(cluster.layout);   /* after the loops: /admin/status reads it; leaves the list */
    co_buckets_free(cluster.buckets); /* after the workers (they call it), before gw_free */
    co_users_free(cluster.users);     /* likewise; its thread reloads g's key table */
    gw_scrub_free(g, scrub);          /* interrupts a pass between two reads */
    gw_free(g);
    cmd_cluster_free(cluster.node); /* the fault rules outlive the object store's cluster mode */
    if (cluster.secret) {
        explicit_bzero(cluster.secret, cluster.secret_len);
        free(cluster.secret);
    }
    net_tls_free(cluster.rpc_tls); /* after everything that calls or serves the RPC */
    cm_reload_free(sig.hooks);
    /* after the loops and workers, which write to it, and the SIGHUP hook, which reopens it */
    cm_alog_close(alog);
    free(sig.run);
    free(sig.fresh);
    return rc;
}
