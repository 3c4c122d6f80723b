"""Source changes: what the partition engines tell the enterprise merge (pure).

An enterprise's colour is the highest of its hazard sources' colours, and its alarm flood counts
new alarms of all its sources (DOMAIN.md §4–§5). Sources of one enterprise hash to different
telemetry partitions, so no partition engine sees them all. Each engine therefore publishes, to
the topic `{prefix}.source-changes` keyed by enterprise, every change the enterprise depends on:

    colour     a source's colour changed (from its risk event; carries the source's severity)
    severity   a source's highest unit severity changed without changing its colour
    new_alarm  an alarm became active and unacknowledged (what the engine's flood counts)

JSON: {"k": "colour"|"severity"|"new_alarm", "id", "ts" (epoch ms), "enterprise", "source",
"colour" (1–4), "severity" (0–3)}. `id` is deterministic (the risk or alarm event's id for colour
and new_alarm), so a change re-published after a failover is recognised and applied once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import orjson

ChangeKind = Literal["colour", "severity", "new_alarm"]
_KINDS = ("colour", "severity", "new_alarm")


@dataclass(frozen=True, slots=True)
class SourceChange:
    """One change of a hazard source that its enterprise's colour or flood depends on."""

    kind: ChangeKind
    id: str
    ts_ms: int
    enterprise: str
    source: str | None = None
    colour: int = 0
    severity: int = 0

    def to_json(self) -> bytes:
        """The record value on the source-changes topic."""
        return orjson.dumps(
            {"k": self.kind, "id": self.id, "ts": self.ts_ms, "enterprise": self.enterprise,
             "source": self.source, "colour": self.colour, "severity": self.severity}
        )  # fmt: skip

    @classmethod
    def from_json(cls, value: bytes) -> SourceChange:
        """Decode a record value; ValueError when it is not a source change."""
        data = orjson.loads(value)
        kind = data.get("k") if isinstance(data, dict) else None
        if kind not in _KINDS:
            raise ValueError("not a source change")
        ts, colour, severity = data.get("ts"), data.get("colour", 0), data.get("severity", 0)
        ident, enterprise, source = data.get("id"), data.get("enterprise"), data.get("source")
        if not (
            type(ts) is int and type(colour) is int and type(severity) is int
            and isinstance(ident, str) and isinstance(enterprise, str)
            and (source is None or isinstance(source, str))
        ):  # fmt: skip
            raise ValueError("bad source change fields")
        return cls(kind, ident, ts, enterprise, source, colour, severity)
