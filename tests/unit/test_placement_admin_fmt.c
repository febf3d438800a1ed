/*
 * test_placement_admin_fmt.c - the output helpers of `cairn admin` (cmd/admin_fmt.c): byte
 * units, durations and ages, aligned tables, progress lines with rate and ETA, exit codes, and
 * the durability estimate over placement's model (hence the placement module).
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_fmt.h"
#include "cu_main.h"

static void test_bytes(void)
{
    char b[32];
    static const struct {
        uint64_t v;
        const char *want;
    } cases[] = {
        {0, "0 B"},
        {1023, "1023 B"},
        {1024, "1.0 KiB"},
        {1300, "1.3 KiB"},
        {(uint64_t)(1.2 * (1 << 30)), "1.2 GiB"},
        {1048575, "1.0 MiB"}, /* 1023.999 KiB rounds up: shown in the next unit */
        {5ull << 40, "5.0 TiB"},
        {UINT64_MAX, "16.0 EiB"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        am_bytes(cases[i].v, b, sizeof(b));
        CU_ASSERT_STRING_EQUAL(b, cases[i].want);
    }
}

static void test_duration_and_age(void)
{
    char b[32];
    am_duration(-1, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "unknown");
    am_duration(0, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "0s");
    am_duration(0.3, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "<1s");
    am_duration(45, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "45s");
    am_duration(200, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "3m 20s");
    am_duration(2 * 3600 + 5 * 60, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "2h 05m");
    am_duration(3 * 86400 + 4 * 3600 + 59, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "3d 04h");
    am_ago(1000000, 0, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "never");
    am_ago(1000000, 999600, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "just now");
    am_ago(1000000, 1000500, b, sizeof(b)); /* a clock a little ahead: not negative */
    CU_ASSERT_STRING_EQUAL(b, "just now");
    am_ago(1000000, 1000000 - 12000, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "12s ago");
    am_ago(1000000, 1000000 - 180000, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "3m ago");
    am_ago(100000000, 100000000 - 5 * 3600000LL, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "5h ago");
    am_ago(1000000000, 1000000000 - 2 * 86400000LL, b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "2d ago");
}

static void test_table(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    am_table t;
    static const char *const head[] = {"name", "size", "note"};
    static const char *const r1[] = {"a", "1.2 GiB", "x"};
    static const char *const r2[] = {"longer-name", "3 B", NULL};
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL_FATAL(am_table_init(&t, "lrl", head), 0);
    for (int i = 0; i < 20; i++) /* past the first allocation */
        CU_ASSERT_EQUAL(am_table_row(&t, i % 2 ? r2 : r1), 0);
    CU_ASSERT_EQUAL(t.nrows, 20);
    am_table_print(&t, f);
    fclose(f);
    /* columns as wide as their widest cell, two spaces apart; size right-aligned; the last column
     * is not padded; a NULL cell prints "-" */
    const char *want = "name            size  note\n"
                       "a            1.2 GiB  x\n"
                       "longer-name      3 B  -\n";
    CU_ASSERT_EQUAL(strncmp(buf, want, strlen(want)), 0);
    int lines = 0;
    for (char *p = buf; *p; p++)
        lines += *p == '\n';
    CU_ASSERT_EQUAL(lines, 21);
    am_table_release(&t);
    free(buf);
    CU_ASSERT_EQUAL(am_table_init(&t, "", head), -1); /* no columns */
}

static void test_progress_and_eta(void)
{
    char line[256];
    CU_ASSERT_DOUBLE_EQUAL(am_eta(25, 100, 5), 15, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(am_eta(100, 100, 5), 0, 1e-9);
    CU_ASSERT(am_eta(10, 0, 5) < 0);   /* unknown total */
    CU_ASSERT(am_eta(10, 100, 0) < 0); /* no progress yet */
    am_progress(line, sizeof(line), "repair", 450, 1000, 10, 0, "records");
    CU_ASSERT_STRING_EQUAL(line, "repair [#########...........]  45% 450/1000 records, 10.0 "
                                 "records/s, ETA 55s");
    am_progress(line, sizeof(line), "scrub", 512.0 * 1048576, 1024.0 * 1048576, 64.0 * 1048576, 1,
                NULL);
    CU_ASSERT_STRING_EQUAL(line, "scrub [##########..........]  50% 512.0 MiB of 1.0 GiB, 64.0 "
                                 "MiB/s, ETA 8s");
    am_progress(line, sizeof(line), "scrub", 2048, 0, -1, 1, NULL);
    CU_ASSERT_STRING_EQUAL(line, "scrub 2.0 KiB, rate unknown, ETA unknown");
    am_progress(line, 20, "scrub", 1, 2, 1, 0, "x"); /* truncated, still terminated */
    CU_ASSERT_EQUAL(strlen(line), 19);
}

static void test_exit_codes(void)
{
    CU_ASSERT_EQUAL(am_exit_for_status(200), AM_EXIT_OK);
    CU_ASSERT_EQUAL(am_exit_for_status(403), AM_EXIT_AUTH);
    CU_ASSERT_EQUAL(am_exit_for_status(401), AM_EXIT_AUTH);
    CU_ASSERT_EQUAL(am_exit_for_status(500), AM_EXIT_SERVER);
    CU_ASSERT_EQUAL(am_exit_for_status(503), AM_EXIT_SERVER);
    CU_ASSERT_EQUAL(am_exit_for_status(404), AM_EXIT_SERVER);
}

/* Single node 4+2 on 6 drives, 1 TB per drive rebuilt at 100 MB/s, AFR 1%. */
static void test_durability_single_node(void)
{
    am_dur_in in = {.k = 4,
                    .m = 2,
                    .drives = 6,
                    .afr = 0.01,
                    .drive_bytes = 1e12,
                    .repair_bps = 100e6,
                    .measured = 1};
    am_dur_out d;
    am_durability(&in, &d);
    CU_ASSERT_EQUAL(d.tol_drives, 2);
    CU_ASSERT_EQUAL(d.tol_nodes, -1);
    CU_ASSERT_EQUAL(d.tol_azs, -1);
    CU_ASSERT_FATAL(d.known);
    CU_ASSERT_DOUBLE_EQUAL(d.rebuild_s, 1e4, 1e-6); /* 1e12 B / 1e8 B/s */
    /* the dominant term: 6*5*4 * lambda^3 * T^2 with lambda per hour and T in hours, per year */
    double lambda = -log1p(-0.01) / 8760.0, t = 1e4 / 3600.0;
    double approx = 6 * 5 * 4 * pow(lambda, 3) * t * t * 8760.0;
    CU_ASSERT(d.p_loss_year > approx * 0.8 && d.p_loss_year < approx * 1.25);
    CU_ASSERT_DOUBLE_EQUAL(d.nines, -log10(d.p_loss_year), 1e-9);
    /* slower repair, more risk; one more parity, much less */
    am_dur_out slow, more;
    in.repair_bps = 10e6;
    am_durability(&in, &slow);
    CU_ASSERT(slow.p_loss_year > d.p_loss_year * 50);
    in.repair_bps = 100e6, in.m = 3, in.drives = 7;
    am_durability(&in, &more);
    CU_ASSERT(more.p_loss_year < d.p_loss_year / 100);
    char text[768];
    in.m = 2, in.drives = 6;
    am_durability_text(&in, &d, text, sizeof(text));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "tolerates 2 drive losses (4+2 over 6 drives)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "measured repair rate of 95.4 MiB/s"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "a lost drive of 931.3 GiB is rebuilt in ~2h 46m"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "assumed AFR of 1%/year per drive"));
}

static void test_durability_unknown(void)
{
    am_dur_in in = {.k = 4, .m = 2, .drives = 6, .afr = 0.01, .drive_bytes = 1e12};
    am_dur_out d;
    char text[512];
    am_durability(&in, &d); /* no repair rate */
    CU_ASSERT_EQUAL(d.known, 0);
    CU_ASSERT_EQUAL(d.tol_drives, 2);
    am_durability_text(&in, &d, text, sizeof(text));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "no repair rate measured or configured"));
    in.repair_bps = 1e6, in.drives = 4; /* fewer drives than cells */
    am_durability(&in, &d);
    CU_ASSERT_EQUAL(d.known, 0);
    am_durability_text(&in, &d, text, sizeof(text));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "fewer drives than cells"));
}

/* Failure domains: 4+2 over 3 AZs of 2 nodes: 1 cell per node, 2 per AZ. */
static void test_durability_domains(void)
{
    am_dur_in in = {.k = 4,
                    .m = 2,
                    .drives = 24,
                    .nodes = 6,
                    .azs = 3,
                    .az_drives = 8,
                    .afr = 0.01,
                    .drive_bytes = 4e12,
                    .repair_bps = 600e6};
    am_dur_out d;
    am_durability(&in, &d);
    CU_ASSERT_EQUAL(d.tol_nodes, 2);
    CU_ASSERT_EQUAL(d.tol_azs, 1);
    CU_ASSERT(d.known);
    in.nodes = 3, in.azs = 1; /* 2 cells per node, one AZ */
    am_durability(&in, &d);
    CU_ASSERT_EQUAL(d.tol_nodes, 1);
    CU_ASSERT_EQUAL(d.tol_azs, -1);
    in.nodes = 2, in.azs = 2; /* 3 cells per node and per AZ: more than m */
    am_durability(&in, &d);
    CU_ASSERT_EQUAL(d.tol_nodes, 0);
    CU_ASSERT_EQUAL(d.tol_azs, 0);
    char text[768];
    am_durability_text(&in, &d, text, sizeof(text));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "0 of 2 nodes lost, 0 of 2 AZs lost"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "CONFIGURED"));
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"bytes", test_bytes},
        {"duration_and_age", test_duration_and_age},
        {"table", test_table},
        {"progress_and_eta", test_progress_and_eta},
        {"exit_codes", test_exit_codes},
        {"durability_single_node", test_durability_single_node},
        {"durability_unknown", test_durability_unknown},
        {"durability_domains", test_durability_domains},
        {NULL, NULL},
    };
    cu_add_suite("admin_fmt", tests);
}
