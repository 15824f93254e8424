/* Validation of a device's Report against CONTRACT.md (version 1).
 *
 * Every violation found is named, joined by "; " on one line, so a device
 * developer fixes them in one round. protobuf-c checks neither UTF-8 nor
 * enum ranges, so both are checked here. A string field holding a NUL byte
 * cannot be seen: protobuf-c hands back C strings that end at the NUL. */

#include "linkage/report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "linkage/error.h"

struct problems {
  char *buf;
  size_t len, used;
  int count;
};

__attribute__((format(printf, 2, 3))) static void add(struct problems *p, const char *fmt, ...) {
  p->count++;
  if (p->buf == NULL || p->len == 0 || p->used + 1 >= p->len) return;
  if (p->count > 1) {
    int n = snprintf(p->buf + p->used, p->len - p->used, "; ");
    p->used += (size_t)n;
    if (p->used >= p->len) {
      p->used = p->len - 1;
      return;
    }
  }
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(p->buf + p->used, p->len - p->used, fmt, ap);
  va_end(ap);
  if (n > 0) p->used += (size_t)n;
  if (p->used >= p->len) p->used = p->len - 1;
}

/* A string field: at most `max` bytes (0: no limit), valid UTF-8. */
static void check_string(struct problems *p, const char *name, const char *s, size_t max,
                         int required) {
  size_t len = s ? strlen(s) : 0;
  if (required && len == 0) {
    add(p, "%s is required", name);
    return;
  }
  if (max > 0 && len > max) add(p, "%s is %zu bytes, max %zu", name, len, max);
  if (len > 0 && !lk_utf8_valid(s, len)) add(p, "%s is not valid UTF-8", name);
}

static void check_enum(struct problems *p, const char *name, const ProtobufCEnumDescriptor *desc,
                       int value) {
  if (value == 0) {
    add(p, "%s is required (0 is %s_UNSPECIFIED)", name,
        strcmp(name, "category") == 0 ? "CATEGORY" : "SEVERITY");
    return;
  }
  if (protobuf_c_enum_descriptor_get_value(desc, value) == NULL)
    add(p, "%s %d is not a known %s", name, value, desc->short_name);
}

static void check_degrees(struct problems *p, const char *name, double v, double bound) {
  if (isnan(v))
    add(p, "%s is NaN", name);
  else if (v < -bound || v > bound)
    add(p, "%s %g is outside [%g, %g]", name, v, -bound, bound);
}

/* The compound id echoed back, with quotes and control bytes escaped. */
static void quote_id(char *out, size_t outlen, const char *s) {
  size_t o = 0;
  for (; *s && o + 5 < outlen; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    } else {
      out[o++] = (char)c;
    }
  }
  out[o] = '\0';
}

static void check_location(struct problems *p, const Linkage__V1__Location *loc,
                           const struct lk_district *d) {
  if (loc == NULL) {
    add(p, "location is required");
    return;
  }
  const char *cid = loc->compound_id ? loc->compound_id : "";
  size_t clen = strlen(cid);
  if (clen == 0) {
    add(p, "location.compound_id is required");
  } else if (clen > LK_LOCATION_FIELD_MAX) {
    add(p, "location.compound_id is %zu bytes, max %d", clen, LK_LOCATION_FIELD_MAX);
  } else if (!lk_utf8_valid(cid, clen)) {
    add(p, "location.compound_id is not valid UTF-8");
  } else if (d != NULL && lk_district_compound(d, cid) == NULL) {
    char q[4 * LK_LOCATION_FIELD_MAX + 8];
    quote_id(q, sizeof(q), cid);
    add(p, "location.compound_id \"%s\" is not a compound of this district", q);
  }
  check_string(p, "location.building", loc->building, LK_LOCATION_FIELD_MAX, 0);
  check_string(p, "location.unit", loc->unit, LK_LOCATION_FIELD_MAX, 0);
  check_degrees(p, "location.lat", loc->lat, 90);
  check_degrees(p, "location.lon", loc->lon, 180);
}

int lk_report_check(const Linkage__V1__Report *r, const struct lk_district *d, char *err,
                    size_t errlen) {
  struct problems p = {err, errlen, 0, 0};
  if (err && errlen) err[0] = '\0';
  if (r == NULL) {
    add(&p, "no report");
    return LK_EINVAL;
  }
  check_string(&p, "device_id", r->device_id, LK_DEVICE_ID_MAX, 1);
  if (r->sequence == 0) add(&p, "sequence must be > 0");
  check_enum(&p, "category", &linkage__v1__category__descriptor, (int)r->category);
  check_string(&p, "kind", r->kind, LK_KIND_MAX, 0);
  check_enum(&p, "severity", &linkage__v1__severity__descriptor, (int)r->severity);
  check_location(&p, r->location, d);
  check_string(&p, "description", r->description, LK_DESCRIPTION_MAX, 0);
  if (r->observed_at_us < 0) add(&p, "observed_at_us must be >= 0");
  return p.count == 0 ? LK_OK : LK_EINVAL;
}

/* ---- the wire: NUL bytes inside string fields ---- */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; *p < end && shift < 64; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

struct wire_strings {
  const char *const *names; /* names[field] for string fields, NULL otherwise */
  size_t count;
  uint32_t nested_field; /* a message field whose strings are checked too (0: none) */
  const struct wire_strings *nested;
};

/* Looks at every length-delimited field, every occurrence of it (protobuf merges repeated
 * occurrences of a message field, so a NUL in any of them can survive). -1 if malformed. */
static int walk_fields(const uint8_t *buf, size_t len, const struct wire_strings *w,
                       const char **bad) {
  const uint8_t *p = buf, *end = buf + len;
  while (p < end) {
    uint64_t key, n;
    if (read_varint(&p, end, &key)) return -1;
    uint32_t field = (uint32_t)(key >> 3);
    switch (key & 7) {
    case 0:
      if (read_varint(&p, end, &n)) return -1;
      break;
    case 1:
      if (end - p < 8) return -1;
      p += 8;
      break;
    case 5:
      if (end - p < 4) return -1;
      p += 4;
      break;
    case 2:
      if (read_varint(&p, end, &n) || n > (uint64_t)(end - p)) return -1;
      if (field < w->count && w->names[field] && memchr(p, 0, (size_t)n)) *bad = w->names[field];
      if (w->nested && field == w->nested_field && walk_fields(p, (size_t)n, w->nested, bad))
        return -1;
      p += n;
      break;
    default: return -1;
    }
  }
  return 0;
}

int lk_report_wire_check(const uint8_t *buf, size_t len, char *err, size_t errlen) {
  static const char *const location_names[] = {NULL, "location.compound_id", "location.building",
                                               "location.unit"};
  static const struct wire_strings location = {location_names, 4, 0, NULL};
  static const char *const report_names[] = {NULL,   "device_id", NULL, NULL,
                                             "kind", NULL,        NULL, "description"};
  static const struct wire_strings report = {report_names, 8, 6, &location};
  const char *bad = NULL;
  walk_fields(buf, len, &report, &bad);
  if (!bad) return LK_OK;
  snprintf(err, errlen, "%s holds a NUL byte", bad);
  return LK_EINVAL;
}
