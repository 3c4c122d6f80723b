"""Risk engine benchmark: prints one JSON object on stdout.

Synthetic plant (default 10,000 tags): 5 tags per unit, 4 units per hazard source, 10 sources per
enterprise; H/HH (and some L/LL) limits with deadband and DOMAIN on-delays; 10 s publishing;
1 % of tags carry a flatline rule, 0.5 % a flow-difference and 0.5 % a rate-of-change rule;
10 % detect frozen values (30 min within 0.05).
Readings (default 1,000,000) arrive as gateways publish them: 50 tags per gateway, each gateway
sending all its tags every 10 s under one timestamp, gateways staggered over the 10 s (so 50
readings share a timestamp); 0.3 % of span noise; 1 % of the tags ramp through their limits, so
alarms are rare, as in steady operation. The report's `input` object describes it.

Keys: core_readings_per_s (arrays in → events out, 100,000-reading batches),
evaluate_readings_per_s (readings.jsonl parsed → events.jsonl, through
hazardwatch.commands.evaluate), reference_readings_per_s (tests' per-reading evaluator on a
prefix), state_bytes_per_tag (engine at 100,000 tags), and
evaluate_one_stamp_per_reading_readings_per_s (the same recording with a distinct timestamp
string on every reading: the worst case for timestamp parsing). Ceilings measured in the same run:
numpy_sort_readings_per_s (a stable argsort of the same tag arrays, the engine's unavoidable
pass) and orjson_parse_readings_per_s (orjson alone parsing the same JSONL, chunk by chunk).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hazardwatch.commands.evaluate import DEFAULT_REORDER_WINDOW_S, evaluate_stream, read_chunks
from stream.engine import ReadingBatch, RiskEngine
from stream.tagtable import RuleKind, RuleSpec, TagSpec, TagTable
from tests.reference_evaluator import ReferenceEvaluator

T0_MS = 1_714_521_600_000  # 2024-05-01T00:00:00Z
BATCH = 100_000
GATEWAY_TAGS = 50
INTERVAL_MS = 10_000
CST = timezone(timedelta(hours=8))  # China Standard Time: what gateways in the field stamp
JSONL_EXAMPLE = '{"ts":"2024-05-01T08:00:00.050+08:00","gw":"GW1","tag":"T50","v":47.113}'
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
                             range_max=100.0, frozen_after_s=1800.0 if i % 10 == 3 else 0.0,
                             frozen_band=0.05))  # fmt: skip
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


def synthetic_readings(
    n_tags: int, n: int, seed: int = 7, stamp_each: bool = False
) -> ReadingBatch:
    """Gateway batches: GATEWAY_TAGS consecutive tags per gateway, each gateway publishing all its
    tags every 10 s under one timestamp, gateways staggered evenly over the 10 s; readings in
    publishing order. 1 % of tags ramp from 50 to 100 over the run. `stamp_each`: every reading
    its own time instead (tags 1 ms apart), the worst case for timestamp parsing."""
    rng = np.random.default_rng(seed)
    tag = np.arange(n, dtype=np.int64) % n_tags
    step = np.arange(n, dtype=np.int64) // n_tags
    n_gateways = -(-n_tags // GATEWAY_TAGS)
    gateway = tag // GATEWAY_TAGS
    ts = T0_MS + step * INTERVAL_MS + gateway * (INTERVAL_MS // n_gateways)
    if stamp_each:
        ts = T0_MS + step * INTERVAL_MS + tag
    base = 40.0 + 20.0 * rng.random(n_tags)
    value = base[tag] + rng.normal(0.0, 0.3, n)
    ramp = tag % 100 == 7
    value[ramp] = (
        50.0 + 50.0 * step[ramp] / max(int(step.max()), 1) + rng.normal(0, 0.3, ramp.sum())
    )
    return ReadingBatch.of(tag.astype(np.int32), ts, value)


def input_description(readings: ReadingBatch, n_tags: int) -> dict[str, object]:
    """What the synthetic input looks like, for the report."""
    return {
        "gateways": -(-n_tags // GATEWAY_TAGS),
        "tags_per_gateway": GATEWAY_TAGS,
        "publish_interval_s": INTERVAL_MS / 1000,
        "readings_per_timestamp": round(len(readings) / len(np.unique(readings.ts)), 1),
        "distinct_timestamps": len(np.unique(readings.ts)),
        "time_ordered": bool(np.all(readings.ts[1:] >= readings.ts[:-1])),
        "core_batch_readings": BATCH,
        "jsonl_ts": "RFC 3339, ms, +08:00 offset",
        "jsonl_line": JSONL_EXAMPLE,
        "evaluate_reorder_window_s": DEFAULT_REORDER_WINDOW_S,
    }


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


def write_jsonl(table: TagTable, readings: ReadingBatch, path: Path) -> None:
    """The readings as readings.jsonl lines (see JSONL_EXAMPLE), timestamps in +08:00."""
    ids = table.tag_ids
    stamps: dict[int, str] = {}
    with path.open("wb") as f:
        for t, ts, v in zip(readings.tag.tolist(), readings.ts.tolist(), readings.value.tolist(),
                            strict=True):  # fmt: skip
            stamp = stamps.get(ts)
            if stamp is None:
                moment = datetime.fromtimestamp(ts / 1000, tz=CST)
                stamp = stamps[ts] = moment.isoformat(timespec="milliseconds")
            line = {"ts": stamp, "gw": f"GW{t // GATEWAY_TAGS}", "tag": ids[t], "v": round(v, 3)}
            f.write(orjson.dumps(line) + b"\n")


def bench_evaluate(table: TagTable, path: Path, n: int) -> tuple[float, int]:
    """Readings/s of the evaluate path: JSONL file → parse → reorder window (the command's
    default) → engine → events.jsonl bytes; and
    the number of readings the engine accepted (all of them, or the parse is broken)."""
    engine = RiskEngine(table)
    out = io.BytesIO()
    start = time.perf_counter()
    with path.open("rb") as stream:
        evaluate_stream(engine, stream, out, round(DEFAULT_REORDER_WINDOW_S * 1000))
    return n / (time.perf_counter() - start), engine.counters["accepted"]


def bench_parse_ceiling(path: Path, n: int) -> float:
    """Readings/s of orjson alone parsing the same file, read in the same chunks as evaluate,
    each chunk as one JSON array (no field checks, no conversion to arrays): the parse ceiling."""
    start = time.perf_counter()
    with path.open("rb") as stream:
        for chunk in read_chunks(stream):
            orjson.loads(b"[" + chunk.strip().replace(b"\n", b",") + b"]")
    return n / (time.perf_counter() - start)


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
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "readings.jsonl"
        write_jsonl(table, readings, path)
        evaluate, accepted = bench_evaluate(table, path, len(readings))
        parse_ceiling = bench_parse_ceiling(path, len(readings))
        each = synthetic_readings(args.tags, args.readings, stamp_each=True)
        write_jsonl(table, each, path)
        evaluate_each, _ = bench_evaluate(table, path, len(each))
    reference = bench_reference(table, readings, min(args.reference_readings, args.readings))
    state = state_bytes_per_tag(args.state_tags)
    report: dict[str, object] = {
        "readings": args.readings,
        "tags": args.tags,
        "rules": table.n_rules,
        "input": input_description(readings, args.tags),
        "events": events,
        "core_readings_per_s": round(core),
        "evaluate_readings_per_s": round(evaluate),
        "evaluate_accepted_readings": accepted,
        "reference_readings_per_s": round(reference),
        "core_vs_reference": round(core / reference, 1),
        "state_bytes_per_tag": round(state, 1),
        "state_tags": args.state_tags,
        "numpy_sort_readings_per_s": round(ceiling),
        "core_fraction_of_sort_ceiling": round(core / ceiling, 3),
        "evaluate_one_stamp_per_reading_readings_per_s": round(evaluate_each),
        "orjson_parse_readings_per_s": round(parse_ceiling),
        "evaluate_fraction_of_parse_ceiling": round(evaluate / parse_ceiling, 3),
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
