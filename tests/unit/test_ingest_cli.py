"""`hazardwatch decode` output and exit code; Prometheus export of the rejection counters."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from hazardwatch.cli import main
from ingest.decoder import Decoder
from ingest.metrics import register
from ingest.protocol import encode_batch, telemetry_topic
from tests.unit.ingest_plants import NOW_MS, PREFIX, directory

TANK_FARM = Path(__file__).resolve().parents[2] / "examples" / "tank-farm.yaml"


def test_decode_command_prints_readings_and_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = tmp_path / "msg.json"
    payload.write_bytes(
        b'{"v":1,"gw":"GW-TF-A","seq":3,"sent":1714550400000,"points":['
        b'{"tag":"T101-LT","v":3.5,"ts":"2024-05-01T16:00:00+08:00"},'
        b'{"tag":"T101-TT","v":NaN,"ts":1714550400000}]}'
    )
    topic = "hw/v1/QZ-PETRO/GW-TF-A/telemetry"
    code = main(["decode", "--plant", str(TANK_FARM), "--topic", topic, "--now", str(NOW_MS),
                 str(payload)])  # fmt: skip
    verdict = orjson.loads(capsys.readouterr().out)
    assert code == 1
    assert [(r["tag"], r["v"], r["ts_ms"]) for r in verdict["readings"]] == [
        ("T101-LT", 3.5, NOW_MS)
    ]
    assert [(r["reason"], r["part"]) for r in verdict["rejections"]] == [
        ("not_finite", "points[1].v")
    ]


def test_decode_command_exit_zero_when_all_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = tmp_path / "ok.json"
    payload.write_bytes(encode_batch("GW-TF-A", 1, NOW_MS, [("T101-LT", NOW_MS, 1.0, 0)]))
    topic = "hw/v1/QZ-PETRO/GW-TF-A/telemetry"
    code = main(["decode", "--plant", str(TANK_FARM), "--topic", topic, "--now", str(NOW_MS),
                 str(payload)])  # fmt: skip
    assert code == 0
    assert orjson.loads(capsys.readouterr().out)["accepted"] == 1


def test_rejection_counters_are_exported_by_reason() -> None:
    decoder = Decoder(directory(), PREFIX)
    registry = CollectorRegistry()
    register(decoder.counters, lambda: {"deadletters_sent": 4}, registry)
    topic = telemetry_topic(PREFIX, "E1", "G1")
    decoder.decode(topic, encode_batch("G1", 1, NOW_MS, [("NOPE", NOW_MS, 1.0, 0)]), NOW_MS)
    decoder.decode(topic, b"not json", NOW_MS)
    value = registry.get_sample_value
    assert value("hazardwatch_ingest_rejections_total", {"reason": "unknown_tag"}) == 1
    assert value("hazardwatch_ingest_rejections_total", {"reason": "invalid_json"}) == 1
    assert value("hazardwatch_ingest_messages_total") == 2
    assert value("hazardwatch_ingest_deadletters_sent_total") == 4
