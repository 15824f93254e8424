/* linkagectl drill: plays a scenario (scenario.h) against a running stack, as the people in it
 * would act: devices report to intake, responder consoles say Hello, keep heartbeating and
 * answer (or stay silent), coordinators send the router's commands. At each `expect` step it
 * reads what every reader shows (the `incidents` view and the ledger through libpq, the
 * gateway's /api/incidents, Open311 and CAP over HTTP) and compares; at the end it checks the
 * rules every scenario must hold. Every incident it opens is marked as an exercise. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "ctl.h"
#include "linkage/clock.h"
#include "linkage/district.h"
#include "linkage/event.h"
#include "linkage/v1/command.pb-c.h"
#include "linkage/v1/unit.pb-c.h"
#include "scenario.h"

#define DRILL_MAX_UNITS 64
#define DRILL_MAX_INCIDENTS 64
#define DRILL_WAIT_MS 10000 /* for an ack, a command's or an answer's reply */

static const char drill_help[] =
    "NAME\n"
    "    linkagectl drill - play a scenario against the running stack and compare\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl drill FILE [--token TOKEN] [--gateway URL] [--pg CONNINFO]\n"
    "                          [--district FILE] [--time-scale X] [--grace SECONDS]\n"
    "\n"
    "DESCRIPTION\n"
    "    Plays the scenario FILE (tests/scenarios/README.md describes the format) on\n"
    "    the stack the usual variables name: devices report to intake, responder\n"
    "    consoles (one per unit the scenario says is present) heartbeat and answer\n"
    "    as the timeline says, coordinators' actions go to the router. Plan minutes\n"
    "    pass at the router's time_scale (its status line says which). Every report\n"
    "    is an exercise (Report.exercise): CAP says <status>Exercise</status>, the\n"
    "    dashboard marks it, and the incidents view leaves it out of its times.\n"
    "    Device ids get a suffix of this run, so a drill can be played again.\n"
    "\n"
    "    At each expect step it polls the readers until every expectation holds or\n"
    "    the grace (default 1 s, or half a plan minute if longer) passes, and prints\n"
    "    one line per expectation: \"ok - ...\" or \"FAIL - ...: expected ..., got ...\".\n"
    "    At the end it checks the rules every scenario holds (no deadline reported\n"
    "    missed before it passed, nobody arrives overdue at a tier, every reader\n"
    "    agrees on state, lead and missing roles, the lead shown is live), and\n"
    "    prints \"N passed, N failed\".\n"
    "\n"
    "OPTIONS\n"
    "    --token TOKEN    a coordinator's API token ($LINKAGE_TOKEN)\n"
    "    --gateway URL    the gateway ($LINKAGE_GATEWAY_URL, default http://127.0.0.1:8080)\n"
    "    --pg CONNINFO    the ledger's database ($LINKAGE_PG)\n"
    "    --district FILE  the district ($LINKAGE_DISTRICT, default deploy/district/wenjiang.yaml)\n"
    "    --time-scale X   plan minutes per real minute (default: the router's)\n"
    "    --grace SECONDS  how long an expectation may take to hold (default 1)\n"
    "\n"
    "EXIT STATUS\n"
    "    0 every expectation held, 1 one did not, 2 usage, a bad scenario or no stack.\n";

struct drill_unit {
  const char *id;
  void *sock;
  int registered, absent;
  unsigned heartbeat_ms;
  int64_t next_beat_us;
  uint64_t seq;
  /* the calls it received: incident and assignment ids, first received first */
  struct {
    char incident[LK_ID_MAX];
    char id[2 * LK_ID_MAX];
  } calls[256];
  size_t call_count;
  /* the reply to the answer in flight */
  uint64_t wait_seq;
  int replied, reply_status;
  char reply_error[512];
};

struct drill_incident {
  const char *name;
  char id[LK_ID_MAX];
  char device[96];
};

struct drill {
  const struct scenario *sc;
  struct lk_district *district;
  struct ctl_config cfg;
  const char *gateway, *token, *pg_conninfo;
  PGconn *pg;
  void *zctx, *intake, *router;
  struct drill_unit units[DRILL_MAX_UNITS];
  size_t unit_count;
  struct drill_incident incidents[DRILL_MAX_INCIDENTS];
  size_t incident_count;
  double scale, grace_s;
  int64_t t0_us, t0_mono;
  char run[12];
  unsigned passed, failed;
  /* the reply the synchronous steps wait for */
  int ack_got, ack_status;
  char ack_error[512];
  uint32_t ack_retry_ms;
  char cmd_wait[72];
  int cmd_got, cmd_status;
  char cmd_error[512];
};

static void check(struct drill *d, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void check(struct drill *d, int ok, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s - ", ok ? "ok" : "FAIL");
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  fflush(stdout);
  if (ok)
    d->passed++;
  else
    d->failed++;
}

static int64_t plan_us(const struct drill *d, double minutes) {
  return (int64_t)(minutes * 60e6 / d->scale);
}

static double plan_min(const struct drill *d, int64_t us) {
  return (double)us * d->scale / 60e6;
}

static const char *id_of(void *ctx, const char *name) {
  struct drill *d = ctx;
  for (size_t i = 0; i < d->incident_count; i++)
    if (strcmp(d->incidents[i].name, name) == 0) return d->incidents[i].id;
  return NULL;
}

static const char *name_of(const struct drill *d, const char *id) {
  for (size_t i = 0; i < d->incident_count; i++)
    if (strcmp(d->incidents[i].id, id) == 0) return d->incidents[i].name;
  return NULL;
}

/* ---- sockets ---- */

static void *dealer(struct drill *d, const char *endpoint) {
  void *s = zmq_socket(d->zctx, ZMQ_DEALER);
  int linger = 0;
  if (!s) return NULL;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  if (zmq_connect(s, endpoint) != 0) {
    fprintf(stderr, "linkagectl drill: cannot connect to \"%s\": %s\n", endpoint,
            zmq_strerror(errno));
    zmq_close(s);
    return NULL;
  }
  return s;
}

/* Never blocks: a DEALER whose connection was refused at the handshake (a CURVE port, which the
 * drill's plain consoles do not speak) has no peer, and a blocking send would wait for ever. A
 * message not sent is an answer not received: the bounded waits report it. */
static int send_packed(void *s, const void *buf, size_t n) {
  if (zmq_send(s, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) != 0) return -1;
  return zmq_send(s, buf, n, ZMQ_DONTWAIT) == (int)n ? 0 : -1;
}

static int send_unit(struct drill_unit *u, Linkage__V1__UnitMessage *m) {
  uint8_t buf[4096];
  size_t n = linkage__v1__unit_message__get_packed_size(m);
  if (n > sizeof buf) return -1;
  linkage__v1__unit_message__pack(m, buf);
  return send_packed(u->sock, buf, n);
}

static void unit_hello(struct drill_unit *u) {
  Linkage__V1__UnitMessage m = LINKAGE__V1__UNIT_MESSAGE__INIT;
  Linkage__V1__Hello h = LINKAGE__V1__HELLO__INIT;
  h.software = "linkagectl drill";
  m.unit_id = (char *)u->id;
  m.seq = ++u->seq;
  m.body_case = LINKAGE__V1__UNIT_MESSAGE__BODY_HELLO;
  m.hello = &h;
  send_unit(u, &m);
}

static void unit_heartbeat(struct drill_unit *u) {
  Linkage__V1__UnitMessage m = LINKAGE__V1__UNIT_MESSAGE__INIT;
  Linkage__V1__Heartbeat hb = LINKAGE__V1__HEARTBEAT__INIT;
  m.unit_id = (char *)u->id;
  m.seq = ++u->seq;
  m.body_case = LINKAGE__V1__UNIT_MESSAGE__BODY_HEARTBEAT;
  m.heartbeat = &hb;
  send_unit(u, &m);
}

/* Reads one message [empty, body] from s into buf; returns its size or -1. */
static int recv_body(void *s, uint8_t *buf, size_t cap) {
  zmq_msg_t part;
  int size = -1, more = 1;
  while (more) {
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, s, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&part);
      return -1;
    }
    more = zmq_msg_more(&part);
    if (zmq_msg_size(&part) > 0 && zmq_msg_size(&part) <= cap) {
      memcpy(buf, zmq_msg_data(&part), zmq_msg_size(&part));
      size = (int)zmq_msg_size(&part);
    }
    zmq_msg_close(&part);
  }
  return size;
}

static void on_unit(struct drill *d, struct drill_unit *u) {
  static uint8_t buf[1 << 20];
  int n;
  (void)d;
  while ((n = recv_body(u->sock, buf, sizeof buf)) >= 0) {
    Linkage__V1__DispatchMessage *m = linkage__v1__dispatch_message__unpack(NULL, (size_t)n, buf);
    if (!m) continue;
    switch (m->body_case) {
    case LINKAGE__V1__DISPATCH_MESSAGE__BODY_WELCOME:
      if (!m->welcome->error[0]) {
        u->registered = 1;
        u->heartbeat_ms = m->welcome->heartbeat_ms ? m->welcome->heartbeat_ms : 2000;
        u->next_beat_us = lk_mono_us() + (int64_t)u->heartbeat_ms * 1000;
      } else if (strstr(m->welcome->error, "send Hello first")) {
        unit_hello(u); /* dispatch restarted and forgot us */
      }
      break;
    case LINKAGE__V1__DISPATCH_MESSAGE__BODY_ASSIGNMENT: {
      const Linkage__V1__Assignment *a = m->assignment;
      size_t i;
      for (i = 0; i < u->call_count; i++)
        if (strcmp(u->calls[i].id, a->assignment_id) == 0) break;
      if (i == u->call_count && u->call_count < sizeof u->calls / sizeof u->calls[0]) {
        snprintf(u->calls[i].incident, sizeof u->calls[i].incident, "%s", a->incident_id);
        snprintf(u->calls[i].id, sizeof u->calls[i].id, "%s", a->assignment_id);
        u->call_count++;
      }
      break;
    }
    case LINKAGE__V1__DISPATCH_MESSAGE__BODY_ANSWER_REPLY:
      if (m->answer_reply->seq == u->wait_seq) {
        u->replied = 1;
        u->reply_status = m->answer_reply->status;
        snprintf(u->reply_error, sizeof u->reply_error, "%s", m->answer_reply->error);
      }
      break;
    default: break;
    }
    linkage__v1__dispatch_message__free_unpacked(m, NULL);
  }
}

static void on_intake(struct drill *d) {
  uint8_t buf[16384];
  int n;
  while ((n = recv_body(d->intake, buf, sizeof buf)) >= 0) {
    Linkage__V1__ReportAck *a = linkage__v1__report_ack__unpack(NULL, (size_t)n, buf);
    if (!a) continue;
    d->ack_got = 1;
    d->ack_status = a->status;
    d->ack_retry_ms = a->retry_after_ms;
    snprintf(d->ack_error, sizeof d->ack_error, "%s", a->error);
    linkage__v1__report_ack__free_unpacked(a, NULL);
  }
}

static void on_router(struct drill *d) {
  uint8_t buf[16384];
  int n;
  while ((n = recv_body(d->router, buf, sizeof buf)) >= 0) {
    Linkage__V1__CommandReply *r = linkage__v1__command_reply__unpack(NULL, (size_t)n, buf);
    if (!r) continue;
    if (strcmp(r->command_id, d->cmd_wait) == 0) {
      d->cmd_got = 1;
      d->cmd_status = r->status;
      snprintf(d->cmd_error, sizeof d->cmd_error, "%s", r->error);
    }
    linkage__v1__command_reply__free_unpacked(r, NULL);
  }
}

/* Serves every socket (and the consoles' heartbeats) until until_mono_us. */
static void pump(struct drill *d, int64_t until_mono_us) {
  for (;;) {
    zmq_pollitem_t items[DRILL_MAX_UNITS + 2];
    size_t n = 0;
    items[n++] = (zmq_pollitem_t){d->intake, 0, ZMQ_POLLIN, 0};
    items[n++] = (zmq_pollitem_t){d->router, 0, ZMQ_POLLIN, 0};
    int64_t now = lk_mono_us(), wake = until_mono_us;
    for (size_t i = 0; i < d->unit_count; i++) {
      struct drill_unit *u = &d->units[i];
      if (!u->sock) continue;
      items[n++] = (zmq_pollitem_t){u->sock, 0, ZMQ_POLLIN, 0};
      if (u->registered && !u->absent) {
        if (now >= u->next_beat_us) {
          unit_heartbeat(u);
          u->next_beat_us = now + (int64_t)u->heartbeat_ms * 1000;
        }
        if (u->next_beat_us < wake) wake = u->next_beat_us;
      }
    }
    long timeout = wake > now ? (long)((wake - now + 999) / 1000) : 0;
    zmq_poll(items, (int)n, timeout);
    if (items[0].revents & ZMQ_POLLIN) on_intake(d);
    if (items[1].revents & ZMQ_POLLIN) on_router(d);
    for (size_t i = 2, k = 0; i < n; i++) {
      while (k < d->unit_count && !d->units[k].sock)
        k++;
      if (items[i].revents & ZMQ_POLLIN) on_unit(d, &d->units[k]);
      k++;
    }
    if (lk_mono_us() >= until_mono_us) return;
  }
}

/* Pumps until *flag is set or ms pass; 1 when it was set. */
static int wait_flag(struct drill *d, const int *flag, int ms) {
  int64_t end = lk_mono_us() + (int64_t)ms * 1000;
  while (!*flag && lk_mono_us() < end)
    pump(d, lk_mono_us() + 20000 < end ? lk_mono_us() + 20000 : end);
  return *flag;
}

/* ---- steps ---- */

static void do_report(struct drill *d, const struct scenario_step *st, size_t index) {
  struct drill_incident *inc = &d->incidents[d->incident_count];
  if (d->incident_count == DRILL_MAX_INCIDENTS) {
    check(d, 0, "report %s: more than %d reports in one drill", st->name, DRILL_MAX_INCIDENTS);
    return;
  }
  inc->name = st->name;
  snprintf(inc->device, sizeof inc->device, "%.48s-%s", st->device ? st->device : "drill-device",
           d->run);
  uint64_t seq = (uint64_t)index + 1;
  lk_incident_id(inc->device, seq, inc->id);
  d->incident_count++;

  Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  r.device_id = inc->device;
  r.sequence = seq;
  r.category = st->category;
  r.kind = (char *)(st->kind_word ? st->kind_word : "");
  r.severity = st->severity;
  loc.compound_id = (char *)st->compound;
  loc.building = (char *)(st->building ? st->building : "");
  loc.lat = st->lat;
  loc.lon = st->lon;
  r.location = &loc;
  r.description = (char *)(st->description ? st->description : d->sc->title);
  r.observed_at_us = lk_now_us();
  r.exercise = 1;
  uint8_t buf[8192];
  size_t n = linkage__v1__report__get_packed_size(&r);
  if (n > sizeof buf) {
    check(d, 0, "report %s: too large", st->name);
    return;
  }
  linkage__v1__report__pack(&r, buf);
  int64_t end = lk_mono_us() + DRILL_WAIT_MS * 1000LL;
  while (lk_mono_us() < end) {
    d->ack_got = 0;
    send_packed(d->intake, buf, n);
    if (!wait_flag(d, &d->ack_got, 2000)) continue;
    if (d->ack_status == LINKAGE__V1__REPORT_ACK__STATUS__BUSY) {
      pump(d, lk_mono_us() + (int64_t)(d->ack_retry_ms ? d->ack_retry_ms : 100) * 1000);
      continue;
    }
    break;
  }
  int ok = d->ack_got && (d->ack_status == LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED ||
                          d->ack_status == LINKAGE__V1__REPORT_ACK__STATUS__DUPLICATE);
  check(d, ok, "line %d, minute %g: %s reported (%s, %s %s at %s) as %s%s%s", st->line, st->at_min,
        st->name, lk_severity_name(st->severity), lk_category_name(st->category),
        st->kind_word ? st->kind_word : "", st->compound, inc->id, ok ? "" : ": ",
        ok ? "" : (d->ack_got ? d->ack_error : "no answer from intake"));
}

static int answer_kind(const char *word) {
  static const char *const words[] = {"",         "acknowledged", "on_scene", "resolved",
                                      "declined", "need_backup",  "verified"};
  for (int i = 1; i < 7; i++)
    if (strcmp(words[i], word) == 0) return i;
  return 0;
}

static struct drill_unit *unit_named(struct drill *d, const char *id) {
  for (size_t i = 0; i < d->unit_count; i++)
    if (strcmp(d->units[i].id, id) == 0) return &d->units[i];
  return NULL;
}

static void do_answer(struct drill *d, const struct scenario_step *st) {
  struct drill_unit *u = unit_named(d, st->unit);
  const char *incident = id_of(d, st->incident);
  if (!u || !u->sock || u->absent) {
    check(d, 0, "line %d: %s answers %s: the scenario has no console for it (present)", st->line,
          st->unit, st->incident);
    return;
  }
  /* Its latest call for the incident; it may still be on its way. A grid worker's check needs
   * no call of its own: it names the incident. */
  const char *assignment = NULL;
  int64_t end = lk_mono_us() + (int64_t)(d->grace_s * 1e6);
  for (;;) {
    for (size_t i = u->call_count; i-- > 0;)
      if (strcmp(u->calls[i].incident, incident) == 0) {
        assignment = u->calls[i].id;
        break;
      }
    if (assignment || lk_mono_us() >= end) break;
    pump(d, lk_mono_us() + 20000);
  }
  if (!assignment && strcmp(st->answer, "verified") == 0) assignment = incident;
  if (!assignment) {
    check(d, 0, "line %d, minute %g: %s answers %s %s: it was never called for it", st->line,
          st->at_min, st->unit, st->incident, st->answer);
    return;
  }
  Linkage__V1__UnitMessage m = LINKAGE__V1__UNIT_MESSAGE__INIT;
  Linkage__V1__Answer a = LINKAGE__V1__ANSWER__INIT;
  a.assignment_id = (char *)assignment;
  a.kind = (Linkage__V1__Answer__Kind)answer_kind(st->answer);
  a.note = (char *)(st->text ? st->text : "");
  m.unit_id = (char *)u->id;
  m.seq = ++u->seq;
  m.body_case = LINKAGE__V1__UNIT_MESSAGE__BODY_ANSWER;
  m.answer = &a;
  for (int attempt = 0; attempt < 20; attempt++) {
    u->wait_seq = m.seq;
    u->replied = 0;
    send_unit(u, &m);
    if (!wait_flag(d, &u->replied, DRILL_WAIT_MS)) break;
    if (u->reply_status != LINKAGE__V1__ANSWER_REPLY__STATUS__BUSY) break;
    pump(d, lk_mono_us() + 200000);
  }
  int refused = u->replied && u->reply_status == LINKAGE__V1__ANSWER_REPLY__STATUS__REJECTED;
  if (st->refused) {
    check(d, refused && strstr(u->reply_error, st->refused),
          "line %d, minute %g: %s's %s on %s is refused saying \"%s\" (got %s%s%s)", st->line,
          st->at_min, st->unit, st->answer, st->incident, st->refused,
          refused      ? "refused: "
          : u->replied ? "accepted"
                       : "no answer",
          refused ? u->reply_error : "", "");
    return;
  }
  check(d, u->replied && u->reply_status == LINKAGE__V1__ANSWER_REPLY__STATUS__OK,
        "line %d, minute %g: %s answers %s on %s%s%s", st->line, st->at_min, st->unit, st->answer,
        st->incident,
        u->replied && u->reply_status != LINKAGE__V1__ANSWER_REPLY__STATUS__OK
            ? ": refused: "
            : (u->replied ? "" : ": no answer from dispatch"),
        u->replied && u->reply_status != LINKAGE__V1__ANSWER_REPLY__STATUS__OK ? u->reply_error
                                                                               : "");
}

static void do_coordinator(struct drill *d, const struct scenario_step *st, size_t index) {
  Linkage__V1__Command cmd = LINKAGE__V1__COMMAND__INIT;
  struct ctl_command_body body;
  Linkage__V1__PlannedWork pw = LINKAGE__V1__PLANNED_WORK__INIT;
  Linkage__V1__LiftPlannedWorkCommand lift = LINKAGE__V1__LIFT_PLANNED_WORK_COMMAND__INIT;
  char window[96];
  const char *reason = st->reason ? st->reason : "";
  snprintf(d->cmd_wait, sizeof d->cmd_wait, "drill-%s-%zu", d->run, index);
  snprintf(window, sizeof window, "%.64s-%s", st->window ? st->window : "", d->run);
  cmd.command_id = d->cmd_wait;
  cmd.actor = "drill";
  cmd.incident_id = (char *)(st->incident ? id_of(d, st->incident) : "");
  const char *a = st->action;
  const char *text = !strcmp(a, "note") && st->text      ? st->text
                     : !strcmp(a, "close") && !reason[0] ? "closed in a drill"
                                                         : reason;
  if (!strcmp(a, "declare") || !strcmp(a, "lift")) {
    /* planned work below */
  } else if (ctl_command_body(&cmd, &body, a, text, st->into ? id_of(d, st->into) : NULL, st->role,
                              st->unit) != 0) {
    check(d, 0, "line %d: unknown action %s", st->line, a);
    return;
  }
  if (!strcmp(a, "declare")) {
    pw.window_id = window;
    pw.compound_id = (char *)st->compound;
    pw.building = (char *)(st->building ? st->building : "");
    pw.kind = (char *)(st->kind_word ? st->kind_word : "");
    pw.from_us = d->t0_us + plan_us(d, st->from_min);
    pw.to_us = d->t0_us + plan_us(d, st->to_min);
    pw.reason = (char *)(reason[0] ? reason : "planned work in a drill");
    cmd.body_case = LINKAGE__V1__COMMAND__BODY_DECLARE_PLANNED_WORK;
    cmd.declare_planned_work = &pw;
  } else if (!strcmp(a, "lift")) {
    lift.window_id = window;
    lift.reason = (char *)reason;
    cmd.body_case = LINKAGE__V1__COMMAND__BODY_LIFT_PLANNED_WORK, cmd.lift_planned_work = &lift;
  }
  uint8_t buf[8192];
  size_t n = linkage__v1__command__get_packed_size(&cmd);
  if (n > sizeof buf) {
    check(d, 0, "line %d: the command is too large", st->line);
    return;
  }
  linkage__v1__command__pack(&cmd, buf);
  for (int attempt = 0; attempt < 20; attempt++) {
    d->cmd_got = 0;
    send_packed(d->router, buf, n);
    if (!wait_flag(d, &d->cmd_got, DRILL_WAIT_MS)) break;
    if (d->cmd_status != LINKAGE__V1__COMMAND_REPLY__STATUS__BUSY) break;
    pump(d, lk_mono_us() + 200000);
  }
  int refused = d->cmd_got && d->cmd_status == LINKAGE__V1__COMMAND_REPLY__STATUS__REJECTED;
  if (st->refused) {
    check(d, refused && strstr(d->cmd_error, st->refused),
          "line %d, minute %g: coordinator's %s is refused saying \"%s\" (got %s%s)", st->line,
          st->at_min, a, st->refused,
          refused      ? "refused: "
          : d->cmd_got ? "OK"
                       : "no answer",
          refused ? d->cmd_error : "");
    return;
  }
  int ok = d->cmd_got && d->cmd_status == LINKAGE__V1__COMMAND_REPLY__STATUS__OK;
  check(d, ok, "line %d, minute %g: coordinator %s%s%s%s%s", st->line, st->at_min, a,
        st->incident ? " " : "", st->incident ? st->incident : "", ok ? "" : ": ",
        ok ? "" : (d->cmd_got ? d->cmd_error : "no answer from the router"));
}

static void do_absent(struct drill *d, const struct scenario_step *st) {
  for (size_t i = 0; i < st->unit_count; i++) {
    struct drill_unit *u = unit_named(d, st->units[i]);
    int ok = u && u->sock;
    if (ok) u->absent = 1; /* its heartbeats stop; dispatch counts it absent after three */
    check(d, ok, "line %d, minute %g: %s goes silent", st->line, st->at_min, st->units[i]);
  }
}

/* ---- what the readers show ---- */

struct observation {
  struct scenario_seen seen[DRILL_MAX_INCIDENTS];
  const char *first; /* the name of the scenario's incident the dashboard lists first */
  char err[512];     /* a reader that could not be read */
};

static void text_field(json_object *row, const char *key, char *out, size_t len) {
  json_object *v;
  out[0] = '\0';
  if (json_object_object_get_ex(row, key, &v) && json_object_is_type(v, json_type_string))
    snprintf(out, len, "%s", json_object_get_string(v));
}

static int bool_field(json_object *row, const char *key) {
  json_object *v;
  return json_object_object_get_ex(row, key, &v) && json_object_get_boolean(v);
}

/* ["b", "a"] -> "a,b" */
static void sorted_list(json_object *arr, char *out, size_t len) {
  const char *v[32];
  size_t n = 0;
  out[0] = '\0';
  if (!arr || !json_object_is_type(arr, json_type_array)) return;
  for (size_t i = 0; i < json_object_array_length(arr) && n < 32; i++)
    v[n++] = json_object_get_string(json_object_array_get_idx(arr, i));
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
      const char *t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  for (size_t i = 0, off = 0; i < n && off < len; i++)
    off += (size_t)snprintf(out + off, len - off, "%s%s", i ? "," : "", v[i]);
}

static int incident_index(const struct drill *d, const char *id) {
  for (size_t i = 0; i < d->incident_count; i++)
    if (strcmp(d->incidents[i].id, id) == 0) return (int)i;
  return -1;
}

static json_object *get_json(struct drill *d, const char *path, char *err, size_t errlen) {
  struct ctl_http_reply rep;
  int status = ctl_http(d->gateway, "GET", path, d->token, NULL, 5000, &rep, err, errlen);
  if (status < 0) return NULL;
  json_object *j = status == 200 ? json_tokener_parse(rep.body) : NULL;
  if (!j) snprintf(err, errlen, "GET %s: HTTP %d %.200s", path, status, rep.body);
  ctl_http_reply_free(&rep);
  return j;
}

static int read_api(struct drill *d, struct observation *o) {
  json_object *all = get_json(d, "/api/incidents?closed=1", o->err, sizeof o->err);
  json_object *open = all ? get_json(d, "/api/incidents", o->err, sizeof o->err) : NULL;
  json_object *rows;
  int rc = -1;
  if (!open) goto done;
  if (json_object_object_get_ex(all, "incidents", &rows))
    for (size_t i = 0; i < json_object_array_length(rows); i++) {
      json_object *row = json_object_array_get_idx(rows, i), *v;
      char id[LK_ID_MAX];
      text_field(row, "id", id, sizeof id);
      int k = incident_index(d, id);
      if (k < 0) continue;
      struct scenario_seen *s = &o->seen[k];
      s->in_api = 1;
      text_field(row, "state", s->api_state, sizeof s->api_state);
      text_field(row, "tier", s->api_tier, sizeof s->api_tier);
      text_field(row, "lead_unit", s->api_lead, sizeof s->api_lead);
      text_field(row, "organisation", s->api_org, sizeof s->api_org);
      text_field(row, "severity", s->api_severity, sizeof s->api_severity);
      text_field(row, "held_back_by", s->api_held_back_by, sizeof s->api_held_back_by);
      text_field(row, "merged_into", s->api_merged_into, sizeof s->api_merged_into);
      s->api_overdue = bool_field(row, "overdue");
      s->api_exercise = bool_field(row, "exercise");
      s->api_held_back = bool_field(row, "suppressed");
      sorted_list(json_object_object_get_ex(row, "missing_roles", &v) ? v : NULL, s->api_missing,
                  sizeof s->api_missing);
      json_object *dl, *at;
      s->api_deadline_kind[0] = '\0';
      if (json_object_object_get_ex(row, "deadline", &dl) &&
          json_object_is_type(dl, json_type_object)) {
        text_field(dl, "kind", s->api_deadline_kind, sizeof s->api_deadline_kind);
        if (json_object_object_get_ex(dl, "at", &at))
          s->api_deadline_min = plan_min(d, json_object_get_int64(at) * 1000 - d->t0_us);
      }
    }
  /* The dashboard's order is the server's: the first of ours in the open list. */
  o->first = NULL;
  if (json_object_object_get_ex(open, "incidents", &rows))
    for (size_t i = 0; i < json_object_array_length(rows) && !o->first; i++) {
      char id[LK_ID_MAX];
      text_field(json_object_array_get_idx(rows, i), "id", id, sizeof id);
      o->first = name_of(d, id);
    }
  rc = 0;
done:
  if (all) json_object_put(all);
  if (open) json_object_put(open);
  return rc;
}

static void read_open311(struct drill *d, const char *id, struct scenario_seen *s) {
  char path[256], err[256];
  snprintf(path, sizeof path, "/open311/v2/requests/%s.json", id);
  json_object *j = get_json(d, path, err, sizeof err);
  s->open311_notes[0] = '\0';
  if (j && json_object_is_type(j, json_type_array) && json_object_array_length(j) == 1)
    text_field(json_object_array_get_idx(j, 0), "status_notes", s->open311_notes,
               sizeof s->open311_notes);
  if (j) json_object_put(j);
}

static void xml_element(const char *doc, const char *name, char *out, size_t len) {
  char open[64], close[64];
  snprintf(open, sizeof open, "<%s>", name);
  snprintf(close, sizeof close, "</%s>", name);
  const char *a = strstr(doc, open), *b = a ? strstr(a, close) : NULL;
  out[0] = '\0';
  if (a && b) snprintf(out, len, "%.*s", (int)(b - a - strlen(open)), a + strlen(open));
}

static void read_cap(struct drill *d, const char *id, struct scenario_seen *s) {
  char path[256], err[256];
  struct ctl_http_reply rep;
  snprintf(path, sizeof path, "/cap/%s.xml", id);
  s->cap_msgtype[0] = s->cap_status[0] = '\0';
  if (ctl_http(d->gateway, "GET", path, d->token, NULL, 5000, &rep, err, sizeof err) == 200) {
    xml_element(rep.body, "msgType", s->cap_msgtype, sizeof s->cap_msgtype);
    xml_element(rep.body, "status", s->cap_status, sizeof s->cap_status);
  }
  if (rep.body) ctl_http_reply_free(&rep);
}

/* The incidents' ids as a PostgreSQL text[] literal. */
static void id_array(const struct drill *d, char *out, size_t len) {
  size_t off = (size_t)snprintf(out, len, "{");
  for (size_t i = 0; i < d->incident_count && off < len; i++)
    off += (size_t)snprintf(out + off, len - off, "%s%s", i ? "," : "", d->incidents[i].id);
  if (off < len) snprintf(out + off, len - off, "}");
}

static int read_sql(struct drill *d, struct observation *o) {
  char ids[DRILL_MAX_INCIDENTS * LK_ID_MAX];
  const char *params[1] = {ids};
  id_array(d, ids, sizeof ids);
  PGresult *r = PQexecParams(d->pg,
                             "select incident_id, state, coalesce(tier, ''), "
                             "coalesce(lead_unit, ''), array_to_string(missing_roles, ','), "
                             "exercise from incidents where incident_id = any($1::text[])",
                             1, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    snprintf(o->err, sizeof o->err, "the incidents view: %s", PQerrorMessage(d->pg));
    PQclear(r);
    return -1;
  }
  for (int i = 0; i < PQntuples(r); i++) {
    int k = incident_index(d, PQgetvalue(r, i, 0));
    if (k < 0) continue;
    struct scenario_seen *s = &o->seen[k];
    s->in_view = 1;
    snprintf(s->view_state, sizeof s->view_state, "%s", PQgetvalue(r, i, 1));
    snprintf(s->view_tier, sizeof s->view_tier, "%s", PQgetvalue(r, i, 2));
    snprintf(s->view_lead, sizeof s->view_lead, "%s", PQgetvalue(r, i, 3));
    snprintf(s->view_missing, sizeof s->view_missing, "%s", PQgetvalue(r, i, 4));
    s->view_exercise = PQgetvalue(r, i, 5)[0] == 't';
  }
  PQclear(r);
  /* The calls and the escalations, from the ledger itself. */
  r = PQexecParams(d->pg,
                   "select incident_id, payload from ledger where incident_id = any($1::text[]) "
                   "and type in ('dispatched', 'escalated') order by position",
                   1, NULL, params, NULL, NULL, 1);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    snprintf(o->err, sizeof o->err, "the ledger: %s", PQerrorMessage(d->pg));
    PQclear(r);
    return -1;
  }
  for (int i = 0; i < PQntuples(r); i++) {
    int k = incident_index(d, PQgetvalue(r, i, 0));
    Linkage__V1__Event *ev = linkage__v1__event__unpack(NULL, (size_t)PQgetlength(r, i, 1),
                                                        (const uint8_t *)PQgetvalue(r, i, 1));
    if (k < 0 || !ev) {
      if (ev) linkage__v1__event__free_unpacked(ev, NULL);
      continue;
    }
    struct scenario_seen *s = &o->seen[k];
    size_t off;
    if (ev->body_case == LINKAGE__V1__EVENT__BODY_DISPATCHED) {
      off = strlen(s->calls);
      snprintf(s->calls + off, sizeof s->calls - off, "%s %s@%s;", ev->dispatched->role,
               ev->dispatched->unit_id, lk_tier_name(ev->dispatched->tier) ?: "?");
    } else if (ev->body_case == LINKAGE__V1__EVENT__BODY_ESCALATED) {
      off = strlen(s->escalations);
      snprintf(s->escalations + off, sizeof s->escalations - off, "%s\n", ev->escalated->reason);
    }
    linkage__v1__event__free_unpacked(ev, NULL);
  }
  PQclear(r);
  return 0;
}

/* Reads every reader once. needs_*: fetch Open311 and CAP only when an expectation asks. */
static int observe(struct drill *d, struct observation *o, int needs_open311, int needs_cap) {
  memset(o, 0, sizeof *o);
  if (read_sql(d, o) != 0 || read_api(d, o) != 0) return -1;
  for (size_t i = 0; i < d->incident_count; i++) {
    if (needs_open311) read_open311(d, d->incidents[i].id, &o->seen[i]);
    if (needs_cap) read_cap(d, d->incidents[i].id, &o->seen[i]);
  }
  return 0;
}

static void do_expect(struct drill *d, const struct scenario_step *st) {
  int needs_open311 = 0, needs_cap = 0;
  for (size_t i = 0; i < st->expect_count; i++) {
    needs_open311 |= strcmp(st->expects[i].key, "missing") == 0;
    needs_cap |= strcmp(st->expects[i].key, "cap") == 0;
  }
  static struct observation o;
  char why[1024];
  int64_t end = lk_mono_us() + (int64_t)(d->grace_s * 1e6);
  int all = 0;
  for (;;) {
    all = observe(d, &o, needs_open311, needs_cap) == 0;
    for (size_t i = 0; all && i < st->expect_count; i++) {
      const struct scenario_expect *e = &st->expects[i];
      int k = e->incident ? incident_index(d, id_of(d, e->incident)) : 0;
      all = k >= 0 && scenario_check(e, &o.seen[k], o.first, id_of, d, why, sizeof why);
    }
    if (all || lk_mono_us() >= end) break;
    pump(d, lk_mono_us() + 50000);
  }
  for (size_t i = 0; i < st->expect_count; i++) {
    const struct scenario_expect *e = &st->expects[i];
    int k = e->incident ? incident_index(d, id_of(d, e->incident)) : 0;
    int ok = o.err[0] == '\0' && k >= 0 &&
             scenario_check(e, &o.seen[k], o.first, id_of, d, why, sizeof why);
    if (o.err[0]) snprintf(why, sizeof why, "%s", o.err);
    char want[512] = "";
    for (size_t q = 0, off = 0; q < e->n && off < sizeof want; q++)
      off += (size_t)snprintf(want + off, sizeof want - off, "%s%s", q ? ", " : "", e->values[q]);
    check(d, ok, "line %d, minute %g: %s %s %s%s%s", e->line, st->at_min,
          e->incident ? e->incident : "dashboard", e->key, want, ok ? "" : ": ", ok ? "" : why);
  }
}

/* ---- the rules every scenario holds, over the whole drill ---- */

static int disagree_now(struct drill *d, struct observation *o, char live[][16][160], int *read,
                        char *disagree, size_t dlen, char *unlive, size_t ulen);

static void check_rules(struct drill *d) {
  char ids[DRILL_MAX_INCIDENTS * LK_ID_MAX];
  const char *params[1] = {ids};
  id_array(d, ids, sizeof ids);
  PGresult *r = PQexecParams(d->pg,
                             "select payload from ledger where incident_id = any($1::text[]) "
                             "order by position",
                             1, NULL, params, NULL, NULL, 1);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    check(d, 0, "rules: cannot read the ledger: %s", PQerrorMessage(d->pg));
    PQclear(r);
    return;
  }
  char early[512] = "", born[512] = "", unlive[512] = "";
  /* Live lead calls: "unit role n" added on dispatched, taken out on unit_declined. */
  static char live[DRILL_MAX_INCIDENTS][16][160];
  memset(live, 0, sizeof live);
  for (int i = 0; i < PQntuples(r); i++) {
    Linkage__V1__Event *ev = linkage__v1__event__unpack(NULL, (size_t)PQgetlength(r, i, 0),
                                                        (const uint8_t *)PQgetvalue(r, i, 0));
    if (!ev) continue;
    int k = incident_index(d, ev->incident_id);
    const char *name = k >= 0 ? d->incidents[k].name : "?";
    switch (ev->body_case) {
    case LINKAGE__V1__EVENT__BODY_ESCALATED: {
      const Linkage__V1__Escalated *e = ev->escalated;
      if ((e->deadline[0] && ev->at_us < e->due_us) ||
          (!e->deadline[0] && strstr(e->reason, "deadline missed")))
        snprintf(early, sizeof early, "%s: \"%s\" at minute %.2f, due at minute %.2f", name,
                 e->reason, plan_min(d, ev->at_us - d->t0_us), plan_min(d, e->due_us - d->t0_us));
      if (e->acknowledge_by_us && e->acknowledge_by_us <= ev->at_us)
        snprintf(born, sizeof born, "%s arrived at %s tier with its deadline passed", name,
                 lk_tier_name(e->to_tier) ?: "?");
      break;
    }
    case LINKAGE__V1__EVENT__BODY_ROUTED:
      if (ev->routed->acknowledge_by_us && ev->routed->acknowledge_by_us <= ev->at_us)
        snprintf(born, sizeof born, "%s was routed with its deadline passed", name);
      break;
    case LINKAGE__V1__EVENT__BODY_OVERDUE:
      if (ev->at_us < ev->overdue->due_us)
        snprintf(early, sizeof early, "%s: overdue at minute %.2f, due at minute %.2f", name,
                 plan_min(d, ev->at_us - d->t0_us), plan_min(d, ev->overdue->due_us - d->t0_us));
      break;
    case LINKAGE__V1__EVENT__BODY_DISPATCHED:
      if (k >= 0 && ev->dispatched->lead)
        for (int j = 0; j < 16; j++)
          if (!live[k][j][0]) {
            snprintf(live[k][j], sizeof live[k][j], "%s %s", ev->dispatched->unit_id,
                     ev->dispatched->assignment_id);
            break;
          }
      break;
    case LINKAGE__V1__EVENT__BODY_UNIT_DECLINED:
      for (int j = 0; k >= 0 && j < 16; j++) {
        const char *sp = strchr(live[k][j], ' ');
        if (sp && strcmp(sp + 1, ev->unit_declined->assignment_id) == 0) live[k][j][0] = '\0';
      }
      break;
    default: break;
    }
    linkage__v1__event__free_unpacked(ev, NULL);
  }
  PQclear(r);
  check(d, !early[0], "rule: no deadline is reported missed before it passed%s%s",
        early[0] ? ": " : "", early);
  check(d, !born[0], "rule: no incident arrives at a tier already overdue%s%s", born[0] ? ": " : "",
        born);
  r = PQexecParams(d->pg,
                   "select count(*) from incidents where incident_id = any($1::text[]) and "
                   "(time_to_acknowledge is not null or time_to_arrive is not null or "
                   "time_to_resolve is not null)",
                   1, NULL, params, NULL, NULL, 0);
  int timed = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  check(d, timed == 0, "rule: a drill's incidents are left out of the view's time figures%s",
        timed ? " (some have times)" : "");

  /* The readers are read one after the other while the stack goes on: a decision committed in
   * between would look like a disagreement. Read until they agree, or the grace passes. */
  static struct observation o;
  char disagree[1024];
  int read;
  int64_t end = lk_mono_us() + (int64_t)(d->grace_s * 1e6);
  do {
    if (disagree_now(d, &o, live, &read, disagree, sizeof disagree, unlive, sizeof unlive) == 0)
      break;
    pump(d, lk_mono_us() + 100000);
  } while (lk_mono_us() < end);
  check(d, read && !disagree[0],
        "rule: every reader agrees on state, lead, missing roles and the exercise mark%s%s",
        read ? (disagree[0] ? ": " : "") : ": ", read ? disagree : o.err);
  check(d, read && !unlive[0], "rule: the lead shown is a unit whose lead call is live%s%s",
        unlive[0] ? ": " : "", unlive);
}

/* One look at the readers for check_rules: 0 when they agree and the lead is live. */
static int disagree_now(struct drill *d, struct observation *op, char live[][16][160], int *read,
                        char *disagree, size_t dlen, char *unlive, size_t ulen) {
  struct observation *o = op;
  disagree[0] = unlive[0] = '\0';
  *read = observe(d, o, 0, 1) == 0;
  for (size_t i = 0; *read && i < d->incident_count; i++) {
    const struct scenario_seen *s = &o->seen[i];
    if (strcmp(s->view_state, s->api_state) || strcmp(s->view_lead, s->api_lead) ||
        strcmp(s->view_missing, s->api_missing))
      snprintf(disagree, dlen,
               "%s: the view says %s, lead %s, missing [%s]; the API says %s, lead %s, missing "
               "[%s]",
               d->incidents[i].name, s->view_state, s->view_lead, s->view_missing, s->api_state,
               s->api_lead, s->api_missing);
    /* CAP's msgType follows the same state: Cancel exactly when the incident is closed. */
    if (!strcmp(s->cap_msgtype, "Cancel") != !strcmp(s->api_state, "closed"))
      snprintf(disagree, dlen, "%s: state %s but CAP msgType %s", d->incidents[i].name,
               s->api_state, s->cap_msgtype);
    if (strcmp(s->cap_status, "Exercise") != 0 || !s->view_exercise || !s->api_exercise)
      snprintf(disagree, dlen, "%s is not marked as an exercise everywhere", d->incidents[i].name);
    int lead_live = !s->api_lead[0];
    for (int j = 0; j < 16 && !lead_live; j++)
      lead_live = strncmp(live[i][j], s->api_lead, strlen(s->api_lead)) == 0 &&
                  live[i][j][strlen(s->api_lead)] == ' ';
    if (!lead_live)
      snprintf(unlive, ulen, "%s shows %s as lead, whose lead call is not live",
               d->incidents[i].name, s->api_lead);
  }
  return !*read || disagree[0] || unlive[0] ? -1 : 0;
}

/* ---- the run ---- */

static int read_time_scale(struct drill *d) {
  struct ctl_probe p;
  if (ctl_probe_start(&p, d->zctx, "router", lk_mono_us()) != 0) return -1;
  int got = ctl_probe_poll(&p, 2000);
  ctl_probe_stop(&p);
  const char *ts = got == 1 ? strstr(p.reply, "time_scale=") : NULL;
  if (!ts) return -1;
  d->scale = strtod(ts + 11, NULL);
  return d->scale > 0 ? 0 : -1;
}

static int open_units(struct drill *d) {
  const struct scenario *sc = d->sc;
  size_t n = sc->present_all ? d->district->unit_count : sc->present_count;
  if (n > DRILL_MAX_UNITS) n = DRILL_MAX_UNITS;
  for (size_t i = 0; i < n; i++) {
    const char *id = sc->present_all ? d->district->units[i].id : sc->present[i];
    if (!lk_district_unit(d->district, id)) {
      fprintf(stderr, "linkagectl drill: %s: present: \"%s\" is not a unit of the district\n",
              sc->path, id);
      return -1;
    }
    struct drill_unit *u = &d->units[d->unit_count++];
    u->id = id;
    u->sock = dealer(d, d->cfg.dispatch_endpoint);
    if (!u->sock) return -1;
    unit_hello(u);
  }
  /* Everybody registered before minute 0: a unit's presence decides who is called. */
  int64_t end = lk_mono_us() + DRILL_WAIT_MS * 1000LL;
  for (;;) {
    size_t ok = 0;
    for (size_t i = 0; i < d->unit_count; i++)
      ok += (size_t)d->units[i].registered;
    if (ok == d->unit_count) return 0;
    if (lk_mono_us() >= end) {
      fprintf(stderr, "linkagectl drill: %zu of %zu consoles not welcomed by dispatch\n",
              d->unit_count - ok, d->unit_count);
      return -1;
    }
    pump(d, lk_mono_us() + 50000);
  }
}

int ctl_drill_main(int argc, char **argv) {
  static struct drill d;
  static const struct option opts[] = {
      {"token", required_argument, NULL, 't'},
      {"gateway", required_argument, NULL, 'g'},
      {"pg", required_argument, NULL, 'p'},
      {"district", required_argument, NULL, 'D'},
      {"time-scale", required_argument, NULL, 's'},
      {"grace", required_argument, NULL, 'G'},
      {"help", no_argument, NULL, 'h'},
      {0, 0, 0, 0},
  };
  const char *district = getenv("LINKAGE_DISTRICT");
  char err[1024];
  int c, code = CTL_EXIT_USAGE;
  memset(&d, 0, sizeof d);
  d.token = getenv("LINKAGE_TOKEN");
  d.gateway = getenv("LINKAGE_GATEWAY_URL");
  d.grace_s = 1.0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 't': d.token = optarg; break;
    case 'g': d.gateway = optarg; break;
    case 'p': d.pg_conninfo = optarg; break;
    case 'D': district = optarg; break;
    case 's': d.scale = strtod(optarg, NULL); break;
    case 'G': d.grace_s = strtod(optarg, NULL); break;
    case 'h': fputs(drill_help, stdout); return CTL_EXIT_OK;
    default: fputs(drill_help, stderr); return CTL_EXIT_USAGE;
    }
  }
  if (optind + 1 != argc || d.grace_s <= 0 || d.grace_s > 600) {
    fputs(drill_help, stderr);
    return CTL_EXIT_USAGE;
  }
  if (!d.token || !d.token[0]) {
    fprintf(stderr, "linkagectl drill: a coordinator's token is needed (--token or "
                    "LINKAGE_TOKEN; linkagectl token add NAME --role coordinator)\n");
    return CTL_EXIT_USAGE;
  }
  if (!d.gateway) d.gateway = "http://127.0.0.1:8080";
  ctl_log_init();
  if (ctl_config_load(&d.cfg) != 0) return CTL_EXIT_CONFIG;
  if (!d.pg_conninfo) d.pg_conninfo = d.cfg.pg;
  struct scenario *sc = scenario_load(argv[optind], err, sizeof err);
  if (!sc) {
    fprintf(stderr, "linkagectl drill: %s\n", err);
    return CTL_EXIT_USAGE;
  }
  d.sc = sc;
  d.district =
      lk_district_load(district ? district : "deploy/district/wenjiang.yaml", err, sizeof err);
  d.zctx = zmq_ctx_new();
  if (!d.district) {
    fprintf(stderr, "linkagectl drill: %s\n", err);
    goto out;
  }
  d.pg = ctl_pg_connect(d.pg_conninfo);
  if (PQstatus(d.pg) != CONNECTION_OK) {
    fprintf(stderr, "linkagectl drill: cannot connect to \"%s\": %s", d.pg_conninfo,
            PQerrorMessage(d.pg));
    goto out;
  }
  if (d.scale <= 0 && read_time_scale(&d) != 0) {
    fprintf(stderr, "linkagectl drill: the router does not say its time_scale (is the stack "
                    "running?); give --time-scale\n");
    goto out;
  }
  char rnd[17];
  if (ctl_command_id(rnd, sizeof rnd) != 0) {
    fprintf(stderr, "linkagectl drill: cannot draw a random run id\n");
    goto out;
  }
  snprintf(d.run, sizeof d.run, "%.6s", rnd);
  d.intake = dealer(&d, d.cfg.intake_endpoint);
  d.router = dealer(&d, d.cfg.router_endpoint);
  if (!d.intake || !d.router || open_units(&d) != 0) goto out;

  printf("# scenario: %s (%s)\n", sc->title, sc->path);
  if (sc->clock_min >= 0)
    printf("# written for %02d:%02d local time at minute 0; duty hours are the stack's\n",
           sc->clock_min / 60, sc->clock_min % 60);
  printf("# a plan minute is %.3f s (time_scale %g); run %s\n", 60.0 / d.scale, d.scale, d.run);
  fflush(stdout);
  if (0.5 * 60.0 / d.scale > d.grace_s) d.grace_s = 0.5 * 60.0 / d.scale;
  d.t0_us = lk_now_us();
  d.t0_mono = lk_mono_us();
  for (size_t i = 0; i < sc->step_count; i++) {
    const struct scenario_step *st = &sc->steps[i];
    pump(&d, d.t0_mono + plan_us(&d, st->at_min));
    switch (st->kind) {
    case SC_REPORT: do_report(&d, st, i); break;
    case SC_ANSWER: do_answer(&d, st); break;
    case SC_COORDINATOR: do_coordinator(&d, st, i); break;
    case SC_ABSENT: do_absent(&d, st); break;
    case SC_EXPECT: do_expect(&d, st); break;
    }
  }
  check_rules(&d);
  printf("%u passed, %u failed\n", d.passed, d.failed);
  code = d.failed ? CTL_EXIT_FAIL : CTL_EXIT_OK;

out:
  for (size_t i = 0; i < d.unit_count; i++)
    if (d.units[i].sock) zmq_close(d.units[i].sock);
  if (d.intake) zmq_close(d.intake);
  if (d.router) zmq_close(d.router);
  if (d.zctx) zmq_ctx_term(d.zctx);
  if (d.pg) PQfinish(d.pg);
  lk_district_destroy(&d.district);
  scenario_destroy(&sc);
  return code;
}
