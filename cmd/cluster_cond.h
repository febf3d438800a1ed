/*
 * cmd/cluster_cond.h - conditional writes of a cluster node: partition leaders elected through
 * etcd, and a conditional write run by its partition's leader wherever it arrives
 * (docs/replication.md, "Conditional writes"). Used by cluster.c and server.c only.
 */
#ifndef CMD_CLUSTER_COND_H
#define CMD_CLUSTER_COND_H

#include <stdint.h>

#include "cm_err.h"
#include "nd.h"
#include "pl.h"
#include "rp.h"

struct event_base;

typedef struct cmd_cond cmd_cond;

typedef struct {
    const char *self;    /* this node's id */
    const char *etcd;    /* "URL,URL,..." */
    const char *cluster; /* the cluster id: leader keys are /cairn/<cluster>/leaders/<b>.<s> */
    int64_t lease_ttl_s; /* the leader lease; 0 = CMD_COND_TTL_S */
    int timeout_ms;      /* a forwarded write waits this long at most; 0 = CMD_COND_WAIT_MS */
    uint32_t nshards;    /* the coordinator's (rp_config.nshards) */
} cmd_cond_config;

#define CMD_COND_TTL_S 10      /* a dead leader's partitions answer 503 at most this long */
#define CMD_COND_WAIT_MS 9000  /* the leader's lock wait, read and write, and the wire */
#define CMD_COND_CACHE_MS 1000 /* a partition's leader is read from etcd again after this */

/* Nothing here talks to etcd: the lease is granted on the first conditional write. */
cm_err cmd_cond_new(const cmd_cond_config *cfg, cmd_cond **out);
/* Gives up the leaderships (revokes the lease): its partitions get new leaders at once. After the
 * coordinator is freed, before the transport's loop stops. NULL is a no-op. */
void cmd_cond_free(cmd_cond *cc);
/* What it runs writes with and forwards them over (borrowed; cl on base's loop). The two setters
 * accept a NULL cc (no-ops). */
void cmd_cond_set_coord(cmd_cond *cc, rp *coord, struct event_base *base, nd_client *cl);
/* The layout whose homes may lead (copied). */
void cmd_cond_set_topology(cmd_cond *cc, const pl_topology *t);

/* rp_config.cond_run with cc as cond_arg: run the write here when this node leads the
 * partition, else hand it to the leader. CM_ERR_UNAVAILABLE when no leader can be had. */
cm_err cmd_cond_run(void *arg, rp *c, const rp_part *p, const rp_cond_write *w);
/* nd_service_config.cond with cc as cond_arg: a write handed over by another node. */
cm_err cmd_cond_serve(void *arg, const nd_cond_req *r);

typedef struct {
    uint64_t led;        /* conditional writes this node ran as the leader */
    uint64_t forwarded;  /* handed to another node */
    uint64_t refused;    /* handed here while another node leads (CM_ERR_CONFLICT) */
    uint64_t no_leader;  /* answered CM_ERR_UNAVAILABLE: no leader to be had */
    uint64_t etcd_reads; /* leader lookups that went to etcd (not the cache) */
} cmd_cond_stats;
void cmd_cond_get_stats(cmd_cond *cc, cmd_cond_stats *out);

#endif
