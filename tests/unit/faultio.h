/*
 * faultio.h - a fault-injecting bs_io for tests: wraps the POSIX calls on real files and keeps,
 * per file, its durable image (contents at the last fdatasync; existence as of the last fsync of
 * its directory) and a log of the writes and truncations made since.
 *
 * Faults, all seeded (fio_seed() returns the seed to print on failure):
 *   - fail the Nth call of one kind with an errno (once, or sticky until cleared); a failed
 *     fdatasync of a file drops that file's unsynced writes (it reads back as its last durable
 *     image, and a later successful fdatasync does not bring them back), as Linux does;
 *   - a capacity in bytes over all files it has seen: a write past it is short, then ENOSPC;
 *   - crash at the Nth counted call (every kind but close): a pwrite there is torn (a random
 *     prefix reaches the file) and that call and every later one fail with EIO, as if the
 *     process had died; fio_reboot() then turns the files into what a disk would hold after the
 *     power cut: the durable image, plus (FIO_KEEP_SOME) a random subset of the later writes,
 *     some of them torn;
 *   - flip one bit in the data returned by the Nth pread, or in a file at rest;
 *   - with the writeback op enabled, fail the I/O that the Nth writeback call starts: the call
 *     returns 0 and the file's next fdatasync fails with EIO and drops its unsynced writes.
 *
 * Not a model of a real page cache: a crash keeps whole logged writes or prefixes of them, and a
 * file not yet made durable by a directory fsync disappears. Test code only; #include the .c.
 */
#ifndef FAULTIO_H
#define FAULTIO_H

#include <stdint.h>

#include "bs.h"

typedef enum {
    FIO_OPEN,
    FIO_PREAD,
    FIO_PWRITE,
    FIO_SYNC,
    FIO_TRUNC,
    FIO_UNLINK,
    FIO_KINDS
} fio_kind;
typedef enum { FIO_DROP_UNSYNCED, FIO_KEEP_SOME } fio_crash_mode;

typedef struct fio fio;

fio *fio_new(uint64_t seed);
void fio_free(fio *f);
const bs_io *fio_io(fio *f);
uint64_t fio_seed(const fio *f);
/* Counted calls so far (all kinds but close), and per kind. */
uint64_t fio_ops(fio *f);
uint64_t fio_kind_ops(fio *f, fio_kind k);

/* Fail call number n (1-based, counted over all calls of kind k so far) with err. sticky keeps
 * failing every later call of that kind until fio_clear_faults. */
void fio_fail_nth(fio *f, fio_kind k, uint64_t n, int err, int sticky);
void fio_clear_faults(fio *f);
/* Total bytes all seen files may hold; 0 = unlimited. */
void fio_set_capacity(fio *f, uint64_t bytes);
uint64_t fio_used(fio *f);

/* Crash at counted call number n (absolute, see fio_ops). */
void fio_crash_at(fio *f, uint64_t n);
int fio_crashed(fio *f);
/* After every fd is closed: make the files what survives the crash, and run normally again. */
void fio_reboot(fio *f, fio_crash_mode mode);

/* Has the directory at path (as opened) been fdatasynced? */
int fio_dir_synced(fio *f, const char *path);

/* Give the io table a writeback op (sync_file_range's WRITE, off by default). Its calls are not
 * counted in fio_ops; fio_fail_writeback makes the I/O of call number n (1-based, of all writeback
 * calls so far) fail, as the file's next fdatasync then reports. */
void fio_enable_writeback(fio *f);
void fio_fail_writeback(fio *f, uint64_t n);
uint64_t fio_writeback_calls(fio *f);

/* Flip a random bit in the bytes returned by pread call number n (of all preads so far). */
void fio_flip_on_read(fio *f, uint64_t n);
/* Flip a random bit of a random byte in [lo, hi) of the file at path; returns the offset. */
int64_t fio_flip_at_rest(fio *f, const char *path, uint64_t lo, uint64_t hi);

#endif
