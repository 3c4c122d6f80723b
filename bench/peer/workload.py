"""The peer comparison's workload: one plant, one policy and one message stream for both systems.

The plant has `gateways` gateways of 100 temperature tags each, grouped 5 tags to a hazard source
(400 tags, 80 sources by default). Every tag has the same limits (L 5, H 60, HH 80 °C), a 1 °C
deadband and no on/off delay, so an alarm is due on the first reading beyond a limit in both
systems. Sources are grade 3: an HH alarm (S2) makes the source yellow, which hazardwatch pushes
to the enterprise's webhook; the Node-RED flow posts every new alarm to the same receiver.

Messages are gateway protocol v1 object-form batches (docs/gateway-protocol.md), encoded by
`ingest.protocol.encode_batch`, so both systems parse exactly the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from ingest.protocol import encode_batch, telemetry_topic

ENTERPRISE = "BENCH-E1"
LIMITS = {"L": 5.0, "H": 60.0, "HH": 80.0}
DEADBAND = 1.0
NORMAL = (20.0, 50.0)  # values drawn from this band raise no alarm
ALARM_VALUE = 90.0  # beyond HH
TAGS_PER_SOURCE = 5
TAGS_PER_GATEWAY = 100


@dataclass(frozen=True)
class Plant:
    """Ids of the bench plant: gateway → its tags, tag → its hazard source."""

    gateways: int = 4

    def gateway_ids(self) -> list[str]:
        return [f"GW-B{g + 1:02d}" for g in range(self.gateways)]

    def tags_of(self, gateway_index: int) -> list[str]:
        first = gateway_index * TAGS_PER_GATEWAY
        return [self.tag_id(first + i) for i in range(TAGS_PER_GATEWAY)]

    @staticmethod
    def source_of(tag_index: int) -> str:
        return f"HS{tag_index // TAGS_PER_SOURCE + 1:03d}"

    def tag_id(self, tag_index: int) -> str:
        return f"{self.source_of(tag_index)}-TT{tag_index % TAGS_PER_SOURCE + 1}"

    def sources(self) -> list[str]:
        count = self.gateways * TAGS_PER_GATEWAY // TAGS_PER_SOURCE
        return [self.source_of(i * TAGS_PER_SOURCE) for i in range(count)]

    def yaml(self) -> str:
        """The plant file both systems are configured from."""
        sources: dict[str, list[dict[str, Any]]] = {}
        for index in range(self.gateways * TAGS_PER_GATEWAY):
            sources.setdefault(self.source_of(index), []).append(
                {"id": self.tag_id(index), "name": "温度", "quantity": "temperature",
                 "unit": "°C", "range": [-20, 120], "limits": dict(LIMITS),
                 "deadband": DEADBAND, "on_delay_s": 0, "off_delay_s": 0}
            )  # fmt: skip
        data = {
            "version": 1,
            "enterprises": [{"id": ENTERPRISE, "name": "基准测试化工 (bench)",
                             "region": "350521", "industry": "hazardous_chemicals"}],
            "gateways": [{"id": gw, "enterprise": ENTERPRISE, "interval_s": 10,
                          "tags": self.tags_of(g)} for g, gw in enumerate(self.gateway_ids())],
            "hazard_sources": [{"id": s, "enterprise": ENTERPRISE, "name": f"{s} 反应区",
                                "kind": "process_unit", "grade": 3,
                                "units": [{"id": f"{s}-U", "name": f"{s} 反应釜", "tags": tags}]}
                               for s, tags in sources.items()],
        }  # fmt: skip
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def policy_yaml(webhook_url: str, secret_env: str) -> str:
    """hazardwatch's policy: DOMAIN defaults, but no flood grouping and no rate limit.

    The Node-RED flow has neither, and the comparison wants one notification per alarmed
    source from both systems.
    """
    data = {
        "risk": {"flood": {"start_above": 1_000_000, "end_below": 1, "window_s": 600}},
        "routing": {
            "flood": {"start_above": 1_000_000, "end_below": 1, "window_s": 600},
            "rate_limit": {"count": 1_000_000, "per_s": 1},
            "recipients": [{"id": "bench-control-room", "name": "中控室", "tier": "enterprise",
                            "area": ENTERPRISE, "channels": [
                                {"type": "webhook", "url": webhook_url,
                                 "secret_env": secret_env}]}],
        },
    }  # fmt: skip
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@dataclass
class Fleet:
    """The plant's gateways: per-gateway sequence numbers and topics under one prefix."""

    plant: Plant
    prefix: str
    seed: int = 7
    seq: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def topic(self, gateway: str) -> str:
        return telemetry_topic(self.prefix, ENTERPRISE, gateway)

    def message(self, gateway: str, sent_ms: int, points: list[tuple[str, int, float]]) -> bytes:
        self.seq[gateway] = seq = self.seq.get(gateway, 0) + 1
        return encode_batch(gateway, seq, sent_ms, [(t, ts, v, 0) for t, ts, v in points])

    def normal(self) -> float:
        return round(self.rng.uniform(*NORMAL), 2)

    def backlog(self, points: int, readings: int, t0_ms: int) -> list[tuple[str, bytes]]:
        """`readings` normal readings as `points`-point messages, gateways taking turns.

        Every (tag, time) pair is distinct, so InfluxDB keeps every reading (it overwrites
        points with equal series and time).
        """
        gateways = self.plant.gateway_ids()
        tags = [self.plant.tags_of(g) for g in range(len(gateways))]
        out: list[tuple[str, bytes]] = []
        sent = [0] * len(gateways)  # readings so far per gateway
        while len(out) * points < readings:
            g = len(out) % len(gateways)
            body = []
            for _ in range(points):
                k = sent[g]
                sent[g] += 1
                body.append((tags[g][k % TAGS_PER_GATEWAY], t0_ms + k // TAGS_PER_GATEWAY,
                             self.normal()))  # fmt: skip
            out.append((self.topic(gateways[g]), self.message(gateways[g], t0_ms, body)))
        return out

    def scans(self, alarmed: set[str], ts_ms: int) -> Iterator[tuple[str, str, bytes]]:
        """One 100-point scan per gateway at `ts_ms`: (gateway, topic, payload); tags in
        `alarmed` read ALARM_VALUE, the rest normal values."""
        for g, gateway in enumerate(self.plant.gateway_ids()):
            body = [(t, ts_ms, ALARM_VALUE if t in alarmed else self.normal())
                    for t in self.plant.tags_of(g)]  # fmt: skip
            yield gateway, self.topic(gateway), self.message(gateway, ts_ms, body)
