/*
 * pl_topology.c - the cluster layout in memory: build, copy, validate, and the default profile
 * (see pl.h).
 *
 * Nodes live in one growable array, each with its own drive array; AZs are not stored separately
 * but derived from the nodes' az names (an AZ exists while a node names it). Ids are checked as
 * they are added, and pl_topology_validate checks a whole topology again (one built by a decoder
 * or by hand). No global state; a topology is not shared between threads while it changes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "pl.h"

pl_topology *pl_topology_new(uint64_t epoch)
{
    pl_topology *t = calloc(1, sizeof(*t));
    if (t)
        t->epoch = epoch;
    return t;
}

void pl_topology_free(pl_topology *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->nnodes; i++)
        free(t->nodes[i].drives);
    free(t->nodes);
    free(t);
}

static int name_ok(const char *s)
{
    return cm_ident_ok(s, PL_NAME_MAX);
}

/* "host:port" (host may be [v6]), port 1..65535, no spaces. */
static int addr_ok(const char *s)
{
    size_t n = strlen(s);
    const char *colon = strrchr(s, ':');
    if (n == 0 || n >= PL_ADDR_MAX || !colon || colon == s || strpbrk(s, " \t\r\n\"\\"))
        return 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return colon[1] != '\0' && *end == '\0' && port >= 1 && port <= 65535;
}

int pl_topology_find(const pl_topology *t, const char *node_id)
{
    for (int i = 0; i < t->nnodes; i++)
        if (strcmp(t->nodes[i].id, node_id) == 0)
            return i;
    return -1;
}

cm_err pl_topology_add_node(pl_topology *t, const char *id, const char *addr, const char *az,
                            int *idx)
{
    if (!name_ok(id) || !name_ok(az) || !addr_ok(addr))
        return CM_ERR_INVAL;
    if (pl_topology_find(t, id) >= 0)
        return CM_ERR_EXISTS;
    if (t->nnodes >= PL_MAX_NODES)
        return CM_ERR_TOOBIG;
    if (t->nnodes == t->cap) {
        int cap = t->cap ? t->cap * 2 : 8;
        pl_node *n = realloc(t->nodes, (size_t)cap * sizeof(*n));
        if (!n)
            return CM_ERR_NOMEM;
        t->nodes = n;
        t->cap = cap;
    }
    pl_node *n = &t->nodes[t->nnodes];
    memset(n, 0, sizeof(*n));
    snprintf(n->id, sizeof(n->id), "%s", id);
    snprintf(n->addr, sizeof(n->addr), "%s", addr);
    snprintf(n->az, sizeof(n->az), "%s", az);
    n->state = PL_UP;
    if (idx)
        *idx = t->nnodes;
    t->nnodes++;
    return CM_OK;
}

cm_err pl_topology_add_drive(pl_topology *t, int node, uint32_t id, uint32_t weight, pl_state state)
{
    if (node < 0 || node >= t->nnodes || weight == 0 || weight > PL_MAX_WEIGHT ||
        state > PL_REMOVED)
        return CM_ERR_INVAL;
    pl_node *n = &t->nodes[node];
    for (int i = 0; i < n->ndrives; i++)
        if (n->drives[i].id == id)
            return CM_ERR_EXISTS;
    if (n->ndrives >= PL_MAX_DRIVES)
        return CM_ERR_TOOBIG;
    /* drive arrays are small: grow one at a time */
    pl_drive *d = realloc(n->drives, (size_t)(n->ndrives + 1) * sizeof(*d));
    if (!d)
        return CM_ERR_NOMEM;
    n->drives = d;
    d[n->ndrives++] = (pl_drive){id, weight, state};
    return CM_OK;
}

cm_err pl_topology_clone(const pl_topology *t, pl_topology **out)
{
    pl_topology *c = pl_topology_new(t->epoch);
    if (!c)
        return CM_ERR_NOMEM;
    for (int i = 0; i < t->nnodes; i++) {
        const pl_node *n = &t->nodes[i];
        int idx;
        cm_err e = pl_topology_add_node(c, n->id, n->addr, n->az, &idx);
        for (int j = 0; e == CM_OK && j < n->ndrives; j++)
            e = pl_topology_add_drive(c, idx, n->drives[j].id, n->drives[j].weight,
                                      n->drives[j].state);
        if (e != CM_OK) {
            pl_topology_free(c);
            return e == CM_ERR_NOMEM ? e : CM_ERR_INVAL;
        }
        c->nodes[idx].state = n->state;
    }
    *out = c;
    return CM_OK;
}

static pl_state worse(pl_state a, pl_state b)
{
    return a > b ? a : b;
}

cm_err pl_topology_validate(const pl_topology *t, char *err, size_t errcap)
{
    int usable = 0;
    for (int i = 0; i < t->nnodes; i++) {
        const pl_node *n = &t->nodes[i];
        if (!name_ok(n->id)) {
            snprintf(err, errcap, "node %d: id '%s' is not 1-63 chars of [A-Za-z0-9._-]", i, n->id);
            return CM_ERR_INVAL;
        }
        if (!name_ok(n->az)) {
            snprintf(err, errcap, "node %s: AZ '%s' is not 1-63 chars of [A-Za-z0-9._-]", n->id,
                     n->az);
            return CM_ERR_INVAL;
        }
        if (!addr_ok(n->addr)) {
            snprintf(err, errcap, "node %s: address '%s' is not host:port", n->id, n->addr);
            return CM_ERR_INVAL;
        }
        if (n->state > PL_REMOVED) {
            snprintf(err, errcap, "node %s: unknown state %d", n->id, (int)n->state);
            return CM_ERR_INVAL;
        }
        if (pl_topology_find(t, n->id) != i) {
            snprintf(err, errcap, "node id '%s' appears twice", n->id);
            return CM_ERR_INVAL;
        }
        if (n->ndrives > PL_MAX_DRIVES) {
            snprintf(err, errcap, "node %s: more than %d drives", n->id, PL_MAX_DRIVES);
            return CM_ERR_INVAL;
        }
        for (int j = 0; j < n->ndrives; j++) {
            const pl_drive *d = &n->drives[j];
            if (d->weight == 0 || d->weight > PL_MAX_WEIGHT) {
                snprintf(err, errcap, "node %s drive %u: weight %u not in 1..%u", n->id, d->id,
                         d->weight, PL_MAX_WEIGHT);
                return CM_ERR_INVAL;
            }
            if (d->state > PL_REMOVED) {
                snprintf(err, errcap, "node %s drive %u: unknown state %d", n->id, d->id,
                         (int)d->state);
                return CM_ERR_INVAL;
            }
            for (int k = 0; k < j; k++)
                if (n->drives[k].id == d->id) {
                    snprintf(err, errcap, "node %s: drive id %u appears twice", n->id, d->id);
                    return CM_ERR_INVAL;
                }
            usable += worse(d->state, n->state) == PL_UP;
        }
    }
    if (t->nnodes > PL_MAX_NODES) {
        snprintf(err, errcap, "more than %d nodes", PL_MAX_NODES);
        return CM_ERR_INVAL;
    }
    if (usable == 0) {
        snprintf(err, errcap, "no drive is up: nothing could be placed");
        return CM_ERR_INVAL;
    }
    return CM_OK;
}

void pl_topology_stats(const pl_topology *t, uint64_t *weight, int *ndrives, int *nazs)
{
    uint64_t w = 0;
    int nd = 0, na = 0;
    for (int i = 0; i < t->nnodes; i++) {
        const pl_node *n = &t->nodes[i];
        int here = 0;
        for (int j = 0; j < n->ndrives; j++)
            if (worse(n->drives[j].state, n->state) == PL_UP) {
                w += n->drives[j].weight;
                here++;
            }
        nd += here;
        if (!here)
            continue;
        /* a new AZ unless an earlier node of the same AZ already had an up drive */
        int seen = 0;
        for (int p = 0; p < i && !seen; p++) {
            if (strcmp(t->nodes[p].az, n->az) != 0 || t->nodes[p].state != PL_UP)
                continue;
            for (int j = 0; j < t->nodes[p].ndrives && !seen; j++)
                seen = t->nodes[p].drives[j].state == PL_UP;
        }
        na += !seen;
    }
    if (weight)
        *weight = w;
    if (ndrives)
        *ndrives = nd;
    if (nazs)
        *nazs = na;
}

void pl_default_profile(const pl_topology *t, int *k, int *m)
{
    int nd, na;
    pl_topology_stats(t, NULL, &nd, &na);
    /* A body's cells go to distinct drives: a small layout gets a profile it can hold, with as
     * much parity as it can give (2+2 on 4 drives survives any two). */
    static const int small[6][2] = {{1, 0}, {1, 0}, {1, 1}, {2, 1}, {2, 2}, {2, 2}};
    if (nd >= 12 && na >= 3) {
        *k = 8;
        *m = 4;
    } else if (nd >= 6) {
        *k = 4;
        *m = 2;
    } else {
        *k = small[nd > 0 ? nd : 0][0];
        *m = small[nd > 0 ? nd : 0][1];
    }
}

static const char *const state_names[] = {"up", "down", "draining", "removed"};

const char *pl_state_name(pl_state s)
{
    return s <= PL_REMOVED ? state_names[s] : "?";
}

cm_err pl_state_parse(const char *s, pl_state *out)
{
    for (int i = 0; i <= (int)PL_REMOVED; i++)
        if (strcmp(s, state_names[i]) == 0) {
            *out = (pl_state)i;
            return CM_OK;
        }
    return CM_ERR_INVAL;
}

cm_err pl_topology_single(int ndrives, pl_topology **out)
{
    if (ndrives < 1 || ndrives > PL_MAX_DRIVES)
        return CM_ERR_INVAL;
    pl_topology *t = pl_topology_new(1);
    if (!t)
        return CM_ERR_NOMEM;
    cm_err e = pl_topology_add_node(t, "local", "127.0.0.1:9000", "local", NULL);
    for (int d = 0; e == CM_OK && d < ndrives; d++)
        e = pl_topology_add_drive(t, 0, (uint32_t)d, 1, PL_UP);
    if (e != CM_OK) {
        pl_topology_free(t);
        return e;
    }
    *out = t;
    return CM_OK;
}

cm_err pl_topology_uniform(int nazs, int nodes_per_az, int drives_per_node, pl_topology **out)
{
    if (nazs < 1 || nodes_per_az < 1 || drives_per_node < 1 || drives_per_node > PL_MAX_DRIVES ||
        (long)nazs * nodes_per_az > PL_MAX_NODES)
        return CM_ERR_INVAL;
    pl_topology *t = pl_topology_new(1);
    if (!t)
        return CM_ERR_NOMEM;
    cm_err e = CM_OK;
    for (int a = 0; a < nazs && e == CM_OK; a++)
        for (int n = 0; n < nodes_per_az && e == CM_OK; n++) {
            int num = a * nodes_per_az + n + 1, idx;
            char id[PL_NAME_MAX], az[PL_NAME_MAX], addr[PL_ADDR_MAX];
            snprintf(id, sizeof(id), "n%d", num);
            snprintf(az, sizeof(az), "az%d", a + 1);
            snprintf(addr, sizeof(addr), "127.0.0.1:%d", 9100 + num);
            e = pl_topology_add_node(t, id, addr, az, &idx);
            for (int d = 0; d < drives_per_node && e == CM_OK; d++)
                e = pl_topology_add_drive(t, idx, (uint32_t)d, 100, PL_UP);
        }
    if (e != CM_OK) {
        pl_topology_free(t);
        return e;
    }
    *out = t;
    return CM_OK;
}
