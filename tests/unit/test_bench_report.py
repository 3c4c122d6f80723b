"""bench/run_all's result writer and markdown table on synthetic benchmark output (no benchmark
is run here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.peer.compare import merge_rounds
from bench.run_all import COMMANDS, parse_json
from bench.run_all_report import BENCHMARKS, FIGURES, assemble, render_markdown, write

MACHINE = {"cpu": "Test CPU @ 2.0GHz", "cores": 2, "ram": "4.0 GiB", "os": "Debian 12",
           "python": "3.11.7", "load_average": [0.5, 0.4, 0.3],
           "services": {"mosquitto": "2.0.11", "influxdb": "1.8.10"}}  # fmt: skip

OUTPUTS: dict[str, Any] = {
    "ceilings": {"paho_subscriber_messages_per_s": 9000, "influx_write_points_per_s": 250_000,
                 "mosquitto_round_trip_p50_ms": 0.25, "mosquitto_round_trip_p99_ms": 0.9},
    "engine": {"core_readings_per_s": 6_000_000, "numpy_sort_readings_per_s": 200_000_000,
               "evaluate_readings_per_s": 250_000, "state_bytes_per_tag": 600.5},
    "ingest": {"single_point_readings_per_s": 4500, "bare_paho_messages_per_s": 5000},
    "peer": {"hazardwatch_readings_per_s": 30_000, "nodered_readings_per_s": 20_000,
             "hazardwatch_p99_ms": 20.5, "nodered_p99_ms": 70.25,
             "hazardwatch_broker_round_trip_max_ms": 2900.0,
             "nodered_broker_round_trip_max_ms": 12.0,
             "versions": {"node-red": "4.1.8"},
             "detail": {"hazardwatch": {"per_round": [
                 {"readings_per_s": 90_000, "p99_ms": 20.5},
                 {"readings_per_s": 41_000, "p99_ms": 30.0}]}}},
}  # fmt: skip
STATUS = {name: {"status": "ok", "seconds": 1.5, "command": f"python -m bench.{name}"}
          for name in OUTPUTS} | {"pipeline": {"status": "missing"}}  # fmt: skip


def table_row(markdown: str, figure: str) -> list[str]:
    line = next(x for x in markdown.splitlines() if x.startswith(f"| `{figure}` |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_results_keep_each_benchmark_and_judge_targets_against_same_run_figures(
    tmp_path: Path,
) -> None:
    results = assemble(OUTPUTS, STATUS, MACHINE, "2026-01-01T00:00:00+00:00", "full")
    write(results, tmp_path / "results.json", tmp_path / "benchmarks.md")
    saved = json.loads((tmp_path / "results.json").read_text("utf-8"))

    assert saved["peer"]["hazardwatch_readings_per_s"] == 30_000
    assert saved["machine"]["cpu"] == "Test CPU @ 2.0GHz"
    assert saved["status"]["pipeline"]["status"] == "missing"
    rows = {row["figure"]: row for row in saved["figures"]}
    assert rows["engine.core_readings_per_s"]["met"] is True
    assert rows["engine.core_readings_per_s"]["ceiling"] == 200_000_000
    assert rows["engine.evaluate_readings_per_s"]["met"] is False  # 250 k < 300 k
    assert rows["engine.state_bytes_per_tag"]["met"] is False  # 600.5 > 512
    assert rows["ingest.single_point_readings_per_s"]["met"] is True  # 0.9 × its own paho
    assert rows["peer.hazardwatch_readings_per_s"]["met"] is False  # 1.5×, target 2×
    assert rows["peer.hazardwatch_p99_ms"]["met"] is True  # 20.5 < 70.25
    assert rows["peer.hazardwatch_p99_ms"]["ceiling"] == 0.9
    assert rows["pipeline.pipeline_readings_per_s"]["value"] is None
    assert rows["pipeline.pipeline_readings_per_s"]["met"] is None
    assert rows["simulators.file_readings_per_s"]["status"] == "not run"


def test_markdown_table_shows_value_target_verdict_and_ceiling(tmp_path: Path) -> None:
    results = assemble(OUTPUTS, STATUS, MACHINE, "2026-01-01T00:00:00+00:00", "full")
    write(results, tmp_path / "results.json", tmp_path / "benchmarks.md")
    markdown = (tmp_path / "benchmarks.md").read_text("utf-8")

    assert table_row(markdown, "engine.core_readings_per_s") == [
        "`engine.core_readings_per_s`", "6,000,000 readings/s", "≥ 5,000,000", "yes",
        "200,000,000 (`engine.numpy_sort_readings_per_s`)",
    ]  # fmt: skip
    assert table_row(markdown, "engine.state_bytes_per_tag")[1:4] == [
        "600.5 bytes",
        "≤ 512",
        "**no**",
    ]
    assert table_row(markdown, "peer.hazardwatch_readings_per_s")[2:4] == [
        "≥ 2 × `peer.nodered_readings_per_s`",
        "**no**",
    ]
    assert table_row(markdown, "pipeline.pipeline_readings_per_s")[1:4] == [
        "(missing)",
        "≥ 100,000 and ≥ 0.5 × `pipeline.influx_ceiling_points_per_s`",
        "missing",
    ]
    assert table_row(markdown, "ceilings.influx_write_points_per_s")[1] == "250,000 points/s"
    assert "| cpu | Test CPU @ 2.0GHz |" in markdown
    assert "| alarm → webhook p99 | 20.5 ms | 70.2 ms |" in markdown
    assert "Node-RED 4.1.8 flow" in markdown
    assert "**Mosquitto itself stalled for up to 2,900 ms**" in markdown
    assert "- hazardwatch, per round: 90,000, 41,000 readings/s; p99 20.5, 30 ms" in markdown
    assert "2026-01-01T00:00:00+00:00" in markdown


def test_quick_partial_run_without_peer_says_so() -> None:
    results = assemble({}, {"peer": {"status": "failed"}}, MACHINE, "2026-01-01", "quick")
    markdown = render_markdown(results)
    assert "No comparison in this run (peer: failed)." in markdown
    assert table_row(markdown, "peer.nodered_p99_ms")[1:4] == ["(failed)", "—", "failed"]


def test_benchmark_json_is_found_after_stray_output() -> None:
    assert parse_json('warming up\n{"core_readings_per_s": 1}\n') == {"core_readings_per_s": 1}


def test_peer_rounds_merge_to_medians_and_keep_any_bounded_flag() -> None:
    def round_(rate: int, p99: float | None, bounded: bool) -> dict[str, Any]:
        return {"batched": {"readings_per_s": rate}, "latency": {"p99_ms": p99, "ms": [p99]},
                "single_point": {"readings_per_s": 5, "bounded_by_publisher": bounded}}  # fmt: skip

    merged = merge_rounds([round_(10, None, False), round_(40, 9.0, True), round_(20, 7.0, False)])
    assert merged["batched"]["readings_per_s"] == 20
    assert merged["latency"]["p99_ms"] == 8.0  # the round without notifications is left out
    assert merged["latency"]["ms"] == [None, 9.0, 7.0]
    assert merged["single_point"]["bounded_by_publisher"] is True
    assert [r["readings_per_s"] for r in merged["per_round"]] == [10, 40, 20]


def test_every_benchmark_command_is_run_and_reported() -> None:
    assert set(COMMANDS) == set(BENCHMARKS)
    assert {f.key.split(".")[0] for f in FIGURES} <= set(BENCHMARKS)
