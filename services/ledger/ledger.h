#ifndef LINKAGE_LEDGER_LEDGER_H
#define LINKAGE_LEDGER_LEDGER_H

/* The ledger daemon's internals: the pure batch logic (ledger_batch.c), the
 * PostgreSQL side run on the writer and replay threads (ledger_pg.c), the
 * loop shell (ledger_server.c) and the schema (ledger_schema.c). */

#include <stddef.h>
#include <stdint.h>

#include "linkage/config.h"
#include "linkage/hash.h"

struct ledger_config {
  char pg[LK_CONFIG_STR];
  char ledger_endpoint[LK_CONFIG_STR];
  char ledger_stream[LK_CONFIG_STR];
  long batch_max;
  long queue_max;
  long heartbeat_ms;
  int link_curve;
  char link_key_file[LK_CONFIG_STR];
  char metrics_listen[LK_CONFIG_STR];
};

/* ---- the batch: pure logic, no I/O ---- */

enum ledger_outcome {
  LEDGER_PENDING = 0,
  LEDGER_NEW,       /* to be written at `position` by this attempt */
  LEDGER_COMMITTED, /* found stored by an earlier attempt of this batch whose outcome was unknown */
  LEDGER_DUPLICATE, /* stored before, or repeated within the batch */
};

/* A nullable boolean column; zero is SQL NULL. */
enum ledger_flag { LEDGER_FLAG_NULL = 0, LEDGER_FLAG_FALSE, LEDGER_FLAG_TRUE };

/* One append waiting for its commit. Allocated in one block with its strings. */
struct ledger_item {
  struct ledger_item *next;  /* queue link */
  struct ledger_item *older; /* the copy of the same event held before this one (ledger_held.c) */
  uint64_t request_id;
  uint8_t ident[256]; /* ROUTER identity of the sender (libzmq caps it at 255 bytes) */
  size_t ident_len;
  int delimiter; /* the sender put an empty frame before the request */

  /* the row; NULL text columns are SQL NULL */
  const char *event_id, *incident_id, *type, *actor;
  const char *category, *severity, *tier, *compound_id;
  const char *unit_id;       /* dispatched, unit_* and backup_requested: the unit */
  enum ledger_flag lead;     /* dispatched: whether the unit leads; else LEDGER_FLAG_NULL */
  enum ledger_flag exercise; /* reported: whether it is a drill; else LEDGER_FLAG_NULL */
  int64_t at_us;
  const uint8_t *payload; /* the canonical Event bytes */
  size_t len;

  /* the outcome of the latest attempt */
  enum ledger_outcome outcome;
  uint64_t position;
  char stored_incident_id[128]; /* for DUPLICATE: the incident of the stored row */
  uint8_t prev_hash[LK_HASH_LEN], hash[LK_HASH_LEN];
};

/* A row the dedupe query found already stored. */
struct ledger_existing {
  const char *event_id;
  uint64_t position;
  const char *incident_id;
};

struct ledger_batch {
  struct ledger_item **items;
  size_t count, cap;
  /* An attempt whose COMMIT may or may not have happened leaves the batch in
   * doubt; rows found stored at positions >= doubt_from were written by it. */
  int in_doubt;
  uint64_t doubt_from;
  uint64_t attempt_from; /* first position the latest attempt assigned */
  /* results of ledger_batch_resolve */
  size_t new_count;
  uint64_t head;                  /* the head after this batch commits */
  uint8_t head_hash[LK_HASH_LEN]; /* the chain's last hash after this batch commits */
};

int ledger_batch_init(struct ledger_batch *b, size_t cap);
void ledger_batch_close(struct ledger_batch *b);
int ledger_batch_add(struct ledger_batch *b, struct ledger_item *it);

/* Decides every item's outcome against the rows already stored (ex, n_ex),
 * assigns positions head+1.. to the new ones in order and chains their
 * hashes from head_hash. Returns the number of new rows, or LK_ENOMEM. */
int ledger_batch_resolve(struct ledger_batch *b, const struct ledger_existing *ex, size_t n_ex,
                         uint64_t head, const uint8_t head_hash[LK_HASH_LEN]);

/* Records that the latest attempt failed with unknown outcome. */
void ledger_batch_mark_in_doubt(struct ledger_batch *b);

/* ---- the appends held, by event id (ledger_held.c) ---- */

struct lk_map;
/* Records it as the newest held copy of its event. LK_OK or LK_ENOMEM (then it is not held). */
int ledger_held_add(struct lk_map *held, struct ledger_item *it);
/* Forgets it (before it is freed); nothing if it was not held. */
void ledger_held_remove(struct lk_map *held, struct ledger_item *it);
/* The held copy of event_id sent by the peer with this ROUTER identity, or with ident NULL the
 * newest held copy from anyone; NULL if none. */
struct ledger_item *ledger_held_find(const struct lk_map *held, const char *event_id,
                                     const uint8_t *ident, size_t ident_len);

/* A growable byte buffer. */
struct ledger_buf {
  uint8_t *p;
  size_t len, cap;
};
int ledger_buf_reserve(struct ledger_buf *b, size_t more);
void ledger_buf_free(struct ledger_buf *b);

/* PostgreSQL binary COPY of the table's columns, in LEDGER_COPY_COLUMNS order. */
#define LEDGER_COPY_COLUMNS                                                                        \
  "position, event_id, incident_id, type, at, actor, category, severity, tier, compound_id, "      \
  "payload, prev_hash, hash, unit_id, lead, exercise"
int ledger_copy_begin(struct ledger_buf *b);
int ledger_copy_row(struct ledger_buf *b, const struct ledger_item *it);
int ledger_copy_end(struct ledger_buf *b);

/* Unix microseconds to PostgreSQL's timestamptz (microseconds since 2000-01-01 UTC). */
int64_t ledger_pg_time(int64_t unix_us);

/* A PostgreSQL binary text[] of the batch's event ids, for `= any($1::text[])`. */
int ledger_text_array(struct ledger_buf *b, const char *const *strs, size_t n);

/* ---- the schema ---- */

/* The tables and triggers (idempotent statements). */
extern const char ledger_schema_sql[];
/* The whole migration: ledger_schema_sql and the `incidents` view written from the life-cycle
 * table. malloc'd (the caller frees it), NULL when out of memory. */
char *ledger_schema_build(void);

/* ---- PostgreSQL (blocking; each connection used by one thread at a time) ---- */

struct ledger_chain {
  uint64_t head;
  uint8_t hash[LK_HASH_LEN];
};

struct pg_conn; /* PGconn, kept opaque here so the pure code needs no libpq */

/* Connects (conninfo), returns NULL with err filled. */
struct pg_conn *ledger_pg_connect(const char *conninfo, char *err, size_t errlen);
void ledger_pg_finish(struct pg_conn **c);
int ledger_pg_ok(struct pg_conn *c);
/* Creates or migrates the schema in one transaction under an advisory lock. */
int ledger_pg_migrate(struct pg_conn *c, char *err, size_t errlen);
/* Reads the head position and its hash (0 and zero hash for an empty ledger). */
int ledger_pg_load_head(struct pg_conn *c, struct ledger_chain *chain, char *err, size_t errlen);
/* Commits one batch in one transaction; on success chain moves to the batch's head. On failure
 * the batch is left in doubt and the caller must reconnect and reload the chain. */
int ledger_pg_commit(struct pg_conn *c, struct ledger_batch *b, struct ledger_chain *chain,
                     char *err, size_t errlen);

struct ledger_replay_row {
  uint64_t position;
  uint8_t *event;
  size_t len;
  uint8_t hash[LK_HASH_LEN];
};
/* Reads up to limit rows from position from, at most max_bytes of events (at least one row).
 * *rows is malloc'd; free each event and the array. */
int ledger_pg_replay(struct pg_conn *c, uint64_t from, uint32_t limit, size_t max_bytes,
                     struct ledger_replay_row **rows, size_t *n, char *err, size_t errlen);

#endif

/* ---- the daemon's state (ledger_server.c) ---- */

#include <uv.h>

#include "linkage/map.h"
#include "linkage/metrics.h"
#include "linkage/service.h"
#include "linkage/zap.h"
#include "linkage/zsock.h"

struct ledger_ring_entry {
  uint64_t position;
  uint8_t *event;
  size_t len;
  uint8_t hash[LK_HASH_LEN];
};

struct ledger_peer {
  uint8_t ident[256];
  size_t ident_len;
  int delimiter;
  uint64_t request_id;
};

struct ledger_replay_req {
  struct ledger_peer peer;
  uint64_t from;
  uint32_t limit;
};

#define LEDGER_REPLAY_QUEUE 64

struct ledger {
  struct lk_runtime *rt;
  const struct ledger_config *cfg;
  int ready, stopping;
  struct lk_link link; /* CURVE on our two sockets when the daemons are on several hosts */
  struct lk_auth auth; /* the ZAP handler admitting the link key */
  int auth_started;
  struct lk_zsock router, pub;
  int sockets_open;
  uv_timer_t heartbeat, retry;

  /* appends accepted and not yet in a batch */
  struct ledger_item *q_head, *q_tail;
  size_t q_len, q_bytes;
  /* event id -> appends of it queued or in the batch: a client's resend of an event we already
   * hold is queued even when we would refuse new work, so it ends as the original does */
  struct lk_map held;

  /* the writer: one uv_queue_work at a time owns pg, chain and batch */
  uv_work_t commit_work;
  int commit_busy, retry_armed;
  struct ledger_batch batch;
  struct pg_conn *pg;
  struct ledger_chain chain;
  int migrated, commit_rc;
  char commit_err[512];
  int pg_down;
  unsigned backoff_ms;

  /* what the loop knows */
  uint64_t head;
  uint64_t batches, events;
  /* for /metrics (ledger_metrics.c) */
  uint64_t appends_answered[5]; /* by AppendReply status (1 committed .. 4 busy) */
  uint64_t commit_failures;     /* attempts that found PostgreSQL unavailable */
  int64_t commit_started_mono_us;
  struct lk_histogram batch_size;      /* appends per committed batch */
  struct lk_histogram commit_duration; /* seconds from taking a batch to its commit */

  /* the most recent committed events, for cheap replays */
  struct ledger_ring_entry *ring;
  size_t ring_start, ring_count; /* LEDGER_RING_CAP entries */

  /* the replay reader: one query in flight, a bounded queue behind it */
  uv_work_t replay_work;
  int replay_busy, replay_rc;
  struct pg_conn *pg_replay;
  struct ledger_replay_req replay_cur;
  struct ledger_replay_req replay_q[LEDGER_REPLAY_QUEUE];
  size_t replay_q_start, replay_q_len;
  struct ledger_replay_row *replay_rows;
  size_t replay_n;
  char replay_err[512];
};

int ledger_server_start(struct lk_runtime *rt);
void ledger_server_stop(struct lk_runtime *rt);
void ledger_server_status(struct lk_runtime *rt, char *buf, size_t len);
/* The ledger's metric families (ledger_metrics.c). */
int ledger_metrics_init(struct ledger *L);
void ledger_metrics(struct lk_runtime *rt, struct lk_metrics_writer *w);
/* The ROUTER's handler (lk_zsock_msg_cb). */
void ledger_on_request(struct lk_zsock *s, struct lk_frames *m, void *data);

#define LEDGER_RING_CAP 8192                /* events kept for replays from memory */
#define LEDGER_QUEUE_BYTES_MAX (256u << 20) /* payload bytes queued, besides queue_max */
#define LEDGER_FRAME_MAX (256 << 10)        /* largest LedgerRequest accepted */
#define LEDGER_REPLAY_BYTES_MAX (1u << 20)  /* event bytes per ReplayReply */
#define LEDGER_REPLAY_LIMIT 1000
#define LEDGER_PUB_HWM 100000
