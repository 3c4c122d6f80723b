"""The command line and settings a user meets first."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazardwatch.cli import COMMANDS, main
from hazardwatch.errors import ConfigError
from hazardwatch.settings import load_settings


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unbuilt_command_says_so_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    unbuilt = [name for name, command in COMMANDS.items() if command.module is None]
    if not unbuilt:
        return  # every command is built: nothing left to announce
    assert main([unbuilt[0], "--anything"]) == 2
    assert "not built yet" in capsys.readouterr().err


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2


def test_environment_overrides_toml_and_secrets_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml = tmp_path / "hazardwatch.toml"
    toml.write_text(
        '[influx]\nurl = "http://file:8086"\ndatabase = "site_a"\n'
        '[mqtt]\npassword = "gateway-secret"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("HAZARDWATCH_INFLUX__URL", "http://env:8086")
    settings = load_settings(toml)
    assert settings.influx.url == "http://env:8086"
    assert settings.influx.database == "site_a"
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "gateway-secret"
    assert "gateway-secret" not in repr(settings.masked())


def test_bad_settings_file_names_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("[influx]\nretention_days = 7\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_settings(toml)
