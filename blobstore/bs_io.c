/*
 * bs_io.c - the POSIX I/O table and the helpers that every disk access goes through.
 *
 * bs_io_posix maps the table onto open/pread/pwrite/fdatasync/ftruncate/close/unlink, punch
 * onto fallocate(PUNCH_HOLE | KEEP_SIZE) and writeback onto sync_file_range(WRITE). Writes are
 * positional at offsets the store tracks (never O_APPEND), so a failed append can be cut off again
 * and the next append simply overwrites the same bytes. bs_write_full / bs_read_full retry EINTR
 * and short transfers. Directory durability (after creating or removing a segment) uses the same
 * table: open the directory read-only, fdatasync it, close it - no extra table entry is needed.
 *
 * Segment list helpers live here too: create (header written) and destroy, and the in-place
 * update of a segment header's synced-up-to mark. A drive directory that bs_open creates has its
 * parent directory synced, so the new entry survives a crash. The directory sync that makes a
 * new segment's name durable is deferred to bs_sync_new_segments, which bs_sync (and a delete
 * that must make its tombstone durable) runs before syncing the segments themselves: creating a
 * segment happens under append_mu, and a directory fsync there would hold every append of the
 * drive behind a disk wait. Nothing in a new segment is acknowledged before a sync, so a crash
 * before the directory sync only loses unacknowledged records (recovery sees the segment
 * missing, or present without records: both were already possible states).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bs_int.h"
#include "cm_log.h"
#include "cm_util.h"

static int px_open(void *ctx, const char *path, int flags, mode_t mode)
{
    (void)ctx;
    return open(path, flags, mode);
}
static ssize_t px_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    (void)ctx;
    return pread(fd, buf, len, off);
}
static ssize_t px_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
    (void)ctx;
    return pwrite(fd, buf, len, off);
}
static int px_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    return fdatasync(fd);
}
static int px_ftruncate(void *ctx, int fd, off_t len)
{
    (void)ctx;
    return ftruncate(fd, len);
}
static int px_close(void *ctx, int fd)
{
    (void)ctx;
    return close(fd);
}
static int px_unlink(void *ctx, const char *path)
{
    (void)ctx;
    return unlink(path);
}

static int px_punch(void *ctx, int fd, off_t off, off_t len)
{
    (void)ctx;
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
}

static int px_writeback(void *ctx, int fd, off_t off, off_t len)
{
    (void)ctx;
    return sync_file_range(fd, off, len, SYNC_FILE_RANGE_WRITE);
}

static int px_drop(void *ctx, int fd, off_t off, off_t len)
{
    (void)ctx;
    return posix_fadvise(fd, off, len, POSIX_FADV_DONTNEED);
}

const bs_io bs_io_posix = {px_open,   px_pread, px_pwrite, px_fdatasync, px_ftruncate, px_close,
                           px_unlink, NULL,     px_punch,  px_writeback, px_drop};

cm_err bs_write_full(const bs_io *io, int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = io->pwrite(io->ctx, fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cm_err_from_errno(errno);
        if (n == 0)
            return CM_ERR_IO; /* no progress and no errno: do not spin */
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return CM_OK;
}

cm_err bs_read_full(const bs_io *io, int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = io->pread(io->ctx, fd, p + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return CM_ERR_IO;
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *got = done;
    return CM_OK;
}

void bs_seg_path(const bs_store *bs, uint32_t num, char *out, size_t cap)
{
    snprintf(out, cap, "%s/seg-%08u.cbs", bs->dir, num);
}

/* fsync a directory through the io table: open it read-only, fdatasync, close. */
static cm_err sync_dir_path(const bs_io *io, const char *path)
{
    int fd = io->open(io->ctx, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return cm_err_from_errno(errno);
    cm_err e = CM_OK;
    if (io->fdatasync(io->ctx, fd) != 0)
        e = cm_err_from_errno(errno);
    io->close(io->ctx, fd);
    return e;
}

cm_err bs_sync_dir(bs_store *bs)
{
    return sync_dir_path(&bs->io, bs->dir);
}

cm_err bs_make_dir(bs_store *bs)
{
    char parent[4096];
    if (mkdir(bs->dir, 0755) != 0)
        return errno == EEXIST ? CM_OK : cm_err_from_errno(errno);
    /* The new entry lives in the parent directory: make it durable before anything goes in. */
    cm_parent_dir(bs->dir, parent, sizeof(parent));
    cm_err e = sync_dir_path(&bs->io, parent);
    if (e != CM_OK)
        CM_ERROR("bs", "%s: cannot sync the parent directory of a new drive: %s", bs->dir,
                 cm_err_str(e));
    return e;
}

void bs_seg_write_mark(bs_store *bs, bs_seg *s, uint64_t synced)
{
    uint8_t hdr[BS_SEG_HDR];
    if (s->version < 2 || synced <= s->synced)
        return;
    bs_seg_hdr_encode(s->num, s->salt, synced, hdr);
    /* Only the mark's 8 bytes: a torn write spoils the mark (read as none), never the header. */
    if (bs_write_full(&bs->io, s->fd, hdr + 20, 8, 20) == CM_OK)
        s->synced = synced;
}

/*
 * Early writeback. Appends land in the page cache, and without a push the kernel writes them out
 * only at the next fdatasync (its own flushing starts past dirty_background_ratio of memory, or
 * after 30 s). A large body's sync at its end then wrote every cell in one burst: ~150 ms per
 * 64 MiB body over six drives of one disk, with that upload stalled and the disk idle before it.
 * So once an append leaves BS_WRITEBACK_BYTES unpushed in its segment, the store's background
 * thread (bs_compact.c) is woken and calls this: each segment with unpushed bytes, oldest first
 * (the order the appends came in), gets one writeback call for them. It runs under sync_mu, one
 * segment at a time (as hole punching does): the segment cannot be unlinked under the call, and a
 * sync round waits for one call at most. Only the background thread calls it, never an appender:
 * sync_file_range blocks while the device's queue is full (up to 20 ms seen), and appends run on
 * event loops.
 */
void bs_writeback(bs_store *bs)
{
    if (!bs->io.writeback)
        return;
    for (;;) {
        int fd = -1;
        uint64_t from = 0, to = 0;
        pthread_mutex_lock(&bs->sync_mu);
        pthread_mutex_lock(&bs->append_mu);
        for (size_t i = bs->nsegs; i-- > 0;) {
            bs_seg *s = bs->segs[i];
            if (s->size <= s->wb_from)
                break; /* this one and every older one are pushed (or were already at open) */
            if (i == 0 || bs->segs[i - 1]->size <= bs->segs[i - 1]->wb_from) {
                fd = s->fd; /* the oldest unpushed one first: the order appends came in */
                from = s->wb_from;
                to = s->wb_from = s->size;
                break;
            }
        }
        pthread_mutex_unlock(&bs->append_mu);
        if (fd >= 0)
            bs->io.writeback(bs->io.ctx, fd, (off_t)from, (off_t)(to - from));
        pthread_mutex_unlock(&bs->sync_mu);
        if (fd < 0)
            return;
    }
}

/*
 * Dropping what is durable from the page cache. The store writes each byte once and reads few of
 * them back soon (a GET reads k of a stripe's k+m cells, the scrubber comes days later), so left
 * in the page cache its appends only fill memory that the kernel must reclaim later, and every
 * append needs a fresh page. Given back once durable, the pages are reused by the next appends
 * while still warm. On this project's test machine (a VM that, as we read the figures, hands freed
 * guest memory back to its host, so a fresh page is a host fault) the page-cache copy of a 64 MiB
 * PUT's cells fell from 28 % of the server's samples to 5 %, and 64 MiB PUTs of new keys ran ~30 %
 * faster on less CPU (docs/performance.md, "Fifteenth session").
 *
 * Reads are not dropped: what a GET brings in stays cached (unless it read bytes synced but not
 * dropped yet, at most a second's appends). Only whole pages below the segment's synced-up-to
 * mark go (clean: a record is never rewritten), never page 0, whose mark bytes are rewritten at
 * each sync (a partial write to a page not cached would read it from disk first); the page
 * holding the mark's position waits until the mark passes it. Under sync_mu, one segment and at
 * most BS_WRITEBACK_BYTES at a time, as bs_writeback: the segment cannot be unlinked under the
 * call, and a sync round waits for one call at most.
 */
void bs_drop_synced(bs_store *bs)
{
    if (!bs->io.drop)
        return;
    const uint64_t page = 4096;
    size_t next = 0; /* where the last call's segment was (a removed segment only shifts it) */
    for (;;) {
        int fd = -1;
        uint64_t from = 0, to = 0;
        pthread_mutex_lock(&bs->sync_mu);
        pthread_mutex_lock(&bs->append_mu);
        for (size_t i = next; i < bs->nsegs; i++) {
            bs_seg *s = bs->segs[i];
            uint64_t lo = CM_MAX(s->drop_from, page), hi = s->synced / page * page;
            if (hi > lo) {
                fd = s->fd;
                from = lo;
                to = s->drop_from = CM_MIN(hi, lo + BS_WRITEBACK_BYTES);
                next = i;
                break;
            }
        }
        pthread_mutex_unlock(&bs->append_mu);
        if (fd >= 0)
            bs->io.drop(bs->io.ctx, fd, (off_t)from, (off_t)(to - from));
        pthread_mutex_unlock(&bs->sync_mu);
        if (fd < 0)
            return;
    }
}

cm_err bs_sync_new_segments(bs_store *bs)
{
    cm_err e = CM_OK;
    if (!__atomic_load_n(&bs->dir_dirty, __ATOMIC_ACQUIRE))
        return CM_OK;
    /* A caller that finds another's sync running waits for it here, then finds the flag clear. */
    pthread_mutex_lock(&bs->dir_mu);
    if (__atomic_exchange_n(&bs->dir_dirty, 0, __ATOMIC_ACQ_REL)) {
        e = bs_sync_dir(bs);
        if (e != CM_OK) {
            __atomic_store_n(&bs->dir_dirty, 1, __ATOMIC_RELEASE);
            CM_ERROR("bs", "%s: directory sync for new segments failed: %s", bs->dir,
                     cm_err_str(e));
        }
    }
    pthread_mutex_unlock(&bs->dir_mu);
    return e;
}

cm_err bs_segs_push(bs_store *bs, bs_seg *s)
{
    if (bs->nsegs == bs->capsegs) {
        size_t cap = bs->capsegs ? bs->capsegs * 2 : 16;
        bs_seg **n = realloc(bs->segs, cap * sizeof(*n));
        if (!n)
            return CM_ERR_NOMEM;
        bs->segs = n;
        bs->capsegs = cap;
    }
    bs->segs[bs->nsegs++] = s;
    return CM_OK;
}

cm_err bs_seg_create(bs_store *bs, uint32_t num, bs_seg **out)
{
    char path[4096];
    uint8_t hdr[BS_SEG_HDR];
    cm_err e;
    bs_seg *s = calloc(1, sizeof(*s));
    if (!s)
        return CM_ERR_NOMEM;
    bs_seg_path(bs, num, path, sizeof(path));
    s->num = num;
    s->fd = bs->io.open(bs->io.ctx, path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        e = cm_err_from_errno(errno);
        goto free_seg;
    }
    s->version = BS_SEG_VERSION;
    s->salt = bs->salt;
    bs_seg_hdr_encode(num, s->salt, 0, hdr);
    e = bs_write_full(&bs->io, s->fd, hdr, sizeof(hdr), 0);
    if (e == CM_OK)
        e = bs_segs_push(bs, s);
    if (e != CM_OK)
        goto unlink_file;
    __atomic_store_n(&bs->dir_dirty, 1, __ATOMIC_RELEASE);
    s->size = BS_SEG_HDR;
    s->dirty = 1;
    *out = s;
    return CM_OK;

unlink_file:
    bs->io.close(bs->io.ctx, s->fd);
    bs->io.unlink(bs->io.ctx, path);
free_seg:
    CM_ERROR("bs", "cannot create segment %s: %s", path, cm_err_str(e));
    free(s);
    return e;
}

void bs_seg_destroy(bs_store *bs, bs_seg *s)
{
    char path[4096];
    for (size_t i = 0; i < bs->nsegs; i++) {
        if (bs->segs[i] == s) {
            memmove(&bs->segs[i], &bs->segs[i + 1], (bs->nsegs - i - 1) * sizeof(*bs->segs));
            bs->nsegs--;
            break;
        }
    }
    if (bs->active == s)
        bs->active = NULL;
    bs_seg_path(bs, s->num, path, sizeof(path));
    bs->io.close(bs->io.ctx, s->fd);
    if (bs->io.unlink(bs->io.ctx, path) != 0)
        CM_WARN("bs", "unlink %s failed: %s", path, strerror(errno));
    else
        CM_INFO("bs", "reclaimed dead segment %s", path);
    free(s->refs);
    free(s);
}
