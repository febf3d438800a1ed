/*
 * cmd/admin_fmt.h - the output of `cairn admin` (docs/admin.md): human units, aligned tables,
 * progress lines and the durability estimate. Pure functions of their arguments (no I/O except
 * am_table_print), so tests/unit/test_common_admin_fmt.c checks them without a server.
 */
#ifndef CMD_ADMIN_FMT_H
#define CMD_ADMIN_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of `cairn admin` (docs/admin.md, "Exit codes"). */
enum {
    AM_EXIT_OK = 0,
    AM_EXIT_FAIL = 1,        /* anything else: bad credentials file, bad endpoint syntax */
    AM_EXIT_USAGE = 2,       /* bad arguments */
    AM_EXIT_DAMAGE = 3,      /* a scrub/repair pass or object-cells found what it could not fix */
    AM_EXIT_UNREACHABLE = 4, /* no connection, no answer, or not HTTP */
    AM_EXIT_AUTH = 5,        /* the server refused the credentials (HTTP 401/403) */
    AM_EXIT_SERVER = 6       /* any other error answer (4xx/5xx), or an answer we cannot read */
};
/* The exit code for an HTTP status that is not a success. */
int am_exit_for_status(int status);

/* 1023 -> "1023 B", 1300 -> "1.3 KiB", 1.2 GiB -> "1.2 GiB" (binary units, one decimal). */
void am_bytes(uint64_t b, char *out, size_t cap);
/* A duration in seconds: "45s", "3m 20s", "2h 05m", "3d 04h", "unknown" when s < 0. */
void am_duration(double s, char *out, size_t cap);
/* An age: "never" (then_ms <= 0), "just now" (< 1 s), "12s ago", "3m ago", "5h ago", "2d ago". */
void am_ago(int64_t now_ms, int64_t then_ms, char *out, size_t cap);

/* The index of name in names[0..*n), appended when missing and *n < cap; -1 when full. */
int am_name_index(const char **names, int *n, int cap, const char *name);

/*
 * An aligned text table: columns sized to their widest cell, left-aligned unless the column's
 * letter in align is 'r'. Cells are copied. At most AM_MAXCOL columns.
 */
#define AM_MAXCOL 12
typedef struct {
    int ncols;
    char align[AM_MAXCOL + 1];
    char **cells; /* (head + nrows) * ncols, row 0 the header */
    size_t nrows, cap;
    int head; /* 1 once the header row is stored */
} am_table;
int am_table_init(am_table *t, const char *align, const char *const *head); /* -1: no memory */
int am_table_row(am_table *t, const char *const *cells);                    /* -1: no memory */
void am_table_print(const am_table *t, FILE *f);
void am_table_release(am_table *t);

/*
 * One progress line of a long operation: "label [#####.....]  45% 450/1000 objects, 12.0 MiB/s,
 * ETA 1m 05s". total 0: unknown (no bar, no percentage, no ETA). rate: units per second (< 0
 * unknown); bytes: the amounts are bytes (human units and "/s"), else unit names them.
 */
void am_progress(char *out, size_t cap, const char *label, double done, double total, double rate,
                 int bytes, const char *unit);
/* Seconds left at rate, or -1 when unknown. */
double am_eta(double done, double total, double rate);

/* ---- the durability estimate (docs/admin.md, "Durability") ---- */

typedef struct {
    int k, m;           /* erasure profile */
    int drives;         /* drives holding cells (all the cluster's on a cluster node) */
    int nodes, azs;     /* 0 on a single node */
    int az_drives;      /* drives in the largest AZ (cluster), else drives */
    double afr;         /* assumed annual failure rate per drive, e.g. 0.01 */
    double drive_bytes; /* data on the fullest drive: what a lost drive takes to rebuild */
    double repair_bps;  /* bytes/s at which a lost drive's data is rebuilt; <= 0 unknown */
    int measured;       /* 1: repair_bps was measured, 0: a configured limit */
} am_dur_in;

typedef struct {
    int tol_drives;     /* drive losses tolerated: m */
    int tol_nodes;      /* node losses tolerated (-1 on a single node) */
    int tol_azs;        /* AZ losses tolerated (-1 on a single node or one AZ) */
    int known;          /* 1 when the numbers below are computed */
    double rebuild_s;   /* time to rebuild a lost drive */
    double p_loss_year; /* probability of losing some data in a year */
    double nines;       /* -log10(p_loss_year) */
} am_dur_out;

void am_durability(const am_dur_in *in, am_dur_out *out);
/* The estimate as one sentence (the stated assumptions included). */
void am_durability_text(const am_dur_in *in, const am_dur_out *d, char *out, size_t cap);

#endif
