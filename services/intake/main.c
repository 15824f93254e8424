/* linkage-intake: the devices' door. See intake.h. */

#include <stddef.h>

#include "intake.h"
#include "linkage/metrics.h"

#define CFG(key, type, field, min, max, def, help)                                                 \
  { key, type, offsetof(struct intake_config, field), min, max, def, help }

static const struct lk_config_entry intake_config_table[] = {
    CFG("intake_endpoint", LK_CFG_STRING, intake_endpoint, 0, 0, "tcp://127.0.0.1:7001",
        "where devices connect (ROUTER, bound)"),
    CFG("ledger_endpoint", LK_CFG_STRING, ledger_endpoint, 0, 0, "tcp://127.0.0.1:7010",
        "the ledger's request endpoint (connected)"),
    CFG("district", LK_CFG_STRING, district, 0, 0, "deploy/district/wenjiang.yaml",
        "the district file; compounds of reports must be in it"),
    CFG("inflight_max", LK_CFG_INT, inflight_max, 1, 1000000, "20000",
        "reports waiting for the ledger before new ones are answered BUSY"),
    CFG("retry_after_ms", LK_CFG_INT, retry_after_ms, 1, 60000, "200",
        "what BUSY answers tell devices to wait"),
    CFG("ledger_timeout_ms", LK_CFG_INT, ledger_timeout_ms, 10, 600000, "1000",
        "resend an append the ledger has not answered after this long"),
    CFG("ledger_give_up_ms", LK_CFG_INT, ledger_give_up_ms, 10, 3600000, "10000",
        "answer BUSY for a report the ledger has not answered after this long"),
    CFG("pg", LK_CFG_STRING, pg, 0, 0, "dbname=linkage",
        "libpq conninfo of the database holding the key registry (table keys)"),
    CFG("curve", LK_CFG_BOOL, curve, 0, 0, "false",
        "CURVE on the device port: only registered device keys get in"),
    CFG("curve_secret_file", LK_CFG_STRING, curve_secret_file, 0, 0, "",
        "the server's Z85 secret key (linkagectl keys gen --out FILE)"),
    CFG("keys_refresh_ms", LK_CFG_INT, keys_refresh_ms, 100, 3600000, "2000",
        "re-read the key registry this often (a revoked key is shut out within it)"),
    LK_LINK_CONFIG(struct intake_config),
    LK_METRICS_CONFIG(struct intake_config, "intake", LK_METRICS_PORT_INTAKE),
};

static const struct lk_service intake_service = {
    .name = "intake",
    .summary = "devices' Reports in, reported events to the ledger, ReportAcks out",
    .config = intake_config_table,
    .config_len = sizeof(intake_config_table) / sizeof(intake_config_table[0]),
    .config_size = sizeof(struct intake_config),
    .state_size = sizeof(struct intake),
    .start = intake_start,
    .tick = intake_tick,
    .tick_ms = 100,
    .status = intake_status,
    .metrics = intake_metrics,
    .stop = intake_stop,
    .help = "Listens for Reports (CONTRACT.md) on a ROUTER socket; devices connect REQ, or\n"
            "DEALER sending an empty delimiter frame first. Every message gets one ReportAck:\n"
            "REJECTED with the rule broken, BUSY with retry_after_ms when inflight_max\n"
            "reports wait for the ledger, or, once the ledger has committed the report's\n"
            "`reported` event, ACCEPTED (or DUPLICATE for a (device_id, sequence) seen\n"
            "before) with the incident id. Frames above 4 MiB are dropped by libzmq, which\n"
            "closes the device's connection; anything smaller is answered.\n"
            "\n"
            "With curve=true devices connect with CURVE to the server key of\n"
            "curve_secret_file; only public keys registered for a device (linkagectl\n"
            "device add) and not revoked get a connection, and a report whose device_id\n"
            "is not its key's device is REJECTED. Without CURVE the device port must be\n"
            "on loopback or ipc.\n",
};

int main(int argc, char **argv) {
  return lk_service_run(&intake_service, argc, argv);
}
