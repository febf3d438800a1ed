/*
 * test_obj_gc.c - garbage reclaim (ob_gc.c): a body replaced in the replicated metadata becomes a
 * garbage record and is freed only once older than the grace period; a GET on this node still
 * reading it (a lease) keeps its chunks until it releases them; the records are dropped after.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cu_main.h"
#include "ob_int.h"

#define CELL 4096u

static md_layout store_body(ob_store *st, size_t size, uint8_t fill)
{
    ob_writer *w = NULL;
    md_layout lay;
    uint8_t *buf = malloc(size);
    CU_ASSERT_FATAL(buf != NULL);
    memset(buf, fill, size);
    CU_ASSERT_FATAL(ob_writer_new(st, &w) == CM_OK);
    CU_ASSERT_FATAL(ob_writer_write(w, buf, size) == CM_OK);
    CU_ASSERT_FATAL(ob_writer_finish(w, &lay) == CM_OK);
    free(buf);
    return lay;
}

static int cells_present(ob_store *st, const md_layout *lay)
{
    bs_id id;
    uint64_t sz;
    int n = 0;
    ob_store_drain(st);
    memcpy(id.b, lay->blob, 16);
    for (int i = 0; i < lay->k + lay->m; i++)
        n += bs_size(ob_store_drive(st, lay->drives[i]), &id, &sz) == CM_OK;
    return n;
}

static size_t garbage_count(md_store *md)
{
    md_garbage *g;
    size_t n = 0;
    CU_ASSERT(md_garbage_list(md, UINT64_MAX, 100, &g, &n) == CM_OK);
    md_garbage_free(g, n);
    return n;
}

static void test_grace_lease_drop(void)
{
    char root[512], mdir[600];
    static char names[6][600];
    const char *dirs[6];
    snprintf(root, sizeof(root), "%s/gc", cu_tmpdir());
    mkdir(root, 0755);
    for (int i = 0; i < 6; i++) {
        snprintf(names[i], sizeof(names[i]), "%s/drive%d", root, i);
        dirs[i] = names[i];
    }
    ob_store_options so = {.k = 4, .m = 2, .cell_size = CELL};
    ob_store *st = NULL;
    CU_ASSERT_FATAL(ob_store_open(dirs, 6, &so, &st) == CM_OK);
    md_store *md = NULL;
    snprintf(mdir, sizeof(mdir), "%s/meta", root);
    mkdir(mdir, 0755);
    CU_ASSERT_FATAL(md_open(mdir, 0, &md) == CM_OK);
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "b");
    CU_ASSERT_FATAL(md_bucket_create(md, &b) == CM_OK);

    const int64_t t1 = 1000000, t2 = 2000000; /* ms */
    md_layout l1 = store_body(st, 3 * 4 * CELL + 100, 0x11);
    md_layout l2 = store_body(st, 4 * CELL, 0x22);
    md_part p1 = {.size = l1.size, .layout = l1}, p2 = {.size = l2.size, .layout = l2};
    md_object a = {
        .key = "k", .size = l1.size, .hlc = MD_HLC_MAKE(t1, 0), .parts = &p1, .nparts = 1};
    md_object bobj = {
        .key = "k", .size = l2.size, .hlc = MD_HLC_MAKE(t2, 0), .parts = &p2, .nparts = 1};
    CU_ASSERT_FATAL(md_rec_put(md, "b", &a, 0, NULL) == CM_OK);
    CU_ASSERT_FATAL(md_rec_put(md, "b", &bobj, 1, NULL) == CM_OK); /* l1 is garbage at t2 */
    CU_ASSERT_EQUAL(garbage_count(md), 1);
    CU_ASSERT_EQUAL(cells_present(st, &l1), 6);

    /* Inside the grace period: nothing freed, nothing dropped. */
    uint64_t freed = 99;
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t2 + 4999, 5000, 100, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 0);
    CU_ASSERT_EQUAL(cells_present(st, &l1), 6);
    CU_ASSERT_EQUAL(garbage_count(md), 1);

    /* Past it, but a GET on this node still reads the body: the chunks stay until it ends. */
    CU_ASSERT_FATAL(ob_lease_acquire(st, &a) == CM_OK);
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t2 + 5001, 5000, 100, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 1);
    CU_ASSERT_EQUAL(garbage_count(md), 0);
    CU_ASSERT_EQUAL(cells_present(st, &l1), 6);
    ob_lease_release(st, &a);
    ob_lease_delete_leftovers(st);
    CU_ASSERT_EQUAL(cells_present(st, &l1), 0);
    CU_ASSERT_EQUAL(cells_present(st, &l2), 6); /* the live body is untouched */

    /* max bounds one run; the rest waits for the next. */
    for (int i = 0; i < 3; i++) {
        md_layout l = store_body(st, 4 * CELL, (uint8_t)(0x30 + i));
        md_part p = {.size = l.size, .layout = l};
        md_object o = {.key = "k",
                       .size = l.size,
                       .hlc = MD_HLC_MAKE(t2 + 10 + i, 0),
                       .parts = &p,
                       .nparts = 1};
        CU_ASSERT_FATAL(md_rec_put(md, "b", &o, MD_GEN_ANY, NULL) == CM_OK);
    }
    CU_ASSERT_EQUAL(garbage_count(md), 3);
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t2 + 100000, 5000, 2, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 2);
    CU_ASSERT_EQUAL(garbage_count(md), 1);
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t2 + 100000, 5000, 100, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 1);
    CU_ASSERT_EQUAL(garbage_count(md), 0);
    CU_ASSERT_EQUAL(cells_present(st, &l2), 0);
    md_close(md);
    ob_store_close(st);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"grace_lease_drop", test_grace_lease_drop}, {NULL, NULL}};
    cu_add_suite("obj_gc", tests);
}
