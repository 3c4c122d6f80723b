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
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import orjson

from hazardwatch.commands.evaluate_timestamps import Timestamps as _Timestamps
from hazardwatch.commands.evaluate_timestamps import rfc3339_ms
from hazardwatch.errors import ConfigError
from stream.engine import ReadingBatch, RiskEngine
from stream.events import event_to_json
from stream.policy import EnginePolicy
from stream.tagtable import TagTable

CHUNK_BYTES = 6_400_000  # about 100,000 readings
MAX_REPORTED_BAD_LINES = 50
DEFAULT_REORDER_WINDOW_S = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare plant, input, output, policy and the reorder window."""
    parser.add_argument("--plant", required=True, help="plant YAML file")
    parser.add_argument("--input", required=True, help="readings.jsonl")
    parser.add_argument("--output", required=True, help="events.jsonl to write")
    parser.add_argument("--policy", help="policy YAML file (risk section)")
    parser.add_argument(
        "--reorder-window-s",
        type=float,
        default=DEFAULT_REORDER_WINDOW_S,
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
_TS_TYPES = frozenset({int, str})
_TAG, _TS, _V = itemgetter("tag"), itemgetter("ts"), itemgetter("v")
FALLBACK_LINES = 1_000  # a chunk with a bad line is retried in pieces of this many lines
BULK_TIMESTAMPS = 512  # distinct timestamp strings in a chunk from which numpy parses them


def _stamps(raw_ts: list[object], stamp: _Timestamps) -> npt.NDArray[np.int64]:
    """Epoch ms of a chunk's ts fields (ints and strs only): each distinct string parsed once;
    when most are distinct (a historian export: one stamp per reading), in bulk with numpy."""
    distinct = dict.fromkeys(raw_ts)  # no bools here, so True cannot alias epoch ms 1
    if len(distinct) >= BULK_TIMESTAMPS and 4 * len(distinct) >= len(raw_ts):
        texts = [x for x in raw_ts if isinstance(x, str)]
        if len(texts) == len(raw_ts):
            ms, ok = rfc3339_ms(texts)
            for i in np.flatnonzero(~ok).tolist():
                ms[i] = stamp(raw_ts[i])
            return ms
    for raw in distinct:
        distinct[raw] = stamp(raw)
    return np.fromiter(map(distinct.__getitem__, raw_ts), np.int64, len(raw_ts))


def _parse_fast(body: bytes, index: dict[str, int], stamp: _Timestamps) -> ReadingBatch | None:
    """Newline-separated JSON objects (no blank lines) parsed as one JSON array, fields pulled
    out with C-level map/itemgetter; None if any line is bad (the caller then narrows down to
    the bad lines). Each distinct timestamp string is parsed once."""
    n_lines = body.count(b"\n") + 1
    try:
        objs = orjson.loads(b"[" + body.replace(b"\n", b",") + b"]")
        if len(objs) != n_lines:  # e.g. a line holding two comma-separated objects
            return None
        tags = list(map(index.__getitem__, map(_TAG, objs)))
        raw_ts = list(map(_TS, objs))
        vs = list(map(_V, objs))
        if set(map(type, vs)) - _NUMBER_TYPES or set(map(type, raw_ts)) - _TS_TYPES:
            return None
        ts = _stamps(raw_ts, stamp)
        if b'"q"' in body or b"\\u" in body:  # a quality field (or an escaped key) somewhere
            qs = [o.get("q", 0) for o in objs]
            if set(map(type, qs)) - {int}:
                return None
            q = np.array(qs, dtype=np.int64)
            if q.shape[0] and (q.min() < -128 or q.max() > 127):
                return None
        else:
            q = np.zeros(len(objs), dtype=np.int64)
        values = np.array(vs, dtype=np.float64)  # None → NaN: a sensor fault
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError, AttributeError,
            OverflowError):  # fmt: skip
        return None
    return ReadingBatch(np.array(tags, dtype=np.int32), ts, values, q.astype(np.int8))


def _parse_lines(lines: list[bytes], first_line: int, index: dict[str, int],
                 stamp: _Timestamps, summary: EvaluateSummary) -> ReadingBatch:  # fmt: skip
    """One line at a time: reports (line number) and counts each bad line."""
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


def parse_chunk(chunk: bytes, first_line: int, index: dict[str, int], stamp: _Timestamps,
                summary: EvaluateSummary) -> ReadingBatch:  # fmt: skip
    """Parse JSONL bytes (whole lines) into arrays; bad lines are reported (line number) and
    counted. Fast path for the whole chunk; if it holds a bad line, pieces of FALLBACK_LINES
    lines are retried fast and only the pieces with bad lines go line by line."""
    body = chunk.strip()
    fast = _parse_fast(body, index, stamp) if body else ReadingBatch.of([], [], [])
    if fast is not None:
        return fast
    lines = chunk.split(b"\n")
    if chunk.endswith(b"\n"):
        lines.pop()
    parts: list[ReadingBatch] = []
    for a in range(0, len(lines), FALLBACK_LINES):
        piece = lines[a : a + FALLBACK_LINES]
        part = None
        if all(line.strip() for line in piece):
            part = _parse_fast(b"\n".join(piece), index, stamp)
        if part is None:
            part = _parse_lines(piece, first_line + a, index, stamp, summary)
        parts.append(part)
    return ReadingBatch(*(np.concatenate([getattr(p, name) for p in parts])
                          for name in ("tag", "ts", "value", "quality")))  # fmt: skip


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


def read_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """Blocks of about CHUNK_BYTES ending at a line end (the last one may lack it)."""
    rest = b""
    while True:
        block = stream.read(CHUNK_BYTES)
        if not block:
            if rest:
                yield rest
            return
        block = rest + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]


def _count_lines(chunk: bytes) -> int:
    return chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)


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

    for chunk in read_chunks(stream):
        batch = parse_chunk(chunk, line_no, index, stamp, summary)
        n_lines = _count_lines(chunk)
        line_no += n_lines
        summary.lines += n_lines
        emit(reorder.push(batch))
        if progress is not None:
            progress(len(chunk))
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
