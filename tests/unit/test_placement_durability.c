/*
 * test_placement_durability.c - the durability estimate (pl_durability, placement/pl.h) against
 * values computed by hand, and its direction: more parity, faster repair, fewer failures, more
 * drives per AZ spread -> more nines.
 *
 * The hand values (python3, double precision; the formulas are the ones in pl_durability.c):
 *   lambda = -ln(1 - 0.02) / 8760 = 2.306245e-06 per hour
 *   4 TB at 100 MB/s: T = 4e12 / 1e8 s = 11.1111 h, mu = 0.09 per hour
 *   m = 1, D = 10: a0 = 10 lambda, a1 = 9 lambda, MTTDL = (a0 + a1 + mu) / (a0 a1)
 *                  = 1.881051e8 h = 21473.18 years; P(year) = 1 - exp(-8760 / MTTDL)
 *                  = 4.656864e-05; nines 4.3319
 *   m = 2, D = 12: d0 = 1/a0, d1 = (1 + mu d0)/a1, d2 = (1 + mu d1)/a2, MTTDL = d0 + d1 + d2
 *                  = 5.005409e11 h; nines 7.7569 (mu^2 / (a0 a1 a2) = 5.002587e11 h, close)
 *   AZ view, 8 drives outside the AZ, tolerance 1, 24 h: q = 1 - exp(-24 lambda) = 5.534835e-05,
 *                  P = 1 - (1-q)^8 - 8 q (1-q)^7 = 8.575733e-08; nines 7.0667
 */
#include <math.h>

#include "cu_main.h"
#include "pl.h"

static int near(double got, double want, double rel)
{
    return fabs(got - want) <= rel * fabs(want);
}

static pl_dur_input base(int k, int m, int drives)
{
    pl_dur_input in;
    pl_dur_defaults(&in);
    in.k = k;
    in.m = m;
    in.drives = drives;
    in.azs = 3;
    in.az_drives = drives - 8;
    in.az_cap = m;
    in.drive_bytes = 4e12;
    in.repair_mbps = 100;
    return in;
}

static void test_hand_values(void)
{
    pl_dur_result r;
    pl_dur_input in = base(9, 1, 10);
    in.az_drives = 2;
    in.az_cap = 0; /* a body keeps its cells out of the largest AZ: tolerance stays m = 1 */
    CU_ASSERT_EQUAL_FATAL(pl_durability(&in, &r), CM_OK);
    CU_ASSERT(near(r.repair_h, 11.111111, 1e-6));
    CU_ASSERT(near(r.mttdl_years, 21473.18, 1e-5));
    CU_ASSERT(near(r.p_loss_year, 4.656864e-05, 1e-5));
    CU_ASSERT(near(r.nines, 4.3319, 1e-4));
    CU_ASSERT_EQUAL(r.az_tolerance, 1);
    CU_ASSERT(near(r.p_az_exposure, 8.575733e-08, 1e-5));
    CU_ASSERT(near(r.az_nines, 7.0667, 1e-4));

    in = base(10, 2, 12);
    CU_ASSERT_EQUAL_FATAL(pl_durability(&in, &r), CM_OK);
    CU_ASSERT(near(r.mttdl_years * 8760, 5.005409e11, 1e-5));
    CU_ASSERT(near(r.nines, 7.7569, 1e-4));
    CU_ASSERT_EQUAL(r.az_tolerance, 0); /* az_cap = m: the AZ outage uses up all the parity */
}

static void test_monotone(void)
{
    pl_dur_result a, b;
    pl_dur_input in = base(8, 2, 24);
    CU_ASSERT_EQUAL_FATAL(pl_durability(&in, &a), CM_OK);
    in.m = 3; /* more parity */
    CU_ASSERT_EQUAL_FATAL(pl_durability(&in, &b), CM_OK);
    CU_ASSERT(b.nines > a.nines);
    CU_ASSERT(b.az_nines > a.az_nines || b.az_tolerance == a.az_tolerance);
    in = base(8, 2, 24);
    in.repair_mbps = 1000; /* faster repair */
    CU_ASSERT_EQUAL_FATAL(pl_durability(&in, &b), CM_OK);
    CU_ASSERT(b.nines > a.nines);
    CU_ASSERT(b.repair_h < a.repair_h);
    in = base(8, 2, 24);
    in.afr = 0.05; /* worse drives */
    CU_ASSERT_EQUAL_FATAL(pl_durability(&in, &b), CM_OK);
    CU_ASSERT(b.nines < a.nines);
    in = base(8, 2, 24);
    in.az_cap = 1; /* a layout that keeps more cells out of any one AZ */
    CU_ASSERT_EQUAL_FATAL(pl_durability(&in, &b), CM_OK);
    CU_ASSERT_EQUAL(b.az_tolerance, 1);
    CU_ASSERT(b.az_nines > a.az_nines);
    /* nines rise with every parity cell, over a range of profiles */
    double last = 0;
    for (int m = 0; m <= 4; m++) {
        in = base(8, m, 24);
        CU_ASSERT_EQUAL_FATAL(pl_durability(&in, &b), CM_OK);
        CU_ASSERT(b.nines > last);
        last = b.nines;
    }
}

static void test_inputs(void)
{
    pl_dur_result r;
    pl_dur_input in = base(8, 4, 10); /* fewer drives than cells */
    CU_ASSERT_EQUAL(pl_durability(&in, &r), CM_ERR_INVAL);
    in = base(8, 2, 24);
    in.afr = 0;
    CU_ASSERT_EQUAL(pl_durability(&in, &r), CM_ERR_INVAL);
    in = base(8, 2, 24);
    in.repair_mbps = 0;
    CU_ASSERT_EQUAL(pl_durability(&in, &r), CM_ERR_INVAL);

    /* from a topology: 3 AZs x 2 nodes x 4 drives, 8+4 -> 24 drives, 8 per AZ, cap 4 */
    pl_topology *t;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 2, 4, &t), CM_OK);
    pl_dur_defaults(&in);
    CU_ASSERT_EQUAL_FATAL(pl_dur_from_topology(t, 8, 4, &in), CM_OK);
    CU_ASSERT_EQUAL(in.drives, 24);
    CU_ASSERT_EQUAL(in.azs, 3);
    CU_ASSERT_EQUAL(in.az_drives, 8);
    CU_ASSERT_EQUAL(in.az_cap, 4);
    t->nodes[0].drives[0].state = PL_DOWN;
    CU_ASSERT_EQUAL_FATAL(pl_dur_from_topology(t, 8, 4, &in), CM_OK);
    CU_ASSERT_EQUAL(in.drives, 23);
    pl_topology_free(t);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"hand_values", test_hand_values},
                                    {"monotone", test_monotone},
                                    {"inputs", test_inputs},
                                    {NULL, NULL}};
    cu_add_suite("placement_durability", tests);
}
