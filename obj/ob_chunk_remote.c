/*
 * ob_chunk_remote.c - the chunk interface's remote backend (a node's drives over the node RPC,
 * node/nd.h) and the (node, drive) -> backend resolver (ob_chunk.h, docs/chunks.md).
 *
 * Each call maps onto one nd_client call: append -> nd_append (the body moved into the request
 * by reference; append_parts -> nd_append_parts alike, read_parts -> nd_read_parts), seal -> an
 * empty synced append at the expected length (the node syncs the chunk and answers 409 with the
 * real length when it differs), read -> nd_read with the arriving bytes moved into the call's
 * evbuffer (no copy; bounded by the range asked for, at most OB_CHUNK_MAX_IO), delete / stat / list
 * -> nd_delete / nd_stat / nd_list. nd_client already completes on the caller's loop and never
 * inside the call; the fault layer (nd_faults) applies as to any RPC call, so a refused peer
 * completes CM_ERR_UNAVAILABLE at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "cm_util.h"
#include "ob_chunk.h"

typedef struct {
    ob_chunks base;
    nd_client *cl;
    char id[ND_NODE_ID_MAX];
    char host[PL_ADDR_MAX];
    nd_peer peer;
} rm_backend;

typedef struct {
    ob_chunk_done done;
    void *arg;
    struct evbuffer *data; /* read */
} rm_call;

static rm_call *rm_call_new(ob_chunk_done done, void *arg, int read)
{
    rm_call *rc = calloc(1, sizeof(*rc));
    if (!rc)
        return NULL;
    rc->done = done;
    rc->arg = arg;
    if (read && !(rc->data = evbuffer_new())) {
        free(rc);
        return NULL;
    }
    return rc;
}

static void rm_call_free(rm_call *rc)
{
    if (rc->data)
        evbuffer_free(rc->data);
    free(rc);
}

/* Started or not: on failure to start, the call is freed and its error returned. */
static cm_err started(rm_call *rc, cm_err e)
{
    if (e != CM_OK)
        rm_call_free(rc);
    return e;
}

static void rm_done(void *arg, const nd_result *r)
{
    rm_call *rc = arg;
    ob_chunk_result res = {r->err, r->size, NULL, r->list, r->nlist, r->more, r->message};
    if (rc->data && r->err == CM_OK) {
        res.data = rc->data;
        res.size = evbuffer_get_length(rc->data);
    }
    rc->done(rc->arg, &res);
    rm_call_free(rc);
}

static void rm_data(void *arg, nd_op *op, struct evbuffer *data)
{
    rm_call *rc = arg;
    (void)op;
    evbuffer_add_buffer(rc->data, data);
}

static cm_err rm_append(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off,
                        struct evbuffer *body, uint32_t crc32c, unsigned flags, ob_chunk_done done,
                        void *arg)
{
    rm_backend *b = (rm_backend *)c;
    rm_call *rc = rm_call_new(done, arg, 0);
    if (!rc)
        return CM_ERR_NOMEM;
    return started(rc, nd_append(b->cl, &b->peer, drive, id, off, evbuffer_get_length(body), crc32c,
                                 body, NULL, (flags & OB_CHUNK_SYNC) != 0, rm_done, rc, NULL));
}

static cm_err rm_seal(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t len,
                      ob_chunk_done done, void *arg)
{
    rm_backend *b = (rm_backend *)c;
    rm_call *rc = rm_call_new(done, arg, 0);
    if (!rc)
        return CM_ERR_NOMEM;
    return started(
        rc, nd_append(b->cl, &b->peer, drive, id, len, 0, 0, NULL, NULL, 1, rm_done, rc, NULL));
}

static cm_err rm_read(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off, uint64_t len,
                      ob_chunk_done done, void *arg)
{
    rm_backend *b = (rm_backend *)c;
    rm_call *rc = rm_call_new(done, arg, 1);
    if (!rc)
        return CM_ERR_NOMEM;
    return started(rc, nd_read(b->cl, &b->peer, drive, id, off, len, rm_data, rm_done, rc, NULL));
}

static cm_err rm_delete(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done,
                        void *arg)
{
    rm_backend *b = (rm_backend *)c;
    rm_call *rc = rm_call_new(done, arg, 0);
    if (!rc)
        return CM_ERR_NOMEM;
    return started(rc, nd_delete(b->cl, &b->peer, drive, id, rm_done, rc));
}

static cm_err rm_stat(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done, void *arg)
{
    rm_backend *b = (rm_backend *)c;
    rm_call *rc = rm_call_new(done, arg, 0);
    if (!rc)
        return CM_ERR_NOMEM;
    return started(rc, nd_stat(b->cl, &b->peer, drive, id, rm_done, rc));
}

static cm_err rm_list(ob_chunks *c, uint32_t drive, const bs_id *after, size_t max,
                      ob_chunk_done done, void *arg)
{
    rm_backend *b = (rm_backend *)c;
    rm_call *rc = rm_call_new(done, arg, 0);
    if (!rc)
        return CM_ERR_NOMEM;
    return started(rc, nd_list(b->cl, &b->peer, drive, after, max, rm_done, rc));
}

static void rm_free(ob_chunks *c)
{
    free(c);
}

static cm_err rm_read_parts(ob_chunks *c, const uint32_t *drives, int n, const bs_id *id,
                            uint64_t off, uint64_t len, ob_chunk_done done, void *arg)
{
    rm_backend *b = (rm_backend *)c;
    rm_call *rc = rm_call_new(done, arg, 1);
    if (!rc)
        return CM_ERR_NOMEM;
    return started(
        rc, nd_read_parts(b->cl, &b->peer, drives, n, id, off, len, rm_data, rm_done, rc, NULL));
}

static cm_err rm_append_parts(ob_chunks *c, const uint32_t *drives, int n, const bs_id *id,
                              uint64_t off, struct evbuffer *body, const uint32_t *crcs,
                              unsigned flags, ob_chunk_done done, void *arg)
{
    rm_backend *b = (rm_backend *)c;
    rm_call *rc = rm_call_new(done, arg, 0);
    if (!rc)
        return CM_ERR_NOMEM;
    return started(rc, nd_append_parts(b->cl, &b->peer, drives, n, id, off, crcs, body,
                                       (flags & OB_CHUNK_SYNC) != 0, rm_done, rc, NULL));
}

static const ob_chunk_ops rm_ops = {rm_append, rm_seal, rm_read,       rm_delete,      rm_stat,
                                    rm_list,   rm_free, rm_read_parts, rm_append_parts};

cm_err ob_chunks_remote_new(nd_client *cl, const nd_peer *peer, ob_chunks **out)
{
    *out = NULL;
    if (!nd_node_id_valid(peer->id) || !peer->host || strlen(peer->host) >= PL_ADDR_MAX ||
        peer->port <= 0 || peer->port > 65535)
        return CM_ERR_INVAL;
    rm_backend *b = calloc(1, sizeof(*b));
    if (!b)
        return CM_ERR_NOMEM;
    b->base.ops = &rm_ops;
    b->cl = cl;
    snprintf(b->id, sizeof(b->id), "%s", peer->id);
    snprintf(b->host, sizeof(b->host), "%s", peer->host);
    b->peer.id = b->id;
    b->peer.host = b->host;
    b->peer.port = peer->port;
    *out = &b->base;
    return CM_OK;
}

/* ---- resolver ---- */

struct ob_resolver {
    int nnodes;
    int self; /* index of this node, -1 when absent */
    ob_chunks *local;
    ob_chunks **remote; /* per node; NULL for self */
    int *ndrives;       /* per node: its drives' ids (pl_drive.id), as the topology lists them */
    uint32_t **drive_ids;
};

void ob_resolver_free(ob_resolver *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nnodes; i++) {
        ob_chunks_free(r->remote[i]);
        if (r->drive_ids)
            free(r->drive_ids[i]);
    }
    free(r->remote);
    free(r->ndrives);
    free(r->drive_ids);
    free(r);
}

cm_err ob_resolver_new(const pl_topology *t, const char *self, ob_chunks *local, nd_client *cl,
                       ob_resolver **out)
{
    *out = NULL;
    ob_resolver *r = calloc(1, sizeof(*r));
    if (!r || !(r->remote = calloc((size_t)(t->nnodes > 0 ? t->nnodes : 1), sizeof(*r->remote)))) {
        free(r);
        return CM_ERR_NOMEM;
    }
    size_t nn = (size_t)(t->nnodes > 0 ? t->nnodes : 1);
    r->nnodes = t->nnodes;
    r->local = local;
    r->self = pl_topology_find(t, self);
    r->ndrives = calloc(nn, sizeof(*r->ndrives));
    r->drive_ids = calloc(nn, sizeof(*r->drive_ids));
    if (!r->ndrives || !r->drive_ids) {
        ob_resolver_free(r);
        return CM_ERR_NOMEM;
    }
    for (int i = 0; i < t->nnodes; i++) {
        const pl_node *n = &t->nodes[i];
        r->drive_ids[i] = calloc((size_t)(n->ndrives > 0 ? n->ndrives : 1), sizeof(uint32_t));
        if (!r->drive_ids[i]) {
            ob_resolver_free(r);
            return CM_ERR_NOMEM;
        }
        for (int d = 0; d < n->ndrives; d++)
            r->drive_ids[i][d] = n->drives[d].id;
        r->ndrives[i] = n->ndrives;
        if (i == r->self)
            continue;
        char host[PL_ADDR_MAX];
        nd_peer p = {t->nodes[i].id, host, 0, 0};
        cm_err e = nd_addr_parse(t->nodes[i].addr, host, sizeof(host), &p.port);
        if (e == CM_OK)
            e = ob_chunks_remote_new(cl, &p, &r->remote[i]);
        if (e != CM_OK) {
            ob_resolver_free(r);
            return e;
        }
    }
    *out = r;
    return CM_OK;
}

ob_chunks *ob_resolve(ob_resolver *r, int node, int *is_local)
{
    if (is_local)
        *is_local = node == r->self && node >= 0;
    if (node < 0 || node >= r->nnodes)
        return NULL;
    return node == r->self ? r->local : r->remote[node];
}

ob_chunks *ob_resolve_cell(ob_resolver *r, const pl_cell *c, uint32_t *drive)
{
    if (c->node >= r->nnodes || c->drive >= r->ndrives[c->node])
        return NULL;
    *drive = r->drive_ids[c->node][c->drive];
    return ob_resolve(r, c->node, NULL);
}
