/*
 * fuzz_util.h - input helpers shared by the text-shaped fuzz targets (header only).
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A NUL-terminated heap copy of data, or NULL when data holds a NUL byte (a header value cannot:
 * the HTTP parser refuses them) or memory ran out. The caller frees it. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    if (memchr(data, 0, size))
        return NULL;
    char *text = malloc(size + 1);
    if (text) {
        memcpy(text, data, size);
        text[size] = '\0';
    }
    return text;
}

/* Split text in place at '\n' into at most max lines; returns how many. */
static inline size_t fuzz_lines(char *text, char **lines, size_t max)
{
    size_t n = 0;
    for (char *p = text; p && n < max;) {
        lines[n++] = p;
        p = strchr(p, '\n');
        if (p)
            *p++ = '\0';
    }
    return n;
}

#endif
