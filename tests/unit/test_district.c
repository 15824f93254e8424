/* The district model: the demo file has the contract's ids and modes, and
 * every bad file under tests/data/district/ is refused at the right line. */

#include <stdlib.h>
#include <string.h>

#include "linkage/district.h"
#include "linkage/error.h"
#include "lk_test.h"

#define DEMO "deploy/district/wenjiang.yaml"
#define DATA "tests/data/district/"

LK_TEST(demo_has_contract_ids) {
  char err[512] = "";
  struct lk_district *d = lk_district_load(DEMO, err, sizeof(err));
  LK_CHECK(d != NULL);
  if (d == NULL) {
    fprintf(stderr, "     %s\n", err);
    return;
  }
  LK_CHECK_STR(d->district.id, "wenjiang");
  LK_CHECK_STR(d->district.name_zh, "温江区");
  LK_CHECK_EQ_INT(d->street_count, 1);
  const struct lk_org *st = lk_district_street(d, "yongquan");
  LK_CHECK(st != NULL && strcmp(st->name_zh, "涌泉街道") == 0 &&
           strcmp(st->parent_id, "wenjiang") == 0);

  static const struct {
    const char *id, *zh;
  } communities[] = {
      {"lijinggang", "麗晶港社区"}, {"jiangpu-road", "江浦路社区"}, {"qingquan", "清泉社区"}};
  LK_CHECK_EQ_INT(d->community_count, 3);
  for (int i = 0; i < 3; i++) {
    const struct lk_org *c = lk_district_community(d, communities[i].id);
    LK_CHECK(c != NULL);
    if (c) {
      LK_CHECK_STR(c->name_zh, communities[i].zh);
      LK_CHECK_STR(c->parent_id, "yongquan");
    }
  }

  static const struct {
    const char *id, *zh, *community;
    enum lk_governance_mode mode;
  } compounds[] = {
      {"lijinggang", "麗晶港", "lijinggang", LK_MODE_ESTABLISHED_COMMUNITY},
      {"zhouji-asia-bay", "洲际·亚洲湾", "jiangpu-road", LK_MODE_SPECIAL_COMMITTEE},
      {"zhouji-yinhai-bay", "洲际银海湾", "jiangpu-road", LK_MODE_TRADITIONAL},
      {"spring-square", "春天广场", "qingquan", LK_MODE_TRADITIONAL},
  };
  LK_CHECK_EQ_INT(d->compound_count, 4);
  for (int i = 0; i < 4; i++) {
    const struct lk_compound *c = lk_district_compound(d, compounds[i].id);
    LK_CHECK(c != NULL);
    if (c == NULL) continue;
    LK_CHECK_STR(c->name_zh, compounds[i].zh);
    LK_CHECK_STR(c->community_id, compounds[i].community);
    LK_CHECK_EQ_INT(c->mode, compounds[i].mode);
    LK_CHECK(c->residents > 10000);
    LK_CHECK(c->lat > 30.6 && c->lat < 30.8 && c->lon > 103.8 && c->lon < 103.9);
    LK_CHECK(c->building_count >= 10 && c->grid_count >= 2);
    for (size_t b = 0; b < c->building_count; b++)
      LK_CHECK(lk_district_grid_compound(d, c->buildings[b].grid_id) == c);
  }
  LK_CHECK(lk_district_compound(d, "jiangpu-road") == NULL);
  LK_CHECK(lk_district_compound(d, NULL) == NULL);

  /* The units the plans will call on. */
  const char *units[] = {"police-yongquan",           "fire-wenjiang",
                         "emergency-yongquan",        "emergency-wenjiang",
                         "committee-zhouji-asia-bay", "property-spring-square",
                         "owners-zhouji-yinhai-bay",  "duty-jiangpu-road",
                         "health-yongquan",           "grid-workers-lijinggang"};
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
    LK_CHECK(lk_district_unit(d, units[i]) != NULL);
  const struct lk_unit *u = lk_district_unit(d, "committee-zhouji-asia-bay");
  int police_in_lead = 0;
  for (size_t i = 0; u && i < u->leadership_count; i++)
    police_in_lead |= strstr(u->leadership[i], "police") != NULL;
  LK_CHECK(police_in_lead);
  LK_CHECK_STR(lk_governance_mode_name(LK_MODE_SPECIAL_COMMITTEE), "special_committee");
  LK_CHECK(lk_governance_mode_name(LK_MODE_UNSPECIFIED) == NULL);
  lk_district_destroy(&d);
  LK_CHECK(d == NULL);
  lk_district_destroy(&d);
}

LK_TEST(minimal_file_loads) {
  char err[512] = "";
  struct lk_district *d = lk_district_load(DATA "minimal.yaml", err, sizeof(err));
  LK_CHECK(d != NULL);
  if (d == NULL) {
    fprintf(stderr, "     %s\n", err);
    return;
  }
  const struct lk_compound *c = lk_district_compound(d, "spring-square");
  LK_CHECK(c && c->building_count == 2 && c->buildings[1].floors == 24);
  LK_CHECK(c && strcmp(c->buildings[1].grid_id, "spring-square-2") == 0);
  LK_CHECK(c && c->line == 18);
  const struct lk_unit *u = lk_district_unit(d, "property-spring-square");
  LK_CHECK(u && u->duty_from_min == 20 * 60 && u->duty_to_min == 8 * 60);
  LK_CHECK(u && u->name_zh == NULL && u->leadership_count == 0);
  lk_district_destroy(&d);
}

LK_TEST(duty_hours) {
  struct lk_unit day = {.duty_from_min = 8 * 60, .duty_to_min = 20 * 60};
  struct lk_unit night = {.duty_from_min = 20 * 60, .duty_to_min = 8 * 60};
  struct lk_unit always = {.duty_from_min = 0, .duty_to_min = 1440};
  LK_CHECK(lk_unit_on_duty(&day, 8 * 60));
  LK_CHECK(!lk_unit_on_duty(&day, 20 * 60));
  LK_CHECK(!lk_unit_on_duty(&day, 3 * 60));
  LK_CHECK(lk_unit_on_duty(&night, 3 * 60));
  LK_CHECK(lk_unit_on_duty(&night, 23 * 60));
  LK_CHECK(!lk_unit_on_duty(&night, 12 * 60));
  LK_CHECK(lk_unit_on_duty(&always, 0) && lk_unit_on_duty(&always, 1439));
}

static const struct {
  const char *file;
  int line;
  const char *why;
} bad[] = {
    {"bad_unknown_top_key.yaml", 41, "top level: unknown key \"rosters\""},
    {"bad_unknown_key.yaml", 29, "building: unknown key \"floor\""},
    {"bad_type_int.yaml", 28, "building: \"floors\" must be an integer, not \"many\""},
    {"bad_type_quoted_int.yaml", 23, "compound: \"residents\" must be an integer"},
    {"bad_type_list.yaml", 34, "unit: \"covers\" must be a list, not a scalar"},
    {"bad_type_map.yaml", 3, "district must be a mapping, not a list"},
    {"bad_missing_key.yaml", 18, "compound: missing required key \"community\""},
    {"bad_duplicate_id.yaml", 36,
     "duplicate unit id \"police-yongquan\" (first defined at line 31)"},
    {"bad_duplicate_key.yaml", 20, "compound: key \"name\" given twice"},
    {"bad_duplicate_grid.yaml", 26, "duplicate grid id \"spring-square-1\""},
    {"bad_dangling_district.yaml", 11,
     "street \"yongquan\": district \"chengdu\" is not this district"},
    {"bad_dangling_street.yaml", 16,
     "community \"qingquan\": street \"liucheng\" is not a street of this district"},
    {"bad_dangling_community.yaml", 21,
     "compound \"spring-square\": community \"jiangpu-road\" is not a community of this district"},
    {"bad_dangling_grid.yaml", 29,
     "building \"2\": grid \"spring-square-3\" is not a grid of this compound"},
    {"bad_dangling_covers.yaml", 39,
     "unit \"property-spring-square\": covers \"zhouji-asia-bay\" is not the district, a street, "
     "community, compound or grid of this district"},
    {"bad_mode.yaml", 22, "compound: \"mode\" must be established_community, special_committee"},
    {"bad_duty.yaml", 40, "unit: \"duty\" must be \"always\" or \"HH:MM-HH:MM\""},
    {"bad_unit_type.yaml", 33, "unit: \"type\" must be one of grid_worker"},
    {"bad_range.yaml", 24, "compound: \"lat\" is 130.5, outside [-90, 90]"},
    {"bad_version.yaml", 2, "\"version\" must be 1"},
    {"bad_syntax.yaml", 27, "did not find expected ',' or ']'"},
    {"bad_alias.yaml", 39, "aliases are not supported"},
    {"bad_empty_list.yaml", 27, "\"buildings\" must not be empty"},
    {"bad_empty.yaml", 1, "the file is empty"},
};

LK_TEST(bad_files_refused_with_line_and_reason) {
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char path[256], want[1024], err[1024] = "";
    snprintf(path, sizeof(path), DATA "%s", bad[i].file);
    snprintf(want, sizeof(want), "%s:%d: ", path, bad[i].line);
    struct lk_district *d = lk_district_load(path, err, sizeof(err));
    LK_CHECK(d == NULL);
    lk_district_destroy(&d);
    LK_CHECK(strncmp(err, want, strlen(want)) == 0);
    LK_CHECK_CONTAINS(err, bad[i].why);
    if (strncmp(err, want, strlen(want)) != 0 || strstr(err, bad[i].why) == NULL)
      fprintf(stderr, "     file %s: got \"%s\"\n", bad[i].file, err);
  }
}

LK_TEST(missing_file_named) {
  char err[512] = "";
  struct lk_district *d = lk_district_load(DATA "no-such-file.yaml", err, sizeof(err));
  LK_CHECK(d == NULL);
  LK_CHECK_CONTAINS(err, DATA "no-such-file.yaml: cannot open: No such file or directory");
}

LK_TEST(error_fits_small_buffer) {
  char err[24];
  struct lk_district *d = lk_district_load(DATA "bad_unknown_key.yaml", err, sizeof(err));
  LK_CHECK(d == NULL);
  LK_CHECK_EQ_INT(strlen(err), sizeof(err) - 1);
}

int main(void) {
  return lk_test_run_all();
}
