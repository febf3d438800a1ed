/*
 * ob_gc.c - reclaim garbage: bodies no record uses any more (ob.h, docs/replication.md).
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
 * Blocking: call it from a background thread, never from an event loop.
 */
#include <string.h>

#include "ob_int.h"

#define GC_BATCH 256

cm_err ob_gc_run(ob_store *st, md_store *md, int64_t now_ms, int64_t grace_ms, size_t max,
                 uint64_t *freed)
{
    uint64_t before = MD_HLC_MAKE(now_ms > grace_ms ? now_ms - grace_ms : 0, 0);
    size_t done = 0;
    cm_err err = CM_OK;
    while (done < max) {
        md_garbage *g = NULL;
        size_t n = 0;
        size_t want = max - done < GC_BATCH ? max - done : GC_BATCH;
        if ((err = md_garbage_list(md, before, want, &g, &n)) != CM_OK || n == 0) {
            md_garbage_free(g, n);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            /* The lease table works on records: a one-part record naming the body. */
            md_part part;
            memset(&part, 0, sizeof(part));
            part.size = g[i].layout.size;
            part.layout = g[i].layout;
            md_object obj = {.key = g[i].key, .size = part.size, .parts = &part, .nparts = 1};
            ob_free_object_data(st, &obj);
        }
        err = md_garbage_drop(md, g, n);
        md_garbage_free(g, n);
        if (err != CM_OK)
            break;
        done += n;
        if (n < want)
            break;
    }
    if (freed)
        *freed = done;
    return err;
}
