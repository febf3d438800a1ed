/*
 * md_intent.c - intents: the bodies an UploadPart on a cluster node is writing, recorded in the
 * node's own store before the first cell (md.h "Intents", docs/multipart-cluster.md "Reclaiming a
 * killed UploadPart").
 *
 * A cell written by a process that dies before the part's record lands is named by no record, and
 * nothing else would ever free it. The intent names it (the blob and the cells the writer placed)
 * and the part record's key; the writer drops it once the record is settled. What is left is
 * decided by this node's maintenance (rp_part_intent_decide): freed through the garbage records
 * (md_intent_to_garbage, one transaction with the drop) unless a record names the body.
 *
 * Database "intents": key hlc (u64 BE) | blob id (16 bytes), so the oldest come first; value
 * md_intent_encode. life says which opening of the store wrote an intent: md->life is drawn at
 * random when the store is opened, so after a restart every intent of the previous process is
 * another opening's, decidable at once (no writer of it is left); an intent of this opening is
 * decidable only once its writer released it (life 0). That is what keeps an UploadPart that
 * streams its body for hours from being decided under it: no time bound is involved.
 *
 * The release and a writer's handoff of a column (md_intent_move_async) change the stored
 * intent in their transaction (read, change, write): queued from different threads, neither
 * undoes the other, and neither brings back an intent dropped meanwhile.
 *
 * Threading: as md_store.c (writes are group-commit ops, reads take their own read txn).
 */
#include <stdlib.h>
#include <string.h>

#include "cm_util.h"
#include "md_int.h"

#define INTENT_KEY 24

static void intent_key(const md_intent *in, uint8_t k[INTENT_KEY])
{
    cm_put_be64(k, in->hlc);
    memcpy(k + 8, in->layout.blob, 16);
}

typedef struct {
    md_op op; /* first: the async release's fin gets it back */
    uint8_t k[INTENT_KEY];
    md_wbuf w;      /* the value to put; empty: drop */
    md_garbage g;   /* to_garbage: the garbage record, put in the same transaction */
    int to_garbage; /* (the value is the garbage's) */
    /* A change of the stored intent (none when nothing is stored: dropped meanwhile): release
     * (life 0) and / or column col moved to (node, drive), everything else as stored. */
    int change, release, col;
    uint16_t node;
    uint8_t drive;
    void (*done)(void *arg, cm_err e); /* md_intent_move_async's */
    void *done_arg;
} intent_op;

/* The change op->change asks of the stored intent, in the op's transaction. */
static cm_err intent_change(md_store *md, MDB_txn *txn, intent_op *op, int *wrote)
{
    MDB_val kv = {INTENT_KEY, op->k}, vv;
    md_intent in;
    int rc = mdb_get(txn, md->intents, &kv, &vv);
    if (rc == MDB_NOTFOUND) { /* dropped (settled, or decided) meanwhile: nothing to change */
        *wrote = 0;
        return CM_OK;
    }
    if (rc)
        return md_mdb_err(rc, "get intent");
    cm_err e = md_intent_decode(vv.mv_data, vv.mv_size, &in);
    if (e != CM_OK)
        return e;
    in.hlc = cm_get_be64(op->k);
    if (op->release)
        in.life = 0;
    if (op->col >= 0 && op->col < MD_MAX_CELLS) {
        in.layout.nodes[op->col] = op->node;
        in.layout.drives[op->col] = op->drive;
    }
    md_w_free(&op->w);
    e = md_intent_encode(&in, &op->w);
    free(in.bucket);
    free(in.key);
    if (e != CM_OK)
        return e;
    vv = (MDB_val){op->w.len, op->w.p};
    rc = md_db_put(txn, md->intents, &kv, &vv, 0);
    return rc ? md_mdb_err(rc, "put intent") : CM_OK;
}

static cm_err intent_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    intent_op *op = arg;
    MDB_val kv = {INTENT_KEY, op->k};
    if (op->change)
        return intent_change(md, txn, op, wrote);
    if (op->w.len && !op->to_garbage) {
        MDB_val vv = {op->w.len, op->w.p};
        int rc = md_db_put(txn, md->intents, &kv, &vv, 0);
        return rc ? md_mdb_err(rc, "put intent") : CM_OK;
    }
    int rc = md_db_del(txn, md->intents, &kv);
    if (rc && rc != MDB_NOTFOUND)
        return md_mdb_err(rc, "del intent");
    if (op->to_garbage)
        return md_garbage_put_in(txn, md, &op->g, 1);
    if (rc == MDB_NOTFOUND)
        *wrote = 0;
    return CM_OK;
}

cm_err md_intent_put(md_store *md, md_intent *in)
{
    intent_op op = {0};
    in->life = md->life;
    intent_key(in, op.k);
    cm_err e = md_intent_encode(in, &op.w);
    if (e == CM_OK)
        e = md_write(md, intent_apply, &op);
    md_w_free(&op.w);
    return e;
}

cm_err md_intent_drop(md_store *md, const md_intent *in)
{
    intent_op op = {0};
    intent_key(in, op.k);
    return md_write(md, intent_apply, &op);
}

static void release_fin(md_op *op)
{
    intent_op *r = (intent_op *)op;
    if (op->err != CM_OK)
        CM_WARN(MD_MOD, "an intent was not released: %s (it is decided after a restart)",
                cm_err_str(op->err));
    md_w_free(&r->w);
    free(r);
}

/* Queue op (k and the change set): release_fin, or move_fin with a done, ends it. */
static cm_err change_async(md_store *md, intent_op *op)
{
    op->change = 1;
    op->op.apply = intent_apply;
    op->op.arg = op;
    cm_err e = md_write_async(md, &op->op);
    if (e != CM_OK)
        free(op);
    return e;
}

/* Released as stored (a hand-off may have moved a column since in was read: md_intent_move). */
cm_err md_intent_release_async(md_store *md, const md_intent *in)
{
    intent_op *op = calloc(1, sizeof(*op));
    if (!op)
        return CM_ERR_NOMEM;
    intent_key(in, op->k);
    op->release = 1, op->col = -1;
    op->op.fin = release_fin;
    return change_async(md, op);
}

static void move_fin(md_op *op)
{
    intent_op *r = (intent_op *)op;
    r->done(r->done_arg, op->err);
    md_w_free(&r->w);
    free(r);
}

cm_err md_intent_move_async(md_store *md, uint64_t hlc, const uint8_t *blob, int col, uint16_t node,
                            uint8_t drive, void (*done)(void *arg, cm_err e), void *arg)
{
    intent_op *op = calloc(1, sizeof(*op));
    if (!op)
        return CM_ERR_NOMEM;
    cm_put_be64(op->k, hlc);
    memcpy(op->k + 8, blob, 16);
    op->col = col, op->node = node, op->drive = drive;
    op->done = done, op->done_arg = arg;
    op->op.fin = move_fin;
    return change_async(md, op);
}

cm_err md_intent_to_garbage(md_store *md, const md_intent *in)
{
    char pk[MD_MPU_PART_KEY_MAX];
    intent_op op = {.to_garbage = 1};
    cm_err e = md_mpu_part_key(in->key, in->upload_id, in->number, in->id, pk, sizeof(pk));
    if (e != CM_OK)
        return e;
    intent_key(in, op.k);
    op.g = (md_garbage){in->hlc, in->layout, in->bucket, pk};
    return md_write(md, intent_apply, &op);
}

static cm_err intents_collect(MDB_txn *txn, md_store *md, uint64_t before, size_t max,
                              md_intent **out, size_t *n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, md->intents, &cur);
    if (rc)
        return md_mdb_err(rc, "mdb_cursor_open");
    cm_err e = CM_OK;
    while (*n < max && (rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if (k.mv_size != INTENT_KEY) {
            e = MD_CORRUPT("intent key length");
            break;
        }
        uint64_t hlc = cm_get_be64(k.mv_data);
        if (hlc >= before)
            break; /* keys sort by hlc: the rest is younger */
        md_intent in;
        if ((e = md_intent_decode(v.mv_data, v.mv_size, &in)) != CM_OK)
            break;
        in.hlc = hlc;
        if (in.life == md->life || memcmp(in.layout.blob, (uint8_t *)k.mv_data + 8, 16) != 0) {
            free(in.bucket); /* its writer's still (or a value under another blob's key) */
            free(in.key);
            continue;
        }
        md_intent *a = realloc(*out, (*n + 1) * sizeof(*a));
        if (!a) {
            free(in.bucket);
            free(in.key);
            e = CM_ERR_NOMEM;
            break;
        }
        *out = a;
        a[(*n)++] = in;
    }
    if (e == CM_OK && rc && rc != MDB_NOTFOUND)
        e = md_mdb_err(rc, "list intents");
    mdb_cursor_close(cur);
    return e;
}

cm_err md_intent_list(md_store *md, uint64_t before, size_t max, md_intent **out, size_t *n)
{
    MDB_txn *txn;
    *out = NULL, *n = 0;
    cm_err e = md_txn_begin(md, 1, &txn);
    if (e != CM_OK)
        return e;
    e = intents_collect(txn, md, before, max, out, n);
    md_txn_end(md, txn);
    if (e != CM_OK) {
        md_intents_free(*out, *n);
        *out = NULL, *n = 0;
    }
    return e;
}

void md_intents_free(md_intent *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++) {
        free(a[i].bucket);
        free(a[i].key);
    }
    free(a);
}
