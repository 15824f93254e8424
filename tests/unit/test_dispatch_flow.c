/* Dispatch's fold and decisions through whole incidents: every decision goes
 * through dispatch_event_build and back into the fold, as the ledger would
 * commit it. Demo district (deploy/district/wenjiang.yaml) unless a test
 * needs several units of one type (tests/data/district/dispatch.yaml). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch.h"
#include "linkage/error.h"
#include "linkage/v1/unit.pb-c.h"
#include "lk_test.h"

#define T0 1800000000000000LL /* 16:00 local time */
#define MIN 60000000LL

enum {
  ACK = LINKAGE__V1__ANSWER__KIND__ACKNOWLEDGED,
  ON_SCENE = LINKAGE__V1__ANSWER__KIND__ON_SCENE,
  RESOLVED = LINKAGE__V1__ANSWER__KIND__RESOLVED,
  DECLINED = LINKAGE__V1__ANSWER__KIND__DECLINED,
  BACKUP = LINKAGE__V1__ANSWER__KIND__NEED_BACKUP,
  VERIFIED = LINKAGE__V1__ANSWER__KIND__VERIFIED,
};

struct fx {
  struct lk_district *d;
  struct dispatch_state s;
  struct dispatch_unit_status status[64];
  uint64_t position;
};

static int fx_open(struct fx *f, const char *path) {
  char err[512];
  memset(f, 0, sizeof *f);
  f->d = lk_district_load(path, err, sizeof err);
  if (!f->d) {
    fprintf(stderr, "%s: %s\n", path, err);
    return 0;
  }
  struct dispatch_policy pol = {
      .time_scale = 1, .verify_window_us = 1440 * MIN, .utc_offset_min = 480};
  return dispatch_state_init(&f->s, f->d, &pol) == LK_OK;
}

static void fx_close(struct fx *f) {
  dispatch_state_close(&f->s);
  lk_district_destroy(&f->d);
}

static uint32_t fold(struct fx *f, const Linkage__V1__Event *ev) {
  /* Through the wire format, as the stream delivers it. */
  size_t len;
  uint8_t *buf = lk_event_pack(ev, &len);
  Linkage__V1__Event *back = linkage__v1__event__unpack(NULL, len, buf);
  uint32_t slot = back ? dispatch_state_apply(&f->s, ++f->position, back) : 0;
  linkage__v1__event__free_unpacked(back, NULL);
  free(buf);
  return slot;
}

static uint32_t report(struct fx *f, const char *id, const char *compound, const char *building,
                       Linkage__V1__Category cat, const char *kind, int64_t at) {
  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
  Linkage__V1__Reported rep = LINKAGE__V1__REPORTED__INIT;
  Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
  char eid[LK_ID_MAX];
  snprintf(eid, sizeof eid, "%s/reported", id);
  loc.compound_id = (char *)compound;
  loc.building = (char *)building;
  r.device_id = "dev-1";
  r.sequence = 1;
  r.category = cat;
  r.kind = (char *)kind;
  r.severity = LINKAGE__V1__SEVERITY__SEVERITY_III;
  r.description = "smell of gas in the stairwell";
  r.location = &loc;
  rep.report = &r;
  ev.event_id = eid;
  ev.incident_id = (char *)id;
  ev.type = LINKAGE__V1__EVENT_TYPE__REPORTED;
  ev.at_us = at;
  ev.actor = "device:dev-1";
  ev.body_case = LINKAGE__V1__EVENT__BODY_REPORTED;
  ev.reported = &rep;
  return fold(f, &ev);
}

static void route(struct fx *f, const char *id, Linkage__V1__Tier tier, int64_t at) {
  Linkage__V1__Routed ro = LINKAGE__V1__ROUTED__INIT;
  Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
  char eid[LK_ID_MAX];
  snprintf(eid, sizeof eid, "%s/routed", id);
  ro.tier = tier;
  ev.event_id = eid;
  ev.incident_id = (char *)id;
  ev.type = LINKAGE__V1__EVENT_TYPE__ROUTED;
  ev.at_us = at;
  ev.actor = "svc:router";
  ev.body_case = LINKAGE__V1__EVENT__BODY_ROUTED;
  ev.routed = &ro;
  fold(f, &ev);
}

static void escalate(struct fx *f, const char *id, Linkage__V1__Tier from, Linkage__V1__Tier to,
                     int64_t at) {
  Linkage__V1__Escalated es = LINKAGE__V1__ESCALATED__INIT;
  Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
  char eid[LK_ID_MAX];
  snprintf(eid, sizeof eid, "%s/escalated/%d", id, (int)to);
  es.from_tier = from;
  es.to_tier = to;
  es.reason = "acknowledge deadline missed";
  ev.event_id = eid;
  ev.incident_id = (char *)id;
  ev.type = LINKAGE__V1__EVENT_TYPE__ESCALATED;
  ev.at_us = at;
  ev.actor = "svc:router";
  ev.body_case = LINKAGE__V1__EVENT__BODY_ESCALATED;
  ev.escalated = &es;
  fold(f, &ev);
}

/* Commits a decision as the shell would. */
static void commit(struct fx *f, const struct dispatch_decision *d, const char *actor, int64_t at) {
  struct dispatch_event_storage st;
  Linkage__V1__Event ev;
  dispatch_event_build(d, actor, at, &ev, &st);
  char why[128];
  if (!LK_CHECK(lk_event_check(&ev, why, sizeof why) == LK_OK)) fprintf(stderr, "     %s\n", why);
  fold(f, &ev);
}

static void refresh(struct fx *f) {
  for (size_t i = 0; i < f->d->unit_count && i < 64; i++)
    f->status[i].load = f->s.unit_load[i];
}

/* Decides for the incident and commits everything decided; returns the count. */
static size_t decide_commit(struct fx *f, const char *id, int64_t now,
                            struct dispatch_decision *out, size_t max) {
  struct dispatch_incident *inc = dispatch_incident_get(&f->s, id);
  if (!inc) return 0;
  refresh(f);
  size_t n = dispatch_decide(&f->s, (uint32_t)(inc - f->s.incidents), f->status, now, out, max);
  for (size_t i = 0; i < n; i++)
    commit(f, &out[i], "svc:dispatch", now);
  return n;
}

/* A unit answers; LK_OK and the event committed, or the refusal in err. */
static int answer(struct fx *f, const char *unit, const char *assignment, int kind, int64_t now,
                  char *err, size_t errlen) {
  struct dispatch_decision d;
  int rc = dispatch_answer_decision(&f->s, unit, assignment, kind, "", now, &d, err, errlen);
  if (rc == LK_OK) {
    char actor[LK_ID_MAX];
    snprintf(actor, sizeof actor, "unit:%s", unit);
    commit(f, &d, actor, now);
  }
  return rc;
}

static void ok_answer(struct fx *f, const char *unit, const char *assignment, int kind,
                      int64_t now) {
  char err[256] = "";
  if (!LK_CHECK(answer(f, unit, assignment, kind, now, err, sizeof err) == LK_OK))
    fprintf(stderr, "     %s answering %s: %s\n", unit, assignment, err);
}

static const struct dispatch_decision *find_role(const struct dispatch_decision *d, size_t n,
                                                 const char *role) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(d[i].role, role) == 0) return &d[i];
  return NULL;
}

static unsigned load_of(struct fx *f, const char *unit) {
  return f->s.unit_load[lk_district_unit(f->d, unit) - f->d->units];
}

LK_TEST(gas_leak_in_zhouji_asia_bay_from_dispatch_to_verification) {
  struct fx f;
  if (!LK_CHECK(fx_open(&f, "deploy/district/wenjiang.yaml"))) return;
  struct dispatch_decision out[DISPATCH_MAX_ROLES], d;
  const char *inc = "inc-gas";
  LK_CHECK(report(&f, inc, "zhouji-asia-bay", "3", LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER,
                  "gas_leak", T0) != 0);
  /* Reported but not routed: nothing yet. */
  LK_CHECK_EQ_INT(decide_commit(&f, inc, T0, out, DISPATCH_MAX_ROLES), 0);
  route(&f, inc, LINKAGE__V1__TIER__COMMUNITY, T0);
  size_t n = decide_commit(&f, inc, T0, out, DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(n, 4);
  const char *want[][3] = {
      {"special_committee", "committee-zhouji-asia-bay", "0"},
      {"property_company", "property-zhouji-asia-bay", "0"},
      {"grid_worker", "grid-workers-zhouji-asia-bay", "0"},
      {"fire_brigade", "fire-wenjiang", "1"},
  };
  for (size_t i = 0; i < 4 && i < n; i++) {
    char aid[128], eid[128];
    snprintf(aid, sizeof aid, "inc-gas/%s/1", want[i][0]);
    snprintf(eid, sizeof eid, "inc-gas/dispatched/%s/1", want[i][0]);
    LK_CHECK_EQ_INT(out[i].type, LINKAGE__V1__EVENT_TYPE__DISPATCHED);
    LK_CHECK_STR(out[i].role, want[i][0]);
    LK_CHECK_STR(out[i].unit_id, want[i][1]);
    LK_CHECK_EQ_INT(out[i].lead, want[i][2][0] - '0');
    LK_CHECK_STR(out[i].assignment_id, aid);
    LK_CHECK_STR(out[i].event_id, eid);
    LK_CHECK_STR(out[i].replaces, "");
    LK_CHECK_EQ_INT(out[i].tier, LINKAGE__V1__TIER__COMMUNITY);
  }
  const struct dispatch_decision *fire = find_role(out, n, "fire_brigade");
  if (LK_CHECK(fire != NULL)) {
    LK_CHECK_EQ_INT(fire->acknowledge_by_us, T0 + 3 * MIN);
    LK_CHECK_EQ_INT(fire->arrive_by_us, T0 + 10 * MIN);
    LK_CHECK_EQ_INT(fire->resolve_by_us, T0 + 120 * MIN);
  }
  /* Folded: four assignments, each unit's load, four acknowledge deadlines; nothing more to do. */
  struct dispatch_assignment *a = dispatch_assignment_get(&f.s, "inc-gas/fire_brigade/1");
  if (LK_CHECK(a != NULL)) {
    LK_CHECK_STR(a->unit_id, "fire-wenjiang");
    LK_CHECK_EQ_INT(a->state, DA_DISPATCHED);
    LK_CHECK_EQ_INT(a->n, 1);
    LK_CHECK(a->lead);
  }
  LK_CHECK_EQ_INT(load_of(&f, "fire-wenjiang"), 1);
  LK_CHECK_EQ_INT(f.s.deadlines.count, 4);
  LK_CHECK_EQ_INT(lk_heap_peek(&f.s.deadlines)->at_us, T0 + 3 * MIN);
  LK_CHECK_EQ_INT(decide_commit(&f, inc, T0 + 1, out, DISPATCH_MAX_ROLES), 0);

  /* Everybody acknowledges: no deadline is left to expire. */
  ok_answer(&f, "fire-wenjiang", "inc-gas/fire_brigade/1", ACK, T0 + MIN);
  ok_answer(&f, "committee-zhouji-asia-bay", "inc-gas/special_committee/1", ACK, T0 + MIN);
  ok_answer(&f, "property-zhouji-asia-bay", "inc-gas/property_company/1", ACK, T0 + MIN);
  ok_answer(&f, "grid-workers-zhouji-asia-bay", "inc-gas/grid_worker/1", ON_SCENE, T0 + 2 * MIN);
  LK_CHECK_EQ_INT(f.s.deadlines.count, 0);
  ok_answer(&f, "fire-wenjiang", "inc-gas/fire_brigade/1", ON_SCENE, T0 + 8 * MIN);
  a = dispatch_assignment_get(&f.s, "inc-gas/fire_brigade/1");
  if (LK_CHECK(a != NULL)) {
    LK_CHECK_EQ_INT(a->state, DA_ON_SCENE);
    LK_CHECK_EQ_INT(a->acknowledged_at_us, T0 + MIN);
    LK_CHECK_EQ_INT(a->on_scene_at_us, T0 + 8 * MIN);
  }

  /* The barrier: the lead resolved, the others still at work -> nothing. */
  ok_answer(&f, "fire-wenjiang", "inc-gas/fire_brigade/1", RESOLVED, T0 + 40 * MIN);
  LK_CHECK_EQ_INT(load_of(&f, "fire-wenjiang"), 0);
  LK_CHECK_EQ_INT(decide_commit(&f, inc, T0 + 40 * MIN, out, DISPATCH_MAX_ROLES), 0);
  ok_answer(&f, "committee-zhouji-asia-bay", "inc-gas/special_committee/1", RESOLVED,
            T0 + 50 * MIN);

  /* A grid worker cannot verify before the incident is resolved, and is told whom it waits for. */
  char err[256];
  LK_CHECK(answer(&f, "grid-workers-zhouji-asia-bay", "inc-gas/grid_worker/1", VERIFIED,
                  T0 + 51 * MIN, err, sizeof err) == LK_EINVAL);
  LK_CHECK_CONTAINS(err, "not resolved yet: waiting for property-zhouji-asia-bay");

  /* The last part done: resolved, although the grid worker's own assignment is open (checking
   * the result is its part). */
  ok_answer(&f, "property-zhouji-asia-bay", "inc-gas/property_company/1", RESOLVED, T0 + 55 * MIN);
  n = decide_commit(&f, inc, T0 + 55 * MIN, out, DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(n, 1);
  if (n == 1) {
    LK_CHECK_EQ_INT(out[0].type, LINKAGE__V1__EVENT_TYPE__RESOLVED);
    LK_CHECK_STR(out[0].event_id, "inc-gas/resolved");
    LK_CHECK_CONTAINS(out[0].reason, "fire-wenjiang");
  }
  struct dispatch_incident *i = dispatch_incident_get(&f.s, inc);
  LK_CHECK(i && (i->flags & DI_RESOLVED));
  LK_CHECK_EQ_INT(decide_commit(&f, inc, T0 + 61 * MIN, out, DISPATCH_MAX_ROLES), 0);
  /* The automatic close waits in the heap. */
  LK_CHECK_EQ_INT(f.s.deadlines.count, 1);
  LK_CHECK_EQ_INT(lk_heap_peek(&f.s.deadlines)->kind, DISPATCH_DEADLINE_CLOSE);

  /* 核查: only a grid worker covering the compound closes it. */
  LK_CHECK(answer(&f, "fire-wenjiang", "inc-gas/fire_brigade/1", VERIFIED, T0 + 70 * MIN, err,
                  sizeof err) == LK_EINVAL);
  LK_CHECK_CONTAINS(err, "only a grid worker verifies on site");
  LK_CHECK(answer(&f, "grid-workers-lijinggang", "inc-gas/grid_worker/1", VERIFIED, T0 + 70 * MIN,
                  err, sizeof err) == LK_EINVAL);
  LK_CHECK_CONTAINS(err, "does not cover zhouji-asia-bay");
  /* It need not hold an assignment, and may name the incident itself. */
  LK_CHECK_EQ_INT(dispatch_answer_decision(&f.s, "grid-workers-zhouji-asia-bay", inc, VERIFIED, "",
                                           T0 + 70 * MIN, &d, err, sizeof err),
                  LK_OK);
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__CLOSED);
  LK_CHECK_STR(d.event_id, "inc-gas/closed/dispatch");
  LK_CHECK_STR(d.reason, "verified on site by unit:grid-workers-zhouji-asia-bay");
  commit(&f, &d, "unit:grid-workers-zhouji-asia-bay", T0 + 70 * MIN);
  LK_CHECK(i->flags & DI_CLOSED);
  LK_CHECK_EQ_INT(f.s.deadlines.count, 0);
  LK_CHECK_EQ_INT(
      dispatch_decide_autoclose(&f.s, (uint32_t)(i - f.s.incidents), T0 + 9999 * MIN, &d), 0);
  LK_CHECK(answer(&f, "fire-wenjiang", "inc-gas/fire_brigade/1", RESOLVED, T0 + 71 * MIN, err,
                  sizeof err) == LK_EINVAL);
  LK_CHECK_CONTAINS(err, "is closed");
  fx_close(&f);
}

LK_TEST(the_same_leak_elsewhere_calls_the_rosters_of_their_modes) {
  struct fx f;
  if (!LK_CHECK(fx_open(&f, "deploy/district/wenjiang.yaml"))) return;
  struct dispatch_decision out[DISPATCH_MAX_ROLES];
  static const struct {
    const char *compound, *building, *units;
  } cases[] = {
      {"zhouji-yinhai-bay", "5",
       "property-zhouji-yinhai-bay,owners-zhouji-yinhai-bay,duty-jiangpu-road,"
       "grid-workers-zhouji-yinhai-bay,fire-wenjiang*"},
      {"lijinggang", "12", "duty-lijinggang,grid-workers-lijinggang,fire-wenjiang*"},
  };
  for (size_t c = 0; c < 2; c++) {
    char id[32], got[512] = "";
    snprintf(id, sizeof id, "inc-leak-%zu", c);
    report(&f, id, cases[c].compound, cases[c].building, LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER,
           "gas_leak", T0);
    route(&f, id, LINKAGE__V1__TIER__COMMUNITY, T0);
    size_t n = decide_commit(&f, id, T0, out, DISPATCH_MAX_ROLES), at = 0;
    for (size_t i = 0; i < n; i++)
      at += (size_t)snprintf(got + at, sizeof got - at, "%s%s%s", i ? "," : "", out[i].unit_id,
                             out[i].lead ? "*" : "");
    LK_CHECK_STR(got, cases[c].units);
  }
  /* The fire brigade now carries both. */
  LK_CHECK_EQ_INT(load_of(&f, "fire-wenjiang"), 2);
  fx_close(&f);
}

LK_TEST(unanswered_assignment_expires_then_nobody_is_left_then_escalation_tries_again) {
  struct fx f;
  if (!LK_CHECK(fx_open(&f, "deploy/district/wenjiang.yaml"))) return;
  struct dispatch_decision out[DISPATCH_MAX_ROLES], d;
  const char *inc = "inc-x";
  report(&f, inc, "zhouji-asia-bay", "3", LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "gas_leak", T0);
  route(&f, inc, LINKAGE__V1__TIER__COMMUNITY, T0);
  LK_CHECK_EQ_INT(decide_commit(&f, inc, T0, out, DISPATCH_MAX_ROLES), 4);
  ok_answer(&f, "committee-zhouji-asia-bay", "inc-x/special_committee/1", ACK, T0 + MIN);
  ok_answer(&f, "property-zhouji-asia-bay", "inc-x/property_company/1", ACK, T0 + MIN);
  ok_answer(&f, "grid-workers-zhouji-asia-bay", "inc-x/grid_worker/1", ACK, T0 + MIN);
  /* The fire brigade never answers: its deadline is the heap's. */
  const struct lk_deadline *top = lk_heap_peek(&f.s.deadlines);
  if (!LK_CHECK(top != NULL)) return;
  struct lk_deadline due = *top;
  LK_CHECK_EQ_INT(due.kind, DISPATCH_DEADLINE_ACKNOWLEDGE);
  LK_CHECK_EQ_INT(due.at_us, T0 + 3 * MIN);
  struct dispatch_assignment *a = &f.s.assignments[due.owner];
  LK_CHECK_STR(a->id, "inc-x/fire_brigade/1");
  /* One microsecond early: nothing. */
  LK_CHECK_EQ_INT(dispatch_decide_expiry(&f.s, (uint32_t)due.owner, T0 + 3 * MIN - 1, &d), 0);
  lk_heap_pop(&f.s.deadlines, &due);
  dispatch_state_fired(&f.s, &due);
  LK_CHECK_EQ_INT(dispatch_decide_expiry(&f.s, (uint32_t)due.owner, T0 + 3 * MIN, &d), 1);
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__UNIT_DECLINED);
  LK_CHECK_STR(d.event_id, "inc-x/unit_declined/fire_brigade/1");
  LK_CHECK_STR(d.assignment_id, "inc-x/fire_brigade/1");
  LK_CHECK_STR(d.unit_id, "fire-wenjiang");
  LK_CHECK_STR(d.note, "no answer before the acknowledge deadline");
  commit(&f, &d, "svc:dispatch", T0 + 3 * MIN);
  LK_CHECK_EQ_INT(a->state, DA_DECLINED);
  LK_CHECK_EQ_INT(load_of(&f, "fire-wenjiang"), 0);
  LK_CHECK_EQ_INT(dispatch_decide_expiry(&f.s, (uint32_t)due.owner, T0 + 4 * MIN, &d), 0);
  /* A late answer to the expired assignment is refused. */
  char err[256];
  LK_CHECK(answer(&f, "fire-wenjiang", "inc-x/fire_brigade/1", ACK, T0 + 4 * MIN, err,
                  sizeof err) == LK_EINVAL);
  LK_CHECK_CONTAINS(err, "declined");

  /* The only fire brigade was tried: nobody is left for the role at this tier. */
  size_t n = decide_commit(&f, inc, T0 + 3 * MIN, out, DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(n, 1);
  if (n == 1) {
    LK_CHECK_EQ_INT(out[0].type, LINKAGE__V1__EVENT_TYPE__NO_UNIT_AVAILABLE);
    LK_CHECK_STR(out[0].event_id, "inc-x/no_unit_available/fire_brigade/community");
    LK_CHECK_STR(out[0].role, "fire_brigade");
    LK_CHECK_CONTAINS(out[0].reason, "no fire_brigade unit left for zhouji-asia-bay");
  }
  /* Said once per tier. */
  LK_CHECK_EQ_INT(decide_commit(&f, inc, T0 + 4 * MIN, out, DISPATCH_MAX_ROLES), 0);
  /* The router escalates: the street's office is called, and the empty role is tried again. */
  escalate(&f, inc, LINKAGE__V1__TIER__COMMUNITY, LINKAGE__V1__TIER__STREET, T0 + 3 * MIN);
  n = decide_commit(&f, inc, T0 + 5 * MIN, out, DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(n, 2);
  const struct dispatch_decision *nu = find_role(out, n, "fire_brigade");
  const struct dispatch_decision *so = find_role(out, n, "street_emergency_office");
  if (LK_CHECK(nu && so)) {
    /* A new tier is a new call-out: the brigade that did not answer is called again. */
    LK_CHECK_EQ_INT(nu->type, LINKAGE__V1__EVENT_TYPE__DISPATCHED);
    LK_CHECK_STR(nu->unit_id, "fire-wenjiang");
    LK_CHECK_STR(nu->assignment_id, "inc-x/fire_brigade/2");
    LK_CHECK_STR(nu->replaces, "inc-x/fire_brigade/1");
    LK_CHECK_EQ_INT(nu->tier, LINKAGE__V1__TIER__STREET);
    LK_CHECK(nu->lead);
    LK_CHECK_EQ_INT(so->type, LINKAGE__V1__EVENT_TYPE__DISPATCHED);
    LK_CHECK_STR(so->unit_id, "emergency-yongquan");
    LK_CHECK_EQ_INT(so->tier, LINKAGE__V1__TIER__STREET);
    LK_CHECK(!so->lead);
  }
  /* Silent again: nobody left at this tier, said with the tier and the count. */
  struct dispatch_assignment *a2 = dispatch_assignment_get(&f.s, "inc-x/fire_brigade/2");
  if (LK_CHECK(a2 != NULL)) {
    LK_CHECK(
        dispatch_decide_expiry(&f.s, (uint32_t)(a2 - f.s.assignments), a2->acknowledge_by_us, &d));
    commit(&f, &d, "svc:dispatch", a2->acknowledge_by_us);
    n = decide_commit(&f, inc, a2->acknowledge_by_us, out, DISPATCH_MAX_ROLES);
    LK_CHECK_EQ_INT(n, 1);
    if (n == 1) {
      LK_CHECK_STR(out[0].event_id, "inc-x/no_unit_available/fire_brigade/street");
      LK_CHECK_EQ_INT(out[0].tier, LINKAGE__V1__TIER__STREET);
      LK_CHECK_EQ_INT(out[0].tried, 1);
    }
  }
  fx_close(&f);
}

LK_TEST(decline_expiry_and_backup_call_the_next_unit_with_n_plus_one) {
  struct fx f;
  if (!LK_CHECK(fx_open(&f, "tests/data/district/dispatch.yaml"))) return;
  struct dispatch_decision out[DISPATCH_MAX_ROLES], d;
  const char *inc = "inc-h";
  report(&f, inc, "spring-square", "1", LINKAGE__V1__CATEGORY__LATENT_HAZARD, "crack", T0);
  route(&f, inc, LINKAGE__V1__TIER__COMPOUND, T0);
  size_t n = decide_commit(&f, inc, T0, out, DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(n, 1);
  if (n == 1) {
    LK_CHECK_STR(out[0].unit_id, "gw-a");
    LK_CHECK_STR(out[0].assignment_id, "inc-h/grid_worker/1");
    LK_CHECK(out[0].lead);
  }
  /* Declined: the next unit of the role, n+1, replacing the declined one. */
  ok_answer(&f, "gw-a", "inc-h/grid_worker/1", DECLINED, T0 + MIN);
  n = decide_commit(&f, inc, T0 + MIN, out, DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(n, 1);
  if (n == 1) {
    LK_CHECK_STR(out[0].unit_id, "gw-b");
    LK_CHECK_STR(out[0].assignment_id, "inc-h/grid_worker/2");
    LK_CHECK_STR(out[0].event_id, "inc-h/dispatched/grid_worker/2");
    LK_CHECK_STR(out[0].replaces, "inc-h/grid_worker/1");
    LK_CHECK(out[0].lead);
  }
  LK_CHECK(dispatch_assignment_get(&f.s, "inc-h/grid_worker/1")->replaced);
  /* gw-b never answers: expired, then the compound-wide worker (the night shift is off). */
  struct dispatch_assignment *b = dispatch_assignment_get(&f.s, "inc-h/grid_worker/2");
  if (!LK_CHECK(b != NULL)) return;
  LK_CHECK(dispatch_decide_expiry(&f.s, (uint32_t)(b - f.s.assignments), b->acknowledge_by_us, &d));
  commit(&f, &d, "svc:dispatch", b->acknowledge_by_us);
  n = decide_commit(&f, inc, T0 + 62 * MIN, out, DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(n, 1);
  if (n == 1) {
    LK_CHECK_STR(out[0].unit_id, "gw-compound");
    LK_CHECK_STR(out[0].assignment_id, "inc-h/grid_worker/3");
    LK_CHECK_STR(out[0].replaces, "inc-h/grid_worker/2");
  }
  /* Declined again: all three day workers tried -> no_unit_available. */
  ok_answer(&f, "gw-compound", "inc-h/grid_worker/3", DECLINED, T0 + 63 * MIN);
  n = decide_commit(&f, inc, T0 + 63 * MIN, out, DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(n, 1);
  if (n == 1) {
    LK_CHECK_EQ_INT(out[0].type, LINKAGE__V1__EVENT_TYPE__NO_UNIT_AVAILABLE);
    LK_CHECK_STR(out[0].event_id, "inc-h/no_unit_available/grid_worker/compound");
    LK_CHECK_CONTAINS(out[0].reason, "3 called at this tier");
  }
  /* After escalation the role is a new call-out: every unit of it may be called again, the
   * ones that declined below included (at 23:00 the night shift is on too; gw-a is first by id
   * among the equally idle). */
  escalate(&f, inc, LINKAGE__V1__TIER__COMPOUND, LINKAGE__V1__TIER__COMMUNITY, T0 + 64 * MIN);
  n = decide_commit(&f, inc, T0 + 7 * 60 * MIN, out, DISPATCH_MAX_ROLES); /* 23:00 local */
  LK_CHECK_EQ_INT(n, 1);
  if (n == 1) {
    LK_CHECK_STR(out[0].unit_id, "gw-a");
    LK_CHECK_STR(out[0].assignment_id, "inc-h/grid_worker/4");
    LK_CHECK_STR(out[0].replaces, "inc-h/grid_worker/3");
    LK_CHECK_EQ_INT(out[0].tier, LINKAGE__V1__TIER__COMMUNITY);
  }
  /* Declined at this tier too: the night shift next, then nobody. */
  ok_answer(&f, "gw-a", "inc-h/grid_worker/4", DECLINED, T0 + 7 * 60 * MIN);
  n = decide_commit(&f, inc, T0 + 7 * 60 * MIN, out, DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(n, 1);
  if (n == 1) LK_CHECK_STR(out[0].unit_id, "gw-b");

  /* Backup: one more unit of the role, replacing nobody. */
  const char *inc2 = "inc-b";
  report(&f, inc2, "spring-square", "1", LINKAGE__V1__CATEGORY__LATENT_HAZARD, "crack", T0);
  route(&f, inc2, LINKAGE__V1__TIER__COMPOUND, T0);
  LK_CHECK_EQ_INT(decide_commit(&f, inc2, T0, out, DISPATCH_MAX_ROLES), 1);
  /* gw-a's part in inc-h was declined: it is idle, first by id among equals. */
  LK_CHECK_STR(out[0].unit_id, "gw-a");
  ok_answer(&f, "gw-a", "inc-b/grid_worker/1", BACKUP, T0 + MIN);
  struct dispatch_assignment *ba = dispatch_assignment_get(&f.s, "inc-b/grid_worker/1");
  LK_CHECK(ba && ba->backup && ba->state == DA_ACKNOWLEDGED);
  n = decide_commit(&f, inc2, T0 + MIN, out, DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(n, 1);
  if (n == 1) {
    LK_CHECK_STR(out[0].unit_id, "gw-b");
    LK_CHECK_STR(out[0].assignment_id, "inc-b/grid_worker/2");
    LK_CHECK_STR(out[0].replaces, "");
  }
  LK_CHECK_EQ_INT(decide_commit(&f, inc2, T0 + 2 * MIN, out, DISPATCH_MAX_ROLES), 0);
  fx_close(&f);
}

LK_TEST(least_loaded_unit_is_called_and_present_units_first) {
  struct fx f;
  if (!LK_CHECK(fx_open(&f, "tests/data/district/dispatch.yaml"))) return;
  struct dispatch_decision out[DISPATCH_MAX_ROLES];
  report(&f, "inc-1", "spring-square", "1", LINKAGE__V1__CATEGORY__LATENT_HAZARD, "crack", T0);
  route(&f, "inc-1", LINKAGE__V1__TIER__COMPOUND, T0);
  report(&f, "inc-2", "spring-square", "1", LINKAGE__V1__CATEGORY__LATENT_HAZARD, "crack", T0);
  route(&f, "inc-2", LINKAGE__V1__TIER__COMPOUND, T0);
  report(&f, "inc-3", "spring-square", "1", LINKAGE__V1__CATEGORY__LATENT_HAZARD, "crack", T0);
  route(&f, "inc-3", LINKAGE__V1__TIER__COMPOUND, T0);
  LK_CHECK_EQ_INT(decide_commit(&f, "inc-1", T0, out, DISPATCH_MAX_ROLES), 1);
  LK_CHECK_STR(out[0].unit_id, "gw-a");
  LK_CHECK_EQ_INT(decide_commit(&f, "inc-2", T0, out, DISPATCH_MAX_ROLES), 1);
  LK_CHECK_STR(out[0].unit_id, "gw-b"); /* gw-a is busy */
  LK_CHECK_EQ_INT(load_of(&f, "gw-a"), 1);
  LK_CHECK_EQ_INT(load_of(&f, "gw-b"), 1);
  /* gw-b resolves: idle again, and present: it is called before gw-a. */
  ok_answer(&f, "gw-b", "inc-2/grid_worker/1", RESOLVED, T0 + MIN);
  LK_CHECK_EQ_INT(load_of(&f, "gw-b"), 0);
  f.status[lk_district_unit(f.d, "gw-compound") - f.d->units].present = 1;
  LK_CHECK_EQ_INT(decide_commit(&f, "inc-3", T0 + MIN, out, DISPATCH_MAX_ROLES), 1);
  LK_CHECK_STR(out[0].unit_id, "gw-compound");
  fx_close(&f);
}

LK_TEST(resolution_barrier_waits_for_every_part_but_not_for_declined_ones) {
  struct fx f;
  if (!LK_CHECK(fx_open(&f, "tests/data/district/dispatch.yaml"))) return;
  struct dispatch_decision out[DISPATCH_MAX_ROLES];
  const char *inc = "inc-p";
  report(&f, inc, "spring-square", "1", LINKAGE__V1__CATEGORY__PUBLIC_HEALTH, "cluster", T0);
  route(&f, inc, LINKAGE__V1__TIER__COMPOUND, T0);
  size_t n = decide_commit(&f, inc, T0, out, DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(n, 2);
  const struct dispatch_decision *h = find_role(out, n, "health_centre");
  if (LK_CHECK(h != NULL)) {
    LK_CHECK_STR(h->unit_id, "health-qingquan");
    LK_CHECK(h->lead);
  }
  /* The grid worker declines and is replaced. */
  ok_answer(&f, "gw-a", "inc-p/grid_worker/1", DECLINED, T0 + MIN);
  LK_CHECK_EQ_INT(decide_commit(&f, inc, T0 + MIN, out, DISPATCH_MAX_ROLES), 1);
  LK_CHECK_STR(out[0].unit_id, "gw-b");
  ok_answer(&f, "gw-b", "inc-p/grid_worker/2", ON_SCENE, T0 + 20 * MIN);
  LK_CHECK_EQ_INT(decide_commit(&f, inc, T0 + 20 * MIN, out, DISPATCH_MAX_ROLES), 0);
  /* The lead resolves: every part done (gw-a's declined one does not count; gw-b's, a grid
   * worker's, is the check that follows) -> resolved. */
  ok_answer(&f, "health-qingquan", "inc-p/health_centre/1", RESOLVED, T0 + 40 * MIN);
  size_t k = decide_commit(&f, inc, T0 + 40 * MIN, out, DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(k, 1);
  if (k == 1) {
    LK_CHECK_EQ_INT(out[0].type, LINKAGE__V1__EVENT_TYPE__RESOLVED);
    LK_CHECK_STR(out[0].event_id, "inc-p/resolved");
  }

  /* Without the lead resolved nothing resolves, even when all others are done. */
  const char *inc2 = "inc-q";
  report(&f, inc2, "spring-square", "1", LINKAGE__V1__CATEGORY__PUBLIC_HEALTH, "cluster", T0);
  route(&f, inc2, LINKAGE__V1__TIER__COMPOUND, T0);
  LK_CHECK_EQ_INT(decide_commit(&f, inc2, T0, out, DISPATCH_MAX_ROLES), 2);
  const struct dispatch_decision *g = find_role(out, 2, "grid_worker");
  if (!LK_CHECK(g != NULL)) return;
  char gid[LK_ID_MAX];
  snprintf(gid, sizeof gid, "%s", g->unit_id);
  ok_answer(&f, gid, "inc-q/grid_worker/1", RESOLVED, T0 + MIN);
  LK_CHECK_EQ_INT(decide_commit(&f, inc2, T0 + MIN, out, DISPATCH_MAX_ROLES), 0);
  fx_close(&f);
}

LK_TEST(autoclose_after_the_verification_window_and_not_a_microsecond_before) {
  struct fx f;
  if (!LK_CHECK(fx_open(&f, "tests/data/district/dispatch.yaml"))) return;
  struct dispatch_decision out[DISPATCH_MAX_ROLES], d;
  const char *inc = "inc-c";
  uint32_t slot =
      report(&f, inc, "spring-square", "1", LINKAGE__V1__CATEGORY__LATENT_HAZARD, "crack", T0);
  route(&f, inc, LINKAGE__V1__TIER__COMPOUND, T0);
  LK_CHECK_EQ_INT(decide_commit(&f, inc, T0, out, DISPATCH_MAX_ROLES), 1);
  LK_CHECK_EQ_INT(dispatch_decide_autoclose(&f.s, slot, T0 + 9999 * MIN, &d), 0); /* not resolved */
  ok_answer(&f, "gw-a", "inc-c/grid_worker/1", RESOLVED, T0 + 10 * MIN);
  int64_t resolved_at = T0 + 11 * MIN;
  LK_CHECK_EQ_INT(decide_commit(&f, inc, resolved_at, out, DISPATCH_MAX_ROLES), 1);
  const struct lk_deadline *top = lk_heap_peek(&f.s.deadlines);
  if (LK_CHECK(top != NULL)) {
    LK_CHECK_EQ_INT(top->kind, DISPATCH_DEADLINE_CLOSE);
    LK_CHECK_EQ_INT(top->owner, slot);
    LK_CHECK_EQ_INT(top->at_us, resolved_at + 1440 * MIN);
  }
  LK_CHECK_EQ_INT(dispatch_decide_autoclose(&f.s, slot, resolved_at + 1440 * MIN - 1, &d), 0);
  LK_CHECK_EQ_INT(dispatch_decide_autoclose(&f.s, slot, resolved_at + 1440 * MIN, &d), 1);
  LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__CLOSED);
  LK_CHECK_STR(d.event_id, "inc-c/closed/dispatch");
  LK_CHECK_STR(d.reason, "not verified within 1440 minutes; closed automatically");
  commit(&f, &d, "svc:dispatch", resolved_at + 1440 * MIN);
  LK_CHECK(f.s.incidents[slot].flags & DI_CLOSED);
  LK_CHECK_EQ_INT(f.s.deadlines.count, 0);
  LK_CHECK_EQ_INT(dispatch_decide_autoclose(&f.s, slot, resolved_at + 1441 * MIN, &d), 0);
  fx_close(&f);
}

LK_TEST(answers_are_refused_with_clear_reasons) {
  struct fx f;
  if (!LK_CHECK(fx_open(&f, "deploy/district/wenjiang.yaml"))) return;
  struct dispatch_decision out[DISPATCH_MAX_ROLES], d;
  report(&f, "inc-r", "zhouji-asia-bay", "3", LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "gas_leak",
         T0);
  route(&f, "inc-r", LINKAGE__V1__TIER__COMMUNITY, T0);
  LK_CHECK_EQ_INT(decide_commit(&f, "inc-r", T0, out, DISPATCH_MAX_ROLES), 4);
  char err[256], note[600];
  LK_CHECK_EQ_INT(dispatch_answer_decision(&f.s, "fire-wenjiang", "inc-r/fire_brigade/9", ACK, "",
                                           T0, &d, err, sizeof err),
                  LK_EINVAL);
  LK_CHECK_STR(err, "unknown assignment \"inc-r/fire_brigade/9\"");
  LK_CHECK_EQ_INT(dispatch_answer_decision(&f.s, "police-yongquan", "inc-r/fire_brigade/1", ACK, "",
                                           T0, &d, err, sizeof err),
                  LK_EINVAL);
  LK_CHECK_STR(err, "assignment \"inc-r/fire_brigade/1\" belongs to unit \"fire-wenjiang\", not "
                    "\"police-yongquan\"");
  LK_CHECK_EQ_INT(dispatch_answer_decision(&f.s, "nobody", "inc-r/fire_brigade/1", ACK, "", T0, &d,
                                           err, sizeof err),
                  LK_EINVAL);
  LK_CHECK_STR(err, "unknown unit \"nobody\"");
  LK_CHECK_EQ_INT(dispatch_answer_decision(&f.s, "fire-wenjiang", "inc-r/fire_brigade/1", 0, "", T0,
                                           &d, err, sizeof err),
                  LK_EINVAL);
  LK_CHECK_STR(err, "answer kind 0 is not known");
  memset(note, 'x', sizeof note - 1);
  note[sizeof note - 1] = '\0';
  LK_CHECK_EQ_INT(dispatch_answer_decision(&f.s, "fire-wenjiang", "inc-r/fire_brigade/1", ACK, note,
                                           T0, &d, err, sizeof err),
                  LK_EINVAL);
  LK_CHECK_CONTAINS(err, "at most 500");
  LK_CHECK_EQ_INT(dispatch_answer_decision(&f.s, "fire-wenjiang", "inc-r/fire_brigade/1", ACK,
                                           "\xff\xfe", T0, &d, err, sizeof err),
                  LK_EINVAL);
  LK_CHECK_CONTAINS(err, "UTF-8");
  /* The narrow contract agrees, and a good answer names its event. */
  Linkage__V1__EventType type;
  char eid[256];
  LK_CHECK_EQ_INT(dispatch_decide_answer(&f.s, "fire-wenjiang", "inc-r/fire_brigade/1", ON_SCENE,
                                         "at the gate", T0, &type, eid, sizeof eid, err,
                                         sizeof err),
                  LK_OK);
  LK_CHECK_EQ_INT(type, LINKAGE__V1__EVENT_TYPE__UNIT_ON_SCENE);
  LK_CHECK_STR(eid, "inc-r/unit_on_scene/fire_brigade/1");
  LK_CHECK_EQ_INT(dispatch_decide_answer(&f.s, "police-yongquan", "inc-r/fire_brigade/1", ON_SCENE,
                                         "", T0, &type, eid, sizeof eid, err, sizeof err),
                  LK_EINVAL);
  /* Answers and their events: acknowledged twice names the same event (the ledger drops it). */
  ok_answer(&f, "fire-wenjiang", "inc-r/fire_brigade/1", ACK, T0 + MIN);
  LK_CHECK_EQ_INT(dispatch_answer_decision(&f.s, "fire-wenjiang", "inc-r/fire_brigade/1", ACK, "",
                                           T0 + 2 * MIN, &d, err, sizeof err),
                  LK_OK);
  LK_CHECK_STR(d.event_id, "inc-r/unit_acknowledged/fire_brigade/1");
  ok_answer(&f, "fire-wenjiang", "inc-r/fire_brigade/1", RESOLVED, T0 + 3 * MIN);
  LK_CHECK_EQ_INT(dispatch_answer_decision(&f.s, "fire-wenjiang", "inc-r/fire_brigade/1", DECLINED,
                                           "", T0 + 4 * MIN, &d, err, sizeof err),
                  LK_EINVAL);
  LK_CHECK_CONTAINS(err, "is resolved; it can no longer be declined");
  LK_CHECK_EQ_INT(dispatch_answer_decision(&f.s, "fire-wenjiang", "inc-r/fire_brigade/1", BACKUP,
                                           "", T0 + 4 * MIN, &d, err, sizeof err),
                  LK_EINVAL);
  LK_CHECK_CONTAINS(err, "can no longer be answered need_backup");
  LK_CHECK_EQ_INT(dispatch_answer_decision(&f.s, "grid-workers-zhouji-asia-bay", "inc-nope",
                                           VERIFIED, "", T0, &d, err, sizeof err),
                  LK_EINVAL);
  LK_CHECK_STR(err, "unknown assignment or incident \"inc-nope\"");
  fx_close(&f);
}

LK_TEST(dispatched_event_carries_the_decision) {
  struct dispatch_decision d;
  memset(&d, 0, sizeof d);
  d.type = LINKAGE__V1__EVENT_TYPE__DISPATCHED;
  snprintf(d.event_id, sizeof d.event_id, "inc-e/dispatched/fire_brigade/2");
  snprintf(d.incident_id, sizeof d.incident_id, "inc-e");
  snprintf(d.assignment_id, sizeof d.assignment_id, "inc-e/fire_brigade/2");
  snprintf(d.replaces, sizeof d.replaces, "inc-e/fire_brigade/1");
  snprintf(d.unit_id, sizeof d.unit_id, "fire-wenjiang");
  snprintf(d.role, sizeof d.role, "fire_brigade");
  d.lead = 1;
  d.tier = LINKAGE__V1__TIER__STREET;
  d.acknowledge_by_us = T0 + 3 * MIN;
  d.arrive_by_us = T0 + 10 * MIN;
  d.resolve_by_us = T0 + 120 * MIN;
  struct dispatch_event_storage st;
  Linkage__V1__Event ev;
  dispatch_event_build(&d, "svc:dispatch", T0, &ev, &st);
  char why[128];
  LK_CHECK(lk_event_check(&ev, why, sizeof why) == LK_OK);
  LK_CHECK_STR(ev.actor, "svc:dispatch");
  LK_CHECK_EQ_INT(ev.at_us, T0);
  LK_CHECK_EQ_INT(ev.body_case, LINKAGE__V1__EVENT__BODY_DISPATCHED);
  LK_CHECK_STR(ev.dispatched->assignment_id, "inc-e/fire_brigade/2");
  LK_CHECK_STR(ev.dispatched->replaces, "inc-e/fire_brigade/1");
  LK_CHECK_STR(ev.dispatched->unit_id, "fire-wenjiang");
  LK_CHECK(ev.dispatched->lead);
  LK_CHECK_EQ_INT(ev.dispatched->tier, LINKAGE__V1__TIER__STREET);
  LK_CHECK_EQ_INT(ev.dispatched->arrive_by_us, T0 + 10 * MIN);
  d.type = LINKAGE__V1__EVENT_TYPE__BACKUP_REQUESTED;
  snprintf(d.note, sizeof d.note, "two more hoses");
  dispatch_event_build(&d, "unit:fire-wenjiang", T0, &ev, &st);
  LK_CHECK(lk_event_check(&ev, why, sizeof why) == LK_OK);
  LK_CHECK_EQ_INT(ev.body_case, LINKAGE__V1__EVENT__BODY_BACKUP_REQUESTED);
  LK_CHECK_STR(ev.backup_requested->note, "two more hoses");
  LK_CHECK_STR(ev.actor, "unit:fire-wenjiang");
  d.type = LINKAGE__V1__EVENT_TYPE__NO_UNIT_AVAILABLE;
  snprintf(d.reason, sizeof d.reason, "nobody");
  dispatch_event_build(&d, "svc:dispatch", T0, &ev, &st);
  LK_CHECK(lk_event_check(&ev, why, sizeof why) == LK_OK);
  LK_CHECK_STR(ev.no_unit_available->role, "fire_brigade");
  LK_CHECK_STR(ev.no_unit_available->reason, "nobody");
}

/* A dispatch restarted mid-incident folds the same events and decides the same ids. */
LK_TEST(a_refolded_state_decides_the_same_assignment_ids) {
  struct fx a, b;
  if (!LK_CHECK(fx_open(&a, "deploy/district/wenjiang.yaml"))) return;
  if (!LK_CHECK(fx_open(&b, "deploy/district/wenjiang.yaml"))) return;
  struct dispatch_decision out[DISPATCH_MAX_ROLES], again[DISPATCH_MAX_ROLES];
  for (int k = 0; k < 2; k++) {
    struct fx *f = k ? &b : &a;
    report(f, "inc-k", "lijinggang", "2", LINKAGE__V1__CATEGORY__PUBLIC_HEALTH, "fever", T0);
    route(f, "inc-k", LINKAGE__V1__TIER__COMMUNITY, T0);
  }
  size_t n = decide_commit(&a, "inc-k", T0, out, DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(n, 3);
  refresh(&b);
  struct dispatch_incident *ib = dispatch_incident_get(&b.s, "inc-k");
  size_t m = dispatch_decide(&b.s, (uint32_t)(ib - b.s.incidents), b.status, T0 + 5 * MIN, again,
                             DISPATCH_MAX_ROLES);
  LK_CHECK_EQ_INT(m, n);
  for (size_t i = 0; i < n && i < m; i++) {
    LK_CHECK_STR(again[i].event_id, out[i].event_id);
    LK_CHECK_STR(again[i].assignment_id, out[i].assignment_id);
  }
  LK_CHECK(find_role(out, n, "health_centre") && find_role(out, n, "health_centre")->lead);
  LK_CHECK_STR(find_role(out, n, "health_centre")->unit_id, "health-lijinggang");
  fx_close(&a);
  fx_close(&b);
}

int main(void) {
  return lk_test_run_all();
}
