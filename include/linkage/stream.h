#ifndef LINKAGE_STREAM_H
#define LINKAGE_STREAM_H

#include <stdint.h>
#include <uv.h>

#include "linkage/ledger_client.h"

/* A consumer of the committed stream that never misses an event (the zguide
 * Clone pattern): it subscribes to the ledger's PUB socket, replays from its
 * last position through the ledger client, and delivers every event exactly
 * once and in position order. A live message that skips a position, or a
 * ledger heartbeat announcing a head beyond the last position delivered,
 * starts a replay from the first missing position. */

struct lk_stream;

/* Called for each committed event in order. event/len are the canonical
 * Event bytes (borrowed); ev is the decoded event (borrowed). */
typedef void (*lk_stream_cb)(void *data, uint64_t position, const Linkage__V1__Event *ev,
                             const uint8_t *event, size_t len);

struct lk_stream_opts {
  const char *pub_endpoint;        /* the ledger's PUB endpoint */
  struct lk_ledger_client *client; /* borrowed; used for replays */
  uint64_t after_position;         /* deliver positions > this */
  uint32_t replay_batch;           /* default 1000 */
  const struct lk_link *link;      /* borrowed, may be NULL: CURVE on the link (linkage/zap.h) */
};

struct lk_stream *lk_stream_new(uv_loop_t *loop, void *zctx, const struct lk_stream_opts *opts,
                                lk_stream_cb cb, void *data);
/* Must not be called from inside the stream's own callback; destroy the
 * stream before the ledger client it borrows. */
void lk_stream_destroy(struct lk_stream **s);

/* The last position delivered. */
uint64_t lk_stream_position(const struct lk_stream *s);
/* 1 while a replay is in flight. */
int lk_stream_replaying(const struct lk_stream *s);
/* 1 once a replay has reached the head the ledger reported with it: from then on
 * the consumer has seen everything committed before it started. A consumer that
 * decides on what it folds (the router) waits for this; a replay that fails
 * (ledger down) does not count. */
int lk_stream_caught_up(const struct lk_stream *s);

#endif
