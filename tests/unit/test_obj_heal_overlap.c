/*
 * test_obj_heal_overlap.c - two heals of one body at once (obj/ob_heal.h): a node whose replica
 * of the record is stale while another node's heal already swapped its layout in, and another
 * node's heal starting from the same layout before this pass's swap lands (after it, or even
 * before this pass looks at its own cells). The nodes are oh_env.h's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "cu_main.h"
#include "oh_env.h"

/*
 * Two nodes heal one body: this node's replica of the record is stale (it still names the old
 * layout) while another node's heal already swapped its layout into the record the quorum reads
 * (md_quorum here), with cells on the same handoff drives this heal picks. This heal's prepare
 * and cleanup must not delete those cells (they are the record's now): its targets are given
 * up, its swap is refused (the record names another layout), and the body reads back whole from
 * the record's layout.
 */
static int hook_swaps; /* quorum_swap's calls */

static cm_err quorum_swap(void *arg, const char *bucket, const char *key, size_t part,
                          const md_layout *old, const md_layout *lay)
{
    md_object o;
    cm_err e = md_object_get(arg, bucket, key, &o);
    if (e != CM_OK)
        return e == CM_ERR_NOTFOUND ? CM_ERR_CONFLICT : e;
    int same = part < o.nparts && ob_layout_same_cells(&o.parts[part].layout, old);
    md_object_release(&o);
    hook_swaps++;
    return same ? md_object_replace_layout(arg, bucket, key, part, old->blob, lay)
                : CM_ERR_CONFLICT;
}

static cm_err quorum_current(void *arg, const char *bucket, const char *key, size_t part,
                             md_layout *out)
{
    md_object o;
    cm_err e = md_object_get(arg, bucket, key, &o);
    if (e == CM_OK && part >= o.nparts)
        e = CM_ERR_NOTFOUND;
    if (e == CM_OK)
        *out = o.parts[part].layout;
    md_object_release(&o);
    return e;
}

static void test_repair_two_healers(void)
{
    char path[400], key[64];
    md_store *md[2]; /* this node's stale replica, the record as the quorum reads it */
    md_bucket mb = {.name = "alpha"};
    md_part part;
    md_object o;
    env_up();
    uint8_t *body = malloc(LEN2);
    fill(body, LEN2, 11);
    md_layout orig = put(body, LEN2);
    o = one_part(key, sizeof(key), &part, &orig);
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/meta-two-%d-%p", cu_tmpdir(), i, (void *)&E);
        CU_ASSERT_FATAL(md_open(path, 0, &md[i]) == CM_OK);
        CU_ASSERT_FATAL(md_bucket_create(md[i], &mb) == CM_OK);
        CU_ASSERT_FATAL(md_object_put(md[i], "alpha", &o, NULL, NULL, NULL) == CM_OK);
    }
    int victim = remote_holder(&orig);
    node_down(victim, 1);
    /* the other node's pass: heals onto handoffs and swaps into the quorum's record */
    ob_repair_config other = {md[1], E.res, E.base, E.topo, E.homes, E.dead, .page = 2};
    ob_repair *rp;
    CU_ASSERT_FATAL(ob_repair_new(&other, &rp) == CM_OK);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_free(rp);
    CU_ASSERT_FATAL(md_object_get(md[1], "alpha", key, &o) == CM_OK);
    md_layout theirs = o.parts[0].layout;
    md_object_release(&o);
    CU_ASSERT_FATAL(!ob_layout_same_cells(&theirs, &orig));
    check_all_cells(body, LEN2, &theirs);

    /* this node's pass walks its stale replica (the old layout) */
    ob_repair_config mine = other;
    mine.md = md[0];
    mine.swap = quorum_swap, mine.current = quorum_current, mine.hook_arg = md[1];
    hook_swaps = 0;
    CU_ASSERT_FATAL(ob_repair_new(&mine, &rp) == CM_OK);
    CU_ASSERT_EQUAL(ob_repair_run(rp), CM_OK);
    ob_repair_status st;
    ob_repair_status_get(rp, &st);
    ob_repair_free(rp);
    CU_ASSERT_EQUAL(st.healed, 0); /* nothing of its own to write: every target was taken */
    CU_ASSERT_EQUAL(hook_swaps, 0);
    CU_ASSERT_FATAL(md_object_get(md[1], "alpha", key, &o) == CM_OK);
    CU_ASSERT(ob_layout_same_cells(&o.parts[0].layout, &theirs));
    md_object_release(&o);
    check_all_cells(body, LEN2, &theirs); /* the other heal's cells are all there */
    CU_ASSERT(reads_back(&theirs, body, LEN2));
    node_down(victim, 0);
    free(body);
    md_close(md[0]);
    md_close(md[1]);
    env_down();
}

/*
 * Two nodes heal one body at once (cmd/cluster_repair.c: the first live home of the key's
 * partition changes while the other node's heal still runs), both from the record's layout.
 * This pass's heal has written its cells on the handoffs; before its swap lands, the other
 * node's heal starts from the same layout: its prepare deletes the chunks at its targets (the
 * guard lets it: the record still names the layout it started from), and then either
 *   - it is stopped before writing any (its pacer; a failed append ends the same way), or
 *   - its plan differed (another liveness view) and it wrote another cell of the body there.
 * Then this swap lands: the record names cells that are gone (the GET's re-read finds the same
 * layout: no retry helps) or hold the wrong cell's bytes (a body read through them is wrong).
 * The pass must read back the cells it swapped in and heal the body again until they are right.
 */
static md_store *race_md;
static int race_swaps, race_other_cell;
static const uint8_t *race_body;

static int stop_at_once(void *arg, uint64_t n)
{
    (void)arg, (void)n;
    return 1;
}

static cm_err swap_after_other_heal(void *arg, const char *bucket, const char *key, size_t part,
                                    const md_layout *old, const md_layout *lay)
{
    if (race_swaps++ == 0 && !race_other_cell) { /* between this heal's writes and its swap */
        ob_pacer stop = {stop_at_once, NULL, NULL};
        ob_repair_config oc = {race_md, E.res,  E.base,    E.topo,
                               E.homes, E.dead, .page = 2, .pacer = &stop};
        ob_repair *rp;
        CU_ASSERT_FATAL(ob_repair_new(&oc, &rp) == CM_OK);
        CU_ASSERT_EQUAL(ob_repair_run(rp), CM_ERR_CLOSED);
        ob_repair_free(rp);
    } else if (race_swaps == 1) { /* the other heal put the next cell where this one moved one */
        for (int i = 0; i < K + M; i++) {
            uint64_t n;
            if (same_cell(cell_of(lay, i), cell_of(old, i)))
                continue;
            uint8_t *other = cell_bytes(race_body, LEN2, (i + 1) % (K + M), &n);
            CU_ASSERT_EQUAL(chunk_put(cell_of(lay, i), lay->blob, other, n), CM_OK);
            free(other);
        }
    }
    return md_object_replace_layout(arg, bucket, key, part, old->blob, lay);
}

static void heal_overlap(int other_cell)
{
    char path[400], key[64];
    md_bucket mb = {.name = "alpha"};
    md_part part;
    md_object o;
    env_up();
    uint8_t *body = malloc(LEN2);
    fill(body, LEN2, 13);
    race_body = body, race_other_cell = other_cell;
    bs_id id = {{4}}; /* placed so that one cell moves and one node holds two others */
    md_layout orig = put_id(body, LEN2, CELL, &id);
    o = one_part(key, sizeof(key), &part, &orig);
    snprintf(path, sizeof(path), "%s/meta-overlap-%d-%p", cu_tmpdir(), other_cell, (void *)&E);
    CU_ASSERT_FATAL(md_open(path, 0, &race_md) == CM_OK);
    CU_ASSERT_FATAL(md_bucket_create(race_md, &mb) == CM_OK);
    CU_ASSERT_FATAL(md_object_put(race_md, "alpha", &o, NULL, NULL, NULL) == CM_OK);
    int victim = remote_holder(&orig);
    node_down(victim, 1);

    race_swaps = 0;
    ob_repair_config rc = {race_md,
                           E.res,
                           E.base,
                           E.topo,
                           E.homes,
                           E.dead,
                           .page = 2,
                           .swap = swap_after_other_heal,
                           .hook_arg = race_md};
    md_layout now = pass_then_layout(&rc, race_md, key);
    CU_ASSERT_EQUAL(cell_on(&now, victim), -1); /* the swap landed */
    check_all_cells(body, LEN2, &now);          /* and every cell it names is whole */
    CU_ASSERT(reads_back(&now, body, LEN2));
    /* the cut: nodes out of reach until the moved cells and k - 1 others are all a GET has */
    int moved[K + M], left = 0, down[NN] = {0};
    for (int i = 0; i < K + M; i++) {
        moved[i] = !same_cell(cell_of(&now, i), cell_of(&orig, i));
        left += !moved[i];
    }
    for (int n = 1; n < NN && left > K - 1; n++) {
        int here = 0, keep = n == victim;
        for (int i = 0; i < K + M; i++) {
            here += now.nodes[i] == n && !moved[i];
            keep |= now.nodes[i] == n && moved[i];
        }
        if (keep || here == 0 || left - here < K - 1)
            continue;
        node_down(n, 1);
        down[n] = 1, left -= here;
    }
    CU_ASSERT_EQUAL_FATAL(left, K - 1);
    CU_ASSERT(reads_back(&now, body, LEN2));
    for (int n = 1; n < NN; n++)
        if (down[n])
            node_down(n, 0);
    node_down(victim, 0);
    free(body);
    md_close(race_md);
    env_down();
}

/*
 * The same, earlier: the other heal's prepare deletes this heal's cell after its last append and
 * before this pass looks at it (a local backend whose next stat of the chunk last synced comes
 * after a delete of it). The pass sees the cell gone before its swap: nothing is swapped in and
 * nothing deleted, the record still names the old layout, whose cells are all there.
 */
static struct {
    int armed;
    uint32_t drive;
    bs_id id;
    ob_chunks *inner;
    ob_chunk_done done;
    void *arg;
} steal;

static cm_err steal_append(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off,
                           struct evbuffer *body, uint32_t crc32c, unsigned flags,
                           ob_chunk_done done, void *arg)
{
    if (flags & OB_CHUNK_SYNC)
        steal.armed = 1, steal.drive = drive, steal.id = *id;
    return ob_chunk_append(((flaky_chunks *)c)->inner, drive, id, off, body, crc32c, flags, done,
                           arg);
}

static void steal_deleted(void *arg, const ob_chunk_result *r)
{
    (void)arg;
    CU_ASSERT_EQUAL(r->err, CM_OK);
    CU_ASSERT_EQUAL(ob_chunk_stat(steal.inner, steal.drive, &steal.id, steal.done, steal.arg),
                    CM_OK);
}

static cm_err steal_stat(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done,
                         void *arg)
{
    ob_chunks *in = ((flaky_chunks *)c)->inner;
    if (!steal.armed || drive != steal.drive || memcmp(id, &steal.id, sizeof(*id)) != 0)
        return ob_chunk_stat(in, drive, id, done, arg);
    steal.armed = 0, steal.inner = in, steal.done = done, steal.arg = arg;
    return ob_chunk_delete(in, drive, id, steal_deleted, NULL);
}

static const ob_chunk_ops steal_ops = {steal_append, flaky_seal, flaky_read, flaky_del, steal_stat,
                                       flaky_list,   flaky_free, NULL,       NULL};

static void test_repair_heal_overlap_early(void)
{
    char path[400], key[64];
    md_bucket mb = {.name = "alpha"};
    md_part part;
    md_object o;
    md_store *md;
    env_up();
    uint8_t *body = malloc(LEN2);
    fill(body, LEN2, 17);
    bs_id id = {{6}}; /* placed so that n2's one cell moves to this node (the local backend) */
    md_layout orig = put_id(body, LEN2, CELL, &id);
    o = one_part(key, sizeof(key), &part, &orig);
    snprintf(path, sizeof(path), "%s/meta-early-%p", cu_tmpdir(), (void *)&E);
    CU_ASSERT_FATAL(md_open(path, 0, &md) == CM_OK);
    CU_ASSERT_FATAL(md_bucket_create(md, &mb) == CM_OK);
    CU_ASSERT_FATAL(md_object_put(md, "alpha", &o, NULL, NULL, NULL) == CM_OK);
    int victim = remote_holder(&orig);
    node_down(victim, 1);
    flaky_chunks st = {{&steal_ops}, E.local};
    ob_resolver *good = E.res;
    CU_ASSERT_FATAL(ob_resolver_new(E.topo, "n1", &st.base, E.cl, &E.res) == CM_OK);
    memset(&steal, 0, sizeof(steal));
    ob_repair_config rc = {md, E.res, E.base, E.topo, E.homes, E.dead, .page = 2};
    md_layout now = pass_then_layout(&rc, md, key);
    ob_resolver_free(E.res);
    E.res = good;
    CU_ASSERT(steal.inner != NULL); /* the cell was taken */
    CU_ASSERT(ob_layout_same_cells(&now, &orig));
    CU_ASSERT(reads_back(&now, body, LEN2));
    node_down(victim, 0);
    check_all_cells(body, LEN2, &orig);
    free(body);
    md_close(md);
    env_down();
}

static void test_repair_heal_overlap(void)
{
    heal_overlap(0); /* the cells swapped in are gone */
    heal_overlap(1); /* they hold another cell */
}

void cu_register(void)
{
    static const cu_test overlap_tests[] = {
        {"repair_two_healers", test_repair_two_healers},
        {"repair_heal_overlap", test_repair_heal_overlap},
        {"repair_heal_overlap_early", test_repair_heal_overlap_early},
        {NULL, NULL}};
    cu_add_suite("obj_heal", overlap_tests);
}
