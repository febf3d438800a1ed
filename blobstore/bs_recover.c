/*
 * bs_recover.c - rebuild the index from the segment files at open.
 *
 * Segments are scanned in number order, records front to back. A record counts when its 48-byte
 * header validates (magic, CRC32C, type, reserved bytes, block count) and the whole record fits in
 * the file; its data block CRCs are not read here (that would read the whole drive) but on every
 * bs_read. PUT adds an extent, DELETE drops the blob (and counts as a tombstone of its segment).
 *
 * Extents are inserted by blob offset, not appended, because compaction moves records: a blob's
 * first record may now sit in a later segment than its second. Two valid PUT records for the same
 * extent (same blob offset and length) are the original and its compaction copy - a crash came
 * before the old segment was unlinked - and the one later in scan order (higher segment number)
 * wins; both hold the same bytes. A PUT that overlaps an extent any other way cannot be a real
 * append: logged, counted, ignored. After the scan each blob's size is the end of its last extent;
 * a blob whose extents leave a hole is marked damaged (reads of the hole fail CM_ERR_CORRUPT).
 *
 * Each segment's header gives its salt (record-header CRCs mix it in; version 1 segments have
 * none) and, in version 2, its synced-up-to mark. The store's salt for new segments comes from the
 * first valid version 2 header, or is drawn at random when there is none.
 *
 * An invalid record: search forward at 8-byte steps for the next header that validates and fits.
 *   - none found, this is the last segment, and it starts at or past the segment's synced-up-to
 *     mark: a torn tail from a crash mid-append; cut the file there (ftruncate) - those bytes were
 *     never acknowledged, since nothing is before bs_sync. Counted in torn_cut, not corruption.
 *   - the same before the mark: corruption of bytes that were once durable; logged and counted,
 *     kept for fsck, and the segment sealed (appends go to a new one).
 *   - otherwise: corruption. Log file:offset, count it in corrupt_found, resume at the next valid
 *     header (or give up on the rest of a non-last segment). A blob that loses a record this way
 *     shows a gap when its next record arrives and is marked damaged; reads of the gap fail with
 *     CM_ERR_CORRUPT.
 * A segment shorter than its 32-byte header is one whose creation a crash interrupted (creation
 * syncs the directory before the header is durable): the last one gets a fresh header, any other
 * is empty and simply reclaimed. Afterwards every reclaimable segment is unlinked (bs_reclaim).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bs_int.h"
#include "cm_log.h"
#include "cm_util.h"

#define SCAN_CHUNK (1u << 20)

/* Validate the record at pos: header decodes and the record lies within the file. */
static int rec_valid_at(const uint8_t *raw, uint64_t salt, uint64_t pos, uint64_t fsize,
                        bs_rec_hdr *h)
{
    return bs_rec_decode(raw, salt, h) == CM_OK && bs_rec_size(h->len) <= fsize - pos;
}

static int read_rec(bs_store *bs, const bs_seg *s, uint64_t pos, uint64_t fsize, bs_rec_hdr *h)
{
    uint8_t raw[BS_REC_HDR];
    size_t got = 0;
    if (fsize - pos < BS_REC_HDR)
        return 0;
    if (bs_read_full(&bs->io, s->fd, raw, sizeof(raw), pos, &got) != CM_OK || got != sizeof(raw))
        return 0;
    return rec_valid_at(raw, s->salt, pos, fsize, h);
}

int bs_find_next_record(const bs_io *io, int fd, uint64_t salt, uint64_t from, uint64_t fsize,
                        uint64_t *next)
{
    uint8_t *buf = malloc(SCAN_CHUNK + BS_REC_HDR);
    int found = 0;
    for (uint64_t base = from; buf && !found && base + BS_REC_HDR <= fsize; base += SCAN_CHUNK) {
        size_t got = 0;
        size_t want = (size_t)CM_MIN((uint64_t)SCAN_CHUNK + BS_REC_HDR, fsize - base);
        if (bs_read_full(io, fd, buf, want, base, &got) != CM_OK)
            break;
        for (size_t i = 0; i + BS_REC_HDR <= got && i < SCAN_CHUNK; i += BS_ALIGN) {
            bs_rec_hdr h;
            if (cm_get_be32(buf + i) == BS_REC_MAGIC &&
                rec_valid_at(buf + i, salt, base + i, fsize, &h)) {
                *next = base + i;
                found = 1;
                break;
            }
        }
    }
    free(buf);
    return found;
}

static void count_corrupt(bs_store *bs, const bs_seg *s, uint64_t pos, const char *what)
{
    CM_ERROR("bs", "%s/seg-%08u.cbs:%llu: %s", bs->dir, s->num, (unsigned long long)pos, what);
    bs->corrupt_found++;
}

/* Insert or relocate the extent of a valid PUT record; CM_ERR_CORRUPT for a bad overlap. */
static cm_err apply_put(bs_store *bs, const bs_rec_hdr *h, bs_seg *seg, uint64_t pos)
{
    bs_blob *b = bs_index_get(&bs->index, &h->id);
    if (!b) {
        b = bs_blob_new(&h->id);
        if (!b || bs_index_put(&bs->index, b) != CM_OK) {
            bs_blob_free(b);
            return CM_ERR_NOMEM;
        }
    }
    uint32_t i = bs_blob_first_ext(b, h->off);
    bs_ext *x = i < b->next ? &b->ext[i] : NULL;
    if (h->len == 0) /* an empty blob's record: first_ext skips empty extents, look for it */
        for (uint32_t j = 0; j < b->next; j++)
            if (b->ext[j].len == 0 && b->ext[j].boff == h->off)
                x = &b->ext[j];
    if (x && x->boff == h->off && x->len == h->len) { /* compaction copy: the later one wins */
        x->seg->live_exts--;
        x->seg->live_bytes -= x->len;
        x->seg = seg;
        x->rec_off = pos;
        seg->live_exts++;
        seg->live_bytes += h->len;
        return CM_OK;
    }
    if (x && h->len > 0 && x->boff < h->off + h->len)
        return CM_ERR_CORRUPT;
    bs_ext e = {h->off, h->len, seg, pos};
    if (bs_blob_insert_ext(b, i, &e) != CM_OK)
        return CM_ERR_NOMEM;
    seg->live_exts++;
    seg->live_bytes += h->len;
    bs->live_bytes += h->len;
    return CM_OK;
}

cm_err bs_apply_record(bs_store *bs, const bs_rec_hdr *h, bs_seg *s, uint64_t pos)
{
    if (h->type == BS_REC_DELETE) {
        bs_blob *b = bs_index_remove(&bs->index, &h->id);
        cm_err e = b ? bs_seg_add_blob_refs(bs, s, b) : CM_OK;
        if (b)
            bs_drop_blob(bs, b);
        s->tombs++;
        return e;
    }
    cm_err e = apply_put(bs, h, s, pos);
    if (e == CM_ERR_CORRUPT) {
        count_corrupt(bs, s, pos, "record overlaps earlier data of its blob; ignored");
        e = CM_OK;
    }
    return e;
}

/* Sizes from the extents; a blob with a hole is damaged. */
void bs_finish_blobs(bs_store *bs)
{
    for (size_t i = 0; i < bs->index.cap; i++) {
        bs_blob *b = bs->index.slots[i];
        if (!b)
            continue;
        uint64_t end = 0;
        for (uint32_t j = 0; j < b->next; j++) {
            if (b->ext[j].boff != end)
                b->damaged = 1;
            end = b->ext[j].boff + b->ext[j].len;
        }
        b->size = end;
    }
}

int bs_seg_load_header(bs_store *bs, bs_seg *s)
{
    uint8_t hdr[BS_SEG_HDR];
    size_t got = 0;
    bs_seg_info in;
    s->version = BS_SEG_VERSION;
    s->synced = 0;
    s->salt = bs->have_salt ? bs->salt : 0;
    if (bs_read_full(&bs->io, s->fd, hdr, sizeof(hdr), 0, &got) != CM_OK)
        return -1;
    if (got != sizeof(hdr))
        return 0;
    if (bs_seg_hdr_decode(hdr, &in) != CM_OK) {
        if (!bs->have_salt)
            s->salt = bs_seg_salt_guess(hdr);
        return 0;
    }
    s->version = in.version;
    s->salt = in.salt;
    s->synced = in.synced;
    /* Every version 2 segment a store creates has its salt; salt 0 is a version 1 segment that
     * fsck --repair rewrote, and must not become the salt of new segments. */
    if (in.version >= 2 && in.salt != 0 && !bs->have_salt) {
        bs->salt = in.salt;
        bs->have_salt = 1;
    }
    return in.segno == s->num;
}

/* The store's salt for new segments when no version 2 header gave one: a fresh random one. */
static cm_err ensure_salt(bs_store *bs)
{
    if (bs->have_salt)
        return CM_OK;
    cm_err e = cm_random(&bs->salt, sizeof(bs->salt));
    bs->have_salt = e == CM_OK;
    return e;
}

/* The segment header; a last segment torn during creation gets a fresh one. */
static cm_err check_seg_header(bs_store *bs, bs_seg *s, uint64_t *fsize, int last)
{
    uint8_t hdr[BS_SEG_HDR];
    if (*fsize < BS_SEG_HDR && !last) {
        *fsize = 0; /* creation torn by a crash: no records; reclaimed below */
        return CM_OK;
    }
    if (*fsize < BS_SEG_HDR) {
        cm_err e = ensure_salt(bs);
        s->version = BS_SEG_VERSION;
        s->salt = bs->salt;
        s->synced = 0;
        bs_seg_hdr_encode(s->num, s->salt, 0, hdr);
        if (e == CM_OK)
            e = bs_write_full(&bs->io, s->fd, hdr, sizeof(hdr), 0);
        if (e == CM_OK && bs->io.ftruncate(bs->io.ctx, s->fd, BS_SEG_HDR) != 0)
            e = cm_err_from_errno(errno);
        *fsize = BS_SEG_HDR;
        s->dirty = 1;
        return e;
    }
    int valid = bs_seg_load_header(bs, s);
    if (valid < 0)
        return CM_ERR_IO; /* a read error is not corruption: do not open on a guess */
    if (!valid)
        count_corrupt(bs, s, 0, "bad segment header; scanning its records anyway");
    return CM_OK;
}

/*
 * The last segment ends in an invalid stretch at pos with no valid record after it. Beyond the
 * synced-up-to mark that is a torn tail (those bytes were never acknowledged): cut it. Before
 * the mark, bytes that were once durable went bad: corruption, counted and kept for fsck, and
 * the segment is sealed so appends go to a new one.
 */
static cm_err end_of_last(bs_store *bs, bs_seg *s, uint64_t pos, uint64_t *fsize)
{
    if (pos < s->synced) {
        CM_ERROR("bs",
                 "%s/seg-%08u.cbs:%llu: invalid record before the synced-up-to mark %llu: "
                 "corruption, not a torn tail (%llu bytes kept, segment sealed)",
                 bs->dir, s->num, (unsigned long long)pos, (unsigned long long)s->synced,
                 (unsigned long long)(*fsize - pos));
        bs->corrupt_found++;
        s->sealed = 1;
        return CM_OK;
    }
    CM_INFO("bs", "%s/seg-%08u.cbs:%llu: torn tail of %llu bytes cut", bs->dir, s->num,
            (unsigned long long)pos, (unsigned long long)(*fsize - pos));
    if (bs->io.ftruncate(bs->io.ctx, s->fd, (off_t)pos) != 0)
        return cm_err_from_errno(errno);
    bs->torn_cut += *fsize - pos;
    s->dirty = 1;
    *fsize = pos;
    return CM_OK;
}

static cm_err scan_segment(bs_store *bs, bs_seg *s, uint64_t fsize, int last)
{
    cm_err e = check_seg_header(bs, s, &fsize, last);
    uint64_t pos = BS_SEG_HDR;
    if (e == CM_OK && last && fsize < s->synced) {
        CM_ERROR("bs", "%s/seg-%08u.cbs: %llu bytes, shorter than its synced-up-to mark %llu",
                 bs->dir, s->num, (unsigned long long)fsize, (unsigned long long)s->synced);
        bs->corrupt_found++;
        s->sealed = 1;
    }
    while (e == CM_OK && pos < fsize) {
        bs_rec_hdr h;
        if (read_rec(bs, s, pos, fsize, &h)) {
            e = bs_apply_record(bs, &h, s, pos);
            pos += bs_rec_size(h.len);
            continue;
        }
        uint64_t next = 0;
        int found = bs_find_next_record(&bs->io, s->fd, s->salt, pos + BS_ALIGN, fsize, &next);
        if (!found && last) {
            e = end_of_last(bs, s, pos, &fsize);
            break;
        }
        count_corrupt(bs, s, pos,
                      found ? "invalid record; skipped to the next valid one"
                            : "invalid record; rest of segment unreadable");
        if (!found)
            break;
        pos = next;
    }
    s->size = fsize;
    s->wb_from = fsize; /* what an earlier run wrote is not this run's to push */
    return e;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Segment numbers present in the directory, sorted. */
cm_err bs_list_segments(const char *dir, uint32_t **out, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return cm_err_from_errno(errno);
    uint32_t *nums = NULL;
    size_t cnt = 0, cap = 0;
    cm_err e = CM_OK;
    struct dirent *de;
    while (e == CM_OK && (de = readdir(d))) {
        const char *nm = de->d_name;
        if (strlen(nm) != 16 || strncmp(nm, "seg-", 4) != 0 || strcmp(nm + 12, ".cbs") != 0)
            continue;
        uint32_t num = 0;
        int digits = 1;
        for (int i = 4; i < 12; i++) {
            digits &= nm[i] >= '0' && nm[i] <= '9';
            num = num * 10 + (uint32_t)(nm[i] - '0');
        }
        if (!digits)
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            uint32_t *nn = realloc(nums, cap * sizeof(*nn));
            if (!nn) {
                e = CM_ERR_NOMEM;
                break;
            }
            nums = nn;
        }
        nums[cnt++] = num;
    }
    closedir(d);
    if (e != CM_OK) {
        free(nums);
        return e;
    }
    if (cnt > 1)
        qsort(nums, cnt, sizeof(*nums), cmp_u32);
    *out = nums;
    *n = cnt;
    return CM_OK;
}

static cm_err open_segment(bs_store *bs, uint32_t num, int last)
{
    char path[4096];
    struct stat st;
    bs_seg_path(bs, num, path, sizeof(path));
    bs_seg *s = calloc(1, sizeof(*s));
    if (!s)
        return CM_ERR_NOMEM;
    s->num = num;
    s->fd = bs->io.open(bs->io.ctx, path, O_RDWR | O_CLOEXEC, 0);
    /* The size comes from fstat: the io table has no stat, and its fds are real descriptors. */
    if (s->fd < 0 || fstat(s->fd, &st) != 0) {
        cm_err e = cm_err_from_errno(errno);
        CM_ERROR("bs", "%s: cannot open: %s", path, strerror(errno));
        if (s->fd >= 0)
            bs->io.close(bs->io.ctx, s->fd);
        free(s);
        return e;
    }
    cm_err e = bs_segs_push(bs, s);
    if (e != CM_OK) {
        bs->io.close(bs->io.ctx, s->fd);
        free(s);
        return e;
    }
    return scan_segment(bs, s, (uint64_t)st.st_size, last);
}

cm_err bs_recover(bs_store *bs)
{
    uint32_t *nums = NULL;
    size_t n = 0;
    cm_err e = bs_list_segments(bs->dir, &nums, &n);
    for (size_t i = 0; e == CM_OK && i < n; i++)
        e = open_segment(bs, nums[i], i + 1 == n);
    if (e == CM_OK && n > 0) {
        bs->active = bs->segs[bs->nsegs - 1];
        bs->next_segno = nums[n - 1] + 1;
    } else {
        bs->next_segno = 1;
    }
    free(nums);
    if (e == CM_OK)
        e = ensure_salt(bs);
    if (e != CM_OK)
        return e;
    bs_finish_blobs(bs);
    bs_reclaim(bs);
    return CM_OK;
}
