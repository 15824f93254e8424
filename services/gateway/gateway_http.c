/* The gateway's HTTP server: libmicrohttpd in its external-epoll mode, driven by the libuv loop
 * (one uv_poll on MHD's epoll descriptor, one uv_timer for MHD's timeouts), so every handler runs
 * on the loop thread with the view. What a request asks for is decided by gw_route_parse; the
 * documents are written by the core renderers; requests that need the router or intake are
 * suspended until the shell calls back with the answer.
 *
 * Server-Sent Events (/api/stream): who may open a stream is gw_sse_admit's decision (per token,
 * per address, in all). Each client has a buffer of at most sse_client_buffer_bytes that the
 * content reader drains; with nothing to send the connection is suspended, and a change resumes
 * it. A client whose buffer would pass its cap is slow: it is cut off at once (it reconnects
 * with Last-Event-ID and resumes), so a slow or never-reading client holds neither memory nor a
 * slot. Cutting needs more than the content reader's END_WITH_ERROR: libmicrohttpd 0.9.75 only
 * asks the reader for more once its own write buffer has gone out, which a client that does not
 * read never lets happen, and it has no call to close a connection. So the shell shuts the
 * socket down (sse_cut): epoll reports a hang-up, MHD closes the connection as failed, and the
 * response's free callback releases the client. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway_shell.h"
#include "gw_open311.h"
#include "gw_sse.h"
#include "linkage/clock.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "linkage/hash.h"
#include "linkage/log.h"
#include "linkage/service.h"
#include "linkage/token.h"

#include <sodium.h>

#define MAX_FIELDS 32
#define MAX_BODY (64 * 1024)
/* The dashboard: index.html, app.js, style.css from www_dir, and lifecycle.js made from the
 * life-cycle table at start (gw_route.c). */
#define GW_STATIC_FILES 4
#define SSE_HEARTBEAT_US (15 * 1000000LL)
/* The kernel's send buffer of a live stream, fixed instead of autotuned (up to 4 MiB a socket on
 * Linux): what a client that stops reading can hold in the kernel is then 2 x this (the kernel
 * doubles it for its bookkeeping), and it still carries a burst of rows at once. */
#define SSE_SNDBUF (64 * 1024)
/* MHD asks the content reader for at most this much at a time. A chunked response (HTTP/1.1)
 * is read into the connection's own pool, so this block is only used by HTTP/1.0 clients but is
 * allocated with every stream's response: keep it small. */
#define SSE_BLOCK 4096
/* What a live client costs beyond its buffer: MHD's connection pool (32 KiB by default), the
 * response with its block, our structs. Used to count what a mass disconnect freed. */
#define SSE_CLIENT_OVERHEAD (48 * 1024)
/* After this much freed by clients that left, the allocator is asked to give whole free pages
 * back to the system (malloc_trim): glibc keeps freed memory in its heap otherwise, and a flood
 * of clients that left would keep the gateway's RSS at its peak. */
#define SSE_TRIM_AFTER_BYTES (4 * 1024 * 1024)

struct static_file {
  const char *name;
  char *data; /* owned */
  size_t len;
};

struct sse_client {
  struct gw_http *h;
  struct MHD_Connection *conn;
  struct gw_sse_out out;
  size_t peak_cap; /* the most out ever held allocated: what leaving frees */
  char token[LK_TOKEN_NAME_MAX + 1];
  char addr[64];
  int suspended;
  int dead;   /* cut off (slow, or out of memory): nothing more is sent */
  int ending; /* the gateway stops: end the stream cleanly, the browser reconnects */
  struct sse_client *prev, *next;
};

struct gw_http {
  struct gateway *g; /* borrowed: the shell owns us */
  struct MHD_Daemon *d;
  uv_poll_t poll;
  uv_timer_t timer;
  int poll_open, timer_open;
  struct static_file files[GW_STATIC_FILES];
  struct sse_client sse; /* list head */
  unsigned sse_count;
  struct gw_sse_limits sse_limits;
  size_t sse_buffer_bytes;  /* one client's cap */
  size_t sse_pending;       /* bytes waiting in every client's buffer */
  size_t sse_freed_bytes;   /* freed by clients that left since the last trim */
  unsigned sse_freed_count; /* how many clients that was */
  int64_t last_heartbeat_us;
  struct gw_buf row; /* scratch for publish */
  uint64_t requests, refused_auth, sse_dropped, sse_resets, sse_trims;
  uint64_t sse_refused_token, sse_refused_address, sse_refused_full;
};

struct field {
  char *key, *val; /* owned */
  size_t len;
};

struct req {
  struct gw_http *h;
  struct MHD_Connection *conn;
  struct gw_route route;
  int route_status;
  struct MHD_PostProcessor *pp;
  struct field fields[MAX_FIELDS];
  int nfields;
  size_t body_bytes;
  int body_error; /* 413 or 400 */
  enum lk_role role;
  char name[LK_TOKEN_NAME_MAX + 1];
  int authed;
  struct gw_waiter waiter;
  int waiting, answered;
  /* the answer, once known */
  unsigned status;
  char *body;
  size_t body_len;
  const char *ctype;
  uint32_t retry_after_s;
};

static void kick(struct gw_http *h);

/* ---- responses ---- */

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
                               const char *ctype, uint32_t retry_after_s) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!r) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", ctype ? ctype : "application/json");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"linkage\"");
  if (retry_after_s) {
    char ra[16];
    snprintf(ra, sizeof ra, "%u", retry_after_s);
    MHD_add_response_header(r, "Retry-After", ra);
  }
  enum MHD_Result rc = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return rc;
}

static int is_open311(const struct req *q) {
  return q->route.kind == GW_R_O311_SERVICES || q->route.kind == GW_R_O311_REQUESTS ||
         q->route.kind == GW_R_O311_REQUEST || q->route.kind == GW_R_O311_POST;
}

/* An error in the shape the caller reads: Open311's documents under /open311/, JSON elsewhere. */
static enum MHD_Result respond_error(struct req *q, unsigned status, const char *why,
                                     uint32_t retry_after_s) {
  struct gw_buf b;
  gw_buf_init(&b);
  const char *ctype = "application/json";
  if (is_open311(q)) {
    gw_open311_error(&b, q->route.xml, (int)status, why);
    if (q->route.xml) ctype = "text/xml; charset=utf-8";
  } else {
    gw_buf_puts(&b, "{\"error\":");
    gw_buf_json_str(&b, why);
    gw_buf_puts(&b, "}");
  }
  size_t n;
  char *body = gw_buf_take(&b, &n);
  return respond(q->conn, status, body, n, ctype, retry_after_s);
}

static enum MHD_Result respond_buf(struct req *q, unsigned status, struct gw_buf *b,
                                   const char *ctype) {
  if (b->failed) {
    gw_buf_free(b);
    return respond_error(q, 500, "out of memory", 0);
  }
  size_t n;
  char *body = gw_buf_take(b, &n);
  return respond(q->conn, status, body, n, ctype, 0);
}

/* ---- arguments ---- */

/* gw_arg_fn over a request: form fields first, then the query string. */
static const char *req_arg(void *ctx, const char *key) {
  struct req *q = ctx;
  for (int i = 0; i < q->nfields; i++)
    if (strcmp(q->fields[i].key, key) == 0) return q->fields[i].val;
  return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result post_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *filename, const char *content_type,
                                  const char *transfer_encoding, const char *data, uint64_t off,
                                  size_t size) {
  struct req *q = cls;
  (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
  struct field *f = NULL;
  /* A long value arrives in pieces with growing offsets. */
  if (off > 0 && q->nfields > 0 && strcmp(q->fields[q->nfields - 1].key, key) == 0)
    f = &q->fields[q->nfields - 1];
  if (!f) {
    if (q->nfields == MAX_FIELDS) {
      q->body_error = 400;
      return MHD_NO;
    }
    f = &q->fields[q->nfields];
    f->key = strdup(key);
    f->val = calloc(1, 1);
    f->len = 0;
    if (!f->key || !f->val) {
      free(f->key);
      free(f->val);
      q->body_error = 500;
      return MHD_NO;
    }
    q->nfields++;
  }
  char *v = realloc(f->val, f->len + size + 1);
  if (!v) {
    q->body_error = 500;
    return MHD_NO;
  }
  memcpy(v + f->len, data, size);
  f->len += size;
  v[f->len] = '\0';
  f->val = v;
  return MHD_YES;
}

static void client_addr(struct MHD_Connection *conn, char *out, size_t n) {
  snprintf(out, n, "?");
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!ci || !ci->client_addr) return;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

/* The token the request presents: a Bearer header, or ?token= (EventSource cannot send headers),
 * or api_key (Open311's convention, in the query or the form). */
static const char *presented_token(struct req *q) {
  const char *a = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Authorization");
  if (a && strncasecmp(a, "Bearer ", 7) == 0) return a + 7;
  const char *t = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "token");
  if (t) return t;
  return req_arg(q, "api_key");
}

static enum lk_role need_role(enum gw_need n) {
  switch (n) {
  case GW_NEED_READ: return LK_ROLE_READER;
  case GW_NEED_REPORT: return LK_ROLE_REPORTER;
  case GW_NEED_ACT: return LK_ROLE_COORDINATOR;
  default: return LK_ROLE_NONE;
  }
}

/* Returns 0 when the request may go on, else the status it was refused with (answered). */
static unsigned authorise(struct req *q, enum MHD_Result *rc) {
  struct gateway *g = q->h->g;
  char addr[64];
  client_addr(q->conn, addr, sizeof addr);
  const char *name = NULL;
  uint32_t retry_ms = 0;
  enum gw_auth_outcome outcome;
  enum lk_role role =
      gw_auth_check(&g->auth, presented_token(q), addr, lk_mono_us(), &name, &retry_ms, &outcome);
  if (outcome == GW_AUTH_RATE_LIMITED) {
    q->h->refused_auth++;
    *rc = respond_error(q, 429, "too many failed attempts from this address; try later",
                        (retry_ms + 999) / 1000);
    return 429;
  }
  if (outcome != GW_AUTH_OK) {
    q->h->refused_auth++;
    if (outcome == GW_AUTH_BAD) lk_debug("refused a bad token", "addr=%s", addr);
    *rc = respond_error(q, 401,
                        outcome == GW_AUTH_MISSING ? "a token is required (Authorization: Bearer)"
                                                   : "unknown or revoked token",
                        0);
    return 401;
  }
  if (!gw_role_allows(role, need_role(q->route.need))) {
    *rc = respond_error(q, 403, "this token's role may not do that", 0);
    return 403;
  }
  q->role = role;
  snprintf(q->name, sizeof q->name, "%s", name ? name : "");
  q->authed = 1;
  return 0;
}

/* ---- read-only handlers ---- */

static const char *public_url(struct req *q, char *buf, size_t n) {
  struct gateway *g = q->h->g;
  if (g->cfg->public_url[0]) return g->cfg->public_url;
  /* The Host the client used, when it looks like a host (it ends up in XML and links). */
  const char *host = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Host");
  int ok = host && *host && strlen(host) < 200;
  for (const char *p = host; ok && *p; p++)
    ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
         *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']';
  if (ok)
    snprintf(buf, n, "http://%s", host);
  else
    snprintf(buf, n, "http://%.64s:%ld", g->cfg->http_address, g->cfg->http_port);
  return buf;
}

/* qsort has no context argument; the loop thread is the only caller. */
static int64_t urgency_now_us;
static int cmp_urgency(const void *a, const void *b) {
  return gw_incident_urgency_cmp(*(const struct gw_incident *const *)a,
                                 *(const struct gw_incident *const *)b, urgency_now_us);
}

static enum MHD_Result get_incidents(struct req *q) {
  struct gateway *g = q->h->g;
  const char *closed = req_arg(q, "closed");
  int with_closed = closed && strcmp(closed, "0") != 0;
  struct gw_buf b;
  gw_buf_init(&b);
  gw_buf_printf(&b, "{\"position\":%" PRIu64 ",\"now\":%lld,\"caught_up\":%s,\"incidents\":[",
                g->view.position, (long long)(lk_now_us() / 1000), g->caught_up ? "true" : "false");
  /* Most urgent first: what a coordinator must see first is the first row. */
  const struct gw_incident **rows = malloc((size_t)g->view.count * sizeof *rows);
  if (!rows) {
    gw_buf_free(&b);
    return respond_error(q, 503, "out of memory", 1);
  }
  size_t n = 0;
  for (uint32_t i = 1; i < g->view.count; i++) {
    const struct gw_incident *inc = &g->view.incidents[i];
    if (inc->state == LK_STATE_CLOSED && !with_closed) continue;
    rows[n++] = inc;
  }
  urgency_now_us = lk_now_us();
  qsort(rows, n, sizeof *rows, cmp_urgency);
  for (size_t i = 0; i < n; i++) {
    if (i) gw_buf_puts(&b, ",");
    gw_json_incident(&b, rows[i], 0);
  }
  free(rows);
  gw_buf_puts(&b, "]}");
  return respond_buf(q, 200, &b, "application/json");
}

static struct sse_client *sse_open(struct gw_http *h, struct MHD_Connection *conn,
                                   const char *token, const char *addr);
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max);
static void sse_free(void *cls);
static int sse_queue(struct sse_client *c, const char *s, size_t n);
static void sse_format_row(struct gw_buf *row, const struct gw_incident *inc);

static int cmp_position(const void *a, const void *b) {
  uint64_t x = (*(const struct gw_incident *const *)a)->last_position;
  uint64_t y = (*(const struct gw_incident *const *)b)->last_position;
  return x < y ? -1 : x > y;
}

/* The open streams, counted the way each limit counts them. A linear walk: there are at most
 * sse_max_clients, and a stream opens far less often than it sends. */
static struct gw_sse_load sse_load(const struct gw_http *h, const char *token, const char *addr) {
  struct gw_sse_load n = {.clients = h->sse_count};
  for (const struct sse_client *c = h->sse.next; c != &h->sse; c = c->next) {
    if (c->dead) continue; /* cut off: its slot is on its way back */
    n.same_token += strcmp(c->token, token) == 0;
    n.same_address += strcmp(c->addr, addr) == 0;
  }
  return n;
}

static enum MHD_Result refuse_stream(struct req *q, enum gw_sse_admission a, const char *addr) {
  struct gw_http *h = q->h;
  uint64_t *count = a == GW_SSE_TOKEN_FULL     ? &h->sse_refused_token
                    : a == GW_SSE_ADDRESS_FULL ? &h->sse_refused_address
                                               : &h->sse_refused_full;
  /* A page whose stream is refused asks again every few seconds: say so for the first refusal
   * and then at every power of two, with the count, rather than once a request. */
  uint64_t k = ++*count;
  if ((k & (k - 1)) == 0)
    lk_warn("refused a live stream", "limit=%s token=%s addr=%s refused=%llu",
            a == GW_SSE_TOKEN_FULL     ? "sse_max_per_token"
            : a == GW_SSE_ADDRESS_FULL ? "sse_max_per_address"
                                       : "sse_max_clients",
            q->name, addr, (unsigned long long)k);
  struct gw_buf b;
  gw_buf_init(&b);
  gw_sse_refusal_json(&b, a, &h->sse_limits);
  if (b.failed) {
    gw_buf_free(&b);
    return respond_error(q, 503, "out of memory", 1);
  }
  size_t n;
  char *body = gw_buf_take(&b, &n);
  return respond(q->conn, gw_sse_refusal_status(a), body, n, "application/json",
                 gw_sse_refusal_retry_s(a));
}

/* Queues every incident changed after `after`, in position order, in its current state (the
 * page keeps rows, not events). When that is more than the client's buffer holds, it is told
 * to reload instead (`event: reset`, then live changes after the view's position): a
 * reconnecting page must never be cut off by its own replay and come back for the same one. */
static int sse_replay(struct sse_client *c, uint64_t after) {
  struct gw_http *h = c->h;
  const struct gw_view *v = &h->g->view;
  size_t n = 0;
  for (uint32_t i = 1; i < v->count; i++)
    if (v->incidents[i].last_position > after) n++;
  if (!n) return LK_OK;
  const struct gw_incident **changed = malloc(n * sizeof *changed);
  if (!changed) return LK_ENOMEM;
  n = 0;
  for (uint32_t i = 1; i < v->count; i++)
    if (v->incidents[i].last_position > after) changed[n++] = &v->incidents[i];
  qsort(changed, n, sizeof *changed, cmp_position);
  int rc = LK_OK;
  for (size_t i = 0; i < n && rc == LK_OK; i++) {
    sse_format_row(&h->row, changed[i]);
    rc = h->row.failed ? LK_ENOMEM : sse_queue(c, h->row.data, h->row.len);
  }
  free(changed);
  if (rc != LK_EFULL) return rc;
  h->sse_pending -= gw_sse_out_pending(&c->out);
  gw_sse_out_clear(&c->out);
  h->sse_resets++;
  lk_info("a resumed stream is longer than a client's buffer; told it to reload",
          "after=%llu changed=%zu token=%s", (unsigned long long)after, n, c->token);
  gw_buf_reset(&h->row);
  gw_buf_printf(
      &h->row, "retry: 1000\n\nid: %" PRIu64 "\nevent: reset\ndata: {\"position\":%" PRIu64 "}\n\n",
      v->position, v->position);
  return h->row.failed ? LK_ENOMEM : sse_queue(c, h->row.data, h->row.len);
}

/* Fixes the kernel's send buffer of a stream's socket (SSE_SNDBUF). A failure only leaves it
 * autotuned. */
static void sse_set_sndbuf(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  int size = SSE_SNDBUF;
  if (ci && setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) != 0)
    lk_debug("cannot set a live stream's send buffer", "err=\"%s\"", strerror(errno));
}

static enum MHD_Result get_stream(struct req *q) {
  struct gw_http *h = q->h;
  char addr[64];
  client_addr(q->conn, addr, sizeof addr);
  struct gw_sse_load load = sse_load(h, q->name, addr);
  enum gw_sse_admission a = gw_sse_admit(&h->sse_limits, &load);
  if (a != GW_SSE_ADMIT) return refuse_stream(q, a, addr);
  /* Resume after the last position the client saw. */
  const char *after_s = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "Last-Event-ID");
  if (!after_s) after_s = req_arg(q, "after");
  uint64_t after = UINT64_MAX;
  if (after_s && *after_s) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(after_s, &end, 10);
    if (errno || *end) return respond_error(q, 400, "after must be a ledger position", 0);
    after = v;
  }
  struct sse_client *c = sse_open(h, q->conn, q->name, addr);
  if (!c) return respond_error(q, 500, "out of memory", 0);
  int rc = sse_queue(c, "retry: 1000\n\n", 13);
  if (rc == LK_OK && after != UINT64_MAX) rc = sse_replay(c, after);
  if (rc != LK_OK) {
    sse_free(c);
    return respond_error(q, 500, "out of memory", 0);
  }
  struct MHD_Response *r =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, sse_read, c, sse_free);
  if (!r) {
    sse_free(c);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "X-Accel-Buffering", "no");
  enum MHD_Result ret = MHD_queue_response(q->conn, 200, r);
  MHD_destroy_response(r); /* a failed queue frees c through sse_free */
  if (ret == MHD_YES) sse_set_sndbuf(q->conn);
  return ret;
}

static enum MHD_Result handle_get(struct req *q) {
  struct gateway *g = q->h->g;
  struct gw_buf b;
  gw_buf_init(&b);
  char url[256];
  switch (q->route.kind) {
  case GW_R_STATIC:
    for (size_t i = 0; i < sizeof q->h->files / sizeof q->h->files[0]; i++)
      if (strcmp(q->h->files[i].name, q->route.file) == 0) {
        struct MHD_Response *r = MHD_create_response_from_buffer(
            q->h->files[i].len, q->h->files[i].data, MHD_RESPMEM_PERSISTENT);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Content-Type", q->route.type);
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(
            r, "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'");
        enum MHD_Result rc = MHD_queue_response(q->conn, 200, r);
        MHD_destroy_response(r);
        return rc;
      }
    return respond_error(q, 404, "no such file", 0);
  case GW_R_HEALTH:
    gw_buf_printf(&b, "{\"position\":%" PRIu64 ",\"caught_up\":%s}", g->view.position,
                  g->caught_up ? "true" : "false");
    return respond_buf(q, 200, &b, "application/json");
  case GW_R_ME:
    gw_buf_puts(&b, "{\"name\":");
    gw_buf_json_str(&b, q->name);
    gw_buf_puts(&b, ",\"role\":");
    gw_buf_json_str(&b, lk_token_role_name(q->role));
    gw_buf_puts(&b, "}");
    return respond_buf(q, 200, &b, "application/json");
  case GW_R_DISTRICT:
    gw_json_district(&b, g->district);
    return respond_buf(q, 200, &b, "application/json");
  case GW_R_INCIDENTS: return get_incidents(q);
  case GW_R_INCIDENT: {
    const struct gw_incident *inc = gw_view_get(&g->view, q->route.id);
    if (!inc) return respond_error(q, 404, "unknown incident", 0);
    gw_json_incident(&b, inc, 1);
    return respond_buf(q, 200, &b, "application/json");
  }
  case GW_R_STREAM: return get_stream(q);
  case GW_R_WINDOWS:
    gw_json_windows(&b, &g->view);
    return respond_buf(q, 200, &b, "application/json");
  case GW_R_CAP: {
    const struct gw_incident *inc = gw_view_get(&g->view, q->route.id);
    if (!inc) return respond_error(q, 404, "unknown incident", 0);
    struct gw_cap_opts o = {.sender = g->cfg->cap_sender,
                            .base_url = public_url(q, url, sizeof url)};
    gw_cap_alert(&b, &g->view, inc, &o);
    return respond_buf(q, 200, &b, "application/cap+xml; charset=utf-8");
  }
  case GW_R_CAP_ATOM: {
    struct gw_cap_opts o = {.sender = g->cfg->cap_sender,
                            .base_url = public_url(q, url, sizeof url)};
    gw_cap_atom(&b, &g->view, &o, lk_now_us(), 100);
    return respond_buf(q, 200, &b, "application/atom+xml; charset=utf-8");
  }
  case GW_R_O311_SERVICES:
  case GW_R_O311_REQUESTS:
  case GW_R_O311_REQUEST: {
    const char *ctype = q->route.xml ? "text/xml; charset=utf-8" : "application/json";
    int status;
    if (q->route.kind == GW_R_O311_SERVICES)
      status = q->route.id[0]
                   ? gw_open311_service_definition(&b, q->route.xml, g->district, q->route.id)
                   : gw_open311_services(&b, q->route.xml, g->district, req_arg, q);
    else if (q->route.kind == GW_R_O311_REQUESTS)
      status = gw_open311_requests(&b, q->route.xml, &g->view, req_arg, q, lk_now_us());
    else
      status = gw_open311_request(&b, q->route.xml, &g->view, q->route.id);
    return respond_buf(q, (unsigned)status, &b, ctype);
  }
  default: return respond_error(q, 404, "not found", 0);
  }
}

/* ---- handlers that wait for the router or intake ---- */

static struct req *req_of(struct gw_waiter *w) {
  return (struct req *)((char *)w - offsetof(struct req, waiter));
}

static void answered(struct req *q, unsigned status, struct gw_buf *b, const char *ctype,
                     uint32_t retry_after_s) {
  q->status = b->failed ? 500 : status;
  q->body = gw_buf_take(b, &q->body_len);
  q->ctype = ctype;
  q->retry_after_s = retry_after_s;
  q->answered = 1;
  if (q->waiting) {
    q->waiting = 0;
    MHD_resume_connection(q->conn);
    kick(q->h);
  }
}

static void on_command_reply(struct gw_waiter *w, const Linkage__V1__CommandReply *rep) {
  struct req *q = req_of(w);
  struct gw_buf b;
  gw_buf_init(&b);
  unsigned status;
  if (!rep) {
    status = 503;
    gw_buf_puts(&b, "{\"error\":\"the router did not answer in time; retry with the same "
                    "command_id\"}");
  } else {
    status = (unsigned)gw_command_http_status(rep);
    if (status == 200) {
      gw_buf_puts(&b, "{\"status\":\"ok\",\"command_id\":");
      gw_buf_json_str(&b, rep->command_id);
      gw_buf_puts(&b, ",\"event_id\":");
      gw_buf_json_str(&b, rep->event_id);
      gw_buf_printf(&b, ",\"position\":%" PRIu64 "}", rep->position);
    } else {
      gw_buf_puts(&b, "{\"error\":");
      gw_buf_json_str(&b, rep->error[0] ? rep->error : "refused");
      gw_buf_puts(&b, "}");
    }
  }
  answered(q, status, &b, "application/json", status == 503 ? 1 : 0);
}

static void on_report_ack(struct gw_waiter *w, const Linkage__V1__ReportAck *ack) {
  struct req *q = req_of(w);
  struct gw_buf b;
  gw_buf_init(&b);
  unsigned status = (unsigned)gw_open311_post_reply(&b, q->route.xml, ack);
  uint32_t ra = 0;
  if (status == 503) ra = ack && ack->retry_after_ms ? (ack->retry_after_ms + 999) / 1000 : 1;
  answered(q, status, &b, q->route.xml ? "text/xml; charset=utf-8" : "application/json", ra);
}

static enum MHD_Result handle_post(struct req *q) {
  struct gateway *g = q->h->g;
  char err[256];
  int rc;
  if (q->route.kind == GW_R_O311_POST) {
    Linkage__V1__Report report;
    struct gw_open311_post_store *st = malloc(sizeof *st);
    if (!st) return respond_error(q, 500, "out of memory", 0);
    if (gw_open311_parse_post(req_arg, q, g->district, lk_now_us(), &report, st, err, sizeof err) !=
        LK_OK) {
      free(st);
      return respond_error(q, 400, err, 0);
    }
    q->waiter.on_ack = on_report_ack;
    rc = gateway_send_report(g, &report, &q->waiter);
    free(st);
  } else {
    struct gw_command c;
    char generated[3 + 2 * 12 + 1] = "gw-";
    uint8_t rnd[12];
    randombytes_buf(rnd, sizeof rnd);
    lk_hex(rnd, sizeof rnd, generated + 3);
    if (gw_command_build(&q->route, req_arg, q, q->name, generated, &c, err, sizeof err) != LK_OK)
      return respond_error(q, 400, err, 0);
    q->waiter.on_command = on_command_reply;
    rc = gateway_send_command(g, &c.cmd, &q->waiter);
  }
  if (rc != LK_OK) return respond_error(q, 503, "the gateway is busy; retry", 1);
  q->waiting = 1;
  MHD_suspend_connection(q->conn);
  return MHD_YES;
}

/* ---- the access handler ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  struct gw_http *h = cls;
  (void)version;
  struct req *q = *con_cls;
  enum MHD_Result rc = MHD_YES;
  if (!q) {
    q = calloc(1, sizeof *q);
    if (!q) return MHD_NO;
    *con_cls = q;
    q->h = h;
    q->conn = conn;
    h->requests++;
    q->route_status = gw_route_parse(method, url, &q->route);
    if (q->route_status != 200)
      return respond_error(q, (unsigned)q->route_status,
                           q->route_status == 405 ? "method not allowed" : "not found", 0);
    int post = strcmp(method, "POST") == 0;
    /* A token in the header or query is checked before any body is read; Open311 clients may
     * put api_key in the form instead, which is checked once the form is in. */
    if (q->route.need != GW_NEED_NONE &&
        (!post || MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization") ||
         MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token") ||
         MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "api_key")) &&
        authorise(q, &rc))
      return rc;
    if (!post) return handle_get(q);
    q->pp = MHD_create_post_processor(conn, 8192, post_field, q);
    if (!q->pp) {
      /* No body at all is an empty form; any other type we cannot read. */
      const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
      if (ct && *ct) return respond_error(q, 415, "send application/x-www-form-urlencoded", 0);
    }
    return MHD_YES;
  }
  if (*upload_size) {
    q->body_bytes += *upload_size;
    if (q->body_bytes > MAX_BODY)
      q->body_error = 413;
    else if (!q->body_error && q->pp && MHD_post_process(q->pp, upload, *upload_size) != MHD_YES &&
             !q->body_error)
      q->body_error = 400;
    *upload_size = 0;
    return MHD_YES;
  }
  if (q->answered) {
    enum MHD_Result r = respond(conn, q->status, q->body, q->body_len, q->ctype, q->retry_after_s);
    q->body = NULL; /* handed to MHD */
    return r;
  }
  if (q->waiting) return MHD_YES; /* resumed without an answer yet: MHD asks again */
  if (q->body_error)
    return respond_error(q, (unsigned)q->body_error,
                         q->body_error == 413 ? "the body is too large" : "malformed form body", 0);
  if (!q->authed && q->route.need != GW_NEED_NONE && authorise(q, &rc)) return rc;
  return handle_post(q);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
  (void)cls, (void)conn, (void)why;
  struct req *q = *con_cls;
  if (!q) return;
  if (q->pp) MHD_destroy_post_processor(q->pp);
  for (int i = 0; i < q->nfields; i++) {
    free(q->fields[i].key);
    free(q->fields[i].val);
  }
  free(q->body);
  free(q);
  *con_cls = NULL;
}

/* ---- Server-Sent Events ---- */

static struct sse_client *sse_open(struct gw_http *h, struct MHD_Connection *conn,
                                   const char *token, const char *addr) {
  struct sse_client *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->h = h;
  c->conn = conn;
  gw_sse_out_init(&c->out, h->sse_buffer_bytes);
  snprintf(c->token, sizeof c->token, "%s", token);
  snprintf(c->addr, sizeof c->addr, "%s", addr);
  c->prev = h->sse.prev;
  c->next = &h->sse;
  h->sse.prev->next = c;
  h->sse.prev = c;
  h->sse_count++;
  return c;
}

/* The response's free callback: MHD has closed the connection (or never sent the response). */
static void sse_free(void *cls) {
  struct sse_client *c = cls;
  struct gw_http *h = c->h;
  c->prev->next = c->next;
  c->next->prev = c->prev;
  h->sse_count--;
  h->sse_pending -= gw_sse_out_pending(&c->out);
  h->sse_freed_bytes += c->peak_cap + SSE_CLIENT_OVERHEAD;
  h->sse_freed_count++;
  gw_sse_out_free(&c->out);
  free(c);
}

/* Wakes a client that waits for data. */
static void sse_wake(struct sse_client *c) {
  if (!c->suspended) return;
  c->suspended = 0;
  MHD_resume_connection(c->conn);
  kick(c->h);
}

/* Ends a client's stream now and frees its buffer; MHD frees the rest once it has closed the
 * connection. The socket is shut down rather than closed (MHD owns the descriptor and closes
 * it): epoll then reports a hang-up and MHD closes the connection as failed on its next run,
 * whether or not its write buffer ever drained. SO_LINGER 0 makes that close a reset, so the
 * kernel drops what the client never read at once instead of retrying it for minutes. A
 * suspended client is resumed too, so MHD looks at it. */
static void sse_cut(struct sse_client *c) {
  struct gw_http *h = c->h;
  if (c->dead) return;
  c->dead = 1;
  h->sse_pending -= gw_sse_out_pending(&c->out);
  gw_sse_out_free(&c->out);
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (ci) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0 ||
        shutdown(ci->connect_fd, SHUT_RDWR) != 0)
      lk_debug("cannot shut a live stream's socket down", "err=\"%s\"", strerror(errno));
  }
  sse_wake(c);
  kick(h);
}

/* Adds bytes to a client's buffer. LK_EFULL: the client's buffer is at its cap (it is too
 * slow to keep); LK_ENOMEM. Nothing is added on error. */
static int sse_queue(struct sse_client *c, const char *s, size_t n) {
  int rc = gw_sse_out_add(&c->out, s, n);
  if (rc != LK_OK) return rc;
  c->h->sse_pending += n;
  if (c->out.cap > c->peak_cap) c->peak_cap = c->out.cap;
  return LK_OK;
}

/* A live change or a heartbeat for one client: queued and the client woken, or the client cut
 * off when it cannot take it (it reconnects with Last-Event-ID and resumes). */
static void sse_append(struct sse_client *c, const char *s, size_t n) {
  if (c->dead || c->ending) return;
  int rc = sse_queue(c, s, n);
  if (rc == LK_OK) {
    sse_wake(c);
    return;
  }
  c->h->sse_dropped++;
  lk_warn(rc == LK_EFULL ? "cut off a slow live client" : "cut off a live client: out of memory",
          "token=%s addr=%s pending=%zu cap=%zu", c->token, c->addr, gw_sse_out_pending(&c->out),
          c->out.limit);
  sse_cut(c);
}

static void sse_format_row(struct gw_buf *row, const struct gw_incident *inc) {
  gw_buf_reset(row);
  gw_buf_printf(row, "id: %" PRIu64 "\nevent: incident\ndata: ", inc->last_position);
  gw_json_incident(row, inc, 0);
  gw_buf_puts(row, "\n\n");
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
  struct sse_client *c = cls;
  (void)pos;
  if (c->ending) return MHD_CONTENT_READER_END_OF_STREAM;
  if (c->dead) return MHD_CONTENT_READER_END_WITH_ERROR;
  if (gw_sse_out_pending(&c->out) == 0) {
    c->suspended = 1;
    MHD_suspend_connection(c->conn);
    return 0;
  }
  size_t n = gw_sse_out_take(&c->out, buf, max);
  c->h->sse_pending -= n;
  return (ssize_t)n;
}

void gw_http_publish(struct gw_http *h, uint32_t slot, uint64_t position) {
  if (h->sse_count == 0) return;
  struct gw_buf *row = &h->row;
  if (slot) {
    sse_format_row(row, &h->g->view.incidents[slot]);
  } else {
    gw_buf_reset(row);
    gw_buf_printf(row, "id: %" PRIu64 "\nevent: planned_work\ndata: ", position);
    gw_json_windows(row, &h->g->view);
    gw_buf_puts(row, "\n\n");
  }
  if (row->failed) return;
  for (struct sse_client *c = h->sse.next; c != &h->sse; c = c->next)
    sse_append(c, row->data, row->len);
}

/* ---- MHD on the libuv loop ---- */

static void timer_cb(uv_timer_t *t);

/* Lets MHD do what is ready, then arms the timer for what it will want next. */
static void run(struct gw_http *h) {
  if (!h->d) return;
  MHD_run(h->d);
  MHD_UNSIGNED_LONG_LONG ms;
  if (MHD_get_timeout(h->d, &ms) == MHD_YES)
    uv_timer_start(&h->timer, timer_cb, ms > 60000 ? 60000 : (uint64_t)ms, 0);
  else
    uv_timer_start(&h->timer, timer_cb, 60000, 0);
}

static void timer_cb(uv_timer_t *t) {
  run(t->data);
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  (void)status, (void)events;
  run(p->data);
}

/* A resumed connection needs MHD to run again, in the next loop turn rather than inside the
 * callback that resumed it. */
static void kick(struct gw_http *h) {
  if (h->timer_open) uv_timer_start(&h->timer, timer_cb, 0, 0);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[256];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  char q[300];
  lk_warn("http", "detail=%s", lk_log_quote(q, sizeof q, msg));
}

static int load_file(const char *dir, struct static_file *f) {
  char path[LK_CONFIG_STR + 64];
  snprintf(path, sizeof path, "%s/%s", dir, f->name);
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    lk_error("cannot read a dashboard file", "path=%s err=\"%s\"", path, strerror(errno));
    return LK_EIO;
  }
  struct gw_buf b;
  gw_buf_init(&b);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
    gw_buf_add(&b, chunk, n);
  int bad = ferror(fp);
  fclose(fp);
  if (bad || b.failed) {
    gw_buf_free(&b);
    lk_error("cannot read a dashboard file", "path=%s", path);
    return LK_EIO;
  }
  f->data = gw_buf_take(&b, &f->len);
  return f->data ? LK_OK : LK_ENOMEM;
}

int gw_http_start(struct gateway *g, struct gw_http **out) {
  struct gw_http *h = calloc(1, sizeof *h);
  if (!h) return LK_ENOMEM;
  h->g = g;
  h->sse.prev = h->sse.next = &h->sse;
  h->sse_limits = (struct gw_sse_limits){.max_clients = (unsigned)g->cfg->sse_max_clients,
                                         .per_token = (unsigned)g->cfg->sse_max_per_token,
                                         .per_address = (unsigned)g->cfg->sse_max_per_address};
  h->sse_buffer_bytes = (size_t)g->cfg->sse_client_buffer_bytes;
  gw_buf_init(&h->row);
  *out = h;
  static const char *const names[GW_STATIC_FILES] = {"index.html", "app.js", "style.css",
                                                     "lifecycle.js"};
  for (size_t i = 0; i < GW_STATIC_FILES - 1; i++) {
    h->files[i].name = names[i];
    if (load_file(g->cfg->www_dir, &h->files[i]) != LK_OK) return LK_EIO;
  }
  struct gw_buf js;
  gw_buf_init(&js);
  gw_json_lifecycle_js(&js);
  h->files[GW_STATIC_FILES - 1].name = names[GW_STATIC_FILES - 1];
  h->files[GW_STATIC_FILES - 1].data =
      js.failed ? NULL : gw_buf_take(&js, &h->files[GW_STATIC_FILES - 1].len);
  gw_buf_free(&js);
  if (!h->files[GW_STATIC_FILES - 1].data) return LK_ENOMEM;

  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)g->cfg->http_port);
  if (inet_pton(AF_INET, g->cfg->http_address, &sa.sin_addr) != 1) {
    lk_error("http_address must be an IPv4 address", "http_address=%s", g->cfg->http_address);
    return LK_EINVAL;
  }
  h->d = MHD_start_daemon(
      MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, (uint16_t)g->cfg->http_port,
      NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_SOCK_ADDR,
      (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      (unsigned)256, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_END);
  if (!h->d) {
    int e = errno;
    lk_error("cannot start the HTTP server", "address=%s port=%ld err=\"%s\"", g->cfg->http_address,
             g->cfg->http_port, strerror(e));
    if (e == EADDRINUSE) {
      char ep[600];
      snprintf(ep, sizeof ep, "http://%.512s:%ld", g->cfg->http_address, g->cfg->http_port);
      lk_service_address_taken(ep);
    }
    return LK_EIO;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
  if (!di) {
    lk_error("libmicrohttpd has no epoll descriptor", "%s", "");
    return LK_EIO;
  }
  uv_loop_t *loop = g->rt->loop;
  if (uv_timer_init(loop, &h->timer) != 0) return LK_EIO;
  h->timer.data = h;
  h->timer_open = 1;
  if (uv_poll_init(loop, &h->poll, di->epoll_fd) != 0) return LK_EIO;
  h->poll.data = h;
  h->poll_open = 1;
  uv_poll_start(&h->poll, UV_READABLE, poll_cb);
  h->last_heartbeat_us = lk_now_us();
  run(h);
  return LK_OK;
}

/* Duties: the live streams' heartbeat; giving memory back after many clients left. */
void gw_http_tick(struct gw_http *h, int64_t now_us) {
  if (h->sse_freed_bytes >= SSE_TRIM_AFTER_BYTES) {
    /* Once a mass disconnect is over, or while it goes on: each call is a few ms at most. */
    malloc_trim(0);
    h->sse_trims++;
    lk_info("gave memory freed by live clients back to the system", "clients=%u freed_bytes=%zu",
            h->sse_freed_count, h->sse_freed_bytes);
    h->sse_freed_bytes = 0;
    h->sse_freed_count = 0;
  }
  if (now_us - h->last_heartbeat_us < SSE_HEARTBEAT_US) return;
  h->last_heartbeat_us = now_us;
  /* A comment line keeps proxies from closing the stream and finds clients that went away
   * (a suspended connection does not notice a close until it writes). */
  for (struct sse_client *c = h->sse.next; c != &h->sse; c = c->next)
    sse_append(c, ": hb\n\n", 6);
}

unsigned gw_http_sse_clients(const struct gw_http *h) {
  return h ? h->sse_count : 0;
}

void gw_http_status(const struct gw_http *h, char *buf, size_t len) {
  snprintf(buf, len,
           "http_requests=%llu http_refused_auth=%llu sse_clients=%u sse_dropped=%llu "
           "sse_refused_token=%llu sse_refused_address=%llu sse_refused_full=%llu "
           "sse_resets=%llu sse_pending=%zu sse_trims=%llu",
           (unsigned long long)h->requests, (unsigned long long)h->refused_auth, h->sse_count,
           (unsigned long long)h->sse_dropped, (unsigned long long)h->sse_refused_token,
           (unsigned long long)h->sse_refused_address, (unsigned long long)h->sse_refused_full,
           (unsigned long long)h->sse_resets, h->sse_pending, (unsigned long long)h->sse_trims);
}

static void handle_closed(uv_handle_t *handle) {
  struct gw_http *h = handle->data;
  if (handle == (uv_handle_t *)&h->poll)
    h->poll_open = 0;
  else
    h->timer_open = 0;
  if (!h->poll_open && !h->timer_open) free(h);
}

void gw_http_stop(struct gw_http **hp) {
  struct gw_http *h = *hp;
  if (!h) return;
  *hp = NULL;
  if (h->d) {
    /* MHD may not stop with suspended connections: end every live stream, let MHD see it. */
    for (struct sse_client *c = h->sse.next; c != &h->sse; c = c->next) {
      c->ending = 1;
      sse_wake(c);
    }
    MHD_run(h->d);
    MHD_stop_daemon(h->d);
    h->d = NULL;
  }
  for (size_t i = 0; i < GW_STATIC_FILES; i++)
    free(h->files[i].data);
  gw_buf_free(&h->row);
  /* The handles close asynchronously; the struct goes when the last one has. */
  int open = h->timer_open + h->poll_open;
  if (!open) {
    free(h);
    return;
  }
  if (h->poll_open) uv_close((uv_handle_t *)&h->poll, handle_closed);
  if (h->timer_open) uv_close((uv_handle_t *)&h->timer, handle_closed);
}
