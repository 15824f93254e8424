/* The responder protocol's rules (dispatch_protocol_decide) over the demo district: what a
 * unit's message asks for, given what the shell knows of its connection. The session rules
 * (Hello registers, a later Hello takes over, the old connection is told so) and the one-shot
 * console beside a session (UnitMessage.one_shot: answers and lists without unseating it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch.h"
#include "linkage/error.h"
#include "linkage/v1/unit.pb-c.h"
#include "lk_test.h"

#define T0 1800000000000000LL /* 16:00 local time */

struct fx {
  struct lk_district *d;
  struct dispatch_state s;
  uint64_t position;
  char fire[2 * LK_ID_MAX]; /* the fire brigade's assignment of the gas leak */
};

static void fold(struct fx *f, const Linkage__V1__Event *ev) {
  size_t len;
  uint8_t *buf = lk_event_pack(ev, &len);
  Linkage__V1__Event *back = linkage__v1__event__unpack(NULL, len, buf);
  if (back) dispatch_state_apply(&f->s, ++f->position, back);
  linkage__v1__event__free_unpacked(back, NULL);
  free(buf);
}

/* The demo district with one gas leak in Zhouji Asia Bay, routed and dispatched. */
static int fx_open(struct fx *f) {
  char err[512];
  memset(f, 0, sizeof *f);
  f->d = lk_district_load("deploy/district/wenjiang.yaml", err, sizeof err);
  if (!f->d) {
    fprintf(stderr, "%s\n", err);
    return 0;
  }
  struct dispatch_policy pol = {.time_scale = 1, .verify_window_us = 0, .utc_offset_min = 480};
  if (dispatch_state_init(&f->s, f->d, &pol) != LK_OK) return 0;

  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
  Linkage__V1__Reported rep = LINKAGE__V1__REPORTED__INIT;
  Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
  loc.compound_id = "zhouji-asia-bay";
  loc.building = "3";
  r.device_id = "dev-1";
  r.sequence = 1;
  r.category = LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER;
  r.kind = "gas_leak";
  r.severity = LINKAGE__V1__SEVERITY__SEVERITY_III;
  r.description = "smell of gas in the stairwell";
  r.location = &loc;
  rep.report = &r;
  ev.event_id = "inc-gas/reported";
  ev.incident_id = "inc-gas";
  ev.type = LINKAGE__V1__EVENT_TYPE__REPORTED;
  ev.at_us = T0;
  ev.actor = "device:dev-1";
  ev.body_case = LINKAGE__V1__EVENT__BODY_REPORTED;
  ev.reported = &rep;
  fold(f, &ev);

  Linkage__V1__Routed ro = LINKAGE__V1__ROUTED__INIT;
  Linkage__V1__Event rev = LINKAGE__V1__EVENT__INIT;
  ro.tier = LINKAGE__V1__TIER__COMMUNITY;
  rev.event_id = "inc-gas/routed";
  rev.incident_id = "inc-gas";
  rev.type = LINKAGE__V1__EVENT_TYPE__ROUTED;
  rev.at_us = T0;
  rev.actor = "svc:router";
  rev.body_case = LINKAGE__V1__EVENT__BODY_ROUTED;
  rev.routed = &ro;
  fold(f, &rev);

  struct dispatch_unit_status status[64];
  memset(status, 0, sizeof status);
  struct dispatch_decision out[DISPATCH_MAX_ROLES];
  struct dispatch_incident *inc = dispatch_incident_get(&f->s, "inc-gas");
  if (!inc) return 0;
  size_t n =
      dispatch_decide(&f->s, (uint32_t)(inc - f->s.incidents), status, T0, out, DISPATCH_MAX_ROLES);
  for (size_t i = 0; i < n; i++) {
    struct dispatch_event_storage st;
    Linkage__V1__Event dev;
    dispatch_event_build(&out[i], "svc:dispatch", T0, &dev, &st);
    fold(f, &dev);
    if (strcmp(out[i].role, "fire_brigade") == 0)
      snprintf(f->fire, sizeof f->fire, "%s", out[i].assignment_id);
  }
  return f->fire[0] != '\0';
}

static void fx_close(struct fx *f) {
  dispatch_state_close(&f->s);
  lk_district_destroy(&f->d);
}

/* One message of unit_id with the body named (hello, heartbeat, list, answer). */
struct msg {
  Linkage__V1__UnitMessage um;
  Linkage__V1__Hello hello;
  Linkage__V1__Heartbeat hb;
  Linkage__V1__ListAssignments list;
  Linkage__V1__Answer answer;
};

static Linkage__V1__UnitMessage *make(struct msg *m, const char *unit_id, const char *body,
                                      int one_shot) {
  linkage__v1__unit_message__init(&m->um);
  linkage__v1__hello__init(&m->hello);
  linkage__v1__heartbeat__init(&m->hb);
  linkage__v1__list_assignments__init(&m->list);
  linkage__v1__answer__init(&m->answer);
  m->um.unit_id = (char *)unit_id;
  m->um.seq = 7;
  m->um.one_shot = one_shot != 0;
  if (strcmp(body, "hello") == 0) {
    m->hello.software = "test";
    m->um.body_case = LINKAGE__V1__UNIT_MESSAGE__BODY_HELLO;
    m->um.hello = &m->hello;
  } else if (strcmp(body, "heartbeat") == 0) {
    m->um.body_case = LINKAGE__V1__UNIT_MESSAGE__BODY_HEARTBEAT;
    m->um.heartbeat = &m->hb;
  } else if (strcmp(body, "list") == 0) {
    m->um.body_case = LINKAGE__V1__UNIT_MESSAGE__BODY_LIST;
    m->um.list = &m->list;
  } else if (strcmp(body, "answer") == 0) {
    m->answer.kind = LINKAGE__V1__ANSWER__KIND__ACKNOWLEDGED;
    m->answer.note = "";
    m->um.body_case = LINKAGE__V1__UNIT_MESSAGE__BODY_ANSWER;
    m->um.answer = &m->answer;
  }
  return &m->um;
}

/* The connections a message may come on. */
static const struct dispatch_conn_view SESSION = {
    .known_unit = 1, .registered = 1, .same_connection = 1};
static const struct dispatch_conn_view OTHER = {.known_unit = 1, .registered = 1};
static const struct dispatch_conn_view NO_SESSION = {.known_unit = 1};
static const struct dispatch_conn_view UNKNOWN = {0};

static enum dispatch_act decide(struct fx *f, const Linkage__V1__UnitMessage *um,
                                const struct dispatch_conn_view *c, char *why, size_t whylen) {
  struct dispatch_decision d;
  why[0] = '\0';
  return dispatch_protocol_decide(&f->s, um, c, T0 + 1000000, &d, why, whylen);
}

LK_TEST(a_hello_opens_the_session_and_a_later_one_takes_it_over) {
  struct fx f;
  if (!LK_CHECK(fx_open(&f))) return;
  struct msg m;
  char why[512];
  LK_CHECK_EQ_INT(decide(&f, make(&m, "fire-wenjiang", "hello", 0), &NO_SESSION, why, sizeof why),
                  DISPATCH_ACT_HELLO);
  /* A second device of the unit, with a full Hello, takes the session as before. */
  LK_CHECK_EQ_INT(decide(&f, make(&m, "fire-wenjiang", "hello", 0), &OTHER, why, sizeof why),
                  DISPATCH_ACT_HELLO);
  /* The connection it took over is told so, whatever it sends. */
  const char *bodies[] = {"heartbeat", "list", "answer"};
  for (size_t i = 0; i < 3; i++) {
    Linkage__V1__UnitMessage *um = make(&m, "fire-wenjiang", bodies[i], 0);
    m.answer.assignment_id = f.fire;
    LK_CHECK_EQ_INT(decide(&f, um, &OTHER, why, sizeof why), DISPATCH_ACT_REFUSE);
    LK_CHECK_CONTAINS(why, "a later Hello took it over");
    LK_CHECK_EQ_INT(decide(&f, um, &NO_SESSION, why, sizeof why), DISPATCH_ACT_REFUSE);
    LK_CHECK_CONTAINS(why, "send Hello first");
  }
  LK_CHECK_EQ_INT(decide(&f, make(&m, "fire-wenjiang", "heartbeat", 0), &SESSION, why, sizeof why),
                  DISPATCH_ACT_HEARTBEAT);
  LK_CHECK_EQ_INT(decide(&f, make(&m, "fire-wenjiang", "list", 0), &SESSION, why, sizeof why),
                  DISPATCH_ACT_LIST);
  make(&m, "fire-wenjiang", "answer", 0);
  m.answer.assignment_id = f.fire;
  LK_CHECK_EQ_INT(decide(&f, &m.um, &SESSION, why, sizeof why), DISPATCH_ACT_ANSWER);
  fx_close(&f);
}

LK_TEST(a_one_shot_console_answers_and_lists_beside_the_session) {
  struct fx f;
  if (!LK_CHECK(fx_open(&f))) return;
  struct msg m;
  char why[512];
  struct dispatch_decision d;
  /* Its Hello is welcomed without becoming the session, whether there is one or not. */
  LK_CHECK_EQ_INT(decide(&f, make(&m, "fire-wenjiang", "hello", 1), &OTHER, why, sizeof why),
                  DISPATCH_ACT_GREET);
  LK_CHECK_EQ_INT(decide(&f, make(&m, "fire-wenjiang", "hello", 1), &NO_SESSION, why, sizeof why),
                  DISPATCH_ACT_GREET);
  /* Lists and answers on a connection that is not the session, or with no session at all. */
  const struct dispatch_conn_view *views[] = {&OTHER, &NO_SESSION, &SESSION};
  for (size_t i = 0; i < 3; i++) {
    LK_CHECK_EQ_INT(decide(&f, make(&m, "fire-wenjiang", "list", 1), views[i], why, sizeof why),
                    DISPATCH_ACT_LIST);
    make(&m, "fire-wenjiang", "answer", 1);
    m.answer.assignment_id = f.fire;
    why[0] = '\0';
    LK_CHECK_EQ_INT(
        dispatch_protocol_decide(&f.s, &m.um, views[i], T0 + 1000000, &d, why, sizeof why),
        DISPATCH_ACT_ANSWER);
    /* The same event as from the session: the answer is the unit's, whichever console sent it. */
    LK_CHECK_EQ_INT(d.type, LINKAGE__V1__EVENT_TYPE__UNIT_ACKNOWLEDGED);
    LK_CHECK_STR(d.assignment_id, f.fire);
    LK_CHECK_STR(d.unit_id, "fire-wenjiang");
  }
  /* It has no session whose life a heartbeat could show. */
  LK_CHECK_EQ_INT(decide(&f, make(&m, "fire-wenjiang", "heartbeat", 1), &OTHER, why, sizeof why),
                  DISPATCH_ACT_REFUSE);
  LK_CHECK_CONTAINS(why, "no session to keep alive");
  fx_close(&f);
}

LK_TEST(a_one_shot_console_is_held_to_the_same_checks) {
  struct fx f;
  if (!LK_CHECK(fx_open(&f))) return;
  struct msg m;
  char why[512];
  /* Unknown units, at Hello and after. */
  LK_CHECK_EQ_INT(decide(&f, make(&m, "nobody-at-all", "hello", 1), &UNKNOWN, why, sizeof why),
                  DISPATCH_ACT_REFUSE);
  LK_CHECK_CONTAINS(why, "unknown unit id \"nobody-at-all\"");
  LK_CHECK_EQ_INT(decide(&f, make(&m, "nobody-at-all", "list", 1), &UNKNOWN, why, sizeof why),
                  DISPATCH_ACT_REFUSE);
  LK_CHECK_CONTAINS(why, "unknown unit id");
  /* With CURVE the key names the unit: a one-shot console of another unit gets nothing. */
  struct dispatch_conn_view keyed = NO_SESSION;
  keyed.key_unit = "police-yongquan";
  LK_CHECK_EQ_INT(decide(&f, make(&m, "fire-wenjiang", "hello", 1), &keyed, why, sizeof why),
                  DISPATCH_ACT_REFUSE);
  LK_CHECK_CONTAINS(why, "does not match the key's unit police-yongquan");
  LK_CHECK_EQ_INT(decide(&f, make(&m, "fire-wenjiang", "list", 1), &keyed, why, sizeof why),
                  DISPATCH_ACT_REFUSE);
  keyed.key_unit = "fire-wenjiang";
  LK_CHECK_EQ_INT(decide(&f, make(&m, "fire-wenjiang", "list", 1), &keyed, why, sizeof why),
                  DISPATCH_ACT_LIST);
  /* Another unit's assignment, a bad kind, no assignment id. */
  make(&m, "committee-zhouji-asia-bay", "answer", 1);
  m.answer.assignment_id = f.fire;
  LK_CHECK_EQ_INT(decide(&f, &m.um, &NO_SESSION, why, sizeof why), DISPATCH_ACT_REFUSE);
  LK_CHECK_CONTAINS(why, "belongs to unit \"fire-wenjiang\"");
  make(&m, "fire-wenjiang", "answer", 1);
  m.answer.assignment_id = f.fire;
  m.answer.kind = (Linkage__V1__Answer__Kind)9;
  LK_CHECK_EQ_INT(decide(&f, &m.um, &NO_SESSION, why, sizeof why), DISPATCH_ACT_REFUSE);
  LK_CHECK_CONTAINS(why, "unknown answer kind");
  make(&m, "fire-wenjiang", "answer", 1);
  m.answer.assignment_id = "";
  LK_CHECK_EQ_INT(decide(&f, &m.um, &NO_SESSION, why, sizeof why), DISPATCH_ACT_REFUSE);
  LK_CHECK_CONTAINS(why, "needs an assignment_id");
  /* Not a unit's message at all. */
  LK_CHECK_EQ_INT(decide(&f, make(&m, "", "list", 1), &UNKNOWN, why, sizeof why),
                  DISPATCH_ACT_REJECT);
  make(&m, "fire-wenjiang", "none", 1);
  LK_CHECK_EQ_INT(decide(&f, &m.um, &NO_SESSION, why, sizeof why), DISPATCH_ACT_REJECT);
  fx_close(&f);
}

LK_TEST(answers_wait_while_dispatch_catches_up) {
  struct fx f;
  if (!LK_CHECK(fx_open(&f))) return;
  struct msg m;
  char why[512];
  struct dispatch_conn_view session = SESSION, console = NO_SESSION;
  session.catching_up = console.catching_up = 1;
  make(&m, "fire-wenjiang", "answer", 0);
  m.answer.assignment_id = f.fire;
  LK_CHECK_EQ_INT(decide(&f, &m.um, &session, why, sizeof why), DISPATCH_ACT_BUSY);
  LK_CHECK_CONTAINS(why, "catching up");
  make(&m, "fire-wenjiang", "answer", 1);
  m.answer.assignment_id = "inc-00000000000000000000/fire_brigade/1"; /* not folded yet, maybe */
  LK_CHECK_EQ_INT(decide(&f, &m.um, &console, why, sizeof why), DISPATCH_ACT_BUSY);
  /* The session rules still come first: a connection taken over is told so, not put off. */
  struct dispatch_conn_view other = OTHER;
  other.catching_up = 1;
  make(&m, "fire-wenjiang", "answer", 0);
  m.answer.assignment_id = f.fire;
  LK_CHECK_EQ_INT(decide(&f, &m.um, &other, why, sizeof why), DISPATCH_ACT_REFUSE);
  /* Hello, heartbeats and lists do not wait. */
  LK_CHECK_EQ_INT(decide(&f, make(&m, "fire-wenjiang", "hello", 0), &session, why, sizeof why),
                  DISPATCH_ACT_HELLO);
  LK_CHECK_EQ_INT(decide(&f, make(&m, "fire-wenjiang", "list", 1), &console, why, sizeof why),
                  DISPATCH_ACT_LIST);
  fx_close(&f);
}

int main(void) {
  return lk_test_run_all();
}
