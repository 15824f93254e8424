#include "linkage/zsock.h"

#include <errno.h>
#include <string.h>

#include "linkage/error.h"
#include "linkage/log.h"
#include "linkage/service.h"

#define DEFAULT_BUDGET 256

static void idle_cb(uv_idle_t *h);

void lk_frames_close(struct lk_frames *m) {
  for (int i = 0; i < m->count; i++)
    zmq_msg_close(&m->frame[i]);
  m->count = 0;
}

int lk_frames_body_index(const struct lk_frames *m) {
  /* frame 0 is the peer identity; REQ and well-behaved DEALER peers add an empty delimiter. */
  if (m->count < 2) return -1;
  int i = 1;
  if (zmq_msg_size((zmq_msg_t *)&m->frame[1]) == 0) i = 2;
  return i < m->count ? i : -1;
}

/* Receives one whole message; returns 1 if one was read, 0 if none was waiting, -1 on error. */
static int recv_message(struct lk_zsock *s, struct lk_frames *m) {
  m->count = 0;
  m->truncated = 0;
  for (;;) {
    zmq_msg_t part;
    zmq_msg_init(&part);
    int rc = zmq_msg_recv(&part, s->zs, ZMQ_DONTWAIT);
    if (rc < 0) {
      zmq_msg_close(&part);
      if (m->count == 0 && errno == EAGAIN) return 0;
      if (errno == EAGAIN) return 1; /* cannot happen mid-message: libzmq delivers messages whole */
      lk_frames_close(m);
      return -1;
    }
    int more = zmq_msg_more(&part);
    if (m->count < LK_ZSOCK_MAX_FRAMES) {
      m->frame[m->count++] = part;
    } else {
      m->truncated = 1;
      zmq_msg_close(&part);
    }
    if (!more) return 1;
  }
}

static int socket_readable(struct lk_zsock *s) {
  int events = 0;
  size_t len = sizeof events;
  if (zmq_getsockopt(s->zs, ZMQ_EVENTS, &events, &len) != 0) return 0;
  return (events & ZMQ_POLLIN) != 0;
}

/* Drains up to the budget. If messages remain, the idle handle continues in the next loop turn:
 * the edge-triggered fd will not tell us again. */
static void drain(struct lk_zsock *s) {
  int handled = 0;
  while (!s->closing && s->on_msg && socket_readable(s)) {
    if (handled >= s->budget) {
      uv_idle_start(&s->idle, idle_cb);
      return;
    }
    struct lk_frames m;
    int rc = recv_message(s, &m);
    if (rc <= 0) {
      if (rc < 0) lk_error("receive failed", "socket=%s err=\"%s\"", s->name, zmq_strerror(errno));
      break;
    }
    handled++;
    s->on_msg(s, &m, s->data);
    lk_frames_close(&m);
  }
  if (!s->closing) uv_idle_stop(&s->idle);
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  struct lk_zsock *s = h->data;
  (void)events;
  if (status < 0) {
    /* The fd is libzmq's; an error here will not clear by itself. Stop watching rather than
     * log forever; the socket's owner sees no more messages and its peers time out. */
    lk_error("poll failed; socket no longer watched", "socket=%s err=\"%s\"", s->name,
             uv_strerror(status));
    uv_poll_stop(&s->poll);
    return;
  }
  drain(s);
}

static void idle_cb(uv_idle_t *h) {
  struct lk_zsock *s = h->data;
  drain(s);
}

static int zopt(void *zs, int opt, const void *v, size_t len, const char *name) {
  if (zmq_setsockopt(zs, opt, v, len) == 0) return LK_OK;
  lk_error("cannot set socket option", "socket=%s option=%d err=\"%s\"", name, opt,
           zmq_strerror(errno));
  return LK_EIO;
}

int lk_zsock_open(struct lk_zsock *s, uv_loop_t *loop, void *zctx, int type, const char *endpoint,
                  const struct lk_zsock_opts *opts, lk_zsock_msg_cb on_msg, void *data,
                  const char *name) {
  struct lk_zsock_opts def = {.linger_ms = 200, .maxmsg = 4 << 20};
  if (!opts) opts = &def;
  memset(s, 0, sizeof *s);
  s->on_msg = on_msg;
  s->data = data;
  s->budget = DEFAULT_BUDGET;
  s->name = name ? name : "zsock";

  s->zs = zmq_socket(zctx, type);
  if (!s->zs) {
    lk_error("cannot create socket", "socket=%s err=\"%s\"", s->name, zmq_strerror(errno));
    return LK_EIO;
  }
  int linger = opts->linger_ms ? opts->linger_ms : 200;
  int64_t maxmsg = opts->maxmsg ? opts->maxmsg : (4 << 20);
  if (zopt(s->zs, ZMQ_LINGER, &linger, sizeof linger, s->name) ||
      zopt(s->zs, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg, s->name))
    goto fail_socket;
  if (opts->sndhwm && zopt(s->zs, ZMQ_SNDHWM, &opts->sndhwm, sizeof opts->sndhwm, s->name))
    goto fail_socket;
  if (opts->rcvhwm && zopt(s->zs, ZMQ_RCVHWM, &opts->rcvhwm, sizeof opts->rcvhwm, s->name))
    goto fail_socket;
  if (opts->router_mandatory && type == ZMQ_ROUTER) {
    int one = 1;
    if (zopt(s->zs, ZMQ_ROUTER_MANDATORY, &one, sizeof one, s->name)) goto fail_socket;
  }

  if (opts->curve_secret) {
    int one = 1;
    const char *dom = opts->zap_domain ? opts->zap_domain : "linkage";
    if (zopt(s->zs, ZMQ_CURVE_SERVER, &one, sizeof one, s->name) ||
        zopt(s->zs, ZMQ_CURVE_SECRETKEY, opts->curve_secret, strlen(opts->curve_secret), s->name) ||
        zopt(s->zs, ZMQ_ZAP_DOMAIN, dom, strlen(dom), s->name))
      goto fail_socket;
  } else if (opts->curve_server_key) {
    if (zopt(s->zs, ZMQ_CURVE_SERVERKEY, opts->curve_server_key, strlen(opts->curve_server_key),
             s->name) ||
        zopt(s->zs, ZMQ_CURVE_PUBLICKEY, opts->curve_public, strlen(opts->curve_public), s->name) ||
        zopt(s->zs, ZMQ_CURVE_SECRETKEY, opts->curve_client_secret,
             strlen(opts->curve_client_secret), s->name))
      goto fail_socket;
  }

  int bind = (type == ZMQ_ROUTER || type == ZMQ_PUB || type == ZMQ_XPUB || type == ZMQ_REP);
  const char *ep = endpoint;
  if (*ep == '@' || *ep == '>') {
    bind = *ep == '@';
    ep++;
  }
  if ((bind ? zmq_bind(s->zs, ep) : zmq_connect(s->zs, ep)) != 0) {
    int e = errno;
    lk_error(bind ? "cannot bind" : "cannot connect", "socket=%s endpoint=\"%s\" err=\"%s\"",
             s->name, ep, zmq_strerror(e));
    if (bind && e == EADDRINUSE) lk_service_address_taken(ep);
    goto fail_socket;
  }

  int fd;
  size_t fdlen = sizeof fd;
  if (zmq_getsockopt(s->zs, ZMQ_FD, &fd, &fdlen) != 0) {
    lk_error("cannot get socket fd", "socket=%s err=\"%s\"", s->name, zmq_strerror(errno));
    goto fail_socket;
  }
  if (uv_poll_init(loop, &s->poll, fd) != 0) goto fail_socket;
  s->poll.data = s;
  uv_idle_init(loop, &s->idle);
  s->idle.data = s;
  s->handles_open = 2;
  if (on_msg) {
    uv_poll_start(&s->poll, UV_READABLE, poll_cb);
    /* Messages may already be queued (and the edge already spent) before the poll starts. */
    uv_idle_start(&s->idle, idle_cb);
  }
  return LK_OK;

fail_socket:
  zmq_close(s->zs);
  s->zs = NULL;
  return LK_EIO;
}

static void handle_closed_cb(uv_handle_t *h) {
  struct lk_zsock *s = h->data;
  s->handles_open--;
}

void lk_zsock_close(struct lk_zsock *s) {
  if (!s->zs || s->closing) return;
  s->closing = 1;
  /* The poll handle must stop watching the fd before libzmq closes it. */
  uv_poll_stop(&s->poll);
  uv_idle_stop(&s->idle);
  uv_close((uv_handle_t *)&s->poll, handle_closed_cb);
  uv_close((uv_handle_t *)&s->idle, handle_closed_cb);
  zmq_close(s->zs);
  s->zs = NULL;
}

static void after_send(struct lk_zsock *s) {
  /* A send may have consumed the fd's edge while input arrived: look again next turn. */
  if (s->on_msg && !s->closing) uv_idle_start(&s->idle, idle_cb);
}

int lk_zsock_sendv(struct lk_zsock *s, const void *const *bufs, const size_t *lens, int n,
                   int flags) {
  if (!s->zs) return LK_EIO;
  for (int i = 0; i < n; i++) {
    int f = flags | (i + 1 < n ? ZMQ_SNDMORE : 0);
    if (zmq_send(s->zs, bufs[i], lens[i], f) < 0) {
      int e = errno;
      after_send(s);
      /* libzmq sends multipart messages atomically: a failure on the first frame sends nothing. */
      if (e == EAGAIN) return LK_EAGAIN;
      if (e == EHOSTUNREACH) return LK_ENOENT;
      return LK_EIO;
    }
  }
  after_send(s);
  return LK_OK;
}

int lk_zsock_reply(struct lk_zsock *s, const struct lk_frames *req, int env_frames,
                   const void *body, size_t len) {
  const void *bufs[LK_ZSOCK_MAX_FRAMES + 1];
  size_t lens[LK_ZSOCK_MAX_FRAMES + 1];
  int n = 0;
  for (int i = 0; i < env_frames && i < req->count; i++) {
    zmq_msg_t *f = (zmq_msg_t *)&req->frame[i];
    bufs[n] = zmq_msg_data(f);
    lens[n++] = zmq_msg_size(f);
  }
  bufs[n] = body;
  lens[n++] = len;
  return lk_zsock_sendv(s, bufs, lens, n, ZMQ_DONTWAIT);
}
