/*
 * gw_known.c - object records a decision reads (gw_authz.c: an object's canned ACL, the tags of
 * an s3:ExistingObjectTag condition; gw_website.c: what a website serves), local or replicated.
 *
 * On a single node gw_known_read reads the local store: microseconds, on the loop. On a cluster
 * node the record lives on its partition's replicas and a read is a quorum call, which must not
 * block a loop. There a decision runs in two passes: the first meets a record it does not know,
 * gw_known_read answers CM_AGAIN and remembers the (bucket, key) wanted; the caller then reads it
 * with gw_known_fetch (rp_object_get_async: started from the loop, no worker woken) and runs the
 * decision again, which now finds the record among those this request read (at most KNOWN_SLOTS,
 * the oldest dropped first: a decision needs one record, a copy two). On a worker (DeleteObjects'
 * per-key decisions) the caller reads it blocking instead (gw_known_load), outside the decision,
 * so that no quorum call is waited on under the policy cache's lock. A record read once is used
 * for the rest of the request: the decision and the answer see one version of it.
 *
 * Threading: the request's own thread (its loop, or the worker holding it).
 */
#include "gw_int.h"

#include <stdlib.h>
#include <string.h>

#include "rp.h"

#define KNOWN_SLOTS 4

typedef struct {
    char *bucket, *key; /* NULL: an empty slot */
    md_object o;
    int have; /* o is the current record; 0: there is none */
} known_slot;

struct gw_known {
    known_slot s[KNOWN_SLOTS];
    size_t next; /* the slot the next record goes to (round robin) */
    char *want_bucket, *want_key;
};

static void slot_clear(known_slot *s)
{
    free(s->bucket);
    free(s->key);
    if (s->have)
        md_object_release(&s->o);
    memset(s, 0, sizeof(*s));
}

void gw_known_free(gw_known *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < KNOWN_SLOTS; i++)
        slot_clear(&k->s[i]);
    free(k->want_bucket);
    free(k->want_key);
    free(k);
}

static const known_slot *find(const gw_known *k, const char *bucket, const char *key)
{
    for (size_t i = 0; k && i < KNOWN_SLOTS; i++) {
        const known_slot *s = &k->s[i];
        if (s->bucket && strcmp(s->bucket, bucket) == 0 && strcmp(s->key, key) == 0)
            return s;
    }
    return NULL;
}

static gw_known *known_of(gw_req *r)
{
    if (!r->known)
        r->known = calloc(1, sizeof(*r->known));
    return r->known;
}

/* Remember bucket/key as the record to fetch (the first one asked for wins). */
static cm_err want(gw_req *r, const char *bucket, const char *key)
{
    gw_known *k = known_of(r);
    if (!k)
        return CM_ERR_NOMEM;
    if (k->want_key)
        return CM_AGAIN;
    if (!(k->want_bucket = strdup(bucket)) || !(k->want_key = strdup(key))) {
        free(k->want_bucket);
        k->want_bucket = NULL;
        return CM_ERR_NOMEM;
    }
    return CM_AGAIN;
}

cm_err gw_known_read(gw_req *r, const char *bucket, const char *key, md_object *tmp,
                     const md_object **out)
{
    cm_err e;
    *out = NULL;
    if (!gw_meta_remote(r->g)) {
        e = md_rec_get(r->g->md, bucket, key, tmp);
        if (e == CM_OK && (tmp->delete_marker || tmp->tombstone)) {
            md_object_release(tmp);
            e = CM_ERR_NOTFOUND;
        }
        if (e == CM_OK)
            *out = tmp;
        return e;
    }
    const known_slot *s = find(r->known, bucket, key);
    if (!s)
        return want(r, bucket, key);
    if (!s->have)
        return CM_ERR_NOTFOUND;
    *out = &s->o;
    return CM_OK;
}

void gw_known_done(const md_object *got, md_object *tmp)
{
    if (got == tmp)
        md_object_release(tmp);
}

int gw_known_wanted(const gw_req *r)
{
    return r->known && r->known->want_key;
}

/* The read of the wanted record ended (rec taken when err is CM_OK): keep it in the next slot,
 * or "none" for a missing one; the read's failure otherwise. */
static cm_err keep(gw_known *k, cm_err err, md_object *rec)
{
    known_slot *s = &k->s[k->next];
    if (err == CM_OK && rec->delete_marker) {
        md_object_release(rec);
        err = CM_ERR_NOTFOUND;
    }
    if (err != CM_OK && err != CM_ERR_NOTFOUND) { /* nothing kept: a later decision asks again */
        free(k->want_bucket);
        free(k->want_key);
        k->want_bucket = k->want_key = NULL;
        return err;
    }
    slot_clear(s);
    s->bucket = k->want_bucket;
    s->key = k->want_key;
    k->want_bucket = k->want_key = NULL;
    if ((s->have = err == CM_OK))
        s->o = *rec;
    k->next = (k->next + 1) % KNOWN_SLOTS;
    return CM_OK;
}

/* Coordinator's loop: the wanted record arrived; back to r's loop. */
static void fetched(void *arg, cm_err err, md_object *rec)
{
    gw_req *r = arg;
    r->meta_err = keep(r->known, err, rec);
    gw_async_end(r);
}

/* A key of the multipart key space is never an object (gw_meta.c). */
static int reserved(const gw_known *k)
{
    return (uint8_t)k->want_key[0] == MD_MPU_MARK;
}

void gw_known_fetch(gw_req *r, gw_finish_fn done)
{
    gw_known *k = r->known;
    gw_async_begin(r, done);
    cm_err err = reserved(k)
                     ? CM_ERR_NOTFOUND
                     : rp_object_get_async(r->g->rp, k->want_bucket, k->want_key, fetched, r);
    if (err != CM_OK)
        fetched(r, err, NULL);
}

cm_err gw_known_load(gw_req *r)
{
    gw_known *k = r->known;
    md_object rec;
    cm_err err =
        reserved(k) ? CM_ERR_NOTFOUND : rp_object_get(r->g->rp, k->want_bucket, k->want_key, &rec);
    return keep(k, err, &rec);
}
