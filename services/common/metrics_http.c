/* GET /metrics on the daemon's loop (linkage/metrics_http.h). The wiring follows the gateway's
 * server (services/gateway/gateway_http.c): libmicrohttpd without threads of its own, its epoll
 * descriptor watched by one uv_poll, its timeouts by one uv_timer. A scrape is written whole
 * into memory (a few kilobytes) and handed to MHD, which frees it. */
#include "linkage/metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkage/error.h"
#include "linkage/log.h"
#include "linkage/service.h"

/* Scrapers are few (a Prometheus or two, an operator's curl): a small bound keeps a runaway
 * client from holding descriptors the daemon needs. */
#define METRICS_CONNECTIONS_MAX 16
#define METRICS_CONNECTION_TIMEOUT_S 10

struct lk_metrics_http {
  struct MHD_Daemon *d;
  uv_poll_t poll;
  uv_timer_t timer;
  int poll_open, timer_open;
  lk_metrics_cb cb;
  void *data;
};

int lk_metrics_listen_parse(const char *listen, struct sockaddr_storage *sa) {
  char host[64];
  const char *colon, *port_s;
  memset(sa, 0, sizeof *sa);
  if (!listen || !*listen || strcmp(listen, "0") == 0) return 0;
  if (listen[0] == '[') {
    const char *end = strchr(listen, ']');
    if (!end || end[1] != ':' || (size_t)(end - listen - 1) >= sizeof host) return LK_EINVAL;
    memcpy(host, listen + 1, (size_t)(end - listen - 1));
    host[end - listen - 1] = '\0';
    port_s = end + 2;
  } else {
    colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host || strchr(listen, ':') != colon)
      return LK_EINVAL;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    port_s = colon + 1;
  }
  char *end = NULL;
  errno = 0;
  long port = strtol(port_s, &end, 10);
  if (errno || end == port_s || *end || port < 0 || port > 65535) return LK_EINVAL;
  if (listen[0] == '[') {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) return LK_EINVAL;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) return LK_EINVAL;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
  }
  return port == 0 ? 0 : 1;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
                               int owned, const char *ctype) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
  if (!r) {
    if (owned) free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", ctype);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  if (status == 405) MHD_add_response_header(r, "Allow", "GET, HEAD");
  enum MHD_Result rc = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  struct lk_metrics_http *h = cls;
  static char not_found[] = "not found; metrics are at /metrics\n";
  static char not_allowed[] = "method not allowed; GET /metrics\n";
  static char failed[] = "cannot write the metrics; see the daemon's log\n";
  const char *text = "text/plain; charset=utf-8";
  (void)version, (void)upload, (void)upload_size, (void)con_cls;

  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
    return respond(conn, 405, not_allowed, sizeof not_allowed - 1, 0, text);
  if (strcmp(url, "/metrics") != 0)
    return respond(conn, 404, not_found, sizeof not_found - 1, 0, text);
  struct lk_metrics_writer w;
  size_t len = 0;
  lk_metrics_writer_init(&w);
  h->cb(&w, h->data);
  char *body = lk_metrics_writer_take(&w, &len);
  if (!body) {
    lk_error("cannot write the metrics", "err=\"%s\"", lk_strerror(w.err));
    return respond(conn, 500, failed, sizeof failed - 1, 0, text);
  }
  return respond(conn, 200, body, len, 1, LK_METRICS_CONTENT_TYPE);
}

static void timer_cb(uv_timer_t *t);

/* Lets MHD do what is ready, then arms the timer for what it will want next. */
static void run(struct lk_metrics_http *h) {
  MHD_UNSIGNED_LONG_LONG ms;
  if (!h->d) return;
  MHD_run(h->d);
  if (MHD_get_timeout(h->d, &ms) != MHD_YES || ms > 60000) ms = 60000;
  uv_timer_start(&h->timer, timer_cb, (uint64_t)ms, 0);
}

static void timer_cb(uv_timer_t *t) {
  run(t->data);
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  (void)status, (void)events;
  run(p->data);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  char msg[256], q[300];
  (void)cls;
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  lk_warn("metrics http", "detail=%s", lk_log_quote(q, sizeof q, msg));
}

static void handle_closed(uv_handle_t *handle) {
  struct lk_metrics_http *h = handle->data;
  if (handle == (uv_handle_t *)&h->poll)
    h->poll_open = 0;
  else
    h->timer_open = 0;
  if (!h->poll_open && !h->timer_open) free(h);
}

int lk_metrics_http_start(uv_loop_t *loop, const char *listen, lk_metrics_cb cb, void *data,
                          struct lk_metrics_http **out) {
  struct sockaddr_storage sa;
  struct lk_metrics_http *h;
  const union MHD_DaemonInfo *di;
  char q[LK_METRIC_NAME_MAX + 600];

  *out = NULL;
  int on = lk_metrics_listen_parse(listen, &sa);
  if (on < 0) {
    lk_error("metrics listen address must be ADDRESS:PORT (IPv4, or [IPv6])", "listen=%s",
             lk_log_quote(q, sizeof q, listen));
    return LK_EINVAL;
  }
  if (on == 0) {
    lk_info("metrics listener off", NULL);
    return LK_OK;
  }
  h = calloc(1, sizeof *h);
  if (!h) return LK_ENOMEM;
  h->cb = cb;
  h->data = data;
  unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  if (sa.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  h->d =
      MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
                       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
                       (unsigned)METRICS_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
                       (unsigned)METRICS_CONNECTION_TIMEOUT_S, MHD_OPTION_END);
  if (!h->d) {
    int e = errno;
    lk_error("cannot start the metrics listener", "listen=%s err=\"%s\"",
             lk_log_quote(q, sizeof q, listen), strerror(e));
    if (e == EADDRINUSE) {
      snprintf(q, sizeof q, "http://%.512s/metrics", listen);
      lk_service_address_taken(q);
    }
    goto fail_daemon;
  }
  di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
  if (!di) {
    lk_error("libmicrohttpd has no epoll descriptor", NULL);
    goto fail_mhd;
  }
  if (uv_timer_init(loop, &h->timer) != 0) goto fail_mhd;
  h->timer.data = h;
  h->timer_open = 1;
  if (uv_poll_init(loop, &h->poll, di->epoll_fd) != 0) goto fail_poll;
  h->poll.data = h;
  h->poll_open = 1;
  if (uv_poll_start(&h->poll, UV_READABLE, poll_cb) != 0) goto fail_poll;
  run(h);
  lk_info("metrics listening", "url=http://%s/metrics", listen);
  *out = h;
  return LK_OK;

fail_poll:
  /* The handles close asynchronously and free h with the last one. */
  lk_metrics_http_stop(&h);
  return LK_EIO;
fail_mhd:
  MHD_stop_daemon(h->d);
fail_daemon:
  free(h);
  return LK_EIO;
}

void lk_metrics_http_stop(struct lk_metrics_http **hp) {
  struct lk_metrics_http *h = *hp;
  if (!h) return;
  *hp = NULL;
  /* Stop watching MHD's epoll descriptor before MHD closes it (libuv must not poll a closed
   * descriptor). */
  if (h->poll_open) uv_poll_stop(&h->poll);
  if (h->timer_open) uv_timer_stop(&h->timer);
  if (h->d) {
    MHD_stop_daemon(h->d);
    h->d = NULL;
  }
  if (!h->poll_open && !h->timer_open) {
    free(h);
    return;
  }
  if (h->poll_open) uv_close((uv_handle_t *)&h->poll, handle_closed);
  if (h->timer_open) uv_close((uv_handle_t *)&h->timer, handle_closed);
}
