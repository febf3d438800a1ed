/*
 * co_kv.c - etcd's v3 key-value and lease calls over its JSON gateway.
 *
 * Wire format (etcd 3.4): POST /v3/kv/range|put|deleterange|txn|compaction, /v3/lease/grant|
 * keepalive|revoke, /v3/maintenance/status with a JSON body. Keys and values are base64; 64-bit
 * numbers are sent and received as decimal strings; fields equal to their default (0, false, empty)
 * are left out of answers, so "absent" reads as 0. Answers use the protobuf field names
 * (create_revision, response_range); the camelCase spelling is accepted as well.
 *
 * Which calls may be repeated on another endpoint after a lost answer: reads, puts of a fixed
 * value, deletes and lease calls (a repeated grant only leaks a lease that expires). Transactions
 * are not: a compare-and-set whose answer was lost is CM_ERR_UNCERTAIN to the caller.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cm_log.h"
#include "cm_util.h"
#include "co_int.h"

struct co_client {
    co_http *http;
};

cm_err co_config_parse(const char *list, co_config *cfg, char **storage)
{
    char *copy = strdup(list), *save = NULL;
    if (!copy)
        return CM_ERR_NOMEM;
    memset(cfg, 0, sizeof(*cfg));
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (cfg->n_endpoints == CO_MAX_ENDPOINTS) {
            free(copy);
            return CM_ERR_TOOBIG;
        }
        cfg->endpoints[cfg->n_endpoints++] = tok;
    }
    if (cfg->n_endpoints == 0) {
        free(copy);
        return CM_ERR_INVAL;
    }
    *storage = copy;
    return CM_OK;
}

cm_err co_key(char *out, size_t cap, const char *cluster, const char *kind, const char *name)
{
    if (!cm_ident_ok(cluster, 0) || !cm_ident_ok(kind, 0) || (name && strchr(name, '/')))
        return CM_ERR_INVAL;
    int n = name ? snprintf(out, cap, "/cairn/%s/%s/%s", cluster, kind, name)
                 : snprintf(out, cap, "/cairn/%s/%s", cluster, kind);
    return n >= 0 && (size_t)n < cap ? CM_OK : CM_ERR_TOOBIG;
}

cm_err co_client_new(const co_config *cfg, co_client **out)
{
    co_client *c = calloc(1, sizeof(*c));
    if (!c)
        return CM_ERR_NOMEM;
    cm_err e = co_http_new(cfg, &c->http);
    if (e != CM_OK) {
        free(c);
        return e;
    }
    *out = c;
    return CM_OK;
}

void co_client_free(co_client *c)
{
    if (!c)
        return;
    co_http_free(c->http);
    free(c);
}

const char *co_client_endpoint(const co_client *c)
{
    return co_http_endpoint(c->http);
}

void co_deadline(struct timespec *until, int timeout_ms)
{
    clock_gettime(CLOCK_REALTIME, until);
    until->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    until->tv_sec += timeout_ms / 1000 + until->tv_nsec / 1000000000L;
    until->tv_nsec %= 1000000000L;
}

cm_err co_wait_version(pthread_mutex_t *mu, pthread_cond_t *cv, int timeout_ms,
                       int (*reached)(const void *arg, uint64_t target), const void *arg,
                       uint64_t target)
{
    struct timespec until;
    co_deadline(&until, timeout_ms);
    cm_err e = CM_OK;
    pthread_mutex_lock(mu);
    while (!reached(arg, target) && e == CM_OK)
        if (pthread_cond_timedwait(cv, mu, &until) == ETIMEDOUT)
            e = CM_ERR_TIMEOUT;
    pthread_mutex_unlock(mu);
    return e;
}

cm_err co_config_copy(co_config *dst, char **storage, const co_config *src)
{
    *dst = *src;
    for (int i = 0; i < src->n_endpoints; i++) {
        if (!(storage[i] = strdup(src->endpoints[i])))
            return CM_ERR_NOMEM;
        dst->endpoints[i] = storage[i];
    }
    return CM_OK;
}

int co_sleep(int ms, const atomic_int *stop)
{
    while (ms > 0) {
        if (stop && atomic_load(stop))
            return 1;
        int step = CM_MIN(ms, 50);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return stop && atomic_load(stop);
}

char *co_b64(const void *data, size_t len)
{
    char *s = malloc(cm_base64_len(len) + 1);
    if (s)
        cm_base64_encode(data, len, s);
    return s;
}

int64_t co_json_i64(json_t *obj, const char *name)
{
    json_t *v = obj ? json_object_get(obj, name) : NULL;
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

/* A field under either spelling ("create_revision" or "createRevision"). */
static json_t *field2(json_t *obj, const char *name, const char *camel)
{
    json_t *v = json_object_get(obj, name);
    return v ? v : json_object_get(obj, camel);
}

static int64_t i64_2(json_t *obj, const char *name, const char *camel)
{
    return json_object_get(obj, name) ? co_json_i64(obj, name) : co_json_i64(obj, camel);
}

static cm_err b64_field(json_t *obj, const char *name, uint8_t **out, size_t *len, int nul)
{
    const char *s = json_string_value(json_object_get(obj, name));
    size_t slen = s ? strlen(s) : 0;
    uint8_t *buf = malloc(slen / 4 * 3 + 1);
    if (!buf)
        return CM_ERR_NOMEM;
    *len = 0;
    if (slen && cm_base64_decode(s, slen, buf, slen / 4 * 3 + 1, len) != CM_OK) {
        free(buf);
        CM_WARN("coord", "etcd answer: bad base64 in %s", name);
        return CM_ERR_CORRUPT;
    }
    if (nul)
        buf[*len] = '\0';
    *out = buf;
    return CM_OK;
}

cm_err co_json_kv(json_t *obj, co_kv *out)
{
    memset(out, 0, sizeof(*out));
    size_t klen;
    cm_err e = b64_field(obj, "key", (uint8_t **)&out->key, &klen, 1);
    if (e == CM_OK)
        e = b64_field(obj, "value", &out->value, &out->len, 1);
    if (e != CM_OK) {
        co_kv_release(out);
        return e;
    }
    out->create_rev = i64_2(obj, "create_revision", "createRevision");
    out->mod_rev = i64_2(obj, "mod_revision", "modRevision");
    out->version = co_json_i64(obj, "version");
    out->lease = co_json_i64(obj, "lease");
    return CM_OK;
}

void co_kv_release(co_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

void co_kvs_release(co_kvs *kvs)
{
    for (size_t i = 0; i < kvs->n; i++)
        co_kv_release(&kvs->kvs[i]);
    free(kvs->kvs);
    memset(kvs, 0, sizeof(*kvs));
}

/* POST req (consumed) and parse the answer into *resp. */
static cm_err call(co_client *c, const char *path, json_t *req, int idempotent, json_t **resp)
{
    if (!req)
        return CM_ERR_NOMEM;
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body)
        return CM_ERR_NOMEM;
    char *text = NULL;
    size_t len = 0;
    cm_err e = co_http_post(c->http, path, body, idempotent, &text, &len);
    free(body);
    if (e != CM_OK)
        return e;
    json_error_t jerr;
    *resp = json_loadb(text, len, 0, &jerr);
    if (!*resp)
        CM_WARN("coord", "etcd %s: unparsable answer (%s): %.200s", path, jerr.text, text);
    free(text);
    return *resp ? CM_OK : CM_ERR_CORRUPT;
}

static json_t *jstr_b64(const void *data, size_t len)
{
    char *s = co_b64(data, len);
    json_t *j = s ? json_string(s) : NULL;
    free(s);
    return j;
}

static json_t *jstr_i64(int64_t v)
{
    char s[24];
    snprintf(s, sizeof(s), "%" PRId64, v);
    return json_string(s);
}

static json_t *key_obj(const char *key)
{
    json_t *o = json_object();
    if (o)
        json_object_set_new(o, "key", jstr_b64(key, strlen(key)));
    return o;
}

/* {"key", "range_end"} selecting every key that starts with prefix. */
static json_t *prefix_obj(const char *prefix)
{
    size_t n = strlen(prefix);
    uint8_t *end = malloc(n + 1);
    json_t *o = key_obj(prefix);
    if (!end || !o) {
        free(end);
        json_decref(o);
        return NULL;
    }
    memcpy(end, prefix, n);
    while (n > 0 && end[n - 1] == 0xff)
        n--;
    if (n > 0) {
        end[n - 1]++;
        json_object_set_new(o, "range_end", jstr_b64(end, n));
    } else { /* "\0" as range_end means every key from key on */
        json_object_set_new(o, "range_end", jstr_b64("", 1));
    }
    free(end);
    return o;
}

static json_t *put_obj(const char *key, const void *value, size_t len, int64_t lease)
{
    json_t *o = key_obj(key);
    if (!o)
        return NULL;
    json_object_set_new(o, "value", jstr_b64(value, len));
    if (lease)
        json_object_set_new(o, "lease", jstr_i64(lease));
    return o;
}

static int64_t header_rev(json_t *resp)
{
    return co_json_i64(json_object_get(resp, "header"), "revision");
}

static cm_err parse_kvs(json_t *arr, co_kvs *out)
{
    size_t n = json_array_size(arr);
    out->n = 0;
    out->kvs = n ? calloc(n, sizeof(co_kv)) : NULL;
    if (n && !out->kvs)
        return CM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        cm_err e = co_json_kv(json_array_get(arr, i), &out->kvs[i]);
        if (e != CM_OK) {
            co_kvs_release(out);
            return e;
        }
        out->n++;
    }
    return CM_OK;
}

cm_err co_get(co_client *c, const char *key, co_kv *out, int64_t *rev)
{
    json_t *resp = NULL;
    cm_err e = call(c, "/v3/kv/range", key_obj(key), 1, &resp);
    if (e != CM_OK)
        return e;
    if (rev)
        *rev = header_rev(resp);
    json_t *kvs = json_object_get(resp, "kvs");
    if (json_array_size(kvs) == 0)
        e = CM_ERR_NOTFOUND;
    else
        e = co_json_kv(json_array_get(kvs, 0), out);
    json_decref(resp);
    return e;
}

cm_err co_range_prefix(co_client *c, const char *prefix, int64_t limit, co_kvs *out)
{
    json_t *req = prefix_obj(prefix), *resp = NULL;
    if (req && limit > 0)
        json_object_set_new(req, "limit", jstr_i64(limit));
    memset(out, 0, sizeof(*out));
    cm_err e = call(c, "/v3/kv/range", req, 1, &resp);
    if (e != CM_OK)
        return e;
    out->revision = header_rev(resp);
    e = parse_kvs(json_object_get(resp, "kvs"), out);
    json_decref(resp);
    return e;
}

cm_err co_put(co_client *c, const char *key, const void *value, size_t len, int64_t lease,
              int64_t *rev)
{
    json_t *resp = NULL;
    cm_err e = call(c, "/v3/kv/put", put_obj(key, value, len, lease), 1, &resp);
    if (e != CM_OK)
        return e;
    if (rev)
        *rev = header_rev(resp);
    json_decref(resp);
    return CM_OK;
}

cm_err co_delete(co_client *c, const char *key, int prefix, int64_t *deleted)
{
    json_t *resp = NULL;
    cm_err e = call(c, "/v3/kv/deleterange", prefix ? prefix_obj(key) : key_obj(key), 1, &resp);
    if (e != CM_OK)
        return e;
    if (deleted)
        *deleted = co_json_i64(resp, "deleted");
    json_decref(resp);
    return CM_OK;
}

/* One compare {"key", "target", "result": EQUAL, <field>: value}. */
static json_t *compare(const char *key, const char *target, const char *field, int64_t value)
{
    json_t *o = key_obj(key);
    if (!o)
        return NULL;
    json_object_set_new(o, "target", json_string(target));
    json_object_set_new(o, "result", json_string("EQUAL"));
    json_object_set_new(o, field, jstr_i64(value));
    return o;
}

static json_t *op(const char *kind, json_t *arg)
{
    return arg ? json_pack("{s:o}", kind, arg) : NULL;
}

/*
 * Run a transaction of one compare; ops are arrays (consumed; NULL only when building one ran out
 * of memory, never sent as "no ops"). *succeeded tells which branch ran; *range receives the kvs
 * of the last range answer in it (none: empty).
 */
static cm_err txn(co_client *c, json_t *cmp, json_t *success, json_t *failure, int *succeeded,
                  co_kvs *range, int64_t *rev)
{
    json_t *req = json_object(), *resp = NULL;
    memset(range, 0, sizeof(*range));
    if (!req || !cmp || !success || !failure) {
        json_decref(req);
        json_decref(cmp);
        json_decref(success);
        json_decref(failure);
        return CM_ERR_NOMEM;
    }
    json_object_set_new(req, "compare", json_pack("[o]", cmp));
    json_object_set_new(req, "success", success);
    json_object_set_new(req, "failure", failure);
    cm_err e = call(c, "/v3/kv/txn", req, 0, &resp);
    if (e != CM_OK)
        return e;
    *succeeded = json_is_true(json_object_get(resp, "succeeded"));
    if (rev)
        *rev = header_rev(resp);
    json_t *rs = json_object_get(resp, "responses"), *last = NULL;
    for (size_t i = 0; i < json_array_size(rs); i++) {
        json_t *r = field2(json_array_get(rs, i), "response_range", "responseRange");
        if (r)
            last = r;
    }
    if (last)
        e = parse_kvs(json_object_get(last, "kvs"), range);
    json_decref(resp);
    return e;
}

cm_err co_cas(co_client *c, const char *key, const void *value, size_t len, int64_t expect_rev,
              int64_t lease, int64_t *new_rev)
{
    int ok = 0;
    co_kvs cur;
    int64_t rev = 0;
    cm_err e = txn(c, compare(key, "MOD", "mod_revision", expect_rev),
                   json_pack("[o]", op("requestPut", put_obj(key, value, len, lease))),
                   json_pack("[o]", op("requestRange", key_obj(key))), &ok, &cur, &rev);
    if (e != CM_OK)
        return e;
    if (new_rev)
        *new_rev = ok ? rev : (cur.n ? cur.kvs[0].mod_rev : 0);
    co_kvs_release(&cur);
    return ok ? CM_OK : CM_ERR_CONFLICT;
}

cm_err co_leader_acquire(co_client *c, const char *key, int64_t lease, const void *value,
                         size_t len, int64_t *token)
{
    int ok = 0;
    co_kvs cur;
    cm_err e = txn(c, compare(key, "CREATE", "create_revision", 0),
                   json_pack("[oo]", op("requestPut", put_obj(key, value, len, lease)),
                             op("requestRange", key_obj(key))),
                   json_pack("[o]", op("requestRange", key_obj(key))), &ok, &cur, NULL);
    if (e != CM_OK)
        return e;
    if (cur.n == 0) { /* the holder's lease expired between compare and read: cannot happen */
        co_kvs_release(&cur);
        return CM_ERR_INTERNAL;
    }
    *token = cur.kvs[0].create_rev;
    int mine = ok || cur.kvs[0].lease == lease;
    co_kvs_release(&cur);
    return mine ? CM_OK : CM_ERR_EXISTS;
}

cm_err co_leader_release(co_client *c, const char *key, int64_t token)
{
    int ok = 0;
    co_kvs none;
    cm_err e = txn(c, compare(key, "CREATE", "create_revision", token),
                   json_pack("[o]", op("requestDeleteRange", key_obj(key))), json_array(), &ok,
                   &none, NULL);
    co_kvs_release(&none);
    if (e != CM_OK)
        return e;
    return ok ? CM_OK : CM_ERR_PRECONDITION;
}

cm_err co_fenced_put(co_client *c, const char *leader_key, int64_t token, const char *key,
                     const void *value, size_t len, int64_t *rev)
{
    int ok = 0;
    co_kvs none;
    cm_err e = txn(c, compare(leader_key, "CREATE", "create_revision", token),
                   json_pack("[o]", op("requestPut", put_obj(key, value, len, 0))), json_array(),
                   &ok, &none, rev);
    co_kvs_release(&none);
    if (e != CM_OK)
        return e;
    return ok ? CM_OK : CM_ERR_PRECONDITION;
}

cm_err co_compact(co_client *c, int64_t rev)
{
    json_t *req = json_object(), *resp = NULL;
    if (req) {
        json_object_set_new(req, "revision", jstr_i64(rev));
        json_object_set_new(req, "physical", json_true());
    }
    cm_err e = call(c, "/v3/kv/compaction", req, 1, &resp);
    json_decref(resp);
    return e;
}

static uint64_t u64_field(json_t *obj, const char *name, const char *camel)
{
    json_t *v = field2(obj, name, camel);
    if (json_is_string(v))
        return strtoull(json_string_value(v), NULL, 10);
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

cm_err co_status(co_client *c, co_status_info *out)
{
    json_t *resp = NULL;
    cm_err e = call(c, "/v3/maintenance/status", json_object(), 1, &resp);
    if (e != CM_OK)
        return e;
    json_t *hdr = json_object_get(resp, "header");
    memset(out, 0, sizeof(*out));
    out->member_id = u64_field(hdr, "member_id", "memberId");
    out->leader_id = u64_field(resp, "leader", "leader");
    out->revision = co_json_i64(hdr, "revision");
    out->raft_term = i64_2(hdr, "raft_term", "raftTerm");
    out->db_size = i64_2(resp, "dbSize", "db_size");
    const char *v = json_string_value(json_object_get(resp, "version"));
    snprintf(out->version, sizeof(out->version), "%s", v ? v : "?");
    json_decref(resp);
    return CM_OK;
}

/* A lease call whose request is the one number {name: v}. */
static cm_err lease_call(co_client *c, const char *path, const char *name, int64_t v, json_t **resp)
{
    json_t *req = json_object();
    if (req)
        json_object_set_new(req, name, jstr_i64(v));
    return call(c, path, req, 1, resp);
}

cm_err co_lease_grant(co_client *c, int64_t ttl, int64_t *id)
{
    json_t *resp = NULL;
    cm_err e = lease_call(c, "/v3/lease/grant", "TTL", ttl, &resp);
    if (e != CM_OK)
        return e;
    *id = co_json_i64(resp, "ID");
    const char *err = json_string_value(json_object_get(resp, "error"));
    if (*id == 0 || (err && *err)) {
        CM_WARN("coord", "etcd lease grant refused: %s", err ? err : "no id");
        e = CM_ERR_UNAVAILABLE;
    }
    json_decref(resp);
    return e;
}

cm_err co_lease_keepalive(co_client *c, int64_t id, int64_t *ttl_left)
{
    json_t *resp = NULL;
    cm_err e = lease_call(c, "/v3/lease/keepalive", "ID", id, &resp);
    if (e != CM_OK)
        return e;
    /* the gateway frames this streaming call's single answer as {"result": {...}} */
    json_t *res = json_object_get(resp, "result");
    int64_t ttl = co_json_i64(res ? res : resp, "TTL");
    if (ttl_left)
        *ttl_left = ttl;
    json_decref(resp);
    return ttl > 0 ? CM_OK : CM_ERR_NOTFOUND;
}

cm_err co_lease_revoke(co_client *c, int64_t id)
{
    json_t *resp = NULL;
    cm_err e = lease_call(c, "/v3/lease/revoke", "ID", id, &resp);
    json_decref(resp);
    return e;
}

cm_err co_member_register(co_client *c, const char *prefix, const char *name, const void *value,
                          size_t len, int64_t lease)
{
    size_t plen = strlen(prefix), nlen = strlen(name);
    char *key = malloc(plen + nlen + 1);
    if (!key)
        return CM_ERR_NOMEM;
    memcpy(key, prefix, plen);
    memcpy(key + plen, name, nlen + 1);
    cm_err e = co_put(c, key, value, len, lease, NULL);
    free(key);
    return e;
}

cm_err co_member_list(co_client *c, const char *prefix, co_kvs *out)
{
    return co_range_prefix(c, prefix, 0, out);
}
