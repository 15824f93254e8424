/* linkagectl report: one Report to intake, as a field device sends it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "ctl.h"
#include "linkage/clock.h"
#include "linkage/event.h"
#include "linkage/log.h"

static const char report_help[] =
    "NAME\n"
    "    linkagectl report - send one Report to intake, as a device would\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl report --device ID --seq N --compound ID --category NAME\n"
    "                      --severity I..IV [--kind K] [--building B] [--unit U]\n"
    "                      [--floor F] [--description TEXT] [--observed-at US]\n"
    "                      [--endpoint EP] [--timeout MS] [--retries N]\n"
    "\n"
    "DESCRIPTION\n"
    "    Sends the Report over a REQ socket to intake ($LINKAGE_INTAKE_ENDPOINT or\n"
    "    --endpoint) and prints the ReportAck as one line:\n"
    "        status=ACCEPTED incident_id=inc-... sequence=N\n"
    "    with error=\"...\" when intake gave a reason, retry_after_ms=N for BUSY.\n"
    "    A report unanswered after --timeout MS (default 5000) is sent again, the\n"
    "    same device id and sequence, up to --retries N more times (default 0),\n"
    "    and so is a BUSY one after its retry_after_ms: (device, sequence) is the\n"
    "    idempotency key, so a retry never opens a second incident.\n"
    "\n"
    "    With CURVE on intake's device port, LINKAGE_CURVE_SERVER_KEY_FILE and\n"
    "    LINKAGE_CURVE_CLIENT_KEY_FILE (the device's registered key pair). A\n"
    "    handshake the port refuses ends the command at once, and no answer at\n"
    "    all after the last attempt, with one line on stderr naming the endpoint\n"
    "    and the likely cause.\n"
    "\n"
    "    --category takes the lower-case names natural_disaster, accident_disaster,\n"
    "    public_health, social_safety, property_service, neighbour_dispute,\n"
    "    latent_hazard; --severity takes I, II, III or IV. Both also take a raw\n"
    "    number, to exercise intake's validation. --observed-at defaults to now.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 ACCEPTED or DUPLICATE, 1 REJECTED, 75 BUSY or no answer, 2 usage or a\n"
    "    refused handshake.\n";

struct report_opts {
  const char *endpoint;
  const char *endpoint_source; /* --endpoint or the variable, for the line saying it is silent */
  uint64_t timeout_ms, retries;
  uint64_t sequence; /* for the TIMEOUT line */
};

static int parse_enum(const char *s, int (*parse)(const char *), int *out) {
  uint64_t n;

  if (ctl_parse_u64(s, &n) == 0 && n < 1000) {
    *out = (int)n;
    return 0;
  }
  *out = parse(s);
  return *out == 0 ? -1 : 0;
}

static int parse_category(const char *s) {
  return (int)lk_category_parse(s);
}
static int parse_severity(const char *s) {
  return (int)lk_severity_parse(s);
}

static void print_ack(const Linkage__V1__ReportAck *ack) {
  const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
      &linkage__v1__report_ack__status__descriptor, (int)ack->status);
  char err[1024];

  printf("status=%s incident_id=%s sequence=%llu", v ? v->name : "UNKNOWN",
         ack->incident_id ? ack->incident_id : "", (unsigned long long)ack->sequence);
  if (ack->error && ack->error[0])
    printf(" error=\"%s\"", lk_log_quote(err, sizeof err, ack->error));
  if (ack->retry_after_ms) printf(" retry_after_ms=%u", ack->retry_after_ms);
  printf("\n");
}

/* Lazy Pirate (zguide ch. 4): a REQ socket that timed out is stuck waiting
 * for its reply, so each attempt gets a fresh socket. */
static int exchange(void *zctx, const struct report_opts *o, const uint8_t *buf, size_t len) {
  uint64_t attempt;
  int code = CTL_EXIT_TEMPFAIL;

  for (attempt = 0; attempt <= o->retries; attempt++) {
    struct ctl_conn conn;
    const void *frames[1] = {buf};
    size_t lens[1] = {len};
    zmq_msg_t msg;
    Linkage__V1__ReportAck *ack;
    uint32_t retry_after = 0;
    int64_t deadline = lk_mono_us() + (int64_t)o->timeout_ms * 1000;
    enum ctl_wait w;

    if (ctl_conn_open(&conn, zctx, ZMQ_REQ, o->endpoint, CTL_PEER_DEVICE, "report",
                      o->endpoint_source) != 0)
      return CTL_EXIT_USAGE;
    w = ctl_conn_send(&conn, frames, lens, 1, deadline);
    if (w == CTL_WAIT_READY) do
        w = ctl_conn_wait(&conn, deadline);
      while (w == CTL_WAIT_INTR);
    if (w == CTL_WAIT_ERROR) {
      fprintf(stderr, "linkagectl report: socket error on %s: %s\n", o->endpoint,
              zmq_strerror(errno));
      ctl_conn_close(&conn);
      return CTL_EXIT_FAIL;
    }
    if (w == CTL_WAIT_REFUSED) {
      /* Final: the same keys on a fresh socket meet the same refusal. */
      ctl_conn_explain(&conn, o->timeout_ms);
      ctl_conn_close(&conn);
      return CTL_EXIT_USAGE;
    }
    if (w != CTL_WAIT_READY) {
      code = CTL_EXIT_TEMPFAIL;
      if (attempt == o->retries) {
        printf("status=TIMEOUT incident_id= sequence=%llu error=\"no answer from %s within %llu "
               "ms, %llu attempt(s)\"\n",
               (unsigned long long)o->sequence, o->endpoint, (unsigned long long)o->timeout_ms,
               (unsigned long long)attempt + 1);
        ctl_conn_explain(&conn, o->timeout_ms);
      }
      ctl_conn_close(&conn);
      continue;
    }
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, conn.sock, ZMQ_DONTWAIT) < 0) {
      fprintf(stderr, "linkagectl report: receive failed: %s\n", zmq_strerror(errno));
      zmq_msg_close(&msg);
      ctl_conn_close(&conn);
      return CTL_EXIT_FAIL;
    }
    ack = linkage__v1__report_ack__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    ctl_conn_close(&conn);
    if (!ack) {
      printf("status=UNKNOWN incident_id= sequence=0 error=\"the reply is not a ReportAck\"\n");
      return CTL_EXIT_FAIL;
    }
    switch (ack->status) {
    case LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED:
    case LINKAGE__V1__REPORT_ACK__STATUS__DUPLICATE: code = CTL_EXIT_OK; break;
    case LINKAGE__V1__REPORT_ACK__STATUS__BUSY:
      code = CTL_EXIT_TEMPFAIL;
      retry_after = ack->retry_after_ms;
      break;
    default: code = CTL_EXIT_FAIL; break;
    }
    if (code != CTL_EXIT_TEMPFAIL || attempt == o->retries) {
      print_ack(ack);
      linkage__v1__report_ack__free_unpacked(ack, NULL);
      return code;
    }
    linkage__v1__report_ack__free_unpacked(ack, NULL);
    if (retry_after) {
      uint64_t ms = retry_after < o->timeout_ms ? retry_after : o->timeout_ms;
      struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  return code;
}

int ctl_report_main(int argc, char **argv) {
  static const struct option longopts[] = {{"device", required_argument, NULL, 'd'},
                                           {"seq", required_argument, NULL, 'n'},
                                           {"compound", required_argument, NULL, 'c'},
                                           {"category", required_argument, NULL, 'C'},
                                           {"severity", required_argument, NULL, 's'},
                                           {"kind", required_argument, NULL, 'k'},
                                           {"building", required_argument, NULL, 'b'},
                                           {"unit", required_argument, NULL, 'u'},
                                           {"floor", required_argument, NULL, 'f'},
                                           {"description", required_argument, NULL, 'D'},
                                           {"observed-at", required_argument, NULL, 'o'},
                                           {"endpoint", required_argument, NULL, 'e'},
                                           {"timeout", required_argument, NULL, 't'},
                                           {"retries", required_argument, NULL, 'r'},
                                           {"help", no_argument, NULL, 'h'},
                                           {0, 0, 0, 0}};
  Linkage__V1__Report report = LINKAGE__V1__REPORT__INIT;
  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  struct ctl_config cfg;
  struct report_opts o = {NULL, "--endpoint", 5000, 0, 0};
  int have_seq = 0, have_cat = 0, have_sev = 0, have_obs = 0, v, c, code, idx = 0;
  uint64_t n;
  uint8_t *buf;
  size_t len;
  void *zctx;

  report.location = &loc;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
    switch (c) {
    case 'd': report.device_id = optarg; break;
    case 'n':
      if (ctl_parse_u64(optarg, &report.sequence) != 0) goto bad_value;
      have_seq = 1;
      break;
    case 'c': loc.compound_id = optarg; break;
    case 'C':
      if (parse_enum(optarg, parse_category, &v) != 0) goto bad_value;
      report.category = (Linkage__V1__Category)v;
      have_cat = 1;
      break;
    case 's':
      if (parse_enum(optarg, parse_severity, &v) != 0) goto bad_value;
      report.severity = (Linkage__V1__Severity)v;
      have_sev = 1;
      break;
    case 'k': report.kind = optarg; break;
    case 'b': loc.building = optarg; break;
    case 'u': loc.unit = optarg; break;
    case 'f': loc.floor = atoi(optarg); break;
    case 'D': report.description = optarg; break;
    case 'o':
      if (ctl_parse_u64(optarg, &n) != 0) goto bad_value;
      report.observed_at_us = (int64_t)n;
      have_obs = 1;
      break;
    case 'e': o.endpoint = optarg; break;
    case 't':
      if (ctl_parse_u64(optarg, &o.timeout_ms) != 0 || o.timeout_ms == 0 || o.timeout_ms > 3600000)
        goto bad_value;
      break;
    case 'r':
      if (ctl_parse_u64(optarg, &o.retries) != 0 || o.retries > 1000) goto bad_value;
      break;
    case 'h': fputs(report_help, stdout); return CTL_EXIT_OK;
    default: fputs(report_help, stderr); return CTL_EXIT_USAGE;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "linkagectl report: unexpected argument \"%s\"\n", argv[optind]);
    return CTL_EXIT_USAGE;
  }
  if (!report.device_id || !have_seq || !loc.compound_id || !have_cat || !have_sev) {
    fprintf(stderr, "linkagectl report: --device, --seq, --compound, --category and "
                    "--severity are required\n");
    return CTL_EXIT_USAGE;
  }
  if (!have_obs) report.observed_at_us = lk_now_us();
  if (ctl_config_load(&cfg) != 0) return CTL_EXIT_CONFIG;
  if (!o.endpoint) {
    o.endpoint = cfg.intake_endpoint;
    o.endpoint_source = "LINKAGE_INTAKE_ENDPOINT";
  }
  o.sequence = report.sequence;

  len = linkage__v1__report__get_packed_size(&report);
  buf = malloc(len ? len : 1);
  if (!buf) return CTL_EXIT_FAIL;
  linkage__v1__report__pack(&report, buf);
  zctx = zmq_ctx_new();
  if (!zctx) {
    free(buf);
    return CTL_EXIT_FAIL;
  }
  code = exchange(zctx, &o, buf, len);
  zmq_ctx_term(zctx);
  free(buf);
  return code;

bad_value:
  fprintf(stderr, "linkagectl report: bad value \"%s\" for --%s\n", optarg, longopts[idx].name);
  return CTL_EXIT_USAGE;
}
