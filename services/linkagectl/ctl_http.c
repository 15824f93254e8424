/* A small blocking HTTP/1.1 client for linkagectl: one request per connection (Connection:
 * close), bounded waits, the whole answer read. Enough for the gateway's own API. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "ctl.h"

#define HTTP_MAX_BODY (64 * 1024 * 1024)

/* "http://host:port" -> host, port. */
static int split_base(const char *base, char *host, size_t hostlen, char *port, size_t portlen) {
  if (strncmp(base, "http://", 7) != 0) return -1;
  const char *h = base + 7, *colon = strchr(h, ':'), *slash = strchr(h, '/');
  size_t hl = colon ? (size_t)(colon - h) : slash ? (size_t)(slash - h) : strlen(h);
  if (hl == 0 || hl >= hostlen) return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  if (colon) {
    size_t pl = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
    if (pl == 0 || pl >= portlen) return -1;
    memcpy(port, colon + 1, pl);
    port[pl] = '\0';
  } else {
    snprintf(port, portlen, "80");
  }
  return 0;
}

/* Decodes a chunked body in place; returns its length, or -1 when malformed. */
static long dechunk(char *p, size_t n) {
  size_t in = 0, out = 0;
  for (;;) {
    char *end;
    if (in >= n) return -1;
    unsigned long size = strtoul(p + in, &end, 16);
    char *crlf = strstr(end, "\r\n");
    if (!crlf) return -1;
    in = (size_t)(crlf - p) + 2;
    if (size == 0) return (long)out;
    if (in + size > n) return -1;
    memmove(p + out, p + in, size);
    out += size;
    in += size + 2;
  }
}

int ctl_http(const char *base, const char *method, const char *path, const char *token,
             const char *form, int timeout_ms, struct ctl_http_reply *rep, char *err,
             size_t errlen) {
  char host[256], port[16];
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
  int fd = -1, status = -1;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  memset(rep, 0, sizeof *rep);
  if (split_base(base, host, sizeof host, port, sizeof port) != 0) {
    snprintf(err, errlen, "\"%s\" is not an http://host:port address", base);
    return -1;
  }
  int gai = getaddrinfo(host, port, &hints, &ai);
  if (gai != 0) {
    snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(gai));
    return -1;
  }
  fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
      connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    snprintf(err, errlen, "cannot connect to %s: %s", base, strerror(errno));
    goto done;
  }
  char head[1024];
  size_t form_len = form ? strlen(form) : 0;
  int hn = snprintf(head, sizeof head,
                    "%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n"
                    "User-Agent: linkagectl\r\n%s%s%s",
                    method, path, host, port, token ? "Authorization: Bearer " : "",
                    token ? token : "", token ? "\r\n" : "");
  if (hn < 0 || (size_t)hn >= sizeof head - 128) {
    snprintf(err, errlen, "request line too long");
    goto done;
  }
  if (form)
    hn += snprintf(head + hn, sizeof head - (size_t)hn,
                   "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n",
                   form_len);
  hn += snprintf(head + hn, sizeof head - (size_t)hn, "\r\n");
  if (write(fd, head, (size_t)hn) != hn ||
      (form_len && write(fd, form, form_len) != (ssize_t)form_len)) {
    snprintf(err, errlen, "cannot send to %s: %s", base, strerror(errno));
    goto done;
  }
  for (;;) {
    if (len + 4097 > cap) {
      size_t ncap = cap ? cap * 2 : 16384;
      if (ncap > HTTP_MAX_BODY) {
        snprintf(err, errlen, "answer from %s larger than %d bytes", base, HTTP_MAX_BODY);
        goto done;
      }
      char *n = realloc(buf, ncap);
      if (!n) {
        snprintf(err, errlen, "out of memory");
        goto done;
      }
      buf = n;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + len, cap - len - 1);
    if (r < 0) {
      snprintf(err, errlen, "no answer from %s within %d ms: %s", base, timeout_ms,
               strerror(errno));
      goto done;
    }
    if (r == 0) break;
    len += (size_t)r;
  }
  if (!buf || len < 12) {
    snprintf(err, errlen, "%s closed the connection without an answer", base);
    goto done;
  }
  buf[len] = '\0';
  char *body = strstr(buf, "\r\n\r\n");
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || !body) {
    snprintf(err, errlen, "malformed answer from %s", base);
    status = -1;
    goto done;
  }
  *body = '\0';
  body += 4;
  size_t blen = len - (size_t)(body - buf);
  int chunked = 0;
  for (char *line = strstr(buf, "\r\n"); line; line = strstr(line + 2, "\r\n"))
    if (strncasecmp(line + 2, "Transfer-Encoding:", 18) == 0 && strstr(line + 2, "chunked"))
      chunked = 1;
  if (chunked) {
    long n = dechunk(body, blen);
    if (n < 0) {
      snprintf(err, errlen, "malformed chunked answer from %s", base);
      status = -1;
      goto done;
    }
    blen = (size_t)n;
  }
  rep->body = malloc(blen + 1);
  if (!rep->body) {
    snprintf(err, errlen, "out of memory");
    status = -1;
    goto done;
  }
  memcpy(rep->body, body, blen);
  rep->body[blen] = '\0';
  rep->len = blen;
  rep->status = status;

done:
  if (fd >= 0) close(fd);
  freeaddrinfo(ai);
  free(buf);
  return rep->body ? status : -1;
}

void ctl_http_reply_free(struct ctl_http_reply *rep) {
  free(rep->body);
  rep->body = NULL;
  rep->len = 0;
}
