/* Coordinator actions from the dashboard become the same router Commands linkagectl sends
 * (proto/linkage/v1/command.proto): one path, one judge. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "linkage/error.h"

static const char *opt(gw_arg_fn arg, void *ctx, const char *key) {
  const char *v = arg(ctx, key);
  return v ? v : "";
}

/* A time in milliseconds since the epoch, as the page sends it. */
static int parse_ms(const char *s, int64_t *us) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || v <= 0 || v > 253402300799000LL) return -1; /* up to year 9999 */
  *us = (int64_t)v * 1000;
  return 0;
}

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    snprintf(err, errlen, __VA_ARGS__);                                                            \
    return LK_EINVAL;                                                                              \
  } while (0)

int gw_command_build(const struct gw_route *r, gw_arg_fn arg, void *ctx, const char *actor,
                     const char *generated_id, struct gw_command *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  linkage__v1__command__init(&out->cmd);
  Linkage__V1__Command *c = &out->cmd;
  const char *id = arg(ctx, "command_id");
  snprintf(out->command_id, sizeof out->command_id, "%s", id && *id ? id : generated_id);
  if (id && strlen(id) > 64) FAIL("command_id must be 1-64 printable characters");
  c->command_id = out->command_id;
  c->actor = (char *)actor;
  c->incident_id = "";

  if (r->kind == GW_R_WINDOW_DECLARE) {
    Linkage__V1__PlannedWork *p = &out->body.planned;
    linkage__v1__planned_work__init(p);
    const char *wid = arg(ctx, "window_id");
    p->window_id = (char *)(wid && *wid ? wid : out->command_id);
    p->compound_id = (char *)opt(arg, ctx, "compound");
    p->building = (char *)opt(arg, ctx, "building");
    p->kind = (char *)opt(arg, ctx, "kind");
    p->reason = (char *)opt(arg, ctx, "reason");
    if (!p->compound_id[0]) FAIL("a planned-work window needs a compound");
    if (parse_ms(arg(ctx, "from"), &p->from_us) != 0 || parse_ms(arg(ctx, "to"), &p->to_us) != 0)
      FAIL("from and to must be times in milliseconds since the epoch");
    c->body_case = LINKAGE__V1__COMMAND__BODY_DECLARE_PLANNED_WORK;
    c->declare_planned_work = p;
    return LK_OK;
  }
  if (r->kind == GW_R_WINDOW_LIFT) {
    Linkage__V1__LiftPlannedWorkCommand *l = &out->body.lift;
    linkage__v1__lift_planned_work_command__init(l);
    l->window_id = (char *)r->id;
    l->reason = (char *)opt(arg, ctx, "reason");
    c->body_case = LINKAGE__V1__COMMAND__BODY_LIFT_PLANNED_WORK;
    c->lift_planned_work = l;
    return LK_OK;
  }
  if (r->kind != GW_R_ACTION) FAIL("not an action");
  c->incident_id = (char *)r->id;
  if (strcmp(r->action, "acknowledge") == 0) {
    linkage__v1__acknowledge_command__init(&out->body.acknowledge);
    out->body.acknowledge.note = (char *)opt(arg, ctx, "note");
    c->body_case = LINKAGE__V1__COMMAND__BODY_ACKNOWLEDGE;
    c->acknowledge = &out->body.acknowledge;
  } else if (strcmp(r->action, "escalate") == 0) {
    linkage__v1__escalate_command__init(&out->body.escalate);
    out->body.escalate.reason = (char *)opt(arg, ctx, "reason");
    c->body_case = LINKAGE__V1__COMMAND__BODY_ESCALATE;
    c->escalate = &out->body.escalate;
  } else if (strcmp(r->action, "de-escalate") == 0) {
    linkage__v1__de_escalate_command__init(&out->body.de_escalate);
    out->body.de_escalate.reason = (char *)opt(arg, ctx, "reason");
    c->body_case = LINKAGE__V1__COMMAND__BODY_DE_ESCALATE;
    c->de_escalate = &out->body.de_escalate;
  } else if (strcmp(r->action, "merge") == 0) {
    linkage__v1__merge_command__init(&out->body.merge);
    out->body.merge.into_incident_id = (char *)opt(arg, ctx, "into");
    if (!out->body.merge.into_incident_id[0]) FAIL("merge needs the incident to merge into (into)");
    c->body_case = LINKAGE__V1__COMMAND__BODY_MERGE;
    c->merge = &out->body.merge;
  } else if (strcmp(r->action, "close") == 0) {
    linkage__v1__close_command__init(&out->body.close);
    out->body.close.reason = (char *)opt(arg, ctx, "reason");
    if (!out->body.close.reason[0]) FAIL("closing needs a reason");
    c->body_case = LINKAGE__V1__COMMAND__BODY_CLOSE;
    c->close = &out->body.close;
  } else if (strcmp(r->action, "note") == 0) {
    linkage__v1__note_command__init(&out->body.note);
    out->body.note.text = (char *)opt(arg, ctx, "text");
    if (!out->body.note.text[0]) FAIL("a note needs text");
    c->body_case = LINKAGE__V1__COMMAND__BODY_NOTE;
    c->note = &out->body.note;
  } else if (strcmp(r->action, "call") == 0) {
    linkage__v1__call_command__init(&out->body.call);
    out->body.call.role = (char *)opt(arg, ctx, "role");
    out->body.call.unit_id = (char *)opt(arg, ctx, "unit");
    out->body.call.reason = (char *)opt(arg, ctx, "reason");
    if (!out->body.call.role[0] && !out->body.call.unit_id[0])
      FAIL("a call needs the role (role) or the unit (unit) to call again");
    c->body_case = LINKAGE__V1__COMMAND__BODY_CALL;
    c->call = &out->body.call;
  } else {
    FAIL("unknown action \"%.20s\"", r->action);
  }
  return LK_OK;
}

int gw_command_http_status(const Linkage__V1__CommandReply *reply) {
  switch (reply->status) {
  case LINKAGE__V1__COMMAND_REPLY__STATUS__OK: return 200;
  case LINKAGE__V1__COMMAND_REPLY__STATUS__BUSY: return 503;
  case LINKAGE__V1__COMMAND_REPLY__STATUS__REJECTED:
    if (strstr(reply->error, "unknown incident") || strstr(reply->error, "unknown planned-work"))
      return 404;
    if (strstr(reply->error, " is closed") || strstr(reply->error, " was merged") ||
        strstr(reply->error, "already") || strstr(reply->error, "not routed yet") ||
        strstr(reply->error, " is resolved") || strstr(reply->error, "not open") ||
        strstr(reply->error, "may not go below"))
      return 409;
    return 400;
  default: return 502;
  }
}
