#ifndef LINKAGE_GATEWAY_SHELL_H
#define LINKAGE_GATEWAY_SHELL_H

/* The gateway's imperative shell: the committed stream folded into the view, the links to the
 * router (coordinator commands) and to intake (Open311 reports), the public feed, the token
 * registry and the HTTP server (gateway_http.c). */

#include <stdint.h>
#include <uv.h>

#include "gateway.h"
#include "gateway_feed.h"
#include "gw_auth.h"
#include "linkage/config.h"
#include "linkage/ledger_client.h"
#include "linkage/service.h"
#include "linkage/stream.h"
#include "linkage/zap.h"
#include "linkage/zsock.h"

struct gateway_config {
  char pg[LK_CONFIG_STR];
  char ledger_endpoint[LK_CONFIG_STR];
  char ledger_stream[LK_CONFIG_STR];
  char router_endpoint[LK_CONFIG_STR];
  char intake_endpoint[LK_CONFIG_STR];
  char feed_endpoint[LK_CONFIG_STR];
  char feed_replay_endpoint[LK_CONFIG_STR];
  char metrics_listen[LK_CONFIG_STR];
  char district[LK_CONFIG_STR];
  char www_dir[LK_CONFIG_STR];
  char http_address[LK_CONFIG_STR];
  long http_port;
  char public_url[LK_CONFIG_STR];
  char cap_sender[LK_CONFIG_STR];
  long upstream_timeout_ms;
  long sse_max_clients;
  long sse_max_per_token;
  long sse_max_per_address;
  long sse_client_buffer_bytes;
  long tokens_refresh_ms;
  int link_curve;
  char link_key_file[LK_CONFIG_STR];
  char curve_server_key_file[LK_CONFIG_STR];
  int curve;
  char curve_secret_file[LK_CONFIG_STR];
  long keys_refresh_ms;
};

/* An HTTP request waiting for the router's or intake's answer. Owned by the HTTP side; the
 * shell only links it into its waiting list and calls back exactly once: with the answer, or
 * with NULL when none came in time (or the gateway stops). */
struct gw_waiter {
  void (*on_command)(struct gw_waiter *w, const Linkage__V1__CommandReply *reply);
  void (*on_ack)(struct gw_waiter *w, const Linkage__V1__ReportAck *ack);
  char key[LK_ID_MAX]; /* command id, or the incident id a report opens */
  uint64_t sequence;   /* a report's sequence */
  int64_t deadline_mono_us;
  struct gw_waiter *prev, *next;
};

struct gw_http;

struct gateway {
  struct lk_runtime *rt;
  struct gateway_config *cfg; /* borrowed from rt */
  struct lk_district *district;
  struct lk_link link; /* CURVE on the links (ledger, router, intake) when on several hosts */
  char intake_key[LK_KEY_Z85 + 1]; /* intake's device-port server key, when it speaks CURVE */
  struct gw_view view;
  int view_open;
  struct lk_ledger_client *ledger;
  struct lk_stream *stream;
  struct lk_zsock router, intake;
  int router_open, intake_open;
  struct gw_auth auth;
  int auth_open;
  struct lk_auth feed_auth; /* CURVE for the feed's subscribers: ZAP and the subscriber keys */
  int feed_auth_open;
  struct gw_feed feed;
  int feed_open;
  struct lk_zsock feed_monitor; /* the feed PUB's connection events (gateway_metrics.c) */
  int feed_monitor_open;
  uint64_t feed_accepted, feed_disconnected;
  struct gw_http *http;
  int caught_up;
  int64_t last_heartbeat_us;
  struct gw_waiter waiting; /* list head (a sentinel) */
  unsigned waiting_count;
  uint64_t commands_sent, commands_answered, reports_sent, reports_answered, upstream_timeouts;
};

int gateway_start(struct lk_runtime *rt);
void gateway_tick(struct lk_runtime *rt, int64_t now_us);
void gateway_status(struct lk_runtime *rt, char *buf, size_t len);
void gateway_metrics(struct lk_runtime *rt, struct lk_metrics_writer *w);
/* Counts the feed's subscribers from libzmq's socket monitor; without it (LK_EIO, logged) the
 * gateway runs on and the count is left out. Stop it before the feed. */
int gateway_feed_watch_start(struct gateway *g);
void gateway_feed_watch_stop(struct gateway *g);
void gateway_stop(struct lk_runtime *rt);

/* Sends a command to the router / a report to intake; w->on_command / w->on_ack runs later.
 * Returns LK_OK, LK_EFULL (too many waiting) or LK_EIO; on error nothing is called back. */
int gateway_send_command(struct gateway *g, const Linkage__V1__Command *cmd, struct gw_waiter *w);
int gateway_send_report(struct gateway *g, const Linkage__V1__Report *r, struct gw_waiter *w);

/* ---- the HTTP side (gateway_http.c) ---- */

int gw_http_start(struct gateway *g, struct gw_http **out);
/* A change of the incident in `slot` (or of a planned-work window, slot 0) at `position`: pushed
 * to every Server-Sent Events client. */
void gw_http_publish(struct gw_http *h, uint32_t slot, uint64_t position);
void gw_http_tick(struct gw_http *h, int64_t now_us);
void gw_http_status(const struct gw_http *h, char *buf, size_t len);
/* Live (Server-Sent Events) streams open now, cut-off ones until MHD has closed them; 0 for
 * NULL. */
unsigned gw_http_sse_clients(const struct gw_http *h);
void gw_http_stop(struct gw_http **h);

#define GATEWAY_HELP                                                                               \
  "linkage-gateway follows the ledger's committed stream from the start into a live\n"             \
  "projection of every incident (state, tier, deadlines, timeline) and serves it:\n"               \
  "  - HTTP on http_address:http_port: the coordinators' dashboard (/), its JSON API\n"            \
  "    (/api/...), live updates as Server-Sent Events (/api/stream, resumable by ledger\n"         \
  "    position), coordinator actions sent to the router as Commands, CAP 1.2 alerts\n"            \
  "    (/cap/<id>.xml, /cap/index.atom) and Open311 GeoReport v2 (/open311/v2/), whose\n"          \
  "    POST requests.json is a second way in for reports, through intake;\n"                       \
  "  - the public feed: ZeroMQ PUB on feed_endpoint, topics by street, community,\n"               \
  "    category and severity, each message carrying its ledger position, and a replay\n"           \
  "    endpoint (feed_replay_endpoint) to catch up from a position without a gap.\n"               \
  "Every API call needs a token (linkagectl token add NAME --role reader|reporter|\n"              \
  "coordinator): reading needs reader, Open311 POST reporter, actions coordinator."

#endif
