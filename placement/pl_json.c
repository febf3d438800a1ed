/*
 * pl_json.c - the layout as a versioned JSON document (format in pl.h), with jansson.
 *
 * The document is what etcd holds under the layout key; other code treats it as opaque bytes.
 * Decoding is strict: unknown states, missing fields, wrong types or a document of a newer
 * version are refused with a sentence naming the place, never guessed at, because a node that
 * misread the layout would place data where no other node looks. Unknown extra members are
 * ignored so that a later version can add fields older readers skip. Encoding sorts nothing:
 * AZs in the order of their first node, nodes and drives as stored, so a round trip is exact.
 *
 * Node indices are what layouts of bodies record (md_layout.nodes[]), so they must not change
 * from one epoch to the next. Grouping nodes under their AZ would renumber them when a node joins
 * an AZ listed before the last one; so when the stored order is not the grouped one, every node
 * carries "slot" (its index) and decoding puts each node back in its slot. A document whose order
 * is the grouped one has no slots (every document written before them reads as it did).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pl.h"

static json_t *drive_json(const pl_drive *d)
{
    return json_pack("{s:I,s:I,s:s}", "id", (json_int_t)d->id, "weight", (json_int_t)d->weight,
                     "state", pl_state_name(d->state));
}

static json_t *node_json(const pl_node *n, int slot)
{
    json_t *drives = json_array();
    for (int j = 0; drives && j < n->ndrives; j++)
        if (json_array_append_new(drives, drive_json(&n->drives[j])) != 0) {
            json_decref(drives);
            return NULL;
        }
    if (!drives)
        return NULL;
    json_t *o = json_pack("{s:s,s:s,s:s,s:o}", "id", n->id, "addr", n->addr, "state",
                          pl_state_name(n->state), "drives", drives);
    if (o && slot >= 0 && json_object_set_new(o, "slot", json_integer(slot)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Is the node order the one grouping by AZ gives (AZs in the order of their first node)? */
static int grouped(const pl_topology *t)
{
    int pos = 0;
    for (int i = 0; i < t->nnodes; i++) {
        int first = 1;
        for (int p = 0; p < i && first; p++)
            first = strcmp(t->nodes[p].az, t->nodes[i].az) != 0;
        for (int j = i; first && j < t->nnodes; j++)
            if (strcmp(t->nodes[j].az, t->nodes[i].az) == 0 && j != pos++)
                return 0;
    }
    return 1;
}

/* The AZ object for az, with every node naming it (and its slot when slots). */
static json_t *az_json(const pl_topology *t, const char *az, int slots)
{
    json_t *nodes = json_array();
    for (int i = 0; nodes && i < t->nnodes; i++)
        if (strcmp(t->nodes[i].az, az) == 0 &&
            json_array_append_new(nodes, node_json(&t->nodes[i], slots ? i : -1)) != 0) {
            json_decref(nodes);
            return NULL;
        }
    if (!nodes)
        return NULL;
    return json_pack("{s:s,s:o}", "name", az, "nodes", nodes);
}

cm_err pl_topology_encode(const pl_topology *t, char **out, size_t *len)
{
    char err[256];
    if (pl_topology_validate(t, err, sizeof(err)) != CM_OK)
        return CM_ERR_INVAL;
    json_t *azs = json_array();
    int slots = !grouped(t);
    for (int i = 0; azs && i < t->nnodes; i++) {
        int first = 1;
        for (int p = 0; p < i && first; p++)
            first = strcmp(t->nodes[p].az, t->nodes[i].az) != 0;
        if (first && json_array_append_new(azs, az_json(t, t->nodes[i].az, slots)) != 0) {
            json_decref(azs);
            azs = NULL;
        }
    }
    if (!azs)
        return CM_ERR_NOMEM;
    /* epochs above INT64_MAX do not survive JSON integers: refuse rather than wrap */
    if (t->epoch > (uint64_t)INT64_MAX) {
        json_decref(azs);
        return CM_ERR_RANGE;
    }
    json_t *doc = json_pack("{s:i,s:I,s:o}", "version", PL_DOC_VERSION, "epoch",
                            (json_int_t)t->epoch, "azs", azs);
    char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (!s)
        return CM_ERR_NOMEM;
    *out = s;
    *len = strlen(s);
    return CM_OK;
}

static cm_err bad(char *err, size_t errcap, const char *what, const char *where)
{
    snprintf(err, errcap, "layout document: %s%s%s", what, where[0] ? " at " : "", where);
    return CM_ERR_INVAL;
}

static cm_err parse_state(json_t *obj, pl_state *st, char *err, size_t errcap, const char *where)
{
    json_t *s = json_object_get(obj, "state");
    if (!s) {
        *st = PL_UP;
        return CM_OK;
    }
    if (!json_is_string(s) || pl_state_parse(json_string_value(s), st) != CM_OK)
        return bad(err, errcap, "state is not up, down, draining or removed", where);
    return CM_OK;
}

static cm_err parse_drives(pl_topology *t, int idx, json_t *drives, char *err, size_t errcap)
{
    char where[160];
    size_t j;
    json_t *d;
    json_array_foreach(drives, j, d)
    {
        snprintf(where, sizeof(where), "node %s drive #%zu", t->nodes[idx].id, j);
        json_t *id = json_object_get(d, "id"), *w = json_object_get(d, "weight");
        if (!json_is_object(d) || !json_is_integer(id) || !json_is_integer(w))
            return bad(err, errcap, "a drive needs integer id and weight", where);
        json_int_t iv = json_integer_value(id), wv = json_integer_value(w);
        if (iv < 0 || iv > UINT32_MAX || wv < 1 || wv > (json_int_t)PL_MAX_WEIGHT)
            return bad(err, errcap, "drive id or weight out of range", where);
        pl_state st;
        cm_err e = parse_state(d, &st, err, errcap, where);
        if (e != CM_OK)
            return e;
        e = pl_topology_add_drive(t, idx, (uint32_t)iv, (uint32_t)wv, st);
        if (e == CM_ERR_EXISTS)
            return bad(err, errcap, "drive id appears twice", where);
        if (e == CM_ERR_NOMEM)
            return e;
        if (e != CM_OK)
            return bad(err, errcap, "drive not accepted", where);
    }
    return CM_OK;
}

static cm_err parse_node(pl_topology *t, const char *az, json_t *n, char *err, size_t errcap)
{
    json_t *id = json_object_get(n, "id"), *addr = json_object_get(n, "addr"),
           *drives = json_object_get(n, "drives");
    char where[160];
    snprintf(where, sizeof(where), "AZ %s", az);
    if (!json_is_object(n) || !json_is_string(id) || !json_is_string(addr) ||
        !json_is_array(drives))
        return bad(err, errcap, "a node needs string id and addr and a drives array", where);
    snprintf(where, sizeof(where), "node %s", json_string_value(id));
    int idx;
    cm_err e = pl_topology_add_node(t, json_string_value(id), json_string_value(addr), az, &idx);
    if (e == CM_ERR_EXISTS)
        return bad(err, errcap, "node id appears twice", where);
    if (e == CM_ERR_NOMEM)
        return e;
    if (e != CM_OK)
        return bad(err, errcap, "bad node id or address (host:port)", where);
    e = parse_state(n, &t->nodes[idx].state, err, errcap, where);
    return e != CM_OK ? e : parse_drives(t, idx, drives, err, errcap);
}

/*
 * Put every node in its slot: slot[i] is node i's "slot" member (-1: none). Either no node has
 * one, or every node has a distinct one in 0..nnodes-1.
 */
static cm_err place_slots(pl_topology *t, const int *slot, char *err, size_t errcap)
{
    int any = 0;
    for (int i = 0; i < t->nnodes; i++)
        any |= slot[i] >= 0;
    if (!any)
        return CM_OK;
    pl_node *to = calloc((size_t)t->nnodes, sizeof(*to));
    char *seen = calloc((size_t)t->nnodes, 1);
    cm_err e = to && seen ? CM_OK : CM_ERR_NOMEM;
    for (int i = 0; e == CM_OK && i < t->nnodes; i++) {
        if (slot[i] < 0 || slot[i] >= t->nnodes || seen[slot[i]])
            e = bad(err, errcap, "slots must be given for every node, distinct, below the count",
                    t->nodes[i].id);
        else
            seen[slot[i]] = 1;
    }
    for (int i = 0; e == CM_OK && i < t->nnodes; i++)
        to[slot[i]] = t->nodes[i];
    if (e == CM_OK)
        memcpy(t->nodes, to, (size_t)t->nnodes * sizeof(*to));
    free(to);
    free(seen);
    return e;
}

/* Node n's "slot" member into (*slot)[idx], growing the array; -1 when it has none. */
static cm_err read_slot(json_t *n, int idx, int **slot, char *err, size_t errcap)
{
    json_t *s = json_object_get(n, "slot");
    int *grown = realloc(*slot, (size_t)(idx + 1) * sizeof(**slot));
    if (!grown)
        return CM_ERR_NOMEM;
    *slot = grown;
    grown[idx] = -1;
    if (!s)
        return CM_OK;
    if (!json_is_integer(s) || json_integer_value(s) < 0 || json_integer_value(s) >= PL_MAX_NODES)
        return bad(err, errcap, "slot is not an integer in range", "");
    grown[idx] = (int)json_integer_value(s);
    return CM_OK;
}

static cm_err parse_doc(pl_topology *t, json_t *doc, int **slot, char *err, size_t errcap)
{
    json_t *ver = json_object_get(doc, "version"), *ep = json_object_get(doc, "epoch"),
           *azs = json_object_get(doc, "azs");
    if (!json_is_object(doc) || !json_is_integer(ver) || !json_is_integer(ep) ||
        !json_is_array(azs))
        return bad(err, errcap, "needs integer version and epoch and an azs array", "");
    if (json_integer_value(ver) > PL_DOC_VERSION) {
        snprintf(err, errcap, "layout document version %lld is newer than this binary's %d",
                 (long long)json_integer_value(ver), PL_DOC_VERSION);
        return CM_ERR_UNSUPPORTED;
    }
    if (json_integer_value(ver) < 1 || json_integer_value(ep) < 0)
        return bad(err, errcap, "version or epoch out of range", "");
    t->epoch = (uint64_t)json_integer_value(ep);
    size_t i;
    json_t *az;
    json_array_foreach(azs, i, az)
    {
        json_t *name = json_object_get(az, "name"), *nodes = json_object_get(az, "nodes");
        if (!json_is_object(az) || !json_is_string(name) || !json_is_array(nodes))
            return bad(err, errcap, "an AZ needs a string name and a nodes array", "azs");
        for (size_t p = 0; p < i; p++)
            if (json_equal(json_object_get(json_array_get(azs, p), "name"), name))
                return bad(err, errcap, "AZ appears twice", json_string_value(name));
        size_t j;
        json_t *n;
        json_array_foreach(nodes, j, n)
        {
            cm_err e = parse_node(t, json_string_value(name), n, err, errcap);
            if (e == CM_OK)
                e = read_slot(n, t->nnodes - 1, slot, err, errcap);
            if (e != CM_OK)
                return e;
        }
    }
    cm_err e = place_slots(t, *slot, err, errcap);
    return e != CM_OK ? e : pl_topology_validate(t, err, errcap);
}

cm_err pl_topology_decode(const void *buf, size_t len, pl_topology **out, char *err, size_t errcap)
{
    json_error_t je;
    json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        snprintf(err, errcap, "layout document: not JSON (line %d column %d: %s)", je.line,
                 je.column, je.text);
        return CM_ERR_INVAL;
    }
    pl_topology *t = pl_topology_new(0);
    int *slot = NULL;
    cm_err e = t ? parse_doc(t, doc, &slot, err, errcap) : CM_ERR_NOMEM;
    free(slot);
    json_decref(doc);
    if (e != CM_OK) {
        pl_topology_free(t);
        return e;
    }
    *out = t;
    return CM_OK;
}
