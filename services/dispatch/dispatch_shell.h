#ifndef LINKAGE_DISPATCH_SHELL_H
#define LINKAGE_DISPATCH_SHELL_H

#include <stdint.h>
#include <uv.h>

#include "dispatch.h"
#include "linkage/config.h"
#include "linkage/ledger_client.h"
#include "linkage/map.h"
#include "linkage/service.h"
#include "linkage/stream.h"
#include "linkage/zap.h"
#include "linkage/zsock.h"

struct dispatch_config {
  char ledger_endpoint[LK_CONFIG_STR];
  char ledger_stream[LK_CONFIG_STR];
  char dispatch_endpoint[LK_CONFIG_STR];
  char metrics_listen[LK_CONFIG_STR];
  char district[LK_CONFIG_STR];
  double time_scale;
  long heartbeat_ms;
  long verify_window_min;
  long utc_offset_min;
  long retry_ms;
  char pg[LK_CONFIG_STR];
  int curve;
  char curve_secret_file[LK_CONFIG_STR];
  long keys_refresh_ms;
  int link_curve;
  char link_key_file[LK_CONFIG_STR];
};

#define DISPATCH_IDENTITY_MAX 256

/* One responder unit's session, indexed like district->units. A unit is
 * registered by a Hello on one routing identity; a later Hello (a reconnect,
 * a second device) takes the unit over. A one-shot console (UnitMessage.one_shot)
 * is answered on its own connection and never appears here. */
struct dispatch_conn {
  uint8_t identity[DISPATCH_IDENTITY_MAX];
  size_t identity_len;
  int registered;
  int64_t heard_mono_us;    /* the last message of any kind from it */
  char key[LK_KEY_Z85 + 1]; /* CURVE: the key its Hello came with; revoked -> not registered */
};

struct dispatch {
  struct lk_runtime *rt;
  struct lk_district *district;
  struct dispatch_state state;
  struct lk_ledger_client *ledger;
  struct lk_stream *stream;
  struct lk_auth auth; /* CURVE: the ZAP handler and the unit key registry */
  struct lk_link link; /* CURVE on the links to the ledger when on several hosts */
  struct lk_zsock units;
  uv_timer_t timer;
  int timer_open, units_open, state_open;
  int caught_up;      /* 0: replaying the ledger; 2: live (decisions and timers run) */
  int64_t resweep_at; /* mono us; 0: none. Decide on every incident again (after a retry) */
  struct dispatch_conn *conns;         /* district->unit_count */
  struct dispatch_unit_status *status; /* district->unit_count, refreshed before decisions */
  /* Decisions sent to the ledger and not folded yet: event id -> incident slot; and the count
   * per slot, so an incident is not decided on again before its decisions show in the state. */
  struct lk_map inflight;
  uint32_t *inflight_count; /* indexed by slot; inflight_cap entries */
  uint32_t inflight_cap;
  uint64_t dispatched, expired, no_unit, resolved, closed, decisions_retried;
  uint64_t answers_ok, answers_rejected, answers_busy, assignments_sent, bad_messages;
};

int dispatch_start(struct lk_runtime *rt);
void dispatch_tick(struct lk_runtime *rt, int64_t now_us);
void dispatch_status(struct lk_runtime *rt, char *buf, size_t len);
void dispatch_stop(struct lk_runtime *rt);
void dispatch_metrics(struct lk_runtime *rt, struct lk_metrics_writer *w);

#define DISPATCH_HELP                                                                              \
  "linkage-dispatch calls responder units to incidents and follows their answers.\n"               \
  "\n"                                                                                             \
  "It follows the ledger's committed stream from the start, rebuilding every\n"                    \
  "incident, assignment and per-unit deadline, and decides only once it has caught\n"              \
  "up. For each routed or escalated incident it takes the category plan's roles at\n"              \
  "the incident's tier (compound_roster expanded by the compound's governance mode)\n"             \
  "and picks one unit per role: of the role's type, covering the compound, on duty\n"              \
  "(local time, utc_offset_min), not tried before for that role; present units\n"                  \
  "first, then the most specific coverage, the least load, the id. Each call is one\n"             \
  "`dispatched` event with the assignment id <incident>/<role>/<n>.\n"                             \
  "\n"                                                                                             \
  "Responder units connect a DEALER to dispatch_endpoint and speak\n"                              \
  "proto/linkage/v1/unit.proto: Hello, then a Heartbeat at least every unit_heartbeat_ms\n"        \
  "(a unit silent for three heartbeats is absent), Answer and ListAssignments. A\n"                \
  "later Hello from another connection takes the unit's session over; a one-shot\n"                \
  "console (one_shot set: linkagectl unit X ack|list) answers and lists beside it\n"               \
  "without a session and leaves it in place. An\n"                                                 \
  "assignment is sent when its `dispatched` event is committed and again on every\n"               \
  "Hello (units drop repeats by assignment id); an answer is acknowledged once its\n"              \
  "event is committed. An assignment unanswered at its acknowledge deadline is\n"                  \
  "declined by svc:dispatch and the next suitable unit is called; when nobody is\n"                \
  "left, `no_unit_available` makes the router escalate at once. When the lead has\n"               \
  "resolved and every other unit is done the incident is `resolved`; a grid worker's\n"            \
  "VERIFIED closes it, or it closes by itself after verify_window_min.\n"                          \
  "\n"                                                                                             \
  "Plan minutes run time_scale times faster than real ones (tests and demos).\n"                   \
  "\n"                                                                                             \
  "With curve=true units connect with CURVE to the server key of curve_secret_file;\n"             \
  "only keys registered for a unit (linkagectl unit add) and not revoked get in, and\n"            \
  "a Hello whose unit_id is not its key's unit is refused. Without CURVE the unit\n"               \
  "port must be on loopback or ipc."

#endif
