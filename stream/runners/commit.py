"""Group commit for the embedded runner: deferred MQTT acknowledgements and the writer thread.

Writing to InfluxDB once per MQTT batch, and waiting for it before taking the next batch, left
the broker's window of unacknowledged messages idle while InfluxDB worked. Instead:

- `DeferredAckLink` is ingest's `MqttLink` whose `ack()` only hands the deliveries to the
  runner's open commit group (IngestService calls it after the hand-off);
- the runner closes a group every ~5,000 lines, a few hundred messages or `flush_interval_ms`
  (`Pipeline.commit`: state saved first when the group holds events) and queues it here;
- `SinkWriter`, one thread, takes the groups in order: it persists the group's state delta and
  event lines (`Pipeline.persist`, SQLite with fsync — kept off the engine's lock), writes the
  lines in batches of the sink's size to InfluxDB or the spool, and only then sends the group's
  acknowledgements.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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
    """Takes queued groups in order: `persist(group)`, write its lines (InfluxDB or spool),
    then `on_written(group)`."""

    def __init__(
        self,
        sink: InfluxSink,
        persist: Callable[[Group], None],
        on_written: Callable[[Group], None],
        max_groups: int = 4,
        retry_s: float = 1.0,
    ) -> None:
        self.sink = sink
        self.persist = persist
        self.on_written = on_written
        self.retry_s = retry_s
        self.stats = WriterStats()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_groups)
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._give_up = threading.Event()
        self._busy = False
        self._unacked = 0
        self._count_lock = threading.Lock()

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
        """Groups waiting to be written, including the one being written."""
        return self._queue.qsize() + self._busy

    def put(self, group: Group, stop: threading.Event | None = None, timeout_s: float = 0) -> bool:
        """Queue a group, waiting while the queue is full; False if `stop` was set (or
        `timeout_s` > 0 passed) first — the group's messages then stay unacknowledged."""
        deadline = time.monotonic() + timeout_s if timeout_s > 0 else None
        while True:
            try:
                self._queue.put(group, timeout=0.2)
                with self._count_lock:
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
        if self._thread.is_alive():
            self._give_up.set()  # InfluxDB down and the spool full: leave the rest unacked
            self._thread.join(5.0)
            return False
        return True

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=IDLE_DRAIN_S)
            except queue.Empty:
                self._drain_spool()
                continue
            if item is _CLOSE:
                return
            assert isinstance(item, Group)
            self._busy = True
            try:
                self._group(item)
            finally:
                self._busy = False
            if self._give_up.is_set():
                return  # shutting down with InfluxDB and the spool unavailable

    def _group(self, item: Group) -> None:
        if not self._persist(item) or not self._write(item.commit.lines):
            return  # giving up at shutdown; the group is not acknowledged
        self.stats.groups += 1
        self.stats.lines += len(item.commit.lines)
        self.stats.acks += len(item.deliveries)
        with self._count_lock:
            self._unacked -= len(item.deliveries)
        try:
            self.on_written(item)
        except Exception:  # an ack that fails is redelivered later: log, keep writing
            log.exception("acknowledging a written group failed")

    def _persist(self, group: Group) -> bool:
        while True:
            try:
                self.persist(group)
                return True
            except Exception:  # disk trouble: nothing of this group may be acknowledged yet
                log.exception("saving the engine state failed; retrying")
                if self._give_up.wait(self.retry_s):
                    return False

    def _write(self, lines: list[str]) -> bool:
        size = self.sink.batch_lines
        start = 0
        warned = False
        while start < len(lines):
            batch = lines[start : start + size]
            began = time.perf_counter()
            try:
                self.sink.write(batch)
            except SpoolFullError as exc:
                self.stats.spool_full_waits += 1
                if not warned:
                    log.error("%s; waiting for InfluxDB, input paused", exc)
                    warned = True
                if self._give_up.wait(self.retry_s):
                    return False
                continue
            finally:
                self.stats.write_s += time.perf_counter() - began
            start += size
        return True

    def _drain_spool(self) -> None:
        try:
            self.sink.drain()
        except Exception:  # replay is retried on the next idle second
            log.exception("replaying the InfluxDB spool failed")
