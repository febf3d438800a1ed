/*
 * test_meta_cors.c - the bucket's CORS configuration in its record (md_btags.c): set, read back,
 * replaced, removed, kept across a reopen and gone with the bucket; and the rewrite rule both
 * bucket settings rely on: setting one (CORS, tags, default encryption, access settings,
 * versioning) keeps the others and every other field of the record, also one this reader does not
 * know (a record written by a newer branch). The website configuration (BT_WEBSITE) is the same
 * kind of field: its own cases at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "md.h"
#include "md_int.h"

static md_store *open_store(const char *name)
{
    char dir[512];
    md_store *md = NULL;
    snprintf(dir, sizeof(dir), "%s/%s", cu_tmpdir(), name);
    CU_ASSERT_FATAL(md_open(dir, 1 << 26, &md) == CM_OK);
    return md;
}

static void mk_bucket(md_store *md, const char *name)
{
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "%s", name);
    snprintf(b.owner, sizeof(b.owner), "AKIDEXAMPLE");
    b.created_ms = 1700000000000LL;
    CU_ASSERT_EQUAL(md_bucket_create(md, &b), CM_OK);
}

/* The CORS (website 0) or website (1) document of bucket b is want (NULL: none). */
static void expect_doc(md_store *md, int website, const char *want)
{
    char *xml = NULL;
    size_t len = 0;
    cm_err e = website ? md_bucket_website_get(md, "b", &xml, &len)
                       : md_bucket_cors_get(md, "b", &xml, &len);
    CU_ASSERT_EQUAL_FATAL(e, CM_OK);
    if (!want) {
        CU_ASSERT_PTR_NULL(xml);
        return;
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
    CU_ASSERT_EQUAL(len, strlen(want));
    CU_ASSERT_STRING_EQUAL(xml, want);
    free(xml);
}

static void expect_cors(md_store *md, const char *want)
{
    expect_doc(md, 0, want);
}

static void test_cors_record(void)
{
    md_store *md = open_store("cors");
    md_meta tags[1] = {{"team", "web"}}, *got;
    size_t n;
    char *xml;

    mk_bucket(md, "b");
    expect_cors(md, NULL);
    CU_ASSERT_EQUAL(md_bucket_cors_get(md, "nope", &xml, &n), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_bucket_cors_set(md, "nope", "<x/>", 4), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_bucket_cors_set(md, "b", "<one/>", 6), CM_OK);
    expect_cors(md, "<one/>");
    /* tags set after CORS keep it; CORS replaced keeps the tags */
    CU_ASSERT_EQUAL(md_bucket_tags_set(md, "b", tags, 1), CM_OK);
    expect_cors(md, "<one/>");
    CU_ASSERT_EQUAL(md_bucket_cors_set(md, "b", "<two/>", 6), CM_OK);
    expect_cors(md, "<two/>");
    CU_ASSERT_EQUAL_FATAL(md_bucket_tags_get(md, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(got[0].value, "web");
    md_meta_free(got, n);
    md_bucket bk;
    CU_ASSERT_EQUAL(md_bucket_get(md, "b", &bk), CM_OK);
    CU_ASSERT_STRING_EQUAL(bk.owner, "AKIDEXAMPLE");
    CU_ASSERT_EQUAL(bk.created_ms, 1700000000000LL);
    md_close(md);

    md = open_store("cors"); /* durable */
    expect_cors(md, "<two/>");
    CU_ASSERT_EQUAL(md_bucket_cors_set(md, "b", NULL, 0), CM_OK);
    expect_cors(md, NULL);
    CU_ASSERT_EQUAL_FATAL(md_bucket_tags_get(md, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 1);
    md_meta_free(got, n);
    /* gone with the bucket: a re-created one starts without */
    CU_ASSERT_EQUAL(md_bucket_cors_set(md, "b", "<three/>", 8), CM_OK);
    md_part *parts = NULL;
    CU_ASSERT_EQUAL(md_bucket_delete(md, "b", &parts, &n), CM_OK);
    md_parts_free(parts, n);
    mk_bucket(md, "b");
    expect_cors(md, NULL);
    md_close(md);
}

/* A record with a field this reader does not know (tag 200) keeps it through both rewrites. */
static void test_unknown_fields_kept(void)
{
    md_bucket b = {0};
    md_wbuf w = {0}, w2 = {0}, w3 = {0};
    md_meta tags[1] = {{"k", "v"}};
    char *xml;
    size_t len;
    snprintf(b.name, sizeof(b.name), "b");
    CU_ASSERT_EQUAL_FATAL(md_bucket_encode(&b, &w), CM_OK);
    static const uint8_t unknown[] = {200, 0, 0, 0, 3, 'n', 'e', 'w'};
    md_w_bytes(&w, unknown, sizeof(unknown));
    CU_ASSERT_EQUAL_FATAL(md_bucket_encode_cors(w.p, w.len, "<c/>", 4, &w2), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_retag(w2.p, w2.len, tags, 1, &w3), CM_OK);
    CU_ASSERT_PTR_NOT_NULL(memmem(w3.p, w3.len, unknown, sizeof(unknown)));
    CU_ASSERT_EQUAL(md_bucket_cors_decode(w3.p, w3.len, &xml, &len), CM_OK);
    CU_ASSERT_STRING_EQUAL(xml, "<c/>");
    free(xml);
    md_bucket out;
    CU_ASSERT_EQUAL(md_bucket_decode(w3.p, w3.len, &out), CM_OK);
    CU_ASSERT_STRING_EQUAL(out.name, "b");
    /* a truncated record is corrupt, not rewritten */
    md_wbuf w4 = {0};
    CU_ASSERT_EQUAL(md_bucket_encode_cors(w3.p, w3.len - 1, NULL, 0, &w4), CM_ERR_CORRUPT);
    md_w_free(&w);
    md_w_free(&w2);
    md_w_free(&w3);
    md_w_free(&w4);
}

/* Every bucket setting is its own rewrite (tags, CORS, default encryption, access settings,
 * versioning); each must keep all the others. */
static void test_settings_keep_each_other(void)
{
    md_store *md = open_store("all");
    md_meta tags[1] = {{"team", "web"}}, *got = NULL;
    size_t n = 0;
    md_bucket from = {0}, b;

    mk_bucket(md, "b");
    from.acl = MD_ACL_PUBLIC_READ;
    from.pab = MD_PAB_BLOCK_POLICY;
    CU_ASSERT_EQUAL(md_bucket_cors_set(md, "b", "<c/>", 4), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_sse_set(md, "b", MD_SSE_S3, 1), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_tags_set(md, "b", tags, 1), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_access_set(md, "b", &from, MD_ACCESS_ACL | MD_ACCESS_PAB), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "b", MD_VERS_ENABLED), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_sse_set(md, "b", MD_SSE_S3, 0), CM_OK); /* once more, last */
    expect_cors(md, "<c/>");
    CU_ASSERT_EQUAL_FATAL(md_bucket_tags_get(md, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 1);
    if (n == 1)
        CU_ASSERT_STRING_EQUAL(got[0].value, "web");
    md_meta_free(got, n);
    CU_ASSERT_EQUAL_FATAL(md_bucket_get(md, "b", &b), CM_OK);
    CU_ASSERT_EQUAL(b.sse_default, MD_SSE_S3);
    CU_ASSERT_EQUAL(b.acl, MD_ACL_PUBLIC_READ);
    CU_ASSERT_EQUAL(b.pab, MD_PAB_BLOCK_POLICY);
    CU_ASSERT_EQUAL(b.versioning, MD_VERS_ENABLED);
    CU_ASSERT_STRING_EQUAL(b.owner, "AKIDEXAMPLE");
    md_close(md);
}

/* ---- the website configuration (BT_WEBSITE), the same kind of field ---- */

static void test_website_record(void)
{
    md_store *md = open_store("web");
    md_meta tags[1] = {{"k", "v"}}, *got = NULL;
    size_t n = 0;
    char *xml;

    mk_bucket(md, "b");
    expect_doc(md, 1, NULL);
    CU_ASSERT_EQUAL(md_bucket_website_get(md, "nope", &xml, &n), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_bucket_website_set(md, "nope", "<w/>", 4), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_bucket_website_set(md, "b", "<w1/>", 5), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_cors_set(md, "b", "<c/>", 4), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_tags_set(md, "b", tags, 1), CM_OK);
    expect_doc(md, 1, "<w1/>"); /* kept by the CORS and tag rewrites */
    CU_ASSERT_EQUAL(md_bucket_website_set(md, "b", "<w2/>", 5), CM_OK);
    expect_doc(md, 1, "<w2/>");
    expect_doc(md, 0, "<c/>"); /* and keeps them */
    CU_ASSERT_EQUAL_FATAL(md_bucket_tags_get(md, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 1);
    md_meta_free(got, n);
    md_close(md);

    md = open_store("web"); /* durable */
    expect_doc(md, 1, "<w2/>");
    CU_ASSERT_EQUAL(md_bucket_website_set(md, "b", NULL, 0), CM_OK);
    expect_doc(md, 1, NULL);
    expect_doc(md, 0, "<c/>");
    CU_ASSERT_EQUAL(md_bucket_website_set(md, "b", "<w3/>", 5), CM_OK);
    md_part *parts = NULL;
    size_t np = 0;
    CU_ASSERT_EQUAL(md_bucket_delete(md, "b", &parts, &np), CM_OK);
    free(parts);
    mk_bucket(md, "b"); /* a re-created bucket starts without one */
    expect_doc(md, 1, NULL);
    md_close(md);
}

static void test_website_unknown_field_kept(void)
{
    md_bucket b = {0};
    md_wbuf w = {0}, w2 = {0}, w3 = {0};
    char *xml;
    size_t len;
    snprintf(b.name, sizeof(b.name), "b");
    CU_ASSERT_EQUAL_FATAL(md_bucket_encode(&b, &w), CM_OK);
    static const uint8_t unknown[] = {201, 0, 0, 0, 2, 'h', 'i'};
    md_w_bytes(&w, unknown, sizeof(unknown));
    CU_ASSERT_EQUAL_FATAL(md_bucket_encode_website(w.p, w.len, "<w/>", 4, &w2), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_encode_cors(w2.p, w2.len, "<c/>", 4, &w3), CM_OK);
    CU_ASSERT_PTR_NOT_NULL(memmem(w3.p, w3.len, unknown, sizeof(unknown)));
    CU_ASSERT_EQUAL(md_bucket_website_decode(w3.p, w3.len, &xml, &len), CM_OK);
    CU_ASSERT_STRING_EQUAL(xml, "<w/>");
    free(xml);
    CU_ASSERT_EQUAL(md_bucket_cors_decode(w3.p, w3.len, &xml, &len), CM_OK);
    CU_ASSERT_STRING_EQUAL(xml, "<c/>");
    free(xml);
    md_w_free(&w);
    md_w_free(&w2);
    md_w_free(&w3);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"cors record", test_cors_record},
                                    {"unknown fields kept", test_unknown_fields_kept},
                                    {"settings keep each other", test_settings_keep_each_other},
                                    {"website record", test_website_record},
                                    {"website unknown field kept", test_website_unknown_field_kept},
                                    {NULL, NULL}};
    cu_add_suite("meta cors", tests);
}
