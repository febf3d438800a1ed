/*
 * cmd/admin.c - `cairn admin`: talk to a running node's admin API (docs/admin.md).
 *
 *   cairn admin scrub  [--endpoint URL] [--data DIR] [--wait]   start a scrub pass (and follow it)
 *   cairn admin status [--endpoint URL] [--data DIR]            summary, durability, drives, scrub,
 *                                                               lifecycle and cluster state
 *   cairn admin status --cluster [--endpoint URL]               every live node's repair pass,
 *                                                               at its S3 endpoint (admin_views.c)
 *   cairn admin repair [--endpoint URL] [--data DIR] [--wait]   a cluster node's repair pass now
 *   cairn admin drives|buckets|layout [--endpoint URL]          tables (admin_views.c)
 *   --json on status, drives, buckets, scrub, repair and layout: one JSON document on stdout
 *   cairn admin object-cells BUCKET KEY [--endpoint URL] [--data DIR]   a body's cells, stat'ed
 *   cairn admin orphans [--delete] [--grace S] [--json]   the orphan sweep (admin_orphans.c)
 *   cairn admin user create|list|disable|enable|delete|key ...  users and keys (docs/users.md);
 *   cairn admin users is user list
 *   cairn admin etcd-check --endpoints URL,...                   etcd members (admin_etcd.c)
 *   cairn admin layout simulate|show|add|remove|drain|discard|apply  layout.c, layout_etcd.c
 *
 * Requests are SigV4-signed (header auth, service s3) with the root credentials:
 * CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY, else DATA/credentials (default ./cairn-data). The HTTP
 * client is a small blocking HTTP/1.1 one: one request per connection ("Connection: close"), the
 * response read to EOF, the whole exchange (connect, TLS handshake, request, answer) bounded by
 * one 30 s deadline (status --cluster: 5 s per other node), so a server that answers a byte at a
 * time cannot hold the command past it (each socket call gets what is left); with an https://
 * endpoint over TLS, the server's
 * certificate verified against --ca-cert FILE (else CAIRN_CA_CERT, else the system's store) and
 * the endpoint's host. Answers are the server's flat JSON, read with a key lookup (numbers and
 * booleans we produce ourselves), or with jansson where structure matters.
 * Progress of --wait goes to stderr: one line rewritten in place on a terminal, a plain line every
 * 2 s otherwise (CI logs). Every failure prints one line and exits with a documented code
 * (admin_fmt.h AM_EXIT_*).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin_int.h"
#include "cm_checksum.h"
#include "cm_config.h"
#include "cm_util.h"
#include "cmd.h"
#include "gw_auth.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- credentials and options ---- */

static int cred_key(void *arg, const char *section, const char *key, const char *value, char *err,
                    size_t errcap)
{
    admin_opts *o = arg;
    (void)err;
    (void)errcap;
    if (section[0] == '\0' && strcmp(key, "access_key") == 0)
        snprintf(o->access_key, sizeof(o->access_key), "%s", value);
    else if (section[0] == '\0' && strcmp(key, "secret_key") == 0)
        snprintf(o->secret_key, sizeof(o->secret_key), "%s", value);
    return 0;
}

static int load_credentials(admin_opts *o, const char *data)
{
    const char *ak = getenv("CAIRN_ACCESS_KEY"), *sk = getenv("CAIRN_SECRET_KEY");
    char path[4200], msg[512] = "";
    if (ak && sk && *ak && *sk) {
        snprintf(o->access_key, sizeof(o->access_key), "%s", ak);
        snprintf(o->secret_key, sizeof(o->secret_key), "%s", sk);
        return 0;
    }
    snprintf(path, sizeof(path), "%s/credentials", data);
    if (cm_config_parse_file(path, cred_key, o, msg, sizeof(msg)) != CM_OK || !o->access_key[0] ||
        !o->secret_key[0]) {
        fprintf(stderr,
                "cairn admin: no credentials: set CAIRN_ACCESS_KEY and CAIRN_SECRET_KEY, or "
                "point --data at the server's data directory (%s)\n",
                msg[0] ? msg : "incomplete credentials file");
        return -1;
    }
    return 0;
}

/* "http[s]://host:port[/]" into host and port. */
int admin_parse_endpoint(admin_opts *o, const char *url)
{
    o->tls = strncmp(url, "https://", 8) == 0;
    const char *p = o->tls ? url + 8 : strncmp(url, "http://", 7) == 0 ? url + 7 : url;
    size_t hl = strcspn(p, ":/");
    const char *port = p[hl] == ':' ? p + hl + 1 : o->tls ? "443" : "80";
    size_t pl = strcspn(port, "/");
    if (hl == 0 || hl >= sizeof(o->host) || pl == 0 || pl >= sizeof(o->port)) {
        fprintf(stderr, "cairn admin: bad endpoint '%s' (want http[s]://HOST:PORT)\n", url);
        return -1;
    }
    memcpy(o->host, p, hl);
    o->host[hl] = '\0';
    memcpy(o->port, port, pl);
    o->port[pl] = '\0';
    return 0;
}

/* ---- signing ---- */

/* Authorization header value for method/path with the headers host, x-amz-date, content hash. */
static int sign(const admin_opts *o, const char *method, const char *path, const char *hosthdr,
                const char *amzdate, char *out, size_t cap)
{
    const char *names[] = {"host", "x-amz-content-sha256", "x-amz-date"};
    const char *values[] = {hosthdr, EMPTY_SHA256, amzdate};
    const char *signed_h = "host;x-amz-content-sha256;x-amz-date";
    gw_auth_request req = {
        .method = method, .target = path, .nheaders = 3, .names = names, .values = values};
    char date[9], scope[128], hhex[65], sts[512], sig[65];
    uint8_t h[32], key[32], mac[32];
    char *creq = gw_sigv4_canonical_request(&req, signed_h, EMPTY_SHA256, 0);
    if (!creq)
        return -1;
    cm_ck_digest(CM_CK_SHA256, creq, strlen(creq), h);
    free(creq);
    cm_hex_encode(h, 32, hhex);
    memcpy(date, amzdate, 8);
    date[8] = '\0';
    snprintf(scope, sizeof(scope), "%s/%s/s3/aws4_request", date, o->region);
    int n = snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", amzdate, scope, hhex);
    gw_sigv4_signing_key(o->secret_key, date, o->region, "s3", key);
    cm_hmac_sha256(key, 32, sts, (size_t)n, mac);
    cm_hex_encode(mac, 32, sig);
    n = snprintf(out, cap, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                 o->access_key, scope, signed_h, sig);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* ---- blocking HTTP/1.1 ---- */

static int timeout_s(const admin_opts *o)
{
    return o->timeout_s > 0 ? o->timeout_s : ADMIN_TIMEOUT_S;
}

static int dial(const admin_opts *o)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(o->host, o->port, &hints, &res), fd = -1;
    if (rc != 0) {
        fprintf(stderr, "cairn admin: %s: %s\n", o->host, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        /* a server that stops answering is an error, not a hang (on Linux the send timeout
         * bounds connect too) */
        struct timeval tv = {timeout_s(o), 0};
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd >= 0) {
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        }
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "cairn admin: cannot connect to %s:%s: %s\n", o->host, o->port,
                strerror(errno));
    return fd;
}

/* One connection: a socket, and over https a verified TLS session on it; the exchange ends by
 * deadline_ms (cm_monotonic_ms). */
typedef struct {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    long long deadline_ms;
} admin_conn;

/* The socket's send and receive timeouts set to what is left of the deadline; -1 when nothing
 * is left (the exchange timed out). */
static int conn_arm(admin_conn *c)
{
    long long left = c->deadline_ms - cm_monotonic_ms();
    if (left <= 0)
        return -1;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return 0;
}

static void conn_close(admin_conn *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
}

/* TLS on c->fd: the certificate must chain to the CA and name the endpoint's host (or IP). */
static int conn_tls(const admin_opts *o, admin_conn *c)
{
    char why[256] = "";
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx || SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION) != 1)
        goto fail;
    if ((o->ca_file ? SSL_CTX_load_verify_locations(c->ctx, o->ca_file, NULL)
                    : SSL_CTX_set_default_verify_paths(c->ctx)) != 1)
        goto fail;
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_set_tlsext_host_name(c->ssl, o->host) != 1 || conn_arm(c) != 0)
        goto fail;
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(vp, o->host) != 1 && SSL_set1_host(c->ssl, o->host) != 1)
        goto fail;
    if (SSL_connect(c->ssl) == 1)
        return 0;
    if (SSL_get_verify_result(c->ssl) != X509_V_OK)
        snprintf(why, sizeof(why), "%s",
                 X509_verify_cert_error_string(SSL_get_verify_result(c->ssl)));
fail:
    if (!why[0])
        ERR_error_string_n(ERR_peek_last_error(), why, sizeof(why));
    fprintf(stderr, "cairn admin: TLS to %s:%s failed: %s%s\n", o->host, o->port, why,
            o->ca_file ? "" : " (--ca-cert FILE names the CA)");
    ERR_clear_error();
    return -1;
}

static int conn_open(const admin_opts *o, admin_conn *c)
{
    memset(c, 0, sizeof(*c));
    c->deadline_ms = cm_monotonic_ms() + 1000ll * timeout_s(o);
    c->fd = dial(o);
    if (c->fd < 0)
        return -1;
    return o->tls ? conn_tls(o, c) : 0;
}

static int send_all(admin_conn *c, const char *p, size_t n)
{
    while (n > 0) {
        if (conn_arm(c) != 0)
            return -1;
        ssize_t w = c->ssl ? SSL_write(c->ssl, p, (int)n) : send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read to EOF and split status line / body: 0, -2 when the deadline passed before the answer
 * ended, -1 for anything else. */
static int read_response(admin_conn *c, http_resp *out)
{
    size_t len = 0, cap = 8192;
    char *buf = malloc(cap);
    int timed_out = 0;
    for (ssize_t r = 1; buf && r > 0;) {
        if (len + 1 >= cap) {
            char *nb = cap < (8u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        r = c->ssl ? SSL_read(c->ssl, buf + len, (int)(cap - len - 1))
                   : recv(c->fd, buf + len, cap - len - 1, 0);
        if (r > 0 && conn_arm(c) != 0) { /* bytes keep coming, but too slowly */
            timed_out = 1;
            break;
        }
        if (r < 0 && errno == EINTR)
            r = 1;
        else if (r > 0)
            len += (size_t)r;
        else
            timed_out = r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    if (!buf)
        return -1;
    if (timed_out) {
        free(buf);
        return -2;
    }
    buf[len] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || !body || len < 12) {
        free(buf);
        return -1;
    }
    out->status = atoi(buf + 9);
    memmove(buf, body + 4, strlen(body + 4) + 1);
    out->body = buf;
    return 0;
}

/* 0 with *out (any HTTP status), or AM_EXIT_UNREACHABLE after a one-line message. */
static int request(const admin_opts *o, const char *method, const char *path, http_resp *out)
{
    char hosthdr[300], amzdate[17], auth[512], head[1400];
    snprintf(hosthdr, sizeof(hosthdr), "%s:%s", o->host, o->port);
    cm_time_amzdate(time(NULL), amzdate);
    if (sign(o, method, path, hosthdr, amzdate, auth, sizeof(auth)) != 0)
        return AM_EXIT_FAIL;
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nx-amz-date: %s\r\n"
                     "x-amz-content-sha256: %s\r\nAuthorization: %s\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n",
                     method, path, hosthdr, amzdate, EMPTY_SHA256, auth);
    admin_conn c;
    if (conn_open(o, &c) != 0) {
        conn_close(&c);
        return AM_EXIT_UNREACHABLE;
    }
    int rc = n > 0 && (size_t)n < sizeof(head) ? send_all(&c, head, (size_t)n) : -1;
    if (rc == 0)
        rc = read_response(&c, out);
    conn_close(&c);
    if (rc == -2)
        fprintf(stderr, "cairn admin: no answer from %s:%s within %d s\n", o->host, o->port,
                timeout_s(o));
    else if (rc != 0)
        fprintf(stderr, "cairn admin: no valid HTTP answer from %s:%s\n", o->host, o->port);
    return rc != 0 ? AM_EXIT_UNREACHABLE : 0;
}

/* ---- reading our JSON ---- */

/* The number after "key": in json (searching from the start), or 0. */
static uint64_t jnum(const char *json, const char *key)
{
    char pat[80];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

static double jdbl(const char *json, const char *key)
{
    char pat[80];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : 0;
}

static int jtrue(const char *json, const char *key)
{
    char pat[80];
    snprintf(pat, sizeof(pat), "\"%s\":true", key);
    return json && strstr(json, pat) != NULL;
}

static const char *jpass(const char *json)
{
    const char *p = strstr(json, "\"pass\":{");
    return p ? p : "";
}

/* ---- output ---- */

static void fmt_time(int64_t ms, char *out, size_t cap)
{
    if (ms <= 0) {
        snprintf(out, cap, "never");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
}

/* The progress of a scrub pass: bytes verified of the estimate, and its counts. */
static void scrub_numbers(const char *js, double *done, double *total, char *extra, size_t cap)
{
    const char *p = jpass(js);
    *done = (double)jnum(p, "bytes");
    *total = (double)jnum(p, "bytes_estimate");
    snprintf(extra, cap, "objects %" PRIu64 "/~%" PRIu64 ", damaged %" PRIu64 ", repaired %" PRIu64,
             jnum(p, "objects"), jnum(p, "objects_estimate"), jnum(p, "damaged"),
             jnum(p, "repaired"));
}

static void scrub_table(const char *js)
{
    const char *p = jpass(js);
    char a[32], b[32], t1[32], t2[32];
    fmt_time((int64_t)jnum(js, "last_start_ms"), t1, sizeof(t1));
    fmt_time((int64_t)jnum(js, "last_end_ms"), t2, sizeof(t2));
    printf("scrub: %s, %" PRIu64 " passes since the server started, rate limit %g MB/s\n",
           jtrue(js, "running") ? "running" : "idle", jnum(js, "passes"), jdbl(js, "rate_mb"));
    printf("last pass: started %s, ended %s\n", t1, t2);
    printf("%-18s %14s %14s\n", "", "last pass", "since start");
    am_bytes(jnum(p, "bytes"), a, sizeof(a));
    am_bytes(jnum(js, "bytes_verified"), b, sizeof(b));
    printf("%-18s %14" PRIu64 " %14" PRIu64 "\n", "objects checked", jnum(p, "objects"),
           jnum(js, "objects_checked"));
    printf("%-18s %14s %14s\n", "bytes verified", a, b);
    printf("%-18s %14" PRIu64 " %14" PRIu64 "\n", "damaged found", jnum(p, "damaged"),
           jnum(js, "damaged_found"));
    printf("%-18s %14" PRIu64 " %14" PRIu64 "\n", "repaired", jnum(p, "repaired"),
           jnum(js, "repaired"));
    printf("%-18s %14" PRIu64 " %14" PRIu64 "\n", "repair failures", jnum(p, "failed"),
           jnum(js, "repair_failed"));
    printf("%-18s %14s %14" PRIu64 "\n", "changed meanwhile", "-", jnum(js, "changed_meanwhile"));
}

/* The version counters of one lifecycle pass (c: its JSON object). */
static void lifecycle_versions_line(const char *label, const char *c)
{
    printf("%s: noncurrent expired %" PRIu64 ", delete markers removed %" PRIu64
           ", refused by lock %" PRIu64 "\n",
           label, jnum(c, "noncurrent_expired"), jnum(c, "markers_removed"),
           jnum(c, "refused_locked"));
}

/* The "lifecycle" member (gateway/gw_lifecycle.c): the worker's pass under way and its last. */
static void lifecycle_lines(const char *body)
{
    const char *js = strstr(body, "\"lifecycle\":{");
    if (!js) {
        printf("lifecycle: not running on this server\n");
        return;
    }
    const char *cur = strstr(js, "\"current\":{"), *last = strstr(js, "\"last\":{");
    const char *b = strstr(js, "\"bucket\":\"");
    char t1[32], t2[32];
    printf("lifecycle: %s, %" PRIu64 " passes since the server started, %g objects/s, "
           "a pass every %" PRIu64 " s, day = %" PRIu64 " s\n",
           jtrue(js, "running") ? "running" : "idle", jnum(js, "passes"), jdbl(js, "rate"),
           jnum(js, "interval_s"), jnum(js, "day_s"));
    if (jtrue(js, "running") && cur) {
        printf("pass under way%s: bucket %.*s (%s), examined %" PRIu64 ", expired %" PRIu64
               ", uploads aborted %" PRIu64 ", errors %" PRIu64 "\n",
               jtrue(js, "resumed") ? " (resumed after a restart)" : "",
               b ? (int)strcspn(b + 10, "\"") : 0, b ? b + 10 : "",
               strstr(js, "\"phase\":\"uploads\"") ? "uploads" : "objects", jnum(cur, "examined"),
               jnum(cur, "expired"), jnum(cur, "aborted"), jnum(cur, "errors"));
        lifecycle_versions_line("  versions", cur);
    }
    fmt_time((int64_t)jnum(last, "start_ms"), t1, sizeof(t1));
    fmt_time((int64_t)jnum(last, "end_ms"), t2, sizeof(t2));
    printf("last pass: started %s, ended %s, examined %" PRIu64 ", expired %" PRIu64
           ", uploads aborted %" PRIu64 ", errors %" PRIu64 "\n",
           t1, t2, jnum(last, "examined"), jnum(last, "expired"), jnum(last, "aborted"),
           jnum(last, "errors"));
    lifecycle_versions_line("  versions", last);
}

/* The "cluster" member of a clustered node's status (cmd/server.c), when there is one. */
static void cluster_line(const char *js)
{
    const char *c = strstr(js, "\"cluster\":{");
    if (!c)
        return;
    printf("cluster: layout epoch %" PRIu64 " (etcd revision %" PRIu64 "), etcd %s, %s; "
           "layouts adopted %" PRIu64 ", rejected %" PRIu64 "\n",
           jnum(c, "layout_epoch"), jnum(c, "layout_revision"),
           jtrue(c, "etcd_connected") ? "connected" : "UNREACHABLE (serving on the last layout)",
           jtrue(c, "registered") ? "registered" : "NOT registered", jnum(c, "layouts_adopted"),
           jnum(c, "layouts_rejected"));
    const char *m = strstr(c, "\"members\":["), *end = m ? strchr(m, ']') : NULL;
    if (jnum(c, "layout_epoch") > 0 && !jtrue(c, "in_layout"))
        printf("this node is NOT in the layout: add it with `cairn admin layout add`\n");
    printf("live members:");
    for (const char *p = m ? m + 11 : NULL; p && p < end; p++) /* after "members":[ */
        if (*p == '"') {
            size_t n = strcspn(p + 1, "\"");
            printf(" %.*s", (int)n, p + 1);
            p += n + 1;
        }
    printf("\n");
    const char *s3 = strstr(c, "\"s3_endpoint\":\"");
    if (s3)
        printf("node RPC: port %" PRIu64 ", %" PRIu64 " requests, %" PRIu64
               " refused (authentication); S3 endpoint %.*s\n",
               jnum(c, "rpc_port"), jnum(c, "rpc_requests"), jnum(c, "rpc_auth_refused"),
               (int)strcspn(s3 + 15, "\""), s3 + 15);
}

/* The "replication" member of a cluster node's status (cmd/cluster.c): its metadata counters. */
static void replication_line(const char *js)
{
    const char *p = strstr(js, "\"replication\":{");
    if (!p)
        return;
    printf("metadata: %" PRIu64 " read repairs; hints %" PRIu64 " written, %" PRIu64
           " delivered, %" PRIu64 " expired, %" PRIu64 " refused; anti-entropy %" PRIu64
           " runs, %" PRIu64 " keys repaired; tombstones collected %" PRIu64 "\n",
           jnum(p, "read_repairs"), jnum(p, "hints_written"), jnum(p, "hints_delivered"),
           jnum(p, "hints_expired"), jnum(p, "hints_refused"), jnum(p, "ae_runs"),
           jnum(p, "ae_repaired"), jnum(p, "tombs_collected"));
}

/*
 * The cluster's nodes as a table and an AZ summary, from the "nodes" of the cluster member (what
 * the server knows from memory: the adopted layout and the last member list its thread read).
 * A node is up while it is registered under its lease; "last seen" is when it was last listed.
 */
static void cluster_nodes(const char *body)
{
    json_t *doc = json_loads(body, 0, NULL), *c = json_object_get(doc, "cluster");
    json_t *nodes = json_object_get(c, "nodes"), *node;
    const char *azs[64];
    int az_up[64] = {0}, az_all[64] = {0}, naz = 0;
    size_t i;
    int64_t now = json_integer_value(json_object_get(c, "now_ms"));
    if (!json_is_array(nodes) || json_array_size(nodes) == 0) {
        json_decref(doc);
        return;
    }
    printf("%-12s %-8s %-22s %-16s %6s  %s\n", "node", "az", "address", "state", "drives",
           "last seen");
    json_array_foreach(nodes, i, node)
    {
        const char *id = json_string_value(json_object_get(node, "id"));
        const char *az = json_string_value(json_object_get(node, "az"));
        const char *addr = json_string_value(json_object_get(node, "addr"));
        const char *ls = json_string_value(json_object_get(node, "layout_state"));
        int live = json_is_true(json_object_get(node, "live"));
        int in_layout = json_is_true(json_object_get(node, "in_layout"));
        char state[48], ago[32];
        snprintf(state, sizeof(state), "%s%s%s", live ? "up" : "DOWN",
                 !in_layout                    ? " (no layout)"
                 : ls && strcmp(ls, "up") != 0 ? ", "
                                               : "",
                 in_layout && ls && strcmp(ls, "up") != 0 ? ls : "");
        am_ago(now, json_integer_value(json_object_get(node, "last_seen_ms")), ago, sizeof(ago));
        printf("%-12s %-8s %-22s %-16s %6lld  %s\n", id ? id : "?", az && az[0] ? az : "-",
               addr && addr[0] ? addr : "-", state,
               (long long)json_integer_value(json_object_get(node, "drives")), ago);
        if (!in_layout || !az || (ls && strcmp(ls, "removed") == 0))
            continue;
        int a = am_name_index(azs, &naz, 64, az);
        if (a >= 0) {
            az_all[a]++;
            az_up[a] += live;
        }
    }
    printf("AZs:");
    for (int a = 0; a < naz; a++)
        printf("%s %s: %d/%d up", a ? "," : "", azs[a], az_up[a], az_all[a]);
    printf("%s\n", naz ? "" : " none in the layout");
    json_t *b = json_object_get(c, "buckets");
    if (b)
        printf("buckets: %lld in the namespace (etcd revision %lld), watch %s\n",
               (long long)json_integer_value(json_object_get(b, "count")),
               (long long)json_integer_value(json_object_get(b, "revision")),
               json_is_true(json_object_get(b, "watch_connected")) ? "connected" : "NOT connected");
    json_decref(doc);
}

/* ---- commands ---- */

/* The text between <tag> and </tag>, or after "tag":" in a JSON answer, into out. */
static void answer_field(const char *body, const char *tag, const char *json_key, char *out,
                         size_t cap)
{
    char pat[64];
    const char *p;
    size_t n = 0;
    snprintf(pat, sizeof(pat), "<%s>", tag);
    if ((p = strstr(body, pat)) != NULL)
        p += strlen(pat), n = strcspn(p, "<");
    else {
        snprintf(pat, sizeof(pat), "\"%s\":\"", json_key);
        if ((p = strstr(body, pat)) != NULL)
            p += strlen(pat), n = strcspn(p, "\"");
    }
    snprintf(out, cap, "%.*s", p ? (int)(n < 300 ? n : 300) : 0, p ? p : "");
}

/* One line for an error answer, and its exit code (docs/admin.md, "Exit codes"). */
static int http_failure(const char *what, const http_resp *r)
{
    char code[128], msg[320];
    answer_field(r->body, "Code", "error", code, sizeof(code));
    answer_field(r->body, "Message", "message", msg, sizeof(msg));
    int rc = am_exit_for_status(r->status);
    fprintf(stderr, "cairn admin: %s: HTTP %d %s%s%s%s\n", what, r->status, code[0] ? code : "",
            msg[0] ? ": " : "", msg,
            rc == AM_EXIT_AUTH ? " (check CAIRN_ACCESS_KEY/CAIRN_SECRET_KEY or --data)" : "");
    return rc != AM_EXIT_OK ? rc : AM_EXIT_SERVER;
}

int admin_request(const admin_opts *o, const char *method, const char *path, http_resp *r)
{
    return request(o, method, path, r);
}

int admin_http_failure(const char *what, const http_resp *r)
{
    return http_failure(what, r);
}

int admin_get_json(const admin_opts *o, const char *path, http_resp *r)
{
    int rc = request(o, "GET", path, r);
    if (rc != 0)
        return rc;
    if (r->status != 200) {
        char what[300];
        snprintf(what, sizeof(what), "GET %.*s", (int)strcspn(path, "?"), path);
        rc = http_failure(what, r);
        free(r->body);
        return rc;
    }
    return 0;
}

/* A background pass to follow (scrub, repair): where its status is, its progress as numbers,
 * how its result prints, and whether it failed some. */
typedef struct {
    const char *path, *label, *unit; /* unit NULL: the amounts are bytes */
    void (*numbers)(const char *js, double *done, double *total, char *extra, size_t cap);
    void (*result)(const char *js);
    int (*failed)(const char *js);
    int poll_ms;  /* a human-facing progress poll */
    int quiet_ms; /* without a terminal, progress at most this often */
} pass_view;

/* One progress line on stderr: rewritten in place on a terminal, a plain line in a log. */
static void show_progress(const pass_view *v, const char *js, double rate, int tty)
{
    double done, total;
    char extra[256], line[512];
    v->numbers(js, &done, &total, extra, sizeof(extra));
    am_progress(line, sizeof(line), v->label, done, total, rate, v->unit == NULL, v->unit);
    fprintf(stderr, "%s%s; %s%s", tty ? "\r" : "", line, extra, tty ? "\033[K" : "\n");
}

/*
 * Poll v->path until its "passes" reaches seq (the pass we started) and nothing runs, showing
 * progress with the rate measured between polls and the ETA it gives; then the result (or with
 * --json the final status document). 0, AM_EXIT_DAMAGE when the pass failed some, or the code of
 * a failed request.
 */
static int follow_pass(const admin_opts *o, const pass_view *v, uint64_t seq)
{
    int tty = isatty(2);
    int64_t t0 = 0, last_print = INT64_MIN / 2;
    double d0 = 0;
    for (;;) {
        http_resp r;
        int rc = admin_get_json(o, v->path, &r);
        if (rc != 0)
            return rc;
        int done = jnum(r.body, "passes") >= seq && !jtrue(r.body, "running");
        int64_t now = cm_monotonic_ms();
        double amount, total, rate = -1;
        char scratch[8];
        v->numbers(r.body, &amount, &total, scratch, sizeof(scratch));
        if (t0 == 0 || amount < d0)
            t0 = now, d0 = amount; /* the first poll, or a new pass */
        else if (now - t0 >= 200)
            rate = (amount - d0) / ((double)(now - t0) / 1e3);
        if (done || tty || now - last_print >= v->quiet_ms) {
            show_progress(v, r.body, rate, tty);
            last_print = now;
        }
        if (done) {
            if (tty)
                fputc('\n', stderr);
            if (o->json) {
                json_t *st = json_loads(r.body, 0, NULL);
                if (!st) {
                    fprintf(stderr, "cairn admin: GET %s: the answer is not JSON\n", v->path);
                    free(r.body);
                    return AM_EXIT_SERVER;
                }
                admin_print_json(json_pack("{s:I,s:o}", "pass", (json_int_t)seq, "status", st));
            } else {
                v->result(r.body);
            }
            int failed = v->failed(r.body);
            free(r.body);
            return failed ? AM_EXIT_DAMAGE : 0;
        }
        free(r.body);
        struct timespec ts = {v->poll_ms / 1000, (long)(v->poll_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Start an answer of POST /admin/scrub or /admin/repair without --wait, as --json asks. */
static void pass_started(const admin_opts *o, const char *what, uint64_t seq, int already)
{
    if (o->json && o->wait)
        return; /* one document: the final status */
    if (o->json)
        admin_print_json(json_pack("{s:s,s:I,s:b}", "operation", what, "pass", (json_int_t)seq,
                                   "already_running", already));
    else if (already)
        printf("a %s pass is already running; following it\n", what);
    else
        printf("%s pass %" PRIu64 " started\n", what, seq);
    fflush(stdout);
}

static int scrub_failed(const char *js)
{
    return jnum(jpass(js), "failed") > 0;
}

static int cmd_scrub(const admin_opts *o)
{
    http_resp r;
    int rc = request(o, "POST", "/admin/scrub", &r);
    if (rc != 0)
        return rc;
    uint64_t seq = jnum(r.body, "pass");
    int status = r.status, already = status == 409 && o->wait;
    if (already) {
        free(r.body);
        if ((rc = admin_get_json(o, "/admin/scrub", &r)) != 0)
            return rc;
        seq = jnum(r.body, "passes") + 1;
    } else if (status != 202) {
        rc = http_failure("POST /admin/scrub", &r);
        free(r.body);
        return rc;
    }
    free(r.body);
    pass_started(o, "scrub", seq, already);
    static const pass_view scrub = {.path = "/admin/scrub",
                                    .label = "scrub",
                                    .numbers = scrub_numbers,
                                    .result = scrub_table,
                                    .failed = scrub_failed,
                                    .poll_ms = 250,
                                    .quiet_ms = 2000};
    return o->wait ? follow_pass(o, &scrub, seq) : 0;
}

static void repair_block(const char *js);

/* The "meta" member: how many metadata copies are healthy, and which failed. */
static void meta_line(const char *body)
{
    const char *m = strstr(body, "\"meta\":{");
    if (!m)
        return;
    printf("metadata: %" PRIu64 " of %" PRIu64 " copies healthy", jnum(m, "copies_healthy"),
           jnum(m, "copies"));
    const char *end = strchr(m, ']');
    for (const char *p = strstr(m, "{\"copy\":"); p && (!end || p < end);
         p = strstr(p + 1, "{\"copy\":")) {
        const char *dir = strstr(p, "\"dir\":\"");
        if (dir && strstr(p, "\"state\":\"failed\"") == strstr(p, "\"state\":\""))
            printf(", %.*s FAILED (rebuilt at the next start)", (int)strcspn(dir + 7, "\""),
                   dir + 7);
    }
    printf("\n");
}

/* The data directory's format stamp: "format: 1 (id ..., stamped by cairn 0.1.0 ...)". */
static void format_line(const char *body)
{
    const char *f = strstr(body, "\"format\":{");
    if (!f)
        return;
    const char *w = strstr(f, "\"written_by\":\""), *c = strstr(f, "\"created\":\"");
    printf("on-disk format: %" PRIu64 " (this server reads up to %" PRIu64
           "), stamped by cairn %.*s at %.*s%s\n",
           jnum(f, "version"), jnum(f, "supported"), w ? (int)strcspn(w + 14, "\"") : 1,
           w ? w + 14 : "?", c ? (int)strcspn(c + 11, "\"") : 1, c ? c + 11 : "?",
           strstr(f, "\"origin\":\"adopted\"") ? " over a directory an older cairn wrote" : "");
}

static void compression_line(const char *body)
{
    const char *z = strstr(body, "\"compression\":{");
    if (!z)
        return;
    char logical[32], stored[32];
    uint64_t lb = jnum(z, "logical_bytes"), sb = jnum(z, "stored_bytes");
    am_bytes(lb, logical, sizeof(logical));
    am_bytes(sb, stored, sizeof(stored));
    const char *mode = strstr(z, "\"mode\":\"");
    printf("compression: %.*s, since start %" PRIu64 " bodies compressed, %s stored in %s (%.0f%% "
           "saved), %" PRIu64 " not compressible\n",
           mode ? (int)strcspn(mode + 8, "\"") : 1, mode ? mode + 8 : "?", jnum(z, "bodies"),
           logical, stored, lb ? 100.0 * (double)(lb - CM_MIN(lb, sb)) / (double)lb : 0.0,
           jnum(z, "skipped"));
    const char *p = strstr(body, "\"scrub\":{");
    p = p ? strstr(p, "\"pass\":{") : NULL;
    if (!p || !strstr(p, "\"compressed_bodies\":"))
        return;
    am_bytes(jnum(p, "compressed_logical_bytes"), logical, sizeof(logical));
    am_bytes(jnum(p, "compressed_stored_bytes"), stored, sizeof(stored));
    printf("compression: the last scrub pass met %" PRIu64 " compressed bodies, %s stored in %s\n",
           jnum(p, "compressed_bodies"), logical, stored);
}

/* The drives of a status document as a table. */
static void status_drives(const char *body)
{
    am_table t;
    static const char *const head[] = {"drive", "state",       "blobs",    "used",
                                       "live",  "reclaimable", "segments", "checksum failures"};
    if (am_table_init(&t, "llrrrrrr", head) != 0)
        return;
    const char *d = strstr(body, "\"drives\":[");
    for (const char *p = d ? strstr(d, "{\"drive\":") : NULL; p; p = strstr(p + 1, "{\"drive\":")) {
        char id[16], blobs[24], used[24], live[24], dead[24], segs[16], bad[24];
        snprintf(id, sizeof(id), "%" PRIu64, jnum(p, "drive"));
        snprintf(blobs, sizeof(blobs), "%" PRIu64, jnum(p, "blobs"));
        am_bytes(jnum(p, "used_bytes"), used, sizeof(used));
        am_bytes(jnum(p, "live_bytes"), live, sizeof(live));
        am_bytes(jnum(p, "reclaimable_bytes"), dead, sizeof(dead));
        snprintf(segs, sizeof(segs), "%" PRIu64, jnum(p, "segments"));
        snprintf(bad, sizeof(bad), "%" PRIu64, jnum(p, "corrupt_found"));
        const char *row[] = {
            id, jtrue(p, "online") ? "online" : "OFFLINE", blobs, used, live, dead, segs, bad};
        am_table_row(&t, row);
    }
    am_table_print(&t, stdout);
    am_table_release(&t);
}

/* The first line of `cairn admin status`: the state in a sentence. */
static void status_summary(const admin_opts *o, const char *body)
{
    const char *ec = strstr(body, "\"erasure\":\"");
    const char *sc = strstr(body, "\"scrub\":{");
    uint64_t used = 0, bad = 0;
    const char *d = strstr(body, "\"drives\":[");
    for (const char *p = d ? strstr(d, "{\"drive\":") : NULL; p; p = strstr(p + 1, "{\"drive\":"))
        used += jnum(p, "used_bytes"), bad += jnum(p, "corrupt_found");
    char u[24], ago[24] = "never", prof[32];
    const char *dur = strstr(body, "\"durability\":{\"k\":"); /* a cluster node's layout */
    if (dur && jnum(dur, "k") > 0)
        snprintf(prof, sizeof(prof), "%" PRIu64 "+%" PRIu64, jnum(dur, "k"), jnum(dur, "m"));
    else
        snprintf(prof, sizeof(prof), "%.*s", ec ? (int)strcspn(ec + 11, "\"") : 1,
                 ec ? ec + 11 : "?");
    am_bytes(used, u, sizeof(u));
    if (sc)
        am_ago(cm_now_ms(), (int64_t)jnum(sc, "last_end_ms"), ago, sizeof(ago));
    printf("cairn at %s:%s: %s; erasure %s; %" PRIu64 "/%" PRIu64 " drives online; %s used; "
           "%" PRIu64 " checksum failures; scrub %s, last pass ended %s\n",
           o->host, o->port, jtrue(body, "ready") ? "ready" : "NOT READY", prof,
           jnum(body, "drives_online"), jnum(body, "drives_total"), u, bad,
           !sc                    ? "off"
           : jtrue(sc, "running") ? "RUNNING"
                                  : "idle",
           ago);
}

static int cmd_status(const admin_opts *o)
{
    http_resp r;
    int rc = admin_get_json(o, "/admin/status", &r);
    if (rc != 0)
        return rc;
    if (o->json) {
        json_t *doc = json_loads(r.body, 0, NULL);
        free(r.body);
        if (!doc) {
            fprintf(stderr, "cairn admin: GET /admin/status: the answer is not JSON\n");
            return AM_EXIT_SERVER;
        }
        admin_status_durability(NULL, doc);
        admin_print_json(doc);
        return 0;
    }
    status_summary(o, r.body);
    admin_status_durability(r.body, NULL);
    status_drives(r.body);
    printf("used: disk space of the segment files; live: data of live blobs; reclaimable: used "
           "space holding no live data\n");
    compression_line(r.body);
    meta_line(r.body);
    format_line(r.body);
    const char *s = strstr(r.body, "\"scrub\":{");
    if (s)
        scrub_table(s);
    else
        printf("scrub: not running on this server\n");
    lifecycle_lines(r.body);
    cluster_line(r.body);
    replication_line(r.body);
    cluster_nodes(r.body);
    repair_block(r.body);
    free(r.body);
    return 0;
}

/* ---- the repair pass of a cluster node (cmd/cluster_repair.c) ---- */

/* The progress of a repair pass: records scanned of the records, and its counts. */
static void repair_numbers(const char *r, double *done, double *total, char *extra, size_t cap)
{
    *done = (double)jnum(r, "scanned");
    *total = (double)jnum(r, "records");
    snprintf(extra, cap,
             "degraded %" PRIu64 ", healed %" PRIu64 ", failed %" PRIu64 ", %.1f MB/s rebuilt",
             jnum(r, "degraded"), jnum(r, "healed"), jnum(r, "failed"), jdbl(r, "mbps"));
}

/* The "repair" member (in /admin/status or /admin/repair) as lines. */
static void repair_block(const char *js)
{
    const char *r = strstr(js, "\"repair\":{");
    if (!r)
        return;
    const char *d = strstr(r, "\"durability\":{");
    const char *why = strstr(r, "\"reason\":\"");
    char b[32], eta[32], full[32], t1[32], t2[32];
    am_bytes(jnum(r, "bytes"), b, sizeof(b));
    am_duration(jdbl(r, "eta_s"), eta, sizeof(eta));
    am_duration(jdbl(r, "full_redundancy_s"), full, sizeof(full));
    fmt_time((int64_t)jnum(r, "start_ms"), t1, sizeof(t1));
    fmt_time((int64_t)jnum(r, "end_ms"), t2, sizeof(t2));
    printf("repair: %s, %" PRIu64 " passes, every %" PRIu64 " s (0 = on events; every cell stat'ed "
           "every %" PRIu64 " s, else layouts only), limit %g MB/s\n",
           jtrue(r, "running") ? "RUNNING" : "idle", jnum(r, "passes"), jnum(r, "interval_s"),
           jnum(r, "full_interval_s"), jdbl(r, "limit_mbps"));
    printf("%-22s started %s, ended %s (run because: %.*s)\n", "last pass", t1, t2,
           why ? (int)strcspn(why + 10, "\"") : 1, why ? why + 10 : "-");
    printf("%-22s %" PRIu64 "/%" PRIu64 " (bodies checked %" PRIu64 ", %" PRIu64
           " of them on their layout alone)\n",
           "records scanned", jnum(r, "scanned"), jnum(r, "records"), jnum(r, "parts"),
           jnum(r, "trusted"));
    printf("%-22s %" PRIu64 " degraded, %" PRIu64 " healed, %" PRIu64 " failed\n", "bodies",
           jnum(r, "degraded"), jnum(r, "healed"), jnum(r, "failed"));
    printf("%-22s %" PRIu64 " (%s)\n", "cells rebuilt/moved", jnum(r, "cells"), b);
    printf("%-22s %.2f MB/s = %.1f%% of the disk (%.0f MB/s measured at start)\n",
           "last pass speed", jdbl(r, "mbps"), 100 * jdbl(r, "disk_share"), jdbl(r, "disk_mbps"));
    printf("%-22s ETA %s; time to full redundancy %s\n", "progress", eta, full);
    if (d && jtrue(d, "known"))
        printf("%-22s %.2f nines/year (AZ outage: %.2f) at %.1f MB/s cluster-wide (%.2f MB/s "
               "per node, %s), %.0f GB per drive: a drive rebuilt in %.2f h; AFR %g%%/year\n",
               "durability", jdbl(d, "nines"), jdbl(d, "az_nines"), jdbl(d, "cluster_mbps"),
               jdbl(d, "mbps_per_node"),
               jtrue(d, "measured") ? "measured" : "CONFIGURED limit, no repair measured yet",
               jdbl(d, "drive_bytes") / 1e9, jdbl(d, "repair_h"), 100 * jdbl(d, "afr"));
    else
        printf("%-22s unknown (no layout or no repair speed)\n", "durability");
}

static int repair_failed(const char *js)
{
    return jnum(js, "failed") > 0;
}

static int repair_now(const admin_opts *o)
{
    http_resp r;
    int rc = request(o, "POST", "/admin/repair", &r);
    if (rc != 0)
        return rc;
    if (r.status != 202) {
        rc = http_failure("POST /admin/repair", &r);
        free(r.body);
        return rc;
    }
    uint64_t seq = jnum(r.body, "pass");
    free(r.body);
    pass_started(o, "repair", seq, 0);
    static const pass_view repair = {.path = "/admin/repair",
                                     .label = "repair",
                                     .unit = "records",
                                     .numbers = repair_numbers,
                                     .result = repair_block,
                                     .failed = repair_failed,
                                     .poll_ms = 500,
                                     .quiet_ms = 2000};
    return o->wait ? follow_pass(o, &repair, seq) : 0;
}

/* RFC 3986 percent-encoding of everything but unreserved characters (the canonical form). */
static void uri_encode(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~')
            out[n++] = (char)ch;
        else
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", ch);
    }
    out[n] = '\0';
}

/* One line per cell: node, drive, state and whether it is at one of the body's homes. */
static int cmd_object_cells(const admin_opts *o, const char *bucket, const char *key)
{
    char eb[200], ek[3200], path[3500];
    http_resp r;
    uri_encode(bucket, eb, sizeof(eb));
    uri_encode(key, ek, sizeof(ek));
    snprintf(path, sizeof(path), "/admin/object-cells?bucket=%s&key=%s", eb, ek);
    int rc = admin_get_json(o, path, &r);
    if (rc != 0)
        return rc;
    json_t *doc = json_loads(r.body, 0, NULL), *parts = json_object_get(doc, "parts"), *p;
    size_t i;
    int bad = !json_is_array(parts);
    json_array_foreach(parts, i, p)
    {
        json_t *cells = json_object_get(p, "cells"), *c;
        size_t j;
        int k = (int)json_integer_value(json_object_get(p, "k"));
        int m = (int)json_integer_value(json_object_get(p, "m"));
        int healthy = (int)json_integer_value(json_object_get(p, "healthy"));
        int home = (int)json_integer_value(json_object_get(p, "at_home"));
        printf("part %lld: %d+%d, %lld bytes, epoch %lld: %d healthy, %d at home\n",
               (long long)json_integer_value(json_object_get(p, "part")), k, m,
               (long long)json_integer_value(json_object_get(p, "size")),
               (long long)json_integer_value(json_object_get(p, "epoch")), healthy, home);
        json_array_foreach(cells, j, c)
        {
            printf("  cell %-3lld %-10s drive %-3lld %-14s %s\n",
                   (long long)json_integer_value(json_object_get(c, "cell")),
                   json_string_value(json_object_get(c, "node")),
                   (long long)json_integer_value(json_object_get(c, "drive")),
                   json_string_value(json_object_get(c, "state")),
                   json_is_true(json_object_get(c, "home")) ? "home" : "NOT HOME");
        }
        bad |= healthy != k + m || home != k + m;
    }
    json_decref(doc);
    free(r.body);
    return bad ? 3 : 0;
}

/* ---- users and keys (gw_users.c; docs/users.md) ---- */

/* The server's {"error","message"} answer on stderr; 1. */
static int user_failed(const http_resp *r)
{
    json_t *doc = json_loads(r->body, 0, NULL);
    const char *msg = json_string_value(json_object_get(doc, "message"));
    const char *code = json_string_value(json_object_get(doc, "error"));
    fprintf(stderr, "cairn admin user: %d %s: %s\n", r->status, code ? code : "error",
            msg ? msg : r->body);
    json_decref(doc);
    return 1;
}

static void user_table(const char *body)
{
    json_t *doc = json_loads(body, 0, NULL), *u, *k;
    size_t i, j;
    printf("%-24s %-9s %-24s %s\n", "USER", "STATUS", "ACCESS KEY", "KEY STATUS");
    json_array_foreach(json_object_get(doc, "users"), i, u)
    {
        const char *name = json_string_value(json_object_get(u, "name"));
        const char *st = json_is_true(json_object_get(u, "disabled")) ? "disabled" : "enabled";
        json_t *keys = json_object_get(u, "keys");
        if (json_array_size(keys) == 0)
            printf("%-24s %-9s %-24s %s\n", name ? name : "?", st, "-", "-");
        json_array_foreach(keys, j, k)
        {
            printf("%-24s %-9s %-24s %s\n", name ? name : "?", st,
                   json_string_value(json_object_get(k, "access_key")),
                   json_is_true(json_object_get(k, "disabled")) ? "disabled" : "enabled");
        }
    }
    json_decref(doc);
}

/*
 * verb NAME, or "key" verb NAME|AK. A create prints user=, access_key= and secret_key= lines
 * (tooling relies on them); list prints a table; the others print nothing. Exit 0, 1 on failure.
 */
static int cmd_user(const admin_opts *o, const char *verb, const char *sub, const char *arg)
{
    char path[512], enc[300], action[32];
    http_resp r = {0};
    int key = strcmp(verb, "key") == 0, rc = 0;
    const char *what = key ? sub : verb;
    if (strcmp(verb, "list") == 0) {
        snprintf(path, sizeof(path), "/admin/users");
    } else {
        if (!what || !arg)
            return 2;
        uri_encode(arg, enc, sizeof(enc));
        snprintf(action, sizeof(action), "%s%s", key ? "key-" : "", what);
        snprintf(path, sizeof(path), "/admin/users?action=%s&%s=%s", action,
                 key && strcmp(what, "create") != 0 ? "access_key" : "name", enc);
    }
    if (request(o, strcmp(verb, "list") == 0 ? "GET" : "POST", path, &r) != 0)
        return 1;
    if (r.status != 200) {
        rc = user_failed(&r);
    } else if (strcmp(verb, "list") == 0) {
        if (o->json)
            printf("%s\n", r.body); /* the admin API's document: {"users": [...]} */
        else
            user_table(r.body);
    } else if (strcmp(what, "create") == 0) {
        json_t *doc = json_loads(r.body, 0, NULL);
        const char *u = json_string_value(json_object_get(doc, "user"));
        const char *ak = json_string_value(json_object_get(doc, "access_key"));
        const char *sk = json_string_value(json_object_get(doc, "secret_key"));
        if (u && ak && sk)
            printf("user=%s\naccess_key=%s\nsecret_key=%s\n", u, ak, sk);
        else
            rc = user_failed(&r);
        json_decref(doc);
    }
    free(r.body);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cairn admin status  [--json] [--endpoint URL] [--data DIR]\n"
            "       cairn admin status --cluster [--json] [--endpoint URL]  (every live node's\n"
            "                                 repair pass, asked at its S3 endpoint)\n"
            "       cairn admin drives  [--json] [--endpoint URL] [--data DIR]\n"
            "       cairn admin buckets [--json] [--endpoint URL] [--data DIR]\n"
            "       cairn admin scrub   [--wait] [--json] [--endpoint URL] [--data DIR]\n"
            "       cairn admin repair  [--wait] [--json] [--endpoint URL] [--data DIR]\n"
            "       cairn admin layout  [--json] [--endpoint URL] [--data DIR]  (as the node "
            "sees it)\n"
            "       cairn admin object-cells BUCKET KEY [--endpoint URL] [--data DIR]\n"
            "       cairn admin orphans [--delete] [--grace S] [--json] [--endpoint URL]  (cells\n"
            "                                 no record names, over the whole cluster)\n"
            "       cairn admin user create|disable|enable|delete NAME [--endpoint URL]\n"
            "       cairn admin user list [--endpoint URL]   (also: cairn admin users)\n"
            "       cairn admin user key create NAME | key disable|enable|delete ACCESS_KEY\n"
            "       cairn admin sse status|rewrap [--wait] [--json] [--endpoint URL]  (master-key\n"
            "                                 rotation: the keys in use, the rewrap pass)\n"
            "       cairn admin layout simulate [...]   (--help for its options)\n"
            "       cairn admin layout show|add|remove|drain|discard|apply [...] --etcd URL,...\n"
            "                                 --cluster ID   (the layout in etcd; --help)\n"
            "       cairn admin etcd-check --endpoints URL[,URL...] [--timeout MS]\n"
            "       cairn admin bucket list|consistency NAME [strong|available] --etcd URL,...\n"
            "                                 --cluster ID   (the buckets in etcd; --help)\n"
            "Endpoint default http://127.0.0.1:9000; an https:// one is verified against\n"
            "--ca-cert FILE (else CAIRN_CA_CERT, else the system's CAs). Credentials:\n"
            "CAIRN_ACCESS_KEY and CAIRN_SECRET_KEY, else DIR/credentials (default ./cairn-data).\n"
            "Exit codes (docs/admin.md): 0 ok, 1 other failure, 2 usage, 3 a scrub/repair pass\n"
            "failed some repairs or object-cells found a cell unhealthy or away from home,\n"
            "4 endpoint unreachable, 5 credentials refused, 6 server error.\n"
            "One request (connect to the end of the answer) may take CAIRN_ADMIN_TIMEOUT seconds\n"
            "(default 30; status --cluster asks each other node for 5).\n");
}

int cmd_admin(int argc, char **argv)
{
    admin_opts o = {0};
    const char *endpoint = "http://127.0.0.1:9000", *data = "./cairn-data";
    snprintf(o.region, sizeof(o.region), "us-east-1");
    o.ca_file =
        getenv("CAIRN_CA_CERT") && *getenv("CAIRN_CA_CERT") ? getenv("CAIRN_CA_CERT") : NULL;
    const char *tmo = getenv("CAIRN_ADMIN_TIMEOUT");
    if (tmo && *tmo) {
        char *end;
        long t = strtol(tmo, &end, 10);
        if (*end || t < 1 || t > 3600) {
            fprintf(stderr,
                    "cairn admin: CAIRN_ADMIN_TIMEOUT must be 1 to 3600 seconds, not "
                    "'%s'\n",
                    tmo);
            return AM_EXIT_USAGE;
        }
        o.timeout_s = (int)t;
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    /* `layout` with a verb: offline or etcd, no endpoint; without one: the node's view */
    int layout_view = strcmp(argv[1], "layout") == 0 &&
                      (argc == 2 || (strncmp(argv[2], "--", 2) == 0 && strcmp(argv[2], "--help")));
    if (strcmp(argv[1], "layout") == 0 && !layout_view)
        return cmd_layout(argc - 1, argv + 1);
    if (strcmp(argv[1], "etcd-check") == 0)
        return cmd_admin_etcd_check(argc - 1, argv + 1);
    if (strcmp(argv[1], "bucket") == 0) /* the bucket namespace in etcd */
        return cmd_admin_bucket(argc - 1, argv + 1);
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0, user = strcmp(argv[1], "user") == 0, sse = strcmp(argv[1], "sse") == 0;
    int users = strcmp(argv[1], "users") == 0; /* the table of `user list` */
    int orphans = strcmp(argv[1], "orphans") == 0, del = 0, whole = 0;
    long long grace = -1;
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if ((strcmp(argv[1], "object-cells") == 0 || user || sse) && argv[i][0] != '-' &&
            npos < (user  ? 3
                    : sse ? 1
                          : 2))
            pos[npos++] = argv[i];
        else if (strcmp(argv[i], "--wait") == 0)
            o.wait = 1;
        else if (orphans && strcmp(argv[i], "--delete") == 0)
            del = 1;
        else if (strcmp(argv[1], "status") == 0 && strcmp(argv[i], "--cluster") == 0)
            whole = 1;
        else if (orphans && strcmp(argv[i], "--grace") == 0 && v && v[0] >= '0' && v[0] <= '9')
            grace = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--json") == 0)
            o.json = 1;
        else if (strcmp(argv[i], "--endpoint") == 0 && v)
            endpoint = argv[++i];
        else if (strcmp(argv[i], "--data") == 0 && v)
            data = argv[++i];
        else if (strcmp(argv[i], "--ca-cert") == 0 && v)
            o.ca_file = argv[++i];
        else if (strcmp(argv[i], "--region") == 0 && v)
            snprintf(o.region, sizeof(o.region), "%s", argv[++i]);
        else {
            fprintf(stderr, "cairn admin: unknown or incomplete argument '%s' (see --help)\n",
                    argv[i]);
            return AM_EXIT_USAGE;
        }
    }
    if (admin_parse_endpoint(&o, endpoint) != 0 || load_credentials(&o, data) != 0)
        return AM_EXIT_FAIL;
    if (strcmp(argv[1], "scrub") == 0)
        return cmd_scrub(&o);
    if (strcmp(argv[1], "status") == 0)
        return whole ? admin_status_cluster(&o) : cmd_status(&o);
    if (strcmp(argv[1], "repair") == 0)
        return repair_now(&o);
    if (strcmp(argv[1], "drives") == 0)
        return admin_drives(&o);
    if (strcmp(argv[1], "buckets") == 0)
        return admin_buckets(&o);
    if (layout_view)
        return admin_layout_view(&o);
    if (orphans)
        return admin_orphans(&o, del, grace);
    if (strcmp(argv[1], "object-cells") == 0 && npos == 2)
        return cmd_object_cells(&o, pos[0], pos[1]);
    if (sse && npos == 1 && (strcmp(pos[0], "rewrap") == 0 || strcmp(pos[0], "status") == 0))
        return admin_sse(&o, strcmp(pos[0], "rewrap") == 0); /* admin_sse.c */
    if (users)
        return cmd_user(&o, "list", NULL, NULL);
    if (user && npos >= 1) {
        int key = strcmp(pos[0], "key") == 0;
        int urc = cmd_user(&o, pos[0], key ? pos[1] : NULL, key ? pos[2] : pos[1]);
        if (urc != 2)
            return urc;
    }
    fprintf(stderr, "cairn admin: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return AM_EXIT_USAGE;
}
