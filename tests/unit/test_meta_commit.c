/*
 * test_meta_commit.c - group commit of the metadata store (meta/md_commit.c).
 *
 * Batches are made deterministic without sleeping: a batch hook (md_gc_set_hook) holds the first
 * leader until a given number of ops has queued behind it (md_gc_wait_queued is signalled per
 * enqueue), so the next batch holds exactly those ops.
 *
 *   batch_isolation   one batch mixing successes and every kind of failure (NOTFOUND, If-Match
 *                     on a missing key, MAP_FULL in its nested txn, If-None-Match on an existing
 *                     key, EXISTS, two racing If-None-Match puts of one key): each op gets its own
 *                     result, the failures leave no trace, the successes all commit in one sync.
 *   flat_batch        a batch whose ops all succeed (puts, If-None-Match puts of new keys, a
 *                     delete of a missing key) runs straight in the batch's transaction, with no
 *                     nested rerun (batch_isolation's batch needs one), and commits once.
 *   put_async         24 md_object_put_async calls from one thread that never waits form one
 *                     batch; each done runs once, on another thread, with its own result (one
 *                     If-None-Match failure) and the record it replaced (one from before, one
 *                     from earlier in the same batch); an invalid key fails at once.
 *   commit_failure    the same batch with its commit failing (injected MAP_FULL, then EIO on a
 *                     lone op): every op gets the commit error, nothing is written, no replaced
 *                     record is handed out, and the store works afterwards.
 *   upload_race       complete, abort and a part put of one upload, and a self-repair layout
 *                     swap and an overwrite of one object, all in one batch: one of complete and
 *                     abort wins and takes the part iff it was ordered first; the overwrite hands
 *                     back the record with or without the swapped layout, as the repair saw it.
 *   conditional_race  32 threads race If-None-Match puts on 20 keys: exactly one winner per key,
 *                     whose record is the one stored; fewer commits than ops.
 *   hammer            16 threads x 250 random puts, deletes, If-None-Match and If-Match puts and
 *                     If-Match deletes on 12 overlapping keys. The replaced records returned
 *                     (unique etags) must chain into one serial history per key; replaying the
 *                     winners serially into a fresh store gives the same final state.
 *
 * Seeded (printed; CAIRN_TEST_SEED repeats a run).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_log.h"
#include "cu_main.h"
#include "md.h"
#include "md_int.h"

static unsigned seed;

static md_store *open_store(const char *name, size_t map)
{
    char dir[512];
    md_store *md = NULL;
    snprintf(dir, sizeof(dir), "%s/%s", cu_tmpdir(), name);
    CU_ASSERT_EQUAL_FATAL(md_open(dir, map, &md), CM_OK);
    return md;
}

static void mk_bucket(md_store *md, const char *name)
{
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "%s", name);
    b.created_ms = 1700000000000LL;
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK);
}

/* A plain object record (strings point at the arguments, not owned). */
static md_object mk_obj(const char *key, const char *etag)
{
    md_object o = {0};
    o.key = (char *)key;
    snprintf(o.etag, sizeof(o.etag), "%s", etag);
    snprintf(o.version_id, sizeof(o.version_id), "null");
    o.size = 1;
    o.mtime_ms = 1700000000123LL;
    return o;
}

/* The etag of bucket/key's current record, or "" when there is none. */
static void etag_of(md_store *md, const char *key, char *out, size_t cap)
{
    md_object got;
    out[0] = 0;
    if (md_object_get(md, "b", key, &got) == CM_OK) {
        snprintf(out, cap, "%s", got.etag);
        md_object_release(&got);
    }
}

static void stats_delta(md_store *md, const md_stats *before, md_stats *d)
{
    md_stats now;
    md_stats_get(md, &now);
    d->ops = now.ops - before->ops;
    d->ops_committed = now.ops_committed - before->ops_committed;
    d->ops_failed = now.ops_failed - before->ops_failed;
    d->batches = now.batches - before->batches;
    d->batches_nested = now.batches_nested - before->batches_nested;
    d->commits = now.commits - before->commits;
    d->commit_errors = now.commit_errors - before->commit_errors;
    d->max_batch = now.max_batch;
}

/* ---- Holding the first batch until n ops queue behind it ---- */

typedef struct {
    md_store *md;
    size_t want;
    int calls;      /* touched by the commit thread only */
    size_t first_n; /* ops in the first batch (1 when blocker_start started it) */
    int entered;
    cm_err rc;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} blocker;

/* The first batch (n ops) waits until want + 1 ops are in it or queued behind it. */
static void block_first(void *arg, size_t n)
{
    blocker *b = arg;
    if (b->calls++ > 0)
        return;
    b->first_n = n;
    pthread_mutex_lock(&b->mu);
    b->entered = 1;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    md_gc_wait_queued(b->md, n > b->want ? 0 : b->want + 1 - n);
}

static void blocker_init(blocker *b, md_store *md, size_t want)
{
    memset(b, 0, sizeof(*b));
    b->md = md;
    b->want = want;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    md_gc_set_hook(md, block_first, b);
}

static void blocker_release(blocker *b)
{
    md_gc_set_hook(b->md, NULL, NULL);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
}

static void *blocker_put(void *arg)
{
    blocker *b = arg;
    md_object o = mk_obj("blocker", "b0");
    b->rc = md_object_put(b->md, "b", &o, NULL, NULL, NULL);
    return NULL;
}

/* Start a put that leads the first batch and waits in the hook; return once it is there. */
static void blocker_start(blocker *b, pthread_t *t)
{
    pthread_create(t, NULL, blocker_put, b);
    pthread_mutex_lock(&b->mu);
    while (!b->entered)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

/* ---- One batch of mixed ops ---- */

enum {
    K_PUT_A,
    K_NOBUCKET,
    K_IFMATCH_MISSING,
    K_BIG,
    K_DEL_MISSING,
    K_INM_EXISTING,
    K_BUCKET_EXISTS,
    K_RACE1,
    K_RACE2,
    K_PUT_H,
    K_DEL_D,
    NKINDS
};

typedef struct {
    md_store *md;
    int kind;
    cm_err rc;
    int had_old;
    md_object old;
} mixed_op;

static uint8_t big_body[2 << 20]; /* larger than the 1 MiB map: MAP_FULL in its nested txn */

static void *run_mixed(void *arg)
{
    mixed_op *m = arg;
    md_object o = mk_obj(m->kind == K_PUT_H ? "h" : "a", m->kind == K_PUT_H ? "eh" : "ea");
    md_cond im = {.if_match = "zz"}, inm = {.if_none_match_star = 1};
    md_bucket b = {.name = "b"};
    switch (m->kind) {
    case K_NOBUCKET:
        m->rc = md_object_put(m->md, "nob", &o, NULL, NULL, NULL);
        break;
    case K_IFMATCH_MISSING:
        o = mk_obj("c", "ec");
        m->rc = md_object_put(m->md, "b", &o, &im, NULL, NULL);
        break;
    case K_BIG:
        o = mk_obj("big", "eb");
        o.inline_data = big_body, o.inline_len = sizeof(big_body);
        m->rc = md_object_put(m->md, "b", &o, NULL, NULL, NULL);
        break;
    case K_DEL_MISSING:
        m->rc = md_object_delete(m->md, "b", "missing", NULL, &m->old, &m->had_old);
        break;
    case K_INM_EXISTING:
        o = mk_obj("pre", "ex");
        m->rc = md_object_put(m->md, "b", &o, &inm, NULL, NULL);
        break;
    case K_BUCKET_EXISTS:
        m->rc = md_bucket_create(m->md, &b);
        break;
    case K_RACE1:
    case K_RACE2:
        o = mk_obj("race", m->kind == K_RACE1 ? "r1" : "r2");
        m->rc = md_object_put(m->md, "b", &o, &inm, NULL, NULL);
        break;
    case K_DEL_D:
        m->rc = md_object_delete(m->md, "b", "d", NULL, &m->old, &m->had_old);
        break;
    default: /* K_PUT_A, K_PUT_H */
        m->rc = md_object_put(m->md, "b", &o, NULL, &m->old, &m->had_old);
    }
    return NULL;
}

/* A 1 MiB store with bucket b and records pre and d; the batch hook armed for NKINDS ops. */
static md_store *mixed_setup(const char *name, blocker *b, md_stats *before)
{
    md_store *md = open_store(name, 1 << 20);
    md_map_set_max(md, 1 << 20); /* the big op must not fit: no growth */
    mk_bucket(md, "b");
    md_object o = mk_obj("pre", "ep");
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
    o = mk_obj("d", "ed");
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
    md_stats_get(md, before);
    blocker_init(b, md, NKINDS);
    return md;
}

/* Run every kind of op in its own thread, all in the batch behind the blocker. */
static void mixed_run(md_store *md, blocker *b, mixed_op *ops, int inject_rc)
{
    pthread_t bt, t[NKINDS];
    int saved = cm_log_threshold;
    cm_log_threshold = -1; /* MAP_FULL and the injected failures are logged */
    blocker_start(b, &bt);
    if (inject_rc) /* the blocker's batch has been taken: this fails the next one */
        md_gc_fail_commits(md, 1, inject_rc);
    for (int i = 0; i < NKINDS; i++) {
        ops[i] = (mixed_op){.md = md, .kind = i};
        pthread_create(&t[i], NULL, run_mixed, &ops[i]);
    }
    for (int i = 0; i < NKINDS; i++)
        pthread_join(t[i], NULL);
    pthread_join(bt, NULL);
    cm_log_threshold = saved;
    CU_ASSERT_EQUAL(b->rc, CM_OK);
    blocker_release(b);
}

static void test_batch_isolation(void)
{
    blocker b;
    md_stats before, d;
    mixed_op ops[NKINDS];
    char et[48];
    md_store *md = mixed_setup("isolation", &b, &before);
    mixed_run(md, &b, ops, 0);
    CU_ASSERT_EQUAL(ops[K_PUT_A].rc, CM_OK);
    CU_ASSERT_EQUAL(ops[K_NOBUCKET].rc, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(ops[K_IFMATCH_MISSING].rc, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(ops[K_BIG].rc, CM_ERR_NOSPC);
    CU_ASSERT_EQUAL(ops[K_DEL_MISSING].rc, CM_OK);
    CU_ASSERT_EQUAL(ops[K_DEL_MISSING].had_old, 0);
    CU_ASSERT_EQUAL(ops[K_INM_EXISTING].rc, CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(ops[K_BUCKET_EXISTS].rc, CM_ERR_EXISTS);
    CU_ASSERT_EQUAL(ops[K_PUT_H].rc, CM_OK);
    CU_ASSERT_EQUAL(ops[K_DEL_D].rc, CM_OK);
    CU_ASSERT_EQUAL_FATAL(ops[K_DEL_D].had_old, 1);
    CU_ASSERT_STRING_EQUAL(ops[K_DEL_D].old.etag, "ed");
    md_object_release(&ops[K_DEL_D].old);
    /* Two If-None-Match puts of one key in one batch: the second sees the first. */
    int w1 = ops[K_RACE1].rc == CM_OK, w2 = ops[K_RACE2].rc == CM_OK;
    CU_ASSERT_EQUAL(w1 + w2, 1);
    CU_ASSERT_EQUAL(ops[w1 ? K_RACE2 : K_RACE1].rc, CM_ERR_PRECONDITION);
    etag_of(md, "race", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, w1 ? "r1" : "r2");
    /* Successes are durable together; failures left nothing behind. */
    etag_of(md, "a", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, "ea");
    etag_of(md, "h", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, "eh");
    etag_of(md, "pre", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, "ep");
    const char *gone[] = {"d", "c", "big", "missing"};
    for (size_t i = 0; i < 4; i++) {
        etag_of(md, gone[i], et, sizeof(et));
        CU_ASSERT_STRING_EQUAL(et, "");
    }
    stats_delta(md, &before, &d);
    CU_ASSERT_EQUAL(d.batches, 2);        /* the blocker alone, then all the others */
    CU_ASSERT_EQUAL(d.batches_nested, 1); /* the flat run of the second failed: nested rerun */
    CU_ASSERT_EQUAL(d.max_batch, NKINDS);
    CU_ASSERT_EQUAL(d.commits, 2);
    CU_ASSERT_EQUAL(d.ops, NKINDS + 1);
    CU_ASSERT_EQUAL(d.ops_committed, 5); /* blocker, a, h, d deleted, race winner */
    CU_ASSERT_EQUAL(d.ops_failed, 6);
    CU_ASSERT_EQUAL(d.commit_errors, 0);
    md_close(md);
}

/* ---- A batch whose ops all succeed runs flat: no nested transactions ---- */

#define FLAT_OPS 16

typedef struct {
    md_store *md;
    int i;
    cm_err rc;
} flat_op;

static void *run_flat(void *arg)
{
    flat_op *f = arg;
    char key[16], etag[16];
    snprintf(key, sizeof(key), "f%d", f->i);
    snprintf(etag, sizeof(etag), "e%d", f->i);
    md_object o = mk_obj(key, etag);
    md_cond inm = {.if_none_match_star = 1};
    if (f->i == 0) /* deleting a missing key changes nothing, and is no failure */
        f->rc = md_object_delete(f->md, "b", "missing", NULL, NULL, NULL);
    else /* If-None-Match on fresh keys: each op reads the batch's earlier writes, all succeed */
        f->rc = md_object_put(f->md, "b", &o, f->i % 2 ? &inm : NULL, NULL, NULL);
    return NULL;
}

static void test_flat_batch(void)
{
    blocker b;
    md_stats before, d;
    pthread_t bt, t[FLAT_OPS];
    flat_op ops[FLAT_OPS];
    char key[16], want[16], et[48];
    md_store *md = open_store("flat", 1 << 24);
    mk_bucket(md, "b");
    md_stats_get(md, &before);
    blocker_init(&b, md, FLAT_OPS);
    blocker_start(&b, &bt);
    for (int i = 0; i < FLAT_OPS; i++) {
        ops[i] = (flat_op){.md = md, .i = i};
        pthread_create(&t[i], NULL, run_flat, &ops[i]);
    }
    for (int i = 0; i < FLAT_OPS; i++)
        pthread_join(t[i], NULL);
    pthread_join(bt, NULL);
    blocker_release(&b);
    CU_ASSERT_EQUAL(b.rc, CM_OK);
    for (int i = 0; i < FLAT_OPS; i++) {
        CU_ASSERT_EQUAL(ops[i].rc, CM_OK);
        if (i == 0)
            continue;
        snprintf(key, sizeof(key), "f%d", i);
        snprintf(want, sizeof(want), "e%d", i);
        etag_of(md, key, et, sizeof(et));
        CU_ASSERT_STRING_EQUAL(et, want);
    }
    stats_delta(md, &before, &d);
    CU_ASSERT_EQUAL(d.batches, 2); /* the blocker alone, then the others together */
    CU_ASSERT_EQUAL(d.max_batch, FLAT_OPS);
    CU_ASSERT_EQUAL(d.batches_nested, 0);
    CU_ASSERT_EQUAL(d.commits, 2);
    CU_ASSERT_EQUAL(d.ops_committed, FLAT_OPS); /* the blocker and 15 puts; not the no-op */
    md_close(md);
}

/* ---- md_object_put_async: no caller thread waits; done runs once per put ---- */

#define ASYNC_OPS 24

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls[ASYNC_OPS];
    cm_err err[ASYNC_OPS];
    int had_old[ASYNC_OPS];
    char old_etag[ASYNC_OPS][64];
    int finished;
    pthread_t thread[ASYNC_OPS]; /* the thread done ran on */
} async_log;

typedef struct {
    async_log *log;
    int i;
} async_arg;

static void async_done(void *arg, cm_err err, md_object *old, int had_old)
{
    async_arg *a = arg;
    async_log *l = a->log;
    pthread_mutex_lock(&l->mu);
    l->calls[a->i]++;
    l->err[a->i] = err;
    l->had_old[a->i] = had_old;
    l->thread[a->i] = pthread_self();
    if (had_old) {
        snprintf(l->old_etag[a->i], sizeof(l->old_etag[a->i]), "%s", old->etag);
        md_object_release(old);
    }
    l->finished++;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void test_put_async(void)
{
    static async_log log;
    static async_arg args[ASYNC_OPS];
    blocker b;
    md_stats before, d;
    pthread_t bt;
    char key[16], etag[16], et[48];
    md_store *md = open_store("async", 1 << 24);
    mk_bucket(md, "b");
    md_object o = mk_obj("k1", "old1");
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
    memset(&log, 0, sizeof(log));
    pthread_mutex_init(&log.mu, NULL);
    pthread_cond_init(&log.cv, NULL);
    md_stats_get(md, &before);
    blocker_init(&b, md, ASYNC_OPS);
    blocker_start(&b, &bt);
    /* All queued from this one thread, which never waits: one batch behind the blocker. */
    md_cond inm = {.if_none_match_star = 1};
    for (int i = 0; i < ASYNC_OPS; i++) {
        snprintf(key, sizeof(key), "k%d", i % (ASYNC_OPS - 2)); /* k0 and k1 twice */
        snprintf(etag, sizeof(etag), "a%d", i);
        o = mk_obj(key, etag);
        args[i] = (async_arg){&log, i};
        /* the second put of k0 asks If-None-Match: the first of the batch made k0 exist */
        CU_ASSERT_EQUAL(md_object_put_async(md, "b", &o, i == ASYNC_OPS - 2 ? &inm : NULL,
                                            async_done, &args[i]),
                        CM_OK);
    }
    pthread_mutex_lock(&log.mu);
    while (log.finished < ASYNC_OPS)
        pthread_cond_wait(&log.cv, &log.mu);
    pthread_mutex_unlock(&log.mu);
    pthread_join(bt, NULL);
    blocker_release(&b);
    for (int i = 0; i < ASYNC_OPS; i++) {
        CU_ASSERT_EQUAL(log.calls[i], 1);
        CU_ASSERT_FALSE(pthread_equal(log.thread[i], pthread_self()));
        CU_ASSERT_EQUAL(log.err[i], i == ASYNC_OPS - 2 ? CM_ERR_PRECONDITION : CM_OK);
    }
    CU_ASSERT_EQUAL(log.had_old[1], 1); /* k1 existed before */
    CU_ASSERT_STRING_EQUAL(log.old_etag[1], "old1");
    CU_ASSERT_EQUAL(log.had_old[ASYNC_OPS - 1], 1); /* k1 again: replaces the batch's a1 */
    CU_ASSERT_STRING_EQUAL(log.old_etag[ASYNC_OPS - 1], "a1");
    CU_ASSERT_EQUAL(log.had_old[0], 0);
    etag_of(md, "k0", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, "a0");
    etag_of(md, "k1", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, "a23");
    stats_delta(md, &before, &d);
    CU_ASSERT_EQUAL(d.batches, 2); /* the blocker alone, then every async put */
    CU_ASSERT_EQUAL(d.max_batch, ASYNC_OPS);
    CU_ASSERT_EQUAL(d.commits, 2);
    CU_ASSERT_EQUAL(d.ops_failed, 1);
    /* A put that cannot be queued reports it at once, and done never runs. */
    o = mk_obj("", "e");
    CU_ASSERT_EQUAL(md_object_put_async(md, "b", &o, NULL, async_done, &args[0]), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(log.calls[0], 1);
    md_close(md);
    pthread_cond_destroy(&log.cv);
    pthread_mutex_destroy(&log.mu);
}

/* A failed commit reaches every op of its batch; none of their writes are visible. */
static void test_commit_failure(void)
{
    blocker b;
    md_stats before, d;
    mixed_op ops[NKINDS];
    char et[48];
    md_store *md = mixed_setup("commitfail", &b, &before);
    mixed_run(md, &b, ops, MDB_MAP_FULL);
    for (int i = 0; i < NKINDS; i++) {
        CU_ASSERT_EQUAL(ops[i].rc, CM_ERR_NOSPC);
        CU_ASSERT_EQUAL(ops[i].had_old, 0);
        CU_ASSERT_PTR_NULL(ops[i].old.key);
    }
    etag_of(md, "d", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, "ed");
    const char *gone[] = {"a", "h", "race", "c", "big"};
    for (size_t i = 0; i < 5; i++) {
        etag_of(md, gone[i], et, sizeof(et));
        CU_ASSERT_STRING_EQUAL(et, "");
    }
    stats_delta(md, &before, &d);
    CU_ASSERT_EQUAL(d.commits, 1); /* the blocker's */
    CU_ASSERT_EQUAL(d.commit_errors, 1);
    CU_ASSERT_EQUAL(d.ops_committed, 1);

    /* A lone op whose commit fails with an I/O error; then the store works again. */
    md_object o = mk_obj("lone", "el"), old;
    int had = 1, saved = cm_log_threshold;
    md_gc_fail_commits(md, 1, EIO);
    cm_log_threshold = -1;
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, NULL, &old, &had), CM_ERR_IO);
    cm_log_threshold = saved;
    CU_ASSERT_EQUAL(had, 0);
    etag_of(md, "lone", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, "");
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
    etag_of(md, "lone", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, "el");
    md_close(md);
}

/* ---- Multipart and self-repair ops racing in one batch ---- */

enum { U_COMPLETE, U_ABORT, U_PART3, R_REPLACE, R_PUT, NUOPS };

typedef struct {
    md_store *md;
    int kind;
    cm_err rc;
    md_part *parts;
    size_t nparts;
    int had_old;
    md_object old;
    md_part oldpart;
} upload_op;

static md_part mk_part(uint32_t num, uint8_t blob)
{
    md_part p = {.number = num, .size = 100};
    snprintf(p.etag, sizeof(p.etag), "p%u", num);
    p.layout.k = 4, p.layout.m = 2, p.layout.size = 100, p.layout.blob[0] = blob;
    return p;
}

static void *run_upload_op(void *arg)
{
    upload_op *u = arg;
    md_object o = mk_obj(u->kind == R_PUT ? "obj" : "mp", u->kind == R_PUT ? "new" : "emp");
    md_part p3 = mk_part(3, 3);
    md_layout nl = mk_part(1, 0xBB).layout;
    uint8_t blob_old[16] = {0xAA};
    switch (u->kind) {
    case U_COMPLETE:
        u->rc = md_upload_complete(u->md, "b", "u1", &o, NULL, &u->parts, &u->nparts, &u->old,
                                   &u->had_old);
        break;
    case U_ABORT:
        u->rc = md_upload_abort(u->md, "b", "mp", "u1", &u->parts, &u->nparts);
        break;
    case U_PART3:
        u->rc = md_part_put(u->md, "b", "mp", "u1", &p3, &u->oldpart, &u->had_old);
        break;
    case R_REPLACE:
        u->rc = md_object_replace_layout(u->md, "b", "obj", 0, blob_old, &nl);
        break;
    default: /* R_PUT */
        u->rc = md_object_put(u->md, "b", &o, NULL, &u->old, &u->had_old);
    }
    return NULL;
}

/* Upload u1 of b/mp with parts 1 and 2; b/obj stored in one part under blob 0xAA. */
static void upload_setup(md_store *md)
{
    md_upload up = {.key = "mp", .upload_id = "u1", .initiated_ms = 5};
    md_part p1 = mk_part(1, 1), p2 = mk_part(2, 2);
    md_object o = mk_obj("obj", "old");
    md_part op = mk_part(0, 0xAA);
    mk_bucket(md, "b");
    CU_ASSERT_EQUAL(md_upload_create(md, "b", &up), CM_OK);
    CU_ASSERT_EQUAL(md_part_put(md, "b", "mp", "u1", &p1, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_part_put(md, "b", "mp", "u1", &p2, NULL, NULL), CM_OK);
    o.parts = &op, o.nparts = 1, o.size = 100;
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
}

static void upload_race_check(md_store *md, upload_op *u)
{
    char et[48];
    md_upload got;
    int won = u[U_COMPLETE].rc == CM_OK ? U_COMPLETE : U_ABORT;
    CU_ASSERT_EQUAL(u[won].rc, CM_OK);
    CU_ASSERT_EQUAL(u[won == U_COMPLETE ? U_ABORT : U_COMPLETE].rc, CM_ERR_NOTFOUND);
    /* The part put either landed first (and went with the winner) or found the upload gone. */
    CU_ASSERT(u[U_PART3].rc == CM_OK || u[U_PART3].rc == CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(u[won].nparts, u[U_PART3].rc == CM_OK ? 3 : 2);
    CU_ASSERT_EQUAL(md_upload_get(md, "b", "mp", "u1", &got), CM_ERR_NOTFOUND);
    md_part *parts;
    size_t n;
    int trunc;
    CU_ASSERT_EQUAL(md_part_list(md, "u1", 0, 10, &parts, &n, &trunc), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    md_parts_free(parts, n);
    etag_of(md, "mp", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, won == U_COMPLETE ? "emp" : "");
    /* The repair swapped the layout before the overwrite, or saw it and backed off. */
    CU_ASSERT(u[R_REPLACE].rc == CM_OK || u[R_REPLACE].rc == CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(u[R_PUT].rc, CM_OK);
    CU_ASSERT_EQUAL_FATAL(u[R_PUT].had_old, 1);
    CU_ASSERT_EQUAL_FATAL(u[R_PUT].old.nparts, 1);
    CU_ASSERT_EQUAL(u[R_PUT].old.parts[0].layout.blob[0], u[R_REPLACE].rc == CM_OK ? 0xBB : 0xAA);
    etag_of(md, "obj", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, "new");
}

static void test_upload_race(void)
{
    md_store *md = open_store("uploadrace", 1 << 26);
    upload_op u[NUOPS];
    pthread_t bt, t[NUOPS];
    blocker b;
    md_stats before, d;
    upload_setup(md);
    md_stats_get(md, &before);
    blocker_init(&b, md, NUOPS);
    blocker_start(&b, &bt);
    for (int i = 0; i < NUOPS; i++) {
        u[i] = (upload_op){.md = md, .kind = i};
        pthread_create(&t[i], NULL, run_upload_op, &u[i]);
    }
    for (int i = 0; i < NUOPS; i++)
        pthread_join(t[i], NULL);
    pthread_join(bt, NULL);
    blocker_release(&b);
    upload_race_check(md, u);
    stats_delta(md, &before, &d);
    CU_ASSERT_EQUAL(d.batches, 2);
    CU_ASSERT_EQUAL(d.commits, 2);
    CU_ASSERT_EQUAL(d.max_batch, NUOPS);
    for (int i = 0; i < NUOPS; i++) {
        md_parts_free(u[i].parts, u[i].nparts);
        md_object_release(&u[i].old);
        md_part_release(&u[i].oldpart);
    }
    md_close(md);
}

/* ---- Racing If-None-Match puts ---- */

#define RACE_THREADS 32
#define RACE_KEYS 20

typedef struct {
    md_store *md;
    pthread_barrier_t *bar;
    int id;
    cm_err rc[RACE_KEYS];
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    char etag[16], key[16];
    snprintf(etag, sizeof(etag), "t%d", r->id);
    for (int i = 0; i < RACE_KEYS; i++) {
        snprintf(key, sizeof(key), "lock-%d", i);
        md_object o = mk_obj(key, etag);
        md_cond c = {.if_none_match_star = 1};
        pthread_barrier_wait(r->bar);
        r->rc[i] = md_object_put(r->md, "b", &o, &c, NULL, NULL);
    }
    return NULL;
}

static void test_conditional_race(void)
{
    md_store *md = open_store("race", 1 << 26);
    mk_bucket(md, "b");
    md_stats before, d;
    md_stats_get(md, &before);
    blocker blk;
    blocker_init(&blk, md, RACE_THREADS - 1); /* the first batch waits for everyone */
    /* (the commit thread may find a few ops queued already: the first batch then holds them) */
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, RACE_THREADS);
    static racer r[RACE_THREADS];
    pthread_t t[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        r[i] = (racer){.md = md, .bar = &bar, .id = i};
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&bar);
    blocker_release(&blk);
    for (int k = 0; k < RACE_KEYS; k++) {
        int wins = 0, winner = -1;
        for (int i = 0; i < RACE_THREADS; i++) {
            CU_ASSERT(r[i].rc[k] == CM_OK || r[i].rc[k] == CM_ERR_PRECONDITION);
            if (r[i].rc[k] == CM_OK)
                wins++, winner = i;
        }
        CU_ASSERT_EQUAL(wins, 1);
        char key[16], want[16], et[48];
        snprintf(key, sizeof(key), "lock-%d", k);
        snprintf(want, sizeof(want), "t%d", winner);
        etag_of(md, key, et, sizeof(et));
        CU_ASSERT_STRING_EQUAL(et, want);
    }
    stats_delta(md, &before, &d);
    CU_ASSERT_EQUAL(d.ops, RACE_THREADS * RACE_KEYS);
    CU_ASSERT_EQUAL(d.ops_committed, RACE_KEYS);
    CU_ASSERT_TRUE(d.commits < d.ops);
    CU_ASSERT_TRUE(d.max_batch >= RACE_THREADS - blk.first_n);
    printf("\n  race: %llu ops in %llu commits, max batch %llu\n", (unsigned long long)d.ops,
           (unsigned long long)d.commits, (unsigned long long)d.max_batch);
    md_close(md);
}

/* ---- Many threads, random writes on overlapping keys, checked against a serial history ---- */

#define H_THREADS 16
#define H_OPS 250
#define H_KEYS 12

enum { H_PUT, H_DEL, H_INM, H_IFMATCH, H_DEL_IFMATCH, H_TYPES };

typedef struct {
    uint8_t type, key;
    cm_err rc;
    int had_old;
    char etag[16]; /* puts: the new record's etag (unique) */
    char cond[48]; /* If-Match etag */
    char old[48];  /* the replaced record's etag */
} h_rec;

typedef struct {
    md_store *md;
    pthread_barrier_t *bar;
    int id;
    h_rec rec[H_OPS];
} h_thread;

static void h_key(int k, char *buf, size_t cap)
{
    snprintf(buf, cap, "key-%02d", k);
}

static void h_one(h_thread *t, int i, unsigned *rs)
{
    h_rec *r = &t->rec[i];
    char key[16];
    md_object old = {0};
    r->type = (uint8_t)(rand_r(rs) % H_TYPES);
    r->key = (uint8_t)(rand_r(rs) % H_KEYS);
    h_key(r->key, key, sizeof(key));
    snprintf(r->etag, sizeof(r->etag), "t%02d.%04d", t->id, i);
    if (r->type == H_IFMATCH || r->type == H_DEL_IFMATCH) /* a plausible etag, maybe stale */
        etag_of(t->md, key, r->cond, sizeof(r->cond));
    md_cond inm = {.if_none_match_star = 1}, im = {.if_match = r->cond};
    md_object o = mk_obj(key, r->etag);
    if (r->type == H_DEL || r->type == H_DEL_IFMATCH)
        r->rc = md_object_delete(t->md, "b", key, r->type == H_DEL ? NULL : &im, &old, &r->had_old);
    else
        r->rc = md_object_put(t->md, "b", &o,
                              r->type == H_PUT   ? NULL
                              : r->type == H_INM ? &inm
                                                 : &im,
                              &old, &r->had_old);
    if (r->rc == CM_OK && r->had_old)
        snprintf(r->old, sizeof(r->old), "%s", old.etag);
    md_object_release(&old);
}

static void *h_run(void *arg)
{
    h_thread *t = arg;
    unsigned rs = seed * 7919u + (unsigned)t->id;
    pthread_barrier_wait(t->bar);
    for (int i = 0; i < H_OPS; i++)
        h_one(t, i, &rs);
    return NULL;
}

static int h_is_put(const h_rec *r)
{
    return r->type == H_PUT || r->type == H_INM || r->type == H_IFMATCH;
}

/* Successful ops of key k that changed the store (a delete of a missing key changes nothing). */
static size_t h_changers(h_thread *th, int k, const h_rec **out)
{
    size_t n = 0;
    for (int t = 0; t < H_THREADS; t++)
        for (int i = 0; i < H_OPS; i++) {
            const h_rec *r = &th[t].rec[i];
            if (r->key == k && r->rc == CM_OK && (h_is_put(r) || r->had_old))
                out[n++] = r;
        }
    return n;
}

/* The op that replaced the record with etag e; NULL when none. Fails when more than one did. */
static const h_rec *h_consumer(const h_rec **ops, size_t n, const char *e)
{
    const h_rec *c = NULL;
    for (size_t i = 0; i < n; i++)
        if (ops[i]->had_old && strcmp(ops[i]->old, e) == 0) {
            CU_ASSERT_PTR_NULL(c); /* two ops replaced the same record: a lost update */
            c = ops[i];
        }
    return c;
}

/*
 * Follow the segment that starts with r (a put onto an absent key) through the ops that replaced
 * each record in turn, marking them in used (when non-NULL) or replaying them into rp (when
 * non-NULL). Returns the etag the segment leaves, or "" when it ends with a delete.
 */
static const char *h_walk(const h_rec **ops, size_t n, const h_rec *r, char *used, md_store *rp)
{
    char key[16];
    h_key(r->key, key, sizeof(key));
    for (;;) {
        for (size_t i = 0; used && i < n; i++)
            if (ops[i] == r) {
                CU_ASSERT_EQUAL(used[i], 0); /* each op once: no cycles */
                used[i] = 1;
            }
        md_object o = mk_obj(key, r->etag);
        if (rp && h_is_put(r))
            CU_ASSERT_EQUAL(md_object_put(rp, "b", &o, NULL, NULL, NULL), CM_OK);
        if (rp && !h_is_put(r))
            CU_ASSERT_EQUAL(md_object_delete(rp, "b", key, NULL, NULL, NULL), CM_OK);
        if (!h_is_put(r))
            return "";
        const h_rec *c = h_consumer(ops, n, r->etag);
        if (!c)
            return r->etag;
        r = c;
    }
}

/*
 * Check key k: conditions held, the replaced records chain the successful ops into segments
 * (absent -> ... -> deleted) covering every op exactly once with at most one left open, and the
 * store holds the open segment's last record. Replays closed segments, then the open one, into
 * rp. Returns how many ops changed the key.
 */
static size_t h_check_key(h_thread *th, int k, md_store *md, md_store *rp, const h_rec **ops,
                          char *used)
{
    size_t n = h_changers(th, k, ops), nused = 0;
    const h_rec *open = NULL;
    char key[16], et[48];
    memset(used, 0, n);
    for (size_t i = 0; i < n; i++) {
        const h_rec *r = ops[i];
        if (r->type == H_INM)
            CU_ASSERT_EQUAL(r->had_old, 0);
        if (r->type == H_IFMATCH || r->type == H_DEL_IFMATCH)
            CU_ASSERT(r->had_old && strcmp(r->old, r->cond) == 0);
    }
    for (size_t i = 0; i < n; i++) {
        if (!h_is_put(ops[i]) || ops[i]->had_old)
            continue;
        if (h_walk(ops, n, ops[i], used, NULL)[0] == 0) {
            h_walk(ops, n, ops[i], NULL, rp);
        } else {
            CU_ASSERT_PTR_NULL(open); /* two records alive for one key */
            open = ops[i];
        }
    }
    for (size_t i = 0; i < n; i++)
        nused += used[i];
    CU_ASSERT_EQUAL(nused, n); /* every replaced record was written by a successful op */
    const char *final = open ? h_walk(ops, n, open, NULL, rp) : "";
    h_key(k, key, sizeof(key));
    etag_of(md, key, et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, final);
    etag_of(rp, key, et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, final);
    return n;
}

static void test_hammer(void)
{
    static h_thread th[H_THREADS];
    static const h_rec *ops[H_THREADS * H_OPS];
    static char used[H_THREADS * H_OPS];
    md_store *md = open_store("hammer", 1 << 26), *rp = open_store("replay", 1 << 26);
    md_stats before, d;
    blocker blk;
    pthread_barrier_t bar;
    pthread_t t[H_THREADS];
    mk_bucket(md, "b");
    mk_bucket(rp, "b");
    md_stats_get(md, &before);
    blocker_init(&blk, md, H_THREADS - 1); /* the first batch waits for every thread */
    pthread_barrier_init(&bar, NULL, H_THREADS);
    for (int i = 0; i < H_THREADS; i++) {
        th[i].md = md, th[i].bar = &bar, th[i].id = i;
        pthread_create(&t[i], NULL, h_run, &th[i]);
    }
    for (int i = 0; i < H_THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&bar);
    blocker_release(&blk);
    stats_delta(md, &before, &d);
    size_t failed = 0, changed = 0;
    for (int i = 0; i < H_THREADS; i++)
        for (int j = 0; j < H_OPS; j++) {
            cm_err e = th[i].rec[j].rc;
            CU_ASSERT(e == CM_OK || e == CM_ERR_PRECONDITION || e == CM_ERR_NOTFOUND);
            failed += e != CM_OK;
        }
    for (int k = 0; k < H_KEYS; k++)
        changed += h_check_key(th, k, md, rp, ops, used);
    CU_ASSERT_EQUAL(d.ops, H_THREADS * H_OPS);
    CU_ASSERT_EQUAL(d.ops_failed, failed);
    CU_ASSERT_EQUAL(d.ops_committed, changed);
    CU_ASSERT_EQUAL(d.commit_errors, 0);
    CU_ASSERT_TRUE(d.commits < d.ops);
    CU_ASSERT_TRUE(d.max_batch >= H_THREADS - blk.first_n);
    printf("\n  hammer: %llu ops (%zu failed their condition, %zu changed a key) in %llu commits, "
           "max batch %llu\n",
           (unsigned long long)d.ops, failed, changed, (unsigned long long)d.commits,
           (unsigned long long)d.max_batch);
    md_close(rp);
    md_close(md);
}

void cu_register(void)
{
    const char *env = getenv("CAIRN_TEST_SEED");
    seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)time(NULL);
    printf("test_meta_commit seed=%u (set CAIRN_TEST_SEED to repeat)\n", seed);
    static const cu_test tests[] = {{"batch_isolation", test_batch_isolation},
                                    {"flat_batch", test_flat_batch},
                                    {"put_async", test_put_async},
                                    {"commit_failure", test_commit_failure},
                                    {"upload_race", test_upload_race},
                                    {"conditional_race", test_conditional_race},
                                    {"hammer", test_hammer},
                                    {NULL, NULL}};
    cu_add_suite("meta_commit", tests);
}
