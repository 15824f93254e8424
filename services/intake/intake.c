/* linkage-intake's shell: the devices' ROUTER, the ledger client, and the
 * list of reports waiting for the ledger. Decisions are in intake_core.c. */

#include "intake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkage/clock.h"
#include "linkage/error.h"
#include "linkage/log.h"
#include "linkage/metrics.h"

/* libzmq drops a frame larger than ZMQ_MAXMSGSIZE by closing the peer's
 * connection, and the device sees silence, not an answer. So the limit sits
 * well above LK_REPORT_FRAME_MAX: anything up to 4 MiB is read and answered
 * REJECTED "report too large"; only frames beyond it cost the device its
 * connection. */
#define INTAKE_MAXMSGSIZE (4 << 20)
/* Messages libzmq queues per device connection before it stops reading the
 * connection (TCP flow control then slows the device down). */
#define INTAKE_RCVHWM 1000

static void list_unlink(struct intake_pending *p) {
  p->prev->next = p->next;
  p->next->prev = p->prev;
  p->prev = p->next = p;
}

static void list_push(struct intake_pending *head, struct intake_pending *p) {
  p->next = head;
  p->prev = head->prev;
  head->prev->next = p;
  head->prev = p;
}

static void log_answer(const struct intake_ack *ack) {
  /* Bad peers can make every frame a rejection: do no quoting for a dropped line. */
  if ((ack->status != LINKAGE__V1__REPORT_ACK__STATUS__REJECTED &&
       ack->status != LINKAGE__V1__REPORT_ACK__STATUS__BUSY) ||
      !lk_log_enabled(LK_LOG_DEBUG))
    return;
  char q[INTAKE_ERROR_MAX + 64];
  lk_debug(ack->status == LINKAGE__V1__REPORT_ACK__STATUS__REJECTED ? "report rejected"
                                                                    : "report refused, busy",
           "sequence=%llu err=\"%s\"", (unsigned long long)ack->sequence,
           lk_log_quote(q, sizeof(q), ack->error));
}

/* Sends ack behind the envelope bufs/lens[0..env). */
static void send_ack(struct intake *in, const void **bufs, size_t *lens, int env,
                     const struct intake_ack *ack) {
  uint8_t packed[INTAKE_ACK_MAX];
  size_t n = intake_core_pack(ack, packed, sizeof(packed));
  intake_core_count(&in->stats, ack);
  log_answer(ack);
  if (n == 0) {
    lk_error("cannot pack report ack", "sequence=%llu", (unsigned long long)ack->sequence);
    return;
  }
  bufs[env] = packed;
  lens[env] = n;
  /* A ROUTER drops what it cannot deliver (the device left, or its queue is
   * full); the device then retries and gets DUPLICATE, so nothing is lost. */
  int rc = lk_zsock_sendv(&in->router, bufs, lens, env + 1, ZMQ_DONTWAIT);
  if (rc != LK_OK) lk_debug("cannot send report ack", "err=%s", lk_strerror(rc));
}

static void reply_now(struct intake *in, const struct lk_frames *m, int env,
                      const struct intake_ack *ack) {
  const void *bufs[LK_ZSOCK_MAX_FRAMES + 1];
  size_t lens[LK_ZSOCK_MAX_FRAMES + 1];
  for (int i = 0; i < env; i++) {
    bufs[i] = zmq_msg_data((zmq_msg_t *)&m->frame[i]);
    lens[i] = zmq_msg_size((zmq_msg_t *)&m->frame[i]);
  }
  send_ack(in, bufs, lens, env, ack);
}

static void append_cb(void *data, const Linkage__V1__AppendReply *reply) {
  struct intake_pending *p = data;
  struct intake *in = p->in;
  struct intake_ack ack;
  memset(&ack, 0, sizeof(ack));
  memcpy(ack.incident_id, p->incident_id, sizeof(ack.incident_id));
  ack.sequence = p->sequence;
  intake_core_answer(&ack, reply, in->limits.retry_after_ms);
  if (reply && reply->status == LINKAGE__V1__APPEND_REPLY__STATUS__INVALID) {
    char q[INTAKE_ERROR_MAX + 64];
    lk_error("ledger refused a reported event", "incident_id=%s err=\"%s\"", p->incident_id,
             lk_log_quote(q, sizeof(q), reply->error ? reply->error : ""));
  }

  const void *bufs[LK_ZSOCK_MAX_FRAMES + 1];
  size_t lens[LK_ZSOCK_MAX_FRAMES + 1];
  size_t off = 0;
  for (int i = 0; i < p->env_frames; i++) {
    bufs[i] = p->env + off;
    lens[i] = p->env_len[i];
    off += p->env_len[i];
  }
  if (in->router_open) send_ack(in, bufs, lens, p->env_frames, &ack);
  list_unlink(p);
  in->inflight--;
  free(p);
}

/* Keeps the envelope, builds the event and hands it to the ledger client.
 * Returns LK_OK (the answer comes in append_cb) or fills ack with the answer
 * to give now. */
static int append_report(struct intake *in, const struct lk_frames *m, int env,
                         const Linkage__V1__Report *r, struct intake_ack *ack) {
  size_t total = 0;
  for (int i = 0; i < env; i++)
    total += zmq_msg_size((zmq_msg_t *)&m->frame[i]);
  if (total > INTAKE_ENVELOPE_MAX) {
    ack->status = LINKAGE__V1__REPORT_ACK__STATUS__REJECTED;
    ack->incident_id[0] = '\0';
    snprintf(ack->error, sizeof(ack->error), "routing envelope too large (%zu bytes, max %d)",
             total, INTAKE_ENVELOPE_MAX);
    return LK_EINVAL;
  }
  struct intake_pending *p = calloc(1, sizeof(*p));
  if (p == NULL) {
    intake_core_busy(ack, "intake is out of memory", in->limits.retry_after_ms);
    return LK_ENOMEM;
  }
  p->in = in;
  memcpy(p->incident_id, ack->incident_id, sizeof(p->incident_id));
  p->sequence = ack->sequence;
  p->env_frames = env;
  size_t off = 0;
  for (int i = 0; i < env; i++) {
    zmq_msg_t *f = (zmq_msg_t *)&m->frame[i];
    p->env_len[i] = zmq_msg_size(f);
    memcpy(p->env + off, zmq_msg_data(f), p->env_len[i]);
    off += p->env_len[i];
  }

  struct intake_event ev;
  int rc = intake_core_event(&ev, r, ack->incident_id, lk_now_us());
  if (rc != LK_OK) {
    /* Cannot happen for a report that passed lk_report_check. */
    free(p);
    ack->status = LINKAGE__V1__REPORT_ACK__STATUS__REJECTED;
    snprintf(ack->error, sizeof(ack->error), "cannot build the reported event: %s",
             lk_strerror(rc));
    return rc;
  }
  /* Listed before the call: the callback frees p and must find it linked. */
  list_push(&in->pending, p);
  in->inflight++;
  rc = lk_ledger_append(in->ledger, &ev.ev, append_cb, p);
  if (rc != LK_OK) {
    list_unlink(p);
    in->inflight--;
    free(p);
    intake_core_busy(
        ack, rc == LK_EFULL ? "intake is at capacity (ledger queue full)" : "ledger unavailable",
        in->limits.retry_after_ms);
    if (rc != LK_EFULL) lk_warn("cannot append to the ledger", "err=%s", lk_strerror(rc));
  }
  return rc;
}

static void on_report(struct lk_zsock *s, struct lk_frames *m, void *data) {
  struct intake *in = data;
  int body = lk_frames_body_index(m);
  int env = body < 0 ? m->count : body;
  int body_frames = body < 0 ? 0 : m->count - body;
  if (m->truncated) body_frames = LK_ZSOCK_MAX_FRAMES;
  const uint8_t *bytes = NULL;
  size_t len = 0;
  if (body_frames > 0) {
    bytes = zmq_msg_data(&m->frame[body]);
    len = zmq_msg_size(&m->frame[body]);
  }

  Linkage__V1__Report *r = NULL;
  struct intake_ack ack;
  char key_device[LK_ID_MAX];
  if (lk_auth_check(&in->auth, m, key_device) != LK_OK) {
    /* ZAP ran at the handshake; the key has been revoked since. */
    memset(&ack, 0, sizeof ack);
    ack.status = LINKAGE__V1__REPORT_ACK__STATUS__REJECTED;
    snprintf(ack.error, sizeof ack.error, "key revoked");
    /* Devices match answers by sequence: name it, so the device stops retrying. */
    if (bytes && len <= LK_REPORT_FRAME_MAX) {
      Linkage__V1__Report *rr = linkage__v1__report__unpack(NULL, len, bytes);
      if (rr) {
        ack.sequence = rr->sequence;
        linkage__v1__report__free_unpacked(rr, NULL);
      }
    }
    reply_now(in, m, env, &ack);
    return;
  }
  enum intake_verdict v =
      intake_core_admit(&in->limits, in->district, body_frames, bytes, len, in->inflight, &r, &ack);
  if (v == INTAKE_APPEND && in->auth.curve && !intake_core_key_matches(key_device, r, &ack)) {
    linkage__v1__report__free_unpacked(r, NULL);
    v = INTAKE_ANSWER;
  }
  if (v == INTAKE_APPEND) {
    int rc = append_report(in, m, env, r, &ack);
    linkage__v1__report__free_unpacked(r, NULL);
    if (rc == LK_OK) return;
  }
  reply_now(in, m, env, &ack);
}

int intake_start(struct lk_runtime *rt) {
  struct intake *in = rt->state;
  const struct intake_config *cfg = rt->config;
  char err[512], q[600];

  in->rt = rt;
  in->cfg = cfg;
  in->pending.next = in->pending.prev = &in->pending;
  in->limits.inflight_max = (unsigned)cfg->inflight_max;
  in->limits.retry_after_ms = (uint32_t)cfg->retry_after_ms;

  in->district = lk_district_load(cfg->district, err, sizeof(err));
  if (in->district == NULL) {
    lk_error("cannot load district", "err=\"%s\"", lk_log_quote(q, sizeof(q), err));
    return LK_EINVAL;
  }
  if (lk_link_load(&in->link, cfg->link_curve, cfg->link_key_file) != LK_OK) return LK_EINVAL;
  struct lk_ledger_client_opts lo = {
      .endpoint = cfg->ledger_endpoint,
      .link = &in->link,
      /* one more than ours: the client keeps one slot back, and our own count
       * is what answers BUSY first */
      .max_pending = (unsigned)cfg->inflight_max + 1,
      .timeout_ms = (unsigned)cfg->ledger_timeout_ms,
      .give_up_ms = (unsigned)cfg->ledger_give_up_ms,
  };
  in->ledger = lk_ledger_client_new(rt->loop, rt->zctx, &lo);
  if (in->ledger == NULL) {
    lk_error("cannot open ledger client", "endpoint=\"%s\"", cfg->ledger_endpoint);
    return LK_EIO;
  }
  struct lk_zsock_opts zo = {
      .linger_ms = 200,
      .maxmsg = INTAKE_MAXMSGSIZE,
      .rcvhwm = INTAKE_RCVHWM,
  };
  struct lk_auth_opts ao = {
      .kind = "device",
      .pg = cfg->pg,
      .refresh_ms = (unsigned)cfg->keys_refresh_ms,
      .endpoint = cfg->intake_endpoint,
      .curve = cfg->curve,
      .secret_file = cfg->curve_secret_file,
      .link = &in->link,
  };
  if (lk_auth_start(&in->auth, rt->loop, rt->zctx, &ao) != LK_OK) return LK_EINVAL;
  lk_auth_socket_opts(&in->auth, &zo);
  int rc = lk_zsock_open(&in->router, rt->loop, rt->zctx, ZMQ_ROUTER, cfg->intake_endpoint, &zo,
                         on_report, in, "intake");
  if (rc != LK_OK) return rc; /* logged by lk_zsock_open */
  in->router_open = 1;
  lk_info("listening", "endpoint=\"%s\" ledger=\"%s\" district=\"%s\" compounds=%zu curve=%d",
          cfg->intake_endpoint, cfg->ledger_endpoint, cfg->district, in->district->compound_count,
          cfg->curve);
  return LK_OK;
}

/* Duties: resend appends the ledger has not answered and answer BUSY for
 * those it never will (both inside the ledger client). */
void intake_tick(struct lk_runtime *rt, int64_t now_us) {
  struct intake *in = rt->state;
  if (in->ledger) lk_ledger_client_tick(in->ledger, lk_mono_us());
}

void intake_status(struct lk_runtime *rt, char *buf, size_t len) {
  struct intake *in = rt->state;
  int n = snprintf(buf, len, "inflight=%u accepted=%llu duplicate=%llu rejected=%llu busy=%llu",
                   in->inflight, (unsigned long long)in->stats.accepted,
                   (unsigned long long)in->stats.duplicate, (unsigned long long)in->stats.rejected,
                   (unsigned long long)in->stats.busy);
  if (in->auth.curve && n > 0 && (size_t)n < len)
    snprintf(buf + n, len - (size_t)n,
             " curve=1 keys=%zu zap_allowed=%llu zap_denied=%llu "
             "revoked_refused=%llu",
             in->auth.ring ? in->auth.ring->n : (size_t)0, (unsigned long long)in->auth.zap_allowed,
             (unsigned long long)in->auth.zap_denied, (unsigned long long)in->auth.revoked_refused);
}

/* The status line's figures, for Prometheus. */
void intake_metrics(struct lk_runtime *rt, struct lk_metrics_writer *w) {
  struct intake *in = rt->state;
  const struct intake_stats *st = &in->stats;
  lk_metrics_family(w, "linkage_intake_reports_total", LK_METRIC_COUNTER,
                    "device messages answered, by the status of the ReportAck: accepted (committed "
                    "in the ledger), duplicate (a retry of a committed report), rejected (a rule "
                    "broken), busy (over capacity; the device retries)");
  lk_metrics_sample(w, (double)st->accepted, "status", "accepted");
  lk_metrics_sample(w, (double)st->duplicate, "status", "duplicate");
  lk_metrics_sample(w, (double)st->rejected, "status", "rejected");
  lk_metrics_sample(w, (double)st->busy, "status", "busy");
  lk_metrics_single(w, "linkage_intake_inflight_reports", LK_METRIC_GAUGE,
                    "reports waiting for the ledger's commit", in->inflight);
  lk_metrics_single(w, "linkage_intake_inflight_limit", LK_METRIC_GAUGE,
                    "reports waiting for the ledger at which new ones are answered busy "
                    "(inflight_max)",
                    in->limits.inflight_max);
  lk_auth_metrics(w, "linkage_intake", &in->auth);
}

/* Also runs after a failed start, so every step checks what was opened.
 * Reports still waiting for the ledger get no answer: their devices retry,
 * and the ledger answers DUPLICATE for what it had committed. */
void intake_stop(struct lk_runtime *rt) {
  struct intake *in = rt->state;
  if (in->router_open) {
    lk_zsock_close(&in->router);
    in->router_open = 0;
  }
  lk_auth_stop(&in->auth);
  lk_ledger_client_destroy(&in->ledger);
  if (in->pending.next != NULL) {
    struct intake_pending *p = in->pending.next;
    while (p != &in->pending) {
      struct intake_pending *next = p->next;
      free(p);
      p = next;
    }
    in->pending.next = in->pending.prev = &in->pending;
  }
  in->inflight = 0;
  lk_district_destroy(&in->district);
}
