/*
 * test_repl_version.c - versioning over the replicated metadata (repl/rp_version.h, docs/
 * versioning.md "On a cluster"), over fake replicas (rp_fake.h).
 *
 * One event loop runs in its own thread (the replicas' loop); two coordinators (nodes 1 and 2,
 * each with its own clock, node 2's ahead by 5 s) are called from the test thread, as gateway
 * workers of two nodes would. Three fakes are the homes of every partition. Garbage is read from
 * the fakes' stores after the coordinators are freed (which waits for every call).
 */
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cm_util.h"
#include "cu_main.h"
#include "rp_fake.h"
#include "rp_int.h"
#include "rp_version.h"

#define NF 3
#define B "bv"

static struct {
    struct event_base *base;
    pthread_t th;
    fake *f[NF];
    struct rp_router *rt;
    md_hlc clk[2];
    rp *c[2];
} E;

static void *loop_thread(void *arg)
{
    event_base_loop(arg, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static int64_t ahead(void *arg)
{
    (void)arg;
    return cm_now_ms() + 5000;
}

static void env_up(void)
{
    static int seq;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    char dir[256];
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    memset(&E, 0, sizeof(E));
    snprintf(dir, sizeof(dir), "%s/v%d", cu_tmpdir(), seq++);
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(E.base = event_base_new());
    for (int i = 0; i < NF; i++) {
        char id[8];
        snprintf(id, sizeof(id), "f%d", i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(E.f[i] = fake_new(E.base, dir, id));
        md_bucket b = {0};
        snprintf(b.name, sizeof(b.name), B);
        md_bucket_create(fake_store(E.f[i]), &b); /* a fake may know it already */
    }
    E.rt = fake_router_new(E.f, NF);
    pthread_create(&E.th, NULL, loop_thread, E.base);
    for (int i = 0; i < 2; i++) {
        md_hlc_init(&E.clk[i], (uint32_t)i + 1, i ? ahead : NULL, NULL);
        rp_config cfg = {.base = E.base,
                         .router = E.rt,
                         .route = fake_route,
                         .clock = &E.clk[i],
                         .node = (uint32_t)i + 1,
                         .nshards = 4,
                         .timeout_ms = 2000};
        CU_ASSERT_EQUAL_FATAL(rp_new(&cfg, &E.c[i]), CM_OK);
    }
}

static void coords_free(void)
{
    for (int i = 0; i < 2; i++) {
        rp_free(E.c[i]);
        E.c[i] = NULL;
    }
}

static void env_down(void)
{
    coords_free();
    /* loopexit, not loopbreak: a break asked before the loop thread entered its loop is lost
     * (event_base_loop clears it on entry), which hung a test whose loop never ran */
    event_base_loopexit(E.base, NULL);
    pthread_join(E.th, NULL);
    for (int i = 0; i < NF; i++)
        fake_free(E.f[i]);
    fake_router_free(E.rt);
    for (int i = 0; i < 2; i++)
        md_hlc_release(&E.clk[i]);
    event_base_free(E.base);
}

/* A record of key whose body is "on drives" (a layout with blob id tag), or inline when tag 0. */
static md_object body(const char *key, uint8_t tag, md_part *p)
{
    md_object o;
    memset(&o, 0, sizeof(o));
    memset(p, 0, sizeof(*p));
    o.key = (char *)key;
    snprintf(o.version_id, sizeof(o.version_id), "null");
    o.size = tag ? 1u << 20 : 3;
    snprintf(o.etag, sizeof(o.etag), "e%02x", tag);
    if (tag) {
        p->size = o.size;
        memset(p->layout.blob, tag, 16);
        p->layout.size = p->size;
        p->layout.k = 2, p->layout.m = 1;
        o.parts = p, o.nparts = 1;
    } else {
        o.inline_data = (uint8_t *)"abc", o.inline_len = 3;
    }
    return o;
}

/* Fake i holds a garbage record of blob tag. */
static int garbage(int i, uint8_t tag)
{
    md_garbage *g = NULL;
    size_t n = 0;
    int has = 0;
    CU_ASSERT_EQUAL(md_garbage_list(fake_store(E.f[i]), UINT64_MAX, 1000, &g, &n), CM_OK);
    for (size_t j = 0; j < n; j++)
        has |= g[j].layout.blob[0] == tag;
    md_garbage_free(g, n);
    return has;
}

/* The versions of key as (id, latest, marker) in listing order, into ids; their count. */
static size_t listed(rp *c, const char *key, char ids[][MD_VID_LEN + 1], int *latest, size_t max)
{
    md_vlist_query q = {.prefix = key, .max_keys = 100};
    md_list_result res;
    CU_ASSERT_EQUAL_FATAL(rp_version_list(c, B, &q, &res), CM_OK);
    size_t n = 0;
    for (size_t i = 0; i < res.n && n < max; i++) {
        if (strcmp(res.entries[i].key, key) != 0)
            continue;
        snprintf(ids[n], MD_VID_LEN + 1, "%.32s", res.entries[i].obj.version_id);
        latest[n++] = res.entries[i].is_latest;
    }
    md_list_result_release(&res);
    return n;
}

/* A key's life: a record from before versioning kept as null, versions, a marker, reads by id,
 * permanent deletes promoting the next, a suspended write replacing null; garbage only for the
 * bodies of versions destroyed. */
static void test_life(void)
{
    env_up();
    md_part p0, p1, p2;
    md_object plain = body("k", 0x10, &p0), v1 = body("k", 0x11, &p1), v2 = body("k", 0, &p2);
    md_vres r1, r2, rm;
    CU_ASSERT_EQUAL(rp_object_put(E.c[0], B, &plain, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(rp_version_put(E.c[0], B, &v1, 0, NULL, &r1), CM_OK);
    CU_ASSERT_EQUAL(rp_version_put(E.c[1], B, &v2, 0, NULL, &r2), CM_OK);
    CU_ASSERT_EQUAL(rp_version_mark(E.c[0], B, "k", 0, NULL, &rm), CM_OK);
    CU_ASSERT(r1.versioned && strlen(r1.version_id) == MD_VID_LEN && rm.delete_marker);
    char ids[8][MD_VID_LEN + 1];
    int latest[8];
    CU_ASSERT_EQUAL_FATAL(listed(E.c[1], "k", ids, latest, 8), 4);
    CU_ASSERT_STRING_EQUAL(ids[0], rm.version_id);
    CU_ASSERT_STRING_EQUAL(ids[1], r2.version_id);
    CU_ASSERT_STRING_EQUAL(ids[2], r1.version_id);
    CU_ASSERT_STRING_EQUAL(ids[3], "null");
    CU_ASSERT(latest[0] && !latest[1] && !latest[2] && !latest[3]);
    md_object o;
    CU_ASSERT_EQUAL_FATAL(rp_version_get(E.c[1], B, "k", "null", &o), CM_OK);
    CU_ASSERT(o.nparts == 1 && o.parts[0].layout.blob[0] == 0x10 && strcmp(o.key, "k") == 0);
    md_object_release(&o);
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[0], B, "k", &o), CM_OK); /* the pointer */
    CU_ASSERT(rp_version_pointer(&o) && o.nparts == 0 && o.delete_marker);
    CU_ASSERT_EQUAL(rp_version_follow(E.c[0], B, &o), CM_OK);
    CU_ASSERT(o.delete_marker && strcmp(o.version_id, rm.version_id) == 0);
    md_object_release(&o);
    /* the marker and v2 deleted for good: v1 is the latest again */
    md_vres d;
    int had = 0;
    CU_ASSERT_EQUAL(rp_version_delete(E.c[1], B, "k", rm.version_id, NULL, &d, &had), CM_OK);
    CU_ASSERT(had && d.delete_marker);
    md_cond wrong = {.if_match = "nope"}, right = {.if_match = "e00"};
    CU_ASSERT_EQUAL(rp_version_delete(E.c[0], B, "k", r2.version_id, &wrong, &d, &had),
                    CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(rp_version_delete(E.c[0], B, "k", r2.version_id, &right, &d, &had), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[0], B, "k", &o), CM_OK);
    CU_ASSERT_EQUAL(rp_version_follow(E.c[0], B, &o), CM_OK);
    CU_ASSERT(o.nparts == 1 && o.parts[0].layout.blob[0] == 0x11);
    md_object_release(&o);
    CU_ASSERT_EQUAL(rp_version_get(E.c[0], B, "k", r2.version_id, &o), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(rp_version_delete(E.c[0], B, "k", r2.version_id, NULL, &d, &had), CM_OK);
    CU_ASSERT_EQUAL(had, 0); /* an unknown id deletes nothing */
    CU_ASSERT_EQUAL(rp_version_delete(E.c[0], B, "k", r2.version_id, &right, &d, &had),
                    CM_ERR_NOTFOUND);
    /* a suspended write replaces the null version (the copy of the plain record) */
    md_part p3;
    md_object v3 = body("k", 0x13, &p3);
    md_vres r3;
    CU_ASSERT_EQUAL(rp_version_put(E.c[1], B, &v3, 1, NULL, &r3), CM_OK);
    CU_ASSERT_STRING_EQUAL(r3.version_id, "null");
    CU_ASSERT_EQUAL_FATAL(rp_version_get(E.c[0], B, "k", "null", &o), CM_OK);
    CU_ASSERT(o.nparts == 1 && o.parts[0].layout.blob[0] == 0x13);
    md_object_release(&o);
    CU_ASSERT_EQUAL(listed(E.c[0], "k", ids, latest, 8), 2); /* null (latest), v1 */
    CU_ASSERT(latest[0] && strcmp(ids[0], "null") == 0 && strcmp(ids[1], r1.version_id) == 0);
    CU_ASSERT_EQUAL(rp_version_none(E.c[0], B), CM_ERR_CONFLICT);
    coords_free();
    for (int i = 0; i < NF; i++) {
        CU_ASSERT(garbage(i, 0x10)); /* the old null version's, destroyed by the suspended PUT */
        CU_ASSERT(!garbage(i, 0x11) && !garbage(i, 0x13)); /* kept versions: none */
    }
    env_down();
}

/* Two 1,024-byte keys of c that differ in their last byte only (both long-form version keys
 * with the same head). */
static void long_keys(char *k1, char *k2, char c)
{
    memset(k1, c, MD_MAX_KEY), k1[MD_MAX_KEY] = 0;
    memcpy(k2, k1, MD_MAX_KEY + 1);
    k2[MD_MAX_KEY - 1] = (char)(c + 1);
}

/* A 1,024-byte key (too long for the short version key: the long form, a hash of the key) has
 * versions as any other: two PUTs, listed, read and deleted by id, a marker; a second key with
 * the same first 1,000 bytes keeps its own; the version keys stay on the key's partition. */
static void test_long_key(void)
{
    env_up();
    char k1[MD_MAX_KEY + 1], k2[MD_MAX_KEY + 1], vk[MD_MAX_KEY + 1];
    long_keys(k1, k2, 'a');
    md_part p1, p2, p3;
    md_object v1 = body(k1, 0x21, &p1), v2 = body(k1, 0x22, &p2), w = body(k2, 0x23, &p3);
    md_vres r1, r2, rw, rm;
    CU_ASSERT_EQUAL_FATAL(rp_version_put(E.c[0], B, &v1, 0, NULL, &r1), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_version_put(E.c[1], B, &v2, 0, NULL, &r2), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_version_put(E.c[0], B, &w, 0, NULL, &rw), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_ver_key(k1, r1.version_id, vk, sizeof(vk)), CM_OK);
    CU_ASSERT(strlen(vk) <= MD_MAX_KEY);
    CU_ASSERT_EQUAL(md_shard_of((const uint8_t *)vk, strlen(vk), 4),
                    md_shard_of((const uint8_t *)k1, strlen(k1), 4));
    char ids[8][MD_VID_LEN + 1];
    int latest[8];
    CU_ASSERT_EQUAL_FATAL(listed(E.c[1], k1, ids, latest, 8), 2);
    CU_ASSERT(strcmp(ids[0], r2.version_id) == 0 && latest[0]);
    CU_ASSERT(strcmp(ids[1], r1.version_id) == 0 && !latest[1]);
    CU_ASSERT_EQUAL(listed(E.c[1], k2, ids, latest, 8), 1);
    md_object o;
    CU_ASSERT_EQUAL_FATAL(rp_version_get(E.c[1], B, k1, r1.version_id, &o), CM_OK);
    CU_ASSERT(o.nparts == 1 && o.parts[0].layout.blob[0] == 0x21 && strcmp(o.key, k1) == 0);
    md_object_release(&o);
    CU_ASSERT_EQUAL(rp_version_get(E.c[1], B, k2, r1.version_id, &o), CM_ERR_NOTFOUND);
    md_vres d;
    int had = 0;
    CU_ASSERT_EQUAL(rp_version_delete(E.c[0], B, k1, r2.version_id, NULL, &d, &had), CM_OK);
    CU_ASSERT(had);
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[1], B, k1, &o), CM_OK); /* v1 promoted */
    CU_ASSERT_EQUAL(rp_version_follow(E.c[1], B, &o), CM_OK);
    CU_ASSERT(o.nparts == 1 && o.parts[0].layout.blob[0] == 0x21);
    md_object_release(&o);
    CU_ASSERT_EQUAL(rp_version_mark(E.c[1], B, k1, 0, NULL, &rm), CM_OK);
    CU_ASSERT_EQUAL_FATAL(listed(E.c[0], k1, ids, latest, 8), 2);
    CU_ASSERT(strcmp(ids[0], rm.version_id) == 0 && latest[0]);
    CU_ASSERT_EQUAL(listed(E.c[0], k2, ids, latest, 8), 1); /* untouched */
    coords_free();
    for (int i = 0; i < NF; i++)
        CU_ASSERT(garbage(i, 0x22) && !garbage(i, 0x21) && !garbage(i, 0x23));
    env_down();
}

/* A PUT whose stamp was taken before a permanent delete of the key's last version, and whose
 * records are stored after that delete finished (its second look at the versions included): its
 * pointer loses to the delete's tombstone (stamped later), and the PUT points the key at its
 * version again: listed, the latest. */
static void test_put_after_delete(void)
{
    env_up();
    md_part p1, p2;
    md_object v1 = body("d", 0x31, &p1), v2 = body("d", 0x32, &p2);
    md_vres r1, r2, d;
    int had = 0;
    uint64_t hlc;
    uint32_t node;
    CU_ASSERT_EQUAL_FATAL(rp_version_put(E.c[0], B, &v1, 0, NULL, &r1), CM_OK);
    rp_stamp(E.c[0], &hlc, &node); /* the PUT's stamp (node 1) */
    /* node 2 (5 s ahead) deletes the only version: the key's record goes, nothing else listed */
    CU_ASSERT_EQUAL(rp_version_delete(E.c[1], B, "d", r1.version_id, NULL, &d, &had), CM_OK);
    CU_ASSERT(had);
    unsigned before = fake_gets(E.f, NF);
    CU_ASSERT_EQUAL_FATAL(rp_version_put_at(E.c[0], B, &v2, 0, hlc, node, &r2), CM_OK);
    CU_ASSERT(fake_gets(E.f, NF) >
              before); /* its pointer not applied: the key's record read after it */
    char ids[8][MD_VID_LEN + 1];
    int latest[8];
    CU_ASSERT_EQUAL_FATAL(listed(E.c[1], "d", ids, latest, 8), 1);
    CU_ASSERT(strcmp(ids[0], r2.version_id) == 0 && latest[0]);
    md_object o;
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[1], B, "d", &o), CM_OK);
    CU_ASSERT_EQUAL(rp_version_follow(E.c[1], B, &o), CM_OK);
    CU_ASSERT(o.nparts == 1 && o.parts[0].layout.blob[0] == 0x32);
    md_object_release(&o);
    /* a version whose pointer every home applied reads nothing after it */
    rp_stamp(E.c[0], &hlc, &node);
    before = fake_gets(E.f, NF);
    CU_ASSERT_EQUAL_FATAL(rp_version_put_at(E.c[0], B, &v1, 0, hlc, node, &r1), CM_OK);
    CU_ASSERT_EQUAL(fake_gets(E.f, NF), before);
    env_down();
}

/* Two suspended writes of one key racing: the older-stamped one's records are stored after the
 * newer one finished (its walk saw its own null version alone). The older one's walk removes its
 * own null version (the newer one's pointer names the newer): one null version is left, and the
 * body of the other becomes garbage. */
static void test_suspended_race(void)
{
    env_up();
    md_part p1, p2;
    md_object a = body("s", 0x41, &p1), b = body("s", 0x42, &p2);
    md_vres ra, rb;
    uint64_t hlc;
    uint32_t node;
    rp_stamp(E.c[0], &hlc, &node); /* write a takes its stamp first (node 1) */
    CU_ASSERT_EQUAL_FATAL(rp_version_put(E.c[1], B, &b, 1, NULL, &rb), CM_OK); /* newer, whole */
    CU_ASSERT_EQUAL_FATAL(rp_version_put_at(E.c[0], B, &a, 1, hlc, node, &ra), CM_OK);
    CU_ASSERT(strcmp(ra.version_id, "null") == 0 && strcmp(rb.version_id, "null") == 0);
    char ids[8][MD_VID_LEN + 1];
    int latest[8];
    CU_ASSERT_EQUAL_FATAL(listed(E.c[0], "s", ids, latest, 8), 1);
    CU_ASSERT(strcmp(ids[0], "null") == 0 && latest[0]);
    md_object o;
    CU_ASSERT_EQUAL_FATAL(rp_version_get(E.c[0], B, "s", "null", &o), CM_OK);
    CU_ASSERT(o.nparts == 1 && o.parts[0].layout.blob[0] == 0x42);
    md_object_release(&o);
    coords_free();
    for (int i = 0; i < NF; i++)
        CU_ASSERT(garbage(i, 0x41) && !garbage(i, 0x42));
    env_down();
}

/* A versioned write's pointer dominates the record from before versioning that it copied as the
 * null version (its vector includes that record's), so replicas tell such a record from one
 * stored after the versioned write read the key (md_rec_merge keeps that one as the null version
 * itself: test_meta_replica merge_unseen_plain). */
static void test_pointer_seen(void)
{
    env_up();
    md_part pp, pv;
    md_object plain = body("u", 0x51, &pp), v = body("u", 0x61, &pv), was, ptr;
    md_vres r;
    uint32_t shard = rp_shard_of("u", 4);
    CU_ASSERT_EQUAL_FATAL(rp_object_put(E.c[0], B, &plain, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL_FATAL(fake_rec(E.f[shard % NF], B, shard, "u", &was), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_version_put(E.c[1], B, &v, 0, NULL, &r), CM_OK);
    coords_free();
    CU_ASSERT_EQUAL_FATAL(fake_rec(E.f[shard % NF], B, shard, "u", &ptr), CM_OK);
    CU_ASSERT(rp_version_pointer(&ptr) && ptr.vstamp == ptr.hlc);
    CU_ASSERT_EQUAL(md_vv_compare(&ptr.vv, &was.vv), MD_VV_AFTER);
    md_object_release(&ptr);
    md_object_release(&was);
    env_down();
}

/* Pointers written at their versions' stamps: whatever order they land in, every home keeps the
 * newer, the one whose id sorts first; writes through a node with a slower clock still order after
 * what they read. */
static void test_order(void)
{
    env_up();
    md_part p;
    md_object v = body("r", 0, &p);
    md_vres a, b, c2;
    CU_ASSERT_EQUAL(rp_version_put(E.c[1], B, &v, 0, NULL, &a),
                    CM_OK); /* node 2: clock 5 s ahead */
    CU_ASSERT_EQUAL(rp_version_put(E.c[0], B, &v, 0, NULL, &b),
                    CM_OK); /* read a: stamped after it */
    CU_ASSERT(strcmp(b.version_id, a.version_id) < 0);
    md_object o;
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[1], B, "r", &o), CM_OK);
    CU_ASSERT_STRING_EQUAL(o.version_id, b.version_id);
    md_object_release(&o);
    /* two pointers of one key landing out of order: the larger stamp stays on every home */
    uint64_t s1, s2;
    uint32_t n1, n2;
    rp_stamp(E.c[0], &s1, &n1);
    rp_stamp(E.c[1], &s2, &n2); /* 5 s ahead: the newer */
    md_object late = {.key = "q", .hlc = s2, .hlc_node = n2, .vstamp = s2};
    md_object early = {.key = "q", .hlc = s1, .hlc_node = n1, .vstamp = s1};
    snprintf(late.version_id, sizeof(late.version_id), "late");
    snprintf(early.version_id, sizeof(early.version_id), "early");
    CU_ASSERT_EQUAL(rp_object_put_at(E.c[1], B, &late), CM_OK);
    CU_ASSERT_EQUAL(rp_object_put_at(E.c[0], B, &early), CM_OK);
    CU_ASSERT_EQUAL(rp_object_put_at(E.c[0], B, &late), CM_ERR_INVAL); /* not node 1's stamp */
    /* a version written without its pointer (a PUT whose second write failed): listed, not the
     * latest; the pointer's version stays the latest */
    uint64_t s3;
    uint32_t n3;
    char order[MD_VID_LEN + 1], vk[MD_MAX_KEY + 1];
    rp_stamp(E.c[1], &s3, &n3);
    uint8_t tail[8] = {0};
    md_vid_make(s3, tail, order);
    CU_ASSERT_EQUAL_FATAL(md_ver_key("r", order, vk, sizeof(vk)), CM_OK);
    md_object orphan = {.key = vk, .hlc = s3, .hlc_node = n3, .vstamp = s3};
    snprintf(orphan.version_id, sizeof(orphan.version_id), "%s", order);
    CU_ASSERT_EQUAL(rp_object_put_at(E.c[1], B, &orphan), CM_OK);
    char ids[8][MD_VID_LEN + 1];
    int latest[8];
    CU_ASSERT_EQUAL_FATAL(listed(E.c[0], "r", ids, latest, 8), 3);
    CU_ASSERT(strcmp(ids[0], order) == 0 && !latest[0]);
    CU_ASSERT(strcmp(ids[1], b.version_id) == 0 && latest[1]);
    CU_ASSERT_EQUAL(rp_version_get(E.c[0], B, "r", order, &o), CM_OK); /* readable by id */
    md_object_release(&o);
    CU_ASSERT_EQUAL(rp_version_put(E.c[0], B, &v, 0, NULL, &c2),
                    CM_OK); /* the next write: on top */
    CU_ASSERT_EQUAL(listed(E.c[1], "r", ids, latest, 8), 4);
    CU_ASSERT(strcmp(ids[0], c2.version_id) == 0 && latest[0]);
    coords_free();
    for (int i = 0; i < NF; i++) {
        md_object got;
        CU_ASSERT_EQUAL_FATAL(fake_rec(E.f[i], B, rp_shard_of("q", 4), "q", &got), CM_OK);
        CU_ASSERT_STRING_EQUAL(got.version_id, "late");
        md_object_release(&got);
    }
    env_down();
}

/* Conditional writes of versions: decided on the latest (a delete marker is no object) under the
 * key's lock, the version and its pointer written only when the condition holds; a version
 * stamped before the latest it would replace is refused (CM_ERR_CONFLICT), nothing written. */
static void test_conditional(void)
{
    env_up();
    md_part p;
    md_object v = body("c", 0, &p);
    md_cond none = {.if_none_match_star = 1}, match = {.if_match = "e00"},
            other = {.if_match = "nope"};
    md_vres a, b, m;
    CU_ASSERT_EQUAL(rp_version_put(E.c[0], B, &v, 0, &none, &a), CM_OK);
    CU_ASSERT_EQUAL(rp_version_put(E.c[1], B, &v, 0, &none, &b), CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(rp_version_put(E.c[1], B, &v, 0, &other, &b), CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(rp_version_put(E.c[1], B, &v, 0, &match, &b), CM_OK);
    md_vres sn;
    int had = 0;
    CU_ASSERT_EQUAL(rp_version_put(E.c[0], B, &v, 1, &none, &sn), CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(rp_version_put(E.c[0], B, &v, 1, &match, &sn), CM_OK); /* Suspended */
    CU_ASSERT_STRING_EQUAL(sn.version_id, "null");
    md_object nv;
    CU_ASSERT_EQUAL_FATAL(rp_version_get(E.c[1], B, "c", "null", &nv), CM_OK);
    CU_ASSERT(strcmp(nv.version_id, "null") == 0 && strcmp(nv.key, "c") == 0);
    md_object_release(&nv);
    CU_ASSERT_EQUAL(rp_version_delete(E.c[1], B, "c", "null", NULL, &sn, &had), CM_OK);
    CU_ASSERT_EQUAL(rp_version_mark(E.c[0], B, "c", 0, &match, &m), CM_OK);
    CU_ASSERT_EQUAL(rp_version_put(E.c[1], B, &v, 0, &none, &b), CM_OK); /* behind a marker */
    char ids[8][MD_VID_LEN + 1];
    int latest[8];
    CU_ASSERT_EQUAL_FATAL(listed(E.c[0], "c", ids, latest, 8), 4);
    CU_ASSERT(latest[0] && strcmp(ids[0], b.version_id) == 0 && strcmp(ids[1], m.version_id) == 0);
    /* stamped before the latest: refused by the leader, nothing written */
    uint64_t s;
    uint32_t n;
    char order[MD_VID_LEN + 1];
    rp_stamp(E.c[0], &s, &n);
    uint8_t tail[8] = {0};
    md_vid_make(s - (1ull << 30), tail, order);
    md_object old = v;
    snprintf(old.version_id, sizeof(old.version_id), "%s", order);
    old.vstamp = old.hlc = s - (1ull << 30), old.hlc_node = n;
    CU_ASSERT_EQUAL(rp_object_put(E.c[0], B, &old, &match, NULL, NULL), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(listed(E.c[1], "c", ids, latest, 8), 4);
    CU_ASSERT_EQUAL(rp_version_get(E.c[0], B, "c", order, &old), CM_ERR_NOTFOUND);
    env_down();
}

/* Version vid of key deletable under cond (rp_version_delete's answer), and still readable after
 * a refusal. */
static cm_err del_by_id(int node, const char *key, const char *vid, const md_cond *cond)
{
    md_vres d;
    int had = 0;
    cm_err e = rp_version_delete(E.c[node], B, key, vid, cond, &d, &had);
    md_object o;
    cm_err g = rp_version_get(E.c[1 - node], B, key, vid, &o);
    if (g == CM_OK)
        md_object_release(&o);
    CU_ASSERT(e == CM_OK ? had && g == CM_ERR_NOTFOUND : g == CM_OK);
    return e;
}

/* Object Lock: a delete by id with md_cond.unlocked, or of a version carrying a lock, refuses a
 * protected version (hold, COMPLIANCE, GOVERNANCE without bypass) before touching the pointer; a
 * hold written between the check and the delete (a swap of the version record) is caught by the
 * leader's check; a suspended write leaves a protected null version; expired and released ones go.
 */
static void test_lock(void)
{
    env_up();
    int64_t later = cm_now_ms() + 3600 * 1000;
    md_part p1, p2, p3, p4;
    md_object gov = body("l", 0x21, &p1), comp = body("l", 0x22, &p2), hold = body("l", 0x23, &p3),
              old = body("l", 0x24, &p4);
    gov.lock_mode = MD_LOCK_GOVERNANCE, gov.lock_until_ms = later;
    comp.lock_mode = MD_LOCK_COMPLIANCE, comp.lock_until_ms = later;
    hold.legal_hold = 1;
    old.lock_mode = MD_LOCK_COMPLIANCE, old.lock_until_ms = cm_now_ms() - 1; /* expired */
    md_vres rg, rc, rh, ro;
    CU_ASSERT_EQUAL(rp_version_put(E.c[0], B, &old, 0, NULL, &ro), CM_OK);
    CU_ASSERT_EQUAL(rp_version_put(E.c[0], B, &gov, 0, NULL, &rg), CM_OK);
    CU_ASSERT_EQUAL(rp_version_put(E.c[1], B, &comp, 0, NULL, &rc), CM_OK);
    CU_ASSERT_EQUAL(rp_version_put(E.c[0], B, &hold, 0, NULL, &rh), CM_OK);
    md_cond lock = {.unlocked = 1}, bypass = {.unlocked = 1, .bypass_governance = 1},
            lock_etag = {.unlocked = 1, .if_match = "e23"};
    CU_ASSERT_EQUAL(del_by_id(0, "l", rh.version_id, &lock), CM_ERR_LOCKED);
    /* a caller that does not know the bucket has lock: the version's own fields decide */
    CU_ASSERT_EQUAL(del_by_id(1, "l", rh.version_id, NULL), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(del_by_id(1, "l", rg.version_id, NULL), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(del_by_id(1, "l", rh.version_id, &bypass), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(del_by_id(1, "l", rh.version_id, &lock_etag), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(del_by_id(0, "l", rc.version_id, &bypass), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(del_by_id(1, "l", rg.version_id, &lock), CM_ERR_LOCKED);
    char ids[8][MD_VID_LEN + 1];
    int latest[8];
    CU_ASSERT_EQUAL_FATAL(listed(E.c[0], "l", ids, latest, 8), 4); /* the pointer untouched */
    CU_ASSERT(latest[0] && strcmp(ids[0], rh.version_id) == 0);
    CU_ASSERT_EQUAL(del_by_id(1, "l", rg.version_id, &bypass), CM_OK);
    CU_ASSERT_EQUAL(del_by_id(0, "l", ro.version_id, &lock), CM_OK); /* expired */
    /* a hold swapped into the version record after it was read: the leader refuses the delete */
    char vkey[MD_MAX_KEY + 1];
    md_object rec;
    CU_ASSERT_EQUAL_FATAL(md_ver_key("l", rc.version_id, vkey, sizeof(vkey)), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[1], B, vkey, &rec), CM_OK);
    rec.lock_mode = 0, rec.lock_until_ms = 0, rec.legal_hold = 1;
    CU_ASSERT_EQUAL(rp_object_swap(E.c[1], B, &rec), CM_OK);
    md_object_release(&rec);
    CU_ASSERT_EQUAL(rp_object_delete(E.c[0], B, vkey, &bypass, NULL, NULL), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(del_by_id(0, "l", rc.version_id, &bypass), CM_ERR_LOCKED);
    /* released: deletable */
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[0], B, vkey, &rec), CM_OK);
    rec.legal_hold = 0;
    CU_ASSERT_EQUAL(rp_object_swap(E.c[0], B, &rec), CM_OK);
    md_object_release(&rec);
    CU_ASSERT_EQUAL(del_by_id(1, "l", rc.version_id, &lock), CM_OK);
    /* a plain record from before versioning with a hold: its null version is protected too */
    md_part pp;
    md_object plain = body("q", 0x25, &pp);
    plain.legal_hold = 1;
    CU_ASSERT_EQUAL(rp_object_put(E.c[0], B, &plain, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(del_by_id(1, "q", "null", &lock), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(del_by_id(0, "q", "null", NULL), CM_ERR_LOCKED);
    /* suspended writes: the protected null version stays, an unprotected one goes */
    md_part ps1, ps2, ps3;
    md_object n1 = body("s", 0x26, &ps1), n2 = body("s", 0x27, &ps2), n3 = body("s", 0x28, &ps3);
    n1.legal_hold = 1;
    md_vres r;
    CU_ASSERT_EQUAL(rp_version_put(E.c[0], B, &n1, 1, NULL, &r), CM_OK);
    CU_ASSERT_EQUAL(rp_version_put(E.c[1], B, &n2, 1, NULL, &r), CM_OK);
    CU_ASSERT_EQUAL(listed(E.c[0], "s", ids, latest, 8), 2);
    CU_ASSERT_EQUAL(rp_version_put(E.c[1], B, &n3, 1, NULL, &r), CM_OK);
    CU_ASSERT_EQUAL(listed(E.c[0], "s", ids, latest, 8), 2); /* n3 and the protected n1 */
    /* retention and hold changed where the key's conditional writes run (md_cond.lock_change):
     * on the record read there, by the single node's rules, the version's stamp kept */
    md_part pk;
    md_object k = body("k", 0, &pk);
    md_vres rk;
    CU_ASSERT_EQUAL_FATAL(rp_version_put(E.c[0], B, &k, 0, NULL, &rk), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_ver_key("k", rk.version_id, vkey, sizeof(vkey)), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[0], B, vkey, &rec), CM_OK);
    uint64_t stamp = rec.hlc;
    md_object stale = rec; /* read before the changes below: a tag change's record */
    memset(&rec, 0, sizeof(rec));
    md_object ask = {.key = vkey, .lock_mode = MD_LOCK_COMPLIANCE, .lock_until_ms = later};
    md_cond ret = {.lock_change = MD_COND_LOCK_RETENTION},
            ret_bypass = {.lock_change = MD_COND_LOCK_RETENTION, .bypass_governance = 1},
            held = {.lock_change = MD_COND_LOCK_HOLD};
    CU_ASSERT_EQUAL(rp_object_put(E.c[1], B, &ask, &ret, NULL, NULL), CM_OK);
    ask.lock_mode = MD_LOCK_GOVERNANCE, ask.lock_until_ms = later + 1000; /* a downgrade */
    CU_ASSERT_EQUAL(rp_object_put(E.c[0], B, &ask, &ret_bypass, NULL, NULL), CM_ERR_LOCKED);
    ask.lock_mode = MD_LOCK_COMPLIANCE, ask.lock_until_ms = later - 1000; /* shorter */
    CU_ASSERT_EQUAL(rp_object_put(E.c[0], B, &ask, &ret, NULL, NULL), CM_ERR_LOCKED);
    ask.legal_hold = 1;
    CU_ASSERT_EQUAL(rp_object_put(E.c[0], B, &ask, &held, NULL, NULL), CM_OK); /* hold only */
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[1], B, vkey, &rec), CM_OK);
    CU_ASSERT(rec.lock_mode == MD_LOCK_COMPLIANCE && rec.lock_until_ms == later && rec.legal_hold);
    CU_ASSERT_EQUAL(rec.hlc, stamp);
    md_object_release(&rec);
    /* a tag change of the record read before those changes, through the leader: its tags land,
     * the retention and hold it carried (none) do not replace the ones the leader reads */
    md_meta tag = {"t", "1"};
    stale.tags = &tag, stale.ntags = 1;
    CU_ASSERT_EQUAL(rp_object_swap_keep_lock(E.c[1], B, &stale), CM_OK);
    stale.tags = NULL, stale.ntags = 0;
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[0], B, vkey, &rec), CM_OK);
    CU_ASSERT(rec.lock_mode == MD_LOCK_COMPLIANCE && rec.lock_until_ms == later && rec.legal_hold);
    CU_ASSERT(rec.ntags == 1 && strcmp(rec.tags[0].value, "1") == 0);
    CU_ASSERT_EQUAL(rec.hlc, stamp);
    md_object_release(&rec);
    md_object_release(&stale);
    /* a swap of a record the key no longer holds (a PUT replaced it): nothing written */
    md_part pz1, pz2;
    md_object z1 = body("z", 0, &pz1), z2 = body("z", 0, &pz2);
    z2.size = 4;
    CU_ASSERT_EQUAL_FATAL(rp_object_put(E.c[0], B, &z1, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[1], B, "z", &stale), CM_OK);
    snprintf(z2.etag, sizeof(z2.etag), "e-z2");
    CU_ASSERT_EQUAL_FATAL(rp_object_put(E.c[1], B, &z2, NULL, NULL, NULL), CM_OK);
    stale.tags = &tag, stale.ntags = 1;
    CU_ASSERT_EQUAL(rp_object_swap_keep_lock(E.c[0], B, &stale), CM_OK);
    stale.tags = NULL, stale.ntags = 0;
    md_object_release(&stale);
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[0], B, "z", &rec), CM_OK);
    CU_ASSERT(rec.ntags == 0 && rec.size == 4);
    md_object_release(&rec);
    ask.key = "k-none";
    CU_ASSERT_EQUAL(rp_object_put(E.c[0], B, &ask, &held, NULL, NULL), CM_ERR_NOTFOUND);
    coords_free();
    for (int i = 0; i < NF; i++) {
        CU_ASSERT(garbage(i, 0x21) && garbage(i, 0x22) && garbage(i, 0x24) && garbage(i, 0x27));
        CU_ASSERT(!garbage(i, 0x23) && !garbage(i, 0x25) && !garbage(i, 0x26));
    }
    env_down();
}

/* Three versions of key (bodies tag, tag + 1, tag + 2) put through both coordinators in turn:
 * their ids and their write times as stored. */
static void three_versions(const char *key, uint8_t tag, md_vres r[3], int64_t mt[3])
{
    for (int i = 0; i < 3; i++) {
        md_part p;
        md_object v = body(key, (uint8_t)(tag + i), &p), o;
        v.mtime_ms = 1000000 + i * 1000;
        CU_ASSERT_EQUAL_FATAL(rp_version_put(E.c[i % 2], B, &v, 0, NULL, &r[i]), CM_OK);
        CU_ASSERT_EQUAL_FATAL(rp_version_get(E.c[0], B, key, r[i].version_id, &o), CM_OK);
        mt[i] = o.mtime_ms;
        md_object_release(&o);
    }
}

/* The lifecycle's delete of a noncurrent version (md_cond.noncurrent): refused for the latest,
 * for a successor other than the one listed, with fewer newer versions than asked; and, sent
 * straight to the leader as rp_version_delete sends it, refused once a client's delete of the
 * latest made the version the latest again. */
static void test_noncurrent(void)
{
    env_up();
    md_vres r[3];
    int64_t mt[3];
    three_versions("n", 0x31, r, mt);
    md_cond latest = {.noncurrent = 1, .successor_ms = mt[2], .newer_min = 0},
            other = {.noncurrent = 1, .successor_ms = mt[2] + 1, .newer_min = 1},
            few = {.noncurrent = 1, .successor_ms = mt[1], .newer_min = 3},
            v2 = {.noncurrent = 1, .successor_ms = mt[2], .newer_min = 1},
            v1 = {.noncurrent = 1, .successor_ms = mt[1], .newer_min = 2};
    CU_ASSERT_EQUAL(del_by_id(0, "n", r[2].version_id, &latest), CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(del_by_id(1, "n", r[1].version_id, &other), CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(del_by_id(0, "n", r[0].version_id, &few), CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(del_by_id(1, "n", r[0].version_id, &v1), CM_OK);
    /* listed noncurrent, then a client deletes the latest: v2 is the latest, the leader refuses */
    CU_ASSERT_EQUAL(del_by_id(0, "n", r[2].version_id, NULL), CM_OK);
    char vkey[MD_MAX_KEY + 1];
    CU_ASSERT_EQUAL_FATAL(md_ver_key("n", r[1].version_id, vkey, sizeof(vkey)), CM_OK);
    CU_ASSERT_EQUAL(rp_object_delete(E.c[1], B, vkey, &v2, NULL, NULL), CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(del_by_id(0, "n", r[1].version_id, &v2), CM_ERR_PRECONDITION);
    char ids[8][MD_VID_LEN + 1];
    int lat[8];
    CU_ASSERT_EQUAL(listed(E.c[0], "n", ids, lat, 8), 1);
    CU_ASSERT(lat[0] && strcmp(ids[0], r[1].version_id) == 0);
    coords_free();
    env_down();
}

/* The same for a 1,024-byte key (its version keys the long form, which does not hold the key):
 * the leader checks it with the key the condition carries (md_cond.noncurrent_key), and refuses
 * one the version key does not belong to (a key with the same head, a short key). */
static void test_long_noncurrent(void)
{
    env_up();
    char k1[MD_MAX_KEY + 1], k2[MD_MAX_KEY + 1], vkey[MD_MAX_KEY + 1];
    long_keys(k1, k2, 'l');
    md_vres r[3];
    int64_t mt[3];
    three_versions(k1, 0x41, r, mt);
    md_cond v1 = {.noncurrent = 1, .successor_ms = mt[1], .newer_min = 2},
            v2 = {.noncurrent = 1, .successor_ms = mt[2], .newer_min = 1};
    /* through rp_version_delete: checked here, then by the leader */
    CU_ASSERT_EQUAL(del_by_id(1, k1, r[0].version_id, &v1), CM_OK);
    /* straight to the leader: another key's name, or none, keeps the version */
    CU_ASSERT_EQUAL_FATAL(md_ver_key(k1, r[1].version_id, vkey, sizeof(vkey)), CM_OK);
    const char *names[] = {k2, "l", NULL};
    for (int i = 0; i < 3; i++) {
        v2.noncurrent_key = names[i];
        CU_ASSERT_EQUAL(rp_object_delete(E.c[0], B, vkey, &v2, NULL, NULL), CM_ERR_PRECONDITION);
    }
    md_object o;
    CU_ASSERT_EQUAL_FATAL(rp_version_get(E.c[1], B, k1, r[1].version_id, &o), CM_OK);
    md_object_release(&o);
    v2.noncurrent_key = k1;
    CU_ASSERT_EQUAL(rp_object_delete(E.c[0], B, vkey, &v2, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(rp_version_get(E.c[1], B, k1, r[1].version_id, &o), CM_ERR_NOTFOUND);
    char ids[8][MD_VID_LEN + 1];
    int lat[8];
    CU_ASSERT_EQUAL(listed(E.c[0], k1, ids, lat, 8), 1);
    CU_ASSERT(lat[0] && strcmp(ids[0], r[2].version_id) == 0);
    coords_free();
    env_down();
}

/* ---- races decided by the leader ---- */

/* The leader plug of the tests below: both coordinators hand their conditional writes to
 * coordinator 0 (the partition's leader); a write of key race_key first has a COMPLIANCE
 * retention until race_until set on that key (once), as a client's change that reaches the
 * leader just before it. */
static const char *race_key;
static int raced;
static int64_t race_until;

/* A COMPLIANCE retention of key until race_until, through the leader. */
static void retain(const char *key)
{
    md_object ask = {
        .key = (char *)key, .lock_mode = MD_LOCK_COMPLIANCE, .lock_until_ms = race_until};
    md_cond ret = {.lock_change = MD_COND_LOCK_RETENTION};
    CU_ASSERT_EQUAL(rp_object_put(E.c[1], B, &ask, &ret, NULL, NULL), CM_OK);
}

static cm_err lead_run(void *arg, rp *c, const rp_part *p, const rp_cond_write *w)
{
    (void)arg, (void)c, (void)p;
    if (race_key && strcmp(w->key, race_key) == 0) {
        race_key = NULL;
        retain(w->key);
        raced++;
    }
    return rp_cond_execute(E.c[0], w);
}

static void coords_lead(void)
{
    coords_free();
    for (int i = 0; i < 2; i++) {
        rp_config cfg = {.base = E.base,
                         .router = E.rt,
                         .route = fake_route,
                         .clock = &E.clk[i],
                         .node = (uint32_t)i + 1,
                         .nshards = 4,
                         .timeout_ms = 2000,
                         .cond_run = lead_run};
        CU_ASSERT_EQUAL_FATAL(rp_new(&cfg, &E.c[i]), CM_OK);
    }
    race_key = NULL, raced = 0;
    race_until = cm_now_ms() + 3600 * 1000;
}

/* The repair's layout swap (rp_object_swap_layout) of a record read before a retention change
 * the leader decided: the healed layout lands and the retention stays. A swap from a layout the
 * record no longer names, of a part it does not have, or of a key deleted, writes nothing. */
static void test_heal_swap(void)
{
    env_up();
    coords_lead();
    md_part pp;
    md_object plain = body("h", 0x41, &pp), rd, got;
    CU_ASSERT_EQUAL_FATAL(rp_object_put(E.c[0], B, &plain, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[0], B, "h", &rd), CM_OK); /* the repair's read */
    md_layout old = rd.parts[0].layout, healed = old;
    healed.drives[0] = 7, healed.nodes[0] = 2;
    retain("h"); /* between the repair's read and its swap */
    rd.parts[0].layout = healed;
    CU_ASSERT_EQUAL(rp_object_swap_layout(E.c[0], B, &rd, 0, &old), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[1], B, "h", &got), CM_OK);
    CU_ASSERT(got.lock_mode == MD_LOCK_COMPLIANCE && got.lock_until_ms == race_until);
    CU_ASSERT(got.nparts == 1 && md_layout_same_cells(&got.parts[0].layout, &healed));
    CU_ASSERT_EQUAL(got.hlc, rd.hlc); /* the version keeps its stamp */
    md_object_release(&got);
    /* a second heal from the layout already replaced; a part the record lacks; a wrong size */
    md_layout again = healed;
    again.drives[1] = 9;
    rd.parts[0].layout = again;
    CU_ASSERT_EQUAL(rp_object_swap_layout(E.c[1], B, &rd, 0, &old), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(rp_object_swap_layout(E.c[1], B, &rd, 1, &old), CM_ERR_CONFLICT);
    rd.parts[0].layout.size++;
    CU_ASSERT_EQUAL(rp_object_swap_layout(E.c[1], B, &rd, 0, &healed), CM_ERR_INVAL);
    rd.parts[0].layout = again;
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[1], B, "h", &got), CM_OK);
    CU_ASSERT(md_layout_same_cells(&got.parts[0].layout, &healed));
    CU_ASSERT(got.lock_mode == MD_LOCK_COMPLIANCE && got.lock_until_ms == race_until);
    md_object_release(&got);
    /* the key deleted meanwhile: nothing written, the tombstone stays */
    CU_ASSERT_EQUAL_FATAL(rp_object_delete(E.c[0], B, "h", NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(rp_object_swap_layout(E.c[1], B, &rd, 0, &healed), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(rp_object_get(E.c[0], B, "h", &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(raced, 0);
    md_object_release(&rd);
    env_down();
}

/* The key's record is a plain one (from before versioning: the null version) in a bucket that
 * got Object Lock later, deleted by id: a retention set on it after the delete's read reaches the
 * leader first, which refuses to replace the record (CM_ERR_LOCKED), whether the key has no other
 * version (the record deleted) or has one (the record replaced by a pointer to it). Unprotected,
 * both go through. */
static void test_null_leader(void)
{
    env_up();
    coords_lead();
    md_part pp[4], pv[2];
    md_object plain[4] = {body("p", 0x51, &pp[0]), body("q", 0x52, &pp[1]), body("r", 0x53, &pp[2]),
                          body("s", 0x54, &pp[3])};
    md_object v[2] = {body("r", 0x55, &pv[0]), body("s", 0x56, &pv[1])};
    md_vres vr[2], d;
    /* r and s: a version, then a plain record over the pointer (K plain, a version beside it) */
    for (int i = 0; i < 2; i++)
        CU_ASSERT_EQUAL_FATAL(rp_version_put(E.c[0], B, &v[i], 0, NULL, &vr[i]), CM_OK);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL_FATAL(rp_object_put(E.c[0], B, &plain[i], NULL, NULL, NULL), CM_OK);
    md_cond lock = {.unlocked = 1};
    md_object got;
    int had;
    for (int i = 0; i < 4; i += 2) {
        race_key = plain[i].key; /* the retention lands between the read and the leader */
        CU_ASSERT_EQUAL(rp_version_delete(E.c[1], B, plain[i].key, "null", &lock, &d, &had),
                        CM_ERR_LOCKED);
        CU_ASSERT_EQUAL(raced, i / 2 + 1);
        CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[0], B, plain[i].key, &got), CM_OK);
        CU_ASSERT(!rp_version_pointer(&got) && got.nparts == 1 &&
                  got.parts[0].layout.blob[0] == plain[i].parts[0].layout.blob[0]);
        CU_ASSERT(got.lock_mode == MD_LOCK_COMPLIANCE && got.lock_until_ms == race_until);
        md_object_release(&got);
        /* unprotected: the null version goes */
        CU_ASSERT_EQUAL(rp_version_delete(E.c[1], B, plain[i + 1].key, "null", &lock, &d, &had),
                        CM_OK);
        CU_ASSERT(had);
    }
    CU_ASSERT_EQUAL(rp_object_get(E.c[0], B, "q", &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[0], B, "s", &got), CM_OK);
    CU_ASSERT(rp_version_pointer(&got) && strcmp(got.version_id, vr[1].version_id) == 0);
    md_object_release(&got);
    env_down();
}

/* ---- a flood of retention changes of one version through four nodes ---- */

#define FLOOD_NODES 4
#define FLOOD_EACH 25

typedef struct {
    rp *c;
    const char *vkey;
    int64_t base;
    int t;
    int64_t acked;   /* the longest retention answered CM_OK */
    int64_t refused; /* the longest answered CM_ERR_LOCKED */
    int other;       /* answers that are neither */
} flooder;

static void *flood(void *arg)
{
    flooder *f = arg;
    md_cond ret = {.lock_change = MD_COND_LOCK_RETENTION};
    for (int j = 0; j < FLOOD_EACH; j++) {
        /* every node's values interleave with the others': many arrive shorter than the last */
        int64_t until = f->base + (int64_t)(j * FLOOD_NODES + (FLOOD_NODES - 1 - f->t)) * 1000;
        md_object ask = {
            .key = (char *)f->vkey, .lock_mode = MD_LOCK_COMPLIANCE, .lock_until_ms = until};
        cm_err e = rp_object_put(f->c, B, &ask, &ret, NULL, NULL);
        if (e == CM_OK)
            f->acked = CM_MAX(f->acked, until);
        else if (e == CM_ERR_LOCKED)
            f->refused = CM_MAX(f->refused, until);
        else
            f->other++;
    }
    return NULL;
}

/* COMPLIANCE retention changes of one version, from four nodes at once, all decided by the
 * leader: every change is answered (200, or 403 for one shorter than the stored), the stored
 * retention is the longest acknowledged one, every refused one is shorter than it, and the
 * version keeps its stamp. */
static void test_flood(void)
{
    env_up();
    coords_lead();
    md_hlc clk[2];
    rp *more[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        md_hlc_init(&clk[i], (uint32_t)i + 3, NULL, NULL);
        rp_config cfg = {.base = E.base,
                         .router = E.rt,
                         .route = fake_route,
                         .clock = &clk[i],
                         .node = (uint32_t)i + 3,
                         .nshards = 4,
                         .timeout_ms = 2000,
                         .cond_run = lead_run};
        CU_ASSERT_EQUAL_FATAL(rp_new(&cfg, &more[i]), CM_OK);
    }
    md_part pf;
    md_object f = body("f", 0x61, &pf), rec;
    md_vres rf;
    char vkey[MD_MAX_KEY + 1];
    CU_ASSERT_EQUAL_FATAL(rp_version_put(E.c[0], B, &f, 0, NULL, &rf), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_ver_key("f", rf.version_id, vkey, sizeof(vkey)), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[0], B, vkey, &rec), CM_OK);
    uint64_t stamp = rec.hlc;
    md_object_release(&rec);
    rp *cs[FLOOD_NODES] = {E.c[0], E.c[1], more[0], more[1]};
    flooder fl[FLOOD_NODES];
    pthread_t th[FLOOD_NODES];
    int64_t base = cm_now_ms() + 3600 * 1000, t0 = cm_monotonic_ms();
    for (int i = 0; i < FLOOD_NODES; i++) {
        fl[i] = (flooder){.c = cs[i], .vkey = vkey, .base = base, .t = i};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, flood, &fl[i]), 0);
    }
    int64_t acked = 0, refused = 0;
    int other = 0;
    for (int i = 0; i < FLOOD_NODES; i++) {
        pthread_join(th[i], NULL);
        acked = CM_MAX(acked, fl[i].acked), refused = CM_MAX(refused, fl[i].refused);
        other += fl[i].other;
    }
    CU_ASSERT(cm_monotonic_ms() - t0 < 30000);
    CU_ASSERT_EQUAL(other, 0);
    CU_ASSERT(acked > 0 && refused < acked);
    CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c[1], B, vkey, &rec), CM_OK);
    CU_ASSERT(rec.lock_mode == MD_LOCK_COMPLIANCE && rec.lock_until_ms == acked);
    CU_ASSERT_EQUAL(rec.hlc, stamp);
    md_object_release(&rec);
    for (int i = 0; i < 2; i++) {
        rp_free(more[i]);
        md_hlc_release(&clk[i]);
    }
    env_down();
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"a key's versions, markers, deletes and a suspended write", test_life},
        {"a 1,024-byte key has versions", test_long_key},
        {"a PUT stored after a permanent delete's second look is listed", test_put_after_delete},
        {"two racing suspended writes leave one null version", test_suspended_race},
        {"a pointer dominates the record it copied as null", test_pointer_seen},
        {"pointers resolve in the order of version ids", test_order},
        {"conditional writes of versions", test_conditional},
        {"object lock refuses deletes of protected versions", test_lock},
        {"a noncurrent version's delete is conditioned on its place", test_noncurrent},
        {"a 1,024-byte key's noncurrent version is deleted via the leader", test_long_noncurrent},
        {"the repair's layout swap keeps a retention set since its read", test_heal_swap},
        {"a plain null version's delete is checked by the leader", test_null_leader},
        {"a flood of retention changes through four nodes", test_flood},
        {NULL, NULL},
    };
    cu_add_suite("repl_version", tests);
}
