"""Create the sink's database and its retention where the server permits it.

One name on both InfluxDB versions: the sink writes to the bucket `database/retention_policy`
(`InfluxSettings.bucket`) and everything reads it in InfluxQL as database `database`.
- 1.8: `CREATE DATABASE` and a retention policy over InfluxQL (the v2 write API maps the bucket
  name onto them).
- 2.x: a bucket of that very name (the name `influxd upgrade` gives a migrated 1.x database) with
  an expiry of `retention_days`, and a DBRP mapping, the database's default, so that InfluxQL —
  the dashboards' language — finds it under the database name.
An existing database or bucket is left as it is; one that keeps data for less than the required
days is reported, not changed (its retention is the operator's). A token without the right, or an
unreachable server, is logged and the sink carries on: writes spool until the server is there.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from hazardwatch.settings import InfluxSettings

log = logging.getLogger(__name__)

DAY_S = 86_400


def server_version(client: httpx.Client) -> str:
    """The `X-Influxdb-Version` of `/ping`: "1.8.10" on 1.8, "v2.7.12" on 2.x."""
    resp = client.get("/ping")
    return str(resp.headers.get("X-Influxdb-Version", ""))


def is_v2(version: str) -> bool:
    return version.removeprefix("v").startswith("2.")


def ensure_database(settings: InfluxSettings) -> None:
    """Create the database (1.8) or bucket and DBRP mapping (2.x) of `settings`, where permitted."""
    token = settings.token.get_secret_value()
    headers = {"Authorization": f"Token {token}"} if token else {}
    with httpx.Client(base_url=settings.url, headers=headers, timeout=10) as client:
        try:
            version = server_version(client)
            if is_v2(version):
                _ensure_bucket(client, settings)
            else:
                _ensure_v1_database(client, settings)
        except httpx.HTTPError as exc:
            log.warning("InfluxDB unreachable at %s: %s (writes spool until it is back)",
                        settings.url, exc)  # fmt: skip
        except (ValueError, KeyError) as exc:  # an answer that is not the API's JSON
            log.warning("InfluxDB at %s answered set-up unexpectedly: %r", settings.url, exc)


def _ensure_v1_database(client: httpx.Client, s: InfluxSettings) -> None:
    statements = [
        f'CREATE DATABASE "{s.database}"',
        f'CREATE RETENTION POLICY "{s.retention_policy}" ON "{s.database}" '
        f"DURATION {s.retention_days}d REPLICATION 1",
    ]
    for statement in statements:
        resp = client.post("/query", params={"q": statement})
        if resp.status_code != 200 or '"error"' in resp.text:
            # Without admin rights the statements are refused; 1.8 says the RP exists (autogen).
            log.info("InfluxDB did not apply %r: %s %s", statement, resp.status_code, resp.text)


class _RefusedError(Exception):
    """The 2.x API refused a management call (no such org, or the token lacks the right)."""


def _call(client: httpx.Client, method: str, path: str, **kw: Any) -> Any:
    resp = client.request(method, path, **kw)
    if resp.status_code == 404 and method == "GET":
        return {}  # a lookup by name answers 404 when nothing has that name
    if resp.status_code >= 400:
        raise _RefusedError(f"{method} {path}: HTTP {resp.status_code} {resp.text[:300]}")
    return resp.json()


def _ensure_bucket(client: httpx.Client, s: InfluxSettings) -> None:
    try:
        orgs = _call(client, "GET", "/api/v2/orgs", params={"org": s.org})["orgs"]
        if not orgs:
            raise _RefusedError(f"no organisation {s.org!r}")
        org_id = orgs[0]["id"]
        bucket = _find_or_create_bucket(client, s, org_id)
        _ensure_mapping(client, s, org_id, bucket["id"])
    except _RefusedError as exc:
        log.warning("InfluxDB 2 did not let the sink set up bucket %r (%s); create it and its "
                    "DBRP mapping by hand", s.bucket, exc)  # fmt: skip


def _ensure_mapping(client: httpx.Client, s: InfluxSettings, org_id: str, bucket_id: str) -> None:
    # 2.x lists a "virtual" mapping for every bucket named db/rp, but never as the database's
    # default, so InfluxQL without an explicit `rp` (the dashboards') fails; a real one is needed.
    found = _call(client, "GET", "/api/v2/dbrps", params={"orgID": org_id, "db": s.database})
    real = [m for m in found.get("content", []) if not m.get("virtual")]
    if any(m["retention_policy"] == s.retention_policy for m in real):
        return
    default = not any(m.get("default") for m in real)
    _call(client, "POST", "/api/v2/dbrps", json={
        "orgID": org_id, "bucketID": bucket_id, "database": s.database,
        "retention_policy": s.retention_policy, "default": default,
    })  # fmt: skip
    log.info("InfluxDB 2: InfluxQL database %r, retention policy %r now reads bucket %r%s",
             s.database, s.retention_policy, s.bucket, " (default)" if default else "")  # fmt: skip


def _find_or_create_bucket(client: httpx.Client, s: InfluxSettings, org_id: str) -> Any:
    found = _call(client, "GET", "/api/v2/buckets", params={"orgID": org_id, "name": s.bucket})
    wanted_s = s.retention_days * DAY_S
    for bucket in found.get("buckets", []):
        kept_s = min((r.get("everySeconds") or 0 for r in bucket.get("retentionRules", [])),
                     default=0)  # fmt: skip
        if 0 < kept_s < wanted_s:
            log.warning("InfluxDB 2 bucket %r keeps data %.0f days, fewer than the %d required; "
                        "left as it is", s.bucket, kept_s / DAY_S, s.retention_days)  # fmt: skip
        return bucket
    created = _call(client, "POST", "/api/v2/buckets", json={
        "orgID": org_id, "name": s.bucket,
        "retentionRules": [{"type": "expire", "everySeconds": wanted_s}],
    })  # fmt: skip
    log.info("InfluxDB 2: created bucket %r keeping %d days", s.bucket, s.retention_days)
    return created
