"""The fault campaign: every selected fault case runs at once, each on its own services, names and
processes, so the suite takes about as long as its longest fault (the 2 min receiver outage)
instead of the sum. Each test then waits for its own case's report.

`HAZARDWATCH_FAULT_SEED` (default 9) seeds the fault points; `HAZARDWATCH_FAULT_REPORT=path`
writes every report as JSON; `HAZARDWATCH_FAULT_KEEP=1` keeps each case's directory (logs,
SQLite files, spool) even when it passed.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.faults.catalogue import CASES, FAULTS
from tests.faults.figures import FaultReport
from tests.faults.rigs import Case
from tests.services import Endpoints

SEED = int(os.environ.get("HAZARDWATCH_FAULT_SEED", "9"))
ANSWER_DELAY_S = {"alerts-sigkill": 1.0}  # the receiver holds answers: kills land mid-delivery
STAGGER_S = 2.0  # spread process start-ups over the two cores
REPORTS = pytest.StashKey[list[FaultReport]]()


def run_case(name: str, endpoints: Endpoints, delay_s: float) -> FaultReport:
    """Run one case to its report; an exception inside becomes `report.error`."""
    time.sleep(delay_s)
    case = Case(name, FAULTS[name], SEED, ANSWER_DELAY_S.get(name, 0.0))
    try:
        CASES[name](case, endpoints)
    except KeyboardInterrupt:
        case.report.error = "interrupted"
        raise
    except BaseException:  # asyncio's CancelledError too: every failure becomes a figure
        case.report.error = traceback.format_exc()
    finally:
        case.report.elapsed_s = round(time.monotonic() - case.started, 1)
        failed = case.report.error is not None
        if failed:
            case.report.notes.append(f"logs kept in {case.workdir}")
        # Always: a case's processes and private services must not outlive it.
        case.close(keep=failed or os.environ.get("HAZARDWATCH_FAULT_KEEP") == "1")
    return case.report


class Campaign:
    """Futures of the selected cases' reports."""

    def __init__(self, futures: dict[str, Future[FaultReport]]) -> None:
        self.futures = futures

    def report(self, name: str) -> FaultReport:
        """Wait for a case's report."""
        return self.futures[name].result()


def _selected(session: pytest.Session) -> list[str]:
    names = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("case") if callspec is not None else None
        if name in CASES and name not in names:
            names.append(name)
    return names


@pytest.fixture(scope="session")
def campaign(request: pytest.FixtureRequest, endpoints: Endpoints) -> Iterator[Campaign]:
    """Start every selected case now; reports are collected for the summary and JSON file."""
    names = _selected(request.session)
    pool = ThreadPoolExecutor(max_workers=max(1, len(names)), thread_name_prefix="fault")
    futures = {n: pool.submit(run_case, n, endpoints, i * STAGGER_S) for i, n in enumerate(names)}
    yield Campaign(futures)
    pool.shutdown(wait=True)
    reports = [f.result() for f in futures.values()]
    request.config.stash[REPORTS] = reports
    target = os.environ.get("HAZARDWATCH_FAULT_REPORT")
    if target:
        Path(target).write_text(
            json.dumps([r.as_dict() for r in reports], indent=2, ensure_ascii=False, default=str),
            "utf-8",
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line of figures per fault case."""
    reports = terminalreporter.config.stash.get(REPORTS, [])
    if reports:
        terminalreporter.section(f"fault suite (seed {SEED})")
        for report in reports:
            terminalreporter.write_line(report.summary())
