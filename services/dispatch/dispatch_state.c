/* Dispatch's state: a fold of committed events. Nothing here reads a clock
 * or a socket; times come from the events. Besides incidents and
 * assignments it keeps each unit's load (open assignments) and one heap of
 * deadlines: the acknowledge deadline of every unanswered assignment and the
 * automatic close of every resolved incident. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "linkage/error.h"

int dispatch_state_init(struct dispatch_state *s, const struct lk_district *d,
                        const struct dispatch_policy *policy) {
  memset(s, 0, sizeof *s);
  s->district = d;
  s->policy = *policy;
  s->cap = 1024;
  s->incidents = calloc(s->cap, sizeof *s->incidents);
  s->assignment_cap = 1024;
  s->assignments = calloc(s->assignment_cap, sizeof *s->assignments);
  s->unit_load = calloc(d && d->unit_count ? d->unit_count : 1, sizeof *s->unit_load);
  if (!s->incidents || !s->assignments || !s->unit_load) goto fail_arrays;
  s->count = 1; /* slot 0 means "none" */
  s->assignment_count = 1;
  if (lk_map_init(&s->by_id, 1024) != LK_OK) goto fail_arrays;
  if (lk_map_init(&s->assignment_by_id, 1024) != LK_OK) goto fail_assignment_map;
  if (lk_heap_init(&s->deadlines, 1024) != LK_OK) goto fail_heap;
  return LK_OK;

fail_heap:
  lk_map_close(&s->assignment_by_id);
fail_assignment_map:
  lk_map_close(&s->by_id);
fail_arrays:
  free(s->incidents);
  free(s->assignments);
  free(s->unit_load);
  memset(s, 0, sizeof *s);
  return LK_ENOMEM;
}

void dispatch_state_close(struct dispatch_state *s) {
  for (uint32_t i = 1; i < s->count; i++) {
    struct dispatch_incident *inc = &s->incidents[i];
    free(inc->id);
    free(inc->building);
    free(inc->kind);
    free(inc->description);
    free(inc->assignments);
    for (uint32_t k = 0; k < inc->call_count; k++) {
      free(inc->calls[k].unit_id);
      free(inc->calls[k].event_id);
    }
    free(inc->calls);
  }
  free(s->incidents);
  for (uint32_t i = 1; i < s->assignment_count; i++) {
    free(s->assignments[i].id);
    free(s->assignments[i].unit_id);
  }
  free(s->assignments);
  free(s->unit_load);
  lk_map_close(&s->by_id);
  lk_map_close(&s->assignment_by_id);
  lk_heap_close(&s->deadlines);
  memset(s, 0, sizeof *s);
}

struct dispatch_incident *dispatch_incident_get(struct dispatch_state *s, const char *id) {
  uint64_t slot;
  if (!id || !lk_map_get(&s->by_id, id, &slot)) return NULL;
  return &s->incidents[slot];
}

struct dispatch_assignment *dispatch_assignment_get(struct dispatch_state *s, const char *id) {
  uint64_t i;
  if (!id || !lk_map_get(&s->assignment_by_id, id, &i)) return NULL;
  return &s->assignments[i];
}

/* ---- deadlines ---- */

static uint32_t *handle_of(struct dispatch_state *s, uint32_t kind, uint64_t owner) {
  if (kind == DISPATCH_DEADLINE_ACKNOWLEDGE && owner > 0 && owner < s->assignment_count)
    return &s->assignments[owner].deadline_handle;
  if (kind == DISPATCH_DEADLINE_CLOSE && owner > 0 && owner < s->count)
    return &s->incidents[owner].close_handle;
  return NULL;
}

static void arm(struct dispatch_state *s, uint32_t kind, uint64_t owner, int64_t at_us) {
  uint32_t *h = handle_of(s, kind, owner);
  if (!h) return;
  lk_heap_remove(&s->deadlines, *h);
  *h = lk_heap_push(&s->deadlines,
                    (struct lk_deadline){.at_us = at_us, .owner = owner, .kind = kind});
}

static void disarm(struct dispatch_state *s, uint32_t kind, uint64_t owner) {
  uint32_t *h = handle_of(s, kind, owner);
  if (!h) return;
  lk_heap_remove(&s->deadlines, *h);
  *h = LK_HEAP_NONE;
}

void dispatch_state_fired(struct dispatch_state *s, const struct lk_deadline *d) {
  uint32_t *h = handle_of(s, d->kind, d->owner);
  if (h) *h = LK_HEAP_NONE;
}

void dispatch_state_rearm(struct dispatch_state *s, const struct lk_deadline *d, int64_t at_us) {
  arm(s, d->kind, d->owner, at_us);
}

/* ---- incidents ---- */

static uint32_t slot_of(struct dispatch_state *s, const char *id) {
  uint64_t slot;
  return lk_map_get(&s->by_id, id, &slot) ? (uint32_t)slot : 0;
}

static uint32_t add_incident(struct dispatch_state *s, const Linkage__V1__Event *ev) {
  const Linkage__V1__Report *r = ev->reported->report;
  const Linkage__V1__Location *loc = r ? r->location : NULL;
  if (!r || !loc || !s->district) return 0;
  const struct lk_compound *c = lk_district_compound(s->district, loc->compound_id);
  if (!c) return 0; /* not ours to dispatch: the intake refuses these, an old ledger may not */
  if (s->count == s->cap) {
    uint32_t cap = s->cap * 2;
    struct dispatch_incident *n = realloc(s->incidents, cap * sizeof *n);
    if (!n) return 0;
    memset(n + s->cap, 0, (cap - s->cap) * sizeof *n);
    s->incidents = n;
    s->cap = cap;
  }
  uint32_t slot = s->count;
  struct dispatch_incident *inc = &s->incidents[slot];
  memset(inc, 0, sizeof *inc);
  inc->id = strdup(ev->incident_id);
  inc->kind = strdup(r->kind ? r->kind : "");
  inc->description = strdup(r->description ? r->description : "");
  inc->building = loc->building && loc->building[0] ? strdup(loc->building) : NULL;
  if (!inc->id || !inc->kind || !inc->description ||
      (loc->building && loc->building[0] && !inc->building))
    goto fail;
  inc->compound = (uint32_t)(c - s->district->compounds);
  inc->category = r->category;
  inc->severity = r->severity;
  inc->exercise = r->exercise;
  inc->lat = loc->lat;
  inc->lon = loc->lon;
  inc->reported_at_us = ev->at_us;
  inc->close_handle = LK_HEAP_NONE;
  if (lk_map_put(&s->by_id, inc->id, slot) != LK_OK) goto fail;
  s->count++;
  return slot;

fail:
  free(inc->id);
  free(inc->kind);
  free(inc->description);
  free(inc->building);
  memset(inc, 0, sizeof *inc);
  return 0;
}

static void set_tier(struct dispatch_incident *inc, Linkage__V1__Tier tier) {
  if (inc->tier == tier) return;
  inc->tier = tier;
  /* Roles nobody could fill are tried again at the new tier. */
  inc->no_unit_mask = 0;
  inc->flags &= ~(uint32_t)DI_NO_UNIT;
}

/* ---- assignments ---- */

static void release_load(struct dispatch_state *s, struct dispatch_assignment *a) {
  if (!a->loaded) return;
  a->loaded = 0;
  const struct lk_unit *u = lk_district_unit(s->district, a->unit_id);
  if (u) {
    size_t i = (size_t)(u - s->district->units);
    if (s->unit_load[i]) s->unit_load[i]--;
  }
}

static int attach(struct dispatch_incident *inc, uint32_t index) {
  if (inc->assignment_count == inc->assignment_cap) {
    uint32_t cap = inc->assignment_cap ? inc->assignment_cap * 2 : 8;
    uint32_t *n = realloc(inc->assignments, cap * sizeof *n);
    if (!n) return LK_ENOMEM;
    inc->assignments = n;
    inc->assignment_cap = cap;
  }
  inc->assignments[inc->assignment_count++] = index;
  return LK_OK;
}

/* n is the assignment id's last component: "<incident>/<role>/<n>". */
static uint16_t nth_of(const char *assignment_id) {
  const char *slash = strrchr(assignment_id, '/');
  long n = slash ? strtol(slash + 1, NULL, 10) : 0;
  return n > 0 && n < 65536 ? (uint16_t)n : 0;
}

static void add_assignment(struct dispatch_state *s, uint32_t slot, const Linkage__V1__Event *ev) {
  const Linkage__V1__Dispatched *dp = ev->dispatched;
  uint64_t seen;
  if (!dp->assignment_id[0] || lk_map_get(&s->assignment_by_id, dp->assignment_id, &seen)) return;
  if (strlen(dp->role) >= DISPATCH_ROLE_MAX) return;
  if (s->assignment_count == s->assignment_cap) {
    uint32_t cap = s->assignment_cap * 2;
    struct dispatch_assignment *n = realloc(s->assignments, cap * sizeof *n);
    if (!n) return;
    memset(n + s->assignment_cap, 0, (cap - s->assignment_cap) * sizeof *n);
    s->assignments = n;
    s->assignment_cap = cap;
  }
  uint32_t index = s->assignment_count;
  struct dispatch_assignment *a = &s->assignments[index];
  memset(a, 0, sizeof *a);
  a->id = strdup(dp->assignment_id);
  a->unit_id = strdup(dp->unit_id);
  if (!a->id || !a->unit_id) goto fail;
  snprintf(a->role, sizeof a->role, "%s", dp->role);
  a->incident = slot;
  a->n = nth_of(a->id);
  a->lead = dp->lead ? 1 : 0;
  a->state = DA_DISPATCHED;
  a->dispatched_at_us = ev->at_us;
  a->acknowledge_by_us = dp->acknowledge_by_us;
  a->arrive_by_us = dp->arrive_by_us;
  a->resolve_by_us = dp->resolve_by_us;
  a->tier = (uint8_t)dp->tier;
  a->deadline_handle = LK_HEAP_NONE;
  if (lk_map_put(&s->assignment_by_id, a->id, index) != LK_OK) goto fail;
  if (attach(&s->incidents[slot], index) != LK_OK) {
    lk_map_del(&s->assignment_by_id, a->id);
    goto fail;
  }
  s->assignment_count++;
  struct dispatch_incident *inc = &s->incidents[slot];
  if (!(inc->flags & DI_CLOSED)) {
    const struct lk_unit *u = lk_district_unit(s->district, a->unit_id);
    if (u) {
      s->unit_load[u - s->district->units]++;
      a->loaded = 1;
    }
    if (a->acknowledge_by_us > 0)
      arm(s, DISPATCH_DEADLINE_ACKNOWLEDGE, index, a->acknowledge_by_us);
  }
  if (dp->replaces[0]) {
    struct dispatch_assignment *old = dispatch_assignment_get(s, dp->replaces);
    if (old) old->replaced = 1;
  }
  for (uint32_t k = 0; dp->called_by[0] && k < inc->call_count; k++)
    if (strcmp(inc->calls[k].event_id, dp->called_by) == 0) inc->calls[k].done = 1;
  return;

fail:
  free(a->id);
  free(a->unit_id);
  memset(a, 0, sizeof *a);
}

/* A unit's answer (or dispatch's expiry). States only move forward; a late acknowledgement after
 * on_scene still records its time. */
static void answer(struct dispatch_state *s, const Linkage__V1__Event *ev,
                   const Linkage__V1__UnitAnswer *ua) {
  uint64_t index;
  if (!ua || !lk_map_get(&s->assignment_by_id, ua->assignment_id, &index)) return;
  struct dispatch_assignment *a = &s->assignments[index];
  if (a->state == DA_DECLINED ||
      (a->state == DA_RESOLVED && ev->type != LINKAGE__V1__EVENT_TYPE__UNIT_RESOLVED))
    return; /* finished: nothing after it counts */
  switch (ev->type) {
  case LINKAGE__V1__EVENT_TYPE__UNIT_ACKNOWLEDGED:
  case LINKAGE__V1__EVENT_TYPE__BACKUP_REQUESTED:
    /* Asking for backup is an answer too: the unit has the assignment. */
    if (!a->acknowledged_at_us) a->acknowledged_at_us = ev->at_us;
    if (a->state < DA_ACKNOWLEDGED) a->state = DA_ACKNOWLEDGED;
    if (ev->type == LINKAGE__V1__EVENT_TYPE__BACKUP_REQUESTED) a->backup = 1;
    break;
  case LINKAGE__V1__EVENT_TYPE__UNIT_ON_SCENE:
    if (!a->on_scene_at_us) a->on_scene_at_us = ev->at_us;
    if (a->state < DA_ON_SCENE) a->state = DA_ON_SCENE;
    break;
  case LINKAGE__V1__EVENT_TYPE__UNIT_RESOLVED:
    if (!a->resolved_at_us) a->resolved_at_us = ev->at_us;
    a->state = DA_RESOLVED;
    release_load(s, a);
    break;
  case LINKAGE__V1__EVENT_TYPE__UNIT_DECLINED:
    a->state = DA_DECLINED;
    release_load(s, a);
    break;
  default: return;
  }
  disarm(s, DISPATCH_DEADLINE_ACKNOWLEDGE, index);
}

/* no_unit_available for a role at a tier: "<incident>/no_unit_available/<role>/<tier>". */
static void note_no_unit(struct dispatch_state *s, uint32_t slot, const Linkage__V1__Event *ev) {
  struct dispatch_incident *inc = &s->incidents[slot];
  if (lk_event_no_unit_tier(ev) != inc->tier) return; /* said at another tier */
  const struct lk_plan *plan =
      lk_plan_find(s->district->plans, s->district->plan_count, inc->category, inc->kind);
  struct lk_need needs[DISPATCH_MAX_ROLES];
  size_t n = lk_roster_needs(plan, &s->district->compounds[inc->compound], inc->tier, needs,
                             DISPATCH_MAX_ROLES);
  for (size_t i = 0; i < n; i++)
    if (strcmp(needs[i].role, ev->no_unit_available->role) == 0) {
      inc->no_unit_mask |= 1u << i;
      inc->flags |= DI_NO_UNIT;
    }
}

/* A coordinator's call (call_requested): once per event, while the incident is open. */
static void add_call(struct dispatch_state *s, uint32_t slot, const Linkage__V1__Event *ev) {
  struct dispatch_incident *inc = &s->incidents[slot];
  const Linkage__V1__CallRequested *c = ev->call_requested;
  if (inc->flags & (DI_CLOSED | DI_MERGED | DI_RESOLVED)) return;
  if (strlen(c->role) >= DISPATCH_ROLE_MAX) return;
  for (uint32_t k = 0; k < inc->call_count; k++)
    if (strcmp(inc->calls[k].event_id, ev->event_id) == 0) return;
  if (inc->call_count == inc->call_cap) {
    uint32_t cap = inc->call_cap ? inc->call_cap * 2 : 2;
    struct dispatch_call *n = realloc(inc->calls, cap * sizeof *n);
    if (!n) return;
    inc->calls = n;
    inc->call_cap = cap;
  }
  struct dispatch_call *k = &inc->calls[inc->call_count];
  memset(k, 0, sizeof *k);
  snprintf(k->role, sizeof k->role, "%s", c->role);
  k->event_id = strdup(ev->event_id);
  k->unit_id = c->unit_id[0] ? strdup(c->unit_id) : NULL;
  if (!k->event_id || (c->unit_id[0] && !k->unit_id)) {
    free(k->event_id);
    free(k->unit_id);
    return;
  }
  inc->call_count++;
}

static void close_incident(struct dispatch_state *s, uint32_t slot) {
  struct dispatch_incident *inc = &s->incidents[slot];
  inc->flags |= DI_CLOSED;
  disarm(s, DISPATCH_DEADLINE_CLOSE, slot);
  /* Whatever is still open ends here: no deadline fires for it, no unit carries it as load. */
  for (uint32_t i = 0; i < inc->assignment_count; i++) {
    struct dispatch_assignment *a = &s->assignments[inc->assignments[i]];
    release_load(s, a);
    disarm(s, DISPATCH_DEADLINE_ACKNOWLEDGE, inc->assignments[i]);
  }
}

uint32_t dispatch_state_apply(struct dispatch_state *s, uint64_t position,
                              const Linkage__V1__Event *ev) {
  char why[128];
  if (position > s->position) s->position = position;
  if (lk_event_check(ev, why, sizeof why) != LK_OK) return 0; /* nothing a fold may trust */
  uint32_t slot = slot_of(s, ev->incident_id);
  if (ev->body_case == LINKAGE__V1__EVENT__BODY_REPORTED) return slot ? slot : add_incident(s, ev);
  if (!slot) return 0;
  struct dispatch_incident *inc = &s->incidents[slot];

  switch (ev->body_case) {
  case LINKAGE__V1__EVENT__BODY_ROUTED:
    inc->flags |= DI_ROUTED;
    set_tier(inc, ev->routed->tier);
    break;
  case LINKAGE__V1__EVENT__BODY_ESCALATED: set_tier(inc, ev->escalated->to_tier); break;
  case LINKAGE__V1__EVENT__BODY_DE_ESCALATED: set_tier(inc, ev->de_escalated->to_tier); break;
  case LINKAGE__V1__EVENT__BODY_SEVERITY_CHANGED:
    inc->severity = ev->severity_changed->to_severity;
    break;
  case LINKAGE__V1__EVENT__BODY_MERGED: inc->flags |= DI_MERGED; break;
  case LINKAGE__V1__EVENT__BODY_DISPATCHED: add_assignment(s, slot, ev); break;
  case LINKAGE__V1__EVENT__BODY_UNIT_ACKNOWLEDGED: answer(s, ev, ev->unit_acknowledged); break;
  case LINKAGE__V1__EVENT__BODY_UNIT_ON_SCENE: answer(s, ev, ev->unit_on_scene); break;
  case LINKAGE__V1__EVENT__BODY_UNIT_RESOLVED: answer(s, ev, ev->unit_resolved); break;
  case LINKAGE__V1__EVENT__BODY_UNIT_DECLINED: answer(s, ev, ev->unit_declined); break;
  case LINKAGE__V1__EVENT__BODY_BACKUP_REQUESTED: answer(s, ev, ev->backup_requested); break;
  case LINKAGE__V1__EVENT__BODY_NO_UNIT_AVAILABLE: note_no_unit(s, slot, ev); break;
  case LINKAGE__V1__EVENT__BODY_CALL_REQUESTED: add_call(s, slot, ev); break;
  case LINKAGE__V1__EVENT__BODY_RESOLVED:
    if (inc->flags & (DI_RESOLVED | DI_CLOSED)) break;
    inc->flags |= DI_RESOLVED;
    inc->resolved_at_us = ev->at_us;
    arm(s, DISPATCH_DEADLINE_CLOSE, slot, ev->at_us + s->policy.verify_window_us);
    break;
  case LINKAGE__V1__EVENT__BODY_CLOSED:
    if (!(inc->flags & DI_CLOSED)) close_incident(s, slot);
    break;
  default: return 0;
  }
  return slot;
}
