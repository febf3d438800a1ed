/*
 * rp_env.h - the coordinator tests' fixture (test_repl_coord.c, test_repl_ae.c): one event loop in
 * its own thread (the replicas' loop), NF fake replicas (rp_fake.h) and two coordinators (nodes 1
 * and 2) over them, plus the helpers every suite uses. One environment at a time (E); each test
 * brings it up and down.
 */
#ifndef RP_ENV_H
#define RP_ENV_H

#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>

#include "rp.h"
#include "rp_fake.h"

#define NF 6
#define B "bk"

typedef struct {
    struct event_base *base;
    pthread_t th;
    fake *f[NF];
    struct rp_router *rt;
    md_hlc clk[3]; /* nodes 1, 2 and 3 */
    rp *c[2];
    rp_keylocks *locks;
    rp_consistency mode;
    int hedge_ms; /* 0: the default (timeout / 4) */
    char dir[256];
} env;

extern env E;

/* The coordinator config of node (1-3) over E's fakes, as env_up builds it (own keylocks unset). */
rp_config config(int node, uint32_t nshards, int timeout_ms);
/* Start a loop, NF fakes and two coordinators (nodes 1 and 2) over them; hedge_ms 0 = default. */
void env_up_hedged(uint32_t nshards, int timeout_ms, rp_consistency mode, int hedge_ms);
void env_up(uint32_t nshards, int timeout_ms, rp_consistency mode);
/* Free both coordinators (rp_free waits for every call, read repairs included). */
void coords_free(void);
void env_down(void);
void set_fault(int i, int down, int hang_ms, int delay_ms);
/* A record of key with etag (and etag's length as size), version "null"; release it. */
md_object mkobj(const char *key, const char *etag);
cm_err put(int ci, const char *key, const char *etag, const md_cond *cond);
/* The etag fake i stores for key in shard 0 ("" when absent, "-" for a tombstone). */
const char *stored(int i, const char *key, md_object *keep);
int same_version(const md_object *a, const md_object *b);
int64_t now_ms(void);

#endif
