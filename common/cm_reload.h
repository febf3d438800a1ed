/*
 * cm_reload.h - what SIGHUP reloads besides the configuration keys: a list of hooks that
 * subsystems register (TLS certificates, ...). cmd/server.c owns one list, made before serving;
 * at SIGHUP, after the configuration file has been re-read and accepted, it runs every hook in
 * registration order on its signal thread.
 *
 * Writing a hook:
 *   static int tls_reload(void *arg, char *why, size_t cap) { ... }
 *   cm_reload_add(reloads, "tls", tls_reload, ctx);      (in cmd/server.c, before serving)
 * A hook reloads its own files and swaps what it built into place in a way that is safe against
 * the threads using it (a mutex or an atomic pointer swap; requests in flight keep the old
 * object). It returns 0, or -1 with a one-line reason in why (cap bytes) after leaving the running
 * state untouched: a failed reload must never leave a half-built state in use. It must not call
 * cm_reload_* itself. The result of each hook is logged (module "reload"); a failure does not stop
 * the others.
 *
 * Thread-safety: add and run may be called from any thread (a mutex serialises them); a hook runs
 * with that mutex held, so two reloads never overlap.
 */
#ifndef CM_RELOAD_H
#define CM_RELOAD_H

#include <stddef.h>

#include "cm_err.h"

#define CM_RELOAD_MAX 16 /* hooks in one list */

typedef int (*cm_reload_fn)(void *arg, char *why, size_t cap);
typedef struct cm_reload cm_reload;

cm_err cm_reload_new(cm_reload **out);
void cm_reload_free(cm_reload *r); /* NULL is a no-op; never calls the hooks */
/* Register fn (name is copied, for the log). CM_ERR_TOOBIG past CM_RELOAD_MAX hooks. */
cm_err cm_reload_add(cm_reload *r, const char *name, cm_reload_fn fn, void *arg);
/* Run every hook; returns how many failed (each failure is logged with its reason). */
int cm_reload_run(cm_reload *r);

#endif
