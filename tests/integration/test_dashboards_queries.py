"""Every panel and variable query of the exported dashboards runs on data the pipeline wrote.

One fill for the module: `hazardwatch run` (a child process, the real embedded runner) takes
the three example plants; windows of three shipped scenarios (converter lance leak, alarm
flood, tank-farm toxic release — each around its first colour rise) are simulated, then
replayed over the real Mosquitto in real time as the gateways would send them, with a few bad
messages a misbehaving gateway would send. The runner's engine, alerting and sinks write
InfluxDB (a database of its own); its short acknowledgement deadlines make warnings overdue and
escalate within seconds, and one warning is acknowledged through the alerts API.

Then the Grafana template variables are resolved the way Grafana does (variable queries in
order, values regex-escaped, All as `.*` or an alternation) and each panel query must return
rows with the columns and series the panel refers to.

Real time because the engine's timers run on the wall clock: a reading older than the clock is
late and dropped, and one more than 5 min ahead is refused, so a scenario cannot run faster than
the clock for long; 24 s windows around the interesting minute keep the module under a minute.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml

from alerting.auth import token_hash
from dashboards.export import COMMITTED_PLANTS, build_all, plant_tags, to_model
from hazardwatch.plant.loader import load_plant
from hazardwatch.types import Reading, RiskColour
from ingest.protocol import encode_batch, telemetry_topic
from simulators.engine import Simulation
from simulators.mqtt_replay import publish_batches
from simulators.recording import Rejected, read_recording
from simulators.replay import Pacer, batches, window
from simulators.scenario import load_scenario
from simulators.to_file import write_jsonl
from tests.services import Endpoints

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "examples" / "scenarios"
WINDOW_S = 24
LEAD_S = 8  # readings are stamped this far ahead of the wall clock: never late to the engine
WINDOWS = {  # scenario → offset (s) of a window holding its first colour rise
    "converter-lance-leak": 65 * 60 + 54,  # flow difference → ZZ-BOF1 orange at +66m09s
    "alarm-flood": 60 * 60 + 3,  # pump trip: R101 pressure, temperature roc → orange
    "tank-farm-toxic-release": 41 * 60 + 9,  # benzene TOX1 → QZ-TF1 yellow at +41m20s
}
COLOUR_AFTER_FILL = {"ZZ-STEEL": RiskColour.ORANGE, "ZB-CHEM": RiskColour.ORANGE,
                     "QZ-PETRO": RiskColour.YELLOW}  # fmt: skip
ACK_ENTERPRISE = "ZB-CHEM"  # its warning is acknowledged through the alerts API
FAST_ENTERPRISE = "ZZ-STEEL"  # 1–2 s gateways: its tags go stale first once the data stops
TOKEN = "dashboards-test-token"
BAD_REASONS = {"invalid_json", "unknown_gateway"}
ALL = object()  # choose "All" for a variable
MINUTE_MS = 60_000
RANGE_MS = 60 * MINUTE_MS  # the dashboard time range: last hour
INTERVAL = "10s"  # Grafana's $__interval for an hour on a typical panel width


@dataclass(frozen=True)
class Fill:
    """What the pipeline wrote, and where."""

    database: str
    influx_url: str
    acknowledged: str  # id of the alert acknowledged through the API
    acknowledged_at_ms: int


class Influx:
    """Minimal InfluxQL client for the test database."""

    def __init__(self, client: httpx.Client, database: str) -> None:
        self.client, self.database = client, database

    def query(self, q: str) -> list[dict[str, Any]]:
        response = self.client.post("/query", params={"db": self.database, "q": q, "epoch": "ms"})
        body = response.json()
        result = body["results"][0]
        assert "error" not in result, f"{result['error']}\nquery: {q}"
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def rows(self, q: str) -> list[dict[str, Any]]:
        """Rows with their series tags merged in."""
        return [
            {**s.get("tags", {}), **dict(zip(s["columns"], values, strict=True))}
            for s in self.query(q)
            for values in s["values"]
        ]


def wait_until(
    check: Callable[[], Any], timeout: float, what: str, why: Callable[[], str] = str
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}\n{why()}")


def runner_state(metrics_url: str, db: Influx, log: Path) -> str:
    """What to look at when the fill stalls: engine verdicts (late readings mean the runner fell
    more than LEAD_S behind), the alert rows so far and the runner's log."""
    metrics = httpx.get(metrics_url, timeout=5).text.splitlines()
    verdicts = [m for m in metrics if m.startswith(("hazardwatch_engine_readings_total",
                                                    "hazardwatch_rejected_total"))]  # fmt: skip
    alerts = db.rows('SELECT "state", "enterprise", "colour", "tier" FROM "alert_v1"')
    summary = sorted({(a["enterprise"], a["colour"], a["tier"], a["state"]) for a in alerts})
    return "\n".join([*verdicts, f"alert_v1: {summary}", log.read_text()[-2000:]])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def merged_plant(path: Path) -> None:
    """The three example plants as one plant file (one runner for a small region)."""
    docs = [yaml.safe_load((REPO / p).read_text("utf-8")) for p in COMMITTED_PLANTS]
    merged: dict[str, Any] = {"version": 1, "defaults": {}}
    for key in ("enterprises", "gateways", "hazard_sources"):
        merged[key] = [item for doc in docs for item in doc[key]]
    for doc in docs:  # each plant's defaults concern quantities only it has (co_ppm, level)
        merged["defaults"].update(doc.get("defaults", {}))
    path.write_text(yaml.safe_dump(merged, allow_unicode=True), "utf-8")


def policy(path: Path) -> None:
    """The example risk policy; routing with deadlines of seconds so warnings go overdue and
    escalate during the test, and colours told to fewer tiers so there is room to escalate."""
    risk = yaml.safe_load((REPO / "examples" / "policy.yaml").read_text("utf-8"))["risk"]
    quick = {"ack_s": 3, "feedback_s": 600, "escalate_after_s": 2}
    routing = {
        "tiers": {
            "yellow": ["enterprise", "county"],
            "orange": ["enterprise", "county", "city"],
            "red": ["enterprise", "county", "city"],
        },
        "deadlines": {"yellow": quick, "orange": quick, "red": quick},
    }
    path.write_text(yaml.safe_dump({"risk": risk, "routing": routing}), "utf-8")


def scenario_readings(work: Path, t0_ms: int) -> list[Reading]:
    """Each scenario's window, simulated with its start moved so the window begins at t0."""
    found: list[Reading] = []
    for name, offset_s in WINDOWS.items():
        scenario, plant_path = load_scenario(SCENARIOS / f"{name}.yaml")
        start = datetime.fromtimestamp(t0_ms / 1000 - offset_s, tz=UTC)
        scenario = scenario.model_validate(
            {
                **scenario.model_dump(by_alias=True),
                "start": start,
                "duration": offset_s + WINDOW_S + 60,
            }
        )
        recording = work / f"{name}.jsonl"
        with recording.open("wb") as stream:
            write_jsonl(Simulation(load_plant(plant_path), scenario), stream)
        rejected = Rejected()
        found += window(read_recording(recording, rejected), t0_ms, t0_ms + WINDOW_S * 1000)
        assert rejected.count == 0, rejected.examples
    return sorted(found, key=lambda r: (r.ts_ms, r.gw or "", r.tag))


def publish_bad_messages(endpoints: Endpoints, prefix: str, gateway: str) -> None:
    """What a misbehaving gateway sends: broken JSON, and a gateway nobody registered."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(endpoints.mqtt_host, endpoints.mqtt_port)
    client.loop_start()
    now = int(time.time() * 1000)
    stranger = encode_batch("GW-STRANGER", 1, now, [("X-1", now, 1.0, 0)])
    for topic, payload in (
        (telemetry_topic(prefix, ACK_ENTERPRISE, gateway), b'{"v": 1, "points": ['),
        (telemetry_topic(prefix, ACK_ENTERPRISE, "GW-STRANGER"), stranger),
    ):
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def start_runner(env: dict[str, str], tokens: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hazardwatch.cli", "run", "--tokens", str(tokens)],
            env=env, stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"runner exited {proc.returncode}\n{log.read_text()[-3000:]}")
        try:
            url = f"http://127.0.0.1:{env['HAZARDWATCH_HTTP__PORT']}/healthz"
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, 30, "runner health")
    return proc


def acknowledge_warning(api: str) -> str:
    """Acknowledge ACK_ENTERPRISE's colour warning as its control room; returns the alert id."""
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def warning() -> str | None:
        alerts = httpx.get(f"{api}/api/v1/alerts", headers=headers, timeout=5).json()["alerts"]
        return next((a["id"] for a in alerts if a["kind"] == "risk"), None)

    alert_id: str = wait_until(warning, 30, f"{ACK_ENTERPRISE} warning in the alerts API")
    response = httpx.post(f"{api}/api/v1/alerts/{alert_id}/ack", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    return alert_id


@pytest.fixture(scope="module")
def filled(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fill]:
    """Scenarios through MQTT, `hazardwatch run` and its sinks into a fresh InfluxDB database."""
    work = tmp_path_factory.mktemp("dashboards")
    tag = uuid.uuid4().hex[:8]
    database, prefix = f"hwdash_{tag}", f"test/dash_{tag}"
    merged_plant(work / "plant.yaml")
    policy(work / "policy.yaml")
    tokens = {"tokens": [{"user": "zb.control", "tier": "enterprise", "area": ACK_ENTERPRISE,
                          "sha256": token_hash(TOKEN)}]}  # fmt: skip
    (work / "tokens.yaml").write_text(yaml.safe_dump(tokens), "utf-8")
    api_port = free_port()
    env = {
        **os.environ,
        "HAZARDWATCH_PLANT": str(work / "plant.yaml"),
        "HAZARDWATCH_POLICY": str(work / "policy.yaml"),
        "HAZARDWATCH_DATA_DIR": str(work / "data"),
        "HAZARDWATCH_MQTT__URL": f"mqtt://{endpoints.mqtt_host}:{endpoints.mqtt_port}",
        "HAZARDWATCH_MQTT__TOPIC_PREFIX": prefix,
        "HAZARDWATCH_MQTT__CLIENT_ID": f"runner-dash-{tag}",
        "HAZARDWATCH_INFLUX__URL": endpoints.influx_url,
        "HAZARDWATCH_INFLUX__DATABASE": database,
        "HAZARDWATCH_HTTP__PORT": str(free_port()),
        "HAZARDWATCH_HTTP__API_PORT": str(api_port),
    }
    plant = load_plant(work / "plant.yaml")
    gateway_of = {t: (g.enterprise, g.id) for g in plant.gateways for t in g.tags}
    runner = start_runner(env, work / "tokens.yaml", work / "runner.log")
    client = httpx.Client(base_url=endpoints.influx_url, timeout=30)
    try:
        t0_ms = (int(time.time()) + LEAD_S + 3) * 1000  # the simulations take about 2 s
        readings = scenario_readings(work, t0_ms)
        chemical_gateway = next(g.id for g in plant.gateways if g.enterprise == ACK_ENTERPRISE)
        publish_bad_messages(endpoints, prefix, chemical_gateway)
        stream = batches(readings, prefix, lambda r: gateway_of[r.tag])
        sent, _ = publish_batches(
            f"mqtt://{endpoints.mqtt_host}:{endpoints.mqtt_port}", prefix, stream,
            Pacer(1.0, time.monotonic, time.sleep),
        )  # fmt: skip
        assert sent == len(readings)
        db = Influx(client, database)
        metrics_url = f"http://127.0.0.1:{env['HAZARDWATCH_HTTP__PORT']}/metrics"

        def why() -> str:
            return runner_state(metrics_url, db, work / "runner.log")

        wait_until(  # reminder, then one tier up per alerting tick (5 s) to the province
            lambda: {r["enterprise"] for r in db.rows(
                "SELECT \"alert_id\", \"enterprise\" FROM \"alert_v1\" "
                "WHERE \"state\" = 'escalated' "
                "AND \"tier\" = 'province'")} == set(COLOUR_AFTER_FILL),
            40, "escalations up to the province at every enterprise", why,
        )  # fmt: skip
        acknowledged_at_ms = int(time.time() * 1000)
        acknowledged = acknowledge_warning(f"http://127.0.0.1:{api_port}")
        wait_until(
            lambda: db.rows(f"SELECT \"state\" FROM \"alert_v1\" WHERE \"alert_id\" = "
                            f"'{acknowledged}' AND \"state\" = 'acknowledged'"),
            15, "acknowledged rows", why,
        )  # fmt: skip
        wait_until(  # 3 × the 1 s crane interval after the last reading
            lambda: db.rows(f"SELECT \"active\" FROM \"data_quality_v1\" WHERE \"enterprise\" = "
                            f"'{FAST_ENTERPRISE}' AND \"condition\" = 'stale'"),
            40, "stale tags", why,
        )  # fmt: skip
        wait_until(
            lambda: len(db.rows("SELECT \"rejected\" FROM \"pipeline_v1\" "
                                "WHERE \"reason\" = 'invalid_json'")) >= 2,
            25, "two pipeline snapshots", why,
        )  # fmt: skip
        yield Fill(database, endpoints.influx_url, acknowledged, acknowledged_at_ms)
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.wait(timeout=30)
        client.post("/query", params={"q": f'DROP DATABASE "{database}"'})
        client.close()


@pytest.fixture
def influx(filled: Fill) -> Iterator[Influx]:
    with httpx.Client(base_url=filled.influx_url, timeout=30) as client:
        yield Influx(client, filled.database)


_GRAFANA_REGEX_SPECIALS = re.compile(r"([\\^$.|?*+()\[\]{}/])")


def _escape(value: str) -> str:
    """Grafana's regex escaping of a variable value inside /.../ (no escaping of `-`)."""
    return _GRAFANA_REGEX_SPECIALS.sub(r"\\\1", value)


def substitute(query: str, values: dict[str, str], now_ms: int) -> str:
    """Render Grafana's variables into an InfluxQL query the way the datasource does."""
    builtins = {
        "timeFilter": f"time >= {now_ms - RANGE_MS}ms and time <= {now_ms}ms",
        "__interval": INTERVAL,
        "__from": str(now_ms - RANGE_MS),
        "__to": str(now_ms),
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in builtins:
            return builtins[name]
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, query)


def resolve_variables(
    model: dict[str, Any], db: Influx, choices: Mapping[str, object], now_ms: int
) -> dict[str, str]:
    """Run each variable's query in order and render the chosen value (or All)."""
    values: dict[str, str] = {}
    for variable in model["templating"]["list"]:
        series = db.query(substitute(variable["query"], values, now_ms))
        assert series and series[0]["columns"] == ["key", "value"], variable["name"]
        found = [row[1] for row in series[0]["values"]]
        choice = choices.get(variable["name"], ALL)
        if choice is ALL:
            assert variable["includeAll"], f"{variable['name']} has no All option"
            all_value = variable.get("allValue")
            values[variable["name"]] = (
                all_value if all_value else "(" + "|".join(_escape(v) for v in found) + ")"
            )
        else:
            assert choice in found, f"{variable['name']}: {choice} not in {found}"
            values[variable["name"]] = _escape(str(choice))
    return values


def outer_aliases(query: str) -> list[str]:
    """Column aliases of the outermost SELECT (`... AS "name"` before its FROM)."""
    depth, outer = 0, []
    for token in re.finditer(r"\(|\)|AS \"([^\"]+)\"|FROM", query):
        text = token.group(0)
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
        elif depth == 0 and text == "FROM":
            break
        elif depth == 0 and token.group(1):
            outer.append(token.group(1))
    return outer


def outer_group_tags(query: str) -> list[str]:
    """Tag keys of the outermost GROUP BY (outside every subquery's parentheses)."""
    depth, outer = 0, []
    for char in query:
        depth += {"(": 1, ")": -1}.get(char, 0)
        outer.append(char if depth == 0 and char != ")" else " ")
    match = re.search(r"GROUP BY (.*?)(?: fill\(|$)", "".join(outer))
    return re.findall(r'"([^"]+)"', match.group(1)) if match else []


CHOICES: dict[str, list[dict[str, object]]] = {
    "hw-control-room": [{"enterprise": "ZZ-STEEL"}, {"enterprise": "QZ-PETRO"}],
    "hw-source-detail": [{"enterprise": "ZZ-STEEL", "source": "ZZ-BOF1"}],
    "hw-regulator": [{}, {"province": "410000", "city": "410100", "county": "410102"}],
    "hw-data-quality": [{}, {"enterprise": FAST_ENTERPRISE}],
}


def models() -> dict[str, dict[str, Any]]:
    return {m["uid"]: m for m in map(to_model, build_all(plant_tags(COMMITTED_PLANTS)))}


def panel_series(
    db: Influx, uid: str, title: str, choice: Mapping[str, object]
) -> list[dict[str, Any]]:
    """The rows InfluxDB returns for a panel's first query under the given variable choice."""
    now_ms = int(time.time() * 1000)
    model = models()[uid]
    values = resolve_variables(model, db, choice, now_ms)
    panel = next(p for p in model["panels"] if p["title"] == title)
    return db.query(substitute(panel["targets"][0]["query"], values, now_ms))


def _panel_field_names(panel: dict[str, Any]) -> list[str]:
    return [o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]]


def _check_target(panel: dict[str, Any], series: list[dict[str, Any]], query: str) -> None:
    title = panel["title"]
    assert series, f"{title}: no rows for {query}"
    aliases = outer_aliases(query)
    groups = outer_group_tags(query)
    for s in series:
        assert s["values"], f"{title}: empty series {s}"
        assert s["columns"] == ["time", *aliases], f"{title}: columns {s['columns']}"
        assert sorted(s.get("tags", {})) == sorted(groups), f"{title}: tags {s.get('tags')}"
        if "colour" in aliases:  # every colour the engine writes has a mapping
            col = s["columns"].index("colour")
            assert {int(row[col]) for row in s["values"]} <= {int(c) for c in RiskColour}
    names = _panel_field_names(panel)
    if panel["type"] == "table":
        known = {"Time", *aliases, *groups}
        for t in panel.get("transformations", []):
            if t["id"] == "groupBy":
                for field, spec in t["options"]["fields"].items():
                    known |= {f"{field} ({calc})" for calc in spec["aggregations"]}
        assert set(names) <= known, f"{title}: overrides name unknown fields {set(names) - known}"
    if panel["type"] == "timeseries" and '"reading_v1"' in query:
        plotted = {s["tags"]["tag"] for s in series}
        with_unit = {o["matcher"]["options"] for o in panel["fieldConfig"]["overrides"]
                     if any(p["id"] == "unit" for p in o["properties"])}  # fmt: skip
        assert plotted <= with_unit, f"{title}: series without unit {plotted - with_unit}"


@pytest.mark.parametrize(
    ("uid", "choice"),
    [(uid, i) for uid, options in CHOICES.items() for i in range(len(options))],
)
def test_every_panel_query_returns_the_columns_it_shows(
    influx: Influx, uid: str, choice: int
) -> None:
    now_ms = int(time.time() * 1000)
    model = models()[uid]
    values = resolve_variables(model, influx, CHOICES[uid][choice], now_ms)
    checked = 0
    for panel in model["panels"]:
        for target in panel["targets"]:
            query = substitute(target["query"], values, now_ms)
            _check_target(panel, influx.query(query), query)
            checked += 1
    assert checked == sum(len(p["targets"]) for p in model["panels"]) > 0


def test_regulator_sees_the_colours_the_scenarios_reached(influx: Influx) -> None:
    series = panel_series(influx, "hw-regulator", "辖区企业风险等级", {})
    assert {s["tags"]["enterprise"]: s["values"][0][1] for s in series} == {
        enterprise: int(colour) for enterprise, colour in COLOUR_AFTER_FILL.items()
    }


def test_region_filters_enterprises_out(influx: Influx) -> None:
    """A county regulator sees only its county's enterprise and alerts."""
    county = {"province": "350000", "city": "350500", "county": "350521"}
    series = panel_series(influx, "hw-regulator", "辖区企业风险等级", county)
    assert [(s["tags"]["enterprise"], s["values"][0][1]) for s in series] == [
        ("QZ-PETRO", int(RiskColour.YELLOW))
    ]
    for title in ("超期未确认预警", "升级预警"):
        series = panel_series(influx, "hw-regulator", title, county)
        assert {s["tags"]["enterprise"] for s in series} == {"QZ-PETRO"}, title


def test_escalation_climbs_the_tiers_and_is_overdue(influx: Influx) -> None:
    """The yellow warning told the enterprise and county goes up to the province, one tier a
    step, and every tier's row is past its deadline."""
    county = {"province": "350000", "city": "350500", "county": "350521"}
    series = panel_series(influx, "hw-regulator", "升级预警", county)
    assert {s["tags"]["tier"] for s in series} == {"city", "province"}
    assert {s["tags"]["colour"] for s in series} == {"yellow"}
    overdue = panel_series(influx, "hw-regulator", "超期未确认预警", county)
    assert {s["tags"]["tier"] for s in overdue} == {"enterprise", "county", "city", "province"}
    now_ms = int(time.time() * 1000)
    for s in overdue:
        deadline = s["columns"].index("deadline_ms")
        assert all(row[deadline] < now_ms for row in s["values"])


def test_acknowledged_warning_leaves_the_awaiting_panel(influx: Influx, filled: Fill) -> None:
    steel = panel_series(influx, "hw-control-room", "待确认预警", {"enterprise": "ZZ-STEEL"})
    assert steel  # nobody acknowledged the steel works' warning
    awaiting = panel_series(influx, "hw-control-room", "待确认预警", {"enterprise": ACK_ENTERPRISE})
    ids = {row[s["columns"].index("alert_id")] for s in awaiting for row in s["values"]}
    assert filled.acknowledged not in ids
    told = influx.rows(f"SELECT \"state\", \"tier\" FROM \"alert_v1\" WHERE \"alert_id\" = "
                       f"'{filled.acknowledged}'")  # fmt: skip
    tiers = {r["tier"] for r in told}
    assert {r["tier"] for r in told if r["state"] == "acknowledged"} == tiers
    assert tiers == {"enterprise", "county", "city", "province"}  # orange, then escalated


def test_acknowledgement_reaches_the_engine_alarms(influx: Influx, filled: Fill) -> None:
    """The API's acknowledgement flows into the engine: its alarms leave `unacknowledged`.

    Only an acknowledgement moves an alarm to `acknowledged` (still active) or from
    `rtn_unacknowledged` to `normal`, so such transitions after the API call prove the round trip.
    """
    query = (f"SELECT \"state\", \"tag\" FROM \"alarm_v1\" WHERE \"enterprise\" = "
             f"'{ACK_ENTERPRISE}' AND time >= {filled.acknowledged_at_ms}ms "
             "AND (\"state\" = 'acknowledged' OR \"state\" = 'normal')")  # fmt: skip
    acked = wait_until(lambda: influx.rows(query), 15, "acknowledged alarm transitions")
    unacked_before = influx.rows(
        f'SELECT "state", "tag" FROM "alarm_v1" WHERE "enterprise" = '
        f"'{ACK_ENTERPRISE}' AND time < {filled.acknowledged_at_ms}ms "
        "AND (\"state\" = 'unacknowledged' OR \"state\" = 'rtn_unacknowledged')"
    )
    # the alarms acknowledged are the ones that were waiting for it
    assert {r["tag"] for r in acked} <= {r["tag"] for r in unacked_before}


def test_data_quality_shows_rejections_and_stale_tags(influx: Influx) -> None:
    rejected = panel_series(influx, "hw-data-quality", "拒收消息(按原因)", {})
    assert {s["tags"]["reason"] for s in rejected} == BAD_REASONS
    assert {s["tags"]["process"] for s in rejected} == {"run"}
    failed = panel_series(influx, "hw-data-quality", "失效监测点", {"enterprise": FAST_ENTERPRISE})
    assert {s["tags"]["enterprise"] for s in failed} == {FAST_ENTERPRISE}
    assert "stale" in {s["tags"]["condition"] for s in failed}
    rates = panel_series(influx, "hw-data-quality", "网关在线率趋势", {})
    plant_gateways = {g.id for p in COMMITTED_PLANTS for g in load_plant(REPO / p).gateways}
    assert {s["tags"]["gateway"] for s in rates} == plant_gateways


def test_control_room_shows_every_hazard_source_even_never_changed(influx: Influx) -> None:
    """The start-up roll call puts sources that never changed colour on the board, blue."""
    for path in COMMITTED_PLANTS:
        plant = load_plant(REPO / path)
        for enterprise in plant.enterprises:
            series = panel_series(influx, "hw-control-room", "危险源风险等级",
                                  {"enterprise": enterprise.id})  # fmt: skip
            shown = {s["tags"]["source"]: s["values"][0][1] for s in series}
            sources = {s.id for s in plant.hazard_sources if s.enterprise == enterprise.id}
            assert set(shown) == sources, enterprise.id
            assert max(shown.values()) == int(COLOUR_AFTER_FILL[enterprise.id])
            if len(sources) > 1:  # the steel plant: sources its scenario never touches
                assert min(shown.values()) == int(RiskColour.BLUE), shown
