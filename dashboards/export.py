"""Build the four dashboards and render them as deterministic JSON (sorted keys, 2-space indent).

The committed files in `dashboards/json/` are built from `COMMITTED_PLANTS` (the example plants,
the deployment's plant among them); a unit test fails when they differ from what the builders
produce. Rebuild them with `hazardwatch dashboards export --out dashboards/json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import control_room, data_quality, regulator, source_detail
from hazardwatch.plant.loader import load_plant
from hazardwatch.plant.resolve import ResolvedTag

COMMITTED_PLANTS = (
    "examples/chemical-process.yaml",
    "examples/steel-plant.yaml",
    "examples/tank-farm.yaml",
)
"""Plant files (relative to the repository) the committed JSON is built from."""

FILE_NAMES = {
    control_room.UID: "control-room.json",
    source_detail.UID: "source-detail.json",
    regulator.UID: "regulator.json",
    data_quality.UID: "data-quality.json",
}


def plant_tags(paths: Iterable[str | Path]) -> list[ResolvedTag]:
    """Resolved tags of every plant file, in file order (the first plant wins a repeated id)."""
    seen: dict[str, ResolvedTag] = {}
    for path in paths:
        for tag in load_plant(path).resolved_tags():
            seen.setdefault(tag.id, tag)
    return list(seen.values())


def build_all(tags: Sequence[ResolvedTag]) -> list[Dashboard]:
    """The four dashboards: control room, hazard source detail, regulator, data quality."""
    return [control_room.build(tags), source_detail.build(tags), regulator.build(),
            data_quality.build()]  # fmt: skip


def to_model(dashboard: Dashboard) -> dict[str, object]:
    """The plain JSON model (dicts, lists, strings, numbers) of a built dashboard."""
    model: dict[str, object] = json.loads(json.dumps(dashboard, cls=JSONEncoder))
    return model


def render(dashboard: Dashboard) -> str:
    """Deterministic JSON text: sorted keys, 2-space indent, UTF-8 (Chinese kept), newline."""
    return json.dumps(to_model(dashboard), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def rendered(tags: Sequence[ResolvedTag]) -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {FILE_NAMES[str(d.uid)]: render(d) for d in build_all(tags)}


def export(out_dir: Path, tags: Sequence[ResolvedTag]) -> list[Path]:
    """Write every dashboard to `out_dir` (created if missing); returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered(tags).items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
