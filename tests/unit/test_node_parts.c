/*
 * test_node_parts.c - the node RPC's reads and appends of several parts, rot, and bad answers to
 * reads (the fixture, nd_env.c, is test_node.c's): a chunk read whole and in ranges across its
 * records by sendfile, then with a bit rotted on its drive; nd_read_parts and nd_append_parts, a
 * node's cells of a stripe in one call, and the malformed calls refused by the client or the
 * node; and fake peers on the client's loop answering reads with too many bytes, a wrong CRC32C,
 * or one range for two parts; reads of pages not in the page cache, read by a worker first.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "cu_main.h"
#include "nd.h"
#include "nd_env.h"

/*
 * A chunk appended in three calls (records that do not line up with its 64 KiB blocks) read
 * back whole and in ranges across records: on a plain connection the node sends them by
 * sendfile with the CRC32C they were written with. A bit then rots on the drive: a read
 * covering its block whole is refused by the reader as corrupt (the node did not read it); a
 * read that cuts the block has the node read and verify it, and it answers "corrupt".
 */
static void test_read_rot(void)
{
    tnode n;
    tloop l;
    enum { LEN = 300000 };
    static uint8_t buf[LEN], back[LEN];
    size_t got;
    node_start(&n, "n1", -1, 0);
    loop_default(&l);
    fill(buf, LEN, 9);
    bs_id id = make_id(9);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(do_append(&l, &n, 0, &id, i * 100000u, buf + i * 100000, 100000,
                                  cm_crc32c(0, buf + i * 100000, 100000))
                            .err,
                        CM_OK);
    nd_result r = do_read(&l, &n, 0, &id, 0, UINT64_MAX, back, LEN, &got);
    CU_ASSERT(r.err == CM_OK && got == LEN && memcmp(back, buf, LEN) == 0);
    r = do_read(&l, &n, 0, &id, 50001, 230000, back, LEN, &got);
    CU_ASSERT(r.err == CM_OK && got == 230000 && memcmp(back, buf + 50001, 230000) == 0);
    check_range_crc(&l, &n, 0, &id, 50001, 230000, buf);

    flip_on_disk(&n, 0, buf + 150000);
    r = do_read(&l, &n, 0, &id, 0, UINT64_MAX, back, LEN, &got);
    CU_ASSERT_EQUAL(r.err, CM_ERR_CORRUPT);
    r = do_read(&l, &n, 0, &id, 149990, 20, back, LEN, &got);
    CU_ASSERT_EQUAL(r.err, CM_ERR_CORRUPT);
    r = do_read(&l, &n, 0, &id, 0, 100000, back, LEN, &got); /* not that record */
    CU_ASSERT(r.err == CM_OK && got == 100000 && memcmp(back, buf, 100000) == 0);
    loop_free(&l);
    node_stop(&n);
}

/*
 * nd_read_parts, a node's cells of a stripe in one call: the same range on both drives comes back
 * to back in the order asked, each part checked against its own CRC32C; sent by sendfile, and
 * read on the node for a store sendfile cannot serve (a test I/O table: the TLS path's code). All
 * or nothing: a part the drive lacks answers "not found" with read_missing's reason, a range
 * past a part's end "out of range", a part rotten on its drive "corrupt" (the reader's check); a
 * malformed or unknown also= list is refused; a call over ND_READ_PARTS_BYTES is not
 * sent, and the node refuses one asked by hand.
 */
static void test_read_parts(void)
{
    static bs_io io;
    tnode n;
    tloop l;
    enum { LEN = 100000, OFF = 1000, RLEN = 60000 };
    static uint8_t c0[LEN], c1[LEN], back[2 * LEN];
    size_t got;
    const uint32_t both[2] = {0, 1}, swapped[2] = {1, 0};
    bs_id id = make_id(21), lone = make_id(22);
    fill(c0, LEN, 21);
    fill(c1, LEN, 22);
    for (int pass = 0; pass < 2; pass++) {
        io = bs_io_posix;
        node_io = pass ? &io : NULL;
        node_start(&n, "n1", -1, 0);
        node_io = NULL;
        loop_default(&l);
        CU_ASSERT_EQUAL(do_append(&l, &n, 0, &id, 0, c0, LEN, cm_crc32c(0, c0, LEN)).err, CM_OK);
        CU_ASSERT_EQUAL(do_append(&l, &n, 1, &id, 0, c1, LEN, cm_crc32c(0, c1, LEN)).err, CM_OK);
        nd_result r = do_read_parts(&l, &n, both, 2, &id, OFF, RLEN, back, sizeof(back), &got);
        CU_ASSERT(r.err == CM_OK && got == 2 * RLEN && r.size == LEN);
        CU_ASSERT(memcmp(back, c0 + OFF, RLEN) == 0 && memcmp(back + RLEN, c1 + OFF, RLEN) == 0);
        r = do_read_parts(&l, &n, swapped, 2, &id, 0, LEN, back, sizeof(back), &got);
        CU_ASSERT(r.err == CM_OK && got == 2 * LEN);
        CU_ASSERT(memcmp(back, c1, LEN) == 0 && memcmp(back + LEN, c0, LEN) == 0);
        CU_ASSERT_EQUAL(do_append(&l, &n, 0, &lone, 0, c0, 5000, cm_crc32c(0, c0, 5000)).err,
                        CM_OK);
        r = do_read_parts(&l, &n, both, 2, &lone, 0, 5000, back, sizeof(back), &got);
        CU_ASSERT_EQUAL(r.err, CM_ERR_NOTFOUND);
        CU_ASSERT_PTR_NOT_NULL(strstr(r.message, "no such chunk"));
        r = do_read_parts(&l, &n, both, 2, &id, LEN - 10, 20, back, sizeof(back), &got);
        CU_ASSERT_EQUAL(r.err, CM_ERR_RANGE);
        if (pass == 0) { /* refused before a call, or by the node */
            nd_peer p = peer_of(&n);
            char target[160], hex[33], err[48];
            tres t;
            tres_init(&t, &l);
            CU_ASSERT_EQUAL(nd_read_parts(l.cl, &p, both, 2, &id, 0, ND_READ_PARTS_BYTES / 2 + 1,
                                          data_cb, done_cb, &t, NULL),
                            CM_ERR_INVAL);
            CU_ASSERT_EQUAL(
                nd_read_parts(l.cl, &p, both, 1, &id, 0, 10, data_cb, done_cb, &t, NULL),
                CM_ERR_INVAL);
            l.pending--;
            tres_release(&t);
            bs_id_hex(&id, hex);
            snprintf(target, sizeof(target), ND_PREFIX "/chunk/0/%s?off=0&len=10&also=1,1", hex);
            raw_get_header(&l, &n, target, "X-Cairn-Error", err, sizeof(err));
            CU_ASSERT_STRING_EQUAL(err, "CM_ERR_INVAL");
            snprintf(target, sizeof(target), ND_PREFIX "/chunk/0/%s?off=0&len=10&also=7", hex);
            raw_get_header(&l, &n, target, "X-Cairn-Error", err, sizeof(err));
            CU_ASSERT_STRING_EQUAL(err, "CM_ERR_UNAVAILABLE");
            /* more than ND_READ_PARTS_BYTES in all, asked by hand: the node's own bound */
            snprintf(target, sizeof(target), ND_PREFIX "/chunk/0/%s?off=0&len=%d&also=1", hex,
                     ND_READ_PARTS_BYTES / 2 + 1);
            raw_get_header(&l, &n, target, "X-Cairn-Error", err, sizeof(err));
            CU_ASSERT_STRING_EQUAL(err, "CM_ERR_INVAL");
            flip_on_disk(&n, 1, c1 + 50000);
            r = do_read_parts(&l, &n, both, 2, &id, 0, LEN, back, sizeof(back), &got);
            CU_ASSERT_EQUAL(r.err, CM_ERR_CORRUPT);
        }
        loop_free(&l);
        node_stop(&n);
    }
}

/*
 * nd_append_parts, a writer's cells of a stripe on one node in one call: each part lands on its
 * own drive at the offset, in the order the drives are named (a second call continues both
 * chunks), and reads back; a part whose
 * CRC is wrong deletes every part's chunk (nothing half-written is kept); a chunk of the wrong
 * length refuses the call before anything is appended (409); malformed calls are refused by the
 * client or the node: a body not in equal parts, a CRC list of the wrong length, a drive named
 * twice or missing, as a node that predates also= refuses any CRC list.
 */
static void test_append_parts(void)
{
    tnode n;
    tloop l;
    enum { PLEN = 70000, HALF = PLEN / 2 };
    static uint8_t body[2 * PLEN], back[PLEN];
    const uint32_t two[2] = {1, 0}, fwd[2] = {0, 1};
    uint32_t crcs[2], half[2];
    size_t got;
    bs_id id = make_id(31), other = make_id(32);
    fill(body, sizeof(body), 31);
    for (int i = 0; i < 2; i++)
        crcs[i] = cm_crc32c(0, body + (size_t)i * PLEN, PLEN);
    node_start(&n, "n1", -1, 0);
    loop_default(&l);
    nd_result r = do_append_parts(&l, &n, two, 2, &id, 0, body, HALF, crcs);
    CU_ASSERT_EQUAL(r.err, CM_ERR_DIGEST); /* the CRCs are of whole parts: refused, all gone */
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL(do_stat(&l, &n, two[i], &id).err, CM_ERR_NOTFOUND);
    for (int c = 0; c < 2; c++) { /* the first halves of both parts, then the second halves */
        uint8_t call[PLEN];
        for (int i = 0; i < 2; i++) {
            memcpy(call + (size_t)i * HALF, body + (size_t)i * PLEN + (size_t)c * HALF, HALF);
            half[i] = cm_crc32c(0, call + (size_t)i * HALF, HALF);
        }
        r = do_append_parts(&l, &n, two, 2, &id, (uint64_t)c * HALF, call, HALF, half);
        CU_ASSERT(r.err == CM_OK && r.size == (uint64_t)(c + 1) * HALF);
    }
    for (int i = 0; i < 2; i++) {
        r = do_read(&l, &n, two[i], &id, 0, PLEN, back, sizeof(back), &got);
        CU_ASSERT(r.err == CM_OK && got == PLEN);
        CU_ASSERT(memcmp(back, body + (size_t)i * PLEN, PLEN) == 0);
    }
    CU_ASSERT_EQUAL(do_append(&l, &n, 1, &other, 0, body, 10, cm_crc32c(0, body, 10)).err, CM_OK);
    r = do_append_parts(&l, &n, fwd, 2, &other, 0, body, PLEN, crcs);
    CU_ASSERT_EQUAL(r.err, CM_ERR_CONFLICT); /* drive 1's chunk is 10 long: nothing appended */
    CU_ASSERT_EQUAL(do_stat(&l, &n, 0, &other).err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(do_stat(&l, &n, 1, &other).size, 10);

    nd_peer p = peer_of(&n);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, 5);
    CU_ASSERT_EQUAL(nd_append_parts(l.cl, &p, fwd, 2, &id, 0, crcs, b, 1, done_cb, NULL, NULL),
                    CM_ERR_INVAL); /* 5 bytes are not two equal parts */
    CU_ASSERT_EQUAL(nd_append_parts(l.cl, &p, fwd, 1, &id, 0, crcs, b, 1, done_cb, NULL, NULL),
                    CM_ERR_INVAL);
    evbuffer_free(b);
    char target[160], hex[33], err[48];
    bs_id_hex(&other, hex);
    snprintf(target, sizeof(target), ND_PREFIX "/chunk/0/%s?off=0&also=1", hex);
    raw_put(&l, &n, target, body, 20, "0000000a", err, sizeof(err));
    CU_ASSERT_STRING_EQUAL(err, "CM_ERR_INVAL"); /* one CRC for two parts */
    raw_put(&l, &n, target, body, 21, "0000000a,0000000b", err, sizeof(err));
    CU_ASSERT_STRING_EQUAL(err, "CM_ERR_INVAL"); /* 21 bytes in two parts */
    raw_put(&l, &n, target, body, 20, "0000000a,0000000b,0000000c", err, sizeof(err));
    CU_ASSERT_STRING_EQUAL(err, "CM_ERR_INVAL"); /* three CRCs for two parts */
    snprintf(target, sizeof(target), ND_PREFIX "/chunk/0/%s?off=0&also=0", hex);
    raw_put(&l, &n, target, body, 20, "0000000a,0000000b", err, sizeof(err));
    CU_ASSERT_STRING_EQUAL(err, "CM_ERR_INVAL"); /* the same drive twice */
    snprintf(target, sizeof(target), ND_PREFIX "/chunk/0/%s?off=0&also=7", hex);
    raw_put(&l, &n, target, body, 20, "0000000a,0000000b", err, sizeof(err));
    CU_ASSERT_STRING_EQUAL(err, "CM_ERR_UNAVAILABLE"); /* a drive the node lacks */
    snprintf(target, sizeof(target), ND_PREFIX "/chunk/0/%s?off=0", hex);
    raw_put(&l, &n, target, body, 20, "0000000a,0000000b", err, sizeof(err));
    CU_ASSERT_STRING_EQUAL(err, "CM_ERR_INVAL"); /* a list without also= (as an old node) */
    CU_ASSERT_EQUAL(do_stat(&l, &n, 0, &other).err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(do_stat(&l, &n, 1, &other).size, 10);
    loop_free(&l);
    node_stop(&n);
}

/* A read of 1000 bytes from a fake peer answering answer_len zero bytes with crc; parts: 0 a
 * plain read, else a read of two parts of 500 answered with X-Cairn-Parts: parts - 1 (1: none). */
static nd_result fake_read(size_t answer_len, const char *crc, int parts, size_t *handed)
{
    static const uint32_t drives[2] = {0, 1};
    tloop l;
    tres r;
    loop_init(&l, "client", NULL, 0, secret, SECRET_LEN, 2000);
    bs_id id = make_id(12);
    fake_peer fp = {{0}, 0, 0, answer_len, NULL, crc, parts > 0 ? parts - 1 : 0};
    int port;
    struct evconnlistener *lis = fake_listen(l.base, &fp, &port);
    tnode fake = {.id = "ghost", .port = port};
    nd_peer p = peer_of(&fake);
    tres_init(&r, &l);
    cm_err e = parts ? nd_read_parts(l.cl, &p, drives, 2, &id, 0, 500, data_cb, done_cb, &r, NULL)
                     : nd_read(l.cl, &p, 0, &id, 0, 1000, data_cb, done_cb, &r, NULL);
    CU_ASSERT_EQUAL(e, CM_OK);
    loop_run(&l);
    *handed = CM_MAX(evbuffer_get_length(r.data), r.max_buffered);
    tres_release(&r);
    evconnlistener_free(lis);
    if (fp.bev)
        bufferevent_free(fp.bev);
    loop_free(&l);
    return r.res;
}

/* A peer that answers a read with more bytes than were asked: the caller is handed none of the
 * excess (its memory is bounded by what it asked for) and the read fails. One whose bytes do not
 * match their X-Cairn-Crc32c: the read fails CM_ERR_DIGEST (the caller reads another copy). One
 * that answers a read of two parts without X-Cairn-Parts: CM_ERR_UNSUPPORTED (the caller asks
 * the cells one by one, and the node is not taken for down). */
static void test_read_bad_answers(void)
{
    static const uint8_t zeros[1000];
    char good[9];
    size_t handed;
    snprintf(good, sizeof(good), "%08x", cm_crc32c(0, zeros, sizeof(zeros)));
    CU_ASSERT_EQUAL(fake_read(8u << 20, NULL, 0, &handed).err, CM_ERR_CLOSED);
    CU_ASSERT(handed <= 1000);
    CU_ASSERT_EQUAL(fake_read(1000, "00000000", 0, &handed).err, CM_ERR_DIGEST);
    CU_ASSERT_EQUAL(fake_read(1000, good, 0, &handed).err, CM_OK);
    CU_ASSERT_EQUAL(handed, 1000);
    CU_ASSERT_EQUAL(fake_read(1000, NULL, 0, &handed).err, CM_OK); /* a long range: no CRC sent */
    /* two parts asked, one range answered (a node that predates also=): refused, not used */
    CU_ASSERT_EQUAL(fake_read(1000, good, 1, &handed).err, CM_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(handed, 0);
    /* two parts with one CRC: refused unchecked, never used; with theirs: each checked */
    char two[20], bad2[20];
    snprintf(two, sizeof(two), "%08x,%08x", cm_crc32c(0, zeros, 500), cm_crc32c(0, zeros, 500));
    snprintf(bad2, sizeof(bad2), "%08x,00000000", cm_crc32c(0, zeros, 500));
    CU_ASSERT_EQUAL(fake_read(1000, good, 3, &handed).err, CM_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(handed, 0);
    CU_ASSERT_EQUAL(fake_read(1000, two, 3, &handed).err, CM_OK);
    CU_ASSERT_EQUAL(handed, 1000);
    CU_ASSERT_EQUAL(fake_read(1000, bad2, 3, &handed).err, CM_ERR_DIGEST);
}

/* Drop the drive's segment pages from the page cache until chunk id's first len bytes are out
 * (a page just written back may take a moment to let go; pages sent by sendfile stay pinned a
 * while, so the test drops only chunks not read yet); 0 on tmpfs (never read from a disk). */
static int drop_drive_pages(const tnode *n, int drive, const bs_id *id, uint64_t len)
{
    char path[400];
    struct statfs fs;
    snprintf(path, sizeof(path), "%s/seg-00000001.cbs", n->dirs[drive]);
    int fd = open(path, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    int ok = fstatfs(fd, &fs) == 0 && fs.f_type != 0x01021994 /* tmpfs */;
    for (int i = 0; ok && i < 100 && bs_cached(n->bs[drive], id, 0, len); i++) {
        CU_ASSERT(fdatasync(fd) == 0 && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
        if (bs_cached(n->bs[drive], id, 0, len))
            usleep(10 * 1000); /* bounded: 100 tries */
    }
    close(fd);
    CU_ASSERT(!ok || !bs_cached(n->bs[drive], id, 0, len));
    return ok;
}

static uint64_t warmed(const tnode *n)
{
    nd_service_stats st;
    nd_service_get_stats(n->svc, &st);
    return st.warmed;
}

/*
 * A read whose pages the page cache does not hold is read by a worker first, then sent from the
 * cache (the node's loop never waits on the disk): a cell and a node's cells of a stripe come
 * back intact, each such read counted once, and read again from the cache without a worker.
 * Rot met by the worker is answered "corrupt" by the node, and counted by its drive. (Skipped
 * where the drives are on tmpfs.)
 */
static void test_read_cold(void)
{
    static bs_io keep;
    tnode n;
    tloop l;
    enum { LEN = 120000, BIG = 700000 };
    static uint8_t c0[LEN], p0[LEN], p1[LEN], r1[LEN], g0[BIG], back[BIG];
    size_t got;
    const uint32_t both[2] = {0, 1};
    bs_id id = make_id(31), pid = make_id(32), rid = make_id(33), gid = make_id(34);
    fill(c0, LEN, 41); /* odd seeds: fill takes seed | 1 */
    fill(p0, LEN, 43);
    fill(p1, LEN, 45);
    fill(r1, LEN, 47);
    fill(g0, BIG, 49);
    keep = bs_io_posix;
    keep.drop = NULL; /* the store leaves its synced pages cached: the test drops them */
    node_io = &keep;
    node_start(&n, "n1", -1, 0);
    node_io = NULL;
    loop_default(&l);
    CU_ASSERT_EQUAL(do_append(&l, &n, 0, &id, 0, c0, LEN, cm_crc32c(0, c0, LEN)).err, CM_OK);
    CU_ASSERT_EQUAL(do_append(&l, &n, 0, &pid, 0, p0, LEN, cm_crc32c(0, p0, LEN)).err, CM_OK);
    CU_ASSERT_EQUAL(do_append(&l, &n, 1, &pid, 0, p1, LEN, cm_crc32c(0, p1, LEN)).err, CM_OK);
    CU_ASSERT_EQUAL(do_append(&l, &n, 1, &rid, 0, r1, LEN, cm_crc32c(0, r1, LEN)).err, CM_OK);
    CU_ASSERT_EQUAL(do_append(&l, &n, 0, &gid, 0, g0, BIG, cm_crc32c(0, g0, BIG)).err, CM_OK);
    flip_on_disk(&n, 1, r1 + 70000);
    if (!drop_drive_pages(&n, 0, &id, LEN) || !drop_drive_pages(&n, 1, &pid, LEN) ||
        !drop_drive_pages(&n, 0, &pid, LEN) || !drop_drive_pages(&n, 0, &gid, BIG)) {
        fprintf(stderr, "test_read_cold: the drives are on tmpfs: not run\n");
    } else {
        for (int round = 0; round < 2; round++) { /* by a worker first, then from the cache */
            nd_result r = do_read(&l, &n, 0, &id, 1000, LEN - 1000, back, sizeof(back), &got);
            CU_ASSERT(r.err == CM_OK && got == LEN - 1000 && memcmp(back, c0 + 1000, got) == 0);
            CU_ASSERT_EQUAL(warmed(&n), 1);
        }
        nd_result r = do_read_parts(&l, &n, both, 2, &pid, 0, LEN, back, sizeof(back), &got);
        CU_ASSERT(r.err == CM_OK && got == 2 * LEN);
        CU_ASSERT(memcmp(back, p0, LEN) == 0 && memcmp(back + LEN, p1, LEN) == 0);
        CU_ASSERT_EQUAL(warmed(&n), 2);
        drop_drive_pages(&n, 1, &rid, LEN); /* the workers' read ahead took rid's pages in */
        r = do_read(&l, &n, 1, &rid, 0, LEN, back, sizeof(back), &got);
        CU_ASSERT_EQUAL(r.err, CM_ERR_CORRUPT);
        CU_ASSERT_EQUAL(warmed(&n), 3);
        bs_stats st;
        bs_get_stats(n.bs[1], &st);
        CU_ASSERT_EQUAL(st.corrupt_found, 1); /* the worker's read found it, not the reader */
        drop_drive_pages(&n, 0, &gid, BIG);   /* read ahead may have taken some in */
        r = do_read(&l, &n, 0, &gid, 0, BIG, back, sizeof(back), &got); /* a heal's group */
        CU_ASSERT(r.err == CM_OK && got == BIG && memcmp(back, g0, BIG) == 0);
        CU_ASSERT_EQUAL(warmed(&n), 4);
    }
    loop_free(&l);
    node_stop(&n);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"read_rot", test_read_rot},         {"read_parts", test_read_parts},
        {"append_parts", test_append_parts}, {"read_bad_answers", test_read_bad_answers},
        {"read_cold", test_read_cold},       {NULL, NULL},
    };
    cu_add_suite("node_parts", tests);
}
