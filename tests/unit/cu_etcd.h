/*
 * cu_etcd.h - start and stop real etcd members for the coord/ and repl/ tests.
 *
 * Members run /usr/bin/etcd (or $CAIRN_ETCD) as child processes on free loopback ports, each with
 * its own data directory under cu_tmpdir(); they never touch a system etcd on 2379/2380. Every
 * member started is killed (SIGKILL, then reaped) by cu_etcd_stop, at process exit, and by the
 * kernel if the test process dies first (PR_SET_PDEATHSIG). Start waits at most 20 s for every
 * member to serve a linearizable read.
 */
#ifndef CU_ETCD_H
#define CU_ETCD_H

#include <sys/types.h>

#include "co.h"

#define CU_ETCD_MAX 3

typedef struct {
    int n;
    pid_t pid[CU_ETCD_MAX]; /* 0 when stopped */
    int client_port[CU_ETCD_MAX], peer_port[CU_ETCD_MAX];
    char url[CU_ETCD_MAX][64];
    char dir[256];
} cu_etcd;

/*
 * 1 when the etcd binary is there. When it is not, a test calls cu_etcd_missing(), which fails
 * the test under CI=true (setup.sh installs etcd) and only reports a skip elsewhere.
 */
int cu_etcd_available(void);
void cu_etcd_missing(void);

/* Start an n-member cluster (1..3); 0 on success. */
int cu_etcd_start(cu_etcd *e, int n);
/* Kill member i (SIGKILL) / start it again on the same ports and data; 0 on success. */
void cu_etcd_kill(cu_etcd *e, int i);
int cu_etcd_restart(cu_etcd *e, int i);
/* Kill every member and remove the data directories. */
void cu_etcd_stop(cu_etcd *e);
/* A free loopback TCP port (bound and released). */
int cu_etcd_free_port(void);
/* A client config naming the members (timeout_ms as given). */
void cu_etcd_config(const cu_etcd *e, int timeout_ms, co_config *cfg);
/*
 * A test's etcd: start n members (a fatal assertion when they do not start), fill *cfg for them
 * (timeout_ms) and, when c is not NULL, make a client. 0 when etcd is not installed
 * (cu_etcd_missing said so: the test returns), 1 when it is up.
 */
int cu_etcd_up(cu_etcd *e, int n, int timeout_ms, co_config *cfg, co_client **c);

#endif
