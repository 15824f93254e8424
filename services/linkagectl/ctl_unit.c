/* linkagectl unit: a responder console for demos and tests. Speaks the
 * responder protocol (proto/linkage/v1/unit.proto) to linkage-dispatch over a
 * DEALER socket, as a unit's app would: Hello, heartbeats, assignments in,
 * answers out. The formatting and parsing are plain functions (unit-tested);
 * the exchanges below them do the I/O. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "ctl.h"
#include "linkage/clock.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "linkage/log.h"
#include "linkage/map.h"
#include "linkage/v1/unit.pb-c.h"

#define HELLO_AGAIN_MS 1000 /* resend Hello until a Welcome comes: dispatch may be starting */
#define BUSY_PAUSE_MS 200   /* before resending an answer that came back BUSY */
#define HEARTBEAT_DEFAULT_MS 2000
#define WELCOME_WAIT_US (10 * 1000000LL) /* listen: no Welcome by then, nobody is answering */

static const char unit_help[] =
    "NAME\n"
    "    linkagectl unit - a responder console: act as one unit towards dispatch\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl unit UNIT_ID listen [--count N] [--timeout SECONDS]\n"
    "    linkagectl unit add|revoke ...  (the unit's CURVE key: see unit add --help)\n"
    "    linkagectl unit UNIT_ID list [--timeout MS]\n"
    "    linkagectl unit UNIT_ID ACTION ASSIGNMENT_ID [--note TEXT] [--timeout MS]\n"
    "                            [--retries N]\n"
    "    ACTION is ack, on-scene, resolve, decline, backup or verify.\n"
    "\n"
    "DESCRIPTION\n"
    "    Connects a DEALER to linkage-dispatch ($LINKAGE_DISPATCH_ENDPOINT or\n"
    "    --endpoint, default tcp://127.0.0.1:7005) and says Hello as UNIT_ID (a\n"
    "    unit id of the district data). With CURVE on the unit port, set\n"
    "    LINKAGE_CURVE_SERVER_KEY_FILE and LINKAGE_CURVE_CLIENT_KEY_FILE (the\n"
    "    unit's registered key pair); the same key serves every console of it.\n"
    "\n"
    "    listen is the unit's session: its Hello takes the unit over from any\n"
    "    other session (another device of the unit), which is told so. list and\n"
    "    the answers are one-shot (unit.proto, UnitMessage.one_shot): run from a\n"
    "    second terminal, they leave a running listen as it is.\n"
    "\n"
    "    listen   prints every assignment sent to the unit as one line\n"
    "               assignment_id=.. incident_id=.. role=.. lead=true|false\n"
    "               category=.. kind=.. severity=.. compound=.. building=..\n"
    "               tier=.. acknowledge_by=<ISO 8601> arrive_by=.. resolve_by=..\n"
    "               state=.. exercise=true|false description=\"..\"\n"
    "             (an empty value prints as -), and sends a Heartbeat every\n"
    "             heartbeat_ms the Welcome names, so dispatch counts the unit\n"
    "             present. Repeats of an assignment id (dispatch re-sends after\n"
    "             a restart and on every Hello) are dropped. Runs until SIGINT,\n"
    "             or until --count N new assignments came (exit 0); --timeout\n"
    "             SECONDS ends it early (exit 75 when --count was not reached,\n"
    "             else 0). Not welcomed within 10 s (nothing listens there, or\n"
    "             the key is refused): one line on stderr saying why, exit 75 (2\n"
    "             for a refused handshake). Told it was taken over by another\n"
    "             session: status=REJECTED, exit 1. Told dispatch forgot it (a\n"
    "             restart): says Hello again.\n"
    "    list     prints the unit's assignments, one line each as above.\n"
    "    ack, on-scene, resolve, decline, backup, verify\n"
    "             answer an assignment: acknowledged, on scene, resolved,\n"
    "             declined (dispatch calls the next suitable unit), need backup\n"
    "             (one more unit of the role), verified (a grid worker checked\n"
    "             the fix on site: the incident closes). --note TEXT (up to 500\n"
    "             bytes) goes into the event. Prints one line:\n"
    "               status=OK event_id=ID\n"
    "               status=REJECTED error=\"why\"\n"
    "               status=BUSY error=\"why\"  /  status=TIMEOUT error=\"why\"\n"
    "             An unanswered or BUSY answer is sent again (--retries, default\n"
    "             2) with the same seq; its event id is fixed by the assignment,\n"
    "             so it is committed at most once. Without any answer, a line on\n"
    "             stderr names the endpoint and the likely cause.\n"
    "\n"
    "OPTIONS\n"
    "    --endpoint EP     dispatch's unit endpoint\n"
    "    --count N         listen: exit after N new assignments\n"
    "    --timeout T       listen: SECONDS to listen at most; list and answers:\n"
    "                      MS to wait for each answer (default 5000)\n"
    "    --retries N       answers and list: send again this many times after no\n"
    "                      answer or BUSY (default 2)\n"
    "    --note TEXT       answers: a note for the timeline\n"
    "\n"
    "EXIT STATUS\n"
    "    0 OK, 1 REJECTED (or the Hello was refused: unknown unit), 2 usage or\n"
    "    connection error (a handshake refused: CURVE keys missing or wrong), 75\n"
    "    BUSY or no answer (try again).\n";

/* ---- plain helpers (unit-tested) ---- */

static const struct {
  const char *action;
  int kind;
} answer_actions[] = {
    {"ack", LINKAGE__V1__ANSWER__KIND__ACKNOWLEDGED},
    {"on-scene", LINKAGE__V1__ANSWER__KIND__ON_SCENE},
    {"resolve", LINKAGE__V1__ANSWER__KIND__RESOLVED},
    {"decline", LINKAGE__V1__ANSWER__KIND__DECLINED},
    {"backup", LINKAGE__V1__ANSWER__KIND__NEED_BACKUP},
    {"verify", LINKAGE__V1__ANSWER__KIND__VERIFIED},
};

int ctl_unit_answer_kind(const char *action) {
  if (!action) return 0;
  for (size_t i = 0; i < sizeof answer_actions / sizeof answer_actions[0]; i++)
    if (strcmp(answer_actions[i].action, action) == 0) return answer_actions[i].kind;
  return 0;
}

/* Appends " key=value" to out at *pos, quoting the value only when logfmt
 * needs it; an empty value appends "-". Truncates at len. */
static void put_field(char *out, size_t len, size_t *pos, const char *key, const char *value) {
  char buf[1024];
  const char *p;
  int n;

  if (*pos >= len) return;
  if (!value || !value[0]) value = "-";
  for (p = value; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("_-.:/@+", *p)) break;
  if (*p)
    n = snprintf(out + *pos, len - *pos, "%s%s=\"%s\"", *pos ? " " : "", key,
                 lk_log_quote(buf, sizeof buf, value));
  else
    n = snprintf(out + *pos, len - *pos, "%s%s=%s", *pos ? " " : "", key, value);
  if (n < 0) return;
  *pos = (size_t)n >= len - *pos ? len : *pos + (size_t)n;
}

static void put_time(char *out, size_t len, size_t *pos, const char *key, int64_t us) {
  char t[48] = "";

  if (us > 0) ctl_format_time(us, t, sizeof t);
  put_field(out, len, pos, key, t);
}

/* An enum by its name, or its number when it has none (a newer dispatch). */
static void put_enum(char *out, size_t len, size_t *pos, const char *key, const char *name,
                     int value) {
  char num[16];

  if (!name) {
    snprintf(num, sizeof num, "%d", value);
    name = num;
  }
  put_field(out, len, pos, key, name);
}

void ctl_unit_format_assignment(const Linkage__V1__Assignment *a, char *out, size_t len) {
  const Linkage__V1__Location *loc = a->location;
  size_t pos = 0;

  if (len == 0) return;
  out[0] = '\0';
  put_field(out, len, &pos, "assignment_id", a->assignment_id);
  put_field(out, len, &pos, "incident_id", a->incident_id);
  put_field(out, len, &pos, "role", a->role);
  put_field(out, len, &pos, "lead", a->lead ? "true" : "false");
  put_enum(out, len, &pos, "category", lk_category_name(a->category), (int)a->category);
  put_field(out, len, &pos, "kind", a->kind);
  put_enum(out, len, &pos, "severity", lk_severity_name(a->severity), (int)a->severity);
  put_field(out, len, &pos, "compound", loc ? loc->compound_id : NULL);
  put_field(out, len, &pos, "building", loc ? loc->building : NULL);
  put_enum(out, len, &pos, "tier", lk_tier_name(a->tier), (int)a->tier);
  put_time(out, len, &pos, "acknowledge_by", a->acknowledge_by_us);
  put_time(out, len, &pos, "arrive_by", a->arrive_by_us);
  put_time(out, len, &pos, "resolve_by", a->resolve_by_us);
  put_field(out, len, &pos, "state", a->state);
  /* A drill's call must never be mistaken for a real one, nor the other way round. */
  put_field(out, len, &pos, "exercise", a->exercise ? "true" : "false");
  put_field(out, len, &pos, "description", a->description);
}

int ctl_unit_reply_outcome(const Linkage__V1__AnswerReply *rep, char *line, size_t len) {
  char err[1024];
  const char *e = rep->error ? rep->error : "";

  switch (rep->status) {
  case LINKAGE__V1__ANSWER_REPLY__STATUS__OK:
    snprintf(line, len, "status=OK event_id=%s", rep->event_id ? rep->event_id : "");
    return CTL_EXIT_OK;
  case LINKAGE__V1__ANSWER_REPLY__STATUS__REJECTED:
    snprintf(line, len, "status=REJECTED error=\"%s\"", lk_log_quote(err, sizeof err, e));
    return CTL_EXIT_FAIL;
  case LINKAGE__V1__ANSWER_REPLY__STATUS__BUSY:
    snprintf(line, len, "status=BUSY error=\"%s\"", lk_log_quote(err, sizeof err, e));
    return CTL_EXIT_TEMPFAIL;
  default:
    snprintf(line, len, "status=UNKNOWN error=\"reply status %d\"", (int)rep->status);
    return CTL_EXIT_TEMPFAIL;
  }
}

int ctl_seen_init(struct ctl_seen *s) {
  return lk_map_init(&s->ids, 64);
}

void ctl_seen_close(struct ctl_seen *s) {
  lk_map_close(&s->ids);
}

int ctl_seen_add(struct ctl_seen *s, const char *id) {
  uint64_t v;

  if (!id || !id[0]) return 0; /* nothing to print under no id */
  if (lk_map_get(&s->ids, id, &v)) return 0;
  return lk_map_put(&s->ids, id, 1) == LK_OK ? 1 : -1;
}

int64_t ctl_unit_poll_ms(int64_t now_us, int64_t next_beat_us, int64_t deadline_us) {
  int64_t until = next_beat_us;

  if (deadline_us > 0 && deadline_us < until) until = deadline_us;
  if (until <= now_us) return 0;
  return (until - now_us + 999) / 1000;
}

/* ---- the wire ---- */

static volatile sig_atomic_t interrupted;

static void on_signal(int signum) {
  (void)signum;
  interrupted = 1;
}

/* SIGINT and SIGTERM end `listen` cleanly: zmq_poll returns EINTR, the loop
 * sees the flag. No SA_RESTART, so the poll does return. */
static void catch_signals(void) {
  struct sigaction sa;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

struct unit_opts {
  const char *unit_id;
  const char *action;
  const char *assignment_id;
  const char *note;
  const char *endpoint;
  const char *endpoint_source; /* where the endpoint came from, for the line saying it is silent */
  uint64_t count;
  uint64_t timeout; /* listen: seconds (0: none); others: ms per attempt */
  uint64_t retries;
  int have_timeout;
};

static int open_dealer(struct ctl_conn *c, void *zctx, const struct unit_opts *o) {
  return ctl_conn_open(c, zctx, ZMQ_DEALER, o->endpoint, CTL_PEER_UNIT, "unit", o->endpoint_source);
}

/* An empty delimiter frame, then the UnitMessage; no later than deadline (mono µs). */
static enum ctl_wait send_message(struct ctl_conn *c, const Linkage__V1__UnitMessage *m,
                                  int64_t deadline) {
  uint8_t stack_buf[2048];
  size_t len = linkage__v1__unit_message__get_packed_size(m);
  uint8_t *buf = len <= sizeof stack_buf ? stack_buf : malloc(len);
  enum ctl_wait w;

  if (!buf) return CTL_WAIT_ERROR;
  linkage__v1__unit_message__pack(m, buf);
  const void *bufs[2] = {"", buf};
  size_t lens[2] = {0, len};
  w = ctl_conn_send(c, bufs, lens, 2, deadline);
  if (buf != stack_buf) free(buf);
  return w;
}

/* one_shot: the Hello of list and the answers, which must not take the unit's session from a
 * `listen` running elsewhere (unit.proto, UnitMessage.one_shot). */
static enum ctl_wait send_hello(struct ctl_conn *c, const char *unit_id, int one_shot,
                                int64_t deadline) {
  Linkage__V1__UnitMessage m = LINKAGE__V1__UNIT_MESSAGE__INIT;
  Linkage__V1__Hello hello = LINKAGE__V1__HELLO__INIT;

  m.unit_id = (char *)unit_id;
  m.one_shot = one_shot != 0;
  hello.software = one_shot ? "linkagectl unit (one-shot)" : "linkagectl unit";
  m.body_case = LINKAGE__V1__UNIT_MESSAGE__BODY_HELLO;
  m.hello = &hello;
  return send_message(c, &m, deadline);
}

static enum ctl_wait send_heartbeat(struct ctl_conn *c, const char *unit_id, int64_t deadline) {
  Linkage__V1__UnitMessage m = LINKAGE__V1__UNIT_MESSAGE__INIT;
  Linkage__V1__Heartbeat hb = LINKAGE__V1__HEARTBEAT__INIT;

  m.unit_id = (char *)unit_id;
  m.body_case = LINKAGE__V1__UNIT_MESSAGE__BODY_HEARTBEAT;
  m.heartbeat = &hb;
  return send_message(c, &m, deadline);
}

/* Waits until deadline (mono µs) for one DispatchMessage. Returns it, or NULL with *why set:
 * CTL_WAIT_TIMEOUT, _REFUSED (the handshake), _INTR (a signal), _ERROR (errno). A message that
 * does not decode is logged and skipped. */
static Linkage__V1__DispatchMessage *recv_message(struct ctl_conn *c, int64_t deadline,
                                                  enum ctl_wait *why) {
  for (;;) {
    zmq_msg_t msg;
    int more;
    size_t more_len = sizeof more;
    Linkage__V1__DispatchMessage *dm;

    if (interrupted) {
      *why = CTL_WAIT_INTR;
      return NULL;
    }
    *why = ctl_conn_wait(c, deadline);
    if (*why == CTL_WAIT_INTR) continue; /* the flag above says whether to stop */
    if (*why != CTL_WAIT_READY) return NULL;
    /* The body is the last frame; the first is the empty delimiter. */
    zmq_msg_init(&msg);
    for (;;) {
      if (zmq_msg_recv(&msg, c->sock, 0) < 0) {
        zmq_msg_close(&msg);
        *why = CTL_WAIT_ERROR;
        return NULL;
      }
      if (zmq_getsockopt(c->sock, ZMQ_RCVMORE, &more, &more_len) != 0 || !more) break;
    }
    dm = linkage__v1__dispatch_message__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    if (dm) return dm;
    lk_warn("message from dispatch is not a DispatchMessage, ignored", NULL);
  }
}

/* A Welcome refusing us: the line, and exit 1. */
static int refused(const Linkage__V1__Welcome *w) {
  char err[1024];

  printf("status=REJECTED error=\"%s\"\n", lk_log_quote(err, sizeof err, w->error));
  return CTL_EXIT_FAIL;
}

static void print_assignment(const Linkage__V1__Assignment *a) {
  char line[4096];

  ctl_unit_format_assignment(a, line, sizeof line);
  printf("%s\n", line);
  fflush(stdout);
}

/* ---- listen ---- */

/* Dispatch that forgot the session (it restarted) refuses the next heartbeat so; the session is
 * opened again, as a unit's app would. A session taken over by a later Hello is not. */
static int forgotten(const Linkage__V1__Welcome *w) {
  return w->error && strstr(w->error, "send Hello first") != NULL;
}

static int unit_listen(void *zctx, const struct unit_opts *o) {
  struct ctl_seen seen;
  struct ctl_conn conn;
  int64_t start = lk_mono_us(), now = start, next_beat = now, deadline = 0;
  int64_t welcome_by = start + WELCOME_WAIT_US;
  int64_t beat_us = HELLO_AGAIN_MS * 1000LL;
  uint64_t fresh = 0;
  int welcomed = 0, ever_welcomed = 0, code = CTL_EXIT_OK;
  enum ctl_wait why;

  if (o->have_timeout && o->timeout > 0) deadline = now + (int64_t)o->timeout * 1000000;
  if (ctl_seen_init(&seen) != LK_OK) return CTL_EXIT_FAIL;
  if (open_dealer(&conn, zctx, o) != 0) {
    ctl_seen_close(&seen);
    return CTL_EXIT_USAGE;
  }
  catch_signals();
  for (;;) {
    Linkage__V1__DispatchMessage *dm;
    int64_t until;

    now = lk_mono_us();
    if (interrupted) break;
    if (deadline && now >= deadline) {
      if (o->count && fresh < o->count) {
        fprintf(stderr, "linkagectl unit: %llu of %llu assignments within %llu s; giving up\n",
                (unsigned long long)fresh, (unsigned long long)o->count,
                (unsigned long long)o->timeout);
        code = CTL_EXIT_TEMPFAIL;
      }
      break;
    }
    /* A console never welcomed is talking to nobody: say so rather than wait in silence. Once
     * welcomed, a silent dispatch is a restart the heartbeats ride out. */
    if (!ever_welcomed && now >= welcome_by) {
      ctl_conn_explain(&conn, WELCOME_WAIT_US / 1000);
      code = CTL_EXIT_TEMPFAIL;
      break;
    }
    if (now >= next_beat) {
      /* Before the Welcome this says Hello again: dispatch may not have been up. */
      why = welcomed ? send_heartbeat(&conn, o->unit_id, now + beat_us)
                     : send_hello(&conn, o->unit_id, 0, now + beat_us);
      if (why == CTL_WAIT_REFUSED) {
        ctl_conn_explain(&conn, (uint64_t)(now - start) / 1000);
        code = CTL_EXIT_USAGE;
        break;
      }
      if (why == CTL_WAIT_ERROR) {
        fprintf(stderr, "linkagectl unit: send failed: %s\n", zmq_strerror(errno));
        code = CTL_EXIT_FAIL;
        break;
      }
      next_beat = lk_mono_us() + beat_us;
    }
    until = deadline;
    if (!ever_welcomed && (!until || welcome_by < until)) until = welcome_by;
    until = now + ctl_unit_poll_ms(now, next_beat, until) * 1000;
    dm = recv_message(&conn, until, &why);
    if (!dm) {
      if (why == CTL_WAIT_REFUSED) {
        ctl_conn_explain(&conn, (uint64_t)(lk_mono_us() - start) / 1000);
        code = CTL_EXIT_USAGE;
        break;
      }
      if (why == CTL_WAIT_ERROR) {
        fprintf(stderr, "linkagectl unit: receive failed: %s\n", zmq_strerror(errno));
        code = CTL_EXIT_FAIL;
        break;
      }
      continue;
    }
    if (dm->body_case == LINKAGE__V1__DISPATCH_MESSAGE__BODY_WELCOME) {
      const Linkage__V1__Welcome *w = dm->welcome;
      if (w->error && w->error[0] && welcomed && forgotten(w)) {
        fprintf(stderr, "linkagectl unit: dispatch forgot the session (a restart); Hello again\n");
        welcomed = 0;
        next_beat = lk_mono_us();
      } else if (w->error && w->error[0]) {
        code = refused(w);
        linkage__v1__dispatch_message__free_unpacked(dm, NULL);
        break;
      } else {
        if (!ever_welcomed)
          fprintf(stderr, "linkagectl unit: welcomed as %s, heartbeat every %u ms\n", o->unit_id,
                  w->heartbeat_ms ? w->heartbeat_ms : HEARTBEAT_DEFAULT_MS);
        welcomed = ever_welcomed = 1;
        beat_us = (int64_t)(w->heartbeat_ms ? w->heartbeat_ms : HEARTBEAT_DEFAULT_MS) * 1000;
        next_beat = lk_mono_us() + beat_us;
      }
    } else if (dm->body_case == LINKAGE__V1__DISPATCH_MESSAGE__BODY_ASSIGNMENT) {
      int added = ctl_seen_add(&seen, dm->assignment->assignment_id);
      if (added < 0) {
        linkage__v1__dispatch_message__free_unpacked(dm, NULL);
        code = CTL_EXIT_FAIL;
        break;
      }
      if (added) {
        print_assignment(dm->assignment);
        fresh++;
      }
    }
    linkage__v1__dispatch_message__free_unpacked(dm, NULL);
    if (o->count && fresh >= o->count) break;
  }
  ctl_conn_close(&conn);
  ctl_seen_close(&seen);
  return code;
}

/* ---- list and answers: request, reply ---- */

/* One attempt on a fresh socket: a one-shot Hello and the request back to back (dispatch takes
 * them in order), then the reply the request asks for. One-shot, so that a `listen` of the same
 * unit elsewhere keeps its session; the Hello still makes a refusal (unknown unit, a key of
 * another unit) come back as a Welcome. Assignments are never pushed to a one-shot console, but
 * an older dispatch treats the Hello as a full one and does: they are skipped. Returns the
 * reply message, or NULL with *code set (a refused Hello or handshake, a timeout, a socket
 * error) and line filled; last: the final attempt, which explains a silence on stderr. */
static Linkage__V1__DispatchMessage *request(void *zctx, const struct unit_opts *o,
                                             const Linkage__V1__UnitMessage *m,
                                             Linkage__V1__DispatchMessage__BodyCase want,
                                             uint64_t attempt, int last, char *line, size_t len,
                                             int *code) {
  struct ctl_conn conn;
  int64_t deadline = lk_mono_us() + (int64_t)o->timeout * 1000;
  Linkage__V1__DispatchMessage *dm = NULL;
  enum ctl_wait why;

  line[0] = '\0';
  if (open_dealer(&conn, zctx, o) != 0) {
    *code = CTL_EXIT_USAGE;
    return NULL;
  }
  why = send_hello(&conn, o->unit_id, 1, deadline);
  if (why == CTL_WAIT_READY) why = send_message(&conn, m, deadline);
  while (why == CTL_WAIT_READY) {
    dm = recv_message(&conn, deadline, &why);
    if (!dm) break;
    if (dm->body_case == LINKAGE__V1__DISPATCH_MESSAGE__BODY_WELCOME && dm->welcome->error &&
        dm->welcome->error[0]) {
      char err[1024];
      snprintf(line, len, "status=REJECTED error=\"%s\"",
               lk_log_quote(err, sizeof err, dm->welcome->error));
      linkage__v1__dispatch_message__free_unpacked(dm, NULL);
      ctl_conn_close(&conn);
      *code = CTL_EXIT_FAIL;
      return NULL;
    }
    if (dm->body_case == want && (want != LINKAGE__V1__DISPATCH_MESSAGE__BODY_ANSWER_REPLY ||
                                  dm->answer_reply->seq == m->seq))
      break;
    linkage__v1__dispatch_message__free_unpacked(dm, NULL);
    dm = NULL;
  }
  if (dm) {
    ctl_conn_close(&conn);
    return dm;
  }
  if (why == CTL_WAIT_REFUSED) {
    /* Final: the same keys on a fresh socket meet the same refusal. */
    ctl_conn_explain(&conn, o->timeout);
    *code = CTL_EXIT_USAGE;
  } else if (why == CTL_WAIT_ERROR) {
    fprintf(stderr, "linkagectl unit: socket error: %s\n", zmq_strerror(errno));
    *code = CTL_EXIT_FAIL;
  } else {
    snprintf(line, len,
             "status=TIMEOUT error=\"no answer from %s within %llu ms, %llu attempt(s)\"",
             o->endpoint, (unsigned long long)o->timeout, (unsigned long long)attempt + 1);
    if (last && !interrupted) ctl_conn_explain(&conn, o->timeout);
    *code = CTL_EXIT_TEMPFAIL;
  }
  ctl_conn_close(&conn);
  return NULL;
}

static void pause_ms(uint64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !interrupted) {
  }
}

static int unit_list(void *zctx, const struct unit_opts *o) {
  Linkage__V1__UnitMessage m = LINKAGE__V1__UNIT_MESSAGE__INIT;
  Linkage__V1__ListAssignments list = LINKAGE__V1__LIST_ASSIGNMENTS__INIT;
  char line[1400];
  int code = CTL_EXIT_TEMPFAIL;

  m.unit_id = (char *)o->unit_id;
  m.seq = (uint64_t)lk_now_us();
  m.one_shot = 1;
  m.body_case = LINKAGE__V1__UNIT_MESSAGE__BODY_LIST;
  m.list = &list;
  for (uint64_t attempt = 0; attempt <= o->retries; attempt++) {
    Linkage__V1__DispatchMessage *dm =
        request(zctx, o, &m, LINKAGE__V1__DISPATCH_MESSAGE__BODY_ASSIGNMENTS, attempt,
                attempt == o->retries, line, sizeof line, &code);
    if (dm) {
      for (size_t i = 0; i < dm->assignments->n_assignments; i++)
        print_assignment(dm->assignments->assignments[i]);
      linkage__v1__dispatch_message__free_unpacked(dm, NULL);
      return CTL_EXIT_OK;
    }
    if (code != CTL_EXIT_TEMPFAIL || interrupted) break;
  }
  if (line[0]) printf("%s\n", line);
  return code;
}

static int unit_answer(void *zctx, const struct unit_opts *o, int kind) {
  Linkage__V1__UnitMessage m = LINKAGE__V1__UNIT_MESSAGE__INIT;
  Linkage__V1__Answer answer = LINKAGE__V1__ANSWER__INIT;
  char line[1400];
  int code = CTL_EXIT_TEMPFAIL;

  m.unit_id = (char *)o->unit_id;
  /* One seq for every attempt: a late reply to an earlier attempt still matches. */
  m.seq = (uint64_t)lk_now_us();
  m.one_shot = 1;
  answer.assignment_id = (char *)o->assignment_id;
  answer.kind = (Linkage__V1__Answer__Kind)kind;
  answer.note = (char *)(o->note ? o->note : "");
  m.body_case = LINKAGE__V1__UNIT_MESSAGE__BODY_ANSWER;
  m.answer = &answer;
  for (uint64_t attempt = 0; attempt <= o->retries; attempt++) {
    Linkage__V1__DispatchMessage *dm =
        request(zctx, o, &m, LINKAGE__V1__DISPATCH_MESSAGE__BODY_ANSWER_REPLY, attempt,
                attempt == o->retries, line, sizeof line, &code);
    if (dm) {
      code = ctl_unit_reply_outcome(dm->answer_reply, line, sizeof line);
      linkage__v1__dispatch_message__free_unpacked(dm, NULL);
      if (code != CTL_EXIT_TEMPFAIL) break;
      if (attempt < o->retries) pause_ms(BUSY_PAUSE_MS < o->timeout ? BUSY_PAUSE_MS : o->timeout);
      continue;
    }
    if (code != CTL_EXIT_TEMPFAIL || interrupted) break;
    lk_debug("no answer", "unit_id=%s seq=%llu attempt=%llu", o->unit_id, (unsigned long long)m.seq,
             (unsigned long long)attempt + 1);
  }
  if (line[0]) printf("%s\n", line);
  return code;
}

/* ---- the command line ---- */

enum { OPT_ENDPOINT = 1000, OPT_COUNT, OPT_TIMEOUT, OPT_RETRIES, OPT_NOTE };

int ctl_unit_main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"endpoint", required_argument, NULL, OPT_ENDPOINT},
      {"count", required_argument, NULL, OPT_COUNT},
      {"timeout", required_argument, NULL, OPT_TIMEOUT},
      {"retries", required_argument, NULL, OPT_RETRIES},
      {"note", required_argument, NULL, OPT_NOTE},
      {"help", no_argument, NULL, 'h'},
      {0, 0, 0, 0},
  };
  struct unit_opts o;
  struct ctl_config cfg;
  int c, idx = 0, kind = 0, npos, code, listen;
  void *zctx;

  /* "unit add|revoke" manage keys; a unit id is never one of those two words. */
  if (argc > 1 && (strcmp(argv[1], "add") == 0 || strcmp(argv[1], "revoke") == 0))
    return ctl_registry_main(argc, argv);
  memset(&o, 0, sizeof o);
  o.retries = 2;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
    switch (c) {
    case OPT_ENDPOINT: o.endpoint = optarg; break;
    case OPT_COUNT:
      if (ctl_parse_u64(optarg, &o.count) != 0 || o.count == 0) goto bad_value;
      break;
    case OPT_TIMEOUT:
      if (ctl_parse_u64(optarg, &o.timeout) != 0 || o.timeout == 0 || o.timeout > 3600000)
        goto bad_value;
      o.have_timeout = 1;
      break;
    case OPT_RETRIES:
      if (ctl_parse_u64(optarg, &o.retries) != 0 || o.retries > 1000) goto bad_value;
      break;
    case OPT_NOTE: o.note = optarg; break;
    case 'h': fputs(unit_help, stdout); return CTL_EXIT_OK;
    default: fputs(unit_help, stderr); return CTL_EXIT_USAGE;
    }
  }
  npos = argc - optind;
  if (npos < 2) {
    fprintf(stderr, "linkagectl unit: expected UNIT_ID and an action; see --help\n");
    return CTL_EXIT_USAGE;
  }
  o.unit_id = argv[optind];
  o.action = argv[optind + 1];
  listen = strcmp(o.action, "listen") == 0;
  if (!listen && strcmp(o.action, "list") != 0) {
    kind = ctl_unit_answer_kind(o.action);
    if (!kind) {
      fprintf(stderr,
              "linkagectl unit: unknown action \"%s\"; expected listen, list, ack, on-scene, "
              "resolve, decline, backup or verify\n",
              o.action);
      return CTL_EXIT_USAGE;
    }
  }
  if (npos != (kind ? 3 : 2)) {
    fprintf(stderr, "linkagectl unit %s: expected %s; see --help\n", o.action,
            kind ? "UNIT_ID, the action and ASSIGNMENT_ID" : "UNIT_ID and the action only");
    return CTL_EXIT_USAGE;
  }
  if (kind) o.assignment_id = argv[optind + 2];
  if (!o.unit_id[0] || (kind && !o.assignment_id[0])) {
    fprintf(stderr, "linkagectl unit: UNIT_ID and ASSIGNMENT_ID must not be empty\n");
    return CTL_EXIT_USAGE;
  }
  if (o.count && !listen) {
    fprintf(stderr, "linkagectl unit %s: --count applies to listen only\n", o.action);
    return CTL_EXIT_USAGE;
  }
  if (o.note && !kind) {
    fprintf(stderr, "linkagectl unit %s: --note applies to answers only\n", o.action);
    return CTL_EXIT_USAGE;
  }
  if (o.note && strlen(o.note) > 500) {
    fprintf(stderr, "linkagectl unit: --note is longer than 500 bytes\n");
    return CTL_EXIT_USAGE;
  }
  if (!listen && !o.have_timeout) o.timeout = 5000;
  o.endpoint_source = "--endpoint";
  if (!o.endpoint) {
    if (ctl_config_load(&cfg) != 0) return CTL_EXIT_CONFIG;
    o.endpoint = cfg.dispatch_endpoint;
    o.endpoint_source = "LINKAGE_DISPATCH_ENDPOINT";
  }
  ctl_log_init();
  zctx = zmq_ctx_new();
  if (!zctx) return CTL_EXIT_FAIL;
  if (listen)
    code = unit_listen(zctx, &o);
  else if (!kind)
    code = unit_list(zctx, &o);
  else
    code = unit_answer(zctx, &o, kind);
  zmq_ctx_term(zctx);
  return code;

bad_value:
  fprintf(stderr, "linkagectl unit: bad value \"%s\" for --%s\n", optarg, longopts[idx].name);
  return CTL_EXIT_USAGE;
}
