"""Helpers for tests that run hazardwatch commands as child processes and read back results.

Shared by the fault suite (tests/faults/) and usable by any integration test: waiting for a
condition, free ports, InfluxQL queries, and `Child`, one `hazardwatch <command>` process that a
test can start, probe, SIGKILL and restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def wait_until(
    check: Callable[[], T], timeout: float = 30.0, what: str = "", every: float = 0.2
) -> T:
    """Poll `check` until it returns something truthy; AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def influx_rows(url: str, db: str, query: str, token: str = "") -> list[dict[str, Any]]:
    """Rows of an InfluxQL query, each a dict of the series tags and the columns (`token`: an
    InfluxDB 2.x API token, whose InfluxQL endpoint needs one)."""
    headers = {"Authorization": f"Token {token}"} if token else {}
    resp = httpx.get(f"{url}/query", params={"db": db, "q": query, "epoch": "ms"},
                     headers=headers, timeout=10)  # fmt: skip
    resp.raise_for_status()
    rows = []
    for series in resp.json()["results"][0].get("series", []):
        for values in series["values"]:
            rows.append(
                {**series.get("tags", {}), **dict(zip(series["columns"], values, strict=True))}
            )
    return rows


class Child:
    """`hazardwatch <args>` as a child process writing to a log file.

    `ready` is polled after each start until it is true; the process dying first fails the test
    with the log's tail.
    """

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        log: Path,
        ready: Callable[[], bool],
        cwd: Path | None = None,
    ) -> None:
        self.args = [sys.executable, "-m", "hazardwatch.cli", *args]
        self.env = dict(env)
        self.log = log
        self.ready = ready
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until `ready`."""
        with open(self.log, "ab") as handle:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                self.args, env=self.env, stdout=handle, stderr=subprocess.STDOUT, cwd=self.cwd
            )
        self.starts += 1
        wait_until(self._ready, timeout, f"{self.args[3]} ready\n{self.tail()}", every=0.25)

    def _ready(self) -> bool:
        if not self.alive():
            raise AssertionError(f"{self.args[3:]} exited with {self.returncode()}\n{self.tail()}")
        try:
            return self.ready()
        except httpx.HTTPError:
            return False

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        """Exit status once the process ended."""
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would, and reap it."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.kills += 1

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit status (SIGKILL after `timeout`)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.returncode() or 0
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def tail(self, chars: int = 3000) -> str:
        """The end of the process's log."""
        try:
            return self.log.read_text("utf-8", errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


def base_env(**settings: str) -> dict[str, str]:
    """The current environment plus `HAZARDWATCH_*` settings (`mqtt__url=` → `…MQTT__URL`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZARDWATCH_")}
    env.update({f"HAZARDWATCH_{k.upper()}": v for k, v in settings.items()})
    return env


def drop_kafka_topics(bootstrap: str, prefix: str) -> None:
    """Delete every Kafka topic whose name starts with `prefix` (a test's own topics)."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def drop() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            ours = [t for t in await admin.list_topics() if t.startswith(prefix)]
            if ours:
                await admin.delete_topics(ours)
        finally:
            await admin.close()

    asyncio.run(drop())
