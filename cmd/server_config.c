/*
 * cmd/server_config.c - the configuration keys of `cairn server`, as ONE table (keys[] below), and
 * loading them: defaults < config file (--config) < environment (CAIRN_<SECTION>_<KEY>) < flags.
 *
 * Adding a key is one row in keys[]: section, key, type, the server_opts field, range (or choices,
 * or the longest text), default as written in the file, extra check (or NULL), flags (LIVE when
 * SIGHUP may apply it without a restart: add its effect to apply_live() in cmd/server.c; SECRET to
 * hide it in listings), and a one-line doc. Then regenerate the reference: `cairn server
 * --config-doc` prints the table that docs/configuration.md must contain (test_gateway_config fails
 * until it does), and test_config.sh feeds every row a bad value. A type the engine lacks
 * (cm_cfgtab.h) goes there, not here. Keys read by another module stay plain fields of server_opts
 * (or of the gw/net/scrub configs it embeds), set only through this table.
 *
 * Porting a key written in the old `else if (IS("sec", "key"))` style of config_key: a
 * parse_int(value, A, B, ...) into an int/long/uint32_t/size_t field becomes a row of type
 * INT/LONG/U32/SIZE with min A, max B; a parse_rate/strtod into a double, DOUBLE; parse_bool, BOOL
 * (an inverted flag: keep the positive key in server_opts and derive the negative one in derive());
 * a word among a few, ENUM with choices "a|b"; a snprintf into a char array, STR with max
 * sizeof - 1; any other validation (a path that must exist, a HOST:PORT) is a check function. A
 * flag that sets a key (--tls-cert FILE) is one line in flags[] below. A default computed from
 * other keys (master_key_file: the data directory's path + ".key") is "" in the row and filled
 * in by derive().
 *
 * The old CAIRN_ACCESS_KEY/CAIRN_SECRET_KEY (credentials.c), CAIRN_RPC_SECRET (server_rpc.c) and
 * CAIRN_MASTER_KEY variables are not keys of the table and keep their meaning.
 */
#include "server_config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_cidr.h"
#include "cm_log.h"
#include "cm_util.h"

int cmd_split_listen(const char *v, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(v, ':');
    char *end;
    if (!colon || colon == v || (size_t)(colon - v) >= cap)
        return -1;
    errno = 0;
    long n = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || n < 0 || n > 65535)
        return -1;
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    *port = (int)n;
    return 0;
}

int cmd_wildcard_host(const char *h)
{
    return !h[0] || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "[::]") == 0;
}

/* ---- checks beyond the types ---- */

static int check_listen(const char *v, char *why, size_t cap)
{
    char host[300];
    int port;
    if (cmd_split_listen(v, host, sizeof(host), &port) == 0)
        return 0;
    snprintf(why, cap, "expected HOST:PORT with a port in 0..65535");
    return -1;
}

static int check_listen_or_empty(const char *v, char *why, size_t cap)
{
    return v[0] ? check_listen(v, why, cap) : 0;
}

static int check_cell_size(const char *v, char *why, size_t cap)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (end != v && !*end && n % 64 != 0) {
        snprintf(why, cap, "must be a multiple of 64");
        return -1;
    }
    return 0; /* anything else: the type's range check says what is wrong */
}

static int check_cidrs(const char *v, char *why, size_t cap)
{
    cm_cidr_list l;
    if (cm_cidr_list_parse(v, &l) == CM_OK)
        return 0;
    snprintf(why, cap, "expected a comma-separated list of at most %d addresses or CIDR prefixes",
             CM_CIDR_MAX);
    return -1;
}

/* ---- the table ---- */

#define FIELD_SIZE(f) sizeof(((server_opts *)0)->f)
/* One key: section, key, type, field, min, max, choices or form, default, check, flags, doc. */
#define KEY(sec, key, type, f, min, max, choices, def, check, flags, doc)                          \
    {                                                                                              \
        sec, key, CM_CFG_##type, offsetof(server_opts, f), FIELD_SIZE(f), min, max, choices, def,  \
            check, flags, doc                                                                      \
    }
#define LIVE CM_CFG_LIVE
#define SECRET CM_CFG_SECRET
#define DAY 86400.0

static const cm_cfg_key keys[] = {
    KEY("server", "listen", STR, listen_str, 0, 299, "HOST:PORT", "127.0.0.1:9000", check_listen, 0,
        "address and port of the S3 listener (the admin API and /metrics share it)"),
    KEY("server", "data", STR, data, 0, 4095, NULL, "./cairn-data", NULL, 0,
        "data directory: drive0..N-1/, the metadata, the credentials file"),
    KEY("server", "workers", INT, gw.workers, 1, 1024, NULL, "64", NULL, 0,
        "worker threads for fsyncs, commits and other blocking work"),
    KEY("server", "threads", INT, net.threads, 0, 256, NULL, "0", NULL, 0,
        "event-loop threads; 0 = one per core"),
    KEY("server", "region", STR, region, 0, 63, NULL, "us-east-1", NULL, 0,
        "the region SigV4 signatures must name"),
    KEY("server", "domain", STR, domain, 0, 255, NULL, "localhost", NULL, 0,
        "virtual-hosted style: a Host \"BUCKET.DOMAIN\" addresses BUCKET"),
    KEY("server", "website_domain", STR, website_domain, 0, 255, NULL, "", NULL, 0,
        "static websites: a Host \"BUCKET.WEBSITE_DOMAIN\" is a website request; empty = off"),
    KEY("server", "log_level", ENUM, log_level, 0, 0, "error|warn|info|debug", "info", NULL, LIVE,
        "the least severe log messages written"),
    KEY("server", "sigv2", BOOL, sigv2, 0, 0, NULL, "on", NULL, 0,
        "accept Signature Version 2 requests"),
    KEY("server", "idle_timeout_ms", INT, net.idle_timeout_ms, 100, 3600000, NULL, "60000", NULL,
        LIVE, "a connection idle this long between requests is closed"),
    KEY("server", "header_timeout_ms", INT, net.header_timeout_ms, 100, 3600000, NULL, "20000",
        NULL, LIVE, "a request head must be complete this long after its first byte"),
    KEY("server", "max_connections", INT, net.max_connections, 0, 10000000, NULL, "0", NULL, 0,
        "open client connections; 0 = from RLIMIT_NOFILE, keeping a reserve for files"),
    KEY("server", "stop_grace_ms", INT, stop_grace_ms, 0, 3600000, NULL, "10000", NULL, LIVE,
        "at SIGTERM, in-flight requests get this long to finish"),
    KEY("storage", "drives", INT, gw.ndrives, 1, 64, NULL, "6", NULL, 0,
        "drive folders under the data directory (at least data_cells + parity_cells)"),
    KEY("storage", "data_cells", INT, gw.k, 1, 16, NULL, "4", NULL, 0,
        "erasure coding: data cells per stripe"),
    KEY("storage", "parity_cells", INT, gw.m, 0, 16, NULL, "2", NULL, 0,
        "erasure coding: parity cells per stripe (drives that may fail)"),
    KEY("storage", "cell_size", U32, gw.cell_size, 4096, 16777216, NULL, "262144", check_cell_size,
        0, "bytes per cell, a multiple of 64"),
    KEY("storage", "meta_replicas", INT, gw.meta_copies, 1, 3, NULL, "3", NULL, 0,
        "copies of the metadata store on drive0..; a cluster node keeps 1"),
    KEY("storage", "inline_threshold", SIZE, gw.inline_threshold, 0, 1048576, NULL, "65536", NULL,
        0, "bodies up to this size live in the metadata record"),
    KEY("storage", "compression", ENUM, gw.compression, 0, 0, "off|auto", "auto", NULL, 0,
        "zstd-compress bodies that the first stripe shows compressible (docs/compression.md)"),
    KEY("storage", "compression_level", INT, gw.compress_level, 1, 19, NULL, "1", NULL, 0,
        "zstd level of that compression"),
    KEY("scrub", "rate_mb", DOUBLE, scrub.rate_mb, 0, 1e6, NULL, "50", NULL, 0,
        "MB/s of cell reads by the scrubber; 0 = unlimited"),
    KEY("scrub", "interval_s", LONG, scrub.interval_s, 0, 3660 * DAY, NULL, "86400", NULL, 0,
        "seconds from the end of a scrub pass to the next; 0 = only when asked"),
    KEY("cluster", "etcd", STR, cluster_etcd, 0, 1023, NULL, "", NULL, 0,
        "etcd endpoints \"URL,URL,...\"; with id and node_id makes this a cluster node"),
    KEY("cluster", "id", STR, cluster_id, 0, PL_NAME_MAX - 1, NULL, "", NULL, 0,
        "the cluster's name in etcd"),
    KEY("cluster", "node_id", STR, node_id, 0, PL_NAME_MAX - 1, NULL, "", NULL, 0,
        "this node's id in the layout"),
    KEY("cluster", "addr", STR, cluster_addr, 0, PL_ADDR_MAX - 1, NULL, "", NULL, 0,
        "HOST:PORT other nodes dial for the RPC; \"\" = rpc_listen"),
    KEY("cluster", "member_ttl_s", LONG, member_ttl, 1, 3600, NULL, "10", NULL, 0,
        "lease of the member record in etcd"),
    KEY("cluster", "gc_grace_s", LONG, gc_grace, 0, 7 * DAY, NULL, "900", NULL, 0,
        "replaced bodies are freed this long after"),
    KEY("cluster", "maintenance_s", LONG, maint_s, 1, 3600, NULL, "10", NULL, 0,
        "seconds between maintenance ticks (garbage reclaim, intents, anti-entropy)"),
    KEY("cluster", "tombstone_grace_s", LONG, tomb_grace, 1, 3660 * DAY, NULL, "86400", NULL, 0,
        "deletions are forgotten, and undelivered hints dropped, this long after"),
    KEY("cluster", "hints_max", LONG, hints_max, 1, 1e9, NULL, "1000000", NULL, 0,
        "hints kept for unreachable nodes; past it the node refuses to stand in"),
    KEY("cluster", "repair_interval_s", LONG, repair_interval, 0, 366 * DAY, NULL, "60", NULL, 0,
        "seconds between repair passes over this node's records; 0 = on events only"),
    KEY("cluster", "repair_full_interval_s", LONG, repair_full_interval, 0, 366 * DAY, NULL,
        "86400", NULL, 0,
        "an interval pass stats every cell this often; the others check layouts only; 0 = always"),
    KEY("cluster", "repair_mbps", DOUBLE, repair_mbps, 0, 1e6, NULL, "100", NULL, 0,
        "MB/s of the repair pass; 0 = unpaced"),
    KEY("cluster", "rpc_listen", STR, rpc_listen, 0, 299, "HOST:PORT or empty", "",
        check_listen_or_empty, 0, "the node RPC's address (required on a cluster node)"),
    KEY("cluster", "rpc_secret_file", STR, rpc_secret_file, 0, 4095, NULL, "", NULL, 0,
        "file holding the cluster secret; \"\" = CAIRN_RPC_SECRET"),
    KEY("lifecycle", "rate", DOUBLE, lc.rate, 0.001, 1e6, NULL, "1000", NULL, 0,
        "objects per second the lifecycle worker examines (docs/lifecycle.md)"),
    KEY("lifecycle", "interval_s", U32, lc.interval_s, 1, 3660 * DAY, NULL, "3600", NULL, 0,
        "seconds from the end of a lifecycle pass to the next"),
    KEY("lifecycle", "day_s", U32, lc.day_s, 1, 86400, NULL, "86400", NULL, 0,
        "seconds in a lifecycle day (a test clock: 1 makes Days rules act in seconds)"),
    KEY("server", "post_fields_timeout_ms", INT, gw.post_fields_timeout_ms, 100, 3600000, NULL,
        "30000", NULL, 0,
        "POST Object: the form's fields before the file must arrive within this (docs/cors.md)"),
    KEY("server", "tls_cert", STR, tls_cert, 0, 4095, NULL, "", NULL, 0,
        "PEM certificate chain: serve HTTPS instead of HTTP (docs/tls.md); \"\" = plain HTTP"),
    KEY("server", "tls_key", STR, tls_key, 0, 4095, NULL, "", NULL, 0,
        "its PEM private key, not readable by other users; needed with tls_cert"),
    KEY("cluster", "tls_ca", STR, rpc_tls_ca, 0, 4095, NULL, "", NULL, 0,
        "the CA of every node's RPC certificate: the node RPC over mutual TLS; \"\" = plain"),
    KEY("cluster", "tls_cert", STR, rpc_tls_cert, 0, 4095, NULL, "", NULL, 0,
        "this node's RPC certificate chain (with tls_ca and tls_key)"),
    KEY("cluster", "tls_key", STR, rpc_tls_key, 0, 4095, NULL, "", NULL, 0, "its private key"),
    KEY("cluster", "tls_mode", ENUM, rpc_tls_mode, 0, 0, "auto|off|accept|on|require", "auto", NULL,
        0,
        "node RPC TLS while switching node by node (docs/rpc.md): accept = serve TLS and plain, "
        "dial plain; on = both, dial TLS; require = TLS only; auto = require with tls_*, else off"),
    KEY("server", "master_key_file", STR, master_key_file, 0, 4095, NULL, "", NULL, 0,
        "file with the 64-hex master key of encryption at rest (owner-only; older keys on "
        "further lines while rotating); \"\" = env CAIRN_MASTER_KEY, else DATA.key beside the "
        "data directory, created on first start (docs/encryption.md)"),
    KEY("metrics", "token", STR, metrics_token, 0, 256, NULL, "", NULL, SECRET,
        "a bearer token that may read /metrics from any address; \"\" = none"),
    KEY("metrics", "allow", STR, metrics_allow, 0, 1023, "CIDR list", "127.0.0.0/8,::1",
        check_cidrs, 0, "addresses that may read /metrics without the token; \"\" = none"),
    KEY("log", "access_file", STR, access_file, 0, 4095, NULL, "", NULL, 0,
        "JSON access log, one line per request: a file (reopened at SIGHUP), \"stdout\", "
        "\"stderr\"; \"\" = off"),
};

const cm_cfg_key *cmd_server_keys(size_t *n)
{
    *n = CM_ARRAY_LEN(keys);
    return keys;
}

/* ---- loading ---- */

/* Flags that set a key: the flag, its section and key. */
static const struct {
    const char *flag, *section, *key;
} flags[] = {
    {"--data", "server", "data"},
    {"--listen", "server", "listen"},
    {"--threads", "server", "threads"},
    {"--log-level", "server", "log_level"},
    {"--scrub-rate-mb", "scrub", "rate_mb"},
    {"--scrub-interval", "scrub", "interval_s"},
    {"--sigv2", "server", "sigv2"},
    {"--tls-cert", "server", "tls_cert"},
    {"--tls-key", "server", "tls_key"},
};

void cmd_server_usage(FILE *f)
{
    fprintf(f, "usage: cairn server [--data DIR] [--listen HOST:PORT] [--config FILE]\n"
               "                    [--threads N] [--log-level error|warn|info|debug]\n"
               "                    [--scrub-rate-mb MB/s] [--scrub-interval SECONDS]\n"
               "                    [--sigv2 on|off] [--tls-cert FILE --tls-key FILE]\n"
               "                    [--check-config] [--print-config] [--config-doc]\n"
               "Starts a cairn node serving S3 (default 127.0.0.1:9000, data in ./cairn-data).\n"
               "Every key of the config file can also be set by CAIRN_<SECTION>_<KEY> in the\n"
               "environment (e.g. CAIRN_SERVER_LOG_LEVEL=debug); flags win over it, it wins\n"
               "over the file. --check-config checks and exits; --print-config lists every key\n"
               "with its effective value and its source; --config-doc prints the reference of\n"
               "every key. SIGHUP re-reads the file and the credentials: see\n"
               "docs/configuration.md. A [cluster] section (etcd, id, node_id, rpc_listen)\n"
               "makes this node a member of a cluster: see docs/deploy.md.\n");
}

static const char *env_get(void *arg, const char *name)
{
    (void)arg;
    return getenv(name);
}

const char *cmd_rpc_tls_mode_name(int mode)
{
    static const char *const names[] = {"auto", "off", "accept", "on", "require"};
    return mode >= 0 && mode < (int)CM_ARRAY_LEN(names) ? names[mode] : "?";
}

/*
 * [cluster] tls_mode against the three files (ntls of them set): auto becomes require with them,
 * off without; accept, on and require need them; off with them leaves them unused (the way back
 * from TLS keeps the files in place). Sets o->rpc_tls. 0, or -1 with msg.
 */
static int rpc_tls_mode_check(server_opts *o, int ntls, char *msg, size_t cap)
{
    o->rpc_tls = o->rpc_tls_mode;
    if (o->rpc_tls == CMD_RPC_TLS_AUTO)
        o->rpc_tls = ntls == 3 ? CMD_RPC_TLS_REQUIRE : CMD_RPC_TLS_OFF;
    if (o->rpc_tls >= CMD_RPC_TLS_ACCEPT && ntls != 3) {
        snprintf(msg, cap,
                 "[cluster] tls_mode = %s needs tls_ca, tls_cert and tls_key (the CA of the "
                 "nodes' RPC certificates, this node's certificate and its key)",
                 cmd_rpc_tls_mode_name(o->rpc_tls_mode));
        return -1;
    }
    return 0;
}

/* The keys together, after every source is applied: 0, or 2 with msg. */
static int check_together(server_opts *o, char *msg, size_t cap)
{
    if (o->gw.ndrives < o->gw.k + o->gw.m) {
        snprintf(msg, cap, "storage.drives (%d) must be at least data_cells + parity_cells (%d)",
                 o->gw.ndrives, o->gw.k + o->gw.m);
        return 2;
    }
    if ((o->cluster_etcd[0] || o->cluster_id[0] || o->node_id[0]) &&
        (!o->cluster_etcd[0] || !o->cluster_id[0] || !o->node_id[0])) {
        snprintf(msg, cap, "[cluster] needs all of etcd, id and node_id");
        return 2;
    }
    int ntls = !!o->rpc_tls_ca[0] + !!o->rpc_tls_cert[0] + !!o->rpc_tls_key[0];
    if (ntls != 0 && ntls != 3) {
        snprintf(msg, cap,
                 "TLS on the node RPC needs all of [cluster] tls_ca, tls_cert and tls_key");
        return 2;
    }
    if (rpc_tls_mode_check(o, ntls, msg, cap) != 0)
        return 2;
    if (!o->tls_cert[0] != !o->tls_key[0]) {
        snprintf(msg, cap, "TLS needs both [server] tls_cert and tls_key (--tls-cert, --tls-key)");
        return 2;
    }
    if (!o->cluster_etcd[0] && (o->rpc_listen[0] || o->rpc_secret_file[0] || ntls ||
                                o->rpc_tls_mode != CMD_RPC_TLS_AUTO)) {
        snprintf(msg, cap,
                 "[cluster] rpc_listen, rpc_secret_file and tls_* need a [cluster] section "
                 "with etcd, id and node_id");
        return 2;
    }
    if (o->cluster_etcd[0] && !o->rpc_listen[0]) {
        snprintf(msg, cap, "[cluster] needs rpc_listen = HOST:PORT (the node RPC's address)");
        return 2;
    }
    if (o->rpc_listen[0] &&
        cmd_split_listen(o->rpc_listen, o->rpc_host, sizeof(o->rpc_host), &o->rpc_port) != 0)
        return 2; /* refused by its check already */
    if (o->cluster_etcd[0] && !o->cluster_addr[0] && cmd_wildcard_host(o->rpc_host)) {
        snprintf(msg, cap,
                 "[cluster] rpc_listen %s is a wildcard address: set [cluster] addr = HOST:PORT, "
                 "the address other nodes dial",
                 o->rpc_host);
        return 2;
    }
    return 0;
}

/* What the other modules read, from the keys. */
static void derive(server_opts *o)
{
    cmd_split_listen(o->listen_str, o->listen, sizeof(o->listen), &o->net.port);
    o->net.host = o->listen;
    o->gw.sigv2_off = !o->sigv2;
    if (o->cluster_etcd[0]) /* a node's records are replicated across nodes: one local copy */
        o->gw.meta_copies = 1;
    o->gw.data_dir = o->data;
    o->gw.region = o->region;
    o->gw.domain = o->domain;
    o->gw.website_domain = o->website_domain;
    o->gw.metrics_token = o->metrics_token;
    o->gw.metrics_allow = o->metrics_allow;
    o->gw.master_key_file = o->master_key_file; /* "" = CAIRN_MASTER_KEY, else DATA.key */
    snprintf(o->scrub_state, sizeof(o->scrub_state), "%s/scrub.state", o->data);
    o->scrub.state_path = o->scrub_state;
}

/* The flags: 0, 1 for --help, 2 with msg. */
static int apply_flags(server_opts *o, int argc, char **argv, char *msg, size_t cap)
{
    char why[512], source[64];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t f = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cmd_server_usage(stdout);
            return 1;
        }
        int *mode = strcmp(a, "--check-config") == 0   ? &o->check_only
                    : strcmp(a, "--print-config") == 0 ? &o->print_config
                    : strcmp(a, "--config-doc") == 0   ? &o->print_doc
                                                       : NULL;
        if (mode) {
            *mode = 1;
            continue;
        }
        if (strcmp(a, "--config") == 0) {
            if (!v) {
                snprintf(msg, cap, "--config needs a value");
                return 2;
            }
            i++;
            continue;
        }
        while (f < CM_ARRAY_LEN(flags) && strcmp(a, flags[f].flag) != 0)
            f++;
        if (f == CM_ARRAY_LEN(flags)) {
            snprintf(msg, cap, "unknown argument '%s' (see --help)", a);
            return 2;
        }
        if (!v) {
            snprintf(msg, cap, "%s needs a value", a);
            return 2;
        }
        snprintf(source, sizeof(source), "flag %s", a);
        int k = cm_cfg_find(&o->table, flags[f].section, flags[f].key);
        if (cm_cfg_set(&o->table, k, v, source, why, sizeof(why)) != 0) {
            snprintf(msg, cap, "%s: %s", a, why);
            return 2;
        }
        i++;
    }
    return 0;
}

int cmd_server_config_load(server_opts *o, int argc, char **argv, char *msg, size_t cap)
{
    memset(o, 0, sizeof(*o));
    gw_config_defaults(&o->gw); /* the fields no key sets */
    net_config_defaults(&o->net);
    ob_scrub_config_defaults(&o->scrub);
    gw_lc_worker_config_defaults(&o->lc);
    o->table = (cm_cfg){keys, CM_ARRAY_LEN(keys), o, o->src};
    if (CM_ARRAY_LEN(keys) > SERVER_NKEYS_MAX) {
        snprintf(msg, cap, "configuration table: raise SERVER_NKEYS_MAX");
        return 2;
    }
    if (cm_cfg_defaults(&o->table, msg, cap) != CM_OK)
        return 2;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            o->config_path = argv[++i];
    if (o->config_path && cm_cfg_parse_file(&o->table, o->config_path, msg, cap) != CM_OK)
        return 2;
    if (cm_cfg_apply_env(&o->table, env_get, NULL, msg, cap) != CM_OK)
        return 2;
    int rc = apply_flags(o, argc, argv, msg, cap);
    if (rc != 0)
        return rc;
    if ((rc = check_together(o, msg, cap)) != 0)
        return rc;
    derive(o);
    return 0;
}

void cmd_server_config_print(const server_opts *o, FILE *f)
{
    char value[4200], name[160];
    for (size_t i = 0; i < o->table.n; i++) {
        const cm_cfg_key *k = &o->table.keys[i];
        cm_cfg_format(&o->table, (int)i, value, sizeof(value));
        snprintf(name, sizeof(name), "%s.%s", k->section, k->key);
        fprintf(f, "%-28s = %-24s  # %s\n", name, value, o->src[i].where);
    }
}

void cmd_server_config_doc(FILE *f)
{
    char row[1024];
    fprintf(f, "| key | accepts | default | SIGHUP | meaning |\n| --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < CM_ARRAY_LEN(keys); i++) {
        cm_cfg_doc_row(&keys[i], row, sizeof(row));
        fprintf(f, "%s\n", row);
    }
}
