/* The raw PostgreSQL COPY rate of ledger rows: the ceiling linkage-ledger is compared with.
 *
 *   bench_copy CONNINFO COUNT [BATCH]
 *
 * Creates a scratch table shaped exactly like `ledger` (services/ledger/ledger_schema.c: the same
 * columns, primary key, unique event id and (incident_id, position) index; no triggers), then
 * commits COUNT rows in transactions of BATCH rows (default 4096, the ledger's batch_max), each a
 * binary COPY, with synchronous_commit on. The rows are the `reported` events intake builds for
 * the Report every spine benchmark sends (bench_report.h), encoded by the ledger's own row
 * encoder with positions and hash chain from ledger_batch_resolve, so the bytes on the wire are
 * the ledger's. Encoding happens outside the timed part: copy_rows_per_s is PostgreSQL's work
 * only (begin, COPY, durable commit). Also prints the time per transaction (p50/p99): with
 * BATCH 1 that is the floor under any acknowledgement that waits for a durable commit.
 * Prints key=value lines; drops the table at the end. */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_report.h"
#include "intake/intake_core.h"
#include "ledger/ledger.h"
#include "linkage/clock.h"
#include "linkage/event.h"

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

#define TABLE "bench_copy_ledger"

static const char create_sql[] =
    "drop table if exists " TABLE ";\n"
    "create table " TABLE " (\n"
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
    "  lead boolean,\n"
    "  exercise boolean\n"
    ");\n"
    "create index " TABLE "_incident_position on " TABLE " (incident_id, position);\n";

static int exec_ok(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  int st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    fprintf(stderr, "bench_copy: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return -1;
  }
  PQclear(r);
  return 0;
}

/* One ledger row as linkage-ledger's make_item builds it from intake's `reported` event. */
static struct ledger_item *make_row(const char *device, uint64_t seq) {
  Linkage__V1__Report r;
  Linkage__V1__Location loc;
  int64_t now = lk_now_us();
  bench_report_fill(&r, &loc, device, seq, now);
  char incident[LK_ID_MAX];
  lk_incident_id(device, seq, incident);
  struct intake_event ie;
  if (intake_core_event(&ie, &r, incident, now) != 0) return NULL;
  size_t len = 0;
  uint8_t *payload = lk_event_pack(&ie.ev, &len);
  if (!payload) return NULL;
  size_t l_eid = strlen(ie.event_id) + 1, l_iid = strlen(incident) + 1,
         l_act = strlen(ie.actor) + 1, l_cmp = strlen(loc.compound_id) + 1;
  struct ledger_item *it = calloc(1, sizeof *it + l_eid + l_iid + l_act + l_cmp + len);
  if (!it) {
    free(payload);
    return NULL;
  }
  char *s = (char *)(it + 1);
  it->event_id = memcpy(s, ie.event_id, l_eid), s += l_eid;
  it->incident_id = memcpy(s, incident, l_iid), s += l_iid;
  it->actor = memcpy(s, ie.actor, l_act), s += l_act;
  it->compound_id = memcpy(s, loc.compound_id, l_cmp), s += l_cmp;
  memcpy(s, payload, len);
  it->payload = (const uint8_t *)s;
  it->len = len;
  free(payload);
  it->type = lk_event_type_name(ie.ev.type);
  it->category = lk_category_name(r.category);
  it->severity = lk_severity_name(r.severity);
  it->tier = NULL;
  it->at_us = now;
  return it;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench_copy CONNINFO COUNT [BATCH]\n");
    return 2;
  }
  long count = atol(argv[2]);
  long batch = argc > 3 ? atol(argv[3]) : 4096;
  if (count <= 0 || batch <= 0) return 2;

  PGconn *c = PQconnectdb(argv[1]);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "bench_copy: cannot connect: %s", PQerrorMessage(c));
    PQfinish(c);
    return 1;
  }
  if (exec_ok(c, "set client_min_messages = warning") ||
      exec_ok(c, "set synchronous_commit = on") || exec_ok(c, create_sql)) {
    PQfinish(c);
    return 1;
  }
  PGresult *fr =
      PQexec(c, "select current_setting('fsync'), current_setting('synchronous_commit')");
  if (PQresultStatus(fr) == PGRES_TUPLES_OK && PQntuples(fr) == 1)
    printf("copy_fsync=%s\ncopy_synchronous_commit=%s\n", PQgetvalue(fr, 0, 0),
           PQgetvalue(fr, 0, 1));
  PQclear(fr);

  char device[64];
  snprintf(device, sizeof device, "bench-copy-%lx", (long)time(NULL) ^ ((long)getpid() << 16));
  struct ledger_batch b;
  struct ledger_item **rows = calloc((size_t)batch, sizeof *rows);
  int64_t *txn_us = calloc((size_t)(count / batch + 1), sizeof *txn_us);
  if (!rows || !txn_us || ledger_batch_init(&b, (size_t)batch) != 0) return 1;
  uint64_t head = 0;
  uint8_t head_hash[LK_HASH_LEN] = {0};
  int64_t db_us = 0, t_all = lk_mono_us();
  long done = 0, batches = 0;
  size_t bytes = 0;
  int rc = 0;
  while (done < count && rc == 0) {
    long n = count - done < batch ? count - done : batch;
    b.count = 0;
    for (long i = 0; i < n; i++) {
      rows[i] = make_row(device, (uint64_t)(done + i + 1));
      if (!rows[i] || ledger_batch_add(&b, rows[i]) != 0) {
        fprintf(stderr, "bench_copy: out of memory\n");
        return 1;
      }
    }
    if (ledger_batch_resolve(&b, NULL, 0, head, head_hash) != (int)n) return 1;
    struct ledger_buf buf = {0};
    rc = ledger_copy_begin(&buf);
    for (long i = 0; i < n && rc == 0; i++)
      rc = ledger_copy_row(&buf, rows[i]);
    if (rc == 0) rc = ledger_copy_end(&buf);
    if (rc) return 1;
    bytes += buf.len;

    int64_t t0 = lk_mono_us();
    rc = exec_ok(c, "begin");
    if (rc == 0) {
      PGresult *r =
          PQexec(c, "copy " TABLE " (" LEDGER_COPY_COLUMNS ") from stdin with (format binary)");
      if (PQresultStatus(r) != PGRES_COPY_IN) {
        fprintf(stderr, "bench_copy: cannot start copy: %s", PQresultErrorMessage(r));
        rc = -1;
      }
      PQclear(r);
    }
    if (rc == 0 &&
        (PQputCopyData(c, (const char *)buf.p, (int)buf.len) != 1 || PQputCopyEnd(c, NULL) != 1)) {
      fprintf(stderr, "bench_copy: cannot send copy data: %s", PQerrorMessage(c));
      rc = -1;
    }
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
      if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0) {
        fprintf(stderr, "bench_copy: copy failed: %s", PQresultErrorMessage(r));
        rc = -1;
      }
      PQclear(r);
    }
    if (rc == 0) rc = exec_ok(c, "commit");
    txn_us[batches] = lk_mono_us() - t0;
    db_us += txn_us[batches];
    ledger_buf_free(&buf);
    for (long i = 0; i < n; i++)
      free(rows[i]);
    head = b.head;
    memcpy(head_hash, b.head_hash, LK_HASH_LEN);
    done += n;
    batches++;
  }
  double wall = (double)(lk_mono_us() - t_all) / 1e6, db = (double)db_us / 1e6;
  if (rc == 0) {
    printf("copy_rows=%ld\ncopy_batch=%ld\ncopy_batches=%ld\ncopy_bytes_per_row=%.0f\n", done,
           batch, batches, (double)bytes / (double)done);
    printf("copy_seconds=%.3f\ncopy_rows_per_s=%.0f\ncopy_rows_per_s_with_encoding=%.0f\n", db,
           (double)done / db, (double)done / wall);
    qsort(txn_us, (size_t)batches, sizeof *txn_us, cmp_i64);
    printf("txn_p50_us=%" PRId64 "\ntxn_p99_us=%" PRId64 "\n", txn_us[batches / 2],
           txn_us[batches * 99 / 100]);
  }
  exec_ok(c, "drop table if exists " TABLE);
  ledger_batch_close(&b);
  free(rows);
  free(txn_us);
  PQfinish(c);
  return rc == 0 ? 0 : 1;
}
