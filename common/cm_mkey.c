/*
 * cm_mkey.c - loading the master key and wrapping small secrets under it (see cm_mkey.h for the
 * sources, the wrapped format and the errors).
 *
 * The default key file is created by writing a temporary file (O_EXCL, 0600), fsyncing it, then
 * link()ing it to the final name: link never replaces an existing file, so two servers started at
 * once on the same data directory cannot end with different keys (the loser reads the winner's
 * file), and a crash leaves either no key file or a complete one. The parent directory is fsynced
 * so the new name survives a crash.
 *
 * Several keys (rotation): the primary wraps; unwrap takes the key the wrapped form's id names,
 * the primary or one of the older keys loaded after it; rewrap is unwrap then wrap under the
 * primary, the same length, so a record can be patched in place.
 *
 * No global state; the keys live in the caller's cm_mkey. Thread-safe: wrap/unwrap take their own
 * EVP context per call.
 */
#include "cm_mkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cm_util.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define HDR_LEN (1 + 4) /* version, key id: the additional data's prefix */
#define HEX_LEN (2 * CM_MKEY_LEN)

static void say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t cap, const char *fmt, ...)
{
    if (cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

/* The id of key: the first 4 bytes of SHA-256("cairn-mkey-id" || key). */
static void key_id(const uint8_t key[CM_MKEY_LEN], uint8_t id[4])
{
    static const char label[] = "cairn-mkey-id";
    uint8_t buf[sizeof(label) - 1 + CM_MKEY_LEN];
    uint8_t d[32];
    unsigned dlen = 0;
    memcpy(buf, label, sizeof(label) - 1);
    memcpy(buf + sizeof(label) - 1, key, CM_MKEY_LEN);
    if (EVP_Digest(buf, sizeof(buf), d, &dlen, EVP_sha256(), NULL) != 1)
        memset(d, 0, sizeof(d)); /* cannot happen with the default provider; id 0 still works */
    memcpy(id, d, 4);
    OPENSSL_cleanse(buf, sizeof(buf));
}

void cm_mkey_set(cm_mkey *mk, const uint8_t key[CM_MKEY_LEN])
{
    OPENSSL_cleanse(mk, sizeof(*mk));
    memcpy(mk->key, key, CM_MKEY_LEN);
    key_id(key, mk->id);
}

int cm_mkey_knows(const cm_mkey *mk, const uint8_t id[4])
{
    if (memcmp(mk->id, id, 4) == 0)
        return 1;
    for (size_t i = 0; i < mk->nold; i++)
        if (memcmp(mk->old_id[i], id, 4) == 0)
            return 1;
    return 0;
}

cm_err cm_mkey_add_old(cm_mkey *mk, const uint8_t key[CM_MKEY_LEN])
{
    uint8_t id[4];
    key_id(key, id);
    if (mk->nold >= CM_MKEY_MAX - 1 || cm_mkey_knows(mk, id))
        return CM_ERR_INVAL;
    memcpy(mk->old_key[mk->nold], key, CM_MKEY_LEN);
    memcpy(mk->old_id[mk->nold], id, 4);
    mk->nold++;
    return CM_OK;
}

int cm_mkey_wrapped_id(const uint8_t *in, size_t in_len, uint8_t id[4])
{
    if (in_len < HDR_LEN)
        return 0;
    memcpy(id, in + 1, 4);
    return 1;
}

void cm_mkey_id_hex(const uint8_t id[4], char out[9])
{
    cm_hex_encode(id, 4, out);
}

/* The key of mk whose id is id, or NULL. */
static const uint8_t *key_of(const cm_mkey *mk, const uint8_t *id)
{
    if (memcmp(mk->id, id, 4) == 0)
        return mk->key;
    for (size_t i = 0; i < mk->nold; i++)
        if (memcmp(mk->old_id[i], id, 4) == 0)
            return mk->old_key[i];
    return NULL;
}

void cm_mkey_wipe(cm_mkey *mk)
{
    OPENSSL_cleanse(mk, sizeof(*mk));
}

cm_err cm_mkey_from_hex(cm_mkey *mk, const char *hex)
{
    uint8_t k[CM_MKEY_LEN];
    if (strlen(hex) != HEX_LEN || cm_hex_decode(hex, HEX_LEN, k, sizeof(k)) != CM_OK)
        return CM_ERR_INVAL;
    cm_mkey_set(mk, k);
    OPENSSL_cleanse(k, sizeof(k));
    return CM_OK;
}

cm_err cm_mkey_from_list(cm_mkey *mk, const char *text, const char *sep)
{
    cm_mkey got;
    uint8_t k[CM_MKEY_LEN];
    char hex[HEX_LEN + 1];
    size_t n = 0;
    cm_err rc = CM_OK;
    const char *p = text;
    memset(&got, 0, sizeof(got));
    while (rc == CM_OK && *p) {
        size_t len = strcspn(p, sep);
        if (len != HEX_LEN || n == CM_MKEY_MAX) {
            rc = CM_ERR_INVAL;
            break;
        }
        memcpy(hex, p, HEX_LEN);
        hex[HEX_LEN] = '\0';
        if (cm_hex_decode(hex, HEX_LEN, k, sizeof(k)) != CM_OK)
            rc = CM_ERR_INVAL;
        else if (n == 0)
            cm_mkey_set(&got, k);
        else
            rc = cm_mkey_add_old(&got, k);
        n++;
        p += len;
        if (*p) /* one separator; an empty entry after it (but the very last) is malformed */
            p++;
    }
    if (rc == CM_OK && n == 0)
        rc = CM_ERR_INVAL;
    if (rc == CM_OK)
        *mk = got;
    OPENSSL_cleanse(&got, sizeof(got));
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(hex, sizeof(hex));
    return rc;
}

/* Read a key file: keys of 64 hex characters, one a line (the newline after the last optional),
 * no group/other permission. */
static cm_err read_key_file(cm_mkey *mk, const char *path, char *why, size_t cap)
{
    char buf[CM_MKEY_MAX * (HEX_LEN + 1) + 2];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC); /* symlinks followed: secret mounts use them */
    if (fd < 0) {
        int e = errno;
        say(why, cap, "cannot open master key file %s: %s", path, strerror(e));
        return cm_err_from_errno(e);
    }
    cm_err rc = CM_ERR_INVAL;
    if (fstat(fd, &st) != 0) {
        say(why, cap, "cannot stat master key file %s: %s", path, strerror(errno));
        rc = CM_ERR_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        say(why, cap,
            "master key file %s must be a regular file that only its owner may use "
            "(mode is %04o; chmod 600 it)",
            path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0) {
        say(why, cap, "cannot read master key file %s: %s", path, strerror(errno));
        rc = CM_ERR_IO;
        goto out;
    }
    buf[n] = '\0';
    if ((size_t)n == sizeof(buf) - 1 || strlen(buf) != (size_t)n ||
        cm_mkey_from_list(mk, buf, "\n") != CM_OK) {
        say(why, cap,
            "master key file %s must hold 64 hex characters and a newline (or up to %d such "
            "lines, the primary key first, all different)",
            path, CM_MKEY_MAX);
        goto out;
    }
    rc = CM_OK;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return rc;
}

/* Create path with a fresh random key (see the file-top comment for the crash argument). */
static cm_err create_key_file(cm_mkey *mk, const char *path, char *why, size_t cap)
{
    char tmp[4200];
    char dir[4200];
    uint8_t k[CM_MKEY_LEN];
    char hex[HEX_LEN + 2];
    cm_err rc = CM_ERR_IO;
    int fd = -1;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        say(why, cap, "master key file path too long");
        return CM_ERR_INVAL;
    }
    if (cm_random(k, sizeof(k)) != CM_OK) {
        say(why, cap, "no random bytes for a new master key");
        return CM_ERR_IO;
    }
    cm_hex_encode(k, sizeof(k), hex);
    hex[HEX_LEN] = '\n';
    (void)unlink(tmp); /* a leftover of this pid from a crash */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, hex, HEX_LEN + 1) != HEX_LEN + 1 || fsync(fd) != 0) {
        say(why, cap, "cannot write master key file %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (link(tmp, path) != 0) {
        int e = errno;
        (void)unlink(tmp);
        if (e == EEXIST) /* another process won the race: use its key */
            rc = read_key_file(mk, path, why, cap);
        else
            say(why, cap, "cannot create master key file %s: %s", path, strerror(e));
        goto out;
    }
    (void)unlink(tmp);
    cm_parent_dir(path, dir, sizeof(dir));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        say(why, cap, "cannot fsync %s after creating the master key file", dir);
        if (dfd >= 0)
            close(dfd);
        goto out;
    }
    close(dfd);
    cm_mkey_set(mk, k);
    rc = CM_OK;
out:
    if (fd >= 0)
        close(fd);
    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(hex, sizeof(hex));
    return rc;
}

cm_err cm_mkey_load(cm_mkey *mk, const char *key_file, const char *data_dir, char *why,
                    size_t why_cap)
{
    const char *env = getenv(CM_MKEY_ENV);
    if (env != NULL && env[0] != '\0') {
        if (cm_mkey_from_list(mk, env, ",") != CM_OK) {
            say(why, why_cap,
                "%s must be 64 hex characters (or up to %d such keys separated by commas, the "
                "primary key first, all different)",
                CM_MKEY_ENV, CM_MKEY_MAX);
            return CM_ERR_INVAL;
        }
        return CM_OK;
    }
    if (key_file != NULL && key_file[0] != '\0')
        return read_key_file(mk, key_file, why, why_cap);
    if (data_dir == NULL || data_dir[0] == '\0') {
        say(why, why_cap, "no master key: set %s or master_key_file", CM_MKEY_ENV);
        return CM_ERR_INVAL;
    }
    char path[4096];
    size_t n = strlen(data_dir);
    while (n > 1 && data_dir[n - 1] == '/') /* "data/" -> "data.key", not "data/.key" */
        n--;
    if (snprintf(path, sizeof(path), "%.*s.key", (int)n, data_dir) >= (int)sizeof(path)) {
        say(why, why_cap, "data directory path too long");
        return CM_ERR_INVAL;
    }
    struct stat st;
    if (lstat(path, &st) == 0 || errno != ENOENT)
        return read_key_file(mk, path, why, why_cap);
    return create_key_file(mk, path, why, why_cap);
}

/* Feed the additional data: version, key id, context (EVP_CipherUpdate: either direction). */
static int add_aad(EVP_CIPHER_CTX *c, const uint8_t hdr[HDR_LEN], const char *ctx)
{
    int outl = 0;
    size_t clen = ctx != NULL ? strlen(ctx) : 0;
    if (EVP_CipherUpdate(c, NULL, &outl, hdr, HDR_LEN) != 1)
        return 0;
    return clen == 0 || EVP_CipherUpdate(c, NULL, &outl, (const uint8_t *)ctx, (int)clen) == 1;
}

cm_err cm_mkey_wrap(const cm_mkey *mk, const char *ctx, const void *secret, size_t len,
                    uint8_t *out, size_t cap, size_t *out_len)
{
    if (len == 0 || len > CM_MKEY_WRAP_MAX)
        return CM_ERR_INVAL;
    if (cap < cm_mkey_wrapped_len(len))
        return CM_ERR_TOOBIG;
    out[0] = CM_MKEY_WRAP_VERSION;
    memcpy(out + 1, mk->id, 4);
    uint8_t *nonce = out + HDR_LEN;
    uint8_t *ct = nonce + NONCE_LEN;
    if (cm_random(nonce, NONCE_LEN) != CM_OK)
        return CM_ERR_INTERNAL;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0, finl = 0;
    cm_err rc = CM_ERR_INTERNAL;
    if (c == NULL || EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, mk->key, nonce) != 1 ||
        !add_aad(c, out, ctx) || EVP_EncryptUpdate(c, ct, &outl, secret, (int)len) != 1 ||
        EVP_EncryptFinal_ex(c, ct + outl, &finl) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, ct + len) != 1)
        goto out;
    *out_len = cm_mkey_wrapped_len(len);
    rc = CM_OK;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

cm_err cm_mkey_unwrap(const cm_mkey *mk, const char *ctx, const uint8_t *in, size_t in_len,
                      uint8_t *out, size_t cap, size_t *out_len)
{
    if (in_len < 1)
        return CM_ERR_CORRUPT;
    if (in[0] != CM_MKEY_WRAP_VERSION)
        return CM_ERR_UNSUPPORTED;
    if (in_len <= CM_MKEY_WRAP_OVERHEAD)
        return CM_ERR_CORRUPT;
    const uint8_t *key = key_of(mk, in + 1);
    if (key == NULL)
        return CM_ERR_AUTH;
    size_t len = in_len - CM_MKEY_WRAP_OVERHEAD;
    if (cap < len)
        return CM_ERR_TOOBIG;
    if (len > CM_MKEY_WRAP_MAX)
        return CM_ERR_CORRUPT;
    const uint8_t *nonce = in + HDR_LEN;
    const uint8_t *ct = nonce + NONCE_LEN;
    uint8_t tag[TAG_LEN];
    memcpy(tag, ct + len, TAG_LEN); /* the ctrl takes a non-const pointer */
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int outl = 0, finl = 0;
    cm_err rc = CM_ERR_INTERNAL;
    if (c == NULL || EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
        !add_aad(c, in, ctx) || EVP_DecryptUpdate(c, out, &outl, ct, (int)len) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
        goto out;
    if (EVP_DecryptFinal_ex(c, out + outl, &finl) != 1) {
        rc = CM_ERR_CORRUPT;
        goto out;
    }
    *out_len = len;
    rc = CM_OK;
out:
    if (rc != CM_OK)
        OPENSSL_cleanse(out, len);
    EVP_CIPHER_CTX_free(c);
    return rc;
}

cm_err cm_mkey_rewrap(const cm_mkey *mk, const char *ctx, uint8_t *wrapped, size_t len,
                      int *changed)
{
    uint8_t secret[CM_MKEY_WRAP_MAX];
    uint8_t again[CM_MKEY_WRAP_MAX + CM_MKEY_WRAP_OVERHEAD];
    size_t n = 0, m = 0;
    *changed = 0;
    if (len > HDR_LEN && wrapped[0] == CM_MKEY_WRAP_VERSION && memcmp(wrapped + 1, mk->id, 4) == 0)
        return CM_OK; /* under the primary already */
    cm_err rc = cm_mkey_unwrap(mk, ctx, wrapped, len, secret, sizeof(secret), &n);
    if (rc == CM_OK)
        rc = cm_mkey_wrap(mk, ctx, secret, n, again, sizeof(again), &m);
    if (rc == CM_OK && m != len)
        rc = CM_ERR_INTERNAL; /* cannot happen: the format's overhead is fixed */
    if (rc == CM_OK) {
        memcpy(wrapped, again, len);
        *changed = 1;
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    return rc;
}
