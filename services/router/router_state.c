/* The router's state: a fold of committed events. Nothing here reads a
 * clock or a socket; positions and event times come from the events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkage/error.h"
#include "linkage/lifecycle.h"
#include "router.h"

int router_state_init(struct router_state *s, const struct lk_district *d,
                      const struct lk_plan *plans, size_t plan_count,
                      const struct router_policy *policy) {
  memset(s, 0, sizeof *s);
  s->district = d;
  s->plans = plans;
  s->plan_count = plan_count;
  s->policy = *policy;
  s->cap = 1024;
  s->incidents = calloc(s->cap, sizeof *s->incidents);
  if (!s->incidents) return LK_ENOMEM;
  s->count = 1; /* slot 0 means "none" */
  if (lk_map_init(&s->by_id, 1024) != LK_OK) goto fail_map;
  if (lk_heap_init(&s->deadlines, 1024) != LK_OK) goto fail_heap;
  if (lk_map_init(&s->buckets, 256) != LK_OK) goto fail_buckets;
  return LK_OK;

fail_buckets:
  lk_heap_close(&s->deadlines);
fail_heap:
  lk_map_close(&s->by_id);
fail_map:
  free(s->incidents);
  s->incidents = NULL;
  return LK_ENOMEM;
}

void router_state_close(struct router_state *s) {
  for (uint32_t i = 1; i < s->count; i++) {
    free(s->incidents[i].id);
    free(s->incidents[i].kind);
    free(s->incidents[i].building);
    free(s->incidents[i].reporters);
  }
  free(s->incidents);
  for (uint32_t i = 0; i < s->window_count; i++) {
    free(s->windows[i].id);
    free(s->windows[i].building);
    free(s->windows[i].kind);
  }
  free(s->windows);
  free(s->high);
  lk_map_close(&s->by_id);
  lk_map_close(&s->buckets);
  lk_heap_close(&s->deadlines);
  memset(s, 0, sizeof *s);
}

struct router_incident *router_incident_get(struct router_state *s, const char *id) {
  uint64_t slot;
  if (!lk_map_get(&s->by_id, id, &slot)) return NULL;
  return &s->incidents[slot];
}

int router_incident_open(const struct router_incident *inc) {
  return !(inc->flags & (RI_CLOSED | RI_MERGED | RI_RESOLVED));
}

static uint32_t slot_of(struct router_state *s, const char *id) {
  uint64_t slot;
  return lk_map_get(&s->by_id, id, &slot) ? (uint32_t)slot : 0;
}

static uint64_t hash_device(const char *device) {
  uint64_t h = 1469598103934665603ull;
  for (; *device; device++)
    h = (h ^ (unsigned char)*device) * 1099511628211ull;
  return h;
}

static int add_reporter(struct router_incident *inc, struct router_reporter r) {
  for (uint32_t i = 0; i < inc->reporter_count; i++) {
    if (inc->reporters[i].device_hash == r.device_hash) {
      if (r.at_us > inc->reporters[i].at_us) inc->reporters[i].at_us = r.at_us;
      return LK_OK;
    }
  }
  if (inc->reporter_count == inc->reporter_cap) {
    uint32_t cap = inc->reporter_cap ? inc->reporter_cap * 2 : 2;
    struct router_reporter *n = realloc(inc->reporters, cap * sizeof *n);
    if (!n) return LK_ENOMEM;
    inc->reporters = n;
    inc->reporter_cap = cap;
  }
  inc->reporters[inc->reporter_count++] = r;
  return LK_OK;
}

static void drop_no_unit(struct router_state *s, struct router_incident *inc) {
  lk_heap_remove(&s->deadlines, inc->no_unit_handle);
  inc->no_unit_handle = LK_HEAP_NONE;
  inc->flags &= ~(uint32_t)RI_NO_UNIT;
}

static void drop_deadlines(struct router_state *s, struct router_incident *inc) {
  lk_heap_remove(&s->deadlines, inc->ack_handle);
  lk_heap_remove(&s->deadlines, inc->resolve_handle);
  inc->ack_handle = inc->resolve_handle = LK_HEAP_NONE;
  drop_no_unit(s, inc);
}

static uint32_t *handle_of(struct router_incident *inc, uint32_t kind) {
  switch (kind) {
  case ROUTER_DEADLINE_ACKNOWLEDGE: return &inc->ack_handle;
  case ROUTER_DEADLINE_RESOLVE: return &inc->resolve_handle;
  default: return &inc->no_unit_handle;
  }
}

/* Arms the deadlines of the incident's current tier, unless planned work holds them back. */
static void arm_deadlines(struct router_state *s, uint32_t slot) {
  struct router_incident *inc = &s->incidents[slot];
  drop_deadlines(s, inc);
  if (!router_incident_open(inc) || (inc->flags & RI_PLANNED)) return;
  if (!(inc->flags & RI_ACKNOWLEDGED) && inc->ack_by_us > 0)
    inc->ack_handle =
        lk_heap_push(&s->deadlines, (struct lk_deadline){.at_us = inc->ack_by_us,
                                                         .owner = slot,
                                                         .kind = ROUTER_DEADLINE_ACKNOWLEDGE});
  if (inc->resolve_by_us > 0)
    inc->resolve_handle =
        lk_heap_push(&s->deadlines, (struct lk_deadline){.at_us = inc->resolve_by_us,
                                                         .owner = slot,
                                                         .kind = ROUTER_DEADLINE_RESOLVE});
}

void router_state_rearm(struct router_state *s, uint32_t slot, enum router_deadline_kind kind,
                        int64_t at_us) {
  if (slot == 0 || slot >= s->count) return;
  struct router_incident *inc = &s->incidents[slot];
  uint32_t *handle = handle_of(inc, kind);
  lk_heap_remove(&s->deadlines, *handle);
  *handle = lk_heap_push(
      &s->deadlines, (struct lk_deadline){.at_us = at_us, .owner = slot, .kind = (uint32_t)kind});
}

void router_state_fired(struct router_state *s, const struct lk_deadline *d) {
  if (d->owner == 0 || d->owner >= s->count) return;
  *handle_of(&s->incidents[d->owner], d->kind) = LK_HEAP_NONE;
}

static uint32_t add_incident(struct router_state *s, const Linkage__V1__Event *ev) {
  const Linkage__V1__Report *r = ev->reported->report;
  const Linkage__V1__Location *loc = r ? r->location : NULL;
  /* The ledger checks these (lk_event_check); a ledger written by something else must still not
   * make us index the plan tables out of range. */
  if (!r || !loc || !s->district || !lk_category_name(r->category) ||
      !lk_severity_name(r->severity))
    return 0;
  const struct lk_compound *c = lk_district_compound(s->district, loc->compound_id);
  if (!c) return 0;
  if (s->count == s->cap) {
    uint32_t cap = s->cap * 2;
    struct router_incident *n = realloc(s->incidents, cap * sizeof *n);
    if (!n) return 0;
    memset(n + s->cap, 0, (cap - s->cap) * sizeof *n);
    s->incidents = n;
    s->cap = cap;
  }
  uint32_t slot = s->count;
  struct router_incident *inc = &s->incidents[slot];
  memset(inc, 0, sizeof *inc);
  inc->id = strdup(ev->incident_id);
  inc->kind = strdup(r->kind);
  inc->building = loc->building[0] ? strdup(loc->building) : NULL;
  if (!inc->id || !inc->kind || (loc->building[0] && !inc->building)) goto fail;
  inc->compound = (uint32_t)(c - s->district->compounds);
  inc->category = r->category;
  inc->severity = r->severity;
  inc->lat = loc->lat;
  inc->lon = loc->lon;
  inc->reported_at_us = ev->at_us;
  inc->reported_position = s->position;
  inc->ack_handle = inc->resolve_handle = inc->no_unit_handle = LK_HEAP_NONE;
  if (add_reporter(inc, (struct router_reporter){hash_device(r->device_id), ev->at_us}) != LK_OK)
    goto fail;
  if (lk_map_put(&s->by_id, inc->id, slot) != LK_OK) goto fail;
  char key[LK_ID_MAX + 32];
  uint64_t head = 0;
  router_bucket_key(inc, key, sizeof key);
  lk_map_get(&s->buckets, key, &head);
  inc->next_in_bucket = (uint32_t)head;
  inc->prev_in_bucket = 0;
  if (head) {
    struct router_incident *h = &s->incidents[head];
    h->prev_in_bucket = slot;
    inc->memo_query = h->memo_query;
    /* A report earlier than the remembered target could stop a later search short of it. */
    inc->memo_target =
        h->memo_target && inc->reported_at_us >= s->incidents[h->memo_target].reported_at_us
            ? h->memo_target
            : 0;
  }
  if (lk_map_put(&s->buckets, key, slot) != LK_OK) {
    lk_map_del(&s->by_id, inc->id);
    goto fail;
  }
  s->count++;
  return slot;

fail:
  free(inc->id);
  free(inc->kind);
  free(inc->building);
  free(inc->reporters);
  memset(inc, 0, sizeof *inc);
  return 0;
}

static struct router_window *find_window(struct router_state *s, const char *id) {
  for (uint32_t i = 0; i < s->window_count; i++)
    if (strcmp(s->windows[i].id, id) == 0) return &s->windows[i];
  return NULL;
}

void router_bucket_key(const struct router_incident *inc, char *out, size_t len) {
  snprintf(out, len, "%u/%s", inc->compound, inc->kind);
}

/* A merged incident is never a merge target again: take it out of its bucket, so a flood of
 * reports that all merge into one incident does not make every later report walk them all. */
static void leave_bucket(struct router_state *s, uint32_t slot) {
  struct router_incident *inc = &s->incidents[slot];
  char bkey[LK_ID_MAX + 32];
  uint64_t first = 0;
  router_bucket_key(inc, bkey, sizeof bkey);
  if (!inc->prev_in_bucket && inc->next_in_bucket) {
    /* The next one becomes the bucket's first: it carries the bucket's memo from now on. */
    struct router_incident *n = &s->incidents[inc->next_in_bucket];
    n->memo_query = inc->memo_query;
    n->memo_target = inc->memo_target;
  }
  if (inc->prev_in_bucket) {
    s->incidents[inc->prev_in_bucket].next_in_bucket = inc->next_in_bucket;
  } else {
    char key[LK_ID_MAX + 32];
    router_bucket_key(inc, key, sizeof key);
    uint64_t head = 0;
    if (lk_map_get(&s->buckets, key, &head) && head == slot) {
      if (inc->next_in_bucket)
        lk_map_put(&s->buckets, key, inc->next_in_bucket);
      else
        lk_map_del(&s->buckets, key);
    }
  }
  if (inc->next_in_bucket) s->incidents[inc->next_in_bucket].prev_in_bucket = inc->prev_in_bucket;
  inc->next_in_bucket = inc->prev_in_bucket = 0;
  /* A remembered target that leaves the bucket is no answer any more. */
  if (lk_map_get(&s->buckets, bkey, &first) && s->incidents[first].memo_target == slot)
    s->incidents[first].memo_target = 0;
}

static void note_high_tier(struct router_state *s, uint32_t slot) {
  struct router_incident *inc = &s->incidents[slot];
  if ((inc->flags & RI_IN_HIGH) || inc->tier < LINKAGE__V1__TIER__STREET) return;
  if (s->high_count == s->high_cap) {
    uint32_t cap = s->high_cap ? s->high_cap * 2 : 64;
    uint32_t *n = realloc(s->high, cap * sizeof *n);
    if (!n) return;
    s->high = n;
    s->high_cap = cap;
  }
  s->high[s->high_count++] = slot;
  inc->flags |= RI_IN_HIGH;
}

static void add_window(struct router_state *s, const Linkage__V1__PlannedWork *p) {
  if (!s->district || find_window(s, p->window_id)) return;
  const struct lk_compound *c = lk_district_compound(s->district, p->compound_id);
  if (!c) return;
  if (s->window_count == s->window_cap) {
    uint32_t cap = s->window_cap ? s->window_cap * 2 : 8;
    struct router_window *n = realloc(s->windows, cap * sizeof *n);
    if (!n) return;
    s->windows = n;
    s->window_cap = cap;
  }
  struct router_window *w = &s->windows[s->window_count];
  memset(w, 0, sizeof *w);
  w->id = strdup(p->window_id);
  w->building = p->building[0] ? strdup(p->building) : NULL;
  w->kind = p->kind[0] ? strdup(p->kind) : NULL;
  if (!w->id) return;
  w->compound = (uint32_t)(c - s->district->compounds);
  w->from_us = p->from_us;
  w->to_us = p->to_us;
  s->window_count++;
}

/* New deadlines after a change of tier (routed, escalated, de_escalated). */
static void retier(struct router_state *s, uint32_t slot, Linkage__V1__Tier tier, int64_t ack_by,
                   int64_t resolve_by) {
  struct router_incident *inc = &s->incidents[slot];
  inc->tier = tier;
  inc->ack_by_us = ack_by;
  inc->resolve_by_us = resolve_by;
  inc->epoch++;
  /* A new organisation has it now: it must acknowledge afresh, and a role nobody filled at the
   * tier before is called again here. */
  inc->flags &= ~(uint32_t)(RI_ACKNOWLEDGED | RI_ACK_OVERDUE | RI_RES_OVERDUE |
                            RI_SUPPRESSED_LOGGED | RI_INFLIGHT);
  drop_no_unit(s, inc);
  arm_deadlines(s, slot);
  note_high_tier(s, slot);
}

/* Dispatch found nobody for a role at a tier. Only the lead role makes the tier unable to handle
 * the incident (a grid worker off duty at 3 a.m. does not send a gas leak to the district; the
 * readers show that role as missing), and only a finding about the tier the incident is at now
 * counts (one written for the tier before, committed after the escalation, says nothing about
 * this one). The first at a tier waits in the heap for its escalation, at the event's own time,
 * so that a restarted router folds the same deadline. Events written before `lead` existed
 * escalate as they did then. */
static void note_no_unit(struct router_state *s, uint32_t slot, const Linkage__V1__Event *ev) {
  struct router_incident *inc = &s->incidents[slot];
  int legacy = ev->no_unit_available->tier == LINKAGE__V1__TIER__TIER_UNSPECIFIED;
  if (!router_incident_open(inc) || lk_event_no_unit_tier(ev) != inc->tier ||
      (inc->flags & RI_NO_UNIT) || (!legacy && !ev->no_unit_available->lead))
    return;
  uint8_t role = (uint8_t)(lk_unit_type_index(ev->no_unit_available->role) + 1);
  inc->flags |= RI_NO_UNIT;
  inc->no_unit_at_us = ev->at_us;
  inc->no_unit_role = role;
  inc->no_unit_tried =
      (uint8_t)(ev->no_unit_available->tried > 255 ? 255 : ev->no_unit_available->tried);
  lk_heap_remove(&s->deadlines, inc->no_unit_handle);
  inc->no_unit_handle = lk_heap_push(
      &s->deadlines,
      (struct lk_deadline){.at_us = ev->at_us, .owner = slot, .kind = ROUTER_DEADLINE_NO_UNIT});
}

uint32_t router_state_apply(struct router_state *s, uint64_t position,
                            const Linkage__V1__Event *ev) {
  char why[128];
  if (position > s->position) s->position = position;
  if (lk_event_check(ev, why, sizeof why) != LK_OK) return 0; /* nothing a fold may trust */
  uint32_t slot = slot_of(s, ev->incident_id);
  struct router_incident *inc = slot ? &s->incidents[slot] : NULL;

  switch (ev->body_case) {
  case LINKAGE__V1__EVENT__BODY_REPORTED: return slot ? slot : add_incident(s, ev);
  case LINKAGE__V1__EVENT__BODY_PLANNED_WORK_DECLARED:
    add_window(s, ev->planned_work_declared);
    return 0;
  case LINKAGE__V1__EVENT__BODY_PLANNED_WORK_LIFTED: {
    struct router_window *w = find_window(s, ev->planned_work_lifted->window_id);
    if (w) w->lifted = 1;
    return 0;
  }
  default: break;
  }
  if (!inc) return 0;

  switch (ev->body_case) {
  case LINKAGE__V1__EVENT__BODY_ROUTED:
    if (ev->routed->suppressed_by[0]) inc->flags |= RI_PLANNED;
    inc->flags |= RI_ROUTED;
    retier(s, slot, ev->routed->tier, ev->routed->acknowledge_by_us, ev->routed->resolve_by_us);
    break;
  case LINKAGE__V1__EVENT__BODY_ESCALATED:
    inc->escalations++;
    retier(s, slot, ev->escalated->to_tier, ev->escalated->acknowledge_by_us,
           ev->escalated->resolve_by_us);
    break;
  case LINKAGE__V1__EVENT__BODY_DE_ESCALATED:
    inc->de_escalations++;
    retier(s, slot, ev->de_escalated->to_tier, ev->de_escalated->acknowledge_by_us,
           ev->de_escalated->resolve_by_us);
    break;
  case LINKAGE__V1__EVENT__BODY_NO_UNIT_AVAILABLE: note_no_unit(s, slot, ev); break;
  case LINKAGE__V1__EVENT__BODY_MERGED: {
    if (!(inc->flags & RI_MERGED)) leave_bucket(s, slot);
    inc->flags |= RI_MERGED;
    if (!inc->ended_position) inc->ended_position = position;
    inc->flags &= ~(uint32_t)RI_INFLIGHT;
    drop_deadlines(s, inc);
    uint32_t into = slot_of(s, ev->merged->into_incident_id);
    if (into && into != slot) {
      for (uint32_t i = 0; i < inc->reporter_count; i++)
        add_reporter(&s->incidents[into], inc->reporters[i]);
    }
    break;
  }
  case LINKAGE__V1__EVENT__BODY_SEVERITY_CHANGED:
    inc->severity = ev->severity_changed->to_severity;
    inc->severity_changes++;
    inc->severity_changed_at_us = ev->at_us;
    inc->flags &= ~(uint32_t)RI_INFLIGHT;
    break;
  case LINKAGE__V1__EVENT__BODY_OVERDUE:
    inc->flags |=
        strcmp(ev->overdue->deadline, "acknowledge") == 0 ? RI_ACK_OVERDUE : RI_RES_OVERDUE;
    inc->flags &= ~(uint32_t)RI_INFLIGHT;
    break;
  case LINKAGE__V1__EVENT__BODY_SUPPRESSED:
    inc->flags |= RI_SUPPRESSED_LOGGED;
    inc->flags &= ~(uint32_t)RI_INFLIGHT;
    break;
  default: break;
  }
  /* What acknowledges an incident at its tier and what ends it are the life cycle's
   * (linkage/lifecycle.h), as for every other reader. */
  const struct lk_lifecycle_row *row = lk_lifecycle_row(ev->type);
  if (row && row->milestone == LK_MILESTONE_ACKNOWLEDGED) {
    inc->flags |= RI_ACKNOWLEDGED;
    lk_heap_remove(&s->deadlines, inc->ack_handle);
    inc->ack_handle = LK_HEAP_NONE;
  }
  if (row && lk_state_over(row->state) && ev->body_case != LINKAGE__V1__EVENT__BODY_MERGED) {
    inc->flags |= row->state == LK_STATE_CLOSED ? RI_CLOSED : RI_RESOLVED;
    if (!inc->ended_position) inc->ended_position = position;
    drop_deadlines(s, inc);
  }
  return slot;
}
