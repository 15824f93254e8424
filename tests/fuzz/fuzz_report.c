/* linkage-intake's decision path for one device frame: admit (unpack and
 * lk_report_check against the demo district), the `reported` event of an
 * admitted report, the answer for each ledger reply, and the packed ack.
 * An admitted report whose event the ledger would refuse is a finding too:
 * the device would be told REJECTED only after a round trip. */
#include <string.h>

#include "fuzz_common.h"
#include "intake/intake_core.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "linkage/report.h"
#include "linkage/v1/ledger.pb-c.h"
#include "linkage/v1/report.pb-c.h"

#define NOW_US 1800000000000000LL

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fuzz_quiet();
  fuzz_district();
  return 0;
}

static void pack_and_check(const struct intake_ack *ack) {
  uint8_t buf[INTAKE_ACK_MAX];
  size_t n = intake_core_pack(ack, buf, sizeof buf);
  if (n == 0) {
    fprintf(stderr, "fuzz_report: intake_core_pack refused INTAKE_ACK_MAX bytes\n");
    abort();
  }
  Linkage__V1__ReportAck *back = linkage__v1__report_ack__unpack(NULL, n, buf);
  if (!back || back->status != ack->status || strcmp(back->incident_id, ack->incident_id) != 0) {
    fprintf(stderr, "fuzz_report: a packed ack does not read back\n");
    abort();
  }
  linkage__v1__report_ack__free_unpacked(back, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const struct lk_district *d = fuzz_district();
  struct intake_limits lim = {.inflight_max = 4, .retry_after_ms = 250};
  struct intake_stats st = {0};
  struct intake_ack ack;
  Linkage__V1__Report *r = NULL;

  /* The same frame as the only body frame, below and at capacity, and as one of several. */
  if (intake_core_admit(&lim, d, 2, data, size, 0, &r, &ack) != INTAKE_ANSWER || r) abort();
  pack_and_check(&ack);
  if (intake_core_admit(&lim, d, 1, data, size, 4, &r, &ack) != INTAKE_ANSWER || r) abort();
  pack_and_check(&ack);
  intake_core_count(&st, &ack);

  if (intake_core_admit(&lim, d, 1, data, size, 0, &r, &ack) == INTAKE_ANSWER) {
    if (r) abort();
    pack_and_check(&ack);
    intake_core_count(&st, &ack);
    return 0;
  }
  struct intake_event ie;
  if (intake_core_event(&ie, r, ack.incident_id, NOW_US) == LK_OK) {
    char err[512];
    if (lk_event_check(&ie.ev, err, sizeof err) != LK_OK) {
      fprintf(stderr, "fuzz_report: admitted report makes an invalid event: %s\n", err);
      abort();
    }
    size_t len = 0;
    uint8_t *bytes = lk_event_pack(&ie.ev, &len);
    if (!bytes) abort();
    free(bytes);
  }
  static const Linkage__V1__AppendReply__Status statuses[] = {
      LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED, LINKAGE__V1__APPEND_REPLY__STATUS__DUPLICATE,
      LINKAGE__V1__APPEND_REPLY__STATUS__INVALID, LINKAGE__V1__APPEND_REPLY__STATUS__BUSY,
      (Linkage__V1__AppendReply__Status)99};
  for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
    struct intake_ack a = ack;
    Linkage__V1__AppendReply reply = LINKAGE__V1__APPEND_REPLY__INIT;
    reply.status = statuses[i];
    reply.error = r->kind; /* any string from outside */
    intake_core_answer(&a, &reply, lim.retry_after_ms);
    pack_and_check(&a);
    intake_core_count(&st, &a);
  }
  intake_core_answer(&ack, NULL, lim.retry_after_ms);
  pack_and_check(&ack);
  linkage__v1__report__free_unpacked(r, NULL);
  return 0;
}
