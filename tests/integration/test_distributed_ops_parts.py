"""The pieces behind the distributed runners' operations data, without services.

- a gateway event as the bridge publishes it is a `data_quality` event alerting accepts: the
  offline one raises a data-quality alert (county notice after `notify_after_s`), the online
  one closes it, a second copy of an event changes nothing (idempotent by id);
- the bridge's status board waits one silence period after start before judging gateways;
- the worker's enterprise merge answers a roll call with the enterprise's current colour.
"""

from __future__ import annotations

from pathlib import Path

from alerting.outbox import Outbox
from alerting.policy import load_routing
from alerting.service import AlertService, areas_from_plant, names_from_plant
from hazardwatch.plant.loader import load_plant
from hazardwatch.types import RiskColour, Severity
from ingest.bridge import GatewayWatch
from ingest.directory import GatewayDirectory
from ingest.status import DataQualityEvent
from stream.policy import EnginePolicy
from stream.runners.worker.enterprise import EnterpriseMerge
from stream.runners.worker.feed import SourceChange
from stream.sinks.ops_lines import AlertLines
from tests.integration.test_distributed_ops import policy_yaml
from tests.integration.test_worker import SOURCES, plant_yaml

T0 = 1_700_000_000_000


def test_gateway_events_raise_and_close_a_data_quality_alert(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text(plant_yaml(), "utf-8")
    (tmp_path / "policy.yaml").write_text(policy_yaml("http://127.0.0.1:9"), "utf-8")
    plant = load_plant(tmp_path / "plant.yaml")
    now = [T0]
    service = AlertService(load_routing(tmp_path / "policy.yaml"), Outbox(tmp_path / "o.db"),
                           areas_from_plant(plant), lambda: now[0],
                           names_from_plant(plant))  # fmt: skip
    lines = AlertLines([], lambda: now[0])
    service.on_saved = lines.observe

    offline = DataQualityEvent(T0, "E1", "GW1", "gateway_offline", T0).to_event()
    assert offline["type"] == "data_quality" and offline["state"] == "active"
    assert offline == DataQualityEvent(T0, "E1", "GW1", "gateway_offline", T0).to_event()
    assert service.handle(offline) == 0  # silent at onset
    assert service.rejected == {}
    [alert] = service.book.alerts.values()
    assert alert.kind == "data_quality" and alert.gateway == "GW1"

    now[0] += 1500  # past notify_after_s: the county is told
    assert service.tick() == 1
    [raised] = lines.drain()
    assert raised.startswith("alert_v1,colour=blue,enterprise=E1,source=-,tier=county ")
    assert 'state="raised"' in raised and 'kind="data_quality"' in raised
    assert service.handle(offline) == 0 and service.book.counters["duplicate"] == 1

    online = DataQualityEvent(now[0], "E1", "GW1", "gateway_online", T0)
    assert service.handle(online.to_event()) == 1  # the county hears the gateway is back
    assert alert.cleared_ms == now[0] and not service.book.active()
    assert service.rejected == {}


def test_status_board_waits_one_silence_period_before_judging(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text(plant_yaml(), "utf-8")
    watch = GatewayWatch(GatewayDirectory.from_plant(load_plant(tmp_path / "plant.yaml")))
    assert watch.due(T0) == [] and not watch.ticked  # not started: nothing judged
    watch.start(T0)
    assert watch.due(T0) == [] and watch.ticked  # GW1 not heard yet, but within 3 × 1 s
    assert watch.due(T0 + 2000) == []
    [event] = watch.due(T0 + 3000)  # never heard within its silence period: offline since start
    assert (event.gateway, event.condition, event.ts_ms) == ("GW1", "gateway_offline", T0)
    assert watch.due(T0 + 3500) == []  # one tick a second


def test_enterprise_merge_roll_call_is_its_current_colour() -> None:
    merge = EnterpriseMerge("E1", tuple(SOURCES), EnginePolicy())
    [call] = merge.roll_call(T0)
    assert (call.level, call.enterprise, call.source, call.ts_ms) == ("enterprise", "E1", None, T0)
    assert call.colour == call.previous == RiskColour.BLUE and call.severity == Severity.NONE
    merge.add(SourceChange("colour", "c1", T0 + 1, "E1", SOURCES[1], int(RiskColour.ORANGE), 2))
    merge.release(T0 + 1)
    [call] = merge.roll_call(T0 + 2)
    assert call.colour == call.previous == RiskColour.ORANGE and call.severity == Severity.S2
