/*
 * fuzz_layout.c - libFuzzer target for the layout document decoder (placement/pl_json.c).
 *
 * The document comes from etcd, written by any node's admin tool: a decoder bug would let one bad
 * write take down every node that reads it. Oracles: no crash or sanitizer report; a document that
 * decodes also validates, encodes, and decodes again to a topology that encodes to the same bytes;
 * and it can be compiled into a map on which a placement and a partition lookup succeed or report
 * too few drives, never anything else.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void place_some(const pl_topology *t)
{
    pl_map *m = NULL;
    if (pl_map_new(t, PL_MAP_HOMES, &m) != CM_OK)
        return;
    uint8_t id[16] = {1, 2, 3};
    pl_cell cells[PL_MAX_CELLS];
    int k, parity, nodes[3];
    pl_default_profile(t, &k, &parity);
    cm_err e = pl_place(m, id, k, parity, cells);
    if (e != CM_OK && e != CM_ERR_UNAVAILABLE)
        abort();
    e = pl_partition(m, pl_partition_id("b", 1), 3, nodes);
    if (e != CM_OK && e != CM_ERR_UNAVAILABLE)
        abort();
    pl_map_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pl_topology *t = NULL, *back = NULL;
    char err[256], *doc = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    if (pl_topology_decode(data, size, &t, err, sizeof(err)) != CM_OK)
        return 0;
    if (pl_topology_validate(t, err, sizeof(err)) != CM_OK)
        abort();
    cm_err e = pl_topology_encode(t, &doc, &len);
    if (e == CM_OK && pl_topology_decode(doc, len, &back, err, sizeof(err)) != CM_OK)
        abort();
    if (e == CM_OK && (pl_topology_encode(back, &again, &len2) != CM_OK || len2 != len ||
                       memcmp(doc, again, len) != 0))
        abort();
    if (e != CM_OK && e != CM_ERR_NOMEM)
        abort();
    place_some(t);
    free(doc);
    free(again);
    pl_topology_free(back);
    pl_topology_free(t);
    return 0;
}
