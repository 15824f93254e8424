#include "linkage/plan.h"

#include <stdio.h>
#include <string.h>

#include "linkage/error.h"

Linkage__V1__Tier lk_severity_tier(Linkage__V1__Severity s) {
  switch (s) {
  case LINKAGE__V1__SEVERITY__SEVERITY_I: return LINKAGE__V1__TIER__DISTRICT;
  case LINKAGE__V1__SEVERITY__SEVERITY_II: return LINKAGE__V1__TIER__STREET;
  case LINKAGE__V1__SEVERITY__SEVERITY_III: return LINKAGE__V1__TIER__COMMUNITY;
  case LINKAGE__V1__SEVERITY__SEVERITY_IV: return LINKAGE__V1__TIER__COMPOUND;
  default: return LINKAGE__V1__TIER__TIER_UNSPECIFIED;
  }
}

const struct lk_plan *lk_plan_find(const struct lk_plan *plans, size_t n,
                                   Linkage__V1__Category category, const char *kind) {
  const struct lk_plan *general = NULL;
  for (size_t i = 0; i < n; i++) {
    if (plans[i].category != category) continue;
    if (!plans[i].kind) {
      general = &plans[i];
    } else if (kind && strcmp(plans[i].kind, kind) == 0) {
      return &plans[i];
    }
  }
  return general;
}

int lk_plan_check(const struct lk_plan *p, char *err, size_t errlen) {
  if (p->min_tier < LINKAGE__V1__TIER__COMPOUND || p->min_tier > LINKAGE__V1__TIER__DISTRICT) {
    snprintf(err, errlen, "min_tier must be compound, community, street or district");
    return LK_EINVAL;
  }
  for (int s = 1; s < LK_SEVERITY_COUNT; s++) {
    int start = (int)lk_severity_tier((Linkage__V1__Severity)s);
    if (start < (int)p->min_tier) start = (int)p->min_tier;
    for (int t = start; t < LK_TIER_COUNT; t++) {
      const struct lk_plan_deadline *d = &p->deadlines[s][t];
      if (!d->set) {
        snprintf(err, errlen, "no deadlines for severity %s at tier %s",
                 lk_severity_name((Linkage__V1__Severity)s), lk_tier_name((Linkage__V1__Tier)t));
        return LK_EINVAL;
      }
      if (d->acknowledge_min <= 0 || d->resolve_min < d->acknowledge_min) {
        snprintf(err, errlen,
                 "deadlines for severity %s at tier %s must satisfy 0 < acknowledge <= resolve",
                 lk_severity_name((Linkage__V1__Severity)s), lk_tier_name((Linkage__V1__Tier)t));
        return LK_EINVAL;
      }
    }
  }
  return LK_OK;
}
