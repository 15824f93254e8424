/* The router's core at scale, without sockets.
 *
 *   bench_router core DISTRICT COUNT [LATE_COUNT [LATE_SPAN_S]]
 *
 * 1. Folds COUNT incidents into router_state the way linkage-router does live: each `reported`
 *    event is applied, router_decide_new decides its routing, router_event_build makes the
 *    `routed` event and that is applied too, arming two deadlines (acknowledge, resolve) in the
 *    deadline heap. Reports are spread over the district's compounds and buildings. Merging is
 *    off (merge window 0) so every report stays its own open incident. Prints the resident
 *    memory this costs per incident (VmRSS delta / COUNT) and the fold rate.
 * 2. Heap operations per second on that heap of 2 x COUNT deadlines: re-arming random
 *    incidents' deadlines (router_state_rearm: remove by handle + push) and pop-min + push.
 * 3. Timer lateness on a real libuv loop: LATE_COUNT (default 100000) more deadlines spread
 *    over LATE_SPAN_S (default 5) seconds of real time go into the same heap; one uv_timer is
 *    armed at the earliest deadline exactly as router_shell.c's arm_timer does (rounded up to
 *    the next millisecond, at most 2000 fired per loop turn); for each deadline, the time it was
 *    popped minus its deadline.
 * 4. The cost of the merge search (router_decide_new with the default 30-minute window) as
 *    one compound's bucket grows: µs per decision for the first and the last 1000 of 20000
 *    same-kind reports in one building.
 *
 * Prints key=value lines; lines starting with "# " are the human summary. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "linkage/clock.h"
#include "linkage/district.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "router/router.h"

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Applies one `reported` event for device/seq at at_us in compound c, building b, then its
 * routing decision. Returns the decision's type (ROUTED or MERGED), or 0 on failure. */
static int report_and_decide(struct router_state *s, uint64_t *position, const char *device,
                             uint64_t seq, const struct lk_compound *c, const char *building,
                             int64_t at_us) {
  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
  Linkage__V1__Reported rep = LINKAGE__V1__REPORTED__INIT;
  Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
  char incident[LK_ID_MAX], event_id[2 * LK_ID_MAX], actor[LK_ID_MAX];
  loc.compound_id = c->id;
  loc.building = (char *)building;
  loc.lat = c->lat;
  loc.lon = c->lon;
  r.device_id = (char *)device;
  r.sequence = seq;
  r.category = LINKAGE__V1__CATEGORY__LATENT_HAZARD;
  r.kind = "flooding";
  r.severity = LINKAGE__V1__SEVERITY__SEVERITY_IV;
  r.location = &loc;
  r.description = "water seeping into basement car park B2 near lift lobby, about 2 cm deep";
  r.observed_at_us = at_us;
  rep.report = &r;
  rep.received_at_us = at_us;
  lk_incident_id(device, seq, incident);
  lk_event_id(event_id, sizeof event_id, incident, LINKAGE__V1__EVENT_TYPE__REPORTED, NULL, 0);
  snprintf(actor, sizeof actor, "device:%s", device);
  ev.event_id = event_id;
  ev.incident_id = incident;
  ev.type = LINKAGE__V1__EVENT_TYPE__REPORTED;
  ev.at_us = at_us;
  ev.actor = actor;
  ev.body_case = LINKAGE__V1__EVENT__BODY_REPORTED;
  ev.reported = &rep;
  uint32_t slot = router_state_apply(s, ++*position, &ev);
  if (!slot) return 0;

  struct router_decision d;
  if (!router_decide_new(s, slot, at_us, &d)) return 0;
  struct router_event_storage st;
  Linkage__V1__Event out;
  router_event_build(&d, "svc:router", at_us, &out, &st);
  router_state_apply(s, ++*position, &out);
  return (int)d.type;
}

/* ---- timer lateness: router_shell.c's arm_timer / timer_cb over the heap ---- */

#define LATE_KIND 99

struct late {
  uv_timer_t timer;
  struct lk_heap *heap;
  int64_t *lat;
  size_t n, want;
  int64_t turns;
};

static void late_arm(struct late *L);

static void late_cb(uv_timer_t *t) {
  struct late *L = t->data;
  const struct lk_deadline *top;
  struct lk_deadline d;
  int budget = 2000;
  L->turns++;
  while ((top = lk_heap_peek(L->heap)) && top->at_us <= lk_now_us()) {
    if (budget-- == 0) {
      uv_timer_start(&L->timer, late_cb, 0, 0);
      return;
    }
    lk_heap_pop(L->heap, &d);
    if (d.kind == LATE_KIND && L->n < L->want) L->lat[L->n++] = lk_now_us() - d.at_us;
  }
  late_arm(L);
}

static void late_arm(struct late *L) {
  if (L->n >= L->want) {
    uv_timer_stop(&L->timer);
    return;
  }
  const struct lk_deadline *top = lk_heap_peek(L->heap);
  if (!top) return;
  int64_t wait_us = top->at_us - lk_now_us();
  uint64_t ms = wait_us <= 0 ? 0 : (uint64_t)((wait_us + 999) / 1000);
  uv_timer_start(&L->timer, late_cb, ms, 0);
}

static int measure_lateness(struct lk_heap *heap, size_t count, double span_s) {
  struct late L = {.heap = heap, .want = count};
  L.lat = calloc(count, sizeof *L.lat);
  if (!L.lat) return LK_ENOMEM;
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) return LK_EIO;
  int64_t start = lk_now_us() + 100000; /* a little slack to finish pushing */
  for (size_t i = 0; i < count; i++) {
    int64_t at = start + (int64_t)(rnd() % (uint64_t)(span_s * 1e6));
    if (lk_heap_push(heap, (struct lk_deadline){.at_us = at, .kind = LATE_KIND}) == LK_HEAP_NONE)
      return LK_ENOMEM;
  }
  uv_timer_init(&loop, &L.timer);
  L.timer.data = &L;
  late_arm(&L);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&L.timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  qsort(L.lat, L.n, sizeof *L.lat, cmp_i64);
  printf("late_deadlines=%zu\nlate_span_s=%.1f\nlate_timer_turns=%" PRId64 "\n", L.n, span_s,
         L.turns);
  printf("late_p50_us=%" PRId64 "\nlate_p99_us=%" PRId64 "\nlate_max_us=%" PRId64 "\n",
         L.lat[L.n / 2], L.lat[L.n * 99 / 100], L.lat[L.n - 1]);
  printf("# timer lateness, %zu deadlines over %.0f s in a heap of %zu: p50 %" PRId64
         " us, p99 %" PRId64 " us, max %" PRId64 " us (%" PRId64 " timer callbacks)\n",
         L.n, span_s, heap->count + L.n, L.lat[L.n / 2], L.lat[L.n * 99 / 100], L.lat[L.n - 1],
         L.turns);
  free(L.lat);
  return LK_OK;
}

/* ---- the merge search as a bucket grows ---- */

static int measure_merge(const struct lk_district *d) {
  struct router_policy policy = {
      .time_scale = 1, .merge_distance_m = 50, .reporter_threshold = 0, .retry_us = 1000000};
  policy.merge_window_us = router_plan_us(&policy, 30);
  struct router_state s;
  if (router_state_init(&s, d, d->plans, d->plan_count, &policy) != LK_OK) return LK_ENOMEM;
  const struct lk_compound *c = &d->compounds[0];
  const char *building = c->building_count ? c->buildings[0].id : "";
  uint64_t position = 0;
  const int n = 20000, window = 1000;
  int64_t base = lk_now_us(), first_us = 0, last_us = 0;
  int merged = 0;
  for (int i = 0; i < n; i++) {
    char device[32];
    snprintf(device, sizeof device, "bench-merge-%d", i % 64);
    int64_t t0 = lk_mono_us();
    /* one report every 10 ms: all 20000 fall inside one 30-minute window */
    int type = report_and_decide(&s, &position, device, (uint64_t)i + 1, c, building,
                                 base + (int64_t)i * 10000);
    int64_t dt = lk_mono_us() - t0;
    if (type == LINKAGE__V1__EVENT_TYPE__MERGED) merged++;
    if (i < window) first_us += dt;
    if (i >= n - window) last_us += dt;
  }
  printf("merge_reports=%d\nmerge_merged=%d\nmerge_first_us_per_report=%.2f\n"
         "merge_last_us_per_report=%.2f\n",
         n, merged, (double)first_us / window, (double)last_us / window);
  printf("# merge search: %d same-kind reports in one building, %d merged; %.2f us per report "
         "for the first %d, %.2f us for the last %d\n",
         n, merged, (double)first_us / window, window, (double)last_us / window, window);
  router_state_close(&s);
  return LK_OK;
}

static int bench_core(const char *district, long count, size_t late_count, double late_span) {
  char err[512];
  struct lk_district *d = lk_district_load(district, err, sizeof err);
  if (!d) {
    fprintf(stderr, "bench_router: cannot load the district: %s\n", err);
    return 1;
  }
  struct router_policy policy = {.time_scale = 1,
                                 .merge_window_us = 0,
                                 .merge_distance_m = 0,
                                 .reporter_threshold = 0,
                                 .retry_us = 1000000};
  struct router_state s;
  long rss0 = rss_kb();
  if (router_state_init(&s, d, d->plans, d->plan_count, &policy) != LK_OK) return 1;

  /* 1. the fold */
  uint64_t position = 0;
  long routed = 0;
  int64_t base = lk_now_us(), t0 = lk_mono_us();
  for (long i = 0; i < count; i++) {
    char device[32];
    const struct lk_compound *c = &d->compounds[(size_t)i % d->compound_count];
    const char *building =
        c->building_count ? c->buildings[((size_t)i / d->compound_count) % c->building_count].id
                          : "";
    snprintf(device, sizeof device, "bench-router-%ld", i % 512);
    /* reported over the last ~17 minutes, so every deadline is still ahead */
    int type = report_and_decide(&s, &position, device, (uint64_t)i + 1, c, building,
                                 base - 1000000000 + i * (1000000000 / (count ? count : 1)));
    if (type == LINKAGE__V1__EVENT_TYPE__ROUTED) routed++;
  }
  double fold_s = (double)(lk_mono_us() - t0) / 1e6;
  long rss1 = rss_kb();
  double per = (double)(rss1 - rss0) * 1024.0 / (double)count;
  printf("incidents=%u\nrouted=%ld\ndeadlines=%zu\nfold_events=%" PRIu64
         "\nfold_seconds=%.3f\nfold_events_per_s=%.0f\n",
         s.count - 1, routed, s.deadlines.count, position, fold_s, (double)position / fold_s);
  printf("rss_before_kb=%ld\nrss_after_kb=%ld\nbytes_per_incident=%.0f\n", rss0, rss1, per);
  printf("# %u open incidents, %zu deadlines in the heap: %.0f bytes of RSS per incident "
         "(%.0f MiB in all)\n",
         s.count - 1, s.deadlines.count, per, (double)(rss1 - rss0) / 1024.0);
  printf("# fold of reported + decide + routed: %.0f events/s (no protobuf decode)\n",
         (double)position / fold_s);
  if (routed != count) {
    fprintf(stderr, "bench_router: only %ld of %ld incidents were routed\n", routed, count);
    return 1;
  }

  /* 2. heap operations */
  long rounds = count;
  t0 = lk_mono_us();
  for (long i = 0; i < rounds; i++) {
    uint32_t slot = 1 + (uint32_t)(rnd() % (s.count - 1));
    router_state_rearm(&s, slot, ROUTER_DEADLINE_ACKNOWLEDGE,
                       base + 3600000000LL + (int64_t)(rnd() % 3600000000ULL));
  }
  double rearm_s = (double)(lk_mono_us() - t0) / 1e6;
  t0 = lk_mono_us();
  for (long i = 0; i < rounds; i++) {
    struct lk_deadline top;
    lk_heap_pop(&s.deadlines, &top);
    router_state_fired(&s, &top);
    router_state_rearm(&s, (uint32_t)top.owner, (enum router_deadline_kind)top.kind,
                       top.at_us + 3600000000LL + (int64_t)(rnd() % 3600000000ULL));
  }
  double pop_s = (double)(lk_mono_us() - t0) / 1e6;
  double ops = 4.0 * (double)rounds, ops_s = ops / (rearm_s + pop_s);
  printf("heap_size=%zu\nheap_rearm_per_s=%.0f\nheap_pop_push_per_s=%.0f\nheap_ops_per_s=%.0f\n",
         s.deadlines.count, (double)rounds / rearm_s, (double)rounds / pop_s, ops_s);
  printf("# heap of %zu deadlines: %.0f ops/s (%.0f re-arms/s as remove+push, %.0f pop+push/s)\n",
         s.deadlines.count, ops_s, (double)rounds / rearm_s, (double)rounds / pop_s);

  /* 3. lateness; 4. merge search */
  if (measure_lateness(&s.deadlines, late_count, late_span) != LK_OK) return 1;
  router_state_close(&s);
  if (measure_merge(d) != LK_OK) return 1;
  lk_district_destroy(&d);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "core") == 0)
    return bench_core(argv[2], atol(argv[3]), argc > 4 ? (size_t)atol(argv[4]) : 100000,
                      argc > 5 ? atof(argv[5]) : 5.0);
  fprintf(stderr, "usage: bench_router core DISTRICT COUNT [LATE_COUNT [LATE_SPAN_S]]\n");
  return 2;
}
