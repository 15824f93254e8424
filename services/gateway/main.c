/* linkage-gateway: live queues for coordinators, incident feeds for city systems.
 *
 * The shell (gateway_shell.c, gateway_http.c, gateway_feed.c) folds the committed stream into
 * the view and serves it; every document is written by the core (gw_*.c).
 *
 * Memory: the view keeps every incident ever seen with its timeline (at most GW_MAX_STEPS steps
 * of ~250 bytes each); live clients have bounded buffers (sse_client_buffer_bytes each, at most
 * sse_max_clients of them), waiting requests are bounded (1024), the feed's PUB queue is bounded
 * by its high-water mark. */
#include <stddef.h>

#include "gateway_shell.h"
#include "linkage/metrics.h"

#define CFG(f) offsetof(struct gateway_config, f)

static const struct lk_config_entry gateway_config_table[] = {
    {"pg", LK_CFG_STRING, CFG(pg), 0, 0, "dbname=linkage",
     "libpq connection string (the token registry)"},
    {"ledger_endpoint", LK_CFG_STRING, CFG(ledger_endpoint), 0, 0, "tcp://127.0.0.1:7010",
     "the ledger's request endpoint (replays)"},
    {"ledger_stream", LK_CFG_STRING, CFG(ledger_stream), 0, 0, "tcp://127.0.0.1:7011",
     "the ledger's committed stream"},
    {"router_endpoint", LK_CFG_STRING, CFG(router_endpoint), 0, 0, "tcp://127.0.0.1:7003",
     "the router's command endpoint (coordinator actions)"},
    {"intake_endpoint", LK_CFG_STRING, CFG(intake_endpoint), 0, 0, "tcp://127.0.0.1:7001",
     "intake (Open311 POST requests become Reports)"},
    {"feed_endpoint", LK_CFG_STRING, CFG(feed_endpoint), 0, 0, "tcp://127.0.0.1:7006",
     "the public feed (PUB); not loopback needs CURVE"},
    {"feed_replay_endpoint", LK_CFG_STRING, CFG(feed_replay_endpoint), 0, 0, "tcp://127.0.0.1:7007",
     "the feed's replay endpoint (ROUTER)"},
    LK_METRICS_CONFIG(struct gateway_config, "gateway", LK_METRICS_PORT_GATEWAY),
    {"district", LK_CFG_STRING, CFG(district), 0, 0, "deploy/district/wenjiang.yaml",
     "the district data: topology, names"},
    {"www_dir", LK_CFG_STRING, CFG(www_dir), 0, 0, "services/gateway/www",
     "the dashboard's files (index.html, app.js, style.css)"},
    {"http_address", LK_CFG_STRING, CFG(http_address), 0, 0, "127.0.0.1",
     "the IPv4 address HTTP listens on"},
    {"http_port", LK_CFG_INT, CFG(http_port), 1, 65535, "8080", "the HTTP port"},
    {"public_url", LK_CFG_STRING, CFG(public_url), 0, 0, "",
     "the gateway's URL as others reach it, for CAP and Atom links (default: from Host)"},
    {"cap_sender", LK_CFG_STRING, CFG(cap_sender), 0, 0, "linkage@wenjiang.example",
     "the CAP <sender> of every alert"},
    {"upstream_timeout_ms", LK_CFG_INT, CFG(upstream_timeout_ms), 100, 600000, "10000",
     "how long an HTTP request waits for the router or intake before 503"},
    {"sse_max_clients", LK_CFG_INT, CFG(sse_max_clients), 1, 100000, "256",
     "live dashboard connections at most"},
    /* A control room's video wall and desks often share one token; 32 screens fit, and one
     * leaked or looping token still holds only an eighth of the default slots. */
    {"sse_max_per_token", LK_CFG_INT, CFG(sse_max_per_token), 1, 100000, "32",
     "live streams one token may hold open (429 beyond)"},
    /* A control room behind one NAT address with a few tokens; behind a reverse proxy every
     * client has the proxy's address: set it to sse_max_clients there. */
    {"sse_max_per_address", LK_CFG_INT, CFG(sse_max_per_address), 1, 100000, "64",
     "live streams one client address may hold open (429 beyond)"},
    {"sse_client_buffer_bytes", LK_CFG_INT, CFG(sse_client_buffer_bytes), 16384, 16777216, "262144",
     "bytes waiting for one live client at most; a client that falls further behind "
     "is cut off and resumes when it reconnects"},
    {"tokens_refresh_ms", LK_CFG_INT, CFG(tokens_refresh_ms), 100, 3600000, "2000",
     "re-read the token registry this often (a revoked token stops working within it)"},
    LK_LINK_CONFIG(struct gateway_config),
    {"curve", LK_CFG_BOOL, CFG(curve), 0, 0, "false",
     "CURVE on the feed (7006, 7007): only registered subscriber keys get in"},
    {"curve_secret_file", LK_CFG_STRING, CFG(curve_secret_file), 0, 0, "",
     "the feed's Z85 secret key (linkagectl keys gen --out FILE)"},
    {"keys_refresh_ms", LK_CFG_INT, CFG(keys_refresh_ms), 100, 3600000, "2000",
     "re-read the subscriber keys this often (a revoked key is dropped within it)"},
    {"curve_server_key_file", LK_CFG_STRING, CFG(curve_server_key_file), 0, 0, "",
     "intake's device-port key file (its public line), when devices speak CURVE: the gateway "
     "then relays Open311 reports with the link key"},
};

static const struct lk_service gateway_service = {
    .name = "gateway",
    .summary = "live queues, actions, CAP, Open311 and the public feed over the ledger",
    .config = gateway_config_table,
    .config_len = sizeof gateway_config_table / sizeof gateway_config_table[0],
    .config_size = sizeof(struct gateway_config),
    .state_size = sizeof(struct gateway),
    .start = gateway_start,
    .tick = gateway_tick,
    .tick_ms = 200,
    .status = gateway_status,
    .metrics = gateway_metrics,
    .stop = gateway_stop,
    .help = GATEWAY_HELP,
};

int main(int argc, char **argv) {
  return lk_service_run(&gateway_service, argc, argv);
}
