/* linkage-ledger: the only writer to PostgreSQL. Takes events over ZeroMQ,
 * commits them in batches to the append-only, hash-chained table `ledger`,
 * acknowledges after commit, publishes the committed stream and serves
 * replays.
 *
 * Memory is bounded by: the append queue (queue_max events and 256 MiB of
 * event bytes), one batch in flight (batch_max events, taken from the queue),
 * the replay ring (8192 events of at most 256 KiB, in practice ~1 KiB each),
 * one PostgreSQL replay of at most 1 MiB of events with 64 replays waiting,
 * and the PUB high-water mark (100000 messages per subscriber). */
#include <stddef.h>

#include "ledger.h"
#include "linkage/metrics.h"

#define CFG(field) offsetof(struct ledger_config, field)

static const struct lk_config_entry ledger_config_table[] = {
    {"pg", LK_CFG_STRING, CFG(pg), 0, 0, "dbname=linkage", "libpq connection string"},
    {"ledger_endpoint", LK_CFG_STRING, CFG(ledger_endpoint), 0, 0, "tcp://127.0.0.1:7010",
     "ROUTER bound for LedgerRequests"},
    {"ledger_stream", LK_CFG_STRING, CFG(ledger_stream), 0, 0, "tcp://127.0.0.1:7011",
     "PUB bound for the committed stream"},
    {"batch_max", LK_CFG_INT, CFG(batch_max), 1, 65536, "4096", "events per commit at most"},
    {"queue_max", LK_CFG_INT, CFG(queue_max), 1, 4194304, "65536",
     "appends waiting for a commit at most; beyond, BUSY"},
    {"heartbeat_ms", LK_CFG_INT, CFG(heartbeat_ms), 10, 60000, "500",
     "period of the stream heartbeat announcing the head"},
    LK_LINK_CONFIG(struct ledger_config),
    LK_METRICS_CONFIG(struct ledger_config, "ledger", LK_METRICS_PORT_LEDGER),
};

static const struct lk_service ledger_service = {
    .name = "ledger",
    .summary = "append-only, hash-chained event ledger on PostgreSQL",
    .config = ledger_config_table,
    .config_len = sizeof ledger_config_table / sizeof ledger_config_table[0],
    .config_size = sizeof(struct ledger_config),
    .state_size = sizeof(struct ledger),
    .start = ledger_server_start,
    .status = ledger_server_status,
    .metrics = ledger_metrics,
    .stop = ledger_server_stop,
    .help = "Appends arrive on ledger_endpoint as LedgerRequest; each is answered after commit\n"
            "with COMMITTED, DUPLICATE, INVALID or BUSY. Committed events are published on\n"
            "ledger_stream in position order, with a heartbeat carrying the head every\n"
            "heartbeat_ms. ReplayRequest serves any range of committed positions.\n",
};

int main(int argc, char **argv) {
  return lk_service_run(&ledger_service, argc, argv);
}
