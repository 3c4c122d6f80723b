"""Write a simulation to readings.jsonl (DESIGN.md readings format), chunk by chunk."""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from simulators.engine import Simulation
from simulators.jsonl import ReadingsEncoder


def encoder_for(sim: Simulation) -> ReadingsEncoder:
    """A JSONL encoder for the simulation's tags, printing each at its instrument resolution."""
    decimals = [0] * len(sim.tags)
    for channels in sim.channels_by_tag().values():
        decimals[channels.index] = channels.instrument.decimals
    return ReadingsEncoder([t.id for t in sim.tags], [t.gateway for t in sim.tags], decimals)


def write_jsonl(
    sim: Simulation,
    stream: BinaryIO,
    progress: Callable[[float], None] | None = None,
) -> int:
    """Run the whole simulation into `stream`; returns the number of readings written.

    `progress` is called with the simulated seconds reached after every chunk.
    """
    encoder = encoder_for(sim)
    written = 0
    for chunk in sim.chunks():
        lines = encoder.encode_array(chunk.ts_ms, chunk.tag, chunk.value, chunk.quality)
        stream.write(lines.data)
        written += len(chunk)
        if progress is not None:
            progress(chunk.end_s)
    return written
