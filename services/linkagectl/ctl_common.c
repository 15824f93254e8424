/* What the subcommands share: configuration, the daemon table, the
 * control-socket probe, small parsers and formatters. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>
#include <zmq.h>

#include "ctl.h"
#include "linkage/log.h"
#include "linkage/service.h"
#include "linkage/zap.h"

const struct ctl_daemon ctl_daemons[] = {
    /* The ledger first: everyone else appends to it. */
    {"ledger", "linkage-ledger"},
    {"intake", "linkage-intake"},
    /* The router follows the committed stream and appends its decisions. */
    {"router", "linkage-router"},
    /* Dispatch follows the router's decisions and serves the responder units. */
    {"dispatch", "linkage-dispatch"},
    /* The gateway follows the stream and serves coordinators and city systems. */
    {"gateway", "linkage-gateway"},
};
const size_t ctl_daemon_count = sizeof ctl_daemons / sizeof ctl_daemons[0];

static const struct lk_config_entry ctl_config_table[] = {
    {"pg", LK_CFG_STRING, offsetof(struct ctl_config, pg), 0, 0, "dbname=linkage",
     "libpq connection string of the ledger database"},
    {"intake_endpoint", LK_CFG_STRING, offsetof(struct ctl_config, intake_endpoint), 0, 0,
     "tcp://127.0.0.1:7001", "intake's endpoint for device reports"},
    {"ledger_endpoint", LK_CFG_STRING, offsetof(struct ctl_config, ledger_endpoint), 0, 0,
     "tcp://127.0.0.1:7010", "the ledger's request endpoint (appends, replays)"},
    {"ledger_stream", LK_CFG_STRING, offsetof(struct ctl_config, ledger_stream), 0, 0,
     "tcp://127.0.0.1:7011", "the ledger's committed stream (PUB)"},
    {"router_endpoint", LK_CFG_STRING, offsetof(struct ctl_config, router_endpoint), 0, 0,
     "tcp://127.0.0.1:7003", "the router's endpoint for coordinator commands"},
    {"dispatch_endpoint", LK_CFG_STRING, offsetof(struct ctl_config, dispatch_endpoint), 0, 0,
     "tcp://127.0.0.1:7005", "dispatch's endpoint for responder units"},
    LK_LINK_CONFIG(struct ctl_config),
};

int ctl_config_load(struct ctl_config *cfg) {
  char err[512];
  int rc;

  /* `make run` leaves its connection string and endpoints in the run directory, so every
   * command finds the running stack from another shell; the environment still wins. */
  char file[PATH_MAX];
  snprintf(file, sizeof file, "%s/" CTL_STACK_CONF, lk_run_dir());
  memset(cfg, 0, sizeof *cfg);
  rc = lk_config_load(ctl_config_table, sizeof ctl_config_table / sizeof ctl_config_table[0], cfg,
                      access(file, R_OK) == 0 ? file : NULL, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "linkagectl: bad configuration: %s\n", err);
    return -1;
  }
  return 0;
}

void ctl_log_init(void) {
  const char *s = getenv("LINKAGE_LOG_LEVEL");
  enum lk_log_level level = LK_LOG_INFO;

  if (s && strcasecmp(s, "debug") == 0)
    level = LK_LOG_DEBUG;
  else if (s && strcasecmp(s, "warn") == 0)
    level = LK_LOG_WARN;
  else if (s && strcasecmp(s, "error") == 0)
    level = LK_LOG_ERROR;
  lk_log_init("linkagectl", level);
}

void ctl_control_endpoint(const char *name, char *out, size_t len) {
  const char *dir = lk_run_dir();
  char cwd[PATH_MAX];

  /* ipc:// paths are resolved by the process that binds or connects;
   * an absolute path names the same socket whatever our working directory. */
  if (dir[0] == '/' || !getcwd(cwd, sizeof cwd))
    snprintf(out, len, "ipc://%s/%s.ctl", dir, name);
  else
    snprintf(out, len, "ipc://%s/%s/%s.ctl", cwd, dir, name);
}

int ctl_probe_start(struct ctl_probe *p, void *zctx, const char *name, int64_t now_mono_us) {
  char endpoint[PATH_MAX + 32];
  int zero = 0;

  memset(p, 0, sizeof *p);
  ctl_control_endpoint(name, endpoint, sizeof endpoint);
  p->sock = zmq_socket(zctx, ZMQ_REQ);
  if (!p->sock) return -1;
  zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof zero);
  if (zmq_connect(p->sock, endpoint) != 0 || zmq_send(p->sock, "status", 6, ZMQ_DONTWAIT) != 6) {
    zmq_close(p->sock);
    p->sock = NULL;
    return -1;
  }
  p->sent_mono_us = now_mono_us;
  return 0;
}

int ctl_probe_poll(struct ctl_probe *p, int timeout_ms) {
  zmq_pollitem_t item = {p->sock, 0, ZMQ_POLLIN, 0};
  int n, rc;

  if (!p->sock) return -1;
  rc = zmq_poll(&item, 1, timeout_ms);
  if (rc < 0) return errno == EINTR ? 0 : -1;
  if (rc == 0) return 0;
  n = zmq_recv(p->sock, p->reply, sizeof p->reply - 1, ZMQ_DONTWAIT);
  if (n < 0) return errno == EAGAIN ? 0 : -1;
  if ((size_t)n > sizeof p->reply - 1)
    n = (int)(sizeof p->reply - 1); /* zmq_recv reports the full size when it truncated */
  p->reply[n] = '\0';
  while (n > 0 && (p->reply[n - 1] == '\n' || p->reply[n - 1] == '\r'))
    p->reply[--n] = '\0';
  return 1;
}

void ctl_probe_stop(struct ctl_probe *p) {
  if (p->sock) zmq_close(p->sock);
  p->sock = NULL;
}

int ctl_parse_u64(const char *s, uint64_t *out) {
  char *end;
  unsigned long long v;

  if (!s || !*s || *s == '-' || *s == '+') return -1;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0') return -1;
  *out = v;
  return 0;
}

void ctl_format_time(int64_t us, char *out, size_t len) {
  time_t secs = (time_t)(us / 1000000);
  long frac = (long)(us % 1000000);
  struct tm tm;
  char day[32];

  if (frac < 0) {
    frac += 1000000;
    secs -= 1;
  }
  if (!gmtime_r(&secs, &tm)) {
    snprintf(out, len, "%lld", (long long)us);
    return;
  }
  strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, len, "%s.%06ldZ", day, frac);
}

PGconn *ctl_pg_connect(const char *conninfo) {
  /* Entries before an expanded dbname are overridden by the connection string's own, so an
   * operator's connect_timeout still wins; $PGCONNECT_TIMEOUT is libpq's, and stands. */
  const char *t = getenv("PGCONNECT_TIMEOUT");
  int ours = !t || !*t;
  const char *keys[] = {ours ? "connect_timeout" : "dbname", "dbname", NULL};
  const char *values[] = {ours ? "10" : conninfo, conninfo, NULL};
  return PQconnectdbParams(keys, values, 1);
}

PGconn *ctl_registry_connect(const char *conninfo, const char *who, const char *table_sql,
                             const char *table) {
  PGconn *pg = ctl_pg_connect(conninfo);
  if (PQstatus(pg) != CONNECTION_OK) {
    fprintf(stderr, "linkagectl %s: cannot connect to \"%s\": %s", who, conninfo,
            PQerrorMessage(pg));
    PQfinish(pg);
    return NULL;
  }
  /* Under the ledger's advisory lock, as the ledger creates its schema. */
  const char *steps[] = {"set client_min_messages = warning; begin; "
                         "select pg_advisory_xact_lock(7010)",
                         table_sql, "commit"};
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    PGresult *res = PQexec(pg, steps[i]);
    ExecStatusType st = PQresultStatus(res);
    PQclear(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      fprintf(stderr, "linkagectl %s: creating table %s failed: %s", who, table,
              PQerrorMessage(pg));
      PQfinish(pg);
      return NULL;
    }
  }
  return pg;
}
