/*
 * ldfault.c - an LD_PRELOAD shim that makes writes, syncs and reads of one file fail with EIO.
 *
 * Why: LMDB does its own I/O (open/pwrite/writev/fdatasync/fsync/msync straight from libc), so
 * the metadata store cannot be faulted through the blobstore's bs_io table. This shim wraps those
 * libc calls in the whole process instead. It is built by the test that uses it
 * (cc -shared -fPIC -o ldfault.so ldfault.c -ldl) and is not part of the cairn build.
 *
 * Which fds: those returned by open/open64/openat/openat64 for a path ending in LDFAULT_SUFFIX
 * (default "/meta/data.mdb"; LMDB opens that file twice, once O_DSYNC for the meta pages); close
 * forgets them. Which calls: LDFAULT_OP = pwrite | writev | pwritev | write | fdatasync | fsync |
 * msync | pread | any (default fdatasync); pread is the blocking read (preadv2, which an event
 * loop uses with RWF_NOWAIT for what the page cache holds, is left alone). msync takes an address,
 * not an fd: every msync counts (LMDB only calls it with MDB_WRITEMAP, which cairn does not use).
 * The matching calls on tracked fds are numbered from 1; calls LDFAULT_NTH .. LDFAULT_NTH +
 * LDFAULT_COUNT - 1 (default count 1) return -1 with errno EIO without doing anything; all others
 * pass through. Each injected failure writes one line "ldfault: EIO <op> #<n> fd <fd>" to stderr.
 *
 * Slow disk instead of a failing one: with LDFAULT_DELAY_MS set, the chosen calls sleep that long
 * and then run normally (no error), each writing "ldfault: delay <op> #<n> fd <fd>" to stderr
 * first; there LDFAULT_NTH 0 (the default) means every matching call, and with
 * LDFAULT_DELAY_FILE set only while the file it names exists (a test switches the slow disk on
 * and off). LDFAULT_OP may then be a comma-separated list, and "unlink" (by path) is one more op.
 * LDFAULT_PATH=<text> tracks every path containing <text> (a drive directory and the files under
 * it, e.g. "/drive3") instead of the suffix rule.
 *
 * Aiming (so a test does not depend on how many writes a server makes before the one it means):
 * LDFAULT_OFFSET_BELOW=<n> counts only positional writes at an offset below n (8192: LMDB's two
 * meta pages, so NTH numbers commits, not data pages); LDFAULT_ARM_FILE=<path> counts only
 * calls made while that file exists (the test creates it right before the request to fail).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define LDF_MAXFD 65536

static atomic_uchar tracked[LDF_MAXFD];
static atomic_ulong seen;

static void *real(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static int path_matches(const char *path)
{
    const char *has = getenv("LDFAULT_PATH");
    if (!path)
        return 0;
    if (has && *has)
        return strstr(path, has) != NULL;
    const char *suffix = env_or("LDFAULT_SUFFIX", "/meta/data.mdb");
    size_t lp = strlen(path), ls = strlen(suffix);
    return lp >= ls && strcmp(path + lp - ls, suffix) == 0;
}

static void track(int fd, const char *path)
{
    if (fd >= 0 && fd < LDF_MAXFD)
        atomic_store(&tracked[fd], path_matches(path));
}

/* Is op one of the comma-separated names in want ("any" matches all)? */
static int op_wanted(const char *want, const char *op)
{
    size_t lo = strlen(op);
    if (strcmp(want, "any") == 0)
        return 1;
    for (const char *p = want; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == lo && strncmp(p, op, n) == 0)
            return 1;
        p += n + (end != NULL);
    }
    return 0;
}

static void say(const char *what, const char *op, unsigned long n, int fd)
{
    char line[128];
    int len = snprintf(line, sizeof(line), "ldfault: %s %s #%lu fd %d\n", what, op, n, fd);
    if (len > 0) {
        ssize_t (*w)(int, const void *, size_t) = real("write");
        (void)!w(2, line, (size_t)len);
    }
}

/*
 * Should this call of op on fd (-1: no fd; -2: a path that matched) fail? In delay mode it sleeps
 * instead and returns 0.
 */
static int inject(const char *op, int fd, off_t off)
{
    if (fd >= 0 && (fd >= LDF_MAXFD || !atomic_load(&tracked[fd])))
        return 0;
    if (!op_wanted(env_or("LDFAULT_OP", "fdatasync"), op))
        return 0;
    const char *below = getenv("LDFAULT_OFFSET_BELOW"), *arm = getenv("LDFAULT_ARM_FILE");
    if (off >= 0 && below && *below && (unsigned long long)off >= strtoull(below, NULL, 10))
        return 0;
    if (arm && *arm && access(arm, F_OK) != 0)
        return 0;
    unsigned long n = atomic_fetch_add(&seen, 1) + 1;
    unsigned long delay_ms = strtoul(env_or("LDFAULT_DELAY_MS", "0"), NULL, 10);
    unsigned long nth = strtoul(env_or("LDFAULT_NTH", "0"), NULL, 10);
    unsigned long count = strtoul(env_or("LDFAULT_COUNT", "1"), NULL, 10);
    if (delay_ms > 0) {
        const char *delay_file = getenv("LDFAULT_DELAY_FILE");
        if (nth != 0 && (n < nth || n >= nth + count))
            return 0;
        if (delay_file && *delay_file && access(delay_file, F_OK) != 0)
            return 0;
        say("delay", op, n, fd);
        struct timespec ts = {(time_t)(delay_ms / 1000), (long)(delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        return 0;
    }
    if (nth == 0 || n < nth || n >= nth + count)
        return 0;
    say("EIO", op, n, fd);
    errno = EIO;
    return 1;
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int (*f)(const char *, int, ...) = real("open");
    int fd = f(path, flags, mode);
    track(fd, path);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int (*f)(const char *, int, ...) = real("open64");
    int fd = f(path, flags, mode);
    track(fd, path);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int (*f)(int, const char *, int, ...) = real("openat");
    int fd = f(dirfd, path, flags, mode);
    track(fd, path);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int (*f)(int, const char *, int, ...) = real("openat64");
    int fd = f(dirfd, path, flags, mode);
    track(fd, path);
    return fd;
}

int close(int fd)
{
    int (*f)(int) = real("close");
    if (fd >= 0 && fd < LDF_MAXFD)
        atomic_store(&tracked[fd], 0);
    return f(fd);
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
    ssize_t (*f)(int, void *, size_t, off_t) = real("pread");
    return inject("pread", fd, off) ? -1 : f(fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
    ssize_t (*f)(int, void *, size_t, off_t) = real("pread64");
    return inject("pread", fd, off) ? -1 : f(fd, buf, len, off);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    ssize_t (*f)(int, const void *, size_t, off_t) = real("pwrite");
    return inject("pwrite", fd, off) ? -1 : f(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
    ssize_t (*f)(int, const void *, size_t, off_t) = real("pwrite64");
    return inject("pwrite", fd, off) ? -1 : f(fd, buf, len, off);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    ssize_t (*f)(int, const void *, size_t) = real("write");
    return inject("write", fd, -1) ? -1 : f(fd, buf, len);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    ssize_t (*f)(int, const struct iovec *, int) = real("writev");
    return inject("writev", fd, -1) ? -1 : f(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    ssize_t (*f)(int, const struct iovec *, int, off_t) = real("pwritev");
    return inject("pwritev", fd, off) ? -1 : f(fd, iov, n, off);
}

int fdatasync(int fd)
{
    int (*f)(int) = real("fdatasync");
    return inject("fdatasync", fd, -1) ? -1 : f(fd);
}

int fsync(int fd)
{
    int (*f)(int) = real("fsync");
    return inject("fsync", fd, -1) ? -1 : f(fd);
}

int unlink(const char *path)
{
    int (*f)(const char *) = real("unlink");
    return path_matches(path) && inject("unlink", -2, -1) ? -1 : f(path);
}

int msync(void *addr, size_t len, int flags)
{
    int (*f)(void *, size_t, int) = real("msync");
    return inject("msync", -1, -1) ? -1 : f(addr, len, flags);
}
