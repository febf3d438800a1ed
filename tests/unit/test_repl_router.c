/*
 * test_repl_router.c - the meta routes on the wire (bad CRCs, the cond route and a replay of it,
 * RPC edges), the router over replicas, hint delivery and its bounds, a record read or merge that
 * does not wait for a busy pool, the layout fence (and its window between a write's admission and
 * its commit), and a small throughput figure; over the three nodes of rp_trio.h. The backends' own
 * suites are in test_repl.c, the batched record writes and reads in test_repl_router_batch.c.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cm_checksum.h"
#include "cm_util.h"
#include "cu_hold.h"
#include "cu_main.h"
#include "nd_int.h"
#include "rp.h"
#include "rp_trio.h"

/* ---- the meta routes on the wire ---- */

typedef struct {
    int done;
    nd_result r;
    char msg[128];
} nres;

static void nd_cb(void *arg, const nd_result *r)
{
    nres *t = arg;
    t->done++;
    t->r = *r;
    snprintf(t->msg, sizeof(t->msg), "%s", r->message ? r->message : "");
    t->r.message = t->msg;
    t->r.body = NULL; /* lives during the callback only */
    E.pending--;
}

static nres nd_wait(cm_err rc, nres *t)
{
    CU_ASSERT_EQUAL(rc, CM_OK);
    if (rc == CM_OK) {
        E.pending++;
        loop_while(pending, NULL);
    }
    return *t;
}

static void raw_done(net_call *call, cm_err e, void *arg)
{
    nres *t = arg;
    const char *err = net_call_resp_header(call, "X-Cairn-Error");
    t->done++;
    t->r.err = e;
    t->r.status = net_call_status(call);
    snprintf(t->msg, sizeof(t->msg), "%s", err ? err : "");
    E.pending--;
}

/* A call of n1's to the node at port with body rec, signed by hand with this nonce and the date
 * now; its X-Cairn-Crc32c the body's, xor flip. */
static nres raw_call(int port, const char *method, const char *target, const char *nonce,
                     const uint8_t *rec, size_t len, uint32_t flip)
{
    static const net_call_handler h = {NULL, NULL, raw_done};
    char date[24], lenstr[24], crc[9], sig[65], auth[96];
    snprintf(date, sizeof(date), "%lld", (long long)(cm_now_ms() / 1000));
    snprintf(lenstr, sizeof(lenstr), "%zu", len);
    snprintf(crc, sizeof(crc), "%08x", cm_crc32c(0, rec, len) ^ flip);
    nd_canon c = {method, target, "n1", "n2", date, nonce, lenstr, crc};
    cm_hmac_key k;
    cm_hmac_key_init(&k, secret, SECRET_LEN);
    nd_sign(&k, &c, sig);
    cm_hmac_key_release(&k);
    snprintf(auth, sizeof(auth), "CAIRN-HMAC-SHA256 %s", sig);
    net_call *call;
    nres t = {0};
    CU_ASSERT_EQUAL_FATAL(
        net_call_new(nd_client_net(E.cl), "127.0.0.1", port, method, target, &call), CM_OK);
    net_call_header(call, "X-Cairn-Node", "n1");
    net_call_header(call, "X-Cairn-Date", date);
    net_call_header(call, "X-Cairn-Nonce", nonce);
    net_call_header(call, "X-Cairn-Crc32c", crc);
    net_call_header(call, "Authorization", auth);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, rec, len);
    net_call_body(call, len, b);
    evbuffer_free(b);
    net_call_start(call, &h, &t, 0);
    E.pending++;
    loop_while(pending, NULL);
    return t;
}

/* PUT a record whose X-Cairn-Crc32c does not match its body, correctly signed otherwise. */
static nres put_bad_crc(int port, const uint8_t *rec, size_t len)
{
    return raw_call(port, "PUT", ND_PREFIX "/meta/b/rec", "00112233445566778899aabbccddeeff", rec,
                    len, 1);
}

static nres cond_call(const char *bucket, const char *key, const char *etag, int del,
                      const md_cond *cond)
{
    nres t = {0};
    nd_peer n2 = {"n2", "127.0.0.1", E.nodes[1].rpc.port, 0};
    md_object o = {.key = (char *)key, .size = 1};
    snprintf(o.etag, sizeof(o.etag), "%s", etag);
    uint8_t *rec;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &rec, &len), CM_OK);
    t = nd_wait(nd_cond_write(E.cl, &n2, bucket, rec, len, del, cond, nd_cb, &t), &t);
    free(rec);
    return t;
}

/* A lock change of b/key sent to n2: mode and until (retention), hold. */
static nres lock_call(const char *key, uint8_t mode, int64_t until, uint8_t hold,
                      const md_cond *cond)
{
    nres t = {0};
    nd_peer n2 = {"n2", "127.0.0.1", E.nodes[1].rpc.port, 0};
    md_object o = {
        .key = (char *)key, .lock_mode = mode, .lock_until_ms = until, .legal_hold = hold};
    uint8_t *rec;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &rec, &len), CM_OK);
    t = nd_wait(nd_cond_write(E.cl, &n2, "b", rec, len, 0, cond, nd_cb, &t), &t);
    free(rec);
    return t;
}

/* A conditional write sent again with the same signature (captured traffic replayed) is answered
 * as its first run was and not run again: an If-None-Match create replayed after its key was
 * deleted would otherwise bring the old object back. */
static void t_cond_replay(void)
{
    env_up(1, 2000);
    const char *nonce = "0123456789abcdef0123456789abcdef";
    md_object o = {.key = "rk", .size = 1, .etag = "e1"};
    md_cond m1 = {.if_match = "e1"};
    md_object got;
    uint8_t *rec;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&o, &rec, &len), CM_OK);
    nres t = raw_call(E.nodes[1].rpc.port, "POST", ND_PREFIX "/cond/b?inm=1", nonce, rec, len, 0);
    CU_ASSERT_EQUAL(t.r.status, 200);
    CU_ASSERT_EQUAL(md_object_get(E.nodes[1].md, "b", "rk", &got), CM_OK);
    md_object_release(&got);
    CU_ASSERT_EQUAL(cond_call("b", "rk", "", 1, &m1).r.err, CM_OK); /* deleted, If-Match e1 */
    t = raw_call(E.nodes[1].rpc.port, "POST", ND_PREFIX "/cond/b?inm=1", nonce, rec, len, 0);
    CU_ASSERT_EQUAL(t.r.status, 200); /* the first run's answer */
    CU_ASSERT_EQUAL(md_object_get(E.nodes[1].md, "b", "rk", &got), CM_ERR_NOTFOUND);
    t = raw_call(E.nodes[1].rpc.port, "POST", ND_PREFIX "/cond/b?inm=1",
                 "fedcba9876543210fedcba9876543210", rec, len, 0); /* another nonce: it runs */
    CU_ASSERT_EQUAL(t.r.status, 200);
    CU_ASSERT_EQUAL(md_object_get(E.nodes[1].md, "b", "rk", &got), CM_OK);
    md_object_release(&got);
    free(rec);
    env_down();
}

/* The conditional-write route: the condition, the record and the caller reach the node's
 * callback, and its outcome comes back as the call's error. */
static void t_cond_route(void)
{
    env_up(1, 2000);
    md_cond inm = {.if_none_match_star = 1}, m1 = {.if_match = "e1"}, m2 = {.if_match = "e2"},
            none = {0};
    CU_ASSERT_EQUAL(cond_call("b", "ck", "e1", 0, &inm).r.err, CM_OK);
    nres t = cond_call("b", "ck", "e9", 0, &inm);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(t.r.status, 412);
    CU_ASSERT_EQUAL(cond_call("b", "ck", "e9", 0, &m2).r.err, CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(cond_call("b", "ck", "e2", 0, &m1).r.err, CM_OK); /* If-Match e1 */
    md_object got;
    CU_ASSERT_EQUAL_FATAL(md_object_get(E.nodes[1].md, "b", "ck", &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got.etag, "e2");
    md_object_release(&got);
    CU_ASSERT_EQUAL(cond_call("b", "ck", "", 1, &m1).r.err, CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(cond_call("b", "ck", "", 1, &m2).r.err, CM_OK); /* DELETE If-Match e2 */
    CU_ASSERT_EQUAL(md_object_get(E.nodes[1].md, "b", "ck", &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(cond_call("b", "ck", "e3", 0, &m2).r.err, CM_ERR_NOTFOUND);
    t = cond_call("elsewhere", "ck", "e3", 0, &inm); /* not the leader */
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_CONFLICT);
    CU_ASSERT_STRING_EQUAL(t.msg, "not the partition's leader");
    nd_peer n2 = {"n2", "127.0.0.1", E.nodes[1].rpc.port, 0};
    uint8_t one = 1;
    CU_ASSERT_EQUAL(nd_cond_write(E.cl, &n2, "b", &one, 1, 0, &none, nd_cb, &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(nd_cond_write(E.cl, &n2, "b", &one, 1, 0, NULL, nd_cb, &t), CM_ERR_INVAL);
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_cond_write(E.cl, &n2, "b", (const uint8_t *)"junk", 4, 0, &inm, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_CORRUPT); /* not a record: refused before the callback */
    /* unlocked (and its bypass) travel: a held record stays, a GOVERNANCE one goes with bypass */
    md_object held = {.key = "lk", .size = 1, .legal_hold = 1};
    md_object gov = {.key = "lg", .size = 1, .lock_mode = MD_LOCK_GOVERNANCE};
    gov.lock_until_ms = cm_now_ms() + 3600 * 1000;
    CU_ASSERT_EQUAL(md_object_put(E.nodes[1].md, "b", &held, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(md_object_put(E.nodes[1].md, "b", &gov, NULL, NULL, NULL), CM_OK);
    md_cond unl = {.unlocked = 1}, byp = {.unlocked = 1, .bypass_governance = 1};
    CU_ASSERT_EQUAL(cond_call("b", "lk", "", 1, &byp).r.err, CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(cond_call("b", "lg", "", 1, &unl).r.err, CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(md_object_get(E.nodes[1].md, "b", "lg", &got), CM_OK);
    md_object_release(&got);
    CU_ASSERT_EQUAL(cond_call("b", "lg", "", 1, &byp).r.err, CM_OK);
    CU_ASSERT_EQUAL(md_object_get(E.nodes[1].md, "b", "lg", &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_object_get(E.nodes[1].md, "b", "lk", &got), CM_OK);
    md_object_release(&got);
    /* a lock change travels (lock=): the change in the record, which parts, and the bypass */
    md_cond ret = {.lock_change = MD_COND_LOCK_RETENTION},
            ret_byp = {.lock_change = MD_COND_LOCK_RETENTION, .bypass_governance = 1},
            hold = {.lock_change = MD_COND_LOCK_HOLD};
    int64_t until = cm_now_ms() + 7200 * 1000;
    CU_ASSERT_EQUAL(md_object_put(E.nodes[1].md, "b", &gov, NULL, NULL, NULL), CM_OK);
    CU_ASSERT_EQUAL(lock_call("lg", MD_LOCK_GOVERNANCE, 1, 0, &ret).r.err, CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(lock_call("lg", MD_LOCK_GOVERNANCE, 1, 0, &ret_byp).r.err, CM_OK);
    CU_ASSERT_EQUAL(lock_call("lg", MD_LOCK_COMPLIANCE, until, 0, &ret).r.err, CM_OK);
    CU_ASSERT_EQUAL(lock_call("lg", MD_LOCK_GOVERNANCE, until + 1000, 0, &ret_byp).r.err,
                    CM_ERR_LOCKED);
    CU_ASSERT_EQUAL(lock_call("lg", 0, 0, 1, &hold).r.err, CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_object_get(E.nodes[1].md, "b", "lg", &got), CM_OK);
    CU_ASSERT(got.lock_mode == MD_LOCK_COMPLIANCE && got.lock_until_ms == until && got.legal_hold);
    md_object_release(&got);
    CU_ASSERT_EQUAL(nd_cond_write(E.cl, &n2, "b", &one, 1, 1, &hold, nd_cb, &t), CM_ERR_INVAL);
    /* a swap keeping the lock fields (lock=8): the record's tags land, its lock fields do not */
    md_cond keep = {.lock_change = MD_COND_LOCK_KEEP, .bypass_governance = 1};
    md_meta tag = {"t", "1"};
    md_object tagged = {.key = "lg", .tags = &tag, .ntags = 1};
    uint8_t *rec;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&tagged, &rec, &len), CM_OK);
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_cond_write(E.cl, &n2, "b", rec, len, 0, &keep, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_OK);
    CU_ASSERT_EQUAL(nd_cond_write(E.cl, &n2, "b", rec, len, 1, &keep, nd_cb, &t), CM_ERR_INVAL);
    free(rec);
    CU_ASSERT_EQUAL_FATAL(md_object_get(E.nodes[1].md, "b", "lg", &got), CM_OK);
    CU_ASSERT(got.lock_mode == MD_LOCK_COMPLIANCE && got.lock_until_ms == until && got.legal_hold);
    CU_ASSERT(got.ntags == 1 && strcmp(got.tags[0].name, "t") == 0);
    md_object_release(&got);
    /* a repair's layout swap (lock=16, hpart, hold): the old cells travel, the leader compares */
    md_part part = {.number = 1, .size = 10};
    md_layout old = {.size = 10, .k = 2, .m = 1, .drives = {0, 1, 0xFF}, .nodes = {1, 2, 777}};
    memset(old.blob, 0x5c, 16);
    part.layout = old;
    md_object healed = {.key = "hl", .size = 10, .parts = &part, .nparts = 1};
    CU_ASSERT_EQUAL_FATAL(md_object_put(E.nodes[1].md, "b", &healed, NULL, NULL, NULL), CM_OK);
    part.layout.drives[2] = 3, part.layout.nodes[2] = 258;
    md_cond lay = {.lock_change = MD_COND_LOCK_LAYOUT, .heal_part = 0, .heal_old = &old};
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&healed, &rec, &len), CM_OK);
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_cond_write(E.cl, &n2, "b", rec, len, 0, &lay, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_OK);
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_cond_write(E.cl, &n2, "b", rec, len, 0, &lay, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_PRECONDITION); /* the record names the new cells now */
    CU_ASSERT_EQUAL(nd_cond_write(E.cl, &n2, "b", rec, len, 1, &lay, nd_cb, &t), CM_ERR_INVAL);
    lay.if_none_match_star = 1;
    CU_ASSERT_EQUAL(nd_cond_write(E.cl, &n2, "b", rec, len, 0, &lay, nd_cb, &t), CM_ERR_INVAL);
    lay.if_none_match_star = 0, lay.heal_old = NULL;
    CU_ASSERT_EQUAL(nd_cond_write(E.cl, &n2, "b", rec, len, 0, &lay, nd_cb, &t), CM_ERR_INVAL);
    free(rec);
    CU_ASSERT_EQUAL_FATAL(md_object_get(E.nodes[1].md, "b", "hl", &got), CM_OK);
    CU_ASSERT(got.nparts == 1 && md_layout_same_cells(&got.parts[0].layout, &part.layout));
    md_object_release(&got);
    env_down();
}

/* The cond route's query (nd_cond_parse): what nd_cond_write sends parses back to the same
 * condition; a malformed or mixed one is refused, never read as another condition. */
static void t_cond_parse(void)
{
    static const char *const bad[] = {
        "",
        "inm=2",
        "inm=1&del=7",
        "unlocked=3",
        "unlocked=-1",
        "ncsucc=5",
        "ncnewer=1",
        "ncsucc=99999999999999999999&ncnewer=1",
        "ncsucc=1&ncnewer=4294967296",
        "inm=18446744073709551617",
        "lock=0",
        "lock=4",
        "lock=9",
        "lock=12",
        "lock=24",
        "lock=1&del=1",
        "lock=1&inm=1",
        "lock=8&unlocked=1",
        "lock=2&ncsucc=1&ncnewer=1",
        "lock=16",
        "lock=16&hpart=0",
        "lock=16&hpart=0&hold=zz",
        "lock=16&hpart=10000&hold="
        "5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c000000000000000a0201000001010002ff0309",
        "lock=16&hpart=0&hold=5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c000000000000000a0201000001",
        "lock=16&hpart=0&hold=5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c000000000000000a0001",
        "inm=1&hpart=0",
        "inm=1&hold=00",
        "ifmatch=%zz",
        "ifmatch=a%00b",
        "lock=1x",
        "lock=+1",
        "nckey=k&inm=1",
        "ncsucc=1&ncnewer=1&nckey=",
        "ncsucc=1&ncnewer=1&nckey=a%00b",
        "ncsucc=1&ncnewer=1&nckey=%zz",
        "lock=1&nckey=k"};
    nd_cond_args a;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (!nd_cond_parse(bad[i], &a))
            CU_FAIL(bad[i]);
    /* a version's key longer than any S3 key */
    char q[2 * MD_MAX_KEY], lk[MD_MAX_KEY + 1];
    memset(q, 0, sizeof(q));
    int ql = snprintf(q, sizeof(q), "ncsucc=1&ncnewer=1&nckey=");
    memset(q + ql, 'k', MD_MAX_KEY + 1);
    CU_ASSERT_PTR_NOT_NULL(nd_cond_parse(q, &a));
    memset(lk, 'k', MD_MAX_KEY), lk[MD_MAX_KEY] = 0;
    lk[0] = '&', lk[1] = '=', lk[2] = '%', lk[3] = (char)0xC3, lk[4] = (char)0xA9;
    CU_ASSERT_PTR_NULL(nd_cond_parse("lock=16&hpart=9999&hold=5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c"
                                     "000000000000000a0201000001010002ff0309&x=1",
                                     &a));
    md_layout old = {.size = 10, .k = 2, .m = 1, .drives = {0, 1, 0xFF}, .nodes = {1, 258, 9}};
    memset(old.blob, 0x5c, 16);
    md_cond good[] = {
        {.if_none_match_star = 1},
        {.if_match = "e&=?%1", .unlocked = 1, .bypass_governance = 1},
        {.noncurrent = 1, .successor_ms = INT64_MAX, .newer_min = UINT32_MAX},
        {.noncurrent = 1, .successor_ms = 5, .newer_min = 1, .noncurrent_key = lk},
        {.lock_change = MD_COND_LOCK_RETENTION | MD_COND_LOCK_HOLD, .bypass_governance = 1},
        {.lock_change = MD_COND_LOCK_KEEP},
        {.lock_change = MD_COND_LOCK_LAYOUT, .heal_part = 9999, .heal_old = &old}};
    char target[8192];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int del = i == 2;
        CU_ASSERT_FATAL(nd_cond_target("b", del, &good[i], target, sizeof(target)) > 0);
        const char *why = nd_cond_parse(strchr(target, '?') + 1, &a);
        CU_ASSERT_PTR_NULL_FATAL(why);
        md_cond *c = &a.cond;
        CU_ASSERT(a.del == del && c->if_none_match_star == good[i].if_none_match_star &&
                  c->unlocked == good[i].unlocked && c->noncurrent == good[i].noncurrent &&
                  c->successor_ms == good[i].successor_ms && c->newer_min == good[i].newer_min &&
                  c->lock_change == good[i].lock_change &&
                  c->bypass_governance == good[i].bypass_governance &&
                  c->heal_part == good[i].heal_part);
        CU_ASSERT(good[i].if_match ? c->if_match && !strcmp(c->if_match, good[i].if_match)
                                   : !c->if_match);
        CU_ASSERT(good[i].noncurrent_key
                      ? c->noncurrent_key && !strcmp(c->noncurrent_key, good[i].noncurrent_key)
                      : !c->noncurrent_key);
        CU_ASSERT(good[i].heal_old ? c->heal_old && md_layout_same_cells(c->heal_old, &old) &&
                                         c->heal_old->nodes[2] == 9
                                   : !c->heal_old);
    }
    md_cond mixed = {.lock_change = MD_COND_LOCK_HOLD, .unlocked = 1}, odd = {.lock_change = 4};
    CU_ASSERT_EQUAL(nd_cond_target("b", 0, &mixed, target, sizeof(target)), 0);
    CU_ASSERT_EQUAL(nd_cond_target("b", 0, &odd, target, sizeof(target)), 0);
    md_cond keyed = {.if_none_match_star = 1, .noncurrent_key = "k"},
            blank = {.noncurrent = 1, .successor_ms = 1, .noncurrent_key = ""};
    CU_ASSERT_EQUAL(nd_cond_target("b", 0, &keyed, target, sizeof(target)), 0);
    CU_ASSERT_EQUAL(nd_cond_target("b", 1, &blank, target, sizeof(target)), 0);
}

static void t_rpc_edges(void)
{
    env_up(1, 2000);
    nd_peer n2 = {"n2", "127.0.0.1", E.nodes[1].rpc.port, 0};
    md_object a = version("k", 1000, 1, NULL);
    uint8_t *rec;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&a, &rec, &len), CM_OK);
    nres t = {0};
    /* a client with another secret is refused (the meta routes are authenticated) */
    static const uint8_t other[] = "not-the-secret";
    nd_client_config cc = {0};
    nd_client *bad;
    cc.node_id = "n9";
    cc.secret = other;
    cc.secret_len = sizeof(other) - 1;
    CU_ASSERT_EQUAL_FATAL(nd_client_new(E.base, &cc, &bad), CM_OK);
    t = nd_wait(nd_meta_put(bad, &n2, "b", rec, len, NULL, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_AUTH);
    CU_ASSERT_EQUAL(t.r.status, 401);
    memset(&t, 0, sizeof(t));
    nd_part p = {"b", 0, 1};
    t = nd_wait(nd_meta_list(bad, &n2, &p, NULL, NULL, 10, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_AUTH);
    nd_client_free(bad);
    md_object got;
    CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", "k", &got), CM_ERR_NOTFOUND); /* nothing */
    /* a body whose CRC32C does not match is refused before anything is applied */
    t = put_bad_crc(E.nodes[1].rpc.port, rec, len);
    CU_ASSERT_EQUAL(t.r.status, 400);
    CU_ASSERT_STRING_EQUAL(t.msg, "CM_ERR_DIGEST");
    CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", "k", &got), CM_ERR_NOTFOUND);
    /* a body that is not a record; a record under an unknown bucket (told apart) */
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_meta_put(E.cl, &n2, "b", (const uint8_t *)"junk", 4, NULL, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_CORRUPT);
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_meta_put(E.cl, &n2, "zz", rec, len, NULL, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(t.r.no_bucket, 1);
    /* the merge itself, then a leaf beyond the tree and a bad depth */
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_meta_put(E.cl, &n2, "b", rec, len, NULL, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_OK);
    CU_ASSERT_EQUAL(t.r.applied, 1);
    uint32_t leaf = 16;
    CU_ASSERT_EQUAL(nd_meta_leaf_keys(E.cl, &n2, &p, 1, &leaf, 1, nd_cb, &t), CM_OK);
    memset(&t, 0, sizeof(t));
    t = nd_wait(CM_OK, &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_INVAL);
    CU_ASSERT_EQUAL(nd_meta_merkle(E.cl, &n2, &p, 0, nd_cb, &t), CM_ERR_INVAL);
    free(rec);
    /* a node without a store answers every meta route 503 */
    tnode bare;
    memset(&bare, 0, sizeof(bare));
    nd_service_config sc = {0};
    sc.node_id = "n4";
    sc.secret = secret;
    sc.secret_len = SECRET_LEN;
    cu_rpc_start(&bare.rpc, &sc);
    nd_peer n4 = {"n4", "127.0.0.1", bare.rpc.port, 0};
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_meta_get(E.cl, &n4, "b", "k", nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(t.r.status, 503);
    md_cond inm = {.if_none_match_star = 1}; /* no callback: the cond route is unavailable */
    memset(&t, 0, sizeof(t));
    t = nd_wait(nd_cond_write(E.cl, &n4, "b", (const uint8_t *)"junk", 4, 0, &inm, nd_cb, &t), &t);
    CU_ASSERT_EQUAL(t.r.err, CM_ERR_UNAVAILABLE);
    node_stop(&bare);
    env_down();
}

/* ---- throughput (RP_BENCH_N records; a small default keeps CI fast) ---- */

typedef struct {
    rp_replica *r;
    int next, total, inflight, failed;
    char key[32];
} bench;

static void bench_next(bench *b);

static void bench_done(void *arg, const rp_result *res)
{
    bench *b = arg;
    b->inflight--;
    b->failed += res->err != CM_OK;
    E.pending--;
    bench_next(b);
}

static void bench_next(bench *b)
{
    while (b->inflight < 16 && b->next < b->total) {
        char key[32];
        snprintf(key, sizeof(key), "bench-%06d", b->next++);
        md_object o = version(key, 1000 + (uint64_t)b->next, 1, NULL);
        rp_part p = part_of(key);
        p.shard = 0, p.nshards = 1;
        if (rp_replica_put(b->r, &p, &o, NULL, bench_done, b) == CM_OK)
            b->inflight++, E.pending++;
        else
            b->failed++;
    }
}

static double bench_puts(rp_replica *r, int n)
{
    bench b = {.r = r};
    int64_t t0 = cm_monotonic_ms();
    while (b.total < n && !E.hung) { /* in steps of 1,000: each within the loop's guard */
        b.total = CM_MIN(b.total + 1000, n);
        bench_next(&b);
        loop_while(pending, NULL);
    }
    CU_ASSERT_EQUAL(b.failed, 0);
    return n * 1000.0 / (double)CM_MAX(cm_monotonic_ms() - t0, 1);
}

static void t_bench(void)
{
    const char *env_n = getenv("RP_BENCH_N");
    const char *env_w = getenv("RP_BENCH_WORKERS");
    int n = env_n ? atoi(env_n) : 500;
    nworkers = env_w ? atoi(env_w) : 2;
    env_up(1, 2000);
    double local = bench_puts(E.local, n), remote = bench_puts(E.to_n2, n);
    /* list everything back over the RPC, in pages of RP_LIST_MAX */
    rp_part all = {"b", 0, 1, 0};
    char after[32] = "";
    int got = 0, pages = 0;
    int64_t t0 = cm_monotonic_ms();
    for (int more = 1; more;) {
        tres t = {0};
        wait_for(&t, rp_replica_list(E.to_n2, &all, NULL, after[0] ? after : NULL, RP_LIST_MAX,
                                     done_cb, &t));
        CU_ASSERT_EQUAL_FATAL(t.err, CM_OK);
        got += (int)t.nrecs;
        if (t.nrecs)
            snprintf(after, sizeof(after), "%s", t.recs[t.nrecs - 1].key);
        more = t.truncated;
        pages++;
        tres_free(&t);
    }
    int64_t list_ms = cm_monotonic_ms() - t0;
    CU_ASSERT_EQUAL(got, n);
    t0 = cm_monotonic_ms();
    tres t = {0};
    wait_for(&t, rp_replica_merkle(E.to_n2, &all, 3, done_cb, &t));
    CU_ASSERT_EQUAL(t.nleaves, 4096);
    tres_free(&t);
    int64_t merkle_ms = cm_monotonic_ms() - t0;
    printf("\n    repl bench: %d records, 16 in flight, %d md workers: merge-put local %.0f/s, "
           "remote %.0f/s; remote list %d pages in %lld ms; remote merkle depth 3 in %lld ms\n",
           n, nworkers, local, remote, pages, (long long)list_ms, (long long)merkle_ms);
    env_down();
    nworkers = 2;
}

/* ---- router ---- */

static void t_router(void)
{
    pl_topology *t;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 3, 2, &t), CM_OK); /* 9 nodes in 3 AZs */
    env_up(0, 300);
    rp_router *rt, *rt2;
    rp_replica *l5; /* n5's local backend, for a router on n5 */
    CU_ASSERT_EQUAL_FATAL(rp_replica_local_new(E.base, E.nodes[0].md, E.work, "n5", &l5), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_router_new(t, "n1", E.local, E.cl, &rt), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_router_new(t, "n5", l5, E.cl, &rt2), CM_OK);
    int local_seen = 0;
    for (uint32_t s = 0; s < 64; s++) {
        rp_part p = {"bkt", s, 64, 0};
        rp_replica *out[8], *out2[8];
        int n = rp_route(rt, &p, 3, 3, out);
        CU_ASSERT_EQUAL_FATAL(n, 6);
        CU_ASSERT_EQUAL(rp_route(rt2, &p, 3, 3, out2), 6);
        char azs[3][PL_NAME_MAX];
        for (int i = 0; i < n; i++) {
            int idx = pl_topology_find(t, out[i]->node_id);
            CU_ASSERT_FATAL(idx >= 0);
            CU_ASSERT_STRING_EQUAL(out[i]->node_id, out2[i]->node_id); /* the same everywhere */
            if (i < 3)
                snprintf(azs[i], sizeof(azs[i]), "%s", t->nodes[idx].az);
            for (int j = 0; j < i; j++)
                CU_ASSERT_PTR_NOT_EQUAL(out[i], out[j]); /* fallbacks distinct from homes */
            local_seen += out[i] == E.local;
        }
        CU_ASSERT(strcmp(azs[0], azs[1]) && strcmp(azs[0], azs[2]) && strcmp(azs[1], azs[2]));
        CU_ASSERT_PTR_EQUAL(rp_router_replica(rt, out[0]->node_id), out[0]);
    }
    CU_ASSERT(local_seen > 0); /* self resolves to the local backend */
    CU_ASSERT_PTR_NULL(rp_router_replica(rt, "nope"));
    rp_part p = {"bkt", 0, 1, 0};
    rp_replica *out[40];
    CU_ASSERT_EQUAL(rp_route(rt, &p, 10, 0, out), 9); /* more homes than nodes: every node */
    CU_ASSERT_EQUAL(rp_route(rt, &p, 3, 20, out), 9); /* every node once */
    rp_router_free(rt);
    rp_router_free(rt2);
    rp_replica_free(l5);
    pl_topology_free(t);
    env_down();
}

/* A layout of fewer nodes than N: rp_homes shrinks N to them, so every partition still has a
 * first home (anti-entropy and repair run there: cmd/cluster.c, cluster_repair.c), and it is the
 * first replica rp_route answers. */
static void t_small_layouts(void)
{
    env_up(0, 300);
    for (int nodes = 1; nodes <= 2; nodes++) {
        pl_topology *t;
        pl_map *m;
        rp_router *rt;
        CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(nodes, 1, 2, &t), CM_OK);
        CU_ASSERT_EQUAL_FATAL(pl_map_new(t, PL_MAP_HOMES, &m), CM_OK);
        CU_ASSERT_EQUAL_FATAL(rp_router_new(t, "n1", E.local, E.cl, &rt), CM_OK);
        int first[2] = {0, 0};
        for (uint32_t s = 0; s < 64; s++) {
            rp_part p = {"bkt", s, 64, 0};
            int homes[3];
            rp_replica *out[3];
            CU_ASSERT_EQUAL_FATAL(rp_homes(m, pl_partition_id("bkt", s), 3, homes), nodes);
            CU_ASSERT_EQUAL_FATAL(rp_route(rt, &p, 3, 0, out), nodes);
            CU_ASSERT_STRING_EQUAL(out[0]->node_id, t->nodes[homes[0]].id);
            first[homes[0]]++;
        }
        CU_ASSERT_EQUAL(first[0] + first[1], 64);
        if (nodes == 2) /* both nodes are the first home of some partitions */
            CU_ASSERT(first[0] > 0 && first[1] > 0);
        rp_router_free(rt);
        pl_map_free(m);
        pl_topology_free(t);
    }
    int homes[3];
    CU_ASSERT_EQUAL(rp_homes(NULL, 1, 3, homes), -(int)CM_ERR_INVAL);
    env_down();
}

/* The homes of (bkt, s) in t, as node ids in out (3 of them). */
static void homes_of(const pl_topology *t, uint32_t s, const char **out)
{
    pl_map *m;
    int homes[3];
    CU_ASSERT_EQUAL_FATAL(pl_map_new(t, PL_MAP_HOMES, &m), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_homes(m, pl_partition_id("bkt", s), 3, homes), 3);
    for (int i = 0; i < 3; i++)
        out[i] = t->nodes[homes[i]].id;
    pl_map_free(m);
}

static int same_set(const char **a, const char **b)
{
    int same = 1;
    for (int i = 0; i < 3; i++) {
        int in = 0;
        for (int j = 0; j < 3; j++)
            in |= strcmp(a[i], b[j]) == 0;
        same &= in;
    }
    return same;
}

/* The handoff (docs/replication.md, "Layout changes"): a 7th node joins a layout of 6; the
 * router of the new layout with the previous one gives a partition's previous homes exactly
 * while they differ from the new ones and it has not settled. A previous home the new layout
 * removed (n6) is gone: its partitions move, their previous homes are the two left. A layout
 * shrunk to one node moves nothing: that node is every home of both. */
static void t_router_handoff(void)
{
    pl_topology *t1, *t2, *t3;
    int idx;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 2, 2, &t1), CM_OK); /* n1..n6 in 3 AZs */
    CU_ASSERT_EQUAL_FATAL(pl_topology_clone(t1, &t2), CM_OK);
    t2->epoch = 2;
    CU_ASSERT_EQUAL_FATAL(pl_topology_add_node(t2, "n7", "127.0.0.1:9107", "az1", &idx), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_topology_add_drive(t2, idx, 0, 100, PL_UP), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_topology_add_drive(t2, idx, 1, 100, PL_UP), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_topology_clone(t1, &t3), CM_OK);
    t3->epoch = 2;
    t3->nodes[pl_topology_find(t3, "n6")].state = PL_REMOVED;
    env_up(0, 300);
    rp_router *rt, *plain, *rt3;
    CU_ASSERT_EQUAL_FATAL(rp_router_new(t2, "n1", E.local, E.cl, &rt), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_router_new(t2, "n1", E.local, E.cl, &plain), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_router_new(t3, "n1", E.local, E.cl, &rt3), CM_OK);
    CU_ASSERT_EQUAL(rp_router_handoff(rt), 0);
    CU_ASSERT_EQUAL_FATAL(rp_router_set_previous(rt, t1), CM_OK);
    CU_ASSERT_EQUAL(rp_router_set_previous(rt, t1), CM_ERR_INVAL); /* once */
    CU_ASSERT_EQUAL_FATAL(rp_router_set_previous(rt3, t1), CM_OK);
    CU_ASSERT_EQUAL(rp_router_handoff(rt), 1);
    int moved = 0, settled = -1, removed = 0;
    for (uint32_t s = 0; s < 64; s++) {
        rp_part p = {"bkt", s, 64, 0};
        const char *old[3], *now[3];
        rp_replica *out[3];
        homes_of(t1, s, old);
        homes_of(t2, s, now);
        int n = rp_route_prev(rt, &p, 3, out);
        CU_ASSERT_EQUAL(rp_route_prev(plain, &p, 3, out), 0); /* no previous layout */
        CU_ASSERT_EQUAL(rp_router_moving(rt, "bkt", s, 3), n > 0);
        if (same_set(old, now)) {
            CU_ASSERT_EQUAL(n, 0); /* a partition that stays costs no previous home */
            continue;
        }
        moved++;
        CU_ASSERT_EQUAL_FATAL(n, 3);
        for (int i = 0; i < 3; i++)
            CU_ASSERT_STRING_EQUAL(out[i]->node_id, old[i]);
        if (settled < 0) {
            settled = (int)s;
            CU_ASSERT_EQUAL(rp_router_settle(rt, "bkt", s), CM_OK);
            CU_ASSERT_EQUAL(rp_route_prev(rt, &p, 3, out), 0);
            CU_ASSERT_EQUAL(rp_router_moving(rt, "bkt", s, 3), 0);
        }
    }
    for (uint32_t s = 0; s < 64; s++) {
        rp_part p = {"bkt", s, 64, 0};
        const char *old[3];
        rp_replica *out[3];
        homes_of(t1, s, old);
        int had = !strcmp(old[0], "n6") || !strcmp(old[1], "n6") || !strcmp(old[2], "n6");
        int n3 = rp_route_prev(rt3, &p, 3, out);
        CU_ASSERT_EQUAL(n3, had ? 2 : 0); /* n6's partitions move, to their two homes left */
        for (int i = 0; i < n3; i++)
            CU_ASSERT(strcmp(out[i]->node_id, "n6") != 0);
        removed += had;
    }
    printf("\n    handoff: %d of 64 partitions move to the 7th node's layout\n", moved);
    CU_ASSERT(moved > 0 && moved < 64);
    CU_ASSERT(removed > 0);
    /* every node but n1 removed: a one-node layout, nothing moves */
    pl_topology *t4;
    rp_router *rt4;
    rp_replica *out[3];
    CU_ASSERT_EQUAL_FATAL(pl_topology_clone(t1, &t4), CM_OK);
    t4->epoch = 3;
    for (int i = 0; i < t4->nnodes; i++)
        if (strcmp(t4->nodes[i].id, "n1"))
            t4->nodes[i].state = PL_REMOVED;
    CU_ASSERT_EQUAL_FATAL(rp_router_new(t4, "n1", E.local, E.cl, &rt4), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_router_set_previous(rt4, t1), CM_OK);
    for (uint32_t s = 0; s < 64; s++) {
        rp_part q = {"bkt", s, 64, 0};
        CU_ASSERT_EQUAL(rp_route_prev(rt4, &q, 3, out), 0);
        CU_ASSERT_EQUAL(rp_router_moving(rt4, "bkt", s, 3), 0);
    }
    rp_router_free(rt4);
    pl_topology_free(t4);
    /* settled partitions stay settled; settle_all ends every handoff */
    rp_part p = {"bkt", (uint32_t)settled, 64, 0};
    CU_ASSERT_EQUAL(rp_route_prev(rt, &p, 3, out), 0);
    rp_router_settle_all(rt);
    CU_ASSERT_EQUAL(rp_router_handoff(rt), 0);
    for (uint32_t s = 0; s < 64; s++) {
        rp_part q = {"bkt", s, 64, 0};
        CU_ASSERT_EQUAL(rp_route_prev(rt, &q, 3, out), 0);
    }
    rp_router_free(rt);
    rp_router_free(plain);
    rp_router_free(rt3);
    pl_topology_free(t1);
    pl_topology_free(t2);
    pl_topology_free(t3);
    env_down();
}

/* ---- hints ---- */

static rp_hints *HINTS;

static int hints_busy(void *arg)
{
    (void)arg;
    return rp_hints_busy(HINTS);
}

static void hint_round(void)
{
    rp_hints_kick(HINTS);
    CU_ASSERT(rp_hints_busy(HINTS));
    loop_while(hints_busy, NULL);
}

static void t_hints(void)
{
    env_up(0, 300);
    rp_router *rt;
    CU_ASSERT_EQUAL_FATAL(rp_router_new(E.topo, "n1", E.local, E.cl, &rt), CM_OK);
    /* n1 stands in for n2 while n2 does not answer */
    md_object h1 = version("h1", 1000, 1, NULL), h2 = version("h2", 1001, 1, NULL);
    CU_ASSERT_EQUAL(do_put(&h1, "n2").applied, 1);
    CU_ASSERT_EQUAL(do_put(&h2, "n2").applied, 1);
    uint64_t cnt;
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 2);
    rp_hints_config hc = {E.base, E.nodes[0].md, E.work, rt, NSHARDS, 1, 60000, 0};
    CU_ASSERT_EQUAL_FATAL(rp_hints_new(&hc, &HINTS), CM_OK);
    nd_fault_set(E.faults, "n1", "n2", ND_FAULT_REFUSE, 0);
    hint_round();
    rp_hints_stats st;
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.rounds, 1);
    CU_ASSERT_EQUAL(st.listed, 1); /* batch 1 */
    CU_ASSERT_EQUAL(st.failed, 1);
    CU_ASSERT_EQUAL(st.dropped, 0);
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 2); /* kept */
    md_object o;
    CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", "h1", &o), CM_ERR_NOTFOUND);
    /* n2 is back: one hint per round (batch 1), each delivered and dropped */
    nd_fault_clear(E.faults, NULL, NULL);
    hint_round();
    hint_round();
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.delivered, 2);
    CU_ASSERT_EQUAL(st.dropped, 2);
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 0);
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[1].md, "b", "h1", &o), CM_OK);
    CU_ASSERT_EQUAL(o.hlc, h1.hlc);
    md_object_release(&o);
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[1].md, "b", "h2", &o), CM_OK);
    md_object_release(&o);
    /* a hint older than what the target holds: superseded, dropped all the same */
    md_object stale = {.key = "h1", .hlc = MD_HLC_MAKE(10, 0), .hlc_node = 3};
    CU_ASSERT_EQUAL(do_put(&stale, "n2").applied, 1);
    hint_round();
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.superseded, 1);
    CU_ASSERT_EQUAL(st.dropped, 3);
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 0);
    /* an empty round sends nothing */
    hint_round();
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.listed, 4);
    /* targets take turns: n2 refuses with 3 hints (more than a batch), n3's still arrives */
    nd_fault_set(E.faults, "n1", "n2", ND_FAULT_REFUSE, 0);
    const char *keys[4] = {"t1", "t2", "t3", "t4"};
    for (int i = 0; i < 4; i++) {
        md_object tk = version(keys[i], 9000 + (uint64_t)i, 1, NULL);
        CU_ASSERT_EQUAL(do_put(&tk, i < 3 ? "n2" : "n3").applied, 1);
    }
    hint_round();
    hint_round();
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[2].md, "b", "t4", &o), CM_OK);
    md_object_release(&o);
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 3); /* n2's, kept */
    rp_hints_free(HINTS);
    rp_router_free(rt);
    env_down();
}

/* Hints older than the tombstone grace are dropped undelivered, younger ones delivered. */
static void t_hints_expire(void)
{
    env_up(0, 300);
    rp_router *rt;
    CU_ASSERT_EQUAL_FATAL(rp_router_new(E.topo, "n1", E.local, E.cl, &rt), CM_OK);
    int64_t now = cm_now_ms();
    md_object old = version("x1", (uint64_t)(now - 7200 * 1000), 1, NULL);
    md_object young = version("x2", (uint64_t)(now - 1000), 1, NULL);
    CU_ASSERT_EQUAL(do_put(&old, "n2").applied, 1);
    CU_ASSERT_EQUAL(do_put(&young, "n2").applied, 1);
    rp_hints_config hc = {E.base, E.nodes[0].md, E.work, rt, NSHARDS, 10, 60000, 3600 * 1000};
    CU_ASSERT_EQUAL_FATAL(rp_hints_new(&hc, &HINTS), CM_OK);
    hint_round();
    rp_hints_stats st;
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.expired, 1);
    CU_ASSERT_EQUAL(st.delivered, 1);
    CU_ASSERT_EQUAL(st.dropped, 2);
    uint64_t cnt;
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 0);
    md_object o;
    CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", "x1", &o), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[1].md, "b", "x2", &o), CM_OK);
    md_object_release(&o);
    rp_hints_free(HINTS);
    rp_router_free(rt);
    env_down();
}

/* A hint for a bucket that is gone (its target answers "no such bucket", and this node no longer
 * has it either: deleted while the target was down) is dropped; one for a bucket this node still
 * has is kept (the target may not have it yet). Before, every such hint was kept and sent again
 * each round, and since a round lists a target's hints from its first, a batch of them ahead of
 * the others held that target's other hints back for good. */
static void t_hints_gone_bucket(void)
{
    env_up(0, 300);
    rp_router *rt;
    CU_ASSERT_EQUAL_FATAL(rp_router_new(E.topo, "n1", E.local, E.cl, &rt), CM_OK);
    md_bucket only_here = {0};
    snprintf(only_here.name, sizeof(only_here.name), "c-new");
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(E.nodes[0].md, &only_here), CM_OK);
    md_object g = version("g1", 1000, 1, NULL), h = version("h1", 1001, 1, NULL);
    md_object c = version("c1", 1002, 1, NULL);
    CU_ASSERT_EQUAL(md_hint_put(E.nodes[0].md, "n2", "a-gone", &g), CM_OK); /* sorts first */
    CU_ASSERT_EQUAL(do_put(&h, "n2").applied, 1);
    CU_ASSERT_EQUAL(md_hint_put(E.nodes[0].md, "n2", "c-new", &c), CM_OK);
    rp_hints_config hc = {E.base, E.nodes[0].md, E.work, rt, NSHARDS, 1, 60000, 0};
    CU_ASSERT_EQUAL_FATAL(rp_hints_new(&hc, &HINTS), CM_OK);
    for (int i = 0; i < 3; i++)
        hint_round();
    md_object o;
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[1].md, "b", "h1", &o), CM_OK);
    md_object_release(&o);
    uint64_t cnt;
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 1); /* c-new's, kept */
    rp_hints_stats st;
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.dropped, 2);
    rp_hints_free(HINTS);
    rp_router_free(rt);
    env_down();
}

/* A stand-in keeps at most hints_max hints: a hint for a new key beyond it is refused over the
 * RPC (503: the coordinator tries its next stand-in) and counted; a newer version of a key it
 * holds still replaces the stored one. Before, a stand-in took any number. */
static void t_hints_bound(void)
{
    env_up(1, 5000); /* n1 puts hints on n2 through the RPC (synced: slow on a loaded disk) */
    md_store *n2 = E.nodes[1].md;
    md_hint_set_max(n2, 2);
    md_object a = version("ha", 1000, 1, NULL), b = version("hb", 1001, 1, NULL);
    md_object c = version("hc", 1002, 1, NULL), a2 = version("ha", 1003, 1, &a.vv);
    CU_ASSERT_EQUAL(do_put(&a, "n3").applied, 1);
    CU_ASSERT_EQUAL(do_put(&b, "n3").applied, 1);
    tres t = do_put(&c, "n3");
    CU_ASSERT_EQUAL(t.err, CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(t.applied, 0);
    CU_ASSERT_EQUAL(md_hint_refused(n2), 1);
    t = do_put(&a2, "n1"); /* another target, a new hint: refused as well */
    CU_ASSERT_EQUAL(t.err, CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(do_put(&a2, "n3").applied, 1); /* a newer version of a kept hint */
    uint64_t cnt;
    CU_ASSERT_EQUAL(md_hint_count(n2, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 2);
    md_hint *hs;
    size_t n;
    int truncated;
    CU_ASSERT_EQUAL_FATAL(md_hint_list(n2, "n3", NULL, NULL, 10, &hs, &n, &truncated), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(hs[0].rec.key, "ha");
    CU_ASSERT_EQUAL(hs[0].rec.hlc, a2.hlc);
    md_hints_free(hs, n);
    md_hint_set_max(n2, 0); /* no bound */
    CU_ASSERT_EQUAL(do_put(&c, "n3").applied, 1);
    CU_ASSERT_EQUAL(md_hint_refused(n2), 2);
    env_down();
}

/* A hint for a node the layout no longer names (removed for good) goes to its partition's first
 * home and is dropped once delivered; before, it stayed (unroutable) until the tombstone grace. */
static void t_hints_removed_node(void)
{
    env_up(0, 300);
    rp_router *rt;
    CU_ASSERT_EQUAL_FATAL(rp_router_new(E.topo, "n1", E.local, E.cl, &rt), CM_OK);
    md_object r1 = version("r1", 1000, 1, NULL);
    CU_ASSERT_EQUAL(do_put(&r1, "n9").applied, 1);
    rp_part p = part_of("r1");
    rp_replica *home = NULL;
    CU_ASSERT_EQUAL_FATAL(rp_route(rt, &p, 1, 0, &home), 1);
    int hi = home->node_id[1] - '1'; /* n1..n3 */
    CU_ASSERT_FATAL(hi >= 0 && hi < NNODES);
    rp_hints_config hc = {E.base, E.nodes[0].md, E.work, rt, NSHARDS, 10, 60000, 0};
    CU_ASSERT_EQUAL_FATAL(rp_hints_new(&hc, &HINTS), CM_OK);
    hint_round();
    rp_hints_stats st;
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.rehomed, 1);
    CU_ASSERT_EQUAL(st.delivered, 1);
    CU_ASSERT_EQUAL(st.dropped, 1);
    CU_ASSERT_EQUAL(st.unroutable, 0);
    uint64_t cnt;
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 0);
    md_object o;
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[hi].md, "b", "r1", &o), CM_OK);
    CU_ASSERT_EQUAL(o.hlc, r1.hlc);
    md_object_release(&o);
    rp_hints_free(HINTS);
    rp_router_free(rt);
    env_down();
}

/* Hints a target refuses for a lasting reason (here stamped a day ahead of its clock) do not hold
 * back its others: each round lists a target's hints from after the last one it listed, so the
 * hint behind two refused ones arrives by the second round of batch 2, and the refused ones are
 * tried again on the next pass. Before, every round listed the same two from the front. */
static void t_hints_head_of_line(void)
{
    env_up(0, 300);
    rp_router *rt;
    CU_ASSERT_EQUAL_FATAL(rp_router_new(E.topo, "n1", E.local, E.cl, &rt), CM_OK);
    uint64_t ahead = (uint64_t)cm_now_ms() + 86400 * 1000;
    md_object a0 = version("a0", ahead, 1, NULL), a1 = version("a1", ahead, 1, NULL);
    md_object z1 = version("z1", (uint64_t)cm_now_ms(), 1, NULL);
    CU_ASSERT_EQUAL(md_hint_put(E.nodes[0].md, "n2", "b", &a0), CM_OK); /* sort first */
    CU_ASSERT_EQUAL(md_hint_put(E.nodes[0].md, "n2", "b", &a1), CM_OK);
    CU_ASSERT_EQUAL(md_hint_put(E.nodes[0].md, "n2", "b", &z1), CM_OK);
    rp_hints_config hc = {E.base, E.nodes[0].md, E.work, rt, NSHARDS, 2, 60000, 0};
    CU_ASSERT_EQUAL_FATAL(rp_hints_new(&hc, &HINTS), CM_OK);
    hint_round();
    hint_round();
    md_object o;
    CU_ASSERT_EQUAL_FATAL(md_rec_get(E.nodes[1].md, "b", "z1", &o), CM_OK);
    md_object_release(&o);
    hint_round(); /* the refused ones come round again, and still stay */
    rp_hints_stats st;
    rp_hints_get_stats(HINTS, &st);
    CU_ASSERT_EQUAL(st.listed, 6); /* rounds: a0 a1, then z1 a0 (wrapped), then a1 a0 */
    CU_ASSERT_EQUAL(st.delivered, 1);
    uint64_t cnt;
    CU_ASSERT_EQUAL(md_hint_count(E.nodes[0].md, &cnt), CM_OK);
    CU_ASSERT_EQUAL(cnt, 2);
    CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", "a0", &o), CM_ERR_NOTFOUND);
    rp_hints_free(HINTS);
    rp_router_free(rt);
    env_down();
}

/* ---- a record read does not wait for the pool ---- */

typedef struct {
    nd_job job; /* first */
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    int *release;
} blocker;

static void blocker_run(nd_job *j)
{
    blocker *b = (blocker *)(void *)j;
    pthread_mutex_lock(b->mu);
    while (!*b->release)
        pthread_cond_wait(b->cv, b->mu);
    pthread_mutex_unlock(b->mu);
}

static void blocker_done(nd_job *j)
{
    (void)j;
    E.pending--;
}

static int not_done(void *arg)
{
    return ((tres *)arg)->done == 0;
}

/* Every worker of n1's pool is busy (a long scan, say): a get of the local replica is one LMDB
 * lookup and a merge-put goes to the store's commit thread, so both answer anyway, still after
 * the call returned (docs/performance.md, "Cluster"); a hint waits for a worker. */
static void t_get_busy_pool(void)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int release = 0;
    blocker b[8];
    env_up(0, 0);
    md_object v = version("busy", 1000, 7, NULL);
    tres t = do_put(&v, NULL);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    tres_free(&t);
    for (int i = 0; i < nworkers; i++) {
        b[i] = (blocker){{blocker_run, blocker_done, E.base, NULL}, &mu, &cv, &release};
        nd_work_submit(E.work, &b[i].job);
    }
    t = do_get("b", "busy");
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT(t.has_rec && strcmp(t.rec.etag, v.etag) == 0);
    tres_free(&t);
    tres h = {0}, p = {0};
    rp_part hpart = part_of("busy3"), part = part_of("busy2");
    md_object vh = version("busy3", 1000, 7, NULL), v2 = version("busy2", 1000, 7, NULL);
    CU_ASSERT_EQUAL(rp_replica_put(E.r, &hpart, &vh, "n2", done_cb, &h), CM_OK);
    CU_ASSERT_EQUAL(rp_replica_put(E.r, &part, &v2, NULL, done_cb, &p), CM_OK);
    CU_ASSERT_EQUAL(p.done, 0); /* never inside the call */
    E.pending += 2;
    loop_while(not_done, &p); /* before the commit thread took merges: hung behind the blockers */
    CU_ASSERT_EQUAL(p.done, 1);
    CU_ASSERT_EQUAL(p.err, CM_OK);
    CU_ASSERT_EQUAL(p.applied, 1);
    CU_ASSERT_EQUAL(h.done, 0); /* the hint stays queued behind the blockers */
    pthread_mutex_lock(&mu);
    release = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    E.pending += nworkers;
    loop_while(pending, NULL);
    CU_ASSERT_EQUAL(h.done, 1);
    CU_ASSERT_EQUAL(h.err, CM_OK);
    tres_free(&h);
    tres_free(&p);
    t = do_get("b", "busy2");
    CU_ASSERT(t.err == CM_OK && t.has_rec && strcmp(t.rec.etag, v2.etag) == 0);
    tres_free(&t);
    env_down();
}

/* The same on a remote replica: every worker of n2's RPC service is busy, and a record write sent
 * to it is still merged and answered (the RPC loop hands it to the store's commit thread); a hint
 * sent to it waits for a worker. */
static void t_remote_put_busy_pool(void)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int release = 0;
    blocker b[8];
    env_up(1, 0);
    for (int i = 0; i < nworkers; i++) {
        b[i] = (blocker){{blocker_run, blocker_done, E.base, NULL}, &mu, &cv, &release};
        nd_work_submit(E.nodes[1].rpc.svc->work, &b[i].job);
    }
    tres h = {0}, p = {0};
    rp_part hpart = part_of("rbusy3"), part = part_of("rbusy2");
    md_object vh = version("rbusy3", 1000, 7, NULL), v2 = version("rbusy2", 1000, 7, NULL);
    CU_ASSERT_EQUAL(rp_replica_put(E.r, &hpart, &vh, "n3", done_cb, &h), CM_OK);
    CU_ASSERT_EQUAL(rp_replica_put(E.r, &part, &v2, NULL, done_cb, &p), CM_OK);
    E.pending += 2;
    loop_while(not_done, &p);
    CU_ASSERT_EQUAL(p.done, 1);
    CU_ASSERT_EQUAL(p.err, CM_OK);
    CU_ASSERT_EQUAL(p.applied, 1);
    CU_ASSERT_EQUAL(h.done, 0);
    md_object o;
    CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", "rbusy2", &o), CM_OK); /* durable: answered */
    md_object_release(&o);
    pthread_mutex_lock(&mu);
    release = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    E.pending += nworkers;
    loop_while(pending, NULL);
    CU_ASSERT_EQUAL(h.done, 1);
    CU_ASSERT_EQUAL(h.err, CM_OK);
    tres_free(&h);
    tres_free(&p);
    env_down();
}

/* ---- the layout fence (docs/replication.md, "Layout changes: the handoff") ---- */

/* The stored record of key on node i's store: its etag, "" when none. */
static const char *stored_etag(int i, const char *key, char *out, size_t cap)
{
    md_object o;
    out[0] = 0;
    if (md_rec_get(E.nodes[i].md, "b", key, &o) == CM_OK) {
        snprintf(out, cap, "%s", o.etag);
        md_object_release(&o);
    }
    return out;
}

/* Routers of n1 on layout epochs 5 (old) and 6 (nw) of the same three nodes. */
typedef struct {
    pl_topology *t5, *t6;
    rp_router *old, *nw;
} layouts;

static layouts layouts_up(void)
{
    layouts l = {0};
    CU_ASSERT_EQUAL_FATAL(pl_topology_clone(E.topo, &l.t5), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_topology_clone(E.topo, &l.t6), CM_OK);
    l.t5->epoch = 5, l.t6->epoch = 6;
    CU_ASSERT_EQUAL_FATAL(rp_router_new(l.t5, "n1", E.local, E.cl, &l.old), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_router_new(l.t6, "n1", E.local, E.cl, &l.nw), CM_OK);
    return l;
}

static void layouts_down(layouts *l)
{
    rp_router_free(l->old);
    rp_router_free(l->nw);
    pl_topology_free(l->t5);
    pl_topology_free(l->t6);
}

/*
 * Layout epochs 5 and 6 of the same three nodes: n2 adopted 6. A call of a router on 5 is
 * refused by n2 CM_ERR_STALE (nothing stored), one on 6 is served; n3, still on 5, serves the
 * old router until a call of the new one reaches it, and refuses it from then on: a coordinator
 * on layout 5 has two of its three homes refusing its writes (W = 2: 503). A call without an
 * epoch (a node of an older version) is not fenced.
 */
static void t_epoch_fence(void)
{
    env_up(1, 2000);
    layouts l = layouts_up();
    rp_router *old = l.old, *nw = l.nw;
    char etag[64];
    atomic_store(&E.nodes[1].fence, 6);
    atomic_store(&E.nodes[2].fence, 5);

    md_object a = version("fk", 3000, 1, NULL);
    E.r = rp_router_replica(old, "n2");
    tres t = do_put(&a, NULL);
    CU_ASSERT_EQUAL(t.err, CM_ERR_STALE);
    CU_ASSERT_STRING_EQUAL(stored_etag(1, "fk", etag, sizeof(etag)), "");
    t = do_get("b", "fk");
    CU_ASSERT_EQUAL(t.err, CM_ERR_STALE);
    E.r = rp_router_replica(nw, "n2");
    t = do_put(&a, NULL);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_EQUAL(t.applied, 1);
    E.r = E.to_n2; /* no epoch: not fenced */
    t = do_get("b", "fk");
    CU_ASSERT_EQUAL(t.err, CM_OK);
    tres_free(&t);

    E.r = rp_router_replica(old, "n3");
    t = do_get("b", "fk");
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND); /* served: n3 is on 5 too */
    E.r = rp_router_replica(nw, "n3");
    t = do_get("b", "fk");
    CU_ASSERT_EQUAL(t.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(atomic_load(&E.nodes[2].fence), 6); /* learnt from the call */
    E.r = rp_router_replica(old, "n3");
    t = do_get("b", "fk");
    CU_ASSERT_EQUAL(t.err, CM_ERR_STALE);

    md_object b = version("fk2", 4000, 1, NULL); /* a write of the old layout: refused */
    t = do_put(&b, NULL);
    CU_ASSERT_EQUAL(t.err, CM_ERR_STALE);
    CU_ASSERT_STRING_EQUAL(stored_etag(2, "fk2", etag, sizeof(etag)), "");
    E.r = E.to_n2;
    layouts_down(&l);
    env_down();
}

/* ---- the fence's window: a write admitted before the fence rose, committed after ---- */

typedef struct {
    rp *c;
    uint32_t shard;
    rp_ae_result res;
    cm_err err;
    atomic_int done;
} settle_job;

typedef struct {
    cu_hold hold; /* n2's commit thread, holding the old layout's write */
    tres put;     /* that write's answer */
    settle_job settle;
} window;

static void wake_noop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

/* Make the test thread's loop (in loop_while) check its condition again. */
static void wake_loop(void *arg)
{
    static const struct timeval now = {0, 0};
    (void)arg;
    event_base_once(E.base, -1, EV_TIMEOUT, wake_noop, NULL, &now);
}

static void *settle_thread(void *arg)
{
    settle_job *j = arg;
    j->err = rp_antientropy_run(j->c, "b", j->shard, 0, 0, &j->res);
    atomic_store(&j->done, 1);
    wake_loop(NULL);
    return NULL;
}

static int not_held(void *arg)
{
    return !cu_hold_held(arg);
}

static int window_open(void *arg)
{
    window *w = arg;
    int settled = atomic_load(&w->settle.done);
    if (settled) /* the run did not wait for the held write: let it commit now */
        cu_gate_set(&w->hold.gate, 0);
    return !settled || !w->put.done;
}

/*
 * The fence's window (docs/replication.md, "The fence"): n2, on layout 5, admits a write of a
 * router on 5 and queues it; its commit thread holds it. A settling anti-entropy run of the
 * router on 6 (one that settles a handoff: every home must answer) then reads every home, which
 * raises n2's fence to 6. Whatever the order, a write n2 acknowledged under 5 must be on every
 * home once the run called the partition complete; here n2 refuses it (CM_ERR_STALE) as its
 * commit thread applies it after the fence rose, since the run's Merkle read of n2 was ordered
 * after it. Without the guard and the read's turn of the group commit, the run answered complete
 * without the key and n2 then acknowledged it: a write on one home of three after the settle.
 */
static void t_fence_window(void)
{
    env_up(1, 8000); /* the held put must not time out on a busy machine */
    layouts l = layouts_up();
    rp_router *old = l.old, *nw = l.nw;
    rp *c = NULL;
    char etag[64];
    atomic_store(&E.nodes[1].fence, 5);
    atomic_store(&E.nodes[2].fence, 5);
    rp_config cfg = {.base = E.base,
                     .router = nw,
                     .route = rp_route,
                     .clock = &E.nodes[0].clock,
                     .node = 1,
                     .nshards = NSHARDS,
                     .timeout_ms = 5000};
    CU_ASSERT_EQUAL_FATAL(rp_new(&cfg, &c), CM_OK);

    window w;
    memset(&w, 0, sizeof(w));
    cu_hold_start(&w.hold, E.nodes[1].md, wake_loop, NULL);
    md_object a = version("wk", 5000, 1, NULL);
    rp_part p = part_of("wk");
    E.pending++;
    CU_ASSERT_EQUAL_FATAL(
        rp_replica_put(rp_router_replica(old, "n2"), &p, &a, NULL, done_cb, &w.put), CM_OK);
    loop_while(not_held, &w.hold); /* admitted under 5, waiting in n2's commit thread */
    CU_ASSERT_EQUAL(atomic_load(&E.nodes[1].fence), 5);
    cu_hold_open_when_queued(&w.hold); /* a read ordered after the write queues behind it */
    w.settle.c = c;
    w.settle.shard = p.shard;
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, settle_thread, &w.settle), 0);
    loop_while(window_open, &w);
    pthread_join(th, NULL);
    cu_hold_end(&w.hold);

    CU_ASSERT_EQUAL(atomic_load(&E.nodes[1].fence), 6); /* raised by the run's read */
    CU_ASSERT_EQUAL(w.settle.err, CM_OK);
    CU_ASSERT(w.settle.res.complete);
    if (w.put.err == CM_OK) { /* acknowledged under 5: the settled homes must hold it */
        CU_ASSERT_STRING_EQUAL(stored_etag(0, "wk", etag, sizeof(etag)), a.etag);
        CU_ASSERT_STRING_EQUAL(stored_etag(2, "wk", etag, sizeof(etag)), a.etag);
    }
    CU_ASSERT_EQUAL(w.put.err, CM_ERR_STALE);
    CU_ASSERT_STRING_EQUAL(stored_etag(1, "wk", etag, sizeof(etag)), "");
    tres_free(&w.put);

    /* A batch (/recs) of the router on 6, held in n2's commit thread while n2 adopts 7: each
     * record refused, and the status byte says so (ND_BATCH_STALE: CM_ERR_STALE, as the single
     * route answers, so the caller's op retries on the newer layout) */
    md_object b[2] = {version("wb0", 5001, 1, NULL), version("wb1", 5002, 1, NULL)};
    tres tb[2];
    memset(tb, 0, sizeof(tb));
    cu_hold_start(&w.hold, E.nodes[1].md, wake_loop, NULL);
    for (int i = 0; i < 2; i++) { /* one turn of the loop: one batch */
        rp_part pb = part_of(b[i].key);
        CU_ASSERT_EQUAL(
            rp_replica_put(rp_router_replica(nw, "n2"), &pb, &b[i], NULL, done_cb, &tb[i]), CM_OK);
        E.pending++;
    }
    loop_while(not_held, &w.hold);
    atomic_store(&E.nodes[1].fence, 7);
    cu_hold_end(&w.hold);
    loop_while(pending, NULL);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(tb[i].err, CM_ERR_STALE);
        CU_ASSERT_STRING_EQUAL(stored_etag(1, b[i].key, etag, sizeof(etag)), "");
        tres_free(&tb[i]);
    }
    rp_free(c);
    layouts_down(&l);
    env_down();
}

void cu_register(void)
{
    static const cu_test cluster[] = {
        {"rpc_edges", t_rpc_edges},
        {"cond_route", t_cond_route},
        {"cond_replay", t_cond_replay},
        {"cond_parse", t_cond_parse},
        {"router", t_router},
        {"small_layouts", t_small_layouts},
        {"router_handoff", t_router_handoff},
        {"epoch_fence", t_epoch_fence},
        {"fence_window", t_fence_window},
        {"hints", t_hints},
        {"hints_expire", t_hints_expire},
        {"hints_gone_bucket", t_hints_gone_bucket},
        {"hints_bound", t_hints_bound},
        {"hints_removed_node", t_hints_removed_node},
        {"hints_head_of_line", t_hints_head_of_line},
        {"bench", t_bench},
        {"get_busy_pool", t_get_busy_pool},
        {"remote_put_busy_pool", t_remote_put_busy_pool},
        {NULL, NULL},
    };
    cu_add_suite("repl", cluster);
}
