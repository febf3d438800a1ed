/*
 * ob_repair.c - verify and repair one stored body (ob.h): the per-body work of the scrubber,
 * callable on its own (a repair queue, a tool).
 *
 * Verify: every cell blob of the body on this node must exist with exactly
 * ob_layout_cell_blob_len bytes and read back in full through bs_read, which checks each 64 KiB
 * block CRC. A cell on an offline or failed drive (or dropped at write time) counts as bad only
 * when every drive is online: only then could a rewrite store all cells. Cells the layout puts on
 * another node are that node's to verify.
 *
 * Repair: ob_read the whole body (reconstructing from parity; a compressed body is read decoded
 * and compressed again by the new writer), check the MD5 against the part's
 * ETag when it is a plain MD5, write it with a new ob_writer (new blob id, durable when finish
 * returns), then md_object_replace_layout swaps it in only if the record still names the old
 * blob. On a conflict the new blobs are deleted (nobody can see them). On success the old blobs
 * go through ob_free_object_data: the caller's lease (and any GET's) keeps them until released.
 *
 * Pacing: every read of `n` bytes first asks the caller's pace callback, which may sleep (a rate
 * limit) or stop the work (CM_ERR_CLOSED). Threading: blocking; call from a worker thread.
 */
#include "ob_int.h"

#include <stdlib.h>
#include <string.h>

#include "cm_checksum.h"
#include "cm_util.h"

static int pace(const ob_pacer *p, uint64_t n)
{
    return p && p->pace ? p->pace(p->arg, n) : 0;
}

/* Verify one cell blob in full. CM_OK, the error that marks it bad, or CM_ERR_CLOSED on stop. */
static cm_err verify_cell(bs_store *bs, const bs_id *id, uint64_t want, uint8_t *buf, size_t cap,
                          const ob_pacer *p)
{
    uint64_t size = 0;
    cm_err e = bs_size(bs, id, &size);
    if (e != CM_OK)
        return e;
    if (size != want)
        return CM_ERR_CORRUPT;
    for (uint64_t off = 0; off < want;) {
        size_t n = (size_t)CM_MIN(want - off, cap);
        if (pace(p, n) != 0)
            return CM_ERR_CLOSED;
        if ((e = bs_read(bs, id, off, buf, n)) != CM_OK)
            return e;
        if (p && p->verified)
            p->verified(p->arg, n);
        off += n;
    }
    return CM_OK;
}

int ob_body_verify(ob_store *st, const md_layout *lay, uint8_t *buf, size_t cap, const ob_pacer *p,
                   cm_err *why)
{
    int ncells = lay->k + lay->m, bad = 0;
    int all_online = ob_store_drives_online(st) >= ncells;
    uint64_t want = ob_layout_cell_blob_len(lay);
    bs_id id;
    memcpy(id.b, lay->blob, sizeof(id.b));
    *why = CM_OK;
    for (int i = 0; i < ncells && i < MD_MAX_CELLS; i++) {
        if (!ob_cell_is_local(st, lay, i))
            continue; /* another node's cell: that node's scrubber verifies it */
        bs_store *bs = ob_cell_drive(st, lay, i);
        cm_err e = bs ? verify_cell(bs, &id, want, buf, cap, p) : CM_ERR_UNAVAILABLE;
        if (e == CM_ERR_CLOSED)
            return -1;
        if (e == CM_ERR_UNAVAILABLE && !all_online)
            continue; /* a rewrite could not place that cell either */
        if (e != CM_OK) {
            bad++;
            if (*why == CM_OK)
                *why = e;
        }
    }
    return bad;
}

static int is_md5_hex(const char *etag)
{
    if (strlen(etag) != 32)
        return 0;
    for (const char *p = etag; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/*
 * Read the body (reconstructing) into a new writer; checks the MD5 when the ETag is one and the
 * body is stored as sent. An encrypted body's ETag is the MD5 of its plaintext, which this layer
 * cannot see (no keys here): it relies on the cells' checksums, and the GCM tags catch anything
 * else when the object is read (docs/encryption.md).
 */
static cm_err rebuild(ob_store *st, const md_part *part, const ob_pacer *p, md_layout *out)
{
    const md_layout *lay = &part->layout;
    size_t piece = (size_t)lay->k * lay->cell_size;
    uint8_t *buf = malloc(piece), md5[16];
    ob_writer *w = NULL;
    cm_ck ck;
    cm_err e = buf ? cm_ck_init(&ck, CM_CK_MD5) : CM_ERR_NOMEM;
    if (e == CM_OK && (e = ob_writer_new(st, &w)) != CM_OK)
        cm_ck_release(&ck);
    if (e != CM_OK) {
        free(buf);
        return e;
    }
    uint64_t size = MD_LAYOUT_BODY_SIZE(lay); /* read decoded: a compressed body is re-encoded */
    for (uint64_t off = 0; e == CM_OK && off < size;) {
        size_t n = (size_t)CM_MIN(size - off, piece);
        e = pace(p, n) != 0 ? CM_ERR_CLOSED : ob_read(st, lay, off, buf, n);
        if (e == CM_OK) {
            cm_ck_update(&ck, buf, n);
            e = ob_writer_write(w, buf, n);
        }
        off += n;
    }
    cm_ck_final(&ck, md5);
    free(buf);
    if (e == CM_OK && is_md5_hex(part->etag) && !part->sse_key_len) {
        char hex[33];
        cm_hex_encode(md5, 16, hex);
        if (strcmp(hex, part->etag) != 0)
            e = CM_ERR_DIGEST; /* parity rebuilt other bytes than were stored: keep the old */
    }
    if (e != CM_OK) {
        ob_writer_abort(w);
        return e;
    }
    return ob_writer_finish(w, out);
}

cm_err ob_body_repair(ob_store *st, md_store *md, const char *bucket, const md_object *obj,
                      size_t part, const ob_pacer *p, md_layout *fresh)
{
    const md_part *old_part = &obj->parts[part];
    cm_err e = rebuild(st, old_part, p, fresh);
    if (e != CM_OK)
        return e;
    e = md_object_replace_layout(md, bucket, obj->key, part, old_part->layout.blob, fresh);
    if (e != CM_OK) {
        ob_delete(st, fresh); /* never visible: nobody can be reading it */
        return e;
    }
    /* The old cells: deleted now, or by the last reader (the caller's lease is released later). */
    md_object old = {0};
    old.parts = (md_part *)old_part;
    old.nparts = 1;
    ob_free_object_data(st, &old);
    return CM_OK;
}
