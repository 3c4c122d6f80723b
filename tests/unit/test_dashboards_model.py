"""Exported dashboards: committed JSON is current, colours match the engine, model is valid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dashboards.colours import ALERT_STATE_TEXT, AWAITING_ACK_STATES, GRAFANA_COLOUR
from dashboards.export import COMMITTED_PLANTS, FILE_NAMES, build_all, plant_tags, rendered
from dashboards.influxql import DATASOURCE_UID
from hazardwatch.types import RiskColour
from stream.sinks.ops_lines import ALERT_STATES

REPO = Path(__file__).resolve().parents[2]
JSON_DIR = REPO / "dashboards" / "json"
SCHEMA_VERSION = 39  # Grafana 11.x dashboard model (docker-compose runs grafana/grafana:11.3.0)
PROVISIONED_DATASOURCE = REPO / "deploy/grafana/provisioning/datasources/influxdb.yaml"


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return rendered(plant_tags(REPO / p for p in COMMITTED_PLANTS))


@pytest.fixture(scope="module")
def models(texts: dict[str, str]) -> list[dict[str, Any]]:
    return [json.loads(text) for text in texts.values()]


def test_committed_json_matches_the_builders(texts: dict[str, str]) -> None:
    stale = [
        name
        for name, text in texts.items()
        if not (JSON_DIR / name).exists() or (JSON_DIR / name).read_text("utf-8") != text
    ]
    assert not stale, (
        f"dashboards/json is stale for {stale}: run "
        "`hazardwatch dashboards export --out dashboards/json` and commit the result"
    )
    assert sorted(p.name for p in JSON_DIR.glob("*.json")) == sorted(texts)


def test_rendering_is_deterministic_with_sorted_keys(texts: dict[str, str]) -> None:
    again = rendered(plant_tags(REPO / p for p in COMMITTED_PLANTS))
    assert again == texts
    for text in texts.values():
        model = json.loads(text)
        assert text == json.dumps(model, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_four_dashboards_with_stable_uids_and_chinese_titles(models: list[dict[str, Any]]) -> None:
    assert [m["uid"] for m in models] == list(FILE_NAMES)
    for model in models:
        assert _chinese(model["title"]), model["title"]
        assert model["description"] and not _chinese(model["description"])


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return list(model["panels"])


def test_dashboard_model_is_valid(models: list[dict[str, Any]]) -> None:
    provisioned = PROVISIONED_DATASOURCE.read_text("utf-8")
    assert f"uid: {DATASOURCE_UID}" in provisioned
    for model in models:
        assert model["schemaVersion"] == SCHEMA_VERSION
        assert isinstance(model["annotations"]["list"], list)
        ids = [p["id"] for p in _panels(model)]
        assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
        occupied: set[tuple[int, int]] = set()
        for panel in _panels(model):
            pos = panel["gridPos"]
            assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["x"] + pos["w"] <= 24
            xs, ys = range(pos["x"], pos["x"] + pos["w"]), range(pos["y"], pos["y"] + pos["h"])
            cells = {(x, y) for x in xs for y in ys}
            assert not cells & occupied, f"{model['uid']}: {panel['title']} overlaps"
            occupied |= cells
            assert panel["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == DATASOURCE_UID
                assert target["rawQuery"] is True and target["query"].startswith("SELECT")
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(ref_ids) == len(set(ref_ids))
            assert _chinese(panel["title"]) and panel["description"]
            assert not _chinese(panel["description"]), panel["description"]
        names = [v["name"] for v in model["templating"]["list"]]
        assert len(names) == len(set(names))
        for variable in model["templating"]["list"]:
            assert variable["type"] == "query"
            assert variable["datasource"]["uid"] == DATASOURCE_UID
            assert variable["query"].startswith("SHOW TAG VALUES")


def test_variables_of_each_dashboard(models: list[dict[str, Any]]) -> None:
    def names(uid: str) -> list[str]:
        model = next(m for m in models if m["uid"] == uid)
        return [v["name"] for v in model["templating"]["list"] if v.get("hide", 0) != 2]

    assert names("hw-source-detail") == ["enterprise", "source"]
    assert names("hw-regulator") == ["province", "city", "county"]
    assert "enterprise" in names("hw-control-room")
    # every variable a query uses is defined (Grafana would leave `$x` in the query otherwise)
    for model in models:
        defined = {v["name"] for v in model["templating"]["list"]}
        for panel in _panels(model):
            for target in panel["targets"]:
                used = {
                    w.strip("${}")
                    for w in target["query"].replace("/", " ").split()
                    if w.startswith("$")
                }
                builtin = {"timeFilter", "__interval", "__to", "__from"}
                used = {u.split("$")[0] for u in used} - builtin
                assert used <= defined, f"{panel['title']}: undefined {used - defined}"


def test_every_panel_has_a_unit(models: list[dict[str, Any]]) -> None:
    for model in models:
        for panel in _panels(model):
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]


def _risk_mapping(panel: dict[str, Any]) -> dict[str, Any] | None:
    candidates = list(panel["fieldConfig"]["defaults"].get("mappings", []))
    for override in panel["fieldConfig"]["overrides"]:
        if override["matcher"]["options"] == "colour":
            candidates += next(p["value"] for p in override["properties"] if p["id"] == "mappings")
    for mapping in candidates:
        if "4" in mapping["options"] and "red" in mapping["options"]:
            return dict(mapping["options"])
    return None


def test_colour_mappings_match_risk_colour(models: list[dict[str, Any]]) -> None:
    expected = {"blue": 1, "yellow": 2, "orange": 3, "red": 4}
    assert {GRAFANA_COLOUR[c]: int(c) for c in RiskColour} == expected
    colour_panels = 0
    for model in models:
        for panel in _panels(model):
            uses_colour = any('AS "colour"' in t["query"] for t in panel["targets"])
            if not uses_colour or panel["type"] not in ("stat", "state-timeline", "table"):
                continue
            options = _risk_mapping(panel)
            assert options is not None, f"{panel['title']} shows colours without the mapping"
            for colour in RiskColour:
                by_number = options[str(int(colour))]
                assert by_number["color"] == GRAFANA_COLOUR[colour]
                assert colour.chinese in by_number["text"]
                assert options[colour.label]["color"] == GRAFANA_COLOUR[colour]
            colour_panels += 1
    # control room ×1 + enterprise, source detail stat + timeline, regulator stat + table
    assert colour_panels >= 6
    timelines = [p for m in models for p in _panels(m) if p["type"] == "state-timeline"]
    assert any(_risk_mapping(p) for p in timelines)


def test_alert_states_written_are_the_states_mapped(models: list[dict[str, Any]]) -> None:
    assert set(ALERT_STATE_TEXT) == set(ALERT_STATES)
    assert set(AWAITING_ACK_STATES) <= set(ALERT_STATES) - {"acknowledged", "cleared", "updated"}
    control_room = next(m for m in models if m["uid"] == "hw-control-room")
    awaiting = next(p for p in _panels(control_room) if p["title"] == "待确认预警")
    state = next(o for o in awaiting["fieldConfig"]["overrides"]
                 if o["matcher"]["options"] == "state")  # fmt: skip
    mapping = next(p["value"] for p in state["properties"] if p["id"] == "mappings")
    assert set(mapping[0]["options"]) == set(ALERT_STATES)


def test_limit_lines_come_from_the_plant(models: list[dict[str, Any]]) -> None:
    tags = {t.id: t for t in plant_tags(REPO / p for p in COMMITTED_PLANTS)}
    detail = next(m for m in models if m["uid"] == "hw-source-detail")
    trend = next(p for p in _panels(detail) if p["type"] == "timeseries")
    overrides = {
        o["matcher"]["options"]: o["properties"] for o in trend["fieldConfig"]["overrides"]
    }
    assert set(overrides) == set(tags)
    lance = {p["id"]: p["value"] for p in overrides["BOF1-LANCE-TO"]}  # limits H 45, HH 50 °C
    assert lance["unit"] == "celsius"
    assert [(s["value"], s["color"]) for s in lance["thresholds"]["steps"][1:]] == [
        (45.0, "orange"),
        (50.0, "red"),
    ]
    assert lance["custom.thresholdsStyle"]["mode"] == "dashed"


def test_build_is_pure_and_needs_no_plant_for_region_views() -> None:
    dashboards = build_all([])
    assert [str(d.uid) for d in dashboards] == list(FILE_NAMES)
