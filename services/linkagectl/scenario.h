#ifndef LINKAGECTL_SCENARIO_H
#define LINKAGECTL_SCENARIO_H

/* A scenario (a YAML file under tests/scenarios/): a timeline of what happens in plan minutes
 * (reports, unit answers or silence, units that go absent, coordinators' actions, planned work) and
 * what every reader must show at each step. This module is the pure part: loading a file into plain
 * structs with "file:line: why" for every mistake, and judging one expectation against what was
 * observed. `linkagectl drill` (ctl_drill.c) plays it against a running stack. The format is
 * documented at the top of tests/scenarios/README.md. */

#include <stddef.h>
#include <stdint.h>

#include "linkage/event.h"
#include "linkage/yaml.h"

enum scenario_step_kind {
  SC_REPORT = 1,  /* a device reports */
  SC_ANSWER,      /* a unit answers its latest call for an incident */
  SC_COORDINATOR, /* a coordinator acts: acknowledge, escalate, de-escalate, merge, close, note,
                     call, declare (planned work), lift */
  SC_ABSENT,      /* these units' consoles go silent (no more heartbeats) */
  SC_EXPECT,      /* what the readers show */
};

/* One expectation: KEY of incident NAME (or of the whole dashboard when incident is NULL: the
 * key "first"). A scalar is one value, a list several in order, a map "k=v" pairs. */
struct scenario_expect {
  const char *incident;
  const char *key;
  const char *values[32];
  size_t n;
  int owned; /* values are malloc'd "k=v" pairs (a map), freed with the scenario */
  int line;
};

struct scenario_step {
  enum scenario_step_kind kind;
  double at_min; /* plan minutes after the start */
  int line;
  /* SC_REPORT */
  const char *name, *device, *compound, *building, *kind_word, *description;
  Linkage__V1__Category category;
  Linkage__V1__Severity severity;
  double lat, lon;
  /* SC_ANSWER: unit, incident, answer; SC_COORDINATOR: action, incident and its arguments */
  const char *unit, *incident, *answer;
  const char *action, *into, *reason, *role, *text, *window;
  const char *refused;     /* the answer or action must be refused, with this in the reason */
  double from_min, to_min; /* declare: the window, plan minutes after the start */
  /* SC_ABSENT */
  const char *units[32];
  size_t unit_count;
  /* SC_EXPECT */
  struct scenario_expect *expects;
  size_t expect_count;
};

struct scenario {
  struct lk_ynode *root; /* owns every string below */
  const char *path;      /* borrowed from the caller */
  const char *title, *about;
  int clock_min;     /* local time at minute 0, minutes after midnight; -1 when not fixed */
  double time_scale; /* the scale the scenario is written for (a hint to test runners); 0 */
  int present_all;   /* every unit of the district has a console */
  const char *present[64];
  size_t present_count;
  struct scenario_step *steps;
  size_t step_count;
};

/* Loads and checks the file. NULL with "path:line: why" in err. */
struct scenario *scenario_load(const char *path, char *err, size_t errlen);
void scenario_destroy(struct scenario **s);

/* The report step named `name`, or NULL. */
const struct scenario_step *scenario_report(const struct scenario *s, const char *name);

/* What the readers showed of one incident at one moment (ctl_drill.c fills it). Text values
 * are "" when the reader had nothing; lists are comma-joined in the order the reader gave. */
struct scenario_seen {
  int in_view, in_api;
  char view_state[24], view_tier[16], view_lead[72], view_missing[256];
  int view_exercise;
  char api_state[24], api_tier[16], api_lead[72], api_missing[256], api_org[72], api_severity[8],
      api_held_back_by[72], api_merged_into[72], api_deadline_kind[16];
  double api_deadline_min; /* plan minutes after the start; meaningful with a deadline kind */
  int api_overdue, api_exercise, api_held_back;
  char open311_notes[512]; /* Open311 status_notes (fetched only when an expectation needs it) */
  char cap_msgtype[16], cap_status[16];
  char calls[1024];       /* "role unit@tier;" for each call, in ledger order */
  char escalations[2048]; /* each escalation's reason, followed by '\n', in ledger order */
};

/* Resolves an incident name of the scenario to its id (for held_back_by, merged_into, first). */
typedef const char *(*scenario_id_fn)(void *ctx, const char *name);

/* Judges one expectation. 1 when it holds; 0 with "expected ..., got ..." in why. first_name:
 * the name of the scenario's incident the dashboard lists first (for the key "first"). */
int scenario_check(const struct scenario_expect *e, const struct scenario_seen *seen,
                   const char *first_name, scenario_id_fn id_of, void *ctx, char *why,
                   size_t whylen);

/* The keys an expectation may use, for messages and the README. */
extern const char *const scenario_expect_keys[];

#endif
