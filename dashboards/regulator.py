"""监管总览 — the regulator's region: enterprises by colour, counts, overdue warnings, escalations.

`alert_v1` carries no region tags, so a hidden `enterprise` variable lists the enterprises of
the chosen province/city/county from `risk_v1` (which does) and alert panels filter by it.
"""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import Dashboard, DataTransformerConfig

from dashboards.colours import AWAITING_ACK_STATES, alert_state_mappings
from dashboards.common import assemble, new_dashboard, tag_values
from dashboards.influxql import RETENTION_WINDOW, InfluxQL, regex_match
from dashboards.panels import colour_stat, coloured_cells, count_stat, risk_cells, rows, unit_of

UID = "hw-regulator"
REGION = " AND ".join(regex_match(key, key) for key in ("province", "city", "county"))
ENTERPRISE = regex_match("enterprise", "enterprise")


def enterprise_colours(ref_id: str = "A") -> InfluxQL:
    """Last colour of every enterprise in the region."""
    return InfluxQL(
        f"""SELECT last("colour") AS "colour" FROM "risk_v1"
        WHERE "level" = 'enterprise' AND {REGION} AND {RETENTION_WINDOW}
        GROUP BY "enterprise" """,
        ref_id,
    ).alias("$tag_enterprise")


def overdue_warnings() -> InfluxQL:
    """Latest alerts still unacknowledged whose deadline lies before the range end (`${__to}`)."""
    states = "|".join(AWAITING_ACK_STATES)
    return InfluxQL(
        f"""SELECT "state" AS "state", "deadline_ms" AS "deadline_ms", "alert_id" AS "alert_id"
        FROM (
          SELECT last("state") AS "state", "deadline_ms" AS "deadline_ms",
            "alert_id" AS "alert_id" FROM "alert_v1"
          WHERE {ENTERPRISE} AND {RETENTION_WINDOW}
          GROUP BY "enterprise", "source", "colour", "tier")
        WHERE "state" =~ /^({states})$/ AND "deadline_ms" < ${{__to}}
        GROUP BY "enterprise", "source", "colour", "tier" """
    ).table()


def escalations() -> InfluxQL:
    """Every escalation step in the time range."""
    return InfluxQL(
        f"""SELECT "alert_id" AS "alert_id", "deadline_ms" AS "deadline_ms" FROM "alert_v1"
        WHERE "state" = 'escalated' AND {ENTERPRISE} AND $timeFilter
        GROUP BY "enterprise", "source", "colour", "tier" """
    ).table()


def escalation_count() -> InfluxQL:
    """Number of escalation steps in the time range."""
    return InfluxQL(
        f"""SELECT count("alert_id") AS "escalations" FROM "alert_v1"
        WHERE "state" = 'escalated' AND {ENTERPRISE} AND $timeFilter"""
    ).alias("升级 escalations")


_ALERT_COLUMNS = [
    ("enterprise", "企业 enterprise"),
    ("source", "危险源 source"),
    ("colour", "等级 colour"),
    ("tier", "层级 tier"),
]
_ESCALATION_OVERRIDES = [("colour", risk_cells()), ("deadline_ms", unit_of("dateTimeFromNow"))]
_ALERT_OVERRIDES = [*_ESCALATION_OVERRIDES, ("state", coloured_cells(alert_state_mappings()))]


def build() -> Dashboard:
    """The regulator overview of a province, city or county."""
    dashboard = new_dashboard(
        UID,
        "监管总览",
        "Regulator overview for a province, city or county: enterprises by colour, the count "
        "per colour, warnings past their acknowledgement deadline and escalations.",
        time_from="now-24h",
        refresh="1m",
    )
    region_var = 'SHOW TAG VALUES FROM "risk_v1" WITH KEY'
    variables = [
        tag_values("province", "省 province", f'{region_var} = "province"', all_value=".*"),
        tag_values(
            "city",
            "市 city",
            f'{region_var} = "city" WHERE {regex_match("province", "province")}',
            all_value=".*",
        ),
        tag_values(
            "county",
            "县 county",
            f'{region_var} = "county" WHERE {regex_match("province", "province")} AND '
            f"{regex_match('city', 'city')}",
            all_value=".*",
        ),
        tag_values(
            "enterprise",
            "企业 enterprise",
            f"""{region_var} = "enterprise" WHERE "level" = 'enterprise' AND {REGION}""",
            multi=True,
            include_all=True,
            hidden=True,
        ),
    ]
    count_by_colour = DataTransformerConfig(
        id_val="groupBy",
        options={
            "fields": {
                "colour": {"aggregations": [], "operation": "groupby"},
                "enterprise": {"aggregations": ["count"], "operation": "aggregate"},
            }
        },
    )
    panels = [
        colour_stat(
            "辖区企业风险等级",
            "Current colour of every enterprise in the region.",
            enterprise_colours(),
            h=6,
        ),
        rows(
            "各等级企业数",
            "Number of enterprises at each colour now.",
            enterprise_colours().table(),
            [("colour", "等级 colour"), ("enterprise (count)", "企业数 enterprises")],
            overrides=[("colour", risk_cells()), ("enterprise (count)", unit_of("short"))],
            transformations=[count_by_colour],
            w=8,
        ),
        count_stat(
            "升级次数",
            "Escalations in the time range: warnings not acknowledged in time and pushed to "
            "the next tier.",
            escalation_count(),
            unit="short",
            thresholds=[(None, "green"), (1, "orange"), (5, "red")],
            w=4,
            h=8,
        ),
        rows(
            "超期未确认预警",
            "Warnings still unacknowledged after their deadline (time since the deadline).",
            overdue_warnings(),
            [
                *_ALERT_COLUMNS,
                ("state", "状态 state"),
                ("deadline_ms", "确认期限 deadline"),
                ("alert_id", "预警编号 alert"),
            ],
            overrides=_ALERT_OVERRIDES,
            w=12,
        ),
        rows(
            "升级预警",
            "Each escalation in the time range with its deadline.",
            escalations(),
            [
                ("Time", "时间 time"),
                *_ALERT_COLUMNS,
                ("deadline_ms", "确认期限 deadline"),
                ("alert_id", "预警编号 alert"),
            ],
            overrides=[*_ESCALATION_OVERRIDES, ("Time", unit_of("dateTimeAsIso"))],
            keep_time=True,
        ),
    ]
    return assemble(dashboard, variables, panels)
