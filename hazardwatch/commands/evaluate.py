"""`hazardwatch evaluate --plant P --input readings.jsonl --output events.jsonl [--policy Y]`.

Offline and deterministic: the recording is parsed in chunks into numpy arrays, put back into
time order within a reorder window, and fed to the risk engine in batches. Bad lines are
reported with their line number on stderr and counted, never fatal. A rich progress bar is
shown only when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from hazardwatch.errors import ConfigError
from stream.engine import ReadingBatch, RiskEngine
from stream.events import event_to_json
from stream.policy import EnginePolicy
from stream.tagtable import TagTable

CHUNK_LINES = 100_000
MAX_REPORTED_BAD_LINES = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare plant, input, output, policy and the reorder window."""
    parser.add_argument("--plant", required=True, help="plant YAML file")
    parser.add_argument("--input", required=True, help="readings.jsonl")
    parser.add_argument("--output", required=True, help="events.jsonl to write")
    parser.add_argument("--policy", help="policy YAML file (risk section)")
    parser.add_argument(
        "--reorder-window-s",
        type=float,
        default=60.0,
        help="hold readings this long to restore time order (default 60 s)",
    )


@dataclass
class EvaluateSummary:
    """Counts of one evaluate run."""

    lines: int = 0
    bad_lines: int = 0
    bad_reasons: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    engine: dict[str, int] = field(default_factory=dict)


class _Timestamps:
    """RFC 3339 strings (with offset) or epoch ms → epoch ms, memoised: gateways share stamps."""

    def __init__(self) -> None:
        self.cache: dict[str, int] = {}

    def __call__(self, raw: object) -> int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if not isinstance(raw, str):
            raise ValueError("ts must be an RFC 3339 string or epoch milliseconds")
        hit = self.cache.get(raw)
        if hit is None:
            hit = self._parse(raw)  # C fromisoformat: faster than any Python-level shortcut
            if len(self.cache) > 200_000:
                self.cache.clear()
            self.cache[raw] = hit
        return hit

    @staticmethod
    def _parse(raw: str) -> int:
        moment = datetime.fromisoformat(raw)
        if moment.tzinfo is None:
            raise ValueError("ts has no UTC offset")
        return round(moment.timestamp() * 1000)


def _parse_one(obj: Any, index: dict[str, int], stamp: _Timestamps) -> tuple[int, int, float, int]:
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    tag = index.get(obj["tag"]) if isinstance(obj.get("tag"), str) else None
    if tag is None:
        raise ValueError(f"unknown tag {obj.get('tag')!r}")
    v = obj["v"]
    if v is None:
        v = float("nan")  # a gateway's null is an unusable value: a sensor fault
    elif isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError("v must be a number")
    q = obj.get("q", 0)
    if isinstance(q, bool) or not isinstance(q, int) or not -128 <= q <= 127:
        raise ValueError("q must be an integer -128..127")
    return tag, stamp(obj["ts"]), float(v), q


_NUMBER_TYPES = frozenset({int, float, type(None)})


def _parse_fast(
    lines: list[bytes], index: dict[str, int], stamp: _Timestamps
) -> ReadingBatch | None:
    """Whole chunk as one JSON array with list comprehensions; None if any line is bad (the
    caller then parses line by line to name the bad ones)."""
    try:
        objs = orjson.loads(b"[" + b",".join(x for x in lines if x.strip()) + b"]")
        tags = [index[o["tag"]] for o in objs]
        cache = stamp.cache
        ts = [cache[t] if t in cache else stamp(t) for t in (o["ts"] for o in objs)]
        vs = [o["v"] for o in objs]
        qs = [o.get("q", 0) for o in objs]
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError, AttributeError):
        return None
    if {type(v) for v in vs} - _NUMBER_TYPES or {type(q) for q in qs} - {int}:
        return None
    q = np.array(qs, dtype=np.int64)
    if q.shape[0] and (q.min() < -128 or q.max() > 127):
        return None
    return ReadingBatch.of(tags, ts, np.array(vs, dtype=np.float64), q.astype(np.int8))


def parse_chunk(lines: list[bytes], first_line: int, index: dict[str, int], stamp: _Timestamps,
                summary: EvaluateSummary) -> ReadingBatch:  # fmt: skip
    """Parse JSONL lines into arrays; bad lines are reported (line number) and counted."""
    fast = _parse_fast(lines, index, stamp)
    if fast is not None:
        return fast
    tags: list[int] = []
    ts: list[int] = []
    vs: list[float] = []
    qs: list[int] = []
    for n, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            tag, t, v, q = _parse_one(orjson.loads(line), index, stamp)
        except (orjson.JSONDecodeError, KeyError, ValueError, TypeError, OverflowError) as exc:
            summary.bad_lines += 1
            reason = "missing field" if isinstance(exc, KeyError) else type(exc).__name__
            summary.bad_reasons[reason] += 1
            if summary.bad_lines <= MAX_REPORTED_BAD_LINES:
                detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                print(f"line {n}: {detail}", file=sys.stderr)
            continue
        tags.append(tag)
        ts.append(t)
        vs.append(v)
        qs.append(q)
    return ReadingBatch.of(tags, ts, vs, qs)


class _Reorder:
    """Holds back the newest `window_ms` of readings so slightly late ones still fit in order."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self.held: ReadingBatch | None = None

    def push(self, batch: ReadingBatch, final: bool = False) -> ReadingBatch:
        if self.held is not None:
            batch = ReadingBatch(*(np.concatenate([a, b]) for a, b in (
                (self.held.tag, batch.tag), (self.held.ts, batch.ts),
                (self.held.value, batch.value), (self.held.quality, batch.quality))))  # fmt: skip
        if len(batch) == 0:
            self.held = None
            return batch
        order = np.argsort(batch.ts, kind="stable")
        cut = (
            len(batch)
            if final
            else int(
                np.searchsorted(batch.ts[order], int(batch.ts.max()) - self.window_ms, "right")
            )
        )
        out, keep = order[:cut], order[cut:]
        self.held = ReadingBatch(batch.tag[keep], batch.ts[keep], batch.value[keep],
                                 batch.quality[keep])  # fmt: skip
        return ReadingBatch(batch.tag[out], batch.ts[out], batch.value[out], batch.quality[out])


def _chunks(stream: IO[bytes]) -> Iterator[list[bytes]]:
    while True:
        lines = stream.readlines(CHUNK_LINES * 64)
        if not lines:
            return
        yield lines


def evaluate_stream(engine: RiskEngine, stream: IO[bytes], out: IO[bytes],
                    reorder_ms: int = 60_000, progress: Any = None) -> EvaluateSummary:  # fmt: skip
    """Run a readings.jsonl stream through `engine`, writing events.jsonl lines to `out`."""
    summary = EvaluateSummary()
    index = engine.table.tag_index()
    stamp = _Timestamps()
    reorder = _Reorder(reorder_ms)
    line_no = 1

    def emit(batch: ReadingBatch) -> None:
        events = engine.process(batch)
        if events:
            out.write(b"".join(event_to_json(e) + b"\n" for e in events))
            summary.events.update(e.type for e in events)

    for lines in _chunks(stream):
        batch = parse_chunk(lines, line_no, index, stamp, summary)
        line_no += len(lines)
        summary.lines += len(lines)
        emit(reorder.push(batch))
        if progress is not None:
            progress(sum(len(x) for x in lines))
    emit(reorder.push(ReadingBatch.of([], [], []), final=True))
    summary.engine = engine.counters
    return summary


def _engine(args: argparse.Namespace) -> RiskEngine:
    from hazardwatch.plant.loader import load_plant, load_policy

    plant = load_plant(args.plant)
    policy = EnginePolicy()
    if args.policy:
        policy = EnginePolicy.from_risk_policy(load_policy(args.policy).risk)
    return RiskEngine(TagTable.from_plant(plant), policy)


def run(args: argparse.Namespace) -> int:
    """Evaluate the recording; exit 0 (bad lines are counted, not fatal), 1 on config errors."""
    try:
        engine = _engine(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    source = Path(args.input)
    with source.open("rb") as stream, Path(args.output).open("wb") as out:
        reorder_ms = round(args.reorder_window_s * 1000)
        if sys.stderr.isatty():
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task("evaluating", total=source.stat().st_size)
                summary = evaluate_stream(engine, stream, out, reorder_ms,
                                          lambda n: bar.advance(task, n))  # fmt: skip
        else:
            summary = evaluate_stream(engine, stream, out, reorder_ms)
    counts = summary.engine
    print(
        f"{summary.lines} lines: {counts.get('accepted', 0)} readings evaluated, "
        f"{summary.bad_lines} bad lines, {counts.get('late', 0)} late, "
        f"{counts.get('duplicate', 0)} duplicate; events: "
        + (", ".join(f"{k} {v}" for k, v in sorted(summary.events.items())) or "none"),
        file=sys.stderr,
    )
    if summary.bad_reasons:
        reasons = ", ".join(f"{k} {v}" for k, v in summary.bad_reasons.most_common())
        print(f"bad lines by reason: {reasons}", file=sys.stderr)
    return 0
