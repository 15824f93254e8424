/* The ledger's PostgreSQL side. Blocking libpq, called only from uv_queue_work
 * threads: the writer (one commit in flight) and the replay reader (one query
 * in flight) each own their connection, so no PGconn is ever used by two
 * threads at once. Every query uses $n parameters; every result is cleared. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "linkage/error.h"

#define TEXTARRAYOID 1009
#define INT8OID 20

static PGconn *pgc(struct pg_conn *c) {
  return (PGconn *)c;
}

/* libpq messages end with a newline; a log line must not. */
static void set_err(char *err, size_t errlen, const char *what, const char *why) {
  snprintf(err, errlen, "%s: %s", what, why ? why : "unknown error");
  size_t l = strlen(err);
  while (l > 0 && (err[l - 1] == '\n' || err[l - 1] == ' '))
    err[--l] = '\0';
  for (char *p = err; *p; p++)
    if (*p == '\n' || *p == '\t' || *p == '"') *p = ' ';
}

static void quiet_notice(void *arg, const char *message) {
  (void)arg;
  (void)message; /* "relation already exists, skipping" and the like */
}

struct pg_conn *ledger_pg_connect(const char *conninfo, char *err, size_t errlen) {
  const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
  const char *vals[] = {conninfo, "5", "linkage-ledger", NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (!c) {
    set_err(err, errlen, "cannot connect", "out of memory");
    return NULL;
  }
  if (PQstatus(c) != CONNECTION_OK) {
    set_err(err, errlen, "cannot connect", PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  PQsetNoticeProcessor(c, quiet_notice, NULL);
  return (struct pg_conn *)c;
}

void ledger_pg_finish(struct pg_conn **c) {
  if (!c || !*c) return;
  PQfinish(pgc(*c));
  *c = NULL;
}

int ledger_pg_ok(struct pg_conn *c) {
  return c && PQstatus(pgc(c)) == CONNECTION_OK;
}

static int exec_ok(PGconn *c, const char *sql, const char *what, char *err, size_t errlen) {
  PGresult *r = PQexec(c, sql);
  int st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    set_err(err, errlen, what,
            PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(c));
    PQclear(r);
    return LK_EIO;
  }
  PQclear(r);
  return LK_OK;
}

int ledger_pg_migrate(struct pg_conn *cc, char *err, size_t errlen) {
  PGconn *c = pgc(cc);
  char *sql = ledger_schema_build();
  if (!sql) {
    snprintf(err, errlen, "cannot build the schema: out of memory");
    return LK_ENOMEM;
  }
  int rc = LK_OK;
  if (exec_ok(c, "begin", "cannot begin migration", err, errlen)) {
    rc = LK_EIO;
  } else if (exec_ok(c, sql, "cannot migrate schema", err, errlen) ||
             exec_ok(c, "commit", "cannot commit migration", err, errlen)) {
    PQclear(PQexec(c, "rollback"));
    rc = LK_EIO;
  }
  free(sql);
  return rc;
}

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}

int ledger_pg_load_head(struct pg_conn *cc, struct ledger_chain *chain, char *err, size_t errlen) {
  PGconn *c = pgc(cc);
  PGresult *r = PQexecParams(c, "select position, hash from ledger order by position desc limit 1",
                             0, NULL, NULL, NULL, NULL, 1);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    set_err(err, errlen, "cannot read the ledger head", PQresultErrorMessage(r));
    PQclear(r);
    return LK_EIO;
  }
  memset(chain, 0, sizeof *chain);
  if (PQntuples(r) == 1) {
    if (PQgetlength(r, 0, 0) != 8 || PQgetlength(r, 0, 1) != LK_HASH_LEN) {
      set_err(err, errlen, "cannot read the ledger head", "unexpected column sizes");
      PQclear(r);
      return LK_EIO;
    }
    chain->head = get_be64((const uint8_t *)PQgetvalue(r, 0, 0));
    memcpy(chain->hash, PQgetvalue(r, 0, 1), LK_HASH_LEN);
  }
  PQclear(r);
  return LK_OK;
}

/* Looks the batch's event ids up in one query; fills ex (n_ex) borrowing from *res. */
static int find_existing(PGconn *c, struct ledger_batch *b, PGresult **res,
                         struct ledger_existing **ex, size_t *n_ex, char *err, size_t errlen) {
  struct ledger_buf arr = {0};
  const char **ids = malloc(b->count * sizeof *ids);
  if (!ids) return LK_ENOMEM;
  for (size_t i = 0; i < b->count; i++)
    ids[i] = b->items[i]->event_id;
  int rc = ledger_text_array(&arr, ids, b->count);
  free(ids);
  if (rc) return rc;

  const Oid types[1] = {TEXTARRAYOID};
  const char *vals[1] = {(const char *)arr.p};
  const int lens[1] = {(int)arr.len};
  const int fmts[1] = {1};
  PGresult *r = PQexecParams(
      c, "select event_id, position, incident_id from ledger where event_id = any($1::text[])", 1,
      types, vals, lens, fmts, 0);
  ledger_buf_free(&arr);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    set_err(err, errlen, "cannot look up event ids", PQresultErrorMessage(r));
    PQclear(r);
    return LK_EIO;
  }
  size_t n = (size_t)PQntuples(r);
  *ex = calloc(n ? n : 1, sizeof **ex);
  if (!*ex) {
    PQclear(r);
    return LK_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    (*ex)[i].event_id = PQgetvalue(r, (int)i, 0);
    (*ex)[i].position = strtoull(PQgetvalue(r, (int)i, 1), NULL, 10);
    (*ex)[i].incident_id = PQgetvalue(r, (int)i, 2);
  }
  *n_ex = n;
  *res = r;
  return LK_OK;
}

/* Writes the batch's new rows with one binary COPY. On a failure reported by the server,
 * *unique_violation tells whether an event id was already stored (SQLSTATE 23505). */
static int copy_rows(PGconn *c, struct ledger_batch *b, int *unique_violation, char *err,
                     size_t errlen) {
  struct ledger_buf buf = {0};
  int rc = ledger_copy_begin(&buf);
  for (size_t i = 0; i < b->count && rc == LK_OK; i++)
    if (b->items[i]->outcome == LEDGER_NEW) rc = ledger_copy_row(&buf, b->items[i]);
  if (rc == LK_OK) rc = ledger_copy_end(&buf);
  if (rc) {
    ledger_buf_free(&buf);
    set_err(err, errlen, "cannot encode rows", "out of memory");
    return rc;
  }

  PGresult *r = PQexec(c, "copy ledger (" LEDGER_COPY_COLUMNS ") from stdin with (format binary)");
  if (PQresultStatus(r) != PGRES_COPY_IN) {
    set_err(err, errlen, "cannot start copy", PQresultErrorMessage(r));
    PQclear(r);
    ledger_buf_free(&buf);
    return LK_EIO;
  }
  PQclear(r);
  int ok = PQputCopyData(c, (const char *)buf.p, (int)buf.len) == 1 && PQputCopyEnd(c, NULL) == 1;
  ledger_buf_free(&buf);
  if (!ok) {
    set_err(err, errlen, "cannot send copy data", PQerrorMessage(c));
    return LK_EIO;
  }
  rc = LK_OK;
  while ((r = PQgetResult(c)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == LK_OK) {
      const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      if (unique_violation) *unique_violation = state && strcmp(state, "23505") == 0;
      set_err(err, errlen, "copy failed", PQresultErrorMessage(r));
      rc = LK_EIO;
    }
    PQclear(r);
  }
  return rc;
}

/* The common case, in two round trips: every event of the batch is new (retries are rare), so
 * one COPY outside an explicit transaction is the whole transaction, atomic and durable when it
 * answers. A unique violation means some event was stored before: nothing was written, and the
 * caller takes the careful path. Returns LK_OK, LK_EAGAIN (take the careful path) or LK_EIO (the
 * link failed: the outcome is unknown, the batch is in doubt). */
static int commit_optimistic(PGconn *c, struct ledger_batch *b, struct ledger_chain *chain,
                             char *err, size_t errlen) {
  int unique = 0;
  if (ledger_batch_resolve(b, NULL, 0, chain->head, chain->hash) < 0) {
    set_err(err, errlen, "cannot resolve batch", "out of memory");
    return LK_ENOMEM;
  }
  if (b->new_count == 0) return LK_OK; /* every event repeated one before it in the batch */
  if (copy_rows(c, b, &unique, err, errlen) == LK_OK) return LK_OK;
  if (PQstatus(c) == CONNECTION_OK) return LK_EAGAIN; /* refused: certainly not written */
  ledger_batch_mark_in_doubt(b);
  return LK_EIO;
}

int ledger_pg_commit(struct pg_conn *cc, struct ledger_batch *b, struct ledger_chain *chain,
                     char *err, size_t errlen) {
  PGconn *c = pgc(cc);
  PGresult *found = NULL;
  struct ledger_existing *ex = NULL;
  size_t n_ex = 0;
  int rc;

  /* A batch in doubt must first learn what its earlier attempt wrote: the careful path. */
  if (!b->in_doubt) {
    rc = commit_optimistic(c, b, chain, err, errlen);
    if (rc == LK_OK) {
      chain->head = b->head;
      memcpy(chain->hash, b->head_hash, LK_HASH_LEN);
      return LK_OK;
    }
    if (rc != LK_EAGAIN) return rc;
  }

  /* The careful path: look the ids up and write only the new events, in one transaction. */
  if ((rc = exec_ok(c, "begin", "cannot begin", err, errlen))) goto fail;
  if ((rc = find_existing(c, b, &found, &ex, &n_ex, err, errlen))) goto fail_rollback;
  rc = ledger_batch_resolve(b, ex, n_ex, chain->head, chain->hash);
  free(ex);
  PQclear(found);
  if (rc < 0) {
    set_err(err, errlen, "cannot resolve batch", "out of memory");
    goto fail_rollback;
  }
  if (b->new_count > 0 && (rc = copy_rows(c, b, NULL, err, errlen))) goto fail_in_doubt;
  /* From here until COMMIT answers, the outcome is unknown if the link fails. */
  if ((rc = exec_ok(c, "commit", "commit failed", err, errlen))) goto fail_in_doubt;
  chain->head = b->head;
  memcpy(chain->hash, b->head_hash, LK_HASH_LEN);
  return LK_OK;

fail_in_doubt:
  ledger_batch_mark_in_doubt(b);
fail_rollback:
  PQclear(PQexec(c, "rollback"));
fail:
  return rc ? rc : LK_EIO;
}

int ledger_pg_replay(struct pg_conn *cc, uint64_t from, uint32_t limit, size_t max_bytes,
                     struct ledger_replay_row **rows, size_t *n, char *err, size_t errlen) {
  PGconn *c = pgc(cc);
  char from_s[24], limit_s[16];
  snprintf(from_s, sizeof from_s, "%llu", (unsigned long long)from);
  snprintf(limit_s, sizeof limit_s, "%u", limit);
  const char *vals[2] = {from_s, limit_s};
  PGresult *r = PQexecParams(c,
                             "select position, payload, hash from ledger where position >= $1 "
                             "order by position limit $2",
                             2, NULL, vals, NULL, NULL, 1);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    set_err(err, errlen, "cannot read replay", PQresultErrorMessage(r));
    PQclear(r);
    return LK_EIO;
  }
  size_t total = (size_t)PQntuples(r), bytes = 0, k = 0;
  *rows = calloc(total ? total : 1, sizeof **rows);
  if (!*rows) {
    PQclear(r);
    return LK_ENOMEM;
  }
  for (; k < total; k++) {
    size_t len = (size_t)PQgetlength(r, (int)k, 1);
    if (k > 0 && bytes + len > max_bytes) break;
    struct ledger_replay_row *row = &(*rows)[k];
    row->position = get_be64((const uint8_t *)PQgetvalue(r, (int)k, 0));
    row->event = malloc(len ? len : 1);
    if (!row->event) break;
    memcpy(row->event, PQgetvalue(r, (int)k, 1), len);
    row->len = len;
    if (PQgetlength(r, (int)k, 2) == LK_HASH_LEN)
      memcpy(row->hash, PQgetvalue(r, (int)k, 2), LK_HASH_LEN);
    bytes += len;
  }
  *n = k;
  PQclear(r);
  return LK_OK;
}
