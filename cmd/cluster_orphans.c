/*
 * cmd/cluster_orphans.c - the cluster-wide orphan sweep (`cairn admin orphans`, POST and GET
 * /admin/orphans; docs/storage.md, "Orphans on a cluster"): cells on the nodes' drives that no
 * record of any node names, left by an UploadPart whose node never came back, by a refused append
 * whose node was then killed, by a PUT whose writer died. Dry-run unless asked to delete.
 *
 * One sweep at a time, on a thread of its own with its own loop and RPC client, started by a
 * POST (?delete=1, ?grace=S); a GET shows the running or last sweep: its phase and a row per
 * node and drive. For every node X of the adopted layout and every drive of X, in pages:
 *   1. list: X lists the drive's blobs with their ages (GET /list/<drive>?age=1), each age
 *      measured by X's own clock as "seconds since the newest write to a segment holding the
 *      blob" (bs_list_aged: never older than the blob is). Up to BATCH blobs form a batch.
 *   2. mark, round one: every node of the layout is asked which of the batch's blob ids its
 *      records name (POST /meta/-/names: md_names_mark over every record kind that names cells:
 *      objects and versions, the cluster's multipart part and upload records, hints, garbage,
 *      UploadPart intents). The union is complete only when every node answers: any failure
 *      ends the sweep.
 *   3. verdicts (obj/ob_orphan.c): named, young (unnamed, last written less than the grace
 *      before the listing, which comes before the mark began), or a candidate.
 *   4. mark, round two: the candidates are asked about again, of every node; one named now is
 *      kept (its name moved between records while round one ran). The rest are orphans.
 *   5. with delete, the cluster is checked again and each orphan deleted through its node's
 *      normal blob delete (DELETE /chunk: bs_delete, synced).
 * Before the first page and before every delete the sweep refuses unless every node of the
 * layout is in a fresh member list and reports serving the layout's epoch, no live member has a
 * handoff on, and no live member is outside the layout (co_layout_status): a node down, or up but
 * not asked, holds records no one else may hold (hints, garbage, intents), and in a handoff
 * records move between nodes. A node of the layout that never comes back must be removed from
 * it (and the handoff settle) before a sweep can run; its cells elsewhere are then reclaimed.
 *
 * Why the grace is enough against a body being written: a writer appends its cells, then writes
 * its record within its RPC timeouts (seconds); a blob last written more than the grace (at
 * least an hour by default) before the listing either has its record on a node by then, where
 * both rounds find it, or never will (the writer gave up). A heal writes new cells under the
 * record's blob id (named); an UploadPart records its intent before its first cell (named).
 * Matching is by blob id, so a cell is kept while any record anywhere names its body.
 *
 * Memory: one batch (ids, sizes, ages, verdicts: about 40 bytes per blob) whatever the drive's
 * size. Cost: each page of a mark round is a full walk of every node's records.
 *
 * Threading: the sweep thread owns its loop, client and batch; the admin route (a gateway worker)
 * only takes the mutex to start a sweep or copy the status. A server stopping ends the sweep
 * before its next page, after the calls in flight (a mark walks a node's records: seconds, at
 * most the client's 120 s I/O timeout).
 */
#include "cmd.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cm_log.h"
#include "cm_util.h"
#include "co_layout.h"
#include "nd.h"
#include "ob_orphan.h"

#define MOD "orphans"
#define BATCH 64000 /* blobs per mark batch (80 list pages; <= ND_NAMES_MAX; about 2.6 MB) */
#define DELETES_IN_FLIGHT 8
#define MIN_DEFAULT_GRACE_S 3600
#define MAX_GRACE_S (30 * 86400)
#define MAX_ROWS 512

/* A batch of bs_id is handed to the names call as the 16-byte ids it holds. */
_Static_assert(sizeof(bs_id) == 16, "bs_id is its 16 bytes");

typedef struct {
    char node[PL_NAME_MAX];
    uint32_t drive;
    uint64_t blobs, named, young, orphans, orphan_bytes, deleted;
    int skipped; /* the node answered that the drive is offline: not swept */
} orphan_row;

struct cmd_orphans {
    cmd_repair_config cfg; /* strings borrowed from the owning cmd_repair */
    pthread_mutex_t mu;
    pthread_t thread;
    int joinable;
    /* under mu */
    int running, stop, del;
    int64_t grace_s, started_ms, ended_ms;
    uint64_t seq;
    char phase[200], error[512];
    orphan_row rows[MAX_ROWS];
    size_t nrows;
};

/* The sweep thread's working state. */
typedef struct {
    cmd_orphans *o;
    struct event_base *base;
    nd_client *cl;
    pl_topology *t;
    char (*hosts)[PL_ADDR_MAX];
    nd_peer *peers; /* per node of t; id NULL for a removed node */
    int del;
    int64_t grace_s;
    /* one batch */
    bs_id *ids;
    uint64_t *sizes;
    int64_t *ages;
    uint8_t *named, *verdict, *named2;
    uint8_t (*cand)[16];
    size_t n;
    /* the calls in flight */
    int pending;
    cm_err err;
    char why[512];
    int more;
    int list_offline; /* the last listing failed: the drive is offline on its node */
} sweep;

/* "<verb> the cells of node N drive D" */
static void set_phase(cmd_orphans *o, const char *verb, const char *node, uint32_t drive)
{
    pthread_mutex_lock(&o->mu);
    snprintf(o->phase, sizeof(o->phase), "%s the cells of node %s drive %u", verb, node, drive);
    pthread_mutex_unlock(&o->mu);
}

/* A failed call: the first failure is kept as the reason. */
static void failed(sweep *w, cm_err e, const char *node, const char *what, const char *msg)
{
    if (w->err != CM_OK)
        return;
    w->err = e;
    int extra = msg && *msg && strcmp(msg, cm_err_str(e)) != 0;
    snprintf(w->why, sizeof(w->why), "%s of node %s failed: %s%s%s", what, node, cm_err_str(e),
             extra ? ": " : "", extra ? msg : "");
}

static void wait_all(sweep *w)
{
    while (w->pending > 0)
        event_base_loop(w->base, EVLOOP_ONCE);
}

/* ---- the cluster's state ---- */

/* 0 when every node of the layout is live and serves its epoch with no handoff; else the reason
 * in why. */
static int cluster_ready(cmd_orphans *o, const pl_topology *t, char *why, size_t cap)
{
    uint8_t *dead = calloc((size_t)(t->nnodes ? t->nnodes : 1), 1);
    co_layout_status *st = malloc(sizeof(*st));
    int bad = 1;
    if (!dead || !st) {
        snprintf(why, cap, "out of memory");
        goto done;
    }
    if (!cmd_dead_nodes(o->cfg.layout, t, dead)) {
        snprintf(why, cap,
                 "the member list is stale (etcd unreachable?): cannot tell that every "
                 "node is up");
        goto done;
    }
    co_layout_get_status(o->cfg.layout, st);
    for (int j = 0; j < st->nseen && j < CO_LAYOUT_MEMBERS; j++) {
        if (!st->seen[j].live)
            continue;
        if (st->seen[j].handoff) {
            snprintf(why, cap, "node %s is in a layout handoff: records move between nodes",
                     st->seen[j].id);
            goto done;
        }
        int at = pl_topology_find(t, st->seen[j].id);
        if (at < 0 || t->nodes[at].state == PL_REMOVED) {
            snprintf(why, cap,
                     "node %s is up but not in the layout: it may hold records (hints, intents, "
                     "garbage) no node of the layout holds; stop it or add it first",
                     st->seen[j].id);
            goto done;
        }
    }
    for (int i = 0; i < t->nnodes; i++) {
        if (t->nodes[i].state == PL_REMOVED)
            continue;
        if (dead[i]) {
            snprintf(why, cap, "node %s of the layout is down: its records may name cells",
                     t->nodes[i].id);
            goto done;
        }
        int found = 0;
        for (int j = 0; j < st->nseen && j < CO_LAYOUT_MEMBERS && !found; j++) {
            if (strcmp(st->seen[j].id, t->nodes[i].id) != 0)
                continue;
            found = 1;
            if (st->seen[j].epoch != t->epoch) {
                snprintf(why, cap,
                         "node %s serves layout epoch %" PRIu64 ", not %" PRIu64
                         ": a layout change is under way",
                         t->nodes[i].id, st->seen[j].epoch, t->epoch);
                goto done;
            }
        }
        if (!found) {
            snprintf(why, cap, "node %s has not reported its layout yet", t->nodes[i].id);
            goto done;
        }
    }
    bad = 0;
done:
    free(dead);
    free(st);
    return bad;
}

/* ---- the calls ---- */

static void list_done(void *arg, const nd_result *res)
{
    sweep *w = arg;
    w->pending--;
    if (res->err != CM_OK) {
        w->err = res->err;
        /* the node's own answer (a status), not a transport failure */
        w->list_offline = res->err == CM_ERR_UNAVAILABLE && res->status != 0;
        snprintf(w->why, sizeof(w->why), "listing failed: %s%s%s", cm_err_str(res->err),
                 *res->message ? ": " : "", res->message);
        return;
    }
    for (size_t i = 0; i < res->nlist && w->n < BATCH; i++) {
        w->ids[w->n] = res->list[i].id;
        w->sizes[w->n] = res->list[i].size;
        w->ages[w->n] = res->list[i].age_s;
        w->n++;
    }
    w->more = res->more && res->nlist > 0;
}

typedef struct {
    sweep *w;
    int node;
    uint8_t *into;
    size_t n;
} names_call;

static void names_done(void *arg, const nd_result *res)
{
    names_call *c = arg;
    sweep *w = c->w;
    w->pending--;
    if (res->err == CM_OK && res->body_len != c->n) {
        failed(w, CM_ERR_INTERNAL, w->peers[c->node].id, "the mark", "a short answer");
        return;
    }
    if (res->err != CM_OK) {
        failed(w, res->err, w->peers[c->node].id, "the mark", res->message);
        return;
    }
    for (size_t i = 0; i < c->n; i++)
        c->into[i] |= res->body[i] != 0;
}

/* One mark round: into[i] = 1 when any node's records name ids[i]. Every node must answer. */
static cm_err mark_round(sweep *w, const uint8_t (*ids)[16], size_t n, uint8_t *into)
{
    names_call *calls = calloc((size_t)w->t->nnodes, sizeof(*calls));
    if (!calls)
        return CM_ERR_NOMEM;
    memset(into, 0, n);
    for (int i = 0; i < w->t->nnodes && w->err == CM_OK; i++) {
        if (!w->peers[i].id)
            continue;
        calls[i] = (names_call){w, i, into, n};
        cm_err e = nd_meta_names(w->cl, &w->peers[i], ids, n, names_done, &calls[i]);
        if (e == CM_OK)
            w->pending++;
        else
            failed(w, e, w->peers[i].id, "the mark", NULL);
    }
    wait_all(w);
    free(calls);
    return w->err;
}

typedef struct {
    sweep *w;
    uint64_t *deleted;
} del_call;

static void del_done(void *arg, const nd_result *res)
{
    del_call *c = arg;
    c->w->pending--;
    if (res->err == CM_OK || res->err == CM_ERR_NOTFOUND)
        (*c->deleted)++;
    else if (c->w->err == CM_OK) {
        c->w->err = res->err;
        snprintf(c->w->why, sizeof(c->w->why), "a delete failed: %s", cm_err_str(res->err));
    }
}

/* Delete the batch's orphans on node x's drive, DELETES_IN_FLIGHT at a time. */
static cm_err delete_orphans(sweep *w, int x, uint32_t drive, uint64_t *deleted)
{
    del_call c = {w, deleted};
    for (size_t i = 0; i < w->n && w->err == CM_OK; i++) {
        if (w->verdict[i] != OB_ORPHAN_ORPHAN)
            continue;
        while (w->pending >= DELETES_IN_FLIGHT)
            event_base_loop(w->base, EVLOOP_ONCE);
        cm_err e = nd_delete(w->cl, &w->peers[x], drive, &w->ids[i], del_done, &c);
        if (e == CM_OK)
            w->pending++;
        else
            failed(w, e, w->peers[x].id, "a delete", NULL);
    }
    wait_all(w);
    return w->err;
}

/* ---- one drive ---- */

/* The batch's verdicts: two mark rounds (the second over the candidates only). */
static cm_err judge_batch(sweep *w, size_t *orphans)
{
    *orphans = 0;
    cm_err e = mark_round(w, (const uint8_t(*)[16])w->ids, w->n, w->named);
    if (e != CM_OK)
        return e;
    size_t cand = ob_orphan_first(w->ages, w->named, w->n, w->grace_s, w->verdict);
    if (cand == 0)
        return CM_OK;
    for (size_t i = 0, j = 0; i < w->n; i++)
        if (w->verdict[i] == OB_ORPHAN_CANDIDATE)
            memcpy(w->cand[j++], w->ids[i].b, 16);
    if ((e = mark_round(w, (const uint8_t(*)[16])w->cand, cand, w->named2)) != CM_OK)
        return e;
    *orphans = ob_orphan_second(w->verdict, w->n, w->named2);
    return CM_OK;
}

static void add_counts(cmd_orphans *o, orphan_row *row, const sweep *w, uint64_t deleted)
{
    pthread_mutex_lock(&o->mu);
    row->blobs += w->n;
    for (size_t i = 0; i < w->n; i++) {
        row->named += w->verdict[i] == OB_ORPHAN_NAMED;
        row->young += w->verdict[i] == OB_ORPHAN_YOUNG;
        if (w->verdict[i] == OB_ORPHAN_ORPHAN) {
            row->orphans++;
            row->orphan_bytes += w->sizes[i];
        }
    }
    row->deleted += deleted;
    pthread_mutex_unlock(&o->mu);
}

static cm_err sweep_drive(sweep *w, int x, uint32_t drive, orphan_row *row)
{
    cmd_orphans *o = w->o;
    bs_id after;
    int has_after = 0;
    for (int more = 1; more;) {
        pthread_mutex_lock(&o->mu);
        int stop = o->stop;
        pthread_mutex_unlock(&o->mu);
        if (stop) {
            snprintf(w->why, sizeof(w->why), "stopped (the server shuts down)");
            return CM_ERR_CLOSED;
        }
        w->n = 0;
        while (more && w->n + ND_LIST_AGED_MAX <= BATCH && w->err == CM_OK) {
            w->more = 0;
            cm_err e = nd_list_aged(w->cl, &w->peers[x], drive, has_after ? &after : NULL,
                                    ND_LIST_AGED_MAX, list_done, w);
            if (e != CM_OK)
                failed(w, e, w->peers[x].id, "the listing", NULL);
            else
                w->pending++;
            wait_all(w);
            more = w->more;
            if (w->n > 0)
                after = w->ids[w->n - 1], has_after = 1;
        }
        if (w->err != CM_OK)
            return w->err;
        if (w->n == 0)
            break;
        set_phase(o, "marking", w->peers[x].id, drive);
        size_t orphans;
        cm_err e = judge_batch(w, &orphans);
        uint64_t deleted = 0;
        if (e == CM_OK && orphans > 0 && w->del) {
            if (cluster_ready(o, w->t, w->why, sizeof(w->why)) != 0)
                return w->err = CM_ERR_UNAVAILABLE;
            e = delete_orphans(w, x, drive, &deleted);
        }
        if (e != CM_OK)
            return e;
        add_counts(o, row, w, deleted);
        set_phase(o, "listing", w->peers[x].id, drive);
    }
    return CM_OK;
}

/* ---- the sweep ---- */

static cm_err sweep_setup(sweep *w)
{
    cmd_orphans *o = w->o;
    nd_client_config cc = {0};
    cc.node_id = o->cfg.node_id;
    cc.secret = o->cfg.secret;
    cc.secret_len = o->cfg.secret_len;
    cc.faults = o->cfg.faults;
    cc.net.io_timeout_ms = 120000; /* a mark walks every record of the node it asks */
    cc.net.tls = o->cfg.tls;
    cm_err e = co_layout_current(o->cfg.layout, &w->t, NULL);
    if (e != CM_OK || !w->t || w->t->nnodes == 0) {
        snprintf(w->why, sizeof(w->why), "no layout adopted yet");
        return e != CM_OK ? e : CM_ERR_UNAVAILABLE;
    }
    size_t nn = (size_t)w->t->nnodes;
    w->hosts = calloc(nn, sizeof(*w->hosts));
    w->peers = calloc(nn, sizeof(*w->peers));
    w->ids = malloc(BATCH * sizeof(*w->ids));
    w->sizes = malloc(BATCH * sizeof(*w->sizes));
    w->ages = malloc(BATCH * sizeof(*w->ages));
    w->named = malloc(BATCH);
    w->named2 = malloc(BATCH);
    w->verdict = malloc(BATCH);
    w->cand = malloc(BATCH * sizeof(*w->cand));
    if (!w->hosts || !w->peers || !w->ids || !w->sizes || !w->ages || !w->named || !w->named2 ||
        !w->verdict || !w->cand || !(w->base = event_base_new()))
        return CM_ERR_NOMEM;
    if ((e = nd_client_new(w->base, &cc, &w->cl)) != CM_OK)
        return e;
    for (size_t i = 0; i < nn; i++) {
        const pl_node *pn = &w->t->nodes[i];
        if (pn->state == PL_REMOVED)
            continue;
        w->peers[i] = (nd_peer){pn->id, w->hosts[i], 0, w->t->epoch};
        if (nd_addr_parse(pn->addr, w->hosts[i], sizeof(w->hosts[i]), &w->peers[i].port) != CM_OK) {
            snprintf(w->why, sizeof(w->why), "node %s has a bad address %s", pn->id, pn->addr);
            return CM_ERR_INVAL;
        }
    }
    return CM_OK;
}

static void sweep_free(sweep *w)
{
    nd_client_free(w->cl); /* calls still running end (none: every step waited) */
    if (w->base)
        event_base_free(w->base);
    pl_topology_free(w->t);
    free(w->hosts);
    free(w->peers);
    free(w->ids);
    free(w->sizes);
    free(w->ages);
    free(w->named);
    free(w->named2);
    free(w->verdict);
    free(w->cand);
}

/* Every node's drives, one after another. */
static cm_err sweep_all(sweep *w)
{
    cmd_orphans *o = w->o;
    cm_err e = CM_OK;
    for (int x = 0; e == CM_OK && x < w->t->nnodes; x++) {
        const pl_node *pn = &w->t->nodes[x];
        if (pn->state == PL_REMOVED)
            continue;
        for (int d = 0; e == CM_OK && d < pn->ndrives; d++) {
            pthread_mutex_lock(&o->mu);
            orphan_row *row = o->nrows < MAX_ROWS ? &o->rows[o->nrows++] : NULL;
            if (row) {
                memset(row, 0, sizeof(*row));
                snprintf(row->node, sizeof(row->node), "%s", pn->id);
                row->drive = pn->drives[d].id;
            }
            pthread_mutex_unlock(&o->mu);
            if (!row) {
                snprintf(w->why, sizeof(w->why), "more than %d drives", MAX_ROWS);
                return CM_ERR_TOOBIG;
            }
            set_phase(o, "listing", pn->id, pn->drives[d].id);
            w->list_offline = 0;
            e = sweep_drive(w, x, pn->drives[d].id, row);
            if (e != CM_OK && w->list_offline) { /* nothing there can be read or deleted */
                CM_WARN(MOD, "node %s drive %u: %s; not swept", pn->id, row->drive, w->why);
                pthread_mutex_lock(&o->mu);
                row->skipped = 1;
                pthread_mutex_unlock(&o->mu);
                w->err = e = CM_OK;
                w->why[0] = 0;
                continue;
            }
            if (e == CM_OK)
                CM_INFO(MOD,
                        "node %s drive %u: %" PRIu64 " cells, %" PRIu64 " orphans (%" PRIu64
                        " bytes), %" PRIu64 " young unnamed, %" PRIu64 " deleted",
                        pn->id, row->drive, row->blobs, row->orphans, row->orphan_bytes, row->young,
                        row->deleted);
        }
    }
    return e;
}

static void *sweep_main(void *arg)
{
    cmd_orphans *o = arg;
    sweep w;
    memset(&w, 0, sizeof(w));
    w.o = o;
    pthread_mutex_lock(&o->mu);
    w.del = o->del;
    w.grace_s = o->grace_s;
    pthread_mutex_unlock(&o->mu);
    cm_err e = sweep_setup(&w);
    if (e == CM_OK && cluster_ready(o, w.t, w.why, sizeof(w.why)) != 0)
        e = CM_ERR_UNAVAILABLE;
    if (e == CM_OK)
        e = sweep_all(&w);
    if (e != CM_OK && !w.why[0])
        snprintf(w.why, sizeof(w.why), "%s", cm_err_str(e));
    if (e != CM_OK)
        CM_WARN(MOD, "orphan sweep ended early: %s", w.why);
    else
        CM_INFO(MOD, "orphan sweep done (%s)", w.del ? "orphans deleted" : "dry run");
    sweep_free(&w);
    pthread_mutex_lock(&o->mu);
    o->running = 0;
    o->ended_ms = cm_now_ms();
    snprintf(o->error, sizeof(o->error), "%s", e == CM_OK ? "" : w.why);
    snprintf(o->phase, sizeof(o->phase), "%s", e == CM_OK ? "done" : "failed");
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* ---- start, stop, status ---- */

cm_err cmd_orphans_new(const cmd_repair_config *cfg, cmd_orphans **out)
{
    cmd_orphans *o = calloc(1, sizeof(*o));
    if (!o)
        return CM_ERR_NOMEM;
    o->cfg = *cfg;
    pthread_mutex_init(&o->mu, NULL);
    *out = o;
    return CM_OK;
}

void cmd_orphans_free(cmd_orphans *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->stop = 1; /* the sweep ends before its next page */
    pthread_mutex_unlock(&o->mu);
    if (o->joinable)
        pthread_join(o->thread, NULL);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

/* A u64 parameter of a query string: 1 found, 0 absent, -1 malformed. */
static int query_num(const char *q, const char *name, int64_t *v)
{
    size_t n = strlen(name);
    for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            char *end;
            const char *s = p + n + 1;
            if (*s < '0' || *s > '9')
                return -1;
            long long x = strtoll(s, &end, 10);
            if ((*end && *end != '&') || x < 0)
                return -1;
            *v = x;
            return 1;
        }
    }
    return 0;
}

static int start(cmd_orphans *o, const char *query, char *out, size_t cap)
{
    int64_t del = 0, grace = CM_MAX(o->cfg.gc_grace_s, (int64_t)MIN_DEFAULT_GRACE_S);
    if (query_num(query, "delete", &del) < 0 || del > 1 || query_num(query, "grace", &grace) < 0 ||
        grace > MAX_GRACE_S)
        return snprintf(out, cap,
                        "{\"error\":\"InvalidArgument\",\"message\":\"delete=0|1, grace=0..%d "
                        "seconds\"}\n",
                        MAX_GRACE_S),
               400;
    pthread_mutex_lock(&o->mu);
    if (o->running) {
        pthread_mutex_unlock(&o->mu);
        return snprintf(out, cap,
                        "{\"error\":\"Conflict\",\"message\":\"an orphan sweep is running on "
                        "this node\"}\n"),
               409;
    }
    if (o->joinable) {
        pthread_join(o->thread, NULL); /* the last one ended: running is 0 */
        o->joinable = 0;
    }
    o->running = 1, o->stop = 0, o->del = (int)del;
    o->grace_s = grace;
    o->started_ms = cm_now_ms(), o->ended_ms = 0;
    o->seq++;
    o->nrows = 0;
    o->error[0] = 0;
    snprintf(o->phase, sizeof(o->phase), "starting");
    if (pthread_create(&o->thread, NULL, sweep_main, o) != 0) {
        o->running = 0;
        pthread_mutex_unlock(&o->mu);
        return snprintf(out, cap, "{\"error\":\"InternalError\",\"message\":\"no thread\"}\n"), 500;
    }
    o->joinable = 1;
    uint64_t seq = o->seq;
    pthread_mutex_unlock(&o->mu);
    CM_INFO(MOD, "orphan sweep %" PRIu64 " started (%s, grace %" PRId64 " s)", seq,
            del ? "deleting" : "dry run", grace);
    return snprintf(out, cap, "{\"started\":true,\"sweep\":%" PRIu64 ",\"grace_s\":%" PRId64 "}\n",
                    seq, grace),
           202;
}

static int status(cmd_orphans *o, char *out, size_t cap)
{
    json_t *rows = json_array();
    pthread_mutex_lock(&o->mu);
    for (size_t i = 0; i < o->nrows; i++) {
        const orphan_row *r = &o->rows[i];
        json_array_append_new(
            rows, json_pack("{s:s,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "node", r->node, "drive",
                            (int)r->drive, "cells", (json_int_t)r->blobs, "named",
                            (json_int_t)r->named, "young", (json_int_t)r->young, "orphans",
                            (json_int_t)r->orphans, "orphan_bytes", (json_int_t)r->orphan_bytes,
                            "deleted", (json_int_t)r->deleted, "offline", r->skipped));
    }
    json_t *doc = json_pack("{s:{s:I,s:b,s:b,s:I,s:I,s:I,s:s,s:s,s:o}}", "orphans", "sweep",
                            (json_int_t)o->seq, "running", o->running, "delete", o->del, "grace_s",
                            (json_int_t)o->grace_s, "started_ms", (json_int_t)o->started_ms,
                            "ended_ms", (json_int_t)o->ended_ms, "phase",
                            o->seq ? o->phase : "none", "error", o->error, "rows", rows);
    pthread_mutex_unlock(&o->mu);
    size_t n = doc ? json_dumpb(doc, out, cap - 1, JSON_COMPACT) : 0;
    json_decref(doc);
    if (n == 0 || n >= cap)
        return snprintf(out, cap, "{\"error\":\"TooLarge\"}\n"), 500;
    out[n] = 0;
    return 200;
}

int cmd_orphans_admin(cmd_orphans *o, int post, const char *query, char *out, size_t cap)
{
    if (!o)
        return snprintf(out, cap,
                        "{\"error\":\"NoSweep\",\"message\":\"no orphan sweep on this "
                        "node\"}\n"),
               503;
    return post ? start(o, query ? query : "", out, cap) : status(o, out, cap);
}
