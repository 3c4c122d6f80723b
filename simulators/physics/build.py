"""Choose a physics model for every unit of a plant (so any plant file can be simulated).

A unit's gas detectors (%LEL, toxic, CO, O₂) form one `GasDetectorModel`; its other tags get one
model picked from the hazard source's kind and the quantities present:

| unit has / source kind                        | model                 |
|-----------------------------------------------|-----------------------|
| load, speed or brake tags; `ladle_crane`       | `LadleCraneModel`     |
| a level tag in a `gas_holder`                  | `GasHolderModel`      |
| temperature/pressure/ΔT in a `blast_furnace`   | `BlastFurnaceModel`   |
| flow tags in a `converter`/EAF, or a flow_difference rule | `CoolingCircuitModel` |
| a level tag with a volume or flow tags         | `TankModel`           |
| anything in a `process_unit`                   | `ProcessLoopModel`    |
| otherwise                                      | `SteadyModel`         |
"""

from __future__ import annotations

from dataclasses import dataclass

from hazardwatch.plant.defaults import Quantity
from hazardwatch.plant.model import Plant, SourceKind, Unit
from hazardwatch.plant.resolve import ResolvedTag
from hazardwatch.plant.rules import FlowDifferenceRule
from simulators.physics.base import SteadyModel, UnitModel
from simulators.physics.gas import GAS_DETECTOR_QUANTITIES, GasDetectorModel
from simulators.physics.handling import GasHolderModel, LadleCraneModel
from simulators.physics.metallurgy import BlastFurnaceModel, CoolingCircuitModel
from simulators.physics.process import ProcessLoopModel
from simulators.physics.tank import TankModel

MAX_DT_S = 10.0
MAX_GAS_DT_S = 5.0  # keeps the CO cell's 12 s t90 resolved


@dataclass(frozen=True, slots=True)
class PlacedModel:
    """A model and where it sits: hazard source and unit ids."""

    source: str
    unit: str
    model: UnitModel


def _dt(tags: list[ResolvedTag], cap: float) -> float:
    return min(cap, min(t.expected_interval_s for t in tags))


def _pick(
    kind: SourceKind, unit: Unit, key: str, tags: list[ResolvedTag], dt: float, hour: float
) -> UnitModel:
    quantities = {t.quantity for t in tags}
    if kind is SourceKind.LADLE_CRANE or quantities & {
        Quantity.LOAD,
        Quantity.SPEED,
        Quantity.BRAKE,
    }:
        return LadleCraneModel(key, tags, dt, hour)
    if kind is SourceKind.GAS_HOLDER and Quantity.LEVEL in quantities:
        return GasHolderModel(key, tags, dt, hour, unit.volume_m3)
    bf_signals = {Quantity.TEMPERATURE, Quantity.PRESSURE, Quantity.DIFFERENTIAL_TEMPERATURE}
    if kind is SourceKind.BLAST_FURNACE and quantities & bf_signals:
        return BlastFurnaceModel(key, tags, dt, hour)
    has_flow_rule = any(isinstance(r, FlowDifferenceRule) for r in unit.rules)
    furnace = kind in (SourceKind.CONVERTER, SourceKind.ELECTRIC_ARC_FURNACE)
    if Quantity.FLOW in quantities and (furnace or has_flow_rule):
        return CoolingCircuitModel(key, tags, dt, hour)
    if Quantity.LEVEL in quantities and (unit.volume_m3 or Quantity.FLOW in quantities):
        return TankModel(key, tags, dt, hour, unit.volume_m3)
    if kind is SourceKind.PROCESS_UNIT:
        return ProcessLoopModel(key, tags, dt, hour)
    return SteadyModel(key, tags, dt, hour)


def build_models(plant: Plant, start_hour: float) -> list[PlacedModel]:
    """Every unit's models, non-gas before gas within each source (gas reads the spill)."""
    resolved = {t.id: t for t in plant.resolved_tags()}
    placed: list[PlacedModel] = []
    for source in plant.hazard_sources:
        gas_models: list[PlacedModel] = []
        for unit in source.units:
            key = f"{source.id}/{unit.id}"
            tags = [resolved[t.id] for t in unit.tags]
            gas = [t for t in tags if t.quantity in GAS_DETECTOR_QUANTITIES]
            rest = [t for t in tags if t.quantity not in GAS_DETECTOR_QUANTITIES]
            if rest:
                model = _pick(source.kind, unit, key, rest, _dt(rest, MAX_DT_S), start_hour)
                placed.append(PlacedModel(source.id, unit.id, model))
            if gas:
                gas_model = GasDetectorModel(key, gas, _dt(gas, MAX_GAS_DT_S), start_hour)
                gas_models.append(PlacedModel(source.id, unit.id, gas_model))
        placed += gas_models
    return placed
