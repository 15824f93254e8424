/* A responder unit's UnitMessage against dispatch: unpack, and for an Answer
 * dispatch_decide_answer and dispatch_answer_decision over a dispatch state of
 * the demo district with a few incidents folded in; an accepted answer's event
 * must pass the ledger's check. Hello, Heartbeat and List are handled by the
 * socket shell (dispatch_shell.c, static there); of those this target runs
 * what needs no socket: the unit lookup and the walk over the unit's
 * assignments a List answers with. Deciding reads the state only, so it is
 * built once.
 *
 *   fuzz-dev-1 #1  zhouji-asia-bay/1    gas_leak  community: fire acknowledged, grid worker
 *                                        on scene, committee declined, property dispatched
 *   fuzz-dev-3 #7  lijinggang/12        gas_leak  community: every unit resolved, `resolved`
 *                                        committed (a grid worker may verify)
 *   fuzz-dev-4 #2  zhouji-yinhai-bay/5  gas_leak  community: dispatched, then closed
 *   fuzz-dev-2 #1  zhouji-asia-bay/1    gas_leak  community: dispatched, then merged into the first
 *
 * tests/fuzz/make-seeds.py derives the same incident and assignment ids for its seeds. */
#include <string.h>

#include "dispatch/dispatch.h"
#include "fuzz_common.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "linkage/v1/unit.pb-c.h"

#define FUZZ_T0 1800000000000000LL
#define FUZZ_MIN 60000000LL

struct fuzz_dispatch {
  struct dispatch_state s;
  struct dispatch_unit_status status[256];
  uint64_t pos;
  int64_t now;
};

static struct fuzz_dispatch fd;
static int verbose; /* FUZZ_VERBOSE=1: say what became of each message (to check seeds) */

static void fold(Linkage__V1__Event *ev) {
  dispatch_state_apply(&fd.s, ++fd.pos, ev);
}

static void commit(const struct dispatch_decision *d, const char *actor) {
  struct dispatch_event_storage st;
  Linkage__V1__Event ev;
  dispatch_event_build(d, actor, fd.now, &ev, &st);
  char err[512];
  if (lk_event_check(&ev, err, sizeof err) != LK_OK) {
    fprintf(stderr, "fuzz_unit: dispatch built an event the ledger refuses: %s\n", err);
    abort();
  }
  fold(&ev);
}

/* Everything dispatch decides for the incident now, committed. */
static void decide_all(const char *incident) {
  struct dispatch_incident *inc = dispatch_incident_get(&fd.s, incident);
  if (!inc) abort();
  const struct lk_district *d = fd.s.district;
  for (size_t i = 0; i < d->unit_count && i < sizeof fd.status / sizeof fd.status[0]; i++) {
    fd.status[i].present = 1;
    fd.status[i].load = fd.s.unit_load[i];
  }
  struct dispatch_decision out[DISPATCH_MAX_ROLES];
  size_t n = dispatch_decide(&fd.s, (uint32_t)(inc - fd.s.incidents), fd.status, fd.now, out,
                             DISPATCH_MAX_ROLES);
  for (size_t i = 0; i < n; i++)
    commit(&out[i], "svc:dispatch");
}

static void answer(const char *unit, const char *incident, const char *role, int kind) {
  char aid[2 * LK_ID_MAX], err[512], actor[LK_ID_MAX + 8];
  struct dispatch_decision d;
  snprintf(aid, sizeof aid, "%s/%s/1", incident, role);
  if (dispatch_answer_decision(&fd.s, unit, aid, kind, "fuzz setup", fd.now, &d, err, sizeof err) !=
      LK_OK) {
    fprintf(stderr, "fuzz_unit: setup answer refused: %s\n", err);
    abort();
  }
  snprintf(actor, sizeof actor, "unit:%s", unit);
  commit(&d, actor);
}

/* Reported and routed at community tier, and the units called. */
static void incident(const char *device, uint64_t seq, const char *compound, const char *building,
                     char *id) {
  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
  Linkage__V1__Reported rep = LINKAGE__V1__REPORTED__INIT;
  Linkage__V1__Routed ro = LINKAGE__V1__ROUTED__INIT;
  Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
  char eid[2 * LK_ID_MAX], actor[128];
  lk_incident_id(device, seq, id);
  if (lk_event_id(eid, sizeof eid, id, LINKAGE__V1__EVENT_TYPE__REPORTED, NULL, 0) != LK_OK)
    abort();
  snprintf(actor, sizeof actor, "device:%s", device);
  loc.compound_id = (char *)compound;
  loc.building = (char *)building;
  r.device_id = (char *)device;
  r.sequence = seq;
  r.category = LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER;
  r.kind = "gas_leak";
  r.severity = LINKAGE__V1__SEVERITY__SEVERITY_III;
  r.description = "smell of gas in the stairwell";
  r.location = &loc;
  r.observed_at_us = fd.now;
  rep.report = &r;
  rep.received_at_us = fd.now;
  lk_event_envelope(&ev, eid, id, LINKAGE__V1__EVENT_TYPE__REPORTED, fd.now, actor);
  ev.body_case = LINKAGE__V1__EVENT__BODY_REPORTED;
  ev.reported = &rep;
  fold(&ev);

  Linkage__V1__Event rev = LINKAGE__V1__EVENT__INIT;
  if (lk_event_id(eid, sizeof eid, id, LINKAGE__V1__EVENT_TYPE__ROUTED, NULL, 0) != LK_OK) abort();
  ro.tier = LINKAGE__V1__TIER__COMMUNITY;
  ro.organisation_id = (char *)compound;
  ro.acknowledge_by_us = fd.now + 10 * FUZZ_MIN;
  ro.resolve_by_us = fd.now + 120 * FUZZ_MIN;
  lk_event_envelope(&rev, eid, id, LINKAGE__V1__EVENT_TYPE__ROUTED, fd.now, "svc:router");
  rev.body_case = LINKAGE__V1__EVENT__BODY_ROUTED;
  rev.routed = &ro;
  fold(&rev);
  decide_all(id);
}

static void init_state(void) {
  const struct lk_district *d = fuzz_district();
  struct dispatch_policy pol = {
      .time_scale = 1, .verify_window_us = 1440 * FUZZ_MIN, .utc_offset_min = 480};
  memset(&fd, 0, sizeof fd);
  fd.now = FUZZ_T0;
  if (dispatch_state_init(&fd.s, d, &pol) != LK_OK) abort();

  char gas[LK_ID_MAX], rail[LK_ID_MAX], closed[LK_ID_MAX], merged[LK_ID_MAX];
  incident("fuzz-dev-1", 1, "zhouji-asia-bay", "1", gas);
  fd.now += FUZZ_MIN;
  answer("fire-wenjiang", gas, "fire_brigade", LINKAGE__V1__ANSWER__KIND__ACKNOWLEDGED);
  answer("grid-workers-zhouji-asia-bay", gas, "grid_worker", LINKAGE__V1__ANSWER__KIND__ON_SCENE);
  answer("committee-zhouji-asia-bay", gas, "special_committee",
         LINKAGE__V1__ANSWER__KIND__DECLINED);
  decide_all(gas);

  fd.now += FUZZ_MIN;
  incident("fuzz-dev-3", 7, "lijinggang", "12", rail);
  fd.now += FUZZ_MIN;
  answer("duty-lijinggang", rail, "community_duty", LINKAGE__V1__ANSWER__KIND__RESOLVED);
  answer("grid-workers-lijinggang", rail, "grid_worker", LINKAGE__V1__ANSWER__KIND__RESOLVED);
  answer("fire-wenjiang", rail, "fire_brigade", LINKAGE__V1__ANSWER__KIND__RESOLVED);
  decide_all(rail);
  struct dispatch_incident *inc = dispatch_incident_get(&fd.s, rail);
  if (!inc || !(inc->flags & DI_RESOLVED)) {
    fprintf(stderr, "fuzz_unit: setup incident %s did not resolve\n", rail);
    abort();
  }

  fd.now += FUZZ_MIN;
  incident("fuzz-dev-4", 2, "zhouji-yinhai-bay", "5", closed);
  Linkage__V1__Closed cl = LINKAGE__V1__CLOSED__INIT;
  Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
  char eid[2 * LK_ID_MAX];
  if (lk_event_id(eid, sizeof eid, closed, LINKAGE__V1__EVENT_TYPE__CLOSED, NULL, 0) != LK_OK)
    abort();
  cl.reason = "resolved on site";
  lk_event_envelope(&ev, eid, closed, LINKAGE__V1__EVENT_TYPE__CLOSED, fd.now, "coordinator:fuzz");
  ev.body_case = LINKAGE__V1__EVENT__BODY_CLOSED;
  ev.closed = &cl;
  fold(&ev);

  fd.now += FUZZ_MIN;
  incident("fuzz-dev-2", 1, "zhouji-asia-bay", "1", merged);
  Linkage__V1__Merged mg = LINKAGE__V1__MERGED__INIT;
  Linkage__V1__Event mev = LINKAGE__V1__EVENT__INIT;
  if (lk_event_id(eid, sizeof eid, merged, LINKAGE__V1__EVENT_TYPE__MERGED, NULL, 0) != LK_OK)
    abort();
  mg.into_incident_id = gas;
  lk_event_envelope(&mev, eid, merged, LINKAGE__V1__EVENT_TYPE__MERGED, fd.now, "svc:router");
  mev.body_case = LINKAGE__V1__EVENT__BODY_MERGED;
  mev.merged = &mg;
  fold(&mev);
  fd.now += FUZZ_MIN;

  if (verbose)
    for (uint32_t i = 1; i < fd.s.assignment_count; i++)
      fprintf(stderr, "fuzz_unit: fixture assignment %s unit=%s state=%d\n", fd.s.assignments[i].id,
              fd.s.assignments[i].unit_id, fd.s.assignments[i].state);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fuzz_quiet();
  verbose = getenv("FUZZ_VERBOSE") != NULL;
  init_state();
  return 0;
}

/* The answer at one moment: both entry points must agree, and an accepted
 * answer must make an event the ledger takes. */
static void run_answer(const Linkage__V1__UnitMessage *um, int64_t now) {
  const Linkage__V1__Answer *a = um->answer;
  struct dispatch_decision d;
  Linkage__V1__EventType type = LINKAGE__V1__EVENT_TYPE__EVENT_TYPE_UNSPECIFIED;
  char err[512], err2[512], event_id[2 * LK_ID_MAX];
  int rc = dispatch_answer_decision(&fd.s, um->unit_id, a->assignment_id, (int)a->kind, a->note,
                                    now, &d, err, sizeof err);
  int rc2 = dispatch_decide_answer(&fd.s, um->unit_id, a->assignment_id, (int)a->kind, a->note, now,
                                   &type, event_id, sizeof event_id, err2, sizeof err2);
  if (rc != rc2) {
    fprintf(stderr, "fuzz_unit: dispatch_decide_answer says %d, dispatch_answer_decision %d\n", rc2,
            rc);
    abort();
  }
  if (rc != LK_OK) {
    if (strnlen(err, sizeof err) == sizeof err || strcmp(err, err2) != 0) abort();
    if (verbose)
      fprintf(stderr, "fuzz_unit: %s answers %s kind %d: rejected: %s\n", um->unit_id,
              a->assignment_id, (int)a->kind, err);
    return;
  }
  if (type != d.type || strcmp(event_id, d.event_id) != 0) {
    fprintf(stderr, "fuzz_unit: the two answer entry points disagree: %s vs %s\n", event_id,
            d.event_id);
    abort();
  }
  if (verbose)
    fprintf(stderr, "fuzz_unit: %s answers %s kind %d: accepted: %s\n", um->unit_id,
            a->assignment_id, (int)a->kind, d.event_id);
  char actor[LK_ID_MAX + 8];
  snprintf(actor, sizeof actor, "unit:%s", um->unit_id);
  struct dispatch_event_storage st;
  Linkage__V1__Event ev;
  dispatch_event_build(&d, actor, now, &ev, &st);
  if (lk_event_check(&ev, err, sizeof err) != LK_OK) {
    fprintf(stderr, "fuzz_unit: accepted answer makes an event the ledger refuses: %s\n", err);
    abort();
  }
  size_t len = 0;
  uint8_t *bytes = lk_event_pack(&ev, &len);
  if (!bytes) abort();
  free(bytes);
}

/* What a List answers with: the unit's assignments, each of a known incident. */
static void run_list(const struct lk_unit *u) {
  size_t n = 0;
  for (uint32_t i = fd.s.assignment_count; i-- > 1;) {
    const struct dispatch_assignment *a = &fd.s.assignments[i];
    if (!a->unit_id || strcmp(a->unit_id, u->id) != 0) continue;
    if (a->incident == 0 || a->incident >= fd.s.count || dispatch_assignment_get(&fd.s, a->id) != a)
      abort();
    n++;
  }
  if (verbose) fprintf(stderr, "fuzz_unit: %s lists %zu assignment(s)\n", u->id, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Linkage__V1__UnitMessage *um = linkage__v1__unit_message__unpack(NULL, size, data);
  if (!um) return 0;
  const struct lk_unit *u = lk_district_unit(fd.s.district, um->unit_id);
  switch (um->body_case) {
  case LINKAGE__V1__UNIT_MESSAGE__BODY_ANSWER: {
    /* The same answer now and after every deadline has long passed. */
    const int64_t when[] = {fd.now, fd.now + 24 * 60 * FUZZ_MIN};
    for (int i = 0; i < 2; i++)
      run_answer(um, when[i]);
    break;
  }
  case LINKAGE__V1__UNIT_MESSAGE__BODY_LIST:
    if (u) run_list(u);
    break;
  default:
    if (verbose)
      fprintf(stderr, "fuzz_unit: %s body %d: %s unit\n", um->unit_id, (int)um->body_case,
              u ? "known" : "unknown");
    break;
  }
  linkage__v1__unit_message__free_unpacked(um, NULL);
  return 0;
}
