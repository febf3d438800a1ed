/*
 * co_layout.h - a node's view of the cluster layout and membership in etcd
 * (docs/coordination.md, "Layout and membership").
 *
 * The one piece of coord/ that knows placement/: it follows the layout document (co_doc on
 * co_key(cluster, "layout")), decodes every new version with pl_topology_decode and adopts it
 * only when it decodes, validates and does not go back in epoch; anything else is logged, counted
 * and ignored, so the node keeps the last good layout. With a node id it also registers the node
 * as a live member (co_keeper lease + co_member_register, registered again when the lease was
 * lost) and keeps the last member list it read. All of it is read from memory: the readers
 * (request handlers, status) never wait on etcd, and while etcd is unreachable they keep seeing
 * the last layout (also across a restart, through a cache file of the last adopted version).
 */
#ifndef CO_LAYOUT_H
#define CO_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "co.h"
#include "pl.h"

#define CO_LAYOUT_TTL 10 /* seconds: the member lease's default TTL */
#define CO_LAYOUT_MEMBERS 64
#define CO_LAYOUT_S3_MAX (PL_ADDR_MAX + 16) /* a registered S3 endpoint "http[s]://host:port" */

typedef struct {
    const co_config *etcd;
    const char *cluster;    /* cluster id ([A-Za-z0-9._-]+) */
    const char *node_id;    /* NULL: follow the layout only; else a node id [A-Za-z0-9._-]+ */
    const char *addr;       /* the address registered with the node id ("host:port") */
    const char *s3;         /* NULL, or the S3 endpoint ("http[s]://host:port"), registered */
    const char *cache_path; /* the last adopted layout, kept across restarts; NULL: none */
    int64_t ttl;            /* member lease TTL in seconds; 0: CO_LAYOUT_TTL */
    int refresh_ms;         /* registration check and member list period; 0: 1000 */
} co_layout_config;

typedef struct co_layout co_layout;

/*
 * Start following (and registering). Never waits for etcd: with etcd down it starts on the cached
 * layout, if any, and registers once etcd answers. CM_ERR_INVAL for a bad cluster or node id or
 * no endpoint, CM_ERR_NOMEM.
 */
cm_err co_layout_open(const co_layout_config *cfg, co_layout **out);
void co_layout_free(co_layout *l);

/*
 * Leave the member list now and stay out: the member thread revokes the lease (its key goes with
 * it, so peers' next member read no longer lists this node) and registers no more; the layout is
 * still followed. Waits for the revoke up to wait_ms. The first step of a graceful stop
 * (docs/upgrades.md). NULL is a no-op; thread-safe.
 */
void co_layout_leave(co_layout *l, int wait_ms);

/*
 * A deep copy of the adopted layout (free it with pl_topology_free) and the etcd revision it was
 * written at (*mod_rev may be NULL). CM_ERR_NOTFOUND while none was adopted. Thread-safe.
 */
cm_err co_layout_current(co_layout *l, pl_topology **out, int64_t *mod_rev);

/* What the status page shows; a snapshot taken under the lock. */
typedef struct {
    uint64_t epoch;    /* of the adopted layout; 0 when none */
    int64_t mod_rev;   /* etcd revision of the adopted layout; 0 when none */
    uint64_t adopted;  /* versions adopted since open */
    uint64_t rejected; /* versions ignored (undecodable, invalid, older epoch, deleted) */
    int connected;     /* the layout watch is connected */
    int registered;    /* this node's member key is in the last member list read */
    int in_layout;     /* this node's id is a node of the adopted layout */
    int nmembers;      /* live members in the last list read (at most CO_LAYOUT_MEMBERS named) */
    char members[CO_LAYOUT_MEMBERS][PL_NAME_MAX];
    int64_t members_read_ms; /* wall-clock time of the last member list read; 0: never */
    int64_t ttl_s;           /* the member lease TTL in seconds */
    /*
     * Every node seen in a member list since open (at most CO_LAYOUT_MEMBERS): its registered
     * address and S3 endpoint, whether it was in the last list, and when it was last listed
     * (wall-clock ms).
     */
    int nseen;
    struct {
        char id[PL_NAME_MAX];
        char addr[PL_ADDR_MAX];
        char s3[CO_LAYOUT_S3_MAX]; /* its registered S3 endpoint; "" when it gave none */
        int live;
        int64_t last_seen_ms;
        uint64_t epoch; /* the layout epoch it reported serving (co_layout_report); 0: none */
        int handoff;    /* ... and its handoff flag */
    } seen[CO_LAYOUT_MEMBERS];
} co_layout_status;

void co_layout_get_status(co_layout *l, co_layout_status *out);

/*
 * What the node reports in its member value for `cairn admin layout apply` to check: the layout
 * epoch its coordinator serves and whether its handoff from the previous one is on
 * ({"addr":...,"epoch":E,"handoff":1}). The member thread registers the value again (same
 * lease) within its refresh period once it changed. Thread-safe; NULL is a no-op.
 */
void co_layout_report(co_layout *l, uint64_t epoch, int handoff);

/* Wait until a layout with epoch >= epoch is adopted: CM_OK or CM_ERR_TIMEOUT. */
cm_err co_layout_wait(co_layout *l, uint64_t epoch, int timeout_ms);

#endif
