"""Acknowledgements flow back into the risk engine's command input.

`AckCommand` is the record; a `CommandSink` is any callable taking it. The runner wires a sink
to the engine's `command()` (embedded) or to the commands topic (distributed). `CommandQueue`
is a thread-safe sink the runner can drain from its own loop. JSON form (`to_dict`):

    {"type": "acknowledge", "alert": "A-…", "enterprise": "QZ-PETRO", "source": "QZ-TF1",
     "tags": ["T101-LT"], "user": "zhang.san", "ts": 1767225600000}

`ts` is epoch milliseconds UTC; `tags` lists the alert's tags still in alarm, so the engine moves
exactly those ISA-18.2 alarms from unacknowledged to acknowledged.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class AckCommand:
    """Acknowledge the alarms of one alert: who, when (epoch ms UTC), which tags."""

    alert: str
    enterprise: str
    source: str | None
    tags: tuple[str, ...]
    user: str
    ts_ms: int

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON form (see the module docstring)."""
        return {
            "type": "acknowledge",
            "alert": self.alert,
            "enterprise": self.enterprise,
            "source": self.source,
            "tags": list(self.tags),
            "user": self.user,
            "ts": self.ts_ms,
        }


class CommandSink(Protocol):
    """Receives engine commands; must not block for long (it runs in the API's request)."""

    def __call__(self, command: AckCommand) -> None:
        """Hand one command to the engine."""


class CommandQueue:
    """A bounded-never, thread-safe FIFO sink; the runner drains it into `engine.command()`."""

    def __init__(self) -> None:
        self._items: deque[AckCommand] = deque()
        self._lock = threading.Lock()

    def __call__(self, command: AckCommand) -> None:
        """Append one command."""
        with self._lock:
            self._items.append(command)

    def drain(self) -> list[AckCommand]:
        """Take every queued command, oldest first."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items

    def __len__(self) -> int:
        return len(self._items)
