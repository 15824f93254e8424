/* linkage-router: tiered response and escalation on missed deadlines.
 *
 * The shell: the committed stream in, decisions out to the ledger, one libuv
 * timer over the deadline heap, and the coordinators' command socket. Every
 * decision is made in router_policy.c / router_command.c.
 *
 * Memory: about 500 bytes per incident ever seen (make bench measures it: the
 * struct, its id, kind and building strings, its reporters, its map entry and
 * two heap entries), the ledger client's bounded pending table and the
 * bounded list of recent command ids. Closed incidents stay (a command on
 * them must answer "closed", not "unknown"). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "linkage/clock.h"
#include "linkage/error.h"
#include "linkage/ledger_client.h"
#include "linkage/log.h"
#include "linkage/metrics.h"
#include "linkage/service.h"
#include "linkage/stream.h"
#include "router.h"
#include "router_shell.h"

static const struct lk_config_entry router_config_table[] = {
    {"ledger_endpoint", LK_CFG_STRING, offsetof(struct router_config, ledger_endpoint), 0, 0,
     "tcp://127.0.0.1:7010", "the ledger's request endpoint"},
    {"ledger_stream", LK_CFG_STRING, offsetof(struct router_config, ledger_stream), 0, 0,
     "tcp://127.0.0.1:7011", "the ledger's committed stream"},
    {"router_endpoint", LK_CFG_STRING, offsetof(struct router_config, router_endpoint), 0, 0,
     "tcp://127.0.0.1:7003", "where coordinators send commands (ROUTER)"},
    {"district", LK_CFG_STRING, offsetof(struct router_config, district), 0, 0,
     "deploy/district/wenjiang.yaml", "the district data: topology, units, plans"},
    {"time_scale", LK_CFG_DOUBLE, offsetof(struct router_config, time_scale), 0.001, 1e6, "1",
     "how many plan minutes pass in one real minute (60: a deadline minute is a second)"},
    {"merge_window_min", LK_CFG_INT, offsetof(struct router_config, merge_window_min), 0, 10080,
     "30", "reports of the same kind close by within this many minutes join one incident"},
    {"merge_distance_m", LK_CFG_DOUBLE, offsetof(struct router_config, merge_distance_m), 0, 5000,
     "50", "how close counts as close by, besides the same building (0: same building only)"},
    {"reporter_threshold", LK_CFG_INT, offsetof(struct router_config, reporter_threshold), 0, 1000,
     "5", "distinct reporters within reporter_window_min that raise severity a level (0: never)"},
    {"reporter_window_min", LK_CFG_INT, offsetof(struct router_config, reporter_window_min), 1,
     10080, "10", "the window for reporter_threshold"},
    {"retry_ms", LK_CFG_INT, offsetof(struct router_config, retry_ms), 10, 60000, "1000",
     "wait before retrying a decision the ledger did not commit"},
    LK_LINK_CONFIG(struct router_config),
    LK_METRICS_CONFIG(struct router_config, "router", LK_METRICS_PORT_ROUTER),
};

static const struct lk_service router_service = {
    .name = "router",
    .summary = "route incidents to a tier by severity and plan; escalate on missed deadlines",
    .config = router_config_table,
    .config_len = sizeof router_config_table / sizeof router_config_table[0],
    .config_size = sizeof(struct router_config),
    .state_size = sizeof(struct router),
    .start = router_start,
    .tick = router_tick,
    .tick_ms = 200,
    .status = router_status,
    .metrics = router_metrics,
    .stop = router_stop,
    .help = ROUTER_HELP,
};

int main(int argc, char **argv) {
  return lk_service_run(&router_service, argc, argv);
}
