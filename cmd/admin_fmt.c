/*
 * cmd/admin_fmt.c - how `cairn admin` prints (docs/admin.md): binary byte units, durations and
 * ages, aligned tables, one progress line, and the durability estimate.
 *
 * The durability model is placement's (pl_durability: a Markov chain on failed drives, repair of
 * a whole drive at the measured speed, loss at m+1 concurrent failures); this file only fills its
 * input from what a node reports and states the assumptions next to the number. Failure domains:
 * cells are spread over distinct AZs while there are AZs, then distinct nodes (docs/placement.md),
 * so a body keeps at most ceil((k+m)/nodes) cells on one node and ceil((k+m)/azs) in one AZ, and
 * survives the loss of floor(m / that) nodes or AZs.
 */
#include "admin_fmt.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pl.h"

int am_exit_for_status(int status)
{
    if (status == 401 || status == 403)
        return AM_EXIT_AUTH;
    return status >= 200 && status < 300 ? AM_EXIT_OK : AM_EXIT_SERVER;
}

void am_bytes(uint64_t b, char *out, size_t cap)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (b < 1024) {
        snprintf(out, cap, "%" PRIu64 " B", b);
        return;
    }
    double v = (double)b / 1024.0;
    int u = 0;
    while (v >= 1023.95 && u < 5) {
        v /= 1024.0;
        u++;
    }
    snprintf(out, cap, "%.1f %s", v, units[u]);
}

void am_duration(double s, char *out, size_t cap)
{
    if (!(s >= 0)) {
        snprintf(out, cap, "unknown");
        return;
    }
    uint64_t t = (uint64_t)(s + 0.5);
    if (s > 0 && s < 0.5)
        snprintf(out, cap, "<1s");
    else if (t < 60)
        snprintf(out, cap, "%" PRIu64 "s", t);
    else if (t < 3600)
        snprintf(out, cap, "%" PRIu64 "m %02" PRIu64 "s", t / 60, t % 60);
    else if (t < 86400)
        snprintf(out, cap, "%" PRIu64 "h %02" PRIu64 "m", t / 3600, t % 3600 / 60);
    else
        snprintf(out, cap, "%" PRIu64 "d %02" PRIu64 "h", t / 86400, t % 86400 / 3600);
}

void am_ago(int64_t now_ms, int64_t then_ms, char *out, size_t cap)
{
    if (then_ms <= 0) {
        snprintf(out, cap, "never");
        return;
    }
    int64_t s = (now_ms > then_ms ? now_ms - then_ms : 0) / 1000;
    if (s < 1)
        snprintf(out, cap, "just now");
    else if (s < 60)
        snprintf(out, cap, "%" PRId64 "s ago", s);
    else if (s < 3600)
        snprintf(out, cap, "%" PRId64 "m ago", s / 60);
    else if (s < 86400)
        snprintf(out, cap, "%" PRId64 "h ago", s / 3600);
    else
        snprintf(out, cap, "%" PRId64 "d ago", s / 86400);
}

int am_name_index(const char **names, int *n, int cap, const char *name)
{
    int a = 0;
    while (a < *n && strcmp(names[a], name) != 0)
        a++;
    if (a == *n && *n < cap)
        names[(*n)++] = name;
    return a < *n ? a : -1;
}

/* ---- tables ---- */

int am_table_init(am_table *t, const char *align, const char *const *head)
{
    memset(t, 0, sizeof(*t));
    t->ncols = (int)strlen(align);
    if (t->ncols < 1 || t->ncols > AM_MAXCOL)
        return -1;
    memcpy(t->align, align, (size_t)t->ncols + 1);
    return am_table_row(t, head); /* row 0: stored, not counted in nrows */
}

int am_table_row(am_table *t, const char *const *cells)
{
    size_t have = (size_t)t->head + t->nrows; /* rows stored, the header included */
    if (have == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, cap * (size_t)t->ncols * sizeof(*nc));
        if (!nc)
            return -1;
        t->cells = nc;
        t->cap = cap;
    }
    char **row = t->cells + have * (size_t)t->ncols;
    for (int c = 0; c < t->ncols; c++) {
        row[c] = strdup(cells[c] ? cells[c] : "-");
        if (!row[c]) {
            while (c-- > 0)
                free(row[c]);
            return -1;
        }
    }
    if (t->head)
        t->nrows++;
    t->head = 1;
    return 0;
}

void am_table_print(const am_table *t, FILE *f)
{
    size_t w[AM_MAXCOL] = {0};
    if (!t->head)
        return;
    for (size_t r = 0; r <= t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            size_t l = strlen(t->cells[r * (size_t)t->ncols + (size_t)c]);
            w[c] = l > w[c] ? l : w[c];
        }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            int last = c == t->ncols - 1;
            if (t->align[c] == 'r')
                fprintf(f, "%*s%s", (int)w[c], s, last ? "" : "  ");
            else if (last)
                fputs(s, f);
            else
                fprintf(f, "%-*s  ", (int)w[c], s);
        }
        fputc('\n', f);
    }
}

void am_table_release(am_table *t)
{
    size_t have = (size_t)t->head + t->nrows;
    for (size_t i = 0; i < have * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* ---- progress ---- */

double am_eta(double done, double total, double rate)
{
    if (!(total > 0) || !(rate > 0))
        return -1;
    return done >= total ? 0 : (total - done) / rate;
}

void am_progress(char *out, size_t cap, const char *label, double done, double total, double rate,
                 int bytes, const char *unit)
{
    char bar[23], amount[64], speed[48], eta[32];
    size_t n = 0;
    if (total > 0) {
        double f = done >= total ? 1.0 : done / total;
        int full = (int)(f * 20 + 0.5);
        bar[0] = '[';
        for (int i = 0; i < 20; i++)
            bar[1 + i] = i < full ? '#' : '.';
        bar[21] = ']';
        bar[22] = '\0';
        n = (size_t)snprintf(out, cap, "%s %s %3.0f%% ", label, bar, 100 * f);
    } else {
        n = (size_t)snprintf(out, cap, "%s ", label);
    }
    if (n >= cap)
        return;
    if (bytes) {
        char a[24], b[24];
        am_bytes((uint64_t)done, a, sizeof(a));
        am_bytes((uint64_t)total, b, sizeof(b));
        if (total > 0)
            snprintf(amount, sizeof(amount), "%s of %s", a, b);
        else
            snprintf(amount, sizeof(amount), "%s", a);
    } else if (total > 0) {
        snprintf(amount, sizeof(amount), "%.0f/%.0f %s", done, total, unit ? unit : "");
    } else {
        snprintf(amount, sizeof(amount), "%.0f %s", done, unit ? unit : "");
    }
    if (!(rate >= 0))
        snprintf(speed, sizeof(speed), "rate unknown");
    else if (bytes) {
        char r[24];
        am_bytes((uint64_t)rate, r, sizeof(r));
        snprintf(speed, sizeof(speed), "%s/s", r);
    } else {
        snprintf(speed, sizeof(speed), "%.1f %s/s", rate, unit ? unit : "");
    }
    am_duration(am_eta(done, total, rate), eta, sizeof(eta));
    snprintf(out + n, cap - n, "%s, %s, ETA %s", amount, speed, eta);
}

/* ---- durability ---- */

static int ceil_div(int a, int b)
{
    return b > 0 ? (a + b - 1) / b : a;
}

void am_durability(const am_dur_in *in, am_dur_out *out)
{
    int n = in->k + in->m;
    memset(out, 0, sizeof(*out));
    out->tol_drives = in->m;
    out->tol_nodes = in->nodes > 0 ? in->m / ceil_div(n, in->nodes) : -1;
    out->tol_azs = in->azs > 1 ? in->m / ceil_div(n, in->azs) : -1;
    pl_dur_input p;
    pl_dur_result r;
    pl_dur_defaults(&p);
    p.k = in->k, p.m = in->m, p.drives = in->drives;
    p.azs = in->azs > 0 ? in->azs : 1;
    p.az_drives = in->az_drives > 0 ? in->az_drives : in->drives;
    p.az_cap = in->azs > 1 ? ceil_div(n, in->azs) : n;
    p.afr = in->afr;
    p.drive_bytes = in->drive_bytes > 0 ? in->drive_bytes : 1; /* empty drives: a byte */
    p.repair_mbps = in->repair_bps / 1e6;
    if (pl_durability(&p, &r) != CM_OK)
        return;
    out->known = 1;
    out->rebuild_s = r.repair_h * 3600.0;
    out->p_loss_year = r.p_loss_year;
    out->nines = r.nines;
}

void am_durability_text(const am_dur_in *in, const am_dur_out *d, char *out, size_t cap)
{
    char dom[96] = "", size[24], rate[24], t[32];
    size_t n;
    if (d->tol_nodes >= 0)
        snprintf(dom, sizeof(dom), ", %d of %d nodes lost%s", d->tol_nodes, in->nodes,
                 d->tol_azs >= 0 ? "" : " (one AZ)");
    if (d->tol_azs >= 0) {
        n = strlen(dom);
        snprintf(dom + n, sizeof(dom) - n, ", %d of %d AZs lost", d->tol_azs, in->azs);
    }
    n = (size_t)snprintf(out, cap, "tolerates %d drive losses (%d+%d over %d drives)%s",
                         d->tol_drives, in->k, in->m, in->drives, dom);
    if (n >= cap)
        return;
    if (!d->known) {
        snprintf(out + n, cap - n, "; loss probability unknown (%s)",
                 in->drives < in->k + in->m ? "fewer drives than cells"
                                            : "no repair rate measured or configured");
        return;
    }
    am_bytes((uint64_t)in->drive_bytes, size, sizeof(size));
    am_bytes((uint64_t)in->repair_bps, rate, sizeof(rate));
    am_duration(d->rebuild_s, t, sizeof(t));
    snprintf(out + n, cap - n,
             "; with a %s repair rate of %s/s a lost drive of %s is rebuilt in ~%s; estimated "
             "annual loss probability ~%.1e (%.1f nines) under an assumed AFR of %g%%/year per "
             "drive, independent failures",
             in->measured ? "measured" : "CONFIGURED (not yet measured)", rate, size, t,
             d->p_loss_year, d->nines, in->afr * 100);
}
