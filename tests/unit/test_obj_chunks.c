/*
 * test_obj_chunks.c - the asynchronous chunk interface (obj/ob_chunk.h) on both backends.
 *
 * Every test starts three nodes in this process: n1 is "this node" (its drives are reached by the
 * local backend on the test thread's loop), n2 and n3 serve their drives over the node RPC (an
 * nd_service on a net_server thread each, on loopback). Each node has three drive slots; slot 2
 * is offline. The blobstores go through an I/O seam whose fdatasync can be slowed down.
 *
 * The suites obj_chunks_local and obj_chunks_remote run the same tests, one against the local
 * backend over n1's drives and one against a remote backend to n2; obj_chunks_shared runs most of
 * them against a gateway loop's share of the local backend (cells read on the loop when the page
 * cache holds them, else on a worker: cold_cell_read); obj_chunks runs the cluster
 * cases through a resolver: 6 cells x 16 bodies in flight to three nodes from one loop, the loop
 * kept serving a timer while syncs take 400 ms, and a refused peer. Calls run the loop until the
 * completions came (a 10 s guard fails a hang instead of blocking).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "cm_bufpool.h"
#include "cm_checksum.h"
#include "cm_util.h"
#include "cu_main.h"
#include "cu_nodes.h"
#include "ec.h"
#include "ob.h"
#include "ob_chunk.h"

static const uint8_t secret[] = "chunk-test-secret";
#define SECRET_LEN (sizeof(secret) - 1)
#define NNODES 3
#define NSLOTS 3 /* drive slots per node; the last is offline */
#define OFFLINE 2

/* ---- the I/O seam: fdatasync slowed by slow_ms ---- */

static atomic_int slow_ms;

static int slow_fdatasync(void *ctx, int fd)
{
    int ms = atomic_load(&slow_ms);
    if (ms > 0)
        usleep((useconds_t)ms * 1000);
    return bs_io_posix.fdatasync(ctx, fd);
}

static bs_io slow_io;

/* ---- nodes ---- */

typedef struct {
    char id[8];
    bs_store *bs[NSLOTS];
    nd_drive drives[NSLOTS];
    char dirs[NSLOTS][300];
    cu_rpc rpc;
} tnode;

static void node_start(tnode *n, const char *id, int serve)
{
    static int started;
    memset(n, 0, sizeof(*n));
    snprintf(n->id, sizeof(n->id), "%s", id);
    started++;
    for (int d = 0; d < NSLOTS; d++) {
        snprintf(n->dirs[d], sizeof(n->dirs[d]), "%s/%s-%d-d%d", cu_tmpdir(), id, started, d);
        bs_options o = {.compact_rate = -1, .io = &slow_io};
        if (d != OFFLINE)
            CU_ASSERT_EQUAL_FATAL(bs_open(n->dirs[d], &o, &n->bs[d]), CM_OK);
        n->drives[d].path = n->dirs[d];
        n->drives[d].bs = n->bs[d];
    }
    if (!serve)
        return;
    cu_rpc_serve(&n->rpc, id, secret, SECRET_LEN, n->drives, NSLOTS);
}

static void node_stop(tnode *n)
{
    cu_rpc_stop(&n->rpc, 1000);
    for (int d = 0; d < NSLOTS; d++)
        bs_close(n->bs[d]);
}

/* ---- the environment of one test ---- */

typedef struct {
    tnode nodes[NNODES];
    struct event_base *base;
    nd_faults *faults;
    nd_client *cl;     /* n1's RPC client */
    ob_chunks *local;  /* n1's drives */
    ob_chunks *to_n2;  /* a remote backend to n2 */
    ob_chunks *b;      /* the backend under test */
    pl_topology *topo; /* n1, n2, n3 with their RPC addresses */
    ob_resolver *res;
    int pending, hung;
} env;

static env E;

/* Event bases made after this accept completions posted from the local backend's workers. */
static void threads_on(void)
{
    evthread_use_pthreads();
}

static void env_up(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    static const char *ids[NNODES] = {"n1", "n2", "n3"};
    pthread_once(&once, threads_on);
    slow_io = bs_io_posix;
    slow_io.fdatasync = slow_fdatasync;
    atomic_store(&slow_ms, 0);
    memset(&E, 0, sizeof(E));
    for (int i = 0; i < NNODES; i++)
        node_start(&E.nodes[i], ids[i], i > 0);
    E.base = event_base_new();
    CU_ASSERT_EQUAL_FATAL(nd_faults_new(&E.faults), CM_OK);
    E.cl = cu_client(E.base, "n1", secret, SECRET_LEN, E.faults, 3000, 8);
    CU_ASSERT_EQUAL_FATAL(ob_chunks_local_new(E.base, E.nodes[0].drives, NSLOTS, 0, &E.local),
                          CM_OK);
    nd_peer p = {"n2", "127.0.0.1", E.nodes[1].rpc.port, 0};
    CU_ASSERT_EQUAL_FATAL(ob_chunks_remote_new(E.cl, &p, &E.to_n2), CM_OK);
    E.topo = pl_topology_new(7);
    for (int i = 0; i < NNODES; i++)
        cu_topo_node(E.topo, ids[i], i ? E.nodes[i].rpc.port : 1, "az1", NSLOTS);
    CU_ASSERT_EQUAL_FATAL(ob_resolver_new(E.topo, "n1", E.local, E.cl, &E.res), CM_OK);
}

static void env_down(void)
{
    ob_resolver_free(E.res);
    pl_topology_free(E.topo);
    ob_chunks_free(E.to_n2);
    ob_chunks_free(E.local);
    nd_client_free(E.cl);
    nd_faults_free(E.faults);
    event_base_free(E.base);
    for (int i = 0; i < NNODES; i++)
        node_stop(&E.nodes[i]);
}

/* Run the loop until every pending call completed (or the 10 s guard). */
static void loop_run(void)
{
    cu_loop_while(E.base, cu_positive, &E.pending, &E.hung, 10);
    CU_ASSERT_FALSE(E.hung);
}

/* ---- results ---- */

typedef struct {
    int done;
    cm_err err;
    uint64_t size;
    struct evbuffer *data;
    ob_chunk_ent list[ND_LIST_MAX];
    size_t nlist;
    int more;
    int64_t at_ms;
    char message[128];
} tres;

static void done_cb(void *arg, const ob_chunk_result *r)
{
    tres *t = arg;
    t->done++;
    t->err = r->err;
    t->size = r->size;
    t->nlist = r->nlist;
    t->more = r->more;
    t->at_ms = cm_monotonic_ms();
    snprintf(t->message, sizeof(t->message), "%s", r->message ? r->message : "");
    if (r->list)
        memcpy(t->list, r->list, r->nlist * sizeof(*r->list));
    if (r->data) {
        t->data = evbuffer_new();
        evbuffer_add_buffer(t->data, r->data); /* moved, as a streaming caller would */
    }
    E.pending--;
}

/* Wait for one call that returned rc; the completion must not have run inside the call. */
static tres wait_for(tres *t, cm_err rc)
{
    CU_ASSERT_EQUAL(rc, CM_OK);
    CU_ASSERT_EQUAL(t->done, 0);
    if (rc == CM_OK) {
        E.pending++;
        loop_run();
    }
    CU_ASSERT_EQUAL(t->done, rc == CM_OK ? 1 : 0);
    return *t;
}

static void tres_free(tres *t)
{
    if (t->data)
        evbuffer_free(t->data);
    t->data = NULL;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static cm_err do_append(ob_chunks *b, uint32_t drive, const bs_id *id, uint64_t off,
                        const uint8_t *p, size_t n, uint32_t crc, unsigned flags, uint64_t *size)
{
    static tres t;
    memset(&t, 0, sizeof(t));
    struct evbuffer *body = evbuffer_new();
    evbuffer_add(body, p, n);
    cm_err rc = ob_chunk_append(b, drive, id, off, body, crc, flags, done_cb, &t);
    CU_ASSERT_EQUAL(evbuffer_get_length(body), rc == CM_OK ? 0 : n); /* moved out */
    evbuffer_free(body);
    if (rc != CM_OK)
        return rc;
    wait_for(&t, rc);
    if (size)
        *size = t.size;
    return t.err;
}

static tres do_read(ob_chunks *b, uint32_t drive, const bs_id *id, uint64_t off, uint64_t len)
{
    static tres t;
    memset(&t, 0, sizeof(t));
    return wait_for(&t, ob_chunk_read(b, drive, id, off, len, done_cb, &t));
}

static tres do_stat(ob_chunks *b, uint32_t drive, const bs_id *id)
{
    static tres t;
    memset(&t, 0, sizeof(t));
    return wait_for(&t, ob_chunk_stat(b, drive, id, done_cb, &t));
}

static tres do_seal(ob_chunks *b, uint32_t drive, const bs_id *id, uint64_t len)
{
    static tres t;
    memset(&t, 0, sizeof(t));
    return wait_for(&t, ob_chunk_seal(b, drive, id, len, done_cb, &t));
}

static cm_err do_delete(ob_chunks *b, uint32_t drive, const bs_id *id)
{
    static tres t;
    memset(&t, 0, sizeof(t));
    return wait_for(&t, ob_chunk_delete(b, drive, id, done_cb, &t)).err;
}

static tres *do_list(ob_chunks *b, uint32_t drive, const bs_id *after, size_t max)
{
    static tres t;
    memset(&t, 0, sizeof(t));
    wait_for(&t, ob_chunk_list(b, drive, after, max, done_cb, &t));
    return &t;
}

/* 1 when read [off, off+len) of the chunk equals want. */
static int read_matches(ob_chunks *b, uint32_t drive, const bs_id *id, uint64_t off, uint64_t len,
                        const uint8_t *want)
{
    tres t = do_read(b, drive, id, off, len);
    int ok = t.err == CM_OK && t.size == len && t.data && evbuffer_get_length(t.data) == len &&
             memcmp(evbuffer_pullup(t.data, (ev_ssize_t)len), want, len) == 0;
    tres_free(&t);
    return ok;
}

/* ---- the suite run on each backend ---- */

static void t_append_pieces_read_ranges(void)
{
    enum { SIZE = 700001 };
    static const size_t pieces[] = {1, 4095, 65536, 300000, SIZE - 1 - 4095 - 65536 - 300000};
    uint8_t *buf = malloc(SIZE);
    bs_id id;
    uint64_t off = 0, size = 0;
    fill(buf, SIZE, 1);
    bs_id_new(&id);
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        unsigned flags = i + 1 == sizeof(pieces) / sizeof(pieces[0]) ? OB_CHUNK_SYNC : 0;
        CU_ASSERT_EQUAL(do_append(E.b, 0, &id, off, buf + off, pieces[i],
                                  cm_crc32c(0, buf + off, pieces[i]), flags, &size),
                        CM_OK);
        off += pieces[i];
        CU_ASSERT_EQUAL(size, off);
    }
    CU_ASSERT_EQUAL(off, SIZE);
    CU_ASSERT_EQUAL(do_stat(E.b, 0, &id).size, SIZE);
    /* an append at the wrong offset tells where the chunk stands */
    CU_ASSERT_EQUAL(do_append(E.b, 0, &id, 5, buf, 10, cm_crc32c(0, buf, 10), 0, &size),
                    CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(size, SIZE);
    /* seal at its length syncs it; at another length is refused with the real one */
    CU_ASSERT_EQUAL(do_seal(E.b, 0, &id, SIZE).err, CM_OK);
    tres s = do_seal(E.b, 0, &id, SIZE - 1);
    CU_ASSERT_EQUAL(s.err, CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(s.size, SIZE);
    /* ranges, byte-exact */
    CU_ASSERT(read_matches(E.b, 0, &id, 0, 1, buf));
    CU_ASSERT(read_matches(E.b, 0, &id, 12345, 200000, buf + 12345));
    CU_ASSERT(read_matches(E.b, 0, &id, SIZE - 10, 10, buf + SIZE - 10));
    CU_ASSERT(read_matches(E.b, 0, &id, 0, SIZE, buf));
    CU_ASSERT_EQUAL(do_read(E.b, 0, &id, SIZE - 5, 10).err, CM_ERR_RANGE);
    /* empty or oversized calls are refused at once */
    tres t = {0};
    CU_ASSERT_EQUAL(ob_chunk_read(E.b, 0, &id, 0, 0, done_cb, &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(ob_chunk_read(E.b, 0, &id, 0, OB_CHUNK_MAX_IO + 1ull, done_cb, &t),
                    CM_ERR_INVAL);
    CU_ASSERT_EQUAL(do_append(E.b, 0, &id, SIZE, buf, 0, 0, 0, NULL), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(t.done, 0);
    free(buf);
}

static void t_checksum_refused(void)
{
    uint8_t buf[9000];
    bs_id id;
    fill(buf, sizeof(buf), 2);
    bs_id_new(&id);
    CU_ASSERT_EQUAL(do_append(E.b, 1, &id, 0, buf, 4000, cm_crc32c(0, buf, 4000), 0, NULL), CM_OK);
    CU_ASSERT_EQUAL(do_append(E.b, 1, &id, 4000, buf + 4000, 5000,
                              cm_crc32c(0, buf + 4000, 5000) ^ 1, OB_CHUNK_SYNC, NULL),
                    CM_ERR_DIGEST);
    /* a refused chunk leaves nothing behind: the writer rewrites the cell from 0 */
    CU_ASSERT_EQUAL(do_stat(E.b, 1, &id).err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(do_append(E.b, 1, &id, 0, buf, 9000, cm_crc32c(0, buf, 9000) + 7, 0, NULL),
                    CM_ERR_DIGEST);
    CU_ASSERT_EQUAL(do_stat(E.b, 1, &id).err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(
        do_append(E.b, 1, &id, 0, buf, 9000, cm_crc32c(0, buf, 9000), OB_CHUNK_SYNC, NULL), CM_OK);
    CU_ASSERT(read_matches(E.b, 1, &id, 0, 9000, buf));
}

static int ent_cmp(const void *a, const void *b)
{
    return memcmp(((const ob_chunk_ent *)a)->id.b, ((const ob_chunk_ent *)b)->id.b, 16);
}

static void t_delete_stat_list(void)
{
    enum { N = 5 };
    uint8_t buf[2000];
    ob_chunk_ent want[N], seen[N];
    size_t nseen = 0;
    for (int i = 0; i < N; i++) {
        size_t len = 300 + 200 * (size_t)i;
        fill(buf, len, 10 + (uint64_t)i);
        bs_id_new(&want[i].id);
        want[i].size = len;
        CU_ASSERT_EQUAL(do_append(E.b, 0, &want[i].id, 0, buf, len, cm_crc32c(0, buf, len),
                                  OB_CHUNK_SYNC, NULL),
                        CM_OK);
        CU_ASSERT_EQUAL(do_stat(E.b, 0, &want[i].id).size, len);
    }
    qsort(want, N, sizeof(want[0]), ent_cmp);
    /* pages of 2 in id order: 2 + 2 + 1 */
    const bs_id *after = NULL;
    for (int page = 0; page < N; page++) {
        tres *t = do_list(E.b, 0, after, 2);
        CU_ASSERT_EQUAL_FATAL(t->err, CM_OK);
        CU_ASSERT_FATAL(nseen + t->nlist <= N);
        CU_ASSERT_EQUAL(t->more, t->nlist == 2);
        memcpy(&seen[nseen], t->list, t->nlist * sizeof(t->list[0]));
        nseen += t->nlist;
        if (!t->more)
            break;
        after = &seen[nseen - 1].id;
    }
    CU_ASSERT_EQUAL_FATAL(nseen, N);
    for (int i = 0; i < N; i++) {
        CU_ASSERT(memcmp(seen[i].id.b, want[i].id.b, 16) == 0);
        CU_ASSERT_EQUAL(seen[i].size, want[i].size);
    }
    /* delete two (the second time is fine too), then they are gone from stat and list */
    CU_ASSERT_EQUAL(do_delete(E.b, 0, &want[1].id), CM_OK);
    CU_ASSERT_EQUAL(do_delete(E.b, 0, &want[3].id), CM_OK);
    CU_ASSERT_EQUAL(do_delete(E.b, 0, &want[3].id), CM_OK);
    CU_ASSERT_EQUAL(do_stat(E.b, 0, &want[1].id).err, CM_ERR_NOTFOUND);
    /* a read of a deleted chunk says so, and when (a GET cut "not found" names its cause) */
    tres r = do_read(E.b, 0, &want[1].id, 0, 10);
    CU_ASSERT_EQUAL(r.err, CM_ERR_NOTFOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.message, "deleted here"));
    bs_id never;
    bs_id_new(&never);
    r = do_read(E.b, 0, &never, 0, 10);
    CU_ASSERT_EQUAL(r.err, CM_ERR_NOTFOUND);
    CU_ASSERT_PTR_NULL(strstr(r.message, "deleted here"));
    tres *t = do_list(E.b, 0, NULL, 100);
    CU_ASSERT_EQUAL_FATAL(t->nlist, N - 2);
    CU_ASSERT_EQUAL(t->more, 0);
    CU_ASSERT(memcmp(t->list[0].id.b, want[0].id.b, 16) == 0);
    CU_ASSERT(memcmp(t->list[1].id.b, want[2].id.b, 16) == 0);
    CU_ASSERT(memcmp(t->list[2].id.b, want[4].id.b, 16) == 0);
    CU_ASSERT_EQUAL(do_list(E.b, 1, NULL, 100)->nlist, 0); /* another drive: its own chunks */
}

static void t_errors(void)
{
    uint8_t buf[100];
    bs_id id;
    fill(buf, sizeof(buf), 3);
    bs_id_new(&id);
    /* a missing chunk */
    CU_ASSERT_EQUAL(do_read(E.b, 0, &id, 0, 10).err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(do_stat(E.b, 0, &id).err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(do_seal(E.b, 0, &id, 0).err, CM_OK); /* nothing to seal at 0 */
    CU_ASSERT_EQUAL(do_seal(E.b, 0, &id, 5).err, CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(do_append(E.b, 0, &id, 7, buf, 10, cm_crc32c(0, buf, 10), 0, NULL),
                    CM_ERR_CONFLICT);
    /* an offline drive */
    CU_ASSERT_EQUAL(do_append(E.b, OFFLINE, &id, 0, buf, 10, cm_crc32c(0, buf, 10), 0, NULL),
                    CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(do_read(E.b, OFFLINE, &id, 0, 10).err, CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(do_stat(E.b, OFFLINE, &id).err, CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(do_list(E.b, OFFLINE, NULL, 10)->err, CM_ERR_UNAVAILABLE);
    /* a drive the node does not have */
    CU_ASSERT_EQUAL(do_stat(E.b, 9, &id).err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(do_append(E.b, 9, &id, 0, buf, 10, cm_crc32c(0, buf, 10), 0, NULL),
                    CM_ERR_NOTFOUND);
}

/* A cell read (up to ND_PIECE) arrives as one chain of a buffer of the shared pool, which goes
 * back to it when the data is freed (on whichever thread: a cluster GET frees it on the gateway's
 * loop), and the next cell read takes it again; a part of a cell reads right from the same kind
 * of buffer. */
/* A new chunk of ND_PIECE bytes from seed on drive 0 of the backend under test, synced: its id
 * into *id, its bytes (the caller frees them). */
static uint8_t *cell_appended(bs_id *id, uint64_t seed)
{
    uint8_t *buf = malloc(ND_PIECE);
    uint64_t size = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    fill(buf, ND_PIECE, seed);
    bs_id_new(id);
    CU_ASSERT_EQUAL(
        do_append(E.b, 0, id, 0, buf, ND_PIECE, cm_crc32c(0, buf, ND_PIECE), OB_CHUNK_SYNC, &size),
        CM_OK);
    return buf;
}

static void t_cell_read_pooled(void)
{
    bs_id id;
    uint8_t *buf = cell_appended(&id, 7);
    cm_bufpool_release_shared();
    for (int round = 0; round < 2; round++) {
        tres t = do_read(E.b, 0, &id, 0, ND_PIECE);
        CU_ASSERT_EQUAL(t.err, CM_OK);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t.data);
        CU_ASSERT_EQUAL(evbuffer_peek(t.data, -1, NULL, NULL, 0), 1);
        CU_ASSERT_EQUAL(cm_bufpool_idle_shared(), 0); /* the one buffer is in use */
        CU_ASSERT(evbuffer_get_length(t.data) == ND_PIECE &&
                  memcmp(evbuffer_pullup(t.data, -1), buf, ND_PIECE) == 0);
        tres_free(&t);
        CU_ASSERT_EQUAL(cm_bufpool_idle_shared(), 1);
    }
    CU_ASSERT(read_matches(E.b, 0, &id, 5, 1000, buf + 5));
    cm_bufpool_release_shared();
    free(buf);
}

/*
 * A gateway loop's backend (ob_chunks_local_share) reads a cell on its loop only from the page
 * cache: once the cell's pages are dropped, the read goes to a worker and still brings the right
 * bytes, which are then cached and read on the loop again. (Skipped where the drive is on tmpfs,
 * which never reads from a disk.)
 */
static void t_cold_cell_read(void)
{
    bs_id id;
    uint8_t *buf = cell_appended(&id, 9);
    char path[400];
    struct statfs fs;
    snprintf(path, sizeof(path), "%s/seg-00000001.cbs", E.nodes[0].dirs[0]);
    int fd = open(path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    if (fstatfs(fd, &fs) == 0 && fs.f_type != 0x01021994 /* tmpfs */)
        CU_ASSERT_EQUAL(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
    for (int round = 0; round < 2; round++) { /* from the disk on a worker, then cached */
        tres t = do_read(E.b, 0, &id, 0, ND_PIECE);
        CU_ASSERT_EQUAL(t.err, CM_OK);
        CU_ASSERT(t.data && evbuffer_get_length(t.data) == ND_PIECE &&
                  memcmp(evbuffer_pullup(t.data, -1), buf, ND_PIECE) == 0);
        tres_free(&t);
    }
    cm_bufpool_release_shared();
    free(buf);
}

/* ---- running the suite on each backend ---- */

/* On a gateway loop's share of n1's local backend, which reads cells on the loop. */
static void on_shared(void (*fn)(void))
{
    env_up();
    CU_ASSERT_EQUAL_FATAL(ob_chunks_local_share(E.local, E.base, &E.b), CM_OK);
    fn();
    ob_chunks_free(E.b);
    env_down();
}

#define ON_SHARED(fn)                                                                              \
    static void fn##_shared(void)                                                                  \
    {                                                                                              \
        on_shared(fn);                                                                             \
    }

static void on_local(void (*fn)(void))
{
    env_up();
    E.b = E.local;
    fn();
    env_down();
}

static void on_remote(void (*fn)(void))
{
    env_up();
    E.b = E.to_n2;
    fn();
    env_down();
}

#define ON_BOTH(fn)                                                                                \
    static void fn##_local(void)                                                                   \
    {                                                                                              \
        on_local(fn);                                                                              \
    }                                                                                              \
    static void fn##_remote(void)                                                                  \
    {                                                                                              \
        on_remote(fn);                                                                             \
    }

ON_BOTH(t_append_pieces_read_ranges)
ON_BOTH(t_checksum_refused)
ON_BOTH(t_delete_stat_list)
ON_BOTH(t_errors)
ON_BOTH(t_cell_read_pooled)

ON_SHARED(t_append_pieces_read_ranges)
ON_SHARED(t_errors)
ON_SHARED(t_cell_read_pooled)
ON_SHARED(t_cold_cell_read)

/* ---- the cluster cases, through the resolver ---- */

enum { BODIES = 16, CELLS = 6, PIECES = 3, PIECE = 20000 };

typedef struct cell {
    ob_chunks *b;
    uint32_t drive;
    bs_id id;
    uint8_t data[PIECES * PIECE];
    int next; /* next piece to append */
    cm_err err;
    int done;
} cell;

static cell *flight; /* BODIES * CELLS */

static void cell_piece(cell *c);

static void cell_done(void *arg, const ob_chunk_result *r)
{
    cell *c = arg;
    if (r->err != CM_OK || c->next == PIECES) {
        c->err = r->err;
        c->done = 1;
        E.pending--;
        return;
    }
    cell_piece(c);
}

/* Append the next piece (the last one synced); the next one starts from its completion. */
static void cell_piece(cell *c)
{
    const uint8_t *p = c->data + (size_t)c->next * PIECE;
    struct evbuffer *body = evbuffer_new();
    evbuffer_add(body, p, PIECE);
    uint64_t off = (uint64_t)c->next++ * PIECE;
    unsigned flags = c->next == PIECES ? OB_CHUNK_SYNC : 0;
    cm_err e = ob_chunk_append(c->b, c->drive, &c->id, off, body, cm_crc32c(0, p, PIECE), flags,
                               cell_done, c);
    evbuffer_free(body);
    if (e != CM_OK) {
        c->err = e;
        c->done = 1;
        E.pending--;
    }
}

/* Cell j of every body on node j % 3, drive (j / 3) % 2: six distinct drives over three nodes. */
static void cells_start(int bodies)
{
    flight = calloc((size_t)bodies * CELLS, sizeof(*flight));
    for (int i = 0; i < bodies * CELLS; i++) {
        cell *c = &flight[i];
        int j = i % CELLS;
        c->b = ob_resolve(E.res, j % NNODES, NULL);
        c->drive = (uint32_t)((j / NNODES) % 2);
        bs_id_new(&c->id);
        fill(c->data, sizeof(c->data), 100 + (uint64_t)i);
        E.pending++;
    }
    for (int i = 0; i < bodies * CELLS; i++)
        cell_piece(&flight[i]);
}

static void test_resolver(void)
{
    int local = -1;
    env_up();
    CU_ASSERT_PTR_EQUAL(ob_resolve(E.res, 0, &local), E.local);
    CU_ASSERT_EQUAL(local, 1);
    ob_chunks *r2 = ob_resolve(E.res, 1, &local);
    CU_ASSERT_PTR_NOT_NULL(r2);
    CU_ASSERT_PTR_NOT_EQUAL(r2, E.local);
    CU_ASSERT_EQUAL(local, 0);
    CU_ASSERT_PTR_NULL(ob_resolve(E.res, 3, &local));
    CU_ASSERT_PTR_NULL(ob_resolve(E.res, -1, NULL));
    /* a node named by a DNS name is taken: the RPC client resolves it at each connection
     * (net_client/host_names, node/host_names test which addresses are refused) */
    pl_topology *t = pl_topology_new(1);
    int idx;
    CU_ASSERT_EQUAL(pl_topology_add_node(t, "x", "node-x.example:9100", "az1", &idx), CM_OK);
    ob_resolver *r = NULL;
    CU_ASSERT_EQUAL(ob_resolver_new(t, "n1", E.local, E.cl, &r), CM_OK);
    CU_ASSERT_PTR_NOT_NULL(r);
    ob_resolver_free(r);
    pl_topology_free(t);
    env_down();
}

static void test_many_in_flight(void)
{
    env_up();
    int64_t t0 = cm_monotonic_ms();
    cells_start(BODIES);
    loop_run();
    int64_t write_ms = cm_monotonic_ms() - t0;
    int ok = 0;
    for (int i = 0; i < BODIES * CELLS; i++)
        ok += flight[i].done && flight[i].err == CM_OK;
    CU_ASSERT_EQUAL(ok, BODIES * CELLS);
    /* every cell byte-exact, then every drive lists its 16 cells */
    for (int i = 0; i < BODIES * CELLS; i++)
        CU_ASSERT(read_matches(flight[i].b, flight[i].drive, &flight[i].id, 0,
                               sizeof(flight[i].data), flight[i].data));
    for (int n = 0; n < NNODES; n++)
        for (uint32_t d = 0; d < 2; d++) {
            tres *t = do_list(ob_resolve(E.res, n, NULL), d, NULL, 100);
            CU_ASSERT_EQUAL(t->err, CM_OK);
            CU_ASSERT_EQUAL(t->nlist, BODIES);
        }
    printf("\n  %d cells x %d KB (3 appends each, the last synced) in flight to 3 nodes: %lld ms\n",
           BODIES * CELLS, PIECES * PIECE / 1000, (long long)write_ms);
    free(flight);
    env_down();
}

/* ---- the loop keeps running while syncs are slow ---- */

static int64_t last_tick, max_gap;
static int ticks;

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = cm_monotonic_ms();
    (void)fd;
    (void)what;
    (void)arg;
    if (last_tick && now - last_tick > max_gap)
        max_gap = now - last_tick;
    last_tick = now;
    ticks++;
}

static void start_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    cells_start(2);
    E.pending--;
}

static void test_loop_not_blocked(void)
{
    enum { SLOW = 400 };
    env_up();
    atomic_store(&slow_ms, SLOW);
    struct event *tick = event_new(E.base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval iv = {0, 10 * 1000};
    last_tick = max_gap = 0;
    ticks = 0;
    event_add(tick, &iv);
    /* the writes start from the loop once the timer runs, so a call that blocked would show */
    struct timeval later = {0, 30 * 1000};
    E.pending++;
    event_base_once(E.base, -1, EV_TIMEOUT, start_cb, NULL, &later);
    int64_t t0 = cm_monotonic_ms();
    loop_run();
    int64_t took = cm_monotonic_ms() - t0;
    CU_ASSERT(ticks > 2);
    event_free(tick);
    atomic_store(&slow_ms, 0);
    for (int i = 0; i < 2 * CELLS; i++)
        CU_ASSERT_EQUAL(flight[i].err, CM_OK);
    /* the syncs really were slow, yet the 10 ms timer never waited for one */
    CU_ASSERT(took >= SLOW);
    CU_ASSERT(max_gap < SLOW * 2 / 3 /* a blocked loop would wait a whole sync */);
    printf("\n  12 synced cells with %d ms fdatasyncs: %lld ms; timer ticks %d, largest gap %lld "
           "ms\n",
           SLOW, (long long)took, ticks, (long long)max_gap);
    free(flight);
    env_down();
}

/* ---- the RPC fault layer under the remote backend ---- */

static void test_refused_peer(void)
{
    uint8_t buf[1000];
    bs_id id;
    env_up();
    fill(buf, sizeof(buf), 4);
    bs_id_new(&id);
    CU_ASSERT_EQUAL(nd_fault_set(E.faults, "n1", "n3", ND_FAULT_REFUSE, 0), CM_OK);
    ob_chunks *n3 = ob_resolve(E.res, 2, NULL);
    int64_t t0 = cm_monotonic_ms();
    CU_ASSERT_EQUAL(
        do_append(n3, 0, &id, 0, buf, sizeof(buf), cm_crc32c(0, buf, sizeof(buf)), 1, NULL),
        CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(do_read(n3, 0, &id, 0, 10).err, CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(do_list(n3, 0, NULL, 10)->err, CM_ERR_UNAVAILABLE);
    CU_ASSERT(cm_monotonic_ms() - t0 < 500); /* promptly: no timeout was waited for */
    /* n2 still answers; once the rule is gone n3 does too */
    ob_chunks *n2 = ob_resolve(E.res, 1, NULL);
    CU_ASSERT_EQUAL(
        do_append(n2, 0, &id, 0, buf, sizeof(buf), cm_crc32c(0, buf, sizeof(buf)), 1, NULL), CM_OK);
    nd_fault_clear(E.faults, "n1", "n3");
    CU_ASSERT_EQUAL(
        do_append(n3, 0, &id, 0, buf, sizeof(buf), cm_crc32c(0, buf, sizeof(buf)), 1, NULL), CM_OK);
    CU_ASSERT(read_matches(n3, 0, &id, 0, sizeof(buf), buf));
    env_down();
}

/* ---- an erasure-coded body over the interface (ob_put_body) ---- */

enum { PK = 3, PM = 3, PCELL = 64 * 1024 };

static struct {
    int done;
    cm_err err;
    md_layout lay;
} put;

static void put_done(void *arg, cm_err err, const md_layout *lay)
{
    (void)arg;
    put.done++;
    put.err = err;
    if (lay)
        put.lay = *lay;
    E.pending--;
}

/* Cell j on node j % 3, drive (j / 3) % 2 of it (six distinct drives, two per node). */
static void put_cells(pl_cell *cells)
{
    for (int j = 0; j < PK + PM; j++)
        cells[j] = (pl_cell){(uint16_t)(j % NNODES), (uint16_t)((j / NNODES) % 2)};
}

/* Put len bytes of seed through the resolver; returns the result (layout in put.lay). */
static cm_err put_body(const uint8_t *body, size_t len, const bs_id *id)
{
    pl_cell cells[PK + PM];
    put_cells(cells);
    ob_put_config pc = {PK, PM, PCELL, 7, cells, id};
    memset(&put, 0, sizeof(put));
    cm_err rc = ob_put_body(E.res, &pc, body, len, put_done, NULL);
    CU_ASSERT_EQUAL(put.done, 0);
    if (rc != CM_OK)
        return rc;
    E.pending++;
    loop_run();
    CU_ASSERT_EQUAL(put.done, 1);
    return put.err;
}

/*
 * The bytes cell i of the body must hold: every stripe's cell i back to back, computed here with
 * the codec (so parity is checked too). Caller frees.
 */
static uint8_t *expected_cell(const uint8_t *body, size_t len, int i, uint64_t *clen_total)
{
    ec_codec *codec;
    size_t full = (size_t)PK * PCELL;
    uint64_t total = 0;
    uint8_t *out = malloc(len / PK + 2 * PCELL), *stripe = malloc((size_t)(PK + PM) * PCELL);
    CU_ASSERT_FATAL(ec_new(PK, PM, &codec) == CM_OK);
    for (size_t pos = 0; pos < len;) {
        size_t n = CM_MIN(len - pos, full);
        uint32_t clen = n == full ? PCELL : (uint32_t)(((n + PK - 1) / PK + 63) & ~(size_t)63);
        uint8_t *cells[PK + PM];
        memset(stripe, 0, (size_t)(PK + PM) * PCELL);
        memcpy(stripe, body + pos, n);
        for (int c = 0; c < PK + PM; c++)
            cells[c] = stripe + (size_t)c * clen;
        ec_encode(codec, clen, cells, cells + PK);
        memcpy(out + total, cells[i], clen);
        total += clen;
        pos += n;
    }
    ec_free(codec);
    free(stripe);
    *clen_total = total;
    return out;
}

/* Every cell the layout names holds exactly its bytes; the others hold nothing. */
static void check_cells(const uint8_t *body, size_t len, const md_layout *lay)
{
    pl_cell cells[PK + PM];
    bs_id id;
    put_cells(cells);
    memcpy(id.b, lay->blob, 16);
    for (int i = 0; i < PK + PM; i++) {
        uint32_t drive;
        int delay;
        ob_chunks *b = ob_resolve_cell(E.res, &cells[i], &drive);
        uint64_t clen;
        uint8_t *want = expected_cell(body, len, i, &clen);
        CU_ASSERT_EQUAL(lay->nodes[i], cells[i].node);
        if (lay->drives[i] != 0xFF) {
            CU_ASSERT_EQUAL(lay->drives[i], cells[i].drive);
            CU_ASSERT_EQUAL(clen, ob_layout_cell_blob_len(lay));
            CU_ASSERT(read_matches(b, drive, &id, 0, clen, want));
        } else if (nd_fault_get(E.faults, "n1", E.nodes[cells[i].node].id, &delay) ==
                   ND_FAULT_NONE) {
            CU_ASSERT_EQUAL(do_stat(b, drive, &id).err, CM_ERR_NOTFOUND);
        }
        free(want);
    }
}

static void test_put_all_up(void)
{
    size_t len = 5 * PK * PCELL + 12345; /* five full stripes and a short one */
    uint8_t *body = malloc(len);
    env_up();
    fill(body, len, 50);
    CU_ASSERT_EQUAL_FATAL(put_body(body, len, NULL), CM_OK);
    for (int i = 0; i < PK + PM; i++)
        CU_ASSERT_NOT_EQUAL(put.lay.drives[i], 0xFF); /* every node up: all k+m cells */
    CU_ASSERT_EQUAL(put.lay.size, len);
    CU_ASSERT_EQUAL(put.lay.epoch, 7);
    check_cells(body, len, &put.lay);
    free(body);
    env_down();
}

static void test_put_one_node_refused(void)
{
    size_t len = 2 * PK * PCELL + 100;
    uint8_t *body = malloc(len);
    env_up();
    fill(body, len, 51);
    CU_ASSERT_EQUAL(nd_fault_set(E.faults, "n1", "n3", ND_FAULT_REFUSE, 0), CM_OK);
    CU_ASSERT_EQUAL_FATAL(put_body(body, len, NULL), CM_OK);
    int cells = 0;
    for (int i = 0; i < PK + PM; i++) {
        cells += put.lay.drives[i] != 0xFF;
        CU_ASSERT_EQUAL(put.lay.drives[i] == 0xFF, i % NNODES == 2); /* n3's cells are missing */
    }
    CU_ASSERT_EQUAL(cells, PK + 1); /* k+1 durable: acknowledged */
    check_cells(body, len, &put.lay);
    free(body);
    env_down();
}

static void test_put_too_few_cells(void)
{
    size_t len = PK * PCELL + 1;
    uint8_t *body = malloc(len);
    bs_id id;
    env_up();
    fill(body, len, 52);
    bs_id_new(&id);
    /* two nodes refused: 2 cells < k+1, the body fails and n1's cells are deleted */
    CU_ASSERT_EQUAL(nd_fault_set(E.faults, "n1", "n2", ND_FAULT_REFUSE, 0), CM_OK);
    CU_ASSERT_EQUAL(nd_fault_set(E.faults, "n1", "n3", ND_FAULT_REFUSE, 0), CM_OK);
    CU_ASSERT_EQUAL(put_body(body, len, &id), CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(do_stat(E.local, 0, &id).err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(do_stat(E.local, 1, &id).err, CM_ERR_NOTFOUND);
    /* a cell on a drive the topology does not have does not resolve; too few to start */
    pl_cell cells[PK + PM];
    put_cells(cells);
    for (int j = 0; j < 3; j++)
        cells[j].drive = 9;
    ob_put_config pc = {PK, PM, PCELL, 7, cells, NULL};
    CU_ASSERT_EQUAL(ob_put_body(E.res, &pc, body, len, put_done, NULL), CM_ERR_UNAVAILABLE);
    pc.cell_size = 1000; /* not a multiple of 64 */
    CU_ASSERT_EQUAL(ob_put_body(E.res, &pc, body, len, put_done, NULL), CM_ERR_INVAL);
    free(body);
    env_down();
}

/* ---- reading k of the cells (ob_get_range) ---- */

static struct {
    int done;
    cm_err err;
    struct evbuffer *data;
} get;

static void get_done(void *arg, cm_err err, struct evbuffer *data)
{
    (void)arg;
    get.done++;
    get.err = err;
    if (data) {
        get.data = evbuffer_new();
        evbuffer_add_buffer(get.data, data);
    }
    E.pending--;
}

/* Read [off, off+len) of the body at lay; 1 when it matches want (CM_OK), else *err. */
static int get_matches(const md_layout *lay, uint64_t off, uint64_t len, const uint8_t *want,
                       cm_err *err)
{
    memset(&get, 0, sizeof(get));
    cm_err rc = ob_get_range(E.res, lay, off, len, get_done, NULL);
    CU_ASSERT_EQUAL(get.done, 0);
    *err = rc;
    if (rc != CM_OK)
        return 0;
    E.pending++;
    loop_run();
    CU_ASSERT_EQUAL(get.done, 1);
    *err = get.err;
    int ok = get.err == CM_OK && evbuffer_get_length(get.data) == len &&
             memcmp(evbuffer_pullup(get.data, (ev_ssize_t)len), want, len) == 0;
    if (get.data)
        evbuffer_free(get.data);
    return ok;
}

static void test_get_reconstructs(void)
{
    size_t len = 5 * PK * PCELL + 12345, sb = PK * PCELL;
    uint8_t *body = malloc(len);
    cm_err e;
    env_up();
    fill(body, len, 60);
    CU_ASSERT_EQUAL_FATAL(put_body(body, len, NULL), CM_OK);
    md_layout lay = put.lay;
    /* all up: the whole body, a range across three stripes, the tail, one byte */
    CU_ASSERT(get_matches(&lay, 0, len, body, &e));
    CU_ASSERT(get_matches(&lay, sb - 1000, 3 * sb, body + sb - 1000, &e));
    CU_ASSERT(get_matches(&lay, len - 10, 10, body + len - 10, &e));
    CU_ASSERT(get_matches(&lay, 777, 1, body + 777, &e));
    /* n3 refused: data cell 2 is rebuilt from parity in every stripe */
    CU_ASSERT_EQUAL(nd_fault_set(E.faults, "n1", "n3", ND_FAULT_REFUSE, 0), CM_OK);
    CU_ASSERT(get_matches(&lay, 0, len, body, &e));
    CU_ASSERT(get_matches(&lay, sb + 5, sb + 100, body + sb + 5, &e));
    /* and n1's data cell 0 deleted too: still k = 3 cells (1 on n2, 3 on n1, 4 on n2) */
    bs_id id;
    memcpy(id.b, lay.blob, 16);
    CU_ASSERT_EQUAL(do_delete(E.local, 0, &id), CM_OK);
    CU_ASSERT(get_matches(&lay, 0, len, body, &e));
    /* n2 refused as well: two cells left, the read fails (through done) */
    CU_ASSERT_EQUAL(nd_fault_set(E.faults, "n1", "n2", ND_FAULT_REFUSE, 0), CM_OK);
    CU_ASSERT_FALSE(get_matches(&lay, 0, 100, body, &e));
    CU_ASSERT_EQUAL(e, CM_ERR_UNAVAILABLE);
    /* ranges refused at once */
    CU_ASSERT_EQUAL(ob_get_range(E.res, &lay, len - 5, 10, get_done, NULL), CM_ERR_RANGE);
    CU_ASSERT_EQUAL(ob_get_range(E.res, &lay, 0, 0, get_done, NULL), CM_ERR_INVAL);
    free(body);
    env_down();
}

static void test_get_after_degraded_put(void)
{
    size_t len = 2 * PK * PCELL + 4321;
    uint8_t *body = malloc(len);
    cm_err e;
    env_up();
    fill(body, len, 61);
    CU_ASSERT_EQUAL(nd_fault_set(E.faults, "n1", "n3", ND_FAULT_REFUSE, 0), CM_OK);
    CU_ASSERT_EQUAL_FATAL(put_body(body, len, NULL), CM_OK);
    /* n3 back: the layout, not the node, says its cells are missing; the read rebuilds cell 2 */
    nd_fault_clear(E.faults, "n1", "n3");
    CU_ASSERT(get_matches(&put.lay, 0, len, body, &e));
    CU_ASSERT(get_matches(&put.lay, PK * PCELL - 3, 7, body + PK * PCELL - 3, &e));
    free(body);
    env_down();
}

void cu_register(void)
{
    static const cu_test local[] = {
        {"append_pieces_read_ranges", t_append_pieces_read_ranges_local},
        {"checksum_refused", t_checksum_refused_local},
        {"delete_stat_list", t_delete_stat_list_local},
        {"errors", t_errors_local},
        {"cell_read_pooled", t_cell_read_pooled_local},
        {NULL, NULL},
    };
    static const cu_test remote[] = {
        {"append_pieces_read_ranges", t_append_pieces_read_ranges_remote},
        {"checksum_refused", t_checksum_refused_remote},
        {"delete_stat_list", t_delete_stat_list_remote},
        {"errors", t_errors_remote},
        {"cell_read_pooled", t_cell_read_pooled_remote},
        {NULL, NULL},
    };
    static const cu_test cluster[] = {
        {"resolver", test_resolver},
        {"many_in_flight", test_many_in_flight},
        {"loop_not_blocked", test_loop_not_blocked},
        {"refused_peer", test_refused_peer},
        {"put_all_up", test_put_all_up},
        {"put_one_node_refused", test_put_one_node_refused},
        {"put_too_few_cells", test_put_too_few_cells},
        {"get_reconstructs", test_get_reconstructs},
        {"get_after_degraded_put", test_get_after_degraded_put},
        {NULL, NULL},
    };
    static const cu_test shared[] = {
        {"append_pieces_read_ranges", t_append_pieces_read_ranges_shared},
        {"errors", t_errors_shared},
        {"cell_read_pooled", t_cell_read_pooled_shared},
        {"cold_cell_read", t_cold_cell_read_shared},
        {NULL, NULL},
    };
    cu_add_suite("obj_chunks_local", local);
    cu_add_suite("obj_chunks_shared", shared);
    cu_add_suite("obj_chunks_remote", remote);
    cu_add_suite("obj_chunks", cluster);
}
