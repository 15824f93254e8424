/* The router folds whatever the ledger publishes: unpack an Event and apply
 * it to a fresh router state of the demo district with a few incidents in
 * it, then let the router decide what the result calls for (new incident,
 * deadlines due, reporters, severity) and fold those decisions back. The
 * state is built and closed for every input, so leaks show per input. */
#include "fuzz_router.h"
#include "linkage/heap.h"
#include "linkage/report.h"

/* FUZZ_EVENT_STRICT=1: fold only events the system's own writers could
 * make: a `reported` event's report passes lk_report_check (as intake
 * ensures), and severities and tiers in bodies are known values (as the
 * router's own decisions are). For exploring past the known findings about
 * events only a direct ledger client could write (see the regress-* seeds). */
static int strict;

static int known_severity(Linkage__V1__Severity v) {
  return v >= LINKAGE__V1__SEVERITY__SEVERITY_I && v <= LINKAGE__V1__SEVERITY__SEVERITY_IV;
}

static int known_tier(Linkage__V1__Tier v) {
  return v >= LINKAGE__V1__TIER__COMPOUND && v <= LINKAGE__V1__TIER__DISTRICT;
}

static int writable(const Linkage__V1__Event *ev, const struct lk_district *d) {
  char err[512];
  switch (ev->body_case) {
  case LINKAGE__V1__EVENT__BODY_REPORTED:
    return ev->reported->report &&
           lk_report_check(ev->reported->report, d, err, sizeof err) == LK_OK;
  case LINKAGE__V1__EVENT__BODY_SEVERITY_CHANGED:
    return known_severity(ev->severity_changed->from_severity) &&
           known_severity(ev->severity_changed->to_severity);
  case LINKAGE__V1__EVENT__BODY_ROUTED: return known_tier(ev->routed->tier);
  case LINKAGE__V1__EVENT__BODY_ESCALATED:
    return known_tier(ev->escalated->from_tier) && known_tier(ev->escalated->to_tier);
  case LINKAGE__V1__EVENT__BODY_DE_ESCALATED:
    return known_tier(ev->de_escalated->from_tier) && known_tier(ev->de_escalated->to_tier);
  case LINKAGE__V1__EVENT__BODY_OVERDUE: return known_tier(ev->overdue->tier);
  default: return 1;
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fuzz_quiet();
  fuzz_district();
  const char *e = getenv("FUZZ_EVENT_STRICT");
  strict = e && e[0] == '1';
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Linkage__V1__Event *ev = linkage__v1__event__unpack(NULL, size, data);
  if (!ev) return 0;
  struct fuzz_router fr;
  fuzz_router_init(&fr);
  char err[512];
  /* The ledger publishes only what passed lk_event_check; the rest is folded too (stored rows
   * outlive versions of the check), but only checked events lead to decisions. */
  int valid = lk_event_check(ev, err, sizeof err) == LK_OK;
  if (strict && !writable(ev, fr.s.district)) {
    router_state_close(&fr.s);
    linkage__v1__event__free_unpacked(ev, NULL);
    return 0;
  }
  uint32_t slot = router_state_apply(&fr.s, ++fr.pos, ev);
  if (valid && slot) {
    struct router_decision d;
    if (router_decide_new(&fr.s, slot, fr.now, &d)) fuzz_router_commit(&fr, &d);
    if (router_decide_reporters(&fr.s, slot, fr.now, &d)) fuzz_router_commit(&fr, &d);
    if (router_decide_severity(&fr.s, slot, fr.now, &d)) fuzz_router_commit(&fr, &d);
  }
  /* A day later every deadline is due: decide each once, as the shell pops them. */
  int64_t later = fr.now + 24 * 60 * FUZZ_MIN;
  struct lk_deadline dl;
  const struct lk_deadline *top;
  for (int n = 0; n < 64 && (top = lk_heap_peek(&fr.s.deadlines)) && top->at_us <= later; n++) {
    lk_heap_pop(&fr.s.deadlines, &dl);
    router_state_fired(&fr.s, &dl);
    struct router_decision d;
    if (valid && router_decide_deadline(&fr.s, &dl, later, &d)) {
      fr.now = later;
      fuzz_router_commit(&fr, &d);
    }
  }
  router_state_close(&fr.s);
  linkage__v1__event__free_unpacked(ev, NULL);
  return 0;
}
