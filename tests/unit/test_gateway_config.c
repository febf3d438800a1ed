/*
 * test_gateway_config.c - the configuration table of `cairn server` (cmd/server_config.c): its
 * defaults load and match the modules' own defaults, every key refuses a bad value with the file's
 * line, an environment variable overrides the file and a flag overrides both, the variable names
 * are unique, docs/configuration.md holds every row of the table word for word (so no key is
 * added without its doc), and [cluster] tls_mode's checks against the TLS files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "cu_main.h"
#include "server_config.h"

static server_opts *load(int argc, char **argv, char *msg, size_t cap, int *rc)
{
    server_opts *o = malloc(sizeof(*o));
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    *rc = cmd_server_config_load(o, argc, argv, msg, cap);
    return o;
}

static const char *write_conf(const char *text)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/cairn.conf", cu_tmpdir());
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* The table's defaults are the ones the modules had before it (and still set themselves). */
static void test_defaults_match_modules(void)
{
    char msg[1024];
    int rc;
    char *argv[] = {"server", NULL};
    server_opts *o = load(1, argv, msg, sizeof(msg), &rc);
    gw_config g;
    net_config n;
    ob_scrub_config s;
    gw_lc_worker_config lc;
    gw_lc_worker_config_defaults(&lc);
    gw_config_defaults(&g);
    net_config_defaults(&n);
    ob_scrub_config_defaults(&s);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(o->gw.workers, g.workers);
    CU_ASSERT_EQUAL(o->gw.ndrives, g.ndrives);
    CU_ASSERT_EQUAL(o->gw.k, g.k);
    CU_ASSERT_EQUAL(o->gw.m, g.m);
    CU_ASSERT_EQUAL(o->gw.cell_size, g.cell_size);
    CU_ASSERT_EQUAL(o->gw.inline_threshold, g.inline_threshold);
    CU_ASSERT_EQUAL(o->gw.meta_copies, g.meta_copies);
    CU_ASSERT_EQUAL(o->gw.compression, g.compression);
    CU_ASSERT_EQUAL(o->gw.compress_level, g.compress_level);
    CU_ASSERT_EQUAL(o->gw.post_fields_timeout_ms, g.post_fields_timeout_ms);
    CU_ASSERT_EQUAL(o->gw.sigv2_off, g.sigv2_off);
    CU_ASSERT_STRING_EQUAL(o->gw.metrics_allow, g.metrics_allow);
    CU_ASSERT_EQUAL(o->net.idle_timeout_ms, n.idle_timeout_ms);
    CU_ASSERT_EQUAL(o->net.header_timeout_ms, n.header_timeout_ms);
    CU_ASSERT_EQUAL(o->net.threads, n.threads);
    CU_ASSERT_EQUAL(o->lc.interval_s, lc.interval_s);
    CU_ASSERT_EQUAL(o->lc.day_s, lc.day_s);
    CU_ASSERT_DOUBLE_EQUAL(o->lc.rate, lc.rate, 1e-9);
    CU_ASSERT_EQUAL(o->net.port, n.port);
    CU_ASSERT_STRING_EQUAL(o->net.host, n.host);
    CU_ASSERT_DOUBLE_EQUAL(o->scrub.rate_mb, s.rate_mb, 1e-9);
    CU_ASSERT_EQUAL(o->scrub.interval_s, s.interval_s);
    CU_ASSERT_STRING_EQUAL(o->gw.region, g.region);
    CU_ASSERT_STRING_EQUAL(o->gw.domain, g.domain);
    CU_ASSERT_STRING_EQUAL(o->gw.data_dir, g.data_dir);
    free(o);
}

/* Each key, given the engine's bad value on line 3 of a file, is refused naming line and key. */
static void test_bad_value_for_every_key(void)
{
    size_t n;
    const cm_cfg_key *keys = cmd_server_keys(&n);
    CU_ASSERT_TRUE_FATAL(n <= SERVER_NKEYS_MAX);
    char *text = malloc(16384), *bad = malloc(8192), msg[1024], want[640];
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
    for (size_t i = 0; i < n; i++) {
        cm_cfg_bad_value(&keys[i], bad, 8192);
        snprintf(text, 16384, "# line 1\n[%s]\n%s = %s\n", keys[i].section, keys[i].key, bad);
        const char *path = write_conf(text);
        char *argv[] = {"server", "--config", (char *)path, NULL};
        int rc;
        server_opts *o = load(3, argv, msg, sizeof(msg), &rc);
        CU_ASSERT_EQUAL(rc, 2);
        snprintf(want, sizeof(want), "%s:3: ", path);
        int named = strstr(msg, want) != NULL;
        /* a line over the parser's 4 KiB limit is refused as such, before the key is read */
        snprintf(want, sizeof(want), "%s.%s", keys[i].section, keys[i].key);
        named = named && (strstr(msg, want) || strstr(msg, "line too long"));
        CU_ASSERT_TRUE(named);
        if (rc != 2 || !named)
            fprintf(stderr, "%s.%s = '%.40s': rc %d, '%s'\n", keys[i].section, keys[i].key, bad, rc,
                    msg);
        free(o);
    }
    free(text);
    free(bad);
}

static void test_env_and_flags_precedence(void)
{
    char msg[1024];
    int rc;
    const char *path = write_conf("[server]\nlog_level = error\nworkers = 7\n");
    char *argv[] = {"server", "--config", (char *)path, "--log-level", "warn", NULL};
    setenv("CAIRN_SERVER_LOG_LEVEL", "debug", 1);
    setenv("CAIRN_SERVER_WORKERS", "9", 1);
    server_opts *o = load(5, argv, msg, sizeof(msg), &rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(o->gw.workers, 9); /* environment over file */
    CU_ASSERT_EQUAL(o->log_level, 1);  /* flag over environment: warn */
    int i = cm_cfg_find(&o->table, "server", "workers");
    CU_ASSERT_STRING_EQUAL(o->src[i].where, "env CAIRN_SERVER_WORKERS");
    i = cm_cfg_find(&o->table, "server", "log_level");
    CU_ASSERT_STRING_EQUAL(o->src[i].where, "flag --log-level");
    free(o);
    setenv("CAIRN_SERVER_WORKERS", "0", 1);
    o = load(5, argv, msg, sizeof(msg), &rc);
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "CAIRN_SERVER_WORKERS: invalid value '0'"));
    free(o);
    unsetenv("CAIRN_SERVER_WORKERS");
    unsetenv("CAIRN_SERVER_LOG_LEVEL");
}

static void test_env_names_unique(void)
{
    size_t n;
    const cm_cfg_key *keys = cmd_server_keys(&n);
    char a[128], b[128];
    for (size_t i = 0; i < n; i++) {
        cm_cfg_env_name(&keys[i], a, sizeof(a));
        /* the variables that are not keys keep their meaning */
        CU_ASSERT_STRING_NOT_EQUAL(a, "CAIRN_ACCESS_KEY");
        CU_ASSERT_STRING_NOT_EQUAL(a, "CAIRN_SECRET_KEY");
        CU_ASSERT_STRING_NOT_EQUAL(a, "CAIRN_RPC_SECRET");
        CU_ASSERT_STRING_NOT_EQUAL(a, "CAIRN_MASTER_KEY");
        for (size_t j = i + 1; j < n; j++) {
            cm_cfg_env_name(&keys[j], b, sizeof(b));
            CU_ASSERT_STRING_NOT_EQUAL(a, b);
        }
    }
}

/* docs/configuration.md holds `cairn server --config-doc`'s row of every key. */
static void test_doc_has_every_key(void)
{
    char path[1024], row[1024];
    snprintf(path, sizeof(path), "%s/docs/configuration.md", CAIRN_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char *doc = calloc(1, 1 << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    size_t len = fread(doc, 1, (1 << 20) - 1, f);
    fclose(f);
    doc[len] = '\0';
    size_t n;
    const cm_cfg_key *keys = cmd_server_keys(&n);
    for (size_t i = 0; i < n; i++) {
        cm_cfg_doc_row(&keys[i], row, sizeof(row));
        CU_ASSERT_PTR_NOT_NULL(strstr(doc, row));
        if (!strstr(doc, row))
            fprintf(stderr, "docs/configuration.md lacks (cairn server --config-doc):\n%s\n", row);
    }
    free(doc);
}

/* [cluster] tls_mode against the three files: text appended to a node's [cluster] section. */
static int tls_mode_load(const char *extra, int *mode, char *msg, size_t cap)
{
    char text[2048];
    int rc;
    snprintf(text, sizeof(text),
             "[cluster]\netcd = http://127.0.0.1:2379\nid = c\nnode_id = n1\n"
             "rpc_listen = 127.0.0.1:7001\n%s",
             extra);
    char *argv[] = {"server", "--config", (char *)write_conf(text), NULL};
    server_opts *o = load(3, argv, msg, cap, &rc);
    *mode = o->rpc_tls;
    free(o);
    return rc;
}

static void test_rpc_tls_mode(void)
{
    static const char files[] = "tls_ca = ca.pem\ntls_cert = n1.pem\ntls_key = n1.key\n";
    static const struct {
        const char *mode;
        int with_files, rc, eff;
    } cases[] = {
        {"", 0, 0, CMD_RPC_TLS_OFF},          /* auto: as before the key, plain */
        {"", 1, 0, CMD_RPC_TLS_REQUIRE},      /* auto: as before the key, TLS only */
        {"off", 0, 0, CMD_RPC_TLS_OFF},       /* the start of the switch */
        {"off", 1, 0, CMD_RPC_TLS_OFF},       /* the end of the way back: files may stay */
        {"accept", 1, 0, CMD_RPC_TLS_ACCEPT}, /* the steps between */
        {"on", 1, 0, CMD_RPC_TLS_ON},
        {"require", 1, 0, CMD_RPC_TLS_REQUIRE},
        {"accept", 0, 2, 0}, /* every TLS mode needs the files */
        {"on", 0, 2, 0},
        {"require", 0, 2, 0},
    };
    char extra[512], msg[1024];
    int eff = -1;
    for (size_t i = 0; i < CM_ARRAY_LEN(cases); i++) {
        snprintf(extra, sizeof(extra), "%s%s%s%s", cases[i].mode[0] ? "tls_mode = " : "",
                 cases[i].mode, cases[i].mode[0] ? "\n" : "", cases[i].with_files ? files : "");
        int rc = tls_mode_load(extra, &eff, msg, sizeof(msg));
        CU_ASSERT_EQUAL(rc, cases[i].rc);
        if (rc == 0)
            CU_ASSERT_EQUAL(eff, cases[i].eff);
        if (rc != cases[i].rc || (rc == 0 && eff != cases[i].eff))
            fprintf(stderr, "tls_mode '%s' files %d: rc %d mode %d (%s)\n", cases[i].mode,
                    cases[i].with_files, rc, eff, msg);
    }
    /* the refusal names the mode and what it lacks */
    CU_ASSERT_EQUAL(tls_mode_load("tls_mode = accept\n", &eff, msg, sizeof(msg)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "tls_mode = accept needs tls_ca, tls_cert and tls_key"));
    /* a word outside the list is refused naming the key */
    CU_ASSERT_EQUAL(tls_mode_load("tls_mode = yes\n", &eff, msg, sizeof(msg)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "cluster.tls_mode"));
    /* a mode on a server that is no cluster node */
    char *argv[] = {"server", "--config", (char *)write_conf("[cluster]\ntls_mode = off\n"), NULL};
    int rc;
    free(load(3, argv, msg, sizeof(msg), &rc));
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "need a [cluster] section"));
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"defaults_match_modules", test_defaults_match_modules},
        {"bad_value_for_every_key", test_bad_value_for_every_key},
        {"env_and_flags_precedence", test_env_and_flags_precedence},
        {"env_names_unique", test_env_names_unique},
        {"doc_has_every_key", test_doc_has_every_key},
        {"rpc_tls_mode", test_rpc_tls_mode},
        {NULL, NULL},
    };
    cu_add_suite("server_config", tests);
}
