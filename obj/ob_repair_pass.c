/*
 * ob_repair_pass.c - a repair pass over a node's records (ob_repair in ob_heal.h;
 * docs/chunks.md, "Repair").
 *
 * The pass walks every bucket in name order and its records in key order (md_rec_list, a page at
 * a time), and heals each part stored over nodes (layout epoch != 0) with ob_heal on the
 * resolver's loop, which it runs on the calling thread until the heal is done: a blocking driver
 * over the asynchronous heal, so the repair thread owns its loop and its pacer may sleep (with
 * OB_HEAL_LAYOUT_ONLY, a part whose layout passes ob_heal_at_home is counted, not healed). A heal
 * that changed the layout is swapped in with md_object_replace_layout (only if the part still
 * names the body healed) and only then are the chunks the new layout no longer names deleted
 * (with defer_obsolete: recorded as a garbage record stamped now, naming only those cells, that
 * ob_gc_run frees after its grace period unless the record names them again by then, ob_gc.c);
 * when the record changed meanwhile (the swap's CM_ERR_CONFLICT), the cells just written are
 * deleted instead (and when it now names another layout of the same body, the part is healed
 * again from that one: heal_part), and after any other failure of the swap (which may have
 * reached a replica) nothing is. No chunk is deleted that the record names when it is read just
 * before (current): when it names another layout of the body than the one this step assumed, that
 * layout is another node's heal, and the chunks it names are that heal's cells (the heal's own
 * deletes, prepare and cleanup, go through the same check as its guard). That check cannot see
 * another heal that has not swapped yet: its prepare may delete (and rewrite, or not) a cell this
 * heal wrote, before this swap lands. So each cell the heal wrote is stat'ed before the swap (one
 * gone or short: no swap, nothing deleted), and after a swap lands every one is read back
 * (length and the CRC32C the heal kept, 1 MiB at a time, paced); one that differs is deleted and
 * the part healed again from the swapped layout (docs/chunks.md, "Two heals of one body"). A
 * cluster node plugs in which records are its to heal (mine) and how a layout is swapped (swap:
 * through the replicated records rather than this store alone).
 *
 * Cursor: "cairn-repair-cursor 1\n<bucket len> <key len>\n<bucket><key>" is written to a
 * temporary file, synced and renamed over the state file (keys may hold any byte, so lengths, not
 * lines), after a record whose heal was swapped in, when the pass is stopped, and otherwise at
 * most every CURSOR_SAVE_MS: once per record, its open, fdatasync and rename were most of what a
 * node did between heals (a pass over 8,400 healthy records made 700 fdatasyncs a second on every
 * node of the loopback cluster). A crash therefore re-visits up to a second of healthy records,
 * which costs reads only. A pass resumes after it and removes it when it ends without being
 * stopped.
 *
 * Numbers: records to visit are counted when the pass starts (a key-only walk); MB/s is the cell
 * bytes written over the time spent healing in the last OB_RATE_WINDOW heals that wrote some; the
 * ETA extrapolates the degraded share seen so far over the records left. Time to full redundancy
 * is from the first degraded body seen to the last one healed, once a pass ended with none left.
 *
 * Threading: run on one thread; stop and status from any (a mutex guards the status).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"
#include "ob_heal.h"

#define MOD "ob"
#define OB_RATE_WINDOW 8
#define CURSOR_MAGIC "cairn-repair-cursor 1"
#define CURSOR_SAVE_MS 1000 /* the cursor of records without a heal is saved this often */

struct ob_repair {
    ob_repair_config cfg;
    char *state_path;
    pthread_mutex_t mu;
    atomic_int stop;
    ob_repair_status st;
    uint64_t win_bytes[OB_RATE_WINDOW];
    int64_t win_ms[OB_RATE_WINDOW];
    int win_next;
    ob_pacer inner;    /* the caller's pacer plus the stop flag */
    int64_t cursor_ms; /* when the cursor was last saved */
    int cursor_behind; /* records were visited since (st.bucket, st.key is the last) */
    /* the part being healed, for the heal's guard */
    const char *g_bucket, *g_key;
    size_t g_part;
    md_layout g_expect; /* the layout the heal started from */
};

/* ---- the cursor file ---- */

static void cursor_save(ob_repair *rp, const char *bucket, const char *key)
{
    char tmp[4200];
    if (!rp->state_path || snprintf(tmp, sizeof(tmp), "%s.tmp", rp->state_path) >= (int)sizeof(tmp))
        return;
    FILE *f = fopen(tmp, "w");
    int ok = f && fprintf(f, CURSOR_MAGIC "\n%zu %zu\n%s%s", strlen(bucket), strlen(key), bucket,
                          key) > 0;
    ok = ok && fflush(f) == 0 && fdatasync(fileno(f)) == 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, rp->state_path) != 0)
        CM_WARN(MOD, "cannot record the repair cursor in %s: %s", rp->state_path, strerror(errno));
}

/* The saved cursor into bucket/key ("" when none or unreadable: from the start). */
static void cursor_load(ob_repair *rp, char *bucket, char *key)
{
    bucket[0] = key[0] = '\0';
    FILE *f = rp->state_path ? fopen(rp->state_path, "r") : NULL;
    char magic[32];
    size_t bl, kl;
    if (f && fgets(magic, sizeof(magic), f) && strcmp(magic, CURSOR_MAGIC "\n") == 0 &&
        fscanf(f, "%zu %zu", &bl, &kl) == 2 && fgetc(f) == '\n' && bl <= MD_BUCKET_MAX &&
        kl <= MD_MAX_KEY && fread(bucket, 1, bl, f) == bl && fread(key, 1, kl, f) == kl) {
        bucket[bl] = key[kl] = '\0';
    } else {
        if (f)
            CM_WARN(MOD, "repair cursor %s unreadable: the pass starts over", rp->state_path);
        bucket[0] = key[0] = '\0';
    }
    if (f)
        fclose(f);
}

/* ---- driving the loop ---- */

typedef struct {
    int done;
    cm_err err;
    ob_heal_result res;
    int failed;
} waiter;

static void heal_cb(void *arg, cm_err err, const ob_heal_result *res)
{
    waiter *w = arg;
    w->err = err;
    w->res = *res;
    w->done = 1;
}

static void drop_cb(void *arg, int failed)
{
    waiter *w = arg;
    w->failed = failed;
    w->done = 1;
}

static void run_until(ob_repair *rp, waiter *w)
{
    while (!w->done)
        event_base_loop(rp->cfg.base, EVLOOP_ONCE);
}

static int inner_pace(void *arg, uint64_t n)
{
    ob_repair *rp = arg;
    if (atomic_load(&rp->stop))
        return 1;
    const ob_pacer *p = rp->cfg.pacer;
    return p && p->pace ? p->pace(p->arg, n) : 0;
}

/* The part's layout as the record holds it now (ob_repair_config.current). */
static cm_err current(ob_repair *rp, const char *bucket, const char *key, size_t part,
                      md_layout *out)
{
    if (rp->cfg.current)
        return rp->cfg.current(rp->cfg.hook_arg, bucket, key, part, out);
    md_object o;
    memset(&o, 0, sizeof(o));
    cm_err e = md_rec_get(rp->cfg.md, bucket, key, &o);
    if (e == CM_OK && (o.tombstone || part >= o.nparts || MD_PART_INLINE(&o.parts[part])))
        e = CM_ERR_NOTFOUND;
    if (e == CM_OK)
        *out = o.parts[part].layout;
    md_object_release(&o);
    return e;
}

/*
 * keep[i] = 1 for each of cells[0..n) (chunks of expect's blob) that the record names now while
 * it names another layout than expect (another heal's swap got there first): those chunks are
 * that heal's cells, not this one's to delete. Every cell is kept when the record cannot be read.
 */
static void named_now(ob_repair *rp, const char *bucket, const char *key, size_t part,
                      const md_layout *expect, const pl_cell *cells, int n, int *keep)
{
    md_layout now;
    memset(keep, 0, (size_t)n * sizeof(*keep));
    cm_err e = current(rp, bucket, key, part, &now);
    if (e == CM_ERR_NOTFOUND)
        return;
    for (int i = 0; i < n; i++) {
        int named = e != CM_OK;
        for (int j = 0; e == CM_OK && j < now.k + now.m && j < MD_MAX_CELLS; j++)
            named |= memcmp(now.blob, expect->blob, 16) == 0 && now.drives[j] != 0xFF &&
                     now.nodes[j] == cells[i].node && now.drives[j] == cells[i].drive;
        keep[i] = named && !(e == CM_OK && ob_layout_same_cells(&now, expect));
    }
}

static void heal_guard(void *arg, const pl_cell *cells, int n, int *keep)
{
    ob_repair *rp = arg;
    named_now(rp, rp->g_bucket, rp->g_key, rp->g_part, &rp->g_expect, cells, n, keep);
}

/* Delete cells[0..n) of blob, but none that the record names now unless it names expect;
 * failures are orphans for the orphan sweep (logged). */
static void drop(ob_repair *rp, const char *bucket, const char *key, size_t part,
                 const md_layout *expect, const pl_cell *cells, int n)
{
    waiter w = {0};
    pl_cell go[2 * MD_MAX_CELLS];
    int keep[2 * MD_MAX_CELLS], ngo = 0;
    if (n == 0)
        return;
    named_now(rp, bucket, key, part, expect, cells, n, keep);
    for (int i = 0; i < n; i++)
        if (!keep[i])
            go[ngo++] = cells[i];
    if (ngo < n)
        CM_WARN(MOD, "repair: %s/%s part %zu: %d chunks kept, the record names them now", bucket,
                key, part, n - ngo);
    if (ngo == 0 || ob_heal_drop(rp->cfg.r, expect->blob, go, ngo, drop_cb, &w) != CM_OK)
        return;
    run_until(rp, &w);
    if (w.failed)
        CM_WARN(MOD, "repair: %d chunks not deleted after a heal: orphans", w.failed);
}

/*
 * The obsolete cells of a swap as a garbage record stamped now (defer_obsolete): lay's blob with
 * only those cells (indices of the heal's topology, which is lay's epoch); ob_gc_run frees them
 * after its grace period, skipping any the record names again by then. 0 when recorded, else the
 * caller deletes them at once.
 */
static int defer(ob_repair *rp, const char *bucket, const char *key, const md_layout *lay,
                 const pl_cell *cells, int n)
{
    md_garbage g = {MD_HLC_MAKE(cm_now_ms(), 0), *lay, (char *)bucket, (char *)key};
    memset(g.layout.drives, 0xFF, sizeof(g.layout.drives));
    for (int i = 0; i < n && i < g.layout.k + g.layout.m && i < MD_MAX_CELLS; i++) {
        g.layout.nodes[i] = cells[i].node;
        g.layout.drives[i] = (uint8_t)cells[i].drive;
    }
    cm_err e = md_garbage_put(rp->cfg.md, &g, 1);
    if (e != CM_OK)
        CM_WARN(MOD, "repair: %s/%s: obsolete cells not deferred (%s): deleted now", bucket, key,
                cm_err_str(e));
    return e != CM_OK;
}

/* ---- numbers ---- */

static void rate_add(ob_repair *rp, uint64_t bytes, int64_t ms)
{
    rp->win_bytes[rp->win_next] = bytes;
    rp->win_ms[rp->win_next] = ms > 0 ? ms : 1;
    rp->win_next = (rp->win_next + 1) % OB_RATE_WINDOW;
    uint64_t b = 0;
    int64_t t = 0;
    for (int i = 0; i < OB_RATE_WINDOW; i++)
        b += rp->win_bytes[i], t += rp->win_ms[i];
    rp->st.mbps = t > 0 ? (double)b / 1e6 / ((double)t / 1e3) : 0;
}

static void eta_update(ob_repair_status *s)
{
    s->eta_s = -1;
    if (s->scanned == 0 || s->mbps <= 0 || s->healed == 0)
        return;
    double left = s->records > s->scanned ? (double)(s->records - s->scanned) : 0;
    double degraded_left = left * (double)s->degraded / (double)s->scanned;
    double bytes_each = (double)s->bytes / (double)s->healed;
    s->eta_s = degraded_left * bytes_each / (s->mbps * 1e6);
}

/* ---- one part ---- */

/* The cells lay names that old does not (written by the heal) into out; their count. */
static int fresh_cells(const md_layout *old, const md_layout *lay, pl_cell *out)
{
    int n = 0;
    for (int i = 0; i < old->k + old->m && i < MD_MAX_CELLS; i++)
        if (lay->drives[i] != 0xFF &&
            (lay->nodes[i] != old->nodes[i] || lay->drives[i] != old->drives[i]))
            out[n++] = (pl_cell){lay->nodes[i], lay->drives[i]};
    return n;
}

/* ---- the cells a swap put in, read back ---- */

#define READBACK_BYTES (1u << 20) /* one read of a written cell at a time */

typedef struct {
    waiter w;
    uint32_t crc;
    uint64_t got;
} readback;

static void readback_cb(void *arg, const ob_chunk_result *r)
{
    readback *b = arg;
    b->w.err = r->err;
    if (r->err == CM_OK && !r->data) { /* a stat */
        b->got = r->size;
    } else if (r->err == CM_OK) {
        b->got = evbuffer_get_length(r->data);
        b->crc = cm_crc32c(b->crc, evbuffer_pullup(r->data, -1), b->got);
    }
    b->w.done = 1;
}

/* 1 when the chunk at c has the whole cell blob length, 0 when it is gone or not, -1 when the
 * stat got no answer. */
static int cell_whole(ob_repair *rp, const md_layout *lay, ob_chunks *b, uint32_t drive,
                      const bs_id *id)
{
    readback rb = {0};
    if (ob_chunk_stat(b, drive, id, readback_cb, &rb) != CM_OK)
        return -1;
    run_until(rp, &rb.w);
    if (rb.w.err != CM_OK)
        return rb.w.err == CM_ERR_NOTFOUND ? 0 : -1;
    return rb.got == ob_layout_cell_blob_len(lay);
}

/*
 * 1 when the chunk at c holds exactly the cell the heal wrote there (crc: CRC32C of the whole
 * cell blob; with full 0 only its length is looked at), 0 when it is gone, short, corrupt or
 * other bytes, -1 when it cannot be read now (no answer, or the pass is stopping: nothing to
 * say). Read a piece at a time, paced as heals are.
 */
static int cell_as_written(ob_repair *rp, const md_layout *lay, pl_cell c, uint32_t crc, int full)
{
    uint32_t drive;
    bs_id id;
    ob_chunks *b = ob_resolve_cell(rp->cfg.r, &c, &drive);
    uint64_t len = ob_layout_cell_blob_len(lay);
    readback rb = {0};
    if (!b)
        return -1;
    memcpy(id.b, lay->blob, sizeof(id.b));
    if (!full)
        return cell_whole(rp, lay, b, drive, &id);
    for (uint64_t off = 0; off < len; off += rb.got) {
        uint64_t n = CM_MIN(len - off, (uint64_t)READBACK_BYTES);
        rb.w.done = 0, rb.got = 0;
        if (inner_pace(rp, n) || ob_chunk_read(b, drive, &id, off, n, readback_cb, &rb) != CM_OK)
            return -1;
        run_until(rp, &rb.w);
        if (rb.w.err == CM_OK && rb.got != n)
            return 0;
        if (rb.w.err != CM_OK)
            return rb.w.err == CM_ERR_NOTFOUND || rb.w.err == CM_ERR_RANGE ||
                           rb.w.err == CM_ERR_CORRUPT
                       ? 0
                       : -1;
    }
    return rb.crc == crc;
}

/*
 * The cells the heal wrote that the record now names but that no longer hold what the heal wrote:
 * another node's heal of the same body, started from the layout this one replaced, deleted the
 * chunks at its targets (its prepare, while the record still named that layout) and either
 * stopped before writing them again or wrote another cell there (its plan differed). Those are
 * deleted (unless the record names another layout by then), so that the next heal, from the
 * layout swapped in, finds them missing and rebuilds them where they are: a wrong cell of full
 * length would pass its stat as a source. Their count.
 */
static int written_bad(ob_repair *rp, const char *bucket, const char *key, size_t part,
                       const ob_heal_result *res)
{
    pl_cell bad[MD_MAX_CELLS];
    int n = 0;
    for (int i = 0; i < res->nwritten; i++)
        if (cell_as_written(rp, &res->lay, res->written[i], res->written_crc[i], 1) == 0)
            bad[n++] = res->written[i];
    drop(rp, bucket, key, part, &res->lay, bad, n);
    return n;
}

/* One heal of the part at *old, swapped in (then *old = the new layout) when it changed;
 * *broken when a cell it swapped in is not whole any more (heal again). */
static cm_err heal_once(ob_repair *rp, const char *bucket, const char *key, size_t part,
                        md_layout *old, waiter *w, int *swapped, int *broken)
{
    ob_heal_config hc = {
        rp->cfg.topo, rp->cfg.homes, rp->cfg.node_dead, &rp->inner, rp->cfg.flags, heal_guard, rp};
    rp->g_bucket = bucket, rp->g_key = key, rp->g_part = part, rp->g_expect = *old;
    int64_t t0 = cm_monotonic_ms();
    cm_err e = ob_heal(rp->cfg.r, &hc, old, heal_cb, w);
    if (e != CM_OK)
        w->err = e, w->done = 1;
    run_until(rp, w);
    *swapped = *broken = 0;
    if (w->err != CM_OK || !w->res.changed)
        return w->err;
    for (int i = 0; i < w->res.nwritten; i++) /* a stat each: another heal at work? */
        if (cell_as_written(rp, &w->res.lay, w->res.written[i], 0, 0) == 0) {
            CM_WARN(MOD,
                    "repair: %s/%s part %zu: a cell just written is gone or short (another heal "
                    "of the body?): not swapped in, nothing deleted",
                    bucket, key, part);
            return CM_ERR_CONFLICT;
        }
    cm_err se = rp->cfg.swap ? rp->cfg.swap(rp->cfg.hook_arg, bucket, key, part, old, &w->res.lay)
                             : md_object_replace_layout(rp->cfg.md, bucket, key, part, old->blob,
                                                        &w->res.lay);
    pl_cell go[2 * MD_MAX_CELLS];
    int n = 0;
    if (se == CM_OK) {
        *swapped = 1;
        memcpy(go, w->res.obsolete, (size_t)w->res.nobsolete * sizeof(go[0]));
        n = w->res.nobsolete;
        if (n > 0 && rp->cfg.defer_obsolete && !defer(rp, bucket, key, &w->res.lay, go, n))
            n = 0; /* freed after the grace period (ob_gc_run) */
        /* Another node's swap of the same version may have won over this one (it resolves by
         * the stamps, docs/chunks.md): then the cells written here belong to nothing either.
         * Only a third layout says so: the old one read back may be a stale read (an available
         * bucket's read may answer from one replica) while this swap holds. */
        md_layout now;
        if (current(rp, bucket, key, part, &now) == CM_OK && !memcmp(now.blob, old->blob, 16) &&
            !ob_layout_same_cells(&now, &w->res.lay) && !ob_layout_same_cells(&now, old)) {
            CM_WARN(MOD, "repair: %s/%s part %zu: another layout won over the swap", bucket, key,
                    part);
            n += fresh_cells(old, &w->res.lay, go + n);
        } else if ((*broken = written_bad(rp, bucket, key, part, &w->res)) > 0) {
            CM_WARN(MOD,
                    "repair: %s/%s part %zu: %d cells swapped in do not hold what was written "
                    "(another heal of the body?): healed again",
                    bucket, key, part, *broken);
        }
        drop(rp, bucket, key, part, &w->res.lay, go, n);
        *old = w->res.lay;
        pthread_mutex_lock(&rp->mu);
        rp->st.cells += (uint64_t)w->res.rebuilt;
        rp->st.bytes += w->res.bytes;
        rate_add(rp, w->res.bytes, cm_monotonic_ms() - t0);
        pthread_mutex_unlock(&rp->mu);
        return CM_OK;
    }
    /* Only CM_ERR_CONFLICT says the record certainly did not take the new layout (it changed
     * meanwhile): then what was written belongs to nothing. Any other failure (no quorum, a
     * timeout) may have left the new layout on a replica, from where it can still win: deleting
     * the new cells then would leave the record naming chunks that are gone. Both sets stay; a
     * later pass heals what the record ends up naming, and the others are orphans. */
    if (se == CM_ERR_CONFLICT)
        n = fresh_cells(old, &w->res.lay, go);
    drop(rp, bucket, key, part, old, go, n);
    CM_WARN(MOD, "repair: %s/%s part %zu not swapped in: %s", bucket, key, part, cm_err_str(se));
    return se;
}

/*
 * Heal one part: again while a heal reports cells blocked by another cell's old place, or a cell
 * it swapped in is not whole any more, or its swap lost to another change of the part (at most 4
 * rounds: a layout change can reshuffle which drive is whose home).
 */
static cm_err heal_part(ob_repair *rp, const char *bucket, const char *key, size_t part,
                        const md_layout *stored)
{
    md_layout cur = *stored;
    waiter w;
    int swapped = 0, broken = 0, degraded = 0;
    cm_err e = CM_OK;
    ob_heal_config hc = {rp->cfg.topo, rp->cfg.homes, rp->cfg.node_dead, NULL, 0, NULL, NULL};
    if ((rp->cfg.flags & OB_HEAL_LAYOUT_ONLY) && !(rp->cfg.flags & OB_HEAL_VERIFY) &&
        ob_heal_at_home(&hc, stored)) {
        pthread_mutex_lock(&rp->mu);
        rp->st.parts++;
        rp->st.trusted++;
        pthread_mutex_unlock(&rp->mu);
        return CM_OK;
    }
    for (int round = 0; round < 4; round++) {
        memset(&w, 0, sizeof(w));
        e = heal_once(rp, bucket, key, part, &cur, &w, &swapped, &broken);
        if (e == CM_ERR_CLOSED)
            return e;
        md_layout now;
        if (e == CM_ERR_CONFLICT && round < 3 && current(rp, bucket, key, part, &now) == CM_OK &&
            !memcmp(now.blob, cur.blob, sizeof(now.blob)) && !ob_layout_same_cells(&now, &cur)) {
            /* the record moved on meanwhile (another node's heal of the body won its swap, as
             * two nodes may both take a partition for theirs while the member list settles):
             * look again from what it names now, which is often whole already */
            CM_INFO(MOD, "repair: %s/%s part %zu: another change won; healing what it names now",
                    bucket, key, part);
            cur = now;
            continue;
        }
        degraded |= e != CM_OK || w.res.rebuilt > 0 || w.res.missing > 0 || w.res.blocked > 0;
        if (!swapped || (w.res.blocked == 0 && !broken))
            break;
    }
    pthread_mutex_lock(&rp->mu);
    ob_repair_status *s = &rp->st;
    s->parts++;
    if (degraded) {
        s->degraded++;
        if (!s->first_degraded_ms)
            s->first_degraded_ms = cm_now_ms();
        if (e == CM_OK && w.res.missing == 0 && w.res.blocked == 0 && !broken) {
            s->healed++;
            s->last_healed_ms = cm_now_ms();
        } else {
            s->failed++;
        }
    }
    pthread_mutex_unlock(&rp->mu);
    return CM_OK;
}

static cm_err do_record(ob_repair *rp, const char *bucket, const char *key)
{
    md_object o;
    memset(&o, 0, sizeof(o));
    if (rp->cfg.mine && !rp->cfg.mine(rp->cfg.hook_arg, bucket, key))
        return CM_OK; /* another node heals it */
    cm_err e = md_rec_get(rp->cfg.md, bucket, key, &o);
    if (e == CM_ERR_NOTFOUND)
        return CM_OK; /* deleted since the listing */
    for (size_t p = 0; e == CM_OK && !o.tombstone && !o.delete_marker && p < o.nparts; p++) {
        const md_part *pt = &o.parts[p];
        if (!MD_PART_INLINE(pt) && pt->layout.epoch != 0 && pt->layout.size > 0)
            e = heal_part(rp, bucket, key, p, &pt->layout);
    }
    md_object_release(&o);
    return e;
}

/* ---- the pass ---- */

/* Keys of bucket after `after`, a page at a time; fn per key until it fails. */
typedef cm_err (*key_fn)(ob_repair *rp, const char *bucket, const char *key);

static cm_err walk(ob_repair *rp, const char *bucket, const char *after, key_fn fn)
{
    char from[MD_MAX_KEY + 1];
    snprintf(from, sizeof(from), "%s", after);
    for (int more = 1; more;) {
        md_rec_info *infos = NULL;
        size_t n = 0;
        cm_err e =
            md_rec_list(rp->cfg.md, bucket, from[0] ? from : NULL, rp->cfg.page, &infos, &n, &more);
        for (size_t i = 0; e == CM_OK && i < n; i++)
            e = fn(rp, bucket, infos[i].key);
        if (e == CM_OK && n > 0)
            snprintf(from, sizeof(from), "%s", infos[n - 1].key);
        md_rec_infos_free(infos, n);
        if (e != CM_OK)
            return e;
        more = more && n > 0;
    }
    return CM_OK;
}

static cm_err count_one(ob_repair *rp, const char *bucket, const char *key)
{
    (void)bucket, (void)key;
    pthread_mutex_lock(&rp->mu);
    rp->st.records++;
    pthread_mutex_unlock(&rp->mu);
    return CM_OK;
}

/* The cursor of the last record visited, if it was not saved yet (this thread writes st's). */
static void cursor_catch_up(ob_repair *rp)
{
    if (rp->cursor_behind)
        cursor_save(rp, rp->st.bucket, rp->st.key);
    rp->cursor_behind = 0;
}

static cm_err visit_one(ob_repair *rp, const char *bucket, const char *key)
{
    if (atomic_load(&rp->stop))
        return CM_ERR_CLOSED;
    uint64_t healed = rp->st.healed;
    cm_err e = do_record(rp, bucket, key);
    if (e != CM_OK)
        return e;
    pthread_mutex_lock(&rp->mu);
    rp->st.scanned++;
    snprintf(rp->st.bucket, sizeof(rp->st.bucket), "%s", bucket);
    snprintf(rp->st.key, sizeof(rp->st.key), "%s", key);
    eta_update(&rp->st);
    healed = rp->st.healed != healed;
    pthread_mutex_unlock(&rp->mu);
    rp->cursor_behind = 1;
    int64_t now = cm_now_ms();
    if (healed || now - rp->cursor_ms >= CURSOR_SAVE_MS || now < rp->cursor_ms) {
        cursor_catch_up(rp);
        rp->cursor_ms = now;
    }
    return CM_OK;
}

/* fn over every record after the cursor (cb, ck). */
static cm_err each(ob_repair *rp, md_bucket *bs, size_t nb, const char *cb, const char *ck,
                   key_fn fn)
{
    cm_err e = CM_OK;
    for (size_t i = 0; e == CM_OK && i < nb; i++) {
        int c = strcmp(bs[i].name, cb);
        if (cb[0] && c < 0)
            continue;
        e = walk(rp, bs[i].name, cb[0] && c == 0 ? ck : "", fn);
    }
    return e;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const md_bucket *)a)->name, ((const md_bucket *)b)->name);
}

cm_err ob_repair_run(ob_repair *rp)
{
    char cb[MD_BUCKET_MAX + 1], ck[MD_MAX_KEY + 1];
    md_bucket *bs = NULL;
    size_t nb = 0;
    cm_err e = md_bucket_list(rp->cfg.md, &bs, &nb);
    if (e != CM_OK)
        return e;
    if (nb > 1) /* no buckets: bs may be NULL, which qsort must not get */
        qsort(bs, nb, sizeof(*bs), name_cmp);
    cursor_load(rp, cb, ck);
    pthread_mutex_lock(&rp->mu);
    memset(&rp->st, 0, sizeof(rp->st));
    memset(rp->win_bytes, 0, sizeof(rp->win_bytes));
    memset(rp->win_ms, 0, sizeof(rp->win_ms));
    rp->st.running = 1;
    rp->st.eta_s = rp->st.full_redundancy_s = -1;
    pthread_mutex_unlock(&rp->mu);
    e = each(rp, bs, nb, cb, ck, count_one);
    if (e == CM_OK) {
        rp->cursor_ms = cm_now_ms();
        e = each(rp, bs, nb, cb, ck, visit_one);
    }
    if (e != CM_OK)
        cursor_catch_up(rp); /* stopped or failed: resume after the last record done */
    free(bs);
    pthread_mutex_lock(&rp->mu);
    ob_repair_status *s = &rp->st;
    s->running = 0;
    if (e == CM_OK) {
        s->eta_s = 0;
        if (s->failed == 0)
            s->full_redundancy_s =
                s->degraded ? (double)(s->last_healed_ms - s->first_degraded_ms) / 1e3 : 0;
    }
    pthread_mutex_unlock(&rp->mu);
    if (e == CM_OK && rp->state_path && unlink(rp->state_path) != 0 && errno != ENOENT)
        CM_WARN(MOD, "cannot remove %s: %s", rp->state_path, strerror(errno));
    return e;
}

cm_err ob_repair_new(const ob_repair_config *cfg, ob_repair **out)
{
    ob_repair *rp = calloc(1, sizeof(*rp));
    if (!rp)
        return CM_ERR_NOMEM;
    rp->cfg = *cfg;
    if (rp->cfg.page == 0)
        rp->cfg.page = 256;
    if (cfg->state_path && !(rp->state_path = strdup(cfg->state_path))) {
        free(rp);
        return CM_ERR_NOMEM;
    }
    rp->cfg.state_path = rp->state_path;
    rp->inner = (ob_pacer){inner_pace, NULL, rp};
    rp->st.eta_s = rp->st.full_redundancy_s = -1;
    pthread_mutex_init(&rp->mu, NULL);
    *out = rp;
    return CM_OK;
}

void ob_repair_free(ob_repair *rp)
{
    if (!rp)
        return;
    pthread_mutex_destroy(&rp->mu);
    free(rp->state_path);
    free(rp);
}

void ob_repair_stop(ob_repair *rp)
{
    atomic_store(&rp->stop, 1);
}

void ob_repair_status_get(ob_repair *rp, ob_repair_status *out)
{
    pthread_mutex_lock(&rp->mu);
    *out = rp->st;
    pthread_mutex_unlock(&rp->mu);
}
