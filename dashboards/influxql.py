"""InfluxQL targets for Grafana's InfluxDB datasource (the SDK ships no InfluxDB query builder).

Every query selects its values with an explicit `AS "column"` alias: panels refer to those
columns (value mappings, overrides, table transformations) and the integration test checks that
InfluxDB really returns them. Queries use only what docs/influx-schema.md guarantees.
"""

from __future__ import annotations

from typing import Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DATASOURCE_UID = "hazardwatch-influxdb"
"""The provisioned datasource (deploy/grafana/provisioning/datasources/influxdb.yaml)."""

RETENTION_WINDOW = "time > now() - 30d"
"""Bound for "current state" queries: points are written only on change, so the newest one may
predate the dashboard's time range; 30 days is the retention SAWS Order 40 requires."""

ResultFormat = Literal["time_series", "table"]


def datasource() -> DataSourceRef:
    """Reference to the hazardwatch InfluxDB datasource."""
    return DataSourceRef(type_val="influxdb", uid=DATASOURCE_UID)


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL query of a panel target; serialises to Grafana's InfluxDB target model."""

    def __init__(self, query: str, ref_id: str, fmt: ResultFormat, alias: str | None) -> None:
        self.query = query
        self.ref_id = ref_id
        self.fmt = fmt
        self.alias = alias

    def to_json(self) -> dict[str, object]:
        """The target object of the dashboard JSON model."""
        out: dict[str, object] = {
            "datasource": datasource().to_json(),
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": self.fmt,
        }
        if self.alias is not None:
            out["alias"] = self.alias
        return out


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builder of an InfluxQL target: `InfluxQL(query).table()` or `.alias("$tag_source")`."""

    def __init__(self, query: str, ref_id: str = "A") -> None:
        self._internal = InfluxQLQuery(" ".join(query.split()), ref_id, "time_series", None)

    def build(self) -> InfluxQLQuery:
        """The built target."""
        return self._internal

    def table(self) -> Self:
        """Return rows (tags as columns) instead of time series."""
        self._internal.fmt = "table"
        return self

    def alias(self, alias: str) -> Self:
        """Series display name, e.g. `$tag_source` (the value of the series' `source` tag)."""
        self._internal.alias = alias
        return self


def regex_match(tag: str, variable: str) -> str:
    """`"tag" =~ /^$variable$/`: Grafana renders multi-values and All as a regex alternation."""
    return f'"{tag}" =~ /^${variable}$/'
