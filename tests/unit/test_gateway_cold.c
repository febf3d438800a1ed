/*
 * test_gateway_cold.c - a single node's GET never waits on a disk on its event loop: a stripe the
 * page cache does not hold is read by a worker (gw_object.c get_cold_work), so a drive that does
 * not answer holds up only the GETs that need it.
 *
 * A real gateway with one event loop serves on a loopback port; its drives' reads go through a
 * gate (cu_gate.h), which also makes every loop read miss (a store on a test's I/O table never
 * takes the page-cache path: bs_read_cached). With the gate closed, a GET of a striped body waits
 * at the gate on a worker while the same loop answers a GET of an inline body and /health/ready,
 * and so does a GET of an encrypted body (SSE-S3, the bucket's default: gw_sse_read_cached);
 * once the gate opens, both bodies (three stripes) and a range arrive intact, and the reads are
 * counted as handed to a worker (ob_store_read_counts).
 */
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cm_util.h"
#include "cu_data.h"
#include "cu_gate.h"
#include "cu_main.h"
#include "cu_s3.h"
#include "gw.h"
#include "md.h"
#include "net.h"

#define AK "COLDTESTAK"
#define SK "cold-test-secret"
#define REGION "us-east-1"
#define BIG 1200000 /* three stripes of 2 x 256 KiB */
#define SMALL 100   /* inline */

static cu_gated_dir gated = {.gate = CU_GATE_INIT};

static ssize_t gated_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    cu_gated_dir *s = ctx;
    if (fd >= 0 && fd < 4096 && s->held_fd[fd])
        cu_gate_pass(&s->gate);
    return pread(fd, buf, len, off);
}

static void *run_server(void *arg)
{
    net_server_run(arg);
    return NULL;
}

/* A socket connected to 127.0.0.1:port whose reads give up after 20 s. */
static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    return fd;
}

/* Send a signed request (extra: more header lines, or NULL) with len body bytes; the socket. */
static int send_req(int port, const char *method, const char *target, const char *extra,
                    const uint8_t *body, size_t len)
{
    char head[2048];
    cu_s3_req q = {method, target, port, REGION, AK, SK, NULL, len, -1, extra};
    int n = cu_s3_head(&q, head, sizeof(head));
    CU_ASSERT_FATAL(n > 0);
    int fd = dial(port);
    CU_ASSERT_FATAL(write(fd, head, (size_t)n) == n);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, body + off, len - off);
        CU_ASSERT_FATAL(w > 0);
        off += (size_t)w;
    }
    return fd;
}

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

/* The answer on fd (closed): its status; *body points into out at the body, *blen its length. */
static int answer(int fd, char *out, size_t cap, const uint8_t **body, size_t *blen)
{
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(fd, out + got, cap - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    out[got] = '\0'; /* nothing read (timed out): no status */
    int status = 0;
    sscanf(out, "HTTP/1.1 %d", &status);
    const char *end = memmem(out, got, "\r\n\r\n", 4);
    *body = end ? (const uint8_t *)end + 4 : NULL;
    *blen = end ? got - (size_t)(end + 4 - out) : 0;
    return status;
}

static int pattern_ok(const uint8_t *b, uint32_t tag, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (b[i] != cu_pattern(0, tag, off + i))
            return 0;
    return 1;
}

static void test_cold_read_off_loop(void)
{
    char dir[512];
    size_t cap = BIG + 8192;
    char *out = malloc(cap);
    uint8_t *big = malloc(BIG), small[SMALL];
    CU_ASSERT_FATAL(out && big);
    for (size_t i = 0; i < BIG; i++)
        big[i] = cu_pattern(0, 1, i);
    for (size_t i = 0; i < SMALL; i++)
        small[i] = cu_pattern(0, 2, i);

    snprintf(dir, sizeof(dir), "%s/gw", cu_tmpdir());
    snprintf(gated.dir, sizeof(gated.dir), "%s/drive", dir); /* drive0.., not meta */
    bs_io io = bs_io_posix;
    io.open = cu_gated_open;
    io.pread = gated_pread;
    io.ctx = &gated;
    gw_config gc;
    CU_ASSERT_FATAL(cu_gw_config(&gc, dir, REGION, AK, SK) == 0);
    gc.ndrives = 3, gc.k = 2, gc.m = 1;
    gc.io = &io;
    gw *g = NULL;
    CU_ASSERT_EQUAL_FATAL(gw_new(&gc, &g), CM_OK);
    md_bucket b = {.name = "bkt", .created_ms = 1, .owner = AK};
    md_bucket enc = {.name = "enc", .created_ms = 1, .owner = AK, .sse_default = MD_SSE_S3};
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(gw_meta_store(g), &b), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(gw_meta_store(g), &enc), CM_OK);
    net_config nc;
    net_config_defaults(&nc);
    nc.port = 0;
    nc.threads = 1; /* a loop waiting on the disk would hold every connection */
    net_server *srv = NULL;
    CU_ASSERT_EQUAL_FATAL(net_server_new(&nc, gw_net_handler(), g, &srv), CM_OK);
    gw_set_ready(g, 1);
    pthread_t th;
    pthread_create(&th, NULL, run_server, srv);
    int port = net_server_port(srv);

    const uint8_t *body;
    size_t blen;
    int fd = send_req(port, "PUT", "/bkt/big", NULL, big, BIG);
    CU_ASSERT_EQUAL(answer(fd, out, cap, &body, &blen), 200);
    fd = send_req(port, "PUT", "/bkt/small", NULL, small, SMALL);
    CU_ASSERT_EQUAL(answer(fd, out, cap, &body, &blen), 200);
    fd = send_req(port, "PUT", "/enc/big", NULL, big, BIG); /* sealed: the bucket's default */
    CU_ASSERT_EQUAL(answer(fd, out, cap, &body, &blen), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "x-amz-server-side-encryption: AES256"));

    cu_gate_set(&gated.gate, 1); /* the drives stop answering reads */
    int held = send_req(port, "GET", "/bkt/big", NULL, NULL, 0);
    cu_gate_wait_held(&gated.gate); /* a worker waits at the gate */
    fd = send_req(port, "GET", "/bkt/small", NULL, NULL, 0);
    CU_ASSERT_EQUAL(answer(fd, out, cap, &body, &blen), 200);
    CU_ASSERT(blen == SMALL && pattern_ok(body, 2, 0, SMALL));
    fd = send_req(port, "GET", "/health/ready", NULL, NULL, 0);
    CU_ASSERT_EQUAL(answer(fd, out, cap, &body, &blen), 200);
    int sealed = send_req(port, "GET", "/enc/big", NULL, NULL, 0); /* held too, on a worker */
    fd = send_req(port, "GET", "/bkt/small", NULL, NULL, 0);
    CU_ASSERT_EQUAL(answer(fd, out, cap, &body, &blen), 200);
    CU_ASSERT(!readable(held) && !readable(sealed)); /* the loop answered while both wait */
    cu_gate_set(&gated.gate, 0);
    CU_ASSERT_EQUAL(answer(held, out, cap, &body, &blen), 200);
    CU_ASSERT(blen == BIG && pattern_ok(body, 1, 0, BIG));
    CU_ASSERT_EQUAL(answer(sealed, out, cap, &body, &blen), 200);
    CU_ASSERT(blen == BIG && pattern_ok(body, 1, 0, BIG));

    fd = send_req(port, "GET", "/bkt/big", "Range: bytes=500000-1100009\r\n", NULL, 0);
    CU_ASSERT_EQUAL(answer(fd, out, cap, &body, &blen), 206);
    CU_ASSERT(blen == 600010 && pattern_ok(body, 1, 500000, 600010));

    uint64_t cached = 0, uncached = 0;
    ob_store_read_counts(gw_object_store(g), &cached, &uncached);
    CU_ASSERT_EQUAL(cached, 0);   /* a test's I/O table: never from the page cache */
    CU_ASSERT(uncached >= 6 + 2); /* the plain GET's three stripes, the range's three pieces, and
                                   * the sealed body's pieces */

    net_server_stop(srv, 1000);
    pthread_join(th, NULL);
    gw_quiesce(g);
    net_server_free(srv);
    gw_free(g);
    free(big);
    free(out);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"cold_read_off_loop", test_cold_read_off_loop}, {NULL, NULL}};
    cu_add_suite("gateway_cold", tests);
}
