/*
 * test_coord_buckets.c - the cluster's bucket namespace document (coord/co_buckets.c): encode and
 * decode (sorted, every field kept, broken documents refused); against a real etcd member: add
 * and remove by compare-and-set, an existing name reported with its record, a broken stored
 * document left alone; 8 threads adding 8 names at once lose none (every conflict retried), 8
 * threads adding one name at once: exactly one wins and the others see the winner's record; the
 * follower reports every change as added/removed in order (a re-creation as both, a broken or
 * deleted document as nothing), keeps its list while etcd is down (create then fails as
 * unavailable, lookup_fresh answers from memory), and reopened during the outage starts from its
 * cache file; a bucket a fresh lookup found while the watch lags answers its settings and tags
 * from memory until the watch catches up, and a later removal is not undone by that older read.
 * The consistency field: left out when strong, kept when available, a document
 * without it read as strong, any other value refused; set by compare-and-set (a no-op when
 * unchanged, unknown buckets and modes refused), known to the creating node's follower when the
 * create returns, and a later change seen from memory without added/removed reports. Bucket
 * tags: in the order set, left out when none, beyond S3's limits refused; set by compare-and-set
 * and read back from the follower's memory when the change returns, kept by other changes.
 * Access settings (acl, pab, ownership, policy): encoded when set, out-of-range values refused,
 * set field by field and read back from memory, reported to the access_changed hook. Members
 * this build does not know (per record and in the document) are written back unchanged.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm_util.h"
#include "co_buckets.h"
#include "cu_etcd.h"
#include "cu_main.h"

#define KEY "/cairn/tb/buckets"

static co_bucket rec(const char *name, const char *owner, uint64_t id)
{
    co_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "%s", name);
    snprintf(b.owner, sizeof(b.owner), "%s", owner);
    b.created_ms = 1733353200000 + (int64_t)id;
    b.id = id;
    return b;
}

/* Each of members in a bucket record makes the document invalid. */
static void refused(const char *const *members, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        char bad[320];
        size_t n = 0;
        co_bucket *out = NULL;
        int blen = snprintf(bad, sizeof(bad),
                            "{\"v\":1,\"buckets\":[{\"name\":\"b\",\"created_ms\":1,"
                            "\"owner\":\"a\",\"id\":\"0000000000000001\",%s}]}",
                            members[i]);
        CU_ASSERT_EQUAL(co_buckets_decode((const uint8_t *)bad, (size_t)blen, &out, &n),
                        CM_ERR_CORRUPT);
        CU_ASSERT_PTR_NULL(out);
    }
}

static void test_encode_decode(void)
{
    co_bucket in[3] = {rec("zeta", "AK1", 3), rec("alpha", "AK2", 0xfedcba9876543210ull),
                       rec("mid.dle-1", "AK1", 7)};
    in[2].versioning = 2;
    char *doc = NULL;
    size_t len = 0, n = 0;
    co_bucket *out = NULL;
    CU_ASSERT_EQUAL_FATAL(co_buckets_encode(in, 3, &doc, &len), CM_OK);
    CU_ASSERT_EQUAL(len, strlen(doc));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"v\":1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"id\":\"fedcba9876543210\""));
    CU_ASSERT(strstr(doc, "alpha") < strstr(doc, "mid.dle-1")); /* sorted by name */
    CU_ASSERT(strstr(doc, "mid.dle-1") < strstr(doc, "zeta"));
    CU_ASSERT_EQUAL_FATAL(co_buckets_decode((const uint8_t *)doc, len, &out, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(out[0].name, "alpha");
    CU_ASSERT_EQUAL(out[0].id, 0xfedcba9876543210ull);
    CU_ASSERT_EQUAL(out[0].created_ms, in[1].created_ms);
    CU_ASSERT_STRING_EQUAL(out[0].owner, "AK2");
    CU_ASSERT_EQUAL(out[1].versioning, 2);
    CU_ASSERT_PTR_EQUAL(co_buckets_find(out, n, "zeta"), &out[2]);
    CU_ASSERT_PTR_NULL(co_buckets_find(out, n, "nosuch"));
    free(out);
    free(doc);

    CU_ASSERT_EQUAL_FATAL(co_buckets_encode(NULL, 0, &doc, &len), CM_OK);
    CU_ASSERT_STRING_EQUAL(doc, "{\"v\":1,\"buckets\":[]}");
    CU_ASSERT_EQUAL(co_buckets_decode((const uint8_t *)doc, len, &out, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    free(doc);

    static const char *const bad[] = {
        "",
        "not json",
        "{\"v\":2,\"buckets\":[]}",
        "{\"v\":1}",
        "{\"v\":1,\"buckets\":{}}",
        "{\"v\":1,\"buckets\":[{\"created_ms\":1,\"owner\":\"a\",\"id\":\"0000000000000001\"}]}",
        "{\"v\":1,\"buckets\":[{\"name\":\"\",\"created_ms\":1,\"owner\":\"a\","
        "\"id\":\"0000000000000001\"}]}",
        "{\"v\":1,\"buckets\":[{\"name\":\"b\",\"created_ms\":1,\"owner\":\"a\",\"id\":\"xyz\"}]}",
        "{\"v\":1,\"buckets\":[{\"name\":\"b\",\"created_ms\":1,\"owner\":\"a\",\"versioning\":3,"
        "\"id\":\"0000000000000001\"}]}",
        "{\"v\":1,\"buckets\":[{\"name\":\"b\",\"created_ms\":1,\"owner\":\"a\","
        "\"id\":\"0000000000000001\"},{\"name\":\"b\",\"created_ms\":2,\"owner\":\"a\","
        "\"id\":\"0000000000000002\"}]}",
        "{\"v\":1,\"buckets\":[{\"name\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaa\",\"created_ms\":1,\"owner\":\"a\",\"id\":\"0000000000000001\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        out = NULL;
        CU_ASSERT_EQUAL(co_buckets_decode((const uint8_t *)bad[i], strlen(bad[i]), &out, &n),
                        CM_ERR_CORRUPT);
        CU_ASSERT_PTR_NULL(out);
    }
}

static void test_consistency_field(void)
{
    co_bucket in[2] = {rec("plain", "AK", 1), rec("fast", "AK", 2)};
    in[1].consistency = CO_CONSISTENCY_AVAILABLE;
    char *doc = NULL;
    size_t len = 0, n = 0;
    co_bucket *out = NULL;
    CU_ASSERT_EQUAL_FATAL(co_buckets_encode(in, 2, &doc, &len), CM_OK);
    const char *at = strstr(doc, "\"consistency\":\"available\"");
    CU_ASSERT_PTR_NOT_NULL(at);
    CU_ASSERT(at && strstr(at + 2, "consistency") == NULL); /* strong is left out */
    CU_ASSERT(at && at < strstr(doc, "plain"));             /* it is fast's ("fast" < "plain") */
    CU_ASSERT_EQUAL_FATAL(co_buckets_decode((const uint8_t *)doc, len, &out, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(co_buckets_find(out, n, "fast")->consistency, CO_CONSISTENCY_AVAILABLE);
    CU_ASSERT_EQUAL(co_buckets_find(out, n, "plain")->consistency, CO_CONSISTENCY_STRONG);
    free(out);
    free(doc);

    /* a document written before the field existed, and one naming strong explicitly */
    static const char *const strong[] = {
        "{\"v\":1,\"buckets\":[{\"name\":\"old\",\"created_ms\":1,\"owner\":\"a\","
        "\"versioning\":0,\"id\":\"0000000000000001\"}]}",
        "{\"v\":1,\"buckets\":[{\"name\":\"old\",\"created_ms\":1,\"owner\":\"a\","
        "\"id\":\"0000000000000001\",\"consistency\":\"strong\"}]}",
    };
    for (size_t i = 0; i < CM_ARRAY_LEN(strong); i++) {
        CU_ASSERT_EQUAL_FATAL(
            co_buckets_decode((const uint8_t *)strong[i], strlen(strong[i]), &out, &n), CM_OK);
        CU_ASSERT_EQUAL(n, 1);
        CU_ASSERT_EQUAL(out[0].consistency, CO_CONSISTENCY_STRONG);
        free(out);
    }

    /* a mode this node does not know is not guessed: the document is refused */
    static const char *const modes[] = {"\"eventual\"", "\"\"", "\"Available\"", "1", "null"};
    for (size_t i = 0; i < CM_ARRAY_LEN(modes); i++) {
        char bad[256];
        int blen = snprintf(bad, sizeof(bad),
                            "{\"v\":1,\"buckets\":[{\"name\":\"b\",\"created_ms\":1,"
                            "\"owner\":\"a\",\"id\":\"0000000000000001\",\"consistency\":%s}]}",
                            modes[i]);
        out = NULL;
        CU_ASSERT_EQUAL(co_buckets_decode((const uint8_t *)bad, (size_t)blen, &out, &n),
                        CM_ERR_CORRUPT);
        CU_ASSERT_PTR_NULL(out);
    }
    in[0].consistency = 7; /* nor written */
    doc = NULL;
    CU_ASSERT_EQUAL(co_buckets_encode(in, 2, &doc, &len), CM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(doc);
}

/* The tags field: written in the order set (left out when none), read back, and a document with
 * tags beyond S3's limits refused. */
static void test_tags_field(void)
{
    co_tag t[2] = {{"team", "storage"}, {"env", ""}};
    co_bucket in[2] = {rec("tagged", "AK", 1), rec("bare", "AK", 2)};
    in[0].tags = t;
    in[0].ntags = 2;
    char *doc = NULL;
    size_t len = 0, n = 0;
    co_bucket *out = NULL;
    CU_ASSERT_EQUAL_FATAL(co_buckets_encode(in, 2, &doc, &len), CM_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"tags\":[[\"team\",\"storage\"],[\"env\",\"\"]]"));
    const char *first = strstr(doc, "\"tags\"");
    CU_ASSERT(first && !strstr(first + 1, "\"tags\"")); /* left out for the untagged one */
    CU_ASSERT_EQUAL_FATAL(co_buckets_decode((const uint8_t *)doc, len, &out, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    const co_bucket *got = co_buckets_find(out, n, "tagged");
    CU_ASSERT_EQUAL_FATAL(got->ntags, 2);
    CU_ASSERT_STRING_EQUAL(got->tags[0].key, "team");
    CU_ASSERT_STRING_EQUAL(got->tags[0].value, "storage");
    CU_ASSERT_STRING_EQUAL(got->tags[1].key, "env");
    CU_ASSERT_STRING_EQUAL(got->tags[1].value, "");
    CU_ASSERT_EQUAL(co_buckets_find(out, n, "bare")->ntags, 0);
    CU_ASSERT_PTR_NULL(co_buckets_find(out, n, "bare")->tags);
    co_buckets_array_free(out, n);
    free(doc);

    /* 51 tags are not written, nor read */
    co_tag many[CO_BUCKET_TAGS_MAX + 1];
    char keys[CO_BUCKET_TAGS_MAX + 1][8];
    for (int i = 0; i <= CO_BUCKET_TAGS_MAX; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        many[i] = (co_tag){keys[i], "v"};
    }
    in[0].tags = many;
    in[0].ntags = CO_BUCKET_TAGS_MAX + 1;
    doc = NULL;
    CU_ASSERT_EQUAL(co_buckets_encode(in, 2, &doc, &len), CM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(doc);
    in[0].ntags = CO_BUCKET_TAGS_MAX;
    CU_ASSERT_EQUAL_FATAL(co_buckets_encode(in, 1, &doc, &len), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_decode((const uint8_t *)doc, len, &out, &n), CM_OK);
    CU_ASSERT_EQUAL(n == 1 ? out[0].ntags : 0, CO_BUCKET_TAGS_MAX);
    co_buckets_array_free(out, n);
    free(doc);

    char long_key[CO_TAG_KEY_MAX + 2];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    char big[2048];
    const char *bad_tags[] = {
        "{}", "[[\"a\"]]", "[[\"a\",1]]", "[[\"\",\"v\"]]", "[[\"a\",\"1\"],[\"a\",\"2\"]]", big};
    snprintf(big, sizeof(big), "[[\"%s\",\"v\"]]", long_key);
    for (size_t i = 0; i < CM_ARRAY_LEN(bad_tags); i++) {
        char *bad = NULL;
        size_t cap = strlen(bad_tags[i]) + 256;
        CU_ASSERT_FATAL((bad = malloc(cap)) != NULL);
        int blen = snprintf(bad, cap,
                            "{\"v\":1,\"buckets\":[{\"name\":\"b\",\"created_ms\":1,"
                            "\"owner\":\"a\",\"id\":\"0000000000000001\",\"tags\":%s}]}",
                            bad_tags[i]);
        out = NULL;
        CU_ASSERT_EQUAL(co_buckets_decode((const uint8_t *)bad, (size_t)blen, &out, &n),
                        CM_ERR_CORRUPT);
        CU_ASSERT_PTR_NULL(out);
        free(bad);
    }
}

/* ---- against etcd ---- */

typedef struct {
    const co_config *cfg;
    co_bucket want, have;
    cm_err err;
} adder;

static void *add_thread(void *arg)
{
    adder *a = arg;
    co_client *c = NULL;
    a->err = co_client_new(a->cfg, &c);
    if (a->err == CM_OK)
        a->err = co_buckets_add(c, KEY, &a->want, &a->have);
    co_client_free(c);
    return NULL;
}

/* n threads adding at once (names given, or all "same"): their outcomes in a[]. */
static void race(const co_config *cfg, adder *a, int n, int same)
{
    pthread_t t[8];
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof(name), same ? "same" : "b%d", i);
        a[i] = (adder){.cfg = cfg, .want = rec(name, "AK", 100 + (uint64_t)i)};
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, add_thread, &a[i]) == 0);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

static void test_add_remove_race(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_bucket *b = NULL, have;
    size_t n = 0;
    int64_t rev = 0;
    if (!cu_etcd_up(&e, 1, 1000, &cfg, &c))
        return;

    CU_ASSERT_EQUAL(co_buckets_read(c, KEY, &b, &n, &rev), CM_OK); /* no document yet */
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(rev, 0);
    co_bucket one = rec("one", "AK", 1);
    CU_ASSERT_EQUAL(co_buckets_add(c, KEY, &one, NULL), CM_OK);
    co_bucket again = rec("one", "AK", 2);
    CU_ASSERT_EQUAL(co_buckets_add(c, KEY, &again, &have), CM_ERR_EXISTS);
    CU_ASSERT_EQUAL(have.id, 1); /* the record that is there, not ours */
    CU_ASSERT_EQUAL(co_buckets_remove(c, KEY, "one"), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_remove(c, KEY, "one"), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(co_buckets_read(c, KEY, &b, &n, &rev), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT(rev > 0); /* an empty document, not a missing one */

    /* 8 distinct names at once: every conflict retried, none lost */
    adder a[8];
    race(&cfg, a, 8, 0);
    for (int i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(a[i].err, CM_OK);
    CU_ASSERT_EQUAL(co_buckets_read(c, KEY, &b, &n, &rev), CM_OK);
    CU_ASSERT_EQUAL(n, 8);
    free(b);

    /* 8 creators of one name at once: exactly one wins, the others see its record */
    race(&cfg, a, 8, 1);
    int wins = 0, winner = -1;
    for (int i = 0; i < 8; i++)
        if (a[i].err == CM_OK)
            wins++, winner = i;
    CU_ASSERT_EQUAL_FATAL(wins, 1);
    for (int i = 0; i < 8; i++)
        if (i != winner) {
            CU_ASSERT_EQUAL(a[i].err, CM_ERR_EXISTS);
            CU_ASSERT_EQUAL(a[i].have.id, a[winner].want.id);
        }

    /* a stored document that does not parse is never written over */
    CU_ASSERT_EQUAL(co_put(c, KEY, "{broken", 7, 0, NULL), CM_OK);
    co_bucket x = rec("x", "AK", 9);
    CU_ASSERT_EQUAL(co_buckets_add(c, KEY, &x, NULL), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(co_buckets_remove(c, KEY, "b1"), CM_ERR_CORRUPT);
    co_kv kv;
    CU_ASSERT_EQUAL_FATAL(co_get(c, KEY, &kv, NULL), CM_OK);
    CU_ASSERT(kv.len == 7 && memcmp(kv.value, "{broken", 7) == 0);
    co_kv_release(&kv);

    co_client_free(c);
    cu_etcd_stop(&e);
}

/* ---- the follower ---- */

typedef struct {
    pthread_mutex_t mu;
    char log[2048]; /* "+name -name ..." in the order reported */
} hook_log;

static void log_add(hook_log *h, char sign, const char *name)
{
    pthread_mutex_lock(&h->mu);
    size_t n = strlen(h->log);
    snprintf(h->log + n, sizeof(h->log) - n, "%c%s ", sign, name);
    pthread_mutex_unlock(&h->mu);
}

static void on_added(void *arg, const co_bucket *b)
{
    log_add(arg, '+', b->name);
}

static void on_removed(void *arg, const co_bucket *b)
{
    log_add(arg, '-', b->name);
}

/* Take the log (and clear it) once it equals want or after 5 s; 1 when it did. */
static int log_is(hook_log *h, const char *want)
{
    int64_t t0 = cm_monotonic_ms();
    int ok = 0;
    do {
        pthread_mutex_lock(&h->mu);
        ok = strcmp(h->log, want) == 0;
        pthread_mutex_unlock(&h->mu);
        if (!ok)
            usleep(10000);
    } while (!ok && cm_monotonic_ms() - t0 < 5000);
    pthread_mutex_lock(&h->mu);
    if (!ok)
        fprintf(stderr, "hook log: '%s', expected '%s'\n", h->log, want);
    h->log[0] = '\0';
    pthread_mutex_unlock(&h->mu);
    return ok;
}

static void test_follower(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_buckets *f = NULL;
    co_bucket got;
    char cache[512];
    hook_log h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    co_buckets_hooks hooks = {.added = on_added, .removed = on_removed, .arg = &h};
    if (!cu_etcd_up(&e, 1, 500, &cfg, &c))
        return;
    snprintf(cache, sizeof(cache), "%s/buckets.cache", cu_tmpdir());
    CU_ASSERT_EQUAL(co_buckets_open(&cfg, "bad/id", NULL, &hooks, &f), CM_ERR_INVAL);
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", cache, &hooks, &f) == CM_OK);

    co_bucket a = rec("a", "AK", 1), b = rec("b", "AK", 2), a2 = rec("a", "AK", 3);
    CU_ASSERT_EQUAL(co_buckets_create(f, &a, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_create(f, &b, NULL), CM_OK);
    CU_ASSERT(log_is(&h, "+a +b "));
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got), CM_OK);
    CU_ASSERT_EQUAL(got.id, 2);
    CU_ASSERT_EQUAL(co_buckets_create(f, &a2, &got), CM_ERR_EXISTS);
    CU_ASSERT_EQUAL(co_buckets_delete(f, "a"), CM_OK);
    CU_ASSERT(log_is(&h, "-a "));
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "a", &got), CM_ERR_NOTFOUND);

    /* another writer re-creates a between two versions the follower sees: removed, then added */
    co_bucket *list = NULL;
    size_t n = 0;
    int64_t rev = 0;
    char *doc = NULL;
    size_t len = 0;
    co_bucket both[2] = {a, b};
    CU_ASSERT_EQUAL(co_buckets_encode(both, 2, &doc, &len), CM_OK);
    CU_ASSERT_EQUAL(co_put(c, KEY, doc, len, 0, NULL), CM_OK);
    free(doc);
    CU_ASSERT(log_is(&h, "+a "));
    both[0] = a2;
    CU_ASSERT_EQUAL(co_buckets_encode(both, 2, &doc, &len), CM_OK);
    CU_ASSERT_EQUAL(co_put(c, KEY, doc, len, 0, &rev), CM_OK);
    free(doc);
    CU_ASSERT(log_is(&h, "-a +a "));
    CU_ASSERT_EQUAL(co_buckets_wait(f, rev, 5000), CM_OK);

    /* a broken document and a deletion change nothing */
    CU_ASSERT_EQUAL(co_put(c, KEY, "[]", 2, 0, NULL), CM_OK);
    co_buckets_status st;
    int64_t t0 = cm_monotonic_ms();
    do {
        co_buckets_get_status(f, &st);
    } while (st.rejected < 1 && cm_monotonic_ms() - t0 < 5000 && usleep(10000) == 0);
    CU_ASSERT_EQUAL(st.rejected, 1);
    CU_ASSERT_EQUAL(st.nbuckets, 2);
    CU_ASSERT(st.connected);
    CU_ASSERT_EQUAL(co_delete(c, KEY, 0, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "a", &got), CM_OK);
    CU_ASSERT_EQUAL(got.id, 3);
    /* put the good version back (the cache already holds it: the follower reports nothing) */
    CU_ASSERT_EQUAL(co_buckets_encode(both, 2, &doc, &len), CM_OK);
    CU_ASSERT_EQUAL(co_put(c, KEY, doc, len, 0, &rev), CM_OK);
    free(doc);
    CU_ASSERT_EQUAL(co_buckets_wait(f, rev, 5000), CM_OK);
    CU_ASSERT(log_is(&h, ""));

    /* etcd down: the list stays, lookup_fresh answers from memory, changes are refused */
    cu_etcd_kill(&e, 0);
    CU_ASSERT_EQUAL(co_buckets_lookup_fresh(f, "b", &got), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup_fresh(f, "nosuch", &got), CM_ERR_NOTFOUND);
    co_bucket d = rec("during", "AK", 4);
    int64_t t1 = cm_monotonic_ms();
    CU_ASSERT_EQUAL(co_buckets_create(f, &d, NULL), CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(co_buckets_delete(f, "b"), CM_ERR_UNAVAILABLE);
    CU_ASSERT(cm_monotonic_ms() - t1 < 3000); /* bounded by the client's deadlines */

    /* reopened during the outage: the cached list, every bucket reported as added */
    co_buckets_free(f);
    h.log[0] = '\0';
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", cache, &hooks, &f) == CM_OK);
    CU_ASSERT(log_is(&h, "+a +b "));
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "a", &got), CM_OK);
    CU_ASSERT_EQUAL(got.id, 3);

    /* etcd back: a change made meanwhile is seen as a difference against the cache */
    CU_ASSERT_FATAL(cu_etcd_restart(&e, 0) == 0);
    CU_ASSERT_EQUAL(co_buckets_remove(c, KEY, "b"), CM_OK);
    CU_ASSERT(log_is(&h, "-b "));
    CU_ASSERT_EQUAL(co_buckets_read(c, KEY, &list, &n, &rev), CM_OK);
    CU_ASSERT_EQUAL(n, 1);
    free(list);

    co_buckets_free(f);
    co_client_free(c);
    cu_etcd_stop(&e);
}

/* ---- lookups of unknown names are shared reads ---- */

#define FLOODERS 8
#define FLOOD_EACH 25

typedef struct {
    co_buckets *f;
    int id, found, stop;
} flooder;

static void *flood(void *arg)
{
    flooder *fl = arg;
    co_bucket got;
    char name[64];
    for (int i = 0; i < FLOOD_EACH && !fl->stop; i++) {
        snprintf(name, sizeof(name), "nx-%d-%d", fl->id, i);
        fl->found += co_buckets_lookup_fresh(fl->f, name, &got) != CM_ERR_NOTFOUND;
    }
    return NULL;
}

/* 200 lookups of unknown names from 8 threads cost at most one etcd read per gap (before, one
 * each); meanwhile a bucket created by another writer is found by a lookup right after, every
 * time (a call never takes the answer of a read that started before it). */
static void test_fresh_flood(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_buckets *f = NULL;
    if (!cu_etcd_up(&e, 1, 500, &cfg, &c))
        return;
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", NULL, NULL, &f) == CM_OK);
    flooder fl[FLOODERS];
    pthread_t th[FLOODERS];
    int64_t t0 = cm_monotonic_ms();
    for (int i = 0; i < FLOODERS; i++) {
        fl[i] = (flooder){.f = f, .id = i};
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, flood, &fl[i]) == 0);
    }
    int found = 0;
    for (uint64_t i = 1; i <= 10; i++) { /* created by "another node", looked up here at once */
        char name[32];
        snprintf(name, sizeof(name), "new-%d", (int)i);
        co_bucket b = rec(name, "AK", i), got;
        CU_ASSERT_EQUAL(co_buckets_add(c, KEY, &b, NULL), CM_OK);
        found += co_buckets_lookup_fresh(f, name, &got) == CM_OK && got.id == i;
    }
    CU_ASSERT_EQUAL(found, 10);
    for (int i = 0; i < FLOODERS; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(fl[i].found, 0);
    }
    int64_t elapsed = cm_monotonic_ms() - t0;
    co_buckets_status st;
    co_buckets_get_status(f, &st);
    CU_ASSERT(st.fresh_lookups >= FLOODERS * FLOOD_EACH);
    CU_ASSERT(st.fresh_reads <= 1 + (uint64_t)elapsed / CO_BUCKETS_FRESH_GAP_MS);
    CU_ASSERT(st.fresh_reads < st.fresh_lookups / 2);
    printf("\n    %llu lookups of unknown names, %llu etcd reads in %lld ms\n",
           (unsigned long long)st.fresh_lookups, (unsigned long long)st.fresh_reads,
           (long long)elapsed);
    co_buckets_free(f);
    co_client_free(c);
    cu_etcd_stop(&e);
}

/* ---- a bucket found by a fresh read, before the watch delivers it ---- */

/* The follower's added hook, held while hold is set: the watch thread waits there, as a watch
 * that lags behind etcd would. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int hold, held;
} gate;

static void gate_added(void *arg, const co_bucket *b)
{
    gate *g = arg;
    (void)b;
    pthread_mutex_lock(&g->mu);
    g->held++;
    pthread_cond_broadcast(&g->cv);
    while (g->hold)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

/* A bucket created with Object Lock (so versioned) and tagged through "another node" while this
 * follower's watch is held back: a fresh lookup finds it, and from then on every read from
 * memory answers its settings (versioning, lock, tags), not the defaults of a bucket without
 * them (the race cluster_lifecycle met: a PUT through a node the watch had not reached got no
 * version id). Once the watch applies a later removal, the older fresh read does not bring it
 * back. */
static void test_fresh_settings(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_buckets *f = NULL;
    co_bucket got;
    int64_t rev = 0;
    gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .hold = 1};
    co_buckets_hooks hooks = {.added = gate_added, .arg = &g};
    if (!cu_etcd_up(&e, 1, 1000, &cfg, &c))
        return;
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", NULL, &hooks, &f) == CM_OK);
    co_bucket b = rec("locked", "AK", 7);
    b.versioning = 1;
    b.lock = 1;
    co_tag t[1] = {{"team", "web"}};
    CU_ASSERT_FATAL(co_buckets_add(c, KEY, &b, NULL) == CM_OK);
    CU_ASSERT_FATAL(co_buckets_set_tags(c, KEY, "locked", t, 1, &rev) == CM_OK);
    pthread_mutex_lock(&g.mu);
    while (!g.held)
        pthread_cond_wait(&g.cv, &g.mu); /* the watch is in the hook of the first version */
    pthread_mutex_unlock(&g.mu);

    CU_ASSERT_EQUAL(co_buckets_lookup(f, "locked", &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(co_buckets_lookup_fresh(f, "locked", &got), CM_OK);
    CU_ASSERT(got.versioning == 1 && got.lock == 1 && got.id == 7);
    memset(&got, 0, sizeof(got));
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "locked", &got), CM_OK);
    CU_ASSERT(got.versioning == 1 && got.lock == 1);
    co_tag *tags = NULL;
    size_t nt = 0;
    CU_ASSERT_EQUAL(co_buckets_tags(f, "locked", &tags, &nt), CM_OK);
    CU_ASSERT(nt == 1 && tags && strcmp(tags[0].key, "team") == 0);
    co_tags_free(tags, nt);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "other", &got), CM_ERR_NOTFOUND);

    /* the watch catches up, then applies a removal: the fresh read (older) answers no more */
    pthread_mutex_lock(&g.mu);
    g.hold = 0;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    CU_ASSERT_EQUAL(co_buckets_wait(f, rev, 5000), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "locked", &got), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_remove(c, KEY, "locked"), CM_OK);
    co_bucket *list = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(co_buckets_read(c, KEY, &list, &n, &rev), CM_OK);
    co_buckets_array_free(list, n);
    CU_ASSERT_EQUAL(co_buckets_wait(f, rev, 5000), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "locked", &got), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(co_buckets_lookup_fresh(f, "locked", &got), CM_ERR_NOTFOUND);

    co_buckets_free(f);
    co_client_free(c);
    cu_etcd_stop(&e);
}

static void test_set_consistency(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_buckets *f = NULL;
    co_bucket got;
    co_kv kv;
    uint8_t was = 9;
    int64_t rev = 0, rev2 = 0;
    hook_log h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    co_buckets_hooks hooks = {.added = on_added, .removed = on_removed, .arg = &h};
    if (!cu_etcd_up(&e, 1, 1000, &cfg, &c))
        return;
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", NULL, &hooks, &f) == CM_OK);

    /* created available: this node's follower knows it as soon as create returns */
    co_bucket fast = rec("fast", "AK", 1), plain = rec("plain", "AK", 2);
    fast.consistency = CO_CONSISTENCY_AVAILABLE;
    CU_ASSERT_EQUAL(co_buckets_create(f, &fast, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "fast", &got), CM_OK);
    CU_ASSERT_EQUAL(got.consistency, CO_CONSISTENCY_AVAILABLE);
    CU_ASSERT_EQUAL(co_buckets_create(f, &plain, NULL), CM_OK);
    CU_ASSERT(log_is(&h, "+fast +plain "));

    /* flip plain: the previous mode reported, the document rewritten */
    CU_ASSERT_EQUAL(
        co_buckets_set_consistency(c, KEY, "plain", CO_CONSISTENCY_AVAILABLE, &was, &rev), CM_OK);
    CU_ASSERT_EQUAL(was, CO_CONSISTENCY_STRONG);
    CU_ASSERT_EQUAL_FATAL(co_get(c, KEY, &kv, NULL), CM_OK);
    CU_ASSERT_EQUAL(kv.mod_rev, rev);
    co_kv_release(&kv);
    /* the same mode again: nothing written */
    CU_ASSERT_EQUAL(
        co_buckets_set_consistency(c, KEY, "plain", CO_CONSISTENCY_AVAILABLE, &was, &rev2), CM_OK);
    CU_ASSERT_EQUAL(was, CO_CONSISTENCY_AVAILABLE);
    CU_ASSERT_EQUAL(rev2, rev);
    CU_ASSERT_EQUAL(co_buckets_set_consistency(c, KEY, "nosuch", CO_CONSISTENCY_STRONG, NULL, NULL),
                    CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(co_buckets_set_consistency(c, KEY, "plain", 2, NULL, NULL), CM_ERR_INVAL);

    /* the follower sees the change from memory; no bucket was added or removed */
    CU_ASSERT_EQUAL(co_buckets_wait(f, rev, 5000), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "plain", &got), CM_OK);
    CU_ASSERT_EQUAL(got.consistency, CO_CONSISTENCY_AVAILABLE);
    CU_ASSERT_EQUAL(co_buckets_set_consistency(c, KEY, "fast", CO_CONSISTENCY_STRONG, &was, &rev),
                    CM_OK);
    CU_ASSERT_EQUAL(was, CO_CONSISTENCY_AVAILABLE);
    CU_ASSERT_EQUAL(co_buckets_wait(f, rev, 5000), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "fast", &got), CM_OK);
    CU_ASSERT_EQUAL(got.consistency, CO_CONSISTENCY_STRONG);
    CU_ASSERT_EQUAL(got.id, 1);
    CU_ASSERT(log_is(&h, ""));

    /* a broken stored document is not written over */
    CU_ASSERT_EQUAL(co_put(c, KEY, "{broken", 7, 0, NULL), CM_OK);
    CU_ASSERT_EQUAL(
        co_buckets_set_consistency(c, KEY, "fast", CO_CONSISTENCY_AVAILABLE, NULL, NULL),
        CM_ERR_CORRUPT);
    /* etcd down: unavailable */
    cu_etcd_kill(&e, 0);
    CU_ASSERT_EQUAL(
        co_buckets_set_consistency(c, KEY, "fast", CO_CONSISTENCY_AVAILABLE, NULL, NULL),
        CM_ERR_UNAVAILABLE);

    co_buckets_free(f);
    co_client_free(c);
    cu_etcd_stop(&e);
}

/* Tags set by compare-and-set (a no-op when unchanged; unknown buckets and over-long sets
 * refused), read from the follower's memory once co_buckets_tag returns, kept by other changes,
 * removed by an empty set; etcd down: unavailable, the follower still answers. */
static void test_set_tags(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_buckets *f = NULL;
    co_tag *got = NULL;
    size_t n = 9;
    int64_t rev = 0, rev2 = 0;
    hook_log h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    co_buckets_hooks hooks = {.added = on_added, .removed = on_removed, .arg = &h};
    if (!cu_etcd_up(&e, 1, 1000, &cfg, &c))
        return;
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", NULL, &hooks, &f) == CM_OK);
    co_bucket b = rec("b", "AK", 1);
    CU_ASSERT_EQUAL(co_buckets_create(f, &b, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_tags(f, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NULL(got);

    co_tag t[2] = {{"owner", "ops"}, {"env", "prod"}};
    CU_ASSERT_EQUAL(co_buckets_tag(f, "b", t, 2), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_buckets_tags(f, "b", &got, &n), CM_OK); /* read-your-writes */
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT(strcmp(got[0].key, "owner") == 0 && strcmp(got[1].value, "prod") == 0);
    co_tags_free(got, n);
    CU_ASSERT_EQUAL(co_buckets_set_tags(c, KEY, "b", t, 2, &rev), CM_OK); /* unchanged */
    CU_ASSERT_EQUAL(co_buckets_set_tags(c, KEY, "b", t, 2, &rev2), CM_OK);
    CU_ASSERT_EQUAL(rev2, rev); /* nothing written */
    CU_ASSERT_EQUAL(co_buckets_set_tags(c, KEY, "nosuch", t, 2, NULL), CM_ERR_NOTFOUND);
    co_tag many[CO_BUCKET_TAGS_MAX + 1];
    for (int i = 0; i <= CO_BUCKET_TAGS_MAX; i++)
        many[i] = t[0];
    CU_ASSERT_EQUAL(co_buckets_set_tags(c, KEY, "b", many, CO_BUCKET_TAGS_MAX + 1, NULL),
                    CM_ERR_INVAL);
    co_tag empty_key = {"", "v"};
    CU_ASSERT_EQUAL(co_buckets_set_tags(c, KEY, "b", &empty_key, 1, NULL), CM_ERR_INVAL);

    /* another change of the document keeps the tags; a lookup gives the record without them */
    CU_ASSERT_EQUAL(co_buckets_set_consistency(c, KEY, "b", CO_CONSISTENCY_AVAILABLE, NULL, &rev),
                    CM_OK);
    CU_ASSERT_EQUAL(co_buckets_wait(f, rev, 5000), CM_OK);
    co_bucket rec_b;
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &rec_b), CM_OK);
    CU_ASSERT(rec_b.tags == NULL && rec_b.ntags == 0);
    CU_ASSERT_EQUAL(co_buckets_tags(f, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 2);
    co_tags_free(got, n);
    CU_ASSERT(log_is(&h, "+b ")); /* a tag change is no bucket added or removed */

    CU_ASSERT_EQUAL(co_buckets_tag(f, "b", NULL, 0), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_tags(f, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(co_buckets_tags(f, "nosuch", &got, &n), CM_ERR_NOTFOUND);

    CU_ASSERT_EQUAL(co_buckets_tag(f, "b", t, 1), CM_OK);
    cu_etcd_kill(&e, 0);
    CU_ASSERT_EQUAL(co_buckets_tag(f, "b", t, 2), CM_ERR_UNAVAILABLE);
    CU_ASSERT_EQUAL(co_buckets_tags(f, "b", &got, &n), CM_OK); /* from memory */
    CU_ASSERT_EQUAL(n, 1);
    co_tags_free(got, n);

    co_buckets_free(f);
    co_client_free(c);
    cu_etcd_stop(&e);
}

/* The CORS field: written when set (left out otherwise), read back; over-long ones refused both
 * ways. Set by compare-and-set through a follower, read back from its memory, kept by a tag
 * change (and the tags by it), removed with NULL. */
static void test_cors(void)
{
    co_bucket in[2] = {rec("web", "AK", 1), rec("bare", "AK", 2)};
    char *doc = NULL, *got = NULL, big[CO_BUCKET_CORS_MAX + 2];
    size_t len = 0, n = 0;
    co_bucket *out = NULL;
    in[0].cors = "<CORSConfiguration>\"x\"</CORSConfiguration>";
    CU_ASSERT_EQUAL_FATAL(co_buckets_encode(in, 2, &doc, &len), CM_OK);
    const char *first = strstr(doc, "\"cors\"");
    CU_ASSERT(first && !strstr(first + 1, "\"cors\""));
    CU_ASSERT_EQUAL_FATAL(co_buckets_decode((const uint8_t *)doc, len, &out, &n), CM_OK);
    CU_ASSERT_STRING_EQUAL(co_buckets_find(out, n, "web")->cors, in[0].cors);
    CU_ASSERT_PTR_NULL(co_buckets_find(out, n, "bare")->cors);
    co_buckets_array_free(out, n);
    free(doc);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    in[0].cors = big;
    doc = NULL;
    CU_ASSERT_EQUAL(co_buckets_encode(in, 2, &doc, &len), CM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(doc);

    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_buckets *f = NULL;
    co_tag t[1] = {{"team", "web"}}, *tags = NULL;
    hook_log h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    co_buckets_hooks hooks = {.added = on_added, .removed = on_removed, .arg = &h};
    int64_t rev = 0, rev2 = 0;
    if (!cu_etcd_up(&e, 1, 1000, &cfg, &c))
        return;
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", NULL, &hooks, &f) == CM_OK);
    co_bucket b = rec("b", "AK", 1);
    CU_ASSERT_EQUAL(co_buckets_create(f, &b, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_cors(f, "b", &got), CM_OK);
    CU_ASSERT_PTR_NULL(got);
    CU_ASSERT_EQUAL(co_buckets_cors_set(f, "b", "<one/>"), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_buckets_cors(f, "b", &got), CM_OK); /* read-your-writes */
    CU_ASSERT_STRING_EQUAL(got, "<one/>");
    free(got);
    CU_ASSERT_EQUAL(co_buckets_set_cors(c, KEY, "b", "<one/>", &rev), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_set_cors(c, KEY, "b", "<one/>", &rev2), CM_OK);
    CU_ASSERT_EQUAL(rev2, rev); /* unchanged: nothing written */
    CU_ASSERT_EQUAL(co_buckets_set_cors(c, KEY, "nosuch", "<x/>", NULL), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(co_buckets_set_cors(c, KEY, "b", big, NULL), CM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(co_buckets_tag(f, "b", t, 1), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_buckets_cors(f, "b", &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got, "<one/>");
    free(got);
    CU_ASSERT_EQUAL(co_buckets_cors_set(f, "b", "<two/>"), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_tags(f, "b", &tags, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 1);
    co_tags_free(tags, n);
    co_bucket rec_b;
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &rec_b), CM_OK);
    CU_ASSERT_PTR_NULL(rec_b.cors); /* a record given out singly carries none */
    CU_ASSERT_EQUAL(co_buckets_cors_set(f, "b", NULL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_cors(f, "b", &got), CM_OK);
    CU_ASSERT_PTR_NULL(got);
    CU_ASSERT_EQUAL(co_buckets_cors(f, "nosuch", &got), CM_ERR_NOTFOUND);
    CU_ASSERT(log_is(&h, "+b ")); /* a CORS change is no bucket added or removed */
    co_buckets_free(f);
    co_client_free(c);
    cu_etcd_stop(&e);
}

/* The follower's copy of name's website (website 1) or CORS member is want (NULL: none). */
static int member_is(co_buckets *f, int website, const char *name, const char *want)
{
    char *got = NULL;
    cm_err e = website ? co_buckets_website(f, name, &got) : co_buckets_cors(f, name, &got);
    int same = e == CM_OK && (want ? got && strcmp(got, want) == 0 : !got);
    free(got);
    return same;
}

/* The website member: encoded once, decoded, left out when none, over-long refused both ways
 * (encode, and a document holding one); set through a follower and read back from its memory,
 * kept by CORS and tag changes and keeping them, removed with NULL; a record given out singly
 * carries none. */
static void test_website(void)
{
    static const char *const members[] = {"\"website\"", "\"cors\""};
    co_bucket in[2] = {rec("bare", "AK", 2), rec("site", "AK", 1)};
    char *doc = NULL, *got = NULL, big[CO_BUCKET_WEBSITE_MAX + 2];
    size_t len = 0, n = 0;
    co_bucket *out = NULL;
    in[1].website = "<WebsiteConfiguration>\"i\"</WebsiteConfiguration>";
    in[1].cors = "<c/>";
    CU_ASSERT_EQUAL_FATAL(co_buckets_encode(in, 2, &doc, &len), CM_OK);
    for (size_t i = 0; i < 2; i++) { /* each once, and only in "site" */
        const char *at = strstr(doc, members[i]);
        CU_ASSERT(at && at > strstr(doc, "\"site\"") && !strstr(at + 1, members[i]));
    }
    CU_ASSERT_EQUAL_FATAL(co_buckets_decode((const uint8_t *)doc, len, &out, &n), CM_OK);
    const co_bucket *site = co_buckets_find(out, n, "site");
    CU_ASSERT(site && strcmp(site->website, in[1].website) == 0 && strcmp(site->cors, "<c/>") == 0);
    CU_ASSERT_PTR_NULL(co_buckets_find(out, n, "bare")->website);
    co_buckets_array_free(out, n);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    in[1].website = big;
    char *bad = NULL;
    CU_ASSERT_EQUAL(co_buckets_encode(in, 2, &bad, &len), CM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(bad);
    /* a document from elsewhere with an over-long member is refused whole */
    const char *at = strstr(doc, "<WebsiteConfiguration>");
    size_t cap = strlen(doc) + sizeof(big) + 1;
    CU_ASSERT_FATAL(at != NULL && (bad = malloc(cap)) != NULL);
    snprintf(bad, cap, "%.*s%s\"}]}", (int)(at - doc), doc, big);
    out = NULL;
    CU_ASSERT_EQUAL(co_buckets_decode((const uint8_t *)bad, strlen(bad), &out, &n), CM_ERR_CORRUPT);
    free(bad);
    free(doc);

    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_buckets *f = NULL;
    co_tag t[1] = {{"team", "web"}};
    int64_t rev = 0, rev2 = 0;
    if (!cu_etcd_up(&e, 1, 1000, &cfg, &c))
        return;
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", NULL, NULL, &f) == CM_OK);
    co_bucket b = rec("b", "AK", 1), one;
    CU_ASSERT_EQUAL(co_buckets_create(f, &b, NULL), CM_OK);
    CU_ASSERT(member_is(f, 1, "b", NULL));
    CU_ASSERT_EQUAL(co_buckets_website_set(f, "b", "<w1/>"), CM_OK);
    CU_ASSERT(member_is(f, 1, "b", "<w1/>")); /* read-your-writes */
    for (int i = 0; i < 2; i++)               /* the same again: nothing written */
        CU_ASSERT_EQUAL(co_buckets_set_website(c, KEY, "b", "<w1/>", i ? &rev2 : &rev), CM_OK);
    CU_ASSERT_EQUAL(rev2, rev);
    CU_ASSERT_EQUAL(co_buckets_set_website(c, KEY, "nosuch", "<x/>", NULL), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(co_buckets_set_website(c, KEY, "b", big, NULL), CM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(co_buckets_cors_set(f, "b", "<cors/>"), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_tag(f, "b", t, 1), CM_OK);
    CU_ASSERT(member_is(f, 1, "b", "<w1/>")); /* kept by the CORS and tag changes */
    CU_ASSERT_EQUAL(co_buckets_website_set(f, "b", "<w2/>"), CM_OK);
    CU_ASSERT(member_is(f, 0, "b", "<cors/>")); /* and keeping them */
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &one), CM_OK);
    CU_ASSERT_PTR_NULL(one.website);
    CU_ASSERT_EQUAL(co_buckets_website_set(f, "b", NULL), CM_OK);
    CU_ASSERT(member_is(f, 1, "b", NULL));
    CU_ASSERT_EQUAL(co_buckets_website(f, "nosuch", &got), CM_ERR_NOTFOUND);
    co_buckets_free(f);
    co_client_free(c);
    cu_etcd_stop(&e);
}

/* The lifecycle member: encoded and decoded, over-long refused; set through a follower, read
 * back from its memory, kept by a website change and keeping it; lifecycle_next walks the buckets
 * that have one in name order; removed with NULL (and then not walked). */
static void test_lifecycle(void)
{
    co_bucket in[2] = {rec("a", "AK", 1), rec("z", "AK", 1)};
    char *doc = NULL, *got = NULL, big[CO_BUCKET_LIFECYCLE_MAX + 2], name[64];
    size_t len = 0, n = 0;
    co_bucket *out = NULL;
    in[1].lifecycle = "<LifecycleConfiguration>\"r\"</LifecycleConfiguration>";
    CU_ASSERT_EQUAL_FATAL(co_buckets_encode(in, 2, &doc, &len), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_buckets_decode((const uint8_t *)doc, len, &out, &n), CM_OK);
    CU_ASSERT(strcmp(co_buckets_find(out, n, "z")->lifecycle, in[1].lifecycle) == 0);
    CU_ASSERT_PTR_NULL(co_buckets_find(out, n, "a")->lifecycle);
    co_buckets_array_free(out, n);
    free(doc);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    in[1].lifecycle = big;
    doc = NULL;
    CU_ASSERT_EQUAL(co_buckets_encode(in, 2, &doc, &len), CM_ERR_INVAL);
    CU_ASSERT_PTR_NULL(doc);

    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_buckets *f = NULL;
    if (!cu_etcd_up(&e, 1, 1000, &cfg, &c))
        return;
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", NULL, NULL, &f) == CM_OK);
    const char *names[] = {"c", "a", "b"};
    for (size_t i = 0; i < 3; i++) {
        co_bucket b = rec(names[i], "AK", 1);
        CU_ASSERT_EQUAL(co_buckets_create(f, &b, NULL), CM_OK);
    }
    CU_ASSERT_EQUAL(co_buckets_lifecycle_next(f, NULL, name, sizeof(name)), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(co_buckets_lifecycle_set(f, "c", "<l1/>"), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lifecycle_set(f, "a", "<l2/>"), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lifecycle(f, "c", &got), CM_OK); /* read-your-writes */
    CU_ASSERT(got && strcmp(got, "<l1/>") == 0);
    free(got);
    CU_ASSERT_EQUAL(co_buckets_set_lifecycle(c, KEY, "b", big, NULL), CM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(co_buckets_set_lifecycle(c, KEY, "nosuch", "<x/>", NULL), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(co_buckets_website_set(f, "c", "<w/>"), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lifecycle_set(f, "c", "<l3/>"), CM_OK);
    CU_ASSERT(member_is(f, 1, "c", "<w/>")); /* each change keeps the other */
    CU_ASSERT_EQUAL(co_buckets_lifecycle(f, "c", &got), CM_OK);
    CU_ASSERT(got && strcmp(got, "<l3/>") == 0);
    free(got);
    /* a, then c (b has none), then no more */
    CU_ASSERT(co_buckets_lifecycle_next(f, NULL, name, sizeof(name)) == CM_OK &&
              strcmp(name, "a") == 0);
    CU_ASSERT(co_buckets_lifecycle_next(f, "a", name, sizeof(name)) == CM_OK &&
              strcmp(name, "c") == 0);
    CU_ASSERT_EQUAL(co_buckets_lifecycle_next(f, "c", name, sizeof(name)), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(co_buckets_lifecycle_set(f, "a", NULL), CM_OK);
    CU_ASSERT(co_buckets_lifecycle_next(f, NULL, name, sizeof(name)) == CM_OK &&
              strcmp(name, "c") == 0);
    CU_ASSERT_EQUAL(co_buckets_lifecycle(f, "a", &got), CM_OK);
    CU_ASSERT_PTR_NULL(got);
    co_buckets_free(f);
    co_client_free(c);
    cu_etcd_stop(&e);
}

static void on_access(void *arg, const co_bucket *b)
{
    log_add(arg, '~', b->name);
}

/* The access members: written when set (each left out when 0), read back; values out of range
 * refused both ways. Set by compare-and-set through a follower (only the fields named), read back
 * from its memory when the call returns, kept by other changes, reported to access_changed (never
 * as an added or removed bucket); the policy likewise, removed with NULL. */
static void test_access(void)
{
    co_bucket in[2] = {rec("open", "alice", 1), rec("shut", "alice", 2)};
    char *doc = NULL, *got = NULL, big[CO_BUCKET_POLICY_MAX + 2];
    size_t len = 0, n = 0;
    co_bucket *out = NULL;
    in[0].acl = 1;
    in[0].pab = 0x88;
    in[0].ownership = 2;
    in[0].policy = "{\"Statement\":[]}";
    CU_ASSERT_EQUAL_FATAL(co_buckets_encode(in, 2, &doc, &len), CM_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"acl\":1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"pab\":136"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"ownership\":2"));
    CU_ASSERT(strstr(doc, "\"policy\"") && !strstr(strstr(doc, "\"policy\"") + 1, "\"policy\""));
    CU_ASSERT(!strstr(strstr(doc, "shut"), "\"acl\"")); /* 0: left out */
    CU_ASSERT_EQUAL_FATAL(co_buckets_decode((const uint8_t *)doc, len, &out, &n), CM_OK);
    const co_bucket *o = co_buckets_find(out, n, "open"), *s = co_buckets_find(out, n, "shut");
    CU_ASSERT(o->acl == 1 && o->pab == 0x88 && o->ownership == 2);
    CU_ASSERT_STRING_EQUAL(o->policy, in[0].policy);
    CU_ASSERT(s->acl == 0 && s->pab == 0 && s->ownership == 0 && !s->policy);
    co_buckets_array_free(out, n);
    free(doc);
    static const char *const members[] = {"\"acl\":5",       "\"acl\":-1",    "\"pab\":16",
                                          "\"ownership\":3", "\"acl\":\"1\"", "\"policy\":1"};
    refused(members, CM_ARRAY_LEN(members));
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    in[0].policy = big;
    CU_ASSERT_EQUAL(co_buckets_encode(in, 2, &doc, &len), CM_ERR_INVAL);
    in[0].policy = NULL;
    in[0].ownership = 3;
    CU_ASSERT_EQUAL(co_buckets_encode(in, 2, &doc, &len), CM_ERR_INVAL);

    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_buckets *f = NULL;
    co_bucket got_b;
    hook_log h = {.mu = PTHREAD_MUTEX_INITIALIZER};
    co_buckets_hooks hooks = {
        .added = on_added, .removed = on_removed, .arg = &h, .access_changed = on_access};
    int64_t rev = 0, rev2 = 0;
    if (!cu_etcd_up(&e, 1, 1000, &cfg, &c))
        return;
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", NULL, &hooks, &f) == CM_OK);
    co_bucket b = rec("b", "alice", 1);
    b.ownership = 1; /* CreateBucket's x-amz-object-ownership goes into the new record */
    CU_ASSERT_EQUAL(co_buckets_create(f, &b, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got_b), CM_OK);
    CU_ASSERT_EQUAL(got_b.ownership, 1);
    CU_ASSERT_EQUAL(co_buckets_access_set(f, "b", 1, 0x81, 0, CO_ACCESS_ACL | CO_ACCESS_PAB),
                    CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got_b), CM_OK);              /* read-your-writes */
    CU_ASSERT(got_b.acl == 1 && got_b.pab == 0x81 && got_b.ownership == 1); /* not named: kept */
    CU_ASSERT_EQUAL(co_buckets_policy_set(f, "b", "{\"p\":1}"), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_buckets_policy(f, "b", &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got, "{\"p\":1}");
    free(got);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got_b), CM_OK);
    CU_ASSERT_PTR_NULL(got_b.policy); /* a record given out singly carries none */
    /* unchanged: nothing written */
    CU_ASSERT_EQUAL(co_buckets_set_access(c, KEY, "b", 1, 0, 0, CO_ACCESS_ACL, &rev), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_set_policy(c, KEY, "b", "{\"p\":1}", &rev2), CM_OK);
    CU_ASSERT_EQUAL(rev2, rev);
    CU_ASSERT_EQUAL(co_buckets_set_access(c, KEY, "nosuch", 1, 0, 0, CO_ACCESS_ACL, NULL),
                    CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(co_buckets_set_access(c, KEY, "b", 9, 0, 0, CO_ACCESS_ACL, NULL), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(co_buckets_set_policy(c, KEY, "b", big, NULL), CM_ERR_TOOBIG);
    /* another writer's change: seen from memory, reported once applied */
    CU_ASSERT_EQUAL(co_buckets_set_policy(c, KEY, "b", "{\"p\":2}", &rev), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_wait(f, rev, 5000), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_buckets_policy(f, "b", &got), CM_OK);
    CU_ASSERT_STRING_EQUAL(got, "{\"p\":2}");
    free(got);
    /* a tag change keeps them and is not reported as an access change */
    co_tag t[1] = {{"team", "web"}};
    CU_ASSERT_EQUAL(co_buckets_tag(f, "b", t, 1), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got_b), CM_OK);
    CU_ASSERT(got_b.acl == 1 && got_b.pab == 0x81 && got_b.ownership == 1);
    CU_ASSERT_EQUAL(co_buckets_policy_set(f, "b", NULL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_policy(f, "b", &got), CM_OK);
    CU_ASSERT_PTR_NULL(got);
    CU_ASSERT_EQUAL(co_buckets_policy(f, "nosuch", &got), CM_ERR_NOTFOUND);
    CU_ASSERT(log_is(&h, "+b ~b ~b ~b ~b "));
    co_buckets_free(f);
    co_client_free(c);
    cu_etcd_stop(&e);
}

/* The versioning state (docs/versioning.md, "On a cluster"): set by compare-and-set, read back
 * from memory, never back to 0, kept by other changes. */
static void test_versioning(void)
{
    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_buckets *f = NULL;
    co_bucket got;
    int64_t rev = 0, rev2 = 0;
    if (!cu_etcd_up(&e, 1, 1000, &cfg, &c))
        return;
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", NULL, NULL, &f) == CM_OK);
    co_bucket b = rec("b", "alice", 1);
    CU_ASSERT_EQUAL(co_buckets_create(f, &b, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got), CM_OK);
    CU_ASSERT_EQUAL(got.versioning, 0);
    CU_ASSERT_EQUAL(co_buckets_versioning_set(f, "b", 1), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got), CM_OK); /* read-your-writes */
    CU_ASSERT_EQUAL(got.versioning, 1);
    /* unchanged: nothing written */
    CU_ASSERT_EQUAL(co_buckets_set_versioning(c, KEY, "b", 1, &rev), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_set_versioning(c, KEY, "b", 1, &rev2), CM_OK);
    CU_ASSERT_EQUAL(rev2, rev);
    CU_ASSERT_EQUAL(co_buckets_set_versioning(c, KEY, "b", 0, NULL), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(co_buckets_set_versioning(c, KEY, "b", 3, NULL), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(co_buckets_versioning_set(f, "nosuch", 1), CM_ERR_NOTFOUND);
    /* another writer's change, seen from memory; a tag change keeps it */
    CU_ASSERT_EQUAL(co_buckets_set_versioning(c, KEY, "b", 2, &rev), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_wait(f, rev, 5000), CM_OK);
    co_tag t[1] = {{"team", "web"}};
    CU_ASSERT_EQUAL(co_buckets_tag(f, "b", t, 1), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got), CM_OK);
    CU_ASSERT_EQUAL(got.versioning, 2);
    co_buckets_free(f);
    co_client_free(c);
    cu_etcd_stop(&e);
}

/* The default encryption members: written when set (left out when 0), read back; a bucket key
 * without SSE-S3, or values out of range, refused both ways. Set by compare-and-set through a
 * follower, read back from its memory when the call returns, kept by other changes, removed. */
static void test_sse(void)
{
    co_bucket in[2] = {rec("enc", "alice", 1), rec("plain", "alice", 2)};
    char *doc = NULL;
    size_t len = 0, n = 0;
    co_bucket *out = NULL;
    in[0].sse = 1;
    in[0].sse_bucket_key = 1;
    CU_ASSERT_EQUAL_FATAL(co_buckets_encode(in, 2, &doc, &len), CM_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"sse\":1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"sse_bucket_key\":1"));
    CU_ASSERT(!strstr(strstr(doc, "plain"), "\"sse")); /* 0: left out */
    CU_ASSERT_EQUAL_FATAL(co_buckets_decode((const uint8_t *)doc, len, &out, &n), CM_OK);
    const co_bucket *o = co_buckets_find(out, n, "enc"), *p = co_buckets_find(out, n, "plain");
    CU_ASSERT(o->sse == 1 && o->sse_bucket_key == 1 && p->sse == 0 && p->sse_bucket_key == 0);
    co_buckets_array_free(out, n);
    free(doc);
    static const char *const members[] = {"\"sse\":2", "\"sse\":-1", "\"sse_bucket_key\":1",
                                          "\"sse\":1,\"sse_bucket_key\":2", "\"sse\":\"1\""};
    refused(members, CM_ARRAY_LEN(members));
    in[0].sse = 0; /* a bucket key without SSE-S3 */
    CU_ASSERT_EQUAL(co_buckets_encode(in, 2, &doc, &len), CM_ERR_INVAL);

    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_buckets *f = NULL;
    co_bucket got;
    int64_t rev = 0, rev2 = 0;
    if (!cu_etcd_up(&e, 1, 1000, &cfg, &c))
        return;
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", NULL, NULL, &f) == CM_OK);
    co_bucket b = rec("b", "alice", 1);
    CU_ASSERT_EQUAL(co_buckets_create(f, &b, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_sse_set(f, "b", 1, 1), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got), CM_OK); /* read-your-writes */
    CU_ASSERT(got.sse == 1 && got.sse_bucket_key == 1);
    /* unchanged: nothing written */
    CU_ASSERT_EQUAL(co_buckets_set_sse(c, KEY, "b", 1, 1, &rev), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_set_sse(c, KEY, "b", 1, 1, &rev2), CM_OK);
    CU_ASSERT_EQUAL(rev2, rev);
    CU_ASSERT_EQUAL(co_buckets_set_sse(c, KEY, "nosuch", 1, 0, NULL), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(co_buckets_set_sse(c, KEY, "b", 2, 0, NULL), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(co_buckets_set_sse(c, KEY, "b", 0, 1, NULL), CM_ERR_INVAL);
    /* other changes keep it */
    co_tag t[1] = {{"team", "web"}};
    CU_ASSERT_EQUAL(co_buckets_tag(f, "b", t, 1), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_access_set(f, "b", 1, 0, 0, CO_ACCESS_ACL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got), CM_OK);
    CU_ASSERT(got.sse == 1 && got.sse_bucket_key == 1 && got.acl == 1);
    /* removed */
    CU_ASSERT_EQUAL(co_buckets_sse_set(f, "b", 0, 0), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got), CM_OK);
    CU_ASSERT(got.sse == 0 && got.sse_bucket_key == 0 && got.acl == 1);
    co_buckets_free(f);
    co_client_free(c);
    cu_etcd_stop(&e);
}

/* Members this build does not know (a newer build's settings, during a rolling upgrade): kept per
 * record and in the document, written back unchanged by a change through the API (a tag change
 * on the bucket that has them, a creation of another); every member the encoder writes is known
 * (a record with all of them set decodes with nothing extra). */
static void test_unknown_members(void)
{
    static const char lock[] = "\"retention_v9\":{\"mode\":\"GOVERNANCE\",\"days\":3,"
                               "\"x\":[1,2.5,null,true,\"\xc3\xa9\"]}";
    static const char top[] = "\"later\":{\"k\":[\"v\"]}";
    char doc[512], *enc = NULL;
    size_t len = 0, n = 0;
    co_bucket *out = NULL;

    co_bucket all = rec("all", "AK", 3);
    co_tag t1[1] = {{"team", "web"}};
    all.consistency = CO_CONSISTENCY_AVAILABLE;
    all.versioning = 1;
    all.tags = t1;
    all.ntags = 1;
    all.cors = "<c/>";
    all.policy = "{}";
    all.website = "<w/>";
    all.lifecycle = "<l/>";
    all.acl = 1;
    all.pab = 1;
    all.ownership = 1;
    all.sse = 1;
    all.sse_bucket_key = 1;
    all.lock = 1;
    all.lock_mode = 1;
    all.lock_unit = 1;
    all.lock_period = 3;
    CU_ASSERT_EQUAL_FATAL(co_buckets_encode(&all, 1, &enc, &len), CM_OK);
    CU_ASSERT_EQUAL_FATAL(co_buckets_decode((const uint8_t *)enc, len, &out, &n), CM_OK);
    CU_ASSERT(n == 1 && out[0].extra == NULL);
    co_buckets_array_free(out, n);
    free(enc);

    snprintf(doc, sizeof(doc),
             "{\"v\":1,\"buckets\":[{\"name\":\"b\",\"created_ms\":1,\"owner\":\"AK\","
             "\"versioning\":0,\"id\":\"0000000000000001\",%s}],%s}",
             lock, top);
    CU_ASSERT_EQUAL_FATAL(co_buckets_decode((const uint8_t *)doc, strlen(doc), &out, &n), CM_OK);
    CU_ASSERT_FATAL(n == 1 && out[0].extra != NULL);
    CU_ASSERT(strstr(out[0].extra, lock) != NULL && !strstr(out[0].extra, "\"name\""));
    CU_ASSERT_EQUAL(co_buckets_encode(out, n, &enc, &len), CM_OK);
    CU_ASSERT(enc && strstr(enc, lock) != NULL);
    free(enc);
    co_buckets_array_free(out, n);

    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_buckets *f = NULL;
    co_kv kv;
    co_tag *got = NULL;
    int64_t rev = 0;
    if (!cu_etcd_up(&e, 1, 1000, &cfg, &c))
        return;
    CU_ASSERT_EQUAL(co_put(c, KEY, doc, strlen(doc), 0, &rev), CM_OK);
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", NULL, NULL, &f) == CM_OK);
    CU_ASSERT_EQUAL(co_buckets_wait(f, rev, 5000), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_tag(f, "b", t1, 1), CM_OK);
    co_bucket other = rec("other", "AK", 2);
    CU_ASSERT_EQUAL(co_buckets_create(f, &other, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_tags(f, "b", &got, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 1);
    co_tags_free(got, n);
    CU_ASSERT_EQUAL_FATAL(co_get(c, KEY, &kv, NULL), CM_OK);
    char *stored = strndup((const char *)kv.value, kv.len);
    co_kv_release(&kv);
    CU_ASSERT_FATAL(stored != NULL);
    /* the member once, inside b's record (before "other"'s), as written; the document's too */
    const char *at = strstr(stored, lock);
    CU_ASSERT(at && at > strstr(stored, "\"name\":\"b\"") && at < strstr(stored, "\"other\"") &&
              !strstr(at + 1, "\"lock\""));
    CU_ASSERT(strstr(stored, "\"tags\":[[\"team\",\"web\"]]") != NULL);
    CU_ASSERT(strstr(stored, top) != NULL);
    free(stored);
    co_buckets_free(f);
    co_client_free(c);
    cu_etcd_stop(&e);
}

/* The Object Lock members: written when set (left out when 0), read back; values out of range, a
 * default retention without lock, lock without versioning Enabled refused both ways. Set by
 * compare-and-set through a follower (only on an Enabled bucket), kept by other changes; a
 * bucket with lock cannot be suspended. */
static void test_lock(void)
{
    co_bucket in[2] = {rec("locked", "alice", 1), rec("plain", "alice", 2)};
    char *doc = NULL;
    size_t len = 0, n = 0;
    co_bucket *out = NULL;
    in[0].versioning = 1, in[0].lock = 1;
    in[0].lock_mode = 2, in[0].lock_unit = 2, in[0].lock_period = 7;
    CU_ASSERT_EQUAL_FATAL(co_buckets_encode(in, 2, &doc, &len), CM_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"lock\":1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"lock_period\":7"));
    CU_ASSERT(!strstr(strstr(doc, "plain"), "\"lock")); /* 0: left out */
    CU_ASSERT_EQUAL_FATAL(co_buckets_decode((const uint8_t *)doc, len, &out, &n), CM_OK);
    const co_bucket *o = co_buckets_find(out, n, "locked"), *p = co_buckets_find(out, n, "plain");
    CU_ASSERT(o->lock == 1 && o->lock_mode == 2 && o->lock_unit == 2 && o->lock_period == 7);
    CU_ASSERT(p->lock == 0 && p->lock_mode == 0 && p->lock_period == 0);
    co_buckets_array_free(out, n);
    free(doc);
    static const char *const members[] = {
        "\"versioning\":1,\"lock\":2",
        "\"versioning\":2,\"lock\":1",
        "\"lock\":1",
        "\"versioning\":1,\"lock_mode\":1,\"lock_unit\":1,\"lock_period\":1",
        "\"versioning\":1,\"lock\":1,\"lock_mode\":3,\"lock_unit\":1,\"lock_period\":1",
        "\"versioning\":1,\"lock\":1,\"lock_mode\":1,\"lock_unit\":1,\"lock_period\":36501",
        "\"versioning\":1,\"lock\":1,\"lock_mode\":1,\"lock_unit\":2,\"lock_period\":101",
        "\"versioning\":1,\"lock\":1,\"lock_mode\":1,\"lock_unit\":1",
        "\"versioning\":1,\"lock\":1,\"lock_period\":5",
        "\"versioning\":1,\"lock\":1,\"lock_mode\":1,\"lock_unit\":1,\"lock_period\":-1",
        "\"versioning\":1,\"lock\":\"1\""};
    refused(members, CM_ARRAY_LEN(members));
    in[0].versioning = 2; /* lock on a suspended bucket */
    CU_ASSERT_EQUAL(co_buckets_encode(in, 2, &doc, &len), CM_ERR_INVAL);

    cu_etcd e;
    co_config cfg;
    co_client *c = NULL;
    co_buckets *f = NULL;
    co_bucket got;
    int64_t rev = 0, rev2 = 0;
    if (!cu_etcd_up(&e, 1, 1000, &cfg, &c))
        return;
    CU_ASSERT_FATAL(co_buckets_open(&cfg, "tb", NULL, NULL, &f) == CM_OK);
    co_bucket b = rec("b", "alice", 1), made = rec("made", "alice", 2);
    made.versioning = 1, made.lock = 1; /* CreateBucket with lock: in the record */
    CU_ASSERT_EQUAL(co_buckets_create(f, &b, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_create(f, &made, NULL), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "made", &got), CM_OK);
    CU_ASSERT(got.lock == 1 && got.lock_mode == 0 && got.versioning == 1);
    CU_ASSERT_EQUAL(co_buckets_lock_set(f, "b", 0, 0, 0), CM_ERR_LOCKED); /* never versioned */
    CU_ASSERT_EQUAL(co_buckets_versioning_set(f, "b", 1), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lock_set(f, "b", 1, 1, 30), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got), CM_OK); /* read-your-writes */
    CU_ASSERT(got.lock == 1 && got.lock_mode == 1 && got.lock_unit == 1 && got.lock_period == 30);
    /* unchanged: nothing written */
    CU_ASSERT_EQUAL(co_buckets_set_lock(c, KEY, "b", 1, 1, 30, &rev), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_set_lock(c, KEY, "b", 1, 1, 30, &rev2), CM_OK);
    CU_ASSERT_EQUAL(rev2, rev);
    CU_ASSERT_EQUAL(co_buckets_set_lock(c, KEY, "nosuch", 0, 0, 0, NULL), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(co_buckets_set_lock(c, KEY, "b", 3, 1, 1, NULL), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(co_buckets_set_lock(c, KEY, "b", 1, 2, 101, NULL), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(co_buckets_set_lock(c, KEY, "b", 0, 1, 1, NULL), CM_ERR_INVAL);
    /* not suspendable; other changes keep it */
    CU_ASSERT_EQUAL(co_buckets_versioning_set(f, "b", 2), CM_ERR_LOCKED);
    co_tag t[1] = {{"team", "web"}};
    CU_ASSERT_EQUAL(co_buckets_tag(f, "b", t, 1), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_sse_set(f, "b", 1, 0), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got), CM_OK);
    CU_ASSERT(got.lock == 1 && got.lock_period == 30 && got.versioning == 1 && got.sse == 1);
    /* the default retention replaced, removed; lock stays */
    CU_ASSERT_EQUAL(co_buckets_lock_set(f, "b", 0, 0, 0), CM_OK);
    CU_ASSERT_EQUAL(co_buckets_lookup(f, "b", &got), CM_OK);
    CU_ASSERT(got.lock == 1 && got.lock_mode == 0 && got.lock_period == 0);
    co_buckets_free(f);
    co_client_free(c);
    cu_etcd_stop(&e);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"encode and decode", test_encode_decode},
        {"the consistency field", test_consistency_field},
        {"add, remove and racing creators against etcd", test_add_remove_race},
        {"follower: changes, outage, cache", test_follower},
        {"setting a bucket's consistency", test_set_consistency},
        {"lookups of unknown names share bounded etcd reads", test_fresh_flood},
        {"a bucket found by a fresh read has its settings", test_fresh_settings},
        {"the tags field", test_tags_field},
        {"setting a bucket's tags", test_set_tags},
        {"a bucket's CORS configuration", test_cors},
        {"a bucket's access settings and policy", test_access},
        {"a bucket's website configuration", test_website},
        {"a bucket's lifecycle configuration", test_lifecycle},
        {"a bucket's versioning state", test_versioning},
        {"a bucket's default encryption", test_sse},
        {"a bucket's object lock", test_lock},
        {"unknown members kept through changes", test_unknown_members},
        {NULL, NULL},
    };
    cu_add_suite("coord_buckets", tests);
}
