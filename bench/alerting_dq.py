"""Benchmark: data-quality events through the alerting service at one enterprise.

A gateway outage makes every tag behind it stale at once, and every stale tag is one
data-quality event on the same alert (data quality is grouped per enterprise). The cost of one
event must not grow with the alert's size. For each size N the service gets N events at one
enterprise: N/2 distinct tags go stale (the outage), then the same N/2 come back (the recovery,
which closes the alert), with the timers run every 500 events as the runner does. Each event is
committed to the SQLite outbox before the next one, as in production.

Prints one JSON object:

- `dq_events_per_s_{N}` and `dq_us_per_event_{N}` for each `--sizes` N (default 2000 and
  20000): the per-event time stays flat when the update is incremental, and grows with N when
  it is not; `per_event_growth` = time per event at the largest size / at the smallest;
- `restore_ms_{N}`: reopening the outbox with N/2 stale tags on the alert (before the recovery)
  and rebuilding the book, checked equal to the state before the restart;
- `ceiling_us_per_event` / `ceiling_events_per_s`: the bare SQLite commit per event (one small
  row inserted and committed in the same WAL/`synchronous=NORMAL` settings), measured in the
  same run — the floor any durable per-event update pays.

    python bench/alerting_dq.py [--sizes 2000 20000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerting.outbox import Outbox
from alerting.policy import routing_from_mapping
from alerting.routing import EnterpriseArea
from alerting.samples import sample_routing
from alerting.service import AlertService

T0 = 1_767_225_600_000
ENTERPRISE = EnterpriseArea("QZ-PETRO", "湄洲湾储运", "350521", "tank_farm")
TICK_EVERY = 500


def _event(n: int, tag: int, state: str) -> dict[str, Any]:
    return {"id": f"dq-{n}", "ts": T0 + n, "type": "data_quality", "enterprise": "QZ-PETRO",
            "source": "QZ-TF1", "unit": "T101", "tag": f"T{tag:06d}", "condition": "stale",
            "state": state}  # fmt: skip


def _service(db: Path, clock: list[int]) -> AlertService:
    policy = routing_from_mapping(sample_routing())
    return AlertService(policy, Outbox(db), {"QZ-PETRO": ENTERPRISE}, lambda: clock[0])


def _run(size: int, workdir: Path) -> dict[str, float]:
    half = size // 2
    clock = [T0]
    db = workdir / f"outbox-{size}.db"
    service = _service(db, clock)
    events = [_event(i, i, "active") for i in range(half)]
    events += [_event(half + i, i, "normal") for i in range(size - half)]
    outage_s = recovery_s = 0.0
    restore_ms = 0.0
    for phase, batch in enumerate((events[:half], events[half:])):
        started = time.perf_counter()
        for n, event in enumerate(batch, 1):
            clock[0] = int(event["ts"])
            service.handle(event)
            if n % TICK_EVERY == 0:
                service.tick()
        elapsed = time.perf_counter() - started
        if phase == 0:
            outage_s = elapsed
            before = {a.id: a.to_dict() for a in service.book.active()}
            service.outbox.close()
            started = time.perf_counter()
            service = _service(db, clock)
            restore_ms = (time.perf_counter() - started) * 1000
            after = {a.id: a.to_dict() for a in service.book.active()}
            if after != before:
                raise SystemExit(f"size {size}: restart did not restore the alert state")
        else:
            recovery_s = elapsed
    if service.book.active():
        raise SystemExit(f"size {size}: the alert did not close after the recovery")
    service.outbox.close()
    total = outage_s + recovery_s
    return {
        f"dq_events_per_s_{size}": round(size / total, 1),
        f"dq_us_per_event_{size}": round(total / size * 1e6, 1),
        f"dq_outage_us_per_event_{size}": round(outage_s / half * 1e6, 1),
        f"dq_recovery_us_per_event_{size}": round(recovery_s / (size - half) * 1e6, 1),
        f"restore_ms_{size}": round(restore_ms, 1),
    }


def _commit_ceiling(count: int, workdir: Path) -> float:
    """Seconds per bare commit of one small row, with the outbox's pragmas."""
    db = sqlite3.connect(workdir / "ceiling.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE row (id INTEGER PRIMARY KEY, alert TEXT, tag TEXT, state TEXT)")
    started = time.perf_counter()
    for i in range(count):
        db.execute("INSERT INTO row (alert, tag, state) VALUES (?, ?, ?)",
                   ("A-dq-0", f"T{i:06d}", '{"active":true}'))  # fmt: skip
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    result: dict[str, Any] = {"sizes": sizes}
    with tempfile.TemporaryDirectory(prefix="bench-alerting-dq-") as tmp:
        workdir = Path(tmp)
        ceiling = _commit_ceiling(max(sizes), workdir)
        for size in sizes:
            result.update(_run(size, workdir))
    result["ceiling_us_per_event"] = round(ceiling * 1e6, 1)
    result["ceiling_events_per_s"] = round(1 / ceiling, 1)
    small, large = sizes[0], sizes[-1]
    result["per_event_growth"] = round(
        result[f"dq_us_per_event_{large}"] / result[f"dq_us_per_event_{small}"], 2
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
