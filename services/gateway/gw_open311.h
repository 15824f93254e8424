#ifndef LINKAGE_GW_OPEN311_H
#define LINKAGE_GW_OPEN311_H

/* Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) over the gateway's projection:
 * one service per incident category, incidents as service requests, and POST requests as a
 * second way in for reports (the same Report, the same validation, the same idempotency key
 * as the ZeroMQ intake). A pure core: no sockets, no clocks. The shell routes the request
 * (gw_open311_route), checks the token, calls one function below, and answers with the HTTP
 * status it returns and the document it wrote: JSON (xml == 0, application/json) or XML
 * (xml == 1, text/xml; charset=utf-8). Errors are Open311 error documents:
 *   JSON [{"code":400,"description":"..."}]
 *   XML  <errors><error><code>400</code><description>...</description></error></errors> */

#include <stdint.h>

#include "gateway.h"
#include "linkage/report.h"

#define GW_OPEN311_MAX_RESULTS 1000 /* the spec's default cap on GET requests */
#define GW_OPEN311_DEFAULT_DAYS 90  /* the spec's default window without start_date */
#define GW_OPEN311_MAX_IDS 1000     /* ids in one service_request_id list */

/* ---- routing: the path after "/open311/v2/" ---- */

enum gw_open311_what {
  GW_OPEN311_SERVICES = 1, /* services.json|xml */
  GW_OPEN311_SERVICE_DEF,  /* services/{service_code}.json|xml */
  GW_OPEN311_REQUESTS,     /* requests.json|xml (GET list, POST create) */
  GW_OPEN311_REQUEST,      /* requests/{service_request_id}.json|xml */
};

struct gw_open311_route {
  enum gw_open311_what what;
  int xml;     /* 1 for .xml, 0 for .json */
  char id[72]; /* the service code or request id (SERVICE_DEF, REQUEST); "" otherwise */
};

/* Splits e.g. "requests/inc-0a1b.json". Returns 0, or -1 when the path is none of the
 * above (the shell answers 404 with gw_open311_error). */
int gw_open311_route(const char *path, struct gw_open311_route *out);

/* ---- documents ---- */

/* An Open311 error document; returns `code` so a caller can `return gw_open311_error(...)`.
 * The shell uses it too, for 401/403/404 on /open311/ paths. */
int gw_open311_error(struct gw_buf *b, int xml, int code, const char *description);

/* GET services: every category as a service. arg may be NULL; when given, a jurisdiction_id
 * other than the district's id is a 400. Returns 200 or 400. */
int gw_open311_services(struct gw_buf *b, int xml, const struct lk_district *d, gw_arg_fn arg,
                        void *ctx);

/* GET services/{code}: the attributes a POST takes. 200, or 404 for an unknown code. */
int gw_open311_service_definition(struct gw_buf *b, int xml, const struct lk_district *d,
                                  const char *code);

/* GET requests: incidents as service requests, newest reported first, filtered by the spec's
 * arguments: service_request_id (comma list; overrides every other filter), service_code
 * (comma list), status (open|closed, comma list), start_date / end_date (W3C datetimes,
 * on requested_datetime, both inclusive; without start_date the window starts
 * GW_OPEN311_DEFAULT_DAYS before end_date or now), at most GW_OPEN311_MAX_RESULTS results.
 * Returns 200, or 400 with an error document naming the bad argument. */
int gw_open311_requests(struct gw_buf *b, int xml, const struct gw_view *v, gw_arg_fn arg,
                        void *ctx, int64_t now_us);

/* GET requests/{id}: an array of one request; 404 when unknown. */
int gw_open311_request(struct gw_buf *b, int xml, const struct gw_view *v, const char *id);

/* ---- POST requests ---- */

/* What a parsed POST's strings live in (the Report points into it). Caller-owned; a
 * plain struct, nothing to free. */
struct gw_open311_post_store {
  Linkage__V1__Location location;
  char device_id[LK_DEVICE_ID_MAX + 1];
  char kind[LK_KIND_MAX + 1];
  char compound_id[LK_LOCATION_FIELD_MAX + 1];
  char building[LK_LOCATION_FIELD_MAX + 1];
  char unit[LK_LOCATION_FIELD_MAX + 1];
  char description[LK_DESCRIPTION_MAX + 1];
};

/* Reads a POST's form fields into *r (strings point into *store) and runs lk_report_check on
 * it, with d for the compound lookup. Fields: service_code (a category), address_id (a
 * compound id), device_id, attribute[sequence] (required); description, attribute[kind],
 * attribute[severity] (I..IV, default IV), lat and long (both or neither),
 * attribute[building], attribute[unit], attribute[floor] (optional). observed_at_us = now_us.
 * Returns LK_OK, or LK_EINVAL with err saying which field and why (for a 400). */
int gw_open311_parse_post(gw_arg_fn arg, void *ctx, const struct lk_district *d, int64_t now_us,
                          Linkage__V1__Report *r, struct gw_open311_post_store *store, char *err,
                          size_t errlen);

/* The answer to a POST once intake answered (ack NULL: it did not answer in time):
 * ACCEPTED 201 and DUPLICATE 200 with [{"service_request_id": incident id, "service_notice":
 * ...}]; REJECTED 400, BUSY 503 (the shell adds Retry-After from ack->retry_after_ms), no
 * answer 503, anything else 502, each with an error document. Returns the HTTP status. */
int gw_open311_post_reply(struct gw_buf *b, int xml, const Linkage__V1__ReportAck *ack);

#endif
