/* The ledger's /metrics: the figures of its status line, what each append was answered, and
 * the group commit's shape (how many events a batch carries, how long its commit takes), which
 * is what tells an operator whether PostgreSQL or the load is the limit. */
#include "ledger.h"
#include "linkage/error.h"
#include "linkage/zap.h"

/* Appends per batch: one at a quiet hour, thousands under a burst (batch_max 4096 by default). */
static const double batch_bounds[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 4096, 16384};
/* A commit on a local disk takes a few milliseconds; seconds mean trouble. */
static const double commit_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                       0.25,  0.5,    1,     2.5,  5,     10};

int ledger_metrics_init(struct ledger *L) {
  if (lk_histogram_init(&L->batch_size, batch_bounds,
                        sizeof batch_bounds / sizeof batch_bounds[0]) != LK_OK ||
      lk_histogram_init(&L->commit_duration, commit_bounds,
                        sizeof commit_bounds / sizeof commit_bounds[0]) != LK_OK)
    return LK_EINVAL;
  return LK_OK;
}

void ledger_metrics(struct lk_runtime *rt, struct lk_metrics_writer *w) {
  struct ledger *L = rt->state;
  const uint64_t *a = L->appends_answered;

  lk_metrics_single(w, "linkage_ledger_commits_total", LK_METRIC_COUNTER,
                    "batches committed to PostgreSQL (one transaction each)", (double)L->batches);
  lk_metrics_single(w, "linkage_ledger_events_committed_total", LK_METRIC_COUNTER,
                    "events committed and published on the stream", (double)L->events);
  lk_metrics_single(w, "linkage_ledger_commit_failures_total", LK_METRIC_COUNTER,
                    "commit or connection attempts that failed (PostgreSQL unavailable); the "
                    "batch is retried",
                    (double)L->commit_failures);
  lk_metrics_family(w, "linkage_ledger_appends_total", LK_METRIC_COUNTER,
                    "appends answered, by status: committed, duplicate (stored before), invalid "
                    "(refused), busy (queue full or PostgreSQL down; the client retries)");
  lk_metrics_sample(w, (double)a[LINKAGE__V1__APPEND_REPLY__STATUS__COMMITTED], "status",
                    "committed");
  lk_metrics_sample(w, (double)a[LINKAGE__V1__APPEND_REPLY__STATUS__DUPLICATE], "status",
                    "duplicate");
  lk_metrics_sample(w, (double)a[LINKAGE__V1__APPEND_REPLY__STATUS__INVALID], "status", "invalid");
  lk_metrics_sample(w, (double)a[LINKAGE__V1__APPEND_REPLY__STATUS__BUSY], "status", "busy");
  lk_metrics_family(w, "linkage_ledger_batch_size", LK_METRIC_HISTOGRAM,
                    "appends per committed batch (group commit)");
  lk_metrics_histogram(w, &L->batch_size);
  lk_metrics_family(w, "linkage_ledger_commit_duration_seconds", LK_METRIC_HISTOGRAM,
                    "time from taking a batch off the queue to its commit, in seconds (the "
                    "attempt that committed)");
  lk_metrics_histogram(w, &L->commit_duration);
  lk_metrics_family(w, "linkage_ledger_queue_depth", LK_METRIC_GAUGE,
                    "appends waiting: in the queue, and in the batch being committed");
  lk_metrics_sample(w, (double)L->q_len, "queue", "append");
  lk_metrics_sample(w, (double)L->batch.count, "queue", "batch");
  lk_metrics_sample(w, (double)(L->replay_q_len + (L->replay_busy ? 1 : 0)), "queue", "replay");
  lk_metrics_single(w, "linkage_ledger_queue_bytes", LK_METRIC_GAUGE,
                    "event bytes in the append queue", (double)L->q_bytes);
  lk_metrics_single(w, "linkage_ledger_queue_limit", LK_METRIC_GAUGE,
                    "appends the queue holds before answering busy (queue_max)",
                    L->cfg ? (double)L->cfg->queue_max : 0);
  lk_metrics_single(w, "linkage_ledger_head_position", LK_METRIC_GAUGE,
                    "position of the last committed event", (double)L->head);
  lk_metrics_single(w, "linkage_ledger_postgres_up", LK_METRIC_GAUGE,
                    "1 while PostgreSQL takes commits, 0 while the ledger waits for it",
                    L->ready && !L->pg_down);
  lk_auth_metrics(w, "linkage_ledger_link", &L->auth);
}
