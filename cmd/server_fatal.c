/*
 * cmd/server_fatal.c - the last log line of a server that a signal ends (cmd_fatal_signals_log).
 *
 * `cairn server` takes SIGTERM, SIGINT, SIGHUP and SIGUSR2 with sigwait and ignores SIGPIPE
 * (server.c). Every other signal whose default action ends the process would end it without a
 * word: a crash (SEGV, BUS, ILL, FPE), an abort() in a library that printed nothing, or a stray
 * kill -USR1 / -ALRM / -QUIT from a script. Each gets a handler that writes one log line, in the
 * cm_log format, with the signal, its code, the fault address or the sending pid and uid, then
 * lets the default action run: the process ends as it would have (same status, same core dump).
 * SIGKILL and SIGSTOP cannot be caught; an exit status of 137 with no such line is a SIGKILL
 * (deploy/local-cluster.sh prints how a node it started ended).
 *
 * Async-signal safety: the handler formats into a stack buffer with its own digit loops (no
 * stdio, no locale, no malloc) and calls only write(2), clock_gettime(2) and raise(). SA_RESETHAND
 * puts the default action back on entry. A fault (SEGV, BUS, ILL or FPE from the kernel,
 * si_code > 0) returns to the faulting instruction, which faults again under the default action
 * (the kernel logs it as usual); any other signal is raised again. A signal somebody else already
 * handles (AddressSanitizer's SEGV handler in the sanitizer build) is left alone. glibc's
 * real-time signals (thread cancellation, setxid) are not touched.
 */
#include "cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct {
    int sig;
    const char *name;
} fatal[] = {
    {SIGSEGV, "SEGV"},     {SIGBUS, "BUS"},   {SIGILL, "ILL"},       {SIGFPE, "FPE"},
    {SIGABRT, "ABRT"},     {SIGTRAP, "TRAP"}, {SIGSYS, "SYS"},       {SIGQUIT, "QUIT"},
    {SIGUSR1, "USR1"},     {SIGALRM, "ALRM"}, {SIGVTALRM, "VTALRM"}, {SIGPROF, "PROF"},
    {SIGIO, "IO"},         {SIGXCPU, "XCPU"}, {SIGXFSZ, "XFSZ"},     {SIGPWR, "PWR"},
    {SIGSTKFLT, "STKFLT"},
};

/* A line being built in a fixed buffer; whatever does not fit is cut. */
typedef struct {
    char s[320];
    size_t n;
} line;

static void put(line *l, const char *s)
{
    while (*s && l->n < sizeof(l->s) - 1)
        l->s[l->n++] = *s++;
}

/* v in base 10 or 16, at least width digits (zero-padded). */
static void put_num(line *l, uint64_t v, unsigned base, int width)
{
    char d[24];
    int i = 0;
    do {
        d[i++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v && i < (int)sizeof(d));
    while (i < width && i < (int)sizeof(d))
        d[i++] = '0';
    while (i > 0 && l->n < sizeof(l->s) - 1)
        l->s[l->n++] = d[--i];
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" for t (UTC): gmtime_r is not async-signal-safe, so by hand
 * (days to civil date, proleptic Gregorian). */
static void put_time(line *l, const struct timespec *t)
{
    int64_t days = (int64_t)t->tv_sec / 86400, secs = (int64_t)t->tv_sec % 86400;
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);
    put_num(l, (uint64_t)year, 10, 4);
    put(l, "-");
    put_num(l, (uint64_t)month, 10, 2);
    put(l, "-");
    put_num(l, (uint64_t)day, 10, 2);
    put(l, "T");
    put_num(l, (uint64_t)(secs / 3600), 10, 2);
    put(l, ":");
    put_num(l, (uint64_t)(secs / 60 % 60), 10, 2);
    put(l, ":");
    put_num(l, (uint64_t)(secs % 60), 10, 2);
    put(l, ".");
    put_num(l, (uint64_t)(t->tv_nsec / 1000000), 10, 3);
    put(l, "Z");
}

static void on_fatal(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    int saved = errno;
    line l = {.n = 0};
    struct timespec now;
    const char *name = "?";
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
        if (fatal[i].sig == sig)
            name = fatal[i].name;
    clock_gettime(CLOCK_REALTIME, &now);
    put(&l, "ts=");
    put_time(&l, &now);
    put(&l, " level=error mod=server src=server_fatal.c signal ");
    put(&l, name);
    put(&l, " (code ");
    if (si->si_code < 0) {
        put(&l, "-");
        put_num(&l, (uint64_t)(-(int64_t)si->si_code), 10, 1);
    } else {
        put_num(&l, (uint64_t)si->si_code, 10, 1);
    }
    if (si->si_code <= 0) { /* sent: kill, tgkill, sigqueue, raise (abort) */
        put(&l, ", sent by pid ");
        put_num(&l, (uint64_t)(uint32_t)si->si_pid, 10, 1);
        put(&l, " uid ");
        put_num(&l, (uint64_t)si->si_uid, 10, 1);
    } else if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE) {
        put(&l, ", address 0x");
        put_num(&l, (uint64_t)(uintptr_t)si->si_addr, 16, 1);
    }
    put(&l, "): the server ends now\n");
    for (size_t off = 0; off < l.n;) {
        ssize_t w = write(STDERR_FILENO, l.s + off, l.n - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    errno = saved;
    /* SA_RESETHAND restored the default action: a fault recurs on return, a sent signal is
     * raised again (blocked in the handler, delivered as it returns). */
    if (si->si_code <= 0 || !(sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE))
        raise(sig);
}

void cmd_fatal_signals_log(void)
{
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
        struct sigaction old, sa;
        if (sigaction(fatal[i].sig, NULL, &old) != 0)
            continue;
        if (old.sa_handler != SIG_DFL) /* ignored, or somebody's handler (one union) */
            continue;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_fatal;
        sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(fatal[i].sig, &sa, NULL);
    }
}
