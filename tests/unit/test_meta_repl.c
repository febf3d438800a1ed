/*
 * test_meta_repl.c - the replication primitives of meta/: the hybrid logical clock (monotonic
 * across wall-clock steps and threads, the receive rules, the drift bound), version vectors
 * (compare, merge, bound, codec), the resolution of two versions, the new record fields and old
 * records, generations with compare-and-set, the raw paged listing, Merkle diffs between two
 * stores and durable garbage records.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cu_main.h"
#include "md.h"
#include "md_int.h"

static int64_t fake_ms;

static int64_t fake_wall(void *arg)
{
    (void)arg;
    return fake_ms;
}

/* ---- HLC ---- */

static void test_hlc_clock_steps(void)
{
    md_hlc c;
    fake_ms = 1000000;
    md_hlc_init(&c, 7, fake_wall, NULL);
    uint64_t a = md_hlc_now(&c);
    CU_ASSERT_EQUAL(a, MD_HLC_MAKE(1000000, 0));
    uint64_t b = md_hlc_now(&c); /* same ms: the counter moves */
    CU_ASSERT_EQUAL(b, MD_HLC_MAKE(1000000, 1));
    fake_ms -= 10000; /* the wall clock steps back 10 s */
    uint64_t prev = b;
    for (int i = 0; i < 100; i++) {
        uint64_t t = md_hlc_now(&c);
        CU_ASSERT(t > prev);
        CU_ASSERT_EQUAL(MD_HLC_MS(t), 1000000);
        prev = t;
    }
    CU_ASSERT_EQUAL(MD_HLC_LOGICAL(prev), 101);
    fake_ms = 1000001; /* the wall clock passes the last timestamp: counter resets */
    uint64_t d = md_hlc_now(&c);
    CU_ASSERT_EQUAL(d, MD_HLC_MAKE(1000001, 0));
    /* 65,536 events within one ms carry into the ms part, never repeat. */
    prev = d;
    for (int i = 0; i < 70000; i++) {
        uint64_t t = md_hlc_now(&c);
        CU_ASSERT_FATAL(t > prev);
        prev = t;
    }
    CU_ASSERT_EQUAL(MD_HLC_MS(prev), 1000002);
    md_hlc_release(&c);
}

static void test_hlc_update_rules(void)
{
    md_hlc c;
    uint64_t t;
    fake_ms = 5000000;
    md_hlc_init(&c, 1, fake_wall, NULL);
    CU_ASSERT_EQUAL(md_hlc_now(&c), MD_HLC_MAKE(5000000, 0));
    /* A message from ahead (within the drift bound): its ms, its counter + 1. */
    CU_ASSERT_EQUAL(md_hlc_update(&c, MD_HLC_MAKE(5000300, 4), &t), CM_OK);
    CU_ASSERT_EQUAL(t, MD_HLC_MAKE(5000300, 5));
    /* Same ms as ours with a larger counter: max(counters) + 1. */
    CU_ASSERT_EQUAL(md_hlc_update(&c, MD_HLC_MAKE(5000300, 9), &t), CM_OK);
    CU_ASSERT_EQUAL(t, MD_HLC_MAKE(5000300, 10));
    /* An older message: our last + 1. */
    CU_ASSERT_EQUAL(md_hlc_update(&c, MD_HLC_MAKE(4000000, 70), &t), CM_OK);
    CU_ASSERT_EQUAL(t, MD_HLC_MAKE(5000300, 11));
    /* The wall clock passes both: wall ms, counter 0. */
    fake_ms = 5000400;
    CU_ASSERT_EQUAL(md_hlc_update(&c, MD_HLC_MAKE(5000350, 2), &t), CM_OK);
    CU_ASSERT_EQUAL(t, MD_HLC_MAKE(5000400, 0));
    /* Beyond the drift bound: refused, the clock unchanged. */
    CU_ASSERT_EQUAL(md_hlc_update(&c, MD_HLC_MAKE(5000400 + MD_HLC_MAX_DRIFT_MS + 1, 0), &t),
                    CM_ERR_INVAL);
    CU_ASSERT_EQUAL(md_hlc_now(&c), MD_HLC_MAKE(5000400, 1));
    md_hlc_release(&c);
}

#define HLC_THREADS 4
#define HLC_PER 20000

typedef struct {
    md_hlc *c;
    uint64_t *out;
    int ordered;
} hlc_arg;

static void *hlc_worker(void *p)
{
    hlc_arg *a = p;
    a->ordered = 1;
    for (int i = 0; i < HLC_PER; i++) {
        /* Every fourth event is a receive of a timestamp from a little earlier. */
        uint64_t t = md_hlc_now(a->c);
        if (i % 4 == 3 && md_hlc_update(a->c, t - 3, &t) != CM_OK)
            a->ordered = 0;
        a->out[i] = t;
        if (i > 0 && a->out[i] <= a->out[i - 1])
            a->ordered = 0;
    }
    return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static void test_hlc_threads(void)
{
    md_hlc c;
    md_hlc_init(&c, 3, NULL, NULL); /* the real clock */
    uint64_t *all = malloc(sizeof(uint64_t) * HLC_THREADS * HLC_PER);
    pthread_t th[HLC_THREADS];
    hlc_arg args[HLC_THREADS];
    for (int i = 0; i < HLC_THREADS; i++) {
        args[i] = (hlc_arg){&c, all + (size_t)i * HLC_PER, 0};
        pthread_create(&th[i], NULL, hlc_worker, &args[i]);
    }
    for (int i = 0; i < HLC_THREADS; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT(args[i].ordered);
    }
    qsort(all, (size_t)HLC_THREADS * HLC_PER, sizeof(uint64_t), cmp_u64);
    size_t dups = 0;
    for (size_t i = 1; i < (size_t)HLC_THREADS * HLC_PER; i++)
        dups += all[i] == all[i - 1];
    CU_ASSERT_EQUAL(dups, 0); /* no two events share a timestamp */
    free(all);
    md_hlc_release(&c);
}

/* ---- Version vectors ---- */

static md_vv vv_of(const uint32_t *nodes, const uint64_t *counters, int n)
{
    md_vv v = {0};
    for (int i = 0; i < n; i++)
        for (uint64_t k = 0; k < counters[i]; k++)
            md_vv_increment(&v, nodes[i], 100 + k);
    return v;
}

static void test_vv_compare(void)
{
    md_vv empty = {0};
    md_vv a = vv_of((uint32_t[]){3, 1}, (uint64_t[]){2, 1}, 2);
    CU_ASSERT_EQUAL(a.n, 2);
    CU_ASSERT_EQUAL(a.e[0].node, 1); /* sorted by node */
    CU_ASSERT_EQUAL(md_vv_counter(&a, 3), 2);
    CU_ASSERT_EQUAL(md_vv_counter(&a, 9), 0);
    md_vv b = a;
    CU_ASSERT_EQUAL(md_vv_compare(&a, &b), MD_VV_EQUAL);
    CU_ASSERT_EQUAL(md_vv_compare(&empty, &empty), MD_VV_EQUAL);
    CU_ASSERT_EQUAL(md_vv_compare(&empty, &a), MD_VV_BEFORE);
    md_vv_increment(&b, 2, 500); /* b = a plus a write on node 2 */
    CU_ASSERT_EQUAL(md_vv_compare(&a, &b), MD_VV_BEFORE);
    CU_ASSERT_EQUAL(md_vv_compare(&b, &a), MD_VV_AFTER);
    md_vv c = a;
    md_vv_increment(&c, 1, 501); /* a write on node 1 that did not see b's */
    CU_ASSERT_EQUAL(md_vv_compare(&b, &c), MD_VV_CONCURRENT);
    CU_ASSERT_EQUAL(md_vv_compare(&c, &b), MD_VV_CONCURRENT);
    md_vv m;
    md_vv_merge(&b, &c, &m);
    CU_ASSERT_EQUAL(m.n, 3);
    CU_ASSERT_EQUAL(md_vv_counter(&m, 1), 2);
    CU_ASSERT_EQUAL(md_vv_counter(&m, 2), 1);
    CU_ASSERT_EQUAL(md_vv_counter(&m, 3), 2);
    CU_ASSERT_EQUAL(md_vv_compare(&b, &m), MD_VV_BEFORE);
    CU_ASSERT_EQUAL(md_vv_compare(&c, &m), MD_VV_BEFORE);
    md_vv_merge(&m, &m, &m); /* in place, idempotent */
    CU_ASSERT_EQUAL(md_vv_compare(&m, &b), MD_VV_AFTER);
    CU_ASSERT_EQUAL(m.n, 3);
}

static void test_vv_bound_and_codec(void)
{
    md_vv v = {0};
    for (uint32_t node = 1; node <= MD_VV_MAX + 3; node++)
        md_vv_increment(&v, node * 10, 1000 + node); /* node 10 has the oldest hlc */
    CU_ASSERT_EQUAL(v.n, MD_VV_MAX);
    CU_ASSERT_EQUAL(md_vv_counter(&v, 10), 0); /* the three oldest writers were pruned */
    CU_ASSERT_EQUAL(md_vv_counter(&v, 30), 0);
    CU_ASSERT_EQUAL(md_vv_counter(&v, 40), 1);
    CU_ASSERT_EQUAL(md_vv_counter(&v, (MD_VV_MAX + 3) * 10), 1);
    for (uint32_t i = 1; i < v.n; i++)
        CU_ASSERT(v.e[i].node > v.e[i - 1].node);
    /* A merge of two full vectors with different writers stays bounded, keeping the newest. */
    md_vv w = {0}, m;
    for (uint32_t node = 1; node <= MD_VV_MAX; node++)
        md_vv_increment(&w, node, 5000 + node);
    md_vv_merge(&v, &w, &m);
    CU_ASSERT_EQUAL(m.n, MD_VV_MAX);
    CU_ASSERT_EQUAL(md_vv_counter(&m, 1), 1);
    CU_ASSERT_EQUAL(md_vv_counter(&m, 40), 0);

    uint8_t buf[MD_VV_ENC_MAX];
    size_t len = md_vv_encode(&v, buf);
    CU_ASSERT_EQUAL(len, 1 + 20 * MD_VV_MAX);
    md_vv d;
    CU_ASSERT_EQUAL(md_vv_decode(buf, len, &d), CM_OK);
    CU_ASSERT_EQUAL(memcmp(&d, &v, sizeof(d)), 0);
    int saved = cm_log_threshold;
    cm_log_threshold = -1; /* the corruption below is expected */
    CU_ASSERT_EQUAL(md_vv_decode(buf, len - 1, &d), CM_ERR_CORRUPT);
    buf[1 + 3] = 0xFF; /* first entry's node now larger than the second's */
    CU_ASSERT_EQUAL(md_vv_decode(buf, len, &d), CM_ERR_CORRUPT);
    uint8_t big[1] = {MD_VV_MAX + 1};
    CU_ASSERT_EQUAL(md_vv_decode(big, 1, &d), CM_ERR_CORRUPT);
    cm_log_threshold = saved;
}

/* A key written through more coordinators than a vector holds (every node of a cluster
 * coordinates the requests it receives): each write saw the one before, yet once the first
 * writer's entry is pruned the first and the last version compare as concurrent (the first still
 * names a writer the last forgot, as does every version before the pruning). Resolution still
 * picks the last, by its larger HLC: a coordinator stamps after merging the clocks of what it
 * read. */
static void test_vv_pruned_history(void)
{
    md_vv v = {0}, first;
    md_object ver[MD_VV_MAX + 1];
    for (uint32_t i = 0; i <= MD_VV_MAX; i++) {
        md_vv_increment(&v, i + 1, MD_HLC_MAKE(1000 + i, 0));
        if (i == 0)
            first = v;
        memset(&ver[i], 0, sizeof(ver[i]));
        ver[i].hlc = MD_HLC_MAKE(1000 + i, 0), ver[i].hlc_node = i + 1, ver[i].vv = v;
    }
    CU_ASSERT_EQUAL(md_vv_counter(&v, 1), 0); /* pruned */
    CU_ASSERT_EQUAL(md_vv_compare(&first, &v), MD_VV_CONCURRENT);
    for (uint32_t i = 0; i < MD_VV_MAX; i++) {
        int conc = -1;
        CU_ASSERT_EQUAL(md_object_resolve(&ver[i], &ver[MD_VV_MAX], &conc), 1);
        CU_ASSERT_EQUAL(md_object_resolve(&ver[MD_VV_MAX], &ver[i], NULL), 0);
        CU_ASSERT_EQUAL(conc, 1); /* every one of them still names the pruned writer */
    }
}

/* ---- Resolution ---- */

static md_object version(uint64_t hlc, uint32_t node, md_vv vv, int tombstone)
{
    md_object o;
    memset(&o, 0, sizeof(o));
    o.hlc = hlc, o.hlc_node = node, o.vv = vv, o.tombstone = (uint8_t)tombstone;
    return o;
}

/* resolve(a, b) picks want (0 = a) with the concurrent flag; so does resolve(b, a). */
static void check_resolve(const md_object *a, const md_object *b, int want, int conc)
{
    int c1 = -1, c2 = -1;
    CU_ASSERT_EQUAL(md_object_resolve(a, b, &c1), want);
    CU_ASSERT_EQUAL(md_object_resolve(b, a, &c2), !want);
    CU_ASSERT_EQUAL(c1, conc);
    CU_ASSERT_EQUAL(c2, conc);
}

static void test_resolve_table(void)
{
    md_vv base = {0}, v1, v2, v12;
    md_vv_increment(&base, 1, 10);
    v1 = base, v2 = base;
    md_vv_increment(&v1, 1, 20); /* {1:2} */
    md_vv_increment(&v2, 2, 30); /* {1:1, 2:1}: concurrent with v1 */
    md_vv_merge(&v1, &v2, &v12);
    md_vv_increment(&v12, 3, 15); /* saw both, on a node with a slow clock */

    /* Causal order beats the clock: the newer version has the lower hlc. */
    md_object old = version(MD_HLC_MAKE(900, 0), 1, base, 0);
    md_object newer = version(MD_HLC_MAKE(800, 0), 2, v1, 0);
    check_resolve(&old, &newer, 1, 0);
    /* Concurrent: last writer by hlc wins, flagged. */
    md_object a = version(MD_HLC_MAKE(1000, 5), 1, v1, 0);
    md_object b = version(MD_HLC_MAKE(1000, 6), 2, v2, 0);
    check_resolve(&a, &b, 1, 1);
    /* Concurrent with equal hlc: the larger node id wins. */
    md_object c = version(MD_HLC_MAKE(1000, 5), 9, v2, 0);
    check_resolve(&a, &c, 1, 1);
    /* A tombstone that saw both versions wins, though its clock is behind. */
    md_object tomb = version(MD_HLC_MAKE(700, 0), 3, v12, 1);
    check_resolve(&b, &tomb, 1, 0);
    /* A concurrent tombstone with the older hlc loses (the put is kept). */
    md_object tomb2 = version(MD_HLC_MAKE(1000, 1), 2, v2, 1);
    check_resolve(&a, &tomb2, 0, 1);
    /* The same version twice: not concurrent. */
    md_object a2 = a;
    int conc = -1;
    CU_ASSERT_EQUAL(md_object_resolve(&a, &a2, &conc), 0);
    CU_ASSERT_EQUAL(conc, 0);
    /* Records from before vectors (both empty) fall back to LWW, flagged concurrent. */
    md_vv none = {0};
    md_object o1 = version(0, 0, none, 0), o2 = version(MD_HLC_MAKE(1, 0), 1, none, 0);
    check_resolve(&o1, &o2, 1, 1);
    /* Concurrent, equal hlc and node (never made by one clock): still one deterministic winner. */
    md_object x = version(MD_HLC_MAKE(50, 0), 4, v1, 0), y = version(MD_HLC_MAKE(50, 0), 4, v2, 0);
    CU_ASSERT_NOT_EQUAL(md_object_resolve(&x, &y, NULL), md_object_resolve(&y, &x, NULL));
}

/* ---- Record fields ---- */

static void test_record_fields(void)
{
    md_object o, d;
    memset(&o, 0, sizeof(o));
    o.key = "k";
    o.hlc = MD_HLC_MAKE(1733300000000LL, 42);
    o.hlc_node = 0xA1B2C3D4u;
    md_vv_increment(&o.vv, 5, o.hlc);
    md_vv_increment(&o.vv, 2, o.hlc - 1);
    o.tombstone = 1;
    o.generation = 77;
    uint8_t *buf;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf, len, &d), CM_OK);
    CU_ASSERT_EQUAL(d.hlc, o.hlc);
    CU_ASSERT_EQUAL(d.hlc_node, o.hlc_node);
    CU_ASSERT_EQUAL(memcmp(&d.vv, &o.vv, sizeof(o.vv)), 0);
    CU_ASSERT_EQUAL(d.tombstone, 1);
    CU_ASSERT_EQUAL(d.generation, 77);
    md_object_release(&d);
    /* Listings decode summaries: the replication fields are there too. */
    CU_ASSERT_EQUAL_FATAL(md_object_decode_ex(buf, len, MD_DECODE_SUMMARY, &d), CM_OK);
    CU_ASSERT_EQUAL(d.hlc, o.hlc);
    CU_ASSERT_EQUAL(d.vv.n, 2);
    md_object_release(&d);
    md_object cp;
    o.key = strdup("k");
    CU_ASSERT_EQUAL(md_object_copy(&o, &cp), CM_OK);
    CU_ASSERT_EQUAL(cp.generation, 77);
    CU_ASSERT_EQUAL(cp.hlc_node, o.hlc_node);
    md_object_release(&cp);
    free(o.key);
    free(buf);

    /* A record written before these fields: format 1, key "old", size 3. */
    static const uint8_t old[] = {1, 1, 0, 0, 0, 3, 'o', 'l', 'd', 3, 0,
                                  0, 0, 8, 0, 0, 0, 0,   0,   0,   0, 3};
    CU_ASSERT_EQUAL_FATAL(md_object_decode(old, sizeof(old), &d), CM_OK);
    CU_ASSERT_STRING_EQUAL(d.key, "old");
    CU_ASSERT_EQUAL(d.size, 3);
    CU_ASSERT_EQUAL(d.hlc, 0);
    CU_ASSERT_EQUAL(d.hlc_node, 0);
    CU_ASSERT_EQUAL(d.vv.n, 0);
    CU_ASSERT_EQUAL(d.tombstone, 0);
    CU_ASSERT_EQUAL(d.generation, 0);
    md_object_release(&d);

    /* Damaged replication fields are corruption. */
    int saved = cm_log_threshold;
    cm_log_threshold = -1; /* the corruption below is expected */
    static const uint8_t bad_hlc[] = {1, 21, 0, 0, 0, 4, 1, 2, 3, 4};
    CU_ASSERT_EQUAL(md_object_decode(bad_hlc, sizeof(bad_hlc), &d), CM_ERR_CORRUPT);
    static const uint8_t bad_vv[] = {1, 22, 0, 0, 0, 2, 1, 0};
    CU_ASSERT_EQUAL(md_object_decode(bad_vv, sizeof(bad_vv), &d), CM_ERR_CORRUPT);
    cm_log_threshold = saved;
}

/* ---- Store ---- */

static md_store *open_store(const char *name, const char *bucket)
{
    char dir[512];
    md_store *md = NULL;
    snprintf(dir, sizeof(dir), "%s/%s", cu_tmpdir(), name);
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 26, &md), CM_OK);
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "%s", bucket);
    cm_err e = md_bucket_create(md, &b);
    CU_ASSERT(e == CM_OK || e == CM_ERR_EXISTS);
    return md;
}

static void reopen(md_store **md, const char *name)
{
    char dir[512];
    md_close(*md);
    snprintf(dir, sizeof(dir), "%s/%s", cu_tmpdir(), name);
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 26, md), CM_OK);
}

static uint64_t gen_of(md_store *md, const char *bucket, const char *key)
{
    md_object o;
    if (md_rec_get(md, bucket, key, &o) != CM_OK)
        return 0;
    uint64_t g = o.generation;
    md_object_release(&o);
    return g;
}

static void test_generation_cas(void)
{
    md_store *md = open_store("gen", "b");
    md_object o = {.key = "k", .size = 1};
    uint64_t g = 0;
    /* The S3 calls count generations too. */
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(gen_of(md, "b", "k"), 1);
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(gen_of(md, "b", "k"), 2);
    o.generation = 999; /* ignored: the store sets it */
    o.size = 2;
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &o, 2, &g), CM_OK);
    CU_ASSERT_EQUAL(g, 3);
    o.size = 3;
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &o, 2, &g), CM_ERR_CONFLICT); /* stale */
    CU_ASSERT_EQUAL(g, 0);
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &o, 0, &g), CM_ERR_CONFLICT); /* must be absent */
    md_object r;
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", "k", &r), CM_OK);
    CU_ASSERT_EQUAL(r.size, 2); /* the failed puts changed nothing */
    CU_ASSERT_EQUAL(r.generation, 3);
    md_object_release(&r);
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &o, MD_GEN_ANY, &g), CM_OK);
    CU_ASSERT_EQUAL(g, 4);
    md_object n = {.key = "new"};
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &n, 1, &g), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &n, 0, &g), CM_OK);
    CU_ASSERT_EQUAL(g, 1);
    CU_ASSERT_EQUAL(md_rec_put(md, "nob", &n, MD_GEN_ANY, &g), CM_ERR_NOTFOUND);

    /* A tombstone keeps counting and is absent to the S3 calls. */
    md_object t = {.key = "k", .tombstone = 1};
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &t, 4, &g), CM_OK);
    CU_ASSERT_EQUAL(g, 5);
    CU_ASSERT_EQUAL(md_object_get(md, "b", "k", &r), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL_FATAL(md_rec_get(md, "b", "k", &r), CM_OK);
    CU_ASSERT(r.tombstone);
    md_object_release(&r);
    md_list_query q = {.max_keys = 10};
    md_list_result lr;
    CU_ASSERT_EQUAL_FATAL(md_list_objects(md, "b", &q, &lr), CM_OK);
    CU_ASSERT_EQUAL(lr.n, 1);
    CU_ASSERT_STRING_EQUAL(lr.entries[0].key, "new");
    md_list_result_release(&lr);
    md_cond inm = {.if_none_match_star = 1};
    o.size = 9;
    CU_ASSERT_EQUAL(md_object_put(md, "b", &o, &inm, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(gen_of(md, "b", "k"), 6);
    /* Multipart completion and the self-repair layout swap are writes too. */
    md_upload up = {.key = "k", .upload_id = "u1"};
    md_object done = {.key = "k"};
    md_part *parts = NULL;
    size_t np = 0;
    CU_ASSERT_EQUAL(md_upload_create(md, "b", &up), CM_OK);
    CU_ASSERT_EQUAL(md_upload_complete(md, "b", "u1", &done, NULL, &parts, &np, NULL, NULL), CM_OK);
    md_parts_free(parts, np);
    CU_ASSERT_EQUAL(gen_of(md, "b", "k"), 7);
    md_part sp = {.number = 0, .size = 10, .layout = {.blob = {1}, .size = 10, .k = 1}};
    md_object chunked = {.key = "k", .size = 10, .parts = &sp, .nparts = 1};
    CU_ASSERT_EQUAL(md_object_put(md, "b", &chunked, NULL, NULL, NULL), CM_OK);
    md_layout nl = sp.layout;
    nl.blob[0] = 2;
    CU_ASSERT_EQUAL(md_object_replace_layout(md, "b", "k", 0, sp.layout.blob, &nl), CM_OK);
    CU_ASSERT_EQUAL(gen_of(md, "b", "k"), 9);
    /* Durable: the generation survives a reopen. */
    reopen(&md, "gen");
    CU_ASSERT_EQUAL(gen_of(md, "b", "k"), 9);
    md_close(md);
}

/* Store raw record bytes under b/old, as a store from before generations holds them. */
typedef struct {
    const uint8_t *rec;
    size_t len;
} raw_put;

static cm_err raw_put_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    raw_put *r = arg;
    uint8_t k[16];
    size_t kl;
    (void)wrote;
    cm_err e = md_key_object("b", "old", k, &kl);
    return e == CM_OK ? md_kv_put(txn, md->objects, k, kl, r->rec, r->len) : e;
}

static void test_old_record_in_store(void)
{
    md_store *md = open_store("oldrec", "b");
    static const uint8_t old[] = {1, 1, 0, 0, 0, 3, 'o', 'l', 'd', 3, 0,
                                  0, 0, 8, 0, 0, 0, 0,   0,   0,   0, 3};
    raw_put r = {old, sizeof(old)};
    CU_ASSERT_EQUAL_FATAL(md_write(md, raw_put_apply, &r), CM_OK);
    md_object o;
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", "old", &o), CM_OK); /* S3 reads it as before */
    CU_ASSERT_EQUAL(o.size, 3);
    CU_ASSERT_EQUAL(o.hlc, 0);
    md_object_release(&o);
    CU_ASSERT_EQUAL(gen_of(md, "b", "old"), 1); /* counts as generation 1 */
    md_object n = {.key = "old", .size = 4};
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &n, 0, NULL), CM_ERR_CONFLICT);
    uint64_t g = 0;
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &n, 1, &g), CM_OK);
    CU_ASSERT_EQUAL(g, 2);
    md_rec_info *in;
    size_t cnt;
    int trunc;
    CU_ASSERT_EQUAL_FATAL(md_rec_list(md, "b", NULL, 10, &in, &cnt, &trunc), CM_OK);
    CU_ASSERT_EQUAL(cnt, 1);
    CU_ASSERT_EQUAL(in[0].generation, 2);
    md_rec_infos_free(in, cnt);
    md_close(md);
}

static void test_raw_listing(void)
{
    md_store *md = open_store("rawlist", "b");
    md_bucket b2 = {.name = "b2"}; /* "b2\0..." sorts after "b\0...": must not leak in */
    CU_ASSERT_EQUAL(md_bucket_create(md, &b2), CM_OK);
    char key[700];
    int nkeys = 0;
    for (int i = 0; i < 250; i++) {
        int j = (i * 97) % 250; /* insert out of order */
        if (j % 50 == 7)        /* long keys, stored in the long-key tree */
            snprintf(key, sizeof(key), "k%03d/%0600d", j, j);
        else
            snprintf(key, sizeof(key), "k%03d", j);
        md_object o = {.key = key, .hlc = MD_HLC_MAKE(100 + j, 0), .tombstone = j % 10 == 0};
        CU_ASSERT_EQUAL(md_rec_put(md, "b", &o, MD_GEN_ANY, NULL), CM_OK);
        nkeys++;
    }
    md_object other = {.key = "k000"};
    CU_ASSERT_EQUAL(md_rec_put(md, "b2", &other, MD_GEN_ANY, NULL), CM_OK);
    char *last = NULL;
    int total = 0, pages = 0, truncated = 1, tombs = 0;
    while (truncated) {
        md_rec_info *in;
        size_t n;
        CU_ASSERT_EQUAL_FATAL(md_rec_list(md, "b", last, 64, &in, &n, &truncated), CM_OK);
        for (size_t i = 0; i < n; i++) {
            if (last)
                CU_ASSERT(strcmp(in[i].key, last) > 0);
            CU_ASSERT_EQUAL(in[i].hlc, MD_HLC_MAKE(100 + atoi(in[i].key + 1), 0));
            CU_ASSERT_EQUAL(in[i].generation, 1);
            tombs += in[i].tombstone;
            free(last);
            last = strdup(in[i].key);
            total++;
        }
        CU_ASSERT(n == 64 || !truncated);
        md_rec_infos_free(in, n);
        pages++;
    }
    free(last);
    CU_ASSERT_EQUAL(total, nkeys);
    CU_ASSERT_EQUAL(tombs, 25);
    CU_ASSERT_EQUAL(pages, 4);
    md_close(md);
}

/* ---- Merkle ---- */

static void put_version(md_store *md, const char *key, uint64_t hlc, int tombstone)
{
    md_object o = {.key = (char *)key, .hlc = hlc, .hlc_node = 1, .tombstone = (uint8_t)tombstone};
    md_vv_increment(&o.vv, 1, hlc);
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &o, MD_GEN_ANY, NULL), CM_OK);
}

static void test_merkle_diff(void)
{
    md_store *a = open_store("merkle_a", "b"), *b = open_store("merkle_b", "b");
    char key[64];
    const int n = 3000;
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "obj/%05d", i);
        put_version(a, key, MD_HLC_MAKE(1000 + i, 0), 0);
        put_version(b, key, MD_HLC_MAKE(1000 + i, 0), 0);
    }
    /* The same version written twice on b: its generation differs, the replicas agree. */
    put_version(b, "obj/00010", MD_HLC_MAKE(1010, 0), 0);
    int depth = md_merkle_depth_for(n);
    CU_ASSERT_EQUAL(depth, 3);
    md_merkle *ta, *tb;
    size_t *leaves, nl, compared;
    CU_ASSERT_EQUAL_FATAL(md_merkle_build(a, "b", depth, &ta), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_merkle_build(b, "b", depth, &tb), CM_OK);
    CU_ASSERT_EQUAL(md_merkle_count(ta), (uint64_t)n);
    CU_ASSERT_EQUAL(md_merkle_diff(ta, tb, &leaves, &nl, &compared), CM_OK);
    CU_ASSERT_EQUAL(nl, 0);
    CU_ASSERT_EQUAL(compared, 1); /* in sync: one hash exchanged */
    free(leaves);
    md_merkle_free(ta);
    md_merkle_free(tb);

    /* Four differences: only on a, only on b, a newer version on b, a tombstone on a. */
    put_version(a, "obj/00500x", MD_HLC_MAKE(9000, 0), 0);
    put_version(b, "new/only-b", MD_HLC_MAKE(9001, 0), 0);
    put_version(b, "obj/01234", MD_HLC_MAKE(9002, 0), 0);
    put_version(a, "obj/02999", MD_HLC_MAKE(9003, 0), 1);
    CU_ASSERT_EQUAL_FATAL(md_merkle_build(a, "b", depth, &ta), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_merkle_build(b, "b", depth, &tb), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_merkle_diff(ta, tb, &leaves, &nl, &compared), CM_OK);
    CU_ASSERT(nl >= 1 && nl <= 4);
    /* Top-down: at most 1 + fanout x depth hashes per difference, against 3,000 keys. */
    CU_ASSERT(compared <= 1 + 4 * MD_MERKLE_FANOUT * (size_t)depth);
    printf("\n  merkle: %d keys, 4 differences, %zu hashes compared, %zu leaves\n", n, compared,
           nl);
    CU_ASSERT_EQUAL(leaves[0] < (size_t)1 << (4 * depth), 1);
    CU_ASSERT_EQUAL(md_merkle_leaf_of(ta, "obj/01234"), md_merkle_leaf_of(tb, "obj/01234"));
    md_rec_info *ka, *kb;
    size_t na, nb;
    CU_ASSERT_EQUAL_FATAL(md_merkle_leaf_keys(a, "b", ta, leaves, nl, &ka, &na), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_merkle_leaf_keys(b, "b", tb, leaves, nl, &kb, &nb), CM_OK);
    CU_ASSERT(na < 40 && nb < 40); /* a few leaves' worth, not the bucket */
    char **keys;
    size_t nk;
    CU_ASSERT_EQUAL_FATAL(md_rec_diff(ka, na, kb, nb, &keys, &nk), CM_OK);
    CU_ASSERT_EQUAL_FATAL(nk, 4);
    CU_ASSERT_STRING_EQUAL(keys[0], "new/only-b");
    CU_ASSERT_STRING_EQUAL(keys[1], "obj/00500x");
    CU_ASSERT_STRING_EQUAL(keys[2], "obj/01234");
    CU_ASSERT_STRING_EQUAL(keys[3], "obj/02999");
    md_keys_free(keys, nk);
    md_rec_infos_free(ka, na);
    md_rec_infos_free(kb, nb);
    free(leaves);
    CU_ASSERT_PTR_NULL(md_merkle_node(ta, depth + 1, 0));
    CU_ASSERT_PTR_NULL(md_merkle_node(ta, 1, MD_MERKLE_FANOUT));
    md_merkle *t1;
    CU_ASSERT_EQUAL_FATAL(md_merkle_build(a, "b", 1, &t1), CM_OK);
    CU_ASSERT_EQUAL(md_merkle_diff(ta, t1, &leaves, &nl, &compared), CM_ERR_INVAL);
    md_merkle_free(t1);
    CU_ASSERT_EQUAL(md_merkle_build(a, "b", 0, &t1), CM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(t1);
    md_merkle_free(ta);
    md_merkle_free(tb);
    md_close(a);
    md_close(b);
}

/* ---- Garbage ---- */

static md_part stored_part(uint32_t number, uint8_t blob)
{
    md_part p;
    memset(&p, 0, sizeof(p));
    p.number = number;
    p.size = 1 << 20;
    memset(p.layout.blob, blob, 16);
    p.layout.size = p.size;
    p.layout.k = 4, p.layout.m = 2;
    return p;
}

static void test_garbage(void)
{
    md_store *md = open_store("garbage", "b");
    const uint64_t t1 = MD_HLC_MAKE(1000, 0), t2 = MD_HLC_MAKE(2000, 0), t3 = MD_HLC_MAKE(3000, 0);
    md_part p1[2] = {stored_part(1, 0xA), stored_part(2, 0xB)};
    md_object o = {.key = "k", .hlc = t1, .parts = p1, .nparts = 2};
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &o, 0, NULL), CM_OK);
    /* Replaced by a record keeping B and adding C: A becomes garbage at t2. */
    md_part p2[2] = {stored_part(1, 0xB), stored_part(2, 0xC)};
    md_object o2 = {.key = "k", .hlc = t2, .parts = p2, .nparts = 2};
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &o2, 1, NULL), CM_OK);
    /* A put that fails its generation check frees nothing. */
    md_object o3 = {.key = "k", .hlc = t3};
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &o3, 1, NULL), CM_ERR_CONFLICT);
    md_garbage *g;
    size_t n;
    CU_ASSERT_EQUAL(md_garbage_list(md, UINT64_MAX, 100, &g, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(g[0].layout.blob[0], 0xA);
    CU_ASSERT_EQUAL(g[0].hlc, t2);
    CU_ASSERT_EQUAL(g[0].layout.k, 4);
    CU_ASSERT_STRING_EQUAL(g[0].bucket, "b");
    CU_ASSERT_STRING_EQUAL(g[0].key, "k");
    md_garbage_free(g, n);
    /* A tombstone frees B and C at t3. */
    md_object t = {.key = "k", .hlc = t3, .tombstone = 1};
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &t, 2, NULL), CM_OK);
    /* An inline body replaced leaves no garbage. */
    md_object in = {.key = "small", .hlc = t1, .inline_data = (uint8_t *)"abc", .inline_len = 3};
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &in, 0, NULL), CM_OK);
    in.hlc = t3;
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &in, 1, NULL), CM_OK);
    reopen(&md, "garbage"); /* durable */
    /* Grace: only what became garbage before the bound is listed, oldest first. */
    CU_ASSERT_EQUAL(md_garbage_list(md, t2, 100, &g, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    md_garbage_free(g, n);
    CU_ASSERT_EQUAL(md_garbage_list(md, t3, 100, &g, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 1);
    md_garbage_free(g, n);
    CU_ASSERT_EQUAL(md_garbage_list(md, t3 + 1, 2, &g, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2); /* max honoured */
    CU_ASSERT_EQUAL(g[0].layout.blob[0], 0xA);
    CU_ASSERT_EQUAL(g[1].hlc, t3);
    /* Reclaimed: drop the first two; dropping again is harmless. */
    CU_ASSERT_EQUAL(md_garbage_drop(md, g, n), CM_OK);
    CU_ASSERT_EQUAL(md_garbage_drop(md, g, n), CM_OK);
    md_garbage_free(g, n);
    CU_ASSERT_EQUAL(md_garbage_list(md, UINT64_MAX, 100, &g, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(g[0].hlc, t3);
    CU_ASSERT(g[0].layout.blob[0] == 0xB || g[0].layout.blob[0] == 0xC);
    CU_ASSERT_EQUAL(md_garbage_drop(md, g, n), CM_OK);
    md_garbage_free(g, n);
    CU_ASSERT_EQUAL(md_garbage_list(md, UINT64_MAX, 100, &g, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    md_garbage_free(g, n);
    md_close(md);
}

/*
 * Tombstones are deletions: a bucket whose keys were all deleted through the replicated path
 * holds only tombstones and must be deletable (in cluster mode every node deletes its copy of the
 * bucket when it leaves the namespace); one live record among them still keeps it.
 */
static void test_bucket_delete_tombstones(void)
{
    md_store *md = open_store("bdel", "b");
    char key[16];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        md_object o = {.key = key, .size = 1};
        CU_ASSERT_EQUAL(md_rec_put(md, "b", &o, 0, NULL), CM_OK);
        md_object t = {.key = key, .tombstone = 1};
        CU_ASSERT_EQUAL(md_rec_put(md, "b", &t, 1, NULL), CM_OK);
    }
    md_object live = {.key = "k49z", .size = 1}; /* after every tombstone in key order */
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &live, 0, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_delete(md, "b", NULL, NULL), CM_ERR_CONFLICT);
    md_object t = {.key = "k49z", .tombstone = 1};
    CU_ASSERT_EQUAL(md_rec_put(md, "b", &t, 1, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_delete(md, "b", NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_get(md, "b", NULL), CM_ERR_NOTFOUND);
    md_close(md);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"hlc_clock_steps", test_hlc_clock_steps},
                                    {"hlc_update_rules", test_hlc_update_rules},
                                    {"hlc_threads", test_hlc_threads},
                                    {"vv_compare", test_vv_compare},
                                    {"vv_bound_and_codec", test_vv_bound_and_codec},
                                    {"vv_pruned_history", test_vv_pruned_history},
                                    {"resolve_table", test_resolve_table},
                                    {"record_fields", test_record_fields},
                                    {"generation_cas", test_generation_cas},
                                    {"old_record_in_store", test_old_record_in_store},
                                    {"raw_listing", test_raw_listing},
                                    {"merkle_diff", test_merkle_diff},
                                    {"garbage", test_garbage},
                                    {"bucket_delete_tombstones", test_bucket_delete_tombstones},
                                    {NULL, NULL}};
    cu_add_suite("meta_repl", tests);
}
