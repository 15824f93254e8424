#ifndef LINKAGE_LOG_H
#define LINKAGE_LOG_H

/* logfmt lines on stderr, one per event worth telling:
 *   level=error svc=ledger msg="commit failed" err="server closed the connection"
 * `msg` is PostgreSQL style: lower case, no trailing period. `fields` is a
 * printf format for further key=value pairs (may be NULL); quote values that
 * may hold spaces, e.g. "err=\"%s\"". Control characters and quotes inside
 * the final line's values are not escaped for you beyond newlines. */

enum lk_log_level { LK_LOG_DEBUG, LK_LOG_INFO, LK_LOG_WARN, LK_LOG_ERROR };

void lk_log_init(const char *svc, enum lk_log_level min);
void lk_log(enum lk_log_level level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether a line of this level would be written: lets a caller skip building
 * arguments (quoting, formatting) for lines that would be dropped. */
int lk_log_enabled(enum lk_log_level level);

#define lk_debug(msg, ...) lk_log(LK_LOG_DEBUG, msg, __VA_ARGS__)
#define lk_info(msg, ...) lk_log(LK_LOG_INFO, msg, __VA_ARGS__)
#define lk_warn(msg, ...) lk_log(LK_LOG_WARN, msg, __VA_ARGS__)
#define lk_error(msg, ...) lk_log(LK_LOG_ERROR, msg, __VA_ARGS__)

/* Copies s into buf (size n) as a logfmt-safe value: quotes, backslashes and
 * control characters escaped, truncated to fit. Returns buf. */
const char *lk_log_quote(char *buf, unsigned n, const char *s);

#endif
