/*
 * test_gateway_console.c - the embedded web console (gateway/gw_console.c, docs/console.md).
 *
 * The table generated from console/ (cmake/embed_console.cmake) holds the console's files and
 * index.html refers only to files in it, with no inline script, style or event handler (the CSP
 * would block them). A real gateway on a loopback port serves every file under /_console/ with
 * its content type, the Content-Security-Policy and X-Frame-Options; HEAD sends the head only;
 * unknown names are 404, other methods 405, "/_console" redirects; and an S3 request outside the
 * prefix (a bucket "console") is still routed to S3.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cu_main.h"
#include "cu_s3.h"
#include "gw.h"
#include "gw_console.h"
#include "net.h"

#define AK "CONSOLETESTAK"
#define SK "console-test-secret"
#define REGION "us-east-1"
#define ANSWER_CAP (1 << 20)

static const char *const required[] = {"index.html", "app.js", "sigv4.js", "style.css"};

static void test_table(void)
{
    char path[128];
    int n = 0;
    for (const gw_console_file *f = gw_console_files; f->name; f++, n++) {
        snprintf(path, sizeof(path), "/_console/%s", f->name);
        CU_ASSERT_PTR_EQUAL(gw_console_find(path, strlen(path)), f);
        CU_ASSERT(f->len > 0);
        CU_ASSERT_EQUAL(f->data[f->len], 0); /* the generator's trailing NUL */
    }
    CU_ASSERT(n >= 4);
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        snprintf(path, sizeof(path), "/_console/%s", required[i]);
        CU_ASSERT_PTR_NOT_NULL(gw_console_find(path, strlen(path)));
    }
    const gw_console_file *idx = gw_console_find("/_console/", 10);
    CU_ASSERT_PTR_NOT_NULL_FATAL(idx);
    CU_ASSERT_STRING_EQUAL(idx->name, "index.html");
    CU_ASSERT_PTR_NULL(gw_console_find("/_console", 9));
    CU_ASSERT_PTR_NULL(gw_console_find("/_console/nope.js", 17));
    CU_ASSERT_PTR_NULL(gw_console_find("/_console/../index.html", 23));
    CU_ASSERT_PTR_NULL(gw_console_find("/_consoleX/index.html", 21));
    CU_ASSERT_PTR_NULL(gw_console_find("/console/index.html", 19));
    /* the length bounds the name: "app.js" is not found as "app.j" */
    CU_ASSERT_PTR_NULL(gw_console_find("/_console/app.js", 15));
    CU_ASSERT_STRING_EQUAL(gw_console_type("a.html"), "text/html; charset=utf-8");
    CU_ASSERT_STRING_EQUAL(gw_console_type("a.js"), "text/javascript; charset=utf-8");
    CU_ASSERT_STRING_EQUAL(gw_console_type("a.css"), "text/css; charset=utf-8");
    CU_ASSERT_STRING_EQUAL(gw_console_type("a.png"), "application/octet-stream");
}

/* Check that every attr="..." value in html names an embedded file; how many there are. */
static int check_refs(const char *html, const char *attr)
{
    int refs = 0;
    size_t alen = strlen(attr);
    for (const char *p = html; (p = strstr(p, attr));) {
        char path[128];
        const char *v = p + alen, *end = strchr(v, '"');
        CU_ASSERT_PTR_NOT_NULL_FATAL(end);
        p = end;
        if (strncmp(v, "data:", 5) == 0) /* the empty favicon: no request */
            continue;
        snprintf(path, sizeof(path), "/_console/%.*s", (int)(end - v), v);
        CU_ASSERT_PTR_NOT_NULL(gw_console_find(path, strlen(path)));
        refs++;
    }
    return refs;
}

/* index.html: every src= and href= names an embedded file (or is a data: URL); no inline script,
 * style or handler. */
static void test_index_self_contained(void)
{
    const gw_console_file *idx = gw_console_find("/_console/", 10);
    CU_ASSERT_PTR_NOT_NULL_FATAL(idx);
    const char *html = (const char *)idx->data;
    int refs = check_refs(html, "src=\"") + check_refs(html, "href=\"");
    CU_ASSERT(refs >= 3); /* two scripts, one style sheet */
    for (const char *p = html; (p = strstr(p, "<script"));) {
        const char *close = strchr(p, '>');
        CU_ASSERT_PTR_NOT_NULL_FATAL(close);
        CU_ASSERT(memmem(p, (size_t)(close - p), "src=", 4) != NULL); /* no inline script */
        p = close;
    }
    CU_ASSERT_PTR_NULL(strstr(html, "<style"));
    CU_ASSERT_PTR_NULL(strstr(html, " style="));
    CU_ASSERT_PTR_NULL(strstr(html, " onclick="));
    CU_ASSERT_PTR_NULL(strstr(html, " onload="));
    CU_ASSERT_PTR_NULL(strstr(html, " onsubmit="));
    CU_ASSERT_PTR_NULL(strstr(html, "javascript:"));
}

static void *run_server(void *arg)
{
    net_server_run(arg);
    return NULL;
}

/* Send a raw request (head only) and read the whole answer into out; the status. */
static int send_raw(int port, const char *method, const char *target, char *out, size_t cap)
{
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", method,
                     target, port);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof(req));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CU_ASSERT_FATAL(write(fd, req, (size_t)n) == n);
    return cu_s3_answer(fd, out, cap);
}

/* The value of header name (with ": ") in the answer's head, copied into v; 1 when present. */
static int header(const char *ans, const char *name, char *v, size_t cap)
{
    const char *end = strstr(ans, "\r\n\r\n");
    size_t nl = strlen(name);
    for (const char *p = strstr(ans, "\r\n"); p && end && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *s = p + 3 + nl, *e = strstr(s, "\r\n");
            while (*s == ' ')
                s++;
            snprintf(v, cap, "%.*s", (int)(e - s), s);
            return 1;
        }
    }
    return 0;
}

static void check_security_headers(const char *ans)
{
    char v[512];
    CU_ASSERT(header(ans, "Content-Security-Policy", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, gw_console_csp);
    CU_ASSERT_PTR_NOT_NULL(strstr(v, "script-src 'self'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(v, "frame-ancestors 'none'"));
    CU_ASSERT_PTR_NULL(strstr(v, "unsafe-inline"));
    CU_ASSERT(header(ans, "X-Frame-Options", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "DENY");
    CU_ASSERT(header(ans, "X-Content-Type-Options", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "nosniff");
}

static void test_served(void)
{
    char dir[512], v[256];
    char *out = malloc(ANSWER_CAP);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    gw_config gc;
    gw *g = NULL;
    snprintf(dir, sizeof(dir), "%s/gw", cu_tmpdir());
    CU_ASSERT_FATAL(cu_gw_config(&gc, dir, REGION, AK, SK) == 0);
    gc.ndrives = 3, gc.k = 2, gc.m = 1;
    CU_ASSERT_EQUAL_FATAL(gw_new(&gc, &g), CM_OK);
    net_config nc;
    net_config_defaults(&nc);
    nc.port = 0;
    nc.threads = 1;
    net_server *srv = NULL;
    CU_ASSERT_EQUAL_FATAL(net_server_new(&nc, gw_net_handler(), g, &srv), CM_OK);
    int port = net_server_port(srv);
    gw_set_ready(g, 1);
    pthread_t sth;
    pthread_create(&sth, NULL, run_server, srv);

    for (const gw_console_file *f = gw_console_files; f->name; f++) {
        char target[128];
        snprintf(target, sizeof(target), "/_console/%s", f->name);
        CU_ASSERT_EQUAL(send_raw(port, "GET", target, out, ANSWER_CAP), 200);
        check_security_headers(out);
        CU_ASSERT(header(out, "Content-Type", v, sizeof(v)));
        CU_ASSERT_STRING_EQUAL(v, gw_console_type(f->name));
        CU_ASSERT(header(out, "Content-Length", v, sizeof(v)));
        CU_ASSERT_EQUAL(strtoull(v, NULL, 10), f->len);
        const char *body = strstr(out, "\r\n\r\n");
        CU_ASSERT_PTR_NOT_NULL_FATAL(body);
        CU_ASSERT_EQUAL(strlen(body + 4), f->len);
        CU_ASSERT(memcmp(body + 4, f->data, f->len) == 0);
    }
    /* the folder is index.html; a query is ignored */
    CU_ASSERT_EQUAL(send_raw(port, "GET", "/_console/?x=1", out, ANSWER_CAP), 200);
    CU_ASSERT(header(out, "Content-Type", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "text/html; charset=utf-8");
    /* HEAD: the head with the length, no body */
    const gw_console_file *idx = gw_console_find("/_console/", 10);
    CU_ASSERT_EQUAL(send_raw(port, "HEAD", "/_console/index.html", out, ANSWER_CAP), 200);
    check_security_headers(out);
    CU_ASSERT(header(out, "Content-Length", v, sizeof(v)));
    CU_ASSERT_EQUAL(strtoull(v, NULL, 10), idx->len);
    CU_ASSERT_STRING_EQUAL(strstr(out, "\r\n\r\n"), "\r\n\r\n");
    /* unknown names, other methods, the bare prefix */
    CU_ASSERT_EQUAL(send_raw(port, "GET", "/_console/nope.js", out, ANSWER_CAP), 404);
    check_security_headers(out);
    CU_ASSERT_EQUAL(send_raw(port, "GET", "/_console/../index.html", out, ANSWER_CAP), 404);
    CU_ASSERT_EQUAL(send_raw(port, "PUT", "/_console/index.html", out, ANSWER_CAP), 405);
    CU_ASSERT(header(out, "Allow", v, sizeof(v)));
    CU_ASSERT_EQUAL(send_raw(port, "GET", "/_console", out, ANSWER_CAP), 301);
    CU_ASSERT(header(out, "Location", v, sizeof(v)));
    CU_ASSERT_STRING_EQUAL(v, "/_console/");
    /* outside the prefix it is S3: a listing of a bucket "console" gets an S3 error document */
    CU_ASSERT_EQUAL(send_raw(port, "GET", "/console/", out, ANSWER_CAP), 404);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "<Code>NoSuchBucket</Code>"));
    CU_ASSERT_PTR_NULL(strstr(out, "Content-Security-Policy"));

    net_server_stop(srv, 1000);
    pthread_join(sth, NULL);
    gw_quiesce(g);
    net_server_free(srv);
    gw_free(g);
    free(out);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"table", test_table},
        {"index_self_contained", test_index_self_contained},
        {"served", test_served},
        {NULL, NULL},
    };
    cu_add_suite("gateway_console", tests);
}
