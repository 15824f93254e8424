/* The feed's functional core: topics, replay requests and replay batches. No sockets: the
 * shell (gateway_feed.c) hands in frames and the ledger's replies, and sends what comes out.
 *
 * Topic grammar (README "The public feed"), most general part first so that a ZeroMQ prefix
 * subscription filters by street, then community, then category, then severity:
 *
 *   inc/<street>/<community>/<category>/<severity>/<compound>/<incident_id>/
 *   sys/<event type>/
 *
 * Every part ends with '/', so the prefix "inc/yongquan/jiangpu-road/" takes exactly that
 * community and not "jiangpu-road-east". "-" stands for a part the gateway does not know (an
 * incident not in the view, a compound not in the district). Parts are ids, which
 * lk_id_valid keeps to printable ASCII; a '/' or any other byte that would break the grammar
 * becomes '_'. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "gateway_feed.h"
#include "linkage/error.h"
#include "linkage/event.h"

struct topic_out {
  char *p;
  size_t len, cap;
};

static void put_char(struct topic_out *t, char c) {
  if (t->len + 1 < t->cap) t->p[t->len++] = c;
  t->p[t->len] = '\0';
}

/* One part and its '/': "-" when absent or empty. */
static void put_part(struct topic_out *t, const char *s) {
  if (!s || !s[0]) s = "-";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    put_char(t, (c <= ' ' || c >= 0x7f || c == '/') ? '_' : (char)c);
  }
  put_char(t, '/');
}

static int is_system(Linkage__V1__EventType type) {
  return type == LINKAGE__V1__EVENT_TYPE__KEY_REVOKED ||
         type == LINKAGE__V1__EVENT_TYPE__PLANNED_WORK_DECLARED ||
         type == LINKAGE__V1__EVENT_TYPE__PLANNED_WORK_LIFTED;
}

void gw_feed_topic(const struct gw_incident *inc, const Linkage__V1__Event *ev, char *out,
                   size_t outlen) {
  if (!out || outlen == 0) return;
  struct topic_out t = {.p = out, .len = 0, .cap = outlen};
  out[0] = '\0';
  if (ev && is_system(ev->type)) {
    put_part(&t, "sys");
    put_part(&t, lk_event_type_name(ev->type));
    return;
  }
  put_part(&t, "inc");
  if (!inc) {
    for (int i = 0; i < 5; i++)
      put_part(&t, NULL);
    put_part(&t, ev ? ev->incident_id : NULL);
    return;
  }
  put_part(&t, inc->street_id);
  put_part(&t, inc->community_id);
  put_part(&t, lk_category_name(inc->category));
  put_part(&t, lk_severity_name(inc->severity));
  put_part(&t, inc->compound_id);
  put_part(&t, inc->id);
}

int gw_feed_topic_match(const struct gw_feed_req *req, const char *topic) {
  if (req->nprefixes == 0) return 1;
  for (unsigned i = 0; i < req->nprefixes; i++)
    if (strncmp(topic, req->prefixes[i], strlen(req->prefixes[i])) == 0) return 1;
  return 0;
}

int gw_feed_request_check(const uint8_t *data, size_t len, struct gw_feed_req *out, char *err,
                          size_t errlen) {
  out->after_position = 0;
  out->request_id = 0;
  out->max_events = GW_FEED_BATCH_EVENTS;
  out->nprefixes = 0;
  if (len > GW_FEED_REQUEST_MAX) {
    snprintf(err, errlen, "request of %zu bytes is over the limit of %d bytes", len,
             GW_FEED_REQUEST_MAX);
    return LK_EINVAL;
  }
  Linkage__V1__FeedRequest *r = linkage__v1__feed_request__unpack(NULL, len, data);
  if (!r) {
    snprintf(err, errlen, "not a FeedRequest");
    return LK_EINVAL;
  }
  int rc = LK_EINVAL;
  out->request_id = r->request_id;
  out->after_position = r->after_position;
  if (r->max_events > 0 && r->max_events < GW_FEED_BATCH_EVENTS) out->max_events = r->max_events;
  if (r->n_topic_prefixes > GW_FEED_PREFIXES_MAX) {
    snprintf(err, errlen, "%zu topic prefixes, at most %d", r->n_topic_prefixes,
             GW_FEED_PREFIXES_MAX);
    goto done;
  }
  int everything = r->n_topic_prefixes == 0;
  for (size_t i = 0; i < r->n_topic_prefixes; i++) {
    const char *p = r->topic_prefixes[i];
    size_t n = strlen(p);
    if (n >= GW_FEED_TOPIC_MAX) {
      snprintf(err, errlen, "topic prefix %zu is %zu bytes, at most %d", i, n,
               GW_FEED_TOPIC_MAX - 1);
      goto done;
    }
    if (!lk_utf8_valid(p, n)) {
      snprintf(err, errlen, "topic prefix %zu is not UTF-8", i);
      goto done;
    }
    if (n == 0) everything = 1;
    memcpy(out->prefixes[i], p, n + 1);
  }
  /* "" among the prefixes takes everything, as a ZeroMQ subscription to "" does. */
  out->nprefixes = everything ? 0 : (unsigned)r->n_topic_prefixes;
  rc = LK_OK;
done:
  if (rc != LK_OK) out->nprefixes = 0;
  linkage__v1__feed_request__free_unpacked(r, NULL);
  return rc;
}

static uint8_t *pack_batch(const Linkage__V1__FeedBatch *b, size_t *len) {
  size_t n = linkage__v1__feed_batch__get_packed_size(b);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return NULL;
  linkage__v1__feed_batch__pack(b, buf);
  *len = n;
  return buf;
}

uint8_t *gw_feed_refusal(uint64_t request_id, uint64_t head, const char *error,
                         uint32_t retry_after_ms, size_t *len) {
  Linkage__V1__FeedBatch b = LINKAGE__V1__FEED_BATCH__INIT;
  b.request_id = request_id;
  b.head_position = head;
  b.error = (char *)(error ? error : "refused");
  b.retry_after_ms = retry_after_ms;
  return pack_batch(&b, len);
}

uint8_t *gw_feed_batch(const struct gw_feed_req *req, const Linkage__V1__ReplayReply *r,
                       const struct gw_view *v, uint64_t head, size_t *len, size_t *items_out) {
  if (items_out) *items_out = 0;
  if (r->error && r->error[0]) return gw_feed_refusal(req->request_id, head, r->error, 500, len);
  size_t cap = r->n_events ? r->n_events : 1;
  Linkage__V1__FeedItem *items = calloc(cap, sizeof *items);
  Linkage__V1__FeedItem **ptrs = calloc(cap, sizeof *ptrs);
  char *topics = malloc(cap * GW_FEED_TOPIC_MAX);
  uint8_t *out = NULL;
  if (!items || !ptrs || !topics) goto done;

  uint64_t scanned = req->after_position;
  size_t n = 0, bytes = 0;
  for (size_t i = 0; i < r->n_events; i++) {
    const Linkage__V1__Committed *c = r->events[i];
    if (c->position <= scanned) continue;
    /* Only positions the gateway has folded (topics need the view) and without a hole. */
    if (c->position != scanned + 1 || c->position > head) break;
    Linkage__V1__Event *ev = linkage__v1__event__unpack(NULL, c->event.len, c->event.data);
    if (!ev) {
      /* Never published live either (lk_stream skips what does not decode): skip it here. */
      scanned = c->position;
      continue;
    }
    char *topic = topics + n * GW_FEED_TOPIC_MAX;
    const struct gw_incident *inc =
        ev->incident_id && ev->incident_id[0] ? gw_view_get(v, ev->incident_id) : NULL;
    gw_feed_topic(inc, ev, topic, GW_FEED_TOPIC_MAX);
    linkage__v1__event__free_unpacked(ev, NULL);
    if (gw_feed_topic_match(req, topic)) {
      if (n == req->max_events) break;
      if (n > 0 && bytes + c->event.len > GW_FEED_BATCH_BYTES) break;
      linkage__v1__feed_item__init(&items[n]);
      items[n].topic = topic;
      items[n].position = c->position;
      items[n].event = c->event;
      items[n].hash = c->hash;
      ptrs[n] = &items[n];
      bytes += c->event.len;
      n++;
    }
    scanned = c->position;
  }

  Linkage__V1__FeedBatch b = LINKAGE__V1__FEED_BATCH__INIT;
  b.request_id = req->request_id;
  b.head_position = head;
  b.scanned_to = scanned;
  b.more = scanned < head;
  b.n_items = n;
  b.items = ptrs;
  out = pack_batch(&b, len);
  if (out && items_out) *items_out = n;
done:
  free(items);
  free(ptrs);
  free(topics);
  return out;
}
