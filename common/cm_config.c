/*
 * cm_config.c - parser for the "key = value" configuration format (see cm_config.h); the callback
 * learns each key's line (the plain form drops it). Lines are limited to 4 KiB; sections and keys
 * to [A-Za-z0-9_.-]. Why not libinih: docs/configuration.md.
 */
#include "cm_config.h"
#include "cm_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Parse one line; returns NULL when fine or a static reason. */
static const char *parse_line(char *line, int lineno, char *section, size_t seccap,
                              cm_config_line_fn fn, void *arg, char *why, size_t whycap)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#' || *s == ';')
        return NULL;
    if (*s == '[') {
        char *end = strchr(s, ']');
        if (!end || end[1] != '\0')
            return "malformed section header";
        *end = '\0';
        s = trim(s + 1);
        if (!cm_ident_ok(s, 0) || strlen(s) >= seccap)
            return "invalid section name";
        memcpy(section, s, strlen(s) + 1);
        return NULL;
    }
    char *eq = strchr(s, '=');
    if (!eq)
        return "expected 'key = value'";
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    if (!cm_ident_ok(key, 0))
        return "invalid key name";
    size_t vn = strlen(value);
    if (vn >= 2 && value[0] == '"' && value[vn - 1] == '"') {
        value[vn - 1] = '\0';
        value++;
    }
    why[0] = '\0';
    if (fn(arg, section, key, value, lineno, why, whycap) != 0)
        return why[0] ? why : "unknown key";
    return NULL;
}

cm_err cm_config_parse_string_lines(const char *text, const char *name, cm_config_line_fn fn,
                                    void *arg, char *msg, size_t msgcap)
{
    char section[64] = "";
    char line[4096];
    char why[256];
    int lineno = 0;

    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        lineno++;
        if (len >= sizeof(line)) {
            snprintf(msg, msgcap, "%s:%d: line too long", name, lineno);
            return CM_ERR_INVAL;
        }
        memcpy(line, text, len);
        line[len] = '\0';
        const char *err =
            parse_line(line, lineno, section, sizeof(section), fn, arg, why, sizeof(why));
        if (err) {
            snprintf(msg, msgcap, "%s:%d: %s", name, lineno, err);
            return CM_ERR_INVAL;
        }
        text += len + (nl ? 1 : 0);
    }
    return CM_OK;
}

cm_err cm_config_parse_file_lines(const char *path, cm_config_line_fn fn, void *arg, char *msg,
                                  size_t msgcap)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t cap = 0, len = 0;
    cm_err err;

    if (!f) {
        snprintf(msg, msgcap, "%s: %s", path, strerror(errno));
        return cm_err_from_errno(errno);
    }
    for (;;) {
        if (len + 4097 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *n = ncap <= (1u << 20) ? realloc(text, ncap) : NULL;
            if (!n) {
                snprintf(msg, msgcap, "%s: file too large", path);
                free(text);
                fclose(f);
                return CM_ERR_TOOBIG;
            }
            text = n;
            cap = ncap;
        }
        size_t got = fread(text + len, 1, 4096, f);
        len += got;
        if (got < 4096)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(msg, msgcap, "%s: read error", path);
        free(text);
        return CM_ERR_IO;
    }
    text[len] = '\0';
    if (strlen(text) != len) {
        snprintf(msg, msgcap, "%s: contains a NUL byte", path);
        free(text);
        return CM_ERR_INVAL;
    }
    err = cm_config_parse_string_lines(text, path, fn, arg, msg, msgcap);
    free(text);
    return err;
}

/* The plain callback, called through the line-numbered one. */
typedef struct {
    cm_config_fn fn;
    void *arg;
} plain_cb;

static int call_plain(void *arg, const char *section, const char *key, const char *value, int line,
                      char *err, size_t errcap)
{
    plain_cb *p = arg;
    (void)line;
    return p->fn(p->arg, section, key, value, err, errcap);
}

cm_err cm_config_parse_string(const char *text, const char *name, cm_config_fn fn, void *arg,
                              char *msg, size_t msgcap)
{
    plain_cb p = {fn, arg};
    return cm_config_parse_string_lines(text, name, call_plain, &p, msg, msgcap);
}

cm_err cm_config_parse_file(const char *path, cm_config_fn fn, void *arg, char *msg, size_t msgcap)
{
    plain_cb p = {fn, arg};
    return cm_config_parse_file_lines(path, call_plain, &p, msg, msgcap);
}
