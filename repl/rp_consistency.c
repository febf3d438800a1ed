/*
 * rp_consistency.c - the names of the per-bucket consistency modes (rp.h): "strong" and
 * "available", exactly these lowercase words, as written in the cluster's bucket document
 * (coord/co_buckets.c), the x-cairn-consistency header and `cairn admin bucket consistency`.
 */
#include <string.h>

#include "rp.h"

const char *rp_consistency_name(rp_consistency c)
{
    return c == RP_AVAILABLE ? "available" : "strong";
}

cm_err rp_consistency_parse(const char *s, rp_consistency *out)
{
    if (s && strcmp(s, "strong") == 0)
        *out = RP_STRONG;
    else if (s && strcmp(s, "available") == 0)
        *out = RP_AVAILABLE;
    else
        return CM_ERR_INVAL;
    return CM_OK;
}
