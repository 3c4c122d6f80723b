"""Plant loading benchmark: prints one JSON object on stdout.

    python -m bench.plant_load [--sizes 10000,100000]

The plant is bench/pipeline_rig.py's generated one (gateways of 100 tags, hazard sources of
10 units × 10 temperature tags, 100 probe sources), written to a temporary file per size. Every
measurement runs in a fresh child process, so its peak RSS (`ru_maxrss`) is its own:

- `load_s_<size>`: `load_plant(path)` — parse, validate, cross-check; `resolve_s_<size>`:
  then `plant.resolved_tags()`; `load_peak_rss_bytes_<size>` the child's peak RSS and
  `load_rss_growth_bytes_<size>` that peak minus its RSS after the imports;
- `error_report_s_<size>`: the same file with one limit outside its range on the last tag, until
  ConfigFileError names it (`error_issue_ok_<size>`: at the right line and field) — the path
  that composes the node tree for line numbers.

Ceilings of the same files in the same run: `csafe_parse_s_<size>`, `yaml.load(text,
Loader=yaml.CSafeLoader)` with the cyclic collector off (its fastest; no validation at all) and
its `csafe_peak_rss_bytes_<size>`; `json_loads_s_<size>`, the stdlib `json.loads` of the same
data dumped as JSON. Sizes are labelled in thousands: `load_s_100k`.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline_rig import (  # noqa: E402
    PER_GATEWAY,
    TAGS_PER_UNIT,
    UNITS_PER_SOURCE,
    Layout,
    plant_yaml,
)

PROBES = 100  # as bench/pipeline.py's default
TARGETS = {
    "load_s_100k": 60.0,  # hazardwatch run starts within a minute at 100,000 tags
    "load_vs_csafe_parse_100k": 1.0,  # loading and checking costs no more than bare parsing
    "load_peak_rss_bytes_100k": 512 * 2**20,
}


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB


def child_load(path: Path) -> dict[str, Any]:
    """In the child: load and resolve the plant."""
    from hazardwatch.plant.loader import load_plant

    before = _rss_bytes()
    started = time.perf_counter()
    plant = load_plant(path)
    loaded = time.perf_counter()
    tags = len(plant.resolved_tags())
    return {
        "load_s": loaded - started,
        "resolve_s": time.perf_counter() - loaded,
        "tags": tags,
        "rss_after_imports_bytes": before,
        "peak_rss_bytes": _peak_rss_bytes(),
    }


def child_error(path: Path) -> dict[str, Any]:
    """In the child: load a plant with one error; the issues it names."""
    from hazardwatch.plant.loader import ConfigFileError, load_plant

    started = time.perf_counter()
    try:
        load_plant(path)
    except ConfigFileError as exc:
        seconds = time.perf_counter() - started
        return {"s": seconds, "issues": [[i.line, i.field, i.message] for i in exc.issues]}
    raise SystemExit(f"{path} loaded although it has an error")


def child_csafe(path: Path) -> dict[str, Any]:
    """In the child: the bare libyaml parse, then json.loads of the same data."""
    import yaml

    text = path.read_text(encoding="utf-8")
    gc.disable()
    started = time.perf_counter()
    data = yaml.load(text, Loader=yaml.CSafeLoader)
    parse_s = time.perf_counter() - started
    peak = _peak_rss_bytes()
    dumped = json.dumps(data)
    started = time.perf_counter()
    json.loads(dumped)
    json_s = time.perf_counter() - started
    return {"parse_s": parse_s, "peak_rss_bytes": peak, "json_loads_s": json_s}


CHILDREN = {"load": child_load, "error": child_error, "csafe": child_csafe}


def in_child(kind: str, path: Path) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its JSON result."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.plant_load", "--child", kind, str(path)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"plant_load child {kind} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def with_error(text: str, tags: int) -> tuple[str, int, str]:
    """The plant text with the last tag's HH outside its range; the issue's line and field."""
    at = text.rindex("HH: 90}")  # the last generated tag (probe tags have no HH)
    last = tags - 1
    source = last // (TAGS_PER_UNIT * UNITS_PER_SOURCE)
    unit, index = (last // TAGS_PER_UNIT) % UNITS_PER_SOURCE, last % TAGS_PER_UNIT
    field = f"hazard_sources[{source}].units[{unit}].tags[{index}].limits.HH"
    return text[:at] + "HH: 190}" + text[at + len("HH: 90}") :], text.count("\n", 0, at) + 1, field


def measure(tags: int, folder: Path) -> dict[str, Any]:
    """Every figure of one plant size, keyed with its label (`_100k`)."""
    label = f"{tags // 1000}k" if tags % 1000 == 0 else str(tags)
    text = plant_yaml(Layout(tags, PROBES))
    path = folder / f"plant-{label}.yaml"
    path.write_text(text, encoding="utf-8")
    broken_text, line, field = with_error(text, tags)
    broken = folder / f"plant-{label}-error.yaml"
    broken.write_text(broken_text, encoding="utf-8")
    print(f"plant_load: {tags} tags ({len(text.encode()) / 2**20:.1f} MiB)", file=sys.stderr)
    load = in_child("load", path)
    error = in_child("error", broken)
    csafe = in_child("csafe", path)
    issue_ok = [issue[:2] for issue in error["issues"]] == [[line, field]]
    return {
        f"file_bytes_{label}": len(text.encode()),
        f"tags_{label}": load["tags"],
        f"load_s_{label}": round(load["load_s"], 3),
        f"resolve_s_{label}": round(load["resolve_s"], 3),
        f"load_peak_rss_bytes_{label}": load["peak_rss_bytes"],
        f"load_rss_growth_bytes_{label}": load["peak_rss_bytes"] - load["rss_after_imports_bytes"],
        f"error_report_s_{label}": round(error["s"], 3),
        f"error_issue_ok_{label}": issue_ok,
        f"csafe_parse_s_{label}": round(csafe["parse_s"], 3),
        f"csafe_peak_rss_bytes_{label}": csafe["peak_rss_bytes"],
        f"json_loads_s_{label}": round(csafe["json_loads_s"], 3),
        f"load_vs_csafe_parse_{label}": round(load["load_s"] / csafe["parse_s"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Measure every size and print the JSON report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="tag counts, comma-separated")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, path = args.child
        print(json.dumps(CHILDREN[kind](Path(path))))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(size < PER_GATEWAY or size % PER_GATEWAY for size in sizes):
        parser.error(f"sizes must be multiples of {PER_GATEWAY}")
    report: dict[str, Any] = {"probes": PROBES}
    with tempfile.TemporaryDirectory(prefix="plant-load-") as tmp:
        for size in sizes:
            report.update(measure(size, Path(tmp)))
    report["targets"] = TARGETS
    report["pass"] = {
        key: report[key] <= bound for key, bound in TARGETS.items() if key in report
    } | {key: value for key, value in report.items() if key.startswith("error_issue_ok_")}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
