#ifndef LINKAGE_METRICS_HTTP_H
#define LINKAGE_METRICS_HTTP_H

/* The HTTP listener that answers GET /metrics (and HEAD) on the daemon's libuv loop:
 * libmicrohttpd in its external-epoll mode, one uv_poll on MHD's epoll descriptor and one
 * uv_timer for its timeouts, as the gateway drives its own server. Everything runs on the loop
 * thread, so the callback reads the daemon's state without locks. Other paths answer 404,
 * other methods 405. */

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "linkage/metrics.h"

/* Writes one scrape's families into w. */
typedef void (*lk_metrics_cb)(struct lk_metrics_writer *w, void *data);

struct lk_metrics_http;

/* Parses a listen setting: "ADDRESS:PORT" with an IPv4 address or a bracketed IPv6 one
 * ("[::1]:9471"). Returns 1 with *sa filled, 0 when the setting turns the listener off ("",
 * "0", port 0), or LK_EINVAL. */
int lk_metrics_listen_parse(const char *listen, struct sockaddr_storage *sa);

/* Starts listening on `listen` (lk_metrics_listen_parse); *out is NULL when it is off.
 * Returns LK_OK, LK_EINVAL for a malformed setting, or LK_EIO when the port cannot be bound
 * (after logging; a port in use is also reported with lk_service_address_taken). */
int lk_metrics_http_start(uv_loop_t *loop, const char *listen, lk_metrics_cb cb, void *data,
                          struct lk_metrics_http **out);

/* Stops the server and closes its handles (asynchronously: the loop runs once more). NULL-safe;
 * nulls *h. */
void lk_metrics_http_stop(struct lk_metrics_http **h);

#endif
