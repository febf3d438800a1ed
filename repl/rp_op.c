/*
 * rp_op.c - fan-outs: one replica call sent to a partition's replicas, waited for by a worker.
 *
 * A worker thread builds an op (rp_op_new), posts it to the loop (rp_op_start: event_base_once,
 * which is thread-safe once evthread_use_pthreads ran before the base was made) and blocks in
 * rp_op_wait. On the loop, op_start routes the partition (cfg.route over the router the op holds
 * a use of), and sends the call to every home replica. Each completion stores its copy of the
 * answer in its slot and marks it done under the coordinator's mutex; the op finishes once `need`
 * calls succeeded or every call ended, which wakes the waiter. A sloppy put (RP_AVAILABLE) sends a
 * failed home's record to the next stand-in of the preference list with hint_for set (and a
 * failed stand-in's to the next one, for the same home), and also does so for homes still silent
 * when the hedge timer fires (cfg.hedge_ms after the start).
 *
 * The handoff (docs/replication.md, "Layout changes"): a strict op of a partition whose homes a
 * layout change moved also gets the previous layout's homes (cfg.route_prev; slots marked
 * RP_SET_OLD) and needs need_old successes among them besides need among the current ones
 * (rp_op_quorum_locked); an op of a settled partition routes exactly as without it.
 *
 * An asynchronous op (rp_op_go) has no blocked waiter: whoever finishes it on the loop (a
 * completion, the start, the hedge, or its deadline timer at cfg.timeout_ms) runs its on_finish
 * once, after releasing the mutex. A lazy op (a get's read, a put's read) sends to `need` homes,
 * this node's first, and to the next one when a call fails, to all the rest at RP_LAZY_HEDGE_MS.
 *
 * The stale retry (stale_wait below): an op that a replica refused as older than its layout
 * (CM_ERR_STALE) and that ended without its quorum waits on the loop for the coordinator's next
 * router and runs once more on it, within cfg.timeout_ms of its start.
 *
 * Read repair: a get op asked to repair waits (detached from its worker, which has answered long
 * before) for the answer of every replica it asked, then writes the winner to each replica that
 * answered with a loser or nothing, and then also to the homes a lazy op did not ask, as a
 * detached put op (rp_op_repair), at most RP_REPAIR_MAX in flight.
 *
 * Lifetime (see rp_int.h): references under c->mu; the last one frees the op. Router uses: an op
 * holds a use of the router generation it routed with, so rp_set_router returns only when no op
 * (nor a repair it started) can still reach a replica of the old router.
 */
#include <event2/event.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_log.h"
#include "rp_int.h"

int64_t rp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rp_same_version(const md_object *a, const md_object *b)
{
    return a->hlc == b->hlc && a->hlc_node == b->hlc_node && a->tombstone == b->tombstone &&
           md_vv_compare(&a->vv, &b->vv) == MD_VV_EQUAL;
}

static void router_use(rp *c, unsigned gen)
{
    if (gen == c->rt_gen)
        c->rt_users++;
    else
        c->old_users++;
}

static void router_unuse(rp *c, unsigned gen)
{
    if (gen == c->rt_gen) {
        c->rt_users--;
    } else if (--c->old_users == 0) {
        pthread_cond_broadcast(&c->idle);
    }
}

/* op counts as alive, under the router generation of parent (NULL: the current one; the parent
 * holds a use of its generation until we hold ours). c->mu held. */
static void op_live_locked(rp *c, rp_op *op, const rp_op *parent)
{
    op->rt_gen = parent ? parent->rt_gen : c->rt_gen;
    router_use(c, op->rt_gen);
    c->ops++;
}

/* An op alive under the router generation of parent (NULL: the current one), with one reference:
 * a spare (zeroed but for its condition variable) or a new one. */
static rp_op *op_alloc(rp *c, rp_kind kind, const char *bucket, uint32_t shard, const rp_op *parent)
{
    size_t bl = strlen(bucket);
    if (bl > MD_BUCKET_MAX)
        return NULL;
    pthread_mutex_lock(&c->mu);
    rp_op *op = c->spare;
    if (op) {
        c->spare = op->next_spare;
        c->nspare--;
        op_live_locked(c, op, parent);
    }
    pthread_mutex_unlock(&c->mu);
    if (op) {
        unsigned gen = op->rt_gen;
        memset(op, 0, offsetof(rp_op, cv));
        op->rt_gen = gen;
    } else {
        if (!(op = calloc(1, sizeof(*op))))
            return NULL;
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&op->cv, &ca);
        pthread_condattr_destroy(&ca);
        pthread_mutex_lock(&c->mu);
        op_live_locked(c, op, parent);
        pthread_mutex_unlock(&c->mu);
    }
    op->c = c;
    op->kind = kind;
    memcpy(op->bucket, bucket, bl + 1);
    op->part = (rp_part){op->bucket, shard, c->cfg.nshards, 0};
    op->refs = 1;
    op->need = 1;
    return op;
}

rp_op *rp_op_new(rp *c, rp_kind kind, const char *bucket, uint32_t shard)
{
    return op_alloc(c, kind, bucket, shard, NULL);
}

static void slot_release(rp_slot *s)
{
    md_object_release(&s->rec);
    for (size_t i = 0; i < s->nrecs; i++)
        md_object_release(&s->recs[i]);
    free(s->recs);
    free(s->hashes);
    md_rec_infos_free(s->infos, s->ninfos);
    free(s->dropped);
}

/* Free an op whose last reference is gone (c->mu not held): release what it owns, then keep it
 * as a spare or free it; only then is it no longer alive (c->ops), so rp_free cannot free c
 * under us. */
static void op_free(rp_op *op)
{
    rp *c = op->c;
    for (int i = 0; i < op->nslots; i++)
        slot_release(&op->slot[i]);
    md_object_release(&op->rec);
    free(op->key);
    free(op->prefix);
    free(op->after);
    free(op->leaves);
    md_rec_infos_free(op->drop, op->ndrop);
    if (op->lazy_ev)
        event_free(op->lazy_ev); /* not pending: a pending one holds a reference */
    pthread_mutex_lock(&c->mu);
    int keep = (int)c->nspare < RP_SPARE_OPS && !c->closing; /* int: 0 is a bound too */
    if (keep) {
        op->next_spare = c->spare;
        c->spare = op;
        c->nspare++;
    }
    if (--c->ops == 0)
        pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->mu);
    if (!keep) {
        pthread_cond_destroy(&op->cv);
        free(op);
    }
}

/* Drop a reference with c->mu held; 1 when the caller must op_free after unlocking. */
static int op_unref_locked(rp_op *op)
{
    rp *c = op->c;
    if (--op->refs > 0)
        return 0;
    router_unuse(c, op->rt_gen);
    if (op->kind == RP_K_PUT && op->detached)
        c->repairs_inflight--;
    return 1; /* still alive (c->ops) until op_free let it go */
}

void rp_op_put(rp_op *op)
{
    if (!op)
        return;
    pthread_mutex_lock(&op->c->mu);
    int last = op_unref_locked(op);
    pthread_mutex_unlock(&op->c->mu);
    if (last)
        op_free(op);
}

static int slot_ok(const rp_op *op, const rp_slot *s)
{
    if (s->err == CM_OK)
        return 1;
    /* An absent key or bucket is an answer for every read; a write must be stored. */
    return s->err == CM_ERR_NOTFOUND && op->kind != RP_K_PUT;
}

int rp_op_quorum_locked(const rp_op *op)
{
    if (!op->handoff)
        return op->nok >= op->need;
    int fresh = 0, old = 0; /* successes among the current homes, among the previous ones */
    for (int i = 0; i < op->nslots; i++) {
        const rp_slot *s = &op->slot[i];
        if (s->state != RP_SLOT_DONE || !slot_ok(op, s))
            continue;
        fresh += (s->set & RP_SET_NEW) != 0;
        old += (s->set & RP_SET_OLD) != 0;
    }
    return fresh >= op->need && old >= op->need_old;
}

/* A replica refused the op's router as older than its own layout (c->mu held). */
static int refused_stale_locked(const rp_op *op)
{
    for (int i = 0; i < op->nslots; i++)
        if (op->slot[i].state == RP_SLOT_DONE && op->slot[i].err == CM_ERR_STALE)
            return 1;
    return 0;
}

/* OP_FINISHED when this call finished the op: the caller then runs op_notify once c->mu is
 * released; OP_STALE when the op instead waits for a newer router: the caller runs stale_wait. */
enum { OP_RUNNING = 0, OP_FINISHED, OP_STALE };
static int check_finished_locked(rp_op *op)
{
    if (op->finished || op->stale)
        return OP_RUNNING;
    int all = op->routed;
    for (int i = 0; i < op->nslots && all; i++)
        all = op->slot[i].state == RP_SLOT_DONE;
    if (!rp_op_quorum_locked(op) && !all)
        return OP_RUNNING;
    /* a lenient read with an answer has what it needs; a waiter that gave up reads the slots */
    int answered = op->lenient && op->nok >= 1;
    if (!rp_op_quorum_locked(op) && !answered && !op->fixed && !op->restarted && !op->given_up &&
        !op->c->closing && refused_stale_locked(op)) {
        op->stale = 1;
        return OP_STALE;
    }
    op->finished = 1;
    pthread_cond_broadcast(&op->cv);
    return OP_FINISHED;
}

/*
 * Stop a lazy op's hedge timer (loop thread, c->mu not held; the caller holds a reference). Once
 * the op finished, the hedge would ask no one (lazy_send sends only while it runs): stopped now,
 * the op is freed when its last call ends instead of living on for RP_LAZY_HEDGE_MS, which at
 * ~17,000 GETs/s was ~850 ops (~10 MB) alive at once, each freed long after its cache lines left.
 */
static void lazy_stop(rp_op *op)
{
    if (!op->lazy_ev)
        return;
    int pending = event_pending(op->lazy_ev, EV_TIMEOUT, NULL);
    event_free(op->lazy_ev);
    op->lazy_ev = NULL;
    if (pending)
        rp_op_put(op); /* the timer's reference; never the last: the caller holds one */
}

/* The op just finished (loop thread, c->mu not held): stop its hedge, hand it to its
 * asynchronous waiter. */
static void op_notify(rp_op *op)
{
    lazy_stop(op);
    if (!op->on_finish)
        return;
    if (op->deadline) {
        event_free(op->deadline);
        op->deadline = NULL;
    }
    op->on_finish(op);
}

/* An asynchronous op's deadline: it ends with what it has, as a blocked waiter gives up. */
static void deadline_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rp_op *op = arg;
    pthread_mutex_lock(&op->c->mu);
    int fin = !op->finished;
    op->finished = 1;
    pthread_mutex_unlock(&op->c->mu);
    if (fin)
        op_notify(op);
}

static void op_done(void *arg, const rp_result *res);
static void stale_wait(rp_op *op);

/* What check_finished_locked answered, run once c->mu is released. */
static void op_after_check(rp_op *op, int fin)
{
    if (fin == OP_FINISHED)
        op_notify(op);
    else if (fin == OP_STALE)
        stale_wait(op);
}

static cm_err dispatch(rp_op *op, rp_slot *s)
{
    switch (op->kind) {
    case RP_K_GET:
        return rp_replica_get(s->r, &op->part, op->key, op_done, s);
    case RP_K_PUT:
        return rp_replica_put(s->r, &op->part, &op->rec, s->hint_for, op_done, s);
    case RP_K_LIST:
        return rp_replica_list(s->r, &op->part, op->prefix, op->after, op->max, op_done, s);
    case RP_K_MERKLE:
        return rp_replica_merkle(s->r, &op->part, op->depth, op_done, s);
    case RP_K_LEAVES:
        return rp_replica_leaf_keys(s->r, &op->part, op->depth, op->leaves, op->nleaves, op_done,
                                    s);
    case RP_K_TOMBS:
        return rp_replica_tombs(s->r, &op->part, op->before, op->after, op->max, op_done, s);
    case RP_K_TDROP:
        return rp_replica_tomb_drop(s->r, &op->part, op->before, op->drop, op->ndrop, op_done, s);
    }
    return CM_ERR_INTERNAL;
}

static void launch_standin(rp_op *op, int home);
static void lazy_send(rp_op *op, int all);

/* Send slot i's call (loop thread, c->mu not held; the caller holds a reference). */
static void op_send(rp_op *op, int i)
{
    rp *c = op->c;
    rp_slot *s = &op->slot[i];
    pthread_mutex_lock(&c->mu);
    s->state = RP_SLOT_SENT;
    op->refs++;
    pthread_mutex_unlock(&c->mu);
    cm_err e = dispatch(op, s);
    if (e == CM_OK)
        return;
    pthread_mutex_lock(&c->mu);
    s->err = e;
    s->state = RP_SLOT_DONE;
    op->nended++;
    op_unref_locked(op); /* never the last: the caller holds one */
    int home = s->standin >= 0 ? s->standin : i;
    int standin = op->sloppy && !s->replaced;
    if (standin)
        s->replaced = 1;
    pthread_mutex_unlock(&c->mu);
    if (standin)
        launch_standin(op, home);
    lazy_send(op, 0); /* a refused home is replaced by one not asked yet */
}

/* A lazy op: ask the next home not asked yet (all of them when all is set), unless the op
 * finished. Loop thread, c->mu not held. */
static void lazy_send(rp_op *op, int all)
{
    rp *c = op->c;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int i = op->lazy && !op->finished && op->next_lazy < op->nslots ? op->next_lazy++ : -1;
        pthread_mutex_unlock(&c->mu);
        if (i < 0)
            return;
        op_send(op, i);
        if (!all)
            return;
    }
}

static void lazy_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rp_op *op = arg;
    event_free(op->lazy_ev);
    op->lazy_ev = NULL;
    lazy_send(op, 1);
    rp_op_put(op); /* the timer's reference */
}

static void launch_standin(rp_op *op, int home)
{
    rp *c = op->c;
    pthread_mutex_lock(&c->mu);
    if (op->next_fallback >= op->nfallback || op->nslots >= RP_SLOTS) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    int j = op->nslots++;
    rp_slot *s = &op->slot[j];
    memset(s, 0, sizeof(*s));
    s->op = op;
    s->r = op->fallback[op->next_fallback++];
    s->hint_for = op->slot[home].r->node_id;
    s->standin = home;
    pthread_mutex_unlock(&c->mu);
    op_send(op, j);
}

/* Copy what a replica answered into its slot (before the slot is marked done). */
static void copy_result(rp_op *op, rp_slot *s, const rp_result *res)
{
    s->err = res->err;
    s->no_bucket = res->no_bucket;
    s->applied = res->applied;
    s->truncated = res->truncated;
    if (res->err != CM_OK)
        return;
    if (op->kind == RP_K_GET && res->take) {
        s->rec = *res->take; /* moved: the backend releases what is left, nothing */
        memset(res->take, 0, sizeof(*res->take));
        s->has_rec = 1;
    } else if (op->kind == RP_K_GET && res->rec) {
        if (md_object_copy(res->rec, &s->rec) == CM_OK)
            s->has_rec = 1;
        else
            s->err = CM_ERR_NOMEM;
    } else if (op->kind == RP_K_LIST && res->nrecs) {
        s->recs = calloc(res->nrecs, sizeof(*s->recs));
        for (size_t i = 0; s->recs && i < res->nrecs; i++, s->nrecs++)
            if (md_object_copy(&res->recs[i], &s->recs[i]) != CM_OK)
                break;
        if (s->nrecs < res->nrecs)
            s->err = CM_ERR_NOMEM;
    } else if (op->kind == RP_K_MERKLE && res->nleaves) {
        s->hashes = malloc(res->nleaves * 16);
        if (s->hashes) {
            memcpy(s->hashes, res->hashes, res->nleaves * 16);
            s->nleaves = res->nleaves;
        } else {
            s->err = CM_ERR_NOMEM;
        }
    } else if ((op->kind == RP_K_LEAVES || op->kind == RP_K_TOMBS) && res->ninfos) {
        if (md_rec_infos_copy(res->infos, res->ninfos, &s->infos) == CM_OK)
            s->ninfos = res->ninfos;
        else
            s->err = CM_ERR_NOMEM;
    } else if (op->kind == RP_K_TDROP) {
        if (res->ndropped != op->ndrop)
            s->err = CM_ERR_CORRUPT; /* one flag per tombstone sent */
        else if ((s->dropped = malloc(op->ndrop + 1)) != NULL)
            memcpy(s->dropped, res->dropped, op->ndrop), s->ndropped = op->ndrop;
        else
            s->err = CM_ERR_NOMEM;
    }
}

/* Read repair, once every replica a repairing get asked answered (c->mu held): the winner and
 * the replicas that lack it go to *rec / reps. A lazy get's homes not asked are written only when
 * the answers disagreed: then the one not asked may be stale too (a replica that holds the winner
 * merges it without a sync); when they agreed, anti-entropy covers it. */
static size_t repair_targets_locked(rp_op *op, md_object **win, rp_replica **reps)
{
    const md_object *w = NULL;
    for (int i = 0; i < op->nslots; i++) {
        rp_slot *s = &op->slot[i];
        if (s->has_rec && (!w || md_object_resolve(w, &s->rec, NULL) == 1))
            w = &s->rec;
    }
    size_t n = 0;
    for (int i = 0; w && i < op->nslots; i++) {
        rp_slot *s = &op->slot[i];
        if (s->state == RP_SLOT_IDLE || !slot_ok(op, s))
            continue; /* unreachable now: anti-entropy or a hint brings it up to date */
        if (!s->has_rec || !rp_same_version(&s->rec, w))
            reps[n++] = s->r;
    }
    for (int i = 0; n && i < op->nslots; i++)
        if (op->slot[i].state == RP_SLOT_IDLE)
            reps[n++] = op->slot[i].r;
    *win = (md_object *)w;
    return n;
}

static void op_done(void *arg, const rp_result *res)
{
    rp_slot *s = arg;
    rp_op *op = s->op;
    rp *c = op->c;
    copy_result(op, s, res);
    pthread_mutex_lock(&c->mu);
    s->state = RP_SLOT_DONE;
    op->nended++;
    int ok = slot_ok(op, s);
    if (ok)
        op->nok++;
    if (ok && s->standin >= 0 && op->kind == RP_K_PUT)
        c->st.hints_written++;
    /* A failed home, or a failed stand-in, is replaced by the next stand-in (for that home). */
    int home = s->standin >= 0 ? s->standin : (int)(s - op->slot);
    int standin = !ok && op->sloppy && !s->replaced;
    if (standin)
        s->replaced = 1;
    pthread_mutex_unlock(&c->mu);
    if (standin)
        launch_standin(op, home);
    if (!ok)
        lazy_send(op, 0); /* a failed home is replaced by one not asked yet */

    pthread_mutex_lock(&c->mu);
    int fin = check_finished_locked(op);
    md_object win;
    rp_replica *reps[RP_SLOTS];
    size_t nrep = 0;
    /* every home asked answered (a lazy get asks the rest only on a failure or at its hedge);
     * not while the op waits to run again on a newer router */
    if (op->repair && !op->stale && op->nended == (op->lazy ? op->next_lazy : op->nslots)) {
        op->repair = 0;
        md_object *w = NULL;
        nrep = repair_targets_locked(op, &w, reps);
        if (nrep && md_object_copy(w, &win) != CM_OK)
            nrep = 0;
    }
    pthread_mutex_unlock(&c->mu);
    op_after_check(op, fin); /* before the call's reference goes: the waiter's keeps the op */
    if (nrep) {
        rp_op_repair(c, op, &win, reps, nrep);
        md_object_release(&win);
    }
    rp_op_put(op); /* the call's reference */
}

static void hedge_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rp_op *op = arg;
    rp *c = op->c;
    int late[RP_SLOTS], n = 0, fin = 0;
    pthread_mutex_lock(&c->mu);
    if (op->lenient && op->nok >= 1 && !op->finished) {
        op->finished = fin = 1; /* an available read answers from what it has by now */
        pthread_cond_broadcast(&op->cv);
    }
    for (int i = 0; op->sloppy && i < op->nslots && !op->finished; i++) {
        rp_slot *s = &op->slot[i];
        if (s->standin < 0 && s->state == RP_SLOT_SENT && !s->replaced) {
            s->replaced = 1;
            late[n++] = i;
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (fin)
        op_notify(op);
    for (int i = 0; i < n; i++)
        launch_standin(op, late[i]);
    rp_op_put(op);
}

/*
 * The handoff (docs/replication.md, "Layout changes"): while the partition's homes in the
 * previous layout differ from the current ones and it has not settled, those of them that are
 * not current homes get slots of their own, and the op needs `want` of the previous homes as
 * well (at most all of them), so a read meets every write acknowledged under either layout.
 * Strict quorums only: a sloppy write or a lenient read promises no such thing. c->mu not held.
 */
static void route_prev(rp_op *op, rp_router *rt, int n, int want)
{
    rp *c = op->c;
    rp_replica *prev[RP_SLOTS];
    if (!c->cfg.route_prev || op->sloppy || op->lenient || op->nslots == 0)
        return;
    int np = c->cfg.route_prev(rt, &op->part, n, prev);
    if (np > n)
        np = n;
    pthread_mutex_lock(&c->mu);
    int taken = 0;
    for (int j = 0; j < np; j++) {
        int i = 0;
        while (i < op->nslots && op->slot[i].r != prev[j])
            i++;
        if (i == op->nslots && op->nslots < RP_SLOTS) /* n <= RP_SLOTS / 2: always room */
            op->slot[op->nslots++] = (rp_slot){.op = op, .r = prev[j], .standin = -1};
        if (i < op->nslots) {
            op->slot[i].set |= RP_SET_OLD;
            taken++;
        }
    }
    if (taken > 0) {
        op->handoff = 1;
        op->need_old = want < taken ? want : taken;
    }
    pthread_mutex_unlock(&c->mu);
}

static void op_route(rp_op *op)
{
    rp *c = op->c;
    rp_replica *out[RP_SLOTS];
    int want = op->need; /* before a small layout shrinks it */
    int n = c->cfg.n, nfb = op->sloppy ? c->cfg.n : 0;
    if (n + nfb > RP_SLOTS)
        nfb = RP_SLOTS - n;
    pthread_mutex_lock(&c->mu);
    rp_router *rt = op->rt_gen == c->rt_gen ? c->router : c->old_router;
    pthread_mutex_unlock(&c->mu);
    int got = c->cfg.route(rt, &op->part, n, nfb, out);
    if (got < 0)
        got = 0;
    int homes = got < n ? got : n;
    for (int i = 0; i < homes; i++) {
        op->slot[i] = (rp_slot){.op = op, .r = out[i], .standin = -1, .set = RP_SET_NEW};
    }
    for (int i = homes; i < got; i++)
        op->fallback[op->nfallback++] = out[i];
    pthread_mutex_lock(&c->mu);
    op->nslots = homes;
    /* A small layout gives fewer homes than n (rp_route): the quorums shrink with them, W and R
     * at most the homes, so W + R > homes still holds and the partition stays usable. */
    if (homes > 0 && homes < n && op->need > homes)
        op->need = homes;
    pthread_mutex_unlock(&c->mu);
    route_prev(op, rt, n, want);
}

static void op_start(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rp_op *op = arg;
    rp *c = op->c;
    if (!op->fixed)
        op_route(op);
    int n = op->nslots;
    if ((op->sloppy || op->lenient) && n > 0) {
        struct timeval tv = {c->cfg.hedge_ms / 1000, (c->cfg.hedge_ms % 1000) * 1000};
        pthread_mutex_lock(&c->mu);
        op->refs++;
        pthread_mutex_unlock(&c->mu);
        if (event_base_once(c->cfg.base, -1, EV_TIMEOUT, hedge_fire, op, &tv) != 0)
            rp_op_put(op);
    }
    int first = n;
    if (op->lazy && op->need < n && !op->handoff) { /* a handoff asks every home at once */
        for (int i = 1; i < n; i++) /* this node's store first: it answers without the network */
            if (op->slot[i].r->local) {
                rp_replica *r = op->slot[0].r;
                op->slot[0].r = op->slot[i].r;
                op->slot[i].r = r;
                break;
            }
        first = op->need;
        struct timeval tv = {RP_LAZY_HEDGE_MS / 1000, (RP_LAZY_HEDGE_MS % 1000) * 1000};
        /* a restarted op's timer may still be pending from its first start: re-armed, it keeps
         * the reference it holds */
        int armed = op->lazy_ev && event_pending(op->lazy_ev, EV_TIMEOUT, NULL);
        if (!op->lazy_ev)
            op->lazy_ev = evtimer_new(c->cfg.base, lazy_fire, op);
        if (!op->lazy_ev || evtimer_add(op->lazy_ev, &tv) != 0) {
            first = n; /* no hedge: ask every home now */
        } else if (!armed) {
            pthread_mutex_lock(&c->mu);
            op->refs++;
            pthread_mutex_unlock(&c->mu);
        }
    } else if (op->lazy) {
        /* every home is asked now (a handoff, or a quorum of all homes): none is left for
         * lazy_send, which a failed call runs (it would send slot next_lazy = 0 again) */
        pthread_mutex_lock(&c->mu);
        op->next_lazy = n;
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_lock(&c->mu);
    op->next_lazy = first; /* the timer runs on this loop: not before this returns */
    pthread_mutex_unlock(&c->mu);
    if (op->on_finish && !op->deadline) { /* a restarted op keeps its first start's deadline */
        /* without a timer (no memory) the op still ends: every call ends within its own limit */
        struct timeval tv = {c->cfg.timeout_ms / 1000, (c->cfg.timeout_ms % 1000) * 1000};
        op->deadline = evtimer_new(c->cfg.base, deadline_fire, op);
        if (op->deadline)
            evtimer_add(op->deadline, &tv);
    }
    for (int i = 0; i < first; i++)
        op_send(op, i);
    pthread_mutex_lock(&c->mu);
    op->routed = 1;
    int fin = check_finished_locked(op);
    pthread_mutex_unlock(&c->mu);
    op_after_check(op, fin);
    rp_op_put(op);
}

/*
 * The stale retry (docs/replication.md, "The fence"): a replica whose fence is above the epoch of
 * the op's router answered CM_ERR_STALE, and the op ended without its quorum. This node's layout
 * follower brings the newer layout (its etcd watch) and swaps the coordinator's router
 * (rp_set_router, which returns once no op holds the old one); the op looks for that swap every
 * RP_STALE_POLL_MS on the loop, never blocking it, moves its router use to the new generation
 * (which lets rp_set_router return), forgets its answers and runs once more (op_start). When no
 * newer router comes within cfg.timeout_ms of the op's start (or the coordinator closes, or a
 * blocked waiter gave up: it reads the slots then, which must stay as they are), it finishes
 * with what it has: no quorum, CM_ERR_UNAVAILABLE to its caller. Only once per op, and
 * never a fixed op (a write-back or a read repair: their replicas were given).
 */
static void stale_finish(rp_op *op)
{
    pthread_mutex_lock(&op->c->mu);
    int fin = !op->finished;
    op->finished = 1;
    op->stale = 0;
    pthread_cond_broadcast(&op->cv);
    pthread_mutex_unlock(&op->c->mu);
    if (fin)
        op_notify(op);
    rp_op_put(op); /* the wait's reference */
}

/* Move a stale op to the current router and clear what it had (c->mu held; no call in flight:
 * every slot ended). */
static void stale_restart_locked(rp_op *op)
{
    rp *c = op->c;
    router_unuse(c, op->rt_gen);
    op->rt_gen = c->rt_gen;
    router_use(c, op->rt_gen);
    for (int i = 0; i < op->nslots; i++)
        slot_release(&op->slot[i]);
    memset(op->slot, 0, sizeof(op->slot));
    op->nslots = op->nfallback = op->next_fallback = 0;
    op->nok = op->nended = op->routed = op->next_lazy = 0;
    op->handoff = op->need_old = 0;
    op->need = op->need_asked;
    op->stale = 0;
    op->restarted = 1;
}

static void stale_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rp_op *op = arg;
    rp *c = op->c;
    pthread_mutex_lock(&c->mu);
    int over =
        op->finished || op->given_up || c->closing || rp_now_ms() - op->t0 >= c->cfg.timeout_ms;
    int newer = !over && op->rt_gen != c->rt_gen;
    if (newer) {
        stale_restart_locked(op);
        c->st.stale_retries++;
    }
    pthread_mutex_unlock(&c->mu);
    if (newer) {
        CM_DEBUG("rp", "an op refused as stale runs again on the newer layout");
        op_start(-1, 0, op); /* takes the wait's reference */
        return;
    }
    struct timeval tv = {0, RP_STALE_POLL_MS * 1000};
    if (over || event_base_once(c->cfg.base, -1, EV_TIMEOUT, stale_poll, op, &tv) != 0)
        stale_finish(op);
}

static void stale_wait(rp_op *op)
{
    rp *c = op->c;
    struct timeval now = {0, 0};
    pthread_mutex_lock(&c->mu);
    op->refs++;
    pthread_mutex_unlock(&c->mu);
    if (event_base_once(c->cfg.base, -1, EV_TIMEOUT, stale_poll, op, &now) != 0)
        stale_finish(op);
}

cm_err rp_op_start(rp_op *op)
{
    rp *c = op->c;
    struct timeval now = {0, 0};
    pthread_mutex_lock(&c->mu);
    op->refs++;
    op->t0 = rp_now_ms();
    op->need_asked = op->need;
    pthread_mutex_unlock(&c->mu);
    if (event_base_once(c->cfg.base, -1, EV_TIMEOUT, op_start, op, &now) != 0) {
        CM_LOG(CM_LOG_ERROR, "rp", "event_base_once failed");
        rp_op_put(op);
        rp_op_put(op);
        return CM_ERR_INTERNAL;
    }
    return CM_OK;
}

cm_err rp_op_run(rp_op *op)
{
    int64_t deadline = rp_now_ms() + op->c->cfg.timeout_ms;
    cm_err e = rp_op_start(op);
    if (e == CM_OK)
        rp_op_wait(op, deadline);
    return e;
}

cm_err rp_op_go(rp_op *op, void (*on_finish)(rp_op *op), void *arg)
{
    op->on_finish = on_finish;
    op->fin_arg = arg;
    return rp_op_start(op);
}

int rp_op_wait(rp_op *op, int64_t deadline_ms)
{
    rp *c = op->c;
    pthread_mutex_lock(&c->mu);
    while (!op->finished) {
        int64_t left = deadline_ms - rp_now_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&op->cv, &c->mu, &ts);
    }
    int fin = op->finished;
    op->given_up = !fin; /* its caller reads the slots now: a stale op must not run again */
    pthread_mutex_unlock(&c->mu);
    return fin;
}

rp_op *rp_op_new_fixed(rp *c, const rp_op *parent, rp_kind kind, rp_replica *const *reps, size_t n)
{
    if (n == 0 || n > RP_SLOTS)
        return NULL;
    rp_op *op = op_alloc(c, kind, parent->bucket, parent->part.shard, parent);
    if (!op)
        return NULL;
    op->fixed = 1;
    op->need = (int)n;
    op->nslots = (int)n;
    for (size_t i = 0; i < n; i++)
        op->slot[i] = (rp_slot){.op = op, .r = reps[i], .standin = -1, .set = RP_SET_NEW};
    return op;
}

int rp_op_repair(rp *c, const rp_op *parent, const md_object *rec, rp_replica *const *reps,
                 size_t n)
{
    pthread_mutex_lock(&c->mu);
    /* While rp_free waits, repairs still start: each ends within its calls' time. */
    int full = c->repairs_inflight >= RP_REPAIR_MAX;
    if (full)
        c->st.repairs_dropped++;
    else
        c->repairs_inflight++; /* the op's unref gives it back */
    pthread_mutex_unlock(&c->mu);
    if (full)
        return 0;
    rp_op *op = rp_op_new_fixed(c, parent, RP_K_PUT, reps, n);
    if (op)
        op->detached = 1;
    if (!op || md_object_copy(rec, &op->rec) != CM_OK) {
        if (op) {
            rp_op_put(op);
        } else {
            pthread_mutex_lock(&c->mu);
            c->repairs_inflight--;
            pthread_mutex_unlock(&c->mu);
        }
        return 0;
    }
    pthread_mutex_lock(&c->mu);
    c->st.read_repairs += n;
    pthread_mutex_unlock(&c->mu);
    if (rp_op_start(op) != CM_OK)
        return 0;
    rp_op_put(op); /* detached: the calls hold it */
    return 1;
}
