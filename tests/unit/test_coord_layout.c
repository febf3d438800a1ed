/*
 * test_coord_layout.c - a node's layout watcher and membership (coord/co_layout.c) against a real
 * etcd member: a written layout is adopted with its epoch; an undecodable document, an invalid
 * one, an older epoch and a deletion are ignored (counted as rejected) and the last good layout
 * stays; the node registers itself with a lease and lists a second node; a node that stops leaves
 * the list at once (lease revoked) and is remembered with its address and when it was last listed;
 * a node whose member key or lease vanished registers again;
 * while etcd is down the layout stays readable, a change made
 * after etcd is back is adopted; a node reopened during an outage starts from its cache file, on
 * the last layout it adopted (not on a rejected version seen after it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm_util.h"
#include "co_layout.h"
#include "cu_etcd.h"
#include "cu_main.h"

#define LAYOUT_KEY "/cairn/tl/layout"

/* Write a uniform 3-AZ layout at epoch (or raw bytes when raw != NULL) to the layout key. */
static void put_layout(co_client *c, uint64_t epoch, const char *raw)
{
    pl_topology *t = NULL;
    char *buf = NULL;
    size_t len = raw ? strlen(raw) : 0;
    if (!raw) {
        CU_ASSERT_FATAL(pl_topology_uniform(3, 1, 2, &t) == CM_OK);
        t->epoch = epoch;
        CU_ASSERT_FATAL(pl_topology_encode(t, &buf, &len) == CM_OK);
    }
    CU_ASSERT_EQUAL(co_put(c, LAYOUT_KEY, raw ? raw : buf, len, 0, NULL), CM_OK);
    free(buf);
    pl_topology_free(t);
}

/* Poll the status (5 s at most) until rejected reaches want; returns the last status. */
static co_layout_status wait_rejected(co_layout *l, uint64_t want)
{
    co_layout_status st;
    int64_t t0 = cm_monotonic_ms();
    do {
        co_layout_get_status(l, &st);
        if (st.rejected >= want)
            break;
        usleep(20000);
    } while (cm_monotonic_ms() - t0 < 5000);
    return st;
}

/* Poll until the member list has n members, or 5 s; returns the last status. */
static co_layout_status wait_members(co_layout *l, int n)
{
    co_layout_status st;
    int64_t t0 = cm_monotonic_ms();
    do {
        co_layout_get_status(l, &st);
        if (st.nmembers == n && st.registered)
            break;
        usleep(20000);
    } while (cm_monotonic_ms() - t0 < 5000);
    return st;
}

/* Poll etcd (5 s at most) until the member key exists under a lease other than old; its lease. */
static int64_t wait_member_key(co_client *c, int64_t old)
{
    int64_t t0 = cm_monotonic_ms(), lease = 0;
    do {
        co_kv kv;
        if (co_get(c, "/cairn/tl/nodes/n1", &kv, NULL) == CM_OK) {
            if (kv.lease != old && kv.len > 0 && memmem(kv.value, kv.len, "127.0.0.1:9101", 14))
                lease = kv.lease;
            co_kv_release(&kv);
        }
        if (lease)
            return lease;
        usleep(20000);
    } while (cm_monotonic_ms() - t0 < 5000);
    return 0;
}

/* Node n1 of cluster tl, registering 127.0.0.1:9101 with a lease of ttl s. */
static co_layout_config member_n1(co_config *cfg, int64_t ttl, int refresh_ms)
{
    return (co_layout_config){.etcd = cfg,
                              .cluster = "tl",
                              .node_id = "n1",
                              .addr = "127.0.0.1:9101",
                              .s3 = "http://127.0.0.1:9001",
                              .ttl = ttl,
                              .refresh_ms = refresh_ms};
}

static uint64_t current_epoch(co_layout *l)
{
    pl_topology *t = NULL;
    if (co_layout_current(l, &t, NULL) != CM_OK)
        return 0;
    uint64_t e = t->epoch;
    pl_topology_free(t);
    return e;
}

static void test_adopt_reject_members(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    if (!cu_etcd_up(&e, 1, 500, &cfg, &c))
        return;

    co_layout_config lc = member_n1(&cfg, 2, 100);
    co_layout *l = NULL, *l2 = NULL;
    CU_ASSERT_FATAL(co_layout_open(&lc, &l) == CM_OK);
    pl_topology *t = NULL;
    CU_ASSERT_EQUAL(co_layout_current(l, &t, NULL), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(co_layout_wait(l, 1, 200), CM_ERR_TIMEOUT);

    put_layout(c, 1, NULL);
    CU_ASSERT_EQUAL_FATAL(co_layout_wait(l, 1, 5000), CM_OK);
    int64_t rev = 0;
    CU_ASSERT_EQUAL_FATAL(co_layout_current(l, &t, &rev), CM_OK);
    CU_ASSERT_EQUAL(t->epoch, 1);
    CU_ASSERT_EQUAL(t->nnodes, 3);
    CU_ASSERT(rev > 0);
    pl_topology_free(t);

    /* bad versions: not JSON, valid JSON but no drive up, an older epoch, a deletion */
    put_layout(c, 3, NULL);
    CU_ASSERT_EQUAL(co_layout_wait(l, 3, 5000), CM_OK);
    put_layout(c, 0, "{not json");
    co_layout_status st = wait_rejected(l, 1);
    CU_ASSERT_EQUAL(st.rejected, 1);
    put_layout(c, 0, "{\"version\":1,\"epoch\":9,\"azs\":[]}");
    st = wait_rejected(l, 2);
    CU_ASSERT_EQUAL(st.rejected, 2);
    put_layout(c, 2, NULL);
    st = wait_rejected(l, 3);
    CU_ASSERT_EQUAL(st.rejected, 3);
    CU_ASSERT_EQUAL(co_delete(c, LAYOUT_KEY, 0, NULL), CM_OK);
    st = wait_rejected(l, 4);
    CU_ASSERT_EQUAL(st.rejected, 4);
    CU_ASSERT_EQUAL(st.epoch, 3);
    CU_ASSERT_EQUAL(st.adopted, 2);
    CU_ASSERT_EQUAL(current_epoch(l), 3);

    /* membership: this node, then a second one; a stopped node leaves at once */
    st = wait_members(l, 1);
    CU_ASSERT(st.registered);
    CU_ASSERT_STRING_EQUAL(st.members[0], "n1");
    lc.node_id = "n2";
    lc.addr = "127.0.0.1:9102";
    lc.s3 = "http://127.0.0.1:9002";
    CU_ASSERT_FATAL(co_layout_open(&lc, &l2) == CM_OK);
    st = wait_members(l, 2);
    CU_ASSERT_EQUAL(st.nmembers, 2);
    CU_ASSERT_STRING_EQUAL(st.members[1], "n2");
    co_layout_free(l2);
    st = wait_members(l, 1);
    /* both remembered with their addresses; n2, gone, keeps when it was last listed */
    CU_ASSERT_EQUAL_FATAL(st.nseen, 2);
    CU_ASSERT_STRING_EQUAL(st.seen[1].id, "n2");
    CU_ASSERT_STRING_EQUAL(st.seen[1].addr, "127.0.0.1:9102");
    CU_ASSERT_STRING_EQUAL(st.seen[0].s3, "http://127.0.0.1:9001"); /* for status --cluster */
    CU_ASSERT_STRING_EQUAL(st.seen[1].s3, "http://127.0.0.1:9002");
    CU_ASSERT(!st.seen[1].live && st.seen[1].last_seen_ms > 0);
    CU_ASSERT(st.seen[0].live && st.seen[0].last_seen_ms >= st.seen[1].last_seen_ms);
    CU_ASSERT(st.members_read_ms >= st.seen[0].last_seen_ms);
    CU_ASSERT(st.in_layout); /* n1 is a node of the uniform layout, n9 is not */
    put_layout(c, 3, NULL);  /* the key was deleted above: written again, the same epoch */
    lc.node_id = "n9";
    CU_ASSERT_FATAL(co_layout_open(&lc, &l2) == CM_OK);
    CU_ASSERT_EQUAL(co_layout_wait(l2, 3, 5000), CM_OK);
    co_layout_get_status(l2, &st);
    CU_ASSERT(!st.in_layout);
    co_layout_free(l2);
    st = wait_members(l, 1);
    CU_ASSERT_EQUAL(st.nmembers, 1);

    /* the member key deleted by hand, then the lease revoked: registered again both times */
    int64_t lease = wait_member_key(c, 0);
    CU_ASSERT_FATAL(lease != 0);
    /* the record names the RPC address peers dial and the S3 endpoint (`layout show` prints it) */
    static const char rec[] = "{\"addr\":\"127.0.0.1:9101\",\"s3\":\"http://127.0.0.1:9001\"}";
    co_kv kv;
    CU_ASSERT_FATAL(co_get(c, "/cairn/tl/nodes/n1", &kv, NULL) == CM_OK);
    CU_ASSERT(kv.len == sizeof(rec) - 1 && memcmp(kv.value, rec, kv.len) == 0);
    co_kv_release(&kv);
    lc.s3 = "http://a\"b";
    CU_ASSERT_EQUAL(co_layout_open(&lc, &l2), CM_ERR_INVAL); /* it would break the record's JSON */
    lc.s3 = "http://127.0.0.1:9001";
    CU_ASSERT_EQUAL(co_delete(c, "/cairn/tl/nodes/n1", 0, NULL), CM_OK);
    CU_ASSERT_EQUAL(wait_member_key(c, 0), lease); /* the same lease, the key written again */
    CU_ASSERT_EQUAL(co_lease_revoke(c, lease), CM_OK);
    CU_ASSERT(wait_member_key(c, lease) != 0); /* a new lease */
    st = wait_members(l, 1);
    CU_ASSERT(st.registered);

    /* etcd down: the layout stays; back up: a newer layout is adopted, the node registered */
    cu_etcd_kill(&e, 0);
    usleep(300000);
    CU_ASSERT_EQUAL(current_epoch(l), 3);
    co_layout_get_status(l, &st);
    CU_ASSERT(!st.connected);
    CU_ASSERT_FATAL(cu_etcd_restart(&e, 0) == 0);
    put_layout(c, 4, NULL);
    CU_ASSERT_EQUAL(co_layout_wait(l, 4, 10000), CM_OK);
    st = wait_members(l, 1);
    CU_ASSERT(st.registered);
    co_layout_free(l);
    co_client_free(c);
    cu_etcd_stop(&e);
}

static void test_cache_file_during_outage(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    char cache[300];
    if (!cu_etcd_up(&e, 1, 300, &cfg, &c))
        return;
    snprintf(cache, sizeof(cache), "%s/layout.cache", cu_tmpdir());
    co_layout_config lc = {.etcd = &cfg, .cluster = "tl", .cache_path = cache};
    co_layout *l = NULL;
    CU_ASSERT_FATAL(co_layout_open(&lc, &l) == CM_OK);
    put_layout(c, 5, NULL);
    CU_ASSERT_EQUAL_FATAL(co_layout_wait(l, 5, 5000), CM_OK);
    put_layout(c, 0, "{\"version\":1,\"epoch\":6,\"azs\":7}"); /* rejected: not cached */
    co_layout_status st = wait_rejected(l, 1);
    CU_ASSERT_EQUAL(st.rejected, 1);
    co_layout_free(l);
    cu_etcd_kill(&e, 0);

    /* restarted during the outage: up on the cached layout, without etcd */
    int64_t t0 = cm_monotonic_ms();
    CU_ASSERT_FATAL(co_layout_open(&lc, &l) == CM_OK);
    CU_ASSERT_EQUAL(co_layout_wait(l, 5, 2000), CM_OK);
    CU_ASSERT(cm_monotonic_ms() - t0 < 2000);
    CU_ASSERT_EQUAL(current_epoch(l), 5);
    co_layout_get_status(l, &st);
    CU_ASSERT_EQUAL(st.rejected, 0);
    co_layout_free(l);

    /* bad configurations are refused */
    lc.cluster = "bad/cluster";
    CU_ASSERT_EQUAL(co_layout_open(&lc, &l), CM_ERR_INVAL);
    lc.cluster = "tl";
    lc.node_id = "n/1";
    lc.addr = "127.0.0.1:1";
    CU_ASSERT_EQUAL(co_layout_open(&lc, &l), CM_ERR_INVAL);
    co_client_free(c);
    cu_etcd_stop(&e);
}

/*
 * A graceful stop's co_layout_leave: the member key is gone from etcd when it returns, and the
 * member thread does not register again (several refresh periods later it is still gone).
 */
static void test_leave(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    if (!cu_etcd_up(&e, 1, 500, &cfg, &c))
        return;
    co_layout_config lc = member_n1(&cfg, 30, 50);
    lc.s3 = NULL;
    co_layout *l = NULL;
    CU_ASSERT_FATAL(co_layout_open(&lc, &l) == CM_OK);
    CU_ASSERT_FATAL(wait_member_key(c, 0) != 0);
    co_kv kv;
    co_layout_leave(l, 5000);
    CU_ASSERT_EQUAL(co_get(c, "/cairn/tl/nodes/n1", &kv, NULL), CM_ERR_NOTFOUND);
    usleep(300000); /* six refresh periods: a thread that registered again would have by now */
    CU_ASSERT_EQUAL(co_get(c, "/cairn/tl/nodes/n1", &kv, NULL), CM_ERR_NOTFOUND);
    co_layout_status st;
    co_layout_get_status(l, &st);
    CU_ASSERT_EQUAL(st.registered, 0);
    co_layout_leave(l, 5000); /* again: nothing left to do, returns at once */
    co_layout_leave(NULL, 0);
    co_layout_free(l);
    co_client_free(c);
    cu_etcd_stop(&e);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"adopt, reject, members, outage", test_adopt_reject_members},
        {"cache file during an outage", test_cache_file_during_outage},
        {"leave the member list at a stop", test_leave},
        {NULL, NULL},
    };
    cu_add_suite("coord_layout", tests);
}
