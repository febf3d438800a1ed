/*
 * bs_compact.c - compaction: rewrite segments that are mostly dead, in small throttled steps.
 *
 * A non-active segment is a candidate when its live payload is below compact_pct percent of its
 * size (a segment with no live extent but tombstones that must be kept counts too, see
 * bs_seg_reclaimable). One segment is compacted at a time (compact_mu; bs->cseg and bs->cpos hold
 * the progress between steps), marked busy so delete-time reclaim leaves it alone:
 *
 *   1. its records are walked front to back. For each PUT whose extent is still live (the index
 *      still points at this segment and offset) the raw record is read without any store lock,
 *      then, under append_mu, liveness is checked again, the bytes are appended to the active
 *      segment (the record is position independent; only its header is encoded again, with the
 *      active segment's salt) and the extent is moved to the copy
 *      under idx_lock. A DELETE is copied the same way while a segment that held records of the
 *      deleted blob still exists (bs_seg refs); otherwise it is dropped. Dead records are skipped.
 *   2. when the walk is done: bs_sync (the copies are durable), then, under sync_mu and append_mu,
 *      the segment is unlinked and the directory synced. If any sync failed (bs_error), the
 *      source is kept: a copy that was never durably synced must not be the only one.
 *
 * Crash safety: until step 2 the old records are intact, so a crash leaves either the old
 * segment alone or both copies; recovery prefers the later copy of an extent (bs_recover.c), and
 * the copies are always later in scan order. A copy is only published while its source is live
 * and append_mu is held, so it can never land after the blob's tombstone.
 *
 * Locks are held per record and never across the read of the old segment, so reads and appends
 * go on between records (a record is at most 64 MiB; the gateway's are one cell, 256 KiB).
 * The background thread (bs_compactor_*) runs steps of rate/10 bytes ten times a second, and
 * punches the holes of deleted data (bs_punch_dead) at the same ticks: at least once a second.
 * Between ticks it pushes appended bytes to writeback (bs_writeback, bs_io.c) when an appender
 * wakes it (bs_writeback_due); the wake-ups do not move the ticks. After each push and at each
 * tick it drops durable pages from the page cache (bs_drop_synced, bs_io.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bs_int.h"
#include "cm_log.h"
#include "cm_util.h"

#define BS_COMPACT_TICKS 10 /* background steps per second */

/* The candidate with the lowest live fraction; caller holds append_mu. */
static bs_seg *pick(const bs_store *bs)
{
    bs_seg *best = NULL;
    double best_frac = 2.0;
    for (size_t i = 0; i < bs->nsegs; i++) {
        bs_seg *s = bs->segs[i];
        if (s == bs->active || s->busy || s->stuck || s->size <= BS_SEG_HDR)
            continue;
        uint64_t room = s->size - BS_SEG_HDR;
        if (s->live_bytes * 100 >= (uint64_t)bs->compact_pct * room)
            continue;
        double frac = (double)s->live_bytes / (double)room;
        if (frac < best_frac) {
            best = s;
            best_frac = frac;
        }
    }
    return best;
}

/* The extent of blob b that record (h, s, pos) backs, or NULL if it is dead. */
static bs_ext *live_ext(const bs_store *bs, const bs_rec_hdr *h, const bs_seg *s, uint64_t pos)
{
    bs_blob *b = bs_index_get(&bs->index, &h->id);
    if (!b)
        return NULL;
    for (uint32_t i = bs_blob_first_ext(b, h->off); i < b->next; i++) {
        bs_ext *x = &b->ext[i];
        if (x->seg == s && x->rec_off == pos)
            return x;
        if (x->len > 0 || x->boff > h->off)
            break;
    }
    if (h->len == 0) /* empty extents are skipped by first_ext */
        for (uint32_t i = 0; i < b->next; i++)
            if (b->ext[i].seg == s && b->ext[i].rec_off == pos)
                return &b->ext[i];
    return NULL;
}

/*
 * Append a record (header h, raw bytes rec) to the active segment; caller holds append_mu. The
 * header is encoded again with the active segment's salt (a version 1 source has none).
 */
static cm_err write_raw(bs_store *bs, const bs_rec_hdr *h, uint8_t *rec, uint64_t len, bs_seg **seg,
                        uint64_t *off)
{
    cm_err e = bs_ensure_room(bs, len);
    if (e != CM_OK)
        return e;
    bs_seg *a = bs->active;
    bs_rec_encode(h, a->salt, rec);
    e = bs_write_full(&bs->io, a->fd, rec, (size_t)len, a->size);
    if (e != CM_OK) {
        if (bs->io.ftruncate(bs->io.ctx, a->fd, (off_t)a->size) != 0)
            CM_ERROR("bs", "%s: cannot cut a failed compaction copy: %s", bs->dir, strerror(errno));
        return e;
    }
    *seg = a;
    *off = a->size;
    a->size += len;
    a->dirty = 1;
    bs->write_gen++;
    return CM_OK;
}

/* Copy a live PUT record at pos (total bytes) and move its extent to the copy. */
static cm_err move_put(bs_store *bs, bs_seg *s, const bs_rec_hdr *h, uint64_t pos, uint64_t total)
{
    pthread_rwlock_rdlock(&bs->idx_lock);
    int live = live_ext(bs, h, s, pos) != NULL;
    pthread_rwlock_unlock(&bs->idx_lock);
    if (!live)
        return CM_OK;
    uint8_t *rec = malloc((size_t)total);
    size_t got = 0;
    cm_err e = rec ? bs_read_full(&bs->io, s->fd, rec, (size_t)total, pos, &got) : CM_ERR_NOMEM;
    if (e == CM_OK && got != total)
        e = CM_ERR_CORRUPT;
    if (e != CM_OK) {
        free(rec);
        return e;
    }
    pthread_mutex_lock(&bs->append_mu);
    if (live_ext(bs, h, s, pos)) { /* index writers hold append_mu: no idx_lock needed to look */
        bs_seg *to = NULL;
        uint64_t off = 0;
        e = write_raw(bs, h, rec, total, &to, &off);
        if (e == CM_OK) {
            pthread_rwlock_wrlock(&bs->idx_lock);
            bs_ext *x = live_ext(bs, h, s, pos);
            s->live_exts--;
            s->live_bytes -= x->len;
            x->seg = to;
            x->rec_off = off;
            to->live_exts++;
            to->live_bytes += x->len;
            pthread_rwlock_unlock(&bs->idx_lock);
            __atomic_add_fetch(&bs->compact_moved, total, __ATOMIC_RELAXED);
        }
    }
    pthread_mutex_unlock(&bs->append_mu);
    free(rec);
    return e;
}

/*
 * Carry a tombstone forward while a segment that held records of its blob still exists. Which
 * blob a segment's refs belong to is not kept, so every tombstone of the segment is carried while
 * any ref lives, and the copy's segment inherits the refs.
 */
static cm_err move_tombstone(bs_store *bs, const bs_seg *s, const bs_rec_hdr *h)
{
    cm_err e = CM_OK;
    pthread_mutex_lock(&bs->append_mu);
    if (bs_seg_refs_live(bs, s) && !bs_index_get(&bs->index, &h->id)) {
        uint8_t raw[BS_REC_HDR];
        bs_seg *to = NULL;
        uint64_t off = 0;
        e = write_raw(bs, h, raw, sizeof(raw), &to, &off);
        if (e == CM_OK)
            to->tombs++;
        for (uint32_t i = 0; e == CM_OK && i < s->nrefs; i++)
            e = bs_seg_add_ref(to, s->refs[i]);
    }
    pthread_mutex_unlock(&bs->append_mu);
    return e;
}

/* Handle the record at bs->cpos and advance; *done counts bytes read. */
static cm_err step_record(bs_store *bs, bs_seg *s, uint64_t *done)
{
    uint64_t pos = bs->cpos;
    uint8_t raw[BS_REC_HDR];
    size_t got = 0;
    bs_rec_hdr h;
    cm_err e = bs_read_full(&bs->io, s->fd, raw, sizeof(raw), pos, &got);
    if (e != CM_OK)
        return e;
    if (got != sizeof(raw) || bs_rec_decode(raw, s->salt, &h) != CM_OK ||
        bs_rec_size(h.len) > s->size - pos) {
        /* Unreadable: any live extent behind it keeps the segment (it ends up stuck). */
        uint64_t next = 0;
        if (!bs_find_next_record(&bs->io, s->fd, s->salt, pos + BS_ALIGN, s->size, &next))
            next = s->size;
        *done += next - pos;
        bs->cpos = next;
        return CM_OK;
    }
    uint64_t total = bs_rec_size(h.len);
    e = h.type == BS_REC_PUT ? move_put(bs, s, &h, pos, total) : move_tombstone(bs, s, &h);
    if (e == CM_OK) {
        *done += total;
        bs->cpos = pos + total;
    }
    return e;
}

/* The walk is done: make the copies durable, then remove the segment. */
static cm_err finish(bs_store *bs, bs_seg *s)
{
    cm_err e = bs_sync(bs);
    if (e != CM_OK)
        return e;
    pthread_mutex_lock(&bs->sync_mu);
    pthread_mutex_lock(&bs->append_mu);
    s->busy = 0;
    e = bs_error(bs); /* a later sync failure: keep everything on disk as it is */
    if (e == CM_OK && s->live_exts == 0) {
        uint64_t size = s->size;
        CM_INFO("bs", "%s: compacted segment %u (%llu bytes)", bs->dir, s->num,
                (unsigned long long)size);
        bs_seg_destroy(bs, s);
        e = bs_sync_dir(bs);
        bs_reclaim(bs); /* segments whose tombstones only mattered while this one lived */
        __atomic_add_fetch(&bs->compacted_segs, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&bs->compact_freed, size, __ATOMIC_RELAXED);
    } else if (e == CM_OK) {
        CM_WARN("bs", "%s/seg-%08u.cbs: %llu live extents could not be moved; not compacted",
                bs->dir, s->num, (unsigned long long)s->live_exts);
        s->stuck = 1;
    }
    bs->cseg = NULL;
    pthread_mutex_unlock(&bs->append_mu);
    pthread_mutex_unlock(&bs->sync_mu);
    return e;
}

/* Leave the segment as it is (its records stay valid) and never pick it again. */
static void abandon(bs_store *bs, bs_seg *s)
{
    pthread_mutex_lock(&bs->append_mu);
    s->busy = 0;
    s->stuck = 1;
    bs->cseg = NULL;
    pthread_mutex_unlock(&bs->append_mu);
}

cm_err bs_compact_step(bs_store *bs, uint64_t budget)
{
    cm_err e = CM_OK;
    uint64_t done = 0;
    pthread_mutex_lock(&bs->compact_mu);
    if (!bs->cseg) {
        pthread_mutex_lock(&bs->append_mu);
        bs->cseg = pick(bs);
        if (bs->cseg) {
            bs->cseg->busy = 1;
            bs->cpos = BS_SEG_HDR;
        }
        pthread_mutex_unlock(&bs->append_mu);
    }
    bs_seg *s = bs->cseg;
    if (!s)
        goto unlock;
    while (e == CM_OK && bs->cpos < s->size && done < budget)
        e = step_record(bs, s, &done);
    if (e == CM_OK && bs->cpos >= s->size)
        e = finish(bs, s);
    if (e == CM_OK) {
        e = CM_AGAIN; /* the next call picks the next candidate or reports CM_OK */
    } else {
        CM_WARN("bs", "%s: compaction of segment %u: %s", bs->dir, s->num, cm_err_str(e));
        if (e != CM_ERR_NOSPC && bs->cseg) /* a full disk may clear up; anything else: give up */
            abandon(bs, s);
    }
unlock:
    pthread_mutex_unlock(&bs->compact_mu);
    return e;
}

/* ---- background thread ---- */

void bs_writeback_due(bs_store *bs, const bs_seg *s)
{
    bs_compactor *c = &bs->bg;
    if (!c->running || s->size - CM_MIN(s->size, s->wb_from) < BS_WRITEBACK_BYTES)
        return;
    pthread_mutex_lock(&c->mu); /* the thread holds mu only to wait: this does not block */
    if (!c->writeback) {
        c->writeback = 1;
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&c->mu);
}

/* Compaction and punching at their ticks; writeback pushes whenever an appender asks for one. */
static void *compactor_main(void *arg)
{
    bs_store *bs = arg;
    bs_compactor *c = &bs->bg;
    struct timespec tick;
    clock_gettime(CLOCK_MONOTONIC, &tick);
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        if (c->writeback) {
            c->writeback = 0;
            pthread_mutex_unlock(&c->mu);
            bs_writeback(bs);
            bs_drop_synced(bs);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        if (pthread_cond_timedwait(&c->cond, &c->mu, &tick) != ETIMEDOUT)
            continue; /* woken: stop or writeback */
        pthread_mutex_unlock(&c->mu);
        cm_err e = bs_compact_step(bs, (uint64_t)(c->rate / BS_COMPACT_TICKS) + 1);
        /* Deleted data first goes by punching (bs_punch.c): no copy needed, so a full disk too. */
        cm_err p = bs_punch_dead(bs);
        bs_drop_synced(bs);
        /* Busy: come back next tick. Idle or failing (e.g. a full disk): look again in 1 s. */
        long wait_ms = (e == CM_AGAIN || p == CM_AGAIN) ? 1000 / BS_COMPACT_TICKS : 1000;
        clock_gettime(CLOCK_MONOTONIC, &tick);
        tick.tv_nsec += wait_ms * 1000000L;
        tick.tv_sec += tick.tv_nsec / 1000000000L;
        tick.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

cm_err bs_compactor_start(bs_store *bs, int64_t rate)
{
    bs_compactor *c = &bs->bg;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&c->mu, NULL);
    c->rate = rate;
    c->stop = 0;
    c->writeback = 0;
    if (pthread_create(&c->thread, NULL, compactor_main, bs) != 0) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->mu);
        return CM_ERR_NOMEM;
    }
    c->running = 1;
    return CM_OK;
}

void bs_compactor_stop(bs_store *bs)
{
    bs_compactor *c = &bs->bg;
    if (!c->running)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    c->running = 0;
}
