/*
 * gw_lcrules.c - the bucket lifecycle document: parsing and checking
 * <LifecycleConfiguration> as S3 does, writing it back, and deciding which rule applies to an
 * object or upload and when (docs/lifecycle.md).
 *
 * The body is loaded by gw_xml_load (gw_xmlparse.c: size cap, UTF-8 only, no DTD) and walked by
 * local element names, so documents with or without the S3 namespace read the same. Structure
 * errors (an unknown or repeated element, a missing Status, a non-numeric number, both or neither
 * of Filter and the legacy Prefix, a Filter with more than one predicate outside And) are
 * MalformedXML; values S3 refuses (zero days, a date not at midnight UTC, duplicate IDs or tag
 * keys, an ID over 255 characters, more than 1000 rules, a rule without action, an upload
 * abort or delete-marker expiry filtered by tags) are InvalidArgument or InvalidRequest with
 * S3's message. Transition actions are NotImplemented: cairn has one storage class.
 *
 * Day arithmetic follows S3: an object written at t with "Days n" expires at the first day
 * boundary (midnight UTC) at or after t + n days. A day is day_s seconds, so the test clock
 * ([lifecycle] day_s) shortens days without changing the rule.
 *
 * Pure functions, no state.
 */
#include "gw_lc.h"
#include "gw_wire.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/tree.h>

#include "cm_util.h"

/* A rule being parsed, with the error to answer. */
typedef struct {
    gw_lc_rule *r;
    char *msg;
    size_t cap;
} rule_ctx;

static int elem(xmlNodePtr n)
{
    return n->type == XML_ELEMENT_NODE;
}

static int named(xmlNodePtr n, const char *name)
{
    return elem(n) && xmlStrEqual(n->name, BAD_CAST name);
}

/* Characters of UTF-8 text (gw_xml_load let only valid UTF-8 in): its bytes that start one. */
static size_t code_points(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static gw_s3err fail(rule_ctx *c, gw_s3err e, const char *msg)
{
    snprintf(c->msg, c->cap, "%s", msg);
    return e;
}

/* Element texts (gw_xml_node_text) are trimmed for numbers and keywords; names, prefixes and
 * tags keep their white space, as S3 does. */

/* A decimal count: GW_OK with *v (>= 1), MalformedXML when not a number, InvalidArgument with
 * what (S3's message) when zero, negative or too large. */
static gw_s3err positive(rule_ctx *c, xmlNodePtr n, uint32_t max, uint32_t *v, const char *what)
{
    char *t = gw_xml_node_text(n, 1);
    if (!t)
        return GW_INTERNAL;
    const char *d = t[0] == '-' || t[0] == '+' ? t + 1 : t;
    int digits = *d != '\0' && strspn(d, "0123456789") == strlen(d);
    unsigned long long x = digits && strlen(d) <= 18 ? strtoull(d, NULL, 10) : ~0ULL;
    int neg = t[0] == '-';
    free(t);
    if (!digits)
        return fail(c, GW_MALFORMED_XML, "");
    if (neg || x == 0 || x > max)
        return fail(c, GW_INVALID_ARGUMENT, what);
    *v = (uint32_t)x;
    return GW_OK;
}

static gw_s3err size_value(rule_ctx *c, xmlNodePtr n, uint64_t *v)
{
    char *t = gw_xml_node_text(n, 1);
    if (!t)
        return GW_INTERNAL;
    int digits = t[0] != '\0' && strspn(t, "0123456789") == strlen(t) && strlen(t) <= 19;
    *v = digits ? strtoull(t, NULL, 10) : 0;
    free(t);
    return digits ? GW_OK : fail(c, GW_MALFORMED_XML, "");
}

static gw_s3err add_tag(rule_ctx *c, xmlNodePtr tag)
{
    xmlNodePtr k = NULL, v = NULL;
    for (xmlNodePtr x = tag->children; x; x = x->next) {
        if (named(x, "Key") && !k)
            k = x;
        else if (named(x, "Value") && !v)
            v = x;
        else if (elem(x))
            return fail(c, GW_MALFORMED_XML, "");
    }
    if (!k || !v)
        return fail(c, GW_MALFORMED_XML, "");
    gw_lc_rule *r = c->r;
    if (r->ntags >= GW_MAX_OBJECT_TAGS)
        return fail(c, GW_INVALID_ARGUMENT, "Object tags cannot be greater than 10");
    md_meta *nt = realloc(r->tags, (r->ntags + 1) * sizeof(*nt));
    if (!nt)
        return GW_INTERNAL;
    r->tags = nt;
    md_meta *m = &nt[r->ntags];
    m->name = gw_xml_node_text(k, 0);
    m->value = gw_xml_node_text(v, 0);
    r->ntags++; /* counted now so a failure below still frees both strings */
    if (!m->name || !m->value)
        return GW_INTERNAL;
    for (size_t i = 0; i + 1 < r->ntags; i++)
        if (strcmp(nt[i].name, m->name) == 0)
            return fail(c, GW_INVALID_REQUEST, "Duplicate Tag Keys are not allowed.");
    char msg[160];
    gw_s3err e = gw_tags_check(m, 1, GW_MAX_OBJECT_TAGS, msg, sizeof(msg));
    return e == GW_OK ? GW_OK : fail(c, e, msg);
}

/* One predicate of a Filter or And into the rule (seen: the single-valued ones met so far). */
static gw_s3err predicate(rule_ctx *c, xmlNodePtr n, int *seen)
{
    gw_lc_rule *r = c->r;
    if (named(n, "Prefix")) {
        if (*seen & 1)
            return fail(c, GW_MALFORMED_XML, "");
        *seen |= 1;
        free(r->prefix);
        return (r->prefix = gw_xml_node_text(n, 0)) ? GW_OK : GW_INTERNAL;
    }
    if (named(n, "Tag"))
        return add_tag(c, n);
    if (named(n, "ObjectSizeGreaterThan") && !r->has_gt) {
        r->has_gt = 1;
        return size_value(c, n, &r->size_gt);
    }
    if (named(n, "ObjectSizeLessThan") && !r->has_lt) {
        r->has_lt = 1;
        return size_value(c, n, &r->size_lt);
    }
    return fail(c, GW_MALFORMED_XML, "");
}

static gw_s3err parse_filter(rule_ctx *c, xmlNodePtr f)
{
    size_t n = 0;
    int seen = 0;
    gw_s3err e = GW_OK;
    for (xmlNodePtr x = f->children; x && e == GW_OK; x = x->next) {
        if (!elem(x))
            continue;
        if (++n > 1)
            return fail(c, GW_MALFORMED_XML, "");
        if (named(x, "And")) {
            int and_seen = 0;
            size_t parts = 0;
            for (xmlNodePtr y = x->children; y && e == GW_OK; y = y->next) {
                if (elem(y)) {
                    e = predicate(c, y, &and_seen);
                    parts++;
                }
            }
            if (e == GW_OK && parts == 0)
                e = fail(c, GW_MALFORMED_XML, "");
        } else {
            e = predicate(c, x, &seen);
        }
    }
    if (e == GW_OK && c->r->has_lt && c->r->has_gt && c->r->size_gt >= c->r->size_lt)
        e = fail(c, GW_INVALID_ARGUMENT,
                 "ObjectSizeGreaterThan must be less than ObjectSizeLessThan");
    return e;
}

static gw_s3err parse_expiration(rule_ctx *c, xmlNodePtr x)
{
    gw_lc_rule *r = c->r;
    size_t n = 0;
    gw_s3err e = GW_OK;
    for (xmlNodePtr y = x->children; y && e == GW_OK; y = y->next) {
        if (!elem(y))
            continue;
        n++;
        if (named(y, "Days")) {
            e = positive(c, y, 0x7fffffff, &r->exp_days,
                         "'Days' for Expiration action must be a positive integer");
        } else if (named(y, "Date")) {
            char *t = gw_xml_node_text(y, 1);
            int rc = t ? gw_lc_parse_date(t, &r->exp_date_ms) : -2;
            free(t);
            if (rc == -2)
                e = GW_INTERNAL;
            else if (rc == -1)
                e = fail(c, GW_INVALID_ARGUMENT, "Invalid date value for Expiration");
            else if (rc == 1)
                e = fail(c, GW_INVALID_ARGUMENT, "'Date' must be at midnight GMT");
        } else if (named(y, "ExpiredObjectDeleteMarker")) {
            char *t = gw_xml_node_text(y, 1);
            if (!t)
                return GW_INTERNAL;
            int yes = strcmp(t, "true") == 0, no = strcmp(t, "false") == 0;
            free(t);
            if (!yes && !no)
                e = fail(c, GW_MALFORMED_XML, "");
            r->exp_marker = yes;
        } else {
            e = fail(c, GW_MALFORMED_XML, "");
        }
    }
    if (e == GW_OK && n != 1) /* exactly one of Days, Date, ExpiredObjectDeleteMarker */
        e = fail(c, GW_MALFORMED_XML, "");
    return e;
}

static gw_s3err parse_noncurrent(rule_ctx *c, xmlNodePtr x)
{
    gw_lc_rule *r = c->r;
    gw_s3err e = GW_OK;
    int days = 0;
    for (xmlNodePtr y = x->children; y && e == GW_OK; y = y->next) {
        if (named(y, "NoncurrentDays") && !days++)
            e = positive(c, y, 0x7fffffff, &r->nc_days,
                         "'NoncurrentDays' for NoncurrentVersionExpiration action must be a "
                         "positive integer");
        else if (named(y, "NewerNoncurrentVersions") && !r->nc_newer)
            e = positive(c, y, 100, &r->nc_newer,
                         "NewerNoncurrentVersions for NoncurrentVersionExpiration action must "
                         "be a positive integer no greater than 100");
        else if (elem(y))
            e = fail(c, GW_MALFORMED_XML, "");
    }
    if (e == GW_OK && !days)
        e = fail(c, GW_MALFORMED_XML, "");
    return e;
}

static gw_s3err parse_abort(rule_ctx *c, xmlNodePtr x)
{
    gw_s3err e = GW_OK;
    int days = 0;
    for (xmlNodePtr y = x->children; y && e == GW_OK; y = y->next) {
        if (named(y, "DaysAfterInitiation") && !days++)
            e = positive(c, y, 0x7fffffff, &c->r->abort_days,
                         "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must "
                         "be a positive integer");
        else if (elem(y))
            e = fail(c, GW_MALFORMED_XML, "");
    }
    if (e == GW_OK && !days)
        e = fail(c, GW_MALFORMED_XML, "");
    return e;
}

/* Which element of a Rule n is (a bit per name, so a repeat is seen), 0 for an unknown one. */
static unsigned rule_part(xmlNodePtr n)
{
    static const char *const names[] = {"ID",
                                        "Status",
                                        "Filter",
                                        "Prefix",
                                        "Expiration",
                                        "NoncurrentVersionExpiration",
                                        "AbortIncompleteMultipartUpload",
                                        "Transition",
                                        "NoncurrentVersionTransition"};
    for (unsigned i = 0; i < CM_ARRAY_LEN(names); i++)
        if (named(n, names[i]))
            return 1u << i;
    return 0;
}

enum {
    P_ID = 1,
    P_STATUS = 2,
    P_FILTER = 4,
    P_PREFIX = 8,
    P_EXPIRATION = 16,
    P_NONCURRENT = 32,
    P_ABORT = 64 /* then the two transitions */
};

static gw_s3err rule_element(rule_ctx *c, xmlNodePtr x, unsigned part)
{
    gw_lc_rule *r = c->r;
    char *t = NULL;
    gw_s3err e = GW_OK;
    switch (part) {
    case P_ID:
        if (!(t = gw_xml_node_text(x, 0)))
            return GW_INTERNAL;
        if (code_points(t) > GW_LC_ID_MAX)
            e = fail(c, GW_INVALID_ARGUMENT, "ID length should not exceed allowed limit of 255");
        else
            snprintf(r->id, sizeof(r->id), "%s", t);
        break;
    case P_STATUS:
        if (!(t = gw_xml_node_text(x, 1)))
            return GW_INTERNAL;
        if (strcmp(t, "Enabled") != 0 && strcmp(t, "Disabled") != 0)
            e = fail(c, GW_MALFORMED_XML, "");
        r->enabled = strcmp(t, "Enabled") == 0;
        break;
    case P_FILTER:
        e = parse_filter(c, x);
        break;
    case P_PREFIX:
        r->legacy_prefix = 1;
        free(r->prefix);
        e = (r->prefix = gw_xml_node_text(x, 0)) ? GW_OK : GW_INTERNAL;
        break;
    case P_EXPIRATION:
        e = parse_expiration(c, x);
        break;
    case P_NONCURRENT:
        e = parse_noncurrent(c, x);
        break;
    case P_ABORT:
        e = parse_abort(c, x);
        break;
    default: /* transitions */
        e = fail(c, GW_UNSUPPORTED,
                 "Transition actions are not implemented: cairn keeps one storage class");
    }
    free(t);
    return e;
}

static gw_s3err parse_rule(rule_ctx *c, xmlNodePtr rule)
{
    gw_lc_rule *r = c->r;
    unsigned seen = 0;
    gw_s3err e = GW_OK;
    r->exp_date_ms = -1;
    for (xmlNodePtr x = rule->children; x && e == GW_OK; x = x->next) {
        if (!elem(x))
            continue;
        unsigned part = rule_part(x);
        if (!part || (seen & part))
            return fail(c, GW_MALFORMED_XML, "");
        seen |= part;
        e = rule_element(c, x, part);
    }
    if (e != GW_OK)
        return e;
    if (!(seen & P_STATUS) || !(seen & P_FILTER) == !(seen & P_PREFIX))
        return fail(c, GW_MALFORMED_XML, "");
    if (!r->prefix && !(r->prefix = strdup("")))
        return GW_INTERNAL;
    if (!r->exp_days && r->exp_date_ms < 0 && !r->exp_marker && !r->nc_days && !r->abort_days)
        return fail(c, GW_INVALID_REQUEST, "At least one action needs to be specified in a rule");
    if (r->ntags && r->abort_days)
        return fail(c, GW_INVALID_REQUEST,
                    "AbortIncompleteMultipartUpload cannot be specified with Tags.");
    if (r->ntags && r->exp_marker)
        return fail(c, GW_INVALID_REQUEST,
                    "ExpiredObjectDeleteMarker cannot be specified with object tags.");
    return GW_OK;
}

/* Give every rule without ID a fresh one (S3 makes one up too), then refuse duplicates. */
static gw_s3err name_rules(gw_lc_config *cfg, char *msg, size_t cap)
{
    for (size_t i = 0; i < cfg->n; i++) {
        gw_lc_rule *r = &cfg->rules[i];
        uint8_t b[12];
        if (r->id[0])
            continue;
        if (cm_random(b, sizeof(b)) != CM_OK)
            return GW_INTERNAL;
        cm_base64_encode(b, sizeof(b), r->id);
    }
    for (size_t i = 0; i < cfg->n; i++)
        for (size_t j = i + 1; j < cfg->n; j++)
            if (strcmp(cfg->rules[i].id, cfg->rules[j].id) == 0) {
                snprintf(msg, cap, "Rule ID must be unique. Found same ID for more than one rule");
                return GW_INVALID_ARGUMENT;
            }
    return GW_OK;
}

gw_s3err gw_lc_parse(const char *xml, size_t len, size_t cap, gw_lc_config *out, char *msg,
                     size_t cap_msg)
{
    void *dv, *rv;
    memset(out, 0, sizeof(*out));
    msg[0] = '\0';
    gw_s3err e = gw_xml_load(xml, len, cap, "LifecycleConfiguration", &dv, &rv);
    if (e != GW_OK)
        return e;
    xmlNodePtr root = rv;
    size_t n = 0;
    for (xmlNodePtr x = root->children; x && e == GW_OK; x = x->next) {
        if (named(x, "Rule"))
            n++;
        else if (elem(x))
            e = GW_MALFORMED_XML;
    }
    if (e == GW_OK && n == 0)
        e = GW_MALFORMED_XML;
    if (e == GW_OK && n > GW_LC_MAX_RULES) {
        snprintf(msg, cap_msg,
                 "The number of lifecycle rules should not exceed allowed limit "
                 "of 1000 rules");
        e = GW_INVALID_REQUEST;
    }
    if (e == GW_OK && !(out->rules = calloc(n, sizeof(*out->rules))))
        e = GW_INTERNAL;
    for (xmlNodePtr x = root->children; x && e == GW_OK; x = x->next) {
        if (!named(x, "Rule"))
            continue;
        rule_ctx c = {&out->rules[out->n++], msg, cap_msg};
        e = parse_rule(&c, x);
    }
    xmlFreeDoc(dv);
    if (e == GW_OK)
        e = name_rules(out, msg, cap_msg);
    if (e != GW_OK)
        gw_lc_config_release(out);
    return e;
}

void gw_lc_config_release(gw_lc_config *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->rules[i].prefix);
        md_meta_free(c->rules[i].tags, c->rules[i].ntags);
    }
    free(c->rules);
    memset(c, 0, sizeof(*c));
}

/* ---- writing ---- */

static void write_filter(gw_xml *x, const gw_lc_rule *r)
{
    size_t preds = (r->prefix[0] != '\0') + r->ntags + (size_t)r->has_gt + (size_t)r->has_lt;
    if (r->legacy_prefix) {
        gw_xml_text(x, "Prefix", r->prefix);
        return;
    }
    gw_xml_open(x, "Filter");
    if (preds > 1)
        gw_xml_open(x, "And");
    if (r->prefix[0] || preds == 0)
        gw_xml_text(x, "Prefix", r->prefix);
    for (size_t i = 0; i < r->ntags; i++) {
        gw_xml_open(x, "Tag");
        gw_xml_text(x, "Key", r->tags[i].name);
        gw_xml_text(x, "Value", r->tags[i].value);
        gw_xml_close(x, "Tag");
    }
    if (r->has_gt)
        gw_xml_u64(x, "ObjectSizeGreaterThan", r->size_gt);
    if (r->has_lt)
        gw_xml_u64(x, "ObjectSizeLessThan", r->size_lt);
    if (preds > 1)
        gw_xml_close(x, "And");
    gw_xml_close(x, "Filter");
}

static void write_actions(gw_xml *x, const gw_lc_rule *r)
{
    if (r->exp_days || r->exp_date_ms >= 0 || r->exp_marker) {
        gw_xml_open(x, "Expiration");
        if (r->exp_days)
            gw_xml_u64(x, "Days", r->exp_days);
        else if (r->exp_date_ms >= 0)
            gw_xml_time(x, "Date", r->exp_date_ms);
        else
            gw_xml_bool(x, "ExpiredObjectDeleteMarker", 1);
        gw_xml_close(x, "Expiration");
    }
    if (r->nc_days) {
        gw_xml_open(x, "NoncurrentVersionExpiration");
        gw_xml_u64(x, "NoncurrentDays", r->nc_days);
        if (r->nc_newer)
            gw_xml_u64(x, "NewerNoncurrentVersions", r->nc_newer);
        gw_xml_close(x, "NoncurrentVersionExpiration");
    }
    if (r->abort_days) {
        gw_xml_open(x, "AbortIncompleteMultipartUpload");
        gw_xml_u64(x, "DaysAfterInitiation", r->abort_days);
        gw_xml_close(x, "AbortIncompleteMultipartUpload");
    }
}

cm_err gw_lc_write(struct evbuffer *buf, const gw_lc_config *c)
{
    gw_xml x;
    gw_xml_init(&x, buf);
    gw_xml_begin(&x);
    gw_xml_open_root(&x, "LifecycleConfiguration");
    for (size_t i = 0; i < c->n; i++) {
        const gw_lc_rule *r = &c->rules[i];
        gw_xml_open(&x, "Rule");
        gw_xml_text(&x, "ID", r->id);
        write_filter(&x, r);
        gw_xml_text(&x, "Status", r->enabled ? "Enabled" : "Disabled");
        write_actions(&x, r);
        gw_xml_close(&x, "Rule");
    }
    gw_xml_close(&x, "LifecycleConfiguration");
    return gw_xml_status(&x);
}

/* ---- matching and dates ---- */

int gw_lc_rule_selects(const gw_lc_rule *rule, const char *key, uint64_t size)
{
    if (strncmp(key, rule->prefix, strlen(rule->prefix)) != 0)
        return 0;
    return !(rule->has_gt && size <= rule->size_gt) && !(rule->has_lt && size >= rule->size_lt);
}

int gw_lc_rule_matches(const gw_lc_rule *rule, const char *key, uint64_t size, const md_meta *tags,
                       size_t ntags)
{
    if (!gw_lc_rule_selects(rule, key, size))
        return 0;
    for (size_t i = 0; i < rule->ntags; i++) {
        size_t j = 0;
        while (j < ntags && strcmp(tags[j].name, rule->tags[i].name) != 0)
            j++;
        if (j == ntags || strcmp(tags[j].value, rule->tags[i].value) != 0)
            return 0;
    }
    return 1;
}

/* The first day boundary at or after t + days (all in ms). */
static int64_t after_days(int64_t t, uint32_t days, uint32_t day_s)
{
    int64_t day = (int64_t)day_s * 1000;
    int64_t due = t + (int64_t)days * day;
    return (due + day - 1) / day * day;
}

int64_t gw_lc_expiry_ms(const gw_lc_rule *rule, int64_t mtime_ms, uint32_t day_s)
{
    if (rule->exp_days)
        return after_days(mtime_ms, rule->exp_days, day_s);
    return rule->exp_date_ms >= 0 ? rule->exp_date_ms : -1;
}

int64_t gw_lc_abort_ms(const gw_lc_rule *rule, int64_t init_ms, uint32_t day_s)
{
    return rule->abort_days ? after_days(init_ms, rule->abort_days, day_s) : -1;
}

int64_t gw_lc_noncurrent_ms(const gw_lc_rule *rule, int64_t noncurrent_ms, uint32_t day_s)
{
    return rule->nc_days ? after_days(noncurrent_ms, rule->nc_days, day_s) : -1;
}

gw_lc_action gw_lc_version_action(const gw_lc_rule *rule, const char *key, const gw_lc_version *v,
                                  int64_t now, uint32_t day_s)
{
    uint64_t size = v->delete_marker ? 0 : v->size;
    if (!rule->enabled || !gw_lc_rule_selects(rule, key, size))
        return GW_LC_KEEP;
    if (v->noncurrent_ms >= 0) {
        int64_t due = gw_lc_noncurrent_ms(rule, v->noncurrent_ms, day_s);
        return due >= 0 && now >= due && v->newer_noncurrent >= rule->nc_newer
                   ? GW_LC_EXPIRE_NONCURRENT
                   : GW_LC_KEEP;
    }
    if (v->delete_marker) { /* never expired again; a lone one (all its versions gone) goes by
                             * ExpiredObjectDeleteMarker at once, by Days/Date once it is as old
                             * as an object would be (S3: a rule expiring current versions also
                             * cleans up expired object delete markers) */
        if (!v->lone)
            return GW_LC_KEEP;
        int64_t due = gw_lc_expiry_ms(rule, v->mtime_ms, day_s);
        return rule->exp_marker || (due >= 0 && now >= due) ? GW_LC_REMOVE_MARKER : GW_LC_KEEP;
    }
    int64_t due = gw_lc_expiry_ms(rule, v->mtime_ms, day_s);
    return due >= 0 && now >= due ? GW_LC_EXPIRE_CURRENT : GW_LC_KEEP;
}

int gw_lc_parse_date(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &used) != 3 || used != 10)
        return -1;
    const char *p = s + 10;
    int hh = 0, mm = 0, ss = 0;
    if (*p == 'T') {
        if (sscanf(p, "T%2d:%2d:%2d%n", &hh, &mm, &ss, &used) != 3 || used != 9)
            return -1;
        p += 9;
        if (*p == '.') {
            size_t f = strspn(p + 1, "0123456789");
            if (f == 0)
                return -1;
            for (size_t i = 1; i <= f; i++)
                if (p[i] != '0')
                    return 1; /* a fraction of a second past midnight */
            p += 1 + f;
        }
        if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
            return strlen(p) == 6 && (p[0] == '+' || p[0] == '-') ? 1 : -1;
    } else if (*p) {
        return -1;
    }
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || hh > 23 ||
        mm > 59 || ss > 59 || tm.tm_year < 1970)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int mday = tm.tm_mday;
    time_t t = timegm(&tm); /* normalises tm: 29 February 2023 becomes 1 March */
    if (t == (time_t)-1 || tm.tm_mday != mday)
        return -1;
    *ms = (int64_t)t * 1000;
    return hh || mm || ss ? 1 : 0;
}
