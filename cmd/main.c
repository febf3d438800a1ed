/*
 * cmd/main.c - entry point of the `cairn` binary: dispatches to the subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"server", cmd_server, "run a node (S3 on 127.0.0.1:9000 by default); --help for options"},
    {"admin", cmd_admin, "administer a node or the cluster: status, repair, users, layout; --help"},
    {"bench", cmd_bench, "load generator and raw speed references"},
    {"fsck", cmd_fsck, "verify (and repair) a stopped node's drives"},
    {"node-rpc", cmd_node_rpc, "serve a node's RPC alone, or check a node (docs/rpc.md)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: cairn <command> [options]\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "  %-10s %s\n", "version", "print the version");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("cairn %s\n", CAIRN_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "cairn: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
