/*
 * test_repl_upload.c - multipart uploads over the replicated metadata (repl/rp_upload.h) and
 * their reserved key space (meta/md_mpkey.c), over fake replicas (rp_fake.h).
 *
 * One event loop runs in its own thread (the replicas' loop); the coordinator is called from the
 * test thread, as a gateway's worker would. Three fakes are the homes of every partition. Checks
 * read the fakes' stores directly after rp_free (which waits for every call, read repairs
 * included): the records each home holds and the garbage records the merges made.
 */
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cm_util.h"
#include "cu_main.h"
#include "rp_fake.h"
#include "rp_int.h"
#include "rp_upload.h"

#define NF 3
#define NSHARDS 4
#define B "bk"
#define ID "0000018c0a0b0c0d1122334455667788"

static struct {
    struct event_base *base;
    pthread_t th;
    fake *f[NF];
    struct rp_router *rt;
    md_hlc clk;
    rp *c;
    int64_t mono_ms; /* the coordinators' monotonic clock (rp_config.mono), stepped by tests */
    uint64_t epoch;
} E;

static int64_t test_mono(void *arg, uint64_t *epoch)
{
    (void)arg;
    *epoch = E.epoch;
    return E.mono_ms;
}

static void *loop_thread(void *arg)
{
    event_base_loop(arg, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void env_up(void)
{
    static int seq;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    char dir[256];
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    memset(&E, 0, sizeof(E));
    snprintf(dir, sizeof(dir), "%s/up%d", cu_tmpdir(), seq++);
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(E.base = event_base_new());
    for (int i = 0; i < NF; i++) {
        char id[8];
        snprintf(id, sizeof(id), "f%d", i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(E.f[i] = fake_new(E.base, dir, id));
    }
    E.rt = fake_router_new(E.f, NF);
    pthread_create(&E.th, NULL, loop_thread, E.base);
    md_hlc_init(&E.clk, 1, NULL, NULL);
    rp_config cfg = {.base = E.base,
                     .router = E.rt,
                     .route = fake_route,
                     .clock = &E.clk,
                     .node = 1,
                     .nshards = NSHARDS,
                     .timeout_ms = 2000,
                     .mono = test_mono};
    E.mono_ms = 1000000, E.epoch = 7;
    CU_ASSERT_EQUAL_FATAL(rp_new(&cfg, &E.c), CM_OK);
}

static void coord_free(void)
{
    rp_free(E.c);
    E.c = NULL;
}

static void env_down(void)
{
    coord_free();
    /* loopexit, not loopbreak: a break asked before the loop thread entered its loop is lost
     * (event_base_loop clears it on entry), which hung a test whose loop never ran */
    event_base_loopexit(E.base, NULL);
    pthread_join(E.th, NULL);
    for (int i = 0; i < NF; i++)
        fake_free(E.f[i]);
    fake_router_free(E.rt);
    md_hlc_release(&E.clk);
    event_base_free(E.base);
}

static void set_down(int i, int down)
{
    fake_faults ft = {0};
    ft.down = down;
    fake_set_faults(E.f[i], &ft);
}

static cm_err create(const char *key, const char *id, const char *owner)
{
    md_upload up;
    md_meta m = {"color", "blue"};
    memset(&up, 0, sizeof(up));
    up.key = (char *)key;
    snprintf(up.upload_id, sizeof(up.upload_id), "%s", id);
    up.initiated_ms = 1700000000000;
    snprintf(up.owner, sizeof(up.owner), "%s", owner);
    up.tmpl.content_type = "text/plain";
    up.tmpl.meta = &m;
    up.tmpl.nmeta = 1;
    up.tmpl.ck_alg = MD_CK_CRC32;
    return rp_upload_create(E.c, B, &up);
}

/* Part number's body in cells: a layout whose blob id is all tag (no inline body). */
static md_part body_of(uint32_t number, uint8_t tag)
{
    md_part p;
    memset(&p, 0, sizeof(p));
    p.number = number;
    p.size = 5u << 20;
    p.mtime_ms = 1700000000000;
    snprintf(p.etag, sizeof(p.etag), "e%u", number);
    memset(p.layout.blob, tag, 16);
    p.layout.size = p.size;
    p.layout.k = 2, p.layout.m = 1;
    return p;
}

/* A part whose body is "on drives": a layout with blob id tag (no inline body). */
static cm_err put_part(const char *key, uint32_t number, uint8_t tag, const char *etag)
{
    md_part p = body_of(number, tag);
    snprintf(p.etag, sizeof(p.etag), "%s", etag);
    return rp_part_put(E.c, B, key, ID, &p);
}

/* How many garbage records fake i holds, and whether one is blob tag. */
static size_t garbage(int i, uint8_t tag, int *has)
{
    md_garbage *g = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(md_garbage_list(fake_store(E.f[i]), UINT64_MAX, 1000, &g, &n), CM_OK);
    *has = 0;
    for (size_t j = 0; j < n; j++)
        *has |= g[j].layout.blob[0] == tag;
    md_garbage_free(g, n);
    return n;
}

/* ---- the key space ---- */

static void test_keys(void)
{
    static const char *keys[] = {"a", "a/b",
                                 "a\x01"
                                 "b",
                                 "\xc3\xa9t\xc3\xa9", "photos/2024/x.jpg"};
    char k[MD_MAX_KEY + 1], back[MD_MAX_KEY + 1], id[MD_MPU_ID_LEN + 1], pk[MD_MPU_PART_KEY_MAX];
    char pre[MD_MPU_PART_KEY_MAX];
    for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
        CU_ASSERT_EQUAL_FATAL(md_mpu_upload_key(keys[i], ID, k, sizeof(k)), CM_OK);
        CU_ASSERT_EQUAL((uint8_t)k[0], MD_MPU_MARK);
        CU_ASSERT_EQUAL(md_mpu_upload_split(k, back, id), CM_OK);
        CU_ASSERT_STRING_EQUAL(back, keys[i]);
        CU_ASSERT_STRING_EQUAL(id, ID);
        CU_ASSERT_EQUAL(md_mpu_part_key(keys[i], ID, 42, 0xabcdefULL, pk, sizeof(pk)), CM_OK);
        CU_ASSERT_EQUAL(md_mpu_part_prefix(keys[i], ID, pre, sizeof(pre)), CM_OK);
        uint32_t num = 0;
        uint64_t pid = 0;
        CU_ASSERT_EQUAL(md_mpu_part_split(pk, strlen(pre), &num, &pid), CM_OK);
        CU_ASSERT_EQUAL(num, 42);
        CU_ASSERT_EQUAL(pid, 0xabcdefULL);
        /* every record of an upload is in its object key's shard, whatever the shard count */
        for (uint32_t ns = 1; ns <= 256; ns *= 4) {
            uint32_t s = md_shard_of((const uint8_t *)keys[i], strlen(keys[i]), ns);
            CU_ASSERT_EQUAL(md_shard_of((const uint8_t *)k, strlen(k), ns), s);
            CU_ASSERT_EQUAL(md_shard_of((const uint8_t *)pk, strlen(pk), ns), s);
        }
    }
    /* Upload keys sort as their object keys do (then by id): "a" < "a\x01b" < "a/b". */
    char ka[MD_MAX_KEY + 1], kb[MD_MAX_KEY + 1], kc[MD_MAX_KEY + 1];
    md_mpu_upload_key("a", ID, ka, sizeof(ka));
    md_mpu_upload_key("a\x01"
                      "b",
                      ID, kb, sizeof(kb));
    md_mpu_upload_key("a/b", ID, kc, sizeof(kc));
    CU_ASSERT(strcmp(ka, kb) < 0 && strcmp(kb, kc) < 0);
    /* and after every S3 key (UTF-8 never holds 0xFF) */
    CU_ASSERT(strcmp(ka, "\xf4\x8f\xbf\xbf") > 0);
    /* refused: a bad id, a key that leaves no room, an empty key; malformed keys are not split */
    CU_ASSERT_EQUAL(md_mpu_upload_key("a", "0000018C0A0B0C0D1122334455667788", k, sizeof(k)),
                    CM_ERR_INVAL);
    CU_ASSERT_EQUAL(md_mpu_upload_key("a", "../x", k, sizeof(k)), CM_ERR_INVAL);
    char *longkey = malloc(MD_MAX_KEY + 1);
    memset(longkey, 'x', MD_MAX_KEY - 36);
    longkey[MD_MAX_KEY - 36] = 0;
    CU_ASSERT_EQUAL(md_mpu_upload_key(longkey, ID, k, sizeof(k)), CM_OK);
    CU_ASSERT_EQUAL(md_mpu_upload_long_id(k, id), CM_ERR_CORRUPT); /* the short form */
    /* one byte more: the long form, its key not in it, in its object key's shard */
    longkey[MD_MAX_KEY - 36] = 'x', longkey[MD_MAX_KEY - 35] = 0;
    CU_ASSERT_EQUAL_FATAL(md_mpu_upload_key(longkey, ID, k, sizeof(k)), CM_OK);
    CU_ASSERT(strlen(k) <= MD_MAX_KEY);
    CU_ASSERT_EQUAL(md_mpu_upload_split(k, back, id), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(md_mpu_upload_long_id(k, id), CM_OK);
    CU_ASSERT_STRING_EQUAL(id, ID);
    CU_ASSERT_EQUAL(md_mpu_upload_key_prefix(longkey, pre, sizeof(pre)), CM_ERR_INVAL); /* cap */
    char kp[MD_MAX_KEY + 1];
    CU_ASSERT_EQUAL(md_mpu_upload_key_prefix(longkey, kp, sizeof(kp)), CM_OK);
    CU_ASSERT(strncmp(k, kp, strlen(kp)) == 0 && strlen(k) == strlen(kp) + MD_MPU_ID_LEN);
    for (uint32_t ns = 1; ns <= 256; ns *= 4)
        CU_ASSERT_EQUAL(md_shard_of((const uint8_t *)k, strlen(k), ns),
                        md_shard_of((const uint8_t *)longkey, strlen(longkey), ns));
    /* 1,024 bytes, 01 bytes included (escaped): still a key of its own */
    memset(longkey, 0x01, MD_MAX_KEY);
    longkey[MD_MAX_KEY] = 0;
    CU_ASSERT_EQUAL(md_mpu_upload_key(longkey, ID, k, sizeof(k)), CM_OK);
    CU_ASSERT(strlen(k) <= MD_MAX_KEY && md_mpu_upload_long_id(k, id) == CM_OK);
    free(longkey);
    CU_ASSERT_EQUAL(md_mpu_upload_key("", ID, k, sizeof(k)), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(md_mpu_upload_split("plain", back, id), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(md_mpu_upload_split("\xffua\x01\x01short", back, id), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(md_mpu_upload_split("\xffua\x01\x03" ID, back, id), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(md_mpu_upload_long_id("\xffua\x01\x03" ID, id), CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(md_mpu_upload_long_id("\xffva\x01\x01" ID, id), CM_ERR_CORRUPT);
}

/* Two 1,024-byte keys that share their first 1,000 bytes (long-form upload keys) and a short
 * one: create, parts, get, list (whole and in pages of 1, markers the long keys), claim and end
 * one, abort the other. */
static void test_long_keys(void)
{
    char *k1 = malloc(MD_MAX_KEY + 1), *k2 = malloc(MD_MAX_KEY + 1);
    static const char id2[] = "00000000000000000000000000000002";
    memset(k1, 'q', MD_MAX_KEY);
    k1[MD_MAX_KEY] = 0;
    memcpy(k2, k1, MD_MAX_KEY + 1);
    memset(k2 + 1000, 'r', MD_MAX_KEY - 1000);
    env_up();
    CU_ASSERT_EQUAL_FATAL(create(k1, ID, "alice"), CM_OK);
    CU_ASSERT_EQUAL_FATAL(create(k2, id2, "bob"), CM_OK);
    CU_ASSERT_EQUAL_FATAL(create("a", ID, "carol"), CM_OK);
    md_upload up;
    CU_ASSERT_EQUAL(rp_upload_get(E.c, B, k2, ID, &up), CM_ERR_NOTFOUND); /* not k1's upload */
    CU_ASSERT_EQUAL_FATAL(rp_upload_get(E.c, B, k1, ID, &up), CM_OK);
    CU_ASSERT(strcmp(up.key, k1) == 0 && strcmp(up.owner, "alice") == 0);
    CU_ASSERT_EQUAL_FATAL(up.tmpl.nmeta, 1); /* the key's entry is not the object's */
    CU_ASSERT_STRING_EQUAL(up.tmpl.meta[0].name, "color");
    md_upload_release(&up);
    /* as stored: only the long form's record names its key (color, owner, key; color, owner) */
    char rk[MD_MAX_KEY + 1];
    md_object rec;
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL_FATAL(md_mpu_upload_key(i ? "a" : k1, ID, rk, sizeof(rk)), CM_OK);
        CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c, B, rk, &rec), CM_OK);
        CU_ASSERT_EQUAL(rec.nmeta, i ? 2 : 3);
        md_object_release(&rec);
    }
    CU_ASSERT_EQUAL(rp_part_put(E.c, B, k1, ID, &(md_part){.number = 0}), CM_ERR_INVAL);
    md_part p1 = body_of(1, 0x71), p2 = body_of(2, 0x72);
    CU_ASSERT_EQUAL(rp_part_put(E.c, B, k1, ID, &p1), CM_OK);
    CU_ASSERT_EQUAL(rp_part_put(E.c, B, k1, ID, &p2), CM_OK);
    CU_ASSERT_EQUAL(rp_part_put(E.c, B, k2, ID, &p1), CM_ERR_NOTFOUND);
    md_part *parts = NULL;
    uint64_t *ids = NULL;
    size_t n = 0;
    int trunc = 0;
    CU_ASSERT_EQUAL_FATAL(rp_part_list(E.c, B, k1, ID, 0, 100, &parts, &n, &trunc, &ids), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);

    /* the listing: "a", then the two long keys (one head: ordered by their hashes) */
    md_upload_list ul;
    md_upload_query uq = {NULL, NULL, NULL, NULL, 10};
    CU_ASSERT_EQUAL_FATAL(rp_upload_list(E.c, B, &uq, &ul), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ul.n, 3);
    CU_ASSERT_STRING_EQUAL(ul.uploads[0].key, "a");
    int first1 = strcmp(ul.uploads[1].key, k1) == 0;
    CU_ASSERT_STRING_EQUAL(ul.uploads[first1 ? 1 : 2].key, k1);
    CU_ASSERT_STRING_EQUAL(ul.uploads[first1 ? 2 : 1].key, k2);
    CU_ASSERT_STRING_EQUAL(ul.uploads[first1 ? 2 : 1].owner, "bob");
    CU_ASSERT_EQUAL(ul.uploads[first1 ? 2 : 1].tmpl.nmeta, 1);
    md_upload_list_release(&ul);
    md_upload_query pq = {"qqq", NULL, NULL, NULL, 1}; /* a prefix of both heads */
    const char *order[3] = {first1 ? k1 : k2, first1 ? k2 : k1, NULL};
    char *mk = NULL, *mid = NULL;
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(rp_upload_list(E.c, B, &pq, &ul), CM_OK);
        CU_ASSERT_EQUAL_FATAL(ul.n, order[i] ? 1 : 0);
        if (order[i])
            CU_ASSERT_STRING_EQUAL(ul.uploads[0].key, order[i]);
        CU_ASSERT_EQUAL(ul.truncated, i == 0);
        free(mk), free(mid);
        mk = mid = NULL;
        if (i == 0) {
            CU_ASSERT_STRING_EQUAL_FATAL(ul.next_key_marker, order[0]);
            mk = strdup(ul.next_key_marker), mid = strdup(ul.next_upload_id_marker);
        } else if (order[i]) { /* the last page is not truncated: the caller's marker */
            mk = strdup(ul.uploads[0].key), mid = strdup(ul.uploads[0].upload_id);
        }
        pq.key_marker = mk, pq.upload_id_marker = mid;
        md_upload_list_release(&ul);
    }
    free(mk), free(mid);
    /* a delimiter found only in upload ids and hashes (id2's zeros) rolls nothing up */
    md_upload_query dq = {NULL, "0", NULL, NULL, 10};
    CU_ASSERT_EQUAL_FATAL(rp_upload_list(E.c, B, &dq, &ul), CM_OK);
    CU_ASSERT(ul.n == 3 && ul.nprefixes == 0);
    md_upload_list_release(&ul);
    md_upload_query after = {NULL, NULL, order[0], NULL, 10}; /* after every upload of a key */
    CU_ASSERT_EQUAL_FATAL(rp_upload_list(E.c, B, &after, &ul), CM_OK);
    CU_ASSERT(ul.n == 1 && strcmp(ul.uploads[0].key, order[1]) == 0);
    md_upload_list_release(&ul);

    /* Complete of k1 (claim, then end keeping part 2), Abort of k2 */
    md_part kept[1];
    CU_ASSERT_EQUAL_FATAL(rp_part_fetch(E.c, B, k1, ID, 2, ids[1], &kept[0]), CM_OK);
    CU_ASSERT_EQUAL(kept[0].layout.blob[0], 0x72);
    CU_ASSERT_EQUAL(rp_upload_claim(E.c, B, k1, ID, kept, &ids[1], 1), CM_OK);
    CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, k1, ID), CM_ERR_NOTFOUND); /* claimed */
    CU_ASSERT_EQUAL(rp_upload_end(E.c, B, k1, ID, kept, &ids[1], 1), CM_OK);
    md_part_release(&kept[0]);
    md_parts_free(parts, n);
    free(ids);
    CU_ASSERT_EQUAL(rp_upload_get(E.c, B, k1, ID, &up), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, k2, id2), CM_OK);
    CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, k2, id2), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL_FATAL(rp_upload_list(E.c, B, &uq, &ul), CM_OK);
    CU_ASSERT(ul.n == 1 && strcmp(ul.uploads[0].key, "a") == 0);
    md_upload_list_release(&ul);
    CU_ASSERT_EQUAL(create(k2, ID, "bob"), CM_OK); /* DeleteBucket's sweep finds long keys */
    CU_ASSERT_EQUAL(rp_upload_abort_all(E.c, B), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_upload_list(E.c, B, &uq, &ul), CM_OK);
    CU_ASSERT_EQUAL(ul.n, 0);
    md_upload_list_release(&ul);
    coord_free();
    int has;
    for (int i = 0; i < NF; i++) { /* part 1's body is garbage everywhere, the kept 2's not */
        garbage(i, 0x71, &has);
        CU_ASSERT_EQUAL(has, 1);
        garbage(i, 0x72, &has);
        CU_ASSERT_EQUAL(has, 0);
    }
    env_down();
    free(k1);
    free(k2);
}

/* ---- an upload's life ---- */

static void test_lifecycle(void)
{
    md_upload up;
    md_part *parts = NULL, fetched;
    uint64_t *ids = NULL;
    size_t n = 0;
    int trunc = 0, has;
    env_up();
    CU_ASSERT_EQUAL(put_part("obj", 1, 0x11, "e1"), CM_ERR_NOTFOUND); /* no upload yet */
    CU_ASSERT_EQUAL(create("obj", ID, "alice"), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_upload_get(E.c, B, "obj", ID, &up), CM_OK);
    CU_ASSERT_STRING_EQUAL(up.owner, "alice");
    CU_ASSERT_EQUAL(up.initiated_ms, 1700000000000);
    CU_ASSERT_EQUAL(up.tmpl.ck_alg, MD_CK_CRC32);
    CU_ASSERT_STRING_EQUAL(up.tmpl.content_type, "text/plain");
    CU_ASSERT_EQUAL_FATAL(up.tmpl.nmeta, 1); /* the owner's entry is not the object's */
    CU_ASSERT_STRING_EQUAL(up.tmpl.meta[0].name, "color");
    md_upload_release(&up);
    CU_ASSERT_EQUAL(rp_upload_get(E.c, B, "other", ID, &up), CM_ERR_NOTFOUND);

    /* parts 1 and 3 once, part 2 twice: the second upload of 2 is the part, on every home */
    CU_ASSERT_EQUAL(put_part("obj", 1, 0x11, "e1"), CM_OK);
    CU_ASSERT_EQUAL(put_part("obj", 2, 0x21, "e2-old"), CM_OK);
    CU_ASSERT_EQUAL(put_part("obj", 3, 0x31, "e3"), CM_OK);
    CU_ASSERT_EQUAL(put_part("obj", 2, 0x22, "e2-new"), CM_OK);
    for (int down = -1; down < NF; down++) { /* with each home down in turn */
        if (down >= 0)
            set_down(down, 1);
        CU_ASSERT_EQUAL_FATAL(rp_part_list(E.c, B, "obj", ID, 0, 100, &parts, &n, &trunc, &ids),
                              CM_OK);
        CU_ASSERT_EQUAL_FATAL(n, 3);
        CU_ASSERT_STRING_EQUAL(parts[1].etag, "e2-new");
        CU_ASSERT_EQUAL(parts[2].number, 3);
        CU_ASSERT_EQUAL(trunc, 0);
        md_parts_free(parts, n);
        free(ids);
        if (down >= 0)
            set_down(down, 0);
    }
    /* pages: max 1 after part 1 */
    CU_ASSERT_EQUAL(rp_part_list(E.c, B, "obj", ID, 1, 1, &parts, &n, &trunc, &ids), CM_OK);
    CU_ASSERT(n == 1 && parts[0].number == 2 && trunc == 1);
    uint64_t id2 = ids[0];
    md_parts_free(parts, n);
    free(ids);
    CU_ASSERT_EQUAL_FATAL(rp_part_fetch(E.c, B, "obj", ID, 2, id2, &fetched), CM_OK);
    CU_ASSERT_EQUAL(fetched.layout.blob[0], 0x22);
    CU_ASSERT_STRING_EQUAL(fetched.etag, "e2-new");

    /* ListObjects shows the object keys only; ListMultipartUploads shows the upload */
    md_object o;
    memset(&o, 0, sizeof(o));
    o.key = "plain";
    memcpy(o.version_id, "null", 5);
    CU_ASSERT_EQUAL(rp_object_put(E.c, B, &o, NULL, NULL, NULL), CM_OK);
    md_list_query q = {"", NULL, NULL, 100};
    md_list_result res;
    CU_ASSERT_EQUAL_FATAL(rp_list_objects(E.c, B, &q, &res), CM_OK);
    CU_ASSERT(res.n == 1 && strcmp(res.entries[0].key, "plain") == 0 && !res.truncated);
    md_list_result_release(&res);
    md_list_query qr = {"\xffu", NULL, NULL, 100}; /* an S3 prefix in the reserved space */
    CU_ASSERT_EQUAL_FATAL(rp_list_objects(E.c, B, &qr, &res), CM_OK);
    CU_ASSERT_EQUAL(res.n, 0);
    md_list_result_release(&res);
    md_upload_list ul;
    md_upload_query uq = {NULL, NULL, NULL, NULL, 10};
    CU_ASSERT_EQUAL_FATAL(rp_upload_list(E.c, B, &uq, &ul), CM_OK);
    CU_ASSERT_EQUAL_FATAL(ul.n, 1);
    CU_ASSERT_STRING_EQUAL(ul.uploads[0].key, "obj");
    CU_ASSERT_STRING_EQUAL(ul.uploads[0].upload_id, ID);
    CU_ASSERT_STRING_EQUAL(ul.uploads[0].owner, "alice");
    md_upload_list_release(&ul);

    /* Complete kept parts 1 and 2 (fetched: its layout): its tombstone names the body */
    md_part kept[1] = {fetched};
    uint64_t kept_ids[1] = {id2};
    CU_ASSERT_EQUAL(rp_upload_end(E.c, B, "obj", ID, kept, kept_ids, 1), CM_OK);
    md_part_release(&fetched);
    CU_ASSERT_EQUAL(rp_upload_get(E.c, B, "obj", ID, &up), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(rp_part_list(E.c, B, "obj", ID, 0, 100, &parts, &n, &trunc, NULL), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    md_parts_free(parts, n);
    CU_ASSERT_EQUAL(put_part("obj", 4, 0x41, "late"), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL_FATAL(rp_upload_list(E.c, B, &uq, &ul), CM_OK);
    CU_ASSERT_EQUAL(ul.n, 0);
    md_upload_list_release(&ul);
    coord_free();
    /* every home: the bodies of part 1 (not kept here), 3 and the old 2 are garbage, 2's not */
    for (int i = 0; i < NF; i++) {
        CU_ASSERT_EQUAL(garbage(i, 0x22, &has), 3);
        CU_ASSERT_EQUAL(has, 0);
        garbage(i, 0x21, &has);
        CU_ASSERT_EQUAL(has, 1);
    }
    env_down();
}

/* Abort: every part's body is garbage on every home; an Abort of an upload whose Complete wrote
 * the object spares the bodies the object uses. */
static void test_abort(void)
{
    int has;
    env_up();
    CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, "obj", ID), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(create("obj", ID, "bob"), CM_OK);
    CU_ASSERT_EQUAL(put_part("obj", 1, 0x51, "e1"), CM_OK);
    CU_ASSERT_EQUAL(put_part("obj", 2, 0x52, "e2"), CM_OK);
    /* the object this upload made (a Complete that stopped before ending the upload) */
    md_part op;
    memset(&op, 0, sizeof(op));
    op.number = 1;
    memset(op.layout.blob, 0x51, 16);
    md_object o;
    memset(&o, 0, sizeof(o));
    o.key = "obj";
    memcpy(o.version_id, "null", 5);
    snprintf(o.upload_id, sizeof(o.upload_id), "%s", ID);
    o.parts = &op, o.nparts = 1;
    CU_ASSERT_EQUAL(rp_object_put(E.c, B, &o, NULL, NULL, NULL), CM_OK);
    set_down(2, 1); /* one home down: the abort still has its quorum */
    CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, "obj", ID), CM_OK);
    CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, "obj", ID), CM_ERR_NOTFOUND);
    set_down(2, 0);
    /* ListMultipartUploads pages (by key, then id) and DeleteBucket's sweep of every upload */
    char id[MD_MPU_ID_LEN + 1], key[16];
    for (int i = 0; i < 25; i++) {
        snprintf(id, sizeof(id), "%032x", i + 1);
        snprintf(key, sizeof(key), "k%d", i % 7);
        CU_ASSERT_EQUAL_FATAL(create(key, id, "bob"), CM_OK);
    }
    md_upload_list pg;
    md_upload_query pq = {NULL, NULL, NULL, NULL, 10};
    char last[64] = "", lastid[64] = "";
    int seen = 0, pages = 0;
    do {
        CU_ASSERT_EQUAL_FATAL(rp_upload_list(E.c, B, &pq, &pg), CM_OK);
        for (size_t j = 0; j < pg.n; j++) { /* strictly ascending by (key, id) */
            int c = strcmp(pg.uploads[j].key, last);
            CU_ASSERT(c > 0 || (c == 0 && strcmp(pg.uploads[j].upload_id, lastid) > 0));
            snprintf(last, sizeof(last), "%s", pg.uploads[j].key);
            snprintf(lastid, sizeof(lastid), "%s", pg.uploads[j].upload_id);
        }
        seen += (int)pg.n, pages++;
        if (pg.truncated) {
            CU_ASSERT_STRING_EQUAL(pg.next_key_marker, last);
            CU_ASSERT_STRING_EQUAL(pg.next_upload_id_marker, lastid);
        }
        int more = pg.truncated;
        md_upload_list_release(&pg);
        pq.key_marker = last, pq.upload_id_marker = lastid;
        if (!more)
            break;
    } while (pages < 10);
    CU_ASSERT_EQUAL(seen, 25);
    CU_ASSERT_EQUAL(pages, 3);
    pq = (md_upload_query){NULL, NULL, "k3", NULL, 100}; /* after every upload of k3 */
    CU_ASSERT_EQUAL_FATAL(rp_upload_list(E.c, B, &pq, &pg), CM_OK);
    CU_ASSERT(pg.n == 9 && strcmp(pg.uploads[0].key, "k4") == 0); /* k4-k6: 3 each */
    md_upload_list_release(&pg);
    CU_ASSERT_EQUAL(create("dir/a", ID, "bob"), CM_OK);
    CU_ASSERT_EQUAL(create("dir/b", ID, "bob"), CM_OK);
    pq = (md_upload_query){NULL, "/", NULL, NULL, 100}; /* dir/ rolls up, once */
    CU_ASSERT_EQUAL_FATAL(rp_upload_list(E.c, B, &pq, &pg), CM_OK);
    CU_ASSERT(pg.nprefixes == 1 && strcmp(pg.prefixes[0], "dir/") == 0 && pg.n == 25);
    md_upload_list_release(&pg);
    CU_ASSERT_EQUAL(rp_upload_abort_all(E.c, B), CM_OK);
    md_upload_list ul;
    md_upload_query uq = {NULL, NULL, NULL, NULL, 10};
    CU_ASSERT_EQUAL_FATAL(rp_upload_list(E.c, B, &uq, &ul), CM_OK);
    CU_ASSERT_EQUAL(ul.n, 0);
    md_upload_list_release(&ul);
    coord_free();
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(garbage(i, 0x51, &has), 1);
        CU_ASSERT_EQUAL(has, 0);
        garbage(i, 0x52, &has);
        CU_ASSERT_EQUAL(has, 1);
    }
    env_down();
}

/* The part record id of number n in the upload's current parts (0 when none). */
static uint64_t part_id(uint32_t n)
{
    md_part *parts = NULL;
    uint64_t *ids = NULL, id = 0;
    size_t np = 0;
    int trunc = 0;
    CU_ASSERT_EQUAL_FATAL(rp_part_list(E.c, B, "obj", ID, 0, 100, &parts, &np, &trunc, &ids),
                          CM_OK);
    for (size_t i = 0; i < np; i++)
        if (parts[i].number == n)
            id = ids[i];
    md_parts_free(parts, np);
    free(ids);
    return id;
}

/* Two Completes with other part lists, and an Abort, racing for one upload: one claim wins
 * (docs/multipart-cluster.md, "Ending an upload"); an UploadPart during a claim is recorded. */
static void test_claims(void)
{
    int has;
    env_up();
    CU_ASSERT_EQUAL(create("obj", ID, "bob"), CM_OK);
    for (uint8_t i = 1; i <= 3; i++)
        CU_ASSERT_EQUAL(put_part("obj", i, (uint8_t)(0x60 + i), "e"), CM_OK);
    md_part kept[2];
    memset(kept, 0, sizeof(kept));
    uint64_t a[2] = {part_id(1), part_id(2)}, b[2] = {part_id(1), part_id(3)};
    kept[0].number = 1, kept[1].number = 2;
    CU_ASSERT_EQUAL(rp_upload_claim(E.c, B, "obj", ID, kept, a, 2), CM_OK);
    CU_ASSERT_EQUAL(rp_upload_claim(E.c, B, "obj", ID, kept, a, 2), CM_OK); /* its retry */
    kept[1].number = 3;
    CU_ASSERT_EQUAL(rp_upload_claim(E.c, B, "obj", ID, kept, b, 2), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, "obj", ID), CM_ERR_NOTFOUND); /* A ends it */
    CU_ASSERT_EQUAL(put_part("obj", 4, 0x64, "e"), CM_OK); /* recorded during the claim */
    /* B's unclaim leaves A's claim; A's gives the upload back, and B claims it */
    CU_ASSERT_EQUAL(rp_upload_unclaim(E.c, B, "obj", ID, kept, b, 2), CM_OK);
    CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, "obj", ID), CM_ERR_NOTFOUND);
    kept[1].number = 2;
    CU_ASSERT_EQUAL(rp_upload_unclaim(E.c, B, "obj", ID, kept, a, 2), CM_OK);
    kept[1].number = 3;
    set_down(1, 1); /* a quorum is enough */
    CU_ASSERT_EQUAL(rp_upload_claim(E.c, B, "obj", ID, kept, b, 2), CM_OK);
    set_down(1, 0);
    memset(kept[0].layout.blob, 0x61, 16);
    memset(kept[1].layout.blob, 0x63, 16);
    md_upload up;
    CU_ASSERT_EQUAL(rp_upload_get(E.c, B, "obj", ID, &up), CM_OK);
    CU_ASSERT_EQUAL(up.tmpl.etag[0], 0); /* the claim is not the object's ETag */
    md_upload_release(&up);
    CU_ASSERT_EQUAL(rp_upload_end(E.c, B, "obj", ID, kept, b, 2), CM_OK);
    kept[1].number = 2;
    CU_ASSERT_EQUAL(rp_upload_claim(E.c, B, "obj", ID, kept, a, 2), CM_ERR_NOTFOUND);
    /* an Abort first: no Complete claims the upload afterwards */
    char id2[] = "0000018c0a0b0c0d11223344556677aa";
    CU_ASSERT_EQUAL(create("obj", id2, "bob"), CM_OK);
    CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, "obj", id2), CM_OK);
    CU_ASSERT_EQUAL(rp_upload_claim(E.c, B, "obj", id2, kept, a, 2), CM_ERR_NOTFOUND);
    coord_free();
    for (int i = 0; i < NF; i++) { /* B's bodies kept; 2 and the part of the claim freed */
        garbage(i, 0x61, &has);
        CU_ASSERT_EQUAL(has, 0);
        garbage(i, 0x63, &has);
        CU_ASSERT_EQUAL(has, 0);
        garbage(i, 0x62, &has);
        CU_ASSERT_EQUAL(has, 1);
        garbage(i, 0x64, &has);
        CU_ASSERT_EQUAL(has, 1);
    }
    env_down();
}

static int64_t skewed_wall(void *arg)
{
    return cm_now_ms() + *(const int64_t *)arg;
}

/* A claim whose Complete died is taken over by an Abort only after one node's monotonic clock
 * saw it unchanged for RP_CLAIM_STALE_MS, whatever the claiming node's wall clock says (an
 * hour behind: the Abort once took over at once; an hour ahead: never). */
static void test_claim_clocks(void)
{
    static const int64_t skews[] = {-3600000, 3600000};
    env_up();
    for (int s = 0; s < 2; s++) {
        char id[] = "0000018c0a0b0c0d11223344556677a0";
        id[sizeof(id) - 2] = (char)('0' + s);
        int64_t off = skews[s];
        md_hlc skew;
        md_hlc_init(&skew, 2, skewed_wall, &off);
        rp_config cfg = {.base = E.base,
                         .router = E.rt,
                         .route = fake_route,
                         .clock = &skew,
                         .node = 2,
                         .nshards = NSHARDS,
                         .timeout_ms = 2000};
        rp *cl = NULL; /* the claiming node: the system's monotonic clock, its wall clock off */
        CU_ASSERT_EQUAL_FATAL(rp_new(&cfg, &cl), CM_OK);
        CU_ASSERT_EQUAL(create("obj", id, "bob"), CM_OK);
        md_part kept[1];
        memset(kept, 0, sizeof(kept));
        kept[0].number = 1;
        uint64_t ids[1] = {42};
        CU_ASSERT_EQUAL(rp_upload_claim(cl, B, "obj", id, kept, ids, 1), CM_OK);
        CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, "obj", id), CM_ERR_NOTFOUND); /* seen first */
        E.mono_ms += RP_CLAIM_STALE_MS - 1;
        CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, "obj", id), CM_ERR_NOTFOUND);
        /* the Complete retried: stamped anew, the sightings gone */
        CU_ASSERT_EQUAL(rp_upload_claim(cl, B, "obj", id, kept, ids, 1), CM_OK);
        E.mono_ms += 2;
        CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, "obj", id), CM_ERR_NOTFOUND);
        md_upload up;
        CU_ASSERT_EQUAL(rp_upload_get(E.c, B, "obj", id, &up), CM_OK);
        CU_ASSERT_EQUAL(up.tmpl.nmeta, 1); /* sightings are not the object's metadata */
        md_upload_release(&up);
        E.mono_ms += RP_CLAIM_STALE_MS;
        E.epoch = 8; /* another host's clock: its first sighting, whatever its reading */
        CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, "obj", id), CM_ERR_NOTFOUND);
        E.epoch = 7; /* seen unchanged for RP_CLAIM_STALE_MS on this one: taken over */
        CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, "obj", id), CM_OK);
        CU_ASSERT_EQUAL(rp_upload_get(E.c, B, "obj", id, &up), CM_ERR_NOTFOUND);
        CU_ASSERT_EQUAL(rp_upload_claim(cl, B, "obj", id, kept, ids, 1), CM_ERR_NOTFOUND);
        rp_free(cl);
        md_hlc_release(&skew);
    }
    env_down();
}

/* Run step(missed) in a fresh environment holding upload ID of "obj", for every pair of homes
 * (missed, dead): step writes while home `missed` is down, then `dead` dies, and the part
 * listing over the two homes left (R = 2) must show parts 1, 2 (its newer upload) and 3. When
 * blob2 is not 0, part 2's record must also name that byte at layout.blob[1]. */
static void each_pair(void (*step)(int missed), uint8_t blob2)
{
    md_part *parts = NULL, fetched;
    uint64_t *ids = NULL;
    size_t n = 0;
    int trunc = 0;
    for (int missed = 0; missed < NF; missed++) {
        for (int dead = 0; dead < NF; dead++) {
            if (dead == missed)
                continue;
            env_up();
            CU_ASSERT_EQUAL_FATAL(create("obj", ID, "alice"), CM_OK);
            step(missed);
            set_down(missed, 0);
            set_down(dead, 1);
            CU_ASSERT_EQUAL_FATAL(rp_part_list(E.c, B, "obj", ID, 0, 100, &parts, &n, &trunc, &ids),
                                  CM_OK);
            CU_ASSERT_EQUAL(n, 3);
            if (n == 3) {
                CU_ASSERT(parts[0].number == 1 && parts[2].number == 3);
                CU_ASSERT_STRING_EQUAL(parts[1].etag, "e2-new");
                CU_ASSERT_EQUAL_FATAL(rp_part_fetch(E.c, B, "obj", ID, 2, ids[1], &fetched), CM_OK);
                CU_ASSERT_EQUAL(fetched.layout.blob[0], 0x22);
                CU_ASSERT(!blob2 || fetched.layout.blob[1] == blob2);
                md_part_release(&fetched);
            }
            md_parts_free(parts, n);
            free(ids);
            env_down();
        }
    }
}

/* Parts acknowledged by W homes, one of which then dies: whichever home missed the writes and
 * whichever one died, the listing over the two left finds them (R + W > N). */
static void parts_missed(int missed)
{
    CU_ASSERT_EQUAL(put_part("obj", 2, 0x21, "e2-old"), CM_OK);
    set_down(missed, 1); /* this home misses parts 1, 2 (again) and 3 */
    CU_ASSERT_EQUAL(put_part("obj", 1, 0x11, "e1"), CM_OK);
    CU_ASSERT_EQUAL(put_part("obj", 2, 0x22, "e2-new"), CM_OK);
    CU_ASSERT_EQUAL(put_part("obj", 3, 0x31, "e3"), CM_OK);
}

static void test_home_dies(void)
{
    each_pair(parts_missed, 0);
}

/* A repair's layout swap (rp_object_swap_layout, cmd/cluster_repair.c) of every part record, on
 * two homes while the third is down, then another home dies: the newer upload of part 2 is still
 * the part, and its record names the swapped layout. The swap keeps each record's stamp; a
 * rewrite that stamps anew (the conditional PUT the repair once used) makes the replaced upload
 * of part 2 the part whenever it is healed last, and Complete answers InvalidPart. */
static void parts_swapped(int missed)
{
    char pre[MD_MPU_PART_KEY_MAX], *next = NULL;
    md_object *recs = NULL;
    size_t nr = 0;
    CU_ASSERT_EQUAL(put_part("obj", 1, 0x11, "e1"), CM_OK);
    CU_ASSERT_EQUAL(put_part("obj", 2, 0x21, "e2-old"), CM_OK);
    CU_ASSERT_EQUAL(put_part("obj", 2, 0x22, "e2-new"), CM_OK);
    CU_ASSERT_EQUAL(put_part("obj", 3, 0x31, "e3"), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_mpu_part_prefix("obj", ID, pre, sizeof(pre)), CM_OK);
    CU_ASSERT_EQUAL_FATAL(rp_list_records(E.c, B, "obj", pre, NULL, 100, &recs, &nr, &next), CM_OK);
    CU_ASSERT_EQUAL(nr, 4);
    set_down(missed, 1);
    for (size_t i = 0; i < nr; i++) { /* in key order: either upload of part 2 may be last */
        md_object o;
        CU_ASSERT_EQUAL_FATAL(rp_object_get(E.c, B, recs[i].key, &o), CM_OK);
        md_layout old = o.parts[0].layout;
        o.parts[0].layout.blob[1] = 0x99; /* the healed body's new blob */
        CU_ASSERT_EQUAL(rp_object_swap_layout(E.c, B, &o, 0, &old), CM_OK);
        md_object_release(&o);
    }
    md_objects_free(recs, nr);
    free(next);
}

static void test_swap_then_home_dies(void)
{
    each_pair(parts_swapped, 0x99);
}

/* ---- intents: what a killed UploadPart leaves (docs/multipart-cluster.md, "Reclaiming") ---- */

/* The first half of rp_part_put_id, the record write, without the upload's second read: an
 * UploadPart whose node died right after it (or whose check came before an Abort). */
static cm_err record_only(uint32_t number, uint64_t id, uint8_t tag)
{
    char k[MD_MPU_PART_KEY_MAX];
    md_part p = body_of(number, tag);
    md_object rec;
    CU_ASSERT_EQUAL_FATAL(md_mpu_part_key("obj", ID, number, id, k, sizeof(k)), CM_OK);
    memset(&rec, 0, sizeof(rec));
    rec.key = k;
    memcpy(rec.version_id, "null", 5);
    rec.size = p.size;
    memcpy(rec.etag, p.etag, sizeof(rec.etag));
    memcpy(rec.upload_id, ID, MD_MPU_ID_LEN + 1);
    rec.parts = &p, rec.nparts = 1;
    return rp_object_put(E.c, B, &rec, NULL, NULL, NULL);
}

static cm_err decide_of(const char *key, uint32_t number, uint64_t id, uint8_t tag, int old,
                        int *verdict)
{
    uint8_t blob[16];
    memset(blob, tag, sizeof(blob));
    return rp_part_intent_decide(E.c, B, key, ID, number, id, blob, old, verdict);
}

static cm_err decide(uint32_t number, uint64_t id, uint8_t tag, int *free_it)
{
    return decide_of("obj", number, id, tag, 0, free_it);
}

/* The part record (number, id) at quorum, tombstones too: 1 live, 0 tombstone, -1 none. */
static int record_state(uint32_t number, uint64_t id)
{
    char k[MD_MPU_PART_KEY_MAX];
    md_object o;
    CU_ASSERT_EQUAL_FATAL(md_mpu_part_key("obj", ID, number, id, k, sizeof(k)), CM_OK);
    cm_err e = rp_record_get(E.c, B, k, &o);
    if (e != CM_OK)
        return -1;
    int live = !o.tombstone;
    md_object_release(&o);
    return live;
}

static void test_intents(void)
{
    int free_it = -1, settled = -1, has;
    env_up();
    CU_ASSERT_EQUAL_FATAL(create("obj", ID, "bob"), CM_OK);
    /* An UploadPart that runs to its end settles its record: its intent is dropped. */
    md_part p1 = body_of(1, 0x71);
    CU_ASSERT_EQUAL(rp_part_put_id(E.c, B, "obj", ID, 0x1001, &p1, &settled), CM_OK);
    CU_ASSERT_EQUAL(settled, 1);
    /* Killed after its cells, before its record: no record names the body. The decision
     * writes a tombstone first (a copy of the record on one home the read missed loses to it). */
    CU_ASSERT_EQUAL(decide(2, 0x2002, 0x72, &free_it), CM_OK);
    CU_ASSERT_EQUAL(free_it, 1);
    CU_ASSERT_EQUAL(record_state(2, 0x2002), 0);
    /* Killed after its record, before the upload's second read, with the upload open: the
     * record owns the body (Complete or Abort ends it), and stays. */
    CU_ASSERT_EQUAL(record_only(3, 0x3003, 0x73), CM_OK);
    CU_ASSERT_EQUAL(decide(3, 0x3003, 0x73, &free_it), CM_OK);
    CU_ASSERT_EQUAL(free_it, 0);
    CU_ASSERT_EQUAL(record_state(3, 0x3003), 1);
    /* The upload is aborted (its walk ends parts 1 and 3); then a record lands that the Abort's
     * walk never saw (its UploadPart checked the upload before), and the node dies before the
     * second read: the decision finds the upload gone and tombstones the record. */
    CU_ASSERT_EQUAL(rp_upload_abort(E.c, B, "obj", ID), CM_OK);
    CU_ASSERT_EQUAL(record_only(4, 0x4004, 0x74), CM_OK);
    CU_ASSERT_EQUAL(record_state(4, 0x4004), 1);
    CU_ASSERT_EQUAL(decide(4, 0x4004, 0x74, &free_it), CM_OK);
    CU_ASSERT_EQUAL(free_it, 0); /* its replicas make the body garbage */
    CU_ASSERT_EQUAL(record_state(4, 0x4004), 0);
    /* Deciding again (a crash before the intent was dropped) changes nothing. */
    CU_ASSERT_EQUAL(decide(4, 0x4004, 0x74, &free_it), CM_OK);
    CU_ASSERT_EQUAL(free_it, 1); /* a plain tombstone names no body: a second free is idle */
    CU_ASSERT_EQUAL(decide(2, 0x2002, 0x72, &free_it), CM_OK);
    CU_ASSERT_EQUAL(free_it, 1);
    /* An UploadPart after the Abort: NOTFOUND, nothing recorded, not settled. */
    md_part p5 = body_of(5, 0x75);
    CU_ASSERT_EQUAL(rp_part_put_id(E.c, B, "obj", ID, 0x5005, &p5, &settled), CM_ERR_NOTFOUND);
    CU_ASSERT_EQUAL(settled, 0);
    coord_free();
    for (int i = 0; i < NF; i++) { /* every home: garbage of the recorded bodies, 0x72 none */
        garbage(i, 0x74, &has);
        CU_ASSERT_EQUAL(has, 1);
        garbage(i, 0x73, &has);
        CU_ASSERT_EQUAL(has, 1);
        garbage(i, 0x72, &has);
        CU_ASSERT_EQUAL(has, 0);
    }
    env_down();
}

/* The object key with a body in cells (blob tag) made by upload `upload_id`. */
static cm_err object_of(const char *key, const char *upload_id, uint8_t tag)
{
    md_part p = body_of(1, tag);
    md_object o;
    int had = 0;
    memset(&o, 0, sizeof(o));
    o.key = (char *)key;
    memcpy(o.version_id, "null", 5);
    o.size = p.size;
    snprintf(o.upload_id, sizeof(o.upload_id), "%s", upload_id);
    o.parts = &p, o.nparts = 1;
    return rp_object_put(E.c, B, &o, NULL, NULL, &had);
}

/* An intent older than the tombstone grace: its record's key may read as never written because
 * a Complete's tombstone naming the body was collected. Never freed blindly: the object decides
 * (docs/multipart-cluster.md, "Reclaiming a killed UploadPart"). */
static void test_intents_old(void)
{
    int v = -1;
    env_up();
    /* "obj" completed from ID with part 1's body 0x81; part 2 (0x82) was not kept */
    CU_ASSERT_EQUAL(object_of("obj", ID, 0x81), CM_OK);
    CU_ASSERT_EQUAL(decide_of("obj", 1, 0x8001, 0x81, 1, &v), CM_OK);
    CU_ASSERT_EQUAL(v, RP_INTENT_OWNED); /* the object's body: once freed here */
    CU_ASSERT_EQUAL(record_state(1, 0x8001), -1);
    CU_ASSERT_EQUAL(decide_of("obj", 2, 0x8002, 0x82, 1, &v), CM_OK);
    CU_ASSERT_EQUAL(v, RP_INTENT_FREE); /* its Complete did not keep it */
    CU_ASSERT_EQUAL(record_state(2, 0x8002), 0);
    /* no object, or one another upload made: held (a noncurrent version may use it) */
    CU_ASSERT_EQUAL(decide_of("none", 1, 0x8003, 0x83, 1, &v), CM_OK);
    CU_ASSERT_EQUAL(v, RP_INTENT_HELD);
    CU_ASSERT_EQUAL(object_of("other", "0000018c0a0b0c0d1122334455667799", 0x85), CM_OK);
    CU_ASSERT_EQUAL(decide_of("other", 1, 0x8004, 0x84, 1, &v), CM_OK);
    CU_ASSERT_EQUAL(v, RP_INTENT_HELD);
    /* a young intent with no record at all is freed, as before (no tombstone can be gone) */
    CU_ASSERT_EQUAL(decide_of("none", 1, 0x8003, 0x83, 0, &v), CM_OK);
    CU_ASSERT_EQUAL(v, RP_INTENT_FREE);
    /* a plain tombstone (the one just written) found by an old intent: the object decides too */
    CU_ASSERT_EQUAL(decide_of("none", 1, 0x8003, 0x83, 1, &v), CM_OK);
    CU_ASSERT_EQUAL(v, RP_INTENT_HELD);
    env_down();
}

/* The intents database: put, listed only once released (or another opening's), to garbage. */
static void test_intent_store(void)
{
    env_up();
    md_store *md = fake_store(E.f[0]);
    md_intent in, *a = NULL;
    size_t n = 0;
    memset(&in, 0, sizeof(in));
    in.hlc = MD_HLC_MAKE(1700000000000LL, 0);
    memset(in.layout.blob, 0x7a, 16);
    in.layout.k = 2, in.layout.m = 1;
    in.layout.epoch = 3, in.layout.nodes[1] = 4;
    in.bucket = B, in.key = "obj";
    memcpy(in.upload_id, ID, sizeof(in.upload_id));
    in.number = 9, in.id = 0x9009;
    CU_ASSERT_EQUAL_FATAL(md_intent_put(md, &in), CM_OK);
    CU_ASSERT_EQUAL(md_intent_list(md, UINT64_MAX, 10, &a, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 0); /* its writer's (this opening's) until released */
    md_intents_free(a, n);
    CU_ASSERT_EQUAL(md_intent_release_async(md, &in), CM_OK);
    md_intent other = in;
    memset(other.layout.blob, 0x7b, 16);
    CU_ASSERT_EQUAL(md_intent_drop(md, &other), CM_OK); /* a later write: the release is in */
    CU_ASSERT_EQUAL(md_intent_list(md, in.hlc, 10, &a, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 0); /* not older than `before` */
    md_intents_free(a, n);
    CU_ASSERT_EQUAL_FATAL(md_intent_list(md, UINT64_MAX, 10, &a, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT(a[0].hlc == in.hlc && a[0].number == 9 && a[0].id == 0x9009 && a[0].life == 0);
    CU_ASSERT(strcmp(a[0].key, "obj") == 0 && strcmp(a[0].bucket, B) == 0 &&
              strcmp(a[0].upload_id, ID) == 0);
    CU_ASSERT(a[0].layout.epoch == 3 && a[0].layout.nodes[1] == 4 && a[0].layout.blob[0] == 0x7a);
    CU_ASSERT_EQUAL(md_intent_to_garbage(md, &a[0]), CM_OK);
    md_intents_free(a, n);
    CU_ASSERT_EQUAL(md_intent_list(md, UINT64_MAX, 10, &a, &n), CM_OK);
    CU_ASSERT_EQUAL(n, 0);
    md_intents_free(a, n);
    md_garbage *g = NULL;
    char pk[MD_MPU_PART_KEY_MAX];
    CU_ASSERT_EQUAL_FATAL(md_mpu_part_key("obj", ID, 9, 0x9009, pk, sizeof(pk)), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_garbage_list(md, UINT64_MAX, 10, &g, &n), CM_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1); /* under the part record's key, for ob_gc_run's checks */
    CU_ASSERT(g[0].hlc == in.hlc && g[0].layout.blob[0] == 0x7a && strcmp(g[0].key, pk) == 0);
    md_garbage_free(g, n);
    env_down();
}

void cu_register(void)
{
    static const cu_test t[] = {{"keys", test_keys},
                                {"lifecycle", test_lifecycle},
                                {"home_dies", test_home_dies},
                                {"swap_then_home_dies", test_swap_then_home_dies},
                                {"abort", test_abort},
                                {"long_keys", test_long_keys},
                                {"claims", test_claims},
                                {"claim_clocks", test_claim_clocks},
                                {"intents", test_intents},
                                {"intents_old", test_intents_old},
                                {"intent_store", test_intent_store},
                                {NULL, NULL}};
    cu_add_suite("repl_upload", t);
}
