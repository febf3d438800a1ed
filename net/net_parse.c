/*
 * net_parse.c - request-head parser, status reasons and config defaults.
 *
 * net_head_parse() is stateless and incremental by re-scanning: the caller hands it everything
 * buffered so far (at most the configured limits, so a re-scan is cheap) and gets CM_AGAIN until
 * the blank line that ends the head has arrived. Limits are checked on partial input too, so a
 * client cannot make us buffer more than max_request_line + max_header_bytes.
 *
 * Two passes: the first validates the bytes in place (const) and works out framing (Content-Length,
 * Transfer-Encoding, Connection, Expect); only a complete, valid head is copied, once, into one
 * heap block that holds the name and value arrays, the name index and the text the target, names
 * and values point into (NUL-terminated in the copy). So on any result other than CM_OK nothing
 * is allocated. The name index is an open-addressed hash table of case-folded names (load at most
 * one half), so a handler's many header lookups per request probe instead of scanning with
 * strcasecmp; with duplicate names the first header answers, as the scan did.
 *
 * Accepted syntax (RFC 9112): optional leading empty lines; "method SP target SP HTTP/1.x"; fields
 * "token ':' OWS value OWS"; lines end in CRLF or a bare LF. Rejected with 400: obs-fold, NUL,
 * bare CR, control characters, whitespace before the colon, malformed or conflicting
 * Content-Length, Content-Length with Transfer-Encoding, Transfer-Encoding on HTTP/1.0. A
 * Transfer-Encoding other than exactly "chunked" is 501.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net_int.h"

void net_config_defaults(net_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->host = "127.0.0.1";
    cfg->port = 9000;
    cfg->threads = 0;
    cfg->max_request_line = 16 * 1024;
    cfg->max_header_bytes = 64 * 1024;
    cfg->max_headers = 200;
    cfg->idle_timeout_ms = 60000;
    cfg->io_timeout_ms = 60000;
    cfg->header_timeout_ms = 20000;
    cfg->read_high_water = 1024 * 1024;
    cfg->write_low_water = 256 * 1024;
}

const char *net_status_reason(int status)
{
    static const struct {
        int code;
        const char *text;
    } reasons[] = {
        {100, "Continue"},
        {200, "OK"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {400, "Bad Request"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {411, "Length Required"},
        {412, "Precondition Failed"},
        {413, "Payload Too Large"},
        {414, "URI Too Long"},
        {416, "Range Not Satisfiable"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {503, "Service Unavailable"},
        {507, "Insufficient Storage"},
    };
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].code == status)
            return reasons[i].text;
    return "Unknown";
}

void net_error_text(int status, const char **code, const char **message)
{
    switch (status) {
    case 408:
        *code = "RequestTimeout";
        *message = "Your socket connection to the server was not read from or written to within "
                   "the timeout period.";
        break;
    case 503:
        *code = "SlowDown";
        *message = "The server has too many open connections; retry the request.";
        break;
    case 414:
        *code = "RequestURITooLong";
        *message = "The request line is too long.";
        break;
    case 431:
        *code = "RequestHeaderSectionTooLarge";
        *message = "Your request header section exceeds the maximum allowed size.";
        break;
    case 501:
        *code = "NotImplemented";
        *message = "A header you provided asks for functionality this server does not provide.";
        break;
    default:
        *code = "BadRequest";
        *message = "The request could not be parsed as HTTP/1.1.";
        break;
    }
}

/* ---- lexical helpers ---- */

typedef struct {
    const char *p;
    size_t n;
} slice;

/* RFC 9110 tchar, a table: names and methods are scanned a byte at a time on every request. */
static const unsigned char tchar_table[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int is_tchar(unsigned char c)
{
    return tchar_table[c];
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int slice_ieq(slice s, const char *lit)
{
    return strlen(lit) == s.n && strncasecmp(s.p, lit, s.n) == 0;
}

/*
 * The line starting at pos, without its terminator (CRLF or LF). Returns 0 when no LF has arrived
 * yet. A CR left inside the line is rejected later by the character checks.
 */
static int next_line(const char *buf, size_t len, size_t pos, slice *line, size_t *next)
{
    const char *nl = memchr(buf + pos, '\n', len - pos);
    if (!nl)
        return 0;
    size_t end = (size_t)(nl - buf);
    *next = end + 1;
    if (end > pos && buf[end - 1] == '\r')
        end--;
    line->p = buf + pos;
    line->n = end - pos;
    return 1;
}

/* Next element of a comma-separated list, OWS trimmed; 0 at the end of the list. */
static int next_token(slice *list, slice *tok)
{
    while (list->n > 0 && (is_ows(list->p[0]) || list->p[0] == ',')) {
        list->p++;
        list->n--;
    }
    if (list->n == 0)
        return 0;
    size_t i = 0;
    while (i < list->n && list->p[i] != ',')
        i++;
    tok->p = list->p;
    tok->n = i;
    while (tok->n > 0 && is_ows(tok->p[tok->n - 1]))
        tok->n--;
    list->p += i;
    list->n -= i;
    return 1;
}

/* The value of a field whose name ends at colon: line[vs..ve), OWS trimmed. */
static void field_value(slice line, size_t colon, size_t *vs, size_t *ve)
{
    size_t s = colon + 1, e = line.n;
    while (s < e && is_ows(line.p[s]))
        s++;
    while (e > s && is_ows(line.p[e - 1]))
        e--;
    *vs = s;
    *ve = e;
}

/* "name: value" -> name is line[0..colon), value is line[vs..ve). -1 when malformed. */
static int split_field(slice line, size_t *colon, size_t *vs, size_t *ve)
{
    size_t i = 0;
    while (i < line.n && is_tchar((unsigned char)line.p[i]))
        i++;
    if (i == 0 || i >= line.n || line.p[i] != ':')
        return -1;
    field_value(line, i, vs, ve);
    for (size_t k = *vs; k < *ve; k++) {
        unsigned char c = (unsigned char)line.p[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return -1;
    }
    *colon = i;
    return 0;
}

/* ---- pass 1: validation and framing ---- */

typedef struct {
    int64_t cl;
    int te_seen, te_chunked, te_other;
    int conn_close, conn_keep;
    int expect;
    int bad;
} framing;

static int parse_length(slice v, int64_t *out)
{
    if (v.n == 0 || v.n > 18)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        n = n * 10 + (v.p[i] - '0');
    }
    *out = n;
    return 0;
}

static void apply_field(framing *f, slice name, slice value)
{
    slice tok;
    if (slice_ieq(name, "Content-Length")) {
        int any = 0;
        while (next_token(&value, &tok)) {
            int64_t n;
            if (parse_length(tok, &n) != 0 || (f->cl >= 0 && f->cl != n))
                f->bad = 1;
            else
                f->cl = n;
            any = 1;
        }
        if (!any)
            f->bad = 1;
    } else if (slice_ieq(name, "Transfer-Encoding")) {
        f->te_seen = 1;
        while (next_token(&value, &tok)) {
            if (slice_ieq(tok, "chunked"))
                f->te_chunked++;
            else
                f->te_other = 1;
        }
    } else if (slice_ieq(name, "Connection")) {
        while (next_token(&value, &tok)) {
            if (slice_ieq(tok, "close"))
                f->conn_close = 1;
            else if (slice_ieq(tok, "keep-alive"))
                f->conn_keep = 1;
        }
    } else if (slice_ieq(name, "Expect")) {
        if (slice_ieq(value, "100-continue"))
            f->expect = 1;
    }
}

/* "METHOD SP target SP HTTP/1.x" -> method (copied), target offsets, minor. -1 when malformed. */
static int parse_request_line(slice line, net_head *head, size_t *ts, size_t *te)
{
    size_t i = 0;
    while (i < line.n && is_tchar((unsigned char)line.p[i]))
        i++;
    if (i == 0 || i >= sizeof(head->method) || i >= line.n || line.p[i] != ' ')
        return -1;
    memcpy(head->method, line.p, i);
    head->method[i] = '\0';
    size_t s = ++i;
    while (i < line.n) {
        unsigned char c = (unsigned char)line.p[i];
        if (c <= 0x20 || c == 0x7f)
            break;
        i++;
    }
    if (i == s || i >= line.n || line.p[i] != ' ')
        return -1;
    *ts = s;
    *te = i;
    slice ver = {line.p + i + 1, line.n - i - 1};
    if (ver.n != 8 || memcmp(ver.p, "HTTP/1.", 7) != 0 || ver.p[7] < '0' || ver.p[7] > '9')
        return -1;
    head->http_minor = ver.p[7] == '0' ? 0 : 1;
    return 0;
}

static cm_err fail(int *status, int code)
{
    *status = code;
    if (code == 414 || code == 431)
        return CM_ERR_TOOBIG;
    return code == 501 ? CM_ERR_UNSUPPORTED : CM_ERR_INVAL;
}

/* Pass 1 over the header fields. On CM_OK, *end is the offset after the blank line. */
static cm_err scan_fields(const char *buf, size_t len, size_t hstart, const net_config *cfg,
                          framing *f, size_t *nfields, size_t *end, int *status)
{
    size_t pos = hstart, next, n = 0;
    slice line;
    for (;;) {
        if (!next_line(buf, len, pos, &line, &next)) {
            if (len - hstart > cfg->max_header_bytes)
                return fail(status, 431);
            return CM_AGAIN;
        }
        if (next - hstart > cfg->max_header_bytes)
            return fail(status, 431);
        if (line.n == 0)
            break;
        size_t colon, vs, ve;
        if (is_ows(line.p[0]) || split_field(line, &colon, &vs, &ve) != 0)
            return fail(status, 400);
        if (++n > cfg->max_headers)
            return fail(status, 431);
        slice name = {line.p, colon}, value = {line.p + vs, ve - vs};
        apply_field(f, name, value);
        pos = next;
    }
    *nfields = n;
    *end = next;
    return CM_OK;
}

/* Turn the framing facts into head fields, or an error status. */
static cm_err settle_framing(const framing *f, net_head *head, int *status)
{
    if (f->bad || (f->te_seen && f->cl >= 0))
        return fail(status, 400);
    if (f->te_seen) {
        if (f->te_other)
            return fail(status, 501);
        if (f->te_chunked != 1 || head->http_minor == 0)
            return fail(status, 400);
        head->chunked = 1;
    }
    head->content_length = f->cl;
    head->expect_continue = f->expect;
    if (head->http_minor >= 1)
        head->keep_alive = !f->conn_close;
    else
        head->keep_alive = f->conn_keep && !f->conn_close;
    return CM_OK;
}

/* ---- pass 2: one copy, NUL-terminated in place, and the name index ---- */

/* A hash of the name with ASCII letters folded to lower case, eight bytes at a time (a handler
 * looks up a few dozen names per request, mostly absent ones). OR-ing 0x20 into every byte also
 * folds a few non-letters together ('^' and '~'): that only costs a compare, as a lookup still
 * checks the name itself. */
static uint32_t name_hash(const char *p, size_t n)
{
    const uint64_t fold = 0x2020202020202020ull, mul = 0xff51afd7ed558ccdull;
    uint64_t h = (uint64_t)n * 0x9e3779b97f4a7c15ull, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ (w | fold)) * mul;
        h ^= h >> 32;
    }
    if (i < n) {
        uint64_t mask = (1ull << (8 * (n - i))) - 1; /* n - i < 8 */
        w = 0;
        memcpy(&w, p + i, n - i);
        h = (h ^ (w | (fold & mask))) * mul;
        h ^= h >> 32;
    }
    return (uint32_t)h;
}

/* Slots for n names: a power of two at least twice n, so a probe always meets an empty slot. */
static size_t index_slots(size_t n)
{
    size_t s = 8;
    while (s < 2 * n)
        s *= 2;
    return s;
}

/* Enter header i unless an earlier header has the same name (the first one answers). */
static void index_add(net_head *head, size_t i)
{
    size_t mask = head->nslots - 1;
    for (size_t s = head->hashes[i] & mask;; s = (s + 1) & mask) {
        uint32_t k = head->slots[s];
        if (k == 0) {
            head->slots[s] = (uint32_t)i + 1;
            return;
        }
        if (head->hashes[k - 1] == head->hashes[i] &&
            strcasecmp(head->names[k - 1], head->names[i]) == 0)
            return;
    }
}

const char *net_head_find(const net_head *head, const char *name)
{
    if (head->nslots == 0)
        return NULL;
    uint32_t h = name_hash(name, strlen(name));
    size_t mask = head->nslots - 1;
    for (size_t s = h & mask;; s = (s + 1) & mask) {
        uint32_t k = head->slots[s];
        if (k == 0)
            return NULL;
        if (head->hashes[k - 1] == h && strcasecmp(head->names[k - 1], name) == 0)
            return head->values[k - 1];
    }
}

/*
 * One heap block: names[n], values[n], hashes[n], slots[nslots], then the text from the target to
 * the end of the head (the order keeps every array aligned). Pass 1 validated every line, so
 * here a field is only cut at its colon and trimmed.
 */
static cm_err copy_head(const char *buf, size_t ts, size_t te, size_t hstart, size_t end, size_t n,
                        net_head *head)
{
    size_t nslots = index_slots(n), len = end - ts;
    size_t arrays = 2 * n * sizeof(char *) + n * sizeof(uint32_t) + nslots * sizeof(uint32_t);
    char *base = malloc(arrays + len + 1);
    if (!base)
        return CM_ERR_NOMEM;
    head->names = (char **)(void *)base;
    head->values = head->names + n;
    head->hashes = (uint32_t *)(void *)(head->values + n);
    head->slots = head->hashes + n;
    head->nslots = nslots;
    memset(head->slots, 0, nslots * sizeof(uint32_t));
    char *block = base + arrays;
    memcpy(block, buf + ts, len);
    block[len] = '\0';
    block[te - ts] = '\0';
    head->target = block;
    head->nheaders = n;
    size_t pos = hstart - ts, next = 0;
    slice line;
    for (size_t i = 0; i < n; i++) {
        size_t vs, ve;
        next_line(block, len, pos, &line, &next);
        char *l = block + pos, *colon = memchr(l, ':', line.n);
        field_value(line, (size_t)(colon - l), &vs, &ve);
        *colon = '\0';
        l[ve] = '\0';
        head->names[i] = l;
        head->values[i] = l + vs;
        head->hashes[i] = name_hash(l, (size_t)(colon - l));
        index_add(head, i);
        pos = next;
    }
    return CM_OK;
}

cm_err net_head_parse(const char *buf, size_t len, const net_config *cfg, net_head *head,
                      size_t *used, int *status)
{
    size_t pos = 0, next = 0, ts, te, n, end;
    slice line;
    memset(head, 0, sizeof(*head));
    head->content_length = -1;
    *used = 0;
    *status = 0;
    for (int blank = 0;; blank++) { /* RFC 9112 2.2: ignore empty lines before the request */
        if (!next_line(buf, len, pos, &line, &next)) {
            if (len - pos > cfg->max_request_line)
                return fail(status, 414);
            return CM_AGAIN;
        }
        if (line.n > 0)
            break;
        if (blank >= 8)
            return fail(status, 400);
        pos = next;
    }
    if (line.n > cfg->max_request_line)
        return fail(status, 414);
    if (parse_request_line(line, head, &ts, &te) != 0)
        return fail(status, 400);
    ts += pos;
    te += pos;
    framing f = {.cl = -1};
    cm_err e = scan_fields(buf, len, next, cfg, &f, &n, &end, status);
    if (e != CM_OK)
        return e;
    e = settle_framing(&f, head, status);
    if (e != CM_OK)
        return e;
    e = copy_head(buf, ts, te, next, end, n, head);
    if (e != CM_OK) {
        *status = 500;
        return e;
    }
    *used = end;
    return CM_OK;
}

void net_head_release(net_head *head)
{
    if (!head)
        return;
    free(head->names); /* the one block: values, the index and the text are in it */
    head->target = NULL;
    head->names = NULL;
    head->values = NULL;
    head->hashes = NULL;
    head->slots = NULL;
    head->nslots = 0;
    head->nheaders = 0;
}

int net_field_valid(const char *p, size_t n)
{
    slice line = {p, n};
    size_t colon, vs, ve;
    return n > 0 && !is_ows(p[0]) && split_field(line, &colon, &vs, &ve) == 0;
}
