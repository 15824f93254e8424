#ifndef LINKAGE_SERVICE_H
#define LINKAGE_SERVICE_H

#include <stdint.h>
#include <uv.h>

#include "linkage/config.h"

struct lk_metrics_writer;

/* The daemon skeleton (Fluent Bit's plugin struct, Redis's serverCron).
 * A daemon declares itself as one struct lk_service and main() hands it to
 * lk_service_run(), which parses options (--help, --config FILE,
 * --check-config, --help-config, --set key=value), loads the config, installs
 * SIGINT/SIGTERM/SIGHUP handlers, binds the control socket that answers
 * `linkagectl status`, serves GET /metrics (Prometheus) on the address of the
 * config entry "<name>_metrics_listen" when the table has one
 * (LK_METRICS_CONFIG in linkage/metrics.h), runs the loop with the periodic
 * tick, and on stop closes every handle so that uv_loop_close() returns 0. */

struct lk_runtime {
  uv_loop_t *loop;
  void *zctx;       /* the process's ZeroMQ context */
  const char *name; /* "ledger" */
  void *config;     /* the daemon's config struct, filled in */
  void *state;      /* the daemon's state, zeroed, service->state_size bytes */
  int stopping;
  int exit_code; /* set by lk_service_fail */
};

struct lk_service {
  const char *name;                     /* short: "ledger", "intake" */
  const char *summary;                  /* one line for --help */
  const struct lk_config_entry *config; /* the config table */
  size_t config_len;
  size_t config_size; /* sizeof(struct <svc>_config) */
  size_t state_size;  /* sizeof(struct <svc>) */
  /* Opens sockets and timers. Returns LK_OK, or an error after logging. */
  int (*start)(struct lk_runtime *rt);
  /* Periodic duties, every tick_ms; now_us is the wall clock. May be NULL. */
  void (*tick)(struct lk_runtime *rt, int64_t now_us);
  uint64_t tick_ms;
  /* Writes one line of key=value status for `linkagectl status`. May be NULL. */
  void (*status)(struct lk_runtime *rt, char *buf, size_t len);
  /* Writes the daemon's metric families for a scrape of /metrics, after the skeleton's process
   * families (linkage/metrics.h). Runs on the loop; may be NULL. */
  void (*metrics)(struct lk_runtime *rt, struct lk_metrics_writer *w);
  /* Closes every handle the daemon opened (the loop then runs to completion). */
  void (*stop)(struct lk_runtime *rt);
  /* Extra text for --help: the man-page-like description. */
  const char *help;
};

/* Runs the daemon; returns the process exit code. */
int lk_service_run(const struct lk_service *svc, int argc, char **argv);

/* Asks the loop to stop as if SIGTERM had arrived. */
void lk_service_stop(struct lk_runtime *rt);
/* Stops the daemon because it cannot go on (a port taken after start-up, say):
 * the process exits 1 so the supervisor and the operator see a failure. */
void lk_service_fail(struct lk_runtime *rt);

/* Records that an endpoint this daemon must bind is taken (EADDRINUSE): another stack, or
 * another program, listens there, and starting again cannot help. A start that fails after it
 * exits with 78 (EX_CONFIG), which the supervisor takes as "stop the stack", not "restart". */
void lk_service_address_taken(const char *endpoint);

/* Where control sockets live: $LINKAGE_RUN_DIR or "var/run". */
const char *lk_run_dir(void);

#endif
