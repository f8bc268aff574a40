/* log.c - syslog or stderr, with Postfix's severity meanings. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* The log destination is process-wide by nature (like syslog itself); main.c sets it,
 * every module only writes. */
static char log_ident[64] = "spf-policyd";
static int log_to_stderr = 1;
static enum log_level log_min = LOG_LEVEL_INFO;
static int log_syslog_open;

void log_open(const char *ident, int to_stderr, int facility, enum log_level level)
{
    snprintf(log_ident, sizeof(log_ident), "%s", ident);
    log_min = level;
    if (log_syslog_open) {
        closelog();
        log_syslog_open = 0;
    }
    log_to_stderr = to_stderr;
    if (!to_stderr) {
        openlog(log_ident, LOG_PID | LOG_NDELAY, facility);
        log_syslog_open = 1;
    }
}

void log_close(void)
{
    if (log_syslog_open)
        closelog();
    log_syslog_open = 0;
}

enum log_level log_get_level(void)
{
    return log_min;
}

static void log_vwrite(int prio, const char *tag, const char *fmt, va_list ap)
{
    char text[2048];

    vsnprintf(text, sizeof(text), fmt, ap);
    if (log_to_stderr) {
        /* One write(2) per line, so lines from a crash path are not interleaved. */
        char line[2200];
        int n = snprintf(line, sizeof(line), "%s[%ld]: %s%s\n", log_ident, (long)getpid(),
                         tag, text);
        if (n > (int)sizeof(line) - 1)
            n = (int)sizeof(line) - 1;
        if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0) {
            /* Nowhere left to report a failing stderr. */
        }
    } else {
        syslog(prio, "%s%s", tag, text);
    }
}

#define LOG_DEFINE(fn, lvl, prio, tag)                                         \
    void fn(const char *fmt, ...)                                              \
    {                                                                          \
        va_list ap;                                                            \
        if (lvl < log_min)                                                     \
            return;                                                            \
        va_start(ap, fmt);                                                     \
        log_vwrite(prio, tag, fmt, ap);                                        \
        va_end(ap);                                                            \
    }

LOG_DEFINE(log_debug, LOG_LEVEL_DEBUG, LOG_DEBUG, "debug: ")
LOG_DEFINE(log_info, LOG_LEVEL_INFO, LOG_INFO, "")
LOG_DEFINE(log_warn, LOG_LEVEL_WARN, LOG_WARNING, "warning: ")
LOG_DEFINE(log_error, LOG_LEVEL_ERROR, LOG_ERR, "error: ")

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(LOG_CRIT, "fatal: ", fmt, ap);
    va_end(ap);
    exit(1);
}

void log_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(LOG_CRIT, "panic: ", fmt, ap);
    va_end(ap);
    abort();
}

char *log_sample(char *dst, const char *src, size_t srclen)
{
    size_t n = srclen < LOG_SAMPLE_MAX ? srclen : LOG_SAMPLE_MAX;
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (srclen > LOG_SAMPLE_MAX) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
    return dst;
}
