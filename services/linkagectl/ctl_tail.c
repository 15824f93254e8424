/* linkagectl tail: print the committed stream, one line per event. */
#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <zmq.h>

#include "ctl.h"
#include "linkage/error.h"
#include "linkage/zap.h"
#include "linkage/clock.h"
#include "linkage/event.h"
#include "linkage/ledger_client.h"
#include "linkage/log.h"
#include "linkage/service.h"
#include "linkage/stream.h"

static const char tail_help[] =
    "NAME\n"
    "    linkagectl tail - print committed events as they arrive\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl tail [--from POSITION] [--count N] [--timeout SECONDS]\n"
    "\n"
    "DESCRIPTION\n"
    "    Follows the ledger's committed stream ($LINKAGE_LEDGER_STREAM, replays\n"
    "    through $LINKAGE_LEDGER_ENDPOINT) and prints every event once, in\n"
    "    position order, one line each:\n"
    "        position=.. type=.. incident_id=.. event_id=.. actor=.. at=<ISO 8601>\n"
    "    followed by a few key=value pairs from the event's body. Without --from\n"
    "    it starts after the ledger's current head. Runs until SIGINT. A ledger\n"
    "    that does not answer tail's first request within 10 s (not running,\n"
    "    another endpoint, or a CURVE link without the link key) ends it with one\n"
    "    line on stderr saying what to check, exit 75.\n"
    "\n"
    "OPTIONS\n"
    "    --from POSITION   start at this position (1: the whole ledger)\n"
    "    --count N         exit 0 after N events\n"
    "    --timeout SECONDS exit 75 if --count events have not come by then\n"
    "    --stream EP, --ledger EP   override the two endpoints\n"
    "\n"
    "EXIT STATUS\n"
    "    0 on SIGINT or after --count events, 75 on --timeout or no ledger, 1 on\n"
    "    errors.\n";

#define GIVE_UP_MS 10000 /* the ledger client's: a request unanswered so long comes back BUSY */

struct tail {
  uv_loop_t loop;
  void *zctx;
  struct lk_ledger_client *client;
  struct lk_stream *stream;
  uv_signal_t sigint, sigterm;
  uv_timer_t tick, deadline, later;
  const char *stream_endpoint, *ledger_endpoint;
  const char *ledger_source; /* the variable or flag naming the ledger endpoint */
  struct lk_link link;       /* CURVE on the links when link_curve is set */
  uint64_t from, count, printed;
  int have_from, exit_code, stopping;
};

static void tail_stop(struct tail *t, int code);

/* " key=value", quoted only when the value needs it (logfmt); an empty
 * value prints as "-". */
static void print_field(const char *key, const char *value) {
  char buf[1024];
  const char *p;

  if (!value || !value[0]) value = "-";
  for (p = value; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("_-.:/@+", *p)) break;
  if (*p)
    printf(" %s=\"%s\"", key, lk_log_quote(buf, sizeof buf, value));
  else
    printf(" %s=%s", key, value);
}

/* Body fields: left out when empty. */
static void print_str(const char *key, const char *value) {
  if (value && value[0]) print_field(key, value);
}

static void print_body(const Linkage__V1__Event *ev) {
  const Linkage__V1__UnitAnswer *ua = NULL;

  switch (ev->body_case) {
  case LINKAGE__V1__EVENT__BODY_REPORTED:
    if (ev->reported->report) {
      const Linkage__V1__Report *r = ev->reported->report;
      const char *cat = lk_category_name(r->category), *sev = lk_severity_name(r->severity);

      printf(" category=%s severity=%s", cat ? cat : "?", sev ? sev : "?");
      if (r->location) print_str("compound", r->location->compound_id);
      print_str("kind", r->kind);
      if (r->location) print_str("building", r->location->building);
      print_str("device", r->device_id);
      printf(" seq=%llu", (unsigned long long)r->sequence);
    }
    break;
  case LINKAGE__V1__EVENT__BODY_MERGED: print_str("into", ev->merged->into_incident_id); break;
  case LINKAGE__V1__EVENT__BODY_ROUTED: {
    const char *tier = lk_tier_name(ev->routed->tier);
    printf(" tier=%s", tier ? tier : "?");
    print_str("organisation", ev->routed->organisation_id);
    break;
  }
  case LINKAGE__V1__EVENT__BODY_ESCALATED: {
    const char *from = lk_tier_name(ev->escalated->from_tier);
    const char *to = lk_tier_name(ev->escalated->to_tier);
    printf(" from=%s to=%s", from ? from : "?", to ? to : "?");
    print_str("reason", ev->escalated->reason);
    break;
  }
  case LINKAGE__V1__EVENT__BODY_SEVERITY_CHANGED: {
    const char *from = lk_severity_name(ev->severity_changed->from_severity);
    const char *to = lk_severity_name(ev->severity_changed->to_severity);
    printf(" from=%s to=%s", from ? from : "?", to ? to : "?");
    print_str("reason", ev->severity_changed->reason);
    break;
  }
  case LINKAGE__V1__EVENT__BODY_DISPATCHED:
    print_str("assignment", ev->dispatched->assignment_id);
    print_str("unit", ev->dispatched->unit_id);
    print_str("role", ev->dispatched->role);
    if (ev->dispatched->lead) printf(" lead=true");
    break;
  case LINKAGE__V1__EVENT__BODY_UNIT_ACKNOWLEDGED: ua = ev->unit_acknowledged; break;
  case LINKAGE__V1__EVENT__BODY_UNIT_DECLINED: ua = ev->unit_declined; break;
  case LINKAGE__V1__EVENT__BODY_UNIT_ON_SCENE: ua = ev->unit_on_scene; break;
  case LINKAGE__V1__EVENT__BODY_UNIT_RESOLVED: ua = ev->unit_resolved; break;
  case LINKAGE__V1__EVENT__BODY_COORDINATOR_NOTE:
    print_str("text", ev->coordinator_note->text);
    break;
  case LINKAGE__V1__EVENT__BODY_RESOLVED: print_str("summary", ev->resolved->summary); break;
  case LINKAGE__V1__EVENT__BODY_CLOSED: print_str("reason", ev->closed->reason); break;
  default: break;
  }
  if (ua) {
    print_str("assignment", ua->assignment_id);
    print_str("unit", ua->unit_id);
    print_str("note", ua->note);
  }
}

static void on_event(void *data, uint64_t position, const Linkage__V1__Event *ev,
                     const uint8_t *event, size_t len) {
  struct tail *t = data;
  const char *type = lk_event_type_name(ev->type);
  char at[64];

  if (t->stopping) return;
  ctl_format_time(ev->at_us, at, sizeof at);
  printf("position=%llu type=%s", (unsigned long long)position, type ? type : "unknown");
  print_field("incident_id", ev->incident_id);
  print_field("event_id", ev->event_id);
  print_field("actor", ev->actor);
  printf(" at=%s", at);
  print_body(ev);
  printf("\n");
  fflush(stdout);
  t->printed++;
  if (t->count && t->printed >= t->count) tail_stop(t, CTL_EXIT_OK);
}

static int start_stream(struct tail *t, uint64_t after) {
  struct lk_stream_opts so = {t->stream_endpoint, t->client, after, 1000, &t->link};

  t->stream = lk_stream_new(&t->loop, t->zctx, &so, on_event, t);
  if (!t->stream) {
    lk_error("cannot follow the committed stream", "endpoint=%s", t->stream_endpoint);
    return -1;
  }
  return 0;
}

static void ask_head(struct tail *t);

static void retry_cb(uv_timer_t *h) {
  ask_head(h->data);
}

/* The first question to the ledger is also the proof that it is there and takes our key: a ledger
 * that never answered it (down, another port, a CURVE link without our key) ends tail with one
 * line saying so, where it would otherwise wait for ever on a stream that never comes. */
static void on_head(void *data, const Linkage__V1__ReplayReply *reply) {
  struct tail *t = data;

  if (t->stopping) return;
  if (reply->error && reply->error[0] && strcmp(reply->error, "ledger did not answer") != 0) {
    /* The ledger is there and said why not now. */
    lk_warn("ledger head unknown, asking again", "err=\"%s\"", reply->error);
    uv_timer_start(&t->later, retry_cb, 500, 0);
    return;
  }
  if (reply->error && reply->error[0]) { /* the client's own: nothing came (ledger_client.h) */
    struct ctl_silence s = {.who = "tail",
                            .endpoint = t->ledger_endpoint,
                            .source = t->ledger_source,
                            .run_dir = lk_run_dir(),
                            .peer = CTL_PEER_LINK,
                            .curve = t->link.curve};
    char line[1400];
    ctl_silence_line(&s, GIVE_UP_MS, line, sizeof line);
    fprintf(stderr, "%s\n", line);
    tail_stop(t, CTL_EXIT_TEMPFAIL);
    return;
  }
  if (start_stream(t, t->have_from ? (t->from > 0 ? t->from - 1 : 0) : reply->head) != 0)
    tail_stop(t, CTL_EXIT_FAIL);
}

/* Tail starts at the head unless --from says where: a replay from beyond the head returns no
 * events, only the head. */
static void ask_head(struct tail *t) {
  if (lk_ledger_replay(t->client, UINT64_MAX, 1, on_head, t) != 0) {
    lk_error("cannot ask the ledger for its head", "endpoint=%s", t->ledger_endpoint);
    tail_stop(t, CTL_EXIT_FAIL);
  }
}

static void close_cb(uv_handle_t *h) {
  (void)h;
}

/* Runs from a timer, never inside the stream's own callback, which must
 * not see its stream destroyed under it. */
static void teardown_cb(uv_timer_t *h) {
  struct tail *t = h->data;

  lk_stream_destroy(&t->stream);
  lk_ledger_client_destroy(&t->client);
  uv_close((uv_handle_t *)&t->sigint, close_cb);
  uv_close((uv_handle_t *)&t->sigterm, close_cb);
  uv_close((uv_handle_t *)&t->tick, close_cb);
  uv_close((uv_handle_t *)&t->deadline, close_cb);
  uv_close((uv_handle_t *)&t->later, close_cb);
}

static void tail_stop(struct tail *t, int code) {
  if (t->stopping) return;
  t->stopping = 1;
  t->exit_code = code;
  uv_timer_stop(&t->later);
  uv_timer_start(&t->later, teardown_cb, 0, 0);
}

static void signal_cb(uv_signal_t *h, int signum) {
  (void)signum;
  tail_stop(h->data, CTL_EXIT_OK);
}

static void tick_cb(uv_timer_t *h) {
  struct tail *t = h->data;

  if (t->client) lk_ledger_client_tick(t->client, lk_mono_us());
}

static void deadline_cb(uv_timer_t *h) {
  struct tail *t = h->data;

  fprintf(stderr, "linkagectl tail: %llu of %llu events before the timeout\n",
          (unsigned long long)t->printed, (unsigned long long)t->count);
  tail_stop(t, CTL_EXIT_TEMPFAIL);
}

int ctl_tail_main(int argc, char **argv) {
  static const struct option longopts[] = {{"from", required_argument, NULL, 'f'},
                                           {"count", required_argument, NULL, 'n'},
                                           {"timeout", required_argument, NULL, 't'},
                                           {"stream", required_argument, NULL, 's'},
                                           {"ledger", required_argument, NULL, 'l'},
                                           {"help", no_argument, NULL, 'h'},
                                           {0, 0, 0, 0}};
  struct tail t;
  struct ctl_config cfg;
  struct lk_ledger_client_opts co = {NULL, 64, 1000, GIVE_UP_MS, NULL};
  const char *ledger_endpoint = NULL;
  uint64_t timeout_s = 0;
  int c, idx = 0, rc;

  memset(&t, 0, sizeof t);
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
    switch (c) {
    case 'f':
      if (ctl_parse_u64(optarg, &t.from) != 0) goto bad_value;
      t.have_from = 1;
      break;
    case 'n':
      if (ctl_parse_u64(optarg, &t.count) != 0) goto bad_value;
      break;
    case 't':
      if (ctl_parse_u64(optarg, &timeout_s) != 0 || timeout_s > 86400 * 365) goto bad_value;
      break;
    case 's': t.stream_endpoint = optarg; break;
    case 'l': ledger_endpoint = optarg; break;
    case 'h': fputs(tail_help, stdout); return CTL_EXIT_OK;
    default: fputs(tail_help, stderr); return CTL_EXIT_USAGE;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "linkagectl tail: unexpected argument \"%s\"\n", argv[optind]);
    return CTL_EXIT_USAGE;
  }
  ctl_log_init();
  if (ctl_config_load(&cfg) != 0) return CTL_EXIT_USAGE;
  if (!t.stream_endpoint) t.stream_endpoint = cfg.ledger_stream;
  co.endpoint = ledger_endpoint ? ledger_endpoint : cfg.ledger_endpoint;
  t.ledger_endpoint = co.endpoint;
  t.ledger_source = ledger_endpoint ? "--ledger" : "LINKAGE_LEDGER_ENDPOINT";
  if (lk_link_load(&t.link, cfg.link_curve, cfg.link_key_file) != LK_OK) return CTL_EXIT_USAGE;
  co.link = &t.link;

  if (uv_loop_init(&t.loop) != 0) return CTL_EXIT_FAIL;
  t.zctx = zmq_ctx_new();
  if (!t.zctx) goto fail_ctx;
  t.client = lk_ledger_client_new(&t.loop, t.zctx, &co);
  if (!t.client) {
    lk_error("cannot open the ledger client", "endpoint=%s", co.endpoint);
    goto fail_client;
  }
  uv_signal_init(&t.loop, &t.sigint);
  uv_signal_init(&t.loop, &t.sigterm);
  uv_timer_init(&t.loop, &t.tick);
  uv_timer_init(&t.loop, &t.deadline);
  uv_timer_init(&t.loop, &t.later);
  t.sigint.data = t.sigterm.data = t.tick.data = t.deadline.data = t.later.data = &t;
  uv_signal_start(&t.sigint, signal_cb, SIGINT);
  uv_signal_start(&t.sigterm, signal_cb, SIGTERM);
  uv_timer_start(&t.tick, tick_cb, 100, 100);
  if (timeout_s) uv_timer_start(&t.deadline, deadline_cb, timeout_s * 1000, 0);
  ask_head(&t);
  uv_run(&t.loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&t.loop);
  if (rc != 0) lk_warn("loop closed with handles open", "err=\"%s\"", uv_strerror(rc));
  zmq_ctx_term(t.zctx);
  return t.exit_code;

fail_client:
  zmq_ctx_term(t.zctx);
fail_ctx:
  uv_loop_close(&t.loop);
  return CTL_EXIT_FAIL;

bad_value:
  fprintf(stderr, "linkagectl tail: bad value \"%s\" for --%s\n", optarg, longopts[idx].name);
  return CTL_EXIT_USAGE;
}
