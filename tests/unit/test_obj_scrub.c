/*
 * test_obj_scrub.c - the object-level scrubber (ob_scrub.c) against a real object store and
 * metadata store (6 drives, 4+2, 4 KiB cells, 1 KiB inline threshold) in a temp dir, no gateway.
 * Objects of many sizes (inline, one partial stripe, one stripe, many stripes, a two-part multipart
 * object) are stored; cells are damaged by flipping bytes inside their records in the segment files
 * of two drives and by deleting blobs; one synchronous pass must find and repair exactly the
 * damaged bodies, the objects must read back byte-exact, old blobs must be gone (or kept while
 * leased), and a second pass must find nothing. Older versions of a versioned bucket are scrubbed
 * and repaired in their own records (scrub_versions). Payload bytes are a function of (tag,
 * offset); the seed is printed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"
#include "cu_data.h"
#include "cu_main.h"
#include "ob_int.h"

#define SEED 0x5C2Bu
#define CELL 4096u
#define BUCKET "scrub-bucket"

/* What a scrubber works over: a metadata store and an object store, as the gateway opens them. */
typedef struct {
    char data_dir[512];
    md_store *md;
    ob_store *data;
} fixture;

static fixture *open_fx(const char *name, const bs_io *io)
{
    char path[600];
    const char *dirs[6];
    static char names[6][600];
    fixture *g = calloc(1, sizeof(*g));
    CU_ASSERT_FATAL(g != NULL);
    snprintf(g->data_dir, sizeof(g->data_dir), "%s/%s", cu_tmpdir(), name);
    mkdir(g->data_dir, 0755);
    snprintf(path, sizeof(path), "%s/meta", g->data_dir);
    CU_ASSERT_FATAL(md_open(path, 0, &g->md) == CM_OK);
    for (int i = 0; i < 6; i++) {
        snprintf(names[i], sizeof(names[i]), "%s/drive%d", g->data_dir, i);
        dirs[i] = names[i];
    }
    ob_store_options so = {.k = 4, .m = 2, .cell_size = CELL, .io = io};
    CU_ASSERT_FATAL(ob_store_open(dirs, 6, &so, &g->data) == CM_OK);
    md_bucket b = {.name = BUCKET};
    CU_ASSERT_FATAL(md_bucket_create(g->md, &b) == CM_OK);
    return g;
}

static void close_fx(fixture *g)
{
    ob_store_close(g->data);
    md_close(g->md);
    free(g);
}

static ob_scrub *new_scrub(fixture *g, double rate)
{
    ob_scrub_config sc;
    ob_scrub *s = NULL;
    ob_scrub_config_defaults(&sc);
    sc.rate_mb = rate;
    sc.interval_s = 0;
    sc.inline_threshold = 1024;
    CU_ASSERT_FATAL(ob_scrub_new(g->data, g->md, &sc, &s) == CM_OK);
    return s;
}

/* Store size pattern bytes of tag as a part; etag = MD5 hex. */
static void store_part(fixture *g, uint32_t tag, uint64_t size, md_part *p)
{
    ob_writer *w = NULL;
    uint8_t buf[7000], md5[16];
    cm_ck ck;
    memset(p, 0, sizeof(*p));
    CU_ASSERT_FATAL(ob_writer_new(g->data, &w) == CM_OK);
    CU_ASSERT_FATAL(cm_ck_init(&ck, CM_CK_MD5) == CM_OK);
    for (uint64_t off = 0; off < size;) {
        size_t n = (size_t)CM_MIN(size - off, sizeof(buf));
        for (size_t i = 0; i < n; i++)
            buf[i] = cu_pattern(SEED, tag, off + i);
        cm_ck_update(&ck, buf, n);
        CU_ASSERT_FATAL(ob_writer_write(w, buf, n) == CM_OK);
        off += n;
    }
    cm_ck_final(&ck, md5);
    cm_hex_encode(md5, 16, p->etag);
    p->size = size;
    CU_ASSERT_FATAL(ob_writer_finish(w, &p->layout) == CM_OK);
}

/* An object of nparts parts of the given size each (tags tag, tag+1, ...); inline when small. */
static void put_object(fixture *g, const char *key, uint32_t tag, uint64_t size, size_t nparts)
{
    md_object o = {0};
    md_part parts[4];
    uint8_t inl[1024];
    o.key = (char *)key;
    snprintf(o.version_id, sizeof(o.version_id), "null");
    if (size <= 1024 && nparts == 1) {
        for (size_t i = 0; i < size; i++)
            inl[i] = cu_pattern(SEED, tag, i);
        o.inline_data = inl;
        o.inline_len = (size_t)size;
        o.size = size;
    } else {
        for (size_t i = 0; i < nparts; i++) {
            store_part(g, tag + (uint32_t)i, size, &parts[i]);
            parts[i].number = nparts > 1 ? (uint32_t)i + 1 : 0;
        }
        o.parts = parts;
        o.nparts = nparts;
        o.size = size * nparts;
    }
    snprintf(o.etag, sizeof(o.etag), "%s", nparts > 1 ? "0123-2" : "abc");
    CU_ASSERT_FATAL(md_object_put(g->md, BUCKET, &o, NULL, NULL, NULL) == CM_OK);
}

static int object_ok(fixture *g, const char *key, uint32_t tag, uint64_t size)
{
    md_object o;
    int ok = md_object_get(g->md, BUCKET, key, &o) == CM_OK;
    for (size_t i = 0; ok && o.inline_data && i < o.inline_len; i++)
        ok = o.inline_data[i] == cu_pattern(SEED, tag, i);
    for (size_t p = 0; ok && p < o.nparts; p++) {
        uint8_t *buf = malloc((size_t)size);
        ok = buf && ob_read(g->data, &o.parts[p].layout, 0, buf, (size_t)size) == CM_OK;
        for (uint64_t i = 0; ok && i < size; i++)
            ok = buf[i] == cu_pattern(SEED, tag + (uint32_t)p, i);
        free(buf);
    }
    if (!ok)
        fprintf(stderr, "object %s not byte-exact (seed %#x)\n", key, SEED);
    md_object_release(&o);
    return ok;
}

static md_layout layout_of(fixture *g, const char *key, size_t part)
{
    md_object o;
    md_layout l;
    CU_ASSERT_FATAL(md_object_get(g->md, BUCKET, key, &o) == CM_OK);
    CU_ASSERT_FATAL(part < o.nparts);
    l = o.parts[part].layout;
    md_object_release(&o);
    return l;
}

/* Flip one byte at offset `at` into the first record of blob on drive d (at < 0: in the CRC
 * table). Parses the documented segment format; returns 1 when a record was found. */
static int flip_in_segments(fixture *g, int d, const uint8_t blob[16], long at)
{
    char dir[600], path[900];
    snprintf(dir, sizeof(dir), "%s/drive%d", g->data_dir, d);
    DIR *dh = opendir(dir);
    struct dirent *de;
    int done = 0;
    while (dh && !done && (de = readdir(dh))) {
        if (strncmp(de->d_name, "seg-", 4) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        int fd = open(path, O_RDWR);
        uint8_t h[48];
        for (off_t off = 32; fd >= 0 && !done && pread(fd, h, 48, off) == 48;) {
            uint32_t len = cm_get_be32(h + 32), nb = cm_get_be32(h + 36);
            if (cm_get_be32(h) != 0x43425243u)
                break;
            if (h[4] == 1 && memcmp(h + 8, blob, 16) == 0) {
                off_t pos = off + 48 + 4 * (off_t)nb + at;
                uint8_t b;
                CU_ASSERT_FATAL(pread(fd, &b, 1, pos) == 1);
                b ^= 0x5A;
                CU_ASSERT_FATAL(pwrite(fd, &b, 1, pos) == 1);
                done = 1;
            }
            off += h[4] == 1 ? (off_t)((48 + 4ull * nb + len + 7) & ~7ull) : 48;
        }
        if (fd >= 0)
            close(fd);
    }
    if (dh)
        closedir(dh);
    return done;
}

static int blob_exists(fixture *g, const md_layout *l, int cell)
{
    bs_id id;
    uint64_t sz;
    memcpy(id.b, l->blob, 16);
    return bs_size(ob_store_drive(g->data, l->drives[cell]), &id, &sz) == CM_OK;
}

/* ---- tests ---- */

static void test_replace_layout(void)
{
    fixture *g = open_fx("replace", NULL);
    put_object(g, "a", 1, 9000, 1);
    md_layout old = layout_of(g, "a", 0), fresh = old;
    uint8_t wrong[16] = {1};
    fresh.blob[0] ^= 1;
    CU_ASSERT_EQUAL(md_object_replace_layout(g->md, BUCKET, "a", 0, wrong, &fresh),
                    CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(md_object_replace_layout(g->md, BUCKET, "a", 1, old.blob, &fresh),
                    CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(md_object_replace_layout(g->md, BUCKET, "nope", 0, old.blob, &fresh),
                    CM_ERR_CONFLICT);
    fresh.size++;
    CU_ASSERT_EQUAL(md_object_replace_layout(g->md, BUCKET, "a", 0, old.blob, &fresh),
                    CM_ERR_INVAL);
    fresh.size--;
    CU_ASSERT_EQUAL(md_object_replace_layout(g->md, BUCKET, "a", 0, old.blob, &fresh), CM_OK);
    md_layout now = layout_of(g, "a", 0);
    CU_ASSERT(memcmp(now.blob, fresh.blob, 16) == 0);
    /* The old blob is gone from the record: a second swap from it conflicts. */
    CU_ASSERT_EQUAL(md_object_replace_layout(g->md, BUCKET, "a", 0, old.blob, &fresh),
                    CM_ERR_CONFLICT);
    close_fx(g);
}

static void test_scrub_repairs(void)
{
    printf("\n  seed %#x\n", SEED);
    fixture *g = open_fx("repairs", NULL);
    ob_scrub *s = new_scrub(g, 0);
    put_object(g, "inline", 10, 700, 1);
    put_object(g, "partial", 20, 5000, 1);
    put_object(g, "stripe", 30, 4 * CELL, 1);
    put_object(g, "many", 40, 100000, 1);
    put_object(g, "multi", 50, 40000, 2);
    put_object(g, "healthy", 60, 70000, 1);
    md_layout many = layout_of(g, "many", 0), partial = layout_of(g, "partial", 0);
    md_layout multi2 = layout_of(g, "multi", 1);

    /* Two drives' cells of "many" (data and parity) flipped, a CRC entry of a multipart part, a
     * deleted cell of "partial": three damaged bodies. */
    CU_ASSERT(flip_in_segments(g, many.drives[0], many.blob, 100));
    CU_ASSERT(flip_in_segments(g, many.drives[5], many.blob, 3000));
    CU_ASSERT(flip_in_segments(g, multi2.drives[2], multi2.blob, -2));
    bs_id pid;
    memcpy(pid.b, partial.blob, 16);
    CU_ASSERT(bs_delete(ob_store_drive(g->data, partial.drives[1]), &pid) == CM_OK);

    /* A reader holds a lease on "many": its old blobs must survive the repair until it ends. */
    md_object reader;
    CU_ASSERT_FATAL(ob_object_get_leased(g->data, g->md, BUCKET, "many", &reader) == CM_OK);

    CU_ASSERT_EQUAL(ob_scrub_run_once(s), CM_OK);
    ob_scrub_status st;
    ob_scrub_get_status(s, &st);
    CU_ASSERT_EQUAL(st.passes, 1);
    CU_ASSERT_EQUAL(st.objects_checked, 6);
    CU_ASSERT_EQUAL(st.bodies_checked, 6); /* inline has none, multi has two */
    CU_ASSERT_EQUAL(st.damaged_found, 3);
    CU_ASSERT_EQUAL(st.repaired, 3);
    CU_ASSERT_EQUAL(st.repair_failed, 0);
    CU_ASSERT_EQUAL(st.est_objects, 6);
    CU_ASSERT(st.bytes_verified > 0);
    CU_ASSERT(st.last_end_ms >= st.last_start_ms && st.last_start_ms > 0);

    CU_ASSERT(blob_exists(g, &many, 1)); /* leased */
    ob_lease_release(g->data, &reader);
    md_object_release(&reader);
    ob_store_drain(g->data); /* deletes run on the drives' threads */
    for (int i = 0; i < 6; i++) {
        CU_ASSERT(!blob_exists(g, &many, i));
        CU_ASSERT(!blob_exists(g, &partial, i));
        CU_ASSERT(!blob_exists(g, &multi2, i));
    }
    CU_ASSERT(memcmp(layout_of(g, "many", 0).blob, many.blob, 16) != 0);
    CU_ASSERT(object_ok(g, "inline", 10, 700));
    CU_ASSERT(object_ok(g, "partial", 20, 5000));
    CU_ASSERT(object_ok(g, "stripe", 30, 4 * CELL));
    CU_ASSERT(object_ok(g, "many", 40, 100000));
    CU_ASSERT(object_ok(g, "multi", 50, 40000));
    CU_ASSERT(object_ok(g, "healthy", 60, 70000));

    /* Every cell of every body verifies now: the second pass finds nothing. */
    CU_ASSERT_EQUAL(ob_scrub_run_once(s), CM_OK);
    ob_scrub_get_status(s, &st);
    CU_ASSERT_EQUAL(st.passes, 2);
    CU_ASSERT_EQUAL(st.pass_damaged, 0);
    CU_ASSERT_EQUAL(st.pass_objects, 6);
    CU_ASSERT_EQUAL(st.damaged_found, 3);
    uint64_t seq;
    CU_ASSERT_EQUAL(ob_scrub_trigger(s, &seq), CM_ERR_UNAVAILABLE); /* no thread started */
    ob_scrub_free(s);
    close_fx(g);
}

/* The version vid of key reads back as the pattern of tag (ob_read of its one part). */
static int version_ok(fixture *g, const char *key, const char *vid, uint32_t tag, uint64_t size)
{
    md_object o;
    int ok = md_version_get(g->md, BUCKET, key, vid, &o) == CM_OK && o.nparts == 1;
    uint8_t *buf = ok ? malloc((size_t)size) : NULL;
    ok = buf && ob_read(g->data, &o.parts[0].layout, 0, buf, (size_t)size) == CM_OK;
    for (uint64_t i = 0; ok && i < size; i++)
        ok = buf[i] == cu_pattern(SEED, tag, i);
    free(buf);
    md_object_release(&o); /* zeroed by md_version_get when it failed */
    return ok;
}

/* Older versions of a versioned bucket are stored bodies too: the pass verifies them (also behind
 * a delete marker) and swaps a repaired body into the older version's own record. */
static void test_scrub_versions(void)
{
    fixture *g = open_fx("versions", NULL);
    ob_scrub *s = new_scrub(g, 0);
    md_object cur;
    CU_ASSERT_EQUAL(md_bucket_set_versioning(g->md, BUCKET, MD_VERS_ENABLED), CM_OK);
    put_object(g, "k", 70, 60000, 1);
    CU_ASSERT_FATAL(md_object_get(g->md, BUCKET, "k", &cur) == CM_OK);
    char old_vid[40];
    memcpy(old_vid, cur.version_id, sizeof(old_vid));
    md_layout old = cur.parts[0].layout;
    md_object_release(&cur);
    put_object(g, "k", 80, 60000, 1); /* the old body is now an older version */
    put_object(g, "gone", 90, 50000, 1);
    CU_ASSERT_FATAL(md_object_get(g->md, BUCKET, "gone", &cur) == CM_OK);
    char gone_vid[40];
    memcpy(gone_vid, cur.version_id, sizeof(gone_vid));
    md_layout gone = cur.parts[0].layout;
    md_object_release(&cur);
    CU_ASSERT_EQUAL(md_object_delete_v(g->md, BUCKET, "gone", NULL, NULL, NULL, NULL, NULL),
                    CM_OK); /* behind a delete marker */
    CU_ASSERT(flip_in_segments(g, old.drives[1], old.blob, 200));
    CU_ASSERT(flip_in_segments(g, gone.drives[4], gone.blob, 900));

    CU_ASSERT_EQUAL(ob_scrub_run_once(s), CM_OK);
    ob_scrub_status st;
    ob_scrub_get_status(s, &st);
    CU_ASSERT_EQUAL(st.objects_checked, 3); /* k (two versions) and gone's older version */
    CU_ASSERT_EQUAL(st.damaged_found, 2);
    CU_ASSERT_EQUAL(st.repaired, 2);
    CU_ASSERT_EQUAL(st.repair_failed, 0);
    CU_ASSERT(version_ok(g, "k", old_vid, 70, 60000));
    CU_ASSERT(version_ok(g, "gone", gone_vid, 90, 50000));
    CU_ASSERT(object_ok(g, "k", 80, 60000));
    CU_ASSERT_FATAL(md_version_get(g->md, BUCKET, "k", old_vid, &cur) == CM_OK);
    CU_ASSERT(memcmp(cur.parts[0].layout.blob, old.blob, 16) != 0); /* the older record swapped */
    md_object_release(&cur);
    CU_ASSERT_EQUAL(ob_scrub_run_once(s), CM_OK);
    ob_scrub_get_status(s, &st);
    CU_ASSERT_EQUAL(st.pass_damaged, 0);
    ob_scrub_free(s);
    close_fx(g);
}

static void test_scrub_unrepairable(void)
{
    fixture *g = open_fx("unrepairable", NULL);
    ob_scrub *s = new_scrub(g, 0);
    put_object(g, "lost", 70, 3 * 4 * CELL, 1);
    md_layout l = layout_of(g, "lost", 0);
    for (int i = 0; i < 3; i++) /* three of six cells of the first stripe: beyond 4+2 */
        CU_ASSERT(flip_in_segments(g, l.drives[i], l.blob, 10));
    CU_ASSERT_EQUAL(ob_scrub_run_once(s), CM_OK);
    ob_scrub_status st;
    ob_scrub_get_status(s, &st);
    CU_ASSERT_EQUAL(st.damaged_found, 1);
    CU_ASSERT_EQUAL(st.repaired, 0);
    CU_ASSERT_EQUAL(st.repair_failed, 1);
    /* The record still names the old body: nothing was swapped in or freed. */
    md_layout now = layout_of(g, "lost", 0);
    CU_ASSERT(memcmp(now.blob, l.blob, 16) == 0);
    CU_ASSERT(blob_exists(g, &l, 4));
    ob_scrub_free(s);
    close_fx(g);
}

/* ---- the object changes while its repair is being written ---- */

typedef struct {
    fixture *g;
    int armed, fired;
} race_ctx;

static int r_open(void *c, const char *p, int f, mode_t m)
{
    return bs_io_posix.open(c, p, f, m);
}
static ssize_t r_pread(void *c, int fd, void *b, size_t n, off_t o)
{
    return bs_io_posix.pread(c, fd, b, n, o);
}
static int r_fdatasync(void *c, int fd)
{
    return bs_io_posix.fdatasync(c, fd);
}
static int r_ftruncate(void *c, int fd, off_t n)
{
    return bs_io_posix.ftruncate(c, fd, n);
}
static int r_close(void *c, int fd)
{
    return bs_io_posix.close(c, fd);
}
static int r_unlink(void *c, const char *p)
{
    return bs_io_posix.unlink(c, p);
}

/* The first write once armed is the repair writing the rebuilt body: a client overwrites the
 * object at that moment (metadata only; its data is freed by the test afterwards). */
static ssize_t r_pwrite(void *c, int fd, const void *b, size_t n, off_t o)
{
    race_ctx *rc = c;
    if (rc->armed && !rc->fired) {
        rc->fired = 1;
        put_object(rc->g, "racy", 91, 100, 1); /* inline now */
    }
    return bs_io_posix.pwrite(NULL, fd, b, n, o);
}

static void test_scrub_object_changed(void)
{
    static race_ctx rc;
    static const bs_io io = {r_open,   r_pread, r_pwrite, r_fdatasync, r_ftruncate, r_close,
                             r_unlink, &rc,     NULL,     NULL,        NULL};
    fixture *g = open_fx("changed", &io);
    rc.g = g;
    ob_scrub *s = new_scrub(g, 0);

    put_object(g, "racy", 90, 50000, 1);
    md_layout l = layout_of(g, "racy", 0);
    CU_ASSERT(flip_in_segments(g, l.drives[3], l.blob, 7));
    rc.armed = 1;
    CU_ASSERT_EQUAL(ob_scrub_run_once(s), CM_OK);
    CU_ASSERT_EQUAL(rc.fired, 1);
    ob_scrub_status st;
    ob_scrub_get_status(s, &st);
    CU_ASSERT_EQUAL(st.damaged_found, 1);
    CU_ASSERT_EQUAL(st.repaired, 0);
    CU_ASSERT_EQUAL(st.repair_failed, 0);
    CU_ASSERT_EQUAL(st.changed_meanwhile, 1);
    CU_ASSERT(object_ok(g, "racy", 91, 100)); /* the client's write won */
    /* The client frees what it replaced; the scrubber dropped its rebuilt copy: no blob is left. */
    md_object old = {0};
    md_part part = {.size = l.size, .layout = l};
    old.parts = &part;
    old.nparts = 1;
    ob_free_object_data(g->data, &old);
    ob_store_drain(g->data);
    uint64_t blobs = 0;
    for (int i = 0; i < 6; i++) {
        bs_stats bst;
        bs_get_stats(ob_store_drive(g->data, (uint8_t)i), &bst);
        blobs += bst.blobs;
    }
    CU_ASSERT_EQUAL(blobs, 0);
    ob_scrub_free(s);
    close_fx(g);
}

static void test_scrub_rate(void)
{
    fixture *g = open_fx("rate", NULL);
    const double rate = 2.0; /* MB/s */
    ob_scrub *s = new_scrub(g, rate);
    put_object(g, "big", 80, 600000, 1); /* 900 KB of cells */
    int64_t t0 = cm_monotonic_ms();
    CU_ASSERT_EQUAL(ob_scrub_run_once(s), CM_OK);
    int64_t ms = cm_monotonic_ms() - t0;
    ob_scrub_status st;
    ob_scrub_get_status(s, &st);
    double floor_ms = (double)st.bytes_verified / (rate * 1e6) * 1000.0;
    printf("\n  %llu bytes at %.1f MB/s took %lld ms (floor %.0f ms)\n",
           (unsigned long long)st.bytes_verified, rate, (long long)ms, floor_ms);
    CU_ASSERT(st.bytes_verified >= 900000);
    CU_ASSERT((double)ms >= floor_ms * 0.9); /* the bucket starts empty: no burst to borrow */
    ob_scrub_free(s);
    close_fx(g);
}

/* A cell the layout places on another node is that node's to verify: not damage here. */
static void test_scrub_other_node_cell(void)
{
    fixture *g = open_fx("othernode", NULL);
    ob_scrub *s = new_scrub(g, 0);
    put_object(g, "split", 95, 30000, 1);
    md_layout l = layout_of(g, "split", 0), moved = l;
    moved.nodes[2] = 9;
    moved.epoch = 1;
    CU_ASSERT_FATAL(md_object_replace_layout(g->md, BUCKET, "split", 0, l.blob, &moved) == CM_OK);
    CU_ASSERT_EQUAL(ob_scrub_run_once(s), CM_OK);
    ob_scrub_status st;
    ob_scrub_get_status(s, &st);
    CU_ASSERT_EQUAL(st.bodies_checked, 1);
    CU_ASSERT_EQUAL(st.damaged_found, 0);
    CU_ASSERT_EQUAL(st.repaired, 0);
    CU_ASSERT_EQUAL(layout_of(g, "split", 0).nodes[2], 9); /* the record kept its layout */
    CU_ASSERT(object_ok(g, "split", 95, 30000));           /* read without cell 2 */
    ob_scrub_free(s);
    close_fx(g);
}

/* ---- one body, without a scrubber ---- */

typedef struct {
    uint64_t paced, verified, stop_after; /* stop_after: bytes paced before stopping; 0 = never */
} pace_log;

static int t_pace(void *arg, uint64_t n)
{
    pace_log *l = arg;
    l->paced += n;
    return l->stop_after && l->paced > l->stop_after;
}

static void t_verified(void *arg, uint64_t n)
{
    ((pace_log *)arg)->verified += n;
}

static void test_body_verify_repair(void)
{
    fixture *g = open_fx("body", NULL);
    static uint8_t buf[8192];
    put_object(g, "b", 97, 70000, 1);
    md_layout l = layout_of(g, "b", 0);
    uint64_t cell_len = ob_layout_cell_blob_len(&l);
    pace_log log = {0};
    ob_pacer pacer = {t_pace, t_verified, &log};
    cm_err why;
    CU_ASSERT_EQUAL(ob_body_verify(g->data, &l, buf, sizeof(buf), &pacer, &why), 0);
    CU_ASSERT_EQUAL(why, CM_OK);
    CU_ASSERT_EQUAL(log.verified, 6 * cell_len); /* every cell, in full */
    CU_ASSERT_EQUAL(log.paced, log.verified);

    CU_ASSERT(flip_in_segments(g, l.drives[4], l.blob, 50));
    CU_ASSERT_EQUAL(ob_body_verify(g->data, &l, buf, sizeof(buf), NULL, &why), 1);
    CU_ASSERT_EQUAL(why, CM_ERR_CORRUPT);
    pace_log stop = {.stop_after = cell_len};
    pacer.arg = &stop;
    CU_ASSERT_EQUAL(ob_body_verify(g->data, &l, buf, sizeof(buf), &pacer, &why), -1);

    md_object o;
    md_layout fresh;
    CU_ASSERT_FATAL(ob_object_get_leased(g->data, g->md, BUCKET, "b", &o) == CM_OK);
    stop.paced = 0;
    CU_ASSERT_EQUAL(ob_body_repair(g->data, g->md, BUCKET, &o, 0, &pacer, &fresh), CM_ERR_CLOSED);
    CU_ASSERT(memcmp(layout_of(g, "b", 0).blob, l.blob, 16) == 0); /* stopped: nothing swapped */
    CU_ASSERT_EQUAL(ob_body_repair(g->data, g->md, BUCKET, &o, 0, NULL, &fresh), CM_OK);
    CU_ASSERT(memcmp(layout_of(g, "b", 0).blob, fresh.blob, 16) == 0);
    CU_ASSERT(blob_exists(g, &l, 0)); /* leased: the old body stays until released */
    ob_lease_release(g->data, &o);
    md_object_release(&o);
    ob_store_drain(g->data);
    CU_ASSERT(!blob_exists(g, &l, 0));
    CU_ASSERT_EQUAL(ob_body_verify(g->data, &fresh, buf, sizeof(buf), NULL, &why), 0);
    CU_ASSERT(object_ok(g, "b", 97, 70000));
    /* Repairing from a record that was replaced meanwhile conflicts and leaves nothing behind. */
    md_layout fresh2, fresh3;
    CU_ASSERT_FATAL(ob_object_get_leased(g->data, g->md, BUCKET, "b", &o) == CM_OK);
    CU_ASSERT_EQUAL(ob_body_repair(g->data, g->md, BUCKET, &o, 0, NULL, &fresh2), CM_OK);
    CU_ASSERT_EQUAL(ob_body_repair(g->data, g->md, BUCKET, &o, 0, NULL, &fresh3), CM_ERR_CONFLICT);
    CU_ASSERT(memcmp(layout_of(g, "b", 0).blob, fresh2.blob, 16) == 0);
    ob_lease_release(g->data, &o);
    md_object_release(&o);
    ob_store_drain(g->data);
    for (int i = 0; i < 6; i++) {
        CU_ASSERT(!blob_exists(g, &fresh, i));
        CU_ASSERT(!blob_exists(g, &fresh3, i));
        CU_ASSERT(blob_exists(g, &fresh2, i));
    }
    CU_ASSERT(object_ok(g, "b", 97, 70000));
    close_fx(g);
}

/*
 * A body stored encrypted (docs/encryption.md) has the plaintext's MD5 as its ETag, which the
 * stored bytes never match: the repair must not refuse it for that (it refused, with
 * CM_ERR_DIGEST, before it knew), while a plain body whose bytes do not give its ETag still is.
 */
static void test_repair_sealed_body(void)
{
    fixture *g = open_fx("sealed", NULL);
    static uint8_t buf[8192];
    cm_err why;
    put_object(g, "s", 31, 70000, 1);
    md_layout l = layout_of(g, "s", 0);
    CU_ASSERT(flip_in_segments(g, l.drives[2], l.blob, 60));
    md_object o;
    md_layout fresh;
    CU_ASSERT_FATAL(ob_object_get_leased(g->data, g->md, BUCKET, "s", &o) == CM_OK);
    memset(o.parts[0].etag, 'a', 32); /* not the MD5 of the stored bytes */
    CU_ASSERT_EQUAL(ob_body_repair(g->data, g->md, BUCKET, &o, 0, NULL, &fresh), CM_ERR_DIGEST);
    o.parts[0].sse_seg = 65536; /* as an encrypted part: its ETag is of the plaintext */
    o.parts[0].sse_key_len = 65;
    CU_ASSERT_EQUAL(ob_body_repair(g->data, g->md, BUCKET, &o, 0, NULL, &fresh), CM_OK);
    CU_ASSERT(memcmp(layout_of(g, "s", 0).blob, fresh.blob, 16) == 0);
    ob_lease_release(g->data, &o);
    md_object_release(&o);
    ob_store_drain(g->data);
    CU_ASSERT_EQUAL(ob_body_verify(g->data, &fresh, buf, sizeof(buf), NULL, &why), 0);
    CU_ASSERT(object_ok(g, "s", 31, 70000));
    close_fx(g);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"replace_layout", test_replace_layout},
        {"scrub_repairs", test_scrub_repairs},
        {"scrub_versions", test_scrub_versions},
        {"scrub_unrepairable", test_scrub_unrepairable},
        {"scrub_object_changed", test_scrub_object_changed},
        {"scrub_rate", test_scrub_rate},
        {"scrub_other_node_cell", test_scrub_other_node_cell},
        {"body_verify_and_repair", test_body_verify_repair},
        {"repair_sealed_body", test_repair_sealed_body},
        {NULL, NULL},
    };
    cm_log_set_level(CM_LOG_ERROR);
    cu_add_suite("obj_scrub", tests);
}
