/* The gateway's /metrics, and the watch on the public feed's connections that it needs.
 *
 * A ZeroMQ PUB socket does not tell who is subscribed; libzmq's socket monitor does tell each
 * connection accepted and each one ended, so the feed's subscribers are counted from those
 * events (an inproc PAIR on the loop, like every other socket). The HTTP server's figures are
 * read from its status line (gw_http_status), the one thing gateway_http.c exposes, so the
 * server needs no change for them; responses by status class appear once that line carries
 * http_1xx= .. http_5xx=. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_shell.h"
#include "linkage/error.h"
#include "linkage/log.h"
#include "linkage/metrics.h"

/* ---- the feed's connections ---- */

/* A monitor event: [event (uint16) | value (uint32)] in host order, then the endpoint. */
static void on_feed_monitor(struct lk_zsock *s, struct lk_frames *m, void *data) {
  struct gateway *g = data;
  uint16_t event;
  (void)s;
  if (m->count < 1 || zmq_msg_size(&m->frame[0]) != 6) return;
  memcpy(&event, zmq_msg_data(&m->frame[0]), sizeof event);
  if (event == ZMQ_EVENT_ACCEPTED) g->feed_accepted++;
  if (event == ZMQ_EVENT_DISCONNECTED) g->feed_disconnected++;
}

int gateway_feed_watch_start(struct gateway *g) {
  char ep[128];
  struct lk_zsock_opts o = {.linger_ms = 0, .maxmsg = 4096};
  snprintf(ep, sizeof ep, "inproc://gateway-feed-monitor-%p", (void *)g);
  if (!g->feed_open ||
      zmq_socket_monitor(g->feed.pub.zs, ep, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0) {
    lk_warn("cannot watch the feed's connections; its subscribers go uncounted", "err=\"%s\"",
            zmq_strerror(zmq_errno()));
    return LK_EIO;
  }
  snprintf(ep, sizeof ep, ">inproc://gateway-feed-monitor-%p", (void *)g);
  if (lk_zsock_open(&g->feed_monitor, g->rt->loop, g->rt->zctx, ZMQ_PAIR, ep, &o, on_feed_monitor,
                    g, "feed_monitor") != LK_OK) {
    zmq_socket_monitor(g->feed.pub.zs, NULL, 0);
    return LK_EIO;
  }
  g->feed_monitor_open = 1;
  return LK_OK;
}

/* Before the feed's sockets close. */
void gateway_feed_watch_stop(struct gateway *g) {
  if (!g->feed_monitor_open) return;
  if (g->feed_open && g->feed.pub_open) zmq_socket_monitor(g->feed.pub.zs, NULL, 0);
  lk_zsock_close(&g->feed_monitor);
  g->feed_monitor_open = 0;
}

/* ---- the scrape ---- */

/* The value of " key=" in a status line; -1 when the line has no such key (a later version of
 * the server may say less, and a missing family beats a wrong one). */
static double status_value(const char *line, const char *key) {
  size_t n = strlen(key);
  for (const char *p = line; (p = strstr(p, key)) != NULL; p += n) {
    if ((p == line || p[-1] == ' ') && p[n] == '=') return strtod(p + n + 1, NULL);
  }
  return -1;
}

static void write_http(struct lk_metrics_writer *w, const struct gateway *g) {
  char line[512] = "";
  if (!g->http) return;
  gw_http_status(g->http, line, sizeof line);
  double requests = status_value(line, "http_requests");
  double refused = status_value(line, "http_refused_auth");
  double clients = status_value(line, "sse_clients");
  double dropped = status_value(line, "sse_dropped");
  if (requests >= 0)
    lk_metrics_single(w, "linkage_gateway_http_requests_total", LK_METRIC_COUNTER,
                      "HTTP requests received (dashboard, API, CAP, Open311)", requests);
  if (refused >= 0)
    lk_metrics_single(w, "linkage_gateway_http_refused_auth_total", LK_METRIC_COUNTER,
                      "HTTP requests refused for their token: missing, unknown, revoked, a role "
                      "too weak, or too many failures from the address",
                      refused);
  /* Responses by class, once the server's status line carries them (http_2xx=N ...). */
  static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  double by_class[5];
  int any = 0;
  for (int i = 0; i < 5; i++) {
    char key[16];
    snprintf(key, sizeof key, "http_%s", classes[i]);
    by_class[i] = status_value(line, key);
    any |= by_class[i] >= 0;
  }
  if (any) {
    lk_metrics_family(w, "linkage_gateway_http_responses_total", LK_METRIC_COUNTER,
                      "HTTP responses sent, by status class");
    for (int i = 0; i < 5; i++)
      lk_metrics_sample(w, by_class[i] >= 0 ? by_class[i] : 0, "code", classes[i]);
  }
  if (clients >= 0)
    lk_metrics_single(w, "linkage_gateway_sse_clients", LK_METRIC_GAUGE,
                      "live dashboard streams open (Server-Sent Events, /api/stream)", clients);
  if (dropped >= 0)
    lk_metrics_single(w, "linkage_gateway_sse_dropped_total", LK_METRIC_COUNTER,
                      "live streams cut off for falling behind (the browser resumes)", dropped);
  double by_token = status_value(line, "sse_refused_token");
  double by_address = status_value(line, "sse_refused_address");
  double full = status_value(line, "sse_refused_full");
  if (by_token >= 0 && by_address >= 0 && full >= 0) {
    lk_metrics_family(w, "linkage_gateway_sse_refused_total", LK_METRIC_COUNTER,
                      "live streams refused, by the limit reached: per token (429), per address "
                      "(429), every slot taken (503)");
    lk_metrics_sample(w, by_token, "limit", "token");
    lk_metrics_sample(w, by_address, "limit", "address");
    lk_metrics_sample(w, full, "limit", "full");
  }
  double pending = status_value(line, "sse_pending");
  if (pending >= 0)
    lk_metrics_single(w, "linkage_gateway_sse_pending_bytes", LK_METRIC_GAUGE,
                      "bytes waiting in live streams' buffers", pending);
}

static void write_feed(struct lk_metrics_writer *w, const struct gateway *g) {
  const struct gw_feed_stats *f = &g->feed.stats;
  if (g->feed_monitor_open)
    lk_metrics_single(w, "linkage_gateway_feed_subscribers", LK_METRIC_GAUGE,
                      "connections to the public feed (PUB), from libzmq's socket monitor",
                      (double)(g->feed_accepted - g->feed_disconnected));
  if (!g->feed_open) return;
  lk_metrics_single(w, "linkage_gateway_feed_published_total", LK_METRIC_COUNTER,
                    "committed events published live on the feed", (double)f->published);
  lk_metrics_family(w, "linkage_gateway_feed_replays_total", LK_METRIC_COUNTER,
                    "replay requests on the feed's replay endpoint, by answer");
  lk_metrics_sample(w, (double)f->replays, "result", "answered");
  lk_metrics_sample(w, (double)f->refused, "result", "refused");
  lk_metrics_single(w, "linkage_gateway_feed_replayed_events_total", LK_METRIC_COUNTER,
                    "events sent in replay batches", (double)f->replay_items);
}

void gateway_metrics(struct lk_runtime *rt, struct lk_metrics_writer *w) {
  struct gateway *g = rt->state;
  write_http(w, g);
  write_feed(w, g);
  lk_metrics_single(w, "linkage_gateway_incidents", LK_METRIC_GAUGE,
                    "incidents in the gateway's view", g->view.count ? g->view.count - 1 : 0);
  lk_metrics_single(w, "linkage_gateway_open_incidents", LK_METRIC_GAUGE,
                    "incidents in the view that are not over", g->view.open);
  lk_metrics_family(w, "linkage_gateway_upstream_requests_total", LK_METRIC_COUNTER,
                    "requests relayed for HTTP clients: coordinators' commands to the router, "
                    "Open311 reports to intake");
  lk_metrics_sample(w, (double)g->commands_sent, "upstream", "router");
  lk_metrics_sample(w, (double)g->reports_sent, "upstream", "intake");
  lk_metrics_single(w, "linkage_gateway_upstream_timeouts_total", LK_METRIC_COUNTER,
                    "relayed requests that got no answer in upstream_timeout_ms (503)",
                    (double)g->upstream_timeouts);
  lk_metrics_single(w, "linkage_gateway_waiting_requests", LK_METRIC_GAUGE,
                    "HTTP requests waiting for the router or intake", g->waiting_count);
  lk_metrics_single(w, "linkage_gateway_tokens", LK_METRIC_GAUGE, "API tokens in force",
                    g->auth.tokens ? (double)g->auth.tokens->n : 0);
  lk_metrics_single(w, "linkage_gateway_position", LK_METRIC_GAUGE,
                    "ledger position of the last event folded into the view",
                    (double)g->view.position);
  lk_metrics_single(w, "linkage_gateway_caught_up", LK_METRIC_GAUGE,
                    "1 once the view has caught up with the ledger", g->caught_up);
  lk_auth_metrics(w, "linkage_gateway_feed", &g->feed_auth);
}
