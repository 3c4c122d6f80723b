"""`hazardwatch dashboards push` against a local server that answers like Grafana's HTTP API.

A Grafana server cannot run here, so `FakeGrafana` emulates the endpoints grafana-client uses
(`/api/frontend/settings`, `/api/folders`, `/api/dashboards/uid/…`, `/api/dashboards/db`) with
Grafana's status codes and bodies, stores what it is sent and records every request.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dashboards.export import COMMITTED_PLANTS, build_all, plant_tags, to_model
from dashboards.push import PushError, push
from hazardwatch.cli import main

pytestmark = pytest.mark.integration

EDITOR_TOKEN = "glsa_editor"
VIEWER_TOKEN = "glsa_viewer"


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass
class GrafanaState:
    version: str = "11.3.0"
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST"]


def _handler(state: GrafanaState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            auth = self.headers.get("Authorization")
            state.requests.append(Recorded(method, self.path, auth, body))
            if auth not in (f"Bearer {EDITOR_TOKEN}", f"Bearer {VIEWER_TOKEN}"):
                return self._answer(401, {"message": "invalid API key"})
            if method == "POST" and auth == f"Bearer {VIEWER_TOKEN}":
                return self._answer(403, {"message": "You'll need additional permissions"})
            path = self.path.split("?")[0]
            if method == "GET" and path == "/api/frontend/settings":
                return self._answer(200, {"buildInfo": {"version": state.version}})
            if method == "GET" and path.startswith("/api/folders/"):
                folder = state.folders.get(path.removeprefix("/api/folders/"))
                if folder is None:
                    return self._answer(404, {"message": "folder not found", "status": "not-found"})
                return self._answer(200, folder)
            if method == "POST" and path == "/api/folders":
                if body["uid"] in state.folders:
                    return self._answer(409, {"message": "a folder with the same uid exists"})
                state.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "id": 1}
                return self._answer(200, state.folders[body["uid"]])
            if method == "GET" and path.startswith("/api/dashboards/uid/"):
                stored = state.dashboards.get(path.removeprefix("/api/dashboards/uid/"))
                if stored is None:
                    return self._answer(404, {"message": "Dashboard not found"})
                return self._answer(200, copy.deepcopy(stored))
            if method == "POST" and path == "/api/dashboards/db":
                model = dict(body["dashboard"])
                uid = model["uid"]
                if body.get("folderUid") not in state.folders:
                    return self._answer(400, {"message": "folder not found"})
                previous = state.dashboards.get(uid)
                if previous is not None and not body.get("overwrite"):
                    message = "The dashboard has been changed by someone else"
                    return self._answer(412, {"message": message, "status": "version-mismatch"})
                version = 1 if previous is None else previous["dashboard"]["version"] + 1
                new_id = (
                    len(state.dashboards) + 1 if previous is None else previous["dashboard"]["id"]
                )
                model.update(id=new_id, version=version)
                meta = {"folderUid": body["folderUid"]}
                state.dashboards[uid] = {"dashboard": model, "meta": meta}
                return self._answer(
                    200, {"id": model["id"], "uid": uid, "status": "success", "version": version}
                )
            return self._answer(404, {"message": "Not found"})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[str, GrafanaState]]:
    state = GrafanaState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def models() -> list[dict[str, Any]]:
    return [to_model(d) for d in build_all(plant_tags(COMMITTED_PLANTS))]


def test_first_push_creates_folder_and_upserts_every_dashboard_by_uid(
    grafana: tuple[str, GrafanaState], models: list[dict[str, Any]]
) -> None:
    url, state = grafana
    report = push(url, EDITOR_TOKEN, models)
    assert report.grafana_version == "11.3.0" and report.folder_created
    assert report.actions == {m["uid"]: "created" for m in models}
    assert all(r.authorization == f"Bearer {EDITOR_TOKEN}" for r in state.requests)
    folder_post, *dashboard_posts = state.writes()
    assert (folder_post.path, folder_post.body) == (
        "/api/folders",
        {"title": "hazardwatch", "uid": "hazardwatch"},
    )
    assert [r.path for r in dashboard_posts] == ["/api/dashboards/db"] * len(models)
    for sent, model in zip(dashboard_posts, models, strict=True):
        assert sent.body["overwrite"] is True and sent.body["folderUid"] == "hazardwatch"
        assert sent.body["dashboard"]["uid"] == model["uid"]
        assert sent.body["dashboard"]["id"] is None  # upsert by uid, never by numeric id
        assert sent.body["dashboard"]["panels"] == model["panels"]
    assert state.requests[0].path == "/api/frontend/settings"  # version checked first


def test_second_push_changes_nothing(
    grafana: tuple[str, GrafanaState], models: list[dict[str, Any]]
) -> None:
    url, state = grafana
    push(url, EDITOR_TOKEN, models)
    versions = {uid: d["dashboard"]["version"] for uid, d in state.dashboards.items()}
    writes_before = len(state.writes())
    report = push(url, EDITOR_TOKEN, models)
    assert not report.folder_created
    assert set(report.actions.values()) == {"unchanged"}
    assert len(state.writes()) == writes_before
    assert {uid: d["dashboard"]["version"] for uid, d in state.dashboards.items()} == versions


def test_changed_dashboard_is_overwritten(
    grafana: tuple[str, GrafanaState], models: list[dict[str, Any]]
) -> None:
    url, state = grafana
    push(url, EDITOR_TOKEN, models)
    changed = copy.deepcopy(models)
    changed[0]["refresh"] = "10s"
    report = push(url, EDITOR_TOKEN, changed)
    assert report.actions[models[0]["uid"]] == "updated"
    assert list(report.actions.values()).count("unchanged") == len(models) - 1
    assert state.dashboards[models[0]["uid"]]["dashboard"]["refresh"] == "10s"
    assert state.dashboards[models[0]["uid"]]["dashboard"]["version"] == 2


def test_bad_token_is_a_clear_auth_error(
    grafana: tuple[str, GrafanaState], models: list[dict[str, Any]]
) -> None:
    url, state = grafana
    with pytest.raises(PushError, match=r"401.*--token"):
        push(url, "wrong", models)
    assert not state.writes()


def test_token_without_write_permission_is_a_clear_error(
    grafana: tuple[str, GrafanaState], models: list[dict[str, Any]]
) -> None:
    url, state = grafana
    with pytest.raises(PushError, match=r"folder 'hazardwatch'.*403.*Editor"):
        push(url, VIEWER_TOKEN, models)
    assert not state.folders and not state.dashboards


def test_old_grafana_is_refused_before_writing(
    grafana: tuple[str, GrafanaState], models: list[dict[str, Any]]
) -> None:
    url, state = grafana
    state.version = "10.4.2"
    with pytest.raises(PushError, match=r"Grafana 10\.4\.2 is too old.*11\.0"):
        push(url, EDITOR_TOKEN, models)
    assert not state.writes()


def test_cli_push_and_auth_failure_exit_codes(
    grafana: tuple[str, GrafanaState], capsys: pytest.CaptureFixture[str]
) -> None:
    url, state = grafana
    assert main(["dashboards", "push", "--grafana", url, "--token", EDITOR_TOKEN]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["folder_created"] is True and set(out["dashboards"].values()) == {"created"}
    assert len(state.dashboards) == 4
    assert main(["dashboards", "push", "--grafana", url, "--token", "expired"]) == 1
    err = capsys.readouterr().err
    assert "401 Unauthorized" in err and "Traceback" not in err
