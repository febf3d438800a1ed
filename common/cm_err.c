/*
 * cm_err.c - names and strings of the project-wide error enum (see cm_err.h).
 */
#include "cm_err.h"

#include <errno.h>

static const char *const names[] = {
#define CM_ERR_NAME(name, text) #name,
    CM_ERR_LIST(CM_ERR_NAME)
#undef CM_ERR_NAME
};

static const char *const texts[] = {
#define CM_ERR_TEXT(name, text) text,
    CM_ERR_LIST(CM_ERR_TEXT)
#undef CM_ERR_TEXT
};

const char *cm_err_name(cm_err e)
{
    if ((unsigned)e >= CM_ERR__COUNT)
        return "CM_ERR_UNKNOWN";
    return names[e];
}

const char *cm_err_str(cm_err e)
{
    if ((unsigned)e >= CM_ERR__COUNT)
        return "unknown error";
    return texts[e];
}

cm_err cm_err_from_errno(int err)
{
    switch (err) {
    case 0:
        return CM_OK;
    case ENOMEM:
        return CM_ERR_NOMEM;
    case ENOSPC:
    case EDQUOT:
        return CM_ERR_NOSPC;
    case ENOENT:
        return CM_ERR_NOTFOUND;
    case EEXIST:
        return CM_ERR_EXISTS;
    case EINVAL:
        return CM_ERR_INVAL;
    case EAGAIN:
        return CM_AGAIN;
    case ETIMEDOUT:
        return CM_ERR_TIMEOUT;
    case EFBIG:
        return CM_ERR_TOOBIG;
    default:
        return CM_ERR_IO;
    }
}
