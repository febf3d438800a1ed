/*
 * cm_log.h - level-gated structured logging.
 *
 * CM_LOG(level, module, fmt, ...) writes one line "ts=... level=... mod=... msg" to the log sink
 * (stderr by default). Arguments are not evaluated when the level is off. The level and sink are
 * the only process-wide state of the libraries; the binary sets them once at startup. Library code
 * never prints anything else.
 */
#ifndef CM_LOG_H
#define CM_LOG_H

#include <stdio.h>

typedef enum { CM_LOG_ERROR = 0, CM_LOG_WARN, CM_LOG_INFO, CM_LOG_DEBUG } cm_log_level;

extern int cm_log_threshold; /* messages with level <= threshold are written */

void cm_log_set_level(cm_log_level level);
/* Parse "error|warn|info|debug"; returns -1 when the name is unknown. */
int cm_log_level_parse(const char *name);
void cm_log_set_sink(FILE *sink);
void cm_log_write(cm_log_level level, const char *module, const char *file, int line,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define CM_LOG(level, module, ...)                                                                 \
    do {                                                                                           \
        if ((int)(level) <= cm_log_threshold)                                                      \
            cm_log_write((level), (module), __FILE__, __LINE__, __VA_ARGS__);                      \
    } while (0)

#define CM_ERROR(module, ...) CM_LOG(CM_LOG_ERROR, module, __VA_ARGS__)
#define CM_WARN(module, ...) CM_LOG(CM_LOG_WARN, module, __VA_ARGS__)
#define CM_INFO(module, ...) CM_LOG(CM_LOG_INFO, module, __VA_ARGS__)
#define CM_DEBUG(module, ...) CM_LOG(CM_LOG_DEBUG, module, __VA_ARGS__)

#endif
