#ifndef LINKAGE_ROUTER_SHELL_H
#define LINKAGE_ROUTER_SHELL_H

#include <stdint.h>
#include <uv.h>

#include "linkage/config.h"
#include "linkage/ledger_client.h"
#include "linkage/map.h"
#include "linkage/service.h"
#include "linkage/stream.h"
#include "linkage/zap.h"
#include "linkage/zsock.h"
#include "router.h"

struct router_config {
  char ledger_endpoint[LK_CONFIG_STR];
  char ledger_stream[LK_CONFIG_STR];
  char router_endpoint[LK_CONFIG_STR];
  char district[LK_CONFIG_STR];
  double time_scale;
  long merge_window_min;
  double merge_distance_m;
  long reporter_threshold;
  long reporter_window_min;
  long retry_ms;
  int link_curve;
  char link_key_file[LK_CONFIG_STR];
  char metrics_listen[LK_CONFIG_STR];
};

/* Why an escalation was decided (for /metrics): a deadline missed, dispatch finding nobody, a
 * raised severity that starts higher, or a coordinator's command. */
enum router_escalation_cause {
  ROUTER_ESCALATION_ACKNOWLEDGE,
  ROUTER_ESCALATION_RESOLVE,
  ROUTER_ESCALATION_NO_UNIT,
  ROUTER_ESCALATION_SEVERITY,
  ROUTER_ESCALATION_COMMAND,
  ROUTER_ESCALATION_CAUSES,
};

#define ROUTER_RECENT_COMMANDS 65536

struct router_recent_command {
  char *command_id; /* owned; NULL when the entry is free */
  char *event_id;   /* owned */
  uint64_t position;
};

struct router {
  struct lk_runtime *rt;
  struct lk_link link; /* CURVE on the links (ledger, commands) when on several hosts */
  struct lk_auth auth; /* the ZAP handler admitting the link key on the command socket */
  int auth_started;
  struct lk_district *district;
  struct router_state state;
  struct lk_ledger_client *ledger;
  struct lk_stream *stream;
  struct lk_zsock commands;
  uv_timer_t timer;
  int timer_open, commands_open, state_open;
  int caught_up; /* 0: replaying the ledger; 2: live (decisions and timers run) */
  int resweep;   /* look for incidents that still need a routing or merge decision */
  /* Command ids already committed (from event ids ".../cmd-<id>"), so a retried command that
   * the state would now refuse (closing a closed incident) still answers OK. Bounded FIFO. */
  struct lk_map recent_commands; /* command id -> index in recent_ring */
  /* Incidents a coordinator's command is changing: incident id -> the position of its event
   * (UINT64_MAX until committed). The next command on the incident waits (BUSY) until the
   * event is folded, so it is judged on the state that shows it. */
  struct lk_map command_wait;
  int command_wait_open;
  struct router_recent_command *recent_ring; /* ROUTER_RECENT_COMMANDS entries, FIFO */
  uint32_t recent_next;
  uint64_t routed, merged, escalated, overdue, suppressed, commands_ok, commands_rejected;
  uint64_t decisions_retried;
  uint64_t escalations[ROUTER_ESCALATION_CAUSES]; /* sent to the ledger, by cause */
};

int router_start(struct lk_runtime *rt);
void router_tick(struct lk_runtime *rt, int64_t now_us);
void router_status(struct lk_runtime *rt, char *buf, size_t len);
void router_metrics(struct lk_runtime *rt, struct lk_metrics_writer *w);
void router_stop(struct lk_runtime *rt);

#define ROUTER_HELP                                                                                \
  "linkage-router follows the ledger's committed stream from the start, rebuilding\n"              \
  "every open incident and its deadlines, then routes each new incident to its tier\n"             \
  "(severity I district, II street, III community, IV compound, raised to the\n"                   \
  "category plan's floor), merges repeated reports, raises severity when enough\n"                 \
  "distinct devices report, and escalates one tier when an acknowledge or resolve\n"               \
  "deadline passes (an overdue alarm at district tier). Planned-work windows and\n"                \
  "open higher-tier incidents of the same kind hold escalation back.\n"                            \
  "Coordinators send Command messages (proto/linkage/v1/command.proto) to\n"                       \
  "router_endpoint; each is answered once its event is committed."

#endif
