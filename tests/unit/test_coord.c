/*
 * test_coord.c - coord/ against one real etcd member started by the test: put/get and
 * compare-and-set conflicts, prefix ranges, lease expiry, liveness of a killed process's
 * registration, leader election between two contenders with fencing tokens, member status.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cm_util.h"
#include "cu_etcd.h"
#include "cu_main.h"

static cu_etcd etcd;
static int etcd_up;
static co_config cfg;

/* The suite's member, started on first use; NULL (and a skip or a CI failure) without etcd. */
static co_client *client(void)
{
    if (!etcd_up && !cu_etcd_up(&etcd, 1, 1000, &cfg, NULL))
        return NULL;
    etcd_up = 1;
    co_client *c = NULL;
    CU_ASSERT_EQUAL(co_client_new(&cfg, &c), CM_OK);
    return c;
}

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

static void test_put_get_cas(void)
{
    co_client *c = client();
    if (!c)
        return;
    co_kv kv;
    int64_t r1, r2, cur, rev;
    CU_ASSERT_EQUAL(co_get(c, "/t/kv/missing", &kv, &rev), CM_ERR_NOTFOUND);
    CU_ASSERT(rev > 0);
    CU_ASSERT_EQUAL(co_put(c, "/t/kv/a", "one", 3, 0, &r1), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_get(c, "/t/kv/a", &kv, NULL), CM_OK);
    CU_ASSERT_EQUAL(kv.len, 3);
    CU_ASSERT_EQUAL(memcmp(kv.value, "one", 3), 0);
    CU_ASSERT_STRING_EQUAL(kv.key, "/t/kv/a");
    CU_ASSERT_EQUAL(kv.mod_rev, r1);
    CU_ASSERT_EQUAL(kv.create_rev, r1);
    co_kv_release(&kv);

    /* compare-and-set from revision r1 wins once; the second writer from r1 conflicts */
    CU_ASSERT_EQUAL(co_cas(c, "/t/kv/a", "two", 3, r1, 0, &r2), CM_OK);
    CU_ASSERT(r2 > r1);
    CU_ASSERT_EQUAL(co_cas(c, "/t/kv/a", "other", 5, r1, 0, &cur), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(cur, r2);
    CU_ASSERT_EQUAL_FATAL(co_get(c, "/t/kv/a", &kv, NULL), CM_OK);
    CU_ASSERT_EQUAL(memcmp(kv.value, "two", 3), 0);
    CU_ASSERT_EQUAL(kv.version, 2);
    co_kv_release(&kv);

    /* expect 0: create only */
    CU_ASSERT_EQUAL(co_cas(c, "/t/kv/a", "x", 1, 0, 0, &cur), CM_ERR_CONFLICT);
    CU_ASSERT_EQUAL(co_cas(c, "/t/kv/new", "", 0, 0, 0, &cur), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_get(c, "/t/kv/new", &kv, NULL), CM_OK);
    CU_ASSERT_EQUAL(kv.len, 0);
    co_kv_release(&kv);

    /* binary values survive base64 both ways */
    uint8_t bin[300];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (uint8_t)(i * 7);
    CU_ASSERT_EQUAL(co_put(c, "/t/kv/bin", bin, sizeof(bin), 0, NULL), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_get(c, "/t/kv/bin", &kv, NULL), CM_OK);
    CU_ASSERT_EQUAL(kv.len, sizeof(bin));
    CU_ASSERT_EQUAL(memcmp(kv.value, bin, sizeof(bin)), 0);
    co_kv_release(&kv);

    int64_t deleted = 0;
    CU_ASSERT_EQUAL(co_delete(c, "/t/kv/a", 0, &deleted), CM_OK);
    CU_ASSERT_EQUAL(deleted, 1);
    CU_ASSERT_EQUAL(co_get(c, "/t/kv/a", &kv, NULL), CM_ERR_NOTFOUND);
    co_client_free(c);
}

static void test_prefix_range(void)
{
    co_client *c = client();
    if (!c)
        return;
    const char *keys[] = {"/t/p/c", "/t/p/a", "/t/p/b", "/t/pq", "/t/o"};
    for (size_t i = 0; i < CM_ARRAY_LEN(keys); i++)
        CU_ASSERT_EQUAL(co_put(c, keys[i], keys[i], strlen(keys[i]), 0, NULL), CM_OK);
    co_kvs kvs;
    CU_ASSERT_EQUAL_FATAL(co_range_prefix(c, "/t/p/", 0, &kvs), CM_OK);
    CU_ASSERT_EQUAL_FATAL(kvs.n, 3);
    CU_ASSERT_STRING_EQUAL(kvs.kvs[0].key, "/t/p/a");
    CU_ASSERT_STRING_EQUAL(kvs.kvs[1].key, "/t/p/b");
    CU_ASSERT_STRING_EQUAL(kvs.kvs[2].key, "/t/p/c");
    CU_ASSERT_STRING_EQUAL((char *)kvs.kvs[2].value, "/t/p/c");
    CU_ASSERT(kvs.revision >= kvs.kvs[2].mod_rev);
    co_kvs_release(&kvs);
    CU_ASSERT_EQUAL_FATAL(co_range_prefix(c, "/t/p", 2, &kvs), CM_OK);
    CU_ASSERT_EQUAL(kvs.n, 2);
    co_kvs_release(&kvs);
    int64_t deleted = 0;
    CU_ASSERT_EQUAL(co_delete(c, "/t/p/", 1, &deleted), CM_OK);
    CU_ASSERT_EQUAL(deleted, 3);
    CU_ASSERT_EQUAL_FATAL(co_range_prefix(c, "/t/p", 0, &kvs), CM_OK);
    CU_ASSERT_EQUAL(kvs.n, 1); /* /t/pq stays */
    co_kvs_release(&kvs);
    co_client_free(c);
}

static int key_present(co_client *c, const char *key)
{
    co_kv kv;
    cm_err e = co_get(c, key, &kv, NULL);
    if (e == CM_OK)
        co_kv_release(&kv);
    CU_ASSERT(e == CM_OK || e == CM_ERR_NOTFOUND);
    return e == CM_OK;
}

/* Poll until key is gone; the elapsed milliseconds, or -1 after limit_ms. */
static int64_t wait_gone(co_client *c, const char *key, int limit_ms)
{
    int64_t t0 = cm_monotonic_ms();
    while (cm_monotonic_ms() - t0 < limit_ms) {
        if (!key_present(c, key))
            return cm_monotonic_ms() - t0;
        sleep_ms(100);
    }
    return -1;
}

static void test_lease_expiry(void)
{
    co_client *c = client();
    if (!c)
        return;
    int64_t lease, ttl;
    CU_ASSERT_EQUAL_FATAL(co_lease_grant(c, 2, &lease), CM_OK);
    CU_ASSERT_EQUAL(co_put(c, "/t/lease/k", "v", 1, lease, NULL), CM_OK);
    for (int i = 0; i < 5; i++) { /* 3 s of keepalives: longer than the TTL */
        sleep_ms(600);
        CU_ASSERT_EQUAL(co_lease_keepalive(c, lease, &ttl), CM_OK);
        CU_ASSERT(ttl >= 1 && ttl <= 2);
    }
    CU_ASSERT(key_present(c, "/t/lease/k"));
    co_kv kv;
    CU_ASSERT_EQUAL_FATAL(co_get(c, "/t/lease/k", &kv, NULL), CM_OK);
    CU_ASSERT_EQUAL(kv.lease, lease);
    co_kv_release(&kv);
    int64_t gone = wait_gone(c, "/t/lease/k", 6000);
    CU_ASSERT(gone >= 0);
    CU_ASSERT_EQUAL(co_lease_keepalive(c, lease, &ttl), CM_ERR_NOTFOUND);
    /* a put bound to an expired lease is refused */
    CU_ASSERT_EQUAL(co_put(c, "/t/lease/k", "v", 1, lease, NULL), CM_ERR_NOTFOUND);
    co_client_free(c);
}

static void test_liveness(void)
{
    co_client *c = client();
    if (!c)
        return;
    int ready[2];
    CU_ASSERT_FATAL(pipe(ready) == 0);
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) { /* a member that registers, then is SIGKILLed */
        co_keeper *k = NULL;
        co_client *cc = NULL;
        if (co_keeper_start(&cfg, 2, &k) != CM_OK || co_client_new(&cfg, &cc) != CM_OK ||
            co_member_register(cc, "/t/members/", "child", "c", 1, co_keeper_lease(k)) != CM_OK)
            _exit(1);
        if (write(ready[1], "r", 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(ready[1]);
    char b;
    CU_ASSERT_FATAL(read(ready[0], &b, 1) == 1);
    close(ready[0]);

    co_keeper *k = NULL;
    CU_ASSERT_EQUAL_FATAL(co_keeper_start(&cfg, 2, &k), CM_OK);
    CU_ASSERT_EQUAL(co_member_register(c, "/t/members/", "parent", "p", 1, co_keeper_lease(k)),
                    CM_OK);
    co_kvs kvs;
    CU_ASSERT_EQUAL_FATAL(co_member_list(c, "/t/members/", &kvs), CM_OK);
    CU_ASSERT_EQUAL(kvs.n, 2);
    co_kvs_release(&kvs);

    sleep_ms(2500); /* the child's keeper keeps its key alive past the TTL */
    CU_ASSERT(key_present(c, "/t/members/child"));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    int64_t gone = wait_gone(c, "/t/members/child", 6000);
    CU_ASSERT(gone >= 0);
    printf("\n  killed member's key gone after %lld ms (TTL 2 s)\n", (long long)gone);
    CU_ASSERT_EQUAL_FATAL(co_member_list(c, "/t/members/", &kvs), CM_OK);
    CU_ASSERT_EQUAL_FATAL(kvs.n, 1);
    CU_ASSERT_STRING_EQUAL(kvs.kvs[0].key, "/t/members/parent");
    co_kvs_release(&kvs);
    CU_ASSERT(co_keeper_alive(k));
    co_keeper_free(k, 1); /* revoked: the key goes at once */
    CU_ASSERT(!key_present(c, "/t/members/parent"));

    /* a keeper learns that its lease is gone (here revoked by someone else) and says so */
    CU_ASSERT_EQUAL_FATAL(co_keeper_start(&cfg, 3, &k), CM_OK);
    CU_ASSERT_EQUAL(co_lease_revoke(c, co_keeper_lease(k)), CM_OK);
    int64_t t0 = cm_monotonic_ms();
    while (co_keeper_alive(k) && cm_monotonic_ms() - t0 < 4000)
        sleep_ms(50);
    CU_ASSERT(!co_keeper_alive(k));
    co_keeper_free(k, 1);
    co_client_free(c);
}

static void test_leader(void)
{
    co_client *a = client(), *b = a ? client() : NULL;
    if (!a || !b) {
        co_client_free(a);
        return;
    }
    const char *key = "/t/leaders/part-7";
    co_keeper *ka = NULL, *kb = NULL;
    CU_ASSERT_EQUAL_FATAL(co_keeper_start(&cfg, 5, &ka), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_keeper_start(&cfg, 5, &kb), CM_OK);
    int64_t la = co_keeper_lease(ka), lb = co_keeper_lease(kb), ta, ta2, tb, tx;

    CU_ASSERT_EQUAL(co_leader_acquire(a, key, la, "A", 1, &ta), CM_OK);
    CU_ASSERT_EQUAL(co_leader_acquire(a, key, la, "A", 1, &ta2), CM_OK); /* idempotent */
    CU_ASSERT_EQUAL(ta2, ta);
    CU_ASSERT_EQUAL(co_leader_acquire(b, key, lb, "B", 1, &tx), CM_ERR_EXISTS);
    CU_ASSERT_EQUAL(tx, ta);
    CU_ASSERT_EQUAL(co_fenced_put(a, key, ta, "/t/data/x", "a1", 2, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_fenced_put(b, key, tx + 1, "/t/data/x", "b?", 2, NULL), CM_ERR_PRECONDITION);

    /* A steps down: B wins with a larger token, A's old token is refused from now on */
    CU_ASSERT_EQUAL(co_leader_release(a, key, ta), CM_OK);
    CU_ASSERT_EQUAL(co_leader_acquire(b, key, lb, "B", 1, &tb), CM_OK);
    CU_ASSERT(tb > ta);
    CU_ASSERT_EQUAL(co_fenced_put(a, key, ta, "/t/data/x", "a2", 2, NULL), CM_ERR_PRECONDITION);
    CU_ASSERT_EQUAL(co_leader_release(a, key, ta), CM_ERR_PRECONDITION); /* B's key stays */
    CU_ASSERT_EQUAL(co_fenced_put(b, key, tb, "/t/data/x", "b1", 2, NULL), CM_OK);
    co_kv kv;
    CU_ASSERT_EQUAL_FATAL(co_get(a, "/t/data/x", &kv, NULL), CM_OK);
    CU_ASSERT_EQUAL(memcmp(kv.value, "b1", 2), 0);
    co_kv_release(&kv);

    /* B dies (its lease is no longer kept alive): A wins once the lease expired */
    co_keeper_free(kb, 0);
    int64_t lc;
    CU_ASSERT_EQUAL(co_leader_release(b, key, tb), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_lease_grant(b, 2, &lc), CM_OK);
    CU_ASSERT_EQUAL(co_leader_acquire(b, key, lc, "C", 1, &tb), CM_OK);
    CU_ASSERT_EQUAL(co_leader_acquire(a, key, la, "A", 1, &tx), CM_ERR_EXISTS);
    int64_t t0 = cm_monotonic_ms();
    cm_err e;
    while ((e = co_leader_acquire(a, key, la, "A", 1, &ta2)) == CM_ERR_EXISTS &&
           cm_monotonic_ms() - t0 < 6000)
        sleep_ms(100);
    CU_ASSERT_EQUAL(e, CM_OK);
    CU_ASSERT(ta2 > tb);
    printf("\n  leader lease (TTL 2 s) taken over %lld ms after its last renewal\n",
           (long long)(cm_monotonic_ms() - t0));
    CU_ASSERT_EQUAL(co_fenced_put(b, key, tb, "/t/data/x", "c?", 2, NULL), CM_ERR_PRECONDITION);
    co_keeper_free(ka, 1);
    CU_ASSERT(!key_present(a, key));
    co_client_free(a);
    co_client_free(b);
}

static void test_status(void)
{
    co_client *c = client();
    if (!c)
        return;
    co_status_info st;
    int64_t rev;
    CU_ASSERT_EQUAL(co_put(c, "/t/status", "s", 1, 0, &rev), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_status(c, &st), CM_OK);
    CU_ASSERT(st.member_id != 0);
    CU_ASSERT_EQUAL(st.leader_id, st.member_id); /* a single member leads itself */
    CU_ASSERT(st.revision >= rev);
    CU_ASSERT(st.raft_term >= 1);
    CU_ASSERT(st.db_size > 0);
    CU_ASSERT_EQUAL(strncmp(st.version, "3.", 2), 0);
    co_client_free(c);
}

static void test_zz_stop(void)
{
    if (etcd_up)
        cu_etcd_stop(&etcd);
    etcd_up = 0;
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"put, get, compare-and-set", test_put_get_cas},
        {"prefix range and delete", test_prefix_range},
        {"lease keepalive and expiry", test_lease_expiry},
        {"liveness: a killed member's key vanishes", test_liveness},
        {"leader: two contenders, release, expiry, fencing", test_leader},
        {"member status", test_status},
        {"stop etcd", test_zz_stop},
        {NULL, NULL},
    };
    cu_add_suite("coord", tests);
}
