"""Config errors name file, line and field; all are collected; the CLI exits 1 on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hazardwatch.cli import main
from hazardwatch.errors import ConfigError
from hazardwatch.plant.loader import ConfigFileError, load_plant, load_policy

PLANT = """\
enterprises:
  - id: E1
    name: 测试企业
    region: "410102"
    industry: tank_farm
gateways:
  - id: G1
    enterprise: E1
    interval_s: 10
    tags: [LT1, FT1]
hazard_sources:
  - id: S1
    enterprise: E1
    name: 罐区
    kind: tank_farm
    units:
      - id: T1
        tags:
          - id: LT1
            quantity: level
            unit: m
            range: [0, 20]
            limits:
              H: 17
              HH: 18
          - id: FT1
            quantity: flow
            unit: m³/h
            range: [0, 1000]
        rules:
          - kind: flatline_while_filling
            tag: LT1
            inflow_tag: FT1
            min_inflow: 50
            min_level_change: 0.02
"""


def write(tmp_path: Path, text: str, name: str = "plant.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def issues_of(path: Path) -> list[tuple[int, str, str]]:
    with pytest.raises(ConfigFileError) as info:
        load_plant(path)
    assert all(issue.file == str(path) for issue in info.value.issues)
    return [(i.line, i.field, i.message) for i in info.value.issues]


def test_valid_file_loads(tmp_path: Path) -> None:
    plant = load_plant(write(tmp_path, PLANT))
    assert [t.id for t in plant.tags()] == ["LT1", "FT1"]


def test_limit_outside_range_names_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, PLANT.replace("HH: 18", "HH: 25"))
    assert issues_of(path) == [
        (25, "hazard_sources[0].units[0].tags[0].limits.HH", "must be ≤ instrument range max 20.0")
    ]


def test_every_structural_error_is_collected(tmp_path: Path) -> None:
    text = (
        PLANT.replace("interval_s: 10", "interval_s: -5")
        .replace("industry: tank_farm", "industry: refinery")
        .replace("min_inflow: 50", "min_inflow: 50\n            window: 600")
        .replace("            unit: m³/h\n", "")
    )
    found = {(line, field) for line, field, _ in issues_of(write(tmp_path, text))}
    assert found == {
        (5, "enterprises[0].industry"),
        (9, "gateways[0].interval_s"),
        (26, "hazard_sources[0].units[0].tags[1].unit"),  # missing: reported at its tag
        (34, "hazard_sources[0].units[0].rules[0].window"),  # inside the `kind` union
    }


def test_every_cross_reference_error_is_collected(tmp_path: Path) -> None:
    text = (
        PLANT.replace("tags: [LT1, FT1]", "tags: [LT1, FT9]")
        .replace("inflow_tag: FT1", "inflow_tag: FT2")
        .replace("H: 17", "H: 19")
    )
    issues = issues_of(write(tmp_path, text))
    assert [(line, field) for line, field, _ in issues] == [
        (10, "gateways[0].tags[1]"),
        (25, "hazard_sources[0].units[0].tags[0].limits.HH"),
        (26, "hazard_sources[0].units[0].tags[1].id"),
        (33, "hazard_sources[0].units[0].rules[0].inflow_tag"),
    ]
    messages = " | ".join(m for _, _, m in issues)
    assert "unknown tag 'FT9'" in messages
    assert "H ≤ HH" in messages
    assert "carried by no gateway" in messages


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, PLANT.replace("    name: 罐区", "    name: [罐区"))
    [(line, _field, message)] = issues_of(path)
    assert message.startswith("YAML syntax")
    assert line >= 14


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path, PLANT.replace("              HH: 18", "              HH: 18\n              H: 16")
    )
    assert (26, "H", "duplicate key") in issues_of(path)


def test_empty_file_and_error_root(tmp_path: Path) -> None:
    assert issues_of(write(tmp_path, "# nothing\n")) == [(1, "", "file is empty")]
    with pytest.raises(ConfigError):  # callers may catch the project's root config error
        load_plant(write(tmp_path, "[1, 2]\n"))


def test_policy_unknown_top_level_key_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "risk:\n  s3_hold_s: 300\nrouting: {}\nalerts: {}\n", "policy.yaml")
    with pytest.raises(ConfigFileError) as info:
        load_policy(path)
    [issue] = info.value.issues
    assert (issue.line, issue.field) == (4, "alerts")
    assert str(issue) == f"{path}:4: alerts: Extra inputs are not permitted"


def test_policy_bad_colour_names_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "risk:\n  escalation:\n    cap: purple\n", "policy.yaml")
    with pytest.raises(ConfigFileError) as info:
        load_policy(path)
    [issue] = info.value.issues
    assert (issue.line, issue.field) == (3, "risk.escalation.cap")


def test_check_config_exit_codes_and_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, PLANT)
    assert main(["check-config", str(good)]) == 0
    assert "1 enterprises, 1 hazard sources, 2 tags, 1 rules" in capsys.readouterr().out

    bad = write(tmp_path, PLANT.replace("HH: 18", "HH: 25"), "bad.yaml")
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:25: hazard_sources[0].units[0].tags[0].limits.HH: must be ≤" in err

    bad_policy = write(tmp_path, "risk:\n  stale_factor: 0.5\n", "policy.yaml")
    assert main(["check-config", str(good), str(bad_policy)]) == 1
    assert f"{bad_policy}:2: risk.stale_factor:" in capsys.readouterr().err


def test_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "plant"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"enterprises", "gateways", "hazard_sources"} <= set(schema["properties"])
    assert main(["schema", "policy"]) == 0
    assert "risk" in json.loads(capsys.readouterr().out)["properties"]
