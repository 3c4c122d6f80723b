"""End-to-end benchmark of the embedded runner (`hazardwatch run`) against the local services.

    python -m bench.pipeline [--tags 100000] [--rounds 10] [--probes 100] [--background 10000]

One runner process serves a generated plant of `--tags` tags (100 per gateway, all reporting
every second, normal values; plus one probe tag per hazard source of a probe enterprise). Keys:

- `influx_ceiling_points_per_s`: InfluxDB's raw line-protocol write ceiling in the same run —
  the same `reading_v1` lines (same series, same round timestamps) pre-built and pre-compressed
  (gzip 1, like the sink), POSTed to `/api/v2/write` in 5,000-line batches to a scratch database
  by one and by two concurrent writers before the throughput phase, and by two right after it;
  the best of the three;
- `pipeline_readings_per_s`: `--rounds` rounds of every tag (100-point gateway messages, QoS 1,
  pre-encoded, published as fast as the broker takes them by bench/bulk_publisher.py, which
  leaves the CPU to the runner and InfluxDB) from the first publish until the runner reports
  them written; InfluxDB is then queried back and must hold exactly that many
  `reading_v1` points, else the benchmark fails;
- `alert_latency_p50_ms` / `_p99_ms`: while a second process publishes `--background`
  readings/s, a probe message drives one probe tag over its H limit every 200 ms; latency is
  from just before the probe's publish to the first signed webhook about that source reaching a
  local receiver (its own process, signatures verified);
- `rss_bytes_100k_tags`: the runner's resident set (VmRSS) after those phases, with `--tags`
  100,000 (`rss_tags` says how many were used; `rss_peak_bytes` is VmHWM, which includes the
  plant file's parse at start);
- `worker_readings_per_s`, `kafka_alert_latency_p99_ms`: merged from
  `bench.pipeline_worker.measure()` when that module exists; otherwise null with the reason.

Prints one JSON object on stdout (progress on stderr), including `targets` and `targets_met`.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bulk_publisher import BulkPublisher  # noqa: E402
from bench.pipeline_rig import (  # noqa: E402
    INTERVAL_MS,
    PER_GATEWAY,
    PROBE_ENTERPRISE,
    PROBE_GATEWAY,
    SECRET,
    Gateways,
    Layout,
    Runner,
    background_load,
    forget_session,
    free_port,
    plant_ms,
    plant_yaml,
    policy_yaml,
    publish_all,
    publisher,
    reading_lines,
    webhook_receiver,
)
from hazardwatch.settings import load_settings  # noqa: E402
from ingest.protocol import encode_batch, telemetry_topic  # noqa: E402

MAX_ROUNDS = 25  # rounds run ahead of the wall clock; the decoder refuses > 5 min ahead
BATCH_LINES = 5000
TARGETS = {
    "pipeline_readings_per_s": (">=", 100_000),
    "pipeline_vs_influx_ceiling": (">=", 0.5),
    "alert_latency_p99_ms": ("<=", 50),
    "kafka_alert_latency_p99_ms": ("<=", 500),
}


def log(message: str) -> None:
    print(f"[bench.pipeline] {message}", file=sys.stderr, flush=True)


# -- InfluxDB ---------------------------------------------------------------------------------
def influx_query(url: str, db: str, q: str) -> list[Any]:
    resp = httpx.get(f"{url}/query", params={"db": db, "q": q}, timeout=120)
    resp.raise_for_status()
    series = resp.json()["results"][0].get("series", [])
    return series[0]["values"] if series else []


def influx_ceiling(url: str, lines: list[str], writers: int) -> float:
    """Points/s of pre-compressed 5,000-line bodies POSTed by `writers` concurrent clients."""
    db = f"bench_ceiling_{uuid.uuid4().hex[:8]}"
    bodies = [
        gzip.compress(("\n".join(lines[i : i + BATCH_LINES]) + "\n").encode(), 1)
        for i in range(0, len(lines), BATCH_LINES)
    ]
    httpx.post(f"{url}/query", params={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()
    todo = iter(bodies)
    lock = threading.Lock()
    failures: list[str] = []

    def writer() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while True:
                with lock:
                    body = next(todo, None)
                if body is None:
                    return
                resp = client.post("/api/v2/write", params={"bucket": f"{db}/autogen",
                                   "precision": "ms"}, content=body,
                                   headers={"Content-Encoding": "gzip"})  # fmt: skip
                if resp.status_code != 204:
                    failures.append(resp.text[:200])

    try:
        started = time.perf_counter()
        threads = [threading.Thread(target=writer) for _ in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        if failures:
            raise SystemExit(f"ceiling invalid: {failures[0]}")
    finally:
        httpx.post(f"{url}/query", params={"q": f'DROP DATABASE "{db}"'})
    return len(lines) / elapsed


# -- phases -----------------------------------------------------------------------------------
def throughput(runner: Runner, fleet: Gateways, rounds: int, url: str, db: str) -> dict[str, Any]:
    """Readings/s from the first publish until the runner wrote them; verified in InfluxDB."""
    layout = fleet.layout
    t0 = int(time.time() * 1000) + INTERVAL_MS
    messages = fleet.rounds(rounds, t0)
    expected = len(messages) * PER_GATEWAY
    before = runner.written()
    link = BulkPublisher(name="throughput")  # lean: the gateways are not the runner's CPU
    packets = link.encode(messages)
    started = time.perf_counter()
    sender = threading.Thread(target=link.send, args=(packets, 600))
    sender.start()
    deadline = time.monotonic() + 600
    while runner.written() - before < expected:
        if time.monotonic() > deadline or runner.proc.poll() is not None:
            raise SystemExit(f"throughput run stalled:\n{runner.tail()}")
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    sender.join()
    published_s = time.perf_counter() - started
    link.close()
    rows = influx_query(url, db, 'SELECT count("v") FROM "reading_v1"')
    stored = int(rows[0][1]) if rows else 0
    stored -= layout.tags  # the warm-up round
    if stored != expected:
        raise SystemExit(f"bench invalid: InfluxDB holds {stored} readings, expected {expected}")
    return {"readings": expected, "elapsed_s": round(elapsed, 3),
            "readings_per_s": expected / elapsed, "publish_s": round(published_s, 3),
            "last_ts_ms": t0 + (rounds - 1) * INTERVAL_MS}  # fmt: skip


def latency(runner: Runner, fleet: Gateways, probes: int, background: int, receiver: str,
            last_ts_ms: int) -> dict[str, Any]:  # fmt: skip
    """Probe alarms under background load: publish → first webhook about the probe's source.

    Plant time continues from the throughput rounds (ahead of the wall clock), so no reading
    is late and no tag goes stale."""
    stop = multiprocessing.Event()
    offset = max(0, last_ts_ms + INTERVAL_MS - int(time.time() * 1000))
    bg = multiprocessing.Process(target=background_load, args=(
        fleet.prefix, fleet.layout.tags, float(background), offset, stop, fleet.seq))  # fmt: skip
    bg.start()
    link = publisher("probe")
    topic = telemetry_topic(fleet.prefix, PROBE_ENTERPRISE, PROBE_GATEWAY)
    sent: dict[str, float] = {}
    try:
        time.sleep(2.0)  # background load running
        for i in range(probes):
            now_ms = plant_ms(offset)
            body = encode_batch(PROBE_GATEWAY, i + 1, now_ms, [(f"P{i}", now_ms, 85.0, 0)])
            sent[f"SP{i}"] = time.time()
            link.publish(topic, body)
            time.sleep(0.2)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            arrived = httpx.get(f"{receiver}/stats", timeout=5).json()
            if all(s in arrived for s in sent):
                break
            time.sleep(0.2)
    finally:
        stop.set()
        bg.join(10)
        link.stop()
    latencies = sorted((arrived[s] - t) * 1000 for s, t in sent.items() if s in arrived)
    missing = len(sent) - len(latencies)
    if len(latencies) < 2:
        raise SystemExit(f"latency invalid: {len(latencies)} of {probes} probes alerted\n"
                         f"{runner.tail()}")  # fmt: skip
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50": q[49], "p99": q[98], "max": latencies[-1], "missing": missing,
            "plant_ahead_of_wall_ms": offset}  # fmt: skip


def worker_figures() -> dict[str, Any]:
    """The faust worker's figures from bench/pipeline_worker.py, or null with the reason."""
    keys = ("worker_readings_per_s", "kafka_alert_latency_p99_ms")
    try:
        from bench import pipeline_worker  # type: ignore[attr-defined]
    except ModuleNotFoundError as exc:
        return {**dict.fromkeys(keys), "worker_not_measured": f"bench/pipeline_worker.py: {exc}"}
    try:
        figures = dict(pipeline_worker.measure())
    except (Exception, SystemExit) as exc:  # its own validity checks exit; report, never invent
        return {**dict.fromkeys(keys), "worker_not_measured": f"measure() failed: {exc!r}"}
    for key in keys:
        figures.setdefault(key, None)
    return figures


def verdicts(result: dict[str, Any]) -> dict[str, bool | None]:
    met: dict[str, bool | None] = {}
    for key, (op, bound) in TARGETS.items():
        value = result.get(key)
        if value is None:
            met[key] = None
        else:
            met[key] = value >= bound if op == ">=" else value <= bound
    return met


@contextlib.contextmanager
def services_env(tmp: Path, layout: Layout, hook_url: str) -> Iterator[tuple[dict[str, str], str]]:
    """Environment of a runner on a fresh database and topic prefix; drops the database after."""
    settings = load_settings()
    db = f"bench_pipeline_{uuid.uuid4().hex[:8]}"
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    (tmp / "plant.yaml").write_text(plant_yaml(layout), "utf-8")
    (tmp / "policy.yaml").write_text(policy_yaml(hook_url), "utf-8")
    env = {
        **os.environ,
        "HW_BENCH_WEBHOOK_SECRET": SECRET,
        "HAZARDWATCH_PLANT": str(tmp / "plant.yaml"),
        "HAZARDWATCH_POLICY": str(tmp / "policy.yaml"),
        "HAZARDWATCH_DATA_DIR": str(tmp / "data"),
        "HAZARDWATCH_MQTT__TOPIC_PREFIX": prefix,
        "HAZARDWATCH_MQTT__CLIENT_ID": f"bench-runner-{prefix[-8:]}",
        "HAZARDWATCH_INFLUX__DATABASE": db,
        "HAZARDWATCH_HTTP__PORT": str(free_port()),
        "HAZARDWATCH_HTTP__API_PORT": str(free_port()),
    }
    try:
        yield env, db
    finally:
        httpx.post(f"{settings.influx.url}/query", params={"q": f'DROP DATABASE "{db}"'})


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tags", type=int, default=100_000, help="tags of the generated plant")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of every tag to publish")
    parser.add_argument("--probes", type=int, default=100, help="alert latency samples")
    parser.add_argument("--background", type=int, default=10_000, help="readings/s under probes")
    parser.add_argument("--start-timeout", type=float, default=900, help="runner start (s)")
    parser.add_argument("--no-worker", action="store_true", help="skip bench.pipeline_worker")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= MAX_ROUNDS:
        parser.error(f"--rounds must be 1–{MAX_ROUNDS}: rounds run 10 s each ahead of the clock")
    layout = Layout(args.tags, args.probes)
    url = load_settings().influx.url

    log(f"InfluxDB ceiling on {args.rounds} rounds of {args.tags} tags")
    lines = reading_lines(layout, args.rounds, int(time.time() * 1000))
    ceilings = {f"{w} writers before": influx_ceiling(url, lines, w) for w in (1, 2)}

    port = free_port()
    receiver = multiprocessing.Process(target=webhook_receiver, args=(port,), daemon=True)
    receiver.start()
    hook = f"http://127.0.0.1:{port}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        services_env(Path(tmp), layout, f"{hook}/hook") as (
            env,
            db,
        ),
    ):
        started = time.perf_counter()
        runner = Runner(env, Path(tmp) / "runner.log")
        try:
            runner.wait_healthy(args.start_timeout)
            start_s = time.perf_counter() - started
            log(f"runner up after {start_s:.1f} s; warm-up round")
            fleet = Gateways(layout, env["HAZARDWATCH_MQTT__TOPIC_PREFIX"])
            warm = publisher("warm-up")
            publish_all(warm, fleet.rounds(1, int(time.time() * 1000)))
            warm.stop()
            while runner.written() < layout.tags:
                time.sleep(0.1)
            log("throughput")
            flow = throughput(runner, fleet, args.rounds, url, db)
            # Once more right after, against drift in what else the machine is doing.
            ceilings["2 writers after"] = influx_ceiling(url, lines, 2)
            del lines
            log("alert latency under background load")
            lat = latency(runner, fleet, args.probes, args.background, hook, flow["last_ts_ms"])
            memory = runner.memory()
        finally:
            code = runner.stop()
            forget_session(env["HAZARDWATCH_MQTT__CLIENT_ID"])
    receiver.terminate()
    receiver.join(5)
    ceiling = max(ceilings.values())
    result: dict[str, Any] = {
        "pipeline_readings_per_s": round(flow["readings_per_s"]),
        "influx_ceiling_points_per_s": round(ceiling),
        "pipeline_vs_influx_ceiling": round(flow["readings_per_s"] / ceiling, 3),
        "alert_latency_p50_ms": round(lat["p50"], 2),
        "alert_latency_p99_ms": round(lat["p99"], 2),
        "rss_bytes_100k_tags": memory.get("VmRSS") if args.tags >= 100_000 else None,
        "rss_bytes": memory.get("VmRSS"),
        "rss_peak_bytes": memory.get("VmHWM"),
        "rss_tags": args.tags,
    }
    if args.no_worker:
        result.update(worker_readings_per_s=None, kafka_alert_latency_p99_ms=None,
                      worker_not_measured="--no-worker")  # fmt: skip
    else:
        result.update(worker_figures())
    result["targets"] = {k: f"{op} {bound}" for k, (op, bound) in TARGETS.items()}
    result["targets_met"] = verdicts(result)
    result["detail"] = {
        "influx_ceiling_runs": {k: round(v) for k, v in ceilings.items()},
        "throughput": flow,
        "alert_latency_max_ms": round(lat["max"], 2),
        "alert_probes": args.probes,
        "alert_probes_missing": lat["missing"],
        "background_readings_per_s": args.background,
        "runner_start_s": round(start_s, 1),
        "runner_exit_code": code,
        "cpu_count": os.cpu_count(),
    }
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
