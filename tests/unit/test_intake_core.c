/* linkage-intake's decisions: what each device message gets, the event a
 * valid report becomes, and the answer each ledger reply turns into. */

#include <stdlib.h>
#include <string.h>

#include "intake/intake_core.h"
#include "linkage/error.h"
#include "lk_test.h"

static const struct lk_district *demo(void) {
  static struct lk_district *d;
  if (d == NULL) {
    char err[512];
    d = lk_district_load("deploy/district/wenjiang.yaml", err, sizeof(err));
    if (d == NULL) fprintf(stderr, "cannot load the demo district: %s\n", err);
  }
  return d;
}

static const struct intake_limits limits = {.inflight_max = 100, .retry_after_ms = 250};

struct wire {
  Linkage__V1__Report r;
  Linkage__V1__Location loc;
  uint8_t buf[16384];
  size_t len;
};

static void wire_init(struct wire *w) {
  linkage__v1__report__init(&w->r);
  linkage__v1__location__init(&w->loc);
  w->r.device_id = "sensor-zab-12-2";
  w->r.sequence = 41;
  w->r.category = LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER;
  w->r.kind = "lift_entrapment";
  w->r.severity = LINKAGE__V1__SEVERITY__SEVERITY_IV;
  w->r.location = &w->loc;
  w->loc.compound_id = "zhouji-asia-bay";
  w->loc.building = "12";
  w->r.description = "two residents trapped in lift B";
  w->r.observed_at_us = 1790000000000000LL;
}

static void wire_pack(struct wire *w) {
  w->len = linkage__v1__report__pack(&w->r, w->buf);
}

static enum intake_verdict admit(struct wire *w, int frames, unsigned inflight,
                                 Linkage__V1__Report **r, struct intake_ack *ack) {
  wire_pack(w);
  return intake_core_admit(&limits, demo(), frames, w->buf, w->len, inflight, r, ack);
}

LK_TEST(valid_report_goes_to_ledger) {
  struct wire w;
  wire_init(&w);
  Linkage__V1__Report *r;
  struct intake_ack ack;
  LK_CHECK_EQ_INT(admit(&w, 1, 0, &r, &ack), INTAKE_APPEND);
  LK_CHECK(r != NULL);
  char want[LK_ID_MAX];
  lk_incident_id("sensor-zab-12-2", 41, want);
  LK_CHECK_STR(ack.incident_id, want);
  LK_CHECK_EQ_INT(ack.sequence, 41);
  if (r) {
    LK_CHECK_STR(r->device_id, "sensor-zab-12-2");
    linkage__v1__report__free_unpacked(r, NULL);
  }
}

LK_TEST(no_body_frame_rejected) {
  Linkage__V1__Report *r;
  struct intake_ack ack;
  LK_CHECK_EQ_INT(intake_core_admit(&limits, demo(), 0, NULL, 0, 0, &r, &ack), INTAKE_ANSWER);
  LK_CHECK(r == NULL);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__REJECTED);
  LK_CHECK_STR(ack.error, "empty message: expected one frame holding a Report");
  LK_CHECK_EQ_INT(ack.sequence, 0);
}

LK_TEST(several_body_frames_rejected) {
  struct wire w;
  wire_init(&w);
  Linkage__V1__Report *r;
  struct intake_ack ack;
  LK_CHECK_EQ_INT(admit(&w, 2, 0, &r, &ack), INTAKE_ANSWER);
  LK_CHECK(r == NULL);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__REJECTED);
  LK_CHECK_STR(ack.error, "expected one frame holding a Report, got 2 frames");
  LK_CHECK_EQ_INT(admit(&w, 8, 0, &r, &ack), INTAKE_ANSWER);
  LK_CHECK_STR(ack.error, "expected one frame holding a Report, got at least 8 frames");
}

LK_TEST(oversized_frame_rejected) {
  size_t len = 1 << 20;
  uint8_t *big = calloc(1, len);
  Linkage__V1__Report *r;
  struct intake_ack ack;
  LK_CHECK_EQ_INT(intake_core_admit(&limits, demo(), 1, big, len, 0, &r, &ack), INTAKE_ANSWER);
  LK_CHECK(r == NULL);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__REJECTED);
  LK_CHECK_STR(ack.error, "report too large (1048576 bytes, max 8192)");
  LK_CHECK_EQ_INT(intake_core_admit(&limits, demo(), 1, big, 8193, 0, &r, &ack), INTAKE_ANSWER);
  LK_CHECK_STR(ack.error, "report too large (8193 bytes, max 8192)");
  free(big);
}

LK_TEST(largest_valid_report_fits_the_frame_limit) {
  struct wire w;
  wire_init(&w);
  char id[65], kind[65], desc[2001], cid[65], b[65], u[65];
  memset(id, 'd', 64), id[64] = 0;
  memset(kind, 'k', 64), kind[64] = 0;
  memset(desc, 'x', 2000), desc[2000] = 0;
  memset(b, 'b', 64), b[64] = 0;
  memset(u, 'u', 64), u[64] = 0;
  strcpy(cid, "zhouji-yinhai-bay");
  w.r.device_id = id;
  w.r.sequence = UINT64_MAX;
  w.r.kind = kind;
  w.r.description = desc;
  w.r.observed_at_us = INT64_MAX;
  w.loc.compound_id = cid;
  w.loc.building = b;
  w.loc.unit = u;
  w.loc.floor = -2147483647 - 1;
  w.loc.lat = -89.9;
  w.loc.lon = -179.9;
  Linkage__V1__Report *r;
  struct intake_ack ack;
  LK_CHECK_EQ_INT(admit(&w, 1, 0, &r, &ack), INTAKE_APPEND);
  LK_CHECK(w.len <= LK_REPORT_FRAME_MAX);
  linkage__v1__report__free_unpacked(r, NULL);

  /* and its event fits a ledger frame with room to spare */
  struct intake_event ev;
  LK_CHECK_EQ_INT(intake_core_event(&ev, &w.r, ack.incident_id, 1), LK_OK);
  LK_CHECK(linkage__v1__event__get_packed_size(&ev.ev) < LK_REPORT_FRAME_MAX + 512);
}

LK_TEST(garbage_rejected_as_malformed) {
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  Linkage__V1__Report *r;
  struct intake_ack ack;
  LK_CHECK_EQ_INT(intake_core_admit(&limits, demo(), 1, junk, sizeof(junk), 0, &r, &ack),
                  INTAKE_ANSWER);
  LK_CHECK(r == NULL);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__REJECTED);
  LK_CHECK_STR(ack.error, "malformed Report: 11 bytes are not a protobuf linkage.v1.Report");
  /* a length-delimited field running past the end */
  const uint8_t cut[] = {0x0a, 0x10, 'a', 'b'};
  LK_CHECK_EQ_INT(intake_core_admit(&limits, demo(), 1, cut, sizeof(cut), 0, &r, &ack),
                  INTAKE_ANSWER);
  LK_CHECK_CONTAINS(ack.error, "malformed Report: ");
}

LK_TEST(empty_frame_is_an_empty_report) {
  Linkage__V1__Report *r;
  struct intake_ack ack;
  const uint8_t none[1] = {0};
  LK_CHECK_EQ_INT(intake_core_admit(&limits, demo(), 1, none, 0, 0, &r, &ack), INTAKE_ANSWER);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__REJECTED);
  LK_CHECK_CONTAINS(ack.error, "device_id is required; sequence must be > 0");
}

LK_TEST(rule_violation_rejected_with_sequence) {
  struct wire w;
  wire_init(&w);
  w.loc.compound_id = "nowhere";
  Linkage__V1__Report *r;
  struct intake_ack ack;
  LK_CHECK_EQ_INT(admit(&w, 1, 0, &r, &ack), INTAKE_ANSWER);
  LK_CHECK(r == NULL);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__REJECTED);
  LK_CHECK_STR(ack.error, "location.compound_id \"nowhere\" is not a compound of this district");
  LK_CHECK_EQ_INT(ack.sequence, 41);
  LK_CHECK_STR(ack.incident_id, "");
}

/* protobuf-c neither checks UTF-8 nor enum ranges on the wire. */
LK_TEST(wire_level_violations_rejected) {
  struct wire w;
  wire_init(&w);
  w.r.description = "bad \xc0\xaf";
  Linkage__V1__Report *r;
  struct intake_ack ack;
  LK_CHECK_EQ_INT(admit(&w, 1, 0, &r, &ack), INTAKE_ANSWER);
  LK_CHECK_STR(ack.error, "description is not valid UTF-8");

  wire_init(&w);
  w.r.category = (Linkage__V1__Category)42;
  LK_CHECK_EQ_INT(admit(&w, 1, 0, &r, &ack), INTAKE_ANSWER);
  LK_CHECK_STR(ack.error, "category 42 is not a known Category");
}

LK_TEST(busy_at_capacity_for_valid_reports_only) {
  struct wire w;
  wire_init(&w);
  Linkage__V1__Report *r;
  struct intake_ack ack;
  LK_CHECK_EQ_INT(admit(&w, 1, 99, &r, &ack), INTAKE_APPEND);
  linkage__v1__report__free_unpacked(r, NULL);
  LK_CHECK_EQ_INT(admit(&w, 1, 100, &r, &ack), INTAKE_ANSWER);
  LK_CHECK(r == NULL);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__BUSY);
  LK_CHECK_EQ_INT(ack.retry_after_ms, 250);
  LK_CHECK_EQ_INT(ack.sequence, 41);
  LK_CHECK_STR(ack.error, "intake is at capacity (100 reports in flight)");
  LK_CHECK_STR(ack.incident_id, "");
  /* a bad report is refused for good, not told to come back */
  w.r.sequence = 0;
  LK_CHECK_EQ_INT(admit(&w, 1, 100, &r, &ack), INTAKE_ANSWER);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__REJECTED);
}

LK_TEST(reported_event_built) {
  struct wire w;
  wire_init(&w);
  char inc[LK_ID_MAX];
  lk_incident_id(w.r.device_id, w.r.sequence, inc);
  struct intake_event ev;
  LK_CHECK_EQ_INT(intake_core_event(&ev, &w.r, inc, 1790000000123456LL), LK_OK);
  char want[LK_ID_MAX + 32];
  snprintf(want, sizeof(want), "%s/reported", inc);
  LK_CHECK_STR(ev.ev.event_id, want);
  LK_CHECK_STR(ev.ev.incident_id, inc);
  LK_CHECK_EQ_INT(ev.ev.type, LINKAGE__V1__EVENT_TYPE__REPORTED);
  LK_CHECK_EQ_INT(ev.ev.at_us, 1790000000123456LL);
  LK_CHECK_STR(ev.ev.actor, "device:sensor-zab-12-2");
  LK_CHECK_EQ_INT(ev.ev.body_case, LINKAGE__V1__EVENT__BODY_REPORTED);
  LK_CHECK(ev.ev.reported == &ev.reported && ev.reported.report == &w.r);
  LK_CHECK_EQ_INT(ev.reported.received_at_us, 1790000000123456LL);
  char err[256] = "";
  LK_CHECK_EQ_INT(lk_event_check(&ev.ev, err, sizeof(err)), LK_OK);

  /* the same report again gives the same ids: a retry is a duplicate */
  struct intake_event again;
  LK_CHECK_EQ_INT(intake_core_event(&again, &w.r, inc, 1790000999000000LL), LK_OK);
  LK_CHECK_STR(again.ev.event_id, ev.ev.event_id);

  size_t len;
  uint8_t *bytes = lk_event_pack(&ev.ev, &len);
  LK_CHECK(bytes != NULL);
  Linkage__V1__Event *back = linkage__v1__event__unpack(NULL, len, bytes);
  LK_CHECK(back != NULL);
  if (back) {
    LK_CHECK_STR(back->reported->report->location->compound_id, "zhouji-asia-bay");
    LK_CHECK_EQ_INT(back->reported->report->sequence, 41);
    linkage__v1__event__free_unpacked(back, NULL);
  }
  free(bytes);
}

static void answer(Linkage__V1__AppendReply__Status st, const char *err, struct intake_ack *ack) {
  Linkage__V1__AppendReply rep;
  linkage__v1__append_reply__init(&rep);
  rep.status = st;
  rep.error = (char *)err;
  memset(ack, 0, sizeof(*ack));
  strcpy(ack->incident_id, "inc-0123456789abcdef0123");
  ack->sequence = 9;
  intake_core_answer(ack, &rep, 300);
}

LK_TEST(ledger_replies_map_to_acks) {
  struct intake_ack ack;
  answer(LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED, "", &ack);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED);
  LK_CHECK_STR(ack.incident_id, "inc-0123456789abcdef0123");
  LK_CHECK_EQ_INT(ack.sequence, 9);
  LK_CHECK_STR(ack.error, "");

  answer(LINKAGE__V1__APPEND_REPLY__STATUS__DUPLICATE, "", &ack);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__DUPLICATE);
  LK_CHECK_STR(ack.incident_id, "inc-0123456789abcdef0123");
  LK_CHECK_EQ_INT(ack.sequence, 9);

  answer(LINKAGE__V1__APPEND_REPLY__STATUS__BUSY, "queue full", &ack);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__BUSY);
  LK_CHECK_EQ_INT(ack.retry_after_ms, 300);
  LK_CHECK_STR(ack.error, "ledger busy: queue full");
  LK_CHECK_STR(ack.incident_id, "");
  LK_CHECK_EQ_INT(ack.sequence, 9);

  answer(LINKAGE__V1__APPEND_REPLY__STATUS__INVALID, "body does not match type", &ack);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__REJECTED);
  LK_CHECK_STR(ack.error, "ledger refused the event: body does not match type");
  LK_CHECK_STR(ack.incident_id, "");

  answer(LINKAGE__V1__APPEND_REPLY__STATUS__STATUS_UNSPECIFIED, "", &ack);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__BUSY);
  LK_CHECK_STR(ack.error, "unexpected ledger reply status 0");

  intake_core_answer(&ack, NULL, 300);
  LK_CHECK_EQ_INT(ack.status, LINKAGE__V1__REPORT_ACK__STATUS__BUSY);
  LK_CHECK_STR(ack.error, "ledger did not answer");
}

LK_TEST(ack_packs_and_counts) {
  struct intake_ack ack;
  answer(LINKAGE__V1__APPEND_REPLY__STATUS__BUSY, "queue full", &ack);
  uint8_t buf[INTAKE_ACK_MAX];
  size_t n = intake_core_pack(&ack, buf, sizeof(buf));
  LK_CHECK(n > 0);
  Linkage__V1__ReportAck *back = linkage__v1__report_ack__unpack(NULL, n, buf);
  LK_CHECK(back != NULL);
  if (back) {
    LK_CHECK_EQ_INT(back->status, LINKAGE__V1__REPORT_ACK__STATUS__BUSY);
    LK_CHECK_EQ_INT(back->sequence, 9);
    LK_CHECK_EQ_INT(back->retry_after_ms, 300);
    LK_CHECK_STR(back->error, "ledger busy: queue full");
    linkage__v1__report_ack__free_unpacked(back, NULL);
  }
  LK_CHECK_EQ_INT(intake_core_pack(&ack, buf, 4), 0);

  /* the largest ack fits INTAKE_ACK_MAX */
  memset(ack.incident_id, 'i', sizeof(ack.incident_id) - 1);
  memset(ack.error, 'e', sizeof(ack.error) - 1);
  ack.sequence = UINT64_MAX;
  ack.retry_after_ms = UINT32_MAX;
  LK_CHECK(intake_core_pack(&ack, buf, sizeof(buf)) > 0);

  struct intake_stats st = {0};
  struct intake_ack a = {.status = LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED};
  intake_core_count(&st, &a);
  intake_core_count(&st, &a);
  a.status = LINKAGE__V1__REPORT_ACK__STATUS__DUPLICATE;
  intake_core_count(&st, &a);
  a.status = LINKAGE__V1__REPORT_ACK__STATUS__REJECTED;
  intake_core_count(&st, &a);
  a.status = LINKAGE__V1__REPORT_ACK__STATUS__BUSY;
  intake_core_count(&st, &a);
  LK_CHECK(st.accepted == 2 && st.duplicate == 1 && st.rejected == 1 && st.busy == 1);
}

int main(void) {
  return lk_test_run_all();
}
