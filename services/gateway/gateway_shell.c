/* The gateway's shell: the stream in, the view, the upstream links and their waiting requests.
 * Duties:
 *  - fold every committed event into the view (gw_view_apply), push the change to the
 *    dashboard's SSE clients and, once caught up, to the public feed;
 *  - carry coordinator commands to the router and Open311 reports to intake, and hand each
 *    answer to the HTTP request waiting for it (or a timeout, never silence). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_shell.h"
#include "linkage/clock.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "linkage/log.h"

#define MAX_WAITING 1024

/* ---- the committed stream ---- */

static void on_committed(void *data, uint64_t position, const Linkage__V1__Event *ev,
                         const uint8_t *bytes, size_t len) {
  struct gateway *g = data;
  uint32_t slot = gw_view_apply(&g->view, position, ev);
  int window = ev->body_case == LINKAGE__V1__EVENT__BODY_PLANNED_WORK_DECLARED ||
               ev->body_case == LINKAGE__V1__EVENT__BODY_PLANNED_WORK_LIFTED;
  if (g->http && (slot || window)) gw_http_publish(g->http, slot, position);
  /* Live events only: a subscriber fills what came before from the replay endpoint, so a
   * restarted gateway does not flood the feed with the whole ledger. */
  if (!g->caught_up && lk_stream_caught_up(g->stream)) g->caught_up = 1;
  if (g->caught_up && g->feed_open) gw_feed_publish(&g->feed, position, ev, bytes, len);
}

/* ---- waiting requests ---- */

static void wait_link(struct gateway *g, struct gw_waiter *w) {
  w->deadline_mono_us = lk_mono_us() + g->cfg->upstream_timeout_ms * 1000;
  w->prev = g->waiting.prev;
  w->next = &g->waiting;
  g->waiting.prev->next = w;
  g->waiting.prev = w;
  g->waiting_count++;
}

static void wait_unlink(struct gateway *g, struct gw_waiter *w) {
  w->prev->next = w->next;
  w->next->prev = w->prev;
  w->prev = w->next = w; /* unlinked: a list of its own */
  g->waiting_count--;
}

/* Calls back with no answer (timeout or stop). */
static void wait_expire(struct gateway *g, struct gw_waiter *w) {
  wait_unlink(g, w);
  if (w->on_command)
    w->on_command(w, NULL);
  else if (w->on_ack)
    w->on_ack(w, NULL);
}

/* Packs msg and sends it after an empty delimiter (the REQ-compatible envelope both peers
 * expect). LK_EFULL when too many wait or the socket's queue is full. */
static int send_message(struct gateway *g, struct lk_zsock *s, const ProtobufCMessage *msg) {
  if (g->waiting_count >= MAX_WAITING) return LK_EFULL;
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return LK_ENOMEM;
  protobuf_c_message_pack(msg, buf);
  const void *bufs[2] = {"", buf};
  size_t lens[2] = {0, n};
  int rc = lk_zsock_sendv(s, bufs, lens, 2, ZMQ_DONTWAIT);
  free(buf);
  return rc == LK_EAGAIN ? LK_EFULL : rc;
}

int gateway_send_command(struct gateway *g, const Linkage__V1__Command *cmd, struct gw_waiter *w) {
  int rc = send_message(g, &g->router, &cmd->base);
  if (rc != LK_OK) return rc;
  snprintf(w->key, sizeof w->key, "%s", cmd->command_id);
  w->on_ack = NULL;
  wait_link(g, w);
  g->commands_sent++;
  return LK_OK;
}

int gateway_send_report(struct gateway *g, const Linkage__V1__Report *r, struct gw_waiter *w) {
  int rc = send_message(g, &g->intake, &r->base);
  if (rc != LK_OK) return rc;
  lk_incident_id(r->device_id, r->sequence, w->key);
  w->sequence = r->sequence;
  w->on_command = NULL;
  wait_link(g, w);
  g->reports_sent++;
  return LK_OK;
}

/* The body frame of a DEALER's reply: after the empty delimiter. */
static const zmq_msg_t *reply_body(const struct lk_frames *m) {
  if (m->count == 2 && zmq_msg_size((zmq_msg_t *)&m->frame[0]) == 0) return &m->frame[1];
  return NULL;
}

static void on_router_reply(struct lk_zsock *s, struct lk_frames *m, void *data) {
  struct gateway *g = data;
  (void)s;
  const zmq_msg_t *body = reply_body(m);
  if (!body) return;
  Linkage__V1__CommandReply *rep = linkage__v1__command_reply__unpack(
      NULL, zmq_msg_size((zmq_msg_t *)body), zmq_msg_data((zmq_msg_t *)body));
  if (!rep) {
    lk_warn("undecodable reply from the router", "bytes=%zu", zmq_msg_size((zmq_msg_t *)body));
    return;
  }
  for (struct gw_waiter *w = g->waiting.next; w != &g->waiting; w = w->next)
    if (w->on_command && strcmp(w->key, rep->command_id) == 0) {
      wait_unlink(g, w);
      g->commands_answered++;
      w->on_command(w, rep);
      break; /* a late duplicate answer finds nobody: the request already timed out */
    }
  linkage__v1__command_reply__free_unpacked(rep, NULL);
}

static void on_intake_reply(struct lk_zsock *s, struct lk_frames *m, void *data) {
  struct gateway *g = data;
  (void)s;
  const zmq_msg_t *body = reply_body(m);
  if (!body) return;
  Linkage__V1__ReportAck *ack = linkage__v1__report_ack__unpack(
      NULL, zmq_msg_size((zmq_msg_t *)body), zmq_msg_data((zmq_msg_t *)body));
  if (!ack) {
    lk_warn("undecodable reply from intake", "bytes=%zu", zmq_msg_size((zmq_msg_t *)body));
    return;
  }
  /* An ack names its incident (derived from device and sequence), except a REJECTED one,
   * which we match by sequence: our own check refused what intake would, so it is rare. */
  struct gw_waiter *hit = NULL;
  for (struct gw_waiter *w = g->waiting.next; w != &g->waiting; w = w->next) {
    if (!w->on_ack || w->sequence != ack->sequence) continue;
    if (ack->incident_id[0] ? strcmp(w->key, ack->incident_id) == 0 : !hit) hit = w;
    if (hit && ack->incident_id[0]) break;
  }
  if (hit) {
    wait_unlink(g, hit);
    g->reports_answered++;
    hit->on_ack(hit, ack);
  }
  linkage__v1__report_ack__free_unpacked(ack, NULL);
}

/* ---- lifecycle ---- */

int gateway_start(struct lk_runtime *rt) {
  struct gateway *g = rt->state;
  g->rt = rt;
  g->cfg = rt->config;
  g->waiting.prev = g->waiting.next = &g->waiting;
  char err[512];
  /* CAP's references list "sender,identifier,sent" triples separated by spaces. */
  if (!g->cfg->cap_sender[0] || strpbrk(g->cfg->cap_sender, " ,\t\r\n")) {
    lk_error("cap_sender must be one word without spaces or commas", "cap_sender=\"%s\"",
             g->cfg->cap_sender);
    return LK_EINVAL;
  }
  g->district = lk_district_load(g->cfg->district, err, sizeof err);
  if (!g->district) {
    lk_error("cannot load the district", "err=\"%s\"", err);
    return LK_EINVAL;
  }
  if (gw_view_init(&g->view, g->district) != LK_OK) return LK_ENOMEM;
  g->view_open = 1;

  if (gw_auth_start(&g->auth, rt->loop, g->cfg->pg, (unsigned)g->cfg->tokens_refresh_ms) != LK_OK)
    return LK_ENOMEM;
  g->auth_open = 1;

  if (lk_link_load(&g->link, g->cfg->link_curve, g->cfg->link_key_file) != LK_OK) return LK_EINVAL;
  if (g->link.curve && g->cfg->curve_server_key_file[0] &&
      lk_curve_read_key(g->cfg->curve_server_key_file, "public", g->intake_key) != 0) {
    lk_error("cannot read intake's public key", "curve_server_key_file=\"%s\"",
             g->cfg->curve_server_key_file);
    return LK_EINVAL;
  }
  struct lk_ledger_client_opts lo = {.endpoint = g->cfg->ledger_endpoint, .link = &g->link};
  g->ledger = lk_ledger_client_new(rt->loop, rt->zctx, &lo);
  if (!g->ledger) return LK_EIO;

  struct lk_zsock_opts zo = {.linger_ms = 0, .sndhwm = 4096, .rcvhwm = 4096};
  lk_link_client_opts(&g->link, NULL, &zo);
  char ep[LK_CONFIG_STR + 2];
  snprintf(ep, sizeof ep, ">%s", g->cfg->router_endpoint);
  if (lk_zsock_open(&g->router, rt->loop, rt->zctx, ZMQ_DEALER, ep, &zo, on_router_reply, g,
                    "router") != LK_OK)
    return LK_EIO;
  g->router_open = 1;
  /* Intake's device port is not a link: CURVE there only when devices speak it, and then the
   * link key is admitted as a relay of other devices' reports. */
  struct lk_zsock_opts io = {.linger_ms = 0, .sndhwm = 4096, .rcvhwm = 4096};
  if (g->intake_key[0]) lk_link_client_opts(&g->link, g->intake_key, &io);
  snprintf(ep, sizeof ep, ">%s", g->cfg->intake_endpoint);
  if (lk_zsock_open(&g->intake, rt->loop, rt->zctx, ZMQ_DEALER, ep, &io, on_intake_reply, g,
                    "intake") != LK_OK)
    return LK_EIO;
  g->intake_open = 1;

  struct lk_auth_opts ao = {
      .kind = "subscriber",
      .pg = g->cfg->pg,
      .refresh_ms = (unsigned)g->cfg->keys_refresh_ms,
      .endpoint = NULL, /* the feed checks both of its endpoints itself */
      .curve = g->cfg->curve,
      .secret_file = g->cfg->curve_secret_file,
      .link = &g->link,
  };
  if (lk_auth_start(&g->feed_auth, rt->loop, rt->zctx, &ao) != LK_OK) return LK_EINVAL;
  g->feed_auth_open = 1;
  struct gw_feed_opts fo = {.pub_endpoint = g->cfg->feed_endpoint,
                            .replay_endpoint = g->cfg->feed_replay_endpoint,
                            .ledger = g->ledger,
                            .view = &g->view,
                            .auth = &g->feed_auth};
  int rc = gw_feed_start(&g->feed, rt->loop, rt->zctx, &fo);
  if (rc != LK_OK) return rc;
  g->feed_open = 1;
  (void)gateway_feed_watch_start(g); /* logged; the feed works unwatched */

  if (gw_http_start(g, &g->http) != LK_OK) return LK_EIO;

  struct lk_stream_opts so = {
      .pub_endpoint = g->cfg->ledger_stream, .client = g->ledger, .link = &g->link};
  g->stream = lk_stream_new(rt->loop, rt->zctx, &so, on_committed, g);
  if (!g->stream) return LK_EIO;
  lk_info("gateway started", "http=%s:%ld feed=%s replay=%s", g->cfg->http_address,
          g->cfg->http_port, g->cfg->feed_endpoint, g->cfg->feed_replay_endpoint);
  return LK_OK;
}

void gateway_tick(struct lk_runtime *rt, int64_t now_us) {
  struct gateway *g = rt->state;
  int64_t mono = lk_mono_us();
  if (g->ledger) lk_ledger_client_tick(g->ledger, mono);
  if (!g->caught_up && g->stream && lk_stream_caught_up(g->stream)) g->caught_up = 1;
  while (g->waiting.next != &g->waiting && g->waiting.next->deadline_mono_us <= mono) {
    g->upstream_timeouts++;
    wait_expire(g, g->waiting.next);
  }
  if (g->feed_open && now_us - g->last_heartbeat_us >= 1000000) {
    g->last_heartbeat_us = now_us;
    gw_feed_heartbeat(&g->feed, g->view.position);
  }
  if (g->http) gw_http_tick(g->http, now_us);
}

void gateway_status(struct lk_runtime *rt, char *buf, size_t len) {
  struct gateway *g = rt->state;
  char http[256] = "", feed[256] = "";
  if (g->http) gw_http_status(g->http, http, sizeof http);
  if (g->feed_open) {
    const struct gw_feed_stats *f = &g->feed.stats;
    snprintf(feed, sizeof feed,
             "feed_published=%llu feed_heartbeats=%llu feed_replays=%llu feed_replay_items=%llu "
             "feed_refused=%llu feed_replays_waiting=%u feed_curve=%d feed_keys=%zu",
             (unsigned long long)f->published, (unsigned long long)f->heartbeats,
             (unsigned long long)f->replays, (unsigned long long)f->replay_items,
             (unsigned long long)f->refused, g->feed.npending, g->feed_auth.curve,
             g->feed_auth.ring ? g->feed_auth.ring->n : 0);
  }
  snprintf(buf, len,
           "position=%llu caught_up=%d incidents=%u open=%u waiting=%u commands=%llu "
           "reports=%llu upstream_timeouts=%llu tokens=%zu token_refreshes=%llu %s %s",
           (unsigned long long)g->view.position, g->caught_up,
           g->view.count ? g->view.count - 1 : 0, g->view.open, g->waiting_count,
           (unsigned long long)g->commands_sent, (unsigned long long)g->reports_sent,
           (unsigned long long)g->upstream_timeouts, g->auth.tokens ? g->auth.tokens->n : 0,
           (unsigned long long)g->auth.refreshes, http, feed);
}

void gateway_stop(struct lk_runtime *rt) {
  struct gateway *g = rt->state;
  /* Every waiting request gets its answer (none) before the HTTP side goes away. */
  while (g->waiting.next && g->waiting.next != &g->waiting)
    wait_expire(g, g->waiting.next);
  if (g->stream) lk_stream_destroy(&g->stream);
  if (g->http) gw_http_stop(&g->http);
  gateway_feed_watch_stop(g);
  if (g->feed_open) gw_feed_stop(&g->feed);
  g->feed_open = 0;
  if (g->feed_auth_open) lk_auth_stop(&g->feed_auth);
  g->feed_auth_open = 0;
  if (g->router_open) lk_zsock_close(&g->router);
  if (g->intake_open) lk_zsock_close(&g->intake);
  g->router_open = g->intake_open = 0;
  if (g->ledger) lk_ledger_client_destroy(&g->ledger);
  if (g->auth_open) gw_auth_stop(&g->auth);
  g->auth_open = 0;
  if (g->view_open) gw_view_free(&g->view);
  g->view_open = 0;
  if (g->district) lk_district_destroy(&g->district);
}
