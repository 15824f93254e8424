#ifndef LINKAGE_REPORT_H
#define LINKAGE_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "linkage/district.h"
#include "linkage/event.h"

/* Limits of CONTRACT.md, version 1. */
#define LK_DEVICE_ID_MAX 64
#define LK_KIND_MAX 64
#define LK_DESCRIPTION_MAX 2000
#define LK_LOCATION_FIELD_MAX 64 /* location.compound_id, .building, .unit */
#define LK_REPORT_FRAME_MAX 8192 /* a valid Report can never be larger than this */

/* Checks every rule of the contract (required fields, lengths, enums not
 * UNSPECIFIED or unknown, UTF-8 of every string, compound known to the
 * district). Returns LK_OK, or LK_EINVAL with one line saying which rule and
 * why, e.g. "location.compound_id \"x\" is not a compound of this district";
 * several violations are joined by "; ". Each names its field first. With
 * d == NULL the compound is not looked up. */
int lk_report_check(const Linkage__V1__Report *r, const struct lk_district *d, char *err,
                    size_t errlen);

/* protobuf-c hands string fields over as C strings, so a NUL byte inside one
 * silently cuts it short ("ab\0X" would be device "ab"). Walks the encoded
 * Report (already known to unpack) and returns LK_EINVAL, naming the field, if
 * any string field of it or of its Location holds a NUL byte. */
int lk_report_wire_check(const uint8_t *buf, size_t len, char *err, size_t errlen);

#endif
