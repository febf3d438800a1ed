/*
 * cmd/admin_int.h - what admin.c (options, signed requests) shares with admin_views.c (the
 * drives, buckets, layout and durability views) inside `cairn admin` (docs/admin.md).
 */
#ifndef CMD_ADMIN_INT_H
#define CMD_ADMIN_INT_H

#include <stdint.h>

#include "admin_fmt.h"

typedef struct {
    char host[256];
    char port[8];
    char access_key[128];
    char secret_key[128];
    char region[64];
    int wait;
    int json;            /* --json: machine-readable output on stdout */
    int tls;             /* https:// endpoint */
    const char *ca_file; /* --ca-cert or CAIRN_CA_CERT; NULL: the system's store */
    int timeout_s;       /* one exchange's deadline, connect to answer (s); 0: ADMIN_TIMEOUT_S */
} admin_opts;

#define ADMIN_TIMEOUT_S 30

typedef struct {
    int status;
    char *body; /* NUL-terminated, heap */
} http_resp;

/* GET path and expect 200 with a body: 0, or an AM_EXIT_* code after a one-line message. */
int admin_get_json(const admin_opts *o, const char *path, http_resp *r);
/* GET path and parse it (jansson): 0 and *doc (a json_t *, the caller's), or an exit code. */
int admin_get_doc(const admin_opts *o, const char *path, void **doc);
/* Any signed request without a body (0, or the exit code of a transport failure), and the
 * message and exit code for an answer that is not the one expected. */
int admin_request(const admin_opts *o, const char *method, const char *path, http_resp *r);
int admin_http_failure(const char *what, const http_resp *r);
/* cairn admin sse status | rewrap [--wait] (admin_sse.c; docs/encryption.md). */
int admin_sse(const admin_opts *o, int rewrap);

/* cairn admin orphans [--delete] [--grace S] (admin_orphans.c; grace < 0: the node's default). */
int admin_orphans(const admin_opts *o, int del, long long grace);

/* http[s]://HOST:PORT into o's host, port and tls: 0, or -1 after a message. */
int admin_parse_endpoint(admin_opts *o, const char *url);
/* cairn admin status --cluster: every live node's repair pass in one table (admin_views.c). */
int admin_status_cluster(const admin_opts *o);
int admin_drives(const admin_opts *o);
int admin_buckets(const admin_opts *o);
int admin_layout_view(const admin_opts *o);
/* The durability block of a status document: a line (text) or a "durability" member (json). */
void admin_status_durability(const char *status_body, void *json_doc);
/* Print doc (a jansson json_t *) on stdout, indented; steals the reference. */
void admin_print_json(void *doc);

#endif
