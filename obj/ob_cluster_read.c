/*
 * ob_cluster_read.c - ob_read of a body stored across the nodes (ob.h; docs/chunks.md "The S3
 * data path across nodes", "Hedged reads").
 *
 * The worker posts the read to the loop and waits; a read started on a loop attached with
 * ob_store_loop_attach runs on that loop instead, from the start call on (ob_cl.h, ob_lane: its
 * own client, resolver, timers and latencies; a detach sets closing, after which no cell is
 * asked and a short stripe ends the read). On the loop, a window of RD_AHEAD (2) stripes:
 * the next stripe of the range and the one after it are in flight together (a 1 MiB body at 2+2
 * and 256 KiB cells is one round of four cells, not two rounds of two), and each stripe done
 * starts the next. Per stripe: ask k whole cells at once, one call per node for the cells it holds
 * of them (ask_first, nd_read_parts; docs/rpc.md "Reading several cells"), data cells first, in
 * order; parity in
 * place of cells the layout does not name or the layout's nodes do not resolve; cells on nodes that
 * failed a call in the last dead_ms go last, so a down node costs its first failures, one per
 * stripe in flight, not one per stripe of the range), arm the hedge timer. A cell that fails (down
 * node, missing or corrupt chunk) is replaced by the next cell not asked yet. When none is left and
 * fewer than k arrived, the cells that failed transiently (no answer, damaged on the wire) are
 * asked again after a backoff, for up to RD_ROUNDS rounds, before the stripe is unreadable: an AZ
 * lost leaves 8+4 exactly k cells, with no spare for a blip. When the timer fires before k cells
 * arrived, one more cell is asked (a hedge, counted) and the timer re-armed; the first k to arrive
 * win. With the k data cells present their wanted bytes are copied from the read buffers straight
 * into the caller's buffer (one copy); otherwise the k cells go into a stripe buffer, the codec
 * rebuilds the data cells (counted as degraded), and the range is copied out. Stripes may end out
 * of order: each writes its own bytes of the caller's buffer.
 *
 * Evbuffer mode (ob_read_start_evb, the GET path): no caller's buffer. A healthy stripe's wanted
 * bytes become references into its data cells' receive buffers (each cell arrives whole in one
 * buffer, net_client.c direct_step), which the stripe's evbuffer then owns; a rebuilt stripe's
 * bytes are copied in from the stripe buffer. Stripes go to the read's output in order: one done
 * before an earlier one keeps its slot until that one is out, so the window never runs more than
 * RD_AHEAD stripes past the earliest one unfinished. The caller's loop moves the output into its
 * evbuffer before done runs: the payload is copied once on its way through this node (from the
 * node's socket into the receive buffer) and the gateway writes it to the client from there.
 *
 * Late answers (a hedged-over cell, cells of a stripe already done) carry the stripe's sequence
 * number and are dropped; the read's state lives until its last call ended, and the worker's
 * buffer is written only before the worker is woken. Memory: RD_AHEAD x (k + m) cell buffers at
 * most, plus one stripe buffer when rebuilding (one stripe is rebuilt at a time), whatever the
 * range (ob_cluster_stats read_ahead_max and read_bytes_max show the bound held).
 *
 * Compressed layouts (docs/compression.md): a blocking ob_read reads the stream through
 * ob_z_read as on a single node; ob_read_start fetches the ranges of the stream it needs one
 * asynchronous read at a time and decodes once they are in (zrd, below).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cm_bufpool.h"
#include "cm_log.h"
#include "cm_util.h"
#include "ec.h"
#include "ob_cl.h"

#define MOD "obj"
#define RD_ROUNDS 5      /* rounds of asking cells again per stripe, once it fell short */
#define RD_BACKOFF_MS 50 /* before the first round; doubled for each next one */
#define RD_AHEAD 2       /* stripes of one read in flight at once: the next one and one ahead */

typedef struct crd crd;

/* A stripe of a read in flight: one slot of the read's window (loop thread only). */
typedef struct {
    crd *r;
    int active;
    uint64_t seq; /* answers of an earlier stripe in this slot carry another */
    uint64_t start, cell_off;
    uint32_t clen;
    struct evbuffer *got[MD_MAX_CELLS];
    int tried[MD_MAX_CELLS];
    uint8_t again[MD_MAX_CELLS]; /* failed in a way worth another try */
    cm_err why[MD_MAX_CELLS];    /* ... and how its last call failed */
    int present, asked;          /* arrived, in flight */
    int rounds;                  /* rounds asked again so far */
    struct event *timer, *retry;
    /* evbuffer mode: the stripe's wanted bytes, by reference to its cells' buffers, once done;
     * ready until every earlier stripe of the read went to the read's output */
    struct evbuffer *outb;
    int ready;
} rd_stripe;

typedef struct {
    rd_stripe *s;
    int i;
    uint64_t seq;
    long long t0;
} rd_call;

/* A call for several cells of one stripe on one node (ask_parts). */
typedef struct {
    rd_stripe *s;
    uint64_t seq;
    long long t0;
    int n;
    int idx[ND_READ_PARTS];
} rd_parts;

/* The bytes of a call of several cells, shared by the cells' buffers that point into them. */
typedef struct {
    struct evbuffer *whole;
    atomic_int refs;
} rd_shared;

struct crd {
    ob_cluster *c;
    ob_lane *lane;           /* NULL: on the cluster's loop */
    struct event_base *base; /* the loop it runs on: the lane's or the cluster's */
    ob_cl_lat *lat;          /* that loop's latencies */
    ob_view *v;
    md_layout lay;
    bs_id id;
    int n;
    ec_codec *codec;
    ob_chunks *b[MD_MAX_CELLS];
    uint32_t drive[MD_MAX_CELLS];
    /* where the bytes go: the caller's buffer, or in evbuffer mode (ob_read_start_evb, out
     * NULL) outb, stripe by stripe in order */
    uint8_t *out;
    struct evbuffer *outb;
    uint64_t off, end;
    uint64_t next, next_cell_off, seq; /* the next stripe to ask: start, cell offset, number */
    uint64_t emit;                     /* evbuffer mode: the number of the next stripe to output */
    rd_stripe s[RD_AHEAD];
    uint64_t held; /* bytes of arrived cells not yet copied out */
    int inflight;  /* every call, done stripes' too */
    uint8_t *scratch;
    int finished, loop_done;
    /* shared with the worker (or, for ob_read_start, the caller's loop) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs, woken;
    int canceled; /* ob_read_cancel: out is not written any more */
    cm_err err;
    ob_read_op *op; /* ob_read_start: told on its loop instead of a waiting worker; NULL once
                     * cancelled (the loop then never touches the op or its base again) */
};

typedef struct zrd zrd;

/*
 * The caller's handle. Its end is an event of its own on the caller's base, activated once the
 * read ended (by the cluster's loop under r->mu, or at once for a local read), rather than a
 * callback posted with the op as argument: a cancel (on base's thread) frees the event with the
 * op, so nothing is left pending on a loop that may never run again (a GET cut at shutdown), and
 * a read that ends after its cancel finds r->op NULL and never touches a base that may be gone.
 */
struct ob_read_op {
    crd *r; /* NULL: a local read, already done */
    struct event_base *base;
    struct event *ev; /* op_notify (NULL for a compressed read's op: its fetches tell it) */
    ob_read_done done;
    void *arg;
    cm_err err;
    zrd *z; /* a compressed layout's read (zrd_*): it owns this op */
    /* ob_read_start_evb: where the bytes go, on base's thread, before done runs; a read that is
     * not a plain cluster one runs as inner, a flat read into wbuf (wlen bytes, this thread's
     * pool), which is then added to dst by reference */
    struct evbuffer *dst;
    ob_read_op *inner;
    void *wbuf;
    size_t wlen;
};

static size_t rd_scratch_size(const crd *r)
{
    return (size_t)r->n * r->lay.cell_size;
}

static void rd_unref(crd *r)
{
    pthread_mutex_lock(&r->mu);
    int last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (!last)
        return;
    for (int j = 0; j < RD_AHEAD; j++) {
        rd_stripe *s = &r->s[j];
        for (int i = 0; i < MD_MAX_CELLS; i++)
            if (s->got[i])
                evbuffer_free(s->got[i]);
        if (s->timer)
            event_free(s->timer);
        if (s->retry)
            event_free(s->retry);
        if (s->outb)
            evbuffer_free(s->outb);
    }
    if (r->outb)
        evbuffer_free(r->outb);
    ec_free(r->codec);
    free(r->scratch);
    ob_cl_view_put(r->v);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

/* On the loop: once the read finished and no call is in flight, the loop lets go of it. */
static void rd_maybe_release(crd *r)
{
    if (!r->finished || r->inflight > 0 || r->loop_done)
        return;
    r->loop_done = 1;
    cm_bufpool_put(r->scratch, rd_scratch_size(r)); /* into the loop's pool */
    r->scratch = NULL;
    ob_cluster *c = r->c;
    if (r->lane)
        r->lane->ops--;
    rd_unref(r);
    ob_cl_op_end(c);
}

/* The op and the caller's reference to its read; on base's thread. */
static void op_free(ob_read_op *op)
{
    if (op->r)
        rd_unref(op->r);
    if (op->ev)
        event_free(op->ev);
    free(op);
}

/* On the caller's loop (the read ended, not cancelled): tell it. */
static void op_notify(evutil_socket_t fd, short what, void *arg)
{
    ob_read_op *op = arg;
    (void)fd;
    (void)what;
    if (op->err == CM_OK && op->r && op->r->outb) { /* evbuffer mode: the chains move, no copy */
        pthread_mutex_lock(&op->r->mu);
        if (evbuffer_add_buffer(op->dst, op->r->outb) != 0)
            op->err = CM_ERR_NOMEM;
        pthread_mutex_unlock(&op->r->mu);
    }
    op->done(op->arg, op->err);
    op_free(op);
}

static void rd_finish(crd *r, cm_err e)
{
    r->finished = 1;
    for (int j = 0; j < RD_AHEAD; j++) {
        if (r->s[j].timer)
            evtimer_del(r->s[j].timer);
        if (r->s[j].retry)
            evtimer_del(r->s[j].retry);
    }
    pthread_mutex_lock(&r->mu);
    r->err = e;
    r->woken = 1;
    if (r->op) { /* under mu: a cancel takes the op away under it, then frees it */
        r->op->err = e;
        event_active(r->op->ev, EV_TIMEOUT, 1);
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void cell_read(void *arg, const ob_chunk_result *res);

/* Its lane is being detached: no new call, and a stripe short of cells ends the read. */
static int closing(const crd *r)
{
    return r->lane && r->lane->closing;
}

/* Ask cell i of stripe s; 0 when the call could not start. */
static int ask_cell(rd_stripe *s, int i)
{
    crd *r = s->r;
    if (closing(r))
        return 0;
    rd_call *rc = malloc(sizeof(*rc));
    if (!rc)
        return 0;
    *rc = (rd_call){s, i, s->seq, cm_monotonic_ms()};
    if (ob_chunk_read(r->b[i], r->drive[i], &r->id, s->cell_off, s->clen, cell_read, rc) != CM_OK) {
        free(rc);
        return 0;
    }
    s->asked++;
    r->inflight++;
    return 1;
}

/* The next cell of stripe s not asked yet (data cells first), cells on nodes that failed lately
 * after all others, marked tried; -1 when none is left. */
static int next_cell(rd_stripe *s)
{
    crd *r = s->r;
    long long now = cm_monotonic_ms();
    for (int late = 0; late < 2; late++)
        for (int i = 0; i < r->n; i++) {
            uint16_t node = r->lay.nodes[i];
            int dead = node < r->v->t->nnodes && atomic_load(&r->v->dead_to[node]) > now;
            if (s->tried[i] || !r->b[i] || dead != late)
                continue;
            s->tried[i] = 1;
            s->again[i] = 0;
            return i;
        }
    return -1;
}

/* Cell i could not be asked (memory): worth another round. */
static void not_asked(rd_stripe *s, int i)
{
    s->again[i] = 1;
    s->why[i] = CM_ERR_NOMEM;
}

/* Ask the next cell of stripe s not asked yet (next_cell); 0 when none is left. */
static int ask_one(rd_stripe *s)
{
    for (int i; (i = next_cell(s)) >= 0;) {
        if (ask_cell(s, i))
            return 1;
        not_asked(s, i);
    }
    return 0;
}

static void parts_read(void *arg, const ob_chunk_result *res);

/* Ask the cells idx[0..n) of stripe s, all on one node, in one call (ob_chunk_read_parts); 0 when
 * it could not start. */
static int ask_parts(rd_stripe *s, const int *idx, int n)
{
    crd *r = s->r;
    rd_parts *rp = closing(r) ? NULL : malloc(sizeof(*rp));
    uint32_t drives[ND_READ_PARTS];
    if (!rp)
        return 0;
    *rp = (rd_parts){s, s->seq, cm_monotonic_ms(), n, {0}};
    for (int j = 0; j < n; j++) {
        rp->idx[j] = idx[j];
        drives[j] = r->drive[idx[j]];
    }
    if (ob_chunk_read_parts(r->b[idx[0]], drives, n, &r->id, s->cell_off, s->clen, parts_read,
                            rp) != CM_OK) {
        free(rp);
        return 0;
    }
    s->asked += n;
    r->inflight++;
    return 1;
}

/*
 * A stripe's first cells: the k that ask_one would ask one by one, asked with one call per node
 * that holds several of them (at 8+4 over six nodes a node holds two cells of every stripe) and
 * one call per cell otherwise: a 1 MiB GET's cell calls drop from about seven to five. A call of
 * several cells that cannot start leaves its first cell to be asked alone, the others in turn.
 */
static void ask_first(rd_stripe *s)
{
    crd *r = s->r;
    int pick[MD_MAX_CELLS], n = 0;
    uint8_t done[MD_MAX_CELLS] = {0};
    for (int i; n < r->lay.k && (i = next_cell(s)) >= 0;)
        pick[n++] = i;
    for (int a = 0; a < n; a++) {
        if (done[a])
            continue;
        int idx[ND_READ_PARTS], at[ND_READ_PARTS], g = 0;
        ob_chunks *b = r->b[pick[a]];
        for (int z = a; z < n && g < ND_READ_PARTS && b->ops->read_parts; z++)
            if (!done[z] && r->b[pick[z]] == b &&
                (uint64_t)(g + 1) * s->clen <= ND_READ_PARTS_BYTES) {
                at[g] = z;
                idx[g++] = pick[z];
            }
        if (g >= 2 && ask_parts(s, idx, g)) {
            atomic_fetch_add(&r->c->cells_batched, (unsigned long long)g);
            for (int j = 0; j < g; j++)
                done[at[j]] = 1;
            continue;
        }
        done[a] = 1;
        if (!ask_cell(s, pick[a])) {
            not_asked(s, pick[a]);
            ask_one(s); /* another cell in its place */
        }
    }
}

static void arm_timer(rd_stripe *s)
{
    int ms = ob_cl_hedge_ms(s->r->c, s->r->lat);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(s->timer, &tv);
}

/* k cells of stripe s arrived: its wanted bytes to the caller's buffer. */
static cm_err stripe_out_locked(rd_stripe *s);

/* The caller's buffer is written under the read's mutex, so ob_read_cancel can stop it. */
static cm_err stripe_out(rd_stripe *s)
{
    crd *r = s->r;
    pthread_mutex_lock(&r->mu);
    cm_err e = r->canceled ? CM_ERR_CLOSED : stripe_out_locked(s);
    pthread_mutex_unlock(&r->mu);
    return e;
}

/* An evbuffer reference's cleanup: the cell's read buffer (extra) it pointed into goes. */
static void cell_release(const void *data, size_t len, void *extra)
{
    (void)data;
    (void)len;
    evbuffer_free(extra);
}

/* Evbuffer mode, healthy: each data cell's wanted bytes to the stripe's output by reference to
 * the cell's read buffer, which the output then owns (no copy; a cell received whole is one
 * chain, so the pullup copies nothing either). */
static cm_err stripe_refs(rd_stripe *s, uint64_t a, uint64_t z)
{
    crd *r = s->r;
    for (uint64_t p = a; p < z;) {
        uint64_t i = (p - s->start) / s->clen, in = (p - s->start) % s->clen;
        size_t n = (size_t)CM_MIN(z - p, s->clen - in);
        const uint8_t *cell = evbuffer_pullup(s->got[i], -1);
        if (!cell || evbuffer_add_reference(s->outb, cell + in, n, cell_release, s->got[i]) != 0)
            return CM_ERR_NOMEM;
        s->got[i] = NULL; /* the output's now */
        r->held -= s->clen;
        p += n;
    }
    return CM_OK;
}

static cm_err stripe_out_locked(rd_stripe *s)
{
    crd *r = s->r;
    int k = r->lay.k, whole = 1;
    uint64_t a = CM_MAX(r->off, s->start), z = CM_MIN(r->end, s->start + (uint64_t)k * s->clen);
    for (int i = 0; i < k; i++)
        whole &= s->got[i] != NULL;
    if (whole && r->outb)
        return stripe_refs(s, a, z);
    if (whole) { /* healthy: from each data cell's read buffer straight to the caller */
        for (uint64_t p = a; p < z;) {
            uint64_t i = (p - s->start) / s->clen, in = (p - s->start) % s->clen;
            size_t n = (size_t)CM_MIN(z - p, s->clen - in);
            struct evbuffer_ptr at;
            evbuffer_ptr_set(s->got[i], &at, (size_t)in, EVBUFFER_PTR_SET);
            if (evbuffer_copyout_from(s->got[i], &at, r->out + (p - r->off), n) != (ev_ssize_t)n)
                return CM_ERR_NOMEM;
            p += n;
        }
        return CM_OK;
    }
    uint8_t *cells[EC_MAX_CELLS];
    int present[EC_MAX_CELLS] = {0};
    /* one stripe at a time is rebuilt (the loop runs one callback at a time): one scratch, from
     * the loop's pool (a fresh one per read faulted its n x cell bytes in: a hedged parity cell
     * that wins makes this path common under load); given back in rd_maybe_release */
    if (!r->scratch && !(r->scratch = cm_bufpool_take(rd_scratch_size(r))))
        return CM_ERR_NOMEM;
    for (int i = 0; i < r->n; i++) {
        cells[i] = r->scratch + (size_t)i * s->clen;
        if (s->got[i]) {
            evbuffer_remove(s->got[i], cells[i], s->clen);
            present[i] = 1;
        }
    }
    cm_err e = ec_reconstruct(r->codec, s->clen, cells, present);
    if (e == CM_OK && r->outb)
        e = evbuffer_add(s->outb, r->scratch + (a - s->start), (size_t)(z - a)) == 0 ? CM_OK
                                                                                     : CM_ERR_NOMEM;
    else if (e == CM_OK)
        memcpy(r->out + (a - r->off), r->scratch + (a - s->start), (size_t)(z - a));
    atomic_fetch_add(&r->c->reads_degraded, 1);
    return e;
}

/* The slot is free again: its cells' buffers go, its timers stop. */
static void stripe_clear(rd_stripe *s)
{
    for (int i = 0; i < s->r->n; i++)
        if (s->got[i]) {
            evbuffer_free(s->got[i]);
            s->got[i] = NULL;
            s->r->held -= s->clen;
        }
    evtimer_del(s->timer);
    evtimer_del(s->retry);
    s->active = 0;
}

static void stripe_start(rd_stripe *s);

/* Ask the next stripes while a slot of the window is free; the read ends once none is left. */
static void window_fill(crd *r)
{
    int active = 0;
    for (int j = 0; j < RD_AHEAD && !r->finished; j++) {
        if (!r->s[j].active && r->next < r->end)
            stripe_start(&r->s[j]);
        active += r->s[j].active;
    }
    if (r->finished)
        return;
    if (active == 0)
        rd_finish(r, CM_OK);
    else
        ob_cl_max(&r->c->read_ahead_max, (uint64_t)active);
}

/* Evbuffer mode: the stripes done, in order from the next one due, to the read's output; their
 * slots are free again. A stripe done before an earlier one waits in its slot (the window does
 * not move past the earliest stripe in flight). */
static cm_err stripes_emit(crd *r)
{
    for (int found = 1; found;) {
        found = 0;
        for (int j = 0; j < RD_AHEAD; j++) {
            rd_stripe *s = &r->s[j];
            if (!s->active || !s->ready || s->seq != r->emit)
                continue;
            if (evbuffer_add_buffer(r->outb, s->outb) != 0)
                return CM_ERR_NOMEM;
            s->ready = 0;
            s->active = 0;
            r->emit++;
            found = 1;
        }
    }
    return CM_OK;
}

static void stripe_done(rd_stripe *s)
{
    crd *r = s->r;
    cm_err e = stripe_out(s);
    stripe_clear(s);
    if (e == CM_OK && r->outb) {
        s->active = 1; /* until it is emitted */
        s->ready = 1;
        e = stripes_emit(r);
    }
    if (e != CM_OK)
        rd_finish(r, e);
    else
        window_fill(r);
}

/* A failure that another call may not meet: the node gave no answer (down, restarting, a
 * connection lost), the bytes were damaged on the way, or memory ran short here. A missing,
 * corrupt or short chunk stays so. */
static int transient(cm_err e)
{
    return e == CM_ERR_UNAVAILABLE || e == CM_ERR_TIMEOUT || e == CM_ERR_CLOSED ||
           e == CM_ERR_DIGEST || e == CM_ERR_NOMEM;
}

/* Stripe s fell short of k cells with nothing in flight: ask the cells that failed
 * transiently again after a backoff, for up to RD_ROUNDS rounds; then it is unreadable. */
static void stripe_short(rd_stripe *s)
{
    crd *r = s->r;
    int k = r->lay.k, retryable = 0;
    for (int i = 0; i < r->n; i++)
        retryable += s->again[i];
    pthread_mutex_lock(&r->mu);
    int canceled = r->canceled; /* nobody waits for the bytes: no more rounds */
    pthread_mutex_unlock(&r->mu);
    if (canceled || closing(r)) {
        rd_finish(r, CM_ERR_CLOSED);
        return;
    }
    if (retryable > 0 && s->present + retryable >= k && s->rounds < RD_ROUNDS) {
        int ms = RD_BACKOFF_MS << s->rounds;
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(s->retry, &tv);
        return;
    }
    char cells[MD_MAX_CELLS * 24] = "";
    size_t at = 0;
    for (int i = 0; i < r->n && at < sizeof(cells); i++) {
        int w = s->got[i] ? 0
                : r->b[i] ? snprintf(cells + at, sizeof(cells) - at, " %d:%s", i,
                                     s->tried[i] ? cm_err_name(s->why[i]) : "-")
                          : snprintf(cells + at, sizeof(cells) - at, " %d:none", i);
        at += w > 0 ? (size_t)w : 0;
    }
    char hex[33];
    bs_id_hex(&r->id, hex);
    CM_ERROR(MOD,
             "stripe at %llu of body %s unreadable: %d of %d cells after %d rounds; missing:%s",
             (unsigned long long)s->start, hex, s->present, k, s->rounds + 1, cells);
    rd_finish(r, CM_ERR_UNAVAILABLE);
}

static void retry_round(evutil_socket_t fd, short what, void *arg)
{
    rd_stripe *s = arg;
    crd *r = s->r;
    (void)fd;
    (void)what;
    if (r->finished || !s->active || s->present >= r->lay.k)
        return;
    s->rounds++;
    for (int i = 0; i < r->n; i++)
        if (s->again[i])
            s->tried[i] = 0;
    while (s->present + s->asked < r->lay.k && ask_one(s))
        ;
    if (s->asked == 0)
        stripe_short(s);
    else
        arm_timer(s);
    rd_maybe_release(r);
}

/* A cell call's answer came: 1 when stripe s still waits for it (seq), 0 for a late answer (the
 * read ended, or the stripe is done or its slot reused), which the caller only frees. */
static int answer_current(rd_stripe *s, uint64_t seq)
{
    crd *r = s->r;
    r->inflight--;
    return !r->finished && s->active && !s->ready && seq == s->seq;
}

/* After an answer: the stripe is whole, or short with nothing asked any more; r let go of. */
static void answer_end(rd_stripe *s)
{
    crd *r = s->r;
    if (s->present >= r->lay.k) {
        stripe_done(s);
    } else if (s->asked == 0) {
        stripe_short(s);
    }
    rd_maybe_release(r);
}

static void cell_read(void *arg, const ob_chunk_result *res)
{
    rd_call *rc = arg;
    rd_stripe *s = rc->s;
    crd *r = s->r;
    int i = rc->i;
    if (!answer_current(s, rc->seq)) {
        free(rc);
        rd_maybe_release(r);
        return;
    }
    s->asked--;
    if (res->err == CM_OK && evbuffer_get_length(res->data) == s->clen &&
        (s->got[i] = evbuffer_new()) != NULL) {
        evbuffer_add_buffer(s->got[i], res->data); /* moved, not copied */
        s->present++;
        r->held += s->clen;
        ob_cl_max(&r->c->read_bytes_max, r->held);
        ob_cl_note_latency(r->lat, (int)(cm_monotonic_ms() - rc->t0));
    } else if (closing(r)) { /* the lane's client ended the call: not the node's failure */
        s->why[i] = res->err == CM_OK ? CM_ERR_CORRUPT : res->err;
    } else {
        cm_err e = res->err == CM_OK ? CM_ERR_CORRUPT : res->err;
        char hex[33];
        bs_id_hex(&r->id, hex);
        /* the blob, node and drive, and the node's reason: a "not found" on a live node then
         * says whether the chunk was deleted there and when (nd_service.c read_missing) */
        CM_WARN(MOD, "cell %d of body %s (node %u drive %u) unreadable (%s%s%s): reading another",
                i, hex, r->lay.nodes[i], r->lay.drives[i], cm_err_str(e),
                res->message && res->message[0] && strcmp(res->message, cm_err_str(e)) != 0 ? ": "
                                                                                            : "",
                res->message && strcmp(res->message, cm_err_str(e)) != 0 ? res->message : "");
        ob_cl_node_failed(r->c, r->v, r->lay.nodes[i], e);
        s->why[i] = e;
        s->again[i] = (uint8_t)transient(e);
        ask_one(s);
    }
    free(rc);
    answer_end(s);
}

static void shared_release(const void *data, size_t len, void *extra)
{
    rd_shared *sh = extra;
    (void)data;
    (void)len;
    if (atomic_fetch_sub(&sh->refs, 1) == 1) {
        evbuffer_free(sh->whole);
        free(sh);
    }
}

/* A call of several cells answered: each cell's bytes become a buffer of its own that points into
 * the call's (received whole in one buffer: no copy), as if it had come alone. */
static cm_err split_parts(rd_stripe *s, const rd_parts *rp, struct evbuffer *data)
{
    crd *r = s->r;
    rd_shared *sh = malloc(sizeof(*sh));
    if (!sh || !(sh->whole = evbuffer_new())) {
        free(sh);
        return CM_ERR_NOMEM;
    }
    atomic_init(&sh->refs, 1); /* this function's, dropped at its end */
    evbuffer_add_buffer(sh->whole, data);
    const uint8_t *p = evbuffer_pullup(sh->whole, -1);
    cm_err e = p ? CM_OK : CM_ERR_NOMEM;
    for (int j = 0; j < rp->n && e == CM_OK; j++) {
        struct evbuffer *cell = evbuffer_new();
        atomic_fetch_add(&sh->refs, 1);
        if (!cell || evbuffer_add_reference(cell, p + (size_t)j * s->clen, s->clen, shared_release,
                                            sh) != 0) {
            atomic_fetch_sub(&sh->refs, 1);
            if (cell)
                evbuffer_free(cell);
            e = CM_ERR_NOMEM; /* the cells split so far stay: they are whole */
            break;
        }
        s->got[rp->idx[j]] = cell;
        s->present++;
        r->held += s->clen;
    }
    shared_release(NULL, 0, sh);
    return e;
}

/* The node's answer to ask_parts. A failure that is the node's (no answer) fails every cell of the
 * call, as cell_read fails one; any other does not say which cell it was: each is asked alone. */
static void parts_read(void *arg, const ob_chunk_result *res)
{
    rd_parts *rp = arg;
    rd_stripe *s = rp->s;
    crd *r = s->r;
    if (!answer_current(s, rp->seq)) {
        free(rp);
        rd_maybe_release(r);
        return;
    }
    s->asked -= rp->n;
    cm_err e = res->err;
    if (e == CM_OK && evbuffer_get_length(res->data) == (size_t)rp->n * s->clen &&
        (e = split_parts(s, rp, res->data)) == CM_OK) {
        ob_cl_max(&r->c->read_bytes_max, r->held);
        ob_cl_note_latency(r->lat, (int)(cm_monotonic_ms() - rp->t0));
    } else if (closing(r)) {
        for (int j = 0; j < rp->n; j++)
            s->why[rp->idx[j]] = e == CM_OK ? CM_ERR_CORRUPT : e;
    } else if (e == CM_ERR_UNAVAILABLE || e == CM_ERR_TIMEOUT || e == CM_ERR_CLOSED) {
        int node = r->lay.nodes[rp->idx[0]];
        int say = res->message && res->message[0] && strcmp(res->message, cm_err_str(e)) != 0;
        CM_WARN(MOD, "%d cells on node %d unreadable (%s%s%s): reading others", rp->n, node,
                cm_err_str(e), say ? ": " : "", say ? res->message : "");
        ob_cl_node_failed(r->c, r->v, node, e);
        for (int j = 0; j < rp->n; j++) {
            s->why[rp->idx[j]] = e;
            s->again[rp->idx[j]] = 1;
        }
        for (int j = 0; j < rp->n; j++)
            ask_one(s);
    } else {
        for (int j = 0; j < rp->n; j++)
            if (!s->got[rp->idx[j]] && !ask_cell(s, rp->idx[j])) {
                not_asked(s, rp->idx[j]);
                ask_one(s);
            }
    }
    free(rp);
    answer_end(s);
}

static void hedge(evutil_socket_t fd, short what, void *arg)
{
    rd_stripe *s = arg;
    crd *r = s->r;
    (void)fd;
    (void)what;
    if (r->finished || !s->active || s->present >= r->lay.k)
        return;
    if (ask_one(s)) {
        atomic_fetch_add(&r->c->hedges, 1);
        arm_timer(s);
    }
}

/* The next stripe of the read into free slot s: ask its k cells. */
static void stripe_start(rd_stripe *s)
{
    crd *r = s->r;
    uint64_t full = (uint64_t)r->lay.k * r->lay.cell_size, rest = r->lay.size - r->next;
    s->active = 1;
    s->seq = r->seq++;
    s->start = r->next;
    s->cell_off = r->next_cell_off;
    s->clen = rest >= full ? r->lay.cell_size : ob_last_cell_len(rest, r->lay.k);
    r->next += full;
    r->next_cell_off += r->lay.cell_size;
    memset(s->tried, 0, sizeof(s->tried));
    memset(s->again, 0, sizeof(s->again));
    s->present = s->asked = s->rounds = 0;
    ask_first(s);
    if (s->asked == 0) { /* the caller lets go of r (rd_maybe_release) when it is done with it */
        stripe_short(s);
        return;
    }
    arm_timer(s);
}

static void rd_begin(void *arg)
{
    crd *r = arg;
    window_fill(r);
    rd_maybe_release(r);
}

/* A read of [off, off+len) of lay into buf (NULL: evbuffer mode, into r->outb), not started;
 * refs = 2 (the caller's, the loop's). */
static cm_err rd_new(ob_cluster *c, ob_lane *lane, const md_layout *lay, uint64_t off, void *buf,
                     size_t len, crd **out)
{
    int n = lay->k + lay->m;
    if (lay->k < 1 || n > MD_MAX_CELLS || n > EC_MAX_CELLS || lay->cell_size == 0 ||
        lay->cell_size % 64 != 0 || lay->cell_size > OB_CHUNK_MAX_IO)
        return CM_ERR_INVAL;
    ob_view *v = ob_cl_view_get(c);
    if (!v)
        return CM_ERR_UNAVAILABLE;
    crd *r = calloc(1, sizeof(*r));
    if (!r) {
        ob_cl_view_put(v);
        return CM_ERR_NOMEM;
    }
    r->c = c;
    r->lane = lane;
    r->base = lane ? lane->base : c->base;
    r->lat = lane ? &lane->lat : &c->lat;
    r->v = v;
    r->lay = *lay;
    r->n = n;
    memcpy(r->id.b, lay->blob, sizeof(r->id.b));
    r->out = buf;
    r->off = off;
    r->end = off + len;
    uint64_t sbytes = (uint64_t)lay->k * lay->cell_size;
    r->next = off / sbytes * sbytes;
    r->next_cell_off = off / sbytes * lay->cell_size;
    r->refs = 2;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    ob_resolver *res = lane ? ob_cl_lane_resolver(lane, v) : v->r;
    for (int i = 0; i < n && res; i++) {
        pl_cell cell = {lay->nodes[i], lay->drives[i]};
        r->b[i] = lay->drives[i] == PL_NONE ? NULL : ob_resolve_cell(res, &cell, &r->drive[i]);
    }
    cm_err e = res ? ec_new(lay->k, lay->m, &r->codec) : CM_ERR_NOMEM;
    for (int j = 0; j < RD_AHEAD && e == CM_OK; j++) {
        rd_stripe *s = &r->s[j];
        s->r = r;
        if (!(s->timer = evtimer_new(r->base, hedge, s)) ||
            !(s->retry = evtimer_new(r->base, retry_round, s)) ||
            (!buf && !(s->outb = evbuffer_new())))
            e = CM_ERR_NOMEM;
    }
    if (e == CM_OK && !buf && !(r->outb = evbuffer_new()))
        e = CM_ERR_NOMEM;
    if (e != CM_OK) {
        r->refs = 1;
        rd_unref(r);
        return e;
    }
    *out = r;
    return CM_OK;
}

/* Start r on its lane's loop (the caller's: now), or hand it to the cluster's loop; on failure
 * r is freed. */
static cm_err rd_go(ob_cluster *c, crd *r)
{
    ob_cl_op_begin(c);
    if (r->lane) { /* its end is an event of the caller's, activated, never run from here */
        r->lane->ops++;
        atomic_fetch_add(&c->reads, 1);
        atomic_fetch_add(&c->reads_on_loops, 1);
        rd_begin(r);
        return CM_OK;
    }
    cm_err e = ob_cl_post(c, rd_begin, r);
    if (e != CM_OK) {
        ob_cl_op_end(c);
        r->refs = 1;
        rd_unref(r);
        return e;
    }
    atomic_fetch_add(&c->reads, 1);
    return CM_OK;
}

cm_err ob_cluster_read(ob_cluster *c, const md_layout *lay, uint64_t off, void *buf, size_t len)
{
    crd *r;
    cm_err e = rd_new(c, NULL, lay, off, buf, len, &r);
    if (e == CM_OK)
        e = rd_go(c, r);
    if (e != CM_OK)
        return e;
    pthread_mutex_lock(&r->mu);
    while (!r->woken)
        pthread_cond_wait(&r->cv, &r->mu);
    e = r->err;
    pthread_mutex_unlock(&r->mu);
    rd_unref(r);
    return e;
}

/*
 * A compressed cluster layout read by ob_read_start, on the caller's loop: ob_z_read runs over
 * the stream ranges fetched so far (zsrc); the first range it lacks (the table entries, then a
 * frame) is fetched with a plain asynchronous read of the stream, and ob_z_read runs again once
 * it is there. A GET piece (one frame, or parts of two) takes two or three fetches; nothing is
 * decoded before every range it needs is in. Memory: the fetched ranges (a few table entries and
 * at most the stored frames the range touches). A cancel cancels the fetch in flight (its
 * buffer is not written after that) and frees everything at once.
 */
#define ZRD_MAX_RANGES 8

struct zrd {
    ob_store *st;
    md_layout lay;   /* compressed */
    md_layout plain; /* the same cells as a plain layout of the stream */
    uint64_t off;
    void *buf;
    size_t len;
    ob_read_op *op; /* the caller's, whose done is told */
    ob_read_op *inner;
    uint64_t roff[ZRD_MAX_RANGES];
    size_t rlen[ZRD_MAX_RANGES];
    uint8_t *rbuf[ZRD_MAX_RANGES];
    int n;
    int missed;
    uint64_t moff;
    size_t mlen;
};

static void zrd_free(zrd *z)
{
    for (int i = 0; i < z->n; i++)
        free(z->rbuf[i]);
    free(z->op);
    free(z);
}

/* ob_z_read's source: a fetched range, or CM_AGAIN noting the first missing one. */
static cm_err zsrc(void *arg, uint64_t off, void *buf, size_t len)
{
    zrd *z = arg;
    for (int i = 0; i < z->n; i++) {
        if (off >= z->roff[i] && off - z->roff[i] <= z->rlen[i] &&
            len <= z->rlen[i] - (off - z->roff[i])) {
            memcpy(buf, z->rbuf[i] + (off - z->roff[i]), len);
            return CM_OK;
        }
    }
    if (!z->missed) {
        z->missed = 1;
        z->moff = off;
        z->mlen = len;
    }
    return CM_AGAIN;
}

static void zrd_fetched(void *arg, cm_err err);

/* Try the read; fetch what it lacks (CM_OK: a fetch is in flight) or end it (the error). */
static cm_err zrd_try(zrd *z)
{
    z->missed = 0;
    cm_err e = ob_z_read(&z->lay, z->off, z->buf, z->len, zsrc, z);
    if (e != CM_AGAIN || !z->missed)
        return e == CM_OK ? CM_ERR_EXISTS : e; /* EXISTS: read whole */
    if (z->n == ZRD_MAX_RANGES || z->mlen == 0)
        return CM_ERR_CORRUPT; /* more ranges than any frame range needs: a forged table */
    uint8_t *p = malloc(z->mlen);
    if (!p)
        return CM_ERR_NOMEM;
    z->roff[z->n] = z->moff;
    z->rlen[z->n] = z->mlen;
    z->rbuf[z->n++] = p;
    return ob_read_start(z->st, &z->plain, z->moff, p, z->mlen, z->op->base, zrd_fetched, z,
                         &z->inner);
}

/* A fetch ended (the caller's loop): try again, or tell the caller. */
static void zrd_fetched(void *arg, cm_err err)
{
    zrd *z = arg;
    z->inner = NULL;
    if (err == CM_OK && (err = zrd_try(z)) == CM_OK)
        return; /* the next fetch goes on */
    z->op->done(z->op->arg, err == CM_ERR_EXISTS ? CM_OK : err);
    zrd_free(z);
}

static cm_err zrd_start(ob_store *st, const md_layout *layout, uint64_t off, void *buf, size_t len,
                        ob_read_op *o)
{
    zrd *z = calloc(1, sizeof(*z));
    if (!z)
        return CM_ERR_NOMEM;
    *z = (zrd){
        .st = st, .lay = *layout, .plain = *layout, .off = off, .buf = buf, .len = len, .op = o};
    z->plain.zalg = MD_Z_NONE;
    z->plain.zframe = 0;
    z->plain.zsize = z->plain.ztab = 0;
    o->z = z;
    cm_err e = zrd_try(z); /* the cache is empty: a fetch starts, or the layout is refused */
    if (e == CM_OK)
        return CM_OK;
    o->z = NULL;
    z->op = NULL;
    zrd_free(z);
    return e == CM_ERR_EXISTS ? CM_ERR_INTERNAL : e;
}

/* ob_read_start into buf, or, with buf NULL, a plain cluster layout's read in evbuffer mode
 * whose bytes go to dst (op_notify). */
static cm_err read_start(ob_store *st, const md_layout *layout, uint64_t off, void *buf, size_t len,
                         struct evbuffer *dst, struct event_base *base, ob_read_done done,
                         void *arg, ob_read_op **op)
{
    ob_cluster *c = ob_store_cluster(st);
    if (off > MD_LAYOUT_BODY_SIZE(layout) || len > MD_LAYOUT_BODY_SIZE(layout) - off)
        return CM_ERR_RANGE;
    ob_read_op *o = calloc(1, sizeof(*o));
    if (!o)
        return CM_ERR_NOMEM;
    *o = (ob_read_op){.base = base, .done = done, .arg = arg, .dst = dst};
    cm_err e = CM_OK;
    if (c && layout->epoch != 0 && layout->zalg != MD_Z_NONE && len > 0) {
        e = zrd_start(st, layout, off, buf, len, o);
    } else if (!(o->ev = event_new(base, -1, 0, op_notify, o))) {
        e = CM_ERR_NOMEM;
    } else if (c && layout->epoch != 0 && len > 0) {
        crd *r;
        if ((e = rd_new(c, ob_cl_lane_of(c, base), layout, off, buf, len, &r)) == CM_OK) {
            o->r = r;
            r->op = o; /* the caller's reference is the op's, dropped by op_free */
            if ((e = rd_go(c, r)) != CM_OK)
                o->r = NULL;
        }
    } else { /* local drives: the page-cache work now, the answer from the loop as promised */
        o->err = ob_read(st, layout, off, buf, len);
        event_active(o->ev, EV_TIMEOUT, 1);
    }
    if (e != CM_OK) {
        op_free(o);
        return e;
    }
    *op = o;
    return CM_OK;
}

cm_err ob_read_start(ob_store *st, const md_layout *layout, uint64_t off, void *buf, size_t len,
                     struct event_base *base, ob_read_done done, void *arg, ob_read_op **op)
{
    return read_start(st, layout, off, buf, len, NULL, base, done, arg, op);
}

/* ob_read_start_evb's flat read ended (base's loop): its buffer goes to dst by reference, and
 * the op before done runs. */
static void flat_done(void *arg, cm_err err)
{
    ob_read_op *w = arg;
    ob_read_done done = w->done;
    void *done_arg = w->arg;
    if (err == CM_OK && w->wlen > 0) {
        if (evbuffer_add_reference(w->dst, w->wbuf, w->wlen, cm_bufpool_cleanup,
                                   (void *)(uintptr_t)w->wlen) == 0)
            w->wbuf = NULL; /* the evbuffer gives it back to this thread's pool */
        else
            err = CM_ERR_NOMEM;
    }
    cm_bufpool_put(w->wbuf, w->wlen);
    free(w);
    done(done_arg, err);
}

cm_err ob_read_start_evb(ob_store *st, const md_layout *layout, uint64_t off, size_t len,
                         struct evbuffer *dst, struct event_base *base, ob_read_done done,
                         void *arg, ob_read_op **op)
{
    ob_cluster *c = ob_store_cluster(st);
    if (c && layout->epoch != 0 && layout->zalg == MD_Z_NONE && len > 0)
        return read_start(st, layout, off, NULL, len, dst, base, done, arg, op);
    ob_read_op *w = calloc(1, sizeof(*w));
    if (!w)
        return CM_ERR_NOMEM;
    *w = (ob_read_op){.base = base, .done = done, .arg = arg, .dst = dst, .wlen = len};
    cm_err e = (w->wbuf = cm_bufpool_take(len)) == NULL
                   ? CM_ERR_NOMEM
                   : read_start(st, layout, off, w->wbuf, len, NULL, base, flat_done, w, &w->inner);
    if (e != CM_OK) {
        cm_bufpool_put(w->wbuf, len);
        free(w);
        return e;
    }
    *op = w;
    return CM_OK;
}

void ob_read_cancel(ob_read_op *op)
{
    if (op->inner) { /* ob_read_start_evb's flat read: its buffer is not written after this */
        ob_read_cancel(op->inner);
        cm_bufpool_put(op->wbuf, op->wlen);
        free(op);
        return;
    }
    if (op->z) { /* its fetch first: then nothing writes into the ranges' buffers */
        if (op->z->inner)
            ob_read_cancel(op->z->inner);
        zrd_free(op->z); /* and op with it */
        return;
    }
    if (op->r) { /* under mu: the loop activates op->ev only while r->op names it */
        pthread_mutex_lock(&op->r->mu);
        op->r->canceled = 1;
        op->r->op = NULL;
        pthread_mutex_unlock(&op->r->mu);
    }
    op_free(op); /* an end already activated goes with the event */
}
