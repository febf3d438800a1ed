/*
 * fsck.c - `cairn fsck --data DIR [--repair] [--verbose]`: offline check of a stopped node's
 * drives.
 *
 * Every DIR/drive<N> directory is checked with bs_fsck (blobstore/bs_fsck.c: segment and record
 * headers, every data block's CRC32C, the index the records build), in drive-number order. Drives
 * larger than 64 MiB get a progress line on stderr. A table with one row per drive goes to stdout.
 * Exit status: 0 all clean, 1 problems found (after repair: problems that remain, such as blobs
 * with lost data, which the gateway rebuilds from parity), 2 usage or a drive that cannot be
 * checked - for instance one held by a running server (bs_fsck takes DIR/drive<N>/LOCK).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bs.h"
#include "cmd.h"
#include "cm_log.h"

#define FSCK_MAX_DRIVES 256
#define FSCK_PROGRESS_MIN (64ull << 20)

typedef struct {
    const char *name;
    double last; /* monotonic seconds of the last progress line */
    int shown;
} progress_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
    progress_state *p = arg;
    double t = now_s();
    if (total < FSCK_PROGRESS_MIN || (t - p->last < 0.5 && done < total))
        return;
    p->last = t;
    p->shown = 1;
    fprintf(stderr, "\rfsck %s: %5.1f%% (%llu of %llu MiB)", p->name,
            total ? 100.0 * (double)done / (double)total : 100.0, (unsigned long long)(done >> 20),
            (unsigned long long)(total >> 20));
}

static int cmp_drive(const void *a, const void *b)
{
    return atoi(*(const char *const *)a + 5) - atoi(*(const char *const *)b + 5);
}

/* Names "drive<digits>" under dir, sorted by number; returns the count or -1. */
static int list_drives(const char *dir, char **names, int cap)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < cap) {
        const char *nm = de->d_name;
        if (strncmp(nm, "drive", 5) != 0 || !nm[5] ||
            strspn(nm + 5, "0123456789") != strlen(nm + 5))
            continue;
        names[n++] = strdup(nm);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(*names), cmp_drive);
    return n;
}

static int problems(const bs_fsck_report *r)
{
    return r->bad_headers || r->bad_regions || r->bad_blocks || r->bad_live_blobs || r->overlaps ||
           r->torn_bytes;
}

static void print_head(void)
{
    printf("%-8s %5s %9s %6s %9s %12s %12s %4s %5s %6s %7s %7s %6s  %s\n", "drive", "segs",
           "records", "tombs", "blobs", "live bytes", "disk bytes", "hdr", "bad", "blocks",
           "damaged", "overlap", "torn", "status");
}

static void print_row(const char *name, const bs_fsck_report *r, int repair)
{
    const char *status = problems(r) ? "PROBLEMS" : "ok";
    if (repair && r->rewritten)
        status = problems(r) ? "repaired, data lost" : "repaired";
    printf("%-8s %5u %9llu %6llu %9llu %12llu %12llu %4llu %5llu %6llu %7llu %7llu %6llu  %s", name,
           r->segments, (unsigned long long)r->records, (unsigned long long)r->tombstones,
           (unsigned long long)r->live_blobs, (unsigned long long)r->live_bytes,
           (unsigned long long)r->bytes, (unsigned long long)r->bad_headers,
           (unsigned long long)r->bad_regions, (unsigned long long)r->bad_blocks,
           (unsigned long long)r->bad_live_blobs, (unsigned long long)r->overlaps,
           (unsigned long long)r->torn_bytes, status);
    if (r->rewritten)
        printf(" (%u segments rewritten)", r->rewritten);
    printf("\n");
}

static int usage(void)
{
    fprintf(
        stderr,
        "usage: cairn fsck --data DIR [--repair] [--verbose]\n"
        "  Checks every DIR/drive<N> of a stopped node: segment and record headers, every\n"
        "  data block checksum, and the index they build.\n"
        "  --repair   rewrite each damaged segment with only its valid records (torn tails\n"
        "             cut, bad headers replaced, records with a bad block dropped), then check\n"
        "             again. Blobs that lose data are reported as damaged.\n"
        "  --verbose  log every problem with its file:offset.\n"
        "  Exit status: 0 clean, 1 problems found (or left after --repair), 2 cannot check.\n");
    return 2;
}

static int check_drive(const char *data, const char *name, int repair, int *bad)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", data, name);
    progress_state ps = {name, 0, 0};
    bs_fsck_report r;
    cm_err e = bs_fsck(path, repair, on_progress, &ps, &r);
    if (ps.shown)
        fprintf(stderr, "\n");
    if (e == CM_ERR_CONFLICT) {
        fprintf(stderr, "cairn fsck: %s is in use (a server holds %s/LOCK); stop it first\n", path,
                path);
        return 2;
    }
    if (e != CM_OK) {
        fprintf(stderr, "cairn fsck: %s: %s\n", path, cm_err_str(e));
        return 2;
    }
    print_row(name, &r, repair);
    *bad |= problems(&r);
    return 0;
}

int cmd_fsck(int argc, char **argv)
{
    const char *data = NULL;
    int repair = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else if (strcmp(argv[i], "--repair") == 0)
            repair = 1;
        else if (strcmp(argv[i], "--verbose") == 0)
            verbose = 1;
        else
            return usage();
    }
    if (!data)
        return usage();
    cm_log_threshold = verbose ? CM_LOG_INFO : -1;
    char *names[FSCK_MAX_DRIVES];
    int n = list_drives(data, names, FSCK_MAX_DRIVES);
    if (n <= 0) {
        fprintf(stderr, "cairn fsck: no drive<N> directories in %s\n", data);
        return 2;
    }
    int bad = 0, rc = 0;
    print_head();
    for (int i = 0; i < n; i++) {
        int r = check_drive(data, names[i], repair, &bad);
        rc = r > rc ? r : rc;
        free(names[i]);
    }
    if (rc == 0 && bad)
        rc = 1;
    printf("%s\n", rc == 0 ? "fsck: clean" : rc == 1 ? "fsck: problems found" : "fsck: incomplete");
    return rc;
}
