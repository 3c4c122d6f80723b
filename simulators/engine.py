"""Run a plant and a scenario into readings, chunk by chunk, deterministically by seed.

`Simulation(plant, scenario).chunks()` yields `ReadingsChunk`s in time order: columnar numpy
arrays (epoch ms, tag index, value, quality) sorted by time then tag order. Every tag is sampled
on its expected interval by its gateway; the models run on a grid as fine as their fastest tag.

Determinism: every random stream is seeded from (scenario seed, a CRC of the tag/unit/gateway
id), so a run depends only on the plant, the scenario, the seed and `chunk_s`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from hazardwatch.plant.model import Plant
from hazardwatch.plant.resolve import ResolvedTag
from simulators.faults import SensorFault, apply_faults
from simulators.instrument import Instrument
from simulators.physics.base import ChunkContext, UnitModel, Vapour
from simulators.physics.build import PlacedModel, build_models
from simulators.physics.gas import GasDetectorModel
from simulators.physics.tank import TankModel
from simulators.scenario import DeliveryAction, Scenario
from simulators.signals import FloatArray
from simulators.timeparse import parse_duration

DEFAULT_CHUNK_S = 6 * 3600.0


def _rng(seed: int, name: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(name.encode()), stream])


@dataclass
class ReadingsChunk:
    """Readings of one time chunk, sorted by (ts_ms, tag index)."""

    ts_ms: npt.NDArray[np.int64]
    tag: npt.NDArray[np.int32]  # index into Simulation.tags
    value: FloatArray
    quality: npt.NDArray[np.int8]
    end_s: float = 0.0  # simulated seconds covered up to the end of this chunk

    def __len__(self) -> int:
        return int(self.ts_ms.shape[0])


@dataclass
class _Channel:
    tag: ResolvedTag
    index: int
    every: int  # sample every this many grid steps
    instrument: Instrument
    rng: np.random.Generator
    faults: list[SensorFault] = field(default_factory=list)
    last_value: float | None = None


@dataclass(frozen=True, slots=True)
class Outage:
    """A gateway offline over [start_s, end_s)."""

    gateway: str
    start_s: float
    end_s: float


class ScenarioError(ValueError):
    """A scenario refers to a unit, parameter, tag or gateway the plant does not have."""


class Simulation:
    """A plant under a scenario; iterate `chunks()` once."""

    def __init__(self, plant: Plant, scenario: Scenario, chunk_s: float = DEFAULT_CHUNK_S):
        self.plant = plant
        self.scenario = scenario
        self.seed = scenario.seed
        self.chunk_s = chunk_s
        self.duration_s = scenario.duration_s
        self.start_ms = scenario.start_ms
        start = scenario.start
        start_hour = start.hour + start.minute / 60.0 + start.second / 3600.0
        self.placed = build_models(plant, start_hour)
        self.tags: list[ResolvedTag] = list(plant.resolved_tags())
        self.tag_index = {t.id: i for i, t in enumerate(self.tags)}
        self.gateways = [g.id for g in plant.gateways]
        self.enterprise_of_gateway = {g.id: g.enterprise for g in plant.gateways}
        self.phase_ms = {g: int(_rng(self.seed, g, 3).integers(0, 1000)) for g in self.gateways}
        self.outages: list[Outage] = []
        self.delivery: list[tuple[float, float, DeliveryAction]] = []
        self._channels: dict[int, list[_Channel]] = {}
        self._model_rngs = {
            id(p.model): _rng(self.seed, p.model.unit_key + p.model.kind, 0) for p in self.placed
        }
        for placed in self.placed:
            self._channels[id(placed.model)] = [
                _Channel(
                    tag=t,
                    index=self.tag_index[t.id],
                    every=max(1, round(t.expected_interval_s / placed.model.dt_s)),
                    instrument=Instrument.for_tag(t, _rng(self.seed, t.id, 2)),
                    rng=_rng(self.seed, t.id, 1),
                )
                for t in placed.model.tags
            ]
        self._apply_scenario()

    def channels_by_tag(self) -> dict[str, _Channel]:
        """Sampling channel (instrument, faults, index) of every tag id."""
        return {ch.tag.id: ch for chs in self._channels.values() for ch in chs}

    # -- scenario wiring -------------------------------------------------------------------

    def _models_of(self, unit_ref: str) -> list[UnitModel]:
        found = [
            p.model for p in self.placed if unit_ref in (p.unit, f"{p.source}/{p.unit}", p.source)
        ]
        if not found:
            raise ScenarioError(f"no unit {unit_ref!r} in the plant (use UNIT or SOURCE/UNIT)")
        return found

    def _model_with(self, unit_ref: str, param: str) -> UnitModel:
        models = self._models_of(unit_ref)
        for model in models:
            if param in model.controls.schedules:
                return model
        known = sorted({p for m in models for p in m.controls.schedules})
        raise ScenarioError(f"unit {unit_ref!r} has no parameter {param!r} (known: {known})")

    def _gas_model_of(self, tag_id: str) -> UnitModel:
        for placed in self.placed:
            if isinstance(placed.model, GasDetectorModel) and any(
                t.id == tag_id for t in placed.model.tags
            ):
                return placed.model
        raise ScenarioError(f"release names {tag_id!r}, which is not a gas detector tag")

    def _channel(self, tag_id: str) -> _Channel:
        for channels in self._channels.values():
            for channel in channels:
                if channel.tag.id == tag_id:
                    return channel
        raise ScenarioError(f"no tag {tag_id!r} in the plant")

    def _apply_scenario(self) -> None:
        sc = self.scenario
        for unit_ref, params in sc.initial.items():
            for name, value in params.items():
                self._model_with(unit_ref, name).controls.set_initial(name, value)
        for event in sc.events:
            at = sc.offset_s(event.at)
            if event.set is not None:
                ramp = parse_duration(event.ramp)
                for unit_ref, params in event.set.items():
                    for name, value in params.items():
                        self._model_with(unit_ref, name).controls.change(name, at, value, ramp)
            elif event.pulse is not None:
                decay = parse_duration(event.decay)
                for unit_ref, params in event.pulse.items():
                    for name, size in params.items():
                        self._model_with(unit_ref, name).controls.pulse(name, at, size, decay)
            elif event.release is not None:
                rel = event.release
                rise, hold = parse_duration(rel.rise), parse_duration(rel.hold)
                fall = parse_duration(rel.fall)
                for tag_id, peak in rel.tags.items():
                    controls = self._gas_model_of(tag_id).controls
                    controls.change(tag_id, at, peak, rise)
                    controls.change(tag_id, at + rise + hold, 0.0, fall)
            elif event.fault is not None:
                f = event.fault
                end = math.inf if f.duration is None else at + parse_duration(f.duration)
                self._channel(f.tag).faults.append(
                    SensorFault(
                        tag=f.tag,
                        kind=f.kind,
                        start_s=at,
                        end_s=end,
                        size=f.size or 0.0,
                        rate_per_h=f.rate_per_h or 0.0,
                        side=f.side,
                    )
                )
            elif event.gateway is not None:
                if event.gateway.id not in self.gateways:
                    raise ScenarioError(f"no gateway {event.gateway.id!r} in the plant")
                end = at + parse_duration(event.gateway.duration)
                self.outages.append(Outage(event.gateway.id, at, end))
            elif event.delivery is not None:
                if event.delivery.gateway not in self.gateways:
                    raise ScenarioError(f"no gateway {event.delivery.gateway!r} in the plant")
                d = event.delivery
                end = math.inf if d.duration is None else at + parse_duration(d.duration)
                self.delivery.append((at, end, d))

    # -- running ---------------------------------------------------------------------------

    def chunks(self) -> Iterator[ReadingsChunk]:
        """Readings chunk by chunk from the start to the end of the scenario."""
        c0 = 0.0
        while c0 < self.duration_s:
            c1 = min(c0 + self.chunk_s, self.duration_s)
            yield self._chunk(c0, c1)
            c0 = c1

    def _offline(self, gateway: str, t_s: FloatArray) -> npt.NDArray[np.bool_]:
        mask = np.zeros(t_s.shape[0], dtype=bool)
        for outage in self.outages:
            if outage.gateway == gateway:
                mask |= (t_s >= outage.start_s) & (t_s < outage.end_s)
        return mask

    def _chunk(self, c0: float, c1: float) -> ReadingsChunk:
        parts_ts, parts_tag, parts_v, parts_q = [], [], [], []
        spills: dict[str, list[tuple[FloatArray, FloatArray]]] = {}
        for placed in self.placed:
            model = placed.model
            n0, n1 = math.ceil(c0 / model.dt_s - 1e-9), math.ceil(c1 / model.dt_s - 1e-9)
            steps = np.arange(n0, n1, dtype=np.int64)
            t_s = (steps * model.dt_s).astype(np.float64)
            ctx = ChunkContext(rng=self._model_rngs[id(model)], vapour=_vapour(spills, placed))
            true = model.advance(t_s, ctx)
            if isinstance(model, TankModel) and "overflow_m3h" in ctx.emissions:
                spills.setdefault(placed.source, []).append((t_s, ctx.emissions["overflow_m3h"]))
            for ch in self._channels[id(model)]:
                sample = steps % ch.every == 0
                ts = t_s[sample]
                measured = ch.instrument.measure(true[ch.tag.id][sample], ts, ch.rng)
                span = (ch.tag.range_min, ch.tag.range_max)
                values, keep, quality = apply_faults(
                    ch.faults, ts, measured, ch.last_value, span, ch.rng
                )
                if values.size:
                    ch.last_value = float(values[-1])
                keep &= ~self._offline(ch.tag.gateway, ts)
                ts_ms = self.start_ms + np.round(ts[keep] * 1000.0).astype(np.int64)
                parts_ts.append(ts_ms + self.phase_ms[ch.tag.gateway])
                parts_tag.append(np.full(ts_ms.shape[0], ch.index, dtype=np.int32))
                parts_v.append(values[keep])
                parts_q.append(quality[keep])
        ts_all = np.concatenate(parts_ts) if parts_ts else np.empty(0, np.int64)
        tag_all = np.concatenate(parts_tag) if parts_tag else np.empty(0, np.int32)
        order = np.lexsort((tag_all, ts_all))
        return ReadingsChunk(
            ts_ms=ts_all[order],
            tag=tag_all[order],
            value=np.concatenate(parts_v)[order] if parts_v else np.empty(0),
            quality=np.concatenate(parts_q)[order] if parts_q else np.empty(0, np.int8),
            end_s=c1,
        )


def _vapour(
    spills: dict[str, list[tuple[FloatArray, FloatArray]]], placed: PlacedModel
) -> Vapour | None:
    if not isinstance(placed.model, GasDetectorModel) or placed.source not in spills:
        return None
    sources = spills[placed.source]

    def total(t_s: FloatArray) -> FloatArray:
        out = np.zeros(t_s.shape[0])
        for grid, spill in sources:
            if grid.size:
                out += np.interp(t_s, grid, spill)
        return out

    return total
