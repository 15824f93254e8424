#ifndef LINKAGE_ROSTER_H
#define LINKAGE_ROSTER_H

/* Who a response plan calls (district data, include/linkage/plan.h). A plan role is a unit
 * type ("fire_brigade") or "compound_roster", which the compound's governance mode expands:
 * established community -> community_duty + grid_worker; special committee ->
 * special_committee + property_company; traditional -> property_company + owners_committee +
 * community_duty. Each role is called from a tier up, with per-unit deadlines. Dispatch calls
 * units by it; `linkagectl plan check` finds the hours when nobody could be called. */

#include <stddef.h>

#include "linkage/district.h"

#define LK_ROLE_MAX 32  /* role name length, including the NUL */
#define LK_MAX_NEEDS 16 /* roles one incident can call at its tier */

/* One role to fill for an incident at its current tier (after roster expansion). */
struct lk_need {
  char role[LK_ROLE_MAX]; /* a unit type */
  int lead;
  int acknowledge_min, arrive_min, resolve_min;
};

/* Unit types of a governance mode's compound roster; NULL-terminated, static. */
const char *const *lk_roster(enum lk_governance_mode mode);

/* The roles an incident of this plan needs at this tier in this compound, the lead marked (the
 * first role of the plan's lead list that is needed; a roster leads through its first type),
 * each unit type once. Returns the count written to out (<= max). */
size_t lk_roster_needs(const struct lk_plan *plan, const struct lk_compound *c,
                       Linkage__V1__Tier tier, struct lk_need *out, size_t max);

/* The roles the plan needs at this tier for this compound that no unit of the district could
 * take at minute_of_day (local time): none of the type covers the compound and is on duty then.
 * out gets the unit types (static strings); returns how many. */
size_t lk_plan_gaps(const struct lk_district *d, const struct lk_plan *plan,
                    const struct lk_compound *c, Linkage__V1__Tier tier, int minute_of_day,
                    const char **out, size_t max);

/* How many (plan, compound, tier, role) of the district have such a gap at some time of day;
 * the first found described in first ("plan=... compound=... tier=... role=... at HH:MM"). */
size_t lk_district_gaps(const struct lk_district *d, char *first, size_t len);

#endif
