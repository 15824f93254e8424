/* The Prometheus text format writer (linkage/metrics.h). Pure: a growing buffer, no I/O. */
#include "linkage/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkage/error.h"

int lk_histogram_init(struct lk_histogram *h, const double *bounds, size_t n) {
  memset(h, 0, sizeof *h);
  if (n == 0 || n > LK_HISTOGRAM_BUCKETS_MAX) return LK_EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) return LK_EINVAL;
  }
  h->bounds = bounds;
  h->n = n;
  return LK_OK;
}

void lk_histogram_observe(struct lk_histogram *h, double v) {
  size_t i = 0;
  /* A few buckets: a linear search is as fast as any. NaN lands above every bound. */
  while (i < h->n && !(v <= h->bounds[i]))
    i++;
  h->counts[i]++;
  h->count++;
  if (!isnan(v)) h->sum += v;
}

void lk_metrics_writer_init(struct lk_metrics_writer *w) {
  memset(w, 0, sizeof *w);
}

void lk_metrics_writer_close(struct lk_metrics_writer *w) {
  free(w->buf);
  memset(w, 0, sizeof *w);
}

char *lk_metrics_writer_take(struct lk_metrics_writer *w, size_t *len) {
  int err = w->err;
  char *out = NULL;
  if (err == LK_OK) {
    out = w->buf ? w->buf : calloc(1, 1); /* an empty scrape is still a document */
    if (!out) err = LK_ENOMEM;
    if (out && len) *len = w->len;
    w->buf = NULL;
  }
  lk_metrics_writer_close(w);
  w->err = err;
  return out;
}

static void fail(struct lk_metrics_writer *w, int err) {
  if (w->err == LK_OK) w->err = err;
}

static int reserve(struct lk_metrics_writer *w, size_t more) {
  if (w->err != LK_OK) return -1;
  if (w->len + more + 1 <= w->cap) return 0;
  size_t cap = w->cap ? w->cap : 4096;
  while (cap < w->len + more + 1)
    cap *= 2;
  char *b = realloc(w->buf, cap);
  if (!b) {
    fail(w, LK_ENOMEM);
    return -1;
  }
  w->buf = b;
  w->cap = cap;
  return 0;
}

static void put(struct lk_metrics_writer *w, const char *s, size_t n) {
  if (reserve(w, n) != 0) return;
  memcpy(w->buf + w->len, s, n);
  w->len += n;
  w->buf[w->len] = '\0';
}

static void puts_(struct lk_metrics_writer *w, const char *s) {
  put(w, s, strlen(s));
}

/* Escapes backslash and newline (HELP text), and the double quote too (label values). */
static void put_escaped(struct lk_metrics_writer *w, const char *s, int quote) {
  for (const char *p = s; *p; p++) {
    if (*p == '\\')
      put(w, "\\\\", 2);
    else if (*p == '\n')
      put(w, "\\n", 2);
    else if (*p == '"' && quote)
      put(w, "\\\"", 2);
    else
      put(w, p, 1);
  }
}

static int name_ok(const char *s, int colon) {
  if (!s || !*s) return 0;
  for (const char *p = s; *p; p++) {
    int alpha =
        (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || (colon && *p == ':');
    if (!alpha && !(p > s && *p >= '0' && *p <= '9')) return 0;
  }
  return 1;
}

/* Label names: no colon, and "__" is reserved for Prometheus itself. */
static int label_name_ok(const char *s) {
  return name_ok(s, 0) && strncmp(s, "__", 2) != 0;
}

void lk_metrics_format_value(double v, char *out, size_t len) {
  if (isnan(v)) {
    snprintf(out, len, "NaN");
  } else if (isinf(v)) {
    snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
  } else if (v == floor(v) && fabs(v) < 1e15) {
    snprintf(out, len, "%.0f", v);
  } else {
    snprintf(out, len, "%.15g", v);
    if (strtod(out, NULL) != v) snprintf(out, len, "%.17g", v);
  }
}

void lk_metrics_family(struct lk_metrics_writer *w, const char *name, enum lk_metric_type type,
                       const char *help) {
  static const char *const types[] = {"counter", "gauge", "histogram"};
  if (w->err != LK_OK) return;
  if (!name_ok(name, 1) || strlen(name) >= sizeof w->family ||
      (unsigned)type > LK_METRIC_HISTOGRAM) {
    fail(w, LK_EINVAL);
    return;
  }
  memcpy(w->family, name, strlen(name) + 1);
  w->type = type;
  w->in_family = 1;
  puts_(w, "# HELP ");
  puts_(w, name);
  puts_(w, " ");
  put_escaped(w, help ? help : "", 0);
  puts_(w, "\n# TYPE ");
  puts_(w, name);
  puts_(w, " ");
  puts_(w, types[type]);
  puts_(w, "\n");
}

struct labels {
  const char *name[LK_METRIC_LABELS_MAX + 1];
  const char *value[LK_METRIC_LABELS_MAX + 1];
  int n;
};

static int read_labels(struct lk_metrics_writer *w, va_list ap, struct labels *l) {
  l->n = 0;
  for (;;) {
    const char *k = va_arg(ap, const char *);
    if (!k) return 0;
    const char *v = va_arg(ap, const char *);
    /* "le" belongs to a histogram's buckets; a NULL value is a missing argument. */
    if (l->n == LK_METRIC_LABELS_MAX || !label_name_ok(k) || strcmp(k, "le") == 0 || !v) {
      fail(w, LK_EINVAL);
      return -1;
    }
    l->name[l->n] = k;
    l->value[l->n] = v;
    l->n++;
  }
}

/* name{k="v",...} value\n; `le` (may be NULL) is added as the last label. */
static void put_sample(struct lk_metrics_writer *w, const char *suffix, const struct labels *l,
                       const char *le, double value) {
  char num[40];
  puts_(w, w->family);
  puts_(w, suffix);
  if (l->n > 0 || le) {
    puts_(w, "{");
    for (int i = 0; i < l->n; i++) {
      if (i) puts_(w, ",");
      puts_(w, l->name[i]);
      puts_(w, "=\"");
      put_escaped(w, l->value[i], 1);
      puts_(w, "\"");
    }
    if (le) {
      puts_(w, l->n ? ",le=\"" : "le=\"");
      puts_(w, le);
      puts_(w, "\"");
    }
    puts_(w, "}");
  }
  lk_metrics_format_value(value, num, sizeof num);
  puts_(w, " ");
  puts_(w, num);
  puts_(w, "\n");
}

void lk_metrics_sample_pairs(struct lk_metrics_writer *w, double value, ...) {
  struct labels l;
  va_list ap;
  if (w->err != LK_OK) return;
  if (!w->in_family || w->type == LK_METRIC_HISTOGRAM) {
    fail(w, LK_EINVAL);
    return;
  }
  va_start(ap, value);
  int rc = read_labels(w, ap, &l);
  va_end(ap);
  if (rc == 0) put_sample(w, "", &l, NULL, value);
}

void lk_metrics_histogram_pairs(struct lk_metrics_writer *w, const struct lk_histogram *h, ...) {
  struct labels l;
  va_list ap;
  char le[40];
  if (w->err != LK_OK) return;
  if (!w->in_family || w->type != LK_METRIC_HISTOGRAM || !h->bounds) {
    fail(w, LK_EINVAL);
    return;
  }
  va_start(ap, h);
  int rc = read_labels(w, ap, &l);
  va_end(ap);
  if (rc != 0) return;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h->n; i++) {
    cumulative += h->counts[i];
    lk_metrics_format_value(h->bounds[i], le, sizeof le);
    put_sample(w, "_bucket", &l, le, (double)cumulative);
  }
  put_sample(w, "_bucket", &l, "+Inf", (double)h->count);
  put_sample(w, "_sum", &l, NULL, h->sum);
  put_sample(w, "_count", &l, NULL, (double)h->count);
}

void lk_metrics_single(struct lk_metrics_writer *w, const char *name, enum lk_metric_type type,
                       const char *help, double value) {
  lk_metrics_family(w, name, type, help);
  lk_metrics_sample(w, value);
}
