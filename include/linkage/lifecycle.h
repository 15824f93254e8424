#ifndef LINKAGE_LIFECYCLE_H
#define LINKAGE_LIFECYCLE_H

/* An incident's life cycle, in one table. Every reader of an incident's state is made from it,
 * so none can drift from another: the `incidents` view's SQL (services/ledger/ledger_schema.c
 * writes its CASE and milestone columns from it), the gateway's fold (gw_view.c), the router's
 * and dispatch's notion of an incident that is over, and the dashboard's words (the gateway
 * serves them as /lifecycle.js).
 *
 * The state is the one set by the latest state-changing event, except that resolved and
 * closed are final (lk_lifecycle_next). What the words mean:
 *   unit_resolved  one unit says its own part is done. The incident's state does not change.
 *   resolved       dispatch found the lead resolved and every unit's part done (a grid
 *                  worker's assignment excepted: checking the result is its part). Deadlines
 *                  stop; the verification window starts.
 *   closed         over: verified on site by a grid worker covering the compound (核查: the
 *                  `closed` event's actor is that unit), closed by a coordinator with a reason,
 *                  or closed by dispatch when the verification window passed.
 *   merged         joined another incident: its own life ends (state closed, no milestone). */

#include "linkage/v1/event.pb-c.h"

enum lk_state {
  LK_STATE_REPORTED = 0,
  LK_STATE_ROUTED,
  LK_STATE_DISPATCHED,
  LK_STATE_ACKNOWLEDGED,
  LK_STATE_ON_SCENE,
  LK_STATE_RESOLVED,
  LK_STATE_CLOSED,
  LK_STATE_COUNT,
  LK_STATE_KEEP = -1, /* an event that leaves the state as it was */
};

/* The milestone columns of the view (the first event of each sets it). */
enum lk_milestone {
  LK_MILESTONE_NONE = 0,
  LK_MILESTONE_ACKNOWLEDGED, /* acknowledged_at */
  LK_MILESTONE_ON_SCENE,     /* on_scene_at */
  LK_MILESTONE_RESOLVED,     /* resolved_at */
  LK_MILESTONE_CLOSED,       /* closed_at */
  LK_MILESTONE_COUNT,
};

/* X(ENUM suffix, SQL word, state it sets, milestone, English label, Chinese label). The SQL word
 * is ledger.type (CONTRACT.md); every EventType has exactly one row. */
#define LK_LIFECYCLE(X)                                                                            \
  X(REPORTED, reported, REPORTED, NONE, "reported", "上报")                                        \
  X(MERGED, merged, CLOSED, NONE, "merged", "合并")                                                \
  X(ROUTED, routed, ROUTED, NONE, "routed", "分级")                                                \
  X(ESCALATED, escalated, ROUTED, NONE, "escalated", "升级")                                       \
  X(SEVERITY_CHANGED, severity_changed, KEEP, NONE, "severity changed", "等级变更")                \
  X(DISPATCHED, dispatched, DISPATCHED, NONE, "dispatched", "派单")                                \
  X(UNIT_ACKNOWLEDGED, unit_acknowledged, ACKNOWLEDGED, ACKNOWLEDGED, "unit acknowledged",         \
    "单位接单")                                                                                    \
  X(UNIT_DECLINED, unit_declined, KEEP, NONE, "unit declined", "单位拒单")                         \
  X(UNIT_ON_SCENE, unit_on_scene, ON_SCENE, ON_SCENE, "unit on scene", "单位到场")                 \
  X(UNIT_RESOLVED, unit_resolved, KEEP, NONE, "unit's part done", "单位处置完毕")                  \
  X(COORDINATOR_NOTE, coordinator_note, KEEP, NONE, "note", "备注")                                \
  X(RESOLVED, resolved, RESOLVED, RESOLVED, "resolved", "已处置")                                  \
  X(CLOSED, closed, CLOSED, CLOSED, "closed", "关闭")                                              \
  X(ACKNOWLEDGED, acknowledged, ACKNOWLEDGED, ACKNOWLEDGED, "acknowledged", "受理")                \
  X(DE_ESCALATED, de_escalated, ROUTED, NONE, "de-escalated", "降级")                              \
  X(OVERDUE, overdue, KEEP, NONE, "overdue", "超时")                                               \
  X(SUPPRESSED, suppressed, KEEP, NONE, "escalation held back", "暂缓升级")                        \
  X(PLANNED_WORK_DECLARED, planned_work_declared, KEEP, NONE, "planned work declared", "计划作业") \
  X(PLANNED_WORK_LIFTED, planned_work_lifted, KEEP, NONE, "planned work lifted", "计划作业解除")   \
  X(NO_UNIT_AVAILABLE, no_unit_available, KEEP, NONE, "no unit available", "无可用单位")           \
  X(BACKUP_REQUESTED, backup_requested, KEEP, NONE, "backup requested", "请求增援")                \
  X(KEY_REVOKED, key_revoked, KEEP, NONE, "key revoked", "密钥吊销")                               \
  X(CALL_REQUESTED, call_requested, KEEP, NONE, "called again", "重新呼叫")

/* X(state suffix, SQL word, English label, Chinese label): the incidents.state words. */
#define LK_STATES(X)                                                                               \
  X(REPORTED, reported, "reported", "已上报")                                                      \
  X(ROUTED, routed, "routed", "已分级")                                                            \
  X(DISPATCHED, dispatched, "dispatched", "已派单")                                                \
  X(ACKNOWLEDGED, acknowledged, "acknowledged", "已受理")                                          \
  X(ON_SCENE, on_scene, "on scene", "已到场")                                                      \
  X(RESOLVED, resolved, "resolved", "已处置")                                                      \
  X(CLOSED, closed, "closed", "已关闭")

struct lk_lifecycle_row {
  Linkage__V1__EventType type;
  const char *name; /* ledger.type */
  int state;        /* enum lk_state, or LK_STATE_KEEP */
  int milestone;    /* enum lk_milestone */
  const char *label, *label_zh;
};

/* Every row, in EventType order of the table above; n gets the count. */
const struct lk_lifecycle_row *lk_lifecycle_rows(size_t *n);
/* The row of a type; NULL for an unknown type. */
const struct lk_lifecycle_row *lk_lifecycle_row(Linkage__V1__EventType t);
/* The state an event of this type leads to, or LK_STATE_KEEP (also for unknown types). */
int lk_lifecycle_state(Linkage__V1__EventType t);
/* The state after an event of type t, from the state before it. Resolved and closed are final:
 * after closed nothing changes it, after resolved only an event that closes (a late answer of a
 * unit does not reopen it). Every fold of incidents uses this. */
int lk_lifecycle_next(int state, Linkage__V1__EventType t);
/* "reported" .. "closed" (the incidents.state words); "reported" for out-of-range values. */
const char *lk_state_name(int state);
const char *lk_state_label(int state, int zh);
/* 1 for resolved and closed: no deadline runs, nothing more is dispatched. */
int lk_state_over(int state);

#endif
