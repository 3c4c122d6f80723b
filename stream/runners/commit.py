"""Group commit for the embedded runner: deferred MQTT acknowledgements and the writer thread.

Writing to InfluxDB once per MQTT batch, and waiting for it before taking the next batch, left
the broker's window of unacknowledged messages idle while InfluxDB worked. Instead:

- `DeferredAckLink` is ingest's `MqttLink` whose `ack()` only hands the deliveries to the
  runner's open commit group (IngestService calls it after the hand-off);
- the runner closes a group every ~5,000 lines, a few hundred messages or `flush_interval_ms`
  (`Pipeline.commit`: state saved first when the group holds events) and queues it here;
- `SinkWriter` takes the groups in order: it persists the group's state delta and event lines
  (`Pipeline.persist`, SQLite with fsync — kept off the engine's lock), writes the lines in
  batches of the sink's size to InfluxDB or the spool, two batches in flight (InfluxDB takes
  more with two writers), and sends a group's acknowledgements once it and every earlier group
  are written.
So the engine works on the next messages while the previous group is being written, and a
message is still acknowledged only after its readings are in InfluxDB or the spool. A full spool
(InfluxDB down for long) makes the writer retry the same batch; its queue fills, the ingest
thread waits in `put`, and the broker keeps the backlog.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from hazardwatch.settings import MqttSettings
from ingest.mqtt import Delivery, LinkOptions, MqttLink
from ingest.results import Decoded
from stream.runners.pipeline import Commit
from stream.sinks.influx import InfluxSink
from stream.sinks.spool import SpoolFullError

log = logging.getLogger(__name__)

Deliveries = Sequence[Delivery[Decoded]]
IDLE_DRAIN_S = 1.0  # without groups, retry the spool this often (the sink applies its backoff)


class DeferredAckLink(MqttLink[Decoded]):
    """An `MqttLink` whose `ack()` defers to the commit group; `ack_now()` really acknowledges."""

    def __init__(
        self,
        settings: MqttSettings,
        options: LinkOptions,
        hook: Callable[[str, bytes, int], Decoded],
        on_ack: Callable[[Deliveries], None],
    ) -> None:
        super().__init__(settings, options, hook)
        self.on_ack = on_ack

    def ack(self, deliveries: Deliveries) -> int:
        """Add the deliveries to the open commit group; nothing is sent yet."""
        self.on_ack(deliveries)
        return 0

    def ack_now(self, deliveries: Deliveries) -> int:
        """Acknowledge to the broker (the group is durable)."""
        return super().ack(deliveries)


@dataclass
class Group:
    """A closed commit group and the MQTT deliveries its lines cover."""

    commit: Commit
    deliveries: list[Delivery[Decoded]] = field(default_factory=list)
    pending: int = 0  # batches still being written
    failed: bool = False  # a batch was given up (shutdown): never acknowledge


@dataclass
class WriterStats:
    """Counters of the writer thread (metrics and the benchmark)."""

    groups: int = 0
    lines: int = 0
    acks: int = 0
    spool_full_waits: int = 0
    write_s: float = 0.0


_CLOSE = object()


class SinkWriter:
    """Takes queued groups in order: `persist(group)`, write its lines in batches (InfluxDB or
    spool) with up to `in_flight` batches at once, then `on_written(group)` — in group order.

    In order, because a message's lines may sit in the group before the one holding its
    delivery (the ticker closed a group between hand-off and acknowledgement): a group is
    acknowledged only when it and every group before it are written. Persisting is sequential
    too (each state delta builds on the previous one); a later group's state may be committed
    before an earlier group's lines are written — safe, as both stay unacknowledged until then.
    """

    def __init__(
        self,
        sink: InfluxSink,
        persist: Callable[[Group], None],
        on_written: Callable[[Group], None],
        max_groups: int = 4,
        retry_s: float = 1.0,
        in_flight: int = 2,
    ) -> None:
        self.sink = sink
        self.persist = persist
        self.on_written = on_written
        self.retry_s = retry_s
        self.stats = WriterStats()
        # The last write found the spool full: input is paused until InfluxDB takes a batch.
        # (The spool's fill stays just below 1: the batch that did not fit is not in it.)
        self.spool_full = False
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_groups)
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._posters = ThreadPoolExecutor(in_flight, thread_name_prefix="influx-post")
        self._slots = threading.Semaphore(in_flight)
        self._give_up = threading.Event()
        self._lock = threading.Lock()  # the groups in flight and the counters below
        self._in_flight: deque[Group] = deque()  # persisted, not yet acknowledged, in order
        self._unacked = 0
        self._halted = False

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def has_room(self) -> bool:
        """True when `put` would not wait."""
        return not self._queue.full()

    @property
    def unacknowledged(self) -> int:
        """MQTT deliveries of the groups queued or being written."""
        return self._unacked

    @property
    def queued(self) -> int:
        """Groups waiting or being written."""
        with self._lock:
            return self._queue.qsize() + len(self._in_flight)

    def put(self, group: Group, stop: threading.Event | None = None, timeout_s: float = 0) -> bool:
        """Queue a group, waiting while the queue is full; False if `stop` was set (or
        `timeout_s` > 0 passed) first — the group's messages then stay unacknowledged."""
        deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
        while True:
            try:
                self._queue.put(group, timeout=0.2)
                with self._lock:
                    self._unacked += len(group.deliveries)
                return True
            except queue.Full:
                if stop is not None and stop.is_set():
                    return False
                if deadline is not None and time.monotonic() > deadline:
                    return False

    def close(self, timeout_s: float = 30.0) -> bool:
        """Write what is queued and stop; True when everything was written or spooled."""
        if not self._thread.is_alive():
            return self._queue.empty()
        try:
            self._queue.put(_CLOSE, timeout=timeout_s)
        except queue.Full:
            self._give_up.set()
            self._thread.join(5.0)
            return False
        self._thread.join(timeout_s)
        finished = not self._thread.is_alive()
        if not finished:
            self._give_up.set()  # InfluxDB down and the spool full: leave the rest unacked
            self._thread.join(5.0)
        self._posters.shutdown(wait=True)
        with self._lock:
            return finished and not self._in_flight

    def _run(self) -> None:
        while not self._give_up.is_set():
            try:
                item = self._queue.get(timeout=IDLE_DRAIN_S)
            except queue.Empty:
                if not self._in_flight:
                    self._drain_spool()
                continue
            if item is _CLOSE:
                self._wait_in_flight()
                return
            assert isinstance(item, Group)
            self._start(item)

    def _start(self, group: Group) -> None:
        if not self._persist(group):
            return
        lines, size = group.commit.lines, self.sink.batch_lines
        batches = [lines[i : i + size] for i in range(0, len(lines), size)]
        with self._lock:
            group.pending = len(batches)
            self._in_flight.append(group)
        if not batches:
            self._finish(group, True)
        for batch in batches:
            while not self._slots.acquire(timeout=0.2):
                if self._give_up.is_set():
                    self._finish(group, False)
                    return
            future = self._posters.submit(self._write, batch)
            future.add_done_callback(partial(self._batch_done, group))

    def _batch_done(self, group: Group, future: Future[bool]) -> None:
        self._slots.release()
        self._finish(group, future.exception() is None and future.result())

    def _finish(self, group: Group, ok: bool) -> None:
        """One batch of `group` ended: acknowledge, in order, every group now fully written."""
        done: list[Group] = []
        with self._lock:
            group.failed |= not ok
            group.pending = max(0, group.pending - 1)
            while self._in_flight and self._in_flight[0].pending == 0:
                head = self._in_flight.popleft()
                self._unacked -= len(head.deliveries)
                # After a group given up (shutdown), later ones may hold deliveries whose
                # lines were in it: acknowledge nothing more.
                self._halted |= head.failed
                if not self._halted:
                    done.append(head)
                    self.stats.groups += 1
                    self.stats.lines += len(head.commit.lines)
                    self.stats.acks += len(head.deliveries)
        for item in done:
            try:
                self.on_written(item)
            except Exception:  # an ack that fails is redelivered later: log, keep writing
                log.exception("acknowledging a written group failed")

    def _wait_in_flight(self) -> None:
        while True:
            with self._lock:
                if not self._in_flight:
                    return
            if self._give_up.wait(0.05):
                return

    def _persist(self, group: Group) -> bool:
        while True:
            try:
                self.persist(group)
                return True
            except Exception:  # disk trouble: nothing of this group may be acknowledged yet
                log.exception("saving the engine state failed; retrying")
                if self._give_up.wait(self.retry_s):
                    return False

    def _write(self, batch: list[str]) -> bool:
        """One batch to InfluxDB or the spool; a full spool is retried until it takes it."""
        warned = False
        while True:
            began = time.perf_counter()
            try:
                self.sink.write(batch)
                self.spool_full = False
                return True
            except SpoolFullError as exc:
                self.stats.spool_full_waits += 1
                self.spool_full = True
                if not warned:
                    log.error("%s; waiting for InfluxDB, input paused", exc)
                    warned = True
            except Exception:  # whatever fails, the batch is retried, never dropped or fatal
                log.exception("writing a batch failed; retrying")
            finally:
                self.stats.write_s += time.perf_counter() - began
            if self._give_up.wait(self.retry_s):
                return False

    def _drain_spool(self) -> None:
        try:
            self.sink.drain()
        except Exception:  # replay is retried on the next idle second
            log.exception("replaying the InfluxDB spool failed")
