#ifndef LINKAGE_FUZZ_ROUTER_H
#define LINKAGE_FUZZ_ROUTER_H

/* A router state over the demo district with a few incidents folded in, the
 * way the router builds it from the committed stream: each report applied,
 * then the router's own decision about it built into an event and applied.
 *
 *   fuzz-dev-1 #1  zhouji-asia-bay/1  accident_disaster gas_leak II   routed
 *   fuzz-dev-2 #1  zhouji-asia-bay/1  accident_disaster gas_leak III  merged into the first
 *   fuzz-dev-3 #7  lijinggang/3       latent_hazard     railing  IV   routed
 *   fuzz-dev-4 #2  spring-square      property_service  lift     III  routed, then closed
 *   planned work "fuzz-window" on zhouji-yinhai-bay, any kind
 *
 * tests/fuzz/make-seeds.py derives the same incident ids for its seeds. */

#include <string.h>

#include "fuzz_common.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "router/router.h"

#define FUZZ_T0 1800000000000000LL
#define FUZZ_MIN 60000000LL

struct fuzz_router {
  struct router_state s;
  uint64_t pos;
  int64_t now;
};

static inline void fuzz_router_commit(struct fuzz_router *f, const struct router_decision *d) {
  struct router_event_storage st;
  Linkage__V1__Event ev;
  router_event_build(d, "svc:router", f->now, &ev, &st);
  char err[512];
  if (lk_event_check(&ev, err, sizeof err) != LK_OK) {
    fprintf(stderr, "fuzz: the router built an event the ledger refuses: %s\n", err);
    abort();
  }
  router_state_apply(&f->s, ++f->pos, &ev);
}

static inline void fuzz_router_report(struct fuzz_router *f, const char *device, uint64_t seq,
                                      const char *compound, const char *building,
                                      Linkage__V1__Category cat, const char *kind,
                                      Linkage__V1__Severity sev) {
  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
  Linkage__V1__Reported rep = LINKAGE__V1__REPORTED__INIT;
  Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
  char incident[LK_ID_MAX], event_id[2 * LK_ID_MAX], actor[128];
  lk_incident_id(device, seq, incident);
  if (lk_event_id(event_id, sizeof event_id, incident, LINKAGE__V1__EVENT_TYPE__REPORTED, NULL,
                  0) != LK_OK)
    abort();
  snprintf(actor, sizeof actor, "device:%s", device);
  loc.compound_id = (char *)compound;
  loc.building = (char *)building;
  r.device_id = (char *)device;
  r.sequence = seq;
  r.category = cat;
  r.kind = (char *)kind;
  r.severity = sev;
  r.location = &loc;
  r.observed_at_us = f->now;
  rep.report = &r;
  rep.received_at_us = f->now;
  ev.event_id = event_id;
  ev.incident_id = incident;
  ev.type = LINKAGE__V1__EVENT_TYPE__REPORTED;
  ev.at_us = f->now;
  ev.actor = actor;
  ev.body_case = LINKAGE__V1__EVENT__BODY_REPORTED;
  ev.reported = &rep;
  uint32_t slot = router_state_apply(&f->s, ++f->pos, &ev);
  struct router_decision d;
  if (slot && router_decide_new(&f->s, slot, f->now, &d)) fuzz_router_commit(f, &d);
}

static inline void fuzz_router_command(struct fuzz_router *f, Linkage__V1__Command *cmd) {
  struct router_decision d;
  char err[512];
  if (router_decide_command(&f->s, cmd, f->now, &d, err, sizeof err) != LK_OK) {
    fprintf(stderr, "fuzz: setup command refused: %s\n", err);
    abort();
  }
  fuzz_router_commit(f, &d);
}

static inline void fuzz_router_init(struct fuzz_router *f) {
  const struct lk_district *d = fuzz_district();
  struct router_policy p = {.time_scale = 60,
                            .merge_window_us = 30 * FUZZ_MIN / 60,
                            .merge_distance_m = 50,
                            .reporter_threshold = 3,
                            .reporter_window_us = 10 * FUZZ_MIN / 60,
                            .retry_us = 1000000};
  memset(f, 0, sizeof *f);
  f->now = FUZZ_T0;
  if (router_state_init(&f->s, d, d->plans, d->plan_count, &p) != LK_OK) abort();

  fuzz_router_report(f, "fuzz-dev-1", 1, "zhouji-asia-bay", "1",
                     LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "gas_leak",
                     LINKAGE__V1__SEVERITY__SEVERITY_II);
  f->now += 1000000;
  fuzz_router_report(f, "fuzz-dev-2", 1, "zhouji-asia-bay", "1",
                     LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "gas_leak",
                     LINKAGE__V1__SEVERITY__SEVERITY_III);
  f->now += 1000000;
  fuzz_router_report(f, "fuzz-dev-3", 7, "lijinggang", "3", LINKAGE__V1__CATEGORY__LATENT_HAZARD,
                     "railing", LINKAGE__V1__SEVERITY__SEVERITY_IV);
  f->now += 1000000;
  fuzz_router_report(f, "fuzz-dev-4", 2, "spring-square", "",
                     LINKAGE__V1__CATEGORY__PROPERTY_SERVICE, "lift",
                     LINKAGE__V1__SEVERITY__SEVERITY_III);

  char incident[LK_ID_MAX];
  lk_incident_id("fuzz-dev-4", 2, incident);
  Linkage__V1__Command cmd = LINKAGE__V1__COMMAND__INIT;
  Linkage__V1__CloseCommand close = LINKAGE__V1__CLOSE_COMMAND__INIT;
  cmd.command_id = "fuzz-close";
  cmd.actor = "fuzz";
  cmd.incident_id = incident;
  close.reason = "resolved on site";
  cmd.body_case = LINKAGE__V1__COMMAND__BODY_CLOSE;
  cmd.close = &close;
  f->now += 1000000;
  fuzz_router_command(f, &cmd);

  Linkage__V1__Command pw = LINKAGE__V1__COMMAND__INIT;
  Linkage__V1__PlannedWork w = LINKAGE__V1__PLANNED_WORK__INIT;
  pw.command_id = "fuzz-window";
  pw.actor = "fuzz";
  w.window_id = "fuzz-window";
  w.compound_id = "zhouji-yinhai-bay";
  w.from_us = FUZZ_T0;
  w.to_us = FUZZ_T0 + 120 * FUZZ_MIN;
  w.reason = "water mains work";
  pw.body_case = LINKAGE__V1__COMMAND__BODY_DECLARE_PLANNED_WORK;
  pw.declare_planned_work = &w;
  f->now += 1000000;
  fuzz_router_command(f, &pw);
}

#endif
