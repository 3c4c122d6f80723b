"""The recovery watchdog's clock: only recovery without progress counts (watchdog.py)."""

from __future__ import annotations

from dataclasses import dataclass

from stream.runners.worker.watchdog import RecoveryWatchdog


@dataclass
class FakeRecovery:
    in_recovery: bool = False
    remaining: int = 0

    def active_remaining_total(self) -> int:
        return self.remaining

    def active_remaining(self) -> dict[str, int]:
        return {"changelog-0": self.remaining}


def test_stall_is_time_in_recovery_with_the_same_records_left() -> None:
    now = [0.0]
    watchdog = RecoveryWatchdog(10.0, clock=lambda: now[0])
    recovery = FakeRecovery(in_recovery=True, remaining=50)
    assert watchdog.stalled_for(recovery) == 0.0
    now[0] = 6.0
    assert watchdog.stalled_for(recovery) == 6.0
    recovery.remaining = 20  # records applied: progress restarts the clock
    assert watchdog.stalled_for(recovery) == 0.0
    now[0] = 16.0
    assert watchdog.stalled_for(recovery) == 10.0


def test_no_recovery_is_no_stall_and_a_new_recovery_starts_afresh() -> None:
    now = [0.0]
    watchdog = RecoveryWatchdog(10.0, clock=lambda: now[0])
    recovery = FakeRecovery(in_recovery=True, remaining=5)
    watchdog.stalled_for(recovery)
    now[0] = 9.0
    recovery.in_recovery = False
    assert watchdog.stalled_for(recovery) == 0.0
    now[0] = 30.0
    recovery.in_recovery = True  # the next rebalance, with as many records left by chance
    assert watchdog.stalled_for(recovery) == 0.0
