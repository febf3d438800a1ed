/*
 * nd_env.h - the fixture of the node RPC tests (test_node.c; test_node_parts.c: a node's cells of
 * a stripe in one call, rot on a drive, bad answers to reads): storage nodes (an nd_service on a
 * net_server, each in its own thread, with NDRIVES real blobstores in a scratch directory) under
 * one cluster secret; RPC clients on the test thread's event loop (tloop), whose calls run the
 * loop until every expected callback came (a 10 s guard fails a hang); synchronous calls that
 * hand back their result (tres); calls signed by hand; and fake peers on the client's loop.
 */
#ifndef ND_ENV_H
#define ND_ENV_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "nd.h"

/* The cluster secret of the nodes and the tests' clients: SECRET_LEN bytes, then a NUL. */
#define SECRET_LEN 24
extern const uint8_t secret[SECRET_LEN + 1];
#define NDRIVES 2

/* nd_sign under the tests' secret. */
void sign(const nd_canon *c, char sig[65]);

/* ---- nodes ---- */

typedef struct {
    char id[16];
    char dirs[NDRIVES][300];
    bs_store *bs[NDRIVES];
    nd_service *svc;
    net_server *srv;
    pthread_t th;
    int port;
} tnode;

extern const bs_io *node_io; /* the I/O table of the next nodes' drives (NULL: POSIX) */

/* Start a node with NDRIVES drives; drive `offline` (or -1) is given without a store;
 * sync_threads as in nd_service_config (0: workers, -1: inline). */
void node_start(tnode *n, const char *id, int offline, int sync_threads);
/* Stop the node (1 s grace), join its thread, free its service and close its stores. */
void node_stop(tnode *n);
/* The node as a peer on 127.0.0.1. */
nd_peer peer_of(const tnode *n);

/* ---- the client loop ---- */

typedef struct {
    struct event_base *base;
    nd_client *cl;
    int pending;
    int hung;
} tloop;

/* Timer callback: mark the loop (arg) hung. */
void guard_cb(evutil_socket_t fd, short what, void *arg);
/* A loop with a client calling as node, through faults (or NULL), clock_off seconds off, under
 * key, with an io timeout of io_timeout_ms. */
void loop_init(tloop *l, const char *node, nd_faults *faults, int64_t clock_off, const uint8_t *key,
               size_t keylen, int io_timeout_ms);
/* A loop with a client "client" under the tests' secret (2 s io timeout). */
void loop_default(tloop *l);
/* Run until every pending call ended (or the 10 s guard). */
void loop_run(tloop *l);
/* Free the client and the loop. */
void loop_free(tloop *l);

/* ---- call results ---- */

typedef struct {
    tloop *l;
    int done;
    nd_result res;
    char msg[256];
    nd_node_info info;
    struct evbuffer *data;
    size_t max_buffered; /* largest data buffer handed to us */
    int holds;           /* leave the data this many more times (backpressure) */
    int64_t ended_ms;
} tres;

/* Ready r for one call on l (l's pending count up by one); free its data buffer. */
void tres_init(tres *r, tloop *l);
void tres_release(tres *r);

/* The last list page done_cb saw (a result's list is valid during its callback only). */
extern nd_chunk_ent list_copy[ND_LIST_MAX];

/* A call ended: its result (message, info and list copied) into the tres arg, pending down. */
void done_cb(void *arg, const nd_result *res);
/* Read data for the tres arg: kept in its data buffer, or left (resumed later) while it holds. */
void data_cb(void *arg, nd_op *op, struct evbuffer *data);

/* n pseudo-random bytes (xorshift) from seed. */
void fill(uint8_t *p, size_t n, uint64_t seed);
/* A chunk id made from i (another for every i). */
bs_id make_id(uint32_t i);

/* Append buf[0..len) at off synchronously; returns the result. */
nd_result do_append(tloop *l, const tnode *n, uint32_t drive, const bs_id *id, uint64_t off,
                    const uint8_t *buf, size_t len, uint32_t crc);
/* Stat a chunk synchronously; returns the result. */
nd_result do_stat(tloop *l, const tnode *n, uint32_t drive, const bs_id *id);
/* Read into out (cap bytes); returns the result, *got the bytes read. */
nd_result do_read(tloop *l, const tnode *n, uint32_t drive, const bs_id *id, uint64_t off,
                  uint64_t len, uint8_t *out, size_t cap, size_t *got);

/* A call signed by hand with this nonce and the date now: header `name` of its answer ("" when
 * absent) into out. */
void raw_call(tloop *l, const tnode *n, const char *method, const char *target, const char *nonce,
              const char *name, char *out, size_t cap);
/* Header `name` of the answer to a GET of target signed by hand ("" when absent). */
void raw_get_header(tloop *l, const tnode *n, const char *target, const char *name, char *out,
                    size_t cap);
/* The answer to a read of [off, off+len) of chunk id on drive carries the CRC32C of body's bytes
 * there in X-Cairn-Crc32c. */
void check_range_crc(tloop *l, const tnode *n, int drive, const bs_id *id, uint64_t off,
                     uint64_t len, const uint8_t *body);

/* ---- parts, and rot on a drive ---- */

/* Flip one bit of the byte of the drive's first segment file holding want[0..16) (found by its
 * bytes). */
void flip_on_disk(const tnode *n, int drive, const uint8_t *want);
/* nd_read_parts of drives[0..np) into out (cap bytes); returns the result, *got the bytes. */
nd_result do_read_parts(tloop *l, const tnode *n, const uint32_t *drives, int np, const bs_id *id,
                        uint64_t off, uint64_t len, uint8_t *out, size_t cap, size_t *got);
/* A PUT of body[0..len) with X-Cairn-Crc32c crc, signed by hand: its X-Cairn-Error into err. */
void raw_put(tloop *l, const tnode *n, const char *target, const uint8_t *body, size_t len,
             const char *crc, char *err, size_t cap);
/* nd_append_parts of np equal parts of buf (plen bytes each) at off; returns the result. */
nd_result do_append_parts(tloop *l, const tnode *n, const uint32_t *drives, int np, const bs_id *id,
                          uint64_t off, const uint8_t *buf, size_t plen, const uint32_t *crcs);

/* ---- fake peers (on the client's loop) ---- */

typedef struct {
    int fds[16];
    int n;
    int close_at_once;
    size_t answer_len;       /* answer each request 200 with this many body bytes (0: never) */
    struct bufferevent *bev; /* the answering connection */
    const char *crc;         /* X-Cairn-Crc32c of the answer (NULL: none) */
    int parts;               /* X-Cairn-Parts of the answer (0: none) */
} fake_peer;

/* A fake peer listening on 127.0.0.1 (its port into *port) on base: with an answer_len it answers
 * every request on its first connection with that many zero bytes; else it closes each connection
 * at once (close_at_once), or holds it open, never read, never answered (up to 16). */
struct evconnlistener *fake_listen(struct event_base *base, fake_peer *fp, int *port);

#endif
