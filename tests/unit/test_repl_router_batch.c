/*
 * test_repl_router_batch.c - batched record writes and reads on the wire, over the three nodes of
 * rp_trio.h (test_repl_router.c's fixture): the batch routes (nd_meta_put_batch,
 * nd_meta_get_batch) answering each record or key alone and in order, and refusing a body that
 * does not frame; the remote backend sending the merges, and the reads, of one loop turn as one
 * call, a hint or a lone merge by the single route, and a node that predates the batch routes
 * one by one; and a fake peer whose batch answer frames one byte too many.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "cm_util.h"
#include "cu_main.h"
#include "nd_int.h"
#include "rp_trio.h"

/* ---- batched record writes (nd_meta_put_batch, the remote backend's turn batches) ---- */

typedef struct {
    int done;
    cm_err err;
    char st[ND_META_BATCH_MAX + 1]; /* the status bytes */
} bres;

static void batch_cb(void *arg, const nd_result *r)
{
    bres *t = arg;
    t->done++;
    t->err = r->err;
    if (r->err == CM_OK && r->body_len <= ND_META_BATCH_MAX)
        memcpy(t->st, r->body, r->body_len);
    E.pending--;
}

/* n records framed as a batch's body (u32 length | record each); a record of key "" has none. */
static uint8_t *frame(const md_object *recs, size_t n, size_t *len)
{
    uint8_t *body = NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *rec;
        size_t rl;
        CU_ASSERT_EQUAL_FATAL(md_object_encode(&recs[i], &rec, &rl), CM_OK);
        body = realloc(body, *len + 4 + rl);
        CU_ASSERT_PTR_NOT_NULL_FATAL(body);
        cm_put_be32(body + *len, (uint32_t)rl);
        memcpy(body + *len + 4, rec, rl);
        *len += 4 + rl;
        free(rec);
    }
    return body;
}

static bres batch_call(const char *bucket, const uint8_t *body, size_t len)
{
    bres t = {0};
    nd_peer n2 = {"n2", "127.0.0.1", E.nodes[1].rpc.port, 0};
    CU_ASSERT_EQUAL(nd_meta_put_batch(E.cl, &n2, bucket, body, len, batch_cb, &t), CM_OK);
    E.pending++;
    loop_while(pending, NULL);
    CU_ASSERT_EQUAL(t.done, 1);
    return t;
}

/* The batch route: each record merged as a single put would be, one status byte each, in order;
 * an unknown bucket per record; a body that does not frame, or a record without a key, refused
 * whole with nothing stored. */
static void t_put_batch_route(void)
{
    env_up(1, 2000);
    md_object recs[3] = {version("bt1", 1000, 7, NULL), version("bt2", 1000, 7, NULL),
                         version("bt3", 1000, 7, NULL)};
    size_t len;
    uint8_t *body = frame(recs, 3, &len);
    bres t = batch_call("b", body, len);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_STRING_EQUAL(t.st, "AAA");
    t = batch_call("b", body, len); /* the same versions again: the node holds them */
    CU_ASSERT_STRING_EQUAL(t.st, "AAA");
    t = batch_call("zz", body, len);
    CU_ASSERT_STRING_EQUAL(t.st, "BBB");
    free(body);
    md_object older[3] = {version("bt1", 500, 7, NULL), version("bt2", 500, 7, NULL),
                          version("bt3", 500, 7, NULL)};
    body = frame(older, 3, &len); /* older versions: merged, the newer ones kept */
    t = batch_call("b", body, len);
    CU_ASSERT_STRING_EQUAL(t.st, "KKK");
    free(body);
    for (int i = 0; i < 3; i++) {
        md_object o;
        CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", recs[i].key, &o), CM_OK);
        CU_ASSERT_STRING_EQUAL(o.etag, "etag-1000");
        md_object_release(&o);
    }
    /* a newer version of bt1 next to one far ahead of n2's clock: applied, and refused alone */
    md_object two[2] = {version("bt1", 2000, 7, NULL),
                        version("bt4", (uint64_t)cm_now_ms() + 3600 * 1000, 7, NULL)};
    body = frame(two, 2, &len);
    t = batch_call("b", body, len);
    CU_ASSERT_EQUAL(t.err, CM_OK);
    CU_ASSERT_STRING_EQUAL(t.st, "AI");
    /* cut short: does not frame; a record without a key: the whole batch refused */
    t = batch_call("b", body, len - 1);
    CU_ASSERT_EQUAL(t.err, CM_ERR_INVAL);
    free(body);
    md_object keyless[2] = {version("bt5", 3000, 7, NULL), version("", 3000, 7, NULL)};
    body = frame(keyless, 2, &len);
    t = batch_call("b", body, len);
    CU_ASSERT_EQUAL(t.err, CM_ERR_INVAL);
    free(body);
    md_object o;
    CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", "bt5", &o), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", "bt4", &o), CM_ERR_NOTFOUND);
    env_down();
}

static uint64_t n2_requests(void)
{
    nd_service_stats st;
    nd_service_get_stats(E.nodes[1].rpc.svc, &st);
    return st.requests;
}

/* The remote backend sends the merges queued in one loop turn as one call, answers each record
 * alone, and sends a hint (or a lone merge) by the single route. A node that predates the batch
 * route gets the records one by one, then every later merge alone. */
static void t_remote_put_batched(void)
{
    env_up(1, 2000);
    enum { N = 5 };
    char keys[N][16];
    md_object v[N];
    tres t[N];
    memset(t, 0, sizeof(t));
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            atomic_store(&E.nodes[1].rpc.svc->no_batch_route, 1);
        uint64_t before = n2_requests();
        for (int i = 0; i < N; i++) { /* queued in this turn: the loop is not running */
            snprintf(keys[i], sizeof(keys[i]), "rb%d-%d", round, i);
            v[i] = version(keys[i], 1000, 7, NULL);
            rp_part p = part_of(keys[i]);
            CU_ASSERT_EQUAL(rp_replica_put(E.r, &p, &v[i], NULL, done_cb, &t[i]), CM_OK);
            E.pending++;
        }
        CU_ASSERT_EQUAL(t[0].done, 0); /* never inside the call */
        loop_while(pending, NULL);
        for (int i = 0; i < N; i++) {
            CU_ASSERT_EQUAL(t[i].done, 1);
            CU_ASSERT_EQUAL(t[i].err, CM_OK);
            CU_ASSERT_EQUAL(t[i].applied, 1);
            tres_free(&t[i]);
            memset(&t[i], 0, sizeof(t[i]));
            md_object o;
            CU_ASSERT_EQUAL(md_rec_get(E.nodes[1].md, "b", keys[i], &o), CM_OK);
            md_object_release(&o);
        }
        /* one call; with the route missing, the refused batch and then each record alone */
        CU_ASSERT_EQUAL(n2_requests() - before, round == 0 ? 1 : 1 + N);
    }
    /* from now on one by one: N more merges, N calls */
    uint64_t before = n2_requests();
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "rb2-%d", i);
        v[i] = version(keys[i], 1000, 7, NULL);
        rp_part p = part_of(keys[i]);
        CU_ASSERT_EQUAL(rp_replica_put(E.r, &p, &v[i], NULL, done_cb, &t[i]), CM_OK);
        E.pending++;
    }
    loop_while(pending, NULL);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(t[i].err, CM_OK);
        tres_free(&t[i]);
        memset(&t[i], 0, sizeof(t[i]));
    }
    CU_ASSERT_EQUAL(n2_requests() - before, N);
    atomic_store(&E.nodes[1].rpc.svc->no_batch_route, 0);
    env_down();
}

/* On a node that knows the route: a lone merge and a hint go by the single route, a merge of
 * another bucket starts a batch of its own. */
static void t_remote_put_batch_edges(void)
{
    env_up(1, 2000);
    tres a = {0}, h = {0}, z = {0}, c = {0};
    md_object va = version("re1", 1000, 7, NULL), vh = version("re2", 1000, 7, NULL),
              vz = version("re3", 1000, 7, NULL), vc = version("re4", 1000, 7, NULL);
    rp_part pa = part_of("re1"), ph = part_of("re2"), pz = part_of("re3"), pc = part_of("re4");
    pz.bucket = "zz";
    uint64_t before = n2_requests();
    CU_ASSERT_EQUAL(rp_replica_put(E.r, &pa, &va, NULL, done_cb, &a), CM_OK);
    CU_ASSERT_EQUAL(rp_replica_put(E.r, &ph, &vh, "n3", done_cb, &h), CM_OK);
    CU_ASSERT_EQUAL(rp_replica_put(E.r, &pz, &vz, NULL, done_cb, &z), CM_OK);
    CU_ASSERT_EQUAL(rp_replica_put(E.r, &pc, &vc, NULL, done_cb, &c), CM_OK);
    E.pending += 4;
    loop_while(pending, NULL);
    CU_ASSERT_EQUAL(a.err, CM_OK);
    CU_ASSERT_EQUAL(a.applied, 1);
    CU_ASSERT_EQUAL(h.err, CM_OK); /* kept as a hint for n3 */
    CU_ASSERT_EQUAL(z.err, CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(z.no_bucket, 1);
    CU_ASSERT_EQUAL(c.err, CM_OK);
    CU_ASSERT_EQUAL(c.applied, 1);
    /* the hint; re1 alone (zz came next); zz alone (re4 came next); re4 alone */
    CU_ASSERT_EQUAL(n2_requests() - before, 4);
    tres_free(&a), tres_free(&h), tres_free(&z), tres_free(&c);
    env_down();
}

typedef struct {
    int done;
    cm_err err;
    uint8_t body[4096];
    size_t len;
} gres;

static void gbatch_cb(void *arg, const nd_result *r)
{
    gres *t = arg;
    t->done++;
    t->err = r->err;
    t->len = r->body_len;
    if (r->err == CM_OK && r->body_len <= sizeof(t->body))
        memcpy(t->body, r->body, r->body_len);
    E.pending--;
}

/* The batch of reads: each key's record, absence or unknown bucket, in order; a body that does
 * not frame refused. */
static void t_get_batch_route(void)
{
    env_up(1, 2000);
    md_object v = version("gb1", 1000, 7, NULL);
    tres w = do_put(&v, NULL); /* E.r is the remote backend to n2 */
    CU_ASSERT_EQUAL(w.err, CM_OK);
    tres_free(&w);
    static const uint8_t keys[] = {0, 3, 'g', 'b', '1', 0, 3, 'g', 'b', '9'};
    nd_peer n2 = {"n2", "127.0.0.1", E.nodes[1].rpc.port, 0};
    for (int round = 0; round < 3; round++) {
        gres t = {0};
        const char *bucket = round == 1 ? "zz" : "b";
        size_t len = round == 2 ? sizeof(keys) - 1 : sizeof(keys); /* 2: cut short */
        CU_ASSERT_EQUAL(nd_meta_get_batch(E.cl, &n2, bucket, keys, len, gbatch_cb, &t), CM_OK);
        E.pending++;
        loop_while(pending, NULL);
        CU_ASSERT_EQUAL(t.done, 1);
        if (round == 0) { /* gb1: found, its record; gb9: absent */
            CU_ASSERT_EQUAL_FATAL(t.err, CM_OK);
            CU_ASSERT_FATAL(t.len > 6 && t.len <= sizeof(t.body));
            CU_ASSERT_EQUAL(t.body[0], ND_BATCH_FOUND);
            size_t rl = cm_get_be32(t.body + 1);
            CU_ASSERT_EQUAL_FATAL(t.len, 1 + 4 + rl + 1);
            md_object o;
            CU_ASSERT_EQUAL_FATAL(md_object_decode(t.body + 5, rl, &o), CM_OK);
            CU_ASSERT_STRING_EQUAL(o.key, "gb1");
            CU_ASSERT_STRING_EQUAL(o.etag, "etag-1000");
            md_object_release(&o);
            CU_ASSERT_EQUAL(t.body[5 + rl], ND_BATCH_ABSENT);
        } else if (round == 1) {
            CU_ASSERT_EQUAL(t.err, CM_OK);
            CU_ASSERT_EQUAL(t.len, 2);
            CU_ASSERT(t.body[0] == ND_BATCH_NO_BUCKET && t.body[1] == ND_BATCH_NO_BUCKET);
        } else {
            CU_ASSERT_EQUAL(t.err, CM_ERR_INVAL);
        }
    }
    env_down();
}

/* The remote backend's reads of one loop turn go as one call, each answered alone (a record, an
 * absence); with the route missing, the keys are asked one by one. */
static void t_remote_get_batched(void)
{
    env_up(1, 2000);
    enum { N = 4 };
    char keys[N][16];
    for (int i = 0; i < N - 1; i++) { /* the last key is never written */
        snprintf(keys[i], sizeof(keys[i]), "rg%d", i);
        md_object v = version(keys[i], 1000 + (uint64_t)i, 7, NULL);
        tres w = do_put(&v, NULL);
        CU_ASSERT_EQUAL(w.err, CM_OK);
        tres_free(&w);
    }
    snprintf(keys[N - 1], sizeof(keys[N - 1]), "rg-absent");
    for (int round = 0; round < 2; round++) {
        tres t[N];
        memset(t, 0, sizeof(t));
        atomic_store(&E.nodes[1].rpc.svc->no_batch_route, round);
        uint64_t before = n2_requests();
        for (int i = 0; i < N; i++) {
            rp_part p = part_of(keys[i]);
            CU_ASSERT_EQUAL(rp_replica_get(E.r, &p, keys[i], done_cb, &t[i]), CM_OK);
            E.pending++;
        }
        CU_ASSERT_EQUAL(t[0].done, 0); /* never inside the call */
        loop_while(pending, NULL);
        for (int i = 0; i < N; i++) {
            CU_ASSERT_EQUAL(t[i].done, 1);
            if (i < N - 1) {
                char want[32];
                snprintf(want, sizeof(want), "etag-%d", 1000 + i);
                CU_ASSERT_EQUAL(t[i].err, CM_OK);
                CU_ASSERT_EQUAL_FATAL(t[i].has_rec, 1);
                CU_ASSERT_STRING_EQUAL(t[i].rec.key, keys[i]);
                CU_ASSERT_STRING_EQUAL(t[i].rec.etag, want);
            } else {
                CU_ASSERT_EQUAL(t[i].err, CM_ERR_NOTFOUND);
                CU_ASSERT_EQUAL(t[i].no_bucket, 0);
            }
            tres_free(&t[i]);
        }
        CU_ASSERT_EQUAL(n2_requests() - before, round == 0 ? 1 : 1 + N);
    }
    atomic_store(&E.nodes[1].rpc.svc->no_batch_route, 0);
    env_down();
}

/* A peer on E's loop that answers every request 200 with the same body, once the request's
 * head and body arrived. */
typedef struct {
    const uint8_t *answer;
    size_t len;
    struct bufferevent *bev;
    int requests;
} canned_peer;

static void canned_read(struct bufferevent *bev, void *arg)
{
    canned_peer *cp = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    char head[4096];
    if (end.pos < 0 || (size_t)end.pos + 4 >= sizeof(head))
        return;
    size_t hl = (size_t)end.pos + 4, bl = 0;
    evbuffer_copyout(in, head, hl);
    head[hl] = '\0';
    const char *cl = strstr(head, "\r\nContent-Length: ");
    if (cl)
        bl = strtoul(cl + 18, NULL, 10);
    if (evbuffer_get_length(in) < hl + bl)
        return;
    evbuffer_drain(in, hl + bl);
    cp->requests++;
    struct evbuffer *out = bufferevent_get_output(bev);
    evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", cp->len);
    evbuffer_add(out, cp->answer, cp->len);
}

static void canned_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
    canned_peer *cp = arg;
    (void)sa, (void)salen;
    if (cp->bev) { /* one connection is all a test needs */
        evutil_closesocket(fd);
        return;
    }
    cp->bev = bufferevent_socket_new(evconnlistener_get_base(lis), fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(cp->bev, canned_read, NULL, NULL, cp);
    bufferevent_enable(cp->bev, EV_READ | EV_WRITE);
}

/* A batch of reads whose answer frames one byte too many (a node's bug, or an answer meant for
 * another batch): which answer is whose cannot be told, so every key fails CM_ERR_CORRUPT and no
 * record is handed over. The backend once took the first answers and ignored the rest: the first
 * key got the record, the second "absent". */
static void t_remote_get_batch_bad_answer(void)
{
    env_up(1, 2000);
    md_object v = version("ba0", 1000, 7, NULL);
    uint8_t *rec, answer[512];
    size_t rl, len = 0;
    CU_ASSERT_EQUAL_FATAL(md_object_encode(&v, &rec, &rl), CM_OK);
    CU_ASSERT_FATAL(rl + 7 <= sizeof(answer));
    answer[len++] = ND_BATCH_FOUND;
    len += nd_batch_frame(answer + len, 0, rec, rl);
    answer[len++] = ND_BATCH_ABSENT;
    answer[len++] = ND_BATCH_ABSENT; /* the byte too many */
    free(rec);
    canned_peer cp = {answer, len, NULL, 0};
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *lis = evconnlistener_new_bind(
        E.base, canned_accept, &cp, LEV_OPT_CLOSE_ON_FREE, -1, (struct sockaddr *)&sa, sizeof(sa));
    CU_ASSERT_FATAL(lis != NULL);
    getsockname(evconnlistener_get_fd(lis), (struct sockaddr *)&sa, &sl);
    nd_peer ghost = {"ghost", "127.0.0.1", ntohs(sa.sin_port), 0};
    rp_replica *r;
    CU_ASSERT_EQUAL_FATAL(rp_replica_remote_new(E.cl, &ghost, &r), CM_OK);
    const char *keys[2] = {"ba0", "ba1"};
    tres t[2];
    memset(t, 0, sizeof(t));
    for (int i = 0; i < 2; i++) {
        rp_part p = part_of(keys[i]);
        CU_ASSERT_EQUAL(rp_replica_get(r, &p, keys[i], done_cb, &t[i]), CM_OK);
        E.pending++;
    }
    loop_while(pending, NULL);
    CU_ASSERT_EQUAL(cp.requests, 1); /* one batch */
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(t[i].done, 1);
        CU_ASSERT_EQUAL(t[i].err, CM_ERR_CORRUPT);
        CU_ASSERT_EQUAL(t[i].has_rec, 0);
        tres_free(&t[i]);
    }
    rp_replica_free(r);
    if (cp.bev)
        bufferevent_free(cp.bev);
    evconnlistener_free(lis);
    env_down();
}

void cu_register(void)
{
    static const cu_test batch[] = {
        {"put_batch_route", t_put_batch_route},
        {"remote_put_batched", t_remote_put_batched},
        {"remote_put_batch_edges", t_remote_put_batch_edges},
        {"get_batch_route", t_get_batch_route},
        {"remote_get_batched", t_remote_get_batched},
        {"remote_get_batch_bad_answer", t_remote_get_batch_bad_answer},
        {NULL, NULL},
    };
    cu_add_suite("repl_batch", batch);
}
