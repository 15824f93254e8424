/* The public feed: topics, replay requests and batches (the pure core, gw_feed_topic.c), and
 * the shell (gateway_feed.c) over inproc:// against a fake ledger: live frames, heartbeats,
 * replays routed back to the right client, refusals, the bound on waiting replays, the
 * loopback rule, and a clean stop (uv_loop_close returns 0). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gateway_feed.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "linkage/log.h"
#include "lk_test.h"

#define DEMO "deploy/district/wenjiang.yaml"
#define T0 1800000000000000LL

static struct lk_district *the_district;

static struct lk_district *district(void) {
  char err[256];
  if (!the_district) the_district = lk_district_load(DEMO, err, sizeof err);
  if (!the_district) fprintf(stderr, "cannot load %s: %s\n", DEMO, err);
  return the_district;
}

/* ---- events, packed as the ledger would commit them ---- */

struct evbuf {
  uint8_t *bytes;
  size_t len;
  char incident[LK_ID_MAX];
};

static void reported(struct evbuf *out, const char *device, uint64_t seq, const char *compound,
                     Linkage__V1__Category cat, Linkage__V1__Severity sev) {
  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  loc.compound_id = (char *)compound;
  Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
  r.device_id = (char *)device;
  r.sequence = seq;
  r.category = cat;
  r.severity = sev;
  r.kind = "gas_leak";
  r.location = &loc;
  r.observed_at_us = T0;
  Linkage__V1__Reported body = LINKAGE__V1__REPORTED__INIT;
  body.report = &r;
  body.received_at_us = T0;
  lk_incident_id(device, seq, out->incident);
  char id[LK_ID_MAX * 2];
  snprintf(id, sizeof id, "%s/reported", out->incident);
  char actor[96];
  snprintf(actor, sizeof actor, "device:%s", device);
  Linkage__V1__Event ev;
  lk_event_envelope(&ev, id, out->incident, LINKAGE__V1__EVENT_TYPE__REPORTED, T0, actor);
  ev.reported = &body;
  out->bytes = lk_event_pack(&ev, &out->len);
}

static void severity_changed(struct evbuf *out, const char *incident, Linkage__V1__Severity from,
                             Linkage__V1__Severity to) {
  Linkage__V1__SeverityChanged body = LINKAGE__V1__SEVERITY_CHANGED__INIT;
  body.from_severity = from;
  body.to_severity = to;
  body.reason = "three reporters";
  char id[LK_ID_MAX * 2];
  snprintf(id, sizeof id, "%s/severity_changed/1", incident);
  snprintf(out->incident, sizeof out->incident, "%s", incident);
  Linkage__V1__Event ev;
  lk_event_envelope(&ev, id, incident, LINKAGE__V1__EVENT_TYPE__SEVERITY_CHANGED, T0 + 1,
                    "svc:router");
  ev.severity_changed = &body;
  out->bytes = lk_event_pack(&ev, &out->len);
}

static void planned(struct evbuf *out) {
  Linkage__V1__PlannedWork body = LINKAGE__V1__PLANNED_WORK__INIT;
  body.window_id = "w1";
  body.compound_id = "lijinggang";
  body.from_us = T0;
  body.to_us = T0 + 3600000000LL;
  body.reason = "water shut-off";
  snprintf(out->incident, sizeof out->incident, "plan-w1");
  Linkage__V1__Event ev;
  lk_event_envelope(&ev, "plan-w1/planned_work_declared", "plan-w1",
                    LINKAGE__V1__EVENT_TYPE__PLANNED_WORK_DECLARED, T0, "coordinator:li");
  ev.planned_work_declared = &body;
  out->bytes = lk_event_pack(&ev, &out->len);
}

/* A small ledger: positions 1..n, folded into a view as the gateway would. */
struct fixture {
  struct gw_view view;
  struct evbuf ev[8];
  size_t n;
  char topic[8][GW_FEED_TOPIC_MAX];
};

static void fold(struct fixture *fx, struct evbuf *e) {
  fx->ev[fx->n] = *e;
  Linkage__V1__Event *ev = linkage__v1__event__unpack(NULL, e->len, e->bytes);
  LK_CHECK(ev != NULL);
  if (!ev) return;
  gw_view_apply(&fx->view, fx->n + 1, ev);
  gw_feed_topic(gw_view_get(&fx->view, ev->incident_id), ev, fx->topic[fx->n], GW_FEED_TOPIC_MAX);
  linkage__v1__event__free_unpacked(ev, NULL);
  fx->n++;
}

static int fixture_init(struct fixture *fx) {
  memset(fx, 0, sizeof *fx);
  if (!district() || gw_view_init(&fx->view, district()) != LK_OK) return -1;
  struct evbuf e;
  /* 1: an accident at Zhouji Asia Bay, severity II */
  reported(&e, "dev-a", 1, "zhouji-asia-bay", LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER,
           LINKAGE__V1__SEVERITY__SEVERITY_II);
  fold(fx, &e);
  /* 2: a planned-work window (no incident) */
  planned(&e);
  fold(fx, &e);
  /* 3: public health at Spring Square, severity IV */
  reported(&e, "dev-b", 7, "spring-square", LINKAGE__V1__CATEGORY__PUBLIC_HEALTH,
           LINKAGE__V1__SEVERITY__SEVERITY_IV);
  fold(fx, &e);
  /* 4: another accident, at Lijinggang, severity III */
  reported(&e, "dev-c", 2, "lijinggang", LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER,
           LINKAGE__V1__SEVERITY__SEVERITY_III);
  fold(fx, &e);
  return 0;
}

static void fixture_free(struct fixture *fx) {
  for (size_t i = 0; i < fx->n; i++)
    free(fx->ev[i].bytes);
  gw_view_free(&fx->view);
}

/* The ledger's ReplayReply for positions from..to of the fixture. */
static void replay_reply(struct fixture *fx, uint64_t from, uint64_t to,
                         Linkage__V1__ReplayReply *r, Linkage__V1__Committed *c,
                         Linkage__V1__Committed **ptrs) {
  static uint8_t hash[32];
  linkage__v1__replay_reply__init(r);
  size_t k = 0;
  for (uint64_t p = from; p <= to && p <= fx->n; p++, k++) {
    linkage__v1__committed__init(&c[k]);
    c[k].position = p;
    c[k].event.data = fx->ev[p - 1].bytes;
    c[k].event.len = fx->ev[p - 1].len;
    c[k].hash.data = hash;
    c[k].hash.len = sizeof hash;
    ptrs[k] = &c[k];
  }
  r->n_events = k;
  r->events = ptrs;
  r->head = fx->n;
}

/* ---- topics ---- */

LK_TEST(topic_of_an_incident_names_its_area_category_and_severity) {
  struct fixture fx;
  if (!LK_CHECK(fixture_init(&fx) == 0)) return;
  char want[GW_FEED_TOPIC_MAX];
  snprintf(want, sizeof want, "inc/yongquan/jiangpu-road/accident_disaster/II/zhouji-asia-bay/%s/",
           fx.ev[0].incident);
  LK_CHECK_STR(fx.topic[0], want);
  LK_CHECK_STR(fx.topic[1], "sys/planned_work_declared/");
  LK_CHECK(strncmp(fx.topic[2], "inc/yongquan/qingquan/public_health/IV/spring-square/", 53) == 0);
  LK_CHECK(strncmp(fx.topic[3], "inc/yongquan/lijinggang/accident_disaster/III/lijinggang/", 57) ==
           0);
  fixture_free(&fx);
}

LK_TEST(topic_follows_the_current_severity) {
  struct fixture fx;
  if (!LK_CHECK(fixture_init(&fx) == 0)) return;
  struct evbuf e;
  severity_changed(&e, fx.ev[3].incident, LINKAGE__V1__SEVERITY__SEVERITY_III,
                   LINKAGE__V1__SEVERITY__SEVERITY_II);
  fold(&fx, &e);
  LK_CHECK(strncmp(fx.topic[4], "inc/yongquan/lijinggang/accident_disaster/II/lijinggang/", 56) ==
           0);
  fixture_free(&fx);
}

LK_TEST(topic_of_unknown_incident_and_key_revocation) {
  Linkage__V1__Event ev;
  lk_event_envelope(&ev, "inc-x/closed", "inc-x", LINKAGE__V1__EVENT_TYPE__CLOSED, T0, "svc:x");
  char t[GW_FEED_TOPIC_MAX];
  gw_feed_topic(NULL, &ev, t, sizeof t);
  LK_CHECK_STR(t, "inc/-/-/-/-/-/inc-x/");
  lk_event_envelope(&ev, "key-device-d/key_revoked", "key-device-d",
                    LINKAGE__V1__EVENT_TYPE__KEY_REVOKED, T0, "coordinator:li");
  gw_feed_topic(NULL, &ev, t, sizeof t);
  LK_CHECK_STR(t, "sys/key_revoked/");
}

LK_TEST(topic_parts_never_break_the_grammar) {
  struct gw_incident inc;
  memset(&inc, 0, sizeof inc);
  snprintf(inc.id, sizeof inc.id, "inc-1");
  snprintf(inc.compound_id, sizeof inc.compound_id, "a/b c\x01");
  inc.street_id = "s";
  inc.community_id = "";
  inc.category = LINKAGE__V1__CATEGORY__LATENT_HAZARD;
  inc.severity = 0;
  Linkage__V1__Event ev;
  lk_event_envelope(&ev, "inc-1/reported", "inc-1", LINKAGE__V1__EVENT_TYPE__REPORTED, T0, "x");
  char t[GW_FEED_TOPIC_MAX];
  gw_feed_topic(&inc, &ev, t, sizeof t);
  LK_CHECK_STR(t, "inc/s/-/latent_hazard/-/a_b_c_/inc-1/");
  /* A short buffer truncates and stays a C string. */
  char small[8];
  memset(small, 'x', sizeof small);
  gw_feed_topic(&inc, &ev, small, sizeof small);
  LK_CHECK_STR(small, "inc/s/-");
}

/* ---- requests ---- */

static size_t pack_request(uint8_t *buf, uint64_t after, const char **prefixes, size_t n,
                           uint32_t max_events, uint64_t id) {
  Linkage__V1__FeedRequest r = LINKAGE__V1__FEED_REQUEST__INIT;
  r.after_position = after;
  r.topic_prefixes = (char **)prefixes;
  r.n_topic_prefixes = n;
  r.max_events = max_events;
  r.request_id = id;
  return linkage__v1__feed_request__pack(&r, buf);
}

LK_TEST(request_check_accepts_and_normalises) {
  static struct gw_feed_req q;
  uint8_t buf[4096];
  char err[160];
  const char *p[] = {"inc/yongquan/jiangpu-road/", "sys/"};
  size_t n = pack_request(buf, 41, p, 2, 0, 9);
  LK_CHECK_EQ_INT(gw_feed_request_check(buf, n, &q, err, sizeof err), LK_OK);
  LK_CHECK_EQ_INT(q.after_position, 41);
  LK_CHECK_EQ_INT(q.request_id, 9);
  LK_CHECK_EQ_INT(q.max_events, GW_FEED_BATCH_EVENTS);
  LK_CHECK_EQ_INT(q.nprefixes, 2);
  LK_CHECK(gw_feed_topic_match(&q, "inc/yongquan/jiangpu-road/x/II/c/i/"));
  LK_CHECK(gw_feed_topic_match(&q, "sys/key_revoked/"));
  LK_CHECK(!gw_feed_topic_match(&q, "inc/yongquan/jiangpu-road-east/x/"));
  LK_CHECK(!gw_feed_topic_match(&q, "hb"));

  /* "" among the prefixes means everything; max_events is clamped, never refused. */
  const char *all[] = {"inc/", ""};
  n = pack_request(buf, 0, all, 2, 5000, 1);
  LK_CHECK_EQ_INT(gw_feed_request_check(buf, n, &q, err, sizeof err), LK_OK);
  LK_CHECK_EQ_INT(q.nprefixes, 0);
  LK_CHECK_EQ_INT(q.max_events, GW_FEED_BATCH_EVENTS);
  LK_CHECK(gw_feed_topic_match(&q, "anything"));
  n = pack_request(buf, 0, NULL, 0, 7, 1);
  LK_CHECK_EQ_INT(gw_feed_request_check(buf, n, &q, err, sizeof err), LK_OK);
  LK_CHECK_EQ_INT(q.max_events, 7);
  /* An empty frame is the empty request: everything from the start. */
  LK_CHECK_EQ_INT(gw_feed_request_check(buf, 0, &q, err, sizeof err), LK_OK);
  LK_CHECK_EQ_INT(q.after_position, 0);
}

LK_TEST(request_check_refuses_with_a_reason) {
  static struct gw_feed_req q;
  static uint8_t buf[GW_FEED_REQUEST_MAX * 2];
  char err[160];
  const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
  LK_CHECK_EQ_INT(gw_feed_request_check(garbage, sizeof garbage, &q, err, sizeof err), LK_EINVAL);
  LK_CHECK_STR(err, "not a FeedRequest");

  memset(buf, 0, sizeof buf);
  LK_CHECK_EQ_INT(gw_feed_request_check(buf, sizeof buf, &q, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "over the limit");

  const char *many[GW_FEED_PREFIXES_MAX + 1];
  for (int i = 0; i <= GW_FEED_PREFIXES_MAX; i++)
    many[i] = "inc/";
  size_t n = pack_request(buf, 0, many, GW_FEED_PREFIXES_MAX + 1, 0, 77);
  LK_CHECK_EQ_INT(gw_feed_request_check(buf, n, &q, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "topic prefixes");
  LK_CHECK_EQ_INT(q.request_id, 77); /* a refusal still names the request */

  char longp[GW_FEED_TOPIC_MAX + 1];
  memset(longp, 'a', GW_FEED_TOPIC_MAX);
  longp[GW_FEED_TOPIC_MAX] = '\0';
  const char *one[] = {longp};
  n = pack_request(buf, 0, one, 1, 0, 1);
  LK_CHECK_EQ_INT(gw_feed_request_check(buf, n, &q, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "at most");

  const char *bad[] = {"inc/\xc3\x28"};
  n = pack_request(buf, 0, bad, 1, 0, 1);
  LK_CHECK_EQ_INT(gw_feed_request_check(buf, n, &q, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "UTF-8");
}

/* ---- batches ---- */

static Linkage__V1__FeedBatch *batch(struct fixture *fx, const struct gw_feed_req *q, uint64_t from,
                                     uint64_t to, uint64_t head) {
  Linkage__V1__ReplayReply r;
  Linkage__V1__Committed c[8], *ptrs[8];
  replay_reply(fx, from, to, &r, c, ptrs);
  size_t len = 0, items = 0;
  uint8_t *b = gw_feed_batch(q, &r, &fx->view, head, &len, &items);
  if (!LK_CHECK(b != NULL)) return NULL;
  Linkage__V1__FeedBatch *fb = linkage__v1__feed_batch__unpack(NULL, len, b);
  free(b);
  if (LK_CHECK(fb != NULL)) LK_CHECK_EQ_INT(fb->n_items, items);
  return fb;
}

LK_TEST(batch_carries_the_committed_bytes_in_order) {
  struct fixture fx;
  if (!LK_CHECK(fixture_init(&fx) == 0)) return;
  static struct gw_feed_req q;
  memset(&q, 0, sizeof q);
  q.max_events = GW_FEED_BATCH_EVENTS;
  q.request_id = 5;
  Linkage__V1__FeedBatch *b = batch(&fx, &q, 1, 4, 4);
  if (b) {
    LK_CHECK_EQ_INT(b->n_items, 4);
    LK_CHECK_EQ_INT(b->request_id, 5);
    LK_CHECK_EQ_INT(b->head_position, 4);
    LK_CHECK_EQ_INT(b->scanned_to, 4);
    LK_CHECK(!b->more);
    for (size_t i = 0; i < b->n_items && i < 4; i++) {
      LK_CHECK_EQ_INT(b->items[i]->position, i + 1);
      LK_CHECK_STR(b->items[i]->topic, fx.topic[i]);
      LK_CHECK(b->items[i]->event.len == fx.ev[i].len &&
               memcmp(b->items[i]->event.data, fx.ev[i].bytes, fx.ev[i].len) == 0);
      LK_CHECK_EQ_INT(b->items[i]->hash.len, 32);
    }
    linkage__v1__feed_batch__free_unpacked(b, NULL);
  }
  fixture_free(&fx);
}

LK_TEST(batch_filters_by_prefix_and_reports_what_it_scanned) {
  struct fixture fx;
  if (!LK_CHECK(fixture_init(&fx) == 0)) return;
  static struct gw_feed_req q;
  memset(&q, 0, sizeof q);
  q.max_events = GW_FEED_BATCH_EVENTS;
  q.nprefixes = 1;
  snprintf(q.prefixes[0], sizeof q.prefixes[0], "inc/yongquan/qingquan/");
  Linkage__V1__FeedBatch *b = batch(&fx, &q, 1, 4, 4);
  if (b) {
    LK_CHECK_EQ_INT(b->n_items, 1);
    if (b->n_items == 1) LK_CHECK_EQ_INT(b->items[0]->position, 3);
    LK_CHECK_EQ_INT(b->scanned_to, 4);
    LK_CHECK(!b->more);
    linkage__v1__feed_batch__free_unpacked(b, NULL);
  }
  /* Category across areas: the accidents, 1 and 4. */
  q.nprefixes = 2;
  snprintf(q.prefixes[0], sizeof q.prefixes[0], "inc/yongquan/jiangpu-road/accident_disaster/");
  snprintf(q.prefixes[1], sizeof q.prefixes[1], "inc/yongquan/lijinggang/accident_disaster/");
  b = batch(&fx, &q, 1, 4, 4);
  if (b) {
    LK_CHECK_EQ_INT(b->n_items, 2);
    if (b->n_items == 2) {
      LK_CHECK_EQ_INT(b->items[0]->position, 1);
      LK_CHECK_EQ_INT(b->items[1]->position, 4);
    }
    linkage__v1__feed_batch__free_unpacked(b, NULL);
  }
  fixture_free(&fx);
}

LK_TEST(batch_stops_at_max_events_and_at_the_head) {
  struct fixture fx;
  if (!LK_CHECK(fixture_init(&fx) == 0)) return;
  static struct gw_feed_req q;
  memset(&q, 0, sizeof q);
  q.max_events = 2;
  q.after_position = 0;
  Linkage__V1__FeedBatch *b = batch(&fx, &q, 1, 4, 4);
  if (b) {
    LK_CHECK_EQ_INT(b->n_items, 2);
    LK_CHECK_EQ_INT(b->scanned_to, 2);
    LK_CHECK(b->more);
    linkage__v1__feed_batch__free_unpacked(b, NULL);
  }
  /* The gateway has published up to 3: position 4 waits, even if the ledger has it. */
  q.max_events = GW_FEED_BATCH_EVENTS;
  q.after_position = 1;
  b = batch(&fx, &q, 2, 4, 3);
  if (b) {
    LK_CHECK_EQ_INT(b->n_items, 2);
    LK_CHECK_EQ_INT(b->scanned_to, 3);
    LK_CHECK_EQ_INT(b->head_position, 3);
    LK_CHECK(!b->more);
    linkage__v1__feed_batch__free_unpacked(b, NULL);
  }
  /* A hole in the ledger's answer ends the batch before it: nothing is skipped silently. */
  Linkage__V1__ReplayReply r;
  Linkage__V1__Committed c[8], *ptrs[8];
  replay_reply(&fx, 1, 4, &r, c, ptrs);
  ptrs[1] = ptrs[2]; /* positions 1, 3, 3, 4 */
  q.after_position = 0;
  size_t len = 0;
  uint8_t *raw = gw_feed_batch(&q, &r, &fx.view, 4, &len, NULL);
  b = raw ? linkage__v1__feed_batch__unpack(NULL, len, raw) : NULL;
  free(raw);
  if (LK_CHECK(b != NULL)) {
    LK_CHECK_EQ_INT(b->n_items, 1);
    LK_CHECK_EQ_INT(b->scanned_to, 1);
    LK_CHECK(b->more);
    linkage__v1__feed_batch__free_unpacked(b, NULL);
  }
  fixture_free(&fx);
}

LK_TEST(batch_of_a_failed_replay_is_a_refusal) {
  struct fixture fx;
  if (!LK_CHECK(fixture_init(&fx) == 0)) return;
  static struct gw_feed_req q;
  memset(&q, 0, sizeof q);
  q.request_id = 3;
  Linkage__V1__ReplayReply r = LINKAGE__V1__REPLAY_REPLY__INIT;
  r.error = "postgresql unavailable";
  size_t len = 0;
  uint8_t *raw = gw_feed_batch(&q, &r, &fx.view, 4, &len, NULL);
  Linkage__V1__FeedBatch *b = raw ? linkage__v1__feed_batch__unpack(NULL, len, raw) : NULL;
  free(raw);
  if (LK_CHECK(b != NULL)) {
    LK_CHECK_STR(b->error, "postgresql unavailable");
    LK_CHECK_EQ_INT(b->request_id, 3);
    LK_CHECK(b->retry_after_ms > 0);
    LK_CHECK_EQ_INT(b->n_items, 0);
    linkage__v1__feed_batch__free_unpacked(b, NULL);
  }
  fixture_free(&fx);
}

/* ---- the shell over inproc://, against a fake ledger ---- */

struct bus {
  struct fixture fx;
  uv_loop_t loop;
  void *ctx;
  struct lk_zsock ledger; /* the fake ledger's ROUTER */
  struct lk_ledger_client *client;
  struct gw_feed feed;
  void *sub, *dealer;
  int hold; /* the fake ledger holds replays instead of answering */
  int held; /* replay requests it holds */
};

static void on_ledger(struct lk_zsock *z, struct lk_frames *m, void *data) {
  struct bus *b = data;
  int body = lk_frames_body_index(m);
  if (body < 0) return;
  Linkage__V1__LedgerRequest *req = linkage__v1__ledger_request__unpack(
      NULL, zmq_msg_size(&m->frame[body]), zmq_msg_data(&m->frame[body]));
  if (!req) return;
  if (req->body_case == LINKAGE__V1__LEDGER_REQUEST__BODY_REPLAY) {
    if (b->hold) {
      b->held++;
    } else {
      Linkage__V1__ReplayReply rr;
      Linkage__V1__Committed c[8], *ptrs[8];
      replay_reply(&b->fx, req->replay->from_position, b->fx.n, &rr, c, ptrs);
      Linkage__V1__LedgerReply rep = LINKAGE__V1__LEDGER_REPLY__INIT;
      rep.request_id = req->request_id;
      rep.body_case = LINKAGE__V1__LEDGER_REPLY__BODY_REPLAY;
      rep.replay = &rr;
      uint8_t out[65536];
      size_t n = linkage__v1__ledger_reply__pack(&rep, out);
      lk_zsock_reply(z, m, body, out, n);
    }
  }
  linkage__v1__ledger_request__free_unpacked(req, NULL);
}

/* Runs the loop until pred holds or 2000 turns passed (the peers are in this process). */
static int spin(struct bus *b, int (*pred)(struct bus *)) {
  for (int i = 0; i < 2000; i++) {
    if (pred(b)) return 1;
    uv_run(&b->loop, UV_RUN_NOWAIT);
    usleep(500);
  }
  return pred(b);
}

static int sub_readable(struct bus *b) {
  int ev = 0;
  size_t n = sizeof ev;
  zmq_getsockopt(b->sub, ZMQ_EVENTS, &ev, &n);
  return (ev & ZMQ_POLLIN) != 0;
}

static int dealer_readable(struct bus *b) {
  int ev = 0;
  size_t n = sizeof ev;
  zmq_getsockopt(b->dealer, ZMQ_EVENTS, &ev, &n);
  return (ev & ZMQ_POLLIN) != 0;
}

/* Receives up to 3 frames into bufs; returns the frame count. */
static int recv3(void *s, uint8_t bufs[3][70000], int lens[3]) {
  int n = 0, more = 1;
  while (more && n < 3) {
    lens[n] = zmq_recv(s, bufs[n], sizeof bufs[n], ZMQ_DONTWAIT);
    if (lens[n] < 0) return n;
    size_t ml = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    n++;
  }
  return n;
}

static uint64_t be64_get(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

static int ledger_holds_all(struct bus *b) {
  return b->held == GW_FEED_PENDING_MAX;
}

static Linkage__V1__FeedBatch *ask(struct bus *b, const void *req, size_t len) {
  zmq_send(b->dealer, "", 0, ZMQ_SNDMORE);
  zmq_send(b->dealer, req, len, 0);
  if (!spin(b, dealer_readable)) return NULL;
  static uint8_t f[3][70000];
  int lens[3];
  int n = recv3(b->dealer, f, lens);
  if (n != 2 || lens[0] != 0) return NULL;
  return linkage__v1__feed_batch__unpack(NULL, (size_t)lens[1], f[1]);
}

LK_TEST(feed_publishes_heartbeats_and_answers_replays) {
  static struct bus b;
  memset(&b, 0, sizeof b);
  if (!LK_CHECK(fixture_init(&b.fx) == 0)) return;
  uv_loop_init(&b.loop);
  b.ctx = zmq_ctx_new();
  LK_CHECK_EQ_INT(lk_zsock_open(&b.ledger, &b.loop, b.ctx, ZMQ_ROUTER, "@inproc://ledger", NULL,
                                on_ledger, &b, "fake_ledger"),
                  LK_OK);
  struct lk_ledger_client_opts lo = {.endpoint = "inproc://ledger"};
  b.client = lk_ledger_client_new(&b.loop, b.ctx, &lo);
  LK_CHECK(b.client != NULL);

  /* The loopback rule: no CURVE, so a public address is refused and nothing stays open. */
  struct gw_feed_opts o = {.pub_endpoint = "tcp://0.0.0.0:7006",
                           .replay_endpoint = "inproc://feed-replay",
                           .ledger = b.client,
                           .view = &b.fx.view};
  LK_CHECK_EQ_INT(gw_feed_start(&b.feed, &b.loop, b.ctx, &o), LK_EINVAL);
  LK_CHECK(!b.feed.pub_open && !b.feed.replay_open);

  o.pub_endpoint = "inproc://feed";
  LK_CHECK_EQ_INT(gw_feed_start(&b.feed, &b.loop, b.ctx, &o), LK_OK);
  b.sub = zmq_socket(b.ctx, ZMQ_SUB);
  zmq_connect(b.sub, "inproc://feed");
  zmq_setsockopt(b.sub, ZMQ_SUBSCRIBE, "inc/yongquan/qingquan/", 22);
  zmq_setsockopt(b.sub, ZMQ_SUBSCRIBE, "hb", 2);
  b.dealer = zmq_socket(b.ctx, ZMQ_DEALER);
  zmq_connect(b.dealer, "inproc://feed-replay");
  uv_run(&b.loop, UV_RUN_NOWAIT);

  /* Live: only the subscribed topic, then the heartbeat; three frames each. */
  for (size_t i = 0; i < b.fx.n; i++) {
    Linkage__V1__Event *ev = linkage__v1__event__unpack(NULL, b.fx.ev[i].len, b.fx.ev[i].bytes);
    gw_feed_publish(&b.feed, i + 1, ev, b.fx.ev[i].bytes, b.fx.ev[i].len);
    linkage__v1__event__free_unpacked(ev, NULL);
  }
  gw_feed_heartbeat(&b.feed, 99); /* capped at what the view holds */
  LK_CHECK_EQ_INT(b.feed.stats.published, 4);
  static uint8_t f[3][70000];
  int lens[3];
  LK_CHECK(spin(&b, sub_readable));
  LK_CHECK_EQ_INT(recv3(b.sub, f, lens), 3);
  LK_CHECK(lens[0] == (int)strlen(b.fx.topic[2]) && memcmp(f[0], b.fx.topic[2], lens[0]) == 0);
  LK_CHECK_EQ_INT(lens[1], 8);
  LK_CHECK_EQ_INT(be64_get(f[1]), 3);
  LK_CHECK(lens[2] == (int)b.fx.ev[2].len && memcmp(f[2], b.fx.ev[2].bytes, lens[2]) == 0);
  LK_CHECK(spin(&b, sub_readable));
  LK_CHECK_EQ_INT(recv3(b.sub, f, lens), 3);
  LK_CHECK(lens[0] == 2 && memcmp(f[0], "hb", 2) == 0);
  LK_CHECK_EQ_INT(be64_get(f[1]), 4);
  LK_CHECK_EQ_INT(lens[2], 0);

  /* Replay: everything after 1, through the ledger. */
  uint8_t req[4096];
  size_t n = pack_request(req, 1, NULL, 0, 0, 42);
  Linkage__V1__FeedBatch *fb = ask(&b, req, n);
  if (LK_CHECK(fb != NULL)) {
    LK_CHECK_EQ_INT(fb->request_id, 42);
    LK_CHECK_EQ_INT(fb->n_items, 3);
    LK_CHECK_EQ_INT(fb->scanned_to, 4);
    LK_CHECK_EQ_INT(fb->head_position, 4);
    LK_CHECK(fb->error == NULL || fb->error[0] == '\0');
    linkage__v1__feed_batch__free_unpacked(fb, NULL);
  }
  /* At the head: answered at once, without the ledger. */
  n = pack_request(req, 4, NULL, 0, 0, 43);
  fb = ask(&b, req, n);
  if (LK_CHECK(fb != NULL)) {
    LK_CHECK_EQ_INT(fb->n_items, 0);
    LK_CHECK(!fb->more);
    linkage__v1__feed_batch__free_unpacked(fb, NULL);
  }
  /* Malformed: a refusal, not silence. */
  fb = ask(&b, "\xff\xff\xff", 3);
  if (LK_CHECK(fb != NULL)) {
    LK_CHECK_STR(fb->error, "not a FeedRequest");
    linkage__v1__feed_batch__free_unpacked(fb, NULL);
  }
  /* Bounded: with every slot waiting on the ledger, the next request is told "busy". */
  b.hold = 1;
  for (int i = 0; i < GW_FEED_PENDING_MAX; i++) {
    n = pack_request(req, 0, NULL, 0, 0, 100 + (uint64_t)i);
    zmq_send(b.dealer, "", 0, ZMQ_SNDMORE);
    zmq_send(b.dealer, req, n, 0);
  }
  n = pack_request(req, 0, NULL, 0, 0, 999);
  fb = ask(&b, req, n);
  if (LK_CHECK(fb != NULL)) {
    LK_CHECK_EQ_INT(fb->request_id, 999);
    LK_CHECK_CONTAINS(fb->error, "busy");
    LK_CHECK(fb->retry_after_ms > 0);
    linkage__v1__feed_batch__free_unpacked(fb, NULL);
  }
  LK_CHECK_EQ_INT(b.feed.npending, GW_FEED_PENDING_MAX);
  LK_CHECK(spin(&b, ledger_holds_all));

  /* Stop with replays waiting: forgotten, sockets closed, the loop closes clean. */
  gw_feed_stop(&b.feed);
  LK_CHECK_EQ_INT(b.feed.npending, 0);
  lk_ledger_client_destroy(&b.client);
  lk_zsock_close(&b.ledger);
  zmq_close(b.sub);
  zmq_close(b.dealer);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  LK_CHECK_EQ_INT(uv_loop_close(&b.loop), 0);
  zmq_ctx_term(b.ctx);
  fixture_free(&b.fx);
}

int main(void) {
  lk_log_init("test", LK_LOG_ERROR + 1);
  int rc = lk_test_run_all();
  lk_district_destroy(&the_district);
  return rc;
}
