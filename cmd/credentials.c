/*
 * cmd/credentials.c - the root credentials: from the environment, or a 0600 file in the data
 * directory ("access_key = ..." / "secret_key = ..." lines), generated on first start.
 *
 * The secret is a secret: it reaches the terminal (and whatever collects the server's output)
 * only on the start that generated it; later starts say where it is kept (cmd/server.c banner).
 */
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_config.h"
#include "cm_util.h"

static int valid_key(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s == 0x7f)
            return 0;
    return 1;
}

static int cred_key(void *arg, const char *section, const char *key, const char *value, char *err,
                    size_t errcap)
{
    cmd_credentials *c = arg;
    char *dst = NULL;
    if (section[0] == '\0' && strcmp(key, "access_key") == 0)
        dst = c->access_key;
    else if (section[0] == '\0' && strcmp(key, "secret_key") == 0)
        dst = c->secret_key;
    if (!dst || strlen(value) >= sizeof(c->access_key)) {
        snprintf(err, errcap, "unexpected '%s'", key);
        return -1;
    }
    memcpy(dst, value, strlen(value) + 1);
    return 0;
}

static int generate(const char *path, cmd_credentials *c)
{
    static const char upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static const char any[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char text[400];

    memcpy(c->access_key, "CAIRN", 5);
    if (cm_random_string(c->access_key + 5, 15, upper) != CM_OK ||
        cm_random_string(c->secret_key, 40, any) != CM_OK) {
        fprintf(stderr, "cairn: cannot generate credentials: no randomness\n");
        return -1;
    }
    int n = snprintf(text, sizeof(text),
                     "# cairn root credentials, generated on first start\n"
                     "access_key = %s\nsecret_key = %s\n",
                     c->access_key, c->secret_key);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
        fprintf(stderr, "cairn: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(path);
        }
        return -1;
    }
    close(fd);
    return 0;
}

static int load(const char *data_dir, cmd_credentials *c, int may_generate)
{
    const char *ak = getenv("CAIRN_ACCESS_KEY"), *sk = getenv("CAIRN_SECRET_KEY");
    char msg[512];
    struct stat st;

    memset(c, 0, sizeof(*c));
    if (ak && sk && *ak && *sk) {
        if (!valid_key(ak, 3, 127) || !valid_key(sk, 8, 127)) {
            fprintf(stderr, "cairn: CAIRN_ACCESS_KEY must be 3-127 and CAIRN_SECRET_KEY 8-127 "
                            "printable characters without spaces\n");
            return -1;
        }
        snprintf(c->access_key, sizeof(c->access_key), "%s", ak);
        snprintf(c->secret_key, sizeof(c->secret_key), "%s", sk);
        c->from_env = 1;
        return 0;
    }
    if ((ak && *ak) != (sk && *sk)) {
        fprintf(stderr, "cairn: set both CAIRN_ACCESS_KEY and CAIRN_SECRET_KEY, or neither\n");
        return -1;
    }
    const char *path = c->path;
    snprintf(c->path, sizeof(c->path), "%s/credentials", data_dir);
    if (stat(path, &st) != 0) {
        if (!may_generate) {
            fprintf(stderr, "cairn: %s: %s\n", path, strerror(errno));
            return -1;
        }
        c->generated = 1;
        return generate(path, c);
    }
    if ((st.st_mode & 077) != 0)
        fprintf(stderr, "cairn: warning: %s is readable by others (chmod 600 it)\n", path);
    if (cm_config_parse_file(path, cred_key, c, msg, sizeof(msg)) != CM_OK) {
        fprintf(stderr, "cairn: %s\n", msg);
        return -1;
    }
    if (!valid_key(c->access_key, 3, 127) || !valid_key(c->secret_key, 8, 127)) {
        fprintf(stderr, "cairn: %s must hold access_key and secret_key\n", path);
        return -1;
    }
    return 0;
}

int cmd_load_credentials(const char *data_dir, cmd_credentials *c)
{
    return load(data_dir, c, 1);
}

int cmd_reread_credentials(const char *data_dir, cmd_credentials *c)
{
    return load(data_dir, c, 0);
}
