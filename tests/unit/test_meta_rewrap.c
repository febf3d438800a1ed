/*
 * test_meta_rewrap.c - master-key rotation in the store (md_rewrap.c): SSE-S3 data keys wrapped
 * under key A in a latest version, an older version and an upload's part, an SSE-C object beside
 * them, an access key's secret under A; a step whose function lacks A stops with the record named
 * and writes nothing; steps of one record each walk the four databases and re-wrap every secret
 * under B, the records otherwise unchanged (the same data keys inside, the SSE-C record byte for
 * byte), and the verification of the whole store then finds nothing left under A.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_mkey.h"
#include "cu_main.h"
#include "md.h"

static const char HEX_A[] = "a00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char HEX_B[] = "b00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char HEX_C[] = "c00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/* The md_rewrap_fn of gw_sse_rewrap.c in small: re-wrap under ring's primary what it knows. */
static cm_err rewrap(void *arg, uint8_t *w, size_t len, md_rewrap_kind kind, const char *name,
                     int *changed)
{
    const cm_mkey *ring = arg;
    uint8_t id[4];
    char ctx[64];
    *changed = 0;
    CU_ASSERT_FATAL(cm_mkey_wrapped_id(w, len, id));
    if (kind == MD_REWRAP_USER)
        snprintf(ctx, sizeof(ctx), "user:%s", name);
    else
        snprintf(ctx, sizeof(ctx), "sse-dek");
    if (cm_mkey_knows(ring, id))
        return cm_mkey_rewrap(ring, ctx, w, len, changed);
    return kind != MD_REWRAP_PART ? CM_ERR_AUTH : CM_OK;
}

/* An encrypted part: data key number n (32 bytes of n) wrapped under kek. */
static md_part part_under(const cm_mkey *kek, uint32_t number, uint8_t n)
{
    md_part p;
    uint8_t dek[32];
    size_t wl = 0;
    memset(&p, 0, sizeof(p));
    memset(dek, n, sizeof(dek));
    p.number = number;
    p.size = 1000;
    p.layout.size = 1016;
    p.layout.k = 4;
    p.layout.m = 2;
    p.layout.cell_size = 65536;
    p.layout.blob[0] = n;
    p.sse_seg = 65536;
    CU_ASSERT_EQUAL(cm_mkey_wrap(kek, "sse-dek", dek, 32, p.sse_key, sizeof(p.sse_key), &wl),
                    CM_OK);
    p.sse_key_len = (uint8_t)wl;
    return p;
}

static void put_object(md_store *md, const char *key, uint8_t mode, const cm_mkey *kek, uint8_t n)
{
    md_part parts[2] = {part_under(kek, 1, n), part_under(kek, 2, (uint8_t)(n + 1))};
    md_object o = {0};
    md_vres res;
    o.key = (char *)key;
    snprintf(o.version_id, sizeof(o.version_id), "null");
    snprintf(o.etag, sizeof(o.etag), "etag-%u", n);
    o.size = 2000;
    o.mtime_ms = 1000 + n;
    o.sse.mode = mode;
    o.parts = parts;
    o.nparts = 2;
    CU_ASSERT_EQUAL_FATAL(md_object_put_v(md, "b", &o, NULL, NULL, NULL, &res), CM_OK);
}

/* The data key inside p, unwrapped under kek: 32 bytes of n expected. */
static void key_is(const cm_mkey *kek, const md_part *p, uint8_t n)
{
    uint8_t dek[32], want[32];
    size_t l = 0;
    memset(want, n, sizeof(want));
    CU_ASSERT_EQUAL(cm_mkey_unwrap(kek, "sse-dek", p->sse_key, p->sse_key_len, dek, 32, &l), CM_OK);
    CU_ASSERT(l == 32 && memcmp(dek, want, 32) == 0);
}

static void test_rotate(void)
{
    char dir[512], bad[256], ring_hex[200];
    md_store *md = NULL;
    cm_mkey a, b, c, ring;
    md_bucket bk = {0};
    md_object got, sse_c;
    CU_ASSERT_FATAL(cm_mkey_from_hex(&a, HEX_A) == CM_OK && cm_mkey_from_hex(&b, HEX_B) == CM_OK &&
                    cm_mkey_from_hex(&c, HEX_C) == CM_OK);
    snprintf(ring_hex, sizeof(ring_hex), "%s,%s", HEX_B, HEX_A);
    CU_ASSERT_EQUAL_FATAL(cm_mkey_from_list(&ring, ring_hex, ","), CM_OK);
    snprintf(dir, sizeof(dir), "%s/rewrap", cu_tmpdir());
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 1 << 26, &md), CM_OK);
    snprintf(bk.name, sizeof(bk.name), "b");
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(md, &bk), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_ENABLED), CM_OK);

    put_object(md, "k", MD_SSE_S3, &a, 10); /* becomes the older version */
    put_object(md, "k", MD_SSE_S3, &a, 20);
    put_object(md, "s", MD_SSE_C, &c, 30); /* under a customer's key */
    md_upload up = {0};
    up.key = "u";
    snprintf(up.upload_id, sizeof(up.upload_id), "up1");
    up.tmpl.sse.mode = MD_SSE_S3;
    CU_ASSERT_EQUAL_FATAL(md_upload_create(md, "b", &up), CM_OK);
    md_part pp = part_under(&a, 1, 40);
    CU_ASSERT_EQUAL_FATAL(md_part_put(md, "b", "u", "up1", &pp, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", "s", &sse_c), CM_OK);
    md_user usr = {0};
    md_user_key uk = {0};
    size_t sl = 0;
    snprintf(usr.name, sizeof(usr.name), "alice");
    snprintf(uk.user, sizeof(uk.user), "alice");
    snprintf(uk.access_key, sizeof(uk.access_key), "AKALICE");
    CU_ASSERT_EQUAL(
        cm_mkey_wrap(&a, "user:AKALICE", "secret-of-alice", 15, uk.sealed, sizeof(uk.sealed), &sl),
        CM_OK);
    uk.sealed_len = sl;
    CU_ASSERT_EQUAL_FATAL(md_user_create(md, &usr, &uk), CM_OK);

    /* everything A wraps is counted; nothing changes */
    md_rewrap_counts n = {0};
    CU_ASSERT_EQUAL(md_rewrap_verify(md, rewrap, &ring, &n, bad, sizeof(bad)), CM_OK);
    CU_ASSERT_EQUAL(n.rewrapped, 6); /* 2 + 2 parts of k's versions, the upload's part, alice */
    CU_ASSERT_EQUAL(n.keys, 6);      /* the SSE-C object's 2 are not asked about */

    /* B alone cannot move A's keys: the step stops on the first record, naming it */
    md_rewrap_cursor cur = {0};
    n = (md_rewrap_counts){0};
    CU_ASSERT_EQUAL(md_rewrap_step(md, &cur, 10, rewrap, &b, &n, bad, sizeof(bad)), CM_ERR_AUTH);
    CU_ASSERT_STRING_EQUAL(bad, "b/k");
    CU_ASSERT_EQUAL(cur.phase, MD_REWRAP_OBJECTS);
    CU_ASSERT_EQUAL(cur.after_len, 0);
    CU_ASSERT_EQUAL(md_rewrap_verify(md, rewrap, &ring, &n, bad, sizeof(bad)), CM_OK);
    CU_ASSERT_EQUAL(n.rewrapped, 6);

    /* one record a step: the cursor carries the walk through objects, versions, parts */
    int steps = 0;
    n = (md_rewrap_counts){0};
    while (cur.phase != MD_REWRAP_DONE && steps < 100) {
        CU_ASSERT_EQUAL_FATAL(md_rewrap_step(md, &cur, 1, rewrap, &ring, &n, bad, sizeof(bad)),
                              CM_OK);
        steps++;
    }
    CU_ASSERT_EQUAL(cur.phase, MD_REWRAP_DONE);
    CU_ASSERT(steps >= 4);
    CU_ASSERT_EQUAL(n.rewrapped, 6);
    CU_ASSERT_EQUAL(n.records, 6); /* k, s; k's older version; the part; alice and her key */
    CU_ASSERT_EQUAL(md_rewrap_verify(md, rewrap, &ring, &n, bad, sizeof(bad)), CM_OK);
    CU_ASSERT_EQUAL(n.rewrapped, 0);

    /* B alone reads every data key now; the rest of each record is as it was */
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", "k", &got), CM_OK);
    CU_ASSERT_EQUAL(got.nparts, 2);
    CU_ASSERT(strcmp(got.etag, "etag-20") == 0 && got.mtime_ms == 1020 && got.size == 2000);
    key_is(&b, &got.parts[0], 20);
    key_is(&b, &got.parts[1], 21);
    char older[40];
    md_object_release(&got);
    md_object *vs = NULL;
    size_t nv = 0;
    int more = 0;
    CU_ASSERT_EQUAL_FATAL(md_key_versions(md, "b", "k", 10, &vs, &nv, &more), CM_OK);
    CU_ASSERT_EQUAL_FATAL(nv, 2);
    snprintf(older, sizeof(older), "%s", vs[1].version_id);
    md_objects_free(vs, nv);
    CU_ASSERT_EQUAL_FATAL(md_version_get(md, "b", "k", older, &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got.etag, "etag-10");
    key_is(&b, &got.parts[0], 10);
    key_is(&b, &got.parts[1], 11);
    md_object_release(&got);
    md_part *parts = NULL;
    size_t np = 0;
    CU_ASSERT_EQUAL_FATAL(md_part_list(md, "up1", 0, 10, &parts, &np, &more), CM_OK);
    CU_ASSERT_EQUAL_FATAL(np, 1);
    key_is(&b, &parts[0], 40);
    md_parts_free(parts, np);
    CU_ASSERT_EQUAL_FATAL(md_object_get(md, "b", "s", &got), CM_OK);
    for (size_t i = 0; i < 2; i++)
        CU_ASSERT_EQUAL(memcmp(got.parts[i].sse_key, sse_c.parts[i].sse_key, 65), 0);
    key_is(&c, &got.parts[0], 30);
    md_object_release(&got);
    md_object_release(&sse_c);
    md_user *users = NULL;
    md_user_key *keys = NULL;
    size_t nu = 0, nk = 0;
    char secret[32];
    size_t secl = 0;
    CU_ASSERT_EQUAL_FATAL(md_users_list(md, &users, &nu, &keys, &nk), CM_OK);
    CU_ASSERT_EQUAL_FATAL(nk, 1);
    CU_ASSERT(strcmp(keys[0].user, "alice") == 0 && keys[0].sealed_len == sl);
    CU_ASSERT_EQUAL(cm_mkey_unwrap(&b, "user:AKALICE", keys[0].sealed, keys[0].sealed_len,
                                   (uint8_t *)secret, sizeof(secret), &secl),
                    CM_OK);
    CU_ASSERT(secl == 15 && memcmp(secret, "secret-of-alice", 15) == 0);
    free(users);
    free(keys);
    md_close(md);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"rotate", test_rotate},
        {NULL, NULL},
    };
    cu_add_suite("meta_rewrap", tests);
}
