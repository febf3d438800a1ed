/*
 * server_config.h - the options of `cairn server` and the one table of its configuration keys
 * (server_config.c), loaded as defaults < config file < CAIRN_<SECTION>_<KEY> environment <
 * flags. docs/configuration.md is the table's reference (tests/unit/test_gateway_config.c checks
 * that every row is there, word for word).
 */
#ifndef SERVER_CONFIG_H
#define SERVER_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "cm_cfgtab.h"
#include "gw.h"
#include "gw_lc.h"
#include "net.h"
#include "ob.h"
#include "pl.h"

#define SERVER_NKEYS_MAX 96 /* room for the table's rows (a test checks it is enough) */

/*
 * [cluster] tls_mode, in the order of the switch to TLS (docs/rpc.md, "Switching to TLS"): each
 * mode works with its neighbours, so nodes move one step at a time, one node at a time.
 */
enum {
    CMD_RPC_TLS_AUTO,   /* require with tls_ca/tls_cert/tls_key, off without */
    CMD_RPC_TLS_OFF,    /* plain both ways */
    CMD_RPC_TLS_ACCEPT, /* serves TLS and plain (by the first byte), dials plain */
    CMD_RPC_TLS_ON,     /* serves TLS and plain, dials TLS */
    CMD_RPC_TLS_REQUIRE /* TLS only both ways */
};

typedef struct {
    gw_config gw;
    net_config net;
    char listen_str[300]; /* [server] listen, "HOST:PORT" */
    char listen[300];     /* its host (net.host points here) */
    char data[4096];
    char region[64];
    char domain[256];
    char website_domain[256];
    int log_level; /* cm_log_level */
    int sigv2;     /* [server] sigv2: accept Signature Version 2 (gw.sigv2_off = !sigv2) */
    ob_scrub_config scrub;
    char scrub_state[4200];
    gw_lc_worker_config lc;         /* [lifecycle] rate, interval_s, day_s (gateway/gw_lc.h) */
    int stop_grace_ms;              /* in-flight requests' time to finish at a stop */
    char cluster_etcd[1024];        /* [cluster] etcd: "URL,URL,..."; "" = not clustered */
    char cluster_id[PL_NAME_MAX];   /* [cluster] id */
    char node_id[PL_NAME_MAX];      /* [cluster] node_id */
    char cluster_addr[PL_ADDR_MAX]; /* [cluster] addr: registered address; default the RPC's */
    long member_ttl;                /* [cluster] member_ttl_s */
    long gc_grace;                  /* [cluster] gc_grace_s */
    long maint_s;                   /* [cluster] maintenance_s */
    long tomb_grace;                /* [cluster] tombstone_grace_s */
    long hints_max;                 /* [cluster] hints_max */
    long repair_interval;           /* [cluster] repair_interval_s (0 = on events only) */
    long repair_full_interval;      /* [cluster] repair_full_interval_s (0 = every pass full) */
    double repair_mbps;             /* [cluster] repair_mbps (0 = unpaced) */
    char rpc_listen[300];           /* [cluster] rpc_listen "HOST:PORT"; "" = unset */
    char rpc_host[300];             /* its host */
    int rpc_port;
    char rpc_secret_file[4096]; /* [cluster] rpc_secret_file; "" = CAIRN_RPC_SECRET */
    char tls_cert[4096];        /* [server] tls_cert: PEM chain; "" = plain HTTP (docs/tls.md) */
    char tls_key[4096];         /* [server] tls_key: its PEM key, not readable by other users */
    char rpc_tls_ca[4096];      /* [cluster] tls_ca: the CA of every node's certificate; "" = off */
    char rpc_tls_cert[4096];    /* [cluster] tls_cert: this node's RPC certificate chain */
    char rpc_tls_key[4096];     /* [cluster] tls_key: its key */
    int rpc_tls_mode;           /* [cluster] tls_mode: a CMD_RPC_TLS_* as written (auto...) */
    int rpc_tls;                /* the mode in effect: CMD_RPC_TLS_OFF..REQUIRE, never AUTO */
    char master_key_file[4096]; /* [server] master_key_file; "" = CAIRN_MASTER_KEY or DATA.key */
    char metrics_token[257];    /* [metrics] token: a bearer token that may read /metrics */
    char metrics_allow[1024];   /* [metrics] allow: addresses that may read it without one */
    char access_file[4096];     /* [log] access_file: "" off, "stdout", "stderr" or a path */

    const char *config_path; /* --config FILE (borrowed from argv); NULL = none */
    int check_only;          /* --check-config */
    int print_config;        /* --print-config */
    int print_doc;           /* --config-doc */
    cm_cfg_src src[SERVER_NKEYS_MAX];
    cm_cfg table; /* the table bound to this struct (cmd_server_config_load sets it) */
} server_opts;

/* A CMD_RPC_TLS_* as the word of [cluster] tls_mode ("?" for none). */
const char *cmd_rpc_tls_mode_name(int mode);
/* The table; *n receives its length. */
const cm_cfg_key *cmd_server_keys(size_t *n);

/*
 * Fill o from defaults, the --config file, the environment and the flags in argv (argv[0] is the
 * command name), then check the keys together (drives >= data + parity cells, [cluster] keys).
 * Returns 0; 1 for --help (usage printed to stdout); 2 with the reason in msg (naming the file and
 * line, the variable, or the flag).
 */
int cmd_server_config_load(server_opts *o, int argc, char **argv, char *msg, size_t cap);
/* Print the usage of `cairn server`. */
void cmd_server_usage(FILE *f);
/* Every key with its effective value and where it came from. */
void cmd_server_config_print(const server_opts *o, FILE *f);
/* The markdown table of every key (docs/configuration.md). */
void cmd_server_config_doc(FILE *f);

/* "host:port" into host (cap bytes) and *port; 0 or -1. */
int cmd_split_listen(const char *v, char *host, size_t cap, int *port);
/* An empty or any-address host ("0.0.0.0", "::"). */
int cmd_wildcard_host(const char *h);

#endif
