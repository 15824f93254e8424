/* The Prometheus writer (services/common/metrics.c) and the listen setting's parser. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "linkage/error.h"
#include "linkage/metrics.h"
#include "linkage/metrics_http.h"
#include "lk_test.h"

static char *take(struct lk_metrics_writer *w) {
  size_t len = 0;
  char *s = lk_metrics_writer_take(w, &len);
  LK_CHECK(s != NULL);
  if (s) LK_CHECK_EQ_INT(len, strlen(s));
  return s;
}

LK_TEST(family_help_and_type) {
  struct lk_metrics_writer w;
  lk_metrics_writer_init(&w);
  lk_metrics_family(&w, "linkage_intake_reports_total", LK_METRIC_COUNTER,
                    "reports answered\nby status, a \\ too");
  lk_metrics_sample(&w, 3, "status", "accepted");
  lk_metrics_sample(&w, 0, "status", "busy");
  lk_metrics_single(&w, "linkage_ledger_queue_depth", LK_METRIC_GAUGE, "appends waiting", 7);
  char *s = take(&w);
  LK_CHECK_STR(s, "# HELP linkage_intake_reports_total reports answered\\nby status, a \\\\ too\n"
                  "# TYPE linkage_intake_reports_total counter\n"
                  "linkage_intake_reports_total{status=\"accepted\"} 3\n"
                  "linkage_intake_reports_total{status=\"busy\"} 0\n"
                  "# HELP linkage_ledger_queue_depth appends waiting\n"
                  "# TYPE linkage_ledger_queue_depth gauge\n"
                  "linkage_ledger_queue_depth 7\n");
  free(s);
}

LK_TEST(label_values_escaped) {
  struct lk_metrics_writer w;
  lk_metrics_writer_init(&w);
  lk_metrics_family(&w, "m", LK_METRIC_GAUGE, "h");
  lk_metrics_sample(&w, 1, "a", "back\\slash \"quoted\"\nnew line", "b", "楼栋 7");
  char *s = take(&w);
  LK_CHECK_CONTAINS(s, "m{a=\"back\\\\slash \\\"quoted\\\"\\nnew line\",b=\"楼栋 7\"} 1\n");
  free(s);
}

LK_TEST(histogram_cumulative_with_inf_sum_count) {
  /* Binary fractions, so the sum is exact. */
  static const double bounds[] = {0.25, 0.3, 1, 2};
  struct lk_histogram h;
  LK_CHECK_EQ_INT(lk_histogram_init(&h, bounds, 4), LK_OK);
  lk_histogram_observe(&h, 0.125); /* first bucket */
  lk_histogram_observe(&h, 0.25);  /* a bound belongs to its bucket (le: less or equal) */
  lk_histogram_observe(&h, 1.5);
  lk_histogram_observe(&h, 3); /* above every bound: +Inf only */
  lk_histogram_observe(&h, 0.5);
  struct lk_metrics_writer w;
  lk_metrics_writer_init(&w);
  lk_metrics_family(&w, "linkage_ledger_commit_duration_seconds", LK_METRIC_HISTOGRAM, "h");
  lk_metrics_histogram(&w, &h, "pg", "primary");
  char *s = take(&w);
  LK_CHECK_STR(s, "# HELP linkage_ledger_commit_duration_seconds h\n"
                  "# TYPE linkage_ledger_commit_duration_seconds histogram\n"
                  "linkage_ledger_commit_duration_seconds_bucket{pg=\"primary\",le=\"0.25\"} 2\n"
                  "linkage_ledger_commit_duration_seconds_bucket{pg=\"primary\",le=\"0.3\"} 2\n"
                  "linkage_ledger_commit_duration_seconds_bucket{pg=\"primary\",le=\"1\"} 3\n"
                  "linkage_ledger_commit_duration_seconds_bucket{pg=\"primary\",le=\"2\"} 4\n"
                  "linkage_ledger_commit_duration_seconds_bucket{pg=\"primary\",le=\"+Inf\"} 5\n"
                  "linkage_ledger_commit_duration_seconds_sum{pg=\"primary\"} 5.375\n"
                  "linkage_ledger_commit_duration_seconds_count{pg=\"primary\"} 5\n");
  free(s);
}

LK_TEST(histogram_without_labels) {
  static const double bounds[] = {1, 10};
  struct lk_histogram h;
  LK_CHECK_EQ_INT(lk_histogram_init(&h, bounds, 2), LK_OK);
  struct lk_metrics_writer w;
  lk_metrics_writer_init(&w);
  lk_metrics_family(&w, "b", LK_METRIC_HISTOGRAM, "empty");
  lk_metrics_histogram(&w, &h);
  char *s = take(&w);
  LK_CHECK_CONTAINS(s, "b_bucket{le=\"1\"} 0\nb_bucket{le=\"10\"} 0\nb_bucket{le=\"+Inf\"} 0\n"
                       "b_sum 0\nb_count 0\n");
  free(s);
}

LK_TEST(histogram_bounds_checked) {
  static const double descending[] = {1, 0.5};
  static const double many[LK_HISTOGRAM_BUCKETS_MAX + 1] = {0};
  struct lk_histogram h;
  LK_CHECK_EQ_INT(lk_histogram_init(&h, descending, 2), LK_EINVAL);
  LK_CHECK_EQ_INT(lk_histogram_init(&h, many, LK_HISTOGRAM_BUCKETS_MAX + 1), LK_EINVAL);
  LK_CHECK_EQ_INT(lk_histogram_init(&h, descending, 0), LK_EINVAL);
}

LK_TEST(values) {
  char b[40];
  lk_metrics_format_value(0, b, sizeof b);
  LK_CHECK_STR(b, "0");
  lk_metrics_format_value(18446744073709551615.0, b, sizeof b);
  LK_CHECK_STR(b, "1.8446744073709552e+19");
  lk_metrics_format_value(0.1, b, sizeof b);
  LK_CHECK_STR(b, "0.1");
  lk_metrics_format_value(-2.5, b, sizeof b);
  LK_CHECK_STR(b, "-2.5");
  lk_metrics_format_value(INFINITY, b, sizeof b);
  LK_CHECK_STR(b, "+Inf");
  lk_metrics_format_value(-INFINITY, b, sizeof b);
  LK_CHECK_STR(b, "-Inf");
  lk_metrics_format_value(NAN, b, sizeof b);
  LK_CHECK_STR(b, "NaN");
  lk_metrics_format_value(1712345678.123456, b, sizeof b);
  LK_CHECK_STR(b, "1712345678.123456");
}

/* Programmer errors fail the scrape, never the daemon. */
LK_TEST(misuse_fails_the_writer) {
  struct lk_metrics_writer w;
  size_t len;

  lk_metrics_writer_init(&w);
  lk_metrics_sample(&w, 1); /* no family yet */
  LK_CHECK(lk_metrics_writer_take(&w, &len) == NULL);
  LK_CHECK_EQ_INT(w.err, LK_EINVAL);

  lk_metrics_writer_init(&w);
  lk_metrics_family(&w, "bad-name", LK_METRIC_GAUGE, "h");
  LK_CHECK(lk_metrics_writer_take(&w, &len) == NULL);

  lk_metrics_writer_init(&w);
  lk_metrics_family(&w, "g", LK_METRIC_GAUGE, "h");
  lk_metrics_sample(&w, 1, "__reserved", "x");
  LK_CHECK(lk_metrics_writer_take(&w, &len) == NULL);

  lk_metrics_writer_init(&w);
  lk_metrics_family(&w, "g", LK_METRIC_GAUGE, "h");
  lk_metrics_sample(&w, 1, "le", "1"); /* le is the buckets' */
  LK_CHECK(lk_metrics_writer_take(&w, &len) == NULL);

  lk_metrics_writer_init(&w);
  lk_metrics_family(&w, "g", LK_METRIC_HISTOGRAM, "h");
  lk_metrics_sample(&w, 1); /* a histogram takes lk_metrics_histogram */
  LK_CHECK(lk_metrics_writer_take(&w, &len) == NULL);

  lk_metrics_writer_init(&w);
  lk_metrics_family(&w, "g", LK_METRIC_GAUGE, "h");
  lk_metrics_sample(&w, 1, "a", "1", "b", "2", "c", "3", "d", "4", "e", "5");
  LK_CHECK(lk_metrics_writer_take(&w, &len) == NULL);

  /* An empty scrape is an empty document, not a failure. */
  lk_metrics_writer_init(&w);
  char *s = lk_metrics_writer_take(&w, &len);
  LK_CHECK(s != NULL && len == 0 && s[0] == '\0');
  free(s);
}

LK_TEST(process_families) {
  struct lk_metrics_writer w;
  lk_metrics_writer_init(&w);
  lk_metrics_process(&w, "ledger", 1700000000.5, 3);
  char *s = take(&w);
  LK_CHECK_CONTAINS(s, "# TYPE process_cpu_seconds_total counter\n");
  LK_CHECK_CONTAINS(s, "# TYPE process_resident_memory_bytes gauge\n");
  LK_CHECK_CONTAINS(s, "process_start_time_seconds 1700000000.5\n");
  LK_CHECK_CONTAINS(s, "linkage_service_info{service=\"ledger\"} 1\n");
  LK_CHECK_CONTAINS(s, "linkage_service_restarts 3\n");
  free(s);
}

LK_TEST(listen_parse) {
  struct sockaddr_storage sa;
  LK_CHECK_EQ_INT(lk_metrics_listen_parse("127.0.0.1:9471", &sa), 1);
  LK_CHECK_EQ_INT(sa.ss_family, AF_INET);
  LK_CHECK_EQ_INT(ntohs(((struct sockaddr_in *)&sa)->sin_port), 9471);
  LK_CHECK_EQ_INT(lk_metrics_listen_parse("[::1]:9472", &sa), 1);
  LK_CHECK_EQ_INT(sa.ss_family, AF_INET6);
  LK_CHECK_EQ_INT(ntohs(((struct sockaddr_in6 *)&sa)->sin6_port), 9472);
  LK_CHECK_EQ_INT(lk_metrics_listen_parse("", &sa), 0);
  LK_CHECK_EQ_INT(lk_metrics_listen_parse("0", &sa), 0);
  LK_CHECK_EQ_INT(lk_metrics_listen_parse("0.0.0.0:0", &sa), 0);
  LK_CHECK_EQ_INT(lk_metrics_listen_parse("9471", &sa), LK_EINVAL);
  LK_CHECK_EQ_INT(lk_metrics_listen_parse("localhost:9471", &sa), LK_EINVAL);
  LK_CHECK_EQ_INT(lk_metrics_listen_parse("127.0.0.1:65536", &sa), LK_EINVAL);
  LK_CHECK_EQ_INT(lk_metrics_listen_parse("127.0.0.1:", &sa), LK_EINVAL);
  LK_CHECK_EQ_INT(lk_metrics_listen_parse("::1:9471", &sa), LK_EINVAL);
  LK_CHECK_EQ_INT(lk_metrics_listen_parse("[::1]9471", &sa), LK_EINVAL);
}

int main(void) {
  return lk_test_run_all();
}
