/*
 * cm_log.c - the log sink. One line per message, written with a single fwrite-equivalent call so
 * lines from concurrent threads do not interleave (stdio locks the stream per call).
 */
#include "cm_log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

int cm_log_threshold = CM_LOG_INFO;
static FILE *log_sink;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void cm_log_set_level(cm_log_level level)
{
    cm_log_threshold = (int)level;
}

int cm_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void cm_log_set_sink(FILE *sink)
{
    log_sink = sink;
}

void cm_log_write(cm_log_level level, const char *module, const char *file, int line,
                  const char *fmt, ...)
{
    char msg[2048];
    char ts[40];
    struct timespec now;
    struct tm tm;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *base = strrchr(file, '/');
    fprintf(log_sink ? log_sink : stderr, "ts=%s.%03ldZ level=%s mod=%s src=%s:%d %s\n", ts,
            now.tv_nsec / 1000000, level_names[level], module, base ? base + 1 : file, line, msg);
}
