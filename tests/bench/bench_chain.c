/* The whole chain: device -> intake -> ledger (reported) -> router (routed) -> ledger ->
 * dispatch (dispatched, one per unit) -> ledger -> dispatch -> the units' sockets.
 *
 *   bench_chain INTAKE_EP DISPATCH_EP LEDGER_CTL COUNT RATE COMPOUND UNIT...
 *
 * Connects one DEALER per UNIT to dispatch (Hello, then a Heartbeat at the Welcome's interval,
 * so dispatch counts them present) and 8 DEALER devices to intake, and sends COUNT gas-leak
 * reports in COMPOUND, each from its own (device, sequence), so each opens its own incident
 * (run the router with merging off). RATE > 0 paces them at RATE reports/s; RATE = 0 keeps 512
 * in flight per device. A BUSY report is sent again (same device and sequence) after its
 * retry_after_ms. The plan must call every UNIT once per incident: then the run is complete
 * when COUNT x UNITs assignments have arrived, which dispatch sends only once the `dispatched`
 * events are committed. Prints key=value lines:
 *   reports, acked, busy_resent, send_seconds, assignments, assignments_expected,
 *   latency_p50_us / p99 / max: report sent -> the first Assignment of its incident on any
 *     unit's socket (the three durable commits on the way, and every hop between),
 *   chain_seconds, chain_reports_per_s: first report sent -> the last assignment received,
 *   ledger_head_before / ledger_head_after (from the ledger's control socket, LEDGER_CTL).
 * Exits 1 when the run did not complete within 120 s of the last report, with what arrived. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "linkage/clock.h"
#include "linkage/error.h"
#include "linkage/event.h"
#include "linkage/map.h"
#include "linkage/v1/report.pb-c.h"
#include "linkage/v1/unit.pb-c.h"

#define DEVICES 8
#define WINDOW 512
#define MAX_UNITS 16
#define GIVE_UP_US (120 * 1000000LL)

struct unit {
  const char *id;
  void *sock;
  int welcomed;
  int64_t beat_us, next_beat;
  long assignments;
};

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int send_pb(void *s, const uint8_t *buf, size_t len) {
  if (zmq_send(s, "", 0, ZMQ_SNDMORE) != 0) return -1;
  return zmq_send(s, buf, len, 0) == (int)len ? 0 : -1;
}

static int send_unit(struct unit *u, int hello) {
  Linkage__V1__UnitMessage m = LINKAGE__V1__UNIT_MESSAGE__INIT;
  Linkage__V1__Hello h = LINKAGE__V1__HELLO__INIT;
  Linkage__V1__Heartbeat hb = LINKAGE__V1__HEARTBEAT__INIT;
  uint8_t buf[256];

  m.unit_id = (char *)u->id;
  if (hello) {
    h.software = "bench_chain";
    m.body_case = LINKAGE__V1__UNIT_MESSAGE__BODY_HELLO;
    m.hello = &h;
  } else {
    m.body_case = LINKAGE__V1__UNIT_MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &hb;
  }
  if (linkage__v1__unit_message__get_packed_size(&m) > sizeof buf) return -1;
  return send_pb(u->sock, buf, linkage__v1__unit_message__pack(&m, buf));
}

/* The next DispatchMessage waiting on s (the delimiter skipped), or NULL. */
static Linkage__V1__DispatchMessage *recv_dispatch(void *s) {
  for (;;) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, s, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&msg);
      return NULL;
    }
    if (zmq_msg_size(&msg) == 0 && zmq_msg_more(&msg)) {
      zmq_msg_close(&msg);
      continue;
    }
    Linkage__V1__DispatchMessage *dm =
        linkage__v1__dispatch_message__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    zmq_msg_close(&msg);
    if (dm) return dm;
  }
}

/* The ledger's head from its control socket ("status" -> "... head=N ..."), or -1. */
static long long ledger_head(void *ctx, const char *ctl) {
  void *req = zmq_socket(ctx, ZMQ_REQ);
  int linger = 0, tmo = 2000;
  char line[1100];
  long long head = -1;

  zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(req, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
  if (zmq_connect(req, ctl) == 0 && zmq_send(req, "status", 6, 0) == 6) {
    int n = zmq_recv(req, line, sizeof line - 1, 0);
    if (n > 0) {
      line[n < (int)sizeof line - 1 ? n : (int)sizeof line - 1] = '\0';
      const char *p = strstr(line, " head=");
      if (p) head = atoll(p + 6);
    }
  }
  zmq_close(req);
  return head;
}

static size_t build_report(const char *device, uint64_t seq, const char *compound, uint8_t *buf,
                           size_t cap) {
  Linkage__V1__Report r = LINKAGE__V1__REPORT__INIT;
  Linkage__V1__Location loc = LINKAGE__V1__LOCATION__INIT;
  loc.compound_id = (char *)compound;
  loc.building = "3";
  loc.unit = "2";
  loc.floor = 4;
  loc.lat = 30.6868;
  loc.lon = 103.8704;
  r.device_id = (char *)device;
  r.sequence = seq;
  r.category = LINKAGE__V1__CATEGORY__ACCIDENT_DISASTER;
  r.kind = "gas_leak";
  r.severity = LINKAGE__V1__SEVERITY__SEVERITY_IV;
  r.location = &loc;
  r.description = "smell of gas in stairwell 2, fourth floor landing";
  r.observed_at_us = lk_now_us();
  if (linkage__v1__report__get_packed_size(&r) > cap) return 0;
  return linkage__v1__report__pack(&r, buf);
}

struct retry {
  int device;
  long seq;
  int64_t due;
};

int main(int argc, char **argv) {
  if (argc < 8) {
    fprintf(stderr, "usage: bench_chain INTAKE_EP DISPATCH_EP LEDGER_CTL COUNT RATE COMPOUND "
                    "UNIT...\n");
    return 2;
  }
  const char *intake = argv[1], *dispatch = argv[2], *ctl = argv[3], *compound = argv[6];
  long count = atol(argv[4]);
  double rate = atof(argv[5]);
  int nunits = argc - 7;
  if (nunits > MAX_UNITS || count <= 0) return 2;
  count = (count / DEVICES) * DEVICES;
  if (count == 0) count = DEVICES;
  long per_device = count / DEVICES;

  void *ctx = zmq_ctx_new();
  int zero = 0;
  struct unit units[MAX_UNITS];
  memset(units, 0, sizeof units);
  for (int i = 0; i < nunits; i++) {
    units[i].id = argv[7 + i];
    units[i].sock = zmq_socket(ctx, ZMQ_DEALER);
    /* Unbounded on our side: dispatch's sends never meet a full pipe because we are slow. */
    zmq_setsockopt(units[i].sock, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt(units[i].sock, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(units[i].sock, dispatch) != 0 || send_unit(&units[i], 1) != 0) {
      fprintf(stderr, "bench_chain: cannot reach dispatch at %s\n", dispatch);
      return 1;
    }
  }
  /* Every unit welcomed before the first report: dispatch counts them present. */
  int64_t t_hello = lk_mono_us();
  for (int welcomed = 0; welcomed < nunits;) {
    zmq_pollitem_t items[MAX_UNITS];
    for (int i = 0; i < nunits; i++)
      items[i] = (zmq_pollitem_t){units[i].sock, 0, ZMQ_POLLIN, 0};
    zmq_poll(items, nunits, 100);
    for (int i = 0; i < nunits; i++) {
      Linkage__V1__DispatchMessage *dm;
      while ((dm = recv_dispatch(units[i].sock)) != NULL) {
        if (dm->body_case == LINKAGE__V1__DISPATCH_MESSAGE__BODY_WELCOME && !units[i].welcomed) {
          if (dm->welcome->error[0]) {
            fprintf(stderr, "bench_chain: %s refused: %s\n", units[i].id, dm->welcome->error);
            return 1;
          }
          units[i].welcomed = 1;
          units[i].beat_us =
              (dm->welcome->heartbeat_ms ? dm->welcome->heartbeat_ms : 2000) * 1000LL;
          units[i].next_beat = lk_mono_us() + units[i].beat_us;
          welcomed++;
        }
        linkage__v1__dispatch_message__free_unpacked(dm, NULL);
      }
    }
    if (lk_mono_us() - t_hello > 10000000) {
      fprintf(stderr, "bench_chain: dispatch welcomed %d of %d units in 10 s\n", welcomed, nunits);
      return 1;
    }
  }

  void *dev[DEVICES];
  char devices[DEVICES][64];
  long run = (long)time(NULL) ^ ((long)getpid() << 16);
  for (int d = 0; d < DEVICES; d++) {
    dev[d] = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(dev[d], ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(dev[d], ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(dev[d], intake) != 0) return 1;
    snprintf(devices[d], sizeof devices[d], "chain-%lx-%d", run, d);
  }

  /* incident id -> report index, for the first-assignment latency */
  struct lk_map by_incident;
  if (lk_map_init(&by_incident, (size_t)count) != LK_OK) return 1;
  for (int d = 0; d < DEVICES; d++)
    for (long s = 1; s <= per_device; s++) {
      char id[LK_ID_MAX];
      lk_incident_id(devices[d], (uint64_t)s, id);
      lk_map_put(&by_incident, id, (uint64_t)(d * per_device + s - 1));
    }
  int64_t *sent_at = calloc((size_t)count, sizeof *sent_at);
  int64_t *lat = calloc((size_t)count, sizeof *lat);
  struct retry *retries = calloc((size_t)count, sizeof *retries);
  if (!sent_at || !lat || !retries) return 1;
  long next_seq[DEVICES], inflight[DEVICES], sent = 0, acked = 0, other = 0, resent = 0;
  long nretry = 0, assignments = 0, first_seen = 0;
  long expected = count * nunits;
  for (int d = 0; d < DEVICES; d++)
    next_seq[d] = 1, inflight[d] = 0;
  long long head_before = ledger_head(ctx, ctl);
  uint8_t buf[1024];
  int64_t t0 = lk_mono_us(), t_last_send = 0, t_last_assign = 0;

  while (assignments < expected) {
    int64_t now = lk_mono_us();
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
      size_t len = build_report(devices[d], (uint64_t)next_seq[d], compound, buf, sizeof buf);
      sent_at[d * per_device + next_seq[d] - 1] = lk_mono_us();
      send_pb(dev[d], buf, len);
      next_seq[d]++;
      inflight[d]++;
      sent++;
      if (sent == count) t_last_send = lk_mono_us();
    }
    /* BUSY reports, again once their retry_after has passed. */
    for (long i = 0; i < nretry;) {
      if (retries[i].due > now) {
        i++;
        continue;
      }
      int d = retries[i].device;
      size_t len = build_report(devices[d], (uint64_t)retries[i].seq, compound, buf, sizeof buf);
      send_pb(dev[d], buf, len);
      inflight[d]++;
      resent++;
      retries[i] = retries[--nretry];
    }
    for (int i = 0; i < nunits; i++) {
      if (now >= units[i].next_beat) {
        send_unit(&units[i], 0);
        units[i].next_beat = now + units[i].beat_us;
      }
    }

    long timeout_ms = 10;
    if (rate > 0 && sent < count) {
      int64_t wait = t0 + (int64_t)((double)sent * 1e6 / rate) - lk_mono_us();
      timeout_ms = wait <= 0 ? 0 : (wait + 999) / 1000;
    }
    zmq_pollitem_t items[DEVICES + MAX_UNITS];
    for (int d = 0; d < DEVICES; d++)
      items[d] = (zmq_pollitem_t){dev[d], 0, ZMQ_POLLIN, 0};
    for (int i = 0; i < nunits; i++)
      items[DEVICES + i] = (zmq_pollitem_t){units[i].sock, 0, ZMQ_POLLIN, 0};
    zmq_poll(items, DEVICES + nunits, timeout_ms);

    for (int i = 0; i < nunits; i++) {
      Linkage__V1__DispatchMessage *dm;
      if (!(items[DEVICES + i].revents & ZMQ_POLLIN)) continue;
      while ((dm = recv_dispatch(units[i].sock)) != NULL) {
        if (dm->body_case == LINKAGE__V1__DISPATCH_MESSAGE__BODY_ASSIGNMENT) {
          uint64_t idx;
          int64_t t = lk_mono_us();
          if (lk_map_get(&by_incident, dm->assignment->incident_id, &idx)) {
            units[i].assignments++;
            assignments++;
            t_last_assign = t;
            if (lat[idx] == 0) {
              lat[idx] = t - sent_at[idx];
              if (lat[idx] <= 0) lat[idx] = 1;
              first_seen++;
            }
          }
        }
        linkage__v1__dispatch_message__free_unpacked(dm, NULL);
      }
    }
    for (int d = 0; d < DEVICES; d++) {
      uint8_t in[2048];
      int n;
      if (!(items[d].revents & ZMQ_POLLIN)) continue;
      while ((n = zmq_recv(dev[d], in, sizeof in, ZMQ_DONTWAIT)) >= 0) {
        if (n == 0) continue; /* the empty delimiter */
        Linkage__V1__ReportAck *ack =
            linkage__v1__report_ack__unpack(NULL, (size_t)(n < (int)sizeof in ? n : 0), in);
        if (!ack) {
          other++;
          continue;
        }
        inflight[d]--;
        if (ack->status == LINKAGE__V1__REPORT_ACK__STATUS__ACCEPTED ||
            ack->status == LINKAGE__V1__REPORT_ACK__STATUS__DUPLICATE) {
          acked++;
        } else if (ack->status == LINKAGE__V1__REPORT_ACK__STATUS__BUSY) {
          uint32_t after = ack->retry_after_ms ? ack->retry_after_ms : 10;
          retries[nretry++] = (struct retry){d, (long)ack->sequence, lk_mono_us() + after * 1000LL};
        } else {
          other++;
        }
        linkage__v1__report_ack__free_unpacked(ack, NULL);
      }
    }
    if (other > 0) {
      fprintf(stderr, "bench_chain: intake refused %ld reports\n", other);
      break;
    }
    if (sent == count && nretry == 0 &&
        lk_mono_us() - (t_last_assign > t_last_send ? t_last_assign : t_last_send) > GIVE_UP_US)
      break;
  }
  int64_t t_end = t_last_assign ? t_last_assign : lk_mono_us();
  double chain_s = (double)(t_end - t0) / 1e6;
  printf("reports=%ld\nacked=%ld\nbusy_resent=%ld\nsend_seconds=%.3f\n", count, acked, resent,
         (double)((t_last_send ? t_last_send : t_end) - t0) / 1e6);
  printf("assignments=%ld\nassignments_expected=%ld\nincidents_assigned=%ld\n", assignments,
         expected, first_seen);
  for (int i = 0; i < nunits; i++)
    printf("unit_%d=%s:%ld\n", i, units[i].id, units[i].assignments);
  printf("chain_seconds=%.3f\nchain_reports_per_s=%.0f\n", chain_s, (double)count / chain_s);
  if (rate > 0) printf("offered_per_s=%.0f\n", rate);
  size_t n = 0;
  for (long i = 0; i < count; i++)
    if (lat[i] > 0) lat[n++] = lat[i];
  if (n) {
    qsort(lat, n, sizeof *lat, cmp_i64);
    printf("latency_p50_us=%" PRId64 "\nlatency_p99_us=%" PRId64 "\nlatency_max_us=%" PRId64 "\n",
           lat[n / 2], lat[(n * 99) / 100], lat[n - 1]);
  }
  printf("ledger_head_before=%lld\nledger_head_after=%lld\n", head_before, ledger_head(ctx, ctl));
  for (int d = 0; d < DEVICES; d++)
    zmq_close(dev[d]);
  for (int i = 0; i < nunits; i++)
    zmq_close(units[i].sock);
  zmq_ctx_term(ctx);
  lk_map_close(&by_incident);
  free(sent_at);
  free(lat);
  free(retries);
  return assignments == expected ? 0 : 1;
}
