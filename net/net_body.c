/*
 * net_body.c - request body framing: Content-Length counting and Transfer-Encoding: chunked
 * decoding, straight from the connection's input evbuffer.
 *
 * Payload bytes move from the input buffer into the request's body buffer with
 * evbuffer_remove_buffer, which relinks whole chains instead of copying where it can. Only the
 * framing (a chunk-size line, a CRLF, trailer lines) is ever pulled up, each at most
 * NET_CHUNK_LINE_MAX or max_header_bytes long, so memory stays bounded whatever a client sends.
 *
 * Chunked wire format (RFC 9112 7.1):
 *   chunk-size [ BWS ";" ext... ] CRLF  chunk-data CRLF  ...  "0" [ext] CRLF  *(trailer CRLF)  CRLF
 * Extensions are accepted and ignored; trailer fields are syntax-checked and dropped. A bare LF is
 * accepted as a line end, a bare CR is not.
 *
 * Runs on the connection's loop thread only.
 */
#include <string.h>

#include "cm_util.h"
#include "net_int.h"

int net_chunk_size_parse(const char *p, size_t n, int64_t *size)
{
    size_t i = 0;
    int64_t v = 0;
    while (i < n) {
        char ch = p[i];
        int d;
        if (ch >= '0' && ch <= '9')
            d = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            d = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
            d = ch - 'A' + 10;
        else
            break;
        if (i >= 15) /* 2^60: far beyond any object, and no overflow */
            return -1;
        v = v * 16 + d;
        i++;
    }
    if (i == 0)
        return -1;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i < n && p[i] != ';')
        return -1;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return -1;
    }
    *size = v;
    return 0;
}

/* Remove one line (LF-terminated) from in. 1 = got it in line/len (CR stripped), 0 = need more. */
static int take_line(struct evbuffer *in, size_t max, char *line, size_t *len, int *toolong)
{
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
    *toolong = 0;
    if (eol.pos < 0) {
        *toolong = evbuffer_get_length(in) > max;
        return 0;
    }
    size_t n = (size_t)eol.pos;
    if (n > max) {
        *toolong = 1;
        return 0;
    }
    evbuffer_remove(in, line, n);
    evbuffer_drain(in, eol_len);
    if (n > 0 && line[n - 1] == '\r')
        n--;
    *len = n;
    return 1;
}

static void move_payload(net_req *r, struct evbuffer *in, size_t n)
{
    if (r->discarding) {
        evbuffer_drain(in, n);
    } else {
        evbuffer_remove_buffer(in, r->body, n);
        r->received += n;
        r->fresh_body = 1;
    }
    r->remaining -= (int64_t)n;
}

static size_t room_for(const net_req *r, const net_config *cfg)
{
    size_t have = evbuffer_get_length(r->body);
    if (r->discarding)
        return SIZE_MAX;
    return have >= cfg->read_high_water ? 0 : cfg->read_high_water - have;
}

/* The CRLF after chunk data. 1 = consumed, 0 = need more, -1 = malformed. */
static int take_crlf(struct evbuffer *in)
{
    unsigned char b[2];
    ev_ssize_t got = evbuffer_copyout(in, b, 2);
    if (got < 1)
        return 0;
    if (b[0] == '\n') {
        evbuffer_drain(in, 1);
        return 1;
    }
    if (b[0] != '\r')
        return -1;
    if (got < 2)
        return 0;
    if (b[1] != '\n')
        return -1;
    evbuffer_drain(in, 2);
    return 1;
}

/* One step of the chunked decoder. 1 = made progress, 0 = blocked, or -status. */
static int chunk_step(net_req *r, struct evbuffer *in, const net_config *cfg)
{
    char line[NET_CHUNK_LINE_MAX + 1];
    size_t len, n;
    int toolong, k;
    switch (r->chunk_state) {
    case CH_SIZE:
        if (!take_line(in, NET_CHUNK_LINE_MAX, line, &len, &toolong))
            return toolong ? -400 : 0;
        if (net_chunk_size_parse(line, len, &r->remaining) != 0)
            return -400;
        r->chunk_state = r->remaining ? CH_DATA : CH_TRAILER;
        return 1;
    case CH_DATA:
        n = CM_MIN(evbuffer_get_length(in), room_for(r, cfg));
        n = CM_MIN(n, (size_t)r->remaining);
        if (n == 0)
            return 0;
        move_payload(r, in, n);
        if (r->remaining == 0)
            r->chunk_state = CH_DATA_CRLF;
        return 1;
    case CH_DATA_CRLF:
        k = take_crlf(in);
        if (k == 1)
            r->chunk_state = CH_SIZE;
        return k < 0 ? -400 : k;
    case CH_TRAILER:
        if (!take_line(in, NET_CHUNK_LINE_MAX, line, &len, &toolong))
            return toolong ? -431 : 0;
        r->trailer_bytes += len + 2;
        if (r->trailer_bytes > cfg->max_header_bytes)
            return -431;
        if (len == 0) {
            r->chunk_state = CH_DONE;
            r->body_complete = 1;
        } else if (!net_field_valid(line, len)) {
            return -400;
        }
        return 1;
    default:
        return 0;
    }
}

int net_body_decode(net_req *r, struct evbuffer *in, const net_config *cfg, int *progress)
{
    *progress = 0;
    if (r->body_complete)
        return 0;
    if (!r->head.chunked) {
        size_t n = CM_MIN(evbuffer_get_length(in), room_for(r, cfg));
        n = CM_MIN(n, (size_t)r->remaining);
        if (n > 0) {
            move_payload(r, in, n);
            *progress = 1;
        }
        if (r->remaining == 0)
            r->body_complete = 1;
        return 0;
    }
    for (;;) {
        int k = chunk_step(r, in, cfg);
        if (k < 0)
            return -k;
        if (k == 0 || r->body_complete) {
            *progress |= r->body_complete;
            return 0;
        }
        *progress = 1;
    }
}
