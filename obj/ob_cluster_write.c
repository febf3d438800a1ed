/*
 * ob_cluster_write.c - a body written across the nodes (the cluster side of ob_writer; ob.h,
 * docs/chunks.md "The S3 data path across nodes", "Handoff").
 *
 * Two sides. The worker (ob_cw_write / ob_cw_finish, the gateway's thread) copies payload into a
 * stripe buffer - the one copy of the write path, as on a single node - encodes parity next to it
 * and posts the stripe to the loop. The loop sends each live column's cell of the stripe as an
 * append that refers to the buffer (evbuffer reference: no copy; the local backend's worker hands
 * the referenced bytes to the blobstore, the remote one to the socket).
 *
 * Window: stripe s lives in ring[s % window]; the worker may fill stripe s only when
 * s < released + window, where released is the first stripe some live column still needs, so at
 * most `window` stripe buffers exist per body (the worker blocks for room: backpressure; a
 * column dropped mid-append keeps the buffer its call reads, and the slot gets a new one). A
 * feeder on an event loop does not block: write_some answers CM_AGAIN and it is told of room by
 * an event of its own that the loop activates under mu (ob_cw_room_event: the writer's room
 * notice, ob_writer_on_room, or a compressor whose frames leave from its loop's event). The
 * last full stripe is held back until more payload or finish comes, so that the final append of
 * every column carries OB_CHUNK_SYNC (no separate seal).
 *
 * Columns: appends to one chunk must come in order (the chunk's offset contract), so a column has
 * at most one append in flight; the columns run independently, so a fast column may be up to
 * `window` stripes ahead of a slow one while the worker encodes the next. The columns of one node
 * at the same stripe go in one call (send_cells: ob_chunk_append_parts, one answer for them all);
 * a node that refuses such a call as malformed (it predates them) gets the body's cells alone.
 *
 * Failures (per body, since a layout has one (node, drive) per column): a column whose FIRST
 * append fails moves to a handoff drive (pl_handoff with its node marked dead) and stripe 0 is
 * sent there again - it is still buffered, since released cannot pass a column that completed
 * nothing; a column that fails later, or whose handoff fails too, is dropped (its chunk deleted at
 * the end, drives[i] = 0xFF). A body with an intent (ob_writer_track_intent: a part on a cluster
 * node) holds a handed-off column, busy, until the intent names its new place (gate). The body
 * fails when fewer than k+1 columns stay live. finish waits for every live column's last synced
 * append; a worker that waited write_wait_ms (for room or for that answer) has the loop drop the
 * columns whose append is that old (k+1 kept), so a silent node costs a body write_wait_ms, not the
 * RPC timeout.
 *
 * Threading: mu guards posted, released, the ring, err and the end flags; columns and cells are
 * the loop's. The worker gets its answer (ack) as soon as the live columns are done; the loop
 * frees the body (release) once every call ended, no posted pump is pending and the worker is
 * gone (after finish or a drop), deleting first the chunks no layout names (dropped columns,
 * targets left for a handoff, everything of a failed or dropped body), so no append lands after
 * its delete.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cm_bufpool.h"
#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"
#include "ec.h"
#include "ob_cl.h"

#define MOD "obj"

typedef struct {
    ob_cw *w;
    int i;
} cw_slot;

struct ob_cw {
    ob_cluster *c;
    ob_view *v;
    bs_id id;
    int k, m, n, window;
    uint32_t cell;
    size_t sbytes, sbuf; /* payload of a full stripe; bytes of a stripe buffer */
    ec_codec *codec;
    /* loop side */
    pl_cell cells[PL_MAX_CELLS];
    ob_chunks *b[PL_MAX_CELLS];
    uint32_t drive[PL_MAX_CELLS];
    int live[PL_MAX_CELLS], touched[PL_MAX_CELLS], handed[PL_MAX_CELLS], busy[PL_MAX_CELLS];
    uint64_t next[PL_MAX_CELLS]; /* the column's next stripe to send */
    cw_slot slot[PL_MAX_CELLS];
    long long busy_since[PL_MAX_CELLS];
    pl_cell junk[2 * PL_MAX_CELLS]; /* targets a column left after writing: deleted at the end */
    int njunk;
    int acked; /* the worker has its answer; ok: it was the layout (else an error) */
    int ok;
    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t **ring;
    uint32_t *ring_clen;
    uint64_t posted, released, size;
    int finishing, ended; /* ended: the answer (err, lay) is ready for the worker */
    int gone;             /* the worker no longer touches w (after finish, or a drop) */
    int stall;            /* the worker waited write_wait_ms: drop the columns holding it up */
    int posts;            /* pumps posted to the loop and not run yet: w lives until 0 */
    struct event *wake;   /* ob_cw_room_event: activated (and cleared) once the window has room */
    uint8_t *sending[PL_MAX_CELLS]; /* the stripe buffer each column's append in flight refers to */
    uint8_t *orphans[PL_MAX_CELLS]; /* buffers a dropped straggler still sends from: freed last */
    int norphans;
    /* loop side: the call led by column i carries gn[i] columns, gcols[i][0..gn[i]) with i
     * first (a node's columns at one stripe go together: ob_chunk_append_parts); gn is 0 while
     * column i leads no call.
     * solo: a node refused such a call as malformed (one that predates it): cells go alone. */
    int gcols[PL_MAX_CELLS][ND_READ_PARTS];
    int gn[PL_MAX_CELLS];
    int solo;
    /* loop side: the stall timer of a writer waiting through its wake event (no thread waits) */
    struct event *timer;
    int timer_armed;
    cm_err err;
    md_layout lay;
    /* the body's intent (ob_writer_track_intent), set before the first write: a handed-off
     * column's new place goes into it before the column's first append there */
    md_store *imd;
    uint64_t ihlc;
    /* worker side */
    uint64_t nfill; /* the stripe being filled (or held); changed under mu (window_full) */
    uint8_t *cur;
    size_t fill;
    int held; /* stripe nfill - 1 is full and not posted yet */
    size_t nbufs;
};

static int live_count(const ob_cw *w)
{
    int n = 0;
    for (int i = 0; i < w->n; i++)
        n += w->live[i];
    return n;
}

static void cw_free(ob_cw *w)
{
    if (w->timer)
        event_free(w->timer);
    /* Every call has ended: nothing refers to the buffers any more. */
    for (int s = 0; w->ring && s < w->window; s++)
        cm_bufpool_put_shared(w->ring[s], w->sbuf);
    for (int i = 0; i < w->norphans; i++)
        cm_bufpool_put_shared(w->orphans[i], w->sbuf);
    free(w->ring);
    free(w->ring_clen);
    ec_free(w->codec);
    ob_cl_view_put(w->v);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

cm_err ob_cw_new(ob_cluster *c, ob_cw **out)
{
    ob_view *v = ob_cl_view_get(c);
    if (!v)
        return CM_ERR_UNAVAILABLE; /* no layout adopted yet */
    ob_cw *w = calloc(1, sizeof(*w));
    if (!w) {
        ob_cl_view_put(v);
        return CM_ERR_NOMEM;
    }
    w->c = c;
    w->v = v;
    w->k = v->k;
    w->m = v->m;
    w->n = v->k + v->m;
    w->window = c->cfg.window;
    w->cell = ob_store_cell_size(c->st);
    w->sbytes = (size_t)w->k * w->cell;
    w->sbuf = (size_t)w->n * w->cell;
    pthread_condattr_t ca;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->ring = calloc((size_t)w->window, sizeof(*w->ring));
    w->ring_clen = calloc((size_t)w->window, sizeof(*w->ring_clen));
    cm_err e = w->ring && w->ring_clen ? bs_id_new(&w->id) : CM_ERR_NOMEM;
    if (e == CM_OK)
        e = ec_new(w->k, w->m, &w->codec);
    if (e == CM_OK)
        e = pl_place(v->homes, w->id.b, w->k, w->m, w->cells);
    uint8_t *dead = e == CM_OK ? calloc((size_t)v->t->nnodes + 1, 1) : NULL;
    int moved = 0;
    if (dead) { /* homes on nodes that failed lately (or down in the layout) start on handoff */
        ob_cl_dead_nodes(v, dead);
        if (pl_handoff(v->homes, w->id.b, w->k, w->m, w->cells, dead, &moved) != CM_OK)
            CM_WARN(MOD, "some homes of a new body have no handoff drive");
        free(dead);
    }
    for (int i = 0; e == CM_OK && i < w->n; i++) {
        w->slot[i] = (cw_slot){w, i};
        w->b[i] = ob_resolve_cell(v->r, &w->cells[i], &w->drive[i]);
        w->live[i] = w->b[i] != NULL;
    }
    if (e == CM_OK && live_count(w) < ob_min_cells(w->k, w->m))
        e = CM_ERR_UNAVAILABLE;
    if (e != CM_OK) {
        cw_free(w);
        return e;
    }
    atomic_fetch_add(&c->handoffs, (unsigned long long)moved);
    atomic_fetch_add(&c->bodies, 1);
    ob_cl_op_begin(c);
    *out = w;
    return CM_OK;
}

void ob_cw_plan(const ob_cw *w, md_layout *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->blob, w->id.b, sizeof(out->blob));
    out->cell_size = w->cell;
    out->k = (uint8_t)w->k;
    out->m = (uint8_t)w->m;
    out->epoch = w->v->t->epoch;
    memset(out->drives, PL_NONE, sizeof(out->drives));
    for (int i = 0; i < w->n; i++) { /* the columns with a place (as ack's layout names them) */
        out->nodes[i] = w->cells[i].node;
        if (w->live[i])
            out->drives[i] = (uint8_t)w->cells[i].drive;
    }
}

void ob_cw_track_intent(ob_cw *w, md_store *md, uint64_t hlc)
{
    w->imd = md;
    w->ihlc = hlc;
}

/* ---- loop side ---- */

static void arm_stall_timer(ob_cw *w, int gone);

static void update_shared(ob_cw *w);
static void pump(void *arg);

/* On the loop: column s->i's new place is in the intent; it may send there now. */
static void gate_open(void *arg)
{
    cw_slot *s = arg;
    s->w->busy[s->i] = 0;
    update_shared(s->w);
    pump(s->w);
}

/* On the store's commit thread: the intent names the column's new place (or could not). */
static void gate_done(void *arg, cm_err e)
{
    cw_slot *s = arg;
    if (e != CM_OK) /* sent anyway: a kill before the record would leave that cell (a leak) */
        CM_WARN(MOD, "cell %d of a body: its handoff is not in the part's intent: %s", s->i,
                cm_err_str(e));
    if (ob_cl_post(s->w->c, gate_open, s) != CM_OK) /* the loop is stopping: the column stays */
        CM_ERROR(MOD, "cell %d of a body: its handoff could not resume", s->i);
}

/*
 * Column i was handed off: with an intent to keep true (ob_writer_track_intent), the column
 * sends nothing to its new place until the intent names it, or a kill in between would leave a
 * cell no intent names. Busy meanwhile: pump skips it, the worker's answer and release wait
 * for it (and a stalled writer may drop it, as any straggler). A writer whose worker is gone
 * sends nothing more: nothing to record.
 */
static void gate(ob_cw *w, int i)
{
    pthread_mutex_lock(&w->mu);
    int gone = w->gone;
    pthread_mutex_unlock(&w->mu);
    if (!w->imd || gone)
        return;
    w->busy[i] = 1;
    w->busy_since[i] = cm_monotonic_ms();
    if (md_intent_move_async(w->imd, w->ihlc, w->id.b, i, w->cells[i].node,
                             (uint8_t)w->cells[i].drive, gate_done, &w->slot[i]) != CM_OK) {
        CM_WARN(MOD, "cell %d of a body: its handoff could not be put in the part's intent", i);
        w->busy[i] = 0;
    }
}

/* The column's target failed: hand it off when nothing of it is durable yet, else drop it. */
static void column_failed(ob_cw *w, int i, cm_err why)
{
    ob_cluster *c = w->c;
    ob_cl_node_failed(c, w->v, w->cells[i].node, why);
    if (w->touched[i])
        w->junk[w->njunk++] = w->cells[i];
    w->touched[i] = 0;
    if (w->next[i] == 0 && !w->handed[i]) {
        pl_cell hc[PL_MAX_CELLS];
        uint8_t *dead = calloc((size_t)w->v->t->nnodes + 1, 1);
        uint32_t drive;
        memcpy(hc, w->cells, sizeof(hc));
        if (dead) {
            ob_cl_dead_nodes(w->v, dead);
            dead[w->cells[i].node] = 1;
            pl_handoff(w->v->homes, w->id.b, w->k, w->m, hc, dead, NULL);
            free(dead);
        }
        ob_chunks *b = hc[i].node != w->cells[i].node || hc[i].drive != w->cells[i].drive
                           ? ob_resolve_cell(w->v->r, &hc[i], &drive)
                           : NULL;
        w->handed[i] = 1;
        if (b) {
            CM_WARN(MOD, "cell %d of a body: node %u refused (%s), handed off to node %u drive %u",
                    i, w->cells[i].node, cm_err_str(why), hc[i].node, hc[i].drive);
            w->cells[i] = hc[i];
            w->b[i] = b;
            w->drive[i] = drive;
            atomic_fetch_add(&c->handoffs, 1);
            gate(w, i);
            return;
        }
    }
    CM_WARN(MOD, "cell %d of a body (node %u drive %u) dropped: %s", i, w->cells[i].node,
            w->cells[i].drive, cm_err_str(why));
    if (w->next[i] > 0)
        atomic_fetch_add(&c->cells_dropped, 1);
    w->live[i] = 0;
}

static int window_full(const ob_cw *w)
{
    return w->err == CM_OK && w->nfill >= w->released + (uint64_t)w->window;
}

/* Let the worker reuse buffers no live column needs any more; fail a body below k+1. */
static void update_shared(ob_cw *w)
{
    uint64_t rel = UINT64_MAX;
    for (int i = 0; i < w->n; i++)
        if (w->live[i])
            rel = CM_MIN(rel, w->next[i]);
    pthread_mutex_lock(&w->mu);
    if (rel == UINT64_MAX)
        rel = w->posted;
    if (rel > w->released)
        w->released = rel;
    if (w->err == CM_OK && live_count(w) < ob_min_cells(w->k, w->m)) {
        CM_ERROR(MOD, "body not stored: only %d cells live", live_count(w));
        w->err = CM_ERR_UNAVAILABLE;
    }
    pthread_cond_broadcast(&w->cv);
    /* under mu: once disarmed, the event's owner may free it */
    if (w->wake && !window_full(w)) {
        event_active(w->wake, EV_TIMEOUT, 1);
        w->wake = NULL;
    }
    pthread_mutex_unlock(&w->mu);
}

/* Column i has no call in flight any more. */
static void column_idle(ob_cw *w, int i)
{
    w->busy[i] = 0;
    pthread_mutex_lock(&w->mu);
    w->sending[i] = NULL;
    pthread_mutex_unlock(&w->mu);
}

/*
 * The call of the columns led by s->i (gcols, gn: one column, or a node's columns together)
 * ended: one answer for them all; each moves on a stripe, or fails (unless dropped meanwhile as a
 * straggler: its chunk goes at the end). A node that refused a call of several as malformed (it
 * predates them, and refuses before appending anything) gets the body's cells one by one.
 */
static void cells_done(void *arg, const ob_chunk_result *res)
{
    cw_slot *s = arg;
    ob_cw *w = s->w;
    int n = w->gn[s->i], cols[ND_READ_PARTS];
    memcpy(cols, w->gcols[s->i], sizeof(cols));
    w->gn[s->i] = 0;
    int refused = n > 1 && res->err == CM_ERR_INVAL && !w->solo;
    if (refused) {
        CM_WARN(MOD, "node %u refused a parts append (%s): the body's cells go one by one",
                w->cells[s->i].node, res->message ? res->message : "invalid");
        w->solo = 1;
    }
    for (int j = 0; j < n; j++) {
        int i = cols[j];
        column_idle(w, i);
        if (refused || !w->live[i])
            ;
        else if (res->err == CM_OK)
            w->next[i]++;
        else
            column_failed(w, i, res->err);
    }
    update_shared(w);
    pump(w);
}

/* Give the worker its answer: the layout of the live columns, or the error. */
static void ack(ob_cw *w)
{
    w->acked = 1;
    pthread_mutex_lock(&w->mu);
    if (w->err == CM_OK && live_count(w) < ob_min_cells(w->k, w->m))
        w->err = CM_ERR_UNAVAILABLE;
    w->ok = w->err == CM_OK;
    md_layout *l = &w->lay;
    memset(l, 0, sizeof(*l));
    memcpy(l->blob, w->id.b, sizeof(l->blob));
    l->size = w->size;
    l->cell_size = w->cell;
    l->k = (uint8_t)w->k;
    l->m = (uint8_t)w->m;
    l->epoch = w->v->t->epoch;
    memset(l->drives, PL_NONE, sizeof(l->drives));
    for (int i = 0; i < w->n; i++) {
        l->nodes[i] = w->cells[i].node;
        if (w->live[i])
            l->drives[i] = (uint8_t)w->cells[i].drive;
    }
    w->ended = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Every call ended and the worker is gone: delete what no layout names, free. */
static void release(ob_cw *w)
{
    pl_cell del[3 * PL_MAX_CELLS];
    int nd = 0;
    for (int i = 0; i < w->n; i++)
        if (w->touched[i] && (!w->live[i] || !w->ok))
            del[nd++] = w->cells[i];
    for (int j = 0; j < w->njunk; j++)
        del[nd++] = w->junk[j];
    if (nd > 0)
        ob_cl_delete_cells(w->c, w->v, &w->id, del, nd);
    ob_cluster *c = w->c;
    cw_free(w);
    ob_cl_op_end(c);
}

/*
 * The worker waited write_wait_ms for room or for its answer: drop the live columns whose append
 * has been in flight that long, oldest first, as long as k+1 stay live. Their calls still end
 * (the body lives until then); their chunks are deleted once they have.
 */
static void drop_stragglers(ob_cw *w)
{
    long long now = cm_monotonic_ms();
    for (;;) {
        int slow = -1;
        for (int i = 0; i < w->n; i++)
            if (w->live[i] && w->busy[i] && now - w->busy_since[i] >= w->c->cfg.write_wait_ms &&
                (slow < 0 || w->busy_since[i] < w->busy_since[slow]))
                slow = i;
        if (slow < 0 || live_count(w) - 1 < ob_min_cells(w->k, w->m))
            break;
        CM_WARN(MOD, "cell %d of a body (node %u drive %u) dropped: no answer in %d ms", slow,
                w->cells[slow].node, w->cells[slow].drive, w->c->cfg.write_wait_ms);
        ob_cl_node_failed(w->c, w->v, w->cells[slow].node, CM_ERR_TIMEOUT);
        atomic_fetch_add(&w->c->cells_dropped, 1);
        w->live[slow] = 0;
    }
    update_shared(w);
}

/* Cell i of a stripe buffer whose cells are clen long. */
static uint8_t *cell_at(const ob_cw *w, uint8_t *buf, uint32_t clen, int i)
{
    return buf + (i < w->k ? (size_t)i * clen : (size_t)w->k * w->cell + (size_t)(i - w->k) * clen);
}

/*
 * Send stripe next[cols[0]] of columns cols[0..n) (all at that stripe, all on one backend): one
 * append, or with n > 1 one append_parts call for them all (a node's cells of a stripe: the
 * node's work and the writer's per call halve at two cells a node).
 */
static void send_cells(ob_cw *w, const int *cols, int n, uint64_t posted, int finishing)
{
    int lead = cols[0];
    uint64_t s = w->next[lead];
    int slot = (int)(s % (uint64_t)w->window);
    uint32_t crcs[ND_READ_PARTS], drives[ND_READ_PARTS];
    pthread_mutex_lock(&w->mu);
    uint8_t *buf = w->ring[slot];
    uint32_t clen = w->ring_clen[slot];
    for (int j = 0; j < n; j++)
        w->sending[cols[j]] = buf;
    pthread_mutex_unlock(&w->mu);
    unsigned flags = finishing && s + 1 == posted ? OB_CHUNK_SYNC : 0;
    struct evbuffer *eb = evbuffer_new();
    cm_err e = eb ? CM_OK : CM_ERR_NOMEM;
    for (int j = 0; j < n && e == CM_OK; j++) {
        uint8_t *cell = cell_at(w, buf, clen, cols[j]);
        crcs[j] = cm_crc32c(0, cell, clen);
        drives[j] = w->drive[cols[j]];
        if (evbuffer_add_reference(eb, cell, clen, NULL, NULL) != 0)
            e = CM_ERR_NOMEM;
    }
    if (e == CM_OK && n == 1)
        e = ob_chunk_append(w->b[lead], drives[0], &w->id, s * w->cell, eb, crcs[0], flags,
                            cells_done, &w->slot[lead]);
    else if (e == CM_OK)
        e = ob_chunk_append_parts(w->b[lead], drives, n, &w->id, s * w->cell, eb, crcs, flags,
                                  cells_done, &w->slot[lead]);
    if (eb)
        evbuffer_free(eb);
    if (e == CM_OK) {
        w->gn[lead] = n;
        memcpy(w->gcols[lead], cols, (size_t)n * sizeof(int));
        if (n > 1)
            atomic_fetch_add(&w->c->cells_appended_batched, (unsigned long long)n);
        for (int j = 0; j < n; j++) {
            w->busy[cols[j]] = 1;
            w->busy_since[cols[j]] = cm_monotonic_ms();
            w->touched[cols[j]] = 1;
        }
        return;
    }
    for (int j = 0; j < n; j++) {
        column_idle(w, cols[j]);
        column_failed(w, cols[j], e);
    }
    update_shared(w);
}

/* Column i and the columns of its node ready for the same stripe, to go in one call (into
 * cols, i first; at most ND_READ_PARTS, and OB_CHUNK_MAX_IO bytes in all). Their number. */
static int partners(const ob_cw *w, int i, int *cols)
{
    int n = 0;
    cols[n++] = i;
    if (w->solo || !ob_chunk_has_append_parts(w->b[i]))
        return n;
    for (int j = i + 1; j < w->n && n < ND_READ_PARTS; j++)
        if (w->live[j] && !w->busy[j] && w->b[j] == w->b[i] && w->next[j] == w->next[i] &&
            (uint64_t)(n + 1) * w->cell <= OB_CHUNK_MAX_IO)
            cols[n++] = j;
    return n;
}

/* Send what the columns can take; answer the worker when the body is stored (or lost); free
 * it once its calls ended and the worker is gone. */
static void pump(void *arg)
{
    ob_cw *w = arg;
    pthread_mutex_lock(&w->mu);
    uint64_t posted = w->posted;
    int finishing = w->finishing, gone = w->gone, failed = w->err != CM_OK, stall = w->stall;
    int posts = w->posts;
    w->stall = 0;
    pthread_mutex_unlock(&w->mu);
    if (stall && !w->acked) {
        drop_stragglers(w);
        failed |= live_count(w) < ob_min_cells(w->k, w->m);
    }
    for (int again = 1; again && !gone && !failed;) {
        again = 0;
        for (int i = 0; i < w->n; i++) {
            if (!w->live[i] || w->busy[i] || w->next[i] >= posted)
                continue;
            int cols[ND_READ_PARTS], n = partners(w, i, cols);
            send_cells(w, cols, n, posted, finishing);
            for (int j = 0; j < n; j++) /* handed off at once: try the new target */
                again |= !w->busy[cols[j]] && w->live[cols[j]];
        }
    }
    int busy = 0, live_busy = 0, behind = 0;
    for (int i = 0; i < w->n; i++) {
        busy |= w->busy[i];
        live_busy |= w->busy[i] && w->live[i];
        behind |= w->live[i] && w->next[i] < posted;
    }
    pthread_mutex_lock(&w->mu);
    failed = w->err != CM_OK;
    pthread_mutex_unlock(&w->mu);
    if (!w->acked && !gone && finishing && (failed || (!live_busy && !behind)))
        ack(w);
    arm_stall_timer(w, gone);
    if (gone && !busy && posts == 0) /* a posted pump still refers to w until it ran */
        release(w);
}

/* A caller waits for room without a thread of its own (its wake event is armed; mu held). */
static int room_awaited(const ob_cw *w)
{
    return w->wake != NULL;
}

static void stall_fire(evutil_socket_t fd, short what, void *arg)
{
    ob_cw *w = arg;
    (void)fd;
    (void)what;
    w->timer_armed = 0;
    pthread_mutex_lock(&w->mu);
    int waiting = room_awaited(w) && !w->gone;
    pthread_mutex_unlock(&w->mu);
    if (waiting && !w->acked)
        drop_stragglers(w);
    pump(w);
}

/* A writer waiting through its wake event has no thread to notice a stall: a timer does it. */
static void arm_stall_timer(ob_cw *w, int gone)
{
    pthread_mutex_lock(&w->mu);
    int waiting = room_awaited(w);
    pthread_mutex_unlock(&w->mu);
    if (!waiting || gone || w->acked || w->timer_armed)
        return;
    if (!w->timer && !(w->timer = evtimer_new(w->c->base, stall_fire, w)))
        return;
    int ms = w->c->cfg.write_wait_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    w->timer_armed = evtimer_add(w->timer, &tv) == 0;
}

/* A pump the worker posted. */
static void pump_posted(void *arg)
{
    ob_cw *w = arg;
    pthread_mutex_lock(&w->mu);
    w->posts--;
    pthread_mutex_unlock(&w->mu);
    pump(w);
}

/* ---- worker side ---- */

/* Wake the loop for w (the caller holds no lock). */
static cm_err post_pump(ob_cw *w)
{
    pthread_mutex_lock(&w->mu);
    w->posts++;
    pthread_mutex_unlock(&w->mu);
    cm_err e = ob_cl_post(w->c, pump_posted, w);
    if (e != CM_OK) {
        pthread_mutex_lock(&w->mu);
        w->posts--;
        pthread_mutex_unlock(&w->mu);
    }
    return e;
}

/* Post the held stripe (stripe nfill - 1) to the loop. */
static cm_err post_held(ob_cw *w, int last)
{
    if (!w->held)
        return CM_OK;
    w->held = 0;
    pthread_mutex_lock(&w->mu);
    w->posted++;
    if (last)
        w->finishing = 1;
    pthread_mutex_unlock(&w->mu);
    return post_pump(w);
}

static int no_answer(const ob_cw *w)
{
    return !w->ended;
}

/*
 * Wait (mu held) while busy(w); every write_wait_ms of waiting, ask the loop to drop the columns
 * holding the body up (drop_stragglers), so a silent node delays a body by that much, not by the
 * RPC timeout.
 */
static void wait_while(ob_cw *w, int (*busy)(const ob_cw *w))
{
    long long due = cm_monotonic_ms() + w->c->cfg.write_wait_ms;
    while (busy(w)) {
        struct timespec ts;
        long long now = cm_monotonic_ms();
        if (now >= due) {
            w->stall = 1;
            w->posts++;
            pthread_mutex_unlock(&w->mu);
            int posted = ob_cl_post(w->c, pump_posted, w) == CM_OK;
            pthread_mutex_lock(&w->mu);
            w->posts -= !posted;
            due = now + w->c->cfg.write_wait_ms;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long long ms = due - now;
        ts.tv_sec += (time_t)(ms / 1000);
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
}

/* A buffer for stripe nfill: waits while `window` are in use (CM_AGAIN instead when !wait). */
static cm_err take_buffer(ob_cw *w, int wait)
{
    int slot = (int)(w->nfill % (uint64_t)w->window);
    pthread_mutex_lock(&w->mu);
    if (wait)
        wait_while(w, window_full);
    cm_err e = window_full(w) ? CM_AGAIN : w->err;
    /* A live column never sends from a buffer the window lets the worker reuse; a straggler
     * dropped mid-append may: its call still reads the buffer, so it keeps it and the slot
     * gets a new one (at most one per dropped column). */
    for (int i = 0; e == CM_OK && w->ring[slot] && i < w->n; i++)
        if (w->sending[i] == w->ring[slot] && w->norphans < PL_MAX_CELLS) {
            w->orphans[w->norphans++] = w->ring[slot];
            w->ring[slot] = NULL;
        }
    pthread_mutex_unlock(&w->mu);
    if (e != CM_OK)
        return e;
    if (!w->ring[slot]) {
        /* Taken here (a worker or a loop), given back where the body is freed (the loop). */
        uint8_t *b = cm_bufpool_take_shared(w->sbuf);
        if (!b)
            return CM_ERR_NOMEM;
        pthread_mutex_lock(&w->mu);
        w->ring[slot] = b;
        pthread_mutex_unlock(&w->mu);
        w->nbufs++;
        ob_cl_max(&w->c->buf_high_water, w->nbufs * w->sbuf);
    }
    w->cur = w->ring[slot];
    w->fill = 0;
    return CM_OK;
}

/* Encode the stripe being filled with cells of clen bytes; it becomes the held one. */
static void seal_stripe(ob_cw *w, uint32_t clen)
{
    uint8_t *data[EC_MAX_CELLS], *parity[EC_MAX_CELLS];
    memset(w->cur + w->fill, 0, (size_t)w->k * clen - w->fill); /* pad the last stripe */
    for (int i = 0; i < w->k; i++)
        data[i] = w->cur + (size_t)i * clen;
    for (int j = 0; j < w->m; j++)
        parity[j] = w->cur + (size_t)w->k * w->cell + (size_t)j * clen;
    ec_encode(w->codec, clen, data, parity);
    pthread_mutex_lock(&w->mu);
    w->ring_clen[w->nfill % (uint64_t)w->window] = clen;
    w->nfill++; /* under mu: the loop reads it (window_full) for an armed wake event */
    pthread_mutex_unlock(&w->mu);
    w->cur = NULL;
    w->held = 1;
}

/* Take data into stripes; *taken = bytes taken (all of them unless an error or, when !wait, a
 * full window: CM_AGAIN). */
static cm_err cw_write(ob_cw *w, const void *data, size_t len, int wait, size_t *taken)
{
    const uint8_t *p = data;
    *taken = 0;
    while (len > 0) {
        cm_err e = CM_OK;
        if (!w->cur && (e = post_held(w, 0)) == CM_OK)
            e = take_buffer(w, wait);
        if (e != CM_OK)
            return e;
        size_t n = CM_MIN(len, w->sbytes - w->fill);
        /* The one payload copy of the write path: into the aligned stripe the encoder reads and
         * the appends refer to. */
        memcpy(w->cur + w->fill, p, n);
        w->fill += n;
        p += n;
        len -= n;
        *taken += n;
        pthread_mutex_lock(&w->mu);
        w->size += n;
        pthread_mutex_unlock(&w->mu);
        atomic_fetch_add(&w->c->bytes_written, n);
        if (w->fill == w->sbytes)
            seal_stripe(w, w->cell);
    }
    pthread_mutex_lock(&w->mu);
    cm_err e = w->err;
    pthread_mutex_unlock(&w->mu);
    return e;
}

cm_err ob_cw_write(ob_cw *w, const void *data, size_t len)
{
    size_t taken;
    return cw_write(w, data, len, 1, &taken);
}

cm_err ob_cw_write_some(ob_cw *w, const void *data, size_t len, size_t *taken)
{
    return cw_write(w, data, len, 0, taken);
}

size_t ob_cw_stripe_bytes(const ob_cw *w)
{
    return w->sbytes;
}

/* A caller now waits for room through the loop: a pump (counted in posts by the caller) arms
 * the stall timer for it. */
static void post_for_timer(ob_cw *w)
{
    if (ob_cl_post(w->c, pump_posted, w) != CM_OK) {
        pthread_mutex_lock(&w->mu);
        w->posts--; /* the wait stays: a completion still ends it, only the timer is lost */
        pthread_mutex_unlock(&w->mu);
    }
}

void ob_cw_room_event(ob_cw *w, struct event *ev)
{
    pthread_mutex_lock(&w->mu);
    int now = ev && !window_full(w), arm = ev && !now && !w->wake;
    if (now)
        event_active(ev, EV_TIMEOUT, 1);
    w->wake = now ? NULL : ev;
    w->posts += arm; /* newly waiting: the loop arms the stall timer for it */
    pthread_mutex_unlock(&w->mu);
    if (arm)
        post_for_timer(w);
}

cm_err ob_cw_finish(ob_cw *w, md_layout *out)
{
    cm_err e = CM_OK;
    if (w->cur && w->fill > 0) {
        e = post_held(w, 0);
        seal_stripe(w, ob_last_cell_len(w->fill, w->k));
    }
    if (e == CM_OK) {
        pthread_mutex_lock(&w->mu);
        w->finishing = 1;
        pthread_mutex_unlock(&w->mu);
        e = w->held ? post_held(w, 1) : post_pump(w);
    }
    if (e != CM_OK) { /* the loop never heard: give the body to it as abandoned */
        ob_cw_drop(w);
        return e;
    }
    pthread_mutex_lock(&w->mu);
    wait_while(w, no_answer);
    e = w->err;
    if (e == CM_OK)
        *out = w->lay;
    pthread_mutex_unlock(&w->mu);
    ob_cw_drop(w); /* the loop frees it once its calls ended */
    return e;
}

void ob_cw_drop(ob_cw *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->wake = NULL;
    w->gone = 1;
    w->posts++;
    pthread_mutex_unlock(&w->mu);
    /* from here the loop may free w at any time: not touched again */
    if (ob_cl_post(w->c, pump_posted, w) != CM_OK)
        CM_ERROR(MOD, "a body could not reach its loop: its memory stays");
}
