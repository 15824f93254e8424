/* The token snapshot kept fresh from PostgreSQL: the table is re-read every
 * refresh_ms on a libuv worker thread (libpq blocks there, never on the
 * loop) and the new snapshot swapped in on the loop thread, by the same
 * reloader as the CURVE key registry (linkage/pg_reload.h). */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_auth.h"
#include "linkage/pg_reload.h"
#include "linkage/error.h"
#include "linkage/log.h"

/* Revoked rows are read too and left out by gw_tokens_add_row, where the unit tests see it;
 * the table holds one row per token ever issued, a few hundred at most. */
static const char tokens_sql[] = "select name, role, encode(token_sha256, 'hex'), "
                                 "revoked_at is not null from tokens";

/* Worker thread (lk_pg_reload): the table into a new snapshot. */
static void *read_tokens(void *pgconn, void *data, char *err, size_t errlen) {
  (void)data;
  PGresult *res = PQexecParams(pgconn, tokens_sql, 0, NULL, NULL, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    snprintf(err, errlen, "%s", PQresultErrorMessage(res));
    PQclear(res);
    return NULL;
  }
  struct gw_tokens *t = gw_tokens_new();
  for (int i = 0; t && i < PQntuples(res); i++) {
    /* A malformed row (hand-edited table) cannot sign anyone in; the rest still can. */
    if (gw_tokens_add_row(t, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                          PQgetvalue(res, i, 3)[0] == 't') == LK_ENOMEM)
      gw_tokens_destroy(&t);
  }
  PQclear(res);
  if (!t) snprintf(err, errlen, "out of memory");
  return t;
}

static void free_tokens(void *snapshot) {
  struct gw_tokens *t = snapshot;
  gw_tokens_destroy(&t);
}

/* Loop thread: takes over what read_tokens read. A failed read keeps the snapshot in force
 * (revocations wait for the database, good tokens keep working), logged once per streak. */
static void take_tokens(void *data, void *snapshot, const char *err) {
  struct gw_auth *a = data;
  struct gw_tokens *loaded = snapshot;
  a->refreshes++;
  if (!loaded) {
    a->refresh_failures++;
    if (!a->failing)
      lk_warn("cannot read the token table; keeping the last snapshot", "tokens=%zu err=\"%s\"",
              a->tokens ? a->tokens->n : 0, err);
    a->failing = 1;
    return;
  }
  int first = a->tokens == NULL; /* gw_auth_start reports the first load itself */
  size_t before = first ? 0 : a->tokens->n;
  if (a->failing) lk_info("token table readable again", "tokens=%zu", loaded->n);
  a->failing = 0;
  gw_tokens_destroy(&a->tokens);
  a->tokens = loaded;
  if (!first && a->tokens->n != before)
    lk_info("token snapshot changed", "tokens=%zu before=%zu", a->tokens->n, before);
}

int gw_auth_start(struct gw_auth *a, uv_loop_t *loop, const char *pg, unsigned refresh_ms) {
  memset(a, 0, sizeof *a);
  gw_rate_init(&a->rate, 0, 0);
  unsigned ms = refresh_ms ? refresh_ms : GW_AUTH_REFRESH_MS;
  if (lk_pg_reload_start(&a->reload, loop, pg, ms, read_tokens, take_tokens, free_tokens, a) != 0) {
    lk_error("cannot start the token refresh", "err=\"timer\"");
    return LK_EIO;
  }
  a->started = 1;
  if (!a->tokens) {
    a->tokens = gw_tokens_new();
    if (!a->tokens) {
      lk_error("cannot start the token check", "err=\"out of memory\"");
      return LK_ENOMEM;
    }
  }
  lk_info("http tokens loaded", "tokens=%zu refresh_ms=%u max_failures=%u window_ms=%lld",
          a->tokens->n, ms, a->rate.max_failures, (long long)(a->rate.window_us / 1000));
  return LK_OK;
}

enum lk_role gw_auth_check(struct gw_auth *a, const char *token, const char *client_addr,
                           int64_t now_us, const char **name, uint32_t *retry_after_ms,
                           enum gw_auth_outcome *outcome) {
  enum gw_auth_outcome out;
  enum lk_role role = LK_ROLE_NONE;
  uint32_t wait = 0;
  if (name) *name = NULL;
  if (!token || !*token) {
    out = GW_AUTH_MISSING;
  } else if ((wait = gw_rate_blocked(&a->rate, client_addr, now_us)) != 0) {
    out = GW_AUTH_RATE_LIMITED;
    a->limited++;
  } else if ((role = gw_tokens_check(a->tokens, token, name)) != LK_ROLE_NONE) {
    out = GW_AUTH_OK;
    a->allowed++;
  } else {
    out = GW_AUTH_BAD;
    a->refused++;
    gw_rate_failure(&a->rate, client_addr, now_us);
    /* Logged when the limit is reached, not per attempt: a flood must not flood the log. */
    if (gw_rate_blocked(&a->rate, client_addr, now_us))
      lk_warn("too many failed token attempts; refusing the address for a while",
              "addr=%s failures=%u retry_after_ms=%u", client_addr ? client_addr : "?",
              a->rate.max_failures, gw_rate_blocked(&a->rate, client_addr, now_us));
  }
  if (retry_after_ms) *retry_after_ms = wait;
  if (outcome) *outcome = out;
  return role;
}

void gw_auth_stop(struct gw_auth *a) {
  if (a->started) lk_pg_reload_stop(&a->reload);
  a->started = 0;
  gw_tokens_destroy(&a->tokens);
}
