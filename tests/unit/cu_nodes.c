/*
 * cu_nodes.c - in-process storage nodes for the unit tests (see cu_nodes.h).
 */
#include "cu_nodes.h"

#include <stdio.h>

#include <event2/event.h>

#include "cu_main.h"

static void *serve(void *arg)
{
    net_server_run(((cu_rpc *)arg)->srv);
    return NULL;
}

void cu_rpc_start(cu_rpc *r, const nd_service_config *cfg)
{
    CU_ASSERT_EQUAL_FATAL(nd_service_new(cfg, &r->svc), CM_OK);
    net_config nc;
    net_config_defaults(&nc);
    nc.port = 0;
    nc.threads = 1;
    CU_ASSERT_EQUAL_FATAL(net_server_new(&nc, &nd_service_handler, r->svc, &r->srv), CM_OK);
    r->port = net_server_port(r->srv);
    pthread_create(&r->th, NULL, serve, r);
}

void cu_rpc_serve(cu_rpc *r, const char *id, const uint8_t *secret, size_t secret_len,
                  const nd_drive *drives, int ndrives)
{
    nd_service_config sc = {.node_id = id,
                            .secret = secret,
                            .secret_len = secret_len,
                            .drives = drives,
                            .ndrives = ndrives,
                            .sync_threads = 2};
    cu_rpc_start(r, &sc);
}

void cu_rpc_halt(cu_rpc *r, int wait_ms)
{
    net_server_stop(r->srv, wait_ms);
    pthread_join(r->th, NULL);
}

void cu_rpc_free(cu_rpc *r)
{
    nd_service_free(r->svc);
    net_server_free(r->srv);
    r->svc = NULL;
    r->srv = NULL;
}

void cu_rpc_stop(cu_rpc *r, int wait_ms)
{
    if (!r->srv)
        return;
    cu_rpc_halt(r, wait_ms);
    cu_rpc_free(r);
}

int cu_topo_node(pl_topology *t, const char *id, int port, const char *az, int ndrives)
{
    char addr[32];
    int idx;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    CU_ASSERT_EQUAL_FATAL(pl_topology_add_node(t, id, addr, az, &idx), CM_OK);
    for (int d = 0; d < ndrives; d++)
        CU_ASSERT_EQUAL_FATAL(pl_topology_add_drive(t, idx, (uint32_t)d, 100, PL_UP), CM_OK);
    return idx;
}

nd_client *cu_client(struct event_base *base, const char *self, const uint8_t *secret,
                     size_t secret_len, nd_faults *faults, int io_timeout_ms, int max_conns)
{
    nd_client *cl = NULL;
    nd_client_config cc = {0};
    cc.node_id = self;
    cc.secret = secret;
    cc.secret_len = secret_len;
    cc.faults = faults;
    cc.net.io_timeout_ms = io_timeout_ms;
    cc.net.max_conns = max_conns;
    CU_ASSERT_EQUAL_FATAL(nd_client_new(base, &cc, &cl), CM_OK);
    return cl;
}

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

void cu_loop_while(struct event_base *base, int (*cond)(void *), void *arg, int *hung,
                   int timeout_s)
{
    struct event *guard = evtimer_new(base, guard_cb, hung);
    struct timeval tv = {timeout_s, 0};
    evtimer_add(guard, &tv);
    while (cond(arg) && !*hung)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(guard);
}

int cu_positive(void *arg)
{
    return *(int *)arg > 0;
}
