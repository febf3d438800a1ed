/*
 * cm_reload.c - the SIGHUP hook list (see cm_reload.h): a fixed array under a mutex.
 */
#include "cm_reload.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "cm_log.h"

#define MOD "reload"

typedef struct {
    char name[32];
    cm_reload_fn fn;
    void *arg;
} hook;

struct cm_reload {
    pthread_mutex_t lock;
    hook hooks[CM_RELOAD_MAX];
    int n;
};

cm_err cm_reload_new(cm_reload **out)
{
    cm_reload *r = calloc(1, sizeof(*r));
    if (!r)
        return CM_ERR_NOMEM;
    pthread_mutex_init(&r->lock, NULL);
    *out = r;
    return CM_OK;
}

void cm_reload_free(cm_reload *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

cm_err cm_reload_add(cm_reload *r, const char *name, cm_reload_fn fn, void *arg)
{
    cm_err e = CM_ERR_TOOBIG;
    pthread_mutex_lock(&r->lock);
    if (r->n < CM_RELOAD_MAX) {
        hook *h = &r->hooks[r->n++];
        snprintf(h->name, sizeof(h->name), "%s", name);
        h->fn = fn;
        h->arg = arg;
        e = CM_OK;
    }
    pthread_mutex_unlock(&r->lock);
    return e;
}

int cm_reload_run(cm_reload *r)
{
    int failed = 0;
    char why[256];
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->n; i++) {
        why[0] = '\0';
        if (r->hooks[i].fn(r->hooks[i].arg, why, sizeof(why)) != 0) {
            failed++;
            CM_ERROR(MOD, "%s: reload failed, the running one stays: %s", r->hooks[i].name,
                     why[0] ? why : "(no reason given)");
        } else {
            CM_INFO(MOD, "%s: reloaded", r->hooks[i].name);
        }
    }
    pthread_mutex_unlock(&r->lock);
    return failed;
}
