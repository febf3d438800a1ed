/*
 * rp_hints.c - hint delivery rounds (rp_hints.h, docs/replication.md "Hints").
 *
 * A round: (1) on a worker, md_hint_targets and md_hint_list per target until `batch` hints are
 * read; (2) on the loop, one rp_replica_put per hint to its target's replica (from the router),
 * all in flight at once (the batch bounds them); (3) once every put ended, on a worker, md_hint_
 * drop for each hint the target answered for (it drops only the version delivered: a newer hint
 * stored meanwhile stays for the next round), and for each whose bucket the target does not have
 * when this node has it no more either (deleted); (4) the next round is armed interval_ms later.
 * One round at a time, so a node with many hints sends at most `batch` records per interval; each
 * round starts with the target after the one the previous round started with, so the targets
 * take turns at the front of the batch, and lists each target's hints from after the last one
 * the previous round listed for it, wrapping to its first (list_target), so hints a target
 * refuses for a lasting reason do not hold its other hints back. A hint whose record is older
 * than max_age_ms (the tombstone grace) is dropped in step (3) without being sent. A hint for a
 * node the layout no longer names is sent to its partition's first home instead
 * (target_replica).
 *
 * Threading: everything runs on the loop's thread but rp_hints_get_stats, which a node's status
 * page calls from any thread: the counters are written under mu (count), read under it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cm_util.h"
#include "rp_hints.h"

typedef struct hround hround;

typedef struct {
    hround *r;
    size_t i;
} hput;

struct hround {
    nd_job job; /* first: the pool hands it back */
    rp_hints *h;
    char **targets;
    size_t ntargets;
    md_hint *hints;
    size_t nhints;
    size_t *tidx;  /* hints[i] is for targets[tidx[i]] */
    uint8_t *drop; /* the target answered for hints[i]: DROP_DONE, DROP_GONE */
    hput *puts;
    size_t outstanding;
    uint64_t dropped;
    cm_err err;
};

enum { DROP_DONE = 1, DROP_GONE = 2 }; /* stored (or superseded); "no such bucket" */

#define RP_HINT_CURSORS 64

struct rp_hints {
    rp_hints_config cfg;
    struct event *timer;
    int busy, freeing;
    pthread_mutex_t mu; /* guards st */
    rp_hints_stats st;
    /* The target a round started with: the next round starts with the one after it, so a dead
     * target with a full batch of hints cannot starve the others (written by the round's list
     * job, while the loop leaves it alone). */
    char first[ND_NODE_ID_MAX];
    /* Per target, the last hint a round listed: the next round lists after it, wrapping to the
     * target's first hint, so hints the target refuses for a lasting reason cannot hold its
     * others back (written by the list jobs only; RP_HINT_CURSORS targets, then reused). */
    struct {
        char target[ND_NODE_ID_MAX];
        char *bucket, *key;
    } cur[RP_HINT_CURSORS];
    unsigned next_cur;
};

static void count(rp_hints *h, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&h->mu);
    *field += n;
    pthread_mutex_unlock(&h->mu);
}

static void hints_destroy(rp_hints *h)
{
    for (size_t i = 0; i < RP_HINT_CURSORS; i++)
        free(h->cur[i].bucket), free(h->cur[i].key);
    event_free(h->timer);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void round_free(hround *r)
{
    md_keys_free(r->targets, r->ntargets);
    md_hints_free(r->hints, r->nhints);
    free(r->tidx);
    free(r->drop);
    free(r->puts);
    free(r);
}

static void arm(rp_hints *h)
{
    struct timeval tv = {h->cfg.interval_ms / 1000, (h->cfg.interval_ms % 1000) * 1000};
    evtimer_add(h->timer, &tv);
}

static void round_end(hround *r)
{
    rp_hints *h = r->h;
    count(h, &h->st.dropped, r->dropped);
    round_free(r);
    h->busy = 0;
    if (h->freeing) {
        hints_destroy(h);
        return;
    }
    arm(h);
}

/* ---- (1) list, on a worker ---- */

/* The cursor slot of target: its own, else a reused one (emptied); never NULL. */
static size_t cursor_of(rp_hints *h, const char *target)
{
    for (size_t i = 0; i < RP_HINT_CURSORS; i++)
        if (strcmp(h->cur[i].target, target) == 0)
            return i;
    size_t i = h->next_cur++ % RP_HINT_CURSORS;
    free(h->cur[i].bucket), free(h->cur[i].key);
    h->cur[i].bucket = h->cur[i].key = NULL;
    snprintf(h->cur[i].target, sizeof(h->cur[i].target), "%s", target);
    return i;
}

/* Append the first keep of page's n hints to the round as target t's (they move; the others and
 * page are freed). */
static cm_err take(hround *r, size_t t, md_hint *page, size_t n, size_t keep)
{
    md_hint *all = realloc(r->hints, (r->nhints + keep + 1) * sizeof(*all));
    size_t *ti = realloc(r->tidx, (r->nhints + keep + 1) * sizeof(*ti));
    if (all)
        r->hints = all;
    if (ti)
        r->tidx = ti;
    if (!all || !ti) {
        md_hints_free(page, n);
        return CM_ERR_NOMEM;
    }
    if (keep)
        memcpy(r->hints + r->nhints, page, keep * sizeof(*page));
    for (size_t i = 0; i < keep; i++)
        r->tidx[r->nhints + i] = t;
    r->nhints += keep;
    for (size_t i = keep; i < n; i++)
        free(page[i].bucket), md_object_release(&page[i].rec);
    free(page); /* its kept entries moved */
    return CM_OK;
}

/* Up to want hints of target t: those after its cursor, then, wrapping, those from its first up
 * to the cursor; the cursor moves to the last one taken. */
static cm_err list_target(hround *r, size_t t, size_t want)
{
    rp_hints *h = r->h;
    size_t c = cursor_of(h, r->targets[t]), before = r->nhints;
    const char *cb = h->cur[c].bucket, *ck = h->cur[c].key;
    md_hint *page;
    size_t n;
    int truncated;
    cm_err e = md_hint_list(h->cfg.md, r->targets[t], cb, ck, want, &page, &n, &truncated);
    if (e == CM_OK)
        e = take(r, t, page, n, n);
    if (e == CM_OK && cb && !truncated && n < want &&
        (e = md_hint_list(h->cfg.md, r->targets[t], NULL, NULL, want - n, &page, &n, &truncated)) ==
            CM_OK) {
        size_t keep = 0; /* those up to the cursor (the rest were taken above) */
        while (keep < n &&
               (strcmp(page[keep].bucket, cb) < 0 ||
                (strcmp(page[keep].bucket, cb) == 0 && strcmp(page[keep].rec.key, ck) <= 0)))
            keep++;
        e = take(r, t, page, n, keep);
    }
    if (e != CM_OK || r->nhints == before)
        return e;
    const md_hint *last = &r->hints[r->nhints - 1];
    char *b = strdup(last->bucket), *k = strdup(last->rec.key);
    if (!b || !k) {
        free(b), free(k);
        return CM_OK; /* the cursor stays where it was */
    }
    free(h->cur[c].bucket), free(h->cur[c].key);
    h->cur[c].bucket = b, h->cur[c].key = k;
    return CM_OK;
}

static cm_err list_run_e(hround *r)
{
    size_t batch = (size_t)r->h->cfg.batch;
    cm_err e = md_hint_targets(r->h->cfg.md, &r->targets, &r->ntargets);
    if (e != CM_OK)
        return e;
    size_t start = 0; /* the first target after the previous round's first, wrapping */
    while (start < r->ntargets && strcmp(r->targets[start], r->h->first) <= 0)
        start++;
    if (start == r->ntargets)
        start = 0;
    if (r->ntargets)
        snprintf(r->h->first, sizeof(r->h->first), "%s", r->targets[start]);
    for (size_t k = 0; k < r->ntargets && r->nhints < batch; k++)
        if ((e = list_target(r, (start + k) % r->ntargets, batch - r->nhints)) != CM_OK)
            return e;
    r->drop = calloc(r->nhints + 1, 1);
    r->puts = calloc(r->nhints + 1, sizeof(*r->puts));
    return r->drop && r->puts ? CM_OK : CM_ERR_NOMEM;
}

static void list_run(nd_job *j)
{
    hround *r = (hround *)(void *)j;
    r->err = list_run_e(r);
}

/* ---- (3) drop, on a worker ---- */

/* A hint whose target has no such bucket goes when this node has none either (the bucket was
 * deleted); while this node has it, the target may just not know it yet, and it stays. */
static int gone(hround *r, size_t i)
{
    md_bucket b;
    return md_bucket_get(r->h->cfg.md, r->hints[i].bucket, &b) == CM_ERR_NOTFOUND;
}

static void drop_run(nd_job *j)
{
    hround *r = (hround *)(void *)j;
    for (size_t i = 0; i < r->nhints; i++) {
        int dropped = 0;
        if (r->drop[i] && (r->drop[i] != DROP_GONE || gone(r, i)) &&
            md_hint_drop(r->h->cfg.md, r->targets[r->tidx[i]], r->hints[i].bucket, &r->hints[i].rec,
                         &dropped) == CM_OK)
            r->dropped += dropped != 0;
    }
}

static void drop_done(nd_job *j)
{
    round_end((hround *)(void *)j);
}

static void puts_ended(hround *r)
{
    int any = 0;
    for (size_t i = 0; i < r->nhints; i++)
        any |= r->drop[i];
    if (!any) {
        round_end(r);
        return;
    }
    r->job.run = drop_run;
    r->job.done = drop_done;
    nd_work_submit(r->h->cfg.work, &r->job);
}

/* ---- (2) deliver, on the loop ---- */

static void put_done(void *arg, const rp_result *res)
{
    hput *p = arg;
    hround *r = p->r;
    if (res->err == CM_OK) {
        r->drop[p->i] = DROP_DONE;
        if (res->applied)
            count(r->h, &r->h->st.delivered, 1);
        else
            count(r->h, &r->h->st.superseded, 1);
    } else {
        if (res->no_bucket)
            r->drop[p->i] = DROP_GONE;
        count(r->h, &r->h->st.failed, 1);
    }
    if (--r->outstanding == 0)
        puts_ended(r);
}

/* Where a hint for target goes: the target's replica, or, when the layout no longer names the
 * target (removed for good), the first home the layout gives the partition now, which holds the
 * record as one of its own (rebalancing and anti-entropy spread it from there). NULL when no
 * layout is known yet, or the partition has no home. */
static rp_replica *target_replica(rp_hints *h, const char *target, const rp_part *part)
{
    if (!h->cfg.router)
        return NULL;
    rp_replica *rep = rp_router_replica(h->cfg.router, target);
    if (rep || rp_route(h->cfg.router, part, 1, 0, &rep) != 1)
        return rep;
    count(h, &h->st.rehomed, 1);
    return rep;
}

static void list_done(nd_job *j)
{
    hround *r = (hround *)(void *)j;
    rp_hints *h = r->h;
    count(h, &h->st.rounds, 1);
    if (r->err != CM_OK || r->nhints == 0) {
        round_end(r);
        return;
    }
    count(h, &h->st.listed, r->nhints);
    r->outstanding = 1; /* held while starting, so no completion ends the round early */
    int64_t oldest = h->cfg.max_age_ms ? cm_now_ms() - h->cfg.max_age_ms : INT64_MIN;
    for (size_t i = 0; i < r->nhints; i++) {
        const md_hint *hi = &r->hints[i];
        if (MD_HLC_MS(hi->rec.hlc) < oldest) {
            r->drop[i] = DROP_DONE; /* past the tombstone grace: never delivered (rp_hints.h) */
            count(h, &h->st.expired, 1);
            continue;
        }
        rp_part part = {hi->bucket, rp_shard_of(hi->rec.key, h->cfg.nshards), h->cfg.nshards, 0};
        rp_replica *rep = target_replica(h, r->targets[r->tidx[i]], &part);
        if (!rep) {
            count(h, &h->st.unroutable, 1);
            continue;
        }
        r->puts[i].r = r, r->puts[i].i = i;
        r->outstanding++;
        if (rp_replica_put(rep, &part, &hi->rec, NULL, put_done, &r->puts[i]) != CM_OK) {
            r->outstanding--;
            count(h, &h->st.failed, 1);
        }
    }
    if (--r->outstanding == 0)
        puts_ended(r);
}

/* ---- rounds ---- */

static void start_round(rp_hints *h)
{
    if (h->busy || h->freeing)
        return;
    hround *r = calloc(1, sizeof(*r));
    if (!r) {
        arm(h);
        return;
    }
    r->h = h;
    r->job.run = list_run;
    r->job.done = list_done;
    r->job.base = h->cfg.base;
    h->busy = 1;
    nd_work_submit(h->cfg.work, &r->job);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_round(arg);
}

cm_err rp_hints_new(const rp_hints_config *cfg, rp_hints **out)
{
    *out = NULL;
    if (!cfg->base || !cfg->md || !cfg->work || cfg->batch < 0 || cfg->batch > 1000 ||
        cfg->interval_ms < 0 || cfg->nshards > RP_MAX_SHARDS)
        return CM_ERR_INVAL;
    rp_hints *h = calloc(1, sizeof(*h));
    if (!h)
        return CM_ERR_NOMEM;
    h->cfg = *cfg;
    h->cfg.nshards = cfg->nshards ? cfg->nshards : 8;
    h->cfg.batch = cfg->batch ? cfg->batch : 64;
    h->cfg.interval_ms = cfg->interval_ms ? cfg->interval_ms : 1000;
    if (!(h->timer = evtimer_new(cfg->base, timer_cb, h))) {
        free(h);
        return CM_ERR_NOMEM;
    }
    pthread_mutex_init(&h->mu, NULL);
    arm(h);
    *out = h;
    return CM_OK;
}

void rp_hints_free(rp_hints *h)
{
    if (!h)
        return;
    if (h->busy) {
        h->freeing = 1; /* the round's end frees it */
        evtimer_del(h->timer);
        return;
    }
    hints_destroy(h);
}

void rp_hints_kick(rp_hints *h)
{
    if (!h->busy) {
        evtimer_del(h->timer);
        start_round(h);
    }
}

void rp_hints_set_router(rp_hints *h, rp_router *rt)
{
    h->cfg.router = rt;
}

int rp_hints_busy(const rp_hints *h)
{
    return h->busy;
}

void rp_hints_get_stats(rp_hints *h, rp_hints_stats *out)
{
    pthread_mutex_lock(&h->mu);
    *out = h->st;
    pthread_mutex_unlock(&h->mu);
}
