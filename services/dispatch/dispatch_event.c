/* Decision -> Event. The event borrows every string from the decision and
 * the storage, so nothing here allocates. */
#include <stdio.h>
#include <string.h>

#include "dispatch.h"

void dispatch_event_build(const struct dispatch_decision *d, const char *actor, int64_t now_us,
                          Linkage__V1__Event *ev, struct dispatch_event_storage *st) {
  memset(st, 0, sizeof *st);
  snprintf(st->actor, sizeof st->actor, "%s", actor);
  lk_event_envelope(ev, d->event_id, d->incident_id, d->type, now_us, st->actor);
  Linkage__V1__UnitAnswer *answer = &st->answer;
  switch (d->type) {
  case LINKAGE__V1__EVENT_TYPE__DISPATCHED:
    linkage__v1__dispatched__init(&st->dispatched);
    st->dispatched.assignment_id = (char *)d->assignment_id;
    st->dispatched.unit_id = (char *)d->unit_id;
    st->dispatched.role = (char *)d->role;
    st->dispatched.lead = d->lead ? 1 : 0;
    st->dispatched.acknowledge_by_us = d->acknowledge_by_us;
    st->dispatched.arrive_by_us = d->arrive_by_us;
    st->dispatched.resolve_by_us = d->resolve_by_us;
    st->dispatched.tier = d->tier;
    st->dispatched.replaces = (char *)d->replaces;
    st->dispatched.called_by = (char *)d->called_by;
    ev->dispatched = &st->dispatched;
    return;
  case LINKAGE__V1__EVENT_TYPE__UNIT_ACKNOWLEDGED:
  case LINKAGE__V1__EVENT_TYPE__UNIT_ON_SCENE:
  case LINKAGE__V1__EVENT_TYPE__UNIT_RESOLVED:
  case LINKAGE__V1__EVENT_TYPE__UNIT_DECLINED:
  case LINKAGE__V1__EVENT_TYPE__BACKUP_REQUESTED:
    linkage__v1__unit_answer__init(answer);
    answer->assignment_id = (char *)d->assignment_id;
    answer->unit_id = (char *)d->unit_id;
    answer->note = (char *)d->note;
    break;
  case LINKAGE__V1__EVENT_TYPE__NO_UNIT_AVAILABLE:
    linkage__v1__no_unit_available__init(&st->no_unit);
    st->no_unit.role = (char *)d->role;
    st->no_unit.reason = (char *)d->reason;
    st->no_unit.tier = d->tier;
    st->no_unit.tried = d->tried;
    st->no_unit.lead = d->lead != 0;
    ev->no_unit_available = &st->no_unit;
    return;
  case LINKAGE__V1__EVENT_TYPE__RESOLVED:
    linkage__v1__resolved__init(&st->resolved);
    st->resolved.summary = (char *)d->reason;
    ev->resolved = &st->resolved;
    return;
  case LINKAGE__V1__EVENT_TYPE__CLOSED:
    linkage__v1__closed__init(&st->closed);
    st->closed.reason = (char *)d->reason;
    ev->closed = &st->closed;
    return;
  default: ev->body_case = LINKAGE__V1__EVENT__BODY__NOT_SET; return;
  }
  switch (d->type) {
  case LINKAGE__V1__EVENT_TYPE__UNIT_ACKNOWLEDGED: ev->unit_acknowledged = answer; break;
  case LINKAGE__V1__EVENT_TYPE__UNIT_ON_SCENE: ev->unit_on_scene = answer; break;
  case LINKAGE__V1__EVENT_TYPE__UNIT_RESOLVED: ev->unit_resolved = answer; break;
  case LINKAGE__V1__EVENT_TYPE__UNIT_DECLINED: ev->unit_declined = answer; break;
  default: ev->backup_requested = answer; break;
  }
}
