/*
 * net_resp.c - the handler-facing request API: accessors, body control and response writing.
 *
 * Response wire format: "HTTP/1.1 <status> <reason>", Date, the handler's headers in order, then
 * Content-Length or Transfer-Encoding: chunked, then Connection (close, or keep-alive for an
 * HTTP/1.0 client that asked). Headers are collected in r->hdr and go out with the first
 * write or end, so late net_resp_header calls still land before the body. Chunked bodies frame
 * each write as "<hex>\r\n<data>\r\n" and end with "0\r\n\r\n". HEAD, 204 and 304 responses never
 * carry body bytes. Head lines are formatted by direct appends, not printf (a handler adds a dozen
 * per response), and the Date value is formatted once a second per loop (net_loop.date).
 *
 * None of these functions frees anything or re-enters the handler: state changes that need work
 * (finishing a request, abort, reading more body) kick the connection, and the work happens on
 * the next loop turn. All calls must come from the connection's loop thread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cm_log.h"
#include "cm_util.h"
#include "net_int.h"

/* ---- accessors ---- */

const char *net_req_method(const net_req *req)
{
    return req->head.method;
}

const char *net_req_target(const net_req *req)
{
    return req->head.target;
}

int net_req_http_minor(const net_req *req)
{
    return req->head.http_minor;
}

const char *net_req_header(const net_req *req, const char *name)
{
    return net_head_find(&req->head, name);
}

size_t net_req_header_count(const net_req *req)
{
    return req->head.nheaders;
}

void net_req_header_at(const net_req *req, size_t i, const char **name, const char **value)
{
    if (i >= req->head.nheaders) {
        *name = *value = NULL;
        return;
    }
    *name = req->head.names[i];
    *value = req->head.values[i];
}

int64_t net_req_content_length(const net_req *req)
{
    if (req->head.chunked)
        return -1;
    return req->head.content_length < 0 ? 0 : req->head.content_length;
}

int net_req_chunked(const net_req *req)
{
    return req->head.chunked;
}

uint64_t net_req_body_received(const net_req *req)
{
    return req->received;
}

int net_resp_status(const net_req *req)
{
    return req->resp_status;
}

uint64_t net_resp_written(const net_req *req)
{
    return req->resp_written;
}

const char *net_req_peer(const net_req *req)
{
    return req->conn->peer;
}

int net_req_tls(const net_req *req)
{
    return req->conn->tls;
}

struct event_base *net_req_base(net_req *req)
{
    return req->conn->loop->base;
}

void net_req_set_data(net_req *req, void *data)
{
    req->data = data;
}

void *net_req_data(const net_req *req)
{
    return req->data;
}

/* ---- body control ---- */

void net_req_read_body(net_req *req)
{
    if (req->reading || req->resp_started)
        return;
    req->reading = 1;
    /* An announced empty body gets its 100 too: botocore, which waits for it, otherwise stalls
     * the next request on the connection until its read timeout. */
    int empty = !req->head.chunked && req->head.content_length == 0;
    if (req->head.expect_continue && (!req->body_complete || empty) && req->head.http_minor >= 1) {
        evbuffer_add(bufferevent_get_output(req->conn->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        req->continue_sent = 1;
    }
    net_conn_kick(req->conn);
}

void net_req_pause_body(net_req *req)
{
    req->paused = 1;
    net_conn_update_io(req->conn);
}

void net_req_resume_body(net_req *req)
{
    if (!req->paused)
        return;
    req->paused = 0;
    if (evbuffer_get_length(req->body) > 0)
        req->fresh_body = 1; /* hand the handler what is still buffered */
    net_conn_kick(req->conn);
}

void net_req_abort(net_req *req)
{
    req->abort_requested = 1;
    net_conn_kick(req->conn);
}

/* ---- response ---- */

/* What to do with a body the handler did not (fully) read: drain a little, else close. */
static void settle_unread_body(net_req *r)
{
    if (r->body_complete || r->discarding)
        return;
    int no_continue = r->head.expect_continue && !r->continue_sent;
    if (!no_continue && !r->head.chunked && r->remaining <= NET_DISCARD_MAX)
        r->discarding = 1;
    else
        r->close_after = 1;
}

/* ---- response head: direct appends, no printf (each response adds several lines) ---- */

/* Decimal digits of v at out (at most 20); returns how many. */
static size_t put_dec(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* Lower-case hex digits of v at out (at most 16), no leading zeros; returns how many. */
static size_t put_hex(char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = 0;
    for (int shift = 60; shift >= 0; shift -= 4)
        if (n > 0 || (v >> shift) != 0 || shift == 0)
            out[n++] = digits[(v >> shift) & 0xf];
    return n;
}

static char *put_str(char *out, const char *s, size_t n)
{
    memcpy(out, s, n);
    return out + n;
}

#define PUT_LIT(p, lit) ((p) = put_str((p), (lit), sizeof(lit) - 1))

/* The Date header's value, formatted once per second per loop (each loop its own thread). */
static const char *loop_date(net_loop *loop)
{
    time_t now = time(NULL);
    if (now != loop->date_at) {
        cm_time_rfc1123(now, loop->date);
        loop->date_at = now;
    }
    return loop->date;
}

/* Room for n more bytes of the pending head, or NULL (out of memory: that line is lost). */
static char *head_room(net_req *r, size_t n)
{
    if (cm_buf_room(&r->hdr, &r->hdr_cap, r->hdr_len, n, 512) != CM_OK)
        return NULL;
    return r->hdr + r->hdr_len;
}

/* "HTTP/1.1 <status> <reason>\r\nDate: <date>\r\n" starts the pending head. */
static void add_status_line(net_req *r, int status)
{
    const char *reason = net_status_reason(status), *date = loop_date(r->conn->loop);
    size_t rlen = strlen(reason), dlen = strlen(date);
    char *p = head_room(r, 9 + 20 + 1 + rlen + 8 + dlen + 2), *start = p;
    if (!p)
        return;
    PUT_LIT(p, "HTTP/1.1 ");
    p += put_dec(p, (uint64_t)status);
    *p++ = ' ';
    p = put_str(p, reason, rlen);
    PUT_LIT(p, "\r\nDate: ");
    p = put_str(p, date, dlen);
    PUT_LIT(p, "\r\n");
    r->hdr_len += (size_t)(p - start);
}

void net_resp_start(net_req *req, int status, int64_t content_length)
{
    if (req->resp_started || status < 200) {
        CM_WARN("net", "peer=%s ignored response start %d", req->conn->peer, status);
        return;
    }
    req->resp_started = 1;
    req->resp_status = status;
    req->resp_nobody = req->is_head || status == 204 || status == 304;
    req->resp_length = content_length;
    req->resp_chunked = content_length < 0 && req->head.http_minor >= 1 && !req->resp_nobody;
    if (content_length < 0 && !req->resp_chunked && !req->resp_nobody)
        req->close_after = 1; /* HTTP/1.0: the end of the body is the end of the connection */
    if (!req->reading)
        settle_unread_body(req); /* a handler that reads may answer while the body streams */
    if (req->conn->loop->stopping)
        req->close_after = 1;
    add_status_line(req, status);
    req->want_drain = 1;
    net_conn_kick(req->conn);
}

/* Headers the server writes itself (by length first: this runs for every header added). */
static int header_is_ours(const char *name, size_t n)
{
    switch (n) {
    case 4:
        return strcasecmp(name, "Date") == 0;
    case 10:
        return strcasecmp(name, "Connection") == 0;
    case 14:
        return strcasecmp(name, "Content-Length") == 0;
    case 17:
        return strcasecmp(name, "Transfer-Encoding") == 0;
    default:
        return 0;
    }
}

/* A header name's length, 0 when it is empty or holds ':', SP, HT, CR or LF (a byte loop: names
 * are short, and strcspn's set-up cost more than the scan). */
static size_t name_len(const char *s)
{
    size_t n = 0;
    for (unsigned char c; (c = (unsigned char)s[n]) != '\0'; n++)
        if (c <= ':' && (c == ':' || c == ' ' || c == '\t' || c == '\r' || c == '\n'))
            return 0;
    return n;
}

/* A header value's length, SIZE_MAX when it holds CR or LF (it would split the response). */
static size_t value_len(const char *s)
{
    size_t n = 0;
    for (unsigned char c; (c = (unsigned char)s[n]) != '\0'; n++)
        if (c <= '\r' && (c == '\r' || c == '\n'))
            return SIZE_MAX;
    return n;
}

void net_resp_header(net_req *req, const char *name, const char *value)
{
    if (!req->resp_started || req->hdr_sent) {
        CM_WARN("net", "peer=%s header %s outside the header phase", req->conn->peer, name);
        return;
    }
    size_t nlen = name_len(name), vlen = value_len(value);
    if (nlen == 0 || vlen == SIZE_MAX) {
        CM_WARN("net", "peer=%s refused malformed response header", req->conn->peer);
        return; /* never let a value split the response */
    }
    if (nlen == 10 && strcasecmp(name, "Connection") == 0 && strcasestr(value, "close"))
        req->close_after = 1;
    if (header_is_ours(name, nlen))
        return;
    char *p = head_room(req, nlen + vlen + 4);
    if (!p)
        return; /* out of memory: the header is lost, as evbuffer_add_printf lost it */
    p = put_str(p, name, nlen);
    PUT_LIT(p, ": ");
    p = put_str(p, value, vlen);
    PUT_LIT(p, "\r\n");
    req->hdr_len += nlen + vlen + 4;
}

static void flush_headers(net_req *r)
{
    char tail[96], *p = tail;
    if (r->hdr_sent)
        return;
    r->hdr_sent = 1;
    if (r->resp_chunked) {
        PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
    } else if (r->resp_length >= 0 && r->resp_status != 204) {
        PUT_LIT(p, "Content-Length: ");
        p += put_dec(p, (uint64_t)r->resp_length);
        PUT_LIT(p, "\r\n");
    }
    if (r->close_after)
        PUT_LIT(p, "Connection: close\r\n");
    else if (r->head.http_minor == 0)
        PUT_LIT(p, "Connection: keep-alive\r\n");
    PUT_LIT(p, "\r\n");
    struct evbuffer *out = bufferevent_get_output(r->conn->bev);
    evbuffer_add(out, r->hdr, r->hdr_len);
    evbuffer_add(out, tail, (size_t)(p - tail));
    r->hdr_len = 0;
}

/* A chunk's size line, "<hex>\r\n". */
static void add_chunk_size(struct evbuffer *out, size_t n)
{
    char line[24], *p = line;
    p += put_hex(p, n);
    PUT_LIT(p, "\r\n");
    evbuffer_add(out, line, (size_t)(p - line));
}

/* How many of len body bytes may go out; 0 for HEAD/204/304 or past Content-Length. */
static size_t body_allowance(net_req *r, size_t len)
{
    if (r->resp_nobody)
        return 0;
    if (r->resp_length >= 0 && r->resp_written + len > (uint64_t)r->resp_length) {
        CM_WARN("net", "peer=%s response body longer than its Content-Length, truncated",
                r->conn->peer);
        return (size_t)((uint64_t)r->resp_length - r->resp_written);
    }
    return len;
}

static int writable(net_req *r)
{
    if (!r->resp_started || r->resp_ended || r->abort_requested) {
        CM_WARN("net", "peer=%s write outside the body phase", r->conn->peer);
        return 0;
    }
    flush_headers(r);
    return 1;
}

void net_resp_write(net_req *req, const void *data, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(req->conn->bev);
    if (!writable(req))
        return;
    size_t n = body_allowance(req, len);
    if (n == 0)
        return; /* also: a zero-length chunk would end a chunked body */
    if (req->resp_chunked)
        add_chunk_size(out, n);
    evbuffer_add(out, data, n);
    if (req->resp_chunked)
        evbuffer_add(out, "\r\n", 2);
    req->resp_written += n;
    net_conn_update_io(req->conn);
}

void net_resp_write_buffer(net_req *req, struct evbuffer *buf)
{
    struct evbuffer *out = bufferevent_get_output(req->conn->bev);
    size_t len = evbuffer_get_length(buf);
    size_t n = writable(req) ? body_allowance(req, len) : 0;
    if (n > 0) {
        if (req->resp_chunked)
            add_chunk_size(out, n);
        evbuffer_remove_buffer(buf, out, n);
        if (req->resp_chunked)
            evbuffer_add(out, "\r\n", 2);
        req->resp_written += n;
        net_conn_update_io(req->conn);
    }
    evbuffer_drain(buf, evbuffer_get_length(buf));
}

int net_resp_write_file(net_req *req, int fd, uint64_t pos, uint64_t len)
{
    struct evbuffer *out = bufferevent_get_output(req->conn->bev);
    size_t n = writable(req) ? body_allowance(req, (size_t)len) : 0;
    if (n == 0) {
        close(fd);
        return 0;
    }
    /* plain: sendfile when the socket takes it (a socket bufferevent's output drains to its fd);
     * TLS: libevent reads the bytes into memory now, for the bufferevent to encrypt */
    unsigned flags = EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_LOCKING;
    if (req->conn->tls)
        flags |= EVBUF_FS_DISABLE_MMAP | EVBUF_FS_DISABLE_SENDFILE;
    struct evbuffer_file_segment *seg =
        evbuffer_file_segment_new(fd, (ev_off_t)pos, (ev_off_t)n, flags);
    if (!seg) {
        close(fd);
        return -1;
    }
    if (req->resp_chunked)
        add_chunk_size(out, n);
    int rc = evbuffer_add_file_segment(out, seg, 0, (ev_off_t)n);
    evbuffer_file_segment_free(seg); /* the buffer holds its own reference; closes fd after */
    if (rc != 0)
        return -1;
    if (req->resp_chunked)
        evbuffer_add(out, "\r\n", 2);
    req->resp_written += n;
    net_conn_update_io(req->conn);
    return 0;
}

size_t net_resp_pending(const net_req *req)
{
    return evbuffer_get_length(bufferevent_get_output(req->conn->bev)) + req->hdr_len;
}

void net_resp_end(net_req *req)
{
    if (!req->resp_started)
        net_resp_start(req, 200, 0);
    if (req->resp_ended || req->abort_requested)
        return;
    settle_unread_body(req);
    flush_headers(req);
    if (req->resp_chunked)
        evbuffer_add(bufferevent_get_output(req->conn->bev), "0\r\n\r\n", 5);
    if (!req->resp_nobody && req->resp_length >= 0 &&
        req->resp_written < (uint64_t)req->resp_length) {
        CM_WARN("net", "peer=%s response body shorter than its Content-Length, closing",
                req->conn->peer);
        req->close_after = 1; /* the framing is broken: only closing ends the message */
    }
    req->resp_ended = 1;
    net_conn_kick(req->conn);
}

void net_resp_close_after(net_req *req)
{
    req->close_after = 1;
}

void net_resp_simple(net_req *req, int status, const char *content_type, const void *body,
                     size_t len)
{
    net_resp_start(req, status, (int64_t)len);
    if (content_type)
        net_resp_header(req, "Content-Type", content_type);
    if (len > 0)
        net_resp_write(req, body, len);
    net_resp_end(req);
}
