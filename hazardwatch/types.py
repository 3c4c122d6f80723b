"""Shared domain types: risk colours, severities, ISA-18.2 alarm states, tiers, readings.

The numeric values are persisted (InfluxDB fields, snapshots, Kafka payloads) and are therefore
part of the schema: never renumber them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class RiskColour(IntEnum):
    """Risk level 红/橙/黄/蓝; the number is the value written to InfluxDB (1 low … 4 major)."""

    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def label(self) -> str:
        """Lower-case English name used in events and dashboards."""
        return self.name.lower()

    @property
    def chinese(self) -> str:
        """The Chinese name used in SMS templates and dashboard titles."""
        return _CHINESE_COLOUR[self]

    @classmethod
    def parse(cls, name: str) -> RiskColour:
        """Parse `red`/`RED`/`红` into a colour; raises ValueError on anything else."""
        for colour in cls:
            if name.strip().lower() == colour.label or name.strip() == colour.chinese:
                return colour
        raise ValueError(f"unknown risk colour {name!r}")


_CHINESE_COLOUR = {
    RiskColour.BLUE: "蓝",
    RiskColour.YELLOW: "黄",
    RiskColour.ORANGE: "橙",
    RiskColour.RED: "红",
}


class Severity(IntEnum):
    """Unit severity of DOMAIN.md §5; 0 means no condition in alarm."""

    NONE = 0
    S1 = 1
    S2 = 2
    S3 = 3


class AlarmState(StrEnum):
    """ISA-18.2 / IEC 62682 alarm states."""

    NORMAL = "normal"
    UNACKED = "unacknowledged"
    ACKED = "acknowledged"
    RTN_UNACKED = "rtn_unacknowledged"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"
    OUT_OF_SERVICE = "out_of_service"


class Tier(IntEnum):
    """The four levels of the interconnected platform, enterprise upwards."""

    ENTERPRISE = 1
    COUNTY = 2
    CITY = 3
    PROVINCE = 4

    @property
    def label(self) -> str:
        """Lower-case English name used in policy files and events."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Reading:
    """One monitoring-point value: `ts_ms` epoch milliseconds UTC, `v` in the tag's unit."""

    ts_ms: int
    tag: str
    v: float
    q: int = 0  # 0 = good; non-zero = quality flag reported by the gateway
    gw: str | None = None
