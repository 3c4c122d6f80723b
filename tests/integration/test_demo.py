"""`hazardwatch demo` end to end on the local services: a scenario that should turn a hazard
source orange does so on the board, alerts reach the demo's webhook receiver, rows land in
InfluxDB, and the command exits 0 without a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.scenario import load_scenario
from tests.processes import influx_rows
from tests.services import Endpoints

pytestmark = pytest.mark.integration
SCENARIO = Path(__file__).resolve().parents[2] / "examples/scenarios/gas-area-co-release.yaml"


def test_demo_plays_a_scenario_into_influx_and_alerts(
    endpoints: Endpoints, influx_database: str
) -> None:
    scenario, _ = load_scenario(SCENARIO)
    orange = [e for e in scenario.expect if e.colour == "orange" and not e.absent]
    assert orange, "the scenario's expectations promise an orange source"
    source = orange[0].source
    env = {
        **os.environ,
        "HAZARDWATCH_MQTT__URL": f"mqtt://{endpoints.mqtt_host}:{endpoints.mqtt_port}",
        "HAZARDWATCH_INFLUX__URL": endpoints.influx_url,
        "HAZARDWATCH_INFLUX__DATABASE": influx_database,
    }
    # 40 min of plant time (the release starts at +30 min) at 400×: about 6 s of publishing.
    done = subprocess.run(
        [sys.executable, "-m", "hazardwatch.cli", "demo", "--scenario", str(SCENARIO),
         "--duration", "40m", "--speed", "400", "--every", "2"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:] + out[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = out.splitlines()
    (source_line,) = [ln for ln in lines if ln.strip().endswith(")") and f" {source} " in ln]
    assert source_line.split()[0] == "orange", source_line
    alerts = next(ln for ln in lines if ln.startswith("last alerts ("))
    assert int(alerts.split("(")[1].split()[0]) >= 1, alerts
    assert any("raise" in ln and "orange" in ln for ln in lines), out[-2000:]
    assert f"database {influx_database}" in out  # where Grafana would connect

    readings = influx_rows(endpoints.influx_url, influx_database,
                           'SELECT count("v") FROM "reading_v1"')  # fmt: skip
    assert readings and readings[0]["count"] > 1000
    risk = influx_rows(endpoints.influx_url, influx_database,
                       f"SELECT * FROM \"risk_v1\" WHERE \"source\" = '{source}'")  # fmt: skip
    assert any(r["colour_name"] == "orange" for r in risk), risk
