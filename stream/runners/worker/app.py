"""The faust app of `hazardwatch worker`, built by `create_app` / `WorkerRuntime` (no global app).

Agents:
- `evaluate` on `{prefix}.telemetry`: batches of records per partition → that partition's engine;
- `merge` on `{prefix}.source-changes`: queues source changes in their enterprise's merge.
A timer every `worker.tick_interval_s` drives engine timers and releases enterprise changes on
the wall clock, and writes the operations lines of the dashboards: the colour roll call of the
worker's hazard sources and enterprises (at the first tick, then daily) and `pipeline_v1` every
10 s; a task applies acknowledgements from `{prefix}.commands`.

Processing guarantee: at least once, with deterministic event ids (docs/architecture.md,
"Distributed runner"). Every batch is made durable in this order before faust may commit its
offsets: InfluxDB lines written (or spooled to disk), output records acknowledged by Kafka, then
the table row. faust commits only acknowledged offsets and flushes its producer (so the row)
before committing. A crash at any point replays records whose effects are either absent or
identical (same event ids), never missing. What the engine applied is its own offset, not faust's
commit: offsets faust skipped are read back from Kafka (`rebuild.fill_holes`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from faust.streams import Stream
from faust.types import EventT, StreamT

from alerting.commands import AckCommand
from hazardwatch.plant.model import Plant
from hazardwatch.settings import Settings
from stream.events import Event
from stream.policy import EnginePolicy
from stream.runners.metrics import RunnerSources
from stream.runners.pipeline import ROLL_CALL_MS
from stream.runners.worker.codec import EngineRow, RowError, engine_key, key_partition
from stream.runners.worker.commands import CommandReader, command_positions
from stream.runners.worker.config import faust_app
from stream.runners.worker.enterprise import EnterpriseMerge
from stream.runners.worker.feed import SourceChange
from stream.runners.worker.outputs import Outputs
from stream.runners.worker.partition import PartitionEngine, Step
from stream.runners.worker.partitioning import partition_of, sources_by_partition
from stream.runners.worker.rebuild import committed_offsets, fill_holes, rebuild
from stream.runners.worker.topics import ENGINE_TABLE, ENTERPRISE_TABLE, WorkerTopics
from stream.runners.worker.watchdog import Recovery, RecoveryWatch
from stream.sinks.influx import InfluxSink
from stream.sinks.lines import EventLines
from stream.sinks.ops_lines import OpsLines
from stream.sinks.spool import Spool

log = logging.getLogger(__name__)


BatchHandler = Callable[[list[EventT[bytes]]], Awaitable[None]]


def wall_ms() -> int:
    """Epoch milliseconds of the wall clock: the only clock the worker reads."""
    return time.time_ns() // 1_000_000


class RoutedTable(faust.Table):  # type: ignore[type-arg]
    """A table whose rows go to a fixed changelog partition, also when written from a timer
    (faust's own choice needs the current stream event)."""

    route: Callable[[Any], int]

    def partition_for_key(self, key: Any) -> int | None:
        """The partition our key scheme assigns to `key`."""
        return self.route(key)


class WorkerRuntime:
    """Engines, enterprise merges, the InfluxDB sink and the faust app that drives them."""

    def __init__(
        self,
        settings: Settings,
        plant: Plant,
        policy: EnginePolicy,
        *,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.plant = plant
        self.policy = policy
        self.topics = WorkerTopics.from_settings(settings)
        self.n_partitions = settings.kafka.partitions
        self.worker_id = worker_id or settings.worker.id or socket.gethostname()
        self.sources = sources_by_partition(plant, self.n_partitions)
        self.enterprise_sources = {
            e.id: tuple(s.id for s in plant.hazard_sources if s.enterprise == e.id)
            for e in plant.enterprises
        }
        home = settings.data_dir / "worker" / self.worker_id
        self.sink = InfluxSink(settings.influx,
                               Spool(home / "spool", settings.runner.spool_max_bytes))  # fmt: skip
        self.event_lines = EventLines({e.id: e.region for e in plant.enterprises})
        self.engines: dict[int, PartitionEngine] = {}
        self.merges: dict[str, EnterpriseMerge] = {}
        self.assigned: set[int] = set()
        self.ready = False  # first assignment done
        self.rebalancing = True
        self.lag: dict[int, int] = {}
        self.counters: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)  # per stage: where time goes
        self._lock = asyncio.Lock()
        self._orphans: set[int] = set()  # partitions with records but no engine (logged once)
        self._offsets: AIOKafkaConsumer | None = None
        self._generation = 0  # bumped when the set of engines changes
        # Source-changes offsets the merge agent has read (or the group had committed) per
        # partition: an enterprise's roll call waits until its merge has read every change.
        self._changes_read: dict[int, int] = {}
        self._roll_call_at: dict[str, int] = {}  # enterprise → wall ms of its next roll call
        self.recovery_stalled_s = 0.0  # faust's table recovery without progress (watchdog.py)
        self.app = self._build_app(home)
        self.outputs = Outputs(self.sink, self.topics, self._send, self._partition)
        # pipeline_v1 reads rejections as `rejected_<reason>`, the decoder's names
        rejected = lambda: {f"rejected_{k}": n for k, n in self._rejected().items()}  # noqa: E731
        sources = dataclasses.replace(self.runner_sources(), rejected_by_reason=rejected)
        self.ops_lines = OpsLines(self.process, sources, None, None)

    @property
    def process(self) -> str:
        """`pipeline_v1.process` of this worker: `worker:<worker id>`. Bounded: the id must
        be stable anyway, since it names the spool only this worker replays; one series per
        worker keeps its cumulative counters apart from the others'."""
        return f"worker:{self.worker_id}"

    def runner_sources(self) -> RunnerSources:
        """The worker's counters as `/metrics` and `pipeline_v1` read them."""
        return RunnerSources(
            readings_in=lambda: sum(e.counters.readings for e in list(self.engines.values())),
            rejected_by_reason=self._rejected,
            evaluated=self._evaluated,
            sink=lambda: vars(self.sink.stats).copy(),
            spool_fill=lambda: self.sink.spool.fill,
            queue_depth=lambda: sum(dict(self.lag).values()),
            events_out=lambda: self.outputs.events_out,
        )

    def _rejected(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for engine in list(self.engines.values()):
            total.update(engine.counters.rejected)
            total["duplicate_record"] += engine.counters.duplicates
        return dict(total)

    def _evaluated(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for engine in list(self.engines.values()):
            total.update(engine.engine.counters)
        return dict(total)

    # -- faust wiring ---------------------------------------------------------------------------
    def _build_app(self, home: Path) -> faust.App:
        app = faust_app(self.settings, self.topics.app_id, home)
        n = self.n_partitions
        kw: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
        self.telemetry_topic = app.topic(self.topics.telemetry, partitions=n, **kw)
        self.changes_topic = app.topic(self.topics.source_changes, partitions=n, **kw)
        outs = (self.topics.alarms, self.topics.risk, self.topics.alerts)
        self.out_topics = {name: app.topic(name, **kw) for name in outs}
        self.out_topics[self.topics.source_changes] = self.changes_topic
        self.engine_table = self._table(app, ENGINE_TABLE, _engine_partition)
        self.enterprise_table = self._table(app, ENTERPRISE_TABLE, lambda key: partition_of(key, n))
        w_ = self.settings.worker

        async def evaluate(stream: StreamT[bytes]) -> None:
            # StreamT (faust's interface) does not declare take_events; the object is a Stream.
            batches = cast(Stream[bytes], stream).take_events(w_.batch_max_records,
                                                              w_.batch_within_s)  # fmt: skip
            async for events in batches:
                await self._guarded(self.on_telemetry, events)

        async def merge(stream: StreamT[bytes]) -> None:
            batches = cast(Stream[bytes], stream).take_events(500, w_.batch_within_s)
            async for events in batches:
                await self._guarded(self.on_source_changes, events)

        app.agent(self.telemetry_topic, name="evaluate")(evaluate)
        app.agent(self.changes_topic, name="merge")(merge)
        app.timer(w_.tick_interval_s, name="tick")(self.tick)
        app.task(self.run_commands)
        # faust's stubs type signal receivers as a union mypy cannot match a coroutine against.
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        app.on_rebalance_complete.connect(self._on_rebalance_complete)  # type: ignore[arg-type]
        app.on_before_shutdown.connect(self._on_shutdown)  # type: ignore[arg-type]
        return app

    async def _guarded(
        self,
        handle: Callable[[list[EventT[bytes]]], Awaitable[None]],
        events: Iterable[EventT[bytes]],
    ) -> None:
        try:
            await handle(list(events))
        except asyncio.CancelledError:
            raise
        except Exception:
            # faust acknowledges a batch even when its handler raised, and would commit it; the
            # only way not to lose the batch is to die before the next commit and be restarted.
            log.critical("batch handler failed; exiting so the batch is read again", exc_info=True)
            logging.shutdown()
            os._exit(70)

    async def _send(
        self, topic: str, key: bytes, value: bytes, partition: int | None
    ) -> Awaitable[Any]:
        # force: publish now, not "attached" to the current event until faust commits it,
        # which would make waiting for the delivery wait forever.
        return await self.out_topics[topic].send(key=key, value=value, partition=partition,
                                                 force=True)  # fmt: skip

    def _table(self, app: faust.App, name: str, route: Callable[[Any], int]) -> RoutedTable:
        table = RoutedTable(app, name=name, partitions=self.n_partitions, key_type=bytes,
                            value_type=bytes)  # fmt: skip
        table.route = route
        app.tables.add(table)
        return table

    async def _on_shutdown(self, sender: Any, *args: Any, signal: Any = None, **kw: Any) -> None:
        if self._offsets is not None:
            await self._offsets.stop()

    # -- rebalancing ------------------------------------------------------------------------------
    async def _on_revoked(self, sender: Any, *args: Any, signal: Any = None, **kw: Any) -> None:
        # Until the new assignment is complete nothing may touch an engine whose partition may
        # move: the timer and the commands task pause.
        self.rebalancing = True

    async def _on_rebalance_complete(
        self, sender: Any, *args: Any, signal: Any = None, **kw: Any
    ) -> None:
        assignment = self.app.consumer.assignment()
        assigned = {tp.partition for tp in assignment if tp.topic == self.topics.telemetry}
        async with self._lock:
            for p in set(self.engines) - assigned:
                del self.engines[p]
            for enterprise in [e for e in self.merges if self._partition(e) not in assigned]:
                del self.merges[enterprise]
                self._roll_call_at.pop(enterprise, None)
            new = sorted(p for p in assigned - set(self.engines) if p in self.sources)
            bootstrap = self.settings.kafka.bootstrap_servers
            committed = await committed_offsets(bootstrap, self.topics.app_id,
                                                self.topics.telemetry, new)  # fmt: skip
            merged = await committed_offsets(bootstrap, self.topics.app_id,
                                             self.topics.source_changes,
                                             sorted(assigned))  # fmt: skip
            for p, offset in merged.items():  # committed = the next offset the agent reads
                self._changes_read[p] = max(self._changes_read.get(p, -1), offset - 1)
            for p in new:
                self.engines[p] = await self._open_engine(p, committed.get(p, -1))
            for enterprise in self.enterprise_sources:
                if self._partition(enterprise) in assigned:
                    self._merge_for(enterprise)
            self.assigned = assigned
            self._generation += 1
            self.rebalancing = False
            self.ready = True
        log.info("worker %s: partitions %s, engines %s (restored %s)", self.worker_id,
                 sorted(assigned), sorted(self.engines),
                 sorted(p for p, e in self.engines.items() if e.restored))  # fmt: skip

    def _partition(self, enterprise: str) -> int:
        return partition_of(enterprise, self.n_partitions)

    async def _open_engine(self, partition: int, committed: int) -> PartitionEngine:
        """Restore a partition's engine and re-read what was committed after its snapshot."""
        raw = self.engine_table.get(engine_key(partition))
        row = None
        if raw is not None:
            try:
                row = EngineRow.decode(raw)
            except RowError as exc:
                log.error("partition %d: unreadable engine row (%s); starting fresh",
                          partition, exc)  # fmt: skip
        engine = PartitionEngine(partition, self.plant, self.sources[partition], self.policy, row)
        # Without a row the partition never changed state, but its last values and windows
        # (rate of change, baseline, flatline, frozen, stale) still rebuild from what was read.
        steps, reread = await rebuild(engine, self.settings.kafka.bootstrap_servers,
                                      self.topics.telemetry, committed,
                                      self.settings.worker.rebuild_max_records)  # fmt: skip
        self.counters["rebuilt_records"] += reread
        await self._make_durable([(engine, step) for step in steps])
        return engine

    def _merge_for(self, enterprise: str) -> EnterpriseMerge:
        merge = self.merges.get(enterprise)
        if merge is None:
            sources = self.enterprise_sources.get(enterprise, ())
            merge = EnterpriseMerge(enterprise, sources, self.policy)
            raw = self.enterprise_table.get(enterprise.encode())
            if raw is not None:
                try:
                    merge.restore(raw)
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("enterprise %s: unreadable merge row (%s)", enterprise, exc)
            self.merges[enterprise] = merge
        return merge

    # -- agents ---------------------------------------------------------------------------------
    async def on_telemetry(self, events: Iterable[EventT[bytes]]) -> None:
        """One batch of telemetry records, grouped by partition, made durable before the ack."""
        by_partition: dict[int, list[tuple[int, bytes | None]]] = {}
        for event in events:
            message = event.message
            by_partition.setdefault(message.partition, []).append((message.offset, event.value))
        async with self._lock:
            steps = []
            for partition, records in by_partition.items():
                engine = self.engines.get(partition)
                if engine is None:
                    self.counters["records_without_engine"] += len(records)
                    if partition not in self._orphans:
                        self._orphans.add(partition)
                        log.error("telemetry in partition %d, where no hazard source of the plant "
                                  "hashes: the bridge's plant or partitioner differs",
                                  partition)  # fmt: skip
                    continue
                fresh = [(o, v) for o, v in records if o > engine.offset]
                self.counters["records_seen_twice"] += len(records) - len(fresh)
                if fresh:
                    fresh = await self._fill_holes(engine, fresh)
                    started = time.perf_counter()
                    steps.append((engine, engine.handle(fresh)))
                    self.seconds["evaluate"] += time.perf_counter() - started
            await self._make_durable(steps)

    async def _fill_holes(
        self, engine: PartitionEngine, fresh: list[tuple[int, bytes | None]]
    ) -> list[tuple[int, bytes | None]]:
        """`fresh` with the offsets faust skipped since the engine's offset read back."""
        records, read_back = await fill_holes(self.settings.kafka.bootstrap_servers,
                                              self.topics.telemetry, engine.partition,
                                              engine.offset, fresh)  # fmt: skip
        if read_back:
            self.counters["records_read_back"] += read_back
            log.warning("partition %d: faust skipped %d records after offset %d; read back "
                        "from Kafka", engine.partition, read_back, engine.offset)  # fmt: skip
        return records

    async def on_source_changes(self, events: Iterable[EventT[bytes]]) -> None:
        """Queue source changes in their enterprise's merge; the row is saved before the ack."""
        async with self._lock:
            touched: set[str] = set()
            for event in events:
                message = event.message
                read = self._changes_read.get(message.partition, -1)
                self._changes_read[message.partition] = max(read, message.offset)
                try:
                    change = SourceChange.from_json(event.value or b"")
                except ValueError:
                    self.counters["bad_source_changes"] += 1
                    continue
                if change.enterprise not in self.enterprise_sources:
                    self.counters["unknown_enterprise_changes"] += 1
                    continue
                if self._merge_for(change.enterprise).add(change):
                    touched.add(change.enterprise)
                else:
                    self.counters["source_changes_seen_twice"] += 1
            for enterprise in touched:
                self.enterprise_table[enterprise.encode()] = self.merges[enterprise].to_bytes()

    # -- timers ----------------------------------------------------------------------------------
    async def tick(self) -> None:
        """Engine timers and enterprise releases on the wall clock; roll calls and pipeline
        counters; spool replay; lag."""
        if self.rebalancing:
            return
        highwaters, changes_ends = await self._highwaters()
        now = wall_ms()
        async with self._lock:
            self._update_lag(highwaters)
            steps = []
            engine_now = now - self.settings.worker.clock_lag_ms
            ops: list[str] = []
            for partition, engine in self.engines.items():
                # An engine with a backlog must read it first: moving its clock past the waiting
                # readings would make them late.
                if self.lag.get(partition, 1) == 0:
                    step = engine.advance(engine_now)
                    if step.changed:
                        steps.append((engine, step))
                    # caught up: the colours are current, and no later event is dated earlier
                    ops += engine.roll_call_if_due()
            await self._make_durable(steps)
            watermark = now - self.settings.worker.enterprise_grace_ms
            released: list[Event] = []
            touched = []
            for enterprise, merge in self.merges.items():
                if merge.due(watermark):
                    released += merge.release(watermark)
                    touched.append(enterprise)
            if released:
                lines = [self.event_lines.line(e) for e in released]
                await self.outputs.write_lines(lines)
                await self.outputs.publish(released, [])
            for enterprise in touched:
                self.enterprise_table[enterprise.encode()] = self.merges[enterprise].to_bytes()
            ops += self._enterprise_roll_call(watermark, changes_ends)
            ops += self.ops_lines.due(now)
            if ops or (not steps and not released):
                await self.outputs.write_lines(ops)  # also retries the spool when its time came

    def _enterprise_roll_call(self, watermark: int, changes_ends: dict[int, int]) -> list[str]:
        """Roll-call lines of the enterprises whose merge is due, stamped with the watermark up
        to which their colour is known. A merge must first have read every source change
        already on its partition (after an assignment the agent may still be catching up):
        a roll call of an older colour would otherwise hide the changes applied after it."""
        calls = []
        for enterprise, merge in self.merges.items():
            due_at = self._roll_call_at.get(enterprise)
            if due_at is not None and watermark < due_at:
                continue
            partition = self._partition(enterprise)
            end = changes_ends.get(partition)
            if end is None or self._changes_read.get(partition, -1) < end - 1:
                continue
            self._roll_call_at[enterprise] = watermark + ROLL_CALL_MS
            calls += merge.roll_call(watermark)
        return self.event_lines.roll_call(calls)

    async def _highwaters(self) -> tuple[dict[int, int], dict[int, int]]:
        """End offsets of the assigned telemetry partitions and of the source-changes
        partitions of our enterprise merges, asked of the broker by a consumer of our own:
        faust's consumer knows none for a partition nothing was fetched from, and its thread
        may be busy rebalancing."""
        partitions = sorted(self.engines)
        merging = sorted({self._partition(e) for e in self.merges})
        if not partitions and not merging:
            return {}, {}
        try:
            if self._offsets is None:
                self._offsets = AIOKafkaConsumer(
                    bootstrap_servers=self.settings.kafka.bootstrap_servers, group_id=None
                )
                await self._offsets.start()
            tps = [TopicPartition(self.topics.telemetry, p) for p in partitions]
            tps += [TopicPartition(self.topics.source_changes, p) for p in merging]
            ends = await asyncio.wait_for(self._offsets.end_offsets(tps), 5.0)
        except Exception as exc:  # no lag known: no engine advances this tick
            log.warning("end offsets unavailable: %r", exc)
            return {}, {}
        telemetry = {tp.partition: int(o) for tp, o in ends.items()
                     if tp.topic == self.topics.telemetry}  # fmt: skip
        changes = {tp.partition: int(o) for tp, o in ends.items()
                   if tp.topic == self.topics.source_changes}  # fmt: skip
        return telemetry, changes

    def _update_lag(self, highwaters: dict[int, int]) -> None:
        # unknown end offset: count as one waiting record, so the engine does not advance
        self.lag = {
            p: max(0, highwaters[p] - engine.offset - 1) if p in highwaters else 1
            for p, engine in self.engines.items()
        }

    # -- recovery watchdog ---------------------------------------------------------------------
    def recovery_watch(self) -> RecoveryWatch:
        """The service that exits the worker when faust's table recovery stalls (watchdog.py);
        give it to faust's Worker beside the app."""

        def report(stalled_s: float) -> None:
            self.recovery_stalled_s = stalled_s

        # faust declares `recovery` on TableManager only, not on the TableManagerT it types it as
        recovery = lambda: cast(Recovery, cast(Any, self.app.tables).recovery)  # noqa: E731
        return RecoveryWatch(recovery, self.settings.worker.recovery_stall_s, report)

    # -- acknowledgements -----------------------------------------------------------------------
    async def run_commands(self) -> None:
        """Apply acknowledgements from the commands topic to the engines owning their tags."""
        reader = CommandReader(self.settings.kafka.bootstrap_servers, self.topics.commands)
        await reader.start()
        generation = -1
        try:
            while True:
                if self.rebalancing:
                    await asyncio.sleep(0.2)
                    continue
                if generation != self._generation:
                    async with self._lock:
                        generation = self._generation
                        await reader.seek(
                            command_positions(
                                list(self.engines.values()), await reader.end_offsets()
                            )
                        )
                records = await reader.poll(500)
                if not records:
                    continue
                async with self._lock:
                    if generation != self._generation:
                        continue  # engines changed while polling: re-position, read again
                    steps = []
                    for record in records:
                        if record.ack is None:
                            continue
                        steps += self._acknowledge(record.ack, record.partition, record.offset)
                    await self._make_durable(steps)
        finally:
            await reader.stop()

    def _acknowledge(
        self, ack: AckCommand, partition: int, offset: int
    ) -> list[tuple[PartitionEngine, Step]]:
        steps = []
        for engine in self.engines.values():
            step = engine.acknowledge(ack, partition, offset)
            if step is not None:
                steps.append((engine, step))
        if steps:
            self.counters["acknowledgements"] += 1
        return steps

    # -- durability --------------------------------------------------------------------------------
    async def _make_durable(self, steps: list[tuple[PartitionEngine, Step]]) -> None:
        """InfluxDB (or spool) first, then the output topics, then the table rows."""
        started = time.perf_counter()
        lines = [line for _, step in steps for line in step.lines]
        await self.outputs.write_lines(lines)
        written = time.perf_counter()
        events = [e for _, step in steps for e in step.events]
        changes = [c for _, step in steps for c in step.changes]
        await self.outputs.publish(events, changes)
        for engine, step in steps:
            if step.changed:
                self.engine_table[engine_key(engine.partition)] = engine.row().encode()
        self.seconds["influx"] += written - started
        self.seconds["publish_and_save"] += time.perf_counter() - written

    # -- operations ------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """`/healthz`: assigned (after the first rebalance) and the spool not full."""
        spool_fill = self.sink.spool.fill
        return {
            "ok": bool(self.ready and spool_fill < 1.0 and not self.outputs.backpressure),
            "worker": self.worker_id,
            "partitions": sorted(self.assigned),
            "engines": sorted(self.engines),
            "engines_restored": sorted(p for p, e in list(self.engines.items()) if e.restored),
            "rebalancing": self.rebalancing,
            "recovery_stalled_s": round(self.recovery_stalled_s, 1),
            "consumer_lag": sum(self.lag.values()),
            "spool_fill": round(spool_fill, 4),
        }


def _engine_partition(key: Any) -> int:
    partition = key_partition(bytes(key))
    if partition is None:
        raise ValueError(f"not an engine table key: {key!r}")
    return partition


def create_app(
    settings: Settings, plant: Plant, policy: EnginePolicy, *, worker_id: str | None = None
) -> faust.App:
    """A new faust app for `hazardwatch worker`; build `WorkerRuntime(...)` instead when its
    health, metrics or sink are needed too."""
    return WorkerRuntime(settings, plant, policy, worker_id=worker_id).app
