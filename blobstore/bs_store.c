/*
 * bs_store.c - the live blob store: open/close, append, read, delete, sync, stats.
 *
 * Appends go to the active (last) segment at its tracked size with pwrite; a new segment is started
 * when the next record would pass segment_max (an append may be split into several records, the
 * first filling what is left of the active segment). Records are written first and published to
 * the index afterwards, so a reader never sees bytes that are not in the file; if any write fails,
 * every touched segment is truncated back to its size before the append, and nothing is published.
 *
 * Locks, always taken in this order:
 *   compact_mu one compaction step at a time (bs_compact.c); held across its bs_sync.
 *   sync_mu    held while segments are fdatasynced; also by deletes and compaction when they
 *              unlink segments, so a segment is never closed under a running fdatasync, and
 *              by hole punching and early writeback around each call on a segment's descriptor.
 *   append_mu  serialises appends and deletes; guards the segment list, sizes, dirty flags and
 *              write_gen. Index writers hold it, so an appender may read the index without
 *              idx_lock.
 *   idx_lock   rwlock over the index and live counters. Readers hold it shared across their
 *              preads, so the segments they read cannot be closed under them; writers hold it
 *              briefly.
 *   gc_mu      leaf: group commit state and the sticky failure of a sync (bs->failed). Every
 *              append bumps write_gen and marks its segments dirty; bs_sync waits until
 *              synced_gen covers the generation it saw, running a sync round itself when no
 *              round is in flight (see bs_sync in bs_ops.c). Once a sync failed, every write is
 *              refused (bs_ensure_room) and no sync is tried again.
 *   dir_mu     leaf: the deferred directory sync of new segments (bs_sync_new_segments), so
 *              rolling to a new segment never holds append_mu across a directory fsync.
 *   bg.mu      leaf: the background thread's sleep (bs_compact.c); an appender takes it under
 *              append_mu to wake the thread for early writeback (bs_writeback_due).
 * The drive directory is flock'd (DIR/LOCK) for the store's lifetime.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bs_int.h"
#include "cm_log.h"
#include "cm_util.h"

#define BS_MIN_FILL 4096 /* do not split off records smaller than this to fill a segment */

static void store_free(bs_store *bs)
{
    bs_compactor_stop(bs);
    for (size_t i = 0; i < bs->nsegs; i++) {
        bs->io.close(bs->io.ctx, bs->segs[i]->fd);
        free(bs->segs[i]->refs);
        free(bs->segs[i]);
    }
    free(bs->segs);
    bs_holes_release(&bs->holes);
    bs_index_release(&bs->index);
    pthread_rwlock_destroy(&bs->idx_lock);
    pthread_mutex_destroy(&bs->append_mu);
    pthread_mutex_destroy(&bs->sync_mu);
    pthread_mutex_destroy(&bs->compact_mu);
    pthread_cond_destroy(&bs->gc_cond);
    pthread_mutex_destroy(&bs->gc_mu);
    if (bs->reserve_fd >= 0)
        bs->io.close(bs->io.ctx, bs->reserve_fd);
    pthread_mutex_destroy(&bs->dir_mu);
    if (bs->lock_fd >= 0)
        close(bs->lock_fd); /* releases the flock */
    free(bs->dir);
    free(bs);
}

/*
 * Exclusive flock on DIR/LOCK, so two stores (or a store and `cairn fsck`) never share a drive. It
 * is advisory locking rather than data I/O, so it bypasses the io table; the kernel drops it when
 * the process dies, so a crash leaves no stale lock.
 */
cm_err bs_take_lock(bs_store *bs)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", bs->dir, BS_LOCK_FILE);
    bs->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (bs->lock_fd < 0)
        return cm_err_from_errno(errno);
    if (flock(bs->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        CM_ERROR("bs", "%s is in use by another process or store", bs->dir);
        return errno == EWOULDBLOCK ? CM_ERR_CONFLICT : cm_err_from_errno(errno);
    }
    return CM_OK;
}

cm_err bs_open(const char *dir, const bs_options *opt, bs_store **out)
{
    bs_store *bs = calloc(1, sizeof(*bs));
    if (!bs)
        return CM_ERR_NOMEM;
    bs->io = (opt && opt->io) ? *opt->io : bs_io_posix;
    bs->segment_max = (opt && opt->segment_max) ? opt->segment_max : BS_DEFAULT_SEGMENT_MAX;
    bs->compact_pct = (opt && opt->compact_pct && opt->compact_pct < 100) ? opt->compact_pct
                                                                          : BS_DEFAULT_COMPACT_PCT;
    int64_t rate = (opt && opt->compact_rate) ? opt->compact_rate : BS_DEFAULT_COMPACT_RATE;
    bs->lock_fd = -1;
    bs->reserve_fd = -1;
    bs->holes.disabled = bs->io.punch == NULL;
    int64_t wait = (opt && opt->punch_wait_ms) ? opt->punch_wait_ms : BS_DEFAULT_PUNCH_WAIT_MS;
    bs->holes.wait_ms = wait < 0 ? -1 : wait;
    bs->holes.short_bytes = opt ? opt->punch_short_bytes : 0;
    pthread_mutex_init(&bs->compact_mu, NULL);
    pthread_mutex_init(&bs->gc_mu, NULL);
    pthread_cond_init(&bs->gc_cond, NULL);
    pthread_mutex_init(&bs->sync_mu, NULL);
    pthread_mutex_init(&bs->append_mu, NULL);
    pthread_mutex_init(&bs->dir_mu, NULL);
    /* Prefer writers: a stream of reads must not starve appends waiting to publish. */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&bs->idx_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    bs->dir = strdup(dir);
    cm_err e = bs->dir ? bs_index_init(&bs->index) : CM_ERR_NOMEM;
    if (e == CM_OK)
        e = bs_make_dir(bs);
    if (e == CM_OK)
        e = bs_take_lock(bs);
    struct statfs fs; /* memory-backed: no read waits on a disk, and none may say RWF_NOWAIT */
    bs->in_memory = e == CM_OK && statfs(bs->dir, &fs) == 0 &&
                    (fs.f_type == BS_TMPFS_MAGIC || fs.f_type == BS_RAMFS_MAGIC);
    if (e == CM_OK)
        e = bs_recover(bs);
    if (e == CM_OK) {
        bs_punch_after_recovery(bs);
        bs_punch_count_holes(bs);
        bs_reserve_fill(bs); /* best effort: a full disk leaves it short */
    }
    if (e == CM_OK && rate > 0)
        e = bs_compactor_start(bs, rate);
    if (e != CM_OK) {
        CM_ERROR("bs", "open %s failed: %s", dir, cm_err_str(e));
        store_free(bs);
        return e;
    }
    *out = bs;
    return CM_OK;
}

void bs_close(bs_store *bs)
{
    if (bs)
        store_free(bs);
}

void bs_drop_blob(bs_store *bs, bs_blob *b)
{
    bs_punch_note(bs, b); /* its data goes once the tombstone is durable */
    for (uint32_t i = 0; i < b->next; i++) {
        b->ext[i].seg->live_exts--;
        b->ext[i].seg->live_bytes -= b->ext[i].len;
        bs->live_bytes -= b->ext[i].len;
    }
    bs_blob_free(b);
}

/* ---- append ---- */

/* Make sure the active segment can take a record of `need` bytes (or is empty). */
cm_err bs_ensure_room(bs_store *bs, uint64_t need)
{
    bs_seg *a = bs->active;
    cm_err e = bs_error(bs);
    if (e != CM_OK)
        return e; /* a sync failed: every write is refused, whatever segment it would go to */
    if (a && !a->sealed && (a->size == BS_SEG_HDR || a->size + need <= bs->segment_max))
        return CM_OK;
    bs_seg *s = NULL;
    e = bs_seg_create(bs, bs->next_segno, &s);
    if (e != CM_OK)
        return e;
    bs->next_segno++;
    bs->active = s;
    return CM_OK;
}

/* Where an append's next byte comes from: piece i of the caller's iov, at byte at. */
typedef struct {
    const struct iovec *iov;
    int n, i;
    size_t at;
} bs_src;

/* The next contiguous run of at most *len bytes at src (*len cut to it), src moved past it. */
static const uint8_t *src_take(bs_src *src, size_t *len)
{
    while (src->i < src->n && src->at == src->iov[src->i].iov_len) {
        src->i++;
        src->at = 0;
    }
    const uint8_t *p = (const uint8_t *)src->iov[src->i].iov_base + src->at;
    *len = CM_MIN(*len, src->iov[src->i].iov_len - src->at);
    src->at += *len;
    return p;
}

/* Write len bytes from src at file offset off (src moves past them). */
static cm_err src_write(bs_store *bs, int fd, bs_src *src, size_t len, uint64_t off)
{
    cm_err e = CM_OK;
    while (e == CM_OK && len > 0) {
        size_t n = len;
        const uint8_t *p = src_take(src, &n);
        e = bs_write_full(&bs->io, fd, p, n, off);
        off += n;
        len -= n;
    }
    return e;
}

static cm_err write_put(bs_store *bs, bs_seg *s, const bs_id *id, uint64_t boff, bs_src *src,
                        uint32_t len)
{
    bs_rec_hdr h = {BS_REC_PUT, *id, boff, len, bs_blocks_for(len)};
    size_t hlen = BS_REC_HDR + 4u * h.nblocks;
    uint64_t total = bs_rec_size(len);
    static const uint8_t zeros[BS_ALIGN];
    uint8_t *hdr = malloc(hlen);
    if (!hdr)
        return CM_ERR_NOMEM;
    bs_rec_encode(&h, s->salt, hdr);
    bs_src at = *src; /* the CRCs read ahead; the writes below move src */
    for (uint32_t i = 0; i < h.nblocks; i++) {
        uint32_t crc = BS_CRC_INIT;
        for (size_t left = CM_MIN(BS_BLOCK, len - (size_t)i * BS_BLOCK); left > 0;) {
            size_t n = left;
            const uint8_t *p = src_take(&at, &n);
            crc = bs_crc32c_more(crc, p, n);
            left -= n;
        }
        cm_put_be32(hdr + BS_REC_HDR + 4 * i, bs_crc32c_end(crc));
    }
    cm_err e = bs_write_full(&bs->io, s->fd, hdr, hlen, s->size);
    if (e == CM_OK && len > 0)
        e = src_write(bs, s->fd, src, len, s->size + hlen);
    if (e == CM_OK && total > hlen + len)
        e = bs_write_full(&bs->io, s->fd, zeros, total - hlen - len, s->size + hlen + len);
    free(hdr);
    return e;
}

typedef struct {
    bs_seg *seg;
    uint64_t size;
} undo_ent;

static void rollback(bs_store *bs, const undo_ent *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (bs->io.ftruncate(bs->io.ctx, u[i].seg->fd, (off_t)u[i].size) != 0)
            CM_ERROR("bs", "%s: cannot cut segment %u back to %llu: %s", bs->dir, u[i].seg->num,
                     (unsigned long long)u[i].size, strerror(errno));
        u[i].seg->size = u[i].size;
        u[i].seg->wb_from = CM_MIN(u[i].seg->wb_from, u[i].size);
    }
}

/* Publish written records: every fallible step happens before the first change. */
static cm_err publish(bs_store *bs, const bs_id *id, const bs_ext *ext, size_t n)
{
    cm_err e = CM_OK;
    pthread_rwlock_wrlock(&bs->idx_lock);
    bs_blob *b = bs_index_get(&bs->index, id), *created = NULL;
    if (!b) {
        created = b = bs_blob_new(id);
        if (!b || bs_index_put(&bs->index, b) != CM_OK) {
            bs_blob_free(created);
            e = CM_ERR_NOMEM;
            goto unlock;
        }
    }
    if (b->next + n > b->cap) {
        bs_ext *ne = realloc(b->ext, (b->next + n) * sizeof(*ne));
        if (!ne) {
            if (created)
                bs_blob_free(bs_index_remove(&bs->index, id));
            e = CM_ERR_NOMEM;
            goto unlock;
        }
        b->ext = ne;
        b->cap = (uint32_t)(b->next + n);
    }
    for (size_t i = 0; i < n; i++) {
        b->ext[b->next++] = ext[i];
        b->size = ext[i].boff + ext[i].len;
        ext[i].seg->live_exts++;
        ext[i].seg->live_bytes += ext[i].len;
        bs->live_bytes += ext[i].len;
    }
unlock:
    pthread_rwlock_unlock(&bs->idx_lock);
    return e;
}

/* Data bytes for the next record: fill the active segment, else a full record in a new one. */
static uint64_t next_chunk(const bs_store *bs, uint64_t rest, uint64_t limit)
{
    uint64_t want = CM_MIN(rest, limit);
    const bs_seg *a = bs->active;
    if (!a || a->size == BS_SEG_HDR)
        return want;
    uint64_t fit = bs_data_fit(bs->segment_max > a->size ? bs->segment_max - a->size : 0);
    if (fit >= want || fit < BS_MIN_FILL)
        return want;
    return fit;
}

static cm_err append_locked(bs_store *bs, const bs_id *id, uint64_t off, bs_src *src, size_t len)
{
    uint64_t limit = bs_data_fit(bs->segment_max - CM_MIN(bs->segment_max, BS_SEG_HDR));
    limit = CM_MAX(limit, BS_MIN_FILL);
    /* Full records, plus at most one fill record per segment they span. */
    size_t nmax = 4 + 2 * (len / limit), n = 0, nu = 0;
    bs_ext *ext = malloc(nmax * sizeof(*ext));
    undo_ent *undo = malloc(nmax * sizeof(*undo));
    cm_err e = (ext && undo) ? CM_OK : CM_ERR_NOMEM;
    size_t pos = 0;
    while (e == CM_OK && (pos < len || n == 0)) {
        uint32_t chunk = (uint32_t)next_chunk(bs, len - pos, limit);
        e = bs_ensure_room(bs, bs_rec_size(chunk));
        if (e != CM_OK)
            break;
        bs_seg *s = bs->active;
        if (nu == 0 || undo[nu - 1].seg != s)
            undo[nu++] = (undo_ent){s, s->size};
        e = write_put(bs, s, id, off + pos, src, chunk);
        if (e != CM_OK)
            break;
        ext[n++] = (bs_ext){off + pos, chunk, s, s->size};
        s->size += bs_rec_size(chunk);
        s->dirty = 1;
        pos += chunk;
        bs_writeback_due(bs, s);
    }
    if (e == CM_OK)
        e = publish(bs, id, ext, n);
    if (e != CM_OK && undo)
        rollback(bs, undo, nu);
    if (e == CM_OK) {
        bs->write_gen++;
        bs->appends++;
        bs->append_bytes += len;
    }
    free(ext);
    free(undo);
    return e;
}

cm_err bs_appendv(bs_store *bs, const bs_id *id, uint64_t off, const struct iovec *iov, int iovcnt)
{
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > 0 && !iov[i].iov_base)
            return CM_ERR_INVAL;
        len += iov[i].iov_len;
    }
    bs_src src = {iov, iovcnt, 0, 0};
    pthread_mutex_lock(&bs->append_mu);
    const bs_blob *b = bs_index_get(&bs->index, id); /* index writers hold append_mu */
    cm_err e = CM_ERR_INVAL;
    if (b && len == 0 && off == b->size)
        e = CM_OK; /* nothing to record */
    else if (off == (b ? b->size : 0))
        e = append_locked(bs, id, off, &src, len);
    pthread_mutex_unlock(&bs->append_mu);
    if (e != CM_OK && e != CM_ERR_INVAL)
        CM_WARN("bs", "%s: append failed: %s", bs->dir, cm_err_str(e));
    return e;
}

cm_err bs_append(bs_store *bs, const bs_id *id, uint64_t off, const void *data, size_t len)
{
    struct iovec one = {(void *)(uintptr_t)data, len};
    return bs_appendv(bs, id, off, &one, 1);
}
