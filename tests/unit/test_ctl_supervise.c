/* The supervisor's restart decisions (services/linkagectl/ctl_supervise.c),
 * with time handed in. */
#include <signal.h>

#include "linkagectl/ctl.h"
#include "lk_test.h"

#define MS 1000LL
#define S (1000 * 1000LL)

LK_TEST(first_crash_restarts_at_once) {
  struct ctl_child c;
  struct ctl_decision d;

  ctl_child_init(&c);
  ctl_child_started(&c, 5 * S);
  LK_CHECK(c.running);
  d = ctl_child_exited(&c, 1, 0, 0, 5 * S + 100 * MS);
  LK_CHECK_EQ_INT(d.verdict, CTL_RESTART);
  LK_CHECK_EQ_INT(d.delay_us, 0);
  LK_CHECK(!c.running);
  LK_CHECK_EQ_INT(c.restarts, 1);
}

LK_TEST(crash_loop_right_after_start_backs_off_up_to_10s) {
  static const long long want_ms[] = {0, 200, 400, 800, 1600, 3200, 6400, 10000, 10000};
  struct ctl_child c;
  int64_t now = 0;
  size_t i;

  ctl_child_init(&c);
  for (i = 0; i < sizeof want_ms / sizeof want_ms[0]; i++) {
    struct ctl_decision d;

    ctl_child_started(&c, now);
    now += 50 * MS; /* dies quickly every time */
    d = ctl_child_exited(&c, 1, 0, 0, now);
    LK_CHECK_EQ_INT(d.verdict, CTL_RESTART);
    LK_CHECK_EQ_INT(d.delay_us, want_ms[i] * MS);
    now += d.delay_us;
  }
}

LK_TEST(a_daemon_killed_after_start_comes_back_at_once_every_time) {
  struct ctl_child c;
  struct ctl_decision d;
  int64_t now = 0;
  int i;

  ctl_child_init(&c);
  for (i = 0; i < 5; i++) { /* a crash loop: the backoff climbs to 1.6 s */
    ctl_child_started(&c, now);
    d = ctl_child_exited(&c, 1, 0, 0, now + 10 * MS);
    now += 10 * MS + d.delay_us;
  }
  LK_CHECK_EQ_INT(d.delay_us, 1600 * MS);

  /* Just short of a second up: still the loop. */
  ctl_child_started(&c, now);
  now += CTL_HEALTHY_US - 1;
  d = ctl_child_exited(&c, 1, 0, 0, now);
  LK_CHECK_EQ_INT(d.delay_us, 3200 * MS);

  /* A second up, then kill -9, eight times: back at once each time. */
  now += d.delay_us;
  for (i = 0; i < 8; i++) {
    ctl_child_started(&c, now);
    now += 2 * S;
    d = ctl_child_exited(&c, 0, SIGKILL, 0, now);
    LK_CHECK_EQ_INT(d.verdict, CTL_RESTART);
    LK_CHECK_EQ_INT(d.delay_us, 0);
  }
  /* ... and a quick crash after that starts the backoff from its beginning. */
  ctl_child_started(&c, now);
  d = ctl_child_exited(&c, 0, SIGSEGV, 0, now + 1 * MS);
  LK_CHECK_EQ_INT(d.delay_us, 200 * MS);
}

LK_TEST(clean_exit_while_running_is_still_unexpected) {
  struct ctl_child c;
  struct ctl_decision d;

  ctl_child_init(&c);
  ctl_child_started(&c, 0);
  d = ctl_child_exited(&c, 0, 0, 0, 1 * S);
  LK_CHECK_EQ_INT(d.verdict, CTL_RESTART);
  LK_CHECK_EQ_INT(d.delay_us, 0);
}

LK_TEST(no_restart_while_stopping) {
  struct ctl_child c;
  struct ctl_decision d;

  ctl_child_init(&c);
  ctl_child_started(&c, 0);
  d = ctl_child_exited(&c, 0, SIGTERM, 1, 1 * S);
  LK_CHECK_EQ_INT(d.verdict, CTL_STAY_DOWN);
  LK_CHECK(!c.running);
  LK_CHECK_EQ_INT(c.restarts, 0);

  /* Even a crash during the stop is not restarted. */
  ctl_child_started(&c, 2 * S);
  d = ctl_child_exited(&c, 1, 0, 1, 3 * S);
  LK_CHECK_EQ_INT(d.verdict, CTL_STAY_DOWN);
}

LK_TEST(configuration_refused_gives_up) {
  struct ctl_child c;
  struct ctl_decision d;

  ctl_child_init(&c);
  ctl_child_started(&c, 0);
  d = ctl_child_exited(&c, 2, 0, 0, 10 * MS);
  LK_CHECK_EQ_INT(d.verdict, CTL_GIVE_UP);
  ctl_child_started(&c, 0);
  d = ctl_child_exited(&c, 78, 0, 0, 10 * MS);
  LK_CHECK_EQ_INT(d.verdict, CTL_GIVE_UP);
  /* Signal number 2 is SIGINT, not the status 2: a killed daemon restarts. */
  ctl_child_started(&c, 0);
  d = ctl_child_exited(&c, 0, SIGINT, 0, 10 * MS);
  LK_CHECK_EQ_INT(d.verdict, CTL_RESTART);
  /* A daemon that failed to start for another reason (exit 1) comes back. */
  ctl_child_started(&c, 0);
  d = ctl_child_exited(&c, 1, 0, 0, 10 * MS);
  LK_CHECK_EQ_INT(d.verdict, CTL_RESTART);
}

int main(void) {
  return lk_test_run_all();
}
