#ifndef LINKAGE_EVENT_H
#define LINKAGE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "linkage/v1/event.pb-c.h"
#include "linkage/v1/ledger.pb-c.h"
#include "linkage/v1/report.pb-c.h"

/* Names and identities shared by every service. The lower-case names are the
 * SQL words fixed by CONTRACT.md. */

#define LK_ID_MAX 128 /* room for any incident, event or assignment id */

/* "reported", "routed", ...; NULL for an unknown value. */
const char *lk_event_type_name(Linkage__V1__EventType t);
/* "natural_disaster", ...; NULL for UNSPECIFIED or unknown. */
const char *lk_category_name(Linkage__V1__Category c);
/* "I" .. "IV"; NULL for UNSPECIFIED or unknown. */
const char *lk_severity_name(Linkage__V1__Severity s);
/* "compound" .. "district"; NULL for UNSPECIFIED or unknown. */
const char *lk_tier_name(Linkage__V1__Tier t);

/* Parses the names above (case-insensitive; categories also accept the
 * proto spelling). Returns 0 (the UNSPECIFIED value) when unknown. */
Linkage__V1__Category lk_category_parse(const char *s);
Linkage__V1__Severity lk_severity_parse(const char *s);

/* The incident a report opens: "inc-" + 20 hex digits of
 * SHA-256(device_id || 0x00 || sequence as decimal). Deterministic, so a
 * retried report names the same incident on any intake, before or after a
 * restart. out must hold LK_ID_MAX bytes. */
void lk_incident_id(const char *device_id, uint64_t sequence, char *out);

/* Event ids: "<incident_id>/<type>" and, when qualifier is not NULL,
 * "/<qualifier>", and when counter > 0, "/<counter>". A step redone after a
 * crash computes the same id and the ledger drops the repeat. */
int lk_event_id(char *out, size_t len, const char *incident_id, Linkage__V1__EventType type,
                const char *qualifier, uint64_t counter);

/* Initialises ev as an envelope of `type` with the body case the type needs;
 * ev borrows the strings. The caller then points the body at its message. */
void lk_event_envelope(Linkage__V1__Event *ev, const char *event_id, const char *incident_id,
                       Linkage__V1__EventType type, int64_t at_us, const char *actor);

/* Packs a message into a malloc'd buffer; *len gets its size. NULL on ENOMEM. */
uint8_t *lk_event_pack(const Linkage__V1__Event *ev, size_t *len);

/* The body case that must accompany each event type (checked by the ledger). */
Linkage__V1__Event__BodyCase lk_event_body_for(Linkage__V1__EventType t);

/* The tier a no_unit_available was written for: its tier field, or for events written before
 * that field the last part of its id ("<incident>/no_unit_available/<role>/<tier>");
 * TIER_UNSPECIFIED when neither says. */
Linkage__V1__Tier lk_event_no_unit_tier(const Linkage__V1__Event *ev);

/* Checks an event a service asks the ledger to append: ids present, sane and
 * UTF-8, type known, body matching type. Returns LK_OK or LK_EINVAL with why. */
int lk_event_check(const Linkage__V1__Event *ev, char *err, size_t errlen);

/* An id that travels into SQL columns, logs, topics and other ids: 1..max
 * printable ASCII characters, no space, quote or backslash. */
int lk_id_valid(const char *s, size_t max);

/* UTF-8 validity (no overlongs, no surrogates, <= U+10FFFF). */
int lk_utf8_valid(const char *s, size_t len);

#endif
