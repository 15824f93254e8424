/* systemd's service protocol for the skeleton: READY, WATCHDOG, STATUS, STOPPING (notify.h). */
#include "linkage/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "linkage/error.h"
#include "linkage/log.h"

static void send_state(struct lk_notify *n, const char *state) {
  int rc = sd_notify(0, state);
  if (rc >= 0 || n->warned) return;
  /* Once: a socket that is gone stays gone, and a line per watchdog period would flood the log. */
  n->warned = 1;
  lk_warn("cannot notify systemd", "socket=\"%s\" err=\"%s\"", getenv("NOTIFY_SOCKET"),
          strerror(-rc));
}

/* The daemon's status line, on one line: the protocol separates assignments with newlines. */
static void read_status(const struct lk_notify *n, char *buf, size_t len) {
  buf[0] = '\0';
  if (n->status) n->status(n->arg, buf, len);
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  if (!buf[0]) snprintf(buf, len, "running");
}

/* Duties: WATCHDOG=1 every turn when the unit has a watchdog; STATUS= when due and changed. */
static void timer_cb(uv_timer_t *h) {
  struct lk_notify *n = h->data;
  char msg[LK_NOTIFY_STATUS_MAX + 32];
  size_t off = 0;
  uint64_t now = uv_now(h->loop);

  msg[0] = '\0';
  if (n->watchdog_us) off = (size_t)snprintf(msg, sizeof msg, "WATCHDOG=1");
  if (now >= n->status_due_ms) {
    char line[LK_NOTIFY_STATUS_MAX];
    read_status(n, line, sizeof line);
    if (strcmp(line, n->last) != 0) {
      snprintf(msg + off, sizeof msg - off, "%sSTATUS=%s", off ? "\n" : "", line);
      memcpy(n->last, line, sizeof n->last);
      off = strlen(msg);
    }
    n->status_due_ms = now + LK_NOTIFY_STATUS_MS;
  }
  if (off) send_state(n, msg);
}

int lk_notify_start(struct lk_notify *n, uv_loop_t *loop, lk_notify_status_fn status, void *arg) {
  char msg[LK_NOTIFY_STATUS_MAX + 64];
  uint64_t usec = 0, period_ms = LK_NOTIFY_STATUS_MS;
  const char *sock = getenv("NOTIFY_SOCKET");

  memset(n, 0, sizeof *n);
  n->status = status;
  n->arg = arg;
  if (!sock || !*sock) return LK_OK;

  /* The environment stays: sd_notify reads NOTIFY_SOCKET again on every call. */
  int rc = sd_watchdog_enabled(0, &usec);
  if (rc < 0)
    lk_warn("ignoring a malformed watchdog setting", "WATCHDOG_USEC=\"%s\" err=\"%s\"",
            getenv("WATCHDOG_USEC"), strerror(-rc));
  else if (rc > 0)
    n->watchdog_us = usec;
  /* Half the interval, as sd_watchdog_enabled(3) advises: one late turn is not yet a kill. */
  if (n->watchdog_us) {
    uint64_t half_ms = n->watchdog_us / 2000;
    if (half_ms < 1) half_ms = 1;
    if (half_ms < period_ms) period_ms = half_ms;
  }

  rc = uv_timer_init(loop, &n->timer);
  if (rc != 0) {
    lk_error("cannot create the systemd notification timer", "err=\"%s\"", uv_strerror(rc));
    return LK_EIO;
  }
  n->timer.data = n;
  n->active = 1;
  rc = uv_timer_start(&n->timer, timer_cb, period_ms, period_ms);
  if (rc != 0) {
    lk_error("cannot start the systemd notification timer", "err=\"%s\"", uv_strerror(rc));
    n->active = 0;
    uv_close((uv_handle_t *)&n->timer, NULL);
    return LK_EIO;
  }

  read_status(n, n->last, sizeof n->last);
  snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s\nMAINPID=%ld%s", n->last, (long)getpid(),
           n->watchdog_us ? "\nWATCHDOG=1" : "");
  send_state(n, msg);
  n->status_due_ms = uv_now(loop) + LK_NOTIFY_STATUS_MS;
  lk_info("told systemd we are ready", "watchdog_ms=%llu",
          (unsigned long long)(n->watchdog_us / 1000));
  return LK_OK;
}

void lk_notify_stop(struct lk_notify *n) {
  if (!n->active) return;
  n->active = 0;
  send_state(n, "STOPPING=1");
  uv_timer_stop(&n->timer);
  uv_close((uv_handle_t *)&n->timer, NULL);
}
