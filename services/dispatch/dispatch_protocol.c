/* The responder protocol's rules (proto/linkage/v1/unit.proto), decided from a message and
 * what the shell knows of the connection it came on: plain functions, no sockets. The shell
 * (dispatch_shell.c) sends what is decided here; tests/cases/unit_messages.tsv replays the
 * protocol's cases against the running daemon. */
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "linkage/error.h"
#include "linkage/v1/unit.pb-c.h"

#define REFUSE(...)                                                                                \
  do {                                                                                             \
    snprintf(why, whylen, __VA_ARGS__);                                                            \
    return DISPATCH_ACT_REFUSE;                                                                    \
  } while (0)

enum dispatch_act dispatch_protocol_decide(const struct dispatch_state *s,
                                           const Linkage__V1__UnitMessage *um,
                                           const struct dispatch_conn_view *c, int64_t now_us,
                                           struct dispatch_decision *d, char *why, size_t whylen) {
  const char *district = s->district ? s->district->district.id : "?";
  size_t idlen = strlen(um->unit_id);
  if (idlen == 0 || idlen >= LK_ID_MAX || !lk_utf8_valid(um->unit_id, idlen)) {
    snprintf(why, whylen, "a UnitMessage needs unit_id: the unit's id in the district data");
    return DISPATCH_ACT_REJECT;
  }
  if (c->key_unit && strcmp(um->unit_id, c->key_unit) != 0)
    REFUSE("unit_id %s does not match the key's unit %s", um->unit_id, c->key_unit);
  if (um->body_case == LINKAGE__V1__UNIT_MESSAGE__BODY_HELLO) {
    if (!c->known_unit)
      REFUSE("unknown unit id \"%s\" in district %s; not registered", um->unit_id, district);
    return DISPATCH_ACT_HELLO;
  }
  if (um->body_case == LINKAGE__V1__UNIT_MESSAGE__BODY__NOT_SET) {
    snprintf(why, whylen, "a UnitMessage needs a body: hello, heartbeat, answer or list");
    return DISPATCH_ACT_REJECT;
  }
  /* One that dispatch forgot (a restart: "send Hello first") should say Hello again; one taken
   * over by a later Hello is told so, and should not take it back. */
  if (!c->known_unit) REFUSE("unknown unit id \"%s\" in district %s", um->unit_id, district);
  if (!c->registered) REFUSE("unit %s is not registered: send Hello first", um->unit_id);
  if (!c->same_connection)
    REFUSE("unit %s is connected on another connection: a later Hello took it over", um->unit_id);
  switch (um->body_case) {
  case LINKAGE__V1__UNIT_MESSAGE__BODY_HEARTBEAT: return DISPATCH_ACT_HEARTBEAT;
  case LINKAGE__V1__UNIT_MESSAGE__BODY_LIST: return DISPATCH_ACT_LIST;
  case LINKAGE__V1__UNIT_MESSAGE__BODY_ANSWER: break;
  default: REFUSE("unknown UnitMessage body");
  }
  const Linkage__V1__Answer *a = um->answer;
  if (!a->assignment_id[0]) REFUSE("an answer needs an assignment_id");
  if (strlen(a->assignment_id) >= 2 * LK_ID_MAX ||
      !lk_utf8_valid(a->assignment_id, strlen(a->assignment_id)))
    REFUSE("assignment_id is too long or not UTF-8");
  if (a->kind < LINKAGE__V1__ANSWER__KIND__ACKNOWLEDGED ||
      a->kind > LINKAGE__V1__ANSWER__KIND__VERIFIED)
    REFUSE("unknown answer kind: acknowledged, on_scene, resolved, declined, need_backup or "
           "verified");
  if (dispatch_answer_decision(s, um->unit_id, a->assignment_id, (int)a->kind, a->note, now_us, d,
                               why, whylen) != LK_OK)
    return DISPATCH_ACT_REFUSE;
  return DISPATCH_ACT_ANSWER;
}
