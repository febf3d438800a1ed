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
 * date bounds replay to the allowed skew; the nonce makes every signature unique, and the node
 * answers a chunk DELETE or a conditional write whose nonce it saw from memory (nd_replay.c;
 * docs/rpc.md). The signature
 * is compared in constant time.
 *
 * Cost: every replica call is signed by its caller and checked by its callee, so this runs twice
 * per RPC. The secret's HMAC pad states are computed once per client and service (cm_hmac_key,
 * common/cm_hmac.c) and the string is assembled on the stack (on the heap only when it is longer
 * than CANON_STACK, a long key's target): a signature is the SHA-256 of the string and one block.
 */
#include <stdlib.h>
#include <string.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "nd.h"

#define AUTH_SCHEME "CAIRN-HMAC-SHA256 "
#define CANON_STACK 1024 /* canonical strings up to this long are built on the stack */

int nd_node_id_valid(const char *id)
{
    return cm_ident_ok(id, ND_NODE_ID_MAX);
}

void nd_sign(const cm_hmac_key *key, const nd_canon *c, char out[65])
{
    const char *part[] = {"CAIRN-RPC-V1", c->method, c->target, c->node,  c->to,
                          c->date,        c->nonce,  c->length, c->crc32c};
    enum { NPART = sizeof(part) / sizeof(part[0]) };
    size_t len[NPART], n = 0, at = 0;
    for (int i = 0; i < NPART; i++) {
        len[i] = strlen(part[i]);
        n += len[i] + 1; /* its "\n" (one more than needed: the last has none) */
    }
    /* on the stack unless the target is long (a long key, URL-encoded) */
    char stack[CANON_STACK], *s = n <= sizeof(stack) ? stack : malloc(n);
    uint8_t mac[32];
    if (!s) {
        memset(out, '0', 64); /* matches nothing a real HMAC produces in practice */
        out[64] = '\0';
        return;
    }
    for (int i = 0; i < NPART; i++) {
        memcpy(s + at, part[i], len[i]);
        at += len[i];
        if (i < NPART - 1)
            s[at++] = '\n';
    }
    cm_hmac_sha256_keyed(key, s, at, mac);
    if (s != stack)
        free(s);
    cm_hex_encode(mac, sizeof(mac), out);
}

cm_err nd_auth_check(const cm_hmac_key *key, int max_skew_s, int64_t now, const char *self,
                     const net_req *req, const char **why)
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
    nd_sign(key, &c, sig);
    if (!cm_ct_equal(sig, auth + strlen(AUTH_SCHEME), 64)) {
        *why = "signature does not match (wrong cluster secret, or meant for another node?)";
        return CM_ERR_AUTH;
    }
    *why = "";
    return CM_OK;
}
