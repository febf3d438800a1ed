/*
 * md_clock.c - hybrid logical clock, version vectors and the resolution of two versions of a key:
 * the record-level pieces of Dynamo-style replication (docs/metadata.md, "Replication
 * primitives").
 *
 * HLC (Kulkarni et al., "Logical Physical Clocks", 2014): a timestamp is (l, c), l the largest
 * wall-clock time seen in ms, c a counter of events within l. Packed as l << 16 | c, the paper's
 * rules reduce to integer maxima: a local event takes max(last + 1, wall << 16), a receive
 * max(last + 1, received + 1, wall << 16). last only grows, so timestamps stay monotonic when the
 * wall clock steps back (they carry on from last, counting in c), within one run: last is not
 * kept across a restart (docs/metadata.md says what orders writes then); 65,536 events within one
 * ms carry into l, a clock running ahead by a millisecond rather than a repeated timestamp. A
 * received timestamp far ahead of the local wall clock (MD_HLC_MAX_DRIFT_MS) is refused, as the
 * paper's epsilon bound: otherwise one node with a wrong clock would pull every clock forward.
 *
 * Version vectors hold at most MD_VV_MAX (node, counter, hlc) entries sorted by node, one per
 * node that coordinated a write of the key (in a cluster, whichever node took the request); when
 * an increment or merge would exceed the bound, the entry with the oldest hlc goes. Pruning can
 * make a concurrent pair compare as ordered, and an ordered pair concurrent (the older version
 * still names the pruned writer); the latter then resolves by last-writer-wins, which picks the
 * newer one, since a coordinator stamps after merging the clocks of the versions it read.
 *
 * Threading: md_hlc is guarded by its mutex; the rest are pure functions.
 */
#include <string.h>
#include <time.h>

#include "cm_util.h"
#include "md_int.h"

/* ---- Hybrid logical clock ---- */

void md_hlc_init(md_hlc *c, uint32_t node, md_wall_fn wall, void *arg)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    c->node = node;
    c->wall = wall;
    c->wall_arg = arg;
}

void md_hlc_release(md_hlc *c)
{
    pthread_mutex_destroy(&c->mu);
}

static int64_t wall_ms(const md_hlc *c)
{
    if (c->wall)
        return c->wall(c->wall_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The wall clock as a timestamp with counter 0 (a clock before 1970 counts as 0). */
static uint64_t wall_ts(const md_hlc *c)
{
    int64_t ms = wall_ms(c);
    return ms > 0 ? MD_HLC_MAKE(ms, 0) : 0;
}

uint64_t md_hlc_now(md_hlc *c)
{
    uint64_t pt = wall_ts(c);
    pthread_mutex_lock(&c->mu);
    uint64_t ts = CM_MAX(c->last + 1, pt);
    c->last = ts;
    pthread_mutex_unlock(&c->mu);
    return ts;
}

cm_err md_hlc_update(md_hlc *c, uint64_t received, uint64_t *out)
{
    uint64_t pt = wall_ts(c);
    if (MD_HLC_MS(received) > MD_HLC_MS(pt) + MD_HLC_MAX_DRIFT_MS)
        return CM_ERR_INVAL;
    pthread_mutex_lock(&c->mu);
    uint64_t ts = CM_MAX(CM_MAX(c->last, received) + 1, pt);
    c->last = ts;
    pthread_mutex_unlock(&c->mu);
    *out = ts;
    return CM_OK;
}

/* ---- Version vectors ---- */

/* Index of node's entry, or where it would be inserted (*found 0). */
static uint32_t vv_find(const md_vv *vv, uint32_t node, int *found)
{
    uint32_t i = 0;
    while (i < vv->n && vv->e[i].node < node)
        i++;
    *found = i < vv->n && vv->e[i].node == node;
    return i;
}

/* Remove the entry with the oldest hlc (the lowest node id among equals) of e[0..n); returns
 * the new count. */
static uint32_t prune_oldest(md_vv_entry *e, uint32_t n)
{
    uint32_t old = 0;
    for (uint32_t i = 1; i < n; i++)
        if (e[i].hlc < e[old].hlc)
            old = i;
    memmove(&e[old], &e[old + 1], (n - old - 1) * sizeof(e[0]));
    return n - 1;
}

void md_vv_increment(md_vv *vv, uint32_t node, uint64_t hlc)
{
    int found;
    uint32_t i = vv_find(vv, node, &found);
    if (!found) {
        if (vv->n == MD_VV_MAX) {
            vv->n = prune_oldest(vv->e, vv->n);
            i = vv_find(vv, node, &found);
        }
        memmove(&vv->e[i + 1], &vv->e[i], (vv->n - i) * sizeof(vv->e[0]));
        vv->e[i] = (md_vv_entry){node, 0, 0};
        vv->n++;
    }
    vv->e[i].counter++;
    vv->e[i].hlc = CM_MAX(vv->e[i].hlc, hlc);
}

void md_vv_merge(const md_vv *a, const md_vv *b, md_vv *out)
{
    /* The union can hold 2 * MD_VV_MAX entries before pruning. */
    md_vv_entry u[2 * MD_VV_MAX];
    uint32_t i = 0, j = 0, n = 0;
    while (i < a->n || j < b->n) {
        if (j == b->n || (i < a->n && a->e[i].node < b->e[j].node)) {
            u[n++] = a->e[i++];
        } else if (i == a->n || b->e[j].node < a->e[i].node) {
            u[n++] = b->e[j++];
        } else {
            u[n] = a->e[i];
            u[n].counter = CM_MAX(a->e[i].counter, b->e[j].counter);
            u[n++].hlc = CM_MAX(a->e[i].hlc, b->e[j].hlc);
            i++, j++;
        }
    }
    md_vv tmp = {0};
    while (n > MD_VV_MAX)
        n = prune_oldest(u, n);
    memcpy(tmp.e, u, n * sizeof(u[0]));
    tmp.n = n;
    *out = tmp;
}

uint64_t md_vv_counter(const md_vv *vv, uint32_t node)
{
    int found;
    uint32_t i = vv_find(vv, node, &found);
    return found ? vv->e[i].counter : 0;
}

md_vv_order md_vv_compare(const md_vv *a, const md_vv *b)
{
    int a_more = 0, b_more = 0; /* some counter of a (b) exceeds the other's */
    uint32_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        if (j == b->n || (i < a->n && a->e[i].node < b->e[j].node)) {
            a_more |= a->e[i++].counter > 0;
        } else if (i == a->n || b->e[j].node < a->e[i].node) {
            b_more |= b->e[j++].counter > 0;
        } else {
            a_more |= a->e[i].counter > b->e[j].counter;
            b_more |= b->e[j].counter > a->e[i].counter;
            i++, j++;
        }
    }
    if (a_more && b_more)
        return MD_VV_CONCURRENT;
    return a_more ? MD_VV_AFTER : b_more ? MD_VV_BEFORE : MD_VV_EQUAL;
}

size_t md_vv_encode(const md_vv *vv, uint8_t *buf)
{
    uint32_t n = CM_MIN(vv->n, (uint32_t)MD_VV_MAX);
    buf[0] = (uint8_t)n;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *p = buf + 1 + i * 20;
        cm_put_be32(p, vv->e[i].node);
        cm_put_be64(p + 4, vv->e[i].counter);
        cm_put_be64(p + 12, vv->e[i].hlc);
    }
    return 1 + (size_t)n * 20;
}

cm_err md_vv_decode(const uint8_t *buf, size_t len, md_vv *out)
{
    memset(out, 0, sizeof(*out));
    if (len < 1 || buf[0] > MD_VV_MAX || len != 1 + (size_t)buf[0] * 20)
        return MD_CORRUPT("bad version vector length");
    for (uint32_t i = 0; i < buf[0]; i++) {
        const uint8_t *p = buf + 1 + i * 20;
        md_vv_entry en = {cm_get_be32(p), cm_get_be64(p + 4), cm_get_be64(p + 12)};
        if (i > 0 && en.node <= out->e[i - 1].node) {
            memset(out, 0, sizeof(*out));
            return MD_CORRUPT("version vector not sorted by node");
        }
        out->e[i] = en;
    }
    out->n = buf[0];
    return CM_OK;
}

/* ---- Resolution ---- */

/* Last-writer-wins order of two stamps; the encoded vectors settle a full tie, so that every
 * replica picks the same version whatever order it sees them in. */
static int lww_b_wins(const md_object *a, const md_object *b)
{
    if (a->hlc != b->hlc)
        return b->hlc > a->hlc;
    if (a->hlc_node != b->hlc_node)
        return b->hlc_node > a->hlc_node;
    uint8_t ea[MD_VV_ENC_MAX], eb[MD_VV_ENC_MAX];
    size_t na = md_vv_encode(&a->vv, ea), nb = md_vv_encode(&b->vv, eb);
    int c = memcmp(ea, eb, CM_MIN(na, nb));
    return c != 0 ? c < 0 : nb > na;
}

int md_object_resolve(const md_object *a, const md_object *b, int *concurrent)
{
    int conc = 0, b_wins;
    switch (md_vv_compare(&a->vv, &b->vv)) {
    case MD_VV_BEFORE:
        b_wins = 1;
        break;
    case MD_VV_AFTER:
        b_wins = 0;
        break;
    case MD_VV_EQUAL:
        /* The same version seen twice, or records from before vectors (both empty). */
        conc = a->hlc != b->hlc || a->hlc_node != b->hlc_node;
        b_wins = lww_b_wins(a, b);
        break;
    default:
        conc = 1;
        b_wins = lww_b_wins(a, b);
        break;
    }
    if (concurrent)
        *concurrent = conc;
    return b_wins;
}
