"""Exit a worker whose table recovery has stopped making progress, so that it is restarted.

faust restores a newly assigned partition's table from its changelog and holds every agent until
the offsets it has applied reach the changelog's high-water mark. When the records that would get
it there never arrive, it waits forever, logging "No event received for active tp" (robinhood/faust
#218, faust-streaming #74; seen here in 2 of some 80 takeovers, and reproducible with a
transaction marker at the end of a changelog, which no record fills). Meanwhile the worker's
partitions are evaluated by nobody — for a safety system an outage that nothing else reports. A
restarted process rejoins the group and recovers from scratch; exiting is how the worker asks its
supervisor for that.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, Protocol

from mode import Service

log = logging.getLogger(__name__)

EXIT_RECOVERY_STALLED = 75  # EX_TEMPFAIL: try again (a supervisor restarts the worker)


class Recovery(Protocol):
    """What the watchdog reads of faust's `tables.recovery` service."""

    in_recovery: bool

    def active_remaining_total(self) -> int:
        """Changelog records still to apply before the active partitions are restored."""
        ...

    def active_remaining(self) -> Any:
        """The same per changelog partition."""
        ...


class RecoveryWatchdog:
    """Seconds for which recovery has been in progress with the same number of records left."""

    def __init__(self, stall_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_s = stall_s
        self._clock = clock
        self._remaining: int | None = None
        self._since = 0.0

    def stalled_for(self, recovery: Recovery) -> float:
        """Seconds without progress (0 when not recovering or when records were applied)."""
        if not recovery.in_recovery:
            self._remaining = None
            return 0.0
        remaining, now = recovery.active_remaining_total(), self._clock()
        if remaining != self._remaining:
            self._remaining, self._since = remaining, now
        return now - self._since


class RecoveryWatch(Service):
    """Checks faust's recovery every second from the worker's start (faust's own app tasks only
    start once recovery is complete) and ends the process once it has stalled."""

    def __init__(
        self, recovery: Callable[[], Recovery], stall_s: float, report: Callable[[float], None],
        **kw: Any,
    ) -> None:  # fmt: skip
        self._recovery = recovery
        self._watchdog = RecoveryWatchdog(stall_s)
        self._report = report
        super().__init__(**kw)

    @Service.task
    async def _watch(self) -> None:
        while not self.should_stop:
            await self.sleep(1.0)
            recovery = self._recovery()
            stalled_s = self._watchdog.stalled_for(recovery)
            self._report(stalled_s)
            if stalled_s >= self._watchdog.stall_s:
                log.critical("table recovery made no progress for %.0f s (%d changelog records "
                             "left: %s); exiting so that the worker is restarted", stalled_s,
                             recovery.active_remaining_total(),
                             {str(tp): n for tp, n in recovery.active_remaining().items() if n},
                             )  # fmt: skip
                logging.shutdown()
                os._exit(EXIT_RECOVERY_STALLED)
