/* Decision -> Event. The event borrows every string from the decision and
 * the storage, so nothing here allocates. */
#include <stdio.h>
#include <string.h>

#include "router.h"

void router_event_build(const struct router_decision *d, const char *actor, int64_t now_us,
                        Linkage__V1__Event *ev, struct router_event_storage *st) {
  memset(st, 0, sizeof *st);
  snprintf(st->actor, sizeof st->actor, "%s", actor);
  lk_event_envelope(ev, d->event_id, d->incident_id, d->type, now_us, st->actor);
  switch (d->type) {
  case LINKAGE__V1__EVENT_TYPE__ROUTED:
    linkage__v1__routed__init(&st->routed);
    st->routed.tier = d->to_tier;
    st->routed.organisation_id = (char *)d->organisation;
    st->routed.acknowledge_by_us = d->ack_by_us;
    st->routed.resolve_by_us = d->resolve_by_us;
    st->routed.suppressed_by = (char *)d->by;
    ev->routed = &st->routed;
    break;
  case LINKAGE__V1__EVENT_TYPE__ESCALATED:
  case LINKAGE__V1__EVENT_TYPE__DE_ESCALATED:
    linkage__v1__escalated__init(&st->escalated);
    st->escalated.from_tier = d->from_tier;
    st->escalated.to_tier = d->to_tier;
    st->escalated.reason = (char *)d->reason;
    st->escalated.organisation_id = (char *)d->organisation;
    st->escalated.acknowledge_by_us = d->ack_by_us;
    st->escalated.resolve_by_us = d->resolve_by_us;
    if (d->type == LINKAGE__V1__EVENT_TYPE__ESCALATED && d->deadline) {
      st->escalated.deadline = (char *)d->deadline;
      st->escalated.due_us = d->due_us;
    }
    if (d->type == LINKAGE__V1__EVENT_TYPE__ESCALATED)
      ev->escalated = &st->escalated;
    else
      ev->de_escalated = &st->escalated;
    break;
  case LINKAGE__V1__EVENT_TYPE__OVERDUE:
    linkage__v1__overdue__init(&st->overdue);
    st->overdue.deadline = (char *)d->deadline;
    st->overdue.due_us = d->due_us;
    st->overdue.tier = d->to_tier;
    ev->overdue = &st->overdue;
    break;
  case LINKAGE__V1__EVENT_TYPE__SUPPRESSED:
    linkage__v1__suppressed__init(&st->suppressed);
    st->suppressed.reason = (char *)d->reason;
    st->suppressed.by = (char *)d->by;
    st->suppressed.deadline = (char *)(d->deadline ? d->deadline : "");
    ev->suppressed = &st->suppressed;
    break;
  case LINKAGE__V1__EVENT_TYPE__MERGED:
    linkage__v1__merged__init(&st->merged);
    st->merged.into_incident_id = (char *)d->by;
    ev->merged = &st->merged;
    break;
  case LINKAGE__V1__EVENT_TYPE__SEVERITY_CHANGED:
    linkage__v1__severity_changed__init(&st->severity_changed);
    st->severity_changed.from_severity = d->from_severity;
    st->severity_changed.to_severity = d->to_severity;
    st->severity_changed.reason = (char *)d->reason;
    ev->severity_changed = &st->severity_changed;
    break;
  case LINKAGE__V1__EVENT_TYPE__ACKNOWLEDGED:
    linkage__v1__acknowledged__init(&st->acknowledged);
    st->acknowledged.note = (char *)d->reason;
    ev->acknowledged = &st->acknowledged;
    break;
  case LINKAGE__V1__EVENT_TYPE__CLOSED:
    linkage__v1__closed__init(&st->closed);
    st->closed.reason = (char *)d->reason;
    ev->closed = &st->closed;
    break;
  case LINKAGE__V1__EVENT_TYPE__COORDINATOR_NOTE:
    linkage__v1__coordinator_note__init(&st->note);
    st->note.text = (char *)d->reason;
    ev->coordinator_note = &st->note;
    break;
  case LINKAGE__V1__EVENT_TYPE__PLANNED_WORK_DECLARED:
    linkage__v1__planned_work__init(&st->planned);
    st->planned.window_id = (char *)d->planned.window_id;
    st->planned.compound_id = (char *)d->planned.compound_id;
    st->planned.building = (char *)d->planned.building;
    st->planned.kind = (char *)d->planned.kind;
    st->planned.from_us = d->planned.from_us;
    st->planned.to_us = d->planned.to_us;
    st->planned.reason = (char *)d->reason;
    ev->planned_work_declared = &st->planned;
    break;
  case LINKAGE__V1__EVENT_TYPE__PLANNED_WORK_LIFTED:
    linkage__v1__planned_work_lifted__init(&st->lifted);
    st->lifted.window_id = (char *)d->planned.window_id;
    st->lifted.reason = (char *)d->reason;
    ev->planned_work_lifted = &st->lifted;
    break;
  case LINKAGE__V1__EVENT_TYPE__CALL_REQUESTED:
    linkage__v1__call_requested__init(&st->call);
    st->call.role = (char *)d->role;
    st->call.unit_id = (char *)d->unit_id;
    st->call.reason = (char *)d->reason;
    ev->call_requested = &st->call;
    break;
  default: ev->body_case = LINKAGE__V1__EVENT__BODY__NOT_SET; break;
  }
}
