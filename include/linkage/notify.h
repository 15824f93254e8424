#ifndef LINKAGE_NOTIFY_H
#define LINKAGE_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* systemd's service protocol (sd_notify(3)), for the daemon skeleton only.
 *
 * Under a unit with Type=notify systemd sets NOTIFY_SOCKET (and WATCHDOG_USEC when the unit has
 * WatchdogSec=). Without NOTIFY_SOCKET every function here does nothing and opens nothing.
 *
 * lk_notify_start says READY=1 with STATUS= (the daemon's status line) and MAINPID=, then runs a
 * timer on the daemon's own loop that sends WATCHDOG=1 at half the watchdog interval and the
 * status line again when it changed, at most every LK_NOTIFY_STATUS_MS. The timer is an ordinary
 * handle of that loop on purpose: a loop that no longer turns (a handler spinning, a blocking
 * call, SIGSTOP) stops petting the watchdog, and systemd kills and restarts the daemon.
 * lk_notify_stop says STOPPING=1 and closes the timer, so the loop can still run to completion.
 *
 * A failed send is logged once and otherwise ignored: systemd's own timeouts (TimeoutStartSec=,
 * WatchdogSec=) then decide, and a daemon that still works keeps serving meanwhile. */

#define LK_NOTIFY_STATUS_MS 5000
#define LK_NOTIFY_STATUS_MAX 256

/* Writes one line describing the daemon (key=value pairs) into buf, NUL-terminated. */
typedef void (*lk_notify_status_fn)(void *arg, char *buf, size_t len);

struct lk_notify {
  uv_timer_t timer;
  int active;             /* NOTIFY_SOCKET was set at start: the timer is initialised */
  uint64_t watchdog_us;   /* WatchdogSec= of the unit, 0 for none */
  uint64_t status_due_ms; /* loop time from which the status line may be sent again */
  lk_notify_status_fn status;
  void *arg;
  char last[LK_NOTIFY_STATUS_MAX]; /* the status line last sent */
  int warned;                      /* a failed send has been logged */
};

/* Says READY=1 and starts the timer; status may be NULL. Returns LK_OK (also when NOTIFY_SOCKET
 * is unset), or LK_EIO when the timer cannot be started, after logging. */
int lk_notify_start(struct lk_notify *n, uv_loop_t *loop, lk_notify_status_fn status, void *arg);

/* Says STOPPING=1 and closes the timer. Safe to call when start was not called or did nothing. */
void lk_notify_stop(struct lk_notify *n);

#endif
