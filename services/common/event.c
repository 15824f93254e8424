#include "linkage/event.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "linkage/error.h"
#include "linkage/lifecycle.h"

/* The names are the life cycle's (include/linkage/lifecycle.h): one table for every reader. */
const char *lk_event_type_name(Linkage__V1__EventType t) {
  const struct lk_lifecycle_row *r = lk_lifecycle_row(t);
  return r ? r->name : NULL;
}

static const char *const category_names[] = {NULL,
                                             "natural_disaster",
                                             "accident_disaster",
                                             "public_health",
                                             "social_safety",
                                             "property_service",
                                             "neighbour_dispute",
                                             "latent_hazard"};
#define CATEGORY_COUNT (sizeof category_names / sizeof category_names[0])

const char *lk_category_name(Linkage__V1__Category c) {
  return (unsigned)c < CATEGORY_COUNT ? category_names[c] : NULL;
}

static const char *const severity_names[] = {NULL, "I", "II", "III", "IV"};

const char *lk_severity_name(Linkage__V1__Severity s) {
  return (unsigned)s < 5 ? severity_names[s] : NULL;
}

static const char *const tier_names[] = {NULL, "compound", "community", "street", "district"};

const char *lk_tier_name(Linkage__V1__Tier t) {
  return (unsigned)t < 5 ? tier_names[t] : NULL;
}

Linkage__V1__Category lk_category_parse(const char *s) {
  for (unsigned i = 1; i < CATEGORY_COUNT; i++)
    if (strcasecmp(s, category_names[i]) == 0) return (Linkage__V1__Category)i;
  return LINKAGE__V1__CATEGORY__CATEGORY_UNSPECIFIED;
}

Linkage__V1__Severity lk_severity_parse(const char *s) {
  for (unsigned i = 1; i < 5; i++) {
    char proto[16];
    snprintf(proto, sizeof proto, "severity_%s", severity_names[i]);
    if (strcasecmp(s, severity_names[i]) == 0 || strcasecmp(s, proto) == 0)
      return (Linkage__V1__Severity)i;
  }
  return LINKAGE__V1__SEVERITY__SEVERITY_UNSPECIFIED;
}

void lk_incident_id(const char *device_id, uint64_t sequence, char *out) {
  crypto_hash_sha256_state st;
  uint8_t digest[32];
  char seq[24];
  int n = snprintf(seq, sizeof seq, "%" PRIu64, sequence);
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, (const uint8_t *)device_id, strlen(device_id));
  crypto_hash_sha256_update(&st, (const uint8_t *)"", 1);
  crypto_hash_sha256_update(&st, (const uint8_t *)seq, (size_t)n);
  crypto_hash_sha256_final(&st, digest);
  static const char digits[] = "0123456789abcdef";
  memcpy(out, "inc-", 4);
  for (int i = 0; i < 10; i++) {
    out[4 + 2 * i] = digits[digest[i] >> 4];
    out[5 + 2 * i] = digits[digest[i] & 15];
  }
  out[24] = '\0';
}

int lk_event_id(char *out, size_t len, const char *incident_id, Linkage__V1__EventType type,
                const char *qualifier, uint64_t counter) {
  const char *name = lk_event_type_name(type);
  if (!name) return LK_EINVAL;
  int n = snprintf(out, len, "%s/%s", incident_id, name);
  if (n > 0 && qualifier)
    n += snprintf(out + n, len > (size_t)n ? len - (size_t)n : 0, "/%s", qualifier);
  if (n > 0 && counter)
    n += snprintf(out + n, len > (size_t)n ? len - (size_t)n : 0, "/%" PRIu64, counter);
  return (n < 0 || (size_t)n >= len) ? LK_EINVAL : LK_OK;
}

void lk_event_envelope(Linkage__V1__Event *ev, const char *event_id, const char *incident_id,
                       Linkage__V1__EventType type, int64_t at_us, const char *actor) {
  linkage__v1__event__init(ev);
  ev->event_id = (char *)event_id;
  ev->incident_id = (char *)incident_id;
  ev->type = type;
  ev->at_us = at_us;
  ev->actor = (char *)actor;
  ev->body_case = lk_event_body_for(type);
}

uint8_t *lk_event_pack(const Linkage__V1__Event *ev, size_t *len) {
  size_t n = linkage__v1__event__get_packed_size(ev);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return NULL;
  *len = linkage__v1__event__pack(ev, buf);
  return buf;
}

Linkage__V1__Event__BodyCase lk_event_body_for(Linkage__V1__EventType t) {
  switch (t) {
  case LINKAGE__V1__EVENT_TYPE__REPORTED: return LINKAGE__V1__EVENT__BODY_REPORTED;
  case LINKAGE__V1__EVENT_TYPE__MERGED: return LINKAGE__V1__EVENT__BODY_MERGED;
  case LINKAGE__V1__EVENT_TYPE__ROUTED: return LINKAGE__V1__EVENT__BODY_ROUTED;
  case LINKAGE__V1__EVENT_TYPE__ESCALATED: return LINKAGE__V1__EVENT__BODY_ESCALATED;
  case LINKAGE__V1__EVENT_TYPE__SEVERITY_CHANGED: return LINKAGE__V1__EVENT__BODY_SEVERITY_CHANGED;
  case LINKAGE__V1__EVENT_TYPE__DISPATCHED: return LINKAGE__V1__EVENT__BODY_DISPATCHED;
  case LINKAGE__V1__EVENT_TYPE__UNIT_ACKNOWLEDGED:
    return LINKAGE__V1__EVENT__BODY_UNIT_ACKNOWLEDGED;
  case LINKAGE__V1__EVENT_TYPE__UNIT_DECLINED: return LINKAGE__V1__EVENT__BODY_UNIT_DECLINED;
  case LINKAGE__V1__EVENT_TYPE__UNIT_ON_SCENE: return LINKAGE__V1__EVENT__BODY_UNIT_ON_SCENE;
  case LINKAGE__V1__EVENT_TYPE__UNIT_RESOLVED: return LINKAGE__V1__EVENT__BODY_UNIT_RESOLVED;
  case LINKAGE__V1__EVENT_TYPE__COORDINATOR_NOTE: return LINKAGE__V1__EVENT__BODY_COORDINATOR_NOTE;
  case LINKAGE__V1__EVENT_TYPE__RESOLVED: return LINKAGE__V1__EVENT__BODY_RESOLVED;
  case LINKAGE__V1__EVENT_TYPE__CLOSED: return LINKAGE__V1__EVENT__BODY_CLOSED;
  case LINKAGE__V1__EVENT_TYPE__ACKNOWLEDGED: return LINKAGE__V1__EVENT__BODY_ACKNOWLEDGED;
  case LINKAGE__V1__EVENT_TYPE__DE_ESCALATED: return LINKAGE__V1__EVENT__BODY_DE_ESCALATED;
  case LINKAGE__V1__EVENT_TYPE__OVERDUE: return LINKAGE__V1__EVENT__BODY_OVERDUE;
  case LINKAGE__V1__EVENT_TYPE__SUPPRESSED: return LINKAGE__V1__EVENT__BODY_SUPPRESSED;
  case LINKAGE__V1__EVENT_TYPE__PLANNED_WORK_DECLARED:
    return LINKAGE__V1__EVENT__BODY_PLANNED_WORK_DECLARED;
  case LINKAGE__V1__EVENT_TYPE__PLANNED_WORK_LIFTED:
    return LINKAGE__V1__EVENT__BODY_PLANNED_WORK_LIFTED;
  case LINKAGE__V1__EVENT_TYPE__NO_UNIT_AVAILABLE:
    return LINKAGE__V1__EVENT__BODY_NO_UNIT_AVAILABLE;
  case LINKAGE__V1__EVENT_TYPE__BACKUP_REQUESTED: return LINKAGE__V1__EVENT__BODY_BACKUP_REQUESTED;
  case LINKAGE__V1__EVENT_TYPE__KEY_REVOKED: return LINKAGE__V1__EVENT__BODY_KEY_REVOKED;
  case LINKAGE__V1__EVENT_TYPE__CALL_REQUESTED: return LINKAGE__V1__EVENT__BODY_CALL_REQUESTED;
  default: return LINKAGE__V1__EVENT__BODY__NOT_SET;
  }
}

Linkage__V1__Tier lk_event_no_unit_tier(const Linkage__V1__Event *ev) {
  if (ev->no_unit_available->tier) return ev->no_unit_available->tier;
  const char *last = strrchr(ev->event_id, '/');
  for (unsigned t = 1; last && t < 5; t++)
    if (strcmp(last + 1, tier_names[t]) == 0) return (Linkage__V1__Tier)t;
  return LINKAGE__V1__TIER__TIER_UNSPECIFIED;
}

int lk_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    unsigned c = *p;
    size_t need;
    uint32_t cp, min;
    if (c < 0x80) {
      p++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      need = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      need = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      need = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if ((size_t)(end - p) <= need) return 0;
    for (size_t i = 1; i <= need; i++) {
      if ((p[i] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    p += need + 1;
  }
  return 1;
}

int lk_id_valid(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') return 0;
  }
  return 1;
}

/* The values every consumer indexes tables with: an event the ledger commits is folded by every
 * service, so an out-of-range enum must stop here, not in each of them. */
static int check_body(const Linkage__V1__Event *ev, char *err, size_t errlen) {
  const char *bad = NULL;
  switch (ev->body_case) {
  case LINKAGE__V1__EVENT__BODY_REPORTED: {
    const Linkage__V1__Report *r = ev->reported->report;
    if (!r || !r->location) bad = "reported needs a report with a location";
    /* It becomes a text column: bytes PostgreSQL refuses would stall the whole batch. */
    else if (!lk_id_valid(r->location->compound_id, 64))
      bad = "reported: location.compound_id must be 1-64 printable ASCII characters";
    else if (!lk_category_name(r->category))
      bad = "reported: category is not a known category";
    else if (!lk_severity_name(r->severity))
      bad = "reported: severity is not I, II, III or IV";
    break;
  }
  case LINKAGE__V1__EVENT__BODY_ROUTED:
    if (!lk_tier_name(ev->routed->tier)) bad = "routed: tier is not a known tier";
    break;
  case LINKAGE__V1__EVENT__BODY_ESCALATED:
  case LINKAGE__V1__EVENT__BODY_DE_ESCALATED: {
    const Linkage__V1__Escalated *e =
        ev->body_case == LINKAGE__V1__EVENT__BODY_ESCALATED ? ev->escalated : ev->de_escalated;
    if (!lk_tier_name(e->from_tier) || !lk_tier_name(e->to_tier))
      bad = "escalated: from_tier and to_tier must be known tiers";
    break;
  }
  case LINKAGE__V1__EVENT__BODY_SEVERITY_CHANGED:
    if (!lk_severity_name(ev->severity_changed->from_severity) ||
        !lk_severity_name(ev->severity_changed->to_severity))
      bad = "severity_changed: severities must be I, II, III or IV";
    break;
  case LINKAGE__V1__EVENT__BODY_OVERDUE:
    if (!lk_tier_name(ev->overdue->tier)) bad = "overdue: tier is not a known tier";
    break;
  case LINKAGE__V1__EVENT__BODY_MERGED:
    if (!lk_id_valid(ev->merged->into_incident_id, LK_ID_MAX - 1))
      bad = "merged: into_incident_id must be an incident id";
    break;
  case LINKAGE__V1__EVENT__BODY_NO_UNIT_AVAILABLE:
    if (ev->no_unit_available->tier && !lk_tier_name(ev->no_unit_available->tier))
      bad = "no_unit_available: tier is not a known tier";
    break;
  case LINKAGE__V1__EVENT__BODY_CALL_REQUESTED: {
    const Linkage__V1__CallRequested *c = ev->call_requested;
    /* Both become parts of assignment and event ids, where '/' separates the parts. */
    if (!lk_id_valid(c->role, 31) || strchr(c->role, '/'))
      bad = "call_requested: role must be a unit type of 1-31 characters";
    else if (c->unit_id[0] && (!lk_id_valid(c->unit_id, LK_ID_MAX - 1) || strchr(c->unit_id, '/')))
      bad = "call_requested: unit_id must be empty or a unit id";
    break;
  }
  case LINKAGE__V1__EVENT__BODY_KEY_REVOKED: {
    const Linkage__V1__KeyRevoked *k = ev->key_revoked;
    if (strcmp(k->kind, "device") != 0 && strcmp(k->kind, "unit") != 0 &&
        strcmp(k->kind, "subscriber") != 0)
      bad = "key_revoked: kind must be device, unit or subscriber";
    else if (!lk_id_valid(k->id, LK_ID_MAX - 1))
      bad = "key_revoked: id must be a device or unit id";
    else if (strlen(k->public_key) != 40 || !lk_id_valid(k->public_key, 40))
      bad = "key_revoked: public_key must be 40 Z85 characters";
    break;
  }
  default: break;
  }
  if (!bad) return LK_OK;
  snprintf(err, errlen, "%s", bad);
  return LK_EINVAL;
}

int lk_event_check(const Linkage__V1__Event *ev, char *err, size_t errlen) {
  if (!lk_id_valid(ev->event_id, 255)) {
    snprintf(err, errlen, "event_id must be 1-255 printable ASCII characters without spaces");
    return LK_EINVAL;
  }
  if (!lk_id_valid(ev->incident_id, LK_ID_MAX - 1)) {
    snprintf(err, errlen, "incident_id must be 1-%d printable ASCII characters without spaces",
             LK_ID_MAX - 1);
    return LK_EINVAL;
  }
  if (!lk_event_type_name(ev->type)) {
    snprintf(err, errlen, "type %d is not a known event type", (int)ev->type);
    return LK_EINVAL;
  }
  if (ev->body_case != lk_event_body_for(ev->type)) {
    snprintf(err, errlen, "body does not match type \"%s\"", lk_event_type_name(ev->type));
    return LK_EINVAL;
  }
  if (ev->at_us <= 0) {
    snprintf(err, errlen, "at_us must be set");
    return LK_EINVAL;
  }
  if (!lk_utf8_valid(ev->actor, strlen(ev->actor)) || strlen(ev->actor) > 255) {
    snprintf(err, errlen, "actor must be UTF-8, at most 255 bytes");
    return LK_EINVAL;
  }
  return check_body(ev, err, errlen);
}
