"""check-config validates the policy's `routing:` section too, with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazardwatch.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_routing_error_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "risk: {}\n"
        "routing:\n"
        "  recipients:\n"
        "    - id: county-desk\n"
        "      name: 县应急局\n"
        "      tier: township\n"  # not one of the four tiers
        '      area: "350521"\n'
        "      channels: []\n",
        encoding="utf-8",
    )
    code = main(["check-config", str(REPO / "examples" / "tank-farm.yaml"), str(policy)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{policy}:6:" in err and "tier" in err


def test_shipped_policy_passes(capsys: pytest.CaptureFixture[str]) -> None:
    examples = REPO / "examples"
    assert (
        main(["check-config", str(examples / "tank-farm.yaml"), str(examples / "policy.yaml")]) == 0
    )
    assert "policy.yaml: ok" in capsys.readouterr().out
