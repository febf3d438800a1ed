/*
 * faultio.c - the fault-injecting bs_io described in faultio.h.
 *
 * State: a list of files by path (never removed, so indices stay valid) and an fd table mapping
 * descriptors to them (directory descriptors remember their path instead). Every counted call
 * takes the mutex, bumps the counters, and checks in order: already crashed (EIO), crash point
 * (tear, EIO), injected failure, capacity; then does the real call and logs what a crash could
 * lose. fdatasync of a file snapshots its whole contents as the durable image (test files are
 * small); fdatasync of a directory records which of its files exist. An injected fdatasync
 * failure on a file drops its unsynced writes at once (the file is rewritten from its durable
 * image, the log cleared), so a later fdatasync that succeeds makes nothing of them durable:
 * Linux's behaviour, not the optimistic POSIX reading in which a retry would still write them.
 * fio_reboot rewrites every file from its image (and, in FIO_KEEP_SOME, replays a random subset
 * of the log). The writeback op (off unless fio_enable_writeback) is not counted; a failure
 * injected there surfaces at the file's next fdatasync (f_writeback says why).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faultio.h"

#define FIO_MAXFD 4096

typedef struct {
    int trunc; /* 1: ftruncate to off; 0: write len bytes of data at off */
    uint64_t off, len;
    uint8_t *data;
} fio_op;

typedef struct {
    char path[512];
    int durable_exists;
    uint8_t *durable;
    uint64_t dlen;
    fio_op *log;
    size_t nlog, caplog;
    int wb_err; /* a failed writeback's error, for the file's next fdatasync (fio_fail_writeback) */
} fio_file;

struct fio {
    bs_io io;
    uint64_t seed, rng;
    pthread_mutex_t mu;
    fio_file **files;
    size_t nfiles, capfiles;
    int fd_file[FIO_MAXFD]; /* file index + 1; 0 = not a tracked file */
    char *fd_dir[FIO_MAXFD];
    uint64_t ops, kind_ops[FIO_KINDS];
    uint64_t crash_at;
    int crashed;
    uint64_t fail_at[FIO_KINDS];
    int fail_err[FIO_KINDS], fail_sticky[FIO_KINDS];
    uint64_t capacity;
    uint64_t flip_read_at;
    char **synced_dirs; /* every directory path fdatasynced so far (fio_dir_synced) */
    size_t nsynced_dirs;
    uint64_t wb_calls, wb_fail_at; /* writeback calls so far; the one whose I/O fails (0: none) */
};

static uint64_t fio_rnd(fio *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return f->rng;
}

static int read_whole(const char *path, uint8_t **out, uint64_t *len)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    *out = NULL;
    *len = 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *out = malloc((size_t)st.st_size + 1);
    ssize_t n = pread(fd, *out, (size_t)st.st_size, 0);
    close(fd);
    *len = n > 0 ? (uint64_t)n : 0;
    return 0;
}

static fio_file *file_for_path(fio *f, const char *path)
{
    for (size_t i = 0; i < f->nfiles; i++)
        if (strcmp(f->files[i]->path, path) == 0)
            return f->files[i];
    if (f->nfiles == f->capfiles) {
        f->capfiles = f->capfiles ? f->capfiles * 2 : 16;
        f->files = realloc(f->files, f->capfiles * sizeof(*f->files));
    }
    fio_file *x = calloc(1, sizeof(*x));
    snprintf(x->path, sizeof(x->path), "%s", path);
    /* A file that exists before we first see it is durable as it is. */
    x->durable_exists = read_whole(path, &x->durable, &x->dlen) == 0;
    f->files[f->nfiles++] = x;
    return x;
}

static fio_file *file_for_fd(fio *f, int fd)
{
    return (fd >= 0 && fd < FIO_MAXFD && f->fd_file[fd]) ? f->files[f->fd_file[fd] - 1] : NULL;
}

static void log_op(fio_file *x, int trunc, uint64_t off, const void *data, uint64_t len)
{
    if (!x)
        return;
    if (x->nlog == x->caplog) {
        x->caplog = x->caplog ? x->caplog * 2 : 16;
        x->log = realloc(x->log, x->caplog * sizeof(*x->log));
    }
    fio_op *o = &x->log[x->nlog++];
    o->trunc = trunc;
    o->off = off;
    o->len = len;
    o->data = NULL;
    if (!trunc) {
        o->data = malloc(len ? len : 1);
        memcpy(o->data, data, len);
    }
}

static void clear_log(fio_file *x)
{
    for (size_t i = 0; i < x->nlog; i++)
        free(x->log[i].data);
    x->nlog = 0;
}

/* Common entry of a counted call; returns 0 to proceed, or -1 with errno set. Holds mu. */
static int enter(fio *f, fio_kind k)
{
    uint64_t n = ++f->ops, kn = ++f->kind_ops[k];
    if (f->crashed) {
        errno = EIO;
        return -1;
    }
    if (f->crash_at && n == f->crash_at) {
        f->crashed = 1;
        errno = EIO;
        return -2; /* the caller may tear a write first */
    }
    if (f->fail_at[k] && (kn == f->fail_at[k] || (f->fail_sticky[k] && kn > f->fail_at[k]))) {
        errno = f->fail_err[k];
        return -1;
    }
    return 0;
}

uint64_t fio_used(fio *f)
{
    uint64_t sum = 0;
    struct stat st;
    for (size_t i = 0; i < f->nfiles; i++)
        if (stat(f->files[i]->path, &st) == 0)
            sum += (uint64_t)st.st_size;
    return sum;
}

static int f_open(void *ctx, const char *path, int flags, mode_t mode)
{
    fio *f = ctx;
    pthread_mutex_lock(&f->mu);
    int r = enter(f, FIO_OPEN);
    if (r == 0) {
        fio_file *x = (flags & O_DIRECTORY) ? NULL : file_for_path(f, path);
        r = open(path, flags, mode);
        if (r >= 0 && r < FIO_MAXFD) {
            if (x) {
                for (size_t i = 0; i < f->nfiles; i++)
                    if (f->files[i] == x)
                        f->fd_file[r] = (int)i + 1;
            } else {
                f->fd_dir[r] = strdup(path);
            }
        }
    } else {
        r = -1;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

static ssize_t f_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    fio *f = ctx;
    pthread_mutex_lock(&f->mu);
    ssize_t r = enter(f, FIO_PREAD) == 0 ? pread(fd, buf, len, off) : -1;
    if (r > 0 && f->flip_read_at && f->kind_ops[FIO_PREAD] == f->flip_read_at) {
        uint64_t at = fio_rnd(f) % (uint64_t)r;
        ((uint8_t *)buf)[at] ^= (uint8_t)(1u << (fio_rnd(f) % 8));
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

static ssize_t f_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
    fio *f = ctx;
    pthread_mutex_lock(&f->mu);
    fio_file *x = file_for_fd(f, fd);
    ssize_t r = -1;
    int in = enter(f, FIO_PWRITE);
    if (in == -2 && len > 0) { /* torn: a prefix reaches the page cache, then the "power" dies */
        size_t part = (size_t)(fio_rnd(f) % len);
        if (part > 0 && pwrite(fd, buf, part, off) == (ssize_t)part)
            log_op(x, 0, (uint64_t)off, buf, part);
        errno = EIO;
    } else if (in == 0) {
        struct stat st;
        size_t n = len;
        if (f->capacity && fstat(fd, &st) == 0 && (uint64_t)off + len > (uint64_t)st.st_size) {
            uint64_t grow = (uint64_t)off + len - (uint64_t)st.st_size, used = fio_used(f);
            uint64_t room = used < f->capacity ? f->capacity - used : 0;
            if (grow > room)
                n = grow - room >= len ? 0 : len - (size_t)(grow - room);
        }
        if (n == 0) {
            errno = ENOSPC;
        } else {
            r = pwrite(fd, buf, n, off);
            if (r > 0)
                log_op(x, 0, (uint64_t)off, buf, (uint64_t)r);
        }
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

static void commit_dir(fio *f, const char *dir)
{
    size_t dl = strlen(dir);
    for (size_t i = 0; i < f->nfiles; i++) {
        fio_file *x = f->files[i];
        if (strncmp(x->path, dir, dl) != 0 || x->path[dl] != '/' || strchr(x->path + dl + 1, '/'))
            continue;
        int exists = access(x->path, F_OK) == 0;
        if (exists && !x->durable_exists) {
            x->durable_exists = 1; /* its contents stay whatever was last fdatasynced */
        } else if (!exists && x->durable_exists) {
            x->durable_exists = 0;
            free(x->durable);
            x->durable = NULL;
            x->dlen = 0;
            clear_log(x);
        }
    }
}

/*
 * A failed fdatasync of a file, as Linux does it: the writeback error is reported once, the
 * pages it could not write are marked clean and later dropped, so the file reads back as its
 * last durable image and no later fdatasync will ever write those bytes.
 */
static void drop_unsynced(fio_file *x, int fd)
{
    if (!x)
        return;
    if (ftruncate(fd, (off_t)x->dlen) != 0 ||
        (x->dlen && pwrite(fd, x->durable, (size_t)x->dlen, 0) != (ssize_t)x->dlen))
        abort();
    clear_log(x);
}

static int fio_dir_synced_locked(fio *f, const char *path)
{
    for (size_t i = 0; i < f->nsynced_dirs; i++)
        if (strcmp(f->synced_dirs[i], path) == 0)
            return 1;
    return 0;
}

int fio_dir_synced(fio *f, const char *path)
{
    pthread_mutex_lock(&f->mu);
    int r = fio_dir_synced_locked(f, path);
    pthread_mutex_unlock(&f->mu);
    return r;
}

static int f_fdatasync(void *ctx, int fd)
{
    fio *f = ctx;
    pthread_mutex_lock(&f->mu);
    /* The durable image is modelled here, so the real (slow) fdatasync is not needed. */
    int in = enter(f, FIO_SYNC), r = in == 0 ? 0 : -1;
    fio_file *wx = fd >= 0 && fd < FIO_MAXFD && !f->fd_dir[fd] ? file_for_fd(f, fd) : NULL;
    if (in == 0 && wx && wx->wb_err) { /* an earlier writeback's failure, reported here once */
        errno = wx->wb_err;
        wx->wb_err = 0;
        in = r = -1;
    }
    if (in == -1 && !f->crashed && fd >= 0 && fd < FIO_MAXFD && !f->fd_dir[fd])
        drop_unsynced(file_for_fd(f, fd), fd);
    if (r == 0 && fd >= 0 && fd < FIO_MAXFD && f->fd_dir[fd]) {
        commit_dir(f, f->fd_dir[fd]);
        if (!fio_dir_synced_locked(f, f->fd_dir[fd])) {
            f->synced_dirs = realloc(f->synced_dirs, (f->nsynced_dirs + 1) * sizeof(char *));
            f->synced_dirs[f->nsynced_dirs++] = strdup(f->fd_dir[fd]);
        }
    } else if (r == 0) {
        fio_file *x = file_for_fd(f, fd);
        if (x) {
            free(x->durable);
            read_whole(x->path, &x->durable, &x->dlen);
            clear_log(x);
        }
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

/*
 * sync_file_range(SYNC_FILE_RANGE_WRITE) as Linux does it: the call only starts the writeback and
 * returns 0; an I/O error of that writeback is recorded on the file, its pages are marked clean
 * (their bytes will never be written), and the next fdatasync reports the error (once: Linux
 * keeps it per open file description; here per file, the blobstore opening each file once). A
 * call with WRITE alone does not consume the error (only the WAIT flags would). So a failed
 * writeback is modelled as the next fdatasync of the file failing, with its unsynced writes
 * dropped as for any failed fdatasync. A writeback that succeeds changes nothing here: which
 * unsynced writes a crash keeps is already any subset (FIO_KEEP_SOME). Not a counted call, so
 * enabling it moves no crash or failure point of a test.
 */
static int f_writeback(void *ctx, int fd, off_t off, off_t len)
{
    fio *f = ctx;
    (void)off;
    (void)len;
    pthread_mutex_lock(&f->mu);
    int r = 0;
    if (f->crashed) {
        errno = EIO;
        r = -1;
    } else if (++f->wb_calls == f->wb_fail_at && fd >= 0 && fd < FIO_MAXFD && !f->fd_dir[fd]) {
        fio_file *x = file_for_fd(f, fd);
        if (x)
            x->wb_err = EIO;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

void fio_enable_writeback(fio *f)
{
    f->io.writeback = f_writeback;
}

void fio_fail_writeback(fio *f, uint64_t n)
{
    pthread_mutex_lock(&f->mu);
    f->wb_fail_at = n;
    pthread_mutex_unlock(&f->mu);
}

uint64_t fio_writeback_calls(fio *f)
{
    pthread_mutex_lock(&f->mu);
    uint64_t n = f->wb_calls;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static int f_ftruncate(void *ctx, int fd, off_t len)
{
    fio *f = ctx;
    pthread_mutex_lock(&f->mu);
    int r = enter(f, FIO_TRUNC) == 0 ? ftruncate(fd, len) : -1;
    if (r == 0)
        log_op(file_for_fd(f, fd), 1, (uint64_t)len, NULL, 0);
    pthread_mutex_unlock(&f->mu);
    return r;
}

static int f_close(void *ctx, int fd)
{
    fio *f = ctx;
    pthread_mutex_lock(&f->mu);
    if (fd >= 0 && fd < FIO_MAXFD) {
        f->fd_file[fd] = 0;
        free(f->fd_dir[fd]);
        f->fd_dir[fd] = NULL;
    }
    int r = close(fd); /* always really closes: a dead process's descriptors are gone too */
    pthread_mutex_unlock(&f->mu);
    return r;
}

static int f_unlink(void *ctx, const char *path)
{
    fio *f = ctx;
    pthread_mutex_lock(&f->mu);
    int r = enter(f, FIO_UNLINK) == 0 ? unlink(path) : -1;
    pthread_mutex_unlock(&f->mu);
    return r;
}

fio *fio_new(uint64_t seed)
{
    fio *f = calloc(1, sizeof(*f));
    /* No hole punching: its holes are not modelled. No writeback unless a test enables it
     * (fio_enable_writeback): a background thread's pushes would come at times of its own. No
     * page-cache drop: forgetting clean pages changes nothing the model can observe. */
    f->io = (bs_io){f_open,   f_pread, f_pwrite, f_fdatasync, f_ftruncate, f_close,
                    f_unlink, f,       NULL,     NULL,        NULL};
    f->seed = seed;
    f->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    pthread_mutex_init(&f->mu, NULL);
    return f;
}

void fio_free(fio *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nfiles; i++) {
        clear_log(f->files[i]);
        free(f->files[i]->log);
        free(f->files[i]->durable);
        free(f->files[i]);
    }
    for (int i = 0; i < FIO_MAXFD; i++)
        free(f->fd_dir[i]);
    for (size_t i = 0; i < f->nsynced_dirs; i++)
        free(f->synced_dirs[i]);
    free(f->synced_dirs);
    free(f->files);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

const bs_io *fio_io(fio *f)
{
    return &f->io;
}
uint64_t fio_seed(const fio *f)
{
    return f->seed;
}
uint64_t fio_ops(fio *f)
{
    return f->ops;
}
uint64_t fio_kind_ops(fio *f, fio_kind k)
{
    return f->kind_ops[k];
}

void fio_fail_nth(fio *f, fio_kind k, uint64_t n, int err, int sticky)
{
    pthread_mutex_lock(&f->mu);
    f->fail_at[k] = n;
    f->fail_err[k] = err;
    f->fail_sticky[k] = sticky;
    pthread_mutex_unlock(&f->mu);
}

void fio_clear_faults(fio *f)
{
    pthread_mutex_lock(&f->mu);
    memset(f->fail_at, 0, sizeof(f->fail_at));
    f->flip_read_at = 0;
    pthread_mutex_unlock(&f->mu);
}

void fio_set_capacity(fio *f, uint64_t bytes)
{
    f->capacity = bytes;
}
void fio_crash_at(fio *f, uint64_t n)
{
    f->crash_at = n;
}
int fio_crashed(fio *f)
{
    return f->crashed;
}
void fio_flip_on_read(fio *f, uint64_t n)
{
    f->flip_read_at = n;
}

/* Replay a random subset of the lost log onto the restored file (FIO_KEEP_SOME). */
static void replay_some(fio *f, fio_file *x, int fd)
{
    for (size_t i = 0; i < x->nlog; i++) {
        const fio_op *o = &x->log[i];
        if (fio_rnd(f) % 2)
            continue;
        if (o->trunc) {
            if (ftruncate(fd, (off_t)o->off) != 0)
                abort();
            continue;
        }
        uint64_t n = o->len;
        if (n > 1 && fio_rnd(f) % 4 == 0)
            n = 1 + fio_rnd(f) % (n - 1); /* torn */
        if (pwrite(fd, o->data, (size_t)n, (off_t)o->off) != (ssize_t)n)
            abort();
    }
}

void fio_reboot(fio *f, fio_crash_mode mode)
{
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nfiles; i++) {
        fio_file *x = f->files[i];
        if (!x->durable_exists) {
            unlink(x->path);
        } else {
            int fd = open(x->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 ||
                (x->dlen && pwrite(fd, x->durable, (size_t)x->dlen, 0) != (ssize_t)x->dlen))
                abort();
            if (mode == FIO_KEEP_SOME)
                replay_some(f, x, fd);
            close(fd);
            free(x->durable);
            read_whole(x->path, &x->durable, &x->dlen); /* what survived is the new durable */
        }
        clear_log(x);
        x->wb_err = 0; /* a restart has no writeback error pending */
    }
    f->crashed = 0;
    f->crash_at = 0;
    pthread_mutex_unlock(&f->mu);
}

int64_t fio_flip_at_rest(fio *f, const char *path, uint64_t lo, uint64_t hi)
{
    int fd = open(path, O_RDWR);
    uint8_t c = 0;
    if (fd < 0 || hi <= lo)
        return -1;
    uint64_t at = lo + fio_rnd(f) % (hi - lo);
    if (pread(fd, &c, 1, (off_t)at) != 1) {
        close(fd);
        return -1;
    }
    c ^= (uint8_t)(1u << (fio_rnd(f) % 8));
    int ok = pwrite(fd, &c, 1, (off_t)at) == 1;
    close(fd);
    return ok ? (int64_t)at : -1;
}
