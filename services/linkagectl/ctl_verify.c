/* linkagectl verify: walk the ledger in position order and check its hash
 * chain (the decisions are in ctl_chain.c). */
#include <getopt.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

#define PG_EPOCH_OFFSET_US 946684800000000LL /* 2000-01-01 in Unix microseconds */

static const char verify_help[] =
    "NAME\n"
    "    linkagectl verify - walk the ledger's hash chain\n"
    "\n"
    "SYNOPSIS\n"
    "    linkagectl verify [--pg CONNINFO] [--batch N]\n"
    "\n"
    "DESCRIPTION\n"
    "    Reads the table ledger in position order, --batch rows at a time\n"
    "    (default 10000), in one read-only snapshot, and checks every row:\n"
    "    positions start at 1 and have no gaps; prev_hash is the previous row's\n"
    "    hash (32 zero bytes for the first); hash is\n"
    "    SHA-256(prev_hash || position || payload); the payload decodes as an\n"
    "    Event whose event_id, incident_id, type, at and actor equal the row's\n"
    "    columns.\n"
    "    Prints \"ok rows=N head=H hash=<hex>\", or \"verify: position P: <why>\"\n"
    "    for the first row that fails.\n"
    "\n"
    "    --pg overrides $LINKAGE_PG (default \"dbname=linkage\").\n"
    "\n"
    "EXIT STATUS\n"
    "    0 the chain is intact, 1 a row is bad, 2 the database could not be read.\n";

static const char page_sql[] =
    "SELECT position::bigint, event_id::text, incident_id::text, type::text,"
    " at::timestamptz, payload, prev_hash, hash, actor::text"
    " FROM ledger WHERE position > $1 ORDER BY position LIMIT $2";

static int64_t get_int8(const PGresult *res, int row, int col) {
  const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, col);
  uint64_t v = 0;
  int i;

  for (i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return (int64_t)v;
}

static const char *text_or_empty(const PGresult *res, int row, int col) {
  return PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
}

/* Fills r from one row of page_sql. Returns 0, or -1 naming a NULL column. */
static int read_row(const PGresult *res, int i, struct ctl_row *r, char *why, size_t len) {
  static const char *const names[] = {"position", "event_id", "incident_id", "type",
                                      "at",       "payload",  "prev_hash",   "hash"};
  int col;

  for (col = 0; col < 8; col++) {
    if (col >= 1 && col <= 3)
      continue; /* a NULL text column shows up as a mismatch with the payload */
    if (PQgetisnull(res, i, col)) {
      snprintf(why, len, "%s is NULL", names[col]);
      return -1;
    }
  }
  r->position = (uint64_t)get_int8(res, i, 0);
  r->event_id = text_or_empty(res, i, 1);
  r->incident_id = text_or_empty(res, i, 2);
  r->type = text_or_empty(res, i, 3);
  r->at_us = get_int8(res, i, 4) + PG_EPOCH_OFFSET_US;
  r->payload = (const uint8_t *)PQgetvalue(res, i, 5);
  r->payload_len = (size_t)PQgetlength(res, i, 5);
  r->prev_hash = (const uint8_t *)PQgetvalue(res, i, 6);
  r->prev_hash_len = (size_t)PQgetlength(res, i, 6);
  r->hash = (const uint8_t *)PQgetvalue(res, i, 7);
  r->hash_len = (size_t)PQgetlength(res, i, 7);
  r->actor = text_or_empty(res, i, 8);
  return 0;
}

static int exec_ok(PGconn *pg, const char *sql) {
  PGresult *res = PQexec(pg, sql);
  int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

  if (!ok) fprintf(stderr, "verify: \"%s\" failed: %s", sql, PQerrorMessage(pg));
  PQclear(res);
  return ok;
}

/* Returns the exit code. */
static int walk(PGconn *pg, uint64_t batch) {
  struct ctl_chain chain;
  char after[32], limit[32], why[512], hex[2 * LK_HASH_LEN + 1];
  const char *params[2] = {after, limit};

  ctl_chain_init(&chain);
  snprintf(limit, sizeof limit, "%llu", (unsigned long long)batch);
  for (;;) {
    PGresult *res;
    int i, n;

    snprintf(after, sizeof after, "%llu", (unsigned long long)chain.position);
    /* Binary results: bytea as raw bytes, and the timestamp as an int8 of
     * microseconds, exact, unlike extract(epoch ...) in floating point. */
    res = PQexecParams(pg, page_sql, 2, NULL, params, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
      fprintf(stderr, "verify: reading the ledger failed: %s", PQerrorMessage(pg));
      PQclear(res);
      return CTL_EXIT_USAGE;
    }
    n = PQntuples(res);
    for (i = 0; i < n; i++) {
      struct ctl_row r;
      /* WHERE position > $1 never returns a NULL position. */
      uint64_t position = (uint64_t)get_int8(res, i, 0);

      if (read_row(res, i, &r, why, sizeof why) == 0) {
        if (ctl_chain_check(&chain, &r, why, sizeof why) == 0) continue;
        position = chain.bad_position;
      }
      printf("verify: position %llu: %s\n", (unsigned long long)position, why);
      PQclear(res);
      return CTL_EXIT_FAIL;
    }
    PQclear(res);
    if ((uint64_t)n < batch) break;
  }
  lk_hex(chain.hash, LK_HASH_LEN, hex);
  printf("ok rows=%llu head=%llu hash=%s\n", (unsigned long long)chain.rows,
         (unsigned long long)chain.position, hex);
  return CTL_EXIT_OK;
}

int ctl_verify_main(int argc, char **argv) {
  static const struct option longopts[] = {{"pg", required_argument, NULL, 'p'},
                                           {"batch", required_argument, NULL, 'b'},
                                           {"help", no_argument, NULL, 'h'},
                                           {0, 0, 0, 0}};
  struct ctl_config cfg;
  const char *conninfo = NULL;
  uint64_t batch = 10000;
  PGconn *pg;
  int c, code;

  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'p': conninfo = optarg; break;
    case 'b':
      if (ctl_parse_u64(optarg, &batch) != 0 || batch == 0 || batch > 1000000) {
        fprintf(stderr, "linkagectl verify: --batch wants 1..1000000, not \"%s\"\n", optarg);
        return CTL_EXIT_USAGE;
      }
      break;
    case 'h': fputs(verify_help, stdout); return CTL_EXIT_OK;
    default: fputs(verify_help, stderr); return CTL_EXIT_USAGE;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "linkagectl verify: unexpected argument \"%s\"\n", argv[optind]);
    return CTL_EXIT_USAGE;
  }
  if (ctl_config_load(&cfg) != 0) return CTL_EXIT_USAGE;
  if (!conninfo) conninfo = cfg.pg;

  pg = ctl_pg_connect(conninfo);
  if (PQstatus(pg) != CONNECTION_OK) {
    fprintf(stderr, "verify: cannot connect to \"%s\": %s", conninfo, PQerrorMessage(pg));
    PQfinish(pg);
    return CTL_EXIT_USAGE;
  }
  /* One snapshot for every page: rows appended meanwhile are not half-seen. */
  if (!exec_ok(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) {
    PQfinish(pg);
    return CTL_EXIT_USAGE;
  }
  code = walk(pg, batch);
  exec_ok(pg, "COMMIT");
  PQfinish(pg);
  return code;
}
