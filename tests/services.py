"""Where the tests find Mosquitto, Kafka and InfluxDB (1.8, and 2.x for the sink's tests).

By default: the services `scripts/services up` starts on 127.0.0.1 (overridable with the same
`HAZARDWATCH_*` variables the settings model reads). On a machine with a Docker engine,
`HAZARDWATCH_TESTCONTAINERS=1` starts throw-away containers with testcontainers instead; this
machine has no engine, so CI uses the script's services. A missing service is a test failure,
never a skip.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from pydantic import SecretStr

from hazardwatch.settings import InfluxSettings, MqttSettings, Settings, load_settings
from tests.processes import influx_rows

REPO = Path(__file__).resolve().parents[1]
MQTT_TLS_PORT = 8883  # services/mosquitto/tls-listener.conf
INFLUX2_URL = "http://127.0.0.1:8087"  # scripts/services influxdb2
INFLUX2_ORG = "hazardwatch"


@dataclass(frozen=True)
class Endpoints:
    """Addresses of the three services for one test session."""

    mqtt_host: str
    mqtt_port: int
    kafka_bootstrap: str
    influx_url: str
    # Mosquitto's TLS listener (passwords, per-gateway ACL) and the folder where scripts/services
    # generated its CA certificate (`ca.crt`) and accounts (`credentials`: "user password" lines)
    mqtt_tls_port: int | None = None
    mqtt_tls_dir: Path | None = None
    # InfluxDB 2.x: its URL, organisation and an operator token (scripts/services generates it)
    influx2_url: str | None = None
    influx2_org: str = INFLUX2_ORG
    influx2_token: str = ""

    @property
    def mqtt_ca_file(self) -> Path:
        """The CA certificate that signed the TLS listener's certificate."""
        if self.mqtt_tls_dir is None:
            raise LookupError("these services have no Mosquitto TLS listener")
        return self.mqtt_tls_dir / "ca.crt"

    def mqtt_credentials(self) -> dict[str, str]:
        """Account → password of the TLS listener (the ingest service and each gateway)."""
        if self.mqtt_tls_dir is None:
            raise LookupError("these services have no Mosquitto TLS listener")
        lines = (self.mqtt_tls_dir / "credentials").read_text(encoding="utf-8").splitlines()
        return dict(line.split(" ", 1) for line in lines if line.strip())

    def mqtt_tls(
        self, username: str, password: str | None = None, **update: object
    ) -> MqttSettings:
        """MQTT settings for the TLS listener as `username` (its generated password by default)."""
        secret = self.mqtt_credentials()[username] if password is None else password
        return self.settings().mqtt.model_copy(
            update={
                "url": f"mqtts://{self.mqtt_host}:{self.mqtt_tls_port}",
                "ca_file": self.mqtt_ca_file,
                "username": username,
                "password": SecretStr(secret),
                **update,
            }
        )

    def settings(self, **overrides: object) -> Settings:
        """A Settings object pointing at these endpoints."""
        base = load_settings()
        data = base.model_dump()
        data["mqtt"]["url"] = f"mqtt://{self.mqtt_host}:{self.mqtt_port}"
        data["kafka"]["bootstrap_servers"] = self.kafka_bootstrap
        data["influx"]["url"] = self.influx_url
        data["influx"]["token"] = base.influx.token.get_secret_value()
        data.update(overrides)
        return Settings.model_validate(data)


def port_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def missing_services(endpoints: Endpoints) -> list[str]:
    """Names of services that do not answer on their port."""
    kafka_host, kafka_port = endpoints.kafka_bootstrap.split(",")[0].rsplit(":", 1)
    influx = urlparse(endpoints.influx_url)
    checks = {
        "mosquitto": (endpoints.mqtt_host, endpoints.mqtt_port),
        "kafka": (kafka_host, int(kafka_port)),
        "influxdb": (influx.hostname or "127.0.0.1", influx.port or 8086),
    }
    if endpoints.influx2_url is not None:
        influx2 = urlparse(endpoints.influx2_url)
        checks["influxdb2"] = (influx2.hostname or "127.0.0.1", influx2.port or 8086)
    return [name for name, (host, port) in checks.items() if not port_answers(host, port)]


def local_endpoints() -> Endpoints:
    """Endpoints of the script's services, as the settings model resolves them."""
    settings = load_settings()
    mqtt = urlparse(settings.mqtt.url)
    services_dir = Path(os.environ.get("HAZARDWATCH_SERVICES_DIR", REPO / ".services"))
    token_file = services_dir / "influxdb2" / "token"
    return Endpoints(
        mqtt_host=mqtt.hostname or "127.0.0.1",
        mqtt_port=mqtt.port or 1883,
        kafka_bootstrap=settings.kafka.bootstrap_servers,
        influx_url=settings.influx.url,
        mqtt_tls_port=MQTT_TLS_PORT,
        mqtt_tls_dir=services_dir / "mosquitto" / "tls",
        influx2_url=os.environ.get("HAZARDWATCH_TEST_INFLUX2_URL", INFLUX2_URL),
        influx2_token=token_file.read_text("utf-8").strip() if token_file.exists() else "",
    )


@contextlib.contextmanager
def container_endpoints() -> Iterator[Endpoints]:
    """Start Mosquitto, Kafka, InfluxDB 1.8 and 2.x containers (needs a Docker engine)."""
    import secrets

    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.mqtt import MosquittoContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    influx = (
        DockerContainer("influxdb:1.8.10")
        .with_env("INFLUXDB_HTTP_FLUX_ENABLED", "true")
        .with_exposed_ports(8086)
    )
    token = secrets.token_hex(32)
    influx2 = DockerContainer("influxdb:2.7.12").with_exposed_ports(8086)
    for key, value in {"MODE": "setup", "USERNAME": "hazardwatch",
                       "PASSWORD": secrets.token_hex(16), "ORG": INFLUX2_ORG, "BUCKET": "setup",
                       "ADMIN_TOKEN": token}.items():  # fmt: skip
        influx2 = influx2.with_env(f"DOCKER_INFLUXDB_INIT_{key}", value)
    with MosquittoContainer() as mqtt, KafkaContainer().with_kraft() as kafka, influx, influx2:
        wait_for_logs(influx, "Listening on HTTP")
        wait_for_logs(influx2, "Listening")

        def url(container: DockerContainer) -> str:
            return f"http://{container.get_container_host_ip()}:{container.get_exposed_port(8086)}"

        yield Endpoints(
            mqtt_host=mqtt.get_container_host_ip(),
            mqtt_port=int(mqtt.get_exposed_port(mqtt.MQTT_PORT)),
            kafka_bootstrap=kafka.get_bootstrap_server(),
            influx_url=url(influx),
            influx2_url=url(influx2),
            influx2_token=token,
        )


def use_containers() -> bool:
    """True when the user asked for testcontainers instead of the script's services."""
    return os.environ.get("HAZARDWATCH_TESTCONTAINERS") == "1"


@dataclass(frozen=True)
class InfluxTarget:
    """One database on one InfluxDB server: 1.8 (a database) or 2.x (bucket `database/autogen`
    mapped to InfluxQL database `database`, as stream/sinks/influx_admin sets it up)."""

    version: str  # "1.8" or "2.x"
    url: str
    database: str
    org: str = "-"
    token: str = ""

    def settings(self, url: str | None = None) -> InfluxSettings:
        """The sink's settings for this database, at `url` (a proxy) if given."""
        return InfluxSettings(url=url or self.url, org=self.org, database=self.database,
                              token=SecretStr(self.token))  # fmt: skip

    def env(self) -> dict[str, str]:
        """The same as `HAZARDWATCH_INFLUX__*` variables, for a runner process."""
        return {"HAZARDWATCH_INFLUX__URL": self.url, "HAZARDWATCH_INFLUX__ORG": self.org,
                "HAZARDWATCH_INFLUX__DATABASE": self.database,
                "HAZARDWATCH_INFLUX__TOKEN": self.token}  # fmt: skip

    def query(self, influxql: str) -> list[dict[str, Any]]:
        """Rows of an InfluxQL query on this database (tags merged in, times in epoch ms)."""
        return influx_rows(self.url, self.database, influxql, token=self.token)


class Influx2Api:
    """InfluxDB 2.x's management API with the services' operator token: what the tests create
    and inspect there (buckets, DBRP mappings) and remove afterwards."""

    def __init__(self, endpoints: Endpoints) -> None:
        assert endpoints.influx2_url, "no InfluxDB 2.x in these endpoints"
        self.url, self.org, self.token = (endpoints.influx2_url, endpoints.influx2_org,
                                          endpoints.influx2_token)  # fmt: skip
        self.http = httpx.Client(base_url=self.url, timeout=10,
                                 headers={"Authorization": f"Token {self.token}"})  # fmt: skip
        orgs = self.http.get("/api/v2/orgs", params={"org": self.org}).json()["orgs"]
        self.org_id: str = orgs[0]["id"]

    def close(self) -> None:
        self.http.close()

    def settings(self, database: str, token: str | None = None) -> InfluxSettings:
        """The sink's settings for `database` here (with another `token` if given)."""
        return InfluxSettings(url=self.url, org=self.org, database=database,
                              token=SecretStr(self.token if token is None else token))  # fmt: skip

    def buckets(self, name: str) -> list[dict[str, Any]]:
        found = self.http.get("/api/v2/buckets", params={"orgID": self.org_id, "name": name})
        return [] if found.status_code == 404 else list(found.json()["buckets"])

    def mappings(self, database: str) -> list[dict[str, Any]]:
        """The real (not virtual) DBRP mappings of `database`."""
        found = self.http.get("/api/v2/dbrps", params={"orgID": self.org_id, "db": database})
        return [m for m in found.json()["content"] if not m.get("virtual")]

    def create_bucket(self, name: str, expire_s: int | None = None) -> str:
        """A bucket (kept forever unless `expire_s`); its id."""
        rules = [{"type": "expire", "everySeconds": expire_s}] if expire_s else []
        body = {"orgID": self.org_id, "name": name, "retentionRules": rules}
        resp = self.http.post("/api/v2/buckets", json=body)
        resp.raise_for_status()
        return str(resp.json()["id"])

    def create_mapping(self, database: str, bucket_id: str) -> None:
        """Database `database`, retention policy autogen (its default) → the bucket."""
        self.http.post("/api/v2/dbrps", json={
            "orgID": self.org_id, "bucketID": bucket_id, "database": database,
            "retention_policy": "autogen", "default": True,
        }).raise_for_status()  # fmt: skip

    def write(self, bucket: str, line: str) -> None:
        self.http.post("/api/v2/write", params={"org": self.org, "bucket": bucket},
                       content=line).raise_for_status()  # fmt: skip

    def drop(self, database: str) -> None:
        """Remove the mappings of `database` and its buckets `database/...`."""
        for mapping in self.mappings(database):
            self.http.delete(f"/api/v2/dbrps/{mapping['id']}", params={"orgID": self.org_id})
        found = self.http.get("/api/v2/buckets", params={"orgID": self.org_id, "limit": 100})
        for bucket in found.json()["buckets"]:
            if bucket["name"].startswith(f"{database}/"):
                self.http.delete(f"/api/v2/buckets/{bucket['id']}")
