/*
 * gw_err.c - lookups in the S3 error table (gw_err.h) and the one mapping from internal errors.
 */
#include "gw_err.h"

static const struct {
    const char *code;
    int status;
    const char *msg;
} table[] = {
#define GW_S3ERR_ROW(name, code, status, msg) {code, status, msg},
    GW_S3ERR_LIST(GW_S3ERR_ROW)
#undef GW_S3ERR_ROW
};

const char *gw_s3err_code(gw_s3err e)
{
    return (unsigned)e < GW_S3ERR__COUNT ? table[e].code : "InternalError";
}

int gw_s3err_status(gw_s3err e)
{
    return (unsigned)e < GW_S3ERR__COUNT ? table[e].status : 500;
}

const char *gw_s3err_message(gw_s3err e)
{
    return (unsigned)e < GW_S3ERR__COUNT ? table[e].msg : "Internal error";
}

gw_s3err gw_s3err_from_cm(cm_err e)
{
    switch (e) {
    case CM_OK:
        return GW_OK;
    case CM_ERR_NOSPC:
        return GW_STORAGE_FULL;
    case CM_ERR_UNAVAILABLE:
    case CM_ERR_STALE: /* a node on an old layout (the handoff's fence): the client retries */
    case CM_AGAIN:
        return GW_SERVICE_UNAVAILABLE;
    case CM_ERR_PRECONDITION:
        return GW_PRECONDITION_FAILED;
    case CM_ERR_CONFLICT:
        return GW_CONDITIONAL_CONFLICT;
    case CM_ERR_DIGEST:
        return GW_BAD_DIGEST;
    case CM_ERR_AUTH:
        return GW_SIGNATURE_MISMATCH;
    case CM_ERR_LOCKED:
        return GW_ACCESS_DENIED; /* Object Lock: message GW_LOCKED_MSG */
    case CM_ERR_INVAL:
        return GW_INVALID_ARGUMENT;
    case CM_ERR_TOOBIG:
        return GW_ENTITY_TOO_LARGE;
    case CM_ERR_TIMEOUT:
        return GW_REQUEST_TIMEOUT;
    default:
        return GW_INTERNAL;
    }
}
