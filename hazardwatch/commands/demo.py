"""`hazardwatch demo`: a simulated plant through the embedded runner, on the local services.

The scenario's gateways publish to Mosquitto (accelerated by `--speed`) under a topic prefix of
this run; the embedded runner takes them through the engine into InfluxDB and the alert outbox,
whose webhooks go to a receiver the demo starts on 127.0.0.1; a live board (rich) shows every
hazard source's colour, the active alarms and the last alerts. A terminal gets the live board,
anything else a plain summary every few seconds. It ends when the scenario has been played and
everything is written and delivered (or on Ctrl-C), then says where Grafana would connect.

The scenario is moved by whole days so that it ends before now: its clock times (`at: "03:00"`)
keep their meaning and the gateways' timestamps are in the past, as the decoder requires. The
engine's timers follow the scenario's own clock (the readings), not the wall clock.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, RenderableType

from hazardwatch.commands import config_failure
from hazardwatch.commands.services import render
from hazardwatch.demo_board import Board
from hazardwatch.errors import HazardwatchError
from hazardwatch.health import check_influx, check_mqtt
from hazardwatch.plant.loader import load_plant
from hazardwatch.plant.model import Plant
from hazardwatch.region import city_of, province_of
from hazardwatch.settings import Settings, load_settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEFAULT_SCENARIO = EXAMPLES / "scenarios" / "buncefield-overfill.yaml"
SECRET_ENV = "HW_DEMO_WEBHOOK_SECRET"
PLAY_S = 90.0  # default pace: the whole scenario in about this many wall seconds
DRAIN_TIMEOUT_S = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Scenario, pace, simulated span, settings file and display mode."""
    parser.add_argument(
        "--scenario",
        type=Path,
        default=DEFAULT_SCENARIO,
        help="scenario YAML (default: examples/scenarios/buncefield-overfill)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        help=f"simulated seconds per second (default: the scenario in ~{PLAY_S:.0f} s)",
    )
    parser.add_argument("--duration", help="play only this much of the scenario, e.g. 40m, 2h")
    parser.add_argument("--config", type=Path, help="hazardwatch.toml (services, database)")
    parser.add_argument("--every", type=float, default=5.0,
                        help="seconds between summaries when not on a terminal")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Play the scenario through the pipeline; 0 when it ran (or was stopped with Ctrl-C)."""
    console = Console(stderr=False)
    try:
        settings = load_settings(args.config)
        sim, plant, plant_path = _simulation(args)
    except (HazardwatchError, ValueError) as exc:
        return config_failure("hazardwatch demo", exc)
    health = [check_mqtt(settings), check_influx(settings)]
    if not all(h.ok for h in health):
        render(health, console)
        console.print("Start the services with [bold]scripts/services up[/bold] (or `make demo`).")
        return 1
    speed = args.speed if args.speed else max(1.0, sim.duration_s / PLAY_S)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="hazardwatch-demo-") as tmp:
        runner_settings = _runner_settings(settings, plant_path, Path(tmp))
        return _play(runner_settings, sim, plant, speed, console, args.every)


def _simulation(args: argparse.Namespace) -> tuple[Any, Plant, Path]:
    from simulators.engine import Simulation
    from simulators.scenario import load_scenario

    scenario, plant_path = load_scenario(args.scenario)
    plant = load_plant(plant_path)
    update: dict[str, Any] = {}
    if args.duration:
        update["duration"] = args.duration
    if update:
        scenario = scenario.model_validate({**scenario.model_dump(by_alias=True), **update})
    # Whole days keep the scenario's clock times; ending before now keeps every timestamp past.
    now_s = time.time()
    days = int((now_s - scenario.start.timestamp() - scenario.duration_s) // 86_400)
    start = scenario.start + timedelta(days=days)
    scenario = scenario.model_validate({**scenario.model_dump(by_alias=True), "start": start})
    return Simulation(plant, scenario), plant, plant_path


def _policy(plant: Plant, hook_url: str) -> dict[str, Any]:
    """The examples' risk policy; one webhook recipient per tier and area of the plant."""
    example = EXAMPLES / "policy.yaml"
    risk = yaml.safe_load(example.read_text("utf-8")).get("risk", {}) if example.exists() else {}
    channel = [{"type": "webhook", "url": hook_url, "secret_env": SECRET_ENV}]
    recipients = []
    for e in plant.enterprises:
        recipients.append({"id": f"{e.id}-control-room", "name": f"{e.name} control room",
                           "tier": "enterprise", "area": e.id, "channels": channel})  # fmt: skip
    for county in sorted({e.region for e in plant.enterprises}):
        for tier, area in (("county", county), ("city", city_of(county)),
                           ("province", province_of(county))):  # fmt: skip
            recipients.append({"id": f"{tier}-{area}", "name": f"{tier} {area}", "tier": tier,
                               "area": area, "channels": channel})  # fmt: skip
    return {
        "risk": risk,
        "routing": {
            "rate_limit": {"count": 10_000, "per_s": 60},
            "delivery": {
                "max_attempts": 5,
                "backoff_initial_s": 0.2,
                "backoff_max_s": 2,
                "timeout_s": 5,
            },
            "recipients": recipients,
        },
    }


class WebhookReceiver:
    """A local webhook endpoint: verifies signatures and shows each notice on the board."""

    def __init__(self, secret: str, board: Board) -> None:
        from alerting.channels.webhook import verify_webhook

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    verify_webhook(secret, dict(self.headers.items()), body, time.time())
                    board.on_alert(json.loads(body))
                    self.send_response(204)
                except Exception:  # a bad request is refused, never a crash of the demo
                    self.send_response(401)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _StoppedError(Exception):
    """Raised inside the publisher's pacing sleep when the demo stops early."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _runner_settings(settings: Settings, plant_path: Path, tmp: Path) -> Settings:
    """The embedded runner of this run: its own data, topic prefix, client id and ports."""
    run_id = secrets.token_hex(4)
    return settings.model_copy(update={
        "plant": plant_path,
        "policy": tmp / "policy.yaml",
        "data_dir": tmp / "data",
        "mqtt": settings.mqtt.model_copy(update={"topic_prefix": f"demo/{run_id}",
                                                  "client_id": f"hazardwatch-demo-{run_id}"}),
        "http": settings.http.model_copy(update={"port": _free_port(), "api_port": _free_port()}),
    })  # fmt: skip


def _play(settings: Settings, sim: Any, plant: Plant, speed: float, console: Console,
          every_s: float) -> int:  # fmt: skip
    from simulators.mqtt_run import run_to_broker
    from stream.runners.embedded import EmbeddedRunner

    prefix = settings.mqtt.topic_prefix
    board = Board(plant, f"hazardwatch demo — {sim.scenario.title}")
    os.environ.setdefault(SECRET_ENV, secrets.token_hex(16))
    assert settings.policy is not None
    with WebhookReceiver(os.environ[SECRET_ENV], board) as receiver:
        settings.policy.write_text(yaml.safe_dump(_policy(plant, receiver.url)), "utf-8")
        runner = EmbeddedRunner(settings, timer_clock=None, listeners=[board.on_events])
        stop_runner, stop_publisher = threading.Event(), threading.Event()
        runner_thread = threading.Thread(target=runner.run, args=(stop_runner,), daemon=True)
        runner_thread.start()

        def pace(seconds: float) -> None:
            if stop_publisher.wait(seconds):
                raise _StoppedError

        published = threading.Event()
        failure: list[BaseException] = []

        def publish() -> None:
            try:
                run_to_broker(sim, settings.mqtt.url, prefix, speed, sleep=pace)
            except _StoppedError:
                pass
            except Exception as exc:  # shown on the console, the demo then ends
                failure.append(exc)
            finally:
                published.set()

        publisher = threading.Thread(target=publish, daemon=True)
        interrupted = False
        final: dict[str, Any] = {}
        try:
            if not _wait(lambda: runner.link.connected or not runner_thread.is_alive(), 30) or (
                not runner_thread.is_alive()
            ):
                console.print("[red]the runner did not connect to MQTT within 30 s[/red]")
                return 1
            _intro(console, sim, speed)
            publisher.start()
            if not _show(console, board, runner, sim, published, every_s):
                console.print(f"[yellow]not drained within {DRAIN_TIMEOUT_S:.0f} s after the "
                              "last message; stopping anyway[/yellow]")  # fmt: skip
        except KeyboardInterrupt:
            interrupted = True
        finally:
            stop_publisher.set()
            if publisher.is_alive():
                publisher.join(30)
            final = _counters(runner, sim, board)
            stop_runner.set()
            runner_thread.join(60)
            _clear_status(settings, sim, prefix)
    if failure:
        console.print(f"[red]publishing failed: {failure[0]}[/red]")
        return 1
    # A terminal keeps the last frame of the live board; elsewhere print everything once more.
    print(board.summary(final, full=not console.is_terminal), flush=True)
    if interrupted:
        print("stopped by Ctrl-C", flush=True)
    _grafana(console, settings, sim)
    return 0


def _wait(check: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def _counters(runner: Any, sim: Any, board: Board | None = None) -> dict[str, Any]:
    clock = runner.pipeline.engine.clock_ms
    if board is not None:
        board.observe_clock(clock)
    played = 0.0 if clock is None else (clock - sim.start_ms) / 1000 / max(sim.duration_s, 1)
    return {
        "played": f"{100 * min(max(played, 0.0), 1.0):.0f}%",
        "readings": runner.ingest.decoder.counters.readings_accepted,
        "written": runner.sink.stats.written,
        "delivered": runner.alerting.service.outbox.counts().get("delivered", 0),
    }


def _show(console: Console, board: Board, runner: Any, sim: Any, published: threading.Event,
          every_s: float) -> bool:  # fmt: skip
    """Until published and drained: a live board on a terminal, else periodic summaries.
    False when the pipeline did not drain in time."""
    if console.is_terminal:
        from rich.live import Live

        def frame() -> RenderableType:
            return board.render(_counters(runner, sim, board))

        with Live(frame(), console=console, refresh_per_second=4) as live:
            return _until(published, runner.idle, lambda: live.update(frame()))
    next_at = 0.0

    def summary() -> None:
        nonlocal next_at
        if time.monotonic() >= next_at:
            next_at = time.monotonic() + every_s
            print(board.summary(_counters(runner, sim, board)), flush=True)

    return _until(published, runner.idle, summary)


def _until(published: threading.Event, idle: Callable[[], bool], refresh: Callable[[], None],
           period_s: float = 0.25) -> bool:  # fmt: skip
    """Refresh until everything is published and the runner was idle twice in a row."""
    drained_once = False
    deadline: float | None = None
    while True:
        refresh()
        if published.is_set():
            deadline = deadline or time.monotonic() + DRAIN_TIMEOUT_S
            if idle():
                if drained_once:
                    return True
                drained_once = True
            else:
                drained_once = False
            if time.monotonic() > deadline:
                return False
        time.sleep(period_s)


def _intro(console: Console, sim: Any, speed: float) -> None:
    minutes = sim.duration_s / speed / 60
    console.print(f"[bold]{sim.scenario.title}[/bold] — {len(sim.tags)} tags, "
                  f"{sim.duration_s / 3600:.1f} h of plant time at {speed:.0f}× "
                  f"(≈ {minutes:.1f} min); Ctrl-C stops.")  # fmt: skip


def _clear_status(settings: Settings, sim: Any, prefix: str) -> None:
    """Remove this run's traces from the broker: the runner's persistent session (kept a week
    otherwise) and the retained gateway status messages."""
    from ingest.mqtt import LinkOptions, MqttLink
    from ingest.protocol import status_topic

    with contextlib.suppress(Exception):
        session: MqttLink[None] = MqttLink(
            settings.mqtt, LinkOptions(client_id=settings.mqtt.client_id, clean_start=True,
                                       session_expiry_s=0), lambda *a: None)  # fmt: skip
        session.start(10)
        session.stop()
    with contextlib.suppress(Exception):
        link: MqttLink[None] = MqttLink(
            settings.mqtt, LinkOptions(client_id=f"{prefix.replace('/', '-')}-cleanup",
                                       clean_start=True), lambda *a: None)  # fmt: skip
        link.start(10)
        infos = [link.publish(status_topic(prefix, sim.enterprise_of_gateway[g], g), b"",
                              retain=True) for g in sim.gateways]  # fmt: skip
        for info in infos:
            info.wait_for_publish(5)
        link.stop()


def _grafana(console: Console, settings: Settings, sim: Any) -> None:
    influx = settings.influx
    end_ms = sim.start_ms + int(sim.duration_s * 1000)
    from stream.events import format_ts

    console.print(
        "\nGrafana: add an InfluxDB data source named [bold]hazardwatch-influxdb[/bold] "
        f"(query language InfluxQL, URL {influx.url}, database [bold]{influx.database}[/bold], "
        f"retention policy {influx.retention_policy}); import dashboards/json/*.json or run "
        "`hazardwatch dashboards push --grafana URL --token T` (docker compose provisions both). "
        f"This run's data lies between {format_ts(sim.start_ms)[:16]} and "
        f"{format_ts(end_ms)[:16]} UTC.",
        soft_wrap=True,
    )
