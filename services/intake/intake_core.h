#ifndef LINKAGE_INTAKE_CORE_H
#define LINKAGE_INTAKE_CORE_H

/* linkage-intake's decisions, as plain functions over plain structs: what a
 * device's message deserves, the event a valid report becomes, and the answer
 * a ledger reply turns into. No sockets, no clocks (time is passed in). */

#include <stddef.h>
#include <stdint.h>

#include "linkage/district.h"
#include "linkage/event.h"
#include "linkage/report.h"

#define INTAKE_ERROR_MAX 512

/* The answer to a device, before packing into a ReportAck. */
struct intake_ack {
  Linkage__V1__ReportAck__Status status;
  char incident_id[LK_ID_MAX]; /* empty unless ACCEPTED or DUPLICATE (or on the way there) */
  uint64_t sequence;           /* 0 when the report could not be read */
  char error[INTAKE_ERROR_MAX];
  uint32_t retry_after_ms;
};

struct intake_limits {
  unsigned inflight_max;   /* reports waiting for the ledger before we answer BUSY */
  uint32_t retry_after_ms; /* what BUSY tells the device */
};

struct intake_stats {
  uint64_t accepted, duplicate, rejected, busy;
};

enum intake_verdict {
  INTAKE_ANSWER, /* answer `ack` now */
  INTAKE_APPEND, /* append the report's event to the ledger, answer when it replies */
};

/* Decides what one device message gets. body_frames is how many frames follow
 * the routing envelope (more than LK_ZSOCK_MAX_FRAMES count as "several");
 * body/len is the first of them. On INTAKE_APPEND, *report holds the decoded
 * report (free it with linkage__v1__report__free_unpacked) and ack holds its
 * incident id and sequence; otherwise *report is NULL and ack is complete. */
enum intake_verdict intake_core_admit(const struct intake_limits *lim, const struct lk_district *d,
                                      int body_frames, const uint8_t *body, size_t len,
                                      unsigned inflight, Linkage__V1__Report **report,
                                      struct intake_ack *ack);

/* With CURVE on: a report names the device its key is tied to (key_device,
 * the connection's ZAP User-Id), or it is REJECTED. Returns 1 when it does;
 * otherwise fills ack (keeping its sequence) and returns 0. */
int intake_core_key_matches(const char *key_device, const Linkage__V1__Report *r,
                            struct intake_ack *ack);

/* The `reported` event of a report, in caller-owned storage. Borrows r, which
 * must outlive any use of out->ev. */
struct intake_event {
  Linkage__V1__Event ev;
  Linkage__V1__Reported reported;
  char event_id[LK_ID_MAX + 16];
  char actor[sizeof("device:") + LK_DEVICE_ID_MAX];
};
int intake_core_event(struct intake_event *out, const Linkage__V1__Report *r,
                      const char *incident_id, int64_t now_us);

/* Turns the ledger's reply to our append into the device's answer. ack
 * already holds the incident id and sequence. reply NULL means "no reply". */
void intake_core_answer(struct intake_ack *ack, const Linkage__V1__AppendReply *reply,
                        uint32_t retry_after_ms);

/* BUSY with a reason (the ledger client is full or failing). */
void intake_core_busy(struct intake_ack *ack, const char *why, uint32_t retry_after_ms);

/* Packs ack into buf; returns the size, or 0 if buf is too small.
 * INTAKE_ACK_MAX always suffices. */
#define INTAKE_ACK_MAX (LK_ID_MAX + INTAKE_ERROR_MAX + 64)
size_t intake_core_pack(const struct intake_ack *ack, uint8_t *buf, size_t len);

/* Counts an answer given to a device. */
void intake_core_count(struct intake_stats *st, const struct intake_ack *ack);

#endif
