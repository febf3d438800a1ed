/*
 * md_mirror.c - the store kept in up to three copies (the single node's metadata replicas), one
 * LMDB environment per copy, each on a different drive.
 *
 * Why copies of the whole store and not an LMDB-level mirror: LMDB has no replication, and the
 * pages of two environments differ (free lists, page order), so copies agree on their key/value
 * contents, not bytes. Each batch is therefore applied once (on the primary, where its ops read
 * and check conditions) and its *writes* are replayed on the other copies: every put and delete an
 * apply function makes goes through md_db_put / md_db_del / md_db_cursor_del, which append it to
 * the batch's write log (md->wlog; a nested transaction that aborts drops its part). Replaying is
 * plain mdb_put/mdb_del of the logged keys and values (a put made with MDB_APPEND replayed as one,
 * so the copies' pages fill as the primary's), no decoding, no condition, so the others end up
 * with the primary's contents whatever the ops did.
 *
 * Commit: the leader adds the batch's sequence number (database "replica", key "seq") to the
 * primary's transaction, hands the log to each other healthy copy's thread (which begins its own
 * write transaction, replays, stores the same number and commits) and commits the primary itself,
 * so the syncs of all copies run at once: a write costs one sync's latency, not three. The copies
 * are opened MDB_NOMETASYNC: a commit flushes its data pages but not its meta page, which
 * md_mirror_flush_start then flushes on every copy's thread (the primary's included) while the
 * leader applies the next batch; md_commit.c answers a batch only after that flush
 * (md_mirror_flush_wait; md->synced tells it a commit reached some copy). A single environment
 * (nmir 1) keeps LMDB's two flushes per commit. A copy whose replay, commit or flush failed is
 * marked failed (logged, counted, a file "failed" written into its directory when the drive still
 * allows it) and is neither written nor read again; when the primary fails, the first healthy copy
 * becomes the primary (md->env switches with map_lock held exclusively, so no read transaction
 * spans it). If no copy committed, the batch fails and no copy is marked: all are still equal (the
 * single-copy behaviour). If the primary's commit found its map full while others committed, the
 * log is replayed into the primary after growing its map (a rerun of the ops would apply the batch
 * twice on the others).
 *
 * Open: every copy present is opened and its sequence number read; the highest wins (ties: the
 * lowest index). Copies behind it, missing, unreadable or holding the "failed" marker are rebuilt
 * from it: mdb_env_copy2 into DIR.rebuild, fsync, remove DIR, rename, fsync the parent. A copy
 * that failed while the others went on is behind them, so it never wins while a fresher copy
 * exists; the marker keeps it from winning when it is the only one left. Stores from before the
 * copies (one environment in DATA/meta) are the source of the first rebuild, then renamed.
 *
 * A copy whose flush failed while the leader has the next batch's transaction open on the primary
 * cannot be marked then if it is the primary (md->env would move under that transaction): the
 * flush failures wait in mir[].flush_err, and md_mirror_commit leaves those copies out of the
 * commit (the primary's transaction is aborted, the others replay the log) and marks them.
 *
 * Threading: only the leader (md_commit.c) writes, logs and changes primary/failed; each copy has a
 * thread that waits on its go semaphore for one job (log and seq: not the primary's; or a flush)
 * and posts done. The leader posts a job only after it took the last one's result, so the job
 * fields (seq, sync_job) are never overwritten under a running job.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_util.h"
#include "md_int.h"

/* The log of the batch the calling thread (the leader) is applying; NULL: record nothing. */
static _Thread_local md_wbuf *cur_log;

enum { WL_PUT = 1, WL_DEL = 2, WL_PUT_APPEND = 3 };

/* Entry: type u8 | dbi u32 | klen u32 | vlen u32 | key | value (native order: never stored). */
static void wl_add(uint8_t type, MDB_dbi dbi, const MDB_val *k, const MDB_val *v)
{
    uint32_t hdr[3] = {(uint32_t)dbi, (uint32_t)k->mv_size, v ? (uint32_t)v->mv_size : 0};
    md_w_bytes(cur_log, &type, 1);
    md_w_bytes(cur_log, hdr, sizeof(hdr));
    md_w_bytes(cur_log, k->mv_data, k->mv_size);
    if (v)
        md_w_bytes(cur_log, v->mv_data, v->mv_size);
}

int md_db_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags)
{
    int rc = mdb_put(txn, dbi, k, v, flags);
    if (rc == 0 && cur_log)
        wl_add(flags & MDB_APPEND ? WL_PUT_APPEND : WL_PUT, dbi, k, v);
    return rc;
}

int md_db_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *k)
{
    int rc = mdb_del(txn, dbi, k, NULL);
    if (rc == 0 && cur_log)
        wl_add(WL_DEL, dbi, k, NULL);
    return rc;
}

int md_db_cursor_del(MDB_cursor *cur, MDB_dbi dbi)
{
    MDB_val k, v;
    size_t mark = cur_log ? cur_log->len : 0;
    if (cur_log) { /* the key lives in the map: log it before the delete moves it */
        int rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc)
            return rc;
        wl_add(WL_DEL, dbi, &k, NULL);
    }
    int rc = mdb_cursor_del(cur, 0);
    if (rc && cur_log && !cur_log->failed)
        cur_log->len = mark;
    return rc;
}

void md_wlog_reset(md_store *md)
{
    if (md->wlog.cap > ((size_t)32 << 20)) /* do not keep a huge batch's buffer */
        md_w_free(&md->wlog);
    md->wlog.len = 0;
    md->wlog.failed = 0;
    cur_log = md->wlog_on ? &md->wlog : NULL;
}

size_t md_wlog_mark(md_store *md)
{
    return md->wlog.len;
}

void md_wlog_truncate(md_store *md, size_t mark)
{
    if (!md->wlog.failed && mark <= md->wlog.len)
        md->wlog.len = mark;
}

/* ---- Applying a batch's log to a copy ---- */

static int replay(MDB_txn *txn, const md_wbuf *log)
{
    size_t off = 0;
    while (off < log->len) {
        uint8_t type = log->p[off];
        uint32_t hdr[3];
        memcpy(hdr, log->p + off + 1, sizeof(hdr));
        off += 1 + sizeof(hdr);
        MDB_val k = {hdr[1], log->p + off};
        off += hdr[1];
        int rc;
        if (type == WL_PUT || type == WL_PUT_APPEND) {
            MDB_val v = {hdr[2], log->p + off};
            off += hdr[2];
            /* An append on the primary is one here too (the copies hold the same keys); should
             * it not be, the plain put still stores it. */
            rc = mdb_put(txn, hdr[0], &k, &v, type == WL_PUT_APPEND ? MDB_APPEND : 0);
            if (rc == MDB_KEYEXIST && type == WL_PUT_APPEND)
                rc = mdb_put(txn, hdr[0], &k, &v, 0);
        } else {
            rc = mdb_del(txn, hdr[0], &k, NULL);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int put_seq(MDB_txn *txn, MDB_dbi dbi, uint64_t seq)
{
    uint8_t b[8];
    cm_put_be64(b, seq);
    return mdb_put(txn, dbi, &(MDB_val){3, "seq"}, &(MDB_val){8, b}, 0);
}

/* Grow a copy's map (not the primary's: nobody reads the others, so no lock is needed). */
static cm_err copy_grow(md_mirror *m)
{
    size_t step = m->map_size < MD_MAP_STEP_MAX ? m->map_size : MD_MAP_STEP_MAX;
    size_t want = m->map_size + step, max = md_fs_size(m->dir);
    if (want > max)
        want = max;
    if (want <= m->map_size)
        return CM_ERR_NOSPC;
    int rc = mdb_env_set_mapsize(m->env, want);
    if (rc)
        return md_mdb_err(rc, "mdb_env_set_mapsize (copy)");
    CM_INFO(MD_MOD, "metadata copy %s: map grown from %zu to %zu bytes", m->dir, m->map_size, want);
    m->map_size = want;
    return CM_OK;
}

/* Replay log into copy m with sequence number seq and commit: one durable transaction. */
static cm_err copy_apply(md_store *md, md_mirror *m, const md_wbuf *log, uint64_t seq, int primary)
{
    for (;;) {
        int inject = __atomic_load_n(&m->fail_next, __ATOMIC_ACQUIRE);
        if (inject > 0) {
            __atomic_fetch_sub(&m->fail_next, 1, __ATOMIC_ACQ_REL);
            CM_ERROR(MD_MOD, "metadata copy %s: commit failed (injected)", m->dir);
            return CM_ERR_IO;
        }
        MDB_txn *txn;
        int rc = mdb_txn_begin(m->env, NULL, 0, &txn);
        if (rc)
            return md_mdb_err(rc, m->dir);
        rc = replay(txn, log);
        if (!rc)
            rc = put_seq(txn, md->replica, seq);
        if (rc)
            mdb_txn_abort(txn);
        else
            rc = mdb_txn_commit(txn);
        if (rc == MDB_MAP_FULL && (primary ? md_map_grow(md) : copy_grow(m)) == CM_OK)
            continue;
        return rc ? md_mdb_err(rc, m->dir) : CM_OK;
    }
}

/* Flush copy m's last commit (sequence number seq): its data pages are durable already, this makes
 * its meta page so. */
static cm_err copy_sync(md_mirror *m, uint64_t seq)
{
    if (seq != 0 && __atomic_load_n(&m->fail_sync_seq, __ATOMIC_ACQUIRE) == seq) {
        CM_ERROR(MD_MOD, "metadata copy %s: sync failed (injected)", m->dir);
        return CM_ERR_IO;
    }
    int rc = mdb_env_sync(m->env, 1);
    return rc ? md_mdb_err(rc, m->dir) : CM_OK;
}

static void *copy_thread(void *arg)
{
    md_mirror *m = arg;
    for (;;) {
        while (sem_wait(&m->go) != 0 && errno == EINTR)
            ;
        if (m->stop)
            break;
        if (m->sync_job && m->sync_hook)
            m->sync_hook(m->sync_hook_arg, (int)(m - m->md->mir), m->seq);
        if (m->sync_job)
            m->result = copy_sync(m, m->seq);
        else
            m->result = copy_apply(m->md, m, &m->md->wlog, m->seq, 0);
        sem_post(&m->done);
    }
    return NULL;
}

/* Best effort: mark dir's copy as failed on disk, so that it never wins an open on its own. */
static void write_marker(const char *dir)
{
    char path[8192];
    snprintf(path, sizeof(path), "%s/failed", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (fsync(fd) != 0)
        CM_WARN(MD_MOD, "%s: fsync of the failure marker: %s", path, strerror(errno));
    close(fd);
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Mark the copies whose res[] is an error failed and move the primary off a failed one (leader,
 * map_lock exclusive: no read transaction of the old primary is open once it returns). */
static void mark_failed(md_store *md, const cm_err *res)
{
    pthread_rwlock_wrlock(&md->map_lock);
    pthread_mutex_lock(&md->gc.mu);
    for (int i = 0; i < md->nmir; i++) {
        if (md->mir[i].failed || res[i] == CM_OK)
            continue;
        md->mir[i].failed = 1;
        md->copy_failures++;
        CM_ERROR(MD_MOD, "metadata copy %s failed (%s): no longer used until it is rebuilt",
                 md->mir[i].dir, cm_err_str(res[i]));
    }
    if (md->mir[md->primary].failed) {
        int p = 0;
        while (md->mir[p].failed)
            p++; /* some copy committed: one is healthy */
        CM_WARN(MD_MOD, "metadata primary copy is now %s", md->mir[p].dir);
        md->primary = p;
        md->env = md->mir[p].env;
        md->map_size = md->mir[p].map_size;
        md->map_max = md_fs_size(md->mir[p].dir);
        md->gc.st.map_size = md->map_size;
    }
    pthread_mutex_unlock(&md->gc.mu);
    pthread_rwlock_unlock(&md->map_lock);
}

/* Post a batch job with sequence number seq to every healthy copy whose res[] is CM_OK but the
 * primary; kicked[] marks the copies posted to. */
static void kick_copies(md_store *md, uint64_t seq, const cm_err *res, int *kicked)
{
    for (int i = 0; i < md->nmir; i++) {
        if (i == md->primary || md->mir[i].failed || res[i] != CM_OK)
            continue;
        md->mir[i].seq = seq;
        md->mir[i].sync_job = 0;
        sem_post(&md->mir[i].go);
        kicked[i] = 1;
    }
}

/* Wait for the kicked copies' results into res[]; how many succeeded. */
static int collect_copies(md_store *md, const int *kicked, cm_err *res)
{
    int ok = 0;
    for (int i = 0; i < md->nmir; i++) {
        if (!kicked[i])
            continue;
        while (sem_wait(&md->mir[i].done) != 0 && errno == EINTR)
            ;
        res[i] = md->mir[i].result;
        ok += res[i] == CM_OK;
    }
    return ok;
}

/* After a commit or flush that some copy passed: mark those that did not (res[i] != CM_OK). */
static void mark_failures(md_store *md, const cm_err *res)
{
    for (int i = 0; i < md->nmir; i++) {
        if (res[i] != CM_OK) {
            mark_failed(md, res);
            for (int j = 0; j < md->nmir; j++)
                if (res[j] != CM_OK)
                    write_marker(md->mir[j].dir);
            return;
        }
    }
}

/* Take the flush failures md_mirror_flush_wait left into res[] (CM_OK for the other copies); 1
 * when there were any. */
static int take_flush_failures(md_store *md, cm_err *res)
{
    int any = 0;
    for (int i = 0; i < md->nmir; i++) {
        res[i] = md->mir[i].flush_err;
        md->mir[i].flush_err = CM_OK;
        any |= res[i] != CM_OK;
    }
    return any;
}

cm_err md_mirror_commit(md_store *md, MDB_txn *txn)
{
    cm_err res[MD_MIRRORS_MAX];
    int kicked[MD_MIRRORS_MAX] = {0}, ok = 0, p = md->primary;
    uint64_t seq = md->seq + 1;
    int rc = md->wlog.failed ? ENOMEM : put_seq(txn, md->replica, seq);
    if (rc) {
        mdb_txn_abort(txn);
        return rc == ENOMEM ? CM_ERR_NOMEM : md_mdb_err(rc, "put seq");
    }
    /* A copy whose flush of the last batch failed takes no part: it is marked below. */
    cm_err ferr[MD_MIRRORS_MAX] = {CM_OK};
    int flush_failed = take_flush_failures(md, ferr);
    memcpy(res, ferr, sizeof(res));
    kick_copies(md, seq, res, kicked);
    md_mirror *pm = &md->mir[p];
    int inject = __atomic_load_n(&pm->fail_next, __ATOMIC_ACQUIRE);
    if (res[p] != CM_OK) {
        mdb_txn_abort(txn);
    } else if (inject > 0) {
        __atomic_fetch_sub(&pm->fail_next, 1, __ATOMIC_ACQ_REL);
        mdb_txn_abort(txn);
        CM_ERROR(MD_MOD, "metadata copy %s: commit failed (injected)", pm->dir);
        res[p] = CM_ERR_IO;
    } else {
        res[p] = md_txn_commit(txn);
        if (res[p] != CM_OK)
            res[p] = md_commit_outcome(md, res[p]);
    }
    ok += res[p] == CM_OK;
    ok += collect_copies(md, kicked, res);
    __atomic_store_n(&md->seq, seq, __ATOMIC_RELAXED); /* never reused: an uncertain commit
                                                          may hold it */
    if (ok == 0) {        /* nothing committed anywhere (NOSPC: the caller grows and reruns) */
        if (flush_failed) /* those copies still failed a flush that another passed */
            mark_failures(md, ferr);
        return res[p];
    }
    /* Each copy that committed did so after its flush of the last batch (md_commit.c settles that
     * flush before every commit): what it committed now is this batch's. */
    md->synced = 1;
    if (res[p] == CM_ERR_NOSPC) /* the others have the batch: replay it, do not rerun the ops */
        res[p] = copy_apply(md, pm, &md->wlog, seq, 1);
    mark_failures(md, res);
    return CM_OK;
}

void md_mirror_flush_start(md_store *md)
{
    for (int i = 0; i < md->nmir; i++) {
        md_mirror *m = &md->mir[i];
        m->flushing = 0;
        if (m->failed)
            continue;
        m->seq = md->seq;
        m->sync_job = 1;
        sem_post(&m->go);
        m->flushing = 1;
    }
}

cm_err md_mirror_flush_wait(md_store *md)
{
    cm_err res[MD_MIRRORS_MAX], first = CM_OK;
    int ok = 0;
    for (int i = 0; i < md->nmir; i++) {
        md_mirror *m = &md->mir[i];
        res[i] = CM_OK;
        if (!m->flushing)
            continue;
        while (sem_wait(&m->done) != 0 && errno == EINTR)
            ;
        m->flushing = 0;
        res[i] = m->result;
        ok += res[i] == CM_OK;
        if (first == CM_OK)
            first = res[i];
    }
    if (ok == 0) /* no copy flushed: nothing is marked, they all stay as equal as they were */
        return first;
    for (int i = 0; i < md->nmir; i++)
        md->mir[i].flush_err = res[i];
    return CM_OK;
}

void md_mirror_flush_marks(md_store *md)
{
    cm_err res[MD_MIRRORS_MAX];
    if (take_flush_failures(md, res))
        mark_failures(md, res);
}

/* ---- Open, rebuild, close ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* Remove dir and everything in it (absent is fine). */
static cm_err rm_tree(const char *dir)
{
    if (nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return cm_err_from_errno(errno);
    return CM_OK;
}

static cm_err fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cm_err_from_errno(errno);
    cm_err e = fsync(fd) == 0 ? CM_OK : cm_err_from_errno(errno);
    close(fd);
    return e;
}

static int file_exists(const char *dir, const char *name)
{
    char path[8192];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* Make dir a durable copy of src's committed state: copy next to it, sync, swap in. */
static cm_err rebuild(const char *dir, MDB_env *src, const char *src_dir, const char *why)
{
    char tmp[4096], path[4200], parent[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.rebuild", dir) >= sizeof(tmp))
        return CM_ERR_INVAL;
    cm_err e = rm_tree(tmp);
    if (e == CM_OK && mkdir(tmp, 0755) != 0)
        e = cm_err_from_errno(errno);
    int rc = e == CM_OK ? mdb_env_copy2(src, tmp, 0) : 0;
    if (rc)
        e = md_mdb_err(rc, "mdb_env_copy2");
    snprintf(path, sizeof(path), "%s/data.mdb", tmp);
    if (e == CM_OK)
        e = fsync_path(path);
    if (e == CM_OK)
        e = fsync_path(tmp);
    if (e == CM_OK)
        e = rm_tree(dir);
    if (e == CM_OK && rename(tmp, dir) != 0)
        e = cm_err_from_errno(errno);
    cm_parent_dir(dir, parent, sizeof(parent));
    if (e == CM_OK)
        e = fsync_path(parent);
    if (e != CM_OK) {
        CM_ERROR(MD_MOD, "rebuilding metadata copy %s from %s: %s", dir, src_dir, cm_err_str(e));
        return e;
    }
    CM_WARN(MD_MOD, "metadata copy %s rebuilt from %s (%s)", dir, src_dir, why);
    return CM_OK;
}

static cm_err env_seq(md_store *md, MDB_env *env, uint64_t *seq)
{
    MDB_txn *txn;
    MDB_val v;
    *seq = 0;
    int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return md_mdb_err(rc, "mdb_txn_begin");
    rc = mdb_get(txn, md->replica, &(MDB_val){3, "seq"}, &v);
    if (rc == 0 && v.mv_size == 8)
        *seq = cm_get_be64(v.mv_data);
    else if (rc == 0)
        rc = MDB_CORRUPTED;
    mdb_txn_abort(txn);
    return rc && rc != MDB_NOTFOUND ? md_mdb_err(rc, "read seq") : CM_OK;
}

/* What an open found in a copy's directory. */
enum { C_MISSING, C_OK, C_UNUSABLE, C_NODIR };

/* Open the environment in dir with its databases and read its sequence number. *first: md's
 * database handles are not set yet (cleared once they are). */
static int probe(md_store *md, const char *dir, size_t map_size, int *first, MDB_env **env,
                 size_t *msize, uint64_t *seq)
{
    *env = NULL;
    if (file_exists(dir, "failed")) {
        CM_WARN(MD_MOD, "metadata copy %s is marked failed", dir);
        return C_UNUSABLE;
    }
    if (!file_exists(dir, "data.mdb"))
        return C_MISSING;
    cm_err e = md_env_open(dir, map_size, MDB_NOMETASYNC, env, msize);
    if (e == CM_OK && (e = md_env_dbs(md, *env, *first)) == CM_OK) {
        *first = 0;
        e = env_seq(md, *env, seq);
    }
    if (e == CM_OK)
        return C_OK;
    CM_WARN(MD_MOD, "metadata copy %s is unreadable: %s", dir, cm_err_str(e));
    mdb_env_close(*env);
    *env = NULL;
    return C_UNUSABLE;
}

static cm_err mkdirs(const char *dir)
{
    char parent[4096];
    cm_parent_dir(dir, parent, sizeof(parent));
    cm_err e = cm_mkdir_durable(parent, 0755);
    if (e == CM_OK)
        e = cm_mkdir_durable(dir, 0755);
    if (e != CM_OK)
        CM_ERROR(MD_MOD, "mkdir %s: %s", dir, cm_err_str(e));
    return e;
}

/* The source of the open: the copy with the highest sequence number, or the legacy store when
 * no copy is usable or it is fresher. -1: none (*src_env stays NULL). */
static int pick_source(md_store *md, const int *state, const uint64_t *seq, MDB_env *legacy_env,
                       uint64_t legacy_seq, MDB_env **src_env, uint64_t *src_seq)
{
    int best = -1;
    for (int i = 0; i < md->nmir; i++)
        if (state[i] == C_OK && (best < 0 || seq[i] > seq[best]))
            best = i;
    *src_env = best >= 0 ? md->mir[best].env : NULL;
    *src_seq = best >= 0 ? seq[best] : 0;
    if (legacy_env && (best < 0 || legacy_seq > seq[best])) {
        *src_env = legacy_env;
        *src_seq = legacy_seq;
        return -2;
    }
    return best;
}

/* A copy that cannot be opened or rebuilt: the store opens without it (failed, as if it had failed
 * while serving), and it is marked on disk if the drive still allows it. */
static void open_failed(md_mirror *m, cm_err e)
{
    CM_ERROR(MD_MOD, "metadata copy %s cannot be used (%s): serving from the others", m->dir,
             cm_err_str(e));
    if (m->env)
        mdb_env_close(m->env), m->env = NULL;
    m->failed = 1;
    write_marker(m->dir);
}

/* Bring every copy to the source's state and open the rebuilt ones (a copy that cannot be rebuilt
 * is failed). */
static cm_err align_copies(md_store *md, const int *state, const uint64_t *seq, int src,
                           MDB_env *src_env, uint64_t src_seq, const char *src_dir, size_t map_size)
{
    for (int i = 0; i < md->nmir; i++) {
        md_mirror *m = &md->mir[i];
        if (i == src || (state[i] == C_OK && seq[i] == src_seq))
            continue;
        const char *why = state[i] == C_MISSING ? "it was missing"
                          : state[i] == C_OK    ? "it was behind"
                          : state[i] == C_NODIR ? "its directory could not be made"
                                                : "it was unusable";
        if (m->env)
            mdb_env_close(m->env), m->env = NULL;
        int first = 0;
        uint64_t got;
        cm_err e = rebuild(m->dir, src_env, src_dir, why);
        if (e == CM_OK && probe(md, m->dir, map_size, &first, &m->env, &m->map_size, &got) != C_OK)
            e = CM_ERR_IO;
        if (e != CM_OK)
            open_failed(m, e);
    }
    return CM_OK;
}

/* Open the legacy store in dir when it holds one (NULL env otherwise). */
static cm_err open_legacy(md_store *md, const char *dir, size_t map_size, int *first, MDB_env **env,
                          uint64_t *seq)
{
    size_t msize;
    *env = NULL;
    if (!dir || !file_exists(dir, "data.mdb"))
        return CM_OK;
    return probe(md, dir, map_size, first, env, &msize, seq) == C_OK ? CM_OK : CM_ERR_CORRUPT;
}

static void retire_legacy(const char *dir)
{
    char to[8192];
    snprintf(to, sizeof(to), "%s.migrated", dir);
    if (rename(dir, to) != 0)
        CM_WARN(MD_MOD, "cannot rename %s to %s: %s (it is no longer used)", dir, to,
                strerror(errno));
    else
        CM_WARN(MD_MOD,
                "metadata moved to its copies; the old store is kept as %s (delete it "
                "once you no longer need it)",
                to);
}

static cm_err open_copies(md_store *md, const char *const *dirs, const char *legacy,
                          size_t map_size)
{
    int state[MD_MIRRORS_MAX], first = 1;
    uint64_t seq[MD_MIRRORS_MAX] = {0}, legacy_seq = 0, src_seq;
    MDB_env *legacy_env = NULL, *src_env;
    for (int i = 0; i < md->nmir; i++) {
        md_mirror *m = &md->mir[i];
        if (!(m->dir = strdup(dirs[i])))
            return CM_ERR_NOMEM;
        if (mkdirs(m->dir) != CM_OK)
            state[i] = C_NODIR; /* failed below, when it cannot be rebuilt */
        else
            state[i] = probe(md, m->dir, map_size, &first, &m->env, &m->map_size, &seq[i]);
    }
    cm_err e = open_legacy(md, legacy, map_size, &first, &legacy_env, &legacy_seq);
    if (e != CM_OK) {
        CM_ERROR(MD_MOD, "the metadata store %s cannot be read", legacy);
        return e;
    }
    int src = pick_source(md, state, seq, legacy_env, legacy_seq, &src_env, &src_seq);
    if (!src_env) {
        for (int i = 0; i < md->nmir; i++)
            if (state[i] == C_UNUSABLE) {
                CM_ERROR(MD_MOD,
                         "no usable copy of the metadata store (%s is unusable and "
                         "no other copy exists)",
                         md->mir[i].dir);
                return CM_ERR_CORRUPT;
            }
        for (int i = 0; i < md->nmir; i++) { /* a new store */
            md_mirror *m = &md->mir[i];
            if ((e = md_env_open(m->dir, map_size, MDB_NOMETASYNC, &m->env, &m->map_size)) ==
                    CM_OK &&
                (e = md_env_dbs(md, m->env, first)) == CM_OK)
                first = 0;
            if (e != CM_OK)
                open_failed(m, e);
        }
        return CM_OK;
    }
    e = align_copies(md, state, seq, src, src_env, src_seq, src < 0 ? legacy : dirs[src], map_size);
    if (legacy_env) {
        mdb_env_close(legacy_env);
        if (e == CM_OK)
            retire_legacy(legacy);
    }
    md->seq = src_seq;
    return e;
}

static cm_err start_threads(md_store *md)
{
    for (int i = 0; i < md->nmir; i++) {
        md_mirror *m = &md->mir[i];
        if (m->failed)
            continue;
        m->md = md;
        if (sem_init(&m->go, 0, 0) != 0)
            return CM_ERR_NOMEM;
        if (sem_init(&m->done, 0, 0) != 0) {
            sem_destroy(&m->go);
            return CM_ERR_NOMEM;
        }
        if (pthread_create(&m->thread, NULL, copy_thread, m) != 0) {
            sem_destroy(&m->go);
            sem_destroy(&m->done);
            return CM_ERR_NOMEM;
        }
        m->started = 1;
    }
    return CM_OK;
}

cm_err md_open_copies(const char *const *dirs, int n, const char *legacy, size_t map_size,
                      md_store **out)
{
    *out = NULL;
    if (n < 1 || n > MD_MIRRORS_MAX)
        return CM_ERR_INVAL;
    md_store *md = md_store_alloc();
    if (!md)
        return CM_ERR_NOMEM;
    md->nmir = n;
    cm_err e = CM_OK;
    if (n == 1) { /* one environment, as before the copies: no sequence numbers, no log */
        md_mirror *m = &md->mir[0];
        if (!(m->dir = strdup(dirs[0])))
            e = CM_ERR_NOMEM;
        else if (mkdir(m->dir, 0755) != 0 && errno != EEXIST) {
            CM_ERROR(MD_MOD, "mkdir %s: %s", m->dir, strerror(errno));
            e = cm_err_from_errno(errno);
        }
        if (e == CM_OK)
            e = md_env_open(m->dir, map_size, 0, &m->env, &m->map_size);
        if (e == CM_OK)
            e = md_env_dbs(md, m->env, 1);
    } else {
        e = open_copies(md, dirs, legacy, map_size);
        if (e == CM_OK)
            e = start_threads(md);
    }
    if (e != CM_OK) {
        md_close(md);
        return e;
    }
    int p = 0;
    while (p < n && md->mir[p].failed)
        p++;
    if (p == n) {
        CM_ERROR(MD_MOD, "no copy of the metadata store could be opened");
        md_close(md);
        return CM_ERR_IO;
    }
    md->wlog_on = n > 1;
    md->primary = p;
    md->env = md->mir[p].env;
    md->map_size = md->mir[p].map_size;
    md->map_max = md_fs_size(md->mir[p].dir);
    md->gc.st.map_size = md->map_size;
    *out = md;
    return CM_OK;
}

void md_mirror_close(md_store *md)
{
    for (int i = 0; i < md->nmir; i++) {
        md_mirror *m = &md->mir[i];
        if (m->started) {
            m->stop = 1;
            sem_post(&m->go);
            pthread_join(m->thread, NULL);
            sem_destroy(&m->go);
            sem_destroy(&m->done);
        }
        if (m->env)
            mdb_env_close(m->env);
        free(m->dir);
    }
    md_w_free(&md->wlog);
}

void md_mirror_fail_commits(md_store *md, int i, int n)
{
    if (i >= 0 && i < md->nmir)
        __atomic_store_n(&md->mir[i].fail_next, n, __ATOMIC_RELEASE);
}

void md_mirror_set_sync_hook(md_store *md, void (*hook)(void *, int, uint64_t), void *arg)
{
    for (int i = 0; i < md->nmir; i++) {
        md->mir[i].sync_hook = hook;
        md->mir[i].sync_hook_arg = arg;
    }
}

void md_mirror_fail_sync(md_store *md, int i, uint64_t seq)
{
    if (i >= 0 && i < md->nmir)
        __atomic_store_n(&md->mir[i].fail_sync_seq, seq, __ATOMIC_RELEASE);
}

cm_err md_open_data(const char *data_dir, int ndrives, int ncopies, md_store **out)
{
    char legacy[4096], dirs[MD_MIRRORS_MAX][4200];
    const char *dp[MD_MIRRORS_MAX];
    int n = ncopies < ndrives ? ncopies : ndrives;
    if (n > MD_MIRRORS_MAX)
        n = MD_MIRRORS_MAX;
    if ((size_t)snprintf(legacy, sizeof(legacy), "%s/meta", data_dir) >= sizeof(legacy))
        return CM_ERR_INVAL;
    for (int i = 0; i < MD_MIRRORS_MAX; i++) {
        snprintf(dirs[i], sizeof(dirs[i]), "%s/drive%d/meta", data_dir, i);
        dp[i] = dirs[i];
    }
    if (n > 1)
        return md_open_copies(dp, n, legacy, 0, out);
    if (!file_exists(legacy, "data.mdb") && file_exists(dirs[0], "data.mdb")) {
        CM_ERROR(MD_MOD,
                 "%s holds a copy of the metadata but one copy in %s was asked for: "
                 "set storage.meta_replicas back to 3",
                 dirs[0], legacy);
        return CM_ERR_INVAL;
    }
    return md_open(legacy, 0, out);
}
