/*
 * ob_lease.c - read leases: the data of an overwritten or deleted object stays until the readers
 * that are streaming it (GETs, copies, the scrubber) have finished.
 *
 * Each ob_store owns one lease table (ob_store_open creates it, ob_store_close deletes its
 * leftovers and frees it), so every layer that frees bodies through the store obeys it.
 *
 * A GET takes a lease on every blob of the object it is about to stream (ob_lease_acquire), then
 * re-reads the metadata (the latest, or the version asked for: ob_version_get_leased) to make
 * sure the record did not change in between (a commit that replaced
 * it may already have freed the blobs). A record whose body is inline or empty has no blob to
 * lease: the one read is the answer (half the metadata reads of a small GET). Freeing an object's
 * data (ob_free_object_data) deletes a blob at once when nobody reads it; otherwise the blob is
 * marked doomed and the last reader to release it deletes it. The table holds one entry per blob
 * being read, so it is bounded by the number of requests in flight.
 *
 * Deletes never wait here: the last reader (often an event loop ending a GET) queues the blob's
 * deletes with ob_delete_async. When a drive's delete queue is full, the entry stays in the table
 * as a leftover (no readers, doomed) instead, and the next ob_free_object_data (always on a worker
 * or the scrubber) deletes the leftovers with ob_delete, which waits for room.
 *
 * Threading: one mutex over a chained hash table; entries are small and short-lived. The delete
 * queues' locks are taken under it (they are leaves).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_util.h"
#include "ob_int.h"

#define LEASE_BUCKETS 1024

struct ob_lease_entry {
    struct ob_lease_entry *next;
    md_layout layout; /* the blob and where its cells are */
    unsigned readers;
    int doomed;   /* delete when the last reader leaves */
    int leftover; /* doomed, no readers, its delete not queued yet (counted in leftovers) */
};

struct ob_leases {
    pthread_mutex_t mu;
    struct ob_lease_entry *buckets[LEASE_BUCKETS];
    size_t leftovers; /* doomed entries without readers whose delete could not be queued */
};

cm_err ob_leases_new(ob_leases **out)
{
    ob_leases *l = calloc(1, sizeof(*l));
    if (!l)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&l->mu, NULL);
    *out = l;
    return CM_OK;
}

void ob_leases_free(ob_leases *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < LEASE_BUCKETS; i++)
        while (l->buckets[i]) {
            struct ob_lease_entry *e = l->buckets[i];
            l->buckets[i] = e->next;
            free(e);
        }
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static struct ob_lease_entry **slot(ob_leases *l, const uint8_t *blob)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ blob[i]) * 16777619u;
    struct ob_lease_entry **p = &l->buckets[h % LEASE_BUCKETS];
    while (*p && memcmp((*p)->layout.blob, blob, 16) != 0)
        p = &(*p)->next;
    return p;
}

static int is_data_part(const md_part *p)
{
    return !MD_PART_INLINE(p) && p->size > 0;
}

/* Whether any part of obj has its body in blobs (what a lease protects). */
static int has_data(const md_object *obj)
{
    for (size_t i = 0; i < obj->nparts; i++)
        if (is_data_part(&obj->parts[i]))
            return 1;
    return 0;
}

cm_err ob_lease_acquire(ob_store *st, const md_object *obj)
{
    ob_leases *l = ob_store_leases(st);
    cm_err err = CM_OK;
    size_t i;
    pthread_mutex_lock(&l->mu);
    for (i = 0; i < obj->nparts; i++) {
        if (!is_data_part(&obj->parts[i]))
            continue;
        struct ob_lease_entry **p = slot(l, obj->parts[i].layout.blob);
        if (!*p) {
            if (!(*p = calloc(1, sizeof(**p)))) {
                err = CM_ERR_NOMEM;
                break;
            }
            (*p)->layout = obj->parts[i].layout;
        }
        if ((*p)->leftover) { /* read again: its last reader will queue the delete */
            (*p)->leftover = 0;
            __atomic_sub_fetch(&l->leftovers, 1, __ATOMIC_RELAXED);
        }
        (*p)->readers++;
    }
    pthread_mutex_unlock(&l->mu);
    if (err != CM_OK) {
        md_object partial = *obj;
        partial.nparts = i;
        ob_lease_release(st, &partial);
    }
    return err;
}

void ob_lease_release(ob_store *st, const md_object *obj)
{
    ob_leases *l = ob_store_leases(st);
    for (size_t i = 0; i < obj->nparts; i++) {
        if (!is_data_part(&obj->parts[i]))
            continue;
        pthread_mutex_lock(&l->mu);
        struct ob_lease_entry **p = slot(l, obj->parts[i].layout.blob);
        struct ob_lease_entry *e = *p;
        if (e && e->readers > 0 && --e->readers == 0) {
            if (!e->doomed || ob_delete_async(st, &e->layout) == CM_OK) {
                *p = e->next;
                free(e);
            } else { /* a delete queue is full: a worker deletes it later */
                e->leftover = 1;
                __atomic_add_fetch(&l->leftovers, 1, __ATOMIC_RELAXED);
            }
        }
        pthread_mutex_unlock(&l->mu);
    }
}

void ob_lease_delete_leftovers(ob_store *st)
{
    ob_leases *l = ob_store_leases(st);
    md_layout batch[16];
    size_t n;
    if (__atomic_load_n(&l->leftovers, __ATOMIC_RELAXED) == 0)
        return;
    do {
        n = 0;
        pthread_mutex_lock(&l->mu);
        for (size_t b = 0; b < LEASE_BUCKETS && n < CM_ARRAY_LEN(batch); b++)
            for (struct ob_lease_entry **p = &l->buckets[b]; *p && n < CM_ARRAY_LEN(batch);) {
                struct ob_lease_entry *e = *p;
                if (!e->leftover) {
                    p = &e->next;
                    continue;
                }
                batch[n++] = e->layout;
                *p = e->next;
                free(e);
                __atomic_sub_fetch(&l->leftovers, 1, __ATOMIC_RELAXED);
            }
        pthread_mutex_unlock(&l->mu);
        for (size_t i = 0; i < n; i++)
            ob_delete(st, &batch[i]);
    } while (n > 0);
}

void ob_free_object_data(ob_store *st, const md_object *obj)
{
    ob_leases *l = ob_store_leases(st);
    ob_lease_delete_leftovers(st);
    for (size_t i = 0; i < obj->nparts; i++) {
        if (!is_data_part(&obj->parts[i]))
            continue;
        pthread_mutex_lock(&l->mu);
        struct ob_lease_entry *e = *slot(l, obj->parts[i].layout.blob);
        if (e)
            e->doomed = 1;
        pthread_mutex_unlock(&l->mu);
        if (!e)
            ob_delete(st, &obj->parts[i].layout);
    }
}

/* The same record: what a commit in between would have changed. */
static int same_record(const md_object *a, const md_object *b)
{
    if (a->mtime_ms != b->mtime_ms || strcmp(a->etag, b->etag) != 0 || a->nparts != b->nparts ||
        a->delete_marker != b->delete_marker)
        return 0;
    for (size_t i = 0; i < a->nparts; i++)
        if (memcmp(a->parts[i].layout.blob, b->parts[i].layout.blob, 16) != 0)
            return 0;
    return 1;
}

/* The record bucket/key now: the latest (vid NULL) or version vid. */
static cm_err read_record(md_store *md, const char *bucket, const char *key, const char *vid,
                          md_object *out)
{
    return vid ? md_version_get(md, bucket, key, vid, out) : md_object_get(md, bucket, key, out);
}

cm_err ob_object_get_leased(ob_store *st, md_store *md, const char *bucket, const char *key,
                            md_object *out)
{
    return ob_version_get_leased(st, md, bucket, key, NULL, out);
}

cm_err ob_version_get_leased(ob_store *st, md_store *md, const char *bucket, const char *key,
                             const char *vid, md_object *out)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        md_object again;
        cm_err err = read_record(md, bucket, key, vid, out);
        if (err != CM_OK || !has_data(out))
            return err; /* an inline or empty body came with the record: nothing to free under it */
        if ((err = ob_lease_acquire(st, out)) != CM_OK) {
            md_object_release(out);
            return err;
        }
        /* A commit between the read and the lease may already have freed the data: re-check. */
        err = read_record(md, bucket, key, vid, &again);
        int same = err == CM_OK && same_record(out, &again);
        if (err == CM_OK)
            md_object_release(&again);
        if (same)
            return CM_OK;
        ob_lease_release(st, out);
        md_object_release(out);
        if (err != CM_OK)
            return err;
    }
    return CM_ERR_CONFLICT; /* the key is being overwritten continuously: let the client retry */
}
