"""数据质量 — gateway online rate, stale and faulty tags, rejected messages, spool fill.

Data quality is its own channel, not a hazard colour (DOMAIN.md §6); the target online rate of
monitored indicators is ≥ 99.5 %.
"""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import Dashboard, ValueMap, ValueMappingResult

from dashboards.common import assemble, new_dashboard, tag_values
from dashboards.influxql import RETENTION_WINDOW, InfluxQL, regex_match
from dashboards.panels import count_stat, mapped_stat, rows, trend, unit_of

UID = "hw-data-quality"
ONLINE_TARGET = 0.995
ENTERPRISE = regex_match("enterprise", "enterprise")


def online_rate() -> InfluxQL:
    """Online rate (0–1 over the configured window) per gateway and interval."""
    return InfluxQL(
        f"""SELECT mean("online_rate") AS "online_rate" FROM "gateway_v1"
        WHERE {ENTERPRISE} AND $timeFilter GROUP BY time($__interval), "gateway" fill(none)"""
    ).alias("$tag_gateway")


def fleet_online_rate() -> InfluxQL:
    """Mean of every gateway's latest online rate."""
    return InfluxQL(
        f"""SELECT mean("online_rate") AS "online_rate" FROM (
          SELECT last("online_rate") AS "online_rate" FROM "gateway_v1"
          WHERE {ENTERPRISE} AND {RETENTION_WINDOW} GROUP BY "gateway")"""
    ).alias("在线率 online rate")


def gateway_online() -> InfluxQL:
    """Last online status per gateway."""
    return InfluxQL(
        f"""SELECT last("online") AS "online" FROM "gateway_v1"
        WHERE {ENTERPRISE} AND {RETENTION_WINDOW} GROUP BY "gateway" """
    ).alias("$tag_gateway")


def failed_tags() -> InfluxQL:
    """Tags whose last data-quality transition left a condition active (stale, fault …)."""
    return InfluxQL(
        f"""SELECT "active" AS "active" FROM (
          SELECT last("active") AS "active" FROM "data_quality_v1"
          WHERE {ENTERPRISE} AND {RETENTION_WINDOW}
          GROUP BY "enterprise", "source", "tag", "condition")
        WHERE "active" = 1 GROUP BY "enterprise", "source", "tag", "condition" """
    ).table()


def rejections_by_reason() -> InfluxQL:
    """Rejected messages per minute by reason, from the cumulative `rejected` counters."""
    return InfluxQL(
        """SELECT non_negative_derivative(max("rejected"), 1m) AS "rejected" FROM "pipeline_v1"
        WHERE "reason" =~ /^[a-z_]+$/ AND $timeFilter
        GROUP BY time($__interval), "process", "reason" fill(none)"""
    ).alias("$tag_reason ($tag_process)")


def spool_fill() -> InfluxQL:
    """Fill (0–1) of each process's on-disk spool."""
    return InfluxQL(
        """SELECT max("spool_fill") AS "spool_fill" FROM "pipeline_v1" WHERE $timeFilter
        GROUP BY time($__interval), "process" fill(none)"""
    ).alias("$tag_process")


def build() -> Dashboard:
    """The data-quality dashboard (one, several or all enterprises)."""
    dashboard = new_dashboard(
        UID,
        "数据质量",
        "Data quality: gateway online rate against the 99.5 % target, tags that are stale, "
        "faulty or frozen, messages rejected by reason, and how full the write spool is.",
        time_from="now-24h",
        refresh="1m",
    )
    variables = [
        tag_values(
            "enterprise",
            "企业 enterprise",
            'SHOW TAG VALUES FROM "gateway_v1" WITH KEY = "enterprise"',
            multi=True,
            all_value=".*",
        )
    ]
    online_text = ValueMap(
        options={
            "0": ValueMappingResult(text="离线 offline", color="red", index=0),
            "1": ValueMappingResult(text="在线 online", color="green", index=1),
        }
    )
    panels = [
        count_stat(
            "网关在线率",
            "Mean of the gateways' latest online rates; the target is at least 99.5 %.",
            fleet_online_rate(),
            unit="percentunit",
            thresholds=[(None, "red"), (ONLINE_TARGET, "green")],
            w=6,
            h=6,
        ),
        mapped_stat(
            "网关状态",
            "Online status of each gateway now.",
            gateway_online(),
            [online_text],
            w=18,
            h=6,
        ),
        trend(
            "网关在线率趋势",
            "Online rate of each gateway over its configured window; dashed line at the "
            "99.5 % target.",
            online_rate(),
            unit="percentunit",
            thresholds=[(ONLINE_TARGET, "red")],
            w=12,
        ),
        rows(
            "失效监测点",
            "Tags with an active data-quality condition (stale, fault, frozen, gateway "
            "offline) and since when.",
            failed_tags(),
            [
                ("Time", "时间 since"),
                ("enterprise", "企业 enterprise"),
                ("source", "危险源 source"),
                ("tag", "监测点 tag"),
                ("condition", "条件 condition"),
            ],
            overrides=[("Time", unit_of("dateTimeAsIso"))],
            keep_time=True,
            w=12,
            h=9,
        ),
        trend(
            "拒收消息(按原因)",
            "Messages and points rejected per minute, by machine-readable reason and process.",
            rejections_by_reason(),
            unit="cpm",
            w=12,
        ),
        trend(
            "缓存占用",
            "Fill of each process's on-disk write spool (used while InfluxDB is unreachable); "
            "dashed lines at 50 % and 80 %.",
            spool_fill(),
            unit="percentunit",
            thresholds=[(0.5, "orange"), (0.8, "red")],
            w=12,
        ),
    ]
    return assemble(dashboard, variables, panels)
