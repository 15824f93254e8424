/* linkagectl ack | escalate | de-escalate | merge | close | note | plan:
 * a coordinator's commands to linkage-router. Each sends one
 * linkage.v1.Command over a DEALER socket and prints the CommandReply as one
 * line. The command_id is drawn once per invocation and kept across retries,
 * so a retry after a lost reply commits the event at most once. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "ctl.h"
#include "linkage/clock.h"
#include "linkage/log.h"
#include "linkage/v1/command.pb-c.h"

#define BUSY_PAUSE_MS 200 /* before retrying a BUSY reply: the router is catching up */

static const char common_help[] =
    "COMMON OPTIONS\n"
    "    --actor NAME     who acts, recorded as \"coordinator:NAME\" (default\n"
    "                     $LINKAGE_ACTOR, else $USER, else \"operator\"); 1-64\n"
    "                     characters, no spaces\n"
    "    --endpoint EP    the router's command endpoint (default\n"
    "                     $LINKAGE_ROUTER_ENDPOINT, else tcp://127.0.0.1:7003)\n"
    "    --timeout MS     wait this long for each answer (default 5000)\n"
    "    --retries N      send again this many times after no answer or BUSY\n"
    "                     (default 2); the command_id stays the same, so the\n"
    "                     event is committed at most once\n"
    "\n"
    "OUTPUT\n"
    "    One line:  status=OK event_id=ID position=N\n"
    "           or  status=REJECTED error=\"why\"\n"
    "           or  status=BUSY error=\"why\"  /  status=TIMEOUT error=\"why\"\n"
    "    A repeated command_id the router has already committed answers OK\n"
    "    without event_id and position.\n"
    "\n"
    "    Under link_curve the router speaks CURVE: LINKAGE_LINK_CURVE=true and\n"
    "    LINKAGE_LINK_KEY_FILE (the stack's link key; make run writes both into\n"
    "    its run directory's linkage.conf). A refused handshake ends the command\n"
    "    at once, and no answer after the last attempt, with one line on stderr\n"
    "    naming the endpoint and the likely cause.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 OK, 1 REJECTED, 2 usage or a refused handshake, 75 BUSY or no answer\n"
    "    (try again).\n";

static const char ack_help[] =
    "NAME\n"
    "    linkagectl ack - acknowledge an incident at its current tier\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl ack INCIDENT [--note TEXT] [COMMON OPTIONS]\n"
    "\n"
    "DESCRIPTION\n"
    "    Records an `acknowledged` event: the responsible office has taken the\n"
    "    incident, so its acknowledge deadline no longer escalates it. The note\n"
    "    (up to 500 bytes) goes into the timeline.\n"
    "\n";

static const char escalate_help[] =
    "NAME\n"
    "    linkagectl escalate - move an incident one tier up now\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl escalate INCIDENT --reason TEXT [COMMON OPTIONS]\n"
    "\n"
    "DESCRIPTION\n"
    "    Records an `escalated` event from the incident's tier to the next one\n"
    "    (compound, community, street, district), with new deadlines from the\n"
    "    plan. An incident at district tier is refused.\n"
    "\n";

static const char de_escalate_help[] =
    "NAME\n"
    "    linkagectl de-escalate - move an incident one tier down\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl de-escalate INCIDENT --reason TEXT [COMMON OPTIONS]\n"
    "\n"
    "DESCRIPTION\n"
    "    Records a `de_escalated` event to the tier below, with new deadlines.\n"
    "    Refused below the lowest tier the category's plan allows.\n"
    "\n";

static const char merge_help[] =
    "NAME\n"
    "    linkagectl merge - join an incident into another\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl merge INCIDENT --into OTHER [COMMON OPTIONS]\n"
    "\n"
    "DESCRIPTION\n"
    "    Records a `merged` event: INCIDENT becomes part of OTHER (which must be\n"
    "    open) and has no life of its own afterwards; its reporter counts\n"
    "    towards OTHER's.\n"
    "\n";

static const char close_help[] =
    "NAME\n"
    "    linkagectl close - close an incident\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl close INCIDENT --reason TEXT [COMMON OPTIONS]\n"
    "\n"
    "DESCRIPTION\n"
    "    Records a `closed` event with the reason (required, up to 500 bytes).\n"
    "    A closed incident refuses every later command.\n"
    "\n";

static const char note_help[] =
    "NAME\n"
    "    linkagectl note - add a coordinator's note to an incident's timeline\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl note INCIDENT TEXT [COMMON OPTIONS]\n"
    "\n"
    "DESCRIPTION\n"
    "    Records a `coordinator_note` event holding TEXT (1-500 bytes). Put\n"
    "    TEXT after `--` if it starts with a dash.\n"
    "\n";

static const char call_help[] =
    "NAME\n"
    "    linkagectl call - call a role or a unit of an incident again\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl call INCIDENT --role TYPE [--unit UNIT] [--reason TEXT] [COMMON OPTIONS]\n"
    "    linkagectl call INCIDENT --unit UNIT [--reason TEXT] [COMMON OPTIONS]\n"
    "\n"
    "DESCRIPTION\n"
    "    Records a `call_requested` event: dispatch calls, at the incident's current\n"
    "    tier, UNIT (which must be of TYPE and cover the compound) or the best unit of\n"
    "    TYPE (a unit type such as fire_brigade), even one that was called before and\n"
    "    did not answer. The new call is a `dispatched` event naming this one.\n"
    "    Refused for an unknown unit or type, a type no unit of which covers the\n"
    "    compound, and an incident that is not routed, resolved or closed.\n"
    "\n";

static const char plan_help[] =
    "NAME\n"
    "    linkagectl plan - declare or lift a planned-work window\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl plan declare WINDOW_ID --compound ID [--building B] [--kind K]\n"
    "                    [--from WHEN] --to WHEN --reason TEXT [COMMON OPTIONS]\n"
    "    linkagectl plan lift WINDOW_ID [--reason TEXT] [COMMON OPTIONS]\n"
    "    linkagectl plan check [--district FILE]   (the district's gaps; see plan check --help)\n"
    "\n"
    "DESCRIPTION\n"
    "    Inside a declared window, reports from the compound (or only the\n"
    "    building) of the kind (or of any kind, without --kind) are routed and\n"
    "    recorded with suppressed_by=plan-WINDOW_ID, but never escalated: a\n"
    "    planned water shut-off, say. Lifting ends the window early; a lifted or\n"
    "    unknown window is refused. WINDOW_ID is chosen by you: 1-64 characters\n"
    "    without spaces or '/'; it is the window's name in the ledger.\n"
    "\n"
    "    WHEN is one of\n"
    "        now                          (the default for --from)\n"
    "        +MINUTES                     --from: minutes from now;\n"
    "                                     --to: minutes after --from\n"
    "        2026-11-27T15:00Z            ISO 8601 with seconds and fractions\n"
    "        2026-11-27T23:00:00+08:00    optional; the zone (Z or an offset)\n"
    "                                     is required\n"
    "    Minutes are wall-clock minutes: the router's time_scale shortens\n"
    "    deadlines, not windows.\n"
    "\n";

struct cmd_opts {
  const char *name; /* "ack", "plan declare", ... for messages */
  const char *endpoint;
  const char *endpoint_source; /* the variable naming it; NULL: --endpoint */
  const char *actor;
  uint64_t timeout_ms, retries;
};

/* ---- plain helpers (unit-tested) ---- */

int ctl_parse_when(const char *s, int64_t now_us, int64_t base_us, int64_t *out) {
  uint64_t minutes;

  if (!s) return -1;
  if (strcmp(s, "now") == 0) {
    *out = now_us;
    return 0;
  }
  if (s[0] == '+') {
    /* A year of minutes is plenty and keeps the product far from overflow. */
    if (ctl_parse_u64(s + 1, &minutes) != 0 || minutes > 366ULL * 24 * 60) return -1;
    *out = base_us + (int64_t)minutes * 60 * 1000000;
    return 0;
  }
  return lk_parse_iso8601(s, out);
}

const char *ctl_default_actor(void) {
  const char *a = getenv("LINKAGE_ACTOR");

  if (a && *a) return a;
  a = getenv("USER");
  if (a && *a) return a;
  return "operator";
}

int ctl_command_id(char *out, size_t len) {
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[8];

  if (len < 2 * sizeof raw + 1 || sodium_init() < 0) return -1;
  randombytes_buf(raw, sizeof raw);
  for (size_t i = 0; i < sizeof raw; i++) {
    out[2 * i] = hex[raw[i] >> 4];
    out[2 * i + 1] = hex[raw[i] & 15];
  }
  out[2 * sizeof raw] = '\0';
  return 0;
}

int ctl_command_outcome(const Linkage__V1__CommandReply *rep, char *line, size_t len) {
  char err[1024];
  const char *e = rep->error ? rep->error : "";

  switch (rep->status) {
  case LINKAGE__V1__COMMAND_REPLY__STATUS__OK:
    snprintf(line, len, "status=OK event_id=%s position=%llu", rep->event_id ? rep->event_id : "",
             (unsigned long long)rep->position);
    return CTL_EXIT_OK;
  case LINKAGE__V1__COMMAND_REPLY__STATUS__REJECTED:
    snprintf(line, len, "status=REJECTED error=\"%s\"", lk_log_quote(err, sizeof err, e));
    return CTL_EXIT_FAIL;
  case LINKAGE__V1__COMMAND_REPLY__STATUS__BUSY:
    snprintf(line, len, "status=BUSY error=\"%s\"", lk_log_quote(err, sizeof err, e));
    return CTL_EXIT_TEMPFAIL;
  default:
    snprintf(line, len, "status=UNKNOWN error=\"reply status %d\"", (int)rep->status);
    return CTL_EXIT_TEMPFAIL;
  }
}

/* ---- the exchange ---- */

static void pause_ms(uint64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Waits for the reply to our command_id on c; replies to an earlier attempt
 * on another socket cannot reach us, but a stray one is skipped anyway.
 * Returns the unpacked reply, or NULL with *why (timeout, refused, error). */
static Linkage__V1__CommandReply *await_reply(struct ctl_conn *c, const char *command_id,
                                              int64_t deadline, enum ctl_wait *why) {
  for (;;) {
    zmq_msg_t msg;
    int more;
    size_t more_len = sizeof more;
    Linkage__V1__CommandReply *rep;

    *why = ctl_conn_wait(c, deadline);
    if (*why == CTL_WAIT_INTR) continue;
    if (*why != CTL_WAIT_READY) return NULL;
    /* The last frame of the message is the body; the first is the empty delimiter. */
    zmq_msg_init(&msg);
    for (;;) {
      if (zmq_msg_recv(&msg, c->sock, 0) < 0) {
        zmq_msg_close(&msg);
        *why = CTL_WAIT_ERROR;
        return NULL;
      }
      if (zmq_getsockopt(c->sock, ZMQ_RCVMORE, &more, &more_len) != 0 || !more) break;
    }
    rep = linkage__v1__command_reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    if (!rep) {
      lk_warn("reply is not a CommandReply, ignored", NULL);
      continue;
    }
    if (rep->command_id && rep->command_id[0] && strcmp(rep->command_id, command_id) != 0) {
      linkage__v1__command_reply__free_unpacked(rep, NULL);
      continue;
    }
    return rep;
  }
}

/* Lazy Pirate (zguide ch. 4) with a DEALER: a fresh socket per attempt, so a
 * late reply to an abandoned attempt never answers the next one. */
static int exchange(const struct cmd_opts *o, Linkage__V1__Command *cmd) {
  size_t len = linkage__v1__command__get_packed_size(cmd);
  uint8_t *buf = malloc(len ? len : 1);
  void *zctx;
  int code = CTL_EXIT_TEMPFAIL;
  char line[1400];
  uint64_t attempt;

  if (!buf) return CTL_EXIT_FAIL;
  linkage__v1__command__pack(cmd, buf);
  zctx = zmq_ctx_new();
  if (!zctx) {
    free(buf);
    return CTL_EXIT_FAIL;
  }
  line[0] = '\0';
  for (attempt = 0; attempt <= o->retries; attempt++) {
    struct ctl_conn conn;
    const void *frames[2] = {"", buf};
    size_t lens[2] = {0, len};
    Linkage__V1__CommandReply *rep = NULL;
    int64_t deadline = lk_mono_us() + (int64_t)o->timeout_ms * 1000;
    enum ctl_wait why;

    if (ctl_conn_open(&conn, zctx, ZMQ_DEALER, o->endpoint, CTL_PEER_LINK, o->name,
                      o->endpoint_source ? o->endpoint_source : "--endpoint") != 0) {
      code = CTL_EXIT_USAGE;
      line[0] = '\0';
      break;
    }
    why = ctl_conn_send(&conn, frames, lens, 2, deadline);
    if (why == CTL_WAIT_READY) rep = await_reply(&conn, cmd->command_id, deadline, &why);
    if (!rep) {
      if (why == CTL_WAIT_REFUSED) {
        /* Final: the same key on a fresh socket meets the same refusal. */
        ctl_conn_explain(&conn, o->timeout_ms);
        ctl_conn_close(&conn);
        code = CTL_EXIT_USAGE;
        line[0] = '\0';
        break;
      }
      if (why == CTL_WAIT_ERROR) {
        fprintf(stderr, "linkagectl %s: socket error on %s: %s\n", o->name, o->endpoint,
                zmq_strerror(errno));
        ctl_conn_close(&conn);
        code = CTL_EXIT_FAIL;
        line[0] = '\0';
        break;
      }
      lk_debug("no answer", "command_id=%s attempt=%llu", cmd->command_id,
               (unsigned long long)attempt + 1);
      snprintf(line, sizeof line,
               "status=TIMEOUT error=\"no answer from %s within %llu ms, %llu "
               "attempt(s)\"",
               o->endpoint, (unsigned long long)o->timeout_ms, (unsigned long long)attempt + 1);
      if (attempt == o->retries) ctl_conn_explain(&conn, o->timeout_ms);
      ctl_conn_close(&conn);
      code = CTL_EXIT_TEMPFAIL;
      continue;
    }
    ctl_conn_close(&conn);
    code = ctl_command_outcome(rep, line, sizeof line);
    linkage__v1__command_reply__free_unpacked(rep, NULL);
    if (code != CTL_EXIT_TEMPFAIL) break;
    if (attempt < o->retries)
      pause_ms(BUSY_PAUSE_MS < o->timeout_ms ? BUSY_PAUSE_MS : o->timeout_ms);
  }
  if (line[0]) printf("%s\n", line);
  zmq_ctx_term(zctx);
  free(buf);
  return code;
}

/* ---- the command line ---- */

enum {
  OPT_ACTOR = 1000,
  OPT_ENDPOINT,
  OPT_TIMEOUT,
  OPT_RETRIES,
  OPT_NOTE,
  OPT_REASON,
  OPT_INTO,
  OPT_COMPOUND,
  OPT_BUILDING,
  OPT_KIND,
  OPT_FROM,
  OPT_TO,
  OPT_ROLE,
  OPT_UNIT,
};

static const struct option longopts[] = {
    {"actor", required_argument, NULL, OPT_ACTOR},
    {"endpoint", required_argument, NULL, OPT_ENDPOINT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"note", required_argument, NULL, OPT_NOTE},
    {"reason", required_argument, NULL, OPT_REASON},
    {"into", required_argument, NULL, OPT_INTO},
    {"compound", required_argument, NULL, OPT_COMPOUND},
    {"building", required_argument, NULL, OPT_BUILDING},
    {"kind", required_argument, NULL, OPT_KIND},
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"role", required_argument, NULL, OPT_ROLE},
    {"unit", required_argument, NULL, OPT_UNIT},
    {"help", no_argument, NULL, 'h'},
    {0, 0, 0, 0},
};

/* What each subcommand accepts besides the common options. */
struct cmd_spec {
  const char *name;
  const char *help;
  unsigned allowed; /* bit (opt - OPT_NOTE) for each own option */
  unsigned required;
  int positionals; /* after the subcommand (and after "declare"/"lift" for plan) */
};

#define BIT(opt) (1u << ((opt)-OPT_NOTE))

static const struct cmd_spec specs[] = {
    {"ack", ack_help, BIT(OPT_NOTE), 0, 1},
    {"escalate", escalate_help, BIT(OPT_REASON), BIT(OPT_REASON), 1},
    {"de-escalate", de_escalate_help, BIT(OPT_REASON), BIT(OPT_REASON), 1},
    {"merge", merge_help, BIT(OPT_INTO), BIT(OPT_INTO), 1},
    {"close", close_help, BIT(OPT_REASON), BIT(OPT_REASON), 1},
    {"note", note_help, 0, 0, 2},
    {"plan declare", plan_help,
     BIT(OPT_COMPOUND) | BIT(OPT_BUILDING) | BIT(OPT_KIND) | BIT(OPT_FROM) | BIT(OPT_TO) |
         BIT(OPT_REASON),
     BIT(OPT_COMPOUND) | BIT(OPT_TO) | BIT(OPT_REASON), 1},
    {"plan lift", plan_help, BIT(OPT_REASON), 0, 1},
    {"call", call_help, BIT(OPT_ROLE) | BIT(OPT_UNIT) | BIT(OPT_REASON), 0, 1},
};

struct parsed {
  struct cmd_opts o;
  const char *val[OPT_UNIT - OPT_NOTE + 1]; /* own options by bit */
  const char *pos[2];
  char command_id[17]; /* the Command points here until it is sent */
};

static void print_help(const struct cmd_spec *sp, FILE *out) {
  fputs(sp->help, out);
  fputs(common_help, out);
}

/* Returns -1 to go on, or the exit code. */
static int parse_args(const struct cmd_spec *sp, int argc, char **argv, struct parsed *p) {
  static struct ctl_config cfg; /* p->o.endpoint may point into it */
  int c, idx = 0, npos;

  memset(p, 0, sizeof *p);
  p->o.name = sp->name;
  p->o.timeout_ms = 5000;
  p->o.retries = 2;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
    switch (c) {
    case OPT_ACTOR: p->o.actor = optarg; break;
    case OPT_ENDPOINT: p->o.endpoint = optarg; break;
    case OPT_TIMEOUT:
      if (ctl_parse_u64(optarg, &p->o.timeout_ms) != 0 || p->o.timeout_ms == 0 ||
          p->o.timeout_ms > 3600000)
        goto bad_value;
      break;
    case OPT_RETRIES:
      if (ctl_parse_u64(optarg, &p->o.retries) != 0 || p->o.retries > 1000) goto bad_value;
      break;
    case 'h': print_help(sp, stdout); return CTL_EXIT_OK;
    case '?': print_help(sp, stderr); return CTL_EXIT_USAGE;
    default:
      if (c < OPT_NOTE || c > OPT_UNIT || !(sp->allowed & BIT(c))) {
        fprintf(stderr, "linkagectl %s: --%s does not apply; see --help\n", sp->name,
                longopts[idx].name);
        return CTL_EXIT_USAGE;
      }
      p->val[c - OPT_NOTE] = optarg;
      break;
    }
  }
  npos = argc - optind;
  if (npos != sp->positionals) {
    fprintf(stderr, "linkagectl %s: expected %s; see --help\n", sp->name,
            strncmp(sp->name, "plan", 4) == 0 ? "WINDOW_ID"
            : sp->positionals == 2            ? "INCIDENT and TEXT"
                                              : "INCIDENT");
    return CTL_EXIT_USAGE;
  }
  for (int i = 0; i < npos; i++)
    p->pos[i] = argv[optind + i];
  for (int opt = OPT_NOTE; opt <= OPT_UNIT; opt++)
    if ((sp->required & BIT(opt)) && !p->val[opt - OPT_NOTE]) {
      fprintf(stderr, "linkagectl %s: --%s is required; see --help\n", sp->name,
              longopts[opt - OPT_ACTOR].name);
      return CTL_EXIT_USAGE;
    }
  if (!p->o.actor) p->o.actor = ctl_default_actor();
  if (!p->o.endpoint) {
    if (ctl_config_load(&cfg) != 0) return CTL_EXIT_CONFIG;
    p->o.endpoint = cfg.router_endpoint;
    p->o.endpoint_source = "LINKAGE_ROUTER_ENDPOINT";
  }
  return -1;

bad_value:
  fprintf(stderr, "linkagectl %s: bad value \"%s\" for --%s\n", sp->name, optarg,
          longopts[idx].name);
  return CTL_EXIT_USAGE;
}

static int send_command(struct parsed *p, Linkage__V1__Command *cmd) {
  if (ctl_command_id(p->command_id, sizeof p->command_id) != 0) {
    fprintf(stderr, "linkagectl %s: cannot draw a random command id\n", p->o.name);
    return CTL_EXIT_FAIL;
  }
  cmd->command_id = p->command_id;
  cmd->actor = (char *)p->o.actor;
  return exchange(&p->o, cmd);
}

#define VAL(p, opt) ((p)->val[(opt)-OPT_NOTE])
#define OR_EMPTY(s) ((char *)((s) ? (s) : ""))

int ctl_command_body(Linkage__V1__Command *cmd, struct ctl_command_body *b, const char *action,
                     const char *text, const char *into, const char *role, const char *unit) {
  char *t = (char *)(text ? text : "");
  memset(b, 0, sizeof *b);
  if (strcmp(action, "ack") == 0 || strcmp(action, "acknowledge") == 0) {
    linkage__v1__acknowledge_command__init(&b->ack);
    b->ack.note = t;
    cmd->body_case = LINKAGE__V1__COMMAND__BODY_ACKNOWLEDGE, cmd->acknowledge = &b->ack;
  } else if (strcmp(action, "escalate") == 0) {
    linkage__v1__escalate_command__init(&b->esc);
    b->esc.reason = t;
    cmd->body_case = LINKAGE__V1__COMMAND__BODY_ESCALATE, cmd->escalate = &b->esc;
  } else if (strcmp(action, "de-escalate") == 0) {
    linkage__v1__de_escalate_command__init(&b->de);
    b->de.reason = t;
    cmd->body_case = LINKAGE__V1__COMMAND__BODY_DE_ESCALATE, cmd->de_escalate = &b->de;
  } else if (strcmp(action, "merge") == 0) {
    linkage__v1__merge_command__init(&b->merge);
    b->merge.into_incident_id = (char *)(into ? into : "");
    cmd->body_case = LINKAGE__V1__COMMAND__BODY_MERGE, cmd->merge = &b->merge;
  } else if (strcmp(action, "close") == 0) {
    linkage__v1__close_command__init(&b->close);
    b->close.reason = t;
    cmd->body_case = LINKAGE__V1__COMMAND__BODY_CLOSE, cmd->close = &b->close;
  } else if (strcmp(action, "note") == 0) {
    linkage__v1__note_command__init(&b->note);
    b->note.text = t;
    cmd->body_case = LINKAGE__V1__COMMAND__BODY_NOTE, cmd->note = &b->note;
  } else if (strcmp(action, "call") == 0) {
    linkage__v1__call_command__init(&b->call);
    b->call.role = (char *)(role ? role : "");
    b->call.unit_id = (char *)(unit ? unit : "");
    b->call.reason = t;
    cmd->body_case = LINKAGE__V1__COMMAND__BODY_CALL, cmd->call = &b->call;
  } else {
    return -1;
  }
  return 0;
}

int ctl_incident_main(int argc, char **argv) {
  Linkage__V1__Command cmd = LINKAGE__V1__COMMAND__INIT;
  struct ctl_command_body body;
  const struct cmd_spec *sp = NULL;
  struct parsed p;
  int rc;

  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
    if (strcmp(specs[i].name, argv[0]) == 0) sp = &specs[i];
  if (!sp) return CTL_EXIT_USAGE;
  rc = parse_args(sp, argc, argv, &p);
  if (rc >= 0) return rc;
  ctl_log_init();
  cmd.incident_id = (char *)p.pos[0];
  const char *text = strcmp(sp->name, "ack") == 0    ? VAL(&p, OPT_NOTE)
                     : strcmp(sp->name, "note") == 0 ? p.pos[1]
                                                     : VAL(&p, OPT_REASON);
  if (strcmp(sp->name, "call") == 0 && !VAL(&p, OPT_ROLE) && !VAL(&p, OPT_UNIT)) {
    fprintf(stderr, "linkagectl call: --role or --unit is required; see --help\n");
    return CTL_EXIT_USAGE;
  }
  if (ctl_command_body(&cmd, &body, sp->name, text, VAL(&p, OPT_INTO), VAL(&p, OPT_ROLE),
                       VAL(&p, OPT_UNIT)) != 0)
    return CTL_EXIT_USAGE;
  return send_command(&p, &cmd);
}
int ctl_plan_main(int argc, char **argv) {
  Linkage__V1__Command cmd = LINKAGE__V1__COMMAND__INIT;
  Linkage__V1__PlannedWork pw = LINKAGE__V1__PLANNED_WORK__INIT;
  Linkage__V1__LiftPlannedWorkCommand lift = LINKAGE__V1__LIFT_PLANNED_WORK_COMMAND__INIT;
  struct parsed p;
  int64_t now = lk_now_us();
  int rc;

  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(plan_help, argc < 2 ? stderr : stdout);
    fputs(common_help, argc < 2 ? stderr : stdout);
    return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
  }
  if (strcmp(argv[1], "check") == 0) return ctl_plan_check_main(argc - 1, argv + 1);
  /* "plan declare ..." parses as the subcommand "declare". */
  if (strcmp(argv[1], "declare") == 0) {
    rc = parse_args(&specs[6], argc - 1, argv + 1, &p);
    if (rc >= 0) return rc;
    pw.window_id = (char *)p.pos[0];
    pw.compound_id = (char *)VAL(&p, OPT_COMPOUND);
    pw.building = OR_EMPTY(VAL(&p, OPT_BUILDING));
    pw.kind = OR_EMPTY(VAL(&p, OPT_KIND));
    pw.reason = (char *)VAL(&p, OPT_REASON);
    if (ctl_parse_when(VAL(&p, OPT_FROM) ? VAL(&p, OPT_FROM) : "now", now, now, &pw.from_us) != 0) {
      fprintf(stderr, "linkagectl plan declare: bad --from \"%s\"; see --help\n",
              VAL(&p, OPT_FROM));
      return CTL_EXIT_USAGE;
    }
    if (strcmp(VAL(&p, OPT_TO), "now") == 0 ||
        ctl_parse_when(VAL(&p, OPT_TO), now, pw.from_us, &pw.to_us) != 0) {
      fprintf(stderr, "linkagectl plan declare: bad --to \"%s\"; see --help\n", VAL(&p, OPT_TO));
      return CTL_EXIT_USAGE;
    }
    if (pw.to_us <= pw.from_us) {
      fprintf(stderr, "linkagectl plan declare: --to must be after --from\n");
      return CTL_EXIT_USAGE;
    }
    cmd.body_case = LINKAGE__V1__COMMAND__BODY_DECLARE_PLANNED_WORK;
    cmd.declare_planned_work = &pw;
  } else if (strcmp(argv[1], "lift") == 0) {
    rc = parse_args(&specs[7], argc - 1, argv + 1, &p);
    if (rc >= 0) return rc;
    lift.window_id = (char *)p.pos[0];
    lift.reason = OR_EMPTY(VAL(&p, OPT_REASON));
    cmd.body_case = LINKAGE__V1__COMMAND__BODY_LIFT_PLANNED_WORK;
    cmd.lift_planned_work = &lift;
  } else {
    fprintf(stderr, "linkagectl plan: unknown action \"%s\"; expected declare, lift or check\n",
            argv[1]);
    return CTL_EXIT_USAGE;
  }
  ctl_log_init();
  cmd.incident_id = "";
  return send_command(&p, &cmd);
}
