"""企业风险监控中心 — enterprise control room: what is red, why, and what nobody acknowledged."""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.colours import AWAITING_ACK_STATES, alert_state_mappings, severity_mappings
from dashboards.common import assemble, new_dashboard, tag_values
from dashboards.influxql import RETENTION_WINDOW, InfluxQL, regex_match
from dashboards.limits import tag_overrides
from dashboards.panels import (
    alarm_state_cells,
    colour_stat,
    coloured_cells,
    risk_cells,
    rows,
    trend,
    unit_of,
)
from hazardwatch.plant.resolve import ResolvedTag

UID = "hw-control-room"
ENTERPRISE = regex_match("enterprise", "enterprise")


def source_colours() -> InfluxQL:
    """Last colour of every hazard source of the enterprise."""
    return InfluxQL(
        f"""SELECT last("colour") AS "colour" FROM "risk_v1"
        WHERE "level" = 'source' AND {ENTERPRISE} AND {RETENTION_WINDOW} GROUP BY "source" """
    ).alias("$tag_source")


def enterprise_colour() -> InfluxQL:
    """Last colour of the enterprise as a whole (highest of its hazard sources)."""
    return InfluxQL(
        f"""SELECT last("colour") AS "colour" FROM "risk_v1"
        WHERE "level" = 'enterprise' AND {ENTERPRISE} AND {RETENTION_WINDOW}
        GROUP BY "enterprise" """
    ).alias("$tag_enterprise")


def active_alarms() -> InfluxQL:
    """Alarms whose last transition left them not normal (active, or returned but unacked)."""
    return InfluxQL(
        f"""SELECT "state" AS "state", "severity" AS "severity" FROM (
          SELECT last("state") AS "state", "severity" AS "severity" FROM "alarm_v1"
          WHERE {ENTERPRISE} AND {RETENTION_WINDOW}
          GROUP BY "source", "unit", "tag", "condition")
        WHERE "state" != 'normal' GROUP BY "source", "unit", "tag", "condition" """
    ).table()


def key_tag_trends() -> InfluxQL:
    """Mean value per tag and interval for the tags chosen in `$tag`."""
    return InfluxQL(
        f"""SELECT mean("v") AS "v" FROM "reading_v1"
        WHERE {ENTERPRISE} AND {regex_match("tag", "tag")} AND $timeFilter
        GROUP BY time($__interval), "tag" fill(none)"""
    ).alias("$tag_tag")


def awaiting_ack() -> InfluxQL:
    """Latest alert per source, colour and tier that is still waiting for acknowledgement."""
    states = "|".join(AWAITING_ACK_STATES)
    return InfluxQL(
        f"""SELECT "state" AS "state", "deadline_ms" AS "deadline_ms", "alert_id" AS "alert_id"
        FROM (
          SELECT last("state") AS "state", "deadline_ms" AS "deadline_ms",
            "alert_id" AS "alert_id" FROM "alert_v1"
          WHERE {ENTERPRISE} AND {RETENTION_WINDOW} GROUP BY "source", "colour", "tier")
        WHERE "state" =~ /^({states})$/ GROUP BY "source", "colour", "tier" """
    ).table()


def build(tags: Sequence[ResolvedTag]) -> Dashboard:
    """The control room of one enterprise; `tags` (from the plant) give units and limit lines."""
    dashboard = new_dashboard(
        UID,
        "企业风险监控中心",
        "Enterprise control room: the red/orange/yellow/blue colour of every hazard source, "
        "alarms not back to normal, key tag trends with their alarm limits, and warnings "
        "awaiting acknowledgement with the time left.",
    )
    variables = [
        tag_values(
            "enterprise",
            "企业 enterprise",
            'SHOW TAG VALUES FROM "risk_v1" WITH KEY = "enterprise"',
        ),
        tag_values(
            "tag",
            "监测点 tag",
            f'SHOW TAG VALUES FROM "reading_v1" WITH KEY = "tag" WHERE {ENTERPRISE}',
            multi=True,
            all_value=".*",
        ),
    ]
    panels = [
        colour_stat(
            "企业风险等级",
            "Enterprise colour: the highest colour of its hazard sources (DOMAIN.md §5).",
            enterprise_colour(),
            w=6,
        ),
        colour_stat(
            "危险源风险等级",
            "Current colour of every hazard source: blue low, yellow general, orange large, "
            "red major risk.",
            source_colours(),
            w=18,
        ),
        rows(
            "活动报警",
            "Alarms not back to normal: ISA-18.2 state (unacknowledged, acknowledged, returned "
            "but unacknowledged, shelved …), severity and the time of the last transition.",
            active_alarms(),
            [
                ("Time", "时间 since"),
                ("source", "危险源 source"),
                ("unit", "装置 unit"),
                ("tag", "监测点 tag"),
                ("condition", "条件 condition"),
                ("state", "状态 state"),
                ("severity", "严重度 severity"),
            ],
            overrides=[
                ("state", alarm_state_cells()),
                ("severity", coloured_cells(severity_mappings())),
                ("Time", unit_of("dateTimeAsIso")),
            ],
            keep_time=True,
        ),
        trend(
            "关键参数趋势",
            "Trends of the tags chosen in the tag variable, each on the axis of its "
            "engineering unit, with dashed lines at its alarm limits (orange L/H, red LL/HH).",
            key_tag_trends(),
            unit="none",
            overrides=tag_overrides(tags),
        ),
        rows(
            "待确认预警",
            "Warnings pushed to a tier and not yet acknowledged; the deadline column shows the "
            "time left (or how long ago it passed).",
            awaiting_ack(),
            [
                ("source", "危险源 source"),
                ("colour", "等级 colour"),
                ("tier", "层级 tier"),
                ("state", "状态 state"),
                ("deadline_ms", "确认期限 deadline"),
                ("alert_id", "预警编号 alert"),
            ],
            overrides=[
                ("colour", risk_cells()),
                ("state", coloured_cells(alert_state_mappings())),
                ("deadline_ms", unit_of("dateTimeFromNow")),
            ],
        ),
    ]
    return assemble(dashboard, variables, panels)
