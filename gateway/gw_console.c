/*
 * gw_console.c - serve the web console (docs/console.md) on the S3 port under /_console/.
 *
 *   GET|HEAD /_console           301 to /_console/
 *   GET|HEAD /_console/          index.html
 *   GET|HEAD /_console/NAME      an embedded file (gw_console_files, generated from console/)
 *   anything else under it       404 (unknown name) or 405 (other method), as plain text
 *
 * Why "/_console": a bucket name cannot contain '_' (gw_bucket_name_check), so no path-style S3
 * request is shadowed; gw_admin_route calls gw_console_route after its virtual-hosted check, so
 * a key "_console/..." in a virtual-hosted bucket stays an S3 object.
 *
 * The files are public (they hold no secret; the page signs its own S3 and admin requests with
 * the keys the user types, docs/console.md). Every answer carries a strict Content-Security-Policy
 * (scripts and styles from this origin only, nothing inline, no framing), X-Frame-Options DENY,
 * nosniff and no-referrer. Runs on the event loop: the files are in memory, nothing blocks.
 */
#include "gw_console.h"

#include "gw_int.h"
#include "gw_stats.h"

#include <string.h>

#define PREFIX "/_console"
#define PREFIX_LEN (sizeof(PREFIX) - 1)

const char gw_console_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const gw_console_file *gw_console_find(const char *path, size_t len)
{
    if (len < PREFIX_LEN + 1 || memcmp(path, PREFIX "/", PREFIX_LEN + 1) != 0)
        return NULL;
    const char *name = path + PREFIX_LEN + 1;
    size_t nlen = len - PREFIX_LEN - 1;
    if (nlen == 0)
        name = "index.html", nlen = 10;
    for (const gw_console_file *f = gw_console_files; f->name; f++) {
        if (strlen(f->name) == nlen && memcmp(f->name, name, nlen) == 0)
            return f;
    }
    return NULL;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

const char *gw_console_type(const char *name)
{
    if (ends_with(name, ".html"))
        return "text/html; charset=utf-8";
    if (ends_with(name, ".js"))
        return "text/javascript; charset=utf-8";
    if (ends_with(name, ".css"))
        return "text/css; charset=utf-8";
    return "application/octet-stream";
}

static void answer(gw_req *r, int status, const char *type, const void *body, size_t len,
                   const char *location)
{
    gw_resp_start(r, status, (int64_t)len);
    net_resp_header(r->net, "Content-Type", type);
    net_resp_header(r->net, "Content-Security-Policy", gw_console_csp);
    net_resp_header(r->net, "X-Frame-Options", "DENY");
    net_resp_header(r->net, "X-Content-Type-Options", "nosniff");
    net_resp_header(r->net, "Referrer-Policy", "no-referrer");
    net_resp_header(r->net, "Cache-Control", "no-cache");
    if (location)
        net_resp_header(r->net, "Location", location);
    if (status == 405)
        net_resp_header(r->net, "Allow", "GET, HEAD");
    net_resp_write(r->net, body, len);
    net_resp_end(r->net);
}

int gw_console_route(gw_req *r)
{
    const char *t = net_req_target(r->net), *m = net_req_method(r->net);
    size_t plen = strcspn(t, "?");

    if (plen < PREFIX_LEN || memcmp(t, PREFIX, PREFIX_LEN) != 0 ||
        (plen > PREFIX_LEN && t[PREFIX_LEN] != '/'))
        return 0;
    r->opk = GW_OP_Console;
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        static const char msg[] = "the console answers GET and HEAD only\n";
        answer(r, 405, "text/plain; charset=utf-8", msg, sizeof(msg) - 1, NULL);
        return 1;
    }
    if (plen == PREFIX_LEN) {
        static const char msg[] = "moved to " PREFIX "/\n";
        answer(r, 301, "text/plain; charset=utf-8", msg, sizeof(msg) - 1, PREFIX "/");
        return 1;
    }
    const gw_console_file *f = gw_console_find(t, plen);
    if (!f) {
        static const char msg[] = "no such console file\n";
        answer(r, 404, "text/plain; charset=utf-8", msg, sizeof(msg) - 1, NULL);
        return 1;
    }
    answer(r, 200, gw_console_type(f->name), f->data, f->len, NULL);
    return 1;
}
