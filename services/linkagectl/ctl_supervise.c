/* The supervisor's decisions: whether and when to restart a daemon that
 * exited. Plain functions with time passed in (tests/unit/test_ctl_supervise.c). */
#include "ctl.h"

void ctl_child_init(struct ctl_child *c) {
  c->running = 0;
  c->started_us = 0;
  c->next_backoff_us = 0;
  c->restarts = 0;
}

void ctl_child_started(struct ctl_child *c, int64_t now_us) {
  c->running = 1;
  c->started_us = now_us;
}

struct ctl_decision ctl_child_exited(struct ctl_child *c, int64_t exit_status, int term_signal,
                                     int stopping, int64_t now_us) {
  struct ctl_decision d = {CTL_STAY_DOWN, 0};
  int64_t uptime = now_us - c->started_us;

  c->running = 0;
  if (stopping) return d;
  /* 2 (lk_service_run's usage and configuration error) or 78 (EX_CONFIG):
   * the daemon rejected its settings, and will reject them again. */
  if (term_signal == 0 && (exit_status == 2 || exit_status == 78)) {
    d.verdict = CTL_GIVE_UP;
    return d;
  }
  /* A daemon that got past its start was healthy: its crash is news, not a crash loop, and an
   * emergency system wants its decision-maker back at once (deadlines wait in its heap). Only a
   * daemon that keeps dying right after start backs off: 0, then 200 ms doubling to 10 s. */
  if (uptime >= CTL_HEALTHY_US) c->next_backoff_us = 0;
  d.verdict = CTL_RESTART;
  d.delay_us = c->next_backoff_us;
  c->next_backoff_us = c->next_backoff_us ? c->next_backoff_us * 2 : CTL_BACKOFF_MIN_US;
  if (c->next_backoff_us > CTL_BACKOFF_MAX_US) c->next_backoff_us = CTL_BACKOFF_MAX_US;
  c->restarts++;
  return d;
}
