/*
 * test_meta_lock.c - Object Lock in the metadata store (md_lock.c, md_version.c, md_record.c):
 *   protects          legal hold, COMPLIANCE, GOVERNANCE with and without bypass, expired
 *                     retention, delete markers;
 *   change_rules      lengthening and GOVERNANCE -> COMPLIANCE allowed; shortening, removing or
 *                     downgrading a running retention refused (GOVERNANCE: allowed with bypass);
 *                     anything goes once the date has passed;
 *   default_until     days and calendar years (29 February), bounds;
 *   record_fields     the lock fields round-trip, make the record format 3, and a bad mode is
 *                     corruption; the bucket's BT_LOCK round-trips and survives other setters;
 *   store_enforced    a protected version survives a delete by id, DeleteObjects, a suspended
 *                     write over its null version; a plain DELETE still adds a marker; bypass
 *                     deletes a GOVERNANCE version; retention cannot be shortened through the
 *                     store; versioning cannot be suspended on a locked bucket; lock cannot be
 *                     enabled on an unversioned bucket; everything holds after a reopen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "cu_main.h"
#include "md.h"
#include "md_int.h"

#define DAY 86400000LL

static void protects(void)
{
    int64_t now = 1000 * DAY;
    md_object o = {0};
    CU_ASSERT_FALSE(md_lock_protects(&o, now, 0));
    o.legal_hold = 1;
    CU_ASSERT_TRUE(md_lock_protects(&o, now, 1)); /* a hold is not bypassed */
    o.legal_hold = 0;
    o.lock_mode = MD_LOCK_COMPLIANCE, o.lock_until_ms = now + 1;
    CU_ASSERT_TRUE(md_lock_protects(&o, now, 1));
    o.lock_mode = MD_LOCK_GOVERNANCE;
    CU_ASSERT_TRUE(md_lock_protects(&o, now, 0));
    CU_ASSERT_FALSE(md_lock_protects(&o, now, 1));
    o.lock_mode = MD_LOCK_COMPLIANCE, o.lock_until_ms = now; /* the date has come */
    CU_ASSERT_FALSE(md_lock_protects(&o, now, 0));
    o.lock_until_ms = now + DAY, o.delete_marker = 1;
    CU_ASSERT_FALSE(md_lock_protects(&o, now, 0));
}

static void change_rules(void)
{
    int64_t now = 1000 * DAY;
    md_object gov = {.lock_mode = MD_LOCK_GOVERNANCE, .lock_until_ms = now + 10 * DAY};
    md_object comp = {.lock_mode = MD_LOCK_COMPLIANCE, .lock_until_ms = now + 10 * DAY};
    md_object none = {0};
    md_object past = {.lock_mode = MD_LOCK_COMPLIANCE, .lock_until_ms = now - 1};

    CU_ASSERT_EQUAL(md_lock_change_ok(&none, MD_LOCK_GOVERNANCE, now + DAY, now, 0), CM_OK);
    CU_ASSERT_EQUAL(md_lock_change_ok(&gov, MD_LOCK_GOVERNANCE, now + 11 * DAY, now, 0), CM_OK);
    CU_ASSERT_EQUAL(md_lock_change_ok(&gov, MD_LOCK_COMPLIANCE, now + 10 * DAY, now, 0), CM_OK);
    CU_ASSERT_EQUAL(md_lock_change_ok(&gov, MD_LOCK_GOVERNANCE, now + DAY, now, 0), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(md_lock_change_ok(&gov, 0, 0, now, 0), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(md_lock_change_ok(&gov, MD_LOCK_GOVERNANCE, now + DAY, now, 1), CM_OK);
    CU_ASSERT_EQUAL(md_lock_change_ok(&gov, 0, 0, now, 1), CM_OK);
    CU_ASSERT_EQUAL(md_lock_change_ok(&comp, MD_LOCK_COMPLIANCE, now + 20 * DAY, now, 0), CM_OK);
    CU_ASSERT_EQUAL(md_lock_change_ok(&comp, MD_LOCK_COMPLIANCE, now + DAY, now, 1), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(md_lock_change_ok(&comp, MD_LOCK_GOVERNANCE, now + 20 * DAY, now, 1),
                    CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(md_lock_change_ok(&comp, 0, 0, now, 1), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(md_lock_change_ok(&past, 0, 0, now, 0), CM_OK);
    CU_ASSERT_EQUAL(md_lock_change_ok(&past, MD_LOCK_GOVERNANCE, now + DAY, now, 0), CM_OK);
}

static void default_until(void)
{
    int64_t until = 0;
    int64_t t = 1709208000123LL; /* 2024-02-29T12:00:00.123Z */
    CU_ASSERT_EQUAL(md_lock_default_until(t, MD_LOCK_DAYS, 3, &until), CM_OK);
    CU_ASSERT_EQUAL(until, t + 3 * DAY);
    CU_ASSERT_EQUAL(md_lock_default_until(t, MD_LOCK_YEARS, 4, &until), CM_OK);
    CU_ASSERT_EQUAL(until, 1835438400123LL); /* 2028-02-29T12:00:00.123Z */
    CU_ASSERT_EQUAL(md_lock_default_until(t, MD_LOCK_YEARS, 1, &until), CM_OK);
    CU_ASSERT_EQUAL(until, 1740830400123LL); /* 2025-03-01T12:00:00.123Z */
    CU_ASSERT_EQUAL(md_lock_default_until(t, MD_LOCK_DAYS, 0, &until), CM_ERR_RANGE);
    CU_ASSERT_EQUAL(md_lock_default_until(t, MD_LOCK_DAYS, MD_LOCK_MAX_DAYS + 1, &until),
                    CM_ERR_RANGE);
    CU_ASSERT_EQUAL(md_lock_default_until(t, MD_LOCK_YEARS, MD_LOCK_MAX_YEARS + 1, &until),
                    CM_ERR_RANGE);
    CU_ASSERT_EQUAL(md_lock_default_until(t, 0, 1, &until), CM_ERR_RANGE);
}

static void record_fields(void)
{
    md_object o = {0}, d;
    uint8_t *buf = NULL;
    size_t len = 0;
    o.key = "k";
    snprintf(o.version_id, sizeof(o.version_id), "null");
    o.lock_mode = MD_LOCK_COMPLIANCE;
    o.lock_until_ms = 1835438400123LL;
    o.legal_hold = 1;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL(buf[0], MD_FORMAT_V3);
    CU_ASSERT_EQUAL_FATAL(md_object_decode(buf, len, &d), CM_OK);
    CU_ASSERT_EQUAL(d.lock_mode, MD_LOCK_COMPLIANCE);
    CU_ASSERT_EQUAL(d.lock_until_ms, 1835438400123LL);
    CU_ASSERT_EQUAL(d.legal_hold, 1);
    md_object_release(&d);
    CU_ASSERT_EQUAL_FATAL(md_object_decode_ex(buf, len, MD_DECODE_SUMMARY, &d), CM_OK);
    CU_ASSERT_EQUAL(d.lock_mode, MD_LOCK_COMPLIANCE); /* listings and deletes see it too */
    md_object_release(&d);
    /* the mode byte follows tag 40 and a 4-byte length: an unknown mode is corruption */
    for (size_t i = 1; i + 5 < len; i++)
        if (buf[i] == 40 && buf[i + 4] == 1 && buf[i + 5] == MD_LOCK_COMPLIANCE) {
            buf[i + 5] = 7;
            CU_ASSERT_EQUAL(md_object_decode(buf, len, &d), CM_ERR_CORRUPT);
            break;
        }
    free(buf);
    o.lock_mode = 0, o.legal_hold = 0;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &buf, &len), CM_OK);
    CU_ASSERT_EQUAL(buf[0], MD_FORMAT_V1); /* no lock: the record is what it was */
    free(buf);

    md_bucket b = {0}, bd;
    md_wbuf w = {0}, w2 = {0};
    snprintf(b.name, sizeof(b.name), "bk");
    b.versioning = MD_VERS_ENABLED;
    b.lock_enabled = 1, b.lock_mode = MD_LOCK_GOVERNANCE, b.lock_unit = MD_LOCK_YEARS;
    b.lock_period = 7;
    CU_ASSERT_EQUAL_FATAL(md_bucket_encode(&b, &w), CM_OK);
    CU_ASSERT_EQUAL(w.p[0], MD_FORMAT_V3);
    md_meta tag = {"t", "v"};
    CU_ASSERT_EQUAL_FATAL(md_bucket_retag(w.p, w.len, &tag, 1, &w2), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_decode(w2.p, w2.len, &bd), CM_OK);
    CU_ASSERT_EQUAL(bd.lock_enabled, 1);
    CU_ASSERT_EQUAL(bd.lock_mode, MD_LOCK_GOVERNANCE);
    CU_ASSERT_EQUAL(bd.lock_unit, MD_LOCK_YEARS);
    CU_ASSERT_EQUAL(bd.lock_period, 7);
    CU_ASSERT_EQUAL(w2.p[0], MD_FORMAT_V3); /* another setter keeps the format */
    md_w_free(&w);
    md_w_free(&w2);
}

static cm_err put_in(md_store *md, const char *bucket, const char *key, const char *body,
                     uint8_t mode, int64_t until, uint8_t hold, md_vres *res)
{
    md_object o = {0};
    o.key = (char *)key;
    snprintf(o.version_id, sizeof(o.version_id), "null");
    snprintf(o.etag, sizeof(o.etag), "%s", body);
    o.inline_data = (uint8_t *)body;
    o.inline_len = o.size = strlen(body);
    o.lock_mode = mode, o.lock_until_ms = until, o.legal_hold = hold;
    return md_object_put_v(md, bucket, &o, NULL, NULL, NULL, res);
}

static cm_err put(md_store *md, const char *key, const char *body, uint8_t mode, int64_t until,
                  uint8_t hold, md_vres *res)
{
    return put_in(md, "lb", key, body, mode, until, hold, res);
}

static cm_err del(md_store *md, const char *key, const char *vid, int bypass)
{
    md_cond c = {.bypass_governance = bypass};
    md_object old = {0};
    int had = 0;
    cm_err e = md_object_delete_v(md, "lb", key, vid, &c, &old, &had, NULL);
    if (had)
        md_object_release(&old);
    return e;
}

static int exists_in(md_store *md, const char *bucket, const char *key, const char *vid)
{
    md_object o;
    cm_err e = md_version_get(md, bucket, key, vid, &o);
    if (e == CM_OK)
        md_object_release(&o);
    return e == CM_OK;
}

static int exists(md_store *md, const char *key, const char *vid)
{
    return exists_in(md, "lb", key, vid);
}

static void store_enforced(void)
{
    char dir[512];
    md_store *md = NULL;
    md_vres c, g, h, n;
    int64_t far = cm_now_ms() + 100 * DAY;
    snprintf(dir, sizeof(dir), "%s/lock", cu_tmpdir());
    CU_ASSERT_FATAL(md_open(dir, 1 << 26, &md) == CM_OK);
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "lb");
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(md, &b), CM_OK);
    md_bucket lk = {.lock_mode = MD_LOCK_GOVERNANCE, .lock_unit = MD_LOCK_DAYS, .lock_period = 1};
    CU_ASSERT_EQUAL(md_bucket_lock_set(md, "lb", &lk), CM_ERR_LOCKED); /* not versioned */
    /* a null version written before versioning, then locked through the store */
    CU_ASSERT_EQUAL_FATAL(put(md, "n", "nul", 0, 0, 0, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_set_versioning(md, "lb", MD_VERS_ENABLED), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_lock_set(md, "lb", &lk), CM_OK);
    CU_ASSERT_EQUAL(md_bucket_set_versioning(md, "lb", MD_VERS_SUSPENDED), CM_ERR_LOCKED);
    md_bucket got;
    CU_ASSERT_EQUAL_FATAL(md_bucket_get(md, "lb", &got), CM_OK);
    CU_ASSERT_EQUAL(got.lock_enabled, 1);
    CU_ASSERT_EQUAL(got.versioning, MD_VERS_ENABLED);

    CU_ASSERT_EQUAL_FATAL(put(md, "c", "comp", MD_LOCK_COMPLIANCE, far, 0, &c), CM_OK);
    CU_ASSERT_EQUAL_FATAL(put(md, "g", "gov", MD_LOCK_GOVERNANCE, far, 0, &g), CM_OK);
    CU_ASSERT_EQUAL_FATAL(put(md, "h", "hold", 0, 0, 1, &h), CM_OK);
    md_lock_change hold = {.set_hold = 1, .legal_hold = 1};
    CU_ASSERT_EQUAL(md_version_set_lock(md, "lb", "n", "null", &hold), CM_OK);

    CU_ASSERT_EQUAL(del(md, "c", c.version_id, 1), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(del(md, "g", g.version_id, 0), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(del(md, "h", h.version_id, 1), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(del(md, "n", "null", 1), CM_ERR_LOCKED);
    /* DeleteObjects: each protected key refused, the batch goes on */
    const char *keys[] = {"c", "g", "h"}, *vids[] = {c.version_id, g.version_id, h.version_id};
    cm_err errs[3];
    md_object olds[3];
    int had[3];
    CU_ASSERT_EQUAL(md_objects_delete_v(md, "lb", keys, vids, 3, errs, olds, had, NULL), CM_OK);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(errs[i], CM_ERR_LOCKED);
    /* retention cannot be shortened through the store */
    md_lock_change shorter = {
        .set_retention = 1, .mode = MD_LOCK_COMPLIANCE, .until_ms = far - DAY};
    CU_ASSERT_EQUAL(md_version_set_lock(md, "lb", "c", c.version_id, &shorter), CM_ERR_LOCKED);
    /* a plain DELETE adds a marker over a protected version; the version stays */
    CU_ASSERT_EQUAL(del(md, "c", NULL, 0), CM_OK);
    CU_ASSERT_TRUE(exists(md, "c", c.version_id));

    md_close(md);
    md = NULL;
    CU_ASSERT_FATAL(md_open(dir, 1 << 26, &md) == CM_OK);
    CU_ASSERT_EQUAL(del(md, "c", c.version_id, 1), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(del(md, "n", "null", 0), CM_ERR_LOCKED);
    CU_ASSERT_TRUE(exists(md, "c", c.version_id));
    CU_ASSERT_TRUE(exists(md, "g", g.version_id));
    CU_ASSERT_TRUE(exists(md, "h", h.version_id));
    CU_ASSERT_TRUE(exists(md, "n", "null"));
    /* GOVERNANCE with bypass; legal hold off */
    CU_ASSERT_EQUAL(del(md, "g", g.version_id, 1), CM_OK);
    CU_ASSERT_FALSE(exists(md, "g", g.version_id));
    hold.legal_hold = 0;
    CU_ASSERT_EQUAL(md_version_set_lock(md, "lb", "h", NULL, &hold), CM_OK);
    CU_ASSERT_EQUAL(del(md, "h", h.version_id, 0), CM_OK);

    /* a suspended bucket's write does not replace a protected null version, latest or older */
    md_bucket sb = {0};
    snprintf(sb.name, sizeof(sb.name), "sb");
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(md, &sb), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_set_versioning(md, "sb", MD_VERS_SUSPENDED), CM_OK);
    CU_ASSERT_EQUAL_FATAL(put_in(md, "sb", "k", "v1", MD_LOCK_COMPLIANCE, far, 0, &n), CM_OK);
    CU_ASSERT_EQUAL(put_in(md, "sb", "k", "v2", 0, 0, 0, &n), CM_ERR_LOCKED);
    CU_ASSERT_EQUAL_FATAL(md_bucket_set_versioning(md, "sb", MD_VERS_ENABLED), CM_OK);
    CU_ASSERT_EQUAL(put_in(md, "sb", "k", "v3", 0, 0, 0, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_set_versioning(md, "sb", MD_VERS_SUSPENDED), CM_OK);
    CU_ASSERT_EQUAL(put_in(md, "sb", "k", "v4", 0, 0, 0, &n), CM_ERR_LOCKED);
    CU_ASSERT_TRUE(exists_in(md, "sb", "k", "null"));
    md_close(md);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"protects", protects},
        {"change_rules", change_rules},
        {"default_until", default_until},
        {"record_fields", record_fields},
        {"store_enforced", store_enforced},
        {NULL, NULL},
    };
    cu_add_suite("meta_lock", tests);
}
