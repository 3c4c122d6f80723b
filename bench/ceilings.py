"""The local services' own ceilings, measured in the same run as the figures they bound.

    python -m bench.ceilings [--messages 20000] [--points 200000] [--rtt-seconds 12]

- `paho_subscriber_messages_per_s`: a bare paho subscriber (QoS 1, MQTT 5, empty callback)
  draining 1-point gateway messages pre-queued in its persistent session — no ingest code at
  all; `paho_subscriber_readings_per_s_100pt` the same with 100-point messages;
- `influx_write_points_per_s`: line protocol (the shape of `reading_v1`) POSTed to InfluxDB
  1.8's `/write` in 5,000-line batches, one after the other, ms precision;
- `mosquitto_round_trip_p50_ms` / `_p99_ms` / `_max_ms`: QoS 1 publish → delivery back to the
  same client, one message every 10 ms for `--rtt-seconds` (default 12 s, more than the broker's
  10 s persistence autosave, whose stall shows in the max).

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import uuid
from typing import Any

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt import send_at_once
from ingest.protocol import encode_batch

HOST, PORT = "127.0.0.1", 1883
INFLUX = "http://127.0.0.1:8086"
BATCH_LINES = 5000


def _client(client_id: str) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
    client.max_queued_messages_set(0)
    return client


def _connect(client: paho.Client, clean: bool, expiry_s: int) -> None:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = expiry_s
    client.connect(HOST, PORT, clean_start=clean, properties=props)


def paho_subscriber(messages: int, points: int) -> float:
    """Messages/s a bare paho subscriber drains from a pre-loaded persistent session."""
    topic = f"bench/ceiling-{uuid.uuid4().hex[:8]}/E/GW/telemetry"
    client_id = f"ceiling-sub-{uuid.uuid4().hex[:8]}"
    subscribed = threading.Event()
    session = _client(client_id)
    session.on_subscribe = lambda *a: subscribed.set()
    _connect(session, True, 300)
    session.loop_start()
    session.subscribe(topic, qos=1)
    subscribed.wait(10)
    session.disconnect()
    session.loop_stop()

    now = int(time.time() * 1000)
    body = encode_batch("GW", 1, now, [(f"T{i}", now, 20.5 + i, 0) for i in range(points)])
    publisher = _client(f"ceiling-pub-{uuid.uuid4().hex[:8]}")
    publisher.max_inflight_messages_set(100)
    _connect(publisher, True, 0)
    publisher.loop_start()
    infos = [publisher.publish(topic, body, qos=1) for _ in range(messages)]
    for info in infos:
        info.wait_for_publish(120)
    publisher.disconnect()
    publisher.loop_stop()

    done = threading.Event()
    received = 0

    def on_message(_c: paho.Client, _u: Any, _m: paho.MQTTMessage) -> None:
        nonlocal received
        received += 1
        if received >= messages:
            done.set()

    drain = _client(client_id)
    drain.on_message = on_message
    started = time.perf_counter()
    _connect(drain, False, 0)  # expiry 0: the broker forgets the session when we leave
    drain.loop_start()
    done.wait(300)
    elapsed = time.perf_counter() - started
    drain.disconnect()
    drain.loop_stop()
    if received < messages:
        raise SystemExit(f"ceiling invalid: {received}/{messages} messages drained")
    return received / elapsed


def influx_write(points: int) -> float:
    """Points/s written as line protocol in 5,000-line batches to a scratch database."""
    db = f"bench_ceiling_{uuid.uuid4().hex[:8]}"
    t0 = int(time.time() * 1000)
    lines = [
        f"reading_v1,enterprise=E1,source=HS{i % 80:03d},unit=U{i % 80:03d},"
        f"tag=T{i % 400},quantity=temperature v={20.0 + (i % 97) / 10},q=0i {t0 + i // 400}"
        for i in range(points)
    ]
    bodies = ["\n".join(lines[i : i + BATCH_LINES]).encode() for i in range(0, points, BATCH_LINES)]
    with httpx.Client(base_url=INFLUX, timeout=60) as client:
        client.post("/query", params={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()
        try:
            started = time.perf_counter()
            for body in bodies:
                client.post("/write", params={"db": db, "precision": "ms"},
                            content=body).raise_for_status()  # fmt: skip
            elapsed = time.perf_counter() - started
        finally:
            client.post("/query", params={"q": f'DROP DATABASE "{db}"'})
    return points / elapsed


def round_trips(seconds: float) -> list[float]:
    """Milliseconds from QoS 1 publish to delivery back on the same client, one at a time,
    every 10 ms for `seconds` — long enough to include the broker's periodic persistence save
    (`autosave_interval 10`), which stalls every client while it runs."""
    topic = f"bench/rtt-{uuid.uuid4().hex[:8]}"
    arrived = threading.Event()
    subscribed = threading.Event()
    client = _client(f"ceiling-rtt-{uuid.uuid4().hex[:8]}")
    # The broker's round trip, not Nagle's: one client publishing and receiving would wait on
    # its own delayed ACK (~40 ms) without TCP_NODELAY, as hazardwatch's clients set it.
    client.on_socket_open = send_at_once
    client.on_message = lambda *a: arrived.set()
    client.on_subscribe = lambda *a: subscribed.set()
    _connect(client, True, 0)
    client.loop_start()
    client.subscribe(topic, qos=1)
    subscribed.wait(10)
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        arrived.clear()
        started = time.perf_counter()
        client.publish(topic, b"x", qos=1)
        if not arrived.wait(30):
            raise SystemExit("ceiling invalid: a round trip timed out")
        out.append((time.perf_counter() - started) * 1000)
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure the ceilings and print their JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="1-point messages")
    parser.add_argument("--points", type=int, default=200_000, help="InfluxDB points")
    parser.add_argument("--rtt-seconds", type=float, default=12.0, help="round-trip window")
    args = parser.parse_args(argv)
    rtt = round_trips(args.rtt_seconds)
    q = statistics.quantiles(rtt, n=100, method="inclusive")
    result = {
        "paho_subscriber_messages_per_s": round(paho_subscriber(args.messages, 1)),
        "paho_subscriber_readings_per_s_100pt": round(
            paho_subscriber(max(args.messages // 20, 1), 100) * 100
        ),
        "influx_write_points_per_s": round(influx_write(args.points)),
        "mosquitto_round_trip_p50_ms": round(q[49], 3),
        "mosquitto_round_trip_p99_ms": round(q[98], 3),
        "mosquitto_round_trip_max_ms": round(max(rtt), 3),
        "sizes": {
            "messages": args.messages,
            "points": args.points,
            "round_trips": len(rtt),
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
