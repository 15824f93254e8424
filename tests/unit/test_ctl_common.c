/* linkagectl's small shared helpers (services/linkagectl/ctl_common.c). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "linkagectl/ctl.h"
#include "lk_test.h"

LK_TEST(parse_u64_takes_plain_decimals_only) {
  uint64_t v = 99;

  LK_CHECK_EQ_INT(ctl_parse_u64("0", &v), 0);
  LK_CHECK_EQ_INT(v, 0);
  LK_CHECK_EQ_INT(ctl_parse_u64("18446744073709551615", &v), 0);
  LK_CHECK(v == UINT64_MAX);
  LK_CHECK_EQ_INT(ctl_parse_u64("18446744073709551616", &v), -1);
  LK_CHECK_EQ_INT(ctl_parse_u64("-1", &v), -1);
  LK_CHECK_EQ_INT(ctl_parse_u64("+1", &v), -1);
  LK_CHECK_EQ_INT(ctl_parse_u64("", &v), -1);
  LK_CHECK_EQ_INT(ctl_parse_u64("12x", &v), -1);
  LK_CHECK_EQ_INT(ctl_parse_u64(NULL, &v), -1);
}

LK_TEST(format_time_is_utc_iso8601_with_microseconds) {
  char buf[64];

  ctl_format_time(0, buf, sizeof buf);
  LK_CHECK_STR(buf, "1970-01-01T00:00:00.000000Z");
  ctl_format_time(1795000000123456LL, buf, sizeof buf);
  LK_CHECK_STR(buf, "2026-11-18T11:06:40.123456Z");
  ctl_format_time(-1, buf, sizeof buf);
  LK_CHECK_STR(buf, "1969-12-31T23:59:59.999999Z");
}

LK_TEST(control_endpoint_is_absolute) {
  char buf[4200], cwd[4096], want[4200];
  const char *old = getenv("LINKAGE_RUN_DIR");
  char *saved = old ? strdup(old) : NULL;

  setenv("LINKAGE_RUN_DIR", "/srv/linkage/run", 1);
  ctl_control_endpoint("ledger", buf, sizeof buf);
  LK_CHECK_STR(buf, "ipc:///srv/linkage/run/ledger.ctl");

  setenv("LINKAGE_RUN_DIR", "var/run", 1);
  ctl_control_endpoint("intake", buf, sizeof buf);
  LK_CHECK(getcwd(cwd, sizeof cwd) != NULL);
  snprintf(want, sizeof want, "ipc://%s/var/run/intake.ctl", cwd);
  LK_CHECK_STR(buf, want);

  if (saved) {
    setenv("LINKAGE_RUN_DIR", saved, 1);
    free(saved);
  } else {
    unsetenv("LINKAGE_RUN_DIR");
  }
}

LK_TEST(daemon_table_starts_with_the_ledger) {
  LK_CHECK(ctl_daemon_count >= 2);
  LK_CHECK_STR(ctl_daemons[0].name, "ledger");
  LK_CHECK_STR(ctl_daemons[0].binary, "linkage-ledger");
  LK_CHECK_STR(ctl_daemons[1].name, "intake");
  LK_CHECK_STR(ctl_daemons[1].binary, "linkage-intake");
}

int main(void) {
  return lk_test_run_all();
}
