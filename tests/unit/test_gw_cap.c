/* CAP 1.2 and Atom (services/gateway/gw_cap.c) over a projection folded from real events:
 * the mapping of each severity and category, the Alert -> Update -> Cancel thread with its
 * references, hostile text, and every document checked by xmllint against the CAP 1.2 schema
 * (the Atom feed for well-formedness). xmllint is required: without it the checks fail. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gateway.h"
#include "linkage/event.h"
#include "lk_test.h"

#define DEMO "deploy/district/wenjiang.yaml"
#define T0 1790000000000000LL /* 2026-09-21T14:13:20+00:00 */
#define MIN 60000000LL

static const struct gw_cap_opts OPTS = {"linkage@wenjiang.example", "http://127.0.0.1:8080"};

static const struct lk_district *demo(void) {
  static struct lk_district *d;
  if (!d) {
    char err[512];
    d = lk_district_load(DEMO, err, sizeof err);
    if (!d) fprintf(stderr, "cannot load the demo district: %s\n", err);
  }
  return d;
}

/* The shared copy of the schema when this tree sits next to it, the test's own otherwise. */
static const char *xsd(void) {
  return access("../shared/schemas/cap-1.2.xsd", R_OK) == 0 ? "../shared/schemas/cap-1.2.xsd"
                                                            : "tests/data/cap-1.2.xsd";
}

/* ---- folding events into a view ---- */

struct fold {
  struct gw_view v;
  uint64_t pos;
  int ok;
};

static void fold_init(struct fold *f) {
  memset(f, 0, sizeof *f);
  f->ok = gw_view_init(&f->v, demo()) == 0;
}

static void apply(struct fold *f, Linkage__V1__Event *ev) {
  char id[160];
  snprintf(id, sizeof id, "%s/%s/%llu", ev->incident_id, lk_event_type_name(ev->type),
           (unsigned long long)(f->pos + 1));
  ev->event_id = id;
  uint32_t slot = gw_view_apply(&f->v, ++f->pos, ev);
  if (!slot) {
    fprintf(stderr, "     event %s was not folded\n", id);
    f->ok = 0;
  }
}

static void envelope(Linkage__V1__Event *ev, const char *inc, Linkage__V1__EventType t,
                     int64_t at) {
  lk_event_envelope(ev, "", inc, t, at,
                    t == LINKAGE__V1__EVENT_TYPE__REPORTED ? "device:dev-1" : "svc:router");
}

struct report_args {
  Linkage__V1__Category category;
  const char *kind;
  Linkage__V1__Severity severity;
  const char *compound, *building, *description;
  double lat, lon;
};

static void reported(struct fold *f, const char *inc, int64_t at, const struct report_args *a) {
  Linkage__V1__Location loc;
  linkage__v1__location__init(&loc);
  loc.compound_id = (char *)a->compound;
  loc.building = (char *)(a->building ? a->building : "");
  loc.floor = 3;
  loc.lat = a->lat;
  loc.lon = a->lon;
  Linkage__V1__Report r;
  linkage__v1__report__init(&r);
  r.device_id = "dev-1";
  r.sequence = f->pos + 1;
  r.category = a->category;
  r.kind = (char *)a->kind;
  r.severity = a->severity;
  r.location = &loc;
  r.description = (char *)(a->description ? a->description : "");
  r.observed_at_us = at;
  Linkage__V1__Reported body;
  linkage__v1__reported__init(&body);
  body.report = &r;
  body.received_at_us = at;
  Linkage__V1__Event ev;
  envelope(&ev, inc, LINKAGE__V1__EVENT_TYPE__REPORTED, at);
  ev.reported = &body;
  apply(f, &ev);
}

static void routed(struct fold *f, const char *inc, int64_t at, Linkage__V1__Tier tier,
                   const char *org) {
  Linkage__V1__Routed body;
  linkage__v1__routed__init(&body);
  body.tier = tier;
  body.organisation_id = (char *)org;
  body.acknowledge_by_us = at + 15 * MIN;
  body.resolve_by_us = at + 240 * MIN;
  Linkage__V1__Event ev;
  envelope(&ev, inc, LINKAGE__V1__EVENT_TYPE__ROUTED, at);
  ev.routed = &body;
  apply(f, &ev);
}

static void escalated(struct fold *f, const char *inc, int64_t at, Linkage__V1__Tier from,
                      Linkage__V1__Tier to, const char *org, int down) {
  Linkage__V1__Escalated body;
  linkage__v1__escalated__init(&body);
  body.from_tier = from;
  body.to_tier = to;
  body.organisation_id = (char *)org;
  body.reason = "acknowledge deadline missed";
  body.acknowledge_by_us = at + 10 * MIN;
  body.resolve_by_us = at + 120 * MIN;
  Linkage__V1__Event ev;
  envelope(&ev, inc,
           down ? LINKAGE__V1__EVENT_TYPE__DE_ESCALATED : LINKAGE__V1__EVENT_TYPE__ESCALATED, at);
  if (down)
    ev.de_escalated = &body;
  else
    ev.escalated = &body;
  apply(f, &ev);
}

static void severity_changed(struct fold *f, const char *inc, int64_t at, Linkage__V1__Severity s,
                             Linkage__V1__Severity to) {
  Linkage__V1__SeverityChanged body;
  linkage__v1__severity_changed__init(&body);
  body.from_severity = s;
  body.to_severity = to;
  body.reason = "spreading";
  Linkage__V1__Event ev;
  envelope(&ev, inc, LINKAGE__V1__EVENT_TYPE__SEVERITY_CHANGED, at);
  ev.severity_changed = &body;
  apply(f, &ev);
}

static void dispatched(struct fold *f, const char *inc, int64_t at) {
  Linkage__V1__Dispatched body;
  linkage__v1__dispatched__init(&body);
  body.assignment_id = "a-1";
  body.unit_id = "fire-wenjiang";
  body.role = "fire_brigade";
  body.lead = 1;
  Linkage__V1__Event ev;
  envelope(&ev, inc, LINKAGE__V1__EVENT_TYPE__DISPATCHED, at);
  ev.dispatched = &body;
  apply(f, &ev);
}

static void closed(struct fold *f, const char *inc, int64_t at) {
  Linkage__V1__Closed body;
  linkage__v1__closed__init(&body);
  body.reason = "valve shut, all clear";
  Linkage__V1__Event ev;
  envelope(&ev, inc, LINKAGE__V1__EVENT_TYPE__CLOSED, at);
  ev.closed = &body;
  apply(f, &ev);
}

static void merged(struct fold *f, const char *inc, int64_t at, const char *into) {
  Linkage__V1__Merged body;
  linkage__v1__merged__init(&body);
  body.into_incident_id = (char *)into;
  Linkage__V1__Event ev;
  envelope(&ev, inc, LINKAGE__V1__EVENT_TYPE__MERGED, at);
  ev.merged = &body;
  apply(f, &ev);
}

static const struct report_args GAS = {LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER,
                                       "gas_leak",
                                       LINKAGE__V1__SEVERITY__SEVERITY_II,
                                       "lijinggang",
                                       "3",
                                       "gas smell on the stairs",
                                       30.68,
                                       103.83};

/* ---- rendering and xmllint ---- */

static char *cap_of(struct fold *f, const char *id) {
  const struct gw_incident *inc = gw_view_get(&f->v, id);
  if (!LK_CHECK(inc != NULL)) return NULL;
  struct gw_buf b;
  gw_buf_init(&b);
  gw_cap_alert(&b, &f->v, inc, &OPTS);
  char *s = gw_buf_take(&b, NULL);
  LK_CHECK(s != NULL);
  return s;
}

static int write_temp(const char *doc, char *path, size_t n) {
  snprintf(path, n, "/tmp/test_gw_cap-XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0) return 0;
  size_t len = strlen(doc);
  int ok = write(fd, doc, len) == (ssize_t)len;
  close(fd);
  return ok;
}

/* Runs xmllint with args on doc; returns its exit status (-1 when it could not run). Its
 * standard output goes to out when out is not NULL; what it says on stderr is shown only when
 * `quiet` is 0 and it failed. The temp paths come from mkstemp, the arguments from this file:
 * nothing here needs shell quoting. */
static int xmllint(const char *args, const char *doc, char *out, size_t outlen, int quiet) {
  char path[64], log[64], cmd[512];
  if (!write_temp(doc, path, sizeof path)) return -1;
  if (!write_temp("", log, sizeof log)) {
    unlink(path);
    return -1;
  }
  snprintf(cmd, sizeof cmd, "xmllint %s %s 2>%s%s", args, path, log, out ? "" : " >/dev/null");
  int rc = -1;
  if (out) {
    FILE *p = popen(cmd, "r");
    if (p) {
      size_t got = fread(out, 1, outlen - 1, p);
      out[got] = '\0';
      rc = pclose(p);
    }
  } else {
    rc = system(cmd);
  }
  if (rc != 0 && !quiet) {
    char say[2048] = "";
    FILE *l = fopen(log, "r");
    if (l) {
      say[fread(say, 1, sizeof say - 1, l)] = '\0';
      fclose(l);
    }
    fprintf(stderr, "     xmllint %s: status %d: %s", args, rc, say);
  }
  unlink(path);
  unlink(log);
  return rc;
}

static int cap_valid(const char *doc) {
  char args[256];
  snprintf(args, sizeof args, "--noout --schema %s", xsd());
  int rc = xmllint(args, doc, NULL, 0, 0);
  if (rc != 0) fprintf(stderr, "     the document:\n%s\n", doc);
  return rc == 0;
}

static int well_formed(const char *doc) {
  int rc = xmllint("--noout", doc, NULL, 0, 0);
  if (rc != 0) fprintf(stderr, "     the document:\n%s\n", doc);
  return rc == 0;
}

/* The text of an XPath expression over doc (local names, so no namespace setup). */
static void xpath(const char *doc, const char *expr, char *out, size_t n) {
  char args[400];
  snprintf(args, sizeof args, "--xpath \"%s\"", expr);
  out[0] = '\0';
  if (xmllint(args, doc, out, n, 0) != 0) out[0] = '\0';
  size_t len = strlen(out); /* xmllint ends what it prints with a newline */
  if (len > 0 && out[len - 1] == '\n') out[len - 1] = '\0';
}

/* The text of the first <name> of the first info (or of the alert, for alert-level names). */
static void first(const char *doc, const char *name, char *out, size_t n) {
  char expr[200];
  snprintf(expr, sizeof expr, "string((//*[local-name()='%s'])[1])", name);
  xpath(doc, expr, out, n);
}

/* The categories of the English info, comma-separated. */
static void categories(const char *doc, char *out, size_t n) {
  out[0] = '\0';
  const char *p = strstr(doc, "<info>");
  const char *end = p ? strstr(p, "</info>") : NULL;
  while (p && (p = strstr(p, "<category>")) && p < end) {
    p += strlen("<category>");
    const char *q = strstr(p, "</category>");
    if (!q) break;
    snprintf(out + strlen(out), n - strlen(out), "%s%.*s", out[0] ? "," : "", (int)(q - p), p);
    p = q;
  }
}

/* ---- tests ---- */

LK_TEST(xmllint_is_there_and_rejects_bad_documents) {
  LK_CHECK(system("xmllint --version >/dev/null 2>&1") == 0);
  LK_CHECK(access(xsd(), R_OK) == 0);
  /* The validation checks below mean something only if xmllint can say no. */
  const char *bad =
      "<?xml version=\"1.0\"?>\n<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">"
      "<identifier>x</identifier><sender>s</sender>"
      "<sent>2026-01-01T00:00:00Z</sent><status>Actual</status>"
      "<msgType>Alert</msgType><scope>Public</scope></alert>\n";
  char args[256];
  snprintf(args, sizeof args, "--noout --schema %s", xsd());
  LK_CHECK(xmllint(args, bad, NULL, 0, 1) != 0);               /* "Z" is not a CAP time */
  LK_CHECK(xmllint("--noout", "<a><b></a>", NULL, 0, 1) != 0); /* not well-formed */
}

LK_TEST(severity_urgency_response) {
  static const struct {
    Linkage__V1__Severity s;
    const char *severity, *urgency, *response;
  } want[] = {
      {LINKAGE__V1__SEVERITY__SEVERITY_I, "Extreme", "Immediate", "Execute"},
      {LINKAGE__V1__SEVERITY__SEVERITY_II, "Severe", "Immediate", "Execute"},
      {LINKAGE__V1__SEVERITY__SEVERITY_III, "Moderate", "Expected", "Monitor"},
      {LINKAGE__V1__SEVERITY__SEVERITY_IV, "Minor", "Future", "Monitor"},
  };
  for (int i = 0; i < 4; i++) {
    struct fold f;
    fold_init(&f);
    struct report_args a = GAS;
    a.severity = want[i].s;
    reported(&f, "inc-sev", T0, &a);
    routed(&f, "inc-sev", T0 + 1000, LINKAGE__V1__TIER__COMMUNITY, "lijinggang");
    LK_CHECK(f.ok);
    char *doc = cap_of(&f, "inc-sev");
    char got[256];
    first(doc, "severity", got, sizeof got);
    LK_CHECK_STR(got, want[i].severity);
    first(doc, "urgency", got, sizeof got);
    LK_CHECK_STR(got, want[i].urgency);
    first(doc, "responseType", got, sizeof got);
    LK_CHECK_STR(got, want[i].response);
    first(doc, "certainty", got, sizeof got);
    LK_CHECK_STR(got, "Observed");
    LK_CHECK(cap_valid(doc));
    free(doc);

    closed(&f, "inc-sev", T0 + 2 * MIN);
    doc = cap_of(&f, "inc-sev");
    first(doc, "severity", got, sizeof got);
    LK_CHECK_STR(got, want[i].severity);
    first(doc, "urgency", got, sizeof got);
    LK_CHECK_STR(got, "Past");
    first(doc, "responseType", got, sizeof got);
    LK_CHECK_STR(got, "AllClear");
    LK_CHECK(cap_valid(doc));
    free(doc);
    gw_view_free(&f.v);
  }
}

LK_TEST(categories_and_event_codes) {
  static const struct {
    Linkage__V1__Category c;
    const char *kind, *want, *name;
  } cases[] = {
      {LINKAGE__V1__CATEGORY__NATURAL_DISASTER, "flooding", "Met", "natural_disaster"},
      {LINKAGE__V1__CATEGORY__NATURAL_DISASTER, "earthquake", "Geo", "natural_disaster"},
      {LINKAGE__V1__CATEGORY__NATURAL_DISASTER, "other", "Geo,Met", "natural_disaster"},
      {LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "gas_leak", "Safety,Fire", "accident_disaster"},
      {LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "fire", "Safety,Fire", "accident_disaster"},
      {LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "lift_entrapment", "Safety,Rescue",
       "accident_disaster"},
      {LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "water_main_burst", "Safety", "accident_disaster"},
      {LINKAGE__V1__CATEGORY__PUBLIC_HEALTH, "fever_cluster", "Health", "public_health"},
      {LINKAGE__V1__CATEGORY__SOCIAL_SAFETY, "fight", "Security", "social_safety"},
      {LINKAGE__V1__CATEGORY__PROPERTY_SERVICE, "no_water", "Infra", "property_service"},
      {LINKAGE__V1__CATEGORY__NEIGHBOUR_DISPUTE, "noise", "Other", "neighbour_dispute"},
      {LINKAGE__V1__CATEGORY__LATENT_HAZARD, "blocked_fire_lane", "Safety", "latent_hazard"},
      {LINKAGE__V1__CATEGORY__LATENT_HAZARD, "wall_crack", "Safety", "latent_hazard"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct fold f;
    fold_init(&f);
    struct report_args a = GAS;
    a.category = cases[i].c;
    a.kind = cases[i].kind;
    reported(&f, "inc-cat", T0, &a);
    LK_CHECK(f.ok);
    char *doc = cap_of(&f, "inc-cat");
    char got[256];
    categories(doc, got, sizeof got);
    if (!LK_CHECK(strcmp(got, cases[i].want) == 0))
      fprintf(stderr, "     %s: got %s, want %s\n", cases[i].kind, got, cases[i].want);
    first(doc, "event", got, sizeof got);
    LK_CHECK_STR(got, cases[i].kind);
    xpath(doc,
          "string((//*[local-name()='eventCode'][*[local-name()='valueName']="
          "'linkage:category'])[1]/*[local-name()='value'])",
          got, sizeof got);
    LK_CHECK_STR(got, cases[i].name);
    xpath(doc,
          "string((//*[local-name()='eventCode'][*[local-name()='valueName']="
          "'linkage:kind'])[1]/*[local-name()='value'])",
          got, sizeof got);
    LK_CHECK_STR(got, cases[i].kind);
    LK_CHECK(cap_valid(doc));
    free(doc);
    gw_view_free(&f.v);
  }
}

/* The identifier of the message a step made, as a string. */
static void ident(char *out, size_t n, const char *inc, uint64_t pos) {
  snprintf(out, n, "%s-%llu", inc, (unsigned long long)pos);
}

LK_TEST(alert_update_cancel_thread) {
  struct fold f;
  fold_init(&f);
  const char *id = "inc-thread";
  char got[1024], want[1024], a[64], b[64], c[64];
  reported(&f, id, T0, &GAS); /* position 1: Alert */
  char *doc = cap_of(&f, id);
  first(doc, "msgType", got, sizeof got);
  LK_CHECK_STR(got, "Alert");
  first(doc, "identifier", got, sizeof got);
  ident(a, sizeof a, id, 1);
  LK_CHECK_STR(got, a);
  first(doc, "sent", got, sizeof got);
  LK_CHECK_STR(got, "2026-09-21T14:13:20+00:00");
  LK_CHECK(strstr(doc, "<references>") == NULL);
  /* Before routing the district answers. */
  first(doc, "senderName", got, sizeof got);
  LK_CHECK_STR(got, "Wenjiang District");
  LK_CHECK(cap_valid(doc));
  free(doc);

  /* Routing and dispatch are no new message: same identifier, fresher body. */
  routed(&f, id, T0 + MIN, LINKAGE__V1__TIER__COMMUNITY, "lijinggang"); /* 2 */
  doc = cap_of(&f, id);
  first(doc, "identifier", got, sizeof got);
  LK_CHECK_STR(got, a);
  first(doc, "msgType", got, sizeof got);
  LK_CHECK_STR(got, "Alert");
  first(doc, "senderName", got, sizeof got);
  LK_CHECK_STR(got, "Lijinggang community");
  LK_CHECK(cap_valid(doc));
  free(doc);

  escalated(&f, id, T0 + 16 * MIN, LINKAGE__V1__TIER__COMMUNITY, LINKAGE__V1__TIER__STREET,
            "yongquan", 0);          /* 3: Update */
  dispatched(&f, id, T0 + 17 * MIN); /* 4 */
  doc = cap_of(&f, id);
  first(doc, "msgType", got, sizeof got);
  LK_CHECK_STR(got, "Update");
  first(doc, "identifier", got, sizeof got);
  ident(b, sizeof b, id, 3);
  LK_CHECK_STR(got, b);
  first(doc, "sent", got, sizeof got);
  LK_CHECK_STR(got, "2026-09-21T14:29:20+00:00");
  first(doc, "references", got, sizeof got);
  snprintf(want, sizeof want, "%s,%s,2026-09-21T14:13:20+00:00", OPTS.sender, a);
  LK_CHECK_STR(got, want);
  first(doc, "senderName", got, sizeof got);
  LK_CHECK_STR(got, "Yongquan Street");
  xpath(doc, "string((//*[local-name()='info'])[2]/*[local-name()='senderName'])", got, sizeof got);
  LK_CHECK_STR(got, "涌泉街道");
  first(doc, "headline", got, sizeof got);
  LK_CHECK_CONTAINS(got, "escalated to street tier");
  LK_CHECK(cap_valid(doc));
  free(doc);

  severity_changed(&f, id, T0 + 20 * MIN, LINKAGE__V1__SEVERITY__SEVERITY_II,
                   LINKAGE__V1__SEVERITY__SEVERITY_I); /* 5: Update */
  doc = cap_of(&f, id);
  ident(c, sizeof c, id, 5);
  first(doc, "identifier", got, sizeof got);
  LK_CHECK_STR(got, c);
  first(doc, "severity", got, sizeof got);
  LK_CHECK_STR(got, "Extreme");
  first(doc, "references", got, sizeof got);
  snprintf(want, sizeof want, "%s,%s,2026-09-21T14:13:20+00:00 %s,%s,2026-09-21T14:29:20+00:00",
           OPTS.sender, a, OPTS.sender, b);
  LK_CHECK_STR(got, want);
  LK_CHECK(cap_valid(doc));
  free(doc);

  escalated(&f, id, T0 + 25 * MIN, LINKAGE__V1__TIER__STREET, LINKAGE__V1__TIER__COMMUNITY,
            "lijinggang", 1);    /* 6: Update */
  closed(&f, id, T0 + 30 * MIN); /* 7: Cancel */
  doc = cap_of(&f, id);
  first(doc, "msgType", got, sizeof got);
  LK_CHECK_STR(got, "Cancel");
  first(doc, "identifier", got, sizeof got);
  char d[64], e[64];
  ident(d, sizeof d, id, 6);
  ident(e, sizeof e, id, 7);
  LK_CHECK_STR(got, e);
  first(doc, "sent", got, sizeof got);
  LK_CHECK_STR(got, "2026-09-21T14:43:20+00:00");
  first(doc, "references", got, sizeof got);
  snprintf(want, sizeof want,
           "%s,%s,2026-09-21T14:13:20+00:00 %s,%s,2026-09-21T14:29:20+00:00 "
           "%s,%s,2026-09-21T14:33:20+00:00 %s,%s,2026-09-21T14:38:20+00:00",
           OPTS.sender, a, OPTS.sender, b, OPTS.sender, c, OPTS.sender, d);
  LK_CHECK_STR(got, want);
  first(doc, "note", got, sizeof got);
  LK_CHECK_STR(got, "closed: valve shut, all clear");
  first(doc, "incidents", got, sizeof got);
  LK_CHECK_STR(got, id);
  xpath(doc,
        "string((//*[local-name()='parameter'][*[local-name()='valueName']="
        "'linkage:position'])[1]/*[local-name()='value'])",
        got, sizeof got);
  LK_CHECK_STR(got, "7");
  xpath(doc,
        "string((//*[local-name()='parameter'][*[local-name()='valueName']="
        "'linkage:state'])[1]/*[local-name()='value'])",
        got, sizeof got);
  LK_CHECK_STR(got, "closed");
  first(doc, "web", got, sizeof got);
  LK_CHECK_STR(got, "http://127.0.0.1:8080/cap/inc-thread.xml");
  xpath(doc, "count(//*[local-name()='info'])", got, sizeof got);
  LK_CHECK_STR(got, "2");
  LK_CHECK(cap_valid(doc));
  free(doc);
  gw_view_free(&f.v);
}

LK_TEST(merged_is_a_cancel_pointing_at_the_other) {
  struct fold f;
  fold_init(&f);
  reported(&f, "inc-a", T0, &GAS);
  reported(&f, "inc-b", T0 + 1000, &GAS);
  merged(&f, "inc-b", T0 + 2000, "inc-a");
  LK_CHECK(f.ok);
  char *doc = cap_of(&f, "inc-b");
  char got[512];
  first(doc, "msgType", got, sizeof got);
  LK_CHECK_STR(got, "Cancel");
  first(doc, "responseType", got, sizeof got);
  LK_CHECK_STR(got, "None");
  first(doc, "urgency", got, sizeof got);
  LK_CHECK_STR(got, "Past");
  first(doc, "instruction", got, sizeof got);
  LK_CHECK_CONTAINS(got, "http://127.0.0.1:8080/cap/inc-a.xml");
  first(doc, "references", got, sizeof got);
  LK_CHECK_STR(got, "linkage@wenjiang.example,inc-b-2,2026-09-21T14:13:20+00:00");
  LK_CHECK(cap_valid(doc));
  free(doc);
  /* The incident it went into goes on as it was. */
  doc = cap_of(&f, "inc-a");
  first(doc, "msgType", got, sizeof got);
  LK_CHECK_STR(got, "Alert");
  LK_CHECK(cap_valid(doc));
  free(doc);
  gw_view_free(&f.v);
}

LK_TEST(area_circle_and_geocodes) {
  struct fold f;
  fold_init(&f);
  reported(&f, "inc-here", T0, &GAS);
  struct report_args a = GAS;
  a.lat = a.lon = 0;
  a.compound = "spring-square";
  reported(&f, "inc-nowhere", T0, &a);
  LK_CHECK(f.ok);
  char got[512];
  char *doc = cap_of(&f, "inc-here");
  first(doc, "circle", got, sizeof got);
  LK_CHECK_STR(got, "30.680000,103.830000 0.1");
  first(doc, "areaDesc", got, sizeof got);
  LK_CHECK_STR(got, "Lijinggang, building 3, floor 3, Lijinggang community, Yongquan Street");
  xpath(doc, "string((//*[local-name()='areaDesc'])[2])", got, sizeof got);
  LK_CHECK_STR(got, "涌泉街道麗晶港社区麗晶港3栋3层");
  xpath(doc,
        "string((//*[local-name()='geocode'][*[local-name()='valueName']="
        "'linkage:compound'])[1]/*[local-name()='value'])",
        got, sizeof got);
  LK_CHECK_STR(got, "lijinggang");
  LK_CHECK(cap_valid(doc));
  free(doc);

  /* No point in the report: the compound's centre, wider. */
  doc = cap_of(&f, "inc-nowhere");
  const struct lk_compound *c = lk_district_compound(demo(), "spring-square");
  char want[64];
  snprintf(want, sizeof want, "%.6f,%.6f 0.5", c ? c->lat : 0, c ? c->lon : 0);
  first(doc, "circle", got, sizeof got);
  LK_CHECK_STR(got, want);
  LK_CHECK(strstr(doc, "0.000000,0.000000") == NULL);
  LK_CHECK(cap_valid(doc));
  free(doc);
  gw_view_free(&f.v);
}

LK_TEST(hostile_text_is_escaped) {
  struct fold f;
  fold_init(&f);
  struct report_args a = GAS;
  a.kind = "gas<leak>&\"'\x01";
  a.description = "<script>alert(1)</script> & ]]> \"double\" 'single'\x01\x02\x1b\x7f tab\there\n"
                  "燃气味";
  a.building = "<b>";
  reported(&f, "inc-hostile", T0, &a);
  struct report_args bad = GAS;
  bad.description = "not utf-8: \xff\xfe\xc3 and U+FFFF \xef\xbf\xbf end";
  reported(&f, "inc-bytes", T0, &bad);
  LK_CHECK(f.ok);

  char *doc = cap_of(&f, "inc-hostile");
  LK_CHECK(strstr(doc, "<script>") == NULL);
  LK_CHECK(strstr(doc, "<b>") == NULL);
  LK_CHECK(strstr(doc, "gas<leak") == NULL);
  LK_CHECK_CONTAINS(doc, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; ]]&gt; &quot;double&quot;");
  for (const char *p = doc; p && *p; p++)
    if ((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t') {
      LK_CHECK(!"a control byte in the output");
      break;
    }
  char got[1024];
  /* What a parser reads back is the text, minus the bytes XML cannot carry. */
  first(doc, "description", got, sizeof got);
  LK_CHECK_STR(got, "<script>alert(1)</script> & ]]> \"double\" 'single'\x7f tab\there\n燃气味");
  first(doc, "event", got, sizeof got);
  LK_CHECK_STR(got, "gas<leak>&\"'");
  LK_CHECK(cap_valid(doc));
  free(doc);

  doc = cap_of(&f, "inc-bytes");
  first(doc, "description", got, sizeof got);
  LK_CHECK_STR(got, "not utf-8: ??? and U+FFFF ??? end");
  LK_CHECK(cap_valid(doc));
  free(doc);

  /* And the feed carries the same text. */
  struct gw_buf b;
  gw_buf_init(&b);
  gw_cap_atom(&b, &f.v, &OPTS, T0, 10);
  char *feed = gw_buf_take(&b, NULL);
  LK_CHECK(feed && strstr(feed, "<script>") == NULL);
  LK_CHECK(feed && well_formed(feed));
  free(feed);
  gw_view_free(&f.v);
}

LK_TEST(atom_feed_newest_first) {
  struct fold f;
  fold_init(&f);
  const char *ids[] = {"inc-old", "inc-mid", "inc-new", "inc-closed"};
  for (int i = 0; i < 4; i++)
    reported(&f, ids[i], T0 + i * MIN, &GAS);
  routed(&f, "inc-old", T0 + 10 * MIN, LINKAGE__V1__TIER__COMMUNITY, "lijinggang");
  closed(&f, "inc-closed", T0 + 5 * MIN);
  LK_CHECK(f.ok);
  /* updated: inc-old 10 min, inc-closed 5, inc-new 2, inc-mid 1 */
  struct gw_buf b;
  gw_buf_init(&b);
  gw_cap_atom(&b, &f.v, &OPTS, T0 + 60 * MIN, 3);
  char *feed = gw_buf_take(&b, NULL);
  if (!LK_CHECK(feed != NULL)) return;
  LK_CHECK(well_formed(feed));
  char got[1024];
  xpath(feed, "count(//*[local-name()='entry'])", got, sizeof got);
  LK_CHECK_STR(got, "3");
  const char *p1 = strstr(feed, "urn:linkage:wenjiang:incident:inc-old<");
  const char *p2 = strstr(feed, "urn:linkage:wenjiang:incident:inc-closed<");
  const char *p3 = strstr(feed, "urn:linkage:wenjiang:incident:inc-new<");
  LK_CHECK(p1 && p2 && p3 && p1 < p2 && p2 < p3);
  LK_CHECK(strstr(feed, "inc-mid") == NULL);
  xpath(feed, "string(/*[local-name()='feed']/*[local-name()='updated'])", got, sizeof got);
  LK_CHECK_STR(got, "2026-09-21T14:23:20+00:00");
  xpath(feed, "string(/*[local-name()='feed']/*[local-name()='link'][@rel='self']/@href)", got,
        sizeof got);
  LK_CHECK_STR(got, "http://127.0.0.1:8080/cap/index.atom");
  xpath(feed,
        "string((//*[local-name()='entry'])[1]/*[local-name()='link'][@rel='alternate' and "
        "@type='application/cap+xml']/@href)",
        got, sizeof got);
  LK_CHECK_STR(got, "http://127.0.0.1:8080/cap/inc-old.xml");
  LK_CHECK_CONTAINS(feed, "xmlns=\"http://www.w3.org/2005/Atom\"");
  LK_CHECK_CONTAINS(feed, "<author><name>linkage@wenjiang.example</name></author>");
  free(feed);

  /* Nothing yet: a valid feed without entries, updated now. */
  struct gw_view empty;
  LK_CHECK(gw_view_init(&empty, demo()) == 0);
  gw_buf_init(&b);
  gw_cap_atom(&b, &empty, &OPTS, T0, 50);
  feed = gw_buf_take(&b, NULL);
  LK_CHECK(feed && well_formed(feed));
  LK_CHECK(feed && strstr(feed, "<entry>") == NULL);
  LK_CHECK_CONTAINS(feed, "<updated>2026-09-21T14:13:20+00:00</updated>");
  free(feed);
  gw_view_free(&empty);
  gw_view_free(&f.v);
}

int main(void) {
  int rc = lk_test_run_all();
  struct lk_district *d = (struct lk_district *)demo();
  lk_district_destroy(&d);
  return rc;
}
