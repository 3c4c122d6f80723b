"""Publish a simulation to an MQTT broker the way the plant's gateways would.

One MQTT client per gateway (ingest's paho adapter, `ingest.mqtt.MqttLink`), each with its
retained `offline` status as last will and a retained `online` status on connect; telemetry
batches QoS 1 on `{prefix}/{enterprise}/{gateway}/telemetry`, paced at `speed` simulated seconds
per wall second (0 = as fast as the broker acknowledges). A scenario outage publishes the
retained `offline` status (what the broker sends as the will when a gateway vanishes) and closes
the client; the gateway reconnects when the outage ends.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from hazardwatch.settings import MqttSettings
from ingest.mqtt import LinkOptions, MqttLink
from ingest.protocol import encode_status
from simulators.engine import Simulation
from simulators.gateway import GatewayFleet, Publication

WAIT_EVERY = 500  # wait for broker acks every this many publishes: bounded memory, real QoS 1
ACK_TIMEOUT_S = 30.0


@dataclass
class PublishStats:
    """What a run put on the wire."""

    batches: int = 0
    readings: int = 0
    status_messages: int = 0
    wall_s: float = 0.0


class _Gateways:
    def __init__(self, sim: Simulation, fleet: GatewayFleet, settings: MqttSettings):
        self.sim, self.fleet, self.settings = sim, fleet, settings
        self.links: dict[str, MqttLink[None]] = {}

    def connect(self, gateway: str, at_ms: int) -> MqttLink[None]:
        will = (self.fleet.status(gateway), encode_status(gateway, "offline", at_ms))
        options = LinkOptions(
            client_id=f"hw-sim-{gateway}-{self.sim.seed}", clean_start=True, will=will
        )
        link: MqttLink[None] = MqttLink(self.settings, options, lambda *_: None)
        link.start()
        online = encode_status(gateway, "online", at_ms)
        link.publish(self.fleet.status(gateway), online, retain=True).wait_for_publish(
            ACK_TIMEOUT_S
        )
        self.links[gateway] = link
        return link

    def go_offline(self, gateway: str, at_ms: int) -> None:
        link = self.links.pop(gateway, None)
        if link is None:
            return
        offline = encode_status(gateway, "offline", at_ms)
        link.publish(self.fleet.status(gateway), offline, retain=True).wait_for_publish(
            ACK_TIMEOUT_S
        )
        link.stop()

    def close(self) -> None:
        for link in self.links.values():
            link.stop()
        self.links.clear()


def publish_simulation(
    sim: Simulation,
    url: str,
    prefix: str,
    speed: float,
    show_progress: bool,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run `sim` onto the broker at `url`; exit code 0 (prints a summary on stderr)."""
    stats = run_to_broker(sim, url, prefix, speed, clock=clock, sleep=sleep)
    print(
        f"{stats.readings} readings in {stats.batches} batches "
        f"({stats.status_messages} status changes) published in {stats.wall_s:.2f} s",
        file=sys.stderr,
    )
    return 0


def run_to_broker(
    sim: Simulation,
    url: str,
    prefix: str,
    speed: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PublishStats:
    """Publish every batch and status change of `sim`; returns counts."""
    settings = MqttSettings(url=url, topic_prefix=prefix, client_id="hw-sim")
    fleet = GatewayFleet(sim, prefix)
    gateways = _Gateways(sim, fleet, settings)
    stats = PublishStats()
    started = clock()
    pending: list[object] = []
    first_ms: int | None = None

    def pace(at_ms: int) -> None:
        nonlocal first_ms
        if speed <= 0:
            return
        if first_ms is None:
            first_ms = at_ms
        ahead = started + (at_ms - first_ms) / 1000.0 / speed - clock()
        if ahead > 0:
            sleep(ahead)

    def send(pub: Publication) -> None:
        pace(pub.at_ms)
        if pub.kind == "offline":
            gateways.go_offline(pub.gateway, pub.at_ms)
            stats.status_messages += 1
            return
        if pub.kind == "online":
            gateways.connect(pub.gateway, pub.at_ms)
            stats.status_messages += 1
            return
        link = gateways.links.get(pub.gateway) or gateways.connect(pub.gateway, pub.at_ms)
        pending.append(link.publish(pub.topic, pub.payload, qos=1))
        stats.batches += 1
        stats.readings += pub.points
        if len(pending) >= WAIT_EVERY:
            _wait(pending)

    try:
        for gateway in sim.gateways:
            gateways.connect(gateway, sim.start_ms)
        for chunk in sim.chunks():
            for pub in fleet.publications(chunk):
                send(pub)
        for pub in fleet.flush():
            send(pub)
        _wait(pending)
    finally:
        gateways.close()
    stats.wall_s = clock() - started
    return stats


def _wait(pending: list[object]) -> None:
    for info in pending:
        info.wait_for_publish(ACK_TIMEOUT_S)  # type: ignore[attr-defined]
    pending.clear()
