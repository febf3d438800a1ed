/*
 * md_commit.c - group commit: concurrent md_* writes share one LMDB write transaction and sync.
 *
 * Every public write is an op (an apply function and its private state). A caller queues its op
 * under gc->mu, wakes the store's commit thread if it is idle, and waits on the op's own
 * semaphore. The commit thread (the leader, started by the first write) takes up to gc->max
 * queued ops (arrival order), opens one write transaction, applies the ops, commits it once (one
 * fdatasync), records each op's result and posts its semaphore. Ops queued meanwhile form the
 * next batch. A lone write is run at once: no timers, no waiting for company. With copies of the
 * store (md_mirror.c) the batch is applied on the primary only and its one commit is a commit on
 * every copy, in parallel (md_mirror_commit); the apply functions do not know about copies.
 *
 * With copies, the meta page is flushed beside the next batch: they are opened MDB_NOMETASYNC, so
 * a commit leaves its meta page unflushed; right after it the leader starts a flush of every copy
 * (md_mirror_flush_start, one per copy's thread) and, when more ops are queued, applies the next
 * batch meanwhile; the committed batch (md->pend) is answered once the flush ended (settle()),
 * before the next commit begins (a commit's fdatasync must not take a failure that belongs to the
 * flush: Linux reports it once). Invariant: md->pend is NULL whenever the commit thread sleeps (a
 * batch is left pending only when another is queued), so no op waits forever and md_gc_release
 * finds nothing unanswered. Readers may see a pending batch before it is durable
 * (docs/metadata.md).
 *
 * Why a thread of its own rather than the first caller leading: with callers leading, every
 * finished batch woke n callers on condition variables tied to gc->mu, so each had to take gc->mu
 * again on waking, right while the next leader and new callers wanted it - a herd of futex waits
 * and context switches per batch that cost more CPU than the commit itself at 64 writers
 * (docs/performance.md). Now a caller's wake-up is one sem_post, and nothing it does afterwards
 * touches shared state. The price is one hand-off (two context switches) for a lone write.
 *
 * Flat first, nested when an op fails: the leader first applies every op of the batch straight
 * in the write transaction. If all of them succeed, that is the batch (what the nested way would
 * have produced: each op sees the ops before it either way). If one fails, the transaction is
 * aborted - nothing of it is durable or visible - and the batch runs again with each op in a
 * nested transaction (committed into the parent on success, aborted on failure, so a failed
 * condition, NOTFOUND or MAP_FULL of one op leaves the others' writes alone). Why not always
 * nested: LMDB allocates a 2 MiB dirty list and a 1 MiB free-page list for every nested
 * transaction, which glibc maps and unmaps (past its mmap threshold): two mmap, two munmap with
 * cross-CPU TLB shootdowns and a few page faults per write, most of the CPU of a 4 KiB PUT
 * (docs/performance.md). An op that succeeds without changing anything clears *wrote and must
 * then have written nothing (in the flat run its transaction is the batch's).
 *
 * Invariants:
 *   - One leader (the commit thread), so LMDB's writer lock is never contended between our own
 *     threads, and the transaction is begun and committed on one thread (LMDB's writer mutex
 *     must be unlocked by the thread that locked it).
 *   - Each op sees the writes of every op applied before it (the parent carries them), so
 *     check-and-set stays atomic: two racing If-None-Match puts are ordered, the second fails.
 *   - If the parent commit fails, every op of the batch gets that error: none of it is durable,
 *     except when the meta-page write failed (LMDB then panics): the commit may be on disk, and
 *     every op gets CM_ERR_UNCERTAIN, so callers keep what the records would name (fsck sweeps).
 *   - Whenever the queue is not empty, the commit thread is running or has been signalled, so no
 *     op waits forever. An op's semaphore is posted once, by the commit thread, as its last touch
 *     of the op (which lives on its caller's stack and is gone once the caller returns).
 *   - md_gc_release (md_close) stops and joins the thread; no write may be in flight then.
 *   - A batch that fills the LMDB map (MDB_MAP_FULL in an op or in the commit) is aborted whole,
 *     the map grown (md_map_grow: the leader holds no transaction then, and waits out the
 *     readers) and the batch run again from the start; so the map follows the data instead of
 *     being sized for the largest store up front. An op's apply must therefore reset what an
 *     earlier run of it left in its state.
 *   - A batch of one op uses the parent transaction directly (no nested transaction), so a single
 *     writer costs what it did before group commit. A batch in which nothing changed (all ops
 *     failed, or deleted missing keys) aborts instead of committing: no sync.
 *
 * md_barrier is an op that writes nothing: its caller wakes once every op queued before it is
 * committed or failed (docs/replication.md, "The fence and the commit queue": what a Merkle
 * read waits for).
 *
 * Threading: a caller waits on its own semaphore (on its stack), so a finished batch wakes exactly
 * its callers, not every waiter. md_write_async callers do not wait at all: the commit thread
 * calls their op's fin instead of posting (md_object_put_async: the gateway's inline PUTs, which
 * so need no worker thread blocked per write, docs/performance.md).
 */
#include <errno.h>
#include <string.h>

#include "md_int.h"

cm_err md_gc_init(md_gc *gc)
{
    memset(gc, 0, sizeof(*gc));
    gc->max = MD_BATCH_MAX;
    if (pthread_mutex_init(&gc->mu, NULL) != 0)
        return CM_ERR_NOMEM;
    if (pthread_cond_init(&gc->queued_cv, NULL) != 0) {
        pthread_mutex_destroy(&gc->mu);
        return CM_ERR_NOMEM;
    }
    if (pthread_cond_init(&gc->work_cv, NULL) != 0) {
        pthread_cond_destroy(&gc->queued_cv);
        pthread_mutex_destroy(&gc->mu);
        return CM_ERR_NOMEM;
    }
    return CM_OK;
}

void md_gc_release(md_gc *gc)
{
    pthread_mutex_lock(&gc->mu);
    int started = gc->started;
    gc->stop = 1;
    pthread_cond_signal(&gc->work_cv);
    pthread_mutex_unlock(&gc->mu);
    if (started)
        pthread_join(gc->thread, NULL);
    pthread_cond_destroy(&gc->work_cv);
    pthread_cond_destroy(&gc->queued_cv);
    pthread_mutex_destroy(&gc->mu);
}

/* Apply op in a transaction nested in parent; its changes join the batch only on success. */
static void apply_nested(md_store *md, MDB_txn *parent, md_op *op)
{
    MDB_txn *child;
    int rc = mdb_txn_begin(md->env, parent, 0, &child);
    if (rc) {
        op->err = md_mdb_err(rc, "mdb_txn_begin (nested)");
        return;
    }
    size_t mark = md_wlog_mark(md);
    op->wrote = 1;
    op->err = op->apply(md, child, op->arg, &op->wrote);
    if (op->err != CM_OK || !op->wrote) {
        op->wrote = 0;
        mdb_txn_abort(child);
        md_wlog_truncate(md, mark); /* its writes are gone: the copies must not replay them */
        return;
    }
    rc = mdb_txn_commit(child);
    if (rc) {
        op->wrote = 0;
        op->err = md_mdb_err(rc, "mdb_txn_commit (nested)");
        md_wlog_truncate(md, mark);
    }
}

/* Apply op straight in the batch's txn (the flat run, and a lone op). */
static void apply_flat(md_store *md, MDB_txn *txn, md_op *op)
{
    op->wrote = 1;
    op->err = op->apply(md, txn, op->arg, &op->wrote);
    if (op->err != CM_OK)
        op->wrote = 0;
}

/*
 * After a failed commit: did it possibly reach the disk? LMDB writes the meta page last; only a
 * failure of that write leaves the environment fatal (MDB_PANIC), and only then may the new meta
 * page (the commit) be on disk. Any earlier failure aborted before it: definitely not committed.
 */
cm_err md_commit_outcome(md_store *md, cm_err e)
{
    MDB_txn *probe;
    int rc = mdb_txn_begin(md->env, NULL, MDB_RDONLY, &probe);
    if (rc == 0) {
        mdb_txn_abort(probe);
        return e;
    }
    if (rc != MDB_PANIC)
        return e;
    CM_ERROR(MD_MOD, "commit failed writing the meta page: it may or may not be durable");
    return CM_ERR_UNCERTAIN;
}

/* Commit txn (on every copy of the store), or abort it and fail with the injected LMDB code
 * (tests: then no copy commits). */
static cm_err batch_commit(md_store *md, MDB_txn *txn, int inject_rc)
{
    if (inject_rc) {
        mdb_txn_abort(txn);
        return md_mdb_err(inject_rc, "mdb_txn_commit (injected)");
    }
    if (md->nmir > 1)
        return md_mirror_commit(md, txn);
    cm_err e = md_txn_commit(txn);
    return e == CM_OK ? e : md_commit_outcome(md, e);
}

static void settle(md_store *md, int txn_open);

static int any_map_full(const md_op *batch)
{
    for (const md_op *op = batch; op; op = op->next)
        if (op->err == CM_ERR_NOSPC)
            return 1;
    return 0;
}

/*
 * Run the batch (a list linked by next): one write transaction, one commit. Sets every op's err;
 * returns the commit error (CM_OK also when nothing needed committing). With grow set, *full is
 * set and nothing committed when an op or the commit found the map full: the caller grows it and
 * runs the batch again (apply functions start from their input each time, so a rerun is a first
 * run). Without it, an op that does not fit fails alone, as any other op's failure. Each op runs
 * straight in the transaction when flat is set; then, in a batch of more than one, the first
 * failing op aborts the transaction and *nested is set: nothing was committed, and the caller
 * runs the batch again with flat clear.
 */
static cm_err run_batch_once(md_store *md, md_op *batch, size_t n, int inject_rc, int grow,
                             int flat, int *full, int *nested)
{
    MDB_txn *txn;
    size_t nwrote = 0;
    *full = *nested = 0;
    md_wlog_reset(md);
    cm_err e = md_txn_begin(md, 0, &txn);
    if (e != CM_OK) {
        for (md_op *op = batch; op; op = op->next)
            op->err = e;
        return e;
    }
    for (md_op *op = batch; op; op = op->next) {
        if (flat || n == 1)
            apply_flat(md, txn, op);
        else
            apply_nested(md, txn, op);
        if (flat && n > 1 && op->err != CM_OK) {
            mdb_txn_abort(txn);
            *nested = 1;
            return op->err;
        }
        nwrote += op->wrote != 0;
    }
    if (grow && !inject_rc && any_map_full(batch)) {
        mdb_txn_abort(txn);
        *full = 1;
        return CM_ERR_NOSPC;
    }
    if (nwrote == 0) {
        mdb_txn_abort(txn);
        return CM_OK;
    }
    settle(md, 1); /* the last batch's flush, overlapped with this apply, ends before this commit */
    e = batch_commit(md, txn, inject_rc);
    *full = grow && e == CM_ERR_NOSPC && !inject_rc;
    if (e != CM_OK) {
        for (md_op *op = batch; op; op = op->next)
            op->err = e, op->wrote = 0;
    }
    return e;
}

/*
 * Run the batch: flat, then nested if an op failed in the flat run, growing the LMDB map and
 * rerunning while it does not fit. *was_nested tells whether the nested run was needed.
 */
static cm_err run_batch(md_store *md, md_op *batch, size_t n, int inject_rc, int *was_nested)
{
    int full, nested, flat = 1;
    cm_err e = run_batch_once(md, batch, n, inject_rc, 1, flat, &full, &nested);
    *was_nested = nested;
    if (nested) /* the failed flat run committed nothing: the injected failure still applies */
        e = run_batch_once(md, batch, n, inject_rc, 1, flat = 0, &full, &nested);
    while (full) { /* once the map cannot grow, the batch runs as it would have without growth */
        settle(md, 0); /* no flush runs while the map changes */
        e = run_batch_once(md, batch, n, 0, md_map_grow(md) == CM_OK, flat, &full, &nested);
    }
    return e;
}

/* Account a finished batch (mu held). */
static void batch_account(md_gc *gc, md_op *batch, size_t n, cm_err commit_err)
{
    int committed = 0;
    gc->st.batches++;
    gc->st.ops += n;
    if (n > gc->st.max_batch)
        gc->st.max_batch = n;
    if (commit_err != CM_OK)
        gc->st.commit_errors++;
    for (md_op *op = batch; op; op = op->next) {
        committed |= op->wrote;
        gc->st.ops_committed += op->wrote != 0;
        gc->st.ops_failed += op->err != CM_OK && commit_err == CM_OK;
    }
    gc->st.commits += committed;
}

/* Wake the callers of batch (a list linked by next): its ops' results are final. */
static void answer(md_op *batch)
{
    md_op *next;
    for (md_op *op = batch; op; op = next) {
        next = op->next; /* op vanishes once its caller wakes: read first */
        if (op->fin)
            op->fin(op);
        else
            sem_post(&op->done);
    }
}

/* Answer batch after a flush that failed on every copy: what it wrote may or may not be durable. */
static void answer_unflushed(md_op *batch)
{
    CM_ERROR(MD_MOD,
             "no metadata copy could flush a committed batch: it may or may not be durable");
    for (md_op *op = batch; op; op = op->next)
        if (op->err == CM_OK && op->wrote)
            op->err = CM_ERR_UNCERTAIN;
    answer(batch);
}

/*
 * Copies: wait for the flush of the pending batch's meta page (md_mirror_flush_start) and answer
 * it: CM_OK once some copy flushed it (the copies whose flush failed are marked failed first,
 * here when the leader holds no transaction (txn_open clear), else by the commit that follows,
 * md_mirror_commit, before any later batch is answered), CM_ERR_UNCERTAIN for its writes when no
 * copy could. Counted in st.syncs. No-op without a pending batch.
 */
static void settle(md_store *md, int txn_open)
{
    md_op *pend = md->pend;
    if (!pend)
        return;
    md->pend = NULL;
    cm_err e = md_mirror_flush_wait(md);
    if (!txn_open)
        md_mirror_flush_marks(md);
    pthread_mutex_lock(&md->gc.mu);
    md->gc.st.syncs++;
    pthread_mutex_unlock(&md->gc.mu);
    if (e == CM_OK)
        answer(pend);
    else
        answer_unflushed(pend);
}

/*
 * Copies: after the batch just run. When it committed (md->synced), its meta page is flushed on
 * every copy at once, each on its thread, and it becomes the pending batch: when more ops wait,
 * the leader applies them meanwhile and answers it before their commit (settle, the flush and the
 * next commit must not overlap on a file), else it waits for the flush now. A batch that committed
 * nothing is answered at once, after the pending one (answers keep the commit order).
 */
static void pipeline(md_store *md, md_op *batch, int more)
{
    int committed = md->synced;
    md->synced = 0;
    settle(md, 0);
    md_mirror_flush_marks(md); /* flush failures no commit took (the batch did not commit) */
    if (!committed) {
        answer(batch); /* failed or wrote nothing: nothing to flush */
        return;
    }
    md_mirror_flush_start(md);
    md->pend = batch;
    if (!more)
        settle(md, 0);
}

/* Lead one batch: take queued ops, run them without the lock, wake their callers (mu held). */
static void lead(md_store *md)
{
    md_gc *gc = &md->gc;
    md_op *batch = gc->head, *last = NULL;
    size_t n = 0;
    for (md_op *op = gc->head; op && n < gc->max; op = op->next)
        last = op, n++;
    gc->head = last->next;
    if (!gc->head)
        gc->tail = NULL;
    last->next = NULL;
    gc->nqueued -= n;
    int inject_rc = 0;
    if (gc->fail_next > 0)
        gc->fail_next--, inject_rc = gc->fail_rc;
    md_batch_hook hook = gc->hook;
    void *hook_arg = gc->hook_arg;
    pthread_mutex_unlock(&gc->mu);

    if (hook)
        hook(hook_arg, n);
    int nested;
    cm_err e = run_batch(md, batch, n, inject_rc, &nested);

    pthread_mutex_lock(&gc->mu);
    gc->st.batches_nested += nested != 0;
    batch_account(gc, batch, n, e);
    int more = gc->head != NULL;
    pthread_mutex_unlock(&gc->mu);
    if (md->nmir > 1)
        pipeline(md, batch, more);
    else
        answer(batch);
    pthread_mutex_lock(&gc->mu);
}

/* The commit thread: lead batches while ops are queued; sleep when none is. */
static void *commit_thread(void *arg)
{
    md_store *md = arg;
    md_gc *gc = &md->gc;
    pthread_mutex_lock(&gc->mu);
    for (;;) {
        while (!gc->head && !gc->stop)
            pthread_cond_wait(&gc->work_cv, &gc->mu);
        if (!gc->head)
            break;
        gc->leading = 1;
        lead(md);
        gc->leading = 0;
    }
    pthread_mutex_unlock(&gc->mu);
    return NULL;
}

/* Queue op for the commit thread (started here the first time); CM_ERR_NOMEM if it cannot run. */
static cm_err enqueue(md_store *md, md_op *op)
{
    md_gc *gc = &md->gc;
    op->next = NULL;
    pthread_mutex_lock(&gc->mu);
    if (!gc->started) {
        if (gc->stop || pthread_create(&gc->thread, NULL, commit_thread, md) != 0) {
            pthread_mutex_unlock(&gc->mu);
            return CM_ERR_NOMEM;
        }
        gc->started = 1;
    }
    if (gc->tail)
        gc->tail->next = op;
    else
        gc->head = op;
    gc->tail = op;
    gc->nqueued++;
    if (gc->qwaiters)
        pthread_cond_broadcast(&gc->queued_cv);
    if (!gc->leading)
        pthread_cond_signal(&gc->work_cv);
    pthread_mutex_unlock(&gc->mu);
    return CM_OK;
}

cm_err md_write(md_store *md, md_apply_fn apply, void *arg)
{
    md_op op = {.apply = apply, .arg = arg};
    if (sem_init(&op.done, 0, 0) != 0)
        return CM_ERR_NOMEM;
    cm_err e = enqueue(md, &op);
    if (e == CM_OK) {
        while (sem_wait(&op.done) != 0 && errno == EINTR)
            ;
        e = op.err;
    }
    sem_destroy(&op.done);
    return e;
}

cm_err md_write_async(md_store *md, md_op *op)
{
    return enqueue(md, op);
}

static cm_err barrier_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    (void)md, (void)txn, (void)arg;
    *wrote = 0; /* its place in the write order is the point */
    return CM_OK;
}

cm_err md_barrier(md_store *md)
{
    return md_write(md, barrier_apply, NULL);
}

void md_stats_get(md_store *md, md_stats *out)
{
    pthread_mutex_lock(&md->gc.mu);
    *out = md->gc.st;
    out->copies = md->nmir;
    out->copies_healthy = 0;
    for (int i = 0; i < md->nmir; i++) {
        out->copy_failed[i] = md->mir[i].failed;
        out->copies_healthy += !md->mir[i].failed;
    }
    out->copy_failures = md->copy_failures;
    out->seq = __atomic_load_n(&md->seq, __ATOMIC_RELAXED); /* the leader's */
    pthread_mutex_unlock(&md->gc.mu);
}

/* ---- Test hooks ---- */

void md_gc_set_max(md_store *md, size_t max)
{
    pthread_mutex_lock(&md->gc.mu);
    md->gc.max = max == 0 ? 1 : max > MD_BATCH_MAX ? MD_BATCH_MAX : max;
    pthread_mutex_unlock(&md->gc.mu);
}

void md_gc_set_hook(md_store *md, md_batch_hook hook, void *arg)
{
    pthread_mutex_lock(&md->gc.mu);
    md->gc.hook = hook;
    md->gc.hook_arg = arg;
    pthread_mutex_unlock(&md->gc.mu);
}

void md_gc_fail_commits(md_store *md, int n, int rc)
{
    pthread_mutex_lock(&md->gc.mu);
    md->gc.fail_next = n;
    md->gc.fail_rc = rc;
    pthread_mutex_unlock(&md->gc.mu);
}

void md_gc_wait_queued(md_store *md, size_t n)
{
    md_gc *gc = &md->gc;
    pthread_mutex_lock(&gc->mu);
    gc->qwaiters++;
    while (gc->nqueued < n)
        pthread_cond_wait(&gc->queued_cv, &gc->mu);
    gc->qwaiters--;
    pthread_mutex_unlock(&gc->mu);
}
