/* CAP 1.2 alerts (OASIS Standard, 1 July 2010) for incidents, and the Atom 1.0 feed that lists
 * them. Pure renderers over the projection: no clock but the one passed in. README "CAP 1.2"
 * documents the mapping for the people who consume it; the reasons are kept here.
 *
 * An incident is one CAP message thread. Each step with cap = 1 (gw_view.c: reported, escalated,
 * de_escalated, severity_changed, merged, closed) made a new message; the alert rendered is the
 * last one, and its <references> name all earlier ones, so a consumer that missed a message can
 * still tell what it replaces. The body is the incident as it stands now (tier, state and
 * organisation follow the ledger), under the identifier of the last CAP-worthy step. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "linkage/event.h"

#define CAP_NS "urn:oasis:names:tc:emergency:cap:1.2"
#define ATOM_NS "http://www.w3.org/2005/Atom"

/* ---- text ---- */

/* Text for XML from the ledger. Intake refuses reports that are not UTF-8, but an event is only
 * as good as the service that wrote it, and one bad byte makes the whole document unreadable:
 * a string that is not UTF-8 (or holds U+FFFE/U+FFFF, which XML forbids) goes out with every
 * non-ASCII byte as '?'. */
static void text(struct gw_buf *b, const char *s) {
  if (!s) return;
  size_t n = strlen(s);
  if (lk_utf8_valid(s, n) && !strstr(s, "\xEF\xBF\xBE") && !strstr(s, "\xEF\xBF\xBF")) {
    gw_buf_xml(b, s);
    return;
  }
  char *c = strdup(s);
  if (!c) {
    b->failed = 1;
    return;
  }
  for (char *p = c; *p; p++)
    if ((unsigned char)*p >= 0x80) *p = '?';
  gw_buf_xml(b, c);
  free(c);
}

static void elem(struct gw_buf *b, const char *name, const char *value) {
  gw_buf_printf(b, "<%s>", name);
  text(b, value);
  gw_buf_printf(b, "</%s>\n", name);
}

static void time_elem(struct gw_buf *b, const char *name, int64_t us) {
  char t[32];
  gw_time_format(us, t);
  elem(b, name, t);
}

/* CAP's valueName/value pairs (eventCode, parameter, geocode). */
static void pair(struct gw_buf *b, const char *name, const char *key, const char *value) {
  gw_buf_printf(b, "<%s><valueName>", name);
  text(b, key);
  gw_buf_puts(b, "</valueName><value>");
  text(b, value);
  gw_buf_printf(b, "</value></%s>\n", name);
}

/* ---- the message thread ---- */

/* The messages of an incident are its steps with cap = 1. */
struct thread {
  const struct gw_step *last; /* the message rendered now */
  struct gw_step none;        /* stands in for `last` when no step made one (see below) */
  uint32_t count;
  int ended; /* closed, or merged into another incident */
};

static void thread_of(const struct gw_incident *inc, struct thread *t) {
  memset(t, 0, sizeof *t);
  for (uint32_t i = 0; i < inc->step_count; i++)
    if (inc->steps[i].cap) {
      t->last = &inc->steps[i];
      t->count++;
    }
  if (!t->last) {
    /* Not from gw_view.c, which records the reported step first; keep the document valid with
     * the first position and the report's time rather than render nothing. */
    t->none.position = inc->first_position;
    t->none.at_us = inc->reported_at_us;
    t->none.type = LINKAGE__V1__EVENT_TYPE__REPORTED;
    t->last = &t->none;
    t->count = 1;
  }
  t->ended = inc->state == LK_STATE_CLOSED || inc->merged_into[0];
}

static void identifier(struct gw_buf *b, const struct gw_incident *inc, const struct gw_step *s) {
  text(b, inc->id);
  gw_buf_printf(b, "-%" PRIu64, s->position);
}

/* CAP 1.2 §3.2.1: "sender,identifier,sent" of each earlier message, space-separated. */
static void references(struct gw_buf *b, const struct gw_incident *inc, const struct thread *t,
                       const char *sender) {
  if (t->count < 2) return;
  gw_buf_puts(b, "<references>");
  int first = 1;
  for (uint32_t i = 0; i < inc->step_count; i++) {
    const struct gw_step *s = &inc->steps[i];
    if (!s->cap || s == t->last) continue;
    char at[32];
    gw_time_format(s->at_us, at);
    if (!first) gw_buf_puts(b, " ");
    first = 0;
    text(b, sender);
    gw_buf_puts(b, ",");
    identifier(b, inc, s);
    gw_buf_printf(b, ",%s", at);
  }
  gw_buf_puts(b, "</references>\n");
}

/* ---- the mapping ---- */

static int kind_has(const char *kind, const char *const *words) {
  for (; *words; words++)
    if (strstr(kind, *words)) return 1;
  return 0;
}

/* Natural disasters split by what the kind names: weather (Met) or the ground (Geo). A kind that
 * names neither gets both, since CAP allows several categories and guessing one would hide the
 * event from consumers who filter on the other. */
static const char *const met_words[] = {
    "flood", "rain",  "storm", "typhoon", "wind",      "hail",    "snow",     "heat",
    "cold",  "frost", "fog",   "smog",    "lightning", "drought", "waterlog", NULL};
static const char *const geo_words[] = {"earthquake", "quake",    "landslide", "mudslide",
                                        "debris",     "subsiden", "sinkhole",  NULL};
/* Accidents are Safety; what the district's plans send the fire brigade to is also Fire (a gas
 * leak is a fire and explosion hazard, and the fire brigade answers it), people to be freed are
 * Rescue, and road accidents Transport. */
static const char *const fire_words[] = {"fire", "smoke", "explosion", "burn", "gas", NULL};
static const char *const rescue_words[] = {"entrapment", "trapped", "drown", "rescue", NULL};
static const char *const transport_words[] = {"traffic", "vehicle", "collision", "road", NULL};

static void categories(struct gw_buf *b, const struct gw_incident *inc) {
  const char *k = inc->kind;
  switch (inc->category) {
  case LINKAGE__V1__CATEGORY__NATURAL_DISASTER: {
    int met = kind_has(k, met_words), geo = kind_has(k, geo_words);
    if (geo || !met) elem(b, "category", "Geo");
    if (met || !geo) elem(b, "category", "Met");
    break;
  }
  case LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER:
    elem(b, "category", "Safety");
    if (kind_has(k, fire_words)) elem(b, "category", "Fire");
    if (kind_has(k, rescue_words)) elem(b, "category", "Rescue");
    if (kind_has(k, transport_words)) elem(b, "category", "Transport");
    break;
  case LINKAGE__V1__CATEGORY__PUBLIC_HEALTH: elem(b, "category", "Health"); break;
  case LINKAGE__V1__CATEGORY__SOCIAL_SAFETY: elem(b, "category", "Security"); break;
  /* Complaints about property services are about lifts, water, power and the like: the
   * compound's infrastructure. */
  case LINKAGE__V1__CATEGORY__PROPERTY_SERVICE: elem(b, "category", "Infra"); break;
  /* Latent hazards (a cracked wall, a loose railing, a blocked fire lane) threaten public safety
   * before anything has happened. */
  case LINKAGE__V1__CATEGORY__LATENT_HAZARD: elem(b, "category", "Safety"); break;
  /* A dispute between neighbours is no threat to the public, and Security would announce
   * police business; one that turns violent is reported again as social_safety. */
  case LINKAGE__V1__CATEGORY__NEIGHBOUR_DISPUTE:
  default: elem(b, "category", "Other"); break;
  }
}

static const char *cap_severity(Linkage__V1__Severity s) {
  switch (s) {
  case LINKAGE__V1__SEVERITY__SEVERITY_I: return "Extreme";
  case LINKAGE__V1__SEVERITY__SEVERITY_II: return "Severe";
  case LINKAGE__V1__SEVERITY__SEVERITY_III: return "Moderate";
  case LINKAGE__V1__SEVERITY__SEVERITY_IV: return "Minor";
  default: return "Unknown";
  }
}

/* How soon the public should act: the national level says how fast the plans respond (I and II
 * start at street and district tier, with deadlines in minutes), a missed deadline makes any
 * level Immediate, and nothing is left to do once the incident ended. */
static const char *cap_urgency(const struct gw_incident *inc, int ended) {
  if (ended) return "Past";
  if (inc->overdue) return "Immediate";
  switch (inc->severity) {
  case LINKAGE__V1__SEVERITY__SEVERITY_I:
  case LINKAGE__V1__SEVERITY__SEVERITY_II: return "Immediate";
  case LINKAGE__V1__SEVERITY__SEVERITY_III: return "Expected";
  case LINKAGE__V1__SEVERITY__SEVERITY_IV: return "Future";
  default: return "Unknown";
  }
}

/* Execute: levels I and II set a response plan going whose directions people on site follow;
 * Monitor for III and IV. A closed incident is AllClear; a merged one lives on under the other
 * id, which the instruction names, so this thread asks for nothing (None). */
static const char *cap_response(const struct gw_incident *inc) {
  if (inc->merged_into[0]) return "None";
  if (inc->state == LK_STATE_CLOSED) return "AllClear";
  return inc->severity == LINKAGE__V1__SEVERITY__SEVERITY_I ||
                 inc->severity == LINKAGE__V1__SEVERITY__SEVERITY_II
             ? "Execute"
             : "Monitor";
}

/* ---- the two languages ---- */

struct lang {
  const char *code;
  const char *level[5]; /* by Severity */
  const char *tier[5];  /* by Tier */
  const char *step[16]; /* by EventType, for the steps that make messages */
  int zh;               /* names from name_zh, Chinese address order */
};

static const struct lang en = {"en-US",
                               {"", "severity I (especially major)", "severity II (major)",
                                "severity III (large)", "severity IV (general)"},
                               {"", "compound", "community", "street", "district"},
                               {[LINKAGE__V1__EVENT_TYPE__REPORTED] = "reported",
                                [LINKAGE__V1__EVENT_TYPE__ESCALATED] = "escalated to %s tier",
                                [LINKAGE__V1__EVENT_TYPE__DE_ESCALATED] = "de-escalated to %s tier",
                                [LINKAGE__V1__EVENT_TYPE__SEVERITY_CHANGED] = "severity changed",
                                [LINKAGE__V1__EVENT_TYPE__MERGED] = "merged into another incident",
                                [LINKAGE__V1__EVENT_TYPE__CLOSED] = "closed"},
                               0};

static const struct lang zh = {"zh-CN",
                               {"", "Ⅰ级（特别重大）", "Ⅱ级（重大）", "Ⅲ级（较大）", "Ⅳ级（一般）"},
                               {"", "小区", "社区", "街道", "区"},
                               {[LINKAGE__V1__EVENT_TYPE__REPORTED] = "已上报",
                                [LINKAGE__V1__EVENT_TYPE__ESCALATED] = "已升级至%s",
                                [LINKAGE__V1__EVENT_TYPE__DE_ESCALATED] = "已降级至%s",
                                [LINKAGE__V1__EVENT_TYPE__SEVERITY_CHANGED] = "级别已调整",
                                [LINKAGE__V1__EVENT_TYPE__MERGED] = "已并入其他事件",
                                [LINKAGE__V1__EVENT_TYPE__CLOSED] = "已关闭"},
                               1};

static const char *org_name(const struct lk_org *o, const struct lang *l) {
  return l->zh && o->name_zh ? o->name_zh : o->name;
}

/* Who answers at the current tier (the router's organisation_id names a compound, community,
 * street or the district, by tier); the district before the incident is routed. */
static const char *sender_name(const struct gw_view *v, const struct gw_incident *inc,
                               const struct lang *l) {
  const struct lk_district *d = v->district;
  if (!d) return NULL;
  const char *id = inc->organisation_id;
  if (id[0]) {
    const struct lk_compound *c;
    const struct lk_org *o = NULL;
    switch (inc->tier) {
    case LINKAGE__V1__TIER__COMPOUND:
      if ((c = lk_district_compound(d, id))) return l->zh && c->name_zh ? c->name_zh : c->name;
      break;
    case LINKAGE__V1__TIER__COMMUNITY: o = lk_district_community(d, id); break;
    case LINKAGE__V1__TIER__STREET: o = lk_district_street(d, id); break;
    default: break;
    }
    if (o) return org_name(o, l);
  }
  return org_name(&d->district, l);
}

static const char *tier_word(const struct lang *l, Linkage__V1__Tier t) {
  return (unsigned)t < 5 && t ? l->tier[t] : l->tier[4];
}

static const char *compound_name(const struct gw_view *v, const struct gw_incident *inc,
                                 const struct lang *l) {
  const struct lk_compound *c =
      v->district ? lk_district_compound(v->district, inc->compound_id) : NULL;
  if (!c) return inc->compound_id;
  return l->zh && c->name_zh ? c->name_zh : c->name;
}

/* "gas_leak, severity II (major), at Lijinggang: escalated to street tier". */
static void headline(struct gw_buf *b, const struct gw_view *v, const struct gw_incident *inc,
                     const struct thread *t, const struct lang *l) {
  const char *event = inc->kind[0] ? inc->kind : lk_category_name(inc->category);
  unsigned sev = (unsigned)inc->severity < 5 ? (unsigned)inc->severity : 0;
  const char *step = (unsigned)t->last->type < 16 ? l->step[t->last->type] : NULL;
  char what[64] = "";
  if (step) snprintf(what, sizeof what, step, tier_word(l, inc->tier));
  text(b, event);
  if (l->zh) {
    if (sev) gw_buf_printf(b, "，%s", l->level[sev]);
    gw_buf_puts(b, "，");
    text(b, compound_name(v, inc, l));
    gw_buf_puts(b, "：");
  } else {
    if (sev) gw_buf_printf(b, ", %s", l->level[sev]);
    gw_buf_puts(b, ", at ");
    text(b, compound_name(v, inc, l));
    gw_buf_puts(b, ": ");
  }
  text(b, what);
}

/* Small to large in English, large to small in Chinese, as addresses are written. */
static void area_desc(struct gw_buf *b, const struct gw_view *v, const struct gw_incident *inc,
                      const struct lang *l) {
  const struct lk_org *com = v->district && inc->community_id
                                 ? lk_district_community(v->district, inc->community_id)
                                 : NULL;
  const struct lk_org *st =
      v->district && inc->street_id ? lk_district_street(v->district, inc->street_id) : NULL;
  gw_buf_puts(b, "<areaDesc>");
  if (l->zh) {
    if (st) text(b, org_name(st, l));
    if (com) text(b, org_name(com, l));
    text(b, compound_name(v, inc, l));
    if (inc->building[0]) {
      text(b, inc->building);
      gw_buf_puts(b, "栋");
    }
    if (inc->unit[0]) {
      text(b, inc->unit);
      gw_buf_puts(b, "单元");
    }
    if (inc->floor) gw_buf_printf(b, "%d层", (int)inc->floor);
  } else {
    text(b, compound_name(v, inc, l));
    if (inc->building[0]) {
      gw_buf_puts(b, ", building ");
      text(b, inc->building);
    }
    if (inc->unit[0]) {
      gw_buf_puts(b, ", unit ");
      text(b, inc->unit);
    }
    if (inc->floor) gw_buf_printf(b, ", floor %d", (int)inc->floor);
    if (com) {
      gw_buf_puts(b, ", ");
      text(b, org_name(com, l));
    }
    if (st) {
      gw_buf_puts(b, ", ");
      text(b, org_name(st, l));
    }
  }
  gw_buf_puts(b, "</areaDesc>\n");
}

static int coords_ok(double lat, double lon) {
  return isfinite(lat) && isfinite(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180 &&
         (lat != 0 || lon != 0);
}

static void area(struct gw_buf *b, const struct gw_view *v, const struct gw_incident *inc,
                 const struct lang *l) {
  gw_buf_puts(b, "<area>\n");
  area_desc(b, v, inc, l);
  /* CAP's circle is "lat,lon radius_km" (WGS 84). The report's own point with 100 m; without
   * one, the compound's centre with 500 m, about the size of one of these compounds. */
  const struct lk_compound *c =
      v->district ? lk_district_compound(v->district, inc->compound_id) : NULL;
  if (coords_ok(inc->lat, inc->lon))
    gw_buf_printf(b, "<circle>%.6f,%.6f 0.1</circle>\n", inc->lat, inc->lon);
  else if (c && coords_ok(c->lat, c->lon))
    gw_buf_printf(b, "<circle>%.6f,%.6f 0.5</circle>\n", c->lat, c->lon);
  pair(b, "geocode", "linkage:compound", inc->compound_id);
  if (inc->community_id) pair(b, "geocode", "linkage:community", inc->community_id);
  if (inc->street_id) pair(b, "geocode", "linkage:street", inc->street_id);
  gw_buf_puts(b, "</area>\n");
}

static void cap_url(struct gw_buf *b, const struct gw_cap_opts *o, const char *id) {
  text(b, o->base_url ? o->base_url : "");
  gw_buf_puts(b, "/cap/");
  text(b, id);
  gw_buf_puts(b, ".xml");
}

static void info(struct gw_buf *b, const struct gw_view *v, const struct gw_incident *inc,
                 const struct thread *t, const struct gw_cap_opts *o, const struct lang *l) {
  gw_buf_puts(b, "<info>\n");
  elem(b, "language", l->code);
  categories(b, inc);
  elem(b, "event", inc->kind[0] ? inc->kind : lk_category_name(inc->category));
  elem(b, "responseType", cap_response(inc));
  elem(b, "urgency", cap_urgency(inc, t->ended));
  elem(b, "severity", cap_severity(inc->severity));
  /* Every incident starts from a report made on site, by a field device or a grid worker's app
   * in the compound (the chain's first step is discovery in the compound). */
  elem(b, "certainty", inc->device_id[0] ? "Observed" : "Likely");
  const char *category = lk_category_name(inc->category);
  if (category) pair(b, "eventCode", "linkage:category", category);
  if (inc->kind[0]) pair(b, "eventCode", "linkage:kind", inc->kind);
  if (inc->reported_at_us > 0) time_elem(b, "onset", inc->reported_at_us);
  elem(b, "senderName", sender_name(v, inc, l));
  gw_buf_puts(b, "<headline>");
  headline(b, v, inc, t, l);
  gw_buf_puts(b, "</headline>\n");
  if (inc->description && inc->description[0]) elem(b, "description", inc->description);
  if (inc->merged_into[0]) {
    gw_buf_puts(b, "<instruction>");
    gw_buf_puts(b, l->zh ? "本事件已并入 " : "This incident was merged into ");
    text(b, inc->merged_into);
    gw_buf_puts(b, l->zh ? "，请关注：" : "; follow ");
    cap_url(b, o, inc->merged_into);
    gw_buf_puts(b, "</instruction>\n");
  }
  gw_buf_puts(b, "<web>");
  cap_url(b, o, inc->id);
  gw_buf_puts(b, "</web>\n");
  pair(b, "parameter", "linkage:incident_id", inc->id);
  char pos[24];
  snprintf(pos, sizeof pos, "%" PRIu64, t->last->position);
  pair(b, "parameter", "linkage:position", pos);
  pair(b, "parameter", "linkage:state", lk_state_name(inc->state));
  const char *sev = lk_severity_name(inc->severity);
  if (sev) pair(b, "parameter", "linkage:severity", sev);
  const char *tier = lk_tier_name(inc->tier);
  if (tier) pair(b, "parameter", "linkage:tier", tier);
  if (inc->organisation_id[0]) pair(b, "parameter", "linkage:organisation", inc->organisation_id);
  if (inc->merged_into[0]) pair(b, "parameter", "linkage:merged_into", inc->merged_into);
  if (inc->lead_unit[0]) pair(b, "parameter", "linkage:lead_unit", inc->lead_unit);
  struct gw_buf m;
  gw_buf_init(&m);
  gw_incident_missing_text(&m, inc, "");
  if (m.len && !m.failed) pair(b, "parameter", "linkage:missing", m.data);
  gw_buf_free(&m);
  area(b, v, inc, l);
  gw_buf_puts(b, "</info>\n");
}

void gw_cap_alert(struct gw_buf *b, const struct gw_view *v, const struct gw_incident *inc,
                  const struct gw_cap_opts *o) {
  struct thread t;
  thread_of(inc, &t);
  const char *sender = o->sender ? o->sender : "";
  char sent[32];
  gw_time_format(t.last->at_us, sent);

  gw_buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<alert xmlns=\"" CAP_NS "\">\n");
  gw_buf_puts(b, "<identifier>");
  identifier(b, inc, t.last);
  gw_buf_puts(b, "</identifier>\n");
  elem(b, "sender", sender);
  elem(b, "sent", sent);
  elem(b, "status", inc->exercise ? "Exercise" : "Actual");
  /* Cancel needs something to cancel: a thread whose first message already ends it stays an
   * Alert (gw_view.c always records the report first, so this is a guard, not a case). */
  elem(b, "msgType", t.count < 2 ? "Alert" : t.ended ? "Cancel" : "Update");
  elem(b, "scope", "Public");
  if (t.last->detail[0]) {
    const char *type = lk_event_type_name(t.last->type);
    gw_buf_puts(b, "<note>");
    text(b, type ? type : "");
    gw_buf_puts(b, ": ");
    text(b, t.last->detail);
    gw_buf_puts(b, "</note>\n");
  }
  references(b, inc, &t, sender);
  elem(b, "incidents", inc->id);
  info(b, v, inc, &t, o, &en);
  info(b, v, inc, &t, o, &zh);
  gw_buf_puts(b, "</alert>\n");
}

/* ---- Atom ---- */

struct entry {
  int64_t updated;
  uint64_t position;
  uint32_t slot;
};

/* Newest first; the later ledger position first among equal times, so the order is stable. */
static int newer_first(const void *pa, const void *pb) {
  const struct entry *a = pa, *b = pb;
  if (a->updated != b->updated) return a->updated > b->updated ? -1 : 1;
  if (a->position != b->position) return a->position > b->position ? -1 : 1;
  return 0;
}

static void atom_entry(struct gw_buf *b, const struct gw_view *v, const struct gw_incident *inc,
                       const struct gw_cap_opts *o, const char *district) {
  struct thread t;
  thread_of(inc, &t);
  gw_buf_puts(b, "<entry>\n<id>urn:linkage:");
  text(b, district);
  gw_buf_puts(b, ":incident:");
  text(b, inc->id);
  gw_buf_puts(b, "</id>\n<title>");
  headline(b, v, inc, &t, &en);
  gw_buf_puts(b, "</title>\n");
  time_elem(b, "updated", inc->updated_at_us > 0 ? inc->updated_at_us : inc->reported_at_us);
  if (inc->reported_at_us > 0) time_elem(b, "published", inc->reported_at_us);
  const char *category = lk_category_name(inc->category);
  if (category) {
    gw_buf_puts(b, "<category scheme=\"urn:linkage:category\" term=\"");
    text(b, category);
    gw_buf_puts(b, "\"/>\n");
  }
  const char *tier = lk_tier_name(inc->tier);
  gw_buf_puts(b, "<summary>");
  gw_buf_printf(b, "%s, %s", lk_state_name(inc->state), tier ? tier : "not routed");
  if (tier) gw_buf_puts(b, " tier");
  if (inc->description && inc->description[0]) {
    gw_buf_puts(b, ": ");
    text(b, inc->description);
  }
  gw_buf_puts(b, "</summary>\n<link rel=\"alternate\" type=\"application/cap+xml\" href=\"");
  cap_url(b, o, inc->id);
  gw_buf_puts(b, "\"/>\n</entry>\n");
}

void gw_cap_atom(struct gw_buf *b, const struct gw_view *v, const struct gw_cap_opts *o,
                 int64_t now_us, unsigned limit) {
  const char *district = v->district ? v->district->district.id : "linkage";
  struct entry *all = NULL;
  size_t n = 0;
  if (v->count > 1 && limit > 0) {
    all = malloc((size_t)(v->count - 1) * sizeof *all);
    if (!all) {
      b->failed = 1;
      return;
    }
    for (uint32_t i = 1; i < v->count; i++)
      all[n++] = (struct entry){v->incidents[i].updated_at_us, v->incidents[i].last_position, i};
    qsort(all, n, sizeof *all, newer_first);
    if (n > limit) n = limit;
  }
  gw_buf_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"" ATOM_NS "\">\n");
  gw_buf_puts(b, "<id>urn:linkage:");
  text(b, district);
  gw_buf_puts(b, ":cap</id>\n<title>");
  text(b, v->district ? v->district->district.name : "Linkage");
  gw_buf_puts(b, ": incidents (CAP 1.2)</title>\n");
  /* The feed changed last when its newest entry did. */
  time_elem(b, "updated", n > 0 && all[0].updated > 0 ? all[0].updated : now_us);
  gw_buf_puts(b, "<author><name>");
  text(b, o->sender ? o->sender : "linkage");
  gw_buf_puts(b, "</name></author>\n<link rel=\"self\" type=\"application/atom+xml\" href=\"");
  text(b, o->base_url ? o->base_url : "");
  gw_buf_puts(b, "/cap/index.atom\"/>\n");
  for (size_t i = 0; i < n; i++)
    atom_entry(b, v, &v->incidents[all[i].slot], o, district);
  gw_buf_puts(b, "</feed>\n");
  free(all);
}
