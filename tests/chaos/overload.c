/* Load generators for the chaos tests (tests/chaos/), printing figures as key=value lines.
 *
 *   overload flood ENDPOINT SECONDS DEVICES WINDOW RATE ACKFILE
 *       DEVICES DEALER devices send distinct Reports for SECONDS, each keeping at most WINDOW
 *       unanswered; RATE > 0 paces the whole at RATE reports/s (as far as the windows allow),
 *       RATE = 0 keeps every window full. A BUSY report is counted and not sent again (the
 *       tests check what was accepted, not that everything was). After SECONDS it waits for
 *       the outstanding answers (until none has come for 3 s: intake's ROUTER drops an
 *       answer a full device queue cannot take, and a device would resend). Every ACCEPTED or
 * DUPLICATE answer is written to ACKFILE ("-": nowhere) as "device sequence incident_id". overload
 * junk ENDPOINT SECONDS CONNS INTERVAL_US [KIND] CONNS bad peers, by index modulo 5: raw TCP
 * writing random bytes (no ZMTP greeting), DEALERs sending random-byte frames, oversized frames (5
 * MiB, over intake's 4 MiB ZMQ_MAXMSGSIZE, so intake drops the connection and the DEALER
 * reconnects), empty frames, and random multi-frame messages without a delimiter. Each peer acts
 * once per INTERVAL_US (0: as fast as the loop goes), for SECONDS (0: until SIGTERM or SIGINT).
 * Prints "ready=1" once every peer has acted once, then, at the end, what was sent. KIND (raw_tcp,
 * random_frames, oversized, empty_frames, no_delimiter) makes every peer one kind.
 *
 * CURVE (LINKAGE_OVERLOAD_SERVER_KEY set to intake's public key, Z85): flood's devices are the
 * registered ones listed in LINKAGE_OVERLOAD_DEVICE_KEYS ("device_id public secret" lines); every
 * ZeroMQ junk peer presents a key pair no registry knows, so intake's ZAP handler denies it at the
 * handshake; the peer tries again on a new socket every LINKAGE_OVERLOAD_RETRY_US (1 s); the raw
 * TCP peers stay as they are.
 *
 * LINKAGE_OVERLOAD_SOURCE_BASE=A.B.C.D gives device or junk peer i the source address
 * A.B.C.D + 1 + i (on loopback, any of 127/8), as if each were its own machine.
 *
 * Its own CPU time is printed (cpu_s) so a test can tell contention from intake's own cost. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "linkage/clock.h"
#include "linkage/v1/report.pb-c.h"

#include "../bench/bench_report.h"

#define MAX_DEVICES 1024
#define OVERSIZE (5u << 20)

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* LINKAGE_OVERLOAD_SERVER_KEY (Z85): intake speaks CURVE; every DEALER is a CURVE client of that
 * server key, with the key pair given (public and secret, Z85) or, if NULL, a fresh one that no
 * registry knows. */
static const char *server_key(void) {
  const char *k = getenv("LINKAGE_OVERLOAD_SERVER_KEY");
  return k && *k ? k : NULL;
}

static void *dealer_keyed(void *ctx, const char *endpoint, const char *pub, const char *sec) {
  void *s = zmq_socket(ctx, ZMQ_DEALER);
  int zero = 0, hwm = 100000;
  zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
  if (server_key()) {
    char fresh_pub[41], fresh_sec[41];
    if (!pub) {
      zmq_curve_keypair(fresh_pub, fresh_sec);
      pub = fresh_pub;
      sec = fresh_sec;
    }
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_key(), 40);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
  }
  if (zmq_connect(s, endpoint) != 0) {
    fprintf(stderr, "overload: cannot connect %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
    zmq_close(s);
    return NULL;
  }
  return s;
}

static void *dealer(void *ctx, const char *endpoint) {
  return dealer_keyed(ctx, endpoint, NULL, NULL);
}

/* LINKAGE_OVERLOAD_SOURCE_BASE=A.B.C.D: connection i comes from A.B.C.D + 1 + i (on loopback any
 * of 127/8), as if each device or bad peer were its own machine. Fills src (all zero when the
 * variable is unset) and out, the endpoint to connect to (ZeroMQ's "tcp://SOURCE:0;HOST:PORT").
 * Returns 0, or -1 if the variable is not an IPv4 address. */
static int source_endpoint(int i, const char *endpoint, struct sockaddr_in *src, char *out,
                           size_t n) {
  const char *base = getenv("LINKAGE_OVERLOAD_SOURCE_BASE");
  memset(src, 0, sizeof *src);
  snprintf(out, n, "%s", endpoint);
  if (!base || !*base) return 0;
  struct in_addr a;
  if (inet_pton(AF_INET, base, &a) != 1 || strncmp(endpoint, "tcp://", 6) != 0) {
    fprintf(stderr, "overload: LINKAGE_OVERLOAD_SOURCE_BASE needs an IPv4 address and a tcp:// "
                    "endpoint\n");
    return -1;
  }
  src->sin_family = AF_INET;
  src->sin_addr.s_addr = htonl(ntohl(a.s_addr) + 1 + (uint32_t)i);
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &src->sin_addr, ip, sizeof ip);
  snprintf(out, n, "tcp://%s:0;%s", ip, endpoint + 6);
  return 0;
}

/* ---- flood ---- */

/* What the acks of one run said; both generators count them the same way. */
struct tally {
  long accepted, duplicate, busy, rejected, other;
  long acked_in_window, busy_in_window, busy_gave_up;
};

/* Counts one ack (freed here); acked ones go to acks (may be NULL) as "device sequence incident".
 */
static void tally_ack(struct tally *t, Linkage__V1__ReportAck *ack, int in_window, FILE *acks,
                      const char *device) {
  switch (ack->status) {
  case LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED:
  case LINKAGE__V1__REPORT_ACK__STATUS__DUPLICATE:
    if (ack->status == LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED)
      t->accepted++;
    else
      t->duplicate++;
    t->acked_in_window += in_window;
    if (acks)
      fprintf(acks, "%s %" PRIu64 " %s\n", device, ack->sequence,
              ack->incident_id ? ack->incident_id : "");
    break;
  case LINKAGE__V1__REPORT_ACK__STATUS__BUSY:
    t->busy++;
    t->busy_in_window += in_window;
    /* Given up on by intake after ledger_give_up_ms: the ledger may still commit it. */
    if (ack->error && strstr(ack->error, "ledger did not answer")) t->busy_gave_up++;
    break;
  case LINKAGE__V1__REPORT_ACK__STATUS__REJECTED: t->rejected++; break;
  default: t->other++;
  }
  linkage__v1__report_ack__free_unpacked(ack, NULL);
}

/* Closes what a load run opened; returns its exit code (1 if the ack file could not be
 * written out). */
static int finish_run(void *ctx, void **socks, int ndev, zmq_pollitem_t *items, FILE *acks,
                      const char *ackpath) {
  for (int d = 0; d < ndev; d++)
    zmq_close(socks[d]);
  zmq_ctx_term(ctx);
  free(items);
  if (acks && fclose(acks) != 0) {
    perror(ackpath);
    return 1;
  }
  return 0;
}

static int flood(const char *endpoint, double seconds, int ndev, long window, double rate,
                 const char *ackpath) {
  if (ndev < 1 || ndev > MAX_DEVICES || window < 1) return 2;
  FILE *acks = NULL;
  if (strcmp(ackpath, "-") != 0 && !(acks = fopen(ackpath, "w"))) {
    perror(ackpath);
    return 2;
  }
  void *ctx = zmq_ctx_new();
  static void *socks[MAX_DEVICES];
  static char names[MAX_DEVICES][64];
  static long next_seq[MAX_DEVICES], inflight[MAX_DEVICES];
  long run = (long)time(NULL) ^ ((long)getpid() << 16);
  /* CURVE: the devices are the registered ones of LINKAGE_OVERLOAD_DEVICE_KEYS, a file of
   * "device_id public secret" lines, so intake admits them. */
  FILE *keys = NULL;
  if (server_key()) {
    const char *path = getenv("LINKAGE_OVERLOAD_DEVICE_KEYS");
    if (!path || !(keys = fopen(path, "r"))) {
      fprintf(stderr, "overload: CURVE flood needs LINKAGE_OVERLOAD_DEVICE_KEYS\n");
      return 2;
    }
  }
  for (int d = 0; d < ndev; d++) {
    snprintf(names[d], sizeof names[d], "ovl-%lx-%d", run, d);
    char pub[64] = "", sec[64] = "";
    if (keys && fscanf(keys, "%63s %63s %63s", names[d], pub, sec) != 3) {
      fprintf(stderr, "overload: fewer than %d keys in LINKAGE_OVERLOAD_DEVICE_KEYS\n", ndev);
      return 2;
    }
    struct sockaddr_in src;
    char ep[160];
    if (source_endpoint(d, endpoint, &src, ep, sizeof ep) != 0) return 2;
    if (!(socks[d] = dealer_keyed(ctx, ep, keys ? pub : NULL, keys ? sec : NULL))) return 1;
    /* A registered id is used again by the next run: its sequences start at the clock
     * (microseconds), past any it sent before, so nothing is a DUPLICATE. */
    next_seq[d] = keys ? (long)lk_now_us() : 1;
    inflight[d] = 0;
  }
  if (keys) fclose(keys);
  long sent = 0, total_inflight = 0;
  struct tally tl = {0};
  int64_t t0 = lk_mono_us(), end = t0 + (int64_t)(seconds * 1e6), last_progress = t0;
  int rr = 0, room = 0;
  zmq_pollitem_t *items = calloc((size_t)ndev, sizeof *items);
  uint8_t buf[1024];
  for (;;) {
    int64_t now = lk_mono_us();
    int sending = now < end;
    if (sending) {
      long due = rate > 0 ? (long)((double)(now - t0) * rate / 1e6) + 1 : -1;
      /* Round-robin over the devices with room in their window; stop when nobody has room
       * or, paced, when the schedule is met. */
      int blocked = 0;
      room = 0;
      while ((due < 0 || sent < due) && blocked < ndev) {
        int d = rr;
        rr = (rr + 1) % ndev;
        if (inflight[d] >= window) {
          blocked++;
          continue;
        }
        blocked = 0;
        Linkage__V1__Report r;
        Linkage__V1__Location loc;
        bench_report_fill(&r, &loc, names[d], (uint64_t)next_seq[d], lk_now_us());
        size_t len = linkage__v1__report__pack(&r, buf);
        if (zmq_send(socks[d], "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) != 0) {
          blocked++;
          continue;
        }
        zmq_send(socks[d], buf, len, 0);
        next_seq[d]++;
        inflight[d]++;
        total_inflight++;
        sent++;
        /* Let answers in now and then, or an unpaced window of thousands is sent in one go. */
        if ((sent & 255) == 0) {
          room = 1;
          break;
        }
      }
    } else if (total_inflight == 0 || now - last_progress > 3000000) {
      break;
    }
    for (int d = 0; d < ndev; d++)
      items[d] = (zmq_pollitem_t){socks[d], 0, ZMQ_POLLIN, 0};
    /* Sleep in the poll unless there is more to send now: with every window full, a zero
     * timeout spins a core the daemons under test need (it halved the stack's share of a
     * 2-core machine). An answer wakes the poll; the timeout only bounds the end's lateness. */
    long timeout_ms = 0;
    if (!sending)
      timeout_ms = 100;
    else if (rate > 0) {
      int64_t wait = t0 + (int64_t)((double)sent * 1e6 / rate) - lk_mono_us();
      timeout_ms = wait <= 0 ? 0 : (wait + 999) / 1000;
    } else if (!room) {
      int64_t left = end - lk_mono_us();
      timeout_ms = left <= 0 ? 0 : left > 10000 ? 10 : (left + 999) / 1000;
    }
    zmq_poll(items, ndev, timeout_ms);
    for (int d = 0; d < ndev; d++) {
      if (!(items[d].revents & ZMQ_POLLIN)) continue;
      uint8_t in[2048];
      int n;
      while ((n = zmq_recv(socks[d], in, sizeof in, ZMQ_DONTWAIT)) >= 0) {
        if (n == 0) continue; /* the empty delimiter */
        Linkage__V1__ReportAck *ack =
            linkage__v1__report_ack__unpack(NULL, (size_t)(n < (int)sizeof in ? n : 0), in);
        if (!ack) {
          tl.other++;
          continue;
        }
        inflight[d]--;
        total_inflight--;
        int64_t t = lk_mono_us();
        last_progress = t;
        int in_window = t < end;
        tally_ack(&tl, ack, in_window, acks, names[d]);
      }
    }
  }
  double send_s = (double)(end - t0) / 1e6;
  double total_s = (double)(lk_mono_us() - t0) / 1e6;
  printf("devices=%d\nwindow=%ld\nrate=%.0f\nsent=%ld\naccepted=%ld\nduplicate=%ld\nbusy=%ld\n"
         "rejected=%ld\nother=%ld\nunanswered=%ld\nsend_seconds=%.3f\ntotal_seconds=%.3f\n"
         "offered_per_s=%.0f\nacked_per_s=%.0f\nbusy_per_s=%.0f\nbusy_gave_up=%ld\ncpu_s=%.2f\n",
         ndev, window, rate, sent, tl.accepted, tl.duplicate, tl.busy, tl.rejected, tl.other,
         total_inflight, send_s, total_s, (double)sent / send_s,
         (double)tl.acked_in_window / send_s, (double)tl.busy_in_window / send_s, tl.busy_gave_up,
         cpu_seconds());
  return finish_run(ctx, socks, ndev, items, acks, ackpath);
}

/* ---- open: open-loop load ---- */

/* Sends at RATE reports/s from DEVICES DEALERs whatever the answers, for SECONDS. A report
 * whose device's send queue is at SNDHWM is skipped (counted, never queued: client memory stays
 * at DEVICES x SNDHWM reports at most) and the schedule moves on, so what is offered does not
 * depend on how fast intake answers. Answers are read between bursts. */
static int open_loop(const char *endpoint, double seconds, int ndev, double rate, int hwm,
                     const char *ackpath) {
  if (ndev < 1 || ndev > MAX_DEVICES || rate <= 0 || hwm < 1) return 2;
  FILE *acks = NULL;
  if (strcmp(ackpath, "-") != 0 && !(acks = fopen(ackpath, "w"))) {
    perror(ackpath);
    return 2;
  }
  void *ctx = zmq_ctx_new();
  zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, ndev + 64);
  static void *socks[MAX_DEVICES];
  static char names[MAX_DEVICES][64];
  static long next_seq[MAX_DEVICES];
  long run = (long)time(NULL) ^ ((long)getpid() << 16);
  for (int d = 0; d < ndev; d++) {
    if (!(socks[d] = dealer(ctx, endpoint))) return 1;
    zmq_setsockopt(socks[d], ZMQ_SNDHWM, &hwm, sizeof hwm);
    snprintf(names[d], sizeof names[d], "opn-%lx-%d", run, d);
    next_seq[d] = 1;
  }
  long attempted = 0, sent = 0, skipped = 0;
  struct tally tl = {0};
  long answered = 0, late_ms = 0;
  int64_t t0 = lk_mono_us(), end = t0 + (int64_t)(seconds * 1e6), last_progress = t0;
  int64_t last_sent_us = t0;
  int rr = 0;
  zmq_pollitem_t *items = calloc((size_t)ndev, sizeof *items);
  uint8_t buf[1024];
  for (;;) {
    int64_t now = lk_mono_us();
    int sending = now < end;
    if (sending) {
      /* Due by now on the schedule; a generator that falls behind catches up in bursts of at
       * most 1024, reading answers in between, and says by how much it was late. */
      long due = (long)((double)(now - t0) * rate / 1e6) + 1;
      if (due - attempted > (long)(rate / 1000)) late_ms++;
      for (int k = 0; k < 1024 && attempted < due; k++) {
        int d = rr;
        rr = (rr + 1) % ndev;
        attempted++;
        if (zmq_send(socks[d], "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) != 0) {
          skipped++;
          continue;
        }
        Linkage__V1__Report r;
        Linkage__V1__Location loc;
        bench_report_fill(&r, &loc, names[d], (uint64_t)next_seq[d], lk_now_us());
        size_t len = linkage__v1__report__pack(&r, buf);
        /* The delimiter went, so the body goes: a message is queued whole. */
        zmq_send(socks[d], buf, len, 0);
        next_seq[d]++;
        sent++;
      }
      last_sent_us = lk_mono_us();
    } else if (sent == answered || now - last_progress > 3000000) {
      break;
    }
    for (int d = 0; d < ndev; d++)
      items[d] = (zmq_pollitem_t){socks[d], 0, ZMQ_POLLIN, 0};
    long timeout_ms = 0;
    if (!sending)
      timeout_ms = 100;
    else {
      int64_t wait = t0 + (int64_t)((double)attempted * 1e6 / rate) - lk_mono_us();
      timeout_ms = wait <= 0 ? 0 : (wait + 999) / 1000;
    }
    zmq_poll(items, ndev, timeout_ms);
    for (int d = 0; d < ndev; d++) {
      if (!(items[d].revents & ZMQ_POLLIN)) continue;
      uint8_t in[2048];
      int n;
      /* At most a window's worth per device per turn, so sending keeps its schedule. */
      for (int k = 0; k < 4096 && (n = zmq_recv(socks[d], in, sizeof in, ZMQ_DONTWAIT)) >= 0; k++) {
        if (n == 0) continue; /* the empty delimiter */
        Linkage__V1__ReportAck *ack =
            linkage__v1__report_ack__unpack(NULL, (size_t)(n < (int)sizeof in ? n : 0), in);
        answered++;
        if (!ack) {
          tl.other++;
          continue;
        }
        int64_t t = lk_mono_us();
        last_progress = t;
        int in_window = t < end;
        tally_ack(&tl, ack, in_window, acks, names[d]);
      }
    }
  }
  double send_s = (double)(last_sent_us - t0) / 1e6;
  if (send_s > seconds) send_s = seconds;
  double total_s = (double)(lk_mono_us() - t0) / 1e6;
  printf("mode=open\ndevices=%d\nsndhwm=%d\nrate=%.0f\nattempted=%ld\nsent=%ld\nskipped_hwm=%ld\n"
         "accepted=%ld\nduplicate=%ld\nbusy=%ld\nrejected=%ld\nother=%ld\nunanswered=%ld\n"
         "send_seconds=%.3f\ntotal_seconds=%.3f\noffered_per_s=%.0f\nsent_per_s=%.0f\n"
         "acked_per_s=%.0f\nbusy_per_s=%.0f\nbusy_gave_up=%ld\nlate_turns=%ld\ncpu_s=%.2f\n",
         ndev, hwm, rate, attempted, sent, skipped, tl.accepted, tl.duplicate, tl.busy, tl.rejected,
         tl.other, sent - answered, send_s, total_s, (double)attempted / send_s,
         (double)sent / send_s, (double)tl.acked_in_window / send_s,
         (double)tl.busy_in_window / send_s, tl.busy_gave_up, late_ms, cpu_seconds());
  return finish_run(ctx, socks, ndev, items, acks, ackpath);
}

/* ---- junk ---- */

enum junk_kind { RAW_TCP, RANDOM_FRAMES, OVERSIZED, EMPTY_FRAMES, NO_DELIMITER, KINDS };
static const char *const kind_names[KINDS] = {"raw_tcp", "random_frames", "oversized",
                                              "empty_frames", "no_delimiter"};

struct peer {
  enum junk_kind kind;
  void *zs;               /* ZeroMQ peers */
  int fd;                 /* raw TCP peers; -1 when not connected */
  struct sockaddr_in src; /* see source_endpoint() */
  char endpoint[160];
  /* CURVE: the peer's key pair (unknown to intake) and when its socket was opened */
  char pub[41], sec[41];
  int64_t opened_us;
};

/* CURVE: how often an unknown-key peer tries again (LINKAGE_OVERLOAD_RETRY_US, default 1 s).
 * libzmq 4.3 gives up on a connection whose handshake was refused, so the peer opens a new
 * socket each time, as a client retrying on its own timer would. */
static int64_t retry_us(void) {
  const char *v = getenv("LINKAGE_OVERLOAD_RETRY_US");
  return v && atol(v) > 0 ? (int64_t)atol(v) : 1000000;
}

static void *junk_dealer(void *ctx, struct peer *p) {
  const char *endpoint = p->endpoint;
  void *s = server_key() ? dealer_keyed(ctx, endpoint, p->pub, p->sec) : dealer(ctx, endpoint);
  if (!s) return NULL;
  /* A DEALER only queues while disconnected: keep the junk queue short, so what is counted
   * is about what was written, and an oversized peer holds one 5 MiB frame at a time. */
  int hwm = p->kind == OVERSIZED ? 1 : 100;
  zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
  p->opened_us = lk_mono_us();
  return s;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static void fill_random(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)next_rand();
}

static volatile sig_atomic_t stopping;
static void on_stop(int sig) {
  (void)sig;
  stopping = 1;
}

static int tcp_open(const struct sockaddr_in *sa, const struct sockaddr_in *src) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (src->sin_addr.s_addr && bind(fd, (const struct sockaddr *)src, sizeof *src) != 0) {
    close(fd);
    return -1;
  }
  if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

static int junk(const char *endpoint, double seconds, int nconn, long interval_us,
                const char *only) {
  unsigned port = 0;
  char host[64];
  if (sscanf(endpoint, "tcp://%63[^:]:%u", host, &port) != 2) {
    fprintf(stderr, "overload: junk needs a tcp://HOST:PORT endpoint\n");
    return 2;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return 2;
  rng ^= (uint64_t)getpid() << 20;
  void *ctx = zmq_ctx_new();
  int maxsock = nconn * 2 + 64;
  zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, maxsock);
  /* CURVE: how often a refused peer tries again; 0 (plain): peers keep their connection. */
  const int64_t retry = server_key() ? retry_us() : 0;
  struct peer *peers = calloc((size_t)nconn, sizeof *peers);
  uint8_t *big = malloc(OVERSIZE);
  if (!peers || !big) return 1;
  fill_random(big, OVERSIZE);
  for (int i = 0; i < nconn; i++) {
    peers[i].kind = (enum junk_kind)(i % KINDS);
    if (only) /* one kind for every peer, to see what each costs */
      for (int k = 0; k < KINDS; k++)
        if (!strcmp(only, kind_names[k])) peers[i].kind = (enum junk_kind)k;
    peers[i].fd = -1;
    zmq_curve_keypair(peers[i].pub, peers[i].sec);
    if (source_endpoint(i, endpoint, &peers[i].src, peers[i].endpoint, sizeof peers[i].endpoint) !=
        0)
      return 2;
    if (peers[i].kind != RAW_TCP && !(peers[i].zs = junk_dealer(ctx, &peers[i]))) return 1;
  }
  long msgs[KINDS] = {0}, bytes[KINDS] = {0}, answers = 0, reconnects = 0, rekeys = 0;
  signal(SIGTERM, on_stop);
  signal(SIGINT, on_stop);
  int64_t t0 = lk_mono_us(), next = t0;
  int64_t end = seconds > 0 ? t0 + (int64_t)(seconds * 1e6) : INT64_MAX;
  uint8_t tmp[4096];
  int rounds = 0;
  while (!stopping && lk_mono_us() < end) {
    for (int i = 0; i < nconn; i++) {
      struct peer *p = &peers[i];
      uint8_t frame[512];
      size_t n = 1 + next_rand() % sizeof frame;
      if (p->zs && retry > 0 && lk_mono_us() - p->opened_us >= retry) {
        zmq_close(p->zs);
        if (!(p->zs = junk_dealer(ctx, p))) return 1;
        rekeys++;
      }
      switch (p->kind) {
      case RAW_TCP:
        if (p->fd < 0) {
          p->fd = tcp_open(&sa, &p->src);
          reconnects++;
          if (p->fd < 0) break;
        }
        fill_random(frame, n);
        /* MSG_NOSIGNAL: intake closing on us must not raise SIGPIPE here. */
        if (send(p->fd, frame, n, MSG_NOSIGNAL) < 0 && errno != EAGAIN && errno != EINPROGRESS &&
            errno != ENOTCONN) {
          close(p->fd);
          p->fd = -1;
          break;
        }
        ssize_t got;
        while ((got = read(p->fd, tmp, sizeof tmp)) > 0) {
        }
        if (got == 0) { /* intake hung up: connect again next round */
          close(p->fd);
          p->fd = -1;
        }
        msgs[RAW_TCP]++;
        bytes[RAW_TCP] += (long)n;
        break;
      case RANDOM_FRAMES:
        fill_random(frame, n);
        if (zmq_send(p->zs, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 0) {
          zmq_send(p->zs, frame, n, 0);
          msgs[RANDOM_FRAMES]++;
          bytes[RANDOM_FRAMES] += (long)n;
        }
        break;
      case OVERSIZED:
        /* One at a time: libzmq queues what a dropped connection could not take. */
        if (zmq_send(p->zs, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 0) {
          zmq_send_const(p->zs, big, OVERSIZE, 0);
          msgs[OVERSIZED]++;
          bytes[OVERSIZED] += OVERSIZE;
        }
        break;
      case EMPTY_FRAMES:
        if (zmq_send(p->zs, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 0) {
          zmq_send(p->zs, "", 0, 0);
          msgs[EMPTY_FRAMES]++;
        }
        break;
      case NO_DELIMITER: {
        int frames = 1 + (int)(next_rand() % 4);
        for (int f = 0; f < frames; f++) {
          size_t m = 1 + next_rand() % 64;
          fill_random(frame, m);
          if (zmq_send(p->zs, frame, m, (f + 1 < frames ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
            break;
          bytes[NO_DELIMITER] += (long)m;
        }
        msgs[NO_DELIMITER]++;
        break;
      }
      case KINDS: break;
      }
      if (p->zs)
        while (zmq_recv(p->zs, tmp, sizeof tmp, ZMQ_DONTWAIT) >= 0)
          answers++;
    }
    if (++rounds == 1) {
      printf("ready=1\n");
      fflush(stdout);
    }
    if (interval_us > 0) {
      next += interval_us;
      int64_t wait = next - lk_mono_us();
      if (wait > 0) usleep((useconds_t)wait);
    }
  }
  double secs = (double)(lk_mono_us() - t0) / 1e6;
  long total = 0;
  for (int k = 0; k < KINDS; k++) {
    printf("junk_%s=%ld\njunk_%s_bytes=%ld\n", kind_names[k], msgs[k], kind_names[k], bytes[k]);
    total += msgs[k];
  }
  printf("junk_conns=%d\njunk_msgs=%ld\njunk_per_s=%.0f\njunk_answer_frames=%ld\ntcp_connects=%ld\n"
         "curve_retries=%ld\nseconds=%.3f\ncpu_s=%.2f\n",
         nconn, total, (double)total / secs, answers, reconnects, rekeys, secs, cpu_seconds());
  fflush(stdout);
  for (int i = 0; i < nconn; i++) {
    if (peers[i].zs) zmq_close(peers[i].zs);
    if (peers[i].fd >= 0) close(peers[i].fd);
  }
  /* zmq_send_const: the 5 MiB buffer must outlive the context. */
  zmq_ctx_term(ctx);
  free(big);
  free(peers);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 8 && !strcmp(argv[1], "flood"))
    return flood(argv[2], atof(argv[3]), atoi(argv[4]), atol(argv[5]), atof(argv[6]), argv[7]);
  if (argc == 8 && !strcmp(argv[1], "open"))
    return open_loop(argv[2], atof(argv[3]), atoi(argv[4]), atof(argv[5]), atoi(argv[6]), argv[7]);
  if ((argc == 6 || argc == 7) && !strcmp(argv[1], "junk"))
    return junk(argv[2], atof(argv[3]), atoi(argv[4]), atol(argv[5]), argc == 7 ? argv[6] : NULL);
  fprintf(stderr, "usage: overload flood ENDPOINT SECONDS DEVICES WINDOW RATE ACKFILE\n"
                  "       overload open ENDPOINT SECONDS DEVICES RATE SNDHWM ACKFILE\n"
                  "       overload junk ENDPOINT SECONDS CONNS INTERVAL_US [KIND]\n");
  return 2;
}
