/*
 * fuzz_policy.c - libFuzzer target for bucket policies (gw_policy.c): the JSON parser and the
 * evaluator.
 *
 * The input is a policy document for the bucket "pics". Oracles: no crash or sanitizer report; a
 * refusal is MalformedPolicy with a message; an accepted policy evaluates, for a few fixed
 * requests (anonymous and a user, object and bucket actions, with and without tags), to one of
 * the three effects, and an anonymous Allow that came only through "*" is reported as such.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const users[] = {NULL, "bob"};
    static const char *const actions[] = {"s3:GetObject", "s3:ListBucket", "s3:PutObject"};
    static const char *const resources[] = {"arn:aws:s3:::pics/pub/a.jpg", "arn:aws:s3:::pics"};
    md_meta tag = {"class", "public"};
    gw_policy *p = NULL;
    char msg[256];
    gw_s3err e = gw_policy_parse((const char *)data, size, "pics", &p, msg, sizeof(msg));
    if (e != GW_OK) {
        if ((e != GW_MALFORMED_POLICY && e != GW_INTERNAL) || p || !msg[0])
            abort();
        return 0;
    }
    (void)gw_policy_is_public(p);
    for (size_t u = 0; u < 2; u++)
        for (size_t a = 0; a < 3; a++)
            for (size_t r = 0; r < 2; r++) {
                int pub = -1;
                gw_policy_ctx c = {.user = users[u],
                                   .action = actions[a],
                                   .resource = resources[r],
                                   .source_ip = r ? "10.0.0.1" : "2001:db8::1",
                                   .secure = (int)a & 1,
                                   .prefix = r ? "pub/" : NULL,
                                   .tags = &tag,
                                   .ntags = a & 1};
                gw_policy_effect eff = gw_policy_eval(p, &c, &pub);
                if (eff != GW_POLICY_NONE && eff != GW_POLICY_ALLOW && eff != GW_POLICY_DENY)
                    abort();
                if (pub != 0 && pub != 1)
                    abort();
                if (pub && eff != GW_POLICY_ALLOW)
                    abort();
            }
    gw_policy_free(p);
    return 0;
}
