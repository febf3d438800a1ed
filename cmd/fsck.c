/*
 * fsck.c - `cairn fsck --data DIR [--repair] [--grace SECONDS] [--verbose]`: offline check of a
 * stopped node's drives.
 *
 * Every DIR/drive<N> directory is checked with bs_fsck (blobstore/bs_fsck.c: segment and record
 * headers, every data block's CRC32C, the index the records build), in drive-number order. Drives
 * larger than 64 MiB get a progress line on stderr. A table with one row per drive goes to stdout.
 * Exit status: 0 all clean, 1 problems found (after repair: problems that remain, such as blobs
 * with lost data, which the gateway rebuilds from parity), 2 usage or a drive that cannot be
 * checked - for instance one held by a running server (bs_fsck takes DIR/drive<N>/LOCK).
 * First the format stamps (cm_format.h) are read, never written: the data directory's format is
 * printed; a stamp naming a newer format stops fsck with 2 before any drive is read; a corrupt
 * one is a problem found.
 *
 * Orphans: when DIR/meta holds a metadata store, every blob id that an object or part record
 * names (objects of every bucket, their older versions, parts of every unfinished multipart
 * upload) is collected into a
 * sorted array, and each drive's blobs are checked against it (bs_fsck_orphans): a blob no record
 * names whose segment was last written more than --grace seconds ago (default 3600) is an orphan
 * - the body of a PUT whose metadata commit failed with an unknown outcome, or whose writer died.
 * They are reported; --repair deletes them, except on a cluster node (DIR/cluster.node, written
 * by `cairn server` in cluster mode, or a record names a layout of epoch != 0): its drives hold
 * cells of bodies whose records live on other nodes, which look like orphans here, so they are
 * only reported (`cairn admin orphans` sweeps a running cluster: cmd/cluster_orphans.c). The
 * server must be stopped (the drives' LOCK
 * makes sure of it); if reading the metadata fails, nothing is deleted.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bs.h"
#include "cmd.h"
#include "cm_format.h"
#include "cm_log.h"
#include "md.h"

#define FSCK_MAX_DRIVES 256
#define FSCK_PROGRESS_MIN (64ull << 20)
#define FSCK_DEFAULT_GRACE_S 3600
#define FSCK_PAGE 1000 /* records per metadata listing call */

/* Blob ids named by the metadata, sorted once collected. */
typedef struct {
    uint8_t (*ids)[16];
    size_t n, cap;
    int spread; /* a record names a body spread over nodes (layout epoch != 0): a cluster node */
} live_set;

static int add_id(live_set *ls, const uint8_t id[16])
{
    if (ls->n == ls->cap) {
        size_t cap = ls->cap ? ls->cap * 2 : 1024;
        uint8_t(*n)[16] = realloc(ls->ids, cap * sizeof(*n));
        if (!n)
            return -1;
        ls->ids = n;
        ls->cap = cap;
    }
    memcpy(ls->ids[ls->n++], id, 16);
    return 0;
}

static int add_part_ids(live_set *ls, const md_part *parts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (parts[i].inline_data)
            continue;
        ls->spread |= parts[i].layout.epoch != 0;
        if (add_id(ls, parts[i].layout.blob) != 0)
            return -1;
    }
    return 0;
}

/* md_versions_walk: the blobs an older version of a versioned bucket names. */
static cm_err collect_version(void *arg, const md_object *o)
{
    return add_part_ids(arg, o->parts, o->nparts) == 0 ? CM_OK : CM_ERR_NOMEM;
}

/* Every blob the current objects of bucket name. */
static cm_err collect_objects(md_store *md, const char *bucket, live_set *ls)
{
    char *after = NULL;
    cm_err e = CM_OK;
    for (int more = 1; e == CM_OK && more;) {
        md_list_query q = {"", NULL, after, FSCK_PAGE};
        md_list_result res;
        e = md_list_objects(md, bucket, &q, &res);
        if (e != CM_OK)
            break;
        for (size_t i = 0; e == CM_OK && i < res.n; i++) {
            md_object obj;
            if (res.entries[i].is_prefix)
                continue;
            e = md_object_get(md, bucket, res.entries[i].key, &obj);
            if (e == CM_ERR_NOTFOUND)
                e = CM_OK; /* cannot happen offline; nothing to name either way */
            else if (e == CM_OK) {
                if (add_part_ids(ls, obj.parts, obj.nparts) != 0)
                    e = CM_ERR_NOMEM;
                md_object_release(&obj);
            }
        }
        more = res.truncated && res.next_marker;
        free(after);
        after = more ? strdup(res.next_marker) : NULL;
        if (more && !after)
            e = CM_ERR_NOMEM;
        md_list_result_release(&res);
    }
    free(after);
    return e;
}

/* Every blob the parts of one upload name. */
static cm_err collect_parts(md_store *md, const char *upload_id, live_set *ls)
{
    uint32_t after = 0;
    cm_err e = CM_OK;
    for (int more = 1; e == CM_OK && more;) {
        md_part *parts = NULL;
        size_t n = 0;
        e = md_part_list(md, upload_id, after, FSCK_PAGE, &parts, &n, &more);
        if (e != CM_OK)
            break;
        if (add_part_ids(ls, parts, n) != 0)
            e = CM_ERR_NOMEM;
        if (n > 0)
            after = parts[n - 1].number;
        more = more && n > 0;
        md_parts_free(parts, n);
    }
    return e;
}

/* Every blob the parts of the unfinished uploads of bucket name. */
static cm_err collect_uploads(md_store *md, const char *bucket, live_set *ls)
{
    char *key = NULL, *id = NULL;
    cm_err e = CM_OK;
    for (int more = 1; e == CM_OK && more;) {
        md_upload_query q = {NULL, NULL, key, id, FSCK_PAGE};
        md_upload_list res;
        e = md_upload_list_query(md, bucket, &q, &res);
        if (e != CM_OK)
            break;
        for (size_t i = 0; e == CM_OK && i < res.n; i++)
            e = collect_parts(md, res.uploads[i].upload_id, ls);
        more = res.truncated && res.next_key_marker && res.next_upload_id_marker;
        free(key);
        free(id);
        key = more ? strdup(res.next_key_marker) : NULL;
        id = more ? strdup(res.next_upload_id_marker) : NULL;
        if (more && (!key || !id))
            e = CM_ERR_NOMEM;
        md_upload_list_release(&res);
    }
    free(key);
    free(id);
    return e;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

/* Open the metadata (DIR/meta, or its copies in drive0..2/meta: md_open_data, which rebuilds a
 * copy that is behind) if there is a store, and collect every named blob id, sorted. 1 = none. */
static int load_live(const char *data, live_set *ls)
{
    char path[4096];
    struct stat st;
    int copies = 0; /* up to the last copy present: a missing one before it is rebuilt */
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/drive%d/meta", data, i);
        if (stat(path, &st) == 0)
            copies = i + 1;
    }
    snprintf(path, sizeof(path), "%s/meta/data.mdb", data);
    if (copies == 0 && stat(path, &st) != 0)
        return 1; /* md_open would create an empty store: do not */
    snprintf(path, sizeof(path), "%s", data);
    md_store *md = NULL;
    md_bucket *buckets = NULL;
    size_t nb = 0;
    cm_err e = md_open_data(data, copies ? (copies < 2 ? 2 : copies) : 1, 3, &md);
    if (e == CM_OK)
        e = md_bucket_list(md, &buckets, &nb);
    for (size_t i = 0; e == CM_OK && i < nb; i++) {
        e = collect_objects(md, buckets[i].name, ls);
        if (e == CM_OK)
            e = md_versions_walk(md, buckets[i].name, collect_version, ls);
        if (e == CM_OK)
            e = collect_uploads(md, buckets[i].name, ls);
    }
    free(buckets);
    md_close(md);
    if (e != CM_OK) {
        fprintf(stderr, "cairn fsck: reading the metadata in %s: %s\n", path, cm_err_str(e));
        return -1;
    }
    if (ls->n > 1)
        qsort(ls->ids, ls->n, sizeof(*ls->ids), cmp_id);
    return 0;
}

static int is_live(void *arg, const bs_id *id)
{
    const live_set *ls = arg;
    return ls->n && bsearch(id->b, ls->ids, ls->n, sizeof(*ls->ids), cmp_id) != NULL;
}

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
    if (r->dead_bad_blocks) /* no data lost, but the drive flips bits */
        printf(" (%llu bad blocks in deleted data)", (unsigned long long)r->dead_bad_blocks);
    printf("\n");
}

static int usage(void)
{
    fprintf(
        stderr,
        "usage: cairn fsck --data DIR [--repair] [--grace SECONDS] [--verbose]\n"
        "  Checks every DIR/drive<N> of a stopped node: segment and record headers, every\n"
        "  data block checksum, and the index they build; then, against the metadata in\n"
        "  DIR/meta, finds orphans: blobs no object or part record names, last written more\n"
        "  than SECONDS ago (default 3600).\n"
        "  --repair   rewrite each damaged segment with only its valid records (torn tails\n"
        "             cut, bad headers replaced, records with a bad block dropped), then check\n"
        "             again; delete the orphans. Blobs that lose data are reported as damaged.\n"
        "  --verbose  log every problem with its file:offset.\n"
        "  Exit status: 0 clean, 1 problems found (or left after --repair), 2 cannot check.\n");
    return 2;
}

/* The orphan sweep of one drive (after its check); 2 when it cannot run. */
static int sweep_drive(const char *path, const char *name, live_set *ls, int64_t grace_s,
                       int repair, int *bad)
{
    bs_orphan_check oc = {is_live, ls, grace_s};
    bs_orphan_report o;
    cm_err e = bs_fsck_orphans(path, &oc, repair, &o);
    if (e != CM_OK) {
        fprintf(stderr, "cairn fsck: %s: orphan sweep: %s\n", path, cm_err_str(e));
        return 2;
    }
    if (o.orphans || o.young)
        printf("%-8s orphans: %llu blobs, %llu bytes%s; %llu unnamed but younger than %llds "
               "(kept)\n",
               name, (unsigned long long)o.orphans, (unsigned long long)o.orphan_bytes,
               o.reclaimed ? " (reclaimed)" : "", (unsigned long long)o.young, (long long)grace_s);
    *bad |= o.orphans > o.reclaimed;
    return 0;
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

/*
 * The format stamps of DIR and its drives (cm_format.h), read only: fsck never writes one. 2 when
 * one names a format newer than this binary reads (nothing may be checked, let alone repaired,
 * with rules that may be stale), 1 when one is corrupt, else 0. One line per finding.
 */
static int check_stamps(const char *data, char **names, int n)
{
    char dir[4200], why[200] = "";
    cm_format_stamp st;
    int rc = 0;
    for (int i = -1; i < n; i++) {
        if (i < 0)
            snprintf(dir, sizeof(dir), "%s", data);
        else
            snprintf(dir, sizeof(dir), "%s/%s", data, names[i]);
        cm_err e = cm_format_read(dir, CM_FORMAT_VERSION, &st, why, sizeof(why));
        if (e == CM_OK && i < 0)
            printf("fsck: on-disk format %u (id %s, stamped by cairn %s at %s%s)\n", st.version,
                   st.id, st.writer, st.created, st.adopted ? ", adopted" : "");
        else if (e == CM_ERR_NOTFOUND && i < 0)
            printf("fsck: %s has no format stamp yet (the next `cairn server` start writes it)\n",
                   data);
        else if (e == CM_ERR_UNSUPPORTED) {
            fprintf(stderr,
                    "cairn fsck: %s/" CM_FORMAT_FILE " says on-disk format %u; this cairn reads "
                    "format %u and older: use the cairn that wrote it\n",
                    dir, st.version, CM_FORMAT_VERSION);
            return 2;
        } else if (e != CM_OK && e != CM_ERR_NOTFOUND) {
            printf("fsck: %s/" CM_FORMAT_FILE ": %s (%s)\n", dir, cm_err_str(e), why);
            rc = 1;
        }
    }
    return rc;
}

int cmd_fsck(int argc, char **argv)
{
    const char *data = NULL;
    int repair = 0, verbose = 0;
    int64_t grace_s = FSCK_DEFAULT_GRACE_S;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data = argv[++i];
        else if (strcmp(argv[i], "--grace") == 0 && i + 1 < argc) {
            grace_s = strtoll(argv[++i], &end, 10);
            if (grace_s < 0 || end == argv[i] || *end != 0)
                return usage();
        } else if (strcmp(argv[i], "--repair") == 0)
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
    int stamps = check_stamps(data, names, n);
    if (stamps == 2) {
        for (int i = 0; i < n; i++)
            free(names[i]);
        return 2;
    }
    live_set ls = {NULL, 0, 0, 0};
    int no_meta = load_live(data, &ls);
    int bad = stamps, rc = no_meta < 0 ? 2 : 0;
    /* A cluster node's drives hold cells of bodies whose records live on other nodes: with only
     * this node's records they look like orphans, so they are reported, never deleted. */
    char mark[4200];
    snprintf(mark, sizeof(mark), "%s/" CMD_CLUSTER_MARK, data);
    int cluster = ls.spread || access(mark, F_OK) == 0, sweep_repair = repair && !cluster;
    if (repair && cluster)
        printf("fsck: %s is a cluster node's data (%s, or a record names a body spread over "
               "nodes): orphans are reported, not deleted (cells of other nodes' records look "
               "like orphans here; `cairn admin orphans` sweeps the running cluster)\n",
               data, CMD_CLUSTER_MARK);
    print_head();
    for (int i = 0; i < n; i++) {
        int r = check_drive(data, names[i], repair, &bad);
        if (r == 0 && no_meta == 0) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", data, names[i]);
            r = sweep_drive(path, names[i], &ls, grace_s, sweep_repair, &bad);
        }
        rc = r > rc ? r : rc;
        free(names[i]);
    }
    free(ls.ids);
    if (no_meta > 0)
        printf("fsck: no metadata store in %s/meta: orphan sweep skipped\n", data);
    if (rc == 0 && bad)
        rc = 1;
    printf("%s\n", rc == 0 ? "fsck: clean" : rc == 1 ? "fsck: problems found" : "fsck: incomplete");
    return rc;
}
