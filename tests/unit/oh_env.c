/*
 * oh_env.c - the heal tests' fixture (oh_env.h): four nodes in this process, chunk calls one at a
 * time, bodies written and checked cell by cell, a flaky local backend and a counting pacer.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "cu_main.h"
#include "ec.h"
#include "oh_env.h"

static const uint8_t secret[] = "heal-test-secret";
#define SECRET_LEN (sizeof(secret) - 1)

heal_env E;
const char *ids[NN] = {"n1", "n2", "n3", "n4"};
const char *azs[NN] = {"az1", "az2", "az3", "az1"};

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

void env_up(void)
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

void env_down(void)
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
void node_down(int i, int down)
{
    E.dead[i] = (uint8_t)down;
    if (down) {
        CU_ASSERT_EQUAL(nd_fault_set(E.faults, "n1", ids[i], ND_FAULT_REFUSE, 0), CM_OK);
    } else {
        nd_fault_clear(E.faults, "n1", ids[i]);
    }
}

/* Run the loop until pending is 0 (or the guard); rc is what the call returned. */
void await(cm_err rc)
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

ob_chunks *at(pl_cell c, uint32_t *drive)
{
    ob_chunks *b = ob_resolve_cell(E.res, &c, drive);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    return b;
}

cm_err chunk_stat(pl_cell c, const uint8_t blob[16], uint64_t *size)
{
    uint32_t d;
    bs_id id;
    memcpy(id.b, blob, 16);
    ob_chunks *b = at(c, &d);
    await(ob_chunk_stat(b, d, &id, chunk_cb, NULL));
    *size = last.size;
    return last.err;
}

cm_err chunk_delete(pl_cell c, const uint8_t blob[16])
{
    uint32_t d;
    bs_id id;
    memcpy(id.b, blob, 16);
    ob_chunks *b = at(c, &d);
    await(ob_chunk_delete(b, d, &id, chunk_cb, NULL));
    return last.err;
}

/* The chunk at c made anew as p[0..len) (synced). */
cm_err chunk_put(pl_cell c, const uint8_t blob[16], const uint8_t *p, uint64_t len)
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
int chunk_is(pl_cell c, const uint8_t blob[16], const uint8_t *want, uint64_t len)
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

void fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

heal_results R;

static void put_cb(void *arg, cm_err err, const md_layout *lay)
{
    (void)arg;
    R.err = err;
    if (lay)
        R.lay = *lay;
    E.pending--;
}

/* Write body as id over its homes; returns its layout (cells refused at write read 0xFF). */
md_layout put_id(const uint8_t *body, size_t len, uint32_t cell_size, const bs_id *id)
{
    pl_cell cells[K + M];
    CU_ASSERT_FATAL(pl_place(E.homes, id->b, K, M, cells) == CM_OK);
    ob_put_config pc = {K, M, cell_size, E.topo->epoch, cells, id};
    await(ob_put_body(E.res, &pc, body, len, put_cb, NULL));
    CU_ASSERT_EQUAL_FATAL(R.err, CM_OK);
    return R.lay;
}

md_layout put_cells(const uint8_t *body, size_t len, uint32_t cell_size)
{
    bs_id id;
    CU_ASSERT_FATAL(bs_id_new(&id) == CM_OK);
    md_layout l = put_id(body, len, cell_size, &id);
    for (int i = 0; i < K + M; i++)
        CU_ASSERT_NOT_EQUAL(l.drives[i], 0xFF);
    return l;
}

md_layout put(const uint8_t *body, size_t len)
{
    return put_cells(body, len, CELL);
}

/* Cell i of body as the codec makes it (every stripe's cell i back to back); caller frees. */
uint8_t *cell_bytes(const uint8_t *body, size_t len, int i, uint64_t *total)
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

int same_cell(pl_cell a, pl_cell b)
{
    return a.node == b.node && a.drive == b.drive;
}

pl_cell cell_of(const md_layout *l, int i)
{
    return (pl_cell){l->nodes[i], l->drives[i]};
}

/* Every cell of l holds exactly its bytes. */
void check_all_cells(const uint8_t *body, size_t len, const md_layout *l)
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
int reads_back(const md_layout *l, const uint8_t *body, size_t len)
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

void heal_cb(void *arg, cm_err err, const ob_heal_result *res)
{
    (void)arg;
    R.err = err;
    R.heal = *res;
    E.pending--;
}

cm_err heal(const md_layout *l, const ob_pacer *p, unsigned flags)
{
    ob_heal_config hc = {E.topo, E.homes, E.dead, p, flags, NULL, NULL};
    memset(&R.heal, 0, sizeof(R.heal));
    await(ob_heal(E.res, &hc, l, heal_cb, NULL));
    return R.err;
}

void drop_cb(void *arg, int failed)
{
    (void)arg;
    R.failed = failed;
    E.pending--;
}

/* The first cell of l on node (or -1). */
int cell_on(const md_layout *l, int node)
{
    for (int i = 0; i < K + M; i++)
        if (l->nodes[i] == node && l->drives[i] != 0xFF)
            return i;
    return -1;
}

/* A remote node holding a cell of l. */
int remote_holder(const md_layout *l)
{
    for (int n = 1; n < NN; n++)
        if (cell_on(l, n) >= 0)
            return n;
    CU_FAIL_FATAL("no cell on a remote node");
    return -1;
}

int64_t az_cells(const md_layout *l, const char *az)
{
    int n = 0;
    for (int i = 0; i < K + M; i++)
        n += l->drives[i] != 0xFF && strcmp(azs[l->nodes[i]], az) == 0;
    return n;
}

/*
 * A flaky local backend: its stats and appends end flaky_err (CM_ERR_TIMEOUT as a slow node's
 * would, CM_ERR_AUTH as a node refusing the call; on the loop), everything else goes through to
 * the real one.
 */
cm_err flaky_err = CM_ERR_TIMEOUT;

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

cm_err flaky_seal(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t len, ob_chunk_done done,
                  void *arg)
{
    return ob_chunk_seal(((flaky_chunks *)c)->inner, drive, id, len, done, arg);
}

cm_err flaky_read(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off, uint64_t len,
                  ob_chunk_done done, void *arg)
{
    return ob_chunk_read(((flaky_chunks *)c)->inner, drive, id, off, len, done, arg);
}

cm_err flaky_del(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done, void *arg)
{
    return ob_chunk_delete(((flaky_chunks *)c)->inner, drive, id, done, arg);
}

static cm_err flaky_stat(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done,
                         void *arg)
{
    (void)c, (void)drive, (void)id;
    return flaky_timeout(done, arg);
}

cm_err flaky_list(ob_chunks *c, uint32_t drive, const bs_id *after, size_t max, ob_chunk_done done,
                  void *arg)
{
    return ob_chunk_list(((flaky_chunks *)c)->inner, drive, after, max, done, arg);
}

void flaky_free(ob_chunks *c)
{
    (void)c; /* on the test's stack */
}

const ob_chunk_ops flaky_ops = {flaky_append, flaky_seal, flaky_read, flaky_del, flaky_stat,
                                flaky_list,   flaky_free, NULL,       NULL};

int paced, stop_after;
uint64_t paced_bytes;

int count_pace(void *arg, uint64_t n)
{
    (void)arg;
    paced++;
    paced_bytes += n;
    return stop_after > 0 && paced >= stop_after;
}

void obj_key(int j, char *key, size_t cap)
{
    snprintf(key, cap, "obj-%d\nwith a newline", j); /* keys may hold any byte */
}

/* The record of obj_key(0) with one part of LEN2 bytes at lay (key and part are the caller's). */
md_object one_part(char *key, size_t cap, md_part *part, const md_layout *lay)
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
md_layout pass_then_layout(const ob_repair_config *rc, md_store *md, const char *key)
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
