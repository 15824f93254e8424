/* lk_report_check: every rule of CONTRACT.md's Report table, one case each,
 * and the edges that must still pass. */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linkage/error.h"
#include "linkage/report.h"
#include "lk_test.h"

static const struct lk_district *demo(void) {
  static struct lk_district *d;
  if (d == NULL) {
    char err[512];
    d = lk_district_load("deploy/district/wenjiang.yaml", err, sizeof(err));
    if (d == NULL) fprintf(stderr, "cannot load the demo district: %s\n", err);
  }
  return d;
}

/* A valid report; the strings live in the struct so cases can overwrite them. */
struct fixture {
  Linkage__V1__Report r;
  Linkage__V1__Location loc;
  char device_id[256], kind[256], compound[256], building[256], unit[256];
  char description[4096];
  char err[1024];
};

static void fixture_init(struct fixture *f) {
  memset(f, 0, sizeof(*f));
  linkage__v1__report__init(&f->r);
  linkage__v1__location__init(&f->loc);
  strcpy(f->device_id, "gw-app-0042");
  strcpy(f->kind, "gas_leak");
  strcpy(f->compound, "zhouji-asia-bay");
  strcpy(f->building, "12");
  strcpy(f->unit, "2");
  strcpy(f->description, "gas smell on the stairwell of floor 9, 燃气味");
  f->r.device_id = f->device_id;
  f->r.sequence = 7;
  f->r.category = LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER;
  f->r.kind = f->kind;
  f->r.severity = LINKAGE__V1__SEVERITY__SEVERITY_III;
  f->r.location = &f->loc;
  f->loc.compound_id = f->compound;
  f->loc.building = f->building;
  f->loc.unit = f->unit;
  f->loc.floor = 9;
  f->loc.lat = 30.6868;
  f->loc.lon = 103.8704;
  f->r.description = f->description;
  f->r.observed_at_us = 1790000000000000LL;
}

static int check(struct fixture *f) {
  return lk_report_check(&f->r, demo(), f->err, sizeof(f->err));
}

static void fill(char *s, char c, size_t n) {
  memset(s, c, n);
  s[n] = '\0';
}

/* n copies of a 3-byte character (中), then tail. */
static void fill_zh(char *s, size_t n, const char *tail) {
  s[0] = '\0';
  for (size_t i = 0; i < n; i++)
    strcat(s, "\xe4\xb8\xad");
  strcat(s, tail);
}

#define EXPECT_OK(f)                                                                               \
  do {                                                                                             \
    LK_CHECK_EQ_INT(check(f), LK_OK);                                                              \
    LK_CHECK_STR((f)->err, "");                                                                    \
  } while (0)

#define EXPECT_REJECT(f, why)                                                                      \
  do {                                                                                             \
    LK_CHECK_EQ_INT(check(f), LK_EINVAL);                                                          \
    LK_CHECK_STR((f)->err, why);                                                                   \
  } while (0)

LK_TEST(demo_district_loads) {
  LK_CHECK(demo() != NULL);
}

LK_TEST(valid_report_passes) {
  struct fixture f;
  fixture_init(&f);
  EXPECT_OK(&f);
}

LK_TEST(valid_report_with_only_required_fields_passes) {
  struct fixture f;
  fixture_init(&f);
  f.kind[0] = f.building[0] = f.unit[0] = f.description[0] = '\0';
  f.loc.floor = 0;
  f.loc.lat = f.loc.lon = 0;
  f.r.observed_at_us = 0;
  EXPECT_OK(&f);
  /* Hand-built messages may leave strings NULL; protobuf-c never does. */
  f.r.kind = f.r.description = NULL;
  f.loc.building = f.loc.unit = NULL;
  EXPECT_OK(&f);
}

/* ---- device_id: required, 1..64 bytes, UTF-8 ---- */

LK_TEST(device_id_required) {
  struct fixture f;
  fixture_init(&f);
  f.device_id[0] = '\0';
  EXPECT_REJECT(&f, "device_id is required");
  f.r.device_id = NULL;
  EXPECT_REJECT(&f, "device_id is required");
}

LK_TEST(device_id_at_most_64_bytes) {
  struct fixture f;
  fixture_init(&f);
  fill(f.device_id, 'd', 64);
  EXPECT_OK(&f);
  fill(f.device_id, 'd', 65);
  EXPECT_REJECT(&f, "device_id is 65 bytes, max 64");
  fill(f.device_id, 'd', 1);
  EXPECT_OK(&f);
}

LK_TEST(device_id_multibyte_limit_counts_bytes) {
  struct fixture f;
  fixture_init(&f);
  fill_zh(f.device_id, 21, "a"); /* 63 + 1 bytes */
  EXPECT_OK(&f);
  fill_zh(f.device_id, 22, ""); /* 66 bytes, 22 characters */
  EXPECT_REJECT(&f, "device_id is 66 bytes, max 64");
  strcpy(f.device_id, "\xf0\x9f\x9a\x92-truck"); /* 4-byte character */
  EXPECT_OK(&f);
}

LK_TEST(device_id_utf8) {
  struct fixture f;
  fixture_init(&f);
  strcpy(f.device_id, "dev\xff");
  EXPECT_REJECT(&f, "device_id is not valid UTF-8");
}

/* ---- sequence ---- */

LK_TEST(sequence_positive) {
  struct fixture f;
  fixture_init(&f);
  f.r.sequence = 0;
  EXPECT_REJECT(&f, "sequence must be > 0");
  f.r.sequence = UINT64_MAX;
  EXPECT_OK(&f);
}

/* ---- category, severity ---- */

LK_TEST(category_not_unspecified) {
  struct fixture f;
  fixture_init(&f);
  f.r.category = LINKAGE__V1__CATEGORY__CATEGORY_UNSPECIFIED;
  EXPECT_REJECT(&f, "category is required (0 is CATEGORY_UNSPECIFIED)");
}

LK_TEST(category_known) {
  struct fixture f;
  fixture_init(&f);
  f.r.category = (Linkage__V1__Category)99;
  EXPECT_REJECT(&f, "category 99 is not a known Category");
  f.r.category = LINKAGE__V1__CATEGORY__LATENT_HAZARD;
  EXPECT_OK(&f);
  f.r.category = LINKAGE__V1__CATEGORY__NATURAL_DISASTER;
  EXPECT_OK(&f);
}

LK_TEST(severity_not_unspecified) {
  struct fixture f;
  fixture_init(&f);
  f.r.severity = LINKAGE__V1__SEVERITY__SEVERITY_UNSPECIFIED;
  EXPECT_REJECT(&f, "severity is required (0 is SEVERITY_UNSPECIFIED)");
}

LK_TEST(severity_known) {
  struct fixture f;
  fixture_init(&f);
  f.r.severity = (Linkage__V1__Severity)5;
  EXPECT_REJECT(&f, "severity 5 is not a known Severity");
  f.r.severity = (Linkage__V1__Severity)-1;
  EXPECT_REJECT(&f, "severity -1 is not a known Severity");
  f.r.severity = LINKAGE__V1__SEVERITY__SEVERITY_I;
  EXPECT_OK(&f);
  f.r.severity = LINKAGE__V1__SEVERITY__SEVERITY_IV;
  EXPECT_OK(&f);
}

/* ---- kind ---- */

LK_TEST(kind_at_most_64_bytes) {
  struct fixture f;
  fixture_init(&f);
  fill(f.kind, 'k', 64);
  EXPECT_OK(&f);
  fill(f.kind, 'k', 65);
  EXPECT_REJECT(&f, "kind is 65 bytes, max 64");
}

LK_TEST(kind_utf8) {
  struct fixture f;
  fixture_init(&f);
  strcpy(f.kind, "gas\xc0\xafleak"); /* overlong '/' */
  EXPECT_REJECT(&f, "kind is not valid UTF-8");
}

/* ---- location ---- */

LK_TEST(location_required) {
  struct fixture f;
  fixture_init(&f);
  f.r.location = NULL;
  EXPECT_REJECT(&f, "location is required");
}

LK_TEST(location_compound_id_required) {
  struct fixture f;
  fixture_init(&f);
  f.compound[0] = '\0';
  EXPECT_REJECT(&f, "location.compound_id is required");
}

LK_TEST(location_compound_id_known) {
  struct fixture f;
  fixture_init(&f);
  strcpy(f.compound, "nowhere");
  EXPECT_REJECT(&f, "location.compound_id \"nowhere\" is not a compound of this district");
  /* A community's id is not a compound's, even where they look alike. */
  strcpy(f.compound, "jiangpu-road");
  EXPECT_REJECT(&f, "location.compound_id \"jiangpu-road\" is not a compound of this district");
  strcpy(f.compound, "say \"hi\"\n");
  EXPECT_REJECT(&f,
                "location.compound_id \"say \\\"hi\\\"\\x0a\" is not a compound of this district");
  const char *ids[] = {"lijinggang", "zhouji-asia-bay", "zhouji-yinhai-bay", "spring-square"};
  for (int i = 0; i < 4; i++) {
    strcpy(f.compound, ids[i]);
    EXPECT_OK(&f);
  }
}

LK_TEST(location_compound_id_without_district_is_not_looked_up) {
  struct fixture f;
  fixture_init(&f);
  strcpy(f.compound, "nowhere");
  LK_CHECK_EQ_INT(lk_report_check(&f.r, NULL, f.err, sizeof(f.err)), LK_OK);
}

LK_TEST(location_compound_id_bounded) {
  struct fixture f;
  fixture_init(&f);
  fill(f.compound, 'c', 65);
  EXPECT_REJECT(&f, "location.compound_id is 65 bytes, max 64");
}

LK_TEST(location_compound_id_utf8) {
  struct fixture f;
  fixture_init(&f);
  strcpy(f.compound, "spring-square\xed\xa0\x80"); /* surrogate U+D800 */
  EXPECT_REJECT(&f, "location.compound_id is not valid UTF-8");
}

LK_TEST(location_building_bounded_and_utf8) {
  struct fixture f;
  fixture_init(&f);
  fill(f.building, 'b', 64);
  EXPECT_OK(&f);
  fill(f.building, 'b', 65);
  EXPECT_REJECT(&f, "location.building is 65 bytes, max 64");
  strcpy(f.building, "3\xe4\xb8"); /* truncated 3-byte sequence */
  EXPECT_REJECT(&f, "location.building is not valid UTF-8");
}

LK_TEST(location_unit_bounded_and_utf8) {
  struct fixture f;
  fixture_init(&f);
  fill_zh(f.unit, 21, "u"); /* 64 bytes */
  EXPECT_OK(&f);
  fill(f.unit, 'u', 65);
  EXPECT_REJECT(&f, "location.unit is 65 bytes, max 64");
  strcpy(f.unit, "\x80");
  EXPECT_REJECT(&f, "location.unit is not valid UTF-8");
}

LK_TEST(location_lat_in_range) {
  struct fixture f;
  fixture_init(&f);
  f.loc.lat = 90;
  EXPECT_OK(&f);
  f.loc.lat = -90;
  EXPECT_OK(&f);
  f.loc.lat = 90.5;
  EXPECT_REJECT(&f, "location.lat 90.5 is outside [-90, 90]");
  f.loc.lat = -91;
  EXPECT_REJECT(&f, "location.lat -91 is outside [-90, 90]");
  f.loc.lat = INFINITY;
  EXPECT_REJECT(&f, "location.lat inf is outside [-90, 90]");
  f.loc.lat = NAN;
  EXPECT_REJECT(&f, "location.lat is NaN");
}

LK_TEST(location_lon_in_range) {
  struct fixture f;
  fixture_init(&f);
  f.loc.lon = 180;
  EXPECT_OK(&f);
  f.loc.lon = -180;
  EXPECT_OK(&f);
  f.loc.lon = 181;
  EXPECT_REJECT(&f, "location.lon 181 is outside [-180, 180]");
  f.loc.lon = -200;
  EXPECT_REJECT(&f, "location.lon -200 is outside [-180, 180]");
  f.loc.lon = NAN;
  EXPECT_REJECT(&f, "location.lon is NaN");
}

/* ---- description ---- */

LK_TEST(description_at_most_2000_bytes) {
  struct fixture f;
  fixture_init(&f);
  fill(f.description, 'x', 2000);
  EXPECT_OK(&f);
  fill(f.description, 'x', 2001);
  EXPECT_REJECT(&f, "description is 2001 bytes, max 2000");
}

LK_TEST(description_multibyte_at_limit) {
  struct fixture f;
  fixture_init(&f);
  fill_zh(f.description, 666, "ab"); /* 1998 + 2 bytes */
  EXPECT_OK(&f);
  fill_zh(f.description, 667, ""); /* 2001 bytes */
  EXPECT_REJECT(&f, "description is 2001 bytes, max 2000");
  fill_zh(f.description, 666, "\xf0\x9f\x9a"); /* 2001 bytes, the last character cut */
  EXPECT_REJECT(&f, "description is 2001 bytes, max 2000; description is not valid UTF-8");
}

LK_TEST(description_utf8_overlong) {
  struct fixture f;
  fixture_init(&f);
  strcpy(f.description, "a\xc0\xaf"); /* '/' in two bytes */
  EXPECT_REJECT(&f, "description is not valid UTF-8");
  strcpy(f.description, "\xe0\x80\xaf"); /* '/' in three bytes */
  EXPECT_REJECT(&f, "description is not valid UTF-8");
}

LK_TEST(description_utf8_surrogate) {
  struct fixture f;
  fixture_init(&f);
  strcpy(f.description, "\xed\xbf\xbf"); /* U+DFFF */
  EXPECT_REJECT(&f, "description is not valid UTF-8");
  strcpy(f.description, "\xed\x9f\xbf"); /* U+D7FF, just below: valid */
  EXPECT_OK(&f);
}

LK_TEST(description_utf8_truncated) {
  struct fixture f;
  fixture_init(&f);
  strcpy(f.description, "fire \xe7\x81"); /* 火 without its last byte */
  EXPECT_REJECT(&f, "description is not valid UTF-8");
  strcpy(f.description, "\xe7\x81 fire"); /* cut in the middle */
  EXPECT_REJECT(&f, "description is not valid UTF-8");
}

LK_TEST(description_utf8_beyond_unicode) {
  struct fixture f;
  fixture_init(&f);
  strcpy(f.description, "\xf4\x90\x80\x80"); /* U+110000 */
  EXPECT_REJECT(&f, "description is not valid UTF-8");
  strcpy(f.description, "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
  EXPECT_OK(&f);
}

/* ---- observed_at_us ---- */

LK_TEST(observed_at_not_negative) {
  struct fixture f;
  fixture_init(&f);
  f.r.observed_at_us = -1;
  EXPECT_REJECT(&f, "observed_at_us must be >= 0");
}

/* ---- reporting ---- */

LK_TEST(every_violation_is_named) {
  struct fixture f;
  fixture_init(&f);
  f.device_id[0] = '\0';
  f.r.sequence = 0;
  f.r.severity = 0;
  strcpy(f.compound, "nowhere");
  EXPECT_REJECT(&f, "device_id is required; sequence must be > 0; severity is required (0 is "
                    "SEVERITY_UNSPECIFIED); location.compound_id \"nowhere\" is not a compound "
                    "of this district");
}

LK_TEST(error_truncated_to_buffer) {
  struct fixture f;
  fixture_init(&f);
  f.device_id[0] = '\0';
  f.r.sequence = 0;
  char small[16];
  LK_CHECK_EQ_INT(lk_report_check(&f.r, demo(), small, sizeof(small)), LK_EINVAL);
  LK_CHECK_STR(small, "device_id is re");
  LK_CHECK_EQ_INT(lk_report_check(&f.r, demo(), NULL, 0), LK_EINVAL);
  LK_CHECK_EQ_INT(lk_report_check(NULL, demo(), small, sizeof(small)), LK_EINVAL);
}

LK_TEST(nul_bytes_inside_strings_are_found_on_the_wire) {
  /* device_id "ab\0X" would reach us as "ab": the wire walk sees the whole field. */
  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
  uint8_t buf[512], bad[600];
  char err[128];
  loc.compound_id = "lijinggang";
  loc.building = "7";
  r.device_id = "ab";
  r.sequence = 1;
  r.location = &loc;
  size_t n = linkage__v1__report__pack(&r, buf);
  LK_CHECK_EQ_INT(lk_report_wire_check(buf, n, err, sizeof err), LK_OK);
  /* The same report with a second device_id field "ab\0X" appended (last one wins). */
  memcpy(bad, buf, n);
  const uint8_t extra[] = {0x0a, 4, 'a', 'b', 0, 'X'};
  memcpy(bad + n, extra, sizeof extra);
  LK_CHECK_EQ_INT(lk_report_wire_check(bad, n + sizeof extra, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "device_id holds a NUL byte");
  /* A NUL in the first of two Location messages survives their merge: it is found too. */
  const uint8_t loc_nul[] = {0x32, 5, 0x12, 3, '7', 0, '1'};
  memcpy(bad, loc_nul, sizeof loc_nul);
  memcpy(bad + sizeof loc_nul, buf, n);
  LK_CHECK_EQ_INT(lk_report_wire_check(bad, n + sizeof loc_nul, err, sizeof err), LK_EINVAL);
  LK_CHECK_CONTAINS(err, "location.building holds a NUL byte");
}

int main(void) {
  return lk_test_run_all();
}
