"""`hazardwatch evaluate` end to end on the tank-farm example plant."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from hazardwatch.cli import main

PLANT = Path(__file__).resolve().parents[2] / "examples" / "tank-farm.yaml"


def test_evaluate_reports_bad_lines_and_writes_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [b'{"ts": "2024-05-01T00:00:00+08:00", "tag": "T101-LS", "v": 1.0}']
    lines += [orjson.dumps({"ts": 1714492800000 + i * 10_000, "tag": "T101-LS", "v": 18.0})
              for i in range(1, 10)]  # fmt: skip
    lines += [b"not json", b'{"ts": "2024-05-01T00:10:00", "tag": "T101-LS", "v": 1}',
              b'{"ts": 1714492900000, "tag": "NOPE", "v": 1}']  # fmt: skip
    source = tmp_path / "readings.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "events.jsonl"
    code = main(["evaluate", "--plant", str(PLANT), "--input", str(source), "--output", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "line 11:" in err and "line 12:" in err and "line 13:" in err and "3 bad lines" in err
    events = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    hh = [e for e in events if e["type"] == "alarm" and e["condition"] == "HH"]
    assert hh and hh[0]["state"] == "unacknowledged" and hh[0]["ts"].endswith("+00:00")
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)


@pytest.mark.parametrize(
    "text",
    ["2024-05-01T00:00:07.120+00:00", "2024-05-01T08:00:07Z", "2024-05-01T08:00:59.5+08:00",
     "2024-05-01T08:00:59.123456+08:00", "2024-05-01T08:00:59.999-03:30"],
)  # fmt: skip
def test_timestamps_parse_rfc3339_offsets(text: str) -> None:
    from datetime import datetime

    from hazardwatch.commands.evaluate import _Timestamps

    assert _Timestamps()(text) == round(datetime.fromisoformat(text).timestamp() * 1000)
