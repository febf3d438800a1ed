/*
 * cm_alog.c - the access log's buffer and drain thread (cm_alog.h).
 *
 * Two buffers of cap bytes: writers append to `fill` under mu; the drain thread swaps it with its
 * empty `spare` under mu, then writes the spare to the file with mu released, so a writer waits
 * at most for a memcpy and a swap, never for the disk. The thread drains every CM_ALOG_PERIOD_MS,
 * or at once when the buffer is half full (or on a flush, a reopen, the close); idle, it sleeps
 * until a line comes. A writer signals only for the first line after an idle spell or at half
 * full, so under load a line costs no system call on the request's loop. A reopen opens the new
 * file on the caller's thread (so its failure can be reported) and leaves the descriptor in
 * next_fd; the drain thread adopts it, closing the old one, before its next write - only that
 * thread ever writes or closes the descriptor it uses.
 */
#include "cm_alog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CM_ALOG_PERIOD_MS 50

struct cm_alog {
    char *target;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* drain thread: lines, a new file, or stop */
    pthread_cond_t idle; /* cm_alog_flush: a drain round ended */
    char *fill, *spare;
    size_t len, cap;
    uint64_t queued, done; /* lines queued; lines the drain thread finished with */
    uint64_t written, dropped;
    int fd, next_fd, own_fd; /* own_fd: fd is a file of ours (not stdout/stderr) */
    int stop, hurry;         /* hurry: a flush waits, drain now */
    pthread_t thread;
};

static int open_target(const char *target, int *own)
{
    *own = 0;
    if (strcmp(target, "stdout") == 0)
        return STDOUT_FILENO;
    if (strcmp(target, "stderr") == 0)
        return STDERR_FILENO;
    *own = 1;
    return open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* Write all of buf; 0, or -1 when the file refused it (the lines are counted as dropped). */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w, len -= (size_t)w;
    }
    return 0;
}

static size_t count_lines(const char *buf, size_t len)
{
    size_t n = 0;
    for (const char *p = buf; (p = memchr(p, '\n', len - (size_t)(p - buf))) != NULL; p++)
        n++;
    return n;
}

static void *drain(void *arg)
{
    cm_alog *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        if (!l->stop && !l->hurry && l->next_fd < 0 && l->len < l->cap / 2) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_nsec += CM_ALOG_PERIOD_MS * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&l->wake, &l->mu, &until);
        }
        while (!l->len && l->next_fd < 0 && !l->stop && !l->hurry)
            pthread_cond_wait(&l->wake, &l->mu);
        l->hurry = 0;
        if (l->next_fd >= 0) {
            if (l->own_fd)
                close(l->fd);
            l->fd = l->next_fd, l->next_fd = -1;
            l->own_fd = l->fd != STDOUT_FILENO && l->fd != STDERR_FILENO;
        }
        if (!l->len && l->stop)
            break;
        char *buf = l->fill;
        size_t len = l->len;
        uint64_t upto = l->queued;
        l->fill = l->spare, l->spare = buf, l->len = 0;
        int fd = l->fd;
        pthread_mutex_unlock(&l->mu);
        int bad = len ? write_all(fd, buf, len) : 0;
        size_t lines = count_lines(buf, len);
        pthread_mutex_lock(&l->mu);
        if (bad)
            l->dropped += lines;
        else
            l->written += lines;
        l->done = upto;
        pthread_cond_broadcast(&l->idle);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

cm_err cm_alog_open(const char *target, size_t cap, cm_alog **out)
{
    cm_alog *l = calloc(1, sizeof(*l));
    if (!l)
        return CM_ERR_NOMEM;
    l->cap = cap ? cap : 1 << 20;
    l->fd = l->next_fd = -1;
    l->target = strdup(target);
    l->fill = malloc(l->cap);
    l->spare = malloc(l->cap);
    if (!l->target || !l->fill || !l->spare)
        goto nomem;
    if ((l->fd = open_target(target, &l->own_fd)) < 0) {
        int saved = errno;
        free(l->target), free(l->fill), free(l->spare), free(l);
        errno = saved;
        return CM_ERR_IO;
    }
    pthread_condattr_t ca;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&l->idle, NULL);
    if (pthread_create(&l->thread, NULL, drain, l) != 0) {
        l->thread = 0;
        cm_alog_close(l);
        return CM_ERR_NOMEM;
    }
    *out = l;
    return CM_OK;
nomem:
    free(l->target), free(l->fill), free(l->spare), free(l);
    return CM_ERR_NOMEM;
}

void cm_alog_close(cm_alog *l)
{
    if (!l)
        return;
    if (l->thread) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_signal(&l->wake);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    if (l->own_fd)
        close(l->fd);
    if (l->next_fd >= 0 && l->next_fd != STDOUT_FILENO && l->next_fd != STDERR_FILENO)
        close(l->next_fd);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->wake);
    pthread_cond_destroy(&l->idle);
    free(l->target), free(l->fill), free(l->spare), free(l);
}

int cm_alog_line(cm_alog *l, const char *line, size_t len)
{
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    if (len > l->cap - l->len) {
        l->dropped++;
        rc = -1;
    } else {
        memcpy(l->fill + l->len, line, len);
        /* the first line after an idle spell wakes the thread, which then collects lines for a
         * period; half full, it drains at once */
        if (l->len == 0 || (l->len < l->cap / 2 && l->len + len >= l->cap / 2))
            pthread_cond_signal(&l->wake);
        l->len += len;
        l->queued++;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int cm_alog_reopen(void *arg, char *why, size_t cap)
{
    cm_alog *l = arg;
    int own;
    int fd = open_target(l->target, &own);
    if (fd < 0) {
        snprintf(why, cap, "cannot open %s: %s", l->target, strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&l->mu);
    if (l->next_fd >= 0 && l->next_fd != STDOUT_FILENO && l->next_fd != STDERR_FILENO)
        close(l->next_fd); /* two reopens before the thread ran: the later one wins */
    l->next_fd = fd;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

void cm_alog_stats(cm_alog *l, uint64_t *written, uint64_t *dropped)
{
    pthread_mutex_lock(&l->mu);
    *written = l->written;
    *dropped = l->dropped;
    pthread_mutex_unlock(&l->mu);
}

void cm_alog_flush(cm_alog *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t want = l->queued;
    while (l->done < want || l->next_fd >= 0) {
        l->hurry = 1;
        pthread_cond_signal(&l->wake);
        pthread_cond_wait(&l->idle, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
}

/* ---- JSON ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

size_t cm_json_escape(const char *s, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < n;) {
        char esc[8];
        const char *piece = esc;
        size_t plen, step = 1;
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, plen = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\', esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't', plen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15], plen = 6;
        } else if (c < 0x80) {
            esc[0] = (char)c, plen = 1;
        } else if ((step = utf8_seq(u + i, n - i)) > 0) {
            piece = s + i, plen = step;
        } else {
            piece = "\\ufffd", plen = 6, step = 1;
        }
        if (o + plen >= cap)
            break;
        memcpy(out + o, piece, plen);
        o += plen;
        i += step;
    }
    out[o] = '\0';
    return o;
}
