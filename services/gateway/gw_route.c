/* The gateway's URL space, decided in one place: which handler, which token role, which id.
 * Ids are checked here (printable, bounded) so no handler sees a path it did not expect. */
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "gw_open311.h"
#include "linkage/event.h"

static const struct {
  const char *path, *file, *type;
} static_files[] = {
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/index.html", "index.html", "text/html; charset=utf-8"},
    {"/app.js", "app.js", "text/javascript; charset=utf-8"},
    {"/style.css", "style.css", "text/css; charset=utf-8"},
    {"/lifecycle.js", "lifecycle.js", "text/javascript; charset=utf-8"},
};

static const char *const actions[] = {"acknowledge", "escalate", "de-escalate", "merge",
                                      "close",       "note",     "call"};

/* Copies the segment [s, s+n) into out when it is a valid id. */
static int take_id(const char *s, size_t n, char *out, size_t outlen) {
  if (n == 0 || n >= outlen || n > 64) return 0;
  memcpy(out, s, n);
  out[n] = '\0';
  return lk_id_valid(out, 64);
}

/* Strips a ".xml" ending; sets *xml. Returns the length left, or 0 when it has none. */
static size_t format_suffix(const char *s, size_t n, int *xml) {
  if (n > 4 && memcmp(s + n - 4, ".xml", 4) == 0) {
    *xml = 1;
    return n - 4;
  }
  return 0;
}

static int want(const char *method, const char *m, struct gw_route *r, enum gw_route_kind k,
                enum gw_need need) {
  r->kind = k;
  r->need = need;
  return strcmp(method, m) == 0 ? 200 : 405;
}

int gw_route_parse(const char *method, const char *path, struct gw_route *r) {
  memset(r, 0, sizeof *r);
  if (!method || !path) return 404;
  int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
  const char *m = get ? method : "GET";

  for (size_t i = 0; i < sizeof static_files / sizeof static_files[0]; i++)
    if (strcmp(path, static_files[i].path) == 0) {
      r->file = static_files[i].file;
      r->type = static_files[i].type;
      return want(method, m, r, GW_R_STATIC, GW_NEED_NONE);
    }
  if (strcmp(path, "/healthz") == 0) return want(method, m, r, GW_R_HEALTH, GW_NEED_NONE);
  if (strcmp(path, "/api/me") == 0) return want(method, m, r, GW_R_ME, GW_NEED_READ);
  if (strcmp(path, "/api/district") == 0) return want(method, m, r, GW_R_DISTRICT, GW_NEED_READ);
  if (strcmp(path, "/api/stream") == 0) return want(method, m, r, GW_R_STREAM, GW_NEED_READ);
  if (strcmp(path, "/api/incidents") == 0) return want(method, m, r, GW_R_INCIDENTS, GW_NEED_READ);
  if (strcmp(path, "/api/planned-work") == 0) {
    if (strcmp(method, "POST") == 0)
      return want(method, "POST", r, GW_R_WINDOW_DECLARE, GW_NEED_ACT);
    return want(method, m, r, GW_R_WINDOWS, GW_NEED_READ);
  }
  if (strncmp(path, "/api/planned-work/", 18) == 0) {
    const char *id = path + 18, *slash = strchr(id, '/');
    if (!slash || strcmp(slash, "/lift") != 0 ||
        !take_id(id, (size_t)(slash - id), r->id, sizeof r->id))
      return 404;
    return want(method, "POST", r, GW_R_WINDOW_LIFT, GW_NEED_ACT);
  }
  if (strncmp(path, "/api/incidents/", 15) == 0) {
    const char *id = path + 15, *slash = strchr(id, '/');
    if (!slash) {
      if (!take_id(id, strlen(id), r->id, sizeof r->id)) return 404;
      return want(method, m, r, GW_R_INCIDENT, GW_NEED_READ);
    }
    if (!take_id(id, (size_t)(slash - id), r->id, sizeof r->id)) return 404;
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
      if (strcmp(slash + 1, actions[i]) == 0) {
        snprintf(r->action, sizeof r->action, "%s", actions[i]);
        return want(method, "POST", r, GW_R_ACTION, GW_NEED_ACT);
      }
    return 404;
  }
  if (strcmp(path, "/cap/index.atom") == 0) return want(method, m, r, GW_R_CAP_ATOM, GW_NEED_READ);
  if (strncmp(path, "/cap/", 5) == 0) {
    int xml = 0;
    size_t n = format_suffix(path + 5, strlen(path + 5), &xml);
    if (!n || !xml || !take_id(path + 5, n, r->id, sizeof r->id)) return 404;
    return want(method, m, r, GW_R_CAP, GW_NEED_READ);
  }
  if (strncmp(path, "/open311/v2/", 12) == 0) {
    struct gw_open311_route o;
    if (gw_open311_route(path + 12, &o) != 0) return 404;
    r->xml = o.xml;
    snprintf(r->id, sizeof r->id, "%s", o.id);
    switch (o.what) {
    case GW_OPEN311_SERVICES:
    case GW_OPEN311_SERVICE_DEF: return want(method, m, r, GW_R_O311_SERVICES, GW_NEED_READ);
    case GW_OPEN311_REQUEST: return want(method, m, r, GW_R_O311_REQUEST, GW_NEED_READ);
    case GW_OPEN311_REQUESTS:
      if (strcmp(method, "POST") == 0)
        return want(method, "POST", r, GW_R_O311_POST, GW_NEED_REPORT);
      return want(method, m, r, GW_R_O311_REQUESTS, GW_NEED_READ);
    }
    return 404;
  }
  return 404;
}
