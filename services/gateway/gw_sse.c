/* The live streams' admission and per-client buffer, as plain functions (see gw_sse.h). */
#include "gw_sse.h"

#include <stdlib.h>
#include <string.h>

#include "linkage/error.h"

enum gw_sse_admission gw_sse_admit(const struct gw_sse_limits *l, const struct gw_sse_load *now) {
  if (now->same_token >= l->per_token) return GW_SSE_TOKEN_FULL;
  if (now->same_address >= l->per_address) return GW_SSE_ADDRESS_FULL;
  if (now->clients >= l->max_clients) return GW_SSE_SERVER_FULL;
  return GW_SSE_ADMIT;
}

unsigned gw_sse_refusal_status(enum gw_sse_admission a) {
  switch (a) {
  case GW_SSE_TOKEN_FULL:
  case GW_SSE_ADDRESS_FULL: return 429;
  case GW_SSE_SERVER_FULL: return 503;
  default: return 0;
  }
}

unsigned gw_sse_refusal_retry_s(enum gw_sse_admission a) {
  /* A browser's EventSource gives up on any HTTP error and the page tries again after 2 s; a
   * slot of one's own token or address frees only when one of its streams closes, which is
   * not soon, so a caller is told to wait longer for those. */
  switch (a) {
  case GW_SSE_TOKEN_FULL:
  case GW_SSE_ADDRESS_FULL: return 30;
  case GW_SSE_SERVER_FULL: return 5;
  default: return 0;
  }
}

void gw_sse_refusal_json(struct gw_buf *b, enum gw_sse_admission a, const struct gw_sse_limits *l) {
  const char *why = "", *setting = "";
  unsigned max = 0;
  switch (a) {
  case GW_SSE_TOKEN_FULL:
    why = "this token has as many live streams open as one token may; close one, or give each "
          "screen group its own token";
    setting = "sse_max_per_token";
    max = l->per_token;
    break;
  case GW_SSE_ADDRESS_FULL:
    why = "this address has as many live streams open as one address may";
    setting = "sse_max_per_address";
    max = l->per_address;
    break;
  case GW_SSE_SERVER_FULL:
    why = "every live stream slot of the gateway is taken; retry later";
    setting = "sse_max_clients";
    max = l->max_clients;
    break;
  default: return;
  }
  gw_buf_puts(b, "{\"error\":");
  gw_buf_json_str(b, why);
  gw_buf_puts(b, ",\"limit\":");
  gw_buf_json_str(b, setting);
  gw_buf_printf(b, ",\"max\":%u}", max);
}

/* ---- one client's output ---- */

void gw_sse_out_init(struct gw_sse_out *o, size_t limit) {
  memset(o, 0, sizeof *o);
  o->limit = limit;
}

void gw_sse_out_free(struct gw_sse_out *o) {
  free(o->data);
  o->data = NULL;
  o->head = o->len = o->cap = 0;
}

size_t gw_sse_out_pending(const struct gw_sse_out *o) {
  return o->len - o->head;
}

int gw_sse_out_add(struct gw_sse_out *o, const char *s, size_t n) {
  size_t pending = o->len - o->head;
  if (n > o->limit || pending > o->limit - n) return LK_EFULL;
  if (o->len + n > o->cap && o->head) {
    /* What was sent leaves room at the front: reuse it before asking for more. */
    memmove(o->data, o->data + o->head, pending);
    o->len = pending;
    o->head = 0;
  }
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap : GW_SSE_OUT_FIRST;
    while (cap < o->len + n)
      cap *= 2;
    if (cap > o->limit) cap = o->limit; /* len + n <= limit, checked above */
    char *d = realloc(o->data, cap);
    if (!d) return LK_ENOMEM;
    o->data = d;
    o->cap = cap;
  }
  memcpy(o->data + o->len, s, n);
  o->len += n;
  return LK_OK;
}

size_t gw_sse_out_take(struct gw_sse_out *o, char *buf, size_t max) {
  size_t pending = o->len - o->head;
  size_t n = pending < max ? pending : max;
  if (n) memcpy(buf, o->data + o->head, n);
  o->head += n;
  if (o->head == o->len) {
    o->head = o->len = 0;
    /* A burst grew it; an idle client should not keep that. */
    if (o->cap > GW_SSE_OUT_KEEP) gw_sse_out_free(o);
  }
  return n;
}

void gw_sse_out_clear(struct gw_sse_out *o) {
  o->head = o->len = 0;
}
