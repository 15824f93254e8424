/* A fixed link delay for the chaos tests, where the kernel has no netem.
 *
 *   delayq QUEUE DELAY_MS
 *
 * Binds NFQUEUE number QUEUE and holds every packet nftables queues there for DELAY_MS before
 * letting it go on (NF_ACCEPT), in arrival order: the delay is the same for every packet, so
 * order is kept, as netem's `delay` without jitter keeps it. Prints "ready=1" once bound; runs
 * until SIGTERM or SIGINT, then lets every held packet go and prints what it did:
 *   packets=N max_held=N late_us_max=N
 * (late_us_max: the most a packet was held past its due time, from this loop's scheduling).
 *
 * Run it inside the namespace whose nftables rules say `queue num QUEUE`; a queued packet
 * with no program bound is dropped, so the rules go in after "ready=1" and out before this
 * program stops (tests/lib/netns.py does both). */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

/* Packets held at once: at the chaos test's rates a 300 ms delay holds a few hundred. */
#define HELD_MAX (1u << 16)

struct held {
  uint32_t id;
  int64_t due_us;
};

static struct held ring[HELD_MAX];
static unsigned head, count, max_held;
static int64_t delay_us, late_max;
static long packets;
static volatile sig_atomic_t stopping;

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_stop(int sig) {
  (void)sig;
  stopping = 1;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
                     void *data) {
  (void)msg;
  (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  uint32_t id = ntohl(ph->packet_id);
  packets++;
  if (count == HELD_MAX) /* full: let it through now rather than lose it */
    return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
  ring[(head + count) % HELD_MAX] = (struct held){id, mono_us() + delay_us};
  if (++count > max_held) max_held = count;
  return 0;
}

/* Lets go every held packet due by now (all of them if all is set). */
static int release(struct nfq_q_handle *qh, int all) {
  int64_t now = mono_us();
  while (count > 0 && (all || ring[head].due_us <= now)) {
    if (now - ring[head].due_us > late_max) late_max = now - ring[head].due_us;
    if (nfq_set_verdict(qh, ring[head].id, NF_ACCEPT, 0, NULL) < 0) {
      fprintf(stderr, "delayq: verdict failed: %s\n", strerror(errno));
      return -1;
    }
    head = (head + 1) % HELD_MAX;
    count--;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3 || atoi(argv[1]) < 0 || atoi(argv[2]) < 0) {
    fprintf(stderr, "usage: delayq QUEUE DELAY_MS\n");
    return 2;
  }
  uint16_t qnum = (uint16_t)atoi(argv[1]);
  delay_us = (int64_t)atoi(argv[2]) * 1000;
  int rc = 1;
  struct nfq_q_handle *qh = NULL;
  struct nfq_handle *h = nfq_open();
  if (!h) {
    fprintf(stderr, "delayq: nfq_open failed: %s (no NFQUEUE in this kernel?)\n", strerror(errno));
    return 1;
  }
  qh = nfq_create_queue(h, qnum, on_packet, NULL);
  if (!qh) {
    fprintf(stderr, "delayq: cannot bind queue %u: %s\n", qnum, strerror(errno));
    goto done;
  }
  /* Only the packet id is needed for a verdict: no payload copied to us. */
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0 || nfq_set_queue_maxlen(qh, HELD_MAX) < 0) {
    fprintf(stderr, "delayq: cannot configure queue %u: %s\n", qnum, strerror(errno));
    goto done;
  }
  signal(SIGTERM, on_stop);
  signal(SIGINT, on_stop);
  printf("ready=1\n");
  fflush(stdout);

  int fd = nfq_fd(h);
  char buf[65536];
  while (!stopping) {
    int timeout = 100;
    if (count > 0) {
      int64_t wait = ring[head].due_us - mono_us();
      timeout = wait <= 0 ? 0 : (int)((wait + 999) / 1000);
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, timeout);
    if (n < 0 && errno != EINTR) {
      fprintf(stderr, "delayq: poll failed: %s\n", strerror(errno));
      goto done;
    }
    if (n > 0) {
      ssize_t len = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (len > 0)
        nfq_handle_packet(h, buf, (int)len);
      else if (len < 0 && errno == ENOBUFS)
        fprintf(stderr, "delayq: the kernel dropped queued packets (socket buffer full)\n");
    }
    if (release(qh, 0) < 0) goto done;
  }
  rc = 0;
done:
  if (qh) {
    if (release(qh, 1) < 0) rc = 1;
    nfq_destroy_queue(qh);
  }
  nfq_close(h);
  printf("packets=%ld\nmax_held=%u\nlate_us_max=%lld\n", packets, max_held, (long long)late_max);
  return rc;
}
