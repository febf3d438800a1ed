/*
 * ob_data.c - single-node data path: bodies as erasure-coded stripes over local drives (ob.h).
 * A store in cluster mode hands its writers, and reads and deletes of layouts with epoch != 0, to
 * ob_cluster*.c instead (docs/chunks.md); everything below is the local path.
 *
 * Geometry. A body of size bytes is cut into full stripes of k * cell_size payload bytes and, when
 * size is not a multiple of that, one last stripe whose cells are clen = ceil(rest / k) rounded up
 * to 64 bytes (zero padded). Stripe s starts at body offset s * k * cell_size, and cell i of it is
 * bytes [s * cell_size, s * cell_size + clen) of the body's blob on drive layout.drives[i].
 * Within a stripe, payload byte p lives in data cell p / clen at offset p % clen.
 *
 * Writer. One 64-byte aligned buffer of k + m cells (from cm_bufpool's shared pool: taken on the
 * request's loop, given back by the finish on a worker, so a body does not map and fault it anew).
 * Payload is copied once into the data cells (laid out back to back with stride clen, so the
 * payload of a stripe is one contiguous run), the parity cells are computed after them, and every
 * cell is appended to its drive. A drive whose append fails is dropped from the layout for the rest
 * of the body (drives[i] = 0xFF, its partial blob left for the end of the writer to delete) while
 * at least k + 1 cells (all cells when m = 0) still succeed. The writer never deletes on the write
 * path (which runs on an event loop): finish, drop and abort queue the deletes of every blob no
 * layout keeps.
 *
 * Compression. A store opened with compress_level > 0 gives each local writer an ob_zw
 * (ob_zstd.c): the body goes through it and the stripes get its stored stream (frames and their
 * table), or the body itself when its first frame does not compress. Everything below works on
 * the stored stream; ob_read of a compressed layout asks ob_z_read, which reads the stream back
 * through read_stored. A cluster writer compresses too: its ob_zw sends the stream to ob_cw
 * (frames of the cluster layout's stripe payload). On the loop (write_some, and z's event when its
 * frames compress on the workers) z's sink is the window's non-waiting write: a frame the window
 * does not take whole stays in z, which then takes no more than its free slots, and the window
 * activates z's event when it has room (ob_cw_room_event, disarmed before z is freed); finish (a
 * worker) sends the rest, the last frame and the table (docs/compression.md, "Cluster nodes").
 *
 * Reader. A healthy stripe reads only the byte ranges wanted from each data cell, straight into
 * the caller's buffer. If any of those reads fails (drive dropped or offline, blob missing, CRC
 * mismatch, I/O error), the stripe is read whole from the first k readable cells into a scratch
 * stripe, reconstructed, and copied out; that is logged at WARN (repair queue to come).
 * ob_read_cached, an event loop's read, takes only what the page cache holds (bs_read_cached):
 * any miss or failure is CM_AGAIN, and the caller reads it again with ob_read on a worker, which
 * waits on the disk and rebuilds; so a cold read or a hanging drive never holds a loop.
 *
 * Drive health. Every append/sync result of a drive is fed to note_io: a success clears its
 * count of consecutive I/O errors, CM_ERR_IO bumps it, and OB_FAIL_AFTER in a row mark the drive
 * FAILED (logged once at ERROR); a failed fdatasync fails it at once (bs_error: the blob store
 * refuses writes from then on, so no probe can bring it back before a restart reopens it and
 * recovers what is really on disk). ENOSPC only marks it "full" (still used for reads). A failed
 * drive is skipped by placement, reads, deletes and the scrubber. Each drive's probe (every
 * OB_PROBE_MS on its worker thread, or ob_store_probe from tests) checks that a healthy drive's
 * directory is still the one opened (same dev/inode: a vanished or swapped directory fails the
 * drive) and tries a 4 KiB append+sync+delete on a failed drive, bringing it back when that works
 * and its directory is unchanged. A replaced directory needs a restart (the open bs_store still
 * holds the old files).
 *
 * Drive workers. One thread per opened drive owns the waits on that drive that no request needs
 * to answer: deletes (a ring of OB_DELETE_QUEUE blob ids; bs_delete can wait for the drive's
 * running fdatasync round) and the probe. ob_delete_async takes the queue locks of the layout's
 * drives in ascending order and queues on all of them or on none (CM_AGAIN when one is full);
 * ob_delete waits for room instead. ob_store_close lets each thread finish its queue.
 *
 * Threading: drive state is atomics; everything else is read-only after open (bs_store and
 * ec_codec are thread-safe); a writer belongs to one request. Memory: one stripe per writer (and
 * idle ones in the shared pool, CM_BUFPOOL_SHARED_BYTES at most), at most one per read call,
 * OB_DELETE_QUEUE * 16 bytes per drive.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "cm_bufpool.h"
#include "cm_log.h"
#include "cm_util.h"
#include "ec.h"
#include "ob_int.h"
#include "pl.h"

#define MOD "obj"
#define OB_FAIL_AFTER 3 /* consecutive I/O errors that mark a drive failed */
#define OB_PROBE_MS 30000

struct ob_store {
    int ndrives, k, m;
    uint32_t cell_size;
    uint16_t node;        /* this store's node in the cluster layout (0 on a single node) */
    uint64_t epoch;       /* the layout epoch new bodies are placed under */
    bs_store **drives;    /* NULL when the drive could not be opened */
    uint8_t *online;      /* opened at start (never changes afterwards) */
    atomic_uchar *failed; /* marked failed at run time (see note_io / ob_store_probe) */
    atomic_uchar *full;   /* the last append or sync ran out of space */
    atomic_int *errs;     /* consecutive I/O errors */
    struct stat *ident;   /* dev/inode of each drive directory at open */
    char **dirs;
    struct ob_drive_worker *workers; /* one per drive opened: deletes and probes */
    ec_codec *codec;
    ob_leases *leases;   /* blobs being read (ob_lease.c) */
    ob_cluster *cluster; /* cluster mode (ob_cluster.c); NULL on a single node */
    int zlevel;          /* compression of new local bodies (0 = off) */
    atomic_uint_fast64_t z_bodies, z_logical, z_stored, z_skipped; /* ob_store_zstats */
    atomic_uint_fast64_t reads_cached, reads_uncached;             /* ob_store_read_counts */
};

/*
 * A drive's background thread: deletes queued by ob_delete / ob_delete_async (a bounded ring of
 * blob ids), and the drive's periodic probe. Only this thread waits on the drive for them.
 */
struct ob_drive_worker {
    ob_store *st;
    int d;
    pthread_mutex_t mu;
    pthread_cond_t work; /* an id was queued, or stop */
    pthread_cond_t room; /* an id was taken */
    bs_id q[OB_DELETE_QUEUE];
    size_t head, n;
    uint64_t pushed, done; /* deletes queued / finished since open (ob_store_drain) */
    int stop;
    int started;
    pthread_t thread;
};

struct ob_writer {
    ob_store *st;
    ob_cw *cw; /* cluster mode: the body goes across the nodes (ob_cluster_write.c) */
    bs_id id;
    uint8_t drives[MD_MAX_CELLS]; /* cells still stored (PL_NONE once dropped) */
    uint8_t placed[MD_MAX_CELLS]; /* the drives first chosen: where blobs may have to go */
    uint8_t *stripe;              /* (k + m) * cell_size bytes, 64-aligned */
    size_t fill;                  /* payload bytes in the current stripe */
    uint64_t size;                /* payload bytes accepted so far */
    uint64_t cell_off;            /* blob offset of the next cell, the same on every drive */
    cm_err failed;                /* sticky: once a stripe could not be stored, the body is lost */
    ob_zw *z; /* compressing (ob_zstd.c): the stripes get its stored stream; NULL = as given */
    /* ob_writer_on_room: an event of the writer's on the caller's loop, made by the first call and
     * freed with the writer (so a notice never outlives it, run or not) */
    struct event *room;
    void (*room_fn)(void *arg);
    void *room_arg;
};

static cm_err drive_worker_start(ob_store *st, int d);
static void drive_worker_stop(struct ob_drive_worker *w);

int ob_min_cells(int k, int m)
{
    return m > 0 ? k + 1 : k;
}

uint32_t ob_last_cell_len(uint64_t rest, int k)
{
    uint64_t per = (rest + (uint64_t)k - 1) / (uint64_t)k;
    return (uint32_t)((per + 63) & ~(uint64_t)63);
}

/* ---- store ---- */

static cm_err check_options(const ob_store_options *o, int ndrives)
{
    if (o->k < 1 || o->m < 0 || o->k + o->m > MD_MAX_CELLS || o->k + o->m > EC_MAX_CELLS)
        return CM_ERR_INVAL;
    if (o->cell_size == 0 || o->cell_size % 64 != 0)
        return CM_ERR_INVAL;
    if (ndrives < o->k + o->m || ndrives >= PL_NONE)
        return CM_ERR_INVAL;
    return CM_OK;
}

cm_err ob_store_open(const char *const *dirs, int ndrives, const ob_store_options *opt,
                     ob_store **out)
{
    ob_store_options o = {4, 2, 256 * 1024, NULL, 0, 0, 0};
    if (opt)
        o = *opt;
    if (o.k == 0 && o.m == 0) { /* zeroed options mean the defaults */
        o.k = 4;
        o.m = 2;
    }
    if (o.cell_size == 0)
        o.cell_size = 256 * 1024;
    cm_err e = check_options(&o, ndrives);
    if (e != CM_OK)
        return e;
    ob_store *st = calloc(1, sizeof(*st));
    if (!st)
        return CM_ERR_NOMEM;
    st->ndrives = ndrives;
    st->k = o.k;
    st->m = o.m;
    st->cell_size = o.cell_size;
    st->node = o.node;
    st->epoch = o.epoch;
    st->zlevel = o.compress_level;
    st->drives = calloc((size_t)ndrives, sizeof(*st->drives));
    st->online = calloc((size_t)ndrives, 1);
    st->failed = calloc((size_t)ndrives, sizeof(*st->failed));
    st->full = calloc((size_t)ndrives, sizeof(*st->full));
    st->errs = calloc((size_t)ndrives, sizeof(*st->errs));
    st->ident = calloc((size_t)ndrives, sizeof(*st->ident));
    st->dirs = calloc((size_t)ndrives, sizeof(*st->dirs));
    st->workers = calloc((size_t)ndrives, sizeof(*st->workers));
    int ok = st->drives && st->online && st->failed && st->full && st->errs && st->ident &&
             st->dirs && st->workers;
    for (int i = 0; ok && i < ndrives; i++)
        ok = (st->dirs[i] = strdup(dirs[i])) != NULL;
    e = ok ? ob_leases_new(&st->leases) : CM_ERR_NOMEM;
    if (e == CM_OK)
        e = ec_new(o.k, o.m, &st->codec);
    bs_options bo = {.io = o.io}; /* designated: bs_options grows (compaction knobs) */
    for (int i = 0; e == CM_OK && i < ndrives; i++) {
        cm_err de = bs_open(dirs[i], &bo, &st->drives[i]);
        if (de != CM_OK)
            CM_ERROR(MOD, "drive %d (%s) offline: %s", i, dirs[i], cm_err_str(de));
        st->online[i] = de == CM_OK && stat(dirs[i], &st->ident[i]) == 0;
    }
    if (e == CM_OK && ob_store_drives_online(st) < o.k + 1)
        e = CM_ERR_UNAVAILABLE;
    for (int i = 0; e == CM_OK && i < ndrives; i++)
        if (st->online[i])
            e = drive_worker_start(st, i);
    if (e != CM_OK) {
        ob_store_close(st);
        return e;
    }
    *out = st;
    return CM_OK;
}

void ob_store_close(ob_store *st)
{
    if (!st)
        return;
    if (st->leases && st->workers)
        ob_lease_delete_leftovers(
            st);                  /* on the drive threads (or the cluster loop) still running */
    ob_cluster_free(st->cluster); /* after its calls in flight, before the drives close */
    st->cluster = NULL;
    for (int i = 0; st->workers && i < st->ndrives; i++)
        drive_worker_stop(&st->workers[i]); /* after their queued deletes */
    for (int i = 0; st->drives && i < st->ndrives; i++)
        bs_close(st->drives[i]);
    for (int i = 0; st->dirs && i < st->ndrives; i++)
        free(st->dirs[i]);
    free(st->dirs);
    free(st->drives);
    free(st->online);
    free(st->failed);
    free(st->full);
    free(st->errs);
    free(st->ident);
    free(st->workers);
    ec_free(st->codec);
    ob_leases_free(st->leases);
    free(st);
}

/* Opened and not failed since: usable for reads and new writes. */
static int usable(const ob_store *st, int d)
{
    return st->online[d] && !atomic_load(&st->failed[d]);
}

int ob_store_drives_online(const ob_store *st)
{
    int n = 0;
    for (int i = 0; i < st->ndrives; i++)
        n += usable(st, i);
    return n;
}

size_t ob_store_stripe_bytes(const ob_store *st)
{
    return (size_t)st->k * st->cell_size;
}

/* The open drive for a layout slot, or NULL. */
static bs_store *slot_drive(const ob_store *st, uint8_t d)
{
    if (d == PL_NONE || d >= st->ndrives || !usable(st, d))
        return NULL;
    return st->drives[d];
}

int ob_cell_is_local(const ob_store *st, const md_layout *lay, int i)
{
    if (st->cluster && lay->epoch != 0)
        return ob_cluster_local_drive(st->cluster, lay, i) >= 0;
    return lay->nodes[i] == st->node;
}

bs_store *ob_cell_drive(const ob_store *st, const md_layout *lay, int i)
{
    if (st->cluster && lay->epoch != 0) { /* the layout's node and drive indices: resolve them */
        int d = ob_cluster_local_drive(st->cluster, lay, i);
        return d >= 0 ? slot_drive(st, (uint8_t)d) : NULL;
    }
    return lay->nodes[i] == st->node ? slot_drive(st, lay->drives[i]) : NULL;
}

/* ---- drive health ---- */

static void mark_failed(ob_store *st, int d, const char *why)
{
    if (atomic_exchange(&st->failed[d], 1) == 0)
        CM_ERROR(MOD,
                 "drive %d (%s) FAILED: %s; no new writes go to it, reads use the others, "
                 "probed every %d s",
                 d, st->dirs[d], why, OB_PROBE_MS / 1000);
}

/* Account one append/sync result of drive d. */
static void note_io(ob_store *st, uint8_t d, cm_err e)
{
    if (d == PL_NONE || d >= st->ndrives)
        return;
    atomic_store(&st->full[d], e == CM_ERR_NOSPC);
    if (e == CM_ERR_IO && st->drives[d] && bs_error(st->drives[d]) != CM_OK) {
        mark_failed(st, d, "fdatasync failed (the store refuses writes until a restart)");
        return;
    }
    if (e != CM_ERR_IO) {
        if (e == CM_OK)
            atomic_store(&st->errs[d], 0);
        return;
    }
    if (atomic_fetch_add(&st->errs[d], 1) + 1 >= OB_FAIL_AFTER)
        mark_failed(st, d, "repeated I/O errors");
}

/* Is drive d's directory still the one opened (not removed, not swapped for another)? */
static int same_dir(const ob_store *st, int d)
{
    struct stat now;
    return stat(st->dirs[d], &now) == 0 && S_ISDIR(now.st_mode) &&
           now.st_dev == st->ident[d].st_dev && now.st_ino == st->ident[d].st_ino;
}

/* A small append + sync + delete of a fresh blob on drive d. */
static cm_err probe_write(bs_store *bs)
{
    uint8_t buf[4096];
    bs_id id;
    memset(buf, 0xA5, sizeof(buf));
    cm_err e = bs_id_new(&id);
    if (e == CM_OK)
        e = bs_append(bs, &id, 0, buf, sizeof(buf));
    if (e == CM_OK)
        e = bs_sync(bs);
    bs_delete(bs, &id);
    return e;
}

/* One drive's probe: see ob_store_probe. */
static void probe_drive(ob_store *st, int d)
{
    if (!atomic_load(&st->failed[d])) {
        if (!same_dir(st, d))
            mark_failed(st, d, "directory vanished or replaced (restart to adopt a new one)");
    } else if (same_dir(st, d)) {
        cm_err e = probe_write(st->drives[d]);
        if (e == CM_OK) {
            atomic_store(&st->errs[d], 0);
            atomic_store(&st->failed[d], 0);
            CM_INFO(MOD, "drive %d (%s) passed its probe: back online", d, st->dirs[d]);
        } else {
            CM_DEBUG(MOD, "drive %d still failing its probe: %s", d, cm_err_str(e));
        }
    }
}

int ob_store_probe(ob_store *st)
{
    int nfailed = 0;
    for (int d = 0; d < st->ndrives; d++) {
        if (!st->online[d])
            continue;
        probe_drive(st, d);
        nfailed += atomic_load(&st->failed[d]) != 0;
    }
    return nfailed;
}

/* ---- drive workers: background deletes and probes ---- */

static void deadline_after(struct timespec *ts, long long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *drive_worker_main(void *arg)
{
    struct ob_drive_worker *w = arg;
    long long next_probe = cm_monotonic_ms() + OB_PROBE_MS;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (w->n > 0) {
            bs_id id = w->q[w->head];
            w->head = (w->head + 1) % OB_DELETE_QUEUE;
            w->n--;
            pthread_cond_broadcast(&w->room);
            pthread_mutex_unlock(&w->mu);
            /* A drive failed since the delete was queued is skipped like ob_delete always did. */
            bs_store *bs = slot_drive(w->st, (uint8_t)w->d);
            if (bs && bs_delete(bs, &id) != CM_OK)
                CM_WARN(MOD, "delete of a cell on drive %d failed", w->d);
            pthread_mutex_lock(&w->mu);
            w->done++;
            pthread_cond_broadcast(&w->room);
            continue;
        }
        if (w->stop)
            break;
        if (cm_monotonic_ms() >= next_probe) {
            pthread_mutex_unlock(&w->mu);
            probe_drive(w->st, w->d);
            next_probe = cm_monotonic_ms() + OB_PROBE_MS;
            pthread_mutex_lock(&w->mu);
            continue;
        }
        struct timespec ts;
        deadline_after(&ts, next_probe - cm_monotonic_ms());
        pthread_cond_timedwait(&w->work, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static cm_err drive_worker_start(ob_store *st, int d)
{
    struct ob_drive_worker *w = &st->workers[d];
    pthread_condattr_t ca;
    w->st = st;
    w->d = d;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&w->room, NULL);
    w->started = pthread_create(&w->thread, NULL, drive_worker_main, w) == 0;
    return w->started ? CM_OK : CM_ERR_NOMEM;
}

/* Let the drive's queued deletes finish, then stop its thread. */
static void drive_worker_stop(struct ob_drive_worker *w)
{
    if (!w->started)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->work);
    pthread_cond_broadcast(&w->room);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->room);
    w->started = 0;
}

/* Queue id on drive d's worker; the caller holds its mutex and has checked there is room. */
static void queue_push(struct ob_drive_worker *w, const bs_id *id)
{
    w->q[(w->head + w->n) % OB_DELETE_QUEUE] = *id;
    w->n++;
    w->pushed++;
    pthread_cond_signal(&w->work);
}

/* The distinct usable drives of a layout, ascending (the order their queue locks are taken). */
static int layout_drives(const ob_store *st, const md_layout *lay, uint8_t *out)
{
    int n = 0;
    for (int i = 0; i < lay->k + lay->m && i < MD_MAX_CELLS; i++) {
        uint8_t d = lay->drives[i];
        if (!ob_cell_drive(st, lay, i) || !st->workers[d].started)
            continue;
        int j = n;
        while (j > 0 && out[j - 1] > d)
            j--;
        if (j > 0 && out[j - 1] == d)
            continue;
        memmove(out + j + 1, out + j, (size_t)(n - j));
        out[j] = d;
        n++;
    }
    return n;
}

cm_err ob_delete_async(ob_store *st, const md_layout *layout)
{
    if (st->cluster && layout->epoch != 0)
        return ob_cluster_delete(st->cluster, layout) == CM_ERR_NOMEM ? CM_AGAIN : CM_OK;
    uint8_t ds[MD_MAX_CELLS];
    bs_id id;
    int n = layout_drives(st, layout, ds), full = 0;
    memcpy(id.b, layout->blob, sizeof(id.b));
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&st->workers[ds[i]].mu);
        full |= st->workers[ds[i]].n == OB_DELETE_QUEUE;
    }
    for (int i = n - 1; i >= 0; i--) {
        if (!full)
            queue_push(&st->workers[ds[i]], &id);
        pthread_mutex_unlock(&st->workers[ds[i]].mu);
    }
    return full ? CM_AGAIN : CM_OK;
}

void ob_delete(ob_store *st, const md_layout *layout)
{
    if (st->cluster && layout->epoch != 0) { /* queued on the loop, never waited for */
        ob_cluster_delete(st->cluster, layout);
        return;
    }
    uint8_t ds[MD_MAX_CELLS];
    bs_id id;
    int n = layout_drives(st, layout, ds);
    memcpy(id.b, layout->blob, sizeof(id.b));
    for (int i = 0; i < n; i++) {
        struct ob_drive_worker *w = &st->workers[ds[i]];
        pthread_mutex_lock(&w->mu);
        while (w->n == OB_DELETE_QUEUE && !w->stop)
            pthread_cond_wait(&w->room, &w->mu); /* the drive's pace: backpressure */
        if (!w->stop)
            queue_push(w, &id);
        pthread_mutex_unlock(&w->mu);
    }
}

ob_drive_state ob_store_drive_state(const ob_store *st, int d)
{
    if (d < 0 || d >= st->ndrives || !st->online[d])
        return OB_DRIVE_OFFLINE;
    if (atomic_load(&st->failed[d]))
        return OB_DRIVE_FAILED;
    return atomic_load(&st->full[d]) ? OB_DRIVE_FULL : OB_DRIVE_OK;
}

const char *ob_drive_state_name(ob_drive_state s)
{
    static const char *const names[] = {"ok", "full", "failed", "offline"};
    return (unsigned)s < 4 ? names[s] : "unknown";
}

void ob_store_drain(ob_store *st)
{
    for (int d = 0; d < st->ndrives; d++) {
        struct ob_drive_worker *w = &st->workers[d];
        if (!w->started)
            continue;
        pthread_mutex_lock(&w->mu);
        uint64_t target = w->pushed;
        while (w->done < target && !w->stop)
            pthread_cond_wait(&w->room, &w->mu);
        pthread_mutex_unlock(&w->mu);
    }
}

/* ---- writer ---- */

/* Bytes of a local writer's stripe buffer: k + m whole cells. */
static size_t stripe_alloc(const ob_store *st)
{
    return (size_t)(st->k + st->m) * st->cell_size;
}

/* Cluster mode: the writer is a shell around the body written across the nodes. */
static cm_err cluster_writer_new(ob_store *st, ob_writer **out)
{
    ob_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return CM_ERR_NOMEM;
    w->st = st;
    cm_err e = ob_cw_new(st->cluster, &w->cw);
    if (e == CM_OK && st->zlevel > 0) /* frames of one stripe's payload: a GET piece each */
        e = ob_zw_new(st->zlevel,
                      (uint32_t)CM_MIN(ob_cw_stripe_bytes(w->cw), (size_t)OB_Z_FRAME_MAX), &w->z);
    if (e != CM_OK) {
        if (w->cw)
            ob_cw_drop(w->cw);
        free(w);
        return e;
    }
    *out = w;
    return CM_OK;
}

/* A cluster writer's sinks for its compressed stream: waiting (a worker), and not waiting (the
 * loop: what the window does not take stays in z, CM_AGAIN; an offloading z has its event
 * activated once the window has room). */
static cm_err cw_sink(void *arg, const void *data, size_t len)
{
    return ob_cw_write(((ob_writer *)arg)->cw, data, len);
}

static cm_err cw_sink_some(void *arg, const void *data, size_t len, size_t *taken)
{
    ob_writer *w = arg;
    cm_err e = ob_cw_write_some(w->cw, data, len, taken);
    if (e == CM_AGAIN && ob_zw_offloads(w->z))
        ob_cw_room_event(w->cw, ob_zw_event(w->z));
    return e;
}

/* The first frame did not compress and z holds nothing more: the rest goes as it comes. */
static void z_settle(ob_writer *w)
{
    if (w->z && ob_zw_raw(w->z)) {
        atomic_fetch_add(&w->st->z_skipped, 1);
        if (w->cw && ob_zw_offloads(w->z)) /* first: the window no longer wakes z's event */
            ob_cw_room_event(w->cw, NULL);
        ob_zw_free(w->z);
        w->z = NULL;
    }
}

/* A cluster writer's ob_writer_write_some: through the compressing writer while it compresses
 * (its frames on the workers when it offloads), the body as it comes once its first frame did not
 * compress. */
static cm_err cw_write_some(ob_writer *w, const void *data, size_t len, size_t *taken)
{
    cm_err e = CM_OK;
    *taken = 0;
    if (w->z) {
        ob_zw_sink_some(w->z, cw_sink_some, w);
        e = ob_zw_write_some(w->z, data, len, taken);
        z_settle(w);
    }
    if (w->z || e != CM_OK || *taken == len)
        return e;
    size_t more = 0;
    e = ob_cw_write_some(w->cw, (const uint8_t *)data + *taken, len - *taken, &more);
    *taken += more;
    return e;
}

void ob_writer_track_intent(ob_writer *w, md_store *md, uint64_t hlc)
{
    if (w->cw) /* a single node's writer places every cell itself: no handoff */
        ob_cw_track_intent(w->cw, md, hlc);
}

void ob_writer_plan(const ob_writer *w, md_layout *out)
{
    if (w->cw) {
        ob_cw_plan(w->cw, out);
        return;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out->blob, w->id.b, sizeof(out->blob));
    out->cell_size = w->st->cell_size;
    out->k = (uint8_t)w->st->k;
    out->m = (uint8_t)w->st->m;
    memcpy(out->drives, w->placed, sizeof(out->drives));
}

cm_err ob_writer_new(ob_store *st, ob_writer **out)
{
    if (st->cluster)
        return cluster_writer_new(st, out);
    int ncells = st->k + st->m, n = 0;
    uint8_t use[PL_NONE];
    for (int d = 0; d < st->ndrives; d++)
        use[d] = (uint8_t)usable(st, d);
    ob_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return CM_ERR_NOMEM;
    w->st = st;
    memset(w->drives, PL_NONE, sizeof(w->drives));
    cm_err e = bs_id_new(&w->id);
    if (e == CM_OK) {
        e = pl_choose(w->id.b, st->ndrives, use, ncells, w->drives, &n);
        if (e == CM_ERR_UNAVAILABLE && n >= ob_min_cells(st->k, st->m))
            e = CM_OK; /* fewer drives than cells, but enough to survive one more loss */
    }
    memcpy(w->placed, w->drives, sizeof(w->placed));
    /* from the shared pool: taken here on a loop, given back by a worker's finish (writer_free) */
    if (e == CM_OK && !(w->stripe = cm_bufpool_take_shared(stripe_alloc(st))))
        e = CM_ERR_NOMEM;
    if (e == CM_OK && st->zlevel > 0) /* frames of one stripe's payload: a GET piece each */
        e = ob_zw_new(st->zlevel,
                      (uint32_t)CM_MIN(ob_store_stripe_bytes(st), (size_t)OB_Z_FRAME_MAX), &w->z);
    if (e != CM_OK) {
        cm_bufpool_put_shared(w->stripe, stripe_alloc(st));
        free(w);
        return e;
    }
    *out = w;
    return CM_OK;
}

/* Where the writer's blobs are: the drives in use (all placed ones when `placed`), as a layout. */
static void writer_layout(const ob_writer *w, int placed, md_layout *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->blob, w->id.b, sizeof(out->blob));
    out->size = w->size;
    out->cell_size = w->st->cell_size;
    out->k = (uint8_t)w->st->k;
    out->m = (uint8_t)w->st->m;
    memcpy(out->drives, placed ? w->placed : w->drives, sizeof(out->drives));
    out->epoch = w->st->epoch;
    for (int i = 0; i < w->st->k + w->st->m; i++)
        out->nodes[i] = w->st->node;
}

/*
 * A drive leaves the body: its partial blob is an orphan, deleted (with the body's other
 * leftovers) by whoever ends the writer: finish, drop or abort, never here on the write path.
 */
static void drop_cell(ob_writer *w, int i, cm_err why)
{
    CM_WARN(MOD, "drive %u dropped from a body being written (cell %d): %s", w->drives[i], i,
            cm_err_str(why));
    w->drives[i] = PL_NONE;
}

static int live_cells(const ob_writer *w)
{
    int n = 0;
    for (int i = 0; i < w->st->k + w->st->m; i++)
        n += w->drives[i] != PL_NONE;
    return n;
}

/* Encode the current stripe with cells of clen bytes and append every cell to its drive. */
static cm_err flush_stripe(ob_writer *w, uint32_t clen)
{
    ob_store *st = w->st;
    int k = st->k, m = st->m, nospc = 0;
    uint8_t *data[EC_MAX_CELLS], *parity[EC_MAX_CELLS];
    memset(w->stripe + w->fill, 0, (size_t)k * clen - w->fill); /* pad the last stripe */
    for (int i = 0; i < k; i++)
        data[i] = w->stripe + (size_t)i * clen;
    for (int j = 0; j < m; j++)
        parity[j] = w->stripe + (size_t)k * st->cell_size + (size_t)j * clen;
    ec_encode(st->codec, clen, data, parity);
    for (int i = 0; i < k + m; i++) {
        bs_store *bs = slot_drive(st, w->drives[i]);
        cm_err e = bs ? bs_append(bs, &w->id, w->cell_off, i < k ? data[i] : parity[i - k], clen)
                      : CM_ERR_UNAVAILABLE;
        if (bs)
            note_io(st, w->drives[i], e);
        if (e != CM_OK && w->drives[i] != PL_NONE) {
            nospc |= e == CM_ERR_NOSPC;
            drop_cell(w, i, e);
        }
    }
    w->cell_off += clen;
    w->fill = 0;
    if (live_cells(w) < ob_min_cells(k, m)) {
        w->failed = nospc ? CM_ERR_NOSPC : CM_ERR_UNAVAILABLE;
        CM_ERROR(MOD, "body lost: only %d cells of a stripe stored", live_cells(w));
    }
    return w->failed;
}

/* Stored bytes (the body, or the compressed stream) into the stripes. */
static cm_err stripe_write(void *arg, const void *data, size_t len)
{
    ob_writer *w = arg;
    size_t stripe = ob_store_stripe_bytes(w->st);
    const uint8_t *p = data;
    while (w->failed == CM_OK && len > 0) {
        size_t n = CM_MIN(len, stripe - w->fill);
        /* The one payload copy of the write path: into the aligned stripe the encoder reads. */
        memcpy(w->stripe + w->fill, p, n);
        w->fill += n;
        w->size += n;
        p += n;
        len -= n;
        if (w->fill == stripe)
            flush_stripe(w, w->st->cell_size);
    }
    return w->failed;
}

cm_err ob_writer_write(ob_writer *w, const void *data, size_t len)
{
    if (!w->z)
        return w->cw ? ob_cw_write(w->cw, data, len) : stripe_write(w, data, len);
    cm_err e = ob_zw_write(w->z, data, len, w->cw ? cw_sink : stripe_write, w);
    z_settle(w);
    return e;
}

cm_err ob_writer_offload(ob_writer *w, struct event_base *base, ob_runner run, void *ctx)
{
    if (!w->z)
        return CM_OK;
    cm_err e = ob_zw_offload(w->z, base, run, ctx, w->cw ? cw_sink : stripe_write, w);
    if (e == CM_OK && w->cw) /* on the loop its frames go to the window as far as it takes them */
        ob_zw_sink_some(w->z, cw_sink_some, w);
    return e;
}

/* fdatasync every drive holding a cell; a drive that cannot sync is dropped like a failed one. */
static void sync_cells(ob_writer *w)
{
    for (int i = 0; i < w->st->k + w->st->m; i++) {
        bs_store *bs = slot_drive(w->st, w->drives[i]);
        cm_err e = bs ? bs_sync(bs) : CM_OK;
        if (bs)
            note_io(w->st, w->drives[i], e);
        if (e != CM_OK)
            drop_cell(w, i, e);
    }
    if (live_cells(w) < ob_min_cells(w->st->k, w->st->m))
        w->failed = CM_ERR_UNAVAILABLE;
}

cm_err ob_writer_write_some(ob_writer *w, const void *data, size_t len, size_t *taken)
{
    if (w->cw)
        return cw_write_some(w, data, len, taken);
    if (w->z && ob_zw_offloads(w->z)) { /* frames compress on workers: take what fits */
        cm_err e = ob_zw_write_some(w->z, data, len, taken);
        z_settle(w);
        return e;
    }
    cm_err e = ob_writer_write(w, data, len); /* local drives: never waits on another node */
    *taken = e == CM_OK ? len : 0;
    return e;
}

static void room_fire(evutil_socket_t fd, short what, void *arg)
{
    ob_writer *w = arg;
    (void)fd;
    (void)what;
    w->room_fn(w->room_arg); /* it may drop w */
}

/*
 * The notice is the writer's own event rather than a callback posted with its argument: a posted
 * one that the loop never ran (the loop broke out at shutdown, after the grace period dropped the
 * writer) left its argument behind when the base was freed. The window activates the event under
 * its lock and forgets it on a drop, so freeing it with the writer, on base's thread, cancels it.
 */
cm_err ob_writer_on_room(ob_writer *w, struct event_base *base, void (*fn)(void *arg), void *arg)
{
    if (w->z && ob_zw_offloads(w->z)) /* first: its frames wait for the window themselves */
        return ob_zw_on_room(w->z, fn, arg);
    if (w->room && event_get_base(w->room) != base)
        return CM_ERR_INVAL;
    if (!w->room && !(w->room = event_new(base, -1, 0, room_fire, w)))
        return CM_ERR_NOMEM;
    event_del(w->room); /* a notice not run yet is replaced by this one */
    w->room_fn = fn;
    w->room_arg = arg;
    if (w->cw)
        ob_cw_room_event(w->cw, w->room);
    else
        event_active(w->room, EV_TIMEOUT, 1); /* a single-node writer always has room */
    return CM_OK;
}

/* After the window let go of the notice (ob_cw_drop, ob_cw_finish): nothing activates it now. */
static void writer_free(ob_writer *w)
{
    if (w->room)
        event_free(w->room);
    cm_bufpool_put_shared(w->stripe, stripe_alloc(w->st));
    free(w);
}

/* A cluster writer's finish (a worker): the pending frame, the last frame and the table, then
 * the body's layout with the compression fields. */
static cm_err cw_finish(ob_writer *w, md_layout *out)
{
    md_layout zl = {0};
    uint64_t logical = 0, stored = 0;
    ob_store *st = w->st;
    cm_err e = CM_OK;
    if (w->z) { /* the frames in z (one may be half sent), the last frame, the table */
        e = ob_zw_finish(w->z, cw_sink, w, &zl);
        ob_cw_room_event(w->cw, NULL); /* after: the loop's step that armed it has ended */
        ob_zw_counts(w->z, &logical, &stored);
        if (e == CM_OK && zl.zalg == MD_Z_NONE && logical > 0)
            atomic_fetch_add(&st->z_skipped, 1); /* a body that did not compress */
    }
    ob_zw_free(w->z);
    if (e != CM_OK) {
        ob_cw_drop(w->cw);
        writer_free(w);
        return e;
    }
    e = ob_cw_finish(w->cw, out);
    writer_free(w);
    if (e == CM_OK && zl.zalg != MD_Z_NONE) {
        out->zalg = zl.zalg;
        out->zframe = zl.zframe;
        out->zsize = zl.zsize;
        out->ztab = zl.ztab;
        atomic_fetch_add(&st->z_bodies, 1);
        atomic_fetch_add(&st->z_logical, logical);
        atomic_fetch_add(&st->z_stored, stored);
    }
    return e;
}

cm_err ob_writer_finish(ob_writer *w, md_layout *out)
{
    if (w->cw)
        return cw_finish(w, out);
    md_layout zl = {0};
    uint64_t logical = 0, stored = 0;
    if (w->z) { /* first: an offloading z takes the stripes back from its loop (ob_zw_finish) */
        cm_err ze = ob_zw_finish(w->z, stripe_write, w, &zl);
        if (ze != CM_OK && w->failed == CM_OK)
            w->failed = ze;
        ob_zw_counts(w->z, &logical, &stored);
        if (w->failed == CM_OK && zl.zalg == MD_Z_NONE && logical > 0)
            atomic_fetch_add(&w->st->z_skipped, 1); /* a short body that did not compress */
    }
    ob_zw_free(w->z);
    w->z = NULL;
    if (w->failed == CM_OK && w->fill > 0)
        flush_stripe(w, ob_last_cell_len(w->fill, w->st->k));
    if (w->failed == CM_OK && w->cell_off > 0)
        sync_cells(w);
    cm_err e = w->failed;
    md_layout junk;
    writer_layout(w, 1, &junk);
    if (e == CM_OK) {
        writer_layout(w, 0, out);
        out->zalg = zl.zalg;
        out->zframe = zl.zframe;
        out->zsize = zl.zsize;
        out->ztab = zl.ztab;
        for (int i = 0; i < MD_MAX_CELLS; i++) /* keep only the dropped cells as junk */
            if (junk.drives[i] == out->drives[i])
                junk.drives[i] = PL_NONE;
        if (zl.zalg != MD_Z_NONE) {
            atomic_fetch_add(&w->st->z_bodies, 1);
            atomic_fetch_add(&w->st->z_logical, logical);
            atomic_fetch_add(&w->st->z_stored, stored);
        }
    }
    if (w->cell_off > 0)
        ob_delete(w->st, &junk);
    writer_free(w);
    return e;
}

int ob_writer_drop(ob_writer *w, md_layout *out)
{
    if (!w)
        return 0;
    if (w->cw) { /* its loop deletes what it wrote once its calls end: nothing for the caller */
        ob_cw_drop(w->cw);
        ob_zw_free(w->z);
        writer_free(w);
        return 0;
    }
    ob_zw_free(w->z); /* first: no frame reaches the stripes after this */
    int wrote = w->cell_off > 0;
    if (wrote)
        writer_layout(w, 1, out);
    writer_free(w);
    return wrote;
}

void ob_writer_abort(ob_writer *w)
{
    md_layout lay;
    ob_store *st = w ? w->st : NULL;
    if (ob_writer_drop(w, &lay))
        ob_delete(st, &lay);
}

/* ---- reader ---- */

typedef struct {
    ob_store *st;
    const md_layout *lay;
    const ec_codec *codec;
    bs_id id;
    uint8_t *scratch; /* (k + m) * cell_size, allocated on the first degraded stripe */
    int cached;       /* ob_read_cached: bs_read_cached, and CM_AGAIN instead of rebuilding */
} read_ctx;

/* Payload bytes [a, b) of a stripe whose cells are clen long, from the data cells only. */
static cm_err read_healthy(read_ctx *c, uint64_t cell_off, uint32_t clen, uint64_t a, uint64_t b,
                           uint8_t *dst)
{
    for (uint64_t i = a / clen; i <= (b - 1) / clen; i++) {
        uint64_t ca = CM_MAX(a, i * clen) - i * clen, cb = CM_MIN(b, (i + 1) * clen) - i * clen;
        bs_store *bs = ob_cell_drive(c->st, c->lay, (int)i);
        if (!bs)
            return CM_ERR_UNAVAILABLE;
        uint8_t *to = dst + (i * clen + ca - a);
        cm_err e = c->cached ? bs_read_cached(bs, &c->id, cell_off + ca, to, (size_t)(cb - ca))
                             : bs_read(bs, &c->id, cell_off + ca, to, (size_t)(cb - ca));
        if (e != CM_OK)
            return e;
    }
    return CM_OK;
}

/* Read the first k readable whole cells, rebuild the rest, copy payload bytes [a, b) out. */
static cm_err read_degraded(read_ctx *c, uint64_t cell_off, uint32_t clen, uint64_t a, uint64_t b,
                            uint8_t *dst)
{
    int k = c->lay->k, n = c->lay->k + c->lay->m, got = 0, corrupt = 0;
    size_t cap = (size_t)n * c->lay->cell_size;
    if (!c->scratch && posix_memalign((void **)&c->scratch, 64, cap) != 0) {
        c->scratch = NULL;
        return CM_ERR_NOMEM;
    }
    uint8_t *cells[EC_MAX_CELLS];
    int present[EC_MAX_CELLS] = {0};
    for (int i = 0; i < n; i++) {
        cells[i] = c->scratch + (size_t)i * clen; /* data cells back to back: payload contiguous */
        bs_store *bs = got < k ? ob_cell_drive(c->st, c->lay, i) : NULL;
        cm_err e = bs ? bs_read(bs, &c->id, cell_off, cells[i], clen) : CM_ERR_UNAVAILABLE;
        corrupt |= e == CM_ERR_CORRUPT;
        present[i] = e == CM_OK;
        got += present[i];
    }
    if (got < k)
        return corrupt ? CM_ERR_CORRUPT : CM_ERR_UNAVAILABLE;
    cm_err e = ec_reconstruct(c->codec, clen, cells, present);
    if (e == CM_OK)
        memcpy(dst, c->scratch + a, (size_t)(b - a));
    return e;
}

static cm_err check_layout(const md_layout *lay)
{
    if (lay->k < 1 || lay->k + lay->m > MD_MAX_CELLS || lay->k + lay->m > EC_MAX_CELLS)
        return CM_ERR_INVAL;
    if (lay->cell_size == 0 || lay->cell_size % 64 != 0)
        return CM_ERR_INVAL;
    return CM_OK;
}

static cm_err read_stripes(read_ctx *c, uint64_t off, uint8_t *buf, size_t len)
{
    const md_layout *lay = c->lay;
    uint64_t sbytes_full = (uint64_t)lay->k * lay->cell_size, pos = off, end = off + len;
    while (pos < end) {
        uint64_t s = pos / sbytes_full, start = s * sbytes_full;
        uint64_t sbytes = CM_MIN(sbytes_full, lay->size - start);
        uint32_t clen = sbytes == sbytes_full ? lay->cell_size : ob_last_cell_len(sbytes, lay->k);
        uint64_t a = pos - start, b = CM_MIN(end, start + sbytes) - start;
        uint64_t cell_off = s * lay->cell_size;
        cm_err e = read_healthy(c, cell_off, clen, a, b, buf + (pos - off));
        if (e != CM_OK && c->cached)
            return CM_AGAIN; /* a worker reads it again, and rebuilds it if need be */
        if (e != CM_OK) {
            char hex[33];
            bs_id_hex(&c->id, hex);
            CM_WARN(MOD, "degraded read of blob %s stripe %llu: %s; reconstructing", hex,
                    (unsigned long long)s, cm_err_str(e));
            e = read_degraded(c, cell_off, clen, a, b, buf + (pos - off));
            if (e != CM_OK) {
                CM_ERROR(MOD, "blob %s stripe %llu unreadable: %s", hex, (unsigned long long)s,
                         cm_err_str(e));
                return e;
            }
        }
        pos = start + b;
    }
    return CM_OK;
}

typedef struct {
    ob_store *st;
    const md_layout *layout;
    int cached;
} stored_src;

/* Bytes of the stored stream (the body itself unless compressed). */
static cm_err read_stored(void *arg, uint64_t off, void *buf, size_t len)
{
    ob_store *st = ((stored_src *)arg)->st;
    const md_layout *layout = ((stored_src *)arg)->layout;
    int cached = ((stored_src *)arg)->cached;
    if (off > layout->size || len > layout->size - off)
        return CM_ERR_RANGE;
    if (len == 0)
        return CM_OK;
    if (st->cluster && layout->epoch != 0)
        return ob_cluster_read(st->cluster, layout, off, buf, len);
    cm_err e = check_layout(layout);
    if (e != CM_OK)
        return e;
    read_ctx c = {st, layout, st->codec, {{0}}, NULL, cached};
    memcpy(c.id.b, layout->blob, sizeof(c.id.b));
    ec_codec *own = NULL;
    if (layout->k != st->k || layout->m != st->m) {
        /* A body written under another profile: build its codec for this call. */
        e = ec_new(layout->k, layout->m, &own);
        c.codec = own;
    }
    if (e == CM_OK)
        e = read_stripes(&c, off, buf, len);
    ec_free(own);
    free(c.scratch);
    return e;
}

cm_err ob_read(ob_store *st, const md_layout *layout, uint64_t off, void *buf, size_t len)
{
    stored_src src = {st, layout, 0};
    if (layout->zalg == MD_Z_NONE)
        return read_stored(&src, off, buf, len);
    return ob_z_read(layout, off, buf, len, read_stored, &src);
}

cm_err ob_read_cached(ob_store *st, const md_layout *layout, uint64_t off, void *buf, size_t len)
{
    if (layout->epoch != 0)
        return CM_AGAIN; /* across nodes: not for a loop */
    stored_src src = {st, layout, 1};
    cm_err e = layout->zalg == MD_Z_NONE ? read_stored(&src, off, buf, len)
                                         : ob_z_read(layout, off, buf, len, read_stored, &src);
    atomic_fetch_add(e == CM_AGAIN ? &st->reads_uncached : &st->reads_cached, 1);
    return e;
}

void ob_store_read_counts(ob_store *st, uint64_t *cached, uint64_t *uncached)
{
    *cached = atomic_load(&st->reads_cached);
    *uncached = atomic_load(&st->reads_uncached);
}

void ob_store_zstats(ob_store *st, ob_zstats *out)
{
    out->bodies = atomic_load(&st->z_bodies);
    out->logical_bytes = atomic_load(&st->z_logical);
    out->stored_bytes = atomic_load(&st->z_stored);
    out->skipped = atomic_load(&st->z_skipped);
}

int ob_commit_failed_may_free(const md_layout *layout, cm_err commit_err)
{
    char hex[33];
    if (commit_err != CM_ERR_UNCERTAIN)
        return 1;
    cm_hex_encode(layout->blob, sizeof(layout->blob), hex);
    CM_WARN(MOD,
            "metadata commit outcome unknown: blob %s kept (cairn fsck reclaims it if no "
            "record names it)",
            hex);
    return 0;
}

/* ---- scrubber accessors ---- */

ob_cluster *ob_store_cluster(ob_store *st)
{
    return st->cluster;
}

void ob_store_set_cluster(ob_store *st, ob_cluster *c)
{
    st->cluster = c;
}

uint32_t ob_store_cell_size(const ob_store *st)
{
    return st->cell_size;
}

ob_leases *ob_store_leases(ob_store *st)
{
    return st->leases;
}

uint16_t ob_store_node(const ob_store *st)
{
    return st->node;
}

void ob_store_geometry(const ob_store *st, int *k, int *m)
{
    *k = st->k;
    *m = st->m;
}

int ob_store_ndrives(const ob_store *st)
{
    return st->ndrives;
}

bs_store *ob_store_drive(ob_store *st, uint8_t d)
{
    return slot_drive(st, d);
}

bs_store *ob_store_blobstore(ob_store *st, int d)
{
    return d >= 0 && d < st->ndrives ? st->drives[d] : NULL;
}

const char *ob_store_drive_dir(const ob_store *st, int d)
{
    return d >= 0 && d < st->ndrives ? st->dirs[d] : NULL;
}

void ob_store_drive_stats(ob_store *st, int d, ob_drive_stats *out)
{
    bs_store *bs = d >= 0 && d < st->ndrives ? slot_drive(st, (uint8_t)d) : NULL;
    bs_stats s;
    memset(out, 0, sizeof(*out));
    out->state = ob_store_drive_state(st, d);
    out->usable = bs != NULL;
    if (!bs)
        return;
    bs_get_stats(bs, &s);
    out->blobs = s.blobs;
    out->live_bytes = s.live_bytes;
    out->disk_bytes = s.disk_bytes;
    out->used_bytes = s.used_bytes;
    out->reclaimable_bytes = s.reclaimable_bytes;
    out->punched_bytes = s.punched_bytes;
    out->corrupt_found = s.corrupt_found;
    out->segments = s.segments;
}

uint64_t ob_layout_cell_blob_len(const md_layout *lay)
{
    uint64_t sbytes = (uint64_t)lay->k * lay->cell_size;
    if (lay->k < 1 || lay->cell_size == 0)
        return 0;
    uint64_t full = lay->size / sbytes, rest = lay->size % sbytes;
    return full * lay->cell_size + (rest ? ob_last_cell_len(rest, lay->k) : 0);
}
