/* Benchmarks of the spine, each printing figures on stdout as key=value lines.
 *
 *   bench_spine zmq COUNT              raw ZeroMQ request-reply throughput of Report-sized
 *                                       frames over loopback TCP (echo server thread, 8 DEALERs)
 *   bench_spine load ENDPOINT COUNT [RATE]
 *                                       devices -> intake: acknowledged reports/s with RATE = 0
 *                                       (as fast as acks come back), or paced at RATE reports/s;
 *                                       ack latency p50/p99/max in microseconds
 *   bench_spine wait CTL_ENDPOINT TIMEOUT_S COND...
 *                                       polls a daemon's control socket ("status") every 5 ms
 *                                       until every COND (key=value, or key>=N numerically)
 *                                       holds in its status line; prints wait_ms and the line
 *
 * The raw figures are the ceiling the real path is compared with in the same run
 * (tests/bench/run-bench.sh prints the ratios). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "linkage/clock.h"
#include "linkage/event.h"

#include "bench_report.h"

#define DEVICES 8
#define WINDOW 512 /* reports in flight per device when unpaced */

static size_t build_report(const char *device, uint64_t seq, uint8_t *buf, size_t cap) {
  Linkage__V1__Report r;
  Linkage__V1__Location loc;
  bench_report_fill(&r, &loc, device, seq, lk_now_us());
  size_t n = linkage__v1__report__get_packed_size(&r);
  if (n > cap) return 0;
  return linkage__v1__report__pack(&r, buf);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void print_latency(int64_t *lat, size_t n) {
  if (n == 0) return;
  qsort(lat, n, sizeof *lat, cmp_i64);
  printf("latency_p50_us=%" PRId64 "\nlatency_p99_us=%" PRId64 "\nlatency_max_us=%" PRId64 "\n",
         lat[n / 2], lat[(n * 99) / 100], lat[n - 1]);
}

/* ---- raw ZeroMQ ---- */

static void *echo_thread(void *arg) {
  void *router = arg;
  for (;;) {
    zmq_msg_t parts[3];
    int n = 0, more = 1;
    while (more && n < 3) {
      zmq_msg_init(&parts[n]);
      if (zmq_msg_recv(&parts[n], router, 0) < 0) return NULL;
      more = zmq_msg_more(&parts[n]);
      n++;
    }
    for (int i = 0; i < n; i++)
      zmq_msg_send(&parts[i], router, i + 1 < n ? ZMQ_SNDMORE : 0);
  }
}

static int bench_zmq(long count) {
  void *ctx = zmq_ctx_new();
  void *router = zmq_socket(ctx, ZMQ_ROUTER);
  int hwm = 0;
  zmq_setsockopt(router, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt(router, ZMQ_RCVHWM, &hwm, sizeof hwm);
  if (zmq_bind(router, "tcp://127.0.0.1:*") != 0) return 1;
  char ep[256];
  size_t eplen = sizeof ep;
  zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &eplen);
  pthread_t th;
  pthread_create(&th, NULL, echo_thread, router);

  void *dealers[DEVICES];
  for (int d = 0; d < DEVICES; d++) {
    dealers[d] = zmq_socket(ctx, ZMQ_DEALER);
    zmq_connect(dealers[d], ep);
  }
  uint8_t buf[1024];
  size_t len = build_report("bench-raw", 1, buf, sizeof buf);
  long sent = 0, received = 0, inflight[DEVICES] = {0};
  int64_t t0 = lk_mono_us();
  while (received < count) {
    for (int d = 0; d < DEVICES; d++) {
      while (inflight[d] < WINDOW && sent < count) {
        zmq_send(dealers[d], "", 0, ZMQ_SNDMORE);
        zmq_send(dealers[d], buf, len, 0);
        inflight[d]++;
        sent++;
      }
    }
    zmq_pollitem_t items[DEVICES];
    for (int d = 0; d < DEVICES; d++)
      items[d] = (zmq_pollitem_t){dealers[d], 0, ZMQ_POLLIN, 0};
    zmq_poll(items, DEVICES, 1000);
    for (int d = 0; d < DEVICES; d++) {
      char tmp[1024];
      while (zmq_recv(dealers[d], tmp, sizeof tmp, ZMQ_DONTWAIT) >= 0) {
        int more;
        size_t ml = sizeof more;
        zmq_getsockopt(dealers[d], ZMQ_RCVMORE, &more, &ml);
        if (!more) {
          inflight[d]--;
          received++;
        }
      }
    }
  }
  double secs = (double)(lk_mono_us() - t0) / 1e6;
  printf("zmq_messages=%ld\nzmq_bytes_per_message=%zu\nzmq_msgs_per_s=%.0f\n", received, len,
         (double)received / secs);
  for (int d = 0; d < DEVICES; d++)
    zmq_close(dealers[d]);
  /* The echo thread is blocked in recv on a socket we do not close; exit the process instead. */
  fflush(stdout);
  _exit(0);
}

/* ---- devices against intake ---- */

struct pending {
  int64_t sent_us;
};

static int bench_load(const char *endpoint, long count, double rate) {
  void *ctx = zmq_ctx_new();
  void *dealers[DEVICES];
  char devices[DEVICES][64];
  long run = (long)time(NULL) ^ ((long)getpid() << 16);
  for (int d = 0; d < DEVICES; d++) {
    dealers[d] = zmq_socket(ctx, ZMQ_DEALER);
    int hwm = 0, linger = 0;
    zmq_setsockopt(dealers[d], ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(dealers[d], ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(dealers[d], endpoint) != 0) {
      fprintf(stderr, "bench: cannot connect %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
      return 1;
    }
    snprintf(devices[d], sizeof devices[d], "bench-%lx-%d", run, d);
  }
  long per_device = count / DEVICES;
  count = per_device * DEVICES;
  int64_t *sent_at = calloc((size_t)count, sizeof *sent_at);
  int64_t *lat = calloc((size_t)count, sizeof *lat);
  long next_seq[DEVICES], inflight[DEVICES], sent = 0, acked = 0, busy = 0, other = 0;
  for (int d = 0; d < DEVICES; d++)
    next_seq[d] = 1, inflight[d] = 0;
  size_t nlat = 0;
  int64_t t0 = lk_mono_us(), last_progress = t0;
  uint8_t buf[1024];
  while (acked + busy + other < count) {
    int64_t now = lk_mono_us();
    /* Paced: send what the schedule says is due, round-robin over the devices; unpaced: keep
     * each device's window full. */
    long due = rate > 0 ? (long)((double)(now - t0) * rate / 1e6) + 1 : count;
    if (due > count) due = count;
    while (sent < due) {
      int d = -1;
      if (rate > 0) {
        d = (int)(sent % DEVICES);
      } else {
        for (int k = 0; k < DEVICES && d < 0; k++)
          if (next_seq[k] <= per_device && inflight[k] < WINDOW) d = k;
        if (d < 0) break;
      }
      size_t len = build_report(devices[d], (uint64_t)next_seq[d], buf, sizeof buf);
      sent_at[d * per_device + next_seq[d] - 1] = lk_mono_us();
      zmq_send(dealers[d], "", 0, ZMQ_SNDMORE);
      zmq_send(dealers[d], buf, len, 0);
      next_seq[d]++;
      inflight[d]++;
      sent++;
    }
    /* Sleep in zmq_poll until an ack comes or the next report is due (zmq_poll counts in ms, so
     * paced sends go out in bursts of at most a millisecond's worth). */
    long timeout_ms = 100;
    if (rate > 0 && sent < count) {
      int64_t wait = t0 + (int64_t)((double)sent * 1e6 / rate) - lk_mono_us();
      timeout_ms = wait <= 0 ? 0 : (wait + 999) / 1000;
    }
    zmq_pollitem_t items[DEVICES];
    for (int d = 0; d < DEVICES; d++)
      items[d] = (zmq_pollitem_t){dealers[d], 0, ZMQ_POLLIN, 0};
    zmq_poll(items, DEVICES, timeout_ms);
    for (int d = 0; d < DEVICES; d++) {
      uint8_t in[2048];
      int n;
      if (!(items[d].revents & ZMQ_POLLIN)) continue;
      while ((n = zmq_recv(dealers[d], in, sizeof in, ZMQ_DONTWAIT)) >= 0) {
        if (n == 0) continue; /* the empty delimiter */
        Linkage__V1__ReportAck *ack =
            linkage__v1__report_ack__unpack(NULL, (size_t)(n < (int)sizeof in ? n : 0), in);
        if (!ack) {
          other++;
          continue;
        }
        inflight[d]--;
        int64_t t = lk_mono_us();
        if (ack->sequence >= 1 && (long)ack->sequence <= per_device)
          lat[nlat++] = t - sent_at[d * per_device + (long)ack->sequence - 1];
        if (ack->status == LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED ||
            ack->status == LINKAGE__V1__REPORT_ACK__STATUS__DUPLICATE)
          acked++;
        else if (ack->status == LINKAGE__V1__REPORT_ACK__STATUS__BUSY)
          busy++;
        else
          other++;
        last_progress = t;
        linkage__v1__report_ack__free_unpacked(ack, NULL);
      }
    }
    if (lk_mono_us() - last_progress > 10000000) {
      fprintf(stderr, "bench: no ack for 10 s; giving up with %ld of %ld answered\n",
              acked + busy + other, count);
      break;
    }
  }
  double secs = (double)(lk_mono_us() - t0) / 1e6;
  printf("reports=%ld\nacked=%ld\nbusy=%ld\nother=%ld\nseconds=%.3f\nacked_per_s=%.0f\n", count,
         acked, busy, other, secs, (double)acked / secs);
  if (rate > 0) printf("offered_per_s=%.0f\n", rate);
  print_latency(lat, nlat);
  for (int d = 0; d < DEVICES; d++)
    zmq_close(dealers[d]);
  zmq_ctx_term(ctx);
  free(sent_at);
  free(lat);
  return acked + busy + other == count ? 0 : 1;
}

/* ---- waiting on a daemon's control socket ---- */

/* The value of " key=" in a status line, copied into out; 0 when absent. */
static int status_value(const char *line, const char *key, char *out, size_t len) {
  size_t kl = strlen(key);
  for (const char *p = line; (p = strstr(p, key)) != NULL; p += kl) {
    if ((p == line || p[-1] == ' ') && p[kl] == '=') {
      const char *v = p + kl + 1;
      size_t n = strcspn(v, " ");
      if (n >= len) n = len - 1;
      memcpy(out, v, n);
      out[n] = '\0';
      return 1;
    }
  }
  return 0;
}

static int conditions_hold(const char *line, char **conds, int n) {
  for (int i = 0; i < n; i++) {
    char key[64], val[128];
    const char *ge = strstr(conds[i], ">="), *eq = strchr(conds[i], '=');
    const char *sep = ge ? ge : eq;
    if (!sep || (size_t)(sep - conds[i]) >= sizeof key) return 0;
    memcpy(key, conds[i], (size_t)(sep - conds[i]));
    key[sep - conds[i]] = '\0';
    if (!status_value(line, key, val, sizeof val)) return 0;
    if (ge ? strtoull(val, NULL, 10) < strtoull(ge + 2, NULL, 10) : strcmp(val, eq + 1) != 0)
      return 0;
  }
  return 1;
}

static int bench_wait(const char *endpoint, double timeout_s, char **conds, int n) {
  void *ctx = zmq_ctx_new();
  void *req = NULL;
  char line[1100] = "";
  int64_t t0 = lk_mono_us(), deadline = t0 + (int64_t)(timeout_s * 1e6);
  int ok = 0;
  while (!ok && lk_mono_us() < deadline) {
    if (!req) {
      /* A REQ socket is stuck after a request that got no answer: one socket per attempt. */
      req = zmq_socket(ctx, ZMQ_REQ);
      int linger = 0, tmo = 200;
      zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof linger);
      zmq_setsockopt(req, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
      zmq_connect(req, endpoint);
    }
    int got = -1;
    if (zmq_send(req, "status", 6, 0) == 6) got = zmq_recv(req, line, sizeof line - 1, 0);
    if (got < 0) {
      zmq_close(req);
      req = NULL;
      usleep(5000);
      continue;
    }
    line[got < (int)sizeof line - 1 ? got : (int)sizeof line - 1] = '\0';
    ok = conditions_hold(line, conds, n);
    if (!ok) usleep(5000);
  }
  printf("wait_ms=%.1f\nwait_ok=%d\nstatus=%s\n", (double)(lk_mono_us() - t0) / 1e3, ok, line);
  if (req) zmq_close(req);
  zmq_ctx_term(ctx);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "zmq")) return bench_zmq(atol(argv[2]));
  if (argc >= 4 && !strcmp(argv[1], "load"))
    return bench_load(argv[2], atol(argv[3]), argc >= 5 ? atof(argv[4]) : 0);
  if (argc >= 4 && !strcmp(argv[1], "wait"))
    return bench_wait(argv[2], atof(argv[3]), argv + 4, argc - 4);
  fprintf(stderr, "usage: bench_spine zmq COUNT | load ENDPOINT COUNT [RATE] | "
                  "wait CTL_ENDPOINT TIMEOUT_S COND...\n");
  return 2;
}
