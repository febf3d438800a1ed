/*
 * test_obj_lease.c - read leases (ob_lease.c) when a drive does not answer: the last reader
 * of a replaced body (an event loop ending a GET) must not wait for the drive to delete it.
 *
 * Drive 0's writes are held at a gate (cu_gate.h) and its delete queue is filled, so the only way
 * the release could delete is to wait. The release must return at once, leaving the blob as a
 * leftover that a worker-side call (ob_lease_delete_leftovers, also run by ob_free_object_data)
 * deletes once the drive answers.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_util.h"
#include "cu_data.h"
#include "cu_gate.h"
#include "cu_main.h"
#include "ob_int.h"

#define CELL 4096u

static md_layout store_body(ob_store *st, size_t size)
{
    ob_writer *w = NULL;
    md_layout lay;
    uint8_t *buf = malloc(size);
    CU_ASSERT_FATAL(buf != NULL);
    memset(buf, 0x5A, size);
    CU_ASSERT_FATAL(ob_writer_new(st, &w) == CM_OK);
    CU_ASSERT_FATAL(ob_writer_write(w, buf, size) == CM_OK);
    CU_ASSERT_FATAL(ob_writer_finish(w, &lay) == CM_OK);
    free(buf);
    return lay;
}

static int blob_on_any_drive(ob_store *st, const md_layout *lay)
{
    bs_id id;
    uint64_t sz;
    int n = 0;
    memcpy(id.b, lay->blob, 16);
    for (int i = 0; i < lay->k + lay->m; i++)
        n += bs_size(ob_store_drive(st, lay->drives[i]), &id, &sz) == CM_OK;
    return n;
}

typedef struct {
    ob_store *st;
    const md_object *obj;
    cu_gate *gate; /* its mutex and cond signal `done` */
    int done;
} release_job;

static void *release_thread(void *p)
{
    release_job *j = p;
    ob_lease_release(j->st, j->obj);
    cu_gate_count(j->gate, &j->done);
    return NULL;
}

static void test_release_does_not_wait(void)
{
    static cu_gated_dir sc = {.gate = CU_GATE_INIT};
    char root[512];
    static char names[6][600];
    const char *dirs[6];
    snprintf(root, sizeof(root), "%s/lease", cu_tmpdir());
    mkdir(root, 0755);
    for (int i = 0; i < 6; i++) {
        snprintf(names[i], sizeof(names[i]), "%s/drive%d", root, i);
        dirs[i] = names[i];
    }
    snprintf(sc.dir, sizeof(sc.dir), "%s/", names[0]);
    bs_io io = bs_io_posix;
    io.open = cu_gated_open;
    io.pwrite = cu_gated_pwrite;
    io.ctx = &sc;
    ob_store *st = NULL;
    ob_store_options so = {.k = 4, .m = 2, .cell_size = CELL, .io = &io};
    CU_ASSERT_FATAL(ob_store_open(dirs, 6, &so, &st) == CM_OK);

    md_layout read = store_body(st, 5 * 4 * CELL), stuck = store_body(st, 4 * CELL);
    md_part part = {.size = read.size, .layout = read};
    md_object obj = {.parts = &part, .nparts = 1};
    CU_ASSERT_FATAL(ob_lease_acquire(st, &obj) == CM_OK); /* a GET is reading it */

    /* Drive 0 stops answering while deleting `stuck`; its queue fills up. */
    cu_gate_set(&sc.gate, 1);
    CU_ASSERT_EQUAL(ob_delete_async(st, &stuck), CM_OK);
    cu_gate_wait_held(&sc.gate);
    /* Fill drive 0's queue exactly. A delete is queued on all six drives or on none, and the
     * other drives' queues may be full for a moment too (their threads drain them): on CM_AGAIN
     * wait a little and retry, so the loop ends only when drive 0's queue is full, never because
     * a busy machine let another drive fall behind. */
    md_layout filler = stuck;
    int queued = 0, again = 0;
    CU_ASSERT_FATAL(bs_id_new((bs_id *)filler.blob) == CM_OK);
    while (queued < OB_DELETE_QUEUE && again < 20000) {
        if (ob_delete_async(st, &filler) == CM_OK) {
            queued++;
            CU_ASSERT_FATAL(bs_id_new((bs_id *)filler.blob) == CM_OK);
        } else {
            again++;
            usleep(500); /* the other drives' threads make room */
        }
    }
    CU_ASSERT_FATAL(queued == OB_DELETE_QUEUE);
    CU_ASSERT_EQUAL(ob_delete_async(st, &filler), CM_AGAIN); /* drive 0 is full */

    /* An overwrite frees the body being read; the reader then finishes. */
    ob_free_object_data(st, &obj);
    CU_ASSERT_EQUAL(blob_on_any_drive(st, &read), 6); /* leased: still there */
    release_job j = {st, &obj, &sc.gate, 0};
    pthread_t t;
    CU_ASSERT_FATAL(pthread_create(&t, NULL, release_thread, &j) == 0);
    /* The release returned while drive 0 was held. */
    CU_ASSERT_EQUAL(cu_gate_wait_count(&sc.gate, &j.done, 1, 3), 1);

    cu_gate_set(&sc.gate, 0);
    pthread_join(t, NULL);
    ob_store_drain(st);
    CU_ASSERT_EQUAL(blob_on_any_drive(st, &read), 6); /* a leftover: nobody deleted it yet */
    ob_lease_delete_leftovers(st);                    /* what the next worker-side free does */
    ob_store_drain(st);
    CU_ASSERT_EQUAL(blob_on_any_drive(st, &read), 0);
    CU_ASSERT_EQUAL(blob_on_any_drive(st, &stuck), 0);

    ob_store_close(st);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"release_does_not_wait_for_a_drive", test_release_does_not_wait}, {NULL, NULL}};
    cu_add_suite("obj_lease", tests);
}
