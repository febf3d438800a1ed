/*
 * cmd/admin_etcd.c - `cairn admin etcd-check`: ask every etcd member of the cluster how it is and
 * print one table row per endpoint (docs/coordination.md).
 *
 *   cairn admin etcd-check --endpoints URL,URL,... [--timeout MS]
 *
 * Each endpoint is asked on its own (a client with that one endpoint, so no failover hides a dead
 * member). Exit status 0 when a majority of the endpoints answered, all that answered name the
 * same leader and that leader is one of them; 1 otherwise; 2 on bad arguments.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cmd.h"
#include "co.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: cairn admin etcd-check --endpoints URL[,URL...] [--timeout MS]\n"
               "Shows each etcd member: reachable, member id, leader, revision, Raft term.\n"
               "Exits 0 when a majority answered and agree on the leader, else 1.\n");
}

int cmd_admin_etcd_check(int argc, char **argv)
{
    const char *list = NULL;
    int timeout = 1000;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--endpoints") == 0 && v) {
            list = argv[++i];
        } else if (strcmp(argv[i], "--timeout") == 0 && v) {
            timeout = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "cairn admin etcd-check: unknown or incomplete argument '%s'\n",
                    argv[i]);
            usage(stderr);
            return 2;
        }
    }
    co_config all;
    char *storage = NULL;
    if (!list || timeout <= 0 || co_config_parse(list, &all, &storage) != CM_OK) {
        usage(stderr);
        return 2;
    }
    cm_log_set_level(CM_LOG_ERROR); /* a dead member is a table row, not a log line */
    int reachable = 0, agree = 1, leader_seen = 0;
    uint64_t leader = 0;
    printf("%-28s %-9s %-16s %-16s %-10s %-6s %s\n", "ENDPOINT", "REACHABLE", "MEMBER", "LEADER",
           "REVISION", "TERM", "VERSION");
    for (int i = 0; i < all.n_endpoints; i++) {
        co_config one = {.endpoints = {all.endpoints[i]}, .n_endpoints = 1, .timeout_ms = timeout};
        co_client *c = NULL;
        co_status_info st;
        cm_err e = co_client_new(&one, &c);
        if (e == CM_OK)
            e = co_status(c, &st);
        co_client_free(c);
        if (e != CM_OK) {
            printf("%-28s %-9s (%s)\n", all.endpoints[i], "no", cm_err_name(e));
            continue;
        }
        reachable++;
        if (reachable == 1)
            leader = st.leader_id;
        agree = agree && st.leader_id != 0 && st.leader_id == leader;
        leader_seen |= st.member_id == st.leader_id;
        printf("%-28s %-9s %016" PRIx64 " %016" PRIx64 " %-10" PRId64 " %-6" PRId64 " %s\n",
               all.endpoints[i], "yes", st.member_id, st.leader_id, st.revision, st.raft_term,
               st.version);
    }
    /* a leader that did not answer itself is a dead one the others have not replaced yet */
    int healthy = reachable * 2 > all.n_endpoints && agree && leader_seen;
    printf("%d of %d members reachable; %s\n", reachable, all.n_endpoints,
           healthy ? "healthy (quorum, one leader)"
                   : (reachable * 2 > all.n_endpoints ? "no agreed leader" : "no quorum"));
    free(storage);
    return healthy ? 0 : 1;
}
