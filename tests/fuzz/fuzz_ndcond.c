/*
 * fuzz_ndcond.c - libFuzzer target for the query of the node RPC's conditional write (the cond
 * route: nd_cond_parse, node/nd_meta.c), the parser a leader runs on a request that passed the
 * HMAC check: a peer's bug, or a node holding the cluster secret, must not crash it or make it
 * run another condition than the one the sender meant.
 *
 * Input: the query text (after '?'); an input holding a NUL is skipped (the HTTP parser refuses
 * those in a target).
 *
 * Oracles, from the contract in nd_int.h rather than from the code:
 *  - a query parses or is refused with a reason, never anything else;
 *  - what parses is a condition the route carries: at least one of If-None-Match, If-Match,
 *    unlocked, noncurrent or a lock change; noncurrent_key only with noncurrent, not empty; a
 *    lock change (1..3 with the bypass, 8, or 16 with a part below ND_PARTS_MAX and old cells of
 *    1..MD_MAX_CELLS with k >= 1) goes alone, with no delete; heal_old only with 16; the
 *    pointers point into the parsed struct;
 *  - what parses is what nd_cond_write can send: nd_cond_target builds a target from it, and
 *    that target parses back to the same condition (every field; the old layout's cells,
 *    drives and nodes alike).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "nd_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TARGET_MAX 8192 /* nd_client.c's META_TARGET */

static void check_shape(const nd_cond_args *a)
{
    const md_cond *c = &a->cond;
    int lc = c->lock_change;
    if (!c->if_none_match_star && !c->if_match && !c->unlocked && !c->noncurrent && !lc)
        abort(); /* no condition at all */
    if (c->if_match && (c->if_match != a->ifmatch || strlen(c->if_match) > MD_MAX_KEY))
        abort();
    if (c->noncurrent ? c->successor_ms < 0 : c->successor_ms || c->newer_min)
        abort();
    if (c->noncurrent_key && (!c->noncurrent || c->noncurrent_key != a->nckey || !*a->nckey))
        abort(); /* a version's key only with noncurrent, never empty */
    if (c->bypass_governance && !c->unlocked && !(lc >= 1 && lc <= 3))
        abort();
    if ((lc == MD_COND_LOCK_LAYOUT) != (c->heal_old != NULL))
        abort();
    if (!lc)
        return;
    if (!((lc >= 1 && lc <= 3) || lc == MD_COND_LOCK_KEEP || lc == MD_COND_LOCK_LAYOUT) || a->del ||
        c->if_none_match_star || c->if_match || c->unlocked || c->noncurrent)
        abort(); /* a lock change goes alone */
    if (lc != MD_COND_LOCK_LAYOUT)
        return;
    const md_layout *l = c->heal_old;
    if (l != &a->heal_old || c->heal_part >= ND_PARTS_MAX || l->k == 0 ||
        l->k + l->m > MD_MAX_CELLS)
        abort();
}

static void check_same(const nd_cond_args *a, const nd_cond_args *b)
{
    const md_cond *x = &a->cond, *y = &b->cond;
    if (a->del != b->del || x->if_none_match_star != y->if_none_match_star ||
        x->unlocked != y->unlocked || x->bypass_governance != y->bypass_governance ||
        x->noncurrent != y->noncurrent || x->successor_ms != y->successor_ms ||
        x->newer_min != y->newer_min || x->lock_change != y->lock_change ||
        x->heal_part != y->heal_part || !x->if_match != !y->if_match ||
        (x->if_match && strcmp(x->if_match, y->if_match) != 0) || !x->heal_old != !y->heal_old ||
        !x->noncurrent_key != !y->noncurrent_key ||
        (x->noncurrent_key && strcmp(x->noncurrent_key, y->noncurrent_key) != 0))
        abort();
    if (x->heal_old) {
        const md_layout *p = x->heal_old, *q = y->heal_old;
        int cells = p->k + p->m;
        if (!md_layout_same_cells(p, q) ||
            memcmp(p->nodes, q->nodes, (size_t)cells * sizeof(p->nodes[0])) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = fuzz_text(data, size);
    if (!q)
        return 0;
    nd_cond_args *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    char *target = malloc(TARGET_MAX);
    if (a && b && target && !nd_cond_parse(q, a)) {
        check_shape(a);
        size_t n = nd_cond_target("b", a->del, &a->cond, target, TARGET_MAX);
        const char *qm = n ? strchr(target, '?') : NULL;
        if (!qm || nd_cond_parse(qm + 1, b) != NULL)
            abort(); /* accepted, yet not what a sender could send */
        check_same(a, b);
    }
    free(target);
    free(b);
    free(a);
    free(q);
    return 0;
}
