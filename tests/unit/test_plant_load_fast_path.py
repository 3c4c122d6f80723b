"""The loader's fast path (libyaml events straight to data) keeps file:line:field in every error.

A generated plant of a few thousand tags, one tag per line, loads on the fast path; each test
breaks one tag and checks the issue names the tag's own line and field. Further tests cover the
YAML the fast path leaves to the node tree (anchors, merge keys, tags), the inputs that crashed
the loader before (deep nesting, impossible dates, non-UTF-8 bytes) and the collector's state.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from hazardwatch.plant import loader
from hazardwatch.plant.loader import ConfigFileError, load_plant
from hazardwatch.plant.yaml_events import MAX_DEPTH, gc_paused, parse_events

SOURCES, UNITS, TAGS = 20, 10, 10  # 2,000 tags


def tag_line(i: int, limits: str = "{H: 80, HH: 90}") -> str:
    return (f"          - {{id: T{i}, name: T{i}, quantity: temperature, unit: C, "
            f"range: [0, 100], limits: {limits}}}")  # fmt: skip


def generated_plant() -> list[str]:
    """Lines of a valid plant: one gateway per hazard source, one tag per line."""
    per_source = UNITS * TAGS
    lines = ["version: 1", "enterprises:",
             '  - {id: E1, name: E1, region: "410102", industry: other}', "gateways:"]  # fmt: skip
    for s in range(SOURCES):
        tags = ", ".join(f"T{i}" for i in range(s * per_source, (s + 1) * per_source))
        lines.append(f"  - {{id: G{s}, enterprise: E1, interval_s: 10, tags: [{tags}]}}")
    lines.append("hazard_sources:")
    for s in range(SOURCES):
        lines += [f"  - id: S{s}", "    enterprise: E1", f"    name: S{s}",
                  "    kind: process_unit", "    units:"]  # fmt: skip
        for u in range(UNITS):
            lines += [f"      - id: U{u}", "        tags:"]
            first = s * per_source + u * TAGS
            lines += [tag_line(i) for i in range(first, first + TAGS)]
    return lines


def field_of(i: int) -> str:
    s, rest = divmod(i, UNITS * TAGS)
    return f"hazard_sources[{s}].units[{rest // TAGS}].tags[{rest % TAGS}]"


def line_of(lines: list[str], i: int) -> int:
    return next(n for n, text in enumerate(lines, 1) if f"{{id: T{i}," in text)


def issues(tmp_path: Path, lines: list[str]) -> list[tuple[int, str, str]]:
    path = tmp_path / "plant.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigFileError) as refused:
        load_plant(path)
    assert {issue.file for issue in refused.value.issues} == {str(path)}
    return [(issue.line, issue.field, issue.message) for issue in refused.value.issues]


def test_generated_plant_loads_on_the_fast_path(tmp_path: Path) -> None:
    text = "\n".join(generated_plant()) + "\n"
    parsed = parse_events(text)
    assert not parsed.needs_tree and parsed.data == yaml.safe_load(text)
    path = tmp_path / "plant.yaml"
    path.write_text(text, encoding="utf-8")
    resolved = load_plant(path).resolved_tags()
    assert len(resolved) == SOURCES * UNITS * TAGS
    assert resolved[-1].limits[-1].value == 90.0 and resolved[-1].gateway == f"G{SOURCES - 1}"


def test_limit_outside_range_names_its_line_and_field(tmp_path: Path) -> None:
    lines = generated_plant()
    at = line_of(lines, 1987)
    lines[at - 1] = tag_line(1987, "{H: 80, HH: 190}")
    assert issues(tmp_path, lines) == [
        (at, f"{field_of(1987)}.limits.HH", "must be ≤ instrument range max 100.0")
    ]


def test_structural_errors_name_their_lines_and_fields(tmp_path: Path) -> None:
    lines = generated_plant()
    first, second = line_of(lines, 5), line_of(lines, 1999)
    lines[first - 1] = lines[first - 1].replace("temperature", "temprature")
    lines[second - 1] = lines[second - 1].replace("unit: C, ", "unit: C, colour: red, ")
    found = [(line, field) for line, field, _ in issues(tmp_path, lines)]
    assert found == [(first, f"{field_of(5)}.quantity"), (second, f"{field_of(1999)}.colour")]


def test_cross_reference_errors_name_their_lines(tmp_path: Path) -> None:
    lines = generated_plant()
    renamed, duplicate = line_of(lines, 1200), line_of(lines, 1201)
    lines[renamed - 1] = lines[renamed - 1].replace("{id: T1200,", "{id: T1201,")
    gateway = next(n for n, text in enumerate(lines, 1) if "{id: G12," in text)
    assert issues(tmp_path, lines) == [
        (gateway, "gateways[12].tags[0]", "unknown tag 'T1200'"),
        (duplicate, f"{field_of(1201)}.id",
         f"duplicate tag id 'T1201' (first at {field_of(1200)}.id)"),
    ]  # fmt: skip


def test_duplicate_key_names_its_line(tmp_path: Path) -> None:
    lines = generated_plant()
    at = line_of(lines, 640)
    lines[at - 1] = lines[at - 1].replace("name: T640,", "name: T640, name: again,")
    assert issues(tmp_path, lines) == [(at, "name", "duplicate key")]


ANCHORED = """\
version: 1
enterprises: [{id: E1, name: E1, region: "410102", industry: other}]
gateways: [{id: G1, enterprise: E1, interval_s: 10, tags: [T1, T2, T3]}]
hazard_sources:
  - id: S1
    enterprise: E1
    name: S1
    kind: process_unit
    units:
      - id: U1
        tags:
          - &first {id: T1, quantity: temperature, unit: !!str C, range: [0, 100], limits: {H: 1}}
          - {<<: *first, id: T2, limits: {H: 80, HH: 70}}
          - {<<: *first, id: T3, on_delay_s: 2024-13-45}
"""


def test_anchors_merge_keys_and_tags_take_the_tree_and_keep_lines(tmp_path: Path) -> None:
    assert parse_events(ANCHORED).needs_tree
    found = issues(tmp_path, ANCHORED.splitlines())
    assert found == [(14, "", "YAML syntax: invalid date '2024-13-45' (month must be in 1..12)")]
    lines = ANCHORED.replace("on_delay_s: 2024-13-45", "on_delay_s: 5").splitlines()
    assert [issue[:2] for issue in issues(tmp_path, lines)] == [
        (13, "hazard_sources[0].units[0].tags[1].limits.HH")
    ]
    good = tmp_path / "good.yaml"
    good.write_text("\n".join(lines).replace("HH: 70", "HH: 90"), encoding="utf-8")
    tags = load_plant(good).resolved_tags()
    assert [(t.id, t.eng_unit, t.range_max, len(t.limits)) for t in tags] == [
        ("T1", "C", 100.0, 1),
        ("T2", "C", 100.0, 2),
        ("T3", "C", 100.0, 1),
    ]


def test_deep_nesting_is_a_config_error_not_a_crash(tmp_path: Path) -> None:
    # libyaml's composer recurses in C: at this depth it kills the process (SIGSEGV).
    path = tmp_path / "deep.yaml"
    path.write_text("version: 1\nenterprises:\n  " + "[" * 100_000 + "]" * 100_000 + "\n")
    script = textwrap.dedent(f"""
        from hazardwatch.plant.loader import ConfigFileError, load_plant
        try:
            load_plant({str(path)!r})
        except ConfigFileError as exc:
            print(exc)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"{path}:3: YAML syntax: nested deeper than {MAX_DEPTH} levels"


def test_non_utf8_bytes_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "plant.yaml"
    path.write_bytes("version: 1\n# 中文\n".encode() + b"enterprises: \xff[]\n")
    with pytest.raises(ConfigFileError) as refused:
        load_plant(path)
    assert str(refused.value) == f"{path}:3: cannot read: not UTF-8 (byte 0xFF)"


def test_a_tab_is_refused_as_pyyaml_refuses_it(tmp_path: Path) -> None:
    # libyaml would take this tab as a separator; the loader keeps PyYAML's stricter verdict.
    lines = generated_plant()
    at = line_of(lines, 3)
    lines[at - 1] = lines[at - 1].replace("unit: C,", "unit:\tC,")
    [(line, field, message)] = issues(tmp_path, lines)
    assert (line, field) == (at, "") and "'\\t' that cannot start any token" in message


def test_the_collector_runs_again_after_every_load(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(ANCHORED.replace("on_delay_s: 2024-13-45", "on_delay_s: 5")
                    .replace("HH: 70", "HH: 90"), encoding="utf-8")  # fmt: skip
    bad.write_text(ANCHORED, encoding="utf-8")
    assert gc.isenabled()
    load_plant(good)
    with pytest.raises(ConfigFileError):
        load_plant(bad)
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            load_plant(good)
        assert not gc.isenabled()  # a caller's own choice is left alone
    finally:
        gc.enable()


def test_libyaml_refusal_falls_back_to_pyyaml_words(tmp_path: Path) -> None:
    text = "version: 1\nenterprises: [\n"
    with pytest.raises(yaml.YAMLError):
        parse_events(text)
    [(line, field, message)] = issues(tmp_path, text.splitlines())
    assert (line, field) == (3, "") and message.startswith("YAML syntax: ")
    assert loader is not None
