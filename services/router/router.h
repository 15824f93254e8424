#ifndef LINKAGE_ROUTER_H
#define LINKAGE_ROUTER_H

/* linkage-router: tiered response. Its state is a fold of the committed
 * stream (router_state.c); its decisions are plain functions of that state
 * and the time (router_policy.c); main.c and router_shell.c do the I/O.
 *
 * Every decision becomes an event with a deterministic id, so a router that
 * is killed and restarted redoes exactly the decisions it had not yet seen
 * committed, and the ledger drops the rest. */

#include <stddef.h>
#include <stdint.h>

#include "linkage/district.h"
#include "linkage/event.h"
#include "linkage/heap.h"
#include "linkage/map.h"
#include "linkage/plan.h"
#include "linkage/v1/command.pb-c.h"

enum router_deadline_kind {
  ROUTER_DEADLINE_ACKNOWLEDGE = 1,
  ROUTER_DEADLINE_RESOLVE = 2,
  ROUTER_DEADLINE_NO_UNIT = 3, /* dispatch found nobody for a role at this tier: escalate then */
};

/* Incident flags. */
enum {
  RI_ROUTED = 1 << 0,
  RI_ACKNOWLEDGED = 1 << 1, /* at its current tier */
  RI_RESOLVED = 1 << 2,
  RI_CLOSED = 1 << 3,
  RI_MERGED = 1 << 4,      /* joined another incident; no life of its own */
  RI_PLANNED = 1 << 5,     /* inside a planned-work window: recorded, never escalated */
  RI_INFLIGHT = 1 << 6,    /* a decision is waiting for the ledger: decide nothing else */
  RI_ACK_OVERDUE = 1 << 7, /* the district-tier alarm for this epoch was committed */
  RI_RES_OVERDUE = 1 << 8,
  RI_SUPPRESSED_LOGGED = 1 << 9, /* the inhibition of this epoch is in the timeline */
  RI_IN_HIGH = 1 << 10,          /* listed in router_state.high (street or district tier once) */
  RI_NO_UNIT = 1 << 11,          /* a no_unit_available of this tier waits for its escalation */
};

struct router_reporter {
  uint64_t device_hash;
  int64_t at_us;
};

struct router_incident {
  char *id;
  char *kind;
  char *building;
  uint32_t compound; /* index into the district's compounds */
  uint32_t flags;
  Linkage__V1__Category category;
  Linkage__V1__Severity severity;
  Linkage__V1__Tier tier;
  uint16_t epoch;       /* routed = 1, +1 for each escalated / de_escalated */
  uint16_t escalations; /* committed escalated events (for event ids) */
  uint16_t de_escalations;
  uint16_t severity_changes;
  double lat, lon;
  int64_t reported_at_us;
  uint64_t reported_position; /* where its `reported` event sits in the ledger */
  uint64_t ended_position;    /* where it was closed, resolved or merged; 0 while open */
  int64_t ack_by_us, resolve_by_us;
  int64_t severity_changed_at_us;
  uint32_t ack_handle, resolve_handle; /* in the deadline heap, or LK_HEAP_NONE */
  uint32_t no_unit_handle;
  int64_t no_unit_at_us;   /* when dispatch found nobody at this tier (RI_NO_UNIT) */
  uint8_t no_unit_role;    /* the role it found nobody for: index into lk_unit_types, plus 1 */
  uint8_t no_unit_tried;   /* units of that role called at this tier (capped at 255) */
  uint32_t next_in_bucket; /* next (older) incident of the same compound and kind */
  uint32_t prev_in_bucket; /* previous (newer) one, or 0 when first */
  /* On a bucket's first (newest) incident only: the bucket's last merge search that may be
   * reused, a query and the target it found (router_policy.c); 0 when none may. */
  uint32_t memo_query, memo_target;
  struct router_reporter *reporters; /* distinct devices that reported it (merges included) */
  uint32_t reporter_count, reporter_cap;
};

struct router_window {
  char *id; /* without the "plan-" prefix */
  uint32_t compound;
  char *building; /* NULL: whole compound */
  char *kind;     /* NULL: any kind */
  int64_t from_us, to_us;
  int lifted;
};

struct router_policy {
  double time_scale;          /* 60: a minute of plan time passes in a real second */
  int64_t merge_window_us;    /* how long after a report others join it (scaled) */
  double merge_distance_m;    /* 0: same building only */
  int reporter_threshold;     /* distinct reporters that raise severity one level; 0 = never */
  int64_t reporter_window_us; /* scaled, like every duration here */
  int64_t retry_us;           /* real time between retries of a decision the ledger refused */
};

struct router_state {
  const struct lk_district *district; /* borrowed */
  const struct lk_plan *plans;        /* borrowed */
  size_t plan_count;
  struct router_policy policy;

  struct router_incident *incidents; /* slot 0 unused, so 0 means "none" */
  uint32_t count, cap;
  struct lk_map by_id;
  struct lk_map buckets; /* "<compound index>/<kind>" -> newest slot; merge candidates */
  uint32_t *high;        /* slots that reached street or district tier: inhibitors */
  uint32_t high_count, high_cap;
  struct lk_heap deadlines; /* owner = slot, kind = router_deadline_kind */
  struct router_window *windows;
  uint32_t window_count, window_cap;
  uint64_t position; /* last committed position applied */
};

/* A decision: one event to append. Plain data; router_event.c turns it into
 * an Event. */
struct router_decision {
  Linkage__V1__EventType type;
  uint32_t incident;
  char event_id[2 * LK_ID_MAX];
  char incident_id[LK_ID_MAX];
  Linkage__V1__Tier from_tier, to_tier;
  char organisation[LK_ID_MAX];
  int64_t ack_by_us, resolve_by_us;
  char reason[512];
  int64_t
      recheck_us; /* > 0: look at this deadline again then (inhibited, or nothing to emit yet) */
  char by[LK_ID_MAX];   /* suppressed_by / merged into / inhibiting incident */
  const char *deadline; /* "acknowledge" or "resolve" for overdue and suppressed */
  int64_t due_us;
  Linkage__V1__Severity from_severity, to_severity;
  char role[32];           /* call_requested: the role to call again */
  char unit_id[LK_ID_MAX]; /* call_requested: the unit to call, or "" for the best one */
  struct {
    char window_id[LK_ID_MAX];
    char compound_id[LK_ID_MAX];
    char building[LK_ID_MAX];
    char kind[LK_ID_MAX];
    int64_t from_us, to_us;
  } planned;
};

int router_state_init(struct router_state *s, const struct lk_district *d,
                      const struct lk_plan *plans, size_t plan_count,
                      const struct router_policy *policy);
void router_state_close(struct router_state *s);

/* Folds one committed event into the state. Unknown incidents referenced by
 * later events are ignored (they may predate the district or be malformed).
 * Returns the incident slot the event concerned, or 0. */
uint32_t router_state_apply(struct router_state *s, uint64_t position,
                            const Linkage__V1__Event *ev);

/* Puts a deadline of the incident (back) into the heap at at_us: after a
 * deadline fired and its decision was refused by the ledger, or must be
 * looked at again later. */
void router_state_rearm(struct router_state *s, uint32_t slot, enum router_deadline_kind kind,
                        int64_t at_us);
/* Forgets the heap handle of a deadline the shell popped. */
void router_state_fired(struct router_state *s, const struct lk_deadline *d);

/* The merge bucket of an incident: same compound, same kind. */
void router_bucket_key(const struct router_incident *inc, char *out, size_t len);

struct router_incident *router_incident_get(struct router_state *s, const char *id);
int router_incident_open(const struct router_incident *inc);

/* ---- decisions (router_policy.c), time passed in ---- */

/* Plan time -> real microseconds under the policy's time scale. */
int64_t router_plan_us(const struct router_policy *p, int minutes);

/* The organisation answering at a tier for a compound (the compound itself,
 * its community, that community's street, the district). */
const char *router_organisation(const struct lk_district *d, const struct lk_compound *c,
                                Linkage__V1__Tier tier);

/* What to do with a newly reported incident: merge into an open one, or
 * route it. Fills *out and returns 1, or returns 0 if it needs nothing. */
int router_decide_new(const struct router_state *s, uint32_t slot, int64_t now_us,
                      struct router_decision *out);

/* What a deadline that fell due at d->at_us means: escalate, raise the
 * district-tier alarm, or hold back (inhibited). Returns 1 with *out filled,
 * or 0 when the deadline no longer applies. */
int router_decide_deadline(const struct router_state *s, const struct lk_deadline *d,
                           int64_t now_us, struct router_decision *out);

/* After a merge is committed into `slot`: raise severity if enough distinct
 * reporters came in the window. Returns 1 with *out filled, else 0. */
int router_decide_reporters(const struct router_state *s, uint32_t slot, int64_t now_us,
                            struct router_decision *out);

/* After a severity change: escalate if the new severity starts higher. */
int router_decide_severity(const struct router_state *s, uint32_t slot, int64_t now_us,
                           struct router_decision *out);

/* The planned-work window covering an incident at its report time, or NULL. */
const struct router_window *router_window_match(const struct router_state *s,
                                                const struct router_incident *inc);

/* An open incident at street or district tier of the same kind whose area
 * holds this incident's compound (inhibition), or 0. */
uint32_t router_inhibitor(const struct router_state *s, uint32_t slot);

/* Great-circle distance in metres. */
double router_distance_m(double lat1, double lon1, double lat2, double lon2);

/* ---- coordinator commands (router_command.c) ---- */

/* Turns a command into a decision against the state. Returns LK_OK with *out
 * filled, or LK_EINVAL with a one-line reason in err (unknown or closed
 * incident, already at the top or bottom tier, bad arguments). */
int router_decide_command(const struct router_state *s, const Linkage__V1__Command *cmd,
                          int64_t now_us, struct router_decision *out, char *err, size_t errlen);

/* ---- decision -> event (router_event.c) ---- */

/* Fills ev (and the storage it points into) from d. ev borrows from d and st. */
struct router_event_storage {
  Linkage__V1__Routed routed;
  Linkage__V1__Escalated escalated;
  Linkage__V1__Overdue overdue;
  Linkage__V1__Suppressed suppressed;
  Linkage__V1__Merged merged;
  Linkage__V1__SeverityChanged severity_changed;
  Linkage__V1__Acknowledged acknowledged;
  Linkage__V1__Closed closed;
  Linkage__V1__CoordinatorNote note;
  Linkage__V1__PlannedWork planned;
  Linkage__V1__PlannedWorkLifted lifted;
  Linkage__V1__CallRequested call;
  char actor[LK_ID_MAX + 16];
};
void router_event_build(const struct router_decision *d, const char *actor, int64_t now_us,
                        Linkage__V1__Event *ev, struct router_event_storage *st);

#endif
