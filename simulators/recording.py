"""Read recordings: readings.jsonl, CSV and InfluxDB line protocol (an export of `reading_v1`).

Every reader yields `hazardwatch.types.Reading` in file order and counts what it could not use,
with a reason per line (`Rejected`), instead of stopping: a recording with a few bad lines still
replays.

- JSONL: `{"ts": epoch ms | RFC 3339, "tag": id, "v": number, "q"?: int, "gw"?: id}`.
- CSV: a header naming at least `ts`, `tag`, `v` (optional `q`, `gw`); same value rules.
- Line protocol: `reading_v1,tag=T101-LT,... v=12.3,q=0i 1700000000000` — the reading's tag id
  from the `tag` tag, gateway from a `gw` tag if any, value field `v`; the timestamp precision
  is given (`ms` default, as hazardwatch writes; `ns`, `us`, `s`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from hazardwatch.types import Reading

_PRECISION_DIV = {"ns": 1_000_000, "us": 1_000, "ms": 1, "s": 0}


@dataclass
class Rejected:
    """Lines a reader skipped, with the reason of each (first 50 kept verbatim)."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, line_no: int, reason: str) -> None:
        """Count one skipped line."""
        self.count += 1
        if len(self.examples) < 50:
            self.examples.append(f"line {line_no}: {reason}")


def parse_ts(raw: Any) -> int:
    """Epoch ms from an int/float (ms) or an RFC 3339 string with offset; ValueError otherwise."""
    if isinstance(raw, bool):
        raise ValueError("ts must be epoch ms or RFC 3339")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise ValueError("ts not finite")
        return int(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError(f"timestamp {raw!r} has no UTC offset")
        return round(moment.timestamp() * 1000)
    raise ValueError("ts must be epoch ms or RFC 3339")


def _reading(ts: Any, tag: Any, v: Any, q: Any, gw: Any) -> Reading:
    if not isinstance(tag, str) or not tag:
        raise ValueError("tag missing")
    value = float(v)
    if not math.isfinite(value):
        raise ValueError("value not finite")
    quality = int(q) if q not in (None, "") else 0
    return Reading(parse_ts(ts), tag, value, quality, gw or None)


def read_jsonl(path: Path, rejected: Rejected) -> Iterator[Reading]:
    """Readings of a readings.jsonl file."""
    with path.open("rb") as stream:
        for no, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                body = orjson.loads(line)
                yield _reading(body["ts"], body["tag"], body["v"], body.get("q"), body.get("gw"))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                rejected.add(no, f"{type(exc).__name__}: {exc}")


def read_csv(path: Path, rejected: Rejected) -> Iterator[Reading]:
    """Readings of a CSV file with a `ts,tag,v[,q,gw]` header."""
    with path.open(newline="", encoding="utf-8") as stream:
        rows = csv.DictReader(stream)
        missing = {"ts", "tag", "v"} - set(rows.fieldnames or ())
        if missing:
            rejected.add(1, f"header lacks {sorted(missing)}")
            return
        for no, row in enumerate(rows, 2):
            try:
                yield _reading(row["ts"], row["tag"], row["v"], row.get("q"), row.get("gw"))
            except (TypeError, ValueError) as exc:
                rejected.add(no, f"{type(exc).__name__}: {exc}")


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_line_protocol(line: str, precision: str = "ms") -> Reading:
    """One line-protocol point → Reading; ValueError with the reason when it is not usable."""
    sections = _split_unescaped(line.strip(), " ")
    if len(sections) != 3:
        raise ValueError("expected `measurement,tags fields timestamp`")
    series, fields_text, ts_text = sections
    tags = dict(part.split("=", 1) for part in _split_unescaped(series, ",")[1:] if "=" in part)
    fields = dict(part.split("=", 1) for part in _split_unescaped(fields_text, ",") if "=" in part)
    if "v" not in fields:
        raise ValueError("no `v` field")
    raw_ts = int(ts_text)
    div = _PRECISION_DIV[precision]
    ts_ms = raw_ts * 1000 if div == 0 else raw_ts // div
    quality = fields.get("q", "0").rstrip("i")
    return _reading(ts_ms, tags.get("tag"), fields["v"].rstrip("i"), quality, tags.get("gw"))


def read_line_protocol(path: Path, rejected: Rejected, precision: str = "ms") -> Iterator[Reading]:
    """Readings of an InfluxDB line-protocol file (comments and blank lines skipped)."""
    with path.open(encoding="utf-8") as stream:
        for no, line in enumerate(stream, 1):
            if not line.strip() or line.startswith("#"):
                continue
            try:
                yield parse_line_protocol(line, precision)
            except (ValueError, KeyError) as exc:
                rejected.add(no, str(exc))


def read_recording(
    path: Path, rejected: Rejected, fmt: str | None = None, precision: str = "ms"
) -> Iterator[Reading]:
    """Readings of any supported recording; format from `fmt` or the file suffix."""
    kind = fmt or {".csv": "csv", ".lp": "lp", ".line": "lp", ".txt": "lp"}.get(
        path.suffix.lower(), "jsonl"
    )
    if kind == "csv":
        return read_csv(path, rejected)
    if kind == "lp":
        return read_line_protocol(path, rejected, precision)
    return read_jsonl(path, rejected)
