#ifndef LINKAGE_PLAN_H
#define LINKAGE_PLAN_H

#include <stddef.h>

#include "linkage/event.h"

/* Category response plans (差异化应急处置方案), part of the district data.
 * A plan applies to a category, or to one kind within it (a kind plan wins
 * over its category's plan). It fixes the lowest tier an incident of its kind
 * may sit at (a gas leak never below community) and, for every severity and
 * every tier the incident can reach, the minutes allowed to acknowledge and to
 * resolve there. */

#define LK_TIER_COUNT 5     /* index by Linkage__V1__Tier; 0 unused */
#define LK_SEVERITY_COUNT 5 /* index by Linkage__V1__Severity; 0 unused */

struct lk_plan_deadline {
  int set;
  int acknowledge_min;
  int resolve_min;
};

/* One role a plan calls on: a unit type ("fire_brigade") or "compound_roster",
 * which the compound's governance mode expands (services/dispatch). Called
 * once the incident sits at from_tier or higher, with per-unit deadlines in
 * plan minutes: 0 < acknowledge <= arrive <= resolve. */
struct lk_plan_role {
  char *role;
  Linkage__V1__Tier from_tier;
  int acknowledge_min, arrive_min, resolve_min;
  int line;
};

struct lk_plan {
  char *id;
  Linkage__V1__Category category;
  char *kind; /* NULL: the category's plan */
  Linkage__V1__Tier min_tier;
  struct lk_plan_deadline deadlines[LK_SEVERITY_COUNT][LK_TIER_COUNT];
  struct lk_plan_role *roles; /* at least one; each role once */
  size_t role_count;
  char **lead; /* roles of this plan, in order: the first one needed leads */
  size_t lead_count;
  /* A hazard that covers an area (a flood, a water or power outage): an open incident of this
   * plan at street or district tier holds back the escalation of incidents of the same kind
   * anywhere in the area its organisation answers for. Without it, only the same building or
   * a place within the merge distance is the same event. */
  int area_hazard;
  int line;
};

/* The tier a severity starts at before a plan raises it: I -> district,
 * II -> street, III -> community, IV -> compound. */
Linkage__V1__Tier lk_severity_tier(Linkage__V1__Severity s);

/* The plan for a category and kind: the kind's own plan if there is one,
 * else the category's; NULL when the district has none (a load-time error for
 * the demo district: every category has one). Borrowed. */
const struct lk_plan *lk_plan_find(const struct lk_plan *plans, size_t n,
                                   Linkage__V1__Category category, const char *kind);

/* Checks that every (severity, tier) an incident under this plan can reach
 * has deadlines, and that they are positive with acknowledge <= resolve.
 * Returns LK_OK or LK_EINVAL with why. */
int lk_plan_check(const struct lk_plan *p, char *err, size_t errlen);

#endif
