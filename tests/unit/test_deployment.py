"""docker-compose.yml is the deployment users run: check it against the code it deploys."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hazardwatch.cli import COMMANDS
from hazardwatch.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
HAZARDWATCH_SERVICES = {"bridge", "worker", "alerts", "simulator"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text("utf-8"))
    return data


def test_all_services_are_deployed(compose: dict[str, Any]) -> None:
    expected = {"mosquitto", "kafka", "influxdb", "grafana"} | HAZARDWATCH_SERVICES
    assert set(compose["services"]) == expected


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"


def test_published_ports(compose: dict[str, Any]) -> None:
    ports = {name: s.get("ports", []) for name, s in compose["services"].items()}
    assert ports["mosquitto"] == ["1883:1883"]
    assert ports["influxdb"] == ["8086:8086"]
    assert ports["grafana"] == ["3000:3000"]
    assert ports["alerts"] == ["8700:8700"]


def test_volumes_are_declared_and_bind_mounts_exist(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"


def test_hazardwatch_services_run_real_commands(compose: dict[str, Any]) -> None:
    for name in HAZARDWATCH_SERVICES:
        command = compose["services"][name]["command"]
        assert command[0] in COMMANDS, f"{name} runs unknown command {command[0]}"


def _setting_paths(model: type[Any], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for field_name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            paths |= _setting_paths(annotation, f"{prefix}{field_name}__")
        else:
            paths.add(f"{prefix}{field_name}")
    return paths


def test_environment_matches_the_settings_model(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = _setting_paths(Settings)
    for name in HAZARDWATCH_SERVICES:
        env = compose["services"][name].get("environment", {})
        assert env, f"{name} has no environment"
        for key, value in env.items():
            assert key.startswith("HAZARDWATCH_"), key
            path = key.removeprefix("HAZARDWATCH_").lower()
            assert path in known, f"{name}: {key} is not a setting"
            # ${VAR:?message} is filled by docker compose from .env; any value will do here.
            monkeypatch.setenv(key, re.sub(r"\$\{[^}]+\}", "secret-token", str(value)))
        settings = load_settings()
        assert settings.influx.url == "http://influxdb:8086"
        assert settings.kafka.bootstrap_servers == "kafka:9092"
        assert settings.influx.token.get_secret_value() == "secret-token"
        for key in env:
            monkeypatch.delenv(key)


def test_secrets_come_from_the_environment_file(compose: dict[str, Any]) -> None:
    text = (REPO / "docker-compose.yml").read_text("utf-8")
    for secret in ("INFLUXDB_TOKEN", "INFLUXDB_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert f"${{{secret}:?" in text, f"{secret} must be required from .env"
    assert ".env" in (REPO / ".gitignore").read_text("utf-8").split()
