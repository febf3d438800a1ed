/*
 * cm_util.c - hex, base64, URL encoding, time formats, random bytes, constant-time compare,
 * and a mkdir whose new entry is made durable. Pure functions (but that one); no state.
 */
#include "cm_util.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static const char hexdig[] = "0123456789abcdef";

void cm_hex_encode(const void *data, size_t len, char *out)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hexdig[p[i] >> 4];
        out[2 * i + 1] = hexdig[p[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

cm_err cm_hex_decode(const char *hex, size_t hexlen, void *out, size_t outlen)
{
    uint8_t *o = out;
    if (hexlen != 2 * outlen)
        return CM_ERR_INVAL;
    for (size_t i = 0; i < outlen; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return CM_ERR_INVAL;
        o[i] = (uint8_t)(hi << 4 | lo);
    }
    return CM_OK;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t cm_base64_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

void cm_base64_encode(const void *data, size_t len, char *out)
{
    const uint8_t *p = data;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

cm_err cm_base64_decode(const char *in, size_t inlen, void *out, size_t outcap, size_t *outlen)
{
    uint8_t *o = out;
    size_t n = 0;
    if (inlen % 4 != 0)
        return CM_ERR_INVAL;
    for (size_t i = 0; i < inlen; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            if (in[i + j] == '=' && i + 4 == inlen && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad || (v[j] = b64val(in[i + j])) < 0) {
                return CM_ERR_INVAL;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | v[3];
        size_t take = 3 - (size_t)pad;
        if (n + take > outcap)
            return CM_ERR_TOOBIG;
        o[n++] = (uint8_t)(w >> 16);
        if (take > 1)
            o[n++] = (uint8_t)(w >> 8);
        if (take > 2)
            o[n++] = (uint8_t)w;
    }
    *outlen = n;
    return CM_OK;
}

static cm_err url_decode(const char *in, size_t len, int form, char *out, size_t outcap,
                         size_t *outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (form && c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len)
                return CM_ERR_INVAL;
            int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return CM_ERR_INVAL;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (n + 1 >= outcap)
            return CM_ERR_TOOBIG;
        out[n++] = c;
    }
    out[n] = '\0';
    if (outlen)
        *outlen = n;
    return CM_OK;
}

cm_err cm_buf_room(char **p, size_t *cap, size_t len, size_t need, size_t first)
{
    if (need > SIZE_MAX - len)
        return CM_ERR_NOMEM;
    if (*cap - len >= need)
        return CM_OK;
    size_t c = *cap ? *cap : first ? first : 1;
    while (c - len < need) {
        if (c > SIZE_MAX / 2)
            return CM_ERR_NOMEM;
        c *= 2;
    }
    char *q = realloc(*p, c);
    if (!q)
        return CM_ERR_NOMEM;
    *p = q;
    *cap = c;
    return CM_OK;
}

cm_err cm_url_decode(const char *in, size_t len, char *out, size_t outcap, size_t *outlen)
{
    return url_decode(in, len, 0, out, outcap, outlen);
}

cm_err cm_url_decode_form(const char *in, size_t len, char *out, size_t outcap, size_t *outlen)
{
    return url_decode(in, len, 1, out, outcap, outlen);
}

size_t cm_url_encode(const char *in, size_t len, int keep_slash, char *out, size_t outcap)
{
    static const char up[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
        if (n + (plain ? 1 : 3) >= outcap)
            return (size_t)-1;
        if (plain) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = up[c >> 4];
            out[n++] = up[c & 15];
        }
    }
    out[n] = '\0';
    return n;
}

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Write v as exactly width decimal digits (zero-padded); returns the position after them. */
static char *put_dec(char *out, int v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        out[i] = (char)('0' + v % 10);
    return out + width;
}

/* Write tm's time of day as hh:mm:ss, or hhmmss when sep is '\0'; returns the position after. */
static char *put_hms(char *p, const struct tm *tm, char sep)
{
    p = put_dec(p, tm->tm_hour, 2);
    if (sep)
        *p++ = sep;
    p = put_dec(p, tm->tm_min, 2);
    if (sep)
        *p++ = sep;
    return put_dec(p, tm->tm_sec, 2);
}

/* Write tm's date as yyyy-mm-dd, or yyyymmdd when sep is '\0'; returns the position after. */
static char *put_ymd(char *p, const struct tm *tm, char sep)
{
    p = put_dec(p, tm->tm_year + 1900, 4);
    if (sep)
        *p++ = sep;
    p = put_dec(p, tm->tm_mon + 1, 2);
    if (sep)
        *p++ = sep;
    return put_dec(p, tm->tm_mday, 2);
}

void cm_time_rfc1123(time_t t, char *out)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    memcpy(out, wdays[tm.tm_wday], 3);
    memcpy(out + 3, ", ", 2);
    char *p = put_dec(out + 5, tm.tm_mday, 2);
    *p++ = ' ';
    memcpy(p, months[tm.tm_mon], 3);
    p[3] = ' ';
    p = put_dec(p + 4, tm.tm_year + 1900, 4);
    *p++ = ' ';
    p = put_hms(p, &tm, ':');
    memcpy(p, " GMT", 5);
}

void cm_time_iso8601(int64_t unix_ms, char *out)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char *p = put_ymd(out, &tm, '-');
    *p++ = 'T';
    p = put_hms(p, &tm, ':');
    *p++ = '.';
    p = put_dec(p, (int)(unix_ms % 1000), 3);
    memcpy(p, "Z", 2);
}

void cm_time_amzdate(time_t t, char *out)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char *p = put_ymd(out, &tm, '\0');
    *p++ = 'T';
    p = put_hms(p, &tm, '\0');
    memcpy(p, "Z", 2);
}

static cm_err finish_tm(struct tm *tm, time_t *out)
{
    if (tm->tm_mon < 0 || tm->tm_mon > 11 || tm->tm_mday < 1 || tm->tm_mday > 31 ||
        tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60)
        return CM_ERR_INVAL;
    *out = timegm(tm);
    return CM_OK;
}

/* The decimal number of s[0..n), all digits (no sign, no blank), or -1. */
static int fixed_digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

cm_err cm_time_parse_amzdate(const char *s, time_t *out)
{
    /* by hand, not sscanf: every SigV4 request parses one or two (docs/performance.md) */
    struct tm tm = {0};
    if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return CM_ERR_INVAL;
    tm.tm_year = fixed_digits(s, 4);
    tm.tm_mon = fixed_digits(s + 4, 2);
    tm.tm_mday = fixed_digits(s + 6, 2);
    tm.tm_hour = fixed_digits(s + 9, 2);
    tm.tm_min = fixed_digits(s + 11, 2);
    tm.tm_sec = fixed_digits(s + 13, 2);
    if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mday < 0 || tm.tm_hour < 0 || tm.tm_min < 0 ||
        tm.tm_sec < 0)
        return CM_ERR_INVAL;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return finish_tm(&tm, out);
}

static int month_index(const char *m)
{
    for (int i = 0; i < 12; i++)
        if (strncasecmp(m, months[i], 3) == 0)
            return i;
    return -1;
}

cm_err cm_time_parse_http(const char *s, time_t *out)
{
    struct tm tm = {0};
    char mon[4] = {0}, wd[16] = {0};
    char zone[8] = {0};
    /* RFC 1123: "Sun, 06 Nov 1994 08:49:37 GMT" (also "+0000", which SigV2 clients send) */
    if (sscanf(s, "%3s, %2d %3s %4d %2d:%2d:%2d %7s", wd, &tm.tm_mday, mon, &tm.tm_year,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, zone) == 8) {
        if (strcmp(zone, "GMT") != 0 && strcmp(zone, "UTC") != 0 && strcmp(zone, "+0000") != 0)
            return CM_ERR_INVAL;
    } else if (sscanf(s, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT", wd, &tm.tm_mday, mon,
                      &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 7) {
        /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
        tm.tm_year += tm.tm_year < 70 ? 2000 : 1900;
    } else if (sscanf(s, "%3s %3s %d %2d:%2d:%2d %4d", wd, mon, &tm.tm_mday, &tm.tm_hour,
                      &tm.tm_min, &tm.tm_sec, &tm.tm_year) == 7) {
        /* asctime: "Sun Nov  6 08:49:37 1994" */
    } else {
        return CM_ERR_INVAL;
    }
    tm.tm_mon = month_index(mon);
    tm.tm_year -= 1900;
    return finish_tm(&tm, out);
}

int64_t cm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cm_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cm_err cm_random_string(char *out, size_t len, const char *alphabet)
{
    uint8_t raw[64];
    size_t an = strlen(alphabet);
    if (len > sizeof(raw) || an == 0)
        return CM_ERR_INVAL;
    cm_err e = cm_random(raw, len);
    for (size_t i = 0; e == CM_OK && i < len; i++)
        out[i] = alphabet[raw[i] % an];
    out[e == CM_OK ? len : 0] = '\0';
    explicit_bzero(raw, sizeof(raw));
    return e;
}

cm_err cm_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return CM_ERR_IO;
        }
        p += n;
        len -= (size_t)n;
    }
    return CM_OK;
}

int cm_ct_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < len; i++)
        d |= x[i] ^ y[i];
    return d == 0;
}

void cm_parent_dir(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s", path);
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = 0;
    char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else
        slash[slash == out] = 0; /* "/x" -> "/" */
}

cm_err cm_mkdir_durable(const char *path, mode_t mode)
{
    if (mkdir(path, mode) != 0)
        return errno == EEXIST ? CM_OK : cm_err_from_errno(errno);
    return cm_sync_parent(path);
}

cm_err cm_sync_parent(const char *path)
{
    char parent[4096];
    cm_parent_dir(path, parent, sizeof(parent));
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cm_err_from_errno(errno);
    cm_err e = fsync(fd) == 0 ? CM_OK : cm_err_from_errno(errno);
    close(fd);
    return e;
}

int cm_ident_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || (max && n >= max))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}
