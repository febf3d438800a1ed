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

/* A store of n drives (4+2) under cu_tmpdir()/name, whose path goes to root. */
static ob_store *open_store(char *root, size_t cap, const char *name, int n)
{
    static char names[8][600]; /* the store keeps the paths */
    const char *dirs[8];
    snprintf(root, cap, "%s/%s", cu_tmpdir(), name);
    mkdir(root, 0755);
    for (int i = 0; i < n && i < 8; i++) {
        snprintf(names[i], sizeof(names[i]), "%s/drive%d", root, i);
        dirs[i] = names[i];
    }
    ob_store_options so = {.k = 4, .m = 2, .cell_size = CELL};
    ob_store *st = NULL;
    CU_ASSERT_FATAL(ob_store_open(dirs, n, &so, &st) == CM_OK);
    return st;
}

static md_store *open_md(const char *root, const char *name)
{
    char dir[700];
    md_store *md = NULL;
    snprintf(dir, sizeof(dir), "%s/%s", root, name);
    mkdir(dir, 0755);
    CU_ASSERT_FATAL(md_open(dir, 0, &md) == CM_OK);
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "b");
    CU_ASSERT_FATAL(md_bucket_create(md, &b) == CM_OK);
    return md;
}

static void test_grace_lease_drop(void)
{
    char root[512];
    ob_store *st = open_store(root, sizeof(root), "gc", 6);
    md_store *md = open_md(root, "meta");

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
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t2 + 4999, 5000, 100, NULL, NULL, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 0);
    CU_ASSERT_EQUAL(cells_present(st, &l1), 6);
    CU_ASSERT_EQUAL(garbage_count(md), 1);

    /* Past it, but a GET on this node still reads the body: the chunks stay until it ends. */
    CU_ASSERT_FATAL(ob_lease_acquire(st, &a) == CM_OK);
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t2 + 5001, 5000, 100, NULL, NULL, &freed), CM_OK);
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
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t2 + 100000, 5000, 2, NULL, NULL, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 2);
    CU_ASSERT_EQUAL(garbage_count(md), 1);
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t2 + 100000, 5000, 100, NULL, NULL, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 1);
    CU_ASSERT_EQUAL(garbage_count(md), 0);
    CU_ASSERT_EQUAL(cells_present(st, &l2), 0);
    md_close(md);
    ob_store_close(st);
}

/* The "quorum" of the reclaim's check: a second store holding the newest records, or down. */
typedef struct {
    md_store *md;
    int down;
    int calls;
} quorum;

static cm_err quorum_read(void *arg, const char *bucket, const char *key, md_object *out)
{
    quorum *q = arg;
    q->calls++;
    return q->down ? CM_ERR_UNAVAILABLE : md_rec_get(q->md, bucket, key, out);
}

static int on_drive(ob_store *st, const md_layout *lay, uint8_t d)
{
    bs_id id;
    uint64_t sz;
    ob_store_drain(st);
    memcpy(id.b, lay->blob, 16);
    return bs_size(ob_store_drive(st, d), &id, &sz) == CM_OK;
}

/* A drive of the 8-drive store holding no cell of lay: where a repair would rebuild one. Each
 * body has its own (the store rotates the first drive per body). */
static uint8_t spare_of(const md_layout *lay)
{
    uint8_t spare = 0;
    while (memchr(lay->drives, spare, (size_t)(lay->k + lay->m)))
        spare++;
    return spare;
}

/* A record of key with one part at lay, in bucket "b" of md. */
static void put_rec(md_store *md, const char *key, const md_layout *lay, int64_t ms)
{
    md_part p = {.size = lay->size, .layout = *lay};
    md_object o = {
        .key = (char *)key, .size = lay->size, .hlc = MD_HLC_MAKE(ms, 0), .parts = &p, .nparts = 1};
    CU_ASSERT_FATAL(md_rec_put(md, "b", &o, MD_GEN_ANY, NULL) == CM_OK);
}

/* The garbage entry a repair swap leaves: lay's blob with only cell i, at ms. */
static void put_obsolete(md_store *md, const char *key, const md_layout *lay, int i, int64_t ms)
{
    md_garbage g = {MD_HLC_MAKE(ms, 0), *lay, "b", (char *)key};
    memset(g.layout.drives, 0xFF, sizeof(g.layout.drives));
    g.layout.drives[i] = lay->drives[i];
    CU_ASSERT_FATAL(md_garbage_put(md, &g, 1) == CM_OK);
}

/*
 * The obsolete cells of a repair's swap (a garbage entry whose blob is still live): kept through
 * the grace period, then only the cells no record names are deleted, and the rest of the body is
 * untouched. A cell that moved back to its old place within the grace period (the record read at
 * quorum names it, while this replica still has the layout before) is not deleted; a quorum that
 * cannot be read puts the entry off instead of deciding on the local record alone.
 */
static void test_obsolete_cells(void)
{
    char root[512];
    ob_store *st = open_store(root, sizeof(root), "gc-obsolete", 8);
    md_store *md = open_md(root, "meta"), *qmd = open_md(root, "quorum");
    quorum q = {qmd, 0, 0};
    const int64_t t = 1000000, grace = 5000;
    uint64_t freed = 99;

    /* 1. cell 0 rebuilt on a spare drive: its old place is garbage, freed after the grace. */
    md_layout a = store_body(st, 4 * CELL, 0x41), a2 = a;
    a2.drives[0] = spare_of(&a);
    put_rec(md, "ka", &a2, t), put_rec(qmd, "ka", &a2, t);
    put_obsolete(md, "ka", &a, 0, t);
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t + grace - 1, grace, 100, quorum_read, &q, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 0);
    CU_ASSERT_EQUAL(cells_present(st, &a), 6);
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t + grace + 1, grace, 100, quorum_read, &q, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 1);
    CU_ASSERT_EQUAL(garbage_count(md), 0);
    CU_ASSERT(!on_drive(st, &a, a.drives[0]));
    CU_ASSERT_EQUAL(cells_present(st, &a), 5); /* the cells the record names stay */

    /* 2. the cell moved back home within the grace: the quorum's record names the place again
     * (this replica missed that swap and still names the spare drive). */
    md_layout b = store_body(st, 4 * CELL, 0x42), b2 = b;
    b2.drives[0] = spare_of(&b);
    put_rec(md, "kb", &b2, t), put_rec(qmd, "kb", &b, t);
    put_obsolete(md, "kb", &b, 0, t);
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t + grace + 1, grace, 100, quorum_read, &q, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 1);
    CU_ASSERT_EQUAL(garbage_count(md), 0);
    CU_ASSERT_EQUAL(cells_present(st, &b), 6);

    /* 3. no quorum: put off a minute (not freed on the local record alone), then freed. */
    md_layout c = store_body(st, 4 * CELL, 0x43), c2 = c;
    c2.drives[0] = spare_of(&c);
    put_rec(md, "kc", &c2, t), put_rec(qmd, "kc", &c2, t);
    for (int i = 0; i < 6; i++) /* six entries: the run gives the quorum up after four */
        put_obsolete(md, "kc", &c, 0, t - i);
    q.down = 1, q.calls = 0;
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t + grace + 1, grace, 100, quorum_read, &q, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 0);
    CU_ASSERT_EQUAL(q.calls, 4);
    CU_ASSERT_EQUAL(garbage_count(md), 6);
    CU_ASSERT_EQUAL(cells_present(st, &c), 6);
    q.down = 0;
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t + grace + 2, grace, 100, quorum_read, &q, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 0); /* not due again yet */
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t + grace + 61002, grace, 100, quorum_read, &q, &freed),
                    CM_OK);
    CU_ASSERT_EQUAL(freed, 6);
    CU_ASSERT_EQUAL(garbage_count(md), 0);
    CU_ASSERT_EQUAL(cells_present(st, &c), 5);

    /* 4. a body replaced by a PUT (another blob) is freed whole, without asking the quorum. */
    md_layout d = store_body(st, 4 * CELL, 0x44), e = store_body(st, 4 * CELL, 0x45);
    put_rec(md, "kd", &d, t);
    put_rec(md, "kd", &e, t + 1); /* d is garbage at t + 1 */
    q.down = 1;
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t + grace + 2, grace, 100, quorum_read, &q, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 1);
    CU_ASSERT_EQUAL(cells_present(st, &d), 0);
    CU_ASSERT_EQUAL(cells_present(st, &e), 6);
    CU_ASSERT_EQUAL(cells_present(st, &b), 6);
    md_close(qmd);
    md_close(md);
    ob_store_close(st);
}

/* The tombstone a Complete leaves on a part record whose body the object keeps (rp_upload.c
 * end_one): it names the part's layout as the Complete read it. */
static void put_kept_tombstone(md_store *md, const char *key, const md_layout *lay, int64_t ms)
{
    md_part p = {.size = lay->size, .layout = *lay};
    md_object o = {
        .key = (char *)key, .hlc = MD_HLC_MAKE(ms, 0), .tombstone = 1, .parts = &p, .nparts = 1};
    memcpy(o.version_id, "null", 5);
    CU_ASSERT_FATAL(md_rec_put(md, "b", &o, MD_GEN_ANY, NULL) == CM_OK);
}

/*
 * A repair swap of a multipart part record racing CompleteMultipartUpload (h85): the Complete read
 * the part before the swap, so the object record, and the tombstone it leaves on the part's key,
 * name the layout before; the swap's obsolete cells (a garbage entry of the part's key) are those
 * very cells. The reclaim must keep what the tombstone names: the object owns the body now, and
 * freeing them took cells from a completed object gc_grace_s later. A Complete that read the part
 * after the swap names the new layout: then the old places are freed as before.
 */
static void test_obsolete_after_complete(void)
{
    char root[512];
    ob_store *st = open_store(root, sizeof(root), "gc-complete", 8);
    md_store *md = open_md(root, "meta"), *qmd = open_md(root, "quorum");
    quorum q = {qmd, 0, 0};
    const int64_t t = 1000000, grace = 5000;
    uint64_t freed = 99;

    /* 1. the Complete read the part before the swap: the object names cell 0's old place */
    md_layout a = store_body(st, 4 * CELL, 0x51), a2 = a;
    a2.drives[0] = spare_of(&a);
    put_rec(md, "part-a", &a2, t), put_rec(qmd, "part-a", &a2, t); /* the swap landed */
    put_rec(md, "object", &a, t + 2), put_rec(qmd, "object", &a, t + 2);
    put_kept_tombstone(md, "part-a", &a, t + 1), put_kept_tombstone(qmd, "part-a", &a, t + 1);
    put_obsolete(md, "part-a", &a, 0, t);
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t + grace + 1, grace, 100, quorum_read, &q, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 1);
    CU_ASSERT_EQUAL(garbage_count(md), 0);
    CU_ASSERT(on_drive(st, &a, a.drives[0])); /* the object's cell stays */
    CU_ASSERT_EQUAL(cells_present(st, &a), 6);

    /* 2. the Complete read the part after the swap: the old place is nobody's, freed */
    md_layout b = store_body(st, 4 * CELL, 0x52), b2 = b;
    b2.drives[0] = spare_of(&b);
    put_rec(md, "part-b", &b2, t), put_rec(qmd, "part-b", &b2, t);
    put_rec(md, "object-b", &b2, t + 2), put_rec(qmd, "object-b", &b2, t + 2);
    put_kept_tombstone(md, "part-b", &b2, t + 1), put_kept_tombstone(qmd, "part-b", &b2, t + 1);
    put_obsolete(md, "part-b", &b, 0, t);
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t + grace + 1, grace, 100, quorum_read, &q, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 1);
    CU_ASSERT(!on_drive(st, &b, b.drives[0]));
    CU_ASSERT_EQUAL(cells_present(st, &b), 5);

    /* 3. this replica missed the Complete (its part record is the swapped one): the quorum's
     * record, the tombstone (cmd/cluster.c reads it with rp_record_get), keeps the cell */
    md_layout e = store_body(st, 4 * CELL, 0x54), e2 = e;
    e2.drives[0] = spare_of(&e);
    put_rec(md, "part-e", &e2, t), put_rec(qmd, "part-e", &e2, t);
    put_kept_tombstone(qmd, "part-e", &e, t + 1);
    put_obsolete(md, "part-e", &e, 0, t);
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t + grace + 1, grace, 100, quorum_read, &q, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 1);
    CU_ASSERT(on_drive(st, &e, e.drives[0]));

    /* 4. a plain tombstone (a deleted key) names nothing: the obsolete cell is freed */
    md_layout c = store_body(st, 4 * CELL, 0x53);
    md_object del = {.key = "part-c", .hlc = MD_HLC_MAKE(t + 1, 0), .tombstone = 1};
    memcpy(del.version_id, "null", 5);
    CU_ASSERT_FATAL(md_rec_put(md, "b", &del, MD_GEN_ANY, NULL) == CM_OK);
    put_obsolete(md, "part-c", &c, 0, t);
    CU_ASSERT_EQUAL(ob_gc_run(st, md, t + grace + 1, grace, 100, quorum_read, &q, &freed), CM_OK);
    CU_ASSERT_EQUAL(freed, 1);
    CU_ASSERT(!on_drive(st, &c, c.drives[0]));
    md_close(qmd);
    md_close(md);
    ob_store_close(st);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"grace_lease_drop", test_grace_lease_drop},
                                    {"obsolete_cells", test_obsolete_cells},
                                    {"obsolete_after_complete", test_obsolete_after_complete},
                                    {NULL, NULL}};
    cu_add_suite("obj_gc", tests);
}
