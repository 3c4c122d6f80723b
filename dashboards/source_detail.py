"""危险源详情 — one hazard source: all its tags with limits, its alarms and its colour over time."""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.common import assemble, new_dashboard, tag_values
from dashboards.influxql import RETENTION_WINDOW, InfluxQL, regex_match
from dashboards.limits import tag_overrides
from dashboards.panels import alarm_timeline, colour_stat, colour_timeline, trend
from hazardwatch.plant.resolve import ResolvedTag

UID = "hw-source-detail"
WHERE_SOURCE = f"{regex_match('enterprise', 'enterprise')} AND {regex_match('source', 'source')}"


def current_colour() -> InfluxQL:
    """Last colour of the hazard source."""
    return InfluxQL(
        f"""SELECT last("colour") AS "colour" FROM "risk_v1"
        WHERE "level" = 'source' AND {WHERE_SOURCE} AND {RETENTION_WINDOW}
        GROUP BY "source" """
    ).alias("$tag_source")


def colour_changes() -> InfluxQL:
    """Every colour change in the time range (a state holds until the next change)."""
    return InfluxQL(
        f"""SELECT "colour" AS "colour" FROM "risk_v1"
        WHERE "level" = 'source' AND {WHERE_SOURCE} AND $timeFilter"""
    ).alias("风险等级 colour")


def alarm_transitions() -> InfluxQL:
    """Every alarm state transition per tag and condition in the time range."""
    return InfluxQL(
        f"""SELECT "state" AS "state" FROM "alarm_v1" WHERE {WHERE_SOURCE} AND $timeFilter
        GROUP BY "tag", "condition" """
    ).alias("$tag_tag $tag_condition")


def tag_trends() -> InfluxQL:
    """Mean value per tag and interval, every tag of the source."""
    return InfluxQL(
        f"""SELECT mean("v") AS "v" FROM "reading_v1" WHERE {WHERE_SOURCE} AND $timeFilter
        GROUP BY time($__interval), "tag" fill(none)"""
    ).alias("$tag_tag")


def build(tags: Sequence[ResolvedTag]) -> Dashboard:
    """Detail of one hazard source; `tags` (from the plant) give units and limit lines."""
    dashboard = new_dashboard(
        UID,
        "危险源详情",
        "Hazard source detail: every tag with its alarm limits, the alarm timeline and the "
        "risk colour over time.",
    )
    variables = [
        tag_values(
            "enterprise",
            "企业 enterprise",
            'SHOW TAG VALUES FROM "risk_v1" WITH KEY = "enterprise"',
        ),
        tag_values(
            "source",
            "危险源 source",
            f"""SHOW TAG VALUES FROM "risk_v1" WITH KEY = "source"
            WHERE "level" = 'source' AND {regex_match("enterprise", "enterprise")}""",
        ),
    ]
    panels = [
        colour_stat("当前风险等级", "The hazard source's colour now.", current_colour(), w=6, h=6),
        colour_timeline(
            "风险等级变化",
            "The colour over time in its four colours; empty before the first change in range.",
            colour_changes(),
            w=18,
            h=6,
        ),
        alarm_timeline(
            "报警时间线",
            "ISA-18.2 alarm states per tag and condition (red unacknowledged, orange "
            "acknowledged, yellow returned but unacknowledged, green normal).",
            alarm_transitions(),
        ),
        trend(
            "全部监测点",
            "All tags of the hazard source, each on the axis of its engineering unit, with "
            "dashed lines at its alarm limits (orange L/H, red LL/HH).",
            tag_trends(),
            unit="none",
            overrides=tag_overrides(tags),
            h=12,
        ),
    ]
    return assemble(dashboard, variables, panels)
