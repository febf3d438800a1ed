/*
 * cm_sdnotify.c - the sd_notify protocol over $NOTIFY_SOCKET (cm_sdnotify.h).
 *
 * One short-lived SOCK_DGRAM socket per message: states are rare (start, reload, stop, a
 * watchdog tick every few seconds), so keeping a descriptor open would buy nothing and would be
 * one more descriptor to hand safely between threads. MSG_NOSIGNAL: a vanished systemd must not
 * raise SIGPIPE. The address length counts only the bytes used, which is what makes an abstract
 * address (leading NUL) work: its name is not NUL-terminated.
 */
#include "cm_sdnotify.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == sizeof(((cm_sdnotify *)0)->addr),
               "cm_sdnotify.addr mirrors sun_path");

/* The watchdog is for this process when WATCHDOG_PID is unset or names it. */
static uint64_t watchdog_from_env(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");
    char *end = NULL;
    if (!usec || !*usec)
        return 0;
    unsigned long long v = strtoull(usec, &end, 10);
    if (*end || v == 0)
        return 0;
    if (pid && *pid) {
        long p = strtol(pid, &end, 10);
        if (*end || p != (long)getpid())
            return 0;
    }
    return (uint64_t)v;
}

cm_err cm_sdnotify_init(cm_sdnotify *n)
{
    const char *path = getenv("NOTIFY_SOCKET");
    memset(n, 0, sizeof(*n));
    if (!path || !*path)
        return CM_OK;
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(n->addr) || (path[0] == '@' && len < 2))
        return CM_ERR_INVAL;
    memcpy(n->addr, path, len);
    if (n->addr[0] == '@')
        n->addr[0] = '\0'; /* abstract: no terminating NUL, the length says where it ends */
    else
        len++; /* a path: include its NUL */
    n->addr_len = (unsigned)len;
    n->watchdog_usec = watchdog_from_env();
    return CM_OK;
}

cm_err cm_sdnotify_send(const cm_sdnotify *n, const char *state)
{
    struct sockaddr_un sa;
    if (!n || !n->addr_len)
        return CM_OK;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, n->addr, n->addr_len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return CM_ERR_IO;
    size_t len = strlen(state);
    ssize_t sent = sendto(fd, state, len, MSG_NOSIGNAL, (struct sockaddr *)&sa,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n->addr_len));
    close(fd);
    return sent == (ssize_t)len ? CM_OK : CM_ERR_IO;
}
