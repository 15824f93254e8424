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
    /* A second terminal of the unit (one_shot) must not unseat the console that receives the
     * unit's assignments: it is welcomed, so that it learns the unit id and key are good, and
     * nothing more. */
    return um->one_shot ? DISPATCH_ACT_GREET : DISPATCH_ACT_HELLO;
  }
  if (um->body_case == LINKAGE__V1__UNIT_MESSAGE__BODY__NOT_SET) {
    snprintf(why, whylen, "a UnitMessage needs a body: hello, heartbeat, answer or list");
    return DISPATCH_ACT_REJECT;
  }
  if (!c->known_unit) REFUSE("unknown unit id \"%s\" in district %s", um->unit_id, district);
  if (um->one_shot) {
    /* A one-shot message stands alone: the unit id (and with CURVE its key, checked above) is
     * all it needs, whatever the unit's session is doing. Its heartbeat would say a session is
     * alive that it does not have. */
    if (um->body_case == LINKAGE__V1__UNIT_MESSAGE__BODY_HEARTBEAT)
      REFUSE("a one-shot message has no session to keep alive: the unit's own connection says "
             "Hello without one_shot, then sends heartbeats");
  } else {
    /* One that dispatch forgot (a restart: "send Hello first") should say Hello again; one
     * taken over by a later Hello is told so, and should not take it back. */
    if (!c->registered) REFUSE("unit %s is not registered: send Hello first", um->unit_id);
    if (!c->same_connection)
      REFUSE("unit %s is connected on another connection: a later Hello took it over", um->unit_id);
  }
  switch (um->body_case) {
  case LINKAGE__V1__UNIT_MESSAGE__BODY_HEARTBEAT: return DISPATCH_ACT_HEARTBEAT;
  case LINKAGE__V1__UNIT_MESSAGE__BODY_LIST: return DISPATCH_ACT_LIST;
  case LINKAGE__V1__UNIT_MESSAGE__BODY_ANSWER: break;
  default: REFUSE("unknown UnitMessage body");
  }
  /* Before dispatch has folded the whole ledger an assignment may look unknown or still open
   * when it is not: the answer is neither accepted nor refused, only put off. */
  if (c->catching_up) {
    snprintf(why, whylen, "dispatch is catching up with the ledger; send the same answer again");
    return DISPATCH_ACT_BUSY;
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
