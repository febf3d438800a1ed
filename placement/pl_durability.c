/*
 * pl_durability.c - the nines a repair speed implies for a layout (pl_durability in pl.h;
 * docs/placement.md, "Durability estimate").
 *
 * Model: D drives fail independently and exponentially, at lambda = -ln(1 - AFR) per year each.
 * A lost drive is rebuilt declustered: every surviving drive reads and writes a share of its
 * cells, so the whole drive's data comes back at the aggregate repair speed, after
 * T = data per drive / repair speed; repair is exponential with rate mu = 1/T. A birth-death
 * chain on the number of failed drives not yet rebuilt: state i goes to i+1 at (D - i) lambda and
 * back to i-1 at mu; reaching m+1 loses data (with bodies spread over all drives, any m+1
 * concurrent failures share some body: true once there are many bodies, and the pessimistic side
 * otherwise). The mean time to absorption from state 0 is
 *     MTTDL = sum_{i=0..m} d_i,  d_0 = 1/a_0,  d_i = (1 + mu d_{i-1}) / a_i,  a_i = (D - i) lambda
 * (from a_i (T_i - T_{i+1}) = 1 + mu (T_{i-1} - T_i); all terms positive, so no cancellation), and
 * for mu >> lambda it tends to the textbook mu^m / prod a_i. The annual loss probability is
 * 1 - exp(-1 year / MTTDL), and the nines are -log10 of it.
 *
 * The AZ view: with the largest AZ down, each body has lost up to az_cap cells and tolerates
 * m - az_cap more; the exposure is the probability that more than that many of the other drives
 * fail during the outage (binomial with q = 1 - exp(-lambda H), no repair assumed meanwhile).
 * Those bodies are unreadable until the AZ returns, and lost if it does not.
 */
#include <math.h>
#include <string.h>

#include "pl.h"

#define HOURS_PER_YEAR 8760.0

void pl_dur_defaults(pl_dur_input *in)
{
    memset(in, 0, sizeof(*in));
    in->afr = 0.02;
    in->az_outage_h = 24;
}

cm_err pl_dur_from_topology(const pl_topology *t, int k, int m, pl_dur_input *in)
{
    pl_map *map;
    cm_err e = pl_map_new(t, PL_MAP_HOMES, &map);
    if (e != CM_OK)
        return e;
    in->k = k;
    in->m = m;
    in->az_cap = pl_az_cap(map, k, m);
    pl_map_free(map);
    in->drives = in->azs = in->az_drives = 0;
    /* drives taking cells per AZ: AZs in order of their first node */
    for (int i = 0; i < t->nnodes; i++) {
        int first = 1, n = 0;
        for (int j = 0; j < i && first; j++)
            first = strcmp(t->nodes[j].az, t->nodes[i].az) != 0;
        if (!first)
            continue;
        for (int j = i; j < t->nnodes; j++) {
            const pl_node *nd = &t->nodes[j];
            if (strcmp(nd->az, t->nodes[i].az) != 0 || nd->state != PL_UP)
                continue;
            for (int d = 0; d < nd->ndrives; d++)
                n += nd->drives[d].state == PL_UP;
        }
        in->drives += n;
        in->azs += n > 0;
        if (n > in->az_drives)
            in->az_drives = n;
    }
    return in->drives > 0 ? CM_OK : CM_ERR_INVAL;
}

/* -log10(p), capped for a probability that underflows to 0. */
static double nines(double p)
{
    return p > 0 ? -log10(p) : 99.0;
}

/* P(at least need of n independent drives fail), each with probability q; summed from the
 * tail so a tiny answer keeps its digits. */
static double at_least(int n, int need, double q)
{
    double p = 0;
    if (need <= 0)
        return 1;
    for (int j = need; j <= n; j++) {
        double lc = lgamma(n + 1.0) - lgamma(j + 1.0) - lgamma(n - j + 1.0);
        p += exp(lc + j * log(q) + (n - j) * log1p(-q));
    }
    return p;
}

cm_err pl_durability(const pl_dur_input *in, pl_dur_result *out)
{
    memset(out, 0, sizeof(*out));
    if (in->k < 1 || in->m < 0 || in->k + in->m > PL_MAX_CELLS || in->drives < in->k + in->m ||
        !(in->afr > 0 && in->afr < 1) || !(in->drive_bytes > 0) || !(in->repair_mbps > 0) ||
        in->az_drives < 0 || in->az_drives > in->drives || in->az_outage_h < 0)
        return CM_ERR_INVAL;
    double lambda = -log1p(-in->afr) / HOURS_PER_YEAR; /* per hour */
    out->repair_h = in->drive_bytes / (in->repair_mbps * 1e6) / 3600.0;
    double mu = 1.0 / out->repair_h, d = 0, sum = 0;
    for (int i = 0; i <= in->m; i++) {
        double a = (in->drives - i) * lambda;
        d = i == 0 ? 1.0 / a : (1.0 + mu * d) / a;
        sum += d;
    }
    out->mttdl_years = sum / HOURS_PER_YEAR;
    out->p_loss_year = -expm1(-1.0 / out->mttdl_years);
    out->nines = nines(out->p_loss_year);

    out->az_tolerance = in->m - in->az_cap;
    double q = -expm1(-lambda * in->az_outage_h);
    out->p_az_exposure = at_least(in->drives - in->az_drives, out->az_tolerance + 1, q);
    out->az_nines = nines(out->p_az_exposure);
    return CM_OK;
}
