/*
 * test_obj_heal.c - ob_heal (obj/ob_heal.h) on one body spread over nodes: missing, corrupt,
 * unanswered and dropped cells, handoffs and a draining drive, the pacer; and a measurement of the
 * heal's speed against the disk's and the codec's. The nodes are oh_env.h's; the repair pass is
 * in test_obj_heal_repair.c, two heals of one body in test_obj_heal_overlap.c.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "cm_util.h"
#include "cu_main.h"
#include "oh_env.h"
#include "ec.h"

/* One node's chunks deleted: healed in place; then the body reads back from the rebuilt cells
 * with every other original cell but k - rebuilt gone. */
static void test_heal_missing(void)
{
    uint8_t *body = malloc(LEN);
    env_up();
    fill(body, LEN, 1);
    md_layout l = put(body, LEN);
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK); /* healthy: nothing to do */
    CU_ASSERT_EQUAL(R.heal.healthy, K + M);
    CU_ASSERT_EQUAL(R.heal.rebuilt, 0);
    CU_ASSERT_FALSE(R.heal.changed);

    int victim = remote_holder(&l), lost[K + M] = {0}, nlost = 0;
    for (int i = 0; i < K + M; i++)
        if (l.nodes[i] == victim) {
            CU_ASSERT_EQUAL(chunk_delete(cell_of(&l, i), l.blob), CM_OK);
            lost[i] = 1, nlost++;
        }
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK);
    CU_ASSERT_EQUAL(R.heal.rebuilt, nlost);
    CU_ASSERT_EQUAL(R.heal.healthy, K + M - nlost);
    CU_ASSERT_EQUAL(R.heal.missing, 0);
    CU_ASSERT_EQUAL(R.heal.nobsolete, 0); /* rebuilt at home, where they were */
    CU_ASSERT_EQUAL(R.heal.bytes, nlost * ob_layout_cell_blob_len(&l));
    CU_ASSERT(memcmp(R.heal.lay.drives, l.drives, sizeof(l.drives)) == 0);
    md_layout fresh = R.heal.lay;
    check_all_cells(body, LEN, &fresh);

    /* keep only k cells, the rebuilt ones among them: the read must use them */
    int keep = nlost;
    for (int i = 0; i < K + M; i++)
        if (!lost[i] && keep++ >= K)
            CU_ASSERT_EQUAL(chunk_delete(cell_of(&fresh, i), fresh.blob), CM_OK);
    CU_ASSERT(reads_back(&fresh, body, LEN));
    free(body);
    env_down();
}

/* Home node down: its cells go to handoff drives within the AZ cap; home back: they move home
 * and the handoff chunks go once the new layout is in. */
static void test_heal_handoff(void)
{
    uint8_t *body = malloc(LEN);
    env_up();
    fill(body, LEN, 2);
    md_layout l = put(body, LEN), orig = l;
    int victim = remote_holder(&l);
    node_down(victim, 1);
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK);
    md_layout h = R.heal.lay;
    CU_ASSERT(R.heal.changed);
    CU_ASSERT(R.heal.rebuilt >= 1);
    CU_ASSERT_EQUAL(R.heal.missing, 0);
    CU_ASSERT_EQUAL(cell_on(&h, victim), -1);
    CU_ASSERT_EQUAL(R.heal.nobsolete, R.heal.rebuilt); /* the down node's cells, for later */
    for (int a = 0; a < 3; a++)
        CU_ASSERT(az_cells(&h, (const char *[]){"az1", "az2", "az3"}[a]) <= M);
    check_all_cells(body, LEN, &h);
    /* the old places are on the dead node: the drop cannot reach them (orphans, counted) */
    await(ob_heal_drop(E.res, h.blob, R.heal.obsolete, R.heal.nobsolete, drop_cb, NULL));
    CU_ASSERT_EQUAL(R.failed, R.heal.rebuilt);

    CU_ASSERT_EQUAL(heal(&h, NULL, 0), CM_OK); /* still down: stays on the handoffs */
    CU_ASSERT_EQUAL(R.heal.rebuilt, 0);

    node_down(victim, 0);
    CU_ASSERT_EQUAL(heal(&h, NULL, 0), CM_OK);
    md_layout back = R.heal.lay;
    CU_ASSERT(R.heal.changed);
    CU_ASSERT_EQUAL(R.heal.healthy, K + M - R.heal.rebuilt);
    CU_ASSERT(memcmp(back.drives, orig.drives, sizeof(back.drives)) == 0);
    CU_ASSERT(memcmp(back.nodes, orig.nodes, sizeof(back.nodes)) == 0);
    check_all_cells(body, LEN, &back);
    int nob = R.heal.nobsolete;
    pl_cell ob[MD_MAX_CELLS];
    memcpy(ob, R.heal.obsolete, sizeof(ob));
    CU_ASSERT_EQUAL(nob, R.heal.rebuilt);
    await(ob_heal_drop(E.res, back.blob, ob, nob, drop_cb, NULL));
    CU_ASSERT_EQUAL(R.failed, 0);
    for (int i = 0; i < nob; i++) {
        uint64_t sz;
        CU_ASSERT_EQUAL(chunk_stat(ob[i], back.blob, &sz), CM_ERR_NOTFOUND);
    }
    CU_ASSERT(reads_back(&back, body, LEN));
    free(body);
    env_down();
}

/* Flip one byte of the first record of blob in the segment files under dir (the blobstore's
 * documented format: 32-byte file header, then records of a 48-byte header, nb CRC words, the
 * payload, padded to 8). Returns 1 when it found the record. */
static int corrupt(const char *dir, const uint8_t blob[16])
{
    DIR *dh = opendir(dir);
    struct dirent *de;
    int hit = 0;
    while (dh && !hit && (de = readdir(dh))) {
        char path[600];
        uint8_t h[48];
        if (strncmp(de->d_name, "seg-", 4) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        int fd = open(path, O_RDWR);
        off_t off = 32;
        while (fd >= 0 && !hit && pread(fd, h, sizeof(h), off) == (ssize_t)sizeof(h) &&
               cm_get_be32(h) == 0x43425243u) {
            uint32_t len = cm_get_be32(h + 32), nb = cm_get_be32(h + 36);
            if (h[4] == 1 && memcmp(h + 8, blob, 16) == 0) {
                off_t p = off + 48 + 4 * (off_t)nb + 77;
                uint8_t b;
                hit = pread(fd, &b, 1, p) == 1 && (b ^= 0xA5, pwrite(fd, &b, 1, p) == 1);
            }
            off += h[4] == 1 ? (off_t)((48 + 4ull * nb + len + 7) & ~7ull) : 48;
        }
        if (fd >= 0)
            close(fd);
    }
    if (dh)
        closedir(dh);
    return hit;
}

/* A corrupt cell: found by a verifying heal and rebuilt in place; and, without verify, found
 * when read as a source while another cell is rebuilt (the stripes restart for it). */
static void test_heal_corrupt(void)
{
    uint8_t *body = malloc(LEN);
    env_up();
    fill(body, LEN, 3);
    md_layout l = put(body, LEN);
    CU_ASSERT_FATAL(corrupt(E.node[l.nodes[1]].dirs[l.drives[1]], l.blob));
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK); /* stat cannot see it */
    CU_ASSERT_EQUAL(R.heal.rebuilt, 0);
    CU_ASSERT_EQUAL(heal(&l, NULL, OB_HEAL_VERIFY), CM_OK);
    CU_ASSERT_EQUAL(R.heal.rebuilt, 1);
    CU_ASSERT_EQUAL(R.heal.healthy, K + M);
    check_all_cells(body, LEN, &l);

    /* data cell 0 corrupt and cell 3 gone: 0 is read first as a source, fails, is rebuilt too */
    CU_ASSERT_FATAL(corrupt(E.node[l.nodes[0]].dirs[l.drives[0]], l.blob));
    CU_ASSERT_EQUAL(chunk_delete(cell_of(&l, 3), l.blob), CM_OK);
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK);
    CU_ASSERT_EQUAL(R.heal.rebuilt, 2);
    CU_ASSERT_EQUAL(R.heal.bytes, 2 * ob_layout_cell_blob_len(&l));
    check_all_cells(body, LEN, &l);
    free(body);
    env_down();
}

/*
 * This node's drives stop answering stats and appends in time (a slow disk, an overloaded node
 * that is not down for the liveness view): a heal must not take its cells for missing and
 * rebuild them in place, since that deletes them first and the rewrite then fails: the good
 * cells would be gone. They are left alone (counted missing), their chunks intact. The same for
 * a node that refuses the stats (CM_ERR_AUTH: a retried call that once went out unsigned).
 */
static void heal_unanswered(cm_err e)
{
    uint8_t *body = malloc(LEN);
    md_layout l;
    int tries = 0;
    env_up();
    fill(body, LEN, 5);
    do /* a body with a cell on this node */
        l = put(body, LEN);
    while (cell_on(&l, 0) < 0 && ++tries < 64);
    CU_ASSERT_FATAL(cell_on(&l, 0) >= 0);
    flaky_chunks fl = {{&flaky_ops}, E.local};
    flaky_err = e;
    ob_resolver *good = E.res;
    CU_ASSERT_FATAL(ob_resolver_new(E.topo, "n1", &fl.base, E.cl, &E.res) == CM_OK);
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK);
    CU_ASSERT_EQUAL(R.heal.rebuilt, 0);
    CU_ASSERT(R.heal.missing >= 1);
    CU_ASSERT_FALSE(R.heal.changed);
    ob_resolver_free(E.res);
    E.res = good;
    check_all_cells(body, LEN, &l); /* nothing was deleted */
    free(body);
    flaky_err = CM_ERR_TIMEOUT;
    env_down();
}

static void test_heal_no_answer(void)
{
    heal_unanswered(CM_ERR_TIMEOUT);
}

static void test_heal_refused_stat(void)
{
    heal_unanswered(CM_ERR_AUTH);
}

static int on_homes(pl_cell c, const pl_cell want[K + M])
{
    for (int j = 0; j < K + M; j++)
        if (same_cell(c, want[j]))
            return 1;
    return 0;
}

/*
 * A cell dropped at write (its node refused the append: 0xFF in the layout) is rebuilt at its
 * home once the node is back. Then a drive set draining in a new layout epoch: its cell moves to
 * a home of the new map (a copy), with any other cell the new map no longer homes where it is;
 * the layout takes the new epoch, names the drained drive as obsolete and ends with every cell on
 * a home of the new map, in one heal.
 */
static void test_heal_dropped_draining(void)
{
    uint8_t *body = malloc(LEN);
    bs_id id;
    pl_cell home[K + M];
    int victim = -1, cell = -1;
    env_up();
    fill(body, LEN, 5);
    while (victim < 0) { /* an id whose cells put exactly one on some remote node */
        CU_ASSERT_FATAL(bs_id_new(&id) == CM_OK);
        CU_ASSERT_FATAL(pl_place(E.homes, id.b, K, M, home) == CM_OK);
        for (int n = 1; n < NN && victim < 0; n++) {
            int on = 0, at = -1;
            for (int i = 0; i < K + M; i++)
                if (home[i].node == n)
                    on++, at = i;
            if (on == 1)
                victim = n, cell = at;
        }
    }
    CU_ASSERT_EQUAL(nd_fault_set(E.faults, "n1", ids[victim], ND_FAULT_REFUSE, 0), CM_OK);
    md_layout l = put_id(body, LEN, CELL, &id);
    nd_fault_clear(E.faults, "n1", ids[victim]);
    CU_ASSERT_EQUAL_FATAL(l.drives[cell], 0xFF);
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK);
    CU_ASSERT_EQUAL(R.heal.rebuilt, 1);
    CU_ASSERT_EQUAL(R.heal.nobsolete, 0);
    md_layout h = R.heal.lay;
    CU_ASSERT_EQUAL(h.nodes[cell], home[cell].node);
    CU_ASSERT_EQUAL(h.drives[cell], home[cell].drive);
    check_all_cells(body, LEN, &h);

    /* epoch 6: cell 0's drive drains */
    pl_topology *t2;
    pl_map *m2;
    CU_ASSERT_FATAL(pl_topology_clone(E.topo, &t2) == CM_OK);
    t2->epoch++;
    t2->nodes[h.nodes[0]].drives[h.drives[0]].state = PL_DRAINING;
    CU_ASSERT_FATAL(pl_map_new(t2, PL_MAP_HOMES, &m2) == CM_OK);
    ob_heal_config hc = {t2, m2, E.dead, NULL, 0, NULL, NULL};
    pl_cell want[K + M], drained = cell_of(&h, 0);
    CU_ASSERT_FATAL(pl_place(m2, h.blob, K, M, want) == CM_OK);
    /* homes are a set: a cell moves only when its place is no home of the new map. That is the
     * drained cell, and sometimes one more: the drive's weight leaving its node and AZ can give
     * another AZ one of the object's cells. One heal moves them all (blocked would ask for
     * another round). */
    int off_home = 0;
    for (int i = 0; i < K + M; i++)
        off_home += !on_homes(cell_of(&h, i), want);
    CU_ASSERT(off_home >= 1);
    int rounds = 0, moved = 0, drained_obsolete = 0;
    do {
        memset(&R.heal, 0, sizeof(R.heal));
        await(ob_heal(E.res, &hc, &h, heal_cb, NULL));
        CU_ASSERT_EQUAL_FATAL(R.err, CM_OK);
        moved += R.heal.rebuilt;
        CU_ASSERT_EQUAL(R.heal.nobsolete, R.heal.rebuilt);
        for (int i = 0; i < R.heal.nobsolete; i++)
            drained_obsolete |= same_cell(R.heal.obsolete[i], drained);
        if (R.heal.changed)
            CU_ASSERT_EQUAL(R.heal.lay.epoch, t2->epoch);
        h = R.heal.lay;
    } while (R.heal.blocked > 0 && ++rounds < 4);
    CU_ASSERT_EQUAL(R.heal.blocked, 0);
    CU_ASSERT_EQUAL(rounds, 0);
    CU_ASSERT_EQUAL(moved, off_home);
    CU_ASSERT(drained_obsolete);
    for (int i = 0; i < K + M; i++) /* every cell on one of the new homes (a set) */
        CU_ASSERT(on_homes(cell_of(&h, i), want));
    check_all_cells(body, LEN, &h);
    pl_map_free(m2);
    pl_topology_free(t2);
    free(body);
    env_down();
}

/* The pacer runs once per round of stripes with its bytes (full stripes go together, up to 1 MiB
 * per cell; the short last one alone), and stops a heal between rounds: nothing written stays
 * and the layout is unchanged. Too few cells: unavailable. */
static void test_heal_paced(void)
{
    uint8_t *body = malloc(LEN);
    env_up();
    fill(body, LEN, 4);
    md_layout l = put(body, LEN);
    int victim = remote_holder(&l), i = cell_on(&l, victim);
    ob_pacer p = {count_pace, NULL, NULL};
    CU_ASSERT_EQUAL(chunk_delete(cell_of(&l, i), l.blob), CM_OK);
    paced = 0, paced_bytes = 0, stop_after = 2;
    CU_ASSERT_EQUAL(heal(&l, &p, 0), CM_ERR_CLOSED);
    CU_ASSERT_EQUAL(paced, 2);
    CU_ASSERT_FALSE(R.heal.changed);
    uint64_t sz;
    CU_ASSERT_EQUAL(chunk_stat(cell_of(&l, i), l.blob, &sz), CM_ERR_NOTFOUND);

    paced = 0, paced_bytes = 0, stop_after = 0;
    CU_ASSERT_EQUAL(heal(&l, &p, 0), CM_OK);
    CU_ASSERT_EQUAL(paced, 2); /* two rounds: both full stripes in one, the short one */
    CU_ASSERT_EQUAL(paced_bytes, (uint64_t)K * ob_layout_cell_blob_len(&l));
    check_all_cells(body, LEN, &l);

    for (int j = 0; j < M + 1; j++) /* three cells gone of 2+2 */
        CU_ASSERT_EQUAL(chunk_delete(cell_of(&l, j), l.blob), CM_OK);
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_ERR_UNAVAILABLE);
    md_layout zero = l;
    zero.epoch = 0;
    ob_heal_config hc = {E.topo, E.homes, E.dead, NULL, 0, NULL, NULL};
    CU_ASSERT_EQUAL(ob_heal(E.res, &hc, &zero, heal_cb, NULL), CM_ERR_INVAL);
    free(body);
    env_down();
}

/* ---- a measurement: heal speed against the codec's own ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * A body of OB_HEAL_BENCH_MB (default 8) MiB in 2+2 with cells of OB_HEAL_BENCH_CELL_KB (default
 * 256, the server's default cell size) KiB; one remote node's chunks
 * deleted and healed. Prints the heal's rate (cell bytes written and synced per second) and, in
 * the same run, the disk's (as many bytes written to one file and synced) and ISA-L's (as many
 * cells rebuilt in memory), with the ratios. Asserts that the heal rebuilt the cells and the body
 * reads back.
 */
static void test_heal_bench(void)
{
    const char *env = getenv("OB_HEAL_BENCH_MB");
    size_t mb = env ? strtoul(env, NULL, 10) : 8, len = (mb ? mb : 8) << 20;
    const char *ckb = getenv("OB_HEAL_BENCH_CELL_KB");
    uint32_t cell = (ckb ? (uint32_t)strtoul(ckb, NULL, 10) : 256) << 10;
    if (cell == 0 || cell > (16u << 20))
        cell = 256u << 10;
    uint8_t *body = malloc(len);
    env_up();
    fill(body, len, 9);
    md_layout l = put_cells(body, len, cell);
    int victim = remote_holder(&l), lost = 0, present[K + M];
    for (int i = 0; i < K + M; i++) {
        present[i] = l.nodes[i] != victim;
        if (!present[i]) {
            CU_ASSERT_EQUAL(chunk_delete(cell_of(&l, i), l.blob), CM_OK);
            lost++;
        }
    }
    double t0 = now_s();
    CU_ASSERT_EQUAL(heal(&l, NULL, 0), CM_OK);
    double heal_s = now_s() - t0;
    CU_ASSERT_EQUAL(R.heal.rebuilt, lost);
    uint64_t bytes = R.heal.bytes;
    CU_ASSERT(reads_back(&R.heal.lay, body, len));

    ec_codec *codec;
    uint8_t *stripe = NULL, *cells[K + M];
    CU_ASSERT_FATAL(ec_new(K, M, &codec) == CM_OK);
    CU_ASSERT_FATAL(posix_memalign((void **)&stripe, 64, (size_t)(K + M) * cell) == 0);
    for (int i = 0; i < K + M; i++)
        cells[i] = stripe + (size_t)i * cell;
    fill(stripe, (size_t)K * cell, 10);
    ec_encode(codec, cell, cells, cells + K);
    size_t stripes = len / ((size_t)K * cell);
    t0 = now_s();
    for (size_t s = 0; s < stripes; s++)
        CU_ASSERT_EQUAL(ec_reconstruct(codec, cell, cells, present), CM_OK);
    double ec_s = now_s() - t0;
    /* the disk: the same bytes written in cell-sized pieces to one file, then fdatasync */
    char path[400];
    snprintf(path, sizeof(path), "%s/disk-bench", cu_tmpdir());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    t0 = now_s();
    for (uint64_t w = 0; w < bytes; w += cell)
        CU_ASSERT_EQUAL(write(fd, stripe, cell), (ssize_t)cell);
    CU_ASSERT_EQUAL(fdatasync(fd), 0);
    double disk_s = now_s() - t0;
    close(fd);
    unlink(path);
    double disk_mbps = (double)bytes / 1e6 / disk_s;
    double heal_mbps = (double)bytes / 1e6 / heal_s;
    double ec_mbps = (double)stripes * lost * cell / 1e6 / ec_s;
    printf("\n  heal of %zu MiB (2+2, %u KiB cells, %d cells lost): %.1f MB/s of rebuilt cells "
           "written and synced; the disk writing as much: %.1f MB/s (heal/disk %.2f); ISA-L "
           "rebuilding as much in memory: %.0f MB/s (heal/ISA-L %.4f)\n",
           len >> 20, cell >> 10, lost, heal_mbps, disk_mbps, heal_mbps / disk_mbps, ec_mbps,
           heal_mbps / ec_mbps);
    ec_free(codec);
    free(stripe);
    free(body);
    env_down();
}

void cu_register(void)
{
    static const cu_test heal_tests[] = {{"heal_missing", test_heal_missing},
                                         {"heal_handoff", test_heal_handoff},
                                         {"heal_corrupt", test_heal_corrupt},
                                         {"heal_no_answer", test_heal_no_answer},
                                         {"heal_refused_stat", test_heal_refused_stat},
                                         {"heal_dropped_draining", test_heal_dropped_draining},
                                         {"heal_paced", test_heal_paced},
                                         {"heal_bench", test_heal_bench},
                                         {NULL, NULL}};
    cu_add_suite("obj_heal", heal_tests);
}
