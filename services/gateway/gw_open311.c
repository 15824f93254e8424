/* Open311 GeoReport v2 over the gateway's projection (gw_open311.h). Every document exists in
 * two shapes, JSON and XML, written by the same code through the small `doc` writer below, so
 * the two can never disagree about which fields a request carries. */
#include "gw_open311.h"
#include "linkage/clock.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "linkage/error.h"
#include "linkage/event.h"

#define XML_DECL "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
#define US_PER_DAY (86400LL * 1000000LL)
#define CATEGORY_COUNT 8 /* index by Linkage__V1__Category; 0 unused */

/* ---- the services: one per category ---- */

struct service {
  const char *name;        /* service_name */
  const char *description; /* what belongs here */
  const char *group;
  const char *keywords; /* plus the kinds the district's plans name */
};

static const struct service services[CATEGORY_COUNT] = {
    [LINKAGE__V1__CATEGORY__NATURAL_DISASTER] =
        {"Natural disaster",
         "Flooding, waterlogging, storm damage, landslip or earthquake damage in or next to a "
         "compound.",
         "emergency", "flood,storm,earthquake,landslide"},
    [LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER] =
        {"Accident and disaster",
         "Fire, gas leak, trapped lift, collapse, electrical or other accident endangering "
         "residents.",
         "emergency", "fire,gas,lift,explosion,collapse,electrical"},
    [LINKAGE__V1__CATEGORY__PUBLIC_HEALTH] =
        {"Public health",
         "A cluster of illness, food poisoning, contaminated water, disease vectors.", "emergency",
         "illness,outbreak,food,water,sanitation"},
    [LINKAGE__V1__CATEGORY__SOCIAL_SAFETY] =
        {"Social safety", "A fight, threat, theft, crowd trouble or other public-order incident.",
         "emergency", "fight,theft,violence,crowd,public order"},
    [LINKAGE__V1__CATEGORY__PROPERTY_SERVICE] =
        {"Property service",
         "A complaint about the property company: repairs, cleaning, security, water or power "
         "supply in the compound.",
         "governance", "property,repair,cleaning,security,complaint"},
    [LINKAGE__V1__CATEGORY__NEIGHBOUR_DISPUTE] =
        {"Neighbour dispute",
         "Noise, leaks between flats, parking, pets or other disputes between "
         "residents.",
         "governance", "noise,neighbour,parking,pets,dispute"},
    [LINKAGE__V1__CATEGORY__LATENT_HAZARD] =
        {"Latent hazard",
         "A hazard that has not caused harm yet: blocked fire lane, cracked wall, loose "
         "facade, faulty wiring, e-bikes charging indoors.",
         "governance", "hazard,fire lane,wiring,facade,e-bike"},
};

static const char *const severity_words[5] = {NULL, "especially major", "major", "large",
                                              "general"};

/* ---- a document writer for both shapes ---- */

struct doc {
  struct gw_buf *b;
  int xml;
  int fields; /* fields written in the current JSON object */
};

static void obj_open(struct doc *w, const char *element) {
  if (w->xml)
    gw_buf_printf(w->b, "<%s>", element);
  else
    gw_buf_puts(w->b, "{");
  w->fields = 0;
}

static void obj_close(struct doc *w, const char *element) {
  if (w->xml)
    gw_buf_printf(w->b, "</%s>", element);
  else
    gw_buf_puts(w->b, "}");
  w->fields = 1; /* the object itself is a field of whatever holds it */
}

static void key(struct doc *w, const char *k) {
  if (w->xml) {
    gw_buf_printf(w->b, "<%s>", k);
    return;
  }
  gw_buf_printf(w->b, "%s\"%s\":", w->fields++ ? "," : "", k);
}

static void end_key(struct doc *w, const char *k) {
  if (w->xml) gw_buf_printf(w->b, "</%s>", k);
}

/* A string field (NULL is written as ""). */
static void put_str(struct doc *w, const char *k, const char *v) {
  key(w, k);
  if (w->xml)
    gw_buf_xml(w->b, v ? v : "");
  else
    gw_buf_json_str(w->b, v ? v : "");
  end_key(w, k);
}

/* A number or boolean: the same text in both shapes. */
__attribute__((format(printf, 3, 4))) static void put_lit(struct doc *w, const char *k,
                                                          const char *fmt, ...) {
  char text[64];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  key(w, k);
  gw_buf_puts(w->b, text);
  end_key(w, k);
}

static void put_time(struct doc *w, const char *k, int64_t us) {
  char t[32];
  gw_time_format(us, t);
  put_str(w, k, t);
}

/* An array of objects: JSON "[...]" (as a field when k is set), XML <element>...</element>. */
static void list_open(struct doc *w, const char *k, const char *element) {
  if (w->xml) {
    gw_buf_printf(w->b, "<%s>", element);
  } else {
    if (k) key(w, k);
    gw_buf_puts(w->b, "[");
  }
  w->fields = 0;
}

static void list_next(struct doc *w) {
  if (!w->xml && w->fields) gw_buf_puts(w->b, ",");
}

static void list_close(struct doc *w, const char *element) {
  if (w->xml)
    gw_buf_printf(w->b, "</%s>", element);
  else
    gw_buf_puts(w->b, "]");
  w->fields = 1;
}

static void doc_start(struct doc *w, struct gw_buf *b, int xml) {
  w->b = b;
  w->xml = xml;
  w->fields = 0;
  if (xml) gw_buf_puts(b, XML_DECL);
}

int gw_open311_error(struct gw_buf *b, int xml, int code, const char *description) {
  struct doc w;
  doc_start(&w, b, xml);
  list_open(&w, NULL, "errors");
  list_next(&w);
  obj_open(&w, "error");
  put_lit(&w, "code", "%d", code);
  put_str(&w, "description", description);
  obj_close(&w, "error");
  list_close(&w, "errors");
  return code;
}

/* An error with a formatted description. */
__attribute__((format(printf, 4, 5))) static int fail(struct gw_buf *b, int xml, int code,
                                                      const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return gw_open311_error(b, xml, code, msg);
}

/* A caller's value echoed in a message: printable ASCII only, at most 64 bytes, so an error
 * document never carries invalid UTF-8 or a wall of text back. */
static const char *echo(const char *s, char *out, size_t outlen) {
  size_t o = 0;
  for (; *s && o + 4 < outlen && o < 64; s++)
    out[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
  if (*s && o + 3 < outlen) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = '\0';
  return out;
}

/* ---- routing ---- */

int gw_open311_route(const char *path, struct gw_open311_route *out) {
  memset(out, 0, sizeof *out);
  if (!path) return -1;
  const char *dot = strrchr(path, '.');
  if (!dot) return -1;
  if (strcmp(dot, ".json") == 0)
    out->xml = 0;
  else if (strcmp(dot, ".xml") == 0)
    out->xml = 1;
  else
    return -1;
  size_t stem = (size_t)(dot - path);
  const char *slash = memchr(path, '/', stem);
  if (!slash) {
    if (stem == 8 && strncmp(path, "services", 8) == 0)
      out->what = GW_OPEN311_SERVICES;
    else if (stem == 8 && strncmp(path, "requests", 8) == 0)
      out->what = GW_OPEN311_REQUESTS;
    else
      return -1;
    return 0;
  }
  size_t head = (size_t)(slash - path), idlen = stem - head - 1;
  if (idlen == 0 || idlen >= sizeof out->id || memchr(slash + 1, '/', idlen)) return -1;
  if (head == 8 && strncmp(path, "services", 8) == 0)
    out->what = GW_OPEN311_SERVICE_DEF;
  else if (head == 8 && strncmp(path, "requests", 8) == 0)
    out->what = GW_OPEN311_REQUEST;
  else
    return -1;
  memcpy(out->id, slash + 1, idlen);
  out->id[idlen] = '\0';
  return 0;
}

/* ---- services ---- */

/* 0 when jurisdiction_id is absent or names this district; else 1 with msg saying why. */
static int bad_jurisdiction(gw_arg_fn arg, void *ctx, const struct lk_district *d, char *msg,
                            size_t n) {
  const char *j = arg ? arg(ctx, "jurisdiction_id") : NULL;
  if (!j || !j[0] || (d && d->district.id && strcmp(j, d->district.id) == 0)) return 0;
  char e[80];
  snprintf(msg, n, "jurisdiction_id \"%s\" is not served here (this endpoint serves \"%s\")",
           echo(j, e, sizeof e), d && d->district.id ? d->district.id : "");
  return 1;
}

/* 1 when item is one of the comma-separated items of list. */
static int has_item(const char *list, const char *item) {
  size_t n = strlen(item);
  for (const char *p = list;;) {
    if (strncmp(p, item, n) == 0 && (p[n] == ',' || p[n] == '\0')) return 1;
    p = strchr(p, ',');
    if (!p) return 0;
    p++;
  }
}

/* Appends the kinds with a response plan of their own in this category: `lead` before the
 * first, `sep` between; with dedupe, kinds already items of the buffer are left out. */
static void plan_kinds(struct gw_buf *b, const struct lk_district *d, Linkage__V1__Category c,
                       const char *lead, const char *sep, int dedupe) {
  int n = 0;
  for (size_t i = 0; d && i < d->plan_count; i++) {
    const struct lk_plan *p = &d->plans[i];
    if (p->category != c || !p->kind) continue;
    if (dedupe && b->data && has_item(b->data, p->kind)) continue;
    gw_buf_puts(b, n++ ? sep : lead);
    gw_buf_puts(b, p->kind);
  }
}

int gw_open311_services(struct gw_buf *b, int xml, const struct lk_district *d, gw_arg_fn arg,
                        void *ctx) {
  char msg[256];
  if (bad_jurisdiction(arg, ctx, d, msg, sizeof msg)) return gw_open311_error(b, xml, 400, msg);
  struct doc w;
  doc_start(&w, b, xml);
  list_open(&w, NULL, "services");
  for (int c = 1; c < CATEGORY_COUNT; c++) {
    const struct service *s = &services[c];
    struct gw_buf kw;
    gw_buf_init(&kw);
    gw_buf_puts(&kw, s->keywords);
    plan_kinds(&kw, d, (Linkage__V1__Category)c, ",", ",", 1);
    list_next(&w);
    obj_open(&w, "service");
    put_str(&w, "service_code", lk_category_name((Linkage__V1__Category)c));
    put_str(&w, "service_name", s->name);
    put_str(&w, "description", s->description);
    put_lit(&w, "metadata", "true");
    put_str(&w, "type", "realtime");
    put_str(&w, "keywords", kw.failed ? s->keywords : kw.data);
    put_str(&w, "group", s->group);
    obj_close(&w, "service");
    gw_buf_free(&kw);
  }
  list_close(&w, "services");
  return 200;
}

/* The category a service code names: exactly its lower-case name. 0 when none. */
static Linkage__V1__Category service_code(const char *s, size_t n) {
  for (int c = 1; c < CATEGORY_COUNT; c++) {
    const char *name = lk_category_name((Linkage__V1__Category)c);
    if (name && strlen(name) == n && strncmp(name, s, n) == 0) return (Linkage__V1__Category)c;
  }
  return LINKAGE__V1__CATEGORY__CATEGORY_UNSPECIFIED;
}

struct attribute {
  const char *code, *datatype, *datatype_description, *description;
  int required;
};

static const struct attribute attributes[] = {
    {"sequence", "number", "an integer from 1 to 18446744073709551615",
     "The report's sequence number on this device_id. (device_id, sequence) identifies a "
     "report: the same pair again is the same request and gets the same service_request_id.",
     1},
    {"kind", "string", "at most 64 bytes, e.g. gas_leak",
     "The subtype of the hazard. Empty: the category's general response plan.", 0},
    {"severity", "singlevaluelist", "I, II, III or IV; IV when absent",
     "The national severity level; I is the most severe.", 0},
    {"building", "string", "at most 64 bytes", "The building within the compound.", 0},
    {"unit", "string", "at most 64 bytes", "The unit (entrance) of the building.", 0},
    {"floor", "number", "an integer; negative for basements", "The floor.", 0},
};

int gw_open311_service_definition(struct gw_buf *b, int xml, const struct lk_district *d,
                                  const char *code) {
  Linkage__V1__Category c = code ? service_code(code, strlen(code)) : 0;
  char e[80];
  if (!c)
    return fail(b, xml, 404, "service_code \"%s\" is not a service here",
                echo(code ? code : "", e, sizeof e));
  struct doc w;
  doc_start(&w, b, xml);
  obj_open(&w, "service_definition");
  put_str(&w, "service_code", lk_category_name(c));
  list_open(&w, "attributes", "attributes");
  int order = 1;
  for (size_t i = 0; i < sizeof attributes / sizeof attributes[0]; i++) {
    const struct attribute *a = &attributes[i];
    list_next(&w);
    obj_open(&w, "attribute");
    put_lit(&w, "variable", "true");
    put_str(&w, "code", a->code);
    put_str(&w, "datatype", a->datatype);
    put_lit(&w, "required", "%s", a->required ? "true" : "false");
    put_str(&w, "datatype_description", a->datatype_description);
    put_lit(&w, "order", "%d", order++);
    if (strcmp(a->code, "kind") == 0) {
      /* The kinds with a plan of their own are worth telling a client about. */
      struct gw_buf t;
      gw_buf_init(&t);
      gw_buf_puts(&t, a->description);
      size_t before = t.len;
      plan_kinds(&t, d, c, " Kinds with a response plan of their own: ", ", ", 0);
      if (t.len > before) gw_buf_puts(&t, ".");
      put_str(&w, "description", t.failed ? a->description : t.data);
      gw_buf_free(&t);
    } else {
      put_str(&w, "description", a->description);
    }
    if (strcmp(a->datatype, "singlevaluelist") == 0) {
      list_open(&w, "values", "values");
      for (int s = 1; s <= 4; s++) {
        char name[48];
        snprintf(name, sizeof name, "%s (%s)", lk_severity_name((Linkage__V1__Severity)s),
                 severity_words[s]);
        list_next(&w);
        obj_open(&w, "value");
        put_str(&w, "key", lk_severity_name((Linkage__V1__Severity)s));
        put_str(&w, "name", name);
        obj_close(&w, "value");
      }
      list_close(&w, "values");
    }
    obj_close(&w, "attribute");
  }
  list_close(&w, "attributes");
  obj_close(&w, "service_definition");
  return 200;
}

/* ---- requests ---- */

/* A W3C datetime with seconds and a zone: "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)",
 * read by the shared ISO 8601 parser. A space after the time stands for '+': an unencoded '+' in
 * a query string arrives decoded as a space. */
static int parse_datetime(const char *s, int64_t *us) {
  char buf[64];
  size_t n = strlen(s);
  /* "YYYY-MM-DDTHH:MM:SS" is 19 characters; Open311 wants the seconds. */
  if (n < 20 || n >= sizeof buf || (s[10] != 'T' && s[10] != 't') || s[16] != ':') return -1;
  memcpy(buf, s, n + 1);
  for (size_t i = 19; i < n; i++)
    if (buf[i] == ' ') buf[i] = '+';
  return lk_parse_iso8601(buf, us);
}

struct filter {
  int by_id;                /* service_request_id given: nothing else applies */
  unsigned codes;           /* bit per category; 0: any */
  int open, closed;         /* status; both 0: any */
  int64_t start_us, end_us; /* inclusive */
};

/* Splits a comma list; calls each(token, len) for every item; a token empty after trimming
 * spaces is an error. Returns 0 or -1 (each's own -1 included). */
static int each_item(const char *list, int (*each)(void *, const char *, size_t), void *arg) {
  const char *p = list;
  for (;;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *s = p;
    while (n && *s == ' ')
      s++, n--;
    while (n && s[n - 1] == ' ')
      n--;
    if (n == 0 || each(arg, s, n) != 0) return -1;
    if (!end) return 0;
    p = end + 1;
  }
}

static int add_code(void *arg, const char *s, size_t n) {
  Linkage__V1__Category c = service_code(s, n);
  if (!c) return -1;
  ((struct filter *)arg)->codes |= 1u << c;
  return 0;
}

static int add_status(void *arg, const char *s, size_t n) {
  struct filter *f = arg;
  if (n == 4 && strncasecmp(s, "open", 4) == 0)
    f->open = 1;
  else if (n == 6 && strncasecmp(s, "closed", 6) == 0)
    f->closed = 1;
  else
    return -1;
  return 0;
}

struct id_list {
  const struct gw_view *v;
  const struct gw_incident **found; /* room for min(incidents, GW_OPEN311_MAX_IDS) */
  size_t count, items;
};

static int add_id(void *arg, const char *s, size_t n) {
  struct id_list *l = arg;
  char id[sizeof((struct gw_incident *)0)->id];
  if (n >= sizeof id || ++l->items > GW_OPEN311_MAX_IDS) return -1;
  memcpy(id, s, n);
  id[n] = '\0';
  if (!lk_id_valid(id, sizeof id - 1)) return -1;
  const struct gw_incident *inc = gw_view_get(l->v, id);
  if (!inc) return 0; /* unknown ids are left out, as a search would */
  for (size_t i = 0; i < l->count; i++)
    if (l->found[i] == inc) return 0;
  l->found[l->count++] = inc;
  return 0;
}

/* Newest reported first; the id breaks ties so the order is stable across calls. */
static int newest_first(const void *a, const void *b) {
  const struct gw_incident *x = *(const struct gw_incident *const *)a;
  const struct gw_incident *y = *(const struct gw_incident *const *)b;
  if (x->reported_at_us != y->reported_at_us) return x->reported_at_us > y->reported_at_us ? -1 : 1;
  return strcmp(x->id, y->id);
}

static int matches(const struct filter *f, const struct gw_incident *inc) {
  if (f->codes &&
      ((unsigned)inc->category >= CATEGORY_COUNT || !(f->codes & (1u << inc->category))))
    return 0;
  int closed = inc->state == LK_STATE_CLOSED;
  if ((f->open || f->closed) && !(closed ? f->closed : f->open)) return 0;
  return inc->reported_at_us >= f->start_us && inc->reported_at_us <= f->end_us;
}

/* The organisation answering at the incident's tier, by name. */
static void agency(struct gw_buf *b, const struct lk_district *d, const struct gw_incident *inc) {
  const char *id = inc->organisation_id;
  const char *name = NULL, *name_zh = NULL;
  if (d) {
    const struct lk_compound *c = NULL;
    const struct lk_org *o = NULL;
    switch (inc->tier) {
    case LINKAGE__V1__TIER__COMPOUND: c = lk_district_compound(d, id); break;
    case LINKAGE__V1__TIER__COMMUNITY: o = lk_district_community(d, id); break;
    case LINKAGE__V1__TIER__STREET: o = lk_district_street(d, id); break;
    case LINKAGE__V1__TIER__DISTRICT:
      if (d->district.id && strcmp(d->district.id, id) == 0) o = &d->district;
      break;
    default: break;
    }
    if (c) name = c->name, name_zh = c->name_zh;
    if (o) name = o->name, name_zh = o->name_zh;
  }
  if (!name) {
    gw_buf_puts(b, id);
    return;
  }
  gw_buf_puts(b, name);
  if (name_zh && name_zh[0]) gw_buf_printf(b, " (%s)", name_zh);
}

static void render_request(struct doc *w, const struct gw_view *v, const struct gw_incident *inc) {
  const struct lk_district *d = v->district;
  const char *code = lk_category_name(inc->category);
  struct gw_buf t;
  gw_buf_init(&t);

  list_next(w);
  obj_open(w, "request");
  put_str(w, "service_request_id", inc->id);
  put_str(w, "status", inc->state == LK_STATE_CLOSED ? "closed" : "open");

  if (inc->exercise) gw_buf_puts(&t, "exercise: ");
  gw_buf_puts(&t, lk_state_name(inc->state));
  const char *tier = lk_tier_name(inc->tier);
  if (tier)
    gw_buf_printf(&t, " at %s tier", tier);
  else if (inc->state != LK_STATE_CLOSED)
    gw_buf_puts(&t, ", not yet routed");
  if (inc->overdue) gw_buf_puts(&t, "; overdue");
  if (inc->suppressed) gw_buf_puts(&t, "; escalation held back");
  if (inc->merged_into[0]) gw_buf_printf(&t, "; merged into %s", inc->merged_into);
  gw_incident_missing_text(&t, inc, "; ");
  put_str(w, "status_notes", t.failed ? "" : t.data);

  put_str(w, "service_name", code ? services[inc->category].name : "");
  put_str(w, "service_code", code);
  put_str(w, "description", inc->description);

  gw_buf_reset(&t);
  if (tier) agency(&t, d, inc);
  put_str(w, "agency_responsible", t.failed ? "" : t.data);

  gw_buf_reset(&t);
  const char *sev = lk_severity_name(inc->severity);
  if (sev) gw_buf_printf(&t, "severity %s (%s)", sev, severity_words[inc->severity]);
  if (inc->kind[0]) gw_buf_printf(&t, "%skind %s", t.len ? ", " : "", inc->kind);
  if (inc->units_assigned)
    gw_buf_printf(&t, "; %u unit%s called%s%s", inc->units_assigned,
                  inc->units_assigned == 1 ? "" : "s", inc->lead_unit[0] ? ", lead " : "",
                  inc->lead_unit);
  put_str(w, "service_notice", t.failed ? "" : t.data);

  put_time(w, "requested_datetime", inc->reported_at_us);
  put_time(w, "updated_datetime", inc->updated_at_us ? inc->updated_at_us : inc->reported_at_us);
  int64_t due;
  if (gw_incident_deadline(inc, &due)) put_time(w, "expected_datetime", due);

  gw_buf_reset(&t);
  const struct lk_compound *c = d ? lk_district_compound(d, inc->compound_id) : NULL;
  if (c) {
    gw_buf_puts(&t, c->name);
    if (c->name_zh && c->name_zh[0]) gw_buf_printf(&t, " (%s)", c->name_zh);
  } else {
    gw_buf_puts(&t, inc->compound_id);
  }
  if (inc->building[0]) gw_buf_printf(&t, ", building %s", inc->building);
  put_str(w, "address", t.failed ? "" : t.data);
  put_str(w, "address_id", inc->compound_id);
  if (inc->lat != 0 || inc->lon != 0) {
    put_lit(w, "lat", "%.6f", inc->lat);
    put_lit(w, "long", "%.6f", inc->lon);
  }
  put_str(w, "media_url", "");
  obj_close(w, "request");
  gw_buf_free(&t);
}

static void render_requests(struct gw_buf *b, int xml, const struct gw_view *v,
                            const struct gw_incident *const *incs, size_t n) {
  struct doc w;
  doc_start(&w, b, xml);
  list_open(&w, NULL, "service_requests");
  for (size_t i = 0; i < n; i++)
    render_request(&w, v, incs[i]);
  list_close(&w, "service_requests");
}

/* Reads the filter arguments; 0, or an HTTP status with the error written. */
static int read_filter(struct gw_buf *b, int xml, gw_arg_fn arg, void *ctx, int64_t now_us,
                       struct filter *f) {
  char e[80];
  memset(f, 0, sizeof *f);
  const char *codes = arg(ctx, "service_code");
  if (codes && codes[0] && each_item(codes, add_code, f) != 0)
    return fail(b, xml, 400,
                "service_code \"%s\" is not a comma-separated list of service codes (see "
                "services.json)",
                echo(codes, e, sizeof e));
  const char *status = arg(ctx, "status");
  if (status && status[0] && each_item(status, add_status, f) != 0)
    return fail(b, xml, 400, "status \"%s\" must be open, closed or open,closed",
                echo(status, e, sizeof e));
  const char *start = arg(ctx, "start_date"), *end = arg(ctx, "end_date");
  int has_start = start && start[0], has_end = end && end[0];
  if (has_start && parse_datetime(start, &f->start_us) != 0)
    return fail(b, xml, 400,
                "start_date \"%s\" is not a W3C datetime such as 2026-05-01T00:00:00Z or "
                "2026-05-01T08:00:00+08:00",
                echo(start, e, sizeof e));
  if (has_end && parse_datetime(end, &f->end_us) != 0)
    return fail(b, xml, 400,
                "end_date \"%s\" is not a W3C datetime such as 2026-05-31T23:59:59Z or "
                "2026-05-31T23:59:59+08:00",
                echo(end, e, sizeof e));
  if (!has_end) f->end_us = INT64_MAX;
  if (!has_start)
    f->start_us = (has_end ? f->end_us : now_us) - GW_OPEN311_DEFAULT_DAYS * US_PER_DAY;
  if (f->end_us < f->start_us) return fail(b, xml, 400, "end_date is before start_date");
  return 0;
}

int gw_open311_requests(struct gw_buf *b, int xml, const struct gw_view *v, gw_arg_fn arg,
                        void *ctx, int64_t now_us) {
  char msg[256], e[80];
  if (bad_jurisdiction(arg, ctx, v->district, msg, sizeof msg))
    return gw_open311_error(b, xml, 400, msg);
  size_t n = 0, cap = v->count > 1 ? v->count - 1 : 1;
  const char *ids = arg(ctx, "service_request_id");
  if (ids && ids[0] && cap > GW_OPEN311_MAX_IDS) cap = GW_OPEN311_MAX_IDS;
  const struct gw_incident **incs = malloc(cap * sizeof *incs);
  if (!incs) return gw_open311_error(b, xml, 500, "out of memory");

  if (ids && ids[0]) {
    /* The spec: a service_request_id list overrides every other argument. */
    struct id_list l = {v, incs, 0, 0};
    if (each_item(ids, add_id, &l) != 0) {
      free(incs);
      return fail(b, xml, 400,
                  "service_request_id \"%s\" is not a comma-separated list of at most %d "
                  "request ids",
                  echo(ids, e, sizeof e), GW_OPEN311_MAX_IDS);
    }
    n = l.count;
  } else {
    struct filter f;
    int status = read_filter(b, xml, arg, ctx, now_us, &f);
    if (status) {
      free(incs);
      return status;
    }
    for (uint32_t i = 1; i < v->count; i++)
      if (matches(&f, &v->incidents[i])) incs[n++] = &v->incidents[i];
  }
  qsort(incs, n, sizeof *incs, newest_first);
  if (n > GW_OPEN311_MAX_RESULTS) n = GW_OPEN311_MAX_RESULTS;
  render_requests(b, xml, v, incs, n);
  free(incs);
  return 200;
}

int gw_open311_request(struct gw_buf *b, int xml, const struct gw_view *v, const char *id) {
  char e[80];
  const struct gw_incident *inc = id ? gw_view_get(v, id) : NULL;
  if (!inc)
    return fail(b, xml, 404, "service_request_id \"%s\" is not known",
                echo(id ? id : "", e, sizeof e));
  render_requests(b, xml, v, &inc, 1);
  return 200;
}

/* ---- POST requests ---- */

/* Problems of a POST, joined by "; " as lk_report_check joins its own. */
struct problems {
  char *buf;
  size_t len, used;
  int count;
};

__attribute__((format(printf, 2, 3))) static void problem(struct problems *p, const char *fmt,
                                                          ...) {
  p->count++;
  if (!p->buf || p->len == 0 || p->used + 1 >= p->len) return;
  va_list ap;
  va_start(ap, fmt);
  int n = 0;
  if (p->count > 1) n = snprintf(p->buf + p->used, p->len - p->used, "; ");
  if (n > 0) p->used += (size_t)n;
  if (p->used + 1 < p->len) {
    n = vsnprintf(p->buf + p->used, p->len - p->used, fmt, ap);
    if (n > 0) p->used += (size_t)n;
  }
  va_end(ap);
  if (p->used >= p->len) p->used = p->len - 1;
}

/* An optional field: NULL when absent or empty (an HTML form sends empty fields). */
static const char *opt(gw_arg_fn arg, void *ctx, const char *k) {
  const char *s = arg(ctx, k);
  return s && s[0] ? s : NULL;
}

/* Copies a string field into its store, or names the problem. */
static void take(struct problems *p, const char *field, const char *s, char *dst, size_t cap) {
  size_t n = strlen(s);
  if (n >= cap) {
    problem(p, "%s is %zu bytes, max %zu", field, n, cap - 1);
    return;
  }
  memcpy(dst, s, n + 1);
}

static int parse_u64(const char *s, uint64_t *out) {
  if (!isdigit((unsigned char)s[0])) return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return -1;
  *out = (uint64_t)v;
  return 0;
}

static int parse_i32(const char *s, int32_t *out) {
  const char *d = s[0] == '-' ? s + 1 : s;
  if (!isdigit((unsigned char)d[0])) return -1;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || v < INT32_MIN || v > INT32_MAX) return -1;
  *out = (int32_t)v;
  return 0;
}

/* Decimal degrees; strtod's hexadecimal floats, infinities and NaNs are not. */
static int parse_degrees(const char *s, double *out) {
  if (!(isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.')) return -1;
  if (strpbrk(s, "xX")) return -1;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (errno || *end || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

int gw_open311_parse_post(gw_arg_fn arg, void *ctx, const struct lk_district *d, int64_t now_us,
                          Linkage__V1__Report *r, struct gw_open311_post_store *store, char *err,
                          size_t errlen) {
  struct problems p = {err, errlen, 0, 0};
  char e[80];
  if (err && errlen) err[0] = '\0';
  memset(store, 0, sizeof *store);
  linkage__v1__report__init(r);
  linkage__v1__location__init(&store->location);
  r->device_id = store->device_id;
  r->kind = store->kind;
  r->description = store->description;
  r->location = &store->location;
  store->location.compound_id = store->compound_id;
  store->location.building = store->building;
  store->location.unit = store->unit;
  r->observed_at_us = now_us;

  char msg[256];
  if (bad_jurisdiction(arg, ctx, d, msg, sizeof msg)) problem(&p, "%s", msg);

  const char *s = opt(arg, ctx, "service_code");
  if (!s)
    problem(&p, "service_code is required (one of the codes of services.json)");
  else if (!(r->category = service_code(s, strlen(s))))
    problem(&p, "service_code \"%s\" is not a service here (see services.json)",
            echo(s, e, sizeof e));

  s = opt(arg, ctx, "address_id");
  if (!s)
    problem(&p, "address_id is required (the id of a compound of this district)");
  else if (d && !lk_district_compound(d, s))
    problem(&p, "address_id \"%s\" is not a compound of this district", echo(s, e, sizeof e));
  else
    take(&p, "address_id", s, store->compound_id, sizeof store->compound_id);

  s = opt(arg, ctx, "device_id");
  if (!s)
    problem(&p, "device_id is required (1-64 bytes naming the reporting device or app)");
  else
    take(&p, "device_id", s, store->device_id, sizeof store->device_id);

  s = opt(arg, ctx, "attribute[sequence]");
  if (!s)
    problem(&p, "attribute[sequence] is required (a positive integer, new for each report of "
                "this device_id)");
  else if (parse_u64(s, &r->sequence) != 0 || r->sequence == 0)
    problem(&p, "attribute[sequence] \"%s\" is not an integer from 1 to 18446744073709551615",
            echo(s, e, sizeof e));

  if ((s = opt(arg, ctx, "description")))
    take(&p, "description", s, store->description, sizeof store->description);
  /* Empty kind is the contract's own "no subtype": the category's general plan applies. */
  if ((s = opt(arg, ctx, "attribute[kind]")))
    take(&p, "attribute[kind]", s, store->kind, sizeof store->kind);
  r->severity = LINKAGE__V1__SEVERITY__SEVERITY_IV;
  if ((s = opt(arg, ctx, "attribute[severity]")) && !(r->severity = lk_severity_parse(s)))
    problem(&p, "attribute[severity] \"%s\" must be I, II, III or IV", echo(s, e, sizeof e));
  if ((s = opt(arg, ctx, "attribute[building]")))
    take(&p, "attribute[building]", s, store->building, sizeof store->building);
  if ((s = opt(arg, ctx, "attribute[unit]")))
    take(&p, "attribute[unit]", s, store->unit, sizeof store->unit);
  if ((s = opt(arg, ctx, "attribute[floor]")) && parse_i32(s, &store->location.floor) != 0)
    problem(&p, "attribute[floor] \"%s\" is not an integer", echo(s, e, sizeof e));

  const char *lat = opt(arg, ctx, "lat"), *lon = opt(arg, ctx, "long");
  if (!lat != !lon) problem(&p, "lat and long go together: give both or neither");
  if (lat && parse_degrees(lat, &store->location.lat) != 0)
    problem(&p, "lat \"%s\" is not a number of degrees", echo(lat, e, sizeof e));
  if (lon && parse_degrees(lon, &store->location.lon) != 0)
    problem(&p, "long \"%s\" is not a number of degrees", echo(lon, e, sizeof e));

  if (p.count) return LK_EINVAL;
  /* The contract's own check, as intake runs it: UTF-8, lengths, ranges, the compound. */
  return lk_report_check(r, d, err, errlen) == LK_OK ? LK_OK : LK_EINVAL;
}

int gw_open311_post_reply(struct gw_buf *b, int xml, const Linkage__V1__ReportAck *ack) {
  if (!ack) return gw_open311_error(b, xml, 503, "intake did not answer in time; retry later");
  const char *why = ack->error && ack->error[0] ? ack->error : "no reason given";
  const char *notice = NULL;
  int status = 0;
  switch (ack->status) {
  case LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED:
    notice = "accepted: a new incident is open and routed by its category and severity";
    status = 201;
    break;
  case LINKAGE__V1__REPORT_ACK__STATUS__DUPLICATE:
    notice = "this device_id and sequence were reported before: the same request";
    status = 200;
    break;
  case LINKAGE__V1__REPORT_ACK__STATUS__REJECTED:
    return fail(b, xml, 400, "rejected by intake: %s", why);
  case LINKAGE__V1__REPORT_ACK__STATUS__BUSY:
    return fail(b, xml, 503, "intake is busy: %s; retry after %u ms", why, ack->retry_after_ms);
  default: return fail(b, xml, 502, "intake answered with unknown status %d", (int)ack->status);
  }
  if (!ack->incident_id || !ack->incident_id[0])
    return gw_open311_error(b, xml, 502, "intake accepted the report but named no incident");
  struct doc w;
  doc_start(&w, b, xml);
  list_open(&w, NULL, "service_requests");
  list_next(&w);
  obj_open(&w, "request");
  put_str(&w, "service_request_id", ack->incident_id);
  put_str(&w, "service_notice", notice);
  obj_close(&w, "request");
  list_close(&w, "service_requests");
  return status;
}
