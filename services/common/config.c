#include "linkage/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "linkage/error.h"

static const struct lk_config_entry *find_entry(const struct lk_config_entry *table, size_t n,
                                                const char *key) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(table[i].key, key) == 0) return &table[i];
  return NULL;
}

static int parse_bool(const char *v, int *out) {
  if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) {
    *out = 1;
    return 0;
  }
  if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) {
    *out = 0;
    return 0;
  }
  return -1;
}

static int set_entry(const struct lk_config_entry *e, void *cfg, const char *value, char *err,
                     size_t errlen) {
  char *field = (char *)cfg + e->offset;
  char *end = NULL;
  switch (e->type) {
  case LK_CFG_STRING:
    if (strlen(value) >= LK_CONFIG_STR) {
      snprintf(err, errlen, "value of \"%s\" is longer than %d bytes", e->key, LK_CONFIG_STR - 1);
      return LK_EINVAL;
    }
    memcpy(field, value, strlen(value) + 1);
    return LK_OK;
  case LK_CFG_INT: {
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end != '\0') {
      snprintf(err, errlen, "value of \"%s\" is not an integer: \"%s\"", e->key, value);
      return LK_EINVAL;
    }
    if ((double)v < e->min || (double)v > e->max) {
      snprintf(err, errlen, "value of \"%s\" is out of range [%.0f, %.0f]: %ld", e->key, e->min,
               e->max, v);
      return LK_EINVAL;
    }
    memcpy(field, &v, sizeof v);
    return LK_OK;
  }
  case LK_CFG_DOUBLE: {
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end != '\0' || isnan(v)) {
      snprintf(err, errlen, "value of \"%s\" is not a number: \"%s\"", e->key, value);
      return LK_EINVAL;
    }
    if (v < e->min || v > e->max) {
      snprintf(err, errlen, "value of \"%s\" is out of range [%g, %g]: %g", e->key, e->min, e->max,
               v);
      return LK_EINVAL;
    }
    memcpy(field, &v, sizeof v);
    return LK_OK;
  }
  case LK_CFG_BOOL: {
    int v;
    if (parse_bool(value, &v) != 0) {
      snprintf(err, errlen, "value of \"%s\" is not a boolean: \"%s\"", e->key, value);
      return LK_EINVAL;
    }
    memcpy(field, &v, sizeof v);
    return LK_OK;
  }
  }
  return LK_EINVAL;
}

int lk_config_set(const struct lk_config_entry *table, size_t n, void *cfg, const char *key,
                  const char *value, char *err, size_t errlen) {
  const struct lk_config_entry *e = find_entry(table, n, key);
  if (!e) {
    snprintf(err, errlen, "unknown key \"%s\"", key);
    return LK_EINVAL;
  }
  return set_entry(e, cfg, value, err, errlen);
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  char *end = s + strlen(s);
  while (end > s && isspace((unsigned char)end[-1]))
    *--end = '\0';
  return s;
}

static int load_file(const struct lk_config_entry *table, size_t n, void *cfg, const char *path,
                     char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return LK_ENOENT;
  }
  char line[LK_CONFIG_STR + 256];
  char why[LK_CONFIG_STR + 128];
  int lineno = 0, rc = LK_OK;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    if (!strchr(line, '\n') && !feof(f)) {
      snprintf(err, errlen, "%s:%d: line too long", path, lineno);
      rc = LK_EINVAL;
      break;
    }
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char *s = trim(line);
    if (*s == '\0') continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      snprintf(err, errlen, "%s:%d: expected \"key = value\"", path, lineno);
      rc = LK_EINVAL;
      break;
    }
    *eq = '\0';
    char *key = trim(s), *value = trim(eq + 1);
    if (lk_config_set(table, n, cfg, key, value, why, sizeof why) != LK_OK) {
      snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
      rc = LK_EINVAL;
      break;
    }
  }
  fclose(f);
  return rc;
}

/* LINKAGE_<KEY>: the key upper-cased, so one variable configures every daemon that shares the key.
 */
static void env_name(const char *key, char *out, size_t len) {
  size_t o = (size_t)snprintf(out, len, "LINKAGE_");
  for (; *key && o + 1 < len; key++)
    out[o++] = (char)toupper((unsigned char)*key);
  out[o] = '\0';
}

int lk_config_load(const struct lk_config_entry *table, size_t n, void *cfg, const char *path,
                   char *err, size_t errlen) {
  char why[LK_CONFIG_STR + 128];
  for (size_t i = 0; i < n; i++) {
    if (set_entry(&table[i], cfg, table[i].def, why, sizeof why) != LK_OK) {
      snprintf(err, errlen, "default: %s", why);
      return LK_EINVAL;
    }
  }
  if (path) {
    int rc = load_file(table, n, cfg, path, err, errlen);
    if (rc != LK_OK) return rc;
  }
  for (size_t i = 0; i < n; i++) {
    char name[128];
    env_name(table[i].key, name, sizeof name);
    const char *v = getenv(name);
    if (!v) continue;
    if (set_entry(&table[i], cfg, v, why, sizeof why) != LK_OK) {
      snprintf(err, errlen, "environment %s: %s", name, why);
      return LK_EINVAL;
    }
  }
  return LK_OK;
}

static const char *type_name(enum lk_config_type t) {
  switch (t) {
  case LK_CFG_STRING: return "string";
  case LK_CFG_INT: return "integer";
  case LK_CFG_BOOL: return "boolean";
  case LK_CFG_DOUBLE: return "number";
  }
  return "?";
}

void lk_config_print_help(const struct lk_config_entry *table, size_t n, FILE *out) {
  for (size_t i = 0; i < n; i++) {
    char name[128];
    env_name(table[i].key, name, sizeof name);
    fprintf(out, "  %-20s %-8s default \"%s\"", table[i].key, type_name(table[i].type),
            table[i].def);
    if (table[i].type == LK_CFG_INT || table[i].type == LK_CFG_DOUBLE)
      fprintf(out, ", range [%g, %g]", table[i].min, table[i].max);
    fprintf(out, ", env %s\n      %s\n", name, table[i].help);
  }
}

void lk_config_print_values(const struct lk_config_entry *table, size_t n, const void *cfg,
                            FILE *out) {
  for (size_t i = 0; i < n; i++) {
    const char *field = (const char *)cfg + table[i].offset;
    switch (table[i].type) {
    case LK_CFG_STRING: fprintf(out, "%s = %s\n", table[i].key, field); break;
    case LK_CFG_INT: {
      long v;
      memcpy(&v, field, sizeof v);
      fprintf(out, "%s = %ld\n", table[i].key, v);
      break;
    }
    case LK_CFG_BOOL: {
      int v;
      memcpy(&v, field, sizeof v);
      fprintf(out, "%s = %s\n", table[i].key, v ? "true" : "false");
      break;
    }
    case LK_CFG_DOUBLE: {
      double v;
      memcpy(&v, field, sizeof v);
      fprintf(out, "%s = %g\n", table[i].key, v);
      break;
    }
    }
  }
}
