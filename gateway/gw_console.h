/*
 * gw_console.h - the web console's files, embedded in the binary (docs/console.md).
 *
 * The files of console/ are turned into C arrays at build time by cmake/embed_console.cmake
 * (the table gw_console_files, ended by a NULL name); gw_console.c serves them under /_console/.
 */
#ifndef GW_CONSOLE_H
#define GW_CONSOLE_H

#include <stddef.h>

typedef struct {
    const char *name; /* "index.html": the path under /_console/ */
    const unsigned char *data;
    size_t len;
} gw_console_file;

extern const gw_console_file gw_console_files[]; /* generated; ends with {NULL, NULL, 0} */

/* The file a request path names ("/_console/app.js"; "/_console/" is index.html), or NULL. The
 * path is without its query. */
const gw_console_file *gw_console_find(const char *path, size_t len);

/* Content-Type of a console file name by its extension (text/html, text/javascript, text/css). */
const char *gw_console_type(const char *name);

/* The Content-Security-Policy sent with every console answer. */
extern const char gw_console_csp[];

#endif
