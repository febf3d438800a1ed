/*
 * test_blobstore.c - the append-only blob store: round trips, recovery after reopen, torn tails,
 * appends from pieces (bs_appendv), bit flips in data and headers, delete + reclaim, segment
 * roll-over, early writeback, durable pages dropped from the page cache, injected ENOSPC and
 * concurrent appends. Payload bytes are a pure function of (blob tag, offset) so any range can be
 * checked without keeping copies; random choices use a fixed, printed seed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bs.h"
#include "bs_int.h"
#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"
#include "cu_data.h"
#include "cu_gate.h"
#include "cu_main.h"

#define SEED 20261125u

static uint64_t rng = SEED;

static void fill(uint8_t *buf, uint32_t tag, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = cu_pattern(0, tag, off + i);
}

static int check(const uint8_t *buf, uint32_t tag, uint64_t off, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != cu_pattern(0, tag, off + i))
            return 0;
    return 1;
}

static char *test_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", cu_tmpdir(), name);
    return path;
}

/* Append len pattern bytes to blob tag at off in pieces of at most piece bytes. */
static cm_err put(bs_store *bs, uint32_t tag, uint64_t off, size_t len, size_t piece)
{
    uint8_t *buf = malloc(piece ? piece : 1);
    cm_err e = CM_OK;
    bs_id id = cu_tag_id(tag, 0x5A);
    size_t done = 0;
    do {
        size_t n = len - done < piece ? len - done : piece;
        fill(buf, tag, off + done, n);
        e = bs_append(bs, &id, off + done, buf, n);
        done += n;
    } while (e == CM_OK && done < len);
    free(buf);
    return e;
}

/* Read [off, off+len) of blob tag and compare with the pattern. */
static int verify(bs_store *bs, uint32_t tag, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len ? len : 1);
    bs_id id = cu_tag_id(tag, 0x5A);
    cm_err e = bs_read(bs, &id, off, buf, len);
    int ok = e == CM_OK && check(buf, tag, off, len);
    if (!ok)
        fprintf(stderr, "verify tag %u off %llu len %zu: %s (seed %u)\n", tag,
                (unsigned long long)off, len, cm_err_name(e), SEED);
    free(buf);
    return ok;
}

static int verify_whole(bs_store *bs, uint32_t tag, uint64_t size)
{
    uint64_t got = 0;
    bs_id id = cu_tag_id(tag, 0x5A);
    return bs_size(bs, &id, &got) == CM_OK && got == size && verify(bs, tag, 0, size);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void seg_file(const char *dir, uint32_t n, char *out, size_t cap)
{
    snprintf(out, cap, "%s/seg-%08u.cbs", dir, n);
}

static void flip_bit(const char *path, off_t off, int bit)
{
    int fd = open(path, O_RDWR);
    uint8_t c = 0;
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(pread(fd, &c, 1, off) == 1);
    c ^= (uint8_t)(1u << bit);
    CU_ASSERT_FATAL(pwrite(fd, &c, 1, off) == 1);
    close(fd);
}

/* ---- tests ---- */

static void test_crc32c_vector(void)
{
    CU_ASSERT_EQUAL(bs_crc32c("123456789", 9), 0xE3069283u);
}

static void test_roundtrip(void)
{
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(test_dir("rt"), NULL, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 0, 300000, 300000), CM_OK); /* one record, 5 blocks */
    CU_ASSERT_EQUAL(put(bs, 2, 0, 200001, 70001), CM_OK);  /* several records */
    CU_ASSERT_EQUAL(put(bs, 3, 0, 1, 1), CM_OK);
    CU_ASSERT_EQUAL(put(bs, 4, 0, 0, 0), CM_OK); /* empty blob exists */
    CU_ASSERT(verify_whole(bs, 1, 300000));
    CU_ASSERT(verify_whole(bs, 2, 200001));
    CU_ASSERT(verify_whole(bs, 3, 1));
    CU_ASSERT(verify_whole(bs, 4, 0));
    /* ranges crossing blocks and records */
    CU_ASSERT(verify(bs, 1, 65535, 2));
    CU_ASSERT(verify(bs, 1, 65536 * 2 - 7, 65536 + 14));
    CU_ASSERT(verify(bs, 2, 70000, 3));
    CU_ASSERT(verify(bs, 2, 69999, 130002));
    for (int i = 0; i < 200; i++) {
        uint64_t off = cu_xorshift(&rng) % 200001, len = cu_xorshift(&rng) % (200001 - off + 1);
        CU_ASSERT(verify(bs, 2, off, (size_t)len));
    }
    bs_id id = cu_tag_id(2, 0x5A), nid = cu_tag_id(99, 0x5A);
    uint8_t b[4];
    CU_ASSERT_EQUAL(bs_read(bs, &id, 200000, b, 2), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(bs_read(bs, &nid, 0, b, 1), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(bs_append(bs, &id, 5, b, 1), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(bs_append(bs, &nid, 5, b, 1), CM_ERR_INVAL);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.blobs, 4);
    CU_ASSERT_EQUAL(st.live_bytes, 500002);
    CU_ASSERT_EQUAL(st.segments, 1);
    CU_ASSERT(st.disk_bytes > 500002);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_close(bs);
}

static void test_reopen(void)
{
    const char *dir = test_dir("reopen");
    bs_store *bs = NULL;
    bs_options opt = {.segment_max = 256 * 1024};
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    for (uint32_t t = 1; t <= 20; t++)
        CU_ASSERT_EQUAL(put(bs, t, 0, 1000 * t + t, 333 * t), CM_OK);
    bs_id gone = cu_tag_id(7, 0x5A);
    CU_ASSERT_EQUAL(bs_delete(bs, &gone), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_stats before, after;
    bs_get_stats(bs, &before);
    bs_close(bs);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    bs_get_stats(bs, &after);
    CU_ASSERT_EQUAL(after.blobs, 19);
    CU_ASSERT_EQUAL(after.live_bytes, before.live_bytes);
    CU_ASSERT_EQUAL(after.disk_bytes, before.disk_bytes);
    CU_ASSERT_EQUAL(after.corrupt_found, 0);
    for (uint32_t t = 1; t <= 20; t++)
        if (t != 7)
            CU_ASSERT(verify_whole(bs, t, 1000 * t + t));
    uint64_t sz;
    CU_ASSERT_EQUAL(bs_size(bs, &gone, &sz), CM_ERR_NOTFOUND);
    /* appends continue after reopen */
    CU_ASSERT_EQUAL(put(bs, 3, 3003, 5000, 5000), CM_OK);
    CU_ASSERT(verify_whole(bs, 3, 8003));
    bs_close(bs);
}

/* bs_appendv: the pieces of one append (random sizes, empty ones among them, block and segment
 * boundaries crossed) make the same blob as one buffer: same length, same bytes, same disk use
 * as bs_append of the concatenation in a second store, and recovery after a reopen checks every
 * record's CRCs. */
static void test_appendv_pieces(void)
{
    bs_options opt = {.segment_max = 300 * 1024, .compact_rate = -1};
    bs_store *bv = NULL, *b1 = NULL;
    CU_ASSERT_FATAL(bs_open(test_dir("appendv"), &opt, &bv) == CM_OK);
    CU_ASSERT_FATAL(bs_open(test_dir("appendv1"), &opt, &b1) == CM_OK);
    enum { LEN = 700000, MAXV = 40 };
    uint8_t *buf = malloc(LEN);
    for (uint32_t tag = 1; tag <= 6; tag++) {
        size_t len = tag == 6 ? 0 : LEN / tag - tag;
        fill(buf, tag, 0, len);
        struct iovec v[MAXV];
        int n = 0;
        for (size_t at = 0; at < len || n == 0; n++) {
            size_t piece = n == MAXV - 1 ? len - at : cu_xorshift(&rng) % (len / 8 + 2);
            if (n % 7 == 3)
                piece = 0; /* empty pieces are allowed anywhere */
            piece = CM_MIN(piece, len - at);
            v[n] = (struct iovec){buf + at, piece};
            at += piece;
        }
        bs_id id = cu_tag_id(tag, 0x5A);
        CU_ASSERT_EQUAL(bs_appendv(bv, &id, 0, v, n), CM_OK);
        CU_ASSERT_EQUAL(bs_append(b1, &id, 0, buf, len), CM_OK);
        CU_ASSERT(verify_whole(bv, tag, len));
    }
    bs_id id = cu_tag_id(1, 0x5A);
    struct iovec bad = {NULL, 10};
    CU_ASSERT_EQUAL(bs_appendv(bv, &id, LEN + 1, &bad, 1), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(bs_appendv(bv, &id, 5, (struct iovec[]){{buf, 1}}, 1), CM_ERR_INVAL);
    bs_stats sv, s1;
    bs_get_stats(bv, &sv);
    bs_get_stats(b1, &s1);
    CU_ASSERT_EQUAL(sv.blobs, 6);
    CU_ASSERT_EQUAL(sv.live_bytes, s1.live_bytes);
    CU_ASSERT_EQUAL(sv.disk_bytes, s1.disk_bytes); /* the same records */
    CU_ASSERT_EQUAL(sv.segments, s1.segments);
    CU_ASSERT(sv.segments >= 4);
    CU_ASSERT_EQUAL(bs_sync(bv), CM_OK);
    bs_close(bv);
    bs_close(b1);
    CU_ASSERT_FATAL(bs_open(test_dir("appendv"), &opt, &bv) == CM_OK);
    bs_get_stats(bv, &sv);
    CU_ASSERT_EQUAL(sv.corrupt_found, 0);
    for (uint32_t tag = 1; tag <= 6; tag++)
        CU_ASSERT(verify_whole(bv, tag, tag == 6 ? 0 : LEN / tag - tag));
    bs_close(bv);
    free(buf);
}

static void test_torn_tail(void)
{
    char path[600];
    for (int round = 0; round < 8; round++) {
        char name[32];
        snprintf(name, sizeof(name), "torn%d", round);
        const char *dir = test_dir(name);
        bs_store *bs = NULL;
        CU_ASSERT_FATAL(bs_open(dir, NULL, &bs) == CM_OK);
        CU_ASSERT_EQUAL(put(bs, 1, 0, 100000, 100000), CM_OK);
        CU_ASSERT_EQUAL(put(bs, 2, 0, 5000, 5000), CM_OK);
        bs_stats st;
        bs_get_stats(bs, &st);
        off_t good = (off_t)st.disk_bytes;
        CU_ASSERT_EQUAL(put(bs, 1, 100000, 150000, 150000), CM_OK);
        bs_close(bs);
        seg_file(dir, 1, path, sizeof(path));
        off_t full = file_size(path);
        off_t cut = good + 1 + (off_t)(cu_xorshift(&rng) % (uint64_t)(full - good - 1));
        CU_ASSERT_FATAL(truncate(path, cut) == 0);
        CU_ASSERT_FATAL(bs_open(dir, NULL, &bs) == CM_OK);
        CU_ASSERT_EQUAL(file_size(path), good);
        CU_ASSERT(verify_whole(bs, 1, 100000));
        CU_ASSERT(verify_whole(bs, 2, 5000));
        bs_get_stats(bs, &st);
        CU_ASSERT_EQUAL(st.corrupt_found, 0);
        CU_ASSERT_EQUAL(put(bs, 1, 100000, 777, 777), CM_OK);
        CU_ASSERT(verify_whole(bs, 1, 100777));
        bs_close(bs);
    }
}

static void test_data_bitflip(void)
{
    const char *dir = test_dir("dflip");
    char path[600];
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, NULL, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 0, 4 * 65536, 4 * 65536), CM_OK);
    bs_close(bs);
    /* data of the only record: segment header + record header + 4 CRCs */
    off_t data = BS_SEG_HDR + BS_REC_HDR + 16;
    seg_file(dir, 1, path, sizeof(path));
    flip_bit(path, data + 2 * 65536 + 1234, 3);
    CU_ASSERT_FATAL(bs_open(dir, NULL, &bs) == CM_OK);
    uint8_t *buf = malloc(4 * 65536);
    bs_id id = cu_tag_id(1, 0x5A);
    CU_ASSERT_EQUAL(bs_read(bs, &id, 2 * 65536 + 10, buf, 100), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(bs_read(bs, &id, 0, buf, 4 * 65536), CM_ERR_CORRUPT);
    CU_ASSERT(verify(bs, 1, 0, 2 * 65536));
    CU_ASSERT(verify(bs, 1, 3 * 65536, 65536));
    CU_ASSERT(verify(bs, 1, 65536 + 5, 65536 - 5));
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.corrupt_found, 2);
    free(buf);
    bs_close(bs);
}

/* Read what spans name back from their descriptors (closing them) into buf; 1 when all came. */
static int spans_fetch(const bs_span *sp, size_t n, uint8_t *buf)
{
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        ok = ok && pread(sp[i].fd, buf, sp[i].len, (off_t)sp[i].pos) == (ssize_t)sp[i].len;
        buf += sp[i].len;
        close(sp[i].fd);
    }
    return ok;
}

/*
 * bs_read_spans over records that do not line up with 64 KiB blocks (100,000-byte appends) and
 * segments that roll over: the spans hold exactly the range's bytes, the CRC is theirs, and the
 * descriptors outlive the store. Then a flipped bit: a block wholly inside the range is not read,
 * so the CRC given differs from the bytes' (the receiver's check); a block the range cuts is.
 */
static void test_read_spans(void)
{
    bs_options opt = {.segment_max = 300 * 1024, .compact_rate = -1};
    bs_store *bs = NULL;
    enum { LEN = 700000, MAXS = 16 };
    CU_ASSERT_FATAL(bs_open(test_dir("spans"), &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL_FATAL(put(bs, 1, 0, LEN, 100000), CM_OK);
    bs_id id = cu_tag_id(1, 0x5A), none = cu_tag_id(2, 0x5A);
    uint8_t *want = malloc(LEN), *got = malloc(LEN);
    fill(want, 1, 0, LEN);
    bs_span sp[MAXS];
    size_t n = 99;
    uint32_t crc = 1;
    for (int round = 0; round < 40; round++) {
        uint64_t off = round == 0 ? 0 : cu_xorshift(&rng) % LEN;
        uint64_t len = round == 0 ? LEN : 1 + cu_xorshift(&rng) % (LEN - off);
        CU_ASSERT_EQUAL_FATAL(bs_read_spans(bs, &id, off, len, sp, MAXS, &n, &crc), CM_OK);
        CU_ASSERT(n >= 1); /* a record per append, split where a segment rolled over */
        CU_ASSERT(spans_fetch(sp, n, got));
        CU_ASSERT(memcmp(got, want + off, len) == 0);
        CU_ASSERT_EQUAL(crc, cm_crc32c(0, want + off, len));
    }
    CU_ASSERT_EQUAL(bs_read_spans(bs, &id, 50000, 300000, sp, 2, &n, &crc), CM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(bs_read_spans(bs, &none, 0, 1, sp, MAXS, &n, &crc), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(bs_read_spans(bs, &id, LEN - 5, 6, sp, MAXS, &n, &crc), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(bs_read_spans(bs, &id, LEN, 0, sp, MAXS, &n, &crc), CM_OK);
    CU_ASSERT(n == 0 && crc == 0);
    /* no descriptor to spare (the soft limit at the lowest free one): CM_AGAIN, none left */
    struct rlimit rl, low;
    int lowest = dup(0);
    CU_ASSERT_FATAL(lowest >= 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0);
    close(lowest);
    low = rl;
    low.rlim_cur = (rlim_t)lowest;
    CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &low) == 0);
    cm_err e = bs_read_spans(bs, &id, 0, LEN, sp, MAXS, &n, &crc);
    CU_ASSERT_FATAL(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    CU_ASSERT_EQUAL(e, CM_AGAIN);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL_FATAL(bs_read_spans(bs, &id, 0, LEN, sp, MAXS, &n, &crc), CM_OK);
    bs_close(bs); /* the spans keep their own descriptors */
    CU_ASSERT(spans_fetch(sp, n, got));
    CU_ASSERT(memcmp(got, want, LEN) == 0);

    const char *dir = test_dir("spans_flip");
    char path[600];
    CU_ASSERT_FATAL(bs_open(dir, NULL, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 0, 4 * 65536, 4 * 65536), CM_OK);
    bs_close(bs);
    seg_file(dir, 1, path, sizeof(path));
    flip_bit(path, BS_SEG_HDR + BS_REC_HDR + 16 + 2 * 65536 + 1234, 3);
    CU_ASSERT_FATAL(bs_open(dir, NULL, &bs) == CM_OK);
    CU_ASSERT_EQUAL_FATAL(bs_read_spans(bs, &id, 65536, 3 * 65536, sp, MAXS, &n, &crc), CM_OK);
    CU_ASSERT(spans_fetch(sp, n, got));
    CU_ASSERT(memcmp(got, want + 65536, 3 * 65536) != 0);
    CU_ASSERT_EQUAL(crc, cm_crc32c(0, want + 65536, 3 * 65536)); /* as written */
    CU_ASSERT_NOT_EQUAL(crc, cm_crc32c(0, got, 3 * 65536));      /* not what came */
    CU_ASSERT_EQUAL(bs_read_spans(bs, &id, 2 * 65536 + 10, 100, sp, MAXS, &n, &crc),
                    CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(bs_read_spans(bs, &id, 3 * 65536 - 100, 200, sp, MAXS, &n, &crc),
                    CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL_FATAL(bs_read_spans(bs, &id, 0, 2 * 65536, sp, MAXS, &n, &crc), CM_OK);
    CU_ASSERT(spans_fetch(sp, n, got));
    CU_ASSERT_EQUAL(crc, cm_crc32c(0, got, 2 * 65536));
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.corrupt_found, 2);
    bs_close(bs);
    free(want);
    free(got);
}

static void test_header_bitflip(void)
{
    const char *dir = test_dir("hflip");
    char path[600];
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, NULL, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 0, 1000, 1000), CM_OK);
    bs_stats st;
    bs_get_stats(bs, &st);
    off_t second = (off_t)st.disk_bytes;
    CU_ASSERT_EQUAL(put(bs, 2, 0, 70000, 70000), CM_OK);
    CU_ASSERT_EQUAL(put(bs, 3, 0, 3000, 3000), CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 1000, 500, 500), CM_OK);
    bs_close(bs);
    seg_file(dir, 1, path, sizeof(path));
    flip_bit(path, second + 27, 0); /* inside blob 2's header: its blob offset */
    CU_ASSERT_FATAL(bs_open(dir, NULL, &bs) == CM_OK);
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.corrupt_found, 1);
    CU_ASSERT_EQUAL(st.blobs, 2);
    uint64_t sz;
    bs_id id2 = cu_tag_id(2, 0x5A);
    CU_ASSERT_EQUAL(bs_size(bs, &id2, &sz), CM_ERR_NOTFOUND);
    CU_ASSERT(verify_whole(bs, 1, 1500));
    CU_ASSERT(verify_whole(bs, 3, 3000));
    bs_close(bs);
}

static void test_delete_reclaim(void)
{
    const char *dir = test_dir("reclaim");
    char path[600];
    bs_store *bs = NULL;
    /* 100000-byte blobs leave < 4 KiB free in a 100 KiB segment: one blob per segment */
    bs_options opt = {.segment_max = 100 * 1024};
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 0, 100000, 100000), CM_OK); /* segment 1 */
    CU_ASSERT_EQUAL(put(bs, 2, 0, 100000, 100000), CM_OK); /* segment 2 */
    CU_ASSERT_EQUAL(put(bs, 3, 0, 100000, 100000), CM_OK); /* segment 3 */
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.segments, 3);
    seg_file(dir, 1, path, sizeof(path));
    CU_ASSERT(access(path, F_OK) == 0);
    bs_id id1 = cu_tag_id(1, 0x5A), id3 = cu_tag_id(3, 0x5A);
    CU_ASSERT_EQUAL(bs_delete(bs, &id1), CM_OK);
    CU_ASSERT(access(path, F_OK) != 0);
    CU_ASSERT_EQUAL(bs_delete(bs, &id3), CM_OK); /* active: kept */
    CU_ASSERT_EQUAL(bs_delete(bs, &id3), CM_OK); /* unknown: fine */
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.segments, 2);
    CU_ASSERT_EQUAL(st.blobs, 1);
    CU_ASSERT_EQUAL(st.live_bytes, 100000);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_close(bs);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.blobs, 1);
    CU_ASSERT(verify_whole(bs, 2, 100000));
    bs_close(bs);
}

static void test_rollover(void)
{
    const char *dir = test_dir("roll");
    bs_store *bs = NULL;
    bs_options opt = {.segment_max = 64 * 1024};
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 0, 1000000, 300000), CM_OK);
    CU_ASSERT_EQUAL(put(bs, 2, 0, 50000, 7000), CM_OK);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT(st.segments >= 16);
    CU_ASSERT(verify_whole(bs, 1, 1000000));
    CU_ASSERT(verify(bs, 1, 65000, 200000));
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_close(bs);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT(verify_whole(bs, 1, 1000000));
    CU_ASSERT(verify_whole(bs, 2, 50000));
    bs_close(bs);
}

/* Holds fdatasync of directory fds while the gate is closed. */
typedef struct {
    uint8_t isdir[4096];
    cu_gate gate;
    int done; /* appends finished by the test's threads (gate.mu) */
} dirgate;

static int dg_open(void *ctx, const char *path, int flags, mode_t mode)
{
    dirgate *g = ctx;
    int fd = open(path, flags, mode);
    if (fd >= 0 && fd < 4096)
        g->isdir[fd] = (flags & O_DIRECTORY) != 0;
    return fd;
}

static int dg_fdatasync(void *ctx, int fd)
{
    dirgate *g = ctx;
    if (fd >= 0 && fd < 4096 && g->isdir[fd])
        cu_gate_pass(&g->gate);
    return fdatasync(fd);
}

typedef struct {
    bs_store *bs;
    dirgate *g;
    uint32_t tag;
    size_t len;
    int sync;
    cm_err put, synced;
} dg_job;

static void *dg_worker(void *p)
{
    dg_job *j = p;
    j->put = put(j->bs, j->tag, 0, j->len, j->len);
    cu_gate_count(&j->g->gate, &j->g->done);
    j->synced = j->sync ? bs_sync(j->bs) : CM_OK;
    return NULL;
}

/*
 * Rolling to a new segment does not hold appends behind a directory fsync: while a directory
 * fsync is stuck, one thread's append starts segment 2 and its bs_sync waits for the directory,
 * and another append to the drive still completes. The sync that covers the new segment's
 * records does sync the directory (the crash loop in test_blobstore_crash proves it durable).
 */
static void test_dir_sync_off_append_path(void)
{
    const char *dir = test_dir("dirsync");
    dirgate g = {.gate = CU_GATE_INIT};
    bs_io io = bs_io_posix;
    io.open = dg_open;
    io.fdatasync = dg_fdatasync;
    io.ctx = &g;
    bs_options opt = {.segment_max = 64 * 1024, .io = &io, .compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 0, 40000, 40000), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);

    cu_gate_set(&g.gate, 1);
    dg_job roll = {bs, &g, 2, 40000, 1, CM_ERR_INTERNAL, CM_ERR_INTERNAL};
    dg_job small = {bs, &g, 3, 1000, 0, CM_ERR_INTERNAL, CM_OK};
    pthread_t t1, t2;
    CU_ASSERT_FATAL(pthread_create(&t1, NULL, dg_worker, &roll) == 0);
    cu_gate_wait_held(&g.gate); /* someone is in the directory fsync: the roll or its sync */
    CU_ASSERT_FATAL(pthread_create(&t2, NULL, dg_worker, &small) == 0);
    /* Both appends finish while the directory fsync is held. */
    CU_ASSERT_EQUAL(cu_gate_wait_count(&g.gate, &g.done, 2, 3), 2);
    cu_gate_set(&g.gate, 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CU_ASSERT_EQUAL(roll.put, CM_OK);
    CU_ASSERT_EQUAL(roll.synced, CM_OK);
    CU_ASSERT_EQUAL(small.put, CM_OK);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT(st.segments >= 2);
    CU_ASSERT(verify_whole(bs, 2, 40000));
    CU_ASSERT(verify_whole(bs, 3, 1000));
    bs_close(bs);
}

/* ---- early writeback (bs_writeback) ---- */

#define WB_MAX 512
typedef struct {
    pthread_mutex_t mu;
    int n;
    struct {
        int fd;
        off_t off, len;
    } r[WB_MAX];
    int fail_sync; /* drop_synced: the next fdatasync fails (EIO) */
} wb_log;

static int wb_record(void *ctx, int fd, off_t off, off_t len)
{
    wb_log *l = ctx;
    pthread_mutex_lock(&l->mu);
    if (l->n < WB_MAX) {
        l->r[l->n].fd = fd;
        l->r[l->n].off = off;
        l->r[l->n].len = len;
        l->n++;
    }
    pthread_mutex_unlock(&l->mu);
    return bs_io_posix.writeback(NULL, fd, off, len);
}

/* Bytes of the ranges logged so far; -1 when the ranges of some file are not back to back (a
 * byte twice, or one skipped) from where that file's had to start (`first` for the first file
 * logged, `later` for every other one), or a length is not a multiple of align. */
static long long ranges_total(wb_log *l, off_t first, off_t later, off_t align)
{
    long long total = 0;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->n && total >= 0; i++) {
        off_t want = l->r[i].fd == l->r[0].fd ? first : later;
        for (int j = 0; j < i; j++) /* the end of this file's earlier ranges */
            if (l->r[j].fd == l->r[i].fd)
                want = l->r[j].off + l->r[j].len;
        if (l->r[i].off != want || l->r[i].len <= 0 || l->r[i].len % align)
            total = -1;
        else
            total += l->r[i].len;
    }
    pthread_mutex_unlock(&l->mu);
    return total;
}

/* Bytes pushed to writeback so far, each once, from `start` in the first file pushed and from 0
 * (a new segment) in every later one; else -1. */
static long long wb_pushed(wb_log *l, off_t start)
{
    return ranges_total(l, start, 0, 1);
}

/*
 * With the background thread running, appends wake it once their segment holds
 * BS_WRITEBACK_BYTES not pushed, and the pushes cover what was appended in order, each byte once,
 * across a segment roll. Without the thread nothing is pushed until bs_writeback is called, which
 * then pushes every byte of every segment; a store reopened pushes nothing of what it found.
 */
static void test_writeback(void)
{
    const char *dir = test_dir("writeback");
    wb_log l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    bs_io io = bs_io_posix;
    io.writeback = wb_record;
    io.ctx = &l;
    bs_options opt = {.segment_max = 6u << 20, .io = &io}; /* the background thread runs */
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 0, 3u << 20, 256 << 10), CM_OK);
    CU_ASSERT_EQUAL(wb_pushed(&l, 0), 0); /* below the mark: nothing woken */
    CU_ASSERT_EQUAL(put(bs, 2, 0, 13u << 20, 256 << 10), CM_OK);
    long long pushed = 0;
    for (int i = 0; i < 500 && (pushed = wb_pushed(&l, 0)) >= 0 && pushed < (12ll << 20); i++)
        usleep(10 * 1000); /* the background thread's pushes, at most 5 s */
    CU_ASSERT(pushed >= 12ll << 20);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT(st.segments >= 3);
    CU_ASSERT(pushed <= (long long)st.disk_bytes);
    CU_ASSERT(verify_whole(bs, 1, 3u << 20));
    CU_ASSERT(verify_whole(bs, 2, 13u << 20));
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_close(bs);

    /* Reopened: appends go on in the last segment, from its size at open. */
    char last[4096];
    seg_file(dir, (uint32_t)st.segments, last, sizeof(last));
    off_t at_open = file_size(last);
    CU_ASSERT_FATAL(at_open > 0);
    pthread_mutex_lock(&l.mu);
    l.n = 0;
    pthread_mutex_unlock(&l.mu);
    opt.compact_rate = -1; /* no thread */
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 3, 0, 5u << 20, 256 << 10), CM_OK);
    CU_ASSERT_EQUAL(wb_pushed(&l, at_open), 0);
    bs_writeback(bs);
    uint64_t before = st.disk_bytes;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(wb_pushed(&l, at_open), (long long)(st.disk_bytes - before)); /* new bytes */
    bs_writeback(bs);
    CU_ASSERT_EQUAL(wb_pushed(&l, at_open), (long long)(st.disk_bytes - before)); /* once */
    CU_ASSERT(verify_whole(bs, 3, 5u << 20));
    bs_close(bs);
}

/* The page-cache drops asked for (bs_drop_synced), then done as bs_io_posix does them. */
static int drop_record(void *ctx, int fd, off_t off, off_t len)
{
    return wb_record(ctx, fd, off, len) == 0 ? bs_io_posix.drop(NULL, fd, off, len) : -1;
}

/* fdatasync, failing once with EIO when the log's fail_sync is set (Linux then drops the dirty
 * pages: nothing after the last good sync may be taken as durable). */
static int drop_fdatasync(void *ctx, int fd)
{
    wb_log *l = ctx;
    if (__atomic_exchange_n(&l->fail_sync, 0, __ATOMIC_ACQ_REL)) {
        errno = EIO;
        return -1;
    }
    return bs_io_posix.fdatasync(NULL, fd);
}

/* Bytes dropped so far; -1 when a drop is not whole pages, touches page 0, or overlaps or skips
 * another of the same file (each file's drops run back to back from its page 1). */
static long long dropped(wb_log *l)
{
    return ranges_total(l, 4096, 4096, 4096);
}

/* What bs_drop_synced may drop of segments 1..n once all are synced: their whole pages but
 * page 0. */
static long long droppable(const char *dir, uint32_t n)
{
    long long total = 0;
    char path[4096];
    for (uint32_t i = 1; i <= n; i++) {
        seg_file(dir, i, path, sizeof(path));
        off_t size = file_size(path);
        if (size >= 8192)
            total += size / 4096 * 4096 - 4096;
    }
    return total;
}

/*
 * Durable pages leave the page cache, each once, whole pages only, never page 0 (its mark is
 * rewritten at every sync): nothing before a sync, everything synced after one, across a segment
 * roll; a second call drops nothing more; what was dropped reads back intact; after an fdatasync
 * that failed, nothing more is dropped (the store's mark stays where the last good sync left it).
 * With the background thread running the drops come by themselves.
 */
static void test_drop_synced(void)
{
    const char *dir = test_dir("drop");
    wb_log l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    bs_io io = bs_io_posix;
    io.drop = drop_record;
    io.fdatasync = drop_fdatasync;
    io.ctx = &l;
    bs_options opt = {.segment_max = 6u << 20, .io = &io, .compact_rate = -1}; /* no thread */
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 0, (9u << 20) + 1000, 256 << 10), CM_OK);
    bs_drop_synced(bs);
    CU_ASSERT_EQUAL(dropped(&l), 0); /* nothing durable yet */
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_drop_synced(bs);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT(st.segments >= 2);
    long long want = droppable(dir, (uint32_t)st.segments);
    CU_ASSERT(want > 8ll << 20);
    CU_ASSERT_EQUAL(dropped(&l), want);
    bs_drop_synced(bs);
    CU_ASSERT_EQUAL(dropped(&l), want); /* each page once */
    CU_ASSERT(verify_whole(bs, 1, (9u << 20) + 1000));
    CU_ASSERT_EQUAL(put(bs, 2, 0, 100000, 4096), CM_OK); /* into the partly dropped segment */
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_drop_synced(bs);
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(dropped(&l), droppable(dir, (uint32_t)st.segments));
    CU_ASSERT(verify_whole(bs, 2, 100000));
    long long before = dropped(&l);
    l.fail_sync = 1;
    CU_ASSERT_EQUAL(put(bs, 4, 0, 1u << 20, 256 << 10), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_ERR_IO);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_ERR_IO); /* a second try "succeeding" is not trusted */
    bs_drop_synced(bs);
    CU_ASSERT_EQUAL(dropped(&l), before);
    bs_close(bs);

    /* With the background thread: its ticks (at least one a second) drop what a sync made
     * durable. */
    pthread_mutex_lock(&l.mu);
    l.n = 0;
    pthread_mutex_unlock(&l.mu);
    opt.compact_rate = 0;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    for (int i = 0; i < 300 && dropped(&l) == 0; i++) /* what it found at open: at most 3 s */
        usleep(10 * 1000);
    CU_ASSERT_EQUAL(put(bs, 3, 0, 3u << 20, 256 << 10), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_get_stats(bs, &st);
    want = droppable(dir, (uint32_t)st.segments);
    long long got = 0;
    for (int i = 0; i < 500 && (got = dropped(&l)) >= 0 && got < want; i++)
        usleep(10 * 1000); /* at most 5 s */
    CU_ASSERT(got >= 3ll << 20 && got <= want);
    CU_ASSERT(verify_whole(bs, 3, 3u << 20));
    CU_ASSERT(verify_whole(bs, 1, (9u << 20) + 1000));
    bs_close(bs);
}

/* An io table that fails the Nth pwrite (counting from 1) with ENOSPC. */
typedef struct {
    int n, fail_at;
} fault_ctx;

static ssize_t fault_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
    fault_ctx *f = ctx;
    if (++f->n == f->fail_at) {
        errno = ENOSPC;
        return -1;
    }
    return pwrite(fd, buf, len, off);
}

static void test_enospc(void)
{
    const char *dir = test_dir("nospc");
    fault_ctx f = {0, 0};
    bs_io io = bs_io_posix;
    io.pwrite = fault_pwrite;
    io.ctx = &f;
    bs_options opt = {.segment_max = 200 * 1024, .io = &io};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    CU_ASSERT_EQUAL(put(bs, 1, 0, 150000, 150000), CM_OK);
    /* Fail the 1st, 2nd, ... write of one append until it has fewer writes than that. */
    int at;
    for (at = 1; at < 50; at++) {
        f.fail_at = f.n + at;
        cm_err e = put(bs, 2, 0, 300000, 300000);
        if (e == CM_OK)
            break;
        CU_ASSERT_EQUAL(e, CM_ERR_NOSPC);
        uint64_t sz;
        bs_id id2 = cu_tag_id(2, 0x5A);
        CU_ASSERT_EQUAL(bs_size(bs, &id2, &sz), CM_ERR_NOTFOUND);
        CU_ASSERT(verify_whole(bs, 1, 150000));
    }
    CU_ASSERT(at >= 6); /* fill record, new segment header, second record: >= 6 writes */
    CU_ASSERT(verify_whole(bs, 2, 300000));
    f.fail_at = 0;
    CU_ASSERT_EQUAL(put(bs, 3, 0, 1000, 1000), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_close(bs);
    CU_ASSERT_FATAL(bs_open(dir, NULL, &bs) == CM_OK);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.blobs, 3);
    CU_ASSERT_EQUAL(st.corrupt_found, 0);
    CU_ASSERT(verify_whole(bs, 1, 150000));
    CU_ASSERT(verify_whole(bs, 2, 300000));
    CU_ASSERT(verify_whole(bs, 3, 1000));
    bs_close(bs);
}

typedef struct {
    bs_store *bs;
    uint32_t first;
    int ok;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    a->ok = 1;
    for (uint32_t t = a->first; t < a->first + 10; t++)
        for (uint64_t off = 0; off < 40000; off += 4000)
            if (put(a->bs, t, off, 4000, 4000) != CM_OK)
                a->ok = 0;
    if (bs_sync(a->bs) != CM_OK)
        a->ok = 0;
    return NULL;
}

static void test_concurrent(void)
{
    const char *dir = test_dir("conc");
    bs_store *bs = NULL;
    bs_options opt = {.segment_max = 512 * 1024};
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    pthread_t th[4];
    worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg){bs, 100 + 10 * (uint32_t)i, 0};
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, worker, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT(args[i].ok);
    }
    for (uint32_t t = 100; t < 140; t++)
        CU_ASSERT(verify_whole(bs, t, 40000));
    bs_close(bs);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    for (uint32_t t = 100; t < 140; t++)
        CU_ASSERT(verify_whole(bs, t, 40000));
    bs_close(bs);
}

typedef struct {
    bs_store *bs;
    int stop, ok;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    a->ok = 1;
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE))
        for (uint32_t t = 1; t <= 4; t++)
            if (!verify(a->bs, t, 1000 * t, 50000))
                a->ok = 0;
    return NULL;
}

static void test_reads_during_writes(void)
{
    /* Readers of stable blobs run while other blobs are appended, synced and deleted (segments
     * roll and get reclaimed under them). */
    bs_store *bs = NULL;
    bs_options opt = {.segment_max = 96 * 1024};
    CU_ASSERT_FATAL(bs_open(test_dir("rdwr"), &opt, &bs) == CM_OK);
    for (uint32_t t = 1; t <= 4; t++)
        CU_ASSERT_EQUAL(put(bs, t, 0, 60000 * t, 60000), CM_OK);
    reader_arg ra = {bs, 0, 0};
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, reader, &ra) == 0);
    for (uint32_t t = 500; t < 700; t++) {
        CU_ASSERT_EQUAL(put(bs, t, 0, 20000, 20000), CM_OK);
        if (t % 10 == 0)
            CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
        bs_id old = cu_tag_id(t - 3, 0x5A);
        if (t >= 503)
            CU_ASSERT_EQUAL(bs_delete(bs, &old), CM_OK);
    }
    __atomic_store_n(&ra.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    CU_ASSERT(ra.ok);
    /* Tombstone-only segments wait for compaction, which carries tombstones that still matter */
    int steps = 0;
    while (bs_compact_step(bs, 1 << 20) == CM_AGAIN && steps < 1000)
        steps++;
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.blobs, 7);
    CU_ASSERT(st.segments < 20); /* dead segments were reclaimed or compacted */
    bs_close(bs);
}

static void test_ids(void)
{
    bs_id a, b;
    char hex[33];
    CU_ASSERT_EQUAL(bs_id_new(&a), CM_OK);
    CU_ASSERT_EQUAL(bs_id_new(&b), CM_OK);
    CU_ASSERT(memcmp(a.b, b.b, 16) != 0);
    memset(a.b, 0xab, 16);
    bs_id_hex(&a, hex);
    CU_ASSERT_STRING_EQUAL(hex, "abababababababababababababababab");
    bs_close(NULL);
}

/* bs_deleted_ago: a delete is remembered (for a "not found" to say when), the ring keeps the
 * last BS_DEL_RING of them, and a blob never deleted is not in it. */
static void test_deleted_ago(void)
{
    bs_store *bs = NULL;
    int64_t ago = -1;
    CU_ASSERT_FATAL(bs_open(test_dir("deleted-ago"), NULL, &bs) == CM_OK);
    for (uint32_t t = 1; t <= 300; t++)
        CU_ASSERT_EQUAL(put(bs, t, 0, 16, 16), CM_OK);
    bs_id first = cu_tag_id(1, 0x5A), kept = cu_tag_id(300, 0x5A);
    CU_ASSERT_EQUAL(bs_deleted_ago(bs, &first, &ago), 0);
    CU_ASSERT_EQUAL(bs_delete(bs, &first), CM_OK);
    CU_ASSERT_EQUAL(bs_deleted_ago(bs, &first, &ago), 1);
    CU_ASSERT(ago >= 0 && ago < 5000);
    for (uint32_t t = 2; t < 300; t++) { /* 299 deletes in all: the first falls out */
        bs_id id = cu_tag_id(t, 0x5A);
        CU_ASSERT_EQUAL(bs_delete(bs, &id), CM_OK);
    }
    bs_id recent = cu_tag_id(299, 0x5A);
    CU_ASSERT_EQUAL(bs_deleted_ago(bs, &recent, &ago), 1);
    CU_ASSERT_EQUAL(bs_deleted_ago(bs, &first, &ago), 0);
    CU_ASSERT_EQUAL(bs_deleted_ago(bs, &kept, &ago), 0);
    bs_close(bs);
}

static void test_index_many(void)
{
    /* Enough blobs to grow the hash table several times, then delete half and re-check. */
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(test_dir("many"), NULL, &bs) == CM_OK);
    for (uint32_t t = 1; t <= 3000; t++)
        CU_ASSERT_EQUAL(put(bs, t, 0, 16, 16), CM_OK);
    for (uint32_t t = 1; t <= 3000; t += 2) {
        bs_id id = cu_tag_id(t, 0x5A);
        CU_ASSERT_EQUAL(bs_delete(bs, &id), CM_OK);
    }
    int bad = 0;
    for (uint32_t t = 1; t <= 3000; t++) {
        bs_id id = cu_tag_id(t, 0x5A);
        uint64_t sz;
        cm_err e = bs_size(bs, &id, &sz);
        bad += (t % 2) ? e != CM_ERR_NOTFOUND : !(e == CM_OK && sz == 16 && verify(bs, t, 0, 16));
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* bs_list walks the 1500 live blobs in pages of 97, in strictly increasing id order */
    enum { PAGE = 97 };
    bs_id ids[PAGE], last;
    uint64_t sizes[PAGE];
    size_t n, seen = 0;
    int pages = 0, order_bad = 0;
    do {
        CU_ASSERT_EQUAL_FATAL(bs_list(bs, seen ? &last : NULL, ids, sizes, PAGE, &n), CM_OK);
        for (size_t i = 0; i < n; i++) {
            uint32_t tag;
            memcpy(&tag, ids[i].b, sizeof(tag)); /* cu_tag_id's layout */
            order_bad +=
                (seen + i > 0 && memcmp((i ? &ids[i - 1] : &last)->b, ids[i].b, 16) >= 0) ||
                sizes[i] != 16 || tag % 2 != 0;
        }
        if (n > 0)
            last = ids[n - 1];
        seen += n;
        pages++;
    } while (n == PAGE && pages < 100);
    CU_ASSERT_EQUAL(seen, 1500);
    CU_ASSERT_EQUAL(pages, 1500 / PAGE + 1);
    CU_ASSERT_EQUAL(order_bad, 0);
    CU_ASSERT_EQUAL(bs_list(bs, NULL, ids, sizes, 0, &n), CM_ERR_INVAL);
    bs_close(bs);
}

void cu_register(void)
{
    printf("test_blobstore seed %u\n", SEED);
    cm_log_set_level(CM_LOG_ERROR);
    static const cu_test tests[] = {{"crc32c_vector", test_crc32c_vector},
                                    {"roundtrip", test_roundtrip},
                                    {"reopen_rebuilds_index", test_reopen},
                                    {"appendv_pieces", test_appendv_pieces},
                                    {"torn_tail_cut", test_torn_tail},
                                    {"data_bitflip", test_data_bitflip},
                                    {"header_bitflip", test_header_bitflip},
                                    {"read_spans", test_read_spans},
                                    {"delete_reclaim", test_delete_reclaim},
                                    {"segment_rollover", test_rollover},
                                    {"dir_sync_off_append_path", test_dir_sync_off_append_path},
                                    {"writeback", test_writeback},
                                    {"drop_synced", test_drop_synced},
                                    {"enospc_consistent", test_enospc},
                                    {"concurrent_appends", test_concurrent},
                                    {"reads_during_writes", test_reads_during_writes},
                                    {"ids", test_ids},
                                    {"index_many", test_index_many},
                                    {"deleted_ago", test_deleted_ago},
                                    {NULL, NULL}};
    cu_add_suite("blobstore", tests);
}
