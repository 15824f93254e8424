/* Rosters, the roles a plan needs at a tier, and the gaps in a district's duty hours: plain
 * functions of the district data (include/linkage/roster.h). */
#include "linkage/roster.h"

#include <stdio.h>
#include <string.h>

static const char *const roster_established[] = {"community_duty", "grid_worker", NULL};
static const char *const roster_committee[] = {"special_committee", "property_company", NULL};
static const char *const roster_traditional[] = {"property_company", "owners_committee",
                                                 "community_duty", NULL};
static const char *const roster_none[] = {NULL};

const char *const *lk_roster(enum lk_governance_mode mode) {
  switch (mode) {
  case LK_MODE_ESTABLISHED_COMMUNITY: return roster_established;
  case LK_MODE_SPECIAL_COMMITTEE: return roster_committee;
  case LK_MODE_TRADITIONAL: return roster_traditional;
  case LK_MODE_UNSPECIFIED: break;
  }
  return roster_none;
}

static int is_roster(const char *role) {
  return strcmp(role, "compound_roster") == 0;
}

static const struct lk_plan_role *plan_role(const struct lk_plan *plan, const char *name) {
  for (size_t i = 0; i < plan->role_count; i++)
    if (strcmp(plan->roles[i].role, name) == 0) return &plan->roles[i];
  return NULL;
}

size_t lk_roster_needs(const struct lk_plan *plan, const struct lk_compound *c,
                       Linkage__V1__Tier tier, struct lk_need *out, size_t max) {
  if (!plan || !c) return 0;
  const char *const *roster = lk_roster(c->mode);
  size_t n = 0;
  for (size_t i = 0; i < plan->role_count; i++) {
    const struct lk_plan_role *r = &plan->roles[i];
    if (r->from_tier > tier) continue;
    const char *single[] = {r->role, NULL};
    const char *const *types = is_roster(r->role) ? roster : single;
    for (; *types; types++) {
      size_t k;
      for (k = 0; k < n; k++)
        if (strcmp(out[k].role, *types) == 0) break;
      if (k < n || n == max) continue; /* each unit type once; the first role listed wins */
      memset(&out[n], 0, sizeof out[n]);
      snprintf(out[n].role, sizeof out[n].role, "%s", *types);
      out[n].acknowledge_min = r->acknowledge_min;
      out[n].arrive_min = r->arrive_min;
      out[n].resolve_min = r->resolve_min;
      n++;
    }
  }
  /* The lead: the first role of the lead list needed at this tier (a roster leads through its
   * first type); without one, the first need. */
  const char *lead = NULL;
  for (size_t i = 0; i < plan->lead_count && !lead; i++) {
    const struct lk_plan_role *r = plan_role(plan, plan->lead[i]);
    if (!r || r->from_tier > tier) continue;
    lead = is_roster(r->role) ? roster[0] : r->role;
  }
  size_t k = 0;
  for (; lead && k < n; k++)
    if (strcmp(out[k].role, lead) == 0) break;
  if (n) out[lead && k < n ? k : 0].lead = 1;
  return n;
}

size_t lk_plan_gaps(const struct lk_district *d, const struct lk_plan *plan,
                    const struct lk_compound *c, Linkage__V1__Tier tier, int minute_of_day,
                    const char **out, size_t max) {
  struct lk_need needs[LK_MAX_NEEDS];
  size_t nn = lk_roster_needs(plan, c, tier, needs, LK_MAX_NEEDS), n = 0;
  for (size_t i = 0; i < nn && n < max; i++) {
    size_t u;
    for (u = 0; u < d->unit_count; u++)
      if (strcmp(d->units[u].type, needs[i].role) == 0 &&
          lk_unit_on_duty(&d->units[u], minute_of_day) &&
          lk_unit_coverage(d, &d->units[u], c, NULL) > 0)
        break;
    if (u == d->unit_count) {
      /* The type's name from the district's own table: out must outlive needs[]. */
      int t = lk_unit_type_index(needs[i].role);
      if (t >= 0) out[n++] = lk_unit_types[t];
    }
  }
  return n;
}

size_t lk_district_gaps(const struct lk_district *d, char *first, size_t len) {
  /* Who is on duty changes only where a duty span starts or ends: look at those minutes. */
  int minutes[2 * 256 + 1];
  size_t nm = 0;
  minutes[nm++] = 0;
  for (size_t u = 0; u < d->unit_count && nm + 2 <= sizeof minutes / sizeof minutes[0]; u++) {
    minutes[nm++] = d->units[u].duty_from_min % 1440;
    minutes[nm++] = d->units[u].duty_to_min % 1440;
  }
  size_t count = 0;
  if (first && len) first[0] = '\0';
  for (size_t p = 0; p < d->plan_count; p++)
    for (size_t k = 0; k < d->compound_count; k++)
      for (int t = d->plans[p].min_tier; t <= LINKAGE__V1__TIER__DISTRICT; t++) {
        const char *seen[LK_MAX_NEEDS];
        size_t ns = 0;
        for (size_t i = 0; i < nm; i++) {
          const char *missing[LK_MAX_NEEDS];
          size_t n = lk_plan_gaps(d, &d->plans[p], &d->compounds[k], (Linkage__V1__Tier)t,
                                  minutes[i], missing, LK_MAX_NEEDS);
          for (size_t j = 0; j < n; j++) {
            size_t q;
            for (q = 0; q < ns; q++)
              if (seen[q] == missing[j]) break;
            if (q < ns || ns == LK_MAX_NEEDS) continue;
            seen[ns++] = missing[j];
            if (count++ == 0 && first)
              snprintf(first, len, "plan=%s compound=%s tier=%s role=%s at %02d:%02d",
                       d->plans[p].id, d->compounds[k].id, lk_tier_name((Linkage__V1__Tier)t),
                       missing[j], minutes[i] / 60, minutes[i] % 60);
          }
        }
      }
  return count;
}
