#include "linkage/clock.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

int64_t lk_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t lk_mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int take_digits(const char **p, int n, int *out) {
  int v = 0;

  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i])) return -1;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

int lk_parse_iso8601(const char *s, int64_t *out) {
  struct tm tm, back;
  int y, mo, d, h, mi, sec = 0, oh = 0, om = 0, sign = 0;
  long frac = 0;
  const char *p = s;
  time_t t;

  if (!s) return -1;
  if (take_digits(&p, 4, &y) || *p++ != '-' || take_digits(&p, 2, &mo) || *p++ != '-' ||
      take_digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' ') || !*p++ ||
      take_digits(&p, 2, &h) || *p++ != ':' || take_digits(&p, 2, &mi))
    return -1;
  if (*p == ':') {
    p++;
    if (take_digits(&p, 2, &sec)) return -1;
    if (*p == '.' || *p == ',') {
      long scale = 100000;
      p++;
      if (!isdigit((unsigned char)*p)) return -1;
      for (; isdigit((unsigned char)*p); p++) {
        frac += (*p - '0') * scale; /* digits past microseconds are dropped */
        scale /= 10;
      }
    }
  }
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    sign = *p++ == '+' ? 1 : -1;
    if (take_digits(&p, 2, &oh)) return -1;
    if (*p == ':') p++;
    if (take_digits(&p, 2, &om) || oh > 23 || om > 59) return -1;
  } else {
    return -1; /* no zone */
  }
  if (*p != '\0') return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return -1;
  memset(&tm, 0, sizeof tm);
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  t = timegm(&tm);
  /* timegm normalises 31 April into 1 May: a round trip catches it. */
  if (!gmtime_r(&t, &back) || back.tm_mday != d || back.tm_mon != mo - 1) return -1;
  t -= (time_t)sign * (oh * 3600 + om * 60);
  *out = (int64_t)t * 1000000 + frac;
  return 0;
}
