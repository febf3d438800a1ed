/*
 * rp_ae.c - anti-entropy of one partition between its home replicas.
 *
 * 1. merkle: the leaf hashes of every home (all N asked; at least two must answer). A leaf whose
 *    hash is not the same on every answering home differs.
 * 2. leaf_keys: the digests of the keys in the differing leaves, from each of those homes. A key
 *    differs when some home lacks it or holds another digest (md_rec_info's digest covers key,
 *    HLC, node, vector and tombstone, so replicas in sync agree).
 * 3. For each differing key (at most max_keys per call, AE_BATCH at a time): read it from every
 *    home, resolve the winner (md_object_resolve) and put it to each home whose version is not
 *    the winner. A replica's put is a merge, so a write that raced in meanwhile is never undone.
 *
 * The replicas are those that answered step 1: the ops of steps 2 and 3 are made "fixed" over
 * them under the first op's router generation, which this run holds until it returns.
 *
 * Tombstones are repaired like any version (a home that missed a delete gets the tombstone).
 *
 * During a handoff (a layout change moved the partition's homes, rp_config.route_prev) the
 * merkle op's replicas are the homes of both layouts, so a run copies what the previous homes
 * hold to the new ones; res.complete says it left nothing behind (answered_enough).
 *
 * 4. Collection (rp_antientropy_collect, with a cutoff `before`; docs/replication.md, "Tombstone
 *    collection"): only when every home routed answered step 1, every differing leaf was examined
 *    and no differing key has a version stamped below the cutoff on any home (so the homes hold
 *    the same records below the cutoff). Then pages of tombs (below the cutoff) from every home;
 *    within a page, up to the smallest last key among the truncated answers, the tombstones that
 *    every home lists with the same digest go in one tomb_drop to every home, which raises its
 *    mark to the cutoff and drops each one still at that version. A tombstone counts as collected
 *    when every home dropped it.
 */
#include <stdlib.h>
#include <string.h>

#include "rp_int.h"

#define AE_BATCH 32      /* keys read and written in parallel */
#define AE_LEAVES_MAX 64 /* differing leaves whose keys one call fetches */

typedef struct {
    rp *c;
    rp_op *root; /* the merkle op, held for its router generation and its replicas */
    rp_replica *reps[RP_SLOTS];
    size_t nrep;
    rp_ae_result *res;
    uint64_t before; /* collection cutoff (0: none) */
    int old_differs; /* a differing key has a version stamped below before */
} ae_run;

/* Wait for a fixed op needing every replica; CM_ERR_UNAVAILABLE unless all answered. */
static cm_err wait_all(rp_op *op, int64_t deadline)
{
    rp_op_wait(op, deadline);
    pthread_mutex_lock(&op->c->mu);
    cm_err e = op->nok == op->nslots ? CM_OK : CM_ERR_UNAVAILABLE;
    pthread_mutex_unlock(&op->c->mu);
    return e;
}

/*
 * The replicas that answered the merkle op are enough for res.complete: every home, or during a
 * handoff every current home and R of the previous ones. R previous homes meet every write
 * acknowledged on W of them (R + W > N), so a run that repaired every differing key on all the
 * replicas that answered left every such write on every current home, also while a previous home
 * is down (a handoff must end without it).
 */
static int answered_enough(const ae_run *a)
{
    const rp_op *op = a->root;
    if (!op)
        return 0;
    pthread_mutex_lock(&a->c->mu);
    int fresh = 1, old = 0, nold = 0;
    for (int i = 0; i < op->nslots; i++) {
        const rp_slot *s = &op->slot[i];
        int ok = s->state == RP_SLOT_DONE && s->err == CM_OK;
        if (!op->handoff || (s->set & RP_SET_NEW))
            fresh &= ok;
        if (op->handoff && (s->set & RP_SET_OLD))
            nold++, old += ok;
    }
    pthread_mutex_unlock(&a->c->mu);
    int r = a->c->cfg.r < nold ? a->c->cfg.r : nold;
    return fresh && old >= r;
}

static cm_err merkle_phase(ae_run *a, const char *bucket, uint32_t shard, int depth,
                           uint32_t **leaves, size_t *nleaves)
{
    rp *c = a->c;
    rp_op *op = rp_op_new(c, RP_K_MERKLE, bucket, shard);
    if (!op)
        return CM_ERR_NOMEM;
    op->depth = depth;
    op->need = c->cfg.n;
    cm_err e = rp_op_start(op);
    if (e != CM_OK)
        return e;
    a->root = op;
    rp_op_wait(op, rp_now_ms() + c->cfg.timeout_ms);
    pthread_mutex_lock(&c->mu);
    const rp_slot *first = NULL;
    for (int i = 0; i < op->nslots; i++) {
        rp_slot *s = &op->slot[i];
        if (s->state == RP_SLOT_DONE && s->err == CM_OK) {
            a->reps[a->nrep++] = s->r;
            if (!first)
                first = s;
        }
    }
    size_t n = first ? first->nleaves : 0;
    *leaves = n ? calloc(n, sizeof(**leaves)) : NULL;
    *nleaves = 0;
    if (a->nrep < 2)
        e = CM_ERR_UNAVAILABLE;
    else if (n && !*leaves)
        e = CM_ERR_NOMEM;
    for (size_t l = 0; e == CM_OK && l < n; l++) {
        int differs = 0;
        for (int i = 0; i < op->nslots && !differs; i++) {
            const rp_slot *s = &op->slot[i];
            if (s->state != RP_SLOT_DONE || s->err != CM_OK)
                continue;
            differs = s->nleaves != n || memcmp(s->hashes + l * 16, first->hashes + l * 16, 16);
        }
        if (differs)
            (*leaves)[(*nleaves)++] = (uint32_t)l;
    }
    pthread_mutex_unlock(&c->mu);
    a->res->leaves_differing = *nleaves;
    return e;
}

static int info_cmp(const void *x, const void *y)
{
    return strcmp(((const md_rec_info *)x)->key, ((const md_rec_info *)y)->key);
}

/* The keys of the leaves that are not the same on every replica (heap strings, sorted). */
static cm_err differing_keys(ae_run *a, const uint32_t *leaves, size_t nleaves, int depth,
                             char ***keys, size_t *nkeys)
{
    rp *c = a->c;
    *keys = NULL;
    *nkeys = 0;
    rp_op *op = rp_op_new_fixed(c, a->root, RP_K_LEAVES, a->reps, a->nrep);
    if (!op || !(op->leaves = malloc(nleaves * sizeof(*leaves)))) {
        rp_op_put(op);
        return CM_ERR_NOMEM;
    }
    memcpy(op->leaves, leaves, nleaves * sizeof(*leaves));
    op->nleaves = nleaves;
    op->depth = depth;
    cm_err e = rp_op_start(op);
    if (e != CM_OK)
        return e;
    e = wait_all(op, rp_now_ms() + c->cfg.timeout_ms);
    size_t total = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; e == CM_OK && i < op->nslots; i++)
        total += op->slot[i].ninfos;
    md_rec_info *all = total ? calloc(total, sizeof(*all)) : NULL;
    size_t na = 0;
    for (int i = 0; all && i < op->nslots; i++)
        for (size_t j = 0; j < op->slot[i].ninfos; j++)
            all[na++] = op->slot[i].infos[j]; /* borrowed keys: the op lives until the end */
    pthread_mutex_unlock(&c->mu);
    if (total && !all)
        e = CM_ERR_NOMEM;
    if (e == CM_OK && na) {
        qsort(all, na, sizeof(*all), info_cmp);
        *keys = calloc(na, sizeof(**keys));
        if (!*keys)
            e = CM_ERR_NOMEM;
    }
    for (size_t i = 0; e == CM_OK && i < na;) {
        size_t j = i + 1;
        int same = 1;
        for (; j < na && strcmp(all[j].key, all[i].key) == 0; j++)
            same = same && memcmp(all[j].digest, all[i].digest, 16) == 0;
        if ((!same || j - i != a->nrep) && a->before)
            for (size_t x = i; x < j; x++)
                a->old_differs |= all[x].hlc < a->before;
        if (!same || j - i != a->nrep) {
            if (!((*keys)[*nkeys] = strdup(all[i].key)))
                e = CM_ERR_NOMEM;
            else
                (*nkeys)++;
        }
        i = j;
    }
    free(all);
    rp_op_put(op);
    return e;
}

/* Read keys[0..n) from every replica and write each winner where it is missing. */
static cm_err repair_batch(ae_run *a, char *const *keys, size_t n)
{
    rp *c = a->c;
    rp_op *gets[AE_BATCH] = {0}, *puts[AE_BATCH] = {0};
    cm_err e = CM_OK;
    int64_t deadline = rp_now_ms() + c->cfg.timeout_ms;
    for (size_t i = 0; i < n && e == CM_OK; i++) {
        rp_op *op = rp_op_new_fixed(c, a->root, RP_K_GET, a->reps, a->nrep);
        if (!op || !(op->key = strdup(keys[i]))) {
            rp_op_put(op);
            e = CM_ERR_NOMEM;
        } else if ((e = rp_op_start(op)) == CM_OK) {
            gets[i] = op;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!gets[i])
            continue;
        cm_err ge = wait_all(gets[i], deadline);
        rp_replica *to[RP_SLOTS];
        size_t nto = 0;
        const md_object *w = NULL;
        pthread_mutex_lock(&c->mu);
        for (int s = 0; ge == CM_OK && s < gets[i]->nslots; s++) {
            const rp_slot *sl = &gets[i]->slot[s];
            if (sl->has_rec && (!w || md_object_resolve(w, &sl->rec, NULL) == 1))
                w = &sl->rec;
        }
        for (int s = 0; w && s < gets[i]->nslots; s++) {
            const rp_slot *sl = &gets[i]->slot[s];
            if (!sl->has_rec || !rp_same_version(&sl->rec, w))
                to[nto++] = sl->r;
        }
        pthread_mutex_unlock(&c->mu);
        if (e == CM_OK)
            e = ge;
        if (nto == 0 || e != CM_OK)
            continue;
        rp_op *op = rp_op_new_fixed(c, a->root, RP_K_PUT, to, nto);
        if (!op || md_object_copy(w, &op->rec) != CM_OK) {
            rp_op_put(op);
            e = CM_ERR_NOMEM;
        } else if ((e = rp_op_start(op)) == CM_OK) {
            puts[i] = op;
            a->res->keys_repaired++;
            a->res->writes += nto;
        }
    }
    for (size_t i = 0; i < n; i++) {
        cm_err pe = puts[i] ? wait_all(puts[i], deadline) : CM_OK;
        if (e == CM_OK)
            e = pe;
        rp_op_put(puts[i]);
        rp_op_put(gets[i]);
    }
    return e;
}

static int info_key_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const md_rec_info *)elem)->key);
}

/* The entries of op's first slot up to the page's bound that every slot holds with the same
 * digest (copies), and the key after which the next page starts (NULL: none). c->mu held. */
static cm_err common_tombs(ae_run *a, const rp_op *op, md_rec_info **out, size_t *n, char **next)
{
    const char *bound = NULL;
    const rp_slot *s0 = &op->slot[0];
    *out = calloc(s0->ninfos + 1, sizeof(**out));
    *n = 0, *next = NULL;
    if (!*out)
        return CM_ERR_NOMEM;
    for (int i = 0; i < op->nslots; i++) {
        const rp_slot *s = &op->slot[i];
        if (s->truncated && s->ninfos && (!bound || strcmp(s->infos[s->ninfos - 1].key, bound) < 0))
            bound = s->infos[s->ninfos - 1].key;
    }
    for (size_t x = 0; x < s0->ninfos; x++) {
        const md_rec_info *ri = &s0->infos[x];
        if (bound && strcmp(ri->key, bound) > 0)
            break;
        a->res->tombs_listed++;
        int everywhere = 1;
        for (int i = 1; i < op->nslots && everywhere; i++) {
            const rp_slot *s = &op->slot[i];
            const md_rec_info *o = bsearch(ri->key, s->infos, s->ninfos, sizeof(*o), info_key_cmp);
            everywhere = o && memcmp(o->digest, ri->digest, 16) == 0;
        }
        if (!everywhere)
            continue;
        (*out)[*n] = *ri;
        if (!((*out)[*n].key = strdup(ri->key)))
            return CM_ERR_NOMEM;
        (*n)++;
    }
    if (bound && !(*next = strdup(bound)))
        return CM_ERR_NOMEM;
    return CM_OK;
}

/* Drop the n tombstones (taken over by the op) on every replica; count those dropped by all. */
static cm_err drop_everywhere(ae_run *a, md_rec_info *drop, size_t n)
{
    rp *c = a->c;
    rp_op *op = rp_op_new_fixed(c, a->root, RP_K_TDROP, a->reps, a->nrep);
    if (!op) {
        md_rec_infos_free(drop, n);
        return CM_ERR_NOMEM;
    }
    op->drop = drop, op->ndrop = n, op->before = a->before;
    cm_err e = rp_op_start(op);
    if (e != CM_OK)
        return e;
    e = wait_all(op, rp_now_ms() + c->cfg.timeout_ms);
    pthread_mutex_lock(&c->mu);
    for (size_t x = 0; e == CM_OK && x < n; x++) {
        int all = 1;
        for (int i = 0; i < op->nslots && all; i++)
            all = op->slot[i].dropped[x];
        a->res->tombs_collected += all;
    }
    pthread_mutex_unlock(&c->mu);
    rp_op_put(op);
    return e;
}

/* Step 4: pages of old tombstones from every replica, at most budget entries asked for. */
static cm_err collect_phase(ae_run *a, size_t budget)
{
    rp *c = a->c;
    char *after = NULL;
    cm_err e = CM_OK;
    while (e == CM_OK && budget > 0) {
        size_t max = budget < RP_LIST_MAX ? budget : RP_LIST_MAX;
        rp_op *op = rp_op_new_fixed(c, a->root, RP_K_TOMBS, a->reps, a->nrep);
        if (!op || (after && !(op->after = strdup(after)))) {
            rp_op_put(op);
            e = CM_ERR_NOMEM;
            break;
        }
        op->before = a->before, op->max = max;
        if ((e = rp_op_start(op)) != CM_OK)
            break;
        e = wait_all(op, rp_now_ms() + c->cfg.timeout_ms);
        md_rec_info *common = NULL;
        size_t ncommon = 0;
        free(after);
        after = NULL;
        pthread_mutex_lock(&c->mu);
        if (e == CM_OK)
            e = common_tombs(a, op, &common, &ncommon, &after);
        pthread_mutex_unlock(&c->mu);
        rp_op_put(op);
        if (e == CM_OK && ncommon)
            e = drop_everywhere(a, common, ncommon);
        else
            md_rec_infos_free(common, ncommon);
        budget -= max;
        if (!after)
            break; /* no replica had more */
    }
    free(after);
    return e;
}

cm_err rp_antientropy_run(rp *c, const char *bucket, uint32_t shard, int depth, size_t max_keys,
                          rp_ae_result *out)
{
    return rp_antientropy_collect(c, bucket, shard, depth, max_keys, 0, out);
}

cm_err rp_antientropy_collect(rp *c, const char *bucket, uint32_t shard, int depth, size_t max_keys,
                              uint64_t before, rp_ae_result *out)
{
    memset(out, 0, sizeof(*out));
    if (depth == 0)
        depth = 2;
    if (max_keys == 0)
        max_keys = 1000;
    if (depth < 1 || depth > MD_MERKLE_MAX_DEPTH || shard >= c->cfg.nshards)
        return CM_ERR_INVAL;
    ae_run a = {.c = c, .res = out, .before = before};
    uint32_t *leaves = NULL;
    size_t nleaves = 0;
    char **keys = NULL;
    size_t nkeys = 0;
    cm_err e = merkle_phase(&a, bucket, shard, depth, &leaves, &nleaves);
    /* A call's work is bounded: AE_LEAVES_MAX leaves' keys, max_keys keys repaired. */
    size_t nl = nleaves < AE_LEAVES_MAX ? nleaves : AE_LEAVES_MAX;
    if (e == CM_OK && nl)
        e = differing_keys(&a, leaves, nl, depth, &keys, &nkeys);
    out->keys_compared = nkeys;
    size_t todo = nkeys < max_keys ? nkeys : max_keys;
    out->more = todo < nkeys || nl < nleaves;
    for (size_t i = 0; e == CM_OK && i < todo; i += AE_BATCH)
        e = repair_batch(&a, keys + i, todo - i < AE_BATCH ? todo - i : AE_BATCH);
    md_keys_free(keys, nkeys);
    out->complete = e == CM_OK && !out->more && answered_enough(&a);
    if (before && e == CM_OK) {
        /* every home routed answered, every differing leaf seen, nothing old differs */
        int all = a.root && (int)a.nrep == a.root->nslots;
        out->collect_skipped = !all || nl < nleaves || a.old_differs;
        if (!out->collect_skipped && collect_phase(&a, max_keys) != CM_OK)
            out->collect_skipped = 1; /* a home did not answer: a later call tries again */
    }
    free(leaves);
    rp_op_put(a.root);
    pthread_mutex_lock(&c->mu);
    c->st.ae_runs++;
    c->st.ae_writes += out->writes;
    c->st.tombs_collected += out->tombs_collected;
    c->st.collect_skipped += out->collect_skipped;
    if (e == CM_ERR_UNAVAILABLE)
        c->st.unavailable++;
    pthread_mutex_unlock(&c->mu);
    return e;
}
