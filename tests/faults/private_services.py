"""Private Mosquitto, InfluxDB and Kafka instances for tests that stop or restart a service.

The shared services (`scripts/services`) serve every test and helper on this machine, so a fault
test never touches them: it starts its own instance from the same binaries and the same config
files (services/*), on free ports with its own data directory, and stops or restarts that one.
Each class offers `start()`, `stop()` (SIGTERM, as an operator or systemd would) and `restart()`;
data survives a restart, as it does for a real service.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from tests.processes import free_port, port_answers, wait_until

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("HAZARDWATCH_CACHE", Path.home() / ".cache" / "hazardwatch"))
INFLUXD = CACHE / "bin" / "influxd-1.8.10"
KAFKA_LIBS = CACHE / "kafka-3.9.1" / "libs"


class PrivateService:
    """A service process owned by one test; `directory` holds its config, data and log."""

    name = "service"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log = directory / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def command(self) -> list[str]:
        """The command line that runs the service in the foreground."""
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        """The service's environment."""
        return dict(os.environ)

    def ready(self) -> bool:
        """True when the service accepts clients."""
        raise NotImplementedError

    def start(self, timeout: float = 90.0) -> None:
        """Start and wait until ready."""
        with open(self.log, "ab") as handle:
            self.proc = subprocess.Popen(
                self.command(),
                env=self.env(),
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
            )
        wait_until(self._ready, timeout, f"private {self.name} ready\n{self.tail()}", every=0.25)

    def _ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"private {self.name} exited\n{self.tail()}")
        return self.ready()

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (a clean shutdown), SIGKILL only if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self, down_s: float = 0.0) -> None:
        """Stop, stay down `down_s` seconds, start again with the same data."""
        self.stop()
        time.sleep(down_s)
        self.start()
        self.restarts += 1

    def tail(self, chars: int = 3000) -> str:
        """End of the service's log."""
        try:
            return self.log.read_text("utf-8", errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        """Stop for good and remove the data."""
        self.stop(timeout=20)
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivateMosquitto(PrivateService):
    """Mosquitto with services/mosquitto/mosquitto.conf (persistence on) on a free port."""

    name = "mosquitto"

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.port = free_port()
        data = directory / "data"
        data.mkdir(exist_ok=True)
        conf = (ROOT / "services/mosquitto/mosquitto.conf").read_text("utf-8")
        conf = re.sub(r"(?m)^listener 1883 ", f"listener {self.port} ", conf)
        assert f"listener {self.port} " in conf, "services/mosquitto/mosquitto.conf changed"
        (directory / "mosquitto.conf").write_text(f"persistence_location {data}/\n{conf}", "utf-8")
        _give_to_mosquitto(directory, data)

    @property
    def url(self) -> str:
        """`mqtt://127.0.0.1:<port>`."""
        return f"mqtt://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """`mosquitto -c <generated conf>`."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        return [binary, "-c", str(self.directory / "mosquitto.conf")]

    def ready(self) -> bool:
        """The listener accepts connections."""
        return port_answers(self.port)


def _give_to_mosquitto(directory: Path, data: Path) -> None:
    # Started as root, mosquitto drops to its own user (as scripts/services arranges): that user
    # must enter the directory and own its persistence folder. `private_dir()` makes directories
    # right under the temp root, so no shared parent needs its mode changed.
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    directory.chmod(0o711)
    os.chown(data, user.pw_uid, user.pw_gid)


def private_dir(name: str) -> Path:
    """A fresh directory for one private service, directly under the temp root."""
    path = Path(tempfile.mkdtemp(prefix=f"hw-fault-{name}-"))
    path.chmod(0o711)
    return path


class PrivateInflux(PrivateService):
    """InfluxDB 1.8 (the cached influxd) with services/influxdb/influxdb.conf on free ports."""

    name = "influxdb"

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.port = free_port()
        self.rpc_port = free_port()
        conf = (ROOT / "services/influxdb/influxdb.conf").read_text("utf-8")
        conf = conf.replace('"127.0.0.1:8088"', f'"127.0.0.1:{self.rpc_port}"')
        conf = conf.replace('"127.0.0.1:8086"', f'"127.0.0.1:{self.port}"')
        assert str(self.port) in conf and str(self.rpc_port) in conf, "influxdb.conf changed"
        (directory / "influxdb.conf").write_text(conf, "utf-8")

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """`influxd run -config <generated conf>`."""
        assert INFLUXD.exists(), f"{INFLUXD} missing: run scripts/services up (it builds it)"
        return [str(INFLUXD), "run", "-config", str(self.directory / "influxdb.conf")]

    def env(self) -> dict[str, str]:
        """Data paths, as scripts/services passes them."""
        d = self.directory
        return {
            **os.environ,
            "INFLUXDB_META_DIR": str(d / "meta"),
            "INFLUXDB_DATA_DIR": str(d / "data"),
            "INFLUXDB_DATA_WAL_DIR": str(d / "wal"),
        }

    def ready(self) -> bool:
        """`/ping` answers 204."""
        try:
            return httpx.get(f"{self.url}/ping", timeout=1).status_code == 204
        except httpx.HTTPError:
            return False


class PrivateKafka(PrivateService):
    """Single-node KRaft Kafka with services/kafka/server.properties on free ports."""

    name = "kafka"

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.port = free_port()
        self.controller_port = free_port()
        props = (ROOT / "services/kafka/server.properties").read_text("utf-8")
        props = props.replace("127.0.0.1:9093", f"127.0.0.1:{self.controller_port}")
        props = props.replace("127.0.0.1:9092", f"127.0.0.1:{self.port}")
        assert str(self.port) in props, "services/kafka/server.properties changed"
        (directory / "server.properties").write_text(
            f"{props}\nlog.dirs={directory / 'logs'}\n", "utf-8"
        )
        self._format()

    @property
    def bootstrap(self) -> str:
        """`127.0.0.1:<port>`."""
        return f"127.0.0.1:{self.port}"

    def _java(self, *args: str) -> list[str]:
        assert (KAFKA_LIBS / "kafka_2.13-3.9.1.jar").exists(), (
            f"{KAFKA_LIBS} missing: run scripts/services up (it fetches the jars)"
        )
        return [
            "java",
            "-cp",
            f"{KAFKA_LIBS}/*",
            "-Xms128m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{ROOT}/services/kafka/log4j.properties",
            *args,
        ]

    def _format(self) -> None:
        # As scripts/services does on first start: a fresh cluster id, then format the log dir.
        cluster = subprocess.run(
            self._java("kafka.tools.StorageTool", "random-uuid"),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster,
                "-c",
                str(self.directory / "server.properties"),
            ),
            capture_output=True,
            check=True,
        )

    def command(self) -> list[str]:
        """`java … kafka.Kafka <generated properties>`."""
        return self._java("kafka.Kafka", str(self.directory / "server.properties"))

    def ready(self) -> bool:
        """The broker's listener accepts connections."""
        return port_answers(self.port)
