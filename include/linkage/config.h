#ifndef LINKAGE_CONFIG_H
#define LINKAGE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

/* One table per daemon (Redis's static_configs[]): key, type, bounds,
 * default, where it lives in the daemon's config struct, one line of help.
 * Precedence: default < file < environment (LINKAGE_<KEY>, upper case). */

#define LK_CONFIG_STR 512

enum lk_config_type { LK_CFG_STRING, LK_CFG_INT, LK_CFG_BOOL, LK_CFG_DOUBLE };

struct lk_config_entry {
  const char *key;
  enum lk_config_type type;
  size_t offset;    /* offsetof(struct <svc>_config, field) */
  double min, max;  /* bounds for INT and DOUBLE */
  const char *def;  /* default, as it would be written in the file */
  const char *help; /* one line */
};

/* Field types by entry type: STRING -> char[LK_CONFIG_STR], INT -> long,
 * BOOL -> int, DOUBLE -> double. */

/* Sets every entry of `cfg` to its default, then applies `path` (if not NULL)
 * and the environment. The file holds `key = value` lines; '#' starts a
 * comment. Unknown keys, bad values and values out of bounds fail with
 * "file:line: ..." in err. Returns LK_OK or LK_EINVAL / LK_ENOENT. */
int lk_config_load(const struct lk_config_entry *table, size_t n, void *cfg, const char *path,
                   char *err, size_t errlen);

/* Sets one key from its text form; used by the loader and by --set. */
int lk_config_set(const struct lk_config_entry *table, size_t n, void *cfg, const char *key,
                  const char *value, char *err, size_t errlen);

/* Prints the table as documentation (--help-config). */
void lk_config_print_help(const struct lk_config_entry *table, size_t n, FILE *out);

/* Prints the effective values (--check-config). */
void lk_config_print_values(const struct lk_config_entry *table, size_t n, const void *cfg,
                            FILE *out);

#endif
