"""Run every benchmark of the project; write bench/results.json and docs/benchmarks.md.

    bench/run_all [--quick] [--only NAMES] [--skip NAMES] [--out bench/results.json]
                  [--doc docs/benchmarks.md | --no-doc]

Each benchmark runs as its own subprocess (`python -m bench.<name>`) from the repository root,
its JSON captured from stdout; one that fails is recorded with the tail of its stderr and the
others still run. The ceilings (bench/ceilings.py) run first, in the same run as the figures
they bound. A benchmark whose file does not exist is reported as `missing`. `--quick` passes
small sizes to every benchmark (minutes, for checking the harness; figures are then noisier).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run_all_report import BENCHMARKS, assemble, write  # noqa: E402

# name → (module, arguments of a full run, arguments of a --quick run)
COMMANDS: dict[str, tuple[str, list[str], list[str]]] = {
    "ceilings": ("bench.ceilings", [], ["--messages", "5000", "--points", "50000",
                                        "--rtt-seconds", "3"]),
    "engine": ("bench.engine", [], ["--readings", "100000", "--tags", "2000",
                                    "--reference-readings", "5000", "--state-tags", "10000"]),
    "ingest": ("bench.ingest", [], ["--single", "5000", "--batched", "500", "--bridge", "300"]),
    "simulators": ("bench.simulators", [], ["--days", "0.5", "--mqtt-s", "300"]),
    "alerting": ("bench.alerting", [], ["--count", "300"]),
    "alerting_dq": ("bench.alerting_dq", [], []),  # seconds at full size
    "plant_load": ("bench.plant_load", [], ["--sizes", "10000"]),
    "pipeline": ("bench.pipeline", [], ["--tags", "10000", "--rounds", "3", "--probes", "30"]),
    "peer": ("bench.peer.compare", ["--rounds", "3"], ["--batched", "50000", "--single", "3000",
                                                       "--alarm-sources", "20"]),
}  # fmt: skip
TIMEOUT_S = 1800


def module_file(module: str) -> Path:
    return ROOT / (module.replace(".", "/") + ".py")


def parse_json(stdout: str) -> Any:
    """The JSON object a benchmark printed (stray lines before it are ignored)."""
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        start = stdout.find("{")
        if start < 0:
            raise
        return json.loads(stdout[start:])


def run_one(name: str, quick: bool) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(its JSON or None, status record) for one benchmark."""
    module, full, small = COMMANDS[name]
    command = [sys.executable, "-m", module, *(small if quick else full)]
    shown = " ".join(["python", *command[1:]])
    if not module_file(module).exists():
        return None, {"status": "missing", "command": shown}
    print(f"run_all: {shown}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=TIMEOUT_S, env=env)  # fmt: skip
    except subprocess.TimeoutExpired:
        return None, {"status": "failed", "command": shown, "error": f"timeout {TIMEOUT_S} s"}
    seconds = round(time.perf_counter() - started, 1)
    status: dict[str, Any] = {"status": "ok", "command": shown, "seconds": seconds}
    if done.returncode != 0:
        status.update(status="failed", returncode=done.returncode,
                      stderr_tail=done.stderr[-3000:])  # fmt: skip
        return None, status
    try:
        output = parse_json(done.stdout)
    except json.JSONDecodeError:
        status.update(status="failed", error="no JSON on stdout", stdout_tail=done.stdout[-2000:])
        return None, status
    if not isinstance(output, dict):
        status.update(status="failed", error="stdout JSON is not an object")
        return None, status
    return output, status


# -- the machine ---------------------------------------------------------------------------------
def _first(path: str, pattern: str) -> str | None:
    try:
        match = re.search(pattern, Path(path).read_text(), re.MULTILINE)
    except OSError:
        return None
    return match.group(1).strip() if match else None


def _command_version(command: list[str], pattern: str) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(pattern, done.stdout + done.stderr)
    return match.group(1) if match else None


def service_versions() -> dict[str, str | None]:
    """Mosquitto (its binary), InfluxDB (/ping), Kafka (the version scripts/services runs)."""
    influx = None
    with contextlib.suppress(httpx.HTTPError):
        influx = httpx.get("http://127.0.0.1:8086/ping", timeout=5).headers.get(
            "X-Influxdb-Version"
        )
    services = str(ROOT / "scripts" / "services")
    if influx in (None, "unknown"):  # built from source by `go install`: no version stamped
        influx = _first(services, r"^INFLUXDB_VERSION=(\S+)")
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return {
        "mosquitto": _command_version([mosquitto, "-h"], r"mosquitto version (\S+)"),
        "influxdb": influx,
        "kafka": _first(services, r"^KAFKA_VERSION=(\S+)"),
        "node": _command_version(["node", "--version"], r"v?(\S+)"),
    }


def broker_store(timeout_s: float = 3.0) -> str | None:
    """Messages Mosquitto holds for disconnected persistent sessions (its `$SYS` store
    figures): the broker rewrites all of them at every autosave, and a large store shows up as
    stalls in the latency figures — a run should start on a small one."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    figures: dict[str, str] = {}
    done = threading.Event()

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        figures[message.topic.rsplit("/", 1)[1]] = message.payload.decode()
        if len(figures) == 2:
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    try:
        client.connect("127.0.0.1", 1883)
    except OSError:
        return None
    client.subscribe([("$SYS/broker/store/messages/count", 0),
                      ("$SYS/broker/store/messages/bytes", 0)])  # fmt: skip
    client.loop_start()
    done.wait(timeout_s)
    client.disconnect()
    client.loop_stop()
    if len(figures) < 2:
        return None
    return f"{int(figures['count']):,} messages, {int(figures['bytes']) / 1e6:.1f} MB"


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python, load average at the start and service versions."""
    mem_kb = _first("/proc/meminfo", r"^MemTotal:\s+(\d+)")
    return {
        "cpu": _first("/proc/cpuinfo", r"^model name\s*:\s*(.+)$") or platform.processor(),
        "cores": os.cpu_count(),
        "ram": f"{int(mem_kb) / 1024 / 1024:.1f} GiB" if mem_kb else None,
        "os": (_first("/etc/os-release", r'^PRETTY_NAME="?([^"\n]+)') or platform.system())
        + f", kernel {platform.release()}",
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "services": service_versions(),
        "broker_store": broker_store(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks, write the results; exit 1 if any benchmark failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (checks the harness)")
    parser.add_argument("--only", help="comma-separated names, e.g. peer,ceilings")
    parser.add_argument("--skip", default="", help="comma-separated names to leave out")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-doc", action="store_true", help="do not write the markdown")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other benchmarks' results from --out")  # fmt: skip
    args = parser.parse_args(argv)
    names = [n for n in (args.only.split(",") if args.only else BENCHMARKS)
             if n not in args.skip.split(",")]  # fmt: skip
    unknown = set(names) - set(COMMANDS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    date = datetime.now(UTC).isoformat(timespec="seconds")
    info = machine()
    outputs: dict[str, Any] = {}
    status: dict[str, Any] = {}
    for name in BENCHMARKS:
        if name not in names:
            continue
        output, status[name] = run_one(name, args.quick)
        if output is not None:
            outputs[name] = output
        print(f"run_all: {name}: {status[name]['status']}", file=sys.stderr, flush=True)
    merged: dict[str, str] = {}
    if args.merge and args.out.exists():
        previous = json.loads(args.out.read_text("utf-8"))
        for name in BENCHMARKS:
            if name not in names and name in previous:
                outputs[name] = previous[name]
                status[name] = previous["status"][name]
                merged[name] = previous.get("merged", {}).get(name, previous["date"])
    if "peer" in outputs:
        info["services"].update({k: v for k, v in outputs["peer"].get("versions", {}).items()
                                 if k.startswith("node-red")})  # fmt: skip
    results = assemble(outputs, status, info, date, "quick" if args.quick else "full")
    if merged:
        results["merged"] = merged  # benchmark → date of the run its figures come from
    write(results, args.out, None if args.no_doc else args.doc)
    print(f"run_all: wrote {args.out}" + ("" if args.no_doc else f" and {args.doc}"),
          file=sys.stderr)  # fmt: skip
    return 1 if any(s["status"] == "failed" for s in status.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
