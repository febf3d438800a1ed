/*
 * cmd/main.c - entry point of the `cairn` binary: dispatches to the subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: cairn <command> [options]\n"
               "commands:\n"
               "  server     run a node (S3 on 127.0.0.1:9000 by default); --help for options\n"
               "  version    print the version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "server") == 0)
        return cmd_server(argc - 1, argv + 1);
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
