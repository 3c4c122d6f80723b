"""Small plants for the ingest tests, built with `Plant.model_validate` (two enterprises)."""

from __future__ import annotations

from typing import Any

from hazardwatch.plant.model import Plant
from ingest.directory import GatewayDirectory

NOW_MS = 1_714_550_400_000  # 2024-05-01T08:00:00Z: the tests' fixed clock
PREFIX = "hw/v1"


def _tag(tag_id: str) -> dict[str, Any]:
    return {"id": tag_id, "quantity": "level", "unit": "m", "range": [0, 20]}


def two_enterprise_plant() -> Plant:
    """E1 (gateways G1: T1, T2 and G2: T3, source S1/S2) and E2 (gateway H1: U1, source S9)."""
    return Plant.model_validate(
        {
            "enterprises": [
                {"id": "E1", "name": "one", "region": "410102", "industry": "tank_farm"},
                {"id": "E2", "name": "two", "region": "350521", "industry": "tank_farm"},
            ],
            "gateways": [
                {"id": "G1", "enterprise": "E1", "interval_s": 10, "tags": ["T1", "T2"]},
                {"id": "G2", "enterprise": "E1", "interval_s": 60, "tags": ["T3"]},
                {"id": "H1", "enterprise": "E2", "interval_s": 10, "tags": ["U1"]},
            ],
            "hazard_sources": [
                {
                    "id": "S1",
                    "enterprise": "E1",
                    "name": "farm 1",
                    "kind": "tank_farm",
                    "units": [{"id": "K1", "tags": [_tag("T1"), _tag("T2")]}],
                },
                {
                    "id": "S2",
                    "enterprise": "E1",
                    "name": "farm 2",
                    "kind": "tank_farm",
                    "units": [{"id": "K2", "tags": [_tag("T3")]}],
                },
                {
                    "id": "S9",
                    "enterprise": "E2",
                    "name": "other farm",
                    "kind": "tank_farm",
                    "units": [{"id": "K9", "tags": [_tag("U1")]}],
                },
            ],
        }
    )


def directory() -> GatewayDirectory:
    """Directory of `two_enterprise_plant()`; tag order T1, T2, T3, U1."""
    return GatewayDirectory.from_plant(two_enterprise_plant())
