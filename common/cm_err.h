/*
 * cm_err.h - the one error enum of the project.
 *
 * Functions that can fail return cm_err and hand results back through out-parameters. The list is
 * an X-macro so names and strings cannot drift apart. CM_AGAIN means "not yet" in non-blocking
 * code and is not a failure.
 */
#ifndef CM_ERR_H
#define CM_ERR_H

#define CM_ERR_LIST(X)                                                                             \
    X(CM_OK, "ok")                                                                                 \
    X(CM_AGAIN, "not yet, try again")                                                              \
    X(CM_ERR_NOMEM, "out of memory")                                                               \
    X(CM_ERR_IO, "I/O error")                                                                      \
    X(CM_ERR_UNCERTAIN, "I/O error; the change may or may not have been stored")                   \
    X(CM_ERR_NOSPC, "no space left on device")                                                     \
    X(CM_ERR_CORRUPT, "data corruption detected")                                                  \
    X(CM_ERR_NOTFOUND, "not found")                                                                \
    X(CM_ERR_EXISTS, "already exists")                                                             \
    X(CM_ERR_INVAL, "invalid argument")                                                            \
    X(CM_ERR_TOOBIG, "too large")                                                                  \
    X(CM_ERR_RANGE, "out of range")                                                                \
    X(CM_ERR_AUTH, "authentication failed")                                                        \
    X(CM_ERR_DIGEST, "checksum mismatch")                                                          \
    X(CM_ERR_CONFLICT, "conflicting concurrent change")                                            \
    X(CM_ERR_PRECONDITION, "precondition failed")                                                  \
    X(CM_ERR_UNAVAILABLE, "not enough healthy drives or replicas")                                 \
    X(CM_ERR_CLOSED, "peer closed the connection")                                                 \
    X(CM_ERR_TIMEOUT, "timed out")                                                                 \
    X(CM_ERR_UNSUPPORTED, "not supported")                                                         \
    X(CM_ERR_INTERNAL, "internal error")                                                           \
    X(CM_ERR_LOCKED, "protected by object lock")                                                   \
    X(CM_ERR_STALE, "the caller's layout epoch is older than this node's")

typedef enum {
#define CM_ERR_ENUM(name, text) name,
    CM_ERR_LIST(CM_ERR_ENUM)
#undef CM_ERR_ENUM
        CM_ERR__COUNT
} cm_err;

/* Static string naming the error ("CM_ERR_IO") and a human description ("I/O error"). */
const char *cm_err_name(cm_err e);
const char *cm_err_str(cm_err e);

/* Map an errno value to the closest cm_err (ENOSPC -> CM_ERR_NOSPC, ENOENT -> CM_ERR_NOTFOUND...).
 */
cm_err cm_err_from_errno(int err);

#endif
