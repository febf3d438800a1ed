/*
 * bs_fsck.c - offline check (and repair) of one drive directory; `cairn fsck` drives it.
 *
 * The check never writes: it takes DIR/LOCK (so a running store and fsck exclude each other),
 * walks every segment like recovery does (segment header; records front to back; an invalid
 * stretch is skipped to the next record that validates, and counted - or, at the end of the last
 * segment, counted as a torn tail unless it starts before the segment's synced-up-to mark, which
 * makes it corruption), reads every data block of every valid PUT record and checks
 * its CRC32C, and feeds the records to the same index rules as recovery (bs_apply_record:
 * extents sorted, a later compaction copy wins, overlaps ignored and counted). A live blob with a
 * hole or with a bad block is reported as damaged on this drive. (The bad-block list is a plain
 * array searched per live blob: fine for the handful a sick drive shows.) A record with blocks
 * that fail their CRC is judged when the scan is done, once it is known whether its blob is live:
 *   - live: its bad blocks count (bad_blocks), the blob is damaged, the segment needs a rewrite;
 *   - dead (deleted): no data is lost. A failing block that is zero wherever bs_punch.c would punch
 *     a hole means the record's data was punched after the delete (counted in `punched`); any
 *     other counts in dead_bad_blocks, reported but not a problem: bit rot in garbage, such as
 *     the damaged copy a scrub repair replaced and deleted, whose hole waits for the punch grace
 *     period (bs_punch.c).
 *
 * Repair rewrites each segment that had a problem: its valid records whose blocks all verify are
 * copied, unchanged, behind a fresh segment header into seg-N.cbs.fsck; that file is fdatasynced,
 * renamed over seg-N.cbs and the directory fsynced, so a crash leaves the old or the new segment.
 * A dropped record leaves a hole in its blob (reads of it fail with CM_ERR_CORRUPT, so the
 * gateway rebuilds that range from the other cells of its stripe). Then the drive is checked
 * again. fsck does not go through the io table: it is an offline tool on plain files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bs_int.h"
#include "cm_log.h"
#include "cm_util.h"

#define FK_BATCH 16u /* blocks per read */

typedef struct {
    bs_store *bs; /* a bare store: dir, posix io, index; no threads */
    bs_fsck_report *r;
    bs_fsck_progress cb;
    void *arg;
    uint64_t done, total;
    uint8_t *buf; /* FK_BATCH blocks */
    bs_id *bad;   /* blobs with a record that has a bad block */
    size_t nbad, capbad;
    struct fk_failed *failed; /* records with failing blocks, judged after the scan */
    size_t nfailed, capfailed;
    const bs_orphan_check *oc; /* orphan sweep: which blobs records name; NULL = none */
    bs_orphan_report *orep;
    bs_id *orphans; /* found by the sweep, deleted by repair */
    size_t norphans;
} fk_ctx;

typedef struct {
    bs_seg *s;
    int last;
    int copy_fd;       /* >= 0: copy good records here (repair) */
    uint64_t copy_off; /* next offset in the copy */
    int problem;       /* set by the check: the segment needs a rewrite */
} fk_seg;

/* A record with failing blocks: bad ones, and ones that are zero where bs_punch.c punches. */
struct fk_failed {
    bs_id id;
    fk_seg *fs;
    uint64_t bad, zeroed;
};

/* Is every byte of block [a, b) (file offsets, data in buf) that a hole could cover zero? */
static int punched_block(const bs_rec_hdr *h, uint64_t pos, const uint8_t *buf, uint64_t a,
                         uint64_t b)
{
    uint64_t po = 0, pl = 0;
    bs_punch_range(pos, h->len, &po, &pl);
    uint64_t from = CM_MAX(a, po), to = CM_MIN(b, po + pl);
    if (from >= to)
        return 0;
    for (uint64_t i = from; i < to; i++)
        if (buf[i - a])
            return 0;
    return 1;
}

/*
 * Verify every block of the PUT record at pos; returns the number of bad blocks. Blocks that fail
 * but read as punched are counted in *zeroed instead (a deleted blob's, unless count_blobs finds
 * the blob live).
 */
static uint64_t verify_record(fk_ctx *c, const bs_seg *s, const bs_rec_hdr *h, uint64_t pos,
                              uint64_t *zeroed)
{
    uint8_t crcs[4 * FK_BATCH];
    uint64_t crc_off = pos + BS_REC_HDR, data_off = crc_off + 4ull * h->nblocks, bad = 0;
    for (uint32_t blk = 0; blk < h->nblocks; blk += FK_BATCH) {
        uint32_t n = CM_MIN(FK_BATCH, h->nblocks - blk);
        uint64_t from = (uint64_t)blk * BS_BLOCK;
        uint64_t len = CM_MIN((uint64_t)n * BS_BLOCK, h->len - from);
        size_t got1 = 0, got2 = 0;
        if (bs_read_full(&bs_io_posix, s->fd, crcs, 4 * n, crc_off + 4ull * blk, &got1) != CM_OK ||
            bs_read_full(&bs_io_posix, s->fd, c->buf, (size_t)len, data_off + from, &got2) !=
                CM_OK ||
            got1 != 4 * n || got2 != len)
            return bad + n;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t a = (uint64_t)i * BS_BLOCK, b = CM_MIN(a + BS_BLOCK, len);
            if (bs_crc32c(c->buf + a, (size_t)(b - a)) == cm_get_be32(crcs + 4 * i))
                continue;
            uint64_t at = data_off + from + a;
            if (punched_block(h, pos, c->buf + a, at, at + (b - a))) {
                (*zeroed)++;
            } else {
                CM_ERROR("fsck", "%s/seg-%08u.cbs:%llu: block checksum mismatch", c->bs->dir,
                         s->num, (unsigned long long)(data_off + from + a));
                bad++;
            }
        }
    }
    return bad;
}

/* Make room for one more element in *v (n used of *cap, each size bytes). */
static cm_err grow(void *v, size_t *cap, size_t n, size_t size)
{
    void **p = v;
    if (n < *cap)
        return CM_OK;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *nv = realloc(*p, ncap * size);
    if (!nv)
        return CM_ERR_NOMEM;
    *p = nv;
    *cap = ncap;
    return CM_OK;
}

static cm_err add_bad(fk_ctx *c, const bs_id *id)
{
    cm_err e = grow(&c->bad, &c->capbad, c->nbad, sizeof(*c->bad));
    if (e == CM_OK)
        c->bad[c->nbad++] = *id;
    return e;
}

static cm_err copy_record(fk_seg *fs, uint64_t pos, uint64_t len)
{
    uint8_t *rec = malloc((size_t)len);
    size_t got = 0;
    cm_err e =
        rec ? bs_read_full(&bs_io_posix, fs->s->fd, rec, (size_t)len, pos, &got) : CM_ERR_NOMEM;
    if (e == CM_OK && got != len)
        e = CM_ERR_IO;
    if (e == CM_OK)
        e = bs_write_full(&bs_io_posix, fs->copy_fd, rec, (size_t)len, fs->copy_off);
    fs->copy_off += len;
    free(rec);
    return e;
}

/* One valid record: count, verify, index (check pass) or copy (repair pass). */
static cm_err take_record(fk_ctx *c, fk_seg *fs, const bs_rec_hdr *h, uint64_t pos)
{
    bs_fsck_report *r = c->r;
    uint64_t zeroed = 0;
    uint64_t bad = h->type == BS_REC_PUT && !c->oc ? verify_record(c, fs->s, h, pos, &zeroed) : 0;
    if (fs->copy_fd >= 0) /* a punched record goes too: dead, or (live) as good as bad */
        return bad || zeroed ? CM_OK : copy_record(fs, pos, bs_rec_size(h->len));
    r->records++;
    r->tombstones += h->type == BS_REC_DELETE;
    cm_err e = CM_OK;
    if (bad || zeroed) {
        e = grow(&c->failed, &c->capfailed, c->nfailed, sizeof(*c->failed));
        if (e == CM_OK)
            c->failed[c->nfailed++] = (struct fk_failed){h->id, fs, bad, zeroed};
    }
    return e == CM_OK ? bs_apply_record(c->bs, h, fs->s, pos) : e;
}

static cm_err scan(fk_ctx *c, fk_seg *fs)
{
    bs_seg *s = fs->s;
    bs_fsck_report *r = c->r;
    int check = fs->copy_fd < 0;
    if (check && bs_seg_load_header(c->bs, s) <= 0) {
        fs->problem = 1;
        if (s->size < BS_SEG_HDR)
            r->torn_bytes += s->size; /* creation cut short by a crash */
        else
            r->bad_headers++;
    }
    cm_err e = CM_OK;
    uint64_t pos = BS_SEG_HDR;
    while (e == CM_OK && pos < s->size) {
        uint8_t raw[BS_REC_HDR];
        size_t got = 0;
        bs_rec_hdr h;
        e = bs_read_full(&bs_io_posix, s->fd, raw, sizeof(raw), pos, &got);
        if (e == CM_OK && got == sizeof(raw) && bs_rec_decode(raw, s->salt, &h) == CM_OK &&
            bs_rec_size(h.len) <= s->size - pos) {
            e = take_record(c, fs, &h, pos);
            pos += bs_rec_size(h.len);
        } else if (e == CM_OK) {
            uint64_t next = 0;
            int found =
                bs_find_next_record(&bs_io_posix, s->fd, s->salt, pos + BS_ALIGN, s->size, &next);
            if (check) {
                fs->problem = 1;
                if (!found && fs->last && pos >= s->synced) /* before the mark: corruption */
                    r->torn_bytes += s->size - pos;
                else
                    r->bad_regions++;
            }
            pos = found ? next : s->size;
        }
        if (check && c->cb)
            c->cb(c->arg, c->done + pos, c->total);
    }
    c->done += s->size;
    return e;
}

/* Rewrite a segment with only its good records (see the design note). */
static cm_err rewrite(fk_ctx *c, fk_seg *fs)
{
    char path[4096], tmp[4200];
    uint8_t hdr[BS_SEG_HDR];
    bs_seg_path(c->bs, fs->s->num, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.fsck", path);
    fs->copy_fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fs->copy_fd < 0)
        return cm_err_from_errno(errno);
    bs_seg_hdr_encode(fs->s->num, fs->s->salt, 0, hdr);
    cm_err e = bs_write_full(&bs_io_posix, fs->copy_fd, hdr, sizeof(hdr), 0);
    fs->copy_off = BS_SEG_HDR;
    if (e == CM_OK)
        e = scan(c, fs);
    bs_seg_hdr_encode(fs->s->num, fs->s->salt, fs->copy_off, hdr); /* all of it: synced below */
    if (e == CM_OK)
        e = bs_write_full(&bs_io_posix, fs->copy_fd, hdr, sizeof(hdr), 0);
    if (e == CM_OK && fdatasync(fs->copy_fd) != 0)
        e = cm_err_from_errno(errno);
    close(fs->copy_fd);
    fs->copy_fd = -1;
    if (e == CM_OK && rename(tmp, path) != 0)
        e = cm_err_from_errno(errno);
    if (e == CM_OK)
        e = bs_sync_dir(c->bs);
    if (e != CM_OK) {
        unlink(tmp);
        return e;
    }
    CM_INFO("fsck", "%s: rewrote with its %llu good bytes", path, (unsigned long long)fs->copy_off);
    c->r->rewritten++;
    return CM_OK;
}

static cm_err open_segs(fk_ctx *c, fk_seg **out, size_t *n, int rw)
{
    uint32_t *nums = NULL;
    cm_err e = bs_list_segments(c->bs->dir, &nums, n);
    fk_seg *fs = e == CM_OK ? calloc(*n ? *n : 1, sizeof(*fs)) : NULL;
    if (e == CM_OK && !fs)
        e = CM_ERR_NOMEM;
    for (size_t i = 0; e == CM_OK && i < *n; i++) {
        char path[4096];
        struct stat st;
        bs_seg *s = calloc(1, sizeof(*s));
        fs[i] = (fk_seg){s, i + 1 == *n, -1, 0, 0};
        if (!s || bs_segs_push(c->bs, s) != CM_OK) {
            free(s);
            fs[i].s = NULL;
            e = CM_ERR_NOMEM;
            break;
        }
        s->num = nums[i];
        bs_seg_path(c->bs, s->num, path, sizeof(path));
        s->fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (s->fd < 0 || fstat(s->fd, &st) != 0)
            e = cm_err_from_errno(errno);
        else
            s->size = (uint64_t)st.st_size;
        c->total += s->size;
    }
    free(nums);
    *out = fs;
    return e;
}

static cm_err count_blobs(fk_ctx *c)
{
    bs_finish_blobs(c->bs);
    const bs_index *ix = &c->bs->index;
    /* Failing blocks lose data only in a live blob (see the design note). */
    for (size_t i = 0; i < c->nfailed; i++) {
        struct fk_failed *f = &c->failed[i];
        if (!bs_index_get(ix, &f->id)) {
            c->r->punched += f->bad == 0;
            c->r->dead_bad_blocks += f->bad;
            continue;
        }
        if (f->zeroed)
            CM_ERROR("fsck", "%s/seg-%08u.cbs: a record of a live blob reads as zeros", c->bs->dir,
                     f->fs->s->num);
        c->r->bad_blocks += f->bad + f->zeroed;
        f->fs->problem = 1;
        if (add_bad(c, &f->id) != CM_OK)
            return CM_ERR_NOMEM;
    }
    for (size_t i = 0; i < ix->cap; i++) {
        const bs_blob *b = ix->slots[i];
        if (!b)
            continue;
        int damaged = b->damaged;
        for (size_t j = 0; j < c->nbad && !damaged; j++)
            damaged = memcmp(c->bad[j].b, b->id.b, sizeof(b->id.b)) == 0;
        c->r->live_blobs++;
        c->r->live_bytes += b->size;
        c->r->bad_live_blobs += damaged;
    }
    c->r->overlaps = c->bs->corrupt_found;
    return CM_OK;
}

static void release(bs_store *bs)
{
    for (size_t i = 0; i < bs->nsegs; i++) {
        if (bs->segs[i]->fd >= 0)
            close(bs->segs[i]->fd);
        free(bs->segs[i]->refs);
        free(bs->segs[i]);
    }
    free(bs->segs);
    bs->segs = NULL;
    bs->nsegs = bs->capsegs = 0;
    bs_index_release(&bs->index);
    bs->corrupt_found = 0;
    bs->live_bytes = 0;
}

/*
 * Age of blob b: seconds since the newest write to the segment holding its last record (a
 * segment's mtime is at least the time any of its records was written, so this never makes a
 * blob look older than it is).
 */
static int64_t blob_age_s(const bs_blob *b, int64_t now_s)
{
    struct stat st;
    if (b->next == 0 || fstat(b->ext[b->next - 1].seg->fd, &st) != 0)
        return 0;
    return now_s - (int64_t)st.st_mtime;
}

/* The orphan sweep: live blobs of the index that no record names, older than the grace period. */
static cm_err find_orphans(fk_ctx *c)
{
    const bs_index *ix = &c->bs->index;
    int64_t now_s = (int64_t)time(NULL);
    for (size_t i = 0; i < ix->cap; i++) {
        const bs_blob *b = ix->slots[i];
        if (!b)
            continue;
        c->orep->blobs++;
        if (c->oc->live(c->oc->arg, &b->id))
            continue;
        if (blob_age_s(b, now_s) < c->oc->grace_s) {
            c->orep->young++;
            continue;
        }
        char hex[33];
        bs_id_hex(&b->id, hex);
        CM_INFO("fsck", "%s: blob %s (%llu bytes) is named by no record: orphan", c->bs->dir, hex,
                (unsigned long long)b->size);
        bs_id *n = realloc(c->orphans, (c->norphans + 1) * sizeof(*n));
        if (!n)
            return CM_ERR_NOMEM;
        c->orphans = n;
        c->orphans[c->norphans++] = b->id;
        c->orep->orphans++;
        c->orep->orphan_bytes += b->size;
    }
    return CM_OK;
}

/* Delete the orphans through a live store (its recovery, tombstones and reclaim), then sync. */
static cm_err reclaim_orphans(fk_ctx *c, const char *dir)
{
    bs_options opt = {.compact_rate = -1};
    bs_store *bs = NULL;
    cm_err e = bs_open(dir, &opt, &bs);
    for (size_t i = 0; e == CM_OK && i < c->norphans; i++)
        e = bs_delete(bs, &c->orphans[i]);
    if (e == CM_OK)
        e = bs_sync(bs);
    if (e == CM_OK)
        c->orep->reclaimed = c->norphans;
    bs_close(bs);
    return e;
}

/* One pass over the drive; with repair, rewrite what needs it. */
static cm_err check(fk_ctx *c, int repair)
{
    fk_seg *fs = NULL;
    size_t n = 0;
    memset(c->r, 0, sizeof(*c->r));
    c->done = c->total = 0;
    c->nbad = c->nfailed = 0;
    cm_err e = bs_index_init(&c->bs->index);
    if (e == CM_OK)
        e = open_segs(c, &fs, &n, repair);
    for (size_t i = 0; e == CM_OK && i < n; i++)
        e = scan(c, &fs[i]);
    if (e == CM_OK) {
        c->r->segments = (uint32_t)n;
        c->r->bytes = c->total;
        e = count_blobs(c);
    }
    if (e == CM_OK && c->oc)
        e = find_orphans(c);
    uint32_t rewritten = 0;
    for (size_t i = 0; e == CM_OK && repair && i < n; i++) {
        if (fs[i].problem) {
            e = rewrite(c, &fs[i]);
            rewritten++;
        }
    }
    free(fs);
    release(c->bs);
    c->r->rewritten = rewritten;
    return e;
}

/* Set up a bare store on dir, take its lock, check (and repair); the lock is released after. */
static cm_err run(fk_ctx *c, const char *dir, int repair)
{
    bs_fsck_report *r = c->r;
    bs_store *bs = calloc(1, sizeof(*bs));
    c->buf = malloc((size_t)FK_BATCH * BS_BLOCK);
    cm_err e = (bs && c->buf) ? CM_OK : CM_ERR_NOMEM;
    if (e == CM_OK) {
        c->bs = bs;
        bs->io = bs_io_posix;
        bs->lock_fd = -1;
        bs->holes.disabled = 1; /* a check punches nothing */
        bs->dir = strdup(dir);
        e = bs->dir ? bs_take_lock(bs) : CM_ERR_NOMEM;
    }
    if (e == CM_OK)
        e = check(c, repair);
    if (e == CM_OK && repair && r->rewritten > 0) {
        uint32_t rewritten = r->rewritten;
        e = check(c, 0); /* report what the drive holds now */
        r->rewritten = rewritten;
    }
    if (bs) {
        if (bs->lock_fd >= 0)
            close(bs->lock_fd);
        free(bs->dir);
        free(bs);
    }
    free(c->buf);
    free(c->bad);
    free(c->failed);
    return e;
}

cm_err bs_fsck(const char *dir, int repair, bs_fsck_progress progress, void *arg,
               bs_fsck_report *out)
{
    bs_fsck_report r;
    fk_ctx c = {.r = &r, .cb = progress, .arg = arg};
    cm_err e = run(&c, dir, repair);
    if (e == CM_OK)
        *out = r;
    return e;
}

cm_err bs_fsck_orphans(const char *dir, const bs_orphan_check *oc, int repair,
                       bs_orphan_report *out)
{
    bs_fsck_report r;
    bs_orphan_report o;
    memset(&o, 0, sizeof(o));
    fk_ctx c = {.r = &r, .oc = oc, .orep = &o};
    cm_err e = run(&c, dir, 0);
    if (e == CM_OK && repair && c.norphans > 0)
        e = reclaim_orphans(&c, dir);
    free(c.orphans);
    if (e == CM_OK)
        *out = o;
    return e;
}
