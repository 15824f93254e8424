/* A gap-free consumer of the committed stream (the zguide's Clone pattern).
 *
 * Live messages are delivered while they continue the last position; a
 * message that skips ahead, or a heartbeat whose head is beyond the last
 * position, starts a replay through the ledger client from the first missing
 * position, one replay in flight at a time. Messages at or below the last
 * position are repeats and dropped, so delivery is exactly once and in order
 * whether an event arrives live, by replay, or both. */
#include "linkage/stream.h"

#include <inttypes.h>
#include <stdlib.h>

#include "linkage/error.h"
#include "linkage/log.h"
#include "linkage/zap.h"

struct lk_stream {
  uv_loop_t *loop;
  struct lk_zsock sub;
  uv_idle_t reaper;
  struct lk_ledger_client *client;
  uint64_t pos;
  uint32_t batch;
  int replaying;
  int caught_up;     /* a replay reached the head the ledger announced with it */
  int replay_failed; /* log a failing replay once, not at every heartbeat */
  lk_stream_cb cb;
  void *data;
};

static void deliver(struct lk_stream *s, uint64_t position, const uint8_t *bytes, size_t len) {
  Linkage__V1__Event *ev = linkage__v1__event__unpack(NULL, len, bytes);
  s->pos = position;
  if (!ev) {
    /* Committed bytes that do not decode cannot be fixed by waiting: tell and move on. */
    lk_error("committed event does not decode, skipped", "position=%" PRIu64, position);
    return;
  }
  s->cb(s->data, position, ev, bytes, len);
  linkage__v1__event__free_unpacked(ev, NULL);
}

static void replay_cb(void *data, const Linkage__V1__ReplayReply *r);

static void start_replay(struct lk_stream *s) {
  if (s->replaying) return;
  int rc = lk_ledger_replay(s->client, s->pos + 1, s->batch, replay_cb, s);
  if (rc != LK_OK) {
    lk_warn("cannot request a replay", "from=%" PRIu64 " err=\"%s\"", s->pos + 1, lk_strerror(rc));
    return; /* the next heartbeat or live message tries again */
  }
  s->replaying = 1;
}

static void replay_cb(void *data, const Linkage__V1__ReplayReply *r) {
  struct lk_stream *s = data;
  s->replaying = 0;
  if (r->error && r->error[0]) {
    if (!s->replay_failed)
      lk_warn("replay failed", "from=%" PRIu64 " err=\"%s\"", s->pos + 1, r->error);
    s->replay_failed = 1;
    return; /* the ledger's heartbeat brings us back */
  }
  s->replay_failed = 0;
  for (size_t i = 0; i < r->n_events; i++) {
    const Linkage__V1__Committed *c = r->events[i];
    if (c->position <= s->pos) continue;
    if (c->position != s->pos + 1) break; /* cannot happen with a sane ledger; replay again */
    deliver(s, c->position, c->event.data, c->event.len);
  }
  if (s->pos >= r->head) s->caught_up = 1;
  if (r->head > s->pos && r->n_events > 0) start_replay(s);
}

static void on_committed(struct lk_zsock *z, struct lk_frames *m, void *data) {
  struct lk_stream *s = data;
  (void)z;
  if (m->count != 1) return;
  Linkage__V1__Committed *c =
      linkage__v1__committed__unpack(NULL, zmq_msg_size(&m->frame[0]), zmq_msg_data(&m->frame[0]));
  if (!c) {
    lk_warn("malformed message on the committed stream ignored", "bytes=%zu",
            zmq_msg_size(&m->frame[0]));
    return;
  }
  if (c->event.len == 0) {
    /* heartbeat: the head; if we are behind it, we lost the last messages */
    if (c->position > s->pos) start_replay(s);
  } else if (c->position == s->pos + 1) {
    deliver(s, c->position, c->event.data, c->event.len);
  } else if (c->position > s->pos + 1) {
    start_replay(s);
  }
  linkage__v1__committed__free_unpacked(c, NULL);
}

struct lk_stream *lk_stream_new(uv_loop_t *loop, void *zctx, const struct lk_stream_opts *opts,
                                lk_stream_cb cb, void *data) {
  if (!opts || !opts->pub_endpoint || !opts->client || !cb) return NULL;
  struct lk_stream *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->loop = loop;
  s->client = opts->client;
  s->pos = opts->after_position;
  s->batch = opts->replay_batch ? opts->replay_batch : 1000;
  s->cb = cb;
  s->data = data;
  char ep[520];
  snprintf(ep, sizeof ep, "%s%s",
           (opts->pub_endpoint[0] == '@' || opts->pub_endpoint[0] == '>') ? "" : ">",
           opts->pub_endpoint);
  /* A subscriber that falls behind loses messages at its high-water mark and replays. */
  struct lk_zsock_opts zo = {.linger_ms = 0, .maxmsg = 4 << 20, .rcvhwm = 100000};
  lk_link_client_opts(opts->link, NULL, &zo);
  if (lk_zsock_open(&s->sub, loop, zctx, ZMQ_SUB, ep, &zo, on_committed, s, "ledger_stream")) {
    free(s);
    return NULL;
  }
  if (zmq_setsockopt(s->sub.zs, ZMQ_SUBSCRIBE, "", 0) != 0) {
    lk_error("cannot subscribe", "endpoint=\"%s\" err=\"%s\"", opts->pub_endpoint,
             zmq_strerror(zmq_errno()));
    lk_zsock_close(&s->sub);
    /* the handles close in a later turn: reap like destroy does */
    lk_stream_destroy(&s);
    return NULL;
  }
  /* Whatever was committed before we subscribed comes by replay. */
  start_replay(s);
  return s;
}

static void reaper_closed_cb(uv_handle_t *h) {
  free(h->data);
}

static void reaper_cb(uv_idle_t *h) {
  struct lk_stream *s = h->data;
  if (s->sub.handles_open > 0) return;
  uv_idle_stop(h);
  uv_close((uv_handle_t *)h, reaper_closed_cb);
}

void lk_stream_destroy(struct lk_stream **sp) {
  if (!sp || !*sp) return;
  struct lk_stream *s = *sp;
  *sp = NULL;
  lk_ledger_client_forget(s->client, s);
  lk_zsock_close(&s->sub);
  uv_idle_init(s->loop, &s->reaper);
  s->reaper.data = s;
  uv_idle_start(&s->reaper, reaper_cb);
}

uint64_t lk_stream_position(const struct lk_stream *s) {
  return s ? s->pos : 0;
}

int lk_stream_replaying(const struct lk_stream *s) {
  return s ? s->replaying : 0;
}

int lk_stream_caught_up(const struct lk_stream *s) {
  return s ? s->caught_up : 0;
}
