/* The token snapshot kept fresh from PostgreSQL: the table is re-read every
 * refresh_ms on a libuv worker thread (libpq blocks there, never on the
 * loop) and the new snapshot swapped in on the loop thread. The same shape
 * as the CURVE key registry's refresh in services/common/zap.c. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_auth.h"
#include "linkage/error.h"
#include "linkage/log.h"

/* Revoked rows are read too and left out by gw_tokens_add_row, where the unit tests see it;
 * the table holds one row per token ever issued, a few hundred at most. */
static const char tokens_sql[] = "select name, role, encode(token_sha256, 'hex'), "
                                 "revoked_at is not null from tokens";

/* The server's notices (e.g. "terminating connection" at a shutdown) would go to stderr
 * outside logfmt; a failed read is logged by take_loaded instead. */
static void drop_notice(void *arg, const char *message) {}

/* Runs on a worker thread: only a->pgconn, a->loaded and a->load_err are touched. */
static void load_work(uv_work_t *w) {
  struct gw_auth *a = w->data;
  PGconn *c = a->pgconn;
  a->loaded = NULL;
  a->load_err[0] = '\0';
  if (c && PQstatus(c) != CONNECTION_OK) PQreset(c);
  if (!c) {
    c = PQconnectdb(a->pg);
    a->pgconn = c;
    if (c) PQsetNoticeProcessor(c, drop_notice, NULL);
  }
  if (!c || PQstatus(c) != CONNECTION_OK) {
    snprintf(a->load_err, sizeof a->load_err, "cannot connect: %s",
             c ? PQerrorMessage(c) : "out of memory");
    return;
  }
  PGresult *res = PQexecParams(c, tokens_sql, 0, NULL, NULL, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    snprintf(a->load_err, sizeof a->load_err, "%s", PQresultErrorMessage(res));
    PQclear(res);
    return;
  }
  struct gw_tokens *t = gw_tokens_new();
  for (int i = 0; t && i < PQntuples(res); i++) {
    /* A malformed row (hand-edited table) cannot sign anyone in; the rest still can. */
    if (gw_tokens_add_row(t, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                          PQgetvalue(res, i, 3)[0] == 't') == LK_ENOMEM)
      gw_tokens_destroy(&t);
  }
  PQclear(res);
  if (!t) snprintf(a->load_err, sizeof a->load_err, "out of memory");
  a->loaded = t;
}

static void strip_newlines(char *s) {
  for (; *s; s++)
    if (*s == '\n' || *s == '\r' || *s == '"') *s = ' ';
}

/* Takes over what load_work read. A failed read keeps the snapshot in force (revocations
 * wait for the database, good tokens keep working) and is logged once per streak. */
static void take_loaded(struct gw_auth *a) {
  a->refreshes++;
  if (!a->loaded) {
    a->refresh_failures++;
    if (!a->failing) {
      strip_newlines(a->load_err);
      lk_warn("cannot read the token table; keeping the last snapshot", "tokens=%zu err=\"%s\"",
              a->tokens ? a->tokens->n : 0, a->load_err);
    }
    a->failing = 1;
    return;
  }
  int first = a->tokens == NULL; /* gw_auth_start reports the first load itself */
  size_t before = first ? 0 : a->tokens->n;
  if (a->failing) lk_info("token table readable again", "tokens=%zu", a->loaded->n);
  a->failing = 0;
  gw_tokens_destroy(&a->tokens);
  a->tokens = a->loaded;
  a->loaded = NULL;
  if (!first && a->tokens->n != before)
    lk_info("token snapshot changed", "tokens=%zu before=%zu", a->tokens->n, before);
}

static void close_pg(struct gw_auth *a) {
  if (a->pgconn) PQfinish(a->pgconn);
  a->pgconn = NULL;
}

static void load_done(uv_work_t *w, int status) {
  struct gw_auth *a = w->data;
  a->working = 0;
  if (a->stopping) {
    gw_tokens_destroy(&a->loaded);
    close_pg(a);
    return;
  }
  if (status == 0) take_loaded(a);
}

static void refresh_cb(uv_timer_t *t) {
  struct gw_auth *a = t->data;
  if (a->working || a->stopping) return;
  a->working = 1;
  a->work.data = a;
  if (uv_queue_work(t->loop, &a->work, load_work, load_done) != 0) a->working = 0;
}

int gw_auth_start(struct gw_auth *a, uv_loop_t *loop, const char *pg, unsigned refresh_ms) {
  memset(a, 0, sizeof *a);
  snprintf(a->pg, sizeof a->pg, "%s", pg ? pg : "");
  gw_rate_init(&a->rate, 0, 0);
  /* The first read blocks, before the loop serves anyone: the port should not open on an
   * empty snapshot when the database is there. */
  a->work.data = a;
  load_work(&a->work);
  take_loaded(a);
  if (!a->tokens) {
    a->tokens = gw_tokens_new();
    if (!a->tokens) {
      lk_error("cannot start the token check", "err=\"out of memory\"");
      close_pg(a);
      return LK_ENOMEM;
    }
  }
  unsigned ms = refresh_ms ? refresh_ms : GW_AUTH_REFRESH_MS;
  uv_timer_init(loop, &a->timer);
  a->timer.data = a;
  a->timer_open = 1;
  uv_timer_start(&a->timer, refresh_cb, ms, ms);
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
  a->stopping = 1;
  if (a->timer_open) uv_close((uv_handle_t *)&a->timer, NULL);
  a->timer_open = 0;
  /* A read in flight finishes on its thread; load_done then frees what it read. */
  if (!a->working) close_pg(a);
  gw_tokens_destroy(&a->tokens);
}
