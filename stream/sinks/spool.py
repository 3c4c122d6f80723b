"""An on-disk, bounded FIFO of line-protocol batches for when InfluxDB is unreachable.

Each batch is one file named by a increasing sequence number, written to a temporary name,
fsynced and renamed, so a crash leaves either the whole batch or none of it. Batches replay in
order, which keeps every series in order (a series lives in one process's stream of batches).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from hazardwatch.errors import BackpressureError


class SpoolFullError(BackpressureError):
    """The spool reached its byte limit: the caller must stop taking input (not drop it)."""


class Spool:
    """Ordered batches on disk under `directory`, at most `max_bytes` in total."""

    def __init__(self, directory: Path, max_bytes: int = 1 << 30) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.tmp"):
            leftover.unlink()  # a batch whose write was interrupted was never acknowledged
        self._sizes = {p: p.stat().st_size for p in sorted(directory.glob("*.lp"))}
        self._bytes = sum(self._sizes.values())
        self._next = max((int(p.stem) for p in self._sizes), default=0) + 1

    def __len__(self) -> int:
        return len(self._sizes)

    @property
    def bytes(self) -> int:
        """Bytes of spooled batches on disk."""
        return self._bytes

    @property
    def fill(self) -> float:
        """Fraction of the byte limit in use (0–1)."""
        return self._bytes / self.max_bytes

    def append(self, lines: list[str]) -> None:
        """Store a batch durably at the end of the queue; SpoolFullError when it does not fit
        (the byte limit, or the file system refuses the write)."""
        data = ("\n".join(lines) + "\n").encode("utf-8")
        if self._bytes + len(data) > self.max_bytes:
            raise SpoolFullError(
                f"spool {self.directory} full: {self._bytes} of {self.max_bytes} bytes"
            )
        path = self.directory / f"{self._next:012d}.lp"
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.rename(path)
        except OSError as exc:
            # The file system is full (ENOSPC) or failing: as good as a full spool — the caller
            # holds the batch and applies backpressure; a partial file must not replay.
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise SpoolFullError(f"spool {self.directory} cannot take a batch: {exc}") from exc
        self._next += 1
        self._sizes[path] = len(data)
        self._bytes += len(data)

    def peek(self) -> tuple[Path, list[str]] | None:
        """The oldest batch and its lines, or None when empty."""
        if not self._sizes:
            return None
        path = next(iter(self._sizes))
        return path, path.read_text("utf-8").splitlines()

    def pop(self, path: Path) -> None:
        """Remove a batch after it was written to InfluxDB."""
        self._bytes -= self._sizes.pop(path)
        path.unlink()
