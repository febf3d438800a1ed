/*
 * pl.h - placement: which drives hold the cells of a body.
 *
 * Two layers. pl_choose is the single node's chooser (obj/ob_data.c): drives of one node,
 * numbered 0..ndrives-1, a rotation that starts at a hash of the blob id, offline drives skipped.
 * The cluster layer below it owns the topology (AZ > node > drive, weights, states, the layout
 * epoch), its versioned document (what etcd stores), placement of a body's cells over it with
 * weighted rendezvous hashing at each level, metadata partition replicas, and a simulator.
 * Every choice is a pure function of its arguments, so every node computes the same.
 * docs/placement.md has the design and the measurements.
 */
#ifndef PL_H
#define PL_H

#include <stddef.h>
#include <stdint.h>

#include "cm_err.h"

#define PL_NONE 0xFF /* "no drive" in a cell slot; also the largest drive count + 1 */

/*
 * Choose ncells distinct online drives for blob id: out[i] is the drive of cell i. Walks the drives
 * from start = hash(id) % ndrives upward (wrapping), taking each online one (online[d] != 0).
 * *nchosen receives how many were found; when that is fewer than ncells the remaining out[] slots
 * are PL_NONE and the result is CM_ERR_UNAVAILABLE (the caller may accept a shorter list).
 * CM_ERR_INVAL when ndrives is not in 1..254 or ncells not in 1..ndrives.
 */
cm_err pl_choose(const uint8_t id[16], int ndrives, const uint8_t *online, int ncells, uint8_t *out,
                 int *nchosen);

/* The starting drive of the rotation for id (exposed for tests and tools). */
int pl_start(const uint8_t id[16], int ndrives);

/* ---- cluster topology: AZ > node > drive ---- */

#define PL_NAME_MAX 64  /* node id and AZ name: 1..63 chars of [A-Za-z0-9._-] */
#define PL_ADDR_MAX 128 /* node address "host:port" */
#define PL_MAX_NODES 4096
#define PL_MAX_DRIVES 255 /* per node */
#define PL_MAX_CELLS 32   /* k + m */
#define PL_DOC_VERSION 1  /* the "version" of the encoded document */

/*
 * State of a node or drive in the layout (the admin's intent, not liveness):
 *   up        takes new cells;
 *   down      keeps its homes (so a short outage moves nothing) but is out of service: a writer
 *             sends its cells to a handoff drive (pl_map_new with PL_MAP_LIVE skips it);
 *   draining  takes no new cells; what it holds moves away in the background;
 *   removed   gone; kept in the document only so that its ids are not reused by mistake.
 * A drive's effective state is the worse of its own and its node's (removed > draining > down).
 */
typedef enum { PL_UP, PL_DOWN, PL_DRAINING, PL_REMOVED } pl_state;

typedef struct {
    uint32_t id;     /* unique within its node (the drive folder's number) */
    uint32_t weight; /* capacity weight, 1..PL_MAX_WEIGHT (e.g. GiB) */
    pl_state state;
} pl_drive;

#define PL_MAX_WEIGHT (1u << 31)

typedef struct {
    char id[PL_NAME_MAX]; /* unique in the cluster; placement hashes it, so it never changes */
    char addr[PL_ADDR_MAX];
    char az[PL_NAME_MAX];
    pl_state state;
    int ndrives;
    pl_drive *drives; /* owned by the topology */
} pl_node;

/*
 * The layout: every node with its AZ and drives, and the epoch (incremented by every applied
 * change). Fields are public for reading; build and change it with the functions below. Nodes keep
 * the order in which they were added; placement never depends on that order, only on ids.
 */
typedef struct {
    uint64_t epoch;
    int nnodes;
    pl_node *nodes; /* owned */
    int cap;
} pl_topology;

/* An empty topology at epoch; NULL on allocation failure. pl_topology_free(NULL) is a no-op. */
pl_topology *pl_topology_new(uint64_t epoch);
void pl_topology_free(pl_topology *t);

/* Deep copy. CM_ERR_NOMEM. */
cm_err pl_topology_clone(const pl_topology *t, pl_topology **out);

/*
 * Append a node (no drives yet) and return its index in *idx (may be NULL). Strings are copied.
 * CM_ERR_INVAL for a name/address that does not fit or is empty, CM_ERR_EXISTS when the id is
 * taken, CM_ERR_TOOBIG past PL_MAX_NODES, CM_ERR_NOMEM.
 */
cm_err pl_topology_add_node(pl_topology *t, const char *id, const char *addr, const char *az,
                            int *idx);

/* Append a drive to node index node. CM_ERR_EXISTS for a drive id the node has, CM_ERR_INVAL for
 * weight 0 or > PL_MAX_WEIGHT or a bad node index, CM_ERR_TOOBIG past PL_MAX_DRIVES. */
cm_err pl_topology_add_drive(pl_topology *t, int node, uint32_t id, uint32_t weight,
                             pl_state state);

/* Index of the node with this id, or -1. */
int pl_topology_find(const pl_topology *t, const char *node_id);

/*
 * Check everything decode and the add functions cannot see alone, plus what they can (a topology
 * built field by field): node ids unique and well formed, AZ names well formed, addresses
 * "host:port" with a port in 1..65535, drive ids unique per node, weights in 1..PL_MAX_WEIGHT,
 * states known, at least one node with a drive that is up. CM_ERR_INVAL with a sentence in err.
 */
cm_err pl_topology_validate(const pl_topology *t, char *err, size_t errcap);

/* Total weight of drives that take new cells (effective state up), and the number of such drives
 * and of distinct AZs holding them. Any out pointer may be NULL. */
void pl_topology_stats(const pl_topology *t, uint64_t *weight, int *ndrives, int *nazs);

/*
 * Builders. pl_topology_single: the embedded default, one node "local" in AZ "local" at
 * 127.0.0.1:9000 with ndrives drives 0..ndrives-1 of weight 1. pl_topology_uniform: nazs AZs
 * "az1".., nodes_per_az nodes each "n1".. (numbered across AZs, addresses 127.0.0.1:9101..),
 * drives_per_node drives of weight 100. Epoch 1. CM_ERR_INVAL, CM_ERR_NOMEM.
 */
cm_err pl_topology_single(int ndrives, pl_topology **out);
cm_err pl_topology_uniform(int nazs, int nodes_per_az, int drives_per_node, pl_topology **out);

/*
 * The layout as a self-describing JSON document (what etcd stores):
 *   {"version":1,"epoch":7,"azs":[{"name":"az1","nodes":[{"id":"n1","addr":"10.0.0.1:9100",
 *     "state":"up","drives":[{"id":0,"weight":100,"state":"up"},...]},...]},...]}
 * AZs appear in the order of their first node, nodes grouped under their AZ, drive order kept.
 * Node indices are kept too (layouts of bodies record them, so they must not change between
 * epochs): when the node order is not the grouped one, every node carries "slot":<its index> and
 * decode puts it back there; so a round trip is exact and a node added to any AZ, or removed (its
 * entry stays), renumbers no other node.
 * encode validates first (CM_ERR_INVAL; CM_ERR_RANGE for an epoch above INT64_MAX) and returns in
 * *out a malloc'd, NUL-terminated buffer of *len bytes (the NUL not counted) that the caller frees.
 * decode parses, refuses a newer version (CM_ERR_UNSUPPORTED) and validates; any malformed input is
 * CM_ERR_INVAL; decode's failures put a sentence in err.
 */
cm_err pl_topology_encode(const pl_topology *t, char **out, size_t *len);
cm_err pl_topology_decode(const void *buf, size_t len, pl_topology **out, char *err, size_t errcap);

/* State names "up", "down", "draining", "removed"; parse returns CM_ERR_INVAL for others. */
const char *pl_state_name(pl_state s);
cm_err pl_state_parse(const char *s, pl_state *out);

/*
 * The erasure profile this layout should use for new bodies: 8+4 with at least 12 drives taking
 * cells spread over at least 3 AZs (same 1.5x overhead, an AZ still holds at most 4 cells),
 * otherwise 4+2 with at least 6, and below that what fits on distinct drives: 2+2 on 4 or 5,
 * 2+1 on 3, 1+1 on 2, 1+0 on one.
 */
void pl_default_profile(const pl_topology *t, int *k, int *m);

/* ---- placement over a topology ---- */

/*
 * A compiled, read-only view of a topology for placement: which drives are eligible, their
 * weights and hashes, grouped AZ > node > drive. Build one per layout epoch and share it between
 * threads (nothing in it changes after pl_map_new). It does not keep a pointer to t.
 *   PL_MAP_HOMES  eligible = effective state up or down: the home drives of every body;
 *   PL_MAP_LIVE   eligible = up only: where a writer can put cells now (handoff when a home is
 *                 down);
 *   PL_MAP_RING   rank with a ring of virtual nodes (128 per mean weight) instead of weighted
 *                 rendezvous hashing; kept to measure the two (docs/placement.md).
 */
#define PL_MAP_HOMES 0u
#define PL_MAP_LIVE 1u
#define PL_MAP_RING 2u

typedef struct pl_map pl_map;

cm_err pl_map_new(const pl_topology *t, unsigned flags, pl_map **out);
void pl_map_free(pl_map *m);

/* A cell's drive: indices into the topology the map was built from (nodes[node].drives[drive]). */
typedef struct {
    uint16_t node;
    uint16_t drive;
} pl_cell;

/*
 * The drives of the k+m cells of body id: out[i] holds cell i. A pure function of (topology,
 * flags, id): every node computes the same. Distinct drives, spread AZ > node > drive: with A AZs
 * an AZ gets at most m cells when A >= ceil((k+m)/m) (losing an AZ loses at most m cells), else at
 * most ceil((k+m)/A); inside an AZ the cells go to as many nodes as possible. Among the choices
 * that satisfy this, heavier AZs, nodes and drives are chosen in proportion to weight (weighted
 * rendezvous hashing at each level). CM_ERR_INVAL for k < 1, m < 0 or k+m > PL_MAX_CELLS;
 * CM_ERR_UNAVAILABLE when there are fewer eligible drives than cells.
 */
cm_err pl_place(const pl_map *m, const uint8_t id[16], int k, int nparity, pl_cell *out);

/*
 * Where a writer puts cells whose home cannot take them now: cells holds the homes (pl_place on a
 * PL_MAP_HOMES map m) and receives, for each cell whose drive is down in the layout or on a node
 * with node_dead[node] != 0 (the caller's liveness view, indexed like the topology's nodes; may be
 * NULL), a handoff drive: another usable drive of the same node, else of the same AZ (a node
 * without cells of this body first), else of an AZ still under the cap, else any. The other cells
 * are unchanged, so the manifest records only the moved ones. Deterministic per (map, id, cell,
 * node_dead). *nreplaced (may be NULL) counts replaced cells. CM_ERR_UNAVAILABLE when some cell
 * found no usable drive (it keeps its home); CM_ERR_INVAL for a cell not in the map or a bad
 * profile.
 */
cm_err pl_handoff(const pl_map *m, const uint8_t id[16], int k, int nparity, pl_cell *cells,
                  const uint8_t *node_dead, int *nreplaced);

/* The at most m cells per AZ bound pl_place keeps for this profile (n = k + m cells) on this map.
 */
int pl_az_cap(const pl_map *m, int k, int nparity);

/*
 * The nodes holding metadata partition part (see pl_partition_id): out[i] is a node index, i = 0
 * the preferred one. Distinct AZs while there are AZs left, then distinct nodes; weighted by the
 * node's total eligible drive weight. CM_ERR_UNAVAILABLE when fewer than n nodes are eligible;
 * CM_ERR_INVAL for n outside 1..PL_MAX_CELLS.
 */
cm_err pl_partition(const pl_map *m, uint64_t part, int n, int *out);

/* Partition id of shard of bucket: a 64-bit hash of both. */
uint64_t pl_partition_id(const char *bucket, uint32_t shard);

/* ---- simulation (cairn admin layout simulate, tests) ---- */

typedef struct {
    uint64_t objects;     /* placed */
    uint64_t cells;       /* objects * (k + m) */
    uint64_t *load;       /* cells per drive of the "after" topology (flat: node by node) */
    int nload;            /* entries of load */
    uint64_t moved;       /* cells whose drive left the object's drive set (0 without before) */
    uint64_t moved_index; /* cells i whose drive differs from before's cell i (index-exact) */
    uint64_t az_over;     /* objects with more than pl_az_cap cells in one AZ (must be 0) */
    uint64_t not_placed;  /* objects pl_place could not place */
    double ns_per_place;  /* mean time of one pl_place on the after map */
} pl_sim_result;

/* Progress callback: done of total objects; called every 65536 objects. */
typedef void (*pl_sim_progress)(void *arg, uint64_t done, uint64_t total);

/*
 * Place objects pseudo-random ids (from seed) on after, and count cells per drive. When before is
 * not NULL, also place each id on before and count the cells whose drive (by node id and drive id)
 * is not in the after drive set of that object: what a rebalance moves (a cell whose drive stays
 * in the set does not move; the record is rewritten to name it). flags as pl_map_new.
 * Fills *r (r->load is malloc'd: pl_sim_result_release). CM_ERR_NOMEM, CM_ERR_INVAL.
 */
cm_err pl_simulate(const pl_topology *before, const pl_topology *after, unsigned flags, int k,
                   int nparity, uint64_t objects, uint64_t seed, pl_sim_progress progress,
                   void *arg, pl_sim_result *r);
void pl_sim_result_release(pl_sim_result *r);

/*
 * The least share of cells any placement must move to follow a change from before to after: the
 * total variation distance between the two weight distributions over drives taking cells
 * (matched by node id and drive id). Adding weight A to a total T gives A / (T + A); removing or
 * draining weight R of T gives R / T.
 */
double pl_ideal_moved(const pl_topology *before, const pl_topology *after);

/* ---- durability estimate (pl_durability.c; docs/placement.md, "Durability estimate") ---- */

typedef struct {
    int k, m;           /* profile */
    int drives;         /* drives taking cells */
    int azs;            /* AZs holding them */
    int az_drives;      /* drives in the largest AZ */
    int az_cap;         /* most cells of one body in one AZ (pl_az_cap) */
    double afr;         /* annual failure rate per drive, in (0, 1); default 0.02 */
    double drive_bytes; /* data per drive */
    double repair_mbps; /* aggregate repair speed of the cluster, MB/s (1e6 bytes) */
    double az_outage_h; /* length of an AZ outage for the AZ view; default 24 */
} pl_dur_input;

typedef struct {
    double repair_h;      /* time to rebuild one lost drive: drive_bytes / repair speed */
    double mttdl_years;   /* mean time to data loss */
    double p_loss_year;   /* probability of losing some data in a year */
    double nines;         /* -log10(p_loss_year) */
    int az_tolerance;     /* drive failures tolerated while the largest AZ is down (< 0: none) */
    double p_az_exposure; /* probability of more failures than that during one outage */
    double az_nines;      /* -log10(p_az_exposure) */
} pl_dur_result;

/* afr 0.02, az_outage_h 24, the rest 0. */
void pl_dur_defaults(pl_dur_input *in);
/* Fill k, m, drives, azs, az_drives, az_cap from a topology (drives up); CM_ERR_INVAL when no
 * drive takes cells. */
cm_err pl_dur_from_topology(const pl_topology *t, int k, int m, pl_dur_input *in);
/*
 * The durability a repair speed implies: a Markov chain on failed drives (independent
 * exponential failures, declustered exponential repair of a whole drive at the aggregate speed,
 * loss at m+1 concurrent failures) and the AZ-outage exposure. CM_ERR_INVAL for a bad input.
 */
cm_err pl_durability(const pl_dur_input *in, pl_dur_result *out);

#endif
