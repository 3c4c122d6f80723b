"""Print the fault suite's JSON reports as the Markdown table of docs/reliability.md.

HAZARDWATCH_FAULT_REPORT=faults.json .venv/bin/pytest tests/faults
.venv/bin/python -m tests.faults.report faults.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def row(report: dict[str, Any]) -> str:
    """One table row: alerts, duplicates, readings, recovery, time."""
    alerts = report["alerts"]
    readings = report["readings"]
    if alerts:
        alert_cell = f"{alerts['delivered']} / {alerts['expected']}"
        lost, dup = str(len(alerts["lost"])), str(len(alerts["duplicates"]))
        redelivered = str(alerts["redeliveries"])
    else:
        alert_cell = lost = dup = redelivered = "—"
    if readings:
        reading_cell = f"{readings['found']} / {readings['published']} ({readings['store']})"
        reading_lost = str(readings["published"] - readings["found"])
    else:
        reading_cell, reading_lost = "—", "—"
    failed = [k for k, ok in report["recovery"].items() if not ok]
    recovered = "yes" if not failed and not report["error"] else f"**no**: {', '.join(failed)}"
    cells = [
        report["case"],
        alert_cell,
        lost,
        dup,
        redelivered,
        reading_cell,
        reading_lost,
        recovered,
        f"{report['elapsed_s']:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def table(reports: list[dict[str, Any]]) -> str:
    """The whole table."""
    head = (
        "| fault | alerts delivered / expected | lost | duplicates accepted | redelivered "
        "(dropped by key) | readings stored / published | readings lost | back to normal "
        "| s |\n|---|---|---|---|---|---|---|---|---|"
    )
    return "\n".join([head, *(row(r) for r in reports)])


def main(argv: list[str]) -> int:
    """`python -m tests.faults.report FILE`."""
    reports = json.loads(Path(argv[1]).read_text("utf-8"))
    print(table(reports))
    seed = {r["seed"] for r in reports}
    print(f"\nseed {', '.join(map(str, sorted(seed)))}")
    for report in reports:
        notes = [*report["notes"], *(f"{k}={v}" for k, v in report["figures"].items())]
        if report["alerts"]:
            notes.append(f"idempotency keys as predicted={report['alerts']['keys_matched']}")
        print(f"- {report['case']}: {'; '.join(notes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
