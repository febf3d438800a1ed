/*
 * cmd/layout_etcd.c - `cairn admin layout show|add|remove|drain|discard|apply`: the cluster layout
 * in etcd (docs/coordination.md, "Layout and membership").
 *
 * Two keys of the cluster: the current layout co_key(cluster, "layout") and a staged change
 * co_key(cluster, "staged"), both the bytes of pl_topology_encode. add, remove and drain edit the
 * staged topology (a copy of the current one when nothing is staged), validate it and write it
 * back by compare-and-set on the staged key's revision; the staged document carries the epoch of
 * the current layout it was based on. apply prints the difference and its effect (the same
 * simulation as `simulate`: cmd_layout_effect), asks (or takes --yes / --dry-run), and installs
 * the staged topology as the current one with epoch + 1 by compare-and-set on the current key's
 * revision read before the simulation: of two concurrent applies exactly one wins, the other is
 * told the layout changed meanwhile. A staged change based on an older epoch is refused (it would
 * undo what was applied since); discard drops it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cmd.h"
#include "co.h"
#include "pl.h"

#define ME "cairn admin layout"
#define MAX_DRIVE_ARGS 255

typedef struct {
    const char *verb, *node, *addr, *az;
    cmd_etcd_opts etcd;
    const char *drive_args[MAX_DRIVE_ARGS];
    int ndrive_args, ndrives, yes, dry_run, force;
    uint32_t weight;
    uint64_t objects;
    co_client *client;
    char cur_key[256], staged_key[256], nodes_prefix[256];
} lopts;

static void usage(FILE *f)
{
    fprintf(
        f, "usage: cairn admin layout show    [ETCD]\n"
           "       cairn admin layout add     NODE --addr HOST:PORT --az AZ\n"
           "                                  (--drive ID[:WEIGHT]... | --drives N) [--weight W]\n"
           "                                  [ETCD]\n"
           "       cairn admin layout remove  NODE [ETCD]\n"
           "       cairn admin layout drain   NODE [ETCD]\n"
           "       cairn admin layout discard [ETCD]\n"
           "       cairn admin layout apply   [--yes | --dry-run] [--force] [--objects N] [ETCD]\n"
           "ETCD: --etcd URL[,URL...] (default $CAIRN_ETCD_ENDPOINTS, else http://127.0.0.1:2379)\n"
           "      --cluster ID (default $CAIRN_CLUSTER, else \"default\") --timeout MS\n"
           "add, remove and drain stage a change; show prints the current layout, the live\n"
           "members and the staged change; apply shows its effect and makes it current (epoch+1);\n"
           "it refuses while a live member is still in the handoff of the last change or has not\n"
           "adopted it (--force applies anyway).\n"
           "Drive weights are capacity units (e.g. GiB), default 100.\n");
}

static int parse_weight(const char *v, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long w = strtoull(v, &end, 10);
    if (errno || end == v || *end || *v == '-' || w < 1 || w > PL_MAX_WEIGHT) {
        fprintf(stderr, ME ": bad weight '%s': a whole number from 1 to %u\n", v, PL_MAX_WEIGHT);
        return -1;
    }
    *out = (uint32_t)w;
    return 0;
}

static int parse_args(int argc, char **argv, lopts *o)
{
    o->verb = argv[1];
    cmd_etcd_opts_init(&o->etcd);
    o->weight = 100;
    o->objects = 200000;
    int i = 2;
    int needs_node =
        !strcmp(o->verb, "add") || !strcmp(o->verb, "remove") || !strcmp(o->verb, "drain");
    if (needs_node) {
        if (argc < 3 || argv[2][0] == '-') {
            fprintf(stderr, ME " %s: name the node: cairn admin layout %s NODE ...\n", o->verb,
                    o->verb);
            return -1;
        }
        o->node = argv[i++];
    }
    for (; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--yes") || !strcmp(a, "-y")) {
            o->yes = 1;
            continue;
        }
        if (!strcmp(a, "--dry-run")) {
            o->dry_run = 1;
            continue;
        }
        if (!strcmp(a, "--force") && !strcmp(o->verb, "apply")) {
            o->force = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!v) {
            fprintf(stderr, ME ": '%s' needs a value (or is unknown)\n", a);
            return -1;
        }
        i++;
        long n;
        if (cmd_etcd_opt(&o->etcd, a, v))
            ;
        else if (!strcmp(a, "--addr") && !strcmp(o->verb, "add"))
            o->addr = v;
        else if (!strcmp(a, "--az") && !strcmp(o->verb, "add"))
            o->az = v;
        else if (!strcmp(a, "--drive") && !strcmp(o->verb, "add") &&
                 o->ndrive_args < MAX_DRIVE_ARGS)
            o->drive_args[o->ndrive_args++] = v;
        else if (!strcmp(a, "--drives") && !strcmp(o->verb, "add") && (n = atol(v)) > 0 &&
                 n <= PL_MAX_DRIVES)
            o->ndrives = (int)n;
        else if (!strcmp(a, "--weight") && !strcmp(o->verb, "add")) {
            if (parse_weight(v, &o->weight) != 0)
                return -1;
        } else if (!strcmp(a, "--objects") && !strcmp(o->verb, "apply") &&
                   (o->objects = strtoull(v, NULL, 10)) > 0)
            ;
        else {
            fprintf(stderr, ME " %s: unknown or bad argument '%s %s'\n", o->verb, a, v);
            return -1;
        }
    }
    return 0;
}

/* ---- reading the two documents ---- */

/* Key's topology into *out (NULL when absent) and its revision (0 when absent); 0 or -1. */
static int fetch(lopts *o, const char *key, const char *what, pl_topology **out, int64_t *rev)
{
    co_kv kv;
    char err[256];
    *out = NULL;
    *rev = 0;
    cm_err e = co_get(o->client, key, &kv, NULL);
    if (e == CM_ERR_NOTFOUND)
        return 0;
    if (e != CM_OK) {
        fprintf(stderr, ME ": cannot read the %s layout from etcd (%s): %s\n", what, o->etcd.etcd,
                cm_err_str(e));
        return -1;
    }
    e = pl_topology_decode(kv.value, kv.len, out, err, sizeof(err));
    *rev = kv.mod_rev;
    co_kv_release(&kv);
    if (e != CM_OK) {
        fprintf(stderr, ME ": the %s layout in etcd (%s) is not valid: %s\n", what, key, err);
        return -1;
    }
    return 0;
}

/* ---- printing ---- */

static uint64_t node_weight(const pl_node *n)
{
    uint64_t w = 0;
    for (int d = 0; d < n->ndrives; d++)
        if (n->state == PL_UP && n->drives[d].state == PL_UP)
            w += n->drives[d].weight;
    return w;
}

/* 1 when node id is among the live members (keys under the nodes prefix). */
static int is_live(const lopts *o, const co_kvs *members, const char *id)
{
    size_t plen = strlen(o->nodes_prefix);
    for (size_t i = 0; members && i < members->n; i++)
        if (strcmp(members->kvs[i].key + plen, id) == 0)
            return 1;
    return 0;
}

static void print_layout(const lopts *o, const pl_topology *t, const co_kvs *members)
{
    uint64_t w;
    int nd, na;
    pl_topology_stats(t, &w, &nd, &na);
    printf("%-12s %-10s %-22s %-9s %-5s %6s %10s  %s\n", "node", "AZ", "address", "state", "live",
           "drives", "weight", "drive:weight (state when not up)");
    for (int i = 0; i < t->nnodes; i++) {
        const pl_node *n = &t->nodes[i];
        printf("%-12s %-10s %-22s %-9s %-5s %6d %10" PRIu64 " ", n->id, n->az, n->addr,
               pl_state_name(n->state), members ? (is_live(o, members, n->id) ? "yes" : "no") : "-",
               n->ndrives, node_weight(n));
        for (int d = 0; d < n->ndrives; d++)
            printf(" %u:%u%s%s", n->drives[d].id, n->drives[d].weight,
                   n->drives[d].state == PL_UP ? "" : "/",
                   n->drives[d].state == PL_UP ? "" : pl_state_name(n->drives[d].state));
        printf("\n");
    }
    printf("total: %d AZs, %d nodes, %d drives taking cells, weight %" PRIu64 "\n", na, t->nnodes,
           nd, w);
}

/* One line per difference from before (NULL: empty) to after; the number of lines. */
static int print_diff(const pl_topology *before, const pl_topology *after)
{
    int changes = 0;
    for (int i = 0; i < after->nnodes; i++) {
        const pl_node *n = &after->nodes[i];
        int b = before ? pl_topology_find(before, n->id) : -1;
        if (b < 0) {
            printf("  + node %s in AZ %s at %s, %s, %d drives, weight %" PRIu64 "\n", n->id, n->az,
                   n->addr, pl_state_name(n->state), n->ndrives, node_weight(n));
            changes++;
            continue;
        }
        const pl_node *p = &before->nodes[b];
        if (p->state != n->state)
            printf("  ~ node %s: %s -> %s\n", n->id, pl_state_name(p->state),
                   pl_state_name(n->state)),
                changes++;
        if (strcmp(p->addr, n->addr) || strcmp(p->az, n->az))
            printf("  ~ node %s: %s in %s -> %s in %s\n", n->id, p->addr, p->az, n->addr, n->az),
                changes++;
        for (int d = 0; d < n->ndrives; d++) {
            const pl_drive *nd = &n->drives[d], *pd = NULL;
            for (int e = 0; e < p->ndrives && !pd; e++)
                pd = p->drives[e].id == nd->id ? &p->drives[e] : NULL;
            if (!pd)
                printf("  + drive %s:%u weight %u\n", n->id, nd->id, nd->weight), changes++;
            else if (pd->weight != nd->weight || pd->state != nd->state)
                printf("  ~ drive %s:%u: weight %u %s -> weight %u %s\n", n->id, nd->id, pd->weight,
                       pl_state_name(pd->state), nd->weight, pl_state_name(nd->state)),
                    changes++;
        }
    }
    for (int i = 0; before && i < before->nnodes; i++)
        if (pl_topology_find(after, before->nodes[i].id) < 0)
            printf("  - node %s\n", before->nodes[i].id), changes++;
    if (!changes)
        printf("  (no difference)\n");
    return changes;
}

/* A member's record ({"addr":"HOST:PORT","s3":"URL"}, co_layout.c) as one indented line. */
static void print_member(const lopts *o, const co_kv *kv)
{
    json_t *rec = json_loadb((const char *)kv->value, kv->len, 0, NULL);
    const char *addr = json_string_value(json_object_get(rec, "addr"));
    const char *s3 = json_string_value(json_object_get(rec, "s3"));
    printf("  %-12s rpc %-22s s3 %s\n", kv->key + strlen(o->nodes_prefix), addr ? addr : "-",
           s3 ? s3 : "-");
    json_decref(rec);
}

static int do_show(lopts *o)
{
    pl_topology *cur = NULL, *stg = NULL;
    int64_t cur_rev, stg_rev;
    co_kvs members = {0};
    int have_members;
    if (fetch(o, o->cur_key, "current", &cur, &cur_rev) != 0 ||
        fetch(o, o->staged_key, "staged", &stg, &stg_rev) != 0) {
        pl_topology_free(cur);
        return 1;
    }
    have_members = co_member_list(o->client, o->nodes_prefix, &members) == CM_OK;
    if (cur) {
        printf("cluster %s: layout epoch %" PRIu64 " at etcd revision %" PRId64 "\n",
               o->etcd.cluster, cur->epoch, cur_rev);
        print_layout(o, cur, have_members ? &members : NULL);
    } else {
        printf("cluster %s: no layout applied yet\n", o->etcd.cluster);
    }
    printf("live members (registered with a lease):");
    for (size_t i = 0; have_members && i < members.n; i++)
        printf(" %s", members.kvs[i].key + strlen(o->nodes_prefix));
    printf("%s\n", !have_members ? " (etcd did not answer)" : members.n ? "" : " none");
    for (size_t i = 0; have_members && i < members.n; i++)
        print_member(o, &members.kvs[i]);
    if (stg) {
        printf("\nstaged change (based on epoch %" PRIu64 ", etcd revision %" PRId64 "):\n",
               stg->epoch, stg_rev);
        print_diff(cur, stg);
        printf("staged layout:\n");
        print_layout(o, stg, have_members ? &members : NULL);
        if (stg->epoch != (cur ? cur->epoch : 0))
            printf("the staged change is based on epoch %" PRIu64
                   ", not the current one: discard it and stage again\n",
                   stg->epoch);
    } else {
        printf("no staged change\n");
    }
    if (have_members)
        co_kvs_release(&members);
    pl_topology_free(cur);
    pl_topology_free(stg);
    return 0;
}

/* ---- staging ---- */

/*
 * 1 (with the reason printed) when stg was staged on another epoch than cur's: applying it would
 * undo the changes applied since.
 */
static int stale_staged(const lopts *o, const pl_topology *cur, const pl_topology *stg)
{
    uint64_t base = cur ? cur->epoch : 0;
    if (!stg || stg->epoch == base)
        return 0;
    fprintf(stderr,
            ME " %s: the staged change is based on epoch %" PRIu64 " but the current layout is at "
               "epoch %" PRIu64 ": run `cairn admin layout discard` and stage again\n",
            o->verb, stg->epoch, base);
    return 1;
}

/* Add o->node with its drives to t; 0 or -1 with the reason printed. */
static int stage_add(const lopts *o, pl_topology *t)
{
    int idx;
    if (!o->addr || !o->az || (!o->ndrive_args && !o->ndrives)) {
        fprintf(stderr, ME " add: give --addr HOST:PORT, --az AZ and the drives (--drive "
                           "ID[:WEIGHT]... or --drives N)\n");
        return -1;
    }
    int have = pl_topology_find(t, o->node);
    if (have >= 0) {
        fprintf(stderr,
                ME " add: node '%s' is already in the layout (state %s): node ids are "
                   "never reused, choose another\n",
                o->node, pl_state_name(t->nodes[have].state));
        return -1;
    }
    cm_err e = pl_topology_add_node(t, o->node, o->addr, o->az, &idx);
    if (e != CM_OK) {
        fprintf(stderr, ME " add: cannot add node '%s' (AZ '%s', address '%s'): %s%s\n", o->node,
                o->az, o->addr, cm_err_str(e),
                e == CM_ERR_INVAL ? ": node ids and AZ names are 1-63 characters of "
                                    "[A-Za-z0-9._-], the address is HOST:PORT (port 1-65535)"
                                  : "");
        return -1;
    }
    for (int d = 0; d < o->ndrives && e == CM_OK; d++)
        e = pl_topology_add_drive(t, idx, (uint32_t)d, o->weight, PL_UP);
    for (int i = 0; i < o->ndrive_args && e == CM_OK; i++) {
        const char *spec = o->drive_args[i], *colon = strchr(spec, ':');
        char *end;
        uint32_t w = o->weight;
        errno = 0;
        unsigned long id = strtoul(spec, &end, 10);
        if (errno || end == spec || (*end && end != colon) || id > UINT32_MAX) {
            fprintf(stderr, ME " add: bad drive '%s': ID[:WEIGHT] with a numeric id\n", spec);
            return -1;
        }
        if (colon && parse_weight(colon + 1, &w) != 0)
            return -1;
        e = pl_topology_add_drive(t, idx, (uint32_t)id, w, PL_UP);
        if (e == CM_ERR_EXISTS) {
            fprintf(stderr, ME " add: drive %lu is given twice\n", id);
            return -1;
        }
    }
    if (e != CM_OK) {
        fprintf(stderr, ME " add: cannot add the drives of '%s': %s\n", o->node, cm_err_str(e));
        return -1;
    }
    return 0;
}

/* Apply the verb to t (the staged topology being built); 0 or -1. */
static int stage_change(const lopts *o, pl_topology *t)
{
    if (!strcmp(o->verb, "add"))
        return stage_add(o, t);
    int i = pl_topology_find(t, o->node);
    if (i < 0) {
        fprintf(stderr, ME " %s: no node '%s' in the layout (current or staged)\n", o->verb,
                o->node);
        return -1;
    }
    pl_state to = !strcmp(o->verb, "drain") ? PL_DRAINING : PL_REMOVED;
    if (t->nodes[i].state == PL_REMOVED || t->nodes[i].state == to) {
        fprintf(stderr, ME " %s: node '%s' is already %s\n", o->verb, o->node,
                pl_state_name(t->nodes[i].state));
        return -1;
    }
    t->nodes[i].state = to;
    return 0;
}

static int do_stage(lopts *o)
{
    pl_topology *cur = NULL, *stg = NULL;
    int64_t cur_rev, stg_rev, new_rev;
    char err[256], *buf = NULL;
    size_t len;
    int rc = 1;
    if (fetch(o, o->cur_key, "current", &cur, &cur_rev) != 0 ||
        fetch(o, o->staged_key, "staged", &stg, &stg_rev) != 0)
        goto out;
    if (stale_staged(o, cur, stg))
        goto out;
    if (!stg && (cur                          ? pl_topology_clone(cur, &stg)
                 : (stg = pl_topology_new(0)) ? CM_OK
                                              : CM_ERR_NOMEM) != CM_OK) {
        fprintf(stderr, ME ": out of memory\n");
        goto out;
    }
    if (stage_change(o, stg) != 0)
        goto out;
    if (pl_topology_validate(stg, err, sizeof(err)) != CM_OK) {
        fprintf(stderr, ME " %s: the layout would not be valid: %s\n", o->verb, err);
        goto out;
    }
    if (pl_topology_encode(stg, &buf, &len) != CM_OK) {
        fprintf(stderr, ME " %s: cannot encode the layout\n", o->verb);
        goto out;
    }
    cm_err e = co_cas(o->client, o->staged_key, buf, len, stg_rev, 0, &new_rev);
    if (e == CM_ERR_CONFLICT) {
        fprintf(stderr,
                ME " %s: someone changed the staged layout meanwhile: nothing staged; "
                   "look at `cairn admin layout show` and run the command again\n",
                o->verb);
        goto out;
    }
    if (e != CM_OK) {
        fprintf(stderr, ME " %s: cannot write the staged layout: %s\n", o->verb, cm_err_str(e));
        goto out;
    }
    printf("staged (etcd revision %" PRId64 "); the change against epoch %" PRIu64 ":\n", new_rev,
           cur ? cur->epoch : 0);
    print_diff(cur, stg);
    printf("run `cairn admin layout apply` to make it current\n");
    rc = 0;
out:
    free(buf);
    pl_topology_free(cur);
    pl_topology_free(stg);
    return rc;
}

static int do_discard(lopts *o)
{
    int64_t n = 0;
    cm_err e = co_delete(o->client, o->staged_key, 0, &n);
    if (e != CM_OK) {
        fprintf(stderr, ME " discard: %s\n", cm_err_str(e));
        return 1;
    }
    printf(n ? "staged change discarded\n" : "nothing was staged\n");
    return 0;
}

/* ---- apply ---- */

static int confirm(const lopts *o)
{
    if (o->yes)
        return 0;
    if (!isatty(0)) {
        fprintf(stderr, ME " apply: stdin is not a terminal: pass --yes to apply (or --dry-run)\n");
        return -1;
    }
    char line[16];
    printf("apply this change? [y/N] ");
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin) || (line[0] != 'y' && line[0] != 'Y')) {
        printf("not applied\n");
        return -1;
    }
    return 0;
}

/* Install buf as the current layout from revision cur_rev; 0 or -1 with the reason printed. */
static int install(lopts *o, const char *buf, size_t len, int64_t cur_rev, uint64_t epoch)
{
    int64_t new_rev = 0;
    cm_err e = co_cas(o->client, o->cur_key, buf, len, cur_rev, 0, &new_rev);
    if (e == CM_ERR_UNCERTAIN) { /* the answer was lost: did our write land? */
        co_kv kv;
        if (co_get(o->client, o->cur_key, &kv, NULL) == CM_OK) {
            if (kv.len == len && memcmp(kv.value, buf, len) == 0)
                e = CM_OK, new_rev = kv.mod_rev;
            else
                e = CM_ERR_CONFLICT, new_rev = kv.mod_rev;
            co_kv_release(&kv);
        }
    }
    if (e == CM_ERR_CONFLICT) {
        fprintf(stderr,
                ME " apply: conflict: the current layout changed since it was read (revision "
                   "%" PRId64 ", now %" PRId64 "), probably by another apply; nothing was applied "
                   "by this command: look at `cairn admin layout show`\n",
                cur_rev, new_rev);
        return -1;
    }
    if (e != CM_OK) {
        fprintf(stderr,
                ME " apply: cannot write the layout: %s (run show to see whether it was "
                   "applied)\n",
                cm_err_str(e));
        return -1;
    }
    printf("applied: layout epoch %" PRIu64 " at etcd revision %" PRId64 "\n", epoch, new_rev);
    return 0;
}

/*
 * The live members still busy with the current layout: in the handoff from the one before it
 * ("handoff":1 in the member value, co_layout_report) or not serving it yet ("epoch" below
 * base). Each is printed; how many (-1 when etcd did not answer). A second change applied
 * before the first has settled would have such a node read only the newest two layouts and miss
 * what only the oldest homes hold (docs/replication.md, "Layout changes: the handoff").
 */
static int busy_members(const lopts *o, uint64_t base)
{
    co_kvs members = {0};
    if (co_member_list(o->client, o->nodes_prefix, &members) != CM_OK)
        return -1;
    int busy = 0;
    for (size_t i = 0; i < members.n; i++) {
        const co_kv *kv = &members.kvs[i];
        json_t *rec = json_loadb((const char *)kv->value, kv->len, 0, NULL);
        json_t *je = json_object_get(rec, "epoch"); /* none: an older node, or none adopted yet */
        json_int_t epoch = je ? json_integer_value(je) : (json_int_t)base;
        json_int_t handoff = json_integer_value(json_object_get(rec, "handoff"));
        const char *name = kv->key + strlen(o->nodes_prefix);
        if (handoff)
            fprintf(stderr, "  node %s: still in the handoff to epoch %lld\n", name,
                    (long long)epoch);
        else if (epoch < 0 || (uint64_t)epoch < base)
            fprintf(stderr, "  node %s: serves epoch %lld, not %" PRIu64 " yet\n", name,
                    (long long)epoch, base);
        busy += handoff || epoch < 0 || (uint64_t)epoch < base;
        json_decref(rec);
    }
    co_kvs_release(&members);
    return busy;
}

static int do_apply(lopts *o)
{
    pl_topology *cur = NULL, *stg = NULL;
    int64_t cur_rev, stg_rev;
    char *buf = NULL;
    size_t len;
    int rc = 1;
    if (fetch(o, o->cur_key, "current", &cur, &cur_rev) != 0 ||
        fetch(o, o->staged_key, "staged", &stg, &stg_rev) != 0)
        goto out;
    if (!stg) {
        fprintf(stderr,
                ME " apply: nothing is staged (cluster %s): stage a change with add, "
                   "remove or drain first\n",
                o->etcd.cluster);
        goto out;
    }
    uint64_t base = cur ? cur->epoch : 0;
    if (stale_staged(o, cur, stg))
        goto out;
    int busy = cur ? busy_members(o, base) : 0;
    if (busy != 0 && !o->force) {
        fprintf(stderr,
                busy < 0 ? ME " apply: refused: cannot read the member list to check that the last "
                              "change settled (--force applies anyway)\n"
                         : ME " apply: refused: %d node(s) above still move data for the last "
                              "layout change (admin status replication.handoff_active); apply "
                              "once it settled, or pass --force\n",
                busy);
        goto out;
    }
    stg->epoch = base + 1;
    printf("change from epoch %" PRIu64 " to %" PRIu64 " (cluster %s):\n", base, stg->epoch,
           o->etcd.cluster);
    print_diff(cur, stg);
    fflush(stdout);
    if (cmd_layout_effect(cur, stg, "hrw", 0, 0, o->objects, 0x5EED) != 0)
        goto out;
    if (o->dry_run) {
        printf("dry run: nothing applied\n");
        rc = 0;
        goto out;
    }
    if (confirm(o) != 0)
        goto out;
    if (pl_topology_encode(stg, &buf, &len) != CM_OK) {
        fprintf(stderr, ME " apply: cannot encode the layout\n");
        goto out;
    }
    if (install(o, buf, len, cur_rev, stg->epoch) != 0)
        goto out;
    /* the change is current; a change staged meanwhile by someone else is dropped with it */
    if (co_delete(o->client, o->staged_key, 0, NULL) != CM_OK)
        fprintf(stderr, ME " apply: applied, but the staged copy could not be removed: run "
                           "`cairn admin layout discard`\n");
    rc = 0;
out:
    free(buf);
    pl_topology_free(cur);
    pl_topology_free(stg);
    return rc;
}

int cmd_layout_etcd_verb(const char *verb)
{
    static const char *const verbs[] = {"show", "add", "remove", "drain", "discard", "apply"};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(verb, verbs[i]) == 0)
            return 1;
    return 0;
}

int cmd_layout_etcd(int argc, char **argv)
{
    lopts o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (co_key(o.cur_key, sizeof(o.cur_key), o.etcd.cluster, CO_KIND_LAYOUT, NULL) != CM_OK ||
        co_key(o.staged_key, sizeof(o.staged_key), o.etcd.cluster, CO_KIND_LAYOUT_STAGED, NULL) !=
            CM_OK ||
        co_key(o.nodes_prefix, sizeof(o.nodes_prefix), o.etcd.cluster, CO_KIND_NODES, "") !=
            CM_OK) {
        fprintf(stderr, ME ": bad --cluster '%s': [A-Za-z0-9._-]+\n", o.etcd.cluster);
        return 2;
    }
    if ((rc = cmd_etcd_connect(&o.etcd, ME, &o.client)) != 0)
        return rc;
    if (!strcmp(o.verb, "show"))
        rc = do_show(&o);
    else if (!strcmp(o.verb, "apply"))
        rc = do_apply(&o);
    else if (!strcmp(o.verb, "discard"))
        rc = do_discard(&o);
    else
        rc = do_stage(&o);
    co_client_free(o.client);
    return rc;
}
