"""Reachability of the services a hazardwatch process depends on (used by `demo`, `/healthz`)."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import httpx

from hazardwatch.settings import Settings


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    """One service's state: `ok`, its address, round-trip in ms and a human-readable detail."""

    name: str
    address: str
    ok: bool
    latency_ms: float
    detail: str


def _tcp(name: str, host: str, port: int) -> ServiceHealth:
    start = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=2.0):
            pass
    except OSError as exc:
        return ServiceHealth(name, f"{host}:{port}", False, 0.0, f"unreachable: {exc}")
    return ServiceHealth(name, f"{host}:{port}", True, (time.perf_counter() - start) * 1e3, "open")


def check_mqtt(settings: Settings) -> ServiceHealth:
    """TCP check of the MQTT broker."""
    url = urlparse(settings.mqtt.url)
    return _tcp("mosquitto", url.hostname or "127.0.0.1", url.port or 1883)


def check_kafka(settings: Settings) -> ServiceHealth:
    """TCP check of the first Kafka bootstrap server."""
    host, port = settings.kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)
    return _tcp("kafka", host, int(port))


def check_influx(settings: Settings) -> ServiceHealth:
    """InfluxDB `/ping` (204 and a version header on 1.8 and 2.x)."""
    start = time.perf_counter()
    try:
        resp = httpx.get(f"{settings.influx.url}/ping", timeout=2.0)
    except httpx.HTTPError as exc:
        return ServiceHealth("influxdb", settings.influx.url, False, 0.0, f"unreachable: {exc}")
    latency = (time.perf_counter() - start) * 1e3
    version = resp.headers.get("X-Influxdb-Version", "?")
    ok = resp.status_code == 204
    return ServiceHealth("influxdb", settings.influx.url, ok, latency, f"version {version}")


def check_all(settings: Settings) -> list[ServiceHealth]:
    """Health of Mosquitto, Kafka and InfluxDB, in that order."""
    return [check_mqtt(settings), check_kafka(settings), check_influx(settings)]
