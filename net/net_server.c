/*
 * net_server.c - listeners, event loops and threads of the HTTP server.
 *
 * One net_loop per thread, each with its own event_base and its own listening socket bound to the
 * same host:port with SO_REUSEPORT, so the kernel spreads connections across loops and a
 * connection never changes thread once started. With port 0 the first socket picks the port and
 * the others bind to it. A fixed port already listened on by another process is refused
 * (probe_port), not shared.
 *
 * Balance. The kernel picks a loop's socket by a hash of the connection's addresses, which is
 * fair over many connections but not over a few: the four uploads of a benchmark landed all on
 * one of two loops in 1 of 4 runs on the idle machine and 2 of 4 during a CI run
 * (docs/performance.md, "Thirteenth session"), leaving one core to do every byte's work. So a loop
 * that accepts a connection while another loop has fewer (load: its connections plus those on their
 * way to it, an atomic each loop keeps) hands it over before starting it: into that loop's inbox
 * (NET_INBOX places, under its mutex) and event_active on its inbox_ev. A full or closed inbox (the
 * loop is stopping) keeps it here. A stopping loop closes what it still finds in its inbox;
 * net_server_free closes what is left.
 *
 * Stop protocol: net_server_stop() (any thread) records the grace period and activates each
 * loop's stop event (event bases are created after evthread_use_pthreads(), so event_active is
 * thread-safe). On its own thread, each loop then closes its listener and idle connections, marks
 * busy ones to close after their response, and breaks out when the last connection is gone or
 * the grace timer fires (remaining requests get on_done(aborted=1)).
 *
 * Descriptors: connections of all loops are counted in srv->nconns (atomic) against
 * cfg.max_connections, which by default leaves a reserve of the RLIMIT_NOFILE soft limit for data
 * files and workers (net_default_max_connections). When accept() still fails for want of
 * descriptors (EMFILE/ENFILE: the reserve was too small, or another part of the process holds
 * many) while a client waits in the queue, the loop sheds its oldest idle connection (not one
 * just accepted) and keeps accepting; with nothing to shed it pauses its listener for
 * NET_ACCEPT_BACKOFF_MS rather than spin on a listening socket that stays readable. Either way
 * the log gets one summary line per loop per 10 s, not one per attempt.
 *
 * srv->lock guards stop_requested/stop_grace_ms, each loop's inbox_mu its inbox; load is atomic;
 * everything else belongs to one loop thread, or to the caller before run / after run returns.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/thread.h>

#include "cm_log.h"
#include "net_int.h"

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;

static void evthread_setup(void)
{
    evthread_use_pthreads();
}

/* Give a connection this loop accepted to the loop with the fewest (load), when that one has
 * fewer than this one; 1 when handed over. */
static int hand_off(net_loop *loop, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
    net_server *srv = loop->srv;
    net_loop *to = loop;
    int least = atomic_load(&loop->load);
    for (int i = 0; i < srv->nloops; i++) {
        int n = atomic_load(&srv->loops[i].load);
        if (n < least) {
            least = n;
            to = &srv->loops[i];
        }
    }
    if (to == loop || salen < 0 || (size_t)salen > sizeof(struct sockaddr_storage))
        return 0;
    pthread_mutex_lock(&to->inbox_mu);
    int ok = !to->inbox_closed && to->ninbox < NET_INBOX;
    if (ok) {
        net_handoff *h = &to->inbox[to->ninbox++];
        h->fd = fd;
        memcpy(&h->sa, sa, (size_t)salen);
        h->salen = salen;
        atomic_fetch_add(&to->load, 1);
    }
    pthread_mutex_unlock(&to->inbox_mu);
    if (ok)
        event_active(to->inbox_ev, 0, 0); /* thread-safe: bases are made after evthread setup */
    return ok;
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)lis;
    if (!hand_off(arg, fd, sa, salen))
        net_conn_accept(arg, fd, sa, salen);
}

/* The connections other loops handed to this one. */
static void inbox_cb(evutil_socket_t unused, short what, void *arg)
{
    net_loop *loop = arg;
    net_handoff got[NET_INBOX];
    (void)unused;
    (void)what;
    pthread_mutex_lock(&loop->inbox_mu);
    int n = loop->ninbox;
    memcpy(got, loop->inbox, (size_t)n * sizeof(got[0]));
    loop->ninbox = 0;
    pthread_mutex_unlock(&loop->inbox_mu);
    for (int i = 0; i < n; i++) {
        atomic_fetch_sub(&loop->load, 1);
        if (loop->stopping)
            evutil_closesocket(got[i].fd);
        else
            net_conn_accept(loop, got[i].fd, (struct sockaddr *)&got[i].sa, got[i].salen);
    }
}

/* The listener may accept again (the out-of-descriptors pause is over). */
static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    net_loop *loop = arg;
    (void)fd;
    (void)what;
    if (loop->listener) /* gone once the server stops */
        evconnlistener_enable(loop->listener);
}

/* accept() failed with an error libevent does not retry by itself. */
static void accept_error_cb(struct evconnlistener *lis, void *arg)
{
    net_loop *loop = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        CM_WARN("net", "loop %d: accept(): %s", loop->index, evutil_socket_error_to_string(err));
        return;
    }
    /* Linux takes the descriptor before it looks at the queue: at the limit every batch of
     * accepts ends in EMFILE, with or without a client waiting */
    struct pollfd p = {.fd = evconnlistener_get_fd(lis), .events = POLLIN};
    if (poll(&p, 1, 0) != 1)
        return; /* nobody waiting: the listener wakes when someone is */
    net_note(loop, &loop->pressure.no_fd);
    /* a shed connection frees the descriptor the next accept needs: keep accepting */
    if (net_conn_shed(loop, 0))
        return;
    struct timeval tv = {0, NET_ACCEPT_BACKOFF_MS * 1000};
    evconnlistener_disable(lis);
    evtimer_add(loop->accept_ev, &tv);
}

int net_default_max_connections(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1000000)
        return 1000000 - 250000;
    int nofile = (int)rl.rlim_cur;
    int reserve = nofile / 4 > 128 ? nofile / 4 : 128;
    int n = nofile - reserve;
    return n > nofile / 2 ? n : nofile / 2;
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    net_loop *loop = arg;
    (void)fd;
    (void)what;
    CM_WARN("net", "stop: grace period over, %zu connections cut mid-request",
            (size_t)loop->nconns);
    while (loop->conns)
        net_conn_free(loop->conns);
    event_base_loopbreak(loop->base);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    net_loop *loop = arg;
    net_server *srv = loop->srv;
    (void)fd;
    (void)what;
    if (loop->stopping)
        return;
    loop->stopping = 1;
    pthread_mutex_lock(&loop->inbox_mu);
    loop->inbox_closed = 1; /* what is in it already, inbox_cb or net_server_free closes */
    pthread_mutex_unlock(&loop->inbox_mu);
    if (loop->listener) {
        evconnlistener_free(loop->listener);
        loop->listener = NULL;
    }
    evtimer_del(loop->accept_ev);
    net_sniff_close_all(loop);
    for (net_conn *c = loop->conns, *next; c; c = next) {
        next = c->next;
        net_conn_stop_idle(c);
    }
    if (loop->nconns == 0) {
        event_base_loopbreak(loop->base);
        return;
    }
    pthread_mutex_lock(&srv->lock);
    int ms = srv->stop_grace_ms;
    pthread_mutex_unlock(&srv->lock);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(loop->grace_ev, &tv);
}

void net_server_stop(net_server *srv, int grace_ms)
{
    pthread_mutex_lock(&srv->lock);
    int first = !srv->stop_requested;
    srv->stop_requested = 1;
    srv->stop_grace_ms = grace_ms < 0 ? 0 : grace_ms;
    pthread_mutex_unlock(&srv->lock);
    if (!first)
        return;
    for (int i = 0; i < srv->nloops; i++)
        event_active(srv->loops[i].stop_ev, EV_TIMEOUT, 1);
}

/*
 * SO_REUSEPORT lets every socket of the same user share a port, so a second server started on a
 * port a running one listens on would quietly take half its connections. Before the first
 * listener of a fixed port, bind a probe without it (SO_REUSEADDR only, which a restart past
 * TIME_WAIT needs, and which never shares a port someone listens on): EADDRINUSE there is
 * CM_ERR_EXISTS. Any other failure is left to the real bind to report. A process binding between
 * the probe's close and our first bind slips through; the window is one close and one bind.
 */
static cm_err probe_port(const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return CM_OK;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int in_use = bind(fd, sa, len) != 0 && errno == EADDRINUSE;
    close(fd);
    return in_use ? CM_ERR_EXISTS : CM_OK;
}

/* Bind one listening socket for loop i. */
static cm_err bind_loop(net_server *srv, net_loop *loop, const struct addrinfo *ai)
{
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (srv->port) { /* later loops, or a fixed port */
        if (ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)srv->port);
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)srv->port);
    }
    if (loop->index == 0 && srv->port &&
        probe_port((struct sockaddr *)&ss, (socklen_t)ai->ai_addrlen) != CM_OK) {
        CM_ERROR("net", "port %d of %s is already in use", srv->port, srv->cfg.host);
        return CM_ERR_EXISTS;
    }
    unsigned flags =
        LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
    loop->listener = evconnlistener_new_bind(loop->base, accept_cb, loop, flags, -1,
                                             (struct sockaddr *)&ss, (int)ai->ai_addrlen);
    if (!loop->listener) {
        CM_ERROR("net", "bind %s:%d failed: %s", srv->cfg.host, srv->port,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return CM_ERR_IO;
    }
    evconnlistener_set_error_cb(loop->listener, accept_error_cb);
    if (!srv->port) {
        socklen_t len = sizeof(ss);
        getsockname(evconnlistener_get_fd(loop->listener), (struct sockaddr *)&ss, &len);
        srv->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                  : ((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return CM_OK;
}

static cm_err loop_init(net_server *srv, net_loop *loop, int index, const struct addrinfo *ai)
{
    loop->srv = srv;
    loop->index = index;
    pthread_mutex_init(&loop->inbox_mu, NULL);
    loop->base = event_base_new();
    if (!loop->base)
        return CM_ERR_NOMEM;
    loop->stop_ev = event_new(loop->base, -1, 0, stop_cb, loop);
    loop->grace_ev = evtimer_new(loop->base, grace_cb, loop);
    loop->accept_ev = evtimer_new(loop->base, accept_resume_cb, loop);
    loop->inbox_ev = event_new(loop->base, -1, 0, inbox_cb, loop);
    if (!loop->stop_ev || !loop->grace_ev || !loop->accept_ev || !loop->inbox_ev)
        return CM_ERR_NOMEM;
    return bind_loop(srv, loop, ai);
}

static void fill_defaults(net_config *c)
{
    net_config d;
    net_config_defaults(&d);
    if (!c->host)
        c->host = d.host;
    if (c->threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads = n > 0 ? (int)n : 1;
    }
#define NET_DEFAULT(f)                                                                             \
    if (!c->f)                                                                                     \
    c->f = d.f
    NET_DEFAULT(max_request_line);
    NET_DEFAULT(max_header_bytes);
    NET_DEFAULT(max_headers);
    NET_DEFAULT(idle_timeout_ms);
    NET_DEFAULT(io_timeout_ms);
    NET_DEFAULT(header_timeout_ms);
    NET_DEFAULT(read_high_water);
    NET_DEFAULT(write_low_water);
#undef NET_DEFAULT
    if (c->max_connections <= 0)
        c->max_connections = net_default_max_connections();
}

cm_err net_server_new(const net_config *cfg, const net_handler *handler, void *arg,
                      net_server **out)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    cm_err e = CM_ERR_NOMEM;
    *out = NULL;
    pthread_once(&evthread_once, evthread_setup);
    net_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return CM_ERR_NOMEM;
    srv->cfg = *cfg;
    fill_defaults(&srv->cfg);
    srv->handler = handler;
    srv->arg = arg;
    srv->port = cfg->port;
    pthread_mutex_init(&srv->lock, NULL);
    srv->loops = calloc((size_t)srv->cfg.threads, sizeof(net_loop));
    if (!srv->loops)
        goto fail;
    int gai = getaddrinfo(srv->cfg.host, NULL, &hints, &ai);
    if (gai != 0) {
        CM_ERROR("net", "cannot resolve %s: %s", srv->cfg.host, gai_strerror(gai));
        e = CM_ERR_IO;
        goto fail;
    }
    for (int i = 0; i < srv->cfg.threads; i++) {
        srv->nloops = i + 1;
        e = loop_init(srv, &srv->loops[i], i, ai);
        if (e != CM_OK)
            goto fail;
    }
    freeaddrinfo(ai);
    *out = srv;
    return CM_OK;
fail:
    if (ai)
        freeaddrinfo(ai);
    net_server_free(srv);
    return e;
}

void net_server_set_timeouts(net_server *srv, int idle_timeout_ms, int header_timeout_ms)
{
    __atomic_store_n(&srv->cfg.idle_timeout_ms, idle_timeout_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&srv->cfg.header_timeout_ms, header_timeout_ms, __ATOMIC_RELAXED);
}

int net_server_port(const net_server *srv)
{
    return srv->port;
}

void net_server_conn_stats(const net_server *srv, uint64_t *open, uint64_t *accepted)
{
    /* the fields are atomics: reading them through a const pointer only loads */
    int n = atomic_load_explicit((atomic_int *)&srv->nconns, memory_order_relaxed);
    *open = n > 0 ? (uint64_t)n : 0;
    *accepted = atomic_load_explicit((atomic_uint_fast64_t *)&srv->accepted, memory_order_relaxed);
}

int net_server_loop_conns(const net_server *srv, int i)
{
    return i >= 0 && i < srv->nloops ? atomic_load((atomic_int *)&srv->loops[i].load) : -1;
}

static void *loop_thread(void *arg)
{
    net_loop *loop = arg;
    const net_handler *h = loop->srv->handler;
    loop->ran = 1;
    if (h->on_loop_start)
        h->on_loop_start(loop->base, loop->srv->arg);
    event_base_loop(loop->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

cm_err net_server_run(net_server *srv)
{
    int started = 1;
    for (int i = 1; i < srv->nloops; i++, started++) {
        if (pthread_create(&srv->loops[i].thread, NULL, loop_thread, &srv->loops[i]) != 0) {
            CM_ERROR("net", "cannot start loop thread %d", i);
            net_server_stop(srv, 0);
            break;
        }
    }
    loop_thread(&srv->loops[0]);
    for (int i = 1; i < started; i++)
        pthread_join(srv->loops[i].thread, NULL);
    return started == srv->nloops ? CM_OK : CM_ERR_INTERNAL;
}

void net_server_free(net_server *srv)
{
    if (!srv)
        return;
    for (int i = 0; i < srv->nloops; i++) {
        net_loop *loop = &srv->loops[i];
        loop->stopping = 0; /* no loopbreak on a base that is not running */
        net_sniff_close_all(loop);
        while (loop->conns)
            net_conn_free(loop->conns);
        if (loop->listener)
            evconnlistener_free(loop->listener);
        if (loop->stop_ev)
            event_free(loop->stop_ev);
        if (loop->grace_ev)
            event_free(loop->grace_ev);
        if (loop->accept_ev)
            event_free(loop->accept_ev);
        if (loop->inbox_ev)
            event_free(loop->inbox_ev);
        for (int j = 0; j < loop->ninbox; j++) /* handed over as the loop stopped */
            evutil_closesocket(loop->inbox[j].fd);
        if (loop->ran && srv->handler->on_loop_end)
            srv->handler->on_loop_end(loop->base, srv->arg);
        if (loop->base)
            event_base_free(loop->base);
        pthread_mutex_destroy(&loop->inbox_mu);
    }
    free(srv->loops);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}
