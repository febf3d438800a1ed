/*
 * ob_heal.h - repair and rebalancing of bodies spread over nodes (issue 9, section 2.9;
 * docs/chunks.md, "Repair").
 *
 * ob_heal brings one body (its md_layout, epoch != 0) back to k+m healthy cells at the places
 * the current layout wants: every cell is stat'ed; a cell is healthy when its chunk exists with
 * the right length on a drive that is up on a live node. The others (missing, wrong length,
 * corrupt when read, dropped at write = 0xFF, on a node down or removed, on a draining drive)
 * are rebuilt stripe by stripe from k healthy cells and written to a home (pl_place under the
 * current map: the homes are a set, a healthy cell on any of them stays) or, when no home can
 * take them, to a handoff drive (pl_handoff), at most pl_az_cap cells per AZ. A healthy cell on
 * a handoff drive moves to a home that is usable again (copied, not decoded). Every written cell is
 * synced before the new layout is handed back; the caller swaps it in (md_object_replace_layout)
 * and only then deletes the chunks the new layout no longer names (ob_heal_drop).
 *
 * ob_repair is a pass over a node's md_store that heals every degraded body, with progress,
 * a resumable cursor and the numbers the issue asks for (time to full redundancy, MB/s).
 *
 * Threading: ob_heal is asynchronous on the resolver's loop, like ob_put_body. Its pacer runs
 * on that loop before each stripe and may sleep: the loop is meant to be the repair thread's own
 * (ob_repair runs the loop of its resolver on the calling thread), never a serving loop.
 */
#ifndef OB_HEAL_H
#define OB_HEAL_H

#include <stdint.h>

#include "ob.h"
#include "ob_chunk.h"

#define OB_HEAL_VERIFY 1u /* read every readable cell of every stripe (finds corrupt ones) */
/* A pass (ob_repair) trusts a body whose layout passes ob_heal_at_home: no stat, no heal. */
#define OB_HEAL_LAYOUT_ONLY 2u

typedef struct {
    const pl_topology *topo;  /* the current layout: states, AZs (borrowed for the call) */
    const pl_map *homes;      /* pl_map_new(topo, PL_MAP_HOMES) */
    const uint8_t *node_dead; /* liveness, indexed like topo->nodes; NULL = all alive */
    const ob_pacer *pacer;    /* pace(arg, bytes read) before each stripe; NULL = unpaced */
    unsigned flags;           /* OB_HEAL_VERIFY */
    /* Before the heal deletes chunks of the body (prepare, and what it wrote when it gives up):
     * keep[i] = 1 for each of cells[0..n) it must leave alone, because the body's record now
     * names it (another node's heal swapped it in). NULL: delete them all. May block; runs on
     * the loop (the repair thread's own). */
    void (*guard)(void *arg, const pl_cell *cells, int n, int *keep);
    void *guard_arg;
} ob_heal_config;

typedef struct {
    md_layout lay;  /* the new layout (epoch = topo->epoch when changed) */
    int changed;    /* lay names other cells than the old one: swap it in */
    int healthy;    /* cells healthy on a home at the start */
    int rebuilt;    /* cells written (rebuilt or moved) and synced */
    int missing;    /* cells the new layout still lacks or keeps on an unusable drive */
    uint64_t bytes; /* cell bytes written */
    int blocked;    /* cells whose place another cell of the body holds now (a home reshuffled
                     * by a layout change): heal again once lay is swapped in */
    int nobsolete;  /* chunks to delete once lay is swapped in */
    pl_cell obsolete[MD_MAX_CELLS];
    /* the cells written (lay names them) and the CRC32C of each whole chunk as written: read
     * back after the swap, since another node's heal of the body may have replaced one */
    int nwritten;
    pl_cell written[MD_MAX_CELLS];
    uint32_t written_crc[MD_MAX_CELLS];
} ob_heal_result;

/* res is valid during the call (also on error: counts only). */
typedef void (*ob_heal_done)(void *arg, cm_err err, const ob_heal_result *res);

/*
 * Heal the body at lay (copied). done runs once, on the loop, never inside this call. Errors
 * through done: CM_ERR_UNAVAILABLE when fewer than k cells can be read (nothing changed),
 * CM_ERR_CLOSED when the pacer stopped it (the cells written so far are deleted), CM_ERR_NOMEM.
 * Returned at once: CM_ERR_INVAL for a layout of epoch 0 or a bad profile, CM_ERR_NOMEM.
 */
cm_err ob_heal(ob_resolver *r, const ob_heal_config *cfg, const md_layout *lay, ob_heal_done done,
               void *arg);

/*
 * Delete chunk blob on each of cells[0..n) (after the swap). done(arg, failed) counts the
 * deletes that failed (orphans left for the orphan sweep); it runs on the loop, never inside.
 */
typedef void (*ob_drop_done)(void *arg, int failed);
cm_err ob_heal_drop(ob_resolver *r, const uint8_t blob[16], const pl_cell *cells, int n,
                    ob_drop_done done, void *arg);

/*
 * Whether lay, as written, already is what a heal would leave: every cell names a drive (none
 * dropped at write), each drive a home of the body under cfg->homes, up on a live node
 * (cfg->node_dead). Reads the layout only: a chunk lost from a drive that still looks up is not
 * seen (a full heal stats every cell). Any thread.
 */
int ob_heal_at_home(const ob_heal_config *cfg, const md_layout *lay);

/* a and b name the same blob, size and cells (node and drive of each) */
int ob_layout_same_cells(const md_layout *a, const md_layout *b);

/* ---- a repair pass over a node's records (ob_repair_pass.c) ---- */

typedef struct {
    md_store *md;
    ob_resolver *r;          /* on base's loop */
    struct event_base *base; /* the repair thread's loop: ob_repair_run drives it */
    const pl_topology *topo;
    const pl_map *homes;
    const uint8_t *node_dead;
    const char *state_path; /* the cursor file (NULL: no resume) */
    const ob_pacer *pacer;  /* NULL = unpaced */
    unsigned flags;         /* OB_HEAL_VERIFY, OB_HEAL_LAYOUT_ONLY */
    size_t page;            /* records per listing page (0 = 256) */
    /* A cluster node (cmd/cluster_repair.c): mine says whether this node heals bucket/key (NULL:
     * every record); swap replaces a part's layout where the record lives (NULL:
     * md_object_replace_layout on md), with its contract: CM_ERR_CONFLICT when the part no
     * longer names exactly old (ob_layout_same_cells), and only when the record is certainly
     * unchanged (the pass then deletes the cells just written that the record does not name;
     * after any other error it keeps them, since the new layout may have reached a replica);
     * current gives the part's layout as the record holds it now (NULL: md_rec_get on md;
     * CM_ERR_NOTFOUND: no record or no such part; another error: unknown), read before any
     * chunk of the body is deleted, so that no cell the record names is. All run on the pass's
     * thread and may block. */
    int (*mine)(void *arg, const char *bucket, const char *key);
    cm_err (*swap)(void *arg, const char *bucket, const char *key, size_t part,
                   const md_layout *old, const md_layout *lay);
    cm_err (*current)(void *arg, const char *bucket, const char *key, size_t part, md_layout *out);
    void *hook_arg;
    /* Nonzero: the old places a swap leaves (the obsolete cells) are not deleted at once but
     * become a garbage record on md stamped now, naming only them, for ob_gc_run to free after
     * its grace period unless the record names them again by then (a GET elsewhere may still be
     * reading the old layout). Zero: deleted right after the swap. */
    int defer_obsolete;
} ob_repair_config;

typedef struct {
    int running;
    uint64_t records;  /* records of the pass (counted when it starts) */
    uint64_t scanned;  /* records looked at */
    uint64_t parts;    /* bodies over nodes checked */
    uint64_t trusted;  /* of them, passed on their layout alone (OB_HEAL_LAYOUT_ONLY) */
    uint64_t degraded; /* bodies found degraded */
    uint64_t healed;   /* of them, brought back and swapped in */
    uint64_t failed;   /* could not be healed now (too few cells, no place, conflict) */
    uint64_t cells;    /* cells rebuilt or moved */
    uint64_t bytes;    /* their bytes */
    double mbps;       /* bytes rebuilt per second over the last few heals (MB = 1e6) */
    double eta_s;      /* estimate for the rest of the pass; -1 unknown */
    int64_t first_degraded_ms, last_healed_ms; /* wall clock, 0 = none yet */
    double full_redundancy_s; /* last_healed - first_degraded once the pass ended clean; else -1 */
    char bucket[MD_BUCKET_MAX + 1]; /* the cursor: last record done */
    char key[MD_MAX_KEY + 1];
} ob_repair_status;

typedef struct ob_repair ob_repair;

cm_err ob_repair_new(const ob_repair_config *cfg, ob_repair **out); /* copies cfg's strings */
void ob_repair_free(ob_repair *rp);                                 /* NULL is a no-op */
/*
 * One pass, blocking, on the calling thread (which runs cfg->base's loop). Resumes after the
 * cursor in state_path when there is one; the cursor is saved (atomically: a temporary file
 * synced and renamed) after every record, and removed when the pass ends. CM_ERR_CLOSED when
 * stopped (the cursor stays), else CM_OK; metadata errors otherwise.
 */
cm_err ob_repair_run(ob_repair *rp);
/* Any thread: the pass ends between two stripes, and every later ob_repair_run of rp at once
 * (a stop that comes before the run started is not lost); a new ob_repair runs again. */
void ob_repair_stop(ob_repair *rp);
void ob_repair_status_get(ob_repair *rp, ob_repair_status *out); /* any thread */

#endif
