#ifndef LINKAGE_DISTRICT_H
#define LINKAGE_DISTRICT_H

#include <stddef.h>

#include "linkage/plan.h"

/* The district model: topology and units, loaded from YAML under deploy/.
 * The file is validated strictly: unknown keys, missing required keys,
 * duplicate ids and dangling references fail with "file:line: why". */

enum lk_governance_mode {
  LK_MODE_UNSPECIFIED = 0,
  LK_MODE_ESTABLISHED_COMMUNITY, /* 建制社区 */
  LK_MODE_SPECIAL_COMMITTEE,     /* 专委会 */
  LK_MODE_TRADITIONAL,           /* 传统 */
};

struct lk_org {
  char *id;
  char *name;
  char *name_zh;
  char *parent_id; /* the street of a community, the district of a street */
  int line;        /* where it is defined in the file, for messages */
};

struct lk_building {
  char *id;
  int floors;
  char *grid_id;
  int line;
};

struct lk_compound {
  char *id;
  char *name;
  char *name_zh;
  char *community_id;
  enum lk_governance_mode mode;
  int residents;
  double lat, lon;
  struct lk_building *buildings;
  size_t building_count;
  char **grid_ids; /* unique in the district */
  size_t grid_count;
  int line;
};

struct lk_unit {
  char *id;
  char *name;
  char *type;    /* "grid_worker", "property_company", "fire_brigade", ... */
  char **covers; /* ids of compounds, communities, streets, grids or the district */
  size_t cover_count;
  int duty_from_min, duty_to_min; /* duty hours as minutes of the day; 0..1440 = always;
                                     from > to wraps midnight */
  char *name_zh;                  /* may be NULL */
  char **leadership;              /* free text, e.g. the special committee's police officer */
  size_t leadership_count;
  int line;
};

struct lk_district {
  struct lk_org district;
  struct lk_org *streets;
  size_t street_count;
  struct lk_org *communities;
  size_t community_count;
  struct lk_compound *compounds;
  size_t compound_count;
  struct lk_unit *units;
  size_t unit_count;
  struct lk_plan *plans; /* response plans (include/linkage/plan.h) */
  size_t plan_count;
};

/* Loads and validates the file. Returns the model or NULL with err filled. */
struct lk_district *lk_district_load(const char *path, char *err, size_t errlen);
void lk_district_destroy(struct lk_district **d);

/* Lookups by id; NULL when unknown. Borrowed pointers into the model. */
const struct lk_compound *lk_district_compound(const struct lk_district *d, const char *id);
const struct lk_org *lk_district_community(const struct lk_district *d, const char *id);
const struct lk_org *lk_district_street(const struct lk_district *d, const char *id);
const struct lk_unit *lk_district_unit(const struct lk_district *d, const char *id);

/* "established_community", "special_committee", "traditional"; NULL otherwise. */
const char *lk_governance_mode_name(enum lk_governance_mode m);

/* The unit types the district file may use ("grid_worker", ...); NULL-terminated. */
extern const char *const lk_unit_types[];
/* Their Chinese names, in the same order. */
extern const char *const lk_unit_types_zh[];
/* The index of a unit type in lk_unit_types, or -1 when it is none. */
int lk_unit_type_index(const char *type);
/* A unit type as people say it: the type itself, or its Chinese name; type when unknown. */
const char *lk_unit_type_label(const char *type, int zh);

/* 1 when the unit is on duty at `minute` of the day (0..1439). */
int lk_unit_on_duty(const struct lk_unit *u, int minute);

/* How specific a unit's coverage of a compound is: 5 the grid of the building (NULL or "":
 * unknown building), 4 the compound (or any of its grids when the building is unknown), 3 its
 * community, 2 its street, 1 the district, 0 not covered. */
int lk_unit_coverage(const struct lk_district *d, const struct lk_unit *u,
                     const struct lk_compound *c, const char *building);

/* The compound a grid belongs to; NULL when unknown. */
const struct lk_compound *lk_district_grid_compound(const struct lk_district *d,
                                                    const char *grid_id);

#endif
