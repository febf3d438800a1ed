/*
 * nd_env.c - the node RPC tests' fixture (nd_env.h; used by test_node.c and test_node_parts.c):
 * nodes in threads of this process, clients on the test thread's loop, synchronous calls, calls
 * signed by hand, a bit rotted on a drive, and fake peers that never answer, close at once or
 * answer with canned bytes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "cu_main.h"
#include "nd.h"
#include "nd_env.h"

#define SECRET_TEXT "cluster-secret-for-tests"
_Static_assert(sizeof(SECRET_TEXT) == SECRET_LEN + 1, "SECRET_LEN is the length of the secret");
const uint8_t secret[SECRET_LEN + 1] = SECRET_TEXT;

/* nd_sign under the tests' secret */
void sign(const nd_canon *c, char sig[65])
{
    cm_hmac_key k;
    cm_hmac_key_init(&k, secret, SECRET_LEN);
    nd_sign(&k, c, sig);
    cm_hmac_key_release(&k);
}

/* ---- nodes ---- */

static void *node_thread(void *arg)
{
    net_server_run(((tnode *)arg)->srv);
    return NULL;
}

const bs_io *node_io; /* the I/O table of the next nodes' drives (NULL: POSIX) */

/* A node with NDRIVES drives; drive `offline` (or -1) is given without a store; sync_threads as
 * in nd_service_config (0: workers, -1: inline). */
void node_start(tnode *n, const char *id, int offline, int sync_threads)
{
    static int started; /* fresh drives for every node started */
    nd_drive drives[NDRIVES];
    memset(n, 0, sizeof(*n));
    snprintf(n->id, sizeof(n->id), "%s", id);
    for (int d = 0; d < NDRIVES; d++) {
        snprintf(n->dirs[d], sizeof(n->dirs[d]), "%s/%s-%d-d%d", cu_tmpdir(), id, ++started, d);
        bs_options o = {.compact_rate = -1, .io = node_io};
        if (d != offline)
            CU_ASSERT_EQUAL_FATAL(bs_open(n->dirs[d], &o, &n->bs[d]), CM_OK);
        drives[d].path = n->dirs[d];
        drives[d].bs = n->bs[d];
    }
    nd_service_config sc = {.node_id = id,
                            .secret = secret,
                            .secret_len = SECRET_LEN,
                            .drives = drives,
                            .ndrives = NDRIVES,
                            .sync_threads = sync_threads};
    CU_ASSERT_EQUAL_FATAL(nd_service_new(&sc, &n->svc), CM_OK);
    net_config cfg;
    net_config_defaults(&cfg);
    cfg.port = 0;
    cfg.threads = 1;
    cfg.read_high_water = 256 * 1024;
    cfg.write_low_water = 64 * 1024;
    CU_ASSERT_EQUAL_FATAL(net_server_new(&cfg, &nd_service_handler, n->svc, &n->srv), CM_OK);
    n->port = net_server_port(n->srv);
    pthread_create(&n->th, NULL, node_thread, n);
}

void node_stop(tnode *n)
{
    net_server_stop(n->srv, 1000);
    pthread_join(n->th, NULL);
    nd_service_free(n->svc);
    net_server_free(n->srv);
    for (int d = 0; d < NDRIVES; d++)
        bs_close(n->bs[d]);
}

nd_peer peer_of(const tnode *n)
{
    nd_peer p = {n->id, "127.0.0.1", n->port, 0};
    return p;
}

/* ---- the client loop ---- */

void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ((tloop *)arg)->hung = 1;
}

void loop_init(tloop *l, const char *node, nd_faults *faults, int64_t clock_off, const uint8_t *key,
               size_t keylen, int io_timeout_ms)
{
    memset(l, 0, sizeof(*l));
    l->base = event_base_new();
    nd_client_config cc = {0};
    cc.node_id = node;
    cc.secret = key;
    cc.secret_len = keylen;
    cc.faults = faults;
    cc.clock_offset_s = clock_off;
    cc.net.io_timeout_ms = io_timeout_ms;
    cc.net.read_high_water = 256 * 1024;
    cc.net.write_low_water = 64 * 1024;
    cc.net.max_conns = 4;
    CU_ASSERT_EQUAL_FATAL(nd_client_new(l->base, &cc, &l->cl), CM_OK);
}

void loop_default(tloop *l)
{
    loop_init(l, "client", NULL, 0, secret, SECRET_LEN, 2000);
}

/* Run until every pending call ended (or the 10 s guard). */
void loop_run(tloop *l)
{
    struct event *guard = evtimer_new(l->base, guard_cb, l);
    struct timeval tv = {10, 0};
    evtimer_add(guard, &tv);
    while (l->pending > 0 && !l->hung)
        event_base_loop(l->base, EVLOOP_ONCE);
    event_free(guard);
    CU_ASSERT_FALSE(l->hung);
}

void loop_free(tloop *l)
{
    nd_client_free(l->cl);
    event_base_free(l->base);
}

/* ---- call results ---- */

void tres_init(tres *r, tloop *l)
{
    memset(r, 0, sizeof(*r));
    r->l = l;
    r->data = evbuffer_new();
    l->pending++;
}

void tres_release(tres *r)
{
    evbuffer_free(r->data);
}

nd_chunk_ent list_copy[ND_LIST_MAX];

void done_cb(void *arg, const nd_result *res)
{
    tres *r = arg;
    r->done++;
    r->res = *res;
    snprintf(r->msg, sizeof(r->msg), "%s", res->message);
    r->res.message = r->msg;
    if (res->info) {
        r->info = *res->info;
        r->res.info = &r->info;
    }
    if (res->list) { /* valid during the callback only */
        memcpy(list_copy, res->list, res->nlist * sizeof(*res->list));
        r->res.list = list_copy;
    }
    r->ended_ms = cm_monotonic_ms();
    r->l->pending--;
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    nd_op_resume(arg);
}

void data_cb(void *arg, nd_op *op, struct evbuffer *data)
{
    tres *r = arg;
    size_t n = evbuffer_get_length(data);
    if (n > r->max_buffered)
        r->max_buffered = n;
    if (r->holds > 0) { /* not now: the transfer must pause until we resume it */
        r->holds--;
        event_base_once(r->l->base, -1, EV_TIMEOUT, resume_cb, op, NULL);
        return;
    }
    evbuffer_add_buffer(r->data, data);
}

void fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

bs_id make_id(uint32_t i)
{
    bs_id id;
    memset(&id, 0, sizeof(id));
    cm_put_be32(id.b, i);
    id.b[15] = 0x5a;
    return id;
}

/* Append buf[0..n) at off synchronously; returns the result. */
nd_result do_append(tloop *l, const tnode *n, uint32_t drive, const bs_id *id, uint64_t off,
                    const uint8_t *buf, size_t len, uint32_t crc)
{
    tres r;
    nd_peer p = peer_of(n);
    tres_init(&r, l);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, buf, len);
    CU_ASSERT_EQUAL(nd_append(l->cl, &p, drive, id, off, len, crc, b, NULL, 1, done_cb, &r, NULL),
                    CM_OK);
    evbuffer_free(b); /* emptied by nd_append: the client took the bytes by reference */
    loop_run(l);
    tres_release(&r);
    return r.res;
}

nd_result do_stat(tloop *l, const tnode *n, uint32_t drive, const bs_id *id)
{
    tres r;
    nd_peer p = peer_of(n);
    tres_init(&r, l);
    CU_ASSERT_EQUAL(nd_stat(l->cl, &p, drive, id, done_cb, &r), CM_OK);
    loop_run(l);
    tres_release(&r);
    return r.res;
}

/* Read into out (cap bytes); returns the result, *got the bytes read. */
nd_result do_read(tloop *l, const tnode *n, uint32_t drive, const bs_id *id, uint64_t off,
                  uint64_t len, uint8_t *out, size_t cap, size_t *got)
{
    tres r;
    nd_peer p = peer_of(n);
    tres_init(&r, l);
    CU_ASSERT_EQUAL(nd_read(l->cl, &p, drive, id, off, len, data_cb, done_cb, &r, NULL), CM_OK);
    loop_run(l);
    *got = evbuffer_get_length(r.data);
    evbuffer_remove(r.data, out, CM_MIN(*got, cap));
    tres_release(&r);
    return r.res;
}

/* Header `name` of the answer to a signed GET of target from n ("" when absent). */
typedef struct {
    tloop *l;
    const char *name;
    char *out;
    size_t cap;
} hdr_wait;

static void hdr_done(net_call *call, cm_err e, void *arg)
{
    hdr_wait *w = arg;
    const char *v = e == CM_OK ? net_call_resp_header(call, w->name) : NULL;
    snprintf(w->out, w->cap, "%s", v ? v : "");
    w->l->pending--;
}

/* A call signed by hand with this nonce and the date now: header `name` of its answer. */
void raw_call(tloop *l, const tnode *n, const char *method, const char *target, const char *nonce,
              const char *name, char *out, size_t cap)
{
    static const net_call_handler h = {NULL, NULL, hdr_done};
    char date[24], sig[65], auth[96];
    snprintf(date, sizeof(date), "%lld", (long long)(cm_now_ms() / 1000));
    nd_canon c = {method, target, "client", n->id, date, nonce, "0", "-"};
    sign(&c, sig);
    snprintf(auth, sizeof(auth), "CAIRN-HMAC-SHA256 %s", sig);
    net_call *call;
    CU_ASSERT_EQUAL_FATAL(
        net_call_new(nd_client_net(l->cl), "127.0.0.1", n->port, method, target, &call), CM_OK);
    net_call_header(call, "X-Cairn-Node", "client");
    net_call_header(call, "X-Cairn-Date", date);
    net_call_header(call, "X-Cairn-Nonce", nonce);
    net_call_header(call, "Authorization", auth);
    hdr_wait w = {l, name, out, cap};
    l->pending++;
    net_call_start(call, &h, &w, 1);
    loop_run(l);
}

void raw_get_header(tloop *l, const tnode *n, const char *target, const char *name, char *out,
                    size_t cap)
{
    raw_call(l, n, "GET", target, "0123456789abcdef0123456789abcdef", name, out, cap);
}

/* The answer to a read of [off, off+len) of chunk id on drive carries the CRC32C of body's bytes
 * there in X-Cairn-Crc32c. */
void check_range_crc(tloop *l, const tnode *n, int drive, const bs_id *id, uint64_t off,
                     uint64_t len, const uint8_t *body)
{
    char target[128], hex[33], crc[16], want[16];
    bs_id_hex(id, hex);
    snprintf(target, sizeof(target), ND_PREFIX "/chunk/%d/%s?off=%llu&len=%llu", drive, hex,
             (unsigned long long)off, (unsigned long long)len);
    raw_get_header(l, n, target, "X-Cairn-Crc32c", crc, sizeof(crc));
    snprintf(want, sizeof(want), "%08x", cm_crc32c(0, body + off, (size_t)len));
    CU_ASSERT_STRING_EQUAL(crc, want);
}

/* ---- parts, and rot on a drive ---- */

/* Flip one bit of the byte of drive `drive`'s segment file holding want[0..16) (found by its
 * bytes). */
void flip_on_disk(const tnode *n, int drive, const uint8_t *want)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/seg-00000001.cbs", n->dirs[drive]);
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static uint8_t file[1 << 20];
    size_t len = fread(file, 1, sizeof(file), f);
    const uint8_t *at = memmem(file, len, want, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    uint8_t b = (uint8_t)(*at ^ 0x10);
    CU_ASSERT(fseek(f, (long)(at - file), SEEK_SET) == 0 && fwrite(&b, 1, 1, f) == 1);
    fclose(f);
}

/* nd_read_parts of drives[0..np) into out (cap bytes); returns the result, *got the bytes. */
nd_result do_read_parts(tloop *l, const tnode *n, const uint32_t *drives, int np, const bs_id *id,
                        uint64_t off, uint64_t len, uint8_t *out, size_t cap, size_t *got)
{
    tres r;
    nd_peer p = peer_of(n);
    tres_init(&r, l);
    CU_ASSERT_EQUAL(nd_read_parts(l->cl, &p, drives, np, id, off, len, data_cb, done_cb, &r, NULL),
                    CM_OK);
    loop_run(l);
    *got = evbuffer_get_length(r.data);
    evbuffer_remove(r.data, out, CM_MIN(*got, cap));
    tres_release(&r);
    return r.res;
}

/* A PUT of body[0..len) with X-Cairn-Crc32c crc, signed by hand: its X-Cairn-Error into err. */
void raw_put(tloop *l, const tnode *n, const char *target, const uint8_t *body, size_t len,
             const char *crc, char *err, size_t cap)
{
    static const net_call_handler h = {NULL, NULL, hdr_done};
    char date[24], sig[65], auth[96], lenstr[24];
    snprintf(date, sizeof(date), "%lld", (long long)(cm_now_ms() / 1000));
    snprintf(lenstr, sizeof(lenstr), "%zu", len);
    nd_canon c = {"PUT",  target, "client", n->id, date, "00112233445566778899aabbccddeeff",
                  lenstr, crc};
    sign(&c, sig);
    snprintf(auth, sizeof(auth), "CAIRN-HMAC-SHA256 %s", sig);
    net_call *call;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, len);
    CU_ASSERT_EQUAL_FATAL(
        net_call_new(nd_client_net(l->cl), "127.0.0.1", n->port, "PUT", target, &call), CM_OK);
    net_call_header(call, "X-Cairn-Node", "client");
    net_call_header(call, "X-Cairn-Date", date);
    net_call_header(call, "X-Cairn-Nonce", "00112233445566778899aabbccddeeff");
    net_call_header(call, "X-Cairn-Crc32c", crc);
    net_call_header(call, "Authorization", auth);
    net_call_body(call, len, b);
    hdr_wait w = {l, "X-Cairn-Error", err, cap};
    l->pending++;
    net_call_start(call, &h, &w, 0);
    loop_run(l);
    evbuffer_free(b);
}

/* nd_append_parts of n equal parts of buf at off; returns the result. */
nd_result do_append_parts(tloop *l, const tnode *n, const uint32_t *drives, int np, const bs_id *id,
                          uint64_t off, const uint8_t *buf, size_t plen, const uint32_t *crcs)
{
    tres r;
    nd_peer p = peer_of(n);
    tres_init(&r, l);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, buf, plen * (size_t)np);
    CU_ASSERT_EQUAL(nd_append_parts(l->cl, &p, drives, np, id, off, crcs, b, 1, done_cb, &r, NULL),
                    CM_OK);
    evbuffer_free(b);
    loop_run(l);
    tres_release(&r);
    return r.res;
}

/* ---- fake peers (on the client's loop) ---- */

/* A whole request head arrived: answer it with answer_len zero bytes, whatever it asked. */
static void fake_answer(struct bufferevent *bev, void *arg)
{
    static const uint8_t zeros[64 * 1024];
    fake_peer *fp = arg;
    struct evbuffer *in = bufferevent_get_input(bev), *out = bufferevent_get_output(bev);
    if (evbuffer_search(in, "\r\n\r\n", 4, NULL).pos < 0)
        return;
    evbuffer_drain(in, evbuffer_get_length(in));
    evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nX-Cairn-Size: %zu\r\n",
                        fp->answer_len, fp->answer_len);
    if (fp->crc)
        evbuffer_add_printf(out, "X-Cairn-Crc32c: %s\r\n", fp->crc);
    if (fp->parts)
        evbuffer_add_printf(out, "X-Cairn-Parts: %d\r\n", fp->parts);
    evbuffer_add(out, "\r\n", 2);
    for (size_t i = 0; i < fp->answer_len; i += sizeof(zeros))
        evbuffer_add(out, zeros, CM_MIN(sizeof(zeros), fp->answer_len - i));
}

static void fake_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                        int salen, void *arg)
{
    fake_peer *fp = arg;
    (void)sa;
    (void)salen;
    if (fp->answer_len && !fp->bev) {
        fp->bev = bufferevent_socket_new(evconnlistener_get_base(lis), fd, BEV_OPT_CLOSE_ON_FREE);
        bufferevent_setcb(fp->bev, fake_answer, NULL, NULL, fp);
        bufferevent_enable(fp->bev, EV_READ | EV_WRITE);
    } else if (fp->close_at_once || fp->n == 16)
        close(fd);
    else
        fp->fds[fp->n++] = fd; /* held open, never read, never answered */
}

struct evconnlistener *fake_listen(struct event_base *base, fake_peer *fp, int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *lis =
        evconnlistener_new_bind(base, fake_accept, fp, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                -1, (struct sockaddr *)&sa, sizeof(sa));
    CU_ASSERT_PTR_NOT_NULL_FATAL(lis);
    getsockname(evconnlistener_get_fd(lis), (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    return lis;
}
