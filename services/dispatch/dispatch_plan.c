/* Which units to call: plain functions of the folded state, the district
 * data, unit presence and the time passed in. No clock, no sockets. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "linkage/error.h"
#include "linkage/v1/unit.pb-c.h"

int64_t dispatch_plan_us(const struct dispatch_policy *p, int minutes) {
  double scale = p && p->time_scale > 0 ? p->time_scale : 1.0;
  return (int64_t)((double)minutes * 60e6 / scale);
}

int dispatch_minute_of_day(int64_t now_us, int utc_offset_min) {
  int64_t m = now_us / 60000000;
  if (now_us < 0 && now_us % 60000000) m--; /* floor, not truncation */
  m = (m + utc_offset_min) % 1440;
  return (int)(m < 0 ? m + 1440 : m);
}

/* ---- units ---- */

static int excluded(const char *id, const char *const *exclude, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (exclude[i] && strcmp(exclude[i], id) == 0) return 1;
  return 0;
}

const struct lk_unit *dispatch_pick(const struct lk_district *d, const struct lk_compound *c,
                                    const char *building, const char *role,
                                    const struct dispatch_unit_status *status, int minute_of_day,
                                    const char *const *exclude, size_t exclude_count) {
  const struct lk_unit *best = NULL;
  int best_present = 0, best_cov = 0;
  unsigned best_load = 0;
  for (size_t i = 0; i < d->unit_count; i++) {
    const struct lk_unit *u = &d->units[i];
    if (strcmp(u->type, role) != 0) continue;
    if (minute_of_day >= 0 && !lk_unit_on_duty(u, minute_of_day)) continue;
    if (excluded(u->id, exclude, exclude_count)) continue;
    int cov = lk_unit_coverage(d, u, c, building);
    if (!cov) continue;
    int present = status ? status[i].present != 0 : 0;
    unsigned load = status ? status[i].load : 0;
    int better = !best || present > best_present ||
                 (present == best_present &&
                  (cov > best_cov ||
                   (cov == best_cov &&
                    (load < best_load || (load == best_load && strcmp(u->id, best->id) < 0)))));
    if (better) {
      best = u;
      best_present = present;
      best_cov = cov;
      best_load = load;
    }
  }
  return best;
}

/* ---- decisions ---- */

static int open_state(uint8_t st) {
  return st == DA_DISPATCHED || st == DA_ACKNOWLEDGED || st == DA_ON_SCENE;
}

int dispatch_verifies(const struct dispatch_assignment *a) {
  return strcmp(a->role, "grid_worker") == 0;
}

static void begin(struct dispatch_decision *out, const struct dispatch_incident *inc, uint32_t slot,
                  Linkage__V1__EventType type) {
  memset(out, 0, sizeof *out);
  out->type = type;
  out->incident = slot;
  out->tier = inc->tier;
  snprintf(out->incident_id, sizeof out->incident_id, "%s", inc->id);
}

/* What the incident has for one role: the units called at its current tier, the assignments not
 * declined (each fills a place), the places wanted (one, plus one per backup request), the
 * highest n, and a declined assignment nobody has taken over yet. */
struct role_tally {
  const char *tried[64];
  size_t tried_count;
  unsigned live, wanted;
  unsigned max_n;
  uint32_t unreplaced[DISPATCH_MAX_ROLES];
  size_t unreplaced_count;
  int resolved;
};

static void tally(const struct dispatch_state *s, const struct dispatch_incident *inc,
                  const char *role, struct role_tally *t) {
  memset(t, 0, sizeof *t);
  t->wanted = 1;
  for (uint32_t i = 0; i < inc->assignment_count; i++) {
    const struct dispatch_assignment *a = &s->assignments[inc->assignments[i]];
    if (strcmp(a->role, role) != 0) continue;
    /* A new tier is a new call-out: a unit that did not answer below may be called again. */
    if (a->tier == inc->tier && t->tried_count < sizeof t->tried / sizeof t->tried[0])
      t->tried[t->tried_count++] = a->unit_id;
    if (a->n > t->max_n) t->max_n = a->n;
    if (a->backup) t->wanted++;
    if (a->state == DA_RESOLVED) t->resolved = 1;
    if (a->state != DA_DECLINED)
      t->live++;
    else if (!a->replaced && t->unreplaced_count < DISPATCH_MAX_ROLES)
      t->unreplaced[t->unreplaced_count++] = inc->assignments[i];
  }
}

static const struct lk_plan *plan_of(const struct dispatch_state *s,
                                     const struct dispatch_incident *inc) {
  return lk_plan_find(s->district->plans, s->district->plan_count, inc->category, inc->kind);
}

size_t dispatch_decide(const struct dispatch_state *s, uint32_t slot,
                       const struct dispatch_unit_status *status, int64_t now_us,
                       struct dispatch_decision *out, size_t max) {
  if (slot == 0 || slot >= s->count || !s->district) return 0;
  const struct dispatch_incident *inc = &s->incidents[slot];
  if (!(inc->flags & DI_ROUTED) ||
      (inc->flags & (DI_RESOLVED | DI_CLOSED | DI_MERGED | DI_INFLIGHT)))
    return 0;
  const struct lk_plan *plan = plan_of(s, inc);
  const struct lk_compound *c = &s->district->compounds[inc->compound];
  struct lk_need needs[DISPATCH_MAX_ROLES];
  size_t nn = lk_roster_needs(plan, c, inc->tier, needs, DISPATCH_MAX_ROLES);
  int minute = dispatch_minute_of_day(now_us, s->policy.utc_offset_min);
  size_t n = 0;
  int pending = 0; /* a role still waits for a unit (or for its no_unit_available) */

  for (size_t i = 0; i < nn; i++) {
    struct role_tally t;
    tally(s, inc, needs[i].role, &t);
    size_t replaced_here = 0;
    while (t.live < t.wanted) {
      const struct lk_unit *u = dispatch_pick(s->district, c, inc->building, needs[i].role, status,
                                              minute, t.tried, t.tried_count);
      if (!u) {
        if (inc->no_unit_mask & (1u << i)) break; /* said already at this tier */
        pending = 1;
        if (n == max) break;
        struct dispatch_decision *d = &out[n++];
        begin(d, inc, slot, LINKAGE__V1__EVENT_TYPE__NO_UNIT_AVAILABLE);
        char q[DISPATCH_ROLE_MAX + 32];
        snprintf(q, sizeof q, "%.31s/%s", needs[i].role, lk_tier_name(inc->tier));
        lk_event_id(d->event_id, sizeof d->event_id, inc->id, d->type, q, 0);
        snprintf(d->role, sizeof d->role, "%.31s", needs[i].role);
        d->tried = (unsigned)t.tried_count;
        d->lead = needs[i].lead;
        snprintf(d->reason, sizeof d->reason,
                 "no %.31s unit left for %s at %s tier: none other covers it and is on duty at "
                 "%02d:%02d local time (%zu called at this tier)",
                 needs[i].role, c->id, lk_tier_name(inc->tier), minute / 60, minute % 60,
                 t.tried_count);
        break;
      }
      pending = 1;
      if (n == max) break;
      struct dispatch_decision *d = &out[n++];
      begin(d, inc, slot, LINKAGE__V1__EVENT_TYPE__DISPATCHED);
      unsigned nth = ++t.max_n;
      snprintf(d->role, sizeof d->role, "%.31s", needs[i].role);
      snprintf(d->assignment_id, sizeof d->assignment_id, "%s/%.31s/%u", inc->id, needs[i].role,
               nth);
      lk_event_id(d->event_id, sizeof d->event_id, inc->id, d->type, needs[i].role, nth);
      snprintf(d->unit_id, sizeof d->unit_id, "%s", u->id);
      d->lead = needs[i].lead;
      d->acknowledge_by_us = now_us + dispatch_plan_us(&s->policy, needs[i].acknowledge_min);
      d->arrive_by_us = now_us + dispatch_plan_us(&s->policy, needs[i].arrive_min);
      d->resolve_by_us = now_us + dispatch_plan_us(&s->policy, needs[i].resolve_min);
      if (replaced_here < t.unreplaced_count)
        snprintf(d->replaces, sizeof d->replaces, "%s",
                 s->assignments[t.unreplaced[replaced_here++]].id);
      if (t.tried_count < sizeof t.tried / sizeof t.tried[0]) t.tried[t.tried_count++] = u->id;
      t.live++;
    }
  }
  /* Coordinators' calls: each answered by one call-out of its unit, or of the best unit of its
   * role (one tried before included: calling again is the point; off duty when nobody of the
   * role is on duty, since a coordinator asked). */
  for (uint32_t k = 0; k < inc->call_count; k++) {
    const struct dispatch_call *call = &inc->calls[k];
    if (call->done) continue;
    pending = 1;
    const struct lk_unit *u = call->unit_id ? lk_district_unit(s->district, call->unit_id)
                                            : dispatch_pick(s->district, c, inc->building,
                                                            call->role, status, minute, NULL, 0);
    if (!u) u = dispatch_pick(s->district, c, inc->building, call->role, status, -1, NULL, 0);
    if (!u || n == max) continue;
    struct role_tally t;
    tally(s, inc, call->role, &t);
    for (uint32_t j = 0; j < k; j++) /* calls decided in this same pass */
      if (!inc->calls[j].done && strcmp(inc->calls[j].role, call->role) == 0) t.max_n++;
    int lead = 0, ack = 15, arrive = 30, resolve = 240;
    for (size_t i = 0; i < nn; i++)
      if (strcmp(needs[i].role, call->role) == 0) {
        lead = needs[i].lead;
        ack = needs[i].acknowledge_min, arrive = needs[i].arrive_min;
        resolve = needs[i].resolve_min;
      }
    struct dispatch_decision *d = &out[n++];
    begin(d, inc, slot, LINKAGE__V1__EVENT_TYPE__DISPATCHED);
    unsigned nth = t.max_n + 1;
    snprintf(d->role, sizeof d->role, "%.31s", call->role);
    snprintf(d->assignment_id, sizeof d->assignment_id, "%s/%.31s/%u", inc->id, call->role, nth);
    lk_event_id(d->event_id, sizeof d->event_id, inc->id, d->type, call->role, nth);
    snprintf(d->unit_id, sizeof d->unit_id, "%s", u->id);
    snprintf(d->called_by, sizeof d->called_by, "%s", call->event_id);
    d->lead = lead;
    d->acknowledge_by_us = now_us + dispatch_plan_us(&s->policy, ack);
    d->arrive_by_us = now_us + dispatch_plan_us(&s->policy, arrive);
    d->resolve_by_us = now_us + dispatch_plan_us(&s->policy, resolve);
    if (t.unreplaced_count)
      snprintf(d->replaces, sizeof d->replaces, "%s", s->assignments[t.unreplaced[0]].id);
  }
  if (pending || n) return n;

  /* The resolution barrier: the lead has resolved and nobody's part is still open (declined
   * assignments, replaced or not, do not hold it up; nor does a grid worker's, whose part is
   * to check the result: its VERIFIED closes the incident). */
  const struct lk_need *lead = NULL;
  for (size_t i = 0; i < nn && !lead; i++)
    if (needs[i].lead) lead = &needs[i];
  if (!lead || inc->assignment_count == 0) return 0;
  const struct dispatch_assignment *lead_done = NULL;
  for (uint32_t i = 0; i < inc->assignment_count; i++) {
    const struct dispatch_assignment *a = &s->assignments[inc->assignments[i]];
    if (open_state(a->state) && !dispatch_verifies(a)) return 0;
    if (a->state == DA_RESOLVED && strcmp(a->role, lead->role) == 0 && !lead_done) lead_done = a;
  }
  if (!lead_done || max == 0) return 0;
  struct dispatch_decision *d = &out[0];
  begin(d, inc, slot, LINKAGE__V1__EVENT_TYPE__RESOLVED);
  lk_event_id(d->event_id, sizeof d->event_id, inc->id, d->type, NULL, 0);
  snprintf(d->role, sizeof d->role, "%s", lead->role);
  snprintf(d->unit_id, sizeof d->unit_id, "%s", lead_done->unit_id);
  snprintf(d->reason, sizeof d->reason,
           "the lead (%s, unit %s) resolved and every unit's part is done", lead->role,
           lead_done->unit_id);
  return 1;
}

int dispatch_decide_expiry(const struct dispatch_state *s, uint32_t assignment, int64_t now_us,
                           struct dispatch_decision *out) {
  if (assignment == 0 || assignment >= s->assignment_count) return 0;
  const struct dispatch_assignment *a = &s->assignments[assignment];
  if (a->state != DA_DISPATCHED || a->acknowledge_by_us > now_us) return 0;
  const struct dispatch_incident *inc = &s->incidents[a->incident];
  if (inc->flags & (DI_CLOSED | DI_MERGED)) return 0;
  begin(out, inc, a->incident, LINKAGE__V1__EVENT_TYPE__UNIT_DECLINED);
  lk_event_id(out->event_id, sizeof out->event_id, inc->id, out->type, a->role, a->n);
  snprintf(out->assignment_id, sizeof out->assignment_id, "%s", a->id);
  snprintf(out->unit_id, sizeof out->unit_id, "%s", a->unit_id);
  snprintf(out->role, sizeof out->role, "%s", a->role);
  snprintf(out->note, sizeof out->note, "no answer before the acknowledge deadline");
  return 1;
}

/* The verification window in plan minutes, for the reason text. */
static long long window_minutes(const struct dispatch_policy *p) {
  double scale = p->time_scale > 0 ? p->time_scale : 1.0;
  return (long long)((double)p->verify_window_us * scale / 60e6 + 0.5);
}

int dispatch_decide_autoclose(const struct dispatch_state *s, uint32_t slot, int64_t now_us,
                              struct dispatch_decision *out) {
  if (slot == 0 || slot >= s->count) return 0;
  const struct dispatch_incident *inc = &s->incidents[slot];
  if (!(inc->flags & DI_RESOLVED) || (inc->flags & (DI_CLOSED | DI_MERGED))) return 0;
  if (inc->resolved_at_us + s->policy.verify_window_us > now_us) return 0;
  begin(out, inc, slot, LINKAGE__V1__EVENT_TYPE__CLOSED);
  lk_event_id(out->event_id, sizeof out->event_id, inc->id, out->type, "dispatch", 0);
  snprintf(out->reason, sizeof out->reason,
           "not verified within %lld minutes; closed automatically", window_minutes(&s->policy));
  return 1;
}

/* ---- answers ---- */

static const char *kind_word(int kind) {
  switch (kind) {
  case LINKAGE__V1__ANSWER__KIND__ACKNOWLEDGED: return "acknowledged";
  case LINKAGE__V1__ANSWER__KIND__ON_SCENE: return "on_scene";
  case LINKAGE__V1__ANSWER__KIND__RESOLVED: return "resolved";
  case LINKAGE__V1__ANSWER__KIND__DECLINED: return "declined";
  case LINKAGE__V1__ANSWER__KIND__NEED_BACKUP: return "need_backup";
  case LINKAGE__V1__ANSWER__KIND__VERIFIED: return "verified";
  default: return NULL;
  }
}

static const char *state_word(uint8_t st) {
  switch (st) {
  case DA_DISPATCHED: return "dispatched";
  case DA_ACKNOWLEDGED: return "acknowledged";
  case DA_ON_SCENE: return "on scene";
  case DA_RESOLVED: return "resolved";
  case DA_DECLINED: return "declined";
  default: return "unknown";
  }
}

#define REFUSE(...)                                                                                \
  do {                                                                                             \
    snprintf(err, errlen, __VA_ARGS__);                                                            \
    return LK_EINVAL;                                                                              \
  } while (0)

/* VERIFIED names an assignment of the incident (any unit's) or the incident itself. */
static int verify(const struct dispatch_state *s, const struct lk_unit *u, const char *target,
                  struct dispatch_decision *out, char *err, size_t errlen) {
  uint64_t v;
  uint32_t slot = 0;
  if (lk_map_get(&s->assignment_by_id, target, &v))
    slot = s->assignments[v].incident;
  else if (lk_map_get(&s->by_id, target, &v))
    slot = (uint32_t)v;
  if (!slot) REFUSE("unknown assignment or incident \"%s\"", target);
  const struct dispatch_incident *inc = &s->incidents[slot];
  const struct lk_compound *c = &s->district->compounds[inc->compound];
  if (strcmp(u->type, "grid_worker") != 0)
    REFUSE("only a grid worker verifies on site; unit \"%s\" is a %s", u->id, u->type);
  if (lk_unit_coverage(s->district, u, c, NULL) == 0)
    REFUSE("unit \"%s\" does not cover %s, where incident %s is", u->id, c->id, inc->id);
  if (inc->flags & DI_CLOSED) REFUSE("incident %s is already closed", inc->id);
  if (inc->flags & DI_MERGED) REFUSE("incident %s was merged into another", inc->id);
  if (!(inc->flags & DI_RESOLVED)) {
    /* Say whom the check waits for: the units whose part is still open. */
    char who[300] = "";
    size_t len = 0;
    for (uint32_t i = 0; i < inc->assignment_count && len < sizeof who - 80; i++) {
      const struct dispatch_assignment *a = &s->assignments[inc->assignments[i]];
      if (!open_state(a->state) || dispatch_verifies(a)) continue;
      len += (size_t)snprintf(who + len, sizeof who - len, "%s%s (%s%s, %s)", len ? ", " : "",
                              a->unit_id, a->role, a->lead ? ", lead" : "", state_word(a->state));
    }
    if (who[0]) REFUSE("incident %s is not resolved yet: waiting for %s", inc->id, who);
    REFUSE("incident %s is not resolved yet: the lead has not resolved its part", inc->id);
  }
  begin(out, inc, slot, LINKAGE__V1__EVENT_TYPE__CLOSED);
  lk_event_id(out->event_id, sizeof out->event_id, inc->id, out->type, "dispatch", 0);
  snprintf(out->unit_id, sizeof out->unit_id, "%s", u->id);
  snprintf(out->reason, sizeof out->reason, "verified on site by unit:%s", u->id);
  return LK_OK;
}

int dispatch_answer_decision(const struct dispatch_state *s, const char *unit_id,
                             const char *assignment_id, int kind, const char *note, int64_t now_us,
                             struct dispatch_decision *out, char *err, size_t errlen) {
  (void)now_us;
  memset(out, 0, sizeof *out);
  const char *word = kind_word(kind);
  if (!word) REFUSE("answer kind %d is not known", kind);
  const struct lk_unit *u = s->district ? lk_district_unit(s->district, unit_id) : NULL;
  if (!u) REFUSE("unknown unit \"%s\"", unit_id ? unit_id : "");
  if (!assignment_id || !assignment_id[0]) REFUSE("the answer names no assignment");
  if (!note) note = "";
  size_t note_len = strlen(note);
  /* The one place the note's limit is checked: the decision's buffer is sized for it. */
  if (note_len > DISPATCH_NOTE_MAX)
    REFUSE("note is %zu bytes; at most %d", note_len, DISPATCH_NOTE_MAX);
  if (!lk_utf8_valid(note, note_len)) REFUSE("note is not valid UTF-8");
  if (kind == LINKAGE__V1__ANSWER__KIND__VERIFIED)
    return verify(s, u, assignment_id, out, err, errlen);

  uint64_t idx;
  if (!lk_map_get(&s->assignment_by_id, assignment_id, &idx))
    REFUSE("unknown assignment \"%s\"", assignment_id);
  const struct dispatch_assignment *a = &s->assignments[idx];
  const struct dispatch_incident *inc = &s->incidents[a->incident];
  if (strcmp(a->unit_id, unit_id) != 0)
    REFUSE("assignment \"%s\" belongs to unit \"%s\", not \"%s\"", a->id, a->unit_id, unit_id);
  if (inc->flags & DI_CLOSED) REFUSE("incident %s is closed", inc->id);
  if (inc->flags & DI_MERGED) REFUSE("incident %s was merged into another", inc->id);

  Linkage__V1__EventType type = LINKAGE__V1__EVENT_TYPE__EVENT_TYPE_UNSPECIFIED;
  /* The same answer again is allowed: it names the same event, which the ledger drops. */
  switch (kind) {
  case LINKAGE__V1__ANSWER__KIND__ACKNOWLEDGED:
  case LINKAGE__V1__ANSWER__KIND__ON_SCENE:
  case LINKAGE__V1__ANSWER__KIND__NEED_BACKUP:
    if (!open_state(a->state))
      REFUSE("assignment \"%s\" is %s; it can no longer be answered %s", a->id,
             a->state == DA_DECLINED && a->replaced ? "declined and taken over by another unit"
                                                    : state_word(a->state),
             word);
    type =
        kind == LINKAGE__V1__ANSWER__KIND__ACKNOWLEDGED ? LINKAGE__V1__EVENT_TYPE__UNIT_ACKNOWLEDGED
        : kind == LINKAGE__V1__ANSWER__KIND__ON_SCENE   ? LINKAGE__V1__EVENT_TYPE__UNIT_ON_SCENE
                                                        : LINKAGE__V1__EVENT_TYPE__BACKUP_REQUESTED;
    break;
  case LINKAGE__V1__ANSWER__KIND__RESOLVED:
    if (a->state == DA_DECLINED)
      REFUSE("assignment \"%s\" is declined; it can no longer be resolved", a->id);
    type = LINKAGE__V1__EVENT_TYPE__UNIT_RESOLVED;
    break;
  case LINKAGE__V1__ANSWER__KIND__DECLINED:
    if (a->state == DA_RESOLVED)
      REFUSE("assignment \"%s\" is resolved; it can no longer be declined", a->id);
    type = LINKAGE__V1__EVENT_TYPE__UNIT_DECLINED;
    break;
  default: REFUSE("answer kind %d is not known", kind);
  }
  begin(out, inc, a->incident, type);
  lk_event_id(out->event_id, sizeof out->event_id, inc->id, type, a->role, a->n);
  snprintf(out->assignment_id, sizeof out->assignment_id, "%s", a->id);
  snprintf(out->unit_id, sizeof out->unit_id, "%s", a->unit_id);
  snprintf(out->role, sizeof out->role, "%s", a->role);
  snprintf(out->note, sizeof out->note, "%s", note);
  return LK_OK;
}

int dispatch_decide_answer(const struct dispatch_state *s, const char *unit_id,
                           const char *assignment_id, int kind, const char *note, int64_t now_us,
                           Linkage__V1__EventType *type, char *event_id, size_t event_id_len,
                           char *err, size_t errlen) {
  struct dispatch_decision d;
  int rc = dispatch_answer_decision(s, unit_id, assignment_id, kind, note, now_us, &d, err, errlen);
  if (rc != LK_OK) return rc;
  if (type) *type = d.type;
  if (event_id) snprintf(event_id, event_id_len, "%s", d.event_id);
  return LK_OK;
}
