/*
 * test_net_conns.c - the HTTP server's connections as a whole: stopping with requests in flight
 * (and a grace that expires), several loop threads and the balance of connections between them,
 * a port already in use, the connection limit (an idle connection shed for a new one, a new one
 * refused 503 when every one is busy), and running out of descriptors (the oldest idle
 * connection closed; the listener paused when none is idle). The fixture (a server in a thread,
 * a blocking client) is nt_serve.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cm_util.h"
#include "cu_main.h"
#include "net.h"
#include "nt_serve.h"

static void test_stop_in_flight(void)
{
    tsrv t;
    cli c, idle;
    resp r;
    char v[64];
    tsrv_start_default(&t);
    cli_open(&idle, t.port);
    get_ok(&idle, "/x", "hello");
    cli_open(&c, t.port);
    /* the handler calls net_server_stop itself, then answers 50 ms later */
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /slow HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "slow");
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    CU_ASSERT(cli_eof(&idle)); /* idle connection closed by the stop */
    pthread_join(t.th, NULL);  /* run returned by itself */
    CU_ASSERT_EQUAL(t.st.done, 2);
    CU_ASSERT_EQUAL(t.st.aborted, 0);
    net_server_free(t.srv);
    cli_close(&c);
    cli_close(&idle);
}

static void test_stop_grace_expires(void)
{
    tsrv t;
    cli c;
    tsrv_start_default(&t);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL(cli_sends(&c, "GET /stall HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n"), 0);
    /* wait until the handler has it: a second connection's answer orders us after it */
    cli c2;
    cli_open(&c2, t.port);
    get_ok(&c2, "/y", "hello");
    cli_close(&c2);
    net_server_stop(t.srv, 100);
    pthread_join(t.th, NULL);
    CU_ASSERT(cli_eof(&c));
    net_server_free(t.srv);
    CU_ASSERT_EQUAL(t.st.requests, t.st.done);
    CU_ASSERT_EQUAL(t.st.aborted, 1);
    cli_close(&c);
}

/*
 * At max_connections a new connection takes the place of an idle one: a kept-alive connection
 * before one with a partial head, and the one idle longest first.
 */
static void test_conn_limit_shed(void)
{
    tsrv t;
    cli a, b, c, d;
    resp r;
    net_config cfg;
    tsrv_cfg(&cfg);
    cfg.max_connections = 2;
    tsrv_start(&t, &cfg);
    cli_open(&b, t.port);
    CU_ASSERT_EQUAL(cli_sends(&b, "GET /b HTTP/1.1\r\nHo"), 0);
    cli_open(&a, t.port); /* accepted after b */
    get_ok(&a, "/a", "hello");
    cli_open(&c, t.port);
    get_ok(&c, "/c", "hello"); /* a (idle) makes room, not b (partial head) */
    CU_ASSERT(cli_eof(&a));
    CU_ASSERT_EQUAL(cli_sends(&b, "st: t\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(cli_response(&b, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    cli_open(&d, t.port);
    get_ok(&d, "/d", "hello"); /* c has been idle longer than b */
    CU_ASSERT(cli_eof(&c));
    get_ok(&b, "/b2", "hello");
    cli_close(&a);
    cli_close(&b);
    cli_close(&c);
    cli_close(&d);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.aborted, 0);

    /* a connection accepted a moment ago that has not sent yet is shed after a partial head:
     * it may be the client the room was made for */
    tsrv_start(&t, &cfg);
    cli_open(&b, t.port);
    CU_ASSERT_EQUAL(cli_sends(&b, "GET /b HTTP/1.1\r\nHo"), 0);
    cli_open(&a, t.port); /* no bytes yet */
    cli_open(&c, t.port); /* over the limit: b makes room, not a */
    get_ok(&c, "/c", "hello");
    get_ok(&a, "/a", "hello");
    CU_ASSERT(cli_eof(&b));
    cli_close(&a);
    cli_close(&b);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.aborted, 0);
}

/* At max_connections with every connection busy, a new one is answered 503 SlowDown and closed. */
static void test_conn_limit_refuse(void)
{
    tsrv t;
    cli a, b, c;
    resp r;
    net_config cfg;
    char v[64];
    tsrv_cfg(&cfg);
    cfg.max_connections = 2;
    tsrv_start(&t, &cfg);
    cli_open(&a, t.port);
    cli_open(&b, t.port);
    CU_ASSERT_EQUAL(cli_sends(&a, "GET /stall HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL(cli_sends(&b, "GET /stall HTTP/1.1\r\n\r\n"), 0);
    CU_ASSERT_EQUAL_FATAL(wait_requests(&t, 2), 0);
    cli_open(&c, t.port);
    CU_ASSERT_EQUAL_FATAL(cli_response(&c, &r, 0), 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT(strstr(r.body, "<Code>SlowDown</Code>") != NULL);
    CU_ASSERT_STRING_EQUAL(resp_header(&r, "Connection", v, sizeof(v)), "close");
    resp_free(&r);
    CU_ASSERT(cli_eof(&c));
    CU_ASSERT_FALSE(cli_readable(&a, 0)); /* the busy ones are untouched */
    CU_ASSERT_FALSE(cli_readable(&b, 0));
    cli_close(&a);
    cli_close(&b);
    cli_close(&c);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.aborted, 2);
}

/*
 * Fill every unused descriptor number below the highest open one (placeholders into fill[], at
 * most cap) so that the next descriptors handed out are highest+1, highest+2... Returns highest.
 */
static int fill_fd_holes(int *fill, int cap, int *nfill)
{
    int highest = -1;
    for (int fd = 0; fd < 65536; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            highest = fd;
    *nfill = 0;
    for (;;) {
        int fd = dup(0);
        if (fd < 0 || fd > highest || *nfill == cap) {
            if (fd >= 0)
                close(fd);
            return highest;
        }
        fill[(*nfill)++] = fd;
    }
}

/*
 * Out of descriptors (RLIMIT_NOFILE lowered under the running server), accept() fails with
 * EMFILE while new clients wait in the backlog. The server closes its oldest idle connection and
 * accepts, instead of spinning on the listener: every new client is served.
 */
static void test_out_of_descriptors(void)
{
    enum { N = 16, FREE = 3 };
    tsrv t;
    cli w, cs[N];
    net_config cfg;
    struct rlimit old, low;
    int fill[1024], nfill, served = 0, shed = 0;
    tsrv_cfg(&cfg);
    cfg.max_connections = 1000; /* far above the descriptors: EMFILE comes first */
    tsrv_start(&t, &cfg);
    cli_open(&w, t.port);
    get_ok(&w, "/w", "hello");
    for (int i = 0; i < N; i++)
        cli_socket(&cs[i]); /* the clients' descriptors exist before the limit drops */
    int high = fill_fd_holes(fill, 1024, &nfill);
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)(high + 1 + FREE); /* FREE descriptors left for the server's accepts */
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_NOFILE, &low), 0);
    for (int i = 0; i < N; i++) {
        resp r;
        cli_connect(&cs[i], t.port);
        if (cli_sends(&cs[i], "GET /n HTTP/1.1\r\n\r\n") != 0 || cli_response(&cs[i], &r, 0))
            break; /* not served: without the back-off this client waits forever */
        served += r.status == 200;
        resp_free(&r);
    }
    setrlimit(RLIMIT_NOFILE, &old);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    CU_ASSERT_EQUAL(served, N);
    for (int i = 0; i < N; i++)
        shed += cli_readable(&cs[i], 0) && cli_eof(&cs[i]);
    shed += cli_readable(&w, 0) && cli_eof(&w);
    CU_ASSERT(shed >= N - FREE);
    for (int i = 0; i < N; i++)
        cli_close(&cs[i]);
    cli_close(&w);
    tsrv_stop(&t);
}

/*
 * Out of descriptors with every connection busy there is nothing to shed: the listener pauses
 * (100 ms at a time) instead of spinning, and once a busy connection has answered and gone idle,
 * it makes room for the waiting client.
 */
static void test_out_of_descriptors_busy(void)
{
    tsrv t;
    cli h1, h2, n;
    resp r;
    net_config cfg;
    struct rlimit old, low;
    struct timespec t0;
    int fill[1024], nfill;
    tsrv_cfg(&cfg);
    cfg.max_connections = 1000;
    tsrv_start(&t, &cfg);
    cli_socket(&h1);
    cli_socket(&h2);
    cli_socket(&n);
    int high = fill_fd_holes(fill, 1024, &nfill);
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)(high + 1 + 2); /* room for h1 and h2 only */
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_NOFILE, &low), 0);
    cli_connect(&h1, t.port);
    cli_connect(&h2, t.port);
    int sent = cli_sends(&h1, "GET /later-300ms HTTP/1.1\r\n\r\n") == 0 &&
               cli_sends(&h2, "GET /later-300ms HTTP/1.1\r\n\r\n") == 0 &&
               wait_requests(&t, 2) == 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cli_connect(&n, t.port);
    int got = sent && cli_sends(&n, "GET /n HTTP/1.1\r\n\r\n") == 0 && cli_response(&n, &r, 0) == 0;
    int64_t took = elapsed_ms(&t0);
    setrlimit(RLIMIT_NOFILE, &old);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    CU_ASSERT_FATAL(got);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(took >= 200 && took < 2000); /* served once a held request was answered */
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(cli_response(&h1, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "later");
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(cli_response(&h2, &r, 0), 0);
    CU_ASSERT_STRING_EQUAL(r.body, "later");
    resp_free(&r);
    cli_close(&h1);
    cli_close(&h2);
    cli_close(&n);
    tsrv_stop(&t);
}

static void test_threads(void)
{
    tsrv t;
    net_config cfg;
    tsrv_cfg(&cfg);
    cfg.threads = 3;
    tsrv_start(&t, &cfg);
    cli cs[8];
    for (int i = 0; i < 8; i++)
        cli_open(&cs[i], t.port);
    for (int i = 0; i < 8; i++)
        get_ok(&cs[i], "/x", "hello");
    for (int i = 0; i < 8; i++)
        cli_close(&cs[i]);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.done, 8);
}

/* Balance: whichever loop's socket the kernel gives a connection to, a loop that has more than
 * another hands it over, so connections opened one after another alternate between two loops
 * (the kernel alone put all four of a benchmark's on one loop in 2 of 4 runs), and a stopped
 * server has none left anywhere. */
static void test_balance(void)
{
    tsrv t;
    net_config cfg;
    tsrv_cfg(&cfg);
    cfg.threads = 2;
    tsrv_start(&t, &cfg);
    cli cs[7];
    for (int i = 0; i < 7; i++) {
        cli_open(&cs[i], t.port);
        get_ok(&cs[i], "/x", "hello"); /* served: started on its loop */
        int a = net_server_loop_conns(t.srv, 0), b = net_server_loop_conns(t.srv, 1);
        CU_ASSERT_EQUAL(a + b, i + 1);
        CU_ASSERT(a - b <= 1 && b - a <= 1);
    }
    CU_ASSERT_EQUAL(net_server_loop_conns(t.srv, 2), -1);
    for (int i = 0; i < 7; i++)
        cli_close(&cs[i]);
    tsrv_stop(&t);
    CU_ASSERT_EQUAL(t.st.done, 7);
}

/* A port a running server listens on is refused to a second server (SO_REUSEPORT is only
 * among one server's loops); once the first stopped, the port is free again at once. */
static void test_port_in_use(void)
{
    tsrv t;
    net_config cfg;
    tsrv_cfg(&cfg);
    cfg.threads = 2;
    tsrv_start(&t, &cfg);
    cli c;
    cli_open(&c, t.port);
    get_ok(&c, "/x", "hello");
    cli_close(&c);
    net_server *second = NULL;
    cfg.port = t.port;
    CU_ASSERT_EQUAL(net_server_new(&cfg, &th_handler, &t.st, &second), CM_ERR_EXISTS);
    CU_ASSERT_PTR_NULL(second);
    net_server_free(second);
    for (int i = 0; i < 4; i++) { /* the first still serves every connection */
        cli_open(&c, t.port);
        get_ok(&c, "/x", "hello");
        cli_close(&c);
    }
    tsrv_stop(&t);
    tsrv again;
    tsrv_start(&again, &cfg); /* the same port, right after (TIME_WAIT is no obstacle) */
    CU_ASSERT_EQUAL(again.port, cfg.port);
    tsrv_stop(&again);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"stop_in_flight", test_stop_in_flight},
        {"stop_grace_expires", test_stop_grace_expires},
        {"threads", test_threads},
        {"balance", test_balance},
        {"port_in_use", test_port_in_use},
        {"conn_limit_shed", test_conn_limit_shed},
        {"conn_limit_refuse", test_conn_limit_refuse},
        {"out_of_descriptors", test_out_of_descriptors},
        {"out_of_descriptors_busy", test_out_of_descriptors_busy},
        {NULL, NULL},
    };
    cu_add_suite("net_conns", tests);
}
