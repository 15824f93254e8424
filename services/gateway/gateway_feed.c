/* The public feed's shell: the PUB socket, the replay ROUTER, and the replays waiting for the
 * ledger. Decisions (topics, request checks, batches) are in gw_feed_topic.c.
 *
 * A replay request takes one of GW_FEED_PENDING_MAX slots, which holds the client's ROUTER
 * identity and the checked request while lk_ledger_replay runs; the slot itself is the
 * callback's data, so lk_ledger_client_forget can drop exactly it at stop. With every slot
 * taken a request is told "busy" at once: the feed never queues without bound. */
#include "gateway_feed.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkage/error.h"
#include "linkage/log.h"
#include "linkage/zap.h"

static void be64(uint8_t out[8], uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    out[i] = (uint8_t)(v & 0xff);
}

/* The last position a replay can reach: what the gateway has folded. */
static uint64_t feed_head(const struct gw_feed *f) {
  return f->view ? f->view->position : 0;
}

void gw_feed_publish(struct gw_feed *f, uint64_t position, const Linkage__V1__Event *ev,
                     const uint8_t *event, size_t len) {
  if (!f->pub_open || !ev) return;
  char topic[GW_FEED_TOPIC_MAX];
  const struct gw_incident *inc =
      ev->incident_id && ev->incident_id[0] ? gw_view_get(f->view, ev->incident_id) : NULL;
  gw_feed_topic(inc, ev, topic, sizeof topic);
  uint8_t pos[8];
  be64(pos, position);
  const void *bufs[3] = {topic, pos, event};
  size_t lens[3] = {strlen(topic), sizeof pos, len};
  /* PUB drops at a subscriber's high-water mark instead of blocking; DONTWAIT in any case. */
  if (lk_zsock_sendv(&f->pub, bufs, lens, 3, ZMQ_DONTWAIT) == LK_OK) {
    f->stats.published++;
    f->stats.last_published = position;
  } else {
    f->stats.publish_failed++;
  }
}

/* A subscriber key was revoked: PUB cannot refuse one peer's messages, so every subscriber is
 * dropped (unbinding closes their connections) and reconnects through ZAP, where the revoked
 * key no longer gets in. The others fill the moment's gap by replay, as after any drop. */
static void drop_subscribers(struct gw_feed *f) {
  if (!f->rebind_pending) {
    if (zmq_unbind(f->pub.zs, f->pub_endpoint) != 0) {
      lk_warn("cannot unbind the feed", "endpoint=\"%s\" err=\"%s\"", f->pub_endpoint,
              zmq_strerror(errno));
      return;
    }
    f->rebind_pending = 1;
    lk_info("a subscriber key was revoked: dropping every subscriber", "endpoint=\"%s\"",
            f->pub_endpoint);
    return; /* the listener closes in libzmq's I/O thread: bind again next time */
  }
  if (zmq_bind(f->pub.zs, f->pub_endpoint) != 0) {
    lk_warn("cannot bind the feed again yet", "endpoint=\"%s\" err=\"%s\"", f->pub_endpoint,
            zmq_strerror(errno));
    return;
  }
  f->rebind_pending = 0;
}

void gw_feed_heartbeat(struct gw_feed *f, uint64_t head) {
  if (!f->pub_open) return;
  if (f->rebind_pending || (f->auth && f->auth->removals != f->removals_seen)) {
    if (f->auth) f->removals_seen = f->auth->removals;
    drop_subscribers(f);
  }
  if (head > feed_head(f)) head = feed_head(f);
  uint8_t pos[8];
  be64(pos, head);
  const void *bufs[3] = {"hb", pos, ""};
  size_t lens[3] = {2, sizeof pos, 0};
  if (lk_zsock_sendv(&f->pub, bufs, lens, 3, ZMQ_DONTWAIT) == LK_OK) f->stats.heartbeats++;
}

static void send_to(struct gw_feed *f, const uint8_t *ident, size_t ident_len, int delimiter,
                    const uint8_t *body, size_t len) {
  const void *bufs[3];
  size_t lens[3];
  int n = 0;
  bufs[n] = ident;
  lens[n++] = ident_len;
  if (delimiter) {
    bufs[n] = "";
    lens[n++] = 0;
  }
  bufs[n] = body;
  lens[n++] = len;
  /* A client gone or over its high-water mark loses the answer; it asks again. */
  lk_zsock_sendv(&f->replay, bufs, lens, n, ZMQ_DONTWAIT);
}

static void refuse(struct gw_feed *f, const uint8_t *ident, size_t ident_len, int delimiter,
                   uint64_t request_id, const char *why, uint32_t retry_after_ms) {
  size_t len = 0;
  uint8_t *body = gw_feed_refusal(request_id, feed_head(f), why, retry_after_ms, &len);
  if (!body) return;
  send_to(f, ident, ident_len, delimiter, body, len);
  free(body);
  f->stats.refused++;
}

static void release(struct gw_feed *f, struct gw_feed_pending *p) {
  p->used = 0;
  f->npending--;
}

static void answer(struct gw_feed *f, const uint8_t *ident, size_t ident_len, int delimiter,
                   const struct gw_feed_req *req, const Linkage__V1__ReplayReply *r) {
  size_t len = 0, items = 0;
  uint8_t *body = gw_feed_batch(req, r, f->view, feed_head(f), &len, &items);
  if (!body) {
    refuse(f, ident, ident_len, delimiter, req->request_id, "out of memory", 100);
    return;
  }
  send_to(f, ident, ident_len, delimiter, body, len);
  free(body);
  if (r->error && r->error[0]) {
    f->stats.refused++;
  } else {
    f->stats.replays++;
    f->stats.replay_items += items;
  }
}

static void replay_cb(void *data, const Linkage__V1__ReplayReply *r) {
  struct gw_feed_pending *p = data;
  struct gw_feed *f = p->feed;
  answer(f, p->ident, p->ident_len, p->delimiter, &p->req, r);
  release(f, p);
}

static void on_request(struct lk_zsock *z, struct lk_frames *m, void *data) {
  struct gw_feed *f = data;
  (void)z;
  if (m->count < 1) return;
  const uint8_t *ident = zmq_msg_data(&m->frame[0]);
  size_t ident_len = zmq_msg_size(&m->frame[0]);
  int body = lk_frames_body_index(m);
  int delimiter = body == 2;
  if (body < 0 || body != m->count - 1 || m->truncated || ident_len > sizeof f->pending[0].ident) {
    refuse(f, ident, ident_len, m->count > 1 && zmq_msg_size(&m->frame[1]) == 0, 0,
           "a request is one frame holding a FeedRequest", 0);
    return;
  }
  char who[LK_ID_MAX];
  if (f->auth && lk_auth_check(f->auth, m, who) != LK_OK) {
    refuse(f, ident, ident_len, delimiter, 0, "the subscriber key was revoked", 0);
    return;
  }
  struct gw_feed_pending *p = NULL;
  for (size_t i = 0; i < GW_FEED_PENDING_MAX && !p; i++)
    if (!f->pending[i].used) p = &f->pending[i];
  /* Checked into the free slot; with none free, into the scratch request for the refusal. */
  struct gw_feed_req *req = p ? &p->req : &f->scratch;
  char err[160];
  if (gw_feed_request_check(zmq_msg_data(&m->frame[body]), zmq_msg_size(&m->frame[body]), req, err,
                            sizeof err) != LK_OK) {
    refuse(f, ident, ident_len, delimiter, req->request_id, err, 0);
    return;
  }
  if (!p) {
    refuse(f, ident, ident_len, delimiter, req->request_id, "busy: too many replays waiting", 200);
    return;
  }
  if (req->after_position >= feed_head(f)) {
    /* Nothing to replay yet: answer at once, without the ledger. */
    Linkage__V1__ReplayReply none = LINKAGE__V1__REPLAY_REPLY__INIT;
    answer(f, ident, ident_len, delimiter, req, &none);
    return;
  }
  memcpy(p->ident, ident, ident_len);
  p->ident_len = ident_len;
  p->delimiter = delimiter;
  p->feed = f;
  p->used = 1;
  f->npending++;
  int rc = lk_ledger_replay(f->ledger, req->after_position + 1, GW_FEED_BATCH_EVENTS, replay_cb, p);
  if (rc != LK_OK) {
    release(f, p);
    refuse(f, ident, ident_len, delimiter, req->request_id, "ledger unavailable", 500);
  }
}

static const char *bare(const char *ep) {
  return (ep[0] == '@' || ep[0] == '>') ? ep + 1 : ep;
}

int gw_feed_start(struct gw_feed *f, uv_loop_t *loop, void *zctx, const struct gw_feed_opts *o) {
  memset(f, 0, sizeof *f);
  if (!o || !o->pub_endpoint || !o->replay_endpoint || !o->ledger || !o->view) return LK_EINVAL;
  f->ledger = o->ledger;
  f->view = o->view;
  f->auth = o->auth;
  if (f->auth) f->removals_seen = f->auth->removals;
  snprintf(f->pub_endpoint, sizeof f->pub_endpoint, "%s", bare(o->pub_endpoint));
  /* Issue 6: a port reachable from other hosts needs CURVE. */
  const char *eps[2] = {o->pub_endpoint, o->replay_endpoint};
  for (int i = 0; i < 2 && !(f->auth && f->auth->curve); i++) {
    if (!lk_endpoint_is_local(bare(eps[i]))) {
      lk_error("refusing to bind the feed without CURVE",
               "endpoint=\"%s\" err=\"set curve=true, or bind it to 127.0.0.1, "
               "localhost, [::1] or ipc://\"",
               eps[i]);
      return LK_EINVAL;
    }
  }
  char ep[520];
  snprintf(ep, sizeof ep, "@%s", bare(o->pub_endpoint));
  struct lk_zsock_opts po = {.linger_ms = 0,
                             .maxmsg = 4096, /* subscriptions only come this way */
                             .sndhwm = o->sndhwm > 0 ? o->sndhwm : GW_FEED_SNDHWM};
  if (f->auth) lk_auth_socket_opts(f->auth, &po);
  if (lk_zsock_open(&f->pub, loop, zctx, ZMQ_PUB, ep, &po, NULL, NULL, "feed") != LK_OK) goto fail;
  f->pub_open = 1;
  snprintf(ep, sizeof ep, "@%s", bare(o->replay_endpoint));
  /* Requests over GW_FEED_REQUEST_MAX get an error; far larger ones are cut off by libzmq. */
  struct lk_zsock_opts ro = {
      .linger_ms = 0, .maxmsg = 4 * GW_FEED_REQUEST_MAX, .sndhwm = 1000, .rcvhwm = 1000};
  if (f->auth) lk_auth_socket_opts(f->auth, &ro);
  if (lk_zsock_open(&f->replay, loop, zctx, ZMQ_ROUTER, ep, &ro, on_request, f, "feed_replay") !=
      LK_OK)
    goto fail_pub;
  f->replay_open = 1;
  lk_info("feed started", "endpoint=\"%s\" replay=\"%s\"", bare(o->pub_endpoint),
          bare(o->replay_endpoint));
  return LK_OK;

fail_pub:
  lk_zsock_close(&f->pub);
  f->pub_open = 0;
fail:
  return LK_EIO;
}

void gw_feed_stop(struct gw_feed *f) {
  for (size_t i = 0; i < GW_FEED_PENDING_MAX; i++) {
    if (!f->pending[i].used) continue;
    lk_ledger_client_forget(f->ledger, &f->pending[i]);
    release(f, &f->pending[i]);
  }
  if (f->replay_open) lk_zsock_close(&f->replay);
  if (f->pub_open) lk_zsock_close(&f->pub);
  f->replay_open = f->pub_open = 0;
}
