/*
 * bs_punch.c - give the space of deleted data back at once by punching holes into dead records.
 *
 * Why: otherwise space only comes back when a whole segment is unlinked (reclaim) or compacted.
 * Neither happens to the active segment, which on a small drive holds everything, and compaction
 * needs free space for its copies: a full disk stayed full after deletes (issue 8, item 10). A hole
 * (fallocate PUNCH_HOLE | KEEP_SIZE) frees the blocks at once, keeps the file size and every
 * offset, and reads back as zeros.
 *
 * What: when bs_delete has written a blob's tombstone, and in the same append_mu section drops
 * the blob from the index, it queues (bs_punch_note) the data of each of the blob's records cut to
 * the whole 4 KiB pages inside it (bs_punch_range). The record header and its checksum table stay,
 * so every segment still parses record by record:
 *   - recovery indexes the punched record and then drops it again at the blob's tombstone, which
 *     lies after it in scan order and stays on disk as long as the record's segment exists (the
 *     tombstone refs of docs/storage.md section 6);
 *   - compaction skips it as a dead record; bs_read cannot reach it (the blob left the index);
 *   - fsck sees blocks that fail their CRC inside a record whose blob is dead and whose punchable
 *     pages are all zero: a punched record, not corruption (bs_fsck.c).
 *
 * When: a hole is punched only once the tombstone is durable (synced_gen covers the write
 * generation of the delete), so a crash can never show a blob whose data is gone: until then a
 * lost tombstone brings the blob back whole. And only once the range has waited punch_wait_ms
 * (default 15 s) for its whole segment to go first, unless the drive is short of space:
 *   - why wait: a punched range is one discard per record (ext4 on a drive mounted `discard`
 *     sends each freed extent down as it commits; the record header that stays between two
 *     holes keeps their extents apart), where a segment unlinked whole by reclaim or compaction
 *     is a few large ones. Replacing 8 objects of 64 MiB over and over on the development VM
 *     punched 64,174 ranges in 10 s, 13.5 s of the device's time for 9 GB; with whole segments
 *     unlinked the same bytes went in ~1,300 discards and 3-9 s, and the PUTs ran 9-16 % faster
 *     (docs/performance.md, "Sixteenth session"). A range whose segment went meanwhile is just
 *     dropped from the queue.
 *   - short of space: the filesystem has less available than punch_short_bytes (default a
 *     tenth of it and at least 1 GiB; statvfs once per call). Then every durable range is due at
 *     once, so deletes on a full disk give their space back within a tick as before.
 * bs_punch_dead runs a bs_sync when a due range is not covered yet (group commit, so at most one
 * fdatasync per call), then punches up to BS_PUNCH_BATCH ranges, each while holding sync_mu,
 * which keeps its segment (and descriptor) from being unlinked under it; appends and reads go on,
 * and a sync round waits for one punch at most (1-3 ms on ext4 on the development VM, under 0.1 ms
 * on tmpfs). The background compactor thread calls it about once a second.
 *
 * The reserve: a delete needs 48 bytes for its tombstone, which a full disk may not have. Each
 * drive keeps DIR/RESERVE, BS_RESERVE_BYTES of zeros written at open; a tombstone that gets ENOSPC
 * truncates it to nothing and is retried (bs_delete). bs_punch_dead fills it again once there is
 * room (the holes it punched, or compaction, made some). It is not synced: after a crash bs_open
 * simply tops it up again.
 *
 * After a crash: recovery drops deleted blobs through the same bs_drop_blob, so their records are
 * queued again; bs_punch_after_recovery keeps those that are not holes yet (lseek SEEK_DATA) and
 * makes them wait for a sync, since the tombstones recovery read may only be in the page cache
 * (and the wait again, counted from the open).
 *
 * Fallback: no io.punch, or EOPNOTSUPP/ENOSYS from it (a filesystem without punch hole), turns
 * punching off for the store (logged once): deleted data then waits for reclaim and compaction as
 * before. Other errors leave that range to compaction (logged). The queue is bounded
 * (BS_PUNCH_QUEUE_MAX ranges; past it, ranges are not queued and only compaction frees them).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bs_int.h"
#include "cm_log.h"
#include "cm_util.h"

#define BS_PUNCH_PAGE 4096u
#define BS_PUNCH_BATCH 256u           /* holes per call */
#define BS_PUNCH_QUEUE_MAX (1u << 18) /* 10 MiB of queue (40-byte bs_hole) */

void bs_punch_range(uint64_t rec_off, uint32_t len, uint64_t *off, uint64_t *plen)
{
    uint64_t data = rec_off + BS_REC_HDR + 4ull * bs_blocks_for(len), end = data + len;
    uint64_t a = (data + BS_PUNCH_PAGE - 1) / BS_PUNCH_PAGE * BS_PUNCH_PAGE;
    uint64_t b = end / BS_PUNCH_PAGE * BS_PUNCH_PAGE;
    *off = a;
    *plen = b > a ? b - a : 0;
}

static int queue(bs_holes *h, const bs_hole *x)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        bs_hole *v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            return 0;
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n++] = *x;
    return 1;
}

void bs_punch_note(bs_store *bs, const bs_blob *b)
{
    bs_holes *h = &bs->holes;
    int64_t now = b->next ? cm_monotonic_ms() : 0;
    for (uint32_t i = 0; !h->disabled && i < b->next; i++) {
        bs_hole x = {b->ext[i].seg->num, 0, 0, bs->write_gen, now};
        bs_punch_range(b->ext[i].rec_off, b->ext[i].len, &x.off, &x.len);
        if (x.len == 0)
            continue;
        if ((h->n - h->head >= BS_PUNCH_QUEUE_MAX || !queue(h, &x)) && h->dropped++ == 0)
            CM_WARN("bs",
                    "%s: more deleted data than the hole-punching queue holds: some of it is "
                    "given back by compaction only",
                    bs->dir);
    }
}

/* Is [off, off+len) of fd a hole already? (lseek on the real descriptor: no data there) */
static int is_hole(int fd, uint64_t off, uint64_t len)
{
    off_t data = lseek(fd, (off_t)off, SEEK_DATA);
    return data < 0 ? errno == ENXIO : (uint64_t)data >= off + len;
}

void bs_punch_after_recovery(bs_store *bs)
{
    bs_holes *h = &bs->holes;
    size_t keep = 0;
    for (size_t i = h->head; i < h->n; i++) {
        const bs_seg *s = bs_seg_find(bs, h->v[i].seg);
        if (s && !is_hole(s->fd, h->v[i].off, h->v[i].len))
            h->v[keep++] = h->v[i];
    }
    h->head = 0;
    h->n = keep;
    if (keep == 0)
        return;
    CM_INFO("bs", "%s: %zu records of deleted blobs to punch (left by the last run)", bs->dir,
            keep);
    bs->write_gen++;
    int64_t now = cm_monotonic_ms();
    for (size_t i = 0; i < keep; i++) {
        h->v[i].gen = bs->write_gen;
        h->v[i].ms = now;
    }
    for (size_t i = 0; i < bs->nsegs; i++)
        bs->segs[i]->dirty = 1;
}

void bs_holes_release(bs_holes *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = h->head = 0;
}

static uint64_t synced_gen(bs_store *bs)
{
    pthread_mutex_lock(&bs->gc_mu);
    uint64_t g = bs->synced_gen;
    pthread_mutex_unlock(&bs->gc_mu);
    return g;
}

/* Pop the oldest range whose delete is durable (gen <= synced) and that was queued at or before
 * due_by: 0 when there is none. Ranges of segments that are gone already (and their space with
 * them) are dropped on the way, due or not. Caller holds sync_mu and append_mu. */
static int take_ready(bs_store *bs, uint64_t synced, int64_t due_by, bs_seg **seg, uint64_t *off,
                      uint64_t *len)
{
    bs_holes *h = &bs->holes;
    int found = 0;
    while (!found && h->head < h->n) {
        const bs_hole *x = &h->v[h->head];
        *seg = bs_seg_find(bs, x->seg);
        if (*seg && (x->gen > synced || x->ms > due_by))
            break;
        found = *seg != NULL;
        *off = x->off;
        *len = x->len;
        h->head++;
    }
    if (h->head == h->n) {
        h->head = h->n = 0;
    } else if (h->head > h->n / 2) {
        memmove(h->v, h->v + h->head, (h->n - h->head) * sizeof(*h->v));
        h->n -= h->head;
        h->head = 0;
    }
    return found;
}

/* Is the drive's filesystem short of space (punch everything durable at once)? Yes when statvfs
 * fails: space before discard batching. */
static int short_of_space(const bs_store *bs)
{
    struct statvfs sv;
    if (statvfs(bs->dir, &sv) != 0)
        return 1;
    uint64_t total = (uint64_t)sv.f_blocks * sv.f_frsize;
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    uint64_t floor = bs->holes.short_bytes ? bs->holes.short_bytes : CM_MAX(total / 10, 1ull << 30);
    return avail < floor;
}

/* Index past the last range queued at or before due_by (the queue is in time order too). */
static size_t due_end(const bs_holes *h, int64_t due_by)
{
    size_t lo = h->head, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->v[mid].ms <= due_by)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Punch one range; 0 when the filesystem cannot punch at all. */
static int punch_one(bs_store *bs, bs_seg *s, uint64_t off, uint64_t len)
{
    if (bs->io.punch(bs->io.ctx, s->fd, (off_t)off, (off_t)len) == 0) {
        pthread_mutex_lock(&bs->append_mu);
        s->punched += len;
        pthread_mutex_unlock(&bs->append_mu);
        __atomic_add_fetch(&bs->holes.punched, len, __ATOMIC_RELAXED);
        return 1;
    }
    if (errno == EOPNOTSUPP || errno == ENOSYS) {
        CM_INFO("bs",
                "%s: the filesystem cannot punch holes: deleted data is given back by segment "
                "reclaim and compaction only",
                bs->dir);
        return 0;
    }
    CM_WARN("bs", "%s/seg-%08u.cbs:%llu: punching %llu dead bytes failed: %s", bs->dir, s->num,
            (unsigned long long)off, (unsigned long long)len, strerror(errno));
    return 1; /* that range waits for compaction */
}

cm_err bs_punch_dead(bs_store *bs)
{
    pthread_mutex_lock(&bs->append_mu);
    if (bs->reserve_size < BS_RESERVE_BYTES)
        bs_reserve_fill(bs); /* deletes used it; holes or compaction may have made room again */
    int waiting = bs->holes.n > bs->holes.head;
    int64_t wait_ms = bs->holes.wait_ms;
    pthread_mutex_unlock(&bs->append_mu);
    if (!waiting)
        return CM_OK;
    /* statvfs outside the store's locks */
    int64_t due_by = wait_ms < 0 || short_of_space(bs) ? INT64_MAX : cm_monotonic_ms() - wait_ms;
    pthread_mutex_lock(&bs->append_mu);
    size_t end = due_end(&bs->holes, due_by);
    uint64_t newest = end > bs->holes.head ? bs->holes.v[end - 1].gen : 0; /* gen order too */
    pthread_mutex_unlock(&bs->append_mu);
    if (newest && synced_gen(bs) < newest) {
        cm_err e = bs_sync(bs); /* the tombstones first: see the design note */
        if (e != CM_OK)
            return e;
    }
    uint64_t synced = synced_gen(bs);
    int more = 1, works = 1;
    for (unsigned i = 0; more && works && i < BS_PUNCH_BATCH; i++) {
        /* sync_mu per hole: the segment cannot be unlinked under the punch, and a sync round
         * (a writer waiting to acknowledge) waits for one punch at most */
        bs_seg *s = NULL;
        uint64_t off = 0, len = 0;
        pthread_mutex_lock(&bs->sync_mu);
        pthread_mutex_lock(&bs->append_mu);
        more = take_ready(bs, synced, due_by, &s, &off, &len);
        pthread_mutex_unlock(&bs->append_mu);
        if (more)
            works = punch_one(bs, s, off, len);
        pthread_mutex_unlock(&bs->sync_mu);
    }
    pthread_mutex_lock(&bs->append_mu);
    if (!works) {
        bs->holes.disabled = 1;
        bs_holes_release(&bs->holes);
    }
    int due = bs->holes.n > bs->holes.head && bs->holes.v[bs->holes.head].ms <= due_by;
    pthread_mutex_unlock(&bs->append_mu);
    return due ? CM_AGAIN : CM_OK;
}

void bs_punch_stats(const bs_store *bs, bs_stats *out)
{
    for (size_t i = 0; i < bs->nsegs; i++) {
        const bs_seg *s = bs->segs[i];
        uint64_t used = s->size - CM_MIN(s->size, s->punched);
        /* what live records take besides their payload: header, one CRC per block, padding */
        uint64_t keep = BS_SEG_HDR + s->live_bytes + s->live_exts * (BS_REC_HDR + 4 + BS_ALIGN) +
                        4 * (s->live_bytes / BS_BLOCK);
        out->used_bytes += used;
        out->reclaimable_bytes += used > keep ? used - keep : 0;
    }
    out->punched_bytes = __atomic_load_n(&bs->holes.punched, __ATOMIC_RELAXED);
}

void bs_punch_count_holes(bs_store *bs)
{
    for (size_t i = 0; i < bs->nsegs; i++) {
        bs_seg *s = bs->segs[i];
        struct stat st; /* the io table has no stat; its descriptors are real ones */
        uint64_t held = fstat(s->fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : s->size;
        s->punched = held < s->size ? s->size - held : 0;
    }
}

/* ---- the reserve: room for tombstones on a full disk ---- */

void bs_reserve_fill(bs_store *bs)
{
    static const uint8_t zeros[BS_RESERVE_BYTES];
    if (bs->reserve_fd < 0) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", bs->dir, BS_RESERVE_FILE);
        bs->reserve_fd = bs->io.open(bs->io.ctx, path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (bs->reserve_fd < 0)
            return;
        struct stat st; /* an earlier run's reserve: the io table has no stat, fds are real */
        bs->reserve_size = fstat(bs->reserve_fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    }
    if (bs->reserve_size >= BS_RESERVE_BYTES)
        return;
    size_t n = (size_t)(BS_RESERVE_BYTES - bs->reserve_size);
    if (bs_write_full(&bs->io, bs->reserve_fd, zeros, n, bs->reserve_size) == CM_OK)
        bs->reserve_size = BS_RESERVE_BYTES;
    else if (bs->io.ftruncate(bs->io.ctx, bs->reserve_fd, (off_t)bs->reserve_size) != 0)
        CM_WARN("bs", "%s/%s: %s", bs->dir, BS_RESERVE_FILE, strerror(errno)); /* still full */
}

int bs_reserve_release(bs_store *bs)
{
    if (bs->reserve_fd < 0 || bs->reserve_size == 0 ||
        bs->io.ftruncate(bs->io.ctx, bs->reserve_fd, 0) != 0)
        return 0;
    CM_WARN("bs", "%s: disk full: the space kept for deletes (%llu bytes) is used now", bs->dir,
            (unsigned long long)bs->reserve_size);
    bs->reserve_size = 0;
    return 1;
}
