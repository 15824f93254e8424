/* Dispatch's unit choice: the plans' roles per governance mode and tier, on
 * the demo district (deploy/district/wenjiang.yaml), and how one unit is
 * picked among several (tests/data/district/dispatch.yaml). */
#include <stdio.h>
#include <string.h>

#include "dispatch/dispatch.h"
#include "linkage/error.h"
#include "lk_test.h"

/* 2027-01-15 08:00 UTC = 16:00 in Chengdu: daytime, everybody on duty. */
#define T0 1800000000000000LL
#define MIN 60000000LL

static struct lk_district *load(const char *path) {
  char err[512];
  struct lk_district *d = lk_district_load(path, err, sizeof err);
  if (!d) fprintf(stderr, "%s: %s\n", path, err);
  return d;
}

static const struct lk_plan *plan_by_id(const struct lk_district *d, const char *id) {
  for (size_t i = 0; i < d->plan_count; i++)
    if (strcmp(d->plans[i].id, id) == 0) return &d->plans[i];
  return NULL;
}

/* "a,b,c" of the needs' roles, the lead marked with '*'. */
static void needs_text(const struct lk_need *n, size_t count, char *out, size_t len) {
  size_t at = 0;
  out[0] = '\0';
  for (size_t i = 0; i < count && at < len; i++)
    at += (size_t)snprintf(out + at, len - at, "%s%s%s", i ? "," : "", n[i].role,
                           n[i].lead ? "*" : "");
}

static void needs_at(const struct lk_district *d, const char *plan, const char *compound,
                     Linkage__V1__Tier tier, char *out, size_t len) {
  struct lk_need n[DISPATCH_MAX_ROLES];
  size_t count = lk_roster_needs(plan_by_id(d, plan), lk_district_compound(d, compound), tier, n,
                                 DISPATCH_MAX_ROLES);
  needs_text(n, count, out, len);
}

/* The picked unit per need, all absent and idle: "unit,unit,...". */
static void picks_at(const struct lk_district *d, const char *plan, const char *compound,
                     const char *building, Linkage__V1__Tier tier, int minute, char *out,
                     size_t len) {
  struct lk_need n[DISPATCH_MAX_ROLES];
  const struct lk_compound *c = lk_district_compound(d, compound);
  struct dispatch_unit_status st[64] = {{0}};
  size_t count = lk_roster_needs(plan_by_id(d, plan), c, tier, n, DISPATCH_MAX_ROLES);
  size_t at = 0;
  out[0] = '\0';
  for (size_t i = 0; i < count && at < len; i++) {
    const struct lk_unit *u = dispatch_pick(d, c, building, n[i].role, st, minute, NULL, 0);
    at += (size_t)snprintf(out + at, len - at, "%s%s", i ? "," : "", u ? u->id : "NONE");
  }
}

LK_TEST(rosters_follow_the_governance_mode) {
  const char *const *r = lk_roster(LK_MODE_ESTABLISHED_COMMUNITY);
  LK_CHECK_STR(r[0], "community_duty");
  LK_CHECK_STR(r[1], "grid_worker");
  LK_CHECK(r[2] == NULL);
  r = lk_roster(LK_MODE_SPECIAL_COMMITTEE);
  LK_CHECK_STR(r[0], "special_committee");
  LK_CHECK_STR(r[1], "property_company");
  LK_CHECK(r[2] == NULL);
  r = lk_roster(LK_MODE_TRADITIONAL);
  LK_CHECK_STR(r[0], "property_company");
  LK_CHECK_STR(r[1], "owners_committee");
  LK_CHECK_STR(r[2], "community_duty");
  LK_CHECK(r[3] == NULL);
  LK_CHECK(lk_roster(LK_MODE_UNSPECIFIED)[0] == NULL);
}

LK_TEST(demo_plans_have_roles_as_the_issue_says) {
  struct lk_district *d = load("deploy/district/wenjiang.yaml");
  if (!LK_CHECK(d != NULL)) return;
  LK_CHECK_EQ_INT(d->plan_count, 14);
  for (size_t i = 0; i < d->plan_count; i++) {
    LK_CHECK(d->plans[i].role_count > 0);
    LK_CHECK(d->plans[i].lead_count > 0);
  }
  const struct lk_plan *gas = plan_by_id(d, "gas-leak");
  if (LK_CHECK(gas && gas->role_count == 5)) {
    LK_CHECK_STR(gas->roles[0].role, "compound_roster");
    LK_CHECK_EQ_INT(gas->roles[0].from_tier, LINKAGE__V1__TIER__COMMUNITY);
    LK_CHECK_STR(gas->roles[1].role, "grid_worker");
    LK_CHECK_STR(gas->roles[2].role, "fire_brigade");
    LK_CHECK_EQ_INT(gas->roles[2].acknowledge_min, 3);
    LK_CHECK_EQ_INT(gas->roles[2].arrive_min, 10);
    LK_CHECK_EQ_INT(gas->roles[2].resolve_min, 120);
    LK_CHECK_STR(gas->roles[3].role, "street_emergency_office");
    LK_CHECK_EQ_INT(gas->roles[3].from_tier, LINKAGE__V1__TIER__STREET);
    LK_CHECK_STR(gas->roles[4].role, "district_emergency_bureau");
    LK_CHECK_EQ_INT(gas->roles[4].from_tier, LINKAGE__V1__TIER__DISTRICT);
    LK_CHECK_EQ_INT(gas->lead_count, 1);
    LK_CHECK_STR(gas->lead[0], "fire_brigade");
  }
  char got[512];
  needs_at(d, "public-health", "spring-square", LINKAGE__V1__TIER__COMMUNITY, got, sizeof got);
  LK_CHECK_STR(got, "health_centre*,community_duty,grid_worker");
  lk_district_destroy(&d);
}

/* The issue's examples: the same gas leak in the three governance modes. */
LK_TEST(gas_leak_calls_each_modes_roster_and_the_fire_brigade_leads) {
  struct lk_district *d = load("deploy/district/wenjiang.yaml");
  if (!LK_CHECK(d != NULL)) return;
  char got[512];
  int day = dispatch_minute_of_day(T0, 480);
  LK_CHECK_EQ_INT(day, 16 * 60);

  needs_at(d, "gas-leak", "zhouji-asia-bay", LINKAGE__V1__TIER__COMMUNITY, got, sizeof got);
  LK_CHECK_STR(got, "special_committee,property_company,grid_worker,fire_brigade*");
  picks_at(d, "gas-leak", "zhouji-asia-bay", "3", LINKAGE__V1__TIER__COMMUNITY, day, got,
           sizeof got);
  LK_CHECK_STR(got, "committee-zhouji-asia-bay,property-zhouji-asia-bay,"
                    "grid-workers-zhouji-asia-bay,fire-wenjiang");

  needs_at(d, "gas-leak", "zhouji-yinhai-bay", LINKAGE__V1__TIER__COMMUNITY, got, sizeof got);
  LK_CHECK_STR(got, "property_company,owners_committee,community_duty,grid_worker,fire_brigade*");
  picks_at(d, "gas-leak", "zhouji-yinhai-bay", "5", LINKAGE__V1__TIER__COMMUNITY, day, got,
           sizeof got);
  LK_CHECK_STR(got, "property-zhouji-yinhai-bay,owners-zhouji-yinhai-bay,duty-jiangpu-road,"
                    "grid-workers-zhouji-yinhai-bay,fire-wenjiang");

  /* Established community: its own staff; grid_worker comes from the roster and the plan alike,
   * and is called once. */
  needs_at(d, "gas-leak", "lijinggang", LINKAGE__V1__TIER__COMMUNITY, got, sizeof got);
  LK_CHECK_STR(got, "community_duty,grid_worker,fire_brigade*");
  picks_at(d, "gas-leak", "lijinggang", "12", LINKAGE__V1__TIER__COMMUNITY, day, got, sizeof got);
  LK_CHECK_STR(got, "duty-lijinggang,grid-workers-lijinggang,fire-wenjiang");

  /* Up the tiers the street's and then the district's emergency offices join; the brigade
   * still leads. */
  needs_at(d, "gas-leak", "zhouji-asia-bay", LINKAGE__V1__TIER__STREET, got, sizeof got);
  LK_CHECK_STR(got, "special_committee,property_company,grid_worker,fire_brigade*,"
                    "street_emergency_office");
  needs_at(d, "gas-leak", "zhouji-asia-bay", LINKAGE__V1__TIER__DISTRICT, got, sizeof got);
  LK_CHECK_STR(got, "special_committee,property_company,grid_worker,fire_brigade*,"
                    "street_emergency_office,district_emergency_bureau");
  /* Below the plan's floor nothing is called (the router never leaves it there). */
  needs_at(d, "gas-leak", "zhouji-asia-bay", LINKAGE__V1__TIER__COMPOUND, got, sizeof got);
  LK_CHECK_STR(got, "");
  lk_district_destroy(&d);
}

/* The lead moves up with the tier when the plan's lead list says so. */
LK_TEST(lead_is_the_first_needed_role_of_the_lead_list) {
  struct lk_district *d = load("deploy/district/wenjiang.yaml");
  if (!LK_CHECK(d != NULL)) return;
  char got[512];
  needs_at(d, "natural-disaster", "zhouji-yinhai-bay", LINKAGE__V1__TIER__COMPOUND, got,
           sizeof got);
  LK_CHECK_STR(got, "property_company*,owners_committee,community_duty,grid_worker");
  needs_at(d, "natural-disaster", "zhouji-asia-bay", LINKAGE__V1__TIER__COMPOUND, got, sizeof got);
  LK_CHECK_STR(got, "special_committee*,property_company,grid_worker");
  needs_at(d, "natural-disaster", "zhouji-asia-bay", LINKAGE__V1__TIER__STREET, got, sizeof got);
  LK_CHECK_STR(got, "special_committee,property_company,grid_worker,community_duty,fire_brigade,"
                    "street_emergency_office*");
  needs_at(d, "natural-disaster", "lijinggang", LINKAGE__V1__TIER__DISTRICT, got, sizeof got);
  LK_CHECK_STR(got, "community_duty,grid_worker,fire_brigade,street_emergency_office,"
                    "district_emergency_bureau*");
  needs_at(d, "accident", "lijinggang", LINKAGE__V1__TIER__COMMUNITY, got, sizeof got);
  LK_CHECK_STR(got, "community_duty*,grid_worker,police_station");
  lk_district_destroy(&d);
}

/* Every plan x every compound (so every governance mode) x every tier the plan reaches: the
 * needs are the plan's roles called at that tier, the roster expanded by the compound's mode,
 * each unit type once, exactly one lead (the lead list's first needed role); and at a daytime
 * minute every need finds a unit of its type that covers the compound. */
static const char *const *expected_roster(enum lk_governance_mode m) {
  static const char *const est[] = {"community_duty", "grid_worker", NULL};
  static const char *const com[] = {"special_committee", "property_company", NULL};
  static const char *const tra[] = {"property_company", "owners_committee", "community_duty", NULL};
  return m == LK_MODE_ESTABLISHED_COMMUNITY ? est : m == LK_MODE_SPECIAL_COMMITTEE ? com : tra;
}

LK_TEST(every_plan_in_every_mode_and_tier_finds_its_units) {
  struct lk_district *d = load("deploy/district/wenjiang.yaml");
  if (!LK_CHECK(d != NULL)) return;
  int day = dispatch_minute_of_day(T0, 480), combos = 0, gaps = 0;
  int modes_seen[4] = {0};
  struct dispatch_unit_status st[64] = {{0}};
  LK_CHECK(d->unit_count <= 64);
  for (size_t p = 0; p < d->plan_count; p++) {
    const struct lk_plan *plan = &d->plans[p];
    for (size_t ci = 0; ci < d->compound_count; ci++) {
      const struct lk_compound *c = &d->compounds[ci];
      modes_seen[c->mode] = 1;
      for (int t = plan->min_tier; t <= LINKAGE__V1__TIER__DISTRICT; t++) {
        const char *want[DISPATCH_MAX_ROLES];
        size_t nw = 0;
        for (size_t r = 0; r < plan->role_count; r++) {
          if ((int)plan->roles[r].from_tier > t) continue;
          const char *one[] = {plan->roles[r].role, NULL};
          const char *const *types =
              strcmp(plan->roles[r].role, "compound_roster") == 0 ? expected_roster(c->mode) : one;
          for (; *types; types++) {
            size_t k = 0;
            while (k < nw && strcmp(want[k], *types) != 0)
              k++;
            if (k == nw && nw < DISPATCH_MAX_ROLES) want[nw++] = *types;
          }
        }
        const char *lead = NULL;
        for (size_t l = 0; l < plan->lead_count && !lead; l++)
          for (size_t r = 0; r < plan->role_count; r++)
            if (strcmp(plan->roles[r].role, plan->lead[l]) == 0 &&
                (int)plan->roles[r].from_tier <= t)
              lead = strcmp(plan->lead[l], "compound_roster") == 0 ? expected_roster(c->mode)[0]
                                                                   : plan->lead[l];
        struct lk_need n[DISPATCH_MAX_ROLES];
        size_t count = lk_roster_needs(plan, c, (Linkage__V1__Tier)t, n, DISPATCH_MAX_ROLES);
        combos++;
        if (!LK_CHECK(count == nw)) {
          fprintf(stderr, "     plan %s in %s at %s: %zu needs, want %zu\n", plan->id, c->id,
                  lk_tier_name((Linkage__V1__Tier)t), count, nw);
          continue;
        }
        int leads = 0;
        for (size_t i = 0; i < count; i++) {
          LK_CHECK_STR(n[i].role, want[i]);
          leads += n[i].lead;
          if (n[i].lead && lead) LK_CHECK_STR(n[i].role, lead);
          LK_CHECK(n[i].acknowledge_min > 0 && n[i].acknowledge_min <= n[i].arrive_min &&
                   n[i].arrive_min <= n[i].resolve_min);
          const struct lk_unit *u =
              dispatch_pick(d, c, c->buildings[0].id, n[i].role, st, day, NULL, 0);
          if (!u) {
            gaps++;
            fprintf(stderr, "     gap: plan %s in %s (%s) at %s tier: no %s unit\n", plan->id,
                    c->id, lk_governance_mode_name(c->mode), lk_tier_name((Linkage__V1__Tier)t),
                    n[i].role);
          } else {
            LK_CHECK_STR(u->type, n[i].role);
            LK_CHECK(lk_unit_coverage(d, u, c, c->buildings[0].id) > 0);
          }
        }
        LK_CHECK_EQ_INT(leads, 1);
      }
    }
  }
  LK_CHECK(modes_seen[1] && modes_seen[2] && modes_seen[3]);
  LK_CHECK_EQ_INT(gaps, 0);
  LK_CHECK(combos >= 12 * 4 * 3);
  lk_district_destroy(&d);
}

LK_TEST(coverage_is_most_specific_first) {
  struct lk_district *d = load("deploy/district/wenjiang.yaml");
  if (!LK_CHECK(d != NULL)) return;
  const struct lk_compound *zab = lk_district_compound(d, "zhouji-asia-bay");
  const struct lk_compound *lij = lk_district_compound(d, "lijinggang");
  LK_CHECK_EQ_INT(
      lk_unit_coverage(d, lk_district_unit(d, "grid-workers-zhouji-asia-bay"), zab, "3"), 5);
  LK_CHECK_EQ_INT(
      lk_unit_coverage(d, lk_district_unit(d, "grid-workers-zhouji-asia-bay"), zab, NULL), 4);
  LK_CHECK_EQ_INT(lk_unit_coverage(d, lk_district_unit(d, "property-zhouji-asia-bay"), zab, "3"),
                  4);
  LK_CHECK_EQ_INT(lk_unit_coverage(d, lk_district_unit(d, "duty-jiangpu-road"), zab, "3"), 3);
  LK_CHECK_EQ_INT(lk_unit_coverage(d, lk_district_unit(d, "police-yongquan"), zab, "3"), 2);
  LK_CHECK_EQ_INT(lk_unit_coverage(d, lk_district_unit(d, "fire-wenjiang"), zab, "3"), 1);
  LK_CHECK_EQ_INT(lk_unit_coverage(d, lk_district_unit(d, "property-zhouji-yinhai-bay"), zab, "3"),
                  0);
  LK_CHECK_EQ_INT(lk_unit_coverage(d, lk_district_unit(d, "grid-workers-lijinggang"), zab, "3"), 0);
  /* An established community's id is its compound's too: the compound level wins. */
  LK_CHECK_EQ_INT(lk_unit_coverage(d, lk_district_unit(d, "duty-lijinggang"), lij, "1"), 4);
  /* The community health station beats the street's centre while it is open. */
  const struct lk_compound *sq = lk_district_compound(d, "spring-square");
  struct dispatch_unit_status st[64] = {{0}};
  const struct lk_unit *u = dispatch_pick(d, sq, "1", "health_centre", st, 10 * 60, NULL, 0);
  LK_CHECK(u && strcmp(u->id, "health-qingquan") == 0);
  u = dispatch_pick(d, sq, "1", "health_centre", st, 19 * 60, NULL, 0);
  LK_CHECK(u && strcmp(u->id, "health-yongquan") == 0);
  lk_district_destroy(&d);
}

static const char *pick_id(const struct lk_district *d, const char *building, const char *role,
                           const struct dispatch_unit_status *st, int minute,
                           const char *const *exclude, size_t nex) {
  const struct lk_unit *u = dispatch_pick(d, lk_district_compound(d, "spring-square"), building,
                                          role, st, minute, exclude, nex);
  return u ? u->id : "NONE";
}

static size_t unit_index(const struct lk_district *d, const char *id) {
  return (size_t)(lk_district_unit(d, id) - d->units);
}

LK_TEST(pick_prefers_presence_then_coverage_then_load_then_id) {
  struct lk_district *d = load("tests/data/district/dispatch.yaml");
  if (!LK_CHECK(d != NULL)) return;
  struct dispatch_unit_status st[16] = {{0}};
  int noon = 12 * 60;
  /* All absent and idle: building 1's grid, then the id. */
  LK_CHECK_STR(pick_id(d, "1", "grid_worker", st, noon, NULL, 0), "gw-a");
  /* Load: the idle one of two equals. */
  st[unit_index(d, "gw-a")].load = 2;
  LK_CHECK_STR(pick_id(d, "1", "grid_worker", st, noon, NULL, 0), "gw-b");
  /* Coverage before load: the compound-wide worker stays second even when idle. */
  st[unit_index(d, "gw-b")].load = 3;
  LK_CHECK_STR(pick_id(d, "1", "grid_worker", st, noon, NULL, 0), "gw-a");
  /* Presence before everything: a present compound-wide worker beats absent grid workers. */
  st[unit_index(d, "gw-compound")].present = 1;
  LK_CHECK_STR(pick_id(d, "1", "grid_worker", st, noon, NULL, 0), "gw-compound");
  /* And among the present, coverage again. */
  st[unit_index(d, "gw-b")].present = 1;
  LK_CHECK_STR(pick_id(d, "1", "grid_worker", st, noon, NULL, 0), "gw-b");
  /* Building 2 is in another grid: only the compound-wide worker covers it. */
  memset(st, 0, sizeof st);
  LK_CHECK_STR(pick_id(d, "2", "grid_worker", st, noon, NULL, 0), "gw-compound");
  /* Exclusion: units already tried for the role are skipped, then nobody is left. */
  const char *tried[] = {"gw-a", "gw-b"};
  LK_CHECK_STR(pick_id(d, "1", "grid_worker", st, noon, tried, 2), "gw-compound");
  const char *all[] = {"gw-a", "gw-b", "gw-compound"};
  LK_CHECK_STR(pick_id(d, "1", "grid_worker", st, noon, all, 3), "NONE");
  LK_CHECK_STR(pick_id(d, "1", "owners_committee", st, noon, NULL, 0), "NONE");
  lk_district_destroy(&d);
}

LK_TEST(duty_hours_skip_units_off_duty_and_wrap_midnight) {
  struct lk_district *d = load("tests/data/district/dispatch.yaml");
  if (!LK_CHECK(d != NULL)) return;
  struct dispatch_unit_status st[16] = {{0}};
  const char *day_staff[] = {"gw-a", "gw-b", "gw-compound"};
  /* gw-night works 20:00-08:00. */
  LK_CHECK_STR(pick_id(d, "1", "grid_worker", st, 12 * 60, day_staff, 3), "NONE");
  LK_CHECK_STR(pick_id(d, "1", "grid_worker", st, 23 * 60, day_staff, 3), "gw-night");
  LK_CHECK_STR(pick_id(d, "1", "grid_worker", st, 2 * 60, day_staff, 3), "gw-night");
  LK_CHECK_STR(pick_id(d, "1", "grid_worker", st, 20 * 60, day_staff, 3), "gw-night");
  LK_CHECK_STR(pick_id(d, "1", "grid_worker", st, 8 * 60, day_staff, 3), "NONE");
  LK_CHECK_STR(pick_id(d, "1", "grid_worker", st, 8 * 60 - 1, day_staff, 3), "gw-night");
  /* health-qingquan works 08:00-18:00; the street's centre always. */
  LK_CHECK_STR(pick_id(d, "1", "health_centre", st, 17 * 60 + 59, NULL, 0), "health-qingquan");
  LK_CHECK_STR(pick_id(d, "1", "health_centre", st, 18 * 60, NULL, 0), "health-yongquan");
  /* Local time: UTC+8 by default; minutes of the day wrap both ways. */
  LK_CHECK_EQ_INT(dispatch_minute_of_day(T0, 480), 16 * 60);
  LK_CHECK_EQ_INT(dispatch_minute_of_day(T0, 0), 8 * 60);
  LK_CHECK_EQ_INT(dispatch_minute_of_day(T0 + 9 * 60 * MIN, 480), 60);
  LK_CHECK_EQ_INT(dispatch_minute_of_day(0, -60), 23 * 60);
  LK_CHECK_EQ_INT(dispatch_minute_of_day(-1, 0), 23 * 60 + 59);
  /* The demo's grid workers go home at 20:00 local time. */
  struct lk_district *demo = load("deploy/district/wenjiang.yaml");
  if (LK_CHECK(demo != NULL)) {
    struct dispatch_unit_status s2[64] = {{0}};
    const struct lk_compound *zab = lk_district_compound(demo, "zhouji-asia-bay");
    LK_CHECK(dispatch_pick(demo, zab, "3", "grid_worker", s2, 19 * 60 + 59, NULL, 0) != NULL);
    LK_CHECK(dispatch_pick(demo, zab, "3", "grid_worker", s2, 20 * 60, NULL, 0) == NULL);
    lk_district_destroy(&demo);
  }
  lk_district_destroy(&d);
}

int main(void) {
  return lk_test_run_all();
}
