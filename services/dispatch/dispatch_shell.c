/* The dispatch daemon's imperative shell. Duties:
 *  - fold the committed stream into dispatch_state (dispatch_state_apply);
 *  - once caught up, decide what each incident needs (dispatch_decide) after
 *    every folded event that concerns it, and send the decisions to the ledger;
 *    a decision stays in flight until its event is folded, and one the ledger
 *    does not commit is retried;
 *  - keep one libuv timer armed at the earliest deadline of the heap
 *    (acknowledge expiries, automatic closes);
 *  - the units' ROUTER: Hello registers a unit and (re)sends its open
 *    assignments, Heartbeat keeps it present, Answer becomes an event and is
 *    answered once committed, ListAssignments lists. An assignment goes out
 *    when its `dispatched` event is folded, that is committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch_shell.h"
#include "linkage/clock.h"
#include "linkage/error.h"
#include "linkage/log.h"
#include "linkage/metrics.h"
#include "linkage/v1/unit.pb-c.h"

#define LIST_MAX 500 /* assignments in one AssignmentList, newest first */

struct pending_decision {
  struct dispatch *ds;
  uint32_t slot;
  uint32_t deadline_kind; /* the deadline that caused it, to retry; 0 for none */
  uint64_t owner;
  Linkage__V1__EventType type;
  /* The reply may not name it: the client's own BUSY after a timeout carries no event id. */
  char event_id[2 * LK_ID_MAX];
};

struct pending_answer {
  struct dispatch *ds;
  uint64_t seq;
  char event_id[2 * LK_ID_MAX];
  size_t identity_len;
  uint8_t identity[DISPATCH_IDENTITY_MAX];
};

static void arm_timer(struct dispatch *ds);

static const char *svc_actor = "svc:dispatch";

static int64_t retry_us(const struct dispatch *ds) {
  return ((const struct dispatch_config *)ds->rt->config)->retry_ms * 1000;
}

static int64_t presence_us(const struct dispatch *ds) {
  return 3 * ((const struct dispatch_config *)ds->rt->config)->heartbeat_ms * 1000;
}

/* ---- units: presence and sending ---- */

static int unit_index(const struct dispatch *ds, const char *unit_id) {
  const struct lk_unit *u = lk_district_unit(ds->district, unit_id);
  return u ? (int)(u - ds->district->units) : -1;
}

/* A unit registered over CURVE stays so only while its key does: ZAP ran at the handshake, and
 * assignments pushed later must not reach a revoked key. */
static int conn_registered(const struct dispatch *ds, size_t i) {
  const struct dispatch_conn *c = &ds->conns[i];
  if (!c->registered) return 0;
  return !ds->auth.curve || lk_zap_still_admitted(ds->auth.ring, ds->district->units[i].id, c->key);
}

static int unit_present(const struct dispatch *ds, size_t i, int64_t mono) {
  const struct dispatch_conn *c = &ds->conns[i];
  return conn_registered(ds, i) && mono - c->heard_mono_us <= presence_us(ds);
}

static void refresh_status(struct dispatch *ds) {
  int64_t mono = lk_mono_us();
  for (size_t i = 0; i < ds->district->unit_count; i++) {
    ds->status[i].present = unit_present(ds, i, mono);
    ds->status[i].load = ds->state.unit_load ? ds->state.unit_load[i] : 0;
  }
}

/* Sends one DispatchMessage to a routing identity, behind the empty delimiter. */
static int send_message(struct dispatch *ds, const uint8_t *identity, size_t identity_len,
                        const Linkage__V1__DispatchMessage *msg) {
  uint8_t stack_buf[4096];
  size_t n = linkage__v1__dispatch_message__get_packed_size(msg);
  uint8_t *buf = n <= sizeof stack_buf ? stack_buf : malloc(n);
  if (!buf) return LK_ENOMEM;
  linkage__v1__dispatch_message__pack(msg, buf);
  const void *bufs[3] = {identity, "", buf};
  size_t lens[3] = {identity_len, 0, n};
  int rc = lk_zsock_sendv(&ds->units, bufs, lens, 3, ZMQ_DONTWAIT);
  if (buf != stack_buf) free(buf);
  return rc;
}

/* Sends to a registered unit; a unit whose connection is gone is no longer registered (it says
 * Hello again when it comes back, and gets its assignments then). */
static int send_to_unit(struct dispatch *ds, size_t i, const Linkage__V1__DispatchMessage *msg) {
  struct dispatch_conn *c = &ds->conns[i];
  if (!conn_registered(ds, i)) {
    if (c->registered)
      lk_info("unit key revoked; unit no longer registered", "unit=%s", ds->district->units[i].id);
    c->registered = 0;
    return LK_ENOENT;
  }
  int rc = send_message(ds, c->identity, c->identity_len, msg);
  if (rc == LK_ENOENT) {
    lk_info("unit disconnected", "unit=%s", ds->district->units[i].id);
    c->registered = 0;
  } else if (rc != LK_OK) {
    lk_warn("cannot send to unit; it gets its assignments on its next hello", "unit=%s err=\"%s\"",
            ds->district->units[i].id, lk_strerror(rc));
  }
  return rc;
}

static const char *assignment_state_name(uint8_t state) {
  switch (state) {
  case DA_DISPATCHED: return "dispatched";
  case DA_ACKNOWLEDGED: return "acknowledged";
  case DA_ON_SCENE: return "on_scene";
  case DA_RESOLVED: return "resolved";
  case DA_DECLINED: return "declined";
  default: return "unknown";
  }
}

static int assignment_open(const struct dispatch_assignment *a) {
  return a->state == DA_DISPATCHED || a->state == DA_ACKNOWLEDGED || a->state == DA_ON_SCENE;
}

/* Fills an Assignment message from the state; every pointer is borrowed from it. */
static void fill_assignment(const struct dispatch *ds, const struct dispatch_assignment *a,
                            Linkage__V1__Assignment *m, Linkage__V1__Location *loc) {
  const struct dispatch_incident *inc = &ds->state.incidents[a->incident];
  linkage__v1__assignment__init(m);
  linkage__v1__location__init(loc);
  loc->compound_id =
      inc->compound < ds->district->compound_count ? ds->district->compounds[inc->compound].id : "";
  loc->building = inc->building ? inc->building : "";
  loc->lat = inc->lat;
  loc->lon = inc->lon;
  m->assignment_id = a->id;
  m->incident_id = inc->id;
  m->role = (char *)a->role;
  m->lead = a->lead != 0;
  m->category = inc->category;
  m->kind = inc->kind ? inc->kind : "";
  m->severity = inc->severity;
  m->location = loc;
  m->description = inc->description ? inc->description : "";
  m->tier = inc->tier;
  m->acknowledge_by_us = a->acknowledge_by_us;
  m->arrive_by_us = a->arrive_by_us;
  m->resolve_by_us = a->resolve_by_us;
  m->state = (char *)assignment_state_name(a->state);
  m->exercise = inc->exercise != 0;
}

static int unit_of_assignment(const struct dispatch *ds, const struct dispatch_assignment *a) {
  return a->unit_id ? unit_index(ds, a->unit_id) : -1;
}

static void send_assignment(struct dispatch *ds, uint32_t index) {
  const struct dispatch_assignment *a = &ds->state.assignments[index];
  int u = unit_of_assignment(ds, a);
  if (u < 0 || !ds->conns[u].registered) return; /* sent on its next Hello */
  Linkage__V1__Assignment m;
  Linkage__V1__Location loc;
  fill_assignment(ds, a, &m, &loc);
  Linkage__V1__DispatchMessage msg = LINKAGE__V1__DISPATCH_MESSAGE__INIT;
  msg.body_case = LINKAGE__V1__DISPATCH_MESSAGE__BODY_ASSIGNMENT;
  msg.assignment = &m;
  if (send_to_unit(ds, (size_t)u, &msg) == LK_OK) {
    ds->assignments_sent++;
    lk_debug("assignment sent", "assignment=%s unit=%s", a->id, a->unit_id);
  }
}

/* Every open assignment of one unit (u >= 0) or of every registered unit (u < 0). Units drop
 * repeats by assignment id. */
static void resend_open(struct dispatch *ds, int u) {
  for (uint32_t i = 1; i < ds->state.assignment_count; i++) {
    const struct dispatch_assignment *a = &ds->state.assignments[i];
    if (!assignment_open(a)) continue;
    if (u >= 0 && (!a->unit_id || strcmp(a->unit_id, ds->district->units[u].id) != 0)) continue;
    send_assignment(ds, i);
  }
}

/* ---- decisions out ---- */

static void inflight_grow(struct dispatch *ds, uint32_t slot) {
  if (slot < ds->inflight_cap) return;
  uint32_t cap = ds->inflight_cap ? ds->inflight_cap : 1024;
  while (cap <= slot)
    cap *= 2;
  uint32_t *p = realloc(ds->inflight_count, cap * sizeof *p);
  if (!p) return; /* callers check inflight_cap */
  memset(p + ds->inflight_cap, 0, (cap - ds->inflight_cap) * sizeof *p);
  ds->inflight_count = p;
  ds->inflight_cap = cap;
}

static uint32_t inflight_of(const struct dispatch *ds, uint32_t slot) {
  return slot < ds->inflight_cap ? ds->inflight_count[slot] : 0;
}

/* A decision of ours is no longer waiting for the ledger (folded, refused, or to retry). */
static void inflight_release(struct dispatch *ds, const char *event_id) {
  uint64_t slot;
  if (!lk_map_get(&ds->inflight, event_id, &slot)) return;
  lk_map_del(&ds->inflight, event_id);
  if (slot >= ds->inflight_cap || ds->inflight_count[slot] == 0) return;
  if (--ds->inflight_count[slot] == 0 && slot < ds->state.count)
    ds->state.incidents[slot].flags &= ~(uint32_t)DI_INFLIGHT;
}

static void rearm_deadline(struct dispatch *ds, uint32_t kind, uint64_t owner, int64_t at) {
  struct lk_deadline d = {.at_us = at, .owner = owner, .kind = kind};
  dispatch_state_rearm(&ds->state, &d, at);
}

static void decision_done_cb(void *data, const Linkage__V1__AppendReply *reply) {
  struct pending_decision *p = data;
  struct dispatch *ds = p->ds;
  int committed = reply->status == LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED;
  /* COMMITTED: the decision stays in flight until its event is folded (the reply and the stream
   * are separate sockets; in between, the state does not show it yet). */
  if (!committed) inflight_release(ds, p->event_id);
  if (committed) {
    switch (p->type) {
    case LINKAGE__V1__EVENT_TYPE__DISPATCHED: ds->dispatched++; break;
    case LINKAGE__V1__EVENT_TYPE__UNIT_DECLINED: ds->expired++; break;
    case LINKAGE__V1__EVENT_TYPE__NO_UNIT_AVAILABLE: ds->no_unit++; break;
    case LINKAGE__V1__EVENT_TYPE__RESOLVED: ds->resolved++; break;
    case LINKAGE__V1__EVENT_TYPE__CLOSED: ds->closed++; break;
    default: break;
    }
  } else if (reply->status != LINKAGE__V1__APPEND_REPLY__STATUS__DUPLICATE) {
    lk_warn("decision not committed; will retry", "event_id=%s status=%d err=\"%s\"", p->event_id,
            (int)reply->status, reply->error);
    ds->decisions_retried++;
    int64_t at = lk_now_us() + retry_us(ds);
    if (p->deadline_kind) {
      rearm_deadline(ds, p->deadline_kind, p->owner, at);
      arm_timer(ds);
    } else if (!ds->resweep_at) {
      ds->resweep_at = lk_mono_us() + retry_us(ds);
    }
  }
  free(p);
}

static int emit(struct dispatch *ds, const struct dispatch_decision *d, uint32_t deadline_kind,
                uint64_t owner) {
  uint64_t seen;
  if (lk_map_get(&ds->inflight, d->event_id, &seen)) return LK_OK; /* already on its way */
  inflight_grow(ds, d->incident);
  if (d->incident >= ds->inflight_cap) return LK_ENOMEM;
  struct dispatch_event_storage st;
  Linkage__V1__Event ev;
  dispatch_event_build(d, svc_actor, lk_now_us(), &ev, &st);
  struct pending_decision *p = calloc(1, sizeof *p);
  if (!p) return LK_ENOMEM;
  *p = (struct pending_decision){ds, d->incident, deadline_kind, owner, d->type, ""};
  snprintf(p->event_id, sizeof p->event_id, "%s", d->event_id);
  if (lk_map_put(&ds->inflight, d->event_id, d->incident) != LK_OK) {
    free(p);
    return LK_ENOMEM;
  }
  int rc = lk_ledger_append(ds->ledger, &ev, decision_done_cb, p);
  if (rc != LK_OK) {
    lk_map_del(&ds->inflight, d->event_id);
    free(p);
    lk_warn("cannot send decision to the ledger", "event_id=%s err=\"%s\"", d->event_id,
            lk_strerror(rc));
    return rc;
  }
  ds->inflight_count[d->incident]++;
  if (d->incident && d->incident < ds->state.count)
    ds->state.incidents[d->incident].flags |= DI_INFLIGHT;
  lk_debug("decision sent", "event_id=%s", d->event_id);
  return LK_OK;
}

/* What one incident needs now. Not while decisions of ours about it wait for the ledger: they
 * would be decided again on a state that does not show them yet. */
static int decide(struct dispatch *ds, uint32_t slot, int64_t now) {
  if (!slot || slot >= ds->state.count || inflight_of(ds, slot)) return LK_OK;
  struct dispatch_decision out[DISPATCH_MAX_ROLES + 4];
  refresh_status(ds);
  size_t n = dispatch_decide(&ds->state, slot, ds->status, now, out, sizeof out / sizeof out[0]);
  for (size_t i = 0; i < n; i++) {
    int rc = emit(ds, &out[i], 0, 0);
    if (rc != LK_OK) {
      if (!ds->resweep_at) ds->resweep_at = lk_mono_us() + retry_us(ds);
      return rc;
    }
  }
  return LK_OK;
}

/* ---- deadlines ---- */

/* Fires the deadlines due by now, at most a budget per loop turn so that a restart after a long
 * outage (thousands due at once) does not starve the sockets; returns 1 if more are due. */
static int fire_due(struct dispatch *ds, int64_t now) {
  struct lk_deadline d;
  const struct lk_deadline *top;
  int budget = 2000;
  while ((top = lk_heap_peek(&ds->state.deadlines)) && top->at_us <= now) {
    if (budget-- == 0) return 1;
    lk_heap_pop(&ds->state.deadlines, &d);
    struct dispatch_decision dec;
    int due = 0;
    /* The popped handle may be reused at once: forget it before anything is pushed. */
    dispatch_state_fired(&ds->state, &d);
    if (d.kind == DISPATCH_DEADLINE_ACKNOWLEDGE)
      due = dispatch_decide_expiry(&ds->state, (uint32_t)d.owner, now, &dec);
    else if (d.kind == DISPATCH_DEADLINE_CLOSE)
      due = dispatch_decide_autoclose(&ds->state, (uint32_t)d.owner, now, &dec);
    if (due && emit(ds, &dec, d.kind, d.owner) != LK_OK)
      rearm_deadline(ds, d.kind, d.owner, now + retry_us(ds));
  }
  return 0;
}

static void timer_cb(uv_timer_t *t) {
  struct dispatch *ds = t->data;
  if (fire_due(ds, lk_now_us()))
    uv_timer_start(&ds->timer, timer_cb, 0, 0); /* more are due: go on after the sockets */
  else
    arm_timer(ds);
}

static void arm_timer(struct dispatch *ds) {
  if (!ds->timer_open || ds->caught_up < 2) return;
  const struct lk_deadline *top = lk_heap_peek(&ds->state.deadlines);
  if (!top) {
    uv_timer_stop(&ds->timer);
    return;
  }
  int64_t wait_us = top->at_us - lk_now_us();
  /* Round up to the next millisecond so a deadline never fires early. */
  uint64_t ms = wait_us <= 0 ? 0 : (uint64_t)((wait_us + 999) / 1000);
  uv_timer_start(&ds->timer, timer_cb, ms, 0);
}

/* ---- the committed stream ---- */

static void on_committed(void *data, uint64_t position, const Linkage__V1__Event *ev,
                         const uint8_t *bytes, size_t len) {
  struct dispatch *ds = data;
  (void)bytes;
  (void)len;
  uint32_t slot = dispatch_state_apply(&ds->state, position, ev);
  inflight_release(ds, ev->event_id);
  if (ds->caught_up < 2) return; /* the catch-up sweep decides and sends */
  if (ev->body_case == LINKAGE__V1__EVENT__BODY_DISPATCHED && ev->dispatched) {
    uint64_t index;
    if (lk_map_get(&ds->state.assignment_by_id, ev->dispatched->assignment_id, &index))
      send_assignment(ds, (uint32_t)index);
  }
  if (slot) decide(ds, slot, lk_now_us());
  arm_timer(ds);
}

/* After catching up: decide on every incident (the events folded while we were away ask for
 * decisions; each decision's id is derived from the state, so one already committed is a
 * duplicate), send every open assignment to the units that said Hello meanwhile, then let the
 * timer fire what passed while we were down. */
static void sweep(struct dispatch *ds) {
  int64_t now = lk_now_us();
  int first = ds->caught_up < 2;
  for (uint32_t slot = 1; slot < ds->state.count; slot++)
    if (decide(ds, slot, now) != LK_OK) break; /* the ledger client is full: retried later */
  ds->caught_up = 2;
  if (first) resend_open(ds, -1);
  arm_timer(ds);
}

/* ---- the units' socket ---- */

static void reply_answer(struct dispatch *ds, const uint8_t *identity, size_t identity_len,
                         uint64_t seq, Linkage__V1__AnswerReply__Status status,
                         const char *event_id, const char *error) {
  Linkage__V1__AnswerReply rep = LINKAGE__V1__ANSWER_REPLY__INIT;
  rep.seq = seq;
  rep.status = status;
  rep.event_id = (char *)(event_id ? event_id : "");
  rep.error = (char *)(error ? error : "");
  Linkage__V1__DispatchMessage msg = LINKAGE__V1__DISPATCH_MESSAGE__INIT;
  msg.body_case = LINKAGE__V1__DISPATCH_MESSAGE__BODY_ANSWER_REPLY;
  msg.answer_reply = &rep;
  send_message(ds, identity, identity_len, &msg);
}

static void reply_welcome(struct dispatch *ds, const uint8_t *identity, size_t identity_len,
                          const char *unit_id, uint32_t heartbeat_ms, const char *error) {
  Linkage__V1__Welcome w = LINKAGE__V1__WELCOME__INIT;
  w.unit_id = (char *)unit_id;
  w.heartbeat_ms = heartbeat_ms;
  w.error = (char *)(error ? error : "");
  Linkage__V1__DispatchMessage msg = LINKAGE__V1__DISPATCH_MESSAGE__INIT;
  msg.body_case = LINKAGE__V1__DISPATCH_MESSAGE__BODY_WELCOME;
  msg.welcome = &w;
  send_message(ds, identity, identity_len, &msg);
}

/* Refuses a unit's message in the shape it waits for: an answer an AnswerReply, anything else a
 * refused Welcome (which also tells a unit dispatch has forgotten to say Hello again). */
static void refuse_message(struct dispatch *ds, const uint8_t *identity, size_t identity_len,
                           const Linkage__V1__UnitMessage *um, const char *why) {
  if (um->body_case == LINKAGE__V1__UNIT_MESSAGE__BODY_ANSWER) {
    ds->answers_rejected++;
    reply_answer(ds, identity, identity_len, um->seq, LINKAGE__V1__ANSWER_REPLY__STATUS__REJECTED,
                 NULL, why);
  } else {
    reply_welcome(ds, identity, identity_len, um->unit_id, 0, why);
  }
}

static void answer_done_cb(void *data, const Linkage__V1__AppendReply *reply) {
  struct pending_answer *pa = data;
  struct dispatch *ds = pa->ds;
  if (reply->status == LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED ||
      reply->status == LINKAGE__V1__APPEND_REPLY__STATUS__DUPLICATE) {
    ds->answers_ok++;
    reply_answer(ds, pa->identity, pa->identity_len, pa->seq, LINKAGE__V1__ANSWER_REPLY__STATUS__OK,
                 pa->event_id, NULL);
  } else if (reply->status == LINKAGE__V1__APPEND_REPLY__STATUS__INVALID) {
    ds->answers_rejected++;
    reply_answer(ds, pa->identity, pa->identity_len, pa->seq,
                 LINKAGE__V1__ANSWER_REPLY__STATUS__REJECTED, pa->event_id, reply->error);
  } else {
    ds->answers_busy++;
    reply_answer(ds, pa->identity, pa->identity_len, pa->seq,
                 LINKAGE__V1__ANSWER_REPLY__STATUS__BUSY, pa->event_id,
                 reply->error[0] ? reply->error : "the ledger did not commit in time");
  }
  free(pa);
}

/* Appends an answer's event (decided by dispatch_protocol_decide) and answers after commit. */
static void on_answer(struct dispatch *ds, const uint8_t *identity, size_t identity_len,
                      const Linkage__V1__UnitMessage *um, const struct dispatch_decision *d,
                      int64_t now) {
  char actor[LK_ID_MAX + 8];
  snprintf(actor, sizeof actor, "unit:%s", um->unit_id);
  struct dispatch_event_storage st;
  Linkage__V1__Event ev;
  dispatch_event_build(d, actor, now, &ev, &st);
  struct pending_answer *pa = calloc(1, sizeof *pa);
  if (!pa) return;
  pa->ds = ds;
  pa->seq = um->seq;
  snprintf(pa->event_id, sizeof pa->event_id, "%s", d->event_id);
  pa->identity_len = identity_len;
  memcpy(pa->identity, identity, identity_len);
  if (lk_ledger_append(ds->ledger, &ev, answer_done_cb, pa) != LK_OK) {
    ds->answers_busy++;
    reply_answer(ds, identity, identity_len, um->seq, LINKAGE__V1__ANSWER_REPLY__STATUS__BUSY,
                 d->event_id, "too many requests waiting for the ledger; send it again");
    free(pa);
  }
}

/* A one-shot console's Hello: its unit id (and key) are good; it gets no session and no
 * assignments, and the unit's session, if any, is left as it is. */
static void on_greet(struct dispatch *ds, const uint8_t *identity, size_t identity_len,
                     const Linkage__V1__UnitMessage *um) {
  char q[200];
  lk_debug("one-shot console", "unit=%s software=\"%s\"", um->unit_id,
           lk_log_quote(q, sizeof q, um->hello->software));
  reply_welcome(ds, identity, identity_len, um->unit_id, 0, NULL);
}

static void on_hello(struct dispatch *ds, const uint8_t *identity, size_t identity_len,
                     const Linkage__V1__UnitMessage *um, const char *key) {
  char q[200];
  int u = unit_index(ds, um->unit_id);
  if (u < 0) return; /* the protocol welcomes only units of the district */
  struct dispatch_conn *c = &ds->conns[u];
  c->identity_len = identity_len;
  memcpy(c->identity, identity, identity_len);
  c->registered = 1;
  snprintf(c->key, sizeof c->key, "%s", key ? key : "");
  c->heard_mono_us = lk_mono_us();
  lk_info("unit connected", "unit=%s software=\"%s\"", um->unit_id,
          lk_log_quote(q, sizeof q, um->hello->software));
  reply_welcome(ds, identity, identity_len, um->unit_id,
                (uint32_t)((struct dispatch_config *)ds->rt->config)->heartbeat_ms, NULL);
  /* Before catching up the state is incomplete; the catch-up sweep sends then. */
  if (ds->caught_up == 2) resend_open(ds, u);
}

/* A unit's assignments, newest first, to the connection that asked: its session or a one-shot
 * console beside it. */
static void on_list(struct dispatch *ds, const uint8_t *identity, size_t identity_len, int u) {
  const char *unit_id = ds->district->units[u].id;
  Linkage__V1__Assignment *items = calloc(LIST_MAX, sizeof *items);
  Linkage__V1__Location *locs = calloc(LIST_MAX, sizeof *locs);
  Linkage__V1__Assignment **ptrs = calloc(LIST_MAX, sizeof *ptrs);
  size_t n = 0;
  if (!items || !locs || !ptrs) goto done;
  for (uint32_t i = ds->state.assignment_count; i-- > 1 && n < LIST_MAX;) {
    const struct dispatch_assignment *a = &ds->state.assignments[i];
    if (!a->unit_id || strcmp(a->unit_id, unit_id) != 0) continue;
    fill_assignment(ds, a, &items[n], &locs[n]);
    ptrs[n] = &items[n];
    n++;
  }
  Linkage__V1__AssignmentList list = LINKAGE__V1__ASSIGNMENT_LIST__INIT;
  list.n_assignments = n;
  list.assignments = ptrs;
  Linkage__V1__DispatchMessage msg = LINKAGE__V1__DISPATCH_MESSAGE__INIT;
  msg.body_case = LINKAGE__V1__DISPATCH_MESSAGE__BODY_ASSIGNMENTS;
  msg.assignments = &list;
  int rc = send_message(ds, identity, identity_len, &msg);
  if (rc != LK_OK)
    lk_info("cannot send a unit its assignment list", "unit=%s err=\"%s\"", unit_id,
            lk_strerror(rc));
done:
  free(items);
  free(locs);
  free(ptrs);
}

static void reject_message(struct dispatch *ds, const uint8_t *identity, size_t identity_len,
                           uint64_t seq, const char *why) {
  char q[300];
  ds->bad_messages++;
  lk_info("unit message refused", "err=\"%s\"", lk_log_quote(q, sizeof q, why));
  reply_answer(ds, identity, identity_len, seq, LINKAGE__V1__ANSWER_REPLY__STATUS__REJECTED, NULL,
               why);
}

static void on_unit_message(struct lk_zsock *s, struct lk_frames *m, void *data) {
  struct dispatch *ds = data;
  (void)s;
  size_t identity_len = zmq_msg_size(&m->frame[0]);
  const uint8_t *identity = zmq_msg_data(&m->frame[0]);
  if (identity_len == 0 || identity_len > DISPATCH_IDENTITY_MAX) return;
  char key_unit[LK_ID_MAX];
  if (lk_auth_check(&ds->auth, m, key_unit) != LK_OK) {
    /* ZAP ran at the handshake; the key has been revoked since. */
    reject_message(ds, identity, identity_len, 0, "key revoked");
    return;
  }
  if (m->count != 3 || m->truncated || zmq_msg_size(&m->frame[1]) != 0) {
    reject_message(ds, identity, identity_len, 0,
                   "malformed message: expected an empty delimiter frame and one frame holding "
                   "a UnitMessage");
    return;
  }
  Linkage__V1__UnitMessage *um = linkage__v1__unit_message__unpack(NULL, zmq_msg_size(&m->frame[2]),
                                                                   zmq_msg_data(&m->frame[2]));
  if (!um) {
    reject_message(ds, identity, identity_len, 0,
                   "malformed UnitMessage: not a valid protobuf message");
    return;
  }
  int u = unit_index(ds, um->unit_id);
  struct dispatch_conn *c = u >= 0 ? &ds->conns[u] : NULL;
  struct dispatch_conn_view view = {
      .known_unit = u >= 0,
      .registered = c && c->registered,
      .same_connection =
          c && c->identity_len == identity_len && memcmp(c->identity, identity, identity_len) == 0,
      /* With CURVE on, a unit speaks only as the unit its key is tied to. */
      .key_unit = ds->auth.curve ? key_unit : NULL,
      .catching_up = ds->caught_up < 2,
  };
  struct dispatch_decision d;
  char why[512], q[600];
  int64_t now = lk_now_us();
  enum dispatch_act act = dispatch_protocol_decide(&ds->state, um, &view, now, &d, why, sizeof why);
  if (!c && act != DISPATCH_ACT_REJECT && act != DISPATCH_ACT_REFUSE) goto done; /* cannot be */
  switch (act) {
  case DISPATCH_ACT_REJECT: reject_message(ds, identity, identity_len, um->seq, why); break;
  case DISPATCH_ACT_REFUSE:
    if (um->body_case == LINKAGE__V1__UNIT_MESSAGE__BODY_ANSWER)
      lk_info("answer rejected", "unit=%s assignment=%s kind=%d err=\"%s\"", um->unit_id,
              um->answer->assignment_id, (int)um->answer->kind, lk_log_quote(q, sizeof q, why));
    else
      lk_info("unit message refused", "unit=\"%s\" err=\"%s\"",
              lk_log_quote(q, sizeof q, um->unit_id), why);
    refuse_message(ds, identity, identity_len, um, why);
    break;
  case DISPATCH_ACT_HELLO:
    on_hello(ds, identity, identity_len, um, lk_auth_msg_key(&ds->auth, m));
    break;
  case DISPATCH_ACT_GREET: on_greet(ds, identity, identity_len, um); break;
  case DISPATCH_ACT_HEARTBEAT: c->heard_mono_us = lk_mono_us(); break;
  case DISPATCH_ACT_LIST:
    /* A one-shot console's message says nothing of whether the unit's session is alive. */
    if (!um->one_shot) c->heard_mono_us = lk_mono_us();
    on_list(ds, identity, identity_len, u);
    break;
  case DISPATCH_ACT_ANSWER:
    if (!um->one_shot) c->heard_mono_us = lk_mono_us();
    on_answer(ds, identity, identity_len, um, &d, now);
    break;
  case DISPATCH_ACT_BUSY:
    ds->answers_busy++;
    reply_answer(ds, identity, identity_len, um->seq, LINKAGE__V1__ANSWER_REPLY__STATUS__BUSY, NULL,
                 why);
    break;
  }
done:
  linkage__v1__unit_message__free_unpacked(um, NULL);
}

/* ---- lifecycle ---- */

int dispatch_start(struct lk_runtime *rt) {
  struct dispatch *ds = rt->state;
  struct dispatch_config *cfg = rt->config;
  char err[512];
  ds->rt = rt;
  ds->district = lk_district_load(cfg->district, err, sizeof err);
  if (!ds->district) {
    lk_error("cannot load the district", "err=\"%s\"", err);
    return LK_EINVAL;
  }
  char gap[256];
  size_t gaps = lk_district_gaps(ds->district, gap, sizeof gap);
  if (gaps)
    lk_warn("the district has roles nobody is on duty for at some hours; linkagectl plan check "
            "lists them",
            "gaps=%zu first=\"%s\"", gaps, gap);
  struct dispatch_policy policy = {
      .time_scale = cfg->time_scale,
      .verify_window_us = (int64_t)((double)cfg->verify_window_min * 60e6 / cfg->time_scale),
      .utc_offset_min = (int)cfg->utc_offset_min,
  };
  if (dispatch_state_init(&ds->state, ds->district, &policy) != LK_OK) goto fail;
  ds->state_open = 1;
  size_t units = ds->district->unit_count ? ds->district->unit_count : 1;
  ds->conns = calloc(units, sizeof *ds->conns);
  ds->status = calloc(units, sizeof *ds->status);
  if (!ds->conns || !ds->status) goto fail;
  if (lk_map_init(&ds->inflight, 1024) != LK_OK) goto fail;
  inflight_grow(ds, 1);

  if (lk_link_load(&ds->link, cfg->link_curve, cfg->link_key_file) != LK_OK) goto fail;
  struct lk_ledger_client_opts lo = {.endpoint = cfg->ledger_endpoint, .link = &ds->link};
  ds->ledger = lk_ledger_client_new(rt->loop, rt->zctx, &lo);
  if (!ds->ledger) goto fail;
  struct lk_stream_opts so = {
      .pub_endpoint = cfg->ledger_stream, .client = ds->ledger, .link = &ds->link};
  ds->stream = lk_stream_new(rt->loop, rt->zctx, &so, on_committed, ds);
  if (!ds->stream) goto fail;
  struct lk_zsock_opts zo = {.linger_ms = 200, .maxmsg = 64 * 1024, .router_mandatory = 1};
  struct lk_auth_opts ao = {
      .kind = "unit",
      .pg = cfg->pg,
      .refresh_ms = (unsigned)cfg->keys_refresh_ms,
      .endpoint = cfg->dispatch_endpoint,
      .curve = cfg->curve,
      .secret_file = cfg->curve_secret_file,
      .link = &ds->link,
  };
  if (lk_auth_start(&ds->auth, rt->loop, rt->zctx, &ao) != LK_OK) goto fail;
  lk_auth_socket_opts(&ds->auth, &zo);
  if (lk_zsock_open(&ds->units, rt->loop, rt->zctx, ZMQ_ROUTER, cfg->dispatch_endpoint, &zo,
                    on_unit_message, ds, "units") != LK_OK)
    goto fail;
  ds->units_open = 1;
  uv_timer_init(rt->loop, &ds->timer);
  ds->timer.data = ds;
  ds->timer_open = 1;
  lk_info("dispatching", "units_endpoint=\"%s\" time_scale=%g units=%zu heartbeat_ms=%ld",
          cfg->dispatch_endpoint, cfg->time_scale, ds->district->unit_count, cfg->heartbeat_ms);
  return LK_OK;

fail:
  lk_error("dispatch start failed", NULL);
  return LK_EIO;
}

void dispatch_tick(struct lk_runtime *rt, int64_t now_us) {
  struct dispatch *ds = rt->state;
  (void)now_us;
  lk_ledger_client_tick(ds->ledger, lk_mono_us());
  /* Decisions wait until the state has caught up with the ledger: deciding on a half-folded
   * state would call units whose calls are already committed further on. */
  if (ds->caught_up == 0 && lk_stream_caught_up(ds->stream)) {
    lk_info("caught up with the ledger", "position=%llu incidents=%u assignments=%u deadlines=%zu",
            (unsigned long long)ds->state.position, ds->state.count - 1,
            ds->state.assignment_count - 1, ds->state.deadlines.count);
    sweep(ds);
  } else if (ds->resweep_at && lk_mono_us() >= ds->resweep_at) {
    ds->resweep_at = 0;
    sweep(ds);
  }
}

void dispatch_status(struct lk_runtime *rt, char *buf, size_t len) {
  struct dispatch *ds = rt->state;
  unsigned open = 0, present = 0;
  int64_t mono = lk_mono_us();
  for (size_t i = 0; i < ds->district->unit_count; i++) {
    if (ds->state.unit_load) open += ds->state.unit_load[i];
    present += (unsigned)unit_present(ds, i, mono);
  }
  snprintf(buf, len,
           "position=%llu live=%d incidents=%u assignments=%u assignments_open=%u "
           "units_present=%u dispatched=%llu expired=%llu no_unit=%llu resolved=%llu "
           "closed=%llu answers_ok=%llu answers_rejected=%llu answers_busy=%llu "
           "assignments_sent=%llu bad_messages=%llu",
           (unsigned long long)ds->state.position, ds->caught_up == 2, ds->state.count - 1,
           ds->state.assignment_count - 1, open, present, (unsigned long long)ds->dispatched,
           (unsigned long long)ds->expired, (unsigned long long)ds->no_unit,
           (unsigned long long)ds->resolved, (unsigned long long)ds->closed,
           (unsigned long long)ds->answers_ok, (unsigned long long)ds->answers_rejected,
           (unsigned long long)ds->answers_busy, (unsigned long long)ds->assignments_sent,
           (unsigned long long)ds->bad_messages);
  size_t n = strlen(buf);
  if (ds->auth.curve && n < len)
    snprintf(buf + n, len - n, " curve=1 keys=%zu zap_denied=%llu revoked_refused=%llu",
             ds->auth.ring ? ds->auth.ring->n : (size_t)0, (unsigned long long)ds->auth.zap_denied,
             (unsigned long long)ds->auth.revoked_refused);
}

/* The status line's figures for Prometheus: calls made and how units answer, who is there to
 * answer (present: a session heard within three heartbeats), and what is still open. */
void dispatch_metrics(struct lk_runtime *rt, struct lk_metrics_writer *w) {
  struct dispatch *ds = rt->state;
  double open = 0, present = 0;
  int64_t mono = lk_mono_us();
  size_t units = ds->district ? ds->district->unit_count : 0;
  for (size_t i = 0; i < units; i++) {
    if (ds->state.unit_load) open += ds->state.unit_load[i];
    present += unit_present(ds, i, mono);
  }
  lk_metrics_single(w, "linkage_dispatch_dispatches_total", LK_METRIC_COUNTER,
                    "units called to incidents (dispatched events this process sent)",
                    (double)ds->dispatched);
  lk_metrics_single(w, "linkage_dispatch_expired_total", LK_METRIC_COUNTER,
                    "assignments unanswered at their acknowledge deadline, declined for the unit",
                    (double)ds->expired);
  lk_metrics_single(w, "linkage_dispatch_no_unit_total", LK_METRIC_COUNTER,
                    "roles for which nobody was left to call (the router escalates)",
                    (double)ds->no_unit);
  lk_metrics_family(w, "linkage_dispatch_incidents_ended_total", LK_METRIC_COUNTER,
                    "incidents this process resolved or closed, by how they ended");
  lk_metrics_sample(w, (double)ds->resolved, "state", "resolved");
  lk_metrics_sample(w, (double)ds->closed, "state", "closed");
  lk_metrics_family(w, "linkage_dispatch_answers_total", LK_METRIC_COUNTER,
                    "units' answers, by the reply: ok (committed), rejected, busy (send again)");
  lk_metrics_sample(w, (double)ds->answers_ok, "result", "ok");
  lk_metrics_sample(w, (double)ds->answers_rejected, "result", "rejected");
  lk_metrics_sample(w, (double)ds->answers_busy, "result", "busy");
  lk_metrics_single(w, "linkage_dispatch_assignments_sent_total", LK_METRIC_COUNTER,
                    "assignment messages sent to units (repeats on Hello included)",
                    (double)ds->assignments_sent);
  lk_metrics_single(w, "linkage_dispatch_bad_messages_total", LK_METRIC_COUNTER,
                    "unit messages that did not decode", (double)ds->bad_messages);
  lk_metrics_family(w, "linkage_dispatch_units", LK_METRIC_GAUGE,
                    "the district's responder units by presence: present (a session heard "
                    "within three heartbeats) or absent");
  lk_metrics_sample(w, present, "presence", "present");
  lk_metrics_sample(w, (double)units - present, "presence", "absent");
  lk_metrics_single(w, "linkage_dispatch_open_assignments", LK_METRIC_GAUGE,
                    "assignments of open incidents that units still work on (their load)", open);
  lk_metrics_single(w, "linkage_dispatch_position", LK_METRIC_GAUGE,
                    "ledger position of the last event folded", (double)ds->state.position);
  lk_metrics_single(w, "linkage_dispatch_caught_up", LK_METRIC_GAUGE,
                    "1 once the state has caught up with the ledger and decisions run",
                    ds->caught_up == 2);
  lk_auth_metrics(w, "linkage_dispatch", &ds->auth);
}

void dispatch_stop(struct lk_runtime *rt) {
  struct dispatch *ds = rt->state;
  if (ds->timer_open) uv_close((uv_handle_t *)&ds->timer, NULL);
  if (ds->units_open) lk_zsock_close(&ds->units);
  lk_auth_stop(&ds->auth);
  lk_stream_destroy(&ds->stream);
  lk_ledger_client_destroy(&ds->ledger);
  lk_map_close(&ds->inflight);
  free(ds->inflight_count);
  free(ds->conns);
  free(ds->status);
  if (ds->state_open) dispatch_state_close(&ds->state);
  lk_district_destroy(&ds->district);
}
