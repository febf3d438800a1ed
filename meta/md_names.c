/*
 * md_names.c - which of a set of blob ids the records of this store name: the mark phase of the
 * cluster's orphan sweep (docs/storage.md, "Orphans on a cluster"; cmd/cluster_orphans.c).
 *
 * Every database whose values name a stored body is read, in this order: intents (an UploadPart
 * writing its cells), parts (single-node multipart parts), uploads (their templates), objects
 * (current records of every bucket, and on a cluster node the multipart and version records of
 * the reserved 0xFF key space, tombstones included), versions (older versions), hints (records
 * this node keeps for a home that was down), garbage (bodies the maintenance frees after
 * gc_grace_s, a heal's old cells among them). Most names that move from one kind to another
 * (intent -> part -> object -> version or garbage) move forward in that order, so a walk that
 * misses one in a database finds it in a later one; the sweep's second round covers the others
 * (a hint delivered to its home, a name moving between nodes). Each value is decoded in full but
 * for inline bodies; every part's blob counts, inline or not, tombstone or not (a zero id names no
 * real blob). A value that does not decode fails the whole call (CM_ERR_CORRUPT): a name that
 * cannot be read must never let a cell look unnamed.
 *
 * Matching is by blob id alone, not by the (node, drive) a layout names: a blob id is the same on
 * every drive holding a cell of the body, so a cell a heal moved away from (and whose garbage
 * record is gone) stays named while its body lives. That keeps a few cells too many, never one
 * too few.
 *
 * Bounded: the caller's ids (sorted, bsearch per blob a record names) and one decoded value; a
 * read transaction spans at most NAMES_TXN_MAX entries (a long walk never pins the map for long:
 * the next transaction seeks past the last key read).
 *
 * Threading: any thread; reads take their own read transactions.
 */
#include <stdlib.h>
#include <string.h>

#include "md_int.h"

#define NAMES_TXN_MAX 4096 /* entries read per read transaction */

enum { K_OBJECT, K_PART, K_UPLOAD, K_GARBAGE, K_INTENT };

typedef struct {
    const uint8_t (*ids)[16];
    size_t n;
    uint8_t *named;
    uint64_t records; /* values read */
} names_ctx;

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static void mark(names_ctx *c, const uint8_t blob[16])
{
    const uint8_t(*hit)[16] = bsearch(blob, c->ids, c->n, 16, cmp_id);
    if (hit)
        c->named[hit - c->ids] = 1;
}

static void mark_parts(names_ctx *c, const md_part *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mark(c, parts[i].layout.blob);
}

/* The blobs one value of kind names. */
static cm_err mark_value(names_ctx *c, int kind, const md_slice *v)
{
    cm_err e;
    c->records++;
    if (kind == K_OBJECT) {
        md_object o;
        if ((e = md_object_decode_ex(v->p, v->n, MD_DECODE_NOBODY, &o)) != CM_OK)
            return e;
        mark_parts(c, o.parts, o.nparts);
        md_object_release(&o);
    } else if (kind == K_PART) {
        md_part p;
        if ((e = md_part_decode_ex(v->p, v->n, 1, &p)) != CM_OK)
            return e;
        mark(c, p.layout.blob);
        md_part_release(&p);
    } else if (kind == K_UPLOAD) {
        md_upload u;
        if ((e = md_upload_decode(v->p, v->n, &u)) != CM_OK)
            return e;
        mark_parts(c, u.tmpl.parts, u.tmpl.nparts);
        md_upload_release(&u);
    } else if (kind == K_GARBAGE) {
        md_garbage g;
        if ((e = md_garbage_decode(v->p, v->n, &g)) != CM_OK)
            return e;
        mark(c, g.layout.blob);
        free(g.bucket);
        free(g.key);
    } else {
        md_intent in;
        if ((e = md_intent_decode(v->p, v->n, &in)) != CM_OK)
            return e;
        mark(c, in.layout.blob);
        free(in.bucket);
        free(in.key);
    }
    return CM_OK;
}

/* Every value of dbi, NAMES_TXN_MAX per read transaction. */
static cm_err walk_db(md_store *md, MDB_dbi dbi, int kind, names_ctx *c)
{
    uint8_t last[MD_KEYBUF];
    size_t last_len = 0;
    int started = 0;
    for (;;) {
        MDB_txn *txn;
        md_kv_iter it;
        cm_err e = md_txn_begin(md, 1, &txn);
        if (e != CM_OK)
            return e;
        if ((e = md_kv_iter_open(txn, dbi, &it)) != CM_OK) {
            md_txn_end(md, txn);
            return e;
        }
        size_t done = 0;
        e = md_kv_iter_seek(&it, started ? last : (const uint8_t *)"", started ? last_len : 0);
        if (e == CM_OK && started && it.key.n == last_len && memcmp(it.key.p, last, last_len) == 0)
            e = md_kv_iter_next(&it); /* exclusive of the last key read */
        for (; e == CM_OK && done < NAMES_TXN_MAX; e = md_kv_iter_next(&it), done++) {
            if (it.key.n > sizeof(last)) {
                e = MD_CORRUPT("a key longer than any record's");
                break;
            }
            if ((e = mark_value(c, kind, &it.val)) != CM_OK)
                break;
            memcpy(last, it.key.p, it.key.n);
            last_len = it.key.n;
            started = 1;
        }
        md_kv_iter_close(&it);
        md_txn_end(md, txn);
        if (e == CM_ERR_NOTFOUND)
            return CM_OK; /* the end of the database */
        if (e != CM_OK)
            return e;
    }
}

cm_err md_names_mark(md_store *md, const uint8_t (*ids)[16], size_t n, uint8_t *named,
                     uint64_t *records)
{
    names_ctx c = {ids, n, named, 0};
    memset(named, 0, n);
    for (size_t i = 1; i < n; i++)
        if (memcmp(ids[i - 1], ids[i], 16) >= 0)
            return CM_ERR_INVAL; /* bsearch needs them sorted */
    const struct {
        MDB_dbi dbi;
        int kind;
    } dbs[] = {{md->intents, K_INTENT}, {md->parts, K_PART},      {md->uploads, K_UPLOAD},
               {md->objects, K_OBJECT}, {md->versions, K_OBJECT}, {md->hints, K_OBJECT},
               {md->garbage, K_GARBAGE}};
    cm_err e = CM_OK;
    for (size_t i = 0; e == CM_OK && i < sizeof(dbs) / sizeof(dbs[0]); i++)
        e = walk_db(md, dbs[i].dbi, dbs[i].kind, &c);
    if (records)
        *records = c.records;
    return e;
}
