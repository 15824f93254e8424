#ifndef LINKAGE_GATEWAY_H
#define LINKAGE_GATEWAY_H

/* The gateway's functional core: the live projection folded from the
 * committed stream (gw_view), and the plain renderers over it (JSON for the
 * dashboard, CAP 1.2, Atom, Open311, feed topics). No sockets, no clocks:
 * time is passed in. The shell (gateway_shell.c, gateway_http.c) owns the
 * sockets. */

#include <stddef.h>
#include <stdint.h>

#include "linkage/v1/event.pb-c.h"
#include "linkage/district.h"
#include "linkage/map.h"

/* ---- a growing output buffer (gw_buf.c) ---- */

/* Appends never fail visibly: on allocation failure `failed` is set and
 * later appends do nothing, so a renderer checks once at the end. */
struct gw_buf {
  char *data; /* owned; NUL-terminated while len < cap */
  size_t len, cap;
  int failed;
};

void gw_buf_init(struct gw_buf *b);
void gw_buf_free(struct gw_buf *b);
void gw_buf_reset(struct gw_buf *b);
void gw_buf_add(struct gw_buf *b, const char *s, size_t n);
void gw_buf_puts(struct gw_buf *b, const char *s);
void gw_buf_printf(struct gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string literal, quotes included (NULL: null). */
void gw_buf_json_str(struct gw_buf *b, const char *s);
/* s escaped for XML text and attribute values (& < > " '), control bytes dropped. */
void gw_buf_xml(struct gw_buf *b, const char *s);
/* Takes the data out of the buffer (the caller frees it); the buffer is empty after. */
char *gw_buf_take(struct gw_buf *b, size_t *len);

/* us since the epoch as "2026-11-27T16:44:23+00:00" (the form CAP 1.2 requires; also valid
 * RFC 3339 for Atom and Open311). out must hold 32 bytes. */
void gw_time_format(int64_t us, char *out);

/* A request's arguments (query string or form fields) as the shell hands them to a core
 * function: the value of `key`, or NULL when absent. */
typedef const char *(*gw_arg_fn)(void *ctx, const char *key);

/* ---- the projection (gw_view.c) ---- */

/* An incident's state: the life cycle's (linkage/lifecycle.h, LK_STATE_*), the same words as
 * the `incidents` view. */
#include "linkage/lifecycle.h"

/* One line of an incident's timeline. */
struct gw_step {
  uint64_t position;
  int64_t at_us;
  Linkage__V1__EventType type;
  char actor[48];      /* "device:..", "svc:router", "unit:..", "coordinator:.." (truncated) */
  char detail[160];    /* a short English summary: "community -> street: ..." */
  char detail_zh[160]; /* the same in Chinese, with the units' Chinese names */
  uint8_t cap;         /* 1: this step made a new CAP message of the incident (see gw_cap.c) */
};

#define GW_MAX_STEPS 256 /* per incident; later events still change the state, not the list */

struct gw_incident {
  char id[40];
  char device_id[65];
  uint64_t sequence;
  int exercise; /* a drill (Report.exercise) */
  Linkage__V1__Category category;
  char kind[65];
  Linkage__V1__Severity severity;          /* current (after severity_changed) */
  Linkage__V1__Severity reported_severity; /* as reported */
  Linkage__V1__Tier tier;                  /* TIER_UNSPECIFIED until routed */
  char organisation_id[65];                /* who answers at the current tier */
  char compound_id[65];
  const char *community_id; /* borrowed from the district; NULL if the compound is unknown */
  const char *street_id;    /* borrowed from the district; NULL if unknown */
  char building[65], unit[65];
  int32_t floor;
  double lat, lon;        /* 0, 0 when the report had none */
  char *description;      /* owned; "" when none */
  int state;              /* enum lk_state */
  int64_t reported_at_us; /* the device's observed_at, or the intake's receive time */
  int64_t updated_at_us;  /* at_us of the last event */
  int64_t acknowledge_by_us, resolve_by_us; /* deadlines at the current tier; 0 none */
  int acknowledged;                         /* acknowledged at the current tier */
  int overdue;                              /* an overdue alarm was raised and not yet cleared */
  int suppressed;                           /* escalation held back (planned work / inhibition) */
  char merged_into[40];                     /* set when merged into another incident */
  char lead_unit[65];    /* the lead whose assignment is live (not declined), or "" */
  char held_back_by[40]; /* the incident that holds back its escalation (inhibition) */
  uint32_t units_assigned;
  struct gw_assignment *assignments; /* owned, in the order of their `dispatched` */
  uint16_t assignment_count, assignment_cap;
  /* Roles (bits by index into lk_unit_types) dispatch found nobody for at the current tier;
   * such a role is missing while it has no live assignment. */
  uint32_t no_unit_roles;
  uint64_t first_position, last_position;
  struct gw_step *steps; /* owned, step_count entries (at most GW_MAX_STEPS) */
  uint32_t step_count, step_cap;
  uint32_t cap_count; /* steps with cap = 1 */
};

/* One unit's part as the readers show it. */
enum gw_assignment_state {
  GW_A_DISPATCHED = 1,
  GW_A_ACKNOWLEDGED,
  GW_A_ON_SCENE,
  GW_A_RESOLVED,
  GW_A_DECLINED,
};
struct gw_assignment {
  char unit[48];
  char role[32];
  uint16_t n; /* the assignment id's last part: "<incident>/<role>/<n>" */
  uint8_t lead, state, tier;
};
/* "dispatched", "acknowledged", "on_scene", "resolved", "declined". */
const char *gw_assignment_state_name(int state);

/* The roles of an incident that nobody fills (see gw_incident.no_unit_roles), as bits by index
 * into lk_unit_types. */
uint32_t gw_incident_missing(const struct gw_incident *inc);
/* Appends what every reader says of them, after sep: "no fire_brigade engaged", one clause
 * per role joined by "; "; nothing when every role is engaged. */
void gw_incident_missing_text(struct gw_buf *b, const struct gw_incident *inc, const char *sep);

/* The urgency order of the dashboard's list: overdue first (an alarm raised, or the deadline
 * running now passed at now_us), then severity (I first), then tier (highest first), then the
 * time left (least first; none last), then the report time. < 0 when a comes first. */
int gw_incident_urgency_cmp(const struct gw_incident *a, const struct gw_incident *b,
                            int64_t now_us);

/* A planned-work window (linkagectl plan, POST /api/planned-work). */
struct gw_window {
  char id[65];
  char compound_id[65], building[65], kind[65];
  int64_t from_us, to_us;
  char reason[161];
  int lifted;
  uint64_t position; /* of the event that declared or lifted it */
};

struct gw_view {
  const struct lk_district *district; /* borrowed */
  struct gw_window *windows;          /* owned, window_count entries, in declaration order */
  uint32_t window_count, window_cap;
  struct gw_incident *incidents; /* slot 0 unused, so 0 means "none" */
  uint32_t count, cap;
  struct lk_map by_id; /* incident id -> slot */
  uint64_t position;   /* last position folded */
  uint32_t open;       /* incidents not closed */
};

int gw_view_init(struct gw_view *v, const struct lk_district *d);
void gw_view_free(struct gw_view *v);
/* Folds one committed event. Returns the slot of the incident it created or changed, 0 when
 * it touched none (a key revocation, planned work, an unknown incident). */
uint32_t gw_view_apply(struct gw_view *v, uint64_t position, const Linkage__V1__Event *ev);
/* NULL when unknown. Borrowed; valid until the next gw_view_apply. */
const struct gw_incident *gw_view_get(const struct gw_view *v, const char *id);

/* The deadline that runs now: "acknowledge" (not yet acknowledged at this tier) or "resolve";
 * NULL when none runs (closed, resolved, not routed). *at_us gets its time. */
const char *gw_incident_deadline(const struct gw_incident *inc, int64_t *at_us);

/* ---- JSON for the dashboard and the API (gw_json.c) ---- */

/* One incident as the dashboard's row object (see README "Gateway HTTP API"). with_timeline
 * adds "timeline": [...]. */
void gw_json_incident(struct gw_buf *b, const struct gw_incident *inc, int with_timeline);
/* {"district": {...}, "streets": [...], "communities": [...], "compounds": [...]} */
void gw_json_district(struct gw_buf *b, const struct lk_district *d);
/* The dashboard's words for states, event types and roles, English and Chinese, as a script:
 * `window.LINKAGE_LIFECYCLE = {...}`, made from the life-cycle table (linkage/lifecycle.h). */
void gw_json_lifecycle_js(struct gw_buf *b);
/* {"windows": [...]}: every planned-work window, lifted ones included (with "lifted": true). */
void gw_json_windows(struct gw_buf *b, const struct gw_view *v);

/* ---- CAP 1.2 and Atom (gw_cap.c) ---- */

struct gw_cap_opts {
  const char *sender;   /* e.g. "linkage@wenjiang.example" */
  const char *base_url; /* e.g. "http://127.0.0.1:8080", for <web> and Atom links */
};
/* The incident's latest state as one CAP 1.2 alert (msgType Alert for the first message,
 * Update after, Cancel once closed or merged; references name every earlier message). */
void gw_cap_alert(struct gw_buf *b, const struct gw_view *v, const struct gw_incident *inc,
                  const struct gw_cap_opts *o);
/* An Atom feed of the `limit` most recently updated incidents, each entry linking its CAP. */
void gw_cap_atom(struct gw_buf *b, const struct gw_view *v, const struct gw_cap_opts *o,
                 int64_t now_us, unsigned limit);

/* ---- HTTP routes (gw_route.c) ---- */

enum gw_route_kind {
  GW_R_NONE = 0,
  GW_R_STATIC,         /* a file of the dashboard */
  GW_R_HEALTH,         /* GET /healthz */
  GW_R_ME,             /* GET /api/me */
  GW_R_DISTRICT,       /* GET /api/district */
  GW_R_INCIDENTS,      /* GET /api/incidents */
  GW_R_INCIDENT,       /* GET /api/incidents/{id} */
  GW_R_ACTION,         /* POST /api/incidents/{id}/{action} */
  GW_R_STREAM,         /* GET /api/stream (Server-Sent Events) */
  GW_R_WINDOWS,        /* GET /api/planned-work */
  GW_R_WINDOW_DECLARE, /* POST /api/planned-work */
  GW_R_WINDOW_LIFT,    /* POST /api/planned-work/{id}/lift */
  GW_R_CAP,            /* GET /cap/{id}.xml */
  GW_R_CAP_ATOM,       /* GET /cap/index.atom */
  GW_R_O311_SERVICES,  /* GET /open311/v2/services.json|xml */
  GW_R_O311_REQUESTS,  /* GET /open311/v2/requests.json|xml */
  GW_R_O311_REQUEST,   /* GET /open311/v2/requests/{id}.json|xml */
  GW_R_O311_POST,      /* POST /open311/v2/requests.json|xml */
};

/* What a route needs of the caller's token. */
enum gw_need { GW_NEED_NONE = 0, GW_NEED_READ, GW_NEED_REPORT, GW_NEED_ACT };

struct gw_route {
  enum gw_route_kind kind;
  enum gw_need need;
  int xml;          /* Open311: the .xml form */
  char id[72];      /* incident or window id, checked with lk_id_valid */
  char action[16];  /* GW_R_ACTION: "acknowledge", "escalate", "de-escalate", "merge", ... */
  const char *file; /* GW_R_STATIC: the file name under www_dir ("index.html") */
  const char *type; /* GW_R_STATIC: its Content-Type */
};

/* Decides what a request asks for from its method and path (no query string). Returns 200, or
 * the HTTP status to refuse with: 404 (no such path, or an id that cannot be one), 405 (the
 * path exists for another method). */
int gw_route_parse(const char *method, const char *path, struct gw_route *r);

/* ---- coordinator actions (gw_command.c) ---- */

#include "linkage/v1/command.pb-c.h"

/* A Command built from a request; its strings borrow the request's arguments, so it must be
 * packed before the request goes away. */
struct gw_command {
  Linkage__V1__Command cmd;
  union {
    Linkage__V1__AcknowledgeCommand acknowledge;
    Linkage__V1__EscalateCommand escalate;
    Linkage__V1__DeEscalateCommand de_escalate;
    Linkage__V1__MergeCommand merge;
    Linkage__V1__CloseCommand close;
    Linkage__V1__NoteCommand note;
    Linkage__V1__PlannedWork planned;
    Linkage__V1__LiftPlannedWorkCommand lift;
    Linkage__V1__CallCommand call;
  } body;
  char command_id[72];
};

/* Builds the router Command for an action, planned-work declare or lift route from the form
 * fields (README "Gateway HTTP API"). actor is the token's name; generated_id is used when the
 * request names no command_id. The router judges the command itself (unknown incident, closed,
 * tier floor ...); this only refuses what cannot be a command. Returns LK_OK or LK_EINVAL with
 * err. */
int gw_command_build(const struct gw_route *r, gw_arg_fn arg, void *ctx, const char *actor,
                     const char *generated_id, struct gw_command *out, char *err, size_t errlen);

/* The HTTP status for a router's answer: 200 OK, 404 unknown incident or window, 409 a state
 * that refuses the action (closed, merged, already ...), 400 other refusals, 503 BUSY. */
int gw_command_http_status(const Linkage__V1__CommandReply *reply);

/* ---- feed topics (gw_feed_topic.c) ---- */

/* The topic of an event on the public feed (README "The public feed"), written to out
 * (NUL-terminated, at most outlen bytes). inc may be NULL (events without an incident). */
void gw_feed_topic(const struct gw_incident *inc, const Linkage__V1__Event *ev, char *out,
                   size_t outlen);

#endif
