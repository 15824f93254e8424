/* The ledger's shell: the ROUTER taking LedgerRequests, the bounded append
 * queue, the writer thread doing group commits, the PUB of the committed
 * stream with its heartbeat, and replays from the ring or PostgreSQL.
 *
 * Why a writer thread and not non-blocking libpq on the loop (STYLE.md): a
 * commit is a short fixed sequence (begin, dedupe, COPY, commit) whose only
 * parallelism is "the next batch accumulates meanwhile". One uv_queue_work in
 * flight with a blocking connection gives exactly that with straight-line
 * code, keeps the loop free for receiving, replying and publishing, and the
 * connection is never touched by two threads. Replays get their own
 * connection and work item so a long catch-up never delays commits. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "linkage/clock.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "linkage/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

static void kick(struct ledger *L);
static void start_replay(struct ledger *L);

/* ---- replies ---- */

static void send_reply(struct ledger *L, const struct ledger_peer *p,
                       const Linkage__V1__LedgerReply *r) {
  uint8_t stack[1024];
  size_t len = linkage__v1__ledger_reply__get_packed_size(r);
  uint8_t *buf = len <= sizeof stack ? stack : malloc(len);
  if (!buf) {
    lk_error("cannot send reply", "request_id=%" PRIu64 " err=\"out of memory\"", p->request_id);
    return;
  }
  linkage__v1__ledger_reply__pack(r, buf);
  static const uint8_t empty[1] = {0};
  const void *b[3];
  size_t l[3];
  int n = 0;
  b[n] = p->ident, l[n++] = p->ident_len;
  if (p->delimiter) b[n] = empty, l[n++] = 0;
  b[n] = buf, l[n++] = len;
  int rc = lk_zsock_sendv(&L->router, b, l, n, ZMQ_DONTWAIT);
  if (rc == LK_ENOENT)
    lk_debug("client gone, reply dropped", "request_id=%" PRIu64, p->request_id);
  else if (rc == LK_EAGAIN)
    lk_debug("client not reading, reply dropped", "request_id=%" PRIu64, p->request_id);
  else if (rc != LK_OK)
    lk_warn("cannot send reply", "request_id=%" PRIu64 " err=\"%s\"", p->request_id,
            zmq_strerror(errno));
  if (buf != stack) free(buf);
}

static void reply_append(struct ledger *L, const struct ledger_peer *p,
                         Linkage__V1__AppendReply__Status st, uint64_t position,
                         const char *event_id, const char *incident_id, const char *error) {
  Linkage__V1__AppendReply a = LINKAGE__V1__APPEND_REPLY__INIT;
  if ((unsigned)st < sizeof L->appends_answered / sizeof L->appends_answered[0])
    L->appends_answered[st]++;
  a.status = st;
  a.position = position;
  a.event_id = (char *)(event_id ? event_id : "");
  a.incident_id = (char *)(incident_id ? incident_id : "");
  a.error = (char *)(error ? error : "");
  Linkage__V1__LedgerReply r = LINKAGE__V1__LEDGER_REPLY__INIT;
  r.request_id = p->request_id;
  r.body_case = LINKAGE__V1__LEDGER_REPLY__BODY_APPEND;
  r.append = &a;
  send_reply(L, p, &r);
}

static void reply_replay(struct ledger *L, const struct ledger_peer *p,
                         Linkage__V1__Committed **events, size_t n, const char *error) {
  Linkage__V1__ReplayReply rr = LINKAGE__V1__REPLAY_REPLY__INIT;
  rr.events = events;
  rr.n_events = n;
  rr.head = L->head;
  if (n > 0 && events[n - 1]->position > rr.head) rr.head = events[n - 1]->position;
  rr.error = (char *)(error ? error : "");
  Linkage__V1__LedgerReply r = LINKAGE__V1__LEDGER_REPLY__INIT;
  r.request_id = p->request_id;
  r.body_case = LINKAGE__V1__LEDGER_REPLY__BODY_REPLAY;
  r.replay = &rr;
  send_reply(L, p, &r);
}

/* ---- the ring of recent committed events ---- */

static void ring_clear(struct ledger *L) {
  for (size_t i = 0; i < L->ring_count; i++)
    free(L->ring[(L->ring_start + i) % LEDGER_RING_CAP].event);
  L->ring_start = L->ring_count = 0;
}

static struct ledger_ring_entry *ring_at(struct ledger *L, size_t i) {
  return &L->ring[(L->ring_start + i) % LEDGER_RING_CAP];
}

static void ring_push(struct ledger *L, uint64_t position, const uint8_t *event, size_t len,
                      const uint8_t hash[LK_HASH_LEN]) {
  if (!L->ring) return;
  /* The ring answers "everything from X on", so it must hold consecutive positions. */
  if (L->ring_count && ring_at(L, L->ring_count - 1)->position + 1 != position) ring_clear(L);
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) {
    ring_clear(L);
    return;
  }
  memcpy(copy, event, len);
  if (L->ring_count == LEDGER_RING_CAP) {
    free(ring_at(L, 0)->event);
    L->ring_start = (L->ring_start + 1) % LEDGER_RING_CAP;
    L->ring_count--;
  }
  struct ledger_ring_entry *e = ring_at(L, L->ring_count++);
  e->position = position;
  e->event = copy;
  e->len = len;
  memcpy(e->hash, hash, LK_HASH_LEN);
}

/* ---- publishing ---- */

static void publish(struct ledger *L, uint64_t position, const uint8_t *event, size_t len,
                    const uint8_t *hash, size_t hash_len) {
  Linkage__V1__Committed c = LINKAGE__V1__COMMITTED__INIT;
  c.position = position;
  c.event.data = (uint8_t *)event;
  c.event.len = len;
  c.hash.data = (uint8_t *)hash;
  c.hash.len = hash_len;
  uint8_t stack[2048];
  size_t n = linkage__v1__committed__get_packed_size(&c);
  uint8_t *buf = n <= sizeof stack ? stack : malloc(n);
  if (!buf) return; /* subscribers see the gap and replay */
  linkage__v1__committed__pack(&c, buf);
  const void *b[1] = {buf};
  size_t l[1] = {n};
  /* PUB never blocks: at the high-water mark a slow subscriber loses messages and replays. */
  lk_zsock_sendv(&L->pub, b, l, 1, ZMQ_DONTWAIT);
  if (buf != stack) free(buf);
}

static void heartbeat_cb(uv_timer_t *t) {
  struct ledger *L = t->data;
  if (L->ready && !L->stopping) publish(L, L->head, NULL, 0, NULL, 0);
}

/* ---- the queue and the writer ---- */

static void free_batch_items(struct ledger *L) {
  for (size_t i = 0; i < L->batch.count; i++) {
    if (L->held.slots) ledger_held_remove(&L->held, L->batch.items[i]);
    free(L->batch.items[i]);
  }
  L->batch.count = 0;
  L->batch.in_doubt = 0;
  L->batch.doubt_from = 0;
  L->batch.new_count = 0;
}

static void commit_work_cb(uv_work_t *w) {
  struct ledger *L = w->data;
  L->commit_rc = LK_OK;
  if (!ledger_pg_ok(L->pg)) {
    ledger_pg_finish(&L->pg);
    L->pg = ledger_pg_connect(L->cfg->pg, L->commit_err, sizeof L->commit_err);
    if (!L->pg) goto fail;
    if (!L->migrated) {
      if (ledger_pg_migrate(L->pg, L->commit_err, sizeof L->commit_err)) goto fail;
      L->migrated = 1;
    }
    /* After any failure the table, not our memory, says where the chain ends. */
    if (ledger_pg_load_head(L->pg, &L->chain, L->commit_err, sizeof L->commit_err)) goto fail;
  }
  if (L->batch.count == 0) return;
  if (ledger_pg_commit(L->pg, &L->batch, &L->chain, L->commit_err, sizeof L->commit_err)) goto fail;
  return;

fail:
  L->commit_rc = LK_EIO;
  ledger_pg_finish(&L->pg);
}

static int open_sockets(struct ledger *L) {
  /* A commit answers up to batch_max requests of one client at once: the reply pipe must hold
   * every reply a client can have outstanding, or ROUTER drops them (EAGAIN) and the client
   * waits for its resend timeout. Replies are ~100 bytes each. */
  struct lk_zsock_opts ropts = {.linger_ms = 200,
                                .maxmsg = LEDGER_FRAME_MAX,
                                .router_mandatory = 1,
                                .sndhwm = (int)(L->cfg->queue_max + L->cfg->batch_max)};
  struct lk_zsock_opts popts = {
      .linger_ms = 0, .maxmsg = LEDGER_FRAME_MAX, .sndhwm = LEDGER_PUB_HWM};
  lk_link_server_opts(&L->link, &ropts);
  lk_link_server_opts(&L->link, &popts);
  if (lk_zsock_open(&L->pub, L->rt->loop, L->rt->zctx, ZMQ_PUB, L->cfg->ledger_stream, &popts, NULL,
                    L, "ledger_stream"))
    return LK_EIO;
  if (lk_zsock_open(&L->router, L->rt->loop, L->rt->zctx, ZMQ_ROUTER, L->cfg->ledger_endpoint,
                    &ropts, ledger_on_request, L, "ledger_endpoint")) {
    lk_zsock_close(&L->pub);
    return LK_EIO;
  }
  L->sockets_open = 1;
  return LK_OK;
}

static void finish_batch(struct ledger *L) {
  for (size_t i = 0; i < L->batch.count; i++) {
    struct ledger_item *it = L->batch.items[i];
    struct ledger_peer p;
    memcpy(p.ident, it->ident, it->ident_len);
    p.ident_len = it->ident_len;
    p.delimiter = it->delimiter;
    p.request_id = it->request_id;
    if (it->outcome == LEDGER_NEW || it->outcome == LEDGER_COMMITTED) {
      /* Rows an in-doubt attempt committed were never published: they are now. Either every
       * row of a batch is NEW or every one is COMMITTED, so this is position order. */
      publish(L, it->position, it->payload, it->len, it->hash, LK_HASH_LEN);
      ring_push(L, it->position, it->payload, it->len, it->hash);
      reply_append(L, &p, LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED, it->position, it->event_id,
                   it->incident_id, NULL);
      L->events++;
    } else {
      reply_append(L, &p, LINKAGE__V1__APPEND_REPLY__STATUS__DUPLICATE, it->position, it->event_id,
                   it->stored_incident_id, NULL);
    }
  }
  L->batches++;
  free_batch_items(L);
}

static void retry_cb(uv_timer_t *t) {
  struct ledger *L = t->data;
  L->retry_armed = 0;
  kick(L);
}

static void commit_done_cb(uv_work_t *w, int status) {
  struct ledger *L = w->data;
  L->commit_busy = 0;
  if (L->stopping || status == UV_ECANCELED) {
    free_batch_items(L);
    ledger_batch_close(&L->batch);
    ledger_pg_finish(&L->pg);
    return;
  }
  if (L->commit_rc != LK_OK) {
    L->commit_failures++;
    if (!L->pg_down)
      lk_error("postgresql unavailable", "err=\"%s\" batch=%zu in_doubt=%d", L->commit_err,
               L->batch.count, L->batch.in_doubt);
    L->pg_down = 1;
    L->retry_armed = 1;
    uv_timer_start(&L->retry, retry_cb, L->backoff_ms, 0);
    L->backoff_ms = L->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : L->backoff_ms * 2;
    return;
  }
  if (L->pg_down) lk_info("postgresql available again", "head=%" PRIu64, L->chain.head);
  L->pg_down = 0;
  L->backoff_ms = BACKOFF_MIN_MS;
  L->head = L->chain.head;
  if (!L->ready) {
    if (open_sockets(L)) {
      lk_error("cannot start", "err=\"cannot open sockets\"");
      lk_service_fail(L->rt);
      return;
    }
    L->ready = 1;
    lk_info("ledger ready", "head=%" PRIu64 " endpoint=\"%s\" stream=\"%s\"", L->head,
            L->cfg->ledger_endpoint, L->cfg->ledger_stream);
  }
  if (L->batch.count) {
    lk_histogram_observe(&L->batch_size, (double)L->batch.count);
    lk_histogram_observe(&L->commit_duration,
                         (double)(lk_mono_us() - L->commit_started_mono_us) / 1e6);
    finish_batch(L);
  }
  kick(L);
}

/* Starts the writer if it is idle: with the next batch, or alone to (re)connect. */
static void kick(struct ledger *L) {
  if (L->stopping || L->commit_busy || L->retry_armed) return;
  if (L->batch.count == 0) {
    while (L->q_head && L->batch.count < (size_t)L->cfg->batch_max) {
      struct ledger_item *it = L->q_head;
      L->q_head = it->next;
      if (!L->q_head) L->q_tail = NULL;
      L->q_len--;
      L->q_bytes -= it->len;
      it->next = NULL;
      ledger_batch_add(&L->batch, it);
    }
  }
  if (L->batch.count == 0 && L->ready && !L->pg_down) return;
  L->commit_busy = 1;
  L->commit_started_mono_us = lk_mono_us();
  L->commit_work.data = L;
  int rc = uv_queue_work(L->rt->loop, &L->commit_work, commit_work_cb, commit_done_cb);
  if (rc) {
    L->commit_busy = 0;
    lk_error("cannot queue commit", "err=\"%s\"", uv_strerror(rc));
  }
}

/* ---- requests ---- */

static struct ledger_item *make_item(const Linkage__V1__Event *ev, const struct ledger_peer *p) {
  size_t len = 0;
  uint8_t *payload = lk_event_pack(ev, &len);
  if (!payload) return NULL;
  const char *category = NULL, *severity = NULL, *tier = NULL, *compound = NULL, *unit = NULL;
  enum ledger_flag lead = LEDGER_FLAG_NULL, exercise = LEDGER_FLAG_NULL;
  const Linkage__V1__UnitAnswer *answer = NULL;
  switch (ev->body_case) {
  case LINKAGE__V1__EVENT__BODY_REPORTED:
    if (ev->reported->report) {
      const Linkage__V1__Report *r = ev->reported->report;
      category = lk_category_name(r->category);
      severity = lk_severity_name(r->severity);
      if (r->location && r->location->compound_id && r->location->compound_id[0])
        compound = r->location->compound_id;
      exercise = r->exercise ? LEDGER_FLAG_TRUE : LEDGER_FLAG_FALSE;
    }
    break;
  case LINKAGE__V1__EVENT__BODY_ROUTED: tier = lk_tier_name(ev->routed->tier); break;
  case LINKAGE__V1__EVENT__BODY_ESCALATED: tier = lk_tier_name(ev->escalated->to_tier); break;
  case LINKAGE__V1__EVENT__BODY_DE_ESCALATED: tier = lk_tier_name(ev->de_escalated->to_tier); break;
  case LINKAGE__V1__EVENT__BODY_SEVERITY_CHANGED:
    severity = lk_severity_name(ev->severity_changed->to_severity);
    break;
  /* The unit columns let the incidents view name the lead unit without decoding payloads. */
  case LINKAGE__V1__EVENT__BODY_DISPATCHED:
    unit = ev->dispatched->unit_id;
    lead = ev->dispatched->lead ? LEDGER_FLAG_TRUE : LEDGER_FLAG_FALSE;
    break;
  case LINKAGE__V1__EVENT__BODY_UNIT_ACKNOWLEDGED: answer = ev->unit_acknowledged; break;
  case LINKAGE__V1__EVENT__BODY_UNIT_DECLINED: answer = ev->unit_declined; break;
  case LINKAGE__V1__EVENT__BODY_UNIT_ON_SCENE: answer = ev->unit_on_scene; break;
  case LINKAGE__V1__EVENT__BODY_UNIT_RESOLVED: answer = ev->unit_resolved; break;
  case LINKAGE__V1__EVENT__BODY_BACKUP_REQUESTED: answer = ev->backup_requested; break;
  default: break;
  }
  if (answer) unit = answer->unit_id;
  /* A column PostgreSQL refuses (bad UTF-8) would stall the whole batch; unit ids are not
   * checked before here, so an odd one is simply left out of the column. */
  if (unit && (!unit[0] || strlen(unit) >= LK_ID_MAX || !lk_utf8_valid(unit, strlen(unit))))
    unit = NULL;
  size_t l_eid = strlen(ev->event_id) + 1, l_iid = strlen(ev->incident_id) + 1,
         l_act = strlen(ev->actor) + 1, l_cmp = compound ? strlen(compound) + 1 : 0,
         l_unit = unit ? strlen(unit) + 1 : 0;
  struct ledger_item *it = calloc(1, sizeof *it + l_eid + l_iid + l_act + l_cmp + l_unit + len);
  if (!it) {
    free(payload);
    return NULL;
  }
  char *s = (char *)(it + 1);
  it->event_id = memcpy(s, ev->event_id, l_eid), s += l_eid;
  it->incident_id = memcpy(s, ev->incident_id, l_iid), s += l_iid;
  it->actor = memcpy(s, ev->actor, l_act), s += l_act;
  if (compound) it->compound_id = memcpy(s, compound, l_cmp), s += l_cmp;
  if (unit) it->unit_id = memcpy(s, unit, l_unit), s += l_unit;
  it->lead = lead;
  it->exercise = exercise;
  memcpy(s, payload, len);
  it->payload = (const uint8_t *)s;
  it->len = len;
  free(payload);
  it->type = lk_event_type_name(ev->type);
  it->category = category;
  it->severity = severity;
  it->tier = tier;
  it->at_us = ev->at_us;
  memcpy(it->ident, p->ident, p->ident_len);
  it->ident_len = p->ident_len;
  it->delimiter = p->delimiter;
  it->request_id = p->request_id;
  return it;
}

static void on_append(struct ledger *L, const struct ledger_peer *p,
                      const Linkage__V1__AppendRequest *a) {
  char err[256];
  const Linkage__V1__Event *ev = a ? a->event : NULL;
  if (!ev) {
    reply_append(L, p, LINKAGE__V1__APPEND_REPLY__STATUS__INVALID, 0, NULL, NULL,
                 "append request without an event");
    return;
  }
  if (lk_event_check(ev, err, sizeof err) != LK_OK) {
    reply_append(L, p, LINKAGE__V1__APPEND_REPLY__STATUS__INVALID, 0, ev->event_id, NULL, err);
    return;
  }
  /* A resend of an event this client's copy of is held: that copy's answer answers it (an
   * earlier id of the same request, ledger_held.c); queuing it again would only add a row to a
   * later batch, and under overload every waiting append is resent once per client timeout. */
  if (ledger_held_find(&L->held, ev->event_id, p->ident, p->ident_len)) {
    lk_debug("resend of a held append dropped", "request_id=%" PRIu64 " event_id=\"%s\"",
             p->request_id, ev->event_id);
    return;
  }
  /* Another client's copy of an event we hold (a device that resent through another intake) is
   * queued even when we would refuse new work, so it ends as the original does: DUPLICATE.
   * Twice queue_max stays a hard bound. */
  if (ledger_held_find(&L->held, ev->event_id, NULL, 0) && L->q_len < 2 * (size_t)L->cfg->queue_max)
    goto accept;
  if (L->pg_down) {
    reply_append(L, p, LINKAGE__V1__APPEND_REPLY__STATUS__BUSY, 0, ev->event_id, NULL,
                 "postgresql unavailable");
    return;
  }
  if (L->q_len >= (size_t)L->cfg->queue_max || L->q_bytes >= LEDGER_QUEUE_BYTES_MAX) {
    reply_append(L, p, LINKAGE__V1__APPEND_REPLY__STATUS__BUSY, 0, ev->event_id, NULL,
                 "ledger queue full");
    return;
  }
accept:;
  struct ledger_item *it = make_item(ev, p);
  if (!it) {
    reply_append(L, p, LINKAGE__V1__APPEND_REPLY__STATUS__BUSY, 0, ev->event_id, NULL,
                 "out of memory");
    return;
  }
  if (L->q_tail)
    L->q_tail->next = it;
  else
    L->q_head = it;
  L->q_tail = it;
  L->q_len++;
  L->q_bytes += it->len;
  if (ledger_held_add(&L->held, it) != LK_OK)
    lk_warn("cannot track a held event", "event_id=\"%s\" err=\"out of memory\"", it->event_id);
  kick(L);
}

/* Copies up to limit ring events from `from` into a reply. */
static void replay_from_ring(struct ledger *L, const struct ledger_peer *p, uint64_t from,
                             uint32_t limit) {
  size_t first = (size_t)(from - ring_at(L, 0)->position);
  size_t n = L->ring_count - first;
  if (n > limit) n = limit;
  Linkage__V1__Committed *msgs = calloc(n ? n : 1, sizeof *msgs);
  Linkage__V1__Committed **ptrs = calloc(n ? n : 1, sizeof *ptrs);
  if (!msgs || !ptrs) {
    free(msgs);
    free(ptrs);
    reply_replay(L, p, NULL, 0, "out of memory");
    return;
  }
  size_t k = 0, bytes = 0;
  for (; k < n; k++) {
    struct ledger_ring_entry *e = ring_at(L, first + k);
    if (k > 0 && bytes + e->len > LEDGER_REPLAY_BYTES_MAX) break;
    linkage__v1__committed__init(&msgs[k]);
    msgs[k].position = e->position;
    msgs[k].event.data = e->event;
    msgs[k].event.len = e->len;
    msgs[k].hash.data = e->hash;
    msgs[k].hash.len = LK_HASH_LEN;
    ptrs[k] = &msgs[k];
    bytes += e->len;
  }
  reply_replay(L, p, ptrs, k, NULL);
  free(msgs);
  free(ptrs);
}

static void on_replay(struct ledger *L, const struct ledger_peer *p,
                      const Linkage__V1__ReplayRequest *r) {
  uint64_t from = r->from_position ? r->from_position : 1;
  uint32_t limit = r->limit == 0 || r->limit > LEDGER_REPLAY_LIMIT ? LEDGER_REPLAY_LIMIT : r->limit;
  if (from > L->head) {
    reply_replay(L, p, NULL, 0, NULL);
    return;
  }
  if (L->ring_count && from >= ring_at(L, 0)->position &&
      ring_at(L, L->ring_count - 1)->position == L->head) {
    replay_from_ring(L, p, from, limit);
    return;
  }
  if (L->replay_q_len >= LEDGER_REPLAY_QUEUE) {
    reply_replay(L, p, NULL, 0, "ledger busy: too many replays waiting");
    return;
  }
  struct ledger_replay_req *q =
      &L->replay_q[(L->replay_q_start + L->replay_q_len++) % LEDGER_REPLAY_QUEUE];
  q->peer = *p;
  q->from = from;
  q->limit = limit;
  start_replay(L);
}

void ledger_on_request(struct lk_zsock *s, struct lk_frames *m, void *data) {
  struct ledger *L = data;
  int bi = lk_frames_body_index(m);
  if (bi < 0 || L->stopping) {
    lk_debug("request without body ignored", "frames=%d", m->count);
    return;
  }
  struct ledger_peer p = {.ident_len = zmq_msg_size(&m->frame[0]), .delimiter = bi == 2};
  if (p.ident_len > sizeof p.ident) return; /* libzmq never produces this */
  memcpy(p.ident, zmq_msg_data(&m->frame[0]), p.ident_len);

  Linkage__V1__LedgerRequest *req = linkage__v1__ledger_request__unpack(
      NULL, zmq_msg_size(&m->frame[bi]), zmq_msg_data(&m->frame[bi]));
  if (!req) {
    reply_append(L, &p, LINKAGE__V1__APPEND_REPLY__STATUS__INVALID, 0, NULL, NULL,
                 "malformed LedgerRequest");
    return;
  }
  p.request_id = req->request_id;
  switch (req->body_case) {
  case LINKAGE__V1__LEDGER_REQUEST__BODY_APPEND: on_append(L, &p, req->append); break;
  case LINKAGE__V1__LEDGER_REQUEST__BODY_REPLAY: on_replay(L, &p, req->replay); break;
  default:
    reply_append(L, &p, LINKAGE__V1__APPEND_REPLY__STATUS__INVALID, 0, NULL, NULL,
                 "LedgerRequest without append or replay");
    break;
  }
  linkage__v1__ledger_request__free_unpacked(req, NULL);
}

/* ---- replays from PostgreSQL ---- */

static void free_replay_rows(struct ledger *L) {
  for (size_t i = 0; i < L->replay_n; i++)
    free(L->replay_rows[i].event);
  free(L->replay_rows);
  L->replay_rows = NULL;
  L->replay_n = 0;
}

static void replay_work_cb(uv_work_t *w) {
  struct ledger *L = w->data;
  L->replay_rc = LK_OK;
  if (!ledger_pg_ok(L->pg_replay)) {
    ledger_pg_finish(&L->pg_replay);
    L->pg_replay = ledger_pg_connect(L->cfg->pg, L->replay_err, sizeof L->replay_err);
    if (!L->pg_replay) {
      L->replay_rc = LK_EIO;
      return;
    }
  }
  if (ledger_pg_replay(L->pg_replay, L->replay_cur.from, L->replay_cur.limit,
                       LEDGER_REPLAY_BYTES_MAX, &L->replay_rows, &L->replay_n, L->replay_err,
                       sizeof L->replay_err)) {
    L->replay_rc = LK_EIO;
    ledger_pg_finish(&L->pg_replay);
  }
}

static void replay_done_cb(uv_work_t *w, int status) {
  struct ledger *L = w->data;
  L->replay_busy = 0;
  if (L->stopping || status == UV_ECANCELED) {
    free_replay_rows(L);
    ledger_pg_finish(&L->pg_replay);
    return;
  }
  if (L->replay_rc != LK_OK) {
    lk_warn("replay failed", "from=%" PRIu64 " err=\"%s\"", L->replay_cur.from, L->replay_err);
    reply_replay(L, &L->replay_cur.peer, NULL, 0, "postgresql unavailable");
  } else {
    size_t n = L->replay_n;
    Linkage__V1__Committed *msgs = calloc(n ? n : 1, sizeof *msgs);
    Linkage__V1__Committed **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    if (!msgs || !ptrs) {
      reply_replay(L, &L->replay_cur.peer, NULL, 0, "out of memory");
    } else {
      for (size_t k = 0; k < n; k++) {
        linkage__v1__committed__init(&msgs[k]);
        msgs[k].position = L->replay_rows[k].position;
        msgs[k].event.data = L->replay_rows[k].event;
        msgs[k].event.len = L->replay_rows[k].len;
        msgs[k].hash.data = L->replay_rows[k].hash;
        msgs[k].hash.len = LK_HASH_LEN;
        ptrs[k] = &msgs[k];
      }
      reply_replay(L, &L->replay_cur.peer, ptrs, n, NULL);
    }
    free(msgs);
    free(ptrs);
  }
  free_replay_rows(L);
  start_replay(L);
}

static void start_replay(struct ledger *L) {
  if (L->stopping || L->replay_busy || L->replay_q_len == 0) return;
  L->replay_cur = L->replay_q[L->replay_q_start];
  L->replay_q_start = (L->replay_q_start + 1) % LEDGER_REPLAY_QUEUE;
  L->replay_q_len--;
  L->replay_busy = 1;
  L->replay_work.data = L;
  int rc = uv_queue_work(L->rt->loop, &L->replay_work, replay_work_cb, replay_done_cb);
  if (rc) {
    L->replay_busy = 0;
    reply_replay(L, &L->replay_cur.peer, NULL, 0, "cannot start replay");
  }
}

/* ---- lifecycle ---- */

int ledger_server_start(struct lk_runtime *rt) {
  struct ledger *L = rt->state;
  L->rt = rt;
  L->cfg = rt->config;
  L->backoff_ms = BACKOFF_MIN_MS;
  /* Timers first: stop() closes them even when start fails. */
  uv_timer_init(rt->loop, &L->heartbeat);
  uv_timer_init(rt->loop, &L->retry);
  L->heartbeat.data = L->retry.data = L;
  if (ledger_metrics_init(L) != LK_OK) return LK_EINVAL;
  if (lk_link_load(&L->link, L->cfg->link_curve, L->cfg->link_key_file) != LK_OK) return LK_EINVAL;
  struct lk_auth_opts ao = {.link = &L->link};
  if (lk_auth_start(&L->auth, rt->loop, rt->zctx, &ao) != LK_OK) return LK_EIO;
  L->auth_started = 1;
  if (ledger_batch_init(&L->batch, (size_t)L->cfg->batch_max)) goto fail;
  L->ring = calloc(LEDGER_RING_CAP, sizeof *L->ring);
  if (!L->ring) goto fail_batch;
  if (lk_map_init(&L->held, (size_t)L->cfg->queue_max)) goto fail_ring;
  uv_timer_start(&L->heartbeat, heartbeat_cb, (uint64_t)L->cfg->heartbeat_ms,
                 (uint64_t)L->cfg->heartbeat_ms);
  /* Connect, migrate and load the head on the writer; sockets open once that succeeded. */
  kick(L);
  return LK_OK;

fail_ring:
  free(L->ring);
  L->ring = NULL;
fail_batch:
  ledger_batch_close(&L->batch);
fail:
  lk_error("cannot start", "err=\"out of memory\"");
  return LK_ENOMEM;
}

void ledger_server_stop(struct lk_runtime *rt) {
  struct ledger *L = rt->state;
  L->stopping = 1;
  if (L->sockets_open) {
    lk_zsock_close(&L->router);
    lk_zsock_close(&L->pub);
    L->sockets_open = 0;
  }
  if (L->auth_started) lk_auth_stop(&L->auth);
  L->auth_started = 0;
  uv_close((uv_handle_t *)&L->heartbeat, NULL);
  uv_close((uv_handle_t *)&L->retry, NULL);
  while (L->q_head) {
    struct ledger_item *it = L->q_head;
    L->q_head = it->next;
    free(it);
  }
  L->q_tail = NULL;
  L->q_len = L->q_bytes = 0;
  /* A commit or replay in flight finishes on its thread; its done callback frees what it held
   * (nothing is acknowledged: a client retries and gets DUPLICATE or COMMITTED). */
  if (L->commit_busy) {
    uv_cancel((uv_req_t *)&L->commit_work);
  } else {
    free_batch_items(L);
    ledger_batch_close(&L->batch);
    ledger_pg_finish(&L->pg);
  }
  if (L->replay_busy)
    uv_cancel((uv_req_t *)&L->replay_work);
  else
    ledger_pg_finish(&L->pg_replay);
  ring_clear(L);
  free(L->ring);
  L->ring = NULL;
  /* A commit still in flight frees its items after this; it checks held.slots first. */
  lk_map_close(&L->held);
}

void ledger_server_status(struct lk_runtime *rt, char *buf, size_t len) {
  struct ledger *L = rt->state;
  snprintf(buf, len, "head=%" PRIu64 " queue=%zu pg=%s batches=%" PRIu64 " events=%" PRIu64,
           L->head, L->q_len + L->batch.count, L->pg_down || !L->ready ? "down" : "up", L->batches,
           L->events);
}
