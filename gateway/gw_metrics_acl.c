/*
 * gw_metrics_acl.c - who may read /metrics: the operator's choice between a bearer token
 * ([metrics] token: "Authorization: Bearer TOKEN" from any address) and an address allow-list
 * ([metrics] allow = CIDR,...; default loopback only). Either one admits a request; a request
 * that presents a Bearer token which is wrong is refused even from an allowed address (a stale
 * token in a scraper should show, not be papered over). Refusals: 401 with WWW-Authenticate when
 * a token is configured (the client may present one), else 403. /health/ stays open to all.
 *
 * The token is compared in constant time; it is never logged.
 */
#include "gw_int.h"

#include <string.h>
#include <strings.h>

#include "cm_log.h"
#include "cm_util.h"

#define MOD "metrics"

static void refuse(gw_req *r, int status, const char *why)
{
    net_resp_start(r->net, status, (int64_t)strlen(why));
    if (status == 401)
        net_resp_header(r->net, "WWW-Authenticate", "Bearer realm=\"cairn metrics\"");
    net_resp_header(r->net, "Content-Type", "text/plain");
    net_resp_header(r->net, "Cache-Control", "no-store");
    net_resp_write(r->net, why, strlen(why));
    net_resp_end(r->net);
}

int gw_metrics_allowed(gw_req *r)
{
    const gw *g = r->g;
    const char *auth = gw_hdr(r, "authorization");
    size_t tlen = strlen(g->metrics_token);
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *given = auth + 7;
        while (*given == ' ')
            given++;
        size_t glen = strlen(given);
        /* a length mismatch is not secret (the token's length is in no response) */
        if (tlen && glen == tlen && cm_ct_equal(given, g->metrics_token, tlen))
            return 1;
        CM_DEBUG(MOD, "rid=%s peer=%s: /metrics refused: wrong bearer token", r->id,
                 net_req_peer(r->net));
        refuse(r, 401, "wrong bearer token\n");
        return 0;
    }
    if (cm_cidr_list_match(&g->metrics_allow, net_req_peer(r->net)))
        return 1;
    CM_DEBUG(MOD, "rid=%s peer=%s: /metrics refused: address not allowed", r->id,
             net_req_peer(r->net));
    if (tlen)
        refuse(r, 401, "/metrics needs Authorization: Bearer TOKEN from this address\n");
    else
        refuse(r, 403, "/metrics is not readable from this address ([metrics] allow)\n");
    return 0;
}
