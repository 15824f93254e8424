/* linkagectl run: the supervisor. Starts every daemon of ctl_daemons[] on
 * one libuv loop, restarts one that dies (ctl_supervise.c decides when),
 * announces where everything listens once all answer on their control
 * sockets, and on SIGINT/SIGTERM stops them: SIGTERM, then SIGKILL after
 * CTL_STOP_GRACE_US. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#include "ctl.h"
#include "linkage/clock.h"
#include "linkage/log.h"
#include "linkage/metrics.h"
#include "linkage/service.h"

#define RUN_MAX_DAEMONS 16
#define PROBE_EVERY_MS 200
#define PROBE_TIMEOUT_US (1000 * 1000LL)
#define SECOND_SIGNAL_AFTER_US (1000 * 1000LL)

static const char run_help[] =
    "NAME\n"
    "    linkagectl run - run the whole stack in the foreground\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl run [--pg CONNINFO] [--intake EP] [--ledger EP] [--stream EP]\n"
    "                   [--router EP] [--dispatch EP] [--run-dir DIR] [--bin-dir DIR]\n"
    "\n"
    "DESCRIPTION\n"
    "    Starts linkage-ledger, then linkage-intake, linkage-router,\n"
    "    linkage-dispatch and linkage-gateway, from the directory that holds\n"
    "    linkagectl (or\n"
    "    --bin-dir). Their logs go to this stderr. Once every daemon answers on\n"
    "    its control socket, prints where everything listens, the router's\n"
    "    command endpoint and dispatch's unit endpoint among them.\n"
    "\n"
    "    A daemon that exits after it had been up for a second or more is\n"
    "    started again at once; one that keeps dying right after its start waits\n"
    "    200 ms, doubling up to 10 s. A daemon that exits with status 2 or 78\n"
    "    (EX_CONFIG) refused its settings or found its address taken: the\n"
    "    supervisor then stops the stack and exits 1. Each daemon is told how\n"
    "    often it was restarted (LINKAGE_SUPERVISOR_RESTARTS); its /metrics shows\n"
    "    it as linkage_service_restarts.\n"
    "\n"
    "    The daemons run in sessions of their own, so a terminal's Ctrl-C reaches\n"
    "    only the supervisor. SIGINT, SIGTERM or SIGHUP stops the stack: SIGTERM\n"
    "    to every daemon, SIGKILL to those still running after 10 s (or at once\n"
    "    on another signal a second or more later); exit 0.\n"
    "\n"
    "    The flags set the daemons' environment (LINKAGE_PG,\n"
    "    LINKAGE_INTAKE_ENDPOINT, LINKAGE_LEDGER_ENDPOINT, LINKAGE_LEDGER_STREAM,\n"
    "    LINKAGE_ROUTER_ENDPOINT, LINKAGE_DISPATCH_ENDPOINT, LINKAGE_RUN_DIR), so\n"
    "    the daemons and this tool agree.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 after a requested stop, 1 when the stack could not run.\n";

struct run;

struct run_child {
  struct run *run;
  const struct ctl_daemon *daemon;
  char path[PATH_MAX];
  struct ctl_child state;
  uv_process_t proc;
  int proc_open; /* proc is a live handle (closed in its close callback) */
  uv_timer_t restart;
  struct ctl_probe probe;
  int answered;
};

struct run {
  uv_loop_t loop;
  void *zctx;
  struct ctl_config cfg;
  struct run_child kids[RUN_MAX_DAEMONS];
  size_t count;
  uv_signal_t sigint, sigterm, sighup;
  uv_timer_t kill_timer, probe_timer;
  int64_t stop_began_us;
  int stopping, closed, announced, exit_code;
};

static void begin_stop(struct run *r, int exit_code);
static void spawn_child(struct run_child *k);

static int64_t now_us(void) {
  return lk_mono_us();
}

static void noop_close_cb(uv_handle_t *h) {
  (void)h;
}

static void finish(struct run *r);
static int all_down(const struct run *r);

static void proc_close_cb(uv_handle_t *h) {
  struct run_child *k = h->data;

  k->proc_open = 0;
  if (k->run->stopping && all_down(k->run)) finish(k->run);
}

static int all_down(const struct run *r) {
  size_t i;

  for (i = 0; i < r->count; i++)
    if (r->kids[i].state.running || r->kids[i].proc_open) return 0;
  return 1;
}

/* Every handle closed, every socket closed: uv_run returns. */
static void finish(struct run *r) {
  size_t i;

  if (r->closed) return;
  r->closed = 1;
  for (i = 0; i < r->count; i++) {
    ctl_probe_stop(&r->kids[i].probe);
    uv_close((uv_handle_t *)&r->kids[i].restart, noop_close_cb);
  }
  uv_close((uv_handle_t *)&r->sigint, noop_close_cb);
  uv_close((uv_handle_t *)&r->sigterm, noop_close_cb);
  uv_close((uv_handle_t *)&r->sighup, noop_close_cb);
  uv_close((uv_handle_t *)&r->kill_timer, noop_close_cb);
  uv_close((uv_handle_t *)&r->probe_timer, noop_close_cb);
  lk_info("supervisor stopped", "exit=%d", r->exit_code);
}

static void restart_cb(uv_timer_t *h) {
  struct run_child *k = h->data;

  if (k->run->stopping) return;
  if (k->proc_open) { /* the old handle's close callback has not run yet */
    uv_timer_start(&k->restart, restart_cb, 10, 0);
    return;
  }
  spawn_child(k);
}

static void decide(struct run_child *k, int64_t exit_status, int term_signal) {
  struct run *r = k->run;
  int64_t uptime = now_us() - k->state.started_us;
  struct ctl_decision d =
      ctl_child_exited(&k->state, exit_status, term_signal, r->stopping, now_us());

  k->answered = 0;
  ctl_probe_stop(&k->probe);
  switch (d.verdict) {
  case CTL_STAY_DOWN:
    lk_info("daemon stopped", "name=%s status=%lld signal=%d", k->daemon->name,
            (long long)exit_status, term_signal);
    break;
  case CTL_RESTART:
    if (term_signal)
      lk_warn("daemon killed by a signal", "name=%s signal=SIG%s uptime_ms=%lld restart_in_ms=%lld",
              k->daemon->name, sigabbrev_np(term_signal) ? sigabbrev_np(term_signal) : "?",
              (long long)(uptime / 1000), (long long)(d.delay_us / 1000));
    else
      lk_warn("daemon exited", "name=%s status=%lld uptime_ms=%lld restart_in_ms=%lld",
              k->daemon->name, (long long)exit_status, (long long)(uptime / 1000),
              (long long)(d.delay_us / 1000));
    uv_timer_start(&k->restart, restart_cb, (uint64_t)(d.delay_us / 1000), 0);
    break;
  case CTL_GIVE_UP:
    lk_error("daemon cannot start with its settings (refused, or an address it must listen on is "
             "taken), stopping the stack",
             "name=%s status=%lld", k->daemon->name, (long long)exit_status);
    begin_stop(r, CTL_EXIT_FAIL);
    break;
  }
}

static void exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal) {
  struct run_child *k = proc->data;

  uv_close((uv_handle_t *)proc, proc_close_cb);
  decide(k, exit_status, term_signal);
}

static void spawn_child(struct run_child *k) {
  uv_process_options_t opts;
  uv_stdio_container_t stdio[3];
  char *args[2] = {k->path, NULL};
  char restarts[24];
  int rc;

  memset(&opts, 0, sizeof opts);
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = 1;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  opts.file = k->path;
  opts.args = args;
  opts.exit_cb = exit_cb;
  opts.stdio = stdio;
  opts.stdio_count = 3;
  /* A session of its own: Ctrl-C at the terminal reaches the supervisor
   * only, which then stops each daemon once. Otherwise a daemon gets SIGINT
   * and our SIGTERM together, and the second can land after its skeleton
   * has closed its signal handlers, killing it mid-shutdown. */
  opts.flags = UV_PROCESS_DETACHED;
  k->proc.data = k;
  /* The child inherits our environment; its /metrics shows how often it was restarted. */
  snprintf(restarts, sizeof restarts, "%u", k->state.restarts);
  if (setenv(LK_METRICS_RESTARTS_ENV, restarts, 1) != 0)
    lk_warn("cannot pass the restart count", "name=%s err=\"%s\"", k->daemon->name,
            strerror(errno));
  rc = uv_spawn(&k->run->loop, &k->proc, &opts);
  /* uv_spawn initialises the handle even when it fails: it must be closed. */
  k->proc_open = 1;
  ctl_child_started(&k->state, now_us());
  if (rc != 0) {
    lk_error("cannot start daemon", "name=%s path=%s err=\"%s\"", k->daemon->name, k->path,
             uv_strerror(rc));
    uv_close((uv_handle_t *)&k->proc, proc_close_cb);
    decide(k, 127, 0); /* the shell's "command not found" */
    return;
  }
  lk_info("daemon started", "name=%s pid=%d", k->daemon->name, k->proc.pid);
}

static void signal_all(struct run *r, int signum) {
  size_t i;

  for (i = 0; i < r->count; i++)
    if (r->kids[i].state.running) uv_process_kill(&r->kids[i].proc, signum);
}

static void kill_timer_cb(uv_timer_t *h) {
  struct run *r = h->data;

  lk_warn("daemons still running after the grace period, killing them", "grace_ms=%lld",
          (long long)(CTL_STOP_GRACE_US / 1000));
  signal_all(r, SIGKILL);
}

static void begin_stop(struct run *r, int exit_code) {
  size_t i;

  if (r->stopping) return;
  r->stopping = 1;
  r->stop_began_us = now_us();
  r->exit_code = exit_code;
  for (i = 0; i < r->count; i++)
    uv_timer_stop(&r->kids[i].restart);
  uv_timer_stop(&r->probe_timer);
  signal_all(r, SIGTERM);
  if (all_down(r)) {
    finish(r);
    return;
  }
  uv_timer_start(&r->kill_timer, kill_timer_cb, (uint64_t)(CTL_STOP_GRACE_US / 1000), 0);
}

static void signal_cb(uv_signal_t *h, int signum) {
  struct run *r = h->data;

  if (r->stopping) {
    /* Ctrl-C reaches us from the terminal and, via deploy/run.sh's trap, as
     * SIGTERM at the same moment: only a signal well after the first means
     * "stop now". */
    if (now_us() - r->stop_began_us < SECOND_SIGNAL_AFTER_US) return;
    lk_warn("signal again, killing the daemons now", "signal=SIG%s", sigabbrev_np(signum));
    signal_all(r, SIGKILL);
    return;
  }
  lk_info("stopping the stack", "signal=SIG%s", sigabbrev_np(signum));
  begin_stop(r, CTL_EXIT_OK);
}

static const char *env_or(const char *name, const char *def) {
  const char *v = getenv(name);
  return v && *v ? v : def;
}

/* Where a daemon serves /metrics: its LINKAGE_<NAME>_METRICS_LISTEN, or its default. */
static const char *metrics_listen(const char *name) {
  static const struct {
    const char *name, *listen;
  } defaults[] = {
      {"ledger", "127.0.0.1:" LK_METRICS_STR(LK_METRICS_PORT_LEDGER)},
      {"intake", "127.0.0.1:" LK_METRICS_STR(LK_METRICS_PORT_INTAKE)},
      {"router", "127.0.0.1:" LK_METRICS_STR(LK_METRICS_PORT_ROUTER)},
      {"dispatch", "127.0.0.1:" LK_METRICS_STR(LK_METRICS_PORT_DISPATCH)},
      {"gateway", "127.0.0.1:" LK_METRICS_STR(LK_METRICS_PORT_GATEWAY)},
  };
  char var[64];
  size_t i, n = (size_t)snprintf(var, sizeof var, "LINKAGE_%s_METRICS_LISTEN", name);
  for (i = 8; i < n && i < sizeof var; i++)
    var[i] = (char)toupper((unsigned char)var[i]);
  const char *v = getenv(var);
  if (v) return v;
  for (i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
    if (strcmp(defaults[i].name, name) == 0) return defaults[i].listen;
  return "";
}

static void announce(struct run *r) {
  char endpoint[PATH_MAX + 32];
  size_t i;

  printf("linkage: the stack is up\n"
         "  intake    %-28s devices send Reports here\n"
         "  ledger    %-28s appends and replays (internal)\n"
         "  stream    %-28s the committed stream (PUB)\n"
         "  router    %-28s coordinator commands (ack, escalate, close, plan ...)\n"
         "  dispatch  %-28s responder units (linkagectl unit ID listen | ack ...)\n"
         "  gateway   http://%s:%s/  dashboard, API, CAP, Open311 (linkagectl token add)\n"
         "  feed      %-28s incident feed (PUB); replays on %s\n",
         r->cfg.intake_endpoint, r->cfg.ledger_endpoint, r->cfg.ledger_stream,
         r->cfg.router_endpoint, r->cfg.dispatch_endpoint,
         env_or("LINKAGE_HTTP_ADDRESS", "127.0.0.1"), env_or("LINKAGE_HTTP_PORT", "8080"),
         env_or("LINKAGE_FEED_ENDPOINT", "tcp://127.0.0.1:7006"),
         env_or("LINKAGE_FEED_REPLAY_ENDPOINT", "tcp://127.0.0.1:7007"));
  for (i = 0; i < r->count; i++) {
    ctl_control_endpoint(r->kids[i].daemon->name, endpoint, sizeof endpoint);
    printf("  %-9s %s\n", i == 0 ? "control" : "", endpoint);
  }
  for (i = 0; i < r->count; i++) {
    const char *name = r->kids[i].daemon->name;
    const char *listen = metrics_listen(name);
    if (*listen && strcmp(listen, "0") != 0)
      printf("  %-9s %-8s http://%s/metrics\n", i == 0 ? "metrics" : "", name, listen);
  }
  printf("  postgres  %s\n"
         "  try: bin/linkagectl status | report --help | ack --help | unit --help | tail | verify;"
         "  Ctrl-C stops it all\n",
         r->cfg.pg);
  fflush(stdout);
  lk_info("stack is up", "intake=%s ledger=%s stream=%s router=%s dispatch=%s",
          r->cfg.intake_endpoint, r->cfg.ledger_endpoint, r->cfg.ledger_stream,
          r->cfg.router_endpoint, r->cfg.dispatch_endpoint);
}

/* Until every daemon has answered "status" once, keep asking; a probe
 * unanswered for PROBE_TIMEOUT_US is dropped and asked again. */
static void probe_cb(uv_timer_t *h) {
  struct run *r = h->data;
  size_t i, answered = 0;
  int64_t now = now_us();

  for (i = 0; i < r->count; i++) {
    struct run_child *k = &r->kids[i];

    if (k->answered) {
      answered++;
      continue;
    }
    if (!k->state.running) continue;
    if (k->probe.sock && now - k->probe.sent_mono_us > PROBE_TIMEOUT_US) ctl_probe_stop(&k->probe);
    if (!k->probe.sock) {
      if (ctl_probe_start(&k->probe, r->zctx, k->daemon->name, now) != 0) continue;
    }
    if (ctl_probe_poll(&k->probe, 0) == 1) {
      lk_debug("daemon answers", "name=%s reply=\"%s\"", k->daemon->name, k->probe.reply);
      ctl_probe_stop(&k->probe);
      k->answered = 1;
      answered++;
    }
  }
  if (answered == r->count && !r->announced) {
    r->announced = 1;
    uv_timer_stop(&r->probe_timer);
    announce(r);
  }
}

static int mkdir_p(const char *dir) {
  char buf[PATH_MAX];
  size_t i, n = strlen(dir);

  if (n == 0 || n >= sizeof buf) return -1;
  memcpy(buf, dir, n + 1);
  for (i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char c = buf[i];
      buf[i] = '\0';
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
      buf[i] = c;
    }
  }
  return 0;
}

/* The daemons live next to linkagectl: bin/ in the tree, /usr/bin installed. */
static int own_dir(char *out, size_t len) {
  ssize_t n = readlink("/proc/self/exe", out, len - 1);
  char *slash;

  if (n <= 0) return -1;
  out[n] = '\0';
  slash = strrchr(out, '/');
  if (!slash) return -1;
  *slash = '\0';
  return 0;
}

/* One stack per run directory: the supervisor holds an exclusive lock on <run dir>/linkage.lock
 * for its whole life (make run's script takes it first and hands its descriptor down in
 * LINKAGE_RUN_LOCK_FD). A second start says who holds it and touches nothing of the first's.
 * Returns the descriptor, or -1 after saying why. */
static int take_lock(void) {
  char path[PATH_MAX], pid[32] = "?";
  const char *inherited = getenv("LINKAGE_RUN_LOCK_FD");
  snprintf(path, sizeof path, "%s/" CTL_RUN_LOCK, lk_run_dir());
  int fd =
      inherited && *inherited ? atoi(inherited) : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    lk_error("cannot open the run directory's lock", "path=%s err=\"%s\"", path, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int in = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = in >= 0 ? read(in, pid, sizeof pid - 1) : -1;
    if (in >= 0) close(in);
    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    fprintf(stderr,
            "linkage: a stack is already running in %s (pid %s); stop it first, or give this "
            "one another LINKAGE_RUN_DIR\n",
            lk_run_dir(), pid[0] ? pid : "?");
    if (!inherited) close(fd);
    return -1;
  }
  /* The daemons must not hold it after the supervisor is gone. */
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  if (!inherited && ftruncate(fd, 0) == 0) dprintf(fd, "%ld\n", (long)getpid());
  return fd;
}

static int set_env(const char *name, const char *value) {
  if (setenv(name, value, 1) != 0) {
    fprintf(stderr, "linkagectl run: cannot set %s: %s\n", name, strerror(errno));
    return -1;
  }
  return 0;
}

int ctl_run_main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"pg", required_argument, NULL, 'p'},      {"intake", required_argument, NULL, 'i'},
      {"ledger", required_argument, NULL, 'l'},  {"stream", required_argument, NULL, 's'},
      {"run-dir", required_argument, NULL, 'r'}, {"bin-dir", required_argument, NULL, 'b'},
      {"router", required_argument, NULL, 'R'},  {"dispatch", required_argument, NULL, 'D'},
      {"help", no_argument, NULL, 'h'},          {0, 0, 0, 0}};
  static struct run run; /* outlives every handle callback of the loop */
  struct run *r = &run;
  char bindir[PATH_MAX];
  const char *bin_flag = NULL;
  size_t i;
  int c, rc;

  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'p':
      if (set_env("LINKAGE_PG", optarg)) return CTL_EXIT_USAGE;
      break;
    case 'i':
      if (set_env("LINKAGE_INTAKE_ENDPOINT", optarg)) return CTL_EXIT_USAGE;
      break;
    case 'l':
      if (set_env("LINKAGE_LEDGER_ENDPOINT", optarg)) return CTL_EXIT_USAGE;
      break;
    case 's':
      if (set_env("LINKAGE_LEDGER_STREAM", optarg)) return CTL_EXIT_USAGE;
      break;
    case 'r':
      if (set_env("LINKAGE_RUN_DIR", optarg)) return CTL_EXIT_USAGE;
      break;
    case 'R':
      if (set_env("LINKAGE_ROUTER_ENDPOINT", optarg)) return CTL_EXIT_USAGE;
      break;
    case 'D':
      if (set_env("LINKAGE_DISPATCH_ENDPOINT", optarg)) return CTL_EXIT_USAGE;
      break;
    case 'b': bin_flag = optarg; break;
    case 'h': fputs(run_help, stdout); return CTL_EXIT_OK;
    default: fputs(run_help, stderr); return CTL_EXIT_USAGE;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "linkagectl run: unexpected argument \"%s\"\n", argv[optind]);
    return CTL_EXIT_USAGE;
  }
  ctl_log_init();
  memset(r, 0, sizeof *r);
  if (ctl_config_load(&r->cfg) != 0) return CTL_EXIT_CONFIG;
  if (bin_flag)
    snprintf(bindir, sizeof bindir, "%s", bin_flag);
  else if (own_dir(bindir, sizeof bindir) != 0) {
    lk_error("cannot find my own executable", "err=\"%s\"", strerror(errno));
    return CTL_EXIT_FAIL;
  }
  if (mkdir_p(lk_run_dir()) != 0) {
    lk_error("cannot create the run directory", "dir=%s err=\"%s\"", lk_run_dir(), strerror(errno));
    return CTL_EXIT_FAIL;
  }
  if (take_lock() < 0) return CTL_EXIT_FAIL;
  r->count = ctl_daemon_count < RUN_MAX_DAEMONS ? ctl_daemon_count : RUN_MAX_DAEMONS;
  for (i = 0; i < r->count; i++) {
    struct run_child *k = &r->kids[i];

    k->run = r;
    k->daemon = &ctl_daemons[i];
    if (snprintf(k->path, sizeof k->path, "%s/%s", bindir, k->daemon->binary) >=
            (int)sizeof k->path ||
        access(k->path, X_OK) != 0) {
      lk_error("daemon not found, run make first", "name=%s path=%s", k->daemon->name, k->path);
      return CTL_EXIT_FAIL;
    }
    ctl_child_init(&k->state);
  }

  rc = uv_loop_init(&r->loop);
  if (rc != 0) {
    lk_error("cannot create the event loop", "err=\"%s\"", uv_strerror(rc));
    return CTL_EXIT_FAIL;
  }
  r->zctx = zmq_ctx_new();
  if (!r->zctx) {
    lk_error("cannot create a ZeroMQ context", "err=\"%s\"", zmq_strerror(errno));
    uv_loop_close(&r->loop);
    return CTL_EXIT_FAIL;
  }
  uv_signal_init(&r->loop, &r->sigint);
  uv_signal_init(&r->loop, &r->sigterm);
  uv_signal_init(&r->loop, &r->sighup);
  uv_timer_init(&r->loop, &r->kill_timer);
  uv_timer_init(&r->loop, &r->probe_timer);
  r->sigint.data = r->sigterm.data = r->sighup.data = r;
  r->kill_timer.data = r->probe_timer.data = r;
  uv_signal_start(&r->sigint, signal_cb, SIGINT);
  uv_signal_start(&r->sigterm, signal_cb, SIGTERM);
  /* The daemons have their own sessions and will not see a hang-up of our
   * terminal: we stop them rather than leave them orphaned. */
  uv_signal_start(&r->sighup, signal_cb, SIGHUP);
  for (i = 0; i < r->count; i++) {
    uv_timer_init(&r->loop, &r->kids[i].restart);
    r->kids[i].restart.data = &r->kids[i];
  }
  lk_info("supervisor starting", "daemons=%zu bin=%s run_dir=%s", r->count, bindir, lk_run_dir());
  for (i = 0; i < r->count && !r->stopping; i++)
    spawn_child(&r->kids[i]);
  if (!r->stopping) uv_timer_start(&r->probe_timer, probe_cb, PROBE_EVERY_MS, PROBE_EVERY_MS);

  uv_run(&r->loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&r->loop);
  if (rc != 0) lk_warn("loop closed with handles open", "err=\"%s\"", uv_strerror(rc));
  zmq_ctx_term(r->zctx);
  return r->exit_code;
}
