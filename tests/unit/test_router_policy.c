/* The router's decisions with injected time: routing, deadlines at their
 * boundaries, escalation, overdue alarms, planned work, inhibition, merging
 * and the reporter threshold. No sockets, no database, no clock. */
#include <stdlib.h>
#include <string.h>

#include "linkage/error.h"
#include "lk_test.h"
#include "router/router.h"

#define MIN 60000000LL /* a minute in microseconds at time_scale 1 */
#define T0 1800000000000000LL

/* A small district shaped like the demo: one street, two communities, three compounds. */
static struct lk_org communities[] = {
    {.id = "lijinggang", .parent_id = "yongquan"},
    {.id = "jiangpu-road", .parent_id = "yongquan"},
};
static struct lk_org streets[] = {{.id = "yongquan", .parent_id = "wenjiang"}};
static struct lk_compound compounds[] = {
    {.id = "lijinggang", .community_id = "lijinggang", .mode = LK_MODE_ESTABLISHED_COMMUNITY},
    {.id = "zhouji-asia-bay", .community_id = "jiangpu-road", .mode = LK_MODE_SPECIAL_COMMITTEE},
    {.id = "zhouji-yinhai-bay", .community_id = "jiangpu-road", .mode = LK_MODE_TRADITIONAL},
};
static struct lk_district district;
static struct lk_plan plans[2];

static void setup_district(void) {
  memset(&district, 0, sizeof district);
  district.district.id = "wenjiang";
  district.streets = streets;
  district.street_count = 1;
  district.communities = communities;
  district.community_count = 2;
  district.compounds = compounds;
  district.compound_count = 3;
  memset(plans, 0, sizeof plans);
  /* latent_hazard: every tier, deadlines grow shorter with severity and longer with tier. */
  plans[0].category = LINKAGE__V1__CATEGORY__LATENT_HAZARD;
  plans[0].min_tier = LINKAGE__V1__TIER__COMPOUND;
  /* accident_disaster / gas_leak: never below community. */
  plans[1].category = LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER;
  plans[1].kind = "gas_leak";
  plans[1].min_tier = LINKAGE__V1__TIER__COMMUNITY;
  for (int p = 0; p < 2; p++)
    for (int s = 1; s < 5; s++)
      for (int t = 1; t < 5; t++)
        plans[p].deadlines[s][t] = (struct lk_plan_deadline){1, 10 * s + t, 100 * s + t};
}

static struct router_policy policy(void) {
  return (struct router_policy){.time_scale = 1,
                                .merge_window_us = 30 * MIN,
                                .merge_distance_m = 50,
                                .reporter_threshold = 3,
                                .reporter_window_us = 10 * MIN,
                                .retry_us = 1000000};
}

static void init(struct router_state *s) {
  setup_district();
  struct router_policy p = policy();
  LK_CHECK_EQ_INT(router_state_init(s, &district, plans, 2, &p), LK_OK);
}

/* Applies a `reported` event as the stream would. */
static uint32_t report(struct router_state *s, uint64_t pos, const char *id, const char *device,
                       const char *compound, const char *building, Linkage__V1__Category cat,
                       const char *kind, Linkage__V1__Severity sev, int64_t at) {
  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
  Linkage__V1__Reported rep = LINKAGE__V1__REPORTED__INIT;
  Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
  loc.compound_id = (char *)compound;
  loc.building = (char *)building;
  r.device_id = (char *)device;
  r.sequence = pos;
  r.category = cat;
  r.kind = (char *)kind;
  r.severity = sev;
  r.location = &loc;
  rep.report = &r;
  ev.event_id = "x";
  ev.incident_id = (char *)id;
  ev.type = LINKAGE__V1__EVENT_TYPE__REPORTED;
  ev.at_us = at;
  ev.body_case = LINKAGE__V1__EVENT__BODY_REPORTED;
  ev.reported = &rep;
  return router_state_apply(s, pos, &ev);
}

/* Commits a decision as the ledger would, and folds it back. */
static void commit(struct router_state *s, uint64_t pos, const struct router_decision *d,
                   int64_t at) {
  struct router_event_storage st;
  Linkage__V1__Event ev;
  router_event_build(d, "svc:router", at, &ev, &st);
  router_state_apply(s, pos, &ev);
}

static void simple_event(struct router_state *s, uint64_t pos, const char *id,
                         Linkage__V1__EventType type, int64_t at) {
  struct router_decision d;
  memset(&d, 0, sizeof d);
  d.type = type;
  strcpy(d.incident_id, id);
  strcpy(d.event_id, "e");
  commit(s, pos, &d, at);
}

LK_TEST(severity_decides_the_starting_tier) {
  struct router_state s;
  struct router_decision d;
  init(&s);
  const char *org[5] = {NULL, "zhouji-yinhai-bay", "jiangpu-road", "yongquan", "wenjiang"};
  for (int sev = 1; sev <= 4; sev++) {
    char id[16];
    snprintf(id, sizeof id, "inc-%d", sev);
    uint32_t slot =
        report(&s, (uint64_t)sev, id, id, "zhouji-yinhai-bay", id,
               LINKAGE__V1__CATEGORY__LATENT_HAZARD, "crack", (Linkage__V1__Severity)sev, T0);
    LK_CHECK(router_decide_new(&s, slot, T0, &d));
    LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__ROUTED);
    LK_CHECK_EQ_INT(d.to_tier, 5 - sev); /* I -> district(4) ... IV -> compound(1) */
    LK_CHECK_STR(d.organisation, org[5 - sev]);
    LK_CHECK_EQ_INT(d.ack_by_us, T0 + (10 * sev + (5 - sev)) * MIN);
    LK_CHECK_EQ_INT(d.resolve_by_us, T0 + (100 * sev + (5 - sev)) * MIN);
    char want[64];
    snprintf(want, sizeof want, "%s/routed", id);
    LK_CHECK_STR(d.event_id, want);
  }
  router_state_close(&s);
}

LK_TEST(plan_floor_raises_the_tier) {
  struct router_state s;
  struct router_decision d;
  init(&s);
  uint32_t gas =
      report(&s, 1, "inc-gas", "d1", "lijinggang", "1", LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER,
             "gas_leak", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0);
  LK_CHECK(router_decide_new(&s, gas, T0, &d));
  LK_CHECK_EQ_INT(d.to_tier, LINKAGE__V1__TIER__COMMUNITY);
  LK_CHECK_STR(d.organisation, "lijinggang");
  router_state_close(&s);
}

LK_TEST(deadline_boundaries_and_the_escalation_chain) {
  struct router_state s;
  struct router_decision d;
  init(&s);
  uint32_t slot =
      report(&s, 1, "inc-a", "d1", "zhouji-yinhai-bay", "3", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "crack", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0);
  LK_CHECK(router_decide_new(&s, slot, T0, &d));
  commit(&s, 2, &d, T0);
  int64_t ack_by = T0 + 41 * MIN;
  const struct lk_deadline *top = lk_heap_peek(&s.deadlines);
  LK_CHECK(top && top->at_us == ack_by && top->kind == ROUTER_DEADLINE_ACKNOWLEDGE);

  /* One microsecond early: nothing to emit, look again exactly at the deadline. */
  struct lk_deadline early = *top;
  LK_CHECK(!router_decide_deadline(&s, &early, ack_by - 1, &d));
  LK_CHECK_EQ_INT(d.recheck_us, ack_by);
  /* At the deadline and one microsecond after: escalate to community, new deadlines from the
   * missed deadline (not from when we noticed). */
  LK_CHECK(router_decide_deadline(&s, &early, ack_by, &d));
  LK_CHECK(router_decide_deadline(&s, &early, ack_by + 1, &d));
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__ESCALATED);
  LK_CHECK_EQ_INT(d.from_tier, LINKAGE__V1__TIER__COMPOUND);
  LK_CHECK_EQ_INT(d.to_tier, LINKAGE__V1__TIER__COMMUNITY);
  LK_CHECK_STR(d.organisation, "jiangpu-road");
  LK_CHECK_STR(d.event_id, "inc-a/escalated/1");
  LK_CHECK_EQ_INT(d.ack_by_us, ack_by + 42 * MIN);
  struct lk_deadline popped;
  lk_heap_pop(&s.deadlines, &popped);
  router_state_fired(&s, &popped);
  commit(&s, 3, &d, ack_by + 1);
  LK_CHECK_EQ_INT(s.incidents[slot].tier, LINKAGE__V1__TIER__COMMUNITY);

  /* Community deadline missed: street. Then district. Then an overdue alarm, once. */
  int64_t t = ack_by + 42 * MIN;
  top = lk_heap_peek(&s.deadlines);
  LK_CHECK(top && top->at_us == t);
  LK_CHECK(router_decide_deadline(&s, top, t, &d));
  LK_CHECK_EQ_INT(d.to_tier, LINKAGE__V1__TIER__STREET);
  LK_CHECK_STR(d.event_id, "inc-a/escalated/2");
  lk_heap_pop(&s.deadlines, &popped);
  router_state_fired(&s, &popped);
  commit(&s, 4, &d, t);
  t += 43 * MIN;
  top = lk_heap_peek(&s.deadlines);
  LK_CHECK(router_decide_deadline(&s, top, t, &d));
  LK_CHECK_EQ_INT(d.to_tier, LINKAGE__V1__TIER__DISTRICT);
  LK_CHECK_STR(d.organisation, "wenjiang");
  lk_heap_pop(&s.deadlines, &popped);
  router_state_fired(&s, &popped);
  commit(&s, 5, &d, t);
  t += 44 * MIN;
  top = lk_heap_peek(&s.deadlines);
  LK_CHECK(top && top->at_us == t);
  LK_CHECK(router_decide_deadline(&s, top, t, &d));
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__OVERDUE);
  LK_CHECK_STR(d.deadline, "acknowledge");
  LK_CHECK_EQ_INT(d.due_us, t);
  lk_heap_pop(&s.deadlines, &popped);
  router_state_fired(&s, &popped);
  commit(&s, 6, &d, t);
  /* The same deadline seen again (a restart replays it) raises nothing more. */
  LK_CHECK(!router_decide_deadline(&s, &popped, t + 1, &d));
  router_state_close(&s);
}

LK_TEST(acknowledging_stops_the_acknowledge_deadline) {
  struct router_state s;
  struct router_decision d;
  init(&s);
  uint32_t slot =
      report(&s, 1, "inc-a", "d1", "zhouji-yinhai-bay", "3", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "crack", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0);
  LK_CHECK(router_decide_new(&s, slot, T0, &d));
  commit(&s, 2, &d, T0);
  LK_CHECK_EQ_INT(s.deadlines.count, 2);
  simple_event(&s, 3, "inc-a", LINKAGE__V1__EVENT_TYPE__ACKNOWLEDGED, T0 + MIN);
  LK_CHECK_EQ_INT(s.deadlines.count, 1);
  const struct lk_deadline *top = lk_heap_peek(&s.deadlines);
  LK_CHECK(top && top->kind == ROUTER_DEADLINE_RESOLVE);
  /* A stale acknowledge deadline (from before the ack) decides nothing. */
  struct lk_deadline stale = {
      .at_us = T0 + 41 * MIN, .owner = slot, .kind = ROUTER_DEADLINE_ACKNOWLEDGE};
  LK_CHECK(!router_decide_deadline(&s, &stale, T0 + 50 * MIN, &d));
  simple_event(&s, 4, "inc-a", LINKAGE__V1__EVENT_TYPE__CLOSED, T0 + 2 * MIN);
  LK_CHECK_EQ_INT(s.deadlines.count, 0);
  router_state_close(&s);
}

static void declare_window(struct router_state *s, uint64_t pos, const char *id,
                           const char *compound, const char *building, const char *kind,
                           int64_t from, int64_t to) {
  struct router_decision d;
  memset(&d, 0, sizeof d);
  d.type = LINKAGE__V1__EVENT_TYPE__PLANNED_WORK_DECLARED;
  snprintf(d.incident_id, sizeof d.incident_id, "plan-%s", id);
  strcpy(d.event_id, "p");
  strcpy(d.planned.window_id, id);
  strcpy(d.planned.compound_id, compound);
  strcpy(d.planned.building, building);
  strcpy(d.planned.kind, kind);
  d.planned.from_us = from;
  d.planned.to_us = to;
  commit(s, pos, &d, from);
}

LK_TEST(planned_work_records_but_never_escalates) {
  struct router_state s;
  struct router_decision d;
  init(&s);
  declare_window(&s, 1, "water-0601", "lijinggang", "", "no_water", T0, T0 + 60 * MIN);
  /* Inside the window, matching kind: routed with suppressed_by, and no deadline armed. */
  uint32_t in =
      report(&s, 2, "inc-in", "d1", "lijinggang", "7", LINKAGE__V1__CATEGORY__PROPERTY_SERVICE,
             "no_water", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + 60 * MIN - 1);
  LK_CHECK(router_decide_new(&s, in, T0, &d));
  LK_CHECK_STR(d.by, "plan-water-0601");
  commit(&s, 3, &d, T0);
  LK_CHECK_EQ_INT(s.deadlines.count, 0);
  /* At the window's end (exclusive), another kind, or another compound: not covered. */
  uint32_t after =
      report(&s, 4, "inc-after", "d2", "lijinggang", "7", LINKAGE__V1__CATEGORY__PROPERTY_SERVICE,
             "no_water", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + 60 * MIN);
  LK_CHECK(router_window_match(&s, &s.incidents[after]) == NULL);
  uint32_t other =
      report(&s, 5, "inc-other", "d3", "lijinggang", "7", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "crack", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + MIN);
  LK_CHECK(router_window_match(&s, &s.incidents[other]) == NULL);
  uint32_t elsewhere = report(&s, 6, "inc-else", "d4", "zhouji-asia-bay", "7",
                              LINKAGE__V1__CATEGORY__PROPERTY_SERVICE, "no_water",
                              LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + MIN);
  LK_CHECK(router_window_match(&s, &s.incidents[elsewhere]) == NULL);
  router_state_close(&s);
}

LK_TEST(a_street_incident_inhibits_lower_ones_of_its_kind) {
  struct router_state s;
  struct router_decision d;
  init(&s);
  plans[0].category = LINKAGE__V1__CATEGORY__NATURAL_DISASTER; /* reuse the all-tier plan */
  uint32_t high =
      report(&s, 1, "inc-high", "d1", "lijinggang", "1", LINKAGE__V1__CATEGORY__NATURAL_DISASTER,
             "flooding", LINKAGE__V1__SEVERITY__SEVERITY_II, T0);
  LK_CHECK(router_decide_new(&s, high, T0, &d));
  LK_CHECK_EQ_INT(d.to_tier, LINKAGE__V1__TIER__STREET);
  commit(&s, 2, &d, T0);
  uint32_t low = report(&s, 3, "inc-low", "d2", "zhouji-asia-bay", "9",
                        LINKAGE__V1__CATEGORY__NATURAL_DISASTER, "flooding",
                        LINKAGE__V1__SEVERITY__SEVERITY_IV, T0);
  LK_CHECK(router_decide_new(&s, low, T0, &d));
  commit(&s, 4, &d, T0);
  /* Another compound, and the plan does not call flooding an area hazard: another event. */
  LK_CHECK_EQ_INT(router_inhibitor(&s, low), 0);
  /* An area hazard: the street's flood response covers every compound of the street. */
  plans[0].area_hazard = 1;
  LK_CHECK_EQ_INT(router_inhibitor(&s, low), high);
  struct lk_deadline dl = {
      .at_us = s.incidents[low].ack_by_us, .owner = low, .kind = ROUTER_DEADLINE_ACKNOWLEDGE};
  LK_CHECK(router_decide_deadline(&s, &dl, dl.at_us, &d));
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__SUPPRESSED);
  LK_CHECK_STR(d.by, "inc-high");
  LK_CHECK_CONTAINS(d.reason, "in its area");
  LK_CHECK(d.recheck_us > dl.at_us);
  commit(&s, 5, &d, dl.at_us);
  /* Logged once: the next look only schedules another look. */
  LK_CHECK(!router_decide_deadline(&s, &dl, dl.at_us + 1, &d));
  LK_CHECK(d.recheck_us > dl.at_us);
  /* Once the higher incident closes, the lower one escalates. */
  simple_event(&s, 6, "inc-high", LINKAGE__V1__EVENT_TYPE__CLOSED, T0 + MIN);
  LK_CHECK_EQ_INT(router_inhibitor(&s, low), 0);
  LK_CHECK(router_decide_deadline(&s, &dl, dl.at_us + 2, &d));
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__ESCALATED);
  plans[0].category = LINKAGE__V1__CATEGORY__LATENT_HAZARD;
  plans[0].area_hazard = 0;
  router_state_close(&s);
}

LK_TEST(inhibition_holds_back_only_what_may_be_the_same_event) {
  struct router_state s;
  struct router_decision d;
  init(&s);
  /* A gas leak at street tier in building 1 of Zhouji Yinhai Bay. */
  uint32_t high = report(&s, 1, "inc-high", "d1", "zhouji-yinhai-bay", "1",
                         LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "gas_leak",
                         LINKAGE__V1__SEVERITY__SEVERITY_II, T0);
  LK_CHECK(router_decide_new(&s, high, T0, &d));
  commit(&s, 2, &d, T0);
  LK_CHECK_EQ_INT(s.incidents[high].tier, LINKAGE__V1__TIER__STREET);
  /* Another gas leak in the same building: the same event, held back. */
  uint32_t same = report(&s, 3, "inc-same", "d2", "zhouji-yinhai-bay", "1",
                         LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "gas_leak",
                         LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + 40 * MIN);
  LK_CHECK(router_decide_new(&s, same, T0 + 40 * MIN, &d));
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__ROUTED); /* out of the merge window */
  commit(&s, 4, &d, T0 + 40 * MIN);
  LK_CHECK_EQ_INT(router_inhibitor(&s, same), high);
  /* A gas leak in another compound of the same street: a separate leak, never held back. */
  uint32_t other = report(&s, 5, "inc-other", "d3", "zhouji-asia-bay", "1",
                          LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "gas_leak",
                          LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + MIN);
  LK_CHECK(router_decide_new(&s, other, T0 + MIN, &d));
  commit(&s, 6, &d, T0 + MIN);
  LK_CHECK_EQ_INT(router_inhibitor(&s, other), 0);
  /* The same building number in another compound is another building. */
  LK_CHECK_EQ_INT(s.incidents[other].compound == s.incidents[high].compound, 0);
  /* Reports without a kind are never the same event as anything. */
  uint32_t k1 =
      report(&s, 7, "inc-k1", "d4", "lijinggang", "2", LINKAGE__V1__CATEGORY__SOCIAL_SAFETY, "",
             LINKAGE__V1__SEVERITY__SEVERITY_II, T0);
  LK_CHECK(router_decide_new(&s, k1, T0, &d));
  commit(&s, 8, &d, T0);
  uint32_t k2 =
      report(&s, 9, "inc-k2", "d5", "lijinggang", "2", LINKAGE__V1__CATEGORY__SOCIAL_SAFETY, "",
             LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + 40 * MIN);
  LK_CHECK(router_decide_new(&s, k2, T0 + 40 * MIN, &d));
  commit(&s, 10, &d, T0 + 40 * MIN);
  LK_CHECK_EQ_INT(router_inhibitor(&s, k2), 0);
  /* The same kind word under another category is another event. */
  uint32_t c2 =
      report(&s, 11, "inc-c2", "d6", "zhouji-yinhai-bay", "1", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "gas_leak", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + 40 * MIN);
  LK_CHECK(router_decide_new(&s, c2, T0 + 40 * MIN, &d));
  commit(&s, 12, &d, T0 + 40 * MIN);
  LK_CHECK_EQ_INT(router_inhibitor(&s, c2), 0);
  router_state_close(&s);
}

LK_TEST(merge_window_and_the_reporter_threshold) {
  struct router_state s;
  struct router_decision d;
  init(&s);
  uint32_t first =
      report(&s, 1, "inc-1", "dev-a", "zhouji-asia-bay", "5", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "flooding", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0);
  LK_CHECK(router_decide_new(&s, first, T0, &d));
  commit(&s, 2, &d, T0);
  /* Same kind, same building, inside the window: merge. */
  uint32_t second =
      report(&s, 3, "inc-2", "dev-b", "zhouji-asia-bay", "5", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "flooding", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + 30 * MIN);
  LK_CHECK(router_decide_new(&s, second, T0, &d));
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__MERGED);
  LK_CHECK_STR(d.by, "inc-1");
  LK_CHECK_STR(d.event_id, "inc-2/merged");
  commit(&s, 4, &d, T0 + 30 * MIN);
  /* One microsecond past the window, another building, another kind: routed on their own. */
  uint32_t late =
      report(&s, 5, "inc-3", "dev-c", "zhouji-asia-bay", "5", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "flooding", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + 30 * MIN + 1);
  LK_CHECK(router_decide_new(&s, late, T0, &d));
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__ROUTED);
  uint32_t other_b =
      report(&s, 6, "inc-4", "dev-d", "zhouji-asia-bay", "6", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "flooding", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + MIN);
  LK_CHECK(router_decide_new(&s, other_b, T0, &d));
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__ROUTED);
  /* Threshold 3 distinct reporters in 10 minutes: dev-a (T0) is outside the window at T0+30m,
   * dev-b counts; add dev-e twice (same device counts once) and dev-f. */
  LK_CHECK(!router_decide_reporters(&s, first, T0 + 30 * MIN, &d));
  uint32_t e1 =
      report(&s, 7, "inc-5", "dev-e", "zhouji-asia-bay", "5", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "flooding", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + 25 * MIN);
  LK_CHECK(router_decide_new(&s, e1, T0, &d));
  commit(&s, 8, &d, T0 + 25 * MIN);
  uint32_t e2 =
      report(&s, 9, "inc-6", "dev-e", "zhouji-asia-bay", "5", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "flooding", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + 26 * MIN);
  LK_CHECK(router_decide_new(&s, e2, T0, &d));
  commit(&s, 10, &d, T0 + 26 * MIN);
  LK_CHECK(!router_decide_reporters(&s, first, T0 + 30 * MIN, &d));
  uint32_t f =
      report(&s, 11, "inc-7", "dev-f", "zhouji-asia-bay", "5", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "flooding", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + 27 * MIN);
  LK_CHECK(router_decide_new(&s, f, T0, &d));
  commit(&s, 12, &d, T0 + 27 * MIN);
  LK_CHECK(router_decide_reporters(&s, first, T0 + 30 * MIN, &d));
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__SEVERITY_CHANGED);
  LK_CHECK_EQ_INT(d.to_severity, LINKAGE__V1__SEVERITY__SEVERITY_III);
  LK_CHECK_STR(d.event_id, "inc-1/severity_changed/1");
  commit(&s, 13, &d, T0 + 30 * MIN);
  /* Raised severity starts at community: the incident is escalated there. */
  LK_CHECK(router_decide_severity(&s, first, T0 + 30 * MIN, &d));
  LK_CHECK_EQ_INT(d.to_tier, LINKAGE__V1__TIER__COMMUNITY);
  LK_CHECK_CONTAINS(d.reason, "severity raised to III");
  /* The same reporters do not raise it twice. */
  LK_CHECK(!router_decide_reporters(&s, first, T0 + 31 * MIN, &d));
  router_state_close(&s);
}

LK_TEST(commands_checked_against_the_state) {
  struct router_state s;
  struct router_decision d;
  char err[256];
  init(&s);
  uint32_t slot =
      report(&s, 1, "inc-a", "d1", "lijinggang", "1", LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER,
             "gas_leak", LINKAGE__V1__SEVERITY__SEVERITY_III, T0);
  LK_CHECK(router_decide_new(&s, slot, T0, &d));
  commit(&s, 2, &d, T0);
  Linkage__V1__Command cmd = LINKAGE__V1__COMMAND__INIT;
  Linkage__V1__DeEscalateCommand de = LINKAGE__V1__DE_ESCALATE_COMMAND__INIT;
  Linkage__V1__EscalateCommand up = LINKAGE__V1__ESCALATE_COMMAND__INIT;
  Linkage__V1__CloseCommand close = LINKAGE__V1__CLOSE_COMMAND__INIT;
  cmd.command_id = "c1";
  cmd.actor = "wang";
  cmd.incident_id = "inc-a";
  cmd.body_case = LINKAGE__V1__COMMAND__BODY_DE_ESCALATE;
  cmd.de_escalate = &de;
  LK_CHECK_EQ_INT(router_decide_command(&s, &cmd, T0, &d, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "may not go below community tier");
  cmd.body_case = LINKAGE__V1__COMMAND__BODY_ESCALATE;
  cmd.escalate = &up;
  up.reason = "smell spreading";
  LK_CHECK_EQ_INT(router_decide_command(&s, &cmd, T0 + MIN, &d, err, sizeof err), LK_OK);
  LK_CHECK_EQ_INT(d.to_tier, LINKAGE__V1__TIER__STREET);
  LK_CHECK_STR(d.event_id, "inc-a/escalated/cmd-c1");
  LK_CHECK_CONTAINS(d.reason, "coordinator wang: smell spreading");
  LK_CHECK_EQ_INT(d.ack_by_us, T0 + MIN + 33 * MIN);
  cmd.incident_id = "inc-nope";
  LK_CHECK_EQ_INT(router_decide_command(&s, &cmd, T0, &d, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "unknown incident");
  cmd.incident_id = "inc-a";
  cmd.body_case = LINKAGE__V1__COMMAND__BODY_CLOSE;
  cmd.close = &close;
  close.reason = "";
  LK_CHECK_EQ_INT(router_decide_command(&s, &cmd, T0, &d, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "needs a reason");
  close.reason = "valve replaced";
  LK_CHECK_EQ_INT(router_decide_command(&s, &cmd, T0, &d, err, sizeof err), LK_OK);
  commit(&s, 3, &d, T0);
  LK_CHECK_EQ_INT(router_decide_command(&s, &cmd, T0, &d, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "is closed");
  cmd.command_id = "bad id";
  LK_CHECK_EQ_INT(router_decide_command(&s, &cmd, T0, &d, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "command_id");
  router_state_close(&s);
}

LK_TEST(restart_fires_each_passed_deadline_once_and_none_early) {
  /* Fold 10k routed incidents, then "restart": a fresh state folds the same events, and
   * popping everything due at a later time yields each passed deadline exactly once. */
  struct router_state s;
  struct router_decision d;
  init(&s);
  enum { N = 10000 };
  for (int i = 0; i < N; i++) {
    char id[32];
    snprintf(id, sizeof id, "inc-%d", i);
    uint32_t slot = report(&s, (uint64_t)(2 * i + 1), id, id, "zhouji-yinhai-bay", "",
                           LINKAGE__V1__CATEGORY__LATENT_HAZARD, "crack",
                           LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + i * 1000000LL);
    if (router_decide_new(&s, slot, T0, &d)) commit(&s, (uint64_t)(2 * i + 2), &d, T0);
  }
  int64_t now = T0 + 41 * MIN + (N / 2) * 1000000LL; /* half of the acknowledge deadlines passed */
  int fired = 0, early = 0;
  struct lk_deadline dl;
  const struct lk_deadline *top;
  while ((top = lk_heap_peek(&s.deadlines)) && top->at_us <= now) {
    lk_heap_pop(&s.deadlines, &dl);
    router_state_fired(&s, &dl);
    if (router_decide_deadline(&s, &dl, now, &d)) {
      fired++;
      if (d.due_us > now) early++;
    }
  }
  LK_CHECK_EQ_INT(fired, N / 2 + 1);
  LK_CHECK_EQ_INT(early, 0);
  router_state_close(&s);
}

LK_TEST(a_flood_of_merging_reports_keeps_the_bucket_short) {
  /* 5000 residents report the same flooded car park: all join the first incident, and the
   * merge search stays O(1) per report because merged incidents leave the bucket. */
  struct router_state s;
  struct router_decision d;
  init(&s);
  s.policy.reporter_threshold = 0;
  int merged = 0;
  uint64_t pos = 1;
  for (int i = 0; i < 5000; i++) {
    char id[32], dev[32];
    snprintf(id, sizeof id, "inc-f%d", i);
    snprintf(dev, sizeof dev, "dev-%d", i);
    uint32_t slot =
        report(&s, pos++, id, dev, "zhouji-asia-bay", "B2", LINKAGE__V1__CATEGORY__NATURAL_DISASTER,
               "flooding", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + i * 1000);
    if (!router_decide_new(&s, slot, T0, &d)) continue;
    if (d.type == LINKAGE__V1__EVENT_TYPE__MERGED && strcmp(d.by, "inc-f0") == 0) merged++;
    commit(&s, pos++, &d, T0 + i * 1000);
  }
  LK_CHECK_EQ_INT(merged, 4999);
  char key[LK_ID_MAX + 32];
  uint64_t head = 0;
  router_bucket_key(&s.incidents[1], key, sizeof key);
  LK_CHECK(lk_map_get(&s.buckets, key, &head));
  int length = 0;
  for (uint32_t i = (uint32_t)head; i; i = s.incidents[i].next_in_bucket)
    length++;
  LK_CHECK_EQ_INT(length, 1);
  LK_CHECK_EQ_INT(s.incidents[1].reporter_count, 5000);
  router_state_close(&s);
}

/* The merge search as the router defines it, walked in full every time: the reference the
 * remembered search must agree with. */
static const char *reference_target(const struct router_state *s, uint32_t slot) {
  const struct router_incident *inc = &s->incidents[slot], *target = NULL;
  char key[LK_ID_MAX + 32];
  uint64_t head = 0;
  router_bucket_key(inc, key, sizeof key);
  lk_map_get(&s->buckets, key, &head);
  for (uint32_t i = (uint32_t)head; i; i = s->incidents[i].next_in_bucket) {
    const struct router_incident *o = &s->incidents[i];
    int open_then = !o->ended_position || o->ended_position > inc->reported_position;
    if (i == slot || o->reported_at_us > inc->reported_at_us) continue;
    if (inc->reported_at_us - o->reported_at_us > s->policy.merge_window_us) break;
    if (!open_then || o->category != inc->category) continue;
    int near = o->building && inc->building && strcmp(o->building, inc->building) == 0;
    if (near) target = o;
  }
  return target ? target->id : NULL;
}

LK_TEST(the_remembered_merge_search_agrees_with_the_full_one) {
  /* Floods from a few buildings, decisions committed late and out of order, incidents closed,
   * report times that now and then go back (two intakes' clocks): every decision must name the
   * target the full search names. */
  struct router_state s;
  struct router_decision d;
  init(&s);
  s.policy.reporter_threshold = 0;
  static const char *const buildings[] = {"B1", "B2", "B3"};
  static const char *const kinds[] = {"flooding", "gas_leak"};
  uint64_t pos = 1;
  int64_t t = T0;
  unsigned seed = 12345;
  struct router_decision pending[64];
  int npending = 0, agreed = 0, disagreed = 0, merges = 0;
  for (int i = 0; i < 4000; i++) {
    seed = seed * 1103515245u + 12345u;
    unsigned r = seed >> 8;
    t += (r % 7 == 0) ? -(int64_t)(r % 5) * MIN : (int64_t)(r % 90) * 1000000;
    char id[32], dev[32];
    snprintf(id, sizeof id, "inc-m%d", i);
    snprintf(dev, sizeof dev, "dev-m%d", i);
    uint32_t slot = report(&s, pos++, id, dev, "zhouji-asia-bay", buildings[r % 3],
                           LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, kinds[(r >> 3) % 2],
                           LINKAGE__V1__SEVERITY__SEVERITY_IV, t);
    const char *want = reference_target(&s, slot);
    if (!router_decide_new(&s, slot, t, &d)) continue;
    const char *got = d.type == LINKAGE__V1__EVENT_TYPE__MERGED ? d.by : NULL;
    if ((want == NULL) == (got == NULL) && (!want || strcmp(want, got) == 0))
      agreed++;
    else
      disagreed++;
    merges += got != NULL;
    s.incidents[slot].flags |= RI_INFLIGHT; /* as the shell marks a decision in flight */
    pending[npending++] = d;
    /* Commit some decisions late, oldest or newest first. */
    while (npending && (npending == 64 || (r >> 5) % 4 == 0)) {
      int k = ((r >> 9) & 1) ? npending - 1 : 0;
      s.incidents[pending[k].incident].flags &= ~(uint32_t)RI_INFLIGHT;
      commit(&s, pos++, &pending[k], t);
      memmove(&pending[k], &pending[k + 1], (size_t)(npending - k - 1) * sizeof pending[0]);
      npending--;
      r >>= 1;
    }
    if (r % 23 == 0) simple_event(&s, pos++, id, LINKAGE__V1__EVENT_TYPE__CLOSED, t);
  }
  LK_CHECK_EQ_INT(disagreed, 0);
  LK_CHECK(agreed > 3000);
  LK_CHECK(merges > 1000);
  router_state_close(&s);
}

LK_TEST(a_late_decision_merges_as_the_live_one_would_have) {
  /* B is open when A is reported, and closed after: a router deciding A only now (after a
   * restart) must still merge it into B, as the live router did, not route it. */
  struct router_state s;
  struct router_decision d;
  init(&s);
  uint32_t b =
      report(&s, 1, "inc-b", "dev-b", "lijinggang", "3", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "crack", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0);
  LK_CHECK(router_decide_new(&s, b, T0, &d));
  commit(&s, 2, &d, T0);
  uint32_t a =
      report(&s, 3, "inc-a", "dev-a", "lijinggang", "3", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "crack", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + MIN);
  simple_event(&s, 4, "inc-b", LINKAGE__V1__EVENT_TYPE__CLOSED, T0 + 2 * MIN);
  LK_CHECK(router_decide_new(&s, a, T0 + 3 * MIN, &d));
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__MERGED);
  LK_CHECK_STR(d.by, "inc-b");
  commit(&s, 5, &d, T0 + 3 * MIN);
  /* Whereas a report after B was closed is routed on its own (A, merged, is no target). */
  uint32_t c =
      report(&s, 6, "inc-c", "dev-c", "lijinggang", "3", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "crack", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0 + 4 * MIN);
  LK_CHECK(router_decide_new(&s, c, T0 + 4 * MIN, &d));
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__ROUTED);
  router_state_close(&s);
}

static void no_unit(struct router_state *s, uint64_t pos, const char *id, const char *event_id,
                    Linkage__V1__Tier tier, unsigned tried, int64_t at) {
  Linkage__V1__NoUnitAvailable nua = LINKAGE__V1__NO_UNIT_AVAILABLE__INIT;
  Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
  nua.role = "fire_brigade";
  nua.tier = tier;
  nua.tried = tried;
  nua.lead = !strstr(event_id, "/grid_worker/");
  ev.event_id = (char *)event_id;
  ev.incident_id = (char *)id;
  ev.type = LINKAGE__V1__EVENT_TYPE__NO_UNIT_AVAILABLE;
  ev.at_us = at;
  ev.actor = "svc:dispatch";
  ev.body_case = LINKAGE__V1__EVENT__BODY_NO_UNIT_AVAILABLE;
  ev.no_unit_available = &nua;
  router_state_apply(s, pos, &ev);
}

LK_TEST(no_unit_available_escalates_at_its_time_with_what_happened) {
  struct router_state s;
  struct router_decision d;
  init(&s);
  uint32_t slot =
      report(&s, 1, "inc-a", "d1", "zhouji-yinhai-bay", "3", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
             "crack", LINKAGE__V1__SEVERITY__SEVERITY_IV, T0);
  LK_CHECK(router_decide_new(&s, slot, T0, &d));
  commit(&s, 2, &d, T0);
  int64_t ack_by = s.incidents[slot].ack_by_us;
  /* Even with a coordinator's acknowledgement in: a role nobody can fill here escalates. */
  simple_event(&s, 3, "inc-a", LINKAGE__V1__EVENT_TYPE__ACKNOWLEDGED, T0 + MIN);
  /* A finding about another tier says nothing about this one. */
  no_unit(&s, 4, "inc-a", "inc-a/no_unit_available/fire_brigade/street", LINKAGE__V1__TIER__STREET,
          1, T0 + 2 * MIN);
  LK_CHECK_EQ_INT(s.deadlines.count, 1); /* the resolve deadline only */
  /* Nor one of an old ledger whose id names another tier. */
  no_unit(&s, 5, "inc-a", "inc-a/no_unit_available/fire_brigade/street", 0, 1, T0 + 2 * MIN);
  LK_CHECK_EQ_INT(s.deadlines.count, 1);
  /* A role that does not lead the incident is shown as missing; it escalates nothing. */
  no_unit(&s, 6, "inc-a", "inc-a/no_unit_available/grid_worker/compound",
          LINKAGE__V1__TIER__COMPOUND, 0, T0 + 3 * MIN);
  LK_CHECK_EQ_INT(s.deadlines.count, 1);
  no_unit(&s, 7, "inc-a", "inc-a/no_unit_available/fire_brigade/compound",
          LINKAGE__V1__TIER__COMPOUND, 1, T0 + 3 * MIN);
  const struct lk_deadline *top = lk_heap_peek(&s.deadlines);
  LK_CHECK(top && top->at_us == T0 + 3 * MIN && top->kind == ROUTER_DEADLINE_NO_UNIT);
  LK_CHECK(top && router_decide_deadline(&s, top, T0 + 3 * MIN, &d));
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__ESCALATED);
  LK_CHECK_EQ_INT(d.to_tier, LINKAGE__V1__TIER__COMMUNITY);
  /* What happened, not a deadline that has not passed. */
  LK_CHECK_STR(d.reason, "no fire_brigade unit answered at compound tier (1 called)");
  LK_CHECK(d.deadline == NULL && d.due_us == 0);
  LK_CHECK(ack_by > T0 + 3 * MIN);
  /* The new tier's deadlines count from the escalation: it does not arrive overdue. */
  LK_CHECK_EQ_INT(d.ack_by_us, T0 + 3 * MIN + plans[0].deadlines[4][2].acknowledge_min * MIN);
  router_state_close(&s);
}

LK_TEST(at_district_tier_a_missing_unit_raises_no_alarm_but_deadlines_do) {
  struct router_state s;
  struct router_decision d;
  init(&s);
  uint32_t slot =
      report(&s, 1, "inc-g", "d1", "zhouji-asia-bay", "3", LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER,
             "gas_leak", LINKAGE__V1__SEVERITY__SEVERITY_I, T0);
  LK_CHECK(router_decide_new(&s, slot, T0, &d));
  commit(&s, 2, &d, T0);
  LK_CHECK_EQ_INT(s.incidents[slot].tier, LINKAGE__V1__TIER__DISTRICT);
  no_unit(&s, 3, "inc-g", "inc-g/no_unit_available/fire_brigade/district",
          LINKAGE__V1__TIER__DISTRICT, 1, T0 + MIN);
  struct lk_deadline dl = {.at_us = T0 + MIN, .owner = slot, .kind = ROUTER_DEADLINE_NO_UNIT};
  LK_CHECK(!router_decide_deadline(&s, &dl, T0 + MIN, &d));
  LK_CHECK_EQ_INT(d.type, 0);
  /* The acknowledge deadline still raises the alarm when it passes, not before. */
  int64_t ack_by = s.incidents[slot].ack_by_us;
  struct lk_deadline ack = {.at_us = ack_by, .owner = slot, .kind = ROUTER_DEADLINE_ACKNOWLEDGE};
  LK_CHECK(!router_decide_deadline(&s, &ack, ack_by - 1, &d));
  LK_CHECK(router_decide_deadline(&s, &ack, ack_by, &d));
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__OVERDUE);
  router_state_close(&s);
}

int main(void) {
  return lk_test_run_all();
}
