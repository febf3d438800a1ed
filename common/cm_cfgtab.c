/*
 * cm_cfgtab.c - the table-driven configuration engine (see cm_cfgtab.h). Numbers are parsed with
 * strtoll/strtod over the whole value (no trailing text, no empty value); integer ranges are kept
 * as doubles in the table, exact for every integer up to 2^53.
 */
#include "cm_cfgtab.h"
#include "cm_config.h"
#include "cm_util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h> /* isfinite: a macro, no libm */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const bool_on[] = {"on", "true", "yes", "1"};
static const char *const bool_off[] = {"off", "false", "no", "0"};

static void *field(const cm_cfg *t, const cm_cfg_key *k)
{
    return (char *)t->opts + k->off;
}

/* The field's size the type needs (0 for text: any size). */
static size_t type_size(cm_cfg_type type)
{
    switch (type) {
    case CM_CFG_INT:
    case CM_CFG_BOOL:
    case CM_CFG_ENUM:
        return sizeof(int);
    case CM_CFG_LONG:
        return sizeof(long);
    case CM_CFG_U32:
        return sizeof(uint32_t);
    case CM_CFG_SIZE:
        return sizeof(size_t);
    case CM_CFG_DOUBLE:
        return sizeof(double);
    case CM_CFG_STR:
        return 0;
    }
    return 0;
}

/* Index of value in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *value)
{
    size_t vn = strlen(value);
    int i = 0;
    for (const char *p = choices; p && *p; i++) {
        size_t n = strcspn(p, "|");
        if (n == vn && strncmp(p, value, n) == 0)
            return i;
        p += n + (p[n] == '|');
    }
    return -1;
}

static int parse_integer(const char *v, const cm_cfg_key *k, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || (double)n < k->min || (double)n > k->max)
        return -1;
    *out = n;
    return 0;
}

static int parse_number(const char *v, const cm_cfg_key *k, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(d) || d < k->min || d > k->max)
        return -1;
    *out = d;
    return 0;
}

static int parse_bool(const char *v)
{
    for (size_t i = 0; i < CM_ARRAY_LEN(bool_on); i++) {
        if (strcmp(v, bool_on[i]) == 0)
            return 1;
        if (strcmp(v, bool_off[i]) == 0)
            return 0;
    }
    return -1;
}

/* Store value into k's field: 0, or -1 when the type or range refuses it. */
static int store(const cm_cfg *t, const cm_cfg_key *k, const char *v)
{
    void *f = field(t, k);
    long long n = 0;
    double d;
    int b;
    switch (k->type) {
    case CM_CFG_INT:
    case CM_CFG_LONG:
    case CM_CFG_U32:
    case CM_CFG_SIZE:
        if (parse_integer(v, k, &n) != 0)
            return -1;
        if (k->type == CM_CFG_INT)
            *(int *)f = (int)n;
        else if (k->type == CM_CFG_LONG)
            *(long *)f = (long)n;
        else if (k->type == CM_CFG_U32)
            *(uint32_t *)f = (uint32_t)n;
        else
            *(size_t *)f = (size_t)n;
        return 0;
    case CM_CFG_DOUBLE:
        if (parse_number(v, k, &d) != 0)
            return -1;
        *(double *)f = d;
        return 0;
    case CM_CFG_BOOL:
        if ((b = parse_bool(v)) < 0)
            return -1;
        *(int *)f = b;
        return 0;
    case CM_CFG_ENUM:
        if ((b = choice_index(k->choices, v)) < 0)
            return -1;
        *(int *)f = b;
        return 0;
    case CM_CFG_STR:
        if (strlen(v) > (size_t)k->max || strlen(v) >= k->size)
            return -1;
        memcpy(f, v, strlen(v) + 1);
        return 0;
    }
    return -1;
}

int cm_cfg_find(const cm_cfg *t, const char *section, const char *key)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->keys[i].section, section) == 0 && strcmp(t->keys[i].key, key) == 0)
            return (int)i;
    return -1;
}

int cm_cfg_set(cm_cfg *t, int i, const char *value, const char *source, char *why, size_t cap)
{
    const cm_cfg_key *k = &t->keys[i];
    char range[160];
    size_t want = type_size(k->type);
    if ((want && k->size != want) || (k->type == CM_CFG_STR && k->max >= (double)k->size)) {
        snprintf(why, cap, "configuration table: %s.%s does not fit its field", k->section, k->key);
        return -1;
    }
    range[0] = '\0';
    if (k->check && k->check(value, range, sizeof(range)) != 0) {
        snprintf(why, cap, "invalid value '%.64s%s' for %s.%s (%s)", value,
                 strlen(value) > 64 ? "..." : "", k->section, k->key, range);
        return -1;
    }
    if (store(t, k, value) != 0) {
        cm_cfg_range(k, range, sizeof(range));
        snprintf(why, cap, "invalid value '%.64s%s' for %s.%s (expected %s)", value,
                 strlen(value) > 64 ? "..." : "", k->section, k->key, range);
        return -1;
    }
    snprintf(t->src[i].where, sizeof(t->src[i].where), "%s", source);
    return 0;
}

cm_err cm_cfg_defaults(cm_cfg *t, char *msg, size_t cap)
{
    char why[256];
    for (size_t i = 0; i < t->n; i++)
        if (cm_cfg_set(t, (int)i, t->keys[i].def, "default", why, sizeof(why)) != 0) {
            snprintf(msg, cap, "default of %s.%s refused: %s", t->keys[i].section, t->keys[i].key,
                     why);
            return CM_ERR_INVAL;
        }
    return CM_OK;
}

typedef struct {
    cm_cfg *t;
    const char *name;
} file_ctx;

static int file_key(void *arg, const char *section, const char *key, const char *value, int line,
                    char *err, size_t errcap)
{
    file_ctx *c = arg;
    char source[CM_CFG_SRC_MAX];
    int i = cm_cfg_find(c->t, section, key);
    if (i < 0) {
        snprintf(err, errcap, "unknown key '%s' in section [%s]", key, section);
        return -1;
    }
    /* the file name's tail: a source is a hint for people, the line is what matters */
    size_t nl = strlen(c->name);
    const char *tail = nl > 60 ? c->name + nl - 60 : c->name;
    snprintf(source, sizeof(source), "%s:%d", tail, line);
    return cm_cfg_set(c->t, i, value, source, err, errcap);
}

cm_err cm_cfg_parse_file(cm_cfg *t, const char *path, char *msg, size_t cap)
{
    file_ctx c = {t, path};
    return cm_config_parse_file_lines(path, file_key, &c, msg, cap);
}

cm_err cm_cfg_parse_string(cm_cfg *t, const char *text, const char *name, char *msg, size_t cap)
{
    file_ctx c = {t, name};
    return cm_config_parse_string_lines(text, name, file_key, &c, msg, cap);
}

void cm_cfg_env_name(const cm_cfg_key *k, char *out, size_t cap)
{
    snprintf(out, cap, "CAIRN_%s_%s", k->section, k->key);
    for (char *p = out; *p; p++)
        *p = (char)toupper((unsigned char)*p);
}

cm_err cm_cfg_apply_env(cm_cfg *t, cm_cfg_getenv_fn get, void *arg, char *msg, size_t cap)
{
    char name[160], source[CM_CFG_SRC_MAX], why[256];
    for (size_t i = 0; i < t->n; i++) {
        cm_cfg_env_name(&t->keys[i], name, sizeof(name));
        const char *v = get(arg, name);
        if (!v)
            continue;
        snprintf(source, sizeof(source), "env %.88s", name);
        if (cm_cfg_set(t, (int)i, v, source, why, sizeof(why)) != 0) {
            snprintf(msg, cap, "%s: %s", name, why);
            return CM_ERR_INVAL;
        }
    }
    return CM_OK;
}

int cm_cfg_same(const cm_cfg *a, const cm_cfg *b, int i)
{
    const cm_cfg_key *k = &a->keys[i];
    if (k->type == CM_CFG_STR) /* bytes past the NUL may differ */
        return strcmp(field(a, k), field(b, k)) == 0;
    return memcmp(field(a, k), field(b, k), k->size) == 0;
}

void cm_cfg_format(const cm_cfg *t, int i, char *out, size_t cap)
{
    const cm_cfg_key *k = &t->keys[i];
    const void *f = field(t, k);
    int idx;
    switch (k->type) {
    case CM_CFG_INT:
        snprintf(out, cap, "%d", *(const int *)f);
        break;
    case CM_CFG_LONG:
        snprintf(out, cap, "%ld", *(const long *)f);
        break;
    case CM_CFG_U32:
        snprintf(out, cap, "%u", (unsigned)*(const uint32_t *)f);
        break;
    case CM_CFG_SIZE:
        snprintf(out, cap, "%zu", *(const size_t *)f);
        break;
    case CM_CFG_DOUBLE:
        snprintf(out, cap, "%.15g", *(const double *)f);
        break;
    case CM_CFG_BOOL:
        snprintf(out, cap, "%s", *(const int *)f ? "on" : "off");
        break;
    case CM_CFG_ENUM:
        idx = *(const int *)f;
        for (const char *p = k->choices; p && *p; idx--) {
            size_t n = strcspn(p, "|");
            if (idx == 0) {
                snprintf(out, cap, "%.*s", (int)n, p);
                return;
            }
            p += n + (p[n] == '|');
        }
        snprintf(out, cap, "?");
        break;
    case CM_CFG_STR:
        if (k->flags & CM_CFG_SECRET)
            snprintf(out, cap, "%s", *(const char *)f ? "(set)" : "");
        else
            snprintf(out, cap, "%s", (const char *)f);
        break;
    }
}

void cm_cfg_range(const cm_cfg_key *k, char *out, size_t cap)
{
    switch (k->type) {
    case CM_CFG_INT:
    case CM_CFG_LONG:
    case CM_CFG_U32:
    case CM_CFG_SIZE:
        snprintf(out, cap, "integer %.0f..%.0f", k->min, k->max);
        break;
    case CM_CFG_DOUBLE:
        snprintf(out, cap, "number %g..%g", k->min, k->max);
        break;
    case CM_CFG_BOOL:
        snprintf(out, cap, "on|off");
        break;
    case CM_CFG_ENUM:
        snprintf(out, cap, "%s", k->choices);
        break;
    case CM_CFG_STR:
        if (k->choices)
            snprintf(out, cap, "%s, at most %.0f bytes", k->choices, k->max);
        else
            snprintf(out, cap, "text, at most %.0f bytes", k->max);
        break;
    }
}

/* src into dst (cap bytes) with every '|' as "\\|", so it stays one markdown table cell. */
static void md_cell(const char *src, char *dst, size_t cap)
{
    size_t n = 0;
    for (; *src && n + 3 <= cap; src++) {
        if (*src == '|')
            dst[n++] = '\\';
        dst[n++] = *src;
    }
    dst[n] = '\0';
}

void cm_cfg_doc_row(const cm_cfg_key *k, char *out, size_t cap)
{
    char plain[160], range[320];
    cm_cfg_range(k, plain, sizeof(plain));
    md_cell(plain, range, sizeof(range));
    snprintf(out, cap, "| `%s.%s` | %s | `%s` | %s | %s |", k->section, k->key, range,
             k->def[0] ? k->def : "\"\"", k->flags & CM_CFG_LIVE ? "yes" : "restart", k->doc);
}

void cm_cfg_bad_value(const cm_cfg_key *k, char *out, size_t cap)
{
    switch (k->type) {
    case CM_CFG_INT:
    case CM_CFG_LONG:
    case CM_CFG_U32:
    case CM_CFG_SIZE:
    case CM_CFG_DOUBLE:
        /* above the range, or below it when max is past what the field holds */
        if (k->max < 1e15)
            snprintf(out, cap, "%.15g", k->max + 1);
        else
            snprintf(out, cap, "%.15g", k->min - 1);
        break;
    case CM_CFG_BOOL:
    case CM_CFG_ENUM:
        snprintf(out, cap, "maybe-not");
        break;
    case CM_CFG_STR:
        if (k->check) { /* a form ("HOST:PORT", a CIDR list): nothing like it */
            snprintf(out, cap, "?bad value");
        } else {
            size_t n = (size_t)k->max + 1 < cap ? (size_t)k->max + 1 : cap - 1;
            memset(out, 'x', n);
            out[n] = '\0';
        }
        break;
    }
}
