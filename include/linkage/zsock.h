#ifndef LINKAGE_ZSOCK_H
#define LINKAGE_ZSOCK_H

#include <stddef.h>
#include <uv.h>
#include <zmq.h>

/* ZeroMQ sockets on a libuv loop.
 *
 * ZMQ_FD is edge-triggered and is only a hint: libzmq may consume its signal
 * while processing commands inside any zmq_send/zmq_recv/zmq_getsockopt, so a
 * readable socket can stay silent on the fd. We therefore drain while
 * ZMQ_EVENTS says POLLIN (with a per-turn budget for fairness) after the poll
 * fires, and re-check after every send we make through lk_zsock_send*, using
 * an idle handle to continue in the next loop turn instead of recursing. */

#define LK_ZSOCK_MAX_FRAMES 8

/* A received multipart message. Frames are owned by the struct and closed by
 * the caller of the handler after it returns: handlers borrow them. */
struct lk_frames {
  zmq_msg_t frame[LK_ZSOCK_MAX_FRAMES];
  int count;     /* frames held in frame[] */
  int truncated; /* the message had more than LK_ZSOCK_MAX_FRAMES frames; extra ones dropped */
};

struct lk_zsock;
typedef void (*lk_zsock_msg_cb)(struct lk_zsock *s, struct lk_frames *m, void *data);

struct lk_zsock {
  void *zs; /* the ZeroMQ socket; owned */
  uv_poll_t poll;
  uv_idle_t idle;
  lk_zsock_msg_cb on_msg;
  void *data; /* borrowed, handed to on_msg */
  int budget; /* messages handled per loop turn */
  int closing;
  int handles_open; /* poll + idle handles not yet closed */
  const char *name; /* for logs; borrowed, static */
};

/* Common options applied to every socket: finite linger, a maximum message
 * size, bounded high-water marks. */
struct lk_zsock_opts {
  int linger_ms;      /* default 200 */
  long long maxmsg;   /* ZMQ_MAXMSGSIZE; default 4 MiB */
  int sndhwm, rcvhwm; /* 0 = libzmq default */
  int router_mandatory;
  /* CURVE server: the socket's Z85 secret key (NULL: plain). With it the ZAP
   * domain is set, so the process's ZAP handler (linkage/zap.h) decides. */
  const char *curve_secret;
  const char *zap_domain;
  /* CURVE client (when curve_secret is NULL): the server's Z85 public key and our own pair. */
  const char *curve_server_key;
  const char *curve_public;
  const char *curve_client_secret;
};

/* Creates a socket of `type`, applies opts (NULL for defaults), binds or
 * connects `endpoint` ("@tcp://..." or ">tcp://...": '@' binds, '>'
 * connects; without a prefix ROUTER/PUB/XPUB bind, others connect) and starts
 * watching it. on_msg may be NULL for send-only sockets. */
int lk_zsock_open(struct lk_zsock *s, uv_loop_t *loop, void *zctx, int type, const char *endpoint,
                  const struct lk_zsock_opts *opts, lk_zsock_msg_cb on_msg, void *data,
                  const char *name);

/* Stops watching and closes the socket; the handles close asynchronously and
 * the loop must run once more before the struct's memory is reused. */
void lk_zsock_close(struct lk_zsock *s);

/* Sends frames[0..n) as one multipart message. flags: ZMQ_DONTWAIT or 0.
 * Returns LK_OK, LK_EAGAIN (high-water mark, not sent) or LK_EIO. */
int lk_zsock_sendv(struct lk_zsock *s, const void *const *bufs, const size_t *lens, int n,
                   int flags);

/* Sends the routing envelope of a received ROUTER message (every frame up to
 * and including the empty delimiter) followed by one body frame. */
int lk_zsock_reply(struct lk_zsock *s, const struct lk_frames *req, int env_frames,
                   const void *body, size_t len);

/* Index of the first frame after the routing envelope of a ROUTER message:
 * the identity frame and, if present, the empty delimiter (REQ and DEALER
 * with delimiter). Returns -1 if the message has no body frame. */
int lk_frames_body_index(const struct lk_frames *m);

void lk_frames_close(struct lk_frames *m);

#endif
