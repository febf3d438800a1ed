/*
 * nd_auth.c - request authentication between nodes with the cluster secret.
 *
 * A request carries X-Cairn-Node, X-Cairn-Date (unix seconds), X-Cairn-Nonce (32 hex) and
 * Authorization: CAIRN-HMAC-SHA256 <64 hex>, the HMAC-SHA256 under the secret of
 *
 *   "CAIRN-RPC-V1\n" METHOD "\n" TARGET "\n" NODE "\n" TO "\n" DATE "\n" NONCE "\n" LENGTH "\n"
 *   CRC32C
 *
 * where TARGET is the request-target as sent (path and query), NODE the caller, TO the node the
 * request is for (not sent: the node puts its own id there, so a request captured on its way to
 * one node is refused by every other; a body's chunk id is the same on all its nodes, so a DELETE
 * replayed to the other nodes would otherwise delete every cell), LENGTH the Content-Length ("0"
 * without a body) and CRC32C the X-Cairn-Crc32c header ("-" when absent). Signing the length and
 * the body's checksum binds the body to the signature without hashing it twice: the node checks
 * the CRC32C of what it received before anything is acknowledged. That catches a body damaged in
 * flight, not one forged on purpose (a CRC is easy to match: that needs TLS, docs/rpc.md). The
 * date bounds replay to the allowed skew; the nonce makes every signature unique (no replay cache
 * is kept, see docs/rpc.md). The signature is compared in constant time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "nd.h"

#define AUTH_SCHEME "CAIRN-HMAC-SHA256 "

int nd_node_id_valid(const char *id)
{
    return cm_ident_ok(id, ND_NODE_ID_MAX);
}

void nd_sign(const uint8_t *secret, size_t secret_len, const nd_canon *c, char out[65])
{
    uint8_t mac[32];
    size_t n = 64 + strlen(c->method) + strlen(c->target) + strlen(c->node) + strlen(c->to) +
               strlen(c->date) + strlen(c->nonce) + strlen(c->length) + strlen(c->crc32c);
    char *s = malloc(n);
    if (!s) {
        memset(out, '0', 64); /* matches nothing a real HMAC produces in practice */
        out[64] = '\0';
        return;
    }
    int len = snprintf(s, n, "CAIRN-RPC-V1\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s", c->method, c->target,
                       c->node, c->to, c->date, c->nonce, c->length, c->crc32c);
    cm_hmac_sha256(secret, secret_len, s, (size_t)len, mac);
    free(s);
    cm_hex_encode(mac, sizeof(mac), out);
}

cm_err nd_auth_check(const uint8_t *secret, size_t secret_len, int max_skew_s, int64_t now,
                     const char *self, const net_req *req, const char **why)
{
    const char *node = net_req_header(req, "X-Cairn-Node");
    const char *date = net_req_header(req, "X-Cairn-Date");
    const char *nonce = net_req_header(req, "X-Cairn-Nonce");
    const char *auth = net_req_header(req, "Authorization");
    const char *crc = net_req_header(req, "X-Cairn-Crc32c");
    const char *clen = net_req_header(req, "Content-Length");
    char *end;
    if (!node || !date || !nonce || !auth) {
        *why = "unauthenticated: X-Cairn-Node, X-Cairn-Date, X-Cairn-Nonce and Authorization "
               "are required";
        return CM_ERR_AUTH;
    }
    if (strncmp(auth, AUTH_SCHEME, strlen(AUTH_SCHEME)) != 0 ||
        strlen(auth) != strlen(AUTH_SCHEME) + 64 || strlen(nonce) != 32 ||
        !nd_node_id_valid(node)) {
        *why = "malformed authentication headers";
        return CM_ERR_AUTH;
    }
    long long ts = strtoll(date, &end, 10);
    if (end == date || *end) {
        *why = "malformed X-Cairn-Date";
        return CM_ERR_AUTH;
    }
    if (ts < now - max_skew_s || ts > now + max_skew_s) {
        *why = "request time too far from the node's clock (clock skew)";
        return CM_ERR_AUTH;
    }
    char sig[65];
    nd_canon c = {net_req_method(req), net_req_target(req), node, self, date, nonce,
                  clen ? clen : "0",   crc ? crc : "-"};
    nd_sign(secret, secret_len, &c, sig);
    if (!cm_ct_equal(sig, auth + strlen(AUTH_SCHEME), 64)) {
        *why = "signature does not match (wrong cluster secret, or meant for another node?)";
        return CM_ERR_AUTH;
    }
    *why = "";
    return CM_OK;
}
