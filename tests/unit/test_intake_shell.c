/* linkage-intake's shell over inproc:// with a scripted ledger: envelopes of
 * REQ and DEALER devices, answers after the ledger's reply, BUSY at
 * capacity, and a stop that leaves no handle open. */

#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "intake/intake.h"
#include "linkage/clock.h"
#include "linkage/error.h"
#include "lk_test.h"

struct rig {
  uv_loop_t loop;
  void *zctx;
  struct intake_config cfg;
  struct lk_runtime rt;
  void *ledger; /* ROUTER standing in for linkage-ledger */
  /* requests the fake ledger has read and not answered yet */
  zmq_msg_t held_env[16][4];
  int held_env_count[16];
  uint64_t held_id[16];
  int held;
  int appends_seen;
  /* what the fake ledger answers; 0 = hold the request */
  Linkage__V1__AppendReply__Status answer;
};

static void send_reply(struct rig *g, int i, Linkage__V1__AppendReply__Status st) {
  Linkage__V1__LedgerReply rep;
  Linkage__V1__AppendReply ar;
  linkage__v1__ledger_reply__init(&rep);
  linkage__v1__append_reply__init(&ar);
  ar.status = st;
  ar.error = st == LINKAGE__V1__APPEND_REPLY__STATUS__BUSY ? "queue full" : "";
  rep.request_id = g->held_id[i];
  rep.body_case = LINKAGE__V1__LEDGER_REPLY__BODY_APPEND;
  rep.append = &ar;
  uint8_t buf[512];
  size_t n = linkage__v1__ledger_reply__pack(&rep, buf);
  for (int f = 0; f < g->held_env_count[i]; f++) {
    zmq_msg_send(&g->held_env[i][f], g->ledger, ZMQ_SNDMORE);
    zmq_msg_close(&g->held_env[i][f]);
  }
  zmq_send(g->ledger, buf, n, 0);
}

/* Reads what reached the fake ledger; answers it or holds it. */
static void serve_ledger(struct rig *g) {
  for (;;) {
    zmq_msg_t parts[5];
    int n = 0, more = 1;
    while (more && n < 5) {
      zmq_msg_init(&parts[n]);
      if (zmq_msg_recv(&parts[n], g->ledger, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&parts[n]);
        return;
      }
      more = zmq_msg_more(&parts[n]);
      n++;
    }
    Linkage__V1__LedgerRequest *req = linkage__v1__ledger_request__unpack(
        NULL, zmq_msg_size(&parts[n - 1]), zmq_msg_data(&parts[n - 1]));
    LK_CHECK(req != NULL && req->body_case == LINKAGE__V1__LEDGER_REQUEST__BODY_APPEND);
    if (req && req->body_case == LINKAGE__V1__LEDGER_REQUEST__BODY_APPEND) {
      const Linkage__V1__Event *ev = req->append->event;
      LK_CHECK_EQ_INT(ev->type, LINKAGE__V1__EVENT_TYPE__REPORTED);
      LK_CHECK(strncmp(ev->actor, "device:", 7) == 0);
      g->appends_seen++;
    }
    int i = g->held++;
    g->held_id[i] = req ? req->request_id : 0;
    g->held_env_count[i] = n - 1;
    for (int f = 0; f < n - 1; f++)
      g->held_env[i][f] = parts[f];
    zmq_msg_close(&parts[n - 1]);
    linkage__v1__ledger_request__free_unpacked(req, NULL);
    if (g->answer) {
      send_reply(g, i, g->answer);
      g->held--;
    }
  }
}

static void pump(struct rig *g) {
  uv_run(&g->loop, UV_RUN_NOWAIT);
  serve_ledger(g);
}

/* Waits up to 5 s for a reply on dev; returns the ack or NULL. */
static Linkage__V1__ReportAck *await_ack(struct rig *g, void *dev, int dealer) {
  int64_t until = lk_mono_us() + 5000000;
  while (lk_mono_us() < until) {
    pump(g);
    zmq_pollitem_t it = {dev, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 1) == 1) {
      uint8_t buf[2048];
      int n = zmq_recv(dev, buf, sizeof(buf), 0);
      if (dealer) {
        LK_CHECK_EQ_INT(n, 0); /* the delimiter comes back */
        n = zmq_recv(dev, buf, sizeof(buf), 0);
      }
      if (n < 0) return NULL;
      return linkage__v1__report_ack__unpack(NULL, (size_t)n, buf);
    }
  }
  return NULL;
}

static size_t pack_report(uint8_t *buf, const char *dev, uint64_t seq, const char *compound) {
  Linkage__V1__Report r;
  Linkage__V1__Location loc;
  linkage__v1__report__init(&r);
  linkage__v1__location__init(&loc);
  r.device_id = (char *)dev;
  r.sequence = seq;
  r.category = LINKAGE__V1__CATEGORY__PUBLIC_HEALTH;
  r.kind = "sick_cluster";
  r.severity = LINKAGE__V1__SEVERITY__SEVERITY_III;
  r.location = &loc;
  loc.compound_id = (char *)compound;
  return linkage__v1__report__pack(&r, buf);
}

static int rig_start(struct rig *g, long inflight_max, const char *tag) {
  memset(g, 0, sizeof(*g));
  uv_loop_init(&g->loop);
  g->zctx = zmq_ctx_new();
  snprintf(g->cfg.intake_endpoint, LK_CONFIG_STR, "inproc://intake-%s", tag);
  snprintf(g->cfg.ledger_endpoint, LK_CONFIG_STR, "inproc://ledger-%s", tag);
  snprintf(g->cfg.district, LK_CONFIG_STR, "deploy/district/wenjiang.yaml");
  g->cfg.inflight_max = inflight_max;
  g->cfg.retry_after_ms = 150;
  g->cfg.ledger_timeout_ms = 5000;
  g->cfg.ledger_give_up_ms = 60000;
  g->ledger = zmq_socket(g->zctx, ZMQ_ROUTER);
  zmq_bind(g->ledger, g->cfg.ledger_endpoint);
  g->rt.loop = &g->loop;
  g->rt.zctx = g->zctx;
  g->rt.name = "intake";
  g->rt.config = &g->cfg;
  g->rt.state = calloc(1, sizeof(struct intake));
  g->answer = LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED;
  return intake_start(&g->rt);
}

static void rig_stop(struct rig *g) {
  intake_stop(&g->rt);
  uv_run(&g->loop, UV_RUN_DEFAULT);
  LK_CHECK_EQ_INT(uv_loop_close(&g->loop), 0);
  for (int i = 0; i < g->held; i++)
    for (int f = 0; f < g->held_env_count[i]; f++)
      zmq_msg_close(&g->held_env[i][f]);
  int zero = 0;
  zmq_setsockopt(g->ledger, ZMQ_LINGER, &zero, sizeof(zero));
  zmq_close(g->ledger);
  zmq_ctx_term(g->zctx);
  free(g->rt.state);
}

static void *device(struct rig *g, int type) {
  void *s = zmq_socket(g->zctx, type);
  int zero = 0;
  zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
  zmq_connect(s, g->cfg.intake_endpoint);
  return s;
}

static void status_line(struct rig *g, char *buf, size_t len) {
  intake_status(&g->rt, buf, len);
}

LK_TEST(req_device_accepted_then_duplicate) {
  struct rig g;
  LK_CHECK_EQ_INT(rig_start(&g, 100, "req"), LK_OK);
  void *dev = device(&g, ZMQ_REQ);
  uint8_t buf[1024];
  size_t n = pack_report(buf, "req-dev", 1, "lijinggang");
  zmq_send(dev, buf, n, 0);
  Linkage__V1__ReportAck *ack = await_ack(&g, dev, 0);
  LK_CHECK(ack != NULL);
  char inc[LK_ID_MAX];
  lk_incident_id("req-dev", 1, inc);
  if (ack) {
    LK_CHECK_EQ_INT(ack->status, LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED);
    LK_CHECK_STR(ack->incident_id, inc);
    LK_CHECK_EQ_INT(ack->sequence, 1);
    linkage__v1__report_ack__free_unpacked(ack, NULL);
  }
  g.answer = LINKAGE__V1__APPEND_REPLY__STATUS__DUPLICATE;
  zmq_send(dev, buf, n, 0);
  ack = await_ack(&g, dev, 0);
  LK_CHECK(ack != NULL);
  if (ack) {
    LK_CHECK_EQ_INT(ack->status, LINKAGE__V1__REPORT_ACK__STATUS__DUPLICATE);
    LK_CHECK_STR(ack->incident_id, inc);
    linkage__v1__report_ack__free_unpacked(ack, NULL);
  }
  LK_CHECK_EQ_INT(g.appends_seen, 2);
  char st[256];
  status_line(&g, st, sizeof(st));
  LK_CHECK_STR(st, "inflight=0 accepted=1 duplicate=1 rejected=0 busy=0");
  zmq_close(dev);
  rig_stop(&g);
}

LK_TEST(dealer_device_bad_frames_rejected_without_ledger) {
  struct rig g;
  LK_CHECK_EQ_INT(rig_start(&g, 100, "dealer"), LK_OK);
  void *dev = device(&g, ZMQ_DEALER);
  uint8_t buf[1024];

  /* unknown compound */
  size_t n = pack_report(buf, "dealer-dev", 5, "nowhere");
  zmq_send(dev, "", 0, ZMQ_SNDMORE);
  zmq_send(dev, buf, n, 0);
  Linkage__V1__ReportAck *ack = await_ack(&g, dev, 1);
  LK_CHECK(ack != NULL);
  if (ack) {
    LK_CHECK_EQ_INT(ack->status, LINKAGE__V1__REPORT_ACK__STATUS__REJECTED);
    LK_CHECK_EQ_INT(ack->sequence, 5);
    LK_CHECK_CONTAINS(ack->error, "location.compound_id \"nowhere\"");
    linkage__v1__report_ack__free_unpacked(ack, NULL);
  }

  /* two body frames */
  n = pack_report(buf, "dealer-dev", 6, "lijinggang");
  zmq_send(dev, "", 0, ZMQ_SNDMORE);
  zmq_send(dev, buf, n, ZMQ_SNDMORE);
  zmq_send(dev, buf, n, 0);
  ack = await_ack(&g, dev, 1);
  LK_CHECK(ack != NULL);
  if (ack) {
    LK_CHECK_STR(ack->error, "expected one frame holding a Report, got 2 frames");
    linkage__v1__report_ack__free_unpacked(ack, NULL);
  }

  /* no body frame at all */
  zmq_send(dev, "", 0, 0);
  ack = await_ack(&g, dev, 1);
  LK_CHECK(ack != NULL);
  if (ack) {
    LK_CHECK_STR(ack->error, "empty message: expected one frame holding a Report");
    linkage__v1__report_ack__free_unpacked(ack, NULL);
  }

  /* 1 MiB */
  size_t big = 1 << 20;
  uint8_t *junk = calloc(1, big);
  zmq_send(dev, "", 0, ZMQ_SNDMORE);
  zmq_send(dev, junk, big, 0);
  free(junk);
  ack = await_ack(&g, dev, 1);
  LK_CHECK(ack != NULL);
  if (ack) {
    LK_CHECK_STR(ack->error, "report too large (1048576 bytes, max 8192)");
    linkage__v1__report_ack__free_unpacked(ack, NULL);
  }
  LK_CHECK_EQ_INT(g.appends_seen, 0);

  /* and a good one afterwards, from a DEALER without the delimiter */
  void *bare = device(&g, ZMQ_DEALER);
  n = pack_report(buf, "dealer-dev", 7, "spring-square");
  zmq_send(bare, buf, n, 0);
  ack = await_ack(&g, bare, 0);
  LK_CHECK(ack != NULL);
  if (ack) {
    LK_CHECK_EQ_INT(ack->status, LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED);
    linkage__v1__report_ack__free_unpacked(ack, NULL);
  }
  char st[256];
  status_line(&g, st, sizeof(st));
  LK_CHECK_STR(st, "inflight=0 accepted=1 duplicate=0 rejected=4 busy=0");
  zmq_close(dev);
  zmq_close(bare);
  rig_stop(&g);
}

LK_TEST(busy_when_inflight_full) {
  struct rig g;
  LK_CHECK_EQ_INT(rig_start(&g, 2, "busy"), LK_OK);
  g.answer = 0; /* hold every request */
  void *dev = device(&g, ZMQ_DEALER);
  uint8_t buf[1024];
  for (uint64_t seq = 1; seq <= 3; seq++) {
    size_t n = pack_report(buf, "busy-dev", seq, "zhouji-yinhai-bay");
    zmq_send(dev, "", 0, ZMQ_SNDMORE);
    zmq_send(dev, buf, n, 0);
  }
  Linkage__V1__ReportAck *ack = await_ack(&g, dev, 1);
  LK_CHECK(ack != NULL);
  if (ack) {
    LK_CHECK_EQ_INT(ack->status, LINKAGE__V1__REPORT_ACK__STATUS__BUSY);
    LK_CHECK_EQ_INT(ack->sequence, 3);
    LK_CHECK_EQ_INT(ack->retry_after_ms, 150);
    linkage__v1__report_ack__free_unpacked(ack, NULL);
  }
  char st[256];
  status_line(&g, st, sizeof(st));
  LK_CHECK_STR(st, "inflight=2 accepted=0 duplicate=0 rejected=0 busy=1");
  /* the ledger catches up: both held reports are answered */
  int64_t until = lk_mono_us() + 5000000;
  while (g.held < 2 && lk_mono_us() < until)
    pump(&g);
  LK_CHECK_EQ_INT(g.held, 2);
  send_reply(&g, 0, LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED);
  send_reply(&g, 1, LINKAGE__V1__APPEND_REPLY__STATUS__BUSY);
  g.held = 0;
  int accepted = 0, busy = 0;
  for (int i = 0; i < 2; i++) {
    ack = await_ack(&g, dev, 1);
    LK_CHECK(ack != NULL);
    if (!ack) break;
    accepted += ack->status == LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED;
    busy += ack->status == LINKAGE__V1__REPORT_ACK__STATUS__BUSY;
    linkage__v1__report_ack__free_unpacked(ack, NULL);
  }
  LK_CHECK(accepted == 1 && busy == 1);
  status_line(&g, st, sizeof(st));
  LK_CHECK_STR(st, "inflight=0 accepted=1 duplicate=0 rejected=0 busy=2");
  zmq_close(dev);
  rig_stop(&g);
}

LK_TEST(start_refuses_bad_district) {
  struct rig g;
  memset(&g, 0, sizeof(g));
  uv_loop_init(&g.loop);
  g.zctx = zmq_ctx_new();
  snprintf(g.cfg.intake_endpoint, LK_CONFIG_STR, "inproc://intake-bad");
  snprintf(g.cfg.ledger_endpoint, LK_CONFIG_STR, "inproc://ledger-bad");
  snprintf(g.cfg.district, LK_CONFIG_STR, "tests/data/district/bad_dangling_grid.yaml");
  g.cfg.inflight_max = 10;
  g.rt.loop = &g.loop;
  g.rt.zctx = g.zctx;
  g.rt.config = &g.cfg;
  g.rt.state = calloc(1, sizeof(struct intake));
  LK_CHECK_EQ_INT(intake_start(&g.rt), LK_EINVAL);
  intake_stop(&g.rt);
  uv_run(&g.loop, UV_RUN_DEFAULT);
  LK_CHECK_EQ_INT(uv_loop_close(&g.loop), 0);
  zmq_ctx_term(g.zctx);
  free(g.rt.state);
}

int main(void) {
  return lk_test_run_all();
}
