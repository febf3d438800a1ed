/*
 * test_gateway_lock.c - Object Lock on the wire (gw_lock.c):
 *   dates          ISO 8601 retain-until dates: fractions, Z or +00:00, impossible days refused;
 *   modes          GOVERNANCE / COMPLIANCE only, case as S3 spells them;
 *   config         PutObjectLockConfiguration bodies: Enabled required, Days or Years (not both,
 *                  not neither, positive, bounded), a Rule without DefaultRetention;
 *   retention      PutObjectRetention bodies: mode and date together, an empty one removes;
 *   legal_hold     PutObjectLegalHold bodies: ON / OFF only.
 */
#include <string.h>

#include "cu_main.h"
#include "gw_int.h"

static void test_dates(void)
{
    int64_t ms = 0;
    CU_ASSERT_TRUE(gw_lock_parse_date("2030-01-01T00:00:00Z", &ms));
    CU_ASSERT_EQUAL(ms, 1893456000000LL);
    CU_ASSERT_TRUE(gw_lock_parse_date("2030-01-01T00:00:00.250Z", &ms));
    CU_ASSERT_EQUAL(ms, 1893456000250LL);
    CU_ASSERT_TRUE(gw_lock_parse_date("2030-01-01T00:00:00.5+00:00", &ms));
    CU_ASSERT_EQUAL(ms, 1893456000500LL);
    CU_ASSERT_TRUE(gw_lock_parse_date("2028-02-29T12:00:00Z", &ms));
    CU_ASSERT_FALSE(gw_lock_parse_date("2027-02-29T12:00:00Z", &ms));
    CU_ASSERT_FALSE(gw_lock_parse_date("2030-04-31T00:00:00Z", &ms));
    CU_ASSERT_FALSE(gw_lock_parse_date("2030-01-01", &ms));
    CU_ASSERT_FALSE(gw_lock_parse_date("2030-01-01T00:00:00", &ms));
    CU_ASSERT_FALSE(gw_lock_parse_date("2030-01-01T00:00:00+02:00", &ms));
    CU_ASSERT_FALSE(gw_lock_parse_date("2030-01-01T24:00:00Z", &ms));
    CU_ASSERT_FALSE(gw_lock_parse_date("2030-01-01T00:00:00.Z", &ms));
    CU_ASSERT_FALSE(gw_lock_parse_date("Wed, 01 Jan 2030 00:00:00 GMT", &ms));
    CU_ASSERT_FALSE(gw_lock_parse_date("", &ms));
}

static void test_modes(void)
{
    CU_ASSERT_EQUAL(gw_lock_mode_of("GOVERNANCE"), MD_LOCK_GOVERNANCE);
    CU_ASSERT_EQUAL(gw_lock_mode_of("COMPLIANCE"), MD_LOCK_COMPLIANCE);
    CU_ASSERT_EQUAL(gw_lock_mode_of("governance"), 0);
    CU_ASSERT_EQUAL(gw_lock_mode_of("LEGAL"), 0);
    CU_ASSERT_EQUAL(gw_lock_mode_of(NULL), 0);
}

static gw_s3err config(const char *xml, md_bucket *b)
{
    char msg[200];
    return gw_lock_parse_config(xml, strlen(xml), b, msg, sizeof(msg));
}

#define CFG(body) "<ObjectLockConfiguration>" body "</ObjectLockConfiguration>"
#define RULE(body) "<Rule><DefaultRetention>" body "</DefaultRetention></Rule>"

static void test_config(void)
{
    md_bucket b;
    CU_ASSERT_EQUAL(config(CFG("<ObjectLockEnabled>Enabled</ObjectLockEnabled>"), &b), GW_OK);
    CU_ASSERT_EQUAL(b.lock_enabled, 1);
    CU_ASSERT_EQUAL(b.lock_mode, 0);
    CU_ASSERT_EQUAL(config(CFG("<ObjectLockEnabled>Enabled</ObjectLockEnabled>" RULE(
                               "<Mode>COMPLIANCE</Mode><Days>30</Days>")),
                           &b),
                    GW_OK);
    CU_ASSERT_EQUAL(b.lock_mode, MD_LOCK_COMPLIANCE);
    CU_ASSERT_EQUAL(b.lock_unit, MD_LOCK_DAYS);
    CU_ASSERT_EQUAL(b.lock_period, 30);
    CU_ASSERT_EQUAL(
        config("<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
               "<ObjectLockEnabled>Enabled</ObjectLockEnabled>" RULE(
                   "<Mode>GOVERNANCE</Mode><Years> 2 </Years>") "</ObjectLockConfiguration>",
               &b),
        GW_OK);
    CU_ASSERT_EQUAL(b.lock_mode, MD_LOCK_GOVERNANCE);
    CU_ASSERT_EQUAL(b.lock_unit, MD_LOCK_YEARS);
    CU_ASSERT_EQUAL(b.lock_period, 2);
    CU_ASSERT_EQUAL(config(CFG(""), &b), GW_MALFORMED_XML);
    CU_ASSERT_EQUAL(config(CFG("<ObjectLockEnabled>Disabled</ObjectLockEnabled>"), &b),
                    GW_MALFORMED_XML);
    CU_ASSERT_EQUAL(config(CFG("<ObjectLockEnabled>Enabled</ObjectLockEnabled>" RULE(
                               "<Mode>GOVERNANCE</Mode><Days>1</Days><Years>1</Years>")),
                           &b),
                    GW_MALFORMED_XML);
    CU_ASSERT_EQUAL(config(CFG("<ObjectLockEnabled>Enabled</ObjectLockEnabled>" RULE(
                               "<Mode>GOVERNANCE</Mode>")),
                           &b),
                    GW_MALFORMED_XML);
    CU_ASSERT_EQUAL(
        config(CFG("<ObjectLockEnabled>Enabled</ObjectLockEnabled>" RULE("<Days>1</Days>")), &b),
        GW_MALFORMED_XML);
    CU_ASSERT_EQUAL(config(CFG("<ObjectLockEnabled>Enabled</ObjectLockEnabled>" RULE(
                               "<Mode>WORM</Mode><Days>1</Days>")),
                           &b),
                    GW_MALFORMED_XML);
    CU_ASSERT_EQUAL(config(CFG("<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule/>"), &b),
                    GW_MALFORMED_XML);
    static const char *const bad_days[] = {"0", "-1", "1.5", "36501", "99999999999", ""};
    for (size_t i = 0; i < sizeof(bad_days) / sizeof(bad_days[0]); i++) {
        char xml[300];
        snprintf(xml, sizeof(xml),
                 CFG("<ObjectLockEnabled>Enabled</ObjectLockEnabled>" RULE(
                     "<Mode>GOVERNANCE</Mode><Days>%s</Days>")),
                 bad_days[i]);
        CU_ASSERT_EQUAL(config(xml, &b), GW_INVALID_ARGUMENT);
    }
    CU_ASSERT_EQUAL(config(CFG("<ObjectLockEnabled>Enabled</ObjectLockEnabled>" RULE(
                               "<Mode>GOVERNANCE</Mode><Years>101</Years>")),
                           &b),
                    GW_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(config("<Other/>", &b), GW_MALFORMED_XML);
}

static gw_s3err retention(const char *xml, uint8_t *mode, int64_t *until)
{
    return gw_lock_parse_retention(xml, strlen(xml), mode, until);
}

static void test_retention(void)
{
    uint8_t mode;
    int64_t until;
    CU_ASSERT_EQUAL(retention("<Retention><Mode>GOVERNANCE</Mode>"
                              "<RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>",
                              &mode, &until),
                    GW_OK);
    CU_ASSERT_EQUAL(mode, MD_LOCK_GOVERNANCE);
    CU_ASSERT_EQUAL(until, 1893456000000LL);
    CU_ASSERT_EQUAL(retention("<Retention/>", &mode, &until), GW_OK);
    CU_ASSERT_EQUAL(mode, 0);
    CU_ASSERT_EQUAL(retention("<Retention><Mode>GOVERNANCE</Mode></Retention>", &mode, &until),
                    GW_MALFORMED_XML);
    CU_ASSERT_EQUAL(retention("<Retention><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate>"
                              "</Retention>",
                              &mode, &until),
                    GW_MALFORMED_XML);
    CU_ASSERT_EQUAL(retention("<Retention><Mode>COMPLIANCE</Mode>"
                              "<RetainUntilDate>tomorrow</RetainUntilDate></Retention>",
                              &mode, &until),
                    GW_MALFORMED_XML);
}

static void test_legal_hold(void)
{
    uint8_t on = 7;
    const char *x = "<LegalHold><Status>ON</Status></LegalHold>";
    CU_ASSERT_EQUAL(gw_lock_parse_legal_hold(x, strlen(x), &on), GW_OK);
    CU_ASSERT_EQUAL(on, 1);
    x = "<LegalHold><Status>OFF</Status></LegalHold>";
    CU_ASSERT_EQUAL(gw_lock_parse_legal_hold(x, strlen(x), &on), GW_OK);
    CU_ASSERT_EQUAL(on, 0);
    x = "<LegalHold><Status>on</Status></LegalHold>";
    CU_ASSERT_EQUAL(gw_lock_parse_legal_hold(x, strlen(x), &on), GW_MALFORMED_XML);
    x = "<LegalHold/>";
    CU_ASSERT_EQUAL(gw_lock_parse_legal_hold(x, strlen(x), &on), GW_MALFORMED_XML);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"dates", test_dates},         {"modes", test_modes},           {"config", test_config},
        {"retention", test_retention}, {"legal_hold", test_legal_hold}, {NULL, NULL},
    };
    cu_add_suite("gateway_lock", tests);
}
