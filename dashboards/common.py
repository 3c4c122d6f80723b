"""Dashboard scaffolding shared by the four dashboards: header, template variables, panel ids."""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models.dashboard import (
    Dashboard,
    DashboardCursorSync,
    Panel,
    VariableHide,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from dashboards.influxql import datasource

TAGS = ["hazardwatch"]


def new_dashboard(
    uid: str, title: str, description: str, time_from: str = "now-6h", refresh: str = "30s"
) -> dashboard_builders.Dashboard:
    """A dashboard header: stable `uid` (push upserts by it), Chinese title, English description."""
    return (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone("browser")
        .time(time_from, "now")
        .refresh(refresh)
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .readonly()
        .annotations([])
    )


def tag_values(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = False,
    all_value: str | None = None,
    include_all: bool = False,
    hidden: bool = False,
) -> dashboard_builders.QueryVariable:
    """A variable listing InfluxDB tag values (`SHOW TAG VALUES ...`), refreshed on load.

    `all_value` `.*` makes "All" match every value, including ones that appear later; without
    it "All" expands to the listed values (used to narrow one variable by others).
    """
    variable = (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .datasource(datasource())
        .query(" ".join(query.split()))
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(include_all or all_value is not None)
    )
    if all_value is not None:
        variable.all_value(all_value)
    if include_all or all_value is not None:
        variable.current(VariableOption(selected=True, text="All", value="$__all"))
    if hidden:
        variable.hide(VariableHide.HIDE_VARIABLE)
    return variable


def assemble(
    dashboard: dashboard_builders.Dashboard,
    variables: Sequence[dashboard_builders.QueryVariable],
    panels: Sequence[Builder[Panel]],
) -> Dashboard:
    """Add variables and panels (ids 1, 2, … in order; laid out left to right, top to bottom)."""
    for variable in variables:
        dashboard.with_variable(variable)
    for panel_id, panel in enumerate(panels, start=1):
        panel.build().id_val = panel_id  # build() returns the builder's one model object
        dashboard.with_panel(panel)
    return dashboard.build()
