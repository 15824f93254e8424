#ifndef LINKAGE_METRICS_H
#define LINKAGE_METRICS_H

/* Prometheus metrics: the text exposition format, version 0.0.4.
 *
 * Pull, not push. A daemon keeps the counters it already keeps (plain integers of its state,
 * the same ones its `status` line shows) and, when scraped, writes them out with the writer
 * below: no registry to keep in step, nothing allocated on the hot path. The one kind that needs
 * state of its own is the histogram (struct lk_histogram): fixed buckets, observed where the
 * thing happens, written at scrape time.
 *
 *   lk_metrics_family(w, "linkage_intake_reports_total", LK_METRIC_COUNTER,
 *                     "reports answered, by the status of the ReportAck");
 *   lk_metrics_sample(w, (double)st->accepted, "status", "accepted");
 *   lk_metrics_sample(w, (double)st->busy, "status", "busy");
 *
 * A family's samples follow its HELP and TYPE lines, so they are grouped as the format wants.
 * Names follow Prometheus's conventions: linkage_<daemon>_..., base units (_seconds, _bytes),
 * counters end in _total. Label values are escaped here (backslash, double quote, newline);
 * they must be UTF-8. A bad metric or label name, a sample outside a family or of the wrong
 * kind is a programmer's error: the writer records LK_EINVAL and the scrape fails with 500
 * (and a log line), rather than the daemon stopping. */

#include <stddef.h>
#include <stdint.h>

#define LK_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum lk_metric_type { LK_METRIC_COUNTER, LK_METRIC_GAUGE, LK_METRIC_HISTOGRAM };

#define LK_METRIC_NAME_MAX 128
#define LK_METRIC_LABELS_MAX 4 /* label pairs per sample (a histogram adds "le") */
#define LK_HISTOGRAM_BUCKETS_MAX 16

/* Observations in fixed buckets. counts[i] holds those in (bounds[i-1], bounds[i]], counts[n]
 * those above the last bound; the writer makes them cumulative. */
struct lk_histogram {
  const double *bounds; /* ascending upper bounds; borrowed (a static table) */
  size_t n;
  uint64_t counts[LK_HISTOGRAM_BUCKETS_MAX + 1];
  uint64_t count;
  double sum;
};

/* LK_OK, or LK_EINVAL when there are more than LK_HISTOGRAM_BUCKETS_MAX bounds, none, or they
 * are not strictly ascending finite numbers. */
int lk_histogram_init(struct lk_histogram *h, const double *bounds, size_t n);
void lk_histogram_observe(struct lk_histogram *h, double v);

/* The text of one scrape, in a growing buffer. Caller-owned storage. */
struct lk_metrics_writer {
  char *buf;
  size_t len, cap;
  int err; /* LK_OK, or the first failure (LK_ENOMEM, LK_EINVAL); later calls do nothing */
  char family[LK_METRIC_NAME_MAX];
  enum lk_metric_type type;
  int in_family;
};

void lk_metrics_writer_init(struct lk_metrics_writer *w);
void lk_metrics_writer_close(struct lk_metrics_writer *w);
/* The text written so far, malloc'd and NUL-terminated (the caller frees it), with its length
 * in *len; NULL when the writer failed (w->err says why) or is out of memory. The writer is
 * empty afterwards. */
char *lk_metrics_writer_take(struct lk_metrics_writer *w, size_t *len);

/* Starts a family: its HELP and TYPE lines. */
void lk_metrics_family(struct lk_metrics_writer *w, const char *name, enum lk_metric_type type,
                       const char *help);
/* lk_metrics_sample(w, value, "label", "value", ...): one sample of the current counter or gauge
 * family with its label name and value pairs (none, or up to LK_METRIC_LABELS_MAX). */
#define lk_metrics_sample(...) lk_metrics_sample_pairs(__VA_ARGS__, LK_METRICS_END)
/* lk_metrics_histogram(w, h, "label", "value", ...): a histogram's series for one label set, its
 * cumulative _bucket lines ending with le="+Inf", then _sum and _count. */
#define lk_metrics_histogram(...) lk_metrics_histogram_pairs(__VA_ARGS__, LK_METRICS_END)
/* What the macros above call: the pairs end with LK_METRICS_END, a null pointer of the pairs'
 * type (a bare NULL may be an int, which va_arg must not read as a pointer). */
#define LK_METRICS_END ((const char *)0)
void lk_metrics_sample_pairs(struct lk_metrics_writer *w, double value, ...)
    __attribute__((sentinel));
void lk_metrics_histogram_pairs(struct lk_metrics_writer *w, const struct lk_histogram *h, ...)
    __attribute__((sentinel));
/* A family with one unlabelled sample: the common case of a gauge or counter. */
void lk_metrics_single(struct lk_metrics_writer *w, const char *name, enum lk_metric_type type,
                       const char *help, double value);

/* The text form of a sample value: integers without a fraction, "+Inf", "-Inf", "NaN", other
 * numbers with as many digits as round-trip. out holds at least 32 bytes. */
void lk_metrics_format_value(double v, char *out, size_t len);

/* The process families every daemon serves (the skeleton writes them): process_* as the
 * Prometheus client libraries name them (CPU, resident memory, open descriptors, start time),
 * and linkage_service_info / linkage_service_restarts. started_s: Unix seconds; restarts: how
 * often the supervisor had started this daemon again before this process. */
void lk_metrics_process(struct lk_metrics_writer *w, const char *service, double started_s,
                        long restarts);

/* The environment variable through which `linkagectl run` tells a daemon how often it has been
 * restarted (decimal). */
#define LK_METRICS_RESTARTS_ENV "LINKAGE_SUPERVISOR_RESTARTS"

/* The config entry of a daemon's metrics listener, key "<svc>_metrics_listen" (so one
 * environment variable per daemon, LINKAGE_<SVC>_METRICS_LISTEN), in the struct's
 * metrics_listen field. The skeleton finds it by that key. "ADDRESS:PORT", IPv4 or [IPv6]; ""
 * or "0" (or port 0) turns the listener off. */
#define LK_METRICS_CONFIG(T, svc, port)                                                            \
  {                                                                                                \
    svc "_metrics_listen", LK_CFG_STRING, offsetof(T, metrics_listen), 0, 0,                       \
        "127.0.0.1:" LK_METRICS_STR(port),                                                         \
        "where GET /metrics answers (Prometheus text format), ADDRESS:PORT; \"\" or 0: off"        \
  }

#define LK_METRICS_STR_(x) #x
#define LK_METRICS_STR(x) LK_METRICS_STR_(x)

/* The default ports, one per daemon (README "Metrics"). */
#define LK_METRICS_PORT_LEDGER 9471
#define LK_METRICS_PORT_INTAKE 9472
#define LK_METRICS_PORT_ROUTER 9473
#define LK_METRICS_PORT_DISPATCH 9474
#define LK_METRICS_PORT_GATEWAY 9475

#endif
