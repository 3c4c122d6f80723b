"""Install and run Node-RED for the peer comparison.

Node-RED and node-red-contrib-influxdb (versions pinned in `package.json` here) are installed by
npm into a cache directory (default `~/.cache/hazardwatch/nodered`), never into the repository.
Each run gets its own user directory (settings.js, flows.json) whose `node_modules` links to
the cache, so Node-RED finds the InfluxDB nodes there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench.peer.flow import SETTINGS_JS

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("HAZARDWATCH_NODERED_CACHE",
                            Path.home() / ".cache" / "hazardwatch" / "nodered"))  # fmt: skip


class NodeRedUnavailableError(RuntimeError):
    """npm could not install Node-RED; the message carries npm's output as evidence."""


def installed_versions(cache: Path = CACHE) -> dict[str, str] | None:
    """{package: version} when every pinned package is installed as pinned, else None."""
    wanted = json.loads((HERE / "package.json").read_text("utf-8"))["dependencies"]
    found = {}
    for name, version in wanted.items():
        manifest = cache / "node_modules" / name / "package.json"
        if not manifest.exists():
            return None
        found[name] = json.loads(manifest.read_text("utf-8"))["version"]
        if found[name] != version:
            return None
    return found


def install(cache: Path = CACHE) -> dict[str, str]:
    """Install the pinned packages with npm unless already there; return their versions."""
    versions = installed_versions(cache)
    if versions is not None:
        return versions
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "package.json", cache / "package.json")
    npm = shutil.which("npm")
    if npm is None:
        raise NodeRedUnavailableError("npm is not on PATH")
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--omit=dev"],
        cwd=cache, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    versions = installed_versions(cache)
    if done.returncode != 0 or versions is None:
        raise NodeRedUnavailableError(
            f"npm install failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return versions


class NodeRed:
    """One Node-RED process serving `flows` from `user_dir` on `port`."""

    def __init__(self, user_dir: Path, flows: list[dict[str, Any]], port: int,
                 env: dict[str, str], cache: Path = CACHE) -> None:  # fmt: skip
        self.user_dir, self.port, self.cache = user_dir, port, cache
        user_dir.mkdir(parents=True, exist_ok=True)
        (user_dir / "settings.js").write_text(SETTINGS_JS % {"port": port}, "utf-8")
        (user_dir / "flows.json").write_text(json.dumps(flows, indent=1), "utf-8")
        link = user_dir / "node_modules"
        if not link.exists():
            link.symlink_to(cache / "node_modules", target_is_directory=True)
        self.env = {**os.environ, **env}
        self.log = user_dir / "node-red.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60) -> None:
        """Start and wait until the flows run (admin API answers, no node type missing)."""
        node = shutil.which("node") or "node"
        red = self.cache / "node_modules" / "node-red" / "red.js"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [node, str(red), "--userDir", str(self.user_dir), "--settings",
                 str(self.user_dir / "settings.js")],
                cwd=self.user_dir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Node-RED exited {self.proc.returncode}:\n{self.tail()}")
            try:
                state = httpx.get(f"http://127.0.0.1:{self.port}/admin/flows/state", timeout=1)
                if state.status_code == 200 and state.json().get("state") == "start":
                    if "Waiting for missing types" in self.tail():
                        raise RuntimeError(f"Node-RED misses node types:\n{self.tail()}")
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"Node-RED did not start within {timeout_s} s:\n{self.tail()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def tail(self) -> str:
        return self.log.read_text("utf-8", errors="replace")[-4000:] if self.log.exists() else ""
