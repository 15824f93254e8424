/* The gateway's projection: one row per incident, folded from committed events in position
 * order. The state follows the `incidents` view of the ledger (ledger_schema.c): the latest
 * state-changing event decides, and unit_declined, backup_requested and no_unit_available leave
 * it as it was; the deadlines follow the router's fold (router_state.c): a change of tier brings
 * new deadlines and asks for a fresh acknowledgement. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "linkage/error.h"
#include "linkage/event.h"

static const char *const state_names[GW_STATE_COUNT] = {
    "reported", "routed", "dispatched", "acknowledged", "on_scene", "resolved", "closed"};

const char *gw_state_name(enum gw_state s) {
  return (unsigned)s < GW_STATE_COUNT ? state_names[s] : "reported";
}

int gw_view_init(struct gw_view *v, const struct lk_district *d) {
  memset(v, 0, sizeof *v);
  v->district = d;
  v->cap = 1024;
  v->incidents = calloc(v->cap, sizeof *v->incidents);
  if (!v->incidents) return LK_ENOMEM;
  v->count = 1; /* slot 0 means "none" */
  if (lk_map_init(&v->by_id, 1024) != LK_OK) {
    free(v->incidents);
    v->incidents = NULL;
    return LK_ENOMEM;
  }
  return LK_OK;
}

void gw_view_free(struct gw_view *v) {
  if (!v->incidents) return;
  for (uint32_t i = 1; i < v->count; i++) {
    free(v->incidents[i].description);
    free(v->incidents[i].steps);
  }
  free(v->incidents);
  free(v->windows);
  lk_map_close(&v->by_id);
  memset(v, 0, sizeof *v);
}

const struct gw_incident *gw_view_get(const struct gw_view *v, const char *id) {
  uint64_t slot;
  if (!id || !lk_map_get(&v->by_id, id, &slot) || slot == 0 || slot >= v->count) return NULL;
  return &v->incidents[slot];
}

const char *gw_incident_deadline(const struct gw_incident *inc, int64_t *at_us) {
  *at_us = 0;
  if (inc->state == GW_CLOSED || inc->state == GW_RESOLVED || inc->tier == 0) return NULL;
  if (!inc->acknowledged && inc->acknowledge_by_us > 0) {
    *at_us = inc->acknowledge_by_us;
    return "acknowledge";
  }
  if (inc->resolve_by_us > 0) {
    *at_us = inc->resolve_by_us;
    return "resolve";
  }
  return NULL;
}

static void copy(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "");
}

static uint32_t add_incident(struct gw_view *v, const Linkage__V1__Event *ev) {
  if (v->count == v->cap) {
    uint32_t cap = v->cap * 2;
    struct gw_incident *n = realloc(v->incidents, (size_t)cap * sizeof *n);
    if (!n) return 0;
    memset(n + v->cap, 0, (size_t)(cap - v->cap) * sizeof *n);
    v->incidents = n;
    v->cap = cap;
  }
  const Linkage__V1__Report *r = ev->reported->report;
  struct gw_incident *inc = &v->incidents[v->count];
  memset(inc, 0, sizeof *inc);
  inc->description = strdup(r->description ? r->description : "");
  if (!inc->description || lk_map_put(&v->by_id, ev->incident_id, v->count) != LK_OK) {
    free(inc->description);
    inc->description = NULL;
    return 0;
  }
  copy(inc->id, sizeof inc->id, ev->incident_id);
  copy(inc->device_id, sizeof inc->device_id, r->device_id);
  inc->sequence = r->sequence;
  inc->category = r->category;
  copy(inc->kind, sizeof inc->kind, r->kind);
  inc->severity = inc->reported_severity = r->severity;
  if (r->location) {
    copy(inc->compound_id, sizeof inc->compound_id, r->location->compound_id);
    copy(inc->building, sizeof inc->building, r->location->building);
    copy(inc->unit, sizeof inc->unit, r->location->unit);
    inc->floor = r->location->floor;
    inc->lat = r->location->lat;
    inc->lon = r->location->lon;
  }
  const struct lk_compound *c =
      v->district ? lk_district_compound(v->district, inc->compound_id) : NULL;
  if (c) {
    inc->community_id = c->community_id;
    const struct lk_org *com = lk_district_community(v->district, c->community_id);
    if (com) inc->street_id = com->parent_id;
  }
  inc->reported_at_us = r->observed_at_us > 0 ? r->observed_at_us : ev->reported->received_at_us;
  inc->state = GW_REPORTED;
  v->open++;
  return v->count++;
}

static void add_window(struct gw_view *v, uint64_t position, const Linkage__V1__PlannedWork *p) {
  for (uint32_t i = 0; i < v->window_count; i++)
    if (strcmp(v->windows[i].id, p->window_id) == 0) return; /* declared once */
  if (v->window_count == v->window_cap) {
    uint32_t cap = v->window_cap ? v->window_cap * 2 : 16;
    struct gw_window *n = realloc(v->windows, (size_t)cap * sizeof *n);
    if (!n) return;
    v->windows = n;
    v->window_cap = cap;
  }
  struct gw_window *w = &v->windows[v->window_count++];
  memset(w, 0, sizeof *w);
  copy(w->id, sizeof w->id, p->window_id);
  copy(w->compound_id, sizeof w->compound_id, p->compound_id);
  copy(w->building, sizeof w->building, p->building);
  copy(w->kind, sizeof w->kind, p->kind);
  copy(w->reason, sizeof w->reason, p->reason);
  w->from_us = p->from_us;
  w->to_us = p->to_us;
  w->position = position;
}

static void lift_window(struct gw_view *v, uint64_t position, const char *id) {
  for (uint32_t i = 0; i < v->window_count; i++)
    if (strcmp(v->windows[i].id, id) == 0) {
      v->windows[i].lifted = 1;
      v->windows[i].position = position;
    }
}

static const char *tier(Linkage__V1__Tier t) {
  const char *n = lk_tier_name(t);
  return n ? n : "?";
}

/* The timeline's one-line summary of an event, in English (the page translates the type). */
static void describe(const Linkage__V1__Event *ev, char *out, size_t n) {
  out[0] = '\0';
  switch (ev->body_case) {
  case LINKAGE__V1__EVENT__BODY_REPORTED: {
    const Linkage__V1__Report *r = ev->reported->report;
    snprintf(out, n, "%s, severity %s", r->kind, lk_severity_name(r->severity));
    break;
  }
  case LINKAGE__V1__EVENT__BODY_MERGED:
    snprintf(out, n, "merged into %s", ev->merged->into_incident_id);
    break;
  case LINKAGE__V1__EVENT__BODY_ROUTED:
    snprintf(out, n, "to %s %s%s%s", tier(ev->routed->tier), ev->routed->organisation_id,
             ev->routed->suppressed_by[0] ? ", held by " : "", ev->routed->suppressed_by);
    break;
  case LINKAGE__V1__EVENT__BODY_ESCALATED:
  case LINKAGE__V1__EVENT__BODY_DE_ESCALATED: {
    const Linkage__V1__Escalated *e =
        ev->body_case == LINKAGE__V1__EVENT__BODY_ESCALATED ? ev->escalated : ev->de_escalated;
    snprintf(out, n, "%s -> %s %s: %s", tier(e->from_tier), tier(e->to_tier), e->organisation_id,
             e->reason);
    break;
  }
  case LINKAGE__V1__EVENT__BODY_SEVERITY_CHANGED:
    snprintf(out, n, "%s -> %s: %s", lk_severity_name(ev->severity_changed->from_severity),
             lk_severity_name(ev->severity_changed->to_severity), ev->severity_changed->reason);
    break;
  case LINKAGE__V1__EVENT__BODY_DISPATCHED:
    snprintf(out, n, "%s as %s%s", ev->dispatched->unit_id, ev->dispatched->role,
             ev->dispatched->lead ? " (lead)" : "");
    break;
  case LINKAGE__V1__EVENT__BODY_UNIT_ACKNOWLEDGED:
  case LINKAGE__V1__EVENT__BODY_UNIT_DECLINED:
  case LINKAGE__V1__EVENT__BODY_UNIT_ON_SCENE:
  case LINKAGE__V1__EVENT__BODY_UNIT_RESOLVED:
  case LINKAGE__V1__EVENT__BODY_BACKUP_REQUESTED: {
    const Linkage__V1__UnitAnswer *a =
        ev->body_case == LINKAGE__V1__EVENT__BODY_UNIT_ACKNOWLEDGED ? ev->unit_acknowledged
        : ev->body_case == LINKAGE__V1__EVENT__BODY_UNIT_DECLINED   ? ev->unit_declined
        : ev->body_case == LINKAGE__V1__EVENT__BODY_UNIT_ON_SCENE   ? ev->unit_on_scene
        : ev->body_case == LINKAGE__V1__EVENT__BODY_UNIT_RESOLVED   ? ev->unit_resolved
                                                                    : ev->backup_requested;
    snprintf(out, n, "%s%s%s", a->unit_id, a->note[0] ? ": " : "", a->note);
    break;
  }
  case LINKAGE__V1__EVENT__BODY_COORDINATOR_NOTE:
    snprintf(out, n, "%s", ev->coordinator_note->text);
    break;
  case LINKAGE__V1__EVENT__BODY_RESOLVED: snprintf(out, n, "%s", ev->resolved->summary); break;
  case LINKAGE__V1__EVENT__BODY_CLOSED: snprintf(out, n, "%s", ev->closed->reason); break;
  case LINKAGE__V1__EVENT__BODY_ACKNOWLEDGED: snprintf(out, n, "%s", ev->acknowledged->note); break;
  case LINKAGE__V1__EVENT__BODY_OVERDUE:
    snprintf(out, n, "%s deadline missed at %s", ev->overdue->deadline, tier(ev->overdue->tier));
    break;
  case LINKAGE__V1__EVENT__BODY_SUPPRESSED:
    snprintf(out, n, "%s deadline held by %s: %s", ev->suppressed->deadline, ev->suppressed->by,
             ev->suppressed->reason);
    break;
  case LINKAGE__V1__EVENT__BODY_NO_UNIT_AVAILABLE:
    snprintf(out, n, "no %s: %s", ev->no_unit_available->role, ev->no_unit_available->reason);
    break;
  default: break;
  }
}

static int makes_cap_message(Linkage__V1__EventType t) {
  switch (t) {
  case LINKAGE__V1__EVENT_TYPE__REPORTED:
  case LINKAGE__V1__EVENT_TYPE__ESCALATED:
  case LINKAGE__V1__EVENT_TYPE__DE_ESCALATED:
  case LINKAGE__V1__EVENT_TYPE__SEVERITY_CHANGED:
  case LINKAGE__V1__EVENT_TYPE__MERGED:
  case LINKAGE__V1__EVENT_TYPE__CLOSED: return 1;
  default: return 0;
  }
}

static void add_step(struct gw_incident *inc, uint64_t position, const Linkage__V1__Event *ev) {
  int cap = makes_cap_message(ev->type);
  if (inc->step_count >= GW_MAX_STEPS) {
    /* Full: a step that makes a CAP message must still be kept (an alert's identifier names
     * it), so it takes the place of the newest step that made none. */
    if (!cap) return;
    uint32_t i = inc->step_count;
    while (i > 0 && inc->steps[i - 1].cap)
      i--;
    if (i == 0) return;
    memmove(&inc->steps[i - 1], &inc->steps[i], (inc->step_count - i) * sizeof inc->steps[0]);
    inc->step_count--;
  }
  if (inc->step_count == inc->step_cap) {
    uint32_t room = inc->step_cap ? inc->step_cap * 2 : 8;
    if (room > GW_MAX_STEPS) room = GW_MAX_STEPS;
    struct gw_step *n = realloc(inc->steps, (size_t)room * sizeof *n);
    if (!n) return;
    inc->steps = n;
    inc->step_cap = room;
  }
  struct gw_step *s = &inc->steps[inc->step_count++];
  memset(s, 0, sizeof *s);
  s->position = position;
  s->at_us = ev->at_us;
  s->type = ev->type;
  copy(s->actor, sizeof s->actor, ev->actor);
  describe(ev, s->detail, sizeof s->detail);
  s->cap = (uint8_t)cap;
  inc->cap_count += s->cap;
}

static void set_state(struct gw_view *v, struct gw_incident *inc, enum gw_state s) {
  if (s == GW_CLOSED && inc->state != GW_CLOSED) v->open--;
  if (s != GW_CLOSED && inc->state == GW_CLOSED) v->open++;
  inc->state = s;
}

static void retier(struct gw_incident *inc, Linkage__V1__Tier t, const char *org, int64_t ack_by,
                   int64_t resolve_by) {
  inc->tier = t;
  copy(inc->organisation_id, sizeof inc->organisation_id, org);
  inc->acknowledge_by_us = ack_by;
  inc->resolve_by_us = resolve_by;
  inc->acknowledged = 0;
  inc->overdue = 0;
  inc->suppressed = 0;
}

uint32_t gw_view_apply(struct gw_view *v, uint64_t position, const Linkage__V1__Event *ev) {
  char why[128];
  if (position > v->position) v->position = position;
  if (lk_event_check(ev, why, sizeof why) != LK_OK) return 0; /* nothing a fold may trust */
  uint64_t found = 0;
  uint32_t slot = lk_map_get(&v->by_id, ev->incident_id, &found) ? (uint32_t)found : 0;

  switch (ev->body_case) {
  case LINKAGE__V1__EVENT__BODY_REPORTED:
    if (!slot) slot = add_incident(v, ev);
    break;
  case LINKAGE__V1__EVENT__BODY_PLANNED_WORK_DECLARED:
    add_window(v, position, ev->planned_work_declared);
    return 0;
  case LINKAGE__V1__EVENT__BODY_PLANNED_WORK_LIFTED:
    lift_window(v, position, ev->planned_work_lifted->window_id);
    return 0;
  default: break;
  }
  if (!slot) return 0;
  struct gw_incident *inc = &v->incidents[slot];
  if (position <= inc->last_position) return 0; /* folded before (a replay overlapping live) */
  if (!inc->first_position) inc->first_position = position;
  inc->last_position = position;
  inc->updated_at_us = ev->at_us;
  add_step(inc, position, ev);

  switch (ev->body_case) {
  case LINKAGE__V1__EVENT__BODY_REPORTED: break;
  case LINKAGE__V1__EVENT__BODY_ROUTED: {
    const Linkage__V1__Routed *r = ev->routed;
    retier(inc, r->tier, r->organisation_id, r->acknowledge_by_us, r->resolve_by_us);
    inc->suppressed = r->suppressed_by[0] != '\0';
    set_state(v, inc, GW_ROUTED);
    break;
  }
  case LINKAGE__V1__EVENT__BODY_ESCALATED:
  case LINKAGE__V1__EVENT__BODY_DE_ESCALATED: {
    const Linkage__V1__Escalated *e =
        ev->body_case == LINKAGE__V1__EVENT__BODY_ESCALATED ? ev->escalated : ev->de_escalated;
    retier(inc, e->to_tier, e->organisation_id, e->acknowledge_by_us, e->resolve_by_us);
    set_state(v, inc, GW_ROUTED);
    break;
  }
  case LINKAGE__V1__EVENT__BODY_ACKNOWLEDGED:
    inc->acknowledged = 1;
    inc->overdue = 0;
    set_state(v, inc, GW_ACKNOWLEDGED);
    break;
  case LINKAGE__V1__EVENT__BODY_UNIT_ACKNOWLEDGED:
    inc->acknowledged = 1;
    inc->overdue = 0;
    set_state(v, inc, GW_ACKNOWLEDGED);
    break;
  case LINKAGE__V1__EVENT__BODY_DISPATCHED:
    inc->units_assigned++;
    if (ev->dispatched->lead) copy(inc->lead_unit, sizeof inc->lead_unit, ev->dispatched->unit_id);
    set_state(v, inc, GW_DISPATCHED);
    break;
  case LINKAGE__V1__EVENT__BODY_UNIT_ON_SCENE: set_state(v, inc, GW_ON_SCENE); break;
  case LINKAGE__V1__EVENT__BODY_UNIT_RESOLVED:
  case LINKAGE__V1__EVENT__BODY_RESOLVED: set_state(v, inc, GW_RESOLVED); break;
  case LINKAGE__V1__EVENT__BODY_CLOSED: set_state(v, inc, GW_CLOSED); break;
  case LINKAGE__V1__EVENT__BODY_MERGED:
    copy(inc->merged_into, sizeof inc->merged_into, ev->merged->into_incident_id);
    set_state(v, inc, GW_CLOSED);
    break;
  case LINKAGE__V1__EVENT__BODY_SEVERITY_CHANGED:
    inc->severity = ev->severity_changed->to_severity;
    break;
  case LINKAGE__V1__EVENT__BODY_OVERDUE: inc->overdue = 1; break;
  case LINKAGE__V1__EVENT__BODY_SUPPRESSED: inc->suppressed = 1; break;
  case LINKAGE__V1__EVENT__BODY_NO_UNIT_AVAILABLE:
    /* As the router folds it: the tier cannot handle it, so acknowledging is due at once. */
    if (inc->state != GW_CLOSED && inc->state != GW_RESOLVED) {
      inc->acknowledged = 0;
      inc->acknowledge_by_us = ev->at_us;
    }
    break;
  default: break;
  }
  return slot;
}
