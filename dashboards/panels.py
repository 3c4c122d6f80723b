"""Small typed panel functions: each returns an SDK panel builder with its query, unit and colours.

Titles are Chinese (what control rooms read), descriptions English. Every panel carries a unit,
even where Grafana shows no axis, so a reader never guesses what a number means.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataTransformerConfig,
    DynamicConfigValue,
    MatcherConfig,
    Threshold,
    ThresholdsMode,
    ValueMapping,
)

from dashboards.colours import alarm_state_mappings, risk_colour_mappings
from dashboards.influxql import InfluxQL, datasource

PanelBuilder = stat.Panel | statetimeline.Panel | timeseries.Panel | table.Panel

FieldOverride = tuple[str, list[DynamicConfigValue]]
"""`(field name, properties)`: settings for the field of that display name."""


def _neutral_thresholds(base: str = "green") -> dashboard_builders.ThresholdsConfig:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=None, color=base)])
    )


def _last_value() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def _apply_overrides(panel: PanelBuilder, overrides: Sequence[FieldOverride]) -> None:
    for name, properties in overrides:
        panel.with_override(MatcherConfig(id_val="byName", options=name), properties)


def mapped_stat(
    title: str,
    description: str,
    query: InfluxQL,
    mappings: list[ValueMapping],
    w: int = 24,
    h: int = 5,
) -> stat.Panel:
    """One tile per series showing its last value through `mappings` (text and background)."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .with_target(query)
        .unit("none")
        .mappings(mappings)
        .thresholds(_neutral_thresholds("text"))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .graph_mode(common.BigValueGraphMode.NONE)
        .reduce_options(_last_value())
        .no_value("无数据 no data")
        .span(w)
        .height(h)
    )


def colour_stat(
    title: str, description: str, query: InfluxQL, w: int = 24, h: int = 5
) -> stat.Panel:
    """One coloured tile per series (hazard source or enterprise) showing its risk colour."""
    return mapped_stat(title, description, query, risk_colour_mappings(), w, h)


def count_stat(
    title: str,
    description: str,
    query: InfluxQL,
    unit: str = "short",
    thresholds: Sequence[tuple[float | None, str]] = ((None, "green"),),
    w: int = 6,
    h: int = 5,
) -> stat.Panel:
    """A single number (count, rate) coloured by `thresholds` `(from value, colour)` steps."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .with_target(query)
        .unit(unit)
        .thresholds(
            dashboard_builders.ThresholdsConfig()
            .mode(ThresholdsMode.ABSOLUTE)
            .steps([Threshold(value=v, color=c) for v, c in thresholds])
        )
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(_last_value())
        .no_value("0")
        .span(w)
        .height(h)
    )


def _state_timeline(
    title: str, description: str, query: InfluxQL, mappings: list[ValueMapping], w: int, h: int
) -> statetimeline.Panel:
    """A state timeline whose colours come entirely from value `mappings`."""
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .with_target(query)
        .unit("none")
        .mappings(mappings)
        .thresholds(_neutral_thresholds("text"))
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .span(w)
        .height(h)
    )


def colour_timeline(
    title: str, description: str, query: InfluxQL, w: int = 24, h: int = 5
) -> statetimeline.Panel:
    """The risk colour over time in the four colours (blue, yellow, orange, red)."""
    return _state_timeline(title, description, query, risk_colour_mappings(), w, h)


def alarm_timeline(
    title: str, description: str, query: InfluxQL, w: int = 24, h: int = 8
) -> statetimeline.Panel:
    """ISA-18.2 alarm state per tag and condition over time."""
    return _state_timeline(title, description, query, alarm_state_mappings(), w, h)


def trend(
    title: str,
    description: str,
    query: InfluxQL,
    unit: str,
    overrides: Sequence[FieldOverride] = (),
    thresholds: Sequence[tuple[float | None, str]] = (),
    w: int = 24,
    h: int = 9,
) -> timeseries.Panel:
    """Time series; `unit` is the axis unit, `overrides` give per-series unit and limit lines.

    `thresholds` `(value, colour)` are drawn as lines for every series (e.g. a 99.5 % target).
    """
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .with_target(query)
        .unit(unit)
        .line_width(1)
        .fill_opacity(0)
        .span_nulls(True)
        .thresholds(
            dashboard_builders.ThresholdsConfig()
            .mode(ThresholdsMode.ABSOLUTE)
            .steps(
                [Threshold(value=None, color="transparent")]
                + [Threshold(value=v, color=c) for v, c in thresholds]
            )
        )
        .thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.DASHED
                if thresholds
                else common.GraphThresholdsStyleMode.OFF
            )
        )
        .span(w)
        .height(h)
    )
    _apply_overrides(panel, overrides)
    return panel


def rows(
    title: str,
    description: str,
    query: InfluxQL,
    columns: Sequence[tuple[str, str]],
    overrides: Sequence[FieldOverride] = (),
    transformations: Sequence[DataTransformerConfig] = (),
    keep_time: bool = False,
    w: int = 24,
    h: int = 8,
) -> table.Panel:
    """A table of the query's rows; `columns` `(column, Chinese header)` in display order.

    Series of a GROUP BY arrive as separate frames; `merge` joins them into one table, then
    `transformations` (filters, group-by) run and `organize` orders and renames the columns;
    the `Time` column is dropped unless `keep_time`.
    """
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .with_target(query)
        .unit("none")
        .thresholds(_neutral_thresholds("text"))
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
    )
    for transformation in transformations:
        panel.with_transformation(transformation)
    panel.with_transformation(
        DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": {} if keep_time else {"Time": True},
                "indexByName": {name: i for i, (name, _) in enumerate(columns)},
                "renameByName": dict(columns),
            },
        )
    )
    _apply_overrides(panel, overrides)
    return panel.span(w).height(h)


def coloured_cells(mappings: list[ValueMapping], unit: str = "none") -> list[DynamicConfigValue]:
    """Field properties: map values to text and paint the cell background in the mapped colour."""
    return [
        DynamicConfigValue(id_val="mappings", value=mappings),
        DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
        DynamicConfigValue(id_val="unit", value=unit),
    ]


def unit_of(unit: str) -> list[DynamicConfigValue]:
    """Field properties: just a unit."""
    return [DynamicConfigValue(id_val="unit", value=unit)]


def risk_cells() -> list[DynamicConfigValue]:
    """Field properties of a risk colour column."""
    return coloured_cells(risk_colour_mappings())


def alarm_state_cells() -> list[DynamicConfigValue]:
    """Field properties of an alarm state column."""
    return coloured_cells(alarm_state_mappings())
