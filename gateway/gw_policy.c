/*
 * gw_policy.c - bucket policy JSON into statements (jansson), and their evaluation (gw_policy.h).
 *
 * A parsed policy is a flat array of statements; every string is a heap copy owned by the policy,
 * and the input is bounded (GW_POLICY_MAX), so a policy's memory is bounded too. Parsing refuses
 * what it cannot evaluate (an unknown condition operator or key, a principal type other than AWS,
 * NotPrincipal, a resource outside the bucket) rather than ignoring it: a Deny whose condition were
 * dropped would deny less than its author meant.
 *
 * Evaluation follows IAM: a statement applies when its principal, action, resource and every
 * condition match; any applying Deny decides (explicit deny wins), else any applying Allow, else
 * nothing (the caller's default: the owner's rights, ACLs, or AccessDenied). Conditions: the keys
 * of one operator must all hold (AND), the values of one key are alternatives (OR); a key the
 * request does not have fails a positive operator and satisfies a negated one (as IAM).
 */
#include "gw_policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARN_S3 "arn:aws:s3:::"
#define ARN_IAM "arn:aws:iam::"

typedef enum {
    C_STR_EQ,
    C_STR_NE,
    C_STR_EQ_IC,
    C_STR_LIKE,
    C_STR_NOT_LIKE,
    C_IP,
    C_NOT_IP,
    C_BOOL,
    C_NULL,
} cond_op;

static const struct {
    const char *name;
    cond_op op;
} cond_ops[] = {
    {"StringEquals", C_STR_EQ},
    {"StringNotEquals", C_STR_NE},
    {"StringEqualsIgnoreCase", C_STR_EQ_IC},
    {"StringLike", C_STR_LIKE},
    {"StringNotLike", C_STR_NOT_LIKE},
    {"IpAddress", C_IP},
    {"NotIpAddress", C_NOT_IP},
    {"Bool", C_BOOL},
    {"Null", C_NULL},
};

typedef struct {
    cond_op op;
    char *key;
    char **vals;
    size_t nvals;
} cond;

typedef struct {
    int deny;
    int any_principal; /* "*": everyone, anonymous too */
    int all_users;     /* the account: every authenticated user */
    char **users;
    size_t nusers;
    int not_action;
    char **actions;
    size_t nactions;
    int not_resource;
    char **resources;
    size_t nresources;
    cond *conds;
    size_t nconds;
} stmt;

struct gw_policy {
    stmt *st;
    size_t n;
    int uses_tags;
};

/* ---- wildcard matching ---- */

int gw_policy_glob(const char *p, const char *s, int nocase)
{
    const char *star = NULL, *mark = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            mark = s;
        } else if (*p == '?' ||
                   (*p && (nocase ? tolower((unsigned char)*p) == tolower((unsigned char)*s)
                                  : *p == *s))) {
            p++;
            s++;
        } else if (star) { /* backtrack: the last * takes one more character */
            p = star + 1;
            s = ++mark;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/* ---- parsing ---- */

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void stmt_release(stmt *s)
{
    strv_free(s->users, s->nusers);
    strv_free(s->actions, s->nactions);
    strv_free(s->resources, s->nresources);
    for (size_t i = 0; i < s->nconds; i++) {
        free(s->conds[i].key);
        strv_free(s->conds[i].vals, s->conds[i].nvals);
    }
    free(s->conds);
}

void gw_policy_free(gw_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        stmt_release(&p->st[i]);
    free(p->st);
    free(p);
}

static int strv_add(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(char *));
    if (!nv)
        return -1;
    *v = nv;
    if (!(nv[*n] = strdup(s)))
        return -1;
    (*n)++;
    return 0;
}

/* A string or a non-empty list of strings (booleans as "true"/"false" when bools). */
static int str_list(json_t *j, int bools, char ***out, size_t *n)
{
    size_t i, cnt = json_is_array(j) ? json_array_size(j) : 1;
    if (json_is_array(j) && cnt == 0)
        return -1;
    for (i = 0; i < cnt; i++) {
        json_t *e = json_is_array(j) ? json_array_get(j, i) : j;
        const char *s = json_is_string(e)           ? json_string_value(e)
                        : bools && json_is_true(e)  ? "true"
                        : bools && json_is_false(e) ? "false"
                                                    : NULL;
        if (!s || strv_add(out, n, s) != 0)
            return -1;
    }
    return 0;
}

typedef struct {
    const char *bucket;
    char *msg;
    size_t cap;
} parse_ctx;

static int fail(parse_ctx *pc, const char *what, const char *detail)
{
    snprintf(pc->msg, pc->cap, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
    return -1;
}

/* Twelve digits: an account id. */
static int account_id(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n == 12 && s[n] == '\0';
}

static int principal_one(parse_ctx *pc, stmt *s, const char *v)
{
    if (strcmp(v, "*") == 0) {
        s->any_principal = 1;
        return 0;
    }
    if (account_id(v)) {
        s->all_users = 1;
        return 0;
    }
    if (strncmp(v, ARN_IAM, strlen(ARN_IAM)) == 0) {
        const char *acct = v + strlen(ARN_IAM), *colon = strchr(acct, ':');
        if (colon && strcmp(colon + 1, "root") == 0) {
            s->all_users = 1;
            return 0;
        }
        if (colon && strncmp(colon + 1, "user/", 5) == 0) {
            const char *name = strrchr(colon + 1, '/') + 1; /* past any IAM path */
            if (*name && strv_add(&s->users, &s->nusers, name) == 0)
                return 0;
        }
    }
    return fail(pc, "Invalid principal in policy", v);
}

static int parse_principal(parse_ctx *pc, stmt *s, json_t *j)
{
    if (json_is_string(j) && strcmp(json_string_value(j), "*") == 0) {
        s->any_principal = 1;
        return 0;
    }
    const char *k;
    json_t *v;
    if (!json_is_object(j) || json_object_size(j) == 0)
        return fail(pc, "Invalid principal in policy", NULL);
    json_object_foreach(j, k, v)
    {
        char **vals = NULL;
        size_t n = 0;
        if (strcmp(k, "AWS") != 0)
            return fail(pc, "Unsupported principal type (only AWS)", k);
        int rc = str_list(v, 0, &vals, &n);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = principal_one(pc, s, vals[i]);
        strv_free(vals, n);
        if (rc != 0)
            return pc->msg[0] ? -1 : fail(pc, "Invalid principal in policy", NULL);
    }
    return 0;
}

static int parse_actions(parse_ctx *pc, stmt *s, json_t *j)
{
    if (str_list(j, 0, &s->actions, &s->nactions) != 0)
        return fail(pc, "Policy has invalid action", NULL);
    for (size_t i = 0; i < s->nactions; i++)
        if (strcmp(s->actions[i], "*") != 0 && strncasecmp(s->actions[i], "s3:", 3) != 0)
            return fail(pc, "Policy has invalid action", s->actions[i]);
    return 0;
}

static int parse_resources(parse_ctx *pc, stmt *s, json_t *j)
{
    size_t bl = strlen(pc->bucket), al = strlen(ARN_S3);
    if (str_list(j, 0, &s->resources, &s->nresources) != 0)
        return fail(pc, "Policy has invalid resource", NULL);
    for (size_t i = 0; i < s->nresources; i++) {
        const char *r = s->resources[i];
        if (strncmp(r, ARN_S3, al) != 0 || strncmp(r + al, pc->bucket, bl) != 0 ||
            (r[al + bl] != '\0' && r[al + bl] != '/'))
            return fail(pc, "Policy has invalid resource", r);
    }
    return 0;
}

/* Parse "a.b.c.d[/n]" or an IPv6 "x::y[/n]" into addr (16 bytes), family and prefix bits. */
static int parse_cidr(const char *v, uint8_t addr[16], int *af, int *bits)
{
    char buf[64];
    const char *slash = strchr(v, '/');
    size_t al = slash ? (size_t)(slash - v) : strlen(v);
    if (al == 0 || al >= sizeof(buf))
        return -1;
    memcpy(buf, v, al);
    buf[al] = '\0';
    *af = strchr(buf, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(*af, buf, addr) != 1)
        return -1;
    int max = *af == AF_INET ? 32 : 128;
    *bits = max;
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || b < 0 || b > max)
            return -1;
        *bits = (int)b;
    }
    return 0;
}

static int key_known(const char *k)
{
    static const char *const keys[] = {"aws:SourceIp", "aws:SecureTransport", "aws:username",
                                       "s3:prefix", "s3:delimiter"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcasecmp(k, keys[i]) == 0)
            return 1;
    return strncasecmp(k, "s3:ExistingObjectTag/", 21) == 0 && k[21];
}

static int parse_cond_key(parse_ctx *pc, stmt *s, cond_op op, const char *key, json_t *v)
{
    cond *nc = realloc(s->conds, (s->nconds + 1) * sizeof(*nc));
    if (!nc)
        return fail(pc, "Out of memory", NULL);
    s->conds = nc;
    cond *c = &nc[s->nconds];
    memset(c, 0, sizeof(*c));
    if (!(c->key = strdup(key)))
        return fail(pc, "Out of memory", NULL);
    c->op = op;
    s->nconds++;
    if (!key_known(key))
        return fail(pc, "Policy has an invalid condition key", key);
    if (str_list(v, 1, &c->vals, &c->nvals) != 0)
        return fail(pc, "Invalid condition value for", key);
    int ipkey = strcasecmp(key, "aws:SourceIp") == 0;
    if ((op == C_IP || op == C_NOT_IP) != ipkey && op != C_NULL)
        return fail(pc, "Condition operator does not fit the key", key);
    for (size_t i = 0; i < c->nvals; i++) {
        uint8_t a[16];
        int af, bits;
        if (ipkey && op != C_NULL && parse_cidr(c->vals[i], a, &af, &bits) != 0)
            return fail(pc, "Invalid IP address in condition", c->vals[i]);
        if ((op == C_BOOL || op == C_NULL) && strcasecmp(c->vals[i], "true") != 0 &&
            strcasecmp(c->vals[i], "false") != 0)
            return fail(pc, "Invalid boolean in condition", c->vals[i]);
    }
    return 0;
}

static int parse_conditions(parse_ctx *pc, stmt *s, json_t *j)
{
    const char *opname, *key;
    json_t *keys, *v;
    if (!json_is_object(j))
        return fail(pc, "Condition must be an object", NULL);
    json_object_foreach(j, opname, keys)
    {
        size_t i = 0, nops = sizeof(cond_ops) / sizeof(cond_ops[0]);
        while (i < nops && strcmp(opname, cond_ops[i].name) != 0)
            i++;
        if (i == nops)
            return fail(pc, "Unsupported condition operator", opname);
        if (!json_is_object(keys) || json_object_size(keys) == 0)
            return fail(pc, "Invalid condition block", opname);
        json_object_foreach(keys, key, v)
        {
            if (parse_cond_key(pc, s, cond_ops[i].op, key, v) != 0)
                return -1;
        }
    }
    return 0;
}

static int parse_statement(parse_ctx *pc, stmt *s, json_t *j)
{
    const char *k;
    json_t *v;
    int have_effect = 0, have_principal = 0, have_action = 0, have_resource = 0;
    if (!json_is_object(j))
        return fail(pc, "Statement must be an object", NULL);
    json_object_foreach(j, k, v)
    {
        int rc = 0;
        if (strcmp(k, "Sid") == 0) {
            rc = json_is_string(v) ? 0 : fail(pc, "Sid must be a string", NULL);
        } else if (strcmp(k, "Effect") == 0) {
            const char *e = json_string_value(v);
            if (!e || (strcmp(e, "Allow") != 0 && strcmp(e, "Deny") != 0))
                rc = fail(pc, "Invalid effect", e);
            s->deny = e && strcmp(e, "Deny") == 0;
            have_effect = 1;
        } else if (strcmp(k, "Principal") == 0) {
            rc = parse_principal(pc, s, v);
            have_principal = 1;
        } else if (strcmp(k, "Action") == 0 || strcmp(k, "NotAction") == 0) {
            s->not_action = k[0] == 'N';
            rc = have_action ? fail(pc, "Action and NotAction together", NULL)
                             : parse_actions(pc, s, v);
            have_action = 1;
        } else if (strcmp(k, "Resource") == 0 || strcmp(k, "NotResource") == 0) {
            s->not_resource = k[0] == 'N';
            rc = have_resource ? fail(pc, "Resource and NotResource together", NULL)
                               : parse_resources(pc, s, v);
            have_resource = 1;
        } else if (strcmp(k, "Condition") == 0) {
            rc = parse_conditions(pc, s, v);
        } else {
            rc = fail(pc, "Unknown or unsupported field in statement", k);
        }
        if (rc != 0)
            return -1;
    }
    if (!have_effect)
        return fail(pc, "Missing required field Effect", NULL);
    if (!have_principal)
        return fail(pc, "Missing required field Principal", NULL);
    if (!have_action)
        return fail(pc, "Missing required field Action", NULL);
    if (!have_resource)
        return fail(pc, "Missing required field Resource", NULL);
    return 0;
}

static int parse_doc(parse_ctx *pc, gw_policy *p, json_t *doc)
{
    const char *k;
    json_t *v, *st = NULL;
    if (!json_is_object(doc))
        return fail(pc, "Policies must be JSON objects", NULL);
    json_object_foreach(doc, k, v)
    {
        if (strcmp(k, "Version") == 0) {
            const char *ver = json_string_value(v);
            if (!ver || (strcmp(ver, "2012-10-17") != 0 && strcmp(ver, "2008-10-17") != 0))
                return fail(pc, "The policy must contain a valid version string", NULL);
        } else if (strcmp(k, "Statement") == 0) {
            st = v;
        } else if (strcmp(k, "Id") != 0) {
            return fail(pc, "Unknown field", k);
        }
    }
    size_t n = json_is_array(st) ? json_array_size(st) : st ? 1 : 0;
    if (n == 0)
        return fail(pc, "Missing required field Statement", NULL);
    if (!(p->st = calloc(n, sizeof(*p->st))))
        return fail(pc, "Out of memory", NULL);
    for (size_t i = 0; i < n; i++) {
        p->n = i + 1; /* so gw_policy_free releases what the failing statement holds */
        if (parse_statement(pc, &p->st[i], json_is_array(st) ? json_array_get(st, i) : st) != 0)
            return -1;
        for (size_t c = 0; c < p->st[i].nconds; c++)
            p->uses_tags |= strncasecmp(p->st[i].conds[c].key, "s3:ExistingObjectTag/", 21) == 0;
    }
    return 0;
}

gw_s3err gw_policy_parse(const char *json, size_t len, const char *bucket, gw_policy **out,
                         char *msg, size_t cap)
{
    json_error_t jerr;
    parse_ctx pc = {bucket, msg, cap};
    gw_policy *p = NULL;
    json_t *doc = NULL;
    *out = NULL;
    msg[0] = '\0';
    if (len > GW_POLICY_MAX) {
        fail(&pc, "Policies must be no more than 20 KB", NULL);
        return GW_MALFORMED_POLICY;
    }
    if (!(doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr))) {
        fail(&pc, "Policies must be valid JSON", jerr.text);
        return GW_MALFORMED_POLICY;
    }
    if (!(p = calloc(1, sizeof(*p))) || parse_doc(&pc, p, doc) != 0) {
        if (!p)
            fail(&pc, "Out of memory", NULL);
        gw_policy_free(p);
        json_decref(doc);
        return p ? GW_MALFORMED_POLICY : GW_INTERNAL;
    }
    json_decref(doc);
    *out = p;
    return GW_OK;
}

/* ---- evaluation ---- */

static int ip_in(const char *ip, const char *cidr)
{
    uint8_t a[16], b[16];
    int af, bits, af2, bits2;
    if (!ip || parse_cidr(cidr, b, &af, &bits) != 0 || parse_cidr(ip, a, &af2, &bits2) != 0 ||
        af != af2)
        return 0;
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)full) != 0)
        return 0;
    return rest == 0 || ((a[full] ^ b[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* The request's value of a condition key, or NULL when it has none. */
static const char *ctx_value(const gw_policy_ctx *c, const char *key)
{
    if (strcasecmp(key, "aws:SourceIp") == 0)
        return c->source_ip;
    if (strcasecmp(key, "aws:SecureTransport") == 0)
        return c->secure ? "true" : "false";
    if (strcasecmp(key, "aws:username") == 0)
        return c->user;
    if (strcasecmp(key, "s3:prefix") == 0)
        return c->prefix;
    if (strcasecmp(key, "s3:delimiter") == 0)
        return c->delimiter;
    if (strncasecmp(key, "s3:ExistingObjectTag/", 21) == 0) {
        for (size_t i = 0; i < c->ntags; i++)
            if (strcmp(c->tags[i].name, key + 21) == 0)
                return c->tags[i].value;
    }
    return NULL;
}

static int value_matches(cond_op op, const char *want, const char *have)
{
    switch (op) {
    case C_STR_EQ:
    case C_STR_NE:
        return strcmp(want, have) == 0;
    case C_STR_EQ_IC:
    case C_BOOL:
        return strcasecmp(want, have) == 0;
    case C_STR_LIKE:
    case C_STR_NOT_LIKE:
        return gw_policy_glob(want, have, 0);
    case C_IP:
    case C_NOT_IP:
        return ip_in(have, want);
    case C_NULL:
        return 0;
    }
    return 0;
}

static int cond_holds(const cond *k, const gw_policy_ctx *c)
{
    const char *have = ctx_value(c, k->key);
    int negated = k->op == C_STR_NE || k->op == C_STR_NOT_LIKE || k->op == C_NOT_IP;
    if (k->op == C_NULL) /* "true": the key must be absent */
        return (strcasecmp(k->vals[0], "true") == 0) == (have == NULL);
    if (!have)
        return negated;
    int any = 0;
    for (size_t i = 0; i < k->nvals && !any; i++)
        any = value_matches(k->op, k->vals[i], have);
    return negated ? !any : any;
}

static int principal_matches(const stmt *s, const gw_policy_ctx *c)
{
    if (s->any_principal)
        return 1;
    if (!c->user)
        return 0;
    if (s->all_users)
        return 1;
    for (size_t i = 0; i < s->nusers; i++)
        if (strcmp(s->users[i], c->user) == 0)
            return 1;
    return 0;
}

static int list_matches(char *const *v, size_t n, const char *s, int nocase)
{
    for (size_t i = 0; i < n; i++)
        if (gw_policy_glob(v[i], s, nocase))
            return 1;
    return 0;
}

static int stmt_applies(const stmt *s, const gw_policy_ctx *c)
{
    if (!principal_matches(s, c))
        return 0;
    if (list_matches(s->actions, s->nactions, c->action, 1) == s->not_action)
        return 0;
    if (list_matches(s->resources, s->nresources, c->resource, 0) == s->not_resource)
        return 0;
    for (size_t i = 0; i < s->nconds; i++)
        if (!cond_holds(&s->conds[i], c))
            return 0;
    return 1;
}

gw_policy_effect gw_policy_eval(const gw_policy *p, const gw_policy_ctx *c, int *public_only)
{
    int allow = 0, named = 0;
    if (public_only)
        *public_only = 0; /* also when a Deny decides */
    for (size_t i = 0; p && i < p->n; i++) {
        const stmt *s = &p->st[i];
        if (!stmt_applies(s, c))
            continue;
        if (s->deny)
            return GW_POLICY_DENY;
        allow = 1;
        named |= !s->any_principal;
    }
    if (public_only)
        *public_only = allow && !named;
    return allow ? GW_POLICY_ALLOW : GW_POLICY_NONE;
}

int gw_policy_is_public(const gw_policy *p)
{
    for (size_t i = 0; p && i < p->n; i++) {
        const stmt *s = &p->st[i];
        int narrowed = 0;
        if (s->deny || !s->any_principal)
            continue;
        for (size_t k = 0; k < s->nconds; k++) {
            const cond *c = &s->conds[k];
            narrowed |= (c->op == C_IP && strcasecmp(c->key, "aws:SourceIp") == 0) ||
                        ((c->op == C_STR_EQ || c->op == C_STR_EQ_IC) &&
                         strcasecmp(c->key, "aws:username") == 0);
        }
        if (!narrowed)
            return 1;
    }
    return 0;
}

int gw_policy_uses_tags(const gw_policy *p)
{
    return p && p->uses_tags;
}
