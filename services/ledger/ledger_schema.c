/* The ledger's schema, created or migrated at every start in one transaction
 * under an advisory lock, so it is idempotent and two starting ledgers do not
 * race. Only statements that are safe to repeat belong here. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ledger.h"
#include "linkage/lifecycle.h"
#include "linkage/token.h" /* the gateway's API tokens */
#include "linkage/zap.h"

const char ledger_schema_sql[] =
    "select pg_advisory_xact_lock(7010);\n"
    "create table if not exists ledger (\n"
    "  position bigint primary key,\n"
    "  event_id text not null unique,\n"
    "  incident_id text not null,\n"
    "  type text not null,\n"
    "  at timestamptz not null,\n"
    "  actor text not null,\n"
    "  category text,\n"
    "  severity text,\n"
    "  tier text,\n"
    "  compound_id text,\n"
    "  payload bytea not null,\n"
    "  prev_hash bytea not null,\n"
    "  hash bytea not null,\n"
    "  committed_at timestamptz not null default now(),\n"
    "  unit_id text,\n"
    "  lead boolean\n"
    ");\n"
    /* Columns added after the first release: a ledger created before them gains them here
     * (nullable, so old rows need no rewrite). */
    "alter table ledger add column if not exists unit_id text;\n"
    "alter table ledger add column if not exists lead boolean;\n"
    "alter table ledger add column if not exists exercise boolean;\n"
    "create index if not exists ledger_incident_position on ledger (incident_id, position);\n"
    /* The CURVE key registry (linkage/zap.h): linkagectl writes it, intake and dispatch read it.
     * The HTTP API tokens (linkage/token.h): linkagectl writes, the gateway reads. */
    LK_KEYS_TABLE_SQL LK_TOKENS_TABLE_SQL
    "create or replace function ledger_refuse_change() returns trigger\n"
    "language plpgsql as $$\n"
    "begin\n"
    "  raise exception 'ledger is append-only: % refused', tg_op\n"
    "    using errcode = 'insufficient_privilege';\n"
    "end\n"
    "$$;\n"
    "create or replace trigger ledger_no_update before update on ledger\n"
    "  for each row execute function ledger_refuse_change();\n"
    "create or replace trigger ledger_no_delete before delete on ledger\n"
    "  for each row execute function ledger_refuse_change();\n"
    "create or replace trigger ledger_no_truncate before truncate on ledger\n"
    "  for each statement execute function ledger_refuse_change();\n";

/* The `incidents` view, written from the life-cycle table (linkage/lifecycle.h) so that it
 * says what the gateway's fold says: the state is the latest state-changing event's, resolved
 * and closed are final; the milestones are the first event of their types. One row per
 * incident; every subquery walks the (incident_id, position) index. The lead shown is the
 * latest lead call whose assignment was not declined ("<incident>/dispatched/<role>/<n>" is
 * declined by "<incident>/unit_declined/<role>/<n>"); missing_roles are the roles dispatch
 * found nobody for at the current tier that still have no live call. */
static void add(char *out, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(char *out, size_t cap, size_t *len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = *len < cap ? vsnprintf(out + *len, cap - *len, fmt, ap) : 0;
  va_end(ap);
  if (n > 0) *len += (size_t)n;
}

/* 'a', 'b' of the types whose row satisfies want(). */
static void type_list(char *out, size_t cap, size_t *len,
                      int (*want)(const struct lk_lifecycle_row *, int), int arg) {
  size_t n;
  const struct lk_lifecycle_row *rows = lk_lifecycle_rows(&n);
  int first = 1;
  for (size_t i = 0; i < n; i++)
    if (want(&rows[i], arg)) {
      add(out, cap, len, "%s'%s'", first ? "" : ", ", rows[i].name);
      first = 0;
    }
  if (first) add(out, cap, len, "''"); /* no type: matches nothing */
}

static int sets_state(const struct lk_lifecycle_row *r, int state) {
  return r->state == state;
}
static int sets_other_state(const struct lk_lifecycle_row *r, int unused) {
  (void)unused;
  return r->state != LK_STATE_KEEP && !lk_state_over(r->state);
}
static int sets_milestone(const struct lk_lifecycle_row *r, int m) {
  return r->milestone == m;
}

static const char *const milestone_columns[LK_MILESTONE_COUNT] = {
    NULL, "acknowledged_at", "on_scene_at", "resolved_at", "closed_at"};

char *ledger_schema_build(void) {
  size_t cap = 64 * 1024, len = 0, n;
  char *out = malloc(cap);
  if (!out) return NULL;
  const struct lk_lifecycle_row *rows = lk_lifecycle_rows(&n);
  add(out, cap, &len, "%s", ledger_schema_sql);
  add(out, cap, &len,
      "create or replace view incidents as\n"
      "select r.incident_id,\n"
      "  case when fin.closed then 'closed' when fin.resolved then 'resolved'\n"
      "    else coalesce((select case l.type");
  for (size_t i = 0; i < n; i++)
    if (sets_other_state(&rows[i], 0))
      add(out, cap, &len, " when '%s' then '%s'", rows[i].name, lk_state_name(rows[i].state));
  add(out, cap, &len,
      " end\n"
      "      from ledger l where l.incident_id = r.incident_id and l.type in (");
  type_list(out, cap, &len, sets_other_state, 0);
  add(out, cap, &len,
      ")\n"
      "      order by l.position desc limit 1), 'reported') end as state,\n"
      "  r.category,\n"
      "  coalesce((select l.severity from ledger l\n"
      "    where l.incident_id = r.incident_id and l.type = 'severity_changed'\n"
      "      and l.severity is not null\n"
      "    order by l.position desc limit 1), r.severity) as severity,\n"
      "  cur.tier,\n"
      "  r.compound_id,\n"
      "  r.at as reported_at,\n"
      "  last.position as last_position,\n"
      "  last.at as updated_at,\n");
  /* `create or replace view` only adds columns at the end: new ones go below. */
  for (int m = 1; m < LK_MILESTONE_COUNT; m++)
    add(out, cap, &len, "  m%d.at as %s,\n", m, milestone_columns[m]);
  /* A drill's times are not the district's performance. */
  add(out, cap, &len,
      "  case when r.exercise then null else m%d.at - r.at end as time_to_acknowledge,\n"
      "  case when r.exercise then null else m%d.at - r.at end as time_to_arrive,\n"
      "  case when r.exercise then null else m%d.at - r.at end as time_to_resolve,\n",
      LK_MILESTONE_ACKNOWLEDGED, LK_MILESTONE_ON_SCENE, LK_MILESTONE_RESOLVED);
  add(out, cap, &len,
      "  (select l.unit_id from ledger l\n"
      "    where l.incident_id = r.incident_id and l.type = 'dispatched' and l.lead\n"
      "      and not exists (select 1 from ledger x\n"
      "        where x.event_id = replace(l.event_id, '/dispatched/', '/unit_declined/'))\n"
      "    order by l.position desc limit 1) as lead_unit,\n"
      "  case when fin.closed or fin.resolved then '{}'::text[] else array(\n"
      "    select distinct split_part(n.event_id, '/', 3) from ledger n\n"
      "    where n.incident_id = r.incident_id and n.type = 'no_unit_available'\n"
      "      and n.position > cur.position and split_part(n.event_id, '/', 4) = cur.tier\n"
      "      and not exists (select 1 from ledger d\n"
      "        where d.incident_id = r.incident_id and d.type = 'dispatched'\n"
      "          and split_part(d.event_id, '/', 3) = split_part(n.event_id, '/', 3)\n"
      "          and not exists (select 1 from ledger x\n"
      "            where x.event_id = replace(d.event_id, '/dispatched/', '/unit_declined/')))\n"
      "    order by 1) end as missing_roles,\n"
      "  coalesce(r.exercise, false) as exercise\n"
      "from ledger r\n"
      "cross join lateral (select l.position, l.at from ledger l\n"
      "  where l.incident_id = r.incident_id order by l.position desc limit 1) last\n"
      "cross join lateral (select\n"
      "  exists (select 1 from ledger l where l.incident_id = r.incident_id and l.type in (");
  type_list(out, cap, &len, sets_state, LK_STATE_CLOSED);
  add(out, cap, &len,
      ")) as closed,\n"
      "  exists (select 1 from ledger l where l.incident_id = r.incident_id and l.type in (");
  type_list(out, cap, &len, sets_state, LK_STATE_RESOLVED);
  add(out, cap, &len,
      ")) as resolved) fin\n"
      "left join lateral (select l.tier, l.position from ledger l\n"
      "  where l.incident_id = r.incident_id and l.type in ('routed', 'escalated', "
      "'de_escalated')\n"
      "  order by l.position desc limit 1) cur on true\n");
  /* The first of each milestone, walking the index forwards. */
  for (int m = 1; m < LK_MILESTONE_COUNT; m++) {
    add(out, cap, &len,
        "left join lateral (select l.at from ledger l\n"
        "  where l.incident_id = r.incident_id and l.type in (");
    type_list(out, cap, &len, sets_milestone, m);
    add(out, cap, &len, ")\n  order by l.position limit 1) m%d on true\n", m);
  }
  add(out, cap, &len, "where r.type = 'reported';\n");
  if (len >= cap) {
    free(out);
    return NULL;
  }
  return out;
}
