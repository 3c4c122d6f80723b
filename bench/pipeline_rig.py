"""The rig of bench/pipeline.py: a generated plant, its gateways, the runner as a child process,
a webhook receiver and the publishers (background load, probes).

The plant: enterprises of 10 gateways × 100 tags, every gateway reporting every 10 s (so 100,000
tags make 10,000 readings/s), hazard sources of 10 units × 10 temperature tags (H 80, HH 90),
plus a probe enterprise with one single-tag source per alert-latency probe (H 80, no on-delay).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hazardwatch.settings import load_settings  # noqa: E402
from ingest.mqtt import LinkOptions, MqttLink  # noqa: E402
from ingest.protocol import encode_batch, telemetry_topic  # noqa: E402
from stream.sinks.lines import ReadingLines  # noqa: E402

SECRET = "bench-pipeline-secret"
PER_GATEWAY = 100
GATEWAYS_PER_ENTERPRISE = 10
TAGS_PER_UNIT = 10
UNITS_PER_SOURCE = 10
PROBE_ENTERPRISE, PROBE_GATEWAY = "EPROBE", "GPROBE"
INTERVAL_MS = 10_000  # every gateway reports every 10 s: 100,000 tags make 10,000 readings/s


# -- the generated plant ----------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Who carries which tag in the generated plant."""

    tags: int
    probes: int

    @property
    def gateways(self) -> int:
        return (self.tags + PER_GATEWAY - 1) // PER_GATEWAY

    def gateway_tags(self, g: int) -> list[str]:
        return [f"T{i}" for i in range(g * PER_GATEWAY, min(self.tags, (g + 1) * PER_GATEWAY))]

    @staticmethod
    def enterprise_of(g: int) -> str:
        return f"E{g // GATEWAYS_PER_ENTERPRISE}"

    def source_of(self, tag: int) -> int:
        return tag // (TAGS_PER_UNIT * UNITS_PER_SOURCE)


def plant_yaml(layout: Layout) -> str:
    """Enterprises of 10 gateways × 100 tags; sources of 10 units × 10 temperature tags."""
    out = ["version: 1", "enterprises:"]
    n_ent = (layout.gateways + GATEWAYS_PER_ENTERPRISE - 1) // GATEWAYS_PER_ENTERPRISE
    for e in range(n_ent):
        out.append(f'  - {{id: E{e}, name: E{e}, region: "410102", industry: other}}')
    out.append(f'  - {{id: {PROBE_ENTERPRISE}, name: probes, region: "410102", industry: other}}')
    out.append("gateways:")
    for g in range(layout.gateways):
        tags = ", ".join(layout.gateway_tags(g))
        out.append(f"  - {{id: G{g}, enterprise: {layout.enterprise_of(g)}, "
                   f"interval_s: {INTERVAL_MS // 1000}, "
                   f"tags: [{tags}]}}")  # fmt: skip
    probes = ", ".join(f"P{i}" for i in range(layout.probes))
    out.append(f"  - {{id: {PROBE_GATEWAY}, enterprise: {PROBE_ENTERPRISE}, interval_s: 3600, "
               f"tags: [{probes}]}}")  # fmt: skip
    out.append("hazard_sources:")
    per_source = TAGS_PER_UNIT * UNITS_PER_SOURCE
    for s in range((layout.tags + per_source - 1) // per_source):
        first = s * per_source
        enterprise = layout.enterprise_of(first // PER_GATEWAY)
        out.append(f"  - {{id: S{s}, enterprise: {enterprise}, name: S{s}, kind: process_unit, "
                   f"grade: {1 + s % 4}, units: [")  # fmt: skip
        for u in range(UNITS_PER_SOURCE):
            base = first + u * TAGS_PER_UNIT
            if base >= layout.tags:
                break
            tags = ", ".join(
                f"{{id: T{i}, name: T{i}, quantity: temperature, unit: C, range: [0, 100], "
                f"limits: {{H: 80, HH: 90}}}}"
                for i in range(base, min(layout.tags, base + TAGS_PER_UNIT))
            )
            out.append(f"      {{id: S{s}U{u}, name: U{u}, tags: [{tags}]}},")
        out.append("    ]}")
    out += probe_sources(layout.probes)
    return "\n".join(out) + "\n"


def probe_sources(probes: int) -> list[str]:
    """Plant lines of the probe hazard sources, one each: every probe reading is a first raise."""
    return [
        f"  - {{id: SP{i}, enterprise: {PROBE_ENTERPRISE}, name: SP{i}, kind: process_unit, "
        f"grade: 1, units: [{{id: SP{i}U, name: U, tags: [{{id: P{i}, name: P{i}, "
        f"quantity: temperature, unit: C, range: [0, 100], limits: {{H: 80}}, on_delay_s: 0, "
        f"off_delay_s: 0}}]}}]}}"
        for i in range(probes)
    ]


def policy_yaml(hook_url: str) -> str:
    """One webhook recipient for the probe enterprise; no rate limit in the way."""
    return f"""
risk: {{}}
routing:
  rate_limit: {{count: 1000000, per_s: 1}}
  delivery: {{max_attempts: 3, backoff_initial_s: 0.1, backoff_max_s: 1, timeout_s: 5}}
  recipients:
    - id: probe-control-room
      tier: enterprise
      area: {PROBE_ENTERPRISE}
      channels:
        - {{type: webhook, url: "{hook_url}", secret_env: HW_BENCH_WEBHOOK_SECRET}}
"""


@dataclass(frozen=True)
class _Tag:
    """The fields ReadingLines reads from a resolved tag."""

    id: str
    enterprise: str
    source: str
    unit: str
    quantity: str = "temperature"


def reading_lines(layout: Layout, rounds: int, t0: int) -> list[str]:
    """The `reading_v1` lines the pipeline writes for `rounds` rounds (for the ceiling)."""
    import numpy as np

    tags = [
        _Tag(f"T{i}", layout.enterprise_of(i // PER_GATEWAY), f"S{layout.source_of(i)}",
             f"S{layout.source_of(i)}U{(i // TAGS_PER_UNIT) % UNITS_PER_SOURCE}")
        for i in range(layout.tags)
    ]  # fmt: skip
    lines = ReadingLines(tags)  # type: ignore[arg-type]
    idx = np.arange(layout.tags, dtype=np.int32)
    out: list[str] = []
    for r in range(rounds):
        values = 20.0 + (idx + r) % 40 + 0.25
        ts = np.full(layout.tags, t0 + r * INTERVAL_MS, dtype=np.int64)
        out += lines.lines(idx, ts, values, np.zeros(layout.tags, np.int8))
    return out


# -- webhook receiver (own process) ---------------------------------------------------------
def webhook_receiver(port: int) -> None:
    from aiohttp import web

    from alerting.channels.webhook import verify_webhook

    first: dict[str, float] = {}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        arrived = time.time()
        verify_webhook(SECRET, dict(request.headers), body, arrived)
        source = orjson.loads(body).get("source") or ""
        first.setdefault(source, arrived)
        return web.Response(status=204)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(first)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the runner -------------------------------------------------------------------------------
class Runner:
    """`hazardwatch run` as a child process, with its metrics and resident set."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.port = env["HAZARDWATCH_HTTP__PORT"]
        # One client for the whole run: the throughput phase polls every 50 ms, and a new
        # client per call builds an SSL context each time — measured at 0.4 of a core taken
        # from the runner under test on this 2-core machine.
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)
        handle = open(log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen([sys.executable, "-m", "hazardwatch.cli", "run"], env=env,
                                     stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)  # fmt: skip

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"runner exited {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.5)
        raise SystemExit(f"runner not healthy within {timeout_s:.0f} s:\n{self.tail()}")

    def metric(self, name: str, labels: str = "") -> float:
        text = self.http.get("/metrics").text
        prefix = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(prefix + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def written(self) -> float:
        return self.metric("hazardwatch_influx_lines_total", 'outcome="written"')

    def memory(self) -> dict[str, int]:
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
        return fields

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9

    def tail(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")[-3000:]


# -- publishing -------------------------------------------------------------------------------
class Gateways:
    """Pre-encodes 100-point gateway messages with rising sequence numbers."""

    def __init__(self, layout: Layout, prefix: str) -> None:
        self.layout, self.prefix = layout, prefix
        self.seq = [0] * layout.gateways

    def message(self, g: int, ts_ms: int, r: int) -> tuple[str, bytes]:
        self.seq[g] += 1
        tags = self.layout.gateway_tags(g)
        base = g * PER_GATEWAY
        points = [(t, ts_ms, 20.0 + (base + k + r) % 40 + 0.25, 0) for k, t in enumerate(tags)]
        topic = telemetry_topic(self.prefix, self.layout.enterprise_of(g), f"G{g}")
        return topic, encode_batch(f"G{g}", self.seq[g], ts_ms, points)

    def rounds(
        self, rounds: int, t0: int, gateways: range | None = None
    ) -> list[tuple[str, bytes]]:
        chosen = gateways or range(self.layout.gateways)
        return [self.message(g, t0 + r * INTERVAL_MS, r) for r in range(rounds) for g in chosen]


def publisher(name: str) -> MqttLink[None]:
    settings = load_settings().mqtt
    link: MqttLink[None] = MqttLink(
        settings, LinkOptions(client_id=f"bench-{name}-{uuid.uuid4().hex[:6]}", clean_start=True),
        lambda *a: None,
    )  # fmt: skip
    link.start()
    return link


def forget_session(client_id: str) -> None:
    """End the runner's persistent MQTT session (the broker would keep it for a week)."""
    settings = load_settings().mqtt
    options = LinkOptions(client_id=client_id, clean_start=True, session_expiry_s=0)
    link: MqttLink[None] = MqttLink(settings, options, lambda *a: None)
    link.start()
    link.stop()


def publish_all(link: MqttLink[None], messages: list[tuple[str, bytes]]) -> None:
    for start in range(0, len(messages), 500):  # bounded memory, real QoS 1 acknowledgements
        link.publish_all(messages[start : start + 500], timeout_s=120)


def plant_ms(offset_ms: int) -> int:
    """The plant's clock: the wall clock plus an offset (rounds ran ahead of the wall clock)."""
    return int(time.time() * 1000) + offset_ms


def background_load(
    prefix: str, tags: int, rate: float, offset_ms: int, stop: Any, seq0: list[int]
) -> None:
    """Another process: `rate` readings/s of normal values, every gateway in turn, so that
    no tag goes stale (a stale storm would be a different benchmark)."""
    layout = Layout(tags, 0)
    fleet = Gateways(layout, prefix)
    fleet.seq = list(seq0)
    link = publisher("background")
    period = PER_GATEWAY / rate
    next_at = time.monotonic()
    g = r = 0
    while not stop.is_set():
        topic, body = fleet.message(g, plant_ms(offset_ms), r)
        link.publish(topic, body)
        g += 1
        if g == layout.gateways:
            g, r = 0, r + 1
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    link.stop()
