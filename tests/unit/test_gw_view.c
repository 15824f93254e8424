/* The gateway's core: the projection folded from events, the dashboard's JSON, the URL space
 * and the coordinator actions. Plain functions over plain structs: no sockets. */
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "lk_test.h"

static struct lk_district *district(void) {
  static struct lk_district *d;
  char err[256];
  if (!d) d = lk_district_load("deploy/district/wenjiang.yaml", err, sizeof err);
  return d;
}

/* Event builders: each fills one static body, enough for a fold that copies what it keeps. */
static Linkage__V1__Report rep;
static Linkage__V1__Location loc;
static Linkage__V1__Reported reported_body;

static Linkage__V1__Event base(const char *incident, Linkage__V1__EventType type, const char *eid,
                               int64_t at) {
  Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
  ev.incident_id = (char *)incident;
  ev.event_id = (char *)eid;
  ev.type = type;
  ev.at_us = at;
  ev.actor = "svc:router";
  return ev;
}

static Linkage__V1__Event reported(const char *incident, const char *desc) {
  linkage__v1__report__init(&rep);
  linkage__v1__location__init(&loc);
  linkage__v1__reported__init(&reported_body);
  rep.device_id = "dev-1";
  rep.sequence = 1;
  rep.category = LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER;
  rep.kind = "gas_leak";
  rep.severity = LINKAGE__V1__SEVERITY__SEVERITY_III;
  loc.compound_id = "zhouji-asia-bay";
  loc.building = "3";
  rep.location = &loc;
  rep.description = (char *)desc;
  rep.observed_at_us = 1000000;
  reported_body.report = &rep;
  reported_body.received_at_us = 1000100;
  static char eid[128];
  snprintf(eid, sizeof eid, "%s/reported", incident);
  Linkage__V1__Event ev = base(incident, LINKAGE__V1__EVENT_TYPE__REPORTED, eid, 1000100);
  ev.actor = "device:dev-1";
  ev.body_case = LINKAGE__V1__EVENT__BODY_REPORTED;
  ev.reported = &reported_body;
  return ev;
}

static Linkage__V1__Routed routed_body;
static Linkage__V1__Event routed(const char *incident, Linkage__V1__Tier tier, int64_t ack_by,
                                 int64_t resolve_by) {
  linkage__v1__routed__init(&routed_body);
  routed_body.tier = tier;
  routed_body.organisation_id = "jiangpu-road";
  routed_body.acknowledge_by_us = ack_by;
  routed_body.resolve_by_us = resolve_by;
  static char eid[128];
  snprintf(eid, sizeof eid, "%s/routed", incident);
  Linkage__V1__Event ev = base(incident, LINKAGE__V1__EVENT_TYPE__ROUTED, eid, 2000000);
  ev.body_case = LINKAGE__V1__EVENT__BODY_ROUTED;
  ev.routed = &routed_body;
  return ev;
}

static Linkage__V1__Escalated esc_body;
static Linkage__V1__Event escalated(const char *incident, Linkage__V1__Tier from,
                                    Linkage__V1__Tier to) {
  linkage__v1__escalated__init(&esc_body);
  esc_body.from_tier = from;
  esc_body.to_tier = to;
  esc_body.reason = "acknowledge deadline missed";
  esc_body.organisation_id = "yongquan";
  esc_body.acknowledge_by_us = 9000000;
  esc_body.resolve_by_us = 99000000;
  static char eid[128];
  snprintf(eid, sizeof eid, "%s/escalated/1", incident);
  Linkage__V1__Event ev = base(incident, LINKAGE__V1__EVENT_TYPE__ESCALATED, eid, 3000000);
  ev.body_case = LINKAGE__V1__EVENT__BODY_ESCALATED;
  ev.escalated = &esc_body;
  return ev;
}

static Linkage__V1__Acknowledged ack_body;
static Linkage__V1__Event acknowledged(const char *incident) {
  linkage__v1__acknowledged__init(&ack_body);
  ack_body.note = "on it";
  static char eid[128];
  snprintf(eid, sizeof eid, "%s/acknowledged/cmd-1", incident);
  Linkage__V1__Event ev = base(incident, LINKAGE__V1__EVENT_TYPE__ACKNOWLEDGED, eid, 4000000);
  ev.actor = "coordinator:alice";
  ev.body_case = LINKAGE__V1__EVENT__BODY_ACKNOWLEDGED;
  ev.acknowledged = &ack_body;
  return ev;
}

static Linkage__V1__Dispatched disp_body;
static Linkage__V1__Event dispatched(const char *incident, const char *unit, int lead) {
  linkage__v1__dispatched__init(&disp_body);
  disp_body.assignment_id = "a-1";
  disp_body.unit_id = (char *)unit;
  disp_body.role = "property";
  disp_body.lead = lead;
  disp_body.tier = LINKAGE__V1__TIER__STREET;
  static char eid[128];
  snprintf(eid, sizeof eid, "%s/dispatched/%s", incident, unit);
  Linkage__V1__Event ev = base(incident, LINKAGE__V1__EVENT_TYPE__DISPATCHED, eid, 5000000);
  ev.actor = "svc:dispatch";
  ev.body_case = LINKAGE__V1__EVENT__BODY_DISPATCHED;
  ev.dispatched = &disp_body;
  return ev;
}

static Linkage__V1__Closed closed_body;
static Linkage__V1__Event closed(const char *incident) {
  linkage__v1__closed__init(&closed_body);
  closed_body.reason = "done";
  static char eid[128];
  snprintf(eid, sizeof eid, "%s/closed", incident);
  Linkage__V1__Event ev = base(incident, LINKAGE__V1__EVENT_TYPE__CLOSED, eid, 6000000);
  ev.body_case = LINKAGE__V1__EVENT__BODY_CLOSED;
  ev.closed = &closed_body;
  return ev;
}

LK_TEST(view_follows_an_incident_through_its_life) {
  struct gw_view v;
  LK_CHECK(district() != NULL);
  LK_CHECK_EQ_INT(gw_view_init(&v, district()), LK_OK);
  const char *id = "inc-00000000000000000001";
  Linkage__V1__Event ev = reported(id, "gas smell");
  uint32_t slot = gw_view_apply(&v, 1, &ev);
  LK_CHECK(slot == 1);
  const struct gw_incident *inc = gw_view_get(&v, id);
  LK_CHECK(inc != NULL);
  if (!inc) return;
  LK_CHECK_EQ_INT(inc->state, LK_STATE_REPORTED);
  LK_CHECK_STR(inc->community_id, "jiangpu-road");
  LK_CHECK_STR(inc->street_id, "yongquan");
  LK_CHECK_EQ_INT(v.open, 1);
  int64_t at;
  LK_CHECK(gw_incident_deadline(inc, &at) == NULL); /* not routed: no deadline runs */

  ev = routed(id, LINKAGE__V1__TIER__COMMUNITY, 7000000, 70000000);
  LK_CHECK_EQ_INT(gw_view_apply(&v, 2, &ev), slot);
  LK_CHECK_EQ_INT(inc->state, LK_STATE_ROUTED);
  LK_CHECK_STR(gw_incident_deadline(inc, &at), "acknowledge");
  LK_CHECK_EQ_INT(at, 7000000);

  ev = escalated(id, LINKAGE__V1__TIER__COMMUNITY, LINKAGE__V1__TIER__STREET);
  gw_view_apply(&v, 3, &ev);
  LK_CHECK_EQ_INT(inc->tier, LINKAGE__V1__TIER__STREET);
  LK_CHECK_STR(inc->organisation_id, "yongquan");
  LK_CHECK_STR(gw_incident_deadline(inc, &at), "acknowledge");
  LK_CHECK_EQ_INT(at, 9000000);

  ev = acknowledged(id);
  gw_view_apply(&v, 4, &ev);
  LK_CHECK_EQ_INT(inc->state, LK_STATE_ACKNOWLEDGED);
  LK_CHECK_STR(gw_incident_deadline(inc, &at), "resolve");
  LK_CHECK_EQ_INT(at, 99000000);

  ev = dispatched(id, "pm-asia-bay", 1);
  gw_view_apply(&v, 5, &ev);
  LK_CHECK_EQ_INT(inc->state, LK_STATE_DISPATCHED);
  LK_CHECK_STR(inc->lead_unit, "pm-asia-bay");
  LK_CHECK_EQ_INT(inc->units_assigned, 1);

  /* The same position again (a replay overlapping the live stream) changes nothing. */
  LK_CHECK_EQ_INT(gw_view_apply(&v, 5, &ev), 0);
  LK_CHECK_EQ_INT(inc->units_assigned, 1);

  ev = closed(id);
  gw_view_apply(&v, 6, &ev);
  LK_CHECK_EQ_INT(inc->state, LK_STATE_CLOSED);
  LK_CHECK_EQ_INT(v.open, 0);
  LK_CHECK(gw_incident_deadline(inc, &at) == NULL);
  LK_CHECK_EQ_INT(inc->step_count, 6);
  /* CAP messages: reported, escalated, closed. */
  LK_CHECK_EQ_INT(inc->cap_count, 3);
  LK_CHECK_EQ_INT(inc->steps[0].type, LINKAGE__V1__EVENT_TYPE__REPORTED);
  LK_CHECK_CONTAINS(inc->steps[2].detail, "community -> street");
  LK_CHECK_STR(inc->steps[3].actor, "coordinator:alice");
  LK_CHECK_EQ_INT(v.position, 6);
  gw_view_free(&v);
}

LK_TEST(view_ignores_what_it_cannot_trust) {
  struct gw_view v;
  gw_view_init(&v, district());
  /* An event for an incident never reported. */
  Linkage__V1__Event ev = routed("inc-99999999999999999999", LINKAGE__V1__TIER__COMMUNITY, 1, 2);
  LK_CHECK_EQ_INT(gw_view_apply(&v, 1, &ev), 0);
  /* An event whose body does not match its type. */
  ev = reported("inc-00000000000000000002", "x");
  ev.type = LINKAGE__V1__EVENT_TYPE__CLOSED;
  LK_CHECK_EQ_INT(gw_view_apply(&v, 2, &ev), 0);
  LK_CHECK_EQ_INT(v.count, 1);
  LK_CHECK_EQ_INT(v.position, 2); /* the position still moves on */
  gw_view_free(&v);
}

LK_TEST(json_row_escapes_and_carries_the_contract_words) {
  struct gw_view v;
  gw_view_init(&v, district());
  const char *id = "inc-00000000000000000003";
  Linkage__V1__Event ev = reported(id, "\"quoted\" </script> \n\x01 end");
  gw_view_apply(&v, 1, &ev);
  ev = routed(id, LINKAGE__V1__TIER__COMMUNITY, 7000000, 70000000);
  gw_view_apply(&v, 2, &ev);
  struct gw_buf b;
  gw_buf_init(&b);
  gw_json_incident(&b, gw_view_get(&v, id), 1);
  LK_CHECK(!b.failed);
  LK_CHECK_CONTAINS(b.data, "\"state\":\"routed\"");
  LK_CHECK_CONTAINS(b.data, "\"severity\":\"III\"");
  LK_CHECK_CONTAINS(b.data, "\"tier\":\"community\"");
  LK_CHECK_CONTAINS(b.data, "\"category\":\"accident_disaster\"");
  LK_CHECK_CONTAINS(b.data, "\"deadline\":{\"kind\":\"acknowledge\",\"at\":7000}");
  LK_CHECK_CONTAINS(b.data, "\\\"quoted\\\" \\u003c/script> \\n\\u0001 end");
  LK_CHECK_CONTAINS(b.data, "\"timeline\":[{\"position\":1,");
  LK_CHECK(strstr(b.data, "</script>") == NULL);
  gw_buf_free(&b);
  gw_view_free(&v);
}

LK_TEST(xml_escaping_drops_what_xml_cannot_carry) {
  struct gw_buf b;
  gw_buf_init(&b);
  gw_buf_xml(&b, "a<b>&\"c'\x01\x1f\td");
  LK_CHECK_STR(b.data, "a&lt;b&gt;&amp;&quot;c&apos;\td");
  gw_buf_free(&b);
  char t[32];
  gw_time_format(1795798500510000LL, t);
  LK_CHECK_STR(t, "2026-11-27T16:55:00+00:00");
}

LK_TEST(routes_decide_handler_role_and_id) {
  struct gw_route r;
  LK_CHECK_EQ_INT(gw_route_parse("GET", "/", &r), 200);
  LK_CHECK_EQ_INT(r.kind, GW_R_STATIC);
  LK_CHECK_EQ_INT(r.need, GW_NEED_NONE);
  LK_CHECK_EQ_INT(gw_route_parse("GET", "/api/incidents", &r), 200);
  LK_CHECK_EQ_INT(r.need, GW_NEED_READ);
  LK_CHECK_EQ_INT(gw_route_parse("POST", "/api/incidents/inc-1/acknowledge", &r), 200);
  LK_CHECK_EQ_INT(r.kind, GW_R_ACTION);
  LK_CHECK_EQ_INT(r.need, GW_NEED_ACT);
  LK_CHECK_STR(r.id, "inc-1");
  LK_CHECK_STR(r.action, "acknowledge");
  LK_CHECK_EQ_INT(gw_route_parse("GET", "/api/incidents/inc-1/acknowledge", &r), 405);
  LK_CHECK_EQ_INT(gw_route_parse("POST", "/api/incidents/inc-1/explode", &r), 404);
  LK_CHECK_EQ_INT(gw_route_parse("GET", "/api/incidents/inc 1", &r), 404);
  LK_CHECK_EQ_INT(gw_route_parse("GET", "/api/incidents/", &r), 404);
  LK_CHECK_EQ_INT(gw_route_parse("DELETE", "/api/incidents", &r), 405);
  LK_CHECK_EQ_INT(gw_route_parse("GET", "/cap/inc-1.xml", &r), 200);
  LK_CHECK_EQ_INT(r.kind, GW_R_CAP);
  LK_CHECK_EQ_INT(gw_route_parse("GET", "/cap/inc-1.json", &r), 404);
  LK_CHECK_EQ_INT(gw_route_parse("GET", "/cap/index.atom", &r), 200);
  LK_CHECK_EQ_INT(r.kind, GW_R_CAP_ATOM);
  LK_CHECK_EQ_INT(gw_route_parse("POST", "/open311/v2/requests.json", &r), 200);
  LK_CHECK_EQ_INT(r.kind, GW_R_O311_POST);
  LK_CHECK_EQ_INT(r.need, GW_NEED_REPORT);
  LK_CHECK_EQ_INT(gw_route_parse("GET", "/open311/v2/requests/inc-1.xml", &r), 200);
  LK_CHECK_EQ_INT(r.kind, GW_R_O311_REQUEST);
  LK_CHECK_EQ_INT(r.xml, 1);
  LK_CHECK_EQ_INT(gw_route_parse("POST", "/api/planned-work/w1/lift", &r), 200);
  LK_CHECK_EQ_INT(r.kind, GW_R_WINDOW_LIFT);
  LK_CHECK_STR(r.id, "w1");
  LK_CHECK_EQ_INT(gw_route_parse("GET", "/../etc/passwd", &r), 404);
  LK_CHECK_EQ_INT(gw_route_parse("GET", "/www/app.js", &r), 404);
}

struct args {
  const char *k[8], *v[8];
};
static const char *args_get(void *ctx, const char *key) {
  struct args *a = ctx;
  for (int i = 0; i < 8 && a->k[i]; i++)
    if (strcmp(a->k[i], key) == 0) return a->v[i];
  return NULL;
}

LK_TEST(actions_become_router_commands) {
  struct gw_route r;
  struct gw_command c;
  char err[128];
  struct args a = {{"reason"}, {"too slow"}};
  gw_route_parse("POST", "/api/incidents/inc-7/escalate", &r);
  LK_CHECK_EQ_INT(gw_command_build(&r, args_get, &a, "alice", "gw-1", &c, err, sizeof err), LK_OK);
  LK_CHECK_EQ_INT(c.cmd.body_case, LINKAGE__V1__COMMAND__BODY_ESCALATE);
  LK_CHECK_STR(c.cmd.incident_id, "inc-7");
  LK_CHECK_STR(c.cmd.actor, "alice");
  LK_CHECK_STR(c.cmd.command_id, "gw-1");
  LK_CHECK_STR(c.cmd.escalate->reason, "too slow");

  /* The client's command id makes a retry the same command. */
  struct args b = {{"command_id", "reason"}, {"9f1c-retry", "done"}};
  gw_route_parse("POST", "/api/incidents/inc-7/close", &r);
  LK_CHECK_EQ_INT(gw_command_build(&r, args_get, &b, "alice", "gw-2", &c, err, sizeof err), LK_OK);
  LK_CHECK_STR(c.cmd.command_id, "9f1c-retry");
  LK_CHECK_STR(c.cmd.close->reason, "done");

  struct args none = {{0}, {0}};
  LK_CHECK_EQ_INT(gw_command_build(&r, args_get, &none, "alice", "gw-3", &c, err, sizeof err),
                  LK_EINVAL);
  LK_CHECK_CONTAINS(err, "reason");
  gw_route_parse("POST", "/api/incidents/inc-7/merge", &r);
  LK_CHECK_EQ_INT(gw_command_build(&r, args_get, &none, "alice", "gw-4", &c, err, sizeof err),
                  LK_EINVAL);

  struct args pw = {{"compound", "from", "to", "reason"},
                    {"spring-square", "1795798500000", "1795802100000", "water"}};
  gw_route_parse("POST", "/api/planned-work", &r);
  LK_CHECK_EQ_INT(gw_command_build(&r, args_get, &pw, "alice", "gw-5", &c, err, sizeof err), LK_OK);
  LK_CHECK_EQ_INT(c.cmd.body_case, LINKAGE__V1__COMMAND__BODY_DECLARE_PLANNED_WORK);
  LK_CHECK_EQ_INT(c.cmd.declare_planned_work->from_us, 1795798500000000LL);
  LK_CHECK_STR(c.cmd.declare_planned_work->window_id, "gw-5");
  struct args badtime = {{"compound", "from", "to"}, {"spring-square", "soon", "1"}};
  LK_CHECK_EQ_INT(gw_command_build(&r, args_get, &badtime, "alice", "gw-6", &c, err, sizeof err),
                  LK_EINVAL);

  Linkage__V1__CommandReply reply = LINKAGE__V1__COMMAND_REPLY__INIT;
  reply.status = LINKAGE__V1__COMMAND_REPLY__STATUS__REJECTED;
  reply.error = "unknown incident \"inc-7\"";
  LK_CHECK_EQ_INT(gw_command_http_status(&reply), 404);
  reply.error = "incident inc-7 is closed";
  LK_CHECK_EQ_INT(gw_command_http_status(&reply), 409);
  reply.error = "closing needs a reason";
  LK_CHECK_EQ_INT(gw_command_http_status(&reply), 400);
  reply.status = LINKAGE__V1__COMMAND_REPLY__STATUS__BUSY;
  LK_CHECK_EQ_INT(gw_command_http_status(&reply), 503);
  reply.status = LINKAGE__V1__COMMAND_REPLY__STATUS__OK;
  LK_CHECK_EQ_INT(gw_command_http_status(&reply), 200);
}

static Linkage__V1__CoordinatorNote note_body;
LK_TEST(a_full_timeline_still_keeps_every_cap_step) {
  struct gw_view v;
  gw_view_init(&v, district());
  const char *id = "inc-00000000000000000004";
  Linkage__V1__Event ev = reported(id, "x");
  gw_view_apply(&v, 1, &ev);
  uint64_t pos = 2;
  linkage__v1__coordinator_note__init(&note_body);
  note_body.text = "still there";
  for (int i = 0; i < GW_MAX_STEPS + 10; i++) {
    char eid[128];
    snprintf(eid, sizeof eid, "%s/coordinator_note/%d", id, i + 1);
    ev = base(id, LINKAGE__V1__EVENT_TYPE__COORDINATOR_NOTE, eid, 2000000 + i);
    ev.body_case = LINKAGE__V1__EVENT__BODY_COORDINATOR_NOTE;
    ev.coordinator_note = &note_body;
    gw_view_apply(&v, pos++, &ev);
  }
  ev = closed(id);
  gw_view_apply(&v, pos, &ev);
  const struct gw_incident *inc = gw_view_get(&v, id);
  LK_CHECK_EQ_INT(inc->step_count, GW_MAX_STEPS);
  LK_CHECK_EQ_INT(inc->state, LK_STATE_CLOSED);
  LK_CHECK_EQ_INT(inc->steps[GW_MAX_STEPS - 1].type, LINKAGE__V1__EVENT_TYPE__CLOSED);
  LK_CHECK_EQ_INT(inc->steps[GW_MAX_STEPS - 1].position, pos);
  LK_CHECK_EQ_INT(inc->steps[0].type, LINKAGE__V1__EVENT_TYPE__REPORTED);
  LK_CHECK_EQ_INT(inc->cap_count, 2);
  gw_view_free(&v);
}

int main(void) {
  return lk_test_run_all();
}
