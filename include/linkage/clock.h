#ifndef LINKAGE_CLOCK_H
#define LINKAGE_CLOCK_H

#include <stdint.h>

/* Wall clock in microseconds since the Unix epoch. The shell reads clocks;
 * the functional core is handed time as an argument. */
int64_t lk_now_us(void);
/* Monotonic clock in microseconds, for measuring intervals. */
int64_t lk_mono_us(void);

/* An ISO 8601 date and time that names its zone, as operators and other systems write them:
 * "2026-11-27T15:00Z", "2026-11-27 23:00:00.5+08:00", "...+0800". Seconds and fractions are
 * optional (digits past microseconds are dropped). Returns 0 with *out_us (microseconds since
 * the epoch), or -1 leaving it untouched: no zone, an impossible date (31 April), junk after. */
int lk_parse_iso8601(const char *s, int64_t *out_us);

#endif
