/*
 * cm_cfgtab.h - a table of configuration keys that drives everything about them: parsing the
 * file (cm_config.h), type and range checks, environment overrides, the listing of effective
 * values with where each came from, and the key reference in docs/configuration.md.
 *
 * A key is one row (cm_cfg_key): section, key, type, the field of the caller's options struct it
 * fills (offset and size), the accepted range or choices, the default (as it would be written in
 * the file), an optional extra check, flags (live-reloadable, secret) and a one-line doc. The
 * engine writes only through the row: numbers into int/long/uint32_t/size_t/double fields,
 * booleans and choices into int fields, text into char arrays. A default is applied through the
 * same checks as a value from the file, so a row whose default it would itself refuse fails
 * cm_cfg_defaults (tests call it).
 *
 * Order of precedence (the caller's, cmd/server_config.c): defaults < file < environment < flags.
 * Each set records its source in t->src[i].
 *
 * Environment: CAIRN_<SECTION>_<KEY>, both upper-cased ("server", "log_level" ->
 * CAIRN_SERVER_LOG_LEVEL).
 *
 * Not thread-safe: one thread builds an options struct; a reload builds a new one.
 */
#ifndef CM_CFGTAB_H
#define CM_CFGTAB_H

#include <stddef.h>

#include "cm_err.h"

typedef enum {
    CM_CFG_INT,    /* int field, min..max */
    CM_CFG_LONG,   /* long field, min..max */
    CM_CFG_U32,    /* uint32_t field, min..max */
    CM_CFG_SIZE,   /* size_t field, min..max */
    CM_CFG_DOUBLE, /* double field, min..max (a decimal number) */
    CM_CFG_BOOL,   /* int field 0/1: on|off, true|false, yes|no, 1|0 */
    CM_CFG_ENUM,   /* int field: the index of the value in choices ("a|b|c") */
    CM_CFG_STR,    /* char array of size bytes: at most max bytes (max < size) */
} cm_cfg_type;

enum {
    CM_CFG_LIVE = 1,   /* SIGHUP applies a change without a restart */
    CM_CFG_SECRET = 2, /* listings show "(set)" instead of the value */
};

/* An extra check of a value the type accepted: 0 when fine, else -1 with a reason in why. */
typedef int (*cm_cfg_check_fn)(const char *value, char *why, size_t cap);

typedef struct {
    const char *section;
    const char *key;
    cm_cfg_type type;
    size_t off, size;      /* the field in the options struct, and its size */
    double min, max;       /* numbers: the accepted range; text: longest accepted length (max) */
    const char *choices;   /* CM_CFG_ENUM: "a|b|c"; text with a check: the form, e.g. "HOST:PORT" */
    const char *def;       /* the default, written as in the file */
    cm_cfg_check_fn check; /* NULL: the type's checks only */
    int flags;             /* CM_CFG_LIVE | CM_CFG_SECRET */
    const char *doc;       /* one line for the reference */
} cm_cfg_key;

#define CM_CFG_SRC_MAX 96

typedef struct {
    char where[CM_CFG_SRC_MAX]; /* "default", "FILE:LINE", "env CAIRN_X_Y", "flag --x" */
} cm_cfg_src;

/* A table bound to an options struct; src has n entries (one per key). */
typedef struct {
    const cm_cfg_key *keys;
    size_t n;
    void *opts;
    cm_cfg_src *src;
} cm_cfg;

/* Index of section.key, or -1. */
int cm_cfg_find(const cm_cfg *t, const char *section, const char *key);
/*
 * Check value against key i and store it, recording source. 0, or -1 with why ("expected an
 * integer in 1..1024") and nothing stored.
 */
int cm_cfg_set(cm_cfg *t, int i, const char *value, const char *source, char *why, size_t cap);
/* Apply every default. CM_ERR_INVAL (msg names the key) when a row refuses its own default. */
cm_err cm_cfg_defaults(cm_cfg *t, char *msg, size_t cap);
/*
 * Parse a file (or text, named name in messages) into t. CM_ERR_INVAL with msg "PATH:LINE:
 * reason" for a syntax error, an unknown key or a refused value; CM_ERR_NOTFOUND / CM_ERR_IO
 * when the file cannot be read.
 */
cm_err cm_cfg_parse_file(cm_cfg *t, const char *path, char *msg, size_t cap);
cm_err cm_cfg_parse_string(cm_cfg *t, const char *text, const char *name, char *msg, size_t cap);
/*
 * Apply the CAIRN_<SECTION>_<KEY> variables that get (getenv, or a test's lookup) returns.
 * CM_ERR_INVAL with msg "CAIRN_X_Y: reason" for a refused value.
 */
typedef const char *(*cm_cfg_getenv_fn)(void *arg, const char *name);
cm_err cm_cfg_apply_env(cm_cfg *t, cm_cfg_getenv_fn get, void *arg, char *msg, size_t cap);

/* CAIRN_<SECTION>_<KEY> of k. */
void cm_cfg_env_name(const cm_cfg_key *k, char *out, size_t cap);
/* 1 when key i has the same value in a and b (two structs of one table; secrets compared too). */
int cm_cfg_same(const cm_cfg *a, const cm_cfg *b, int i);
/* The effective value of key i read back from the options struct ("(set)"/"" for a secret). */
void cm_cfg_format(const cm_cfg *t, int i, char *out, size_t cap);
/* What key k accepts, for people: "integer 1..1024", "on|off", "text, at most 255 bytes"... */
void cm_cfg_range(const cm_cfg_key *k, char *out, size_t cap);
/* One row of the markdown reference: | `section.key` | range | `default` | live | doc | */
void cm_cfg_doc_row(const cm_cfg_key *k, char *out, size_t cap);
/* A value k refuses (out of range, ill-typed or too long): tests feed it to every key. */
void cm_cfg_bad_value(const cm_cfg_key *k, char *out, size_t cap);

#endif
