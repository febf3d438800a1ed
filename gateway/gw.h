/*
 * gw.h - the S3 gateway: turns HTTP requests from net/ into S3 operations over the metadata
 * store (meta/) and the erasure-coded data path (ob.h).
 *
 * One gw serves every event loop of the server; its state (stores, credentials, configuration)
 * is shared and thread-safe. Each request gets a gw_req (private) that lives from on_request to
 * on_done and owns everything the request allocated.
 */
#ifndef GW_H
#define GW_H

#include <stddef.h>
#include <stdint.h>

#include "cm_err.h"
#include "net.h"
#include "ob.h"

typedef struct gw gw;

typedef struct {
    const char *data_dir;   /* holds meta/ and drive0..drive(N-1)/ */
    const char *region;     /* default "us-east-1" */
    const char *domain;     /* virtual-hosted style: "<bucket>.<domain>"; default "localhost" */
    const char *access_key; /* the root credentials */
    const char *secret_key;
    int ndrives, k, m;        /* default 6 drives, 4 + 2 */
    uint32_t cell_size;       /* default 256 KiB */
    size_t inline_threshold;  /* bodies up to this size live in the metadata record; 64 KiB */
    uint64_t max_object_size; /* single PUT limit; 5 GiB */
    int workers;              /* threads for fsyncs and commits; default 64 */
    int sigv2_off;            /* refuse Signature Version 2 requests; default 0 (accepted) */
} gw_config;

/* Fill the defaults above (data_dir "./cairn-data", credentials NULL). */
void gw_config_defaults(gw_config *cfg);

/*
 * Open the stores under cfg->data_dir (creating them on first start). CM_ERR_INVAL for a bad
 * configuration, CM_ERR_UNAVAILABLE when too few drives can be opened, CM_ERR_IO otherwise (each
 * logged). cfg is copied.
 */
cm_err gw_new(const gw_config *cfg, gw **out);
void gw_free(gw *g); /* NULL is a no-op */
/*
 * Call once the event loops have exited (net_server_run returned) and before net_server_free:
 * waits for the worker jobs still running (a long copy, a stalled fsync) and frees the requests
 * they held, so no job returns to a loop that is gone. NULL is a no-op.
 */
void gw_quiesce(gw *g);

/* The net callbacks; pass the gw as their arg. */
const net_handler *gw_net_handler(void);

/*
 * Create a scrubber (ob_scrub_new) over g's object store and metadata, with g's inline threshold,
 * and attach it so the admin API (/admin/scrub, /admin/status, /metrics) reports and triggers
 * it. cfg NULL = defaults. Start it with ob_scrub_start.
 */
cm_err gw_scrub_new(gw *g, const ob_scrub_config *cfg, ob_scrub **out);
/* Detach s from g (NULL g allowed) and free it (ob_scrub_free). Call before gw_free. */
void gw_scrub_free(gw *g, ob_scrub *s);

/* /health/ready answers 200 only after this is set (and 503 again while shutting down). */
void gw_set_ready(gw *g, int ready);

/*
 * An extra member of GET /admin/status (e.g. the cluster view, cmd/server.c): fn writes
 * `"name":value` in JSON into out (at most cap bytes) and returns its length, 0 for nothing. It
 * runs on an event-loop thread, so it must not block. Set before serving.
 */
typedef size_t (*gw_status_fn)(void *arg, char *out, size_t cap);
void gw_set_status_extra(gw *g, gw_status_fn fn, void *arg);

/*
 * A cluster node: object records go to the replicated metadata (repl/rp.h) instead of the local
 * store (gw_meta.c). c is borrowed and must outlive the serving; set before serving.
 */
typedef struct rp rp;
void gw_set_repl(gw *g, rp *c);

#endif
