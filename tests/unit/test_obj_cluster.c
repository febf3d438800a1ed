/*
 * test_obj_cluster.c - the cluster mode of ob_store (ob.h, docs/chunks.md "The S3 data path
 * across nodes"): bodies written through one node's store and read through another's, handoff
 * of a refused node's cells, reads with an AZ down (and one more node failing for a moment),
 * hedged reads past a delayed node, reads whose bytes come as the cells' own buffers
 * (ob_read_start_evb: read_evb) and run on the caller's loop (read_on_loop), a node's cells
 * of a stripe read in one call (read_parts) and appended in one call (append_parts, with a node
 * that predates it), the writer's bounded memory, deletes reaching the cells' nodes, room notices
 * and reads (plain and compressed) left on a loop that never runs again (freed with their writer,
 * or by the cancel), and a loopback throughput figure against a single-node store. Compressed
 * bodies written and read without waiting are tested in test_obj_cluster_compress.c.
 *
 * The six nodes are oc_env.h's: two per AZ (az1: n1 n2, az2: n3 n4, az3: n5 n6), four drives
 * each, every node an ob_store in cluster mode and an nd_service over the same drives, one fault
 * layer shared by every node's client.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cm_util.h"
#include "cu_main.h"
#include "cu_nodes.h"
#include "nd.h"
#include "nd_int.h"
#include "net.h"
#include "ob.h"
#include "ob_int.h"
#include "oc_env.h"

/* Close node i's store in the middle of a test: its RPC service first, so no call from another
 * node (an asynchronous delete still on its way) runs on a closed store. */
static void node_close(int i)
{
    cu_rpc_stop(&N[i].rpc, 1000);
    ob_store_close(N[i].st);
    N[i].st = NULL;
}

/* Cells per AZ of the layout's live cells: at most m each (az = node / 2 here). */
static int az_bound_ok(const md_layout *lay)
{
    int per[3] = {0};
    for (int i = 0; i < lay->k + lay->m; i++)
        if (lay->drives[i] != 0xFF)
            per[lay->nodes[i] / 2]++;
    return per[0] <= lay->m && per[1] <= lay->m && per[2] <= lay->m;
}

static void test_roundtrip(void)
{
    size_t sizes[] = {0, 1, 1000, SBYTES, 3 * SBYTES + 777};
    size_t max = 3 * SBYTES + 777;
    uint8_t *body = malloc(max);
    cluster_up();
    fill(body, max, 1);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        md_layout lay;
        size_t len = sizes[s];
        CU_ASSERT_EQUAL_FATAL(put(0, body, len, 100000, &lay), CM_OK);
        CU_ASSERT_EQUAL(lay.size, len);
        CU_ASSERT_EQUAL(lay.epoch, 3);
        CU_ASSERT_EQUAL(lay.k, K);
        CU_ASSERT_EQUAL(lay.m, M);
        CU_ASSERT_EQUAL(live_cells(&lay), K + M); /* every node up: all cells */
        CU_ASSERT(az_bound_ok(&lay));
        /* read back through another node (n4) and the writer; ranges too */
        CU_ASSERT(read_matches(3, &lay, body, 0, len));
        CU_ASSERT(read_matches(0, &lay, body, 0, len));
        if (len > 10) {
            CU_ASSERT(read_matches(4, &lay, body, len - 7, 7));
            CU_ASSERT(read_matches(5, &lay, body, len / 3, len / 3));
        }
        if (len > SBYTES) /* across a stripe boundary */
            CU_ASSERT(read_matches(1, &lay, body, SBYTES - 100, 200));
        /* every node's scrubber verifies its own cells of the body, and finds them healthy */
        static uint8_t vbuf[1 << 16];
        for (int n = 0; len > 0 && n < NNODES; n++) {
            cm_err why;
            CU_ASSERT_EQUAL(ob_body_verify(N[n].st, &lay, vbuf, sizeof(vbuf), NULL, &why), 0);
        }
    }
    ob_cluster_stats cs;
    ob_store_cluster_stats(N[0].st, &cs);
    CU_ASSERT_EQUAL(cs.epoch, 3);
    CU_ASSERT_EQUAL(cs.handoffs, 0);
    free(body);
    cluster_down();
}

static void test_handoff(void)
{
    size_t len = 2 * SBYTES + 4321;
    uint8_t *body = malloc(len);
    md_layout lay;
    cluster_up();
    fill(body, len, 2);
    /* n1 cannot reach n3: n3's cells of the body go to handoff drives */
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n1", "n3", ND_FAULT_REFUSE, 0), CM_OK);
    CU_ASSERT_EQUAL_FATAL(put(0, body, len, 65536, &lay), CM_OK);
    ob_cluster_stats cs;
    ob_store_cluster_stats(N[0].st, &cs);
    CU_ASSERT(cs.handoffs >= 1);
    CU_ASSERT_EQUAL(live_cells(&lay), K + M); /* handed off, not dropped */
    for (int i = 0; i < K + M; i++) {
        CU_ASSERT_NOT_EQUAL(lay.nodes[i], 2); /* nothing named on n3 */
        for (int j = 0; j < i; j++)           /* distinct drives */
            CU_ASSERT(lay.nodes[i] != lay.nodes[j] || lay.drives[i] != lay.drives[j]);
    }
    CU_ASSERT(az_bound_ok(&lay));
    /* the manifest says where the cells are: any node reads it, n3 back or not */
    CU_ASSERT(read_matches(1, &lay, body, 0, len));
    nd_fault_clear(faults, NULL, NULL);
    CU_ASSERT(read_matches(2, &lay, body, 0, len));
    /* the next body from n1 starts on handoff at once (n3 failed lately) */
    md_layout lay2;
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n1", "n3", ND_FAULT_REFUSE, 0), CM_OK);
    CU_ASSERT_EQUAL_FATAL(put(0, body, len, 65536, &lay2), CM_OK);
    CU_ASSERT_EQUAL(live_cells(&lay2), K + M);
    CU_ASSERT(read_matches(5, &lay2, body, 0, len));
    free(body);
    cluster_down();
}

/* Whether lay names node for some live cell. */
static int names_node(const md_layout *lay, uint16_t node)
{
    for (int i = 0; i < K + M; i++)
        if (lay->drives[i] != 0xFF && lay->nodes[i] == node)
            return 1;
    return 0;
}

/*
 * A part body's intent (md_intent, docs/multipart-cluster.md "Reclaiming a killed UploadPart")
 * names the cells as placed; n1 cannot reach n3, so n3's columns are handed off during the write.
 * The intent must name where the cells went (a kill after their first append would otherwise
 * leave cells no intent names): afterwards it names exactly the body's layout, n3 nowhere.
 */
static void test_handoff_intent(void)
{
    size_t len = 2 * SBYTES + 999;
    uint8_t *body = malloc(len);
    char dir[300];
    md_store *md = NULL;
    md_layout lay;
    ob_writer *wr = NULL;
    snprintf(dir, sizeof(dir), "%s/handoff-intent", cu_tmpdir());
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 26, &md), CM_OK);
    cluster_up();
    fill(body, len, 4);
    md_intent in, other, *a = NULL;
    size_t n = 0;
    memset(&in, 0, sizeof(in));
    in.hlc = MD_HLC_MAKE(1700000000000LL, 0);
    in.bucket = "b", in.key = "k", in.number = 1, in.id = 1;
    snprintf(in.upload_id, sizeof(in.upload_id), "%032d", 7);
    /* a body placed with cells on n3 (index 2): another blob id until one is */
    for (int t = 0; t < 50; t++) {
        CU_ASSERT_EQUAL_FATAL(ob_writer_new(N[0].st, &wr), CM_OK);
        ob_writer_plan(wr, &in.layout);
        if (names_node(&in.layout, 2))
            break;
        ob_writer_abort(wr);
        wr = NULL;
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(wr);
    CU_ASSERT_EQUAL_FATAL(md_intent_put(md, &in), CM_OK);
    ob_writer_track_intent(wr, md, in.hlc);
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n1", "n3", ND_FAULT_REFUSE, 0), CM_OK);
    cm_err e = CM_OK;
    for (size_t pos = 0; e == CM_OK && pos < len; pos += 65536)
        e = ob_writer_write(wr, body + pos, CM_MIN(65536, len - pos));
    CU_ASSERT_EQUAL(e, CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_writer_finish(wr, &lay), CM_OK);
    CU_ASSERT_EQUAL(live_cells(&lay), K + M); /* handed off, not dropped */
    CU_ASSERT(!names_node(&lay, 2));
    /* released, then a write of this opening queued behind it: the release is in */
    CU_ASSERT_EQUAL(md_intent_release_async(md, &in), CM_OK);
    other = in;
    other.hlc++;
    CU_ASSERT_EQUAL(md_intent_put(md, &other), CM_OK);
    CU_ASSERT_EQUAL(md_intent_list(md, UINT64_MAX, 10, &a, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    for (int i = 0; i < K + M; i++) { /* every live cell where the body's layout says */
        CU_ASSERT_EQUAL(a[0].layout.nodes[i], lay.nodes[i]);
        CU_ASSERT_EQUAL(a[0].layout.drives[i], lay.drives[i]);
    }
    CU_ASSERT(!names_node(&a[0].layout, 2));
    md_intents_free(a, n);
    nd_fault_clear(faults, NULL, NULL);
    CU_ASSERT(read_matches(2, &lay, body, 0, len));
    free(body);
    cluster_down();
    md_close(md);
}

/*
 * A new layout (epoch 4: n7 joins az1, the first AZ, at an address where nothing listens): a body
 * written under epoch 3 still reads (node indices stayed), and a new body placed partly on n7
 * hands those cells off and is written under epoch 4.
 */
static void test_topology_change(void)
{
    size_t len = 2 * SBYTES + 55;
    uint8_t *body = malloc(len);
    md_layout old, fresh;
    cluster_up();
    fill(body, len, 10);
    CU_ASSERT_EQUAL_FATAL(put(0, body, len, 100000, &old), CM_OK);
    pl_topology *t2;
    CU_ASSERT_EQUAL_FATAL(pl_topology_clone(topo, &t2), CM_OK);
    t2->epoch = 4;
    int idx = cu_topo_node(t2, "n7", 1, "az1", NDRIVES);
    /* through the document, as etcd hands it over */
    char *doc, err[256];
    size_t dlen;
    pl_topology *t3;
    CU_ASSERT_EQUAL_FATAL(pl_topology_encode(t2, &doc, &dlen), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_topology_decode(doc, dlen, &t3, err, sizeof(err)), CM_OK);
    for (int i = 0; i < NNODES; i++)
        CU_ASSERT_EQUAL(ob_store_set_topology(N[i].st, t3), CM_OK);
    CU_ASSERT(read_matches(2, &old, body, 0, len));
    /* a body with cells homed on n7: those cells are handed off */
    int with_n7 = 0;
    for (int tries = 0; tries < 20 && !with_n7; tries++) {
        CU_ASSERT_EQUAL_FATAL(put(0, body, len, 100000, &fresh), CM_OK);
        CU_ASSERT_EQUAL(fresh.epoch, 4);
        CU_ASSERT_EQUAL(live_cells(&fresh), K + M);
        CU_ASSERT(read_matches(4, &fresh, body, 0, len));
        ob_cluster_stats cs;
        ob_store_cluster_stats(N[0].st, &cs);
        with_n7 = cs.handoffs > 0;
        for (int i = 0; i < K + M; i++)
            CU_ASSERT_NOT_EQUAL(fresh.nodes[i], idx); /* nothing named on n7 */
    }
    CU_ASSERT(with_n7);
    free(doc);
    pl_topology_free(t3);
    pl_topology_free(t2);
    free(body);
    cluster_down();
}

/* A node refused after every column stored stripe 0: its cells are dropped, not handed off. */
static void test_drop_mid_body(void)
{
    size_t len = (WINDOW + 2) * SBYTES + 10;
    uint8_t *body = malloc(len);
    md_layout lay;
    ob_writer *w;
    cluster_up();
    fill(body, len, 7);
    CU_ASSERT_EQUAL_FATAL(ob_writer_new(N[0].st, &w), CM_OK);
    /* filling stripe WINDOW needs stripe 0's buffer back: every column has stored stripe 0 */
    CU_ASSERT_EQUAL(ob_writer_write(w, body, (WINDOW + 1) * SBYTES), CM_OK);
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n1", "n4", ND_FAULT_REFUSE, 0), CM_OK);
    size_t pos = (WINDOW + 1) * SBYTES;
    CU_ASSERT_EQUAL(ob_writer_write(w, body + pos, len - pos), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_writer_finish(w, &lay), CM_OK);
    ob_cluster_stats cs;
    ob_store_cluster_stats(N[0].st, &cs);
    int on_n4 = 0;
    for (int i = 0; i < K + M; i++)
        on_n4 += lay.nodes[i] == 3;
    CU_ASSERT(on_n4 > 0);
    CU_ASSERT_EQUAL(cs.cells_dropped, (uint64_t)on_n4);
    CU_ASSERT_EQUAL(live_cells(&lay), K + M - on_n4);
    for (int i = 0; i < K + M; i++)
        CU_ASSERT_EQUAL(lay.drives[i] == 0xFF, lay.nodes[i] == 3);
    nd_fault_clear(faults, NULL, NULL);
    CU_ASSERT(read_matches(3, &lay, body, 0, len));
    free(body);
    cluster_down();
}

/* A node that answers late: its cells are dropped after write_wait_ms, not the RPC timeout. */
static void test_slow_node_write(void)
{
    enum { DELAY = 2500, WAIT = 250 };
    size_t len = (WINDOW + 3) * SBYTES + 10; /* the window turns over while n6's appends wait */
    uint8_t *body = malloc(len);
    md_layout lay;
    write_wait_ms = WAIT;
    cluster_up();
    write_wait_ms = 0;
    fill(body, len, 8);
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n1", "n6", ND_FAULT_DELAY, DELAY), CM_OK);
    long long t0 = cm_monotonic_ms();
    CU_ASSERT_EQUAL_FATAL(put(0, body, len, 100000, &lay), CM_OK);
    long long took = cm_monotonic_ms() - t0;
    ob_cluster_stats cs;
    ob_store_cluster_stats(N[0].st, &cs);
    int on_n6 = 0;
    for (int i = 0; i < K + M; i++) {
        on_n6 += lay.nodes[i] == 5;
        CU_ASSERT_EQUAL(lay.drives[i] == 0xFF, lay.nodes[i] == 5);
    }
    CU_ASSERT(on_n6 > 0);
    CU_ASSERT_EQUAL(cs.cells_dropped, (uint64_t)on_n6);
    CU_ASSERT(took < DELAY / 2);
    printf("\n  a node answering %d ms late: body acknowledged in %lld ms without its %d cells\n",
           DELAY, took, on_n6);
    CU_ASSERT(read_matches(2, &lay, body, 0, len));
    /* n1's store waits for the late appends to end and deletes their chunks; they carried the
     * bytes they were sent with (a stripe buffer reused under them would fail their checksum) */
    node_close(0);
    nd_service_stats ss;
    nd_service_get_stats(N[5].rpc.svc, &ss);
    CU_ASSERT_EQUAL(ss.digest_refused, 0);
    CU_ASSERT(ss.appended > 0);
    free(body);
    cluster_down();
}

static void test_az_down(void)
{
    size_t len = 3 * SBYTES + 99;
    uint8_t *body = malloc(len);
    md_layout lay;
    cluster_up();
    fill(body, len, 3);
    CU_ASSERT_EQUAL_FATAL(put(2, body, len, 100000, &lay), CM_OK);
    /* az1 (n1, n2) unreachable from n5 and n3: at most m = 4 cells lost per stripe */
    const char *readers[] = {"n5", "n3"};
    for (int r = 0; r < 2; r++) {
        CU_ASSERT_EQUAL(nd_fault_set(faults, readers[r], "n1", ND_FAULT_REFUSE, 0), CM_OK);
        CU_ASSERT_EQUAL(nd_fault_set(faults, readers[r], "n2", ND_FAULT_REFUSE, 0), CM_OK);
    }
    ob_cluster_stats before, after;
    ob_store_cluster_stats(N[4].st, &before);
    CU_ASSERT(read_matches(4, &lay, body, 0, len));
    CU_ASSERT(read_matches(2, &lay, body, SBYTES + 5, SBYTES));
    ob_store_cluster_stats(N[4].st, &after);
    int az1_data = 0; /* data cells on n1 or n2 (placement may give az1 only parity cells) */
    for (int i = 0; i < K; i++)
        az1_data += lay.nodes[i] == 0 || lay.nodes[i] == 1;
    CU_ASSERT(!az1_data || after.reads_degraded > before.reads_degraded); /* rebuilt from parity */
    /* a third node of another AZ down too (n4 from n5): 6 cells of 12 left, below k */
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n5", "n4", ND_FAULT_REFUSE, 0), CM_OK);
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n5", "n3", ND_FAULT_REFUSE, 0), CM_OK);
    uint8_t small[100];
    CU_ASSERT_EQUAL(ob_read(N[4].st, &lay, 0, small, sizeof(small)), CM_ERR_UNAVAILABLE);
    free(body);
    cluster_down();
}

/* Delay n2's calls to the node of lay's first data cell not on n2 by ms. */
static void slow_data_cell(const md_layout *lay, int ms)
{
    int slow = -1;
    for (int i = 0; i < K && slow < 0; i++)
        if (lay->nodes[i] != 1)
            slow = lay->nodes[i];
    CU_ASSERT_FATAL(slow >= 0);
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n2", N[slow].id, ND_FAULT_DELAY, ms), CM_OK);
}

static void test_hedged_read(void)
{
    enum { DELAY = 1500 };
    size_t len = 2 * SBYTES + 1000;
    uint8_t *body = malloc(len);
    md_layout lay;
    cluster_up();
    fill(body, len, 4);
    CU_ASSERT_EQUAL_FATAL(put(0, body, len, 100000, &lay), CM_OK);
    slow_data_cell(&lay, DELAY); /* reader n2 */
    ob_cluster_stats before, after;
    ob_store_cluster_stats(N[1].st, &before);
    long long t0 = cm_monotonic_ms();
    CU_ASSERT(read_matches(1, &lay, body, 0, len));
    long long took = cm_monotonic_ms() - t0;
    ob_store_cluster_stats(N[1].st, &after);
    CU_ASSERT(after.hedges >= before.hedges + 3); /* one per stripe at least */
    CU_ASSERT(took < DELAY / 2);
    printf("\n  3 stripes with a data cell's node delayed %d ms: read in %lld ms, %llu hedges\n",
           DELAY, took, (unsigned long long)(after.hedges - before.hedges));
    free(body);
    cluster_down();
}

/*
 * A read of four stripes with every other node's calls delayed: the stripes go two at a time
 * (read_ahead_max 2, never more), so it takes about two delays, where one stripe at a time took
 * at least four (every stripe needs a cell of another node); the cells held stay within two
 * stripes' (k + m) cells.
 */
static void test_read_ahead(void)
{
    enum { DELAY = 300 };
    size_t len = 3 * SBYTES + 5000;
    uint8_t *body = malloc(len);
    md_layout lay;
    cluster_up();
    fill(body, len, 9);
    CU_ASSERT_EQUAL_FATAL(put(0, body, len, 100000, &lay), CM_OK);
    for (int i = 0; i < NNODES; i++)
        if (i != 1)
            CU_ASSERT_EQUAL(nd_fault_set(faults, "n2", N[i].id, ND_FAULT_DELAY, DELAY), CM_OK);
    long long t0 = cm_monotonic_ms();
    CU_ASSERT(read_matches(1, &lay, body, 0, len));
    long long took = cm_monotonic_ms() - t0;
    ob_cluster_stats cs;
    ob_store_cluster_stats(N[1].st, &cs);
    CU_ASSERT_EQUAL(cs.read_ahead_max, 2);
    CU_ASSERT(cs.read_bytes_max >= (uint64_t)K * CELL);
    CU_ASSERT(cs.read_bytes_max <= 2ull * (K + M) * CELL);
    CU_ASSERT(took < 4 * DELAY);
    /* a range inside one stripe asks that stripe alone */
    nd_fault_clear(faults, NULL, NULL);
    CU_ASSERT(read_matches(3, &lay, body, SBYTES + 10, 1000));
    ob_cluster_stats one;
    ob_store_cluster_stats(N[3].st, &one);
    CU_ASSERT_EQUAL(one.read_ahead_max, 1);
    printf("\n  4 stripes, other nodes delayed %d ms: read in %lld ms, at most %llu stripes and "
           "%llu KiB of cells at once\n",
           DELAY, took, (unsigned long long)cs.read_ahead_max,
           (unsigned long long)cs.read_bytes_max / 1024);
    free(body);
    cluster_down();
}

typedef struct {
    const char *from, *to;
    int after_ms;
} fault_lift;

static void *lift_later(void *arg)
{
    fault_lift *l = arg;
    usleep((useconds_t)l->after_ms * 1000);
    nd_fault_clear(faults, l->from, l->to);
    return NULL;
}

/*
 * With az1 down a stripe of 8+4 has exactly k = 8 cells left: one more call that fails (a node
 * restarting, a connection lost) must not end a read that the next try would finish. n5 reads
 * with n1 and n2 refused and an az2 node refused too for 150 ms: the reader asks the transiently
 * failed cells again after a backoff and the whole body reads back. Refused for good, the read
 * ends CM_ERR_UNAVAILABLE within the rounds' bound.
 */
static void test_transient_failure(void)
{
    size_t len = 3 * SBYTES + 77;
    uint8_t *body = malloc(len), small[100];
    md_layout lay;
    cluster_up();
    fill(body, len, 5);
    CU_ASSERT_EQUAL_FATAL(put(2, body, len, 100000, &lay), CM_OK);
    int az2 = -1, per_az1 = 0;
    for (int i = 0; i < K + M; i++) {
        per_az1 += lay.nodes[i] / 2 == 0;
        if (lay.nodes[i] / 2 == 1)
            az2 = lay.nodes[i];
    }
    CU_ASSERT_EQUAL_FATAL(per_az1, M); /* az1 down leaves exactly k cells */
    CU_ASSERT_FATAL(az2 >= 0);
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n5", "n1", ND_FAULT_REFUSE, 0), CM_OK);
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n5", "n2", ND_FAULT_REFUSE, 0), CM_OK);
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n5", N[az2].id, ND_FAULT_REFUSE, 0), CM_OK);
    fault_lift l = {"n5", N[az2].id, 150};
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, lift_later, &l), 0);
    CU_ASSERT(read_matches(4, &lay, body, 0, len));
    pthread_join(t, NULL);
    /* refused for good: 7 cells of 12, unreadable after the rounds, not sooner, not much later */
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n5", N[az2].id, ND_FAULT_REFUSE, 0), CM_OK);
    long long t0 = cm_monotonic_ms();
    CU_ASSERT_EQUAL(ob_read(N[4].st, &lay, SBYTES, small, sizeof(small)), CM_ERR_UNAVAILABLE);
    long long took = cm_monotonic_ms() - t0;
    /* the five backoffs are 50 * 31 ms; each timer may fire a few ms early by this clock
     * (libevent's coarse monotonic clock: a run measured 1,548 ms) */
    CU_ASSERT(took >= 50 * 31 - 5 * 4 && took < 10000);
    printf("\n  az1 down and %s refused for good: unreadable after %lld ms\n", N[az2].id, took);
    free(body);
    cluster_down();
}

/* ---- 64 MiB: bounded memory, and MB/s against a single-node store ---- */

#define BIG (64u << 20)

static double mbps(size_t n, long long ms)
{
    return ms > 0 ? (double)n / 1e6 / ((double)ms / 1000.0) : 0;
}

/* PUT and GET of body through a single-node store over six local drives (4+2). */
static void single_node_bench(const uint8_t *body, long long *put_ms, long long *get_ms)
{
    char dirs[6][300];
    const char *d[6];
    ob_store *st;
    ob_writer *w;
    md_layout lay;
    for (int i = 0; i < 6; i++) {
        snprintf(dirs[i], sizeof(dirs[i]), "%s/single-d%d", cu_tmpdir(), i);
        d[i] = dirs[i];
    }
    ob_store_options o = {4, 2, CELL, NULL, 0, 0, 0};
    CU_ASSERT_EQUAL_FATAL(ob_store_open(d, 6, &o, &st), CM_OK);
    long long t0 = cm_monotonic_ms();
    CU_ASSERT_EQUAL_FATAL(ob_writer_new(st, &w), CM_OK);
    for (size_t pos = 0; pos < BIG; pos += 1 << 20)
        CU_ASSERT_EQUAL(ob_writer_write(w, body + pos, 1 << 20), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_writer_finish(w, &lay), CM_OK);
    *put_ms = cm_monotonic_ms() - t0;
    uint8_t *buf = malloc(ob_store_stripe_bytes(st));
    t0 = cm_monotonic_ms();
    for (size_t pos = 0; pos < BIG; pos += ob_store_stripe_bytes(st)) {
        size_t n = CM_MIN(ob_store_stripe_bytes(st), BIG - pos);
        CU_ASSERT_EQUAL(ob_read(st, &lay, pos, buf, n), CM_OK);
    }
    *get_ms = cm_monotonic_ms() - t0;
    free(buf);
    ob_delete(st, &lay);
    ob_store_close(st);
}

static void test_big_body(void)
{
    uint8_t *body = malloc(BIG), *back = malloc(BIG);
    md_layout lay;
    cluster_up();
    fill(body, BIG, 5);
    long long t0 = cm_monotonic_ms();
    CU_ASSERT_EQUAL_FATAL(put(0, body, BIG, 1 << 20, &lay), CM_OK);
    long long put_ms = cm_monotonic_ms() - t0;
    ob_cluster_stats cs;
    ob_store_cluster_stats(N[0].st, &cs);
    /* at most `window` stripe buffers of (k+m) cells were ever held by the writer */
    CU_ASSERT(cs.buf_high_water > 0);
    CU_ASSERT(cs.buf_high_water <= (uint64_t)WINDOW * (K + M) * CELL);
    /* read back through n6 as the gateway does, a stripe's payload at a time */
    t0 = cm_monotonic_ms();
    for (size_t pos = 0; pos < BIG; pos += SBYTES)
        CU_ASSERT_EQUAL(ob_read(N[5].st, &lay, pos, back + pos, CM_MIN(SBYTES, BIG - pos)), CM_OK);
    long long get_ms = cm_monotonic_ms() - t0;
    CU_ASSERT(memcmp(body, back, BIG) == 0);
    cluster_down();
    long long sput, sget;
    single_node_bench(body, &sput, &sget);
    printf("\n  64 MiB, 6 nodes 8+4 over loopback: PUT %.0f MB/s, GET %.0f MB/s; buffers held "
           "%llu KiB (bound %u KiB)\n"
           "  single-node store 4+2, same run: PUT %.0f MB/s, GET %.0f MB/s; ratio PUT %.2f, "
           "GET %.2f\n",
           mbps(BIG, put_ms), mbps(BIG, get_ms), (unsigned long long)cs.buf_high_water / 1024,
           WINDOW * (K + M) * CELL / 1024, mbps(BIG, sput), mbps(BIG, sget),
           (double)sput / (double)(put_ms ? put_ms : 1),
           (double)sget / (double)(get_ms ? get_ms : 1));
    free(body);
    free(back);
}

/* ---- the calls for event loops: write_some + on_room, read_start + cancel ---- */

static void test_event_loop_calls(void)
{
    size_t len = 24 * SBYTES + 333;
    uint8_t *body = malloc(len), *back = malloc(len);
    md_layout lay;
    ob_writer *w;
    cluster_up();
    tbase = event_base_new();
    fill(body, len, 9);
    CU_ASSERT_EQUAL_FATAL(ob_writer_new(N[0].st, &w), CM_OK);
    int agains = write_nonblocking(w, body, len);
    CU_ASSERT(agains > 0); /* the window filled up: the caller was asked to wait, not blocked */
    CU_ASSERT_EQUAL_FATAL(ob_writer_finish(w, &lay), CM_OK);
    CU_ASSERT_EQUAL(live_cells(&lay), K + M);
    /* read back stripe by stripe through n5 without waiting */
    read_stripes_async(4, &lay, back, len);
    CU_ASSERT(memcmp(body, back, len) == 0);
    /* a read cancelled while its cells are late: no callback, the buffer untouched */
    read_cancelled_untouched(&lay, back, 300);
    ob_read_op *op;
    int before = read_calls;
    /* a local layout (epoch 0) answers through the loop too */
    md_layout empty = lay;
    empty.epoch = 0;
    empty.size = 0;
    CU_ASSERT_EQUAL(ob_read_start(N[4].st, &empty, 0, back, 0, tbase, read_cb, NULL, &op), CM_OK);
    CU_ASSERT_EQUAL(read_calls, before);
    run_until(&read_calls, before + 1, 2000);
    CU_ASSERT_EQUAL(read_calls, before + 1);
    CU_ASSERT_EQUAL(ob_read_start(N[4].st, &lay, len, back, 1, tbase, read_cb, NULL, &op),
                    CM_ERR_RANGE);
    /* a writer dropped with a notice pending: the notice never runs */
    CU_ASSERT_EQUAL_FATAL(ob_writer_new(N[0].st, &w), CM_OK);
    size_t pos = 0, taken = 0;
    cm_err e = CM_OK;
    while (e == CM_OK && pos + SBYTES <= len) {
        e = ob_writer_write_some(w, body + pos, SBYTES, &taken);
        pos += taken;
    }
    CU_ASSERT_EQUAL(e, CM_AGAIN);
    before = room_calls;
    CU_ASSERT_EQUAL(ob_writer_on_room(w, tbase, room_cb, NULL), CM_OK);
    ob_writer_abort(w);
    run_until(&room_calls, before + 1, 300);
    CU_ASSERT_EQUAL(room_calls, before);
    /* a notice already posted to the loop (the window had room) and then the writer aborted */
    CU_ASSERT_EQUAL_FATAL(ob_writer_new(N[0].st, &w), CM_OK);
    CU_ASSERT_EQUAL(ob_writer_write_some(w, body, 1000, &taken), CM_OK);
    CU_ASSERT_EQUAL(ob_writer_on_room(w, tbase, room_cb, NULL), CM_OK);
    ob_writer_abort(w);
    run_until(&room_calls, before + 1, 200);
    CU_ASSERT_EQUAL(room_calls, before);
    /* and one that runs: a notice is one-shot, a second one replaces it */
    CU_ASSERT_EQUAL_FATAL(ob_writer_new(N[0].st, &w), CM_OK);
    CU_ASSERT_EQUAL(ob_writer_on_room(w, tbase, room_cb, NULL), CM_OK);
    CU_ASSERT_EQUAL(ob_writer_on_room(w, tbase, room_cb, NULL), CM_OK);
    run_until(&room_calls, before + 2, 300);
    CU_ASSERT_EQUAL(room_calls, before + 1);
    ob_writer_abort(w);
    event_base_free(tbase);
    free(body);
    free(back);
    cluster_down();
}

/*
 * A room notice handed to a loop that never runs again: the gateway's at shutdown, where the grace
 * period cut the connection (dropping its writer) and broke the loop before the notice ran. The
 * writer is dropped, then the loop freed without running: nothing of the notice may stay behind
 * (LeakSanitizer in the sanitizer build), and a notice queued for a window with no room yet is
 * let go the same way.
 */
static void test_room_notice_unrun(void)
{
    size_t len = 24 * SBYTES, taken = 0;
    uint8_t *body = malloc(len);
    ob_writer *w;
    cluster_up();
    fill(body, len, 4);
    for (int full = 0; full < 2; full++) {
        tbase = event_base_new();
        CU_ASSERT_EQUAL_FATAL(ob_writer_new(N[0].st, &w), CM_OK);
        cm_err e = ob_writer_write_some(w, body, 1000, &taken);
        for (size_t pos = 0; full && e == CM_OK && pos + SBYTES <= len; pos += taken)
            e = ob_writer_write_some(w, body + pos, SBYTES, &taken); /* until the window is full */
        CU_ASSERT_EQUAL(e, full ? CM_AGAIN : CM_OK);
        int before = room_calls;
        CU_ASSERT_EQUAL(ob_writer_on_room(w, tbase, room_cb, NULL), CM_OK);
        ob_writer_abort(w);
        event_base_free(tbase); /* the loop never ran the notice */
        CU_ASSERT_EQUAL(room_calls, before);
    }
    tbase = NULL;
    free(body);
    cluster_down();
}

/* ---- ob_read_start_evb: the bytes by reference to the cells' buffers ---- */

/*
 * ob_read_start_evb, the GET path of a cluster node: the wanted bytes of a healthy stripe reach
 * dst as the data cells' own receive buffers (one chain per cell touched: nothing was copied),
 * whole stripes, ranges starting and ending inside cells, the short last stripe, and a range of
 * every stripe (more stripes than the window: each waits for the ones before it, the bytes come
 * in order). With a data cell's node slow, hedged parity cells rebuild stripes and the bytes are
 * the same. Cancelled with its cells late: no callback, dst untouched. A local layout goes through
 * a pooled buffer; a range past the end is refused.
 */
static void test_read_evb(void)
{
    enum { DELAY = 1500 };
    size_t len = 5 * SBYTES + 333;
    uint8_t *body = malloc(len);
    md_layout lay;
    int chains = 0;
    cluster_up();
    tbase = event_base_new();
    fill(body, len, 12);
    CU_ASSERT_EQUAL_FATAL(put(0, body, len, 100000, &lay), CM_OK);
    CU_ASSERT(evb_matches(4, &lay, body, 0, 2 * SBYTES, &chains));
    CU_ASSERT_EQUAL(chains, 2 * K); /* each data cell's buffer, by reference */
    CU_ASSERT(evb_matches(4, &lay, body, CELL / 2 + 7, SBYTES + CELL, &chains));
    CU_ASSERT_EQUAL(chains, K + 2); /* half a cell, the rest of the stripe, 1.5 cells more */
    CU_ASSERT(evb_matches(3, &lay, body, 4 * SBYTES + 100, SBYTES + 233, NULL)); /* the tail */
    CU_ASSERT(evb_matches(2, &lay, body, 0, len, NULL));
    CU_ASSERT(evb_matches(2, &lay, body, len - 1, 1, NULL));
    /* a data cell's node slow for n2: parity cells hedged in, stripes rebuilt */
    slow_data_cell(&lay, DELAY);
    ob_cluster_stats before, after;
    ob_store_cluster_stats(N[1].st, &before);
    long long t0 = cm_monotonic_ms();
    CU_ASSERT(evb_matches(1, &lay, body, 0, len, NULL));
    long long took = cm_monotonic_ms() - t0;
    ob_store_cluster_stats(N[1].st, &after);
    CU_ASSERT(after.hedges > before.hedges);
    CU_ASSERT(after.reads_degraded > before.reads_degraded);
    CU_ASSERT(after.read_ahead_max <= 2);
    CU_ASSERT(took < DELAY);
    nd_fault_clear(faults, NULL, NULL);
    /* cancelled while its cells are late: no callback, nothing in dst */
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n5", "*", ND_FAULT_DELAY, 300), CM_OK);
    struct evbuffer *dst = evbuffer_new();
    ob_read_op *op;
    int calls = read_calls;
    CU_ASSERT_EQUAL_FATAL(
        ob_read_start_evb(N[4].st, &lay, 0, SBYTES, dst, tbase, read_cb, NULL, &op), CM_OK);
    ob_read_cancel(op);
    run_until(&read_calls, calls + 1, 800);
    CU_ASSERT_EQUAL(read_calls, calls);
    CU_ASSERT_EQUAL(evbuffer_get_length(dst), 0);
    nd_fault_clear(faults, NULL, NULL);
    /* a local layout: read into a pooled buffer, answered through the loop */
    md_layout empty = lay;
    empty.epoch = 0;
    empty.size = 0;
    CU_ASSERT(evb_matches(4, &empty, body, 0, 0, NULL));
    CU_ASSERT_EQUAL(ob_read_start_evb(N[4].st, &lay, len, 1, dst, tbase, read_cb, NULL, &op),
                    CM_ERR_RANGE);
    evbuffer_free(dst);
    event_base_free(tbase);
    tbase = NULL;
    printf("\n  %d stripes by reference; with a data cell's node delayed %d ms: read in %lld ms, "
           "%llu hedges\n",
           (int)(len / SBYTES) + 1, DELAY, took,
           (unsigned long long)(after.hedges - before.hedges));
    free(body);
    cluster_down();
}

/*
 * A loop attached to a store (ob_store_loop_attach: a gateway loop in cluster mode) runs the reads
 * started on it itself, with its own RPC client and local backend: the same bytes as through the
 * cluster's loop (a blocking read still goes there), counted in reads_on_loops; hedged past a slow
 * data cell on the loop's own timers; after a new layout (the loop's resolver is built for the new
 * view); after a detach and a new attach in the same slot. A detach with a cancelled read's
 * cells held back by a delay ends them at once and leaves nothing on the loop (sanitizer build);
 * ob_store_close detaches a loop left attached.
 */
static void test_read_on_loop(void)
{
    enum { DELAY = 1500 };
    size_t len = 3 * SBYTES + 100;
    uint8_t *body = malloc(len), *back = malloc(len);
    md_layout lay;
    ob_cluster_stats a, b;
    cluster_up();
    tbase = event_base_new();
    fill(body, len, 21);
    CU_ASSERT_EQUAL_FATAL(put(0, body, len, 100000, &lay), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ob_store_loop_attach(N[1].st, tbase), CM_OK);
    CU_ASSERT_EQUAL(ob_store_loop_attach(N[1].st, tbase), CM_ERR_EXISTS);
    ob_store_cluster_stats(N[1].st, &a);
    CU_ASSERT(evb_matches(1, &lay, body, 0, len, NULL));
    CU_ASSERT(evb_matches(1, &lay, body, CELL + 5, SBYTES, NULL));
    CU_ASSERT_EQUAL(ob_read(N[1].st, &lay, 0, back, len), CM_OK);
    CU_ASSERT(memcmp(back, body, len) == 0);
    ob_store_cluster_stats(N[1].st, &b);
    CU_ASSERT_EQUAL(b.reads - a.reads, 3);
    CU_ASSERT_EQUAL(b.reads_on_loops - a.reads_on_loops, 2);
    /* a data cell's node slow for n2: parity hedged in by the loop's own timers */
    slow_data_cell(&lay, DELAY);
    long long t0 = cm_monotonic_ms();
    CU_ASSERT(evb_matches(1, &lay, body, 0, len, NULL));
    long long took = cm_monotonic_ms() - t0;
    ob_store_cluster_stats(N[1].st, &a);
    CU_ASSERT(a.hedges > b.hedges);
    CU_ASSERT(took < DELAY);
    nd_fault_clear(faults, NULL, NULL);
    /* a new view of the layout: the loop's resolver is made again for it */
    CU_ASSERT_EQUAL(ob_store_set_topology(N[1].st, topo), CM_OK);
    CU_ASSERT(evb_matches(1, &lay, body, SBYTES - 3, SBYTES, NULL));
    /* detached while a cancelled read's remote cells are held back 3 s: they end at once */
    CU_ASSERT_EQUAL(nd_fault_set(faults, "n2", "*", ND_FAULT_DELAY, 3000), CM_OK);
    struct evbuffer *dst = evbuffer_new();
    ob_read_op *op;
    int calls = read_calls;
    CU_ASSERT_EQUAL_FATAL(ob_read_start_evb(N[1].st, &lay, 0, len, dst, tbase, read_cb, NULL, &op),
                          CM_OK);
    ob_read_cancel(op);
    t0 = cm_monotonic_ms();
    ob_store_loop_detach(N[1].st, tbase);
    long long detach_ms = cm_monotonic_ms() - t0;
    CU_ASSERT(detach_ms < 1000);
    CU_ASSERT_EQUAL(read_calls, calls);
    CU_ASSERT_EQUAL(evbuffer_get_length(dst), 0);
    evbuffer_free(dst);
    nd_fault_clear(faults, NULL, NULL);
    /* detached: the loop's reads go through the cluster's loop; attached again, on the loop */
    ob_store_cluster_stats(N[1].st, &a);
    CU_ASSERT(evb_matches(1, &lay, body, 0, len, NULL));
    ob_store_cluster_stats(N[1].st, &b);
    CU_ASSERT_EQUAL(b.reads_on_loops, a.reads_on_loops);
    CU_ASSERT_EQUAL_FATAL(ob_store_loop_attach(N[1].st, tbase), CM_OK);
    CU_ASSERT(evb_matches(1, &lay, body, 7, len - 7, NULL));
    ob_store_cluster_stats(N[1].st, &a);
    CU_ASSERT_EQUAL(a.reads_on_loops, b.reads_on_loops + 1);
    cluster_down(); /* closes n2's store with the loop still attached */
    event_base_free(tbase);
    tbase = NULL;
    printf("\n  reads on the caller's loop; hedged past a %d ms node in %lld ms; detached with "
           "held cells in %lld ms\n",
           DELAY, took, detach_ms);
    free(body);
    free(back);
}

/*
 * A node's cells of a stripe in one call (ob_chunk_read_parts): a 1 MiB body (one short stripe of
 * 128 KiB cells, two per node) read through n5 asks the nodes holding two of its data cells for
 * both at once (cells_batched), evbuffer and blocking reads alike. A call of two cells where one is
 * gone (deleted on its drive) asks them one by one and rebuilds the stripe from parity; a refused
 * node fails both its cells at once and parity takes their place.
 */
static void test_read_parts(void)
{
    size_t len = 1u << 20;
    uint8_t *body = malloc(len), *back = malloc(len);
    md_layout lay;
    ob_cluster_stats a, b;
    cluster_up();
    tbase = event_base_new();
    fill(body, len, 31);
    CU_ASSERT_EQUAL_FATAL(put(0, body, len, 100000, &lay), CM_OK);
    int per[NNODES] = {0}, twice = -1;
    for (int i = 0; i < K; i++)
        per[lay.nodes[i]]++;
    for (int x = 0; x < NNODES; x++)
        if (x != 4 && per[x] >= 2 && twice < 0)
            twice = x;
    CU_ASSERT_FATAL(twice >= 0); /* 8 data cells over five other nodes */
    ob_store_cluster_stats(N[4].st, &a);
    CU_ASSERT(evb_matches(4, &lay, body, 0, len, NULL));
    CU_ASSERT_EQUAL(ob_read(N[4].st, &lay, 0, back, len), CM_OK);
    CU_ASSERT(memcmp(back, body, len) == 0);
    ob_store_cluster_stats(N[4].st, &b);
    CU_ASSERT(b.cells_batched - a.cells_batched >= 4); /* two reads, a call of two each at least */
    CU_ASSERT_EQUAL(b.reads_degraded, a.reads_degraded);
    /* one of twice's data cells gone: the pair fails, each is asked alone, parity rebuilds */
    bs_id id;
    memcpy(id.b, lay.blob, sizeof(id.b));
    for (int i = 0; i < K; i++)
        if (lay.nodes[i] == twice) {
            CU_ASSERT_EQUAL(bs_delete(ob_store_drive(N[twice].st, lay.drives[i]), &id), CM_OK);
            break;
        }
    CU_ASSERT(evb_matches(4, &lay, body, 0, len, NULL));
    ob_store_cluster_stats(N[4].st, &a);
    CU_ASSERT(a.reads_degraded > b.reads_degraded);
    /* n5 refused by the node holding two of them: both fail at once, the read still ends whole */
    int other = -1;
    for (int x = 0; x < NNODES; x++)
        if (x != 4 && x != twice && per[x] >= 2 && other < 0)
            other = x;
    if (other >= 0) {
        CU_ASSERT_EQUAL(nd_fault_set(faults, "n5", N[other].id, ND_FAULT_REFUSE, 0), CM_OK);
        CU_ASSERT(evb_matches(4, &lay, body, 0, len, NULL));
        nd_fault_clear(faults, NULL, NULL);
    }
    event_base_free(tbase);
    tbase = NULL;
    free(body);
    free(back);
    cluster_down();
}

/*
 * A node's cells of a stripe are appended in one call (cells_appended_batched) and read back.
 * A node that predates such calls (it refuses the CRC list before appending anything) gets the
 * body's cells one by one: nothing is handed off, every cell lands at home.
 */
static void test_append_parts(void)
{
    size_t len = 2 * SBYTES + 5000;
    uint8_t *body = malloc(len);
    md_layout lay;
    ob_cluster_stats a, b;
    cluster_up();
    fill(body, len, 41);
    for (int old = 0; old < 2; old++) {
        atomic_store(&N[2].rpc.svc->no_append_parts, old);
        ob_store_cluster_stats(N[0].st, &a);
        CU_ASSERT_EQUAL_FATAL(put(0, body, len, 100000, &lay), CM_OK);
        ob_store_cluster_stats(N[0].st, &b);
        CU_ASSERT(b.cells_appended_batched - a.cells_appended_batched >= 2);
        CU_ASSERT_EQUAL(b.handoffs, a.handoffs);
        CU_ASSERT_EQUAL(live_cells(&lay), K + M);
        CU_ASSERT(names_node(&lay, 2));
        CU_ASSERT(read_matches(3, &lay, body, 0, len));
        CU_ASSERT(read_matches(2, &lay, body, SBYTES - 10, 20));
    }
    atomic_store(&N[2].rpc.svc->no_append_parts, 0);
    free(body);
    cluster_down();
}

/*
 * Reads cancelled on a loop that never runs again (a GET cut by the grace period at shutdown):
 * a cluster read, plain and compressed, whose cells are late, and a local one whose answer is
 * already due. The loop is freed before the cells come; the stores then close, which waits for
 * the reads to end on the cluster's loop: nothing of them may reach the freed loop, nor stay
 * behind (AddressSanitizer and LeakSanitizer in the sanitizer build).
 */
static void test_read_cancel_unrun(void)
{
    size_t len = 4 * SBYTES;
    uint8_t *body = malloc(len), *back = malloc(len);
    for (zlevel = 0; zlevel < 2; zlevel++) {
        md_layout lay;
        ob_writer *w;
        ob_read_op *op;
        cluster_up();
        (zlevel ? fill_text : fill)(body, len, 6);
        CU_ASSERT_EQUAL_FATAL(ob_writer_new(N[0].st, &w), CM_OK);
        CU_ASSERT_EQUAL_FATAL(ob_writer_write(w, body, len), CM_OK);
        CU_ASSERT_EQUAL_FATAL(ob_writer_finish(w, &lay), CM_OK);
        CU_ASSERT_EQUAL(lay.zalg, zlevel ? MD_Z_ZSTD : MD_Z_NONE);
        tbase = event_base_new();
        CU_ASSERT_EQUAL(nd_fault_set(faults, "n5", "*", ND_FAULT_DELAY, 300), CM_OK);
        int before = read_calls;
        CU_ASSERT_EQUAL_FATAL(
            ob_read_start(N[4].st, &lay, 0, back, SBYTES, tbase, read_cb, NULL, &op), CM_OK);
        ob_read_cancel(op);
        struct evbuffer *dst = evbuffer_new(); /* the same read by reference to the cells */
        CU_ASSERT_EQUAL_FATAL(
            ob_read_start_evb(N[4].st, &lay, 0, SBYTES, dst, tbase, read_cb, NULL, &op), CM_OK);
        ob_read_cancel(op);
        md_layout empty = lay; /* a local layout: answered through the loop as well */
        empty.epoch = 0;
        empty.size = 0;
        empty.zalg = MD_Z_NONE;
        CU_ASSERT_EQUAL_FATAL(ob_read_start(N[4].st, &empty, 0, back, 0, tbase, read_cb, NULL, &op),
                              CM_OK);
        ob_read_cancel(op);
        event_base_free(tbase); /* none ran */
        tbase = NULL;
        cluster_down(); /* waits for the cluster reads to end */
        CU_ASSERT_EQUAL(read_calls, before);
        CU_ASSERT_EQUAL(evbuffer_get_length(dst), 0);
        evbuffer_free(dst);
    }
    zlevel = 0;
    free(body);
    free(back);
}

/* ---- deletes reach the cells' nodes ---- */

/* Is the chunk of lay's cell i still on its node? */
static int cell_exists(const md_layout *lay, int i)
{
    bs_id id;
    uint64_t size;
    memcpy(id.b, lay->blob, sizeof(id.b));
    bs_store *bs = ob_store_drive(N[lay->nodes[i]].st, lay->drives[i]);
    return bs && bs_size(bs, &id, &size) == CM_OK;
}

/* Wait (bounded) until no cell of lay exists; returns how many still do. */
static int wait_cells_gone(const md_layout *lay)
{
    int left = 0;
    for (int tries = 0; tries < 500; tries++) {
        left = 0;
        for (int i = 0; i < lay->k + lay->m; i++)
            left += lay->drives[i] != 0xFF && cell_exists(lay, i);
        if (left == 0)
            break;
        usleep(10 * 1000);
    }
    return left;
}

static void test_deletes(void)
{
    size_t len = SBYTES + 5;
    uint8_t *body = malloc(len);
    md_layout lay, lay2;
    cluster_up();
    fill(body, len, 6);
    CU_ASSERT_EQUAL_FATAL(put(0, body, len, 100000, &lay), CM_OK);
    for (int i = 0; i < K + M; i++)
        CU_ASSERT(cell_exists(&lay, i));
    /* freed through another node's store: every cell's node deletes it */
    ob_delete(N[3].st, &lay);
    CU_ASSERT_EQUAL(wait_cells_gone(&lay), 0);
    CU_ASSERT_EQUAL(ob_delete_async(N[4].st, &lay), CM_OK); /* again: idempotent */
    ob_cluster_stats cs;
    ob_store_cluster_stats(N[3].st, &cs);
    CU_ASSERT_EQUAL(cs.remote_deletes, K + M);
    /* a body abandoned halfway: the writer's loop deletes what it wrote */
    ob_writer *w;
    CU_ASSERT_EQUAL_FATAL(ob_writer_new(N[1].st, &w), CM_OK);
    for (int s = 0; s < 3; s++)
        CU_ASSERT_EQUAL(ob_writer_write(w, body, SBYTES), CM_OK);
    CU_ASSERT_EQUAL(ob_writer_drop(w, &lay2), 0); /* nothing left for the caller to delete */
    node_close(1); /* the store waits for the writer's calls and deletes */
    /* an abandoned body has no layout: look for its chunks on every drive */
    uint64_t blobs = 0;
    for (int n = 0; n < NNODES; n++)
        for (int d = 0; n != 1 && d < NDRIVES; d++) {
            ob_drive_stats ds;
            ob_store_drive_stats(N[n].st, d, &ds);
            blobs += ds.blobs;
        }
    CU_ASSERT_EQUAL(blobs, 0);
    free(body);
    cluster_down();
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"roundtrip", test_roundtrip},
        {"handoff", test_handoff},
        {"handoff_intent", test_handoff_intent},
        {"topology_change", test_topology_change},
        {"drop_mid_body", test_drop_mid_body},
        {"slow_node_write", test_slow_node_write},
        {"az_down", test_az_down},
        {"hedged_read", test_hedged_read},
        {"read_ahead", test_read_ahead},
        {"transient_failure", test_transient_failure},
        {"big_body", test_big_body},
        {"deletes", test_deletes},
        {"event_loop_calls", test_event_loop_calls},
        {"room_notice_unrun", test_room_notice_unrun},
        {"read_cancel_unrun", test_read_cancel_unrun},
        {"read_evb", test_read_evb},
        {"read_on_loop", test_read_on_loop},
        {"read_parts", test_read_parts},
        {"append_parts", test_append_parts},
        {NULL, NULL},
    };
    cu_add_suite("obj_cluster", tests);
}
