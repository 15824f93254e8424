/* The ledger client: a DEALER to the ledger's ROUTER with a bounded table of
 * requests waiting for their answer.
 *
 * A request id names its slot: id = round * slots + slot, so a reply finds
 * its request without a hash table. A reply to an earlier send of a request
 * that has since been resent (new id) still answers it: the first answer
 * wins (usually COMMITTED), and the later one is stale (the DUPLICATE the
 * resend earned). Ids of an earlier occupant of the slot are smaller than
 * the first id of the current one, so they are never mistaken for it.
 * Requests sit on a list in the order they were last sent, so the tick only
 * looks at the ones that are due. */
#include "linkage/ledger_client.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "linkage/clock.h"
#include "linkage/error.h"
#include "linkage/log.h"
#include "linkage/zap.h"

#define HEADROOM 11 /* tag byte + the longest varint, for the request id */
#define NONE UINT32_MAX

enum kind { KIND_FREE = 0, KIND_APPEND, KIND_REPLAY };

struct pending {
  uint64_t request_id;       /* of the latest send */
  uint64_t first_request_id; /* of the first send; any id in between answers this request */
  enum kind kind;
  lk_append_cb append_cb;
  lk_replay_cb replay_cb;
  void *data;
  uint8_t *msg; /* HEADROOM bytes, then the LedgerRequest without its request_id */
  size_t body_len;
  char *event_id; /* for the synthesised BUSY; points into msg's allocation */
  int64_t first_us, sent_us;
  uint32_t prev, next; /* the send-order list */
};

struct lk_ledger_client {
  uv_loop_t *loop;
  struct lk_zsock sock;
  uv_idle_t reaper; /* frees the struct once the socket's handles have closed */
  struct lk_ledger_client_opts opts;
  char endpoint[512];
  struct pending *slot;
  uint32_t nslots; /* a power of two >= max_pending */
  uint32_t *free_stack;
  uint32_t nfree;
  unsigned pending;
  uint64_t round;
  uint32_t head, tail;
};

static void unlink_slot(struct lk_ledger_client *c, uint32_t i) {
  struct pending *p = &c->slot[i];
  if (p->prev != NONE)
    c->slot[p->prev].next = p->next;
  else
    c->head = p->next;
  if (p->next != NONE)
    c->slot[p->next].prev = p->prev;
  else
    c->tail = p->prev;
  p->prev = p->next = NONE;
}

static void append_slot(struct lk_ledger_client *c, uint32_t i) {
  struct pending *p = &c->slot[i];
  p->next = NONE;
  p->prev = c->tail;
  if (c->tail != NONE)
    c->slot[c->tail].next = i;
  else
    c->head = i;
  c->tail = i;
}

static void release(struct lk_ledger_client *c, uint32_t i) {
  struct pending *p = &c->slot[i];
  unlink_slot(c, i);
  free(p->msg);
  memset(p, 0, sizeof *p);
  p->prev = p->next = NONE;
  c->free_stack[c->nfree++] = i;
  c->pending--;
}

/* Gives the request a fresh id and sends it. A send refused at the high-water mark is not an
 * error: the request stays pending and goes again at its timeout. */
static void send_slot(struct lk_ledger_client *c, uint32_t i, int64_t now) {
  struct pending *p = &c->slot[i];
  p->request_id = ++c->round * (uint64_t)c->nslots + i;
  if (!p->first_request_id) p->first_request_id = p->request_id;
  uint8_t var[HEADROOM];
  size_t n = 0;
  var[n++] = 0x08; /* field 1 (request_id), varint */
  for (uint64_t v = p->request_id;; v >>= 7) {
    var[n++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
    if (v < 0x80) break;
  }
  /* Protobuf merges concatenated encodings, so the id goes in front of the stored body. */
  uint8_t *frame = p->msg + HEADROOM - n;
  memcpy(frame, var, n);
  static const uint8_t empty[1] = {0};
  const void *bufs[2] = {empty, frame};
  size_t lens[2] = {0, n + p->body_len};
  int rc = lk_zsock_sendv(&c->sock, bufs, lens, 2, ZMQ_DONTWAIT);
  if (rc != LK_OK && rc != LK_EAGAIN)
    lk_warn("cannot send to the ledger", "request_id=%" PRIu64 " err=\"%s\"", p->request_id,
            lk_strerror(rc));
  p->sent_us = now;
  unlink_slot(c, i);
  append_slot(c, i);
}

static void on_reply(struct lk_zsock *s, struct lk_frames *m, void *data) {
  struct lk_ledger_client *c = data;
  (void)s;
  if (m->count < 1) return;
  zmq_msg_t *f = &m->frame[m->count - 1];
  Linkage__V1__LedgerReply *r =
      linkage__v1__ledger_reply__unpack(NULL, zmq_msg_size(f), zmq_msg_data(f));
  if (!r) {
    lk_warn("malformed reply from the ledger ignored", "bytes=%zu", zmq_msg_size(f));
    return;
  }
  uint32_t i = (uint32_t)(r->request_id & (c->nslots - 1));
  struct pending *p = &c->slot[i];
  if (r->request_id == 0 || p->kind == KIND_FREE || r->request_id < p->first_request_id ||
      r->request_id > p->request_id) {
    lk_debug("stale ledger reply ignored", "request_id=%" PRIu64, r->request_id);
    goto done;
  }
  if (p->kind == KIND_APPEND && r->body_case == LINKAGE__V1__LEDGER_REPLY__BODY_APPEND) {
    lk_append_cb cb = p->append_cb;
    void *d = p->data;
    release(c, i); /* before the callback, which may append again */
    cb(d, r->append);
  } else if (p->kind == KIND_REPLAY && r->body_case == LINKAGE__V1__LEDGER_REPLY__BODY_REPLAY) {
    lk_replay_cb cb = p->replay_cb;
    void *d = p->data;
    release(c, i);
    cb(d, r->replay);
  } else {
    lk_warn("ledger reply of the wrong kind ignored", "request_id=%" PRIu64, r->request_id);
  }
done:
  linkage__v1__ledger_reply__free_unpacked(r, NULL);
}

struct lk_ledger_client *lk_ledger_client_new(uv_loop_t *loop, void *zctx,
                                              const struct lk_ledger_client_opts *opts) {
  struct lk_ledger_client *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->loop = loop;
  c->opts = *opts;
  if (!c->opts.max_pending) c->opts.max_pending = 65536;
  if (!c->opts.timeout_ms) c->opts.timeout_ms = 1000;
  if (!c->opts.give_up_ms) c->opts.give_up_ms = 10000;
  if (!opts->endpoint || strlen(opts->endpoint) >= sizeof c->endpoint) goto fail;
  strcpy(c->endpoint, opts->endpoint);
  c->opts.endpoint = c->endpoint;
  c->nslots = 1;
  while (c->nslots < c->opts.max_pending)
    c->nslots <<= 1;
  c->slot = calloc(c->nslots, sizeof *c->slot);
  c->free_stack = malloc(c->nslots * sizeof *c->free_stack);
  if (!c->slot || !c->free_stack) goto fail;
  /* Slot 0 is never used so that no request id is 0 (the ledger's id for "no request"). */
  for (uint32_t i = c->nslots; i-- > 1;)
    c->free_stack[c->nfree++] = i;
  for (uint32_t i = 0; i < c->nslots; i++)
    c->slot[i].prev = c->slot[i].next = NONE;
  c->head = c->tail = NONE;
  if (c->opts.max_pending > c->nslots - 1) c->opts.max_pending = c->nslots - 1;

  /* Every reply a burst of max_pending requests can produce must fit, or they are dropped and
   * only come back through resends. */
  int hwm = (int)c->nslots + 1000;
  struct lk_zsock_opts zo = {.linger_ms = 0, .maxmsg = 64 << 20, .sndhwm = hwm, .rcvhwm = hwm};
  lk_link_client_opts(opts->link, NULL, &zo);
  char ep[520];
  snprintf(ep, sizeof ep, "%s%s", (c->endpoint[0] == '@' || c->endpoint[0] == '>') ? "" : ">",
           c->endpoint);
  if (lk_zsock_open(&c->sock, loop, zctx, ZMQ_DEALER, ep, &zo, on_reply, c, "ledger_client"))
    goto fail;
  return c;

fail:
  free(c->slot);
  free(c->free_stack);
  free(c);
  return NULL;
}

static void reaper_closed_cb(uv_handle_t *h) {
  free(h->data);
}

static void reaper_cb(uv_idle_t *h) {
  struct lk_ledger_client *c = h->data;
  if (c->sock.handles_open > 0) return;
  uv_idle_stop(h);
  uv_close((uv_handle_t *)h, reaper_closed_cb);
}

void lk_ledger_client_destroy(struct lk_ledger_client **cp) {
  if (!cp || !*cp) return;
  struct lk_ledger_client *c = *cp;
  *cp = NULL;
  for (uint32_t i = 0; i < c->nslots; i++)
    free(c->slot[i].msg);
  free(c->slot);
  free(c->free_stack);
  c->slot = NULL;
  c->free_stack = NULL;
  lk_zsock_close(&c->sock);
  /* The socket's handles close in a later loop turn; free only after that. */
  uv_idle_init(c->loop, &c->reaper);
  c->reaper.data = c;
  uv_idle_start(&c->reaper, reaper_cb);
}

/* Takes a slot for a request whose body (LedgerRequest without request_id) is packed from r. */
static int add(struct lk_ledger_client *c, enum kind kind, const Linkage__V1__LedgerRequest *r,
               const char *event_id, uint32_t *out) {
  if (c->pending >= c->opts.max_pending || c->nfree == 0) return LK_EFULL;
  size_t body = linkage__v1__ledger_request__get_packed_size(r);
  size_t idlen = event_id ? strlen(event_id) + 1 : 0;
  uint8_t *msg = malloc(HEADROOM + body + idlen);
  if (!msg) return LK_ENOMEM;
  linkage__v1__ledger_request__pack(r, msg + HEADROOM);
  uint32_t i = c->free_stack[--c->nfree];
  struct pending *p = &c->slot[i];
  p->kind = kind;
  p->msg = msg;
  p->body_len = body;
  p->event_id = NULL;
  if (event_id) {
    p->event_id = (char *)msg + HEADROOM + body;
    memcpy(p->event_id, event_id, idlen);
  }
  p->first_us = lk_mono_us();
  p->prev = p->next = NONE;
  append_slot(c, i);
  c->pending++;
  *out = i;
  return LK_OK;
}

int lk_ledger_append(struct lk_ledger_client *c, const Linkage__V1__Event *ev, lk_append_cb cb,
                     void *data) {
  if (!c || !ev || !cb) return LK_EINVAL;
  Linkage__V1__AppendRequest a = LINKAGE__V1__APPEND_REQUEST__INIT;
  a.event = (Linkage__V1__Event *)ev;
  Linkage__V1__LedgerRequest r = LINKAGE__V1__LEDGER_REQUEST__INIT;
  r.body_case = LINKAGE__V1__LEDGER_REQUEST__BODY_APPEND;
  r.append = &a;
  uint32_t i;
  int rc = add(c, KIND_APPEND, &r, ev->event_id ? ev->event_id : "", &i);
  if (rc) return rc;
  c->slot[i].append_cb = cb;
  c->slot[i].data = data;
  send_slot(c, i, c->slot[i].first_us);
  return LK_OK;
}

int lk_ledger_replay(struct lk_ledger_client *c, uint64_t from_position, uint32_t limit,
                     lk_replay_cb cb, void *data) {
  if (!c || !cb) return LK_EINVAL;
  Linkage__V1__ReplayRequest q = LINKAGE__V1__REPLAY_REQUEST__INIT;
  q.from_position = from_position;
  q.limit = limit;
  Linkage__V1__LedgerRequest r = LINKAGE__V1__LEDGER_REQUEST__INIT;
  r.body_case = LINKAGE__V1__LEDGER_REQUEST__BODY_REPLAY;
  r.replay = &q;
  uint32_t i;
  int rc = add(c, KIND_REPLAY, &r, NULL, &i);
  if (rc) return rc;
  c->slot[i].replay_cb = cb;
  c->slot[i].data = data;
  send_slot(c, i, c->slot[i].first_us);
  return LK_OK;
}

unsigned lk_ledger_client_pending(const struct lk_ledger_client *c) {
  return c ? c->pending : 0;
}

static void give_up(struct lk_ledger_client *c, uint32_t i) {
  struct pending *p = &c->slot[i];
  if (p->kind == KIND_APPEND) {
    Linkage__V1__AppendReply a = LINKAGE__V1__APPEND_REPLY__INIT;
    a.status = LINKAGE__V1__APPEND_REPLY__STATUS__BUSY;
    a.error = "ledger did not answer";
    char id[LK_ID_MAX * 2];
    snprintf(id, sizeof id, "%s", p->event_id ? p->event_id : "");
    a.event_id = id;
    lk_append_cb cb = p->append_cb;
    void *d = p->data;
    release(c, i);
    cb(d, &a);
  } else {
    Linkage__V1__ReplayReply r = LINKAGE__V1__REPLAY_REPLY__INIT;
    r.error = "ledger did not answer";
    lk_replay_cb cb = p->replay_cb;
    void *d = p->data;
    release(c, i);
    cb(d, &r);
  }
}

void lk_ledger_client_tick(struct lk_ledger_client *c, int64_t now) {
  if (!c || !c->slot) return;
  int64_t timeout = (int64_t)c->opts.timeout_ms * 1000, limit = (int64_t)c->opts.give_up_ms * 1000;
  /* Resent requests go to the tail with sent_us = now, so this visits each due request once. */
  uint32_t n = c->pending;
  while (n-- > 0 && c->head != NONE && c->slot && c->slot[c->head].sent_us + timeout <= now) {
    uint32_t i = c->head;
    if (c->slot[i].first_us + limit <= now)
      give_up(c, i);
    else
      send_slot(c, i, now);
  }
}

void lk_ledger_client_forget(struct lk_ledger_client *c, void *data) {
  if (!c || !c->slot) return;
  for (uint32_t i = c->head; i != NONE;) {
    uint32_t next = c->slot[i].next;
    if (c->slot[i].data == data) release(c, i);
    i = next;
  }
}
