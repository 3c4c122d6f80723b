"""Every fault case by the name tests and `-k` use, with its one-line description."""

from __future__ import annotations

from collections.abc import Callable

from tests.faults.cases import (
    control,
    influx_down,
    mosquitto_restart,
    receiver_down,
    runner_sigkill,
    runner_sigkill_realtime,
    spool_disk_full,
    spool_limit,
)
from tests.faults.distributed import alerts_sigkill, bridge_sigkill, kafka_restart, worker_sigkill
from tests.faults.rigs import Case
from tests.services import Endpoints

CASES: dict[str, Callable[[Case, Endpoints], None]] = {
    "control": control,
    "runner-sigkill": runner_sigkill,
    "runner-sigkill-realtime": runner_sigkill_realtime,
    "bridge-sigkill": bridge_sigkill,
    "alerts-sigkill": alerts_sigkill,
    "mosquitto-restart": mosquitto_restart,
    "kafka-restart": kafka_restart,
    "influx-down-60s": influx_down,
    "receiver-down-120s": receiver_down,
    "spool-limit": spool_limit,
    "spool-disk-full": spool_disk_full,
    "worker-sigkill": worker_sigkill,
}

FAULTS = {name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in CASES.items()}
