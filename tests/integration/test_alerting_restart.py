"""`hazardwatch alerts serve` killed with SIGKILL mid-delivery resumes from its outbox.

The receiver is slow and fails its first requests; the process dies while sends are in flight
(the receiver accepts some of them after the sender is gone, so the outbox never learns). The
restarted process must deliver every notification, and a receiver honouring the idempotency
key must end up with each exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from alerting.auth import token_hash
from alerting.samples import sample_routing_yaml
from tests.integration.test_alerting_delivery import SECRETS, Receiver
from tests.integration.test_alerting_serve import wait_for
from tests.processes import free_port
from tests.services import Endpoints

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
EVENTS = 6  # red warnings at six hazard sources: 9 notifications each (four tiers)


def outbox_keys(db: Path, where: str = "1") -> set[str]:
    """Notification keys in the outbox file, read by a separate connection."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return {row[0] for row in conn.execute(f"SELECT key FROM notification WHERE {where}")}


def delivered_keys(db: Path) -> set[str]:
    return outbox_keys(db, "status = 'delivered'")


def red(i: int) -> dict[str, Any]:
    return {"id": f"kill-{i}", "ts": int(time.time() * 1000), "type": "risk",
            "enterprise": "QZ-PETRO", "source": f"QZ-TF{i}", "level": "source",
            "colour": "red", "previous": "orange"}  # fmt: skip


async def test_sigkill_mid_delivery_then_restart_delivers_each_exactly_once(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    receiver = Receiver(free_port(), delay_s=0.6, fail_with=[500, 503, 500])
    await receiver.start()
    prefix = f"hwtest_{uuid.uuid4().hex[:8]}.v1"
    policy = tmp_path / "policy.yaml"
    text = sample_routing_yaml(webhook=f"{receiver.base}/hooks", sms=f"{receiver.base}/sms",
                               platform=f"{receiver.base}/platform/api/v1")  # fmt: skip
    policy.write_text(text.replace(
        "delivery: {max_attempts: 6, backoff_initial_s: 0.2, backoff_max_s: 2, timeout_s: 2}",
        "delivery: {max_attempts: 30, backoff_initial_s: 0.2, backoff_max_s: 1, timeout_s: 5}",
    ), encoding="utf-8")  # fmt: skip
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f'tokens:\n  - {{user: wang, tier: enterprise, area: QZ-PETRO, '
                      f'sha256: "{token_hash("t")}"}}\n', encoding="utf-8")  # fmt: skip
    db = tmp_path / "alerts.db"
    env = {**os.environ, **SECRETS, "HAZARDWATCH_KAFKA__TOPIC_PREFIX": prefix,
           "HAZARDWATCH_KAFKA__BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap,
           "HAZARDWATCH_HTTP__PORT": str(free_port())}  # fmt: skip
    command = [sys.executable, "-m", "hazardwatch.cli", "alerts", "serve", "--plant",
               str(ROOT / "examples/tank-farm.yaml"), "--policy", str(policy), "--tokens",
               str(tokens), "--db", str(db)]  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap)
    await producer.start()
    processes: list[asyncio.subprocess.Process] = []
    try:
        for i in range(EVENTS):
            await producer.send_and_wait(f"{prefix}.alerts", orjson.dumps(red(i)))
        first = await asyncio.create_subprocess_exec(*command, env=env, cwd=tmp_path)
        processes.append(first)
        # Kill while a wave of slow requests is in flight: they complete at the receiver
        # after the sender is gone, so the outbox still holds them as pending.
        await wait_for(lambda: receiver.received >= 12, 60, "sends in flight", poll_s=0.01)
        first.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(first.wait(), 10) == -signal.SIGKILL
        expected = outbox_keys(db)
        assert len(expected) == 9 * EVENTS
        recorded = delivered_keys(db)
        assert len(recorded) < len(expected)  # deliveries were pending at the kill
        await wait_for(lambda: receiver.active == 0, 10, "the orphaned requests to end")
        lost_acks = set(receiver.accepted) - recorded
        assert lost_acks  # accepted by the receiver, never recorded by the dead sender

        second = await asyncio.create_subprocess_exec(*command, env=env, cwd=tmp_path)
        processes.append(second)
        await wait_for(lambda: delivered_keys(db) == expected, 60,
                       "every notification delivered after the restart")  # fmt: skip
        assert set(receiver.accepted) == expected and receiver.rejected == []
        # Exactly once: only the lost acknowledgements were sent again, and dropped by key.
        assert receiver.duplicates == len(lost_acks)
        assert outbox_keys(db) == expected  # replayed Kafka events added no notification
    finally:  # a clean SIGTERM exit is test_alerting_serve's business; here time is dear
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        await producer.stop()
        await receiver.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap)
        await admin.start()
        with contextlib.suppress(Exception):  # cleanup only; the result is decided above
            await admin.delete_topics([f"{prefix}.alerts", f"{prefix}.commands"])
        await admin.close()
