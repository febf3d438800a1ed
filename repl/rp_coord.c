/*
 * rp_coord.c - the quorum coordinator: object get, put and delete over a partition's replicas.
 *
 * get: ask R of the N homes, this node's first, and another only on a failure or when one is
 * slow (a lazy read, read_op_new); answer once R answered (a missing key is an answer), the
 * winner by md_object_resolve; when the answers disagree the op stays behind to write the winner
 * to replicas seen stale and to the homes not asked (read repair, rp_op.c). A tombstone is an
 * absent object. In a strong bucket a winner that fewer than W of the answers hold is first
 * written back to the other homes (those not asked too), and the get answers once W hold it
 * (write_back): what one read returned, every later read returns or supersedes (linearizable
 * reads; a delete's read and a conditional write's do the same, since they may answer from it
 * alone).
 *
 * put / delete: a quorum read first, then one write. The read gives what the write must
 * supersede: the record's version vector is the pointwise maximum (md_vv_merge) of every version
 * read, incremented for this node at the new HLC (this node's counter raised to that HLC, so its
 * writes order by its clock even when one did not see the other), so the write dominates
 * everything its coordinator saw, which is what a blind S3 PUT means ("replace whatever is there");
 * versions it did not see (written concurrently elsewhere) stay concurrent with it and resolve by
 * last-writer-wins on (hlc, node). The clocks of every version read are merged into this node's
 * HLC first (md_hlc_update), so the new stamp is larger than theirs. A delete writes a tombstone
 * the same way. The write goes to the N homes and succeeds at W durable answers.
 *
 * swap (the write of every swap, the leader's below): no read; the record keeps the stamp it was
 * read with (hlc, hlc_node) and its vector gains one in this node's swap entry (RP_SWAP_NODE),
 * so it dominates the version read and, against any other version, resolves as that version
 * would.
 *
 * Consistency: RP_STRONG reads and writes need R and W answers from the homes (during a handoff
 * after a layout change, R and W of the previous homes as well, and a write-back fills both
 * sets), else CM_ERR_UNAVAILABLE. RP_AVAILABLE reads answer from any one home if R cannot be had
 * in time, and writes replace failed or silent homes by stand-ins that keep a hint (sloppy
 * quorum). A conditional write reads and writes with RP_STRONG's quorums in either mode.
 *
 * Conditional writes go through cfg.cond_run (a partition leader) or rp_cond_execute here: the
 * same read and write, under a per-key lock shared by the node's coordinators (keylocks), so the
 * condition and the write are one compare-and-set among the writers that share the lock. A
 * leader's token (rp_cond_write.fence) goes with the read as well as the write: every replica
 * read admits it first, so no write of a replaced leader lands there between the two. An Object
 * Lock change (md_cond.lock_change) is run there too, but written as a swap of the record read
 * (lock_change below), so a version keeps its stamp and place; so is every other swap of a
 * version's content (tags, ACL, key re-wrap: rp_object_swap_keep_lock, keep_lock below), which
 * keeps the lock fields it reads there, so it never undoes a retention or hold change, and the
 * repair's layout swap (rp_object_swap_layout, heal_layout below), which replaces only the part's
 * layout in the record it reads there, when that part still names the cells healed.
 *
 * Threading: the public calls block worker threads; every wait ends at cfg.timeout_ms. The
 * asynchronous get and put run the same phases (read_op_new/read_end, write_back_op, stamp_record,
 * write_op_new/write_end) chained by op completions on the loop (rp_op_go), whose deadline timers
 * end each round at cfg.timeout_ms as a blocked wait would.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_log.h"
#include "cm_util.h"
#include "rp_int.h"
#include "rp_version.h"

cm_err rp_keylocks_new(rp_keylocks **out)
{
    rp_keylocks *l = calloc(1, sizeof(*l));
    if (!l)
        return CM_ERR_NOMEM;
    for (int i = 0; i < RP_KEYLOCKS; i++)
        pthread_mutex_init(&l->mu[i], NULL);
    *out = l;
    return CM_OK;
}

void rp_keylocks_free(rp_keylocks *l)
{
    if (!l)
        return;
    for (int i = 0; i < RP_KEYLOCKS; i++)
        pthread_mutex_destroy(&l->mu[i]);
    free(l);
}

static pthread_mutex_t *key_lock(rp *c, const char *bucket, const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *s = bucket; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    h = (h ^ 0) * 1099511628211ULL;
    for (const char *s = key; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return &c->locks->mu[h % RP_KEYLOCKS];
}

cm_err rp_new(const rp_config *cfg, rp **out)
{
    if (!cfg->base || !cfg->route || !cfg->clock)
        return CM_ERR_INVAL;
    rp *c = calloc(1, sizeof(*c));
    if (!c)
        return CM_ERR_NOMEM;
    c->cfg = *cfg;
    rp_config *k = &c->cfg;
    if (k->n == 0)
        k->n = 3;
    if (k->w == 0)
        k->w = k->n / 2 + 1;
    if (k->r == 0)
        k->r = k->n / 2 + 1;
    if (k->nshards == 0)
        k->nshards = 8;
    if (k->timeout_ms <= 0)
        k->timeout_ms = 5000;
    if (k->hedge_ms <= 0)
        k->hedge_ms = k->timeout_ms / 4;
    if (k->n < 1 || k->n > RP_SLOTS / 2 || k->w < 1 || k->w > k->n || k->r < 1 || k->r > k->n ||
        k->w + k->r <= k->n || k->nshards > RP_MAX_SHARDS) {
        free(c);
        return CM_ERR_INVAL;
    }
    if (!k->keylocks) {
        cm_err e = rp_keylocks_new(&c->locks);
        if (e != CM_OK) {
            free(c);
            return e;
        }
        c->own_locks = 1;
    } else {
        c->locks = k->keylocks;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->idle, NULL);
    c->router = cfg->router;
    *out = c;
    return CM_OK;
}

void rp_free(rp *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->closing = 1;
    while (c->ops > 0) /* late completions, read repairs: each op ends within its calls' time */
        pthread_cond_wait(&c->idle, &c->mu);
    pthread_mutex_unlock(&c->mu);
    for (rp_op *op = c->spare, *next; op; op = next) {
        next = op->next_spare;
        pthread_cond_destroy(&op->cv);
        free(op);
    }
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->mu);
    if (c->own_locks)
        rp_keylocks_free(c->locks);
    free(c);
}

void rp_set_router(rp *c, rp_router *router)
{
    pthread_mutex_lock(&c->mu);
    while (c->draining)
        pthread_cond_wait(&c->idle, &c->mu);
    c->old_router = c->router;
    c->old_users = c->rt_users;
    c->rt_users = 0;
    c->router = router;
    c->rt_gen++;
    c->draining = 1;
    while (c->old_users > 0)
        pthread_cond_wait(&c->idle, &c->mu);
    c->old_router = NULL;
    c->draining = 0;
    pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->mu);
}

void rp_get_stats(rp *c, rp_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    out->ops_live = c->ops;
    pthread_mutex_unlock(&c->mu);
}

rp_consistency rp_mode(rp *c, const char *bucket)
{
    return c->cfg.consistency ? c->cfg.consistency(c->cfg.consistency_arg, bucket) : RP_STRONG;
}

static void count(rp *c, uint64_t *field)
{
    pthread_mutex_lock(&c->mu);
    (*field)++;
    pthread_mutex_unlock(&c->mu);
}

/* What a quorum read found. */
typedef struct {
    int has;       /* some replica holds a version (live or tombstone) */
    md_object win; /* the winner when has */
    md_vv seen;    /* every version's vector merged */
    int all_homes; /* every home answered */
} rp_read;

/* Resolve the answers of a finished get op (c->mu held): *win is the slot's record that wins
 * (NULL when no replica holds a version), left in its slot; rd->seen and rd->all_homes are set. */
static cm_err read_collect_locked(rp *c, rp_op *op, rp_consistency mode, rp_read *rd, rp_slot **win)
{
    *win = NULL;
    if (!rp_op_quorum_locked(op) && !(mode == RP_AVAILABLE && op->nok >= 1))
        return CM_ERR_UNAVAILABLE;
    for (int i = 0; i < op->nslots; i++) {
        rp_slot *s = &op->slot[i];
        if (s->state != RP_SLOT_DONE || !s->has_rec)
            continue;
        uint64_t ignored;
        (void)md_hlc_update(c->cfg.clock, s->rec.hlc, &ignored); /* a refused drift: skip it */
        md_vv_merge(&rd->seen, &s->rec.vv, &rd->seen);
        if (!*win || md_object_resolve(&(*win)->rec, &s->rec, NULL) == 1)
            *win = s;
    }
    rd->all_homes = op->nok == op->nslots && op->nslots == c->cfg.n;
    return CM_OK;
}

/*
 * rd->win = the winning slot's record (c->mu not held). It is moved out of the slot when nothing
 * reads the slots any more: the op finished (no answer lands in a slot done) and its read repair
 * was decided (op->repair cleared under c->mu; it compares every slot against the winner). While
 * a repair still waits for a late answer (a hedged home), it is copied. The slot keeps its
 * stamps, tombstone flag and vector (what rp_same_version compares), only the owned fields go.
 */
static cm_err take_winner(rp *c, rp_op *op, rp_slot *w, rp_read *rd)
{
    pthread_mutex_lock(&c->mu);
    int move = !op->repair;
    if (move) {
        rd->win = w->rec;
        md_object stamp = {.hlc = w->rec.hlc,
                           .hlc_node = w->rec.hlc_node,
                           .tombstone = w->rec.tombstone,
                           .vv = w->rec.vv};
        w->rec = stamp;
    }
    pthread_mutex_unlock(&c->mu);
    cm_err e = move ? CM_OK : md_object_copy(&w->rec, &rd->win);
    if (e == CM_OK)
        rd->has = 1;
    return e;
}

/* A bucket name and key the replicas can hold. */
static int valid(const char *bucket, const char *key)
{
    size_t bl = strlen(bucket), kl = key ? strlen(key) : 0;
    return bl > 0 && bl <= MD_BUCKET_MAX && kl > 0 && kl <= MD_MAX_KEY;
}

/*
 * A strong read answers only a version that W homes hold (the write-back of ABD): otherwise a
 * write still in flight, or one that reached fewer than W homes, could be read once and then
 * vanish for the next reader, whose quorum misses the one home that holds it (a read seen in
 * the partition test, docs/testing.md "Cluster partitions"). The winner goes to every home not
 * known to hold it; the read succeeds once W hold it, else CM_ERR_UNAVAILABLE (the write-back
 * may have landed: the caller's outcome is unknown, as for a failed write). This makes the
 * write-back op, *wb NULL when W homes hold the winner already; called with the finished read op
 * still held, whose router generation the write-back uses.
 */
static cm_err write_back_op(rp *c, rp_op *op, const md_object *win, rp_op **wb)
{
    rp_replica *targets[RP_SLOTS];
    uint8_t sets[RP_SLOTS];
    size_t n = 0;
    int holders = 0, nnew = 0, holders_old = 0, nold = 0;
    *wb = NULL;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < op->nslots; i++) {
        const rp_slot *s = &op->slot[i];
        int fresh = !op->handoff || (s->set & RP_SET_NEW),
            old = op->handoff && (s->set & RP_SET_OLD);
        nnew += fresh;
        nold += old;
        if (s->state == RP_SLOT_DONE && s->err == CM_OK && s->has_rec &&
            rp_same_version(&s->rec, win)) {
            holders += fresh;
            holders_old += old;
        } else {
            sets[n] = s->set;
            targets[n++] = s->r;
        }
    }
    /* W, or every home of a small layout that has fewer than N (as op_route shrinks quorums);
     * during a handoff, W of the previous homes as well */
    int w = nnew > 0 && nnew < c->cfg.n && nnew < c->cfg.w ? nnew : c->cfg.w;
    int w_old = nold < c->cfg.w ? nold : c->cfg.w;
    pthread_mutex_unlock(&c->mu);
    if (holders >= w && holders_old >= w_old)
        return CM_OK;
    rp_op *o = rp_op_new_fixed(c, op, RP_K_PUT, targets, n);
    if (!o)
        return n ? CM_ERR_NOMEM : CM_ERR_UNAVAILABLE;
    o->need = holders < w ? w - holders : 0;
    if (op->handoff) {
        o->handoff = 1;
        o->need_old = holders_old < w_old ? w_old - holders_old : 0;
        for (size_t i = 0; i < n; i++)
            o->slot[i].set = sets[i];
    }
    cm_err e = md_object_copy(win, &o->rec);
    if (e != CM_OK) {
        rp_op_put(o);
        return e;
    }
    *wb = o;
    return CM_OK;
}

/* A finished op that needed `need` successes (a write; a write-back when back is set): CM_OK
 * when it had them; drops the waiter's reference. */
static cm_err write_end(rp *c, rp_op *op, int back)
{
    cm_err e = CM_OK;
    pthread_mutex_lock(&c->mu);
    int quorum = rp_op_quorum_locked(op);
    if (!quorum && back) {
        e = CM_ERR_UNAVAILABLE;
        c->st.unavailable++;
    } else if (!quorum) {
        int nobucket = 0;
        for (int i = 0; i < op->nslots; i++)
            nobucket += op->slot[i].state == RP_SLOT_DONE && op->slot[i].err == CM_ERR_NOTFOUND;
        /* A bucket no replica knows is the caller's NOTFOUND, as md_object_put answers. */
        e = nobucket > 0 && nobucket == op->nended ? CM_ERR_NOTFOUND : CM_ERR_UNAVAILABLE;
        if (e == CM_ERR_UNAVAILABLE)
            c->st.unavailable++;
    }
    pthread_mutex_unlock(&c->mu);
    rp_op_put(op);
    return e;
}

/*
 * The get op of a quorum read of key; repair: write stale homes afterwards (asynchronous).
 *
 * A get's read and the read before a put are lazy (rp_op.lazy): they ask R homes, this node's
 * own first, and another only when one of them fails or is slower than RP_LAZY_HEDGE_MS. A read
 * op ends at R answers anyway, so what a get answers and what a put supersedes is what R homes
 * hold, as before (R + W > N: one of them holds the last acknowledged write; a strong get's
 * write-back still makes W homes hold its winner, the home not asked among its targets). It
 * saves one replica read per GET and per PUT. What it changes is read repair's coverage: a get
 * whose R answers agree repairs nothing (the home not asked is left to anti-entropy); one whose
 * answers disagree writes the winner to the stale homes and to those not asked (rp_op.c
 * repair_targets_locked). A delete's read (it may answer alone, and in an available bucket only
 * when every home answered) still asks every home at once.
 */
static rp_op *read_op_new(rp *c, const char *bucket, const char *key, int repair,
                          rp_consistency mode)
{
    rp_op *op = rp_op_new(c, RP_K_GET, bucket, rp_shard_of(key, c->cfg.nshards));
    if (!op || !(op->key = strdup(key))) {
        rp_op_put(op);
        return NULL;
    }
    op->need = c->cfg.r;
    op->lenient = mode == RP_AVAILABLE;
    op->repair = repair;
    return op;
}

/* What the finished read op found (rd), and the write-back it needs first when writeback is set
 * in a strong bucket (*wb, NULL when none; rd->win is released when this fails). */
static cm_err read_end(rp *c, rp_op *op, rp_consistency mode, int writeback, rp_read *rd,
                       rp_op **wb)
{
    rp_slot *w;
    *wb = NULL;
    pthread_mutex_lock(&c->mu);
    cm_err e = read_collect_locked(c, op, mode, rd, &w);
    if (e == CM_ERR_UNAVAILABLE)
        c->st.unavailable++;
    pthread_mutex_unlock(&c->mu);
    if (e != CM_OK || !w)
        return e;
    /* the write-back counts the homes holding the winner, its slot among them: before the take */
    if (writeback && mode == RP_STRONG && (e = write_back_op(c, op, &w->rec, wb)) != CM_OK)
        return e;
    if ((e = take_winner(c, op, w, rd)) != CM_OK) {
        rp_op_put(*wb);
        *wb = NULL;
    }
    return e;
}

/* A quorum read of key under mode (see read_op_new, read_end), the write-back run to its end;
 * fence: a partition leader's token, admitted by every replica read (0: none). */
static cm_err quorum_read(rp *c, const char *bucket, const char *key, rp_consistency mode,
                          int repair, int writeback, uint64_t fence, rp_read *rd)
{
    memset(rd, 0, sizeof(*rd));
    rp_op *op = read_op_new(c, bucket, key, repair, mode), *wb = NULL;
    if (!op)
        return CM_ERR_NOMEM;
    op->part.fence = fence;
    op->lazy = repair || !writeback; /* a get's or a put's read: see read_op_new */
    cm_err e = rp_op_run(op);
    if (e != CM_OK)
        return e;
    e = read_end(c, op, mode, writeback, rd, &wb);
    if (wb) {
        e = rp_op_run(wb); /* when it fails, wb is freed */
        if (e == CM_OK)
            e = write_end(c, wb, 1);
        if (e != CM_OK)
            md_object_release(&rd->win);
    }
    rp_op_put(op);
    return e;
}

/* A read's answer to a get: a tombstone or nothing is CM_ERR_NOTFOUND (rd->win released). */
static cm_err get_answer(cm_err e, rp_read *rd)
{
    if (e == CM_OK && (!rd->has || rd->win.tombstone)) {
        md_object_release(&rd->win);
        return CM_ERR_NOTFOUND;
    }
    return e;
}

cm_err rp_object_get(rp *c, const char *bucket, const char *key, md_object *out)
{
    rp_read rd;
    if (!valid(bucket, key))
        return CM_ERR_INVAL;
    count(c, &c->st.gets);
    cm_err e = get_answer(quorum_read(c, bucket, key, rp_mode(c, bucket), 1, 1, 0, &rd), &rd);
    if (e == CM_OK)
        *out = rd.win;
    return e;
}

/* The write op that sends rec (moved into it) to the partition's homes and succeeds at W (an
 * RP_AVAILABLE bucket's: stand-ins too), with a partition leader's token when fence is not 0. */
static rp_op *write_op_new(rp *c, const char *bucket, rp_consistency mode, md_object *rec,
                           uint64_t fence)
{
    rp_op *op = rp_op_new(c, RP_K_PUT, bucket, rp_shard_of(rec->key, c->cfg.nshards));
    if (!op)
        return NULL;
    op->part.fence = fence;
    op->rec = *rec; /* moved */
    memset(rec, 0, sizeof(*rec));
    op->need = c->cfg.w;
    op->sloppy = mode == RP_AVAILABLE;
    return op;
}

/* lost (may be NULL): whether the write may have lost to a version some home held already (a
 * home answered "not applied", or stand-ins may have taken it: theirs say nothing of the homes). */
static cm_err quorum_write_lost(rp *c, const char *bucket, md_object *rec, rp_consistency mode,
                                uint64_t fence, int *lost)
{
    rp_op *op = write_op_new(c, bucket, mode, rec, fence);
    if (!op)
        return CM_ERR_NOMEM;
    cm_err e = rp_op_run(op);
    if (e != CM_OK)
        return e;
    if (lost) {
        pthread_mutex_lock(&c->mu);
        *lost = op->sloppy;
        for (int i = 0; i < op->nslots; i++) {
            const rp_slot *s = &op->slot[i];
            *lost |=
                s->state == RP_SLOT_DONE && s->err == CM_OK && (!s->applied || s->standin >= 0);
        }
        pthread_mutex_unlock(&c->mu);
    }
    return write_end(c, op, 0);
}

static cm_err quorum_write(rp *c, const char *bucket, md_object *rec, rp_consistency mode,
                           uint64_t fence)
{
    return quorum_write_lost(c, bucket, rec, mode, fence, NULL);
}

cm_err rp_record_get(rp *c, const char *bucket, const char *key, md_object *out)
{
    rp_read rd;
    if (!valid(bucket, key))
        return CM_ERR_INVAL;
    count(c, &c->st.gets);
    cm_err e = quorum_read(c, bucket, key, rp_mode(c, bucket), 1, 1, 0, &rd);
    if (e == CM_OK && !rd.has)
        e = CM_ERR_NOTFOUND;
    if (e == CM_OK)
        *out = rd.win;
    return e;
}

/* The record a write sends, in *rec: a copy of obj, or a tombstone of key when obj is NULL,
 * stamped to supersede every version the read saw (rd->seen). */
static cm_err stamp_record(rp *c, const char *key, const md_object *obj, const rp_read *rd,
                           md_object *rec)
{
    if (obj) {
        cm_err e = md_object_copy(obj, rec);
        if (e != CM_OK)
            return e;
    } else {
        memset(rec, 0, sizeof(*rec));
        if (!(rec->key = strdup(key)))
            return CM_ERR_NOMEM;
        memcpy(rec->version_id, "null", 5);
        rec->tombstone = 1;
    }
    rec->generation = 0;
    rec->hlc = md_hlc_now(c->cfg.clock);
    rec->hlc_node = c->cfg.node;
    rec->vv = rd->seen;
    md_vv_increment(&rec->vv, c->cfg.node, rec->hlc);
    /* This node's counter becomes its write's stamp (at least one more than before), so that a
     * write of this node that did not see an earlier one of its own (blind, or its read missed
     * it) still orders after it, as its clock does, rather than before it. */
    for (uint32_t i = 0; i < rec->vv.n; i++)
        if (rec->vv.e[i].node == c->cfg.node && rec->vv.e[i].counter < rec->hlc)
            rec->vv.e[i].counter = rec->hlc;
    return CM_OK;
}

/* ---- asynchronous get and put: the same phases, chained on the loop ---- */

typedef struct {
    rp *c;
    rp_consistency mode;
    char bucket[MD_BUCKET_MAX + 1];
    rp_read rd;
    md_object obj; /* put: a copy of the record to write */
    rp_get_done get_done;
    rp_put_done put_done;
    void *arg;
} rp_async;

static void async_free(rp_async *a)
{
    md_object_release(&a->obj);
    free(a);
}

static void aget_end(rp_async *a, cm_err e)
{
    e = get_answer(e, &a->rd);
    a->get_done(a->arg, e, e == CM_OK ? &a->rd.win : NULL);
    async_free(a);
}

static void aget_written_back(rp_op *wb)
{
    rp_async *a = wb->fin_arg;
    cm_err e = write_end(a->c, wb, 1);
    if (e != CM_OK)
        md_object_release(&a->rd.win);
    aget_end(a, e);
}

static void aget_read(rp_op *op)
{
    rp_async *a = op->fin_arg;
    rp_op *wb = NULL;
    cm_err e = read_end(a->c, op, a->mode, 1, &a->rd, &wb);
    rp_op_put(op); /* wb holds its own use of the router generation */
    if (wb && (e = rp_op_go(wb, aget_written_back, a)) == CM_OK)
        return;
    if (wb)
        md_object_release(&a->rd.win);
    aget_end(a, e);
}

static rp_async *async_new(rp *c, const char *bucket)
{
    rp_async *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->c = c;
    a->mode = rp_mode(c, bucket);
    memcpy(a->bucket, bucket, strlen(bucket) + 1); /* valid() bounded it */
    return a;
}

cm_err rp_object_get_async(rp *c, const char *bucket, const char *key, rp_get_done done, void *arg)
{
    if (!valid(bucket, key))
        return CM_ERR_INVAL;
    count(c, &c->st.gets);
    rp_async *a = async_new(c, bucket);
    rp_op *op = a ? read_op_new(c, bucket, key, 1, a->mode) : NULL;
    if (!op) {
        free(a);
        return CM_ERR_NOMEM;
    }
    op->lazy = 1; /* see read_op_new */
    a->get_done = done;
    a->arg = arg;
    cm_err e = rp_op_go(op, aget_read, a);
    if (e != CM_OK)
        free(a);
    return e;
}

static void aput_end(rp_async *a, cm_err e)
{
    a->put_done(a->arg, e);
    async_free(a);
}

static void aput_written(rp_op *op)
{
    rp_async *a = op->fin_arg;
    aput_end(a, write_end(a->c, op, 0));
}

static void aput_read(rp_op *op)
{
    rp_async *a = op->fin_arg;
    rp_op *wb = NULL, *wr = NULL;
    md_object rec;
    cm_err e = read_end(a->c, op, a->mode, 0, &a->rd, &wb); /* no write-back: wb stays NULL */
    rp_op_put(op);
    if (e == CM_ERR_UNAVAILABLE && a->mode == RP_AVAILABLE) {
        memset(&a->rd, 0, sizeof(a->rd)); /* writable while any node answers: blind write */
        e = CM_OK;
    }
    if (e == CM_OK) {
        e = stamp_record(a->c, a->obj.key, &a->obj, &a->rd, &rec);
        md_object_release(&a->rd.win);
    }
    if (e == CM_OK) {
        wr = write_op_new(a->c, a->bucket, a->mode, &rec, 0);
        md_object_release(&rec); /* moved into wr, or still ours when wr is NULL */
        e = wr ? rp_op_go(wr, aput_written, a) : CM_ERR_NOMEM;
        if (e == CM_OK)
            return;
    }
    aput_end(a, e);
}

cm_err rp_object_put_async(rp *c, const char *bucket, const md_object *obj, rp_put_done done,
                           void *arg)
{
    if (!valid(bucket, obj->key))
        return CM_ERR_INVAL;
    count(c, &c->st.puts);
    rp_async *a = async_new(c, bucket);
    if (!a)
        return CM_ERR_NOMEM;
    cm_err e = md_object_copy(obj, &a->obj);
    rp_op *op = e == CM_OK ? read_op_new(c, bucket, obj->key, 0, a->mode) : NULL;
    if (!op) {
        async_free(a);
        return e == CM_OK ? CM_ERR_NOMEM : e;
    }
    op->lazy = 1; /* see read_op_new */
    a->put_done = done;
    a->arg = arg;
    e = rp_op_go(op, aput_read, a);
    if (e != CM_OK)
        async_free(a);
    return e;
}

/* Read, check the condition (may be NULL), stamp and write: obj NULL writes a tombstone. A
 * condition is decided on strict quorums whatever the bucket's mode: a read answered by one home,
 * or a write held by stand-ins, would let a second writer find the key absent (two winners). */
static cm_err read_and_write(rp *c, const char *bucket, const char *key, const md_object *obj,
                             const md_cond *cond, uint64_t fence)
{
    rp_read rd;
    rp_consistency mode = cond ? RP_STRONG : rp_mode(c, bucket);
    /* A delete may answer from this read alone (nothing to delete), and a condition is decided
     * on it (412 for a version the next read must see too): both write back. */
    cm_err e = quorum_read(c, bucket, key, mode, 0, !obj || cond, fence, &rd);
    if (e == CM_ERR_UNAVAILABLE && mode == RP_AVAILABLE && !cond) {
        memset(&rd, 0, sizeof(rd)); /* writable while any node answers: blind write */
        e = CM_OK;
    }
    if (e != CM_OK)
        return e;
    e = md_cond_check(cond, rd.has ? &rd.win : NULL);
    /* a version deleted as noncurrent (the lifecycle): still so, with what its listing saw */
    if (e == CM_OK && !obj && cond && cond->noncurrent && rd.has && !rd.win.tombstone)
        e = rp_version_older(c, bucket, NULL, key, cond);
    /* Nothing to delete: a quorum (or every home) holds no live version. */
    int skip = !obj && (mode == RP_STRONG || rd.all_homes) && (!rd.has || rd.win.tombstone);
    /* A new version stamped before the version read was (a write between the caller's read and
     * this one): it would sort below the latest while written after it. */
    int stale =
        obj && rp_version_new(obj) && rd.has &&
        (rd.win.hlc > obj->hlc || (rd.win.hlc == obj->hlc && rd.win.hlc_node >= obj->hlc_node));
    md_object_release(&rd.win);
    if (e != CM_OK || skip)
        return e;
    if (obj && rp_version_new(obj)) /* rp_version_put's conditional write, here at the leader */
        return stale ? CM_ERR_CONFLICT : rp_version_write(c, bucket, obj, fence);
    md_object rec;
    e = stamp_record(c, key, obj, &rd, &rec);
    if (e != CM_OK)
        return e;
    e = quorum_write(c, bucket, &rec, mode, fence);
    md_object_release(&rec);
    return e;
}

static cm_err swap_write(rp *c, const char *bucket, const md_object *rec, rp_consistency mode,
                         uint64_t fence);

/* A lock change (md_cond.lock_change) of the version record obj names: the record read at strict
 * quorum, changed by md_lock_apply, written as its successor (a swap: its stamp kept, so the
 * version keeps its place among the key's versions). */
static cm_err lock_change(rp *c, const char *bucket, const md_object *obj, const md_cond *cond,
                          uint64_t fence)
{
    rp_read rd;
    cm_err e = quorum_read(c, bucket, obj->key, RP_STRONG, 0, 1, fence, &rd);
    if (e != CM_OK)
        return e;
    md_lock_change ch = {.set_retention = (cond->lock_change & MD_COND_LOCK_RETENTION) != 0,
                         .mode = obj->lock_mode,
                         .until_ms = obj->lock_until_ms,
                         .set_hold = (cond->lock_change & MD_COND_LOCK_HOLD) != 0,
                         .legal_hold = obj->legal_hold,
                         .bypass_governance = cond->bypass_governance};
    if (!rd.has || rd.win.tombstone || rd.win.delete_marker || rp_version_pointer(&rd.win))
        e = CM_ERR_NOTFOUND; /* as md_version_set_lock: a marker carries no lock */
    else if ((e = md_lock_apply(&rd.win, &ch, cm_now_ms())) == CM_OK)
        e = swap_write(c, bucket, &rd.win, RP_STRONG, fence);
    md_object_release(&rd.win);
    return e;
}

/* The version rd holds is the one obj was read from, or a swap of it: the same stamp (a swap
 * keeps it, or takes one tick above it when a full vector dropped an entry), content and version
 * id, and no write of a client since: a swap raises only swap entries (RP_SWAP_NODE, top bit
 * set), every coordinated write one of its node's own, which then counts above obj's. */
static int same_version(const md_object *rd, const md_object *obj)
{
    if (rd->tombstone || rd->hlc_node != obj->hlc_node || rd->hlc < obj->hlc ||
        rd->mtime_ms != obj->mtime_ms || strcmp(rd->etag, obj->etag) != 0 ||
        strcmp(rd->version_id, obj->version_id) != 0 ||
        md_vv_compare(&rd->vv, &obj->vv) == MD_VV_BEFORE)
        return 0;
    for (uint32_t i = 0; i < rd->vv.n; i++)
        if ((rd->vv.e[i].node & 0x80000000u) == 0 &&
            rd->vv.e[i].counter > md_vv_counter(&obj->vv, rd->vv.e[i].node))
            return 0;
    return 1;
}

/* MD_COND_LOCK_KEEP (rp_object_swap_keep_lock): obj's content with the lock fields of the
 * version read at strict quorum, written as the successor of what was read. */
static cm_err keep_lock(rp *c, const char *bucket, const md_object *obj, uint64_t fence)
{
    rp_read rd;
    cm_err e = quorum_read(c, bucket, obj->key, RP_STRONG, 0, 1, fence, &rd);
    if (e != CM_OK)
        return e;
    if (!rd.has)
        return CM_OK; /* deleted and collected: the swap would have lost */
    md_object w;
    if (same_version(&rd.win, obj) && (e = md_object_copy(obj, &w)) == CM_OK) {
        w.vv = rd.win.vv, w.hlc = rd.win.hlc;
        w.lock_mode = rd.win.lock_mode, w.lock_until_ms = rd.win.lock_until_ms;
        w.legal_hold = rd.win.legal_hold;
        e = swap_write(c, bucket, &w, RP_STRONG, fence);
        md_object_release(&w);
    }
    md_object_release(&rd.win);
    return e;
}

/* MD_COND_LOCK_LAYOUT (rp_object_swap_layout): the version read at strict quorum, its part
 * cond->heal_part naming exactly cond->heal_old's cells, written as its successor with only that
 * part's layout replaced by obj's. */
static cm_err heal_layout(rp *c, const char *bucket, const md_object *obj, const md_cond *cond,
                          uint64_t fence)
{
    size_t i = cond->heal_part;
    if (!cond->heal_old || i >= obj->nparts || MD_PART_INLINE(&obj->parts[i]) ||
        obj->parts[i].layout.size != cond->heal_old->size)
        return CM_ERR_INVAL;
    rp_read rd;
    cm_err e = quorum_read(c, bucket, obj->key, RP_STRONG, 0, 1, fence, &rd);
    if (e != CM_OK)
        return e;
    if (!rd.has || rd.win.tombstone || i >= rd.win.nparts || MD_PART_INLINE(&rd.win.parts[i]) ||
        !md_layout_same_cells(&rd.win.parts[i].layout, cond->heal_old)) {
        e = CM_ERR_PRECONDITION; /* another heal, a PUT or a DELETE came first */
    } else {
        rd.win.parts[i].layout = obj->parts[i].layout;
        e = swap_write(c, bucket, &rd.win, RP_STRONG, fence);
    }
    md_object_release(&rd.win);
    return e;
}

cm_err rp_cond_execute(rp *c, const rp_cond_write *w)
{
    pthread_mutex_t *mu = key_lock(c, w->bucket, w->key);
    count(c, &c->st.cond_writes);
    /* The condition is decided on a quorum read taken after every earlier conditional write of
     * the key (that shares this lock) reached W replicas: R + W > N makes it visible. */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until); /* a wall clock step must not cut the wait short */
    until.tv_sec += c->cfg.timeout_ms / 1000;
    until.tv_nsec += (long)(c->cfg.timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    if (pthread_mutex_clocklock(mu, CLOCK_MONOTONIC, &until) != 0) {
        count(c, &c->st.unavailable); /* the writes queued before it took too long */
        return CM_ERR_UNAVAILABLE;
    }
    cm_err e;
    if (w->obj && w->cond && w->cond->lock_change == MD_COND_LOCK_KEEP)
        e = keep_lock(c, w->bucket, w->obj, w->fence);
    else if (w->obj && w->cond && w->cond->lock_change == MD_COND_LOCK_LAYOUT)
        e = heal_layout(c, w->bucket, w->obj, w->cond, w->fence);
    else if (w->obj && w->cond && w->cond->lock_change)
        e = lock_change(c, w->bucket, w->obj, w->cond, w->fence);
    else
        e = read_and_write(c, w->bucket, w->key, w->obj, w->cond, w->fence);
    pthread_mutex_unlock(mu);
    return e;
}

static int cond_set(const md_cond *cond)
{
    return cond && (cond->if_none_match_star || cond->if_match || cond->unlocked ||
                    cond->noncurrent || cond->lock_change);
}

static cm_err run_cond(rp *c, const char *bucket, const char *key, const md_object *obj,
                       const md_cond *cond)
{
    rp_cond_write w = {bucket, key, obj, cond, 0};
    if (!c->cfg.cond_run)
        return rp_cond_execute(c, &w);
    rp_part p = {bucket, rp_shard_of(key, c->cfg.nshards), c->cfg.nshards, 0};
    return c->cfg.cond_run(c->cfg.cond_arg, c, &p, &w);
}

cm_err rp_object_put(rp *c, const char *bucket, const md_object *obj, const md_cond *cond,
                     md_object *old, int *had_old)
{
    (void)old;
    if (had_old)
        *had_old = 0;
    if (!valid(bucket, obj->key))
        return CM_ERR_INVAL;
    count(c, &c->st.puts);
    if (cond_set(cond))
        return run_cond(c, bucket, obj->key, obj, cond);
    return read_and_write(c, bucket, obj->key, obj, NULL, 0);
}

cm_err rp_object_delete(rp *c, const char *bucket, const char *key, const md_cond *cond,
                        md_object *old, int *had_old)
{
    (void)old;
    if (had_old)
        *had_old = 0;
    if (!valid(bucket, key))
        return CM_ERR_INVAL;
    count(c, &c->st.deletes);
    if (cond_set(cond))
        return run_cond(c, bucket, key, NULL, cond);
    return read_and_write(c, bucket, key, NULL, NULL, 0);
}

/* The copy of rec that a write without a read sends (rec keeps its stamp: swap, put_at). */
static cm_err unread_copy(rp *c, const char *bucket, const md_object *rec, md_object *w)
{
    if (!valid(bucket, rec->key) || rec->tombstone)
        return CM_ERR_INVAL;
    count(c, &c->st.puts);
    cm_err e = md_object_copy(rec, w);
    w->generation = 0;
    return e;
}

cm_err rp_object_swap(rp *c, const char *bucket, const md_object *rec)
{
    return swap_write(c, bucket, rec, rp_mode(c, bucket), 0);
}

cm_err rp_object_swap_keep_lock(rp *c, const char *bucket, const md_object *rec)
{
    md_cond cond = {.lock_change = MD_COND_LOCK_KEEP};
    return rp_object_put(c, bucket, rec, &cond, NULL, NULL);
}

cm_err rp_object_swap_layout(rp *c, const char *bucket, const md_object *rec, size_t part,
                             const md_layout *old)
{
    if (part >= rec->nparts || MD_PART_INLINE(&rec->parts[part]))
        return CM_ERR_CONFLICT; /* no stored part there to swap */
    if (part > UINT32_MAX || rec->parts[part].layout.size != old->size)
        return CM_ERR_INVAL;
    md_cond cond = {
        .lock_change = MD_COND_LOCK_LAYOUT, .heal_part = (uint32_t)part, .heal_old = old};
    cm_err e = rp_object_put(c, bucket, rec, &cond, NULL, NULL);
    /* The leader's refusal (nothing written) is the conflict the repair knows; a conflict of the
     * way there (no leader agreed) is not: the write's fate is unknown. */
    if (e == CM_ERR_CONFLICT)
        return CM_ERR_UNAVAILABLE;
    return e == CM_ERR_PRECONDITION ? CM_ERR_CONFLICT : e;
}

/* rp_object_swap's write, in mode and with a partition leader's token when fence is not 0. */
static cm_err swap_write(rp *c, const char *bucket, const md_object *rec, rp_consistency mode,
                         uint64_t fence)
{
    md_object w;
    cm_err e = unread_copy(c, bucket, rec, &w);
    if (e != CM_OK)
        return e;
    md_vv_increment(&w.vv, RP_SWAP_NODE(c->cfg.node), rec->hlc); /* hlc, hlc_node: rec's */
    /* Two swaps of one version through this node (a tag change racing another, or a repair)
     * would otherwise carry equal stamps and vectors with different content: replicas would keep
     * whichever came first and never see a difference. A counter above every swap this node
     * made orders them: the later swap is after the earlier one, and both still only after rec. */
    for (uint32_t i = 0; i < w.vv.n; i++) {
        if (w.vv.e[i].node != RP_SWAP_NODE(c->cfg.node))
            continue;
        pthread_mutex_lock(&c->mu);
        c->swap_seq = CM_MAX(c->swap_seq + 1, w.vv.e[i].counter);
        w.vv.e[i].counter = c->swap_seq;
        pthread_mutex_unlock(&c->mu);
    }
    /* A full vector dropped an entry of rec's to make room: no longer after rec, the swap would
     * tie with it on the stamp. One tick above rec's HLC wins that tie and still loses to every
     * write that read rec (its coordinator merged rec's clock: at least two ticks above). */
    if (md_vv_compare(&w.vv, &rec->vv) != MD_VV_AFTER)
        w.hlc = rec->hlc + 1;
    e = quorum_write(c, bucket, &w, mode, fence);
    md_object_release(&w);
    return e;
}

void rp_stamp(rp *c, uint64_t *hlc, uint32_t *node)
{
    *hlc = md_hlc_now(c->cfg.clock);
    *node = c->cfg.node;
}

cm_err rp_object_put_at(rp *c, const char *bucket, const md_object *rec)
{
    if (rec->hlc_node != c->cfg.node)
        return CM_ERR_INVAL;
    return rp_put_stamped(c, bucket, rec, NULL, 0, NULL);
}

cm_err rp_put_stamped(rp *c, const char *bucket, const md_object *rec, const md_vv *seen,
                      uint64_t fence, int *lost)
{
    int dummy;
    lost = lost ? lost : &dummy;
    *lost = 1;
    if (!rec->hlc)
        return CM_ERR_INVAL;
    md_object w;
    cm_err e = unread_copy(c, bucket, rec, &w);
    if (e != CM_OK)
        return e;
    /* A write that saw nothing: against every other version, last-writer-wins on (hlc, node); with
     * seen, it also dominates what it saw. Its node's counter is its stamp (as stamp_record's). */
    memset(&w.vv, 0, sizeof(w.vv));
    if (seen)
        w.vv = *seen;
    md_vv_increment(&w.vv, w.hlc_node, w.hlc);
    for (uint32_t i = 0; i < w.vv.n; i++)
        if (w.vv.e[i].node == w.hlc_node && w.vv.e[i].counter < w.hlc)
            w.vv.e[i].counter = w.hlc;
    e = quorum_write_lost(c, bucket, &w, fence ? RP_STRONG : rp_mode(c, bucket), fence, lost);
    md_object_release(&w);
    return e;
}
