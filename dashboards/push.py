"""Upload dashboards to a Grafana server with grafana-client (the one module that imports it).

`push` makes sure the folder exists (get by uid, create when missing), then upserts each
dashboard by uid with `overwrite: true`. A dashboard whose stored model already equals ours is
left alone, so pushing twice changes nothing (no new dashboard version on the server).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException
from niquests.exceptions import RequestException

from hazardwatch.errors import HazardwatchError

FOLDER_UID = "hazardwatch"
FOLDER_TITLE = "hazardwatch"
MIN_GRAFANA = (11, 0)
"""The dashboards use schemaVersion 39 and Grafana 11 panel options (docker compose: 11.3.0)."""

_SERVER_KEYS = ("id", "version")  # assigned by Grafana; never part of our model


class PushError(HazardwatchError):
    """Grafana refused or cannot take the dashboards; the message says why and what to do."""


@dataclass
class PushReport:
    """What a push did: the server version, whether it created the folder, per-dashboard action."""

    grafana_version: str
    folder_created: bool
    actions: dict[str, str] = field(default_factory=dict)  # uid → created / updated / unchanged


def _explain(exc: GrafanaException, doing: str) -> PushError:
    status = exc.status_code
    if status == 401:
        return PushError(
            f"{doing}: Grafana rejected the token (401 Unauthorized); "
            "pass a valid service-account token with --token"
        )
    if status == 403:
        return PushError(
            f"{doing}: the token lacks permission (403 Forbidden); the service account needs "
            "the Editor role (folders and dashboards write)"
        )
    if status == 412:
        return PushError(
            f"{doing}: Grafana refused the save (412 {exc.message}); a dashboard with the "
            "same title may exist in the folder under another uid"
        )
    return PushError(f"{doing}: Grafana answered {status}: {exc.message}")


def parse_version(text: str) -> tuple[int, int]:
    """`11.3.0` (or `11.3.0-pre`) → (11, 3); PushError when it is not a version."""
    parts = text.split("-")[0].split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise PushError(f"cannot read the Grafana version {text!r}") from None


def _comparable(model: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in _SERVER_KEYS}


def _stored(api: GrafanaApi, uid: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = api.dashboard.get_dashboard(uid)  # type: ignore[no-untyped-call]
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise
    return found


def _ensure_folder(api: GrafanaApi, uid: str, title: str) -> bool:
    try:
        api.folder.get_folder(uid)  # type: ignore[no-untyped-call]
        return False
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
    api.folder.create_folder(title, uid=uid)  # type: ignore[no-untyped-call]
    return True


def push(
    url: str,
    token: str,
    dashboards: Sequence[dict[str, Any]],
    folder_uid: str = FOLDER_UID,
    folder_title: str = FOLDER_TITLE,
    timeout_s: float = 10.0,
) -> PushReport:
    """Upsert `dashboards` (JSON models with uids) into the folder; raises PushError on refusal."""
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    doing = f"connecting to Grafana at {url}"
    try:
        version = str(api.version or "")
        if parse_version(version) < MIN_GRAFANA:
            raise PushError(
                f"Grafana {version} is too old: these dashboards need Grafana "
                f"{MIN_GRAFANA[0]}.{MIN_GRAFANA[1]} or newer (dashboard schemaVersion 39)"
            )
        doing = f"ensuring folder {folder_uid!r}"
        report = PushReport(version, _ensure_folder(api, folder_uid, folder_title))
        for model in dashboards:
            uid = str(model["uid"])
            doing = f"pushing dashboard {uid!r}"
            stored = _stored(api, uid)
            if (
                stored is not None
                and stored.get("meta", {}).get("folderUid") == folder_uid
                and _comparable(stored.get("dashboard", {})) == _comparable(model)
            ):
                report.actions[uid] = "unchanged"
                continue
            api.dashboard.update_dashboard(
                {
                    "dashboard": {**_comparable(model), "id": None},
                    "folderUid": folder_uid,
                    "overwrite": True,
                    "message": "hazardwatch dashboards push",
                }
            )
            report.actions[uid] = "created" if stored is None else "updated"
        return report
    except GrafanaException as exc:
        raise _explain(exc, doing) from exc
    except RequestException as exc:
        raise PushError(f"{doing}: cannot reach Grafana ({exc})") from exc
