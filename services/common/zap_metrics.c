/* The CURVE gate's figures for /metrics (linkage/zap.h): a denied handshake is either a device
 * with a stale key or somebody knocking, and an operator wants to see either. */
#include <stdio.h>

#include "linkage/metrics.h"
#include "linkage/zap.h"

void lk_auth_metrics(struct lk_metrics_writer *w, const char *prefix, const struct lk_auth *a) {
  char name[LK_METRIC_NAME_MAX];
  snprintf(name, sizeof name, "%s_curve_enabled", prefix);
  lk_metrics_single(w, name, LK_METRIC_GAUGE,
                    "1 when the port's clients must speak CURVE with a registered key", a->curve);
  if (!a->curve) return;
  snprintf(name, sizeof name, "%s_curve_keys", prefix);
  lk_metrics_single(w, name, LK_METRIC_GAUGE, "registered keys in force",
                    a->ring ? (double)a->ring->n : 0);
  snprintf(name, sizeof name, "%s_curve_handshakes_total", prefix);
  lk_metrics_family(w, name, LK_METRIC_COUNTER,
                    "CURVE handshakes the ZAP handler decided, by result");
  lk_metrics_sample(w, (double)a->zap_allowed, "result", "allowed");
  lk_metrics_sample(w, (double)a->zap_denied, "result", "denied");
  snprintf(name, sizeof name, "%s_curve_revoked_refused_total", prefix);
  lk_metrics_single(w, name, LK_METRIC_COUNTER,
                    "messages refused because their key was revoked after the handshake",
                    (double)a->revoked_refused);
  snprintf(name, sizeof name, "%s_curve_key_reloads_total", prefix);
  lk_metrics_family(w, name, LK_METRIC_COUNTER, "reloads of the key registry, by result");
  lk_metrics_sample(w, (double)(a->refreshes - a->refresh_failures), "result", "ok");
  lk_metrics_sample(w, (double)a->refresh_failures, "result", "failed");
}
