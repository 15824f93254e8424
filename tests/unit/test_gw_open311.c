/* Open311 GeoReport v2 (services/gateway/gw_open311.c): routing, the services list and
 * definitions, requests with each filter and its bad values, escaping of hostile text in both
 * shapes, and POST parsing against the contract's Report rules. The projection is folded from
 * real events with gw_view_apply, as the gateway folds the ledger's stream. */

#include <stdlib.h>
#include <string.h>

#include "gateway/gw_open311.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "lk_test.h"

#define NOW 1790000000000000LL /* 2026-09-21T14:13:20Z */
#define HOUR (3600LL * 1000000LL)
#define DAY (24 * HOUR)

static const struct lk_district *demo(void) {
  static struct lk_district *d;
  if (d == NULL) {
    char err[512];
    d = lk_district_load("deploy/district/wenjiang.yaml", err, sizeof(err));
    if (d == NULL) fprintf(stderr, "cannot load the demo district: %s\n", err);
  }
  return d;
}

/* ---- arguments as the shell hands them over ---- */

struct args {
  const char *kv[40]; /* key, value, key, value, ..., NULL */
};

static const char *arg_get(void *ctx, const char *key) {
  const struct args *a = ctx;
  for (int i = 0; a->kv[i]; i += 2)
    if (strcmp(a->kv[i], key) == 0) return a->kv[i + 1];
  return NULL;
}

/* ---- a projection folded from events ---- */

static uint64_t position;

static void apply(struct gw_view *v, Linkage__V1__Event *ev, const char *qualifier) {
  char event_id[LK_ID_MAX];
  lk_event_id(event_id, sizeof event_id, ev->incident_id, ev->type, qualifier, 0);
  ev->event_id = event_id;
  LK_CHECK(gw_view_apply(v, ++position, ev) != 0);
}

struct rep {
  const char *device;
  uint64_t seq;
  Linkage__V1__Category category;
  const char *kind;
  Linkage__V1__Severity severity;
  const char *compound, *building;
  double lat, lon;
  const char *description;
  int64_t at_us;
};

/* Reports one incident; its id goes to id (LK_ID_MAX bytes). */
static void report(struct gw_view *v, const struct rep *p, char *id) {
  Linkage__V1__Report r;
  Linkage__V1__Location loc;
  Linkage__V1__Reported body;
  Linkage__V1__Event ev;
  linkage__v1__report__init(&r);
  linkage__v1__location__init(&loc);
  linkage__v1__reported__init(&body);
  r.device_id = (char *)p->device;
  r.sequence = p->seq;
  r.category = p->category;
  r.kind = (char *)(p->kind ? p->kind : "");
  r.severity = p->severity;
  r.location = &loc;
  loc.compound_id = (char *)p->compound;
  loc.building = (char *)(p->building ? p->building : "");
  loc.lat = p->lat;
  loc.lon = p->lon;
  r.description = (char *)(p->description ? p->description : "");
  r.observed_at_us = p->at_us;
  body.report = &r;
  body.received_at_us = p->at_us;
  lk_incident_id(p->device, p->seq, id);
  char actor[80];
  snprintf(actor, sizeof actor, "device:%s", p->device);
  lk_event_envelope(&ev, "", id, LINKAGE__V1__EVENT_TYPE__REPORTED, p->at_us, actor);
  ev.reported = &body;
  apply(v, &ev, NULL);
}

static void route(struct gw_view *v, const char *id, Linkage__V1__Tier tier, const char *org,
                  int64_t at_us, int64_t ack_by, int64_t resolve_by) {
  Linkage__V1__Routed body;
  Linkage__V1__Event ev;
  linkage__v1__routed__init(&body);
  body.tier = tier;
  body.organisation_id = (char *)org;
  body.acknowledge_by_us = ack_by;
  body.resolve_by_us = resolve_by;
  lk_event_envelope(&ev, "", id, LINKAGE__V1__EVENT_TYPE__ROUTED, at_us, "svc:router");
  ev.routed = &body;
  apply(v, &ev, NULL);
}

static void close_incident(struct gw_view *v, const char *id, int64_t at_us) {
  Linkage__V1__Closed body;
  Linkage__V1__Event ev;
  linkage__v1__closed__init(&body);
  body.reason = "handled";
  lk_event_envelope(&ev, "", id, LINKAGE__V1__EVENT_TYPE__CLOSED, at_us, "coordinator:li");
  ev.closed = &body;
  apply(v, &ev, NULL);
}

#define HOSTILE "</description><script>alert(\"x\")</script> & 'q' \x01 end"

/* A: accident, routed to community, 1 day old, with coordinates.
 * B: property service, closed, 2 days old.
 * C: latent hazard, 100 days old (outside the default window).
 * D: natural disaster with a hostile description, 3 hours old. */
struct world {
  struct gw_view v;
  char a[LK_ID_MAX], b[LK_ID_MAX], c[LK_ID_MAX], d[LK_ID_MAX];
};

static void world_init(struct world *w) {
  LK_CHECK_EQ_INT(gw_view_init(&w->v, demo()), LK_OK);
  report(&w->v,
         &(struct rep){"app-a", 1, LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "gas_leak",
                       LINKAGE__V1__SEVERITY__SEVERITY_III, "lijinggang", "3", 30.6913, 103.8619,
                       "gas smell in stairwell", NOW - DAY},
         w->a);
  route(&w->v, w->a, LINKAGE__V1__TIER__COMMUNITY, "lijinggang", NOW - DAY + 1000,
        NOW - DAY + HOUR / 2, NOW - DAY + 4 * HOUR);
  report(&w->v,
         &(struct rep){"app-b", 1, LINKAGE__V1__CATEGORY__PROPERTY_SERVICE, "",
                       LINKAGE__V1__SEVERITY__SEVERITY_IV, "spring-square", NULL, 0, 0,
                       "lift noise", NOW - 2 * DAY},
         w->b);
  close_incident(&w->v, w->b, NOW - 2 * DAY + HOUR);
  report(&w->v,
         &(struct rep){"app-c", 9, LINKAGE__V1__CATEGORY__LATENT_HAZARD, "blocked_fire_lane",
                       LINKAGE__V1__SEVERITY__SEVERITY_IV, "zhouji-asia-bay", "12", 0, 0,
                       "cars in the fire lane", NOW - 100 * DAY},
         w->c);
  report(&w->v,
         &(struct rep){"app-d", 2, LINKAGE__V1__CATEGORY__NATURAL_DISASTER, "flooding",
                       LINKAGE__V1__SEVERITY__SEVERITY_II, "zhouji-yinhai-bay", NULL, 0, 0, HOSTILE,
                       NOW - 3 * HOUR},
         w->d);
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

static int starts(const char *s, const char *prefix) {
  return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Position of needle in hay, or -1. */
static long at(const char *hay, const char *needle) {
  const char *p = strstr(hay, needle);
  return p ? p - hay : -1;
}

/* GET requests with args; returns the status, the document in b. */
static int get(struct world *w, struct gw_buf *b, int xml, struct args a) {
  gw_buf_reset(b);
  return gw_open311_requests(b, xml, &w->v, arg_get, &a, NOW);
}

/* ---- routing ---- */

LK_TEST(routes_name_the_documents) {
  struct gw_open311_route r;
  LK_CHECK_EQ_INT(gw_open311_route("services.json", &r), 0);
  LK_CHECK_EQ_INT(r.what, GW_OPEN311_SERVICES);
  LK_CHECK_EQ_INT(r.xml, 0);
  LK_CHECK_EQ_INT(gw_open311_route("services.xml", &r), 0);
  LK_CHECK_EQ_INT(r.xml, 1);
  LK_CHECK_EQ_INT(gw_open311_route("requests.json", &r), 0);
  LK_CHECK_EQ_INT(r.what, GW_OPEN311_REQUESTS);
  LK_CHECK_EQ_INT(gw_open311_route("requests/inc-0123456789abcdef0123.xml", &r), 0);
  LK_CHECK_EQ_INT(r.what, GW_OPEN311_REQUEST);
  LK_CHECK_EQ_INT(r.xml, 1);
  LK_CHECK_STR(r.id, "inc-0123456789abcdef0123");
  LK_CHECK_EQ_INT(gw_open311_route("services/accident_disaster.json", &r), 0);
  LK_CHECK_EQ_INT(r.what, GW_OPEN311_SERVICE_DEF);
  LK_CHECK_STR(r.id, "accident_disaster");
  const char *bad[] = {"services",
                       "services.txt",
                       "requests/.json",
                       "requests/a/b.json",
                       "incidents.json",
                       "services.json.gz",
                       "",
                       "requests/x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    LK_CHECK(gw_open311_route(bad[i], &r) == -1);
  LK_CHECK(gw_open311_route(NULL, &r) == -1);
}

/* ---- services ---- */

LK_TEST(services_list_every_category) {
  struct gw_buf b;
  gw_buf_init(&b);
  struct args none = {{NULL}};
  LK_CHECK_EQ_INT(gw_open311_services(&b, 0, demo(), arg_get, &none), 200);
  LK_CHECK(b.data[0] == '[' && b.data[b.len - 1] == ']');
  LK_CHECK_EQ_INT(count(b.data, "\"service_code\":"), 7);
  const char *codes[] = {"natural_disaster", "accident_disaster", "public_health", "social_safety",
                         "property_service", "neighbour_dispute", "latent_hazard"};
  for (size_t i = 0; i < 7; i++) {
    char want[64];
    snprintf(want, sizeof want, "\"service_code\":\"%s\"", codes[i]);
    LK_CHECK_CONTAINS(b.data, want);
  }
  LK_CHECK_EQ_INT(count(b.data, "\"metadata\":true"), 7);
  LK_CHECK_EQ_INT(count(b.data, "\"type\":\"realtime\""), 7);
  LK_CHECK_EQ_INT(count(b.data, "\"group\":"), 7);
  LK_CHECK_CONTAINS(b.data, "\"service_name\":\"Accident and disaster\"");
  /* the kinds the district's plans name are keywords of their service */
  LK_CHECK_CONTAINS(b.data, "\"keywords\":\"fire,gas,lift,explosion,collapse,electrical,gas_leak,"
                            "lift_entrapment\""); /* "fire" has a plan too: once is enough */
  LK_CHECK_CONTAINS(b.data, "blocked_fire_lane");

  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(gw_open311_services(&b, 1, demo(), arg_get, &none), 200);
  LK_CHECK(starts(b.data, "<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
  LK_CHECK_CONTAINS(b.data, "<services><service><service_code>natural_disaster</service_code>");
  LK_CHECK_EQ_INT(count(b.data, "<service>"), 7);
  LK_CHECK_EQ_INT(count(b.data, "</service>"), 7);
  LK_CHECK_EQ_INT(count(b.data, "<metadata>true</metadata>"), 7);
  LK_CHECK(strcmp(b.data + b.len - strlen("</services>"), "</services>") == 0);

  struct args ours = {{"jurisdiction_id", "wenjiang", NULL}};
  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(gw_open311_services(&b, 0, demo(), arg_get, &ours), 200);
  struct args other = {{"jurisdiction_id", "chengdu-jinjiang", NULL}};
  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(gw_open311_services(&b, 0, demo(), arg_get, &other), 400);
  LK_CHECK(starts(b.data, "[{\"code\":400,\"description\":\"jurisdiction_id"));
  gw_buf_free(&b);
}

LK_TEST(service_definition_lists_the_attributes) {
  struct gw_buf b;
  gw_buf_init(&b);
  LK_CHECK_EQ_INT(gw_open311_service_definition(&b, 0, demo(), "accident_disaster"), 200);
  LK_CHECK(starts(b.data, "{\"service_code\":\"accident_disaster\",\"attributes\":[{"));
  LK_CHECK_CONTAINS(b.data, "\"code\":\"sequence\",\"datatype\":\"number\",\"required\":true");
  LK_CHECK_CONTAINS(b.data, "\"code\":\"kind\",\"datatype\":\"string\",\"required\":false");
  LK_CHECK_CONTAINS(b.data, "\"code\":\"severity\",\"datatype\":\"singlevaluelist\"");
  LK_CHECK_CONTAINS(b.data, "\"values\":[{\"key\":\"I\",\"name\":\"I (especially major)\"},");
  LK_CHECK_CONTAINS(b.data, "{\"key\":\"IV\",\"name\":\"IV (general)\"}]");
  /* the kinds with a plan of their own, in kind's description */
  LK_CHECK_CONTAINS(b.data, "of their own: gas_leak, lift_entrapment, fire.\"");
  LK_CHECK(b.data[b.len - 1] == '}');

  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(gw_open311_service_definition(&b, 1, demo(), "latent_hazard"), 200);
  LK_CHECK_CONTAINS(b.data,
                    "<service_definition><service_code>latent_hazard</service_code>"
                    "<attributes><attribute><variable>true</variable><code>sequence</code>");
  LK_CHECK_CONTAINS(b.data, "<values><value><key>I</key><name>I (especially major)</name></value>");
  LK_CHECK_EQ_INT(count(b.data, "<attribute>"), count(b.data, "</attribute>"));

  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(gw_open311_service_definition(&b, 0, demo(), "ACCIDENT_DISASTER"), 404);
  LK_CHECK(starts(b.data, "[{\"code\":404,"));
  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(gw_open311_service_definition(&b, 1, demo(), "fire"), 404);
  LK_CHECK_CONTAINS(b.data, "<errors><error><code>404</code><description>service_code");
  gw_buf_free(&b);
}

/* ---- requests ---- */

LK_TEST(requests_default_is_last_90_days_newest_first) {
  struct world w;
  world_init(&w);
  struct gw_buf b;
  gw_buf_init(&b);
  LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{NULL}}), 200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 3);
  long pd = at(b.data, w.d), pa = at(b.data, w.a), pb = at(b.data, w.b);
  LK_CHECK(pd > 0 && pa > pd && pb > pa);
  LK_CHECK(at(b.data, w.c) < 0);
  gw_buf_free(&b);
  gw_view_free(&w.v);
}

LK_TEST(requests_carry_the_fields) {
  struct world w;
  world_init(&w);
  struct gw_buf b;
  gw_buf_init(&b);
  char t[32], want[256];
  LK_CHECK_EQ_INT(gw_open311_request(&b, 0, &w.v, w.a), 200);
  LK_CHECK(b.data[0] == '[' && b.data[b.len - 1] == ']');
  snprintf(want, sizeof want, "[{\"service_request_id\":\"%s\",\"status\":\"open\"", w.a);
  LK_CHECK_CONTAINS(b.data, want);
  LK_CHECK_CONTAINS(b.data, "\"status_notes\":\"routed at community tier\"");
  LK_CHECK_CONTAINS(b.data, "\"service_name\":\"Accident and disaster\"");
  LK_CHECK_CONTAINS(b.data, "\"service_code\":\"accident_disaster\"");
  LK_CHECK_CONTAINS(b.data, "\"description\":\"gas smell in stairwell\"");
  LK_CHECK_CONTAINS(b.data, "\"agency_responsible\":\"Lijinggang community (麗晶港社区)\"");
  LK_CHECK_CONTAINS(b.data, "\"service_notice\":\"severity III (large), kind gas_leak\"");
  gw_time_format(NOW - DAY, t);
  snprintf(want, sizeof want, "\"requested_datetime\":\"%s\"", t);
  LK_CHECK_CONTAINS(b.data, want);
  gw_time_format(NOW - DAY + 1000, t);
  snprintf(want, sizeof want, "\"updated_datetime\":\"%s\"", t);
  LK_CHECK_CONTAINS(b.data, want);
  gw_time_format(NOW - DAY + HOUR / 2, t); /* the acknowledge deadline runs */
  snprintf(want, sizeof want, "\"expected_datetime\":\"%s\"", t);
  LK_CHECK_CONTAINS(b.data, want);
  LK_CHECK_CONTAINS(b.data, "\"address\":\"Lijinggang (麗晶港), building 3\"");
  LK_CHECK_CONTAINS(b.data, "\"address_id\":\"lijinggang\"");
  LK_CHECK_CONTAINS(b.data, "\"lat\":30.691300,\"long\":103.861900");
  LK_CHECK_CONTAINS(b.data, "\"media_url\":\"\"}]");

  /* closed, no coordinates: no expected_datetime, no lat/long */
  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(gw_open311_request(&b, 1, &w.v, w.b), 200);
  snprintf(want, sizeof want,
           "<service_requests><request><service_request_id>%s</service_request_id>"
           "<status>closed</status><status_notes>closed</status_notes>",
           w.b);
  LK_CHECK_CONTAINS(b.data, want);
  LK_CHECK(at(b.data, "expected_datetime") < 0);
  LK_CHECK(at(b.data, "<lat>") < 0 && at(b.data, "<long>") < 0);
  LK_CHECK_CONTAINS(b.data, "<address>Spring Square (春天广场)</address>");
  LK_CHECK_CONTAINS(b.data, "<agency_responsible></agency_responsible>");
  LK_CHECK_CONTAINS(b.data, "<media_url></media_url></request></service_requests>");

  /* not routed yet */
  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(gw_open311_request(&b, 0, &w.v, w.c), 200);
  LK_CHECK_CONTAINS(b.data, "\"status_notes\":\"reported, not yet routed\"");

  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(gw_open311_request(&b, 0, &w.v, "inc-00000000000000000000"), 404);
  LK_CHECK(starts(b.data, "[{\"code\":404,\"description\":\"service_request_id"));
  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(gw_open311_request(&b, 1, &w.v, "nope"), 404);
  LK_CHECK_CONTAINS(b.data, "<errors><error><code>404</code>");
  gw_buf_free(&b);
  gw_view_free(&w.v);
}

LK_TEST(requests_filter_by_service_code) {
  struct world w;
  world_init(&w);
  struct gw_buf b;
  gw_buf_init(&b);
  LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"service_code", "property_service", NULL}}), 200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 1);
  LK_CHECK(at(b.data, w.b) > 0);
  /* C is older than the default window even though its code is asked for */
  LK_CHECK_EQ_INT(
      get(&w, &b, 0, (struct args){{"service_code", "property_service, latent_hazard", NULL}}),
      200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 1);
  LK_CHECK_EQ_INT(get(&w, &b, 0,
                      (struct args){{"service_code", "property_service,latent_hazard", "start_date",
                                     "2026-01-01T00:00:00Z", NULL}}),
                  200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 2);
  LK_CHECK(at(b.data, w.c) > 0);
  LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"service_code", "", NULL}}), 200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 3);

  const char *bad[] = {"fire", "ACCIDENT_DISASTER", "property_service,", ",", "a,,b"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"service_code", bad[i], NULL}}), 400);
    LK_CHECK(starts(b.data, "[{\"code\":400,\"description\":\"service_code"));
  }
  LK_CHECK_EQ_INT(get(&w, &b, 1, (struct args){{"service_code", "fire", NULL}}), 400);
  LK_CHECK_CONTAINS(b.data, "<errors><error><code>400</code><description>service_code");
  gw_buf_free(&b);
  gw_view_free(&w.v);
}

LK_TEST(requests_filter_by_status) {
  struct world w;
  world_init(&w);
  struct gw_buf b;
  gw_buf_init(&b);
  LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"status", "closed", NULL}}), 200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 1);
  LK_CHECK(at(b.data, w.b) > 0);
  LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"status", "open", NULL}}), 200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 2);
  LK_CHECK(at(b.data, w.a) > 0 && at(b.data, w.d) > 0);
  LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"status", "open,closed", NULL}}), 200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 3);
  const char *bad[] = {"resolved", "opened", "open;closed", "open,"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"status", bad[i], NULL}}), 400);
    LK_CHECK_CONTAINS(b.data, "\"description\":\"status");
  }
  gw_buf_free(&b);
  gw_view_free(&w.v);
}

LK_TEST(requests_filter_by_dates) {
  struct world w;
  world_init(&w);
  struct gw_buf b;
  gw_buf_init(&b);
  /* NOW is 2026-09-21T14:13:20Z: A 2026-09-20T14:13:20Z, B 09-19, D 09-21T11:13:20Z */
  LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"start_date", "2026-09-20T14:13:20Z", NULL}}), 200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 2); /* inclusive: A and D */
  LK_CHECK(at(b.data, w.a) > 0);
  /* the same instant with an offset, once with '+' and once decoded to ' ' */
  LK_CHECK_EQ_INT(
      get(&w, &b, 0, (struct args){{"start_date", "2026-09-20T22:13:20.000001+08:00", NULL}}), 200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 1); /* a microsecond after A */
  LK_CHECK(at(b.data, w.d) > 0);
  LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"start_date", "2026-09-20T22:13:20 08:00", NULL}}),
                  200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 2);
  LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"start_date", "2026-09-20T09:13:20-05:00", NULL}}),
                  200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 2);
  /* end_date alone: inclusive, and the window starts 90 days before it */
  LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"end_date", "2026-09-20T14:13:20Z", NULL}}), 200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 2); /* A and B */
  LK_CHECK(at(b.data, w.d) < 0);
  LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"end_date", "2026-06-14T00:00:00Z", NULL}}), 200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 1); /* C, 2026-06-13 */
  LK_CHECK(at(b.data, w.c) > 0);
  LK_CHECK_EQ_INT(get(&w, &b, 0,
                      (struct args){{"start_date", "2026-09-19T00:00:00Z", "end_date",
                                     "2026-09-19T23:59:59Z", NULL}}),
                  200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 1);
  LK_CHECK(at(b.data, w.b) > 0);

  const char *bad[] = {"2026-09-20",
                       "2026-09-20T00:00:00",
                       "2026-13-01T00:00:00Z",
                       "2026-02-29T00:00:00Z",
                       "2026-09-20T24:00:00Z",
                       "2026-09-20T00:00:00+8:00",
                       "yesterday",
                       "2026-09-20T00:00:00Zx",
                       "2026-09-20T00:00:00."};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"start_date", bad[i], NULL}}), 400);
    LK_CHECK_CONTAINS(b.data, "\"description\":\"start_date");
    LK_CHECK_EQ_INT(get(&w, &b, 1, (struct args){{"end_date", bad[i], NULL}}), 400);
    LK_CHECK_CONTAINS(b.data, "<description>end_date");
  }
  LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"start_date", "2024-02-29T00:00:00Z", NULL}}), 200);
  LK_CHECK_EQ_INT(get(&w, &b, 0,
                      (struct args){{"start_date", "2026-09-20T00:00:00Z", "end_date",
                                     "2026-09-19T00:00:00Z", NULL}}),
                  400);
  LK_CHECK_CONTAINS(b.data, "end_date is before start_date");
  gw_buf_free(&b);
  gw_view_free(&w.v);
}

LK_TEST(requests_by_id_list_override_other_filters) {
  struct world w;
  world_init(&w);
  struct gw_buf b;
  gw_buf_init(&b);
  char ids[4 * LK_ID_MAX];
  snprintf(ids, sizeof ids, "%s, %s,%s", w.c, w.a, w.c);
  LK_CHECK_EQ_INT(get(&w, &b, 0,
                      (struct args){{"service_request_id", ids, "status", "closed", "service_code",
                                     "bogus", NULL}}),
                  200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 2); /* repeats once */
  LK_CHECK(at(b.data, w.a) > 0 && at(b.data, w.c) > at(b.data, w.a));
  LK_CHECK_EQ_INT(get(&w, &b, 1, (struct args){{"service_request_id", "inc-unknown", NULL}}), 200);
  LK_CHECK_STR(b.data,
               "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<service_requests></service_requests>");
  LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"service_request_id", "inc-unknown", NULL}}), 200);
  LK_CHECK_STR(b.data, "[]");
  const char *bad[] = {"inc-a,,inc-b", "inc \"a\"", "inc-0123456789012345678901234567890123456789",
                       ","};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    LK_CHECK_EQ_INT(get(&w, &b, 0, (struct args){{"service_request_id", bad[i], NULL}}), 400);
    LK_CHECK_CONTAINS(b.data, "\"description\":\"service_request_id");
  }
  gw_buf_free(&b);
  gw_view_free(&w.v);
}

LK_TEST(requests_stop_at_1000) {
  struct gw_view v;
  LK_CHECK_EQ_INT(gw_view_init(&v, demo()), LK_OK);
  char id[LK_ID_MAX], first[LK_ID_MAX] = "", last[LK_ID_MAX] = "";
  for (uint64_t i = 1; i <= 1005; i++) {
    report(&v,
           &(struct rep){"bulk", i, LINKAGE__V1__CATEGORY__LATENT_HAZARD, "",
                         LINKAGE__V1__SEVERITY__SEVERITY_IV, "spring-square", NULL, 0, 0, "x",
                         NOW - (int64_t)i * 1000000},
           id);
    if (i == 1) strcpy(first, id);
    if (i == 1005) strcpy(last, id);
  }
  struct gw_buf b;
  gw_buf_init(&b);
  struct args none = {{NULL}};
  LK_CHECK_EQ_INT(gw_open311_requests(&b, 0, &v, arg_get, &none, NOW), 200);
  LK_CHECK_EQ_INT(count(b.data, "\"service_request_id\":"), 1000);
  LK_CHECK(at(b.data, first) > 0); /* the newest are kept */
  LK_CHECK(at(b.data, last) < 0);
  gw_buf_free(&b);
  gw_view_free(&v);
}

LK_TEST(hostile_descriptions_are_escaped) {
  struct world w;
  world_init(&w);
  struct gw_buf b;
  gw_buf_init(&b);
  LK_CHECK_EQ_INT(gw_open311_request(&b, 0, &w.v, w.d), 200);
  LK_CHECK_CONTAINS(b.data, "\"description\":\"\\u003c/description>\\u003cscript>alert(\\\"x\\\")"
                            "\\u003c/script> & 'q' \\u0001 end\"");
  LK_CHECK(at(b.data, "<script>") < 0);
  LK_CHECK(at(b.data, "\x01") < 0);
  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(gw_open311_request(&b, 1, &w.v, w.d), 200);
  LK_CHECK_CONTAINS(b.data, "<description>&lt;/description&gt;&lt;script&gt;alert(&quot;x&quot;)"
                            "&lt;/script&gt; &amp; &apos;q&apos;  end</description>");
  LK_CHECK(at(b.data, "<script>") < 0);
  LK_CHECK(at(b.data, "\x01") < 0);
  LK_CHECK_EQ_INT(count(b.data, "<description>"), 1);

  /* a hostile value echoed in an error document */
  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(get(&w, &b, 1, (struct args){{"status", "<x>&\"\xff\xfe", NULL}}), 400);
  LK_CHECK_CONTAINS(b.data, "status &quot;&lt;x&gt;&amp;&quot;??&quot; must be");
  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(gw_open311_error(&b, 0, 401, "no \"token\" </script>"), 401);
  LK_CHECK_STR(b.data, "[{\"code\":401,\"description\":\"no \\\"token\\\" \\u003c/script>\"}]");
  gw_buf_free(&b);
  gw_view_free(&w.v);
}

/* ---- POST ---- */

struct post {
  Linkage__V1__Report r;
  struct gw_open311_post_store store;
  char err[1024];
};

static int parse(struct post *p, struct args a) {
  return gw_open311_parse_post(arg_get, &a, demo(), NOW, &p->r, &p->store, p->err, sizeof p->err);
}

#define GOOD                                                                                       \
  "service_code", "accident_disaster", "address_id", "zhouji-asia-bay", "device_id",               \
      "grid-app-17", "attribute[sequence]", "42"

LK_TEST(post_good_yields_the_report) {
  struct post p;
  LK_CHECK_EQ_INT(parse(&p, (struct args){{GOOD,
                                           "description",
                                           "two trapped in lift B, 电梯困人",
                                           "attribute[kind]",
                                           "lift_entrapment",
                                           "attribute[severity]",
                                           "III",
                                           "lat",
                                           "30.6868",
                                           "long",
                                           "103.8704",
                                           "attribute[building]",
                                           "12",
                                           "attribute[unit]",
                                           "2",
                                           "attribute[floor]",
                                           "-1",
                                           "jurisdiction_id",
                                           "wenjiang",
                                           NULL}}),
                  LK_OK);
  LK_CHECK_STR(p.err, "");
  LK_CHECK_STR(p.r.device_id, "grid-app-17");
  LK_CHECK_EQ_INT(p.r.sequence, 42);
  LK_CHECK_EQ_INT(p.r.category, LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER);
  LK_CHECK_STR(p.r.kind, "lift_entrapment");
  LK_CHECK_EQ_INT(p.r.severity, LINKAGE__V1__SEVERITY__SEVERITY_III);
  LK_CHECK_STR(p.r.description, "two trapped in lift B, 电梯困人");
  LK_CHECK_EQ_INT(p.r.observed_at_us, NOW);
  LK_CHECK(p.r.location != NULL);
  LK_CHECK_STR(p.r.location->compound_id, "zhouji-asia-bay");
  LK_CHECK_STR(p.r.location->building, "12");
  LK_CHECK_STR(p.r.location->unit, "2");
  LK_CHECK_EQ_INT(p.r.location->floor, -1);
  LK_CHECK(p.r.location->lat == 30.6868 && p.r.location->lon == 103.8704);
  /* it packs, and the contract's check agrees */
  uint8_t buf[LK_REPORT_FRAME_MAX];
  size_t n = linkage__v1__report__get_packed_size(&p.r);
  LK_CHECK(n <= sizeof buf);
  if (n <= sizeof buf) {
    linkage__v1__report__pack(&p.r, buf);
    char err[256];
    LK_CHECK_EQ_INT(lk_report_wire_check(buf, n, err, sizeof err), LK_OK);
  }
  char err[256];
  LK_CHECK_EQ_INT(lk_report_check(&p.r, demo(), err, sizeof err), LK_OK);
}

LK_TEST(post_minimal_takes_the_defaults) {
  struct post p;
  LK_CHECK_EQ_INT(parse(&p, (struct args){{GOOD, "description", "", "lat", "", "long", "", NULL}}),
                  LK_OK);
  LK_CHECK_EQ_INT(p.r.severity, LINKAGE__V1__SEVERITY__SEVERITY_IV);
  LK_CHECK_STR(p.r.kind, "");
  LK_CHECK_STR(p.r.description, "");
  LK_CHECK_STR(p.r.location->building, "");
  LK_CHECK(p.r.location->lat == 0 && p.r.location->lon == 0);
  LK_CHECK_EQ_INT(p.r.location->floor, 0);
  /* the largest sequence the contract's uint64 holds */
  LK_CHECK_EQ_INT(parse(&p, (struct args){{"service_code", "latent_hazard", "address_id",
                                           "lijinggang", "device_id",
                                           "d234567890123456789012345678901234567890123456789012"
                                           "345678901234",
                                           "attribute[sequence]", "18446744073709551615", NULL}}),
                  LK_OK);
  LK_CHECK(p.r.sequence == UINT64_MAX);
  LK_CHECK_EQ_INT(strlen(p.r.device_id), 64);
}

LK_TEST(post_missing_fields_are_named) {
  struct post p;
  LK_CHECK_EQ_INT(parse(&p, (struct args){{NULL}}), LK_EINVAL);
  LK_CHECK_CONTAINS(p.err, "service_code is required");
  LK_CHECK_CONTAINS(p.err, "address_id is required");
  LK_CHECK_CONTAINS(p.err, "device_id is required");
  LK_CHECK_CONTAINS(p.err, "attribute[sequence] is required");

  const char *required[] = {"service_code", "address_id", "device_id", "attribute[sequence]"};
  for (size_t i = 0; i < 4; i++) {
    struct args a = {{GOOD, NULL}};
    a.kv[2 * i + 1] = ""; /* an empty form field is a missing one */
    LK_CHECK_EQ_INT(
        gw_open311_parse_post(arg_get, &a, demo(), NOW, &p.r, &p.store, p.err, sizeof p.err),
        LK_EINVAL);
    char want[64];
    snprintf(want, sizeof want, "%s is required", required[i]);
    LK_CHECK_CONTAINS(p.err, want);
    LK_CHECK(strchr(p.err, ';') == NULL); /* only that one */
  }
}

LK_TEST(post_invalid_fields_are_named) {
  char long65[66], long2001[2002];
  memset(long65, 'a', 65);
  long65[65] = '\0';
  memset(long2001, 'x', 2001);
  long2001[2001] = '\0';
  /* arg_get answers with the first value of a key, so the bad one goes before GOOD */
  struct {
    const char *k, *v, *want;
  } cases[] = {
      {"service_code", "ACCIDENT_DISASTER", "service_code \"ACCIDENT_DISASTER\" is not a service"},
      {"service_code", "fire", "service_code \"fire\" is not a service"},
      {"address_id", "lijinggang-9", "address_id \"lijinggang-9\" is not a compound"},
      {"address_id", "yongquan", "address_id \"yongquan\" is not a compound"},
      {"device_id", long65, "device_id is 65 bytes, max 64"},
      {"device_id", "dev\xff", "device_id is not valid UTF-8"},
      {"attribute[sequence]", "0", "attribute[sequence] \"0\" is not an integer from 1"},
      {"attribute[sequence]", "-1", "attribute[sequence] \"-1\""},
      {"attribute[sequence]", "1.5", "attribute[sequence] \"1.5\""},
      {"attribute[sequence]", "12abc", "attribute[sequence] \"12abc\""},
      {"attribute[sequence]", " 7", "attribute[sequence] \" 7\""},
      {"attribute[sequence]", "18446744073709551616", "attribute[sequence] \"184467440737095516"},
      {"attribute[severity]", "V", "attribute[severity] \"V\" must be I, II, III or IV"},
      {"attribute[severity]", "2", "attribute[severity] \"2\""},
      {"attribute[kind]", long65, "attribute[kind] is 65 bytes, max 64"},
      {"attribute[building]", long65, "attribute[building] is 65 bytes, max 64"},
      {"attribute[unit]", long65, "attribute[unit] is 65 bytes, max 64"},
      {"attribute[floor]", "2.5", "attribute[floor] \"2.5\" is not an integer"},
      {"attribute[floor]", "99999999999", "attribute[floor]"},
      {"description", long2001, "description is 2001 bytes, max 2000"},
      {"description", "caf\xc3", "description is not valid UTF-8"},
      {"lat", "30.6", "lat and long go together"},
      {"long", "103.8", "lat and long go together"},
      {"jurisdiction_id", "elsewhere", "jurisdiction_id \"elsewhere\" is not served here"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct post p;
    struct args a = {{cases[i].k, cases[i].v, GOOD, NULL}};
    int rc = gw_open311_parse_post(arg_get, &a, demo(), NOW, &p.r, &p.store, p.err, sizeof p.err);
    if (!lk_test_check(rc == LK_EINVAL, "bad field is refused", __FILE__, __LINE__))
      fprintf(stderr, "     field %s\n", cases[i].k);
    LK_CHECK_CONTAINS(p.err, cases[i].want);
  }
  /* coordinates: both given, each checked */
  struct {
    const char *lat, *lon, *want;
  } coords[] = {
      {"91", "103.8", "location.lat 91 is outside [-90, 90]"},
      {"30.6", "-181", "location.lon -181 is outside [-180, 180]"},
      {"abc", "103.8", "lat \"abc\" is not a number"},
      {"30.6", "0x10", "long \"0x10\" is not a number"},
      {"nan", "103.8", "lat \"nan\""},
      {"30.6", "inf", "long \"inf\""},
      {"30.6 ", "103.8", "lat \"30.6 \""},
  };
  for (size_t i = 0; i < sizeof coords / sizeof coords[0]; i++) {
    struct post p;
    struct args a = {{"lat", coords[i].lat, "long", coords[i].lon, GOOD, NULL}};
    LK_CHECK_EQ_INT(
        gw_open311_parse_post(arg_get, &a, demo(), NOW, &p.r, &p.store, p.err, sizeof p.err),
        LK_EINVAL);
    LK_CHECK_CONTAINS(p.err, coords[i].want);
  }
}

LK_TEST(post_sequence_and_device_follow_the_contract) {
  /* The idempotency key is (device_id, sequence) exactly as on the ZeroMQ intake: the same
   * POST names the same incident, another sequence or device another. */
  struct post p;
  char a[LK_ID_MAX], b[LK_ID_MAX], c[LK_ID_MAX], z[LK_ID_MAX];
  LK_CHECK_EQ_INT(parse(&p, (struct args){{GOOD, NULL}}), LK_OK);
  lk_incident_id(p.r.device_id, p.r.sequence, a);
  LK_CHECK_EQ_INT(parse(&p, (struct args){{GOOD, "description", "other words", NULL}}), LK_OK);
  lk_incident_id(p.r.device_id, p.r.sequence, b);
  LK_CHECK_STR(a, b);
  lk_incident_id("grid-app-17", 42, z);
  LK_CHECK_STR(a, z);
  struct args other = {{"attribute[sequence]", "43", GOOD, NULL}};
  LK_CHECK_EQ_INT(
      gw_open311_parse_post(arg_get, &other, demo(), NOW, &p.r, &p.store, p.err, sizeof p.err),
      LK_OK);
  lk_incident_id(p.r.device_id, p.r.sequence, c);
  LK_CHECK(strcmp(a, c) != 0);
}

/* ---- POST answers ---- */

LK_TEST(post_reply_follows_the_ack) {
  struct gw_buf b;
  gw_buf_init(&b);
  Linkage__V1__ReportAck ack;
  linkage__v1__report_ack__init(&ack);
  ack.incident_id = "inc-0123456789abcdef0123";
  ack.sequence = 42;
  ack.status = LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED;
  LK_CHECK_EQ_INT(gw_open311_post_reply(&b, 0, &ack), 201);
  LK_CHECK(starts(b.data, "[{\"service_request_id\":\"inc-0123456789abcdef0123\","
                          "\"service_notice\":\"accepted"));
  LK_CHECK(b.data[b.len - 1] == ']');
  gw_buf_reset(&b);
  ack.status = LINKAGE__V1__REPORT_ACK__STATUS__DUPLICATE;
  LK_CHECK_EQ_INT(gw_open311_post_reply(&b, 1, &ack), 200);
  LK_CHECK_CONTAINS(b.data,
                    "<service_requests><request><service_request_id>inc-0123456789abcdef0123"
                    "</service_request_id><service_notice>");
  gw_buf_reset(&b);
  ack.status = LINKAGE__V1__REPORT_ACK__STATUS__REJECTED;
  ack.incident_id = "";
  ack.error = "location.compound_id \"x\" is not a compound of this district";
  LK_CHECK_EQ_INT(gw_open311_post_reply(&b, 0, &ack), 400);
  LK_CHECK_STR(b.data, "[{\"code\":400,\"description\":\"rejected by intake: location.compound_id "
                       "\\\"x\\\" is not a compound of this district\"}]");
  gw_buf_reset(&b);
  ack.status = LINKAGE__V1__REPORT_ACK__STATUS__BUSY;
  ack.error = "intake is at capacity";
  ack.retry_after_ms = 250;
  LK_CHECK_EQ_INT(gw_open311_post_reply(&b, 1, &ack), 503);
  LK_CHECK_CONTAINS(b.data, "<code>503</code><description>intake is busy: intake is at capacity; "
                            "retry after 250 ms</description>");
  gw_buf_reset(&b);
  LK_CHECK_EQ_INT(gw_open311_post_reply(&b, 0, NULL), 503);
  gw_buf_reset(&b);
  ack.status = LINKAGE__V1__REPORT_ACK__STATUS__STATUS_UNSPECIFIED;
  LK_CHECK_EQ_INT(gw_open311_post_reply(&b, 0, &ack), 502);
  gw_buf_reset(&b);
  ack.status = LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED; /* accepted but no incident named */
  LK_CHECK_EQ_INT(gw_open311_post_reply(&b, 0, &ack), 502);
  gw_buf_free(&b);
}

int main(void) {
  return lk_test_run_all();
}
