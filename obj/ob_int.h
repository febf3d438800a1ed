/*
 * ob_int.h - private to the object layer (and its tests): the parts of one file that another
 * file of obj/ uses. Nothing above obj/ includes it.
 */
#ifndef OB_INT_H
#define OB_INT_H

#include "ob.h"

#define OB_DELETE_QUEUE 4096 /* queued deletes per drive (16 bytes each; ob_data.c) */

typedef struct ob_leases ob_leases;

/* ---- ob_lease.c ---- */

cm_err ob_leases_new(ob_leases **out);
void ob_leases_free(ob_leases *l); /* NULL is a no-op */

/* ---- ob_data.c ---- */

/* The store's lease table (created by ob_store_open). */
ob_leases *ob_store_leases(ob_store *st);
/* The blobstore of drive d (borrowed), or NULL when d is out of range, offline or failed. */
bs_store *ob_store_drive(ob_store *st, uint8_t d);
/* The blobstore holding cell i of lay: ob_store_drive of its drive when the cell is on this
 * store's node, NULL otherwise. */
bs_store *ob_cell_drive(const ob_store *st, const md_layout *lay, int i);
/* The store's node in the cluster layout (ob_store_options.node). */
uint16_t ob_store_node(const ob_store *st);
/* Cells of every stripe that must be durable before a body is acknowledged: k+1 (k when m = 0),
 * so one more loss still leaves k. */
int ob_min_cells(int k, int m);
/* Cell length of a last stripe holding rest (< k * cell_size) bytes: ceil(rest / k), rounded up
 * to 64 bytes. */
uint32_t ob_last_cell_len(uint64_t rest, int k);
/* The store's erasure profile: k data + m parity cells per stripe. */
void ob_store_geometry(const ob_store *st, int *k, int *m);

#endif
