/*
 * test_blobstore_fsck.c - the offline check: a clean drive reports clean with the right counts;
 * a flipped bit in a deleted blob's data is counted apart (dead_bad_blocks) and is no problem;
 * a flipped data bit, a smashed record header and a torn tail are each found and counted; repair
 * rewrites the segments so a second check finds only the blob that lost data; fsck refuses a
 * drive an open store holds. The orphan sweep reports blobs no record names (only once older
 * than the grace period), deletes them with repair, and leaves the named ones alone. Bit positions
 * come from a fixed, printed seed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bs.h"
#include "bs_int.h"
#include "cm_log.h"
#include "cu_data.h"
#include "cu_main.h"

#define SEED 9001u

static void put(bs_store *bs, uint32_t tag, size_t len)
{
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = cu_pattern(0, tag, i);
    bs_id id = cu_tag_id(tag, 0xF5);
    CU_ASSERT_EQUAL(bs_append(bs, &id, 0, buf, len), CM_OK);
    free(buf);
}

static void poke(const char *path, off_t off, uint8_t x)
{
    int fd = open(path, O_RDWR);
    uint8_t c = 0;
    CU_ASSERT_FATAL(fd >= 0 && pread(fd, &c, 1, off) == 1);
    c ^= x;
    CU_ASSERT_FATAL(pwrite(fd, &c, 1, off) == 1);
    close(fd);
}

static void test_fsck(void)
{
    char dir[512], seg1[600], seg2[600];
    snprintf(dir, sizeof(dir), "%s/drive0", cu_tmpdir());
    snprintf(seg1, sizeof(seg1), "%s/seg-00000001.cbs", dir);
    snprintf(seg2, sizeof(seg2), "%s/seg-00000002.cbs", dir);
    bs_options opt = {.segment_max = 121 * 1024, .compact_rate = -1}; /* no split appends */
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    put(bs, 1, 100000); /* segment 1: 2 blocks */
    put(bs, 2, 20000);  /* segment 1 */
    put(bs, 3, 100000); /* segment 2 */
    put(bs, 4, 5000);   /* segment 2 */
    bs_id id4 = cu_tag_id(4, 0xF5);
    CU_ASSERT_EQUAL(bs_delete(bs, &id4), CM_OK);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_fsck_report r;
    CU_ASSERT_EQUAL(bs_fsck(dir, 0, NULL, NULL, &r), CM_ERR_CONFLICT); /* store holds it */
    bs_close(bs);

    CU_ASSERT_EQUAL_FATAL(bs_fsck(dir, 0, NULL, NULL, &r), CM_OK);
    CU_ASSERT_EQUAL(r.segments, 2);
    CU_ASSERT_EQUAL(r.records, 5);
    CU_ASSERT_EQUAL(r.tombstones, 1);
    CU_ASSERT_EQUAL(r.live_blobs, 3);
    CU_ASSERT_EQUAL(r.live_bytes, 220000);
    CU_ASSERT(!r.bad_blocks && !r.bad_regions && !r.bad_headers && !r.torn_bytes);

    /* a bit in deleted blob 4's data (not punched yet): bit rot in garbage, no problem */
    uint64_t b4_data = BS_SEG_HDR + bs_rec_size(100000) + BS_REC_HDR + 4;
    poke(seg2, (off_t)(b4_data + 1000 + SEED % 1000), 0x04);
    CU_ASSERT_EQUAL_FATAL(bs_fsck(dir, 0, NULL, NULL, &r), CM_OK);
    CU_ASSERT_EQUAL(r.dead_bad_blocks, 1);
    CU_ASSERT(!r.bad_blocks && !r.bad_live_blobs && !r.punched);
    CU_ASSERT_EQUAL(r.live_blobs, 3);

    /* a bit in blob 1's second block; blob 2's header; a torn tail on the last segment */
    uint64_t b1_data = BS_SEG_HDR + BS_REC_HDR + 8;
    poke(seg1, (off_t)(b1_data + 70000 + SEED % 1000), 0x10);
    uint64_t b2_hdr = BS_SEG_HDR + bs_rec_size(100000);
    poke(seg1, (off_t)(b2_hdr + 30), 0x01);
    int fd = open(seg2, O_WRONLY | O_APPEND);
    CU_ASSERT_FATAL(fd >= 0 && write(fd, "torn-record-bytes", 17) == 17);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(bs_fsck(dir, 0, NULL, NULL, &r), CM_OK);
    CU_ASSERT_EQUAL(r.bad_blocks, 1);
    CU_ASSERT_EQUAL(r.dead_bad_blocks, 1);
    CU_ASSERT_EQUAL(r.bad_regions, 1);
    CU_ASSERT_EQUAL(r.torn_bytes, 17);
    CU_ASSERT_EQUAL(r.live_blobs, 2); /* 1 (damaged) and 3; blob 2's header is unreadable */
    CU_ASSERT_EQUAL(r.bad_live_blobs, 1);
    CU_ASSERT_EQUAL(r.rewritten, 0);

    CU_ASSERT_EQUAL_FATAL(bs_fsck(dir, 1, NULL, NULL, &r), CM_OK);
    CU_ASSERT_EQUAL(r.rewritten, 2);
    CU_ASSERT(!r.bad_blocks && !r.bad_regions && !r.bad_headers && !r.torn_bytes);
    CU_ASSERT_EQUAL(r.dead_bad_blocks, 0); /* the rewrite left the damaged dead record out */
    CU_ASSERT_EQUAL(r.live_blobs, 1);      /* blob 3; blob 1 lost its only record */
    CU_ASSERT_EQUAL(r.bad_live_blobs, 0);
    CU_ASSERT_EQUAL_FATAL(bs_open(dir, &opt, &bs) == CM_OK, 1);
    bs_stats st;
    bs_get_stats(bs, &st);
    CU_ASSERT_EQUAL(st.corrupt_found, 0);
    uint8_t *buf = malloc(100000);
    bs_id id3 = cu_tag_id(3, 0xF5);
    CU_ASSERT_EQUAL(bs_read(bs, &id3, 0, buf, 100000), CM_OK);
    int same = 1;
    for (int i = 0; i < 100000; i++)
        same &= buf[i] == cu_pattern(0, 3, (uint64_t)i);
    CU_ASSERT(same);
    free(buf);
    bs_close(bs);
}

/* Blobs 1 and 3 are named by "records"; 2 and 4 are not. */
static int named(void *arg, const bs_id *id)
{
    (void)arg;
    bs_id a = cu_tag_id(1, 0xF5), b = cu_tag_id(3, 0xF5);
    return memcmp(id->b, a.b, 16) == 0 || memcmp(id->b, b.b, 16) == 0;
}

static int present(const char *dir, uint32_t tag)
{
    bs_options opt = {.compact_rate = -1};
    bs_store *bs = NULL;
    uint64_t size = 0;
    bs_id id = cu_tag_id(tag, 0xF5);
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    int ok = bs_size(bs, &id, &size) == CM_OK;
    bs_close(bs);
    return ok;
}

static void test_orphans(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/orphans", cu_tmpdir());
    bs_options opt = {.compact_rate = -1};
    bs_store *bs = NULL;
    CU_ASSERT_FATAL(bs_open(dir, &opt, &bs) == CM_OK);
    put(bs, 1, 30000);
    put(bs, 2, 20000);
    put(bs, 3, 1000);
    put(bs, 4, 500);
    CU_ASSERT_EQUAL(bs_sync(bs), CM_OK);
    bs_orphan_check oc = {named, NULL, 0};
    bs_orphan_report o;
    CU_ASSERT_EQUAL(bs_fsck_orphans(dir, &oc, 0, &o), CM_ERR_CONFLICT); /* store holds it */
    bs_close(bs);

    oc.grace_s = 3600; /* just written: too young to call orphans */
    CU_ASSERT_EQUAL_FATAL(bs_fsck_orphans(dir, &oc, 1, &o), CM_OK);
    CU_ASSERT_EQUAL(o.blobs, 4);
    CU_ASSERT_EQUAL(o.orphans, 0);
    CU_ASSERT_EQUAL(o.young, 2);
    CU_ASSERT(present(dir, 2) && present(dir, 4));

    oc.grace_s = 0;
    CU_ASSERT_EQUAL_FATAL(bs_fsck_orphans(dir, &oc, 0, &o), CM_OK); /* report only */
    CU_ASSERT_EQUAL(o.orphans, 2);
    CU_ASSERT_EQUAL(o.orphan_bytes, 20500);
    CU_ASSERT_EQUAL(o.reclaimed, 0);
    CU_ASSERT(present(dir, 2) && present(dir, 4));

    CU_ASSERT_EQUAL_FATAL(bs_fsck_orphans(dir, &oc, 1, &o), CM_OK);
    CU_ASSERT_EQUAL(o.orphans, 2);
    CU_ASSERT_EQUAL(o.reclaimed, 2);
    CU_ASSERT(present(dir, 1) && present(dir, 3));
    CU_ASSERT(!present(dir, 2) && !present(dir, 4));
    CU_ASSERT_EQUAL_FATAL(bs_fsck_orphans(dir, &oc, 0, &o), CM_OK);
    CU_ASSERT_EQUAL(o.blobs, 2);
    CU_ASSERT_EQUAL(o.orphans, 0);
    bs_fsck_report r;
    CU_ASSERT_EQUAL_FATAL(bs_fsck(dir, 0, NULL, NULL, &r), CM_OK);
    CU_ASSERT(!r.bad_blocks && !r.bad_regions && !r.bad_headers && !r.torn_bytes);
}

void cu_register(void)
{
    printf("test_blobstore_fsck seed %u\n", SEED);
    cm_log_threshold = -1;
    static const cu_test tests[] = {
        {"fsck_find_and_repair", test_fsck}, {"orphan_sweep", test_orphans}, {NULL, NULL}};
    cu_add_suite("blobstore_fsck", tests);
}
