/* The district model: YAML (district_yaml.c) -> struct lk_district, checked
 * strictly. Each section is a table of fields (key, type, where it goes,
 * required, bounds, what it refers to); decode_map walks a mapping against
 * its table, so adding a key or a section is adding a table row. References
 * are collected while decoding and resolved once the whole file is read,
 * since sections and keys may come in any order. */

#include "linkage/district.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkage/yaml.h"
#include "linkage/error.h"

#define LK_DISTRICT_VERSION 1

const char *const lk_unit_types[] = {
    "grid_worker",
    "property_company",
    "owners_committee",
    "special_committee",
    "community_duty",
    "health_centre",
    "police_station",
    "fire_brigade",
    "street_emergency_office",
    "district_emergency_bureau",
    NULL,
};

/* The same, in the words the district's staff use; index by lk_unit_types. */
const char *const lk_unit_types_zh[] = {
    "网格员", "物业",     "业委会",     "专委会",       "社区值班", "社区卫生服务中心",
    "派出所", "消防救援", "街道应急办", "区应急管理局", NULL,
};

int lk_unit_type_index(const char *type) {
  for (int i = 0; type && lk_unit_types[i]; i++)
    if (strcmp(lk_unit_types[i], type) == 0) return i;
  return -1;
}

const char *lk_unit_type_label(const char *type, int zh) {
  int i = lk_unit_type_index(type);
  return i < 0 ? type : zh ? lk_unit_types_zh[i] : lk_unit_types[i];
}

const char *lk_governance_mode_name(enum lk_governance_mode m) {
  switch (m) {
  case LK_MODE_ESTABLISHED_COMMUNITY: return "established_community";
  case LK_MODE_SPECIAL_COMMITTEE: return "special_committee";
  case LK_MODE_TRADITIONAL: return "traditional";
  case LK_MODE_UNSPECIFIED: break;
  }
  return NULL;
}

/* ---- loader state ---------------------------------------------------- */

enum ref_kind { REF_NONE, REF_DISTRICT, REF_STREET, REF_COMMUNITY, REF_GRID, REF_AREA };

/* A reference to resolve after the whole file is read. The pointers point
 * into the model, whose arrays never move once allocated. */
struct ref {
  enum ref_kind kind;
  const char *what;                /* "compound" */
  char *const *owner_id;           /* the referring item's id */
  const char *key;                 /* "community" */
  char *const *target;             /* the id referred to */
  const struct lk_compound *scope; /* REF_GRID: the compound whose grids count */
  int line;
};

struct loader {
  const char *path;
  char *err;
  size_t errlen;
  struct lk_district *d;
  struct ref *refs;
  size_t ref_count, ref_cap;
  struct lk_compound *compound; /* the compound being decoded, for its buildings */
};

__attribute__((format(printf, 3, 4))) static int fail_at(struct loader *ld, int line,
                                                         const char *fmt, ...) {
  int n = snprintf(ld->err, ld->errlen, "%s:%d: ", ld->path, line);
  if (n > 0 && (size_t)n < ld->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return LK_EINVAL;
}

static int add_ref(struct loader *ld, const struct ref *r) {
  if (ld->ref_count == ld->ref_cap) {
    size_t cap = ld->ref_cap ? ld->ref_cap * 2 : 64;
    struct ref *refs = realloc(ld->refs, cap * sizeof(*refs));
    if (refs == NULL) return fail_at(ld, r->line, "out of memory");
    ld->refs = refs;
    ld->ref_cap = cap;
  }
  ld->refs[ld->ref_count++] = *r;
  return LK_OK;
}

/* ---- field tables ------------------------------------------------------ */

enum field_type {
  FT_STRING,  /* char *, non-empty */
  FT_INT,     /* int, plain scalar, within [min, max] */
  FT_DOUBLE,  /* double, plain scalar, finite, within [min, max] */
  FT_STRINGS, /* char ** + size_t count right after it, non-empty list */
  FT_CUSTOM,  /* decode() */
};

struct field;
typedef int (*decode_fn)(struct loader *ld, const struct lk_ynode *v, void *obj,
                         const struct field *f);

struct field {
  const char *key;
  enum field_type type;
  size_t offset;
  int required;
  double min, max;
  enum ref_kind ref;
  decode_fn decode;
};

/* What decode_map is filling: its noun for messages and where its id lives. */
struct item {
  const char *what;
  void *obj;
  char *const *id;
};

static int decode_string(struct loader *ld, const struct lk_ynode *v, const char *what,
                         const char *key, char **out) {
  if (v->kind != LK_YSCALAR)
    return fail_at(ld, v->line, "%s: \"%s\" must be a string, not %s", what, key,
                   lk_ynode_kind_name(v->kind));
  if (v->len == 0) return fail_at(ld, v->line, "%s: \"%s\" must not be empty", what, key);
  if (strlen(v->text) != v->len)
    return fail_at(ld, v->line, "%s: \"%s\" holds a NUL byte", what, key);
  *out = strdup(v->text);
  return *out ? LK_OK : fail_at(ld, v->line, "out of memory");
}

static int decode_number(struct loader *ld, const struct lk_ynode *v, const struct item *it,
                         const struct field *f, double *out) {
  const char *type = f->type == FT_INT ? "an integer" : "a number";
  if (v->kind != LK_YSCALAR || !v->plain || v->len == 0)
    return fail_at(ld, v->line, "%s: \"%s\" must be %s", it->what, f->key, type);
  char *end;
  errno = 0;
  double x;
  if (f->type == FT_INT) {
    long long i = strtoll(v->text, &end, 10);
    x = (double)i;
  } else {
    x = strtod(v->text, &end);
  }
  if (errno != 0 || *end != '\0' || isspace((unsigned char)v->text[0]) || !isfinite(x))
    return fail_at(ld, v->line, "%s: \"%s\" must be %s, not \"%s\"", it->what, f->key, type,
                   v->text);
  if (x < f->min || x > f->max)
    return fail_at(ld, v->line, "%s: \"%s\" is %s, outside [%g, %g]", it->what, f->key, v->text,
                   f->min, f->max);
  *out = x;
  return LK_OK;
}

static int decode_strings(struct loader *ld, const struct lk_ynode *v, const struct item *it,
                          const struct field *f) {
  char ***list = (char ***)((char *)it->obj + f->offset);
  size_t *count = (size_t *)((char *)it->obj + f->offset + sizeof(char **));
  if (v->kind != LK_YSEQ)
    return fail_at(ld, v->line, "%s: \"%s\" must be a list, not %s", it->what, f->key,
                   lk_ynode_kind_name(v->kind));
  if (v->count == 0) return fail_at(ld, v->line, "%s: \"%s\" must not be empty", it->what, f->key);
  *list = calloc(v->count, sizeof(char *));
  if (*list == NULL) return fail_at(ld, v->line, "out of memory");
  *count = v->count;
  for (size_t i = 0; i < v->count; i++) {
    int rc = decode_string(ld, v->items[i], it->what, f->key, &(*list)[i]);
    if (rc != LK_OK) return rc;
    if (f->ref != REF_NONE) {
      struct ref r = {f->ref,      it->what,     it->id,           f->key,
                      &(*list)[i], ld->compound, v->items[i]->line};
      if ((rc = add_ref(ld, &r)) != LK_OK) return rc;
    }
  }
  return LK_OK;
}

static int decode_field(struct loader *ld, const struct lk_ynode *v, const struct item *it,
                        const struct field *f) {
  void *slot = (char *)it->obj + f->offset;
  double x = 0;
  int rc;

  switch (f->type) {
  case FT_STRING:
    if ((rc = decode_string(ld, v, it->what, f->key, (char **)slot)) != LK_OK) return rc;
    if (f->ref != REF_NONE) {
      struct ref r = {f->ref, it->what, it->id, f->key, (char *const *)slot, ld->compound, v->line};
      return add_ref(ld, &r);
    }
    return LK_OK;
  case FT_INT:
    if ((rc = decode_number(ld, v, it, f, &x)) != LK_OK) return rc;
    *(int *)slot = (int)x;
    return LK_OK;
  case FT_DOUBLE:
    if ((rc = decode_number(ld, v, it, f, &x)) != LK_OK) return rc;
    *(double *)slot = x;
    return LK_OK;
  case FT_STRINGS: return decode_strings(ld, v, it, f);
  case FT_CUSTOM: return f->decode(ld, v, it->obj, f);
  }
  return LK_EINVAL;
}

/* Decodes a mapping against its table: every key known, none twice, every
 * required key present. */
static int decode_map(struct loader *ld, const struct lk_ynode *map, const struct item *it,
                      const struct field *fields, size_t n) {
  unsigned char seen[32] = {0};
  assert(n <= sizeof(seen));
  if (map->kind != LK_YMAP)
    return fail_at(ld, map->line, "%s must be a mapping, not %s", it->what,
                   lk_ynode_kind_name(map->kind));
  for (size_t i = 0; i + 1 < map->count; i += 2) {
    const struct lk_ynode *k = map->items[i], *v = map->items[i + 1];
    size_t j;
    for (j = 0; j < n; j++)
      if (strcmp(fields[j].key, k->text) == 0) break;
    if (j == n) return fail_at(ld, k->line, "%s: unknown key \"%s\"", it->what, k->text);
    if (seen[j]) return fail_at(ld, k->line, "%s: key \"%s\" given twice", it->what, k->text);
    seen[j] = 1;
    int rc = decode_field(ld, v, it, &fields[j]);
    if (rc != LK_OK) return rc;
  }
  for (size_t j = 0; j < n; j++)
    if (fields[j].required && !seen[j])
      return fail_at(ld, map->line, "%s: missing required key \"%s\"", it->what, fields[j].key);
  return LK_OK;
}

/* A list section: an array of structs, each decoded from a mapping, ids
 * unique within the list. */
struct list_spec {
  const char *what;
  size_t size;
  const struct field *fields;
  size_t nfields;
  size_t id_off, line_off;
  int (*after)(struct loader *ld, void *obj); /* checks once an item is decoded; may be NULL */
};

static int decode_list(struct loader *ld, const struct lk_ynode *v, const char *key,
                       const struct list_spec *spec, void **out, size_t *count) {
  if (v->kind != LK_YSEQ)
    return fail_at(ld, v->line, "\"%s\" must be a list, not %s", key, lk_ynode_kind_name(v->kind));
  if (v->count == 0) return fail_at(ld, v->line, "\"%s\" must not be empty", key);
  char *arr = calloc(v->count, spec->size);
  if (arr == NULL) return fail_at(ld, v->line, "out of memory");
  *out = arr;
  *count = v->count;
  for (size_t i = 0; i < v->count; i++) {
    void *obj = arr + i * spec->size;
    char **id = (char **)((char *)obj + spec->id_off);
    *(int *)((char *)obj + spec->line_off) = v->items[i]->line;
    struct item it = {spec->what, obj, id};
    int rc = decode_map(ld, v->items[i], &it, spec->fields, spec->nfields);
    if (rc == LK_OK && spec->after) rc = spec->after(ld, obj);
    if (rc != LK_OK) return rc;
    for (size_t j = 0; j < i; j++) {
      void *other = arr + j * spec->size;
      if (strcmp(*(char **)((char *)other + spec->id_off), *id) == 0)
        return fail_at(ld, v->items[i]->line, "duplicate %s id \"%s\" (first defined at line %d)",
                       spec->what, *id, *(int *)((char *)other + spec->line_off));
    }
  }
  return LK_OK;
}

/* ---- sections ---------------------------------------------------------- */

#define F_STR(k, s, m, req)                                                                        \
  { k, FT_STRING, offsetof(s, m), req, 0, 0, REF_NONE, NULL }
#define F_REF(k, s, m, ref)                                                                        \
  { k, FT_STRING, offsetof(s, m), 1, 0, 0, ref, NULL }

static const struct field district_fields[] = {
    F_STR("id", struct lk_org, id, 1),
    F_STR("name", struct lk_org, name, 1),
    F_STR("name_zh", struct lk_org, name_zh, 1),
};

static const struct field street_fields[] = {
    F_STR("id", struct lk_org, id, 1),
    F_STR("name", struct lk_org, name, 1),
    F_STR("name_zh", struct lk_org, name_zh, 1),
    F_REF("district", struct lk_org, parent_id, REF_DISTRICT),
};

static const struct field community_fields[] = {
    F_STR("id", struct lk_org, id, 1),
    F_STR("name", struct lk_org, name, 1),
    F_STR("name_zh", struct lk_org, name_zh, 1),
    F_REF("street", struct lk_org, parent_id, REF_STREET),
};

static const struct field building_fields[] = {
    F_STR("id", struct lk_building, id, 1),
    {"floors", FT_INT, offsetof(struct lk_building, floors), 1, 1, 200, REF_NONE, NULL},
    F_REF("grid", struct lk_building, grid_id, REF_GRID),
};

static const struct list_spec building_list = {
    "building",
    sizeof(struct lk_building),
    building_fields,
    sizeof(building_fields) / sizeof(building_fields[0]),
    offsetof(struct lk_building, id),
    offsetof(struct lk_building, line),
    NULL,
};

static int decode_mode(struct loader *ld, const struct lk_ynode *v, void *obj,
                       const struct field *f) {
  enum lk_governance_mode *m = (enum lk_governance_mode *)((char *)obj + f->offset);
  if (v->kind == LK_YSCALAR)
    for (int i = LK_MODE_ESTABLISHED_COMMUNITY; i <= LK_MODE_TRADITIONAL; i++)
      if (strcmp(v->text, lk_governance_mode_name((enum lk_governance_mode)i)) == 0) {
        *m = (enum lk_governance_mode)i;
        return LK_OK;
      }
  return fail_at(ld, v->line,
                 "compound: \"mode\" must be established_community, special_committee or "
                 "traditional");
}

/* Grid ids must be unique in the whole district: units cover them by id. */
static int decode_grids(struct loader *ld, const struct lk_ynode *v, void *obj,
                        const struct field *f) {
  struct lk_compound *c = obj;
  struct item it = {"compound", obj, &c->id};
  int rc = decode_strings(ld, v, &it, f);
  if (rc != LK_OK) return rc;
  for (size_t i = 0; i < c->grid_count; i++) {
    for (size_t j = 0; j < i; j++)
      if (strcmp(c->grid_ids[i], c->grid_ids[j]) == 0)
        return fail_at(ld, v->items[i]->line, "duplicate grid id \"%s\"", c->grid_ids[i]);
    for (const struct lk_compound *o = ld->d->compounds; o < c; o++)
      for (size_t j = 0; j < o->grid_count; j++)
        if (strcmp(c->grid_ids[i], o->grid_ids[j]) == 0)
          return fail_at(ld, v->items[i]->line,
                         "duplicate grid id \"%s\" (also in compound \"%s\", line %d)",
                         c->grid_ids[i], o->id, o->line);
  }
  return LK_OK;
}

static int decode_buildings(struct loader *ld, const struct lk_ynode *v, void *obj,
                            const struct field *f) {
  struct lk_compound *c = obj;
  ld->compound = c;
  int rc =
      decode_list(ld, v, "buildings", &building_list, (void **)&c->buildings, &c->building_count);
  ld->compound = NULL;
  return rc;
}

static const struct field compound_fields[] = {
    F_STR("id", struct lk_compound, id, 1),
    F_STR("name", struct lk_compound, name, 1),
    F_STR("name_zh", struct lk_compound, name_zh, 1),
    F_REF("community", struct lk_compound, community_id, REF_COMMUNITY),
    {"mode", FT_CUSTOM, offsetof(struct lk_compound, mode), 1, 0, 0, REF_NONE, decode_mode},
    {"residents", FT_INT, offsetof(struct lk_compound, residents), 1, 0, 1e7, REF_NONE, NULL},
    {"lat", FT_DOUBLE, offsetof(struct lk_compound, lat), 1, -90, 90, REF_NONE, NULL},
    {"lon", FT_DOUBLE, offsetof(struct lk_compound, lon), 1, -180, 180, REF_NONE, NULL},
    {"grids", FT_CUSTOM, offsetof(struct lk_compound, grid_ids), 1, 0, 0, REF_NONE, decode_grids},
    {"buildings", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_buildings},
};

static int decode_unit_type(struct loader *ld, const struct lk_ynode *v, void *obj,
                            const struct field *f) {
  struct lk_unit *u = obj;
  if (v->kind == LK_YSCALAR)
    for (const char *const *t = lk_unit_types; *t; t++)
      if (strcmp(v->text, *t) == 0) return decode_string(ld, v, "unit", f->key, &u->type);
  return fail_at(ld, v->line,
                 "unit: \"type\" must be one of grid_worker, property_company, "
                 "owners_committee, special_committee, community_duty, "
                 "health_centre, police_station, fire_brigade, "
                 "street_emergency_office, district_emergency_bureau");
}

/* "HH:MM" -> minutes; 24:00 is allowed as an end. -1 when malformed. */
static int parse_clock(const char *s, int allow_24) {
  if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
      !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
    return -1;
  int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && (!allow_24 || m != 0))) return -1;
  return h * 60 + m;
}

static int decode_duty(struct loader *ld, const struct lk_ynode *v, void *obj,
                       const struct field *f) {
  struct lk_unit *u = obj;
  if (v->kind == LK_YSCALAR) {
    if (strcmp(v->text, "always") == 0) {
      u->duty_from_min = 0;
      u->duty_to_min = 1440;
      return LK_OK;
    }
    if (v->len == 11 && v->text[5] == '-') {
      int from = parse_clock(v->text, 0), to = parse_clock(v->text + 6, 1);
      if (from >= 0 && to >= 0 && from != to) {
        u->duty_from_min = from;
        u->duty_to_min = to;
        return LK_OK;
      }
    }
  }
  return fail_at(ld, v->line,
                 "unit: \"duty\" must be \"always\" or \"HH:MM-HH:MM\" with "
                 "different start and end");
}

static const struct field unit_fields[] = {
    F_STR("id", struct lk_unit, id, 1),
    F_STR("name", struct lk_unit, name, 1),
    F_STR("name_zh", struct lk_unit, name_zh, 0),
    {"type", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_unit_type},
    {"covers", FT_STRINGS, offsetof(struct lk_unit, covers), 1, 0, 0, REF_AREA, NULL},
    {"duty", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_duty},
    {"leadership", FT_STRINGS, offsetof(struct lk_unit, leadership), 0, 0, 0, REF_NONE, NULL},
};

#define LIST_SPEC(what, type, fields, after)                                                       \
  {                                                                                                \
    what, sizeof(type), fields, sizeof(fields) / sizeof(fields[0]), offsetof(type, id),            \
        offsetof(type, line), after                                                                \
  }

static const struct list_spec street_list = LIST_SPEC("street", struct lk_org, street_fields, NULL);
static const struct list_spec community_list =
    LIST_SPEC("community", struct lk_org, community_fields, NULL);
static const struct list_spec compound_list =
    LIST_SPEC("compound", struct lk_compound, compound_fields, NULL);
static const struct list_spec unit_list = LIST_SPEC("unit", struct lk_unit, unit_fields, NULL);

/* ---- plans ----------------------------------------------------------- */

static int check_plan(struct loader *ld, void *obj);
static const struct field plan_fields[8];
static const struct list_spec plan_list =
    LIST_SPEC("plan", struct lk_plan, plan_fields, check_plan);

static int decode_category(struct loader *ld, const struct lk_ynode *v, void *obj,
                           const struct field *f) {
  struct lk_plan *p = obj;
  if (v->kind == LK_YSCALAR) {
    for (int c = 1; lk_category_name((Linkage__V1__Category)c); c++)
      if (strcmp(v->text, lk_category_name((Linkage__V1__Category)c)) == 0) {
        p->category = (Linkage__V1__Category)c;
        return LK_OK;
      }
  }
  return fail_at(ld, v->line,
                 "plan: \"category\" must be natural_disaster, accident_disaster, public_health, "
                 "social_safety, property_service, neighbour_dispute or latent_hazard");
}

static int tier_from_text(const char *s) {
  for (int t = LINKAGE__V1__TIER__COMPOUND; t <= LINKAGE__V1__TIER__DISTRICT; t++)
    if (strcmp(s, lk_tier_name((Linkage__V1__Tier)t)) == 0) return t;
  return 0;
}

static int decode_min_tier(struct loader *ld, const struct lk_ynode *v, void *obj,
                           const struct field *f) {
  struct lk_plan *p = obj;
  int t = v->kind == LK_YSCALAR ? tier_from_text(v->text) : 0;
  if (!t)
    return fail_at(ld, v->line,
                   "plan: \"min_tier\" must be compound, community, street or district");
  p->min_tier = (Linkage__V1__Tier)t;
  return LK_OK;
}

static int decode_area_hazard(struct loader *ld, const struct lk_ynode *v, void *obj,
                              const struct field *f) {
  struct lk_plan *p = obj;
  if (v->kind == LK_YSCALAR && (strcmp(v->text, "true") == 0 || strcmp(v->text, "false") == 0)) {
    p->area_hazard = v->text[0] == 't';
    return LK_OK;
  }
  return fail_at(ld, v->line, "plan: \"area_hazard\" must be true or false");
}

/* ---- plan roles: [{role, from, acknowledge, arrive, resolve}] ---- */

static int role_name_ok(const char *name) {
  if (strcmp(name, "compound_roster") == 0) return 1;
  for (const char *const *t = lk_unit_types; *t; t++)
    if (strcmp(name, *t) == 0) return 1;
  return 0;
}

static int decode_role_from(struct loader *ld, const struct lk_ynode *v, void *obj,
                            const struct field *f) {
  struct lk_plan_role *r = obj;
  int t = v->kind == LK_YSCALAR ? tier_from_text(v->text) : 0;
  if (!t)
    return fail_at(ld, v->line, "role: \"from\" must be compound, community, street or district");
  r->from_tier = (Linkage__V1__Tier)t;
  return LK_OK;
}

static int check_role(struct loader *ld, void *obj) {
  struct lk_plan_role *r = obj;
  if (!role_name_ok(r->role))
    return fail_at(ld, r->line,
                   "role \"%s\" is neither a unit type (grid_worker, property_company, "
                   "owners_committee, special_committee, community_duty, health_centre, "
                   "police_station, fire_brigade, street_emergency_office, "
                   "district_emergency_bureau) nor compound_roster",
                   r->role);
  if (r->acknowledge_min > r->arrive_min || r->arrive_min > r->resolve_min)
    return fail_at(ld, r->line,
                   "role \"%s\": minutes must satisfy acknowledge <= arrive <= resolve "
                   "(%d, %d, %d)",
                   r->role, r->acknowledge_min, r->arrive_min, r->resolve_min);
  return LK_OK;
}

static const struct field role_fields[] = {
    F_STR("role", struct lk_plan_role, role, 1),
    {"from", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_role_from},
    {"acknowledge", FT_INT, offsetof(struct lk_plan_role, acknowledge_min), 1, 1, 525600, REF_NONE,
     NULL},
    {"arrive", FT_INT, offsetof(struct lk_plan_role, arrive_min), 1, 1, 525600, REF_NONE, NULL},
    {"resolve", FT_INT, offsetof(struct lk_plan_role, resolve_min), 1, 1, 525600, REF_NONE, NULL},
};

/* The role name doubles as the list's id, so a role given twice in a plan is a duplicate id. */
static const struct list_spec role_list = {
    "role",
    sizeof(struct lk_plan_role),
    role_fields,
    sizeof(role_fields) / sizeof(role_fields[0]),
    offsetof(struct lk_plan_role, role),
    offsetof(struct lk_plan_role, line),
    check_role,
};

static const struct lk_ynode *role_key(const struct lk_ynode *item) {
  for (size_t i = 0; item->kind == LK_YMAP && i + 1 < item->count; i += 2)
    if (strcmp(item->items[i]->text, "role") == 0 && item->items[i + 1]->kind == LK_YSCALAR)
      return item->items[i + 1];
  return NULL;
}

static int decode_roles(struct loader *ld, const struct lk_ynode *v, void *obj,
                        const struct field *f) {
  struct lk_plan *p = obj;
  /* Said in the plan's words before decode_list would call it a duplicate id. */
  for (size_t i = 0; v->kind == LK_YSEQ && i < v->count; i++) {
    const struct lk_ynode *a = role_key(v->items[i]);
    for (size_t j = 0; a && j < i; j++) {
      const struct lk_ynode *b = role_key(v->items[j]);
      if (b && strcmp(a->text, b->text) == 0)
        return fail_at(ld, a->line, "role \"%s\" is listed twice in the plan (first at line %d)",
                       a->text, b->line);
    }
  }
  return decode_list(ld, v, "roles", &role_list, (void **)&p->roles, &p->role_count);
}

static int decode_minutes(struct loader *ld, const struct lk_ynode *v, int *out) {
  char *end;
  if (v->kind != LK_YSCALAR || !v->plain) return fail_at(ld, v->line, "expected minutes");
  errno = 0;
  long m = strtol(v->text, &end, 10);
  if (errno || *end || end == v->text || m <= 0 || m > 525600)
    return fail_at(ld, v->line, "plan: minutes must be an integer in [1, 525600], not \"%s\"",
                   v->text);
  *out = (int)m;
  return LK_OK;
}

/* deadlines: {SEVERITY: {TIER: [acknowledge minutes, resolve minutes]}}, e.g.
 *   III: {community: [15, 240], street: [10, 180], district: [5, 120]} */
static int decode_deadlines(struct loader *ld, const struct lk_ynode *v, void *obj,
                            const struct field *f) {
  struct lk_plan *p = obj;
  if (v->kind != LK_YMAP)
    return fail_at(ld, v->line, "plan: \"deadlines\" must map severities (I..IV) to tiers");
  for (size_t i = 0; i + 1 < v->count; i += 2) {
    const struct lk_ynode *sk = v->items[i], *tiers = v->items[i + 1];
    int sev = (int)lk_severity_parse(sk->text);
    if (!sev || strchr(sk->text, '_'))
      return fail_at(ld, sk->line, "plan: severity must be I, II, III or IV, not \"%s\"", sk->text);
    if (tiers->kind != LK_YMAP)
      return fail_at(ld, tiers->line, "plan: severity %s must map tiers to [acknowledge, resolve]",
                     sk->text);
    for (size_t j = 0; j + 1 < tiers->count; j += 2) {
      const struct lk_ynode *tk = tiers->items[j], *pair = tiers->items[j + 1];
      int t = tier_from_text(tk->text);
      if (!t)
        return fail_at(ld, tk->line,
                       "plan: tier must be compound, community, street or district, "
                       "not \"%s\"",
                       tk->text);
      struct lk_plan_deadline *d = &p->deadlines[sev][t];
      if (d->set)
        return fail_at(ld, tk->line, "plan: severity %s tier %s given twice", sk->text, tk->text);
      if (pair->kind != LK_YSEQ || pair->count != 2)
        return fail_at(ld, pair->line,
                       "plan: severity %s tier %s must be [acknowledge, resolve] "
                       "in minutes",
                       sk->text, tk->text);
      int rc = decode_minutes(ld, pair->items[0], &d->acknowledge_min);
      if (rc == LK_OK) rc = decode_minutes(ld, pair->items[1], &d->resolve_min);
      if (rc != LK_OK) return rc;
      d->set = 1;
    }
  }
  return LK_OK;
}

static int check_plan(struct loader *ld, void *obj) {
  struct lk_plan *p = obj;
  char why[200];
  /* A row the plan can never use is a mistake in the data, not a harmless extra. */
  for (int s = 1; s < LK_SEVERITY_COUNT; s++) {
    int start = (int)lk_severity_tier((Linkage__V1__Severity)s);
    if (start < (int)p->min_tier) start = (int)p->min_tier;
    for (int t = 1; t < start; t++)
      if (p->deadlines[s][t].set)
        return fail_at(ld, p->line,
                       "plan \"%s\": severity %s never sits at %s tier (it starts at %s)", p->id,
                       lk_severity_name((Linkage__V1__Severity)s),
                       lk_tier_name((Linkage__V1__Tier)t), lk_tier_name((Linkage__V1__Tier)start));
  }
  if (lk_plan_check(p, why, sizeof why) != LK_OK)
    return fail_at(ld, p->line, "plan \"%s\": %s", p->id, why);
  /* A role called from below the plan's floor would never be called there: say so. */
  for (size_t i = 0; i < p->role_count; i++)
    if (p->roles[i].from_tier < p->min_tier)
      return fail_at(ld, p->roles[i].line,
                     "plan \"%s\": role \"%s\" is called from %s tier, below the plan's "
                     "min_tier %s",
                     p->id, p->roles[i].role, lk_tier_name(p->roles[i].from_tier),
                     lk_tier_name(p->min_tier));
  for (size_t i = 0; i < p->lead_count; i++) {
    size_t j;
    for (j = 0; j < p->role_count; j++)
      if (strcmp(p->lead[i], p->roles[j].role) == 0) break;
    if (j == p->role_count)
      return fail_at(ld, p->line, "plan \"%s\": lead \"%s\" is not one of the plan's roles", p->id,
                     p->lead[i]);
    for (j = 0; j < i; j++)
      if (strcmp(p->lead[i], p->lead[j]) == 0)
        return fail_at(ld, p->line, "plan \"%s\": lead \"%s\" is listed twice", p->id, p->lead[i]);
  }
  return LK_OK;
}

static const struct field plan_fields[] = {
    F_STR("id", struct lk_plan, id, 1),
    {"category", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_category},
    F_STR("kind", struct lk_plan, kind, 0),
    {"min_tier", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_min_tier},
    {"deadlines", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_deadlines},
    {"roles", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_roles},
    {"lead", FT_STRINGS, offsetof(struct lk_plan, lead), 0, 0, 0, REF_NONE, NULL},
    {"area_hazard", FT_CUSTOM, 0, 0, 0, 0, REF_NONE, decode_area_hazard},
};

/* Every category needs its general plan, and no two plans may claim the same category and kind. */
static int check_plans(struct loader *ld) {
  const struct lk_district *d = ld->d;
  for (size_t i = 0; i < d->plan_count; i++)
    for (size_t j = 0; j < i; j++) {
      const struct lk_plan *a = &d->plans[i], *b = &d->plans[j];
      int same_kind = (!a->kind && !b->kind) || (a->kind && b->kind && !strcmp(a->kind, b->kind));
      if (a->category == b->category && same_kind)
        return fail_at(ld, a->line,
                       "plan \"%s\" covers the same category and kind as plan "
                       "\"%s\" (line %d)",
                       a->id, b->id, b->line);
    }
  for (int c = 1; lk_category_name((Linkage__V1__Category)c); c++) {
    size_t i;
    for (i = 0; i < d->plan_count; i++)
      if (d->plans[i].category == (Linkage__V1__Category)c && !d->plans[i].kind) break;
    if (i == d->plan_count)
      return fail_at(ld, 1, "plans: category %s has no plan (one without \"kind\")",
                     lk_category_name((Linkage__V1__Category)c));
  }
  return LK_OK;
}

/* Top level: one row per section. */

static int decode_version(struct loader *ld, const struct lk_ynode *v, void *obj,
                          const struct field *f) {
  if (v->kind == LK_YSCALAR && v->plain && strcmp(v->text, "1") == 0) return LK_OK;
  return fail_at(ld, v->line, "\"version\" must be %d", LK_DISTRICT_VERSION);
}

static int decode_district(struct loader *ld, const struct lk_ynode *v, void *obj,
                           const struct field *f) {
  struct lk_district *d = obj;
  d->district.line = v->line;
  struct item it = {"district", &d->district, &d->district.id};
  return decode_map(ld, v, &it, district_fields,
                    sizeof(district_fields) / sizeof(district_fields[0]));
}

#define SECTION_LIST(name, spec, arr, count)                                                       \
  static int decode_##name(struct loader *ld, const struct lk_ynode *v, void *obj,                 \
                           const struct field *f) {                                                \
    struct lk_district *d = obj;                                                                   \
    return decode_list(ld, v, #name, &spec, (void **)&d->arr, &d->count);                          \
  }

SECTION_LIST(streets, street_list, streets, street_count)
SECTION_LIST(communities, community_list, communities, community_count)
SECTION_LIST(compounds, compound_list, compounds, compound_count)
SECTION_LIST(units, unit_list, units, unit_count)
SECTION_LIST(plans, plan_list, plans, plan_count)

static const struct field top_fields[] = {
    {"version", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_version},
    {"district", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_district},
    {"streets", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_streets},
    {"communities", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_communities},
    {"compounds", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_compounds},
    {"units", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_units},
    {"plans", FT_CUSTOM, 0, 1, 0, 0, REF_NONE, decode_plans},
};

/* ---- references ---------------------------------------------------------- */

static int org_defined(const struct lk_org *orgs, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(orgs[i].id, id) == 0) return 1;
  return 0;
}

static int grid_of(const struct lk_compound *c, const char *id) {
  for (size_t i = 0; i < c->grid_count; i++)
    if (strcmp(c->grid_ids[i], id) == 0) return 1;
  return 0;
}

static int resolve_ref(struct loader *ld, const struct ref *r) {
  const struct lk_district *d = ld->d;
  const char *id = *r->target, *noun = "";
  int ok = 0;
  switch (r->kind) {
  case REF_DISTRICT:
    ok = strcmp(d->district.id, id) == 0;
    noun = "this district";
    break;
  case REF_STREET:
    ok = org_defined(d->streets, d->street_count, id);
    noun = "a street of this district";
    break;
  case REF_COMMUNITY:
    ok = org_defined(d->communities, d->community_count, id);
    noun = "a community of this district";
    break;
  case REF_GRID:
    ok = r->scope != NULL && grid_of(r->scope, id);
    noun = "a grid of this compound";
    break;
  case REF_AREA:
    ok = strcmp(d->district.id, id) == 0 || org_defined(d->streets, d->street_count, id) ||
         org_defined(d->communities, d->community_count, id) ||
         lk_district_compound(d, id) != NULL || lk_district_grid_compound(d, id) != NULL;
    noun = "the district, a street, community, compound or grid of this district";
    break;
  case REF_NONE: return LK_OK;
  }
  if (ok) return LK_OK;
  return fail_at(ld, r->line, "%s \"%s\": %s \"%s\" is not %s", r->what, *r->owner_id, r->key, id,
                 noun);
}

/* ---- public ------------------------------------------------------------ */

static void free_org(struct lk_org *o) {
  free(o->id);
  free(o->name);
  free(o->name_zh);
  free(o->parent_id);
}

static void free_strings(char **s, size_t n) {
  for (size_t i = 0; s && i < n; i++)
    free(s[i]);
  free(s);
}

void lk_district_destroy(struct lk_district **pd) {
  if (pd == NULL || *pd == NULL) return;
  struct lk_district *d = *pd;
  free_org(&d->district);
  for (size_t i = 0; d->streets && i < d->street_count; i++)
    free_org(&d->streets[i]);
  free(d->streets);
  for (size_t i = 0; d->communities && i < d->community_count; i++)
    free_org(&d->communities[i]);
  free(d->communities);
  for (size_t i = 0; d->compounds && i < d->compound_count; i++) {
    struct lk_compound *c = &d->compounds[i];
    free(c->id);
    free(c->name);
    free(c->name_zh);
    free(c->community_id);
    for (size_t j = 0; c->buildings && j < c->building_count; j++) {
      free(c->buildings[j].id);
      free(c->buildings[j].grid_id);
    }
    free(c->buildings);
    free_strings(c->grid_ids, c->grid_count);
  }
  free(d->compounds);
  for (size_t i = 0; d->units && i < d->unit_count; i++) {
    struct lk_unit *u = &d->units[i];
    free(u->id);
    free(u->name);
    free(u->name_zh);
    free(u->type);
    free_strings(u->covers, u->cover_count);
    free_strings(u->leadership, u->leadership_count);
  }
  free(d->units);
  for (size_t i = 0; d->plans && i < d->plan_count; i++) {
    struct lk_plan *p = &d->plans[i];
    free(p->id);
    free(p->kind);
    for (size_t j = 0; p->roles && j < p->role_count; j++)
      free(p->roles[j].role);
    free(p->roles);
    free_strings(p->lead, p->lead_count);
  }
  free(d->plans);
  free(d);
  *pd = NULL;
}

struct lk_district *lk_district_load(const char *path, char *err, size_t errlen) {
  struct loader ld = {.path = path, .err = err, .errlen = errlen};
  struct lk_ynode *root = lk_yaml_read(path, err, errlen);
  if (root == NULL) return NULL;
  ld.d = calloc(1, sizeof(*ld.d));
  if (ld.d == NULL) {
    snprintf(err, errlen, "%s: out of memory", path);
    goto fail;
  }
  struct item it = {"top level", ld.d, &ld.d->district.id};
  if (decode_map(&ld, root, &it, top_fields, sizeof(top_fields) / sizeof(top_fields[0])) != LK_OK)
    goto fail;
  for (size_t i = 0; i < ld.ref_count; i++)
    if (resolve_ref(&ld, &ld.refs[i]) != LK_OK) goto fail;
  if (check_plans(&ld) != LK_OK) goto fail;
  free(ld.refs);
  lk_yaml_free(&root);
  return ld.d;
fail:
  free(ld.refs);
  lk_district_destroy(&ld.d);
  lk_yaml_free(&root);
  return NULL;
}

const struct lk_compound *lk_district_compound(const struct lk_district *d, const char *id) {
  for (size_t i = 0; d && id && i < d->compound_count; i++)
    if (strcmp(d->compounds[i].id, id) == 0) return &d->compounds[i];
  return NULL;
}

static const struct lk_org *find_org(const struct lk_org *orgs, size_t n, const char *id) {
  for (size_t i = 0; id && i < n; i++)
    if (strcmp(orgs[i].id, id) == 0) return &orgs[i];
  return NULL;
}

const struct lk_org *lk_district_community(const struct lk_district *d, const char *id) {
  return d ? find_org(d->communities, d->community_count, id) : NULL;
}

const struct lk_org *lk_district_street(const struct lk_district *d, const char *id) {
  return d ? find_org(d->streets, d->street_count, id) : NULL;
}

const struct lk_unit *lk_district_unit(const struct lk_district *d, const char *id) {
  for (size_t i = 0; d && id && i < d->unit_count; i++)
    if (strcmp(d->units[i].id, id) == 0) return &d->units[i];
  return NULL;
}

const struct lk_compound *lk_district_grid_compound(const struct lk_district *d,
                                                    const char *grid_id) {
  for (size_t i = 0; d && grid_id && i < d->compound_count; i++)
    if (grid_of(&d->compounds[i], grid_id)) return &d->compounds[i];
  return NULL;
}

int lk_unit_on_duty(const struct lk_unit *u, int minute) {
  if (u->duty_from_min == 0 && u->duty_to_min >= 1440) return 1;
  if (u->duty_from_min < u->duty_to_min)
    return minute >= u->duty_from_min && minute < u->duty_to_min;
  return minute >= u->duty_from_min || minute < u->duty_to_min; /* wraps midnight */
}

static const char *building_grid(const struct lk_compound *c, const char *building) {
  for (size_t i = 0; building && building[0] && i < c->building_count; i++)
    if (strcmp(c->buildings[i].id, building) == 0) return c->buildings[i].grid_id;
  return NULL;
}

int lk_unit_coverage(const struct lk_district *d, const struct lk_unit *u,
                     const struct lk_compound *c, const char *building) {
  const char *grid = building_grid(c, building);
  const struct lk_org *community = lk_district_community(d, c->community_id);
  const char *street = community ? community->parent_id : NULL;
  int best = 0;
  for (size_t i = 0; i < u->cover_count; i++) {
    const char *id = u->covers[i];
    int cov = 0;
    if (grid && strcmp(id, grid) == 0)
      cov = 5;
    else if (strcmp(id, c->id) == 0)
      cov = 4;
    else if (!grid && grid_of(c, id))
      cov = 4; /* building unknown: any grid of the compound answers for it */
    else if (strcmp(id, c->community_id) == 0)
      cov = 3;
    else if (street && strcmp(id, street) == 0)
      cov = 2;
    else if (strcmp(id, d->district.id) == 0)
      cov = 1;
    if (cov > best) best = cov;
  }
  return best;
}
