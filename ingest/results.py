"""What the decoder returns: frozen, slotted verdicts, plus columnar arrays for the numpy engine.

A `Decoded` message holds its accepted readings as parallel tuples (tag index, ts ms, value,
quality) and every rejection. `columns_of(messages)` turns the accepted readings of one or many
messages into numpy arrays the `stream` engine takes as a batch; `Decoded.readings()` gives
`hazardwatch.types.Reading` objects for code that prefers records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from hazardwatch.types import Reading
from ingest.reasons import IDEMPOTENT_DROPS, Rejection
from ingest.times import rfc3339


class MessageKind(StrEnum):
    """Which protocol message a topic carried; UNKNOWN when the topic itself was refused."""

    TELEMETRY = "telemetry"
    STATUS = "status"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """A decoded status message: `state` online/offline at `ts_ms` (epoch ms)."""

    gateway: str
    enterprise: str
    state: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class ReadingColumns:
    """Accepted readings as parallel arrays, in arrival order.

    `tag_index` indexes `plant.resolved_tags()`; `ts_ms` is epoch ms UTC; `value` is in the
    tag's unit; `quality` 0 = good.
    """

    tag_index: npt.NDArray[np.int32]
    ts_ms: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    quality: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return int(self.tag_index.shape[0])


@dataclass(frozen=True, slots=True)
class Decoded:
    """The verdict on one MQTT message: accepted readings (columns) and every rejection.

    `enterprise` and `gateway` come from the topic ("" when it could not be parsed); `seq` and
    `sent_ms` are None unless the telemetry header was valid. A message-level rejection leaves
    the columns empty.
    """

    topic: str
    kind: MessageKind
    enterprise: str
    gateway: str
    seq: int | None
    sent_ms: int | None
    tag_index: tuple[int, ...]
    ts_ms: tuple[int, ...]
    values: tuple[float, ...]
    quality: tuple[int, ...]
    rejections: tuple[Rejection, ...]
    status: GatewayStatus | None = None
    tag_ids: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def accepted(self) -> int:
        """Number of accepted readings."""
        return len(self.tag_index)

    @property
    def dead_letter(self) -> bool:
        """True when the message needs a dead-letter record (a rejection other than a dup)."""
        return any(r.reason not in IDEMPOTENT_DROPS for r in self.rejections)

    def readings(self) -> tuple[Reading, ...]:
        """Accepted readings as `Reading` records (tag id, ts ms, value, quality, gateway)."""
        gw = self.gateway
        ids = self.tag_ids
        return tuple(
            Reading(ts_ms=ts, tag=ids[i], v=v, q=q, gw=gw)
            for i, ts, v, q in zip(
                self.tag_index, self.ts_ms, self.values, self.quality, strict=True
            )
        )

    def columns(self) -> ReadingColumns:
        """This message's accepted readings as numpy columns."""
        return columns_of((self,))

    def to_json(self) -> dict[str, Any]:
        """JSON-able verdict, as `hazardwatch decode` prints it (times as RFC 3339 and ms)."""
        out: dict[str, Any] = {
            "topic": self.topic,
            "kind": self.kind.value,
            "enterprise": self.enterprise,
            "gateway": self.gateway,
            "seq": self.seq,
            "sent": self.sent_ms,
            "accepted": self.accepted,
            "rejected": len(self.rejections),
            "readings": [
                {"tag": r.tag, "ts": rfc3339(r.ts_ms), "ts_ms": r.ts_ms, "v": r.v, "q": r.q}
                for r in self.readings()
            ],
            "rejections": [r.to_json() for r in self.rejections],
        }
        if self.status is not None:
            out["status"] = {"state": self.status.state, "ts_ms": self.status.ts_ms}
        return out


def columns_of(messages: Iterable[Decoded]) -> ReadingColumns:
    """Accepted readings of many messages, concatenated in order, as numpy columns."""
    tags: list[int] = []
    times: list[int] = []
    values: list[float] = []
    quality: list[int] = []
    for message in messages:
        if message.tag_index:
            tags.extend(message.tag_index)
            times.extend(message.ts_ms)
            values.extend(message.values)
            quality.extend(message.quality)
    return ReadingColumns(
        tag_index=np.array(tags, dtype=np.int32),
        ts_ms=np.array(times, dtype=np.int64),
        value=np.array(values, dtype=np.float64),
        quality=np.array(quality, dtype=np.int8),
    )
