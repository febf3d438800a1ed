/*
 * test_meta_copies.c - the store kept in three copies (meta/md_mirror.c).
 *
 *   writes_everywhere  buckets, inline objects, long keys (groups), deletes, a multipart upload
 *                      completed (its part records deleted through a cursor): after close, the
 *                      three environments hold exactly the same keys and values in every
 *                      database, sequence number included.
 *   sync_failure       copy 1's commit fails: the write succeeds, copy 1 is marked failed (stats,
 *                      marker file), later writes succeed; the primary's commit fails: the write
 *                      succeeds and reads come from the next copy (they see the write the failed
 *                      primary lacks); the last healthy copy's commit fails: the write fails and
 *                      the copy stays in use. Reopen: the failed copies are rebuilt and equal.
 *   reopen_rebuild     one copy deleted, then two, then copy 0 replaced by a stale file (lower
 *                      sequence number, lowest index): each reopen rebuilds from the freshest and
 *                      every acknowledged write is there; a lone copy marked failed is refused.
 *   migrate_legacy     a single-environment store becomes the source of the copies and is
 *                      renamed; reopening keeps everything.
 *   map_grows          three copies opened with a 1 MiB map take 8 MiB of inline bodies: the
 *                      primary's map grows through the batch rerun, the others' on their own
 *                      threads; no copy fails and the copies stay equal.
 *   unusable_drive     a drive folder that is a file (its copy can be neither opened nor rebuilt):
 *                      the store opens with the two others, that copy counted failed, writes and
 *                      reads work; once the drive is back the next open rebuilds it.
 *   pipeline           batches of one async put each, queued behind a held first batch: each is
 *                      flushed (one sync counted per batch) while the next one is applied, and
 *                      answered before the next commit; a next commit that fails on copy 1 marks
 *                      it and the batch before it is answered; one that fails on every copy fails
 *                      alone (the batch before was flushed first); everything answered is there
 *                      after a reopen.
 *   flush_failure      the same batches with a flush failing after the next batch was applied:
 *                      on copy 1 (marked failed, the batch answered once copy 2 flushed too), on
 *                      the primary (marked, the next batch committed on the other copy and read
 *                      from it), on the last healthy copy (the batch answered uncertain, the copy
 *                      kept); a reopen rebuilds the two marked copies with every answered write.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_log.h"
#include "cu_main.h"
#include "md.h"
#include "md_int.h"

static char dirs[3][512];
static const char *dp[3];

static void set_dirs(const char *name)
{
    char base[600];
    snprintf(base, sizeof(base), "%s/%s", cu_tmpdir(), name);
    CU_ASSERT_FATAL(mkdir(base, 0755) == 0 || errno == EEXIST);
    for (int i = 0; i < 3; i++) {
        snprintf(dirs[i], sizeof(dirs[i]), "%s/%s/drive%d/meta", cu_tmpdir(), name, i);
        dp[i] = dirs[i];
    }
}

static md_store *open_copies(void)
{
    md_store *md = NULL;
    CU_ASSERT_EQUAL_FATAL(md_open_copies(dp, 3, NULL, 1 << 24, &md), CM_OK);
    return md;
}

static void mk_bucket(md_store *md, const char *name)
{
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "%s", name);
    b.created_ms = 1700000000000LL;
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK);
}

static cm_err put(md_store *md, const char *key, const char *etag)
{
    md_object o = {0};
    uint8_t body[100];
    memset(body, etag[0], sizeof(body));
    o.key = (char *)key;
    snprintf(o.etag, sizeof(o.etag), "%s", etag);
    snprintf(o.version_id, sizeof(o.version_id), "null");
    o.size = sizeof(body);
    o.mtime_ms = 1700000000123LL;
    o.inline_data = body;
    o.inline_len = sizeof(body);
    return md_object_put(md, "b", &o, NULL, NULL, NULL);
}

/* The etag of b/key, or "" when absent. */
static void etag_of(md_store *md, const char *key, char *out, size_t cap)
{
    md_object o;
    *out = 0;
    if (md_object_get(md, "b", key, &o) == CM_OK) {
        snprintf(out, cap, "%s", o.etag);
        md_object_release(&o);
    }
}

/* Every database of the environment in dir as one text (key and value bytes in hex), by LMDB
 * directly: what a copy holds, whatever the store's code would read of it. */
static char *dump(const char *dir)
{
    static const char *const names[] = {"buckets", "objects", "uploads", "parts",
                                        "garbage", "hints",   "replica", "spill"};
    MDB_env *env;
    MDB_txn *txn;
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    CU_ASSERT_FATAL(out != NULL);
    CU_ASSERT_EQUAL_FATAL(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_mapsize(env, (size_t)1 << 30);
    CU_ASSERT_EQUAL_FATAL(mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0644), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    for (size_t d = 0; d < sizeof(names) / sizeof(names[0]); d++) {
        MDB_dbi dbi;
        MDB_cursor *cur;
        MDB_val k, v;
        CU_ASSERT_EQUAL_FATAL(mdb_dbi_open(txn, names[d], 0, &dbi), 0);
        CU_ASSERT_EQUAL_FATAL(mdb_cursor_open(txn, dbi, &cur), 0);
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            size_t need = len + 2 * (k.mv_size + v.mv_size) + 64;
            while (need > cap)
                out = realloc(out, cap *= 2);
            len += (size_t)snprintf(out + len, cap - len, "%s ", names[d]);
            for (size_t i = 0; i < k.mv_size; i++)
                len += (size_t)snprintf(out + len, cap - len, "%02x", ((uint8_t *)k.mv_data)[i]);
            out[len++] = '=';
            for (size_t i = 0; i < v.mv_size; i++)
                len += (size_t)snprintf(out + len, cap - len, "%02x", ((uint8_t *)v.mv_data)[i]);
            out[len++] = '\n';
        }
        out[len] = 0;
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return out;
}

/* The three copies hold the same contents; returns copy 0's dump (caller frees). */
static char *check_equal(void)
{
    char *d0 = dump(dirs[0]);
    for (int i = 1; i < 3; i++) {
        char *di = dump(dirs[i]);
        CU_ASSERT_STRING_EQUAL(d0, di);
        free(di);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(d0, "replica 736571=")); /* "seq" */
    return d0;
}

static void long_key(char *out, size_t cap, int i)
{
    memset(out, 'L', 600);
    snprintf(out + 600, cap - 600, "-%04d", i);
}

static void test_writes_everywhere(void)
{
    set_dirs("everywhere");
    md_store *md = open_copies();
    mk_bucket(md, "b");
    mk_bucket(md, "gone");
    char key[700];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "k%03d", i);
        CU_ASSERT_EQUAL(put(md, key, "e1"), CM_OK);
        long_key(key, sizeof(key), i);
        CU_ASSERT_EQUAL(put(md, key, "e2"), CM_OK);
    }
    for (int i = 0; i < 40; i += 3) {
        snprintf(key, sizeof(key), "k%03d", i);
        CU_ASSERT_EQUAL(md_object_delete(md, "b", key, NULL, NULL, NULL), CM_OK);
        long_key(key, sizeof(key), i);
        CU_ASSERT_EQUAL(md_object_delete(md, "b", key, NULL, NULL, NULL), CM_OK);
    }
    CU_ASSERT_EQUAL(md_bucket_delete(md, "gone", NULL, NULL), CM_OK);
    /* a multipart upload: its completion deletes the part records through a cursor */
    md_upload up = {0};
    up.key = "mp";
    snprintf(up.upload_id, sizeof(up.upload_id), "up1");
    up.initiated_ms = 1700000000000LL;
    CU_ASSERT_EQUAL(md_upload_create(md, "b", &up), CM_OK);
    for (uint32_t n = 1; n <= 3; n++) {
        md_part p = {0};
        uint8_t body[10] = {0};
        p.number = n;
        p.size = sizeof(body);
        p.inline_data = body;
        snprintf(p.etag, sizeof(p.etag), "p%u", n);
        md_part old;
        int had = 0;
        CU_ASSERT_EQUAL(md_part_put(md, "b", "mp", "up1", &p, &old, &had), CM_OK);
    }
    md_part *parts = NULL;
    size_t np = 0;
    CU_ASSERT_EQUAL(md_upload_abort(md, "b", "mp", "up1", &parts, &np), CM_OK);
    CU_ASSERT_EQUAL(np, 3);
    md_parts_free(parts, np);
    md_stats st;
    md_stats_get(md, &st);
    CU_ASSERT_EQUAL(st.copies, 3);
    CU_ASSERT_EQUAL(st.copies_healthy, 3);
    CU_ASSERT_EQUAL(st.seq, st.commits);
    md_close(md);
    char *d = check_equal();
    CU_ASSERT_PTR_NULL(strstr(d, "parts ")); /* the abort removed the parts on every copy */
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "objects "));
    free(d);
}

static int exists(const char *dir, const char *name)
{
    char path[1100];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static void test_sync_failure(void)
{
    set_dirs("syncfail");
    char et[64];
    md_store *md = open_copies();
    mk_bucket(md, "b");
    CU_ASSERT_EQUAL(put(md, "a", "v1"), CM_OK);
    md_mirror_fail_commits(md, 1, 1);
    CU_ASSERT_EQUAL(put(md, "a", "v2"), CM_OK); /* durable on copies 0 and 2 */
    md_stats st;
    md_stats_get(md, &st);
    CU_ASSERT_EQUAL(st.copies_healthy, 2);
    CU_ASSERT_EQUAL(st.copy_failed[1], 1);
    CU_ASSERT_EQUAL(st.copy_failures, 1);
    CU_ASSERT_TRUE(exists(dirs[1], "failed"));
    CU_ASSERT_EQUAL(put(md, "c", "v1"), CM_OK);
    /* the primary (copy 0) fails: the write lands on copy 2 only, and reads move there */
    md_mirror_fail_commits(md, 0, 1);
    CU_ASSERT_EQUAL(put(md, "a", "v3"), CM_OK);
    md_stats_get(md, &st);
    CU_ASSERT_EQUAL(st.copies_healthy, 1);
    CU_ASSERT_EQUAL(st.copy_failed[0], 1);
    etag_of(md, "a", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, "v3"); /* copy 0 holds v2: this read came from copy 2 */
    /* the last healthy copy fails: the write fails, the copy stays in use */
    md_mirror_fail_commits(md, 2, 1);
    CU_ASSERT_NOT_EQUAL(put(md, "a", "v4"), CM_OK);
    md_stats_get(md, &st);
    CU_ASSERT_EQUAL(st.copies_healthy, 1);
    etag_of(md, "a", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, "v3");
    CU_ASSERT_EQUAL(put(md, "d", "v1"), CM_OK);
    md_close(md);
    CU_ASSERT_FALSE(exists(dirs[2], "failed"));
    /* reopen: copies 0 and 1 (marked, behind) are rebuilt from copy 2 */
    md = open_copies();
    md_stats_get(md, &st);
    CU_ASSERT_EQUAL(st.copies_healthy, 3);
    etag_of(md, "a", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, "v3");
    etag_of(md, "d", et, sizeof(et));
    CU_ASSERT_STRING_EQUAL(et, "v1");
    md_close(md);
    CU_ASSERT_FALSE(exists(dirs[0], "failed"));
    CU_ASSERT_FALSE(exists(dirs[1], "failed"));
    free(check_equal());
}

static void rm_copy(const char *dir)
{
    char path[1100];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    CU_ASSERT_EQUAL(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    unlink(path);
    CU_ASSERT_EQUAL(rmdir(dir), 0);
}

static void copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(in >= 0 && out >= 0);
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        CU_ASSERT_EQUAL(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

/* Every key k000..k<n-1> reads back with etag "v". */
static void check_keys(md_store *md, int n)
{
    char key[16], et[64];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%03d", i);
        etag_of(md, key, et, sizeof(et));
        CU_ASSERT_STRING_EQUAL(et, "v");
    }
}

static void put_keys(md_store *md, int from, int to)
{
    char key[16];
    for (int i = from; i < to; i++) {
        snprintf(key, sizeof(key), "k%03d", i);
        CU_ASSERT_EQUAL(put(md, key, "v"), CM_OK);
    }
}

static void test_reopen_rebuild(void)
{
    char stale[1100], path[1100];
    set_dirs("rebuild");
    md_store *md = open_copies();
    mk_bucket(md, "b");
    put_keys(md, 0, 20);
    md_close(md);
    rm_copy(dirs[1]);
    md = open_copies();
    check_keys(md, 20);
    put_keys(md, 20, 30);
    md_close(md);
    free(check_equal());
    rm_copy(dirs[0]);
    rm_copy(dirs[2]);
    md = open_copies();
    check_keys(md, 30);
    md_close(md);
    free(check_equal());
    /* copy 0 comes back stale: it has the lowest index but a lower sequence number */
    snprintf(stale, sizeof(stale), "%s/stale.mdb", cu_tmpdir());
    snprintf(path, sizeof(path), "%s/data.mdb", dirs[0]);
    copy_file(path, stale);
    md = open_copies();
    put_keys(md, 30, 40);
    md_close(md);
    copy_file(stale, path);
    md = open_copies();
    check_keys(md, 40);
    md_close(md);
    free(check_equal());
    /* a copy marked failed, alone: never the source of a store */
    rm_copy(dirs[1]);
    rm_copy(dirs[2]);
    snprintf(path, sizeof(path), "%s/failed", dirs[0]);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    close(fd);
    md = NULL;
    CU_ASSERT_EQUAL(md_open_copies(dp, 3, NULL, 1 << 24, &md), CM_ERR_CORRUPT);
    CU_ASSERT_PTR_NULL(md);
}

static void test_migrate_legacy(void)
{
    char legacy[600], moved[700];
    set_dirs("migrate");
    snprintf(legacy, sizeof(legacy), "%s/migrate/meta", cu_tmpdir());
    md_store *md = NULL;
    CU_ASSERT_EQUAL_FATAL(md_open(legacy, 1 << 24, &md), CM_OK);
    mk_bucket(md, "b");
    put_keys(md, 0, 25);
    md_close(md);
    md = NULL;
    CU_ASSERT_EQUAL_FATAL(md_open_copies(dp, 3, legacy, 1 << 24, &md), CM_OK);
    check_keys(md, 25);
    put_keys(md, 25, 30);
    md_close(md);
    snprintf(moved, sizeof(moved), "%s.migrated", legacy);
    CU_ASSERT_FALSE(exists(legacy, "data.mdb"));
    CU_ASSERT_TRUE(exists(moved, "data.mdb"));
    CU_ASSERT_EQUAL_FATAL(md_open_copies(dp, 3, legacy, 1 << 24, &md), CM_OK);
    check_keys(md, 30);
    md_close(md);
    free(check_equal());
}

static void test_map_grows(void)
{
    static uint8_t body[40000];
    char key[16];
    set_dirs("grow");
    md_store *md = NULL;
    CU_ASSERT_EQUAL_FATAL(md_open_copies(dp, 3, NULL, 1 << 20, &md), CM_OK);
    mk_bucket(md, "b");
    for (int i = 0; i < 200; i++) {
        md_object o = {0};
        memset(body, i, sizeof(body));
        snprintf(key, sizeof(key), "g%03d", i);
        o.key = key;
        snprintf(o.etag, sizeof(o.etag), "g");
        snprintf(o.version_id, sizeof(o.version_id), "null");
        o.size = sizeof(body);
        o.inline_data = body;
        o.inline_len = sizeof(body);
        CU_ASSERT_EQUAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
    }
    md_stats st;
    md_stats_get(md, &st);
    CU_ASSERT_EQUAL(st.copies_healthy, 3);
    CU_ASSERT_TRUE(st.map_grows >= 1);
    md_close(md);
    free(check_equal());
}

/* ---- The commit pipeline: a batch answered once a later flush covers its meta page ---- */

#define PIPE_OPS 9

typedef struct {
    md_store *md;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int batches;
    int answered_at[PIPE_OPS]; /* answers seen when batch i started */
    cm_err err[PIPE_OPS];
    int answered;
    int fail_copy, fail_batch; /* in the hook of batch fail_batch: fail copy's next commit (-1:
                                * every copy's) */
    int fail_sync_copy, fail_sync_batch; /* the same for the flush of that batch's commit */
    uint64_t fail_seq;                   /* the sequence number of that commit */
    int watch_copy;                      /* the copy whose flush of fail_seq records... */
    int watch_answered;                  /* ...how many ops were answered when it began */
} pipe_log;

typedef struct {
    pipe_log *log;
    int i;
} pipe_arg;

static void pipe_hook(void *arg, size_t n)
{
    pipe_log *l = arg;
    (void)n;
    pthread_mutex_lock(&l->mu);
    int b = l->batches++;
    l->answered_at[b] = l->answered;
    pthread_mutex_unlock(&l->mu);
    if (b == 0) /* hold the first batch until every other put queued behind it */
        md_gc_wait_queued(l->md, PIPE_OPS - 1);
    if (b == l->fail_batch)
        for (int i = 0; i < 3; i++)
            if (l->fail_copy < 0 || l->fail_copy == i)
                md_mirror_fail_commits(l->md, i, 1);
    if (b == l->fail_sync_batch) {
        md_stats st;
        md_stats_get(l->md, &st);
        l->fail_seq = st.seq + 1; /* this batch's commit */
        for (int i = 0; i < 3; i++)
            if (l->fail_sync_copy < 0 || l->fail_sync_copy == i)
                md_mirror_fail_sync(l->md, i, l->fail_seq);
    }
}

static void pipe_sync_hook(void *arg, int copy, uint64_t seq)
{
    pipe_log *l = arg;
    pthread_mutex_lock(&l->mu);
    if (seq == l->fail_seq && copy == l->watch_copy)
        l->watch_answered = l->answered;
    pthread_mutex_unlock(&l->mu);
}

static void pipe_done(void *arg, cm_err err, md_object *old, int had_old)
{
    pipe_arg *a = arg;
    if (had_old)
        md_object_release(old);
    pthread_mutex_lock(&a->log->mu);
    a->log->err[a->i] = err;
    a->log->answered++;
    pthread_cond_broadcast(&a->log->cv);
    pthread_mutex_unlock(&a->log->mu);
}

/* PIPE_OPS async puts of keys prefix0.., one per batch; returns once all are answered. */
static void pipe_run(md_store *md, pipe_log *l, const char *prefix)
{
    static pipe_arg args[PIPE_OPS];
    char key[32];
    l->md = md;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    md_gc_set_max(md, 1);
    md_gc_set_hook(md, pipe_hook, l);
    for (int i = 0; i < PIPE_OPS; i++) {
        md_object o = {0};
        snprintf(key, sizeof(key), "%s%d", prefix, i);
        o.key = key;
        snprintf(o.etag, sizeof(o.etag), "v");
        snprintf(o.version_id, sizeof(o.version_id), "null");
        o.inline_data = (uint8_t *)"body";
        o.size = o.inline_len = 4;
        args[i] = (pipe_arg){l, i};
        CU_ASSERT_EQUAL(md_object_put_async(md, "b", &o, NULL, pipe_done, &args[i]), CM_OK);
    }
    pthread_mutex_lock(&l->mu);
    while (l->answered < PIPE_OPS)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    md_gc_set_hook(md, NULL, NULL);
    md_gc_set_max(md, MD_BATCH_MAX);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
}

static void test_pipeline(void)
{
    static pipe_log l;
    md_stats before, st;
    char key[32], et[64];
    set_dirs("pipeline");
    md_store *md = open_copies();
    mk_bucket(md, "b");
    /* nothing fails: batch i starts before batch i-1 is answered, i.e. with i-1 answers */
    memset(&l, 0, sizeof(l));
    l.fail_batch = l.fail_sync_batch = -1;
    md_stats_get(md, &before);
    pipe_run(md, &l, "p");
    md_stats_get(md, &st);
    CU_ASSERT_EQUAL(l.batches, PIPE_OPS);
    for (int i = 1; i < PIPE_OPS; i++)
        CU_ASSERT_EQUAL(l.answered_at[i], i - 1);
    for (int i = 0; i < PIPE_OPS; i++)
        CU_ASSERT_EQUAL(l.err[i], CM_OK);
    CU_ASSERT_EQUAL(st.syncs - before.syncs, PIPE_OPS); /* every batch's meta page, once */
    CU_ASSERT_EQUAL(st.commits - before.commits, PIPE_OPS);
    /* the fourth batch's commit fails on copy 1: the third is answered from copies 0 and 2 */
    memset(&l, 0, sizeof(l));
    l.fail_batch = 3, l.fail_copy = 1, l.fail_sync_batch = -1;
    md_stats_get(md, &before);
    pipe_run(md, &l, "q");
    md_stats_get(md, &st);
    for (int i = 0; i < PIPE_OPS; i++)
        CU_ASSERT_EQUAL(l.err[i], CM_OK);
    CU_ASSERT_EQUAL(st.copies_healthy, 2);
    CU_ASSERT_EQUAL(st.copy_failed[1], 1);
    CU_ASSERT_EQUAL(st.syncs - before.syncs, PIPE_OPS);
    /* the fourth batch's commit fails on both healthy copies: it fails (none marked); the third
     * was flushed before that commit began, so it is answered, and the rest go on */
    memset(&l, 0, sizeof(l));
    l.fail_batch = 3, l.fail_copy = -1, l.fail_sync_batch = -1;
    md_stats_get(md, &before);
    pipe_run(md, &l, "r");
    md_stats_get(md, &st);
    for (int i = 0; i < PIPE_OPS; i++)
        CU_ASSERT_EQUAL(l.err[i], i == 3 ? CM_ERR_IO : CM_OK);
    CU_ASSERT_EQUAL(st.copies_healthy, 2);
    CU_ASSERT_EQUAL(st.syncs - before.syncs, PIPE_OPS - 1); /* the failed batch has none */
    CU_ASSERT_EQUAL(l.answered_at[4], 4); /* the failed batch and the one before it answered */
    md_close(md);
    md = open_copies();
    for (int i = 0; i < PIPE_OPS; i++) {
        const char *prefixes = "pqr";
        for (int p = 0; p < 3; p++) {
            snprintf(key, sizeof(key), "%c%d", prefixes[p], i);
            etag_of(md, key, et, sizeof(et));
            CU_ASSERT_STRING_EQUAL(et, p == 2 && i == 3 ? "" : "v");
        }
    }
    md_close(md);
    free(check_equal());
}

/* One pipe_run with copy's flush of the fourth batch's commit failing (-1: every healthy copy's)
 * and watch's flush of it observed; the fifth batch is applied before the fourth is answered. */
static void flush_fail_run(md_store *md, pipe_log *l, const char *prefix, int copy, int watch)
{
    memset(l, 0, sizeof(*l));
    l->fail_batch = -1;
    l->fail_sync_batch = 3, l->fail_sync_copy = copy, l->watch_copy = watch;
    l->watch_answered = -1;
    pipe_run(md, l, prefix);
    CU_ASSERT_EQUAL(l->answered_at[4], 3);
    for (int i = 0; i < PIPE_OPS; i++)
        CU_ASSERT_EQUAL(l->err[i], i == 3 && copy < 0 ? CM_ERR_UNCERTAIN : CM_OK);
}

static void test_flush_failure(void)
{
    static pipe_log l;
    md_stats st;
    char key[32], et[64];
    set_dirs("flushfail");
    md_store *md = open_copies();
    mk_bucket(md, "b");
    md_mirror_set_sync_hook(md, pipe_sync_hook, &l);
    /* copy 1: marked failed; the batch waited for copy 2's flush (begun with 3 answers, not 4) */
    flush_fail_run(md, &l, "p", 1, 2);
    CU_ASSERT_EQUAL(l.watch_answered, 3);
    md_stats_get(md, &st);
    CU_ASSERT_EQUAL(st.copies_healthy, 2);
    CU_ASSERT_EQUAL(st.copy_failed[1], 1);
    CU_ASSERT_TRUE(exists(dirs[1], "failed"));
    /* the primary (copy 0): the fifth batch's commit leaves it out (its transaction was open on
     * it), it is marked and reads move to copy 2, which alone holds the later batches */
    flush_fail_run(md, &l, "q", 0, 2);
    CU_ASSERT_EQUAL(l.watch_answered, 3);
    md_stats_get(md, &st);
    CU_ASSERT_EQUAL(st.copies_healthy, 1);
    CU_ASSERT_EQUAL(st.copy_failed[0], 1);
    for (int i = 0; i < PIPE_OPS; i++) {
        snprintf(key, sizeof(key), "q%d", i);
        etag_of(md, key, et, sizeof(et));
        CU_ASSERT_STRING_EQUAL(et, "v");
    }
    /* the last healthy copy: no copy flushed, so the batch is uncertain and the copy stays */
    flush_fail_run(md, &l, "r", -1, -1);
    md_stats_get(md, &st);
    CU_ASSERT_EQUAL(st.copies_healthy, 1);
    CU_ASSERT_EQUAL(put(md, "after", "v"), CM_OK);
    md_mirror_set_sync_hook(md, NULL, NULL);
    md_close(md);
    md = open_copies(); /* copies 0 and 1 rebuilt from copy 2 */
    md_stats_get(md, &st);
    CU_ASSERT_EQUAL(st.copies_healthy, 3);
    for (int i = 0; i < PIPE_OPS; i++) {
        const char *prefixes = "pqr";
        for (int p = 0; p < 3; p++) {
            snprintf(key, sizeof(key), "%c%d", prefixes[p], i);
            etag_of(md, key, et, sizeof(et));
            CU_ASSERT_STRING_EQUAL(et, "v");
        }
    }
    md_close(md);
    free(check_equal());
}

static void test_unusable_drive(void)
{
    char drive[600];
    set_dirs("unusable");
    md_store *md = open_copies();
    mk_bucket(md, "b");
    put_keys(md, 0, 10);
    md_close(md);
    rm_copy(dirs[1]);
    snprintf(drive, sizeof(drive), "%s/unusable/drive1", cu_tmpdir());
    CU_ASSERT_EQUAL_FATAL(rmdir(drive), 0);
    int fd = open(drive, O_WRONLY | O_CREAT, 0644); /* mkdir drive1/meta: ENOTDIR */
    close(fd);
    md = open_copies();
    md_stats st;
    md_stats_get(md, &st);
    CU_ASSERT_EQUAL(st.copies_healthy, 2);
    CU_ASSERT_EQUAL(st.copy_failed[1], 1);
    put_keys(md, 10, 20);
    check_keys(md, 20);
    md_close(md);
    CU_ASSERT_EQUAL(unlink(drive), 0);
    md = open_copies();
    md_stats_get(md, &st);
    CU_ASSERT_EQUAL(st.copies_healthy, 3);
    check_keys(md, 20);
    md_close(md);
    free(check_equal());
}

void cu_register(void)
{
    cm_log_threshold = -1; /* the failures below are logged on purpose */
    static const cu_test tests[] = {{"writes_everywhere", test_writes_everywhere},
                                    {"pipeline", test_pipeline},
                                    {"flush_failure", test_flush_failure},
                                    {"sync_failure", test_sync_failure},
                                    {"reopen_rebuild", test_reopen_rebuild},
                                    {"migrate_legacy", test_migrate_legacy},
                                    {"map_grows", test_map_grows},
                                    {"unusable_drive", test_unusable_drive},
                                    {NULL, NULL}};
    cu_add_suite("meta_copies", tests);
}
