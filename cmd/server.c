/*
 * cmd/server.c - `cairn server`: configuration (defaults < config file < flags), credentials,
 * the startup banner, signal handling and the server's lifetime.
 *
 * Credentials: CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY when both are set; otherwise the pair stored
 * in DATA/credentials (mode 0600), generated on first start. Signals: SIGTERM and SIGINT are
 * blocked in every thread and taken by one waiter thread with sigwait(), which asks the server to
 * stop gracefully (in-flight requests get a grace period, then the loops exit).
 *
 * Cluster membership is opt-in: only with a [cluster] section (etcd, id, node_id, rpc_listen)
 * does the server serve the node RPC over its own drives on a second port (server_rpc.c), follow
 * the layout in etcd and register as a member with its RPC address and S3 endpoint
 * (coord/co_layout.h), take its buckets from the cluster's bucket namespace in etcd
 * (cluster_buckets.c), and /admin/status gains a "cluster" member (layout, nodes with liveness,
 * the namespace, the RPC, replication, data and the repair pass), and /admin/repair and
 * /admin/object-cells answer (cluster_repair.c). Without it nothing here touches etcd and no RPC
 * port is opened. Shutdown: the S3 loops end, the node leaves the member list, then the RPC stops,
 * then the stores close.
 */
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_config.h"
#include "cm_log.h"
#include "cm_util.h"
#include "co_buckets.h"
#include "co_layout.h"
#include "cluster_cond.h"
#include "gw.h"
#include "ob.h"
#include "net.h"

#define MOD "server"
#define STOP_GRACE_MS 10000

typedef struct {
    gw_config gw;
    net_config net;
    char listen[300];
    char data[4096];
    char region[64];
    char domain[256];
    char log_level[16];
    int check_only;
    ob_scrub_config scrub;
    char scrub_state[4200];
    int stop_grace_ms; /* [server] stop_grace_ms: in-flight requests' time to finish at a stop */
    char cluster_etcd[1024];        /* [cluster] etcd: "URL,URL,..."; "" = not clustered */
    char cluster_id[PL_NAME_MAX];   /* [cluster] id */
    char node_id[PL_NAME_MAX];      /* [cluster] node_id */
    char cluster_addr[PL_ADDR_MAX]; /* [cluster] addr: registered address; default the listen one */
    long member_ttl;                /* [cluster] member_ttl_s */
    long gc_grace;                  /* [cluster] gc_grace_s */
    long tomb_grace;                /* [cluster] tombstone_grace_s */
    long hints_max;                 /* [cluster] hints_max */
    long repair_interval;           /* [cluster] repair_interval_s (0 = on events only) */
    double repair_mbps;             /* [cluster] repair_mbps (0 = unpaced) */
    char rpc_host[300];             /* [cluster] rpc_listen: the node RPC's address; "" = unset */
    int rpc_port;
    char rpc_secret_file[4096]; /* [cluster] rpc_secret_file; "" = CAIRN_RPC_SECRET */
    char master_key_file[4096]; /* [server] master_key_file; "" = DATA + ".key" (cm_mkey.h) */
} server_opts;

static int parse_int(const char *v, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

/* "host:port" into host (cap bytes) and *port; 0 or -1. */
static int split_listen(const char *v, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(v, ':');
    long n;
    if (!colon || colon == v || parse_int(colon + 1, 0, 65535, &n) != 0 ||
        (size_t)(colon - v) >= cap)
        return -1;
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    *port = (int)n;
    return 0;
}

/* host:port into opts->net; 0 or -1. */
static int set_listen(server_opts *o, const char *v)
{
    if (split_listen(v, o->listen, sizeof(o->listen), &o->net.port) != 0)
        return -1;
    o->net.host = o->listen;
    return 0;
}

static int parse_rate(const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= 0 && d <= 1e6))
        return -1;
    *out = d;
    return 0;
}

/* 1 for "on", "true", "yes", "1"; 0 for "off", "false", "no", "0"; -1 for anything else. */
static int parse_bool(const char *v)
{
    static const char *const on[] = {"on", "true", "yes", "1"};
    static const char *const off[] = {"off", "false", "no", "0"};
    for (size_t i = 0; i < CM_ARRAY_LEN(on); i++) {
        if (strcmp(v, on[i]) == 0)
            return 1;
        if (strcmp(v, off[i]) == 0)
            return 0;
    }
    return -1;
}

static int config_key(void *arg, const char *section, const char *key, const char *value, char *err,
                      size_t errcap)
{
    server_opts *o = arg;
    long n;
    int bad = 0;

#define IS(s, k) (strcmp(section, s) == 0 && strcmp(key, k) == 0)
    if (IS("server", "listen"))
        bad = set_listen(o, value);
    else if (IS("server", "data"))
        bad = snprintf(o->data, sizeof(o->data), "%s", value) >= (int)sizeof(o->data);
    else if (IS("server", "workers"))
        bad = parse_int(value, 1, 1024, &n) || (o->gw.workers = (int)n, 0);
    else if (IS("server", "threads"))
        bad = parse_int(value, 0, 256, &n) || (o->net.threads = (int)n, 0);
    else if (IS("server", "region"))
        bad = snprintf(o->region, sizeof(o->region), "%s", value) >= (int)sizeof(o->region);
    else if (IS("server", "domain"))
        bad = snprintf(o->domain, sizeof(o->domain), "%s", value) >= (int)sizeof(o->domain);
    else if (IS("server", "log_level"))
        bad = cm_log_level_parse(value) < 0 ||
              snprintf(o->log_level, sizeof(o->log_level), "%s", value) < 0;
    else if (IS("server", "sigv2"))
        bad = (n = parse_bool(value)) < 0 || (o->gw.sigv2_off = !n, 0);
    else if (IS("server", "idle_timeout_ms"))
        bad = parse_int(value, 100, 3600000, &n) || (o->net.idle_timeout_ms = (int)n, 0);
    else if (IS("server", "header_timeout_ms"))
        bad = parse_int(value, 100, 3600000, &n) || (o->net.header_timeout_ms = (int)n, 0);
    else if (IS("server", "max_connections"))
        bad = parse_int(value, 1, 10000000, &n) || (o->net.max_connections = (int)n, 0);
    else if (IS("server", "stop_grace_ms"))
        bad = parse_int(value, 0, 3600000, &n) || (o->stop_grace_ms = (int)n, 0);
    else if (IS("storage", "drives"))
        bad = parse_int(value, 1, 64, &n) || (o->gw.ndrives = (int)n, 0);
    else if (IS("storage", "data_cells"))
        bad = parse_int(value, 1, 16, &n) || (o->gw.k = (int)n, 0);
    else if (IS("storage", "parity_cells"))
        bad = parse_int(value, 0, 16, &n) || (o->gw.m = (int)n, 0);
    else if (IS("storage", "cell_size"))
        bad =
            parse_int(value, 4096, 16 << 20, &n) || (n % 64) || (o->gw.cell_size = (uint32_t)n, 0);
    else if (IS("storage", "meta_replicas"))
        bad = parse_int(value, 1, 3, &n) || (o->gw.meta_copies = (int)n, 0);
    else if (IS("storage", "inline_threshold"))
        bad = parse_int(value, 0, 1 << 20, &n) || (o->gw.inline_threshold = (size_t)n, 0);
    else if (IS("scrub", "rate_mb"))
        bad = parse_rate(value, &o->scrub.rate_mb);
    else if (IS("cluster", "etcd"))
        bad = snprintf(o->cluster_etcd, sizeof(o->cluster_etcd), "%s", value) >=
              (int)sizeof(o->cluster_etcd);
    else if (IS("cluster", "id"))
        bad = snprintf(o->cluster_id, sizeof(o->cluster_id), "%s", value) >=
              (int)sizeof(o->cluster_id);
    else if (IS("cluster", "node_id"))
        bad = snprintf(o->node_id, sizeof(o->node_id), "%s", value) >= (int)sizeof(o->node_id);
    else if (IS("cluster", "addr"))
        bad = snprintf(o->cluster_addr, sizeof(o->cluster_addr), "%s", value) >=
              (int)sizeof(o->cluster_addr);
    else if (IS("cluster", "member_ttl_s"))
        bad = parse_int(value, 1, 3600, &o->member_ttl);
    else if (IS("cluster", "gc_grace_s"))
        bad = parse_int(value, 0, 7 * 86400, &o->gc_grace);
    else if (IS("cluster", "tombstone_grace_s"))
        bad = parse_int(value, 1, 3660L * 86400, &o->tomb_grace);
    else if (IS("cluster", "hints_max"))
        bad = parse_int(value, 1, 1000000000L, &o->hints_max);
    else if (IS("cluster", "repair_interval_s"))
        bad = parse_int(value, 0, 366L * 86400, &o->repair_interval);
    else if (IS("cluster", "repair_mbps"))
        bad = parse_rate(value, &o->repair_mbps);
    else if (IS("cluster", "rpc_listen"))
        bad = split_listen(value, o->rpc_host, sizeof(o->rpc_host), &o->rpc_port);
    else if (IS("cluster", "rpc_secret_file"))
        bad = snprintf(o->rpc_secret_file, sizeof(o->rpc_secret_file), "%s", value) >=
              (int)sizeof(o->rpc_secret_file);
    else if (IS("server", "master_key_file"))
        bad = snprintf(o->master_key_file, sizeof(o->master_key_file), "%s", value) >=
              (int)sizeof(o->master_key_file);
    else if (IS("scrub", "interval_s"))
        bad = parse_int(value, 0, 10L * 366 * 86400, &n) || (o->scrub.interval_s = n, 0);
    else {
        snprintf(err, errcap, "unknown key '%s' in section [%s]", key, section);
        return -1;
    }
#undef IS
    if (bad)
        snprintf(err, errcap, "invalid value '%s' for %s.%s", value, section, key);
    return bad;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: cairn server [--data DIR] [--listen HOST:PORT] [--config FILE]\n"
               "                    [--threads N] [--log-level error|warn|info|debug]\n"
               "                    [--scrub-rate-mb MB/s] [--scrub-interval SECONDS]\n"
               "                    [--sigv2 on|off]\n"
               "                    [--check-config]\n"
               "Config [cluster] etcd = URL,..., id = ID, node_id = NODE (all three, or none):\n"
               "follow the cluster layout in etcd, register as a live member, and share the\n"
               "bucket namespace with the cluster's other nodes. A cluster node also serves the\n"
               "node RPC over its drives: [cluster] rpc_listen = HOST:PORT (required),\n"
               "addr = HOST:PORT (what peers dial; default rpc_listen), and the cluster secret\n"
               "from CAIRN_RPC_SECRET or [cluster] rpc_secret_file = PATH (refused when every\n"
               "user may read it). Without [cluster] no RPC port is opened. gc_grace_s = N\n"
               "(default 900): replaced bodies are freed this long after. tombstone_grace_s = N\n"
               "(default 86400): deletions are forgotten, and undelivered hints dropped, this\n"
               "long after. hints_max = N (default 1000000): the hints this node keeps for\n"
               "unreachable nodes; beyond it it refuses to stand in. repair_interval_s = N\n"
               "(default 60, 0 = on events only) and repair_mbps = MB/s (default 100, 0 =\n"
               "unpaced): the repair pass over this node's records. See docs/deploy.md.\n"
               "Starts a single cairn node serving S3 (default 127.0.0.1:9000, data in "
               "./cairn-data).\n");
}

static int wildcard_host(const char *h)
{
    return !h[0] || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "[::]") == 0;
}

/* The RPC keys of [cluster]: rpc_listen required with it, none of them without it. */
static int cluster_args_bad(const server_opts *o)
{
    if (!o->cluster_etcd[0]) {
        if (o->rpc_host[0] || o->rpc_secret_file[0]) {
            fprintf(stderr, "cairn: [cluster] rpc_listen and rpc_secret_file need a [cluster] "
                            "section with etcd, id and node_id\n");
            return 1;
        }
        return 0;
    }
    if (!o->rpc_host[0]) {
        fprintf(stderr, "cairn: [cluster] needs rpc_listen = HOST:PORT (the node RPC's address)\n");
        return 1;
    }
    if (!o->cluster_addr[0] && wildcard_host(o->rpc_host)) {
        fprintf(stderr,
                "cairn: [cluster] rpc_listen %s is a wildcard address: set [cluster] addr "
                "= HOST:PORT, the address other nodes dial\n",
                o->rpc_host);
        return 1;
    }
    return 0;
}

/* Defaults, then the config file, then flags (flags win). Returns 0, or an exit code. */
static int parse_args(server_opts *o, int argc, char **argv)
{
    const char *config = NULL;
    char msg[512];

    memset(o, 0, sizeof(*o)); /* check_only and friends start cleared */
    gw_config_defaults(&o->gw);
    net_config_defaults(&o->net);
    snprintf(o->listen, sizeof(o->listen), "127.0.0.1");
    o->net.host = o->listen;
    o->net.port = 9000;
    snprintf(o->data, sizeof(o->data), "./cairn-data");
    snprintf(o->region, sizeof(o->region), "us-east-1");
    snprintf(o->domain, sizeof(o->domain), "localhost");
    snprintf(o->log_level, sizeof(o->log_level), "info");
    o->stop_grace_ms = STOP_GRACE_MS;
    o->gc_grace = 900;      /* a GET through another node of a replaced body ends well before */
    o->tomb_grace = 86400;  /* a home away longer than this is rebuilt (docs/replication.md) */
    o->hints_max = 1000000; /* 0.3 to 2 GB of records (docs/replication.md, "Hints") */
    o->repair_interval = 60;
    o->repair_mbps = 100;
    ob_scrub_config_defaults(&o->scrub);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
    if (config && cm_config_parse_file(config, config_key, o, msg, sizeof(msg)) != CM_OK) {
        fprintf(stderr, "cairn: %s\n", msg);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char err[256];
        const char *sec = NULL, *key = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return -1;
        } else if (strcmp(a, "--check-config") == 0) {
            o->check_only = 1;
            continue;
        } else if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        } else if (strcmp(a, "--data") == 0) {
            sec = "server", key = "data";
        } else if (strcmp(a, "--listen") == 0) {
            sec = "server", key = "listen";
        } else if (strcmp(a, "--threads") == 0) {
            sec = "server", key = "threads";
        } else if (strcmp(a, "--log-level") == 0) {
            sec = "server", key = "log_level";
        } else if (strcmp(a, "--scrub-rate-mb") == 0) {
            sec = "scrub", key = "rate_mb";
        } else if (strcmp(a, "--scrub-interval") == 0) {
            sec = "scrub", key = "interval_s";
        } else if (strcmp(a, "--sigv2") == 0) {
            sec = "server", key = "sigv2";
        } else {
            fprintf(stderr, "cairn server: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "cairn server: %s needs a value\n", a);
            return 2;
        }
        if (config_key(o, sec, key, v, err, sizeof(err)) != 0) {
            fprintf(stderr, "cairn server: %s: %s\n", a, err);
            return 2;
        }
        i++;
    }
    if (o->gw.ndrives < o->gw.k + o->gw.m) {
        fprintf(stderr,
                "cairn: storage.drives (%d) must be at least data_cells + parity_cells "
                "(%d)\n",
                o->gw.ndrives, o->gw.k + o->gw.m);
        return 2;
    }
    if ((o->cluster_etcd[0] || o->cluster_id[0] || o->node_id[0]) &&
        (!o->cluster_etcd[0] || !o->cluster_id[0] || !o->node_id[0])) {
        fprintf(stderr, "cairn: [cluster] needs all of etcd, id and node_id\n");
        return 2;
    }
    if (cluster_args_bad(o))
        return 2;
    if (o->cluster_etcd[0]) /* a node's records are replicated across nodes: one local copy */
        o->gw.meta_copies = 1;
    o->gw.data_dir = o->data;
    o->gw.region = o->region;
    o->gw.domain = o->domain;
    snprintf(o->scrub_state, sizeof(o->scrub_state), "%s/scrub.state", o->data);
    o->scrub.state_path = o->scrub_state;
    return 0;
}

static pthread_t signal_thread;
static int stop_grace_ms = STOP_GRACE_MS; /* set before the signal thread starts */

static void *signal_waiter(void *arg)
{
    net_server *srv = arg;
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR2); /* used to wake this thread at a normal exit */
    sigwait(&set, &sig);
    if (sig != SIGUSR2) {
        CM_INFO(MOD, "signal %s: stopping (grace %d ms)", sig == SIGTERM ? "TERM" : "INT",
                stop_grace_ms);
        net_server_stop(srv, stop_grace_ms);
    }
    return NULL;
}

static void banner(const server_opts *o, const cmd_credentials *c, int port)
{
    printf("cairn %s: serving S3 on http://%s:%d (region %s)\n", CAIRN_VERSION, o->listen, port,
           o->region);
    printf("  data:     %s (%d drives, erasure %d+%d)\n", o->data, o->gw.ndrives, o->gw.k, o->gw.m);
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
           "    aws --endpoint-url http://%s:%d s3 mb s3://my-bucket\n",
           c->access_key, secret, o->region, o->listen, port);
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

/* Process-wide setup before any thread exists: log level, allocator, data dir, credentials. */
static int prepare_process(server_opts *o, cmd_credentials *cred)
{
    sigset_t set;

    cm_log_set_level((cm_log_level)cm_log_level_parse(o->log_level));
    raise_nofile(o);
    /*
     * Stripe buffers and read pieces are ~1 MiB and short-lived. With glibc's default dynamic mmap
     * threshold they soon come from the arenas, where long-lived index allocations pin them and
     * resident memory creeps up with the amount of data written (measured: 108 MiB after a 5 GiB
     * upload). A fixed threshold keeps every large buffer in its own mapping, returned on free.
     */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    cm_err me = cm_mkdir_durable(o->data, 0755);
    if (me != CM_OK) {
        fprintf(stderr, "cairn: cannot create data directory %s: %s\n", o->data, cm_err_str(me));
        return -1;
    }
    if (cmd_load_credentials(o->data, cred) != 0)
        return -1;
    o->gw.access_key = cred->access_key;
    o->gw.master_key_file = o->master_key_file;
    o->gw.secret_key = cred->secret_key;
    /* Block the stop signals before any thread exists, so only the waiter receives them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* What the "cluster" member of /admin/status reads: both followers keep their state in memory. */
typedef struct {
    co_layout *layout;
    co_buckets *buckets;
    cmd_rpc *rpc;
    cmd_cluster *node; /* the clock, cluster-mode data, replicated records (cluster.c) */
    char *secret;      /* the cluster secret, wiped and freed at the end */
    size_t secret_len;
    char s3[PL_ADDR_MAX + 16]; /* the S3 endpoint registered in the member record */
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
               "\"in_layout\":%s,\"live\":%s,\"drives\":%d,\"last_seen_ms\":%lld}",
               out[n - 1] == '[' ? "" : ",", id, pn ? pn->az : "", pn ? pn->addr : st->seen[s].addr,
               pn ? pl_state_name(pn->state) : "", pn ? "true" : "false",
               seen && st->seen[s].live ? "true" : "false", pn ? pn->ndrives : 0,
               seen ? (long long)st->seen[s].last_seen_ms : 0LL);
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
                               .g = g,
                               .gc_grace_ms = (int64_t)o->gc_grace * 1000,
                               .tombstone_grace_ms = (int64_t)o->tomb_grace * 1000,
                               .hints_max = (uint64_t)o->hints_max,
                               .data_dir = o->data,
                               .repair_interval_s = (int)o->repair_interval,
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
                         .threads = o->net.threads,
                         .md = gw_meta_store(g),
                         .clock = cmd_cluster_clock(cn->node),
                         .cond = cmd_cond_serve,
                         .cond_arg = cmd_cluster_cond(cn->node)};
    if (cmd_rpc_start(&rc, gw_object_store(g), &cn->rpc) != 0) /* copies the secret */
        return -1;
    if (!o->cluster_addr[0] && snprintf(o->cluster_addr, sizeof(o->cluster_addr), "%.100s:%d",
                                        o->rpc_host, cmd_rpc_port(cn->rpc)) < 0)
        return -1;
    /* a wildcard S3 listener is reached by the host peers dial for the RPC */
    char host[300];
    int ignored;
    if (!wildcard_host(o->listen))
        snprintf(host, sizeof(host), "%s", o->listen);
    else if (split_listen(o->cluster_addr, host, sizeof(host), &ignored) != 0)
        snprintf(host, sizeof(host), "%s", o->cluster_addr);
    snprintf(cn->s3, sizeof(cn->s3), "http://%.100s:%d", host, port);
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
    gw_set_admin_extra(g, cmd_repair_admin, cmd_cluster_repair(cn->node));
    printf("  cluster:  %s, node %s, etcd %s\n", o->cluster_id, o->node_id, o->cluster_etcd);
    printf("  node RPC: %s:%d (registered as %s, S3 %s)\n", o->rpc_host, cmd_rpc_port(cn->rpc),
           o->cluster_addr, cn->s3);
    CM_INFO(MOD, "cluster %s: following the layout as node %s", o->cluster_id, o->node_id);
    return 0;
}

int cmd_server(int argc, char **argv)
{
    static cluster_view cluster; /* read by /admin/status until the loops end */
    server_opts o;
    cmd_credentials cred;
    gw *g = NULL;
    ob_scrub *scrub = NULL;
    net_server *srv = NULL;
    int rc = parse_args(&o, argc, argv);

    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (o.check_only) {
        printf("configuration ok\n");
        return 0;
    }
    if (prepare_process(&o, &cred) != 0)
        return 1;
    rc = 1;
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
    if ((err = net_server_new(&o.net, gw_net_handler(), g, &srv)) != CM_OK) {
        fprintf(stderr, "cairn: cannot listen on %s:%d: %s\n", o.listen, o.net.port,
                cmd_listen_error(err));
        goto out;
    }
    stop_grace_ms = o.stop_grace_ms;
    if (pthread_create(&signal_thread, NULL, signal_waiter, srv) != 0) {
        fprintf(stderr, "cairn: cannot start the signal thread\n");
        goto out;
    }
    banner(&o, &cred, net_server_port(srv));
    if (start_cluster(&o, net_server_port(srv), g, &cluster) != 0) {
        pthread_kill(signal_thread, SIGUSR2);
        pthread_join(signal_thread, NULL);
        goto out;
    }
    fflush(stdout);
    gw_set_ready(g, 1);
    CM_INFO(MOD, "ready on %s:%d", o.listen, net_server_port(srv));
    err = net_server_run(srv);
    gw_set_ready(g, 0);
    pthread_kill(signal_thread, SIGUSR2);
    pthread_join(signal_thread, NULL);
    rc = err == CM_OK ? 0 : 1;
    CM_INFO(MOD, "stopped");
out:
    /* Workers first: a job that outlived the grace period must not return to a freed loop. */
    gw_quiesce(g);
    net_server_free(srv);
    cmd_rpc_stop(cluster.rpc, o.stop_grace_ms); /* peers' calls end: they take another node */
    cmd_cluster_stop(cluster.node);   /* its threads use the layout follower; the RPC, its clock */
    co_layout_free(cluster.layout);   /* after the loops: /admin/status reads it; leaves the list */
    co_buckets_free(cluster.buckets); /* after the workers (they call it), before gw_free */
    gw_scrub_free(g, scrub);          /* interrupts a pass between two reads */
    gw_free(g);
    cmd_cluster_free(cluster.node); /* the fault rules outlive the object store's cluster mode */
    if (cluster.secret) {
        explicit_bzero(cluster.secret, cluster.secret_len);
        free(cluster.secret);
    }
    return rc;
}
