#include "linkage/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_svc = "linkage";
static enum lk_log_level log_min = LK_LOG_INFO;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void lk_log_init(const char *svc, enum lk_log_level min) {
  log_svc = svc;
  log_min = min;
}

const char *lk_log_quote(char *buf, unsigned n, const char *s) {
  unsigned o = 0;
  if (n == 0) return buf;
  for (; s && *s && o + 3 < n; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      buf[o++] = '\\';
      buf[o++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      buf[o++] = ' ';
    } else {
      buf[o++] = (char)c;
    }
  }
  buf[o] = '\0';
  return buf;
}

int lk_log_enabled(enum lk_log_level level) {
  return level >= log_min;
}

void lk_log(enum lk_log_level level, const char *msg, const char *fields, ...) {
  if (!lk_log_enabled(level)) return;
  /* One write per line so lines from several daemons sharing stderr do not interleave. */
  char line[2048];
  char ts[40];
  struct timespec now;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  char qmsg[512];
  int n = snprintf(line, sizeof line, "ts=%s.%03ldZ level=%s svc=%s msg=\"%s\"", ts,
                   now.tv_nsec / 1000000, level_names[level], log_svc,
                   lk_log_quote(qmsg, sizeof qmsg, msg));
  if (n < 0) return;
  if ((size_t)n >= sizeof line - 2) n = (int)sizeof line - 2;
  if (fields && *fields) {
    line[n++] = ' ';
    va_list ap;
    va_start(ap, fields);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fields, ap);
    va_end(ap);
    if (m > 0) n += m < (int)(sizeof line - (size_t)n - 1) ? m : (int)(sizeof line - (size_t)n - 2);
  }
  for (int i = 0; i < n; i++)
    if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
  line[n++] = '\n';
  fwrite(line, 1, (size_t)n, stderr);
}
