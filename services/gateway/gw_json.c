/* JSON documents of the dashboard's API (README "Gateway HTTP API"). Times are milliseconds
 * since the epoch, which is what JavaScript's Date takes. */
#include <inttypes.h>

#include "gateway.h"
#include "linkage/event.h"
#include "linkage/lifecycle.h"

static long long ms(int64_t us) {
  return (long long)(us / 1000);
}

/* A JSON string, or null for "" (an absent optional field). */
static void str_or_null(struct gw_buf *b, const char *s) {
  gw_buf_json_str(b, s && s[0] ? s : NULL);
}

static void field(struct gw_buf *b, const char *name, const char *value) {
  gw_buf_printf(b, ",\"%s\":", name);
  str_or_null(b, value);
}

void gw_json_incident(struct gw_buf *b, const struct gw_incident *inc, int with_timeline) {
  gw_buf_puts(b, "{\"id\":");
  gw_buf_json_str(b, inc->id);
  gw_buf_printf(b, ",\"position\":%" PRIu64, inc->last_position);
  field(b, "state", lk_state_name(inc->state));
  field(b, "category", lk_category_name(inc->category));
  field(b, "kind", inc->kind);
  field(b, "severity", lk_severity_name(inc->severity));
  field(b, "reported_severity", lk_severity_name(inc->reported_severity));
  field(b, "tier", lk_tier_name(inc->tier));
  field(b, "organisation", inc->organisation_id);
  field(b, "compound", inc->compound_id);
  field(b, "community", inc->community_id);
  field(b, "street", inc->street_id);
  field(b, "building", inc->building);
  field(b, "unit", inc->unit);
  gw_buf_printf(b, ",\"floor\":%d", (int)inc->floor);
  if (inc->lat != 0 || inc->lon != 0)
    gw_buf_printf(b, ",\"lat\":%.6f,\"lon\":%.6f", inc->lat, inc->lon);
  gw_buf_puts(b, ",\"description\":");
  gw_buf_json_str(b, inc->description ? inc->description : "");
  field(b, "device", inc->device_id);
  gw_buf_printf(b, ",\"reported_at\":%lld,\"updated_at\":%lld", ms(inc->reported_at_us),
                ms(inc->updated_at_us));
  int64_t at;
  const char *kind = gw_incident_deadline(inc, &at);
  if (kind)
    gw_buf_printf(b, ",\"deadline\":{\"kind\":\"%s\",\"at\":%lld}", kind, ms(at));
  else
    gw_buf_puts(b, ",\"deadline\":null");
  gw_buf_printf(b, ",\"overdue\":%s,\"acknowledged\":%s,\"suppressed\":%s",
                inc->overdue ? "true" : "false", inc->acknowledged ? "true" : "false",
                inc->suppressed ? "true" : "false");
  field(b, "merged_into", inc->merged_into);
  field(b, "lead_unit", inc->lead_unit);
  field(b, "held_back_by", inc->held_back_by);
  gw_buf_printf(b, ",\"exercise\":%s", inc->exercise ? "true" : "false");
  gw_buf_printf(b, ",\"units\":%u,\"missing_roles\":[", inc->units_assigned);
  uint32_t missing = gw_incident_missing(inc);
  for (int i = 0, n = 0; lk_unit_types[i] && i < 32; i++)
    if (missing & (1u << i)) {
      if (n++) gw_buf_puts(b, ",");
      gw_buf_json_str(b, lk_unit_types[i]);
    }
  gw_buf_puts(b, "]");
  if (with_timeline) {
    gw_buf_puts(b, ",\"assignments\":[");
    for (uint16_t i = 0; i < inc->assignment_count; i++) {
      const struct gw_assignment *a = &inc->assignments[i];
      gw_buf_puts(b, i ? ",{\"unit\":" : "{\"unit\":");
      gw_buf_json_str(b, a->unit);
      gw_buf_puts(b, ",\"role\":");
      gw_buf_json_str(b, a->role);
      gw_buf_printf(b, ",\"n\":%u,\"lead\":%s,\"state\":\"%s\"", (unsigned)a->n,
                    a->lead ? "true" : "false", gw_assignment_state_name(a->state));
      field(b, "tier", lk_tier_name((Linkage__V1__Tier)a->tier));
      gw_buf_puts(b, "}");
    }
    gw_buf_puts(b, "]");
    gw_buf_puts(b, ",\"timeline\":[");
    for (uint32_t i = 0; i < inc->step_count; i++) {
      const struct gw_step *s = &inc->steps[i];
      gw_buf_printf(b, "%s{\"position\":%" PRIu64 ",\"at\":%lld,\"type\":", i ? "," : "",
                    s->position, ms(s->at_us));
      gw_buf_json_str(b, lk_event_type_name(s->type));
      gw_buf_puts(b, ",\"actor\":");
      gw_buf_json_str(b, s->actor);
      gw_buf_puts(b, ",\"detail\":");
      gw_buf_json_str(b, s->detail);
      gw_buf_puts(b, ",\"detail_zh\":");
      gw_buf_json_str(b, s->detail_zh);
      gw_buf_puts(b, "}");
    }
    gw_buf_printf(b, "],\"timeline_truncated\":%s",
                  inc->step_count >= GW_MAX_STEPS ? "true" : "false");
  }
  gw_buf_puts(b, "}");
}

static void org(struct gw_buf *b, const struct lk_org *o, const char *parent_key) {
  gw_buf_puts(b, "{\"id\":");
  gw_buf_json_str(b, o->id);
  gw_buf_puts(b, ",\"name\":");
  gw_buf_json_str(b, o->name);
  gw_buf_puts(b, ",\"name_zh\":");
  str_or_null(b, o->name_zh);
  if (parent_key) field(b, parent_key, o->parent_id);
  gw_buf_puts(b, "}");
}

void gw_json_district(struct gw_buf *b, const struct lk_district *d) {
  gw_buf_puts(b, "{\"district\":");
  org(b, &d->district, NULL);
  gw_buf_puts(b, ",\"streets\":[");
  for (size_t i = 0; i < d->street_count; i++) {
    if (i) gw_buf_puts(b, ",");
    org(b, &d->streets[i], "district");
  }
  gw_buf_puts(b, "],\"communities\":[");
  for (size_t i = 0; i < d->community_count; i++) {
    if (i) gw_buf_puts(b, ",");
    org(b, &d->communities[i], "street");
  }
  gw_buf_puts(b, "],\"compounds\":[");
  for (size_t i = 0; i < d->compound_count; i++) {
    const struct lk_compound *c = &d->compounds[i];
    gw_buf_puts(b, i ? ",{\"id\":" : "{\"id\":");
    gw_buf_json_str(b, c->id);
    gw_buf_puts(b, ",\"name\":");
    gw_buf_json_str(b, c->name);
    gw_buf_puts(b, ",\"name_zh\":");
    str_or_null(b, c->name_zh);
    field(b, "community", c->community_id);
    field(b, "mode", lk_governance_mode_name(c->mode));
    gw_buf_puts(b, "}");
  }
  /* The units, so the page names them (in Chinese too) where the API gives ids. */
  gw_buf_puts(b, "],\"units\":[");
  for (size_t i = 0; i < d->unit_count; i++) {
    const struct lk_unit *u = &d->units[i];
    gw_buf_puts(b, i ? ",{\"id\":" : "{\"id\":");
    gw_buf_json_str(b, u->id);
    gw_buf_puts(b, ",\"name\":");
    gw_buf_json_str(b, u->name);
    gw_buf_puts(b, ",\"name_zh\":");
    str_or_null(b, u->name_zh);
    field(b, "type", u->type);
    gw_buf_puts(b, "}");
  }
  gw_buf_puts(b, "]}");
}

void gw_json_windows(struct gw_buf *b, const struct gw_view *v) {
  gw_buf_puts(b, "{\"windows\":[");
  for (uint32_t i = 0; i < v->window_count; i++) {
    const struct gw_window *w = &v->windows[i];
    gw_buf_puts(b, i ? ",{\"id\":" : "{\"id\":");
    gw_buf_json_str(b, w->id);
    field(b, "compound", w->compound_id);
    field(b, "building", w->building);
    field(b, "kind", w->kind);
    gw_buf_printf(b, ",\"from\":%lld,\"to\":%lld", ms(w->from_us), ms(w->to_us));
    field(b, "reason", w->reason);
    gw_buf_printf(b, ",\"lifted\":%s,\"position\":%" PRIu64 "}", w->lifted ? "true" : "false",
                  w->position);
  }
  gw_buf_puts(b, "]}");
}

void gw_json_lifecycle_js(struct gw_buf *b) {
  size_t n;
  const struct lk_lifecycle_row *rows = lk_lifecycle_rows(&n);
  gw_buf_puts(b, "/* Made by linkage-gateway from its life-cycle table "
                 "(include/linkage/lifecycle.h). */\n"
                 "window.LINKAGE_LIFECYCLE = {\"states\":{");
  for (int s = 0; s < LK_STATE_COUNT; s++) {
    gw_buf_printf(b, "%s\"%s\":{\"en\":", s ? "," : "", lk_state_name(s));
    gw_buf_json_str(b, lk_state_label(s, 0));
    gw_buf_puts(b, ",\"zh\":");
    gw_buf_json_str(b, lk_state_label(s, 1));
    gw_buf_puts(b, "}");
  }
  gw_buf_puts(b, "},\"types\":{");
  for (size_t i = 0; i < n; i++) {
    gw_buf_printf(b, "%s\"%s\":{\"en\":", i ? "," : "", rows[i].name);
    gw_buf_json_str(b, rows[i].label);
    gw_buf_puts(b, ",\"zh\":");
    gw_buf_json_str(b, rows[i].label_zh);
    if (rows[i].state == LK_STATE_KEEP)
      gw_buf_puts(b, ",\"state\":null}");
    else
      gw_buf_printf(b, ",\"state\":\"%s\"}", lk_state_name(rows[i].state));
  }
  gw_buf_puts(b, "},\"roles\":{");
  for (size_t i = 0; lk_unit_types[i]; i++) {
    gw_buf_printf(b, "%s\"%s\":{\"en\":", i ? "," : "", lk_unit_types[i]);
    gw_buf_json_str(b, lk_unit_type_label(lk_unit_types[i], 0));
    gw_buf_puts(b, ",\"zh\":");
    gw_buf_json_str(b, lk_unit_type_label(lk_unit_types[i], 1));
    gw_buf_puts(b, "}");
  }
  gw_buf_puts(b, "}};\n");
}
