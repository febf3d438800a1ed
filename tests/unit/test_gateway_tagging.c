/*
 * test_gateway_tagging.c - the wire side of S3 tags (gw_tagging.c, gw_parse_tagging): the XML
 * body parser with well-formed and malformed documents, the x-amz-tagging query-string reader,
 * every limit of gw_tags_check at and just past its bound (10 / 50 tags, 128 / 256 characters
 * counted as Unicode code points, "aws:", duplicates, characters), and the <Tagging> writer read
 * back by the parser.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "cu_main.h"
#include "gw_wire.h"

#define CAP (64 * 1024)

static gw_s3err parse(const char *xml, md_meta **t, size_t *n)
{
    return gw_parse_tagging(xml, strlen(xml), CAP, t, n);
}

static void test_parse(void)
{
    md_meta *t;
    size_t n;
    CU_ASSERT_EQUAL(parse("<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet>"
                          "<Tag><Key>a b</Key><Value>1</Value></Tag>"
                          "<Tag><Key>c</Key><Value></Value></Tag></TagSet></Tagging>",
                          &t, &n),
                    GW_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(t[0].name, "a b");
    CU_ASSERT_STRING_EQUAL(t[0].value, "1");
    CU_ASSERT_STRING_EQUAL(t[1].name, "c");
    CU_ASSERT_STRING_EQUAL(t[1].value, "");
    md_meta_free(t, n);
    /* An empty TagSet is an empty set (PutObjectTagging with it removes every tag). */
    CU_ASSERT_EQUAL(parse("<Tagging><TagSet/></Tagging>", &t, &n), GW_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NULL(t);
    static const char *const bad[] = {
        "",
        "not xml",
        "<Tagging/>",
        "<Other><TagSet/></Other>",
        "<Tagging><TagSet/><TagSet/></Tagging>",
        "<Tagging><TagSet><Tag><Value>v</Value></Tag></TagSet></Tagging>",
        "<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>",
        "<Tagging><TagSet><Tag><Key>k</Key><Key>j</Key><Value/></Tag></TagSet></Tagging>",
        "<!DOCTYPE x [<!ENTITY e \"k\">]><Tagging><TagSet/></Tagging>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(parse(bad[i], &t, &n), GW_MALFORMED_XML);
        CU_ASSERT_PTR_NULL(t);
    }
    /* More tags than any limit allows is refused by the parser already (bounded memory). */
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "<Tagging><TagSet>");
    for (int i = 0; i < 4 * GW_MAX_BUCKET_TAGS + 1; i++)
        evbuffer_add_printf(b, "<Tag><Key>k%d</Key><Value/></Tag>", i);
    evbuffer_add_printf(b, "</TagSet></Tagging>");
    size_t len = evbuffer_get_length(b);
    CU_ASSERT_EQUAL(gw_parse_tagging((const char *)evbuffer_pullup(b, -1), len, CAP, &t, &n),
                    GW_MALFORMED_XML);
    CU_ASSERT_EQUAL(gw_parse_tagging((const char *)evbuffer_pullup(b, -1), len, 100, &t, &n),
                    GW_ENTITY_TOO_LARGE);
    evbuffer_free(b);
}

static void test_query(void)
{
    md_meta *t;
    size_t n;
    char msg[200];
    CU_ASSERT_EQUAL(gw_tags_from_query("a=1&b=x+y%2Bz&c=&d", &t, &n, msg, sizeof(msg)), GW_OK);
    CU_ASSERT_EQUAL_FATAL(n, 4);
    CU_ASSERT_STRING_EQUAL(t[1].name, "b");
    CU_ASSERT_STRING_EQUAL(t[1].value, "x y+z");
    CU_ASSERT_STRING_EQUAL(t[2].value, "");
    CU_ASSERT_STRING_EQUAL(t[3].name, "d");
    CU_ASSERT_STRING_EQUAL(t[3].value, "");
    md_meta_free(t, n);
    CU_ASSERT_EQUAL(gw_tags_from_query("", &t, &n, msg, sizeof(msg)), GW_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(gw_tags_from_query("a=1&&b=2&", &t, &n, msg, sizeof(msg)), GW_OK);
    CU_ASSERT_EQUAL(n, 2);
    md_meta_free(t, n);
    CU_ASSERT_EQUAL(gw_tags_from_query("a=1&a=2", &t, &n, msg, sizeof(msg)), GW_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "duplicates"));
    CU_ASSERT_EQUAL(gw_tags_from_query("a=%zz", &t, &n, msg, sizeof(msg)), GW_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(gw_tags_from_query("a=%00", &t, &n, msg, sizeof(msg)), GW_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NULL(t);
}

/* n tags k0..k(n-1) with the value v. */
static md_meta *make(size_t n, const char *v)
{
    md_meta *t = calloc(n ? n : 1, sizeof(*t));
    for (size_t i = 0; i < n; i++) {
        char k[24]; /* "k" and a size_t */
        snprintf(k, sizeof(k), "k%zu", i);
        t[i].name = strdup(k);
        t[i].value = strdup(v);
    }
    return t;
}

/* One tag (key, value) through gw_tags_check for objects. */
static gw_s3err one(const char *key, const char *value)
{
    md_meta t = {(char *)key, (char *)value};
    char msg[200];
    return gw_tags_check(&t, 1, GW_MAX_OBJECT_TAGS, msg, sizeof(msg));
}

/* s repeated n times (heap). */
static char *rep(const char *s, size_t n)
{
    size_t l = strlen(s);
    char *out = malloc(l * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * l, s, l);
    out[l * n] = 0;
    return out;
}

static void test_limits(void)
{
    char msg[200];
    md_meta *t = make(11, "v");
    CU_ASSERT_EQUAL(gw_tags_check(t, 10, GW_MAX_OBJECT_TAGS, msg, sizeof(msg)), GW_OK);
    CU_ASSERT_EQUAL(gw_tags_check(t, 11, GW_MAX_OBJECT_TAGS, msg, sizeof(msg)), GW_BAD_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "10"));
    md_meta_free(t, 11);
    t = make(51, "v");
    CU_ASSERT_EQUAL(gw_tags_check(t, 50, GW_MAX_BUCKET_TAGS, msg, sizeof(msg)), GW_OK);
    CU_ASSERT_EQUAL(gw_tags_check(t, 51, GW_MAX_BUCKET_TAGS, msg, sizeof(msg)), GW_INVALID_TAG);
    md_meta_free(t, 51);

    char *k128 = rep("\xc3\xa9", 128), *k129 = rep("k", 129);
    char *v256 = rep("\xe2\x82\xac", 256), *v257 = rep("v", 257);
    CU_ASSERT_EQUAL(one(k128, v256), GW_OK); /* characters, not bytes */
    CU_ASSERT_EQUAL(one(k129, "v"), GW_INVALID_TAG);
    CU_ASSERT_EQUAL(one("k", v257), GW_INVALID_TAG);
    free(k128), free(k129), free(v256), free(v257);

    CU_ASSERT_EQUAL(one("", "v"), GW_INVALID_TAG);
    CU_ASSERT_EQUAL(one("k", ""), GW_OK);
    CU_ASSERT_EQUAL(one("aws:x", "v"), GW_INVALID_TAG);
    CU_ASSERT_EQUAL(one("AWS:x", "v"), GW_INVALID_TAG);
    CU_ASSERT_EQUAL(one("a+b-c=d.e_f:g/h@i j", "0 9"), GW_OK);
    CU_ASSERT_EQUAL(one("a*b", "v"), GW_INVALID_TAG);
    CU_ASSERT_EQUAL(one("k", "a\tb"), GW_INVALID_TAG);
    CU_ASSERT_EQUAL(one("k", "a\xc2\x85"), GW_INVALID_TAG); /* C1 control */
    CU_ASSERT_EQUAL(one("k", "\xff"), GW_INVALID_TAG);      /* not UTF-8 */
    CU_ASSERT_EQUAL(one("\xe6\x97\xa5\xe6\x9c\xac", "v"), GW_OK);

    md_meta dup[2] = {{"Same", "1"}, {"Same", "2"}};
    CU_ASSERT_EQUAL(gw_tags_check(dup, 2, GW_MAX_OBJECT_TAGS, msg, sizeof(msg)), GW_INVALID_TAG);
    dup[1].name = "same"; /* keys are case-sensitive */
    CU_ASSERT_EQUAL(gw_tags_check(dup, 2, GW_MAX_OBJECT_TAGS, msg, sizeof(msg)), GW_OK);
}

static void test_document(void)
{
    md_meta in[2] = {{"a&b", "<v>"}, {"e", ""}}, *t;
    size_t n;
    struct evbuffer *b = evbuffer_new();
    CU_ASSERT_EQUAL_FATAL(gw_xml_tagging(b, in, 2), CM_OK);
    size_t len = evbuffer_get_length(b);
    CU_ASSERT_EQUAL_FATAL(gw_parse_tagging((const char *)evbuffer_pullup(b, -1), len, CAP, &t, &n),
                          GW_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(t[0].name, "a&b");
    CU_ASSERT_STRING_EQUAL(t[0].value, "<v>");
    CU_ASSERT_STRING_EQUAL(t[1].value, "");
    md_meta_free(t, n);
    evbuffer_free(b);
    md_meta *c;
    CU_ASSERT_EQUAL(gw_tags_copy(in, 2, &c, &n), GW_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_STRING_EQUAL(c[0].value, "<v>");
    CU_ASSERT_PTR_NOT_EQUAL(c[0].value, in[0].value);
    md_meta_free(c, n);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"parse", test_parse},
                                    {"x-amz-tagging", test_query},
                                    {"limits", test_limits},
                                    {"document", test_document},
                                    {NULL, NULL}};
    cu_add_suite("gateway tagging", tests);
}
