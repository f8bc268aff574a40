/* log.h - the daemon's only way to say anything.
 *
 * Owns the log destination (syslog, facility mail by default, or stderr in the
 * foreground) and the level filter. Meanings follow Postfix's msg(3): warn is bad input
 * from a peer (carry on), error is a failure of ours that we survive, fatal is a bad
 * environment or configuration (exit 1), panic is a bug of ours (abort). */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Longest sample of untrusted input a log line carries (STYLE.md: <= 100 bytes). */
#define LOG_SAMPLE_MAX 100

/* ident: program name; to_stderr: 1 writes "ident[pid]: level: text" lines to stderr,
 * 0 uses syslog with facility (LOG_MAIL etc. from <syslog.h>). May be called again
 * (on reload) to switch destination or level. */
void log_open(const char *ident, int to_stderr, int facility, enum log_level level);
void log_close(void);
enum log_level log_get_level(void);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Copies at most LOG_SAMPLE_MAX bytes of src (srclen bytes, not necessarily
 * NUL-terminated) into dst as printable ASCII: other bytes become '?', and "..." marks
 * a cut. dst must hold LOG_SAMPLE_MAX + 4 bytes. Returns dst. */
char *log_sample(char *dst, const char *src, size_t srclen);

#endif
