"""Readings → what gateways put on the wire: per-gateway telemetry batches with sequence numbers,
status changes, and delivery faults for ingest tests. Pure: no network (see mqtt_publisher.py).

A gateway publishes, at each sample time, one batch with the points it sampled; its `seq` rises by
one per batch and survives outages (store-and-forward gateways persist it). `sent` is the sample
time plus a 50–400 ms processing delay. Delivery faults from the scenario (`delivery:` events):

- `duplicate` — the batch is published twice (same seq), as after a lost PUBACK;
- `out_of_order` — the batch is held back and published after the gateway's next one;
- `clock_skew` — the gateway's clock runs `skew` ahead (or behind): point `ts` and `sent` shift;
- `malformed` — the payload is replaced by a broken one: truncated JSON, not JSON, a missing
  `points`, a string value, an unknown protocol version, or a NaN value (encoded as null).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import orjson

from ingest.protocol import encode_batch, status_topic, telemetry_topic
from simulators.engine import ReadingsChunk, Simulation
from simulators.scenario import DeliveryAction
from simulators.timeparse import parse_duration

MALFORMED_KINDS = ("truncated", "not_json", "no_points", "string_value", "bad_version", "nan")


@dataclass(frozen=True, slots=True)
class Publication:
    """One thing a gateway does at simulated time `at_ms`: publish telemetry or change state."""

    at_ms: int
    gateway: str
    kind: str  # "telemetry", "offline" (drop the connection: the LWT fires), "online"
    topic: str = ""
    payload: bytes = b""
    seq: int = 0
    points: int = 0
    fault: str = ""  # delivery fault applied, for test bookkeeping


def malformed_payload(kind: str, gateway: str, seq: int, sent_ms: int, tag: str) -> bytes:
    """A broken telemetry payload of the given `kind` (one of MALFORMED_KINDS)."""
    good = encode_batch(gateway, seq, sent_ms, [(tag, sent_ms, 1.0, 0)])
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "not_json":
        return b"\xff\xfeGW-ERR " + gateway.encode()
    body = orjson.loads(good)
    if kind == "no_points":
        del body["points"]
    elif kind == "string_value":
        body["points"][0]["v"] = "12.3 m"
    elif kind == "bad_version":
        body["v"] = 99
    elif kind == "nan":
        return encode_batch(gateway, seq, sent_ms, [(tag, sent_ms, float("nan"), 0)])
    return orjson.dumps(body)


class GatewayFleet:
    """Turns a simulation's readings into the publications of its gateways, in time order."""

    def __init__(self, sim: Simulation, prefix: str):
        self.sim = sim
        self.prefix = prefix
        self.seq = dict.fromkeys(sim.gateways, 0)
        self._gw_of_tag = np.array([sim.gateways.index(t.gateway) for t in sim.tags])
        self._tag_ids = [t.id for t in sim.tags]
        self._rng = {
            g: np.random.default_rng([sim.seed & 0xFFFFFFFF, zlib.crc32(g.encode()), 5])
            for g in sim.gateways
        }
        self._held: dict[str, Publication] = {}
        self._state_changes = sorted(
            [(sim.start_ms + round(o.start_s * 1000), o.gateway, "offline") for o in sim.outages]
            + [(sim.start_ms + round(o.end_s * 1000), o.gateway, "online") for o in sim.outages]
        )

    def topic(self, gateway: str) -> str:
        """Telemetry topic of a gateway."""
        return telemetry_topic(self.prefix, self.sim.enterprise_of_gateway[gateway], gateway)

    def status(self, gateway: str) -> str:
        """Status (LWT) topic of a gateway."""
        return status_topic(self.prefix, self.sim.enterprise_of_gateway[gateway], gateway)

    def _faults(self, gateway: str, at_s: float) -> list[DeliveryAction]:
        return [d for start, end, d in self.sim.delivery if d.gateway == gateway
                and start <= at_s < end]  # fmt: skip

    def publications(self, chunk: ReadingsChunk) -> Iterator[Publication]:
        """Publications of one readings chunk, state changes interleaved in time order."""
        if len(chunk) == 0:
            return
        gw = self._gw_of_tag[chunk.tag]
        # Batches: runs of equal (ts, gateway) after ordering by gateway within each ts.
        order = np.lexsort((gw, chunk.ts_ms))
        ts, gws = chunk.ts_ms[order], gw[order]
        edges = np.flatnonzero((np.diff(ts) != 0) | (np.diff(gws) != 0)) + 1
        starts = np.concatenate(([0], edges))
        ends = np.concatenate((edges, [ts.shape[0]]))
        tags, values, quality = chunk.tag[order], chunk.value[order], chunk.quality[order]
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            at_ms = int(ts[a])
            while self._state_changes and self._state_changes[0][0] <= at_ms:
                when, gateway, state = self._state_changes.pop(0)
                yield Publication(when, gateway, state, self.status(gateway))
            gateway = self.sim.gateways[int(gws[a])]
            points = [
                (self._tag_ids[int(tags[i])], at_ms, float(values[i]), int(quality[i]))
                for i in range(a, b)
            ]
            yield from self._deliver(gateway, at_ms, points)

    def flush(self) -> Iterator[Publication]:
        """Held-back batches and remaining state changes at the end of the run."""
        yield from self._held.values()
        self._held.clear()
        for when, gateway, state in self._state_changes:
            yield Publication(when, gateway, state, self.status(gateway))
        self._state_changes.clear()

    def _deliver(
        self, gateway: str, at_ms: int, points: list[tuple[str, int, float, int]]
    ) -> Iterator[Publication]:
        rng = self._rng[gateway]
        self.seq[gateway] += 1
        seq = self.seq[gateway]
        sent = at_ms + int(rng.integers(50, 400))
        faults = self._faults(gateway, (at_ms - self.sim.start_ms) / 1000.0)
        applied = ""
        for fault in faults:
            if fault.kind == "clock_skew":
                skew = round(parse_duration(fault.skew) * 1000) * (-1 if fault.negative else 1)
                points = [(t, ms + skew, v, q) for t, ms, v, q in points]
                sent += skew
                applied = "clock_skew"
        payload = encode_batch(gateway, seq, sent, points)
        for fault in faults:
            if fault.kind == "malformed" and rng.random() < fault.probability:
                kind = MALFORMED_KINDS[int(rng.integers(len(MALFORMED_KINDS)))]
                payload = malformed_payload(kind, gateway, seq, sent, points[0][0])
                applied = f"malformed:{kind}"
        pub = Publication(sent, gateway, "telemetry", self.topic(gateway), payload, seq,
                          len(points), applied)  # fmt: skip
        held = self._held.pop(gateway, None)
        kinds = {f.kind: f for f in faults}
        if (
            "out_of_order" in kinds
            and held is None
            and rng.random() < kinds["out_of_order"].probability
        ):
            self._held[gateway] = Publication(pub.at_ms, gateway, pub.kind, pub.topic, pub.payload,
                                              seq, pub.points, "out_of_order")  # fmt: skip
        else:
            yield pub
        if held is not None:
            yield held
        if "duplicate" in kinds and rng.random() < kinds["duplicate"].probability:
            yield Publication(pub.at_ms, gateway, pub.kind, pub.topic, pub.payload, seq,
                              pub.points, "duplicate")  # fmt: skip
