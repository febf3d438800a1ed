/*
 * md_rewrap.c - master-key rotation in the store (docs/encryption.md, "Rotating the master key"):
 * every wrapped data key of an encrypted body, re-wrapped by the caller's function, written back
 * into its record without touching anything else.
 *
 * Where wrapped secrets live: the data keys in the parts of object records (PT_SSE in each
 * OT_PART) in `objects` (the latest versions) and `versions` (the older ones) and in the part
 * records of multipart uploads in progress in `parts`; the access keys' secrets in `users` ("k/"
 * records, md_users.c). A pass walks the four databases in that order, each in key order,
 * md_rewrap_step doing up to `max` records per write transaction after a cursor the caller keeps
 * (and may store: a pass resumes where it stopped); the records a step changed are held in memory
 * until its writes, at most STEP_BYTES of them (a step ends early past that). Records written while
 * the pass runs are wrapped under the primary already; a step reads and rewrites its records in one
 * transaction of the group commit, so no client write can slip between its read and its write.
 *
 * In place. A wrapped secret keeps its length under another master key (cm_mkey format), so the
 * record's bytes are patched where the old one stood: fields this reader does not know,
 * the generation and every other byte stay as they were. The old wrapped key (65 random-looking
 * bytes) is found in the stored record by its bytes and must occur exactly once; anything else is
 * corruption and stops the step. SSE-C objects' keys are wrapped under the customer's key: their
 * records are skipped (object mode SSE-C). An upload's part record does not say its mode; the
 * caller's function tells an SSE-C key from one under a missing master key by its key id.
 *
 * Verification. Records move between the databases while a pass runs (Complete copies an
 * upload's part keys into an object record, a versioned write moves the latest into `versions`,
 * deleting the latest promotes an older one back), so a key can move from a place the pass has
 * not reached to one it has passed. md_rewrap_verify therefore reads all four databases in one
 * read transaction, a snapshot: when no key in it is under another master key, none is from then
 * on (only the primary wraps, and moves copy keys as they are). It holds a read transaction for
 * the whole scan (in memory, no body is read): the map cannot grow meanwhile.
 *
 * Threading: md_rewrap_step runs its work on the commit thread (md_write); fn runs there too and
 * must not block (it unwraps and wraps 32-byte keys). md_rewrap_verify runs on the caller's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md_int.h"

/* A step keeps the records it changed until its writes: at most this many bytes of them. */
#define STEP_BYTES (8u << 20)

_Static_assert(sizeof(((md_rewrap_cursor *)0)->after) >= MD_KEYBUF,
               "a cursor holds any key of the walked databases");

typedef struct {
    uint8_t *k, *v; /* heap copies; v patched */
    size_t kl, vl;
} rw_rec;

typedef struct {
    md_rewrap_cursor *cur;
    size_t max;
    md_rewrap_fn fn;
    void *arg;
    md_rewrap_counts got;
    char *bad;
    size_t bad_cap;
    rw_rec *recs; /* the records to write back */
    size_t n, bytes;
    int keep; /* 0: a verification, nothing is written back */
} rw_op;

static MDB_dbi phase_db(md_store *md, uint8_t phase)
{
    return phase == MD_REWRAP_OBJECTS    ? md->objects
           : phase == MD_REWRAP_VERSIONS ? md->versions
           : phase == MD_REWRAP_PARTS    ? md->parts
                                         : md->users;
}

/* Replace the one occurrence of old[0..n) in v[0..vl) by nw. CM_ERR_CORRUPT when not once. */
static cm_err patch(uint8_t *v, size_t vl, const uint8_t *old, const uint8_t *nw, size_t n)
{
    uint8_t *at = NULL;
    for (size_t i = 0; i + n <= vl; i++) {
        if (memcmp(v + i, old, n) != 0)
            continue;
        if (at)
            return CM_ERR_CORRUPT;
        at = v + i;
    }
    if (!at)
        return CM_ERR_CORRUPT;
    memcpy(at, nw, n);
    return CM_OK;
}

/* fn over one wrapped secret w[0..n) of rec, patching rec's stored bytes when it changed. */
static cm_err one_secret(rw_op *op, const uint8_t *w, size_t n, md_rewrap_kind kind,
                         const char *name, rw_rec *rec, int *changed)
{
    uint8_t again[MD_SEALED_MAX > MD_SSE_WRAPPED_MAX ? MD_SEALED_MAX : MD_SSE_WRAPPED_MAX];
    int ch = 0;
    if (n == 0 || n > sizeof(again))
        return n == 0 ? CM_OK : CM_ERR_CORRUPT;
    memcpy(again, w, n);
    op->got.keys++;
    cm_err e = op->fn(op->arg, again, n, kind, name, &ch);
    if (e == CM_OK && ch)
        e = patch(rec->v, rec->vl, w, again, n);
    if (e == CM_OK && ch) {
        op->got.rewrapped++;
        *changed = 1;
    }
    return e;
}

/* The wrapped secrets of one stored record; *changed when any was rewrapped (rec->v patched). */
static cm_err one_record(rw_op *op, rw_rec *rec, int *changed)
{
    cm_err e;
    *changed = 0;
    if (op->cur->phase == MD_REWRAP_USERS) {
        md_user_key k;
        if (rec->kl < 2 || rec->k[0] != 'k' || rec->k[1] != '/')
            return CM_OK; /* a user or a policy: nothing wrapped */
        if ((e = md_user_key_decode(rec->v, rec->vl, (const char *)rec->k + 2, rec->kl - 2, &k)) !=
            CM_OK)
            return e;
        return one_secret(op, k.sealed, k.sealed_len, MD_REWRAP_USER, k.access_key, rec, changed);
    }
    if (op->cur->phase == MD_REWRAP_PARTS) {
        md_part p;
        if ((e = md_part_decode_ex(rec->v, rec->vl, 1, &p)) != CM_OK)
            return e;
        e = one_secret(op, p.sse_key, p.sse_key_len, MD_REWRAP_PART, NULL, rec, changed);
        md_part_release(&p);
        return e;
    }
    md_object o;
    if ((e = md_object_decode_ex(rec->v, rec->vl, MD_DECODE_NOBODY, &o)) != CM_OK)
        return e;
    for (size_t i = 0; e == CM_OK && o.sse.mode == MD_SSE_S3 && i < o.nparts; i++)
        e = one_secret(op, o.parts[i].sse_key, o.parts[i].sse_key_len, MD_REWRAP_SSE_S3, NULL, rec,
                       changed);
    md_object_release(&o);
    return e;
}

/* The record's key as text for the operator: bucket/key (NULs shown as '/'). */
static void name_of(const rw_rec *rec, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < rec->kl && n + 1 < cap; i++) {
        uint8_t c = rec->k[i];
        out[n++] = c == 0 ? '/' : (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    if (cap)
        out[n] = '\0';
}

static void recs_free(rw_op *op)
{
    for (size_t i = 0; i < op->n; i++) {
        free(op->recs[i].k);
        free(op->recs[i].v);
    }
    free(op->recs);
    op->recs = NULL;
    op->n = 0;
}

/* Read up to max records after the cursor (fewer when those changed reach STEP_BYTES),
 * rewrapping in memory; the cursor names the last one read, *end when the database ended. */
static cm_err scan(md_store *md, MDB_txn *txn, rw_op *op, int *end)
{
    md_kv_iter it;
    md_rewrap_cursor *c = op->cur;
    size_t seen = 0;
    cm_err e = md_kv_iter_open(txn, phase_db(md, c->phase), &it);
    if (e != CM_OK)
        return e;
    e = md_kv_iter_seek(&it, c->after, c->after_len);
    if (e == CM_OK && c->after_len && it.key.n == c->after_len &&
        memcmp(it.key.p, c->after, c->after_len) == 0)
        e = md_kv_iter_next(&it); /* done by the step before */
    for (; e == CM_OK && seen < op->max && op->bytes < STEP_BYTES;
         e = md_kv_iter_next(&it), seen++) {
        rw_rec rec = {malloc(it.key.n ? it.key.n : 1), malloc(it.val.n ? it.val.n : 1), it.key.n,
                      it.val.n};
        int changed = 0;
        if (!rec.k || !rec.v || it.key.n > sizeof(c->after)) {
            free(rec.k), free(rec.v);
            e = rec.k && rec.v ? CM_ERR_CORRUPT : CM_ERR_NOMEM;
            break;
        }
        memcpy(rec.k, it.key.p, it.key.n);
        memcpy(rec.v, it.val.p, it.val.n);
        op->got.records++;
        e = one_record(op, &rec, &changed);
        if (e != CM_OK) {
            name_of(&rec, op->bad, op->bad_cap);
            free(rec.k), free(rec.v);
            break;
        }
        memcpy(c->after, rec.k, rec.kl);
        c->after_len = rec.kl;
        if (!changed || !op->keep) {
            free(rec.k), free(rec.v);
            continue;
        }
        rw_rec *grown = realloc(op->recs, (op->n + 1) * sizeof(*grown));
        if (!grown) {
            free(rec.k), free(rec.v);
            e = CM_ERR_NOMEM;
            break;
        }
        op->recs = grown;
        op->recs[op->n++] = rec;
        op->bytes += rec.kl + rec.vl;
    }
    md_kv_iter_close(&it);
    *end = e == CM_ERR_NOTFOUND;
    return e == CM_ERR_NOTFOUND ? CM_OK : e;
}

static cm_err rewrap_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    rw_op *op = arg;
    int end = 0;
    cm_err e = scan(md, txn, op, &end);
    for (size_t i = 0; e == CM_OK && i < op->n; i++)
        e = md_kv_put(txn, phase_db(md, op->cur->phase), op->recs[i].k, op->recs[i].kl,
                      op->recs[i].v, op->recs[i].vl);
    if (e == CM_OK && end) {
        op->cur->phase++;
        op->cur->after_len = 0;
    }
    *wrote = e == CM_OK && op->n > 0;
    return e;
}

cm_err md_rewrap_step(md_store *md, md_rewrap_cursor *cur, size_t max, md_rewrap_fn fn, void *arg,
                      md_rewrap_counts *add, char *bad, size_t bad_cap)
{
    if (bad_cap)
        bad[0] = '\0';
    if (cur->phase >= MD_REWRAP_DONE)
        return CM_OK;
    md_rewrap_cursor work = *cur;
    rw_op op = {.cur = &work,
                .max = max ? max : 1,
                .fn = fn,
                .arg = arg,
                .bad = bad,
                .bad_cap = bad_cap,
                .keep = 1};
    cm_err e = md_write(md, rewrap_apply, &op);
    recs_free(&op);
    if (e != CM_OK)
        return e; /* nothing of the step is written: the cursor stays */
    *cur = work;
    add->records += op.got.records;
    add->keys += op.got.keys;
    add->rewrapped += op.got.rewrapped;
    return CM_OK;
}

cm_err md_rewrap_verify(md_store *md, md_rewrap_fn fn, void *arg, md_rewrap_counts *got, char *bad,
                        size_t bad_cap)
{
    MDB_txn *txn;
    md_rewrap_cursor c = {0};
    rw_op op = {.cur = &c, .max = SIZE_MAX, .fn = fn, .arg = arg, .bad = bad, .bad_cap = bad_cap};
    int end = 0;
    if (bad_cap)
        bad[0] = '\0';
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    while (e == CM_OK && c.phase < MD_REWRAP_DONE) {
        e = scan(md, txn, &op, &end);
        if (e == CM_OK && end) {
            c.phase++;
            c.after_len = 0;
        }
    }
    md_txn_end(md, txn);
    *got = op.got;
    return e;
}
