/*
 * gw_lock.c - Object Lock on the wire (docs/object-lock.md): Put/GetObjectLockConfiguration
 * (?object-lock on a bucket), Put/GetObjectRetention (?retention) and Put/GetObjectLegalHold
 * (?legal-hold) on an object version, the x-amz-object-lock-* headers of PUT, CopyObject and
 * CreateMultipartUpload (and of GET/HEAD answers), and x-amz-bypass-governance-retention.
 *
 * What protects a version, and which retention changes are allowed, is the store's to decide
 * (meta/md_lock.c), inside the write op that would destroy or change the version: this file only
 * parses, validates and answers. A bucket has Object Lock when created with
 * x-amz-bucket-object-lock-enabled: true (versioning Enabled with it) or by
 * PutObjectLockConfiguration on a bucket whose versioning is Enabled; it never loses it. New
 * versions take the request's retention, or else the bucket's default (counted from the write;
 * for a multipart upload from CompleteMultipartUpload).
 *
 * S3's checks kept: lock headers, and every lock subresource PUT, need Content-MD5 or an
 * x-amz-checksum (InvalidRequest); a mode needs a date and a date a mode (InvalidArgument); the
 * date must be in the future; lock headers on a bucket without Object Lock are InvalidRequest
 * ("Bucket is missing Object Lock Configuration"). The bypass header counts only for root or a
 * principal allowed s3:BypassGovernanceRetention (gw_authz.c); otherwise it is ignored and the
 * GOVERNANCE retention holds.
 *
 * Cluster nodes (docs/object-lock.md, "On a cluster"): the bucket's configuration is in the
 * namespace (gw_bucket_ns lock_set, read with the access settings: lock_bucket), a version's
 * retention and hold are changed by the partition's leader (md_cond.lock_change: it reads the
 * version record at strict quorum under the key's lock, md_lock_apply decides, a fenced swap
 * writes), and deletes by id ask the leader to refuse a protected version
 * (gw_meta_delete_v). A cluster gateway made without lock_set (embedded in unit tests; every
 * cairn server node has it) refuses all of it with 501.
 *
 * Threading: loop handlers read the local bucket record (an LMDB read that does not block);
 * writes run on a gateway worker.
 */
#include "gw_int.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/tree.h>

#include "cm_util.h"

#define LOCK_XML_CAP (16u * 1024)
/* A cluster gateway made without a bucket namespace that keeps Object Lock (ns.lock_set NULL:
 * an embedded one in the unit tests; every cairn server cluster node has one). */
#define NO_NS_MSG "Object Lock needs a bucket namespace that keeps it; this gateway has none"

/* ---- values ---- */

int gw_lock_parse_date(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int used = 0, frac = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6 ||
        used != 19)
        return 0;
    const char *p = s + 19;
    if (*p == '.') {
        size_t f = strspn(p + 1, "0123456789");
        if (f == 0 || f > 9)
            return 0;
        for (size_t i = 1; i <= 3; i++)
            frac = frac * 10 + (i <= f ? p[i] - '0' : 0);
        p += 1 + f;
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
        return 0;
    if (tm.tm_year < 1970 || tm.tm_year > 9999 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
        tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int mday = tm.tm_mday;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != mday) /* 31 April, 29 February 2027 */
        return 0;
    *ms = (int64_t)t * 1000 + frac;
    return 1;
}

uint8_t gw_lock_mode_of(const char *s)
{
    if (s && strcmp(s, "GOVERNANCE") == 0)
        return MD_LOCK_GOVERNANCE;
    if (s && strcmp(s, "COMPLIANCE") == 0)
        return MD_LOCK_COMPLIANCE;
    return 0;
}

static const char *mode_name(uint8_t mode)
{
    return mode == MD_LOCK_COMPLIANCE ? "COMPLIANCE" : "GOVERNANCE";
}

/* ---- XML bodies ---- */

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && xmlStrEqual(c->name, BAD_CAST name))
            return c;
    return NULL;
}

/* The trimmed text of n's child name into out[cap]; 0 when absent (or too long: *bad set). */
static int child_text(xmlNodePtr n, const char *name, char *out, size_t cap, int *bad)
{
    xmlNodePtr c = child(n, name);
    if (!c)
        return 0;
    char *s = gw_xml_node_text(c, 1);
    size_t len = s ? strlen(s) : cap; /* out of memory: refused as too long */
    if (len >= cap)
        *bad = 1;
    else
        memcpy(out, s, len + 1);
    free(s);
    return len < cap;
}

/* A positive decimal period (Days, Years) up to max; 0 when it is not one. */
static uint32_t period_of(const char *s, uint32_t max)
{
    uint64_t v = 0;
    if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
        return 0;
    for (; *s; s++)
        v = v * 10 + (uint64_t)(*s - '0');
    return v <= max ? (uint32_t)v : 0;
}

gw_s3err gw_lock_parse_config(const char *xml, size_t len, md_bucket *out, char *msg, size_t cap)
{
    void *doc, *rootp;
    char en[16], mode[16], days[16], years[16];
    int bad = 0;
    gw_s3err e = gw_xml_load(xml, len, LOCK_XML_CAP, "ObjectLockConfiguration", &doc, &rootp);
    if (e != GW_OK)
        return e;
    xmlNodePtr root = rootp, rule = child(root, "Rule"), dr = child(rule, "DefaultRetention");
    memset(out, 0, sizeof(*out));
    if (!child_text(root, "ObjectLockEnabled", en, sizeof(en), &bad) ||
        strcmp(en, "Enabled") != 0 || (rule && !dr)) {
        e = GW_MALFORMED_XML;
        goto done;
    }
    out->lock_enabled = 1;
    if (!dr)
        goto done;
    int has_mode = child_text(dr, "Mode", mode, sizeof(mode), &bad);
    int has_days = child_text(dr, "Days", days, sizeof(days), &bad);
    int has_years = child_text(dr, "Years", years, sizeof(years), &bad);
    if (bad || !has_mode || !(out->lock_mode = gw_lock_mode_of(mode)) || has_days == has_years) {
        e = GW_MALFORMED_XML;
        goto done;
    }
    out->lock_unit = has_days ? MD_LOCK_DAYS : MD_LOCK_YEARS;
    out->lock_period =
        has_days ? period_of(days, MD_LOCK_MAX_DAYS) : period_of(years, MD_LOCK_MAX_YEARS);
    if (!out->lock_period) {
        snprintf(msg, cap,
                 "Default retention period must be a positive integer value of at most "
                 "%d days or %d years",
                 MD_LOCK_MAX_DAYS, MD_LOCK_MAX_YEARS);
        e = GW_INVALID_ARGUMENT;
    }
done:
    xmlFreeDoc(doc);
    return e;
}

gw_s3err gw_lock_parse_retention(const char *xml, size_t len, uint8_t *mode, int64_t *until)
{
    void *doc, *rootp;
    char m[16], d[40];
    int bad = 0;
    gw_s3err e = gw_xml_load(xml, len, LOCK_XML_CAP, "Retention", &doc, &rootp);
    if (e != GW_OK)
        return e;
    int has_mode = child_text(rootp, "Mode", m, sizeof(m), &bad);
    int has_date = child_text(rootp, "RetainUntilDate", d, sizeof(d), &bad);
    *mode = 0, *until = 0;
    /* an empty <Retention/> removes the retention (allowed only as a bypass, the store says) */
    if (bad || has_mode != has_date || (has_mode && !(*mode = gw_lock_mode_of(m))) ||
        (has_date && !gw_lock_parse_date(d, until)))
        e = GW_MALFORMED_XML;
    xmlFreeDoc(doc);
    return e;
}

gw_s3err gw_lock_parse_legal_hold(const char *xml, size_t len, uint8_t *on)
{
    void *doc, *rootp;
    char st[8];
    int bad = 0;
    gw_s3err e = gw_xml_load(xml, len, LOCK_XML_CAP, "LegalHold", &doc, &rootp);
    if (e != GW_OK)
        return e;
    if (!child_text(rootp, "Status", st, sizeof(st), &bad) ||
        (strcmp(st, "ON") != 0 && strcmp(st, "OFF") != 0))
        e = GW_MALFORMED_XML;
    else
        *on = strcmp(st, "ON") == 0;
    xmlFreeDoc(doc);
    return e;
}

/* ---- headers of writes and reads ---- */

/* The bucket's record with its lock settings: on a cluster node the namespace's. */
static cm_err lock_bucket(gw_req *r, md_bucket *b)
{
    cm_err e = md_bucket_get(r->g->md, r->bucket, b);
    if (e == CM_OK)
        gw_bucket_access(r->g, b);
    return e;
}

/* A header, or the same x-amz-* name hoisted into a presigned URL's query string. */
static const char *value_of(gw_req *r, const char *name)
{
    const char *v = gw_hdr(r, name);
    return v ? v : gw_query_get(&r->q, name);
}

gw_s3err gw_lock_from_request(gw_req *r, md_object *o, int use_default, char *msg, size_t cap)
{
    const char *mode = value_of(r, "x-amz-object-lock-mode");
    const char *date = value_of(r, "x-amz-object-lock-retain-until-date");
    const char *hold = value_of(r, "x-amz-object-lock-legal-hold");
    md_bucket b = {0};
    int64_t now = cm_now_ms();

    o->lock_mode = 0, o->lock_until_ms = 0, o->legal_hold = 0;
    if (hold && strcmp(hold, "ON") != 0 && strcmp(hold, "OFF") != 0) {
        snprintf(msg, cap, "Legal Hold must be either of 'ON' or 'OFF'");
        return GW_INVALID_ARGUMENT;
    }
    if (hold && strcmp(hold, "OFF") == 0)
        hold = NULL; /* asks for nothing */
    if (!mode != !date) {
        snprintf(msg, cap,
                 "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must "
                 "both be supplied");
        return GW_INVALID_ARGUMENT;
    }
    if (mode && !(o->lock_mode = gw_lock_mode_of(mode))) {
        snprintf(msg, cap, "Unknown wormMode directive.");
        return GW_INVALID_ARGUMENT;
    }
    if (date && !gw_lock_parse_date(date, &o->lock_until_ms)) {
        snprintf(msg, cap, "The retain until date must be provided in ISO 8601 format");
        return GW_INVALID_ARGUMENT;
    }
    if (date && o->lock_until_ms <= now) {
        snprintf(msg, cap, "The retain until date must be in the future!");
        return GW_INVALID_ARGUMENT;
    }
    o->legal_hold = hold != NULL;
    if (!mode && !hold && !use_default)
        return GW_OK;
    cm_err e = lock_bucket(r, &b);
    if (e != CM_OK)
        return e == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(e);
    if (!b.lock_enabled && (mode || hold)) {
        snprintf(msg, cap, "Bucket is missing Object Lock Configuration");
        return GW_INVALID_REQUEST;
    }
    if (!mode && use_default && b.lock_enabled && b.lock_mode &&
        md_lock_default_until(now, b.lock_unit, b.lock_period, &o->lock_until_ms) == CM_OK)
        o->lock_mode = b.lock_mode;
    return GW_OK;
}

static int lock_headers_given(gw_req *r)
{
    const char *hold = value_of(r, "x-amz-object-lock-legal-hold");
    return value_of(r, "x-amz-object-lock-mode") ||
           value_of(r, "x-amz-object-lock-retain-until-date") || (hold && strcmp(hold, "OFF") != 0);
}

int gw_lock_put_refused(gw_req *r)
{
    if (!lock_headers_given(r) || gw_checksum_given(r))
        return 0;
    gw_error(r, GW_INVALID_REQUEST,
             "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests "
             "with Object Lock parameters");
    return 1;
}

int gw_lock_write_allowed(gw_req *r)
{
    const char *hold = value_of(r, "x-amz-object-lock-legal-hold");
    int retention =
        value_of(r, "x-amz-object-lock-mode") || value_of(r, "x-amz-object-lock-retain-until-date");
    const char *m = net_req_method(r->net);
    if (r->principal == GW_PRIN_ROOT || !r->key ||
        (strcmp(m, "PUT") != 0 && strcmp(m, "POST") != 0))
        return 1;
    if (retention && !gw_authz_key(r, r->bucket, r->key, "s3:PutObjectRetention"))
        return 0;
    return !hold || gw_authz_key(r, r->bucket, r->key, "s3:PutObjectLegalHold");
}

void gw_lock_headers(gw_req *r, const md_object *o)
{
    char date[32];
    /* S3 shows each only to a caller who may read it through its own subresource */
    if (o->lock_mode && gw_authz_key(r, r->bucket, r->key, "s3:GetObjectRetention")) {
        cm_time_iso8601(o->lock_until_ms, date);
        net_resp_header(r->net, "x-amz-object-lock-mode", mode_name(o->lock_mode));
        net_resp_header(r->net, "x-amz-object-lock-retain-until-date", date);
    }
    if (o->legal_hold && gw_authz_key(r, r->bucket, r->key, "s3:GetObjectLegalHold"))
        net_resp_header(r->net, "x-amz-object-lock-legal-hold", "ON");
}

int gw_lock_bypass(gw_req *r, const char *bucket, const char *key)
{
    const char *v = gw_hdr(r, "x-amz-bypass-governance-retention");
    if (!v || strcasecmp(v, "true") != 0)
        return 0;
    return gw_authz_key(r, bucket, key, "s3:BypassGovernanceRetention");
}

/* ---- PutObjectLockConfiguration / GetObjectLockConfiguration ---- */

typedef struct {
    md_bucket cfg;
    cm_err err;
} config_state;

static void config_work(gw_req *r)
{
    config_state *st = r->op;
    const gw_bucket_ns *ns = &r->g->ns;
    st->err = gw_meta_remote(r->g) ? ns->lock_set(ns->arg, r->bucket, &st->cfg)
                                   : md_bucket_lock_set(r->g->md, r->bucket, &st->cfg);
}

static void config_done(gw_req *r)
{
    config_state *st = r->op;
    if (st->err == CM_ERR_NOTFOUND)
        gw_error(r, GW_NO_SUCH_BUCKET, NULL);
    else if (st->err == CM_ERR_LOCKED)
        gw_error(r, GW_INVALID_BUCKET_STATE,
                 "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration");
    else if (st->err != CM_OK)
        gw_error_cm(r, st->err);
    else {
        gw_resp_start(r, 200, 0);
        net_resp_end(r->net);
    }
}

static void put_config_finish(gw_req *r)
{
    size_t len = evbuffer_get_length(r->mem);
    const char *xml = (const char *)evbuffer_pullup(r->mem, -1);
    char msg[160] = "";
    config_state *st = calloc(1, sizeof(*st));
    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op = st;
    r->op_free = free;
    gw_s3err e = gw_lock_parse_config(xml ? xml : "", len, &st->cfg, msg, sizeof(msg));
    if (e != GW_OK) {
        gw_error(r, e, msg[0] ? msg : NULL);
        return;
    }
    gw_offload(r, config_work, config_done);
}

static void get_config(gw_req *r, const md_bucket *b)
{
    char n[16];
    if (!b->lock_enabled) {
        gw_error(r, GW_NO_LOCK_CONFIG, NULL);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "ObjectLockConfiguration");
    gw_xml_text(&x, "ObjectLockEnabled", "Enabled");
    if (b->lock_mode) {
        gw_xml_open(&x, "Rule");
        gw_xml_open(&x, "DefaultRetention");
        gw_xml_text(&x, "Mode", mode_name(b->lock_mode));
        snprintf(n, sizeof(n), "%u", b->lock_period);
        gw_xml_text(&x, b->lock_unit == MD_LOCK_YEARS ? "Years" : "Days", n);
        gw_xml_close(&x, "DefaultRetention");
        gw_xml_close(&x, "Rule");
    }
    gw_xml_close(&x, "ObjectLockConfiguration");
    gw_send_doc(r, buf, buf ? gw_xml_status(&x) : CM_ERR_NOMEM);
}

/* 1 (answered) on a cluster node without Object Lock or when a PUT has no Content-MD5 /
 * checksum. */
static int refused(gw_req *r, int put)
{
    if (gw_meta_remote(r->g) && !r->g->ns.lock_set) {
        gw_error(r, GW_UNSUPPORTED, NO_NS_MSG);
        return 1;
    }
    if (put && !gw_checksum_given(r)) {
        gw_error(r, GW_INVALID_REQUEST, "Missing required header for this request: Content-MD5");
        return 1;
    }
    return 0;
}

void gw_op_bucket_object_lock(gw_req *r, const md_bucket *rec)
{
    const char *m = net_req_method(r->net);
    md_bucket settings = *rec, *b = &settings;
    gw_bucket_access(r->g, b); /* a cluster node: the namespace's */
    if (strcmp(m, "PUT") == 0) {
        if (!refused(r, 1))
            gw_body_to_memory(r, LOCK_XML_CAP, put_config_finish);
    } else if (strcmp(m, "GET") == 0 || r->head) {
        if (!refused(r, 0))
            get_config(r, b);
    } else {
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
    }
}

/* ---- Put/GetObjectRetention, Put/GetObjectLegalHold ---- */

typedef struct {
    int hold;          /* ?legal-hold, else ?retention */
    const char *vid;   /* ?versionId, or NULL: the latest */
    md_lock_change ch; /* PUT */
    md_object obj;     /* GET */
    int lock_enabled;
    cm_err err;
} vlock_state;

static void vlock_free(void *p)
{
    vlock_state *st = p;
    md_object_release(&st->obj);
    free(st);
}

static void vlock_get_work(gw_req *r)
{
    vlock_state *st = r->op;
    st->err = st->vid ? gw_meta_get_version(r->g, r->bucket, r->key, st->vid, &st->obj)
                      : gw_meta_get(r->g, r->bucket, r->key, &st->obj);
}

static void vlock_get_done(gw_req *r)
{
    vlock_state *st = r->op;
    char date[32];
    const md_object *o = &st->obj;
    if (st->err == CM_ERR_NOTFOUND || (st->err == CM_OK && o->delete_marker)) {
        gw_error(r, st->vid ? GW_NO_SUCH_VERSION : GW_NO_SUCH_KEY, NULL);
        return;
    }
    if (st->err != CM_OK) {
        gw_error_cm(r, st->err);
        return;
    }
    if (st->hold ? 0 : !o->lock_mode) {
        gw_error(r, GW_NO_OBJECT_LOCK, NULL);
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    if (st->hold) {
        gw_xml_open_root(&x, "LegalHold");
        gw_xml_text(&x, "Status", o->legal_hold ? "ON" : "OFF");
        gw_xml_close(&x, "LegalHold");
    } else {
        cm_time_iso8601(o->lock_until_ms, date);
        gw_xml_open_root(&x, "Retention");
        gw_xml_text(&x, "Mode", mode_name(o->lock_mode));
        gw_xml_text(&x, "RetainUntilDate", date);
        gw_xml_close(&x, "Retention");
    }
    gw_send_doc(r, buf, buf ? gw_xml_status(&x) : CM_ERR_NOMEM);
}

static void vlock_put_work(gw_req *r)
{
    vlock_state *st = r->op;
    md_object o;
    if (!gw_meta_remote(r->g)) {
        st->err = md_version_set_lock(r->g->md, r->bucket, r->key, st->vid, &st->ch);
        return;
    }
    /* A cluster node: the version record found here names the version; the partition's leader
     * reads it again at strict quorum under the key's lock, applies the change (md_lock_apply)
     * and writes it fenced, so two changes racing through two nodes are decided one after the
     * other by the single node's rules (docs/object-lock.md, "On a cluster"). */
    st->err = gw_meta_version_record(r->g, r->bucket, r->key, st->vid, &o);
    if (st->err != CM_OK)
        return;
    if (o.delete_marker || o.tombstone) {
        st->err = CM_ERR_NOTFOUND; /* as md_version_set_lock: a marker carries no lock */
    } else {
        md_object ask = {.key = o.key,
                         .lock_mode = st->ch.mode,
                         .lock_until_ms = st->ch.until_ms,
                         .legal_hold = st->ch.legal_hold};
        md_cond cond = {.bypass_governance = st->ch.bypass_governance,
                        .lock_change = (st->ch.set_retention ? MD_COND_LOCK_RETENTION : 0) |
                                       (st->ch.set_hold ? MD_COND_LOCK_HOLD : 0)};
        st->err = rp_object_put(r->g->rp, r->bucket, &ask, &cond, NULL, NULL);
    }
    md_object_release(&o);
}

static void vlock_put_done(gw_req *r)
{
    vlock_state *st = r->op;
    if (st->err == CM_ERR_NOTFOUND)
        gw_error(r, st->vid ? GW_NO_SUCH_VERSION : GW_NO_SUCH_KEY, NULL);
    else if (st->err != CM_OK)
        gw_error_cm(r, st->err);
    else {
        if (st->vid)
            snprintf(r->resp_version_id, sizeof(r->resp_version_id), "%s", st->vid);
        gw_resp_start(r, 200, 0);
        net_resp_end(r->net);
    }
}

static void vlock_put_finish(gw_req *r)
{
    vlock_state *st = r->op;
    size_t len = evbuffer_get_length(r->mem);
    const char *xml = (const char *)evbuffer_pullup(r->mem, -1);
    gw_s3err e;
    if (st->hold) {
        st->ch.set_hold = 1;
        e = gw_lock_parse_legal_hold(xml ? xml : "", len, &st->ch.legal_hold);
    } else {
        st->ch.set_retention = 1;
        e = gw_lock_parse_retention(xml ? xml : "", len, &st->ch.mode, &st->ch.until_ms);
        if (e == GW_OK && st->ch.mode && st->ch.until_ms <= cm_now_ms()) {
            gw_error(r, GW_INVALID_ARGUMENT, "The retain until date must be in the future!");
            return;
        }
    }
    if (e != GW_OK) {
        gw_error(r, e, NULL);
        return;
    }
    gw_offload(r, vlock_put_work, vlock_put_done);
}

void gw_op_object_lock(gw_req *r)
{
    const char *m = net_req_method(r->net);
    int put = strcmp(m, "PUT") == 0;
    md_bucket b;
    if (!put && strcmp(m, "GET") != 0 && !r->head) {
        gw_error(r, GW_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    if (refused(r, put) || !gw_version_param_ok(r))
        return;
    cm_err e = lock_bucket(r, &b);
    if (e != CM_OK) {
        gw_error(r, e == CM_ERR_NOTFOUND ? GW_NO_SUCH_BUCKET : gw_s3err_from_cm(e), NULL);
        return;
    }
    if (!b.lock_enabled) {
        gw_error(r, GW_INVALID_REQUEST, "Bucket is missing Object Lock Configuration");
        return;
    }
    vlock_state *st = calloc(1, sizeof(*st));
    if (!st) {
        gw_error(r, GW_INTERNAL, NULL);
        return;
    }
    r->op = st;
    r->op_free = vlock_free;
    st->hold = gw_query_find(&r->q, "legal-hold") != NULL;
    st->vid = gw_query_get(&r->q, "versionId");
    if (!put) {
        gw_offload(r, vlock_get_work, vlock_get_done);
        return;
    }
    st->ch.bypass_governance = gw_lock_bypass(r, r->bucket, r->key);
    gw_body_to_memory(r, LOCK_XML_CAP, vlock_put_finish);
}

void gw_lock_default(gw_req *r, md_object *o)
{
    md_bucket b;
    int64_t until;
    if (lock_bucket(r, &b) == CM_OK && b.lock_enabled && b.lock_mode &&
        md_lock_default_until(cm_now_ms(), b.lock_unit, b.lock_period, &until) == CM_OK)
        o->lock_mode = b.lock_mode, o->lock_until_ms = until;
}
