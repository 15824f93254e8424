/* The demo district's response plans, row by row, through the router's
 * routing decision; and plan data that must be refused with file:line. */
#include <stdio.h>
#include <string.h>

#include "linkage/error.h"
#include "lk_test.h"
#include "router/router.h"

#define T0 1800000000000000LL
#define MIN 60000000LL

static struct lk_district *load_demo(void) {
  char err[512];
  struct lk_district *d = lk_district_load("deploy/district/wenjiang.yaml", err, sizeof err);
  if (!d) fprintf(stderr, "demo district: %s\n", err);
  return d;
}

LK_TEST(every_demo_plan_row_routes_as_the_table_says) {
  struct lk_district *d = load_demo();
  if (!LK_CHECK(d != NULL)) return;
  struct router_policy pol = {.time_scale = 1, .retry_us = 1000000};
  int rows = 0, seq = 0;
  for (size_t p = 0; p < d->plan_count; p++) {
    const struct lk_plan *plan = &d->plans[p];
    for (int sev = 1; sev <= 4; sev++) {
      for (size_t c = 0; c < d->compound_count; c++) {
        struct router_state s;
        struct router_decision dec;
        if (router_state_init(&s, d, d->plans, d->plan_count, &pol) != LK_OK) break;
        Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
        Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
        Linkage__V1__Reported rep = LINKAGE__V1__REPORTED__INIT;
        Linkage__V1__Event ev = LINKAGE__V1__EVENT__INIT;
        char id[32];
        snprintf(id, sizeof id, "inc-%d", ++seq);
        loc.compound_id = d->compounds[c].id;
        r.device_id = id;
        r.category = plan->category;
        r.kind = plan->kind ? plan->kind : "other";
        r.severity = (Linkage__V1__Severity)sev;
        r.location = &loc;
        rep.report = &r;
        ev.incident_id = id;
        ev.event_id = id;
        ev.type = LINKAGE__V1__EVENT_TYPE__REPORTED;
        ev.at_us = T0;
        ev.body_case = LINKAGE__V1__EVENT__BODY_REPORTED;
        ev.reported = &rep;
        uint32_t slot = router_state_apply(&s, 1, &ev);
        LK_CHECK(slot != 0);
        if (slot && router_decide_new(&s, slot, T0, &dec)) {
          Linkage__V1__Tier want = lk_severity_tier((Linkage__V1__Severity)sev);
          if (plan->min_tier > want) want = plan->min_tier;
          LK_CHECK_EQ_INT(dec.to_tier, want);
          const struct lk_plan_deadline *row = &plan->deadlines[sev][want];
          LK_CHECK(row->set);
          LK_CHECK_EQ_INT(dec.ack_by_us, T0 + row->acknowledge_min * MIN);
          LK_CHECK_EQ_INT(dec.resolve_by_us, T0 + row->resolve_min * MIN);
          LK_CHECK_STR(dec.organisation,
                       router_organisation(d, &d->compounds[c], (Linkage__V1__Tier)want));
          rows++;
        } else {
          LK_CHECK(0);
        }
        router_state_close(&s);
      }
    }
  }
  /* 12 plans x 4 severities x 4 compounds */
  LK_CHECK_EQ_INT(rows, (int)d->plan_count * 4 * 4);
  lk_district_destroy(&d);
}

LK_TEST(demo_plans_cover_the_contract_examples) {
  struct lk_district *d = load_demo();
  if (!LK_CHECK(d != NULL)) return;
  const struct lk_plan *gas =
      lk_plan_find(d->plans, d->plan_count, LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "gas_leak");
  LK_CHECK(gas && gas->kind && strcmp(gas->kind, "gas_leak") == 0);
  LK_CHECK(gas && gas->min_tier == LINKAGE__V1__TIER__COMMUNITY);
  const struct lk_plan *other =
      lk_plan_find(d->plans, d->plan_count, LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER, "car_crash");
  LK_CHECK(other && other->kind == NULL);
  for (int c = 1; c <= 7; c++)
    LK_CHECK(lk_plan_find(d->plans, d->plan_count, (Linkage__V1__Category)c, NULL) != NULL);
  /* Organisations up the hierarchy for Zhouji Asia Bay. */
  const struct lk_compound *zab = lk_district_compound(d, "zhouji-asia-bay");
  LK_CHECK_STR(router_organisation(d, zab, LINKAGE__V1__TIER__COMPOUND), "zhouji-asia-bay");
  LK_CHECK_STR(router_organisation(d, zab, LINKAGE__V1__TIER__COMMUNITY), "jiangpu-road");
  LK_CHECK_STR(router_organisation(d, zab, LINKAGE__V1__TIER__STREET), "yongquan");
  LK_CHECK_STR(router_organisation(d, zab, LINKAGE__V1__TIER__DISTRICT), "wenjiang");
  lk_district_destroy(&d);
}

LK_TEST(bad_plans_are_refused_with_line_and_reason) {
  static const struct {
    const char *file;
    int line;
    const char *why;
  } bad[] = {
      {"bad_missing_row.yaml", 42, "no deadlines for severity IV at tier street"},
      {"bad_unreachable_row.yaml", 105, "severity IV never sits at compound tier"},
      {"bad_duplicate_plan.yaml", 115, "covers the same category and kind as plan \"gas-leak\""},
      {"bad_category_without_plan.yaml", 1, "category latent_hazard has no plan"},
      {"bad_ack_after_resolve.yaml", 42, "0 < acknowledge <= resolve"},
      {"bad_tier_name.yaml", 48, "tier must be compound, community, street or district"},
      {"bad_minutes.yaml", 47, "minutes must be an integer"},
      /* plan roles (dispatch) */
      {"bad_roles_missing.yaml", 51, "plan: missing required key \"roles\""},
      {"bad_roles_empty.yaml", 54, "\"roles\" must not be empty"},
      {"bad_role_name.yaml", 56, "role \"ambulance\" is neither a unit type"},
      {"bad_role_from.yaml", 56,
       "role \"grid_worker\" is called from compound tier, below the plan's min_tier community"},
      {"bad_role_from_name.yaml", 54, "role: \"from\" must be compound, community, street"},
      {"bad_role_order.yaml", 56, "acknowledge <= arrive <= resolve (5, 150, 120)"},
      {"bad_role_zero.yaml", 54, "role: \"acknowledge\" is 0, outside [1, 525600]"},
      {"bad_role_missing_key.yaml", 54, "role: missing required key \"arrive\""},
      {"bad_role_twice.yaml", 57, "role \"fire_brigade\" is listed twice in the plan"},
      {"bad_lead_unknown.yaml", 51, "lead \"police_station\" is not one of the plan's roles"},
      {"bad_lead_twice.yaml", 51, "lead \"fire_brigade\" is listed twice"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char path[256], err[512], want[300];
    snprintf(path, sizeof path, "tests/data/plans/%s", bad[i].file);
    struct lk_district *d = lk_district_load(path, err, sizeof err);
    LK_CHECK(d == NULL);
    snprintf(want, sizeof want, "%s:%d: ", path, bad[i].line);
    if (!LK_CHECK(strncmp(err, want, strlen(want)) == 0)) fprintf(stderr, "     got \"%s\"\n", err);
    LK_CHECK_CONTAINS(err, bad[i].why);
    lk_district_destroy(&d);
  }
}

int main(void) {
  return lk_test_run_all();
}
