/* The router's imperative shell. Duties:
 *  - fold the committed stream into router_state (router_state_apply);
 *  - once caught up, decide on what each new event asks for and send the
 *    decisions to the ledger; a decision the ledger does not commit is retried;
 *  - keep one libuv timer armed at the earliest deadline of the heap;
 *  - answer coordinators' commands once their events are committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkage/clock.h"
#include "linkage/error.h"
#include "linkage/log.h"
#include "router_shell.h"

struct pending_decision {
  struct router *r;
  uint32_t slot;
  uint32_t deadline_kind; /* the deadline that caused it, to retry; 0 for none */
  int64_t due_us;
};

struct pending_command {
  struct router *r;
  char command_id[72];
  char incident_id[LK_ID_MAX];
  size_t identity_len;
  uint8_t identity[256];
  int delimiter; /* the client sent an empty delimiter frame (REQ, or a polite DEALER) */
};

static void arm_timer(struct router *r);

static const char *svc_actor = "svc:router";

/* ---- decisions out ---- */

static void decision_done_cb(void *data, const Linkage__V1__AppendReply *reply) {
  struct pending_decision *p = data;
  struct router *r = p->r;
  /* COMMITTED: the decision stays in flight until its event is folded (the reply and the
   * stream are separate sockets; in between, the state does not show it yet). */
  if (p->slot && p->slot < r->state.count &&
      reply->status != LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED)
    r->state.incidents[p->slot].flags &= ~(uint32_t)RI_INFLIGHT;
  if (reply->status != LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED &&
      reply->status != LINKAGE__V1__APPEND_REPLY__STATUS__DUPLICATE) {
    lk_warn("decision not committed; will retry", "event_id=%s status=%d err=\"%s\"",
            reply->event_id, (int)reply->status, reply->error);
    r->decisions_retried++;
    int64_t at = lk_now_us() + (int64_t)((struct router_config *)r->rt->config)->retry_ms * 1000;
    if (p->deadline_kind)
      router_state_rearm(&r->state, p->slot, (enum router_deadline_kind)p->deadline_kind, at);
    else if (p->slot)
      /* A routing or merge decision: the next sweep in router_tick decides it again. */
      r->resweep = 1;
    arm_timer(r);
  }
  free(p);
}

/* The deadline that fired decides the cause; an escalation decided without one comes from a
 * raised severity that starts at a higher tier. */
static enum router_escalation_cause escalation_cause(uint32_t deadline_kind) {
  switch (deadline_kind) {
  case ROUTER_DEADLINE_ACKNOWLEDGE: return ROUTER_ESCALATION_ACKNOWLEDGE;
  case ROUTER_DEADLINE_RESOLVE: return ROUTER_ESCALATION_RESOLVE;
  case ROUTER_DEADLINE_NO_UNIT: return ROUTER_ESCALATION_NO_UNIT;
  default: return ROUTER_ESCALATION_SEVERITY;
  }
}

static int emit(struct router *r, const struct router_decision *d, uint32_t deadline_kind) {
  struct router_event_storage st;
  Linkage__V1__Event ev;
  router_event_build(d, svc_actor, lk_now_us(), &ev, &st);
  struct pending_decision *p = calloc(1, sizeof *p);
  if (!p) return LK_ENOMEM;
  *p = (struct pending_decision){r, d->incident, deadline_kind, d->due_us};
  int rc = lk_ledger_append(r->ledger, &ev, decision_done_cb, p);
  if (rc != LK_OK) {
    free(p);
    lk_warn("cannot send decision to the ledger", "event_id=%s err=\"%s\"", d->event_id,
            lk_strerror(rc));
    return rc;
  }
  if (d->incident) r->state.incidents[d->incident].flags |= RI_INFLIGHT;
  switch (d->type) {
  case LINKAGE__V1__EVENT_TYPE__ROUTED: r->routed++; break;
  case LINKAGE__V1__EVENT_TYPE__MERGED: r->merged++; break;
  case LINKAGE__V1__EVENT_TYPE__ESCALATED:
    r->escalated++;
    r->escalations[escalation_cause(deadline_kind)]++;
    break;
  case LINKAGE__V1__EVENT_TYPE__OVERDUE: r->overdue++; break;
  case LINKAGE__V1__EVENT_TYPE__SUPPRESSED: r->suppressed++; break;
  default: break;
  }
  return LK_OK;
}

/* ---- deadlines ---- */

/* Fires the deadlines due by now, at most a budget per loop turn so that a restart after a long
 * outage (thousands due at once) does not starve the sockets; returns 1 if more are due. */
static int fire_due(struct router *r, int64_t now) {
  struct lk_deadline d;
  const struct lk_deadline *top;
  int budget = 2000;
  int64_t retry = ((struct router_config *)r->rt->config)->retry_ms * 1000;
  while ((top = lk_heap_peek(&r->state.deadlines)) && top->at_us <= now) {
    if (budget-- == 0) return 1;
    lk_heap_pop(&r->state.deadlines, &d);
    router_state_fired(&r->state, &d);
    struct router_decision dec;
    if (router_decide_deadline(&r->state, &d, now, &dec)) {
      if (emit(r, &dec, d.kind) != LK_OK) {
        router_state_rearm(&r->state, (uint32_t)d.owner, (enum router_deadline_kind)d.kind,
                           now + retry);
        continue;
      }
    }
    /* A recheck is always in the future, or this loop would never end. */
    if (dec.recheck_us > 0)
      router_state_rearm(&r->state, (uint32_t)d.owner, (enum router_deadline_kind)d.kind,
                         dec.recheck_us > now ? dec.recheck_us : now + retry);
  }
  return 0;
}

static void timer_cb(uv_timer_t *t) {
  struct router *r = t->data;
  if (fire_due(r, lk_now_us()))
    uv_timer_start(&r->timer, timer_cb, 0,
                   0); /* more are due: go on after the sockets had a turn */
  else
    arm_timer(r);
}

static void arm_timer(struct router *r) {
  if (!r->timer_open || r->caught_up < 2) return;
  const struct lk_deadline *top = lk_heap_peek(&r->state.deadlines);
  if (!top) {
    uv_timer_stop(&r->timer);
    return;
  }
  int64_t wait_us = top->at_us - lk_now_us();
  lk_debug("timer armed", "wait_us=%lld owner=%llu kind=%u heap=%zu", (long long)wait_us,
           (unsigned long long)top->owner, top->kind, r->state.deadlines.count);
  /* Round up to the next millisecond so a deadline never fires early. */
  uint64_t ms = wait_us <= 0 ? 0 : (uint64_t)((wait_us + 999) / 1000);
  uv_timer_start(&r->timer, timer_cb, ms, 0);
}

/* ---- the committed stream ---- */

static void remember_command(struct router *r, const char *event_id, uint64_t position) {
  const char *p = strstr(event_id, "/cmd-");
  uint64_t ignored;
  if (!p || lk_map_get(&r->recent_commands, p + 5, &ignored)) return;
  struct router_recent_command *e = &r->recent_ring[r->recent_next];
  if (e->command_id) {
    lk_map_del(&r->recent_commands, e->command_id);
    free(e->command_id);
    free(e->event_id);
  }
  e->command_id = strdup(p + 5);
  e->event_id = strdup(event_id);
  e->position = position;
  if (!e->command_id || !e->event_id ||
      lk_map_put(&r->recent_commands, e->command_id, r->recent_next) != LK_OK) {
    free(e->command_id);
    free(e->event_id);
    memset(e, 0, sizeof *e);
    return;
  }
  r->recent_next = (r->recent_next + 1) % ROUTER_RECENT_COMMANDS;
}

static void follow_up(struct router *r, uint32_t slot, const Linkage__V1__Event *ev, int64_t now) {
  struct router_decision d;
  switch (ev->body_case) {
  case LINKAGE__V1__EVENT__BODY_REPORTED:
    if (router_decide_new(&r->state, slot, now, &d)) emit(r, &d, 0);
    break;
  case LINKAGE__V1__EVENT__BODY_MERGED: {
    struct router_incident *into = router_incident_get(&r->state, ev->merged->into_incident_id);
    uint32_t into_slot = into ? (uint32_t)(into - r->state.incidents) : 0;
    if (into_slot && router_decide_reporters(&r->state, into_slot, now, &d)) emit(r, &d, 0);
    break;
  }
  case LINKAGE__V1__EVENT__BODY_SEVERITY_CHANGED:
    if (router_decide_severity(&r->state, slot, now, &d)) emit(r, &d, 0);
    break;
  default: break;
  }
}

static void on_committed(void *data, uint64_t position, const Linkage__V1__Event *ev,
                         const uint8_t *bytes, size_t len) {
  struct router *r = data;
  (void)bytes;
  (void)len;
  uint32_t slot = router_state_apply(&r->state, position, ev);
  remember_command(r, ev->event_id, position);
  uint64_t waiting;
  if (r->command_wait.count && lk_map_get(&r->command_wait, ev->incident_id, &waiting) &&
      position >= waiting)
    lk_map_del(&r->command_wait, ev->incident_id);
  if (r->caught_up == 2 && slot) {
    follow_up(r, slot, ev, lk_now_us());
  }
  if (r->caught_up == 2) arm_timer(r);
}

/* After catching up: make every decision the events folded while we were away (or replaying)
 * ask for, in the order the incidents were reported: routing or merging new incidents, raising
 * severity after merges, escalating after a raised severity. Each decision's id is derived from
 * the state, so one already committed is a duplicate. Then the timer fires every deadline that
 * passed meanwhile. */
static void sweep(struct router *r) {
  int64_t now = lk_now_us();
  struct router_decision d;
  for (uint32_t slot = 1; slot < r->state.count; slot++) {
    if ((router_decide_new(&r->state, slot, now, &d) ||
         router_decide_reporters(&r->state, slot, now, &d) ||
         router_decide_severity(&r->state, slot, now, &d)) &&
        emit(r, &d, 0) != LK_OK) {
      r->resweep = 1; /* the ledger client is full: the next tick goes on */
      break;
    }
  }
  r->caught_up = 2;
  arm_timer(r);
}

/* ---- coordinator commands ---- */

static void send_command_reply(struct router *r, const struct pending_command *pc,
                               Linkage__V1__CommandReply__Status status, const char *event_id,
                               uint64_t position, const char *error) {
  Linkage__V1__CommandReply rep = LINKAGE__V1__COMMAND_REPLY__INIT;
  rep.status = status;
  rep.command_id = (char *)pc->command_id;
  rep.event_id = (char *)(event_id ? event_id : "");
  rep.position = position;
  rep.error = (char *)(error ? error : "");
  uint8_t buf[2048];
  size_t n = linkage__v1__command_reply__get_packed_size(&rep);
  if (n > sizeof buf) return;
  linkage__v1__command_reply__pack(&rep, buf);
  const void *bufs[3] = {pc->identity, "", buf};
  size_t lens[3] = {pc->identity_len, 0, n};
  if (pc->delimiter) {
    lk_zsock_sendv(&r->commands, bufs, lens, 3, ZMQ_DONTWAIT);
  } else {
    const void *b2[2] = {pc->identity, buf};
    size_t l2[2] = {pc->identity_len, n};
    lk_zsock_sendv(&r->commands, b2, l2, 2, ZMQ_DONTWAIT);
  }
}

static void command_done_cb(void *data, const Linkage__V1__AppendReply *reply) {
  struct pending_command *pc = data;
  struct router *r = pc->r;
  int stored = reply->status == LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED ||
               reply->status == LINKAGE__V1__APPEND_REPLY__STATUS__DUPLICATE;
  if (!stored || reply->position <= r->state.position)
    lk_map_del(&r->command_wait, pc->incident_id);
  else
    lk_map_put(&r->command_wait, pc->incident_id, reply->position);
  if (reply->status == LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED ||
      reply->status == LINKAGE__V1__APPEND_REPLY__STATUS__DUPLICATE) {
    r->commands_ok++;
    send_command_reply(r, pc, LINKAGE__V1__COMMAND_REPLY__STATUS__OK, reply->event_id,
                       reply->position, NULL);
  } else if (reply->status == LINKAGE__V1__APPEND_REPLY__STATUS__INVALID) {
    r->commands_rejected++;
    send_command_reply(r, pc, LINKAGE__V1__COMMAND_REPLY__STATUS__REJECTED, reply->event_id, 0,
                       reply->error);
  } else {
    send_command_reply(r, pc, LINKAGE__V1__COMMAND_REPLY__STATUS__BUSY, reply->event_id, 0,
                       reply->error[0] ? reply->error : "the ledger did not commit in time");
  }
  free(pc);
}

static int inflight(struct router *r, const char *incident_id) {
  const struct router_incident *inc = router_incident_get(&r->state, incident_id);
  return inc && (inc->flags & RI_INFLIGHT);
}

static void on_command(struct lk_zsock *s, struct lk_frames *m, void *data) {
  struct router *r = data;
  (void)s;
  struct pending_command *pc = calloc(1, sizeof *pc);
  if (!pc) return;
  pc->r = r;
  int body = lk_frames_body_index(m);
  pc->identity_len = zmq_msg_size(&m->frame[0]);
  if (pc->identity_len > sizeof pc->identity) {
    free(pc);
    return;
  }
  memcpy(pc->identity, zmq_msg_data(&m->frame[0]), pc->identity_len);
  pc->delimiter = body == 2;
  char err[512];
  if (body < 0 || body + 1 != m->count || m->truncated) {
    send_command_reply(r, pc, LINKAGE__V1__COMMAND_REPLY__STATUS__REJECTED, NULL, 0,
                       "expected one frame holding a Command");
    r->commands_rejected++;
    free(pc);
    return;
  }
  Linkage__V1__Command *cmd = linkage__v1__command__unpack(NULL, zmq_msg_size(&m->frame[body]),
                                                           zmq_msg_data(&m->frame[body]));
  if (!cmd) {
    send_command_reply(r, pc, LINKAGE__V1__COMMAND_REPLY__STATUS__REJECTED, NULL, 0,
                       "malformed Command: not a valid protobuf message");
    r->commands_rejected++;
    free(pc);
    return;
  }
  snprintf(pc->command_id, sizeof pc->command_id, "%.64s", cmd->command_id);
  uint64_t seen;
  struct router_decision d;
  if (r->caught_up < 2) {
    send_command_reply(r, pc, LINKAGE__V1__COMMAND_REPLY__STATUS__BUSY, NULL, 0,
                       "the router is catching up with the ledger; retry shortly");
    free(pc);
  } else if (inflight(r, cmd->incident_id) ||
             lk_map_get(&r->command_wait, cmd->incident_id, &seen)) {
    /* A decision of ours is about to change this incident: decide on the state after it. */
    send_command_reply(r, pc, LINKAGE__V1__COMMAND_REPLY__STATUS__BUSY, NULL, 0,
                       "the incident is changing; retry shortly");
    free(pc);
  } else if (lk_map_get(&r->recent_commands, cmd->command_id, &seen)) {
    /* Already committed: the same command again answers as it did, before the state (which
     * may now refuse it: closing a closed incident) is asked. */
    const struct router_recent_command *e = &r->recent_ring[seen];
    r->commands_ok++;
    send_command_reply(r, pc, LINKAGE__V1__COMMAND_REPLY__STATUS__OK, e->event_id, e->position,
                       NULL);
    free(pc);
  } else if (router_decide_command(&r->state, cmd, lk_now_us(), &d, err, sizeof err) != LK_OK) {
    char q[600];
    r->commands_rejected++;
    lk_info("command rejected", "command_id=%s err=\"%s\"", pc->command_id,
            lk_log_quote(q, sizeof q, err));
    send_command_reply(r, pc, LINKAGE__V1__COMMAND_REPLY__STATUS__REJECTED, NULL, 0, err);
    free(pc);
  } else {
    char actor[LK_ID_MAX];
    struct router_event_storage st;
    Linkage__V1__Event ev;
    snprintf(actor, sizeof actor, "coordinator:%s", cmd->actor);
    router_event_build(&d, actor, lk_now_us(), &ev, &st);
    snprintf(pc->incident_id, sizeof pc->incident_id, "%s", d.incident_id);
    if (lk_ledger_append(r->ledger, &ev, command_done_cb, pc) != LK_OK) {
      send_command_reply(r, pc, LINKAGE__V1__COMMAND_REPLY__STATUS__BUSY, NULL, 0,
                         "too many requests waiting for the ledger");
      free(pc);
    } else {
      lk_map_put(&r->command_wait, d.incident_id, UINT64_MAX);
      if (d.type == LINKAGE__V1__EVENT_TYPE__ESCALATED) r->escalations[ROUTER_ESCALATION_COMMAND]++;
    }
  }
  linkage__v1__command__free_unpacked(cmd, NULL);
}

/* ---- lifecycle ---- */

int router_start(struct lk_runtime *rt) {
  struct router *r = rt->state;
  struct router_config *cfg = rt->config;
  char err[512];
  r->rt = rt;
  if (lk_link_load(&r->link, cfg->link_curve, cfg->link_key_file) != LK_OK) return LK_EINVAL;
  struct lk_auth_opts ao = {.link = &r->link};
  if (lk_auth_start(&r->auth, rt->loop, rt->zctx, &ao) != LK_OK) return LK_EIO;
  r->auth_started = 1;
  r->district = lk_district_load(cfg->district, err, sizeof err);
  if (!r->district) {
    lk_error("cannot load the district", "err=\"%s\"", err);
    return LK_EINVAL;
  }
  struct router_policy policy = {
      .time_scale = cfg->time_scale,
      .merge_distance_m = cfg->merge_distance_m,
      .reporter_threshold = (int)cfg->reporter_threshold,
      .retry_us = cfg->retry_ms * 1000,
  };
  policy.merge_window_us = router_plan_us(&policy, (int)cfg->merge_window_min);
  policy.reporter_window_us = router_plan_us(&policy, (int)cfg->reporter_window_min);
  if (router_state_init(&r->state, r->district, r->district->plans, r->district->plan_count,
                        &policy) != LK_OK)
    goto fail;
  r->state_open = 1;
  if (lk_map_init(&r->recent_commands, 1024) != LK_OK) goto fail;
  if (lk_map_init(&r->command_wait, 64) != LK_OK) goto fail;
  r->command_wait_open = 1;
  r->recent_ring = calloc(ROUTER_RECENT_COMMANDS, sizeof *r->recent_ring);
  if (!r->recent_ring) goto fail;

  struct lk_ledger_client_opts lo = {.endpoint = cfg->ledger_endpoint, .link = &r->link};
  r->ledger = lk_ledger_client_new(rt->loop, rt->zctx, &lo);
  if (!r->ledger) goto fail;
  struct lk_stream_opts so = {
      .pub_endpoint = cfg->ledger_stream, .client = r->ledger, .link = &r->link};
  r->stream = lk_stream_new(rt->loop, rt->zctx, &so, on_committed, r);
  if (!r->stream) goto fail;
  struct lk_zsock_opts zo = {.linger_ms = 200, .maxmsg = 64 * 1024, .router_mandatory = 1};
  lk_link_server_opts(&r->link, &zo);
  if (lk_zsock_open(&r->commands, rt->loop, rt->zctx, ZMQ_ROUTER, cfg->router_endpoint, &zo,
                    on_command, r, "commands") != LK_OK)
    goto fail;
  r->commands_open = 1;
  uv_timer_init(rt->loop, &r->timer);
  r->timer.data = r;
  r->timer_open = 1;
  lk_info("routing", "commands=\"%s\" time_scale=%g plans=%zu", cfg->router_endpoint,
          cfg->time_scale, r->district->plan_count);
  return LK_OK;

fail:
  lk_error("router start failed", NULL);
  return LK_EIO;
}

void router_tick(struct lk_runtime *rt, int64_t now_us) {
  struct router *r = rt->state;
  lk_ledger_client_tick(r->ledger, lk_mono_us());
  /* Decisions wait until the state has caught up with the ledger: deciding on a half-folded
   * state would route incidents whose routing is already committed further on. */
  if (r->caught_up == 0 && lk_stream_caught_up(r->stream)) {
    lk_info("caught up with the ledger", "position=%llu incidents=%u deadlines=%zu",
            (unsigned long long)r->state.position, r->state.count - 1, r->state.deadlines.count);
    r->resweep = 1;
  }
  if (r->resweep) {
    r->resweep = 0;
    sweep(r);
  }
  (void)now_us;
}

void router_status(struct lk_runtime *rt, char *buf, size_t len) {
  struct router *r = rt->state;
  snprintf(buf, len,
           "position=%llu live=%d incidents=%u deadlines=%zu routed=%llu merged=%llu "
           "escalated=%llu overdue=%llu suppressed=%llu commands_ok=%llu commands_rejected=%llu "
           "time_scale=%g",
           (unsigned long long)r->state.position, r->caught_up == 2, r->state.count - 1,
           r->state.deadlines.count, (unsigned long long)r->routed, (unsigned long long)r->merged,
           (unsigned long long)r->escalated, (unsigned long long)r->overdue,
           (unsigned long long)r->suppressed, (unsigned long long)r->commands_ok,
           (unsigned long long)r->commands_rejected, r->state.policy.time_scale);
}

void router_stop(struct lk_runtime *rt) {
  struct router *r = rt->state;
  if (r->timer_open) uv_close((uv_handle_t *)&r->timer, NULL);
  if (r->commands_open) lk_zsock_close(&r->commands);
  lk_stream_destroy(&r->stream);
  lk_ledger_client_destroy(&r->ledger);
  if (r->auth_started) lk_auth_stop(&r->auth);
  r->auth_started = 0;
  if (r->recent_ring) {
    for (uint32_t i = 0; i < ROUTER_RECENT_COMMANDS; i++) {
      free(r->recent_ring[i].command_id);
      free(r->recent_ring[i].event_id);
    }
    free(r->recent_ring);
  }
  lk_map_close(&r->recent_commands);
  if (r->command_wait_open) lk_map_close(&r->command_wait);
  if (r->state_open) router_state_close(&r->state);
  lk_district_destroy(&r->district);
}
