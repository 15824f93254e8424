/* The router's /metrics: what is open where (tier by severity), what is late, and the decisions
 * this process has sent. The open and late figures are counted from the folded state at scrape
 * time, so they are the router's own view and agree with its decisions. */
#include <stdio.h>

#include "linkage/clock.h"
#include "linkage/event.h"
#include "linkage/metrics.h"
#include "router_shell.h"

#define TIERS 5      /* 0: not routed yet; 1 compound .. 4 district */
#define SEVERITIES 5 /* 1 (I) .. 4 (IV); 0 unused */

struct census {
  double open[TIERS][SEVERITIES];
  double overdue;
};

/* A deadline is missed once it has passed: the acknowledge deadline until the current tier
 * acknowledged, the resolve deadline until the incident is resolved (then it is not open). */
static int overdue(const struct router_incident *inc, int64_t now_us) {
  int ack = !(inc->flags & RI_ACKNOWLEDGED) && inc->ack_by_us > 0 && inc->ack_by_us <= now_us;
  int res = inc->resolve_by_us > 0 && inc->resolve_by_us <= now_us;
  return ack || res;
}

static void count(const struct router_state *s, int64_t now_us, struct census *c) {
  for (uint32_t slot = 1; slot < s->count; slot++) {
    const struct router_incident *inc = &s->incidents[slot];
    if (!router_incident_open(inc)) continue;
    unsigned t = (unsigned)inc->tier < TIERS ? (unsigned)inc->tier : 0;
    unsigned v = (unsigned)inc->severity < SEVERITIES ? (unsigned)inc->severity : 0;
    c->open[t][v]++;
    if (overdue(inc, now_us)) c->overdue++;
  }
}

static void write_open(struct lk_metrics_writer *w, const struct census *c) {
  lk_metrics_family(w, "linkage_router_open_incidents", LK_METRIC_GAUGE,
                    "incidents neither resolved, closed nor merged, by tier (\"unrouted\" before "
                    "the routing is committed) and severity (I most severe)");
  for (unsigned t = 0; t < TIERS; t++) {
    const char *tier = t ? lk_tier_name((Linkage__V1__Tier)t) : "unrouted";
    for (unsigned v = 1; v < SEVERITIES; v++)
      lk_metrics_sample(w, c->open[t][v], "tier", tier, "severity",
                        lk_severity_name((Linkage__V1__Severity)v));
  }
}

void router_metrics(struct lk_runtime *rt, struct lk_metrics_writer *w) {
  static const char *const causes[ROUTER_ESCALATION_CAUSES] = {
      "acknowledge_deadline", "resolve_deadline", "no_unit", "severity", "command"};
  struct router *r = rt->state;
  struct census c = {0};

  count(&r->state, lk_now_us(), &c);
  write_open(w, &c);
  lk_metrics_single(w, "linkage_router_overdue_incidents", LK_METRIC_GAUGE,
                    "open incidents whose acknowledge or resolve deadline at their current tier "
                    "has passed (escalation is due, held back, or at district tier)",
                    c.overdue);
  lk_metrics_family(w, "linkage_router_escalations_total", LK_METRIC_COUNTER,
                    "escalations this router sent to the ledger, by cause");
  for (unsigned i = 0; i < ROUTER_ESCALATION_CAUSES; i++)
    lk_metrics_sample(w, (double)r->escalations[i], "cause", causes[i]);
  lk_metrics_family(w, "linkage_router_decisions_total", LK_METRIC_COUNTER,
                    "decisions this router sent to the ledger, by event type");
  lk_metrics_sample(w, (double)r->routed, "type", "routed");
  lk_metrics_sample(w, (double)r->merged, "type", "merged");
  lk_metrics_sample(w, (double)r->escalated, "type", "escalated");
  lk_metrics_sample(w, (double)r->overdue, "type", "overdue");
  lk_metrics_sample(w, (double)r->suppressed, "type", "suppressed");
  lk_metrics_single(w, "linkage_router_decisions_retried_total", LK_METRIC_COUNTER,
                    "decisions the ledger did not commit, sent again",
                    (double)r->decisions_retried);
  lk_metrics_family(w, "linkage_router_commands_total", LK_METRIC_COUNTER,
                    "coordinators' commands answered, by result (busy answers not counted)");
  lk_metrics_sample(w, (double)r->commands_ok, "result", "ok");
  lk_metrics_sample(w, (double)r->commands_rejected, "result", "rejected");
  lk_metrics_single(w, "linkage_router_deadlines", LK_METRIC_GAUGE, "deadlines armed",
                    (double)r->state.deadlines.count);
  lk_metrics_single(w, "linkage_router_position", LK_METRIC_GAUGE,
                    "ledger position of the last event folded", (double)r->state.position);
  lk_metrics_single(w, "linkage_router_caught_up", LK_METRIC_GAUGE,
                    "1 once the state has caught up with the ledger and decisions run",
                    r->caught_up == 2);
  lk_auth_metrics(w, "linkage_router_link", &r->auth);
}
