/*
 * bs_ops.c - read, delete (with reclaim of dead segments), sync, stats and blob ids.
 *
 * Reads hold idx_lock shared for the whole call: they find the extents covering the range, pread
 * the CRC32C values of the touched blocks and the blocks themselves (whole blocks, since a CRC
 * covers a whole block), verify each, and copy the wanted bytes out. A batch of blocks lying
 * entirely inside the range is read straight into the caller's buffer; only edge blocks go through
 * a scratch buffer. A mismatch is reported where it is found: segment file and byte offset.
 * bs_read_spans serves a range without reading it: the places of its bytes in the segment files
 * (for sendfile) and the CRC32C they were written with, combined from the stored block CRCs; only
 * a block the range cuts is read and verified, and whoever receives the bytes checks the rest.
 * bs_read_cached is bs_read for an event loop: every pread is preadv2(RWF_NOWAIT), and a range
 * the page cache does not hold whole is CM_AGAIN at the first miss, for a worker to read (so is
 * a CRC mismatch, unlogged: the worker's read reports it, once). bs_cached asks the page cache
 * (cachestat) whether a read of a range would wait on the disk, for a loop that sends the bytes
 * without reading them (a storage node's sendfile).
 *
 * Delete appends a 48-byte DELETE record, drops the blob from the index and unlinks every
 * reclaimable segment (bs_seg_reclaimable: not the active one, not being compacted, no live
 * extent, and no tombstone that still has work to do: a tombstone may go only once every segment
 * holding a record it kills is gone, since recovery would otherwise bring that blob back). When
 * that will unlink a segment, the tombstone is fdatasynced first. The data
 * of the blob's records is queued for hole punching (bs_drop_blob, bs_punch.c), done once the
 * tombstone is durable. The last BS_DEL_RING deleted ids are remembered with the time (under
 * idx_lock), so a "not found" can say whether and when the blob was deleted here
 * (bs_deleted_ago: diagnostics for a reader that met a missing cell).
 * Locking is described in bs_store.c.
 *
 * Sync (group commit, see bs_sync). A failed fdatasync is never retried: Linux reports a writeback
 * error once per open file and drops the pages it could not write, so a retry would return 0
 * for bytes that are gone. Instead the store fails for good (bs->failed, bs_error): every writer
 * waiting on that round or a later one gets the error, appends, deletes and compaction copies
 * are refused, and nothing is unlinked. Only reopening the store (a restart, which recovers
 * what the disk really holds) clears it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "bs_int.h"
#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"

#define BS_READ_BATCH 16u /* blocks per pread (1 MiB) */

/*
 * len bytes at off of s only if the page cache holds them all (preadv2 RWF_NOWAIT): CM_AGAIN
 * when any would wait on the disk, or could not be read at once for any reason (a short read, an
 * error, a file system without RWF_NOWAIT): the blocking read, which reports such things, follows
 * on a thread that may wait.
 */
static cm_err read_cached(const bs_seg *s, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        struct iovec v = {p, len};
        ssize_t n = preadv2(s->fd, &v, 1, (off_t)off, RWF_NOWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return CM_AGAIN;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return CM_OK;
}

static cm_err read_exact(bs_store *bs, const bs_seg *s, void *buf, size_t len, uint64_t off,
                         int cached)
{
    if (cached)
        return read_cached(s, buf, len, off);
    size_t got = 0;
    cm_err e = bs_read_full(&bs->io, s->fd, buf, len, off, &got);
    if (e == CM_OK && got != len) {
        CM_ERROR("bs", "%s/seg-%08u.cbs:%llu: segment ends inside a record", bs->dir, s->num,
                 (unsigned long long)(off + got));
        __atomic_add_fetch(&bs->corrupt_found, 1, __ATOMIC_RELAXED);
        e = CM_ERR_CORRUPT;
    }
    return e;
}

/* Verify blocks first..first+n of an extent held in buf (data bytes s..t of the record). */
static cm_err verify_blocks(bs_store *bs, const bs_ext *x, const uint8_t *crcs, const uint8_t *buf,
                            uint64_t s, uint64_t t, uint64_t data_off, int cached)
{
    for (uint64_t p = s, i = 0; p < t; p += BS_BLOCK, i++) {
        size_t n = (size_t)CM_MIN(BS_BLOCK, t - p);
        if (bs_crc32c(buf + (p - s), n) != cm_get_be32(crcs + 4 * i)) {
            if (cached)
                return CM_AGAIN; /* the blocking read that follows logs and counts it, once */
            CM_ERROR("bs", "%s/seg-%08u.cbs:%llu: block checksum mismatch", bs->dir, x->seg->num,
                     (unsigned long long)(data_off + p));
            __atomic_add_fetch(&bs->corrupt_found, 1, __ATOMIC_RELAXED);
            return CM_ERR_CORRUPT;
        }
    }
    return CM_OK;
}

/* File offset of extent x's first data byte (after the record header and its CRC table). */
static uint64_t ext_data_off(const bs_ext *x)
{
    return x->rec_off + BS_REC_HDR + 4ull * bs_blocks_for(x->len);
}

/* Copy bytes [a, b) of extent x's data into dst, verifying every block touched; with cached,
 * only from the page cache (read_cached). */
static cm_err read_ext(bs_store *bs, const bs_ext *x, uint64_t a, uint64_t b, uint8_t *dst,
                       uint8_t **scratch, int cached)
{
    uint64_t crc_off = x->rec_off + BS_REC_HDR;
    uint64_t data_off = ext_data_off(x);
    uint64_t blk = a / BS_BLOCK, last = (b - 1) / BS_BLOCK;
    uint8_t crcs[4 * BS_READ_BATCH];
    while (blk <= last) {
        uint64_t n = CM_MIN(last - blk + 1, BS_READ_BATCH);
        uint64_t s = blk * BS_BLOCK, t = CM_MIN((blk + n) * BS_BLOCK, (uint64_t)x->len);
        int direct = s >= a && t <= b;
        if (!direct && !*scratch && !(*scratch = malloc((size_t)BS_READ_BATCH * BS_BLOCK)))
            return CM_ERR_NOMEM;
        uint8_t *buf = direct ? dst + (s - a) : *scratch;
        cm_err e = read_exact(bs, x->seg, crcs, (size_t)(4 * n), crc_off + 4 * blk, cached);
        if (e == CM_OK)
            e = read_exact(bs, x->seg, buf, (size_t)(t - s), data_off + s, cached);
        if (e == CM_OK)
            e = verify_blocks(bs, x, crcs, buf, s, t, data_off, cached);
        if (e != CM_OK)
            return e;
        if (!direct) {
            uint64_t from = CM_MAX(s, a), to = CM_MIN(t, b);
            memcpy(dst + (from - a), buf + (from - s), (size_t)(to - from));
        }
        blk += n;
    }
    return CM_OK;
}

/*
 * Fold the CRC32C of data bytes [a, b) of extent x into *crc (cm_crc32c convention) from the
 * stored block CRCs; a block the range cuts is read and verified, and its part hashed.
 */
static cm_err ext_crc(bs_store *bs, const bs_ext *x, uint64_t a, uint64_t b, uint32_t *crc,
                      uint8_t **scratch)
{
    uint64_t crc_off = x->rec_off + BS_REC_HDR, data_off = ext_data_off(x);
    uint64_t blk = a / BS_BLOCK, last = (b - 1) / BS_BLOCK;
    uint8_t crcs[4 * BS_READ_BATCH];
    while (blk <= last) {
        uint64_t n = CM_MIN(last - blk + 1, BS_READ_BATCH);
        cm_err e = read_exact(bs, x->seg, crcs, (size_t)(4 * n), crc_off + 4 * blk, 0);
        for (uint64_t i = 0; e == CM_OK && i < n; i++) {
            uint64_t s = (blk + i) * BS_BLOCK, t = CM_MIN(s + BS_BLOCK, (uint64_t)x->len);
            uint64_t from = CM_MAX(s, a), to = CM_MIN(t, b);
            uint32_t part = cm_get_be32(crcs + 4 * i);
            if (from != s || to != t) { /* cut by the range: read and verify it, hash the part */
                if (!*scratch && !(*scratch = malloc(BS_BLOCK)))
                    return CM_ERR_NOMEM;
                e = read_exact(bs, x->seg, *scratch, (size_t)(t - s), data_off + s, 0);
                if (e == CM_OK)
                    e = verify_blocks(bs, x, crcs + 4 * i, *scratch, s, t, data_off, 0);
                if (e != CM_OK)
                    return e;
                part = cm_crc32c(0, *scratch + (from - s), (size_t)(to - from));
            }
            *crc = cm_crc32c_combine(*crc, part, to - from);
        }
        if (e != CM_OK)
            return e;
        blk += n;
    }
    return CM_OK;
}

/* The extent of b holding blob offset pos, its i-th or none: a hole is a lost record (logged). */
static const bs_ext *ext_at(bs_store *bs, const bs_blob *b, uint32_t i, uint64_t pos)
{
    const bs_ext *x = i < b->next ? &b->ext[i] : NULL;
    if (!x || x->boff > pos) {
        char hex[33];
        bs_id_hex(&b->id, hex);
        CM_ERROR("bs", "%s: blob %s has no data at offset %llu (lost record)", bs->dir, hex,
                 (unsigned long long)pos);
        return NULL;
    }
    return x;
}

static cm_err read_locked(bs_store *bs, const bs_blob *b, uint64_t off, uint8_t *buf, size_t len,
                          int cached)
{
    uint8_t *scratch = NULL;
    uint64_t pos = off, end = off + len;
    cm_err e = CM_OK;
    for (uint32_t i = bs_blob_first_ext(b, off); e == CM_OK && pos < end; i++) {
        const bs_ext *x = ext_at(bs, b, i, pos);
        if (!x) {
            e = CM_ERR_CORRUPT;
            break;
        }
        uint64_t to = CM_MIN(end, x->boff + x->len);
        if (to > pos)
            e = read_ext(bs, x, pos - x->boff, to - x->boff, buf + (pos - off), &scratch, cached);
        pos = to;
    }
    free(scratch);
    return e;
}

/* The blob id when it holds [off, off+len); NULL otherwise. Under idx_lock. */
static const bs_blob *blob_with(bs_store *bs, const bs_id *id, uint64_t off, uint64_t len)
{
    const bs_blob *b = bs_index_get(&bs->index, id);
    return b && off <= b->size && len <= b->size - off ? b : NULL;
}

static cm_err read_blob(bs_store *bs, const bs_id *id, uint64_t off, void *buf, size_t len,
                        int cached)
{
    pthread_rwlock_rdlock(&bs->idx_lock);
    const bs_blob *b = blob_with(bs, id, off, len);
    cm_err e = !b ? CM_ERR_NOTFOUND : len > 0 ? read_locked(bs, b, off, buf, len, cached) : CM_OK;
    pthread_rwlock_unlock(&bs->idx_lock);
    return e;
}

cm_err bs_read(bs_store *bs, const bs_id *id, uint64_t off, void *buf, size_t len)
{
    return read_blob(bs, id, off, buf, len, 0);
}

/* cachestat(2) (Linux 6.5): how many of a file range's pages the page cache holds. Neither the
 * call nor its structures are in this glibc's headers yet; its number is 451 on every
 * architecture (the unified table). */
#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif
typedef struct {
    uint64_t off, len;
} bs_cs_range;
typedef struct {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
} bs_cs;

int bs_no_cachestat; /* the kernel has no cachestat (or a filter refuses it): probe instead */

/* 1 when the page cache holds every page of bytes [off, off + len) of fd (len > 0). Without
 * cachestat: one byte of each BS_BLOCK and the last, read with RWF_NOWAIT (a page between them
 * may still be read from the disk by whoever reads the range). */
static int file_cached(int fd, uint64_t off, uint64_t len)
{
    long page = sysconf(_SC_PAGESIZE); /* from the auxiliary vector: no system call */
    if (page <= 0)
        page = 4096;
    if (!__atomic_load_n(&bs_no_cachestat, __ATOMIC_RELAXED)) {
        bs_cs_range r = {off, len};
        bs_cs cs;
        if (syscall(SYS_cachestat, fd, &r, &cs, 0) == 0)
            return cs.nr_cache >= (off + len - 1) / (uint64_t)page - off / (uint64_t)page + 1;
        if (errno != ENOSYS && errno != EPERM)
            return 0;
        __atomic_store_n(&bs_no_cachestat, 1, __ATOMIC_RELAXED);
    }
    for (uint64_t p = off;; p = CM_MIN(p + BS_BLOCK, off + len - 1)) {
        char c;
        struct iovec v = {&c, 1};
        if (preadv2(fd, &v, 1, (off_t)p, RWF_NOWAIT) != 1)
            return 0;
        if (p == off + len - 1)
            return 1;
    }
}

int bs_cached(bs_store *bs, const bs_id *id, uint64_t off, uint64_t len)
{
    if (bs->io.pread != bs_io_posix.pread || len == 0 || bs->in_memory)
        return 1; /* a test's I/O table reads where it always did; memory is the cache */
    int cached = 1;
    pthread_rwlock_rdlock(&bs->idx_lock);
    const bs_blob *b = blob_with(bs, id, off, len);
    uint64_t pos = off, end = off + len;
    for (uint32_t i = b ? bs_blob_first_ext(b, off) : 0; b && cached && pos < end; i++) {
        const bs_ext *x = i < b->next ? &b->ext[i] : NULL;
        if (!x || x->boff > pos)
            break; /* a lost record: the read reports it */
        uint64_t to = CM_MIN(end, x->boff + x->len);
        if (to > pos) { /* the blocks touched and their CRCs */
            uint64_t a = (pos - x->boff) / BS_BLOCK, z = (to - x->boff - 1) / BS_BLOCK;
            uint64_t s = a * BS_BLOCK, t = CM_MIN((z + 1) * BS_BLOCK, (uint64_t)x->len);
            cached = file_cached(x->seg->fd, x->rec_off + BS_REC_HDR + 4 * a, 4 * (z - a + 1)) &&
                     file_cached(x->seg->fd, ext_data_off(x) + s, t - s);
        }
        pos = to;
    }
    pthread_rwlock_unlock(&bs->idx_lock);
    return cached;
}

cm_err bs_read_cached(bs_store *bs, const bs_id *id, uint64_t off, void *buf, size_t len)
{
    if (bs->io.pread != bs_io_posix.pread)
        return CM_AGAIN; /* a test's I/O table: its reads may not be bypassed */
    return read_blob(bs, id, off, buf, len, !bs->in_memory); /* tmpfs refuses RWF_NOWAIT */
}

static cm_err spans_locked(bs_store *bs, const bs_blob *b, uint64_t off, uint64_t len,
                           bs_span *spans, size_t max, size_t *n, uint32_t *crc)
{
    uint8_t *scratch = NULL;
    uint64_t pos = off, end = off + len;
    uint32_t first = bs_blob_first_ext(b, off);
    cm_err e = CM_OK;
    if (bs_blob_first_ext(b, end - 1) - first >= max)
        return CM_ERR_TOOBIG; /* more extents than spans: the caller reads it instead */
    for (uint32_t i = first; e == CM_OK && pos < end; i++) {
        const bs_ext *x = ext_at(bs, b, i, pos);
        uint64_t to = x ? CM_MIN(end, x->boff + x->len) : pos;
        if (!x)
            e = CM_ERR_CORRUPT;
        else if (*n == max)
            e = CM_ERR_TOOBIG;
        else
            e = ext_crc(bs, x, pos - x->boff, to - x->boff, crc, &scratch);
        if (e != CM_OK)
            break;
        int fd = fcntl(x->seg->fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
            e = CM_AGAIN; /* out of descriptors for now: the caller reads the range instead */
            break;
        }
        if (fd < 0) {
            CM_ERROR("bs", "%s/seg-%08u.cbs: cannot duplicate its descriptor: %s", bs->dir,
                     x->seg->num, strerror(errno));
            e = CM_ERR_IO;
            break;
        }
        spans[(*n)++] = (bs_span){fd, ext_data_off(x) + (pos - x->boff), (uint32_t)(to - pos)};
        pos = to;
    }
    free(scratch);
    return e;
}

cm_err bs_read_spans(bs_store *bs, const bs_id *id, uint64_t off, uint64_t len, bs_span *spans,
                     size_t max, size_t *n, uint32_t *crc)
{
    *n = 0;
    *crc = 0;
    if (bs->io.pread != bs_io_posix.pread)
        return CM_ERR_UNSUPPORTED; /* the files would not hold what this store's reads see */
    pthread_rwlock_rdlock(&bs->idx_lock);
    const bs_blob *b = blob_with(bs, id, off, len);
    cm_err e = !b        ? CM_ERR_NOTFOUND
               : len > 0 ? spans_locked(bs, b, off, len, spans, max, n, crc)
                         : CM_OK;
    pthread_rwlock_unlock(&bs->idx_lock);
    if (e != CM_OK) {
        for (size_t i = 0; i < *n; i++)
            close(spans[i].fd);
        *n = 0;
        *crc = 0;
    }
    return e;
}

cm_err bs_size(bs_store *bs, const bs_id *id, uint64_t *size)
{
    pthread_rwlock_rdlock(&bs->idx_lock);
    const bs_blob *b = bs_index_get(&bs->index, id);
    if (b)
        *size = b->size;
    pthread_rwlock_unlock(&bs->idx_lock);
    return b ? CM_OK : CM_ERR_NOTFOUND;
}

int bs_deleted_ago(bs_store *bs, const bs_id *id, int64_t *ago_ms)
{
    int64_t at = -1;
    pthread_rwlock_rdlock(&bs->idx_lock);
    uint32_t n = bs->del_next < BS_DEL_RING ? bs->del_next : BS_DEL_RING;
    for (uint32_t i = 0; i < n; i++)
        if (memcmp(bs->del_ids[i].b, id->b, sizeof(id->b)) == 0 && bs->del_ms[i] > at)
            at = bs->del_ms[i];
    pthread_rwlock_unlock(&bs->idx_lock);
    if (at >= 0)
        *ago_ms = cm_monotonic_ms() - at;
    return at >= 0;
}

/* ---- list ---- */

/*
 * Seconds since the newest write to any segment holding a record of b (a segment's mtime is at
 * least the time of any write to it, so a blob never looks older than it is; compaction copying
 * it to the active segment makes it look young again). 0 when a segment cannot be stat'ed.
 */
static int64_t blob_age_s(const bs_blob *b, int64_t now_s)
{
    int64_t newest = 0;
    for (uint32_t i = 0; i < b->next; i++) {
        struct stat st;
        if (fstat(b->ext[i].seg->fd, &st) != 0)
            return 0;
        newest = CM_MAX(newest, (int64_t)st.st_mtime);
    }
    return newest > now_s ? 0 : now_s - newest;
}

cm_err bs_list(bs_store *bs, const bs_id *after, bs_id *ids, uint64_t *sizes, size_t max, size_t *n)
{
    return bs_list_aged(bs, after, ids, sizes, NULL, max, n);
}

cm_err bs_list_aged(bs_store *bs, const bs_id *after, bs_id *ids, uint64_t *sizes, int64_t *ages,
                    size_t max, size_t *n)
{
    int64_t now_s = (int64_t)time(NULL);
    *n = 0;
    if (max == 0)
        return CM_ERR_INVAL;
    pthread_rwlock_rdlock(&bs->idx_lock);
    for (size_t i = 0; i < bs->index.cap; i++) {
        const bs_blob *b = bs->index.slots[i];
        if (!b || (after && memcmp(b->id.b, after->b, 16) <= 0))
            continue;
        if (*n == max && memcmp(b->id.b, ids[max - 1].b, 16) >= 0)
            continue;
        /* keep the page sorted: binary search for the place, shift the tail (the last one falls
         * off a full page) */
        size_t lo = 0, hi = *n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (memcmp(ids[mid].b, b->id.b, 16) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t tail = (*n == max ? max - 1 : *n) - lo;
        memmove(&ids[lo + 1], &ids[lo], tail * sizeof(*ids));
        memmove(&sizes[lo + 1], &sizes[lo], tail * sizeof(*sizes));
        if (ages)
            memmove(&ages[lo + 1], &ages[lo], tail * sizeof(*ages));
        ids[lo] = b->id;
        sizes[lo] = b->size;
        if (ages)
            ages[lo] = blob_age_s(b, now_s);
        if (*n < max)
            (*n)++;
    }
    pthread_rwlock_unlock(&bs->idx_lock);
    return CM_OK;
}

/* ---- delete ---- */

static cm_err write_tombstone(bs_store *bs, const bs_id *id)
{
    cm_err e = bs_ensure_room(bs, BS_REC_HDR);
    if (e != CM_OK)
        return e;
    bs_seg *a = bs->active;
    uint8_t hdr[BS_REC_HDR];
    bs_rec_hdr h = {BS_REC_DELETE, *id, 0, 0, 0};
    bs_rec_encode(&h, a->salt, hdr);
    e = bs_write_full(&bs->io, a->fd, hdr, sizeof(hdr), a->size);
    if (e != CM_OK) {
        if (bs->io.ftruncate(bs->io.ctx, a->fd, (off_t)a->size) != 0)
            CM_ERROR("bs", "%s: cannot cut a failed tombstone: %s", bs->dir, strerror(errno));
        return e;
    }
    a->size += BS_REC_HDR;
    a->tombs++;
    a->dirty = 1;
    bs->write_gen++;
    return CM_OK;
}

bs_seg *bs_seg_find(const bs_store *bs, uint32_t num)
{
    size_t lo = 0, hi = bs->nsegs; /* segs are sorted by number */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (bs->segs[mid]->num == num)
            return bs->segs[mid];
        if (bs->segs[mid]->num < num)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int bs_seg_refs_live(const bs_store *bs, const bs_seg *s)
{
    for (uint32_t i = 0; i < s->nrefs; i++)
        if (s->refs[i] != s->num && bs_seg_find(bs, s->refs[i]))
            return 1;
    return 0;
}

cm_err bs_seg_add_ref(bs_seg *s, uint32_t num)
{
    uint32_t i = 0;
    while (i < s->nrefs && s->refs[i] < num)
        i++;
    if (num == s->num || (i < s->nrefs && s->refs[i] == num))
        return CM_OK;
    if (s->nrefs == s->caprefs) {
        uint32_t cap = s->caprefs ? s->caprefs * 2 : 4;
        uint32_t *n = realloc(s->refs, cap * sizeof(*n));
        if (!n)
            return CM_ERR_NOMEM;
        s->refs = n;
        s->caprefs = cap;
    }
    memmove(&s->refs[i + 1], &s->refs[i], (s->nrefs - i) * sizeof(*s->refs));
    s->refs[i] = num;
    s->nrefs++;
    return CM_OK;
}

cm_err bs_seg_add_blob_refs(bs_store *bs, bs_seg *s, const bs_blob *b)
{
    cm_err e = CM_OK;
    for (uint32_t i = 0; e == CM_OK && i < b->next; i++)
        if (i == 0 || b->ext[i - 1].seg != b->ext[i].seg)
            e = bs_seg_add_ref(s, b->ext[i].seg->num);
    /* A segment being compacted may still hold an old copy of a moved record. */
    if (e == CM_OK && bs->cseg)
        e = bs_seg_add_ref(s, bs->cseg->num);
    return e;
}

int bs_seg_reclaimable(const bs_store *bs, const bs_seg *s)
{
    if (s == bs->active || s->busy || s->live_exts > 0 || (s->tombs > 0 && s->stuck))
        return 0;
    return s->tombs == 0 || !bs_seg_refs_live(bs, s);
}

void bs_reclaim(bs_store *bs)
{
    int pending = 0; /* unlinks not yet made durable by a directory sync */
    if (bs_error(bs) != CM_OK)
        return; /* what is on disk is not what the index says: unlink nothing */
    for (size_t i = 0; i < bs->nsegs;) {
        bs_seg *s = bs->segs[i];
        if (!bs_seg_reclaimable(bs, s)) {
            i++;
            continue;
        }
        /* Tombstones may only disappear once the older records they kill are gone for good. */
        if (s->tombs > 0 && pending) {
            if (bs_sync_dir(bs) != CM_OK) {
                CM_WARN("bs", "%s: directory sync failed; tombstone segments kept", bs->dir);
                return;
            }
            pending = 0;
        }
        bs_seg_destroy(bs, s);
        pending = 1;
        i = 0; /* removing the oldest may make the next one reclaimable */
    }
    if (pending && bs_sync_dir(bs) != CM_OK)
        CM_WARN("bs", "%s: directory sync after reclaim failed", bs->dir);
}

/*
 * A failed fdatasync: the kernel may have dropped the pages it could not write and will not
 * report it again, so no later sync can vouch for anything written before it. The store fails
 * for good (until it is reopened): every waiting or later bs_sync with unsynced writes, every
 * append and delete get the error, and nothing is unlinked.
 */
static cm_err sync_failed(bs_store *bs, const bs_seg *s, int err)
{
    cm_err e = CM_ERR_IO;
    CM_ERROR("bs", "%s/seg-%08u.cbs: fdatasync: %s; the store takes no more writes until reopened",
             bs->dir, s->num, strerror(err));
    pthread_mutex_lock(&bs->gc_mu);
    if (bs->failed == CM_OK)
        bs->failed = e;
    pthread_mutex_unlock(&bs->gc_mu);
    return e;
}

cm_err bs_error(bs_store *bs)
{
    pthread_mutex_lock(&bs->gc_mu);
    cm_err e = bs->failed;
    pthread_mutex_unlock(&bs->gc_mu);
    return e;
}

/* fdatasync every dirty segment in number order; caller holds sync_mu and append_mu. */
static cm_err sync_all_locked(bs_store *bs)
{
    if (bs_sync_new_segments(bs) != CM_OK)
        return CM_ERR_IO;
    for (size_t i = 0; i < bs->nsegs; i++) {
        bs_seg *s = bs->segs[i];
        if (s->dirty && bs->io.fdatasync(bs->io.ctx, s->fd) != 0)
            return sync_failed(bs, s, errno);
        s->dirty = 0;
    }
    pthread_mutex_lock(&bs->gc_mu);
    if (bs->write_gen > bs->synced_gen)
        bs->synced_gen = bs->write_gen;
    pthread_mutex_unlock(&bs->gc_mu);
    return CM_OK;
}

/* Does dropping the blob leave a segment to unlink? Caller holds append_mu. */
static int frees_segment(const bs_store *bs, const bs_blob *b)
{
    for (uint32_t i = 0; i < b->next; i++) {
        const bs_seg *s = b->ext[i].seg;
        if (i > 0 && b->ext[i - 1].seg == s)
            continue; /* extents come in runs per segment: count each run's segment once */
        uint64_t mine = 0;
        for (uint32_t j = 0; j < b->next; j++)
            mine += b->ext[j].seg == s;
        if (s != bs->active && !s->busy && s->live_exts == mine)
            return 1;
    }
    return 0;
}

cm_err bs_delete(bs_store *bs, const bs_id *id)
{
    pthread_mutex_lock(&bs->sync_mu);
    pthread_mutex_lock(&bs->append_mu);
    cm_err e = CM_OK;
    const bs_blob *b = bs_index_get(&bs->index, id);
    if (b) {
        int frees = frees_segment(bs, b);
        e = write_tombstone(bs, id);
        if (e == CM_ERR_NOSPC && bs_reserve_release(bs)) /* a full disk must still take deletes */
            e = write_tombstone(bs, id);
        if (e == CM_OK && bs_seg_add_blob_refs(bs, bs->active, b) != CM_OK)
            bs->active->stuck = 1; /* no memory for refs: never let this segment go */
        /* The tombstone must be durable before a segment holding the blob's records is
         * unlinked, or a crash could bring back half of an acknowledged blob. Every dirty
         * segment is synced, in order, so no other blob is left with a durable later part of an
         * append whose earlier part is not. */
        if (e == CM_OK && frees)
            e = sync_all_locked(bs);
        if (e == CM_OK) {
            pthread_rwlock_wrlock(&bs->idx_lock);
            bs_drop_blob(bs, bs_index_remove(&bs->index, id));
            bs->del_ids[bs->del_next % BS_DEL_RING] = *id;
            bs->del_ms[bs->del_next++ % BS_DEL_RING] = cm_monotonic_ms();
            pthread_rwlock_unlock(&bs->idx_lock);
            bs_reclaim(bs);
        }
    }
    pthread_mutex_unlock(&bs->append_mu);
    pthread_mutex_unlock(&bs->sync_mu);
    return e;
}

/* ---- sync ---- */

/*
 * In segment-number order, and stopping at the first failure: an append that spans segments
 * then never becomes durable in its later part without its earlier part (no holes after a crash).
 */
typedef struct {
    bs_seg *seg;
    uint64_t size; /* its size when the round began: durable once the round succeeds */
} sync_ent;

static cm_err sync_segments(bs_store *bs, const sync_ent *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (bs->io.fdatasync(bs->io.ctx, list[i].seg->fd) != 0)
            return sync_failed(bs, list[i].seg, errno); /* no retry: its pages may be gone */
    return CM_OK;
}

/*
 * One round: fdatasync every dirty segment; *target = the write generation it covers. Then each
 * synced segment's header gets its synced-up-to mark (durable with its next fdatasync), which
 * lets recovery tell a torn tail from corruption.
 */
static cm_err sync_round(bs_store *bs, uint64_t *target)
{
    pthread_mutex_lock(&bs->sync_mu);
    pthread_mutex_lock(&bs->append_mu);
    *target = bs->write_gen;
    size_t n = 0;
    sync_ent *list = malloc((bs->nsegs ? bs->nsegs : 1) * sizeof(*list));
    for (size_t i = 0; list && i < bs->nsegs; i++) {
        if (bs->segs[i]->dirty) {
            bs->segs[i]->dirty = 0;
            list[n++] = (sync_ent){bs->segs[i], bs->segs[i]->size};
        }
    }
    pthread_mutex_unlock(&bs->append_mu);
    cm_err e = list ? sync_segments(bs, list, n) : CM_ERR_NOMEM;
    if (e == CM_OK && n > 0) {
        pthread_mutex_lock(&bs->append_mu);
        for (size_t i = 0; i < n; i++)
            bs_seg_write_mark(bs, list[i].seg, list[i].size);
        pthread_mutex_unlock(&bs->append_mu);
    }
    free(list);
    pthread_mutex_unlock(&bs->sync_mu);
    return e;
}

/*
 * Group commit: one caller at a time runs a round (the leader); everyone else waits on gc_cond
 * and is released by the broadcast at the end of the first round that covers its appends. A
 * waiter whose appends came after the round's snapshot leads the next round. Waking all at once
 * (rather than handing a mutex from waiter to waiter) keeps a convoy of 64 writers from
 * serialising on wake-ups between fdatasyncs.
 */
cm_err bs_sync(bs_store *bs)
{
    if (bs_sync_new_segments(bs) != CM_OK) /* the names of new segments first */
        return CM_ERR_IO;
    pthread_mutex_lock(&bs->append_mu);
    uint64_t want = bs->write_gen;
    pthread_mutex_unlock(&bs->append_mu);

    cm_err e = CM_OK;
    pthread_mutex_lock(&bs->gc_mu);
    bs->sync_calls++;
    while (bs->synced_gen < want) {
        if (bs->failed != CM_OK) { /* this round or an earlier one failed: never retried */
            e = bs->failed;
            break;
        }
        if (bs->syncing) {
            pthread_cond_wait(&bs->gc_cond, &bs->gc_mu);
            continue;
        }
        bs->syncing = 1;
        pthread_mutex_unlock(&bs->gc_mu);
        uint64_t target = 0;
        e = sync_round(bs, &target);
        pthread_mutex_lock(&bs->gc_mu);
        bs->syncing = 0;
        if (e == CM_OK && target > bs->synced_gen) {
            bs->sync_rounds++;
            bs->sync_round_gens += target - bs->synced_gen;
            bs->synced_gen = target;
        }
        pthread_cond_broadcast(&bs->gc_cond);
        if (e != CM_OK)
            break;
    }
    pthread_mutex_unlock(&bs->gc_mu);
    return e;
}

/* ---- stats and ids ---- */

void bs_get_stats(bs_store *bs, bs_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&bs->append_mu);
    pthread_rwlock_rdlock(&bs->idx_lock);
    out->blobs = bs->index.count;
    out->live_bytes = bs->live_bytes;
    out->segments = (uint32_t)bs->nsegs;
    for (size_t i = 0; i < bs->nsegs; i++)
        out->disk_bytes += bs->segs[i]->size;
    bs_punch_stats(bs, out);
    out->corrupt_found = __atomic_load_n(&bs->corrupt_found, __ATOMIC_RELAXED);
    out->appends = bs->appends;
    out->append_bytes = bs->append_bytes;
    pthread_rwlock_unlock(&bs->idx_lock);
    pthread_mutex_unlock(&bs->append_mu);
    pthread_mutex_lock(&bs->gc_mu);
    out->sync_calls = bs->sync_calls;
    out->sync_rounds = bs->sync_rounds;
    out->sync_round_writes = bs->sync_round_gens;
    pthread_mutex_unlock(&bs->gc_mu);
    out->torn_cut = bs->torn_cut; /* set at open only */
    out->compacted = __atomic_load_n(&bs->compacted_segs, __ATOMIC_RELAXED);
    out->compact_moved = __atomic_load_n(&bs->compact_moved, __ATOMIC_RELAXED);
    out->compact_freed = __atomic_load_n(&bs->compact_freed, __ATOMIC_RELAXED);
}

cm_err bs_id_new(bs_id *out)
{
    return cm_random(out->b, sizeof(out->b));
}

void bs_id_hex(const bs_id *id, char out[33])
{
    cm_hex_encode(id->b, sizeof(id->b), out);
}
