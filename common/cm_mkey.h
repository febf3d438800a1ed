/*
 * cm_mkey.h - the master key: one 32-byte secret per deployment, kept outside the data directory,
 * that wraps (encrypts) the small secrets cairn stores at rest: per-object SSE data keys and user
 * secret keys. Only wrapped forms ever reach metadata or disk.
 *
 * Rotation (docs/encryption.md, "Rotating the master key"): a source may name up to CM_MKEY_MAX
 * keys, the first the primary (it wraps every new secret), the others older keys that still
 * unwrap what they wrapped; a wrapped secret names its key by id (below), so unwrap picks the key
 * itself and cm_mkey_rewrap moves a secret under the primary without knowing which one it was.
 *
 * Where the keys come from, first match wins (cm_mkey_load):
 *   1. env CAIRN_MASTER_KEY: 64 hex characters, or several keys separated by commas;
 *   2. `[server] master_key_file = PATH`: a file of 64 hex characters and an optional newline (or
 *      one key per line), refused when group or other have any permission on it (a key others may
 *      read or replace is no key);
 *   3. the data directory's path + ".key" (a sibling of the data folder, so a copy of the data
 *      folder alone does not carry the key): read like 2 when present, else created once with
 *      mode 0600 from the kernel's random source (written, fsynced, then linked in place, so a
 *      crash leaves either no key file or a whole one).
 * A cluster must give every node the same key (set CAIRN_MASTER_KEY for all of them): a record
 * wrapped on one node is unwrapped on another.
 *
 * Wrapped format (version 1), all of it authenticated by AES-256-GCM:
 *   byte 0      version (1)
 *   bytes 1-4   key id: the first 4 bytes of SHA-256("cairn-mkey-id" || key), so unwrapping
 *               under another master key is told apart from damage (CM_ERR_AUTH, not CORRUPT)
 *   bytes 5-16  nonce (96 random bits; at most a few billion wraps per key, far below the 2^32
 *               bound for random GCM nonces)
 *   ...         ciphertext, as long as the secret
 *   last 16     GCM tag
 * The additional data is bytes 0-4 followed by the caller's context string (e.g. "sse-dek"),
 * which separates uses: a wrapped user secret cannot be passed off as a data key.
 */
#ifndef CM_MKEY_H
#define CM_MKEY_H

#include <stddef.h>
#include <stdint.h>

#include "cm_err.h"

#define CM_MKEY_LEN 32
#define CM_MKEY_ENV "CAIRN_MASTER_KEY"
#define CM_MKEY_WRAP_VERSION 1
/* Bytes a wrapped secret adds to the secret: version, key id, nonce, tag. */
#define CM_MKEY_WRAP_OVERHEAD (1 + 4 + 12 + 16)
/* Largest secret cm_mkey_wrap accepts (wrapping is for keys, not payload). */
#define CM_MKEY_WRAP_MAX 1024

/* Keys known at once: the primary and up to CM_MKEY_MAX - 1 older ones. */
#define CM_MKEY_MAX 8

typedef struct {
    uint8_t key[CM_MKEY_LEN]; /* the primary: wraps */
    uint8_t id[4];            /* see the format above */
    size_t nold;              /* older keys: unwrap only */
    uint8_t old_key[CM_MKEY_MAX - 1][CM_MKEY_LEN];
    uint8_t old_id[CM_MKEY_MAX - 1][4];
} cm_mkey;

/*
 * Load the master key (and the older keys listed after it) from the sources above. key_file is the
 * configured master_key_file ("" or NULL when unset); data_dir is the data directory (its path +
 * ".key" is the default file). On failure *why (when why_cap > 0) says what was wrong, for the
 * operator: a malformed env value, a file others may read, a short file... Errors: CM_ERR_INVAL
 * (malformed key or unsafe mode), CM_ERR_NOTFOUND (configured file missing), CM_ERR_IO (a file that
 * cannot be read, or the default file cannot be created). Never falls back to a later source when
 * an earlier one is set but bad.
 */
cm_err cm_mkey_load(cm_mkey *mk, const char *key_file, const char *data_dir, char *why,
                    size_t why_cap);
/* Set mk from 64 hex characters (exactly; no whitespace). CM_ERR_INVAL otherwise. */
cm_err cm_mkey_from_hex(cm_mkey *mk, const char *hex);
/* Set mk from a list of keys of 64 hex characters, separated by sep characters (e.g. ",", or
 * "\n" for a file; one trailing separator allowed): the first is the primary. CM_ERR_INVAL for a
 * malformed key, an empty entry, more than CM_MKEY_MAX keys or the same key twice. */
cm_err cm_mkey_from_list(cm_mkey *mk, const char *text, const char *sep);
/* Set mk from 32 raw bytes (tests, derived keys): the only key, no older ones. */
void cm_mkey_set(cm_mkey *mk, const uint8_t key[CM_MKEY_LEN]);
/* Add an older key that still unwraps (not wraps). CM_ERR_INVAL when mk is full or knows it. */
cm_err cm_mkey_add_old(cm_mkey *mk, const uint8_t key[CM_MKEY_LEN]);
/* 1 when mk holds the key of this id (the primary or an older one). */
int cm_mkey_knows(const cm_mkey *mk, const uint8_t id[4]);
/* The id of the key a wrapped secret names (wrapped[1..5)); 0 when in is too short to have one. */
int cm_mkey_wrapped_id(const uint8_t *in, size_t in_len, uint8_t id[4]);
/* id as 8 lowercase hex characters and a NUL, for logs and the admin API. */
void cm_mkey_id_hex(const uint8_t id[4], char out[9]);
/* Overwrite the key material (call before freeing memory that held a cm_mkey). */
void cm_mkey_wipe(cm_mkey *mk);

/* Length of the wrapped form of a len-byte secret. */
static inline size_t cm_mkey_wrapped_len(size_t len)
{
    return len + CM_MKEY_WRAP_OVERHEAD;
}

/*
 * Wrap secret[0..len) under mk into out (cap >= cm_mkey_wrapped_len(len)); *out_len gets the
 * length written. ctx is a short context string bound into the tag (the same must be given to
 * unwrap). Errors: CM_ERR_INVAL (len 0 or > CM_MKEY_WRAP_MAX), CM_ERR_TOOBIG (cap too small),
 * CM_ERR_INTERNAL (OpenSSL failed).
 */
cm_err cm_mkey_wrap(const cm_mkey *mk, const char *ctx, const void *secret, size_t len,
                    uint8_t *out, size_t cap, size_t *out_len);
/*
 * Unwrap in[0..in_len) into out (cap >= in_len - CM_MKEY_WRAP_OVERHEAD) with whichever of mk's
 * keys (the primary or an older one) the key id names; *out_len gets the secret's length.
 * Errors: CM_ERR_UNSUPPORTED (unknown version), CM_ERR_AUTH (wrapped under a master key mk does
 * not hold), CM_ERR_CORRUPT (too short, or the tag does not verify: altered bytes or a different
 * ctx), CM_ERR_TOOBIG (cap too small). out is wiped on failure.
 */
cm_err cm_mkey_unwrap(const cm_mkey *mk, const char *ctx, const uint8_t *in, size_t in_len,
                      uint8_t *out, size_t cap, size_t *out_len);
/*
 * Rotation: wrapped[0..len) (wrapped with ctx under one of mk's keys) wrapped again under the
 * primary, in place (the length does not change); *changed 0 when it already was under the
 * primary (left as it is). Errors as cm_mkey_unwrap (wrapped untouched then).
 */
cm_err cm_mkey_rewrap(const cm_mkey *mk, const char *ctx, uint8_t *wrapped, size_t len,
                      int *changed);

#endif
