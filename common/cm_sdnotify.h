/*
 * cm_sdnotify.h - tell systemd how the service is doing (the sd_notify protocol of a
 * Type=notify unit), without libsystemd.
 *
 * systemd passes the path of a unix datagram socket in $NOTIFY_SOCKET: a file path ("/run/...")
 * or a Linux abstract address ("@name": the '@' stands for the leading NUL byte). A state is one
 * datagram of newline-separated KEY=VALUE lines: READY=1 once the service serves, RELOADING=1
 * then READY=1 around a reload, STOPPING=1 when it begins to stop, WATCHDOG=1 as a keep-alive
 * when the unit sets WatchdogSec (systemd then sets $WATCHDOG_USEC, and $WATCHDOG_PID when it
 * names a process).
 *
 * cm_sdnotify_init reads the environment once (cmd/server.c, before any thread starts, since
 * getenv is not safe against a concurrent setenv); the struct is then read-only and
 * cm_sdnotify_send may be called from any thread. Without $NOTIFY_SOCKET (not started by
 * systemd, or another Type) sending is a no-op that succeeds.
 */
#ifndef CM_SDNOTIFY_H
#define CM_SDNOTIFY_H

#include <stdint.h>

#include "cm_err.h"

typedef struct {
    char addr[108];         /* sun_path as sent: a leading NUL for an abstract address */
    unsigned addr_len;      /* bytes of addr used; 0 = no socket, sending does nothing */
    uint64_t watchdog_usec; /* systemd's watchdog timeout; 0 = none asked of this process */
} cm_sdnotify;

/*
 * Fill n from $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID. CM_OK also when there is no
 * socket (n->addr_len 0); CM_ERR_INVAL when the variable is set but unusable (not starting
 * with '/' or '@', or longer than a socket address holds): n is then disabled too.
 */
cm_err cm_sdnotify_init(cm_sdnotify *n);

/* Send state (e.g. "READY=1\nSTATUS=serving") as one datagram; CM_ERR_IO when it fails. */
cm_err cm_sdnotify_send(const cm_sdnotify *n, const char *state);

#endif
