/*
 * test_gateway_cluster_data.c - the gateway's PUT body and GET drain over an object store in
 * cluster mode (gw_server.c, gw_object.c; docs/chunks.md "Calls for event loops"): the event loop
 * never waits on another node.
 *
 * Three nodes run in this process, one per AZ, two drives each (six drives: the 4+2 profile).
 * Node n1 is a real gateway (one event loop) whose object store is put in cluster mode; n2 and n3
 * are bare stores. Each node serves its drives over the node RPC on its own net_server thread.
 * A fault rule "n1>*:delay=..." makes every call from the gateway to the other nodes late, so the
 * writer's window (two stripes) fills and ob_writer_write_some answers CM_AGAIN, and every read
 * waits for remote cells (n1 holds two of the six; the hedge delay is fixed and longer).
 *
 * Cases: a PUT whose body waits for window room completes (plain and aws-chunked), and reads back
 * byte-exact (whole, ranges across stripes, partNumber, HEAD, a two-part multipart object); while
 * the PUT waits and while a slow GET waits for cells, a second connection's request on the same
 * loop is answered at once; a client that vanishes mid-body, and a server stopped while a PUT waits
 * for room (room notice pending when the request is freed), leave nothing behind (run under ASan
 * for leaks and use-after-free). A body whose first piece cannot be read (every other node
 * refuses) is answered 503 ServiceUnavailable before any header is out; its HEAD still answers.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/thread.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "cu_main.h"
#include "cu_nodes.h"
#include "cu_s3.h"
#include "gw.h"
#include "nd.h"
#include "net.h"
#include "ob.h"

#define AK "CLUSTERDATAAK"
#define SK "cluster-data-secret"
#define REGION "us-east-1"
#define NNODES 3
#define NDRIVES 2
#define CELL (64u * 1024)
#define STRIPE (4 * CELL) /* 4+2 on six drives */
#define BODY (6 * STRIPE + 12345)
#define DELAY_MS 400

static const uint8_t secret[] = "cluster-data-rpc-secret";
#define SECRET_LEN (sizeof(secret) - 1)

typedef struct {
    char id[8];
    char dirs[NDRIVES][300];
    ob_store *st; /* n1: the gateway's */
    cu_rpc rpc;
} tnode;

static tnode N[NNODES];
static nd_faults *faults;
static pl_topology *topo;
static gw *G;
static net_server *S3;
static pthread_t s3_th;
static int s3_port;
static uint8_t *body;

static void *serve(void *arg)
{
    net_server_run(arg);
    return NULL;
}

static void threads_on(void)
{
    evthread_use_pthreads();
}

/* The node RPC over node i's drives (its store is open). */
static void rpc_start(tnode *n)
{
    nd_drive drives[NDRIVES];
    for (int d = 0; d < NDRIVES; d++) {
        drives[d].path = ob_store_drive_dir(n->st, d);
        drives[d].bs = ob_store_blobstore(n->st, d);
    }
    cu_rpc_serve(&n->rpc, n->id, secret, SECRET_LEN, drives, NDRIVES);
}

static void gateway_open(void)
{
    char dir[512];
    gw_config gc;
    snprintf(dir, sizeof(dir), "%s/gw", cu_tmpdir());
    CU_ASSERT_FATAL(cu_gw_config(&gc, dir, REGION, AK, SK) == 0);
    gc.ndrives = NDRIVES, gc.k = 1, gc.m = 1; /* the single-node profile: unused here */
    gc.cell_size = CELL;
    gc.workers = 4;
    CU_ASSERT_EQUAL_FATAL(gw_new(&gc, &G), CM_OK);
    N[0].st = gw_object_store(G);
}

static void s3_start(void)
{
    net_config nc;
    net_config_defaults(&nc);
    nc.port = 0;
    nc.threads = 1; /* every connection on one loop: a stalled loop stalls them all */
    CU_ASSERT_EQUAL_FATAL(net_server_new(&nc, gw_net_handler(), G, &S3), CM_OK);
    s3_port = net_server_port(S3);
    gw_set_ready(G, 1);
    pthread_create(&s3_th, NULL, serve, S3);
}

static void s3_stop(void)
{
    net_server_stop(S3, 200);
    pthread_join(s3_th, NULL);
    gw_quiesce(G);
    net_server_free(S3);
}

static void cluster_up(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, threads_on);
    CU_ASSERT_EQUAL_FATAL(nd_faults_new(&faults), CM_OK);
    gateway_open();
    for (int i = 0; i < NNODES; i++) {
        tnode *n = &N[i];
        snprintf(n->id, sizeof(n->id), "n%d", i + 1);
        if (i > 0) {
            const char *dirs[NDRIVES];
            for (int d = 0; d < NDRIVES; d++) {
                snprintf(n->dirs[d], sizeof(n->dirs[d]), "%s/n%d-d%d", cu_tmpdir(), i + 1, d);
                dirs[d] = n->dirs[d];
            }
            ob_store_options o = {1, 1, CELL, NULL, 0, 0, 0};
            CU_ASSERT_EQUAL_FATAL(ob_store_open(dirs, NDRIVES, &o, &n->st), CM_OK);
        }
        rpc_start(n);
    }
    topo = pl_topology_new(3);
    for (int i = 0; i < NNODES; i++) {
        char az[8];
        snprintf(az, sizeof(az), "az%d", i + 1);
        cu_topo_node(topo, N[i].id, N[i].rpc.port, az, NDRIVES);
    }
    for (int i = 0; i < NNODES; i++) {
        ob_cluster_config cc = {0};
        cc.self = N[i].id;
        cc.secret = secret;
        cc.secret_len = SECRET_LEN;
        cc.faults = faults;
        cc.window = 2;
        cc.hedge_ms = 3 * DELAY_MS; /* a read waits for the delayed node's cells */
        cc.io_timeout_ms = 5000;
        CU_ASSERT_EQUAL_FATAL(ob_store_cluster_start(N[i].st, &cc), CM_OK);
        CU_ASSERT_EQUAL_FATAL(ob_store_set_topology(N[i].st, topo), CM_OK);
    }
    s3_start();
}

static void cluster_down(int s3_running)
{
    if (s3_running)
        s3_stop();
    for (int i = 0; i < NNODES; i++)
        cu_rpc_halt(&N[i].rpc, 1000);
    for (int i = 0; i < NNODES; i++)
        cu_rpc_free(&N[i].rpc);
    gw_free(G); /* closes n1's store */
    for (int i = 1; i < NNODES; i++)
        ob_store_close(N[i].st);
    pl_topology_free(topo);
    nd_faults_free(faults);
}

/* ---- the client ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int s3_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s3_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    return fd;
}

/*
 * Send a signed request head; extra: more header lines (may be ""); payload: the
 * x-amz-content-sha256 mode, NULL for UNSIGNED-PAYLOAD, else a streaming mode whose decoded
 * length is BODY.
 */
static void send_head(int fd, const char *method, const char *target, size_t len, const char *extra,
                      const char *payload)
{
    char req[2048];
    cu_s3_req q = {
        method, target, s3_port, REGION, AK, SK, payload, len, payload ? (int64_t)BODY : -1, extra};
    int n = cu_s3_head(&q, req, sizeof(req));
    CU_ASSERT_FATAL(n > 0);
    CU_ASSERT_FATAL(write(fd, req, (size_t)n) == n);
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read the response until the server closes; the status, and the body in *out (malloc'd,
 * NUL-terminated). */
static int read_response(int fd, uint8_t **out, size_t *out_len)
{
    size_t cap = 8u << 20, got = 0;
    char *buf = malloc(cap + 1);
    ssize_t r;
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    while (got < cap && (r = read(fd, buf + got, cap - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    close(fd);
    int status = 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    char *sep = strstr(buf, "\r\n\r\n");
    size_t off = sep ? (size_t)(sep + 4 - buf) : got;
    if (out) {
        *out_len = got - off;
        *out = malloc(*out_len + 1);
        memcpy(*out, buf + off, *out_len);
        (*out)[*out_len] = '\0';
    }
    free(buf);
    return status;
}

/* A request without a body; the status, the response body in *out when out is not NULL. */
static int call(const char *method, const char *target, const char *extra, uint8_t **out,
                size_t *out_len)
{
    int fd = s3_connect();
    send_head(fd, method, target, 0, extra, NULL);
    return read_response(fd, out, out_len);
}

/* A request with the body data[0..len); the status, the response body in *out when not NULL. */
static int request(const char *method, const char *target, const void *data, size_t len,
                   uint8_t **out, size_t *out_len)
{
    int fd = s3_connect();
    send_head(fd, method, target, len, "", NULL);
    if (send_all(fd, data, len) != 0) {
        close(fd);
        return -1;
    }
    return read_response(fd, out, out_len);
}

/* The health check, on its own connection: its status; *ms how long it took. */
static int health(int64_t *ms)
{
    const char req[] = "GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int64_t t0 = now_ms();
    int fd = s3_connect();
    CU_ASSERT_FATAL(write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1));
    int status = read_response(fd, NULL, NULL);
    *ms = now_ms() - t0;
    return status;
}

typedef struct {
    const char *target;
    const char *extra; /* more header lines of a GET */
    size_t len;
    int status;
    int done; /* atomic */
    uint8_t *resp;
    size_t resp_len;
} job;

/* A PUT of body[0..len) (target), or a GET of target when len is 0. */
static void *client_job(void *arg)
{
    job *j = arg;
    int fd = s3_connect();
    send_head(fd, j->len ? "PUT" : "GET", j->target, j->len, j->extra ? j->extra : "", NULL);
    if (j->len && send_all(fd, body, j->len) != 0)
        j->status = -1;
    else
        j->status = read_response(fd, &j->resp, &j->resp_len);
    __atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* While job j runs on the gateway's loop, that loop answers another connection at once. */
static void check_loop_free_during(job *j)
{
    pthread_t th;
    int64_t ms = 0;
    pthread_create(&th, NULL, client_job, j);
    usleep(DELAY_MS * 1000 / 2); /* the job now waits on the other nodes */
    CU_ASSERT_EQUAL(health(&ms), 200);
    int waiting = !__atomic_load_n(&j->done, __ATOMIC_ACQUIRE);
    CU_ASSERT(waiting);
    CU_ASSERT(ms < DELAY_MS / 4);
    if (!waiting || ms >= DELAY_MS / 4)
        printf("\n  health answered in %lld ms, %s %s %s\n", (long long)ms, j->len ? "PUT" : "GET",
               j->target, waiting ? "waiting" : "done");
    pthread_join(th, NULL);
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

/* GET target (with extra headers) and compare with want[0, len). */
static void get_matches(const char *target, const char *extra, const uint8_t *want, size_t len,
                        int status)
{
    uint8_t *resp = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(call("GET", target, extra, &resp, &n), status);
    CU_ASSERT_EQUAL(n, len);
    CU_ASSERT(n == len && memcmp(resp, want, len) == 0);
    free(resp);
}

/* ---- the cases ---- */

/* PUT body as aws-chunked (STREAMING-UNSIGNED-PAYLOAD-TRAILER, 64 KiB chunks); the status. */
static int put_aws_chunked(const char *target)
{
    size_t cap = BODY + BODY / 1024 + 64, n = 0;
    char *wire = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wire);
    for (size_t pos = 0; pos < BODY; pos += 65536) {
        size_t c = CM_MIN((size_t)65536, (size_t)BODY - pos);
        n += (size_t)snprintf(wire + n, cap - n, "%zx\r\n", c);
        memcpy(wire + n, body + pos, c);
        n += c;
        n += (size_t)snprintf(wire + n, cap - n, "\r\n");
    }
    n += (size_t)snprintf(wire + n, cap - n, "0\r\n\r\n");
    int fd = s3_connect();
    send_head(fd, "PUT", target, n, "Content-Encoding: aws-chunked\r\n",
              "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
    int status = send_all(fd, (const uint8_t *)wire, n) == 0 ? read_response(fd, NULL, NULL) : -1;
    free(wire);
    return status;
}

#define MP_PART1 (5u << 20) /* the smallest part but the last */
#define MP_PART2 (300u * 1024 + 7)

/* A multipart object of two parts (each its own cluster layout) reads back whole, by part and
 * by a range across the parts' boundary. */
static void multipart_check(void)
{
    const size_t at[3] = {0, MP_PART1, MP_PART1 + MP_PART2};
    char target[256], xml[512], hex[2][33], range[64];
    uint8_t *mp = malloc(at[2]), *resp = NULL;
    size_t n = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(mp);
    fill(mp, at[2], 13);
    CU_ASSERT_EQUAL_FATAL(call("POST", "/bkt/mp?uploads", "", &resp, &n), 200);
    char *id = strstr((char *)resp, "<UploadId>"), *end = id ? strstr(id, "</UploadId>") : NULL;
    CU_ASSERT_FATAL(id && end);
    *end = '\0';
    id += strlen("<UploadId>");
    for (int i = 0; i < 2; i++) {
        uint8_t d[16];
        snprintf(target, sizeof(target), "/bkt/mp?partNumber=%d&uploadId=%s", i + 1, id);
        CU_ASSERT_EQUAL(request("PUT", target, mp + at[i], at[i + 1] - at[i], NULL, NULL), 200);
        cm_ck_digest(CM_CK_MD5, mp + at[i], at[i + 1] - at[i], d);
        cm_hex_encode(d, 16, hex[i]);
    }
    int xn = snprintf(xml, sizeof(xml),
                      "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"%s\"</ETag>"
                      "</Part><Part><PartNumber>2</PartNumber><ETag>\"%s\"</ETag></Part>"
                      "</CompleteMultipartUpload>",
                      hex[0], hex[1]);
    snprintf(target, sizeof(target), "/bkt/mp?uploadId=%s", id);
    free(resp);
    CU_ASSERT_EQUAL(request("POST", target, xml, (size_t)xn, NULL, NULL), 200);
    get_matches("/bkt/mp", "", mp, at[2], 200);
    get_matches("/bkt/mp?partNumber=2", "", mp + MP_PART1, MP_PART2, 206);
    snprintf(range, sizeof(range), "Range: bytes=%u-%u\r\n", MP_PART1 - 1000, MP_PART1 + 999);
    get_matches("/bkt/mp", range, mp + MP_PART1 - 1000, 2000, 206);
    free(mp);
}

static void test_put_get_loop_free(void)
{
    char range[96];
    cluster_up();
    body = malloc(BODY);
    fill(body, BODY, 9);
    CU_ASSERT_EQUAL(call("PUT", "/bkt", "", NULL, NULL), 200);

    /* A PUT whose writer's window fills: the loop serves the health check meanwhile. */
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n1", "*", ND_FAULT_DELAY, DELAY_MS), CM_OK);
    job put = {.target = "/bkt/big", .len = BODY};
    int64_t t0 = now_ms();
    check_loop_free_during(&put);
    CU_ASSERT_EQUAL(put.status, 200);
    CU_ASSERT(now_ms() - t0 >= 2 * DELAY_MS); /* it did wait on the delay */
    free(put.resp);
    ob_cluster_stats cs;
    ob_store_cluster_stats(N[0].st, &cs);
    CU_ASSERT_EQUAL(cs.bodies, 1);
    CU_ASSERT_EQUAL(cs.bytes_written, BODY);
    CU_ASSERT_EQUAL(cs.epoch, 3);
    /* aws-chunked: decoded bytes the writer did not take wait in the decoder's output. */
    CU_ASSERT_EQUAL(put_aws_chunked("/bkt/chunked"), 200);

    /* A GET waiting for remote cells (on the delay) does not hold the loop either. */
    snprintf(range, sizeof(range), "Range: bytes=%u-%u\r\n", STRIPE - 100, 3 * STRIPE + 99);
    job get = {.target = "/bkt/big", .extra = range};
    check_loop_free_during(&get);
    CU_ASSERT_EQUAL(get.status, 206);
    CU_ASSERT(get.resp_len == 2 * STRIPE + 200 &&
              memcmp(get.resp, body + STRIPE - 100, 2 * STRIPE + 200) == 0);
    free(get.resp);
    nd_fault_clear(faults, NULL, NULL);

    /* Whole, ranges across stripe boundaries and into the short last stripe, HEAD. */
    get_matches("/bkt/big", "", body, BODY, 200);
    get_matches("/bkt/big", range, body + STRIPE - 100, 2 * STRIPE + 200, 206);
    snprintf(range, sizeof(range), "Range: bytes=%u-\r\n", 5 * STRIPE + 5);
    get_matches("/bkt/big", range, body + 5 * STRIPE + 5, BODY - (5 * STRIPE + 5), 206);
    get_matches("/bkt/big?partNumber=1", "", body, BODY, 200);
    get_matches("/bkt/chunked", "", body, BODY, 200);
    uint8_t *resp = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(call("HEAD", "/bkt/big", "", &resp, &n), 200);
    CU_ASSERT_EQUAL(n, 0);
    free(resp);
    ob_store_cluster_stats(N[0].st, &cs);
    CU_ASSERT(cs.reads >= 5);
    multipart_check();

    /* The cells are spread: n2 and n3 hold blobs written by the gateway's node. */
    for (int i = 1; i < NNODES; i++) {
        uint64_t blobs = 0;
        for (int d = 0; d < NDRIVES; d++) {
            ob_drive_stats ds;
            ob_store_drive_stats(N[i].st, d, &ds);
            blobs += ds.blobs;
        }
        CU_ASSERT(blobs >= 1);
    }
    cluster_down(1);
    free(body);
}

/* Start a PUT of BODY bytes and send the first `sent` of them; the socket. */
static int put_partly(const char *target, size_t sent)
{
    int fd = s3_connect();
    struct timeval tv = {2, 0}; /* a stalled send gives up rather than hang the test */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    send_head(fd, "PUT", target, BODY, "", NULL);
    send_all(fd, body, sent);
    return fd;
}

static void test_disconnect_and_stop_while_waiting(void)
{
    int64_t ms;
    cluster_up();
    body = malloc(BODY);
    fill(body, BODY, 11);
    CU_ASSERT_EQUAL(call("PUT", "/bkt", "", NULL, NULL), 200);
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n1", "*", ND_FAULT_DELAY, DELAY_MS), CM_OK);

    /* A client that resets the connection while its body waits for window room. */
    int fd = put_partly("/bkt/gone", 5 * STRIPE);
    usleep(DELAY_MS * 1000 / 2);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    CU_ASSERT_EQUAL(health(&ms), 200);
    usleep(4 * DELAY_MS * 1000); /* room comes, the reset is seen, the request is freed */
    CU_ASSERT_EQUAL(health(&ms), 200);
    CU_ASSERT_EQUAL(call("GET", "/bkt/gone", "", NULL, NULL), 404);

    /* The server stops while a PUT waits for room: the request is freed with its notice
     * pending (cancelled by ob_writer_drop). */
    fd = put_partly("/bkt/stopped", 5 * STRIPE);
    usleep(DELAY_MS * 1000 / 2);
    s3_stop();
    close(fd);
    nd_fault_clear(faults, NULL, NULL);
    cluster_down(0);
    free(body);
}

/*
 * A body whose first piece cannot be read (both other nodes refuse: n1's two cells are fewer
 * than k=4) is answered 503 with an S3 error, not a 200 cut short; a HEAD of it still answers
 * 200 (it reads nothing); a client gone while the first read is in flight cancels it; once the
 * nodes answer again the body streams byte-exact.
 */
static void test_unreadable_first_piece(void)
{
    uint8_t *resp = NULL;
    size_t n = 0;
    int64_t ms;
    cluster_up();
    body = malloc(BODY);
    fill(body, BODY, 17);
    CU_ASSERT_EQUAL(call("PUT", "/bkt", "", NULL, NULL), 200);
    CU_ASSERT_EQUAL(request("PUT", "/bkt/obj", body, BODY, NULL, NULL), 200);

    CU_ASSERT_EQUAL(nd_fault_set(faults, "n1", "*", ND_FAULT_REFUSE, 0), CM_OK);
    CU_ASSERT_EQUAL(call("GET", "/bkt/obj", "", &resp, &n), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)resp, "<Code>ServiceUnavailable</Code>"));
    free(resp);
    char range[64];
    snprintf(range, sizeof(range), "Range: bytes=%u-%u\r\n", STRIPE + 1, 2 * STRIPE);
    CU_ASSERT_EQUAL(call("GET", "/bkt/obj", range, &resp, &n), 503);
    CU_ASSERT_PTR_NOT_NULL(strstr((char *)resp, "<Code>ServiceUnavailable</Code>"));
    free(resp);
    CU_ASSERT_EQUAL(call("HEAD", "/bkt/obj", "", &resp, &n), 200);
    CU_ASSERT_EQUAL(n, 0);
    free(resp);
    nd_fault_clear(faults, NULL, NULL);

    /* The client resets while the first read waits on the delayed nodes. */
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n1", "*", ND_FAULT_DELAY, DELAY_MS), CM_OK);
    int fd = s3_connect();
    send_head(fd, "GET", "/bkt/obj", 0, "", NULL);
    usleep(DELAY_MS * 1000 / 2);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    CU_ASSERT_EQUAL(health(&ms), 200);
    usleep(2 * DELAY_MS * 1000); /* the cancelled read's replies come and are dropped */
    nd_fault_clear(faults, NULL, NULL);

    get_matches("/bkt/obj", "", body, BODY, 200);
    get_matches("/bkt/obj", range, body + STRIPE + 1, STRIPE, 206);
    cluster_down(1);
    free(body);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"put_get_loop_free", test_put_get_loop_free},
        {"disconnect_and_stop_while_waiting", test_disconnect_and_stop_while_waiting},
        {"unreadable_first_piece", test_unreadable_first_piece},
        {NULL, NULL},
    };
    cu_add_suite("gateway_cluster_data", tests);
}
