/*
 * test_coord_users.c - the cluster's users and keys document (coord/co_users.c): encode and
 * decode (sorted, every field kept, the wrapped secret's bytes intact, "disabled" left out when
 * false, broken documents refused); against a real etcd member: every change by compare-and-set
 * (create, a taken name or key refused, another key, disable and enable, key disable and delete,
 * a reseal of one key's secret only from the secret it read, delete taking the user's keys), a
 * broken stored document never written over, 8 threads creating 8 users at once losing none; a
 * follower seeing another writer's change in memory and calling its hook, its own change applied
 * when the call returns, and a restart during an etcd outage starting from its cache file.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm_util.h"
#include "co_users.h"
#include "cu_etcd.h"
#include "cu_main.h"

#define KEY "/cairn/tu/users"

static co_user user(const char *name, int64_t ms)
{
    co_user u = {.created_ms = ms};
    snprintf(u.name, sizeof(u.name), "%s", name);
    return u;
}

static co_user_key ukey(const char *ak, const char *name, uint8_t fill)
{
    co_user_key k = {.created_ms = 1733353200000};
    snprintf(k.ak, sizeof(k.ak), "%s", ak);
    snprintf(k.user, sizeof(k.user), "%s", name);
    k.sealed_len = 73; /* 40 bytes wrapped: version, key id, nonce, tag */
    for (size_t i = 0; i < k.sealed_len; i++)
        k.sealed[i] = (uint8_t)(fill + i * 7); /* binary, with zero and high bytes */
    return k;
}

static cm_err decode_str(const char *s, co_users_doc *d)
{
    return co_users_decode((const uint8_t *)s, strlen(s), d);
}

static void test_encode_decode(void)
{
    co_user u[2] = {user("zed", 2), user("alice", 1)};
    co_user_key k[3] = {ukey("CKZZ", "alice", 0), ukey("CKAA", "zed", 200),
                        ukey("CKMM", "alice", 9)};
    u[0].disabled = 1;
    k[2].disabled = 1;
    co_users_doc in = {u, 2, k, 3}, out;
    char *doc = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(co_users_encode(&in, &doc, &len), CM_OK);
    CU_ASSERT_EQUAL(len, strlen(doc));
    CU_ASSERT(strstr(doc, "\"alice\"") < strstr(doc, "\"zed\"")); /* users sorted by name */
    CU_ASSERT(strstr(doc, "CKAA") < strstr(doc, "CKMM") &&
              strstr(doc, "CKMM") < strstr(doc, "CKZZ"));
    CU_ASSERT_PTR_NULL(strstr(doc, "false")); /* not disabled: left out */
    CU_ASSERT_EQUAL_FATAL(co_users_decode((const uint8_t *)doc, len, &out), CM_OK);
    CU_ASSERT_EQUAL_FATAL(out.nusers, 2);
    CU_ASSERT_EQUAL_FATAL(out.nkeys, 3);
    CU_ASSERT_STRING_EQUAL(out.users[0].name, "alice");
    CU_ASSERT_EQUAL(out.users[0].disabled, 0);
    CU_ASSERT_EQUAL(out.users[1].disabled, 1);
    CU_ASSERT_EQUAL(out.users[1].created_ms, 2);
    const co_user_key *m = co_users_find_key(&out, "CKMM");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_STRING_EQUAL(m->user, "alice");
    CU_ASSERT_EQUAL(m->disabled, 1);
    CU_ASSERT_EQUAL(m->created_ms, 1733353200000);
    CU_ASSERT_EQUAL(m->sealed_len, 73);
    CU_ASSERT_EQUAL(memcmp(m->sealed, k[2].sealed, 73), 0);
    CU_ASSERT_EQUAL(co_users_find_key(&out, "CKAA")->sealed[1], (uint8_t)207);
    CU_ASSERT_PTR_NULL(co_users_find_key(&out, "CKXX"));
    CU_ASSERT_PTR_NOT_NULL(co_users_find(&out, "zed"));
    co_users_doc_release(&out);
    free(doc);

    /* an empty document */
    co_users_doc none = {0};
    CU_ASSERT_EQUAL_FATAL(co_users_encode(&none, &doc, &len), CM_OK);
    CU_ASSERT_STRING_EQUAL(doc, "{\"v\":1,\"users\":[],\"keys\":[]}");
    free(doc);

    /* documents that would not decode are not written */
    co_user_key orphan = ukey("CK01", "nobody", 1);
    co_users_doc bad = {u, 2, &orphan, 1};
    CU_ASSERT_EQUAL(co_users_encode(&bad, &doc, &len), CM_ERR_INVAL);
    co_user twice[2] = {user("bob", 1), user("bob", 2)};
    co_users_doc dup = {twice, 2, NULL, 0};
    CU_ASSERT_EQUAL(co_users_encode(&dup, &doc, &len), CM_ERR_INVAL);
}

static void test_decode_refuses(void)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{\"v\":2,\"users\":[],\"keys\":[]}",
        "{\"v\":1,\"users\":[]}",
        "{\"v\":1,\"users\":{},\"keys\":[]}",
        "{\"v\":1,\"users\":[{\"name\":\"\",\"created_ms\":1}],\"keys\":[]}",
        "{\"v\":1,\"users\":[{\"name\":\"a\"}],\"keys\":[]}",
        "{\"v\":1,\"users\":[{\"name\":\"a\",\"created_ms\":1},{\"name\":\"a\",\"created_ms\":2}],"
        "\"keys\":[]}",
        "{\"v\":1,\"users\":[{\"name\":\"a\",\"created_ms\":1,\"disabled\":1}],\"keys\":[]}",
        /* a key of a user the document lacks */
        "{\"v\":1,\"users\":[],\"keys\":[{\"ak\":\"CK1\",\"user\":\"a\",\"created_ms\":1,"
        "\"secret\":\"AAAA\"}]}",
        /* a secret that is not base64, an empty one, one too long */
        "{\"v\":1,\"users\":[{\"name\":\"a\",\"created_ms\":1}],\"keys\":[{\"ak\":\"CK1\","
        "\"user\":\"a\",\"created_ms\":1,\"secret\":\"!!!!\"}]}",
        "{\"v\":1,\"users\":[{\"name\":\"a\",\"created_ms\":1}],\"keys\":[{\"ak\":\"CK1\","
        "\"user\":\"a\",\"created_ms\":1,\"secret\":\"\"}]}",
        /* a duplicate member */
        "{\"v\":1,\"v\":1,\"users\":[],\"keys\":[]}",
        /* a name of 65 characters */
        "{\"v\":1,\"users\":[{\"name\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
        "\"created_ms\":1}],\"keys\":[]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        co_users_doc d;
        cm_err e = decode_str(bad[i], &d);
        if (e != CM_ERR_CORRUPT)
            fprintf(stderr, "document %zu decoded: %s\n", i, bad[i]);
        CU_ASSERT_EQUAL(e, CM_ERR_CORRUPT);
        CU_ASSERT_PTR_NULL(d.users);
        CU_ASSERT_PTR_NULL(d.keys);
    }
    /* a secret of 216 bytes (base64 of more than CO_SEALED_MAX) */
    char big[600], b64[400];
    uint8_t raw[216] = {0};
    cm_base64_encode(raw, sizeof(raw), b64);
    snprintf(big, sizeof(big),
             "{\"v\":1,\"users\":[{\"name\":\"a\",\"created_ms\":1}],\"keys\":[{\"ak\":\"CK1\","
             "\"user\":\"a\",\"created_ms\":1,\"secret\":\"%s\"}]}",
             b64);
    co_users_doc d;
    CU_ASSERT_EQUAL(decode_str(big, &d), CM_ERR_CORRUPT);
}

static co_user_change create_ch(const char *name, const char *ak, uint8_t fill)
{
    co_user_change ch = {.kind = CO_UCH_CREATE, .user = user(name, 5), .key = ukey(ak, name, fill)};
    return ch;
}

static void test_changes(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_users_doc d;
    int64_t rev = 0, rev2 = 0;
    if (!cu_etcd_up(&e, 1, 1000, &cfg, &c))
        return;
    co_user_change ch = create_ch("alice", "CKALICE1", 3);
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &ch, &rev), CM_OK);
    CU_ASSERT(rev > 0);
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &ch, NULL), CM_ERR_EXISTS); /* the name */
    co_user_change same_ak = create_ch("bob", "CKALICE1", 4);
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &same_ak, NULL), CM_ERR_EXISTS); /* the key */
    co_user_change bob = create_ch("bob", "CKBOB1", 5);
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &bob, NULL), CM_OK);
    co_user_change more = {.kind = CO_UCH_KEY_ADD, .key = ukey("CKALICE2", "alice", 6)};
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &more, NULL), CM_OK);
    co_user_change orphan = {.kind = CO_UCH_KEY_ADD, .key = ukey("CKX", "carol", 6)};
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &orphan, NULL), CM_ERR_NOTFOUND);

    co_user_change dis = {.kind = CO_UCH_DISABLE, .name = "bob", .disabled = 1};
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &dis, &rev), CM_OK);
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &dis, &rev2), CM_OK);
    CU_ASSERT_EQUAL(rev2, rev); /* already disabled: nothing written */
    co_user_change kdis = {.kind = CO_UCH_KEY_DISABLE, .ak = "CKALICE1", .disabled = 1};
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &kdis, NULL), CM_OK);
    co_user_change nouser = {.kind = CO_UCH_DISABLE, .name = "carol", .disabled = 1};
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &nouser, NULL), CM_ERR_NOTFOUND);
    co_user_change nokey = {.kind = CO_UCH_KEY_DELETE, .ak = "CKNONE"};
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &nokey, NULL), CM_ERR_NOTFOUND);

    CU_ASSERT_EQUAL_FATAL(co_users_read(c, KEY, &d, &rev), CM_OK);
    CU_ASSERT_EQUAL(d.nusers, 2);
    CU_ASSERT_EQUAL(d.nkeys, 3);
    CU_ASSERT_EQUAL(co_users_find(&d, "bob")->disabled, 1);
    CU_ASSERT_EQUAL(co_users_find(&d, "alice")->disabled, 0);
    CU_ASSERT_EQUAL(co_users_find_key(&d, "CKALICE1")->disabled, 1);
    CU_ASSERT_EQUAL(co_users_find_key(&d, "CKALICE2")->disabled, 0);
    CU_ASSERT_EQUAL(memcmp(co_users_find_key(&d, "CKALICE2")->sealed, more.key.sealed, 73), 0);
    co_users_doc_release(&d);

    /* a reseal replaces the secret read, only that one; again: nothing written */
    co_user_key nk = ukey("CKALICE2", "alice", 9);
    co_user_change rs = {.kind = CO_UCH_KEY_RESEAL,
                         .key = nk,
                         .old = more.key.sealed,
                         .old_len = more.key.sealed_len};
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &rs, &rev), CM_OK);
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &rs, &rev2), CM_OK);
    CU_ASSERT_EQUAL(rev2, rev);
    co_user_change stale = {.kind = CO_UCH_KEY_RESEAL,
                            .key = ukey("CKALICE2", "alice", 11),
                            .old = more.key.sealed,
                            .old_len = more.key.sealed_len};
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &stale, NULL), CM_ERR_NOTFOUND); /* not old any more */
    co_user_change gone = {.kind = CO_UCH_KEY_RESEAL,
                           .key = ukey("CKNONE", "alice", 9),
                           .old = more.key.sealed,
                           .old_len = more.key.sealed_len};
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &gone, NULL), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL_FATAL(co_users_read(c, KEY, &d, &rev), CM_OK);
    CU_ASSERT_EQUAL(memcmp(co_users_find_key(&d, "CKALICE2")->sealed, nk.sealed, 73), 0);
    CU_ASSERT_EQUAL(co_users_find_key(&d, "CKALICE2")->disabled, 0);
    CU_ASSERT_EQUAL(d.nkeys, 3);
    co_users_doc_release(&d);

    /* delete takes the user's keys; a key delete takes one */
    co_user_change del = {.kind = CO_UCH_DELETE, .name = "alice"};
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &del, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &del, NULL), CM_ERR_NOTFOUND);
    co_user_change kdel = {.kind = CO_UCH_KEY_DELETE, .ak = "CKBOB1"};
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &kdel, NULL), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_users_read(c, KEY, &d, &rev), CM_OK);
    CU_ASSERT_EQUAL(d.nusers, 1);
    CU_ASSERT_EQUAL(d.nkeys, 0);
    CU_ASSERT_PTR_NOT_NULL(co_users_find(&d, "bob"));
    co_users_doc_release(&d);

    /* a broken stored document is never written over */
    CU_ASSERT_EQUAL(co_put(c, KEY, "{\"v\":1,\"users\":", 15, 0, &rev), CM_OK);
    co_user_change eve = create_ch("eve", "CKEVE", 1);
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &eve, NULL), CM_ERR_CORRUPT);
    co_kv kv;
    CU_ASSERT_EQUAL_FATAL(co_get(c, KEY, &kv, NULL), CM_OK);
    CU_ASSERT_EQUAL(kv.mod_rev, rev);
    co_kv_release(&kv);
    co_client_free(c);
    cu_etcd_stop(&e);
}

typedef struct {
    co_config *cfg;
    int i;
    cm_err e;
} racer;

static void *race_one(void *arg)
{
    racer *r = arg;
    co_client *c = NULL;
    char name[16], ak[16];
    snprintf(name, sizeof(name), "user%d", r->i);
    snprintf(ak, sizeof(ak), "CKRACE%d", r->i);
    co_user_change ch = create_ch(name, ak, (uint8_t)r->i);
    r->e = co_client_new(r->cfg, &c);
    if (r->e == CM_OK)
        r->e = co_users_change(c, KEY, &ch, NULL);
    co_client_free(c);
    return NULL;
}

static void test_race(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_users_doc d;
    int64_t rev;
    pthread_t t[8];
    racer r[8];
    if (!cu_etcd_up(&e, 1, 2000, &cfg, &c))
        return;
    for (int i = 0; i < 8; i++) {
        r[i] = (racer){.cfg = &cfg, .i = i};
        pthread_create(&t[i], NULL, race_one, &r[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(r[i].e, CM_OK);
    }
    CU_ASSERT_EQUAL_FATAL(co_users_read(c, KEY, &d, &rev), CM_OK);
    CU_ASSERT_EQUAL(d.nusers, 8); /* every conflict retried: none lost */
    CU_ASSERT_EQUAL(d.nkeys, 8);
    co_users_doc_release(&d);
    co_client_free(c);
    cu_etcd_stop(&e);
}

static atomic_int hook_calls;

static void count_hook(void *arg)
{
    (void)arg;
    atomic_fetch_add(&hook_calls, 1);
}

/* Wait (at most 3 s) until f's applied version has n users. */
static int wait_users(co_users *f, size_t n)
{
    for (int i = 0; i < 300; i++) {
        co_users_doc d;
        if (co_users_snapshot(f, &d) == CM_OK) {
            size_t have = d.nusers;
            co_users_doc_release(&d);
            if (have == n)
                return 1;
        }
        usleep(10000);
    }
    return 0;
}

static void test_follower(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_users *f = NULL, *g = NULL;
    co_users_doc d;
    char cache[512];
    if (!cu_etcd_up(&e, 1, 500, &cfg, &c))
        return;
    snprintf(cache, sizeof(cache), "%s/users.cache", cu_tmpdir());
    unlink(cache);
    atomic_store(&hook_calls, 0);
    CU_ASSERT_EQUAL_FATAL(co_users_open(&cfg, "tu", cache, count_hook, NULL, &f), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_users_open(&cfg, "tu", NULL, NULL, NULL, &g), CM_OK);

    /* another writer's change reaches the follower's memory and its hook */
    co_user_change ch = create_ch("alice", "CKA", 1);
    CU_ASSERT_EQUAL(co_users_change(c, KEY, &ch, NULL), CM_OK);
    CU_ASSERT(wait_users(f, 1));
    for (int i = 0; i < 300 && atomic_load(&hook_calls) < 1; i++)
        usleep(10000); /* the hook runs just after the version is readable */
    CU_ASSERT(atomic_load(&hook_calls) >= 1);

    /* a change through the other follower is applied there when the call returns */
    co_user_change dis = {.kind = CO_UCH_DISABLE, .name = "alice", .disabled = 1};
    CU_ASSERT_EQUAL(co_users_apply(g, &dis), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_users_snapshot(g, &d), CM_OK);
    CU_ASSERT_EQUAL_FATAL(d.nusers, 1);
    CU_ASSERT_EQUAL(d.users[0].disabled, 1);
    co_users_doc_release(&d);
    co_user_change bob = create_ch("bob", "CKB", 2);
    CU_ASSERT_EQUAL(co_users_apply(g, &bob), CM_OK);
    CU_ASSERT(wait_users(f, 2));

    /* a broken version is ignored: the last good one stays */
    int64_t rev;
    CU_ASSERT_EQUAL(co_put(c, KEY, "nonsense", 8, 0, &rev), CM_OK);
    usleep(200000);
    CU_ASSERT(wait_users(f, 2));

    /* restarted while etcd is down: the cache file gives the users at once */
    co_users_free(f);
    f = NULL;
    cu_etcd_kill(&e, 0);
    atomic_store(&hook_calls, 0);
    CU_ASSERT_EQUAL_FATAL(co_users_open(&cfg, "tu", cache, count_hook, NULL, &f), CM_OK);
    CU_ASSERT_EQUAL(atomic_load(&hook_calls), 1);
    CU_ASSERT_EQUAL_FATAL(co_users_snapshot(f, &d), CM_OK);
    CU_ASSERT_EQUAL(d.nusers, 2);
    CU_ASSERT_EQUAL(d.nkeys, 2);
    CU_ASSERT_EQUAL(memcmp(co_users_find_key(&d, "CKB")->sealed, bob.key.sealed, 73), 0);
    co_users_doc_release(&d);
    /* and a change while etcd is down fails as unavailable, changing nothing */
    co_user_change carol = create_ch("carol", "CKC", 3);
    CU_ASSERT_EQUAL(co_users_apply(f, &carol), CM_ERR_UNAVAILABLE);
    co_users_free(f);
    co_users_free(g);
    co_client_free(c);
    cu_etcd_stop(&e);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"encode and decode", test_encode_decode},
                                    {"broken documents refused", test_decode_refuses},
                                    {"changes by compare-and-set", test_changes},
                                    {"8 creators at once", test_race},
                                    {"the follower", test_follower},
                                    {NULL, NULL}};
    cu_add_suite("coord_users", tests);
}
