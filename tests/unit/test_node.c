/*
 * test_node.c - node RPC end to end in one process: storage nodes (nd_service on a net_server,
 * each in its own thread, with real blobstores in a scratch directory) and RPC clients on the
 * test thread's event loop, set up by nd_env.c. Async calls run the loop until every expected
 * callback came (a 10 s guard fails a test that hangs instead of blocking it). Payloads come from
 * a seeded xorshift. Reads and appends of several parts, rot on a drive and bad answers to reads
 * are tested in test_node_parts.c.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "cu_main.h"
#include "nd.h"
#include "nd_env.h"
#include "nd_int.h"

/* ---- data path ---- */

static void test_append_read_small(void)
{
    tnode n;
    tloop l;
    uint8_t buf[3000], back[4000];
    size_t got;
    node_start(&n, "n1", -1, -1); /* syncs inline on the loop; the other tests use workers */
    loop_default(&l);
    fill(buf, sizeof(buf), 1);
    bs_id id = make_id(1);
    nd_result r = do_append(&l, &n, 1, &id, 0, buf, 1000, cm_crc32c(0, buf, 1000));
    CU_ASSERT_EQUAL(r.err, CM_OK);
    CU_ASSERT_EQUAL(r.size, 1000);
    /* a second append continues the chunk (unsynced: the writer syncs with its last piece); a
     * wrong offset is a conflict naming the length */
    tres t;
    nd_peer p = peer_of(&n);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, buf + 1000, 2000);
    tres_init(&t, &l);
    CU_ASSERT_EQUAL(nd_append(l.cl, &p, 1, &id, 1000, 2000, cm_crc32c(0, buf + 1000, 2000), b, NULL,
                              0, done_cb, &t, NULL),
                    CM_OK);
    evbuffer_free(b);
    loop_run(&l);
    CU_ASSERT_EQUAL(t.res.err, CM_OK);
    CU_ASSERT_EQUAL(t.res.size, 3000);
    tres_release(&t);
    r = do_append(&l, &n, 1, &id, 1000, buf, 10, cm_crc32c(0, buf, 10));
    CU_ASSERT_EQUAL(r.err, CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(r.size, 3000);
    r = do_stat(&l, &n, 1, &id);
    CU_ASSERT_EQUAL(r.err, CM_OK);
    CU_ASSERT_EQUAL(r.size, 3000);
    r = do_read(&l, &n, 1, &id, 0, UINT64_MAX, back, sizeof(back), &got);
    CU_ASSERT_EQUAL(r.err, CM_OK);
    CU_ASSERT_EQUAL(got, 3000);
    CU_ASSERT_EQUAL(memcmp(back, buf, 3000), 0);
    /* the bytes are in the node's blobstore, on the drive named */
    uint64_t size = 0;
    CU_ASSERT_EQUAL(bs_size(n.bs[1], &id, &size), CM_OK);
    CU_ASSERT_EQUAL(size, 3000);
    CU_ASSERT_EQUAL(bs_size(n.bs[0], &id, &size), CM_ERR_NOTFOUND);
    /* range reads */
    r = do_read(&l, &n, 1, &id, 1234, 567, back, sizeof(back), &got);
    CU_ASSERT_EQUAL(r.err, CM_OK);
    CU_ASSERT_EQUAL(got, 567);
    CU_ASSERT_EQUAL(memcmp(back, buf + 1234, 567), 0);
    /* a range comes with its CRC32C, which the client checks */
    check_range_crc(&l, &n, 1, &id, 1234, 567, buf);
    r = do_read(&l, &n, 1, &id, 2990, 11, back, sizeof(back), &got);
    CU_ASSERT_EQUAL(r.err, CM_ERR_RANGE);
    bs_id none = make_id(999);
    r = do_read(&l, &n, 1, &none, 0, 10, back, sizeof(back), &got);
    CU_ASSERT_EQUAL(r.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(r.status, 404);
    r = do_read(&l, &n, 7, &id, 0, 10, back, sizeof(back), &got);
    CU_ASSERT_EQUAL(r.err, CM_ERR_NOTFOUND); /* no drive 7 */
    loop_free(&l);
    node_stop(&n);
}

/* A multi-MiB chunk: produced in pieces on the way out, consumed with pauses on the way in. */
typedef struct {
    const uint8_t *src;
    size_t len, pos;
    size_t max_out;
} tsend;

typedef struct {
    tres r;
    tsend s;
} tput;

static void put_send_cb(void *arg, nd_op *op, struct evbuffer *out)
{
    tput *t = arg;
    (void)op;
    if (evbuffer_get_length(out) > t->s.max_out)
        t->s.max_out = evbuffer_get_length(out);
    size_t n = CM_MIN((size_t)100000, t->s.len - t->s.pos);
    /* by reference: the source outlives the call */
    evbuffer_add_reference(out, t->s.src + t->s.pos, n, NULL, NULL);
    t->s.pos += n;
}

static void put_done_cb(void *arg, const nd_result *res)
{
    done_cb(&((tput *)arg)->r, res);
}

static void test_big_chunk_streamed(void)
{
    tnode n;
    tloop l;
    const size_t len = 12u << 20;
    uint8_t *buf = malloc(len);
    node_start(&n, "n1", -1, 0);
    loop_default(&l);
    fill(buf, len, 7);
    bs_id id = make_id(2);
    nd_peer p = peer_of(&n);
    tput t;
    memset(&t, 0, sizeof(t));
    tres_init(&t.r, &l);
    t.s.src = buf;
    t.s.len = len;
    CU_ASSERT_EQUAL(nd_append(l.cl, &p, 0, &id, 0, len, cm_crc32c(0, buf, len), NULL, put_send_cb,
                              1, put_done_cb, &t, NULL),
                    CM_OK);
    loop_run(&l);
    CU_ASSERT_EQUAL(t.r.res.err, CM_OK);
    CU_ASSERT_EQUAL(t.r.res.size, len);
    CU_ASSERT_EQUAL(t.s.pos, len);
    /* the producer was asked only while the socket buffer was low: memory stays bounded */
    CU_ASSERT(t.s.max_out < 64 * 1024);
    tres_release(&t.r);

    tres r;
    tres_init(&r, &l);
    r.holds = 5;
    CU_ASSERT_EQUAL(nd_read(l.cl, &p, 0, &id, 0, UINT64_MAX, data_cb, done_cb, &r, NULL), CM_OK);
    loop_run(&l);
    CU_ASSERT_EQUAL(r.res.err, CM_OK);
    CU_ASSERT_EQUAL(r.res.size, len);
    CU_ASSERT_EQUAL_FATAL(evbuffer_get_length(r.data), len);
    CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(r.data, -1), buf, len), 0);
    CU_ASSERT_EQUAL(r.holds, 0);
    /* what the client buffered for us never exceeded its high-water mark (256 KiB) by much */
    CU_ASSERT(r.max_buffered <= 256 * 1024);
    tres_release(&r);
    nd_service_stats st;
    nd_service_get_stats(n.svc, &st);
    CU_ASSERT_EQUAL(st.appended, len);
    CU_ASSERT_EQUAL(st.read, len);
    loop_free(&l);
    node_stop(&n);
    free(buf);
}

static void test_bad_checksum_refused(void)
{
    tnode n;
    tloop l;
    uint8_t buf[200000];
    node_start(&n, "n1", -1, 0);
    loop_default(&l);
    fill(buf, sizeof(buf), 3);
    bs_id id = make_id(3);
    /* the CRC of other bytes: as if the body were corrupted on the way */
    nd_result r = do_append(&l, &n, 0, &id, 0, buf, sizeof(buf), cm_crc32c(0, buf, 1000));
    CU_ASSERT_EQUAL(r.err, CM_ERR_DIGEST);
    CU_ASSERT_EQUAL(r.status, 400);
    r = do_stat(&l, &n, 0, &id);
    CU_ASSERT_EQUAL(r.err, CM_ERR_NOTFOUND); /* nothing stored */
    uint64_t size;
    CU_ASSERT_EQUAL(bs_size(n.bs[0], &id, &size), CM_ERR_NOTFOUND);
    /* a good chunk, then a bad continuation: the chunk is dropped whole */
    r = do_append(&l, &n, 0, &id, 0, buf, 1000, cm_crc32c(0, buf, 1000));
    CU_ASSERT_EQUAL(r.err, CM_OK);
    r = do_append(&l, &n, 0, &id, 1000, buf + 1000, 5000, 0x12345678);
    CU_ASSERT_EQUAL(r.err, CM_ERR_DIGEST);
    r = do_stat(&l, &n, 0, &id);
    CU_ASSERT_EQUAL(r.err, CM_ERR_NOTFOUND);
    nd_service_stats st;
    nd_service_get_stats(n.svc, &st);
    CU_ASSERT_EQUAL(st.digest_refused, 2);
    loop_free(&l);
    node_stop(&n);
}

/*
 * A chunk DELETE sent again with the same signature (a replay of captured traffic, or a retry
 * whose first answer was lost) is answered as its first run was and not run again: the chunk
 * written back since (as a heal writes a cell back where it was deleted) stays. Another nonce
 * deletes. The memory itself (nd_replay): a running call, a remembered answer, expiry, and the
 * oldest entry forgotten at capacity (counted).
 */
static void test_delete_replay(void)
{
    tnode n;
    tloop l;
    uint8_t buf[4000];
    char target[128], hex[33], size[24];
    const char *nonce = "00112233445566778899aabbccddeeff";
    node_start(&n, "n1", -1, 0);
    loop_default(&l);
    fill(buf, sizeof(buf), 5);
    bs_id id = make_id(31);
    bs_id_hex(&id, hex);
    snprintf(target, sizeof(target), ND_PREFIX "/chunk/0/%s", hex);
    CU_ASSERT_EQUAL(
        do_append(&l, &n, 0, &id, 0, buf, sizeof(buf), cm_crc32c(0, buf, sizeof(buf))).err, CM_OK);
    raw_call(&l, &n, "DELETE", target, nonce, "X-Cairn-Size", size, sizeof(size));
    CU_ASSERT_STRING_EQUAL(size, "0");
    CU_ASSERT_EQUAL(do_stat(&l, &n, 0, &id).err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(
        do_append(&l, &n, 0, &id, 0, buf, sizeof(buf), cm_crc32c(0, buf, sizeof(buf))).err, CM_OK);
    raw_call(&l, &n, "DELETE", target, nonce, "X-Cairn-Size", size, sizeof(size));
    CU_ASSERT_STRING_EQUAL(size, "0");                   /* the first run's answer */
    CU_ASSERT_EQUAL(do_stat(&l, &n, 0, &id).err, CM_OK); /* not run again */
    nd_service_stats st;
    nd_service_get_stats(n.svc, &st);
    CU_ASSERT_EQUAL(st.replayed, 1);
    raw_call(&l, &n, "DELETE", target, "ffeeddccbbaa99887766554433221100", "X-Cairn-Size", size,
             sizeof(size));
    CU_ASSERT_EQUAL(do_stat(&l, &n, 0, &id).err, CM_ERR_NOTFOUND);
    loop_free(&l);
    node_stop(&n);

    nd_replay *r;
    uint8_t k[6][16];
    cm_err e = CM_OK;
    for (int i = 0; i < 6; i++) {
        memset(k[i], 0, 16);
        k[i][15] = (uint8_t)i;
    }
    CU_ASSERT_EQUAL_FATAL(nd_replay_new(4, &r), CM_OK);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(nd_replay_begin(r, k[i], 1000 + i, 900, &e), ND_REPLAY_NEW);
    CU_ASSERT_EQUAL(nd_replay_begin(r, k[2], 1002, 900, &e), ND_REPLAY_RUNNING);
    nd_replay_end(r, k[2], CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(nd_replay_begin(r, k[2], 1002, 900, &e), ND_REPLAY_DONE);
    CU_ASSERT_EQUAL(e, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(nd_replay_begin(r, k[4], 1004, 900, &e), ND_REPLAY_NEW); /* k[0] goes */
    CU_ASSERT_EQUAL(nd_replay_evicted(r), 1);
    CU_ASSERT_EQUAL(nd_replay_begin(r, k[1], 1001, 900, &e), ND_REPLAY_RUNNING);
    CU_ASSERT_EQUAL(nd_replay_begin(r, k[0], 1000, 900, &e),
                    ND_REPLAY_NEW); /* forgotten: k[1] goes */
    CU_ASSERT_EQUAL(nd_replay_evicted(r), 2);
    /* past their expiry entries leave without being counted */
    CU_ASSERT_EQUAL(nd_replay_begin(r, k[5], 3000, 2000, &e), ND_REPLAY_NEW);
    CU_ASSERT_EQUAL(nd_replay_begin(r, k[2], 3000, 2000, &e), ND_REPLAY_NEW);
    CU_ASSERT_EQUAL(nd_replay_evicted(r), 2);
    nd_replay_free(r);
}

static void test_delete(void)
{
    tnode n;
    tloop l;
    uint8_t buf[5000];
    size_t got;
    node_start(&n, "n1", -1, 0);
    loop_default(&l);
    fill(buf, sizeof(buf), 4);
    bs_id id = make_id(4);
    CU_ASSERT_EQUAL(do_append(&l, &n, 0, &id, 0, buf, sizeof(buf), cm_crc32c(0, buf, 5000)).err,
                    CM_OK);
    tres r;
    nd_peer p = peer_of(&n);
    tres_init(&r, &l);
    CU_ASSERT_EQUAL(nd_delete(l.cl, &p, 0, &id, done_cb, &r), CM_OK);
    loop_run(&l);
    CU_ASSERT_EQUAL(r.res.err, CM_OK);
    tres_release(&r);
    CU_ASSERT_EQUAL(do_stat(&l, &n, 0, &id).err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(do_read(&l, &n, 0, &id, 0, 10, buf, sizeof(buf), &got).err, CM_ERR_NOTFOUND);
    /* deleting again is fine */
    tres_init(&r, &l);
    CU_ASSERT_EQUAL(nd_delete(l.cl, &p, 0, &id, done_cb, &r), CM_OK);
    loop_run(&l);
    CU_ASSERT_EQUAL(r.res.err, CM_OK);
    tres_release(&r);
    loop_free(&l);
    node_stop(&n);
}

static void test_info(void)
{
    tnode n;
    tloop l;
    uint8_t buf[4096];
    node_start(&n, "store-7", 1, 0); /* drive 1 offline */
    loop_default(&l);
    fill(buf, sizeof(buf), 5);
    bs_id id = make_id(5);
    CU_ASSERT_EQUAL(do_append(&l, &n, 0, &id, 0, buf, sizeof(buf), cm_crc32c(0, buf, 4096)).err,
                    CM_OK);
    CU_ASSERT_EQUAL(do_stat(&l, &n, 1, &id).err, CM_ERR_UNAVAILABLE);
    tres r;
    nd_peer p = peer_of(&n);
    tres_init(&r, &l);
    CU_ASSERT_EQUAL(nd_info(l.cl, &p, done_cb, &r), CM_OK);
    loop_run(&l);
    CU_ASSERT_EQUAL_FATAL(r.res.err, CM_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.res.info);
    CU_ASSERT_STRING_EQUAL(r.info.node_id, "store-7");
    CU_ASSERT(llabs((long long)(r.info.time - cm_now_ms() / 1000)) < 5);
    CU_ASSERT_EQUAL_FATAL(r.info.ndrives, 2);
    CU_ASSERT_STRING_EQUAL(r.info.drives[0].state, "ok");
    CU_ASSERT_EQUAL(r.info.drives[0].blobs, 1);
    CU_ASSERT_EQUAL(r.info.drives[0].live_bytes, 4096);
    CU_ASSERT(r.info.drives[0].total_bytes > 0);
    CU_ASSERT(r.info.drives[0].free_bytes <= r.info.drives[0].total_bytes);
    CU_ASSERT_STRING_EQUAL(r.info.drives[1].state, "offline");
    tres_release(&r);
    loop_free(&l);
    node_stop(&n);
}

/* Layout addresses with DNS names parse; the RPC reaches a node by the name "localhost". */
static void test_host_names(void)
{
    static const struct {
        const char *addr, *host;
        int port;
    } good[] = {
        {"localhost:9100", "localhost", 9100},
        {"cairn-az1-0.cairn.default.svc.cluster.local:9100",
         "cairn-az1-0.cairn.default.svc.cluster.local", 9100},
        {"node1.example.:7", "node1.example.", 7},
        {"10.1.2.3:1", "10.1.2.3", 1},
        {"[::1]:65535", "::1", 65535},
    };
    static const char *bad[] = {"bad_name:1", "-x:1",    "x-:1", "a..b:1", ".a:1", "a b:1",
                                "x:0",        "x:65536", ":1",   "x:",     "x",    "[]:1"};
    char host[128], long_label[80];
    int port;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CU_ASSERT_EQUAL(nd_addr_parse(good[i].addr, host, sizeof(host), &port), CM_OK);
        CU_ASSERT_STRING_EQUAL(host, good[i].host);
        CU_ASSERT_EQUAL(port, good[i].port);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(nd_addr_parse(bad[i], host, sizeof(host), &port), CM_ERR_INVAL);
    memset(long_label, 'a', 64); /* a label of 64: one too long */
    memcpy(long_label + 64, ".b:1", 5);
    CU_ASSERT_EQUAL(nd_addr_parse(long_label, host, sizeof(host), &port), CM_ERR_INVAL);
    memcpy(long_label + 63, ".b:1", 5);
    CU_ASSERT_EQUAL(nd_addr_parse(long_label, host, sizeof(host), &port), CM_OK);

    tnode n;
    tloop l;
    tres r;
    node_start(&n, "named", 1, 0);
    loop_default(&l);
    nd_peer p = {n.id, "localhost", n.port, 0};
    tres_init(&r, &l);
    CU_ASSERT_EQUAL(nd_info(l.cl, &p, done_cb, &r), CM_OK);
    loop_run(&l);
    CU_ASSERT_EQUAL(r.res.err, CM_OK);
    if (r.res.info)
        CU_ASSERT_STRING_EQUAL(r.info.node_id, "named");
    tres_release(&r);
    loop_free(&l);
    node_stop(&n);
}

/* A list page; its chunks are copied to list_copy by done_cb. */
static nd_result do_list(tloop *l, const tnode *n, uint32_t drive, const bs_id *after, size_t max)
{
    tres r;
    nd_peer p = peer_of(n);
    tres_init(&r, l);
    CU_ASSERT_EQUAL(nd_list(l->cl, &p, drive, after, max, done_cb, &r), CM_OK);
    loop_run(l);
    tres_release(&r);
    return r.res;
}

/* do_list with ages (nd_list_aged). */
static nd_result do_list_aged(tloop *l, const tnode *n, uint32_t drive, size_t max)
{
    tres r;
    nd_peer p = peer_of(n);
    tres_init(&r, l);
    CU_ASSERT_EQUAL(nd_list_aged(l->cl, &p, drive, NULL, max, done_cb, &r), CM_OK);
    loop_run(l);
    tres_release(&r);
    return r.res;
}

static int ent_cmp(const void *a, const void *b)
{
    return memcmp(((const nd_chunk_ent *)a)->id.b, ((const nd_chunk_ent *)b)->id.b, 16);
}

static void test_list(void)
{
    enum { N = 7 };
    tnode n;
    tloop l;
    uint8_t buf[3000];
    nd_chunk_ent want[N], seen[N + 1];
    size_t nseen = 0;
    node_start(&n, "n1", 1, 0); /* drive 1 offline */
    loop_default(&l);
    for (uint32_t i = 0; i < N; i++) {
        size_t len = 100 + 300 * i;
        fill(buf, len, 40 + i);
        bs_id_new(&want[i].id);
        want[i].size = len;
        CU_ASSERT_EQUAL(do_append(&l, &n, 0, &want[i].id, 0, buf, len, cm_crc32c(0, buf, len)).err,
                        CM_OK);
    }
    qsort(want, N, sizeof(want[0]), ent_cmp);
    /* pages of 3: 3 + 3 + 1, each in id order, continuing after the last id */
    const bs_id *after = NULL;
    for (int page = 0; page < 4 && nseen < N + 1; page++) {
        nd_result r = do_list(&l, &n, 0, after, 3);
        CU_ASSERT_EQUAL_FATAL(r.err, CM_OK);
        CU_ASSERT_EQUAL(r.more, r.nlist == 3);
        CU_ASSERT_FATAL(r.nlist <= 3 && nseen + r.nlist <= N);
        memcpy(&seen[nseen], list_copy, r.nlist * sizeof(nd_chunk_ent));
        nseen += r.nlist;
        if (!r.more)
            break;
        after = &seen[nseen - 1].id;
    }
    CU_ASSERT_EQUAL_FATAL(nseen, N);
    for (int i = 0; i < N; i++) {
        CU_ASSERT(memcmp(seen[i].id.b, want[i].id.b, 16) == 0);
        CU_ASSERT_EQUAL(seen[i].size, want[i].size);
        CU_ASSERT_EQUAL(seen[i].age_s, -1); /* not asked for */
    }
    /* with ages (the orphan sweep's listing): the same chunks, each just written */
    nd_result ra = do_list_aged(&l, &n, 0, 100);
    CU_ASSERT_EQUAL_FATAL(ra.err, CM_OK);
    CU_ASSERT_EQUAL_FATAL(ra.nlist, N);
    for (int i = 0; i < N; i++) {
        CU_ASSERT(memcmp(list_copy[i].id.b, want[i].id.b, 16) == 0);
        CU_ASSERT_EQUAL(list_copy[i].size, want[i].size);
        CU_ASSERT(list_copy[i].age_s >= 0 && list_copy[i].age_s < 60);
    }
    /* an empty page past the last id; an offline drive; a drive that does not exist */
    nd_result r = do_list(&l, &n, 0, &want[N - 1].id, 100);
    CU_ASSERT_EQUAL(r.err, CM_OK);
    CU_ASSERT_EQUAL(r.nlist, 0);
    CU_ASSERT_EQUAL(r.more, 0);
    CU_ASSERT_EQUAL(do_list(&l, &n, 1, NULL, 10).err, CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(do_list(&l, &n, 5, NULL, 10).err, CM_ERR_NOTFOUND);
    loop_free(&l);
    node_stop(&n);
}

/* ---- authentication ---- */

static void raw_done(net_call *call, cm_err e, void *arg)
{
    tres *r = arg;
    const char *err = net_call_resp_header(call, "X-Cairn-Error");
    nd_result res = {e, net_call_status(call), 0, err ? err : "", NULL, NULL, 0, 0, NULL, 0, 0, 0};
    done_cb(r, &res);
}

static void test_auth_refused(void)
{
    static const uint8_t wrong[] = "not-the-secret";
    tnode n;
    tloop good, bad, skewed;
    node_start(&n, "n1", -1, 0);
    loop_default(&good);
    loop_init(&bad, "client", NULL, 0, wrong, sizeof(wrong) - 1, 2000);
    loop_init(&skewed, "client", NULL, 600, secret, SECRET_LEN, 2000);
    bs_id id = make_id(6);
    uint8_t buf[100];
    fill(buf, sizeof(buf), 6);

    nd_result r = do_append(&bad, &n, 0, &id, 0, buf, 100, cm_crc32c(0, buf, 100));
    CU_ASSERT_EQUAL(r.err, CM_ERR_AUTH);
    CU_ASSERT_EQUAL(r.status, 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.message, "signature"));
    r = do_stat(&skewed, &n, 0, &id);
    CU_ASSERT_EQUAL(r.err, CM_ERR_AUTH);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.message, "skew"));
    CU_ASSERT_EQUAL(do_stat(&good, &n, 0, &id).err, CM_ERR_NOTFOUND); /* nothing was stored */

    /* no authentication at all */
    static const net_call_handler h = {NULL, NULL, raw_done};
    tres raw;
    net_call *call;
    tres_init(&raw, &good);
    CU_ASSERT_EQUAL_FATAL(
        net_call_new(nd_client_net(good.cl), "127.0.0.1", n.port, "GET", ND_PREFIX "/info", &call),
        CM_OK);
    net_call_start(call, &h, &raw, 1);
    loop_run(&good);
    CU_ASSERT_EQUAL(raw.res.err, CM_OK);
    CU_ASSERT_EQUAL(raw.res.status, 401);
    CU_ASSERT_STRING_EQUAL(raw.msg, "CM_ERR_AUTH");
    tres_release(&raw);

    /* a request made for another node is refused: a body's chunk id is the same on all its
     * nodes, so a DELETE captured on its way to one must not delete the cell of another */
    CU_ASSERT_EQUAL_FATAL(do_append(&good, &n, 0, &id, 0, buf, 100, cm_crc32c(0, buf, 100)).err,
                          CM_OK);
    tres other;
    nd_peer elsewhere = peer_of(&n);
    elsewhere.id = "n9"; /* n's address, signed for n9 */
    tres_init(&other, &good);
    CU_ASSERT_EQUAL(nd_delete(good.cl, &elsewhere, 0, &id, done_cb, &other), CM_OK);
    loop_run(&good);
    tres_release(&other);
    CU_ASSERT_EQUAL(other.res.err, CM_ERR_AUTH);
    CU_ASSERT_EQUAL(other.res.status, 401);
    uint64_t still = 0;
    nd_result sr = do_stat(&good, &n, 0, &id);
    still = sr.size;
    CU_ASSERT_EQUAL(sr.err, CM_OK); /* not deleted */
    CU_ASSERT_EQUAL(still, 100);

    /* a signature does not carry over to another target, caller or callee (the body's CRC is
     * signed too) */
    char sig1[65], sig2[65], sig3[65], sig4[65];
    nd_canon c = {"PUT", "/x?off=0", "n2", "n1", "1700000000", "00112233445566778899aabbccddeeff",
                  "10",  "0badf00d"};
    sign(&c, sig1);
    c.target = "/y?off=0";
    sign(&c, sig2);
    c.target = "/x?off=0";
    c.crc32c = "0badf00e";
    sign(&c, sig3);
    c.crc32c = "0badf00d";
    c.to = "n3";
    sign(&c, sig4);
    CU_ASSERT_NOT_EQUAL(strcmp(sig1, sig2), 0);
    CU_ASSERT_NOT_EQUAL(strcmp(sig1, sig3), 0);
    CU_ASSERT_NOT_EQUAL(strcmp(sig1, sig4), 0);
    CU_ASSERT_EQUAL(strlen(sig1), 64);

    nd_service_stats st;
    nd_service_get_stats(n.svc, &st);
    CU_ASSERT_EQUAL(st.auth_refused, 4);
    loop_free(&good);
    loop_free(&bad);
    loop_free(&skewed);
    node_stop(&n);
}

/* The signature is HMAC-SHA256 of the canonical string, fields joined by newlines: a known
 * answer (computed apart, Python's hmac), and the reference construction (the string built
 * with snprintf, cm_hmac_sha256 under the raw secret) for a target long enough that nd_sign
 * assembles the string on the heap. */
static void test_sign_canonical(void)
{
    char sig[65], want[65], *target = malloc(3001), *s = malloc(3200);
    uint8_t mac[32];
    CU_ASSERT_FATAL(target && s);
    nd_canon c = {"PUT", "/x?off=0", "n2", "n1", "1700000000", "00112233445566778899aabbccddeeff",
                  "10",  "0badf00d"};
    sign(&c, sig);
    CU_ASSERT_STRING_EQUAL(sig, "fe84b34247b7e6e83852ce0a3edec93dbc523b64d2eb4c9055c4681ad24f907b");
    for (size_t len = 1; len <= 3000; len = len * 3 + 7) {
        memset(target, 'k', len);
        target[0] = '/';
        target[len] = '\0';
        c.target = target;
        int n = snprintf(s, 3200, "CAIRN-RPC-V1\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s", c.method,
                         c.target, c.node, c.to, c.date, c.nonce, c.length, c.crc32c);
        cm_hmac_sha256(secret, SECRET_LEN, s, (size_t)n, mac);
        cm_hex_encode(mac, sizeof(mac), want);
        sign(&c, sig);
        CU_ASSERT_STRING_EQUAL(sig, want);
    }
    free(target);
    free(s);
}

/* ---- pool and concurrency ---- */

static void test_pool_reuse(void)
{
    tnode n;
    tloop l;
    node_start(&n, "n1", -1, 0);
    loop_default(&l);
    bs_id id = make_id(7);
    for (int i = 0; i < 20; i++)
        CU_ASSERT_EQUAL(do_stat(&l, &n, 0, &id).err, CM_ERR_NOTFOUND);
    net_client_stats st;
    net_client_get_stats(nd_client_net(l.cl), &st);
    CU_ASSERT_EQUAL(st.connects, 1); /* one keep-alive connection served all twenty */
    CU_ASSERT_EQUAL(st.reuses, 19);
    /* 40 at once: at most max_conns (4) connections, the rest queue */
    tres r[40];
    nd_peer p = peer_of(&n);
    for (int i = 0; i < 40; i++) {
        tres_init(&r[i], &l);
        CU_ASSERT_EQUAL(nd_stat(l.cl, &p, 0, &id, done_cb, &r[i]), CM_OK);
    }
    loop_run(&l);
    for (int i = 0; i < 40; i++) {
        CU_ASSERT_EQUAL(r[i].done, 1);
        CU_ASSERT_EQUAL(r[i].res.err, CM_ERR_NOTFOUND);
        tres_release(&r[i]);
    }
    net_client_get_stats(nd_client_net(l.cl), &st);
    CU_ASSERT(st.connects <= 4);
    CU_ASSERT(net_client_conns(nd_client_net(l.cl), "127.0.0.1", n.port) <= 4);
    loop_free(&l);
    node_stop(&n);
}

#define NNODES 3
#define NCHUNKS 48
#define CHUNK (96 * 1024 + 17)

static void test_many_in_flight(void)
{
    tnode n[NNODES];
    tloop l;
    static const char *ids[NNODES] = {"a1", "b1", "c1"};
    uint8_t *buf = malloc((size_t)NCHUNKS * CHUNK);
    tres *r = calloc(NCHUNKS, sizeof(*r));
    for (int i = 0; i < NNODES; i++)
        node_start(&n[i], ids[i], -1, 0);
    loop_default(&l);
    fill(buf, (size_t)NCHUNKS * CHUNK, 8);
    /* every chunk in flight at once, spread over three nodes and two drives each */
    for (int i = 0; i < NCHUNKS; i++) {
        nd_peer p = peer_of(&n[i % NNODES]);
        bs_id id = make_id(100 + (uint32_t)i);
        const uint8_t *src = buf + (size_t)i * CHUNK;
        struct evbuffer *b = evbuffer_new();
        evbuffer_add_reference(b, src, CHUNK, NULL, NULL);
        tres_init(&r[i], &l);
        CU_ASSERT_EQUAL(nd_append(l.cl, &p, (uint32_t)i % 2, &id, 0, CHUNK,
                                  cm_crc32c(0, src, CHUNK), b, NULL, 1, done_cb, &r[i], NULL),
                        CM_OK);
        evbuffer_free(b);
    }
    loop_run(&l);
    for (int i = 0; i < NCHUNKS; i++) {
        CU_ASSERT_EQUAL(r[i].res.err, CM_OK);
        tres_release(&r[i]);
    }
    for (int i = 0; i < NCHUNKS; i++) {
        nd_peer p = peer_of(&n[i % NNODES]);
        bs_id id = make_id(100 + (uint32_t)i);
        tres_init(&r[i], &l);
        CU_ASSERT_EQUAL(
            nd_read(l.cl, &p, (uint32_t)i % 2, &id, 0, UINT64_MAX, data_cb, done_cb, &r[i], NULL),
            CM_OK);
    }
    loop_run(&l);
    for (int i = 0; i < NCHUNKS; i++) {
        CU_ASSERT_EQUAL(r[i].res.err, CM_OK);
        CU_ASSERT_EQUAL_FATAL(evbuffer_get_length(r[i].data), CHUNK);
        CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(r[i].data, -1), buf + (size_t)i * CHUNK, CHUNK), 0);
        tres_release(&r[i]);
    }
    for (int i = 0; i < NNODES; i++) {
        CU_ASSERT(net_client_conns(nd_client_net(l.cl), "127.0.0.1", n[i].port) <= 4);
        node_stop(&n[i]);
    }
    loop_free(&l);
    free(r);
    free(buf);
}

/* ---- fault layer ---- */

static void test_faults(void)
{
    tnode na, nb;
    tloop a, b;
    nd_faults *f;
    CU_ASSERT_EQUAL_FATAL(nd_faults_new(&f), CM_OK);
    node_start(&na, "na", -1, 0);
    node_start(&nb, "nb", -1, 0);
    /* two clients in the roles of the two nodes, sharing one fault table */
    loop_init(&a, "na", f, 0, secret, SECRET_LEN, 2000);
    loop_init(&b, "nb", f, 0, secret, SECRET_LEN, 2000);
    bs_id id = make_id(9);

    /* one-way partition na -> nb: na's calls to nb fail, nb's calls to na pass */
    CU_ASSERT_EQUAL(nd_fault_set(f, "na", "nb", ND_FAULT_REFUSE, 0), CM_OK);
    int64_t t0 = cm_monotonic_ms();
    CU_ASSERT_EQUAL(do_stat(&a, &nb, 0, &id).err, CM_ERR_UNAVAILABLE);
    CU_ASSERT(cm_monotonic_ms() - t0 < 1000); /* at once: no io timeout (2 s) ran */
    CU_ASSERT_EQUAL(do_stat(&b, &na, 0, &id).err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(do_stat(&a, &na, 0, &id).err, CM_ERR_NOTFOUND); /* other targets unaffected */
    nd_service_stats st;
    nd_service_get_stats(nb.svc, &st);
    CU_ASSERT_EQUAL(st.requests, 0); /* the refused call never reached nb */
    nd_fault_clear(f, "na", "nb");
    CU_ASSERT_EQUAL(do_stat(&a, &nb, 0, &id).err, CM_ERR_NOTFOUND);

    /* delay: the answer comes no sooner than the delay */
    CU_ASSERT_EQUAL(nd_faults_parse(f, "nb>na:delay=300"), CM_OK);
    t0 = cm_monotonic_ms();
    CU_ASSERT_EQUAL(do_stat(&b, &na, 0, &id).err, CM_ERR_NOTFOUND);
    CU_ASSERT(cm_monotonic_ms() - t0 >= 300 - 5); /* less a tick of libevent's coarse clock */
    t0 = cm_monotonic_ms();
    CU_ASSERT_EQUAL(do_stat(&a, &nb, 0, &id).err, CM_ERR_NOTFOUND);
    CU_ASSERT(cm_monotonic_ms() - t0 < 300);

    /* lost: the call times out after the io timeout (2 s here, so use a short-timeout client) */
    nd_fault_clear(f, NULL, NULL);
    tloop c;
    loop_init(&c, "nc", f, 0, secret, SECRET_LEN, 200);
    CU_ASSERT_EQUAL(nd_faults_parse(f, "nc>*:lose"), CM_OK);
    t0 = cm_monotonic_ms();
    CU_ASSERT_EQUAL(do_stat(&c, &na, 0, &id).err, CM_ERR_TIMEOUT);
    CU_ASSERT(cm_monotonic_ms() - t0 >= 200 - 5);
    CU_ASSERT_EQUAL(do_stat(&a, &na, 0, &id).err, CM_ERR_NOTFOUND);

    /* malformed specs add nothing */
    CU_ASSERT_EQUAL(nd_faults_parse(f, "na>nb:refuse,oops"), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(nd_faults_parse(f, "na>nb:delay=x"), CM_ERR_INVAL);
    int ms;
    CU_ASSERT_EQUAL(nd_fault_get(f, "na", "nb", &ms), ND_FAULT_NONE);
    CU_ASSERT_EQUAL(nd_fault_get(f, "nc", "nb", &ms), ND_FAULT_LOSE);

    /* a call held back by a fault still ends once when its client goes away */
    CU_ASSERT_EQUAL(nd_fault_set(f, "na", "nb", ND_FAULT_DELAY, 60000), CM_OK);
    tres held;
    nd_peer pb = peer_of(&nb);
    tres_init(&held, &a);
    CU_ASSERT_EQUAL(nd_stat(a.cl, &pb, 0, &id, done_cb, &held), CM_OK);
    event_base_loop(a.base, EVLOOP_NONBLOCK);
    CU_ASSERT_EQUAL(held.done, 0);
    loop_free(&a);
    CU_ASSERT_EQUAL(held.done, 1);
    CU_ASSERT_EQUAL(held.res.err, CM_ERR_CLOSED);
    tres_release(&held);

    loop_free(&c);
    loop_free(&b);
    node_stop(&na);
    node_stop(&nb);
    nd_faults_free(f);
}

/* ---- transport failures and timeouts (fake peers on the client's loop) ---- */

static void test_timeouts_and_retries(void)
{
    tloop l;
    loop_init(&l, "client", NULL, 0, secret, SECRET_LEN, 250);
    bs_id id = make_id(10);
    fake_peer stall = {{0}, 0, 0, 0, NULL, NULL, 0}, slam = {{0}, 0, 1, 0, NULL, NULL, 0};
    int sport, cport;
    struct evconnlistener *ls = fake_listen(l.base, &stall, &sport);
    struct evconnlistener *lc = fake_listen(l.base, &slam, &cport);
    tnode fake = {.id = "ghost"};

    /* a peer that accepts and never answers: the io timeout fires (and a stat is retried once) */
    fake.port = sport;
    int64_t t0 = cm_monotonic_ms();
    nd_result r = do_stat(&l, &fake, 0, &id);
    CU_ASSERT_EQUAL(r.err, CM_ERR_TIMEOUT);
    /* two io timeouts, less a few ms: libevent times its timers by CLOCK_MONOTONIC_COARSE
     * (unless a base asks for a precise timer), up to a kernel tick (1-4 ms) behind the
     * CLOCK_MONOTONIC this test reads, so each timeout may end that much early by it. Seen in
     * the fresh-Debian CI once. */
    CU_ASSERT(cm_monotonic_ms() - t0 >= 2 * 250 - 10);
    CU_ASSERT(cm_monotonic_ms() - t0 < 5000);
    net_client_stats st;
    net_client_get_stats(nd_client_net(l.cl), &st);
    CU_ASSERT_EQUAL(st.retries, 1);

    /* an append is not retried */
    uint8_t buf[10] = {0};
    t0 = cm_monotonic_ms();
    r = do_append(&l, &fake, 0, &id, 0, buf, 10, cm_crc32c(0, buf, 10));
    CU_ASSERT_EQUAL(r.err, CM_ERR_TIMEOUT);
    net_client_get_stats(nd_client_net(l.cl), &st);
    CU_ASSERT_EQUAL(st.retries, 1);

    /* a peer that closes every connection: retried, then CM_ERR_CLOSED */
    fake.port = cport;
    r = do_stat(&l, &fake, 0, &id);
    CU_ASSERT_EQUAL(r.err, CM_ERR_CLOSED);
    net_client_get_stats(nd_client_net(l.cl), &st);
    CU_ASSERT_EQUAL(st.retries, 2);

    /* nothing listening: refused */
    evconnlistener_free(lc);
    r = do_stat(&l, &fake, 0, &id);
    CU_ASSERT_EQUAL(r.err, CM_ERR_UNAVAILABLE);

    evconnlistener_free(ls);
    for (int i = 0; i < stall.n; i++)
        close(stall.fds[i]);
    loop_free(&l);
}
/* ---- throughput (figures for docs/rpc.md; ND_BENCH_MB=256 for figures worth quoting) ---- */

typedef struct {
    tloop *l;
    nd_peer peer;
    const uint8_t *src;
    size_t size;
    int next, total, inflight, failed;
    int reading;
    uint32_t id0; /* first chunk id of the run */
} tbench;

static void bench_kick(tbench *b);

static void bench_done(void *arg, const nd_result *res)
{
    tbench *b = arg;
    b->failed += res->err != CM_OK;
    b->inflight--;
    b->l->pending--;
    bench_kick(b);
}

static void bench_data(void *arg, nd_op *op, struct evbuffer *data)
{
    (void)arg;
    (void)op;
    evbuffer_drain(data, evbuffer_get_length(data));
}

static void bench_kick(tbench *b)
{
    while (b->inflight < 16 && b->next < b->total) {
        bs_id id = make_id(b->id0 + (uint32_t)b->next++);
        cm_err e;
        b->inflight++;
        b->l->pending++;
        if (b->reading) {
            e = nd_read(b->l->cl, &b->peer, (uint32_t)b->next % NDRIVES, &id, 0, UINT64_MAX,
                        bench_data, bench_done, b, NULL);
        } else {
            struct evbuffer *body = evbuffer_new();
            evbuffer_add_reference(body, b->src, b->size, NULL, NULL);
            e = nd_append(b->l->cl, &b->peer, (uint32_t)b->next % NDRIVES, &id, 0, b->size,
                          cm_crc32c(0, b->src, b->size), body, NULL, 1, bench_done, b, NULL);
            evbuffer_free(body);
        }
        CU_ASSERT_EQUAL(e, CM_OK);
    }
}

/* Run total appends (then reads) of size bytes, 16 in flight; returns seconds per phase. */
static void bench_run(tloop *l, const tnode *n, const uint8_t *src, size_t size, int total,
                      uint32_t id0, double secs[2])
{
    for (int phase = 0; phase < 2; phase++) {
        tbench b = {l, peer_of(n), src, size, 0, total, 0, 0, phase, id0};
        int64_t t0 = cm_monotonic_ms();
        bench_kick(&b);
        loop_run(l);
        secs[phase] = (double)(cm_monotonic_ms() - t0 + 1) / 1000.0;
        CU_ASSERT_EQUAL(b.failed, 0);
    }
}

static void test_throughput(void)
{
    tnode n;
    tloop l;
    const char *env = getenv("ND_BENCH_MB");
    int mb = env ? atoi(env) : 32;
    double big[2], small[2];
    uint8_t *src = malloc(1u << 20);
    node_start(&n, "bench", -1, 0);
    loop_default(&l);
    fill(src, 1u << 20, 11);
    bench_run(&l, &n, src, 1u << 20, mb, 1000, big);
    bench_run(&l, &n, src, 4096, mb * 16, 100000, small);
    printf("\n  node RPC on loopback, 16 in flight, synced appends (%d MiB):\n"
           "    1 MiB append %.0f MB/s, read %.0f MB/s; 4 KiB append %.0f/s, read %.0f/s\n",
           mb, mb * 1.048576 / big[0], mb * 1.048576 / big[1], mb * 16 / small[0],
           mb * 16 / small[1]);
    loop_free(&l);
    node_stop(&n);
    free(src);
}

/* The batch routes' framing (nd_batch.c): what a caller frames splits back to the same items; a
 * body of no item, one item too many, a cut item, a byte left over or a bad key is refused whole.
 */
static void test_batch_framing(void)
{
    static uint8_t body[(ND_META_BATCH_MAX + 1) * (4 + 8)];
    nd_batch_item it[ND_META_BATCH_MAX];
    const uint8_t *item = (const uint8_t *)"key-0001";
    for (int keys = 0; keys <= 1; keys++) {
        size_t hl = ND_BATCH_HDR(keys), len = 0;
        for (size_t i = 0; i < ND_META_BATCH_MAX; i++) {
            CU_ASSERT_EQUAL(nd_batch_frame(body + len, keys, item, 8), hl + 8);
            len += hl + 8;
        }
        CU_ASSERT_EQUAL(nd_batch_split(body, len, keys, it), ND_META_BATCH_MAX);
        CU_ASSERT(it[1].p == body + 2 * hl + 8 && it[1].len == 8 && memcmp(it[1].p, item, 8) == 0);
        CU_ASSERT_EQUAL(nd_batch_split(body, hl + 8, keys, it), 1);
        CU_ASSERT_EQUAL(nd_batch_split(body, 0, keys, it), 0);          /* no item */
        CU_ASSERT_EQUAL(nd_batch_split(body, hl + 7, keys, it), 0);     /* cut short */
        CU_ASSERT_EQUAL(nd_batch_split(body, hl + 8 + 1, keys, it), 0); /* a byte left over */
        nd_batch_frame(body + len, keys, item, 8);
        CU_ASSERT_EQUAL(nd_batch_split(body, len + hl + 8, keys, it), 0); /* one too many */
    }
    /* keys: 1..MD_MAX_KEY bytes without NUL; a record may be empty (it then does not decode) */
    static uint8_t big[2 + MD_MAX_KEY + 1];
    memset(big, 'k', sizeof(big));
    nd_batch_frame(body, 1, (const uint8_t *)"a\0b", 3);
    CU_ASSERT_EQUAL(nd_batch_split(body, 5, 1, it), 0);
    nd_batch_frame(body, 1, item, 0);
    CU_ASSERT_EQUAL(nd_batch_split(body, 2, 1, it), 0);
    nd_batch_frame(body, 0, item, 0);
    CU_ASSERT_EQUAL(nd_batch_split(body, 4, 0, it), 1);
    nd_batch_frame(big, 1, big + 2, MD_MAX_KEY);
    CU_ASSERT_EQUAL(nd_batch_split(big, 2 + MD_MAX_KEY, 1, it), 1);
    nd_batch_frame(big, 1, big + 2, MD_MAX_KEY + 1);
    CU_ASSERT_EQUAL(nd_batch_split(big, 2 + MD_MAX_KEY + 1, 1, it), 0);
}

/* A batch of reads' answer is exactly one known status per key, a record only after
 * ND_BATCH_FOUND. The caller (rp_remote.c reads_finish) once took the answers it wanted and
 * ignored any bytes left over: such an answer is now CM_ERR_CORRUPT, as is one answer short. */
static void test_batch_answer(void)
{
    uint8_t a[32];
    nd_batch_item it[4];
    size_t len = 0;
    a[len++] = ND_BATCH_FOUND;
    len += nd_batch_frame(a + len, 0, (const uint8_t *)"rec", 3);
    a[len++] = ND_BATCH_ABSENT;
    a[len++] = ND_BATCH_NO_BUCKET;
    a[len++] = ND_BATCH_FAILED;
    CU_ASSERT_EQUAL_FATAL(nd_batch_answer(a, len, 4, it), CM_OK);
    CU_ASSERT(it[0].st == ND_BATCH_FOUND && it[0].p == a + 5 && it[0].len == 3);
    CU_ASSERT(it[1].st == ND_BATCH_ABSENT && !it[1].p && it[1].len == 0);
    CU_ASSERT(it[2].st == ND_BATCH_NO_BUCKET && it[3].st == ND_BATCH_FAILED);
    CU_ASSERT_EQUAL(nd_batch_answer(a, len, 3, it), CM_ERR_CORRUPT);     /* a byte left over */
    CU_ASSERT_EQUAL(nd_batch_answer(a, len - 1, 4, it), CM_ERR_CORRUPT); /* one answer short */
    CU_ASSERT_EQUAL(nd_batch_answer(a, 6, 1, it), CM_ERR_CORRUPT);       /* the record cut */
    a[8] = ND_BATCH_APPLIED; /* a put's status in a read's answer */
    CU_ASSERT_EQUAL(nd_batch_answer(a, len, 4, it), CM_ERR_CORRUPT);
    a[0] = ND_BATCH_ABSENT, a[1] = 0xFF; /* not found, then a status no node sends */
    CU_ASSERT_EQUAL(nd_batch_answer(a, 2, 2, it), CM_ERR_CORRUPT);
}

/* ---- a sync still running when the server stops ---- */

/* fdatasync waits while the gate is held, and says it did (the client's loop wakes). */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int held, entered;
    struct event *wake;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL};

static int gated_fdatasync(void *ctx, int fd)
{
    pthread_mutex_lock(&gate.mu);
    if (gate.held) {
        gate.entered = 1;
        event_active(gate.wake, EV_TIMEOUT, 1);
    }
    while (gate.held)
        pthread_cond_wait(&gate.cv, &gate.mu);
    pthread_mutex_unlock(&gate.mu);
    return bs_io_posix.fdatasync(ctx, fd);
}

static void gate_entered_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/*
 * An append whose sync (on the service's worker) outlives the grace period: the stop cuts its
 * connection (the request is orphaned while busy) and the loop exits; the sync ends after, and
 * its answer goes to a loop that never runs again. nd_service_free must free the request: before,
 * it was left behind (LeakSanitizer in the sanitizer build).
 */
static void test_stop_with_sync_running(void)
{
    static bs_io io;
    uint8_t buf[4096];
    tnode n;
    tloop l;
    io = bs_io_posix;
    io.fdatasync = gated_fdatasync;
    node_io = &io;
    node_start(&n, "na", -1, 0);
    node_io = NULL;
    loop_default(&l);
    fill(buf, sizeof(buf), 31);
    bs_id warm = make_id(1), id = make_id(2);
    /* first a whole append, so that the segment exists and only the worker's sync waits below */
    CU_ASSERT_EQUAL(do_append(&l, &n, 0, &warm, 0, buf, 100, cm_crc32c(0, buf, 100)).err, CM_OK);
    pthread_mutex_lock(&gate.mu);
    gate.held = 1;
    gate.entered = 0;
    gate.wake = event_new(l.base, -1, 0, gate_entered_cb, l.base);
    pthread_mutex_unlock(&gate.mu);
    tres r;
    nd_peer p = peer_of(&n);
    tres_init(&r, &l);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, buf, sizeof(buf));
    CU_ASSERT_EQUAL(nd_append(l.cl, &p, 0, &id, 0, sizeof(buf), cm_crc32c(0, buf, sizeof(buf)), b,
                              NULL, 1, done_cb, &r, NULL),
                    CM_OK);
    evbuffer_free(b);
    struct event *guard = evtimer_new(l.base, guard_cb, &l);
    struct timeval tv = {10, 0};
    evtimer_add(guard, &tv);
    while (!l.hung && r.done == 0) { /* until the worker waits in its fdatasync */
        event_base_loop(l.base, EVLOOP_ONCE);
        pthread_mutex_lock(&gate.mu);
        int in = gate.entered;
        pthread_mutex_unlock(&gate.mu);
        if (in)
            break;
    }
    event_free(guard);
    CU_ASSERT_FALSE_FATAL(l.hung);
    CU_ASSERT_EQUAL(r.done, 0);
    net_server_stop(n.srv, 0); /* no grace: the busy connection is cut */
    pthread_join(n.th, NULL);
    pthread_mutex_lock(&gate.mu);
    gate.held = 0;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
    nd_service_free(n.svc); /* joins the worker, whose answer went to the stopped loop */
    net_server_free(n.srv);
    for (int d = 0; d < NDRIVES; d++)
        bs_close(n.bs[d]);
    loop_run(&l); /* the client's call ends: its connection was closed */
    CU_ASSERT_EQUAL(r.done, 1);
    CU_ASSERT_NOT_EQUAL(r.res.err, CM_OK);
    event_free(gate.wake);
    gate.wake = NULL;
    tres_release(&r);
    loop_free(&l);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"append_read_small", test_append_read_small},
        {"big_chunk_streamed", test_big_chunk_streamed},
        {"bad_checksum_refused", test_bad_checksum_refused},
        {"delete", test_delete},
        {"delete_replay", test_delete_replay},
        {"info", test_info},
        {"host_names", test_host_names},
        {"list", test_list},
        {"auth_refused", test_auth_refused},
        {"sign_canonical", test_sign_canonical},
        {"pool_reuse", test_pool_reuse},
        {"many_in_flight", test_many_in_flight},
        {"faults", test_faults},
        {"timeouts_and_retries", test_timeouts_and_retries},
        {"batch_framing", test_batch_framing},
        {"batch_answer", test_batch_answer},
        {"throughput", test_throughput},
        {"stop_with_sync_running", test_stop_with_sync_running},
        {NULL, NULL},
    };
    cu_add_suite("node", tests);
}
