/*
 * test_repl.c - replicas of metadata partitions (repl/rp_replica.h) on both backends. The suites
 * repl_local and repl_remote run the same tests, against the local backend over n1's store and
 * against a remote backend to n2 (the three nodes of rp_trio.h). The router, the meta routes on
 * the wire and hint delivery are in test_repl_router.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cm_util.h"
#include "cu_main.h"
#include "rp_trio.h"

/* ---- the backend suite ---- */

static void t_get_put_merge(void)
{
    md_object a = version("k", 2000, 1, NULL);
    tres t = do_put(&a, NULL);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.applied, 1);
    t = do_get("b", "k");
    CU_ASSERT_EQUAL_FATAL(t.err, CM_OK);
    CU_ASSERT_FATAL(t.has_rec);
    CU_ASSERT_STRING_EQUAL(t.rec.key, "k");
    CU_ASSERT_EQUAL(t.rec.hlc, a.hlc);
    CU_ASSERT_EQUAL(md_vv_compare(&t.rec.vv, &a.vv), MD_VV_EQUAL);
    CU_ASSERT_STRING_EQUAL(t.rec.etag, "etag-2000");
    tres_free(&t);
    /* older (a vector a's dominates, a later clock): refused */
    md_object old = {.key = "k", .hlc = MD_HLC_MAKE(9000, 0), .hlc_node = 3};
    t = do_put(&old, NULL);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.applied, 0);
    /* newer (descends from a, an earlier clock): applied */
    md_object n = version("k", 1500, 2, &a.vv);
    t = do_put(&n, NULL);
    CU_ASSERT_EQUAL(t.applied, 1);
    t = do_get("b", "k");
    CU_ASSERT_EQUAL(t.rec.hlc_node, 2);
    tres_free(&t);
    /* concurrent: the larger hlc wins in either order */
    md_object c1 = version("c", 5000, 1, NULL), c2 = version("c", 6000, 2, NULL);
    md_object d1 = version("d", 5000, 1, NULL), d2 = version("d", 6000, 2, NULL);
    CU_ASSERT_EQUAL(do_put(&c1, NULL).applied, 1);
    CU_ASSERT_EQUAL(do_put(&c2, NULL).applied, 1);
    CU_ASSERT_EQUAL(do_put(&d2, NULL).applied, 1);
    CU_ASSERT_EQUAL(do_put(&d1, NULL).applied, 0);
    tres tc = do_get("b", "c"), td = do_get("b", "d");
    CU_ASSERT_EQUAL(tc.rec.hlc, c2.hlc);
    CU_ASSERT_EQUAL(td.rec.hlc, d2.hlc);
    tres_free(&tc);
    tres_free(&td);
    /* a tombstone that saw the put wins and is returned as a record */
    md_object ts = version("c", 7000, 3, &c2.vv);
    ts.tombstone = 1;
    CU_ASSERT_EQUAL(do_put(&ts, NULL).applied, 1);
    t = do_get("b", "c");
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.rec.tombstone, 1);
    tres_free(&t);
    /* the same version again: applied (held) */
    CU_ASSERT_EQUAL(do_put(&ts, NULL).applied, 1);
    /* absent key, unknown bucket */
    t = do_get("b", "absent");
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(t.no_bucket, 0);
    CU_ASSERT_FALSE(t.has_rec);
    t = do_get("nobucket", "k");
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(t.no_bucket, 1);
    tres pt = {0};
    rp_part p = part_of("k");
    p.bucket = "nobucket";
    wait_for(&pt, rp_replica_put(E.r, &p, &a, NULL, done_cb, &pt));
    CU_ASSERT_EQUAL(pt.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(pt.no_bucket, 1);
}

static md_part stored_part(uint8_t blob)
{
    md_part p;
    memset(&p, 0, sizeof(p));
    p.size = 1 << 20;
    memset(p.layout.blob, blob, 16);
    p.layout.size = p.size;
    p.layout.k = 4, p.layout.m = 2;
    return p;
}

static int garbage_has(uint8_t blob)
{
    md_garbage *g;
    size_t n;
    int hits = 0;
    CU_ASSERT_EQUAL(md_garbage_list(E.r_md, UINT64_MAX, 100, &g, &n), CM_OK);
    for (size_t i = 0; i < n; i++)
        hits += g[i].layout.blob[0] == blob;
    md_garbage_free(g, n);
    return hits;
}

static void t_garbage(void)
{
    md_part pa = stored_part(0xA1), pb = stored_part(0xB2), pc = stored_part(0xC3);
    md_object a = version("g", 1000, 1, NULL);
    a.parts = &pa, a.nparts = 1;
    CU_ASSERT_EQUAL(do_put(&a, NULL).applied, 1);
    md_object b = version("g", 2000, 2, &a.vv);
    b.parts = &pb, b.nparts = 1;
    CU_ASSERT_EQUAL(do_put(&b, NULL).applied, 1);
    CU_ASSERT_EQUAL(garbage_has(0xA1), 1); /* the replaced body */
    CU_ASSERT_EQUAL(garbage_has(0xB2), 0);
    md_object c = version("g", 3000, 3, NULL); /* concurrent with b, but older... */
    c.hlc = MD_HLC_MAKE(500, 0);               /* ... by the clock: it loses */
    c.parts = &pc, c.nparts = 1;
    CU_ASSERT_EQUAL(do_put(&c, NULL).applied, 0);
    CU_ASSERT_EQUAL(garbage_has(0xC3), 1); /* the incoming loser's body */
    CU_ASSERT_EQUAL(garbage_has(0xB2), 0);
    /* the record held is b, with its body */
    tres t = do_get("b", "g");
    CU_ASSERT_EQUAL_FATAL(t.rec.nparts, 1);
    CU_ASSERT_EQUAL(t.rec.parts[0].layout.blob[0], 0xB2);
    tres_free(&t);
}

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static void t_list(void)
{
    char key[32];
    static uint8_t body[100];
    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof(key), "%s%02d", i % 3 ? "p/" : "q/", i);
        md_object o = version(key, 1000 + (uint64_t)i, 1, NULL);
        if (i == 1) {
            o.inline_data = body, o.inline_len = sizeof(body);
            o.size = sizeof(body);
        }
        CU_ASSERT_EQUAL(do_put(&o, NULL).err, CM_OK);
    }
    for (uint32_t s = 0; s < NSHARDS; s++) {
        rp_part p = {"b", s, NSHARDS, 0};
        char after[32] = "";
        int want = 0, got = 0, pages = 0;
        for (int i = 0; i < 60; i++) {
            snprintf(key, sizeof(key), "%s%02d", i % 3 ? "p/" : "q/", i);
            want += i % 3 && rp_shard_of(key, NSHARDS) == s;
        }
        for (int more = 1; more && pages < 40; pages++) {
            tres t = {0};
            wait_for(&t, rp_replica_list(E.r, &p, "p/", after[0] ? after : NULL, 3, done_cb, &t));
            CU_ASSERT_EQUAL_FATAL(t.err, CM_OK);
            CU_ASSERT(t.nrecs <= 3);
            for (size_t i = 0; i < t.nrecs; i++) {
                CU_ASSERT(has_prefix(t.recs[i].key, "p/"));
                CU_ASSERT_EQUAL(rp_shard_of(t.recs[i].key, NSHARDS), s); /* never another shard */
                CU_ASSERT(strcmp(t.recs[i].key, after) > 0);             /* in order */
                CU_ASSERT_PTR_NULL(t.recs[i].inline_data);               /* summaries */
                CU_ASSERT(t.recs[i].hlc != 0);
                snprintf(after, sizeof(after), "%s", t.recs[i].key);
                got++;
            }
            more = t.truncated;
            tres_free(&t);
        }
        CU_ASSERT_EQUAL(got, want);
    }
    /* a page capped at RP_LIST_MAX; unknown bucket */
    rp_part all = {"b", 0, 1, 0};
    tres t = {0};
    wait_for(&t, rp_replica_list(E.r, &all, NULL, NULL, 100000, done_cb, &t));
    CU_ASSERT_EQUAL(t.nrecs, 60);
    CU_ASSERT_EQUAL(t.truncated, 0);
    tres_free(&t);
    rp_part nb = {"nobucket", 0, 1, 0};
    wait_for(&t, rp_replica_list(E.r, &nb, NULL, NULL, 10, done_cb, &t));
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(t.no_bucket, 1);
}

/* Put key into the backend's store (through it) or n3's (directly). */
static void put_both(const char *key, uint64_t ms, int backend, int other)
{
    md_object o = version(key, ms, 1, NULL);
    int applied;
    if (backend)
        CU_ASSERT_EQUAL(do_put(&o, NULL).applied, 1);
    if (other)
        CU_ASSERT_EQUAL(md_rec_merge(E.nodes[2].md, "b", &o, &applied), CM_OK);
}

static void t_merkle_leaf_keys(void)
{
    /* shard 1 alike on both stores, the other shards differ */
    char key[32];
    for (int i = 0; i < 120; i++) {
        snprintf(key, sizeof(key), "m%03d", i);
        int mine = rp_shard_of(key, NSHARDS) == 1;
        put_both(key, 100 + (uint64_t)i, mine || i % 2, mine || i % 3 == 0);
    }
    md_shard s1 = {1, NSHARDS}, s2 = {2, NSHARDS};
    uint8_t *ref1, *ref2;
    size_t n1, n2;
    CU_ASSERT_EQUAL_FATAL(md_merkle_leaves(E.nodes[2].md, "b", 2, md_shard_keep, &s1, &ref1, &n1),
                          CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_merkle_leaves(E.nodes[2].md, "b", 2, md_shard_keep, &s2, &ref2, &n2),
                          CM_OK);
    rp_part p1 = {"b", 1, NSHARDS, 0}, p2 = {"b", 2, NSHARDS, 0};
    tres t = {0};
    wait_for(&t, rp_replica_merkle(E.r, &p1, 2, done_cb, &t));
    CU_ASSERT_EQUAL_FATAL(t.err, CM_OK);
    CU_ASSERT_EQUAL_FATAL(t.nleaves, 256);
    CU_ASSERT(memcmp(t.hashes, ref1, 16 * 256) == 0); /* the same shard: equal leaves */
    tres_free(&t);
    wait_for(&t, rp_replica_merkle(E.r, &p2, 2, done_cb, &t));
    CU_ASSERT_EQUAL_FATAL(t.nleaves, 256);
    size_t differ = 0;
    for (size_t i = 0; i < 256; i++)
        differ += memcmp(t.hashes + 16 * i, ref2 + 16 * i, 16) != 0;
    CU_ASSERT(differ > 0); /* shard 2 differs */
    tres_free(&t);
    /* leaf keys of shard 1, every leaf: the shard's keys with digests equal to n3's */
    uint32_t leaves[256];
    size_t want[256];
    for (uint32_t i = 0; i < 256; i++)
        leaves[255 - i] = i, want[i] = i; /* any order is fine */
    md_rec_info *ri;
    size_t nri;
    CU_ASSERT_EQUAL_FATAL(
        md_merkle_leaf_keys_ex(E.nodes[2].md, "b", 2, md_shard_keep, &s1, want, 256, &ri, &nri),
        CM_OK);
    wait_for(&t, rp_replica_leaf_keys(E.r, &p1, 2, leaves, 256, done_cb, &t));
    CU_ASSERT_EQUAL_FATAL(t.err, CM_OK);
    CU_ASSERT(nri > 10);
    CU_ASSERT_EQUAL_FATAL(t.ninfos, nri);
    for (size_t i = 0; i < nri; i++) {
        CU_ASSERT_STRING_EQUAL(t.infos[i].key, ri[i].key);
        CU_ASSERT(memcmp(t.infos[i].digest, ri[i].digest, 16) == 0);
        CU_ASSERT_EQUAL(rp_shard_of(t.infos[i].key, NSHARDS), 1);
    }
    tres_free(&t);
    rp_part nb = {"nobucket", 1, NSHARDS, 0};
    wait_for(&t, rp_replica_leaf_keys(E.r, &nb, 2, leaves, 256, done_cb, &t));
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(t.no_bucket, 1);
    memset(&t, 0, sizeof(t));
    wait_for(&t, rp_replica_merkle(E.r, &nb, 2, done_cb, &t));
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(t.no_bucket, 1);
    md_rec_infos_free(ri, nri);
    free(ref1);
    free(ref2);
}

static void t_hint_put(void)
{
    /* a put with hint_for is kept as a hint for that node, not as a record of this store */
    md_object h = version("hk", 4000, 1, NULL);
    tres t = do_put(&h, "n3");
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.applied, 1);
    md_hint *hs;
    size_t n;
    int truncated;
    CU_ASSERT_EQUAL_FATAL(md_hint_list(E.r_md, "n3", NULL, NULL, 10, &hs, &n, &truncated), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(hs[0].rec.key, "hk");
    CU_ASSERT_EQUAL(hs[0].rec.hlc, h.hlc);
    md_hints_free(hs, n);
    t = do_get("b", "hk");
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND);
}

/* The replica's clock follows the stamps it receives, within the drift bound. */
static void t_clock(void)
{
    md_hlc *clock = &E.nodes[E.remote ? 1 : 0].clock;
    uint64_t ahead = MD_HLC_MAKE(cm_now_ms() + 5000, 0);
    md_object a = {.key = "clk", .hlc = ahead, .hlc_node = 9};
    CU_ASSERT_EQUAL(do_put(&a, NULL).applied, 1);
    CU_ASSERT(md_hlc_now(clock) > ahead);
    md_object far = {.key = "clk", .hlc = MD_HLC_MAKE(cm_now_ms() + 120000, 0), .hlc_node = 9};
    tres t = do_put(&far, NULL);
    CU_ASSERT_EQUAL(t.err, CM_ERR_INVAL); /* refused, nothing stored */
    t = do_get("b", "clk");
    CU_ASSERT_EQUAL(t.rec.hlc, ahead);
    tres_free(&t);
}

static tres do_put_fenced(const md_object *rec, uint32_t shard, uint64_t fence)
{
    tres t = {0};
    rp_part p = part_of(rec->key);
    p.shard = shard, p.fence = fence;
    wait_for(&t, rp_replica_put(E.r, &p, rec, NULL, done_cb, &t));
    return t;
}

/* Fencing: a put carrying a partition leader's token lower than the highest the replica saw for
 * that partition is refused, nothing stored; other partitions and unfenced puts are unaffected. */
static void t_fence(void)
{
    uint32_t sh = rp_shard_of("fk", NSHARDS);
    md_object a = version("fk", 1000, 1, NULL);
    CU_ASSERT_EQUAL(do_put_fenced(&a, sh, 7).applied, 1);
    md_object b = version("fk", 2000, 2, &a.vv); /* a paused ex-leader (token 5) wakes up */
    tres t = do_put_fenced(&b, sh, 5);
    CU_ASSERT_EQUAL(t.err, CM_ERR_CONFLICT);
    t = do_get("b", "fk");
    CU_ASSERT_EQUAL(t.rec.hlc, a.hlc); /* b was not stored */
    tres_free(&t);
    CU_ASSERT_EQUAL(do_put_fenced(&b, sh, 7).applied, 1); /* the same leader again */
    md_object c = version("fk", 3000, 3, &b.vv);
    CU_ASSERT_EQUAL(do_put_fenced(&c, sh, 9).applied, 1); /* its successor */
    md_object d = version("fk", 4000, 1, &c.vv);
    CU_ASSERT_EQUAL(do_put_fenced(&d, sh, 7).err, CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(do_put(&d, NULL).applied, 1); /* unconditional writes carry no token */
    /* another partition keeps its own highest token */
    const char *k2 = "fk2";
    for (int i = 0; rp_shard_of(k2, NSHARDS) == sh && i < 100; i++)
        k2 = i % 2 ? "fk3" : "fk4";
    CU_ASSERT_NOT_EQUAL_FATAL(rp_shard_of(k2, NSHARDS), sh);
    md_object e = version(k2, 1000, 1, NULL);
    CU_ASSERT_EQUAL(do_put_fenced(&e, rp_shard_of(k2, NSHARDS), 3).applied, 1);
    /* A leader's read admits its token too: an earlier leader cannot write after it, a later
     * one can; a read with a replaced leader's token is refused. */
    rp_part p = part_of("fk");
    p.fence = 11;
    tres g = {0};
    wait_for(&g, rp_replica_get(E.r, &p, "fk", done_cb, &g));
    CU_ASSERT_EQUAL(g.err, CM_OK);
    CU_ASSERT_EQUAL(g.rec.hlc, d.hlc);
    tres_free(&g);
    md_object f = version("fk", 5000, 2, &d.vv);
    CU_ASSERT_EQUAL(do_put_fenced(&f, sh, 9).err, CM_ERR_CONFLICT);
    p.fence = 10;
    memset(&g, 0, sizeof(g));
    wait_for(&g, rp_replica_get(E.r, &p, "fk", done_cb, &g));
    CU_ASSERT_EQUAL(g.err, CM_ERR_CONFLICT);
    tres_free(&g);
    CU_ASSERT_EQUAL(do_put_fenced(&f, sh, 11).applied, 1);
}

/* A replica that restarts still refuses a replaced leader's token, on a put and on a get, and
 * admits its successor's. */
static void t_fence_restart(void)
{
    uint32_t sh = rp_shard_of("fk", NSHARDS);
    md_object a = version("fk", 1000, 1, NULL);
    CU_ASSERT_EQUAL(do_put_fenced(&a, sh, 7).applied, 1);
    env_restart();
    md_object b = version("fk", 2000, 2, &a.vv); /* the replaced leader (token 5) */
    CU_ASSERT_EQUAL(do_put_fenced(&b, sh, 5).err, CM_ERR_CONFLICT);
    rp_part p = part_of("fk");
    p.fence = 6;
    tres g = {0};
    wait_for(&g, rp_replica_get(E.r, &p, "fk", done_cb, &g));
    CU_ASSERT_EQUAL(g.err, CM_ERR_CONFLICT);
    tres_free(&g);
    tres t = do_get("b", "fk");
    CU_ASSERT_EQUAL(t.rec.hlc, a.hlc); /* b was not stored */
    tres_free(&t);
    CU_ASSERT_EQUAL(do_put_fenced(&b, sh, 7).applied, 1); /* the same leader */
    p.fence = 9; /* a successor's read raises the bar, durably too */
    memset(&g, 0, sizeof(g));
    wait_for(&g, rp_replica_get(E.r, &p, "fk", done_cb, &g));
    CU_ASSERT_EQUAL(g.err, CM_OK);
    tres_free(&g);
    env_restart();
    md_object c = version("fk", 3000, 3, &b.vv);
    CU_ASSERT_EQUAL(do_put_fenced(&c, sh, 7).err, CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(do_put_fenced(&c, sh, 9).applied, 1);
}

/* Keys "tb<i>" of one shard: n of them into keys (16 bytes each). */
static uint32_t same_shard_keys(char keys[][16], int n)
{
    uint32_t sh = rp_shard_of("tb0", NSHARDS);
    for (int i = 0, got = 0; got < n; i++) {
        snprintf(keys[got], 16, "tb%d", i);
        got += rp_shard_of(keys[got], NSHARDS) == sh;
    }
    return sh;
}

static tres do_tombs(uint32_t sh, int64_t before_ms, const char *after, size_t max)
{
    tres t = {0};
    rp_part p = {"b", sh, NSHARDS, 0};
    wait_for(&t, rp_replica_tombs(E.r, &p, MD_HLC_MAKE(before_ms, 0), after, max, done_cb, &t));
    return t;
}

static tres do_tomb_drop(uint32_t sh, int64_t mark_ms, const md_rec_info *infos, size_t n)
{
    tres t = {0};
    rp_part p = {"b", sh, NSHARDS, 0};
    wait_for(&t, rp_replica_tomb_drop(E.r, &p, MD_HLC_MAKE(mark_ms, 0), infos, n, done_cb, &t));
    return t;
}

/* Tombstone collection on a replica: old tombstones of the partition listed in pages, dropped
 * while they are the listed version, and a late old put of a dropped key not applied. */
static void t_tombs(void)
{
    char k[4][16];
    uint32_t sh = same_shard_keys(k, 4);
    md_object t0 = version(k[0], 1000, 1, NULL), t1 = version(k[1], 1100, 1, NULL);
    md_object t2 = version(k[2], 9000, 1, NULL), live = version(k[3], 1000, 1, NULL);
    t0.tombstone = t1.tombstone = t2.tombstone = 1;
    CU_ASSERT_EQUAL(do_put(&t0, NULL).applied, 1);
    CU_ASSERT_EQUAL(do_put(&t1, NULL).applied, 1);
    CU_ASSERT_EQUAL(do_put(&t2, NULL).applied, 1);
    CU_ASSERT_EQUAL(do_put(&live, NULL).applied, 1);
    tres a = do_tombs(sh, 5000, NULL, 1);
    CU_ASSERT_EQUAL_FATAL(a.err, CM_OK);
    CU_ASSERT_EQUAL_FATAL(a.ninfos, 1);
    CU_ASSERT_EQUAL(a.truncated, 1);
    tres b = do_tombs(sh, 5000, a.infos[0].key, 10);
    CU_ASSERT_EQUAL(b.ninfos, 1);
    CU_ASSERT_EQUAL(b.truncated, 0);
    tres_free(&b);
    tres_free(&a);
    a = do_tombs(sh, 5000, NULL, 10);
    CU_ASSERT_EQUAL_FATAL(a.ninfos, 2); /* not the young one, not the live one */
    for (size_t i = 0; i < a.ninfos; i++)
        CU_ASSERT(a.infos[i].tombstone && a.infos[i].hlc < MD_HLC_MAKE(5000, 0));
    b = do_tomb_drop(sh, 5000, a.infos, a.ninfos);
    CU_ASSERT_EQUAL(b.err, CM_OK);
    CU_ASSERT_EQUAL_FATAL(b.ndropped, 2);
    CU_ASSERT(b.dropped[0] == 1 && b.dropped[1] == 1);
    tres_free(&a);
    a = do_get("b", k[0]);
    CU_ASSERT_EQUAL(a.err, CM_ERR_NOTFOUND);
    /* a late copy of what the tombstone deleted is not applied; a newer write is */
    md_object late = version(k[0], 900, 2, NULL);
    a = do_put(&late, NULL);
    CU_ASSERT_EQUAL(a.err, CM_OK);
    CU_ASSERT_EQUAL(a.applied, 0);
    CU_ASSERT_EQUAL(do_get("b", k[0]).err, CM_ERR_NOTFOUND);
    md_object fresh = version(k[0], 6000, 2, NULL);
    CU_ASSERT_EQUAL(do_put(&fresh, NULL).applied, 1);
    /* a drop of a version the replica no longer holds keeps the newer one */
    a = do_tombs(sh, 10000, NULL, 10);
    CU_ASSERT_EQUAL_FATAL(a.ninfos, 1); /* t2 */
    md_object t3 = version(k[2], 9500, 1, &t2.vv);
    t3.tombstone = 1;
    CU_ASSERT_EQUAL(do_put(&t3, NULL).applied, 1);
    b = do_tomb_drop(sh, 10000, a.infos, a.ninfos);
    CU_ASSERT_EQUAL(b.err, CM_OK);
    CU_ASSERT_EQUAL(b.dropped[0], 0);
    tres g = do_get("b", k[2]);
    CU_ASSERT(g.has_rec && g.rec.hlc == t3.hlc);
    tres_free(&g);
    /* arguments refused before anything runs; an unknown bucket */
    rp_part p = {"b", sh, NSHARDS, 0}, nb = {"nobucket", sh, NSHARDS, 0};
    CU_ASSERT_EQUAL(rp_replica_tombs(E.r, &p, 0, NULL, 10, done_cb, &b), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(rp_replica_tombs(E.r, &p, 1, NULL, RP_LIST_MAX + 1, done_cb, &b), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(rp_replica_tomb_drop(E.r, &p, 1, a.infos, 0, done_cb, &b), CM_ERR_INVAL);
    p.shard = (sh + 1) % NSHARDS; /* the entry's key is not of this shard */
    CU_ASSERT_EQUAL(rp_replica_tomb_drop(E.r, &p, 1, a.infos, 1, done_cb, &b), CM_ERR_INVAL);
    tres_free(&a);
    tres_free(&b);
    wait_for(&a, rp_replica_tombs(E.r, &nb, 1, NULL, 10, done_cb, &a));
    CU_ASSERT_EQUAL(a.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(a.no_bucket, 1);
}

static void t_errors(void)
{
    md_object a = version("k", 1000, 1, NULL);
    tres t = {0};
    rp_part bad = {"b", NSHARDS, NSHARDS, 0}, wrong = part_of("k");
    wrong.shard = (wrong.shard + 1) % NSHARDS;
    /* refused before anything runs: no completion */
    CU_ASSERT_EQUAL(rp_replica_get(E.r, &bad, "k", done_cb, &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(rp_replica_put(E.r, &wrong, &a, NULL, done_cb, &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(rp_replica_merkle(E.r, &wrong, 0, done_cb, &t), CM_ERR_INVAL);
    uint32_t leaf = 16;
    CU_ASSERT_EQUAL(rp_replica_leaf_keys(E.r, &wrong, 1, &leaf, 1, done_cb, &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(rp_replica_list(E.r, &wrong, NULL, NULL, 0, done_cb, &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(rp_replica_put(E.r, &wrong, &a, "bad id!", done_cb, &t), CM_ERR_INVAL);
    event_base_loop(E.base, EVLOOP_NONBLOCK);
    CU_ASSERT_EQUAL(t.done, 0);
    if (!E.remote)
        return;
    /* an unreachable node: refused at once, or lost and timed out (bounded by the io timeout) */
    nd_fault_set(E.faults, "n1", "n2", ND_FAULT_REFUSE, 0);
    t = do_get("b", "k");
    CU_ASSERT_EQUAL(t.err, CM_ERR_UNAVAILABLE);
    nd_fault_set(E.faults, "n1", "n2", ND_FAULT_LOSE, 0);
    int64_t t0 = cm_monotonic_ms();
    t = do_put(&a, NULL);
    CU_ASSERT_EQUAL(t.err, CM_ERR_TIMEOUT);
    CU_ASSERT(t.ms - t0 >= 1400 && t.ms - t0 < 6000); /* the io timeout, 1.5 s */
    nd_fault_clear(E.faults, NULL, NULL);
    CU_ASSERT_EQUAL(do_put(&a, NULL).applied, 1);
}

#define BOTH(name)                                                                                 \
    static void name##_local(void)                                                                 \
    {                                                                                              \
        env_up(0, 300);                                                                            \
        name();                                                                                    \
        env_down();                                                                                \
    }                                                                                              \
    static void name##_remote(void)                                                                \
    {                                                                                              \
        env_up(1, 1500);                                                                           \
        name();                                                                                    \
        env_down();                                                                                \
    }

BOTH(t_get_put_merge)
BOTH(t_garbage)
BOTH(t_list)
BOTH(t_merkle_leaf_keys)
BOTH(t_hint_put)
BOTH(t_errors)
BOTH(t_clock)
BOTH(t_tombs)
BOTH(t_fence)
BOTH(t_fence_restart)

void cu_register(void)
{
    static const cu_test local[] = {
        {"get_put_merge", t_get_put_merge_local},
        {"garbage", t_garbage_local},
        {"list", t_list_local},
        {"merkle_leaf_keys", t_merkle_leaf_keys_local},
        {"hint_put", t_hint_put_local},
        {"errors", t_errors_local},
        {"clock", t_clock_local},
        {"fence", t_fence_local},
        {"fence_restart", t_fence_restart_local},
        {"tombs", t_tombs_local},
        {NULL, NULL},
    };
    static const cu_test remote[] = {
        {"get_put_merge", t_get_put_merge_remote},
        {"garbage", t_garbage_remote},
        {"list", t_list_remote},
        {"merkle_leaf_keys", t_merkle_leaf_keys_remote},
        {"hint_put", t_hint_put_remote},
        {"errors", t_errors_remote},
        {"clock", t_clock_remote},
        {"fence", t_fence_remote},
        {"fence_restart", t_fence_restart_remote},
        {"tombs", t_tombs_remote},
        {NULL, NULL},
    };
    cu_add_suite("repl_local", local);
    cu_add_suite("repl_remote", remote);
}
