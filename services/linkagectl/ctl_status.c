/* linkagectl status: is every daemon of the stack answering? */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "ctl.h"
#include "linkage/clock.h"
#include "linkage/service.h"

#define PROBE_TIMEOUT_MS 1000

static const char status_help[] =
    "NAME\n"
    "    linkagectl status - ask each daemon whether it is up\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl status [--wait SECONDS] [NAME...]\n"
    "\n"
    "DESCRIPTION\n"
    "    Sends \"status\" to every daemon's control socket\n"
    "    ipc://$LINKAGE_RUN_DIR/<name>.ctl and prints each answer on one line,\n"
    "    or \"down name=<name> ...\" for a daemon that did not answer within 1 s.\n"
    "    With NAMEs (ledger, intake, router, dispatch), asks only those: for a partial\n"
    "    stack, as some tests run.\n"
    "\n"
    "OPTIONS\n"
    "    --wait SECONDS   keep asking until every daemon answers or SECONDS pass\n"
    "                     (for scripts waiting for a stack to start)\n"
    "\n"
    "EXIT STATUS\n"
    "    0 when every daemon answered, 1 otherwise, 2 on a usage error.\n";

/* One round: the n daemons of which[] asked at once, each given
 * PROBE_TIMEOUT_MS. Returns how many answered; lines[i] gets which[i]'s line. */
static size_t ask_all(void *zctx, const size_t *which, size_t n, char lines[][600]) {
  struct ctl_probe probes[16];
  int done[16] = {0};
  size_t i, answered = 0;
  int64_t start = lk_mono_us(), left_ms;
  char endpoint[256]; /* an ipc path longer than sun_path (108) cannot work anyway */

  for (i = 0; i < n; i++) {
    if (ctl_probe_start(&probes[i], zctx, ctl_daemons[which[i]].name, start) != 0) {
      snprintf(lines[i], 600, "down name=%s err=\"cannot open a control socket\"",
               ctl_daemons[which[i]].name);
      done[i] = 1;
    }
  }
  for (i = 0; i < n; i++) {
    if (done[i]) continue;
    left_ms = PROBE_TIMEOUT_MS - (lk_mono_us() - start) / 1000;
    if (ctl_probe_poll(&probes[i], left_ms > 0 ? (int)left_ms : 0) == 1) {
      snprintf(lines[i], 600, "%s", probes[i].reply);
      answered++;
    } else {
      ctl_control_endpoint(ctl_daemons[which[i]].name, endpoint, sizeof endpoint);
      snprintf(lines[i], 600, "down name=%s endpoint=%s err=\"no answer within %d ms\"",
               ctl_daemons[which[i]].name, endpoint, PROBE_TIMEOUT_MS);
    }
    ctl_probe_stop(&probes[i]);
  }
  return answered;
}

int ctl_status_main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"wait", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
  char lines[16][600];
  uint64_t wait_s = 0;
  int64_t deadline;
  size_t i, j, answered, which[16], n = 0;
  void *zctx;
  int c;

  optind = 1;
  while ((c = getopt_long(argc, argv, "w:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'w':
      if (ctl_parse_u64(optarg, &wait_s) != 0 || wait_s > 86400) {
        fprintf(stderr, "linkagectl status: --wait wants whole seconds, not \"%s\"\n", optarg);
        return CTL_EXIT_USAGE;
      }
      break;
    case 'h': fputs(status_help, stdout); return CTL_EXIT_OK;
    default: fputs(status_help, stderr); return CTL_EXIT_USAGE;
    }
  }
  for (; optind < argc; optind++) {
    for (j = 0; j < ctl_daemon_count && strcmp(ctl_daemons[j].name, argv[optind]) != 0; j++) {
    }
    if (j == ctl_daemon_count || n == 16) {
      fprintf(stderr, "linkagectl status: no daemon named \"%s\"\n", argv[optind]);
      return CTL_EXIT_USAGE;
    }
    which[n++] = j;
  }
  if (n == 0)
    for (; n < ctl_daemon_count && n < 16; n++)
      which[n] = n;
  zctx = zmq_ctx_new();
  if (!zctx) {
    fprintf(stderr, "linkagectl status: cannot create a ZeroMQ context\n");
    return CTL_EXIT_FAIL;
  }
  deadline = lk_mono_us() + (int64_t)wait_s * 1000000;
  for (;;) {
    int64_t round = lk_mono_us();
    answered = ask_all(zctx, which, n, lines);
    if (answered == n || lk_mono_us() >= deadline) break;
    /* Pace the retries: a daemon that refused the connection outright
     * answers "down" at once, and we would otherwise spin. */
    if (lk_mono_us() - round < 200000) {
      struct timespec ts = {0, 200 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  for (i = 0; i < n; i++)
    printf("%s\n", lines[i]);
  if (answered < n)
    fprintf(stderr,
            "linkagectl status: %zu of %zu daemons did not answer on their control sockets in "
            "%s; is the stack running there? make run uses var/run of its checkout, "
            "LINKAGE_RUN_DIR names another\n",
            n - answered, n, lk_run_dir());
  zmq_ctx_term(zctx);
  return answered == n ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}
