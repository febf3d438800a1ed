/*
 * nd_client.c - asynchronous RPC calls to other nodes over a pooled net_client.
 *
 * An nd_op is one call: it builds the request (target, signature headers, body), consults the
 * fault table, and hands the net_call to the pool; net callbacks come back here and end in one
 * nd_done_fn. Read data passes straight through to the caller's nd_data_fn (the net client's body
 * buffer, so bytes the caller leaves there are its backpressure), once the answer's Content-Length
 * is the length asked for: another length is dropped and the read fails CM_ERR_CLOSED, so a peer
 * cannot make a caller buffer more than it asked. An answer with X-Cairn-Crc32c (every range on a
 * plain connection; on TLS a range that fit the node's first piece) has its CRC32C run over the
 * bytes as they arrive, and a mismatch ends the read CM_ERR_DIGEST, or CM_ERR_CORRUPT when the
 * node sent the bytes unread (X-Cairn-Verify: reader: rot on its drive). A read of several parts
 * (nd_read_parts) checks each part against its own CRC, split at the parts' bounds as the bytes
 * arrive; an answer without X-Cairn-Parts or a CRC per part is refused CM_ERR_UNSUPPORTED (a node
 * that predates also=), never used unchecked. The small bodies of errors and info answers are
 * collected up to ND_SMALL_BODY bytes.
 *
 * Faults: before a call is queued, nd_fault_get(from = this node, to = the peer) decides:
 * REFUSE ends it from the loop with CM_ERR_UNAVAILABLE, LOSE ends it CM_ERR_TIMEOUT after the
 * io timeout (the request never leaves), DELAY queues it delay_ms later. The call never runs
 * its callback from inside the nd_* function that started it.
 *
 * Idempotent calls (read, stat, delete, info, list) are retried by the pool after a transport
 * failure before any answer byte, with the same signature: a DELETE the node ran before the
 * connection broke is answered from its replay memory (nd_replay.c), 503 while it still runs;
 * appends (one drive, or a node's parts: nd_append_parts, one CRC per part in X-Cairn-Crc32c)
 * are not retried (an append that may have landed is not repeated: the caller learns the chunk's
 * length from a stat or the 409 of the next append).
 *
 * Threading: one loop thread per client.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cm_checksum.h"
#include "cm_log.h"
#include "cm_util.h"
#include "nd_int.h"

#define MOD "nd"
#define ND_SMALL_BODY (64 * 1024)

struct nd_client {
    struct event_base *base;
    net_client *net;
    char node_id[ND_NODE_ID_MAX];
    cm_hmac_key key; /* the cluster secret's, for signing */
    nd_faults *faults;
    int64_t clock_offset_s;
    int io_timeout_ms;
    nd_op *held; /* calls a fault delays or loses (not in the pool yet) */
    /* Nonces: a random prefix drawn once and a counter. The nonce only has to make every
     * signature unique (nd_auth.c); a getrandom per call was 5 system calls per 4 KiB PUT. */
    uint8_t nonce_prefix[8];
    uint64_t nonce_seq;
};

enum { K_APPEND, K_READ, K_DELETE, K_STAT, K_INFO, K_LIST, K_META };

struct nd_op {
    nd_client *cl;
    net_call *call;
    struct event *timer;  /* fault delay or loss */
    nd_op *hprev, *hnext; /* in cl->held while the timer runs */
    int kind;
    cm_err fault_end; /* a fault's timer ends the call with this (CM_OK: a delay, then send) */
    nd_done_fn done;
    nd_data_fn data;
    nd_send_fn send;
    void *arg;
    uint64_t want;       /* read: bytes expected */
    int sized, overlong; /* read: answer length checked; it is not want (bytes dropped) */
    int has_crc;         /* read: the answer carries X-Cairn-Crc32c (want_crc) */
    int unread;          /* ... sent by a node that did not read it (X-Cairn-Verify: reader) */
    int nparts; /* read: parts of part_len bytes each (nd_read_parts), 1 for a plain read */
    uint64_t part_len;
    uint32_t want_crc[ND_READ_PARTS], crc[ND_READ_PARTS]; /* per part: told, and of the bytes */
    uint64_t crc_at;                                      /* body bytes the CRCs cover */
    struct evbuffer *small;                               /* error, info, list or meta body */
    size_t cap; /* of small: ND_SMALL_BODY, or ND_META_MAX for meta ops */
    nd_node_info *info;
    nd_chunk_ent *list;
    int aged; /* list: the answer's lines carry ages */
};

static void op_free(nd_op *op)
{
    if (op->timer)
        event_free(op->timer);
    if (op->small)
        evbuffer_free(op->small);
    free(op->info);
    free(op->list);
    free(op);
}

cm_err nd_client_new(struct event_base *base, const nd_client_config *cfg, nd_client **out)
{
    *out = NULL;
    if (!nd_node_id_valid(cfg->node_id) || cfg->secret_len == 0)
        return CM_ERR_INVAL;
    nd_client *cl = calloc(1, sizeof(*cl));
    if (!cl)
        return CM_ERR_NOMEM;
    cl->base = base;
    snprintf(cl->node_id, sizeof(cl->node_id), "%s", cfg->node_id);
    cl->faults = cfg->faults;
    cl->clock_offset_s = cfg->clock_offset_s;
    net_client_config d;
    net_client_config_defaults(&d);
    cl->io_timeout_ms = cfg->net.io_timeout_ms > 0 ? cfg->net.io_timeout_ms : d.io_timeout_ms;
    cm_err e = cm_random(cl->nonce_prefix, sizeof(cl->nonce_prefix));
    if (e == CM_OK)
        e = net_client_new(base, &cfg->net, &cl->net);
    if (e != CM_OK) {
        free(cl);
        return e;
    }
    cm_hmac_key_init(&cl->key, cfg->secret, cfg->secret_len);
    *out = cl;
    return CM_OK;
}

static void unhold(nd_op *op)
{
    if (op->hprev)
        op->hprev->hnext = op->hnext;
    else
        op->cl->held = op->hnext;
    if (op->hnext)
        op->hnext->hprev = op->hprev;
    op->hprev = op->hnext = NULL;
}

/* Parse a list body ("<32 hex> <length>" lines) into op->list. 0 ok, -1 malformed. */
static int parse_list(nd_op *op, size_t *n)
{
    char *line;
    size_t len, cap = ND_LIST_MAX;
    *n = 0;
    if (!(op->list = malloc(cap * sizeof(*op->list))))
        return -1;
    while ((line = evbuffer_readln(op->small, &len, EVBUFFER_EOL_LF)) != NULL) {
        char *end;
        int ok = len > 33 && line[32] == ' ' && *n < cap &&
                 cm_hex_decode(line, 32, op->list[*n].id.b, 16) == CM_OK;
        if (ok) {
            op->list[*n].size = strtoull(line + 33, &end, 10);
            ok = line[33] >= '0' && line[33] <= '9';
            op->list[*n].age_s = -1;
            if (ok && op->aged) { /* "<id> <length> <age>" */
                const char *a = end + 1;
                ok = *end == ' ' && *a >= '0' && *a <= '9';
                op->list[*n].age_s = ok ? strtoll(a, &end, 10) : -1;
            }
            ok = ok && *end == '\0';
        }
        free(line);
        if (!ok)
            return -1;
        (*n)++;
    }
    return evbuffer_get_length(op->small) == 0 ? 0 : -1;
}

static void finish(nd_op *op, cm_err e, const net_call *call);

void nd_client_free(nd_client *cl)
{
    if (!cl)
        return;
    while (cl->held) { /* a call a fault holds back ends like one in the pool */
        nd_op *op = cl->held;
        unhold(op);
        net_call_free(op->call);
        op->call = NULL;
        finish(op, CM_ERR_CLOSED, NULL);
    }
    net_client_free(cl->net);
    cm_hmac_key_release(&cl->key);
    free(cl);
}

net_client *nd_client_net(nd_client *cl)
{
    return cl->net;
}

struct event_base *nd_client_base(nd_client *cl)
{
    return cl->base;
}

/* ---- results ---- */

static cm_err err_from_name(const char *name, int status)
{
    for (int e = 0; name && e < CM_ERR__COUNT; e++)
        if (strcmp(cm_err_name((cm_err)e), name) == 0)
            return (cm_err)e;
    switch (status) {
    case 401:
    case 403:
        return CM_ERR_AUTH;
    case 404:
        return CM_ERR_NOTFOUND;
    case 503:
        return CM_ERR_UNAVAILABLE;
    default:
        return CM_ERR_INTERNAL;
    }
}

static uint64_t header_u64(const net_call *call, const char *name)
{
    const char *v = net_call_resp_header(call, name);
    return v ? strtoull(v, NULL, 10) : 0;
}

/* Parse an info body ("node ID", "time T", "drive ..." lines). 0 ok, -1 malformed. */
static int parse_info(struct evbuffer *b, nd_node_info *info)
{
    char *line;
    size_t len;
    int have_node = 0;
    memset(info, 0, sizeof(*info));
    while ((line = evbuffer_readln(b, &len, EVBUFFER_EOL_LF)) != NULL) {
        nd_drive_info d = {0};
        long long t;
        char id[ND_NODE_ID_MAX];
        if (sscanf(line, "node %63s", id) == 1) {
            snprintf(info->node_id, sizeof(info->node_id), "%s", id);
            have_node = 1;
        } else if (sscanf(line, "time %lld", &t) == 1) {
            info->time = t;
        } else if (sscanf(line,
                          "drive %" SCNu32 " %15s %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                          " %" SCNu64,
                          &d.index, d.state, &d.blobs, &d.live_bytes, &d.used_bytes, &d.free_bytes,
                          &d.total_bytes) == 7 &&
                   info->ndrives < ND_MAX_DRIVES) {
            info->drives[info->ndrives++] = d;
        }
        free(line);
    }
    return have_node ? 0 : -1;
}

static int header_is(const net_call *call, const char *name, const char *want)
{
    const char *v = net_call_resp_header(call, name);
    return v && strcmp(v, want) == 0;
}

/* A meta op's answer: the whole body (bounded by op->cap), and its flags. */
static void meta_result(nd_op *op, const net_call *call, nd_result *res)
{
    size_t len = evbuffer_get_length(op->small);
    if (net_call_received(call) > len) {
        res->err = CM_ERR_TOOBIG;
        res->message = "meta answer over ND_META_MAX";
        return;
    }
    res->body = len ? evbuffer_pullup(op->small, (ev_ssize_t)len) : (const uint8_t *)"";
    res->body_len = len;
    if (!res->body) {
        res->err = CM_ERR_NOMEM;
        res->message = cm_err_str(CM_ERR_NOMEM);
    }
    res->applied = header_is(call, "X-Cairn-Applied", "1");
    res->more = header_is(call, "X-Cairn-More", "1");
}

static int crcs_match(const nd_op *op)
{
    for (int i = 0; i < op->nparts; i++)
        if (op->crc[i] != op->want_crc[i])
            return 0;
    return 1;
}

static void finish(nd_op *op, cm_err e, const net_call *call)
{
    nd_result res = {e, 0, 0, "", NULL, NULL, 0, 0, NULL, 0, 0, 0};
    char msg[256] = "";
    if (call && e == CM_OK) {
        res.status = net_call_status(call);
        res.size = header_u64(call, "X-Cairn-Size");
        if (res.status >= 300) {
            const char *reason = net_call_resp_header(call, "X-Cairn-Reason");
            res.err = err_from_name(net_call_resp_header(call, "X-Cairn-Error"), res.status);
            if (reason) {
                snprintf(msg, sizeof(msg), "%s", reason);
            } else { /* not a node's answer: the first line of the body */
                size_t n = CM_MIN(evbuffer_get_length(op->small), sizeof(msg) - 1);
                evbuffer_copyout(op->small, msg, n);
                msg[n] = '\0';
                msg[strcspn(msg, "\r\n")] = '\0';
            }
            res.message = msg;
            res.no_bucket = net_call_resp_header(call, "X-Cairn-No-Bucket") != NULL;
        } else if (op->kind == K_META) {
            meta_result(op, call, &res);
        } else if (op->kind == K_READ && op->overlong && op->nparts > 1) {
            res.err = CM_ERR_UNSUPPORTED; /* not the node's failure: read the parts one by one */
            res.message = "read of several parts answered as one range";
        } else if (op->kind == K_READ && op->want != UINT64_MAX &&
                   (op->overlong || net_call_received(call) != op->want)) {
            res.err = CM_ERR_CLOSED;
            res.message = op->overlong ? "read answered with another length" : "read cut short";
        } else if (op->kind == K_READ && op->has_crc && !crcs_match(op) && op->unread) {
            /* the node sent the bytes by sendfile against the CRC32C they were stored with: rot
             * on its drive (or, far less likely, damage on the way): the caller rebuilds it */
            res.err = CM_ERR_CORRUPT;
            res.message = "read body does not match the CRC32C it was stored with";
        } else if (op->kind == K_READ && op->has_crc && !crcs_match(op)) {
            res.err = CM_ERR_DIGEST; /* damaged on the way: the caller reads another copy */
            res.message = "read body does not match its X-Cairn-Crc32c";
        } else if (op->kind == K_INFO) {
            op->info = malloc(sizeof(*op->info));
            if (!op->info || parse_info(op->small, op->info) != 0) {
                res.err = CM_ERR_INTERNAL;
                res.message = "malformed info answer";
            } else {
                res.info = op->info;
            }
        } else if (op->kind == K_LIST) {
            const char *more = net_call_resp_header(call, "X-Cairn-More");
            if (parse_list(op, &res.nlist) != 0) {
                res.err = CM_ERR_INTERNAL;
                res.message = "malformed list answer";
                res.nlist = 0;
            } else {
                res.list = op->list;
                res.more = more && strcmp(more, "1") == 0;
            }
        }
    } else if (e != CM_OK) {
        res.message = cm_err_str(e);
    }
    op->done(op->arg, &res);
    op_free(op);
}

/* ---- net callbacks ---- */

/* Run the read's CRC32C over the bytes that arrived since the last call: the tail of body (the
 * front holds what the caller left there, already counted). */
static void crc_fresh(nd_op *op, const net_call *call, struct evbuffer *body)
{
    uint64_t fresh = net_call_received(call) - op->crc_at;
    size_t len = evbuffer_get_length(body);
    struct evbuffer_ptr at;
    op->crc_at = net_call_received(call);
    if (fresh == 0 || fresh > len ||
        evbuffer_ptr_set(body, &at, len - (size_t)fresh, EVBUFFER_PTR_SET) != 0)
        return;
    while (fresh > 0) {
        struct evbuffer_iovec v[8];
        int n = evbuffer_peek(body, (ev_ssize_t)fresh, &at, v, 8);
        size_t done = 0;
        for (int i = 0; i < n && i < 8 && fresh > 0; i++) {
            size_t k = (size_t)CM_MIN((uint64_t)v[i].iov_len, fresh);
            const uint8_t *p = v[i].iov_base;
            for (size_t left = k; left > 0;) { /* split at the parts' bounds */
                uint64_t pos = op->crc_at - fresh + (k - left), last = (uint64_t)op->nparts - 1;
                uint64_t part = op->nparts > 1 ? CM_MIN(pos / op->part_len, last) : 0;
                size_t take = part < last
                                  ? (size_t)CM_MIN((uint64_t)left, (part + 1) * op->part_len - pos)
                                  : left;
                op->crc[part] = cm_crc32c(op->crc[part], p, take);
                p += take;
                left -= take;
            }
            fresh -= k;
            done += k;
        }
        if (n <= 0 || evbuffer_ptr_set(body, &at, done, EVBUFFER_PTR_ADD) != 0)
            break;
    }
}

int nd_parse_crcs(const char *v, int n, uint32_t *out)
{
    for (int i = 0; v && i < n; i++) {
        uint8_t raw[4];
        if (strnlen(v, 9) < 8 || cm_hex_decode(v, 8, raw, 4) != CM_OK ||
            v[8] != (i + 1 < n ? ',' : '\0'))
            return 0;
        out[i] = cm_get_be32(raw);
        v += 9;
    }
    return v != NULL;
}

static void on_body(net_call *call, struct evbuffer *body, void *arg)
{
    nd_op *op = arg;
    if (op->kind == K_READ && net_call_status(call) < 300) {
        if (!op->sized) { /* more than asked would pile up in the caller's buffers: refused */
            const char *cl = net_call_resp_header(call, "Content-Length");
            const char *parts = net_call_resp_header(call, "X-Cairn-Parts");
            op->sized = 1;
            op->overlong = op->want != UINT64_MAX && (!cl || strtoull(cl, NULL, 10) != op->want);
            if (op->nparts > 1 && (!parts || strtol(parts, NULL, 10) != op->nparts))
                op->overlong = 1; /* not the parts asked for (a node that ignored also=) */
            op->has_crc = nd_parse_crcs(net_call_resp_header(call, "X-Cairn-Crc32c"), op->nparts,
                                        op->want_crc);
            if (op->nparts > 1 && !op->has_crc)
                op->overlong = 1; /* parts are never taken unchecked */
            op->unread = net_call_resp_header(call, "X-Cairn-Verify") != NULL;
        }
        if (!op->overlong) {
            if (op->has_crc)
                crc_fresh(op, call, body);
            op->data(op->arg, op, body);
            return;
        }
    }
    size_t room = op->cap - CM_MIN(evbuffer_get_length(op->small), op->cap);
    evbuffer_remove_buffer(body, op->small, CM_MIN(room, evbuffer_get_length(body)));
    evbuffer_drain(body, evbuffer_get_length(body)); /* past the cap: dropped */
}

static void on_send(net_call *call, struct evbuffer *out, void *arg)
{
    nd_op *op = arg;
    (void)call;
    if (op->send)
        op->send(op->arg, op, out);
}

static void on_done(net_call *call, cm_err e, void *arg)
{
    nd_op *op = arg;
    op->call = NULL;
    finish(op, e, call);
}

static const net_call_handler handler = {on_body, on_send, on_done};

/* ---- starting calls ---- */

static void fault_cb(evutil_socket_t fd, short what, void *arg)
{
    nd_op *op = arg;
    (void)fd;
    (void)what;
    unhold(op);
    if (op->fault_end != CM_OK) {
        net_call_free(op->call);
        op->call = NULL;
        finish(op, op->fault_end, NULL);
        return;
    }
    net_call *call = op->call;
    net_call_start(call, &handler, op, op->kind != K_APPEND);
}

/* Sign and queue (or fault) the call built in op->call. */
static cm_err launch(nd_op *op, const nd_peer *peer, const char *method, const char *target,
                     uint64_t len, const char *crc, struct evbuffer *body)
{
    nd_client *cl = op->cl;
    char date[24], nonce[33], sig[65], auth[96], lenstr[24];
    uint8_t rnd[16];
    if (!peer->id)
        return CM_ERR_INVAL; /* the signature names the callee */
    memcpy(rnd, cl->nonce_prefix, 8);
    uint64_t seq = cl->nonce_seq++;
    for (int i = 0; i < 8; i++)
        rnd[8 + i] = (uint8_t)(seq >> (8 * i));
    cm_hex_encode(rnd, sizeof(rnd), nonce);
    snprintf(date, sizeof(date), "%" PRId64, cm_now_ms() / 1000 + cl->clock_offset_s);
    snprintf(lenstr, sizeof(lenstr), "%" PRIu64, len);
    int has_len = len > 0 || strcmp(method, "PUT") == 0;
    nd_canon c = {
        method,         target, cl->node_id, peer->id, date, nonce, has_len ? lenstr : "0",
        crc ? crc : "-"};
    nd_sign(&cl->key, &c, sig);
    snprintf(auth, sizeof(auth), "CAIRN-HMAC-SHA256 %s", sig);
    cm_err e = net_call_new(cl->net, peer->host, peer->port, method, target, &op->call);
    if (e != CM_OK)
        return e;
    net_call_header(op->call, "X-Cairn-Node", cl->node_id);
    net_call_header(op->call, "X-Cairn-Date", date);
    net_call_header(op->call, "X-Cairn-Nonce", nonce);
    if (crc)
        net_call_header(op->call, "X-Cairn-Crc32c", crc);
    net_call_header(op->call, "Authorization", auth);
    if (has_len)
        net_call_body(op->call, len, body);

    int delay = 0;
    nd_fault_kind f =
        cl->faults ? nd_fault_get(cl->faults, cl->node_id, peer->id, &delay) : ND_FAULT_NONE;
    if (f == ND_FAULT_NONE) {
        net_call_start(op->call, &handler, op, op->kind != K_APPEND);
        return CM_OK;
    }
    op->timer = evtimer_new(cl->base, fault_cb, op);
    if (!op->timer) {
        net_call_free(op->call);
        op->call = NULL;
        return CM_ERR_NOMEM;
    }
    op->fault_end = f == ND_FAULT_REFUSE ? CM_ERR_UNAVAILABLE
                    : f == ND_FAULT_LOSE ? CM_ERR_TIMEOUT
                                         : CM_OK;
    int ms = f == ND_FAULT_REFUSE ? 0 : f == ND_FAULT_LOSE ? cl->io_timeout_ms : delay;
    CM_DEBUG(MOD, "fault %d on %s -> %s: %s %s", (int)f, cl->node_id, peer->id, method, target);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(op->timer, &tv);
    op->hnext = cl->held;
    if (cl->held)
        cl->held->hprev = op;
    cl->held = op;
    return CM_OK;
}

static nd_op *op_new(nd_client *cl, int kind, nd_done_fn done, void *arg)
{
    nd_op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->cl = cl;
    op->kind = kind;
    op->done = done;
    op->arg = arg;
    op->small = evbuffer_new();
    op->cap = kind == K_META ? ND_META_MAX : ND_SMALL_BODY;
    op->nparts = 1;
    if (!op->small) {
        free(op);
        return NULL;
    }
    return op;
}

static void chunk_target(char *out, size_t cap, uint32_t drive, const bs_id *id)
{
    char hex[33];
    bs_id_hex(id, hex);
    snprintf(out, cap, ND_PREFIX "/chunk/%" PRIu32 "/%s", drive, hex);
}

/* Common tail: launch or clean up. */
static cm_err go(nd_op *op, const nd_peer *peer, const char *method, const char *target,
                 uint64_t len, const char *crc, struct evbuffer *body, nd_op **out)
{
    cm_err e = launch(op, peer, method, target, len, crc, body);
    if (e != CM_OK) {
        op_free(op);
        return e;
    }
    if (out)
        *out = op;
    return CM_OK;
}

cm_err nd_append(nd_client *cl, const nd_peer *peer, uint32_t drive, const bs_id *id, uint64_t off,
                 uint64_t len, uint32_t crc32c, struct evbuffer *body, nd_send_fn send, int sync,
                 nd_done_fn done, void *arg, nd_op **out)
{
    char target[160], base[96], crc[9];
    nd_op *op = op_new(cl, K_APPEND, done, arg);
    if (!op)
        return CM_ERR_NOMEM;
    op->send = send;
    chunk_target(base, sizeof(base), drive, id);
    snprintf(target, sizeof(target), "%s?off=%" PRIu64 "%s", base, off, sync ? "" : "&sync=0");
    snprintf(crc, sizeof(crc), "%08" PRIx32, crc32c);
    return go(op, peer, "PUT", target, len, crc, body, out);
}

/* "&also=D1,D2..." (drives[1..n)) at target + at; the new length. */
static int also_list(char *target, size_t cap, int at, const uint32_t *drives, int n)
{
    for (int i = 1; i < n && at > 0 && (size_t)at < cap; i++)
        at += snprintf(target + at, cap - (size_t)at, "%s%" PRIu32,
                       i > 1 ? "," : "&also=", drives[i]);
    return at;
}

cm_err nd_append_parts(nd_client *cl, const nd_peer *peer, const uint32_t *drives, int n,
                       const bs_id *id, uint64_t off, const uint32_t *crcs, struct evbuffer *body,
                       int sync, nd_done_fn done, void *arg, nd_op **out)
{
    char target[200], base[96], crc[ND_READ_PARTS * 9];
    size_t len = body ? evbuffer_get_length(body) : 0;
    if (n < 2 || n > ND_READ_PARTS || len == 0 || len % (size_t)n != 0)
        return CM_ERR_INVAL;
    nd_op *op = op_new(cl, K_APPEND, done, arg);
    if (!op)
        return CM_ERR_NOMEM;
    chunk_target(base, sizeof(base), drives[0], id);
    int at =
        snprintf(target, sizeof(target), "%s?off=%" PRIu64 "%s", base, off, sync ? "" : "&sync=0");
    also_list(target, sizeof(target), at, drives, n);
    for (int i = 0; i < n; i++) /* "c0,c1,...": 8 hex digits and a comma each */
        snprintf(crc + 9 * i, sizeof(crc) - 9 * (size_t)i, "%08" PRIx32 "%s", crcs[i],
                 i + 1 < n ? "," : "");
    return go(op, peer, "PUT", target, len, crc, body, out);
}

cm_err nd_read(nd_client *cl, const nd_peer *peer, uint32_t drive, const bs_id *id, uint64_t off,
               uint64_t len, nd_data_fn data, nd_done_fn done, void *arg, nd_op **out)
{
    char target[160], base[96];
    if (!data)
        return CM_ERR_INVAL;
    nd_op *op = op_new(cl, K_READ, done, arg);
    if (!op)
        return CM_ERR_NOMEM;
    op->data = data;
    op->want = len;
    chunk_target(base, sizeof(base), drive, id);
    if (len == UINT64_MAX)
        snprintf(target, sizeof(target), "%s?off=%" PRIu64, base, off);
    else
        snprintf(target, sizeof(target), "%s?off=%" PRIu64 "&len=%" PRIu64, base, off, len);
    return go(op, peer, "GET", target, 0, NULL, NULL, out);
}

cm_err nd_read_parts(nd_client *cl, const nd_peer *peer, const uint32_t *drives, int n,
                     const bs_id *id, uint64_t off, uint64_t len, nd_data_fn data, nd_done_fn done,
                     void *arg, nd_op **out)
{
    char target[200], base[96];
    if (!data || n < 2 || n > ND_READ_PARTS || len == 0 || len > ND_READ_PARTS_BYTES / (uint64_t)n)
        return CM_ERR_INVAL;
    nd_op *op = op_new(cl, K_READ, done, arg);
    if (!op)
        return CM_ERR_NOMEM;
    op->data = data;
    op->want = len * (uint64_t)n;
    op->nparts = n;
    op->part_len = len;
    chunk_target(base, sizeof(base), drives[0], id);
    int at = snprintf(target, sizeof(target), "%s?off=%" PRIu64 "&len=%" PRIu64, base, off, len);
    also_list(target, sizeof(target), at, drives, n);
    return go(op, peer, "GET", target, 0, NULL, NULL, out);
}

cm_err nd_delete(nd_client *cl, const nd_peer *peer, uint32_t drive, const bs_id *id,
                 nd_done_fn done, void *arg)
{
    char target[96];
    nd_op *op = op_new(cl, K_DELETE, done, arg);
    if (!op)
        return CM_ERR_NOMEM;
    chunk_target(target, sizeof(target), drive, id);
    return go(op, peer, "DELETE", target, 0, NULL, NULL, NULL);
}

cm_err nd_stat(nd_client *cl, const nd_peer *peer, uint32_t drive, const bs_id *id, nd_done_fn done,
               void *arg)
{
    char target[96];
    nd_op *op = op_new(cl, K_STAT, done, arg);
    if (!op)
        return CM_ERR_NOMEM;
    chunk_target(target, sizeof(target), drive, id);
    return go(op, peer, "HEAD", target, 0, NULL, NULL, NULL);
}

cm_err nd_info(nd_client *cl, const nd_peer *peer, nd_done_fn done, void *arg)
{
    nd_op *op = op_new(cl, K_INFO, done, arg);
    if (!op)
        return CM_ERR_NOMEM;
    return go(op, peer, "GET", ND_PREFIX "/info", 0, NULL, NULL, NULL);
}

static cm_err list_call(nd_client *cl, const nd_peer *peer, uint32_t drive, const bs_id *after,
                        size_t max, int aged, nd_done_fn done, void *arg)
{
    char target[160], hex[33] = "";
    if (max == 0)
        return CM_ERR_INVAL;
    nd_op *op = op_new(cl, K_LIST, done, arg);
    if (!op)
        return CM_ERR_NOMEM;
    op->aged = aged;
    if (after)
        bs_id_hex(after, hex);
    snprintf(target, sizeof(target), ND_PREFIX "/list/%" PRIu32 "?max=%zu%s%s%s", drive,
             CM_MIN(max, (size_t)(aged ? ND_LIST_AGED_MAX : ND_LIST_MAX)), after ? "&after=" : "",
             hex, aged ? "&age=1" : "");
    return go(op, peer, "GET", target, 0, NULL, NULL, NULL);
}

cm_err nd_list(nd_client *cl, const nd_peer *peer, uint32_t drive, const bs_id *after, size_t max,
               nd_done_fn done, void *arg)
{
    return list_call(cl, peer, drive, after, max, 0, done, arg);
}

cm_err nd_list_aged(nd_client *cl, const nd_peer *peer, uint32_t drive, const bs_id *after,
                    size_t max, nd_done_fn done, void *arg)
{
    return list_call(cl, peer, drive, after, max, 1, done, arg);
}

/* A DNS host name: dot-separated labels of 1..63 letters, digits and hyphens, not beginning or
 * ending with a hyphen, 253 characters at most (RFC 1123); a final dot is allowed. */
static int dns_name_ok(const char *h)
{
    size_t n = strlen(h), label = 0;
    if (n == 0 || n > 254 || (n == 254 && h[n - 1] != '.') || h[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = h[i];
        if (ch == '.') {
            if (label == 0 || h[i - 1] == '-')
                return 0;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || (ch == '-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label == 0 || h[n - 1] != '-';
}

cm_err nd_addr_parse(const char *addr, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(addr, ':');
    const char *h = addr;
    size_t hl = colon ? (size_t)(colon - addr) : 0;
    if (!colon || hl == 0 || colon[1] == '\0')
        return CM_ERR_INVAL;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p <= 0 || p > 65535 || hl >= cap)
        return CM_ERR_INVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    uint8_t a[16];
    if (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1)
        return CM_OK;
    return dns_name_ok(host) ? CM_OK : CM_ERR_INVAL;
}

/* ---- metadata partitions ---- */

/* "&name=" (or "?name=" first) and the percent-encoded value, appended at out[*len]; -1 when it
 * does not fit. */
static int add_param(char *out, size_t cap, size_t *len, const char *name, const char *v)
{
    int n = snprintf(out + *len, cap - *len, "%c%s=", strchr(out, '?') ? '&' : '?', name);
    if (n < 0 || (size_t)n >= cap - *len)
        return -1;
    *len += (size_t)n;
    size_t w = cm_url_encode(v, strlen(v), 0, out + *len, cap - *len);
    if (w == (size_t)-1)
        return -1;
    *len += w;
    return 0;
}

#define META_TARGET 8192 /* the longest: a list with a 1024-byte prefix and after, encoded */

static cm_err meta_call(nd_client *cl, const nd_peer *peer, const char *method, const char *target,
                        const uint8_t *body, size_t len, nd_done_fn done, void *arg)
{
    char crc[9], fenced[META_TARGET + 32];
    struct evbuffer *b = NULL;
    if (peer->epoch) { /* the layout fence (nd_service_config.epoch): signed with the target */
        int n = snprintf(fenced, sizeof(fenced), "%s%cepoch=%" PRIu64, target,
                         strchr(target, '?') ? '&' : '?', peer->epoch);
        if (n < 0 || (size_t)n >= sizeof(fenced))
            return CM_ERR_INVAL;
        target = fenced;
    }
    nd_op *op = op_new(cl, K_META, done, arg);
    if (!op)
        return CM_ERR_NOMEM;
    if (len) {
        snprintf(crc, sizeof(crc), "%08" PRIx32, cm_crc32c(0, body, len));
        if (!(b = evbuffer_new()) || evbuffer_add(b, body, len) != 0) {
            if (b)
                evbuffer_free(b);
            op_free(op);
            return CM_ERR_NOMEM;
        }
    }
    cm_err e = go(op, peer, method, target, len, len ? crc : NULL, b, NULL);
    if (b)
        evbuffer_free(b); /* go moved its contents into the call */
    return e;
}

/* ND_PREFIX/meta/<bucket>/<what>?shard=S&nshards=N (part may be NULL: no shard). */
static size_t meta_target(char *out, size_t cap, const char *bucket, const char *what,
                          const nd_part *p)
{
    int n = p ? snprintf(out, cap, ND_PREFIX "/meta/%s/%s?shard=%" PRIu32 "&nshards=%" PRIu32,
                         bucket, what, p->shard, p->nshards)
              : snprintf(out, cap, ND_PREFIX "/meta/%s/%s", bucket, what);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static int bucket_ok(const char *b)
{
    size_t n = b ? strlen(b) : 0;
    return n > 0 && n <= MD_BUCKET_MAX && !strchr(b, '/') && !strchr(b, '?');
}

cm_err nd_meta_get(nd_client *cl, const nd_peer *peer, const char *bucket, const char *key,
                   nd_done_fn done, void *arg)
{
    char t[META_TARGET];
    size_t n;
    if (!bucket_ok(bucket) || !key || !*key || strlen(key) > MD_MAX_KEY ||
        !(n = meta_target(t, sizeof(t), bucket, "rec", NULL)))
        return CM_ERR_INVAL;
    add_param(t, sizeof(t), &n, "key", key); /* fits: 3 x MD_MAX_KEY < META_TARGET */
    return meta_call(cl, peer, "GET", t, NULL, 0, done, arg);
}

cm_err nd_meta_get_fenced(nd_client *cl, const nd_peer *peer, const nd_part *p, uint64_t fence,
                          const char *key, nd_done_fn done, void *arg)
{
    char t[META_TARGET];
    size_t n;
    if (!bucket_ok(p->bucket) || !key || !*key || strlen(key) > MD_MAX_KEY || fence == 0 ||
        !(n = meta_target(t, sizeof(t), p->bucket, "rec", p)))
        return CM_ERR_INVAL;
    n += (size_t)snprintf(t + n, sizeof(t) - n, "&fence=%" PRIu64, fence);
    add_param(t, sizeof(t), &n, "key", key); /* fits: 3 x MD_MAX_KEY < META_TARGET */
    return meta_call(cl, peer, "GET", t, NULL, 0, done, arg);
}

cm_err nd_meta_put(nd_client *cl, const nd_peer *peer, const char *bucket, const uint8_t *rec,
                   size_t len, const char *hint_for, nd_done_fn done, void *arg)
{
    char t[META_TARGET];
    size_t n;
    if (!bucket_ok(bucket) || len == 0 || len > ND_META_MAX ||
        (hint_for && !nd_node_id_valid(hint_for)) ||
        !(n = meta_target(t, sizeof(t), bucket, "rec", NULL)))
        return CM_ERR_INVAL;
    if (hint_for)
        add_param(t, sizeof(t), &n, "hint", hint_for);
    return meta_call(cl, peer, "PUT", t, rec, len, done, arg);
}

/* A batch route's call (recs, recget): the body as the caller framed it. */
static cm_err meta_batch(nd_client *cl, const nd_peer *peer, const char *method, const char *what,
                         const char *bucket, const uint8_t *body, size_t len, nd_done_fn done,
                         void *arg)
{
    char t[META_TARGET];
    if (!bucket_ok(bucket) || len == 0 || len > ND_META_MAX ||
        !meta_target(t, sizeof(t), bucket, what, NULL))
        return CM_ERR_INVAL;
    return meta_call(cl, peer, method, t, body, len, done, arg);
}

cm_err nd_meta_put_batch(nd_client *cl, const nd_peer *peer, const char *bucket,
                         const uint8_t *body, size_t len, nd_done_fn done, void *arg)
{
    return meta_batch(cl, peer, "PUT", "recs", bucket, body, len, done, arg);
}

cm_err nd_meta_get_batch(nd_client *cl, const nd_peer *peer, const char *bucket,
                         const uint8_t *body, size_t len, nd_done_fn done, void *arg)
{
    return meta_batch(cl, peer, "POST", "recget", bucket, body, len, done, arg);
}

cm_err nd_meta_put_fenced(nd_client *cl, const nd_peer *peer, const nd_part *p, uint64_t fence,
                          const uint8_t *rec, size_t len, nd_done_fn done, void *arg)
{
    char t[META_TARGET];
    size_t n;
    if (!bucket_ok(p->bucket) || len == 0 || len > ND_META_MAX || fence == 0 ||
        !(n = meta_target(t, sizeof(t), p->bucket, "rec", p)))
        return CM_ERR_INVAL;
    snprintf(t + n, sizeof(t) - n, "&fence=%" PRIu64, fence);
    return meta_call(cl, peer, "PUT", t, rec, len, done, arg);
}

cm_err nd_meta_list(nd_client *cl, const nd_peer *peer, const nd_part *p, const char *prefix,
                    const char *after, size_t max, nd_done_fn done, void *arg)
{
    char t[META_TARGET];
    size_t n;
    if (!bucket_ok(p->bucket) || max == 0 || !(n = meta_target(t, sizeof(t), p->bucket, "list", p)))
        return CM_ERR_INVAL;
    n += (size_t)snprintf(t + n, sizeof(t) - n, "&max=%zu", CM_MIN(max, (size_t)ND_META_LIST_MAX));
    if ((prefix && *prefix && add_param(t, sizeof(t), &n, "prefix", prefix) != 0) ||
        (after && add_param(t, sizeof(t), &n, "after", after) != 0))
        return CM_ERR_INVAL;
    return meta_call(cl, peer, "GET", t, NULL, 0, done, arg);
}

cm_err nd_meta_merkle(nd_client *cl, const nd_peer *peer, const nd_part *p, int depth,
                      nd_done_fn done, void *arg)
{
    char t[META_TARGET];
    size_t n;
    if (!bucket_ok(p->bucket) || depth < 1 || depth > MD_MERKLE_MAX_DEPTH ||
        !(n = meta_target(t, sizeof(t), p->bucket, "merkle", p)))
        return CM_ERR_INVAL;
    snprintf(t + n, sizeof(t) - n, "&depth=%d", depth);
    return meta_call(cl, peer, "GET", t, NULL, 0, done, arg);
}

cm_err nd_meta_leaf_keys(nd_client *cl, const nd_peer *peer, const nd_part *p, int depth,
                         const uint32_t *leaves, size_t nleaves, nd_done_fn done, void *arg)
{
    char t[META_TARGET];
    size_t n;
    if (!bucket_ok(p->bucket) || depth < 1 || depth > MD_MERKLE_MAX_DEPTH || nleaves == 0 ||
        nleaves > ((size_t)1 << (4 * depth)) ||
        !(n = meta_target(t, sizeof(t), p->bucket, "leafkeys", p)))
        return CM_ERR_INVAL;
    snprintf(t + n, sizeof(t) - n, "&depth=%d", depth);
    uint8_t *body = malloc(4 * nleaves);
    if (!body)
        return CM_ERR_NOMEM;
    for (size_t i = 0; i < nleaves; i++)
        cm_put_be32(body + 4 * i, leaves[i]);
    cm_err e = meta_call(cl, peer, "POST", t, body, 4 * nleaves, done, arg);
    free(body);
    return e;
}

cm_err nd_meta_tombs(nd_client *cl, const nd_peer *peer, const nd_part *p, uint64_t before,
                     const char *after, size_t max, nd_done_fn done, void *arg)
{
    char t[META_TARGET];
    size_t n;
    if (!bucket_ok(p->bucket) || before == 0 || max == 0 || max > ND_META_LIST_MAX ||
        (after && strlen(after) > MD_MAX_KEY) ||
        !(n = meta_target(t, sizeof(t), p->bucket, "tombs", p)))
        return CM_ERR_INVAL;
    n += (size_t)snprintf(t + n, sizeof(t) - n, "&before=%" PRIu64 "&max=%zu", before, max);
    if (after && add_param(t, sizeof(t), &n, "after", after) != 0)
        return CM_ERR_INVAL;
    return meta_call(cl, peer, "GET", t, NULL, 0, done, arg);
}

cm_err nd_meta_tomb_drop(nd_client *cl, const nd_peer *peer, const nd_part *p, uint64_t mark,
                         const md_rec_info *infos, size_t ninfos, nd_done_fn done, void *arg)
{
    char t[META_TARGET];
    size_t n;
    if (!bucket_ok(p->bucket) || mark == 0 || ninfos == 0 || ninfos > ND_META_LIST_MAX ||
        !(n = meta_target(t, sizeof(t), p->bucket, "tombdrop", p)))
        return CM_ERR_INVAL;
    snprintf(t + n, sizeof(t) - n, "&mark=%" PRIu64, mark);
    uint8_t *body = malloc(ninfos * MD_REC_INFO_ENC_MAX), *w = body;
    if (!body)
        return CM_ERR_NOMEM;
    for (size_t i = 0; i < ninfos; i++)
        w += md_rec_info_encode(&infos[i], w);
    cm_err e = meta_call(cl, peer, "POST", t, body, (size_t)(w - body), done, arg);
    free(body);
    return e;
}

cm_err nd_meta_names(nd_client *cl, const nd_peer *peer, const uint8_t (*ids)[16], size_t n,
                     nd_done_fn done, void *arg)
{
    char t[META_TARGET];
    /* Not a partition's call: "-" (no bucket's name) fills the bucket place of the route. */
    if (n == 0 || n > ND_NAMES_MAX || !meta_target(t, sizeof(t), "-", "names", NULL))
        return CM_ERR_INVAL;
    return meta_call(cl, peer, "POST", t, (const uint8_t *)ids, 16 * n, done, arg);
}

/* A lock change as the cond route carries it (lock=, and a layout swap's hpart and hold): 0, or
 * -1 when it is none of those, or comes with another condition. */
static int lock_params(const md_cond *c, int del, char *t, size_t cap, size_t *tl)
{
    char v[2 * ND_CELLS_MAX + 1];
    uint8_t raw[ND_CELLS_MAX];
    int lc = c->lock_change, layout = lc == MD_COND_LOCK_LAYOUT;
    if (del || c->if_none_match_star || c->if_match || c->unlocked || c->noncurrent ||
        !((lc >= 1 && lc <= 3) || lc == MD_COND_LOCK_KEEP || layout) ||
        (layout && (!c->heal_old || c->heal_part >= ND_PARTS_MAX || c->heal_old->k == 0 ||
                    c->heal_old->k + c->heal_old->m > MD_MAX_CELLS)))
        return -1;
    /* bits 1, 2: MD_COND_LOCK_*; 4: governance bypassed; 8 and 16 alone */
    snprintf(v, sizeof(v), "%d", lc | (c->bypass_governance && lc <= 3 ? 4 : 0));
    if (add_param(t, cap, tl, "lock", v) != 0)
        return -1;
    if (!layout)
        return 0;
    const md_layout *l = c->heal_old; /* the wire form nd_meta.c's query_layout reads */
    size_t cells = (size_t)l->k + l->m, n = 26 + 3 * cells;
    memcpy(raw, l->blob, 16);
    cm_put_be64(raw + 16, l->size);
    raw[24] = l->k, raw[25] = l->m;
    for (size_t i = 0; i < cells; i++) {
        raw[26 + 3 * i] = l->drives[i];
        raw[27 + 3 * i] = (uint8_t)(l->nodes[i] >> 8), raw[28 + 3 * i] = (uint8_t)l->nodes[i];
    }
    cm_hex_encode(raw, n, v);
    char part[12];
    snprintf(part, sizeof(part), "%" PRIu32, c->heal_part);
    return add_param(t, cap, tl, "hpart", part) != 0 || add_param(t, cap, tl, "hold", v) != 0 ? -1
                                                                                              : 0;
}

size_t nd_cond_target(const char *bucket, int del, const md_cond *cond, char *t, size_t cap)
{
    int n = bucket_ok(bucket) ? snprintf(t, cap, ND_PREFIX "/cond/%s", bucket) : -1;
    size_t tl = n > 0 && (size_t)n < cap ? (size_t)n : 0;
    if (!tl || !cond ||
        (!cond->if_none_match_star && !cond->if_match && !cond->unlocked && !cond->noncurrent &&
         !cond->lock_change) ||
        (cond->noncurrent && cond->successor_ms < 0) ||
        (cond->if_match && strlen(cond->if_match) > MD_MAX_KEY) ||
        (cond->noncurrent_key && (!cond->noncurrent || !*cond->noncurrent_key ||
                                  strlen(cond->noncurrent_key) > MD_MAX_KEY)))
        return 0;
    if (cond->lock_change)
        return lock_params(cond, del, t, cap, &tl) == 0 ? tl : 0;
    int bad = 0;
    if (cond->if_none_match_star)
        bad |= add_param(t, cap, &tl, "inm", "1");
    if (cond->if_match)
        bad |= add_param(t, cap, &tl, "ifmatch", cond->if_match);
    if (cond->unlocked)
        bad |= add_param(t, cap, &tl, "unlocked", cond->bypass_governance ? "2" : "1");
    if (cond->noncurrent) {
        char v[2][24];
        snprintf(v[0], sizeof(v[0]), "%" PRId64, cond->successor_ms);
        snprintf(v[1], sizeof(v[1]), "%" PRIu32, cond->newer_min);
        bad |= add_param(t, cap, &tl, "ncsucc", v[0]);
        bad |= add_param(t, cap, &tl, "ncnewer", v[1]);
        if (cond->noncurrent_key)
            bad |= add_param(t, cap, &tl, "nckey", cond->noncurrent_key);
    }
    if (del)
        bad |= add_param(t, cap, &tl, "del", "1");
    return bad ? 0 : tl;
}

cm_err nd_cond_write(nd_client *cl, const nd_peer *peer, const char *bucket, const uint8_t *rec,
                     size_t len, int del, const md_cond *cond, nd_done_fn done, void *arg)
{
    char t[META_TARGET];
    if (len == 0 || len > ND_META_MAX || !nd_cond_target(bucket, del, cond, t, sizeof(t)))
        return CM_ERR_INVAL;
    return meta_call(cl, peer, "POST", t, rec, len, done, arg);
}

void nd_op_resume(nd_op *op)
{
    if (op->call)
        net_call_resume(op->call);
}
