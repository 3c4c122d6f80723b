"""Per-tag axis units and alarm-limit lines derived from the plant file.

`reading_v1` carries values only; a tag's engineering unit and its limits (LL/L/H/HH, gas
level 1/2) live in the plant file, so the exported dashboards carry them as per-series
overrides: the series named after the tag id (`alias $tag_tag`) gets its unit and a dashed line
at every limit. A tag missing from the plant still plots, without unit or limit lines.
"""

from __future__ import annotations

from collections.abc import Iterable

from grafana_foundation_sdk.models.dashboard import DynamicConfigValue

from dashboards.panels import FieldOverride
from hazardwatch.plant.resolve import ResolvedTag

_GRAFANA_UNITS: dict[str, str] = {
    "°C": "celsius",
    "kPa": "pressurekpa",
    "Pa": "pressurepa",
    "bar": "pressurebar",
    "%": "percent",
    "ppm": "ppm",
    "m": "lengthm",
    "mm": "lengthmm",
    "t": "masst",
    "kg": "masskg",
}

LIMIT_COLOUR = {"L": "orange", "H": "orange", "LL": "red", "HH": "red"}
"""Level-1 limits draw orange lines, level-2 limits red ones (DOMAIN.md §3)."""


def grafana_unit(eng_unit: str) -> str:
    """Grafana unit id of an engineering unit; units Grafana lacks (m³/h, %LEL) become suffixes."""
    return _GRAFANA_UNITS.get(eng_unit, f"suffix:{eng_unit}")


def limit_steps(tag: ResolvedTag) -> list[dict[str, object]]:
    """Absolute threshold steps, one per limit value low to high, after a transparent base."""
    steps: list[dict[str, object]] = [{"color": "transparent", "value": None}]
    seen: set[float] = set()
    for limit in sorted(tag.limits, key=lambda spec: spec.value):
        if limit.value in seen:
            continue  # Grafana draws one line per value; keep the first (lower-key) colour
        seen.add(limit.value)
        steps.append({"color": LIMIT_COLOUR[limit.key], "value": limit.value})
    return steps


def tag_overrides(tags: Iterable[ResolvedTag]) -> list[FieldOverride]:
    """Overrides for the series of each tag: its unit, and dashed lines at its limits."""
    out: list[FieldOverride] = []
    for tag in sorted(tags, key=lambda t: t.id):
        properties = [DynamicConfigValue(id_val="unit", value=grafana_unit(tag.eng_unit))]
        if tag.limits:
            properties += [
                DynamicConfigValue(
                    id_val="thresholds", value={"mode": "absolute", "steps": limit_steps(tag)}
                ),
                DynamicConfigValue(id_val="custom.thresholdsStyle", value={"mode": "dashed"}),
            ]
        out.append((tag.id, properties))
    return out
