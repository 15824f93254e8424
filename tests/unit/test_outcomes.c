/* Generated scenarios against the pure decision functions: the router's, dispatch's and the
 * gateway's folds, driven as the ledger would drive them (every decision committed at once and
 * folded back into all three), time passed in, no sockets. For every plan of the demo district
 * x every compound (so every governance mode) x every severity x every hour of the day x four
 * answer patterns (everyone answers; the lead never answers; nobody answers; a unit declines),
 * each incident is played until it closes or a plan day passes, and the rules of DESIGN.md's
 * outcomes are checked after every step:
 *   9  every role the plan calls at the incident's tier is engaged (a live call) or shown
 *      missing by the gateway; the lead shown is a unit whose lead call is live;
 *   10 an escalation for a missed deadline comes at or after it, and says so; no other says so;
 *      no incident arrives at a tier with its acknowledge deadline passed; overdue is never early;
 *   11 (pairs) a hold-back's cause is the same category and non-empty kind, at the same place or
 *      under an area-hazard plan's area;
 *   12 the router, dispatch and the gateway agree whether the incident is over;
 *   13 (pairs) an overdue incident sorts before one that is not; then the more severe first.
 * Duty hours in the district format are daily, so an hour of the day stands for that hour of
 * every day of the week. Scenarios run simplest first; a rule's first failure prints that
 * scenario and its events up to the break, and later failures of the same rule are counted. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch.h"
#include "gateway/gateway.h"
#include "linkage/error.h"
#include "linkage/lifecycle.h"
#include "linkage/roster.h"
#include "linkage/v1/unit.pb-c.h"
#include "lk_test.h"
#include "router/router.h"

#define MIN 60000000LL
#define DAY0 1800000000000000LL /* 2027-01-15 08:00 UTC */
#define UTC_OFFSET 480

enum pattern { P_ALL, P_LEAD_SILENT, P_NOBODY, P_DECLINE, P_COUNT };
static const char *const pattern_names[] = {"everyone answers", "the lead never answers",
                                            "nobody answers", "a unit declines"};

enum rule { R9_ENGAGED, R9_LEAD, R10_DEADLINE, R10_BORN, R12_AGREE, R11_HOLD, R13_ORDER, R_COUNT };
static const char *const rule_names[] = {
    "9: every role called is engaged or shown missing",
    "9: the lead shown is engaged",
    "10: a deadline is reported missed only after it passed, and only then",
    "10: no incident arrives at a tier already overdue",
    "12: router, dispatch and gateway agree whether it is over",
    "11: hold-backs only for what may be the same event",
    "13: the most urgent first",
};

struct answer {
  int64_t at_us;
  char unit[LK_ID_MAX], assignment[2 * LK_ID_MAX];
  int kind;
};

struct sim {
  const struct lk_district *d;
  struct router_state r;
  struct dispatch_state ds;
  struct gw_view gw;
  struct dispatch_unit_status status[64];
  int64_t now, t0; /* t0: minute 0 of the scenario */
  uint64_t position;
  enum pattern pattern;
  struct answer answers[256];
  size_t answer_count;
  char trace[16384];
  size_t trace_len;
  char why[512];
  int broke; /* enum rule + 1 of the first broken rule, 0 */
};

static int failures[R_COUNT];

static void trace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(struct sim *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (s->trace_len < sizeof s->trace - 1) {
    int n = vsnprintf(s->trace + s->trace_len, sizeof s->trace - s->trace_len, fmt, ap);
    if (n > 0) s->trace_len += (size_t)n;
    if (s->trace_len > sizeof s->trace - 1) s->trace_len = sizeof s->trace - 1;
  }
  va_end(ap);
}

static void broke(struct sim *s, enum rule r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void broke(struct sim *s, enum rule r, const char *fmt, ...) {
  if (s->broke) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->why, sizeof s->why, fmt, ap);
  va_end(ap);
  s->broke = (int)r + 1;
}

static double minute(const struct sim *s, int64_t us) {
  return (double)(us - s->t0) / MIN;
}

/* ---- the ledger: commit, fold into every reader, check the event's own rules ---- */

static void schedule_answers(struct sim *s, const Linkage__V1__Dispatched *dp) {
  int kinds[4] = {0}, n = 0;
  int lead = dp->lead, grid = strcmp(dp->role, "grid_worker") == 0;
  switch (s->pattern) {
  case P_NOBODY: return;
  case P_LEAD_SILENT:
    if (lead) return;
    kinds[n++] = LINKAGE__V1__ANSWER__KIND__ACKNOWLEDGED;
    break;
  case P_DECLINE:
    /* The first call of a role other than the lead's is declined. */
    if (!lead &&
        strstr(dp->assignment_id, "/1") == dp->assignment_id + strlen(dp->assignment_id) - 2) {
      kinds[n++] = LINKAGE__V1__ANSWER__KIND__DECLINED;
      break;
    }
    /* fall through */
  case P_ALL:
    kinds[n++] = LINKAGE__V1__ANSWER__KIND__ACKNOWLEDGED;
    kinds[n++] = LINKAGE__V1__ANSWER__KIND__ON_SCENE;
    kinds[n++] = grid ? LINKAGE__V1__ANSWER__KIND__VERIFIED : LINKAGE__V1__ANSWER__KIND__RESOLVED;
    break;
  default: return;
  }
  static const int delay_min[3] = {1, 2, 5};
  for (int i = 0; i < n && s->answer_count < sizeof s->answers / sizeof s->answers[0]; i++) {
    struct answer *a = &s->answers[s->answer_count++];
    /* A grid worker checks the result last. */
    a->at_us = s->now + (kinds[i] == LINKAGE__V1__ANSWER__KIND__VERIFIED ? 12 : delay_min[i]) * MIN;
    snprintf(a->unit, sizeof a->unit, "%s", dp->unit_id);
    snprintf(a->assignment, sizeof a->assignment, "%s", dp->assignment_id);
    a->kind = kinds[i];
  }
}

static void check_event(struct sim *s, const Linkage__V1__Event *ev) {
  if (ev->body_case == LINKAGE__V1__EVENT__BODY_ESCALATED) {
    const Linkage__V1__Escalated *e = ev->escalated;
    int says = strstr(e->reason, "deadline missed") != NULL;
    if (e->deadline[0] ? ev->at_us < e->due_us || !says : says)
      broke(s, R10_DEADLINE, "escalated at minute %.2f: \"%s\" (deadline \"%s\" due at %.2f)",
            minute(s, ev->at_us), e->reason, e->deadline, minute(s, e->due_us));
    if (e->acknowledge_by_us <= ev->at_us)
      broke(s, R10_BORN, "escalated to %s at minute %.2f with its acknowledge deadline at %.2f",
            lk_tier_name(e->to_tier), minute(s, ev->at_us), minute(s, e->acknowledge_by_us));
  } else if (ev->body_case == LINKAGE__V1__EVENT__BODY_ROUTED) {
    if (ev->routed->acknowledge_by_us <= ev->at_us)
      broke(s, R10_BORN, "routed at minute %.2f with its acknowledge deadline at %.2f",
            minute(s, ev->at_us), minute(s, ev->routed->acknowledge_by_us));
  } else if (ev->body_case == LINKAGE__V1__EVENT__BODY_OVERDUE) {
    if (ev->at_us < ev->overdue->due_us)
      broke(s, R10_DEADLINE, "overdue at minute %.2f, due at %.2f", minute(s, ev->at_us),
            minute(s, ev->overdue->due_us));
  }
}

static void describe(const Linkage__V1__Event *ev, char *out, size_t n) {
  switch (ev->body_case) {
  case LINKAGE__V1__EVENT__BODY_ROUTED:
    snprintf(out, n, "%s", lk_tier_name(ev->routed->tier));
    break;
  case LINKAGE__V1__EVENT__BODY_ESCALATED:
    snprintf(out, n, "-> %s: %s", lk_tier_name(ev->escalated->to_tier), ev->escalated->reason);
    break;
  case LINKAGE__V1__EVENT__BODY_DISPATCHED:
    snprintf(out, n, "%s as %s%s at %s", ev->dispatched->unit_id, ev->dispatched->role,
             ev->dispatched->lead ? " (lead)" : "", lk_tier_name(ev->dispatched->tier));
    break;
  case LINKAGE__V1__EVENT__BODY_NO_UNIT_AVAILABLE:
    snprintf(out, n, "%s%s", ev->no_unit_available->role,
             ev->no_unit_available->lead ? " (lead)" : "");
    break;
  case LINKAGE__V1__EVENT__BODY_SUPPRESSED: snprintf(out, n, "by %s", ev->suppressed->by); break;
  default: out[0] = '\0'; break;
  }
}

/* Commits ev: the next position, folded into router, dispatch and the gateway. */
static void commit(struct sim *s, Linkage__V1__Event *ev) {
  ev->at_us = s->now;
  uint64_t pos = ++s->position;
  char what[256];
  describe(ev, what, sizeof what);
  trace(s, "    %8.2f  %-20s %s %s\n", minute(s, s->now), lk_event_type_name(ev->type),
        ev->incident_id, what);
  check_event(s, ev);
  router_state_apply(&s->r, pos, ev);
  dispatch_state_apply(&s->ds, pos, ev);
  gw_view_apply(&s->gw, pos, ev);
  if (ev->body_case == LINKAGE__V1__EVENT__BODY_DISPATCHED) schedule_answers(s, ev->dispatched);
}

static void commit_router(struct sim *s, const struct router_decision *d) {
  struct router_event_storage st;
  Linkage__V1__Event ev;
  router_event_build(d, "svc:router", s->now, &ev, &st);
  commit(s, &ev);
}

static void commit_dispatch(struct sim *s, const struct dispatch_decision *d, const char *actor) {
  struct dispatch_event_storage st;
  Linkage__V1__Event ev;
  dispatch_event_build(d, actor, s->now, &ev, &st);
  commit(s, &ev);
}

static void report(struct sim *s, const char *id, const struct lk_plan *p, const char *compound,
                   const char *building, Linkage__V1__Severity sev) {
  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
  Linkage__V1__Reported rep = LINKAGE__V1__REPORTED__INIT;
  Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
  char eid[LK_ID_MAX];
  snprintf(eid, sizeof eid, "%s/reported", id);
  loc.compound_id = (char *)compound;
  loc.building = (char *)building;
  r.device_id = (char *)id;
  r.sequence = 1;
  r.category = p->category;
  r.kind = p->kind ? p->kind : "";
  r.severity = sev;
  r.location = &loc;
  rep.report = &r;
  ev.event_id = eid;
  ev.incident_id = (char *)id;
  ev.type = LINKAGE__V1__EVENT_TYPE__REPORTED;
  ev.actor = "device:x";
  ev.body_case = LINKAGE__V1__EVENT__BODY_REPORTED;
  ev.reported = &rep;
  commit(s, &ev);
}

/* ---- settling: every decision the folds ask for now, until there is none ---- */

static int settle_once(struct sim *s) {
  int made = 0;
  struct router_decision rd;
  for (uint32_t slot = 1; slot < s->r.count; slot++) {
    if (router_decide_new(&s->r, slot, s->now, &rd) ||
        router_decide_reporters(&s->r, slot, s->now, &rd) ||
        router_decide_severity(&s->r, slot, s->now, &rd)) {
      commit_router(s, &rd);
      made = 1;
    }
  }
  for (uint32_t slot = 1; slot < s->ds.count; slot++) {
    struct dispatch_decision out[DISPATCH_MAX_ROLES + 4];
    size_t n = dispatch_decide(&s->ds, slot, s->status, s->now, out, sizeof out / sizeof out[0]);
    for (size_t i = 0; i < n; i++)
      commit_dispatch(s, &out[i], "svc:dispatch");
    made |= n > 0;
  }
  for (size_t i = 0; i < s->answer_count; i++) {
    struct answer *a = &s->answers[i];
    if (a->at_us > s->now || !a->kind) continue;
    struct dispatch_decision d;
    char err[256];
    int kind = a->kind;
    a->kind = 0;
    /* A unit may be told no (its call expired, the incident closed): that is not ours to check. */
    if (dispatch_answer_decision(&s->ds, a->unit, a->assignment, kind, "", s->now, &d, err,
                                 sizeof err) == LK_OK) {
      char actor[LK_ID_MAX + 8];
      snprintf(actor, sizeof actor, "unit:%s", a->unit);
      commit_dispatch(s, &d, actor);
      made = 1;
    }
  }
  return made;
}

static void settle(struct sim *s) {
  for (int i = 0; i < 64 && settle_once(s); i++) {
  }
}

/* The next moment something is due: a router or dispatch deadline, or a unit's answer. */
static int64_t next_due(struct sim *s) {
  int64_t next = INT64_MAX;
  const struct lk_deadline *t = lk_heap_peek(&s->r.deadlines);
  if (t && t->at_us < next) next = t->at_us;
  t = lk_heap_peek(&s->ds.deadlines);
  if (t && t->at_us < next) next = t->at_us;
  for (size_t i = 0; i < s->answer_count; i++)
    if (s->answers[i].kind && s->answers[i].at_us < next) next = s->answers[i].at_us;
  return next;
}

static void fire(struct sim *s) {
  struct lk_deadline dl;
  const struct lk_deadline *top;
  while ((top = lk_heap_peek(&s->r.deadlines)) && top->at_us <= s->now) {
    lk_heap_pop(&s->r.deadlines, &dl);
    router_state_fired(&s->r, &dl);
    struct router_decision d;
    if (router_decide_deadline(&s->r, &dl, s->now, &d)) commit_router(s, &d);
    if (d.recheck_us > 0)
      router_state_rearm(&s->r, (uint32_t)dl.owner, (enum router_deadline_kind)dl.kind,
                         d.recheck_us > s->now ? d.recheck_us : s->now + MIN);
  }
  while ((top = lk_heap_peek(&s->ds.deadlines)) && top->at_us <= s->now) {
    lk_heap_pop(&s->ds.deadlines, &dl);
    dispatch_state_fired(&s->ds, &dl);
    struct dispatch_decision d;
    int due = dl.kind == DISPATCH_DEADLINE_ACKNOWLEDGE
                  ? dispatch_decide_expiry(&s->ds, (uint32_t)dl.owner, s->now, &d)
                  : dispatch_decide_autoclose(&s->ds, (uint32_t)dl.owner, s->now, &d);
    if (due) commit_dispatch(s, &d, "svc:dispatch");
  }
}

/* ---- the settled state's rules ---- */

static void check_state(struct sim *s) {
  for (uint32_t slot = 1; slot < s->gw.count; slot++) {
    const struct gw_incident *g = &s->gw.incidents[slot];
    const struct router_incident *ri = router_incident_get(&s->r, g->id);
    const struct dispatch_incident *di = dispatch_incident_get(&s->ds, g->id);
    if (!ri || !di) continue;
    int over_gw = lk_state_over(g->state);
    int over_r = !router_incident_open(ri);
    int over_d = (di->flags & (DI_RESOLVED | DI_CLOSED | DI_MERGED)) != 0;
    if (over_gw != over_r || over_gw != over_d)
      broke(s, R12_AGREE, "%s: gateway says %s, router %s, dispatch %s", g->id,
            lk_state_name(g->state), over_r ? "over" : "open", over_d ? "over" : "open");
    if (over_gw || !(ri->flags & RI_ROUTED) || g->suppressed) continue;
    /* Rule 9: each need engaged (a live call of its role) or shown missing. */
    const struct lk_plan *p = lk_plan_find(s->d->plans, s->d->plan_count, di->category, di->kind);
    struct lk_need needs[LK_MAX_NEEDS];
    size_t nn = lk_roster_needs(p, &s->d->compounds[di->compound], di->tier, needs, LK_MAX_NEEDS);
    uint32_t missing = gw_incident_missing(g);
    for (size_t i = 0; i < nn; i++) {
      int live = 0;
      for (uint32_t k = 0; k < di->assignment_count && !live; k++) {
        const struct dispatch_assignment *a = &s->ds.assignments[di->assignments[k]];
        live = strcmp(a->role, needs[i].role) == 0 && a->state != DA_DECLINED;
      }
      int bit = lk_unit_type_index(needs[i].role);
      if (!live && !(bit >= 0 && (missing & (1u << bit))))
        broke(s, R9_ENGAGED, "%s at %s tier: %s has no live call and is not shown missing", g->id,
              lk_tier_name(di->tier), needs[i].role);
    }
    if (g->lead_unit[0]) {
      int live = 0;
      for (uint32_t k = 0; k < di->assignment_count && !live; k++) {
        const struct dispatch_assignment *a = &s->ds.assignments[di->assignments[k]];
        live = a->lead && a->state != DA_DECLINED && strcmp(a->unit_id, g->lead_unit) == 0;
      }
      if (!live)
        broke(s, R9_LEAD, "%s shows %s as lead, with no live lead call", g->id, g->lead_unit);
    }
  }
}

/* ---- playing one scenario ---- */

static int sim_open(struct sim *s, const struct lk_district *d, enum pattern pat, int hour) {
  memset(s, 0, sizeof *s);
  s->d = d;
  s->pattern = pat;
  /* Minute 0 at `hour` local time: DAY0 is 08:00 UTC, 16:00 local. */
  s->now = s->t0 = DAY0 + (int64_t)(((hour - 16) % 24 + 24) % 24) * 60 * MIN;
  struct router_policy rp = {.time_scale = 1,
                             .merge_window_us = 30 * MIN,
                             .merge_distance_m = 50,
                             .reporter_threshold = 5,
                             .reporter_window_us = 10 * MIN,
                             .retry_us = MIN};
  struct dispatch_policy dp = {
      .time_scale = 1, .verify_window_us = 120 * MIN, .utc_offset_min = UTC_OFFSET};
  if (router_state_init(&s->r, d, d->plans, d->plan_count, &rp) != LK_OK) return 0;
  if (dispatch_state_init(&s->ds, d, &dp) != LK_OK) return 0;
  if (gw_view_init(&s->gw, d) != LK_OK) return 0;
  for (size_t i = 0; i < d->unit_count && i < 64; i++)
    s->status[i].present = 1;
  return 1;
}

static void sim_close(struct sim *s) {
  router_state_close(&s->r);
  dispatch_state_close(&s->ds);
  gw_view_free(&s->gw);
}

/* Runs until nothing is due before `until`; checks after every step. */
static void run(struct sim *s, int64_t until) {
  settle(s);
  check_state(s);
  for (int steps = 0; steps < 2000 && !s->broke; steps++) {
    int64_t next = next_due(s);
    if (next == INT64_MAX || next > until) break;
    if (next > s->now) s->now = next;
    fire(s);
    settle(s);
    check_state(s);
  }
}

static void report_failure(struct sim *s, const char *scenario) {
  int r = s->broke - 1;
  if (failures[r]++ == 0) {
    printf("FAIL rule %s\n  scenario: %s\n  %s\n  events up to the break:\n%s", rule_names[r],
           scenario, s->why, s->trace);
  }
}

LK_TEST(generated_single_incidents_hold_the_outcome_rules) {
  char err[512];
  struct lk_district *d = lk_district_load("deploy/district/wenjiang.yaml", err, sizeof err);
  if (!LK_CHECK(d != NULL)) return;
  unsigned played = 0, escalated = 0, missing_seen = 0;
  for (int pat = 0; pat < P_COUNT; pat++) /* simplest first */
    for (int hour = 0; hour < 24; hour++)
      for (size_t p = 0; p < d->plan_count; p++)
        for (size_t c = 0; c < d->compound_count; c++)
          for (int sev = LINKAGE__V1__SEVERITY__SEVERITY_IV;
               sev >= LINKAGE__V1__SEVERITY__SEVERITY_I; sev--) {
            struct sim *s = calloc(1, sizeof *s);
            if (!s || !sim_open(s, d, (enum pattern)pat, hour)) {
              LK_CHECK(0);
              free(s);
              goto out;
            }
            char scenario[256];
            snprintf(scenario, sizeof scenario, "plan %s, %s (%s), severity %s, %02d:00 local, %s",
                     d->plans[p].id, d->compounds[c].id,
                     lk_governance_mode_name(d->compounds[c].mode),
                     lk_severity_name((Linkage__V1__Severity)sev), hour, pattern_names[pat]);
            report(s, "inc-g", &d->plans[p], d->compounds[c].id, d->compounds[c].buildings[0].id,
                   (Linkage__V1__Severity)sev);
            run(s, s->now + 24 * 60 * MIN);
            played++;
            const struct gw_incident *g = gw_view_get(&s->gw, "inc-g");
            if (g && g->tier > lk_severity_tier((Linkage__V1__Severity)sev) &&
                g->tier > d->plans[p].min_tier)
              escalated++;
            for (uint32_t i = 0; i < s->gw.count; i++)
              missing_seen += s->gw.incidents[i].no_unit_roles != 0;
            if (s->broke) report_failure(s, scenario);
            sim_close(s);
            free(s);
          }
out:
  printf("# %u generated single-incident scenarios played (%u escalated beyond their start, %u "
         "with a role nobody filled)\n",
         played, escalated, missing_seen);
  for (int r = 0; r < R_COUNT; r++) {
    if (failures[r]) printf("# rule %s broken in %d scenarios\n", rule_names[r], failures[r]);
    LK_CHECK(failures[r] == 0);
  }
  LK_CHECK(played >= 1000);
  LK_CHECK(escalated > 0 &&
           missing_seen > 0); /* the patterns reach the cases the rules are about */
  lk_district_destroy(&d);
}

/* An independent statement of rule 11, to hold the router's against. */
static int same_event(const struct lk_district *d, const struct router_incident *held,
                      const struct router_incident *by) {
  if (held->category != by->category || !held->kind[0] || strcmp(held->kind, by->kind) != 0)
    return 0;
  if (held->compound == by->compound && held->building && by->building &&
      strcmp(held->building, by->building) == 0)
    return 1;
  const struct lk_plan *p = lk_plan_find(d->plans, d->plan_count, by->category, by->kind);
  if (!p || !p->area_hazard) return 0;
  if (by->tier == LINKAGE__V1__TIER__DISTRICT) return 1;
  const struct lk_org *a = lk_district_community(d, d->compounds[held->compound].community_id);
  const struct lk_org *b = lk_district_community(d, d->compounds[by->compound].community_id);
  return a && b && strcmp(a->parent_id, b->parent_id) == 0;
}

LK_TEST(generated_pairs_hold_back_only_the_same_event_and_sort_by_urgency) {
  char err[512];
  struct lk_district *d = lk_district_load("deploy/district/wenjiang.yaml", err, sizeof err);
  if (!LK_CHECK(d != NULL)) return;
  unsigned played = 0, held = 0;
  /* A severe incident of plan P somewhere, then a minor one of plan Q elsewhere or in the same
   * building, nobody answering: whatever holds the second back must be the same event. */
  for (size_t p = 0; p < d->plan_count; p++)
    for (size_t q = 0; q < d->plan_count; q++)
      for (size_t c1 = 0; c1 < d->compound_count; c1++)
        for (size_t c2 = 0; c2 < d->compound_count; c2++)
          for (int same_building = 0; same_building < 2; same_building++) {
            struct sim *s = calloc(1, sizeof *s);
            if (!s || !sim_open(s, d, P_NOBODY, 10)) {
              LK_CHECK(0);
              free(s);
              goto out;
            }
            char scenario[256];
            snprintf(scenario, sizeof scenario, "%s II at %s, then %s IV at %s, %s building",
                     d->plans[p].id, d->compounds[c1].id, d->plans[q].id, d->compounds[c2].id,
                     same_building ? "the same" : "another");
            report(s, "inc-a", &d->plans[p], d->compounds[c1].id, d->compounds[c1].buildings[0].id,
                   LINKAGE__V1__SEVERITY__SEVERITY_II);
            settle(s);
            s->now += MIN;
            report(s, "inc-b", &d->plans[q], d->compounds[c2].id,
                   d->compounds[c2].buildings[same_building ? 0 : 1].id,
                   LINKAGE__V1__SEVERITY__SEVERITY_IV);
            run(s, s->now + 6 * 60 * MIN);
            played++;
            const struct gw_incident *b = gw_view_get(&s->gw, "inc-b");
            if (b && b->held_back_by[0]) {
              held++;
              struct router_incident *rb = router_incident_get(&s->r, "inc-b");
              struct router_incident *ra = router_incident_get(&s->r, b->held_back_by);
              if (!ra || !rb || !same_event(d, rb, ra))
                broke(s, R11_HOLD, "inc-b is held back by %s, which is not the same event",
                      b->held_back_by);
            }
            /* Rule 13 over the two: overdue first, then severity. */
            const struct gw_incident *a = gw_view_get(&s->gw, "inc-a");
            if (a && b && !lk_state_over(a->state) && !lk_state_over(b->state)) {
              int64_t da, db;
              const char *ka = gw_incident_deadline(a, &da), *kb = gw_incident_deadline(b, &db);
              int oa = a->overdue || (ka && da <= s->now), ob = b->overdue || (kb && db <= s->now);
              int first_a = gw_incident_urgency_cmp(a, b, s->now) < 0;
              int want_a = oa != ob
                               ? oa
                               : (a->severity != b->severity ? a->severity < b->severity : first_a);
              if (first_a != want_a || (gw_incident_urgency_cmp(b, a, s->now) < 0) == first_a)
                broke(s, R13_ORDER, "the dashboard lists %s first", first_a ? "inc-a" : "inc-b");
            }
            if (s->broke) report_failure(s, scenario);
            sim_close(s);
            free(s);
          }
out:
  printf("# %u generated pairs played, %u with a hold-back\n", played, held);
  LK_CHECK(failures[R11_HOLD] == 0 && failures[R13_ORDER] == 0);
  LK_CHECK(played >= 1000 && held > 0);
  lk_district_destroy(&d);
}

int main(void) {
  return lk_test_run_all();
}
