#ifndef LINKAGE_GATEWAY_FEED_H
#define LINKAGE_GATEWAY_FEED_H

/* The public incident feed (README "The public feed", proto/linkage/v1/feed.proto).
 *
 * Live: a PUB socket, [topic][position, 8 bytes big-endian][Event bytes] per committed event
 * and ["hb"][head][""] every second. Replay: a ROUTER answering FeedRequest with FeedBatch,
 * served from the ledger (lk_ledger_replay) with topics from the gateway's view. A subscriber
 * subscribes first, replays from its last position, then follows live: the zguide Clone
 * pattern, as lk_stream does one level down.
 *
 * The PUB socket never blocks: past its high-water mark (sndhwm messages per subscriber)
 * ZeroMQ drops a slow subscriber's messages, which that subscriber then replays. So a slow
 * subscriber is dropped from the feed and never slows the gateway or the pipeline. */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gateway.h"
#include "linkage/ledger_client.h"
#include "linkage/v1/feed.pb-c.h"
#include "linkage/zap.h"
#include "linkage/zsock.h"

#define GW_FEED_TOPIC_MAX 320         /* bytes of a topic, NUL included */
#define GW_FEED_PREFIXES_MAX 16       /* topic prefixes per replay request */
#define GW_FEED_REQUEST_MAX 16384     /* bytes of a FeedRequest; larger ones are refused */
#define GW_FEED_BATCH_EVENTS 1000     /* events per batch (the ledger's replay limit) */
#define GW_FEED_BATCH_BYTES (1 << 20) /* event bytes per batch (the first item always fits) */
#define GW_FEED_PENDING_MAX 64        /* replays waiting for the ledger; more are told "busy" */
#define GW_FEED_SNDHWM 10000          /* live messages queued per subscriber before it is dropped */

/* ---- the functional core (gw_feed_topic.c) ---- */

/* A checked replay request, owning copies of its prefixes. */
struct gw_feed_req {
  uint64_t after_position;
  uint64_t request_id;
  uint32_t max_events; /* 1..GW_FEED_BATCH_EVENTS */
  unsigned nprefixes;  /* 0: every event */
  char prefixes[GW_FEED_PREFIXES_MAX][GW_FEED_TOPIC_MAX];
};

/* Decodes and checks a FeedRequest frame. LK_OK, or LK_EINVAL with why in err; out->request_id
 * is set whenever the frame decoded, so even a refusal can be matched by the client. */
int gw_feed_request_check(const uint8_t *data, size_t len, struct gw_feed_req *out, char *err,
                          size_t errlen);

/* 1 if topic starts with one of req's prefixes (or req has none). */
int gw_feed_topic_match(const struct gw_feed_req *req, const char *topic);

/* The FeedBatch answering req from the ledger's reply r, with topics from v, covering positions
 * up to `head` at most (what the gateway has published): packed into a malloc'd buffer (*len
 * its size), NULL on ENOMEM; *items (may be NULL) gets the number of events in it. r->error
 * becomes a refusal with retry_after_ms. */
uint8_t *gw_feed_batch(const struct gw_feed_req *req, const Linkage__V1__ReplayReply *r,
                       const struct gw_view *v, uint64_t head, size_t *len, size_t *items);

/* A refusal: FeedBatch {error, head_position, request_id, retry_after_ms}, malloc'd. */
uint8_t *gw_feed_refusal(uint64_t request_id, uint64_t head, const char *error,
                         uint32_t retry_after_ms, size_t *len);

/* ---- the shell (gateway_feed.c) ---- */

struct gw_feed_opts {
  const char *pub_endpoint;        /* feed_endpoint */
  const char *replay_endpoint;     /* feed_replay_endpoint */
  struct lk_ledger_client *ledger; /* borrowed; outlives the feed (stop the feed first) */
  const struct gw_view *view;      /* borrowed */
  int sndhwm;                      /* 0: GW_FEED_SNDHWM */
  struct lk_auth *auth; /* borrowed, may be NULL: with auth->curve both ports speak CURVE, only
                           registered subscriber keys get in, and a revocation drops them all
                           from the PUB (they reconnect; the revoked key cannot) */
};

struct gw_feed_stats {
  uint64_t published;      /* live event messages sent */
  uint64_t publish_failed; /* live messages the socket refused (not drops at a subscriber) */
  uint64_t heartbeats;     /* heartbeats sent */
  uint64_t replays;        /* requests answered with a batch */
  uint64_t replay_items;   /* events sent in batches */
  uint64_t refused;        /* requests answered with an error (malformed, busy, ledger down) */
  uint64_t last_published; /* position of the last live message */
};

struct gw_feed_pending {
  struct gw_feed *feed;
  int used;
  uint8_t ident[256]; /* the ROUTER identity of the client */
  size_t ident_len;
  int delimiter; /* the client sent an empty delimiter frame (REQ, or DEALER mimicking it) */
  struct gw_feed_req req;
};

struct gw_feed {
  struct lk_zsock pub, replay;
  int pub_open, replay_open;
  struct lk_auth *auth;   /* borrowed; CURVE for subscribers when auth->curve */
  uint64_t removals_seen; /* auth->removals when the subscribers were last dropped */
  int rebind_pending;     /* the PUB is unbound: bind it again at the next heartbeat */
  char pub_endpoint[LK_CONFIG_STR];
  struct lk_ledger_client *ledger;
  const struct gw_view *view;
  unsigned npending;
  struct gw_feed_pending pending[GW_FEED_PENDING_MAX];
  struct gw_feed_req scratch; /* a request refused while every slot is taken */
  struct gw_feed_stats stats;
};

/* Checks the loopback rule (without CURVE a feed or replay endpoint that is not local is
 * refused), binds both sockets. Returns LK_OK, or an error after logging; on error
 * nothing is left open. f is caller-owned storage. */
int gw_feed_start(struct gw_feed *f, uv_loop_t *loop, void *zctx, const struct gw_feed_opts *o);

/* Publishes one committed event live, its topic from the view (fold the event into the view
 * first, so the topic carries the incident's severity as of this event). Never blocks. */
void gw_feed_publish(struct gw_feed *f, uint64_t position, const Linkage__V1__Event *ev,
                     const uint8_t *event, size_t len);

/* ["hb"][head][""]: call once a second with the last position published (or folded). The head
 * sent is capped at the view's position, which replays can reach. */
void gw_feed_heartbeat(struct gw_feed *f, uint64_t head);

/* Forgets waiting replays (their clients time out and ask again) and closes both sockets. The
 * loop must run once more before f's memory is reused. Call before destroying the ledger
 * client. */
void gw_feed_stop(struct gw_feed *f);

#endif
