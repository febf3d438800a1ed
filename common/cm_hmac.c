/*
 * cm_hmac.c - HMAC-SHA256 (RFC 2104) with the key's two pad blocks hashed once.
 *
 * HMAC(K, m) = H((K0 ^ opad) || H((K0 ^ ipad) || m)), K0 the key zero-padded to SHA-256's 64-byte
 * block (hashed first when longer). The first block of each hash depends on the key alone, so
 * cm_hmac_key_init runs SHA-256 over each pad block once and keeps the two resulting states; a
 * MAC then copies a state, hashes the message (inner) or the 32-byte inner digest (outer) and
 * finishes: two blocks fewer than hashing the pads every time, and no allocation. The node RPC
 * signs and checks every call under one cluster secret (node/nd_auth.c): its key is built once
 * per client and per service, i.e. once per secret (the secret is read at start; a rotation
 * would build a new key).
 *
 * The states are OpenSSL's SHA256_CTX, driven by SHA256_Init/Update/Final. Those are deprecated
 * in OpenSSL 3 in favour of EVP, but EVP has no way to keep a digest state by value: an
 * EVP_MD_CTX is a heap object whose copy (EVP_MD_CTX_copy_ex) frees and allocates the provider's
 * context, so sharing one precomputed state between threads would need an allocation and a copy
 * per MAC (measured on a 150-byte message: 200 ns that way, 150 ns here, 310 ns for the two EVP
 * digests of the old cm_hmac_sha256). The low-level calls run the same assembly as EVP's
 * SHA-256 (SHA-NI or AVX2 where the CPU has them). They are used in this file only, which is why
 * it silences the deprecation warnings for itself; cm_sha256 offers the same path for a one-shot
 * digest of a short message (SigV4 hashes its canonical request on every request), where EVP's
 * context allocation and provider dispatch would cost more than the blocks.
 *
 * A cm_hmac_key is read-only after init (threads may share one) and holds the states as plain
 * words: they move in and out of a SHA256_CTX by memcpy, so no type punning is involved. Every
 * copy of a state or of a key-derived block on the stack is wiped before returning.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "cm_checksum.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((cm_hmac_key *)0)->state[0]),
               "cm_hmac_key too small for OpenSSL's SHA256_CTX");

#define BLOCK 64

/* One pad block through a fresh SHA-256, the state kept in dst. */
static void pad_state(uint64_t *dst, const uint8_t k0[BLOCK], uint8_t x)
{
    uint8_t pad[BLOCK];
    SHA256_CTX c;
    for (size_t i = 0; i < BLOCK; i++)
        pad[i] = k0[i] ^ x;
    SHA256_Init(&c);
    SHA256_Update(&c, pad, BLOCK);
    memcpy(dst, &c, sizeof(c));
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(&c, sizeof(c));
}

void cm_hmac_key_init(cm_hmac_key *k, const void *key, size_t keylen)
{
    uint8_t k0[BLOCK] = {0};
    if (keylen > BLOCK) {
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Update(&c, key, keylen);
        SHA256_Final(k0, &c);
        OPENSSL_cleanse(&c, sizeof(c));
    } else if (keylen > 0) {
        memcpy(k0, key, keylen);
    }
    memset(k, 0, sizeof(*k));
    pad_state(k->state[0], k0, 0x36);
    pad_state(k->state[1], k0, 0x5c);
    OPENSSL_cleanse(k0, sizeof(k0));
}

void cm_hmac_key_release(cm_hmac_key *k)
{
    OPENSSL_cleanse(k, sizeof(*k));
}

void cm_hmac_sha256_keyed(const cm_hmac_key *k, const void *msg, size_t msglen, uint8_t *out)
{
    SHA256_CTX c;
    uint8_t inner[32];
    memcpy(&c, k->state[0], sizeof(c));
    SHA256_Update(&c, msg, msglen);
    SHA256_Final(inner, &c);
    memcpy(&c, k->state[1], sizeof(c));
    SHA256_Update(&c, inner, sizeof(inner));
    SHA256_Final(out, &c);
    OPENSSL_cleanse(&c, sizeof(c));
    OPENSSL_cleanse(inner, sizeof(inner));
}

void cm_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen, uint8_t *out)
{
    cm_hmac_key k;
    cm_hmac_key_init(&k, key, keylen); /* before out is written: out may alias key */
    cm_hmac_sha256_keyed(&k, msg, msglen, out);
    cm_hmac_key_release(&k);
}

void cm_sha256(const void *msg, size_t len, uint8_t out[32])
{
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, msg, len);
    SHA256_Final(out, &c);
    OPENSSL_cleanse(&c, sizeof(c));
}
