/* A table re-read off the loop (include/linkage/pg_reload.h). */
#include "linkage/pg_reload.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

/* The server's notices (e.g. "terminating connection" at a shutdown) would go to stderr
 * outside logfmt; a failed read is reported to the owner instead. */
static void drop_notice(void *arg, const char *message) {}

/* Worker thread: only r->pgconn, r->loaded and r->err are touched. */
static void read_work(uv_work_t *w) {
  struct lk_pg_reload *r = w->data;
  PGconn *c = r->pgconn;
  r->loaded = NULL;
  r->err[0] = '\0';
  if (c && PQstatus(c) != CONNECTION_OK) PQreset(c);
  if (!c) {
    c = PQconnectdb(r->pg);
    r->pgconn = c;
    if (c) PQsetNoticeProcessor(c, drop_notice, NULL);
  }
  if (!c || PQstatus(c) != CONNECTION_OK) {
    snprintf(r->err, sizeof r->err, "cannot connect: %s", c ? PQerrorMessage(c) : "out of memory");
  } else {
    r->loaded = r->read(c, r->data, r->err, sizeof r->err);
    if (!r->loaded && !r->err[0]) snprintf(r->err, sizeof r->err, "read failed");
  }
  /* Error text goes into a logfmt value: one line, no quotes. */
  for (char *p = r->err; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '"') *p = ' ';
}

static void close_pg(struct lk_pg_reload *r) {
  if (r->pgconn) PQfinish(r->pgconn);
  r->pgconn = NULL;
}

static void hand_over(struct lk_pg_reload *r) {
  void *s = r->loaded;
  r->loaded = NULL;
  r->take(r->data, s, s ? NULL : r->err);
}

static void read_done(uv_work_t *w, int status) {
  struct lk_pg_reload *r = w->data;
  r->working = 0;
  if (r->stopping) {
    if (r->loaded) r->free_snapshot(r->loaded);
    r->loaded = NULL;
    close_pg(r);
    return;
  }
  if (status == 0) hand_over(r);
}

static void refresh_cb(uv_timer_t *t) {
  struct lk_pg_reload *r = t->data;
  if (r->working || r->stopping) return;
  r->working = 1;
  r->work.data = r;
  if (uv_queue_work(t->loop, &r->work, read_work, read_done) != 0) r->working = 0;
}

int lk_pg_reload_start(struct lk_pg_reload *r, uv_loop_t *loop, const char *pg, unsigned refresh_ms,
                       lk_pg_read_fn read, lk_pg_take_fn take, lk_pg_free_fn free_snapshot,
                       void *data) {
  memset(r, 0, sizeof *r);
  snprintf(r->pg, sizeof r->pg, "%s", pg ? pg : "");
  r->read = read;
  r->take = take;
  r->free_snapshot = free_snapshot;
  r->data = data;
  r->work.data = r;
  read_work(&r->work);
  hand_over(r);
  if (uv_timer_init(loop, &r->timer) != 0) return -1;
  r->timer.data = r;
  r->timer_open = 1;
  uv_timer_start(&r->timer, refresh_cb, refresh_ms, refresh_ms);
  return 0;
}

void lk_pg_reload_stop(struct lk_pg_reload *r) {
  r->stopping = 1;
  if (r->timer_open) uv_close((uv_handle_t *)&r->timer, NULL);
  r->timer_open = 0;
  if (!r->working) close_pg(r);
}
