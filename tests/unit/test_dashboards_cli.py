"""`hazardwatch dashboards export`: writes the committed files; bad input exits 1 with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazardwatch.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_export_writes_the_committed_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the default plants are the repository's example files
    assert main(["dashboards", "export", "--out", str(tmp_path / "out")]) == 0
    written = sorted((tmp_path / "out").glob("*.json"))
    assert [p.name for p in written] == sorted(
        p.name for p in (REPO / "dashboards/json").glob("*.json")
    )
    for path in written:
        assert path.read_bytes() == (REPO / "dashboards/json" / path.name).read_bytes()


def test_export_with_a_broken_plant_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text("version: 1\nenterprises: []\n", encoding="utf-8")
    assert main(["dashboards", "export", "--out", str(tmp_path), "--plant", str(plant)]) == 1
    err = capsys.readouterr().err
    assert "plant.yaml" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.json"))


def test_push_without_token_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    monkeypatch.chdir(REPO)
    assert main(["dashboards", "push", "--grafana", "http://127.0.0.1:9"]) == 1
    assert "--token" in capsys.readouterr().err
