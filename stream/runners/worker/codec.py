"""Rows of the worker's engine table `engine_v1` (one per telemetry partition).

    b"HWW1" | header length (4 bytes, big endian) | header JSON | engine snapshot

Header: {"offset": last telemetry offset applied, "commands": {commands partition: next offset},
"saved_ms": engine clock}. The snapshot is `RiskEngine.snapshot()` (stream/state.py, versioned).
Changing this layout needs a new magic and a migration note (STYLE.md practice 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

MAGIC = b"HWW1"


class RowError(ValueError):
    """A table row of another format."""


@dataclass(frozen=True, slots=True)
class EngineRow:
    """What a partition engine needs to continue where its previous owner stopped."""

    offset: int  # last telemetry offset the snapshot includes (-1: none)
    snapshot: bytes
    commands: dict[int, int] = field(default_factory=dict)  # next commands offset per partition
    saved_ms: int = 0

    def encode(self) -> bytes:
        """The table value."""
        header = orjson.dumps(
            {"offset": self.offset, "commands": {str(k): v for k, v in self.commands.items()},
             "saved_ms": self.saved_ms}
        )  # fmt: skip
        return MAGIC + len(header).to_bytes(4, "big") + header + self.snapshot

    @classmethod
    def decode(cls, value: bytes) -> EngineRow:
        """Parse a table value; RowError when it is not an `HWW1` row."""
        if value[:4] != MAGIC or len(value) < 8:
            raise RowError("not an HWW1 engine row")
        size = int.from_bytes(value[4:8], "big")
        try:
            header = orjson.loads(value[8 : 8 + size])
            commands = {int(k): int(v) for k, v in header["commands"].items()}
            return cls(int(header["offset"]), value[8 + size :], commands,
                       int(header["saved_ms"]))  # fmt: skip
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RowError(f"bad engine row header: {exc}") from None


def engine_key(partition: int) -> bytes:
    """Table key of a partition's engine row."""
    return f"partition:{partition}".encode()


def key_partition(key: bytes) -> int | None:
    """The partition an engine key names, None for other keys."""
    text = key.decode(errors="replace")
    if text.startswith("partition:") and text[10:].isdigit():
        return int(text[10:])
    return None
