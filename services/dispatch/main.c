/* linkage-dispatch: coordinated handling of incidents by responder units.
 *
 * The shell: the committed stream in, decisions out to the ledger, one libuv
 * timer over the per-unit acknowledge deadlines and the automatic closes, and
 * the units' ROUTER socket. Every decision is made in dispatch_plan.c.
 *
 * Memory: every incident and assignment ever seen stays in the state (an
 * answer on a closed incident must be refused as closed, not as unknown), a
 * few hundred bytes each; one connection slot per unit of the district; the
 * ledger client's bounded pending table. */
#include <stddef.h>

#include "dispatch_shell.h"
#include "linkage/metrics.h"
#include "linkage/service.h"

static const struct lk_config_entry dispatch_config_table[] = {
    {"ledger_endpoint", LK_CFG_STRING, offsetof(struct dispatch_config, ledger_endpoint), 0, 0,
     "tcp://127.0.0.1:7010", "the ledger's request endpoint"},
    {"ledger_stream", LK_CFG_STRING, offsetof(struct dispatch_config, ledger_stream), 0, 0,
     "tcp://127.0.0.1:7011", "the ledger's committed stream"},
    {"dispatch_endpoint", LK_CFG_STRING, offsetof(struct dispatch_config, dispatch_endpoint), 0, 0,
     "tcp://127.0.0.1:7005", "where responder units connect (ROUTER; unit.proto)"},
    {"district", LK_CFG_STRING, offsetof(struct dispatch_config, district), 0, 0,
     "deploy/district/wenjiang.yaml", "the district data: topology, units, plans and roles"},
    {"time_scale", LK_CFG_DOUBLE, offsetof(struct dispatch_config, time_scale), 0.001, 1e6, "1",
     "how many plan minutes pass in one real minute (60: a deadline minute is a second)"},
    {"unit_heartbeat_ms", LK_CFG_INT, offsetof(struct dispatch_config, heartbeat_ms), 50, 600000,
     "2000", "how often units must send a Heartbeat; silent for three of them is absent"},
    {"verify_window_min", LK_CFG_INT, offsetof(struct dispatch_config, verify_window_min), 1,
     525600, "1440", "plan minutes after `resolved` without a VERIFIED before closing anyway"},
    {"utc_offset_min", LK_CFG_INT, offsetof(struct dispatch_config, utc_offset_min), -1440, 1440,
     "480", "the district's local time for duty hours, minutes east of UTC (480: UTC+8)"},
    {"retry_ms", LK_CFG_INT, offsetof(struct dispatch_config, retry_ms), 10, 60000, "1000",
     "wait before retrying a decision the ledger did not commit"},
    {"pg", LK_CFG_STRING, offsetof(struct dispatch_config, pg), 0, 0, "dbname=linkage",
     "libpq conninfo of the database holding the key registry (table keys)"},
    {"curve", LK_CFG_BOOL, offsetof(struct dispatch_config, curve), 0, 0, "false",
     "CURVE on the unit port: only registered unit keys get in"},
    {"curve_secret_file", LK_CFG_STRING, offsetof(struct dispatch_config, curve_secret_file), 0, 0,
     "", "the server's Z85 secret key (linkagectl keys gen --out FILE)"},
    {"keys_refresh_ms", LK_CFG_INT, offsetof(struct dispatch_config, keys_refresh_ms), 100, 3600000,
     "2000", "re-read the key registry this often (a revoked key is shut out within it)"},
    LK_LINK_CONFIG(struct dispatch_config),
    LK_METRICS_CONFIG(struct dispatch_config, "dispatch", LK_METRICS_PORT_DISPATCH),
};

static const struct lk_service dispatch_service = {
    .name = "dispatch",
    .summary = "call responder units by plan, follow their answers, resolve and close",
    .config = dispatch_config_table,
    .config_len = sizeof dispatch_config_table / sizeof dispatch_config_table[0],
    .config_size = sizeof(struct dispatch_config),
    .state_size = sizeof(struct dispatch),
    .start = dispatch_start,
    .tick = dispatch_tick,
    .tick_ms = 200,
    .status = dispatch_status,
    .metrics = dispatch_metrics,
    .stop = dispatch_stop,
    .help = DISPATCH_HELP,
};

int main(int argc, char **argv) {
  return lk_service_run(&dispatch_service, argc, argv);
}
