#ifndef LINKAGE_LEDGER_CLIENT_H
#define LINKAGE_LEDGER_CLIENT_H

#include <stdint.h>
#include <uv.h>

#include "linkage/event.h"
#include "linkage/zsock.h"

/* A service's link to the ledger (DEALER to the ledger's ROUTER).
 *
 * Appends are at-least-once: a request unanswered after `timeout_ms` is sent
 * again under a new request id (the ledger drops the repeat by event id and
 * answers DUPLICATE); after `give_up_ms` in total the callback gets BUSY.
 * Every request's callback runs exactly once, unless the client is closed
 * first (then never). The client holds at most `max_pending` requests;
 * beyond that lk_ledger_append returns LK_EFULL and never calls back. */

struct lk_ledger_client;
struct lk_link;

/* reply is borrowed for the call. On timeout the client synthesises a reply
 * with status BUSY and error "ledger did not answer". */
typedef void (*lk_append_cb)(void *data, const Linkage__V1__AppendReply *reply);
typedef void (*lk_replay_cb)(void *data, const Linkage__V1__ReplayReply *reply);

struct lk_ledger_client_opts {
  const char *endpoint;       /* the ledger's request endpoint */
  unsigned max_pending;       /* default 65536 */
  unsigned timeout_ms;        /* resend after; default 1000 */
  unsigned give_up_ms;        /* BUSY after; default 10000 */
  const struct lk_link *link; /* borrowed, may be NULL: CURVE on the link (linkage/zap.h) */
};

struct lk_ledger_client *lk_ledger_client_new(uv_loop_t *loop, void *zctx,
                                              const struct lk_ledger_client_opts *opts);
/* Closes the socket; pending callbacks are dropped. Nulls *c. */
void lk_ledger_client_destroy(struct lk_ledger_client **c);

/* Sends ev (borrowed; packed before return). */
int lk_ledger_append(struct lk_ledger_client *c, const Linkage__V1__Event *ev, lk_append_cb cb,
                     void *data);
int lk_ledger_replay(struct lk_ledger_client *c, uint64_t from_position, uint32_t limit,
                     lk_replay_cb cb, void *data);

/* Requests waiting for an answer. */
unsigned lk_ledger_client_pending(const struct lk_ledger_client *c);

/* Resends and expires requests; call from the service's tick. */
void lk_ledger_client_tick(struct lk_ledger_client *c, int64_t now_mono_us);

/* Drops every pending request whose callback data is `data`, without calling
 * back: for an owner of requests (such as a stream) that goes away first.
 * The client must not be destroyed from inside one of its callbacks. */
void lk_ledger_client_forget(struct lk_ledger_client *c, void *data);

#endif
