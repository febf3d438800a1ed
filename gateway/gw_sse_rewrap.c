/*
 * gw_sse_rewrap.c - rotating the master key of encryption at rest (docs/encryption.md, "Rotating
 * the master key"): the pass that re-wraps every SSE-S3 data key (and access key secret) under the
 * primary master key, its progress, and the check at start that no key still in use is missing.
 *
 * Keys in use. A stored data key names the master key that wrapped it (its key id). The store
 * does not index them, so this module keeps the set of ids that may still wrap data keys: every
 * key that has been primary since the last finished pass (at the first start that keeps the set,
 * every key listed, since any may wrap older data keys). At start the primary joins the set;
 * an id of the set the server does not hold (the operator removed a key before a pass moved
 * its data keys) is logged as an error naming it: the server still serves everything else, and
 * a GET of an object under it answers 500 with a log line (gw_sse_part_key), never garbage. A
 * pass that finishes without error leaves the set {primary}: then, and only then, the older keys
 * can be removed from the key list.
 *
 * The pass. POST /admin/sse/rewrap starts it (409 while one runs); a thread walks the store with
 * md_rewrap_step, 256 records per transaction, each data key under another key unwrapped and
 * wrapped again under the primary in place (the bodies are not touched), and stores its cursor
 * and counts after every step, so a restart resumes a pass that was running where it stopped. At
 * the end of the walk md_rewrap_verify checks one snapshot of the whole store: a key that moved
 * behind the walk meanwhile (a Complete, a promoted version) starts another round, up to
 * REWRAP_ROUNDS; only a clean snapshot finishes the pass. A
 * key id the server does not hold stops the pass with an error naming the record and the key
 * (the pass never skips a key it cannot move, so it never declares an old key unused while it
 * is); POST again after fixing the key list resumes from the cursor. An upload's part record does
 * not say whether it is SSE-S3 or SSE-C: a key id outside the in-use set is taken as an SSE-C
 * key (wrapped under a customer's key) and left alone. The access keys' secrets (gw_users.c) are
 * wrapped under the master key too: the pass moves them as well (their last phase).
 *
 * On a cluster node (g->rp) the pass is cluster_main instead: every record of the node's store
 * (object, version and multipart records alike) read at quorum, its data keys re-wrapped and
 * written back with rp_object_swap_keep_lock (a racing client write wins; the next walk reads it;
 * a racing retention change is kept), walks
 * repeated until one moves nothing; then the access keys' secrets in the etcd users document
 * (gw_users_reseal: a compare-and-set from the secret read). Every replica of a record does this,
 * so one node's finished pass speaks for every record it holds whatever the others did. No
 * cursor: a resumed pass walks again from the start (a record under the primary costs one read).
 *
 * State (blob "sse-rewrap" of md_lc_state, big-endian): version 1 | u8 n | n x id[4] | u8
 * running | u8 failed | u8 phase | u16 cursor length | cursor | u64 records, keys, rewrapped |
 * u64 started_ms, finished_ms | u16 error length | error.
 *
 * Threading: mu guards the state; the worker copies it out to store it (md_write blocks). The
 * admin handlers run on the loop thread and only take mu.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cm_log.h"
#include "cm_mkey.h"
#include "cm_util.h"
#include "gw_int.h"
#include "gw_sse.h"

#define MOD "sse"
#define STATE_NAME "sse-rewrap"
#define STEP_RECORDS 256
#define ERR_MAX 300
#define REWRAP_ROUNDS 5 /* walks + verifications before a pass gives up on a moving store */

typedef struct {
    uint8_t nused;
    uint8_t used[CM_MKEY_MAX * 2][4]; /* ids that may still wrap data keys */
    uint8_t running, failed;
    md_rewrap_cursor cur;
    md_rewrap_counts n;
    int64_t started_ms, finished_ms;
    char err[ERR_MAX];
} rw_state;

struct gw_rewrap {
    gw *g;
    pthread_mutex_t mu;
    pthread_t th;
    int th_live, stop;
    rw_state st;
    uint8_t missing_id[4]; /* the key id the last failed step lacked (worker thread) */
    int missing;
};

/* ---- the stored state ---- */

static size_t state_encode(const rw_state *s, uint8_t *b)
{
    size_t o = 0;
    b[o++] = 1;
    b[o++] = s->nused;
    for (size_t i = 0; i < s->nused; i++, o += 4)
        memcpy(b + o, s->used[i], 4);
    b[o++] = s->running;
    b[o++] = s->failed;
    b[o++] = s->cur.phase;
    b[o++] = (uint8_t)(s->cur.after_len >> 8), b[o++] = (uint8_t)s->cur.after_len;
    memcpy(b + o, s->cur.after, s->cur.after_len);
    o += s->cur.after_len;
    const uint64_t nums[] = {s->n.records, s->n.keys, s->n.rewrapped, (uint64_t)s->started_ms,
                             (uint64_t)s->finished_ms};
    for (size_t i = 0; i < CM_ARRAY_LEN(nums); i++, o += 8)
        cm_put_be64(b + o, nums[i]);
    size_t el = strlen(s->err);
    b[o++] = (uint8_t)(el >> 8), b[o++] = (uint8_t)el;
    memcpy(b + o, s->err, el);
    return o + el;
}

/* The encoded state's largest size: the fields of the format above at their bounds. */
#define STATE_CAP                                                                                  \
    (2 + sizeof(((rw_state *)0)->used) + 5 + sizeof(((md_rewrap_cursor *)0)->after) + 5 * 8 + 2 +  \
     ERR_MAX)

/* Decode a stored state; CM_ERR_CORRUPT for anything out of bounds. */
static cm_err state_decode(const uint8_t *b, size_t len, rw_state *s)
{
    size_t o = 0;
    memset(s, 0, sizeof(*s));
#define NEED(n)                                                                                    \
    do {                                                                                           \
        if (len - o < (size_t)(n))                                                                 \
            return CM_ERR_CORRUPT;                                                                 \
    } while (0)
    NEED(2);
    if (b[o++] != 1)
        return CM_ERR_CORRUPT;
    s->nused = b[o++];
    if (s->nused > CM_ARRAY_LEN(s->used))
        return CM_ERR_CORRUPT;
    NEED(s->nused * 4u + 5);
    for (size_t i = 0; i < s->nused; i++, o += 4)
        memcpy(s->used[i], b + o, 4);
    s->running = b[o++];
    s->failed = b[o++];
    s->cur.phase = b[o++];
    s->cur.after_len = (size_t)b[o] << 8 | b[o + 1];
    o += 2;
    if (s->cur.phase > MD_REWRAP_DONE || s->cur.after_len > sizeof(s->cur.after))
        return CM_ERR_CORRUPT;
    NEED(s->cur.after_len + 5 * 8 + 2);
    memcpy(s->cur.after, b + o, s->cur.after_len);
    o += s->cur.after_len;
    uint64_t nums[5];
    for (size_t i = 0; i < 5; i++, o += 8)
        nums[i] = cm_get_be64(b + o);
    s->n.records = nums[0], s->n.keys = nums[1], s->n.rewrapped = nums[2];
    s->started_ms = (int64_t)nums[3], s->finished_ms = (int64_t)nums[4];
    size_t el = (size_t)b[o] << 8 | b[o + 1];
    o += 2;
    if (el >= sizeof(s->err))
        return CM_ERR_CORRUPT;
    NEED(el);
    memcpy(s->err, b + o, el);
#undef NEED
    return CM_OK;
}

static cm_err state_save(gw *g, const rw_state *s)
{
    uint8_t *b = malloc(STATE_CAP);
    if (!b)
        return CM_ERR_NOMEM;
    cm_err e = md_lc_state_set(g->md, STATE_NAME, b, state_encode(s, b));
    free(b);
    if (e != CM_OK)
        CM_ERROR(MOD, "cannot store the rewrap state: %s", cm_err_str(e));
    return e;
}

static int used_has(const rw_state *s, const uint8_t id[4])
{
    for (size_t i = 0; i < s->nused; i++)
        if (memcmp(s->used[i], id, 4) == 0)
            return 1;
    return 0;
}

/* ---- the pass ---- */

typedef enum { K_PRIMARY, K_MOVABLE, K_SSEC, K_MISSING } key_kind;

/* What a wrapped secret is to the pass (see the file-top comment). */
static key_kind classify(gw_rewrap *rw, const uint8_t *wrapped, size_t len, md_rewrap_kind kind)
{
    uint8_t id[4];
    if (!cm_mkey_wrapped_id(wrapped, len, id) || memcmp(id, rw->g->mkey.id, 4) == 0)
        return K_PRIMARY; /* (too short: the unwrap reports it as corrupt) */
    if (cm_mkey_knows(&rw->g->mkey, id))
        return K_MOVABLE;
    if (kind == MD_REWRAP_PART && !used_has(&rw->st, id))
        return K_SSEC; /* an SSE-C upload's part: under its customer's key */
    memcpy(rw->missing_id, id, 4);
    rw->missing = 1;
    return K_MISSING;
}

/* md_rewrap_fn of a step: one wrapped secret moved under the primary, with the context it was
 * wrapped with: a data key's, or an access key's secret (gw_users.c's CTX_PREFIX + access key). */
static cm_err rewrap_key(void *arg, uint8_t *wrapped, size_t len, md_rewrap_kind kind,
                         const char *name, int *changed)
{
    gw_rewrap *rw = arg;
    char ctx[96];
    *changed = 0;
    switch (classify(rw, wrapped, len, kind)) {
    case K_MOVABLE:
        if (kind == MD_REWRAP_USER)
            snprintf(ctx, sizeof(ctx), "cairn-user-secret:%s", name);
        else
            snprintf(ctx, sizeof(ctx), "sse-dek");
        return cm_mkey_rewrap(&rw->g->mkey, ctx, wrapped, len, changed);
    case K_MISSING:
        return CM_ERR_AUTH;
    default:
        return CM_OK;
    }
}

/* md_rewrap_fn of the verification: *changed when the secret is not under the primary. */
static cm_err check_key(void *arg, uint8_t *wrapped, size_t len, md_rewrap_kind kind,
                        const char *name, int *changed)
{
    key_kind k = classify(arg, wrapped, len, kind);
    (void)name;
    *changed = k == K_MOVABLE;
    return k == K_MISSING ? CM_ERR_AUTH : CM_OK;
}

/* A failed step: the state says why (for the admin API and the next start), logged. */
static void step_failed(gw_rewrap *rw, cm_err e, const char *bad)
{
    char idh[9] = "";
    if (rw->missing)
        cm_mkey_id_hex(rw->missing_id, idh);
    pthread_mutex_lock(&rw->mu);
    rw->st.running = 0;
    rw->st.failed = 1;
    if (rw->missing)
        snprintf(rw->st.err, sizeof(rw->st.err),
                 "%s: its key is wrapped under master key %s, which this server does not hold: "
                 "list that key after the primary and start the pass again (or, for an access "
                 "key k/..., delete it)",
                 bad, idh);
    else
        snprintf(rw->st.err, sizeof(rw->st.err), "%s: %s", bad[0] ? bad : "(store)", cm_err_str(e));
    rw_state copy = rw->st;
    pthread_mutex_unlock(&rw->mu);
    CM_ERROR(MOD, "master-key rewrap pass stopped: %s", copy.err);
    state_save(rw->g, &copy);
}

/*
 * The walk reached its end: verify the whole store in one snapshot. 1 when every data key is
 * under the primary; 0 when keys moved behind the walk (the cursor restarts: another round);
 * -1 on an error (the pass stopped, said by step_failed).
 */
static int verified(gw_rewrap *rw, md_rewrap_cursor *cur, int *rounds, char *bad, size_t cap)
{
    md_rewrap_counts v = {0};
    rw->missing = 0;
    cm_err e = md_rewrap_verify(rw->g->md, check_key, rw, &v, bad, cap);
    if (e == CM_OK && v.rewrapped == 0)
        return 1;
    if (e == CM_OK && ++*rounds >= REWRAP_ROUNDS) {
        snprintf(bad, cap, "(%" PRIu64 " data keys moved behind %d rounds)", v.rewrapped,
                 REWRAP_ROUNDS);
        e = CM_ERR_CONFLICT;
    }
    if (e != CM_OK) {
        step_failed(rw, e, bad);
        return -1;
    }
    CM_INFO(MOD, "master-key rewrap: %" PRIu64 " data keys moved behind the walk: another round",
            v.rewrapped);
    memset(cur, 0, sizeof(*cur));
    return 0;
}

/*
 * The pass's state after a step: its cursor, the counts added, and when done, the primary alone
 * in use (every data key is under it now: the others are unused); stored. 0, or -1 when it
 * cannot be stored (the pass stopped, said).
 */
static int progress(gw_rewrap *rw, const md_rewrap_cursor *cur, const md_rewrap_counts *add,
                    int done)
{
    pthread_mutex_lock(&rw->mu);
    rw->st.cur = *cur;
    rw->st.n.records += add->records;
    rw->st.n.keys += add->keys;
    rw->st.n.rewrapped += add->rewrapped;
    if (done) {
        rw->st.running = 0;
        rw->st.finished_ms = cm_now_ms();
        rw->st.nused = 1;
        memcpy(rw->st.used[0], rw->g->mkey.id, 4);
    }
    rw_state copy = rw->st;
    pthread_mutex_unlock(&rw->mu);
    if (state_save(rw->g, &copy) != CM_OK) {
        step_failed(rw, CM_ERR_IO, "(the pass's state)");
        return -1;
    }
    if (done)
        CM_INFO(MOD,
                "master-key rewrap pass finished: %" PRIu64 " records, %" PRIu64
                " data keys, %" PRIu64 " re-wrapped; every data key is under the primary",
                copy.n.records, copy.n.keys, copy.n.rewrapped);
    return 0;
}

static void *rewrap_main(void *arg)
{
    gw_rewrap *rw = arg;
    char bad[MD_BUCKET_MAX + MD_MAX_KEY + 64];
    int rounds = 0;
    for (;;) {
        pthread_mutex_lock(&rw->mu);
        int stop = rw->stop;
        md_rewrap_cursor cur = rw->st.cur;
        pthread_mutex_unlock(&rw->mu);
        if (stop)
            break; /* running stays set: the next start resumes from the stored cursor */
        md_rewrap_counts add = {0};
        rw->missing = 0;
        cm_err e =
            md_rewrap_step(rw->g->md, &cur, STEP_RECORDS, rewrap_key, rw, &add, bad, sizeof(bad));
        if (e != CM_OK) {
            step_failed(rw, e, bad);
            break;
        }
        int done = 0;
        if (cur.phase >= MD_REWRAP_DONE &&
            (done = verified(rw, &cur, &rounds, bad, sizeof(bad))) < 0)
            break;
        if (progress(rw, &cur, &add, done) != 0 || done)
            break;
    }
    return NULL;
}

/* ---- the pass on a cluster node ---- */

/* bucket/key for a message: bytes outside printable ASCII (the reserved keys' 0xFF) as '?'. */
static void rec_name(const char *bucket, const char *key, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", bucket, key);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
}

/*
 * One replicated record: read at quorum, every data key of its parts under another master key
 * re-wrapped, written back with rp_object_swap_keep_lock: the successor of exactly the version
 * read, so a client write that lands meanwhile wins on every replica (the swap then changes
 * nothing), and the next walk reads that write and checks it in turn. A multipart part record (FF
 * 'p') is classified as a single node's part is (an SSE-C part's key is under its customer's key).
 */
static cm_err cl_record(gw_rewrap *rw, const char *bucket, const char *key, md_rewrap_counts *n)
{
    md_rewrap_kind kind =
        (unsigned char)key[0] == 0xFF && key[1] == 'p' ? MD_REWRAP_PART : MD_REWRAP_SSE_S3;
    md_object o;
    uint64_t keys = 0, moved = 0;
    n->records++;
    cm_err e = rp_object_get(rw->g->rp, bucket, key, &o);
    if (e == CM_ERR_NOTFOUND)
        return CM_OK; /* deleted meanwhile (or a tombstone): nothing to move */
    if (e != CM_OK)
        return e;
    for (size_t i = 0; o.sse.mode != MD_SSE_C && e == CM_OK && i < o.nparts; i++) {
        md_part *p = &o.parts[i];
        int changed = 0;
        if (p->sse_key_len == 0)
            continue;
        keys++;
        e = rewrap_key(rw, p->sse_key, p->sse_key_len, kind, "", &changed);
        moved += changed != 0;
    }
    if (e == CM_OK && moved > 0)
        e = rp_object_swap_keep_lock(rw->g->rp, bucket, &o);
    md_object_release(&o);
    if (e == CM_OK) {
        n->keys += keys;
        n->rewrapped += moved;
    }
    return e;
}

static int cl_stopped(gw_rewrap *rw)
{
    pthread_mutex_lock(&rw->mu);
    int stop = rw->stop;
    pthread_mutex_unlock(&rw->mu);
    return stop;
}

/*
 * One walk over every record this node holds (every bucket's, the reserved FF keys of versions
 * and multipart records included: md_rec_list lists them all), each moved by cl_record. The
 * keys it moved into *moved. CM_ERR_CLOSED when stopped; any other error stopped the pass (said).
 */
static cm_err cl_walk(gw_rewrap *rw, uint64_t *moved)
{
    char bad[MD_BUCKET_MAX + MD_MAX_KEY + 2], from[MD_MAX_KEY + 1];
    md_bucket *bs = NULL;
    size_t nb = 0;
    cm_err e = md_bucket_list(rw->g->md, &bs, &nb);
    if (e != CM_OK) {
        step_failed(rw, e, "(the bucket list)");
        return e;
    }
    for (size_t b = 0; e == CM_OK && b < nb; b++) {
        from[0] = '\0';
        for (int more = 1; e == CM_OK && more;) {
            md_rec_info *infos = NULL;
            size_t n = 0;
            md_rewrap_counts add = {0};
            rw->missing = 0;
            snprintf(bad, sizeof(bad), "%s (its record list)", bs[b].name);
            e = md_rec_list(rw->g->md, bs[b].name, from[0] ? from : NULL, STEP_RECORDS, &infos, &n,
                            &more);
            for (size_t i = 0; e == CM_OK && i < n; i++) {
                if (cl_stopped(rw)) /* (a record's reads may wait for peers: look at each) */
                    e = CM_ERR_CLOSED;
                else if (!infos[i].tombstone &&
                         (e = cl_record(rw, bs[b].name, infos[i].key, &add)) != CM_OK)
                    rec_name(bs[b].name, infos[i].key, bad, sizeof(bad));
            }
            if (e == CM_OK && n > 0)
                snprintf(from, sizeof(from), "%s", infos[n - 1].key);
            md_rec_infos_free(infos, n);
            more = more && n > 0;
            *moved += add.rewrapped;
            if (e == CM_ERR_CLOSED)
                break; /* stopped: running stays set, the next start walks again */
            if (e != CM_OK)
                step_failed(rw, e, bad);
            else if (progress(rw, &(md_rewrap_cursor){.phase = MD_REWRAP_OBJECTS}, &add, 0) != 0)
                e = CM_ERR_IO;
        }
    }
    free(bs);
    return e;
}

/*
 * The pass of a cluster node: walks until one moves nothing (a key that moved behind a walk, by
 * a Complete or a promoted version, is found by the next), at most REWRAP_ROUNDS; then the
 * access keys' secrets, which live in the users document in etcd (re-wrapped there by a
 * compare-and-set on the secret read, gw_users_reseal), until a look moves none.
 */
static void *cluster_main(void *arg)
{
    gw_rewrap *rw = arg;
    char bad[MD_ACCESS_KEY_MAX + 20] = "(the access keys)";
    md_rewrap_counts none = {0};
    for (int round = 0;; round++) {
        uint64_t moved = 0;
        if (round == REWRAP_ROUNDS) {
            step_failed(rw, CM_ERR_CONFLICT, "(data keys still moved after every round)");
            return NULL;
        }
        if (cl_walk(rw, &moved) != CM_OK)
            return NULL; /* stopped (running stays set: the next start resumes) or failed */
        if (moved == 0)
            break;
        CM_INFO(MOD, "master-key rewrap: %" PRIu64 " data keys moved in round %d: another round",
                moved, round + 1);
    }
    for (int round = 0;; round++) {
        md_rewrap_counts add = {0};
        rw->missing = 0;
        cm_err e = round == REWRAP_ROUNDS
                       ? CM_ERR_CONFLICT
                       : gw_users_reseal(rw->g, rewrap_key, rw, &add.rewrapped, bad, sizeof(bad));
        if (e != CM_OK) {
            step_failed(rw, e, bad);
            return NULL;
        }
        if (add.rewrapped == 0)
            break;
        if (progress(rw, &(md_rewrap_cursor){.phase = MD_REWRAP_USERS}, &add, 0) != 0)
            return NULL;
    }
    progress(rw, &(md_rewrap_cursor){.phase = MD_REWRAP_DONE}, &none, 1);
    return NULL;
}

/* Start the worker thread (mu held, none running). */
static cm_err spawn(gw_rewrap *rw)
{
    if (rw->th_live) {
        pthread_join(rw->th, NULL); /* the last pass's thread, finished */
        rw->th_live = 0;
    }
    if (pthread_create(&rw->th, NULL, rw->g->rp ? cluster_main : rewrap_main, rw) != 0)
        return CM_ERR_NOMEM;
    rw->th_live = 1;
    return CM_OK;
}

/* ---- start, stop, admin ---- */

/* The check at start: the primary joins the in-use set; ids of it not held are logged. */
static cm_err check_keys(gw_rewrap *rw)
{
    char idh[9];
    rw_state *s = &rw->st;
    if (!used_has(s, rw->g->mkey.id) && s->nused == CM_ARRAY_LEN(s->used)) {
        CM_ERROR(MOD,
                 "%zu master keys have been primary since the last finished rewrap pass: start "
                 "with one of them as the primary and run `cairn admin sse rewrap` first",
                 CM_ARRAY_LEN(s->used));
        return CM_ERR_TOOBIG; /* never a primary whose use is not tracked */
    }
    if (!used_has(s, rw->g->mkey.id))
        memcpy(s->used[s->nused++], rw->g->mkey.id, 4);
    for (size_t i = 0; i < s->nused; i++) {
        if (cm_mkey_knows(&rw->g->mkey, s->used[i]))
            continue;
        cm_mkey_id_hex(s->used[i], idh);
        CM_ERROR(MOD,
                 "master key %s may still wrap SSE-S3 data keys or access key secrets (no "
                 "rewrap pass has finished since it was the primary) but is not in the key list: "
                 "objects under it answer 500, access keys under it are refused, until it is "
                 "listed again after the primary (%s or master_key_file; docs/encryption.md, "
                 "\"Rotating the master key\")",
                 idh, CM_MKEY_ENV);
    }
    return CM_OK;
}

cm_err gw_rewrap_start(gw *g, gw_rewrap **out)
{
    void *blob = NULL;
    size_t len = 0;
    *out = NULL;
    if (!g->have_mkey)
        return CM_OK; /* no SSE-S3 here: nothing to rotate */
    gw_rewrap *rw = calloc(1, sizeof(*rw));
    if (!rw)
        return CM_ERR_NOMEM;
    rw->g = g;
    pthread_mutex_init(&rw->mu, NULL);
    cm_err e = md_lc_state_get(g->md, STATE_NAME, &blob, &len);
    if (e == CM_OK && state_decode(blob, len, &rw->st) != CM_OK) {
        CM_ERROR(MOD, "the stored rewrap state is damaged: starting a fresh one");
        memset(&rw->st, 0, sizeof(rw->st));
    } else if (e != CM_OK && e != CM_ERR_NOTFOUND) {
        CM_ERROR(MOD, "cannot read the rewrap state: %s", cm_err_str(e));
        free(rw);
        return e;
    }
    free(blob);
    int fresh = e == CM_ERR_NOTFOUND;
    if (fresh) { /* the first start that tracks keys: all listed may be in use */
        memcpy(rw->st.used[rw->st.nused++], g->mkey.id, 4);
        for (size_t i = 0; i < g->mkey.nold; i++)
            memcpy(rw->st.used[rw->st.nused++], g->mkey.old_id[i], 4);
    }
    uint8_t nused = rw->st.nused;
    e = check_keys(rw);
    /* stored only when it changed: a plain restart writes nothing (a full disk still starts) */
    if (e == CM_OK && (fresh || rw->st.nused != nused))
        e = state_save(g, &rw->st);
    if (e == CM_OK && rw->st.running) {
        CM_INFO(MOD, "resuming the master-key rewrap pass");
        e = spawn(rw);
    }
    if (e != CM_OK) {
        pthread_mutex_destroy(&rw->mu);
        free(rw);
        return e;
    }
    g->rewrap = rw;
    *out = rw;
    return CM_OK;
}

void gw_rewrap_stop(gw *g, gw_rewrap *rw)
{
    if (!rw)
        return;
    pthread_mutex_lock(&rw->mu);
    rw->stop = 1;
    pthread_mutex_unlock(&rw->mu);
    if (rw->th_live)
        pthread_join(rw->th, NULL);
    g->rewrap = NULL;
    pthread_mutex_destroy(&rw->mu);
    free(rw);
}

static void json_ids(struct evbuffer *b, const char *name, const rw_state *s, const cm_mkey *mk,
                     int want_held, int all)
{
    char idh[9];
    int first = 1;
    evbuffer_add_printf(b, ",\"%s\":[", name);
    for (size_t i = 0; i < s->nused; i++) {
        if (!all && cm_mkey_knows(mk, s->used[i]) != want_held)
            continue;
        cm_mkey_id_hex(s->used[i], idh);
        evbuffer_add_printf(b, "%s\"%s\"", first ? "" : ",", idh);
        first = 0;
    }
    evbuffer_add(b, "]", 1);
}

static void status_json(gw_rewrap *rw, struct evbuffer *b)
{
    static const char *const phases[] = {"objects", "versions", "uploads", "users", "done"};
    char idh[9];
    pthread_mutex_lock(&rw->mu);
    rw_state s = rw->st;
    pthread_mutex_unlock(&rw->mu);
    const cm_mkey *mk = &rw->g->mkey;
    cm_mkey_id_hex(mk->id, idh);
    evbuffer_add_printf(b, "{\"primary\":\"%s\",\"cluster\":%s,\"loaded\":[\"%s\"", idh,
                        rw->g->rp ? "true" : "false", idh);
    for (size_t i = 0; i < mk->nold; i++) {
        cm_mkey_id_hex(mk->old_id[i], idh);
        evbuffer_add_printf(b, ",\"%s\"", idh);
    }
    evbuffer_add(b, "]", 1);
    json_ids(b, "in_use", &s, mk, 1, 1);
    json_ids(b, "missing", &s, mk, 0, 0);
    evbuffer_add_printf(b,
                        ",\"running\":%s,\"failed\":%s,\"phase\":\"%s\",\"records\":%" PRIu64
                        ",\"keys\":%" PRIu64 ",\"rewrapped\":%" PRIu64 ",\"started_ms\":%" PRId64
                        ",\"finished_ms\":%" PRId64 ",\"error\":\"",
                        s.running ? "true" : "false", s.failed ? "true" : "false",
                        phases[s.cur.phase <= MD_REWRAP_DONE ? s.cur.phase : MD_REWRAP_DONE],
                        s.n.records, s.n.keys, s.n.rewrapped, s.started_ms, s.finished_ms);
    for (const char *p = s.err; *p; p++) /* keys are the client's: escape what JSON needs */
        if (*p == '"' || *p == '\\')
            evbuffer_add_printf(b, "\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            evbuffer_add_printf(b, "\\u%04x", (unsigned)(unsigned char)*p);
        else
            evbuffer_add(b, p, 1);
    evbuffer_add(b, "\"}\n", 3);
}

/* POST: start (or resume a stopped or failed) pass. 0 started, or the HTTP status to answer. */
static int start_pass(gw_rewrap *rw)
{
    int status = 0;
    pthread_mutex_lock(&rw->mu);
    if (rw->st.running) {
        status = 409;
    } else {
        if (!rw->st.failed || rw->st.cur.phase >= MD_REWRAP_DONE) { /* a new pass */
            memset(&rw->st.cur, 0, sizeof(rw->st.cur));
            memset(&rw->st.n, 0, sizeof(rw->st.n));
            rw->st.started_ms = cm_now_ms();
            rw->st.finished_ms = 0;
        }
        rw->st.running = 1;
        rw->st.failed = 0;
        rw->st.err[0] = '\0';
        if (spawn(rw) != CM_OK) {
            rw->st.running = 0;
            status = 503;
        }
    }
    pthread_mutex_unlock(&rw->mu);
    return status;
}

void gw_rewrap_admin(gw_req *r, int post)
{
    gw_rewrap *rw = r->g->rewrap;
    if (!rw) {
        gw_admin_json(r, 503, "NoMasterKey", GW_SSE_NO_MKEY_MSG);
        return;
    }
    int status = post ? start_pass(rw) : 0;
    if (status == 409) {
        gw_admin_json(r, 409, "RewrapRunning", "a rewrap pass is already running");
        return;
    }
    if (status) {
        gw_admin_json(r, status, "RewrapUnavailable", "cannot start the rewrap thread");
        return;
    }
    if (post)
        CM_INFO(MOD, "req=%s master-key rewrap pass requested", r->id);
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        net_req_abort(r->net);
        return;
    }
    status_json(rw, b);
    gw_admin_send(r, post ? 202 : 200, "application/json", b);
    evbuffer_free(b);
}
