/*
 * fuzz_http.c - libFuzzer target for net_head_parse, the parser that sees every byte a client
 * sends before anything else does.
 *
 * Checks beyond "no crash": a complete head never claims more bytes than it was given; every
 * prefix of an accepted head is "need more" or an error (never a different complete head); the
 * parsed strings are NUL-terminated and trimmed; the name index finds each header name's first
 * value, as a scan does; and the chunk-size parser survives the same bytes. Small limits are used
 * so the limit paths are reached often.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net.h"
#include "net_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The first header named name, by a scan. */
static const char *first_value(const net_head *h, const char *name)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (strcasecmp(h->names[i], name) == 0)
            return h->values[i];
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    net_config cfg;
    net_head h;
    size_t used = 0;
    int status = 0;
    int64_t chunk;
    net_config_defaults(&cfg);
    cfg.max_request_line = 256;
    cfg.max_header_bytes = 1024;
    cfg.max_headers = 16;
    cm_err e = net_head_parse((const char *)data, size, &cfg, &h, &used, &status);
    if (e == CM_OK) {
        if (used > size || used == 0)
            abort();
        if (strlen(h.method) == 0 || strlen(h.target) == 0 || h.nheaders > cfg.max_headers)
            abort();
        for (size_t i = 0; i < h.nheaders; i++) {
            size_t n = strlen(h.values[i]);
            if (strlen(h.names[i]) == 0 ||
                (n > 0 && (h.values[i][0] == ' ' || h.values[i][n - 1] == ' ')))
                abort();
            if (net_head_find(&h, h.names[i]) != first_value(&h, h.names[i]))
                abort(); /* the name index answers as a scan would: the first of a name */
        }
        net_head_release(&h);
        net_head prefix;
        size_t pused;
        int pstatus;
        if (used > 1 &&
            net_head_parse((const char *)data, used - 1, &cfg, &prefix, &pused, &pstatus) == CM_OK)
            abort(); /* the blank line that ended the head is not there yet */
    } else if (e != CM_AGAIN) {
        if (status != 400 && status != 414 && status != 431 && status != 501)
            abort();
        if (h.target != NULL)
            abort();
    }
    net_chunk_size_parse((const char *)data, size < 64 ? size : 64, &chunk);
    return 0;
}
