#ifndef LINKAGE_BENCH_REPORT_H
#define LINKAGE_BENCH_REPORT_H

/* The one Report every spine benchmark sends or stores, so the raw ZeroMQ
 * figure, the raw COPY figure and the real path all move the same bytes. */

#include <stddef.h>
#include <stdint.h>

#include "linkage/v1/report.pb-c.h"

static inline void bench_report_fill(Linkage__V1__Report *r, Linkage__V1__Location *loc,
                                     const char *device, uint64_t seq, int64_t observed_at_us) {
  linkage__v1__report__init(r);
  linkage__v1__location__init(loc);
  loc->compound_id = "lijinggang";
  loc->building = "7";
  loc->unit = "2";
  loc->floor = 1;
  loc->lat = 30.6812;
  loc->lon = 103.8561;
  r->device_id = (char *)device;
  r->sequence = seq;
  r->category = LINKAGE__V1__CATEGORY__LATENT_HAZARD;
  r->kind = "flooding";
  r->severity = LINKAGE__V1__SEVERITY__SEVERITY_IV;
  r->location = loc;
  r->description = "water seeping into basement car park B2 near lift lobby, about 2 cm deep";
  r->observed_at_us = observed_at_us;
}

#endif
