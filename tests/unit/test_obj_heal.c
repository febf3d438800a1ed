/*
 * test_obj_heal.c - repair of bodies spread over nodes (obj/ob_heal.h): ob_heal on one body and
 * the ob_repair pass over a node's records.
 *
 * Every test starts four nodes in three AZs in this process: n1 (az1) is "this node", its drives
 * reached by the local backend on the test thread's loop; n2 (az2), n3 (az3) and n4 (az1) serve
 * theirs over the node RPC (an nd_service on a net_server thread each, loopback). Two drives per
 * node. Bodies are 2+2 with 64 KiB cells, placed by pl_place on the homes map, so at most two
 * cells share an AZ. A node is "down" when the client's fault table refuses it and the liveness
 * view marks it dead. Calls run the loop until their completions came (a 10 s guard fails a hang).
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "cu_main.h"
#include "cu_nodes.h"
#include "ec.h"
#include "ob_heal.h"
#include "ob_int.h"

static const uint8_t secret[] = "heal-test-secret";
#define SECRET_LEN (sizeof(secret) - 1)
#define NN 4
#define ND 2
enum { K = 2, M = 2, CELL = 64 * 1024 };

/* ---- nodes ---- */

typedef struct {
    bs_store *bs[ND];
    nd_drive drives[ND];
    char dirs[ND][300];
    cu_rpc rpc;
} tnode;

static struct {
    tnode node[NN];
    struct event_base *base;
    nd_faults *faults;
    nd_client *cl;
    ob_chunks *local;
    pl_topology *topo;
    pl_map *homes;
    ob_resolver *res;
    uint8_t dead[NN];
    int pending, hung;
} E;

static const char *ids[NN] = {"n1", "n2", "n3", "n4"};
static const char *azs[NN] = {"az1", "az2", "az3", "az1"};

static void node_up(int i)
{
    static int seq;
    tnode *n = &E.node[i];
    seq++;
    for (int d = 0; d < ND; d++) {
        snprintf(n->dirs[d], sizeof(n->dirs[d]), "%s/h%d-%s-d%d", cu_tmpdir(), seq, ids[i], d);
        bs_options o = {.compact_rate = -1};
        CU_ASSERT_EQUAL_FATAL(bs_open(n->dirs[d], &o, &n->bs[d]), CM_OK);
        n->drives[d] = (nd_drive){.path = n->dirs[d], .bs = n->bs[d]};
    }
    if (i == 0)
        return;
    cu_rpc_serve(&n->rpc, ids[i], secret, SECRET_LEN, n->drives, ND);
}

static void threads_on(void)
{
    evthread_use_pthreads();
}

static void env_up(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, threads_on);
    memset(&E, 0, sizeof(E));
    for (int i = 0; i < NN; i++)
        node_up(i);
    E.base = event_base_new();
    CU_ASSERT_EQUAL_FATAL(nd_faults_new(&E.faults), CM_OK);
    E.cl = cu_client(E.base, "n1", secret, SECRET_LEN, E.faults, 3000, 8);
    CU_ASSERT_EQUAL_FATAL(ob_chunks_local_new(E.base, E.node[0].drives, ND, 2, &E.local), CM_OK);
    E.topo = pl_topology_new(5);
    for (int i = 0; i < NN; i++)
        cu_topo_node(E.topo, ids[i], i ? E.node[i].rpc.port : 1, azs[i], ND);
    CU_ASSERT_EQUAL_FATAL(pl_map_new(E.topo, PL_MAP_HOMES, &E.homes), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_resolver_new(E.topo, "n1", E.local, E.cl, &E.res), CM_OK);
}

static void env_down(void)
{
    ob_resolver_free(E.res);
    pl_map_free(E.homes);
    pl_topology_free(E.topo);
    ob_chunks_free(E.local);
    nd_client_free(E.cl);
    nd_faults_free(E.faults);
    event_base_free(E.base);
    for (int i = 0; i < NN; i++) {
        tnode *n = &E.node[i];
        cu_rpc_stop(&n->rpc, 1000);
        for (int d = 0; d < ND; d++)
            bs_close(n->bs[d]);
    }
}

/* A node down: refused by the client and dead in the liveness view (or back up). */
static void node_down(int i, int down)
{
    E.dead[i] = (uint8_t)down;
    if (down) {
        CU_ASSERT_EQUAL(nd_fault_set(E.faults, "n1", ids[i], ND_FAULT_REFUSE, 0), CM_OK);
    } else {
        nd_fault_clear(E.faults, "n1", ids[i]);
    }
}

/* Run the loop until pending is 0 (or the guard); rc is what the call returned. */
static void await(cm_err rc)
{
    CU_ASSERT_EQUAL_FATAL(rc, CM_OK);
    E.pending++;
    cu_loop_while(E.base, cu_positive, &E.pending, &E.hung, 10);
    CU_ASSERT_FALSE(E.hung);
}

/* ---- chunk calls, one at a time ---- */

static struct {
    cm_err err;
    uint64_t size;
    struct evbuffer *data;
} last;

static void chunk_cb(void *arg, const ob_chunk_result *r)
{
    (void)arg;
    last.err = r->err;
    last.size = r->size;
    if (r->data)
        evbuffer_add_buffer(last.data, r->data);
    E.pending--;
}

static ob_chunks *at(pl_cell c, uint32_t *drive)
{
    ob_chunks *b = ob_resolve_cell(E.res, &c, drive);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    return b;
}

static cm_err chunk_stat(pl_cell c, const uint8_t blob[16], uint64_t *size)
{
    uint32_t d;
    bs_id id;
    memcpy(id.b, blob, 16);
    ob_chunks *b = at(c, &d);
    await(ob_chunk_stat(b, d, &id, chunk_cb, NULL));
    *size = last.size;
    return last.err;
}

static cm_err chunk_delete(pl_cell c, const uint8_t blob[16])
{
    uint32_t d;
    bs_id id;
    memcpy(id.b, blob, 16);
    ob_chunks *b = at(c, &d);
    await(ob_chunk_delete(b, d, &id, chunk_cb, NULL));
    return last.err;
}

/* The chunk at c made anew as p[0..len) (synced). */
static cm_err chunk_put(pl_cell c, const uint8_t blob[16], const uint8_t *p, uint64_t len)
{
    uint32_t d;
    bs_id id;
    memcpy(id.b, blob, 16);
    ob_chunks *b = at(c, &d);
    struct evbuffer *buf = evbuffer_new();
    CU_ASSERT_FATAL(buf && evbuffer_add(buf, p, len) == 0);
    await(ob_chunk_delete(b, d, &id, chunk_cb, NULL));
    await(ob_chunk_append(b, d, &id, 0, buf, cm_crc32c(0, p, len), OB_CHUNK_SYNC, chunk_cb, NULL));
    evbuffer_free(buf);
    return last.err;
}

/* 1 when the whole chunk at c is want[0..len). */
static int chunk_is(pl_cell c, const uint8_t blob[16], const uint8_t *want, uint64_t len)
{
    uint32_t d;
    bs_id id;
    memcpy(id.b, blob, 16);
    ob_chunks *b = at(c, &d);
    last.data = evbuffer_new();
    await(ob_chunk_read(b, d, &id, 0, len, chunk_cb, NULL));
    int ok = last.err == CM_OK && evbuffer_get_length(last.data) == len &&
             memcmp(evbuffer_pullup(last.data, (ev_ssize_t)len), want, len) == 0;
    evbuffer_free(last.data);
    last.data = NULL;
    return ok;
}

/* ---- bodies ---- */

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static struct {
    cm_err err;
    md_layout lay;
    ob_heal_result heal;
    int failed;
    struct evbuffer *got;
} R;

static void put_cb(void *arg, cm_err err, const md_layout *lay)
{
    (void)arg;
    R.err = err;
    if (lay)
        R.lay = *lay;
    E.pending--;
}

/* Write body over its homes; returns its layout. */
/* Write body as id over its homes; returns its layout (cells refused at write read 0xFF). */
static md_layout put_id(const uint8_t *body, size_t len, uint32_t cell_size, const bs_id *id)
{
    pl_cell cells[K + M];
    CU_ASSERT_FATAL(pl_place(E.homes, id->b, K, M, cells) == CM_OK);
    ob_put_config pc = {K, M, cell_size, E.topo->epoch, cells, id};
    await(ob_put_body(E.res, &pc, body, len, put_cb, NULL));
    CU_ASSERT_EQUAL_FATAL(R.err, CM_OK);
    return R.lay;
}

static md_layout put_cells(const uint8_t *body, size_t len, uint32_t cell_size)
{
    bs_id id;
    CU_ASSERT_FATAL(bs_id_new(&id) == CM_OK);
    md_layout l = put_id(body, len, cell_size, &id);
    for (int i = 0; i < K + M; i++)
        CU_ASSERT_NOT_EQUAL(l.drives[i], 0xFF);
    return l;
}

static md_layout put(const uint8_t *body, size_t len)
{
    return put_cells(body, len, CELL);
}

/* Cell i of body as the codec makes it (every stripe's cell i back to back); caller frees. */
static uint8_t *cell_bytes(const uint8_t *body, size_t len, int i, uint64_t *total)
{
    ec_codec *codec;
    size_t full = (size_t)K * CELL;
    uint8_t *out = malloc(len / K + 2 * CELL), *stripe = malloc((size_t)(K + M) * CELL);
    CU_ASSERT_FATAL(ec_new(K, M, &codec) == CM_OK);
    *total = 0;
    for (size_t pos = 0; pos < len;) {
        size_t n = CM_MIN(len - pos, full);
        uint32_t clen = n == full ? CELL : ob_last_cell_len(n, K);
        uint8_t *cells[K + M];
        memset(stripe, 0, (size_t)(K + M) * CELL);
        memcpy(stripe, body + pos, n);
        for (int c = 0; c < K + M; c++)
            cells[c] = stripe + (size_t)c * clen;
        ec_encode(codec, clen, cells, cells + K);
        memcpy(out + *total, cells[i], clen);
        *total += clen;
        pos += n;
    }
    ec_free(codec);
    free(stripe);
    return out;
}

static int same_cell(pl_cell a, pl_cell b)
{
    return a.node == b.node && a.drive == b.drive;
}

static pl_cell cell_of(const md_layout *l, int i)
{
    return (pl_cell){l->nodes[i], l->drives[i]};
}

/* Every cell of l holds exactly its bytes. */
static void check_all_cells(const uint8_t *body, size_t len, const md_layout *l)
{
    for (int i = 0; i < K + M; i++) {
        uint64_t n;
        uint8_t *want = cell_bytes(body, len, i, &n);
        CU_ASSERT_NOT_EQUAL_FATAL(l->drives[i], 0xFF);
        CU_ASSERT_EQUAL(n, ob_layout_cell_blob_len(l));
        CU_ASSERT(chunk_is(cell_of(l, i), l->blob, want, n));
        free(want);
    }
}

static void get_cb(void *arg, cm_err err, struct evbuffer *data)
{
    (void)arg;
    R.err = err;
    if (data)
        evbuffer_add_buffer(R.got, data);
    E.pending--;
}

/* The whole body read through ob_get_range (8 MiB ranges) equals body. */
static int reads_back(const md_layout *l, const uint8_t *body, size_t len)
{
    int ok = 1;
    for (size_t off = 0; ok && off < len; off += 8u << 20) {
        size_t n = CM_MIN(len - off, 8u << 20);
        R.got = evbuffer_new();
        await(ob_get_range(E.res, l, off, n, get_cb, NULL));
        ok = R.err == CM_OK && evbuffer_get_length(R.got) == n &&
             memcmp(evbuffer_pullup(R.got, (ev_ssize_t)n), body + off, n) == 0;
        evbuffer_free(R.got);
    }
    return ok;
}

static void heal_cb(void *arg, cm_err err, const ob_heal_result *res)
{
    (void)arg;
    R.err = err;
    R.heal = *res;
    E.pending--;
}

static cm_err heal(const md_layout *l, const ob_pacer *p, unsigned flags)
{
    ob_heal_config hc = {E.topo, E.homes, E.dead, p, flags, NULL, NULL};
    memset(&R.heal, 0, sizeof(R.heal));
    await(ob_heal(E.res, &hc, l, heal_cb, NULL));
    return R.err;
}

static void drop_cb(void *arg, int failed)
{
    (void)arg;
    R.failed = failed;
    E.pending--;
}

/* The first cell of l on node (or -1). */
static int cell_on(const md_layout *l, int node)
{
    for (int i = 0; i < K + M; i++)
        if (l->nodes[i] == node && l->drives[i] != 0xFF)
            return i;
    return -1;
}

/* A remote node holding a cell of l. */
static int remote_holder(const md_layout *l)
{
    for (int n = 1; n < NN; n++)
        if (cell_on(l, n) >= 0)
            return n;
    CU_FAIL_FATAL("no cell on a remote node");
    return -1;
}

static int64_t az_cells(const md_layout *l, const char *az)
{
    int n = 0;
    for (int i = 0; i < K + M; i++)
        n += l->drives[i] != 0xFF && strcmp(azs[l->nodes[i]], az) == 0;
    return n;
}

/* ---- tests ---- */

enum { LEN = 2 * K * CELL + 5000 }; /* two full stripes and a short one */

/* One node's chunks deleted: healed in place; then the body reads back from the rebuilt cells
 * with every other original cell but k - rebuilt gone. */
static void test_heal_missing(void)
{
    uint8_t *body = malloc(LEN);
    env_up();
    fill(body, LEN, 1);
    md_layout l = put(body, LEN);
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK); /* healthy: nothing to do */
    CU_ASSERT_EQUAL(R.heal.healthy, K + M);
    CU_ASSERT_EQUAL(R.heal.rebuilt, 0);
    CU_ASSERT_FALSE(R.heal.changed);

    int victim = remote_holder(&l), lost[K + M] = {0}, nlost = 0;
    for (int i = 0; i < K + M; i++)
        if (l.nodes[i] == victim) {
            CU_ASSERT_EQUAL(chunk_delete(cell_of(&l, i), l.blob), CM_OK);
            lost[i] = 1, nlost++;
        }
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK);
    CU_ASSERT_EQUAL(R.heal.rebuilt, nlost);
    CU_ASSERT_EQUAL(R.heal.healthy, K + M - nlost);
    CU_ASSERT_EQUAL(R.heal.missing, 0);
    CU_ASSERT_EQUAL(R.heal.nobsolete, 0); /* rebuilt at home, where they were */
    CU_ASSERT_EQUAL(R.heal.bytes, nlost * ob_layout_cell_blob_len(&l));
    CU_ASSERT(memcmp(R.heal.lay.drives, l.drives, sizeof(l.drives)) == 0);
    md_layout fresh = R.heal.lay;
    check_all_cells(body, LEN, &fresh);

    /* keep only k cells, the rebuilt ones among them: the read must use them */
    int keep = nlost;
    for (int i = 0; i < K + M; i++)
        if (!lost[i] && keep++ >= K)
            CU_ASSERT_EQUAL(chunk_delete(cell_of(&fresh, i), fresh.blob), CM_OK);
    CU_ASSERT(reads_back(&fresh, body, LEN));
    free(body);
    env_down();
}

/* Home node down: its cells go to handoff drives within the AZ cap; home back: they move home
 * and the handoff chunks go once the new layout is in. */
static void test_heal_handoff(void)
{
    uint8_t *body = malloc(LEN);
    env_up();
    fill(body, LEN, 2);
    md_layout l = put(body, LEN), orig = l;
    int victim = remote_holder(&l);
    node_down(victim, 1);
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK);
    md_layout h = R.heal.lay;
    CU_ASSERT(R.heal.changed);
    CU_ASSERT(R.heal.rebuilt >= 1);
    CU_ASSERT_EQUAL(R.heal.missing, 0);
    CU_ASSERT_EQUAL(cell_on(&h, victim), -1);
    CU_ASSERT_EQUAL(R.heal.nobsolete, R.heal.rebuilt); /* the down node's cells, for later */
    for (int a = 0; a < 3; a++)
        CU_ASSERT(az_cells(&h, (const char *[]){"az1", "az2", "az3"}[a]) <= M);
    check_all_cells(body, LEN, &h);
    /* the old places are on the dead node: the drop cannot reach them (orphans, counted) */
    await(ob_heal_drop(E.res, h.blob, R.heal.obsolete, R.heal.nobsolete, drop_cb, NULL));
    CU_ASSERT_EQUAL(R.failed, R.heal.rebuilt);

    CU_ASSERT_EQUAL(heal(&h, NULL, 0), CM_OK); /* still down: stays on the handoffs */
    CU_ASSERT_EQUAL(R.heal.rebuilt, 0);

    node_down(victim, 0);
    CU_ASSERT_EQUAL(heal(&h, NULL, 0), CM_OK);
    md_layout back = R.heal.lay;
    CU_ASSERT(R.heal.changed);
    CU_ASSERT_EQUAL(R.heal.healthy, K + M - R.heal.rebuilt);
    CU_ASSERT(memcmp(back.drives, orig.drives, sizeof(back.drives)) == 0);
    CU_ASSERT(memcmp(back.nodes, orig.nodes, sizeof(back.nodes)) == 0);
    check_all_cells(body, LEN, &back);
    int nob = R.heal.nobsolete;
    pl_cell ob[MD_MAX_CELLS];
    memcpy(ob, R.heal.obsolete, sizeof(ob));
    CU_ASSERT_EQUAL(nob, R.heal.rebuilt);
    await(ob_heal_drop(E.res, back.blob, ob, nob, drop_cb, NULL));
    CU_ASSERT_EQUAL(R.failed, 0);
    for (int i = 0; i < nob; i++) {
        uint64_t sz;
        CU_ASSERT_EQUAL(chunk_stat(ob[i], back.blob, &sz), CM_ERR_NOTFOUND);
    }
    CU_ASSERT(reads_back(&back, body, LEN));
    free(body);
    env_down();
}

/* Flip one byte of the first record of blob in the segment files under dir (the blobstore's
 * documented format: 32-byte file header, then records of a 48-byte header, nb CRC words, the
 * payload, padded to 8). Returns 1 when it found the record. */
static int corrupt(const char *dir, const uint8_t blob[16])
{
    DIR *dh = opendir(dir);
    struct dirent *de;
    int hit = 0;
    while (dh && !hit && (de = readdir(dh))) {
        char path[600];
        uint8_t h[48];
        if (strncmp(de->d_name, "seg-", 4) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        int fd = open(path, O_RDWR);
        off_t off = 32;
        while (fd >= 0 && !hit && pread(fd, h, sizeof(h), off) == (ssize_t)sizeof(h) &&
               cm_get_be32(h) == 0x43425243u) {
            uint32_t len = cm_get_be32(h + 32), nb = cm_get_be32(h + 36);
            if (h[4] == 1 && memcmp(h + 8, blob, 16) == 0) {
                off_t p = off + 48 + 4 * (off_t)nb + 77;
                uint8_t b;
                hit = pread(fd, &b, 1, p) == 1 && (b ^= 0xA5, pwrite(fd, &b, 1, p) == 1);
            }
            off += h[4] == 1 ? (off_t)((48 + 4ull * nb + len + 7) & ~7ull) : 48;
        }
        if (fd >= 0)
            close(fd);
    }
    if (dh)
        closedir(dh);
    return hit;
}

/* A corrupt cell: found by a verifying heal and rebuilt in place; and, without verify, found
 * when read as a source while another cell is rebuilt (the stripes restart for it). */
static void test_heal_corrupt(void)
{
    uint8_t *body = malloc(LEN);
    env_up();
    fill(body, LEN, 3);
    md_layout l = put(body, LEN);
    CU_ASSERT_FATAL(corrupt(E.node[l.nodes[1]].dirs[l.drives[1]], l.blob));
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK); /* stat cannot see it */
    CU_ASSERT_EQUAL(R.heal.rebuilt, 0);
    CU_ASSERT_EQUAL(heal(&l, NULL, OB_HEAL_VERIFY), CM_OK);
    CU_ASSERT_EQUAL(R.heal.rebuilt, 1);
    CU_ASSERT_EQUAL(R.heal.healthy, K + M);
    check_all_cells(body, LEN, &l);

    /* data cell 0 corrupt and cell 3 gone: 0 is read first as a source, fails, is rebuilt too */
    CU_ASSERT_FATAL(corrupt(E.node[l.nodes[0]].dirs[l.drives[0]], l.blob));
    CU_ASSERT_EQUAL(chunk_delete(cell_of(&l, 3), l.blob), CM_OK);
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK);
    CU_ASSERT_EQUAL(R.heal.rebuilt, 2);
    CU_ASSERT_EQUAL(R.heal.bytes, 2 * ob_layout_cell_blob_len(&l));
    check_all_cells(body, LEN, &l);
    free(body);
    env_down();
}

/*
 * A flaky local backend: its stats and appends end flaky_err (CM_ERR_TIMEOUT as a slow node's
 * would, CM_ERR_AUTH as a node refusing the call; on the loop), everything else goes through to
 * the real one.
 */
static cm_err flaky_err = CM_ERR_TIMEOUT;

typedef struct {
    ob_chunks base;
    ob_chunks *inner;
} flaky_chunks;

typedef struct {
    ob_chunk_done done;
    void *arg;
} flaky_call;

static void flaky_end(evutil_socket_t fd, short what, void *arg)
{
    flaky_call fc = *(flaky_call *)arg;
    ob_chunk_result r = {flaky_err, 0, NULL, NULL, 0, 0, "flaky"};
    (void)fd, (void)what;
    free(arg);
    fc.done(fc.arg, &r);
}

static cm_err flaky_timeout(ob_chunk_done done, void *arg)
{
    flaky_call *fc = malloc(sizeof(*fc));
    *fc = (flaky_call){done, arg};
    return event_base_once(E.base, -1, EV_TIMEOUT, flaky_end, fc, NULL) == 0 ? CM_OK : CM_ERR_NOMEM;
}

static cm_err flaky_append(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off,
                           struct evbuffer *body, uint32_t crc32c, unsigned flags,
                           ob_chunk_done done, void *arg)
{
    (void)c, (void)drive, (void)id, (void)off, (void)crc32c, (void)flags;
    evbuffer_drain(body, evbuffer_get_length(body));
    return flaky_timeout(done, arg);
}

static cm_err flaky_seal(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t len,
                         ob_chunk_done done, void *arg)
{
    return ob_chunk_seal(((flaky_chunks *)c)->inner, drive, id, len, done, arg);
}

static cm_err flaky_read(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off, uint64_t len,
                         ob_chunk_done done, void *arg)
{
    return ob_chunk_read(((flaky_chunks *)c)->inner, drive, id, off, len, done, arg);
}

static cm_err flaky_del(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done,
                        void *arg)
{
    return ob_chunk_delete(((flaky_chunks *)c)->inner, drive, id, done, arg);
}

static cm_err flaky_stat(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done,
                         void *arg)
{
    (void)c, (void)drive, (void)id;
    return flaky_timeout(done, arg);
}

static cm_err flaky_list(ob_chunks *c, uint32_t drive, const bs_id *after, size_t max,
                         ob_chunk_done done, void *arg)
{
    return ob_chunk_list(((flaky_chunks *)c)->inner, drive, after, max, done, arg);
}

static void flaky_free(ob_chunks *c)
{
    (void)c; /* on the test's stack */
}

static const ob_chunk_ops flaky_ops = {flaky_append, flaky_seal, flaky_read, flaky_del,
                                       flaky_stat,   flaky_list, flaky_free};

/*
 * This node's drives stop answering stats and appends in time (a slow disk, an overloaded node
 * that is not down for the liveness view): a heal must not take its cells for missing and
 * rebuild them in place, since that deletes them first and the rewrite then fails: the good
 * cells would be gone. They are left alone (counted missing), their chunks intact. The same for
 * a node that refuses the stats (CM_ERR_AUTH: a retried call that once went out unsigned).
 */
static void heal_unanswered(cm_err e)
{
    uint8_t *body = malloc(LEN);
    md_layout l;
    int tries = 0;
    env_up();
    fill(body, LEN, 5);
    do /* a body with a cell on this node */
        l = put(body, LEN);
    while (cell_on(&l, 0) < 0 && ++tries < 64);
    CU_ASSERT_FATAL(cell_on(&l, 0) >= 0);
    flaky_chunks fl = {{&flaky_ops}, E.local};
    flaky_err = e;
    ob_resolver *good = E.res;
    CU_ASSERT_FATAL(ob_resolver_new(E.topo, "n1", &fl.base, E.cl, &E.res) == CM_OK);
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK);
    CU_ASSERT_EQUAL(R.heal.rebuilt, 0);
    CU_ASSERT(R.heal.missing >= 1);
    CU_ASSERT_FALSE(R.heal.changed);
    ob_resolver_free(E.res);
    E.res = good;
    check_all_cells(body, LEN, &l); /* nothing was deleted */
    free(body);
    flaky_err = CM_ERR_TIMEOUT;
    env_down();
}

static void test_heal_no_answer(void)
{
    heal_unanswered(CM_ERR_TIMEOUT);
}

static void test_heal_refused_stat(void)
{
    heal_unanswered(CM_ERR_AUTH);
}

/*
 * A cell dropped at write (its node refused the append: 0xFF in the layout) is rebuilt at its
 * home once the node is back. Then a drive set draining in a new layout epoch: its cell moves to
 * the new home (a copy), the layout takes the new epoch, names the drained drive as obsolete and
 * ends with every cell on a home of the new map, in one heal.
 */
static void test_heal_dropped_draining(void)
{
    uint8_t *body = malloc(LEN);
    bs_id id;
    pl_cell home[K + M];
    int victim = -1, cell = -1;
    env_up();
    fill(body, LEN, 5);
    while (victim < 0) { /* an id whose cells put exactly one on some remote node */
        CU_ASSERT_FATAL(bs_id_new(&id) == CM_OK);
        CU_ASSERT_FATAL(pl_place(E.homes, id.b, K, M, home) == CM_OK);
        for (int n = 1; n < NN && victim < 0; n++) {
            int on = 0, at = -1;
            for (int i = 0; i < K + M; i++)
                if (home[i].node == n)
                    on++, at = i;
            if (on == 1)
                victim = n, cell = at;
        }
    }
    CU_ASSERT_EQUAL(nd_fault_set(E.faults, "n1", ids[victim], ND_FAULT_REFUSE, 0), CM_OK);
    md_layout l = put_id(body, LEN, CELL, &id);
    nd_fault_clear(E.faults, "n1", ids[victim]);
    CU_ASSERT_EQUAL_FATAL(l.drives[cell], 0xFF);
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK);
    CU_ASSERT_EQUAL(R.heal.rebuilt, 1);
    CU_ASSERT_EQUAL(R.heal.nobsolete, 0);
    md_layout h = R.heal.lay;
    CU_ASSERT_EQUAL(h.nodes[cell], home[cell].node);
    CU_ASSERT_EQUAL(h.drives[cell], home[cell].drive);
    check_all_cells(body, LEN, &h);

    /* epoch 6: cell 0's drive drains */
    pl_topology *t2;
    pl_map *m2;
    CU_ASSERT_FATAL(pl_topology_clone(E.topo, &t2) == CM_OK);
    t2->epoch++;
    t2->nodes[h.nodes[0]].drives[h.drives[0]].state = PL_DRAINING;
    CU_ASSERT_FATAL(pl_map_new(t2, PL_MAP_HOMES, &m2) == CM_OK);
    ob_heal_config hc = {t2, m2, E.dead, NULL, 0, NULL, NULL};
    pl_cell want[K + M], drained = cell_of(&h, 0);
    CU_ASSERT_FATAL(pl_place(m2, h.blob, K, M, want) == CM_OK);
    /* one heal is enough: homes are a set, so only the drained cell moves (blocked would ask
     * for another round) */
    int rounds = 0, moved = 0, drained_obsolete = 0;
    do {
        memset(&R.heal, 0, sizeof(R.heal));
        await(ob_heal(E.res, &hc, &h, heal_cb, NULL));
        CU_ASSERT_EQUAL_FATAL(R.err, CM_OK);
        moved += R.heal.rebuilt;
        CU_ASSERT_EQUAL(R.heal.nobsolete, R.heal.rebuilt);
        for (int i = 0; i < R.heal.nobsolete; i++)
            drained_obsolete |= same_cell(R.heal.obsolete[i], drained);
        if (R.heal.changed)
            CU_ASSERT_EQUAL(R.heal.lay.epoch, t2->epoch);
        h = R.heal.lay;
    } while (R.heal.blocked > 0 && ++rounds < 4);
    CU_ASSERT_EQUAL(R.heal.blocked, 0);
    CU_ASSERT_EQUAL(rounds, 0);
    CU_ASSERT_EQUAL(moved, 1);
    CU_ASSERT(drained_obsolete);
    for (int i = 0; i < K + M; i++) { /* every cell on one of the new homes (a set) */
        int on_home = 0;
        for (int j = 0; j < K + M; j++)
            on_home |= same_cell(cell_of(&h, i), want[j]);
        CU_ASSERT(on_home);
    }
    check_all_cells(body, LEN, &h);
    pl_map_free(m2);
    pl_topology_free(t2);
    free(body);
    env_down();
}

/* ---- the pacer ---- */

static int paced, stop_after;
static uint64_t paced_bytes;

static int count_pace(void *arg, uint64_t n)
{
    (void)arg;
    paced++;
    paced_bytes += n;
    return stop_after > 0 && paced >= stop_after;
}

/* The pacer runs once per round of stripes with its bytes (full stripes go together, up to 1 MiB
 * per cell; the short last one alone), and stops a heal between rounds: nothing written stays
 * and the layout is unchanged. Too few cells: unavailable. */
static void test_heal_paced(void)
{
    uint8_t *body = malloc(LEN);
    env_up();
    fill(body, LEN, 4);
    md_layout l = put(body, LEN);
    int victim = remote_holder(&l), i = cell_on(&l, victim);
    ob_pacer p = {count_pace, NULL, NULL};
    CU_ASSERT_EQUAL(chunk_delete(cell_of(&l, i), l.blob), CM_OK);
    paced = 0, paced_bytes = 0, stop_after = 2;
    CU_ASSERT_EQUAL(heal(&l, &p, 0), CM_ERR_CLOSED);
    CU_ASSERT_EQUAL(paced, 2);
    CU_ASSERT_FALSE(R.heal.changed);
    uint64_t sz;
    CU_ASSERT_EQUAL(chunk_stat(cell_of(&l, i), l.blob, &sz), CM_ERR_NOTFOUND);

    paced = 0, paced_bytes = 0, stop_after = 0;
    CU_ASSERT_EQUAL(heal(&l, &p, 0), CM_OK);
    CU_ASSERT_EQUAL(paced, 2); /* two rounds: both full stripes in one, the short one */
    CU_ASSERT_EQUAL(paced_bytes, (uint64_t)K * ob_layout_cell_blob_len(&l));
    check_all_cells(body, LEN, &l);

    for (int j = 0; j < M + 1; j++) /* three cells gone of 2+2 */
        CU_ASSERT_EQUAL(chunk_delete(cell_of(&l, j), l.blob), CM_OK);
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_ERR_UNAVAILABLE);
    md_layout zero = l;
    zero.epoch = 0;
    ob_heal_config hc = {E.topo, E.homes, E.dead, NULL, 0, NULL, NULL};
    CU_ASSERT_EQUAL(ob_heal(E.res, &hc, &zero, heal_cb, NULL), CM_ERR_INVAL);
    free(body);
    env_down();
}

/* ---- the pass over a node's records ---- */

enum { NOBJ = 6, LEN2 = K * CELL + 3000 }; /* two stripes each */
static const char *buckets[2] = {"alpha", "beta"};

static void obj_key(int j, char *key, size_t cap)
{
    snprintf(key, cap, "obj-%d\nwith a newline", j); /* keys may hold any byte */
}

/* Body b as stored: part 0 of record b, or (b = NOBJ) part 1 of the last record. */
static md_layout stored(md_store *md, int b)
{
    char key[64];
    md_object o;
    int j = b < NOBJ ? b : NOBJ - 1;
    obj_key(j, key, sizeof(key));
    CU_ASSERT_FATAL(md_object_get(md, buckets[j % 2], key, &o) == CM_OK);
    CU_ASSERT_FATAL(o.nparts == (j == NOBJ - 1 ? 2u : 1u));
    md_layout l = o.parts[b < NOBJ ? 0 : 1].layout;
    md_object_release(&o);
    return l;
}

static int pass_defer; /* pass_new: defer_obsolete */

static ob_repair *pass_new(md_store *md, const char *state, ob_pacer *p)
{
    ob_repair_config rc = {md, E.res, E.base, E.topo, E.homes, E.dead, state,     p,
                           0,  2,     NULL,   NULL,   NULL,    NULL,   pass_defer};
    ob_repair *rp;
    CU_ASSERT_FATAL(ob_repair_new(&rc, &rp) == CM_OK);
    return rp;
}

/*
 * Six records in two buckets (the last a multipart object of two parts: seven bodies), listed two
 * at a time. A node goes down: a pass stopped by its pacer after one heal keeps its cursor; the
 * next pass resumes after it and heals the rest onto handoff drives, swapped into the records.
 * The node comes back: a pass moves every cell home and deletes the handoff chunks after the
 * swap.
 */
/* The cluster hooks (cmd/cluster_repair.c): heal only the first bucket, count the swaps. */
static int hook_swaps;

static int hook_mine(void *arg, const char *bucket, const char *key)
{
    (void)arg, (void)key;
    return strcmp(bucket, buckets[0]) == 0;
}

static cm_err hook_swap(void *arg, const char *bucket, const char *key, size_t part,
                        const md_layout *old, const md_layout *lay)
{
    hook_swaps++;
    return md_object_replace_layout(arg, bucket, key, part, old->blob, lay);
}

static void test_repair_pass(void)
{
    uint8_t *body[NOBJ + 1]; /* one per record, and a second part of the last record */
    md_layout orig[NOBJ + 1];
    char path[400], state[420];
    md_store *md;
    env_up();
    snprintf(path, sizeof(path), "%s/meta-%p", cu_tmpdir(), (void *)&E);
    snprintf(state, sizeof(state), "%s.repair", path);
    CU_ASSERT_FATAL(md_open(path, 0, &md) == CM_OK);
    ob_repair *rp = pass_new(md, state, NULL); /* a store without buckets: an empty pass */
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_free(rp);
    for (int b = 0; b < 2; b++) {
        md_bucket mb = {.name = ""};
        snprintf(mb.name, sizeof(mb.name), "%s", buckets[b]);
        CU_ASSERT_FATAL(md_bucket_create(md, &mb) == CM_OK);
    }
    int on[NN] = {0};
    for (int b = 0; b <= NOBJ; b++) {
        body[b] = malloc(LEN2);
        fill(body[b], LEN2, 100 + (uint64_t)b);
        orig[b] = put(body[b], LEN2);
        for (int n = 1; n < NN; n++)
            on[n] += cell_on(&orig[b], n) >= 0;
    }
    for (int j = 0; j < NOBJ; j++) {
        md_object o;
        md_part part[2];
        char key[64];
        memset(&o, 0, sizeof(o));
        memset(part, 0, sizeof(part));
        obj_key(j, key, sizeof(key));
        o.nparts = j == NOBJ - 1 ? 2 : 1; /* the last record: a multipart object */
        for (size_t p = 0; p < o.nparts; p++) {
            part[p].number = o.nparts > 1 ? (uint32_t)p + 1 : 0;
            part[p].size = LEN2;
            part[p].layout = orig[p == 0 ? j : NOBJ];
        }
        o.key = key;
        o.size = LEN2 * o.nparts;
        o.parts = part;
        snprintf(o.etag, sizeof(o.etag), "%s", o.nparts > 1 ? "abc-2" : "abc");
        CU_ASSERT_FATAL(md_object_put(md, buckets[j % 2], &o, NULL, NULL, NULL) == CM_OK);
    }
    int victim = 1;
    for (int n = 2; n < NN; n++)
        victim = on[n] > on[victim] ? n : victim;
    CU_ASSERT_FATAL(on[victim] >= 2);
    node_down(victim, 1);

    ob_pacer p = {count_pace, NULL, NULL};
    ob_repair_status st;
    paced = 0, stop_after = 3; /* the first degraded body's two rounds, then stop */
    rp = pass_new(md, state, &p);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_ERR_CLOSED);
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(st.records, NOBJ);
    CU_ASSERT(st.scanned < NOBJ);
    CU_ASSERT_EQUAL(st.healed, 1);
    CU_ASSERT_EQUAL(st.full_redundancy_s, -1);
    CU_ASSERT_EQUAL(access(state, F_OK), 0);
    uint64_t first_scanned = st.scanned, healed = st.healed;

    paced = 0, stop_after = 0;
    rp = pass_new(md, state, &p);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(st.records, NOBJ - first_scanned); /* resumed after the cursor */
    CU_ASSERT_EQUAL(st.scanned, NOBJ - first_scanned);
    CU_ASSERT_EQUAL(st.failed, 0);
    CU_ASSERT_EQUAL(healed + st.healed, (uint64_t)on[victim]);
    CU_ASSERT(st.mbps > 0);
    CU_ASSERT(st.full_redundancy_s >= 0);
    CU_ASSERT_EQUAL(st.eta_s, 0);
    CU_ASSERT_NOT_EQUAL(access(state, F_OK), 0); /* a finished pass leaves no cursor */
    for (int b = 0; b <= NOBJ; b++) {
        md_layout l = stored(md, b);
        CU_ASSERT_EQUAL(cell_on(&l, victim), -1);
        check_all_cells(body[b], LEN2, &l);
    }

    node_down(victim, 0);
    /* with the hooks: only the first bucket's bodies go home, each through swap */
    uint64_t in_first = 0;
    for (int b = 0; b <= NOBJ; b++)
        in_first += (b < NOBJ ? b : NOBJ - 1) % 2 == 0 && cell_on(&orig[b], victim) >= 0;
    CU_ASSERT(in_first > 0 && in_first < (uint64_t)on[victim]); /* both kinds are there */
    ob_repair_config hc = {md, E.res, E.base,    E.topo,    E.homes, E.dead, state, NULL,
                           0,  2,     hook_mine, hook_swap, NULL,    md,     0};
    hook_swaps = 0;
    CU_ASSERT_FATAL(ob_repair_new(&hc, &rp) == CM_OK);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(st.records, NOBJ); /* every record is visited, the others' skipped */
    CU_ASSERT_EQUAL(st.healed, in_first);
    CU_ASSERT_EQUAL((uint64_t)hook_swaps, in_first);
    rp = pass_new(md, state, NULL);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(st.records, NOBJ);
    CU_ASSERT_EQUAL(st.healed + in_first, (uint64_t)on[victim]);
    for (int j = 0; j <= NOBJ; j++) {
        md_layout l = stored(md, j);
        CU_ASSERT(memcmp(l.drives, orig[j].drives, sizeof(l.drives)) == 0);
        CU_ASSERT(memcmp(l.nodes, orig[j].nodes, sizeof(l.nodes)) == 0);
        check_all_cells(body[j], LEN2, &l);
        /* every drive not named by the layout holds nothing of it: the handoffs were deleted */
        for (int n = 0; n < NN; n++)
            for (int d = 0; d < ND; d++) {
                pl_cell c = {(uint16_t)n, (uint16_t)d};
                int named = 0;
                uint64_t sz;
                for (int i = 0; i < K + M; i++)
                    named |= same_cell(cell_of(&l, i), c);
                if (!named)
                    CU_ASSERT_EQUAL(chunk_stat(c, l.blob, &sz), CM_ERR_NOTFOUND);
            }
        free(body[j]);
    }
    md_close(md);
    env_down();
}

/* The record of obj_key(0) with one part of LEN2 bytes at lay (key and part are the caller's). */
static md_object one_part(char *key, size_t cap, md_part *part, const md_layout *lay)
{
    md_object o;
    memset(&o, 0, sizeof(o));
    memset(part, 0, sizeof(*part));
    obj_key(0, key, cap);
    part->size = LEN2;
    part->layout = *lay;
    o.key = key, o.size = LEN2, o.parts = part, o.nparts = 1;
    return o;
}

/* A pass with rc over md, then part 0 of alpha/key as the record names it. */
static md_layout pass_then_layout(const ob_repair_config *rc, md_store *md, const char *key)
{
    ob_repair *rp;
    md_object o;
    CU_ASSERT_FATAL(ob_repair_new(rc, &rp) == CM_OK);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_free(rp);
    CU_ASSERT_FATAL(md_object_get(md, "alpha", key, &o) == CM_OK);
    md_layout l = o.parts[0].layout;
    md_object_release(&o);
    return l;
}

/*
 * A swap that fails without a clear answer (CM_ERR_UNAVAILABLE: the replicated write missed its
 * quorum but may have reached a replica, from where it can win later) must not delete the cells
 * it just wrote. Here the write did land: the record names the handoff cells, which must still be
 * there, and the old cells stay too (the layout may yet go back to them). CM_ERR_CONFLICT (the
 * record certainly changed) still deletes them.
 */
static cm_err swap_result;
static md_layout swap_winner; /* the other swap's layout, for CM_ERR_EXISTS */

static cm_err swap_lands_then_fails(void *arg, const char *bucket, const char *key, size_t part,
                                    const md_layout *old, const md_layout *lay)
{
    if (swap_result == CM_ERR_CONFLICT)
        return swap_result;           /* not written */
    if (swap_result == CM_ERR_EXISTS) /* written, but another swap of the old version won */
        return md_object_replace_layout(arg, bucket, key, part, old->blob, &swap_winner);
    cm_err e = md_object_replace_layout(arg, bucket, key, part, old->blob, lay);
    return e == CM_OK ? swap_result : e;
}

static void test_repair_swap_unknown(void)
{
    char path[400], key[64];
    md_store *md;
    md_bucket mb = {.name = "alpha"};
    md_part part;
    md_object o;
    env_up();
    snprintf(path, sizeof(path), "%s/meta-swap-%p", cu_tmpdir(), (void *)&E);
    CU_ASSERT_FATAL(md_open(path, 0, &md) == CM_OK);
    CU_ASSERT_FATAL(md_bucket_create(md, &mb) == CM_OK);
    uint8_t *body = malloc(LEN2);
    fill(body, LEN2, 7);
    md_layout orig = put(body, LEN2);
    o = one_part(key, sizeof(key), &part, &orig);
    snprintf(o.etag, sizeof(o.etag), "abc");
    CU_ASSERT_FATAL(md_object_put(md, "alpha", &o, NULL, NULL, NULL) == CM_OK);
    int victim = remote_holder(&orig);
    node_down(victim, 1);

    swap_result = CM_ERR_UNAVAILABLE;
    ob_repair_config rc = {md,   E.res, E.base, E.topo, E.homes, E.dead,
                           NULL, NULL,  0,      2,      NULL,    swap_lands_then_fails,
                           NULL, md,    0};
    md_layout now = pass_then_layout(&rc, md, key);
    ob_repair *rp;
    CU_ASSERT_EQUAL(cell_on(&now, victim), -1); /* the swap landed */
    check_all_cells(body, LEN2, &now);          /* and every cell it names is there */
    CU_ASSERT(reads_back(&now, body, LEN2));
    node_down(victim, 0);
    check_all_cells(body, LEN2, &orig); /* the old cells were not deleted either */

    /* a certain refusal, and a swap that another swap of the old version beat: the cells
     * written for it go */
    static const cm_err outcomes[] = {CM_ERR_CONFLICT, CM_ERR_EXISTS};
    swap_winner = orig; /* another heal's layout: the old one with a cell dropped */
    swap_winner.drives[cell_on(&orig, victim) == 0 ? 1 : 0] = 0xFF;
    for (int r = 0; r < 2; r++) {
        const md_layout *left = r == 0 ? &orig : &swap_winner; /* what the record names after */
        CU_ASSERT_FATAL(md_object_replace_layout(md, "alpha", key, 0, orig.blob, &orig) == CM_OK);
        node_down(victim, 1);
        swap_result = outcomes[r];
        CU_ASSERT_FATAL(ob_repair_new(&rc, &rp) == CM_OK);
        CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
        ob_repair_free(rp);
        node_down(victim, 0);
        CU_ASSERT_FATAL(md_object_get(md, "alpha", key, &o) == CM_OK);
        CU_ASSERT(memcmp(o.parts[0].layout.drives, left->drives, sizeof(orig.drives)) == 0);
        md_object_release(&o);
        for (int i = 0; i < K + M; i++) {
            int old_place = 0;
            uint64_t sz;
            for (int j = 0; j < K + M; j++)
                old_place |= same_cell(cell_of(&orig, j), cell_of(&now, i));
            if (!old_place)
                CU_ASSERT_EQUAL(chunk_stat(cell_of(&now, i), orig.blob, &sz), CM_ERR_NOTFOUND);
        }
    }
    check_all_cells(body, LEN2, &orig);
    free(body);
    md_close(md);
    env_down();
}

/*
 * Two nodes heal one body: this node's replica of the record is stale (it still names the old
 * layout) while another node's heal already swapped its layout into the record the quorum reads
 * (md_quorum here), with cells on the same handoff drives this heal picks. This heal's prepare
 * and cleanup must not delete those cells (they are the record's now): its targets are given
 * up, its swap is refused (the record names another layout), and the body reads back whole from
 * the record's layout.
 */
static cm_err quorum_swap(void *arg, const char *bucket, const char *key, size_t part,
                          const md_layout *old, const md_layout *lay)
{
    md_object o;
    cm_err e = md_object_get(arg, bucket, key, &o);
    if (e != CM_OK)
        return e == CM_ERR_NOTFOUND ? CM_ERR_CONFLICT : e;
    int same = part < o.nparts && ob_layout_same_cells(&o.parts[part].layout, old);
    md_object_release(&o);
    hook_swaps++;
    return same ? md_object_replace_layout(arg, bucket, key, part, old->blob, lay)
                : CM_ERR_CONFLICT;
}

static cm_err quorum_current(void *arg, const char *bucket, const char *key, size_t part,
                             md_layout *out)
{
    md_object o;
    cm_err e = md_object_get(arg, bucket, key, &o);
    if (e == CM_OK && part >= o.nparts)
        e = CM_ERR_NOTFOUND;
    if (e == CM_OK)
        *out = o.parts[part].layout;
    md_object_release(&o);
    return e;
}

static void test_repair_two_healers(void)
{
    char path[400], key[64];
    md_store *md[2]; /* this node's stale replica, the record as the quorum reads it */
    md_bucket mb = {.name = "alpha"};
    md_part part;
    md_object o;
    env_up();
    uint8_t *body = malloc(LEN2);
    fill(body, LEN2, 11);
    md_layout orig = put(body, LEN2);
    o = one_part(key, sizeof(key), &part, &orig);
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/meta-two-%d-%p", cu_tmpdir(), i, (void *)&E);
        CU_ASSERT_FATAL(md_open(path, 0, &md[i]) == CM_OK);
        CU_ASSERT_FATAL(md_bucket_create(md[i], &mb) == CM_OK);
        CU_ASSERT_FATAL(md_object_put(md[i], "alpha", &o, NULL, NULL, NULL) == CM_OK);
    }
    int victim = remote_holder(&orig);
    node_down(victim, 1);
    /* the other node's pass: heals onto handoffs and swaps into the quorum's record */
    ob_repair_config other = {md[1], E.res, E.base, E.topo, E.homes, E.dead, .page = 2};
    ob_repair *rp;
    CU_ASSERT_FATAL(ob_repair_new(&other, &rp) == CM_OK);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_free(rp);
    CU_ASSERT_FATAL(md_object_get(md[1], "alpha", key, &o) == CM_OK);
    md_layout theirs = o.parts[0].layout;
    md_object_release(&o);
    CU_ASSERT_FATAL(!ob_layout_same_cells(&theirs, &orig));
    check_all_cells(body, LEN2, &theirs);

    /* this node's pass walks its stale replica (the old layout) */
    ob_repair_config mine = other;
    mine.md = md[0];
    mine.swap = quorum_swap, mine.current = quorum_current, mine.hook_arg = md[1];
    hook_swaps = 0;
    CU_ASSERT_FATAL(ob_repair_new(&mine, &rp) == CM_OK);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_status st;
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(st.healed, 0); /* nothing of its own to write: every target was taken */
    CU_ASSERT_EQUAL(hook_swaps, 0);
    CU_ASSERT_FATAL(md_object_get(md[1], "alpha", key, &o) == CM_OK);
    CU_ASSERT(ob_layout_same_cells(&o.parts[0].layout, &theirs));
    md_object_release(&o);
    check_all_cells(body, LEN2, &theirs); /* the other heal's cells are all there */
    CU_ASSERT(reads_back(&theirs, body, LEN2));
    node_down(victim, 0);
    free(body);
    md_close(md[0]);
    md_close(md[1]);
    env_down();
}

/*
 * Two nodes heal one body at once (cmd/cluster_repair.c: the first live home of the key's
 * partition changes while the other node's heal still runs), both from the record's layout.
 * This pass's heal has written its cells on the handoffs; before its swap lands, the other
 * node's heal starts from the same layout: its prepare deletes the chunks at its targets (the
 * guard lets it: the record still names the layout it started from), and then either
 *   - it is stopped before writing any (its pacer; a failed append ends the same way), or
 *   - its plan differed (another liveness view) and it wrote another cell of the body there.
 * Then this swap lands: the record names cells that are gone (the GET's re-read finds the same
 * layout: no retry helps) or hold the wrong cell's bytes (a body read through them is wrong).
 * The pass must read back the cells it swapped in and heal the body again until they are right.
 */
static md_store *race_md;
static int race_swaps, race_other_cell;
static const uint8_t *race_body;

static int stop_at_once(void *arg, uint64_t n)
{
    (void)arg, (void)n;
    return 1;
}

static cm_err swap_after_other_heal(void *arg, const char *bucket, const char *key, size_t part,
                                    const md_layout *old, const md_layout *lay)
{
    if (race_swaps++ == 0 && !race_other_cell) { /* between this heal's writes and its swap */
        ob_pacer stop = {stop_at_once, NULL, NULL};
        ob_repair_config oc = {race_md, E.res,  E.base,    E.topo,
                               E.homes, E.dead, .page = 2, .pacer = &stop};
        ob_repair *rp;
        CU_ASSERT_FATAL(ob_repair_new(&oc, &rp) == CM_OK);
        CU_ASSERT_EQUAL(ob_repair_run(rp), CM_ERR_CLOSED);
        ob_repair_free(rp);
    } else if (race_swaps == 1) { /* the other heal put the next cell where this one moved one */
        for (int i = 0; i < K + M; i++) {
            uint64_t n;
            if (same_cell(cell_of(lay, i), cell_of(old, i)))
                continue;
            uint8_t *other = cell_bytes(race_body, LEN2, (i + 1) % (K + M), &n);
            CU_ASSERT_EQUAL(chunk_put(cell_of(lay, i), lay->blob, other, n), CM_OK);
            free(other);
        }
    }
    return md_object_replace_layout(arg, bucket, key, part, old->blob, lay);
}

static void heal_overlap(int other_cell)
{
    char path[400], key[64];
    md_bucket mb = {.name = "alpha"};
    md_part part;
    md_object o;
    env_up();
    uint8_t *body = malloc(LEN2);
    fill(body, LEN2, 13);
    race_body = body, race_other_cell = other_cell;
    bs_id id = {{4}}; /* placed so that one cell moves and one node holds two others */
    md_layout orig = put_id(body, LEN2, CELL, &id);
    o = one_part(key, sizeof(key), &part, &orig);
    snprintf(path, sizeof(path), "%s/meta-overlap-%d-%p", cu_tmpdir(), other_cell, (void *)&E);
    CU_ASSERT_FATAL(md_open(path, 0, &race_md) == CM_OK);
    CU_ASSERT_FATAL(md_bucket_create(race_md, &mb) == CM_OK);
    CU_ASSERT_FATAL(md_object_put(race_md, "alpha", &o, NULL, NULL, NULL) == CM_OK);
    int victim = remote_holder(&orig);
    node_down(victim, 1);

    race_swaps = 0;
    ob_repair_config rc = {race_md,
                           E.res,
                           E.base,
                           E.topo,
                           E.homes,
                           E.dead,
                           .page = 2,
                           .swap = swap_after_other_heal,
                           .hook_arg = race_md};
    md_layout now = pass_then_layout(&rc, race_md, key);
    CU_ASSERT_EQUAL(cell_on(&now, victim), -1); /* the swap landed */
    check_all_cells(body, LEN2, &now);          /* and every cell it names is whole */
    CU_ASSERT(reads_back(&now, body, LEN2));
    /* the cut: nodes out of reach until the moved cells and k - 1 others are all a GET has */
    int moved[K + M], left = 0, down[NN] = {0};
    for (int i = 0; i < K + M; i++) {
        moved[i] = !same_cell(cell_of(&now, i), cell_of(&orig, i));
        left += !moved[i];
    }
    for (int n = 1; n < NN && left > K - 1; n++) {
        int here = 0, keep = n == victim;
        for (int i = 0; i < K + M; i++) {
            here += now.nodes[i] == n && !moved[i];
            keep |= now.nodes[i] == n && moved[i];
        }
        if (keep || here == 0 || left - here < K - 1)
            continue;
        node_down(n, 1);
        down[n] = 1, left -= here;
    }
    CU_ASSERT_EQUAL_FATAL(left, K - 1);
    CU_ASSERT(reads_back(&now, body, LEN2));
    for (int n = 1; n < NN; n++)
        if (down[n])
            node_down(n, 0);
    node_down(victim, 0);
    free(body);
    md_close(race_md);
    env_down();
}

/*
 * The same, earlier: the other heal's prepare deletes this heal's cell after its last append and
 * before this pass looks at it (a local backend whose next stat of the chunk last synced comes
 * after a delete of it). The pass sees the cell gone before its swap: nothing is swapped in and
 * nothing deleted, the record still names the old layout, whose cells are all there.
 */
static struct {
    int armed;
    uint32_t drive;
    bs_id id;
    ob_chunks *inner;
    ob_chunk_done done;
    void *arg;
} steal;

static cm_err steal_append(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off,
                           struct evbuffer *body, uint32_t crc32c, unsigned flags,
                           ob_chunk_done done, void *arg)
{
    if (flags & OB_CHUNK_SYNC)
        steal.armed = 1, steal.drive = drive, steal.id = *id;
    return ob_chunk_append(((flaky_chunks *)c)->inner, drive, id, off, body, crc32c, flags, done,
                           arg);
}

static void steal_deleted(void *arg, const ob_chunk_result *r)
{
    (void)arg;
    CU_ASSERT_EQUAL(r->err, CM_OK);
    CU_ASSERT_EQUAL(ob_chunk_stat(steal.inner, steal.drive, &steal.id, steal.done, steal.arg),
                    CM_OK);
}

static cm_err steal_stat(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done,
                         void *arg)
{
    ob_chunks *in = ((flaky_chunks *)c)->inner;
    if (!steal.armed || drive != steal.drive || memcmp(id, &steal.id, sizeof(*id)) != 0)
        return ob_chunk_stat(in, drive, id, done, arg);
    steal.armed = 0, steal.inner = in, steal.done = done, steal.arg = arg;
    return ob_chunk_delete(in, drive, id, steal_deleted, NULL);
}

static const ob_chunk_ops steal_ops = {steal_append, flaky_seal, flaky_read, flaky_del,
                                       steal_stat,   flaky_list, flaky_free};

static void test_repair_heal_overlap_early(void)
{
    char path[400], key[64];
    md_bucket mb = {.name = "alpha"};
    md_part part;
    md_object o;
    md_store *md;
    env_up();
    uint8_t *body = malloc(LEN2);
    fill(body, LEN2, 17);
    bs_id id = {{6}}; /* placed so that n2's one cell moves to this node (the local backend) */
    md_layout orig = put_id(body, LEN2, CELL, &id);
    o = one_part(key, sizeof(key), &part, &orig);
    snprintf(path, sizeof(path), "%s/meta-early-%p", cu_tmpdir(), (void *)&E);
    CU_ASSERT_FATAL(md_open(path, 0, &md) == CM_OK);
    CU_ASSERT_FATAL(md_bucket_create(md, &mb) == CM_OK);
    CU_ASSERT_FATAL(md_object_put(md, "alpha", &o, NULL, NULL, NULL) == CM_OK);
    int victim = remote_holder(&orig);
    node_down(victim, 1);
    flaky_chunks st = {{&steal_ops}, E.local};
    ob_resolver *good = E.res;
    CU_ASSERT_FATAL(ob_resolver_new(E.topo, "n1", &st.base, E.cl, &E.res) == CM_OK);
    memset(&steal, 0, sizeof(steal));
    ob_repair_config rc = {md, E.res, E.base, E.topo, E.homes, E.dead, .page = 2};
    md_layout now = pass_then_layout(&rc, md, key);
    ob_resolver_free(E.res);
    E.res = good;
    CU_ASSERT(steal.inner != NULL); /* the cell was taken */
    CU_ASSERT(ob_layout_same_cells(&now, &orig));
    CU_ASSERT(reads_back(&now, body, LEN2));
    node_down(victim, 0);
    check_all_cells(body, LEN2, &orig);
    free(body);
    md_close(md);
    env_down();
}

static void test_repair_heal_overlap(void)
{
    heal_overlap(0); /* the cells swapped in are gone */
    heal_overlap(1); /* they hold another cell */
}

/* ---- a measurement: heal speed against the codec's own ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * A body of OB_HEAL_BENCH_MB (default 8) MiB in 2+2 with cells of OB_HEAL_BENCH_CELL_KB (default
 * 256, the server's default cell size) KiB; one remote node's chunks
 * deleted and healed. Prints the heal's rate (cell bytes written and synced per second) and, in
 * the same run, the disk's (as many bytes written to one file and synced) and ISA-L's (as many
 * cells rebuilt in memory), with the ratios. Asserts that the heal rebuilt the cells and the body
 * reads back.
 */
static void test_heal_bench(void)
{
    const char *env = getenv("OB_HEAL_BENCH_MB");
    size_t mb = env ? strtoul(env, NULL, 10) : 8, len = (mb ? mb : 8) << 20;
    const char *ckb = getenv("OB_HEAL_BENCH_CELL_KB");
    uint32_t cell = (ckb ? (uint32_t)strtoul(ckb, NULL, 10) : 256) << 10;
    if (cell == 0 || cell > (16u << 20))
        cell = 256u << 10;
    uint8_t *body = malloc(len);
    env_up();
    fill(body, len, 9);
    md_layout l = put_cells(body, len, cell);
    int victim = remote_holder(&l), lost = 0, present[K + M];
    for (int i = 0; i < K + M; i++) {
        present[i] = l.nodes[i] != victim;
        if (!present[i]) {
            CU_ASSERT_EQUAL(chunk_delete(cell_of(&l, i), l.blob), CM_OK);
            lost++;
        }
    }
    double t0 = now_s();
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK);
    double heal_s = now_s() - t0;
    CU_ASSERT_EQUAL(R.heal.rebuilt, lost);
    uint64_t bytes = R.heal.bytes;
    CU_ASSERT(reads_back(&R.heal.lay, body, len));

    ec_codec *codec;
    uint8_t *stripe = NULL, *cells[K + M];
    CU_ASSERT_FATAL(ec_new(K, M, &codec) == CM_OK);
    CU_ASSERT_FATAL(posix_memalign((void **)&stripe, 64, (size_t)(K + M) * cell) == 0);
    for (int i = 0; i < K + M; i++)
        cells[i] = stripe + (size_t)i * cell;
    fill(stripe, (size_t)K * cell, 10);
    ec_encode(codec, cell, cells, cells + K);
    size_t stripes = len / ((size_t)K * cell);
    t0 = now_s();
    for (size_t s = 0; s < stripes; s++)
        CU_ASSERT_EQUAL(ec_reconstruct(codec, cell, cells, present), CM_OK);
    double ec_s = now_s() - t0;
    /* the disk: the same bytes written in cell-sized pieces to one file, then fdatasync */
    char path[400];
    snprintf(path, sizeof(path), "%s/disk-bench", cu_tmpdir());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    t0 = now_s();
    for (uint64_t w = 0; w < bytes; w += cell)
        CU_ASSERT_EQUAL(write(fd, stripe, cell), (ssize_t)cell);
    CU_ASSERT_EQUAL(fdatasync(fd), 0);
    double disk_s = now_s() - t0;
    close(fd);
    unlink(path);
    double disk_mbps = (double)bytes / 1e6 / disk_s;
    double heal_mbps = (double)bytes / 1e6 / heal_s;
    double ec_mbps = (double)stripes * lost * cell / 1e6 / ec_s;
    printf("\n  heal of %zu MiB (2+2, %u KiB cells, %d cells lost): %.1f MB/s of rebuilt cells "
           "written and synced; the disk writing as much: %.1f MB/s (heal/disk %.2f); ISA-L "
           "rebuilding as much in memory: %.0f MB/s (heal/ISA-L %.4f)\n",
           len >> 20, cell >> 10, lost, heal_mbps, disk_mbps, heal_mbps / disk_mbps, ec_mbps,
           heal_mbps / ec_mbps);
    ec_free(codec);
    free(stripe);
    free(body);
    env_down();
}

/* The cursor test's mine hook: counts the records, notes whether the cursor file existed
 * while the pass ran, and stops the pass at the stop_at'th record. */
typedef struct {
    const char *state;
    ob_repair *rp;
    int seen, cursor_seen, stop_at;
} cursor_probe;

static int probe_mine(void *arg, const char *bucket, const char *key)
{
    cursor_probe *cp = arg;
    (void)bucket, (void)key;
    cp->cursor_seen += access(cp->state, F_OK) == 0;
    if (++cp->seen == cp->stop_at)
        ob_repair_stop(cp->rp);
    return 0; /* none of them is this node's to heal */
}

/*
 * The cursor of a pass over healthy records is not written per record (an open, fdatasync and
 * rename each: 700 a second per node while a loopback cluster's passes ran) but at most once a
 * second, and when the pass is stopped, so that the next pass still resumes after the last
 * record done.
 */
static void test_repair_cursor_batched(void)
{
    enum { NREC = 200 };
    char path[400], state[420], key[32];
    md_store *md;
    ob_repair *rp;
    env_up();
    snprintf(path, sizeof(path), "%s/meta-cursor", cu_tmpdir());
    snprintf(state, sizeof(state), "%s.repair", path);
    CU_ASSERT_FATAL(md_open(path, 0, &md) == CM_OK);
    md_bucket mb = {.name = "gamma"};
    CU_ASSERT_FATAL(md_bucket_create(md, &mb) == CM_OK);
    for (int j = 0; j < NREC; j++) {
        md_object o;
        memset(&o, 0, sizeof(o));
        snprintf(key, sizeof(key), "k%04d", j);
        o.key = key;
        snprintf(o.etag, sizeof(o.etag), "e");
        CU_ASSERT_FATAL(md_object_put(md, "gamma", &o, NULL, NULL, NULL) == CM_OK);
    }
    cursor_probe cp = {.state = state, .stop_at = 150};
    ob_repair_config rc = {md, E.res, E.base,     E.topo, E.homes, E.dead, state, NULL,
                           0,  16,    probe_mine, NULL,   NULL,    &cp,    0};
    CU_ASSERT_FATAL(ob_repair_new(&rc, &rp) == CM_OK);
    cp.rp = rp;
    int64_t t0 = cm_now_ms();
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_ERR_CLOSED);
    int64_t took = cm_now_ms() - t0;
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(cp.seen, 150);
    if (took < 900) /* a pass this short saves no cursor until it is stopped */
        CU_ASSERT_EQUAL(cp.cursor_seen, 0);
    CU_ASSERT_EQUAL(access(state, F_OK), 0);
    memset(&cp, 0, sizeof(cp));
    cp.state = state;
    CU_ASSERT_FATAL(ob_repair_new(&rc, &rp) == CM_OK);
    cp.rp = rp;
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_status st;
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(st.records, NREC - 150); /* resumed after the 150th record */
    CU_ASSERT_EQUAL(cp.seen, NREC - 150);
    CU_ASSERT_NOT_EQUAL(access(state, F_OK), 0); /* a finished pass leaves no cursor */
    md_close(md);
    env_down();
}

/* Cells of g's layout that are not 0xFF. */
static int garbage_cells(const md_layout *l)
{
    int n = 0;
    for (int i = 0; i < K + M; i++)
        n += l->drives[i] != 0xFF;
    return n;
}

/*
 * defer_obsolete (a cluster's pass): the old places a swap leaves are not deleted but recorded as
 * one garbage record stamped now, naming exactly them. A node down: its cells go to handoffs, the
 * entry names its places; the node back: the cells move home, the handoffs stay on their drives
 * and a second entry names them. At reclaim (ob_gc_cells), nothing of the first entry is freed
 * (the record names those places again) and all of the second is.
 */
static void test_repair_defer_obsolete(void)
{
    char path[400], key[64];
    md_store *md;
    md_part part;
    md_garbage *g = NULL;
    size_t n = 0;
    uint8_t *body = malloc(LEN2);
    env_up();
    snprintf(path, sizeof(path), "%s/meta-defer-%p", cu_tmpdir(), (void *)&E);
    CU_ASSERT_FATAL(md_open(path, 0, &md) == CM_OK);
    md_bucket mb = {.name = ""};
    snprintf(mb.name, sizeof(mb.name), "%s", buckets[0]);
    CU_ASSERT_FATAL(md_bucket_create(md, &mb) == CM_OK);
    fill(body, LEN2, 7);
    md_layout orig = put(body, LEN2);
    md_object o = one_part(key, sizeof(key), &part, &orig);
    CU_ASSERT_FATAL(md_object_put(md, buckets[0], &o, NULL, NULL, NULL) == CM_OK);
    int victim = remote_holder(&orig), on_victim = 0;
    for (int i = 0; i < K + M; i++)
        on_victim += orig.nodes[i] == victim;

    int64_t t0 = cm_now_ms();
    node_down(victim, 1);
    pass_defer = 1;
    ob_repair *rp = pass_new(md, NULL, NULL);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_free(rp);
    md_layout h = stored(md, 0);
    CU_ASSERT_EQUAL(cell_on(&h, victim), -1);
    CU_ASSERT_FATAL(md_garbage_list(md, UINT64_MAX, 10, &g, &n) == CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT(memcmp(g[0].layout.blob, orig.blob, 16) == 0);
    CU_ASSERT(MD_HLC_MS(g[0].hlc) >= t0 && MD_HLC_MS(g[0].hlc) <= cm_now_ms());
    CU_ASSERT_EQUAL(garbage_cells(&g[0].layout), on_victim);
    for (int i = 0; i < K + M; i++)
        CU_ASSERT(g[0].layout.drives[i] == 0xFF || g[0].layout.nodes[i] == victim);
    md_garbage_free(g, n);

    node_down(victim, 0);
    rp = pass_new(md, NULL, NULL);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_free(rp);
    pass_defer = 0;
    md_layout back = stored(md, 0);
    CU_ASSERT(memcmp(back.drives, orig.drives, sizeof(back.drives)) == 0);
    CU_ASSERT(memcmp(back.nodes, orig.nodes, sizeof(back.nodes)) == 0);
    check_all_cells(body, LEN2, &back);
    int moved = 0;
    for (int i = 0; i < K + M; i++) {
        uint64_t sz;
        if (same_cell(cell_of(&h, i), cell_of(&back, i)))
            continue;
        moved++;
        CU_ASSERT_EQUAL(chunk_stat(cell_of(&h, i), h.blob, &sz), CM_OK); /* the handoff stays */
    }
    CU_ASSERT_EQUAL(moved, on_victim);
    CU_ASSERT_FATAL(md_garbage_list(md, UINT64_MAX, 10, &g, &n) == CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    md_layout free0, free1;
    CU_ASSERT_EQUAL(ob_gc_cells(md, &g[0], NULL, NULL, &free0), 1);
    CU_ASSERT_EQUAL(garbage_cells(&free0), 0); /* moved back home: nothing to free */
    CU_ASSERT_EQUAL(ob_gc_cells(md, &g[1], NULL, NULL, &free1), 1);
    CU_ASSERT_EQUAL(garbage_cells(&free1), moved); /* the handoffs */
    for (int i = 0; i < K + M; i++)
        CU_ASSERT(free1.drives[i] == 0xFF || cell_on(&h, free1.nodes[i]) >= 0);
    md_garbage_free(g, n);
    CU_ASSERT(reads_back(&back, body, LEN2));
    free(body);
    md_close(md);
    env_down();
}

/*
 * The cut GET of docs/cluster.md (h85): a reader holds a layout with cells on handoffs (here put
 * there by a heal while their node v was down, as a write hands them off when v failed a call
 * lately); v is back and a whole AZ is down (n2 or n3, each alone in its AZ); a pass moves v's
 * cells home and swaps. The old places deleted at once (defer_obsolete 0, what a cluster's pass
 * did before h34): the reader finds them "not found" and, with the AZ down, fewer than k cells.
 * Deferred (a cluster's pass now): the reader's layout still reads. Returns reads_back of the
 * reader's layout (-1: no body of the needed shape in 40 tries).
 */
static int move_under_reader(int defer)
{
    char path[400], key[64];
    md_store *md;
    md_part part;
    uint8_t *body = malloc(LEN2);
    int read_ok = -1;
    env_up();
    snprintf(path, sizeof(path), "%s/meta-move-%d-%p", cu_tmpdir(), defer, (void *)&E);
    CU_ASSERT_FATAL(md_open(path, 0, &md) == CM_OK);
    md_bucket mb = {.name = ""};
    snprintf(mb.name, sizeof(mb.name), "%s", buckets[0]);
    CU_ASSERT_FATAL(md_bucket_create(md, &mb) == CM_OK);
    fill(body, LEN2, 40 + (uint64_t)defer);
    for (int tries = 0; tries < 40 && read_ok < 0; tries++) {
        md_layout orig = put(body, LEN2);
        int v = remote_holder(&orig), d = -1;
        node_down(v, 1);
        CU_ASSERT_EQUAL(heal(&orig, NULL, 0), CM_OK);
        md_layout h = R.heal.lay; /* what the reader read: v's cells on handoffs */
        int nv = R.heal.rebuilt;
        node_down(v, 0);
        for (int n = 1; n <= 2 && R.heal.changed && cell_on(&h, v) < 0; n++) {
            int on = 0, hand_on_n = 0;
            for (int i = 0; i < K + M; i++) {
                on += h.nodes[i] == n && h.drives[i] != 0xFF;
                hand_on_n |= orig.nodes[i] == v && h.nodes[i] == n;
            }
            if (n != v && !hand_on_n && on + nv > M) /* the move leaves the reader < k cells */
                d = n;
        }
        if (d < 0)
            continue;
        md_object o = one_part(key, sizeof(key), &part, &h);
        CU_ASSERT_FATAL(md_object_put(md, buckets[0], &o, NULL, NULL, NULL) == CM_OK);
        node_down(d, 1); /* a whole AZ */
        pass_defer = defer;
        ob_repair *rp = pass_new(md, NULL, NULL);
        CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
        ob_repair_free(rp);
        pass_defer = 0;
        md_layout now = stored(md, 0);
        for (int i = 0; i < K + M; i++) /* v's cells moved home, the AZ down or not */
            if (orig.nodes[i] == v)
                CU_ASSERT(same_cell(cell_of(&now, i), cell_of(&orig, i)));
        read_ok = reads_back(&h, body, LEN2);
        node_down(d, 0);
    }
    free(body);
    md_close(md);
    env_down();
    return read_ok;
}

static void test_repair_move_under_reader(void)
{
    CU_ASSERT_EQUAL(move_under_reader(0), 0); /* deleted at once: the reader is cut */
    CU_ASSERT_EQUAL(move_under_reader(1), 1); /* deferred: it reads on */
}

void cu_register(void)
{
    static const cu_test heal_tests[] = {
        {"heal_missing", test_heal_missing},
        {"heal_handoff", test_heal_handoff},
        {"heal_corrupt", test_heal_corrupt},
        {"heal_no_answer", test_heal_no_answer},
        {"heal_refused_stat", test_heal_refused_stat},
        {"heal_dropped_draining", test_heal_dropped_draining},
        {"heal_paced", test_heal_paced},
        {"repair_pass", test_repair_pass},
        {"repair_swap_unknown", test_repair_swap_unknown},
        {"repair_two_healers", test_repair_two_healers},
        {"repair_heal_overlap", test_repair_heal_overlap},
        {"repair_heal_overlap_early", test_repair_heal_overlap_early},
        {"heal_bench", test_heal_bench},
        {"repair_cursor_batched", test_repair_cursor_batched},
        {"repair_defer_obsolete", test_repair_defer_obsolete},
        {"repair_move_under_reader", test_repair_move_under_reader},
        {NULL, NULL}};
    cu_add_suite("obj_heal", heal_tests);
}
