/*
 * test_gateway_lifecycle.c - the bucket lifecycle document and rules (gw_lcrules.c): a document
 * using every element parsed into its fields, with or without the S3 namespace; the document
 * written back and parsed again to the same rules; IDs made up for rules without one; each
 * refusal S3 makes (MalformedXML, InvalidArgument, InvalidRequest with its message,
 * NotImplemented for transitions); filters by prefix, tags, strict size bounds and their
 * conjunction; S3's day arithmetic (rounded up to the next midnight UTC, and to the next test-clock
 * day with a short day_s), Date rules and ISO 8601 dates; what each rule does to one version of a
 * key (gw_lc_version_action): days since a version became noncurrent, the NewerNoncurrentVersions
 * newest kept, a lone delete marker removed only by ExpiredObjectDeleteMarker, filters on versions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "cu_main.h"
#include "gw_lc.h"

#define NS " xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""
#define DAY_MS 86400000LL

static gw_s3err parse(const char *xml, gw_lc_config *c, char *msg)
{
    return gw_lc_parse(xml, strlen(xml), GW_LC_XML_CAP, c, msg, 200);
}

static const char FULL[] =
    "<LifecycleConfiguration" NS ">"
    "<Rule><ID>tmp</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status>"
    "<Expiration><Days>7</Days></Expiration></Rule>"
    "<Rule><ID>and</ID><Filter><And><Prefix>logs/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>"
    "<Tag><Key>k2</Key><Value></Value></Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
    "<ObjectSizeLessThan>1000</ObjectSizeLessThan></And></Filter><Status>Disabled</Status>"
    "<Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration>"
    "<NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays>"
    "<NewerNoncurrentVersions>5</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>"
    "<Rule><ID>legacy</ID><Prefix>old/</Prefix><Status>Enabled</Status>"
    "<AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation>"
    "</AbortIncompleteMultipartUpload>"
    "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>"
    "<Rule><ID>tag</ID><Filter><Tag><Key>t</Key><Value>1</Value></Tag></Filter>"
    "<Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
    "</LifecycleConfiguration>";

static void check_full(const gw_lc_config *c)
{
    CU_ASSERT_EQUAL_FATAL(c->n, 4);
    const gw_lc_rule *r = &c->rules[0];
    CU_ASSERT_STRING_EQUAL(r->id, "tmp");
    CU_ASSERT(r->enabled);
    CU_ASSERT_STRING_EQUAL(r->prefix, "tmp/");
    CU_ASSERT_EQUAL(r->exp_days, 7);
    CU_ASSERT_EQUAL(r->exp_date_ms, -1);
    CU_ASSERT(!r->legacy_prefix && !r->has_gt && !r->has_lt && !r->ntags);
    r = &c->rules[1];
    CU_ASSERT(!r->enabled);
    CU_ASSERT_STRING_EQUAL(r->prefix, "logs/");
    CU_ASSERT_EQUAL_FATAL(r->ntags, 2);
    CU_ASSERT_STRING_EQUAL(r->tags[1].name, "k2");
    CU_ASSERT_STRING_EQUAL(r->tags[1].value, "");
    CU_ASSERT(r->has_gt && r->size_gt == 10 && r->has_lt && r->size_lt == 1000);
    CU_ASSERT_EQUAL(r->exp_date_ms, 1893456000000LL); /* 2030-01-01T00:00:00Z */
    CU_ASSERT_EQUAL(r->exp_days, 0);
    CU_ASSERT_EQUAL(r->nc_days, 3);
    CU_ASSERT_EQUAL(r->nc_newer, 5);
    r = &c->rules[2];
    CU_ASSERT(r->legacy_prefix);
    CU_ASSERT_STRING_EQUAL(r->prefix, "old/");
    CU_ASSERT_EQUAL(r->abort_days, 2);
    CU_ASSERT(r->exp_marker);
    r = &c->rules[3];
    CU_ASSERT_STRING_EQUAL(r->prefix, "");
    CU_ASSERT_EQUAL_FATAL(r->ntags, 1);
    CU_ASSERT_STRING_EQUAL(r->tags[0].name, "t");
}

static void test_parse_full(void)
{
    gw_lc_config c, again;
    char msg[200];
    CU_ASSERT_EQUAL_FATAL(parse(FULL, &c, msg), GW_OK);
    check_full(&c);
    /* Written back and read again: the same rules (what GET answers, what the worker reads). */
    struct evbuffer *b = evbuffer_new();
    CU_ASSERT_EQUAL_FATAL(gw_lc_write(b, &c), CM_OK);
    size_t len = evbuffer_get_length(b);
    const char *doc = (const char *)evbuffer_pullup(b, -1);
    CU_ASSERT_EQUAL_FATAL(gw_lc_parse(doc, len, GW_LC_XML_CAP, &again, msg, sizeof(msg)), GW_OK);
    check_full(&again);
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "<Date>2030-01-01T00:00:00.000Z</Date>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "<Prefix>old/</Prefix><Status>"));
    gw_lc_config_release(&again);
    gw_lc_config_release(&c);
    CU_ASSERT_EQUAL(c.n, 0);
    evbuffer_free(b);
}

static void test_ids_and_empty_filter(void)
{
    gw_lc_config c;
    char msg[200];
    CU_ASSERT_EQUAL_FATAL(
        parse(
            "<LifecycleConfiguration>"
            "<Rule><Status>Enabled</Status><Filter/><Expiration><Days>1</Days></Expiration></Rule>"
            "<Rule><Status>Enabled</Status><Filter></Filter><Expiration><Days>2</Days>"
            "</Expiration></Rule></LifecycleConfiguration>",
            &c, msg),
        GW_OK);
    CU_ASSERT_EQUAL_FATAL(c.n, 2);
    CU_ASSERT(strlen(c.rules[0].id) > 0);
    CU_ASSERT(strcmp(c.rules[0].id, c.rules[1].id) != 0);
    CU_ASSERT_STRING_EQUAL(c.rules[0].prefix, "");
    CU_ASSERT(gw_lc_rule_matches(&c.rules[0], "anything", 0, NULL, 0));
    gw_lc_config_release(&c);
    /* A prefix and a tag keep their spaces (keys may have them); a number may be padded. */
    CU_ASSERT_EQUAL_FATAL(parse("<LifecycleConfiguration><Rule><ID> id </ID><Status> Enabled "
                                "</Status><Filter><And><Prefix> a </Prefix><Tag><Key> k</Key>"
                                "<Value>v </Value></Tag></And></Filter><Expiration><Days>\n 3 "
                                "</Days></Expiration></Rule></LifecycleConfiguration>",
                                &c, msg),
                          GW_OK);
    CU_ASSERT_STRING_EQUAL(c.rules[0].id, " id ");
    CU_ASSERT_STRING_EQUAL(c.rules[0].prefix, " a ");
    CU_ASSERT_STRING_EQUAL(c.rules[0].tags[0].name, " k");
    CU_ASSERT_STRING_EQUAL(c.rules[0].tags[0].value, "v ");
    CU_ASSERT_EQUAL(c.rules[0].exp_days, 3);
    CU_ASSERT(c.rules[0].enabled);
    gw_lc_config_release(&c);
}

#define RULE(body)                                                                                 \
    "<LifecycleConfiguration><Rule><ID>r</ID><Status>Enabled</Status>" body                        \
    "</Rule></LifecycleConfiguration>"
#define EXP1 "<Expiration><Days>1</Days></Expiration>"

static void test_refused(void)
{
    static const struct {
        const char *xml;
        gw_s3err want;
        const char *msg; /* a part of the message, or NULL */
    } cases[] = {
        {"", GW_MALFORMED_XML, NULL},
        {"<LifecycleConfiguration/>", GW_MALFORMED_XML, NULL},
        {"<Other><Rule/></Other>", GW_MALFORMED_XML, NULL},
        {"<LifecycleConfiguration><Rule><Filter/>" EXP1 "</Rule></LifecycleConfiguration>",
         GW_MALFORMED_XML, NULL},
        {RULE("<Filter/><Status>Enabled</Status>" EXP1), GW_MALFORMED_XML, NULL}, /* twice */
        {RULE(EXP1), GW_MALFORMED_XML, NULL},                                     /* no filter */
        {RULE("<Filter/><Prefix/>" EXP1), GW_MALFORMED_XML, NULL},
        {RULE("<Filter><Prefix>a</Prefix><Prefix>b</Prefix></Filter>" EXP1), GW_MALFORMED_XML,
         NULL},
        {RULE("<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter>" EXP1),
         GW_MALFORMED_XML, NULL},
        {RULE("<Filter><And/></Filter>" EXP1), GW_MALFORMED_XML, NULL},
        {RULE("<Filter><Tag><Key>k</Key></Tag></Filter>" EXP1), GW_MALFORMED_XML, NULL},
        {RULE("<Filter><Bogus/></Filter>" EXP1), GW_MALFORMED_XML, NULL},
        {RULE("<Filter/><Bogus/>" EXP1), GW_MALFORMED_XML, NULL},
        {RULE("<Filter/>" EXP1 EXP1), GW_MALFORMED_XML, NULL},
        {RULE("<Filter><ObjectSizeLessThan>x</ObjectSizeLessThan></Filter>" EXP1), GW_MALFORMED_XML,
         NULL},
        {RULE("<Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
              "<ObjectSizeLessThan>10</ObjectSizeLessThan></And></Filter>" EXP1),
         GW_INVALID_ARGUMENT, "ObjectSizeGreaterThan"},
        {RULE("<Filter><And><Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>k</Key>"
              "<Value>2</Value></Tag></And></Filter>" EXP1),
         GW_INVALID_REQUEST, "Duplicate Tag Keys"},
        {RULE("<Filter><Tag><Key>aws:x</Key><Value>1</Value></Tag></Filter>" EXP1), GW_INVALID_TAG,
         NULL},
        {RULE("<Filter/><Expiration><Days>0</Days></Expiration>"), GW_INVALID_ARGUMENT,
         "'Days' for Expiration action must be a positive integer"},
        {RULE("<Filter/><Expiration><Days>-3</Days></Expiration>"), GW_INVALID_ARGUMENT, "Days"},
        {RULE("<Filter/><Expiration><Days>1.5</Days></Expiration>"), GW_MALFORMED_XML, NULL},
        {RULE("<Filter/><Expiration></Expiration>"), GW_MALFORMED_XML, NULL},
        {RULE("<Filter/><Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true"
              "</ExpiredObjectDeleteMarker></Expiration>"),
         GW_MALFORMED_XML, NULL},
        {RULE("<Filter/><Expiration><ExpiredObjectDeleteMarker>yes</ExpiredObjectDeleteMarker>"
              "</Expiration>"),
         GW_MALFORMED_XML, NULL},
        {RULE("<Filter/><Expiration><Date>2030-01-01T00:00:01Z</Date></Expiration>"),
         GW_INVALID_ARGUMENT, "midnight"},
        {RULE("<Filter/><Expiration><Date>tomorrow</Date></Expiration>"), GW_INVALID_ARGUMENT,
         NULL},
        {RULE("<Filter/>"), GW_INVALID_REQUEST, "At least one action"},
        {RULE("<Filter/><Expiration><ExpiredObjectDeleteMarker>false</ExpiredObjectDeleteMarker>"
              "</Expiration>"),
         GW_INVALID_REQUEST, "At least one action"},
        {RULE("<Filter/><NoncurrentVersionExpiration/>"), GW_MALFORMED_XML, NULL},
        {RULE("<Filter/><NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays>"
              "</NoncurrentVersionExpiration>"),
         GW_INVALID_ARGUMENT, "NoncurrentDays"},
        {RULE("<Filter/><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>"
              "<NewerNoncurrentVersions>101</NewerNoncurrentVersions>"
              "</NoncurrentVersionExpiration>"),
         GW_INVALID_ARGUMENT, "NewerNoncurrentVersions"},
        {RULE("<Filter/><AbortIncompleteMultipartUpload><DaysAfterInitiation>0"
              "</DaysAfterInitiation></AbortIncompleteMultipartUpload>"),
         GW_INVALID_ARGUMENT, "DaysAfterInitiation"},
        {RULE("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>"
              "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
              "</AbortIncompleteMultipartUpload>"),
         GW_INVALID_REQUEST, "AbortIncompleteMultipartUpload cannot be specified with Tags"},
        {RULE("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Expiration>"
              "<ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"),
         GW_INVALID_REQUEST, "ExpiredObjectDeleteMarker"},
        {RULE("<Filter/><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass>"
              "</Transition>"),
         GW_UNSUPPORTED, "Transition"},
        {"<LifecycleConfiguration><Rule><ID>a</ID><Status>Enabled</Status><Filter/>" EXP1
         "</Rule><Rule><ID>a</ID><Status>Enabled</Status><Filter/>" EXP1
         "</Rule></LifecycleConfiguration>",
         GW_INVALID_ARGUMENT, "Rule ID must be unique"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        gw_lc_config c;
        char msg[200];
        gw_s3err e = parse(cases[i].xml, &c, msg);
        if (e != cases[i].want)
            fprintf(stderr, "case %zu: got %s (%s)\n", i, gw_s3err_code(e), msg);
        CU_ASSERT_EQUAL(e, cases[i].want);
        CU_ASSERT_EQUAL(c.n, 0);
        CU_ASSERT_PTR_NULL(c.rules);
        if (cases[i].msg)
            CU_ASSERT_PTR_NOT_NULL(strstr(msg, cases[i].msg));
    }
}

static void test_limits(void)
{
    /* 1000 rules pass, 1001 do not; an ID of 255 characters passes, 256 do not. */
    size_t cap = 1100 * 120;
    char *xml = malloc(cap), id[600];
    CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
    for (int rules = 1000; rules <= 1001; rules++) {
        size_t n = (size_t)snprintf(xml, cap, "<LifecycleConfiguration>");
        for (int i = 0; i < rules; i++)
            n += (size_t)snprintf(
                xml + n, cap - n,
                "<Rule><ID>r%d</ID><Status>Enabled</Status><Filter/>" EXP1 "</Rule>", i);
        snprintf(xml + n, cap - n, "</LifecycleConfiguration>");
        gw_lc_config c;
        char msg[200];
        CU_ASSERT_EQUAL(parse(xml, &c, msg), rules == 1000 ? GW_OK : GW_INVALID_REQUEST);
        CU_ASSERT_EQUAL(c.n, rules == 1000 ? 1000u : 0u);
        gw_lc_config_release(&c);
    }
    for (size_t len = 255; len <= 256; len++) {
        memset(id, 'i', len);
        id[len] = '\0';
        snprintf(xml, cap,
                 "<LifecycleConfiguration><Rule><ID>%s</ID><Status>Enabled</Status><Filter/>" EXP1
                 "</Rule></LifecycleConfiguration>",
                 id);
        gw_lc_config c;
        char msg[200];
        CU_ASSERT_EQUAL(parse(xml, &c, msg), len == 255 ? GW_OK : GW_INVALID_ARGUMENT);
        gw_lc_config_release(&c);
    }
    gw_lc_config c;
    char msg[200];
    /* Characters, not bytes: 255 two-byte characters pass. */
    for (size_t i = 0; i < 255; i++)
        memcpy(id + 2 * i, "\xC3\xA9", 2); /* U+00E9 */
    id[510] = '\0';
    char *xml2 = malloc(1024);
    CU_ASSERT_PTR_NOT_NULL_FATAL(xml2);
    snprintf(xml2, 1024,
             "<LifecycleConfiguration><Rule><ID>%s</ID><Status>Enabled</Status><Filter/>" EXP1
             "</Rule></LifecycleConfiguration>",
             id);
    CU_ASSERT_EQUAL_FATAL(parse(xml2, &c, msg), GW_OK);
    CU_ASSERT_STRING_EQUAL(c.rules[0].id, id);
    gw_lc_config_release(&c);
    free(xml2);
    CU_ASSERT_EQUAL(gw_lc_parse(xml, strlen(xml), 10, &c, msg, sizeof(msg)), GW_ENTITY_TOO_LARGE);
    free(xml);
}

static void test_matching(void)
{
    md_meta tk[2] = {{"k", "v"}, {"k2", ""}}, other[1] = {{"k", "w"}};
    gw_lc_rule r = {.prefix = "logs/",
                    .tags = tk,
                    .ntags = 2,
                    .has_gt = 1,
                    .size_gt = 10,
                    .has_lt = 1,
                    .size_lt = 1000};
    md_meta obj[3] = {{"x", "y"}, {"k2", ""}, {"k", "v"}};
    CU_ASSERT(gw_lc_rule_matches(&r, "logs/a", 11, obj, 3));
    CU_ASSERT(gw_lc_rule_matches(&r, "logs/a", 999, obj, 3));
    CU_ASSERT(!gw_lc_rule_matches(&r, "logs/a", 10, obj, 3));   /* greater than, strictly */
    CU_ASSERT(!gw_lc_rule_matches(&r, "logs/a", 1000, obj, 3)); /* less than, strictly */
    CU_ASSERT(!gw_lc_rule_matches(&r, "log/a", 100, obj, 3));
    CU_ASSERT(!gw_lc_rule_matches(&r, "logs/a", 100, obj, 2)); /* k missing */
    CU_ASSERT(!gw_lc_rule_matches(&r, "logs/a", 100, other, 1));
    CU_ASSERT(!gw_lc_rule_matches(&r, "logs/a", 100, NULL, 0));
    CU_ASSERT(gw_lc_rule_selects(&r, "logs/a", 100)); /* tags not looked at */
    CU_ASSERT(!gw_lc_rule_selects(&r, "logs/a", 5));
    gw_lc_rule all = {.prefix = ""};
    CU_ASSERT(gw_lc_rule_matches(&all, "", 0, NULL, 0));
    CU_ASSERT(gw_lc_rule_matches(&all, "x", UINT64_MAX, NULL, 0));
    gw_lc_rule zero = {.prefix = "", .has_gt = 1, .size_gt = 0};
    CU_ASSERT(!gw_lc_rule_selects(&zero, "empty", 0)); /* ObjectSizeGreaterThan 0: not empty */
    CU_ASSERT(gw_lc_rule_selects(&zero, "one", 1));
}

static void test_days(void)
{
    int64_t created, want;
    /* S3's example: created 2014-01-15 10:30 UTC, 3 days: expires 2014-01-19 00:00 UTC. */
    CU_ASSERT_EQUAL_FATAL(gw_lc_parse_date("2014-01-15", &created), 0);
    CU_ASSERT_EQUAL_FATAL(gw_lc_parse_date("2014-01-19T00:00:00Z", &want), 0);
    gw_lc_rule r = {.prefix = "", .exp_days = 3, .exp_date_ms = -1};
    int64_t t = created + (10 * 3600 + 30 * 60) * 1000LL;
    CU_ASSERT_EQUAL(gw_lc_expiry_ms(&r, t, 86400), want);
    CU_ASSERT_EQUAL(gw_lc_expiry_ms(&r, created, 86400), created + 3 * DAY_MS); /* at midnight */
    CU_ASSERT_EQUAL(gw_lc_expiry_ms(&r, created + 1, 86400), created + 4 * DAY_MS);
    /* The test clock: a day of 1 s; 1000.5 s + 3 days -> 1004 s. */
    CU_ASSERT_EQUAL(gw_lc_expiry_ms(&r, 1000500, 1), 1004000);
    CU_ASSERT_EQUAL(gw_lc_expiry_ms(&r, 1000000, 1), 1003000);
    /* A Date rule: that date, whatever the object's age or the day length. */
    gw_lc_rule d = {.prefix = "", .exp_date_ms = want};
    CU_ASSERT_EQUAL(gw_lc_expiry_ms(&d, t, 86400), want);
    CU_ASSERT_EQUAL(gw_lc_expiry_ms(&d, t, 1), want);
    gw_lc_rule none = {.prefix = "", .exp_date_ms = -1, .abort_days = 2};
    CU_ASSERT_EQUAL(gw_lc_expiry_ms(&none, t, 86400), -1);
    CU_ASSERT_EQUAL(gw_lc_abort_ms(&none, t, 86400), created + 3 * DAY_MS);
    CU_ASSERT_EQUAL(gw_lc_abort_ms(&r, t, 86400), -1);
}

static void test_dates(void)
{
    int64_t ms = 0;
    CU_ASSERT_EQUAL(gw_lc_parse_date("1970-01-01T00:00:00Z", &ms), 0);
    CU_ASSERT_EQUAL(ms, 0);
    CU_ASSERT_EQUAL(gw_lc_parse_date("2024-02-29T00:00:00.000Z", &ms), 0);
    CU_ASSERT_EQUAL(ms, 1709164800000LL);
    CU_ASSERT_EQUAL(gw_lc_parse_date("2024-02-29T00:00:00+00:00", &ms), 0);
    CU_ASSERT_EQUAL(gw_lc_parse_date("2024-02-29T12:00:00Z", &ms), 1);
    CU_ASSERT_EQUAL(gw_lc_parse_date("2024-02-29T00:00:00.001Z", &ms), 1);
    CU_ASSERT_EQUAL(gw_lc_parse_date("2024-02-29T00:00:00+01:00", &ms), 1);
    static const char *const bad[] = {"",
                                      "2024",
                                      "2023-02-29",
                                      "2024-13-01",
                                      "2024-01-32",
                                      "2024-01-01T00:00:00",
                                      "2024-01-01T00:00:00ZZ",
                                      "2024-01-01T00:00:00.Z",
                                      "2024-01-01 00:00:00Z",
                                      "1969-12-31T00:00:00Z",
                                      "2024-1-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gw_lc_parse_date(bad[i], &ms) != -1)
            fprintf(stderr, "date accepted: %s\n", bad[i]);
        CU_ASSERT_EQUAL(gw_lc_parse_date(bad[i], &ms), -1);
    }
}

static void test_noncurrent(void)
{
    /* NoncurrentDays 2, keep 1 newer noncurrent version, day = 1 s (the test clock). */
    gw_lc_rule r = {.prefix = "a/", .enabled = 1, .exp_date_ms = -1, .nc_days = 2, .nc_newer = 1};
    CU_ASSERT_EQUAL(gw_lc_noncurrent_ms(&r, 10500, 1), 13000); /* rounded up to a day */
    CU_ASSERT_EQUAL(gw_lc_noncurrent_ms(&r, 10000, 1), 12000);
    gw_lc_rule cur = {.prefix = "", .exp_days = 3, .exp_date_ms = -1};
    CU_ASSERT_EQUAL(gw_lc_noncurrent_ms(&cur, 10000, 1), -1);
    /* Written at 1 s, noncurrent since its successor's write at 10.5 s: the age counts from
     * there, not from the version's own write. */
    gw_lc_version v = {.size = 5, .mtime_ms = 1000, .noncurrent_ms = 10500, .newer_noncurrent = 1};
    CU_ASSERT_EQUAL(gw_lc_version_action(&r, "a/k", &v, 12999, 1), GW_LC_KEEP);
    CU_ASSERT_EQUAL(gw_lc_version_action(&r, "a/k", &v, 13000, 1), GW_LC_EXPIRE_NONCURRENT);
    /* The newest noncurrent version is kept (NewerNoncurrentVersions 1), however old. */
    v.newer_noncurrent = 0;
    CU_ASSERT_EQUAL(gw_lc_version_action(&r, "a/k", &v, 99000, 1), GW_LC_KEEP);
    r.nc_newer = 3;
    v.newer_noncurrent = 2;
    CU_ASSERT_EQUAL(gw_lc_version_action(&r, "a/k", &v, 99000, 1), GW_LC_KEEP);
    v.newer_noncurrent = 3;
    CU_ASSERT_EQUAL(gw_lc_version_action(&r, "a/k", &v, 99000, 1), GW_LC_EXPIRE_NONCURRENT);
    /* No NewerNoncurrentVersions: every noncurrent version old enough goes. */
    r.nc_newer = 0;
    v.newer_noncurrent = 0;
    CU_ASSERT_EQUAL(gw_lc_version_action(&r, "a/k", &v, 13000, 1), GW_LC_EXPIRE_NONCURRENT);
    /* A noncurrent delete marker too. */
    v.delete_marker = 1;
    CU_ASSERT_EQUAL(gw_lc_version_action(&r, "a/k", &v, 13000, 1), GW_LC_EXPIRE_NONCURRENT);
    v.delete_marker = 0;
    /* Filters: prefix, size (a marker's size is 0); a disabled rule does nothing. */
    CU_ASSERT_EQUAL(gw_lc_version_action(&r, "b/k", &v, 13000, 1), GW_LC_KEEP);
    r.has_gt = 1;
    r.size_gt = 5;
    CU_ASSERT_EQUAL(gw_lc_version_action(&r, "a/k", &v, 13000, 1), GW_LC_KEEP);
    v.size = 6;
    CU_ASSERT_EQUAL(gw_lc_version_action(&r, "a/k", &v, 13000, 1), GW_LC_EXPIRE_NONCURRENT);
    v.delete_marker = 1;
    CU_ASSERT_EQUAL(gw_lc_version_action(&r, "a/k", &v, 13000, 1), GW_LC_KEEP);
    v.delete_marker = 0;
    r.enabled = 0;
    CU_ASSERT_EQUAL(gw_lc_version_action(&r, "a/k", &v, 13000, 1), GW_LC_KEEP);
    /* A current-version rule leaves noncurrent versions alone, and the reverse. */
    cur.enabled = 1;
    CU_ASSERT_EQUAL(gw_lc_version_action(&cur, "a/k", &v, 99000, 1), GW_LC_KEEP);
    r.enabled = 1;
    gw_lc_version now = {.size = 6, .mtime_ms = 1000, .noncurrent_ms = -1};
    CU_ASSERT_EQUAL(gw_lc_version_action(&r, "a/k", &now, 99000, 1), GW_LC_KEEP);
    CU_ASSERT_EQUAL(gw_lc_version_action(&cur, "a/k", &now, 3999, 1), GW_LC_KEEP);
    CU_ASSERT_EQUAL(gw_lc_version_action(&cur, "a/k", &now, 4000, 1), GW_LC_EXPIRE_CURRENT);
}

static void test_markers(void)
{
    gw_lc_rule m = {.prefix = "a/", .enabled = 1, .exp_date_ms = -1, .exp_marker = 1};
    gw_lc_version v = {.mtime_ms = 1000, .noncurrent_ms = -1, .delete_marker = 1, .lone = 1};
    /* A lone current marker goes at once, whatever its age; not one with older versions. */
    CU_ASSERT_EQUAL(gw_lc_version_action(&m, "a/k", &v, 1000, 1), GW_LC_REMOVE_MARKER);
    CU_ASSERT_EQUAL(gw_lc_version_action(&m, "b/k", &v, 1000, 1), GW_LC_KEEP);
    v.lone = 0;
    CU_ASSERT_EQUAL(gw_lc_version_action(&m, "a/k", &v, 1000, 1), GW_LC_KEEP);
    /* ExpiredObjectDeleteMarker never expires an object. */
    gw_lc_version obj = {.size = 1, .mtime_ms = 1000, .noncurrent_ms = -1, .lone = 1};
    CU_ASSERT_EQUAL(gw_lc_version_action(&m, "a/k", &obj, 99000, 1), GW_LC_KEEP);
    /* Expiration Days or Date: a lone marker goes once it is as old as the rule says (S3 cleans
     * up expired object delete markers under a rule expiring current versions); one with other
     * versions stays (and none is expired again). Days 1 at 1 s a day from 1000 ms: due 3000. */
    gw_lc_rule d = {.prefix = "", .enabled = 1, .exp_days = 1, .exp_date_ms = -1};
    v.lone = 1;
    CU_ASSERT_EQUAL(gw_lc_version_action(&d, "a/k", &v, 1500, 1), GW_LC_KEEP);
    CU_ASSERT_EQUAL(gw_lc_version_action(&d, "a/k", &v, 99000, 1), GW_LC_REMOVE_MARKER);
    v.lone = 0;
    CU_ASSERT_EQUAL(gw_lc_version_action(&d, "a/k", &v, 99000, 1), GW_LC_KEEP);
    v.lone = 1;
    d.exp_days = 0;
    d.exp_date_ms = 50000;
    CU_ASSERT_EQUAL(gw_lc_version_action(&d, "a/k", &v, 49999, 1), GW_LC_KEEP);
    CU_ASSERT_EQUAL(gw_lc_version_action(&d, "a/k", &v, 99000, 1), GW_LC_REMOVE_MARKER);
    CU_ASSERT_EQUAL(gw_lc_version_action(&d, "a/k", &obj, 99000, 1), GW_LC_EXPIRE_CURRENT);
    /* A marker's size is 0: a rule for objects larger than 0 bytes leaves it. */
    m.has_gt = 1;
    CU_ASSERT_EQUAL(gw_lc_version_action(&m, "a/k", &v, 1000, 1), GW_LC_KEEP);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"parse_full", test_parse_full}, {"ids_and_empty_filter", test_ids_and_empty_filter},
        {"refused", test_refused},       {"limits", test_limits},
        {"matching", test_matching},     {"days", test_days},
        {"dates", test_dates},           {"noncurrent", test_noncurrent},
        {"markers", test_markers},       {NULL, NULL}};
    cu_add_suite("gateway lifecycle", tests);
}
