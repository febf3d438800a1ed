/*
 * co_users.h - the cluster's users and access keys in etcd (docs/users.md, "On a cluster").
 *
 * One versioned document per cluster, co_key(cluster, "users"), holds every user and every key;
 * like the bucket namespace (co_buckets.h) it is changed only by compare-and-set on the revision
 * it was read at (retried on conflict, a bounded number of times), so two nodes creating the same
 * user at once cannot both win. The document is JSON, users sorted by name, keys by access key:
 *
 *   {"v":1,"users":[{"name":"alice","created_ms":1733353200123,"disabled":true}, ...],
 *    "keys":[{"ak":"CK...","user":"alice","created_ms":1733353200123,"disabled":true,
 *             "secret":"<base64 of the wrapped secret>"}, ...]}
 *
 * "disabled" is left out when false. "secret" is the secret key wrapped by the gateway under the
 * cluster's master key (cm_mkey_wrap, context "cairn-user-secret:" + access key): etcd never holds
 * a secret in the clear, and a node with another master key cannot unwrap it. coord/ treats it as
 * opaque bytes. A key naming a user the document lacks, a duplicate name or access key, an
 * oversized field or an unknown version makes the whole document invalid.
 *
 * co_users follows the document from a background thread (co_doc) and keeps the last version it
 * applied in memory and in a cache file (so a node keeps its users through an etcd outage and
 * across a restart meanwhile), calling the owner's hook after each applied version. Readers copy
 * the applied version and never wait on etcd; changes block (bounded by the client's deadlines)
 * and return once this follower applied them: call them from a worker thread.
 */
#ifndef CO_USERS_H
#define CO_USERS_H

#include <stddef.h>
#include <stdint.h>

#include "co.h"

#define CO_KIND_USERS "users" /* the users and keys document */
#define CO_USER_NAME_MAX 65   /* bytes with the NUL (md_user's 64 characters) */
#define CO_ACCESS_KEY_MAX 33  /* bytes with the NUL */
#define CO_SEALED_MAX 160     /* a wrapped secret (md_user_key's sealed) */
#define CO_USERS_RETRIES 16   /* compare-and-set attempts before CM_ERR_CONFLICT */
#define CO_USERS_APPLY_WAIT_MS 1000

typedef struct {
    char name[CO_USER_NAME_MAX];
    int64_t created_ms;
    uint8_t disabled;
} co_user;

typedef struct {
    char ak[CO_ACCESS_KEY_MAX];
    char user[CO_USER_NAME_MAX];
    int64_t created_ms;
    uint8_t disabled;
    uint8_t sealed[CO_SEALED_MAX];
    size_t sealed_len;
} co_user_key;

/* A decoded document: both arrays malloc'd (NULL when empty), sorted. */
typedef struct {
    co_user *users;
    size_t nusers;
    co_user_key *keys;
    size_t nkeys;
} co_users_doc;

void co_users_doc_release(co_users_doc *d); /* wipes the wrapped secrets too */

/* JSON of d (any order: sorted on output) into *out (malloc'd, NUL-ended). CM_ERR_INVAL for a
 * document that would not decode (a key of an unknown user, duplicates, bad sizes). */
cm_err co_users_encode(const co_users_doc *d, char **out, size_t *len);
/* Parse into *out (sorted). CM_ERR_CORRUPT for anything but a valid version-1 document. */
cm_err co_users_decode(const uint8_t *value, size_t len, co_users_doc *out);
const co_user *co_users_find(const co_users_doc *d, const char *name);
const co_user_key *co_users_find_key(const co_users_doc *d, const char *ak);

/*
 * One change. CO_UCH_CREATE adds user and key (CM_ERR_EXISTS when the name or the access key is
 * taken); KEY_ADD adds key to its user (CM_ERR_NOTFOUND without it); DISABLE sets name's flag;
 * DELETE removes name and all its keys; KEY_DISABLE, KEY_DELETE act on ak. CM_ERR_NOTFOUND for
 * an unknown name or key. Setting a flag a record already has writes nothing. KEY_RESEAL (the
 * master-key rewrap, docs/encryption.md) replaces key.ak's wrapped secret by key.sealed when it
 * is still old (old_len bytes): already key.sealed writes nothing, anything else (the key made
 * again meanwhile) is CM_ERR_NOTFOUND, as no such key.
 */
typedef enum {
    CO_UCH_CREATE,
    CO_UCH_KEY_ADD,
    CO_UCH_DISABLE,
    CO_UCH_DELETE,
    CO_UCH_KEY_DISABLE,
    CO_UCH_KEY_DELETE,
    CO_UCH_KEY_RESEAL
} co_user_change_kind;

typedef struct {
    co_user_change_kind kind;
    co_user user;       /* CREATE */
    co_user_key key;    /* CREATE, KEY_ADD; KEY_RESEAL: ak and the new sealed */
    const char *name;   /* DISABLE, DELETE */
    const char *ak;     /* KEY_DISABLE, KEY_DELETE */
    int disabled;       /* DISABLE, KEY_DISABLE: the flag wanted */
    const uint8_t *old; /* KEY_RESEAL: the wrapped secret replaced */
    size_t old_len;
} co_user_change;

/*
 * Apply ch to the document at key: read, edit, compare-and-set from the revision read; a
 * conflict redoes it on what is there now; a lost answer is settled by a read. CM_OK (*rev, when
 * non-NULL, the revision written or read), the change's own refusals above, CM_ERR_CONFLICT after
 * CO_USERS_RETRIES lost races, CM_ERR_UNAVAILABLE, CM_ERR_CORRUPT (a stored document that does
 * not parse is never written over).
 */
cm_err co_users_change(co_client *c, const char *key, const co_user_change *ch, int64_t *rev);
/* Read the document (empty when absent; *rev 0 then). */
cm_err co_users_read(co_client *c, const char *key, co_users_doc *out, int64_t *rev);

/* ---- following it ---- */

typedef struct co_users co_users;

/*
 * Follow co_key(cluster, "users"); changed(arg) runs on the follower's thread after each version
 * applied (and at open after a cached one). cache_path NULL: none. Never waits for etcd.
 */
cm_err co_users_open(const co_config *cfg, const char *cluster, const char *cache_path,
                     void (*changed)(void *arg), void *arg, co_users **out);
void co_users_free(co_users *f);
/* A copy of the applied version (empty before any). CM_OK or CM_ERR_NOMEM. Never waits. */
cm_err co_users_snapshot(co_users *f, co_users_doc *out);
/* co_users_change on the followed key with a client of its own, returning once this follower
 * applied it (at most CO_USERS_APPLY_WAIT_MS; later: logged, CM_OK). */
cm_err co_users_apply(co_users *f, const co_user_change *ch);

#endif
