"""`hazardwatch alerts serve` as a process: Kafka events in, webhooks out, acks to Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from alerting.auth import token_hash
from alerting.samples import sample_routing_yaml
from tests.integration.test_alerting_delivery import SECRETS, Receiver
from tests.processes import free_port
from tests.services import Endpoints

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


async def wait_for(check: Any, timeout_s: float, what: str, poll_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(poll_s)


async def test_serve_delivers_kafka_events_and_publishes_acks(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    receiver = Receiver(free_port())
    await receiver.start()
    prefix = f"hwtest_{uuid.uuid4().hex[:8]}.v1"
    policy = tmp_path / "policy.yaml"
    policy.write_text(sample_routing_yaml(webhook=f"{receiver.base}/hooks",
                                          sms=f"{receiver.base}/sms",
                                          platform=f"{receiver.base}/platform/api/v1"),
                      encoding="utf-8")  # fmt: skip
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f'tokens:\n  - {{user: wang, tier: enterprise, area: QZ-PETRO, '
                      f'sha256: "{token_hash("t-wang")}"}}\n', encoding="utf-8")  # fmt: skip
    port = free_port()
    env = {**os.environ, **SECRETS, "HAZARDWATCH_KAFKA__TOPIC_PREFIX": prefix,
           "HAZARDWATCH_KAFKA__BOOTSTRAP_SERVERS": endpoints.kafka_bootstrap,
           "HAZARDWATCH_HTTP__PORT": str(port), "HAZARDWATCH_DATA_DIR": str(tmp_path)}  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap)
    await producer.start()
    event = {
        "id": "ev-1",
        "ts": int(time.time() * 1000),
        "type": "risk",
        "enterprise": "QZ-PETRO",
        "source": "QZ-TF1",
        "level": "source",
        "colour": "yellow",
        "previous": "blue",
        "severity": "S2",
        "escalated": False,
    }
    await producer.send_and_wait(f"{prefix}.alerts", orjson.dumps(event))  # creates the topic
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hazardwatch.cli", "alerts", "serve", "--plant",
        str(ROOT / "examples/tank-farm.yaml"), "--policy", str(policy), "--tokens", str(tokens),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    commands = AIOKafkaConsumer(f"{prefix}.commands", bootstrap_servers=endpoints.kafka_bootstrap,
                                auto_offset_reset="earliest")  # fmt: skip
    try:
        # yellow: the control room (webhook + SMS gateway) and Huian county (3 channels)
        await wait_for(lambda: len(receiver.accepted) == 5, 60, "five deliveries")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            headers = {"Authorization": "Bearer t-wang"}
            [alert] = (await http.get("/api/v1/alerts", headers=headers)).json()["alerts"]
            assert alert["colour"] == "yellow" and alert["source"] == "QZ-TF1"
            response = await http.post(f"/api/v1/alerts/{alert['id']}/ack", headers=headers)
            assert response.status_code == 200
        await commands.start()
        record = await asyncio.wait_for(commands.getone(), 30)
        command = orjson.loads(record.value)
        assert command["type"] == "acknowledge" and command["alert"] == alert["id"]
        assert command["user"] == "wang" and record.key == b"QZ-PETRO"
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 30) == 0
        await commands.stop()
        await producer.stop()
        await receiver.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap)
        await admin.start()
        with contextlib.suppress(Exception):  # cleanup only; the result is decided above
            await admin.delete_topics([f"{prefix}.alerts", f"{prefix}.commands"])
        await admin.close()
