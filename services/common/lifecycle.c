/* The life-cycle table of include/linkage/lifecycle.h, as data. */
#include "linkage/lifecycle.h"

#define ROW(e, word, st, ms, en, zh)                                                               \
  {LINKAGE__V1__EVENT_TYPE__##e, #word, LK_STATE_##st, LK_MILESTONE_##ms, en, zh},
static const struct lk_lifecycle_row rows[] = {LK_LIFECYCLE(ROW)};
#undef ROW
#define ROW_COUNT (sizeof rows / sizeof rows[0])

#define STATE(e, word, en, zh) {#word, en, zh},
static const struct { const char *name, *label, *label_zh; } states[] = {LK_STATES(STATE)};
#undef STATE

/* The table lists the types in EventType order from 1; checked once by the unit test. */
const struct lk_lifecycle_row *lk_lifecycle_rows(size_t *n) {
  *n = ROW_COUNT;
  return rows;
}

const struct lk_lifecycle_row *lk_lifecycle_row(Linkage__V1__EventType t) {
  if ((unsigned)t >= 1 && (unsigned)t <= ROW_COUNT && rows[t - 1].type == t) return &rows[t - 1];
  for (size_t i = 0; i < ROW_COUNT; i++)
    if (rows[i].type == t) return &rows[i];
  return 0;
}

int lk_lifecycle_state(Linkage__V1__EventType t) {
  const struct lk_lifecycle_row *r = lk_lifecycle_row(t);
  return r ? r->state : LK_STATE_KEEP;
}

int lk_lifecycle_next(int state, Linkage__V1__EventType t) {
  int next = lk_lifecycle_state(t);
  if (state == LK_STATE_CLOSED || next == LK_STATE_KEEP) return state;
  if (state == LK_STATE_RESOLVED && next != LK_STATE_CLOSED) return state;
  return next;
}

const char *lk_state_name(int state) {
  return state >= 0 && state < LK_STATE_COUNT ? states[state].name : states[0].name;
}

const char *lk_state_label(int state, int zh) {
  int s = state >= 0 && state < LK_STATE_COUNT ? state : 0;
  return zh ? states[s].label_zh : states[s].label;
}

int lk_state_over(int state) {
  return state == LK_STATE_RESOLVED || state == LK_STATE_CLOSED;
}
