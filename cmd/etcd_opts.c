/*
 * cmd/etcd_opts.c - the etcd options shared by the admin commands that talk to etcd (`cairn admin
 * layout show|add|...`, layout_etcd.c; `cairn admin bucket`, admin_bucket.c): their defaults
 * from the environment, their parsing, and a client for them. See cmd.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

void cmd_etcd_opts_init(cmd_etcd_opts *o)
{
    const char *env_etcd = getenv("CAIRN_ETCD_ENDPOINTS"), *env_cluster = getenv("CAIRN_CLUSTER");
    o->etcd = env_etcd && *env_etcd ? env_etcd : "http://127.0.0.1:2379";
    o->cluster = env_cluster && *env_cluster ? env_cluster : "default";
    o->timeout_ms = CO_DEFAULT_TIMEOUT_MS;
}

int cmd_etcd_opt(cmd_etcd_opts *o, const char *a, const char *v)
{
    long n;
    if (!strcmp(a, "--etcd"))
        o->etcd = v;
    else if (!strcmp(a, "--cluster"))
        o->cluster = v;
    else if (!strcmp(a, "--timeout") && (n = atol(v)) > 0)
        o->timeout_ms = (int)n;
    else
        return 0;
    return 1;
}

int cmd_etcd_connect(const cmd_etcd_opts *o, const char *me, co_client **out)
{
    co_config cfg;
    char *storage = NULL;
    if (co_config_parse(o->etcd, &cfg, &storage) != CM_OK || cfg.n_endpoints < 1) {
        fprintf(stderr, "%s: bad --etcd '%s': http://HOST:PORT[,http://HOST:PORT...]\n", me,
                o->etcd);
        free(storage);
        return 2;
    }
    cfg.timeout_ms = o->timeout_ms;
    cm_err e = co_client_new(&cfg, out); /* copies the endpoints */
    free(storage);
    if (e != CM_OK)
        fprintf(stderr, "%s: cannot make an etcd client: %s\n", me, cm_err_str(e));
    return e == CM_OK ? 0 : 1;
}
