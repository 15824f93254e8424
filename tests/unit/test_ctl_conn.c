/* The line linkagectl prints when a daemon does not answer (ctl_silence_line), from what the
 * connection's monitor saw: it names the endpoint, says why, and what to set. */
#include <string.h>
#include <zmq.h>

#include "linkagectl/ctl.h"
#include "lk_test.h"

static struct ctl_silence seen(enum ctl_peer peer, int curve, unsigned events) {
  struct ctl_silence s = {.who = "revoke",
                          .endpoint = "tcp://127.0.0.1:7010",
                          .source = "LINKAGE_LEDGER_ENDPOINT",
                          .run_dir = "var/run",
                          .peer = peer,
                          .curve = curve,
                          .watched = 1,
                          .events = events};
  return s;
}

LK_TEST(nothing_listening_says_so_and_where_the_endpoint_came_from) {
  char line[1400];
  struct ctl_silence s = seen(CTL_PEER_LINK, 0, ZMQ_EVENT_CONNECT_RETRIED);
  LK_CHECK(!ctl_silence_refused(&s));
  ctl_silence_line(&s, 5000, line, sizeof line);
  LK_CHECK_CONTAINS(line, "linkagectl revoke: no answer from tcp://127.0.0.1:7010 in 5 s");
  LK_CHECK_CONTAINS(line, "nothing accepts connections there");
  LK_CHECK_CONTAINS(line, "is the stack running");
  LK_CHECK_CONTAINS(line, "LINKAGE_LEDGER_ENDPOINT or var/run/linkage.conf");
  LK_CHECK(strchr(line, '\n') == NULL);
  ctl_silence_line(&s, 500, line, sizeof line);
  LK_CHECK_CONTAINS(line, "in 0.5 s");
}

LK_TEST(a_plain_command_on_a_curve_link_is_told_to_set_the_link_key) {
  char line[1400];
  struct ctl_silence s =
      seen(CTL_PEER_LINK, 0,
           ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_DISCONNECTED);
  s.protocol_error = ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH;
  LK_CHECK(ctl_silence_refused(&s));
  ctl_silence_line(&s, 5000, line, sizeof line);
  LK_CHECK_CONTAINS(line, "tcp://127.0.0.1:7010 refused the handshake (no CURVE on our side)");
  LK_CHECK_CONTAINS(line, "LINKAGE_LINK_CURVE=true");
  LK_CHECK_CONTAINS(line, "LINKAGE_LINK_KEY_FILE");
  LK_CHECK_CONTAINS(line, "var/run/linkage.conf");
  /* The other way round: CURVE towards a plain port. */
  s.curve = 1;
  ctl_silence_line(&s, 5000, line, sizeof line);
  LK_CHECK_CONTAINS(line, "unset LINKAGE_LINK_CURVE");
}

LK_TEST(a_refused_key_names_the_registry_for_devices_and_units) {
  char line[1400];
  struct ctl_silence s =
      seen(CTL_PEER_UNIT, 1, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  s.who = "unit";
  s.endpoint = "tcp://127.0.0.1:7005";
  s.auth_status = 400;
  LK_CHECK(ctl_silence_refused(&s));
  ctl_silence_line(&s, 5000, line, sizeof line);
  LK_CHECK_CONTAINS(line, "linkagectl unit: tcp://127.0.0.1:7005 refused our key (ZAP status 400)");
  LK_CHECK_CONTAINS(line, "linkagectl unit add");
  /* No key at all on a CURVE device port. */
  s = seen(CTL_PEER_DEVICE, 0, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL);
  s.protocol_error = ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH;
  ctl_silence_line(&s, 5000, line, sizeof line);
  LK_CHECK_CONTAINS(line, "LINKAGE_CURVE_SERVER_KEY_FILE");
  LK_CHECK_CONTAINS(line, "LINKAGE_CURVE_CLIENT_KEY_FILE");
  LK_CHECK_CONTAINS(line, "linkagectl device add");
  /* The link key refused. */
  s = seen(CTL_PEER_LINK, 1, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  s.auth_status = 400;
  ctl_silence_line(&s, 5000, line, sizeof line);
  LK_CHECK_CONTAINS(line, "must be the stack's own link key");
}

LK_TEST(a_handshake_that_keeps_failing_and_a_silent_daemon_are_told_apart) {
  char line[1400];
  /* A wrong server key: the server drops each attempt without a reason; libzmq retries. */
  struct ctl_silence s = seen(CTL_PEER_UNIT, 1,
                              ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                  ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED);
  s.failed = 1; /* once may be a daemon going down mid-handshake */
  LK_CHECK(!ctl_silence_refused(&s));
  ctl_silence_line(&s, 5000, line, sizeof line);
  LK_CHECK_CONTAINS(line, "the handshake failed every time");
  LK_CHECK_CONTAINS(line, "server public key");
  /* Again and again, never once through: a key that will not do, and no use waiting. */
  s.failed = CTL_HANDSHAKE_FAILURES;
  LK_CHECK(ctl_silence_refused(&s));
  ctl_silence_line(&s, 5000, line, sizeof line);
  LK_CHECK_CONTAINS(line, "failed the handshake 3 times over");
  LK_CHECK_CONTAINS(line, "LINKAGE_CURVE_CLIENT_KEY_FILE");
  s.events |= ZMQ_EVENT_HANDSHAKE_SUCCEEDED; /* one got through: not the key */
  LK_CHECK(!ctl_silence_refused(&s));
  /* The wrong link key file: the link's server key is derived from it. */
  s = seen(CTL_PEER_LINK, 1, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
  s.failed = 4;
  ctl_silence_line(&s, 5000, line, sizeof line);
  LK_CHECK_CONTAINS(line, "tcp://127.0.0.1:7010 failed the handshake 4 times over");
  LK_CHECK_CONTAINS(line, "must be the stack's own link key");
  /* A plain command hung up on again and again by a CURVE port (the server closed before the
   * mismatch could be read): the port speaks CURVE. */
  s.curve = 0;
  ctl_silence_line(&s, 5000, line, sizeof line);
  LK_CHECK_CONTAINS(line, "refused the handshake 4 times over (no CURVE on our side)");
  LK_CHECK_CONTAINS(line, "LINKAGE_LINK_CURVE=true");
  /* Connected and shaken hands, and still nothing. */
  s = seen(CTL_PEER_LINK, 0, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
  ctl_silence_line(&s, 5000, line, sizeof line);
  LK_CHECK_CONTAINS(line, "though it took the connection");
  LK_CHECK_CONTAINS(line, "linkagectl status");
  /* Nothing known (no monitor): the general hints. */
  s = seen(CTL_PEER_LINK, 0, 0);
  s.watched = 0;
  ctl_silence_line(&s, 10000, line, sizeof line);
  LK_CHECK_CONTAINS(line, "no answer from tcp://127.0.0.1:7010 in 10 s; is the stack running");
  LK_CHECK_CONTAINS(line, "LINKAGE_LINK_CURVE=true");
}

LK_TEST(the_line_fits_what_it_is_given) {
  char line[40];
  struct ctl_silence s = seen(CTL_PEER_LINK, 0, 0);
  ctl_silence_line(&s, 5000, line, sizeof line);
  LK_CHECK_EQ_INT(strlen(line), sizeof line - 1);
  ctl_silence_line(&s, 5000, line, 0); /* nothing written, no crash */
}

int main(void) {
  return lk_test_run_all();
}
