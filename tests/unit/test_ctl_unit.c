/* linkagectl's responder console: actions, assignment lines, answer
 * outcomes, repeat dropping and the heartbeat clock
 * (services/linkagectl/ctl_unit.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkage/v1/unit.pb-c.h"
#include "linkagectl/ctl.h"
#include "lk_test.h"

LK_TEST(answer_kinds_by_action) {
  LK_CHECK_EQ_INT(ctl_unit_answer_kind("ack"), LINKAGE__V1__ANSWER__KIND__ACKNOWLEDGED);
  LK_CHECK_EQ_INT(ctl_unit_answer_kind("on-scene"), LINKAGE__V1__ANSWER__KIND__ON_SCENE);
  LK_CHECK_EQ_INT(ctl_unit_answer_kind("resolve"), LINKAGE__V1__ANSWER__KIND__RESOLVED);
  LK_CHECK_EQ_INT(ctl_unit_answer_kind("decline"), LINKAGE__V1__ANSWER__KIND__DECLINED);
  LK_CHECK_EQ_INT(ctl_unit_answer_kind("backup"), LINKAGE__V1__ANSWER__KIND__NEED_BACKUP);
  LK_CHECK_EQ_INT(ctl_unit_answer_kind("verify"), LINKAGE__V1__ANSWER__KIND__VERIFIED);
  /* listen and list are not answers; neither are near misses. */
  LK_CHECK_EQ_INT(ctl_unit_answer_kind("listen"), 0);
  LK_CHECK_EQ_INT(ctl_unit_answer_kind("list"), 0);
  LK_CHECK_EQ_INT(ctl_unit_answer_kind("on_scene"), 0);
  LK_CHECK_EQ_INT(ctl_unit_answer_kind("ACK"), 0);
  LK_CHECK_EQ_INT(ctl_unit_answer_kind(""), 0);
  LK_CHECK_EQ_INT(ctl_unit_answer_kind(NULL), 0);
}

static void sample(Linkage__V1__Assignment *a, Linkage__V1__Location *loc) {
  linkage__v1__assignment__init(a);
  linkage__v1__location__init(loc);
  loc->compound_id = "zhouji-asia-bay";
  loc->building = "3";
  a->assignment_id = "inc-0123456789abcdef0123/fire_brigade/1";
  a->incident_id = "inc-0123456789abcdef0123";
  a->role = "fire_brigade";
  a->lead = 1;
  a->category = LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER;
  a->kind = "gas_leak";
  a->severity = LINKAGE__V1__SEVERITY__SEVERITY_II;
  a->location = loc;
  a->description = "gas smell on the stairs";
  a->tier = LINKAGE__V1__TIER__COMPOUND;
  a->acknowledge_by_us = 1795000000123456LL; /* 2026-11-18T11:06:40.123456Z */
  a->arrive_by_us = 1795000600000000LL;
  a->resolve_by_us = 1795003600000000LL;
  a->state = "dispatched";
}

LK_TEST(assignment_line_has_every_field_in_order) {
  Linkage__V1__Assignment a;
  Linkage__V1__Location loc;
  char line[2048];

  sample(&a, &loc);
  ctl_unit_format_assignment(&a, line, sizeof line);
  LK_CHECK_STR(line, "assignment_id=inc-0123456789abcdef0123/fire_brigade/1 "
                     "incident_id=inc-0123456789abcdef0123 role=fire_brigade lead=true "
                     "category=accident_disaster kind=gas_leak severity=II "
                     "compound=zhouji-asia-bay building=3 tier=compound "
                     "acknowledge_by=2026-11-18T11:06:40.123456Z "
                     "arrive_by=2026-11-18T11:16:40.000000Z "
                     "resolve_by=2026-11-18T12:06:40.000000Z state=dispatched exercise=false "
                     "description=\"gas smell on the stairs\"");
}

LK_TEST(assignment_line_marks_empty_and_unknown_values) {
  Linkage__V1__Assignment a;
  Linkage__V1__Location loc;
  char line[2048];

  sample(&a, &loc);
  a.lead = 0;
  loc.building = "";
  a.arrive_by_us = 0;            /* no deadline */
  a.tier = (Linkage__V1__Tier)9; /* a newer dispatch's tier: its number */
  a.state = "";
  a.description = "said \"help\"\nthen hung up";
  ctl_unit_format_assignment(&a, line, sizeof line);
  LK_CHECK_CONTAINS(line, " lead=false ");
  LK_CHECK_CONTAINS(line, " building=- ");
  LK_CHECK_CONTAINS(line, " tier=9 ");
  LK_CHECK_CONTAINS(line, " arrive_by=- ");
  LK_CHECK_CONTAINS(line, " state=- ");
  a.exercise = 1;
  ctl_unit_format_assignment(&a, line, sizeof line);
  LK_CHECK_CONTAINS(line, " exercise=true ");
  /* Quotes and the newline are escaped: the line stays one line. */
  LK_CHECK(strchr(line, '\n') == NULL);
  LK_CHECK_CONTAINS(line, "description=\"said \\\"help\\\"");

  a.location = NULL; /* a malformed Assignment must not crash the console */
  ctl_unit_format_assignment(&a, line, sizeof line);
  LK_CHECK_CONTAINS(line, " compound=- building=- ");
}

LK_TEST(assignment_line_truncates_safely) {
  Linkage__V1__Assignment a;
  Linkage__V1__Location loc;
  char line[40];

  sample(&a, &loc);
  memset(line, 'x', sizeof line);
  ctl_unit_format_assignment(&a, line, sizeof line);
  LK_CHECK(strlen(line) < sizeof line);
  LK_CHECK(strncmp(line, "assignment_id=inc-", 18) == 0);
}

LK_TEST(reply_outcomes_and_exit_codes) {
  Linkage__V1__AnswerReply r;
  char line[512];

  linkage__v1__answer_reply__init(&r);
  r.status = LINKAGE__V1__ANSWER_REPLY__STATUS__OK;
  r.event_id = "inc-1/unit_acknowledged/fire_brigade/1";
  LK_CHECK_EQ_INT(ctl_unit_reply_outcome(&r, line, sizeof line), 0);
  LK_CHECK_STR(line, "status=OK event_id=inc-1/unit_acknowledged/fire_brigade/1");

  linkage__v1__answer_reply__init(&r);
  r.status = LINKAGE__V1__ANSWER_REPLY__STATUS__REJECTED;
  r.error = "assignment \"x\" belongs to another unit";
  LK_CHECK_EQ_INT(ctl_unit_reply_outcome(&r, line, sizeof line), 1);
  LK_CHECK_STR(line, "status=REJECTED error=\"assignment \\\"x\\\" belongs to another unit\"");

  r.status = LINKAGE__V1__ANSWER_REPLY__STATUS__BUSY;
  r.error = "ledger slow";
  LK_CHECK_EQ_INT(ctl_unit_reply_outcome(&r, line, sizeof line), 75);
  LK_CHECK_STR(line, "status=BUSY error=\"ledger slow\"");

  r.status = (Linkage__V1__AnswerReply__Status)7;
  LK_CHECK_EQ_INT(ctl_unit_reply_outcome(&r, line, sizeof line), 75);
  LK_CHECK_STR(line, "status=UNKNOWN error=\"reply status 7\"");
}

LK_TEST(seen_drops_repeats) {
  struct ctl_seen s;
  char id[64];

  LK_CHECK_EQ_INT(ctl_seen_init(&s), 0);
  LK_CHECK_EQ_INT(ctl_seen_add(&s, "inc-1/fire_brigade/1"), 1);
  LK_CHECK_EQ_INT(ctl_seen_add(&s, "inc-1/fire_brigade/1"), 0);
  LK_CHECK_EQ_INT(ctl_seen_add(&s, "inc-1/fire_brigade/2"), 1); /* a replacement is new */
  LK_CHECK_EQ_INT(ctl_seen_add(&s, ""), 0);
  LK_CHECK_EQ_INT(ctl_seen_add(&s, NULL), 0);
  /* Past the initial capacity the map grows and still remembers. */
  for (int i = 0; i < 1000; i++) {
    snprintf(id, sizeof id, "inc-%d/grid_worker/1", i);
    LK_CHECK_EQ_INT(ctl_seen_add(&s, id), 1);
  }
  LK_CHECK_EQ_INT(ctl_seen_add(&s, "inc-7/grid_worker/1"), 0);
  LK_CHECK_EQ_INT(ctl_seen_add(&s, "inc-1/fire_brigade/1"), 0);
  ctl_seen_close(&s);
}

LK_TEST(poll_waits_for_the_nearer_of_heartbeat_and_deadline) {
  /* No deadline: until the heartbeat, rounded up to whole ms. */
  LK_CHECK_EQ_INT(ctl_unit_poll_ms(1000, 2001000, 0), 2000);
  LK_CHECK_EQ_INT(ctl_unit_poll_ms(1000, 2001001, 0), 2001);
  /* The deadline comes first. */
  LK_CHECK_EQ_INT(ctl_unit_poll_ms(1000, 2001000, 501000), 500);
  /* The heartbeat comes first. */
  LK_CHECK_EQ_INT(ctl_unit_poll_ms(1000, 2001000, 9001000), 2000);
  /* Due or past: do not block. */
  LK_CHECK_EQ_INT(ctl_unit_poll_ms(5000, 5000, 0), 0);
  LK_CHECK_EQ_INT(ctl_unit_poll_ms(5000, 9000, 4000), 0);
}

int main(void) {
  return lk_test_run_all();
}
