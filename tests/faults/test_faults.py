"""Faults a plant's monitoring must survive: process kills, broker and database restarts and
outages, an unreachable receiver, a full spool. For each: no alert lost, none accepted twice, no
reading lost (per series), and back to normal without a human. See docs/reliability.md.

The cases run concurrently (conftest.py); each test asserts on its own case's report.
"""

from __future__ import annotations

import pytest

from tests.faults.catalogue import CASES
from tests.faults.conftest import Campaign

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

WITHOUT_ALERTS = {"bridge-sigkill"}  # the bridge carries readings only
WITHOUT_READINGS = {"alerts-sigkill"}  # the dispatcher carries alerts only


@pytest.mark.parametrize("case", list(CASES))
def test_fault_loses_nothing_and_recovers(case: str, campaign: Campaign) -> None:
    report = campaign.report(case)
    assert report.error is None, f"{report.summary()}\n{report.error}\n{report.notes}"
    figures = report.figures
    if case not in WITHOUT_ALERTS:
        alerts = report.alerts
        assert alerts is not None and alerts.expected > 0, report.summary()
        assert alerts.lost == [], f"alerts lost: {alerts}"
        assert alerts.duplicates == [], f"duplicate alerts accepted: {alerts}"
        assert alerts.unexpected == [], f"unexpected alerts: {alerts}"
        assert alerts.bad_signatures == 0, alerts
    if case not in WITHOUT_READINGS:
        readings = report.readings
        assert readings is not None, report.summary()
        assert figures["messages_unacknowledged"] == 0, figures
        assert readings.published == figures["readings_in_workload"], (readings, figures)
        assert readings.short_series == {}, f"readings lost or extra per series: {readings}"
        assert readings.found == readings.published, readings
    assert report.recovery and all(report.recovery.values()), (
        f"not back to normal: {report.recovery}\n{figures}\n{report.notes}"
    )
