/*
 * test_meta_replica.c - what meta/ offers a partition replica (md_replica.c): the merge-put
 * (older refused, newer applied, concurrent by hlc, the same version again, garbage for the
 * loser's bodies, unknown bucket), the filtered page of summaries (prefix, after, filter, max),
 * filtered Merkle trees and leaf keys, the hint store and the digest entry codec; the layout
 * guard of a replica write and the Merkle read ordered after queued writes (layout_guard).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "cu_hold.h"
#include "cu_main.h"
#include "md.h"

static md_store *open_store(const char *name)
{
    char dir[512];
    md_store *md = NULL;
    snprintf(dir, sizeof(dir), "%s/%s", cu_tmpdir(), name);
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 26, &md), CM_OK);
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "b");
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK);
    return md;
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

static size_t garbage_count(md_store *md, uint8_t blob)
{
    md_garbage *g;
    size_t n, hits = 0;
    CU_ASSERT_EQUAL(md_garbage_list(md, UINT64_MAX, 1000, &g, &n), CM_OK);
    for (size_t i = 0; i < n; i++)
        hits += g[i].layout.blob[0] == blob;
    md_garbage_free(g, n);
    return hits;
}

static void test_merge(void)
{
    md_store *md = open_store("merge");
    md_part pa = stored_part(0xA), pb = stored_part(0xB), pc = stored_part(0xC);
    md_object a = {
        .key = "k", .hlc = MD_HLC_MAKE(2000, 0), .hlc_node = 1, .parts = &pa, .nparts = 1};
    md_vv_increment(&a.vv, 1, a.hlc);
    int applied = -1;
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &a, &applied), CM_OK);
    CU_ASSERT_EQUAL(applied, 1);
    /* The same version again: applied, nothing written (no commit). */
    md_stats st0, st1;
    md_stats_get(md, &st0);
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &a, &applied), CM_OK);
    CU_ASSERT_EQUAL(applied, 1);
    md_stats_get(md, &st1);
    CU_ASSERT_EQUAL(st1.commits, st0.commits);
    /* An older version (its vector is before a's) is refused; its body becomes garbage. */
    md_object old = {
        .key = "k", .hlc = MD_HLC_MAKE(3000, 0), .hlc_node = 1, .parts = &pb, .nparts = 1};
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &old, &applied), CM_OK);
    CU_ASSERT_EQUAL(applied, 0);
    CU_ASSERT_EQUAL(garbage_count(md, 0xB), 1);
    CU_ASSERT_EQUAL(garbage_count(md, 0xA), 0);
    md_object got;
    CU_ASSERT_EQUAL_FATAL(md_rec_get(md, "b", "k", &got), CM_OK);
    CU_ASSERT_EQUAL(got.hlc, a.hlc);
    md_object_release(&got);
    /* A causally newer version is applied; the replaced body becomes garbage. */
    md_object n1 = {.key = "k",
                    .hlc = MD_HLC_MAKE(1000, 0),
                    .hlc_node = 2,
                    .vv = a.vv,
                    .parts = &pc,
                    .nparts = 1};
    md_vv_increment(&n1.vv, 2, n1.hlc);
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &n1, &applied), CM_OK);
    CU_ASSERT_EQUAL(applied, 1);
    CU_ASSERT_EQUAL(garbage_count(md, 0xA), 1);
    CU_ASSERT_EQUAL_FATAL(md_rec_get(md, "b", "k", &got), CM_OK);
    CU_ASSERT_EQUAL(got.hlc_node, 2);
    CU_ASSERT_EQUAL(got.generation, 2);
    md_object_release(&got);
    /* Concurrent: the larger hlc wins, whichever arrives first; a tombstone takes part. */
    md_object c1 = {.key = "c", .hlc = MD_HLC_MAKE(5000, 0), .hlc_node = 1};
    md_object c2 = {.key = "c", .hlc = MD_HLC_MAKE(6000, 0), .hlc_node = 2, .tombstone = 1};
    md_vv_increment(&c1.vv, 1, c1.hlc);
    md_vv_increment(&c2.vv, 2, c2.hlc);
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &c2, &applied), CM_OK);
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &c1, &applied), CM_OK);
    CU_ASSERT_EQUAL(applied, 0);
    CU_ASSERT_EQUAL_FATAL(md_rec_get(md, "b", "c", &got), CM_OK);
    CU_ASSERT_EQUAL(got.tombstone, 1);
    md_object_release(&got);
    CU_ASSERT_EQUAL(md_object_get(md, "b", "c", &got), CM_ERR_NOTFOUND);
    /* Unknown bucket, no key. */
    CU_ASSERT_EQUAL(md_rec_merge(md, "nope", &a, &applied), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(applied, 0);
    md_object nokey = {0};
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &nokey, &applied), CM_ERR_INVAL);
    md_close(md);
}

/* Versioning on a cluster (docs/versioning.md, "On a cluster"): a key's record that points to a
 * version (vstamp set, no body) replacing a plain record, or losing to one, makes no garbage: the
 * body is the null version's now. A plain record replacing a plain one still does. */
static void test_merge_version_pointer(void)
{
    md_store *md = open_store("vpointer");
    md_part pa = stored_part(0x1A), pb = stored_part(0x1B);
    md_object plain = {
        .key = "v", .hlc = MD_HLC_MAKE(2000, 0), .hlc_node = 1, .parts = &pa, .nparts = 1};
    md_vv_increment(&plain.vv, 1, plain.hlc);
    int applied = -1;
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &plain, &applied), CM_OK);
    md_object ptr = {.key = "v", .hlc = MD_HLC_MAKE(3000, 0), .hlc_node = 2, .vstamp = 7};
    md_vv_increment(&ptr.vv, 2, ptr.hlc);
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &ptr, &applied), CM_OK);
    CU_ASSERT_EQUAL(applied, 1);
    CU_ASSERT_EQUAL(garbage_count(md, 0x1A), 0);
    /* the plain record again (a late read repair): it loses, and its body is no garbage */
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &plain, &applied), CM_OK);
    CU_ASSERT_EQUAL(applied, 0);
    CU_ASSERT_EQUAL(garbage_count(md, 0x1A), 0);
    /* a plain record replacing a plain one: garbage as before */
    md_object p1 = {
        .key = "w", .hlc = MD_HLC_MAKE(2000, 0), .hlc_node = 1, .parts = &pa, .nparts = 1};
    md_object p2 = {
        .key = "w", .hlc = MD_HLC_MAKE(2500, 0), .hlc_node = 2, .parts = &pb, .nparts = 1};
    md_vv_increment(&p1.vv, 1, p1.hlc);
    md_vv_increment(&p2.vv, 2, p2.hlc);
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &p1, &applied), CM_OK);
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &p2, &applied), CM_OK);
    CU_ASSERT_EQUAL(garbage_count(md, 0x1A), 1);
    /* a version record (reserved key) is no pointer: its tombstone makes its body garbage */
    char vk[MD_MAX_KEY + 1];
    CU_ASSERT_EQUAL_FATAL(md_ver_key("v", "00000000000000000000000000000001", vk, sizeof(vk)),
                          CM_OK);
    md_object ver = {.key = vk,
                     .hlc = MD_HLC_MAKE(2000, 0),
                     .hlc_node = 1,
                     .vstamp = 7,
                     .parts = &pb,
                     .nparts = 1};
    md_vv_increment(&ver.vv, 1, ver.hlc);
    md_object tomb = {.key = vk, .hlc = MD_HLC_MAKE(4000, 0), .hlc_node = 1, .tombstone = 1};
    tomb.vv = ver.vv;
    md_vv_increment(&tomb.vv, 1, tomb.hlc);
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &ver, &applied), CM_OK);
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &tomb, &applied), CM_OK);
    CU_ASSERT_EQUAL(garbage_count(md, 0x1B), 1);
    md_close(md);
}

/* The null copy of plain in md (md_ver_null_key): 1 with its body blob and id when stored (hlc
 * into *hlc), 0 when absent. */
static int null_copy(md_store *md, const md_object *plain, uint8_t blob, uint64_t *hlc)
{
    char vk[MD_MAX_KEY + 1];
    md_object o;
    CU_ASSERT_EQUAL_FATAL(md_ver_null_key(plain, vk, sizeof(vk)), CM_OK);
    if (md_rec_get(md, "b", vk, &o) != CM_OK)
        return 0;
    int ok = o.nparts == 1 && o.parts[0].layout.blob[0] == blob &&
             strcmp(o.version_id, "null") == 0 && o.vstamp == plain->hlc && !o.tombstone;
    *hlc = o.hlc;
    md_object_release(&o);
    return ok;
}

/* A new version's pointer (vstamp = hlc) meeting a plain record its writer did not see (vectors
 * not ordered): replaced by it or beating it, the plain record is kept as the key's null version,
 * its body no garbage; not when the pointer saw it (the writer copied it), nor over a copy there.
 */
static void test_merge_unseen_plain(void)
{
    md_store *md = open_store("unseen");
    const char *keys[] = {"p1", "p2", "p3", "p4"};
    uint64_t hlc = 0;
    int applied = -1;
    for (int round = 0; round < 4; round++) {
        md_part pa = stored_part((uint8_t)(0x40 + round));
        md_object plain = {.key = (char *)keys[round],
                           .hlc = MD_HLC_MAKE(2000, 0),
                           .hlc_node = 1,
                           .parts = &pa,
                           .nparts = 1};
        md_vv_increment(&plain.vv, 1, plain.hlc);
        md_object ptr = {.key = (char *)keys[round], .hlc = MD_HLC_MAKE(3000, 0), .hlc_node = 2};
        ptr.vstamp = ptr.hlc;
        if (round == 2)
            ptr.vv = plain.vv; /* the writer saw it (and copied it) */
        md_vv_increment(&ptr.vv, 2, ptr.hlc);
        if (round == 3) { /* the writer's copy is there: kept as it is */
            char vk[MD_MAX_KEY + 1];
            CU_ASSERT_EQUAL_FATAL(md_ver_null_key(&plain, vk, sizeof(vk)), CM_OK);
            md_object copy = plain;
            copy.key = vk, copy.vstamp = plain.hlc, copy.hlc = MD_HLC_MAKE(2900, 0);
            copy.hlc_node = 2;
            memset(&copy.vv, 0, sizeof(copy.vv));
            md_vv_increment(&copy.vv, 2, copy.hlc);
            snprintf(copy.version_id, sizeof(copy.version_id), "null");
            CU_ASSERT_EQUAL(md_rec_merge(md, "b", &copy, &applied), CM_OK);
        }
        const md_object *first = round == 1 ? &ptr : &plain, *second = round == 1 ? &plain : &ptr;
        CU_ASSERT_EQUAL(md_rec_merge(md, "b", first, &applied), CM_OK);
        CU_ASSERT_EQUAL(md_rec_merge(md, "b", second, &applied), CM_OK);
        CU_ASSERT_EQUAL(applied, round == 1 ? 0 : 1);
        CU_ASSERT_EQUAL(garbage_count(md, (uint8_t)(0x40 + round)), 0);
        CU_ASSERT_EQUAL(null_copy(md, &plain, (uint8_t)(0x40 + round), &hlc), round != 2);
        if (round == 3)
            CU_ASSERT_EQUAL(hlc, MD_HLC_MAKE(2900, 0));
        if (round < 2)
            CU_ASSERT_EQUAL(hlc, plain.hlc);
    }
    md_close(md);
}

/* Version keys: in the shard of their object key, a key's versions after its escaped key and
 * before the next key's, split back into key and order id; malformed ones refused. */
static void test_version_keys(void)
{
    char k1[MD_MAX_KEY + 1], k2[MD_MAX_KEY + 1], k3[MD_MAX_KEY + 1], pre[MD_MAX_KEY + 1];
    char key[MD_MAX_KEY + 1], order[MD_MPU_ID_LEN + 1];
    const char *newer = "0000000000000000aaaaaaaaaaaaaaaa",
               *older = "1000000000000000aaaaaaaaaaaaaaaa";
    CU_ASSERT_EQUAL_FATAL(md_ver_key("a/b\x01"
                                     "c",
                                     newer, k1, sizeof(k1)),
                          CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_ver_key("a/b\x01"
                                     "c",
                                     older, k2, sizeof(k2)),
                          CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_ver_key("a/b\x01"
                                     "c0",
                                     newer, k3, sizeof(k3)),
                          CM_OK);
    CU_ASSERT(strcmp(k1, k2) < 0 && strcmp(k2, k3) < 0);
    CU_ASSERT_EQUAL((uint8_t)k1[0], MD_MPU_MARK);
    for (uint32_t n = 2; n <= 16; n *= 2)
        CU_ASSERT_EQUAL(md_shard_of((const uint8_t *)k1, strlen(k1), n),
                        md_shard_of((const uint8_t *)"a/b\x01"
                                                     "c",
                                    5, n));
    CU_ASSERT_EQUAL(md_ver_split(k2, key, order), CM_OK);
    CU_ASSERT_STRING_EQUAL(key, "a/b\x01"
                                "c");
    CU_ASSERT_STRING_EQUAL(order, older);
    CU_ASSERT_EQUAL(md_ver_prefix("a/", pre, sizeof(pre)), CM_OK);
    CU_ASSERT(strncmp(k1, pre, strlen(pre)) == 0);
    CU_ASSERT_EQUAL(md_ver_key("k", "null", k1, sizeof(k1)), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(md_ver_key("", newer, k1, sizeof(k1)), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(md_mpu_upload_split(k2, key, order), CM_ERR_CORRUPT); /* not an upload */
    /* Long keys (1,024 bytes; all 01 bytes, twice as long escaped): the long form, within
     * MD_MAX_KEY, in the key's shard, under md_ver_key_prefix, one per key; no key in it. */
    char l1[MD_MAX_KEY + 1], l2[MD_MAX_KEY + 1];
    memset(l1, 'x', MD_MAX_KEY), l1[MD_MAX_KEY] = 0;
    memcpy(l2, l1, sizeof(l1));
    l2[MD_MAX_KEY - 1] = 'y';
    for (int round = 0; round < 2; round++) {
        if (round)
            memset(l1, 0x01, MD_MAX_KEY), memset(l2, 0x01, MD_MAX_KEY - 1);
        CU_ASSERT_EQUAL_FATAL(md_ver_key(l1, newer, k1, sizeof(k1)), CM_OK);
        CU_ASSERT_EQUAL_FATAL(md_ver_key(l2, newer, k2, sizeof(k2)), CM_OK);
        CU_ASSERT_EQUAL_FATAL(md_ver_key(l1, older, k3, sizeof(k3)), CM_OK);
        CU_ASSERT(strlen(k1) <= MD_MAX_KEY && strcmp(k1, k2) != 0 && strcmp(k1, k3) < 0);
        CU_ASSERT_EQUAL_FATAL(md_ver_key_prefix(l1, pre, sizeof(pre)), CM_OK);
        CU_ASSERT(strncmp(k1, pre, strlen(pre)) == 0 && strncmp(k2, pre, strlen(pre)) != 0);
        CU_ASSERT_STRING_EQUAL(k1 + strlen(pre), newer);
        for (uint32_t n = 2; n <= 16; n *= 2)
            CU_ASSERT_EQUAL(md_shard_of((const uint8_t *)k1, strlen(k1), n),
                            md_shard_of((const uint8_t *)l1, strlen(l1), n));
        CU_ASSERT_EQUAL(md_ver_split(k1, key, order), CM_ERR_CORRUPT);
    }
    /* the short form's prefix for a short key, unchanged */
    CU_ASSERT_EQUAL(md_ver_key_prefix("k", pre, sizeof(pre)), CM_OK);
    CU_ASSERT_EQUAL(memcmp(pre,
                           "\xff"
                           "vk\x01\x01",
                           6),
                    0);
}

/* Keys whose last character is an even digit. */
static int even_key(void *arg, const uint8_t *key, size_t klen)
{
    (void)arg;
    return klen > 0 && (key[klen - 1] - '0') % 2 == 0;
}

static void put_key(md_store *md, const char *key, uint64_t hlc)
{
    md_object o = {.key = (char *)key, .hlc = hlc, .hlc_node = 1, .size = 7};
    snprintf(o.etag, sizeof(o.etag), "e-%s", key);
    int applied;
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &o, &applied), CM_OK);
}

static void test_scan(void)
{
    md_store *md = open_store("scan");
    char key[32];
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "%s/%02d", i < 20 ? "p" : "q", i);
        put_key(md, key, MD_HLC_MAKE(1000 + i, 0));
    }
    put_key(md, "a0", MD_HLC_MAKE(1, 0));
    /* prefix p/, even keys only, pages of 3: p/00 p/02 ... p/18 */
    char after[32] = "";
    int pages = 0, seen = 0, truncated = 1;
    while (truncated) {
        md_object *o;
        size_t n;
        CU_ASSERT_EQUAL_FATAL(md_rec_scan(md, "b", "p/", after[0] ? after : NULL, even_key, NULL, 3,
                                          &o, &n, &truncated),
                              CM_OK);
        for (size_t i = 0; i < n; i++) {
            snprintf(key, sizeof(key), "p/%02d", seen * 2);
            CU_ASSERT_STRING_EQUAL(o[i].key, key);
            CU_ASSERT_EQUAL(o[i].size, 7);
            CU_ASSERT_EQUAL(o[i].hlc, MD_HLC_MAKE(1000 + seen * 2, 0));
            seen++;
        }
        if (n)
            snprintf(after, sizeof(after), "%s", o[n - 1].key);
        md_objects_free(o, n);
        pages++;
        CU_ASSERT_FATAL(pages < 10);
    }
    CU_ASSERT_EQUAL(seen, 10);
    CU_ASSERT_EQUAL(pages, 4); /* 3 + 3 + 3 + 1 */
    /* after beyond the prefix's range: nothing; no prefix: everything. */
    md_object *o;
    size_t n;
    CU_ASSERT_EQUAL(md_rec_scan(md, "b", "p/", "p/zz", NULL, NULL, 100, &o, &n, &truncated), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    md_objects_free(o, n);
    CU_ASSERT_EQUAL(md_rec_scan(md, "b", NULL, NULL, NULL, NULL, 100, &o, &n, &truncated), CM_OK);
    CU_ASSERT_EQUAL(n, 31);
    CU_ASSERT_EQUAL(truncated, 0);
    CU_ASSERT_STRING_EQUAL(o[0].key, "a0");
    md_objects_free(o, n);
    /* after before the prefix starts at the prefix */
    CU_ASSERT_EQUAL(md_rec_scan(md, "b", "q/", "a", NULL, NULL, 1, &o, &n, &truncated), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(o[0].key, "q/20");
    CU_ASSERT_EQUAL(truncated, 1);
    md_objects_free(o, n);
    md_close(md);
}

static void test_merkle_filtered(void)
{
    /* Two stores with the same even keys and different odd keys: the even-filtered trees and
     * leaf keys are equal, the unfiltered ones are not. */
    md_store *a = open_store("mk_a"), *b = open_store("mk_b");
    char key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "k%03d", i);
        if (i % 2 == 0 || i % 3 == 0)
            put_key(a, key, MD_HLC_MAKE(100 + i, 0));
        if (i % 2 == 0 || i % 5 == 0)
            put_key(b, key, MD_HLC_MAKE(100 + i, 0));
    }
    md_merkle *ta, *tb, *fa, *fb;
    CU_ASSERT_EQUAL_FATAL(md_merkle_build(a, "b", 2, &ta), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_merkle_build(b, "b", 2, &tb), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_merkle_build_ex(a, "b", 2, even_key, NULL, &fa), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_merkle_build_ex(b, "b", 2, even_key, NULL, &fb), CM_OK);
    CU_ASSERT(memcmp(md_merkle_node(ta, 0, 0), md_merkle_node(tb, 0, 0), 16) != 0);
    CU_ASSERT(memcmp(md_merkle_node(fa, 0, 0), md_merkle_node(fb, 0, 0), 16) == 0);
    CU_ASSERT_EQUAL(md_merkle_count(fa), 100);
    size_t leaves[256];
    for (size_t i = 0; i < 256; i++)
        leaves[i] = i;
    md_rec_info *ka, *kb;
    size_t na, nb;
    CU_ASSERT_EQUAL(md_merkle_leaf_keys_ex(a, "b", 2, even_key, NULL, leaves, 256, &ka, &na),
                    CM_OK);
    CU_ASSERT_EQUAL(md_merkle_leaf_keys_ex(b, "b", 2, even_key, NULL, leaves, 256, &kb, &nb),
                    CM_OK);
    CU_ASSERT_EQUAL(na, 100);
    CU_ASSERT_EQUAL_FATAL(na, nb);
    for (size_t i = 0; i < na; i++) {
        CU_ASSERT_STRING_EQUAL(ka[i].key, kb[i].key);
        CU_ASSERT(memcmp(ka[i].digest, kb[i].digest, 16) == 0);
        CU_ASSERT(even_key(NULL, (const uint8_t *)ka[i].key, strlen(ka[i].key)));
    }
    /* digest entries survive their wire form */
    uint8_t buf[MD_REC_INFO_ENC_MAX];
    size_t len = md_rec_info_encode(&ka[3], buf), used = 0;
    md_rec_info back;
    CU_ASSERT_EQUAL_FATAL(md_rec_info_decode(buf, len, &used, &back), CM_OK);
    CU_ASSERT_EQUAL(used, len);
    CU_ASSERT_STRING_EQUAL(back.key, ka[3].key);
    CU_ASSERT_EQUAL(back.hlc, ka[3].hlc);
    CU_ASSERT(memcmp(back.digest, ka[3].digest, 16) == 0);
    free(back.key);
    CU_ASSERT_EQUAL(md_rec_info_decode(buf, len - 1, &used, &back), CM_ERR_CORRUPT);
    md_rec_infos_free(ka, na);
    md_rec_infos_free(kb, nb);
    md_merkle_free(ta);
    md_merkle_free(tb);
    md_merkle_free(fa);
    md_merkle_free(fb);
    md_close(a);
    md_close(b);
}

static void test_hints(void)
{
    md_store *md = open_store("hints");
    char longkey[1001];
    memset(longkey, 'x', 1000);
    longkey[1000] = 0;
    md_object h1 = {.key = "k1", .hlc = MD_HLC_MAKE(10, 0), .hlc_node = 1};
    md_object h2 = {.key = longkey, .hlc = MD_HLC_MAKE(11, 0), .hlc_node = 1};
    md_object h3 = {.key = "k1", .hlc = MD_HLC_MAKE(12, 0), .hlc_node = 1};
    md_object other = {.key = "z", .hlc = MD_HLC_MAKE(13, 0), .hlc_node = 1};
    CU_ASSERT_EQUAL(md_hint_put(md, "n2", "b", &h1), CM_OK);
    CU_ASSERT_EQUAL(md_hint_put(md, "n2", "b", &h2), CM_OK);
    CU_ASSERT_EQUAL(md_hint_put(md, "n2", "c", &h1), CM_OK); /* another bucket: no check */
    CU_ASSERT_EQUAL(md_hint_put(md, "n3", "b", &other), CM_OK);
    uint64_t cnt;
    CU_ASSERT_EQUAL(md_hint_count(md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 4);
    char **targets;
    size_t nt;
    CU_ASSERT_EQUAL_FATAL(md_hint_targets(md, &targets, &nt), CM_OK);
    CU_ASSERT_EQUAL_FATAL(nt, 2);
    CU_ASSERT_STRING_EQUAL(targets[0], "n2");
    CU_ASSERT_STRING_EQUAL(targets[1], "n3");
    md_keys_free(targets, nt);
    /* A newer hint replaces the stored one; an older one does not. */
    CU_ASSERT_EQUAL(md_hint_put(md, "n2", "b", &h3), CM_OK);
    CU_ASSERT_EQUAL(md_hint_put(md, "n2", "b", &h1), CM_OK);
    md_hint *h;
    size_t n;
    int truncated;
    CU_ASSERT_EQUAL_FATAL(md_hint_list(md, "n2", NULL, NULL, 2, &h, &n, &truncated), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(truncated, 1);
    CU_ASSERT_STRING_EQUAL(h[0].bucket, "b");
    CU_ASSERT_STRING_EQUAL(h[0].rec.key, "k1");
    CU_ASSERT_EQUAL(h[0].rec.hlc, h3.hlc);
    CU_ASSERT_STRING_EQUAL(h[1].rec.key, longkey);
    md_hint *h2p;
    size_t n2;
    CU_ASSERT_EQUAL_FATAL(
        md_hint_list(md, "n2", h[1].bucket, h[1].rec.key, 10, &h2p, &n2, &truncated), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n2, 1);
    CU_ASSERT_STRING_EQUAL(h2p[0].bucket, "c");
    CU_ASSERT_EQUAL(truncated, 0);
    md_hints_free(h2p, n2);
    /* Dropping a superseded version keeps the hint; the stored version goes. */
    int dropped;
    CU_ASSERT_EQUAL(md_hint_drop(md, "n2", "b", &h1, &dropped), CM_OK);
    CU_ASSERT_EQUAL(dropped, 0);
    CU_ASSERT_EQUAL(md_hint_drop(md, "n2", "b", &h[0].rec, &dropped), CM_OK);
    CU_ASSERT_EQUAL(dropped, 1);
    CU_ASSERT_EQUAL(md_hint_drop(md, "n2", "b", &h[1].rec, &dropped), CM_OK);
    CU_ASSERT_EQUAL(dropped, 1);
    md_hints_free(h, n);
    CU_ASSERT_EQUAL(md_hint_count(md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 2);
    /* Hints are not records: the bucket's listing does not see them. */
    md_object *o;
    CU_ASSERT_EQUAL(md_rec_scan(md, "b", NULL, NULL, NULL, NULL, 10, &o, &n, &truncated), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    md_objects_free(o, n);
    CU_ASSERT_EQUAL(md_hint_list(md, "n4", NULL, NULL, 10, &h, &n, &truncated), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    md_hints_free(h, n);
    md_close(md);
}

/* The highest partition-leader token per partition: lower ones refused, 0 always admitted. */
static void test_fence(void)
{
    md_store *md = open_store("fence");
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 3, 0), CM_OK);
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 3, 10), CM_OK);
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 3, 10), CM_OK); /* the same leader, again */
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 3, 9), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 3, 0), CM_OK); /* no token: not a leader's write */
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 3, 12), CM_OK);
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 3, 10), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 4, 1), CM_OK); /* each partition its own */
    CU_ASSERT_EQUAL(md_fence_admit(md, "c", 3, 1), CM_OK);
    char name[16];
    for (int i = 0; i < 1000; i++) { /* many partitions share the table's slots */
        snprintf(name, sizeof(name), "bk%d", i);
        CU_ASSERT_EQUAL(md_fence_admit(md, name, (uint32_t)i % 8, 100 + (uint64_t)i), CM_OK);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "bk%d", i);
        CU_ASSERT_EQUAL(md_fence_admit(md, name, (uint32_t)i % 8, 99 + (uint64_t)i),
                        CM_ERR_CONFLICT);
    }
    /* A leader's read barrier raises the bar (its only write); a fenced write is checked in its
     * own transaction. */
    md_object r = {.key = "fk", .hlc = MD_HLC_MAKE(3000, 0), .hlc_node = 1};
    md_vv_increment(&r.vv, 1, r.hlc);
    int applied = -1;
    CU_ASSERT_EQUAL(md_fence_barrier(md, "b", 5, 0), CM_OK);
    CU_ASSERT_EQUAL(md_fence_barrier(md, "b", 5, 20), CM_OK);
    CU_ASSERT_EQUAL(md_rec_receive_fenced(md, NULL, "b", 5, 15, NULL, &r, &applied),
                    CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(applied, 0);
    md_object got;
    CU_ASSERT_EQUAL(md_rec_get(md, "b", "fk", &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_rec_receive_fenced(md, NULL, "b", 5, 20, NULL, &r, &applied), CM_OK);
    CU_ASSERT_EQUAL(applied, 1);
    CU_ASSERT_EQUAL_FATAL(md_rec_get(md, "b", "fk", &got), CM_OK);
    md_object_release(&got);
    CU_ASSERT_EQUAL(md_fence_barrier(md, "b", 5, 19), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(md_fence_barrier(md, "b", 5, 21), CM_OK);
    CU_ASSERT_EQUAL(md_rec_receive_fenced(md, NULL, "b", 5, 20, NULL, &r, &applied),
                    CM_ERR_CONFLICT);
    md_close(md);
}

/* The highest tokens survive a reopen (a replica's restart): a replaced leader's token stays
 * refused, its successor's admitted, whether the bar was raised by a barrier, a fenced write or
 * md_fence_admit; a deleted bucket's tokens are gone, stored and in memory. */
static void test_fence_restart(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", cu_tmpdir(), "fence_restart");
    md_store *md = open_store("fence_restart");
    md_bucket gone = {0};
    snprintf(gone.name, sizeof(gone.name), "gone");
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(md, &gone), CM_OK);
    md_object r = {.key = "fk", .hlc = MD_HLC_MAKE(3000, 0), .hlc_node = 1};
    md_vv_increment(&r.vv, 1, r.hlc);
    int applied = -1;
    CU_ASSERT_EQUAL(md_fence_barrier(md, "b", 1, 40), CM_OK);
    CU_ASSERT_EQUAL(md_rec_receive_fenced(md, NULL, "b", 2, 50, NULL, &r, &applied), CM_OK);
    CU_ASSERT_EQUAL(applied, 1);
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 3, 60), CM_OK);
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 3, 61), CM_OK);      /* raised again: the higher kept */
    CU_ASSERT_EQUAL(md_fence_barrier(md, "gone", 1, 70), CM_OK); /* its bucket deleted below */
    CU_ASSERT_EQUAL(md_fence_barrier(md, "gone", 2, 71), CM_OK);
    CU_ASSERT_EQUAL(md_fence_admit(md, "gonex", 1, 72), CM_OK); /* a longer name: not "gone"'s */
    md_close(md);
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 26, &md), CM_OK);
    r.hlc = MD_HLC_MAKE(4000, 0);
    md_vv_increment(&r.vv, 1, r.hlc);
    CU_ASSERT_EQUAL(md_rec_receive_fenced(md, NULL, "b", 1, 39, NULL, &r, &applied),
                    CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(applied, 0);
    CU_ASSERT_EQUAL(md_fence_barrier(md, "b", 2, 49), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 3, 60), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 3, 61), CM_OK); /* the same leader, again */
    CU_ASSERT_EQUAL(md_rec_receive_fenced(md, NULL, "b", 2, 50, NULL, &r, &applied), CM_OK);
    CU_ASSERT_EQUAL(applied, 1);
    CU_ASSERT_EQUAL(md_fence_barrier(md, "b", 1, 41), CM_OK); /* a successor */
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 1, 40), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(md_fence_admit(md, "gone", 1, 69), CM_ERR_CONFLICT); /* loaded, still there */
    /* Deleting the bucket forgets its tokens: a new bucket of that name starts from none. */
    CU_ASSERT_EQUAL(md_bucket_delete(md, "gone", NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_fence_admit(md, "gone", 1, 5), CM_OK);             /* from memory */
    CU_ASSERT_EQUAL(md_fence_admit(md, "gonex", 1, 71), CM_ERR_CONFLICT); /* not dropped */
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(md, &gone), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_delete(md, "gone", NULL, NULL), CM_OK);
    md_close(md);
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 26, &md), CM_OK);
    CU_ASSERT_EQUAL(md_fence_admit(md, "gone", 1, 1), CM_OK); /* from the database */
    CU_ASSERT_EQUAL(md_fence_admit(md, "gone", 2, 1), CM_OK);
    CU_ASSERT_EQUAL(md_fence_admit(md, "gonex", 1, 71), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(md_fence_admit(md, "b", 1, 40), CM_ERR_CONFLICT);
    md_close(md);
}

static void test_shards_and_lookup(void)
{
    md_store *md = open_store("shards");
    /* pinned: bytes 4..7 of SHA-256(key), big-endian, modulo nshards (computed apart); a change
     * would move every record of a running cluster to other homes */
    CU_ASSERT_EQUAL(md_shard_of((const uint8_t *)"photos/cat.jpg", 14, 256), 119);
    CU_ASSERT_EQUAL(md_shard_of((const uint8_t *)"photos/cat.jpg", 14, 64), 55);
    CU_ASSERT_EQUAL(md_shard_of((const uint8_t *)"a", 1, 256), 202);
    /* every key in exactly one shard, shards used roughly evenly, stable across calls */
    uint32_t count[8] = {0};
    char key[32];
    for (int i = 0; i < 800; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        uint32_t s = md_shard_of((const uint8_t *)key, strlen(key), 8);
        CU_ASSERT_FATAL(s < 8);
        CU_ASSERT_EQUAL(s, md_shard_of((const uint8_t *)key, strlen(key), 8));
        md_shard f = {s, 8}, g = {(s + 1) % 8, 8};
        CU_ASSERT(md_shard_keep(&f, (const uint8_t *)key, strlen(key)));
        CU_ASSERT(!md_shard_keep(&g, (const uint8_t *)key, strlen(key)));
        count[s]++;
    }
    for (int s = 0; s < 8; s++)
        CU_ASSERT(count[s] > 50 && count[s] < 150);
    CU_ASSERT_EQUAL(md_shard_of((const uint8_t *)"x", 1, 1), 0);
    /* lookups and leaves tell an unknown bucket apart */
    md_object o;
    int no_bucket = -1;
    CU_ASSERT_EQUAL(md_rec_lookup(md, "b", "absent", &o, &no_bucket), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(no_bucket, 0);
    CU_ASSERT_EQUAL(md_rec_lookup(md, "zz", "absent", &o, &no_bucket), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(no_bucket, 1);
    put_key(md, "k", MD_HLC_MAKE(5, 0));
    CU_ASSERT_EQUAL_FATAL(md_rec_lookup(md, "b", "k", &o, &no_bucket), CM_OK);
    CU_ASSERT_EQUAL(no_bucket, 0);
    md_object_release(&o);
    uint8_t *h;
    size_t n;
    CU_ASSERT_EQUAL(md_merkle_leaves(md, "zz", 1, NULL, NULL, &h, &n), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL_FATAL(md_merkle_leaves(md, "b", 1, NULL, NULL, &h, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 16);
    int nonzero = 0;
    for (size_t i = 0; i < 16 * n; i++)
        nonzero += h[i] != 0;
    CU_ASSERT(nonzero > 0); /* the one key's leaf */
    free(h);
    md_object *objs;
    int truncated;
    CU_ASSERT_EQUAL(md_rec_scan(md, "zz", NULL, NULL, NULL, NULL, 5, &objs, &n, &truncated),
                    CM_ERR_NOTFOUND);
    md_close(md);
}

/* A record of key stamped at ms (node 1), a tombstone when tomb. */
static void merge_rec(md_store *md, const char *key, int64_t ms, int tomb, int want_applied)
{
    md_object o = {.key = (char *)key, .hlc = MD_HLC_MAKE(ms, 0), .hlc_node = 1};
    o.tombstone = (uint8_t)tomb;
    md_vv_increment(&o.vv, 1, o.hlc);
    int applied = -1;
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &o, &applied), CM_OK);
    CU_ASSERT_EQUAL(applied, want_applied);
}

static int has_key(md_store *md, const char *key)
{
    md_object o;
    cm_err e = md_rec_get(md, "b", key, &o);
    if (e == CM_OK)
        md_object_release(&o);
    return e == CM_OK;
}

/* The first n keys "t<i>" of shard part->shard (and one of another shard in *other). */
static void shard_keys(const md_shard *part, char keys[][16], int n, char *other)
{
    other[0] = 0;
    for (int i = 0, got = 0; got < n; i++) {
        char k[16];
        snprintf(k, sizeof(k), "t%d", i);
        if (md_shard_keep((void *)part, (const uint8_t *)k, strlen(k)))
            memcpy(keys[got++], k, sizeof(k));
        else if (!other[0])
            memcpy(other, k, sizeof(k));
    }
}

/*
 * Tombstone collection on one store (md_tomb.c): the partition's old tombstones listed in pages,
 * dropped only while they are the listed version, the mark raised with them and kept across a
 * reopen, and the merge refusing an old live record of a key it no longer holds.
 */
static void test_tombs(void)
{
    md_store *md = open_store("tombs");
    md_shard part = {1, 4};
    char k[6][16], other[16];
    shard_keys(&part, k, 6, other);
    merge_rec(md, k[0], 1000, 1, 1); /* old tombstones */
    merge_rec(md, k[1], 1100, 1, 1);
    merge_rec(md, k[2], 1200, 1, 1);
    merge_rec(md, k[3], 5000, 1, 1);  /* too young */
    merge_rec(md, k[4], 1000, 0, 1);  /* live */
    merge_rec(md, other, 1000, 1, 1); /* another shard */
    md_rec_info *ri, *ri2;
    size_t n, n2;
    int trunc;
    CU_ASSERT_EQUAL(md_rec_tombs(md, "zz", &part, MD_HLC_MAKE(3000, 0), NULL, 10, &ri, &n, &trunc),
                    CM_ERR_NOTFOUND);
    /* pages of 2: k0..k2 in key order, nothing else */
    CU_ASSERT_EQUAL_FATAL(
        md_rec_tombs(md, "b", &part, MD_HLC_MAKE(3000, 0), NULL, 2, &ri, &n, &trunc), CM_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(trunc, 1);
    CU_ASSERT_EQUAL_FATAL(
        md_rec_tombs(md, "b", &part, MD_HLC_MAKE(3000, 0), ri[n - 1].key, 2, &ri2, &n2, &trunc),
        CM_OK);
    CU_ASSERT_EQUAL(n2, 1);
    CU_ASSERT_EQUAL(trunc, 0);
    md_rec_infos_free(ri2, n2);
    md_rec_infos_free(ri, n);
    CU_ASSERT_EQUAL_FATAL(
        md_rec_tombs(md, "b", &part, MD_HLC_MAKE(3000, 0), NULL, 10, &ri, &n, &trunc), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT(ri[i].tombstone);
        CU_ASSERT(strcmp(ri[i].key, k[3]) != 0 && strcmp(ri[i].key, other) != 0);
        if (i)
            CU_ASSERT(strcmp(ri[i - 1].key, ri[i].key) < 0);
    }
    /* Between the listing and the drop, one key gets a newer tombstone and one a live put: the
     * compare-and-set on the digest keeps both. */
    char newer[16], revived[16], plain[16];
    snprintf(newer, sizeof(newer), "%s", ri[0].key);
    snprintf(revived, sizeof(revived), "%s", ri[1].key);
    snprintf(plain, sizeof(plain), "%s", ri[2].key);
    merge_rec(md, newer, 1300, 1, 1);
    merge_rec(md, revived, 2000, 0, 1);
    uint8_t dropped[3];
    CU_ASSERT_EQUAL(md_rec_collect(md, "b", &part, 0, ri, n, dropped), CM_ERR_INVAL);
    uint64_t ahead = MD_HLC_MAKE(cm_now_ms() + 60000, 0); /* a clock ahead: refused */
    CU_ASSERT_EQUAL(md_rec_collect(md, "b", &part, ahead, ri, n, dropped), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(md_rec_collect(md, "zz", &part, MD_HLC_MAKE(3000, 0), ri, n, dropped),
                    CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_rec_collect(md, "b", &part, MD_HLC_MAKE(3000, 0), ri, n, dropped), CM_OK);
    CU_ASSERT_EQUAL(dropped[0], 0);
    CU_ASSERT_EQUAL(dropped[1], 0);
    CU_ASSERT_EQUAL(dropped[2], 1);
    CU_ASSERT(has_key(md, newer));
    CU_ASSERT(has_key(md, revived));
    CU_ASSERT(!has_key(md, plain));
    /* an entry stamped at or above the mark is never dropped, whatever the caller says */
    md_rec_info *young;
    size_t ny;
    CU_ASSERT_EQUAL_FATAL(
        md_rec_tombs(md, "b", &part, MD_HLC_MAKE(6000, 0), k[2], 10, &young, &ny, &trunc), CM_OK);
    uint64_t mark = 0;
    CU_ASSERT_EQUAL(md_tomb_mark(md, "b", &part, &mark), CM_OK);
    CU_ASSERT_EQUAL(mark, MD_HLC_MAKE(3000, 0));
    CU_ASSERT_EQUAL(md_rec_collect(md, "b", &part, MD_HLC_MAKE(2000, 0), young, ny, NULL), CM_OK);
    CU_ASSERT(has_key(md, k[3]));
    CU_ASSERT_EQUAL(md_tomb_mark(md, "b", &part, &mark), CM_OK);
    CU_ASSERT_EQUAL(mark, MD_HLC_MAKE(3000, 0)); /* never lowered */
    md_rec_infos_free(young, ny);
    md_rec_infos_free(ri, n);
    /* The merge: an old live version of the collected key is refused, a newer one applied; a
     * tombstone always merges; another shard has no mark. */
    merge_rec(md, plain, 2500, 0, 0);
    CU_ASSERT(!has_key(md, plain));
    merge_rec(md, k[5], 100, 1, 1);
    merge_rec(md, other, 100, 0, 0); /* its own tombstone (1000) still wins */
    merge_rec(md, k[4], 500, 0, 0);  /* held: an ordinary merge, the stored 1000 wins */
    merge_rec(md, k[4], 2000, 0, 1); /* held: newer applied although below the mark */
    /* The mark survives a reopen. */
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", cu_tmpdir(), "tombs");
    md_close(md);
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 26, &md), CM_OK);
    CU_ASSERT_EQUAL(md_tomb_mark(md, "b", &part, &mark), CM_OK);
    CU_ASSERT_EQUAL(mark, MD_HLC_MAKE(3000, 0));
    merge_rec(md, plain, 2999, 0, 0);
    CU_ASSERT(!has_key(md, plain));
    merge_rec(md, plain, 3000, 0, 1);
    CU_ASSERT(has_key(md, plain));
    md_shard p2 = {2, 4};
    CU_ASSERT_EQUAL(md_tomb_mark(md, "b", &p2, &mark), CM_OK);
    CU_ASSERT_EQUAL(mark, 0);
    md_close(md);
}

/*
 * A tombstone that names a body (a multipart part kept by its Complete: the object owns the body
 * now, docs/multipart-cluster.md) is collected without making that body garbage.
 */
static void test_tomb_keeps_body(void)
{
    md_store *md = open_store("tomb_body");
    md_shard part = {1, 4};
    char k[1][16], other[16];
    shard_keys(&part, k, 1, other);
    md_part pa = stored_part(0xD);
    md_object live = {
        .key = k[0], .hlc = MD_HLC_MAKE(1000, 0), .hlc_node = 1, .parts = &pa, .nparts = 1};
    md_vv_increment(&live.vv, 1, live.hlc);
    int applied = -1;
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &live, &applied), CM_OK);
    md_object tomb = live;
    tomb.hlc = MD_HLC_MAKE(1100, 0);
    tomb.tombstone = 1;
    md_vv_increment(&tomb.vv, 1, tomb.hlc);
    CU_ASSERT_EQUAL(md_rec_merge(md, "b", &tomb, &applied), CM_OK);
    CU_ASSERT_EQUAL(applied, 1);
    CU_ASSERT_EQUAL(garbage_count(md, 0xD), 0); /* the tombstone still names it */
    md_rec_info *ri;
    size_t n;
    int trunc;
    CU_ASSERT_EQUAL_FATAL(
        md_rec_tombs(md, "b", &part, MD_HLC_MAKE(3000, 0), NULL, 10, &ri, &n, &trunc), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    uint8_t dropped = 0;
    CU_ASSERT_EQUAL(md_rec_collect(md, "b", &part, MD_HLC_MAKE(3000, 0), ri, n, &dropped), CM_OK);
    CU_ASSERT_EQUAL(dropped, 1);
    CU_ASSERT(!has_key(md, k[0]));
    CU_ASSERT_EQUAL(garbage_count(md, 0xD), 0);
    md_rec_infos_free(ri, n);
    md_close(md);
}

/* ---- The layout guard (md_guard) and a Merkle read's turn of the group commit ---- */

typedef struct {
    cu_gate *gate;
    int done;
    cm_err err;
    int applied;
} async_res;

static void async_done(void *arg, cm_err err, int applied)
{
    async_res *r = arg;
    r->err = err;
    r->applied = applied;
    cu_gate_count(r->gate, &r->done);
}

typedef struct {
    md_store *md;
    cu_hold *hold;
    uint8_t *hashes;
    size_t n;
    cm_err err;
} merkle_job;

static void *merkle_thread(void *arg)
{
    merkle_job *j = arg;
    j->err = md_merkle_leaves(j->md, "b", 1, NULL, NULL, &j->hashes, &j->n);
    cu_gate_set(&j->hold->gate, 0); /* it did not wait: let the held write go */
    return NULL;
}

static md_object guarded_rec(const char *key, int64_t ms)
{
    md_object o = {.key = (char *)key, .hlc = MD_HLC_MAKE(ms, 0), .hlc_node = 1};
    md_vv_increment(&o.vv, 1, o.hlc);
    return o;
}

/* A guarded write is refused CM_ERR_STALE, nothing stored, when the bar is above its epoch as
 * the commit thread applies it, also when the bar rose while it waited in the commit queue;
 * admitted at or above the bar, or unguarded, it is stored. md_merkle_leaves called while a write
 * waits in the commit queue sees that write (it is ordered after it), never a state the write
 * then changes. */
static void test_layout_guard(void)
{
    md_store *md = open_store("layout_guard");
    _Atomic uint64_t bar = 5;
    md_guard at5 = {&bar, 5}, at6 = {&bar, 6}, none = {&bar, 0};
    md_object a = guarded_rec("ga", 3000), b = guarded_rec("gb", 3001), c = guarded_rec("gc", 3002),
              d = guarded_rec("gd", 3003), e = guarded_rec("ge", 3004);
    int applied = -1;
    CU_ASSERT_EQUAL(md_rec_receive_fenced(md, NULL, "b", 0, 0, &at5, &a, &applied), CM_OK);
    CU_ASSERT_EQUAL(applied, 1);
    atomic_store(&bar, 6);
    CU_ASSERT_EQUAL(md_rec_receive_fenced(md, NULL, "b", 0, 0, &at5, &b, &applied), CM_ERR_STALE);
    CU_ASSERT_EQUAL(applied, 0);
    CU_ASSERT_FALSE(has_key(md, "gb"));
    CU_ASSERT_EQUAL(md_rec_receive_fenced(md, NULL, "b", 0, 0, &none, &b, &applied), CM_OK);
    CU_ASSERT(has_key(md, "gb"));

    /* admitted at 6, the bar rises to 7 while the write waits in the commit queue */
    cu_hold h;
    cu_hold_start(&h, md, NULL, NULL);
    async_res r = {.gate = &h.gate};
    CU_ASSERT_EQUAL_FATAL(md_rec_receive_async(md, NULL, "b", 0, 0, &at6, &c, async_done, &r),
                          CM_OK);
    cu_gate_wait_held(&h.gate);
    atomic_store(&bar, 7);
    cu_gate_set(&h.gate, 0);
    CU_ASSERT_EQUAL(cu_gate_wait_count(&h.gate, &r.done, 1, 10), 1);
    CU_ASSERT_EQUAL(r.err, CM_ERR_STALE);
    CU_ASSERT_FALSE(has_key(md, "gc"));
    cu_hold_end(&h);

    /* a Merkle read begun while a write waits in the commit queue */
    cu_hold_start(&h, md, NULL, NULL);
    memset(&r, 0, sizeof(r));
    r.gate = &h.gate;
    CU_ASSERT_EQUAL_FATAL(md_rec_receive_async(md, NULL, "b", 0, 0, NULL, &d, async_done, &r),
                          CM_OK);
    cu_gate_wait_held(&h.gate);
    cu_hold_open_when_queued(&h);
    merkle_job j = {.md = md, .hold = &h};
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, merkle_thread, &j), 0);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(cu_gate_wait_count(&h.gate, &r.done, 1, 10), 1);
    cu_hold_end(&h);
    CU_ASSERT_EQUAL(r.err, CM_OK);
    CU_ASSERT(has_key(md, "gd"));
    uint8_t *now = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(j.err, CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_merkle_leaves(md, "b", 1, NULL, NULL, &now, &n), CM_OK);
    CU_ASSERT(j.n == n && j.hashes && memcmp(j.hashes, now, n * 16) == 0); /* gd in both */
    free(j.hashes);
    free(now);
    /* the guard also holds for a write that was not queued yet when the bar rose */
    CU_ASSERT_EQUAL(md_rec_receive_fenced(md, NULL, "b", 0, 0, &at6, &e, &applied), CM_ERR_STALE);
    CU_ASSERT_FALSE(has_key(md, "ge"));
    md_close(md);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"merge", test_merge},
                                    {"merge_version_pointer", test_merge_version_pointer},
                                    {"merge_unseen_plain", test_merge_unseen_plain},
                                    {"version_keys", test_version_keys},
                                    {"scan", test_scan},
                                    {"merkle_filtered", test_merkle_filtered},
                                    {"hints", test_hints},
                                    {"shards_and_lookup", test_shards_and_lookup},
                                    {"fence", test_fence},
                                    {"fence_restart", test_fence_restart},
                                    {"layout_guard", test_layout_guard},
                                    {"tombs", test_tombs},
                                    {"tomb_keeps_body", test_tomb_keeps_body},
                                    {NULL, NULL}};
    cu_add_suite("meta_replica", tests);
}
