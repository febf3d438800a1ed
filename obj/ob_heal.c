/*
 * ob_heal.c - one body brought back to k+m healthy cells at the places the current layout wants
 * (ob_heal in ob_heal.h; docs/chunks.md, "Repair").
 *
 * State machine on the resolver's loop:
 *   stat     every cell the layout names on a drive that is up or draining, on a live node:
 *            a source when its chunk has the body's cell blob length; a cell whose stat fails
 *            other than "not found" (no answer, a refusal, an error on the node) is left alone
 *            (its chunk may be fine: no delete);
 *   plan     homes = pl_place under the current map, handoffs = pl_handoff with the liveness
 *            view; each cell is kept (a source at home, or on a handoff while its home is not
 *            usable), or gets a target (its home, or a handoff when the home is not usable);
 *            a target never lands on a drive another cell of the body names (one chunk id per
 *            body: two cells cannot share a drive) nor past the AZ cap; a cell that must leave
 *            its drive and finds its place taken, or the first cell of a cycle of cells each
 *            holding the next one's home, is parked on another drive (park) and counted
 *            blocked, so the caller heals again once the cell holding its home has moved;
 *   prepare  the chunk already at each new target (a stale cell, a wrong length) is deleted,
 *            unless the guard (cfg.guard: the record as it is now) says the record names it:
 *            another node's heal put a cell there and swapped it in, so this target is given up;
 *   stripes  one group of stripes at a time (consecutive full stripes, up to OB_HEAL_GROUP
 *            bytes per cell column, so one read and one append per cell carry several small
 *            stripes; the short last stripe alone): pace, read k sources (targets that are
 *            sources first, so a moved cell is a copy; every source with OB_HEAL_VERIFY),
 *            rebuild what is missing with the codec stripe by stripe, append each target's
 *            column (synced with the last group), chaining each target's CRC32C (handed back
 *            with the layout: the pass reads the written cells back after its swap).
 * A source that reads back corrupt, missing or short becomes a target itself (rebuilt in place)
 * and the stripes restart from the first; targets remember how far they were written, so only
 * the new one is written again. A target whose write fails is given up (its chunk deleted; the
 * cell keeps its old entry). Stopping (the pacer) or too few sources deletes every chunk written
 * (never one the guard says the record names now).
 *
 * Memory: one group buffer of (k+m) x max(cell_size, OB_HEAL_GROUP): cell column i of the group
 * at i x glen, stripe st of it at st x clen (what one range read of the chunk returns, and what
 * one append writes); one group's reads, then its writes, in flight. It and the codec are made
 * only when there are stripes to go through: a heal that finds every cell healthy ends after the
 * stats without them.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"
#include "ec.h"
#include "ob_heal.h"
#include "ob_int.h"

#define MOD "ob"
#define OB_HEAL_GROUP (1u << 20) /* bytes per cell column in one round (several small stripes) */

typedef struct ob_hl ob_hl;

typedef struct {
    ob_hl *h;
    int i;
} hl_slot;

typedef struct {
    int has_loc;      /* the old layout names a drive */
    pl_cell loc;      /* that drive */
    ob_chunks *sb;    /* its backend, NULL when not reachable */
    uint32_t sdrive;  /* its drive number there */
    int src;          /* readable with the right length */
    int unknown;      /* its stat got no answer from the node: the chunk may be fine */
    int target;       /* a cell is written at tgt */
    int prepared;     /* the chunk at tgt was deleted before the first write */
    int touched;      /* an append went to tgt: the chunk may exist */
    pl_cell tgt;      /* where */
    ob_chunks *tb;    /* its backend */
    uint32_t tdrive;  /* its drive number there */
    uint64_t written; /* bytes of the cell written at tgt */
    uint32_t crc;     /* CRC32C of those bytes */
} hl_cell;

struct ob_hl {
    ob_resolver *r;
    ob_heal_config cfg;
    ob_pacer pacer;
    md_layout lay;
    bs_id id;
    int n, k;
    hl_cell c[EC_MAX_CELLS];
    hl_slot slot[EC_MAX_CELLS];
    int present[EC_MAX_CELLS], tried[EC_MAX_CELLS];
    ec_codec *codec;
    uint8_t *stripe;
    uint64_t blob_len, pos, cell_off; /* body bytes done, cell offset of the stripe */
    uint32_t clen;                    /* cell length of the stripes of the group */
    uint32_t ns, spg;                 /* stripes in the group in flight; at most per group */
    uint64_t glen;                    /* ns * clen: a cell column's bytes in the group */
    int inflight;
    int reprepare; /* a source turned bad mid-way: prepare it, then restart */
    cm_err err;
    ob_heal_result res;
    ob_heal_done done;
    void *arg;
};

/* ---- where cells may live ---- */

static pl_state eff_state(const pl_topology *t, pl_cell c)
{
    if (c.node >= t->nnodes || c.drive >= t->nodes[c.node].ndrives)
        return PL_REMOVED;
    pl_state a = t->nodes[c.node].state, b = t->nodes[c.node].drives[c.drive].state;
    /* removed > draining > down, as pl.h orders them */
    int ra = a == PL_REMOVED ? 3 : a == PL_DRAINING ? 2 : a == PL_DOWN ? 1 : 0;
    int rb = b == PL_REMOVED ? 3 : b == PL_DRAINING ? 2 : b == PL_DOWN ? 1 : 0;
    return ra >= rb ? a : b;
}

static int dead(const ob_hl *h, pl_cell c)
{
    return h->cfg.node_dead && h->cfg.node_dead[c.node];
}

static int same(pl_cell a, pl_cell b)
{
    return a.node == b.node && a.drive == b.drive;
}

/* A drive that takes a cell now. */
static int cfg_usable(const ob_heal_config *cfg, pl_cell c)
{
    return eff_state(cfg->topo, c) == PL_UP && !(cfg->node_dead && cfg->node_dead[c.node]);
}

static int usable(const ob_hl *h, pl_cell c)
{
    return cfg_usable(&h->cfg, c);
}

/* A drive whose chunk may be read. */
static int readable(const ob_hl *h, pl_cell c)
{
    pl_state s = eff_state(h->cfg.topo, c);
    return (s == PL_UP || s == PL_DRAINING) && !dead(h, c);
}

/* ---- the end ---- */

static void hl_free(ob_hl *h)
{
    ec_free(h->codec);
    free(h->stripe);
    free(h);
}

static void finish(ob_hl *h)
{
    ob_heal_result *res = &h->res;
    res->lay = h->lay;
    for (int i = 0; i < h->n; i++) {
        hl_cell *c = &h->c[i];
        if (h->err == CM_OK && c->target) {
            res->rebuilt++;
            res->changed = 1;
            res->lay.nodes[i] = c->tgt.node;
            res->lay.drives[i] = (uint8_t)c->tgt.drive;
            res->written_crc[res->nwritten] = c->crc;
            res->written[res->nwritten++] = c->tgt;
            if (c->has_loc && !same(c->loc, c->tgt))
                res->obsolete[res->nobsolete++] = c->loc;
        } else if (!c->src) {
            res->missing++;
        }
    }
    /* an old place that the new layout names (another cell took it) is not obsolete */
    for (int o = 0; o < res->nobsolete; o++)
        for (int i = 0; i < h->n; i++)
            if (res->lay.drives[i] != 0xFF &&
                same(res->obsolete[o], (pl_cell){res->lay.nodes[i], res->lay.drives[i]})) {
                res->obsolete[o--] = res->obsolete[--res->nobsolete];
                break;
            }
    if (res->changed)
        res->lay.epoch = h->cfg.topo->epoch;
    if (h->err != CM_OK)
        res->bytes = 0;
    h->done(h->arg, h->err, res);
    hl_free(h);
}

static void dropped(void *arg, const ob_chunk_result *r)
{
    hl_slot *s = arg;
    ob_hl *h = s->h;
    if (r->err != CM_OK)
        CM_WARN(MOD, "heal: a written cell %d not deleted (%s): an orphan", s->i,
                cm_err_str(r->err));
    if (--h->inflight == 0)
        finish(h);
}

/* keep[i] = the guard keeps the chunk at the target of cell idx[i] (i < n). */
static void guarded(ob_hl *h, const int *idx, int n, int *keep)
{
    pl_cell cells[EC_MAX_CELLS];
    memset(keep, 0, (size_t)n * sizeof(*keep));
    if (!h->cfg.guard || n == 0)
        return;
    for (int i = 0; i < n; i++)
        cells[i] = h->c[idx[i]].tgt;
    h->cfg.guard(h->cfg.guard_arg, cells, n, keep);
}

/* Delete the chunks written to targets given up (all of them when the heal failed), then end;
 * not one the record names now (the guard: another heal's cell on the same drive). */
static void wind_up(ob_hl *h, cm_err e)
{
    int idx[EC_MAX_CELLS] = {0}, keep[EC_MAX_CELLS], n = 0;
    if (h->err == CM_OK)
        h->err = e;
    for (int i = 0; i < h->n; i++)
        if (h->c[i].touched && !(h->err == CM_OK && h->c[i].target))
            idx[n++] = i;
    guarded(h, idx, n, keep);
    h->inflight = 1;
    for (int j = 0; j < n; j++) {
        hl_cell *c = &h->c[idx[j]];
        c->touched = 0;
        if (keep[j])
            CM_WARN(MOD, "heal: cell %d at node %u drive %u is named by the record now: kept",
                    idx[j], c->tgt.node, c->tgt.drive);
        else if (ob_chunk_delete(c->tb, c->tdrive, &h->id, dropped, &h->slot[idx[j]]) == CM_OK)
            h->inflight++;
    }
    if (--h->inflight == 0)
        finish(h);
}

/* Give up writing cell i: it keeps its old entry; a chunk written for it goes at wind_up. */
static void give_up(ob_hl *h, int i, cm_err why)
{
    hl_cell *c = &h->c[i];
    CM_WARN(MOD, "heal: cell %d not written to node %u drive %u: %s", i, c->tgt.node, c->tgt.drive,
            cm_err_str(why));
    c->target = 0;
}

static int ntargets(const ob_hl *h)
{
    int n = 0;
    for (int i = 0; i < h->n; i++)
        n += h->c[i].target;
    return n;
}

/* Stripes to go through: cells to write, or every cell to verify. */
static int busy(const ob_hl *h)
{
    return ntargets(h) > 0 || (h->cfg.flags & OB_HEAL_VERIFY);
}

/* ---- stripes ---- */

static void stripe_start(ob_hl *h);
static void prepare(ob_hl *h);
static cm_err stripes_ready(ob_hl *h);

static void stripe_next(ob_hl *h)
{
    h->pos += (uint64_t)h->k * h->glen;
    h->cell_off += h->glen;
    if (h->pos >= h->lay.size || !busy(h))
        wind_up(h, CM_OK);
    else
        stripe_start(h);
}

static void cell_written(void *arg, const ob_chunk_result *r)
{
    hl_slot *s = arg;
    ob_hl *h = s->h;
    hl_cell *c = &h->c[s->i];
    if (r->err == CM_OK && c->target) {
        /* groups append in order, once each (a restart skips what was written) */
        c->crc = cm_crc32c(c->crc, h->stripe + (size_t)s->i * h->glen, h->glen);
        c->written = h->cell_off + h->glen;
        h->res.bytes += h->glen;
    } else if (c->target) {
        give_up(h, s->i, r->err);
    }
    if (--h->inflight == 0)
        stripe_next(h);
}

static void write_targets(ob_hl *h)
{
    uint8_t *cells[EC_MAX_CELLS];
    int need = 0;
    for (int i = 0; i < h->n; i++)
        need |= h->c[i].target && !h->present[i];
    for (uint32_t st = 0; need && st < h->ns; st++) { /* column i holds stripe st at st*clen */
        for (int i = 0; i < h->n; i++)
            cells[i] = h->stripe + (size_t)i * h->glen + (size_t)st * h->clen;
        if (ec_reconstruct(h->codec, h->clen, cells, h->present) != CM_OK) {
            wind_up(h, CM_ERR_UNAVAILABLE);
            return;
        }
    }
    for (int i = 0; i < h->n; i++)
        cells[i] = h->stripe + (size_t)i * h->glen;
    int last = h->pos + (uint64_t)h->k * h->glen >= h->lay.size;
    h->inflight = 1;
    for (int i = 0; i < h->n; i++) {
        hl_cell *c = &h->c[i];
        if (!c->target || c->written > h->cell_off) /* written before a restart */
            continue;
        struct evbuffer *b = evbuffer_new();
        cm_err e = b && evbuffer_add_reference(b, cells[i], h->glen, NULL, NULL) == 0
                       ? CM_OK
                       : CM_ERR_NOMEM;
        if (e == CM_OK)
            e = ob_chunk_append(c->tb, c->tdrive, &h->id, h->cell_off, b,
                                cm_crc32c(0, cells[i], h->glen), last ? OB_CHUNK_SYNC : 0,
                                cell_written, &h->slot[i]);
        if (b)
            evbuffer_free(b);
        if (e != CM_OK) {
            give_up(h, i, e);
            continue;
        }
        c->touched = 1;
        h->inflight++;
    }
    if (--h->inflight == 0)
        stripe_next(h);
}

static void ask_source(ob_hl *h);

static void after_reads(ob_hl *h)
{
    int have = 0;
    for (int i = 0; i < h->n; i++)
        have += h->present[i];
    if (have < h->k) {
        CM_ERROR(MOD, "heal: stripe at %llu has %d readable cells of %d",
                 (unsigned long long)h->pos, have, h->k);
        wind_up(h, CM_ERR_UNAVAILABLE);
    } else if (h->reprepare) {
        h->reprepare = 0;
        prepare(h); /* the new target's old chunk goes; then every stripe again */
    } else {
        write_targets(h);
    }
}

static void cell_read(void *arg, const ob_chunk_result *r)
{
    hl_slot *s = arg;
    ob_hl *h = s->h;
    hl_cell *c = &h->c[s->i];
    h->inflight--;
    if (r->err == CM_OK && evbuffer_get_length(r->data) == h->glen) {
        evbuffer_remove(r->data, h->stripe + (size_t)s->i * h->glen, h->glen);
        h->present[s->i] = 1;
    } else {
        cm_err e = r->err == CM_OK ? CM_ERR_CORRUPT : r->err;
        CM_WARN(MOD, "heal: cell %d unreadable (%s)", s->i, cm_err_str(e));
        c->src = 0;
        /* bad bytes or no chunk: the cell is rebuilt where it is (when it was staying there);
         * an unreachable node only stops being a source for this heal */
        if (!c->target && c->has_loc && usable(h, c->loc) &&
            (e == CM_ERR_CORRUPT || e == CM_ERR_NOTFOUND || e == CM_ERR_RANGE)) {
            c->target = 1;
            c->prepared = 0;
            c->tgt = c->loc;
            c->tb = c->sb;
            c->tdrive = c->sdrive;
            c->written = 0;
            c->crc = 0;
            h->reprepare = 1;
        }
        if (!(h->cfg.flags & OB_HEAL_VERIFY))
            ask_source(h);
    }
    if (h->inflight == 0)
        after_reads(h);
}

/* Read the next source not tried yet: sources that are targets first (a move is a copy). */
static void ask_source(ob_hl *h)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < h->n; i++) {
            hl_cell *c = &h->c[i];
            if (h->tried[i] || !c->src || (pass == 0 && !c->target))
                continue;
            h->tried[i] = 1;
            if (ob_chunk_read(c->sb, c->sdrive, &h->id, h->cell_off, h->glen, cell_read,
                              &h->slot[i]) == CM_OK) {
                h->inflight++;
                return;
            }
            c->src = 0;
        }
}

static void stripe_start(ob_hl *h)
{
    /* full stripes go in groups of up to spg (same cell length); the short last one alone */
    uint64_t full = (uint64_t)h->k * h->lay.cell_size, rest = h->lay.size - h->pos;
    h->clen = rest >= full ? h->lay.cell_size : ob_last_cell_len(rest, h->k);
    h->ns = rest >= full ? (uint32_t)CM_MIN(rest / full, (uint64_t)h->spg) : 1;
    h->glen = (uint64_t)h->ns * h->clen;
    if (h->pacer.pace && h->pacer.pace(h->pacer.arg, (uint64_t)h->k * h->glen) != 0) {
        wind_up(h, CM_ERR_CLOSED);
        return;
    }
    memset(h->present, 0, sizeof(h->present));
    memset(h->tried, 0, sizeof(h->tried));
    int want = h->cfg.flags & OB_HEAL_VERIFY ? h->n : h->k;
    h->inflight = 1; /* held while asking, so no completion ends the reads early */
    for (int j = 0; j < want; j++)
        ask_source(h);
    if (--h->inflight == 0)
        after_reads(h);
}

static void prepared_end(ob_hl *h)
{
    h->pos = h->cell_off = 0; /* every stripe (again); targets written before skip theirs */
    cm_err e = busy(h) ? stripes_ready(h) : CM_OK;
    if (!busy(h) || e != CM_OK)
        wind_up(h, e);
    else
        stripe_start(h);
}

static void prepared_one(void *arg, const ob_chunk_result *r)
{
    hl_slot *s = arg;
    ob_hl *h = s->h;
    if (r->err != CM_OK && h->c[s->i].target)
        give_up(h, s->i, r->err);
    if (--h->inflight == 0)
        prepared_end(h);
}

/* Delete the chunk at each target not prepared yet (a stale cell, a wrong length, a corrupt
 * one). Runs from a completion, so it may end the phase itself. */
static void prepare(ob_hl *h)
{
    int idx[EC_MAX_CELLS] = {0}, keep[EC_MAX_CELLS], n = 0;
    for (int i = 0; i < h->n; i++)
        if (h->c[i].target && !h->c[i].prepared)
            idx[n++] = i;
    guarded(h, idx, n, keep); /* a target the record names now is another heal's cell */
    h->inflight = 1;
    for (int j = 0; j < n; j++) {
        int i = idx[j];
        hl_cell *c = &h->c[i];
        c->prepared = 1;
        if (keep[j])
            give_up(h, i, CM_ERR_CONFLICT);
        else if (ob_chunk_delete(c->tb, c->tdrive, &h->id, prepared_one, &h->slot[i]) == CM_OK)
            h->inflight++;
        else
            give_up(h, i, CM_ERR_UNAVAILABLE);
    }
    if (--h->inflight == 0)
        prepared_end(h);
}

/* ---- the plan ---- */

/* Another cell of the body names drive d (its old place or its target). */
static int drive_taken(const ob_hl *h, int self, pl_cell d)
{
    for (int j = 0; j < h->n; j++) {
        if (j == self)
            continue;
        if ((h->c[j].has_loc && same(h->c[j].loc, d)) || (h->c[j].target && same(h->c[j].tgt, d)))
            return 1;
    }
    return 0;
}

/* Cells other than self that the new layout would place in az. */
static int az_count(const ob_hl *h, int self, const char *az)
{
    int n = 0;
    for (int j = 0; j < h->n; j++) {
        const hl_cell *c = &h->c[j];
        const pl_cell *at = c->target ? &c->tgt : c->has_loc ? &c->loc : NULL;
        n += j != self && at && at->node < h->cfg.topo->nnodes &&
             strcmp(h->cfg.topo->nodes[at->node].az, az) == 0;
    }
    return n;
}

/* Aim cell i at drive t if no other cell names it and its AZ stays within the cap. */
static void aim(ob_hl *h, int i, pl_cell t, int cap)
{
    hl_cell *c = &h->c[i];
    if (c->src && c->has_loc && same(c->loc, t))
        return; /* already there */
    if (usable(h, t) && drive_taken(h, i, t)) {
        h->res.blocked++; /* the cell there may move in this heal: the next one can place i */
        return;
    }
    if (!usable(h, t) || az_count(h, i, h->cfg.topo->nodes[t.node].az) + 1 > cap ||
        !(c->tb = ob_resolve_cell(h->r, &t, &c->tdrive)))
        return;
    c->target = 1;
    c->tgt = t;
}

/*
 * A cell that must leave its drive (lost, or draining) whose home and handoff are taken or full:
 * any usable drive no other cell names, within the AZ cap, in near's AZ first, scanned from a
 * node picked by the blob id (so parked cells spread). The cell moves home in a later heal.
 */
static void park(ob_hl *h, int i, pl_cell near, int cap)
{
    const pl_topology *t = h->cfg.topo;
    for (int pass = 0; pass < 2 && !h->c[i].target; pass++)
        for (int j = 0; j < t->nnodes && !h->c[i].target; j++) {
            int n = (j + h->lay.blob[0]) % t->nnodes;
            if (pass == 0 && strcmp(t->nodes[n].az, t->nodes[near.node].az) != 0)
                continue;
            for (int d = 0; d < t->nodes[n].ndrives && !h->c[i].target; d++) {
                pl_cell c = {(uint16_t)n, (uint16_t)d};
                if (usable(h, c) && !drive_taken(h, i, c))
                    aim(h, i, c, cap);
            }
        }
}

/* Drive d is one of the body's homes under the current map. */
static int in_homes(const pl_cell *home, int n, pl_cell d)
{
    for (int j = 0; j < n; j++)
        if (same(home[j], d))
            return 1;
    return 0;
}

static int is_home(const ob_hl *h, const pl_cell *home, pl_cell d)
{
    return in_homes(home, h->n, d);
}

int ob_heal_at_home(const ob_heal_config *cfg, const md_layout *lay)
{
    int n = lay->k + lay->m;
    pl_cell home[PL_MAX_CELLS];
    if (lay->epoch == 0 || lay->k < 1 || n > PL_MAX_CELLS ||
        pl_place(cfg->homes, lay->blob, lay->k, lay->m, home) != CM_OK)
        return 0;
    for (int i = 0; i < n; i++) {
        pl_cell c = {lay->nodes[i], lay->drives[i]};
        if (lay->drives[i] == 0xFF || !cfg_usable(cfg, c) || !in_homes(home, n, c))
            return 0;
    }
    return 1;
}

/* A home that can take a cell and that no cell names (as its drive now or its target). */
static int free_home(const ob_hl *h, int i, pl_cell d)
{
    return usable(h, d) && !drive_taken(h, i, d);
}

/*
 * Homes are a set: a source on an up drive that is any of the body's homes stays (a layout change
 * may renumber which home is whose; moving cells to match indexes would only shuffle them, and
 * could cycle). The others take, in order: their own home when free, another free home, their
 * handoff, or (when they must leave their drive) any drive (park). A source on a handoff with no
 * free home for it stays where it is.
 */
static cm_err plan(ob_hl *h)
{
    pl_cell home[PL_MAX_CELLS], hand[PL_MAX_CELLS];
    int m = h->n - h->k, nsrc = 0, want[PL_MAX_CELLS];
    cm_err e = pl_place(h->cfg.homes, h->lay.blob, h->k, m, home);
    if (e != CM_OK)
        return e;
    memcpy(hand, home, sizeof(home));
    (void)pl_handoff(h->cfg.homes, h->lay.blob, h->k, m, hand, h->cfg.node_dead, NULL);
    int cap = pl_az_cap(h->cfg.homes, h->k, m);
    for (int i = 0; i < h->n; i++) {
        hl_cell *c = &h->c[i];
        int keep = c->src && usable(h, c->loc) && is_home(h, home, c->loc);
        nsrc += c->src;
        /* A cell whose stat failed other than "not found" (no answer, a refusal) is left where it
         * is, counted missing: it may be fine, and rebuilding it in place would delete it first
         * (prepare), so a write that then fails would lose a good cell. A later heal looks again;
         * a node that is down for the liveness view is not asked at all (its cells move). */
        want[i] = !keep && !c->unknown;
        h->res.healthy += keep;
    }
    for (int i = 0; i < h->n; i++) /* own home first, so no cell takes another's needlessly */
        if (want[i] && free_home(h, i, home[i]))
            aim(h, i, home[i], cap);
    for (int i = 0; i < h->n; i++)
        for (int j = 0; j < h->n && want[i] && !h->c[i].target; j++)
            if (free_home(h, i, home[j]))
                aim(h, i, home[j], cap);
    for (int i = 0; i < h->n; i++) {
        hl_cell *c = &h->c[i];
        int stays = c->src && usable(h, c->loc); /* on a handoff: fine until a home is free */
        if (!want[i] || c->target || stays)
            continue;
        if (free_home(h, i, hand[i]))
            aim(h, i, hand[i], cap);
        if (!c->target)
            park(h, i, home[i], cap);
    }
    return nsrc < h->k ? CM_ERR_UNAVAILABLE : CM_OK;
}

/* ---- stat ---- */

static void stat_done(void *arg, const ob_chunk_result *r)
{
    hl_slot *s = arg;
    ob_hl *h = s->h;
    h->c[s->i].src = r->err == CM_OK && r->size == h->blob_len;
    /* only "no such chunk" or a wrong length say the cell is bad; any other failure (no answer,
     * a refusal such as an unsigned retry's 401, an error on the node) leaves it unknown */
    h->c[s->i].unknown = r->err != CM_OK && r->err != CM_ERR_NOTFOUND;
    if (--h->inflight > 0)
        return;
    cm_err e = plan(h);
    if (e != CM_OK) {
        CM_WARN(MOD, "heal: no plan for a body (%s)", cm_err_str(e));
        wind_up(h, e);
    } else {
        prepare(h); /* (ends at once when there is nothing to write or verify) */
    }
}

static cm_err hl_new(ob_resolver *r, const ob_heal_config *cfg, const md_layout *lay, ob_hl **out)
{
    int n = lay->k + lay->m;
    if (lay->epoch == 0 || lay->k < 1 || n > EC_MAX_CELLS || n > PL_MAX_CELLS ||
        lay->cell_size == 0 || lay->size == 0)
        return CM_ERR_INVAL;
    ob_hl *h = calloc(1, sizeof(*h));
    if (!h)
        return CM_ERR_NOMEM;
    h->r = r;
    h->cfg = *cfg;
    if (cfg->pacer)
        h->pacer = *cfg->pacer;
    h->lay = *lay;
    h->n = n;
    h->k = lay->k;
    memcpy(h->id.b, lay->blob, sizeof(h->id.b));
    h->blob_len = ob_layout_cell_blob_len(lay);
    h->spg = lay->cell_size >= OB_HEAL_GROUP ? 1 : OB_HEAL_GROUP / lay->cell_size;
    *out = h;
    return CM_OK;
}

/*
 * The codec and the group buffer, made when the stripes start: most heals of a pass find every
 * cell healthy and end after the stats, and a buffer this large (4 MiB for 2+2 with 256 KiB cells)
 * is an mmap, a munmap and its TLB shootdown each time (a pass over healthy 1 MiB bodies spent
 * more of its page faults here than anywhere else).
 */
static cm_err stripes_ready(ob_hl *h)
{
    cm_err e = h->codec ? CM_OK : ec_new(h->lay.k, h->lay.m, &h->codec);
    if (e == CM_OK && !h->stripe &&
        posix_memalign((void **)&h->stripe, 64, (size_t)h->n * h->spg * h->lay.cell_size) != 0) {
        h->stripe = NULL;
        e = CM_ERR_NOMEM;
    }
    return e;
}

cm_err ob_heal(ob_resolver *r, const ob_heal_config *cfg, const md_layout *lay, ob_heal_done done,
               void *arg)
{
    ob_hl *h;
    cm_err e = hl_new(r, cfg, lay, &h);
    if (e != CM_OK)
        return e;
    h->done = done;
    h->arg = arg;
    int can = 0;
    for (int i = 0; i < h->n; i++) {
        hl_cell *c = &h->c[i];
        h->slot[i] = (hl_slot){h, i};
        c->has_loc = lay->drives[i] != 0xFF;
        c->loc = (pl_cell){lay->nodes[i], lay->drives[i]};
        if (c->has_loc && readable(h, c->loc))
            can += (c->sb = ob_resolve_cell(r, &c->loc, &c->sdrive)) != NULL;
    }
    for (int i = 0; can >= h->k && i < h->n; i++) {
        if (!h->c[i].sb)
            continue;
        if (ob_chunk_stat(h->c[i].sb, h->c[i].sdrive, &h->id, stat_done, &h->slot[i]) == CM_OK)
            h->inflight++;
        else
            h->c[i].unknown = 1;
    }
    if (h->inflight == 0) { /* fewer than k cells could even be asked: nothing started */
        hl_free(h);
        return CM_ERR_UNAVAILABLE;
    }
    return CM_OK;
}

/* ---- deleting what the new layout no longer names ---- */

int ob_layout_same_cells(const md_layout *a, const md_layout *b)
{
    return md_layout_same_cells(a, b);
}

typedef struct {
    int inflight, failed;
    ob_drop_done done;
    void *arg;
} hl_drop;

static void drop_one(void *arg, const ob_chunk_result *r)
{
    hl_drop *d = arg;
    d->failed += r->err != CM_OK;
    if (--d->inflight == 0) {
        d->done(d->arg, d->failed);
        free(d);
    }
}

cm_err ob_heal_drop(ob_resolver *r, const uint8_t blob[16], const pl_cell *cells, int n,
                    ob_drop_done done, void *arg)
{
    hl_drop *d = calloc(1, sizeof(*d));
    if (!d)
        return CM_ERR_NOMEM;
    bs_id id;
    memcpy(id.b, blob, sizeof(id.b));
    d->done = done;
    d->arg = arg;
    for (int i = 0; i < n; i++) {
        uint32_t drive;
        ob_chunks *b = ob_resolve_cell(r, &cells[i], &drive);
        if (b && ob_chunk_delete(b, drive, &id, drop_one, d) == CM_OK)
            d->inflight++;
        else
            d->failed++;
    }
    if (d->inflight == 0) {
        free(d);
        return n == 0 ? CM_ERR_INVAL : CM_ERR_UNAVAILABLE;
    }
    return CM_OK;
}
