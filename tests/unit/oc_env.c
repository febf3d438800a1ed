/*
 * oc_env.c - the cluster store tests' fixture (oc_env.h; used by test_obj_cluster.c and
 * test_obj_cluster_compress.c): six nodes in this process, bodies written and read back through
 * their stores, blocking or on the test's loop without waiting, and bytes that compress.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "cm_util.h"
#include "cu_main.h"
#include "cu_nodes.h"
#include "nd.h"
#include "ob.h"
#include "oc_env.h"

static const uint8_t secret[] = "cluster-test-secret";
#define SECRET_LEN (sizeof(secret) - 1)

tnode N[NNODES];
nd_faults *faults;
pl_topology *topo;

int zlevel;        /* compress_level of every node's store (0: off) */
int write_wait_ms; /* 0: the default */
int window;        /* stripes in flight per body; 0: WINDOW */

static void threads_on(void)
{
    evthread_use_pthreads();
}

static void node_open(tnode *n, int i)
{
    static int gen;
    const char *dirs[NDRIVES];
    nd_drive drives[NDRIVES];
    snprintf(n->id, sizeof(n->id), "n%d", i + 1);
    gen++;
    for (int d = 0; d < NDRIVES; d++) {
        int len =
            snprintf(n->dirs[d], sizeof(n->dirs[d]), "%s/c%d-n%d-d%d", cu_tmpdir(), gen, i + 1, d);
        CU_ASSERT_FATAL(len > 0 && (size_t)len < sizeof(n->dirs[d]));
        dirs[d] = n->dirs[d];
    }
    /* the single-node profile (unused here): cluster bodies use the layout's */
    ob_store_options o = {2, 1, CELL, NULL, 0, 0, zlevel};
    CU_ASSERT_EQUAL_FATAL(ob_store_open(dirs, NDRIVES, &o, &n->st), CM_OK);
    for (int d = 0; d < NDRIVES; d++) {
        drives[d].path = n->dirs[d];
        drives[d].bs = ob_store_blobstore(n->st, d);
    }
    cu_rpc_serve(&n->rpc, n->id, secret, SECRET_LEN, drives, NDRIVES);
}

/* Six nodes up, in cluster mode on the same layout (epoch 3). */
void cluster_up(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, threads_on);
    CU_ASSERT_EQUAL_FATAL(nd_faults_new(&faults), CM_OK);
    for (int i = 0; i < NNODES; i++)
        node_open(&N[i], i);
    topo = pl_topology_new(3);
    for (int i = 0; i < NNODES; i++) {
        char az[8];
        snprintf(az, sizeof(az), "az%d", i / 2 + 1);
        cu_topo_node(topo, N[i].id, N[i].rpc.port, az, NDRIVES);
    }
    for (int i = 0; i < NNODES; i++) {
        ob_cluster_config cc = {0};
        cc.self = N[i].id;
        cc.secret = secret;
        cc.secret_len = SECRET_LEN;
        cc.faults = faults;
        cc.window = window ? window : WINDOW;
        cc.io_timeout_ms = 5000;
        cc.write_wait_ms = write_wait_ms;
        CU_ASSERT_EQUAL_FATAL(ob_store_cluster_start(N[i].st, &cc), CM_OK);
        CU_ASSERT_EQUAL_FATAL(ob_store_set_topology(N[i].st, topo), CM_OK);
    }
}

/* Every node's RPC service stopped, then every store closed. */
void cluster_down(void)
{
    for (int i = 0; i < NNODES; i++)
        if (N[i].rpc.srv) /* a test may have stopped one already (node_close) */
            cu_rpc_halt(&N[i].rpc, 1000);
    /* stores after every server: nothing calls them then */
    for (int i = 0; i < NNODES; i++)
        if (N[i].rpc.srv)
            cu_rpc_free(&N[i].rpc);
    for (int i = 0; i < NNODES; i++)
        ob_store_close(N[i].st);
    pl_topology_free(topo);
    nd_faults_free(faults);
}

/* n pseudo-random bytes (xorshift) from seed. */
void fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

/* Write body through node w's store in pieces of `piece` bytes (as the gateway does). */
cm_err put(int w, const uint8_t *body, size_t len, size_t piece, md_layout *lay)
{
    ob_writer *wr;
    cm_err e = ob_writer_new(N[w].st, &wr);
    if (e != CM_OK)
        return e;
    for (size_t pos = 0; e == CM_OK && pos < len; pos += piece)
        e = ob_writer_write(wr, body + pos, CM_MIN(piece, len - pos));
    if (e != CM_OK) {
        ob_writer_abort(wr);
        return e;
    }
    return ob_writer_finish(wr, lay);
}

/* Read [off, off+len) through node r's store and compare. */
int read_matches(int r, const md_layout *lay, const uint8_t *body, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len ? len : 1);
    cm_err e = ob_read(N[r].st, lay, off, buf, len);
    int ok = e == CM_OK && memcmp(buf, body + off, len) == 0;
    if (!ok)
        printf("\n  read via n%d at %llu+%zu: %s\n", r + 1, (unsigned long long)off, len,
               cm_err_str(e));
    free(buf);
    return ok;
}

/* The layout's live cells (not dropped). */
int live_cells(const md_layout *lay)
{
    int n = 0;
    for (int i = 0; i < lay->k + lay->m; i++)
        n += lay->drives[i] != 0xFF;
    return n;
}

/* Text-like bytes (words, some followed by a random digit) that zstd shrinks under half. */
void fill_text(uint8_t *p, size_t n, uint64_t seed)
{
    static const char *const words[] = {"cairn ",  "stripe ", "drive ", "frame ", "node ",
                                        "quorum ", "the ",    "of ",    "zstd ",  "cell\n"};
    for (size_t i = 0; i < n;) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        const char *w = words[(seed >> 33) % CM_ARRAY_LEN(words)];
        for (size_t j = 0; w[j] && i < n; j++)
            p[i++] = (uint8_t)w[j];
        if (i < n && (seed >> 20) % 2)
            p[i++] = (uint8_t)('0' + (seed >> 40) % 10);
    }
}

/* ---- the calls for event loops: write_some + on_room, read_start + cancel ---- */

struct event_base *tbase;
int room_calls, read_calls;
static int timed_out;
cm_err read_err;

void room_cb(void *arg)
{
    (void)arg;
    room_calls++;
}

void read_cb(void *arg, cm_err err)
{
    (void)arg;
    read_calls++;
    read_err = err;
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    timed_out = 1;
}

/* Run the test's loop until *counter reaches want or ms passed (no sleeping). */
void run_until(const int *counter, int want, int ms)
{
    struct event *t = evtimer_new(tbase, timeout_cb, NULL);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    timed_out = 0;
    evtimer_add(t, &tv);
    while (*counter < want && !timed_out)
        event_base_loop(tbase, EVLOOP_ONCE);
    event_free(t);
}

/* Write len bytes of body through w without ever waiting; returns how often the window was full. */
int write_nonblocking(ob_writer *w, const uint8_t *body, size_t len)
{
    int agains = 0;
    for (size_t pos = 0; pos < len;) {
        size_t taken = 0;
        cm_err e = ob_writer_write_some(w, body + pos, CM_MIN((size_t)1 << 20, len - pos), &taken);
        pos += taken;
        if (e == CM_OK)
            continue;
        CU_ASSERT_EQUAL_FATAL(e, CM_AGAIN);
        agains++;
        int before = room_calls;
        CU_ASSERT_EQUAL(ob_writer_on_room(w, tbase, room_cb, NULL), CM_OK);
        CU_ASSERT_EQUAL(room_calls, before); /* never inside the call */
        run_until(&room_calls, before + 1, 10000);
        CU_ASSERT_EQUAL_FATAL(room_calls, before + 1);
    }
    return agains;
}

/* ---- ob_read_start_evb: the bytes by reference to the cells' buffers ---- */

/* An evbuffer read of [off, off+len) of lay through node r, waited for on the test's loop; *nchains
 * (before the bytes are compared: the compare pulls them up) the chains the bytes came in. 1 when
 * the read ended CM_OK with exactly body's bytes; dst is empty until done ran. */
void read_stripes_async(int r, const md_layout *lay, uint8_t *back, size_t len)
{
    for (size_t pos = 0; pos < len; pos += SBYTES) {
        ob_read_op *op;
        int before = read_calls;
        CU_ASSERT_EQUAL_FATAL(ob_read_start(N[r].st, lay, pos, back + pos,
                                            CM_MIN(SBYTES, len - pos), tbase, read_cb, NULL, &op),
                              CM_OK);
        CU_ASSERT_EQUAL(read_calls, before);
        run_until(&read_calls, before + 1, 10000);
        CU_ASSERT_EQUAL_FATAL(read_calls, before + 1);
        CU_ASSERT_EQUAL(read_err, CM_OK);
    }
}

void read_cancelled_untouched(const md_layout *lay, uint8_t *back, int delay_ms)
{
    ob_read_op *op;
    int before = read_calls, untouched = 1;
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n5", "*", ND_FAULT_DELAY, delay_ms), CM_OK);
    memset(back, 0xEE, SBYTES);
    CU_ASSERT_EQUAL_FATAL(ob_read_start(N[4].st, lay, 0, back, SBYTES, tbase, read_cb, NULL, &op),
                          CM_OK);
    ob_read_cancel(op);
    run_until(&read_calls, before + 1, 800);
    CU_ASSERT_EQUAL(read_calls, before);
    for (size_t i = 0; i < SBYTES; i++)
        untouched &= back[i] == 0xEE;
    CU_ASSERT(untouched);
    nd_fault_clear(faults, NULL, NULL);
}

int evb_matches(int r, const md_layout *lay, const uint8_t *body, uint64_t off, size_t len,
                int *nchains)
{
    struct evbuffer *b = evbuffer_new();
    ob_read_op *op;
    int before = read_calls, ok = 0;
    if (ob_read_start_evb(N[r].st, lay, off, len, b, tbase, read_cb, NULL, &op) == CM_OK) {
        CU_ASSERT_EQUAL(evbuffer_get_length(b), 0); /* nothing before done */
        run_until(&read_calls, before + 1, 20000);
        if (nchains)
            *nchains = evbuffer_peek(b, -1, NULL, NULL, 0);
        ok = read_calls == before + 1 && read_err == CM_OK && evbuffer_get_length(b) == len &&
             (len == 0 || memcmp(evbuffer_pullup(b, -1), body + off, len) == 0);
    }
    evbuffer_free(b);
    return ok;
}
