/*
 * test_placement_cluster.c - placement over a topology: distinct drives and the AZ bound on many
 * shapes, balance with equal weights, movement when a 7th node joins, weights respected,
 * determinism (independent of node order and of a trip through the document), states, metadata
 * partition replicas. Ids come from a seeded xorshift (pl_simulate's own, from SEED).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "pl.h"

#define SEED 0xC0FFEEull

static uint64_t rng = SEED;

static void rand_id(uint8_t id[16])
{
    for (int i = 0; i < 16; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        id[i] = (uint8_t)(rng >> 32);
    }
}

static double max_over_mean(const uint64_t *load, int n)
{
    uint64_t max = 0, sum = 0;
    for (int i = 0; i < n; i++) {
        sum += load[i];
        max = load[i] > max ? load[i] : max;
    }
    return sum ? (double)max * n / (double)sum : 0;
}

/* Add node id in az with nd drives of weight w. */
static void add_node(pl_topology *t, const char *id, const char *az, int nd, uint32_t w)
{
    int idx;
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", 9500 + t->nnodes);
    CU_ASSERT_EQUAL_FATAL(pl_topology_add_node(t, id, addr, az, &idx), CM_OK);
    for (int d = 0; d < nd; d++)
        CU_ASSERT_EQUAL_FATAL(pl_topology_add_drive(t, idx, (uint32_t)d, w, PL_UP), CM_OK);
}

/* Distinct drives, at most cap per AZ, cells as spread over nodes as the shape allows. */
static void check_shape(pl_topology *t, int k, int m, int iters)
{
    pl_map *map;
    CU_ASSERT_EQUAL_FATAL(pl_map_new(t, PL_MAP_HOMES, &map), CM_OK);
    int n = k + m, cap = pl_az_cap(map, k, m), bad = 0;
    for (int it = 0; it < iters; it++) {
        uint8_t id[16];
        pl_cell c[PL_MAX_CELLS];
        rand_id(id);
        CU_ASSERT_EQUAL_FATAL(pl_place(map, id, k, m, c), CM_OK);
        for (int i = 0; i < n; i++) {
            int same_az = 0;
            for (int j = 0; j < n; j++) {
                bad += j != i && c[i].node == c[j].node && c[i].drive == c[j].drive;
                same_az += strcmp(t->nodes[c[i].node].az, t->nodes[c[j].node].az) == 0;
            }
            bad += same_az > cap;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    pl_map_free(map);
}

static void test_shapes(void)
{
    pl_topology *t;
    /* 3 AZs x 2 nodes x 4 drives, 4+2: 2 per AZ */
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 2, 4, &t), CM_OK);
    check_shape(t, 4, 2, 5000);
    check_shape(t, 8, 4, 5000); /* 4 per AZ */
    pl_topology_free(t);
    /* uneven AZs: 1, 3 and 2 nodes with 1, 2, 3 drives */
    t = pl_topology_new(1);
    add_node(t, "a1", "az1", 2, 10);
    add_node(t, "b1", "az2", 1, 10);
    add_node(t, "b2", "az2", 2, 10);
    add_node(t, "b3", "az2", 3, 10);
    add_node(t, "c1", "az3", 3, 10);
    add_node(t, "c2", "az3", 1, 10);
    check_shape(t, 4, 2, 5000);
    pl_topology_free(t);
    /* 4 AZs and 5 AZs: still at most m per AZ */
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(4, 1, 3, &t), CM_OK);
    check_shape(t, 4, 2, 5000);
    check_shape(t, 8, 4, 5000);
    pl_topology_free(t);
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(5, 3, 2, &t), CM_OK);
    check_shape(t, 10, 4, 5000);
    pl_topology_free(t);
    /* the single node: one node with 6 drives, 4+2 takes them all */
    CU_ASSERT_EQUAL_FATAL(pl_topology_single(6, &t), CM_OK);
    check_shape(t, 4, 2, 2000);
    pl_map *map;
    CU_ASSERT_EQUAL_FATAL(pl_map_new(t, PL_MAP_HOMES, &map), CM_OK);
    uint8_t id[16] = {1};
    pl_cell c[PL_MAX_CELLS];
    CU_ASSERT_EQUAL(pl_place(map, id, 5, 2, c), CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(pl_place(map, id, 0, 2, c), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(pl_place(map, id, 30, 3, c), CM_ERR_INVAL);
    pl_map_free(map);
    pl_topology_free(t);
}

static void test_balance_equal(void)
{
    pl_topology *t;
    pl_sim_result r;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 2, 4, &t), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_simulate(NULL, t, PL_MAP_HOMES, 4, 2, 200000, SEED, NULL, NULL, &r),
                          CM_OK);
    double mm = max_over_mean(r.load, r.nload);
    printf("\n4+2, 6 nodes in 3 AZs x 4 drives, 200k objects: drive load max/mean %.4f, "
           "%.0f ns per placement\n",
           mm, r.ns_per_place);
    CU_ASSERT(mm <= 1.05);
    CU_ASSERT_EQUAL(r.az_over, 0);
    CU_ASSERT_EQUAL(r.not_placed, 0);
    CU_ASSERT_EQUAL(r.cells, 200000ull * 6);
    pl_sim_result_release(&r);
    /* 8+4 on the same 24 drives */
    CU_ASSERT_EQUAL_FATAL(pl_simulate(NULL, t, PL_MAP_HOMES, 8, 4, 100000, SEED, NULL, NULL, &r),
                          CM_OK);
    mm = max_over_mean(r.load, r.nload);
    CU_ASSERT(mm <= 1.05);
    CU_ASSERT_EQUAL(r.az_over, 0);
    pl_sim_result_release(&r);
    pl_topology_free(t);
}

/* Moved share against the ideal (pl_ideal_moved: the weight share that changes hands). */
static double moved_vs_ideal(pl_topology *before, pl_topology *after, int k, int m, uint64_t objs)
{
    pl_sim_result r;
    CU_ASSERT_EQUAL_FATAL(
        pl_simulate(before, after, PL_MAP_HOMES, k, m, objs, SEED, NULL, NULL, &r), CM_OK);
    double share = (double)r.moved / (double)r.cells, ideal = pl_ideal_moved(before, after);
    printf("moved %.4f of cells, ideal %.4f: %.3fx\n", share, ideal, share / ideal);
    CU_ASSERT_EQUAL(r.az_over, 0);
    pl_sim_result_release(&r);
    return share / ideal;
}

static void test_add_node(void)
{
    pl_topology *before, *after;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 2, 4, &before), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_topology_clone(before, &after), CM_OK);
    add_node(after, "n7", "az1", 4, 100);
    after->epoch++;
    uint64_t wb, wa;
    pl_topology_stats(before, &wb, NULL, NULL);
    pl_topology_stats(after, &wa, NULL, NULL);
    CU_ASSERT_DOUBLE_EQUAL(pl_ideal_moved(before, after), (double)(wa - wb) / (double)wa, 1e-12);
    double x = moved_vs_ideal(before, after, 4, 2, 100000);
    CU_ASSERT(x > 0 && x <= 1.2);
    pl_topology_free(after);
    /* removing n6: its sixth of the cells must move, and nothing else */
    CU_ASSERT_EQUAL_FATAL(pl_topology_clone(before, &after), CM_OK);
    after->nodes[5].state = PL_REMOVED;
    CU_ASSERT_DOUBLE_EQUAL(pl_ideal_moved(before, after), 1.0 / 6, 1e-12);
    x = moved_vs_ideal(before, after, 4, 2, 100000);
    CU_ASSERT(x >= 0.99 && x <= 1.01);
    pl_topology_free(after);
    pl_topology_free(before);
    /* one node per AZ: a 7th AZ joins the 6; here nothing holds the new node back */
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(6, 1, 4, &before), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_topology_clone(before, &after), CM_OK);
    add_node(after, "n7", "az7", 4, 100);
    x = moved_vs_ideal(before, after, 4, 2, 100000);
    CU_ASSERT(x >= 0.8 && x <= 1.2);
    pl_topology_free(after);
    pl_topology_free(before);
}

static void test_weights(void)
{
    /* 2+1 over 3 AZs: one cell per AZ, so the nodes of an AZ compete only by weight */
    pl_topology *t;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 2, 4, &t), CM_OK);
    for (int d = 0; d < 4; d++)
        t->nodes[0].drives[d].weight = 200; /* n1 double n2 */
    t->nodes[2].drives[1].weight = 300;     /* n3's drive 1 triple its siblings */
    pl_sim_result r;
    CU_ASSERT_EQUAL_FATAL(pl_simulate(NULL, t, PL_MAP_HOMES, 2, 1, 120000, SEED, NULL, NULL, &r),
                          CM_OK);
    uint64_t n1 = 0, n2 = 0;
    for (int d = 0; d < 4; d++) {
        n1 += r.load[d];
        n2 += r.load[4 + d];
    }
    double ratio = (double)n1 / (double)n2;
    /* n3 = flat 8..11: drive 9 against the mean of 8, 10, 11 */
    double dr = 3.0 * (double)r.load[9] / (double)(r.load[8] + r.load[10] + r.load[11]);
    printf("\nnode weight 2:1 -> cells %.3f:1, drive weight 3:1 -> %.3f:1\n", ratio, dr);
    CU_ASSERT(ratio > 1.9 && ratio < 2.1);
    CU_ASSERT(dr > 2.85 && dr < 3.15);
    pl_sim_result_release(&r);
    pl_topology_free(t);
}

static void test_deterministic(void)
{
    /* the same layout with nodes listed in another order, and after a trip through the document */
    pl_topology *a, *b = pl_topology_new(1), *c = NULL;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 2, 4, &a), CM_OK);
    for (int i = a->nnodes - 1; i >= 0; i--) {
        int idx;
        CU_ASSERT_EQUAL_FATAL(
            pl_topology_add_node(b, a->nodes[i].id, a->nodes[i].addr, a->nodes[i].az, &idx), CM_OK);
        for (int d = a->nodes[i].ndrives - 1; d >= 0; d--)
            CU_ASSERT_EQUAL_FATAL(
                pl_topology_add_drive(b, idx, a->nodes[i].drives[d].id, 100, PL_UP), CM_OK);
    }
    char *doc, err[256];
    size_t len;
    CU_ASSERT_EQUAL_FATAL(pl_topology_encode(a, &doc, &len), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_topology_decode(doc, len, &c, err, sizeof(err)), CM_OK);
    free(doc);
    pl_map *ma, *mb, *mc;
    CU_ASSERT_EQUAL_FATAL(pl_map_new(a, PL_MAP_HOMES, &ma), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_map_new(b, PL_MAP_HOMES, &mb), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_map_new(c, PL_MAP_HOMES, &mc), CM_OK);
    int differ = 0;
    for (int it = 0; it < 3000; it++) {
        uint8_t id[16];
        pl_cell x[PL_MAX_CELLS], y[PL_MAX_CELLS], z[PL_MAX_CELLS];
        rand_id(id);
        CU_ASSERT_EQUAL_FATAL(pl_place(ma, id, 4, 2, x), CM_OK);
        CU_ASSERT_EQUAL_FATAL(pl_place(mb, id, 4, 2, y), CM_OK);
        CU_ASSERT_EQUAL_FATAL(pl_place(mc, id, 4, 2, z), CM_OK);
        for (int i = 0; i < 6; i++) {
            differ += strcmp(a->nodes[x[i].node].id, b->nodes[y[i].node].id) != 0 ||
                      a->nodes[x[i].node].drives[x[i].drive].id !=
                          b->nodes[y[i].node].drives[y[i].drive].id;
            differ += memcmp(&x[i], &z[i], sizeof(x[i])) != 0;
        }
    }
    CU_ASSERT_EQUAL(differ, 0);
    pl_map_free(ma);
    pl_map_free(mb);
    pl_map_free(mc);
    pl_topology_free(a);
    pl_topology_free(b);
    pl_topology_free(c);
}

static void test_states(void)
{
    pl_topology *t;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 2, 4, &t), CM_OK);
    t->nodes[1].drives[2].state = PL_DOWN;
    t->nodes[3].state = PL_DRAINING;
    t->nodes[4].drives[0].state = PL_REMOVED;
    pl_map *homes, *live;
    CU_ASSERT_EQUAL_FATAL(pl_map_new(t, PL_MAP_HOMES, &homes), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_map_new(t, PL_MAP_LIVE, &live), CM_OK);
    int down_homes = 0, bad = 0;
    for (int it = 0; it < 5000; it++) {
        uint8_t id[16];
        pl_cell h[6], l[6];
        rand_id(id);
        CU_ASSERT_EQUAL_FATAL(pl_place(homes, id, 4, 2, h), CM_OK);
        CU_ASSERT_EQUAL_FATAL(pl_place(live, id, 4, 2, l), CM_OK);
        for (int i = 0; i < 6; i++) {
            down_homes += h[i].node == 1 && h[i].drive == 2;
            bad += h[i].node == 3 || (h[i].node == 4 && h[i].drive == 0);
            bad += l[i].node == 3 || (l[i].node == 4 && l[i].drive == 0) ||
                   (l[i].node == 1 && l[i].drive == 2);
        }
    }
    CU_ASSERT(down_homes > 0); /* a down drive keeps its homes */
    CU_ASSERT_EQUAL(bad, 0);
    pl_map_free(homes);
    pl_map_free(live);
    pl_topology_free(t);
}

/* Each cell either kept its home or moved off an unusable one; all distinct; counts the cells
 * that went to the lost drive's node or AZ. */
static void check_handoff(const pl_topology *t, const pl_map *map, const uint8_t *dead, int *bad,
                          int *same_node, int *same_az, int *other_az)
{
    uint8_t id[16];
    pl_cell home[6], h[6];
    rand_id(id);
    CU_ASSERT_EQUAL_FATAL(pl_place(map, id, 4, 2, home), CM_OK);
    memcpy(h, home, sizeof(h));
    int nrep = -1;
    CU_ASSERT_EQUAL_FATAL(pl_handoff(map, id, 4, 2, h, dead, &nrep), CM_OK);
    int lost = 0;
    for (int i = 0; i < 6; i++) {
        const pl_node *hn = &t->nodes[home[i].node];
        int unusable = dead[home[i].node] || hn->drives[home[i].drive].state == PL_DOWN;
        lost += unusable;
        if (!unusable) {
            *bad += memcmp(&h[i], &home[i], sizeof(h[i])) != 0;
            continue;
        }
        *bad += dead[h[i].node] || t->nodes[h[i].node].drives[h[i].drive].state != PL_UP;
        if (h[i].node == home[i].node)
            (*same_node)++;
        else if (strcmp(t->nodes[h[i].node].az, hn->az) == 0)
            (*same_az)++;
        else
            (*other_az)++;
        for (int j = 0; j < i; j++)
            *bad += memcmp(&h[i], &h[j], sizeof(h[i])) == 0;
    }
    *bad += nrep != lost;
}

static void test_handoff(void)
{
    pl_topology *t;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 2, 4, &t), CM_OK);
    t->nodes[2].drives[1].state = PL_DOWN; /* n3 drive 1: down in the layout */
    pl_map *map;
    CU_ASSERT_EQUAL_FATAL(pl_map_new(t, PL_MAP_HOMES, &map), CM_OK);
    uint8_t dead[6] = {0};
    int bad = 0, sn = 0, sa = 0, oa = 0;
    for (int it = 0; it < 3000; it++)
        check_handoff(t, map, dead, &bad, &sn, &sa, &oa);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(sn > 0 && sa == 0 && oa == 0); /* a down drive: another drive of its node */
    /* node n1 dead (the caller's liveness view): its cell goes to another drive of az1, on n2 */
    dead[0] = 1;
    sn = sa = oa = 0;
    for (int it = 0; it < 3000; it++)
        check_handoff(t, map, dead, &bad, &sn, &sa, &oa);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(sa > 0 && oa == 0);
    /* all of az1 dead: its cells must leave the AZ */
    dead[1] = 1;
    sn = sa = oa = 0;
    for (int it = 0; it < 3000; it++)
        check_handoff(t, map, dead, &bad, &sn, &sa, &oa);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(oa > 0 && sa == 0); /* (same-node ones are n3's down drive's) */
    /* not enough usable drives: the cell keeps its home and the call says so */
    memset(dead, 1, sizeof(dead));
    dead[5] = 0;
    uint8_t id[16] = {7};
    pl_cell c[6];
    CU_ASSERT_EQUAL(pl_place(map, id, 4, 2, c), CM_OK);
    CU_ASSERT_EQUAL(pl_handoff(map, id, 4, 2, c, dead, NULL), CM_ERR_UNAVAILABLE);
    c[0].drive = 200;
    CU_ASSERT_EQUAL(pl_handoff(map, id, 4, 2, c, NULL, NULL), CM_ERR_INVAL);
    pl_map_free(map);
    pl_topology_free(t);
}

static void test_partitions(void)
{
    pl_topology *t;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 2, 4, &t), CM_OK);
    pl_map *map;
    CU_ASSERT_EQUAL_FATAL(pl_map_new(t, PL_MAP_HOMES, &map), CM_OK);
    int count[6] = {0}, bad = 0;
    for (uint32_t s = 0; s < 6000; s++) {
        int out[3], again[3];
        uint64_t p = pl_partition_id("bucket", s);
        CU_ASSERT_EQUAL_FATAL(pl_partition(map, p, 3, out), CM_OK);
        CU_ASSERT_EQUAL(pl_partition(map, p, 3, again), CM_OK);
        bad += memcmp(out, again, sizeof(out)) != 0;
        for (int i = 0; i < 3; i++) {
            count[out[i]]++;
            for (int j = 0; j < i; j++)
                bad += strcmp(t->nodes[out[i]].az, t->nodes[out[j]].az) == 0;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (int i = 0; i < 6; i++) /* 3000 each expected */
        CU_ASSERT(count[i] > 2800 && count[i] < 3200);
    CU_ASSERT_NOT_EQUAL(pl_partition_id("bucket", 1), pl_partition_id("bucket", 2));
    CU_ASSERT_NOT_EQUAL(pl_partition_id("a", 1), pl_partition_id("b", 1));
    int out[8];
    CU_ASSERT_EQUAL(pl_partition(map, 1, 7, out), CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(pl_partition(map, 1, 0, out), CM_ERR_INVAL);
    pl_map_free(map);
    pl_topology_free(t);
    /* 2 AZs of 3 nodes: distinct nodes, both AZs used */
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(2, 3, 1, &t), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_map_new(t, PL_MAP_HOMES, &map), CM_OK);
    for (uint32_t s = 0; s < 2000; s++) {
        int o[3];
        CU_ASSERT_EQUAL_FATAL(pl_partition(map, pl_partition_id("b", s), 3, o), CM_OK);
        bad += o[0] == o[1] || o[0] == o[2] || o[1] == o[2];
        bad += strcmp(t->nodes[o[0]].az, t->nodes[o[1]].az) == 0 &&
               strcmp(t->nodes[o[0]].az, t->nodes[o[2]].az) == 0;
    }
    CU_ASSERT_EQUAL(bad, 0);
    pl_map_free(map);
    pl_topology_free(t);
}

void cu_register(void)
{
    printf("test_placement_cluster seed %#llx\n", (unsigned long long)SEED);
    static const cu_test tests[] = {
        {"shapes_distinct_az_bound", test_shapes},
        {"balance_equal_weights", test_balance_equal},
        {"add_7th_node", test_add_node},
        {"weights", test_weights},
        {"deterministic", test_deterministic},
        {"states", test_states},
        {"handoff", test_handoff},
        {"partitions", test_partitions},
        {NULL, NULL},
    };
    cu_add_suite("placement_cluster", tests);
}
