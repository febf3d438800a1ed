/*
 * fuzz_lifecycle.c - libFuzzer target for the bucket lifecycle document (gw_lc_parse, the body of
 * PutBucketLifecycleConfiguration) and its writer.
 *
 * Oracles: no crash, leak or sanitizer report; an accepted document has 1..1000 rules, each with
 * an ID, a prefix and at least one action; the document written back (what GET answers and the
 * worker reads) parses again to the same rules.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gw_lc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_rule(const gw_lc_rule *a, const gw_lc_rule *b)
{
    if (strcmp(a->id, b->id) || strcmp(a->prefix, b->prefix) || a->enabled != b->enabled ||
        a->ntags != b->ntags || a->has_gt != b->has_gt || a->has_lt != b->has_lt ||
        a->size_gt != b->size_gt || a->size_lt != b->size_lt || a->exp_days != b->exp_days ||
        a->exp_date_ms != b->exp_date_ms || a->exp_marker != b->exp_marker ||
        a->nc_days != b->nc_days || a->nc_newer != b->nc_newer || a->abort_days != b->abort_days)
        return 0;
    for (size_t i = 0; i < a->ntags; i++)
        if (strcmp(a->tags[i].name, b->tags[i].name) || strcmp(a->tags[i].value, b->tags[i].value))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_lc_config c, again;
    char msg[200];
    if (gw_lc_parse((const char *)data, size, 1 << 20, &c, msg, sizeof(msg)) != GW_OK)
        return 0;
    if (c.n < 1 || c.n > GW_LC_MAX_RULES)
        abort();
    for (size_t i = 0; i < c.n; i++) {
        const gw_lc_rule *r = &c.rules[i];
        if (!r->id[0] || !r->prefix ||
            !(r->exp_days || r->exp_date_ms >= 0 || r->exp_marker || r->nc_days || r->abort_days))
            abort();
    }
    struct evbuffer *b = evbuffer_new();
    if (!b || gw_lc_write(b, &c) != CM_OK)
        abort();
    size_t len = evbuffer_get_length(b);
    const char *doc = (const char *)evbuffer_pullup(b, -1);
    if (gw_lc_parse(doc, len, 8 << 20, &again, msg, sizeof(msg)) != GW_OK || again.n != c.n)
        abort();
    for (size_t i = 0; i < c.n; i++)
        if (!same_rule(&c.rules[i], &again.rules[i]))
            abort();
    gw_lc_config_release(&again);
    gw_lc_config_release(&c);
    evbuffer_free(b);
    return 0;
}
