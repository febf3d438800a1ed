/*
 * ob_gc.c - reclaim garbage: bodies no record uses any more, and the cells a repair's layout swap
 * left behind (ob.h, docs/replication.md, docs/chunks.md "Obsolete cells").
 *
 * When a version of a key replaces another, or loses to one, on a replica of the replicated
 * metadata, the bodies only the other version named become durable garbage records in the
 * replica's md_store, stamped with the HLC of the write that made them garbage (md_garbage_*,
 * meta/md_rec.c). They are not freed then, because a GET coordinated by another node may still be
 * streaming them and holds no lease here. ob_gc_run frees those older than a grace period: the
 * body's chunks are deleted on their nodes (through the store's lease table, so a GET on this
 * node still reading one keeps it until it ends), then the garbage records are dropped. Every
 * replica of a partition holds the same garbage and reclaims it; deletes are idempotent, so the
 * repetition costs requests, not correctness. A crash between the delete and the drop only
 * deletes again.
 *
 * The repair pass puts the old places of a healed body's cells here too (ob_repair_pass.c): a
 * record naming that body's blob with only those cells, on the healer's store. The blob is still
 * live, and within the grace period a cell can come back to one of those places (its node down,
 * the cell rebuilt on a handoff drive; the node back, the cell moved home). So an entry whose
 * blob the local record of its key still names is reclaimed cell by cell: every (node, drive)
 * that the local record or the record read through `read` (a quorum read in a cluster) names for
 * the blob is kept; the rest are deleted directly (not through the lease table, whose doomed
 * entry would delete the live body when its reader ends; the grace period is what covers readers
 * of the old layout). When `read` fails, the entry is put off by RETRY_MS (stamped anew) rather
 * than deleted on the local view alone: the local replica may have missed the swap that moved a
 * cell home (after READ_FAILS failed reads a run puts the rest off without reading: each may
 * wait for a timeout). An entry whose blob the local record does not name is a replaced body: its
 * blob never comes back (newer versions dominate it), so one local read is all it costs.
 *
 * A multipart part's record is tombstoned by CompleteMultipartUpload, and the tombstone names the
 * part as the Complete read it when the object keeps the body (rp_upload.c end_one). A repair swap
 * of that part record racing the Complete leaves an entry of the part's key naming the cells the
 * Complete copied into the object; the tombstone names them, so they are kept (a tombstone naming
 * nothing, a deleted key, keeps nothing), on the local record or the one `read` returns (a
 * cluster's read answers tombstones too, for a healer whose replica missed the Complete).
 * Before, the entry freed them: a completed object lost the moved cells gc_grace_s later
 * (test_obj_gc obsolete_after_complete).
 *
 * Blocking: call it from a background thread, never from an event loop.
 */
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "ob_int.h"

#define MOD "ob"
#define GC_BATCH 256
#define RETRY_MS 60000 /* a check that could not read the record is tried again this much later */
#define READ_FAILS 4   /* failed record reads after which a run puts the other checks off */

/* Mark 0xFF every cell of *lay whose (node, drive) rec names for lay's blob; 1 if rec does. A
 * tombstone names parts only when a Complete left it on a part record whose body the object
 * keeps (rp_upload.c end_one): those are the object's cells, so they count as named too. */
static int keep_named(md_layout *lay, const md_object *rec)
{
    int uses = 0;
    for (size_t p = 0; p < rec->nparts; p++) {
        const md_layout *now = &rec->parts[p].layout;
        if (MD_PART_INLINE(&rec->parts[p]) || memcmp(now->blob, lay->blob, 16) != 0)
            continue;
        uses = 1;
        for (int i = 0; i < lay->k + lay->m && i < MD_MAX_CELLS; i++)
            for (int j = 0; lay->drives[i] != 0xFF && j < now->k + now->m && j < MD_MAX_CELLS; j++)
                if (now->drives[j] == lay->drives[i] && now->nodes[j] == lay->nodes[i])
                    lay->drives[i] = 0xFF;
    }
    return uses;
}

int ob_gc_cells(md_store *md, const md_garbage *g, ob_gc_read_fn read, void *read_arg,
                md_layout *out)
{
    md_object rec;
    memset(&rec, 0, sizeof(rec));
    *out = g->layout;
    int live = md_rec_get(md, g->bucket, g->key, &rec) == CM_OK && keep_named(out, &rec);
    md_object_release(&rec);
    if (!live || !read)
        return live;
    memset(&rec, 0, sizeof(rec));
    cm_err e = read(read_arg, g->bucket, g->key, &rec);
    if (e == CM_OK)
        keep_named(out, &rec);
    md_object_release(&rec);
    return e != CM_OK && e != CM_ERR_NOTFOUND ? -1 : 1;
}

/* The caller's read, given up for the rest of a run after READ_FAILS reads failed (each may wait
 * for a timeout: a partition that lost its quorum must not hold the maintenance thread). */
typedef struct {
    ob_gc_read_fn read;
    void *arg;
    int fails;
    cm_err last;
} gc_reader;

static cm_err read_bounded(void *arg, const char *bucket, const char *key, md_object *out)
{
    gc_reader *r = arg;
    if (r->fails >= READ_FAILS)
        return CM_ERR_UNAVAILABLE;
    cm_err e = r->read(r->arg, bucket, key, out);
    if (e != CM_OK && e != CM_ERR_NOTFOUND)
        r->fails++, r->last = e;
    return e;
}

/* Free entry g (1), or put it off (0). */
static int reclaim(ob_store *st, md_store *md, const md_garbage *g, gc_reader *r)
{
    md_layout lay;
    int live = ob_gc_cells(md, g, r->read ? read_bounded : NULL, r, &lay);
    if (live < 0)
        return 0;
    if (live) { /* the cells nobody names, at once: not the lease table's whole blob */
        int left = 0;
        for (int i = 0; i < lay.k + lay.m && i < MD_MAX_CELLS; i++)
            left += lay.drives[i] != 0xFF;
        if (left)
            ob_delete(st, &lay);
        return 1;
    }
    /* The lease table works on records: a one-part record naming the body. */
    md_part part;
    memset(&part, 0, sizeof(part));
    part.size = g->layout.size;
    part.layout = g->layout;
    md_object obj = {.key = g->key, .size = part.size, .parts = &part, .nparts = 1};
    ob_free_object_data(st, &obj);
    return 1;
}

cm_err ob_gc_run(ob_store *st, md_store *md, int64_t now_ms, int64_t grace_ms, size_t max,
                 ob_gc_read_fn read, void *read_arg, uint64_t *freed)
{
    uint64_t before = MD_HLC_MAKE(now_ms > grace_ms ? now_ms - grace_ms : 0, 0);
    size_t done = 0, put_off = 0;
    gc_reader r = {read, read_arg, 0, CM_OK};
    cm_err err = CM_OK;
    while (done < max) {
        md_garbage *g = NULL;
        size_t n = 0, nlater = 0;
        size_t want = max - done < GC_BATCH ? max - done : GC_BATCH;
        if ((err = md_garbage_list(md, before, want, &g, &n)) != CM_OK || n == 0) {
            md_garbage_free(g, n);
            break;
        }
        /* Entries put off go back stamped RETRY_MS past the grace (after this run's bound,
         * so the loop cannot meet them again), then every listed entry is dropped. */
        md_garbage *later = malloc(n * sizeof(*later));
        if (!later) {
            md_garbage_free(g, n);
            err = CM_ERR_NOMEM;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (!reclaim(st, md, &g[i], &r)) {
                later[nlater] = g[i];
                later[nlater++].hlc = MD_HLC_MAKE(now_ms - grace_ms + RETRY_MS, 0);
            }
        err = nlater ? md_garbage_put(md, later, nlater) : CM_OK;
        free(later);
        if (err == CM_OK)
            err = md_garbage_drop(md, g, n);
        md_garbage_free(g, n);
        if (err != CM_OK)
            break;
        done += n - nlater;
        put_off += nlater;
        if (n < want)
            break;
    }
    if (put_off)
        CM_WARN(MOD,
                "garbage reclaim: %zu entries of live bodies put off, their records "
                "unreadable (%s)",
                put_off, cm_err_str(r.last));
    if (freed)
        *freed = done;
    return err;
}
