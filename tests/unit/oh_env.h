/*
 * oh_env.h - the fixture of the heal tests (test_obj_heal.c: ob_heal on one body;
 * test_obj_heal_repair.c: the ob_repair pass over a node's records; test_obj_heal_overlap.c: two
 * heals of one body at once).
 *
 * Every test starts four nodes in three AZs in this process: n1 (az1) is "this node", its drives
 * reached by the local backend on the test thread's loop; n2 (az2), n3 (az3) and n4 (az1) serve
 * theirs over the node RPC (an nd_service on a net_server thread each, loopback). Two drives per
 * node. Bodies are 2+2 with 64 KiB cells, placed by pl_place on the homes map, so at most two
 * cells share an AZ. A node is "down" when the client's fault table refuses it and the liveness
 * view marks it dead. Calls run the loop until their completions came (a 10 s guard fails a hang).
 * One environment at a time (E); each test brings it up and down.
 */
#ifndef OH_ENV_H
#define OH_ENV_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "cu_nodes.h"
#include "ob_heal.h"
#include "ob_int.h"

#define NN 4
#define ND 2
enum { K = 2, M = 2, CELL = 64 * 1024 };
enum { LEN = 2 * K * CELL + 5000 }; /* two full stripes and a short one */
enum { LEN2 = K * CELL + 3000 };    /* two stripes: the bodies of the repair tests */

typedef struct {
    bs_store *bs[ND];
    nd_drive drives[ND];
    char dirs[ND][300];
    cu_rpc rpc;
} tnode;

typedef struct {
    tnode node[NN];
    struct event_base *base;
    nd_faults *faults;
    nd_client *cl;
    ob_chunks *local;
    pl_topology *topo;
    pl_map *homes;
    ob_resolver *res;
    uint8_t dead[NN];
    int pending, hung;
} heal_env;

/* What the last put, heal or drop handed back. */
typedef struct {
    cm_err err;
    md_layout lay;
    ob_heal_result heal;
    int failed;
    struct evbuffer *got;
} heal_results;

extern heal_env E;
extern heal_results R;
extern const char *ids[NN], *azs[NN];

void env_up(void);
void env_down(void);
/* A node down: refused by the client and dead in the liveness view (or back up). */
void node_down(int i, int down);
/* Run the loop until E.pending is 0 (or the guard); rc is what the call returned. */
void await(cm_err rc);

/* Chunk calls, one at a time, at cell c (through its node's backend). */
ob_chunks *at(pl_cell c, uint32_t *drive);
cm_err chunk_stat(pl_cell c, const uint8_t blob[16], uint64_t *size);
cm_err chunk_delete(pl_cell c, const uint8_t blob[16]);
/* The chunk at c made anew as p[0..len) (synced). */
cm_err chunk_put(pl_cell c, const uint8_t blob[16], const uint8_t *p, uint64_t len);
/* 1 when the whole chunk at c is want[0..len). */
int chunk_is(pl_cell c, const uint8_t blob[16], const uint8_t *want, uint64_t len);

/* n pseudo-random bytes from seed. */
void fill(uint8_t *p, size_t n, uint64_t seed);
/* Write body as id over its homes; returns its layout (cells refused at write read 0xFF). */
md_layout put_id(const uint8_t *body, size_t len, uint32_t cell_size, const bs_id *id);
/* Write body under a fresh id with cell_size cells; every cell must land. */
md_layout put_cells(const uint8_t *body, size_t len, uint32_t cell_size);
md_layout put(const uint8_t *body, size_t len);
/* Cell i of body as the codec makes it (every stripe's cell i back to back); caller frees. */
uint8_t *cell_bytes(const uint8_t *body, size_t len, int i, uint64_t *total);
int same_cell(pl_cell a, pl_cell b);
pl_cell cell_of(const md_layout *l, int i);
/* Every cell of l holds exactly its bytes. */
void check_all_cells(const uint8_t *body, size_t len, const md_layout *l);
/* The whole body read through ob_get_range (8 MiB ranges) equals body. */
int reads_back(const md_layout *l, const uint8_t *body, size_t len);

/* ob_heal's and ob_heal_drop's completions (into R, E.pending down by one). */
void heal_cb(void *arg, cm_err err, const ob_heal_result *res);
void drop_cb(void *arg, int failed);
/* ob_heal of l over E's topology, homes and liveness; R.heal has the result. */
cm_err heal(const md_layout *l, const ob_pacer *p, unsigned flags);
/* The first cell of l on node (or -1). */
int cell_on(const md_layout *l, int node);
/* A remote node holding a cell of l. */
int remote_holder(const md_layout *l);
/* Cells of l in az. */
int64_t az_cells(const md_layout *l, const char *az);

/*
 * A flaky local backend (flaky_ops over inner): its stats and appends end flaky_err
 * (CM_ERR_TIMEOUT as a slow node's would, CM_ERR_AUTH as a node refusing the call; on the loop),
 * everything else goes through to inner. Its other ops may be borrowed by other wrappers.
 */
typedef struct {
    ob_chunks base;
    ob_chunks *inner;
} flaky_chunks;

extern cm_err flaky_err;
extern const ob_chunk_ops flaky_ops;
cm_err flaky_seal(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t len, ob_chunk_done done,
                  void *arg);
cm_err flaky_read(ob_chunks *c, uint32_t drive, const bs_id *id, uint64_t off, uint64_t len,
                  ob_chunk_done done, void *arg);
cm_err flaky_del(ob_chunks *c, uint32_t drive, const bs_id *id, ob_chunk_done done, void *arg);
cm_err flaky_list(ob_chunks *c, uint32_t drive, const bs_id *after, size_t max, ob_chunk_done done,
                  void *arg);
void flaky_free(ob_chunks *c);

/* A pacer counting its calls (paced) and bytes (paced_bytes); it stops the heal at the
 * stop_after'th call (0: never). */
extern int paced, stop_after;
extern uint64_t paced_bytes;
int count_pace(void *arg, uint64_t n);

/* The key of record j (with a newline: keys may hold any byte). */
void obj_key(int j, char *key, size_t cap);
/* The record of obj_key(0) with one part of LEN2 bytes at lay (key and part are the caller's). */
md_object one_part(char *key, size_t cap, md_part *part, const md_layout *lay);
/* A pass with rc over md, then part 0 of alpha/key as the record names it. */
md_layout pass_then_layout(const ob_repair_config *rc, md_store *md, const char *key);

#endif
