"""Value mappings from the engine's numbers to the colours and words operators read.

Risk colours come from `hazardwatch.types.RiskColour` (1 blue … 4 red), alarm states from
`hazardwatch.types.AlarmState`, so a renumbering there shows up here and in the tests.
"""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import ValueMap, ValueMapping, ValueMappingResult

from hazardwatch.types import AlarmState, RiskColour, Severity

GRAFANA_COLOUR: dict[RiskColour, str] = {
    RiskColour.BLUE: "blue",
    RiskColour.YELLOW: "yellow",
    RiskColour.ORANGE: "orange",
    RiskColour.RED: "red",
}
"""Grafana's named palette colour for each risk colour."""

ALARM_STATE_COLOUR: dict[AlarmState, str] = {
    AlarmState.NORMAL: "green",
    AlarmState.UNACKED: "red",
    AlarmState.ACKED: "orange",
    AlarmState.RTN_UNACKED: "yellow",
    AlarmState.SHELVED: "purple",
    AlarmState.SUPPRESSED: "text",
    AlarmState.OUT_OF_SERVICE: "text",
}

_ALARM_STATE_CHINESE: dict[AlarmState, str] = {
    AlarmState.NORMAL: "正常",
    AlarmState.UNACKED: "报警未确认",
    AlarmState.ACKED: "报警已确认",
    AlarmState.RTN_UNACKED: "已恢复未确认",
    AlarmState.SHELVED: "搁置",
    AlarmState.SUPPRESSED: "抑制",
    AlarmState.OUT_OF_SERVICE: "停用",
}


def risk_colour_text(colour: RiskColour) -> str:
    """Display text of a colour, e.g. `红 red`."""
    return f"{colour.chinese} {colour.label}"


def risk_colour_mappings() -> list[ValueMapping]:
    """Map colour numbers (`risk_v1.colour`) and names (`alert_v1` colour tag) to text + colour.

    Both spellings are mapped because a tag value is a string: a writer may store `4` or `red`.
    """
    options: dict[str, ValueMappingResult] = {}
    for index, colour in enumerate(RiskColour):
        result = ValueMappingResult(
            text=risk_colour_text(colour), color=GRAFANA_COLOUR[colour], index=index
        )
        options[str(int(colour))] = result
        options[colour.label] = ValueMappingResult(
            text=result.text, color=result.color, index=index + len(RiskColour)
        )
    return [ValueMap(options=options)]


def alarm_state_mappings() -> list[ValueMapping]:
    """Map ISA-18.2 state strings (`alarm_v1.state`) to Chinese text and a colour."""
    return [
        ValueMap(
            options={
                state.value: ValueMappingResult(
                    text=_ALARM_STATE_CHINESE[state], color=ALARM_STATE_COLOUR[state], index=i
                )
                for i, state in enumerate(AlarmState)
            }
        )
    ]


ALERT_STATE_TEXT: dict[str, tuple[str, str]] = {
    "raised": ("已发布", "red"),
    "reminded": ("已提醒", "orange"),
    "escalated": ("已升级", "dark-red"),
    "acknowledged": ("已确认", "yellow"),
    "fed_back": ("已反馈", "blue"),
    "cleared": ("已消警", "green"),
    "updated": ("已变更等级", "text"),
}
"""`alert_v1.state` values (docs/influx-schema.md) → Chinese text and colour; `updated` ends a
colour's series when the alert moves to another colour (stream/sinks/ops_lines.py)."""

AWAITING_ACK_STATES = ("raised", "reminded", "escalated")
"""Alert states in which nobody has acknowledged the warning yet."""


def alert_state_mappings() -> list[ValueMapping]:
    """Map alert life-cycle states to Chinese text and a colour."""
    return [
        ValueMap(
            options={
                state: ValueMappingResult(text=text, color=colour, index=i)
                for i, (state, (text, colour)) in enumerate(ALERT_STATE_TEXT.items())
            }
        )
    ]


_SEVERITY_COLOUR = {Severity.NONE: "green", Severity.S1: "yellow", Severity.S2: "orange",
                    Severity.S3: "red"}  # fmt: skip


def severity_mappings() -> list[ValueMapping]:
    """Map alarm severity numbers (`alarm_v1.severity`, 0–3) to `S1`–`S3` and a colour."""
    return [
        ValueMap(
            options={
                str(int(level)): ValueMappingResult(
                    text=level.name if level else "—", color=_SEVERITY_COLOUR[level], index=i
                )
                for i, level in enumerate(Severity)
            }
        )
    ]
