/* Bus tests: the ZeroMQ-on-libuv glue over inproc:// and ipc://, the loop
 * run to completion, no handle left open (uv_loop_close must return 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "linkage/error.h"
#include "linkage/zsock.h"
#include "lk_test.h"

#define MESSAGES 5000 /* well above the per-turn budget, so the idle continuation is exercised */

struct echo {
  struct lk_zsock server, client;
  uv_timer_t guard;
  int echoed, received, in_order, bad_envelope;
};

static void on_server(struct lk_zsock *s, struct lk_frames *m, void *data) {
  struct echo *e = data;
  int body = lk_frames_body_index(m);
  if (body < 0) {
    e->bad_envelope++;
    return;
  }
  if (lk_zsock_reply(s, m, body, zmq_msg_data(&m->frame[body]), zmq_msg_size(&m->frame[body])) ==
      LK_OK)
    e->echoed++;
}

static void finish(struct echo *e) {
  lk_zsock_close(&e->server);
  lk_zsock_close(&e->client);
  uv_close((uv_handle_t *)&e->guard, NULL);
}

static void on_client(struct lk_zsock *s, struct lk_frames *m, void *data) {
  struct echo *e = data;
  (void)s;
  /* A DEALER reply arrives as [empty delimiter, body]. */
  if (m->count == 2 && zmq_msg_size(&m->frame[1]) == sizeof(int)) {
    int v;
    memcpy(&v, zmq_msg_data(&m->frame[1]), sizeof v);
    if (v == e->received) e->in_order++;
  }
  if (++e->received == MESSAGES) finish(e);
}

static void guard_cb(uv_timer_t *t) {
  struct echo *e = t->data;
  fprintf(stderr, "guard timer fired: received %d of %d\n", e->received, MESSAGES);
  finish(e);
}

static void run_echo(const char *bind_ep, const char *connect_ep) {
  uv_loop_t loop;
  void *ctx = zmq_ctx_new();
  struct echo e;
  memset(&e, 0, sizeof e);
  LK_CHECK_EQ_INT(uv_loop_init(&loop), 0);
  struct lk_zsock_opts o = {.linger_ms = 0, .sndhwm = 100000, .rcvhwm = 100000};
  LK_CHECK_EQ_INT(
      lk_zsock_open(&e.server, &loop, ctx, ZMQ_ROUTER, bind_ep, &o, on_server, &e, "srv"), LK_OK);
  LK_CHECK_EQ_INT(
      lk_zsock_open(&e.client, &loop, ctx, ZMQ_DEALER, connect_ep, &o, on_client, &e, "cli"),
      LK_OK);
  uv_timer_init(&loop, &e.guard);
  e.guard.data = &e;
  uv_timer_start(&e.guard, guard_cb, 10000, 0);
  int sent = 0;
  for (int i = 0; i < MESSAGES; i++) {
    const void *b[2] = {"", &i};
    size_t l[2] = {0, sizeof i};
    if (lk_zsock_sendv(&e.client, b, l, 2, 0) == LK_OK) sent++;
  }
  LK_CHECK_EQ_INT(sent, MESSAGES);
  uv_run(&loop, UV_RUN_DEFAULT);
  LK_CHECK_EQ_INT(e.echoed, MESSAGES);
  LK_CHECK_EQ_INT(e.received, MESSAGES);
  LK_CHECK_EQ_INT(e.in_order, MESSAGES);
  LK_CHECK_EQ_INT(e.bad_envelope, 0);
  LK_CHECK_EQ_INT(e.server.handles_open, 0);
  LK_CHECK_EQ_INT(uv_loop_close(&loop), 0);
  zmq_ctx_term(ctx);
}

LK_TEST(echo_over_inproc_delivers_everything_in_order) {
  run_echo("inproc://echo", "inproc://echo");
}

LK_TEST(echo_over_ipc_delivers_everything_in_order) {
  char ep[128], cep[128];
  snprintf(ep, sizeof ep, "@ipc:///tmp/lk-zsock-test-%d.ipc", (int)getpid());
  snprintf(cep, sizeof cep, ">ipc:///tmp/lk-zsock-test-%d.ipc", (int)getpid());
  run_echo(ep, cep);
  unlink(ep + 7);
}

LK_TEST(body_index_handles_envelopes) {
  struct lk_frames m;
  memset(&m, 0, sizeof m);
  zmq_msg_init_size(&m.frame[0], 5);
  zmq_msg_init_size(&m.frame[1], 0);
  zmq_msg_init_size(&m.frame[2], 3);
  m.count = 3;
  LK_CHECK_EQ_INT(lk_frames_body_index(&m), 2); /* REQ / DEALER with delimiter */
  m.count = 2;
  LK_CHECK_EQ_INT(lk_frames_body_index(&m), -1); /* only an empty frame: no body */
  zmq_msg_close(&m.frame[1]);
  zmq_msg_init_size(&m.frame[1], 4);
  LK_CHECK_EQ_INT(lk_frames_body_index(&m), 1); /* DEALER without delimiter */
  m.count = 1;
  LK_CHECK_EQ_INT(lk_frames_body_index(&m), -1);
  m.count = 3;
  lk_frames_close(&m);
  LK_CHECK_EQ_INT(m.count, 0);
}

LK_TEST(open_fails_cleanly_on_bad_endpoint) {
  uv_loop_t loop;
  void *ctx = zmq_ctx_new();
  struct lk_zsock s;
  uv_loop_init(&loop);
  LK_CHECK_EQ_INT(lk_zsock_open(&s, &loop, ctx, ZMQ_ROUTER, "@bogus://x", NULL, NULL, NULL, "bad"),
                  LK_EIO);
  LK_CHECK(s.zs == NULL);
  LK_CHECK_EQ_INT(uv_loop_close(&loop), 0);
  zmq_ctx_term(ctx);
}

int main(void) {
  return lk_test_run_all();
}
