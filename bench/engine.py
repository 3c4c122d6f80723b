"""Risk engine benchmark: prints one JSON object on stdout.

Synthetic plant (default 10,000 tags): 5 tags per unit, 4 units per hazard source, 10 sources per
enterprise; H/HH (and some L/LL) limits with deadband and DOMAIN on-delays; 10 s publishing;
1 % of tags carry a flatline rule, 0.5 % a flow-difference and 0.5 % a rate-of-change rule.
Readings (default 1,000,000) arrive round-robin every 10 s with 0.3 % of span noise; 1 % of the
tags ramp through their limits, so alarms are rare, as in steady operation.

Keys: core_readings_per_s (arrays in → events out), evaluate_readings_per_s (readings.jsonl
parsed → events.jsonl, through hazardwatch.commands.evaluate), reference_readings_per_s (tests'
per-reading evaluator on a prefix), state_bytes_per_tag (engine at 100,000 tags), and the ceiling
numpy_sort_readings_per_s: a stable argsort of the same tag arrays, the engine's unavoidable pass.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hazardwatch.commands.evaluate import evaluate_stream
from stream.engine import ReadingBatch, RiskEngine
from stream.tagtable import RuleKind, RuleSpec, TagSpec, TagTable
from tests.reference_evaluator import ReferenceEvaluator

T0_MS = 1_714_521_600_000  # 2024-05-01T00:00:00Z
BATCH = 100_000
TARGETS = {
    "core_readings_per_s": 5_000_000,
    "evaluate_readings_per_s": 300_000,
    "core_vs_reference": 20,
    "state_bytes_per_tag": 512,
}


def synthetic_table(n_tags: int) -> TagTable:
    """A plant of `n_tags` tags with the rule mix described in the module docstring."""
    specs = []
    for i in range(n_tags):
        unit, source = i // 5, i // 20
        limits = {"H": 80.0, "HH": 90.0}
        if i % 3 == 0:
            limits.update({"L": 10.0, "LL": 5.0})
        specs.append(TagSpec(f"T{i}", f"U{unit}", f"S{source}", f"E{source // 10}", limits=limits,
                             deadband=1.0, on_delay_s=15.0 if i % 2 else 60.0,
                             off_delay_s=15.0, expected_interval_s=10.0, range_min=0.0,
                             range_max=100.0))  # fmt: skip
    rules = []
    for i in range(0, n_tags - 1, 100):
        rules.append(RuleSpec(RuleKind.FLATLINE, f"T{i}", f"T{i + 1}", p1=50.0, p2=0.02,
                              window_s=900.0))  # fmt: skip
    for i in range(2, n_tags - 1, 200):
        rules.append(RuleSpec(RuleKind.FLOW_DIFF, f"T{i}", f"T{i + 1}", p1=0.03, p2=0.06))
    for i in range(4, n_tags, 200):
        rules.append(RuleSpec(RuleKind.RATE_OF_CHANGE, f"T{i}", p1=20.0))
    grades = {f"S{k}": 1 + k % 4 for k in range(n_tags // 20 + 1)}
    return TagTable.build(specs, rules, grades)


def synthetic_readings(n_tags: int, n: int, seed: int = 7) -> ReadingBatch:
    """Round-robin readings every 10 s; 1 % of tags ramp from 50 to 100 over the run."""
    rng = np.random.default_rng(seed)
    tag = np.arange(n, dtype=np.int64) % n_tags
    step = np.arange(n, dtype=np.int64) // n_tags
    ts = T0_MS + step * 10_000 + tag  # tags of one cycle 1 ms apart: globally time-ordered
    base = 40.0 + 20.0 * rng.random(n_tags)
    value = base[tag] + rng.normal(0.0, 0.3, n)
    ramp = tag % 100 == 7
    value[ramp] = (
        50.0 + 50.0 * step[ramp] / max(int(step.max()), 1) + rng.normal(0, 0.3, ramp.sum())
    )
    return ReadingBatch.of(tag.astype(np.int32), ts, value)


def _slices(batch: ReadingBatch, size: int) -> list[ReadingBatch]:
    return [ReadingBatch(batch.tag[a : a + size], batch.ts[a : a + size],
                         batch.value[a : a + size], batch.quality[a : a + size])
            for a in range(0, len(batch), size)]  # fmt: skip


def bench_core(table: TagTable, readings: ReadingBatch) -> tuple[float, int]:
    """Readings/s of RiskEngine.process over BATCH-sized array batches; and the event count."""
    parts = _slices(readings, BATCH)
    engine = RiskEngine(table)
    start = time.perf_counter()
    events = sum(len(engine.process(p)) for p in parts)
    return len(readings) / (time.perf_counter() - start), events


def bench_ceiling(readings: ReadingBatch) -> float:
    """Readings/s of numpy's stable argsort by tag over the same batches (the sort ceiling)."""
    parts = _slices(readings, BATCH)
    start = time.perf_counter()
    for p in parts:
        np.argsort(p.tag, kind="stable")
    return len(readings) / (time.perf_counter() - start)


def bench_evaluate(table: TagTable, readings: ReadingBatch) -> float:
    """Readings/s of the evaluate path: JSONL file → parse → engine → events.jsonl bytes."""
    ids = table.tag_ids
    stamps: dict[int, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "readings.jsonl"
        with path.open("wb") as f:
            for t, ts, v in zip(readings.tag.tolist(), readings.ts.tolist(),
                                readings.value.tolist(), strict=True):  # fmt: skip
                stamp = stamps.get(ts)
                if stamp is None:
                    moment = datetime.fromtimestamp(ts / 1000, tz=UTC)
                    stamp = stamps[ts] = moment.isoformat(timespec="milliseconds")
                f.write(orjson.dumps({"ts": stamp, "tag": ids[t], "v": round(v, 3)}) + b"\n")
        engine = RiskEngine(table)
        out = io.BytesIO()
        start = time.perf_counter()
        with path.open("rb") as stream:
            evaluate_stream(engine, stream, out, reorder_ms=0)
        return len(readings) / (time.perf_counter() - start)


def bench_reference(table: TagTable, readings: ReadingBatch, n: int) -> float:
    """Readings/s of the per-reading reference evaluator on the first `n` readings."""
    ref = ReferenceEvaluator(table)
    part = _slices(readings, n)[0]
    args = (part.tag.tolist(), part.ts.tolist(), part.value.tolist(), part.quality.tolist())
    start = time.perf_counter()
    ref.process(*args)
    return len(part) / (time.perf_counter() - start)


def state_bytes_per_tag(n_tags: int) -> float:
    """Engine state bytes per tag after one reading per tag."""
    table = synthetic_table(n_tags)
    engine = RiskEngine(table)
    engine.process(synthetic_readings(n_tags, n_tags))
    return engine.state_bytes() / n_tags


def main() -> None:
    """Run every measurement and print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--reference-readings", type=int, default=20_000)
    parser.add_argument("--state-tags", type=int, default=100_000)
    args = parser.parse_args()
    table = synthetic_table(args.tags)
    readings = synthetic_readings(args.tags, args.readings)
    core, events = bench_core(table, readings)
    ceiling = bench_ceiling(readings)
    evaluate = bench_evaluate(table, readings)
    reference = bench_reference(table, readings, min(args.reference_readings, args.readings))
    state = state_bytes_per_tag(args.state_tags)
    report: dict[str, object] = {
        "readings": args.readings,
        "tags": args.tags,
        "rules": table.n_rules,
        "events": events,
        "core_readings_per_s": round(core),
        "evaluate_readings_per_s": round(evaluate),
        "reference_readings_per_s": round(reference),
        "core_vs_reference": round(core / reference, 1),
        "state_bytes_per_tag": round(state, 1),
        "state_tags": args.state_tags,
        "numpy_sort_readings_per_s": round(ceiling),
        "core_fraction_of_sort_ceiling": round(core / ceiling, 3),
        "targets": TARGETS,
    }
    report["pass"] = {
        "core_readings_per_s": core >= TARGETS["core_readings_per_s"],
        "evaluate_readings_per_s": evaluate >= TARGETS["evaluate_readings_per_s"],
        "core_vs_reference": core / reference >= TARGETS["core_vs_reference"],
        "state_bytes_per_tag": state <= TARGETS["state_bytes_per_tag"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
