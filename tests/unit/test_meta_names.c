/*
 * test_meta_names.c - md_names_mark (md_names.c), the mark phase of the cluster's orphan sweep:
 * a blob is named when any kind of record of the store names it (a current object, an older
 * version, a multipart part, an UploadPart intent, a garbage record, a hint kept for another
 * node), and only then; ids must come sorted; a walk longer than one read transaction's worth of
 * entries still sees every record.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "md.h"

static md_store *open_store(const char *name)
{
    char dir[512];
    md_store *md = NULL;
    snprintf(dir, sizeof(dir), "%s/%s", cu_tmpdir(), name);
    CU_ASSERT_FATAL(md_open(dir, 1 << 26, &md) == CM_OK);
    return md;
}

static void blob_of(int tag, uint8_t out[16])
{
    memset(out, 0, 16);
    out[0] = 0xB0;
    out[14] = (uint8_t)(tag >> 8);
    out[15] = (uint8_t)tag;
}

static void layout_of(int tag, md_layout *l)
{
    memset(l, 0, sizeof(*l));
    blob_of(tag, l->blob);
    l->size = 100;
    l->cell_size = 100;
    l->k = 1;
    l->m = 1;
    l->drives[0] = 0;
    l->drives[1] = 1;
    l->epoch = 1;
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, failed;
} put_wait;

static void put_done(void *arg, cm_err err, md_object *old, int had_old)
{
    put_wait *pw = arg;
    if (had_old)
        md_object_release(old);
    pthread_mutex_lock(&pw->mu);
    pw->done++;
    pw->failed += err != CM_OK;
    pthread_cond_signal(&pw->cv);
    pthread_mutex_unlock(&pw->mu);
}

/* An object record of key whose one part is stored under blob tag; with pw, queued (put_done
 * counts it). */
static cm_err put_obj_ex(md_store *md, const char *bucket, const char *key, int tag, put_wait *pw)
{
    md_part part;
    memset(&part, 0, sizeof(part));
    part.number = 1;
    part.size = 100;
    layout_of(tag, &part.layout);
    md_object o;
    memset(&o, 0, sizeof(o));
    o.key = (char *)key;
    o.size = 100;
    snprintf(o.etag, sizeof(o.etag), "e%d", tag);
    o.parts = &part;
    o.nparts = 1;
    if (pw)
        return md_object_put_async(md, bucket, &o, NULL, put_done, pw);
    return md_object_put_v(md, bucket, &o, NULL, NULL, NULL, NULL);
}

static cm_err put_obj(md_store *md, const char *bucket, const char *key, int tag)
{
    return put_obj_ex(md, bucket, key, tag, NULL);
}

static cm_err put_obj_async(md_store *md, const char *bucket, const char *key, int tag,
                            put_wait *pw)
{
    return put_obj_ex(md, bucket, key, tag, pw);
}

enum {
    T_CURRENT = 1,
    T_OLDER,
    T_PART,
    T_INTENT,
    T_GARBAGE,
    T_HINT,
    T_NONE, /* no record names it */
    T_COUNT
};

static void test_every_kind(void)
{
    md_store *md = open_store("kinds");
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "b");
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(md, &b), CM_OK);
    CU_ASSERT_EQUAL_FATAL(md_bucket_set_versioning(md, "b", MD_VERS_ENABLED), CM_OK);
    /* an older version (the key written twice in a versioned bucket) and the current one */
    CU_ASSERT_EQUAL(put_obj(md, "b", "v", T_OLDER), CM_OK);
    CU_ASSERT_EQUAL(put_obj(md, "b", "v", T_CURRENT), CM_OK);
    /* a part of an unfinished upload */
    md_upload up;
    memset(&up, 0, sizeof(up));
    up.key = "mp";
    snprintf(up.upload_id, sizeof(up.upload_id), "u1");
    CU_ASSERT_EQUAL_FATAL(md_upload_create(md, "b", &up), CM_OK);
    md_part part;
    memset(&part, 0, sizeof(part));
    part.number = 3;
    part.size = 100;
    layout_of(T_PART, &part.layout);
    CU_ASSERT_EQUAL(md_part_put(md, "b", "mp", "u1", &part, NULL, NULL), CM_OK);
    /* an UploadPart's intent, a garbage record, a hint */
    md_intent in;
    memset(&in, 0, sizeof(in));
    in.hlc = MD_HLC_MAKE(1700000000000ULL, 0);
    layout_of(T_INTENT, &in.layout);
    in.bucket = "b", in.key = "mp";
    snprintf(in.upload_id, sizeof(in.upload_id), "u1");
    in.number = 4;
    in.id = 7;
    CU_ASSERT_EQUAL(md_intent_put(md, &in), CM_OK);
    md_garbage g;
    memset(&g, 0, sizeof(g));
    g.hlc = MD_HLC_MAKE(1700000000000ULL, 0);
    layout_of(T_GARBAGE, &g.layout);
    g.bucket = "b", g.key = "gone";
    CU_ASSERT_EQUAL(md_garbage_put(md, &g, 1), CM_OK);
    md_part hp;
    memset(&hp, 0, sizeof(hp));
    hp.number = 1;
    hp.size = 100;
    layout_of(T_HINT, &hp.layout);
    md_object h;
    memset(&h, 0, sizeof(h));
    h.key = "hinted";
    h.size = 100;
    h.hlc = MD_HLC_MAKE(1700000000000ULL, 0);
    h.parts = &hp;
    h.nparts = 1;
    CU_ASSERT_EQUAL(md_hint_put(md, "n2", "b", &h), CM_OK);

    uint8_t ids[T_COUNT][16], named[T_COUNT];
    for (int t = 0; t < T_COUNT; t++)
        blob_of(t, ids[t]); /* tag 0 is a blob no record names either */
    uint64_t records = 0;
    CU_ASSERT_EQUAL_FATAL(md_names_mark(md, (const uint8_t(*)[16])ids, T_COUNT, named, &records),
                          CM_OK);
    CU_ASSERT_FALSE(named[0]);
    for (int t = T_CURRENT; t < T_NONE; t++) {
        if (!named[t])
            fprintf(stderr, "blob tag %d not named\n", t);
        CU_ASSERT_TRUE(named[t]);
    }
    CU_ASSERT_FALSE(named[T_NONE]);
    CU_ASSERT_TRUE(records >= 6);

    /* the garbage record dropped (its cells reclaimed): no longer named */
    CU_ASSERT_EQUAL(md_garbage_drop(md, &g, 1), CM_OK);
    CU_ASSERT_EQUAL(md_names_mark(md, (const uint8_t(*)[16])ids, T_COUNT, named, NULL), CM_OK);
    CU_ASSERT_FALSE(named[T_GARBAGE]);
    CU_ASSERT_TRUE(named[T_CURRENT]);

    /* unsorted or repeated ids are refused */
    uint8_t two[2][16];
    blob_of(5, two[0]);
    blob_of(2, two[1]);
    CU_ASSERT_EQUAL(md_names_mark(md, (const uint8_t(*)[16])two, 2, named, NULL), CM_ERR_INVAL);
    blob_of(2, two[0]);
    CU_ASSERT_EQUAL(md_names_mark(md, (const uint8_t(*)[16])two, 2, named, NULL), CM_ERR_INVAL);
    md_close(md);
}

/* More objects than one read transaction reads (4096): the walk resumes after the last key. */
static void test_long_walk(void)
{
    md_store *md = open_store("long");
    md_bucket b = {0};
    snprintf(b.name, sizeof(b.name), "b");
    CU_ASSERT_EQUAL_FATAL(md_bucket_create(md, &b), CM_OK);
    enum { N = 9000 };
    /* queued without waiting, so the group commit writes them in a few batches */
    put_wait pw = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    for (int i = 1; i <= N; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%05d", i);
        CU_ASSERT_EQUAL_FATAL(put_obj_async(md, "b", key, i, &pw), CM_OK);
    }
    pthread_mutex_lock(&pw.mu);
    while (pw.done < N)
        pthread_cond_wait(&pw.cv, &pw.mu);
    pthread_mutex_unlock(&pw.mu);
    CU_ASSERT_EQUAL(pw.failed, 0);
    uint8_t ids[4][16], named[4];
    blob_of(1, ids[0]);
    blob_of(4097, ids[1]);
    blob_of(N, ids[2]);
    blob_of(N + 1, ids[3]);
    uint64_t records = 0;
    CU_ASSERT_EQUAL(md_names_mark(md, (const uint8_t(*)[16])ids, 4, named, &records), CM_OK);
    CU_ASSERT_TRUE(named[0] && named[1] && named[2]);
    CU_ASSERT_FALSE(named[3]);
    CU_ASSERT_EQUAL(records, N);
    md_close(md);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"every_kind", test_every_kind}, {"long_walk", test_long_walk}, {NULL, NULL}};
    cu_add_suite("meta_names", tests);
}
