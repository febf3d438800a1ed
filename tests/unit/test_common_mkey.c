/*
 * test_common_mkey.c - the master key: the order of its sources (env, configured file, default
 * file beside the data directory), refusal of unsafe or malformed key files, creation of the
 * default file with mode 0600 and its reuse, and wrap/unwrap of small secrets (round trip, a
 * wrong master key, a wrong context, every single altered byte, an unknown version); rotation:
 * lists of keys from the env and a file, unwrap by the key id, rewrap in place under the primary.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_mkey.h"
#include "cu_main.h"

static const char HEX_A[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char HEX_B[] = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL((size_t)write(fd, text, strlen(text)), strlen(text));
    fchmod(fd, mode); /* umask may have cut the mode */
    close(fd);
}

static void test_env_wins(void)
{
    cm_mkey a, b;
    char why[256] = "";
    char path[512];
    snprintf(path, sizeof(path), "%s/env.key", cu_tmpdir());
    write_file(path, HEX_B, 0600);
    setenv(CM_MKEY_ENV, HEX_A, 1);
    CU_ASSERT_EQUAL(cm_mkey_load(&a, path, "/nonexistent/data", why, sizeof(why)), CM_OK);
    CU_ASSERT_EQUAL(cm_mkey_from_hex(&b, HEX_A), CM_OK);
    CU_ASSERT_EQUAL(memcmp(a.key, b.key, CM_MKEY_LEN), 0);
    CU_ASSERT_EQUAL(a.key[31], 0x1f);
    /* A malformed env value is an error, not a reason to try the file. */
    setenv(CM_MKEY_ENV, "abcd", 1);
    CU_ASSERT_EQUAL(cm_mkey_load(&a, path, NULL, why, sizeof(why)), CM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, CM_MKEY_ENV));
    unsetenv(CM_MKEY_ENV);
}

static void test_configured_file(void)
{
    cm_mkey a, b;
    char why[256] = "";
    char path[512];
    unsetenv(CM_MKEY_ENV);
    snprintf(path, sizeof(path), "%s/conf.key", cu_tmpdir());
    write_file(path, "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 0600);
    CU_ASSERT_EQUAL(cm_mkey_load(&a, path, NULL, why, sizeof(why)), CM_OK);
    CU_ASSERT_EQUAL(cm_mkey_from_hex(&b, HEX_B), CM_OK);
    CU_ASSERT_EQUAL(memcmp(a.key, b.key, CM_MKEY_LEN), 0);
    CU_ASSERT_EQUAL(memcmp(a.id, b.id, 4), 0);
    /* Group- or world-readable: refused, and the message says the mode. */
    chmod(path, 0640);
    CU_ASSERT_EQUAL(cm_mkey_load(&a, path, NULL, why, sizeof(why)), CM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "0640"));
    chmod(path, 0604);
    CU_ASSERT_EQUAL(cm_mkey_load(&a, path, NULL, why, sizeof(why)), CM_ERR_INVAL);
    /* Short, long, non-hex. */
    write_file(path, "0011\n", 0600);
    CU_ASSERT_EQUAL(cm_mkey_load(&a, path, NULL, why, sizeof(why)), CM_ERR_INVAL);
    write_file(path, "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00\n", 0600);
    CU_ASSERT_EQUAL(cm_mkey_load(&a, path, NULL, why, sizeof(why)), CM_ERR_INVAL);
    write_file(path, "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 0600);
    CU_ASSERT_EQUAL(cm_mkey_load(&a, path, NULL, why, sizeof(why)), CM_ERR_INVAL);
    /* A configured file that is missing is not created. */
    unlink(path);
    CU_ASSERT_EQUAL(cm_mkey_load(&a, path, "/nonexistent/data", why, sizeof(why)), CM_ERR_NOTFOUND);
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
}

static void test_default_created_once(void)
{
    cm_mkey a, b;
    char why[256] = "";
    char data[512], key[600];
    struct stat st;
    unsetenv(CM_MKEY_ENV);
    snprintf(data, sizeof(data), "%s/data/", cu_tmpdir()); /* trailing slash on purpose */
    snprintf(key, sizeof(key), "%s/data.key", cu_tmpdir());
    unlink(key);
    CU_ASSERT_EQUAL_FATAL(cm_mkey_load(&a, NULL, data, why, sizeof(why)), CM_OK);
    CU_ASSERT_EQUAL_FATAL(stat(key, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
    CU_ASSERT_EQUAL(st.st_size, 65);
    /* The second start reads the same key instead of making a new one. */
    CU_ASSERT_EQUAL(cm_mkey_load(&b, "", data, why, sizeof(why)), CM_OK);
    CU_ASSERT_EQUAL(memcmp(a.key, b.key, CM_MKEY_LEN), 0);
    /* A default file someone made readable is refused too. */
    chmod(key, 0644);
    CU_ASSERT_EQUAL(cm_mkey_load(&b, NULL, data, why, sizeof(why)), CM_ERR_INVAL);
    unlink(key);
    /* A default file that cannot be created is CM_ERR_IO (gw_new then only turns SSE-S3 off). */
    snprintf(data, sizeof(data), "%s/no-such-dir/data", cu_tmpdir());
    CU_ASSERT_EQUAL(cm_mkey_load(&b, NULL, data, why, sizeof(why)), CM_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "no-such-dir"));
}

static void test_wrap_round_trip(void)
{
    cm_mkey mk;
    uint8_t secret[32], w[128], w2[128], back[64];
    size_t wl = 0, wl2 = 0, bl = 0;
    for (size_t i = 0; i < sizeof(secret); i++)
        secret[i] = (uint8_t)(i * 7 + 1);
    CU_ASSERT_EQUAL_FATAL(cm_mkey_from_hex(&mk, HEX_A), CM_OK);
    CU_ASSERT_EQUAL_FATAL(cm_mkey_wrap(&mk, "sse-dek", secret, 32, w, sizeof(w), &wl), CM_OK);
    CU_ASSERT_EQUAL(wl, cm_mkey_wrapped_len(32));
    CU_ASSERT_EQUAL(w[0], CM_MKEY_WRAP_VERSION);
    CU_ASSERT(memmem(w, wl, secret, 8) == NULL); /* not in the clear */
    CU_ASSERT_EQUAL(cm_mkey_unwrap(&mk, "sse-dek", w, wl, back, sizeof(back), &bl), CM_OK);
    CU_ASSERT_EQUAL(bl, 32);
    CU_ASSERT_EQUAL(memcmp(back, secret, 32), 0);
    /* A fresh nonce each time: two wraps of one secret differ. */
    CU_ASSERT_EQUAL(cm_mkey_wrap(&mk, "sse-dek", secret, 32, w2, sizeof(w2), &wl2), CM_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(w, w2, wl), 0);
    /* Limits. */
    CU_ASSERT_EQUAL(cm_mkey_wrap(&mk, "x", secret, 0, w, sizeof(w), &wl), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_mkey_wrap(&mk, "x", secret, 32, w, 40, &wl), CM_ERR_TOOBIG);
    CU_ASSERT_EQUAL(cm_mkey_unwrap(&mk, "sse-dek", w2, wl2, back, 16, &bl), CM_ERR_TOOBIG);
}

static void test_wrong_key_context_tamper(void)
{
    cm_mkey mk, other;
    uint8_t secret[20] = "a user's secret key!";
    uint8_t w[128], back[64];
    size_t wl = 0, bl = 0;
    CU_ASSERT_EQUAL_FATAL(cm_mkey_from_hex(&mk, HEX_A), CM_OK);
    CU_ASSERT_EQUAL_FATAL(cm_mkey_from_hex(&other, HEX_B), CM_OK);
    CU_ASSERT_EQUAL_FATAL(cm_mkey_wrap(&mk, "user", secret, 20, w, sizeof(w), &wl), CM_OK);
    CU_ASSERT_EQUAL(cm_mkey_unwrap(&other, "user", w, wl, back, sizeof(back), &bl), CM_ERR_AUTH);
    CU_ASSERT_EQUAL(cm_mkey_unwrap(&mk, "sse-dek", w, wl, back, sizeof(back), &bl), CM_ERR_CORRUPT);
    /* Every single flipped byte is caught: version and id by their checks, the rest by the tag. */
    for (size_t i = 0; i < wl; i++) {
        w[i] ^= 0x40;
        cm_err e = cm_mkey_unwrap(&mk, "user", w, wl, back, sizeof(back), &bl);
        CU_ASSERT(e == CM_ERR_CORRUPT || (i == 0 && e == CM_ERR_UNSUPPORTED) ||
                  (i >= 1 && i <= 4 && e == CM_ERR_AUTH));
        w[i] ^= 0x40;
    }
    /* Truncated. */
    CU_ASSERT_EQUAL(cm_mkey_unwrap(&mk, "user", w, wl - 1, back, sizeof(back), &bl),
                    CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(cm_mkey_unwrap(&mk, "user", w, CM_MKEY_WRAP_OVERHEAD, back, sizeof(back), &bl),
                    CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(cm_mkey_unwrap(&mk, "user", w, wl, back, sizeof(back), &bl), CM_OK);
    CU_ASSERT_EQUAL(memcmp(back, secret, 20), 0);
    cm_mkey_wipe(&mk);
    CU_ASSERT_EQUAL(mk.key[5], 0);
}

/* Rotation: lists of keys, unwrap by id, rewrap in place under the primary. */
static void test_rotation(void)
{
    cm_mkey a, ba, b, m;
    uint8_t secret[32], w[80], back[32];
    size_t wl = 0, bl = 0;
    int changed = -1;
    char list[200], why[256] = "", path[512], idh[9];
    memset(secret, 0x5c, sizeof(secret));
    CU_ASSERT_EQUAL_FATAL(cm_mkey_from_hex(&a, HEX_A), CM_OK);
    CU_ASSERT_EQUAL_FATAL(cm_mkey_from_hex(&b, HEX_B), CM_OK);
    snprintf(list, sizeof(list), "%s,%s", HEX_B, HEX_A);
    CU_ASSERT_EQUAL_FATAL(cm_mkey_from_list(&ba, list, ","), CM_OK);
    CU_ASSERT_EQUAL(memcmp(ba.id, b.id, 4), 0); /* the first is the primary */
    CU_ASSERT_EQUAL(ba.nold, 1);
    CU_ASSERT(cm_mkey_knows(&ba, a.id) && cm_mkey_knows(&ba, b.id) && !cm_mkey_knows(&b, a.id));

    /* wrapped under A: B,A unwraps it; B alone does not */
    CU_ASSERT_EQUAL_FATAL(cm_mkey_wrap(&a, "sse-dek", secret, 32, w, sizeof(w), &wl), CM_OK);
    uint8_t id[4];
    CU_ASSERT(cm_mkey_wrapped_id(w, wl, id) && memcmp(id, a.id, 4) == 0);
    CU_ASSERT_EQUAL(cm_mkey_unwrap(&ba, "sse-dek", w, wl, back, sizeof(back), &bl), CM_OK);
    CU_ASSERT_EQUAL(memcmp(back, secret, 32), 0);
    CU_ASSERT_EQUAL(cm_mkey_unwrap(&b, "sse-dek", w, wl, back, sizeof(back), &bl), CM_ERR_AUTH);
    /* a rewrap under B alone cannot unwrap it (nothing changed), under B,A it moves to B */
    uint8_t before[80];
    memcpy(before, w, wl);
    CU_ASSERT_EQUAL(cm_mkey_rewrap(&b, "sse-dek", w, wl, &changed), CM_ERR_AUTH);
    CU_ASSERT(changed == 0 && memcmp(before, w, wl) == 0);
    CU_ASSERT_EQUAL(cm_mkey_rewrap(&ba, "user", w, wl, &changed), CM_ERR_CORRUPT); /* wrong ctx */
    CU_ASSERT_EQUAL(memcmp(before, w, wl), 0);
    CU_ASSERT_EQUAL(cm_mkey_rewrap(&ba, "sse-dek", w, wl, &changed), CM_OK);
    CU_ASSERT_EQUAL(changed, 1);
    CU_ASSERT(cm_mkey_wrapped_id(w, wl, id) && memcmp(id, b.id, 4) == 0);
    CU_ASSERT_EQUAL(cm_mkey_unwrap(&b, "sse-dek", w, wl, back, sizeof(back), &bl), CM_OK);
    CU_ASSERT_EQUAL(memcmp(back, secret, 32), 0);
    CU_ASSERT_EQUAL(cm_mkey_unwrap(&a, "sse-dek", w, wl, back, sizeof(back), &bl), CM_ERR_AUTH);
    memcpy(before, w, wl);
    CU_ASSERT_EQUAL(cm_mkey_rewrap(&ba, "sse-dek", w, wl, &changed), CM_OK);
    CU_ASSERT(changed == 0 && memcmp(before, w, wl) == 0); /* already under the primary */
    cm_mkey_id_hex(b.id, idh);
    CU_ASSERT_EQUAL(strlen(idh), 8);

    /* malformed lists: an empty entry, the same key twice, too many keys, a short key */
    snprintf(list, sizeof(list), "%s,,%s", HEX_B, HEX_A);
    CU_ASSERT_EQUAL(cm_mkey_from_list(&m, list, ","), CM_ERR_INVAL);
    snprintf(list, sizeof(list), "%s,%s", HEX_A, HEX_A);
    CU_ASSERT_EQUAL(cm_mkey_from_list(&m, list, ","), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_mkey_from_list(&m, "00ff", ","), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_mkey_from_list(&m, "", ","), CM_ERR_INVAL);
    char many[CM_MKEY_MAX * 65 + 66];
    size_t off = 0;
    for (int i = 0; i <= CM_MKEY_MAX; i++) {
        char h[65];
        snprintf(h, sizeof(h), "%s", HEX_A);
        h[0] = (char)('0' + i); /* different keys */
        off += (size_t)snprintf(many + off, sizeof(many) - off, "%s%s", i ? "," : "", h);
    }
    CU_ASSERT_EQUAL(cm_mkey_from_list(&m, many, ","), CM_ERR_INVAL);
    many[off - 65] = '\0'; /* CM_MKEY_MAX keys: accepted */
    CU_ASSERT_EQUAL(cm_mkey_from_list(&m, many, ","), CM_OK);
    CU_ASSERT_EQUAL(m.nold, CM_MKEY_MAX - 1);

    /* the sources: the env as a comma list, a file one key per line */
    snprintf(list, sizeof(list), "%s,%s", HEX_B, HEX_A);
    setenv(CM_MKEY_ENV, list, 1);
    CU_ASSERT_EQUAL(cm_mkey_load(&m, NULL, NULL, why, sizeof(why)), CM_OK);
    CU_ASSERT(memcmp(m.id, b.id, 4) == 0 && cm_mkey_knows(&m, a.id));
    unsetenv(CM_MKEY_ENV);
    snprintf(path, sizeof(path), "%s/two.key", cu_tmpdir());
    snprintf(list, sizeof(list), "%s\n%s\n", HEX_B, HEX_A);
    write_file(path, list, 0600);
    CU_ASSERT_EQUAL(cm_mkey_load(&m, path, NULL, why, sizeof(why)), CM_OK);
    CU_ASSERT(memcmp(m.id, b.id, 4) == 0 && cm_mkey_knows(&m, a.id) && m.nold == 1);
    snprintf(list, sizeof(list), "%s\n\n%s\n", HEX_B, HEX_A);
    write_file(path, list, 0600);
    CU_ASSERT_EQUAL(cm_mkey_load(&m, path, NULL, why, sizeof(why)), CM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "primary key first"));
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"env_wins", test_env_wins},
        {"configured_file", test_configured_file},
        {"default_created_once", test_default_created_once},
        {"wrap_round_trip", test_wrap_round_trip},
        {"wrong_key_context_tamper", test_wrong_key_context_tamper},
        {"rotation", test_rotation},
        {NULL, NULL},
    };
    cu_add_suite("mkey", tests);
}
