/* Coordinator commands -> decisions, checked against the folded state. */
#include <stdio.h>
#include <string.h>

#include "linkage/error.h"
#include "router.h"

/* Command and window ids also become part of event ids, where '/' separates the parts. */
static int id_safe(const char *s, size_t max) {
  return lk_id_valid(s, max) && !strchr(s, '/');
}

static int text_ok(const char *s, size_t max) {
  return strlen(s) <= max && lk_utf8_valid(s, strlen(s));
}

#define REJECT(...)                                                                                \
  do {                                                                                             \
    snprintf(err, errlen, __VA_ARGS__);                                                            \
    return LK_EINVAL;                                                                              \
  } while (0)

static int decide_planned(const struct router_state *s, const Linkage__V1__Command *cmd,
                          struct router_decision *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (cmd->body_case == LINKAGE__V1__COMMAND__BODY_DECLARE_PLANNED_WORK) {
    const Linkage__V1__PlannedWork *p = cmd->declare_planned_work;
    if (!id_safe(p->window_id, 64))
      REJECT("window_id must be 1-64 printable characters without spaces or '/'");
    if (!lk_district_compound(s->district, p->compound_id))
      REJECT("compound \"%.64s\" is not a compound of this district", p->compound_id);
    if (p->from_us <= 0 || p->to_us <= p->from_us) REJECT("the window must have from < to");
    if (!text_ok(p->building, 64) || !text_ok(p->kind, 64) || !text_ok(p->reason, 500))
      REJECT("building and kind must be UTF-8 of at most 64 bytes, reason at most 500");
    for (uint32_t i = 0; i < s->window_count; i++)
      if (strcmp(s->windows[i].id, p->window_id) == 0)
        REJECT("planned-work window \"%s\" is already declared", p->window_id);
    out->type = LINKAGE__V1__EVENT_TYPE__PLANNED_WORK_DECLARED;
    snprintf(out->planned.window_id, sizeof out->planned.window_id, "%s", p->window_id);
    snprintf(out->planned.compound_id, sizeof out->planned.compound_id, "%s", p->compound_id);
    snprintf(out->planned.building, sizeof out->planned.building, "%s", p->building);
    snprintf(out->planned.kind, sizeof out->planned.kind, "%s", p->kind);
    out->planned.from_us = p->from_us;
    out->planned.to_us = p->to_us;
    snprintf(out->reason, sizeof out->reason, "%s", p->reason);
    snprintf(out->incident_id, sizeof out->incident_id, "plan-%s", p->window_id);
  } else {
    const Linkage__V1__LiftPlannedWorkCommand *l = cmd->lift_planned_work;
    const struct router_window *w = NULL;
    for (uint32_t i = 0; i < s->window_count; i++)
      if (strcmp(s->windows[i].id, l->window_id) == 0) w = &s->windows[i];
    if (!w) REJECT("unknown planned-work window \"%.64s\"", l->window_id);
    if (w->lifted) REJECT("planned-work window \"%s\" is already lifted", w->id);
    if (!text_ok(l->reason, 500)) REJECT("reason must be UTF-8 of at most 500 bytes");
    out->type = LINKAGE__V1__EVENT_TYPE__PLANNED_WORK_LIFTED;
    snprintf(out->planned.window_id, sizeof out->planned.window_id, "%s", w->id);
    snprintf(out->reason, sizeof out->reason, "%s", l->reason);
    snprintf(out->incident_id, sizeof out->incident_id, "plan-%s", w->id);
  }
  /* The command id in the event id makes a retried declare or lift answer OK, not "already". */
  char qualifier[80];
  snprintf(qualifier, sizeof qualifier, "cmd-%s", cmd->command_id);
  lk_event_id(out->event_id, sizeof out->event_id, out->incident_id, out->type, qualifier, 0);
  return LK_OK;
}

int router_decide_command(const struct router_state *s, const Linkage__V1__Command *cmd,
                          int64_t now_us, struct router_decision *out, char *err, size_t errlen) {
  if (!id_safe(cmd->command_id, 64))
    REJECT("command_id must be 1-64 printable characters without spaces or '/'");
  if (!id_safe(cmd->actor, 64))
    REJECT("actor must name the coordinator (1-64 characters, no spaces)");
  if (cmd->body_case == LINKAGE__V1__COMMAND__BODY_DECLARE_PLANNED_WORK ||
      cmd->body_case == LINKAGE__V1__COMMAND__BODY_LIFT_PLANNED_WORK)
    return decide_planned(s, cmd, out, err, errlen);
  if (cmd->body_case == LINKAGE__V1__COMMAND__BODY__NOT_SET) REJECT("the command has no action");

  uint64_t slot64;
  if (!lk_map_get(&s->by_id, cmd->incident_id, &slot64))
    REJECT("unknown incident \"%.64s\"", cmd->incident_id);
  uint32_t slot = (uint32_t)slot64;
  const struct router_incident *inc = &s->incidents[slot];
  if (inc->flags & RI_CLOSED) REJECT("incident %s is closed", inc->id);
  if ((inc->flags & RI_MERGED) && cmd->body_case != LINKAGE__V1__COMMAND__BODY_NOTE)
    REJECT("incident %s was merged into another; act on that one", inc->id);

  memset(out, 0, sizeof *out);
  out->incident = slot;
  snprintf(out->incident_id, sizeof out->incident_id, "%s", inc->id);
  const struct lk_compound *c = &s->district->compounds[inc->compound];
  const struct lk_plan *p = lk_plan_find(s->plans, s->plan_count, inc->category, inc->kind);

  switch (cmd->body_case) {
  case LINKAGE__V1__COMMAND__BODY_ACKNOWLEDGE:
    if (!text_ok(cmd->acknowledge->note, 500)) REJECT("note must be UTF-8 of at most 500 bytes");
    out->type = LINKAGE__V1__EVENT_TYPE__ACKNOWLEDGED;
    snprintf(out->reason, sizeof out->reason, "%s", cmd->acknowledge->note);
    break;
  case LINKAGE__V1__COMMAND__BODY_ESCALATE:
  case LINKAGE__V1__COMMAND__BODY_DE_ESCALATE: {
    int up = cmd->body_case == LINKAGE__V1__COMMAND__BODY_ESCALATE;
    const char *reason = up ? cmd->escalate->reason : cmd->de_escalate->reason;
    if (!text_ok(reason, 400)) REJECT("reason must be UTF-8 of at most 400 bytes");
    if (!(inc->flags & RI_ROUTED)) REJECT("incident %s is not routed yet", inc->id);
    if (inc->flags & RI_RESOLVED) REJECT("incident %s is resolved", inc->id);
    if (up && inc->tier >= LINKAGE__V1__TIER__DISTRICT)
      REJECT("incident %s is already at district tier", inc->id);
    Linkage__V1__Tier floor =
        p && p->min_tier > LINKAGE__V1__TIER__COMPOUND ? p->min_tier : LINKAGE__V1__TIER__COMPOUND;
    if (!up && inc->tier <= floor)
      REJECT("incident %s may not go below %s tier (%s plan)", inc->id, lk_tier_name(floor),
             inc->kind[0] ? inc->kind : lk_category_name(inc->category));
    out->type = up ? LINKAGE__V1__EVENT_TYPE__ESCALATED : LINKAGE__V1__EVENT_TYPE__DE_ESCALATED;
    out->from_tier = inc->tier;
    out->to_tier = (Linkage__V1__Tier)(up ? inc->tier + 1 : inc->tier - 1);
    snprintf(out->organisation, sizeof out->organisation, "%s",
             router_organisation(s->district, c, out->to_tier));
    snprintf(out->reason, sizeof out->reason, "coordinator %s: %s", cmd->actor, reason);
    const struct lk_plan_deadline *d = p ? &p->deadlines[inc->severity][out->to_tier] : NULL;
    out->ack_by_us = now_us + router_plan_us(&s->policy, d && d->set ? d->acknowledge_min : 60);
    out->resolve_by_us = now_us + router_plan_us(&s->policy, d && d->set ? d->resolve_min : 1440);
    break;
  }
  case LINKAGE__V1__COMMAND__BODY_MERGE: {
    uint64_t into;
    if (!lk_map_get(&s->by_id, cmd->merge->into_incident_id, &into))
      REJECT("unknown incident \"%.64s\" to merge into", cmd->merge->into_incident_id);
    if ((uint32_t)into == slot) REJECT("an incident cannot be merged into itself");
    if (!router_incident_open(&s->incidents[into]))
      REJECT("incident %s is not open", s->incidents[into].id);
    out->type = LINKAGE__V1__EVENT_TYPE__MERGED;
    snprintf(out->by, sizeof out->by, "%s", s->incidents[into].id);
    break;
  }
  case LINKAGE__V1__COMMAND__BODY_CLOSE:
    if (!cmd->close->reason[0]) REJECT("closing needs a reason");
    if (!text_ok(cmd->close->reason, 500)) REJECT("reason must be UTF-8 of at most 500 bytes");
    out->type = LINKAGE__V1__EVENT_TYPE__CLOSED;
    snprintf(out->reason, sizeof out->reason, "%s", cmd->close->reason);
    break;
  case LINKAGE__V1__COMMAND__BODY_CALL: {
    const Linkage__V1__CallCommand *cc = cmd->call;
    const struct lk_unit *u = NULL;
    const char *role = cc->role;
    if (!text_ok(cc->reason, 400)) REJECT("reason must be UTF-8 of at most 400 bytes");
    if (cc->unit_id[0]) {
      u = lk_district_unit(s->district, cc->unit_id);
      if (!u) REJECT("unknown unit \"%.64s\"", cc->unit_id);
      if (role[0] && strcmp(role, u->type) != 0)
        REJECT("unit %s is a %s, not a %.31s", u->id, u->type, role);
      role = u->type;
    }
    if (lk_unit_type_index(role) < 0)
      REJECT("a call names a unit type (fire_brigade, ...) or a unit");
    if (u && !lk_unit_coverage(s->district, u, c, inc->building))
      REJECT("unit %s does not cover %s", u->id, c->id);
    size_t covering = 0;
    for (size_t i = 0; !u && i < s->district->unit_count; i++)
      covering += strcmp(s->district->units[i].type, role) == 0 &&
                  lk_unit_coverage(s->district, &s->district->units[i], c, inc->building) > 0;
    if (!u && !covering) REJECT("no %s unit covers %s", role, c->id);
    if (!(inc->flags & RI_ROUTED)) REJECT("incident %s is not routed yet", inc->id);
    if (inc->flags & RI_RESOLVED) REJECT("incident %s is resolved", inc->id);
    out->type = LINKAGE__V1__EVENT_TYPE__CALL_REQUESTED;
    snprintf(out->role, sizeof out->role, "%s", role);
    snprintf(out->unit_id, sizeof out->unit_id, "%s", u ? u->id : "");
    snprintf(out->reason, sizeof out->reason, "%s", cc->reason);
    break;
  }
  case LINKAGE__V1__COMMAND__BODY_NOTE:
    if (!cmd->note->text[0] || !text_ok(cmd->note->text, 500))
      REJECT("a note needs 1-500 bytes of UTF-8 text");
    out->type = LINKAGE__V1__EVENT_TYPE__COORDINATOR_NOTE;
    snprintf(out->reason, sizeof out->reason, "%s", cmd->note->text);
    break;
  default: REJECT("unknown command");
  }
  char qualifier[80];
  snprintf(qualifier, sizeof qualifier, "cmd-%s", cmd->command_id);
  lk_event_id(out->event_id, sizeof out->event_id, inc->id, out->type, qualifier, 0);
  return LK_OK;
}
