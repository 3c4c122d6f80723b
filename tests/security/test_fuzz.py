"""The fuzz targets of tests/security/fuzz.py with a small budget (seconds), strict: a crash fails
the test with hypothesis' shrunk input. The million-input run is `python -m tests.security.fuzz`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hazardwatch.plant.loader import ConfigFileError, load_plant
from tests.security.fuzz import Tally, api_target, decoder_target, loader_target
from tests.security.plant import PLANT_YAML

ROOT = Path(__file__).parents[2]


def test_decoder_gives_every_input_a_verdict() -> None:
    tally = Tally()
    decoder_target(5_000, tally, strict=True, chunk=200)
    assert tally.inputs >= 5_000 and tally.crashes == 0
    assert tally.verdicts["accepted"] > 0 and len(tally.verdicts) >= 8  # inputs reach deep


def test_loader_answers_every_mutation_with_file_line_and_field() -> None:
    tally = Tally()
    loader_target(150, tally, strict=True, chunk=100, control_characters=False)
    assert tally.inputs >= 150 and tally.crashes == 0
    assert tally.verdicts["plant refused"] > 0 and tally.verdicts["policy refused"] > 0


def test_api_answers_every_request_below_500() -> None:
    tally = Tally()
    api_target(1_000, tally, strict=True, chunk=100)
    assert tally.inputs >= 1_000 and tally.crashes == 0
    reached = {status for status in tally.verdicts if status in ("200", "400", "409")}
    assert len(reached) >= 2, tally.verdicts  # requests get past routing and tokens


def test_a_control_character_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text(PLANT_YAML.replace("name: 惠安储运", "name: 惠安\x0b储运"), encoding="utf-8")
    with pytest.raises(ConfigFileError) as refused:
        load_plant(path)
    [issue] = refused.value.issues
    assert (issue.file, issue.line) == (str(path), 3)


def test_the_budget_runner_prints_counts_per_target() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.security.fuzz", "--inputs", "400", "--targets",
         "decoder,api", "--chunk", "50", "--seed", "7"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert set(report["targets"]) == {"decoder", "api"}
    assert report["total"]["inputs"] >= 400 and report["total"]["crashes"] == 0
    assert all(t["inputs"] > 0 for t in report["targets"].values())
