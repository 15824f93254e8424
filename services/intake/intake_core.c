/* linkage-intake's decisions (see intake_core.h). */

#include "intake_core.h"
#include "linkage/zap.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "linkage/error.h"
#include "linkage/zsock.h"

static void ack_reset(struct intake_ack *ack) {
  memset(ack, 0, sizeof(*ack));
}

static enum intake_verdict reject(struct intake_ack *ack, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum intake_verdict reject(struct intake_ack *ack, const char *fmt, ...) {
  va_list ap;
  ack->status = LINKAGE__V1__REPORT_ACK__STATUS__REJECTED;
  va_start(ap, fmt);
  vsnprintf(ack->error, sizeof(ack->error), fmt, ap);
  va_end(ap);
  return INTAKE_ANSWER;
}

enum intake_verdict intake_core_admit(const struct intake_limits *lim, const struct lk_district *d,
                                      int body_frames, const uint8_t *body, size_t len,
                                      unsigned inflight, Linkage__V1__Report **report,
                                      struct intake_ack *ack) {
  ack_reset(ack);
  *report = NULL;
  if (body_frames <= 0) return reject(ack, "empty message: expected one frame holding a Report");
  if (body_frames > 1)
    return reject(ack, "expected one frame holding a Report, got %s%d frames",
                  body_frames >= LK_ZSOCK_MAX_FRAMES ? "at least " : "", body_frames);
  if (len > LK_REPORT_FRAME_MAX)
    return reject(ack, "report too large (%zu bytes, max %d)", len, LK_REPORT_FRAME_MAX);

  Linkage__V1__Report *r = linkage__v1__report__unpack(NULL, len, body);
  if (r == NULL)
    return reject(ack, "malformed Report: %zu bytes are not a protobuf linkage.v1.Report", len);
  ack->sequence = r->sequence;

  char why[INTAKE_ERROR_MAX];
  if (lk_report_wire_check(body, len, why, sizeof why) != LK_OK ||
      lk_report_check(r, d, why, sizeof(why)) != LK_OK) {
    linkage__v1__report__free_unpacked(r, NULL);
    return reject(ack, "%s", why);
  }
  /* Refuse work only once the report is known to be good: a device must not
   * retry a report that can never be accepted. */
  if (inflight >= lim->inflight_max) {
    linkage__v1__report__free_unpacked(r, NULL);
    char msg[96];
    snprintf(msg, sizeof(msg), "intake is at capacity (%u reports in flight)", inflight);
    intake_core_busy(ack, msg, lim->retry_after_ms);
    return INTAKE_ANSWER;
  }
  lk_incident_id(r->device_id, r->sequence, ack->incident_id);
  *report = r;
  return INTAKE_APPEND;
}

int intake_core_key_matches(const char *key_device, const Linkage__V1__Report *r,
                            struct intake_ack *ack) {
  if (strcmp(key_device, r->device_id) == 0) return 1;
  /* The stack's link key (the gateway relaying Open311 reports) speaks for any device. */
  if (strcmp(key_device, LK_LINK_USER) == 0) return 1;
  ack->incident_id[0] = '\0';
  reject(ack, "device_id %.150s does not match the key's device %.150s", r->device_id, key_device);
  return 0;
}

int intake_core_event(struct intake_event *out, const Linkage__V1__Report *r,
                      const char *incident_id, int64_t now_us) {
  memset(out, 0, sizeof(*out));
  int rc = lk_event_id(out->event_id, sizeof(out->event_id), incident_id,
                       LINKAGE__V1__EVENT_TYPE__REPORTED, NULL, 0);
  if (rc != LK_OK) return rc;
  int n = snprintf(out->actor, sizeof(out->actor), "device:%s", r->device_id);
  if (n < 0 || (size_t)n >= sizeof(out->actor)) return LK_EINVAL;

  linkage__v1__reported__init(&out->reported);
  /* protobuf-c's structs are not const-correct; the event only reads the report. */
  out->reported.report = (Linkage__V1__Report *)r;
  out->reported.received_at_us = now_us;

  linkage__v1__event__init(&out->ev);
  out->ev.event_id = out->event_id;
  out->ev.incident_id = (char *)incident_id;
  out->ev.type = LINKAGE__V1__EVENT_TYPE__REPORTED;
  out->ev.at_us = now_us;
  out->ev.actor = out->actor;
  out->ev.body_case = LINKAGE__V1__EVENT__BODY_REPORTED;
  out->ev.reported = &out->reported;
  return LK_OK;
}

void intake_core_busy(struct intake_ack *ack, const char *why, uint32_t retry_after_ms) {
  ack->status = LINKAGE__V1__REPORT_ACK__STATUS__BUSY;
  ack->incident_id[0] = '\0';
  ack->retry_after_ms = retry_after_ms;
  snprintf(ack->error, sizeof(ack->error), "%s", why);
}

void intake_core_answer(struct intake_ack *ack, const Linkage__V1__AppendReply *reply,
                        uint32_t retry_after_ms) {
  char msg[INTAKE_ERROR_MAX];
  if (reply == NULL) {
    intake_core_busy(ack, "ledger did not answer", retry_after_ms);
    return;
  }
  const char *err = reply->error && reply->error[0] ? reply->error : "no reason given";
  switch (reply->status) {
  case LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED:
    ack->status = LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED;
    ack->error[0] = '\0';
    return;
  case LINKAGE__V1__APPEND_REPLY__STATUS__DUPLICATE:
    /* The event id is derived from the incident id, so the committed event
     * names the same incident as ours. */
    ack->status = LINKAGE__V1__REPORT_ACK__STATUS__DUPLICATE;
    ack->error[0] = '\0';
    return;
  case LINKAGE__V1__APPEND_REPLY__STATUS__INVALID:
    ack->status = LINKAGE__V1__REPORT_ACK__STATUS__REJECTED;
    ack->incident_id[0] = '\0';
    snprintf(ack->error, sizeof(ack->error), "ledger refused the event: %.400s", err);
    return;
  case LINKAGE__V1__APPEND_REPLY__STATUS__BUSY:
    snprintf(msg, sizeof(msg), "ledger busy: %.400s", err);
    intake_core_busy(ack, msg, retry_after_ms);
    return;
  default:
    /* Retrying is always safe: the ledger drops a repeated event id. */
    snprintf(msg, sizeof(msg), "unexpected ledger reply status %d", (int)reply->status);
    intake_core_busy(ack, msg, retry_after_ms);
    return;
  }
}

size_t intake_core_pack(const struct intake_ack *ack, uint8_t *buf, size_t len) {
  Linkage__V1__ReportAck m;
  linkage__v1__report_ack__init(&m);
  m.status = ack->status;
  m.incident_id = (char *)ack->incident_id;
  m.sequence = ack->sequence;
  m.error = (char *)ack->error;
  m.retry_after_ms = ack->retry_after_ms;
  size_t n = linkage__v1__report_ack__get_packed_size(&m);
  if (n > len) return 0;
  return linkage__v1__report_ack__pack(&m, buf);
}

void intake_core_count(struct intake_stats *st, const struct intake_ack *ack) {
  switch (ack->status) {
  case LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED: st->accepted++; break;
  case LINKAGE__V1__REPORT_ACK__STATUS__DUPLICATE: st->duplicate++; break;
  case LINKAGE__V1__REPORT_ACK__STATUS__REJECTED: st->rejected++; break;
  case LINKAGE__V1__REPORT_ACK__STATUS__BUSY: st->busy++; break;
  default: break;
  }
}
