/* The router's decisions: plain functions of the folded state and the time.
 * Deadlines are computed from the deadline that was missed, not from the
 * moment the router noticed, so a router that was down fires what it owes
 * exactly as if it had never stopped. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "router.h"

int64_t router_plan_us(const struct router_policy *p, int minutes) {
  double scale = p->time_scale > 0 ? p->time_scale : 1.0;
  return (int64_t)((double)minutes * 60e6 / scale);
}

const char *router_organisation(const struct lk_district *d, const struct lk_compound *c,
                                Linkage__V1__Tier tier) {
  const struct lk_org *community = lk_district_community(d, c->community_id);
  switch (tier) {
  case LINKAGE__V1__TIER__COMPOUND: return c->id;
  case LINKAGE__V1__TIER__COMMUNITY: return c->community_id;
  case LINKAGE__V1__TIER__STREET: return community ? community->parent_id : d->district.id;
  default: return d->district.id;
  }
}

double router_distance_m(double lat1, double lon1, double lat2, double lon2) {
  const double r = 6371000.0, rad = M_PI / 180.0;
  double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
  double a = sin(dlat / 2) * sin(dlat / 2) +
             cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
  return 2 * r * asin(sqrt(a));
}

static const struct lk_plan *plan_of(const struct router_state *s,
                                     const struct router_incident *inc) {
  return lk_plan_find(s->plans, s->plan_count, inc->category, inc->kind);
}

/* The tier a severity starts at, raised to the plan's floor. */
static Linkage__V1__Tier start_tier(const struct lk_plan *p, Linkage__V1__Severity sev) {
  Linkage__V1__Tier t = lk_severity_tier(sev);
  if (p && p->min_tier > t) t = p->min_tier;
  return t;
}

static void set_deadlines(const struct router_state *s, const struct router_incident *inc,
                          Linkage__V1__Tier tier, int64_t base_us, struct router_decision *out) {
  const struct lk_plan *p = plan_of(s, inc);
  const struct lk_plan_deadline *d = p ? &p->deadlines[inc->severity][tier] : NULL;
  /* A plan validated at load time covers every reachable tier; a missing row (a severity
   * raised past what the plan foresaw) falls back to one hour to acknowledge, a day to resolve. */
  int ack = d && d->set ? d->acknowledge_min : 60;
  int res = d && d->set ? d->resolve_min : 1440;
  out->ack_by_us = base_us + router_plan_us(&s->policy, ack);
  out->resolve_by_us = base_us + router_plan_us(&s->policy, res);
}

static void begin(struct router_decision *out, const struct router_incident *inc, uint32_t slot,
                  Linkage__V1__EventType type) {
  memset(out, 0, sizeof *out);
  out->type = type;
  out->incident = slot;
  snprintf(out->incident_id, sizeof out->incident_id, "%s", inc->id);
}

const struct router_window *router_window_match(const struct router_state *s,
                                                const struct router_incident *inc) {
  for (uint32_t i = 0; i < s->window_count; i++) {
    const struct router_window *w = &s->windows[i];
    if (w->lifted || w->compound != inc->compound) continue;
    if (inc->reported_at_us < w->from_us || inc->reported_at_us >= w->to_us) continue;
    if (w->kind && strcmp(w->kind, inc->kind) != 0) continue;
    if (w->building && (!inc->building || strcmp(w->building, inc->building) != 0)) continue;
    return w;
  }
  return NULL;
}

/* The same place: the same building of the same compound, or within the merge distance. */
static int near_enough(const struct router_state *s, const struct router_incident *a,
                       const struct router_incident *b) {
  if (a->compound == b->compound && a->building && b->building &&
      strcmp(a->building, b->building) == 0)
    return 1;
  if (s->policy.merge_distance_m <= 0) return 0;
  if ((a->lat == 0 && a->lon == 0) || (b->lat == 0 && b->lon == 0)) return 0;
  return router_distance_m(a->lat, a->lon, b->lat, b->lon) <= s->policy.merge_distance_m;
}

static int same_place(const struct router_incident *a, const struct router_incident *b) {
  if ((a->building == NULL) != (b->building == NULL)) return 0;
  if (a->building && strcmp(a->building, b->building) != 0) return 0;
  return a->category == b->category && a->lat == b->lat && a->lon == b->lon;
}

/* A flood of reports from one place would walk the whole bucket for each report (quadratic):
 * the bucket remembers its last search, kept only when it is safe to reuse (router_decide_new).
 * A later report from the same place (category, building, coordinates) then has the same
 * earliest match as long as that match still qualifies: every entry after it failed for the
 * earlier report on grounds that hold for the later one too (out of the window, not open as of
 * its place in the ledger, not close by), none before it is earlier (so none stops the search
 * short of it), and a report that joins the bucket earlier than it drops the memo. Otherwise
 * the full search decides. */
static int remembered(const struct router_state *s, const struct router_incident *first,
                      const struct router_incident *inc, const struct router_incident **target) {
  if (!first->memo_query || !first->memo_target) return 0;
  const struct router_incident *q = &s->incidents[first->memo_query];
  const struct router_incident *t = &s->incidents[first->memo_target];
  if (q == inc || t == inc || !same_place(q, inc)) return 0;
  if (inc->reported_at_us < q->reported_at_us || inc->reported_position < q->reported_position)
    return 0;
  if (t->reported_at_us > inc->reported_at_us ||
      inc->reported_at_us - t->reported_at_us > s->policy.merge_window_us)
    return 0;
  if (t->ended_position && t->ended_position <= inc->reported_position) return 0;
  if (t->category != inc->category || !near_enough(s, t, inc)) return 0;
  *target = t;
  return 1;
}

int router_decide_new(const struct router_state *s, uint32_t slot, int64_t now_us,
                      struct router_decision *out) {
  const struct router_incident *inc = &s->incidents[slot];
  if (inc->flags & (RI_ROUTED | RI_MERGED | RI_CLOSED | RI_INFLIGHT)) return 0;

  /* Merge into the earliest open incident of the same kind close by, reported within the window.
   * The bucket lists newest first, so the last match is the earliest. */
  char key[LK_ID_MAX + 32];
  uint64_t head = 0;
  const struct router_incident *target = NULL;
  router_bucket_key(inc, key, sizeof key);
  lk_map_get(&s->buckets, key, &head);
  const struct router_incident *first = head ? &s->incidents[head] : NULL;
  if (first && s->policy.merge_window_us > 0 && remembered(s, first, inc, &target)) goto decided;
  /* For remembering the answer (see remembered()): the earliest time among the entries before
   * the target, and the latest among those after it. */
  int64_t earliest_before = INT64_MAX, seen_earliest = INT64_MAX, latest_after = INT64_MIN;
  for (uint32_t i = (uint32_t)head; i && s->policy.merge_window_us > 0;
       i = s->incidents[i].next_in_bucket) {
    const struct router_incident *o = &s->incidents[i];
    if (i == slot) continue;
    int64_t at = o->reported_at_us;
    if (target && at > latest_after) latest_after = at;
    /* Open as of this report's place in the ledger, not as of now: a router that decides late
     * (after a restart) must choose what the live one chose, or both a merge and a routing
     * could end up committed. */
    int open_then = !o->ended_position || o->ended_position > inc->reported_position;
    if (at <= inc->reported_at_us) {
      if (inc->reported_at_us - at > s->policy.merge_window_us) break;
      if (open_then && o->category == inc->category && near_enough(s, o, inc)) {
        target = o;
        earliest_before = seen_earliest;
        latest_after = INT64_MIN;
      }
    }
    if (at < seen_earliest) seen_earliest = at;
  }
  if (first) {
    /* A cache of this search, not state: the same answers come with or without it. Kept only
     * when the entries before the target are no earlier than it (a later report's search cannot
     * stop short of it) and those after it no later than this report (none can become a
     * candidate for a later one). */
    struct router_incident *m = (struct router_incident *)first;
    int keep =
        target && earliest_before >= target->reported_at_us && latest_after <= inc->reported_at_us;
    m->memo_query = slot;
    m->memo_target = keep ? (uint32_t)(target - s->incidents) : 0;
  }
decided:
  if (target) {
    const struct router_incident *o = target;
    begin(out, inc, slot, LINKAGE__V1__EVENT_TYPE__MERGED);
    lk_event_id(out->event_id, sizeof out->event_id, inc->id, out->type, NULL, 0);
    snprintf(out->by, sizeof out->by, "%s", o->id);
    snprintf(out->reason, sizeof out->reason, "same %s in the same %s within the merge window",
             inc->kind, inc->building && o->building ? "building" : "area");
    return 1;
  }

  const struct lk_compound *c = &s->district->compounds[inc->compound];
  const struct lk_plan *p = plan_of(s, inc);
  begin(out, inc, slot, LINKAGE__V1__EVENT_TYPE__ROUTED);
  lk_event_id(out->event_id, sizeof out->event_id, inc->id, out->type, NULL, 0);
  out->to_tier = start_tier(p, inc->severity);
  snprintf(out->organisation, sizeof out->organisation, "%s",
           router_organisation(s->district, c, out->to_tier));
  set_deadlines(s, inc, out->to_tier, inc->reported_at_us, out);
  const struct router_window *w = router_window_match(s, inc);
  if (w) snprintf(out->by, sizeof out->by, "plan-%s", w->id);
  (void)now_us;
  return 1;
}

static int owed_deadline(const struct router_incident *inc, const struct lk_deadline *d) {
  if (d->kind == ROUTER_DEADLINE_NO_UNIT) return (inc->flags & RI_NO_UNIT) != 0;
  if (d->kind == ROUTER_DEADLINE_ACKNOWLEDGE)
    return !(inc->flags & RI_ACKNOWLEDGED) && inc->ack_by_us > 0;
  return inc->resolve_by_us > 0;
}

static int64_t due_of(const struct router_incident *inc, const struct lk_deadline *d) {
  switch (d->kind) {
  case ROUTER_DEADLINE_ACKNOWLEDGE: return inc->ack_by_us;
  case ROUTER_DEADLINE_RESOLVE: return inc->resolve_by_us;
  default: return inc->no_unit_at_us;
  }
}

/* The area an organisation answers for holds the compound: its street for a street-tier
 * incident, the whole district for a district-tier one. */
static int in_area(const struct router_state *s, const struct router_incident *o,
                   const struct lk_compound *c) {
  if (o->tier >= LINKAGE__V1__TIER__DISTRICT) return 1;
  const struct lk_compound *oc = &s->district->compounds[o->compound];
  const struct lk_org *a = lk_district_community(s->district, c->community_id);
  const struct lk_org *b = lk_district_community(s->district, oc->community_id);
  return a && b && strcmp(a->parent_id, b->parent_id) == 0;
}

uint32_t router_inhibitor(const struct router_state *s, uint32_t slot) {
  const struct router_incident *inc = &s->incidents[slot];
  const struct lk_compound *c = &s->district->compounds[inc->compound];
  /* A report without a kind says too little to be the same event as anything. */
  if (!inc->kind[0]) return 0;
  for (uint32_t k = 0; k < s->high_count; k++) {
    uint32_t i = s->high[k];
    const struct router_incident *o = &s->incidents[i];
    if (i == slot || !router_incident_open(o) || !(o->flags & RI_ROUTED)) continue;
    if (o->tier < LINKAGE__V1__TIER__STREET || o->tier <= inc->tier) continue;
    if (o->category != inc->category || strcmp(o->kind, inc->kind) != 0) continue;
    /* The same event: the same place (building, or within the merge distance), or anywhere in
     * the higher organisation's area when the plan calls the hazard an area hazard. */
    if (near_enough(s, o, inc)) return i;
    const struct lk_plan *p = plan_of(s, o);
    if (p && p->area_hazard && in_area(s, o, c)) return i;
  }
  return 0;
}

/* Why nobody took a role: the no_unit_available folded into the incident. */
static void no_unit_reason(const struct router_state *s, const struct router_incident *inc,
                           char *out, size_t len) {
  const char *role = inc->no_unit_role ? lk_unit_types[inc->no_unit_role - 1] : "needed";
  if (inc->no_unit_tried)
    snprintf(out, len, "no %s unit answered at %s tier (%u called)", role, lk_tier_name(inc->tier),
             (unsigned)inc->no_unit_tried);
  else
    snprintf(out, len, "no %s unit on duty for %s at %s tier", role,
             s->district->compounds[inc->compound].id, lk_tier_name(inc->tier));
}

int router_decide_deadline(const struct router_state *s, const struct lk_deadline *d,
                           int64_t now_us, struct router_decision *out) {
  memset(out, 0, sizeof *out);
  if (d->owner == 0 || d->owner >= s->count) return 0;
  const struct router_incident *inc = &s->incidents[d->owner];
  if (!router_incident_open(inc) || (inc->flags & RI_PLANNED) || !owed_deadline(inc, d)) return 0;
  int64_t due = due_of(inc, d);
  int no_unit = d->kind == ROUTER_DEADLINE_NO_UNIT;
  const char *which = d->kind == ROUTER_DEADLINE_ACKNOWLEDGE ? "acknowledge"
                      : d->kind == ROUTER_DEADLINE_RESOLVE   ? "resolve"
                                                             : NULL;
  if (due > now_us) {
    /* Not yet (a stale heap entry, or a recheck ahead of time): look again at the real deadline. */
    memset(out, 0, sizeof *out);
    out->recheck_us = due;
    return 0;
  }
  if (inc->flags & RI_INFLIGHT) {
    memset(out, 0, sizeof *out);
    out->recheck_us = now_us + s->policy.retry_us;
    return 0;
  }

  if (inc->tier >= LINKAGE__V1__TIER__DISTRICT) {
    /* Nobody above the district: a missing role is shown as missing by every reader, and only a
     * deadline that passed raises the alarm. */
    if (no_unit) return 0;
    uint32_t done = d->kind == ROUTER_DEADLINE_ACKNOWLEDGE ? RI_ACK_OVERDUE : RI_RES_OVERDUE;
    if (inc->flags & done) return 0;
    begin(out, inc, d->owner, LINKAGE__V1__EVENT_TYPE__OVERDUE);
    lk_event_id(out->event_id, sizeof out->event_id, inc->id, out->type, which, inc->epoch);
    out->deadline = which;
    out->due_us = due;
    out->to_tier = inc->tier;
    return 1;
  }

  uint32_t inhibitor = router_inhibitor(s, d->owner);
  if (inhibitor) {
    /* Held back while the higher incident is open; look again after another period. */
    int64_t period = d->kind == ROUTER_DEADLINE_RESOLVE ? inc->resolve_by_us - inc->reported_at_us
                                                        : inc->ack_by_us - inc->reported_at_us;
    if (period < s->policy.retry_us) period = s->policy.retry_us;
    if (inc->flags & RI_SUPPRESSED_LOGGED) {
      memset(out, 0, sizeof *out);
      out->recheck_us = now_us + period;
      return 0;
    }
    const struct router_incident *o = &s->incidents[inhibitor];
    begin(out, inc, d->owner, LINKAGE__V1__EVENT_TYPE__SUPPRESSED);
    lk_event_id(out->event_id, sizeof out->event_id, inc->id, out->type, which ? which : "no_unit",
                inc->epoch);
    out->deadline = which ? which : "";
    out->due_us = due;
    snprintf(out->by, sizeof out->by, "%s", o->id);
    const struct lk_plan *p = plan_of(s, o);
    snprintf(out->reason, sizeof out->reason,
             "escalation held back: %s, the same %s %s, is open at %s tier", out->by, o->kind,
             p && p->area_hazard && !near_enough(s, o, inc) ? "in its area" : "nearby",
             lk_tier_name(o->tier));
    out->recheck_us = now_us + period;
    return 1;
  }

  const struct lk_compound *c = &s->district->compounds[inc->compound];
  begin(out, inc, d->owner, LINKAGE__V1__EVENT_TYPE__ESCALATED);
  lk_event_id(out->event_id, sizeof out->event_id, inc->id, out->type, NULL,
              (uint64_t)inc->escalations + 1);
  out->from_tier = inc->tier;
  out->to_tier = (Linkage__V1__Tier)(inc->tier + 1);
  snprintf(out->organisation, sizeof out->organisation, "%s",
           router_organisation(s->district, c, out->to_tier));
  if (no_unit) {
    no_unit_reason(s, inc, out->reason, sizeof out->reason);
  } else {
    snprintf(out->reason, sizeof out->reason, "%s deadline missed at %s tier", which,
             lk_tier_name(inc->tier));
    out->deadline = which;
    out->due_us = due;
  }
  /* From the missed deadline (a router that was down decides as if it had not been), or from
   * the moment dispatch found nobody: never from a deadline that has not passed. */
  set_deadlines(s, inc, out->to_tier, due, out);
  return 1;
}

int router_decide_reporters(const struct router_state *s, uint32_t slot, int64_t now_us,
                            struct router_decision *out) {
  const struct router_incident *inc = &s->incidents[slot];
  if (s->policy.reporter_threshold <= 0 || !router_incident_open(inc)) return 0;
  if (inc->severity <= LINKAGE__V1__SEVERITY__SEVERITY_I || (inc->flags & RI_INFLIGHT)) return 0;
  /* Count distinct reporters in the window ending now, since the last change of severity. */
  int64_t since = now_us - s->policy.reporter_window_us;
  if (inc->severity_changed_at_us > since) since = inc->severity_changed_at_us;
  int n = 0;
  for (uint32_t i = 0; i < inc->reporter_count; i++)
    if (inc->reporters[i].at_us >= since) n++;
  if (n < s->policy.reporter_threshold) return 0;
  begin(out, inc, slot, LINKAGE__V1__EVENT_TYPE__SEVERITY_CHANGED);
  lk_event_id(out->event_id, sizeof out->event_id, inc->id, out->type, NULL,
              (uint64_t)inc->severity_changes + 1);
  out->from_severity = inc->severity;
  out->to_severity = (Linkage__V1__Severity)(inc->severity - 1);
  snprintf(out->reason, sizeof out->reason, "%d independent reporters within %lld minutes", n,
           (long long)(s->policy.reporter_window_us *
                       (s->policy.time_scale > 0 ? s->policy.time_scale : 1) / 60000000));
  return 1;
}

int router_decide_severity(const struct router_state *s, uint32_t slot, int64_t now_us,
                           struct router_decision *out) {
  const struct router_incident *inc = &s->incidents[slot];
  if (!router_incident_open(inc) || !(inc->flags & RI_ROUTED) || (inc->flags & RI_INFLIGHT))
    return 0;
  Linkage__V1__Tier want = start_tier(plan_of(s, inc), inc->severity);
  if (want <= inc->tier) return 0;
  const struct lk_compound *c = &s->district->compounds[inc->compound];
  begin(out, inc, slot, LINKAGE__V1__EVENT_TYPE__ESCALATED);
  lk_event_id(out->event_id, sizeof out->event_id, inc->id, out->type, NULL,
              (uint64_t)inc->escalations + 1);
  out->from_tier = inc->tier;
  out->to_tier = want;
  snprintf(out->organisation, sizeof out->organisation, "%s",
           router_organisation(s->district, c, want));
  snprintf(out->reason, sizeof out->reason, "severity raised to %s",
           lk_severity_name(inc->severity));
  set_deadlines(s, inc, want, now_us, out);
  return 1;
}
