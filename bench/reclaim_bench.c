/*
 * bench/reclaim_bench.c - how deleted space comes back (docs/storage.md section 6b): N blobs of
 * 256 KiB (one gateway cell each) are appended and synced, every other one is deleted, then the
 * space is given back either by punching holes (bs_punch_dead) or, with punching off, by
 * compaction (bs_compact_step); prints the bytes the segment files occupy (st_blocks) before and
 * after, the time taken and the bytes compaction copied. Not part of the test suite. Build it as
 * bench/blobstore_bench.sh builds its program (same flags and libraries), then for each of
 * "punch 256", "compact 256" and "compact 8": rm -rf DIR; reclaim_bench DIR <how> <MiB> 400.
 *   reclaim_bench DIR punch|compact SEGMENT_MIB NBLOBS
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bs.h"
#include "cm_log.h"

#define CELL 262144u

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Bytes the segment files of dir occupy on disk. */
static unsigned long long occupied(const char *dir)
{
    unsigned long long total = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (strncmp(de->d_name, "seg-", 4) == 0 && stat(path, &st) == 0)
            total += (unsigned long long)st.st_blocks * 512;
    }
    if (d)
        closedir(d);
    return total;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: reclaim_bench DIR punch|compact SEGMENT_MIB NBLOBS\n");
        return 2;
    }
    const char *dir = argv[1];
    int punch = strcmp(argv[2], "punch") == 0;
    int n = atoi(argv[4]);
    cm_log_threshold = -1;
    bs_io io = bs_io_posix;
    if (!punch)
        io.punch = NULL;
    bs_options o = {.segment_max = strtoull(argv[3], NULL, 10) << 20,
                    .compact_rate = -1,
                    .io = &io,
                    .punch_wait_ms = -1};
    bs_store *bs = NULL;
    uint8_t *buf = malloc(CELL);
    bs_id *ids = calloc((size_t)n, sizeof(*ids));
    if (n < 2 || !buf || !ids || bs_open(dir, &o, &bs) != CM_OK)
        return 1;
    for (size_t i = 0; i < CELL; i++)
        buf[i] = (uint8_t)(i * 7 + 1);
    for (int i = 0; i < n; i++)
        if (bs_id_new(&ids[i]) != CM_OK || bs_append(bs, &ids[i], 0, buf, CELL) != CM_OK)
            return 1;
    if (bs_sync(bs) != CM_OK)
        return 1;
    unsigned long long before = occupied(dir);
    for (int i = 0; i < n; i += 2)
        bs_delete(bs, &ids[i]);
    double t = now();
    cm_err e;
    while ((e = punch ? bs_punch_dead(bs) : bs_compact_step(bs, 8u << 20)) == CM_AGAIN)
        ;
    t = now() - t;
    bs_stats st;
    bs_get_stats(bs, &st);
    printf("%s, %s MiB segments, %d blobs of 256 KiB, every other one deleted: %llu -> %llu bytes "
           "on disk in %.3f s (%s); compaction copied %llu bytes; %u segments\n",
           argv[2], argv[3], n, before, occupied(dir), t, cm_err_str(e),
           (unsigned long long)st.compact_moved, st.segments);
    bs_close(bs);
    free(buf);
    free(ids);
    return e == CM_OK ? 0 : 1;
}
