#ifndef LINKAGE_PG_RELOAD_H
#define LINKAGE_PG_RELOAD_H

/* A registry kept fresh from PostgreSQL without blocking the loop: the CURVE key registry
 * (zap.c) and the API token snapshot (the gateway's gw_auth_pg.c) are both "re-read a table
 * every N ms and swap the result in". The query runs on a libuv worker thread with a connection
 * only that thread touches; the owner's take callback receives the new snapshot on the loop.
 * A failed read hands over NULL and the error, and the owner keeps what it had. */

#include <stddef.h>
#include <uv.h>

#include "linkage/config.h"

/* Worker thread: runs the query on pgconn (a PGconn, connected) and returns the new snapshot,
 * or NULL with err filled. Must touch nothing the loop thread uses. */
typedef void *(*lk_pg_read_fn)(void *pgconn, void *data, char *err, size_t errlen);
/* Loop thread: the snapshot read (owned by the callee from now on), or NULL and why. */
typedef void (*lk_pg_take_fn)(void *data, void *snapshot, const char *err);
/* Frees a snapshot nobody took (the reloader stopped while a read was in flight). */
typedef void (*lk_pg_free_fn)(void *snapshot);

struct lk_pg_reload {
  char pg[LK_CONFIG_STR];
  lk_pg_read_fn read;
  lk_pg_take_fn take;
  lk_pg_free_fn free_snapshot;
  void *data; /* borrowed, handed to the callbacks */
  uv_timer_t timer;
  uv_work_t work;
  int timer_open, working, stopping;
  void *pgconn; /* PGconn: the worker's while working, else the loop's */
  void *loaded; /* what the last read returned, until it is handed over */
  char err[256];
};

/* Reads once at once (blocking: call before the loop serves anyone, so a port does not open on
 * an empty registry when the database is there), hands the result to take, then re-reads every
 * refresh_ms. Returns 0, or -1 when the timer cannot start. */
int lk_pg_reload_start(struct lk_pg_reload *r, uv_loop_t *loop, const char *pg, unsigned refresh_ms,
                       lk_pg_read_fn read, lk_pg_take_fn take, lk_pg_free_fn free_snapshot,
                       void *data);
/* Stops the timer. Safe with a read in flight: it finishes on its thread, and its completion
 * frees what it read and closes the connection; r must stay allocated until the loop has run
 * that completion (running the loop to its end does). */
void lk_pg_reload_stop(struct lk_pg_reload *r);

#endif
