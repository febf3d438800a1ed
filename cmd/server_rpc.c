/*
 * cmd/server_rpc.c - the node RPC inside `cairn server` in cluster mode (docs/deploy.md): the
 * cluster secret, and an nd_service over the object store's own drives on its own listener.
 *
 * The RPC serves the same bs_store of each drive that the object layer writes (ob_store_blobstore):
 * one process, one open of every drive, both layers on the thread-safe stores. Its net_server has
 * its own port and loops (docs/rpc.md, "Listener") and runs on a thread of its own, since
 * net_server_run occupies its caller; cmd_rpc_stop ends it in the order nd.h requires (stop and
 * join the loops, free the service and its sync workers, then the server).
 *
 * The secret comes from a file or the environment, never from the command line (other users can
 * read a process's arguments); a file others may read is refused rather than trusted.
 */
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_log.h"
#include "nd.h"
#include "ob.h"

#define MOD "rpc"
#define SECRET_MIN 16   /* characters: a shorter cluster secret is a typo, not a secret */
#define SECRET_MAX 4096 /* bytes read from a secret file */

struct cmd_rpc {
    nd_drive drives[ND_MAX_DRIVES];
    nd_service *svc;
    net_server *srv;
    pthread_t thread;
    int running; /* the thread was started */
};

/* The secret's bytes without trailing white space (a file usually ends with a newline). */
static size_t trim_len(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n;
}

static int read_secret_file(const char *path, char *buf, size_t cap, size_t *len)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        fprintf(stderr, "cairn: cannot open [cluster] rpc_secret_file %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "cairn: [cluster] rpc_secret_file %s is not a regular file\n", path);
        close(fd);
        return -1;
    }
    if (sb.st_mode & S_IROTH) {
        fprintf(stderr,
                "cairn: [cluster] rpc_secret_file %s is readable by every user (mode %04o): "
                "refusing it; chmod 600 it (or 640 for a group)\n",
                path, (unsigned)(sb.st_mode & 07777));
        close(fd);
        return -1;
    }
    ssize_t n = read(fd, buf, cap);
    close(fd);
    if (n < 0) {
        fprintf(stderr, "cairn: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    if ((size_t)n == cap) {
        fprintf(stderr, "cairn: %s is too long for a cluster secret (%zu bytes at most)\n", path,
                cap - 1);
        return -1;
    }
    *len = trim_len(buf, (size_t)n);
    return 0;
}

int cmd_rpc_secret_load(const char *file, char **out, size_t *out_len)
{
    char buf[SECRET_MAX];
    size_t len = 0;
    const char *from = file && file[0] ? file : "CAIRN_RPC_SECRET";
    *out = NULL;
    if (file && file[0]) {
        if (read_secret_file(file, buf, sizeof(buf), &len) != 0)
            return -1;
    } else {
        const char *env = getenv("CAIRN_RPC_SECRET");
        if (!env || !env[0]) {
            fprintf(stderr, "cairn: cluster mode needs the cluster secret: set CAIRN_RPC_SECRET "
                            "or [cluster] rpc_secret_file\n");
            return -1;
        }
        len = trim_len(env, strlen(env));
        if (len >= sizeof(buf))
            len = sizeof(buf) - 1;
        memcpy(buf, env, len);
    }
    if (len < SECRET_MIN) {
        fprintf(stderr,
                "cairn: the cluster secret from %s is too short (%zu characters, at least "
                "%d)\n",
                from, len, SECRET_MIN);
        explicit_bzero(buf, sizeof(buf));
        return -1;
    }
    if (!(*out = malloc(len + 1))) {
        explicit_bzero(buf, sizeof(buf));
        return -1;
    }
    memcpy(*out, buf, len);
    (*out)[len] = '\0';
    *out_len = len;
    explicit_bzero(buf, sizeof(buf));
    return 0;
}

static void *rpc_thread(void *arg)
{
    cmd_rpc *r = arg;
    if (net_server_run(r->srv) != CM_OK)
        CM_ERROR(MOD, "the node RPC's loops ended with an error");
    return NULL;
}

int cmd_rpc_start(const cmd_rpc_config *cfg, struct ob_store *st, cmd_rpc **out)
{
    net_config nc;
    cmd_rpc *r = calloc(1, sizeof(*r));
    int nd = ob_store_ndrives(st);
    *out = NULL;
    if (!r || nd > ND_MAX_DRIVES) {
        free(r);
        return -1;
    }
    for (int d = 0; d < nd; d++) {
        r->drives[d].path = ob_store_drive_dir(st, d);
        r->drives[d].bs = ob_store_blobstore(st, d); /* NULL: offline, and answered as such */
    }
    nd_service_config sc = {.node_id = cfg->node_id,
                            .secret = cfg->secret,
                            .secret_len = cfg->secret_len,
                            .drives = r->drives,
                            .ndrives = nd,
                            .sync_threads =
                                cfg->md ? 16 : 0, /* chunk syncs, hints, scans (not merges) */
                            .md = cfg->md,
                            .clock = cfg->clock,
                            .epoch = cfg->epoch,
                            .cond = cfg->cond,
                            .cond_arg = cfg->cond_arg};
    net_config_defaults(&nc);
    nc.host = cfg->host;
    nc.port = cfg->port;
    nc.threads = cfg->threads;
    nc.tls = cfg->tls;
    nc.tls_plain_too = cfg->tls_plain_too;
    cm_err e = nd_service_new(&sc, &r->svc);
    if (e != CM_OK) {
        fprintf(stderr, "cairn: cannot start the node RPC as node '%s': %s\n", cfg->node_id,
                cm_err_str(e));
        goto fail;
    }
    if ((e = net_server_new(&nc, &nd_service_handler, r->svc, &r->srv)) != CM_OK) {
        fprintf(stderr, "cairn: cannot listen for the node RPC on %s:%d: %s\n", cfg->host,
                cfg->port, cmd_listen_error(e));
        goto fail;
    }
    if (pthread_create(&r->thread, NULL, rpc_thread, r) != 0) {
        fprintf(stderr, "cairn: cannot start the node RPC thread\n");
        goto fail;
    }
    r->running = 1;
    CM_INFO(MOD, "node RPC of %s on %s:%d over %d drives, %s", cfg->node_id, cfg->host,
            net_server_port(r->srv), nd,
            !cfg->tls            ? "plain"
            : cfg->tls_plain_too ? "TLS and plain callers (tls_mode accept or on)"
                                 : "TLS only");
    *out = r;
    return 0;
fail:
    cmd_rpc_stop(r, 0);
    return -1;
}

int cmd_rpc_port(const cmd_rpc *r)
{
    return net_server_port(r->srv);
}

void cmd_rpc_counts(cmd_rpc *r, uint64_t *requests, uint64_t *auth_refused)
{
    nd_service_stats s;
    nd_service_get_stats(r->svc, &s);
    *requests = s.requests;
    *auth_refused = s.auth_refused;
}

void cmd_rpc_stop(cmd_rpc *r, int grace_ms)
{
    if (!r)
        return;
    if (r->running) {
        net_server_stop(r->srv, grace_ms);
        pthread_join(r->thread, NULL);
    }
    nd_service_free(r->svc); /* before the server: its workers answer on the server's loops */
    net_server_free(r->srv);
    free(r);
}

const char *cmd_listen_error(cm_err e)
{
    return e == CM_ERR_EXISTS ? "the port is in use by another process" : cm_err_str(e);
}
