/*
 * cm_cidr.c - address allow-lists (see cm_cidr.h). Entries are compared bit by bit over their
 * prefix; parsing goes through inet_pton, so only numeric addresses are accepted (no names).
 */
#include "cm_cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A numeric address into a (16 bytes); *v6 says which family. 0 or -1. */
static int parse_addr(const char *s, uint8_t a[16], int *v6)
{
    memset(a, 0, 16);
    if (inet_pton(AF_INET, s, a) == 1) {
        *v6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, s, a) == 1) {
        *v6 = 1;
        return 0;
    }
    return -1;
}

static int parse_entry(const char *s, size_t len, cm_cidr *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash) {
        char *end;
        *slash = '\0';
        bits = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || bits < 0)
            return -1;
    }
    if (parse_addr(buf, out->addr, &out->v6) != 0)
        return -1;
    long max = out->v6 ? 128 : 32;
    if (bits > max)
        return -1;
    out->bits = (int)(bits < 0 ? max : bits);
    return 0;
}

cm_err cm_cidr_list_parse(const char *text, cm_cidr_list *out)
{
    out->n = 0;
    for (const char *p = text; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, ", ");
        if (out->n == CM_CIDR_MAX || parse_entry(p, len, &out->e[out->n]) != 0)
            return CM_ERR_INVAL;
        out->n++;
        p += len;
    }
    return CM_OK;
}

static int prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return 0;
    if (!rest)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int cm_cidr_list_match(const cm_cidr_list *l, const char *peer)
{
    char host[64];
    const char *s = peer;
    size_t len;
    if (*s == '[') { /* "[v6]:port" */
        s++;
        len = strcspn(s, "]");
        if (s[len] != ']')
            return 0;
    } else { /* "a.b.c.d:port", or a bare address (one with two colons or more is IPv6) */
        const char *colon = strchr(s, ':');
        len = colon && !strchr(colon + 1, ':') ? (size_t)(colon - s) : strlen(s);
    }
    if (len >= sizeof(host))
        return 0;
    memcpy(host, s, len);
    host[len] = '\0';
    uint8_t a[16], mapped[16];
    int v6;
    if (parse_addr(host, a, &v6) != 0)
        return 0;
    static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    int is_mapped = v6 && memcmp(a, v4_prefix, 12) == 0;
    if (is_mapped) {
        memset(mapped, 0, sizeof(mapped));
        memcpy(mapped, a + 12, 4);
    }
    for (int i = 0; i < l->n; i++) {
        const cm_cidr *e = &l->e[i];
        if (e->v6 == v6 && prefix_equal(e->addr, a, e->bits))
            return 1;
        if (is_mapped && !e->v6 && prefix_equal(e->addr, mapped, e->bits))
            return 1;
    }
    return 0;
}
