#ifndef GATEWAY_GW_SSE_H
#define GATEWAY_GW_SSE_H

/* The dashboard's live streams (Server-Sent Events, /api/stream) as plain decisions: who may
 * open one, what a refusal says, and the bounded output buffer of one client. No sockets: the
 * shell (gateway_http.c) counts the streams open, asks, and does the I/O.
 *
 * Limits (README "linkage-gateway"):
 *   one token over sse_max_per_token      429 {"error", "limit": "sse_max_per_token", "max"}
 *   one address over sse_max_per_address  429 {"error", "limit": "sse_max_per_address", "max"}
 *   every stream slot taken               503 {"error", "limit": "sse_max_clients", "max"}
 * The token's limit is named first when several are reached: it is the one the caller can do
 * something about (close its own streams, or use another token), and it keeps a flood with one
 * token from ever reaching the others. */

#include <stddef.h>

#include "gateway.h"

struct gw_sse_limits {
  unsigned max_clients; /* streams in all */
  unsigned per_token;   /* streams of one token (by its name) */
  unsigned per_address; /* streams from one client address */
};

/* The streams open now, counted the way each limit counts them. */
struct gw_sse_load {
  unsigned clients;      /* every open stream */
  unsigned same_token;   /* open with the asking token */
  unsigned same_address; /* open from the asking address */
};

enum gw_sse_admission {
  GW_SSE_ADMIT = 0,
  GW_SSE_TOKEN_FULL,
  GW_SSE_ADDRESS_FULL,
  GW_SSE_SERVER_FULL,
};

/* May one more stream open, with `now` open? A limit of 0 admits nobody. */
enum gw_sse_admission gw_sse_admit(const struct gw_sse_limits *l, const struct gw_sse_load *now);

/* The HTTP status of a refusal (429 for a token's or an address's limit, 503 when every slot
 * is taken), and the seconds to put in Retry-After. 0 for GW_SSE_ADMIT. */
unsigned gw_sse_refusal_status(enum gw_sse_admission a);
unsigned gw_sse_refusal_retry_s(enum gw_sse_admission a);

/* The refusal's body: {"error": "<why, in words>", "limit": "<the setting>", "max": N}. */
void gw_sse_refusal_json(struct gw_buf *b, enum gw_sse_admission a, const struct gw_sse_limits *l);

/* ---- one client's output ---- */

/* Bytes waiting for one client's socket: at most `limit` pending, and never more than `limit`
 * bytes allocated (the buffer compacts before it grows, and grows by doubling up to `limit`).
 * Once drained, a buffer grown past GW_SSE_OUT_KEEP is given back, so an idle client holds
 * nothing but its struct. */
struct gw_sse_out {
  char *data;            /* owned */
  size_t head, len, cap; /* pending bytes are data[head, len) */
  size_t limit;
};

#define GW_SSE_OUT_FIRST 4096       /* the first allocation: a row or two */
#define GW_SSE_OUT_KEEP (16 * 1024) /* kept when drained; larger is freed */

void gw_sse_out_init(struct gw_sse_out *o, size_t limit);
void gw_sse_out_free(struct gw_sse_out *o);
/* Appends n bytes, all or nothing. LK_OK; LK_EFULL when pending + n would pass the limit (the
 * client is too slow to keep: nothing appended); LK_ENOMEM. */
int gw_sse_out_add(struct gw_sse_out *o, const char *s, size_t n);
size_t gw_sse_out_pending(const struct gw_sse_out *o);
/* Moves up to max pending bytes into buf; returns how many. */
size_t gw_sse_out_take(struct gw_sse_out *o, char *buf, size_t max);
/* Drops every pending byte. */
void gw_sse_out_clear(struct gw_sse_out *o);

#endif
