/*
 * test_meta_sse.c - the encryption fields of records (OT_SSE, PT_SSE, BT_SSE): they round-trip,
 * they make the format byte 3 (and only they do: a plain record keeps its format), a reader
 * refuses a bad mode or length and an encrypted part with an inline body, and setting a bucket's
 * default encryption keeps its tags (md_bucket_sse_set).
 */
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cu_main.h"
#include "md.h"
#include "md_int.h"

static md_part sealed_part(uint32_t number)
{
    md_part p;
    memset(&p, 0, sizeof(p));
    p.number = number;
    p.size = 100000;
    p.layout.size = 100000 + 2 * 16;
    p.layout.k = 4;
    p.layout.m = 2;
    p.layout.cell_size = 65536;
    p.layout.blob[0] = (uint8_t)number;
    p.sse_seg = 65536;
    p.sse_key_len = 65;
    for (int i = 0; i < 65; i++)
        p.sse_key[i] = (uint8_t)(i * 3 + number);
    return p;
}

static void test_object_round_trip(void)
{
    md_object o = {0}, d;
    md_part parts[2] = {sealed_part(1), sealed_part(2)};
    uint8_t *buf;
    size_t len;
    o.key = "k";
    o.size = 200000;
    o.sse.mode = MD_SSE_C;
    memset(o.sse.salt, 0x5a, sizeof(o.sse.salt));
    memset(o.sse.verify, 0xa5, sizeof(o.sse.verify));
    o.parts = parts;
    o.nparts = 2;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL(buf[0], MD_FORMAT_V3);
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf, len, &d), CM_OK);
    CU_ASSERT_EQUAL(d.sse.mode, MD_SSE_C);
    CU_ASSERT_EQUAL(memcmp(d.sse.salt, o.sse.salt, 16), 0);
    CU_ASSERT_EQUAL(memcmp(d.sse.verify, o.sse.verify, 32), 0);
    CU_ASSERT_EQUAL_FATAL(d.nparts, 2);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(d.parts[i].sse_seg, 65536);
        CU_ASSERT_EQUAL(d.parts[i].sse_key_len, 65);
        CU_ASSERT_EQUAL(memcmp(d.parts[i].sse_key, parts[i].sse_key, 65), 0);
    }
    md_object_release(&d);
    free(buf);
    /* SSE-S3 carries the mode alone. */
    o.sse.mode = MD_SSE_S3;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf, len, &d), CM_OK);
    CU_ASSERT_EQUAL(d.sse.mode, MD_SSE_S3);
    md_object_release(&d);
    free(buf);
    /* Without encryption the record keeps format 1. */
    md_object plain = {0};
    plain.key = "k";
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&plain, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL(buf[0], MD_FORMAT_V1);
    free(buf);
}

static void test_part_and_upload(void)
{
    md_part p = sealed_part(7), d;
    md_wbuf w = {0};
    CU_ASSERT_EQUAL_FATAL(md_part_encode(&p, &w), CM_OK);
    CU_ASSERT_EQUAL(w.p[0], MD_FORMAT_V3);
    CU_ASSERT_EQUAL_FATAL(md_part_decode(w.p, w.len, &d), CM_OK);
    CU_ASSERT_EQUAL(d.sse_key_len, 65);
    CU_ASSERT_EQUAL(memcmp(d.sse_key, p.sse_key, 65), 0);
    md_part_release(&d);
    md_w_free(&w);
    /* An encrypted part is never inline: a record that says so is refused. */
    md_part bad = sealed_part(8);
    uint8_t body[4] = "abcd";
    bad.size = 4;
    bad.inline_data = body;
    int saved = cm_log_threshold;
    cm_log_threshold = -1; /* the corruption is expected */
    CU_ASSERT_EQUAL_FATAL(md_part_encode(&bad, &w), CM_OK);
    CU_ASSERT_EQUAL(md_part_decode(w.p, w.len, &d), CM_ERR_CORRUPT);
    md_w_free(&w);
    cm_log_threshold = saved;
    /* The upload's template carries the encryption every part follows. */
    md_upload up = {0}, du;
    up.key = "k";
    snprintf(up.upload_id, sizeof(up.upload_id), "0123");
    up.tmpl.sse.mode = MD_SSE_S3;
    CU_ASSERT_EQUAL_FATAL(md_upload_encode(&up, &w), CM_OK);
    CU_ASSERT_EQUAL(w.p[0], MD_FORMAT_V3);
    CU_ASSERT_EQUAL_FATAL(md_upload_decode(w.p, w.len, &du), CM_OK);
    CU_ASSERT_EQUAL(du.tmpl.sse.mode, MD_SSE_S3);
    md_upload_release(&du);
    md_w_free(&w);
}

static void test_bad_fields(void)
{
    /* Format 3, OT_KEY "k", then OT_SSE with a mode, then with a wrong length. */
    uint8_t rec[] = {3, 1, 0, 0, 0, 1, 'k', 32, 0, 0, 0, 1, 9};
    md_object d;
    int saved = cm_log_threshold;
    cm_log_threshold = -1;
    CU_ASSERT_EQUAL(md_object_decode(rec, sizeof(rec), &d), CM_ERR_CORRUPT); /* mode 9 */
    rec[sizeof(rec) - 1] = MD_SSE_C; /* SSE-C without salt and verifier */
    CU_ASSERT_EQUAL(md_object_decode(rec, sizeof(rec), &d), CM_ERR_CORRUPT);
    rec[sizeof(rec) - 1] = MD_SSE_S3;
    CU_ASSERT_EQUAL_FATAL(md_object_decode(rec, sizeof(rec), &d), CM_OK);
    CU_ASSERT_EQUAL(d.sse.mode, MD_SSE_S3);
    md_object_release(&d);
    /* A part whose encryption field is too short to hold a key. */
    uint8_t prec[] = {3, 10, 0, 0, 0, 4, 0, 1, 0, 0};
    md_part p;
    CU_ASSERT_EQUAL(md_part_decode(prec, sizeof(prec), &p), CM_ERR_CORRUPT);
    cm_log_threshold = saved;
}

static void test_bucket_default(void)
{
    md_store *md = NULL;
    md_bucket b = {0}, got;
    md_meta tag = {"owner", "ops"}, *tags = NULL;
    size_t ntags = 0;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/md", cu_tmpdir());
    CU_ASSERT_EQUAL_FATAL(md_open(dir, 0, &md), CM_OK);
    snprintf(b.name, sizeof(b.name), "enc");
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(md, &b), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_tags_set(md, "enc", &tag, 1), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_sse_set(md, "enc", MD_SSE_S3, 1), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_get(md, "enc", &got), CM_OK);
    CU_ASSERT_EQUAL(got.sse_default, MD_SSE_S3);
    CU_ASSERT_EQUAL(got.sse_bucket_key, 1);
    CU_ASSERT_EQUAL_FATAL(md_bucket_tags_get(md, "enc", &tags, &ntags), CM_OK);
    CU_ASSERT_EQUAL(ntags, 1); /* the tags survive */
    md_meta_free(tags, ntags);
    /* Setting tags keeps the encryption, removing the encryption keeps the tags. */
    CU_ASSERT_EQUAL_FATAL(md_bucket_tags_set(md, "enc", &tag, 1), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_get(md, "enc", &got), CM_OK);
    CU_ASSERT_EQUAL(got.sse_default, MD_SSE_S3);
    CU_ASSERT_EQUAL(md_bucket_sse_set(md, "enc", MD_SSE_NONE, 0), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_get(md, "enc", &got), CM_OK);
    CU_ASSERT_EQUAL(got.sse_default, MD_SSE_NONE);
    CU_ASSERT_EQUAL_FATAL(md_bucket_tags_get(md, "enc", &tags, &ntags), CM_OK);
    CU_ASSERT_EQUAL(ntags, 1);
    md_meta_free(tags, ntags);
    CU_ASSERT_EQUAL(md_bucket_sse_set(md, "nope", MD_SSE_S3, 0), CM_ERR_NOTFOUND);
    md_close(md);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"object_round_trip", test_object_round_trip},
        {"part_and_upload", test_part_and_upload},
        {"bad_fields", test_bad_fields},
        {"bucket_default", test_bucket_default},
        {NULL, NULL},
    };
    cu_add_suite("meta_sse", tests);
}
