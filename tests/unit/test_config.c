#include <stddef.h>
#include <stdlib.h>

#include "linkage/config.h"
#include "linkage/error.h"
#include "lk_test.h"

struct demo_config {
  char name[LK_CONFIG_STR];
  long batch;
  double ratio;
  int enabled;
};

static const struct lk_config_entry demo_table[] = {
    {"name", LK_CFG_STRING, offsetof(struct demo_config, name), 0, 0, "west", "a name"},
    {"batch", LK_CFG_INT, offsetof(struct demo_config, batch), 1, 10000, "64", "batch size"},
    {"ratio", LK_CFG_DOUBLE, offsetof(struct demo_config, ratio), 0, 1, "0.25", "a ratio"},
    {"enabled", LK_CFG_BOOL, offsetof(struct demo_config, enabled), 0, 0, "false", "on/off"},
};
#define N (sizeof demo_table / sizeof demo_table[0])

LK_TEST(defaults_apply_without_file) {
  struct demo_config c;
  char err[256];
  unsetenv("LINKAGE_BATCH");
  LK_CHECK_EQ_INT(lk_config_load(demo_table, N, &c, NULL, err, sizeof err), LK_OK);
  LK_CHECK_STR(c.name, "west");
  LK_CHECK_EQ_INT(c.batch, 64);
  LK_CHECK(c.ratio == 0.25);
  LK_CHECK_EQ_INT(c.enabled, 0);
}

LK_TEST(file_overrides_defaults_and_env_overrides_file) {
  struct demo_config c;
  char err[256];
  LK_CHECK_EQ_INT(lk_config_load(demo_table, N, &c, "tests/data/config/good.conf", err, sizeof err),
                  LK_OK);
  LK_CHECK_STR(c.name, "east wing");
  LK_CHECK_EQ_INT(c.batch, 128);
  LK_CHECK(c.ratio == 0.5);
  LK_CHECK_EQ_INT(c.enabled, 1);
  setenv("LINKAGE_BATCH", "7", 1);
  LK_CHECK_EQ_INT(lk_config_load(demo_table, N, &c, "tests/data/config/good.conf", err, sizeof err),
                  LK_OK);
  LK_CHECK_EQ_INT(c.batch, 7);
  setenv("LINKAGE_BATCH", "0", 1);
  LK_CHECK_EQ_INT(lk_config_load(demo_table, N, &c, NULL, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "LINKAGE_BATCH");
  unsetenv("LINKAGE_BATCH");
}

LK_TEST(bad_files_name_file_and_line) {
  struct demo_config c;
  char err[512];
  LK_CHECK_EQ_INT(
      lk_config_load(demo_table, N, &c, "tests/data/config/unknown-key.conf", err, sizeof err),
      LK_EINVAL);
  LK_CHECK_CONTAINS(err, "unknown-key.conf:2: unknown key \"bogus\"");
  LK_CHECK_EQ_INT(
      lk_config_load(demo_table, N, &c, "tests/data/config/out-of-range.conf", err, sizeof err),
      LK_EINVAL);
  LK_CHECK_CONTAINS(err, "out-of-range.conf:3:");
  LK_CHECK_CONTAINS(err, "out of range");
  LK_CHECK_EQ_INT(
      lk_config_load(demo_table, N, &c, "tests/data/config/no-equals.conf", err, sizeof err),
      LK_EINVAL);
  LK_CHECK_CONTAINS(err, "no-equals.conf:2: expected");
  LK_CHECK_EQ_INT(
      lk_config_load(demo_table, N, &c, "tests/data/config/not-int.conf", err, sizeof err),
      LK_EINVAL);
  LK_CHECK_CONTAINS(err, "not an integer");
  LK_CHECK_EQ_INT(
      lk_config_load(demo_table, N, &c, "tests/data/config/missing.conf", err, sizeof err),
      LK_ENOENT);
  LK_CHECK_CONTAINS(err, "missing.conf: cannot open");
}

LK_TEST(set_rejects_bad_bool_and_long_strings) {
  struct demo_config c;
  char err[256];
  char longval[LK_CONFIG_STR + 10];
  memset(longval, 'x', sizeof longval - 1);
  longval[sizeof longval - 1] = '\0';
  LK_CHECK_EQ_INT(lk_config_set(demo_table, N, &c, "enabled", "maybe", err, sizeof err), LK_EINVAL);
  LK_CHECK_EQ_INT(lk_config_set(demo_table, N, &c, "name", longval, err, sizeof err), LK_EINVAL);
  LK_CHECK_EQ_INT(lk_config_set(demo_table, N, &c, "ratio", "nan", err, sizeof err), LK_EINVAL);
  LK_CHECK_EQ_INT(lk_config_set(demo_table, N, &c, "ratio", "1.5", err, sizeof err), LK_EINVAL);
}

int main(void) {
  return lk_test_run_all();
}
