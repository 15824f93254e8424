/* HTTP request handling of the gateway, past libmicrohttpd's own parser: the route a method and
 * path select, and what the handlers make of hostile arguments: coordinator actions and
 * planned-work windows become router Commands, Open311 POST forms become Reports (which must
 * then pass the contract's check), and the GET documents (Open311 lists, CAP, JSON) are written
 * over a small view. The input is text: "METHOD PATH" on the first line, then "key=value" lines. */
#include <string.h>

#include "fuzz_common.h"
#include "gateway/gateway.h"
#include "gateway/gw_open311.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "linkage/report.h"

#define MAX_ARGS 16

struct args {
  int n;
  char *k[MAX_ARGS], *v[MAX_ARGS];
};

static const char *arg_get(void *ctx, const char *key) {
  struct args *a = ctx;
  for (int i = 0; i < a->n; i++)
    if (strcmp(a->k[i], key) == 0) return a->v[i];
  return NULL;
}

static struct gw_view view;

/* Two incidents, one routed and closed, so the renderers see every shape of row. */
static void fold(uint64_t pos, const char *dev, int close) {
  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  loc.compound_id = "spring-square";
  loc.building = "2";
  Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
  r.device_id = (char *)dev;
  r.sequence = 1;
  r.category = LINKAGE__V1__CATEGORY__PUBLIC_HEALTH;
  r.kind = "sick_cluster";
  r.severity = LINKAGE__V1__SEVERITY__SEVERITY_II;
  r.location = &loc;
  r.description = "fever <&> \"several\"";
  r.observed_at_us = 1800000000000000LL;
  Linkage__V1__Reported rep = LINKAGE__V1__REPORTED__INIT;
  rep.report = &r;
  char id[LK_ID_MAX], eid[LK_ID_MAX + 32];
  lk_incident_id(dev, 1, id);
  Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
  ev.incident_id = id;
  snprintf(eid, sizeof eid, "%s/reported", id);
  ev.event_id = eid;
  ev.type = LINKAGE__V1__EVENT_TYPE__REPORTED;
  ev.at_us = r.observed_at_us;
  ev.actor = "device:x";
  ev.body_case = LINKAGE__V1__EVENT__BODY_REPORTED;
  ev.reported = &rep;
  if (!gw_view_apply(&view, pos, &ev)) abort();
  Linkage__V1__Routed ro = LINKAGE__V1__ROUTED__INIT;
  ro.tier = LINKAGE__V1__TIER__STREET;
  ro.organisation_id = "yongquan";
  ro.acknowledge_by_us = ev.at_us + 600000000LL;
  ro.resolve_by_us = ev.at_us + 6000000000LL;
  snprintf(eid, sizeof eid, "%s/routed", id);
  ev.type = LINKAGE__V1__EVENT_TYPE__ROUTED;
  ev.actor = "svc:router";
  ev.body_case = LINKAGE__V1__EVENT__BODY_ROUTED;
  ev.routed = &ro;
  if (!gw_view_apply(&view, pos + 1, &ev)) abort();
  if (!close) return;
  Linkage__V1__Closed cl = LINKAGE__V1__CLOSED__INIT;
  cl.reason = "done";
  snprintf(eid, sizeof eid, "%s/closed", id);
  ev.type = LINKAGE__V1__EVENT_TYPE__CLOSED;
  ev.body_case = LINKAGE__V1__EVENT__BODY_CLOSED;
  ev.closed = &cl;
  if (!gw_view_apply(&view, pos + 2, &ev)) abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  fuzz_quiet();
  if (gw_view_init(&view, fuzz_district()) != LK_OK) abort();
  fold(1, "fuzz-http-1", 0);
  fold(4, "fuzz-http-2", 1);
  return 0;
}

static void handle(const char *method, const char *path, struct args *a) {
  struct gw_route r;
  if (gw_route_parse(method, path, &r) != 200) return;
  struct gw_buf b;
  gw_buf_init(&b);
  char err[256];
  const int64_t now = 1800000100000000LL;
  switch (r.kind) {
  case GW_R_ACTION:
  case GW_R_WINDOW_DECLARE:
  case GW_R_WINDOW_LIFT: {
    struct gw_command c;
    if (gw_command_build(&r, arg_get, a, "fuzzer", "gw-fuzz", &c, err, sizeof err) != LK_OK) break;
    size_t n = linkage__v1__command__get_packed_size(&c.cmd);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) abort();
    linkage__v1__command__pack(&c.cmd, buf);
    /* What we send must be what the router reads. */
    Linkage__V1__Command *back = linkage__v1__command__unpack(NULL, n, buf);
    if (!back || strcmp(back->command_id, c.cmd.command_id) != 0) abort();
    linkage__v1__command__free_unpacked(back, NULL);
    free(buf);
    break;
  }
  case GW_R_O311_POST: {
    Linkage__V1__Report rep;
    struct gw_open311_post_store st;
    if (gw_open311_parse_post(arg_get, a, fuzz_district(), now, &rep, &st, err, sizeof err) !=
        LK_OK)
      break;
    /* Accepted forms are reports the intake would accept. */
    if (lk_report_check(&rep, fuzz_district(), err, sizeof err) != LK_OK) {
      fprintf(stderr, "fuzz_http: an accepted Open311 POST fails the contract: %s\n", err);
      abort();
    }
    break;
  }
  case GW_R_O311_SERVICES:
    if (r.id[0])
      gw_open311_service_definition(&b, r.xml, fuzz_district(), r.id);
    else
      gw_open311_services(&b, r.xml, fuzz_district(), arg_get, a);
    break;
  case GW_R_O311_REQUESTS: gw_open311_requests(&b, r.xml, &view, arg_get, a, now); break;
  case GW_R_O311_REQUEST: gw_open311_request(&b, r.xml, &view, r.id); break;
  case GW_R_CAP: {
    const struct gw_incident *inc = gw_view_get(&view, r.id);
    struct gw_cap_opts o = {.sender = "fuzz@example", .base_url = "http://127.0.0.1:8080"};
    if (inc) gw_cap_alert(&b, &view, inc, &o);
    break;
  }
  case GW_R_INCIDENT: {
    const struct gw_incident *inc = gw_view_get(&view, r.id);
    if (inc) gw_json_incident(&b, inc, 1);
    break;
  }
  default: break;
  }
  gw_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 16384) return 0;
  char *text = malloc(size + 1);
  if (!text) abort();
  memcpy(text, data, size);
  text[size] = '\0';
  struct args a = {0};
  char *save = NULL;
  char *line = strtok_r(text, "\n", &save);
  char *path = line ? strchr(line, ' ') : NULL;
  if (path) {
    *path++ = '\0';
    while (a.n < MAX_ARGS && (line = strtok_r(NULL, "\n", &save))) {
      char *eq = strchr(line, '=');
      if (!eq) continue;
      *eq = '\0';
      a.k[a.n] = line;
      a.v[a.n++] = eq + 1;
    }
    handle(text, path, &a);
  }
  free(text);
  return 0;
}
