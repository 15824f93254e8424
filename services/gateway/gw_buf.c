/* The output buffer every renderer writes into, and the one time format they share. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"

void gw_buf_init(struct gw_buf *b) {
  memset(b, 0, sizeof *b);
}

void gw_buf_free(struct gw_buf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

void gw_buf_reset(struct gw_buf *b) {
  b->len = 0;
  b->failed = 0;
  if (b->data) b->data[0] = '\0';
}

static int reserve(struct gw_buf *b, size_t more) {
  if (b->failed) return 0;
  if (b->len + more + 1 <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + more + 1) {
    if (cap > (size_t)1 << 30) {
      b->failed = 1;
      return 0;
    }
    cap *= 2;
  }
  char *d = realloc(b->data, cap);
  if (!d) {
    b->failed = 1;
    return 0;
  }
  b->data = d;
  b->cap = cap;
  return 1;
}

void gw_buf_add(struct gw_buf *b, const char *s, size_t n) {
  if (!reserve(b, n)) return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void gw_buf_puts(struct gw_buf *b, const char *s) {
  gw_buf_add(b, s, strlen(s));
}

void gw_buf_printf(struct gw_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
    return;
  }
  if ((size_t)n < sizeof small) {
    gw_buf_add(b, small, (size_t)n);
    return;
  }
  if (!reserve(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void gw_buf_json_str(struct gw_buf *b, const char *s) {
  if (!s) {
    gw_buf_puts(b, "null");
    return;
  }
  gw_buf_add(b, "\"", 1);
  const char *run = s;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    const char *esc = NULL;
    char u[8];
    switch (*p) {
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    /* "</script>" inside a page, and the line separators JavaScript treats as ends of lines,
     * are harmless in JSON but not everywhere JSON ends up. */
    case '<': esc = "\\u003c"; break;
    default:
      if (*p < 0x20) {
        snprintf(u, sizeof u, "\\u%04x", *p);
        esc = u;
      }
    }
    if (!esc) continue;
    gw_buf_add(b, run, (size_t)((const char *)p - run));
    gw_buf_puts(b, esc);
    run = (const char *)p + 1;
  }
  gw_buf_puts(b, run);
  gw_buf_add(b, "\"", 1);
}

void gw_buf_xml(struct gw_buf *b, const char *s) {
  if (!s) return;
  const char *run = s;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    const char *esc = NULL;
    switch (*p) {
    case '&': esc = "&amp;"; break;
    case '<': esc = "&lt;"; break;
    case '>': esc = "&gt;"; break;
    case '"': esc = "&quot;"; break;
    case '\'': esc = "&apos;"; break;
    /* XML 1.0 has no way to carry these; tab, LF and CR it keeps. */
    default:
      if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') esc = "";
    }
    if (!esc) continue;
    gw_buf_add(b, run, (size_t)((const char *)p - run));
    gw_buf_puts(b, esc);
    run = (const char *)p + 1;
  }
  gw_buf_puts(b, run);
}

char *gw_buf_take(struct gw_buf *b, size_t *len) {
  if (!b->data) reserve(b, 0);
  char *d = b->failed ? NULL : b->data;
  if (len) *len = d ? b->len : 0;
  if (!d) free(b->data);
  memset(b, 0, sizeof *b);
  return d;
}

void gw_time_format(int64_t us, char *out) {
  time_t t = (time_t)(us / 1000000);
  if (us < 0 && us % 1000000) t--;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}
