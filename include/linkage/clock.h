#ifndef LINKAGE_CLOCK_H
#define LINKAGE_CLOCK_H

#include <stdint.h>

/* Wall clock in microseconds since the Unix epoch. The shell reads clocks;
 * the functional core is handed time as an argument. */
int64_t lk_now_us(void);
/* Monotonic clock in microseconds, for measuring intervals. */
int64_t lk_mono_us(void);

#endif
