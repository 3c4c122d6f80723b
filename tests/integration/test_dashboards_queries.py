"""Every panel and variable query of the exported dashboards runs on the real InfluxDB 1.8.

The database is filled through the pipeline's InfluxDB sink with one hour of the three example
plants (`scenario_lines`: engine events through the sink's line builders), the
Grafana template variables are resolved the way Grafana does (variable queries run in order,
values regex-escaped, All as `.*` or an alternation), and each query must return rows with the
columns and series the panel refers to.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from dashboards.export import COMMITTED_PLANTS, build_all, plant_tags, to_model
from hazardwatch.plant.loader import load_plant
from hazardwatch.settings import InfluxSettings
from hazardwatch.types import AlarmState, RiskColour, Severity
from stream.events import AlarmEvent, DataQualityEvent, Event, RiskEvent
from stream.sinks.influx import InfluxSink
from stream.sinks.lines import EventLines, ReadingLines
from stream.sinks.spool import Spool
from tests.services import Endpoints

pytestmark = pytest.mark.integration

MINUTE_MS = 60_000
ALL = object()  # choose "All" for a variable

# Colours per enterprise, so the regulator sees three different colours (each query non-empty).
ENTERPRISE_COLOUR = {"ZB-CHEM": RiskColour.RED, "ZZ-STEEL": RiskColour.ORANGE,
                     "QZ-PETRO": RiskColour.YELLOW}  # fmt: skip


def _tags(pairs: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(pairs.items()))


def scenario_lines(now_ms: int) -> list[str]:
    """One hour of a plant day for the three example plants, as InfluxDB lines.

    Readings, alarm, risk and data-quality points come from the pipeline's own line builders
    (`stream.sinks.lines`) fed with engine events: readings every minute for every tag; per
    enterprise a colour rise blue → its colour on its first hazard source, one alarm still
    unacknowledged and one back to normal, a stale tag. Gateway status, alerts (one overdue and
    unacknowledged, one escalated, one acknowledged) and pipeline metrics (cumulative rejection
    counters) have no writer yet and are written here by hand, exactly per docs/influx-schema.md.
    """
    start = now_ms - 60 * MINUTE_MS
    lines: list[str] = []
    for path in COMMITTED_PLANTS:
        plant = load_plant(path)
        enterprise = plant.enterprises[0]
        ent, colour = enterprise.id, ENTERPRISE_COLOUR[enterprise.id]
        tags = plant.resolved_tags()
        minutes = np.arange(60)
        index = np.repeat(np.arange(len(tags), dtype=np.int32), len(minutes))
        spans = np.array([(t.range_min, t.range_max) for t in tags]).repeat(len(minutes), axis=0)
        fraction = np.tile(0.4 + 0.005 * minutes, len(tags))
        lines += ReadingLines(tags).lines(
            index,
            np.tile(start + minutes * MINUTE_MS, len(tags)).astype(np.int64),
            spans[:, 0] + (spans[:, 1] - spans[:, 0]) * fraction,
            np.zeros(len(index), dtype=np.int8),
        )
        events: list[Event] = []
        for i, source in enumerate(plant.hazard_sources):
            events.append(RiskEvent(start, ent, source.id, "source", RiskColour.BLUE,
                                    RiskColour.BLUE, Severity.NONE, False))  # fmt: skip
            if i == 0:
                events.append(RiskEvent(start + 20 * MINUTE_MS, ent, source.id, "source", colour,
                                        RiskColour.BLUE, Severity.S2, False))  # fmt: skip
        events.append(RiskEvent(start + 20 * MINUTE_MS, ent, None, "enterprise", colour,
                                RiskColour.BLUE, Severity.S2, False))  # fmt: skip
        first, second = tags[0], tags[1]
        histories = [
            (first, [AlarmState.UNACKED]),
            (second, [AlarmState.UNACKED, AlarmState.ACKED, AlarmState.NORMAL]),
        ]
        for tag, states in histories:
            for step, state in enumerate(states):
                events.append(AlarmEvent(start + (15 + 5 * step) * MINUTE_MS, ent, tag.source,
                                         tag.unit, tag.id, "HH", state, Severity.S2))  # fmt: skip
        events.append(DataQualityEvent(start, ent, second.source, second.unit, second.id,
                                       "stale", "active"))  # fmt: skip
        lines += [EventLines({ent: enterprise.region}).line(e) for e in events]
        for gateway in plant.gateways:
            keys = {"enterprise": ent, "gateway": gateway.id}
            for minute in range(0, 60, 10):
                lines.append(
                    f"gateway_v1,{_tags(keys)} online=1i,online_rate={0.99 + minute / 6000} "
                    f"{start + minute * MINUTE_MS}"
                )
        source = plant.hazard_sources[0].id
        steps = [  # (tier, minute, state, deadline minutes from start)
            ("county", 20, "raised", 35),
            ("county", 40, "escalated", 50),
            ("city", 40, "raised", 80),
            ("enterprise", 20, "raised", 25),
            ("enterprise", 22, "acknowledged", 25),
        ]
        for tier, minute, state, deadline in steps:
            keys = {"enterprise": ent, "source": source, "colour": str(int(colour)), "tier": tier}
            lines.append(
                f'alert_v1,{_tags(keys)} state="{state}",'
                f"deadline_ms={start + deadline * MINUTE_MS}i,"
                f'alert_id="al-{ent}-{tier}" {start + minute * MINUTE_MS}'
            )
    for minute in range(0, 60, 1):
        ts = start + minute * MINUTE_MS
        lines.append(
            f"pipeline_v1,process=run readings_in={minute * 500}i,rejected={minute * 3}i,"
            f"evaluated={minute * 497}i,written={minute * 497}i,spooled=0i,"
            f"spool_fill={minute / 600} {ts}"
        )
        for reason, per_minute in (("unknown_tag", 2), ("not_finite", 1)):
            lines.append(
                f"pipeline_v1,process=run,reason={reason} rejected={minute * per_minute}i {ts}"
            )
    return lines


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


@pytest.fixture
def influx(endpoints: Endpoints, influx_database: str, tmp_path: Path) -> Iterator[Influx]:
    """The test database filled with the scenario through the pipeline's InfluxDB sink."""
    settings = InfluxSettings(url=endpoints.influx_url, database=influx_database)
    sink = InfluxSink(settings, Spool(tmp_path / "spool"))
    lines = scenario_lines(int(time.time() * 1000))
    sink.add(lines)
    sink.close()
    assert (sink.stats.written, sink.stats.rejected, sink.stats.spooled) == (len(lines), 0, 0)
    with httpx.Client(base_url=endpoints.influx_url, timeout=30) as client:
        yield Influx(client, influx_database)


_GRAFANA_REGEX_SPECIALS = re.compile(r"([\\^$.|?*+()\[\]{}/])")


def _escape(value: str) -> str:
    """Grafana's regex escaping of a variable value inside /.../ (no escaping of `-`)."""
    return _GRAFANA_REGEX_SPECIALS.sub(r"\\\1", value)


def substitute(query: str, values: dict[str, str], now_ms: int) -> str:
    """Render Grafana's variables into an InfluxQL query the way the datasource does."""
    builtins = {
        "timeFilter": f"time >= {now_ms - 6 * 60 * MINUTE_MS}ms and time <= {now_ms}ms",
        "__interval": "1m",
        "__from": str(now_ms - 6 * 60 * MINUTE_MS),
        "__to": str(now_ms),
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in builtins:
            return builtins[name]
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, query)


def resolve_variables(
    model: dict[str, Any], db: Influx, choices: dict[str, object], now_ms: int
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
    "hw-data-quality": [{}, {"enterprise": "ZB-CHEM"}],
}


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
    models = {m["uid"]: m for m in map(to_model, build_all(plant_tags(COMMITTED_PLANTS)))}
    model = models[uid]
    values = resolve_variables(model, influx, CHOICES[uid][choice], now_ms)
    checked = 0
    for panel in model["panels"]:
        for target in panel["targets"]:
            query = substitute(target["query"], values, now_ms)
            _check_target(panel, influx.query(query), query)
            checked += 1
    assert checked == sum(len(p["targets"]) for p in model["panels"]) > 0


def test_region_filters_enterprises_out(influx: Influx) -> None:
    """A county regulator sees only its county's enterprise and alerts."""
    now_ms = int(time.time() * 1000)
    model = to_model(build_all(plant_tags(COMMITTED_PLANTS))[2])
    values = resolve_variables(
        model, influx, {"province": "350000", "city": "350500", "county": "350521"}, now_ms
    )
    colours = next(p for p in model["panels"] if p["title"] == "辖区企业风险等级")
    series = influx.query(substitute(colours["targets"][0]["query"], values, now_ms))
    assert [(s["tags"]["enterprise"], s["values"][0][1]) for s in series] == [
        ("QZ-PETRO", int(RiskColour.YELLOW))
    ]
    overdue = next(p for p in model["panels"] if p["title"] == "超期未确认预警")
    series = influx.query(substitute(overdue["targets"][0]["query"], values, now_ms))
    assert {(s["tags"]["enterprise"], s["tags"]["tier"]) for s in series} == {
        ("QZ-PETRO", "county")
    }
