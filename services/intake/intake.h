#ifndef LINKAGE_INTAKE_H
#define LINKAGE_INTAKE_H

/* linkage-intake: devices' Reports in, `reported` events to the ledger,
 * ReportAcks out once the ledger has committed (or refused). */

#include <stdint.h>

#include "intake_core.h"
#include "linkage/config.h"
#include "linkage/ledger_client.h"
#include "linkage/service.h"
#include "linkage/zap.h"
#include "linkage/zsock.h"

struct intake_config {
  char intake_endpoint[LK_CONFIG_STR];
  char ledger_endpoint[LK_CONFIG_STR];
  char district[LK_CONFIG_STR];
  long inflight_max;
  long retry_after_ms;
  long ledger_timeout_ms;
  long ledger_give_up_ms;
  char pg[LK_CONFIG_STR];
  int curve;
  char curve_secret_file[LK_CONFIG_STR];
  long keys_refresh_ms;
  int link_curve;
  char link_key_file[LK_CONFIG_STR];
  char metrics_listen[LK_CONFIG_STR];
};

/* Room for a routing envelope kept while the ledger works: the peer's
 * routing id (at most 255 bytes) and the empty delimiter, with space for a
 * proxy's extra hop. A larger envelope is answered at once (REJECTED). */
#define INTAKE_ENVELOPE_MAX 600

/* One report waiting for the ledger. */
struct intake_pending {
  struct intake_pending *prev, *next;
  struct intake *in;
  char incident_id[LK_ID_MAX];
  uint64_t sequence;
  int env_frames;
  size_t env_len[LK_ZSOCK_MAX_FRAMES];
  uint8_t env[INTAKE_ENVELOPE_MAX];
};

/* Memory bound: at most inflight_max pendings (sizeof(struct intake_pending),
 * under 1 KiB each) plus, in the ledger client, one packed event each (a
 * Report is at most LK_REPORT_FRAME_MAX bytes, the event adds under 300). At
 * the default 20000 that is under 20 MiB of pendings and, with every report
 * at the largest size, under 170 MiB of packed events (typical reports are
 * about 200 bytes: under 25 MiB in all). Incoming frames beyond that wait in
 * libzmq's queues, bounded by the high-water marks, or are answered BUSY. */
struct intake {
  struct lk_runtime *rt;
  const struct intake_config *cfg;
  struct intake_limits limits;
  struct lk_district *district;
  struct lk_auth auth; /* CURVE: the ZAP handler and the device key registry */
  struct lk_link link; /* CURVE on the link to the ledger; its key relays others' reports */
  struct lk_zsock router;
  int router_open;
  struct lk_ledger_client *ledger;
  struct intake_pending pending; /* list head; pending.next is the oldest */
  unsigned inflight;
  struct intake_stats stats;
};

int intake_start(struct lk_runtime *rt);
void intake_tick(struct lk_runtime *rt, int64_t now_us);
void intake_status(struct lk_runtime *rt, char *buf, size_t len);
void intake_metrics(struct lk_runtime *rt, struct lk_metrics_writer *w);
void intake_stop(struct lk_runtime *rt);

#endif
