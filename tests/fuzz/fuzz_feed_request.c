/* linkage-gateway's replay request path short of the sockets: one frame as the feed's ROUTER
 * receives it goes through gw_feed_request_check, and a request it accepts is answered by
 * gw_feed_batch over a small ledger folded into a view of the demo district (an incident in
 * each community, a planned-work window), as the shell does when the ledger's replay arrives.
 * Refusals are packed too. The batch must decode and keep its promises: items in position
 * order after the requested position, each matching a prefix, at most max_events of them,
 * nothing beyond the head, scanned_to consistent with `more`. */
#include <string.h>

#include "fuzz_common.h"
#include "gateway/gateway_feed.h"
#include "linkage/error.h"
#include "linkage/event.h"

#define T0 1800000000000000LL
#define EVENTS 6

static struct gw_view view;
static uint8_t *bytes[EVENTS];
static size_t lens[EVENTS];
static uint8_t hash[32];

static void add_reported(size_t i, const char *device, const char *compound,
                         Linkage__V1__Category cat, Linkage__V1__Severity sev) {
  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  loc.compound_id = (char *)compound;
  Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
  r.device_id = (char *)device;
  r.sequence = 1;
  r.category = cat;
  r.severity = sev;
  r.location = &loc;
  r.observed_at_us = T0;
  Linkage__V1__Reported body = LINKAGE__V1__REPORTED__INIT;
  body.report = &r;
  char inc[LK_ID_MAX], id[LK_ID_MAX * 2];
  lk_incident_id(device, 1, inc);
  snprintf(id, sizeof id, "%s/reported", inc);
  Linkage__V1__Event ev;
  lk_event_envelope(&ev, id, inc, LINKAGE__V1__EVENT_TYPE__REPORTED, T0, "device:fuzz");
  ev.reported = &body;
  bytes[i] = lk_event_pack(&ev, &lens[i]);
  if (!bytes[i]) abort();
  gw_view_apply(&view, i + 1, &ev);
}

static void add_planned(size_t i) {
  Linkage__V1__PlannedWork body = LINKAGE__V1__PLANNED_WORK__INIT;
  body.window_id = "w1";
  body.compound_id = "lijinggang";
  body.from_us = T0;
  body.to_us = T0 + 1;
  Linkage__V1__Event ev;
  lk_event_envelope(&ev, "plan-w1/planned_work_declared", "plan-w1",
                    LINKAGE__V1__EVENT_TYPE__PLANNED_WORK_DECLARED, T0, "coordinator:fuzz");
  ev.planned_work_declared = &body;
  bytes[i] = lk_event_pack(&ev, &lens[i]);
  if (!bytes[i]) abort();
  gw_view_apply(&view, i + 1, &ev);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  fuzz_quiet();
  if (gw_view_init(&view, fuzz_district()) != LK_OK) abort();
  add_reported(0, "fuzz-feed-1", "zhouji-asia-bay", LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER,
               LINKAGE__V1__SEVERITY__SEVERITY_II);
  add_planned(1);
  add_reported(2, "fuzz-feed-2", "spring-square", LINKAGE__V1__CATEGORY__PUBLIC_HEALTH,
               LINKAGE__V1__SEVERITY__SEVERITY_IV);
  add_reported(3, "fuzz-feed-3", "lijinggang", LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER,
               LINKAGE__V1__SEVERITY__SEVERITY_III);
  add_reported(4, "fuzz-feed-4", "zhouji-yinhai-bay", LINKAGE__V1__CATEGORY__NATURAL_DISASTER,
               LINKAGE__V1__SEVERITY__SEVERITY_I);
  /* Committed bytes that do not decode: the batch skips them, as the live stream does. */
  static uint8_t junk[] = {0xff, 0xff};
  bytes[5] = junk;
  lens[5] = sizeof junk;
  return 0;
}

static void check_batch(const struct gw_feed_req *q, const uint8_t *b, size_t len, uint64_t head,
                        size_t items) {
  Linkage__V1__FeedBatch *fb = linkage__v1__feed_batch__unpack(NULL, len, b);
  if (!fb || fb->n_items != items) abort();
  if (fb->request_id != q->request_id || fb->head_position != head) abort();
  if (fb->n_items > q->max_events) abort();
  if (fb->scanned_to > head && fb->scanned_to != q->after_position) abort();
  if (fb->more != (fb->scanned_to < head)) abort();
  uint64_t last = q->after_position;
  for (size_t i = 0; i < fb->n_items; i++) {
    const Linkage__V1__FeedItem *it = fb->items[i];
    if (it->position <= last || it->position > fb->scanned_to) abort();
    if (!gw_feed_topic_match(q, it->topic)) abort();
    if (it->event.len != lens[it->position - 1] ||
        memcmp(it->event.data, bytes[it->position - 1], it->event.len) != 0)
      abort();
    last = it->position;
  }
  linkage__v1__feed_batch__free_unpacked(fb, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct gw_feed_req q;
  char err[160];
  size_t len = 0;
  uint8_t *b;
  if (gw_feed_request_check(data, size, &q, err, sizeof err) != LK_OK) {
    if (!err[0]) abort(); /* a refusal always says why */
    b = gw_feed_refusal(q.request_id, EVENTS, err, 0, &len);
    if (!b) abort();
    free(b);
    return 0;
  }
  if (q.max_events < 1 || q.max_events > GW_FEED_BATCH_EVENTS) abort();
  /* The ledger answers from after_position + 1, as lk_ledger_replay asks it to. */
  Linkage__V1__Committed c[EVENTS], *ptrs[EVENTS];
  Linkage__V1__ReplayReply r = LINKAGE__V1__REPLAY_REPLY__INIT;
  for (uint64_t p = q.after_position + 1; p >= 1 && p <= EVENTS; p++) {
    Linkage__V1__Committed *x = &c[r.n_events];
    linkage__v1__committed__init(x);
    x->position = p;
    x->event.data = bytes[p - 1];
    x->event.len = lens[p - 1];
    x->hash.data = hash;
    x->hash.len = sizeof hash;
    ptrs[r.n_events++] = x;
  }
  r.events = ptrs;
  r.head = EVENTS;
  /* Once with the gateway at the ledger's head, once behind it. */
  for (uint64_t head = EVENTS; head >= EVENTS - 2; head -= 2) {
    size_t items = 0;
    b = gw_feed_batch(&q, &r, &view, head, &len, &items);
    if (!b) abort();
    check_batch(&q, b, len, head, items);
    free(b);
  }
  return 0;
}
