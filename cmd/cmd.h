/*
 * cmd.h - the subcommands of the `cairn` binary. cmd/ is the only place with process-wide state.
 */
#ifndef CMD_H
#define CMD_H

#define CAIRN_VERSION "0.1.0"

typedef struct {
    char access_key[128];
    char secret_key[128];
    int from_env;
} cmd_credentials;

/*
 * Credentials of the root user: CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY when both are set, else the
 * pair in DATA/credentials, generated (and stored 0600) on first start. Prints the reason and
 * returns non-zero on failure.
 */
int cmd_load_credentials(const char *data_dir, cmd_credentials *out);

/* Subcommands: each takes the arguments after "cairn" (argv[0] is the command name) and returns
 * the process exit status. */
int cmd_server(int argc, char **argv);
int cmd_admin(int argc, char **argv); /* admin.c: status, scrub */
int cmd_bench(int argc, char **argv); /* bench.c: load generator, raw speeds */
int cmd_fsck(int argc, char **argv);  /* fsck.c: offline drive check and repair */

#endif
