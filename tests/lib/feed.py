"""A subscriber of Linkage's public incident feed that never misses an event.

Copy this file into your project; it needs pyzmq and the module stock protoc generates from
proto/linkage/v1/feed.proto (`protoc --python_out=. -Iproto proto/linkage/v1/*.proto`).

    from feed import FeedSubscriber
    from linkage.v1 import event_pb2

    sub = FeedSubscriber("tcp://127.0.0.1:7006", "tcp://127.0.0.1:7007",
                         after_position=load_my_position(),
                         prefixes=["inc/yongquan/jiangpu-road/"])
    while True:
        for ev in sub.poll(timeout=1.0):
            e = event_pb2.Event.FromString(ev.event)   # the ledger's exact bytes
            handle(ev.position, ev.topic, e)
            save_my_position(ev.position)               # restart with after_position=this

The zguide's Clone pattern, as the daemons' own lk_stream does one level down: subscribe
first, then replay from the last position through the replay socket until caught up with the
head, keeping live messages that arrive meanwhile; from then on follow live. Each event is
delivered once, in position order, whether it came live, by replay or both.

The subscriber tracks `covered`: every position up to it has been seen (and delivered if it
matched the prefixes). A live message at covered + 1 is delivered at once. Anything else that
shows a position beyond `covered` -- a live message further on (a gap: messages the feed
dropped while we were slow, or events outside our prefixes), a heartbeat announcing a higher
head -- starts a replay from covered + 1, one at a time. An unfiltered subscriber sees every
position, so it replays only after a real gap; a filtered one cannot tell a gap from events of
other topics, so it asks the replay socket (which filters on the gateway's side and answers
with how far it scanned) whenever its topics skip positions: still exactly once and in order.
"""

import collections
import struct
import time

import zmq

from linkage.v1 import feed_pb2

FeedEvent = collections.namedtuple("FeedEvent", "position topic event")

HEARTBEAT = b"hb"


class FeedSubscriber:
    """Delivers the feed's events with position > after_position whose topic starts with one of
    `prefixes` ([""] = everything), in order, exactly once, across reconnects and gateway
    restarts."""

    def __init__(self, feed_endpoint, replay_endpoint, after_position=0, prefixes=("",),
                 ctx=None, max_events=1000, replay_timeout=3.0, rcvhwm=100000, buffer_max=100000):
        self.feed_endpoint = feed_endpoint
        self.replay_endpoint = replay_endpoint
        self.prefixes = [p for p in prefixes]
        self.everything = (not self.prefixes) or ("" in self.prefixes)
        self.covered = after_position      # every position <= covered is handled
        self.head = 0                       # the highest head the gateway announced
        self.max_events = max_events
        self.replay_timeout = replay_timeout
        self.buffer_max = buffer_max
        self.ctx = ctx or zmq.Context.instance()
        self.stats = collections.Counter()
        self._buffer = {}                   # live messages beyond covered + 1: position -> event
        self._request_id = 0
        self._inflight = None               # (request_id, sent_at)
        self._retry_at = 0.0
        self._ready = collections.deque()

        # Subscribe first: whatever is published from now on is queued for us while we replay.
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, rcvhwm)
        self.sub.setsockopt(zmq.LINGER, 0)
        for p in (self.prefixes if not self.everything else [""]):
            self.sub.setsockopt(zmq.SUBSCRIBE, p.encode())
        if not self.everything:
            self.sub.setsockopt(zmq.SUBSCRIBE, HEARTBEAT)
        self.sub.connect(feed_endpoint)
        self.dealer = None
        self._open_dealer()
        self._replay()

    # ------------------------------------------------------------ public

    def poll(self, timeout=1.0):
        """Waits up to `timeout` seconds for events; returns the list delivered (maybe empty)."""
        deadline = time.monotonic() + timeout
        while not self._ready:
            now = time.monotonic()
            self._tick(now)
            left = deadline - now
            if left <= 0:
                break
            poller = zmq.Poller()
            poller.register(self.sub, zmq.POLLIN)
            poller.register(self.dealer, zmq.POLLIN)
            wait = min(left, 0.1)
            for s, _ in poller.poll(int(wait * 1000) + 1):
                if s is self.sub:
                    self._drain_live()
                elif s is self.dealer:
                    self._drain_replies()
        out = list(self._ready)
        self._ready.clear()
        return out

    def close(self):
        self.sub.close(0)
        if self.dealer is not None:
            self.dealer.close(0)

    @property
    def caught_up(self):
        """True once everything up to the last announced head has been handled."""
        return self.head > 0 and self.covered >= self.head and self._inflight is None

    # ------------------------------------------------------------ live

    def _drain_live(self):
        for _ in range(10000):
            try:
                frames = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 3 or len(frames[1]) != 8:
                self.stats["malformed"] += 1
                continue
            topic, position = frames[0], struct.unpack(">Q", frames[1])[0]
            if topic == HEARTBEAT and frames[2] == b"":
                self.stats["heartbeats"] += 1
                self.head = max(self.head, position)
                if position > self.covered:
                    self._replay()
                continue
            self.stats["live"] += 1
            self.head = max(self.head, position)
            if position <= self.covered:
                self.stats["live_dropped_repeat"] += 1
            elif position == self.covered + 1 and self._inflight is None:
                self._deliver(position, topic, frames[2])
            else:
                if len(self._buffer) < self.buffer_max:
                    self._buffer[position] = FeedEvent(position, topic.decode(), frames[2])
                self._replay()

    # ------------------------------------------------------------ replay

    def _open_dealer(self):
        if self.dealer is not None:
            self.dealer.close(0)
        self.dealer = self.ctx.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.connect(self.replay_endpoint)

    def _replay(self):
        """Asks for what follows covered, unless a request is already out or we must wait."""
        if self._inflight is not None or time.monotonic() < self._retry_at:
            return
        self._request_id += 1
        req = feed_pb2.FeedRequest(after_position=self.covered, max_events=self.max_events,
                                   request_id=self._request_id)
        if not self.everything:
            req.topic_prefixes.extend(self.prefixes)
        try:
            self.dealer.send_multipart([b"", req.SerializeToString()], zmq.NOBLOCK)
        except zmq.Again:
            self._retry_at = time.monotonic() + 0.1
            return
        self.stats["replays"] += 1
        self._inflight = (self._request_id, time.monotonic())

    def _tick(self, now):
        if self._inflight is not None and now - self._inflight[1] > self.replay_timeout:
            # The gateway went away with our request (restart): a new socket drops any late
            # answer to the old one, and we ask again.
            self.stats["replay_timeouts"] += 1
            self._inflight = None
            self._open_dealer()
            self._replay()
        elif self._inflight is None and (self._buffer or self.head > self.covered):
            self._replay()

    def _drain_replies(self):
        for _ in range(100):
            try:
                frames = self.dealer.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            body = frames[-1]
            try:
                batch = feed_pb2.FeedBatch.FromString(body)
            except Exception:
                self.stats["malformed"] += 1
                continue
            if self._inflight is None or batch.request_id != self._inflight[0]:
                continue  # an answer to a request we gave up on
            self._inflight = None
            self._on_batch(batch)

    def _on_batch(self, batch):
        self.head = max(self.head, batch.head_position)
        if batch.error:
            self.stats["replay_errors"] += 1
            self._retry_at = time.monotonic() + max(batch.retry_after_ms, 100) / 1000.0
            return
        before = self.covered
        for it in batch.items:
            if it.position <= self.covered:
                continue
            self._deliver(it.position, it.topic.encode(), it.event)
        if batch.scanned_to > self.covered:
            self.covered = batch.scanned_to
        # Live messages the replay covered are repeats; the next ones may follow on directly.
        for p in [p for p in self._buffer if p <= self.covered]:
            del self._buffer[p]
        while self.covered + 1 in self._buffer:
            ev = self._buffer.pop(self.covered + 1)
            self._deliver(ev.position, ev.topic.encode(), ev.event)
        if batch.more or self._buffer or self.head > self.covered:
            if self.covered == before:
                # No progress (the gateway is behind the head it announced): do not spin.
                self._retry_at = time.monotonic() + 0.05
            self._replay()

    def _deliver(self, position, topic, event):
        self.covered = position
        self._ready.append(FeedEvent(position, topic.decode(), bytes(event)))
        self.stats["delivered"] += 1
