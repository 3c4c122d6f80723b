"""bench/run_all's results: which keys are figures, their targets and ceilings, and the writers.

Pure functions over plain dicts, so they are tested on synthetic input
(tests/unit/test_bench_report.py) without running a benchmark.

`results` (bench/results.json) holds one object per benchmark under its name — `engine`,
`ingest`, `simulators`, `alerting`, `pipeline`, `peer`, `ceilings` — exactly as that benchmark
printed it, so `peer.hazardwatch_readings_per_s` is `results["peer"]["hazardwatch_readings_per_s"]`;
next to them `date`, `machine`, `mode`, `status` (per benchmark: ok, failed or missing) and
`figures`, the evaluated table.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCHMARKS = (
    "ceilings",
    "engine",
    "ingest",
    "simulators",
    "alerting",
    "alerting_dq",
    "plant_load",
    "pipeline",
    "peer",
)

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, "<": operator.lt, ">": operator.gt,
}  # fmt: skip
_SYMBOL = {">=": "≥", "<=": "≤", "<": "<", ">": ">"}
STALL_MS = 250  # a broker round trip above this during a latency phase is called a stall


@dataclass(frozen=True)
class Target:
    """`value op bound`, the bound a number or `factor` × another figure (`ref`)."""

    op: str
    bound: float | None = None
    ref: str | None = None
    factor: float = 1.0

    def threshold(self, results: Mapping[str, Any]) -> float | None:
        if self.ref is None:
            return self.bound
        other = lookup(results, self.ref)
        return None if not isinstance(other, int | float) else other * self.factor

    def describe(self) -> str:
        if self.ref is None:
            return f"{_SYMBOL[self.op]} {number(self.bound)}"
        factor = "" if self.factor == 1 else f"{number(self.factor)} × "
        return f"{_SYMBOL[self.op]} {factor}`{self.ref}`"


@dataclass(frozen=True)
class Figure:
    """One row of the table: a key of a benchmark's JSON, its unit, targets and ceiling."""

    key: str  # "<benchmark>.<key>"
    unit: str
    targets: tuple[Target, ...] = ()
    ceiling: str | None = None  # key of the ceiling measured in the same run


def _f(key: str, unit: str, *targets: Target, ceiling: str | None = None) -> Figure:
    return Figure(key, unit, targets, ceiling)


FIGURES: tuple[Figure, ...] = (
    _f("engine.core_readings_per_s", "readings/s", Target(">=", 5_000_000),
       ceiling="engine.numpy_sort_readings_per_s"),
    _f("engine.evaluate_readings_per_s", "readings/s", Target(">=", 300_000),
       ceiling="engine.orjson_parse_readings_per_s"),
    _f("engine.reference_readings_per_s", "readings/s"),
    _f("engine.core_vs_reference", "×", Target(">=", 20)),
    _f("engine.state_bytes_per_tag", "bytes", Target("<=", 512)),
    _f("ingest.single_point_readings_per_s", "readings/s",
       Target(">=", ref="ingest.bare_paho_messages_per_s", factor=0.8),
       ceiling="ingest.bare_paho_messages_per_s"),
    _f("ingest.batched_readings_per_s", "readings/s", Target(">=", 300_000),
       ceiling="ingest.batched_bare_paho_readings_per_s"),
    _f("ingest.bridge_readings_per_s", "readings/s",
       ceiling="ingest.kafka_producer_readings_per_s"),
    _f("simulators.file_readings_per_s", "readings/s", Target(">=", 1_000_000),
       ceiling="simulators.file_write_ceiling_readings_per_s"),
    _f("simulators.mqtt_readings_per_s", "readings/s",
       ceiling="simulators.mqtt_publish_ceiling_readings_per_s"),
    _f("alerting.notifications_per_s", "notifications/s",
       ceiling="alerting.receiver_ceiling_per_s"),
    _f("alerting.delivery_latency_p50_ms", "ms"),
    _f("alerting.delivery_latency_p99_ms", "ms"),
    _f("alerting_dq.dq_events_per_s_2000", "events/s",
       ceiling="alerting_dq.ceiling_events_per_s"),
    _f("alerting_dq.dq_events_per_s_20000", "events/s",
       ceiling="alerting_dq.ceiling_events_per_s"),
    _f("alerting_dq.per_event_growth", "×", Target("<=", 2)),
    _f("plant_load.load_s_100k", "s", Target("<=", 60), ceiling="plant_load.csafe_parse_s_100k"),
    _f("plant_load.load_peak_rss_bytes_100k", "bytes"),
    _f("pipeline.pipeline_readings_per_s", "readings/s", Target(">=", 100_000),
       Target(">=", ref="pipeline.influx_ceiling_points_per_s", factor=0.5),
       ceiling="pipeline.influx_ceiling_points_per_s"),
    _f("pipeline.alert_latency_p50_ms", "ms", ceiling="ceilings.mosquitto_round_trip_p50_ms"),
    _f("pipeline.alert_latency_p99_ms", "ms", Target("<=", 50),
       ceiling="ceilings.mosquitto_round_trip_p99_ms"),
    _f("pipeline.kafka_alert_latency_p99_ms", "ms", Target("<=", 500),
       ceiling="ceilings.mosquitto_round_trip_p99_ms"),
    _f("pipeline.worker_readings_per_s", "readings/s"),
    _f("pipeline.rss_bytes_100k_tags", "bytes"),
    _f("peer.hazardwatch_readings_per_s", "readings/s",
       Target(">=", ref="peer.nodered_readings_per_s", factor=2),
       ceiling="ceilings.influx_write_points_per_s"),
    _f("peer.nodered_readings_per_s", "readings/s", ceiling="ceilings.influx_write_points_per_s"),
    _f("peer.hazardwatch_single_point_readings_per_s", "readings/s",
       ceiling="ceilings.paho_subscriber_messages_per_s"),
    _f("peer.nodered_single_point_readings_per_s", "readings/s",
       ceiling="ceilings.paho_subscriber_messages_per_s"),
    _f("peer.hazardwatch_p99_ms", "ms", Target("<", ref="peer.nodered_p99_ms"),
       ceiling="ceilings.mosquitto_round_trip_p99_ms"),
    _f("peer.nodered_p99_ms", "ms", ceiling="ceilings.mosquitto_round_trip_p99_ms"),
    _f("peer.hazardwatch_cpu_ms_per_1k_readings", "CPU ms"),
    _f("peer.nodered_cpu_ms_per_1k_readings", "CPU ms"),
)  # fmt: skip

CEILINGS = (
    ("ceilings.paho_subscriber_messages_per_s", "messages/s",
     "bare paho subscriber, QoS 1, 1-point messages"),
    ("ceilings.paho_subscriber_readings_per_s_100pt", "readings/s",
     "bare paho subscriber, QoS 1, 100-point messages"),
    ("ceilings.influx_write_points_per_s", "points/s",
     "raw line protocol to InfluxDB 1.8, 5,000-line batches"),
    ("ceilings.mosquitto_round_trip_p50_ms", "ms", "Mosquitto QoS 1 round trip, p50"),
    ("ceilings.mosquitto_round_trip_p99_ms", "ms", "Mosquitto QoS 1 round trip, p99"),
    ("ceilings.mosquitto_round_trip_max_ms", "ms",
     "Mosquitto QoS 1 round trip, max over the window (includes persistence autosave stalls)"),
)  # fmt: skip

PEER_ROWS = (
    ("readings/s, 100-point batches", "readings_per_s", "readings/s"),
    ("readings/s, 1-point messages", "single_point_readings_per_s", "readings/s"),
    ("alarm → webhook p50", "p50_ms", "ms"),
    ("alarm → webhook p99", "p99_ms", "ms"),
    ("CPU per 1,000 readings (batches)", "cpu_ms_per_1k_readings", "CPU ms"),
    ("CPU per 1,000 readings (1-point)", "single_point_cpu_ms_per_1k_readings", "CPU ms"),
    ("CPU in the latency phase", "latency_phase_cpu_s", "CPU s"),
    ("broker round trip max in the latency phase (probe)", "broker_round_trip_max_ms", "ms"),
    ("peak RSS", "peak_rss_bytes", "bytes"),
    ("readings lost", "lost_readings", ""),
    ("1-point figure bounded by the publisher", "single_point_bounded_by_publisher", ""),
)


def lookup(results: Mapping[str, Any], path: str) -> Any:
    """`results["a"]["b"]` for "a.b"; None when any part is absent."""
    node: Any = results
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def number(value: Any) -> str:
    """Readable number: thousands separators, three significant decimals for small values."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or abs(value) >= 1000 or float(value).is_integer():
        return f"{round(value):,}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"


def with_unit(value: Any, unit: str) -> str:
    """`number(value)` followed by the unit, or "—" alone when there is no value."""
    return "—" if value is None else f"{number(value)} {unit}".strip()


def evaluate(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: value, target text, met (True/False, None = no target or no value),
    ceiling value and the benchmark's status when the value is absent."""
    rows = []
    status = results.get("status", {})
    for fig in FIGURES:
        value = lookup(results, fig.key)
        met: bool | None = None
        if fig.targets and isinstance(value, int | float):
            checks = [(t, t.threshold(results)) for t in fig.targets]
            if all(c is not None for _, c in checks):
                met = all(_OPS[t.op](value, c) for t, c in checks if c is not None)
        bench = fig.key.split(".", 1)[0]
        rows.append({
            "figure": fig.key, "unit": fig.unit, "value": value,
            "target": " and ".join(t.describe() for t in fig.targets) or None,
            "met": met, "ceiling_figure": fig.ceiling,
            "ceiling": lookup(results, fig.ceiling) if fig.ceiling else None,
            "status": status.get(bench, {}).get("status", "not run"),
        })  # fmt: skip
    return rows


def assemble(
    outputs: Mapping[str, Any], status: Mapping[str, Any], machine: Mapping[str, Any],
    date: str, mode: str,
) -> dict[str, Any]:  # fmt: skip
    """bench/results.json's content from each benchmark's JSON and how its run went."""
    results: dict[str, Any] = {"date": date, "mode": mode, "machine": dict(machine),
                               "status": dict(status)}  # fmt: skip
    results.update({name: outputs[name] for name in BENCHMARKS if name in outputs})
    results["figures"] = evaluate(results)
    return results


def _met(row: Mapping[str, Any]) -> str:
    if row["value"] is None:
        return str(row["status"])
    return {True: "yes", False: "**no**", None: "—"}[row["met"]]


def _value(row: Mapping[str, Any]) -> str:
    if row["value"] is None:
        return f"({row['status']})"
    return with_unit(row["value"], row["unit"])


def render_markdown(results: Mapping[str, Any]) -> str:
    """docs/benchmarks.md: machine, the figures table, the ceilings, the peer side by side."""
    m = results.get("machine", {})
    out = [
        "# Benchmarks",
        "",
        f"Generated by `bench/run_all` ({results.get('mode', 'full')} run) on "
        f"{results.get('date', '?')}. Every figure comes with the ceiling measured in the same "
        "run; the machine is shared, so treat figures as indicative and compare a figure with "
        "its ceiling rather than across runs.",
        "",
        *(
            [
                f"Partial rerun: the figures of {', '.join(f'`{n}`' for n in results['merged'])} "
                f"come from earlier runs ({', '.join(sorted(set(results['merged'].values())))}).",
                "",
            ]
            if results.get("merged")
            else []
        ),
        "## How to rerun",
        "",
        "```sh",
        "make bench                      # = bench/run_all: every benchmark, ~30 min on 2 cores",
        "bench/run_all --quick           # small sizes, a few minutes: checks the harness",
        "bench/run_all --only peer,ceilings",
        "python -m bench.peer.compare    # the Node-RED comparison alone (JSON on stdout)",
        "```",
        "",
        "Needs the local services (`scripts/services up`); the peer comparison also needs Node.js",
        "≥ 18.5 and npm: it installs Node-RED and node-red-contrib-influxdb (versions pinned in",
        "`bench/peer/package.json`) into `~/.cache/hazardwatch/nodered`. The full output is",
        "written to `bench/results.json` (git-ignored: generated, machine-specific data); this",
        "page is regenerated from it and committed with the figures of a documented run.",
        "",
        "Start on a broker with a small store (`broker store` below): Mosquitto rewrites every",
        "message it keeps for disconnected persistent sessions at each autosave, and a store",
        "grown by test runs shows up as stalls in the latency figures. On a development",
        "machine: `scripts/services down mosquitto`, remove `.services/mosquitto/data/`",
        "`mosquitto.db`, `scripts/services up mosquitto`.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    for key in ("cpu", "cores", "ram", "os", "python", "load_average", "services", "broker_store"):
        value = m.get(key)
        if isinstance(value, Mapping):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list | tuple):
            value = " / ".join(str(v) for v in value)
        out.append(f"| {key.replace('_', ' ')} | {value if value not in (None, '') else '?'} |")
    out += ["", "## Figures", "", "| figure | value | target | met? | ceiling (same run) |",
            "|---|---:|---|---|---:|"]  # fmt: skip
    for row in results.get("figures", []):
        ceiling = "—"
        if row["ceiling_figure"]:
            ceiling = f"{number(row['ceiling'])} (`{row['ceiling_figure']}`)"
        out.append(f"| `{row['figure']}` | {_value(row)} | {row['target'] or '—'} | "
                   f"{_met(row)} | {ceiling} |")  # fmt: skip
    out += ["", "## Ceilings measured in this run", "", "| ceiling | value | what |",
            "|---|---:|---|"]  # fmt: skip
    for key, unit, what in CEILINGS:
        out.append(f"| `{key}` | {with_unit(lookup(results, key), unit)} | {what} |")
    out += _peer_section(results)
    out += ["", "## Benchmark runs", "", "| benchmark | status | seconds | command |",
            "|---|---|---:|---|"]  # fmt: skip
    for name in BENCHMARKS:
        s = results.get("status", {}).get(name, {"status": "not run"})
        out.append(f"| {name} | {s.get('status')} | {number(s.get('seconds'))} | "
                   f"`{s.get('command', '')}` |")  # fmt: skip
    return "\n".join(out) + "\n"


def _peer_section(results: Mapping[str, Any]) -> list[str]:
    peer = results.get("peer")
    out = ["", "## hazardwatch and Node-RED side by side", ""]
    if not isinstance(peer, Mapping):
        state = results.get("status", {}).get("peer", {}).get("status", "not run")
        return [*out, f"No comparison in this run (peer: {state})."]
    versions = peer.get("versions", {})
    out += [
        "The same plant, limits and gateway messages through `hazardwatch run` (the embedded",
        f"runner) and through a Node-RED {versions.get('node-red', '?')} flow (Node.js "
        f"{versions.get('node', '?')}, node-red-contrib-influxdb "
        f"{versions.get('node-red-contrib-influxdb', '?')}): MQTT in (QoS 1) → JSON → a "
        "function with the plant's limits → InfluxDB batch writes, and a signed HTTP request to "
        "the same webhook receiver on every new alarm. The flow is generated from the plant "
        "file by `bench/peer/flow.py` (function bodies in `bench/peer/*.js`).",
        "",
        "| | hazardwatch | Node-RED |",
        "|---|---:|---:|",
    ]
    for label, key, unit in PEER_ROWS:
        hw, nr = peer.get(f"hazardwatch_{key}"), peer.get(f"nodered_{key}")
        out.append(f"| {label} | {with_unit(hw, unit)} | {with_unit(nr, unit)} |")
    met = peer.get("met", {})
    probes = [peer.get(f"{k}_broker_round_trip_max_ms") for k in ("hazardwatch", "nodered")]
    stalls = [v for v in probes if isinstance(v, int | float)]
    if stalls and max(stalls) > STALL_MS:
        out += ["", f"**Mosquitto itself stalled for up to {number(max(stalls))} ms** during the "
                "latency phases (a probe's QoS 1 round trip, measured alongside): alarm "
                "latencies above that order measure the broker, not the two systems."]  # fmt: skip
    out += [
        "",
        f"Throughput ratio {number(peer.get('throughput_ratio'))}× (target ≥ 2×: "
        f"{'met' if met.get('throughput_2x') else 'not met'}); p99 "
        f"{'lower' if met.get('lower_p99') else 'not lower'} than Node-RED's.",
        "",
        *_spread(peer),
        "Workload: " + json.dumps(peer.get("workload", {}), ensure_ascii=False),
        "",
        "What differs by design, and is not levelled out: hazardwatch acknowledges a QoS 1",
        "message to the broker only after its readings were written (or spooled) and the engine",
        "state committed, validates every message (identity, sequence, finite values, times) and",
        "runs the full risk engine and alert life-cycle (durable outbox); Node-RED's MQTT node",
        "acknowledges on receipt and the flow keeps its alarm state in memory. Both write every",
        "reading to InfluxDB in batches of up to 5,000 points (the Node-RED flow batches in a",
        "function node, flushing at most 200 ms after the first point) and sign each webhook.",
        "",
        "Levelled out: both store the same series per reading (the tags enterprise, source,",
        "unit, tag and quantity, the fields v and q), so InfluxDB does the same work for each;",
        "the throughput phases publish pre-encoded QoS 1 packets (`bench/bulk_publisher.py`), so",
        "that the gateway side takes little of the CPU both systems share with InfluxDB.",
    ]
    return out


def _spread(peer: Mapping[str, Any]) -> list[str]:
    """Headline figures of each round when the comparison ran several (medians above)."""
    lines = []
    for name, label in (("hazardwatch", "hazardwatch"), ("nodered", "Node-RED")):
        rounds = lookup(peer, f"detail.{name}.per_round") or []
        if len(rounds) > 1:
            rates = ", ".join(number(r.get("readings_per_s")) for r in rounds)
            p99s = ", ".join(number(r.get("p99_ms")) for r in rounds)
            lines.append(f"- {label}, per round: {rates} readings/s; p99 {p99s} ms")
    return ["Figures are medians of the rounds:", "", *lines, ""] if lines else []


def write(results: Mapping[str, Any], json_path: Path, markdown_path: Path | None) -> None:
    """bench/results.json and, when asked, docs/benchmarks.md."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")
    if markdown_path is not None:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(render_markdown(results), "utf-8")
