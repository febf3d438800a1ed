/*
 * cu_etcd.c - real etcd members for tests (see cu_etcd.h). Ports come from binding port 0 on
 * 127.0.0.1 and closing it again; heartbeat 50 ms and election timeout 500 ms make a 3-member
 * cluster elect a new leader within about a second after a member dies.
 */
#include "cu_etcd.h"

#include <CUnit/CUnit.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cm_util.h"
#include "cu_main.h"

static pid_t started[32]; /* every member ever started and not yet reaped, for the exit hook */

static const char *etcd_bin(void)
{
    const char *b = getenv("CAIRN_ETCD");
    return b && *b ? b : "/usr/bin/etcd";
}

int cu_etcd_available(void)
{
    return access(etcd_bin(), X_OK) == 0;
}

void cu_etcd_missing(void)
{
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        CU_FAIL("etcd not installed (scripts/setup.sh installs etcd-server)");
    } else {
        fprintf(stderr, "\n  SKIP: %s not installed (apt-get install etcd-server)\n", etcd_bin());
    }
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (size_t i = 0; i < CM_ARRAY_LEN(started); i++)
        if (started[i] == pid)
            started[i] = 0;
}

static void kill_all(void)
{
    for (size_t i = 0; i < CM_ARRAY_LEN(started); i++)
        if (started[i] > 0)
            reap(started[i]);
}

int cu_etcd_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int spawn(cu_etcd *e, int i)
{
    char name[8], data[300], log[300], client[64], peer[64], cluster[400] = "", token[64];
    snprintf(name, sizeof(name), "m%d", i);
    snprintf(data, sizeof(data), "%s/%s", e->dir, name);
    snprintf(log, sizeof(log), "%s/%s.log", e->dir, name);
    snprintf(client, sizeof(client), "http://127.0.0.1:%d", e->client_port[i]);
    snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", e->peer_port[i]);
    snprintf(token, sizeof(token), "cairn-test-%d", (int)getpid());
    for (int j = 0; j < e->n; j++) {
        size_t used = strlen(cluster);
        snprintf(cluster + used, sizeof(cluster) - used, "%sm%d=http://127.0.0.1:%d", j ? "," : "",
                 j, e->peer_port[j]);
    }
    pid_t parent = getpid(), pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        if (!freopen(log, "a", stdout) || !freopen(log, "a", stderr))
            _exit(1);
        execl(etcd_bin(), "etcd", "--name", name, "--data-dir", data, "--listen-client-urls",
              client, "--advertise-client-urls", client, "--listen-peer-urls", peer,
              "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
              "--initial-cluster-token", token, "--initial-cluster-state", "new",
              "--heartbeat-interval", "50", "--election-timeout", "500", (char *)NULL);
        _exit(127);
    }
    e->pid[i] = pid;
    for (size_t k = 0; k < CM_ARRAY_LEN(started); k++)
        if (started[k] == 0) {
            started[k] = pid;
            break;
        }
    return 0;
}

/* Wait until member i serves a linearizable read (it has a leader). */
static int wait_ready(cu_etcd *e, int i, int64_t deadline)
{
    co_config cfg = {.endpoints = {e->url[i]}, .n_endpoints = 1, .timeout_ms = 500};
    co_client *c = NULL;
    if (co_client_new(&cfg, &c) != CM_OK)
        return -1;
    int rc = -1;
    while (cm_monotonic_ms() < deadline) {
        co_kv kv;
        cm_err err = co_get(c, "/cu-etcd-ready", &kv, NULL);
        if (err == CM_OK)
            co_kv_release(&kv);
        if (err == CM_OK || err == CM_ERR_NOTFOUND) {
            rc = 0;
            break;
        }
        if (waitpid(e->pid[i], NULL, WNOHANG) == e->pid[i]) {
            e->pid[i] = 0;
            break;
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    co_client_free(c);
    if (rc != 0)
        fprintf(stderr, "etcd member %d not ready (log: %s/m%d.log)\n", i, e->dir, i);
    return rc;
}

int cu_etcd_start(cu_etcd *e, int n)
{
    static int registered, seq;
    if (!registered) {
        atexit(kill_all);
        registered = 1;
    }
    memset(e, 0, sizeof(*e));
    e->n = n;
    snprintf(e->dir, sizeof(e->dir), "%s/etcd%d", cu_tmpdir(), seq++);
    if (mkdir(e->dir, 0700) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        e->client_port[i] = cu_etcd_free_port();
        e->peer_port[i] = cu_etcd_free_port();
        if (e->client_port[i] < 0 || e->peer_port[i] < 0)
            return -1;
        snprintf(e->url[i], sizeof(e->url[i]), "http://127.0.0.1:%d", e->client_port[i]);
    }
    for (int i = 0; i < n; i++)
        if (spawn(e, i) != 0) {
            cu_etcd_stop(e);
            return -1;
        }
    int64_t deadline = cm_monotonic_ms() + 20000;
    for (int i = 0; i < n; i++)
        if (wait_ready(e, i, deadline) != 0) {
            cu_etcd_stop(e);
            return -1;
        }
    return 0;
}

void cu_etcd_kill(cu_etcd *e, int i)
{
    if (e->pid[i] > 0)
        reap(e->pid[i]);
    e->pid[i] = 0;
}

int cu_etcd_restart(cu_etcd *e, int i)
{
    cu_etcd_kill(e, i);
    if (spawn(e, i) != 0)
        return -1;
    return wait_ready(e, i, cm_monotonic_ms() + 20000);
}

void cu_etcd_stop(cu_etcd *e)
{
    for (int i = 0; i < e->n; i++)
        cu_etcd_kill(e, i);
    if (e->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", e->dir);
    }
}

void cu_etcd_config(const cu_etcd *e, int timeout_ms, co_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (int i = 0; i < e->n; i++)
        cfg->endpoints[i] = e->url[i];
    cfg->n_endpoints = e->n;
    cfg->timeout_ms = timeout_ms;
}

int cu_etcd_up(cu_etcd *e, int n, int timeout_ms, co_config *cfg, co_client **c)
{
    if (!cu_etcd_available()) {
        cu_etcd_missing();
        return 0;
    }
    CU_ASSERT_FATAL(cu_etcd_start(e, n) == 0);
    cu_etcd_config(e, timeout_ms, cfg);
    if (c)
        CU_ASSERT_FATAL(co_client_new(cfg, c) == CM_OK);
    return 1;
}
