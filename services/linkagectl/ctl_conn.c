/* linkagectl's request sockets (ctl.h, "request sockets that never hang"). A command talks to a
 * daemon that may be down, not yet up, or up with CURVE and a key this shell does not have. In
 * the last case libzmq drops the connection at the handshake and never tries again, so the
 * socket has no peer left: a blocking send then waits for ever, and a poll only sees silence.
 * Hence: linger 0, sends with ZMQ_DONTWAIT and a deadline, and a monitor on every socket that
 * tells a refused handshake from an empty port from a daemon that said nothing, so the one line
 * printed names the endpoint and what to set. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "ctl.h"
#include "linkage/clock.h"
#include "linkage/service.h"

#define MONITORED                                                                                  \
  (ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED |                      \
   ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |                          \
   ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

/* ---- the line (plain, unit-tested) ---- */

int ctl_silence_refused(const struct ctl_silence *s) {
  if (s->events & (ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)) return 1;
  return s->failed >= CTL_HANDSHAKE_FAILURES && !(s->events & ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
}

static const char *kind_name(enum ctl_peer peer) {
  return peer == CTL_PEER_DEVICE ? "device" : "unit";
}

/* What to set so that our keys are the ones the peer wants. */
static void key_fix(const struct ctl_silence *s, int mismatch, char *out, size_t len) {
  const char *dir = s->run_dir ? s->run_dir : "var/run";
  if (s->peer == CTL_PEER_LINK) {
    if (mismatch && s->curve)
      snprintf(out, len, "it does not speak CURVE: unset LINKAGE_LINK_CURVE (link_curve)");
    else if (!s->curve)
      snprintf(out, len,
               "the stack's links speak CURVE: set LINKAGE_LINK_CURVE=true and "
               "LINKAGE_LINK_KEY_FILE to the stack's link key (make run: var/keys/link.key), or "
               "run from the checkout where make run wrote %s/linkage.conf",
               dir);
    else
      snprintf(out, len,
               "LINKAGE_LINK_KEY_FILE (link_key_file) must be the stack's own link key, the file "
               "its daemons use (make run: var/keys/link.key)");
    return;
  }
  const char *k = kind_name(s->peer);
  if (mismatch && s->curve)
    snprintf(out, len, "it does not speak CURVE: unset LINKAGE_CURVE_CLIENT_KEY_FILE");
  else if (!s->curve)
    snprintf(out, len,
             "the %s port speaks CURVE: set LINKAGE_CURVE_SERVER_KEY_FILE to the server's public "
             "key (make run: var/keys/server.key) and LINKAGE_CURVE_CLIENT_KEY_FILE to the %s's "
             "key pair, registered with linkagectl %s add (make run: var/keys/%s-ID.key)",
             k, k, k, k);
  else
    snprintf(out, len,
             "the key pair in LINKAGE_CURVE_CLIENT_KEY_FILE must be registered for this %s and "
             "not revoked (linkagectl %s add ID PUBLIC_KEY), and LINKAGE_CURVE_SERVER_KEY_FILE "
             "must hold this server's public key",
             k, k);
}

void ctl_silence_line(const struct ctl_silence *s, uint64_t waited_ms, char *out, size_t len) {
  char fix[512];
  const char *who = s->who ? s->who : "";
  const char *ep = s->endpoint ? s->endpoint : "?";
  const char *source = s->source ? s->source : "the configuration";
  const char *dir = s->run_dir ? s->run_dir : "var/run";
  double secs = (double)waited_ms / 1000.0;
  unsigned ev = s->events;

  if (len == 0) return;
  if (ev & ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
    key_fix(s, 0, fix, sizeof fix);
    snprintf(out, len, "linkagectl %s: %s refused our key (ZAP status %u); %s", who, ep,
             (unsigned)s->auth_status, fix);
  } else if (ev & ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
    int mismatch = s->protocol_error == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH;
    key_fix(s, mismatch, fix, sizeof fix);
    if (mismatch)
      snprintf(out, len, "linkagectl %s: %s refused the handshake (%s on our side); %s", who, ep,
               s->curve ? "CURVE" : "no CURVE", fix);
    else
      snprintf(out, len,
               "linkagectl %s: %s broke off the handshake (protocol error 0x%x): is it the "
               "endpoint %s means? %s",
               who, ep, (unsigned)s->protocol_error, source, fix);
  } else if (ctl_silence_refused(s) && !s->curve) {
    /* A plain client on a CURVE port: the server may hang up before libzmq has read its
     * greeting, and then says no more than that, every time. */
    key_fix(s, 0, fix, sizeof fix);
    snprintf(out, len,
             "linkagectl %s: %s refused the handshake %u times over (no CURVE on our side); %s",
             who, ep, s->failed, fix);
  } else if (ctl_silence_refused(s)) {
    key_fix(s, 0, fix, sizeof fix);
    snprintf(out, len,
             "linkagectl %s: %s failed the handshake %u times over: with CURVE, the server key "
             "we expect is not its key; %s",
             who, ep, s->failed, fix);
  } else if (!s->watched) {
    key_fix(s, 0, fix, sizeof fix);
    snprintf(out, len,
             "linkagectl %s: no answer from %s in %g s; is the stack running (linkagectl status)? "
             "%s or %s/linkage.conf (make run writes it) names the endpoint; under CURVE: %s",
             who, ep, secs, source, dir, fix);
  } else if ((ev & ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) ||
             ((ev & ZMQ_EVENT_DISCONNECTED) && !(ev & ZMQ_EVENT_HANDSHAKE_SUCCEEDED))) {
    key_fix(s, 0, fix, sizeof fix);
    snprintf(out, len,
             "linkagectl %s: no answer from %s in %g s: the handshake failed every time (with "
             "CURVE: the wrong server public key?); %s",
             who, ep, secs, fix);
  } else if (!(ev & ZMQ_EVENT_CONNECTED)) {
    snprintf(out, len,
             "linkagectl %s: no answer from %s in %g s: nothing accepts connections there; is "
             "the stack running (linkagectl status)? %s or %s/linkage.conf names the endpoint: "
             "run from the checkout where make run wrote it, or set LINKAGE_RUN_DIR",
             who, ep, secs, source, dir);
  } else {
    snprintf(out, len,
             "linkagectl %s: no answer from %s in %g s, though it took the connection: the "
             "daemon is busy or stopped, or %s names another daemon's port (linkagectl status)",
             who, ep, secs, source);
  }
}

/* ---- the socket ---- */

/* Reads the monitor's events that are waiting into c->seen. */
static void drain_monitor(struct ctl_conn *c) {
  if (!c->monitor) return;
  for (;;) {
    zmq_msg_t head, addr;
    zmq_msg_init(&head);
    if (zmq_msg_recv(&head, c->monitor, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&head);
      return;
    }
    /* Two frames: 16-bit event and 32-bit value in host order, then the endpoint. */
    if (zmq_msg_size(&head) >= 6) {
      const uint8_t *d = zmq_msg_data(&head);
      uint16_t event;
      uint32_t value;
      memcpy(&event, d, sizeof event);
      memcpy(&value, d + 2, sizeof value);
      c->seen.events |= event;
      if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) c->seen.protocol_error = value;
      if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) c->seen.auth_status = value;
      if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) c->seen.failed++;
    }
    int more = zmq_msg_more(&head);
    zmq_msg_close(&head);
    while (more) {
      zmq_msg_init(&addr);
      if (zmq_msg_recv(&addr, c->monitor, ZMQ_DONTWAIT) < 0)
        more = 0;
      else
        more = zmq_msg_more(&addr);
      zmq_msg_close(&addr);
    }
  }
}

/* The monitor is a diagnosis, not a duty: without it the command still works, and says less. */
static void start_monitor(struct ctl_conn *c, void *zctx) {
  static unsigned serial;
  char ep[64];
  int zero = 0;
  snprintf(ep, sizeof ep, "inproc://ctl-monitor-%u", serial++);
  if (zmq_socket_monitor(c->sock, ep, MONITORED) != 0) return;
  c->monitor = zmq_socket(zctx, ZMQ_PAIR);
  if (!c->monitor) goto fail;
  zmq_setsockopt(c->monitor, ZMQ_LINGER, &zero, sizeof zero);
  if (zmq_connect(c->monitor, ep) != 0) goto fail_connect;
  c->seen.watched = 1;
  return;

fail_connect:
  zmq_close(c->monitor);
  c->monitor = NULL;
fail:
  zmq_socket_monitor(c->sock, NULL, 0);
}

int ctl_conn_open(struct ctl_conn *c, void *zctx, int type, const char *endpoint,
                  enum ctl_peer peer, const char *who, const char *source) {
  int zero = 0, mechanism = ZMQ_NULL;
  size_t mlen = sizeof mechanism;

  memset(c, 0, sizeof *c);
  c->seen.who = who;
  c->seen.endpoint = endpoint;
  c->seen.source = source;
  c->seen.run_dir = lk_run_dir();
  c->seen.peer = peer;
  c->sock = zmq_socket(zctx, type);
  if (!c->sock) {
    fprintf(stderr, "linkagectl %s: cannot create a socket: %s\n", who, zmq_strerror(errno));
    return -1;
  }
  /* A command that gives up must not be held at exit by what it could not send. */
  if (zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero) != 0) goto fail;
  if ((peer == CTL_PEER_LINK ? ctl_link_client(c->sock, who) : ctl_curve_client(c->sock, who)) != 0)
    goto fail_quiet;
  if (zmq_getsockopt(c->sock, ZMQ_MECHANISM, &mechanism, &mlen) == 0)
    c->seen.curve = mechanism == ZMQ_CURVE;
  start_monitor(c, zctx);
  if (zmq_connect(c->sock, endpoint) != 0) {
    fprintf(stderr, "linkagectl %s: cannot connect to \"%s\": %s\n", who, endpoint,
            zmq_strerror(errno));
    goto fail_quiet;
  }
  return 0;

fail:
  fprintf(stderr, "linkagectl %s: cannot set up a socket: %s\n", who, zmq_strerror(errno));
fail_quiet:
  ctl_conn_close(c);
  return -1;
}

/* Polls the socket for `events` and the monitor until the deadline. */
static enum ctl_wait wait_for(struct ctl_conn *c, short events, int64_t deadline) {
  for (;;) {
    zmq_pollitem_t items[2] = {{c->sock, 0, events, 0}, {c->monitor, 0, ZMQ_POLLIN, 0}};
    int n = c->monitor ? 2 : 1;
    drain_monitor(c);
    if (ctl_silence_refused(&c->seen)) return CTL_WAIT_REFUSED;
    int64_t left = deadline - lk_mono_us();
    if (left <= 0) return CTL_WAIT_TIMEOUT;
    int rc = zmq_poll(items, n, (long)((left + 999) / 1000));
    if (rc < 0) return errno == EINTR ? CTL_WAIT_INTR : CTL_WAIT_ERROR;
    if (items[0].revents & events) return CTL_WAIT_READY;
  }
}

enum ctl_wait ctl_conn_send(struct ctl_conn *c, const void *const *bufs, const size_t *lens,
                            size_t n, int64_t deadline_mono_us) {
  for (;;) {
    /* The first frame decides: once it is queued, the rest of the message goes with it. */
    size_t i = 0;
    for (; i < n; i++) {
      int flags = ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0);
      if (zmq_send(c->sock, bufs[i], lens[i], flags) != (int)lens[i]) break;
    }
    if (i == n) return CTL_WAIT_READY;
    if (i > 0 || errno != EAGAIN) return CTL_WAIT_ERROR;
    enum ctl_wait w = wait_for(c, ZMQ_POLLOUT, deadline_mono_us);
    if (w != CTL_WAIT_READY) return w;
  }
}

enum ctl_wait ctl_conn_wait(struct ctl_conn *c, int64_t deadline_mono_us) {
  return wait_for(c, ZMQ_POLLIN, deadline_mono_us);
}

void ctl_conn_explain(const struct ctl_conn *c, uint64_t waited_ms) {
  char line[1400];
  ctl_silence_line(&c->seen, waited_ms, line, sizeof line);
  fprintf(stderr, "%s\n", line);
}

void ctl_conn_close(struct ctl_conn *c) {
  if (c->sock && c->monitor) zmq_socket_monitor(c->sock, NULL, 0);
  if (c->monitor) zmq_close(c->monitor);
  if (c->sock) zmq_close(c->sock);
  c->monitor = c->sock = NULL;
}
