"""One validated settings object per process (STYLE.md: quix-streams' frozen settings).

Sources, highest priority first: environment variables (`HAZARDWATCH_` prefix, `__` between
nested names, e.g. `HAZARDWATCH_INFLUX__URL`), the TOML file given to `load_settings`, defaults.
Defaults are the ports `scripts/services` uses on 127.0.0.1. Secrets are `SecretStr` so they never
reach logs or `hazardwatch run --check` in clear.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from hazardwatch.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MqttSettings(_Section):
    """Broker the gateways publish to: `mqtts://` (or a CA file) means TLS (docs/security.md)."""

    url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = "hw/v1"
    client_id: str = "hazardwatch-ingest"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = Field(default=None, description="CA bundle verifying the broker")
    protocol: int = Field(default=5, description="MQTT protocol: 5 or 4 (3.1.1)")

    @field_validator("url")
    @classmethod
    def _broker_url(cls, url: str) -> str:
        parsed = urlparse(url)
        if parsed.username is not None or parsed.password is not None:
            # the URL is printed by `run --check` and in error messages; secrets never are
            raise ValueError("put credentials in mqtt.username and mqtt.password, not in the URL")
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise ValueError(f"expected mqtt://host[:port] or mqtts://host[:port], got {url!r}")
        return url

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol(cls, value: object) -> object:
        names = {"5": 5, "5.0": 5, "4": 4, "3.1.1": 4}
        value = names.get(str(value).strip(), value)
        if value not in (4, 5):
            raise ValueError("MQTT protocol must be 5 or 4 (3.1.1)")
        return value


class KafkaSettings(_Section):
    """Kafka cluster of the distributed runners."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "hazardwatch.v1"
    # Fixed once the topics exist: a hazard source's partition is murmur2(source) mod this, and
    # the worker's engine state is stored per partition.
    partitions: int = Field(default=12, ge=1, description="partitions of topics created at start")
    replication_factor: int = Field(default=1, ge=1, description="of topics created at start")


class WorkerSettings(_Section):
    """The faust worker (`hazardwatch worker`): identity, timers and rebalance timeouts."""

    id: str = Field(default="", description="names the worker's spool; default: the host name")
    tick_interval_s: float = Field(default=1.0, gt=0, description="engine timers on the wall clock")
    # Readings reach the worker through the bridge and Kafka some 10 ms to seconds after their
    # ts; the engine clock trails the wall clock by this much so that they are not judged late
    # (a silent gateway's stale alarm comes this much later).
    clock_lag_ms: int = Field(default=5000, ge=0)
    # Enterprise colour and flood are merged from all partitions' source changes in time order,
    # after holding each change this long for changes of other partitions that are still in flight.
    enterprise_grace_ms: int = Field(default=2000, ge=0)
    batch_max_records: int = Field(default=2000, gt=0)
    batch_within_s: float = Field(default=0.05, gt=0)
    commit_interval_s: float = Field(default=1.0, gt=0)
    session_timeout_s: float = Field(default=30.0, gt=0)
    heartbeat_interval_s: float = Field(default=3.0, gt=0)
    rebalance_timeout_s: float = Field(default=60.0, gt=0)
    rebuild_max_records: int = Field(
        default=500_000, ge=0, description="telemetry re-read after a snapshot on failover"
    )
    recovery_stall_s: float = Field(
        default=120.0, gt=0, description="exit for a restart when table recovery stalls this long"
    )


class InfluxSettings(_Section):
    """InfluxDB written with influxdb-client's v2 API (1.8 and 2.x) and queried in InfluxQL."""

    url: str = "http://127.0.0.1:8086"
    org: str = "-"  # InfluxDB 1.8 ignores the org; 2.x needs the real one
    database: str = "hazardwatch"
    retention_policy: str = "autogen"
    token: SecretStr = SecretStr("")  # 1.8: empty, or "user:password" with auth; 2.x: API token
    retention_days: int = Field(default=30, ge=30, description="SAWS Order 40: keep >= 30 days")

    @property
    def bucket(self) -> str:
        """v2 bucket name, `database/retention_policy`: 1.8 maps it onto the database and its
        retention policy; on 2.x it is the bucket influx_admin creates."""
        return f"{self.database}/{self.retention_policy}"


class HttpSettings(_Section):
    """The process's own HTTP endpoints (/metrics, /healthz, alerts API)."""

    host: str = "127.0.0.1"
    port: int = 8700  # /metrics and /healthz of runners; the API of `alerts serve`
    api_port: int = 8701  # the alerts API inside the embedded runner


class RunnerSettings(_Section):
    """How the runners batch and protect their output."""

    flush_interval_ms: int = Field(default=200, gt=0, description="sink flush + MQTT ack period")
    spool_max_bytes: int = Field(default=1 << 30, gt=0, description="InfluxDB outage spool limit")
    report_by_exception: bool = False  # store raw readings only when they move (alarms always)
    rbe_max_interval_s: float = Field(default=300.0, gt=0)
    queue_max_messages: int = Field(default=10_000, gt=0, description="MQTT → pipeline queue")


class Settings(BaseSettings):
    """Everything a hazardwatch process needs, validated once at start."""

    # hide_input_in_errors: a validation error would otherwise echo the offending input, and the
    # input of a section-level check is the whole section, secrets included.
    model_config = SettingsConfigDict(
        env_prefix="HAZARDWATCH_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,
    )

    data_dir: Path = Path("data")
    plant: Path | None = None
    policy: Path | None = None
    mqtt: MqttSettings = MqttSettings()
    kafka: KafkaSettings = KafkaSettings()
    worker: WorkerSettings = WorkerSettings()
    influx: InfluxSettings = InfluxSettings()
    http: HttpSettings = HttpSettings()
    runner: RunnerSettings = RunnerSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment overrides the TOML file, which overrides defaults."""
        return (init_settings, env_settings)

    def masked(self) -> dict[str, Any]:
        """The effective settings as JSON-able data with every secret shown as `**********`."""
        return self.model_dump(mode="json")


def load_settings(path: Path | None = None) -> Settings:
    """Load settings from an optional TOML file plus the environment; raise ConfigError."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    try:
        # Environment variables take precedence over the file: pydantic-settings merges init
        # kwargs first, so pass the file's values as defaults underneath the environment.
        return _with_file_defaults(data)
    except ValueError as exc:
        raise ConfigError(f"{path or 'environment'}: {exc}") from exc


def _with_file_defaults(data: dict[str, Any]) -> Settings:
    env_only = Settings()
    merged = _deep_merge(data, _explicit(env_only))
    return Settings.model_validate(merged)


def _explicit(model: BaseModel) -> dict[str, Any]:
    """Only the fields set explicitly (by the environment), nested."""
    out: dict[str, Any] = {}
    for name in model.model_fields_set:
        value = getattr(model, name)
        out[name] = _explicit(value) if isinstance(value, BaseModel) else value
    return out


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
