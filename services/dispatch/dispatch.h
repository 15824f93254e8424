#ifndef LINKAGE_DISPATCH_H
#define LINKAGE_DISPATCH_H

/* linkage-dispatch: coordinated handling. Its state is a fold of the
 * committed stream (dispatch_state.c); which units to call is a plain
 * function of that state, the district data, unit presence and the time
 * (dispatch_plan.c); main.c and dispatch_shell.c do the I/O (the ledger
 * stream, the units' ROUTER on 7005, one timer over per-unit deadlines).
 *
 * Identity: an assignment is "<incident>/<role>/<n>": the n-th unit called for
 * that role of that incident (n grows after a decline, an unanswered deadline
 * or a backup request). The `dispatched` event id is
 * "<incident>/dispatched/<role>/<n>", an answer's "<incident>/unit_<answer>/<role>/<n>".
 * A dispatch restarted mid-incident computes the same ids, so nothing is
 * assigned twice under a new id; which unit a redone decision picks may
 * differ, and the first one committed wins. */

#include <stddef.h>
#include <stdint.h>

#include "linkage/district.h"
#include "linkage/event.h"
#include "linkage/heap.h"
#include "linkage/map.h"
#include "linkage/plan.h"
#include "linkage/roster.h"
#include "linkage/v1/unit.pb-c.h"

#define DISPATCH_ROLE_MAX LK_ROLE_MAX
#define DISPATCH_MAX_ROLES LK_MAX_NEEDS
#define DISPATCH_NOTE_MAX 500 /* bytes of an answer's note (unit.proto) */

/* The roles a plan calls, rosters expanded: linkage/roster.h (lk_roster_needs). */

/* Plan minutes -> real microseconds under the policy's time scale. */
struct dispatch_policy;
int64_t dispatch_plan_us(const struct dispatch_policy *p, int minutes);

/* The minute of the local day (0..1439) at now_us, for duty hours. */
int dispatch_minute_of_day(int64_t now_us, int utc_offset_min);

/* ---- units as dispatch sees them ---- */

struct dispatch_unit_status {
  int present;   /* heard from within the presence timeout */
  unsigned load; /* open assignments (dispatched, not resolved or declined): the shell
                    copies dispatch_state.unit_load[i] here */
};

/* Picks the unit for one role: of the type, covering the compound, on duty at
 * `minute_of_day` (local time), not in `exclude` (units already tried for this
 * role of this incident); best first by presence, then coverage, then load,
 * then id. minute_of_day -1: on duty or not. Returns the unit or NULL when none is left. `status`
 * is indexed like d->units. */
const struct lk_unit *dispatch_pick(const struct lk_district *d, const struct lk_compound *c,
                                    const char *building, const char *role,
                                    const struct dispatch_unit_status *status, int minute_of_day,
                                    const char *const *exclude, size_t exclude_count);

/* ---- the fold ---- */

enum dispatch_assignment_state {
  DA_DISPATCHED = 1,
  DA_ACKNOWLEDGED,
  DA_ON_SCENE,
  DA_RESOLVED,
  DA_DECLINED, /* declined by the unit, or expired unanswered (then declined by svc:dispatch) */
};

struct dispatch_assignment {
  char *id; /* "<incident>/<role>/<n>" */
  char *unit_id;
  char role[DISPATCH_ROLE_MAX];
  uint32_t incident; /* slot */
  uint16_t n;
  uint8_t lead;
  uint8_t state; /* enum dispatch_assignment_state */
  int64_t dispatched_at_us, acknowledge_by_us, arrive_by_us, resolve_by_us;
  int64_t acknowledged_at_us, on_scene_at_us, resolved_at_us;
  uint32_t deadline_handle; /* acknowledge deadline in the heap while unanswered */
  uint8_t replaced;         /* declined, and a later assignment names it in `replaces` */
  uint8_t backup;           /* its unit asked for backup (one more unit of its role) */
  uint8_t loaded;           /* counted in dispatch_state.unit_load */
  uint8_t tier;             /* the incident's tier when the unit was called */
};

/* A coordinator's call of a role (or one unit) again (call_requested). */
struct dispatch_call {
  char role[DISPATCH_ROLE_MAX];
  char *unit_id;  /* NULL: the best unit of the role */
  char *event_id; /* the call_requested event, which the answering dispatched names */
  int done;       /* its dispatched is folded */
};

enum {
  DI_ROUTED = 1 << 0,
  DI_RESOLVED = 1 << 1, /* the incident-level `resolved` is committed */
  DI_CLOSED = 1 << 2,
  DI_MERGED = 1 << 3,
  DI_INFLIGHT = 1 << 4, /* a decision waits for the ledger */
  DI_NO_UNIT = 1 << 5,  /* no_unit_available committed at the current tier */
};

struct dispatch_incident {
  char *id;
  uint32_t compound; /* index into the district's compounds */
  char *building;
  char *kind;
  char *description;
  Linkage__V1__Category category;
  Linkage__V1__Severity severity;
  Linkage__V1__Tier tier;
  uint32_t flags;
  int exercise; /* a drill (Report.exercise): the units are told */
  double lat, lon;
  int64_t reported_at_us, resolved_at_us;
  uint32_t *assignments; /* indexes into dispatch_state.assignments */
  uint32_t assignment_count, assignment_cap;
  uint32_t close_handle;       /* the automatic close deadline after `resolved` */
  uint32_t no_unit_mask;       /* needs (by index in lk_roster_needs at the current tier) whose
                                  no_unit_available is committed at this tier */
  struct dispatch_call *calls; /* coordinators' calls, in the order they were committed */
  uint32_t call_count, call_cap;
};

struct dispatch_policy {
  double time_scale;        /* as the router's: plan minutes per real minute */
  int64_t verify_window_us; /* after `resolved`, close automatically (scaled) */
  int utc_offset_min;       /* the district's local time, for duty hours (480: UTC+8) */
};

enum dispatch_deadline_kind {
  DISPATCH_DEADLINE_ACKNOWLEDGE = 1, /* owner = assignment index */
  DISPATCH_DEADLINE_CLOSE = 2,       /* owner = incident slot */
};

struct dispatch_state {
  const struct lk_district *district; /* borrowed */
  struct dispatch_policy policy;
  struct dispatch_incident *incidents; /* slot 0 unused */
  uint32_t count, cap;
  struct lk_map by_id;                     /* incident id -> slot */
  struct dispatch_assignment *assignments; /* index 0 unused */
  uint32_t assignment_count, assignment_cap;
  struct lk_map assignment_by_id; /* assignment id -> index */
  unsigned *unit_load;            /* indexed like district->units */
  struct lk_heap deadlines;
  uint64_t position;
};

int dispatch_state_init(struct dispatch_state *s, const struct lk_district *d,
                        const struct dispatch_policy *policy);
void dispatch_state_close(struct dispatch_state *s);

/* Folds one committed event (reported, routed, escalated, de_escalated,
 * merged, dispatched, unit_*, backup_requested, no_unit_available, resolved,
 * closed; others are ignored). Returns the incident slot it concerned, or 0. */
uint32_t dispatch_state_apply(struct dispatch_state *s, uint64_t position,
                              const Linkage__V1__Event *ev);

/* Forgets the heap handle of a deadline the shell popped. */
void dispatch_state_fired(struct dispatch_state *s, const struct lk_deadline *d);
/* Puts a popped deadline back at at_us (its decision was refused by the ledger, or must be
 * looked at again later). */
void dispatch_state_rearm(struct dispatch_state *s, const struct lk_deadline *d, int64_t at_us);

struct dispatch_incident *dispatch_incident_get(struct dispatch_state *s, const char *id);
struct dispatch_assignment *dispatch_assignment_get(struct dispatch_state *s, const char *id);

/* ---- decisions (dispatch_plan.c) ---- */

/* 1 for an assignment whose part is to check the result on site (a grid worker's): it does not
 * hold back `resolved`, and its unit's VERIFIED closes the incident. */
int dispatch_verifies(const struct dispatch_assignment *a);

/* One event to append. Plain data; dispatch_event.c makes the Event. */
struct dispatch_decision {
  Linkage__V1__EventType type; /* DISPATCHED, UNIT_DECLINED (expiry), NO_UNIT_AVAILABLE,
                                  RESOLVED, CLOSED */
  uint32_t incident;
  char event_id[2 * LK_ID_MAX];
  char incident_id[LK_ID_MAX];
  char assignment_id[2 * LK_ID_MAX];
  char replaces[2 * LK_ID_MAX];
  char unit_id[LK_ID_MAX];
  char role[DISPATCH_ROLE_MAX];
  int lead;
  Linkage__V1__Tier tier;
  int64_t acknowledge_by_us, arrive_by_us, resolve_by_us;
  char reason[256];
  char note[DISPATCH_NOTE_MAX + 12]; /* a unit's answer note (UnitAnswer.note) */
  char called_by[2 * LK_ID_MAX];     /* dispatched: the call_requested it answers */
  unsigned tried;                    /* no_unit_available: units of the role called at the tier */
};

/* What an incident needs now: the next unit to call for a needed role that
 * has no open assignment (or was asked for backup), `no_unit_available` when
 * a needed role has nobody left, or `resolved` when the lead has resolved and
 * every open assignment is resolved. Fills at most max decisions; returns the
 * count. `status` is indexed like the district's units. */
size_t dispatch_decide(const struct dispatch_state *s, uint32_t slot,
                       const struct dispatch_unit_status *status, int64_t now_us,
                       struct dispatch_decision *out, size_t max);

/* An assignment whose acknowledge deadline passed unanswered: expire it
 * (unit_declined by svc:dispatch); dispatch_decide then calls the next unit.
 * Returns 1 with *out filled, 0 if it no longer applies. */
int dispatch_decide_expiry(const struct dispatch_state *s, uint32_t assignment, int64_t now_us,
                           struct dispatch_decision *out);

/* The verification window after `resolved` passed: close. 1 with *out, else 0. */
int dispatch_decide_autoclose(const struct dispatch_state *s, uint32_t slot, int64_t now_us,
                              struct dispatch_decision *out);

/* A unit's answer, checked against the state: the event to append, or
 * LK_EINVAL with the reason (unknown assignment, another unit's assignment,
 * VERIFIED from a unit that is not a grid worker covering the compound, an
 * answer on a closed incident). */
int dispatch_decide_answer(const struct dispatch_state *s, const char *unit_id,
                           const char *assignment_id, int kind /* Answer.Kind */, const char *note,
                           int64_t now_us, Linkage__V1__EventType *type, char *event_id,
                           size_t event_id_len, char *err, size_t errlen);

/* dispatch_decide_answer with the whole decision: UNIT_ACKNOWLEDGED, UNIT_ON_SCENE,
 * UNIT_RESOLVED, UNIT_DECLINED, BACKUP_REQUESTED (event body UnitAnswer: assignment, unit,
 * note) or, for VERIFIED, CLOSED with reason "verified on site by unit:<id>". The event's
 * actor is "unit:<unit_id>". A repeated answer yields the same event id (the ledger drops the
 * repeat). LK_OK with *out, or LK_EINVAL with the reason in err. */
int dispatch_answer_decision(const struct dispatch_state *s, const char *unit_id,
                             const char *assignment_id, int kind, const char *note, int64_t now_us,
                             struct dispatch_decision *out, char *err, size_t errlen);

/* ---- the responder protocol (dispatch_protocol.c) ---- */

/* What the shell knows of the connection a UnitMessage came on. */
struct dispatch_conn_view {
  int known_unit;       /* the unit_id is a unit of the district */
  int registered;       /* that unit has a session (a Hello was welcomed) */
  int same_connection;  /* ... and this message came on that session's connection */
  const char *key_unit; /* with CURVE: the unit the client's key belongs to; NULL without */
  int catching_up;      /* dispatch is still folding the ledger: its state is incomplete */
};

enum dispatch_act {
  DISPATCH_ACT_REFUSE = 0, /* why says why: an AnswerReply REJECTED for an answer, else a
                              Welcome with the error */
  DISPATCH_ACT_HELLO,      /* welcome the unit on this connection (its session from now on, taking
                              it over from any other) and send its open calls */
  DISPATCH_ACT_HEARTBEAT,  /* it is present */
  DISPATCH_ACT_ANSWER,     /* *d is the answer's event, to append and answer after commit */
  DISPATCH_ACT_LIST,       /* send its assignments on this connection */
  DISPATCH_ACT_REJECT,     /* not a message of any unit: an AnswerReply REJECTED, why says why */
  DISPATCH_ACT_GREET,      /* a one-shot console's Hello: a Welcome on this connection, and
                              nothing else (no session, no assignments) */
  DISPATCH_ACT_BUSY,       /* an answer dispatch cannot decide yet: an AnswerReply BUSY, why says
                              why; the unit sends the same answer again */
};

/* Decides what a unit's message asks for; every rule of the responder protocol is here.
 * A one-shot message (UnitMessage.one_shot: a second console of the unit) needs no session and
 * leaves the unit's session as it is: its LIST and ANSWER are answered on its own connection, and
 * the shell does not count it as the unit being present. */
enum dispatch_act dispatch_protocol_decide(const struct dispatch_state *s,
                                           const Linkage__V1__UnitMessage *um,
                                           const struct dispatch_conn_view *c, int64_t now_us,
                                           struct dispatch_decision *d, char *why, size_t whylen);

/* ---- decision -> event (dispatch_event.c) ---- */

/* Fills ev from d; ev borrows from d and st, nothing is allocated. */
struct dispatch_event_storage {
  Linkage__V1__Dispatched dispatched;
  Linkage__V1__UnitAnswer answer;
  Linkage__V1__NoUnitAvailable no_unit;
  Linkage__V1__Resolved resolved;
  Linkage__V1__Closed closed;
  char actor[LK_ID_MAX + 16];
};
void dispatch_event_build(const struct dispatch_decision *d, const char *actor, int64_t now_us,
                          Linkage__V1__Event *ev, struct dispatch_event_storage *st);

#endif
