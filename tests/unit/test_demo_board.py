"""The demo board: colours, active alarms and alerts from events, rendered without a terminal."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from hazardwatch.demo_board import Board
from hazardwatch.plant.loader import load_plant
from hazardwatch.types import AlarmState, RiskColour, Severity
from stream.events import AlarmEvent, FloodEvent, RiskEvent

T0 = 1_763_800_000_000
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def tank_farm_board() -> Board:
    return Board(load_plant(EXAMPLES / "tank-farm.yaml"), "test board")


def risk(colour: RiskColour, previous: RiskColour, ts: int = T0) -> RiskEvent:
    return RiskEvent(ts, "QZ-PETRO", "QZ-TF1", "source", colour, previous, Severity.S2,
                     escalated=False)  # fmt: skip


def alarm(state: AlarmState, ts: int = T0) -> AlarmEvent:
    return AlarmEvent(ts, "QZ-PETRO", "QZ-TF1", "T101", "T101-LT", "HH", state, Severity.S2)


def test_colours_alarms_and_alerts_follow_the_events() -> None:
    board = tank_farm_board()
    board.on_events([alarm(AlarmState.UNACKED), risk(RiskColour.ORANGE, RiskColour.BLUE)])
    board.on_events([risk(RiskColour.RED, RiskColour.ORANGE, T0 + 600_000)])
    board.on_alert({"kind": "raise", "tier": "county", "colour": "red", "ts_ms": T0 + 600_000,
                    "source": "QZ-TF1", "source_name": "1# 罐区"})  # fmt: skip
    state = board.state()
    (source,) = [s for s in state.sources if s.id == "QZ-TF1"]
    assert (source.colour, source.peak) == (RiskColour.RED, RiskColour.RED)
    assert [(a.tag, a.condition) for a in state.alarms] == [("T101-LT", "HH")]
    assert state.alerts_total == 1 and state.alerts[0].tier == "county"

    # Back to normal: the alarm leaves the board, the colour drops, the peak stays.
    board.on_events([alarm(AlarmState.RTN_UNACKED, T0 + 900_000),
                     risk(RiskColour.BLUE, RiskColour.RED, T0 + 900_000)])  # fmt: skip
    state = board.state()
    (source,) = [s for s in state.sources if s.id == "QZ-TF1"]
    assert (source.colour, source.peak) == (RiskColour.BLUE, RiskColour.RED)
    assert state.alarms == []
    summary = board.summary({"readings": 42}, full=True)
    assert "peak red" in summary and "readings 42" in summary and "1# 罐区" in summary


def test_render_shows_every_source_in_its_colour() -> None:
    plant = load_plant(EXAMPLES / "steel-plant.yaml")
    board = Board(plant, "test board")
    board.on_events([RiskEvent(T0, "ZZ-STEEL", "ZZ-GAS-PS", "source", RiskColour.ORANGE,
                               RiskColour.BLUE, Severity.S3, escalated=False),
                     FloodEvent(T0, "ZZ-STEEL", "begin", 11)])  # fmt: skip
    console = Console(file=io.StringIO(), record=True, width=160, force_terminal=True,
                      color_system="256")  # fmt: skip
    console.print(board.render({"played": "50%"}))
    ansi = console.export_text(styles=True, clear=False)
    text = console.export_text()
    assert all(s.id in text for s in plant.hazard_sources)
    assert "ALARM FLOOD at ZZ-STEEL" in text and "played 50%" in text
    # Colour cells are painted: 256-colour backgrounds dark orange (208) and blue (4).
    assert "48;5;208m orange" in ansi and "44m blue" in ansi
