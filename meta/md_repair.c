/*
 * md_repair.c - metadata side of self-repair: swap a rebuilt body into an object record.
 *
 * The scrubber rebuilds a damaged body under a new blob id and then calls
 * md_object_replace_layout. Inside one write op (its own LMDB transaction) the current record of
 * bucket/key is read, the part being repaired must still be stored under the blob the scrubber read
 * (otherwise the object was overwritten, deleted or repaired by someone else meanwhile:
 * CM_ERR_CONFLICT, and the caller drops its new data), and only that part's layout is replaced.
 * Nothing else in the record changes (ETag, mtime, checksums, headers), because the payload is the
 * same bytes. The check and the write form one group-commit op (md_commit.c), applied in its own
 * nested transaction, so a client overwrite ordered before it in the same batch is seen.
 *
 * Versioned buckets: when the latest version does not store that part under old_blob, the key's
 * older versions (md_version.c) are searched for the one that does, and its record in `versions`
 * is swapped the same way; none: CM_ERR_CONFLICT. The search decodes each older version's record
 * without bodies, only on this path (a repair, or a conflict).
 */
#include <string.h>

#include "md_int.h"

int md_layout_same_cells(const md_layout *a, const md_layout *b)
{
    int n = a->k + a->m;
    if (memcmp(a->blob, b->blob, 16) != 0 || a->size != b->size || a->k != b->k || a->m != b->m ||
        n > MD_MAX_CELLS)
        return 0;
    for (int i = 0; i < n; i++)
        if (a->drives[i] != b->drives[i] || (a->drives[i] != 0xFF && a->nodes[i] != b->nodes[i]))
            return 0;
    return 1;
}

/* CM_OK when part part_index of cur is a stored (non-inline) body under old_blob. */
static cm_err check_part(const md_object *cur, size_t part_index, const uint8_t old_blob[16],
                         const md_layout *new_layout)
{
    if (cur->delete_marker || cur->inline_data || part_index >= cur->nparts)
        return CM_ERR_CONFLICT;
    const md_part *p = &cur->parts[part_index];
    if (p->inline_data || memcmp(p->layout.blob, old_blob, 16) != 0)
        return CM_ERR_CONFLICT;
    if (MD_LAYOUT_BODY_SIZE(&p->layout) != MD_LAYOUT_BODY_SIZE(new_layout))
        return CM_ERR_INVAL; /* a rebuilt body holds the same payload (maybe stored otherwise) */
    return CM_OK;
}

typedef struct {
    uint8_t k[MD_KEYBUF];
    size_t kl, part_index;
    const uint8_t *old_blob;
    const md_layout *new_layout;
} replace_op;

/* The older version of the key whose part stores old_blob: its layout swapped in `versions`. */
static cm_err replace_older(md_store *md, MDB_txn *txn, const replace_op *op)
{
    uint8_t vk[MD_KEYBUF];
    md_kv_iter it;
    md_object o = {0};
    int hit = 0;
    memcpy(vk, op->k, op->kl);
    memset(vk + op->kl, 0, MD_VSUFFIX); /* \0 then BE64(~stamp) from 0: the newest first */
    cm_err e = md_kv_iter_open(txn, md->versions, &it);
    if (e != CM_OK)
        return e;
    for (e = md_kv_iter_seek(&it, vk, op->kl + MD_VSUFFIX);
         e == CM_OK && md_vers_of_key(&it, op->k, op->kl); e = md_kv_iter_next(&it)) {
        md_object s;
        if ((e = md_object_decode_ex(it.val.p, it.val.n, MD_DECODE_NOBODY, &s)) != CM_OK)
            break;
        cm_err c = check_part(&s, op->part_index, op->old_blob, op->new_layout);
        md_object_release(&s);
        if (c == CM_ERR_CONFLICT)
            continue;
        if (c == CM_OK) {
            memcpy(vk, it.key.p, it.key.n);
            hit = (e = md_object_decode_ex(it.val.p, it.val.n, MD_DECODE_FULL, &o)) == CM_OK;
        } else {
            e = c;
        }
        break;
    }
    md_kv_iter_close(&it);
    if (e == CM_ERR_NOTFOUND)
        e = CM_OK;
    if (e == CM_OK && !hit)
        e = CM_ERR_CONFLICT;
    if (hit) {
        md_wbuf w = {0};
        o.parts[op->part_index].layout = *op->new_layout;
        if (e == CM_OK && (e = md_object_encode_w(&o, &w)) == CM_OK)
            e = md_kv_put(txn, md->versions, vk, op->kl + MD_VSUFFIX, w.p, w.len);
        md_w_free(&w);
        md_object_release(&o);
    }
    return e;
}

static cm_err replace_apply(md_store *md, MDB_txn *txn, void *arg, int *wrote)
{
    replace_op *op = arg;
    md_object cur;
    int found = 0;
    (void)wrote;
    cm_err e = md_object_read(txn, md, op->k, op->kl, &cur, &found);
    if (e == CM_OK && !found)
        e = CM_ERR_CONFLICT; /* deleted meanwhile */
    if (e == CM_OK)
        e = check_part(&cur, op->part_index, op->old_blob, op->new_layout);
    if (e == CM_OK) {
        cur.parts[op->part_index].layout = *op->new_layout;
        e = md_object_write(txn, md, op->k, op->kl, &cur, &cur);
    } else if (e == CM_ERR_CONFLICT && found) {
        e = replace_older(md, txn, op); /* an older version's body, or overwritten meanwhile */
    }
    if (found)
        md_object_release(&cur);
    return e;
}

cm_err md_object_replace_layout(md_store *md, const char *bucket, const char *key,
                                size_t part_index, const uint8_t old_blob[16],
                                const md_layout *new_layout)
{
    replace_op op = {.part_index = part_index, .old_blob = old_blob, .new_layout = new_layout};
    if (md_key_object(bucket, key, op.k, &op.kl) != CM_OK)
        return CM_ERR_INVAL;
    return md_write(md, replace_apply, &op);
}
