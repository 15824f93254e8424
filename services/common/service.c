#include "linkage/service.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "linkage/clock.h"
#include "linkage/error.h"
#include "linkage/log.h"
#include "linkage/metrics.h"
#include "linkage/metrics_http.h"
#include "linkage/notify.h"
#include "linkage/zsock.h"

/* What the skeleton owns besides the daemon's own state. */
struct skeleton {
  const struct lk_service *svc;
  struct lk_runtime rt;
  uv_signal_t sigint, sigterm, sighup;
  uv_timer_t tick;
  struct lk_zsock control;
  int control_open;
  struct lk_notify notify;         /* systemd's READY/WATCHDOG/STATUS/STOPPING (notify.h) */
  struct lk_metrics_http *metrics; /* GET /metrics; NULL when off */
  double started_s;                /* Unix seconds */
  long restarts;                   /* LK_METRICS_RESTARTS_ENV */
};

const char *lk_run_dir(void) {
  const char *d = getenv("LINKAGE_RUN_DIR");
  return d && *d ? d : "var/run";
}

static void usage(const struct lk_service *svc, FILE *out) {
  fprintf(out,
          "usage: linkage-%s [options]\n"
          "%s\n\n"
          "options:\n"
          "  --config FILE      read settings from FILE (key = value lines)\n"
          "  --set KEY=VALUE    override one setting (after file and environment)\n"
          "  --check-config     validate the settings, print them and exit\n"
          "  --help-config      list every setting with its default and range\n"
          "  --help             this text\n\n"
          "environment: LINKAGE_<KEY> for every setting, LINKAGE_RUN_DIR (control socket\n"
          "directory, default var/run), LINKAGE_LOG_LEVEL (debug|info|warn|error).\n",
          svc->name, svc->summary);
  if (svc->help) fprintf(out, "\n%s\n", svc->help);
}

static enum lk_log_level env_log_level(void) {
  const char *v = getenv("LINKAGE_LOG_LEVEL");
  if (!v) return LK_LOG_INFO;
  if (!strcmp(v, "debug")) return LK_LOG_DEBUG;
  if (!strcmp(v, "warn")) return LK_LOG_WARN;
  if (!strcmp(v, "error")) return LK_LOG_ERROR;
  return LK_LOG_INFO;
}

void lk_service_stop(struct lk_runtime *rt) {
  struct skeleton *sk = (struct skeleton *)((char *)rt - offsetof(struct skeleton, rt));
  if (rt->stopping) return;
  rt->stopping = 1;
  lk_info("stopping", NULL);
  lk_notify_stop(&sk->notify);
  uv_timer_stop(&sk->tick);
  uv_close((uv_handle_t *)&sk->tick, NULL);
  uv_close((uv_handle_t *)&sk->sigint, NULL);
  uv_close((uv_handle_t *)&sk->sigterm, NULL);
  uv_close((uv_handle_t *)&sk->sighup, NULL);
  if (sk->control_open) lk_zsock_close(&sk->control);
  lk_metrics_http_stop(&sk->metrics);
  if (sk->svc->stop) sk->svc->stop(rt);
}

void lk_service_fail(struct lk_runtime *rt) {
  rt->exit_code = 1;
  lk_service_stop(rt);
}

static void signal_cb(uv_signal_t *h, int signum) {
  struct skeleton *sk = h->data;
  if (signum == SIGHUP) {
    lk_info("ignoring SIGHUP", "hint=\"restart the daemon to reload its settings\"");
    return;
  }
  lk_info("signal received", "signal=%s", signum == SIGINT ? "SIGINT" : "SIGTERM");
  lk_service_stop(&sk->rt);
}

static void tick_cb(uv_timer_t *h) {
  struct skeleton *sk = h->data;
  if (sk->svc->tick && !sk->rt.stopping) sk->svc->tick(&sk->rt, lk_now_us());
}

static void on_control(struct lk_zsock *s, struct lk_frames *m, void *data) {
  struct skeleton *sk = data;
  char line[1024];
  int n = snprintf(line, sizeof line, "ok name=%s pid=%ld", sk->svc->name, (long)getpid());
  if (m->count == 1 && zmq_msg_size(&m->frame[0]) == 6 &&
      memcmp(zmq_msg_data(&m->frame[0]), "status", 6) == 0) {
    if (sk->svc->status && n > 0 && (size_t)n + 2 < sizeof line) {
      line[n++] = ' ';
      sk->svc->status(&sk->rt, line + n, sizeof line - (size_t)n);
    }
  } else {
    snprintf(line, sizeof line, "error unknown request; send \"status\"");
  }
  const void *b[1] = {line};
  size_t l[1] = {strlen(line)};
  lk_zsock_sendv(s, b, l, 1, ZMQ_DONTWAIT);
}

static void notify_status_cb(void *arg, char *buf, size_t len) {
  struct skeleton *sk = arg;
  if (sk->svc->status) sk->svc->status(&sk->rt, buf, len);
}

static int open_control(struct skeleton *sk) {
  char ep[600];
  const char *dir = lk_run_dir();
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    lk_error("cannot create run directory", "dir=\"%s\" err=\"%s\"", dir, strerror(errno));
    return LK_EIO;
  }
  snprintf(ep, sizeof ep, "@ipc://%s/%s.ctl", dir, sk->svc->name);
  struct lk_zsock_opts o = {.linger_ms = 0, .maxmsg = 1024};
  int rc = lk_zsock_open(&sk->control, sk->rt.loop, sk->rt.zctx, ZMQ_REP, ep, &o, on_control, sk,
                         "control");
  if (rc == LK_OK) sk->control_open = 1;
  return rc;
}

/* One scrape: the process families, then the daemon's own. */
static void metrics_cb(struct lk_metrics_writer *w, void *data) {
  struct skeleton *sk = data;
  lk_metrics_process(w, sk->svc->name, sk->started_s, sk->restarts);
  if (sk->svc->metrics) sk->svc->metrics(&sk->rt, w);
}

/* Serves /metrics on the "<name>_metrics_listen" setting, if the daemon's table has one. */
static int open_metrics(struct skeleton *sk) {
  char key[128];
  const char *env = getenv(LK_METRICS_RESTARTS_ENV);
  sk->started_s = (double)lk_now_us() / 1e6;
  sk->restarts = env ? strtol(env, NULL, 10) : 0;
  if (sk->restarts < 0) sk->restarts = 0;
  snprintf(key, sizeof key, "%s_metrics_listen", sk->svc->name);
  for (size_t i = 0; i < sk->svc->config_len; i++) {
    const struct lk_config_entry *e = &sk->svc->config[i];
    if (e->type == LK_CFG_STRING && strcmp(e->key, key) == 0)
      return lk_metrics_http_start(sk->rt.loop, (const char *)sk->rt.config + e->offset, metrics_cb,
                                   sk, &sk->metrics);
  }
  return LK_OK;
}

static void close_walk_cb(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) {
    lk_warn("closing a handle left open at exit", "type=%s", uv_handle_type_name(h->type));
    uv_close(h, NULL);
  }
}

/* The endpoint a bind found taken during start (lk_service_address_taken), or "". */
static char address_taken[256];

void lk_service_address_taken(const char *endpoint) {
  snprintf(address_taken, sizeof address_taken, "%s", endpoint);
}

int lk_service_run(const struct lk_service *svc, int argc, char **argv) {
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
      {"check-config", no_argument, NULL, 'k'}, {"help-config", no_argument, NULL, 'H'},
      {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
  const char *config_path = NULL;
  int check_only = 0, exit_code = 1;
  const char *sets[32];
  int nsets = 0;
  char err[1024];
  struct skeleton sk;
  uv_loop_t loop;

  lk_log_init(svc->name, env_log_level());
  int opt;
  while ((opt = getopt_long(argc, argv, "c:s:h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'c': config_path = optarg; break;
    case 's':
      if (nsets < 32) sets[nsets++] = optarg;
      break;
    case 'k': check_only = 1; break;
    case 'H': lk_config_print_help(svc->config, svc->config_len, stdout); return 0;
    case 'h': usage(svc, stdout); return 0;
    default: usage(svc, stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "linkage-%s: unexpected argument \"%s\"\n", svc->name, argv[optind]);
    return 2;
  }

  memset(&sk, 0, sizeof sk);
  sk.svc = svc;
  sk.rt.name = svc->name;
  sk.rt.config = calloc(1, svc->config_size ? svc->config_size : 1);
  sk.rt.state = calloc(1, svc->state_size ? svc->state_size : 1);
  if (!sk.rt.config || !sk.rt.state) goto fail_alloc;
  if (lk_config_load(svc->config, svc->config_len, sk.rt.config, config_path, err, sizeof err) !=
      LK_OK) {
    fprintf(stderr, "linkage-%s: %s\n", svc->name, err);
    exit_code = 2;
    goto fail_alloc;
  }
  for (int i = 0; i < nsets; i++) {
    char key[128];
    const char *eq = strchr(sets[i], '=');
    if (!eq || (size_t)(eq - sets[i]) >= sizeof key) {
      fprintf(stderr, "linkage-%s: --set wants KEY=VALUE, got \"%s\"\n", svc->name, sets[i]);
      exit_code = 2;
      goto fail_alloc;
    }
    memcpy(key, sets[i], (size_t)(eq - sets[i]));
    key[eq - sets[i]] = '\0';
    if (lk_config_set(svc->config, svc->config_len, sk.rt.config, key, eq + 1, err, sizeof err)) {
      fprintf(stderr, "linkage-%s: --set: %s\n", svc->name, err);
      exit_code = 2;
      goto fail_alloc;
    }
  }
  if (check_only) {
    lk_config_print_values(svc->config, svc->config_len, sk.rt.config, stdout);
    exit_code = 0;
    goto fail_alloc;
  }

  /* A peer that vanishes must not kill us on a write to its socket. */
  signal(SIGPIPE, SIG_IGN);
  if (uv_loop_init(&loop) != 0) goto fail_alloc;
  sk.rt.loop = &loop;
  sk.rt.zctx = zmq_ctx_new();
  if (!sk.rt.zctx) goto fail_loop;

  uv_signal_init(&loop, &sk.sigint);
  uv_signal_init(&loop, &sk.sigterm);
  uv_signal_init(&loop, &sk.sighup);
  sk.sigint.data = sk.sigterm.data = sk.sighup.data = &sk;
  uv_signal_start(&sk.sigint, signal_cb, SIGINT);
  uv_signal_start(&sk.sigterm, signal_cb, SIGTERM);
  uv_signal_start(&sk.sighup, signal_cb, SIGHUP);
  uv_timer_init(&loop, &sk.tick);
  sk.tick.data = &sk;

  if (open_control(&sk) != LK_OK || svc->start(&sk.rt) != LK_OK || open_metrics(&sk) != LK_OK) {
    if (address_taken[0]) {
      lk_error("start failed: an address this daemon must listen on is taken; is another stack "
               "running?",
               "endpoint=\"%s\"", address_taken);
      exit_code = 78;
    } else {
      lk_error("start failed", NULL);
    }
    sk.rt.stopping = 1;
    uv_close((uv_handle_t *)&sk.tick, NULL);
    uv_close((uv_handle_t *)&sk.sigint, NULL);
    uv_close((uv_handle_t *)&sk.sigterm, NULL);
    uv_close((uv_handle_t *)&sk.sighup, NULL);
    if (sk.control_open) lk_zsock_close(&sk.control);
    lk_metrics_http_stop(&sk.metrics);
    if (svc->stop) svc->stop(&sk.rt);
    uv_run(&loop, UV_RUN_DEFAULT);
    goto fail_ctx;
  }
  if (svc->tick) uv_timer_start(&sk.tick, tick_cb, svc->tick_ms, svc->tick_ms ? svc->tick_ms : 100);
  lk_info("started", "pid=%ld", (long)getpid());
  /* Last, once everything listens: READY=1 is what orders the units started after this one. */
  if (lk_notify_start(&sk.notify, &loop, notify_status_cb, &sk) != LK_OK) lk_service_fail(&sk.rt);
  uv_run(&loop, UV_RUN_DEFAULT);
  exit_code = sk.rt.exit_code;

fail_ctx:
  /* Anything a daemon forgot to close is closed here, so uv_loop_close succeeds. */
  uv_walk(&loop, close_walk_cb, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  zmq_ctx_term(sk.rt.zctx);
fail_loop:
  if (uv_loop_close(&loop) != 0) {
    lk_error("loop closed with handles still open", NULL);
    exit_code = 1;
  }
  if (exit_code == 0) lk_info("stopped", NULL);
fail_alloc:
  free(sk.rt.config);
  free(sk.rt.state);
  return exit_code;
}
