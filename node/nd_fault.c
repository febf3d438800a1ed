/*
 * nd_fault.c - fault rules for the RPC client, per (from-node, to-node), for tests.
 *
 * A rule says what happens to a call from node `from` to node `to`: refused at once, lost (it
 * times out), or delayed. A one-way partition A -> B is one rule (A's calls to B fail while B's
 * calls to A pass); a two-way partition is two. "*" on either side matches any node; the most
 * specific rule wins: (from, to), then (from, *), then (*, to), then (*, *).
 *
 * The table is small (tests name a handful of nodes), kept in a fixed array and guarded by a
 * mutex, so a test or an admin call may change it from any thread while clients consult it on
 * their loops.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nd.h"

#define ND_MAX_RULES 64

typedef struct {
    char from[ND_NODE_ID_MAX], to[ND_NODE_ID_MAX];
    nd_fault_kind kind;
    int delay_ms;
} nd_rule;

struct nd_faults {
    pthread_mutex_t mu;
    int n;
    nd_rule rules[ND_MAX_RULES];
};

cm_err nd_faults_new(nd_faults **out)
{
    nd_faults *f = calloc(1, sizeof(*f));
    *out = NULL;
    if (!f)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&f->mu, NULL);
    *out = f;
    return CM_OK;
}

void nd_faults_free(nd_faults *f)
{
    if (!f)
        return;
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static int name_ok(const char *s)
{
    return strcmp(s, "*") == 0 || nd_node_id_valid(s);
}

/* Index of the rule (from, to) or -1; caller holds the lock. */
static int find(const nd_faults *f, const char *from, const char *to)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->rules[i].from, from) == 0 && strcmp(f->rules[i].to, to) == 0)
            return i;
    return -1;
}

cm_err nd_fault_set(nd_faults *f, const char *from, const char *to, nd_fault_kind kind,
                    int delay_ms)
{
    if (!name_ok(from) || !name_ok(to) || delay_ms < 0)
        return CM_ERR_INVAL;
    if (kind == ND_FAULT_NONE) {
        nd_fault_clear(f, from, to);
        return CM_OK;
    }
    pthread_mutex_lock(&f->mu);
    int i = find(f, from, to);
    if (i < 0 && f->n == ND_MAX_RULES) {
        pthread_mutex_unlock(&f->mu);
        return CM_ERR_TOOBIG;
    }
    if (i < 0) {
        i = f->n++;
        snprintf(f->rules[i].from, ND_NODE_ID_MAX, "%s", from);
        snprintf(f->rules[i].to, ND_NODE_ID_MAX, "%s", to);
    }
    f->rules[i].kind = kind;
    f->rules[i].delay_ms = delay_ms;
    pthread_mutex_unlock(&f->mu);
    return CM_OK;
}

void nd_fault_clear(nd_faults *f, const char *from, const char *to)
{
    pthread_mutex_lock(&f->mu);
    if (!from && !to) {
        f->n = 0;
    } else {
        int i = find(f, from ? from : "*", to ? to : "*");
        if (i >= 0)
            f->rules[i] = f->rules[--f->n];
    }
    pthread_mutex_unlock(&f->mu);
}

nd_fault_kind nd_fault_get(nd_faults *f, const char *from, const char *to, int *delay_ms)
{
    const char *tries[4][2] = {{from, to}, {from, "*"}, {"*", to}, {"*", "*"}};
    nd_fault_kind kind = ND_FAULT_NONE;
    *delay_ms = 0;
    pthread_mutex_lock(&f->mu);
    for (int t = 0; t < 4 && f->n > 0; t++) {
        int i = find(f, tries[t][0], tries[t][1]);
        if (i >= 0) {
            kind = f->rules[i].kind;
            *delay_ms = f->rules[i].delay_ms;
            break;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return kind;
}

/* One "from>to:kind[=ms]" item into r. */
static cm_err parse_rule(const char *s, size_t n, nd_rule *r)
{
    char item[3 * ND_NODE_ID_MAX];
    if (n >= sizeof(item))
        return CM_ERR_INVAL;
    memcpy(item, s, n);
    item[n] = '\0';
    char *gt = strchr(item, '>'), *colon = strchr(item, ':');
    if (!gt || !colon || colon < gt)
        return CM_ERR_INVAL;
    *gt = *colon = '\0';
    const char *kind = colon + 1;
    if (!name_ok(item) || !name_ok(gt + 1))
        return CM_ERR_INVAL; /* so both fit: a valid name is shorter than ND_NODE_ID_MAX */
    memcpy(r->from, item, strlen(item) + 1);
    memcpy(r->to, gt + 1, strlen(gt + 1) + 1);
    r->delay_ms = 0;
    if (strcmp(kind, "refuse") == 0 || strcmp(kind, "drop") == 0) {
        r->kind = ND_FAULT_REFUSE;
    } else if (strcmp(kind, "lose") == 0) {
        r->kind = ND_FAULT_LOSE;
    } else if (strncmp(kind, "delay=", 6) == 0) {
        char *end;
        long ms = strtol(kind + 6, &end, 10);
        if (end == kind + 6 || *end || ms < 0 || ms > 3600000)
            return CM_ERR_INVAL;
        r->kind = ND_FAULT_DELAY;
        r->delay_ms = (int)ms;
    } else {
        return CM_ERR_INVAL;
    }
    return CM_OK;
}

cm_err nd_faults_parse(nd_faults *f, const char *spec)
{
    nd_rule parsed[ND_MAX_RULES];
    int n = 0;
    for (const char *p = spec; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0) {
            if (n == ND_MAX_RULES || parse_rule(p, len, &parsed[n]) != CM_OK)
                return CM_ERR_INVAL;
            n++;
        }
        p += len + (comma ? 1 : 0);
    }
    for (int i = 0; i < n; i++) {
        cm_err e =
            nd_fault_set(f, parsed[i].from, parsed[i].to, parsed[i].kind, parsed[i].delay_ms);
        if (e != CM_OK)
            return e;
    }
    return CM_OK;
}
