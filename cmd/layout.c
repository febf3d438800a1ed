/*
 * cmd/layout.c - `cairn admin layout simulate`: what placement does with a layout, offline
 * (docs/placement.md).
 *
 *   cairn admin layout simulate [--file LAYOUT.json | --azs N --nodes-per-az N --drives-per-node N]
 *                               [--add-node AZ]... [--drain NODE]... [--remove-node NODE]...
 *                               [--objects N] [--k K --m M] [--scheme hrw|ring] [--seed S]
 *
 * Builds the topology (a layout document, or a uniform one from the flags: weight 100 per drive),
 * applies the change (--add-node: a node like the first one in AZ; --drain, --remove-node: that
 * node's state), places the objects on it with
 * pl_simulate and prints per node and per AZ the cells against the ideal share (the weight share),
 * the drive load max/mean, the AZ bound check, the speed, and for a change the share of cells moved
 * against the ideal (pl_ideal_moved: added weight / new total, removed weight / old total),
 * and the durability the profile gives at an assumed repair speed (pl_durability).
 * Progress goes to stderr on a terminal. Needs no server and no credentials.
 * cmd_layout_effect is that report, shared with `layout apply`; the verbs that work on the layout
 * in etcd (show, add, remove, drain, discard, apply) are in layout_etcd.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "pl.h"

typedef struct {
    const char *file, *scheme;
    int azs, nodes_per_az, drives_per_node, k, m;
    const char *change[16][2]; /* flag, argument */
    int nchange;
    uint64_t objects, seed;
    double afr, repair_mbps, drive_tb, az_outage_h; /* the durability block */
} sim_opts;

static void usage(FILE *f)
{
    fprintf(
        f, "usage: cairn admin layout simulate [--file LAYOUT.json | --azs N --nodes-per-az N\n"
           "           --drives-per-node N] [--add-node AZ]... [--drain NODE]...\n"
           "           [--remove-node NODE]... [--objects N] [--k K --m M] [--scheme hrw|ring]\n"
           "           [--seed S] [--afr P] [--repair-mbps N] [--drive-tb T] [--az-outage-h H]\n"
           "Places --objects (default 1000000) bodies on the layout (default 3 AZs x 2 nodes x 4\n"
           "drives) and prints the load per node and AZ against the ideal; with a change, the\n"
           "share of cells a rebalance moves against the ideal. Profile default: 8+4 with >= 12\n"
           "drives over >= 3 AZs, else 4+2. Then the durability that implies: drives failing at\n"
           "--afr a year (0.02), T TB of data per drive (4) rebuilt declustered at N MB/s\n"
           "(200, the whole cluster), and the exposure while the largest AZ is down H hours (24).\n"
           "The layout in etcd: cairn admin layout show|add|remove|drain|discard|apply --help\n");
}

static void progress(void *arg, uint64_t done, uint64_t total)
{
    (void)arg;
    fprintf(stderr, "\rplaced %llu of %llu objects (%.0f%%)", (unsigned long long)done,
            (unsigned long long)total, 100.0 * (double)done / (double)total);
    if (done == total)
        fputc('\n', stderr);
}

static int load_file(const char *path, pl_topology **out)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL, err[256];
    size_t len = 0, cap = 0, n;
    if (!f) {
        fprintf(stderr, "cairn admin layout: cannot open %s\n", path);
        return -1;
    }
    do {
        if (len == cap) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 65536);
            if (!nb) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    fclose(f);
    cm_err e = pl_topology_decode(buf, len, out, err, sizeof(err));
    free(buf);
    if (e != CM_OK) {
        fprintf(stderr, "cairn admin layout: %s: %s\n", path, err);
        return -1;
    }
    return 0;
}

/* A node like the first one (same drive ids and weights) in az, named n<next free number>. */
static int add_node(pl_topology *t, const char *az)
{
    char id[PL_NAME_MAX], addr[PL_ADDR_MAX];
    int num = t->nnodes + 1, idx;
    do
        snprintf(id, sizeof(id), "n%d", num++);
    while (pl_topology_find(t, id) >= 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", 9100 + num - 1);
    cm_err e = pl_topology_add_node(t, id, addr, az, &idx);
    for (int d = 0; e == CM_OK && d < t->nodes[0].ndrives; d++)
        e = pl_topology_add_drive(t, idx, t->nodes[0].drives[d].id, t->nodes[0].drives[d].weight,
                                  PL_UP);
    if (e != CM_OK) {
        fprintf(stderr, "cairn admin layout: cannot add a node in AZ '%s': %s\n", az,
                cm_err_str(e));
        return -1;
    }
    printf("change: add node %s in AZ %s with %d drives\n", id, az, t->nodes[idx].ndrives);
    return 0;
}

/* --add-node AZ, --drain NODE or --remove-node NODE applied to t. */
static int apply_change(pl_topology *t, const char *flag, const char *arg)
{
    if (strcmp(flag, "--add-node") == 0)
        return add_node(t, arg);
    int i = pl_topology_find(t, arg);
    if (i < 0) {
        fprintf(stderr, "cairn admin layout: no node '%s'\n", arg);
        return -1;
    }
    t->nodes[i].state = strcmp(flag, "--drain") == 0 ? PL_DRAINING : PL_REMOVED;
    printf("change: %s node %s in AZ %s\n", pl_state_name(t->nodes[i].state), arg, t->nodes[i].az);
    return 0;
}

static int parse_args(int argc, char **argv, sim_opts *o)
{
    *o = (sim_opts){.scheme = "hrw",
                    .azs = 3,
                    .nodes_per_az = 2,
                    .drives_per_node = 4,
                    .m = -1,
                    .objects = 1000000,
                    .seed = 0x5EED,
                    .afr = 0.02,
                    .repair_mbps = 200,
                    .drive_tb = 4,
                    .az_outage_h = 24};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (!v) {
            fprintf(stderr, "cairn admin layout: '%s' needs a value\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--file") == 0)
            o->file = v;
        else if (strcmp(a, "--scheme") == 0 && (!strcmp(v, "hrw") || !strcmp(v, "ring")))
            o->scheme = v;
        else if ((!strcmp(a, "--add-node") || !strcmp(a, "--drain") ||
                  !strcmp(a, "--remove-node")) &&
                 o->nchange < 16) {
            o->change[o->nchange][0] = a;
            o->change[o->nchange++][1] = v;
        } else if (strcmp(a, "--azs") == 0)
            o->azs = atoi(v);
        else if (strcmp(a, "--nodes-per-az") == 0)
            o->nodes_per_az = atoi(v);
        else if (strcmp(a, "--drives-per-node") == 0)
            o->drives_per_node = atoi(v);
        else if (strcmp(a, "--k") == 0)
            o->k = atoi(v);
        else if (strcmp(a, "--m") == 0)
            o->m = atoi(v);
        else if (strcmp(a, "--objects") == 0)
            o->objects = strtoull(v, NULL, 10);
        else if (strcmp(a, "--seed") == 0)
            o->seed = strtoull(v, NULL, 0);
        else if (strcmp(a, "--afr") == 0)
            o->afr = strtod(v, NULL);
        else if (strcmp(a, "--repair-mbps") == 0)
            o->repair_mbps = strtod(v, NULL);
        else if (strcmp(a, "--drive-tb") == 0)
            o->drive_tb = strtod(v, NULL);
        else if (strcmp(a, "--az-outage-h") == 0)
            o->az_outage_h = strtod(v, NULL);
        else {
            fprintf(stderr, "cairn admin layout: unknown or bad argument '%s %s'\n", a, v);
            return -1;
        }
    }
    if (o->objects == 0 || ((o->k || o->m >= 0) && (o->k < 1 || o->m < 0))) {
        fprintf(stderr, "cairn admin layout: --objects must be > 0; give both --k >= 1 and "
                        "--m >= 0, or neither\n");
        return -1;
    }
    return 0;
}

/* Cells and weight per node (or per AZ when by_az): one table row each, in topology order. */
static void print_table(const pl_topology *t, const pl_sim_result *r, int by_az)
{
    uint64_t total_w;
    pl_topology_stats(t, &total_w, NULL, NULL);
    printf("\n%-10s %-10s %7s %12s %12s %12s %8s\n", by_az ? "AZ" : "node", by_az ? "" : "AZ",
           "drives", "weight", "cells", "ideal", "/ideal");
    int flat = 0;
    for (int i = 0; i < t->nnodes; i++) {
        const pl_node *n = &t->nodes[i];
        int first = 1;
        for (int p = 0; p < i && first; p++)
            first = strcmp(t->nodes[p].az, n->az) != 0;
        uint64_t w = 0, cells = 0;
        int nd = 0;
        /* a node row covers its drives; an AZ row (at its first node) every node naming it */
        for (int j = i, f = flat; j < t->nnodes; f += t->nodes[j].ndrives, j++) {
            if ((by_az && strcmp(t->nodes[j].az, n->az) != 0) || (!by_az && j != i))
                continue;
            for (int d = 0; d < t->nodes[j].ndrives; d++) {
                cells += r->load[f + d];
                nd++;
                if (t->nodes[j].state == PL_UP && t->nodes[j].drives[d].state == PL_UP)
                    w += t->nodes[j].drives[d].weight;
            }
        }
        flat += n->ndrives;
        if (by_az && !first)
            continue;
        double ideal = total_w ? (double)r->cells * (double)w / (double)total_w : 0;
        printf("%-10s %-10s %7d %12llu %12llu %12.0f %8.4f\n", by_az ? n->az : n->id,
               by_az ? "" : n->az, nd, (unsigned long long)w, (unsigned long long)cells, ideal,
               ideal > 0 ? (double)cells / ideal : 0.0);
    }
}

/* Drive load max/mean over the drives taking cells, and the worst drive against its ideal. */
static void print_drives(const pl_topology *t, const pl_sim_result *r)
{
    uint64_t total_w, sum = 0, max = 0;
    int nd = 0, flat = 0;
    double worst = 0;
    pl_topology_stats(t, &total_w, NULL, NULL);
    for (int i = 0; i < t->nnodes; i++)
        for (int d = 0; d < t->nodes[i].ndrives; d++, flat++) {
            if (t->nodes[i].state != PL_UP || t->nodes[i].drives[d].state != PL_UP)
                continue;
            double ideal = (double)r->cells * t->nodes[i].drives[d].weight / (double)total_w;
            sum += r->load[flat];
            max = r->load[flat] > max ? r->load[flat] : max;
            worst = ideal > 0 && r->load[flat] / ideal > worst ? r->load[flat] / ideal : worst;
            nd++;
        }
    printf("\ndrives: load max/mean %.4f over %d drives; worst drive %.4f of its ideal share\n",
           nd && sum ? (double)max * nd / (double)sum : 0.0, nd, worst);
}

/*
 * Place objects on after (and on before, when not NULL: a change) and print the load per node
 * and AZ against the ideal, the drive load max/mean, the AZ bound and, for a change, the share
 * moved against the ideal. k == 0 picks before's (else after's) default profile. 0, or 1 when
 * the simulation failed. Shared by `simulate` and `apply` (layout_etcd.c).
 */
int cmd_layout_effect(const pl_topology *before, const pl_topology *after, const char *scheme,
                      int k, int m, uint64_t objects, uint64_t seed)
{
    if (k == 0)
        pl_default_profile(before ? before : after, &k, &m);
    int nd, na;
    pl_topology_stats(after, NULL, &nd, &na);
    unsigned flags = strcmp(scheme, "ring") == 0 ? PL_MAP_RING : PL_MAP_HOMES;
    pl_map *map = NULL;
    int cap = 0;
    if (pl_map_new(after, flags, &map) == CM_OK)
        cap = pl_az_cap(map, k, m);
    pl_map_free(map);
    printf("layout: %d AZs, %d nodes, %d drives taking cells, epoch %llu; profile %d+%d, at "
           "most %d cells per AZ; scheme %s; %llu objects\n",
           na, after->nnodes, nd, (unsigned long long)after->epoch, k, m, cap, scheme,
           (unsigned long long)objects);
    pl_sim_result r;
    cm_err e = pl_simulate(before, after, flags, k, m, objects, seed, isatty(2) ? progress : NULL,
                           NULL, &r);
    if (e != CM_OK) {
        fprintf(stderr, "cairn admin layout: simulation failed: %s\n", cm_err_str(e));
        return 1;
    }
    print_table(after, &r, 0);
    print_table(after, &r, 1);
    print_drives(after, &r);
    if (r.az_over)
        printf("AZ bound: VIOLATED: %llu objects have more than %d cells in one AZ\n",
               (unsigned long long)r.az_over, cap);
    else
        printf("AZ bound: kept: no object has more than %d cells in one AZ\n", cap);
    if (r.not_placed)
        printf("not placed: %llu objects (too few drives)\n", (unsigned long long)r.not_placed);
    if (before) {
        double moved = r.cells ? (double)r.moved / (double)r.cells : 0;
        double ideal = pl_ideal_moved(before, after);
        printf("change: moved %llu of %llu cells = %.4f; ideal (weight share changing hands) %.4f; "
               "ratio %.3f\n",
               (unsigned long long)r.moved, (unsigned long long)r.cells, moved, ideal,
               ideal > 0 ? moved / ideal : 0.0);
        printf(
            "        (cells whose index changed drive, if cells could not be renumbered: %.4f)\n",
            r.cells ? (double)r.moved_index / (double)r.cells : 0.0);
    }
    printf("speed: %.0f ns per placement\n", r.ns_per_place);
    pl_sim_result_release(&r);
    return 0;
}

/* The durability block: what the profile and an assumed repair speed give on topology t. */
static int print_durability(const pl_topology *t, const sim_opts *o)
{
    int k = o->k, m = o->m;
    pl_dur_input in;
    pl_dur_result r;
    if (k == 0)
        pl_default_profile(t, &k, &m);
    pl_dur_defaults(&in);
    in.afr = o->afr;
    in.drive_bytes = o->drive_tb * 1e12;
    in.repair_mbps = o->repair_mbps;
    in.az_outage_h = o->az_outage_h;
    if (pl_dur_from_topology(t, k, m, &in) != CM_OK || pl_durability(&in, &r) != CM_OK) {
        fprintf(stderr,
                "cairn admin layout: no durability estimate for %d+%d here (check --afr "
                "in (0,1), --repair-mbps > 0, --drive-tb > 0, drives >= k+m)\n",
                k, m);
        return 1;
    }
    printf("\ndurability: profile %d+%d over %d drives in %d AZs (at most %d cells per AZ); "
           "AFR %.2f%% per drive;\n"
           "  %.2f TB per drive rebuilt declustered at %.0f MB/s (assumed, the whole cluster): "
           "%.2f h per lost drive\n"
           "  MTTDL %.3g years; annual loss probability %.3g: %.1f nines\n",
           k, m, in.drives, in.azs, in.az_cap, 100 * in.afr, o->drive_tb, in.repair_mbps,
           r.repair_h, r.mttdl_years, r.p_loss_year, r.nines);
    if (r.az_tolerance < 0)
        printf("  largest AZ down (%d drives): some bodies unreadable at once (more than m cells "
               "in one AZ)\n",
               in.az_drives);
    else
        printf("  largest AZ down (%d drives): %d more drive failures tolerated; P(more during a "
               "%.0f h outage) %.3g: %.1f nines\n",
               in.az_drives, r.az_tolerance, in.az_outage_h, r.p_az_exposure, r.az_nines);
    return 0;
}

int cmd_layout(int argc, char **argv)
{
    if (argc >= 2 && cmd_layout_etcd_verb(argv[1]))
        return cmd_layout_etcd(argc, argv);
    if (argc < 2 || strcmp(argv[1], "simulate") != 0) {
        usage(argc < 2 || strcmp(argv[1], "--help") != 0 ? stderr : stdout);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    sim_opts o;
    int rc = parse_args(argc - 1, argv + 1, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    pl_topology *before = NULL, *after = NULL;
    cm_err e = CM_OK;
    if (o.file)
        rc = load_file(o.file, &before);
    else if ((e = pl_topology_uniform(o.azs, o.nodes_per_az, o.drives_per_node, &before)) !=
             CM_OK) {
        fprintf(stderr, "cairn admin layout: bad shape: %s\n", cm_err_str(e));
        rc = -1;
    }
    if (rc == 0 && pl_topology_clone(before, &after) != CM_OK)
        rc = -1;
    for (int i = 0; rc == 0 && i < o.nchange; i++)
        rc = apply_change(after, o.change[i][0], o.change[i][1]);
    if (rc != 0) {
        pl_topology_free(before);
        pl_topology_free(after);
        return 1;
    }
    if (o.nchange)
        after->epoch++;
    rc = cmd_layout_effect(o.nchange ? before : NULL, after, o.scheme, o.k, o.m, o.objects, o.seed);
    if (rc == 0)
        rc = print_durability(after, &o);
    pl_topology_free(before);
    pl_topology_free(after);
    return rc;
}
