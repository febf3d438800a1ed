/*
 * cm_config.h - the configuration file format: "key = value" lines grouped in [sections].
 *
 * '#' and ';' start comment lines; blank lines are ignored; values are trimmed and may be quoted
 * with double quotes. The parser calls back once per key with its section; the caller rejects
 * unknown keys (so a typo is an error, not a silently ignored setting).
 */
#ifndef CM_CONFIG_H
#define CM_CONFIG_H

#include <stddef.h>

#include "cm_err.h"

/* Return 0 to accept, non-zero to reject (the parser then stops with CM_ERR_INVAL). The callback
 * may write a reason into err (errcap bytes). */
typedef int (*cm_config_fn)(void *arg, const char *section, const char *key, const char *value,
                            char *err, size_t errcap);

/* The same, also given the key's line number (1-based) in the text. */
typedef int (*cm_config_line_fn)(void *arg, const char *section, const char *key, const char *value,
                                 int line, char *err, size_t errcap);

/*
 * Parse the file at path. On failure, msg (msgcap bytes) says "path:line: reason".
 * CM_ERR_NOTFOUND / CM_ERR_IO when it cannot be read, CM_ERR_INVAL for a syntax error or a
 * rejected key.
 */
cm_err cm_config_parse_file(const char *path, cm_config_fn fn, void *arg, char *msg, size_t msgcap);
/* The same over a NUL-terminated string (name is used in messages). */
cm_err cm_config_parse_string(const char *text, const char *name, cm_config_fn fn, void *arg,
                              char *msg, size_t msgcap);

/* The line-numbered forms of the two above (cm_cfgtab.c records where each key was set). */
cm_err cm_config_parse_file_lines(const char *path, cm_config_line_fn fn, void *arg, char *msg,
                                  size_t msgcap);
cm_err cm_config_parse_string_lines(const char *text, const char *name, cm_config_line_fn fn,
                                    void *arg, char *msg, size_t msgcap);

#endif
