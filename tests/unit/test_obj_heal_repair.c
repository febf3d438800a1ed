/*
 * test_obj_heal_repair.c - the ob_repair pass (obj/ob_heal.h) over a node's records: a node down
 * and back (cursor, handoffs, the cluster's hooks), a swap without a clear answer, the cursor
 * written at most once a second, the old places deferred to garbage records, and the layout-only
 * pass. The nodes are
 * oh_env.h's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm_util.h"
#include "cu_main.h"
#include "oh_env.h"

enum { NOBJ = 6 };
static const char *buckets[2] = {"alpha", "beta"};

/* Body b as stored: part 0 of record b, or (b = NOBJ) part 1 of the last record. */
static md_layout stored(md_store *md, int b)
{
    char key[64];
    md_object o;
    int j = b < NOBJ ? b : NOBJ - 1;
    obj_key(j, key, sizeof(key));
    CU_ASSERT_FATAL(md_object_get(md, buckets[j % 2], key, &o) == CM_OK);
    CU_ASSERT_FATAL(o.nparts == (j == NOBJ - 1 ? 2u : 1u));
    md_layout l = o.parts[b < NOBJ ? 0 : 1].layout;
    md_object_release(&o);
    return l;
}

static int pass_defer; /* pass_new: defer_obsolete */

static ob_repair *pass_new(md_store *md, const char *state, ob_pacer *p)
{
    ob_repair_config rc = {md, E.res, E.base, E.topo, E.homes, E.dead, state,     p,
                           0,  2,     NULL,   NULL,   NULL,    NULL,   pass_defer};
    ob_repair *rp;
    CU_ASSERT_FATAL(ob_repair_new(&rc, &rp) == CM_OK);
    return rp;
}

/* The cluster hooks (cmd/cluster_repair.c): heal only the first bucket, count the swaps. */
static int hook_swaps;

static int hook_mine(void *arg, const char *bucket, const char *key)
{
    (void)arg, (void)key;
    return strcmp(bucket, buckets[0]) == 0;
}

static cm_err hook_swap(void *arg, const char *bucket, const char *key, size_t part,
                        const md_layout *old, const md_layout *lay)
{
    hook_swaps++;
    return md_object_replace_layout(arg, bucket, key, part, old->blob, lay);
}

/*
 * Six records in two buckets (the last a multipart object of two parts: seven bodies), listed two
 * at a time. A node goes down: a pass stopped by its pacer after one heal keeps its cursor; the
 * next pass resumes after it and heals the rest onto handoff drives, swapped into the records.
 * The node comes back: a pass moves every cell home and deletes the handoff chunks after the
 * swap.
 */

static void test_repair_pass(void)
{
    uint8_t *body[NOBJ + 1]; /* one per record, and a second part of the last record */
    md_layout orig[NOBJ + 1];
    char path[400], state[420];
    md_store *md;
    env_up();
    snprintf(path, sizeof(path), "%s/meta-%p", cu_tmpdir(), (void *)&E);
    snprintf(state, sizeof(state), "%s.repair", path);
    CU_ASSERT_FATAL(md_open(path, 0, &md) == CM_OK);
    ob_repair *rp = pass_new(md, state, NULL); /* a store without buckets: an empty pass */
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_free(rp);
    for (int b = 0; b < 2; b++) {
        md_bucket mb = {.name = ""};
        snprintf(mb.name, sizeof(mb.name), "%s", buckets[b]);
        CU_ASSERT_FATAL(md_bucket_create(md, &mb) == CM_OK);
    }
    int on[NN] = {0};
    for (int b = 0; b <= NOBJ; b++) {
        body[b] = malloc(LEN2);
        fill(body[b], LEN2, 100 + (uint64_t)b);
        orig[b] = put(body[b], LEN2);
        for (int n = 1; n < NN; n++)
            on[n] += cell_on(&orig[b], n) >= 0;
    }
    for (int j = 0; j < NOBJ; j++) {
        md_object o;
        md_part part[2];
        char key[64];
        memset(&o, 0, sizeof(o));
        memset(part, 0, sizeof(part));
        obj_key(j, key, sizeof(key));
        o.nparts = j == NOBJ - 1 ? 2 : 1; /* the last record: a multipart object */
        for (size_t p = 0; p < o.nparts; p++) {
            part[p].number = o.nparts > 1 ? (uint32_t)p + 1 : 0;
            part[p].size = LEN2;
            part[p].layout = orig[p == 0 ? j : NOBJ];
        }
        o.key = key;
        o.size = LEN2 * o.nparts;
        o.parts = part;
        snprintf(o.etag, sizeof(o.etag), "%s", o.nparts > 1 ? "abc-2" : "abc");
        CU_ASSERT_FATAL(md_object_put(md, buckets[j % 2], &o, NULL, NULL, NULL) == CM_OK);
    }
    int victim = 1;
    for (int n = 2; n < NN; n++)
        victim = on[n] > on[victim] ? n : victim;
    CU_ASSERT_FATAL(on[victim] >= 2);
    node_down(victim, 1);

    ob_pacer p = {count_pace, NULL, NULL};
    ob_repair_status st;
    paced = 0, stop_after = 3; /* the first degraded body's two rounds, then stop */
    rp = pass_new(md, state, &p);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_ERR_CLOSED);
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(st.records, NOBJ);
    CU_ASSERT(st.scanned < NOBJ);
    CU_ASSERT_EQUAL(st.healed, 1);
    CU_ASSERT_EQUAL(st.full_redundancy_s, -1);
    CU_ASSERT_EQUAL(access(state, F_OK), 0);
    uint64_t first_scanned = st.scanned, healed = st.healed;

    paced = 0, stop_after = 0;
    rp = pass_new(md, state, &p);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(st.records, NOBJ - first_scanned); /* resumed after the cursor */
    CU_ASSERT_EQUAL(st.scanned, NOBJ - first_scanned);
    CU_ASSERT_EQUAL(st.failed, 0);
    CU_ASSERT_EQUAL(healed + st.healed, (uint64_t)on[victim]);
    CU_ASSERT(st.mbps > 0);
    CU_ASSERT(st.full_redundancy_s >= 0);
    CU_ASSERT_EQUAL(st.eta_s, 0);
    CU_ASSERT_NOT_EQUAL(access(state, F_OK), 0); /* a finished pass leaves no cursor */
    for (int b = 0; b <= NOBJ; b++) {
        md_layout l = stored(md, b);
        CU_ASSERT_EQUAL(cell_on(&l, victim), -1);
        check_all_cells(body[b], LEN2, &l);
    }

    node_down(victim, 0);
    /* with the hooks: only the first bucket's bodies go home, each through swap */
    uint64_t in_first = 0;
    for (int b = 0; b <= NOBJ; b++)
        in_first += (b < NOBJ ? b : NOBJ - 1) % 2 == 0 && cell_on(&orig[b], victim) >= 0;
    CU_ASSERT(in_first > 0 && in_first < (uint64_t)on[victim]); /* both kinds are there */
    ob_repair_config hc = {md, E.res, E.base,    E.topo,    E.homes, E.dead, state, NULL,
                           0,  2,     hook_mine, hook_swap, NULL,    md,     0};
    hook_swaps = 0;
    CU_ASSERT_FATAL(ob_repair_new(&hc, &rp) == CM_OK);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(st.records, NOBJ); /* every record is visited, the others' skipped */
    CU_ASSERT_EQUAL(st.healed, in_first);
    CU_ASSERT_EQUAL((uint64_t)hook_swaps, in_first);
    rp = pass_new(md, state, NULL);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(st.records, NOBJ);
    CU_ASSERT_EQUAL(st.healed + in_first, (uint64_t)on[victim]);
    for (int j = 0; j <= NOBJ; j++) {
        md_layout l = stored(md, j);
        CU_ASSERT(memcmp(l.drives, orig[j].drives, sizeof(l.drives)) == 0);
        CU_ASSERT(memcmp(l.nodes, orig[j].nodes, sizeof(l.nodes)) == 0);
        check_all_cells(body[j], LEN2, &l);
        /* every drive not named by the layout holds nothing of it: the handoffs were deleted */
        for (int n = 0; n < NN; n++)
            for (int d = 0; d < ND; d++) {
                pl_cell c = {(uint16_t)n, (uint16_t)d};
                int named = 0;
                uint64_t sz;
                for (int i = 0; i < K + M; i++)
                    named |= same_cell(cell_of(&l, i), c);
                if (!named)
                    CU_ASSERT_EQUAL(chunk_stat(c, l.blob, &sz), CM_ERR_NOTFOUND);
            }
        free(body[j]);
    }
    md_close(md);
    env_down();
}

/* Part 0 of alpha/key j as the record names it. */
static md_layout layout_of(md_store *md, int j)
{
    char key[64];
    md_object o;
    obj_key(j, key, sizeof(key));
    CU_ASSERT_FATAL(md_object_get(md, buckets[0], key, &o) == CM_OK);
    md_layout l = o.parts[0].layout;
    md_object_release(&o);
    return l;
}

static ob_repair_status run_flags(md_store *md, const char *state, unsigned flags)
{
    ob_repair_config rc = {md,    E.res, E.base, E.topo, E.homes, E.dead, state, NULL,
                           flags, 2,     NULL,   NULL,   NULL,    NULL,   0};
    ob_repair *rp;
    ob_repair_status st;
    CU_ASSERT_FATAL(ob_repair_new(&rc, &rp) == CM_OK);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    return st;
}

/*
 * A layout-only pass (OB_HEAL_LAYOUT_ONLY, cmd/cluster_repair.c's interval passes) trusts a body
 * whose layout has every cell at a home that is up on a live node, and heals the others: a cell
 * dropped at write (0xFF), a cell on a node gone down. A chunk lost from a drive that still looks
 * up is not in the layout: only a full pass finds and rebuilds it.
 */
static void test_repair_layout_only(void)
{
    enum { NB = 3 };
    char path[400], state[420], key[64];
    uint8_t *body[NB];
    md_layout lay[NB];
    md_store *md;
    env_up();
    snprintf(path, sizeof(path), "%s/meta-lo-%p", cu_tmpdir(), (void *)&E);
    snprintf(state, sizeof(state), "%s.repair", path);
    CU_ASSERT_FATAL(md_open(path, 0, &md) == CM_OK);
    md_bucket mb = {.name = ""};
    snprintf(mb.name, sizeof(mb.name), "%s", buckets[0]);
    CU_ASSERT_FATAL(md_bucket_create(md, &mb) == CM_OK);
    ob_heal_config hc = {E.topo, E.homes, E.dead, NULL, 0, NULL, NULL};
    for (int j = 0; j < NB; j++) {
        body[j] = malloc(LEN2);
        fill(body[j], LEN2, 300 + (uint64_t)j);
        lay[j] = put(body[j], LEN2);
        CU_ASSERT(ob_heal_at_home(&hc, &lay[j]));
    }
    /* body 1: the chunk of cell 0 is gone, the layout cannot tell */
    CU_ASSERT_FATAL(chunk_delete(cell_of(&lay[1], 0), lay[1].blob) == CM_OK);
    CU_ASSERT(ob_heal_at_home(&hc, &lay[1]));
    /* body 2: cell 1 dropped while the body was written */
    CU_ASSERT_FATAL(chunk_delete(cell_of(&lay[2], 1), lay[2].blob) == CM_OK);
    lay[2].drives[1] = 0xFF;
    CU_ASSERT(!ob_heal_at_home(&hc, &lay[2]));
    for (int j = 0; j < NB; j++) {
        md_part part;
        md_object o = one_part(key, sizeof(key), &part, &lay[j]);
        obj_key(j, key, sizeof(key));
        CU_ASSERT_FATAL(md_object_put(md, buckets[0], &o, NULL, NULL, NULL) == CM_OK);
    }

    ob_repair_status st = run_flags(md, state, OB_HEAL_LAYOUT_ONLY);
    CU_ASSERT_EQUAL(st.parts, NB);
    CU_ASSERT_EQUAL(st.trusted, NB - 1);
    CU_ASSERT_EQUAL(st.degraded, 1);
    CU_ASSERT_EQUAL(st.healed, 1);
    md_layout l2 = layout_of(md, 2);
    CU_ASSERT_NOT_EQUAL(l2.drives[1], 0xFF);
    check_all_cells(body[2], LEN2, &l2);
    uint64_t sz;
    CU_ASSERT_EQUAL(chunk_stat(cell_of(&lay[1], 0), lay[1].blob, &sz), CM_ERR_NOTFOUND);

    st = run_flags(md, state, 0); /* a full pass stats every cell */
    CU_ASSERT_EQUAL(st.parts, NB);
    CU_ASSERT_EQUAL(st.trusted, 0);
    CU_ASSERT_EQUAL(st.healed, 1);
    check_all_cells(body[1], LEN2, &lay[1]); /* rebuilt in place, at its home */

    /* a node holding a cell of body 0 goes down: its layout is not trusted any more */
    int victim = -1; /* a remote one: node 0 is the pass's own */
    for (int n = 1; n < NN && victim < 0; n++)
        victim = cell_on(&lay[0], n) >= 0 ? n : -1;
    CU_ASSERT_FATAL(victim >= 0);
    node_down(victim, 1);
    CU_ASSERT(!ob_heal_at_home(&hc, &lay[0]));
    st = run_flags(md, state, OB_HEAL_LAYOUT_ONLY | OB_HEAL_VERIFY); /* VERIFY: never trusted */
    CU_ASSERT_EQUAL(st.trusted, 0);
    CU_ASSERT(st.healed >= 1);
    md_layout l0 = layout_of(md, 0);
    CU_ASSERT_EQUAL(cell_on(&l0, victim), -1);
    check_all_cells(body[0], LEN2, &l0);
    node_down(victim, 0);
    for (int j = 0; j < NB; j++)
        free(body[j]);
    md_close(md);
    env_down();
}

/*
 * A swap that fails without a clear answer (CM_ERR_UNAVAILABLE: the replicated write missed its
 * quorum but may have reached a replica, from where it can win later) must not delete the cells
 * it just wrote. Here the write did land: the record names the handoff cells, which must still be
 * there, and the old cells stay too (the layout may yet go back to them). CM_ERR_CONFLICT (the
 * record certainly changed) still deletes them. A swap that lost to another change of the part
 * looks again from what the record names now (not a failure when that is whole).
 */
static cm_err swap_result;
static md_layout swap_winner; /* the other swap's layout, for CM_ERR_EXISTS */
static int swap_beaten;       /* once: another change lands first (the same cells), CONFLICT */

static cm_err swap_lands_then_fails(void *arg, const char *bucket, const char *key, size_t part,
                                    const md_layout *old, const md_layout *lay)
{
    if (swap_result == CM_ERR_CONFLICT)
        return swap_result; /* not written */
    if (swap_beaten) {      /* another heal's swap won first, with the same cells */
        swap_beaten = 0;
        cm_err e = md_object_replace_layout(arg, bucket, key, part, old->blob, lay);
        return e == CM_OK ? CM_ERR_CONFLICT : e;
    }
    if (swap_result == CM_ERR_EXISTS) /* written, but another swap of the old version won */
        return md_object_replace_layout(arg, bucket, key, part, old->blob, &swap_winner);
    cm_err e = md_object_replace_layout(arg, bucket, key, part, old->blob, lay);
    return e == CM_OK ? swap_result : e;
}

static void test_repair_swap_unknown(void)
{
    char path[400], key[64];
    md_store *md;
    md_bucket mb = {.name = "alpha"};
    md_part part;
    md_object o;
    env_up();
    snprintf(path, sizeof(path), "%s/meta-swap-%p", cu_tmpdir(), (void *)&E);
    CU_ASSERT_FATAL(md_open(path, 0, &md) == CM_OK);
    CU_ASSERT_FATAL(md_bucket_create(md, &mb) == CM_OK);
    uint8_t *body = malloc(LEN2);
    fill(body, LEN2, 7);
    md_layout orig = put(body, LEN2);
    o = one_part(key, sizeof(key), &part, &orig);
    snprintf(o.etag, sizeof(o.etag), "abc");
    CU_ASSERT_FATAL(md_object_put(md, "alpha", &o, NULL, NULL, NULL) == CM_OK);
    int victim = remote_holder(&orig);
    node_down(victim, 1);

    swap_result = CM_ERR_UNAVAILABLE;
    ob_repair_config rc = {md,   E.res, E.base, E.topo, E.homes, E.dead,
                           NULL, NULL,  0,      2,      NULL,    swap_lands_then_fails,
                           NULL, md,    0};
    md_layout now = pass_then_layout(&rc, md, key);
    ob_repair *rp;
    CU_ASSERT_EQUAL(cell_on(&now, victim), -1); /* the swap landed */
    check_all_cells(body, LEN2, &now);          /* and every cell it names is there */
    CU_ASSERT(reads_back(&now, body, LEN2));
    node_down(victim, 0);
    check_all_cells(body, LEN2, &orig); /* the old cells were not deleted either */

    /* a certain refusal, and a swap that another swap of the old version beat: the cells
     * written for it go */
    static const cm_err outcomes[] = {CM_ERR_CONFLICT, CM_ERR_EXISTS};
    swap_winner = orig; /* another heal's layout: the old one with a cell dropped */
    swap_winner.drives[cell_on(&orig, victim) == 0 ? 1 : 0] = 0xFF;
    for (int r = 0; r < 2; r++) {
        const md_layout *left = r == 0 ? &orig : &swap_winner; /* what the record names after */
        CU_ASSERT_FATAL(md_object_replace_layout(md, "alpha", key, 0, orig.blob, &orig) == CM_OK);
        node_down(victim, 1);
        swap_result = outcomes[r];
        CU_ASSERT_FATAL(ob_repair_new(&rc, &rp) == CM_OK);
        CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
        ob_repair_free(rp);
        node_down(victim, 0);
        CU_ASSERT_FATAL(md_object_get(md, "alpha", key, &o) == CM_OK);
        CU_ASSERT(memcmp(o.parts[0].layout.drives, left->drives, sizeof(orig.drives)) == 0);
        md_object_release(&o);
        for (int i = 0; i < K + M; i++) {
            int old_place = 0;
            uint64_t sz;
            for (int j = 0; j < K + M; j++)
                old_place |= same_cell(cell_of(&orig, j), cell_of(&now, i));
            if (!old_place)
                CU_ASSERT_EQUAL(chunk_stat(cell_of(&now, i), orig.blob, &sz), CM_ERR_NOTFOUND);
        }
    }
    check_all_cells(body, LEN2, &orig);

    /* the swap loses to another change of the part (the record moved on): the part is looked
     * at again from what the record names now, whole here, so nothing counts as failed */
    CU_ASSERT_FATAL(md_object_replace_layout(md, "alpha", key, 0, orig.blob, &orig) == CM_OK);
    node_down(victim, 1);
    swap_result = CM_OK, swap_beaten = 1;
    ob_repair_status st;
    CU_ASSERT_FATAL(ob_repair_new(&rc, &rp) == CM_OK);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(st.failed, 0);
    CU_ASSERT_FATAL(md_object_get(md, "alpha", key, &o) == CM_OK);
    CU_ASSERT_EQUAL(cell_on(&o.parts[0].layout, victim), -1); /* the winner's layout stays */
    check_all_cells(body, LEN2, &o.parts[0].layout);          /* its cells were not deleted */
    CU_ASSERT(reads_back(&o.parts[0].layout, body, LEN2));
    md_object_release(&o);
    node_down(victim, 0);
    free(body);
    md_close(md);
    env_down();
}

/* The cursor test's mine hook: counts the records, notes whether the cursor file existed
 * while the pass ran, and stops the pass at the stop_at'th record. */
typedef struct {
    const char *state;
    ob_repair *rp;
    int seen, cursor_seen, stop_at;
} cursor_probe;

static int probe_mine(void *arg, const char *bucket, const char *key)
{
    cursor_probe *cp = arg;
    (void)bucket, (void)key;
    cp->cursor_seen += access(cp->state, F_OK) == 0;
    if (++cp->seen == cp->stop_at)
        ob_repair_stop(cp->rp);
    return 0; /* none of them is this node's to heal */
}

/*
 * The cursor of a pass over healthy records is not written per record (an open, fdatasync and
 * rename each: 700 a second per node while a loopback cluster's passes ran) but at most once a
 * second, and when the pass is stopped, so that the next pass still resumes after the last
 * record done.
 */
static void test_repair_cursor_batched(void)
{
    enum { NREC = 200 };
    char path[400], state[420], key[32];
    md_store *md;
    ob_repair *rp;
    env_up();
    snprintf(path, sizeof(path), "%s/meta-cursor", cu_tmpdir());
    snprintf(state, sizeof(state), "%s.repair", path);
    CU_ASSERT_FATAL(md_open(path, 0, &md) == CM_OK);
    md_bucket mb = {.name = "gamma"};
    CU_ASSERT_FATAL(md_bucket_create(md, &mb) == CM_OK);
    for (int j = 0; j < NREC; j++) {
        md_object o;
        memset(&o, 0, sizeof(o));
        snprintf(key, sizeof(key), "k%04d", j);
        o.key = key;
        snprintf(o.etag, sizeof(o.etag), "e");
        CU_ASSERT_FATAL(md_object_put(md, "gamma", &o, NULL, NULL, NULL) == CM_OK);
    }
    cursor_probe cp = {.state = state, .stop_at = 150};
    ob_repair_config rc = {md, E.res, E.base,     E.topo, E.homes, E.dead, state, NULL,
                           0,  16,    probe_mine, NULL,   NULL,    &cp,    0};
    CU_ASSERT_FATAL(ob_repair_new(&rc, &rp) == CM_OK);
    cp.rp = rp;
    int64_t t0 = cm_now_ms();
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_ERR_CLOSED);
    int64_t took = cm_now_ms() - t0;
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(cp.seen, 150);
    if (took < 900) /* a pass this short saves no cursor until it is stopped */
        CU_ASSERT_EQUAL(cp.cursor_seen, 0);
    CU_ASSERT_EQUAL(access(state, F_OK), 0);
    memset(&cp, 0, sizeof(cp));
    cp.state = state;
    CU_ASSERT_FATAL(ob_repair_new(&rc, &rp) == CM_OK);
    cp.rp = rp;
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_status st;
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(st.records, NREC - 150); /* resumed after the 150th record */
    CU_ASSERT_EQUAL(cp.seen, NREC - 150);
    CU_ASSERT_NOT_EQUAL(access(state, F_OK), 0); /* a finished pass leaves no cursor */
    md_close(md);
    env_down();
}

/* Cells of g's layout that are not 0xFF. */
static int garbage_cells(const md_layout *l)
{
    int n = 0;
    for (int i = 0; i < K + M; i++)
        n += l->drives[i] != 0xFF;
    return n;
}

/*
 * defer_obsolete (a cluster's pass): the old places a swap leaves are not deleted but recorded as
 * one garbage record stamped now, naming exactly them. A node down: its cells go to handoffs, the
 * entry names its places; the node back: the cells move home, the handoffs stay on their drives
 * and a second entry names them. At reclaim (ob_gc_cells), nothing of the first entry is freed
 * (the record names those places again) and all of the second is.
 */
static void test_repair_defer_obsolete(void)
{
    char path[400], key[64];
    md_store *md;
    md_part part;
    md_garbage *g = NULL;
    size_t n = 0;
    uint8_t *body = malloc(LEN2);
    env_up();
    snprintf(path, sizeof(path), "%s/meta-defer-%p", cu_tmpdir(), (void *)&E);
    CU_ASSERT_FATAL(md_open(path, 0, &md) == CM_OK);
    md_bucket mb = {.name = ""};
    snprintf(mb.name, sizeof(mb.name), "%s", buckets[0]);
    CU_ASSERT_FATAL(md_bucket_create(md, &mb) == CM_OK);
    fill(body, LEN2, 7);
    md_layout orig = put(body, LEN2);
    md_object o = one_part(key, sizeof(key), &part, &orig);
    CU_ASSERT_FATAL(md_object_put(md, buckets[0], &o, NULL, NULL, NULL) == CM_OK);
    int victim = remote_holder(&orig), on_victim = 0;
    for (int i = 0; i < K + M; i++)
        on_victim += orig.nodes[i] == victim;

    int64_t t0 = cm_now_ms();
    node_down(victim, 1);
    pass_defer = 1;
    ob_repair *rp = pass_new(md, NULL, NULL);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_free(rp);
    md_layout h = stored(md, 0);
    CU_ASSERT_EQUAL(cell_on(&h, victim), -1);
    CU_ASSERT_FATAL(md_garbage_list(md, UINT64_MAX, 10, &g, &n) == CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT(memcmp(g[0].layout.blob, orig.blob, 16) == 0);
    CU_ASSERT(MD_HLC_MS(g[0].hlc) >= t0 && MD_HLC_MS(g[0].hlc) <= cm_now_ms());
    CU_ASSERT_EQUAL(garbage_cells(&g[0].layout), on_victim);
    for (int i = 0; i < K + M; i++)
        CU_ASSERT(g[0].layout.drives[i] == 0xFF || g[0].layout.nodes[i] == victim);
    md_garbage_free(g, n);

    node_down(victim, 0);
    rp = pass_new(md, NULL, NULL);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_free(rp);
    pass_defer = 0;
    md_layout back = stored(md, 0);
    CU_ASSERT(memcmp(back.drives, orig.drives, sizeof(back.drives)) == 0);
    CU_ASSERT(memcmp(back.nodes, orig.nodes, sizeof(back.nodes)) == 0);
    check_all_cells(body, LEN2, &back);
    int moved = 0;
    for (int i = 0; i < K + M; i++) {
        uint64_t sz;
        if (same_cell(cell_of(&h, i), cell_of(&back, i)))
            continue;
        moved++;
        CU_ASSERT_EQUAL(chunk_stat(cell_of(&h, i), h.blob, &sz), CM_OK); /* the handoff stays */
    }
    CU_ASSERT_EQUAL(moved, on_victim);
    CU_ASSERT_FATAL(md_garbage_list(md, UINT64_MAX, 10, &g, &n) == CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    md_layout free0, free1;
    CU_ASSERT_EQUAL(ob_gc_cells(md, &g[0], NULL, NULL, &free0), 1);
    CU_ASSERT_EQUAL(garbage_cells(&free0), 0); /* moved back home: nothing to free */
    CU_ASSERT_EQUAL(ob_gc_cells(md, &g[1], NULL, NULL, &free1), 1);
    CU_ASSERT_EQUAL(garbage_cells(&free1), moved); /* the handoffs */
    for (int i = 0; i < K + M; i++)
        CU_ASSERT(free1.drives[i] == 0xFF || cell_on(&h, free1.nodes[i]) >= 0);
    md_garbage_free(g, n);
    CU_ASSERT(reads_back(&back, body, LEN2));
    free(body);
    md_close(md);
    env_down();
}

/*
 * The cut GET of docs/cluster.md (h85): a reader holds a layout with cells on handoffs (here put
 * there by a heal while their node v was down, as a write hands them off when v failed a call
 * lately); v is back and a whole AZ is down (n2 or n3, each alone in its AZ); a pass moves v's
 * cells home and swaps. The old places deleted at once (defer_obsolete 0, what a cluster's pass
 * did before h34): the reader finds them "not found" and, with the AZ down, fewer than k cells.
 * Deferred (a cluster's pass now): the reader's layout still reads. Returns reads_back of the
 * reader's layout (-1: no body of the needed shape in 40 tries).
 */
static int move_under_reader(int defer)
{
    char path[400], key[64];
    md_store *md;
    md_part part;
    uint8_t *body = malloc(LEN2);
    int read_ok = -1;
    env_up();
    snprintf(path, sizeof(path), "%s/meta-move-%d-%p", cu_tmpdir(), defer, (void *)&E);
    CU_ASSERT_FATAL(md_open(path, 0, &md) == CM_OK);
    md_bucket mb = {.name = ""};
    snprintf(mb.name, sizeof(mb.name), "%s", buckets[0]);
    CU_ASSERT_FATAL(md_bucket_create(md, &mb) == CM_OK);
    fill(body, LEN2, 40 + (uint64_t)defer);
    for (int tries = 0; tries < 40 && read_ok < 0; tries++) {
        md_layout orig = put(body, LEN2);
        int v = remote_holder(&orig), d = -1;
        node_down(v, 1);
        CU_ASSERT_EQUAL(heal(&orig, NULL, 0), CM_OK);
        md_layout h = R.heal.lay; /* what the reader read: v's cells on handoffs */
        int nv = R.heal.rebuilt;
        node_down(v, 0);
        for (int n = 1; n <= 2 && R.heal.changed && cell_on(&h, v) < 0; n++) {
            int on = 0, hand_on_n = 0;
            for (int i = 0; i < K + M; i++) {
                on += h.nodes[i] == n && h.drives[i] != 0xFF;
                hand_on_n |= orig.nodes[i] == v && h.nodes[i] == n;
            }
            if (n != v && !hand_on_n && on + nv > M) /* the move leaves the reader < k cells */
                d = n;
        }
        if (d < 0)
            continue;
        md_object o = one_part(key, sizeof(key), &part, &h);
        CU_ASSERT_FATAL(md_object_put(md, buckets[0], &o, NULL, NULL, NULL) == CM_OK);
        node_down(d, 1); /* a whole AZ */
        pass_defer = defer;
        ob_repair *rp = pass_new(md, NULL, NULL);
        CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
        ob_repair_free(rp);
        pass_defer = 0;
        md_layout now = stored(md, 0);
        for (int i = 0; i < K + M; i++) /* v's cells moved home, the AZ down or not */
            if (orig.nodes[i] == v)
                CU_ASSERT(same_cell(cell_of(&now, i), cell_of(&orig, i)));
        read_ok = reads_back(&h, body, LEN2);
        node_down(d, 0);
    }
    free(body);
    md_close(md);
    env_down();
    return read_ok;
}

static void test_repair_move_under_reader(void)
{
    CU_ASSERT_EQUAL(move_under_reader(0), 0); /* deleted at once: the reader is cut */
    CU_ASSERT_EQUAL(move_under_reader(1), 1); /* deferred: it reads on */
}

void cu_register(void)
{
    static const cu_test repair_tests[] = {
        {"repair_pass", test_repair_pass},
        {"repair_layout_only", test_repair_layout_only},
        {"repair_swap_unknown", test_repair_swap_unknown},
        {"repair_cursor_batched", test_repair_cursor_batched},
        {"repair_defer_obsolete", test_repair_defer_obsolete},
        {"repair_move_under_reader", test_repair_move_under_reader},
        {NULL, NULL}};
    cu_add_suite("obj_heal", repair_tests);
}
