/*
 * cm_util.h - small helpers shared by every module: hex and base64, URL encoding, time formats,
 * random bytes, big-endian integer packing.
 */
#ifndef CM_UTIL_H
#define CM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "cm_err.h"

#define CM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CM_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Lowercase hex of len bytes into out (2*len+1 bytes, NUL-terminated). */
void cm_hex_encode(const void *data, size_t len, char *out);
/* Decode exactly 2*len hex chars into out; CM_ERR_INVAL on a bad digit. */
cm_err cm_hex_decode(const char *hex, size_t hexlen, void *out, size_t outlen);

/* Standard base64 with padding. out must hold cm_base64_len(len)+1 bytes; NUL-terminated. */
size_t cm_base64_len(size_t len);
void cm_base64_encode(const void *data, size_t len, char *out);
/* Strict decode (padding required, no whitespace). *outlen receives the decoded size. */
cm_err cm_base64_decode(const char *in, size_t inlen, void *out, size_t outcap, size_t *outlen);

/*
 * Percent-decode in[0..len) into out (capacity outcap, NUL-terminated). '+' stays '+' (S3 paths).
 * CM_ERR_INVAL on a malformed escape, CM_ERR_TOOBIG when out is too small.
 */
cm_err cm_url_decode(const char *in, size_t len, char *out, size_t outcap, size_t *outlen);
/* The same for a query component (form encoding): an unescaped '+' is a space, %2B a plus. */
cm_err cm_url_decode_form(const char *in, size_t len, char *out, size_t outcap, size_t *outlen);
/*
 * Percent-encode per RFC 3986 as SigV4 wants: unreserved A-Z a-z 0-9 - _ . ~ pass, everything else
 * becomes %XX (uppercase). When keep_slash, '/' passes too. Returns the length written (without
 * NUL), or (size_t)-1 if outcap is too small. out is NUL-terminated.
 */
size_t cm_url_encode(const char *in, size_t len, int keep_slash, char *out, size_t outcap);

/* Time formats. Buffers: 30 bytes for RFC 1123, 25 for ISO 8601 with millis, 17 for amz date. */
void cm_time_rfc1123(time_t t, char *out);        /* "Wed, 25 Nov 2026 16:00:00 GMT" */
void cm_time_iso8601(int64_t unix_ms, char *out); /* "2026-11-25T16:00:00.000Z" */
void cm_time_amzdate(time_t t, char *out);        /* "20261125T160000Z" */
/* Parse "20261125T160000Z" (amz date) / an RFC 1123 or RFC 850 or asctime HTTP date. */
cm_err cm_time_parse_amzdate(const char *s, time_t *out);
cm_err cm_time_parse_http(const char *s, time_t *out);
int64_t cm_now_ms(void);       /* wall clock, milliseconds since the epoch */
int64_t cm_monotonic_ms(void); /* monotonic clock, for timeouts */

/* Fill buf with cryptographically secure random bytes (getrandom). */
cm_err cm_random(void *buf, size_t len);
/* len (at most 64) random characters of alphabet into out, NUL-terminated (len + 1 bytes): keys
 * and secrets. The modulo bias is negligible for alphabets of 36 to 64 symbols. */
cm_err cm_random_string(char *out, size_t len, const char *alphabet);

/* Constant-time comparison: 1 when equal. Used for signatures and secrets. */
int cm_ct_equal(const void *a, const void *b, size_t len);

/*
 * A growing byte buffer *p of *cap bytes, len of them used: make room for need more, doubling
 * from `first` (the capacity of an empty buffer) until they fit. CM_OK, or CM_ERR_NOMEM (out of
 * memory, or a size that would overflow) with the buffer left as it was.
 */
cm_err cm_buf_room(char **p, size_t *cap, size_t len, size_t need, size_t first);

/*
 * mkdir path (mode) unless it exists; a directory it creates has its parent directory fsynced,
 * so the new entry survives a crash. CM_OK when it already existed.
 */
cm_err cm_mkdir_durable(const char *path, mode_t mode);
/* fsync the directory holding path, so that a rename, create or unlink of path in it survives a
 * crash (the file's own fsync does not cover its directory entry). */
cm_err cm_sync_parent(const char *path);
/* The directory holding path ("a/b/" -> "a", "b" -> ".", "/b" -> "/"), truncated to cap. */
void cm_parent_dir(const char *path, char *out, size_t cap);

/*
 * Is s a plain identifier (config section and key names, cluster, node, AZ and drive ids):
 * 1 to max - 1 characters of [A-Za-z0-9._-]? max = 0 means no length limit.
 */
int cm_ident_ok(const char *s, size_t max);

static inline void cm_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
static inline uint64_t cm_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
static inline void cm_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}
static inline uint32_t cm_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

#endif
